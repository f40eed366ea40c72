//! The bare hyper server the gateway is compared with: it reads the whole body and says 200.
//!
//! It runs on its own runtime with two worker threads on its own OS thread, so that, like
//! the gateway in its own process, it does not share the client's scheduler; the ratio
//! then compares servers rather than how two kinds of task interleave on one runtime.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use psp_core::SignatureVerifier;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Signature checking for the stand-in gateway of `--self-test`: the bare server plus the
/// gateway's own verifier, so a self-test proves that loadgen's signatures are accepted.
#[derive(Debug)]
pub(crate) struct Verify {
    pub(crate) header: HeaderName,
    pub(crate) verifier: SignatureVerifier,
}

/// A running server on `127.0.0.1:<ephemeral>`; dropping it stops it.
#[derive(Debug)]
pub(crate) struct BareServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BareServer {
    /// Starts a server; with `verify`, deliveries whose signature does not verify get 401.
    pub(crate) fn start(verify: Option<Verify>) -> Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .context("cannot bind the bare server to 127.0.0.1")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("bare-server")
            .enable_all()
            .build()
            .context("cannot start the bare server's runtime")?;
        let (shutdown, stop) = oneshot::channel();
        let verify = verify.map(Arc::new);
        // The runtime is moved into and dropped on this thread: dropping a runtime from
        // inside another runtime's task would panic.
        let thread = std::thread::Builder::new()
            .name("bare-server".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => serve(listener, verify, stop).await,
                        Err(e) => eprintln!("loadgen: bare server cannot listen: {e}"),
                    }
                });
            })
            .context("cannot start the bare server's thread")?;
        Ok(Self {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A URL for it with the webhook path a gateway would have.
    pub(crate) fn url(&self) -> String {
        format!("http://{}/webhooks/mock", self.addr)
    }
}

impl Drop for BareServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // Joining waits only for the accept loop to see the signal; open connections are
        // dropped with the runtime rather than drained.
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: TcpListener,
    verify: Option<Arc<Verify>>,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors, typically; a pause keeps the loop from
                        // spinning while connections close.
                        eprintln!("loadgen: bare server accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                // The responses are tiny; without NODELAY, Nagle would hold them back.
                let _ = stream.set_nodelay(true);
                let verify = verify.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(req, verify.clone()));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}

async fn handle(
    req: Request<Incoming>,
    verify: Option<Arc<Verify>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    // The whole body is read, as the gateway must before it can verify, so the baseline
    // pays for the same bytes on the wire.
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(respond(StatusCode::BAD_REQUEST, b"{}")),
    };
    if let Some(verify) = verify {
        let header = parts
            .headers
            .get(&verify.header)
            .and_then(|v| v.to_str().ok());
        if let Err(e) = verify.verifier.verify(header, &body, SystemTime::now()) {
            let reason = format!(r#"{{"error":"{e}"}}"#);
            return Ok(respond(StatusCode::UNAUTHORIZED, reason.as_bytes()));
        }
    }
    Ok(respond(StatusCode::OK, b"{}"))
}

fn respond(status: StatusCode, body: &[u8]) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
