//! The HTTP/1 server under the router: the accept loop, a cap on connections, the
//! timeouts that keep slow and idle clients from holding them, and a shutdown with a
//! deadline.
//!
//! Architecture invariant: a connection is only held open by a request that is being
//! served. Until its headers are complete a request gets `header_read_timeout` (counted
//! from the connection's start for the first request, so a silent connection counts too,
//! and from its first byte for later ones); a keep-alive connection waits
//! `idle_timeout` for its next request, and is closed at once when the connection cap is
//! reached. On shutdown, connections with no request in flight
//! (a half-sent one included) are closed at once, the others finish their request, and
//! whatever still runs at the deadline is cut off.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::config::ServerConfig;
use crate::metrics::Metrics;

/// The limits of one listener.
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    /// Longest wait for a request's headers.
    pub header_read_timeout: Duration,
    /// Longest wait of a keep-alive connection for its next request.
    pub idle_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl ConnLimits {
    /// The limits `[server]` configures.
    pub fn from_config(server: &ServerConfig) -> Self {
        Self {
            header_read_timeout: Duration::from_millis(server.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(server.idle_timeout_ms),
            max_connections: server.max_connections,
        }
    }
}

/// Tells [`serve`] to stop: `Some(deadline)` stops accepting, and connections still
/// serving a request at the deadline are cut off.
pub type Stop = watch::Receiver<Option<Instant>>;

/// Serves `app` on `listener` until `stop` says so, then drains. Returns once every
/// connection has ended, at the deadline at the latest.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    mut stop: Stop,
    metrics: Option<Arc<Metrics>>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let pressure = Arc::new(Pressure::default());
    let mut connections = JoinSet::new();
    let mut at_cap_logged = false;
    let deadline = loop {
        if let Some(deadline) = *stop.borrow() {
            break deadline;
        }
        // Nobody can tell us to stop any more: stop now rather than spin on `changed`.
        if stop.has_changed().is_err() {
            break Instant::now();
        }
        // A free slot first: connections over the cap wait in the kernel's backlog rather
        // than being accepted and starved.
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => {
                at_cap_logged = false;
                permit
            }
            Err(_) => {
                if !at_cap_logged {
                    at_cap_logged = true;
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "server.max_connections reached: idle keep-alive connections are closed, new connections wait"
                    );
                }
                pressure.set(true);
                let waited = tokio::select! {
                    permit = slots.clone().acquire_owned() => permit.ok(),
                    _ = stop.changed() => None,
                    Some(_) = connections.join_next() => None,
                };
                pressure.set(false);
                match waited {
                    Some(permit) => permit,
                    None => continue,
                }
            }
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => continue,
            Some(_) = connections.join_next() => continue,
        };
        let (stream, remote) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = Connection {
            app: app.clone(),
            limits,
            stop: stop.clone(),
            pressure: pressure.clone(),
            metrics: metrics.clone(),
        };
        connections.spawn(async move {
            conn.run(stream, remote).await;
            drop(permit);
        });
    };
    drop(listener);
    let open = connections.len();
    if open > 0 {
        tracing::info!(open, "waiting for open connections to finish");
    }
    let drained = tokio::time::timeout_at(deadline.into(), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            cut_off = connections.len(),
            "shutdown deadline reached: connections still serving a request are closed"
        );
        connections.shutdown().await;
    }
}

struct Connection {
    app: Router,
    limits: ConnLimits,
    stop: Stop,
    pressure: Arc<Pressure>,
    metrics: Option<Arc<Metrics>>,
}

/// Whether the accept loop waits for a free slot. While it does, keep-alive connections
/// waiting for a next request close to make room (their clients reconnect when they need
/// to), rather than holding slots until their idle timeout.
#[derive(Default)]
struct Pressure {
    waiting: std::sync::atomic::AtomicBool,
    rung: Notify,
}

impl Pressure {
    fn set(&self, waiting: bool) {
        self.waiting
            .store(waiting, std::sync::atomic::Ordering::SeqCst);
        if waiting {
            self.rung.notify_waiters();
        }
    }

    fn on(&self) -> bool {
        self.waiting.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Connection {
    async fn run(mut self, stream: TcpStream, remote: SocketAddr) {
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched {
            inner: stream,
            activity: activity.clone(),
        });
        let app = self.app.clone();
        let requests = activity.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let guard = requests.request_started();
            let mut req = req.map(Body::new);
            req.extensions_mut().insert(ConnectInfo(remote));
            let app = app.clone();
            async move {
                let resp = app.oneshot(req).await?;
                Ok::<_, Infallible>(resp.map(|body| {
                    Body::new(Served {
                        inner: body,
                        _guard: guard,
                    })
                }))
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        // Our own watch below times header reads and idleness; hyper's timer would
        // count keep-alive waits against the header timeout.
        builder.keep_alive(true).header_read_timeout(None);
        let conn = builder.serve_connection(io, service);
        tokio::pin!(conn);
        let _open = self.metrics.clone().map(OpenConnection::new);
        let mut draining = false;
        let closed_by = loop {
            // Registered before the check, so a ring between the two is not missed.
            let rung = self.pressure.rung.notified();
            if self.pressure.on() && activity.between_requests() {
                tracing::debug!(%remote, "closing an idle keep-alive connection to make room");
                break Some("idle_at_capacity");
            }
            let deadline = activity.deadline(&self.limits);
            let wait = async {
                match deadline {
                    Some((at, _)) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%remote, error = %e, "connection ended with an error");
                    }
                    break None;
                }
                _ = wait => {
                    // The state may have moved on since the deadline was computed.
                    if let Some((at, why)) = activity.deadline(&self.limits) {
                        if Instant::now() >= at {
                            tracing::debug!(%remote, reason = why, "closing a connection");
                            break Some(why);
                        }
                    }
                }
                _ = activity.changed.notified() => {}
                // The check is at the top of the loop.
                _ = rung => {}
                _ = self.stop.changed(), if !draining => {
                    draining = true;
                    if !activity.busy() {
                        break Some("shutdown");
                    }
                    // Finish the request in flight, then close.
                    conn.as_mut().graceful_shutdown();
                }
            }
        };
        if let (Some(m), Some(reason)) = (&self.metrics, closed_by) {
            m.connection_closed_by_server(reason);
        }
    }
}

/// Counts a connection in the open-connections gauge while it lives, also when its task
/// is aborted at the shutdown deadline.
struct OpenConnection(Arc<Metrics>);

impl OpenConnection {
    fn new(metrics: Arc<Metrics>) -> Self {
        metrics.connections_open(1);
        Self(metrics)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections_open(-1);
    }
}

/// What a connection is doing, shared by its socket, its requests and its watch.
struct Activity {
    state: Mutex<ActivityState>,
    /// Woken when a request starts or ends, or the first byte of a request arrives.
    changed: Notify,
}

struct ActivityState {
    in_flight: usize,
    /// When the connection started, or its last response ended.
    waiting_since: Instant,
    /// When the first byte of the next request arrived.
    head_started: Option<Instant>,
    served: u64,
}

impl Activity {
    fn new() -> Self {
        Self {
            state: Mutex::new(ActivityState {
                in_flight: 0,
                waiting_since: Instant::now(),
                head_started: None,
                served: 0,
            }),
            changed: Notify::new(),
        }
    }

    fn busy(&self) -> bool {
        self.state.lock().in_flight > 0
    }

    /// Whether the connection served a request and waits for the next with nothing of it
    /// received: closing it loses nothing.
    fn between_requests(&self) -> bool {
        let s = self.state.lock();
        s.in_flight == 0 && s.served > 0 && s.head_started.is_none()
    }

    /// When the connection is closed unless something happens first, and why.
    fn deadline(&self, limits: &ConnLimits) -> Option<(Instant, &'static str)> {
        let s = self.state.lock();
        if s.in_flight > 0 {
            // The request timeout bounds handlers; a stream (server-sent events) may
            // rightly last.
            None
        } else if s.served == 0 {
            Some((
                s.waiting_since + limits.header_read_timeout,
                "header_timeout",
            ))
        } else if let Some(started) = s.head_started {
            Some((started + limits.header_read_timeout, "header_timeout"))
        } else {
            Some((s.waiting_since + limits.idle_timeout, "idle_timeout"))
        }
    }

    fn bytes_read(&self) {
        let mut s = self.state.lock();
        if s.in_flight == 0 && s.head_started.is_none() {
            s.head_started = Some(Instant::now());
            drop(s);
            self.changed.notify_one();
        }
    }

    fn request_started(self: &Arc<Self>) -> RequestGuard {
        {
            let mut s = self.state.lock();
            s.in_flight += 1;
            s.head_started = None;
        }
        self.changed.notify_one();
        RequestGuard(self.clone())
    }
}

/// Held by a response body until hyper has sent it (or given up on it).
struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        {
            let mut s = self.0.state.lock();
            s.in_flight = s.in_flight.saturating_sub(1);
            s.served += 1;
            if s.in_flight == 0 {
                s.waiting_since = Instant::now();
            }
        }
        self.0.changed.notify_one();
    }
}

/// A response body that ends its request's [`RequestGuard`] when dropped.
struct Served {
    inner: Body,
    _guard: RequestGuard,
}

impl hyper::body::Body for Served {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, noting when a request's first byte arrives.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
