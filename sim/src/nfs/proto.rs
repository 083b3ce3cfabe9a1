//! The NFSv3 shapes on the wire: procedures, file handles, attributes, status.
//!
//! Every request names a file handle plus at most one name (RENAME names two
//! directory handles and two names, as in RFC 1813). There is no APPEND and no
//! path RPC: the client resolves paths one LOOKUP at a time and appends at the
//! size it believes. Every reply carries post-op attributes, and directory
//! operations carry WCC data for the directory. Not modelled: access modes,
//! uids, symlinks, READDIRPLUS, FSINFO.

use serde::{Deserialize, Serialize};

use crate::clock::Nanos;

/// A file handle: the inode number plus its generation. A handle whose inode
/// was freed (or reused with another generation) is stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Fh {
    pub ino: u64,
    pub gen: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ftype {
    Reg,
    Dir,
}

/// `fattr3`, reduced to what clients and the model look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fattr {
    pub ftype: Ftype,
    pub nlink: u32,
    pub size: u64,
    pub fileid: u64,
    pub atime: Nanos,
    pub mtime: Nanos,
    pub ctime: Nanos,
}

/// `wcc_data` for a directory: what it looked like before and after.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wcc {
    pub before: Option<(u64, Nanos, Nanos)>,
    pub after: Option<Fattr>,
}

/// `time_how` in `sattr3` (RFC 1813 §2.5; docs/semantics/linux-nfs-client.md §12).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetTime {
    ServerTime,
    ClientTime(Nanos),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sattr {
    pub size: Option<u64>,
    pub atime: Option<SetTime>,
    pub mtime: Option<SetTime>,
}

/// `createmode3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CreateMode {
    Unchecked,
    Guarded,
    /// The client's verifier; the server keeps it in atime/mtime until a SETATTR.
    Exclusive(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stable {
    Unstable,
    FileSync,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    Getattr { fh: Fh },
    Setattr { fh: Fh, sattr: Sattr },
    Lookup { dir: Fh, name: String },
    Read { fh: Fh, offset: u64, count: u32 },
    Write { fh: Fh, offset: u64, stable: Stable, data: Vec<u8> },
    Commit { fh: Fh },
    Create { dir: Fh, name: String, mode: CreateMode },
    Mkdir { dir: Fh, name: String },
    Remove { dir: Fh, name: String },
    Rmdir { dir: Fh, name: String },
    Rename { from_dir: Fh, from_name: String, to_dir: Fh, to_name: String },
    Link { fh: Fh, dir: Fh, name: String },
    Readdir { dir: Fh },
}

/// Procedure names as in RFC 1813, used in the trace and the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Proc {
    Getattr,
    Setattr,
    Lookup,
    Read,
    Write,
    Commit,
    Create,
    Mkdir,
    Remove,
    Rmdir,
    Rename,
    Link,
    Readdir,
}

impl Proc {
    pub const ALL: [Proc; 13] = [
        Proc::Getattr,
        Proc::Setattr,
        Proc::Lookup,
        Proc::Read,
        Proc::Write,
        Proc::Commit,
        Proc::Create,
        Proc::Mkdir,
        Proc::Remove,
        Proc::Rmdir,
        Proc::Rename,
        Proc::Link,
        Proc::Readdir,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Proc::Getattr => "GETATTR",
            Proc::Setattr => "SETATTR",
            Proc::Lookup => "LOOKUP",
            Proc::Read => "READ",
            Proc::Write => "WRITE",
            Proc::Commit => "COMMIT",
            Proc::Create => "CREATE",
            Proc::Mkdir => "MKDIR",
            Proc::Remove => "REMOVE",
            Proc::Rmdir => "RMDIR",
            Proc::Rename => "RENAME",
            Proc::Link => "LINK",
            Proc::Readdir => "READDIR",
        }
    }

    /// Whether re-executing the procedure can give a different answer
    /// (RFC 1813 §4.5; docs/semantics/nfs-server.md §4).
    pub fn is_non_idempotent(self) -> bool {
        matches!(
            self,
            Proc::Setattr
                | Proc::Write
                | Proc::Create
                | Proc::Mkdir
                | Proc::Remove
                | Proc::Rmdir
                | Proc::Rename
                | Proc::Link
        )
    }
}

impl Request {
    pub fn proc(&self) -> Proc {
        match self {
            Request::Getattr { .. } => Proc::Getattr,
            Request::Setattr { .. } => Proc::Setattr,
            Request::Lookup { .. } => Proc::Lookup,
            Request::Read { .. } => Proc::Read,
            Request::Write { .. } => Proc::Write,
            Request::Commit { .. } => Proc::Commit,
            Request::Create { .. } => Proc::Create,
            Request::Mkdir { .. } => Proc::Mkdir,
            Request::Remove { .. } => Proc::Remove,
            Request::Rmdir { .. } => Proc::Rmdir,
            Request::Rename { .. } => Proc::Rename,
            Request::Link { .. } => Proc::Link,
            Request::Readdir { .. } => Proc::Readdir,
        }
    }

    /// A short canonical rendering for the trace: handles as `ino.gen`, names quoted.
    pub fn describe(&self) -> String {
        fn h(fh: &Fh) -> String {
            format!("{}.{}", fh.ino, fh.gen)
        }
        match self {
            Request::Getattr { fh } | Request::Commit { fh } => h(fh),
            Request::Setattr { fh, sattr } => format!("{} {:?}", h(fh), sattr),
            Request::Lookup { dir, name }
            | Request::Mkdir { dir, name }
            | Request::Remove { dir, name }
            | Request::Rmdir { dir, name } => format!("{} {:?}", h(dir), name),
            Request::Read { fh, offset, count } => format!("{} @{} n{}", h(fh), offset, count),
            Request::Write { fh, offset, stable, data } => {
                format!("{} @{} n{} {:?}", h(fh), offset, data.len(), stable)
            }
            Request::Create { dir, name, mode } => format!("{} {:?} {:?}", h(dir), name, mode),
            Request::Rename { from_dir, from_name, to_dir, to_name } => {
                format!("{} {:?} -> {} {:?}", h(from_dir), from_name, h(to_dir), to_name)
            }
            Request::Link { fh, dir, name } => format!("{} -> {} {:?}", h(fh), h(dir), name),
            Request::Readdir { dir } => h(dir),
        }
    }
}

/// XDR length of a string or opaque: a length word and the bytes padded to 4.
fn xdr_opaque(n: usize) -> usize {
    4 + n.div_ceil(4) * 4
}

/// An NFSv3 file handle on the wire: a length word and Linux knfsd's 32 bytes.
const FH_BYTES: usize = 4 + 32;
/// IPv4 + UDP headers.
const IP_UDP_BYTES: usize = 20 + 8;
/// An RPC call header with AUTH_UNIX credentials (RFC 5531 §9, host name and one group).
const CALL_HEADER_BYTES: usize = 24 + 40 + 8;
/// An RPC accepted-reply header with an AUTH_NONE verifier.
const REPLY_HEADER_BYTES: usize = 24;
/// `fattr3` (RFC 1813 §2.6) with its `post_op_attr` flag.
const POST_OP_ATTR_BYTES: usize = 4 + 84;
/// `wcc_data`: `pre_op_attr` (size, mtime, ctime) and `post_op_attr`.
const WCC_BYTES: usize = 4 + 24 + POST_OP_ATTR_BYTES;

impl Request {
    /// The request's length on the wire (IP, UDP, RPC header, XDR arguments of
    /// RFC 1813 §3.3), for the link's transmission time.
    pub fn wire_bytes(&self) -> usize {
        let args = match self {
            Request::Getattr { .. } | Request::Commit { .. } | Request::Readdir { .. } => FH_BYTES + 12,
            Request::Setattr { .. } => FH_BYTES + 40,
            Request::Lookup { name, .. }
            | Request::Mkdir { name, .. }
            | Request::Remove { name, .. }
            | Request::Rmdir { name, .. } => FH_BYTES + xdr_opaque(name.len()) + 24,
            Request::Create { name, .. } => FH_BYTES + xdr_opaque(name.len()) + 40,
            Request::Read { .. } => FH_BYTES + 12,
            Request::Write { data, .. } => FH_BYTES + 16 + xdr_opaque(data.len()),
            Request::Rename { from_name, to_name, .. } => {
                2 * FH_BYTES + xdr_opaque(from_name.len()) + xdr_opaque(to_name.len())
            }
            Request::Link { name, .. } => 2 * FH_BYTES + xdr_opaque(name.len()),
        };
        IP_UDP_BYTES + CALL_HEADER_BYTES + args
    }
}

impl Reply {
    /// The reply's length on the wire (IP, UDP, RPC header, XDR results).
    pub fn wire_bytes(&self) -> usize {
        let body = match &self.status {
            Ok(Body::None) | Err(_) => 0,
            Ok(Body::Handle(_)) => 4 + FH_BYTES,
            Ok(Body::Read { data, .. }) => 8 + xdr_opaque(data.len()),
            Ok(Body::Write { .. }) => 16,
            Ok(Body::Entries(names)) => names.iter().map(|n| 8 + 8 + xdr_opaque(n.len()) + 4).sum::<usize>() + 16,
        };
        let attrs = self.obj.map_or(4, |_| POST_OP_ATTR_BYTES)
            + self.dir.as_ref().map_or(0, |_| WCC_BYTES)
            + self.dir2.as_ref().map_or(0, |_| WCC_BYTES);
        IP_UDP_BYTES + REPLY_HEADER_BYTES + 4 + attrs + body
    }
}

/// `nfsstat3`, reduced to the values this server returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NfsStat {
    Noent,
    Io,
    Exist,
    Notdir,
    Isdir,
    Inval,
    Notempty,
    Stale,
    Nospc,
}

impl NfsStat {
    /// The errno a Linux client returns for this status.
    pub fn errno(self) -> i32 {
        match self {
            NfsStat::Noent => libc::ENOENT,
            NfsStat::Io => libc::EIO,
            NfsStat::Exist => libc::EEXIST,
            NfsStat::Notdir => libc::ENOTDIR,
            NfsStat::Isdir => libc::EISDIR,
            NfsStat::Inval => libc::EINVAL,
            NfsStat::Notempty => libc::ENOTEMPTY,
            NfsStat::Stale => libc::ESTALE,
            NfsStat::Nospc => libc::ENOSPC,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            NfsStat::Noent => "NFS3ERR_NOENT",
            NfsStat::Io => "NFS3ERR_IO",
            NfsStat::Exist => "NFS3ERR_EXIST",
            NfsStat::Notdir => "NFS3ERR_NOTDIR",
            NfsStat::Isdir => "NFS3ERR_ISDIR",
            NfsStat::Inval => "NFS3ERR_INVAL",
            NfsStat::Notempty => "NFS3ERR_NOTEMPTY",
            NfsStat::Stale => "NFS3ERR_STALE",
            NfsStat::Nospc => "NFS3ERR_NOSPC",
        }
    }
}

/// The procedure-specific part of a successful reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    None,
    /// LOOKUP, CREATE, MKDIR: the object's handle.
    Handle(Fh),
    Read {
        data: Vec<u8>,
        eof: bool,
    },
    /// WRITE and COMMIT: the server's write verifier (changes on reboot).
    Write {
        count: u32,
        committed: Stable,
        verf: u64,
    },
    /// READDIR: names in the server's directory order.
    Entries(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub status: Result<Body, NfsStat>,
    /// Post-op attributes of the object (for LINK: the source file).
    pub obj: Option<Fattr>,
    /// WCC data of the directory a directory operation changed (for RENAME: the
    /// source directory; `dir2` is the target directory).
    pub dir: Option<Wcc>,
    pub dir2: Option<Wcc>,
    /// WRITE and SETATTR: the file's pre-op `(size, mtime, ctime)` (`wcc_data`), so a
    /// client can tell its own change from another client's (docs/semantics/linux-nfs-client.md §3, §8).
    pub obj_before: Option<(u64, Nanos, Nanos)>,
}

impl Reply {
    pub fn err(stat: NfsStat) -> Reply {
        Reply { status: Err(stat), obj: None, dir: None, dir2: None, obj_before: None }
    }
}
