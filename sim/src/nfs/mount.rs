//! Mount options (nfs(5)): every client-side switch of docs/semantics/linux-nfs-client.md, with
//! Linux's defaults. Each cache module reads its own fields; [`ClientProfile`]s bundle them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::rpc::TransportOptions;

/// `ac` / `noac` (docs/semantics/linux-nfs-client.md §1). `noac` is `actimeo=0` plus synchronous writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ac {
    #[default]
    Ac,
    Noac,
}

/// `lookupcache=` (docs/semantics/linux-nfs-client.md §4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LookupCache {
    /// Positive and negative dentries trusted until the parent's attributes expire.
    #[default]
    All,
    /// Negative dentries are always revalidated. (Linux 2.2 did keep negative
    /// dentries: docs/semantics/linux-2.2-client.md §3.)
    Positive,
    /// Every dentry is revalidated with a LOOKUP.
    None,
}

/// `cto` / `nocto` (docs/semantics/linux-nfs-client.md §6), and the open of a client older than
/// close-to-open (docs/semantics/linux-2.2-client.md §2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cto {
    #[default]
    Cto,
    /// `open` and `opendir` send a GETATTR only when the cached attributes have expired.
    Nocto,
    /// Linux 2.2: `open` of a file sends nothing, even with expired attributes;
    /// `opendir` behaves as `nocto`. A stale handle shows at the first read.
    None,
}

/// How a dentry found in the cache is judged before it answers a lookup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DentryRevalidate {
    /// The modern rule (docs/semantics/linux-nfs-client.md §4): a dentry is trusted while its
    /// parent's attributes are fresh and the parent's change attribute is the
    /// one it was made under; `lookupcache` decides about negative entries.
    #[default]
    ParentVerifier,
    /// Linux 2.2 as carried into 2.4.18 (`nfs_dentry_force_reval`,
    /// `nfs_neg_need_reval`; docs/semantics/linux-2.2-client.md §1, §3): by the
    /// dentry's age against the parent's cached mtime as the client's clock sees
    /// it. The last name of a path whose parent changed in the last 15 minutes
    /// is looked up again on every use; other positive dentries live for their
    /// inode's attribute timeout. Negative dentries live 1 s when the parent
    /// changed in the last 5 minutes, else 30 s.
    ParentMtime,
    /// Linux 2.2.1 (docs/semantics/linux-2.2-client.md §1): a positive dentry
    /// lives for its inode's attribute timeout, a negative one for 5 s.
    DentryAge,
}

/// Whether post-op attributes in this client's own replies refresh its
/// attribute cache (docs/semantics/linux-nfs-client.md §3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PostOpAttrs {
    #[default]
    Applied,
    /// Linux in December 1996: the cached link count is not updated after `link()`.
    IgnoredAfterLink,
    /// As if the server omitted them: the stale values stay cached.
    Ignored,
}

/// What a path-based call does on ESTALE (`retry_estale()`; docs/semantics/linux-nfs-client.md §11).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EstaleRetry {
    /// Retry the walk once with `LOOKUP_REVAL` (Linux since 2012).
    #[default]
    Once,
    /// Return ESTALE (older kernels).
    Never,
}

/// The errno an application sees for a stale handle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EstaleErrno {
    #[default]
    Estale,
    /// "Some Linux versions return ENOENT" (docs/semantics/linux-nfs-client.md §11, §14).
    Enoent,
}

/// How `open(O_CREAT|O_EXCL)` reaches the server (docs/semantics/linux-nfs-client.md §13).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExclusiveCreate {
    /// v3 CREATE EXCLUSIVE with a `{jiffies, pid}` verifier, then SETATTR of the times.
    #[default]
    Exclusive,
    /// v2 style: a LOOKUP, then CREATE UNCHECKED if absent. Not atomic: two clients can both succeed.
    LookupThenCreate,
}

/// The 4.4BSD kludge: EEXIST from LINK, SYMLINK or MKDIR reported as success
/// (docs/semantics/linux-nfs-client.md §14).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MapEexist {
    /// Linux and Solaris.
    #[default]
    Never,
    /// NetBSD: only when the call was retransmitted.
    OnRetransmit,
    /// FreeBSD before November 2007.
    Always,
}

/// When written data reaches the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriteMode {
    /// Dirty pages stay on the client until close, fsync or a stat; then UNSTABLE WRITEs plus COMMIT.
    #[default]
    WriteBack,
    /// Every write goes out at once as FILE_SYNC (the `sync` mount option; implied by `noac`).
    Sync,
}

/// The VFS directory lock a namespace operation holds across its RPCs and a
/// lookup that reaches the server waits for (docs/semantics/dir-locking.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DirLock {
    /// `i_rwsem` (Linux since 4.7): lookups that miss the dentry cache and
    /// readdir take it shared; a rename between two directories first takes
    /// the mount's rename mutex (`lock_rename`).
    #[default]
    Rwsem,
    /// `i_sem` (Linux 2.2): a semaphore, so every holder, lookups and readdir
    /// included, is exclusive; no rename mutex.
    Semaphore,
}

/// Named bundles of every client setting (docs/semantics/linux-nfs-client.md §14).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientProfile {
    /// A current Linux v3 client: every default of nfs(5).
    #[serde(rename = "linux-modern")]
    LinuxModern,
    /// The Linux-2.2-era column of docs/semantics/linux-nfs-client.md §14.
    #[serde(rename = "linux-2.2")]
    Linux22,
    /// `linux-modern` with `noac`.
    #[serde(rename = "noac")]
    Noac,
    /// `linux-modern` with `lookupcache=none`.
    #[serde(rename = "lookupcache-none")]
    LookupcacheNone,
    /// `linux-modern` with `lookupcache=positive`: negative dentries are
    /// never trusted (nfs(5): "always revalidates negative entries before an
    /// application can use them").
    #[serde(rename = "lookupcache-positive")]
    LookupcachePositive,
    /// `linux-modern` with `actimeo=0`: every attribute-cache bound 0, writes
    /// still write-back (nfs(5): "Using actimeo sets all of acregmin, acregmax,
    /// acdirmin, and acdirmax to the same value").
    #[serde(rename = "actimeo-0")]
    Actimeo0,
}

impl ClientProfile {
    pub const ALL: [ClientProfile; 6] = [
        ClientProfile::LinuxModern,
        ClientProfile::Linux22,
        ClientProfile::Noac,
        ClientProfile::LookupcacheNone,
        ClientProfile::LookupcachePositive,
        ClientProfile::Actimeo0,
    ];
}

/// What a modern client negotiates with a Linux knfsd when the mount names no
/// `rsize`/`wsize`: the server's `rtpref`/`wtpref`, capped by the client's
/// `NFS_MAX_FILE_IO_SIZE` (docs/semantics/linux-modern-mount.md §1).
pub const RWSIZE_NEGOTIATED: u32 = 1 << 20;

/// The largest `rsize`/`wsize` a Linux client uses: `NFS_MAX_FILE_IO_SIZE`.
pub const RWSIZE_MAX: u32 = 1 << 20;

/// Mount options (nfs(5)); defaults are the `linux-modern` profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MountOptions {
    /// Bytes per READ and per WRITE: the size the mount ends with, after the
    /// client has negotiated with the server's FSINFO. A modern mount with no
    /// `rsize=`/`wsize=` gets the server's preferred size, 1 MiB from a Linux
    /// knfsd on a machine with 4 GiB or more (docs/semantics/linux-modern-mount.md).
    pub rsize: u32,
    pub wsize: u32,
    pub transport: TransportOptions,
    pub acregmin_s: u64,
    pub acregmax_s: u64,
    pub acdirmin_s: u64,
    pub acdirmax_s: u64,
    /// `actimeo=n`: sets all four bounds to n.
    pub actimeo_s: Option<u64>,
    pub ac: Ac,
    pub lookupcache: LookupCache,
    pub cto: Cto,
    pub post_op_attrs: PostOpAttrs,
    pub estale_retry: EstaleRetry,
    pub estale_errno: EstaleErrno,
    pub exclusive_create: ExclusiveCreate,
    pub map_eexist_to_success: MapEexist,
    pub writes: WriteMode,
    /// The gap inside two-RPC operations (silly RENAME then RENAME; CREATE
    /// EXCLUSIVE then SETATTR): a seeded whole number of ms in 0..=this. An
    /// experiment knob (0 in every profile): it stands for a delay no client
    /// is known to add.
    pub compound_gap_ms_max: u64,
    pub dir_lock: DirLock,
    pub dentry_revalidate: DentryRevalidate,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            rsize: RWSIZE_NEGOTIATED,
            wsize: RWSIZE_NEGOTIATED,
            transport: TransportOptions::default(),
            acregmin_s: 3,
            acregmax_s: 60,
            acdirmin_s: 30,
            acdirmax_s: 60,
            actimeo_s: None,
            ac: Ac::Ac,
            lookupcache: LookupCache::All,
            cto: Cto::Cto,
            post_op_attrs: PostOpAttrs::Applied,
            estale_retry: EstaleRetry::Once,
            estale_errno: EstaleErrno::Estale,
            exclusive_create: ExclusiveCreate::Exclusive,
            map_eexist_to_success: MapEexist::Never,
            writes: WriteMode::WriteBack,
            compound_gap_ms_max: 0,
            dir_lock: DirLock::Rwsem,
            dentry_revalidate: DentryRevalidate::ParentVerifier,
        }
    }
}

/// Attribute-cache bounds after `actimeo` and `noac` are applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcBounds {
    pub reg_min: Duration,
    pub reg_max: Duration,
    pub dir_min: Duration,
    pub dir_max: Duration,
}

impl MountOptions {
    /// Starts from a profile; the scenario layer then overrides single keys.
    pub fn profile(profile: ClientProfile) -> MountOptions {
        let modern = MountOptions::default();
        match profile {
            ClientProfile::LinuxModern => modern,
            ClientProfile::Noac => MountOptions { ac: Ac::Noac, ..modern },
            ClientProfile::LookupcacheNone => MountOptions { lookupcache: LookupCache::None, ..modern },
            ClientProfile::LookupcachePositive => MountOptions { lookupcache: LookupCache::Positive, ..modern },
            ClientProfile::Actimeo0 => MountOptions { actimeo_s: Some(0), ..modern },
            // UDP with the default 1.1 s doubling timeo and retrans 3 is `TransportOptions::default()`.
            // The 1 s timestamp granularity belongs to the server: `ServerConfig::profile(ServerProfile::Linux22)`.
            // Optional switches of docs/semantics/linux-nfs-client.md §14 (ESTALE as ENOENT,
            // nlink not updated after link) stay off;
            // a scenario turns them on with `estale_errno` and `post_op_attrs`.
            // Dentries, open and the transfer size follow docs/semantics/linux-2.2-client.md.
            ClientProfile::Linux22 => MountOptions {
                rsize: 4096,
                wsize: 4096,
                lookupcache: LookupCache::All,
                dentry_revalidate: DentryRevalidate::ParentMtime,
                cto: Cto::None,
                estale_retry: EstaleRetry::Never,
                exclusive_create: ExclusiveCreate::LookupThenCreate,
                dir_lock: DirLock::Semaphore,
                ..modern
            },
        }
    }

    pub fn ac_bounds(&self) -> AcBounds {
        let s = Duration::from_secs;
        if self.ac == Ac::Noac {
            return AcBounds { reg_min: s(0), reg_max: s(0), dir_min: s(0), dir_max: s(0) };
        }
        match self.actimeo_s {
            Some(n) => AcBounds { reg_min: s(n), reg_max: s(n), dir_min: s(n), dir_max: s(n) },
            None => AcBounds {
                reg_min: s(self.acregmin_s),
                reg_max: s(self.acregmax_s.max(self.acregmin_s)),
                dir_min: s(self.acdirmin_s),
                dir_max: s(self.acdirmax_s.max(self.acdirmin_s)),
            },
        }
    }

    pub fn write_mode(&self) -> WriteMode {
        if self.ac == Ac::Noac {
            WriteMode::Sync
        } else {
            self.writes
        }
    }
}
