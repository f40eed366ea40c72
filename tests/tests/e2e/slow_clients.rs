//! Slow, silent and idle clients cannot hold the gateway: half-sent requests are closed
//! after the header timeout while everyone else is served, idle keep-alive connections
//! after the idle timeout, connections beyond the cap wait for a free slot, and SIGTERM
//! ends the process by the shutdown deadline whatever is still open.

use std::time::{Duration, Instant};

use serde_json::json;
use tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A request whose headers stop halfway, as a slowloris client sends it.
const HALF_SENT: &[u8] = b"POST /webhooks/mock HTTP/1.1\r\nHost: gateway\r\nContent-Type: appli";

/// A raw keep-alive connection that has been served one request.
async fn keep_alive_after_one_request(gateway: &str) -> tokio::net::TcpStream {
    let mut socket = raw_connect(gateway).await;
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains(r#"{"status":"ok"}"#) {
        let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buf))
            .await
            .expect("the answer comes")
            .expect("read");
        assert!(n > 0, "closed before answering");
        seen.extend_from_slice(&buf[..n]);
    }
    socket
}

/// The open HTTP connections the gateway counts.
async fn open_connections(gateway: &str) -> u64 {
    let text = http()
        .get(format!("{gateway}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|l| l.strip_prefix("psp_gateway_http_connections "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the open-connections gauge")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_half_sent_requests_block_neither_health_nor_webhooks_and_are_closed_after_the_header_timeout(
) {
    let sandbox = start_sandbox();
    let files = GatewayFiles::new(&sandbox.url, "");
    let gateway = files.start(&[("PSP_SERVER__HEADER_READ_TIMEOUT_MS", "4000")]);
    let mut sockets = Vec::new();
    for _ in 0..300 {
        let mut socket = raw_connect(&gateway.url).await;
        socket.write_all(HALF_SENT).await.expect("write");
        sockets.push(socket);
    }
    let held_since = Instant::now();

    let health = http()
        .get(format!("{}/healthz", gateway.url))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    let body = mock_event("mevt_slow_1", "payment.created", &json!({ "id": "mpay_x" }));
    let header = mock_signature(MOCK_SECRET, &body);
    let webhook = post_webhook(&gateway.url, &header, body).await;
    assert_eq!(webhook.status(), 200, "a signed webhook is served");
    let answered_in = held_since.elapsed();
    assert!(
        answered_in < Duration::from_secs(3),
        "health and a webhook took {answered_in:?} while 300 half-sent requests were held"
    );
    assert!(
        !closed_within(&mut sockets[0], Duration::from_millis(10)).await,
        "the half-sent requests were still held while the others were served"
    );

    for (i, socket) in sockets.iter_mut().enumerate() {
        assert!(
            closed_within(socket, Duration::from_secs(15)).await,
            "half-sent request {i} is still open {:?} after it was sent",
            held_since.elapsed()
        );
    }
    let closed_after = held_since.elapsed();
    assert!(
        closed_after >= Duration::from_millis(3500),
        "closed after {closed_after:?}, before the header timeout"
    );
    let metrics = http()
        .get(format!("{}/metrics", gateway.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            r#"psp_gateway_http_connections_closed_by_server_total{reason="header_timeout"} 300"#
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let sandbox = start_sandbox();
    let files = GatewayFiles::new(&sandbox.url, "");
    let gateway = files.start(&[
        ("PSP_SERVER__IDLE_TIMEOUT_MS", "1000"),
        ("PSP_SERVER__HEADER_READ_TIMEOUT_MS", "30000"),
    ]);
    let mut socket = keep_alive_after_one_request(&gateway.url).await;
    let answered = Instant::now();
    // Well before the 30 s header timeout: the idle timeout closed it.
    assert!(
        closed_within(&mut socket, Duration::from_secs(10)).await,
        "the idle keep-alive connection is still open"
    );
    assert!(answered.elapsed() >= Duration::from_millis(900));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_until_a_slot_frees() {
    let sandbox = start_sandbox();
    let files = GatewayFiles::new(&sandbox.url, "");
    let gateway = files.start(&[
        ("PSP_SERVER__MAX_CONNECTIONS", "20"),
        ("PSP_SERVER__HEADER_READ_TIMEOUT_MS", "3000"),
    ]);
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(raw_connect(&gateway.url).await);
    }
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(1000))
        .build()
        .unwrap();
    let refused = impatient
        .get(format!("{}/healthz", gateway.url))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a 21st connection was served while 20 were open: {refused:?}"
    );
    // The silent ones reach the header timeout and make room.
    let served = http()
        .get(format!("{}/healthz", gateway.url))
        .send()
        .await
        .expect("served once a slot is free");
    assert_eq!(served.status(), 200);
    for socket in &mut silent {
        assert!(closed_within(socket, Duration::from_secs(5)).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_make_room_when_the_cap_is_reached() {
    let sandbox = start_sandbox();
    let files = GatewayFiles::new(&sandbox.url, "");
    let gateway = files.start(&[
        ("PSP_SERVER__MAX_CONNECTIONS", "5"),
        ("PSP_SERVER__IDLE_TIMEOUT_MS", "60000"),
    ]);
    let mut idle = Vec::new();
    for _ in 0..5 {
        idle.push(keep_alive_after_one_request(&gateway.url).await);
    }
    let asked = Instant::now();
    let served = http()
        .get(format!("{}/healthz", gateway.url))
        .send()
        .await
        .expect("served");
    assert_eq!(served.status(), 200);
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "a new client waited {:?} for idle keep-alive connections",
        asked.elapsed()
    );
    let mut closed = 0;
    for socket in &mut idle {
        if closed_within(socket, Duration::from_millis(200)).await {
            closed += 1;
        }
    }
    assert!(closed >= 1, "no idle connection was closed to make room");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_half_sent_request_pending_exits_at_once() {
    let sandbox = start_sandbox();
    let files = GatewayFiles::new(&sandbox.url, "");
    let mut gateway = files.start(&[
        ("PSP_SERVER__HEADER_READ_TIMEOUT_MS", "60000"),
        ("PSP_SERVER__SHUTDOWN_DEADLINE_MS", "30000"),
    ]);
    let mut socket = raw_connect(&gateway.url).await;
    socket.write_all(HALF_SENT).await.unwrap();
    // The half-sent request and the metrics request itself.
    wait_for(
        "the gateway to hold the half-sent request",
        Duration::from_secs(10),
        || async { (open_connections(&gateway.url).await >= 2).then_some(()) },
    )
    .await;
    let asked = Instant::now();
    let status = tokio::task::block_in_place(|| gateway.terminate_within(Duration::from_secs(10)));
    let status = status.expect("the gateway is still running 10 s after SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "exiting took {:?}, as if the half-sent request were waited for",
        asked.elapsed()
    );
    assert!(closed_within(&mut socket, Duration::from_secs(1)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_request_stuck_upstream_exits_at_the_shutdown_deadline() {
    let hantera = Upstream::black_hole().await;
    let files = GatewayFiles::new(&hantera.url, "");
    let mut gateway = files.start(&[
        ("PSP_HANTERA__TIMEOUT_MS", "120000"),
        ("PSP_SERVER__REQUEST_TIMEOUT_MS", "120000"),
        ("PSP_SERVER__SHUTDOWN_DEADLINE_MS", "2000"),
    ]);
    let url = format!(
        "{}/ingress/commerce/carts/{}/payment/mock",
        gateway.url,
        uuid::Uuid::new_v4()
    );
    let stuck = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .json(&json!({}))
            .timeout(Duration::from_secs(60))
            .send()
            .await
    });
    wait_for(
        "the checkout to be waiting on Hantera",
        Duration::from_secs(10),
        || async { (hantera.connections() > 0).then_some(()) },
    )
    .await;
    let asked = Instant::now();
    let status = tokio::task::block_in_place(|| gateway.terminate_within(Duration::from_secs(15)));
    let took = asked.elapsed();
    let status = status.expect("the gateway is still running 15 s after SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    assert!(
        took >= Duration::from_millis(1800),
        "exited after {took:?}: the request in flight was not given the deadline"
    );
    assert!(
        took < Duration::from_secs(8),
        "exiting took {took:?}, past the 2 s deadline"
    );
    let answer = stuck.await.unwrap();
    assert!(
        answer.is_err(),
        "the stuck request was cut off, not answered: {answer:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_right_after_the_address_is_announced_stops_the_process_cleanly() {
    let sandbox = start_sandbox();
    let files = GatewayFiles::new(&sandbox.url, "");
    // The signal handlers are installed before the address is printed; a SIGTERM that
    // arrived before them would kill the process instead (no success status).
    for _ in 0..5 {
        let mut gateway = files.start(&[]);
        let status =
            tokio::task::block_in_place(|| gateway.terminate_within(Duration::from_secs(10)))
                .expect("the gateway is still running 10 s after SIGTERM");
        assert!(status.success(), "exit status {status:?}");
    }
}
