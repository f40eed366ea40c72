//! What `SignatureVerifier::verify` costs on top of the HMAC it cannot avoid.
//!
//! Both functions hash the same `"{t}.{body}"` bytes for a 2 KB event, so the difference
//! between them is the verifier's own overhead: parsing the header, hex-decoding the `v1`
//! candidate, cloning the keyed MAC state and the constant-time comparison. The target is
//! a verifier no slower than 1.2 × the raw HMAC.
//!
//! Run with `cargo bench -p psp-core --bench verify`.

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hmac::{Hmac, Mac};
use psp_core::signature::{sign_header, SignatureVerifier, DEFAULT_TOLERANCE};
use psp_core::Secret;
use sha2::Sha256;

const SECRET: &str = "whsec_bench_4f1c2a9d8e7b6a5f4e3d2c1b0a998877";
const TIMESTAMP: i64 = 1_700_000_000;
const BODY_LEN: usize = 2048;

/// A mock PSP event padded to exactly [`BODY_LEN`] bytes through its `description`, so the
/// hashed bytes look like a real delivery rather than a block of zeros (the hash does not
/// care, but a reader comparing with production payloads should recognise it).
fn event_body() -> Vec<u8> {
    let head = concat!(
        r#"{"id":"mevt_8f14e45fceea167a5a36dedd4bea2543","object":"event","#,
        r#""type":"payment.succeeded","created":1700000000,"data":{"object":{"#,
        r#""id":"mpay_c9f0f895fb98ab9159f51fd0297e236d","object":"payment","#,
        r#""status":"succeeded","amount":12345,"currency":"SEK","#,
        r#""cart_id":"7d2c6f0e-3b1a-4c5d-9e8f-0a1b2c3d4e5f","description":""#
    );
    let tail = r#""}}}"#;
    let filler = "Order 1042: 2 x Linen shirt, 1 x Wool scarf; ship to Storgatan 12, Lund. ";
    let mut body = String::with_capacity(BODY_LEN);
    body.push_str(head);
    let room = BODY_LEN - head.len() - tail.len();
    body.extend(filler.chars().cycle().take(room));
    body.push_str(tail);
    assert_eq!(
        body.len(),
        BODY_LEN,
        "the filler is ASCII, so chars are bytes"
    );
    body.into_bytes()
}

fn verify_2kb(c: &mut Criterion) {
    let secret = Secret::new(SECRET);
    let body = event_body();
    let header = sign_header(&secret, TIMESTAMP, &body);
    let verifier = SignatureVerifier::new(&[secret], DEFAULT_TOLERANCE);
    // A fixed "now" just after the signature, so no run of the bench is ever stale.
    let now = UNIX_EPOCH + Duration::from_secs(TIMESTAMP as u64 + 1);

    // The raw side hashes the very bytes the verifier hashes, prepared once, so that it
    // measures HMAC-SHA256 and nothing else.
    let mut signed = format!("{TIMESTAMP}.").into_bytes();
    signed.extend_from_slice(&body);

    // Both sides must agree, or the comparison would be between different amounts of work.
    assert!(verifier.verify(Some(&header), &body, now).is_ok());
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&signed);
    assert!(header.ends_with(&hex::encode(mac.finalize().into_bytes())));

    let mut group = c.benchmark_group("verify_2kb");
    group.throughput(Throughput::Bytes(BODY_LEN as u64));
    group.bench_function("verifier", |b| {
        b.iter(|| {
            let verified = verifier.verify(
                Some(black_box(header.as_str())),
                black_box(body.as_slice()),
                black_box::<SystemTime>(now),
            );
            black_box(verified.is_ok())
        })
    });
    group.bench_function("raw_hmac", |b| {
        b.iter(|| {
            let mut mac =
                Hmac::<Sha256>::new_from_slice(black_box(SECRET.as_bytes())).expect("any key");
            mac.update(black_box(signed.as_slice()));
            black_box(mac.finalize().into_bytes())
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // Short, so `cargo bench` stays well under a minute on a two-core machine; the two
    // functions differ by far more than the noise this leaves.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = verify_2kb
}
criterion_main!(benches);
