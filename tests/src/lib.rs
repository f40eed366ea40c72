//! Helpers for the end-to-end tests: start the real `psp-gateway` binary (as a gateway and
//! as a stand-alone sandbox), talk to it over HTTP, kill it, and wait for conditions.
//!
//! The binary is found next to the test executable's target folder (`target/<profile>/`),
//! or at `PSP_GATEWAY_BIN`, and refused when it was not built from the current source (see
//! [`binary`]). The README's test command builds it before the tests run.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use psp_core::Secret;
use serde_json::{json, Value};

/// The webhook secret the sandbox's mock PSP signs with, when no other is configured.
pub const MOCK_SECRET: &str = "whsec_mock_sandbox";
/// The admin token of test gateways.
pub const ADMIN_TOKEN: &str = "e2e-admin-token-0123456789";
/// The payment number prefix of test gateways.
pub const PREFIX: &str = "E2E-";

/// The path of the `psp-gateway` binary, checked once per test process to be built from
/// the current source.
///
/// The end-to-end tests must test this checkout, not whatever binary an earlier build left
/// in `target/`, and cargo does not build another package's binary for them. So the binary
/// is refused, with the command that fixes it, when cargo's record of what it was compiled
/// from (`psp-gateway.d`, beside it) names a file changed since, gone, or outside this
/// checkout. That costs one stat per source file, and it judges as cargo does (by the
/// same files and their times), so a rebuild always satisfies it. Building from here
/// instead would start a second cargo under the one running the tests, waiting on its lock,
/// and with other features than `cargo build --workspace --bins`, relinking the binary for
/// nothing. `scripts/test.sh` builds the binaries before `cargo test`, so CI passes the
/// check. `PSP_GATEWAY_BIN` names a binary to run as it is.
pub fn binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Ok(p) = std::env::var("PSP_GATEWAY_BIN") {
                return PathBuf::from(p);
            }
            // The test executable lives in target/<profile>/deps/; the binary in
            // target/<profile>/.
            let exe = std::env::current_exe().expect("current exe");
            let dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("target profile dir");
            let bin = dir.join("psp-gateway");
            let build = build_command(dir);
            assert!(
                bin.exists(),
                "{} is missing: run `{build}` first (scripts/test.sh does)",
                bin.display()
            );
            let checkout = Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("the workspace holds tests/");
            if let Some(why) = stale(&bin, checkout) {
                panic!(
                    "{} was not built from the current source: {why}. Run `{build}` first \
                     (scripts/test.sh does), or name a binary with PSP_GATEWAY_BIN",
                    bin.display()
                );
            }
            bin
        })
        .clone()
}

/// The command that builds the binary into the profile folder `dir`.
fn build_command(dir: &Path) -> String {
    match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "cargo build -p gateway --bin psp-gateway".into(),
        Some("release") => "cargo build --release -p gateway --bin psp-gateway".into(),
        Some(profile) => format!("cargo build --profile {profile} -p gateway --bin psp-gateway"),
    }
}

/// Why `bin` is not the build of the sources under `checkout`, if it is not: a file cargo
/// compiled it from that changed after it was built, is gone, or is not in `checkout`.
pub fn stale(bin: &Path, checkout: &Path) -> Option<String> {
    let built = match std::fs::metadata(bin).and_then(|m| m.modified()) {
        Ok(t) => t,
        Err(e) => return Some(format!("it cannot be read: {e}")),
    };
    let record = bin.with_extension("d");
    let Ok(deps) = std::fs::read_to_string(&record) else {
        return Some(format!(
            "cargo's record of its sources, {}, is missing",
            record.display()
        ));
    };
    let checkout = checkout
        .canonicalize()
        .unwrap_or_else(|_| checkout.to_path_buf());
    // `<binary>: <source> <source> …`, spaces in a path escaped as `\ `.
    let Some((_, sources)) = deps.lines().next().and_then(|l| l.split_once(": ")) else {
        return Some(format!("{} lists no sources", record.display()));
    };
    let mut paths = Vec::new();
    let mut path = String::new();
    let mut chars = sources.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => path.extend(chars.next()),
            ' ' => paths.push(std::mem::take(&mut path)),
            c => path.push(c),
        }
    }
    paths.push(path);
    for source in paths.iter().filter(|p| !p.is_empty()) {
        let source = checkout.join(source);
        let Ok(real) = source.canonicalize() else {
            return Some(format!("{} is gone", source.display()));
        };
        if !real.starts_with(&checkout) {
            return Some(format!(
                "it was built from {}, outside this checkout ({})",
                real.display(),
                checkout.display()
            ));
        }
        match std::fs::metadata(&real).and_then(|m| m.modified()) {
            Ok(changed) if changed > built => {
                return Some(format!("{} changed after it was built", real.display()))
            }
            Ok(_) => {}
            Err(e) => return Some(format!("{} cannot be read: {e}", real.display())),
        }
    }
    None
}

/// A child process killed when dropped.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    /// Its base URL.
    pub url: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Kills the process with SIGKILL, as a crash would, and waits for it to die.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().expect("wait")
    }

    /// Sends SIGTERM and waits at most `limit` for the process to exit: its status, or
    /// `None` if it is still running then (it is killed when dropped).
    pub fn terminate_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Spawns a command and waits for the line that starts with `marker` (then its URL).
pub fn spawn_with(mut cmd: Command, marker: &str) -> Proc {
    cmd.stderr(Stdio::inherit());
    spawn_piped(cmd, marker)
}

/// The stderr lines of a process, collected as they are written.
pub type Lines = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// Like [`spawn_with`], collecting the process's stderr (its log) instead of passing it
/// through, for tests that assert what was logged.
pub fn spawn_collecting_stderr(mut cmd: Command, marker: &str) -> (Proc, Lines) {
    cmd.stderr(Stdio::piped());
    let mut proc_ = spawn_piped(cmd, marker);
    let stderr = proc_.child.stderr.take().expect("stderr");
    let lines = Lines::default();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            sink.lock().expect("lines").push(line);
        }
    });
    (proc_, lines)
}

fn spawn_piped(mut cmd: Command, marker: &str) -> Proc {
    cmd.stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn psp-gateway");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let marker = marker.to_string();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !sent {
                if let Some(url) = line.strip_prefix(&marker) {
                    let _ = tx.send(url.trim().to_string());
                    sent = true;
                }
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(url) => Proc { child, url },
        Err(_) => {
            let _ = child.kill();
            let status = child.wait().ok();
            panic!("psp-gateway did not report its address (exit: {status:?})");
        }
    }
}

/// Starts `psp-gateway sandbox` on a free port.
pub fn start_sandbox() -> Proc {
    let mut cmd = Command::new(binary());
    cmd.args(["sandbox", "--listen", "127.0.0.1:0"]);
    spawn_with(cmd, "psp-gateway sandbox listening on ")
}

/// A gateway's files: its config and its database live in one temporary folder, so a
/// restarted gateway finds its state again.
#[derive(Debug)]
pub struct GatewayFiles {
    dir: tempfile::TempDir,
}

impl GatewayFiles {
    /// A config pointing at `sandbox` (as a real Hantera) with the mock provider, plus
    /// `extra` TOML lines. The mock is test-only, so its table allows it explicitly next to
    /// a real Hantera.
    pub fn new(sandbox_url: &str, extra: &str) -> Self {
        Self::with_store(sandbox_url, None, extra)
    }

    /// Like [`GatewayFiles::new`], with the store at `store_url` (PostgreSQL, shared by
    /// every gateway started on these files) instead of an SQLite file of their own.
    pub fn with_store(sandbox_url: &str, store_url: Option<&str>, extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = store_url
            .map(str::to_string)
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("gateway.db").display()));
        let config = format!(
            r#"
[server]
listen = "127.0.0.1:0"
admin_token = "{ADMIN_TOKEN}"
body_limit_bytes = 65536

[store]
url = "{db}"

[hantera]
base_url = "{sandbox_url}"
client_id = "psp-gateway"
client_secret = "sandbox-secret"
timeout_ms = 3000

[worker]
poll_interval_ms = 100
base_backoff_ms = 50
max_backoff_ms = 1000

[providers.mock]
webhook_secret = "{MOCK_SECRET}"
api_base = "{sandbox_url}/fakes/mock"
payment_number_prefix = "{PREFIX}"
allow_with_real_hantera = true
{extra}
"#,
            db = db
        );
        std::fs::write(dir.path().join("gateway.toml"), config).expect("write config");
        Self { dir }
    }

    /// The config file.
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("gateway.toml")
    }

    /// The SQLite database URL.
    pub fn db_url(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("gateway.db").display())
    }

    /// Starts a gateway on these files, with extra environment variables.
    pub fn start(&self, env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(binary());
        cmd.args(["serve", "--config"]).arg(self.config());
        cmd.env(
            "RUST_LOG",
            std::env::var("E2E_LOG").unwrap_or_else(|_| "error".into()),
        );
        for (k, v) in env {
            cmd.env(k, v);
        }
        spawn_with(cmd, "psp-gateway listening on ")
    }

    /// Starts a gateway on these files with its log (stderr, not a terminal) collected,
    /// with extra environment variables.
    pub fn start_logged(&self, env: &[(&str, &str)]) -> (Proc, Lines) {
        let mut cmd = Command::new(binary());
        cmd.args(["serve", "--config"]).arg(self.config());
        for (k, v) in env {
            cmd.env(k, v);
        }
        spawn_collecting_stderr(cmd, "psp-gateway listening on ")
    }

    /// Counts rows of a table in the gateway's database.
    pub async fn count(&self, table: &str) -> i64 {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&self.db_url())
            .await
            .expect("open the gateway's database");
        let n: (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut conn)
            .await
            .expect("count");
        n.0
    }
}

/// An HTTP client for tests (no redirects followed, short timeouts).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .expect("client")
}

/// Polls `check` until it returns `Some`, or panics with `what` after `limit`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GETs JSON.
pub async fn get_json(url: &str) -> Value {
    let resp = http()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    resp.json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
}

/// A storefront's view: creates a cart with `items` (product number, quantity) in the
/// sandbox and returns its id and rendered JSON.
pub async fn create_cart(sandbox: &str, items: &[(&str, i64)]) -> (String, Value) {
    let c = http();
    let created: Value = c
        .post(format!("{sandbox}/ingress/commerce/carts"))
        .json(&json!({ "profileKey": "default", "locale": "sv-SE" }))
        .send()
        .await
        .expect("create cart")
        .json()
        .await
        .expect("cart json");
    let cart_id = created["cartId"].as_str().expect("cartId").to_string();
    let mut cart = Value::Null;
    for (product, qty) in items {
        let resp = c
            .post(format!(
                "{sandbox}/ingress/commerce/carts/{cart_id}/add-item"
            ))
            .json(&json!({ "productNumber": product, "quantity": qty }))
            .send()
            .await
            .expect("add-item");
        assert!(resp.status().is_success(), "add-item: {}", resp.status());
        cart = resp.json().await.expect("cart json");
    }
    (cart_id, cart)
}

/// The first product of the sandbox catalog.
pub async fn a_product(sandbox: &str) -> String {
    let products = get_json(&format!("{sandbox}/sandbox/products")).await;
    products[0]["productNumber"]
        .as_str()
        .expect("productNumber")
        .to_string()
}

/// The cart as the Commerce ingress renders it.
pub async fn cart(sandbox: &str, cart_id: &str) -> Value {
    get_json(&format!("{sandbox}/ingress/commerce/carts/{cart_id}")).await
}

/// Waits until the cart is completed.
pub async fn wait_completed(sandbox: &str, cart_id: &str) -> Value {
    wait_for(
        "the cart to be completed",
        Duration::from_secs(30),
        || async {
            let c = cart(sandbox, cart_id).await;
            (c["cartState"] == "completed").then_some(c)
        },
    )
    .await
}

/// Starts a mock checkout through the gateway; returns the mock payment id.
pub async fn checkout(gateway: &str, cart_id: &str) -> String {
    let resp = http()
        .post(format!(
            "{gateway}/ingress/commerce/carts/{cart_id}/payment/mock"
        ))
        .json(&json!({ "returnUrl": "http://127.0.0.1:9/thanks" }))
        .send()
        .await
        .expect("checkout");
    let status = resp.status();
    let body: Value = resp.json().await.expect("checkout json");
    assert!(status.is_success(), "checkout: {status} {body}");
    body["paymentId"].as_str().expect("paymentId").to_string()
}

/// Approves a mock payment at the fake PSP as a customer would, with extra fields
/// (`amount_override`, `webhook: "skip"`, `card`).
pub async fn approve(sandbox: &str, payment_id: &str, extra: Value) -> Value {
    let mut body = json!({});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let resp = http()
        .post(format!(
            "{sandbox}/fakes/mock/v1/_test/payments/{payment_id}/approve"
        ))
        .bearer_auth("mock_sk_test")
        .json(&body)
        .send()
        .await
        .expect("approve");
    let status = resp.status();
    let v: Value = resp.json().await.expect("approve json");
    assert!(status.is_success(), "approve: {status} {v}");
    v
}

/// A mock PSP event body, in the fake's format.
pub fn mock_event(event_id: &str, event_type: &str, payment: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": event_id, "object": "event", "type": event_type,
        "created": psp_core::signature::unix_now(), "data": { "object": payment }
    }))
    .expect("json")
}

/// The `Mock-Signature` header for a body, signed now with `secret`.
pub fn mock_signature(secret: &str, body: &[u8]) -> String {
    psp_core::signature::sign_header(&Secret::new(secret), psp_core::signature::unix_now(), body)
}

/// Posts a signed webhook to the gateway.
pub async fn post_webhook(gateway: &str, header: &str, body: Vec<u8>) -> reqwest::Response {
    http()
        .post(format!("{gateway}/webhooks/mock"))
        .header("Mock-Signature", header)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .expect("webhook")
}

/// The sandbox's payments whose external reference is `psp_ref`.
pub async fn payments_for(sandbox: &str, psp_ref: &str) -> Vec<Value> {
    let all = get_json(&format!("{sandbox}/sandbox/payments")).await;
    let list = all
        .as_array()
        .cloned()
        .or_else(|| all["payments"].as_array().cloned())
        .unwrap_or_default();
    list.into_iter()
        .filter(|p| p["externalReference"] == psp_ref)
        .collect()
}

/// The sandbox's journal of actor batches.
pub async fn journal(sandbox: &str) -> Vec<Value> {
    let j = get_json(&format!("{sandbox}/sandbox/journal")).await;
    j.as_array()
        .cloned()
        .or_else(|| j["entries"].as_array().cloned())
        .unwrap_or_default()
}

/// The `host:port` of a base URL such as `http://127.0.0.1:8080`.
pub fn host_port(base_url: &str) -> &str {
    base_url.trim_start_matches("http://").trim_end_matches('/')
}

/// A raw TCP connection to a base URL, for clients that misbehave on purpose.
pub async fn raw_connect(base_url: &str) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(host_port(base_url))
        .await
        .unwrap_or_else(|e| panic!("connect to {base_url}: {e}"))
}

/// Whether the other side closed `socket` within `limit` (whatever it sent is discarded).
pub async fn closed_within(socket: &mut tokio::net::TcpStream, limit: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    let read_to_end = async {
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, read_to_end).await.is_ok()
}

/// A stand-in upstream (a PSP, Hantera) on a free port, stopped when dropped.
#[derive(Debug)]
pub struct Upstream {
    /// Its base URL.
    pub url: String,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    /// Answers every request with `status` and the JSON `body`, then closes.
    pub async fn answering(status: u16, body: &str) -> Upstream {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let response = format!(
            "HTTP/1.1 {status} Upstream\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        Self::start(move |mut socket| {
            let response = response.clone();
            async move {
                // Read the head and the body the head announces, then answer.
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                    let text = String::from_utf8_lossy(&seen).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if seen.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        })
        .await
    }

    /// Accepts connections and never answers.
    pub async fn black_hole() -> Upstream {
        Self::start(|socket| async move {
            std::future::pending::<()>().await;
            drop(socket);
        })
        .await
    }

    async fn start<F, Fut>(serve: F) -> Upstream
    where
        F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(serve(socket));
            }
        });
        Upstream {
            url,
            accepted,
            task,
        }
    }

    /// The connections it has accepted.
    pub fn connections(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::time::SystemTime;

    /// A checkout with two sources and a binary built from them at `built`.
    fn checkout(built: SystemTime) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let root = tempfile::tempdir().unwrap();
        let src = root.path().join("crates/gateway/src");
        std::fs::create_dir_all(&src).unwrap();
        let (lib, page) = (src.join("lib.rs"), src.join("my page.html"));
        for file in [&lib, &page] {
            std::fs::write(file, "x").unwrap();
            let f = File::options().write(true).open(file).unwrap();
            f.set_modified(built - Duration::from_secs(60)).unwrap();
        }
        let bin = root.path().join("target/debug/psp-gateway");
        std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
        std::fs::write(&bin, "elf").unwrap();
        File::options()
            .write(true)
            .open(&bin)
            .unwrap()
            .set_modified(built)
            .unwrap();
        let escaped = page.display().to_string().replace(' ', "\\ ");
        std::fs::write(
            bin.with_extension("d"),
            format!("{}: {} {escaped}\n", bin.display(), lib.display()),
        )
        .unwrap();
        (root, bin, page)
    }

    #[test]
    fn a_binary_built_after_its_sources_is_current() {
        let (root, bin, _) = checkout(SystemTime::now() - Duration::from_secs(3600));
        assert_eq!(stale(&bin, root.path()), None);
    }

    #[test]
    fn a_source_changed_since_the_build_makes_the_binary_stale() {
        let (root, bin, page) = checkout(SystemTime::now() - Duration::from_secs(3600));
        File::options()
            .write(true)
            .open(&page)
            .unwrap()
            .set_modified(SystemTime::now())
            .unwrap();
        let why = stale(&bin, root.path()).expect("stale");
        assert!(
            why.contains("my page.html") && why.contains("changed"),
            "{why}"
        );
    }

    #[test]
    fn a_binary_from_another_checkout_or_without_its_record_is_stale() {
        let (_other, bin, _) = checkout(SystemTime::now() - Duration::from_secs(3600));
        let here = tempfile::tempdir().unwrap();
        let why = stale(&bin, here.path()).expect("stale");
        assert!(why.contains("outside this checkout"), "{why}");

        let (root, bin, page) = checkout(SystemTime::now() - Duration::from_secs(3600));
        std::fs::remove_file(&page).unwrap();
        let why = stale(&bin, root.path()).expect("stale");
        assert!(why.contains("is gone"), "{why}");
        std::fs::remove_file(bin.with_extension("d")).unwrap();
        let why = stale(&bin, root.path()).expect("stale");
        assert!(why.contains("is missing"), "{why}");
    }
}
