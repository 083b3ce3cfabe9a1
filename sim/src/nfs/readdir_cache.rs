//! The client's readdir cache: one listing per directory, kept with the
//! directory's change verifier (docs/semantics/linux-nfs-client.md §7).
//!
//! A listing is reused while the directory's ctime still equals the one it was
//! read under; `opendir` forces a GETATTR of the directory first (close-to-open,
//! §6), so a listing is re-read exactly when the change state has moved. The
//! client drops a directory's listing when it changes that directory itself.
//! A stale listing can omit new entries or show removed ones.
//!
//! Left out: cookies and partial (paged) listings; READDIRPLUS.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::proto::Fh;
use crate::clock::Nanos;

pub struct Listing {
    pub names: Rc<[String]>,
    pub verifier: Nanos,
    pub filled_by_ev: u64,
}

#[derive(Default)]
pub struct ReaddirCache {
    listings: BTreeMap<Fh, Listing>,
}

impl ReaddirCache {
    pub fn get(&self, dir: Fh, verifier: Nanos) -> Option<&Listing> {
        self.listings.get(&dir).filter(|l| l.verifier == verifier)
    }

    pub fn insert(&mut self, dir: Fh, listing: Listing) {
        self.listings.insert(dir, listing);
    }

    pub fn invalidate(&mut self, dir: Fh) {
        self.listings.remove(&dir);
    }
}
