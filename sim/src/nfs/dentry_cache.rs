//! The client's lookup (dentry) cache: positive and negative entries per
//! (directory, name) (docs/semantics/linux-nfs-client.md §4).
//!
//! Each entry stores its parent directory's change verifier from the time it was
//! made: the directory's ctime at the server's timestamp granularity, as the
//! Linux v3 client keys on ctime (§7); and the time it was made or last
//! revalidated, which Linux 2.2's age-based rules read
//! (docs/semantics/linux-2.2-client.md). The trust rules (when an entry may answer
//! without a LOOKUP) live in the client, which knows the intent of each walk;
//! this module only stores entries and records the trace event that made them.
//!
//! Left out: the dcache's LRU shrinking under memory pressure (entries live until
//! replaced or the host crashes), and `d_count`: open files are counted by the
//! client per inode instead.

use std::collections::BTreeMap;
use std::time::Duration;

use super::proto::{Fh, Ftype};
use crate::clock::Nanos;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DentryKind {
    Positive { fh: Fh, ftype: Ftype },
    Negative,
}

#[derive(Clone, Copy, Debug)]
pub struct Dentry {
    pub kind: DentryKind,
    /// The parent directory's ctime when the entry was made.
    pub verifier: Nanos,
    /// True time the entry was made or last revalidated (`d_time`, renewed by
    /// `nfs_renew_times`), for the age-based rules of Linux 2.2.
    pub renewed: Duration,
    pub filled_by_ev: u64,
}

#[derive(Default)]
pub struct DentryCache {
    dirs: BTreeMap<Fh, BTreeMap<String, Dentry>>,
}

impl DentryCache {
    pub fn get(&self, dir: Fh, name: &str) -> Option<Dentry> {
        self.dirs.get(&dir).and_then(|d| d.get(name)).copied()
    }

    pub fn insert(&mut self, dir: Fh, name: &str, dentry: Dentry) {
        let entries = self.dirs.entry(dir).or_default();
        match entries.get_mut(name) {
            Some(e) => *e = dentry,
            None => {
                entries.insert(name.to_string(), dentry);
            }
        }
    }

    /// Every entry, by directory then name.
    pub fn entries(&self) -> impl Iterator<Item = (Fh, &str, &Dentry)> {
        self.dirs.iter().flat_map(|(dir, names)| names.iter().map(move |(name, d)| (*dir, name.as_str(), d)))
    }

    pub fn remove(&mut self, dir: Fh, name: &str) {
        if let Some(d) = self.dirs.get_mut(&dir) {
            d.remove(name);
        }
    }
}
