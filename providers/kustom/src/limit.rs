//! A sliding-window limit on the Kustom calls that unauthenticated callers can cause.
//!
//! Kustom's push is not signed, so anyone can send one; each is answered by reading the
//! order from Kustom with our credentials. Without a limit, a flood of made-up pushes
//! would make the gateway hammer Kustom (and spend the merchant's rate allowance there).
//! The window slides, so no stretch of `window` ever sees more than `max` calls, not even
//! across the boundary of two fixed windows.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// At most `max` permits in any `window`.
#[derive(Debug)]
pub(crate) struct SlidingWindow {
    max: usize,
    window: Duration,
    granted: Mutex<VecDeque<Instant>>,
    refusing: AtomicBool,
}

impl SlidingWindow {
    pub(crate) fn new(max: u32, window: Duration) -> Self {
        Self {
            max: max as usize,
            window,
            granted: Mutex::new(VecDeque::new()),
            refusing: AtomicBool::new(false),
        }
    }

    /// Takes a permit at `now` if the window has one left.
    pub(crate) fn try_acquire_at(&self, now: Instant) -> bool {
        let mut granted = self.granted.lock();
        while granted
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= self.window)
        {
            granted.pop_front();
        }
        if granted.len() < self.max {
            granted.push_back(now);
            self.refusing.store(false, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    pub(crate) fn try_acquire(&self) -> bool {
        self.try_acquire_at(Instant::now())
    }

    /// Whether this refusal starts a run of refusals (so a flood is logged once, not once
    /// per request).
    pub(crate) fn first_refusal(&self) -> bool {
        !self.refusing.swap(true, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_window_ever_grants_more_than_the_maximum() {
        let limit = SlidingWindow::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert!(limit.try_acquire_at(at(0)));
        assert!(limit.try_acquire_at(at(9_000)));
        assert!(limit.try_acquire_at(at(9_500)));
        // Just past a fixed window's boundary a fixed-window counter would start again.
        assert!(!limit.try_acquire_at(at(9_999)));
        // The first permit leaves the window after 10 s; the other two are still in it.
        assert!(limit.try_acquire_at(at(10_000)));
        assert!(!limit.try_acquire_at(at(10_001)));
        assert!(limit.try_acquire_at(at(19_000)));
    }

    #[test]
    fn a_flood_gets_exactly_the_maximum() {
        let limit = SlidingWindow::new(5, Duration::from_secs(60));
        let now = Instant::now();
        let granted = (0..1000).filter(|_| limit.try_acquire_at(now)).count();
        assert_eq!(granted, 5);
    }
}
