//! A host's NFS client: the kernel's side of every file call its processes make.
//!
//! Client state belongs to the host and is shared by its processes: open files
//! keyed by (pid, fd), and the mount options. It survives a process crash (the
//! kernel closes that process's files) and dies with a host crash.
//!
//! This is the *plain* client: it resolves every path one LOOKUP at a time from
//! the root, caches nothing, and writes through in wsize chunks. `O_APPEND`
//! writes at the size the client believes (here: a GETATTR just before, as
//! with `noac`), `O_TRUNC` sends SETATTR(size 0) at open, and `O_EXCL` sends
//! CREATE EXCLUSIVE with a `{jiffies, pid}` verifier followed by a SETATTR of
//! the times, as Linux does (spec/nfs.md §9, §11). The caches, silly rename and
//! ESTALE retries of spec/nfs.md §1–8 slot in around `lookup`, `getattr` and
//! `close`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use super::proto::{Body, CreateMode, Fattr, Fh, Ftype, Reply, Request, Sattr, SetTime, Stable};
use super::store::ROOT;
use crate::clock::true_now;
use crate::rpc::{Transport, TransportOptions};

/// `open(2)` flags as the client sees them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    pub read: bool,
    pub write: bool,
    pub create: bool,
    pub exclusive: bool,
    pub truncate: bool,
    pub append: bool,
}

/// Mount options (nfs(5)). The caches add their own fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MountOptions {
    pub rsize: u32,
    pub wsize: u32,
    pub transport: TransportOptions,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions { rsize: 8192, wsize: 8192, transport: TransportOptions::default() }
    }
}

/// The context of one `Os` call: its span id, and the RPCs that served it.
pub struct Ctx {
    pub span: u64,
    pub pid: u32,
    xids: RefCell<Vec<u32>>,
}

impl Ctx {
    pub fn new(span: u64, pid: u32) -> Ctx {
        Ctx { span, pid, xids: RefCell::new(Vec::new()) }
    }

    /// `served_by` for the trace: the xids of the RPCs that answered the call,
    /// or `local` when no RPC was needed.
    pub fn served_by(&self) -> String {
        let xids = self.xids.borrow();
        if xids.is_empty() {
            return "local".into();
        }
        let mut s = String::new();
        for (i, x) in xids.iter().enumerate() {
            if i > 0 {
                s.push('+');
            }
            s.push('x');
            s.push_str(&x.to_string());
        }
        s
    }
}

/// What `stat` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    pub fh: Fh,
    pub attr: Fattr,
}

struct OpenFile {
    fh: Fh,
    path: String,
    flags: Flags,
    pos: u64,
}

pub type Res<T> = Result<T, i32>;

pub struct NfsClient {
    transport: Rc<Transport>,
    /// `jiffies` at the start of the run: Linux starts each boot's counter at
    /// a different value, so two hosts' `{jiffies, pid}` verifiers differ.
    jiffies_base: u64,
    options: MountOptions,
    files: RefCell<BTreeMap<(u32, u32), OpenFile>>,
}

fn split_path(path: &str) -> Res<Vec<&str>> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.contains(&"..") {
        return Err(libc::EINVAL);
    }
    Ok(parts)
}

impl NfsClient {
    pub fn new(transport: Rc<Transport>, options: MountOptions, jiffies_base: u64) -> NfsClient {
        NfsClient { transport, jiffies_base, options, files: RefCell::new(BTreeMap::new()) }
    }

    pub fn options(&self) -> &MountOptions {
        &self.options
    }

    async fn rpc(&self, ctx: &Ctx, request: Request) -> Res<Reply> {
        let (reply, info) = self.transport.call(ctx.span, &request).await?;
        ctx.xids.borrow_mut().push(info.xid);
        Ok(reply)
    }

    async fn rpc_ok(&self, ctx: &Ctx, request: Request) -> Res<(Body, Reply)> {
        let reply = self.rpc(ctx, request).await?;
        match reply.status.clone() {
            Ok(body) => Ok((body, reply)),
            Err(stat) => Err(stat.errno()),
        }
    }

    async fn lookup(&self, ctx: &Ctx, dir: Fh, name: &str) -> Res<Attr> {
        let (body, reply) = self.rpc_ok(ctx, Request::Lookup { dir, name: name.to_string() }).await?;
        let Body::Handle(fh) = body else { return Err(libc::EIO) };
        match reply.obj {
            Some(attr) => Ok(Attr { fh, attr }),
            None => self.getattr(ctx, fh).await,
        }
    }

    async fn getattr(&self, ctx: &Ctx, fh: Fh) -> Res<Attr> {
        let (_, reply) = self.rpc_ok(ctx, Request::Getattr { fh }).await?;
        reply.obj.map(|attr| Attr { fh, attr }).ok_or(libc::EIO)
    }

    /// Walks a path from the root, one LOOKUP per component.
    async fn resolve(&self, ctx: &Ctx, path: &str) -> Res<Attr> {
        let parts = split_path(path)?;
        let mut cur = Attr { fh: ROOT, attr: self.getattr_root_placeholder() };
        if parts.is_empty() {
            return self.getattr(ctx, ROOT).await;
        }
        for part in parts {
            if cur.attr.ftype != Ftype::Dir {
                return Err(libc::ENOTDIR);
            }
            cur = self.lookup(ctx, cur.fh, part).await?;
        }
        Ok(cur)
    }

    fn getattr_root_placeholder(&self) -> Fattr {
        Fattr { ftype: Ftype::Dir, nlink: 2, size: 0, fileid: ROOT.ino, atime: 0, mtime: 0, ctime: 0 }
    }

    /// Resolves the parent directory of `path` and returns it with the last name.
    async fn resolve_parent<'p>(&self, ctx: &Ctx, path: &'p str) -> Res<(Fh, &'p str)> {
        let parts = split_path(path)?;
        let Some((name, dirs)) = parts.split_last() else { return Err(libc::EINVAL) };
        let mut dir = ROOT;
        for part in dirs {
            let a = self.lookup(ctx, dir, part).await?;
            if a.attr.ftype != Ftype::Dir {
                return Err(libc::ENOTDIR);
            }
            dir = a.fh;
        }
        Ok((dir, name))
    }

    pub async fn stat(&self, ctx: &Ctx, path: &str) -> Res<Attr> {
        self.resolve(ctx, path).await
    }

    pub async fn open(&self, ctx: &Ctx, path: &str, flags: Flags) -> Res<u32> {
        let attr = if flags.create {
            let (dir, name) = self.resolve_parent(ctx, path).await?;
            if flags.exclusive {
                self.create_exclusive(ctx, dir, name).await?
            } else {
                match self.lookup(ctx, dir, name).await {
                    Ok(a) => a,
                    Err(libc::ENOENT) => {
                        let (body, reply) = self
                            .rpc_ok(ctx, Request::Create { dir, name: name.to_string(), mode: CreateMode::Unchecked })
                            .await?;
                        let Body::Handle(fh) = body else { return Err(libc::EIO) };
                        match reply.obj {
                            Some(attr) => Attr { fh, attr },
                            None => self.getattr(ctx, fh).await?,
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        } else {
            self.resolve(ctx, path).await?
        };
        if attr.attr.ftype == Ftype::Dir && (flags.write || flags.truncate) {
            return Err(libc::EISDIR);
        }
        if flags.truncate && flags.write && attr.attr.size > 0 {
            self.rpc_ok(
                ctx,
                Request::Setattr { fh: attr.fh, sattr: Sattr { size: Some(0), atime: None, mtime: None } },
            )
            .await?;
        }
        let mut files = self.files.borrow_mut();
        let fd = (3..).find(|fd| !files.contains_key(&(ctx.pid, *fd))).expect("a free fd");
        files.insert((ctx.pid, fd), OpenFile { fh: attr.fh, path: path.to_string(), flags, pos: 0 });
        Ok(fd)
    }

    /// `O_CREAT|O_EXCL` on v3: CREATE EXCLUSIVE, then SETATTR of the times,
    /// because the server keeps the verifier in them (spec/nfs.md §9).
    async fn create_exclusive(&self, ctx: &Ctx, dir: Fh, name: &str) -> Res<Attr> {
        let jiffies = self.jiffies_base.wrapping_add((true_now().as_millis() / 4) as u64) & 0xffff_ffff;
        let verifier = (jiffies << 32) | ctx.pid as u64;
        let (body, _) = self
            .rpc_ok(ctx, Request::Create { dir, name: name.to_string(), mode: CreateMode::Exclusive(verifier) })
            .await?;
        let Body::Handle(fh) = body else { return Err(libc::EIO) };
        let sattr = Sattr { size: None, atime: Some(SetTime::ServerTime), mtime: Some(SetTime::ServerTime) };
        let (_, reply) = self.rpc_ok(ctx, Request::Setattr { fh, sattr }).await?;
        reply.obj.map(|attr| Attr { fh, attr }).ok_or(libc::EIO)
    }

    fn file(&self, pid: u32, fd: u32) -> Res<(Fh, Flags, u64)> {
        let files = self.files.borrow();
        let f = files.get(&(pid, fd)).ok_or(libc::EBADF)?;
        Ok((f.fh, f.flags, f.pos))
    }

    fn set_pos(&self, pid: u32, fd: u32, pos: u64) {
        if let Some(f) = self.files.borrow_mut().get_mut(&(pid, fd)) {
            f.pos = pos;
        }
    }

    pub async fn read(&self, ctx: &Ctx, fd: u32, len: usize) -> Res<Vec<u8>> {
        let (fh, flags, mut pos) = self.file(ctx.pid, fd)?;
        if !flags.read {
            return Err(libc::EBADF);
        }
        let mut out = Vec::new();
        while out.len() < len {
            let count = (len - out.len()).min(self.options.rsize as usize) as u32;
            let (body, _) = self.rpc_ok(ctx, Request::Read { fh, offset: pos, count }).await?;
            let Body::Read { data, eof } = body else { return Err(libc::EIO) };
            pos += data.len() as u64;
            let short = data.len() < count as usize;
            out.extend_from_slice(&data);
            if eof || short || data.is_empty() {
                break;
            }
        }
        self.set_pos(ctx.pid, fd, pos);
        Ok(out)
    }

    pub async fn write(&self, ctx: &Ctx, fd: u32, data: &[u8]) -> Res<()> {
        let (fh, flags, pos) = self.file(ctx.pid, fd)?;
        if !flags.write {
            return Err(libc::EBADF);
        }
        let mut offset = if flags.append { self.getattr(ctx, fh).await?.attr.size } else { pos };
        for chunk in data.chunks(self.options.wsize.max(1) as usize) {
            self.rpc_ok(ctx, Request::Write { fh, offset, stable: Stable::FileSync, data: chunk.to_vec() }).await?;
            offset += chunk.len() as u64;
        }
        self.set_pos(ctx.pid, fd, offset);
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
        self.rpc_ok(ctx, Request::Setattr { fh, sattr: Sattr { size: Some(len), atime: None, mtime: None } }).await?;
        Ok(())
    }

    pub async fn fstat(&self, ctx: &Ctx, fd: u32) -> Res<Attr> {
        let (fh, _, _) = self.file(ctx.pid, fd)?;
        self.getattr(ctx, fh).await
    }

    /// The plain client writes through, so there is nothing dirty to flush.
    pub async fn fsync(&self, ctx: &Ctx, fd: u32) -> Res<()> {
        self.file(ctx.pid, fd)?;
        Ok(())
    }

    pub async fn close(&self, ctx: &Ctx, fd: u32) -> Res<()> {
        self.files.borrow_mut().remove(&(ctx.pid, fd)).ok_or(libc::EBADF)?;
        Ok(())
    }

    /// Closes every file a process left open, as the kernel does at exit or crash.
    pub async fn close_all(&self, ctx: &Ctx) {
        let fds: Vec<u32> = self.files.borrow().keys().filter(|(p, _)| *p == ctx.pid).map(|(_, fd)| *fd).collect();
        for fd in fds {
            let _ = self.close(ctx, fd).await;
        }
    }

    /// Paths this host has open, for state dumps.
    pub fn open_files(&self) -> Vec<(u32, u32, String)> {
        self.files.borrow().iter().map(|((pid, fd), f)| (*pid, *fd, f.path.clone())).collect()
    }

    pub async fn link(&self, ctx: &Ctx, existing: &str, new: &str) -> Res<()> {
        let src = self.resolve(ctx, existing).await?;
        if src.attr.ftype == Ftype::Dir {
            return Err(libc::EPERM);
        }
        let (dir, name) = self.resolve_parent(ctx, new).await?;
        self.rpc_ok(ctx, Request::Link { fh: src.fh, dir, name: name.to_string() }).await?;
        Ok(())
    }

    pub async fn rename(&self, ctx: &Ctx, from: &str, to: &str) -> Res<()> {
        let (from_dir, from_name) = self.resolve_parent(ctx, from).await?;
        let (to_dir, to_name) = self.resolve_parent(ctx, to).await?;
        self.rpc_ok(
            ctx,
            Request::Rename { from_dir, from_name: from_name.to_string(), to_dir, to_name: to_name.to_string() },
        )
        .await?;
        Ok(())
    }

    pub async fn unlink(&self, ctx: &Ctx, path: &str) -> Res<()> {
        let (dir, name) = self.resolve_parent(ctx, path).await?;
        self.rpc_ok(ctx, Request::Remove { dir, name: name.to_string() }).await?;
        Ok(())
    }

    pub async fn mkdir(&self, ctx: &Ctx, path: &str) -> Res<()> {
        let (dir, name) = self.resolve_parent(ctx, path).await?;
        self.rpc_ok(ctx, Request::Mkdir { dir, name: name.to_string() }).await?;
        Ok(())
    }

    pub async fn rmdir(&self, ctx: &Ctx, path: &str) -> Res<()> {
        let (dir, name) = self.resolve_parent(ctx, path).await?;
        self.rpc_ok(ctx, Request::Rmdir { dir, name: name.to_string() }).await?;
        Ok(())
    }

    pub async fn read_dir(&self, ctx: &Ctx, path: &str) -> Res<Vec<String>> {
        let dir = self.resolve(ctx, path).await?;
        if dir.attr.ftype != Ftype::Dir {
            return Err(libc::ENOTDIR);
        }
        let (body, _) = self.rpc_ok(ctx, Request::Readdir { dir: dir.fh }).await?;
        let Body::Entries(names) = body else { return Err(libc::EIO) };
        Ok(names)
    }

    /// `utime`: explicit times go as SET_TO_CLIENT_TIME, `None` as SET_TO_SERVER_TIME.
    pub async fn set_times(&self, ctx: &Ctx, path: &str, time: Option<i64>) -> Res<()> {
        let a = self.resolve(ctx, path).await?;
        let how = match time {
            Some(ns) => SetTime::ClientTime(ns),
            None => SetTime::ServerTime,
        };
        self.rpc_ok(
            ctx,
            Request::Setattr { fh: a.fh, sattr: Sattr { size: None, atime: Some(how), mtime: Some(how) } },
        )
        .await?;
        Ok(())
    }
}
