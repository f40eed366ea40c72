//! Idempotent replay as PSPs do it: the first answer to a key is saved with a fingerprint
//! of the request it answered, and a repeat with the key gets that answer back without
//! acting again. What counts as "the same request" (and what a different one under a used
//! key gets) is each PSP's own, so the fingerprint is the fake's to choose.

use std::collections::HashMap;
use std::hash::Hash;

/// What a key says about a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Replay<'a, F, A> {
    /// The key is new: act, then [`Replays::save`] the answer.
    New,
    /// The same request again: send this answer, marked as replayed, and do nothing.
    Same(&'a A),
    /// The key answered another request, whose fingerprint this is.
    Other(&'a F),
}

/// Saved answers by idempotency key `K`, each with the fingerprint `F` of the request it
/// answered. One lives inside the fake's state, under its one lock, so checking, acting
/// and saving is atomic: two calls with one key never both act.
#[derive(Debug)]
pub struct Replays<K, F, A> {
    saved: HashMap<K, (F, A)>,
}

impl<K, F, A> Default for Replays<K, F, A> {
    fn default() -> Self {
        Self {
            saved: HashMap::new(),
        }
    }
}

impl<K: Eq + Hash, F: PartialEq, A> Replays<K, F, A> {
    /// What `key` says about a request with `fingerprint`.
    pub fn check(&self, key: &K, fingerprint: &F) -> Replay<'_, F, A> {
        match self.saved.get(key) {
            None => Replay::New,
            Some((saved, answer)) if saved == fingerprint => Replay::Same(answer),
            Some((saved, _)) => Replay::Other(saved),
        }
    }

    /// Saves the answer to the first request with `key`.
    pub fn save(&mut self, key: K, fingerprint: F, answer: A) {
        self.saved.insert(key, (fingerprint, answer));
    }
}

/// The header a replayed answer carries, as Stripe marks one.
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";

/// Marks an answer as a replay of a saved one.
pub fn mark_replayed(resp: &mut axum::response::Response) {
    resp.headers_mut().insert(
        REPLAYED_HEADER,
        axum::http::HeaderValue::from_static("true"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_replays_the_same_request_and_names_the_other_one() {
        let mut r: Replays<&str, &str, u16> = Replays::default();
        assert_eq!(r.check(&"k", &"a"), Replay::New);
        r.save("k", "a", 201);
        assert_eq!(r.check(&"k", &"a"), Replay::Same(&201));
        assert_eq!(r.check(&"k", &"b"), Replay::Other(&"a"));
        assert_eq!(r.check(&"j", &"b"), Replay::New);
    }
}
