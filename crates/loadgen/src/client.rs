//! The load: `concurrency` workers, each with one keep-alive HTTP/1.1 connection, taking
//! the next request index from a shared counter until the requests or the time run out.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::{JoinHandle, JoinSet};

use crate::events::Signed;
use crate::target::Target;

/// At most this many failure descriptions are kept: enough to see what went wrong without
/// printing twenty thousand identical lines.
const FAILURE_SAMPLES: usize = 5;

/// What one run against one target produced.
#[derive(Debug, Default)]
pub(crate) struct RunResult {
    /// Latency of every request that got a complete response, whatever its status.
    pub(crate) latencies: Vec<Duration>,
    /// Responses with a 2xx status.
    pub(crate) ok: usize,
    /// Non-2xx responses plus requests lost to a connection error.
    pub(crate) failures: usize,
    /// The first few failures, described.
    pub(crate) samples: Vec<String>,
    /// Whether `max_seconds` ran out before every request was answered.
    pub(crate) cut_short: bool,
    /// From the first request to the last answer (or the deadline).
    pub(crate) elapsed: Duration,
}

impl RunResult {
    fn merge(&mut self, other: RunResult) {
        self.latencies.extend(other.latencies);
        self.ok += other.ok;
        self.failures += other.failures;
        self.cut_short |= other.cut_short;
        let room = FAILURE_SAMPLES.saturating_sub(self.samples.len());
        self.samples.extend(other.samples.into_iter().take(room));
    }

    fn fail(&mut self, what: String) {
        self.failures += 1;
        self.note(what);
    }

    fn note(&mut self, what: String) {
        if self.samples.len() < FAILURE_SAMPLES {
            self.samples.push(what);
        }
    }
}

/// Everything the workers share.
struct Shared {
    target: Target,
    header: HeaderName,
    load: Vec<Signed>,
    next: AtomicUsize,
    deadline: tokio::time::Instant,
}

impl Shared {
    fn request(&self, index: usize) -> Request<Full<Bytes>> {
        let signed = &self.load[index];
        let mut request = Request::new(Full::new(signed.body.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.target.path.clone();
        let headers = request.headers_mut();
        headers.insert(
            HOST,
            HeaderValue::from_str(&self.target.authority).expect("an authority is a valid header"),
        );
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(self.header.clone(), signed.signature.clone());
        request
    }
}

/// Sends every delivery in `load` to `target` over `concurrency` connections, stopping at
/// `max_time` with whatever has been answered by then.
pub(crate) async fn fire(
    target: &Target,
    header: &HeaderName,
    load: Vec<Signed>,
    concurrency: usize,
    max_time: Duration,
) -> Result<RunResult> {
    let concurrency = concurrency.clamp(1, load.len().max(1));
    // Connections are opened before the clock starts: the figures are for requests on
    // warm keep-alive connections, as a PSP's retrying sender mostly has.
    let mut connections = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        connections.push(
            connect(target.addr)
                .await
                .with_context(|| format!("cannot connect to {}", target.addr))?,
        );
    }
    let start = Instant::now();
    let shared = Arc::new(Shared {
        target: target.clone(),
        header: header.clone(),
        load,
        next: AtomicUsize::new(0),
        deadline: tokio::time::Instant::from_std(start + max_time),
    });
    let mut workers = JoinSet::new();
    for connection in connections {
        workers.spawn(worker(connection, Arc::clone(&shared)));
    }
    let mut result = RunResult::default();
    while let Some(done) = workers.join_next().await {
        result.merge(done.context("a load worker panicked")?);
    }
    result.elapsed = start.elapsed();
    Ok(result)
}

async fn worker(mut connection: Connection, shared: Arc<Shared>) -> RunResult {
    let mut result = RunResult::default();
    loop {
        if tokio::time::Instant::now() >= shared.deadline {
            result.cut_short = true;
            break;
        }
        let index = shared.next.fetch_add(1, Ordering::Relaxed);
        if index >= shared.load.len() {
            break;
        }
        let request = shared.request(index);
        let began = Instant::now();
        let exchanged =
            tokio::time::timeout_at(shared.deadline, exchange(&mut connection.sender, request))
                .await;
        match exchanged {
            Err(_elapsed) => {
                // The request in flight is abandoned, neither success nor failure; the
                // report counts it among the unanswered.
                result.cut_short = true;
                break;
            }
            Ok(Ok((status, body))) => {
                result.latencies.push(began.elapsed());
                if status.is_success() {
                    result.ok += 1;
                } else {
                    let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
                    result.fail(format!("HTTP {status}: {text}"));
                }
            }
            Ok(Err(e)) => {
                result.fail(format!("connection error: {e:#}"));
                // The server closed or broke the connection; one fresh connection is tried
                // so that a single reset does not end this worker's share of the load.
                match connect(shared.target.addr).await {
                    Ok(fresh) => connection = fresh,
                    Err(e) => {
                        // Noted but not counted: it is not a request. The other workers
                        // take this one's share, or the report shows it unanswered.
                        result.note(format!("reconnect failed, worker stopped: {e:#}"));
                        break;
                    }
                }
            }
        }
    }
    result
}

async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, Bytes)> {
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    // Latency ends when the whole body is in, not at the status line.
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// One keep-alive connection: the handle to send on and the task that drives it.
struct Connection {
    sender: SendRequest<Full<Bytes>>,
    driver: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // A request abandoned at the deadline leaves its driver waiting for an answer that
        // may never come; aborting it closes the socket instead of leaking the task.
        self.driver.abort();
    }
}

async fn connect(addr: SocketAddr) -> Result<Connection> {
    let stream = TcpStream::connect(addr).await?;
    // Small requests and answers: Nagle's algorithm would add tens of milliseconds.
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    // The driver ends when the sender is dropped; its errors reach the sender as failed
    // requests, where they are counted.
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(Connection { sender, driver })
}
