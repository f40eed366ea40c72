//! Fuzzing the signature header parser and verifier (`t=…,v1=…`): arbitrary headers and
//! bodies, and valid headers with random mutations. No input panics, and the verdict is
//! the one the scheme gives: a header verifies only with a matching `v1` over the exact
//! body and timestamp, within the tolerance. Sizes are bounded, so every case is a few
//! HMACs at most. `PSP_FUZZ_CASES` runs more cases.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use psp_core::signature::{compute_signature, sign_header};
use psp_core::{Secret, SignatureVerifier, VerifyError};
use testkit::fuzz;

const TOLERANCE: Duration = Duration::from_secs(300);

fn verifier() -> SignatureVerifier {
    SignatureVerifier::new(
        &[Secret::new("whsec_old"), Secret::new("whsec_current")],
        TOLERANCE,
    )
}

/// The time `unix` seconds after the epoch, or the epoch when the platform cannot hold it.
fn at(unix: i64) -> SystemTime {
    let d = Duration::from_secs(unix.unsigned_abs());
    if unix >= 0 {
        UNIX_EPOCH.checked_add(d)
    } else {
        UNIX_EPOCH.checked_sub(d)
    }
    .unwrap_or(UNIX_EPOCH)
}

/// The clock as the verifier reads it: whole seconds since the epoch, 0 before it.
fn seen(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A header element that is not a good `v1`: other schemes, junk, empty parts, spaces.
fn noise() -> impl Strategy<Value = String> {
    prop_oneof![
        fuzz::short_text(),
        "[a-z0-9]{0,3}=[ -~]{0,20}",
        "v0=[0-9a-f]{64}",
        "v1=[0-9a-fA-F]{0,70}",
        "v1=[^,]{0,20}",
        Just(String::new()),
        Just(" ".to_string()),
        Just("=".to_string()),
        Just("t=".to_string()),
        Just("t=9223372036854775808".to_string()),
    ]
}

/// Timestamps at and around the interesting ends.
fn timestamp() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        Just(i64::MIN),
        Just(i64::MAX),
        Just(0i64),
        -1_000i64..1_000,
        1_600_000_000i64..1_900_000_000,
    ]
}

proptest! {
    #![proptest_config(fuzz::config())]

    #[test]
    fn arbitrary_headers_and_bodies_never_panic_and_never_verify(
        header in proptest::option::of("[ -~]{0,300}|\\PC{0,100}"),
        body in fuzz::bytes(2048),
        now in timestamp(),
    ) {
        let result = verifier().verify(header.as_deref(), &body, at(now));
        prop_assert!(result.is_err());
        if header.is_none() {
            prop_assert_eq!(result.unwrap_err(), VerifyError::MissingHeader);
        }
    }

    #[test]
    fn a_valid_header_verifies_exactly_when_its_timestamp_is_within_the_tolerance(
        t in timestamp(),
        now in timestamp(),
        body in fuzz::bytes(1024),
        secret in prop_oneof![Just("whsec_old"), Just("whsec_current")],
    ) {
        let header = sign_header(&Secret::new(secret), t, &body);
        let result = verifier().verify(Some(&header), &body, at(now));
        let stale = i128::from(seen(at(now))) - i128::from(t) > i128::from(TOLERANCE.as_secs());
        match result {
            Ok(verified) => {
                prop_assert!(!stale, "a stale timestamp {} at {} verified", t, now);
                prop_assert_eq!(verified.timestamp(), t);
                prop_assert_eq!(verified.bytes(), &body[..]);
            }
            Err(e) => {
                prop_assert_eq!(e, VerifyError::Stale);
                prop_assert!(stale, "a fresh timestamp {} at {} was refused", t, now);
            }
        }
    }

    #[test]
    fn noise_around_a_valid_signature_does_not_stop_it_verifying(
        before in proptest::collection::vec(noise(), 0..4),
        after in proptest::collection::vec(noise(), 0..4),
        body in fuzz::bytes(512),
    ) {
        let now = 1_750_000_000;
        let signature = compute_signature(&Secret::new("whsec_current"), now, &body);
        // Every `t` in the noise comes before the real one; the last `t` is the one used.
        let mut parts: Vec<String> = before;
        parts.push(format!("t={now}"));
        parts.extend(
            after
                .into_iter()
                .filter(|p| !p.split(',').any(|q| q.trim().starts_with("t="))),
        );
        parts.insert(parts.len() / 2, format!("v1={signature}"));
        let header = parts.join(",");
        let result = verifier().verify(Some(&header), &body, at(now));
        prop_assert!(result.is_ok(), "{:?}: {:?}", header, result);
    }

    #[test]
    fn any_change_to_a_signed_delivery_is_refused(
        body in fuzz::bytes(512),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
        which in 0usize..3,
    ) {
        let now = 1_750_000_000i64;
        let secret = Secret::new("whsec_current");
        let signature = compute_signature(&secret, now, &body);
        let (header, body) = match which {
            // A changed body.
            0 if !body.is_empty() => {
                let mut body = body;
                let i = flip.index(body.len());
                body[i] ^= 1 << bit;
                (format!("t={now},v1={signature}"), body)
            }
            // A changed signature digit.
            1 => {
                let mut sig = signature.into_bytes();
                let i = flip.index(sig.len());
                sig[i] = if sig[i] == b'0' { b'1' } else { b'0' };
                (format!("t={now},v1={}", String::from_utf8(sig).unwrap()), body)
            }
            // A changed timestamp (the signature covers its exact text).
            _ => (format!("t={},v1={signature}", now - 1 - i64::from(bit)), body),
        };
        let result = verifier().verify(Some(&header), &body, at(now));
        prop_assert_eq!(result.err(), Some(VerifyError::NoMatch));
    }
}
