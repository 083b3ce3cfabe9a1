//! The server's inode store: what knfsd's local filesystem holds.
//!
//! Models an inode filesystem exported over NFSv3: inodes with numbers,
//! generations and link counts; directories mapping names to inodes; an inode is
//! freed when its link count reaches 0, and any later use of its handle is
//! STALE. Each procedure is applied atomically, as knfsd applies it with one
//! local VFS call (docs/semantics/nfs-server.md §1). Timestamps come from the server
//! clock, rounded down to the filesystem's granularity (docs/semantics/nfs-server.md §7,
//! docs/semantics/linux-nfs-client.md §12).
//!
//! Keeps no open state, as a v2/v3 server keeps none. Not modelled: permissions,
//! quotas, symlinks, sparse files, ENOSPC.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::proto::{Body, CreateMode, Fattr, Fh, Ftype, NfsStat, Reply, Request, Sattr, SetTime, Stable, Wcc};
use crate::clock::Nanos;

/// The order in which READDIR lists a directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReaddirOrder {
    /// Entries in the order they were created (a renamed-over name keeps its slot).
    #[default]
    Creation,
    /// A seeded hash of the name, as ext3 htree directories return them.
    Hashed,
}

#[derive(Clone, Debug)]
enum Kind {
    File(Vec<u8>),
    Dir(IndexMap<String, u64>),
}

#[derive(Clone, Debug)]
struct Inode {
    gen: u32,
    kind: Kind,
    nlink: u32,
    atime: Nanos,
    mtime: Nanos,
    ctime: Nanos,
    /// Bumped on every change: the v4-style change attribute (an option only for v3 clients).
    change: u64,
}

impl Inode {
    fn attrs(&self, ino: u64) -> Fattr {
        let (ftype, size) = match &self.kind {
            Kind::File(data) => (Ftype::Reg, data.len() as u64),
            Kind::Dir(entries) => (Ftype::Dir, 4096 * (1 + entries.len() as u64 / 128)),
        };
        Fattr { ftype, nlink: self.nlink, size, fileid: ino, atime: self.atime, mtime: self.mtime, ctime: self.ctime }
    }

    fn wcc_before(&self, ino: u64) -> (u64, Nanos, Nanos) {
        let a = self.attrs(ino);
        (a.size, a.mtime, a.ctime)
    }
}

/// The root directory's handle.
pub const ROOT: Fh = Fh { ino: 1, gen: 1 };

#[derive(Clone, Debug)]
pub struct Store {
    inodes: BTreeMap<u64, Inode>,
    ino_next: u64,
    /// Every inode gets a fresh generation, so a handle never matches a later inode.
    gen_next: u32,
    granularity_ns: i64,
    order: ReaddirOrder,
    order_seed: u64,
    /// The write verifier every WRITE and COMMIT reply carries; the server sets a
    /// new one at each boot.
    pub write_verf: u64,
    /// Durable images of files with UNSTABLE data not yet committed, by inode.
    unstable: BTreeMap<u64, Vec<u8>>,
}

/// One line of a namespace dump: a path and what is behind it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DumpEntry {
    pub path: String,
    pub ino: u64,
    pub nlink: u32,
    pub size: u64,
    pub dir: bool,
    pub mtime_ns: Nanos,
}

impl Store {
    pub fn new(now: Nanos, granularity_ns: i64, order: ReaddirOrder, order_seed: u64) -> Store {
        let mut store = Store {
            inodes: BTreeMap::new(),
            ino_next: 2,
            gen_next: 2,
            granularity_ns: granularity_ns.max(1),
            order,
            order_seed,
            write_verf: 1,
            unstable: BTreeMap::new(),
        };
        let t = store.stamp(now);
        store.inodes.insert(
            ROOT.ino,
            Inode {
                gen: ROOT.gen,
                kind: Kind::Dir(IndexMap::new()),
                nlink: 2,
                atime: t,
                mtime: t,
                ctime: t,
                change: 0,
            },
        );
        store
    }

    fn stamp(&self, now: Nanos) -> Nanos {
        now.div_euclid(self.granularity_ns) * self.granularity_ns
    }

    fn get(&self, fh: Fh) -> Result<&Inode, NfsStat> {
        match self.inodes.get(&fh.ino) {
            Some(inode) if inode.gen == fh.gen => Ok(inode),
            _ => Err(NfsStat::Stale),
        }
    }

    fn get_mut(&mut self, fh: Fh) -> Result<&mut Inode, NfsStat> {
        match self.inodes.get_mut(&fh.ino) {
            Some(inode) if inode.gen == fh.gen => Ok(inode),
            _ => Err(NfsStat::Stale),
        }
    }

    fn inode_and_unstable(&mut self, fh: Fh) -> Result<(&mut Inode, &mut BTreeMap<u64, Vec<u8>>), NfsStat> {
        match self.inodes.get_mut(&fh.ino) {
            Some(inode) if inode.gen == fh.gen => Ok((inode, &mut self.unstable)),
            _ => Err(NfsStat::Stale),
        }
    }

    fn fh(&self, ino: u64) -> Fh {
        Fh { ino, gen: self.inodes[&ino].gen }
    }

    fn attrs(&self, fh: Fh) -> Option<Fattr> {
        self.get(fh).ok().map(|i| i.attrs(fh.ino))
    }

    fn dir_entries(&self, dir: Fh) -> Result<&IndexMap<String, u64>, NfsStat> {
        match &self.get(dir)?.kind {
            Kind::Dir(entries) => Ok(entries),
            Kind::File(_) => Err(NfsStat::Notdir),
        }
    }

    fn dir_entries_mut(&mut self, dir: Fh) -> Result<&mut IndexMap<String, u64>, NfsStat> {
        match &mut self.get_mut(dir)?.kind {
            Kind::Dir(entries) => Ok(entries),
            Kind::File(_) => Err(NfsStat::Notdir),
        }
    }

    fn touch_dir(&mut self, dir: Fh, t: Nanos) {
        if let Ok(inode) = self.get_mut(dir) {
            inode.mtime = t;
            inode.ctime = t;
            inode.change += 1;
        }
    }

    fn alloc(&mut self, kind: Kind, nlink: u32, t: Nanos) -> u64 {
        let ino = self.ino_next;
        self.ino_next += 1;
        let gen = self.gen_next;
        self.gen_next += 1;
        self.inodes.insert(ino, Inode { gen, kind, nlink, atime: t, mtime: t, ctime: t, change: 0 });
        ino
    }

    /// Drops one link to `ino`; frees the inode when none is left.
    fn unref(&mut self, ino: u64, t: Nanos) {
        let inode = self.inodes.get_mut(&ino).expect("unref of a live inode");
        let is_dir = matches!(inode.kind, Kind::Dir(_));
        inode.nlink = if is_dir { 0 } else { inode.nlink.saturating_sub(1) };
        inode.ctime = t;
        inode.change += 1;
        if inode.nlink == 0 {
            self.inodes.remove(&ino);
            self.unstable.remove(&ino);
        }
    }

    /// Applies one procedure atomically at server time `now` and builds the reply.
    pub fn apply(&mut self, req: &Request, now: Nanos) -> Reply {
        let t = self.stamp(now);
        match req {
            Request::Getattr { fh } => match self.attrs(*fh) {
                Some(a) => Reply { status: Ok(Body::None), obj: Some(a), dir: None, dir2: None, obj_before: None },
                None => Reply::err(NfsStat::Stale),
            },
            Request::Setattr { fh, sattr } => self.setattr(*fh, sattr, t),
            Request::Lookup { dir, name } => {
                let status = self.dir_entries(*dir).and_then(|e| e.get(name).copied().ok_or(NfsStat::Noent));
                let dir_after = self.attrs(*dir).map(|a| Wcc { before: None, after: Some(a) });
                match status {
                    Ok(ino) => {
                        let fh = self.fh(ino);
                        Reply {
                            status: Ok(Body::Handle(fh)),
                            obj: self.attrs(fh),
                            dir: dir_after,
                            dir2: None,
                            obj_before: None,
                        }
                    }
                    Err(e) => Reply { status: Err(e), obj: None, dir: dir_after, dir2: None, obj_before: None },
                }
            }
            Request::Read { fh, offset, count } => match self.get(*fh).map(|i| &i.kind) {
                Ok(Kind::File(data)) => {
                    let start = (*offset as usize).min(data.len());
                    let end = (start + *count as usize).min(data.len());
                    let eof = end == data.len();
                    Reply {
                        status: Ok(Body::Read { data: data[start..end].to_vec(), eof }),
                        obj: self.attrs(*fh),
                        dir: None,
                        dir2: None,
                        obj_before: None,
                    }
                }
                Ok(Kind::Dir(_)) => Reply::err(NfsStat::Isdir),
                Err(e) => Reply::err(e),
            },
            Request::Write { fh, offset, stable, data } => {
                let verf = self.write_verf;
                let (inode, unstable) = match self.inode_and_unstable(*fh) {
                    Ok(x) => x,
                    Err(e) => return Reply::err(e),
                };
                let before = inode.wcc_before(fh.ino);
                let Kind::File(content) = &mut inode.kind else { return Reply::err(NfsStat::Isdir) };
                // An UNSTABLE write lands in the server's page cache only: keep the durable
                // image of the file until a COMMIT, so a reboot can lose it (docs/semantics/nfs-server.md §5).
                match stable {
                    Stable::Unstable => {
                        unstable.entry(fh.ino).or_insert_with(|| content.clone());
                    }
                    Stable::FileSync => {
                        if let Some(durable) = unstable.get_mut(&fh.ino) {
                            write_at(durable, *offset, data);
                        }
                    }
                }
                write_at(content, *offset, data);
                inode.mtime = t;
                inode.ctime = t;
                inode.change += 1;
                let count = data.len() as u32;
                Reply {
                    status: Ok(Body::Write { count, committed: *stable, verf }),
                    obj: self.attrs(*fh),
                    dir: None,
                    dir2: None,
                    obj_before: Some(before),
                }
            }
            Request::Commit { fh } => match self.attrs(*fh) {
                Some(a) => {
                    self.unstable.remove(&fh.ino);
                    Reply {
                        status: Ok(Body::Write { count: 0, committed: Stable::FileSync, verf: self.write_verf }),
                        obj: Some(a),
                        dir: None,
                        dir2: None,
                        obj_before: None,
                    }
                }
                None => Reply::err(NfsStat::Stale),
            },
            Request::Create { dir, name, mode } => self.create(*dir, name, *mode, t),
            Request::Mkdir { dir, name } => {
                let before = self.get(*dir).map(|i| i.wcc_before(dir.ino));
                let exists = match self.dir_entries(*dir) {
                    Ok(e) => e.contains_key(name),
                    Err(e) => return Reply::err(e),
                };
                if exists {
                    return self.dir_reply(Err(NfsStat::Exist), None, *dir, before.ok());
                }
                let ino = self.alloc(Kind::Dir(IndexMap::new()), 2, t);
                self.dir_entries_mut(*dir).expect("checked").insert(name.clone(), ino);
                self.get_mut(*dir).expect("checked").nlink += 1;
                self.touch_dir(*dir, t);
                let fh = self.fh(ino);
                self.dir_reply(Ok(Body::Handle(fh)), Some(fh), *dir, before.ok())
            }
            Request::Remove { dir, name } => self.remove(*dir, name, false, t),
            Request::Rmdir { dir, name } => self.remove(*dir, name, true, t),
            Request::Rename { from_dir, from_name, to_dir, to_name } => {
                self.rename(*from_dir, from_name, *to_dir, to_name, t)
            }
            Request::Link { fh, dir, name } => {
                let before = self.get(*dir).map(|i| i.wcc_before(dir.ino));
                let status = (|| {
                    if matches!(self.get(*fh)?.kind, Kind::Dir(_)) {
                        return Err(NfsStat::Isdir);
                    }
                    if self.dir_entries(*dir)?.contains_key(name) {
                        return Err(NfsStat::Exist);
                    }
                    self.dir_entries_mut(*dir)?.insert(name.clone(), fh.ino);
                    let inode = self.get_mut(*fh)?;
                    inode.nlink += 1;
                    inode.ctime = t;
                    inode.change += 1;
                    self.touch_dir(*dir, t);
                    Ok(Body::None)
                })();
                // nfs3_proc_link: the source's post-op attributes come back whether LINK succeeded or failed.
                self.dir_reply(status, Some(*fh), *dir, before.ok())
            }
            Request::Readdir { dir } => match self.dir_entries(*dir) {
                Ok(entries) => {
                    let mut names: Vec<String> = entries.keys().cloned().collect();
                    if self.order == ReaddirOrder::Hashed {
                        let seed = self.order_seed;
                        names.sort_by_key(|n| xxhash_rust::xxh3::xxh3_64_with_seed(n.as_bytes(), seed));
                    }
                    Reply {
                        status: Ok(Body::Entries(names)),
                        obj: self.attrs(*dir),
                        dir: None,
                        dir2: None,
                        obj_before: None,
                    }
                }
                Err(e) => Reply::err(e),
            },
        }
    }

    fn dir_reply(
        &self,
        status: Result<Body, NfsStat>,
        obj: Option<Fh>,
        dir: Fh,
        before: Option<(u64, Nanos, Nanos)>,
    ) -> Reply {
        Reply {
            status,
            obj: obj.and_then(|fh| self.attrs(fh)),
            dir: Some(Wcc { before, after: self.attrs(dir) }),
            dir2: None,
            obj_before: None,
        }
    }

    fn setattr(&mut self, fh: Fh, sattr: &Sattr, t: Nanos) -> Reply {
        let (inode, unstable) = match self.inode_and_unstable(fh) {
            Ok(x) => x,
            Err(e) => return Reply::err(e),
        };
        let before = inode.wcc_before(fh.ino);
        if let Some(size) = sattr.size {
            let Kind::File(content) = &mut inode.kind else { return Reply::err(NfsStat::Isdir) };
            content.resize(size as usize, 0);
            inode.mtime = t;
            // SETATTR is synchronous: a truncation is durable at once.
            if let Some(durable) = unstable.get_mut(&fh.ino) {
                durable.resize(size as usize, 0);
            }
        }
        let value = |how: SetTime| match how {
            SetTime::ServerTime => t,
            SetTime::ClientTime(ns) => ns,
        };
        if let Some(how) = sattr.atime {
            inode.atime = value(how);
        }
        if let Some(how) = sattr.mtime {
            inode.mtime = value(how);
        }
        inode.ctime = t;
        inode.change += 1;
        Reply { status: Ok(Body::None), obj: self.attrs(fh), dir: None, dir2: None, obj_before: Some(before) }
    }

    fn create(&mut self, dir: Fh, name: &str, mode: CreateMode, t: Nanos) -> Reply {
        let before = self.get(dir).map(|i| i.wcc_before(dir.ino));
        let existing = match self.dir_entries(dir) {
            Ok(e) => e.get(name).copied(),
            Err(e) => return Reply::err(e),
        };
        if let Some(ino) = existing {
            let fh = self.fh(ino);
            let status = match mode {
                CreateMode::Unchecked if matches!(self.inodes[&ino].kind, Kind::File(_)) => Ok(Body::Handle(fh)),
                CreateMode::Unchecked => Err(NfsStat::Isdir),
                CreateMode::Guarded => Err(NfsStat::Exist),
                // RFC 1813 §3.3.8: a replayed EXCLUSIVE create whose verifier matches
                // succeeds; knfsd (`nfsd3_create_file`) also wants the file still empty.
                CreateMode::Exclusive(verf) => {
                    let inode = &self.inodes[&ino];
                    let empty = matches!(&inode.kind, Kind::File(data) if data.is_empty());
                    if inode.mtime == verifier_mtime(verf) && inode.atime == verifier_atime(verf) && empty {
                        Ok(Body::Handle(fh))
                    } else {
                        Err(NfsStat::Exist)
                    }
                }
            };
            let obj = status.is_ok().then_some(fh);
            return self.dir_reply(status, obj, dir, before.ok());
        }
        let ino = self.alloc(Kind::File(Vec::new()), 1, t);
        if let CreateMode::Exclusive(verf) = mode {
            // knfsd keeps the verifier in mtime and atime until the client's SETATTR
            // (docs/semantics/linux-nfs-client.md §13).
            let inode = self.inodes.get_mut(&ino).expect("just allocated");
            inode.mtime = verifier_mtime(verf);
            inode.atime = verifier_atime(verf);
        }
        self.dir_entries_mut(dir).expect("checked").insert(name.to_string(), ino);
        self.touch_dir(dir, t);
        let fh = self.fh(ino);
        self.dir_reply(Ok(Body::Handle(fh)), Some(fh), dir, before.ok())
    }

    fn remove(&mut self, dir: Fh, name: &str, want_dir: bool, t: Nanos) -> Reply {
        let before = self.get(dir).map(|i| i.wcc_before(dir.ino));
        let status = (|| {
            let ino = *self.dir_entries(dir)?.get(name).ok_or(NfsStat::Noent)?;
            match (&self.inodes[&ino].kind, want_dir) {
                (Kind::Dir(_), false) => return Err(NfsStat::Isdir),
                (Kind::File(_), true) => return Err(NfsStat::Notdir),
                (Kind::Dir(entries), true) if !entries.is_empty() => return Err(NfsStat::Notempty),
                _ => {}
            }
            self.dir_entries_mut(dir)?.shift_remove(name);
            if want_dir {
                self.get_mut(dir)?.nlink -= 1;
            }
            self.unref(ino, t);
            self.touch_dir(dir, t);
            Ok(Body::None)
        })();
        self.dir_reply(status, None, dir, before.ok())
    }

    fn rename(&mut self, from_dir: Fh, from_name: &str, to_dir: Fh, to_name: &str, t: Nanos) -> Reply {
        let before_from = self.get(from_dir).map(|i| i.wcc_before(from_dir.ino)).ok();
        let before_to = self.get(to_dir).map(|i| i.wcc_before(to_dir.ino)).ok();
        let status = (|| {
            let src = *self.dir_entries(from_dir)?.get(from_name).ok_or(NfsStat::Noent)?;
            let dst = self.dir_entries(to_dir)?.get(to_name).copied();
            let src_is_dir = matches!(self.inodes[&src].kind, Kind::Dir(_));
            if let Some(dst) = dst {
                if dst == src {
                    // rename(2): both names refer to the same file, so nothing is done.
                    return Ok(Body::None);
                }
                match (&self.inodes[&dst].kind, src_is_dir) {
                    (Kind::Dir(_), false) => return Err(NfsStat::Isdir),
                    (Kind::File(_), true) => return Err(NfsStat::Notdir),
                    (Kind::Dir(e), true) if !e.is_empty() => return Err(NfsStat::Notempty),
                    _ => {}
                }
            }
            self.dir_entries_mut(from_dir)?.shift_remove(from_name);
            // IndexMap::insert on an existing key keeps its slot: the replaced name keeps its position.
            self.dir_entries_mut(to_dir)?.insert(to_name.to_string(), src);
            if let Some(dst) = dst {
                if src_is_dir {
                    self.get_mut(to_dir)?.nlink -= 1;
                }
                self.unref(dst, t);
            }
            if src_is_dir && from_dir != to_dir {
                self.get_mut(from_dir)?.nlink -= 1;
                self.get_mut(to_dir)?.nlink += 1;
            }
            let inode = self.inodes.get_mut(&src).expect("live");
            inode.ctime = t;
            inode.change += 1;
            self.touch_dir(from_dir, t);
            self.touch_dir(to_dir, t);
            Ok(Body::None)
        })();
        Reply {
            status,
            obj: None,
            dir: Some(Wcc { before: before_from, after: self.attrs(from_dir) }),
            dir2: Some(Wcc { before: before_to, after: self.attrs(to_dir) }),
            obj_before: None,
        }
    }

    /// Resolves a slash-separated path from the root, for oracles and dumps.
    pub fn resolve(&self, path: &str) -> Option<Fh> {
        let mut fh = ROOT;
        for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
            let ino = *self.dir_entries(fh).ok()?.get(part)?;
            fh = self.fh(ino);
        }
        Some(fh)
    }

    pub fn attrs_of(&self, path: &str) -> Option<Fattr> {
        self.resolve(path).and_then(|fh| self.attrs(fh))
    }

    /// The contents of a regular file, by path.
    pub fn read_file(&self, path: &str) -> Option<&[u8]> {
        match &self.get(self.resolve(path)?).ok()?.kind {
            Kind::File(data) => Some(data),
            Kind::Dir(_) => None,
        }
    }

    /// Calls `f(name, is_dir)` for each entry of the directory at `path`, in
    /// directory order, until `f` returns false; false if `f` stopped early.
    /// A missing path or a file has no entries. Unlike [`Store::dump`] it walks one
    /// directory and allocates nothing (the drain check runs it every 100 steps).
    pub fn scan_dir(&self, path: &str, mut f: impl FnMut(&str, bool) -> bool) -> bool {
        let Some(ino) = self.resolve(path) else { return true };
        let Ok(inode) = self.get(ino) else { return true };
        let Kind::Dir(entries) = &inode.kind else { return true };
        for (name, child) in entries {
            let dir = matches!(self.inodes[child].kind, Kind::Dir(_));
            if !f(name, dir) {
                return false;
            }
        }
        true
    }

    /// Every name under the root, depth first in directory order.
    pub fn dump(&self) -> Vec<DumpEntry> {
        let mut out = Vec::new();
        self.dump_dir(ROOT.ino, "", &mut out);
        out
    }

    fn dump_dir(&self, ino: u64, prefix: &str, out: &mut Vec<DumpEntry>) {
        let Kind::Dir(entries) = &self.inodes[&ino].kind else { return };
        for (name, &child) in entries {
            let path = format!("{prefix}{name}");
            let inode = &self.inodes[&child];
            let a = inode.attrs(child);
            let dir = matches!(inode.kind, Kind::Dir(_));
            out.push(DumpEntry {
                path: path.clone(),
                ino: child,
                nlink: a.nlink,
                size: a.size,
                dir,
                mtime_ns: a.mtime,
            });
            if dir {
                self.dump_dir(child, &format!("{path}/"), out);
            }
        }
    }

    /// After a rollback to an older snapshot: inode numbers and generations keep
    /// counting from where `newer` was, so a handle from before the crash never
    /// names a different, later file.
    pub fn keep_handles_unique(&mut self, newer: &Store) {
        self.ino_next = self.ino_next.max(newer.ino_next);
        self.gen_next = self.gen_next.max(newer.gen_next);
    }

    /// A reboot: every file with uncommitted UNSTABLE data reverts to its durable
    /// image (docs/semantics/nfs-server.md §5). Returns how many files lost data.
    pub fn lose_unstable(&mut self) -> usize {
        let unstable = std::mem::take(&mut self.unstable);
        let mut lost = 0;
        for (ino, durable) in unstable {
            if let Some(Inode { kind: Kind::File(content), .. }) = self.inodes.get_mut(&ino) {
                if *content != durable {
                    lost += 1;
                }
                *content = durable;
            }
        }
        lost
    }

    /// Number of live inodes, root included.
    pub fn inode_count(&self) -> usize {
        self.inodes.len()
    }
}

fn write_at(content: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let end = offset as usize + data.len();
    if content.len() < end {
        content.resize(end, 0);
    }
    content[offset as usize..end].copy_from_slice(data);
}

fn verifier_mtime(verf: u64) -> Nanos {
    ((verf >> 32) & 0x7fff_ffff) as Nanos * 1_000_000_000
}

fn verifier_atime(verf: u64) -> Nanos {
    (verf & 0x7fff_ffff) as Nanos * 1_000_000_000
}
