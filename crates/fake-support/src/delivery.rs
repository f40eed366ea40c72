//! Webhook delivery as PSPs do it: POSTs over real HTTP in a background task, each attempt
//! signed anew, retried with a growing delay, every attempt recorded for tests to read.

use std::time::Duration;

use axum::body::Bytes;
use serde::Serialize;

/// How many times one delivery is tried before the fake gives up. Stripe's test mode
/// retries over a few hours; the fakes retry quickly.
pub const ATTEMPTS: u32 = 5;
/// The wait after the first failure; it doubles after each further failure.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// Where a webhook delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Still being tried.
    Pending,
    /// A 2xx was received.
    Delivered,
    /// Every attempt failed.
    GaveUp,
}

/// What became of one attempt, for the fake's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// The attempt's number from 1 (0: none could be made).
    pub number: u32,
    /// The HTTP status received, if an answer came.
    pub status: Option<u16>,
    /// Where the delivery stands after it.
    pub state: DeliveryState,
}

/// The client fakes send webhooks with. Each attempt has its own timeout, so one slow
/// receiver cannot hold a delivery task for long.
pub fn webhook_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .build()
        // Only a broken TLS backend makes the builder fail, and a fake cannot work without
        // one anyway.
        .expect("the HTTP client for webhooks builds")
}

/// One webhook on its way to one URL.
pub struct Delivery<H, R> {
    /// Who sends it, for the log (`"fake Stripe"`).
    pub sender: &'static str,
    /// What it is, for the log (an event id).
    pub label: String,
    /// Where it goes.
    pub url: String,
    /// The exact bytes sent, the same on every attempt.
    pub body: Bytes,
    /// The headers of one attempt, signature included: called for every attempt, so that
    /// a delivery retried for a while still carries a timestamp inside the receiver's
    /// tolerance.
    pub headers: H,
    /// Records what became of an attempt.
    pub record: R,
}

impl<H, R> Delivery<H, R>
where
    H: Fn(&[u8]) -> Vec<(&'static str, String)> + Send + 'static,
    R: Fn(Attempt) + Send + 'static,
{
    /// Sends in a background task, so the caller (an API answer, a customer's redirect)
    /// does not wait for the merchant's endpoint, as a real PSP does not make anyone wait
    /// either. Outside a Tokio runtime (a synchronous test) nothing can be sent, so the
    /// delivery is recorded as given up instead of panicking.
    pub fn spawn(self, http: &reqwest::Client) {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(self.deliver(http.clone()));
            }
            Err(_) => {
                tracing::warn!(webhook = %self.label, url = %self.url, "no Tokio runtime: webhook not sent");
                (self.record)(Attempt {
                    number: 0,
                    status: None,
                    state: DeliveryState::GaveUp,
                });
            }
        }
    }

    async fn deliver(self, http: reqwest::Client) {
        let mut backoff = FIRST_BACKOFF;
        for number in 1..=ATTEMPTS {
            let mut request = http.post(&self.url);
            for (name, value) in (self.headers)(&self.body) {
                request = request.header(name, value);
            }
            let result = request.body(self.body.clone()).send().await;
            let status = match &result {
                Ok(resp) => Some(resp.status().as_u16()),
                Err(error) => {
                    tracing::debug!(webhook = %self.label, attempt = number, %error, "webhook not delivered");
                    None
                }
            };
            let delivered = status.is_some_and(|s| (200..300).contains(&s));
            let state = if delivered {
                DeliveryState::Delivered
            } else if number == ATTEMPTS {
                DeliveryState::GaveUp
            } else {
                DeliveryState::Pending
            };
            (self.record)(Attempt {
                number,
                status,
                state,
            });
            if delivered {
                return;
            }
            tracing::debug!(webhook = %self.label, attempt = number, ?status, "webhook not accepted");
            if number < ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        tracing::warn!(
            webhook = %self.label,
            url = %self.url,
            attempts = ATTEMPTS,
            "{} gave up delivering a webhook",
            self.sender
        );
    }
}
