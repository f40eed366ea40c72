//! Exponential backoff with jitter, for the calls that are safe to repeat.

use std::future::Future;
use std::time::Duration;

use psp_core::ports::HanteraError;
use rand::Rng;

use crate::config::RetryPolicy;

/// The delay before retry number `retry` (1 for the first retry), given a `jitter` in
/// `[0, 1]`. The exponential delay `base · 2^(retry-1)` is capped at `max_delay`, and the
/// jitter picks a point in its upper half, so that clients that failed together do not
/// retry together, while every retry still waits at least half its nominal delay.
pub(crate) fn backoff_delay(policy: &RetryPolicy, retry: u32, jitter: f64) -> Duration {
    let exponent = retry.saturating_sub(1).min(30);
    let nominal = policy
        .base_delay
        .saturating_mul(1_u32 << exponent)
        .min(policy.max_delay);
    let jitter = jitter.clamp(0.0, 1.0);
    nominal.mul_f64(0.5 + 0.5 * jitter)
}

/// Runs `attempt` until it succeeds, fails for good, or the policy's attempts run out.
/// Only errors that [`HanteraError::is_transient`] calls transient are retried; the last
/// error is returned as it is. `attempt` receives the attempt number, starting at 1, for
/// logging.
pub(crate) async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    operation: &'static str,
    mut attempt: F,
) -> Result<T, HanteraError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, HanteraError>>,
{
    let max_attempts = policy.max_attempts.max(1);
    let mut number = 1;
    loop {
        match attempt(number).await {
            Ok(value) => return Ok(value),
            Err(err) if err.is_transient() && number < max_attempts => {
                let delay = backoff_delay(policy, number, rand::thread_rng().gen::<f64>());
                tracing::debug!(
                    operation,
                    attempt = number,
                    delay_ms = delay.as_millis() as u64,
                    error = %err,
                    "hantera call failed; retrying"
                );
                tokio::time::sleep(delay).await;
                number += 1;
            }
            Err(err) => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }

    // The retry loop tests wait for real, so their delays are kept to a millisecond.
    fn quick() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
        }
    }

    #[test]
    fn backoff_doubles_per_retry_and_stops_at_the_cap() {
        let p = policy();
        assert_eq!(backoff_delay(&p, 1, 1.0), Duration::from_millis(100));
        assert_eq!(backoff_delay(&p, 2, 1.0), Duration::from_millis(200));
        assert_eq!(backoff_delay(&p, 3, 1.0), Duration::from_millis(400));
        assert_eq!(backoff_delay(&p, 6, 1.0), Duration::from_secs(2));
        assert_eq!(backoff_delay(&p, 500, 1.0), Duration::from_secs(2));
    }

    #[test]
    fn jitter_keeps_the_delay_between_half_and_all_of_the_nominal_delay() {
        let p = policy();
        assert_eq!(backoff_delay(&p, 2, 0.0), Duration::from_millis(100));
        assert_eq!(backoff_delay(&p, 2, 0.5), Duration::from_millis(150));
        assert_eq!(backoff_delay(&p, 9, -3.0), Duration::from_secs(1));
        assert_eq!(backoff_delay(&p, 9, 7.0), Duration::from_secs(2));
    }

    #[tokio::test]
    async fn transient_errors_are_retried_until_the_attempts_run_out() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = with_retries(&quick(), "test", |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(HanteraError::Unavailable("down".into())) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_definite_error_is_returned_at_once() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = with_retries(&quick(), "test", |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                Err(HanteraError::Api {
                    status: 500,
                    code: "ALREADY_EXISTS".into(),
                    message: String::new(),
                })
            }
        })
        .await;
        assert_eq!(result.unwrap_err().code(), Some("ALREADY_EXISTS"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_success_after_failures_is_returned() {
        let calls = AtomicU32::new(0);
        let result = with_retries(&quick(), "test", |n| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 3 {
                    Err(HanteraError::Unavailable("down".into()))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(result.unwrap(), 3);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
