//! Tokens already verified, remembered until they expire.
//!
//! Clients send the same token with every request; checking its signature and decoding its
//! claims again each time is the largest part of a cheap request's CPU (a pool claim, a GET).
//! An entry is keyed by the whole token text (a map lookup compares it in full, so only the
//! very token that was verified can hit) and is dropped once the token's `exp` has passed
//! (with the same leeway verification allows). `nbf` needs no second look: it was in the past
//! when the token was verified, and stays there. A refused token is never remembered.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::Caller;

/// Tokens remembered at most; beyond that, expired ones are dropped, then all (rare: it takes
/// this many distinct live tokens).
const CAPACITY: usize = 16_384;

#[derive(Debug)]
struct Entry {
    caller: Caller,
    /// The token's `exp`, seconds since the epoch.
    exp: u64,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<Box<str>, Entry>>,
}

impl TokenCache {
    fn lock(&self) -> MutexGuard<'_, HashMap<Box<str>, Entry>> {
        // Only plain map operations happen under the lock: a panic cannot leave it torn.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The caller of a token verified earlier, if it has not expired by `now_s` (allowing
    /// `leeway_s`, as verification does).
    pub fn get(&self, token: &str, now_s: u64, leeway_s: u64) -> Option<Caller> {
        let mut entries = self.lock();
        let entry = entries.get(token)?;
        if entry.exp.saturating_add(leeway_s) < now_s {
            entries.remove(token);
            return None;
        }
        Some(entry.caller.clone())
    }

    /// Remembers a token that has just been verified.
    pub fn put(&self, token: &str, caller: &Caller, exp: u64, now_s: u64, leeway_s: u64) {
        let mut entries = self.lock();
        if entries.len() >= CAPACITY {
            entries.retain(|_, e| e.exp.saturating_add(leeway_s) >= now_s);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(token.into(), Entry { caller: caller.clone(), exp });
    }

    #[cfg(test)]
    pub fn remembered(&self) -> usize {
        self.lock().len()
    }
}
