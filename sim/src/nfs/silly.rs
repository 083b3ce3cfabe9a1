//! Silly rename: files open on this client that were unlinked or renamed over
//! (docs/semantics/linux-nfs-client.md §9, §10; `fs/nfs/unlink.c`).
//!
//! Linux asks whether the *dentry* being removed is in use (`d_count`), not
//! whether its inode is open: a file open through `a` and unlinked through its
//! hard link `b` is a plain REMOVE. So this table keeps the dentries that open
//! descriptors hold: where each is hashed now (its directory and name, which a
//! rename moves and a silly rename hides), its inode, and how many descriptors
//! hold it. A hidden (`.nfs…`) dentry is removed from the server when its last
//! descriptor closes. The protection covers opens on this client only. A host
//! crash loses this state, so the `.nfs*` files stay on the server for good.
//!
//! Left out: `OPEN4_RESULT_PRESERVE_UNLINKED` (v4.1), asynchronous sillydelete,
//! references other than open descriptors (a process's cwd).

use std::collections::BTreeMap;

use super::proto::Fh;

/// A dentry held open by at least one descriptor.
pub type DentryId = u64;

struct Held {
    /// Where the dentry is hashed now; `None` once it is not (another name took
    /// its place, or it was removed while open on another path).
    at: Option<(Fh, String)>,
    fh: Fh,
    opens: u32,
    /// Silly-renamed (`DCACHE_NFSFS_RENAMED`): removed at last close.
    hidden: bool,
}

#[derive(Default)]
pub struct Silly {
    held: BTreeMap<DentryId, Held>,
    next_id: DentryId,
    counter: u32,
}

impl Silly {
    fn at(&self, dir: Fh, name: &str) -> Option<DentryId> {
        self.held.iter().find(|(_, h)| h.at.as_ref().is_some_and(|(d, n)| *d == dir && n == name)).map(|(id, _)| *id)
    }

    /// A descriptor opened `fh` through the dentry `at` (`None` for the root).
    pub fn opened(&mut self, at: Option<(Fh, &str)>, fh: Fh) -> DentryId {
        if let Some((dir, name)) = at {
            if let Some(id) = self.at(dir, name) {
                let h = self.held.get_mut(&id).expect("found");
                if h.fh == fh {
                    h.opens += 1;
                    return id;
                }
                // The name now leads to another inode (the walk dropped the old
                // dentry, `d_invalidate`): the old one stays with its descriptors.
                h.at = None;
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.held.insert(id, Held { at: at.map(|(d, n)| (d, n.to_string())), fh, opens: 1, hidden: false });
        id
    }

    /// A descriptor closed. Returns the hidden name to remove if it held the
    /// last reference to a silly-renamed dentry.
    pub fn closed(&mut self, id: DentryId) -> Option<(Fh, String)> {
        let h = self.held.get_mut(&id)?;
        h.opens -= 1;
        if h.opens > 0 {
            return None;
        }
        let h = self.held.remove(&id).expect("present");
        if h.hidden {
            h.at
        } else {
            None
        }
    }

    /// `nfs_unlink` / `nfs_rename`: whether the dentry `(dir, name)` for `fh`
    /// is held by a descriptor, so removing it must silly-rename it.
    pub fn is_busy(&self, dir: Fh, name: &str, fh: Fh) -> bool {
        self.at(dir, name).is_some_and(|id| self.held[&id].fh == fh)
    }

    /// Whether `(dir, name)` is a silly name this client still holds (unlinking it gives EBUSY).
    pub fn holds(&self, dir: Fh, name: &str) -> bool {
        self.at(dir, name).is_some_and(|id| self.held[&id].hidden)
    }

    /// A fresh hidden name for `fh`.
    pub fn next_name(&mut self, fileid: u64) -> String {
        self.counter = self.counter.wrapping_add(1);
        format!(".nfs{:016x}{:08x}", fileid, self.counter)
    }

    /// `nfs_sillyrename` moved the held dentry `(dir, name)` to `hidden`.
    /// Returns false if no descriptor holds it any more (the last one closed
    /// while the RENAME was on the wire): the unlink's own reference was the
    /// last, so the hidden name is to be removed now.
    pub fn renamed(&mut self, dir: Fh, name: &str, hidden: String) -> bool {
        let Some(id) = self.at(dir, name) else { return false };
        let h = self.held.get_mut(&id).expect("found");
        h.at = Some((dir, hidden));
        h.hidden = true;
        true
    }

    /// A REMOVE of `(dir, name)` succeeded: a held dentry there (of another
    /// inode than the one removed) is no longer hashed.
    pub fn removed(&mut self, dir: Fh, name: &str) {
        if let Some(id) = self.at(dir, name) {
            self.held.get_mut(&id).expect("found").at = None;
        }
    }

    /// A RENAME succeeded: `d_move` takes the source's dentry, and the
    /// descriptors holding it, to the target name, which no other held dentry
    /// keeps.
    pub fn moved(&mut self, from: (Fh, &str), to: (Fh, &str), fh: Fh) {
        let source = self.at(from.0, from.1).filter(|id| self.held[id].fh == fh);
        self.removed(to.0, to.1);
        if let Some(id) = source {
            self.held.get_mut(&id).expect("found").at = Some((to.0, to.1.to_string()));
        }
    }
}
