//! A host's NFS client: the kernel's side of every file call its processes make.
//!
//! Client state belongs to the host and is shared by its processes: open files
//! keyed by (pid, fd), the attribute cache, the dentry cache, the readdir cache,
//! the page cache and the silly-rename table. It survives a process crash (the
//! kernel closes that process's files) and dies with a host crash.
//!
//! The client follows a Linux v3 client (spec/nfs.md §1–§8):
//! - paths are walked one component at a time through the dentry cache
//!   ([`super::dentry_cache`]); a dentry answers without a LOOKUP while its
//!   parent's attributes are fresh and its verifier matches (§2), with the
//!   intent rules of `nfs_neg_need_reval` and `nfs_lookup` (exclusive creates and
//!   rename targets skip the LOOKUP on a miss, as v3 does);
//! - `stat` answers from fresh cached attributes ([`super::attr_cache`]); `open`
//!   and `opendir` always send a GETATTR (close-to-open, §3);
//! - writes are write-back ([`super::pages`]): flushed in wsize chunks as UNSTABLE
//!   WRITEs at close, fsync or stat, then COMMITted; data is resent when the
//!   write verifier changed;
//! - a path-based call that meets ESTALE walks again once with revalidation
//!   (`retry_estale`), unless the profile says otherwise (§8);
//! - unlinking or renaming over a file open on this host silly-renames it (§7, §8);
//! - namespace operations hold their parent directories' VFS locks across their
//!   RPCs, and a lookup that has to ask the server waits for them
//!   ([`super::dir_lock`], docs/semantics/dir-locking.md).
//!
//! A `Call` answered (partly) from a cache names the cache and the trace event
//! that filled the entry in `served_by` (see [`Ctx`]).
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
use super::silly::Silly;
use super::store::ROOT;
use crate::clock::{true_now, ClockConfig, Nanos};
use crate::rng::Rng;
use crate::rpc::Transport;
use crate::world::Counters;

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

struct OpenFile {
    fh: Fh,
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
    /// Gaps inside two-RPC operations (spec/nfs.md §13).
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

    /// The errno an application finally sees (spec/nfs.md §8, §12).
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

    // ---- RPCs and what their replies teach the caches ----

    async fn rpc(&self, ctx: &Ctx, request: Request) -> Res<Got> {
        let (reply, info) = self.transport.call(ctx.span, &request).await?;
        ctx.served.borrow_mut().push(Served::Rpc(info.xid));
        ctx.retransmitted.set(info.retransmits > 0);
        if let Err(NfsStat::Stale) = reply.status {
            self.stale(&request);
        }
        Ok(Got { reply, ev: info.ev })
    }

    /// The server called a handle stale: forget what was cached about it.
    fn stale(&self, request: &Request) {
        let fh = match request {
            Request::Getattr { fh }
            | Request::Setattr { fh, .. }
            | Request::Read { fh, .. }
            | Request::Write { fh, .. }
            | Request::Commit { fh } => *fh,
            Request::Lookup { dir, .. } | Request::Readdir { dir } => *dir,
            _ => return,
        };
        self.attrs.borrow_mut().forget(fh);
        self.stale.borrow_mut().insert(fh);
    }

    /// Attributes from the server, by any path (`nfs_update_inode`).
    fn absorb(&self, fh: Fh, attr: &Fattr, ev: u64, before: Option<DataVerifier>) {
        self.attrs.borrow_mut().update(fh, *attr, true_now(), ev);
        if attr.ftype == Ftype::Reg {
            if let Some(p) = self.pages.borrow_mut().get_mut(&fh) {
                p.absorb(attr, before);
            }
        }
    }

    /// Post-op attributes of the object of this client's own modifying call,
    /// subject to the `post_op_attrs` switch (spec/nfs.md §1.3).
    fn absorb_post_op(&self, fh: Fh, attr: Option<Fattr>, ev: u64, before: Option<DataVerifier>, proc: Proc) {
        let Some(attr) = attr else { return };
        match self.options.post_op_attrs {
            PostOpAttrs::Applied => self.absorb(fh, &attr, ev, before),
            PostOpAttrs::IgnoredAfterLink if proc != Proc::Link => self.absorb(fh, &attr, ev, before),
            PostOpAttrs::IgnoredAfterLink | PostOpAttrs::Ignored => {
                // The attribute cache keeps its stale values; the page cache still
                // learns that the change was this client's own.
                if let Some(p) = self.pages.borrow_mut().get_mut(&fh) {
                    p.absorb(&attr, before);
                }
            }
        }
    }

    /// A directory's WCC data: absorbs its post-op attributes and returns the
    /// ctime to use as the verifier of dentries made from this reply.
    fn absorb_dir(&self, dir: Fh, wcc: &Option<Wcc>, ev: u64) -> Option<Nanos> {
        match wcc.as_ref().and_then(|w| w.after) {
            Some(a) => {
                self.absorb(dir, &a, ev, None);
                Some(a.ctime)
            }
            None => self.attrs.borrow().get(dir).map(|e| e.attr.ctime),
        }
    }

    async fn getattr(&self, ctx: &Ctx, fh: Fh) -> Res<Fattr> {
        let got = self.rpc(ctx, Request::Getattr { fh }).await?;
        if let Err(stat) = got.reply.status {
            return Err(stat.errno());
        }
        let attr = got.reply.obj.ok_or(libc::EIO)?;
        self.absorb(fh, &attr, got.ev, None);
        Ok(attr)
    }

    /// Attributes from the cache while fresh, else a GETATTR.
    async fn cached_or_getattr(&self, ctx: &Ctx, fh: Fh) -> Res<Fattr> {
        let hit = self.attrs.borrow().fresh(fh, true_now()).map(|e| (e.attr, e.filled_by_ev));
        if let Some((attr, ev)) = hit {
            ctx.cache("attr-cache", ev);
            self.count(|c| c.attr_cache_hits += 1);
            return Ok(attr);
        }
        self.getattr(ctx, fh).await
    }

    /// What a process sees: the local size while data is dirty.
    fn view(&self, fh: Fh, mut attr: Fattr) -> Attr {
        if let Some(p) = self.pages.borrow().get(&fh) {
            if p.has_dirty() {
                attr.size = p.size;
            }
        }
        Attr { fh, attr }
    }

    // ---- the dentry cache and path walks ----

    /// `nfs_check_verifier`: whether a dentry made under `verifier` may be
    /// trusted, revalidating the directory's attributes if they have expired.
    async fn dir_verified(&self, ctx: &Ctx, dir: Fh, verifier: Nanos) -> bool {
        if self.options.lookupcache == LookupCache::None {
            return false;
        }
        let cached = self.attrs.borrow().get(dir).map(|e| (e.attr.ctime, e.is_fresh(true_now())));
        match cached {
            Some((ctime, _)) if ctime != verifier => false,
            Some((_, true)) => true,
            _ => matches!(self.getattr(ctx, dir).await, Ok(a) if a.ctime == verifier),
        }
    }

    fn remember(&self, dir: Fh, name: &str, kind: DentryKind, verifier: Option<Nanos>, ev: u64) {
        // Linux 2.2's rules judge a dentry by its age, not by a verifier.
        let verifier = match self.options.dentry_revalidate {
            DentryRevalidate::ParentVerifier => verifier,
            DentryRevalidate::ParentMtime | DentryRevalidate::DentryAge => Some(verifier.unwrap_or(0)),
        };
        let renewed = true_now();
        let mut dentries = self.dentries.borrow_mut();
        match (kind, verifier) {
            (DentryKind::Negative, Some(v)) if self.options.lookupcache == LookupCache::All => {
                dentries.insert(dir, name, Dentry { kind, verifier: v, renewed, filled_by_ev: ev })
            }
            (DentryKind::Positive { .. }, Some(v)) => {
                dentries.insert(dir, name, Dentry { kind, verifier: v, renewed, filled_by_ev: ev })
            }
            _ => dentries.remove(dir, name),
        }
    }

    /// Whether `dir`'s cached mtime lies less than `secs` before this host's
    /// wall clock, in whole seconds (`CURRENT_TIME - i_mtime < secs`). A
    /// directory without cached attributes counts as changed.
    fn dir_changed_within(&self, dir: Fh, secs: i64) -> bool {
        const S: i64 = 1_000_000_000;
        let Some(mtime) = self.attrs.borrow().get(dir).map(|e| e.attr.mtime) else { return true };
        let now = self.clock.wall_ns(true_now());
        now.div_euclid(S) - mtime.div_euclid(S) < secs
    }

    /// Linux 2.2's `d_revalidate` before any RPC: whether dentry `d` in `dir`
    /// may answer without a LOOKUP (docs/semantics/linux-2.2-client.md §1, §3).
    /// Times count in jiffies of a 100 Hz tick: a timeout of 0 still trusts a
    /// dentry within the tick that made it (`time_after(jiffies, d_time + 0)`).
    fn age_trusted(&self, dir: Fh, d: &Dentry, intent: Intent) -> bool {
        const TICK_NS: u128 = 10_000_000;
        let jiffies = |t: Duration| (t.as_nanos() / TICK_NS) as u64;
        if self.options.lookupcache == LookupCache::None {
            return false;
        }
        let attrtimeo = |fh: Fh| self.attrs.borrow().get(fh).map_or(Duration::ZERO, |e| e.attrtimeo);
        let age = jiffies(true_now()) - jiffies(d.renewed);
        let s = Duration::from_secs;
        match (self.options.dentry_revalidate, d.kind) {
            (DentryRevalidate::ParentVerifier, _) => unreachable!("the verifier rule is judged by dir_verified"),
            // nfs_neg_need_reval
            (DentryRevalidate::ParentMtime, DentryKind::Negative) => {
                let timeout = if self.dir_changed_within(dir, 5 * 60) { s(1) } else { s(30) };
                age <= jiffies(timeout)
            }
            // nfs_dentry_force_reval: the last name of a walk (no LOOKUP_CONTINUE)
            // whose parent changed in the last 15 minutes gets a timeout of 0.
            (DentryRevalidate::ParentMtime, DentryKind::Positive { fh, .. }) => {
                let last = intent != Intent::Continue;
                let timeout =
                    if last && self.dir_changed_within(dir, 15 * 60) { Duration::ZERO } else { attrtimeo(fh) };
                age <= jiffies(timeout)
            }
            // 2.2.1's nfs_lookup_revalidate: NFS_REVALIDATE_INTERVAL, then NFS_ATTRTIMEO.
            (DentryRevalidate::DentryAge, DentryKind::Negative) => age < jiffies(s(5)),
            (DentryRevalidate::DentryAge, DentryKind::Positive { fh, .. }) => age < jiffies(attrtimeo(fh)),
        }
    }

    /// `lookup_fast`: what the dentry cache says about `name` in `dir` under the
    /// rules of spec/nfs.md §2, with `d_revalidate`'s own RPCs, which run
    /// without the directory lock: a GETATTR of the directory when its
    /// attributes have expired, and for a positive dentry whose directory
    /// changed a LOOKUP that keeps the dentry if the name still leads to the
    /// same handle and throws it away otherwise (`nfs_lookup_revalidate_dentry`).
    async fn lookup_cached(&self, ctx: &Ctx, dir: Fh, name: &str, intent: Intent, reval: Reval) -> Res<Cached> {
        let v3_excl = self.options.exclusive_create == ExclusiveCreate::Exclusive;
        let Some(d) = self.dentries.borrow().get(dir, name) else {
            return Ok(if reval { Cached::Untrusted } else { Cached::Absent });
        };
        match d.kind {
            DentryKind::Negative if reval => Ok(Cached::Untrusted),
            DentryKind::Negative => {
                // nfs_neg_need_reval: no revalidation for creates and rename targets
                // (modern); Linux 2.2 knew no intents and judged every use by age.
                let trusted = match (self.options.dentry_revalidate, intent) {
                    (DentryRevalidate::ParentMtime | DentryRevalidate::DentryAge, _) => {
                        self.age_trusted(dir, &d, intent)
                    }
                    (_, Intent::Create | Intent::Exclusive | Intent::RenameTarget) => true,
                    (_, Intent::Plain | Intent::Continue) => self.dir_verified(ctx, dir, d.verifier).await,
                };
                if trusted {
                    ctx.cache("neg-dentry", d.filled_by_ev);
                    self.count(|c| c.negative_dentry_hits += 1);
                    return Ok(Cached::Hit(None));
                }
                Ok(Cached::Untrusted)
            }
            DentryKind::Positive { fh, .. } if self.stale.borrow().contains(&fh) => {
                // A stale inode's dentry is bad at once, without an RPC.
                self.dentries.borrow_mut().remove(dir, name);
                Ok(Cached::Absent)
            }
            DentryKind::Positive { fh, ftype } => {
                // LOOKUP_EXCL and LOOKUP_REVAL skip the verifier (v3).
                let skip = (intent == Intent::Exclusive && v3_excl) || reval;
                let trusted = !skip
                    && match self.options.dentry_revalidate {
                        DentryRevalidate::ParentVerifier => self.dir_verified(ctx, dir, d.verifier).await,
                        DentryRevalidate::ParentMtime | DentryRevalidate::DentryAge => {
                            self.age_trusted(dir, &d, intent)
                        }
                    };
                if trusted {
                    ctx.cache("pos-dentry", d.filled_by_ev);
                    self.count(|c| c.positive_dentry_hits += 1);
                    return Ok(Cached::Hit(Some((fh, ftype))));
                }
                let got = self.rpc(ctx, Request::Lookup { dir, name: name.to_string() }).await?;
                let verifier = self.absorb_dir(dir, &got.reply.dir, got.ev);
                match got.reply.status {
                    Ok(Body::Handle(found)) if found == fh => {
                        let attr = match got.reply.obj {
                            Some(a) => {
                                self.absorb(fh, &a, got.ev, None);
                                a
                            }
                            None => self.getattr(ctx, fh).await?,
                        };
                        self.remember(dir, name, DentryKind::Positive { fh, ftype: attr.ftype }, verifier, got.ev);
                        Ok(Cached::Hit(Some((fh, attr.ftype))))
                    }
                    // Another handle, or the name is gone: the dentry is invalid,
                    // and the slow path looks the name up again.
                    Ok(Body::Handle(_)) | Err(NfsStat::Noent) | Err(NfsStat::Stale) => {
                        self.dentries.borrow_mut().remove(dir, name);
                        Ok(Cached::Absent)
                    }
                    Ok(_) => Err(libc::EIO),
                    Err(stat) => Err(stat.errno()),
                }
            }
        }
    }

    /// The slow path of a lookup, with `dir`'s lock held by the caller: the
    /// cache's answer if it had one, else a LOOKUP. `None` means the name is absent.
    async fn lookup_slow(
        &self,
        ctx: &Ctx,
        dir: Fh,
        name: &str,
        intent: Intent,
        cached: Cached,
    ) -> Res<Option<(Fh, Ftype)>> {
        let v3_excl = self.options.exclusive_create == ExclusiveCreate::Exclusive;
        match cached {
            Cached::Hit(found) => return Ok(found),
            // nfs_lookup optimises the LOOKUP away for v3 exclusive creates and rename targets.
            Cached::Absent if (intent == Intent::Exclusive && v3_excl) || intent == Intent::RenameTarget => {
                return Ok(None)
            }
            Cached::Absent | Cached::Untrusted => {}
        }
        let got = self.rpc(ctx, Request::Lookup { dir, name: name.to_string() }).await?;
        let verifier = self.absorb_dir(dir, &got.reply.dir, got.ev);
        match got.reply.status {
            Ok(Body::Handle(fh)) => {
                let attr = match got.reply.obj {
                    Some(a) => {
                        self.absorb(fh, &a, got.ev, None);
                        a
                    }
                    None => self.getattr(ctx, fh).await?,
                };
                self.remember(dir, name, DentryKind::Positive { fh, ftype: attr.ftype }, verifier, got.ev);
                Ok(Some((fh, attr.ftype)))
            }
            Ok(_) => Err(libc::EIO),
            Err(NfsStat::Noent) => {
                self.remember(dir, name, DentryKind::Negative, verifier, got.ev);
                Ok(None)
            }
            Err(stat) => Err(stat.errno()),
        }
    }

    /// Looks `name` up in `dir` for a caller that holds no lock on `dir`: from
    /// the dentry cache when the rules allow (spec/nfs.md §2), else with a
    /// LOOKUP under the directory's lock (`lookup_slow`), which waits while a
    /// namespace operation of this host holds it. `None` means the name is absent.
    async fn lookup_name(
        &self,
        ctx: &Ctx,
        dir: Fh,
        name: &str,
        intent: Intent,
        reval: Reval,
    ) -> Res<Option<(Fh, Ftype)>> {
        let cached = self.lookup_cached(ctx, dir, name, intent, reval).await?;
        if let Cached::Hit(found) = cached {
            return Ok(found);
        }
        let held = self.lock_dir(dir, self.reader_mode()).await;
        // real_lookup: the cache is asked again after a wait, since the holder
        // may have changed the name meanwhile.
        let cached = if held.waited { self.lookup_cached(ctx, dir, name, intent, reval).await? } else { cached };
        self.lookup_slow(ctx, dir, name, intent, cached).await
    }

    /// Looks `name` up in `dir` for a caller that holds `dir`'s lock
    /// (`lookup_one_qstr_excl` after `filename_create`, `lock_rename`, …).
    async fn lookup_locked(
        &self,
        ctx: &Ctx,
        dir: Fh,
        name: &str,
        intent: Intent,
        reval: Reval,
    ) -> Res<Option<(Fh, Ftype)>> {
        let cached = self.lookup_cached(ctx, dir, name, intent, reval).await?;
        self.lookup_slow(ctx, dir, name, intent, cached).await
    }

    /// Walks the directories of `parts` from the root.
    async fn walk_dirs(&self, ctx: &Ctx, parts: &[&str], reval: Reval) -> Res<Fh> {
        let mut dir = ROOT;
        for part in parts {
            match self.lookup_name(ctx, dir, part, Intent::Continue, reval).await? {
                None => return Err(libc::ENOENT),
                Some((fh, Ftype::Dir)) => dir = fh,
                Some(_) => return Err(libc::ENOTDIR),
            }
        }
        Ok(dir)
    }

    /// Resolves the parent of `path`; returns it with the last name.
    async fn parent<'p>(&self, ctx: &Ctx, path: &'p str, reval: Reval) -> Res<(Fh, &'p str)> {
        let parts = split_path(path)?;
        let Some((name, dirs)) = parts.split_last() else { return Err(libc::EINVAL) };
        Ok((self.walk_dirs(ctx, dirs, reval).await?, name))
    }

    /// Resolves a whole path to an existing object (the root for an empty path).
    async fn resolve(&self, ctx: &Ctx, path: &str, reval: Reval) -> Res<(Fh, Ftype)> {
        let parts = split_path(path)?;
        let Some((name, dirs)) = parts.split_last() else { return Ok((ROOT, Ftype::Dir)) };
        let dir = self.walk_dirs(ctx, dirs, reval).await?;
        self.lookup_name(ctx, dir, name, Intent::Plain, reval).await?.ok_or(libc::ENOENT)
    }

    /// This client changed `dir`: its own listing is out of date.
    fn dir_changed(&self, dir: Fh) {
        self.listings.borrow_mut().invalidate(dir);
    }

    // ---- stat ----

    pub async fn stat(&self, ctx: &Ctx, path: &str) -> Res<Attr> {
        retry_estale!(self, reval => self.stat_once(ctx, path, reval).await)
    }

    async fn stat_once(&self, ctx: &Ctx, path: &str, reval: Reval) -> Res<Attr> {
        let (fh, _) = self.resolve(ctx, path, reval).await?;
        // A process sees its own writes: dirty pages go out before the attributes.
        self.flush(ctx, fh, false).await?;
        let attr = if reval { self.getattr(ctx, fh).await? } else { self.cached_or_getattr(ctx, fh).await? };
        Ok(self.view(fh, attr))
    }

    // ---- open and close ----

    pub async fn open(&self, ctx: &Ctx, path: &str, flags: Flags) -> Res<u32> {
        retry_estale!(self, reval => self.open_once(ctx, path, flags, reval).await)
    }

    async fn open_once(&self, ctx: &Ctx, path: &str, flags: Flags, reval: Reval) -> Res<u32> {
        let parts = split_path(path)?;
        let (fh, attr) = match parts.split_last() {
            None => {
                if flags.write || flags.truncate || flags.create {
                    return Err(libc::EISDIR);
                }
                (ROOT, self.cto_attrs(ctx, ROOT).await?)
            }
            Some((name, dirs)) => {
                let dir = self.walk_dirs(ctx, dirs, reval).await?;
                if flags.create && flags.exclusive {
                    // open_last_lookups: O_CREAT holds the directory exclusively
                    // across the lookup and the create (with its SETATTR).
                    let _held = self.lock_dir(dir, Mode::Exclusive).await;
                    match self.options.exclusive_create {
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
                    }
                } else if flags.create {
                    // A trusted positive dentry opens without the directory lock
                    // (the opportunistic O_CREAT lookup; 2.2's open_namei locked
                    // only to create); otherwise the lookup and the CREATE run
                    // under the lock, taken exclusively.
                    match self.lookup_cached(ctx, dir, name, Intent::Create, reval).await? {
                        Cached::Hit(Some((fh, _))) => (fh, self.cto_attrs(ctx, fh).await?),
                        cached => {
                            let held = self.lock_dir(dir, Mode::Exclusive).await;
                            let cached = if held.waited {
                                self.lookup_cached(ctx, dir, name, Intent::Create, reval).await?
                            } else {
                                cached
                            };
                            match self.lookup_slow(ctx, dir, name, Intent::Create, cached).await? {
                                Some((fh, _)) => (fh, self.cto_attrs(ctx, fh).await?),
                                None => self.create_unchecked(ctx, dir, name).await?,
                            }
                        }
                    }
                } else {
                    match self.lookup_name(ctx, dir, name, Intent::Plain, reval).await? {
                        Some((fh, _)) => (fh, self.cto_attrs(ctx, fh).await?),
                        None => return Err(libc::ENOENT),
                    }
                }
            }
        };
        if attr.ftype == Ftype::Dir && (flags.write || flags.truncate) {
            return Err(libc::EISDIR);
        }
        if attr.ftype == Ftype::Reg {
            self.pages.borrow_mut().entry(fh).or_default().absorb(&attr, None);
        }
        if flags.truncate && flags.write && self.view(fh, attr).attr.size > 0 {
            self.truncate(ctx, fh, 0).await?;
        }
        self.silly.borrow_mut().opened(fh);
        let mut files = self.files.borrow_mut();
        let fd = (3..).find(|fd| !files.contains_key(&(ctx.pid, *fd))).expect("a free fd");
        files.insert((ctx.pid, fd), OpenFile { fh, ftype: attr.ftype, path: path.to_string(), flags, pos: 0 });
        Ok(fd)
    }

    /// Close-to-open: `open` asks the server regardless of freshness, and a
    /// change drops cached pages (through [`Pages::absorb`]) (spec/nfs.md §3).
    /// Linux 2.2 had no open method for files: their open uses whatever
    /// attributes the inode holds (docs/semantics/linux-2.2-client.md §2).
    async fn cto_attrs(&self, ctx: &Ctx, fh: Fh) -> Res<Fattr> {
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

    async fn create_unchecked(&self, ctx: &Ctx, dir: Fh, name: &str) -> Res<(Fh, Fattr)> {
        let got = self.rpc(ctx, Request::Create { dir, name: name.to_string(), mode: CreateMode::Unchecked }).await?;
        self.created(ctx, dir, name, got).await
    }

    /// A CREATE or MKDIR reply: the new name's dentry and attributes.
    async fn created(&self, ctx: &Ctx, dir: Fh, name: &str, got: Got) -> Res<(Fh, Fattr)> {
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
    /// SETATTR of the times, because the server keeps the verifier in them (spec/nfs.md §9).
    async fn create_exclusive(&self, ctx: &Ctx, dir: Fh, name: &str) -> Res<(Fh, Fattr)> {
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

    pub async fn close(&self, ctx: &Ctx, fd: u32) -> Res<()> {
        let file = self.files.borrow_mut().remove(&(ctx.pid, fd)).ok_or(libc::EBADF)?;
        // nfs_file_flush: a descriptor open for writing flushes and commits at close.
        let flushed = if file.flags.write { self.flush(ctx, file.fh, true).await } else { Ok(()) };
        let last = self.silly.borrow_mut().closed(file.fh);
        if let Some((dir, name)) = last {
            // The last close removes the silly-renamed file (nfs_async_unlink).
            if let Ok(got) = self.rpc(ctx, Request::Remove { dir, name: name.clone() }).await {
                let verifier = self.absorb_dir(dir, &got.reply.dir, got.ev);
                self.remember(dir, &name, DentryKind::Negative, verifier, got.ev);
                self.dir_changed(dir);
            }
            self.pages.borrow_mut().remove(&file.fh);
        }
        self.finish(flushed)
    }

    /// Closes every file a process left open, as the kernel does at exit or crash.
    pub async fn close_all(&self, ctx: &Ctx) {
        let fds: Vec<u32> = self.files.borrow().keys().filter(|(p, _)| *p == ctx.pid).map(|(_, fd)| *fd).collect();
        for fd in fds {
            let _ = self.close(ctx, fd).await;
        }
    }

    /// The lookup and attribute caches as they stand, for state dumps.
    pub fn caches(&self, now: Duration) -> CacheView {
        let dentries = self
            .dentries
            .borrow()
            .entries()
            .map(|(dir, name, d)| DentryView {
                dir: dir.ino,
                name: name.to_string(),
                target: match d.kind {
                    DentryKind::Positive { fh, .. } => Some((fh.ino, fh.gen)),
                    DentryKind::Negative => None,
                },
                filled_by_ev: d.filled_by_ev,
            })
            .collect();
        let attrs = self
            .attrs
            .borrow()
            .entries()
            .map(|(fh, e)| AttrView {
                ino: fh.ino,
                gen: fh.gen,
                nlink: e.attr.nlink,
                size: e.attr.size,
                mtime_ns: e.attr.mtime,
                fresh_for: (e.fetched_at + e.attrtimeo).saturating_sub(now),
                filled_by_ev: e.filled_by_ev,
            })
            .collect();
        CacheView { dentries, attrs }
    }

    /// Paths this host has open, for state dumps.
    pub fn open_files(&self) -> Vec<(u32, u32, String)> {
        self.files.borrow().iter().map(|((pid, fd), f)| (*pid, *fd, f.path.clone())).collect()
    }

    // ---- data ----

    /// Sends dirty pages in wsize chunks, then (with `commit`) a COMMIT; resends
    /// data the server lost when the write verifier changed (spec/nfs.md §3, §10).
    async fn flush(&self, ctx: &Ctx, fh: Fh, commit: bool) -> Res<()> {
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
    async fn truncate(&self, ctx: &Ctx, fh: Fh, len: u64) -> Res<()> {
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

    async fn read_inner(&self, ctx: &Ctx, fd: u32, len: usize) -> Res<Vec<u8>> {
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

    async fn write_inner(&self, ctx: &Ctx, fd: u32, data: &[u8]) -> Res<()> {
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

    /// Descriptor-based: ESTALE goes to the application (spec/nfs.md §8).
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

    // ---- names ----

    /// The BSD kludge for EEXIST from LINK and MKDIR (spec/nfs.md §12).
    fn map_eexist(&self, ctx: &Ctx, stat: NfsStat) -> Res<()> {
        let mapped = stat == NfsStat::Exist
            && match self.options.map_eexist_to_success {
                MapEexist::Never => false,
                MapEexist::OnRetransmit => ctx.retransmitted.get(),
                MapEexist::Always => true,
            };
        if mapped {
            self.count(|c| c.eexist_mapped_to_success += 1);
            Ok(())
        } else {
            Err(stat.errno())
        }
    }

    pub async fn link(&self, ctx: &Ctx, existing: &str, new: &str) -> Res<()> {
        retry_estale!(self, reval => self.link_once(ctx, existing, new, reval).await)
    }

    async fn link_once(&self, ctx: &Ctx, existing: &str, new: &str, reval: Reval) -> Res<()> {
        // do_linkat's order: resolve the source, create the new name (EEXIST if it
        // exists), and only then vfs_link refuses a directory (EPERM).
        let (src, ftype) = self.resolve(ctx, existing, reval).await?;
        let (dir, name) = self.parent(ctx, new, reval).await?;
        // filename_create: the new name's directory, exclusively, for the lookup and the LINK.
        let _held = self.lock_dir(dir, Mode::Exclusive).await;
        if self.lookup_locked(ctx, dir, name, Intent::Exclusive, reval).await?.is_some() {
            return Err(libc::EEXIST);
        }
        if ftype == Ftype::Dir {
            return Err(libc::EPERM);
        }
        let got = self.rpc(ctx, Request::Link { fh: src, dir, name: name.to_string() }).await?;
        let verifier = self.absorb_dir(dir, &got.reply.dir, got.ev);
        self.dir_changed(dir);
        // nfs3_proc_link: the source is refreshed from the reply whether LINK succeeded or not.
        self.absorb_post_op(src, got.reply.obj, got.ev, None, Proc::Link);
        match got.reply.status {
            Ok(_) => {
                self.remember(dir, name, DentryKind::Positive { fh: src, ftype }, verifier, got.ev);
                Ok(())
            }
            Err(stat) => {
                self.dentries.borrow_mut().remove(dir, name);
                self.map_eexist(ctx, stat)
            }
        }
    }

    pub async fn mkdir(&self, ctx: &Ctx, path: &str) -> Res<()> {
        retry_estale!(self, reval => self.mkdir_once(ctx, path, reval).await)
    }

    async fn mkdir_once(&self, ctx: &Ctx, path: &str, reval: Reval) -> Res<()> {
        let (dir, name) = self.parent(ctx, path, reval).await?;
        let _held = self.lock_dir(dir, Mode::Exclusive).await;
        if self.lookup_locked(ctx, dir, name, Intent::Exclusive, reval).await?.is_some() {
            return Err(libc::EEXIST);
        }
        let got = self.rpc(ctx, Request::Mkdir { dir, name: name.to_string() }).await?;
        match got.reply.status {
            Err(stat) => {
                self.absorb_dir(dir, &got.reply.dir, got.ev);
                self.dir_changed(dir);
                self.dentries.borrow_mut().remove(dir, name);
                self.map_eexist(ctx, stat)
            }
            Ok(_) => self.created(ctx, dir, name, got).await.map(|_| ()),
        }
    }

    pub async fn rmdir(&self, ctx: &Ctx, path: &str) -> Res<()> {
        retry_estale!(self, reval => self.remove_once(ctx, path, true, reval).await)
    }

    pub async fn unlink(&self, ctx: &Ctx, path: &str) -> Res<()> {
        retry_estale!(self, reval => self.remove_once(ctx, path, false, reval).await)
    }

    async fn remove_once(&self, ctx: &Ctx, path: &str, want_dir: bool, reval: Reval) -> Res<()> {
        let (dir, name) = self.parent(ctx, path, reval).await?;
        // do_unlinkat / do_rmdir: the parent, exclusively, for the lookup and the
        // REMOVE (or the silly RENAME).
        let _held = self.lock_dir(dir, Mode::Exclusive).await;
        let (fh, ftype) = self.lookup_locked(ctx, dir, name, Intent::Plain, reval).await?.ok_or(libc::ENOENT)?;
        // may_delete(): the VFS checks the victim's type before the client sends anything.
        match (want_dir, ftype) {
            (false, Ftype::Dir) => return Err(libc::EISDIR),
            (true, Ftype::Reg) => return Err(libc::ENOTDIR),
            _ => {}
        }
        if !want_dir && self.silly.borrow().holds(fh) && name.starts_with(".nfs") {
            // unlink(2): removing a silly-renamed file by hand gives EBUSY.
            return Err(libc::EBUSY);
        }
        if !want_dir && self.silly.borrow().is_busy(fh) {
            return self.silly_rename(ctx, dir, name, fh).await;
        }
        if !want_dir {
            // nfs_unlink unhashes the dentry (since 6.0: marks it
            // NFS_FSDATA_BLOCKED) for the REMOVE: a lookup of the name on this
            // host cannot be answered from the cache and waits for the lock.
            self.dentries.borrow_mut().remove(dir, name);
        }
        let request = if want_dir {
            Request::Rmdir { dir, name: name.to_string() }
        } else {
            Request::Remove { dir, name: name.to_string() }
        };
        let got = self.rpc(ctx, request).await?;
        let verifier = self.absorb_dir(dir, &got.reply.dir, got.ev);
        self.dir_changed(dir);
        match got.reply.status {
            Ok(_) => {
                self.remember(dir, name, DentryKind::Negative, verifier, got.ev);
                // nfs_drop_nlink: the inode's cached link count is no longer valid.
                self.attrs.borrow_mut().expire(fh);
                // Not open here, so nothing is dirty: the cached pages can go.
                self.pages.borrow_mut().remove(&fh);
                Ok(())
            }
            Err(stat) => {
                self.dentries.borrow_mut().remove(dir, name);
                Err(stat.errno())
            }
        }
    }

    /// Renames a busy file to `.nfs<fileid><counter>`, to be removed at last close.
    async fn silly_rename(&self, ctx: &Ctx, dir: Fh, name: &str, fh: Fh) -> Res<()> {
        let hidden = self.silly.borrow_mut().next_name(fh.ino);
        let got = self
            .rpc(
                ctx,
                Request::Rename { from_dir: dir, from_name: name.to_string(), to_dir: dir, to_name: hidden.clone() },
            )
            .await?;
        let verifier = self.absorb_dir(dir, &got.reply.dir, got.ev);
        self.dir_changed(dir);
        if let Err(stat) = got.reply.status {
            self.dentries.borrow_mut().remove(dir, name);
            return Err(stat.errno());
        }
        self.count(|c| c.silly_renames += 1);
        // nfs_sillyrename d_moves the dentry to the hidden name: the old name
        // is left with no dentry, never a negative one, so a lookup of it on
        // this host asks the server under the directory lock, which the
        // unlink or rename holding it releases only when it is done.
        self.dentries.borrow_mut().remove(dir, name);
        self.remember(dir, &hidden, DentryKind::Positive { fh, ftype: Ftype::Reg }, verifier, got.ev);
        self.silly.borrow_mut().renamed(fh, dir, hidden);
        Ok(())
    }

    pub async fn rename(&self, ctx: &Ctx, from: &str, to: &str) -> Res<()> {
        retry_estale!(self, reval => self.rename_once(ctx, from, to, reval).await)
    }

    async fn rename_once(&self, ctx: &Ctx, from: &str, to: &str, reval: Reval) -> Res<()> {
        // do_renameat2: both parents are walked, then locked (`lock_rename`),
        // and both names are looked up under the locks, held to the end.
        let (from_dir, from_name) = self.parent(ctx, from, reval).await?;
        let (to_dir, to_name) = self.parent(ctx, to, reval).await?;
        let _held = self.lock_rename(from_dir, to_dir).await;
        let (src, ftype) =
            self.lookup_locked(ctx, from_dir, from_name, Intent::Plain, reval).await?.ok_or(libc::ENOENT)?;
        let dst = self.lookup_locked(ctx, to_dir, to_name, Intent::RenameTarget, reval).await?;
        // may_delete() on an existing target: its type must match the source's.
        match (ftype, dst.map(|(_, t)| t)) {
            (Ftype::Reg, Some(Ftype::Dir)) => return Err(libc::EISDIR),
            (Ftype::Dir, Some(Ftype::Reg)) => return Err(libc::ENOTDIR),
            _ => {}
        }
        if dst.is_some_and(|(dst_fh, _)| dst_fh == src) {
            // vfs_rename: both names already refer to the same inode, so it does
            // nothing and succeeds without calling the filesystem.
            return Ok(());
        }
        if let Some((dst_fh, _)) = dst {
            if self.silly.borrow().is_busy(dst_fh) {
                // nfs_rename: a busy target is silly-renamed first; the name is then
                // absent on the server until the second RENAME (spec/nfs.md §7),
                // and on this host a lookup of it waits for the locks held here.
                self.silly_rename(ctx, to_dir, to_name, dst_fh).await?;
                self.gap().await;
            } else {
                // nfs_rename unhashes (since 6.0: blocks) the target's dentry
                // for the RENAME, so lookups of it on this host wait.
                self.dentries.borrow_mut().remove(to_dir, to_name);
            }
        }
        let got = self
            .rpc(
                ctx,
                Request::Rename { from_dir, from_name: from_name.to_string(), to_dir, to_name: to_name.to_string() },
            )
            .await?;
        let from_verifier = self.absorb_dir(from_dir, &got.reply.dir, got.ev);
        let to_verifier = self.absorb_dir(to_dir, &got.reply.dir2, got.ev);
        self.dir_changed(from_dir);
        self.dir_changed(to_dir);
        match got.reply.status {
            Ok(_) => {
                if from_dir != to_dir || from_name != to_name {
                    self.remember(from_dir, from_name, DentryKind::Negative, from_verifier, got.ev);
                }
                self.remember(to_dir, to_name, DentryKind::Positive { fh: src, ftype }, to_verifier, got.ev);
                self.attrs.borrow_mut().expire(src);
                if let Some((dst_fh, _)) = dst {
                    self.attrs.borrow_mut().expire(dst_fh);
                }
                Ok(())
            }
            Err(stat) => {
                self.dentries.borrow_mut().remove(from_dir, from_name);
                self.dentries.borrow_mut().remove(to_dir, to_name);
                Err(stat.errno())
            }
        }
    }

    pub async fn read_dir(&self, ctx: &Ctx, path: &str) -> Res<Vec<String>> {
        retry_estale!(self, reval => self.read_dir_once(ctx, path, reval).await)
    }

    async fn read_dir_once(&self, ctx: &Ctx, path: &str, reval: Reval) -> Res<Vec<String>> {
        let (dir, ftype) = self.resolve(ctx, path, reval).await?;
        if ftype != Ftype::Dir {
            return Err(libc::ENOTDIR);
        }
        // opendir is LOOKUP_OPEN on a directory: close-to-open revalidates it (spec/nfs.md §4).
        let attr = self.cto_attrs(ctx, dir).await?;
        // iterate_dir holds the directory's lock shared for getdents (2.2's
        // sys_getdents: i_sem), so a listing waits for this host's renames in it.
        let _held = self.lock_dir(dir, self.reader_mode()).await;
        let cached = self.listings.borrow().get(dir, attr.ctime).map(|l| (l.names.clone(), l.filled_by_ev));
        if let Some((names, ev)) = cached {
            ctx.cache("readdir-cache", ev);
            self.count(|c| c.readdir_cache_hits += 1);
            return Ok(names.to_vec());
        }
        let got = self.rpc(ctx, Request::Readdir { dir }).await?;
        let names = match got.reply.status {
            Ok(Body::Entries(names)) => names,
            Ok(_) => return Err(libc::EIO),
            Err(stat) => return Err(stat.errno()),
        };
        if let Some(a) = got.reply.obj {
            self.absorb(dir, &a, got.ev, None);
            let listing = Listing { names: names.clone().into(), verifier: a.ctime, filled_by_ev: got.ev };
            self.listings.borrow_mut().insert(dir, listing);
        }
        Ok(names)
    }

    /// `utime`: explicit times go as SET_TO_CLIENT_TIME, `None` as SET_TO_SERVER_TIME.
    pub async fn set_times(&self, ctx: &Ctx, path: &str, time: Option<i64>) -> Res<()> {
        retry_estale!(self, reval => self.set_times_once(ctx, path, time, reval).await)
    }

    async fn set_times_once(&self, ctx: &Ctx, path: &str, time: Option<i64>, reval: Reval) -> Res<()> {
        let (fh, _) = self.resolve(ctx, path, reval).await?;
        self.flush(ctx, fh, false).await?;
        let how = match time {
            Some(ns) => SetTime::ClientTime(ns),
            None => SetTime::ServerTime,
        };
        let got = self
            .rpc(ctx, Request::Setattr { fh, sattr: Sattr { size: None, atime: Some(how), mtime: Some(how) } })
            .await?;
        if let Err(stat) = got.reply.status {
            return Err(stat.errno());
        }
        self.absorb_post_op(fh, got.reply.obj, got.ev, got.reply.obj_before, Proc::Setattr);
        Ok(())
    }
}
