//! Silly rename: files open on this client that were unlinked or renamed over
//! (docs/semantics/linux-nfs-client.md §9, §10; `fs/nfs/unlink.c`).
//!
//! Models: the count of open descriptors per inode on this host (`d_count`);
//! the `.nfs` + 16 hex digits of the file id + 8 hex digits of a per-client
//! counter name; the map from a silly-renamed inode to its hidden name, removed
//! at last close. The protection covers opens on this client only. A host crash
//! loses this state, so the `.nfs*` files stay on the server for good.
//!
//! Left out: `OPEN4_RESULT_PRESERVE_UNLINKED` (v4.1), asynchronous sillydelete.

use std::collections::BTreeMap;

use super::proto::Fh;

#[derive(Default)]
pub struct Silly {
    opens: BTreeMap<Fh, u32>,
    renamed: BTreeMap<Fh, (Fh, String)>,
    counter: u32,
}

impl Silly {
    pub fn opened(&mut self, fh: Fh) {
        *self.opens.entry(fh).or_default() += 1;
    }

    /// A descriptor closed. Returns the hidden name to remove if this was the last one.
    pub fn closed(&mut self, fh: Fh) -> Option<(Fh, String)> {
        let n = self.opens.get_mut(&fh)?;
        *n -= 1;
        if *n > 0 {
            return None;
        }
        self.opens.remove(&fh);
        self.renamed.remove(&fh)
    }

    pub fn is_busy(&self, fh: Fh) -> bool {
        self.opens.contains_key(&fh)
    }

    /// A fresh hidden name for `fh`.
    pub fn next_name(&mut self, fileid: u64) -> String {
        self.counter = self.counter.wrapping_add(1);
        format!(".nfs{:016x}{:08x}", fileid, self.counter)
    }

    pub fn renamed(&mut self, fh: Fh, dir: Fh, name: String) {
        self.renamed.insert(fh, (dir, name));
    }

    /// Whether `(dir, name)` is a silly name this client still holds (unlinking it gives EBUSY).
    pub fn holds(&self, fh: Fh) -> bool {
        self.renamed.contains_key(&fh)
    }
}
