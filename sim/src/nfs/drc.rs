//! knfsd's duplicate request cache (docs/semantics/nfs-server.md §3).
//!
//! Models: entries keyed on the client's address and port, the xid, the
//! procedure and a checksum of the request; only non-idempotent procedures are
//! cached (knfsd marks the others `RC_NOCACHE`); a bounded size with LRU eviction;
//! expiry after `ttl` (`RC_EXPIRE`, 120 s); an entry is *in progress* until its
//! reply is sent, and a duplicate that arrives meanwhile is dropped (`RC_INPROG`);
//! the cache is volatile and emptied on reboot.
//!
//! Left out: the memory-scaled size (the capacity is a parameter), the protocol
//! and version fields of the key (there is one of each), per-bucket locking.
//!
//! Every operation is O(log n): the LRU order is a second map keyed by a
//! monotonically increasing use stamp.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use super::proto::{Proc, Reply};
use crate::engine::Addr;

/// What identifies a request to the DRC.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DrcKey {
    pub client: Addr,
    pub xid: u32,
    pub proc: Proc,
    /// XXH3 of the first 256 bytes of the encoded arguments (`RC_CSUMLEN`).
    pub checksum: u64,
}

/// What a lookup found.
pub enum DrcLookup {
    /// Not cached (or expired): the request must be executed.
    Miss,
    /// The original is still being served: drop the duplicate.
    InProgress,
    /// The original's reply, to send again.
    Done(Rc<Reply>),
}

struct Entry {
    reply: Option<Rc<Reply>>,
    inserted_at: Duration,
    stamp: u64,
}

pub struct Drc {
    capacity: usize,
    ttl: Duration,
    entries: BTreeMap<DrcKey, Entry>,
    lru: BTreeMap<u64, DrcKey>,
    stamp_next: u64,
}

impl Drc {
    pub fn new(capacity: usize, ttl: Duration) -> Drc {
        Drc { capacity, ttl, entries: BTreeMap::new(), lru: BTreeMap::new(), stamp_next: 0 }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A reboot: the cache lives in memory only.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.lru.clear();
    }

    fn remove(&mut self, key: &DrcKey) {
        if let Some(e) = self.entries.remove(key) {
            self.lru.remove(&e.stamp);
        }
    }

    /// Drops expired entries from the old end of the LRU, and evicts past capacity.
    fn prune(&mut self, now: Duration) {
        while let Some((_, key)) = self.lru.first_key_value() {
            let key = key.clone();
            let expired = self.entries.get(&key).is_some_and(|e| now >= e.inserted_at + self.ttl);
            if expired || self.entries.len() > self.capacity {
                self.remove(&key);
            } else {
                break;
            }
        }
    }

    pub fn lookup(&mut self, key: &DrcKey, now: Duration) -> DrcLookup {
        self.prune(now);
        let stamp = self.stamp_next;
        let Some(e) = self.entries.get_mut(key) else { return DrcLookup::Miss };
        if now >= e.inserted_at + self.ttl {
            self.remove(key);
            return DrcLookup::Miss;
        }
        // A hit refreshes the entry's place in the LRU, as knfsd moves it to the tail.
        self.lru.remove(&e.stamp);
        e.stamp = stamp;
        self.lru.insert(stamp, key.clone());
        self.stamp_next += 1;
        match &e.reply {
            None => DrcLookup::InProgress,
            Some(r) => DrcLookup::Done(r.clone()),
        }
    }

    /// Records an executed request: in progress (`reply` None) or done.
    pub fn insert(&mut self, key: DrcKey, reply: Option<Rc<Reply>>, now: Duration) {
        if self.capacity == 0 {
            return;
        }
        self.remove(&key);
        let stamp = self.stamp_next;
        self.stamp_next += 1;
        self.entries.insert(key.clone(), Entry { reply, inserted_at: now, stamp });
        self.lru.insert(stamp, key);
        self.prune(now);
    }

    /// Marks an in-progress entry done once its reply goes out.
    pub fn complete(&mut self, key: &DrcKey, reply: Rc<Reply>) {
        if let Some(e) = self.entries.get_mut(key) {
            e.reply = Some(reply);
        }
    }
}
