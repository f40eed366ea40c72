//! A sliding-window limit on the Kustom calls that unauthenticated callers can cause.
//!
//! Kustom's push is not signed, so anyone can send one; each is answered by reading the
//! order from Kustom with our credentials. Without a limit, a flood of made-up pushes
//! would make the gateway hammer Kustom (and spend the merchant's rate allowance there).
//! The window slides, so no stretch of `window` ever sees more than `max` calls, not even
//! across the boundary of two fixed windows.

use std::collections::{HashMap, VecDeque};
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

    /// Whether this refusal starts a run of refusals (so a flood is logged once, not once
    /// per request).
    pub(crate) fn first_refusal(&self) -> bool {
        !self.refusing.swap(true, Ordering::Relaxed)
    }
}

/// At most `per_key` permits per key in any `window`, for at most `capacity` keys.
///
/// The gateway's Kustom pushes are limited per order id so that one caller pushing its
/// own order over and over spends only that order's permits, never the permits every
/// other order's genuine push needs (the global [`SlidingWindow`] stays as the ceiling
/// above all orders). The map is bounded: past `capacity` keys the key that entered
/// first is forgotten, which at worst gives that key a fresh window; the global ceiling
/// still bounds what that can cost.
#[derive(Debug)]
pub(crate) struct PerKeyWindow {
    per_key: usize,
    window: Duration,
    capacity: usize,
    inner: Mutex<Keys>,
}

#[derive(Debug, Default)]
struct Keys {
    granted: HashMap<String, VecDeque<Instant>>,
    /// The keys in the order they entered, for eviction.
    order: VecDeque<String>,
}

impl PerKeyWindow {
    pub(crate) fn new(per_key: u32, window: Duration, capacity: usize) -> Self {
        Self {
            per_key: per_key as usize,
            window,
            capacity: capacity.max(1),
            inner: Mutex::new(Keys::default()),
        }
    }

    /// Takes a permit for `key` at `now` if its window has one left.
    pub(crate) fn try_acquire_at(&self, key: &str, now: Instant) -> bool {
        let mut keys = self.inner.lock();
        let keys = &mut *keys;
        if let Some(granted) = keys.granted.get_mut(key) {
            while granted
                .front()
                .is_some_and(|&t| now.saturating_duration_since(t) >= self.window)
            {
                granted.pop_front();
            }
            if granted.len() >= self.per_key {
                return false;
            }
            granted.push_back(now);
            return true;
        }
        while keys.granted.len() >= self.capacity {
            match keys.order.pop_front() {
                Some(old) => {
                    keys.granted.remove(&old);
                }
                None => break,
            }
        }
        keys.granted.insert(key.to_string(), VecDeque::from([now]));
        keys.order.push_back(key.to_string());
        true
    }

    /// Gives back the permit taken for `key` at `at` (the global ceiling refused the call
    /// it was taken for, so it cost nothing).
    pub(crate) fn release(&self, key: &str, at: Instant) {
        let mut keys = self.inner.lock();
        if let Some(granted) = keys.granted.get_mut(key) {
            if let Some(i) = granted.iter().rposition(|&t| t == at) {
                granted.remove(i);
            }
        }
    }

    /// How many keys are remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        let keys = self.inner.lock();
        debug_assert_eq!(keys.granted.len(), keys.order.len());
        keys.granted.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_spending_its_permits_leaves_every_other_key_its_own() {
        let limit = PerKeyWindow::new(3, Duration::from_secs(60), 100);
        let now = Instant::now();
        let granted = (0..40)
            .filter(|_| limit.try_acquire_at("mine", now))
            .count();
        assert_eq!(granted, 3);
        assert!(limit.try_acquire_at("theirs", now));
        // The window slides for each key on its own.
        let later = now + Duration::from_secs(60);
        assert!(limit.try_acquire_at("mine", later));
    }

    #[test]
    fn a_released_permit_can_be_taken_again() {
        let limit = PerKeyWindow::new(1, Duration::from_secs(60), 100);
        let now = Instant::now();
        assert!(limit.try_acquire_at("k", now));
        assert!(!limit.try_acquire_at("k", now));
        limit.release("k", now);
        assert!(limit.try_acquire_at("k", now));
    }

    #[test]
    fn the_map_never_holds_more_keys_than_its_capacity() {
        let limit = PerKeyWindow::new(2, Duration::from_secs(60), 50);
        let now = Instant::now();
        for i in 0..10_000 {
            assert!(limit.try_acquire_at(&format!("order-{i}"), now));
            assert!(limit.len() <= 50);
        }
        assert_eq!(limit.len(), 50);
        // The newest keys are the ones remembered.
        assert!(limit.try_acquire_at("order-9999", now));
        assert!(!limit.try_acquire_at("order-9999", now));
    }

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
