//! A host's NFS client: the kernel's side of every file call its processes make.
//!
//! Client state belongs to the host and is shared by its processes: open files
//! keyed by (pid, fd), the attribute cache, the dentry cache, the readdir cache,
//! the page cache and the silly-rename table. It survives a process crash (the
//! kernel closes that process's files) and dies with a host crash.
//!
//! The client follows a Linux v3 client (docs/semantics/linux-nfs-client.md):
//! - paths are walked one component at a time through the dentry cache
//!   ([`super::dentry_cache`]); a dentry answers without a LOOKUP while its
//!   parent's attributes are fresh and its verifier matches (§4), with the
//!   intent rules of `nfs_neg_need_reval` and `nfs_lookup` (exclusive creates and
//!   rename targets skip the LOOKUP on a miss, as v3 does);
//! - `stat` answers from fresh cached attributes ([`super::attr_cache`]); `open`
//!   and `opendir` always send a GETATTR (close-to-open, §6);
//! - writes are write-back ([`super::pages`]): flushed in wsize chunks as UNSTABLE
//!   WRITEs at close, fsync or stat, then COMMITted; data is resent when the
//!   write verifier changed;
//! - a path-based call that meets ESTALE walks again once with revalidation
//!   (`retry_estale`), unless the profile says otherwise (§11);
//! - unlinking or renaming over a file open on this host silly-renames it (§9, §10);
//! - namespace operations hold their parent directories' VFS locks across their
//!   RPCs, and a lookup that has to ask the server waits for them
//!   ([`super::dir_lock`], docs/semantics/dir-locking.md).
//!
//! A `Call` answered (partly) from a cache names the cache and the trace event
//! that filled the entry in `served_by` (see [`Ctx`]).
//!
//! The mechanisms are one file each, every one an `impl NfsClient` block:
//! `attrs` (what replies teach the caches), `walk` (dentries and path walks),
//! `file` (open files and their data), `names` (namespace operations, silly
//! rename among them) and `view` (the caches as a state dump shows them). This
//! file holds the client's state, the call context, and the VFS directory locks.
//!
//! Left out: access checks (ACCESS), symlinks, READDIRPLUS, `sharecache`
//! (one mount per host), NLM locks, delegations, and the v4 protocol.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::rc::Rc;
use std::time::Duration;

use super::attr_cache::AttrCache;
use super::dentry_cache::{Dentry, DentryCache, DentryKind};
use super::dir_lock::{DirLocks, Held, Mode};
use super::mount::{
    Cto, DentryRevalidate, DirLock, EstaleErrno, EstaleRetry, ExclusiveCreate, LookupCache, MapEexist, PostOpAttrs,
    WriteMode,
};
use super::pages::{DataVerifier, Pages};
use super::proto::{Body, CreateMode, Fattr, Fh, Ftype, NfsStat, Proc, Reply, Request, Sattr, SetTime, Stable, Wcc};
use super::readdir_cache::{Listing, ReaddirCache};
use super::silly::{DentryId, Silly};
use super::store::ROOT;
use crate::clock::{true_now, ClockConfig, Nanos};
use crate::counters::Counters;
use crate::rng::Rng;
use crate::rpc::Transport;

pub use super::mount::MountOptions;

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

/// One piece of what answered a call.
#[derive(Clone, Copy, Debug)]
enum Served {
    Rpc(u32),
    /// A cache, and the trace event that filled the entry used.
    Cache(&'static str, u64),
}

/// The context of one `Os` call: its span id, and what served it.
pub struct Ctx {
    pub span: u64,
    pub pid: u32,
    served: RefCell<Vec<Served>>,
    /// Whether the last RPC needed a retransmission (for the BSD EEXIST kludge).
    retransmitted: Cell<bool>,
}

impl Ctx {
    pub fn new(span: u64, pid: u32) -> Ctx {
        Ctx { span, pid, served: RefCell::new(Vec::new()), retransmitted: Cell::new(false) }
    }

    fn cache(&self, name: &'static str, ev: u64) {
        self.served.borrow_mut().push(Served::Cache(name, ev));
    }

    /// `served_by` for the trace: the xids of the RPCs and the cache entries
    /// (`attr-cache(ev 12)`) that answered the call, joined by `+`, or `local`.
    pub fn served_by(&self) -> String {
        let served = self.served.borrow();
        if served.is_empty() {
            return "local".into();
        }
        let mut s = String::new();
        for (i, p) in served.iter().enumerate() {
            if i > 0 {
                s.push('+');
            }
            match p {
                Served::Rpc(x) => {
                    let _ = write!(s, "x{x}");
                }
                Served::Cache(name, ev) => {
                    let _ = write!(s, "{name}(ev {ev})");
                }
            }
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

#[derive(Clone)]
struct OpenFile {
    fh: Fh,
    /// The dentry the descriptor holds, which decides silly renames (§10).
    dentry: DentryId,
    ftype: Ftype,
    path: String,
    flags: Flags,
    pos: u64,
}

pub type Res<T> = Result<T, i32>;

/// Why a name is looked up: the VFS intent flags that change dentry trust.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Intent {
    Plain,
    /// `LOOKUP_CONTINUE`: a directory on the way to the last name.
    Continue,
    /// `LOOKUP_CREATE` (open with O_CREAT).
    Create,
    /// `LOOKUP_CREATE | LOOKUP_EXCL` (O_EXCL, link, mkdir).
    Exclusive,
    /// `LOOKUP_RENAME_TARGET`.
    RenameTarget,
}

/// Whether a walk revalidates every dentry (`LOOKUP_REVAL`, the ESTALE retry).
type Reval = bool;

/// What `lookup_fast` found for a name: the dentry cache, with `d_revalidate`.
#[derive(Clone, Copy, Debug)]
enum Cached {
    /// The cache answers: the object, or `None` for a trusted negative dentry.
    Hit(Option<(Fh, Ftype)>),
    /// A negative dentry that may not be trusted, or a walk that revalidates
    /// every name (`LOOKUP_REVAL`): the slow path sends a LOOKUP.
    Untrusted,
    /// No dentry, or one revalidation just threw away: the slow path asks
    /// `->lookup` with a fresh dentry (which v3 skips for exclusive creates
    /// and rename targets).
    Absent,
}

/// A reply and the trace event that recorded it.
struct Got {
    reply: Reply,
    ev: u64,
}

/// A client's caches, for state dumps ([`NfsClient::caches`]).
#[derive(Clone, Debug)]
pub struct CacheView {
    pub dentries: Vec<DentryView>,
    pub attrs: Vec<AttrView>,
}

/// One lookup-cache entry: `name` in directory inode `dir`, positive (the
/// inode and generation it names) or negative.
#[derive(Clone, Debug)]
pub struct DentryView {
    pub dir: u64,
    pub name: String,
    pub target: Option<(u64, u32)>,
    pub filled_by_ev: u64,
}

/// One attribute-cache entry; `fresh_for` is zero once it has timed out.
#[derive(Clone, Debug)]
pub struct AttrView {
    pub ino: u64,
    pub gen: u32,
    pub nlink: u32,
    pub size: u64,
    pub mtime_ns: i64,
    pub fresh_for: Duration,
    pub filled_by_ev: u64,
}

pub struct NfsClient {
    transport: Rc<Transport>,
    /// `jiffies` at the start of the run: Linux starts each boot's counter at
    /// a different value, so two hosts' `{jiffies, pid}` verifiers differ.
    jiffies_base: u64,
    options: MountOptions,
    /// This host's wall clock (`CURRENT_TIME`), which Linux 2.2's dentry rules
    /// compare with a directory's mtime as the server stamped it.
    clock: ClockConfig,
    files: RefCell<BTreeMap<(u32, u32), OpenFile>>,
    attrs: RefCell<AttrCache>,
    dentries: RefCell<DentryCache>,
    listings: RefCell<ReaddirCache>,
    pages: RefCell<BTreeMap<Fh, Pages>>,
    silly: RefCell<Silly>,
    dir_locks: DirLocks,
    /// Handles the server called stale (`NFS_STALE`): a dentry pointing at one is
    /// never trusted again, so a later walk looks the name up afresh.
    stale: RefCell<BTreeSet<Fh>>,
    /// Gaps inside two-RPC operations (docs/semantics/linux-nfs-client.md §14).
    gaps: RefCell<Rng>,
}

fn split_path(path: &str) -> Res<Vec<&str>> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.contains(&"..") {
        return Err(libc::EINVAL);
    }
    Ok(parts)
}

/// Retries a path-based call once with revalidation on ESTALE (`retry_estale()`).
macro_rules! retry_estale {
    ($self:ident, $reval:ident => $body:expr) => {{
        let mut $reval: Reval = false;
        loop {
            match $body {
                Err(libc::ESTALE) if !$reval && $self.options.estale_retry == EstaleRetry::Once => {
                    $self.count(|c| c.estale_retries += 1);
                    $reval = true;
                }
                r => break $self.finish(r),
            }
        }
    }};
}

mod attrs;
mod file;
mod names;
mod view;
mod walk;

impl NfsClient {
    pub fn new(
        transport: Rc<Transport>,
        options: MountOptions,
        clock: ClockConfig,
        jiffies_base: u64,
        gaps: Rng,
    ) -> NfsClient {
        NfsClient {
            transport,
            jiffies_base,
            clock,
            attrs: RefCell::new(AttrCache::new(options.ac_bounds())),
            options,
            files: RefCell::new(BTreeMap::new()),
            dentries: RefCell::new(DentryCache::default()),
            listings: RefCell::new(ReaddirCache::default()),
            pages: RefCell::new(BTreeMap::new()),
            silly: RefCell::new(Silly::default()),
            dir_locks: DirLocks::default(),
            stale: RefCell::new(BTreeSet::new()),
            gaps: RefCell::new(gaps),
        }
    }

    pub fn options(&self) -> &MountOptions {
        &self.options
    }

    pub fn transport(&self) -> &Rc<Transport> {
        &self.transport
    }

    fn count(&self, f: impl FnOnce(&mut Counters)) {
        self.transport.world().count(f)
    }

    /// The errno an application finally sees (docs/semantics/linux-nfs-client.md §11).
    fn finish<T>(&self, r: Res<T>) -> Res<T> {
        match r {
            Err(libc::ESTALE) => {
                self.count(|c| c.estale_returns += 1);
                Err(match self.options.estale_errno {
                    EstaleErrno::Estale => libc::ESTALE,
                    EstaleErrno::Enoent => libc::ENOENT,
                })
            }
            r => r,
        }
    }

    /// The seeded gap between the two RPCs of a compound operation.
    async fn gap(&self) {
        let max = self.options.compound_gap_ms_max;
        if max == 0 {
            return;
        }
        let ms = self.gaps.borrow_mut().between(0, max);
        if ms > 0 {
            crate::engine::sleep(Duration::from_millis(ms)).await;
        }
    }

    // ---- the VFS directory locks (docs/semantics/dir-locking.md) ----

    fn count_wait(&self, waited: Duration) {
        self.count(|c| {
            c.dir_lock_waits += 1;
            c.dir_lock_wait_us_total += waited.as_micros() as u64;
        });
    }

    /// The mode in which a lookup that asks the server, or a readdir, takes
    /// the directory's lock: `inode_lock_shared`, or 2.2's `down(&i_sem)`.
    fn reader_mode(&self) -> Mode {
        match self.options.dir_lock {
            DirLock::Rwsem => Mode::Shared,
            DirLock::Semaphore => Mode::Exclusive,
        }
    }

    async fn lock_dir(&self, dir: Fh, mode: Mode) -> Held {
        self.dir_locks.lock(dir, mode, |d| self.count_wait(d)).await
    }

    /// `lock_rename` (modern) or `double_lock` (2.2): both parents, exclusively.
    async fn lock_rename(&self, a: Fh, b: Fh) -> Held {
        let mutex = self.options.dir_lock == DirLock::Rwsem;
        self.dir_locks.lock_rename(a, b, mutex, |d| self.count_wait(d)).await
    }
}
