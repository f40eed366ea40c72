//! Webhook signature verification: HMAC-SHA256 over `"{t}.{raw body}"`, carried in a
//! header of the form `t=<unix seconds>,v1=<hex>[,v1=<hex>…][,v0=…]`.
//!
//! This is Stripe's published scheme, byte for byte, so the stripe provider reuses it and
//! the mock provider signs with it. The verifier works on the exact bytes received: a body
//! that was parsed and re-serialised no longer matches, which is the point.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::Secret;

type HmacSha256 = Hmac<Sha256>;

/// Stripe's default tolerance for the age of a signed timestamp.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Why a delivery failed verification. Every variant maps to HTTP 401 at the edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The signature header is absent.
    #[error("signature header is missing")]
    MissingHeader,
    /// The header has no `t=` or no `v1=` element, or `t` is not a number.
    #[error("signature header is malformed")]
    MalformedHeader,
    /// No `v1` signature matched any configured secret.
    #[error("no signature matches")]
    NoMatch,
    /// The timestamp is older than the tolerance allows (a replay or a stuck queue).
    #[error("timestamp outside the tolerance zone")]
    Stale,
}

/// A body whose signature was checked. Only [`SignatureVerifier::verify`] builds one, so
/// holding a `VerifiedBody` proves the bytes came from someone who knows a secret.
#[derive(Debug)]
pub struct VerifiedBody<'a> {
    bytes: &'a [u8],
    timestamp: i64,
}

impl<'a> VerifiedBody<'a> {
    /// The verified bytes, exactly as received.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The signed timestamp (unix seconds).
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }
}

/// Verifies signature headers against one or more secrets (several during rotation).
#[derive(Clone)]
pub struct SignatureVerifier {
    keys: Vec<HmacSha256>,
    tolerance: Duration,
}

impl std::fmt::Debug for SignatureVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureVerifier")
            .field("secrets", &self.keys.len())
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl SignatureVerifier {
    /// A verifier accepting a signature made with any of `secrets`. The key is the whole
    /// secret string as UTF-8 bytes (Stripe does not base64-decode `whsec_…`).
    pub fn new(secrets: &[Secret], tolerance: Duration) -> Self {
        let keys = secrets
            .iter()
            .map(|s| {
                HmacSha256::new_from_slice(s.expose().as_bytes())
                    .expect("HMAC accepts keys of any length")
            })
            .collect();
        Self { keys, tolerance }
    }

    /// Checks `header` against `body` at time `now`.
    ///
    /// Accepts when any `v1` matches any secret. `v0` and unknown schemes are ignored.
    /// Only old timestamps are refused, as Stripe's libraries do; a clock running ahead at
    /// the sender does not lose events.
    pub fn verify<'a>(
        &self,
        header: Option<&str>,
        body: &'a [u8],
        now: SystemTime,
    ) -> Result<VerifiedBody<'a>, VerifyError> {
        let header = header.ok_or(VerifyError::MissingHeader)?;
        let parsed = ParsedHeader::parse(header)?;
        let now = now
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let mut matched = false;
        // Every secret and every candidate is tried, without stopping early, so the time
        // taken does not say which one matched.
        for key in &self.keys {
            let mut mac = key.clone();
            mac.update(parsed.t_raw.as_bytes());
            mac.update(b".");
            mac.update(body);
            let expected = mac.finalize().into_bytes();
            for candidate in &parsed.v1 {
                if candidate.len() == expected.len() {
                    matched |= bool::from(candidate.as_slice().ct_eq(expected.as_slice()));
                }
            }
        }
        if !matched {
            return Err(VerifyError::NoMatch);
        }
        // The age is computed wide: a signed `t` anywhere in i64 neither overflows (a
        // panic in debug builds) nor wraps into looking fresh (in release builds).
        let age = i128::from(now) - i128::from(parsed.t);
        if !self.tolerance.is_zero() && age > i128::from(self.tolerance.as_secs()) {
            return Err(VerifyError::Stale);
        }
        Ok(VerifiedBody {
            bytes: body,
            timestamp: parsed.t,
        })
    }
}

struct ParsedHeader<'h> {
    t: i64,
    t_raw: &'h str,
    v1: Vec<Vec<u8>>,
}

impl<'h> ParsedHeader<'h> {
    fn parse(header: &'h str) -> Result<Self, VerifyError> {
        let mut t = None;
        let mut v1 = Vec::new();
        for part in header.split(',') {
            let Some((k, v)) = part.trim().split_once('=') else {
                continue;
            };
            match k {
                "t" => t = Some(v),
                "v1" => {
                    // A candidate that is not hex cannot match; it is skipped, not fatal,
                    // because another v1 in the same header may be good.
                    if let Ok(bytes) = hex::decode(v) {
                        v1.push(bytes);
                    }
                }
                _ => {}
            }
        }
        let t_raw = t.ok_or(VerifyError::MalformedHeader)?;
        let t = t_raw
            .parse::<i64>()
            .map_err(|_| VerifyError::MalformedHeader)?;
        if v1.is_empty() {
            return Err(VerifyError::NoMatch);
        }
        Ok(Self { t, t_raw, v1 })
    }
}

/// Computes the hex `v1` signature of `body` at `timestamp` with `secret`.
pub fn compute_signature(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Builds a complete header `t=…,v1=…` for a sender (the mock PSP, fakes, tests).
pub fn sign_header(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        compute_signature(secret, timestamp, body)
    )
}

/// The current unix time in seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The vectors below come from stripe.md, computed with Stripe's own Python library.
    const PAYLOAD: &str = r#"{"id":"evt_test_webhook","object":"event","type":"payment_intent.succeeded","created":1700000000,"livemode":false,"data":{"object":{"id":"pi_123","object":"payment_intent","amount":2000,"currency":"sek","status":"succeeded","metadata":{"order_id":"ord_1"}}}}"#;
    const GOOD: &str = "4ab0c3c5ecce87d571d759a8ddea2b9522d1113b3d62e7b3396a4ac6473db61b";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn verifier(secrets: &[&str]) -> SignatureVerifier {
        let secrets: Vec<Secret> = secrets.iter().map(|s| Secret::new(*s)).collect();
        SignatureVerifier::new(&secrets, DEFAULT_TOLERANCE)
    }

    #[test]
    fn signing_agrees_with_stripes_published_vectors() {
        let secret = Secret::new("whsec_test_secret");
        assert_eq!(
            compute_signature(&secret, 1_700_000_000, PAYLOAD.as_bytes()),
            GOOD
        );
        assert_eq!(
            compute_signature(&secret, 1_700_000_000, b"{}"),
            "ceb8863f7208fa249a6cd8f951e993c7563412aca65866f6272283debe143ab3"
        );
        assert_eq!(
            sign_header(&secret, 1_700_000_000, PAYLOAD.as_bytes()),
            format!("t=1700000000,v1={GOOD}")
        );
    }

    #[test]
    fn a_signed_timestamp_at_either_end_of_i64_is_judged_without_overflow() {
        let secret = Secret::new("whsec_test_secret");
        let v = verifier(&["whsec_test_secret"]);
        let now = at(1_700_000_000);
        // Found by the fuzz test: the age `now - t` overflowed (a panic in debug builds,
        // and in release builds a wrap that made the oldest timestamp look fresh).
        let oldest = sign_header(&secret, i64::MIN, b"{}");
        assert_eq!(
            v.verify(Some(&oldest), b"{}", now).unwrap_err(),
            VerifyError::Stale
        );
        let newest = sign_header(&secret, i64::MAX, b"{}");
        assert!(v.verify(Some(&newest), b"{}", now).is_ok());
    }

    #[test]
    fn a_stripe_header_verifies_within_the_tolerance() {
        let v = verifier(&["whsec_test_secret"]);
        let header = format!("t=1700000000,v1={GOOD}");
        let body = v
            .verify(Some(&header), PAYLOAD.as_bytes(), at(1_700_000_100))
            .unwrap();
        assert_eq!(body.timestamp(), 1_700_000_000);
        assert_eq!(body.bytes(), PAYLOAD.as_bytes());
    }

    #[test]
    fn any_matching_v1_among_several_is_accepted_and_v0_is_ignored() {
        let v = verifier(&["whsec_test_secret"]);
        let header = format!("t=1700000000,v1=deadbeef,v1={GOOD},v0=abc");
        assert!(v
            .verify(Some(&header), PAYLOAD.as_bytes(), at(1_700_000_000))
            .is_ok());
    }

    #[test]
    fn a_header_with_only_v0_is_refused() {
        let v = verifier(&["whsec_test_secret"]);
        let header = format!("t=1700000000,v0={GOOD}");
        assert_eq!(
            v.verify(Some(&header), PAYLOAD.as_bytes(), at(1_700_000_000))
                .unwrap_err(),
            VerifyError::NoMatch
        );
    }

    #[test]
    fn an_old_timestamp_is_stale_even_with_a_good_signature() {
        let v = verifier(&["whsec_test_secret"]);
        let header = format!("t=1700000000,v1={GOOD}");
        assert_eq!(
            v.verify(Some(&header), PAYLOAD.as_bytes(), at(1_700_000_301))
                .unwrap_err(),
            VerifyError::Stale
        );
    }

    #[test]
    fn a_future_timestamp_passes_as_in_stripes_libraries() {
        let v = verifier(&["whsec_test_secret"]);
        let header = format!("t=1700000000,v1={GOOD}");
        assert!(v
            .verify(Some(&header), PAYLOAD.as_bytes(), at(1_699_990_000))
            .is_ok());
    }

    #[test]
    fn any_of_several_secrets_verifies_during_rotation() {
        let v = verifier(&["whsec_new", "whsec_test_secret"]);
        let header = format!("t=1700000000,v1={GOOD}");
        assert!(v
            .verify(Some(&header), PAYLOAD.as_bytes(), at(1_700_000_000))
            .is_ok());
        let retired = verifier(&["whsec_new"]);
        assert_eq!(
            retired
                .verify(Some(&header), PAYLOAD.as_bytes(), at(1_700_000_000))
                .unwrap_err(),
            VerifyError::NoMatch
        );
    }

    #[test]
    fn a_changed_byte_in_the_body_fails() {
        let v = verifier(&["whsec_test_secret"]);
        let header = format!("t=1700000000,v1={GOOD}");
        let tampered = PAYLOAD.replace("2000", "2001");
        assert_eq!(
            v.verify(Some(&header), tampered.as_bytes(), at(1_700_000_000))
                .unwrap_err(),
            VerifyError::NoMatch
        );
    }

    #[test]
    fn missing_and_malformed_headers_are_told_apart() {
        let v = verifier(&["whsec_test_secret"]);
        let now = at(1_700_000_000);
        assert_eq!(
            v.verify(None, b"{}", now).unwrap_err(),
            VerifyError::MissingHeader
        );
        assert_eq!(
            v.verify(Some("v1=abc"), b"{}", now).unwrap_err(),
            VerifyError::MalformedHeader
        );
        assert_eq!(
            v.verify(Some("t=soon,v1=abc"), b"{}", now).unwrap_err(),
            VerifyError::MalformedHeader
        );
    }

    #[test]
    fn the_signed_timestamp_text_is_what_is_hashed() {
        // A sender that pads the timestamp signs "0017…" and must be checked as such.
        let secret = Secret::new("s");
        let mut mac = HmacSha256::new_from_slice(b"s").unwrap();
        mac.update(b"01700000000.{}");
        let sig = hex::encode(mac.finalize().into_bytes());
        let v = SignatureVerifier::new(&[secret], DEFAULT_TOLERANCE);
        assert!(v
            .verify(
                Some(&format!("t=01700000000,v1={sig}")),
                b"{}",
                at(1_700_000_000)
            )
            .is_ok());
    }

    #[test]
    fn debug_output_hides_the_secrets() {
        let v = verifier(&["whsec_test_secret"]);
        assert!(!format!("{v:?}").contains("whsec"));
    }
}
