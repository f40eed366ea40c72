//! Token buckets keyed by whoever causes the cost (a client address, a cart, a PSP order
//! id), with bounded memory. The one rate-limit helper of the workspace: the gateway's
//! storefront limits use it, and a provider that must bound the calls unauthenticated
//! callers cause can use it too (a single global bucket is a `KeyedLimiter<()>`).
//!
//! A bucket holds at most `burst` tokens and regains `per_minute` of them a minute; each
//! call takes one. A bucket left alone long enough to be full again is the same as no
//! bucket at all, so such buckets are dropped: the map holds only keys that spent tokens
//! within the last refill period. A hard cap (`max_keys`) bounds the map even when many
//! keys are busy at once; a new key that finds it full is refused until buckets refill,
//! which is what a flood from that many sources deserves.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The shape of every bucket of a limiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Tokens a bucket holds at most: the calls a quiet key may make at once.
    pub burst: u32,
    /// Tokens regained a minute: the sustained rate.
    pub per_minute: u32,
}

impl Rate {
    fn per_second(self) -> f64 {
        f64::from(self.per_minute.max(1)) / 60.0
    }

    /// How long an empty bucket takes to be full again.
    pub fn refill_time(self) -> Duration {
        Duration::from_secs_f64(f64::from(self.burst.max(1)) / self.per_second())
    }
}

/// Why a call was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    /// When the key has a token again (at least one second, as `Retry-After` counts).
    pub retry_after: Duration,
    /// The key was refused because the limiter tracks `max_keys` busy keys already, not
    /// because this key spent its tokens.
    pub over_capacity: bool,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug)]
struct Buckets<K> {
    map: HashMap<K, Bucket>,
    last_sweep: Instant,
    /// While the map is at its cap: the earliest time a sweep can free a place. New keys
    /// before then are refused without a sweep, so a flood of new keys costs no scans.
    full_until: Option<Instant>,
}

/// Token buckets by key.
#[derive(Debug)]
pub struct KeyedLimiter<K> {
    rate: Rate,
    max_keys: usize,
    buckets: Mutex<Buckets<K>>,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// A limiter whose buckets have the shape `rate`, tracking at most `max_keys` keys.
    pub fn new(rate: Rate, max_keys: usize) -> Self {
        Self {
            rate,
            max_keys: max_keys.max(1),
            buckets: Mutex::new(Buckets {
                map: HashMap::new(),
                last_sweep: Instant::now(),
                full_until: None,
            }),
        }
    }

    /// Takes a token for `key` now.
    pub fn try_acquire(&self, key: &K) -> Result<(), Refused> {
        self.try_acquire_at(key, Instant::now())
    }

    /// Takes a token for `key` at `now`.
    pub fn try_acquire_at(&self, key: &K, now: Instant) -> Result<(), Refused> {
        let refill = self.rate.refill_time();
        let per_second = self.rate.per_second();
        let burst = f64::from(self.rate.burst.max(1));
        let mut buckets = self.buckets.lock();
        // Full buckets are dropped once per refill period, and when the map is at its cap
        // and a place may have come free since the last look.
        let known = buckets.map.contains_key(key);
        let at_cap = !known && buckets.map.len() >= self.max_keys;
        if let Some(until) = buckets.full_until.filter(|&t| at_cap && now < t) {
            return Err(Refused {
                retry_after: at_least_a_second(until.saturating_duration_since(now)),
                over_capacity: true,
            });
        }
        if at_cap || now.saturating_duration_since(buckets.last_sweep) >= refill {
            buckets
                .map
                .retain(|_, b| now.saturating_duration_since(b.at) < refill);
            buckets.last_sweep = now;
            buckets.full_until = None;
        }
        if !buckets.map.contains_key(key) {
            if buckets.map.len() >= self.max_keys {
                let oldest = buckets.map.values().map(|b| b.at).min().unwrap_or(now);
                let until = oldest + refill;
                buckets.full_until = Some(until);
                return Err(Refused {
                    retry_after: at_least_a_second(until.saturating_duration_since(now)),
                    over_capacity: true,
                });
            }
            buckets.map.insert(
                key.clone(),
                Bucket {
                    tokens: burst,
                    at: now,
                },
            );
        }
        let bucket = buckets
            .map
            .get_mut(key)
            .expect("the bucket was just found or inserted");
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let missing = 1.0 - bucket.tokens;
            Err(Refused {
                retry_after: at_least_a_second(Duration::from_secs_f64(missing / per_second)),
                over_capacity: false,
            })
        }
    }

    /// The keys tracked now.
    pub fn tracked(&self) -> usize {
        self.buckets.lock().map.len()
    }
}

fn at_least_a_second(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs_f64().ceil().max(1.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate {
        burst: 3,
        per_minute: 60,
    };

    #[test]
    fn a_key_gets_its_burst_then_one_token_a_refill_interval() {
        let limit = KeyedLimiter::new(RATE, 10);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limit.try_acquire_at(&"a", t0).is_ok());
        }
        let refused = limit.try_acquire_at(&"a", t0).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(1));
        assert!(!refused.over_capacity);
        // Another key has its own bucket.
        assert!(limit.try_acquire_at(&"b", t0).is_ok());
        // One token a second comes back.
        assert!(limit
            .try_acquire_at(&"a", t0 + Duration::from_millis(1000))
            .is_ok());
        assert!(limit
            .try_acquire_at(&"a", t0 + Duration::from_millis(1100))
            .is_err());
    }

    #[test]
    fn retry_after_says_when_the_next_token_comes() {
        let limit = KeyedLimiter::new(
            Rate {
                burst: 1,
                per_minute: 6,
            },
            10,
        );
        let t0 = Instant::now();
        assert!(limit.try_acquire_at(&(), t0).is_ok());
        let refused = limit
            .try_acquire_at(&(), t0 + Duration::from_secs(4))
            .unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(6));
    }

    #[test]
    fn buckets_that_refilled_are_dropped_so_memory_follows_the_busy_keys() {
        let limit = KeyedLimiter::new(RATE, 100_000);
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            assert!(limit.try_acquire_at(&i, t0).is_ok());
        }
        assert_eq!(limit.tracked(), 10_000);
        // One refill period later every one of them is full again: the next call sweeps.
        let later = t0 + RATE.refill_time();
        assert!(limit.try_acquire_at(&u32::MAX, later).is_ok());
        assert_eq!(limit.tracked(), 1);
    }

    #[test]
    fn the_map_never_exceeds_its_cap_and_new_keys_wait_for_a_refill() {
        let limit = KeyedLimiter::new(RATE, 100);
        let t0 = Instant::now();
        for i in 0..100u32 {
            assert!(limit.try_acquire_at(&i, t0).is_ok());
        }
        let refused = limit.try_acquire_at(&1000, t0).unwrap_err();
        assert!(refused.over_capacity);
        assert_eq!(refused.retry_after, RATE.refill_time());
        assert_eq!(limit.tracked(), 100);
        // Keys already tracked keep their buckets.
        assert!(limit.try_acquire_at(&5, t0).is_ok());
        // Once the old buckets are full, they make room.
        assert!(limit.try_acquire_at(&1000, t0 + RATE.refill_time()).is_ok());
        assert_eq!(limit.tracked(), 1);
    }
}
