//! The cached OAuth access token, and when to refresh it.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use psp_core::ports::HanteraError;
use psp_core::Secret;
use tokio::time::Instant;

/// The longest a token is refreshed ahead of its expiry.
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// How long before its expiry a token with this lifetime is refreshed: 60 seconds, or a
/// tenth of its lifetime when that is smaller. The margin covers clock drift and the time a
/// request spends in flight, so that a token is not sent when it is about to lapse; the
/// tenth keeps short-lived tokens from being refreshed on every call.
pub(crate) fn refresh_margin(lifetime: Duration) -> Duration {
    MAX_REFRESH_MARGIN.min(lifetime / 10)
}

/// An access token with its timing. `Debug` shows no token: [`Secret`] hides it.
#[derive(Debug, Clone)]
pub(crate) struct CachedToken {
    /// The bearer token.
    pub(crate) value: Secret,
    /// Distinguishes tokens, so that a caller can drop exactly the token that was refused.
    pub(crate) generation: u64,
    refresh_at: Instant,
    expires_at: Instant,
}

impl CachedToken {
    /// A token requested at `requested_at` that lives `lifetime`. The lifetime is counted
    /// from the request rather than the answer, which errs on the side of expiring early.
    fn new(value: Secret, generation: u64, requested_at: Instant, lifetime: Duration) -> Self {
        let expires_at = requested_at + lifetime;
        Self {
            value,
            generation,
            refresh_at: expires_at - refresh_margin(lifetime),
            expires_at,
        }
    }

    /// Whether the token is used as it is, without asking for a new one.
    fn is_fresh(&self, now: Instant) -> bool {
        now < self.refresh_at
    }

    /// Whether the token has not lapsed yet, though it may be due for refresh.
    fn is_unexpired(&self, now: Instant) -> bool {
        now < self.expires_at
    }
}

/// The token cache. Readers take the cached token under a short, synchronous lock; a token
/// that is due for refresh is fetched under an asynchronous lock, so that callers arriving
/// during a refresh wait for that one refresh instead of each starting their own.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    current: Mutex<Option<CachedToken>>,
    refresh: tokio::sync::Mutex<()>,
    generations: AtomicU64,
}

impl TokenCache {
    fn current(&self) -> MutexGuard<'_, Option<CachedToken>> {
        // The guarded value is a plain option that every writer replaces whole, so a
        // panic elsewhere cannot leave it half-written: a poisoned lock is still usable.
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fresh(&self, now: Instant) -> Option<CachedToken> {
        self.current().clone().filter(|t| t.is_fresh(now))
    }

    /// A token to send: the cached one while it is fresh, otherwise one obtained through
    /// `fetch`, which returns the token and its lifetime. Concurrent callers share one
    /// `fetch`.
    pub(crate) async fn get<F, Fut>(&self, fetch: F) -> Result<CachedToken, HanteraError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(Secret, Duration), HanteraError>>,
    {
        if let Some(token) = self.fresh(Instant::now()) {
            return Ok(token);
        }
        let _refreshing = self.refresh.lock().await;
        // Another caller may have refreshed while this one waited for the lock.
        if let Some(token) = self.fresh(Instant::now()) {
            return Ok(token);
        }
        let requested_at = Instant::now();
        match fetch().await {
            Ok((value, lifetime)) => {
                let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
                let token = CachedToken::new(value, generation, requested_at, lifetime);
                *self.current() = Some(token.clone());
                tracing::debug!(
                    generation,
                    lifetime_s = lifetime.as_secs(),
                    "hantera access token obtained"
                );
                Ok(token)
            }
            Err(err) => {
                // A token that is due for refresh has not lapsed yet, so a refresh that
                // failed for a passing reason need not stop the call: the old token still
                // works for the rest of its margin. A refusal of our credentials is not
                // papered over.
                if err.is_transient() {
                    let now = Instant::now();
                    if let Some(token) = self.current().clone().filter(|t| t.is_unexpired(now)) {
                        tracing::warn!(error = %err, "hantera token refresh failed; using the current token until it expires");
                        return Ok(token);
                    }
                }
                Err(err)
            }
        }
    }

    /// Drops the token of `generation`, which Hantera refused. A newer token, fetched by a
    /// concurrent caller in the meantime, is kept.
    pub(crate) fn invalidate(&self, generation: u64) {
        let mut current = self.current();
        if current.as_ref().is_some_and(|t| t.generation == generation) {
            *current = None;
        }
    }

    /// Whether a token is cached, for `Debug` output that must not show the token.
    pub(crate) fn is_cached(&self) -> bool {
        self.current().is_some()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;
    use std::sync::Arc;

    use super::*;

    #[test]
    fn long_lived_tokens_are_refreshed_a_minute_before_expiry() {
        assert_eq!(
            refresh_margin(Duration::from_secs(3600)),
            Duration::from_secs(60)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(600)),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn short_lived_tokens_are_refreshed_a_tenth_of_their_lifetime_before_expiry() {
        assert_eq!(
            refresh_margin(Duration::from_secs(300)),
            Duration::from_secs(30)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(2)),
            Duration::from_millis(200)
        );
        assert_eq!(refresh_margin(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn a_token_is_fresh_until_its_margin_and_unexpired_until_its_end() {
        let start = Instant::now();
        let t = CachedToken::new(Secret::new("t"), 1, start, Duration::from_secs(100));
        assert!(t.is_fresh(start + Duration::from_secs(89)));
        assert!(!t.is_fresh(start + Duration::from_secs(90)));
        assert!(t.is_unexpired(start + Duration::from_secs(99)));
        assert!(!t.is_unexpired(start + Duration::from_secs(100)));
    }

    #[test]
    fn the_debug_output_of_a_token_hides_it() {
        let t = CachedToken::new(
            Secret::new("very-secret-token"),
            1,
            Instant::now(),
            Duration::from_secs(1),
        );
        assert!(!format!("{t:?}").contains("very-secret-token"));
    }

    #[tokio::test]
    async fn a_fresh_token_is_reused_and_concurrent_callers_share_one_fetch() {
        let cache = Arc::new(TokenCache::default());
        let fetches = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let cache = cache.clone();
            let fetches = fetches.clone();
            tasks.push(tokio::spawn(async move {
                cache
                    .get(|| async move {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::task::yield_now().await;
                        Ok((Secret::new("t"), Duration::from_secs(3600)))
                    })
                    .await
                    .unwrap()
                    .generation
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), 1);
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_invalidated_token_is_fetched_again_but_a_newer_one_is_kept() {
        let cache = TokenCache::default();
        let ok = || async { Ok((Secret::new("t"), Duration::from_secs(3600))) };
        let first = cache.get(ok).await.unwrap();
        cache.invalidate(first.generation);
        let second = cache.get(ok).await.unwrap();
        assert_eq!(second.generation, first.generation + 1);
        // A caller still holding the first token must not drop the second.
        cache.invalidate(first.generation);
        assert_eq!(cache.get(ok).await.unwrap().generation, second.generation);
    }

    #[tokio::test]
    async fn a_failed_refresh_falls_back_to_a_token_that_has_not_expired() {
        let cache = TokenCache::default();
        // A lifetime of zero makes the token due for refresh at once; it is then
        // unexpired for no time at all, so the fallback must refuse it.
        cache
            .get(|| async { Ok((Secret::new("t"), Duration::ZERO)) })
            .await
            .unwrap();
        let err = cache
            .get(|| async { Err(HanteraError::Unavailable("down".into())) })
            .await
            .unwrap_err();
        assert!(matches!(err, HanteraError::Unavailable(_)));

        // A token inside its refresh margin is still used when the refresh fails.
        let cache = TokenCache::default();
        *cache.current() = Some(CachedToken {
            value: Secret::new("old"),
            generation: 7,
            refresh_at: Instant::now(),
            expires_at: Instant::now() + Duration::from_secs(60),
        });
        let token = cache
            .get(|| async { Err(HanteraError::Unavailable("down".into())) })
            .await
            .unwrap();
        assert_eq!(token.generation, 7);
        let err = cache
            .get(|| async { Err(HanteraError::Unauthorized("revoked".into())) })
            .await
            .unwrap_err();
        assert!(matches!(err, HanteraError::Unauthorized(_)));
    }
}
