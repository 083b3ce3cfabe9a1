//! The client's attribute cache, one entry per file handle (docs/semantics/linux-nfs-client.md §1–§3).
//!
//! Models `nfs_update_inode()`'s adaptive timeout (§2): each entry has
//! `attrtimeo`, starting at acregmin (files) or acdirmin (directories), and
//! `attrtimeo_timestamp`. Attributes are fresh while `now < fetched_at +
//! attrtimeo`. New attributes that differ reset the timeout to the minimum; equal
//! attributes arriving once the timeout has run out double it, up to the maximum,
//! and every equal refresh restarts the timeout's clock (`attrtimeo_timestamp`).
//! Every entry remembers the trace event that filled it, for `served_by`.
//!
//! Left out: the separate invalidation bits Linux keeps per attribute
//! (`NFS_INO_INVALID_*`); an entry is fresh or not as a whole. atime is not
//! compared, as a v3 client does not track it reliably (§12).

use std::collections::BTreeMap;
use std::time::Duration;

use super::mount::AcBounds;
use super::proto::{Fattr, Fh, Ftype};

#[derive(Clone, Copy, Debug)]
pub struct AttrEntry {
    pub attr: Fattr,
    pub fetched_at: Duration,
    pub attrtimeo: Duration,
    pub attrtimeo_timestamp: Duration,
    /// The trace event whose reply filled the entry.
    pub filled_by_ev: u64,
    /// Marked stale by the client itself (`NFS_INO_INVALID_*` after an unlink
    /// or rename): not fresh until new attributes arrive, whatever the timeout.
    pub invalid: bool,
}

impl AttrEntry {
    pub fn is_fresh(&self, now: Duration) -> bool {
        self.fresh_for(now) > Duration::ZERO
    }

    /// How much longer the entry stays fresh.
    pub fn fresh_for(&self, now: Duration) -> Duration {
        if self.invalid {
            Duration::ZERO
        } else {
            (self.fetched_at + self.attrtimeo).saturating_sub(now)
        }
    }
}

/// Whether two attribute sets differ in anything the client compares.
pub fn attrs_differ(a: &Fattr, b: &Fattr) -> bool {
    a.mtime != b.mtime || a.ctime != b.ctime || a.size != b.size || a.nlink != b.nlink || a.fileid != b.fileid
}

pub struct AttrCache {
    bounds: AcBounds,
    entries: BTreeMap<Fh, AttrEntry>,
}

impl AttrCache {
    pub fn new(bounds: AcBounds) -> AttrCache {
        AttrCache { bounds, entries: BTreeMap::new() }
    }

    fn min_max(&self, ftype: Ftype) -> (Duration, Duration) {
        match ftype {
            Ftype::Reg => (self.bounds.reg_min, self.bounds.reg_max),
            Ftype::Dir => (self.bounds.dir_min, self.bounds.dir_max),
        }
    }

    /// Every entry, by file handle.
    pub fn entries(&self) -> impl Iterator<Item = (Fh, &AttrEntry)> {
        self.entries.iter().map(|(fh, e)| (*fh, e))
    }

    pub fn get(&self, fh: Fh) -> Option<&AttrEntry> {
        self.entries.get(&fh)
    }

    /// The cached attributes if they are still fresh.
    pub fn fresh(&self, fh: Fh, now: Duration) -> Option<&AttrEntry> {
        self.entries.get(&fh).filter(|e| e.is_fresh(now))
    }

    /// Stores attributes that came from the server (docs/semantics/linux-nfs-client.md §2, steps 1–3).
    /// Returns whether they differ from the cached ones.
    pub fn update(&mut self, fh: Fh, attr: Fattr, now: Duration, ev: u64) -> bool {
        let (min, max) = self.min_max(attr.ftype);
        match self.entries.get_mut(&fh) {
            None => {
                self.entries.insert(
                    fh,
                    AttrEntry {
                        attr,
                        fetched_at: now,
                        attrtimeo: min,
                        attrtimeo_timestamp: now,
                        filled_by_ev: ev,
                        invalid: false,
                    },
                );
                true
            }
            Some(e) => {
                let changed = attrs_differ(&e.attr, &attr);
                if changed {
                    e.attrtimeo = min;
                    e.attrtimeo_timestamp = now;
                } else {
                    // Linux doubles only when this refresh comes after the timeout ran
                    // out, but restarts the timeout's clock on every unchanged refresh, so
                    // a file refreshed more often than its timeout keeps it (§2, step 2).
                    if now >= e.attrtimeo_timestamp + e.attrtimeo {
                        e.attrtimeo = (e.attrtimeo * 2).min(max);
                    }
                    e.attrtimeo_timestamp = now;
                }
                e.attr = attr;
                e.fetched_at = now;
                e.filled_by_ev = ev;
                e.invalid = false;
                changed
            }
        }
    }

    /// Marks an entry stale without forgetting it (the verifier stays
    /// comparable) and without touching its timeout, as Linux sets invalid
    /// bits and leaves `attrtimeo` alone.
    pub fn expire(&mut self, fh: Fh) {
        if let Some(e) = self.entries.get_mut(&fh) {
            e.invalid = true;
        }
    }

    /// Forgets a handle the server called stale.
    pub fn forget(&mut self, fh: Fh) {
        self.entries.remove(&fh);
    }
}
