//! The requests: mock PSP events, each unique and signed, all built before the clock starts.

use bytes::Bytes;
use hyper::header::HeaderValue;
use psp_core::signature::{sign_header, unix_now};
use psp_core::Secret;
use uuid::Uuid;

/// One signed delivery, ready to send.
#[derive(Debug, Clone)]
pub(crate) struct Signed {
    pub(crate) body: Bytes,
    pub(crate) signature: HeaderValue,
}

/// A `payment.created` event in the mock PSP's format, with fresh ids, padded to at least
/// `min_size` bytes.
///
/// `payment.created` is verified and recorded by the gateway but asks it for no further
/// work, so a run measures verification plus the durable record and not Hantera. The
/// padding is JSON whitespace before the closing brace: it changes no field, so no parser
/// (however strict about unknown fields or trailing bytes) reads the event differently.
pub(crate) fn event_body(created: i64, min_size: usize) -> String {
    let event = Uuid::new_v4().simple();
    let payment = Uuid::new_v4().simple();
    let cart = Uuid::new_v4();
    let mut body = format!(
        concat!(
            r#"{{"id":"mevt_{event}","object":"event","type":"payment.created","#,
            r#""created":{created},"data":{{"object":{{"id":"mpay_{payment}","#,
            r#""object":"payment","status":"pending","amount":12345,"currency":"SEK","#,
            r#""cart_id":"{cart}"}}}}"#,
        ),
        event = event,
        created = created,
        payment = payment,
        cart = cart,
    );
    let pad = min_size.saturating_sub(body.len() + 1);
    body.extend(std::iter::repeat_n(' ', pad));
    body.push('}');
    body
}

/// Builds and signs `count` deliveries with `secret`, all stamped with the current time.
///
/// Signing happens here, before any timing, so the figures measure the server and not the
/// client's HMAC.
pub(crate) fn build_load(secret: &Secret, count: usize, min_size: usize) -> Vec<Signed> {
    let now = unix_now();
    (0..count)
        .map(|_| {
            let body = event_body(now, min_size);
            let header = sign_header(secret, now, body.as_bytes());
            Signed {
                body: Bytes::from(body),
                signature: HeaderValue::from_str(&header)
                    .expect("a signature header is ASCII: t=<digits>,v1=<hex>"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::SystemTime;

    use psp_core::signature::{SignatureVerifier, DEFAULT_TOLERANCE};

    use super::*;

    #[test]
    fn each_event_is_a_unique_mock_payment_created_of_the_requested_size() {
        let secret = Secret::new("whsec_loadgen_test");
        let load = build_load(&secret, 50, 512);
        let mut ids = HashSet::new();
        for signed in &load {
            assert_eq!(signed.body.len(), 512);
            let event: serde_json::Value = serde_json::from_slice(&signed.body).unwrap();
            assert_eq!(event["object"], "event");
            assert_eq!(event["type"], "payment.created");
            let id = event["id"].as_str().unwrap();
            let hex = id.strip_prefix("mevt_").unwrap();
            assert_eq!(hex.len(), 32);
            assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
            assert!(ids.insert(id.to_owned()), "event ids must not repeat");
            let payment = &event["data"]["object"];
            assert!(payment["id"].as_str().unwrap().starts_with("mpay_"));
            assert_eq!(payment["status"], "pending");
            assert_eq!(payment["currency"], "SEK");
            assert!(Uuid::parse_str(payment["cart_id"].as_str().unwrap()).is_ok());
        }
    }

    #[test]
    fn a_size_below_the_natural_length_leaves_the_event_unpadded() {
        let body = event_body(1_700_000_000, 0);
        assert!(body.len() > 200 && body.ends_with("}}}"), "{body}");
        assert!(serde_json::from_str::<serde_json::Value>(&body).is_ok());
    }

    #[test]
    fn every_signature_verifies_with_the_gateways_verifier() {
        let secret = Secret::new("whsec_loadgen_test");
        let verifier = SignatureVerifier::new(std::slice::from_ref(&secret), DEFAULT_TOLERANCE);
        for signed in build_load(&secret, 20, 300) {
            let header = signed.signature.to_str().unwrap();
            assert!(verifier
                .verify(Some(header), &signed.body, SystemTime::now())
                .is_ok());
        }
    }
}
