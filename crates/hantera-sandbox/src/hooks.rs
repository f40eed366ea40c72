//! Forwarding Hantera's hooks to the gateway, as the bridge app does in a real instance
//! (`docs/hantera-bridge.md`).
//!
//! `OnCartMutation` (after every successful storefront mutation) and `OnPaymentCapture`
//! (after a capture is created) are posted to `{target}/hantera/hooks/{hook}` with
//! `Authorization: Bearer <token>`. They go through an in-memory outbox, one sandbox-wide
//! queue delivered in order by one task:
//! - a 2xx answer delivers the hook;
//! - no answer, a 5xx, 408 or 429 means the gateway is down or busy: the same hook is
//!   retried with exponential backoff, and nothing behind it overtakes it, so a gateway
//!   that comes back receives what it missed, in the order it happened (per cart, and
//!   overall);
//! - any other answer (400, 401, 404…) is a refusal that retrying will not change: the
//!   hook is dropped, logged and kept in the inspection list as `rejected`.
//!
//! The outbox lives and dies with the sandbox ("durable-ish"): it survives a gateway
//! restart but not a sandbox restart, which loses the carts too. `GET /sandbox/hooks`
//! shows it.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::state::{now_rfc3339, Shared};

/// The most hooks kept waiting while the gateway is down. Past it the oldest is dropped
/// (and counted), so that a sandbox left running with no gateway cannot grow without
/// bound.
const MAX_PENDING: usize = 10_000;
/// How many finished deliveries `GET /sandbox/hooks` remembers.
const MAX_FINISHED: usize = 500;
/// How long one delivery attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the sandbox forwards hooks: the gateway's base URL and its hook token.
#[derive(Clone)]
pub struct HookTarget {
    /// The gateway's base URL (`http://127.0.0.1:8080`); hooks go to
    /// `{url}/hantera/hooks/{hook}`.
    pub url: String,
    /// Sent as `Authorization: Bearer <token>`; the gateway's `hantera.hook_token`.
    /// Never printed by `Debug`.
    pub token: String,
    /// The wait before the first retry of a hook the gateway did not take.
    pub initial_backoff: Duration,
    /// The longest wait between retries; the backoff doubles up to it.
    pub max_backoff: Duration,
}

impl HookTarget {
    /// A target with the default backoff (100 ms doubling to 5 s).
    pub fn new(url: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token: token.into(),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }

    fn hook_url(&self, hook: &str) -> String {
        format!("{}/hantera/hooks/{hook}", self.url.trim_end_matches('/'))
    }
}

impl fmt::Debug for HookTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookTarget")
            .field("url", &self.url)
            .field("token", &"<redacted>")
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .finish()
    }
}

/// The fixed part: the target, and the delivery task's wake-up and start flag.
pub(crate) struct Hooks {
    pub(crate) target: Option<HookTarget>,
    wake: Arc<Notify>,
    started: AtomicBool,
}

impl Hooks {
    pub(crate) fn new(target: Option<HookTarget>) -> Self {
        Self {
            target,
            wake: Arc::new(Notify::new()),
            started: AtomicBool::new(false),
        }
    }
}

/// One hook waiting to be delivered (or being retried).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Delivery {
    seq: u64,
    hook: &'static str,
    cart_id: Option<Uuid>,
    attempts: u32,
    last_error: Option<String>,
    enqueued_at: String,
    body: Value,
}

/// A hook that left the outbox: delivered, or rejected by the gateway.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Finished {
    #[serde(flatten)]
    delivery: Delivery,
    outcome: &'static str,
    status: u16,
    finished_at: String,
}

/// The queue of hooks, kept in the sandbox's state so that hooks are queued in the same
/// order as the changes that fired them.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    pending: VecDeque<Delivery>,
    finished: VecDeque<Finished>,
    next_seq: u64,
    dropped: u64,
}

impl Outbox {
    fn finish(&mut self, seq: u64, outcome: &'static str, status: u16) {
        // A reset while the attempt was in flight leaves another hook (or none) at the
        // head, which this outcome is not about.
        if self.pending.front().map(|d| d.seq) != Some(seq) {
            return;
        }
        if let Some(mut delivery) = self.pending.pop_front() {
            delivery.attempts += 1;
            self.finished.push_back(Finished {
                delivery,
                outcome,
                status,
                finished_at: now_rfc3339(),
            });
            if self.finished.len() > MAX_FINISHED {
                self.finished.pop_front();
            }
        }
    }

    fn retry_later(&mut self, seq: u64, error: String) {
        if let Some(head) = self.pending.front_mut().filter(|d| d.seq == seq) {
            head.attempts += 1;
            head.last_error = Some(error);
        }
    }

    /// Forgets every hook, pending or finished. Sequence numbers keep counting, so that
    /// an attempt in flight during the reset cannot be mistaken for a new hook's.
    pub(crate) fn clear(&mut self) {
        self.pending.clear();
        self.finished.clear();
        self.dropped = 0;
    }

    /// What `GET /sandbox/hooks` shows.
    pub(crate) fn view(&self, target: Option<&HookTarget>) -> Value {
        serde_json::json!({
            "target": target.map(|t| t.url.clone()),
            "pending": self.pending,
            "finished": self.finished,
            "dropped": self.dropped,
        })
    }
}

/// Queues a hook and wakes the delivery task. Without a target there is no gateway to
/// tell, and nothing is queued.
pub(crate) fn enqueue(
    shared: &Arc<Shared>,
    outbox: &mut Outbox,
    hook: &'static str,
    cart_id: Option<Uuid>,
    body: Value,
) {
    if shared.hooks.target.is_none() {
        return;
    }
    outbox.next_seq += 1;
    outbox.pending.push_back(Delivery {
        seq: outbox.next_seq,
        hook,
        cart_id,
        attempts: 0,
        last_error: None,
        enqueued_at: now_rfc3339(),
        body,
    });
    if outbox.pending.len() > MAX_PENDING {
        outbox.pending.pop_front();
        outbox.dropped += 1;
        tracing::warn!("the hook outbox is full; dropped the oldest hook");
    }
    start(shared);
    shared.hooks.wake.notify_one();
}

/// Starts the delivery task once, if there is a target and a Tokio runtime to run it on
/// (a sandbox built outside a runtime starts it on its first hook inside one).
pub(crate) fn start(shared: &Arc<Shared>) {
    let Some(target) = shared.hooks.target.clone() else {
        return;
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if shared.hooks.started.swap(true, Ordering::AcqRel) {
        return;
    }
    let wake = Arc::clone(&shared.hooks.wake);
    // The task holds the sandbox weakly, so that dropping the sandbox ends it.
    runtime.spawn(deliver(Arc::downgrade(shared), wake, target));
}

/// How one attempt went.
enum Attempt {
    Delivered(u16),
    Rejected(u16, String),
    Retry(String),
}

async fn attempt(client: &reqwest::Client, target: &HookTarget, delivery: &Delivery) -> Attempt {
    let sent = client
        .post(target.hook_url(delivery.hook))
        .bearer_auth(&target.token)
        .json(&delivery.body)
        .send()
        .await;
    match sent {
        Err(e) => Attempt::Retry(format!("no answer: {e}")),
        Ok(response) => {
            let status = response.status();
            let code = status.as_u16();
            if status.is_success() {
                Attempt::Delivered(code)
            } else if status.is_server_error() || code == 408 || code == 429 {
                Attempt::Retry(format!("the gateway answered {status}"))
            } else {
                let text = response.text().await.unwrap_or_default();
                Attempt::Rejected(code, text.chars().take(500).collect())
            }
        }
    }
}

/// The delivery task: takes the head of the outbox, posts it until the gateway takes or
/// refuses it, then moves on.
async fn deliver(sandbox: Weak<Shared>, wake: Arc<Notify>, target: HookTarget) {
    let client = match reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the hook client; hooks will not be forwarded");
            return;
        }
    };
    let mut backoff = target.initial_backoff;
    loop {
        let head = {
            let Some(shared) = sandbox.upgrade() else {
                return;
            };
            let head = shared.state.lock().outbox.pending.front().cloned();
            head
        };
        let Some(delivery) = head else {
            // Wake on new work; the timeout re-checks now and then whether the sandbox
            // still exists, so the task does not outlive it by long.
            let _ = tokio::time::timeout(Duration::from_secs(1), wake.notified()).await;
            continue;
        };
        let outcome = attempt(&client, &target, &delivery).await;
        let Some(shared) = sandbox.upgrade() else {
            return;
        };
        // The lock is taken and released in this block, never across the sleep below.
        let retry = {
            let mut state = shared.state.lock();
            match outcome {
                Attempt::Delivered(status) => {
                    state.outbox.finish(delivery.seq, "delivered", status);
                    false
                }
                Attempt::Rejected(status, text) => {
                    tracing::warn!(
                        hook = delivery.hook,
                        status,
                        answer = %text,
                        "the gateway refused a hook; it will not be retried"
                    );
                    state.outbox.finish(delivery.seq, "rejected", status);
                    false
                }
                Attempt::Retry(error) => {
                    tracing::debug!(hook = delivery.hook, %error, ?backoff, "hook not delivered; retrying");
                    state.outbox.retry_later(delivery.seq, error);
                    true
                }
            }
        };
        drop(shared);
        if retry {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(target.max_backoff);
        } else {
            backoff = target.initial_backoff;
        }
    }
}
