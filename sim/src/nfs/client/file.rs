//! Open files and their data: `stat`, `open` with close-to-open, exclusive
//! create, close, and reads and write-back writes through the page cache.

use super::*;

impl NfsClient {
    pub async fn stat(&self, ctx: &Ctx, path: &str) -> Res<Attr> {
        retry_estale!(self, reval => self.stat_once(ctx, path, reval).await)
    }

    pub(super) async fn stat_once(&self, ctx: &Ctx, path: &str, reval: Reval) -> Res<Attr> {
        let (fh, _) = self.resolve(ctx, path, reval).await?;
        // A process sees its own writes: dirty pages go out before the attributes.
        self.flush(ctx, fh, false).await?;
        let attr = if reval { self.getattr(ctx, fh).await? } else { self.cached_or_getattr(ctx, fh).await? };
        Ok(self.view(fh, attr))
    }

    pub async fn open(&self, ctx: &Ctx, path: &str, flags: Flags) -> Res<u32> {
        retry_estale!(self, reval => self.open_once(ctx, path, flags, reval).await)
    }

    pub(super) async fn open_once(&self, ctx: &Ctx, path: &str, flags: Flags, reval: Reval) -> Res<u32> {
        let parts = split_path(path)?;
        // The walk's dentry is held from the lookup on, as the path walk holds
        // a reference to it in Linux: a rename over the name on this host
        // while this open waits for its GETATTR sees it in use (§10).
        let (fh, attr, hold) = match parts.split_last() {
            None => {
                if flags.write || flags.truncate || flags.create {
                    return Err(libc::EISDIR);
                }
                self.found(ctx, None, ROOT).await?
            }
            Some((name, dirs)) => {
                let dir = self.walk_dirs(ctx, dirs, reval).await?;
                let at = Some((dir, *name));
                if flags.create && flags.exclusive {
                    // open_last_lookups: O_CREAT holds the directory exclusively
                    // across the lookup and the create (with its SETATTR).
                    let _held = self.lock_dir(dir, Mode::Exclusive).await;
                    let (fh, attr) = match self.options.exclusive_create {
                        ExclusiveCreate::Exclusive => {
                            if self.lookup_locked(ctx, dir, name, Intent::Exclusive, reval).await?.is_some() {
                                return Err(libc::EEXIST);
                            }
                            self.create_exclusive(ctx, dir, name).await?
                        }
                        ExclusiveCreate::LookupThenCreate => {
                            if self.lookup_locked(ctx, dir, name, Intent::Create, reval).await?.is_some() {
                                return Err(libc::EEXIST);
                            }
                            self.create_unchecked(ctx, dir, name).await?
                        }
                    };
                    (fh, attr, self.hold(at, fh))
                } else if flags.create {
                    // A trusted positive dentry opens without the directory lock
                    // (the opportunistic O_CREAT lookup; 2.2's open_namei locked
                    // only to create); otherwise the lookup and the CREATE run
                    // under the lock, taken exclusively.
                    match self.lookup_cached(ctx, dir, name, Intent::Create, reval).await? {
                        Cached::Hit(Some((fh, _))) => self.found(ctx, at, fh).await?,
                        cached => {
                            let held = self.lock_dir(dir, Mode::Exclusive).await;
                            let cached = if held.waited {
                                self.lookup_cached(ctx, dir, name, Intent::Create, reval).await?
                            } else {
                                cached
                            };
                            match self.lookup_slow(ctx, dir, name, Intent::Create, cached).await? {
                                Some((fh, _)) => self.found(ctx, at, fh).await?,
                                None => {
                                    let (fh, attr) = self.create_unchecked(ctx, dir, name).await?;
                                    (fh, attr, self.hold(at, fh))
                                }
                            }
                        }
                    }
                } else {
                    match self.lookup_name(ctx, dir, name, Intent::Plain, reval).await? {
                        Some((fh, _)) => self.found(ctx, at, fh).await?,
                        None => return Err(libc::ENOENT),
                    }
                }
            }
        };
        let ready = async {
            if attr.ftype == Ftype::Dir && (flags.write || flags.truncate) {
                return Err(libc::EISDIR);
            }
            if attr.ftype == Ftype::Reg {
                self.pages.borrow_mut().entry(fh).or_default().absorb(&attr, None);
            }
            if flags.truncate && flags.write && self.view(fh, attr).attr.size > 0 {
                self.truncate(ctx, fh, 0).await?;
            }
            Ok(())
        }
        .await;
        let dentry = hold.keep();
        if let Err(e) = ready {
            self.release(ctx, dentry, fh).await;
            return Err(e);
        }
        let mut files = self.files.borrow_mut();
        let fd = (3..).find(|fd| !files.contains_key(&(ctx.pid, *fd))).expect("a free fd");
        files.insert((ctx.pid, fd), OpenFile { fh, dentry, ftype: attr.ftype, path: path.to_string(), flags, pos: 0 });
        Ok(fd)
    }

    /// An existing file the open found at `at`: its dentry is held, then
    /// close-to-open asks for its attributes; the hold goes if that fails.
    async fn found(&self, ctx: &Ctx, at: Option<(Fh, &str)>, fh: Fh) -> Res<(Fh, Fattr, Hold<'_>)> {
        let hold = self.hold(at, fh);
        match self.cto_attrs(ctx, fh).await {
            Ok(attr) => Ok((fh, attr, hold)),
            Err(e) => {
                self.release(ctx, hold.keep(), fh).await;
                Err(e)
            }
        }
    }

    /// Takes a hold of the dentry `at` for an open still under way.
    fn hold(&self, at: Option<(Fh, &str)>, fh: Fh) -> Hold<'_> {
        Hold { client: self, dentry: Some(self.silly.borrow_mut().opened(at, fh)) }
    }

    /// Drops one hold of a dentry (`dput`); the last one of a silly-renamed
    /// dentry removes the hidden name (`nfs_async_unlink`).
    pub(super) async fn release(&self, ctx: &Ctx, dentry: DentryId, fh: Fh) {
        let last = self.silly.borrow_mut().closed(dentry);
        if let Some((dir, name)) = last {
            self.remove_hidden(ctx, dir, &name).await;
            self.pages.borrow_mut().remove(&fh);
        }
    }

    /// Close-to-open: `open` asks the server regardless of freshness, and a
    /// change drops cached pages (through [`Pages::absorb`]) (docs/semantics/linux-nfs-client.md §6).
    /// Linux 2.2 had no open method for files: their open uses whatever
    /// attributes the inode holds (docs/semantics/linux-2.2-client.md §2).
    pub(super) async fn cto_attrs(&self, ctx: &Ctx, fh: Fh) -> Res<Fattr> {
        match self.options.cto {
            Cto::Cto => self.getattr(ctx, fh).await,
            Cto::Nocto => self.cached_or_getattr(ctx, fh).await,
            Cto::None => {
                let held = self.attrs.borrow().get(fh).map(|e| (e.attr, e.filled_by_ev));
                match held {
                    Some((attr, ev)) if attr.ftype != Ftype::Dir => {
                        ctx.cache("attr-cache", ev);
                        self.count(|c| c.attr_cache_hits += 1);
                        Ok(attr)
                    }
                    // nfs_dir_open: nfs_revalidate_inode.
                    _ => self.cached_or_getattr(ctx, fh).await,
                }
            }
        }
    }

    pub(super) async fn create_unchecked(&self, ctx: &Ctx, dir: Fh, name: &str) -> Res<(Fh, Fattr)> {
        let got = self.rpc(ctx, Request::Create { dir, name: name.to_string(), mode: CreateMode::Unchecked }).await?;
        self.created(ctx, dir, name, got).await
    }

    /// A CREATE or MKDIR reply: the new name's dentry and attributes.
    pub(super) async fn created(&self, ctx: &Ctx, dir: Fh, name: &str, got: Got) -> Res<(Fh, Fattr)> {
        let verifier = self.absorb_dir(dir, &got.reply.dir, got.ev);
        self.dir_changed(dir);
        let fh = match got.reply.status {
            Ok(Body::Handle(fh)) => fh,
            Ok(_) => return Err(libc::EIO),
            Err(stat) => {
                self.dentries.borrow_mut().remove(dir, name);
                return Err(stat.errno());
            }
        };
        let attr = match got.reply.obj {
            Some(a) => {
                self.absorb(fh, &a, got.ev, None);
                a
            }
            None => self.getattr(ctx, fh).await?,
        };
        self.remember(dir, name, DentryKind::Positive { fh, ftype: attr.ftype }, verifier, got.ev);
        Ok((fh, attr))
    }

    /// `O_CREAT|O_EXCL` on v3: CREATE EXCLUSIVE, then (after a schedulable gap)
    /// SETATTR of the times, because the server keeps the verifier in them
    /// (docs/semantics/linux-nfs-client.md §13).
    pub(super) async fn create_exclusive(&self, ctx: &Ctx, dir: Fh, name: &str) -> Res<(Fh, Fattr)> {
        let jiffies = self.jiffies_base.wrapping_add((true_now().as_millis() / 4) as u64) & 0xffff_ffff;
        let verifier = (jiffies << 32) | ctx.pid as u64;
        let got = self
            .rpc(ctx, Request::Create { dir, name: name.to_string(), mode: CreateMode::Exclusive(verifier) })
            .await?;
        let (fh, _) = self.created(ctx, dir, name, got).await?;
        self.gap().await;
        let sattr = Sattr { size: None, atime: Some(SetTime::ServerTime), mtime: Some(SetTime::ServerTime) };
        let got = self.rpc(ctx, Request::Setattr { fh, sattr }).await?;
        if let Err(stat) = got.reply.status {
            return Err(stat.errno());
        }
        let attr = got.reply.obj.ok_or(libc::EIO)?;
        self.absorb(fh, &attr, got.ev, got.reply.obj_before);
        Ok((fh, attr))
    }

    pub(super) fn file(&self, pid: u32, fd: u32) -> Res<(Fh, Flags, u64)> {
        let files = self.files.borrow();
        let f = files.get(&(pid, fd)).ok_or(libc::EBADF)?;
        Ok((f.fh, f.flags, f.pos))
    }

    pub(super) fn set_pos(&self, pid: u32, fd: u32, pos: u64) {
        if let Some(f) = self.files.borrow_mut().get_mut(&(pid, fd)) {
            f.pos = pos;
        }
    }

    pub async fn close(&self, ctx: &Ctx, fd: u32) -> Res<()> {
        // The descriptor stays in the table until its flush is done, so that a
        // process killed during the flush still has it closed by `close_all`,
        // as the kernel finishes every close of a dying process.
        let file = self.files.borrow().get(&(ctx.pid, fd)).cloned().ok_or(libc::EBADF)?;
        // nfs_file_flush: a descriptor open for writing flushes and commits at close.
        let flushed = if file.flags.write { self.flush(ctx, file.fh, true).await } else { Ok(()) };
        self.files.borrow_mut().remove(&(ctx.pid, fd));
        self.release(ctx, file.dentry, file.fh).await;
        self.finish(flushed)
    }

    /// Closes every file a process left open, as the kernel does at exit or crash.
    pub async fn close_all(&self, ctx: &Ctx) {
        let fds: Vec<u32> = self.files.borrow().keys().filter(|(p, _)| *p == ctx.pid).map(|(_, fd)| *fd).collect();
        for fd in fds {
            let _ = self.close(ctx, fd).await;
        }
    }

    /// Sends dirty pages in wsize chunks, then (with `commit`) a COMMIT; resends
    /// data the server lost when the write verifier changed (docs/semantics/linux-nfs-client.md §8;
    /// docs/semantics/nfs-server.md §5).
    pub(super) async fn flush(&self, ctx: &Ctx, fh: Fh, commit: bool) -> Res<()> {
        let stable = match self.options.write_mode() {
            WriteMode::WriteBack => Stable::Unstable,
            WriteMode::Sync => Stable::FileSync,
        };
        let wsize = self.options.wsize.max(1) as u64;
        // Bounded: each round follows a server reboot that lost data.
        for _round in 0..8 {
            let dirty = match self.pages.borrow_mut().get_mut(&fh) {
                Some(p) if p.has_unstable() => p.take_dirty(),
                _ => return Ok(()),
            };
            if !dirty.is_empty() {
                self.count(|c| c.flushes += 1);
            }
            for (start, end) in dirty {
                let mut offset = start;
                while offset < end {
                    let chunk_end = (offset + wsize).min(end);
                    let data = match self.pages.borrow().get(&fh) {
                        Some(p) => p.bytes(offset, chunk_end).to_vec(),
                        None => return Ok(()),
                    };
                    let sent = self.rpc(ctx, Request::Write { fh, offset, stable, data }).await.and_then(|got| {
                        match &got.reply.status {
                            Ok(Body::Write { verf, .. }) => Ok((*verf, got)),
                            Ok(_) => Err(libc::EIO),
                            Err(stat) => Err(stat.errno()),
                        }
                    });
                    let (verf, got) = match sent {
                        Ok(v) => v,
                        Err(e) => {
                            if let Some(p) = self.pages.borrow_mut().get_mut(&fh) {
                                p.writeback_failed();
                            }
                            return Err(e);
                        }
                    };
                    self.absorb_post_op(fh, got.reply.obj, got.ev, got.reply.obj_before, Proc::Write);
                    if let Some(p) = self.pages.borrow_mut().get_mut(&fh) {
                        p.written(offset, chunk_end);
                        if stable == Stable::Unstable {
                            p.sent_unstable(offset, chunk_end, verf);
                        }
                    }
                    offset = chunk_end;
                }
            }
            if !commit || stable == Stable::FileSync {
                return Ok(());
            }
            let got = self.rpc(ctx, Request::Commit { fh }).await?;
            let verf = match got.reply.status {
                Ok(Body::Write { verf, .. }) => verf,
                Ok(_) => return Err(libc::EIO),
                Err(stat) => return Err(stat.errno()),
            };
            let resend = self.pages.borrow_mut().get_mut(&fh).map_or(0, |p| p.committed(verf));
            if resend == 0 {
                return Ok(());
            }
            self.count(|c| c.writes_resent += resend as u64);
        }
        Err(libc::EIO)
    }

    /// Local truncation plus SETATTR(size).
    pub(super) async fn truncate(&self, ctx: &Ctx, fh: Fh, len: u64) -> Res<()> {
        if let Some(p) = self.pages.borrow_mut().get_mut(&fh) {
            p.truncate(len);
        }
        self.flush(ctx, fh, false).await?;
        let got =
            self.rpc(ctx, Request::Setattr { fh, sattr: Sattr { size: Some(len), atime: None, mtime: None } }).await?;
        if let Err(stat) = got.reply.status {
            return Err(stat.errno());
        }
        self.absorb_post_op(fh, got.reply.obj, got.ev, got.reply.obj_before, Proc::Setattr);
        Ok(())
    }

    pub async fn read(&self, ctx: &Ctx, fd: u32, len: usize) -> Res<Vec<u8>> {
        let r = self.read_inner(ctx, fd, len).await;
        self.finish(r)
    }

    pub(super) async fn read_inner(&self, ctx: &Ctx, fd: u32, len: usize) -> Res<Vec<u8>> {
        let (fh, flags, pos) = self.file(ctx.pid, fd)?;
        if !flags.read {
            return Err(libc::EBADF);
        }
        // generic_read_dir: read(2) on a directory fails before any RPC.
        if self.files.borrow().get(&(ctx.pid, fd)).is_some_and(|f| f.ftype == Ftype::Dir) {
            return Err(libc::EISDIR);
        }
        // Cached pages are trusted while the attributes are fresh; otherwise a GETATTR
        // revalidates them (and drops them if the file changed).
        let fresh = self.attrs.borrow().fresh(fh, true_now()).is_some();
        if !fresh {
            self.getattr(ctx, fh).await?;
        }
        let cached = self.pages.borrow().get(&fh).and_then(|p| p.read(pos, len).map(|d| (d.to_vec(), p.filled_by_ev)));
        let data = match cached {
            Some((data, ev)) => {
                ctx.cache("page-cache", ev);
                self.count(|c| c.page_cache_hits += 1);
                data
            }
            None => {
                let rsize = self.options.rsize.max(1);
                let mut whole = Vec::new();
                let mut ev;
                loop {
                    let got = self.rpc(ctx, Request::Read { fh, offset: whole.len() as u64, count: rsize }).await?;
                    let (data, eof) = match got.reply.status {
                        Ok(Body::Read { data, eof }) => (data, eof),
                        Ok(_) => return Err(libc::EIO),
                        Err(stat) => return Err(stat.errno()),
                    };
                    if let Some(a) = got.reply.obj {
                        self.absorb(fh, &a, got.ev, None);
                    }
                    ev = got.ev;
                    let short = data.len() < rsize as usize;
                    whole.extend_from_slice(&data);
                    if eof || short {
                        break;
                    }
                }
                let mut pages = self.pages.borrow_mut();
                let p = pages.entry(fh).or_default();
                p.fill(whole, ev);
                p.read(pos, len).map(|d| d.to_vec()).unwrap_or_default()
            }
        };
        self.set_pos(ctx.pid, fd, pos + data.len() as u64);
        Ok(data)
    }

    pub async fn write(&self, ctx: &Ctx, fd: u32, data: &[u8]) -> Res<()> {
        let r = self.write_inner(ctx, fd, data).await;
        self.finish(r)
    }

    pub(super) async fn write_inner(&self, ctx: &Ctx, fd: u32, data: &[u8]) -> Res<()> {
        let (fh, flags, pos) = self.file(ctx.pid, fd)?;
        if !flags.write {
            return Err(libc::EBADF);
        }
        if flags.append {
            // O_APPEND writes at the size the client believes: the cached size
            // while the attributes are fresh (an attribute-cache answer), else
            // a GETATTR first.
            let cached = self.attrs.borrow().fresh(fh, true_now()).map(|e| e.filled_by_ev);
            match cached {
                Some(ev) => {
                    ctx.cache("attr-cache", ev);
                    self.count(|c| c.attr_cache_hits += 1);
                }
                None => {
                    self.getattr(ctx, fh).await?;
                }
            }
        }
        let offset = {
            let mut pages = self.pages.borrow_mut();
            let p = pages.entry(fh).or_default();
            let offset = if flags.append { p.size } else { pos };
            p.write(offset, data);
            offset
        };
        if self.options.write_mode() == WriteMode::Sync {
            self.flush(ctx, fh, false).await?;
        }
        self.set_pos(ctx.pid, fd, offset + data.len() as u64);
        Ok(())
    }

    pub fn seek(&self, pid: u32, fd: u32, pos: u64) -> Res<()> {
        self.file(pid, fd)?;
        self.set_pos(pid, fd, pos);
        Ok(())
    }

    pub async fn set_len(&self, ctx: &Ctx, fd: u32, len: u64) -> Res<()> {
        let (fh, flags, _) = self.file(ctx.pid, fd)?;
        if !flags.write {
            return Err(libc::EINVAL);
        }
        let r = self.truncate(ctx, fh, len).await;
        self.finish(r)
    }

    /// Descriptor-based: ESTALE goes to the application (docs/semantics/linux-nfs-client.md §11).
    pub async fn fstat(&self, ctx: &Ctx, fd: u32) -> Res<Attr> {
        let (fh, _, _) = self.file(ctx.pid, fd)?;
        let r = async {
            self.flush(ctx, fh, false).await?;
            let attr = self.cached_or_getattr(ctx, fh).await?;
            Ok(self.view(fh, attr))
        }
        .await;
        self.finish(r)
    }

    pub async fn fsync(&self, ctx: &Ctx, fd: u32) -> Res<()> {
        let (fh, _, _) = self.file(ctx.pid, fd)?;
        let r = self.flush(ctx, fh, true).await;
        self.finish(r)
    }
}

/// A dentry hold taken by an open that has no descriptor yet. If the open's
/// future is dropped first (its process was killed while it waited), the hold
/// goes with it, as the killed path walk drops its dentry reference. No RPC
/// can be sent from a drop, so a hidden name whose last hold this was stays on
/// the server (docs/semantics/linux-nfs-client.md §10).
struct Hold<'a> {
    client: &'a NfsClient,
    dentry: Option<DentryId>,
}

impl Hold<'_> {
    /// The open goes on with the hold: a descriptor or `release` takes it over.
    fn keep(mut self) -> DentryId {
        self.dentry.take().expect("kept once")
    }
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        if let Some(dentry) = self.dentry.take() {
            let _ = self.client.silly.borrow_mut().closed(dentry);
        }
    }
}
