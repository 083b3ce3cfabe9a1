//! The client's page cache for one file: cached contents, dirty data, and
//! UNSTABLE data not yet committed (docs/semantics/linux-nfs-client.md §8; docs/semantics/nfs-server.md §5).
//!
//! Models: write-back (writes land in the client's image of the file and are
//! sent at close, fsync or a stat, in wsize chunks, then COMMITted); the local
//! file size (`i_size`), which server attributes do not shrink while data is
//! dirty (`nfs_update_inode`); invalidation of clean data when the server's
//! attributes show a change this client did not make itself (told apart by the
//! WCC pre-op attributes of its own WRITE and SETATTR replies); and the
//! uncommitted extents with the write verifier they were written under, so a
//! changed verifier at COMMIT makes the client resend them.
//!
//! Left out: page granularity (a file is cached whole or not at all; Mailman's
//! files are small), readahead, memory pressure, mmap.

use super::proto::Fattr;
use crate::clock::Nanos;

/// `(size, mtime, ctime)`: what the client compares to decide whether a file changed.
pub type DataVerifier = (u64, Nanos, Nanos);

pub fn verifier_of(a: &Fattr) -> DataVerifier {
    (a.size, a.mtime, a.ctime)
}

#[derive(Default)]
pub struct Pages {
    /// The client's image of the file. When `known`, it is the whole file
    /// (`image.len() == size`); otherwise only the dirty extents are meaningful.
    image: Vec<u8>,
    known: bool,
    /// The server state the clean data reflects.
    verifier: Option<DataVerifier>,
    /// Sorted, disjoint `[start, end)` extents not yet sent.
    dirty: Vec<(u64, u64)>,
    /// Extents a flush has taken and not yet sent (pages under writeback):
    /// pinned like dirty data, so that a fill by another process of this
    /// host during the flush's WRITEs neither overwrites nor cuts them off.
    writeback: Vec<(u64, u64)>,
    /// Extents sent UNSTABLE and not yet committed, with the write verifier of their reply.
    uncommitted: Vec<(u64, u64, u64)>,
    /// The local file size.
    pub size: u64,
    /// The trace event that last filled the clean data.
    pub filled_by_ev: u64,
}

impl Pages {
    pub fn is_known(&self) -> bool {
        self.known
    }

    pub fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    pub fn has_unstable(&self) -> bool {
        !self.dirty.is_empty() || !self.uncommitted.is_empty()
    }

    /// Server attributes arrived. `before` is the WCC pre-op state when they came
    /// from this client's own WRITE or SETATTR. Returns true if clean data was dropped.
    pub fn absorb(&mut self, attr: &Fattr, before: Option<DataVerifier>) -> bool {
        let v = verifier_of(attr);
        let mut dropped = false;
        if self.verifier != Some(v) {
            let own = before.is_some() && before == self.verifier;
            if !own && self.verifier.is_some() && self.known {
                self.known = false;
                dropped = true;
            }
            self.verifier = Some(v);
        }
        self.size = if self.pinned_end() == 0 { attr.size } else { self.size.max(attr.size) };
        if self.known && self.image.len() as u64 != self.size {
            self.known = false;
            dropped = true;
        }
        dropped
    }

    /// Drops clean data (close-to-open found the file changed).
    pub fn invalidate(&mut self) {
        self.known = false;
    }

    /// A write by a local process.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        let end = offset + data.len() as u64;
        if (self.image.len() as u64) < end {
            self.image.resize(end as usize, 0);
        }
        if self.known && offset > self.size {
            // The hole between the old end and the write reads as zeros.
            self.image[self.size as usize..offset as usize].fill(0);
        }
        self.image[offset as usize..end as usize].copy_from_slice(data);
        add_extent(&mut self.dirty, offset, end);
        self.size = self.size.max(end);
        if self.known {
            self.image.truncate(self.size as usize);
        }
    }

    /// Reads from the cache when the whole file is known.
    pub fn read(&self, pos: u64, len: usize) -> Option<&[u8]> {
        if !self.known {
            return None;
        }
        let start = (pos as usize).min(self.image.len());
        let end = (start + len).min(self.image.len());
        Some(&self.image[start..end])
    }

    /// The whole file as read from the server; local dirty and uncommitted data stays on top.
    pub fn fill(&mut self, server: Vec<u8>, ev: u64) {
        let mut image = server;
        let pinned =
            self.dirty.iter().chain(&self.writeback).copied().chain(self.uncommitted.iter().map(|&(s, e, _)| (s, e)));
        for (s, e) in pinned {
            if self.image.len() < e as usize {
                continue;
            }
            if (image.len() as u64) < e {
                image.resize(e as usize, 0);
            }
            image[s as usize..e as usize].copy_from_slice(&self.image[s as usize..e as usize]);
        }
        let dirty_end = self.pinned_end();
        self.size = if dirty_end == 0 { image.len() as u64 } else { self.size.max(dirty_end) };
        image.resize(self.size as usize, 0);
        self.image = image;
        self.known = true;
        self.filled_by_ev = ev;
    }

    /// A local truncation (ftruncate, O_TRUNC), already applied on the server.
    pub fn truncate(&mut self, len: u64) {
        self.image.resize(len as usize, 0);
        clip(&mut self.dirty, len);
        clip(&mut self.writeback, len);
        self.uncommitted.retain(|&(s, _, _)| s < len);
        for u in &mut self.uncommitted {
            u.1 = u.1.min(len);
        }
        self.size = len;
    }

    /// Takes the dirty extents to send; they stay pinned as writeback until
    /// [`Pages::written`] or [`Pages::writeback_failed`].
    pub fn take_dirty(&mut self) -> Vec<(u64, u64)> {
        let dirty = std::mem::take(&mut self.dirty);
        for &(s, e) in &dirty {
            add_extent(&mut self.writeback, s, e);
        }
        dirty
    }

    /// `[start, end)` reached the server.
    pub fn written(&mut self, start: u64, end: u64) {
        remove_extent(&mut self.writeback, start, end);
    }

    /// A flush failed: what it had not sent is dirty again.
    pub fn writeback_failed(&mut self) {
        for (s, e) in std::mem::take(&mut self.writeback) {
            add_extent(&mut self.dirty, s, e);
        }
    }

    /// The end of the last dirty or writeback extent (0 without any).
    fn pinned_end(&self) -> u64 {
        let end = |x: &Vec<(u64, u64)>| x.last().map_or(0, |&(_, e)| e);
        end(&self.dirty).max(end(&self.writeback))
    }

    pub fn bytes(&self, start: u64, end: u64) -> &[u8] {
        &self.image[start as usize..end as usize]
    }

    pub fn sent_unstable(&mut self, start: u64, end: u64, verf: u64) {
        self.uncommitted.push((start, end, verf));
    }

    /// A COMMIT answered with `verf`: extents written under another verifier
    /// were lost by a server reboot and are dirty again (docs/semantics/nfs-server.md §5).
    /// Returns how many extents must be resent.
    pub fn committed(&mut self, verf: u64) -> usize {
        let mut resend = 0;
        for (s, e, v) in std::mem::take(&mut self.uncommitted) {
            if v != verf {
                add_extent(&mut self.dirty, s, e);
                resend += 1;
            }
        }
        resend
    }
}

fn add_extent(extents: &mut Vec<(u64, u64)>, start: u64, end: u64) {
    if start >= end {
        return;
    }
    let (mut s, mut e) = (start, end);
    // Merge with every overlapping or touching extent; the list stays sorted and disjoint.
    let first = extents.partition_point(|&(_, pe)| pe < s);
    let mut last = first;
    while last < extents.len() && extents[last].0 <= e {
        s = s.min(extents[last].0);
        e = e.max(extents[last].1);
        last += 1;
    }
    extents.splice(first..last, std::iter::once((s, e)));
}

/// Removes `[start, end)` from sorted, disjoint extents.
fn remove_extent(extents: &mut Vec<(u64, u64)>, start: u64, end: u64) {
    let mut out = Vec::with_capacity(extents.len() + 1);
    for &(s, e) in extents.iter() {
        if e <= start || s >= end {
            out.push((s, e));
            continue;
        }
        if s < start {
            out.push((s, start));
        }
        if e > end {
            out.push((end, e));
        }
    }
    *extents = out;
}

fn clip(extents: &mut Vec<(u64, u64)>, len: u64) {
    extents.retain(|&(s, _)| s < len);
    for x in extents.iter_mut() {
        x.1 = x.1.min(len);
    }
}
