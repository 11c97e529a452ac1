//! The per-process read cache of the hot paths: bearer token → identity and
//! resolve answers per (reference, environment).
//!
//! Every state change moves the ledger head (`ledger_head.last_id`), so the
//! head is a change counter for the whole database. The cache keeps an
//! *epoch* that moves whenever this process learns of a change:
//! - a write through this store bumps it right after its commit;
//! - `Store::watch_changes` polls the head (SQLite every 100 ms, PostgreSQL
//!   every 250 ms) and, on PostgreSQL, also listens for the `NOTIFY` every
//!   writing transaction sends, so other processes' changes bump it too.
//!
//! Entries carry the epoch they were read in and count only while it is
//! current. The cache answers only while the watcher *vouches* for it: each
//! successful poll vouches for the next `VOUCH` window, so if the watcher
//! stops or the database is unreachable, every read goes to the database again
//! and no answer is older than one second. Token entries also keep the
//! token's expiry, checked on every use.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use switchyard_domain::types::Resolved;
use switchyard_domain::{DomainError, Timestamp};

use super::identity::Identity;

/// How long one successful poll of the ledger head vouches for the cache.
/// Poll interval + this bound the staleness a change by another process can have.
pub const VOUCH: Duration = Duration::from_millis(600);

/// Entries per map; a full map is emptied (keys come from callers, so the
/// map must not grow without bound).
const CAPACITY: usize = 10_000;

/// A cached token: whom it speaks for, and until when (`None`: no expiry).
#[derive(Debug, Clone)]
pub struct CachedToken {
    pub identity: Identity,
    pub expires_at: Option<Timestamp>,
}

pub struct ReadCache {
    origin: Instant,
    epoch: AtomicU64,
    /// Milliseconds since `origin` until which the watcher vouches; 0: never.
    vouched_until: AtomicU64,
    tokens: Mutex<HashMap<String, (u64, CachedToken)>>,
    resolves: Mutex<HashMap<(String, String), (u64, Result<Resolved, DomainError>)>>,
}

impl Default for ReadCache {
    fn default() -> Self {
        ReadCache {
            origin: Instant::now(),
            epoch: AtomicU64::new(0),
            vouched_until: AtomicU64::new(0),
            tokens: Mutex::default(),
            resolves: Mutex::default(),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl ReadCache {
    /// Something changed (a commit here, or one another process made):
    /// every entry read before now stops counting.
    pub fn changed(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// The watcher saw the head as of `checked_at` (taken *before* its
    /// query): entries may be used until `checked_at + VOUCH`.
    pub fn vouch(&self, checked_at: Instant) {
        let until = millis((checked_at + VOUCH).saturating_duration_since(self.origin));
        self.vouched_until.fetch_max(until, Ordering::SeqCst);
    }

    /// The watcher lost sight of the database: stop answering from memory.
    pub fn withdraw(&self) {
        self.vouched_until.store(0, Ordering::SeqCst);
        self.changed();
    }

    /// The epoch to read under, if the cache may be used at all now.
    fn usable_epoch(&self) -> Option<u64> {
        let now = millis(self.origin.elapsed());
        (now < self.vouched_until.load(Ordering::SeqCst)).then(|| self.epoch.load(Ordering::SeqCst))
    }

    pub fn is_vouched(&self) -> bool {
        self.usable_epoch().is_some()
    }

    fn get<K, Q, V>(&self, map: &Mutex<HashMap<K, (u64, V)>>, key: &Q) -> Lookup<V>
    where
        K: Hash + Eq + Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let Some(epoch) = self.usable_epoch() else {
            return Lookup::Bypass;
        };
        let Ok(map) = map.lock() else {
            return Lookup::Bypass;
        };
        match map.get(key) {
            Some((e, v)) if *e == epoch => Lookup::Hit(v.clone()),
            _ => Lookup::Miss(epoch),
        }
    }

    /// Stores `value` read under `epoch`, unless a change came in meanwhile.
    fn put<K: Hash + Eq, V>(
        &self,
        map: &Mutex<HashMap<K, (u64, V)>>,
        epoch: u64,
        key: K,
        value: V,
    ) {
        let Ok(mut map) = map.lock() else { return };
        if self.epoch.load(Ordering::SeqCst) != epoch {
            return;
        }
        if map.len() >= CAPACITY {
            map.clear();
        }
        map.insert(key, (epoch, value));
    }

    /// The cached identity of a token hash, if it is cached and unexpired at `now`.
    pub fn token(&self, token_hash: &str, now: Timestamp) -> Lookup<Option<Identity>> {
        match self.get(&self.tokens, token_hash) {
            Lookup::Hit(t) if t.expires_at.is_none_or(|e| e > now) => Lookup::Hit(Some(t.identity)),
            Lookup::Hit(_) => Lookup::Hit(None),
            Lookup::Miss(e) => Lookup::Miss(e),
            Lookup::Bypass => Lookup::Bypass,
        }
    }

    pub fn put_token(&self, epoch: u64, token_hash: &str, token: CachedToken) {
        self.put(&self.tokens, epoch, token_hash.to_owned(), token);
    }

    pub fn resolve(&self, reference: &str, env: &str) -> Lookup<Result<Resolved, DomainError>> {
        self.get(&self.resolves, &(reference.to_owned(), env.to_owned()))
    }

    pub fn put_resolve(
        &self,
        epoch: u64,
        reference: &str,
        env: &str,
        answer: Result<Resolved, DomainError>,
    ) {
        self.put(
            &self.resolves,
            epoch,
            (reference.to_owned(), env.to_owned()),
            answer,
        );
    }
}

/// The result of a cache lookup.
#[derive(Debug)]
pub enum Lookup<V> {
    Hit(V),
    /// Not cached: read the database, then `put` under this epoch.
    Miss(u64),
    /// The watcher does not vouch for the cache: read the database, cache nothing.
    Bypass,
}

#[cfg(test)]
mod tests {
    use switchyard_domain::access::Role;

    use super::*;

    fn token(expires_at: Option<Timestamp>) -> CachedToken {
        CachedToken {
            identity: Identity {
                username: "ada".into(),
                role: Role::Admin,
                groups: Vec::new(),
                token: Some("ci".into()),
                bindings: Vec::new(),
            },
            expires_at,
        }
    }

    #[test]
    fn nothing_is_served_until_the_watcher_vouches() {
        let cache = ReadCache::default();
        assert!(matches!(cache.token("h", Timestamp::now()), Lookup::Bypass));
        cache.vouch(Instant::now());
        let Lookup::Miss(epoch) = cache.token("h", Timestamp::now()) else {
            panic!("expected a miss")
        };
        cache.put_token(epoch, "h", token(None));
        assert!(matches!(
            cache.token("h", Timestamp::now()),
            Lookup::Hit(Some(_))
        ));
        cache.withdraw();
        assert!(matches!(cache.token("h", Timestamp::now()), Lookup::Bypass));
    }

    #[test]
    fn a_change_drops_entries_and_refuses_reads_that_started_before_it() {
        let cache = ReadCache::default();
        cache.vouch(Instant::now());
        let Lookup::Miss(epoch) = cache.token("h", Timestamp::now()) else {
            panic!("expected a miss")
        };
        cache.put_token(epoch, "h", token(None));
        cache.changed();
        let Lookup::Miss(new_epoch) = cache.token("h", Timestamp::now()) else {
            panic!("expected a miss")
        };
        // A read that began before the change must not be stored.
        cache.put_token(epoch, "h", token(None));
        assert!(matches!(
            cache.token("h", Timestamp::now()),
            Lookup::Miss(_)
        ));
        cache.put_token(new_epoch, "h", token(None));
        assert!(matches!(cache.token("h", Timestamp::now()), Lookup::Hit(_)));
    }

    #[test]
    fn an_expired_token_is_refused_from_the_cache() {
        let cache = ReadCache::default();
        cache.vouch(Instant::now());
        let now = Timestamp::now();
        let Lookup::Miss(epoch) = cache.token("h", now) else {
            panic!("expected a miss")
        };
        cache.put_token(epoch, "h", token(Some(now.plus_hours(1))));
        assert!(matches!(cache.token("h", now), Lookup::Hit(Some(_))));
        assert!(matches!(
            cache.token("h", now.plus_hours(2)),
            Lookup::Hit(None)
        ));
    }

    #[test]
    fn a_vouch_lapses() {
        let cache = ReadCache::default();
        cache.vouch(Instant::now() - VOUCH - Duration::from_millis(5));
        assert!(!cache.is_vouched());
    }
}
