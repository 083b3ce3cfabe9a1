//! knfsd's duplicate request cache (docs/semantics/nfs-server.md §3).
//!
//! Models: entries keyed on the client's address and port, the xid, the
//! procedure and a checksum of the request; only non-idempotent procedures are
//! cached (knfsd marks the others `RC_NOCACHE`); an entry is *in progress*
//! until its reply is sent, and a duplicate that arrives meanwhile is dropped
//! (`RC_INPROG`); the cache is volatile and emptied on reboot. As in
//! `nfsd_cache_lookup`, a found entry is used whatever its age, and moved to
//! the LRU's tail with its timestamp set (`lru_put_end`), as is an entry whose
//! reply is stored (`nfsd_cache_update`); entries go only when a new one is
//! inserted, by `nfsd_prune_bucket_locked`: from the old end, skipping entries
//! in progress, while the cache is over its size or the entry's timestamp is
//! `ttl` (`RC_EXPIRE`, 120 s) old, at most four (`++freed > 3`).
//!
//! Left out: the memory-scaled size (the capacity is a parameter), the protocol
//! and version fields of the key (there is one of each), the hash buckets (one
//! LRU stands for all of them, so pruning looks at the oldest entries of the
//! whole cache, not of the new entry's bucket), the shrinker.
//!
//! Every operation is O(log n) but the skip over entries in progress: the LRU
//! order is a second map keyed by a monotonically increasing use stamp.

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
    /// Not cached: the request must be executed.
    Miss,
    /// The original is still being served: drop the duplicate.
    InProgress,
    /// The original's reply, to send again.
    Done(Rc<Reply>),
}

struct Entry {
    reply: Option<Rc<Reply>>,
    /// `c_timestamp`: when the entry was inserted, its reply stored or last hit.
    used_at: Duration,
    stamp: u64,
}

/// `nfsd_cache_lookup` prunes with `max` 3, and frees one more than that.
const PRUNE_MAX: usize = 3;

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

    /// `nfsd_prune_bucket_locked`: from the old end, entries in progress are
    /// skipped; the scan stops at the first done entry that is neither past
    /// the capacity nor `ttl` old, or after freeing `PRUNE_MAX + 1`.
    fn prune(&mut self, now: Duration) {
        let mut doomed = Vec::new();
        let mut len = self.entries.len();
        for key in self.lru.values() {
            let e = &self.entries[key];
            if e.reply.is_none() {
                continue;
            }
            if len <= self.capacity && now < e.used_at + self.ttl {
                break;
            }
            doomed.push(key.clone());
            len -= 1;
            if doomed.len() > PRUNE_MAX {
                break;
            }
        }
        for key in doomed {
            self.remove(&key);
        }
    }

    /// `lru_put_end`: the entry moves to the LRU's tail, used now.
    fn touch(&mut self, key: &DrcKey, now: Duration) {
        let stamp = self.stamp_next;
        let Some(e) = self.entries.get_mut(key) else { return };
        self.lru.remove(&e.stamp);
        e.stamp = stamp;
        e.used_at = now;
        self.lru.insert(stamp, key.clone());
        self.stamp_next += 1;
    }

    /// A found entry is used whatever its age, and touched.
    pub fn lookup(&mut self, key: &DrcKey, now: Duration) -> DrcLookup {
        if !self.entries.contains_key(key) {
            return DrcLookup::Miss;
        }
        self.touch(key, now);
        match &self.entries[key].reply {
            None => DrcLookup::InProgress,
            Some(r) => DrcLookup::Done(r.clone()),
        }
    }

    /// Records an executed request: in progress (`reply` None) or done; then prunes.
    pub fn insert(&mut self, key: DrcKey, reply: Option<Rc<Reply>>, now: Duration) {
        if self.capacity == 0 {
            return;
        }
        self.remove(&key);
        let stamp = self.stamp_next;
        self.stamp_next += 1;
        self.entries.insert(key.clone(), Entry { reply, used_at: now, stamp });
        self.lru.insert(stamp, key);
        self.prune(now);
    }

    /// `nfsd_cache_update`: an in-progress entry is done once its reply goes
    /// out, and touched.
    pub fn complete(&mut self, key: &DrcKey, reply: Rc<Reply>, now: Duration) {
        if let Some(e) = self.entries.get_mut(key) {
            e.reply = Some(reply);
            self.touch(key, now);
        }
    }
}
