//! Failures a fake injects into its API calls: a countdown per kind of fault, and the
//! answers that break the connection (a hang, an answer cut off after acting).

use std::io;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::Response;

/// How long a hanging call waits when the test set no duration: longer than the adapters'
/// default 10 s timeout, so the caller sees a timeout.
pub const DEFAULT_HANG_MS: u64 = 15_000;

/// Takes one fault from a countdown: whether this call gets it.
pub fn take(countdown: &mut u32) -> bool {
    if *countdown > 0 {
        *countdown -= 1;
        true
    } else {
        false
    }
}

/// A call that waits `wait`, then breaks the connection without acting or answering.
pub async fn hang(wait: Duration) -> Response {
    tokio::time::sleep(wait).await;
    broken(Response::new(Body::empty())).await
}

/// Turns a response into one whose body breaks off halfway: the status line and headers
/// may reach the client, the complete body never does, and the connection is dropped.
pub async fn broken(resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    // Without a length the body is sent chunked, and hyper ends the connection when the
    // stream fails, which the client sees as a truncated answer.
    parts.headers.remove(header::CONTENT_LENGTH);
    let chunks: Vec<Result<Bytes, io::Error>> = vec![
        Ok(bytes.slice(..bytes.len() / 2)),
        Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "injected fault: connection dropped",
        )),
    ];
    Response::from_parts(parts, Body::from_stream(futures::stream::iter(chunks)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_countdown_gives_its_faults_then_none() {
        let mut n = 2;
        assert!(take(&mut n));
        assert!(take(&mut n));
        assert!(!take(&mut n));
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn a_broken_answer_never_delivers_its_whole_body() {
        let resp = broken(Response::new(Body::from("0123456789"))).await;
        assert!(resp.headers().get(header::CONTENT_LENGTH).is_none());
        assert!(axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .is_err());
    }
}
