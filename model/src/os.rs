//! The seam between the model and the world.
//!
//! One `Os` value belongs to one process: (host, pid, incarnation). The model
//! touches the world only through this trait, so the same code runs on the real
//! kernel (`RealOs`) and in the simulation (the adapter lives in `scenarios`).
//!
//! Failures reach the model as `std::io::Error`s carrying real errno values
//! (`ENOENT`, `EEXIST`, `ESTALE`, `EIO`, …); the model branches on
//! `raw_os_error()` exactly as Mailman branches on `e.errno`. Futures need not be
//! `Send`: simulated hosts run their processes on a `LocalSet`.

use std::io;
use std::time::{Duration, SystemTime};

use crate::event::ModelEvent;

/// A file descriptor, local to one process.
pub type Fd = u32;
/// A process id, local to one host. Pids increase and are never reused.
pub type Pid = u32;

/// `open(2)` flags. Build them with the constructors named after the Python
/// modes Mailman uses, so call sites read like the original.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OpenFlags {
    pub read: bool,
    pub write: bool,
    pub create: bool,
    pub exclusive: bool,
    pub truncate: bool,
    pub append: bool,
}

impl OpenFlags {
    /// Python `'r'` / `'rb'`: `O_RDONLY`.
    pub const fn read_only() -> Self {
        OpenFlags { read: true, write: false, create: false, exclusive: false, truncate: false, append: false }
    }
    /// Python `'rb+'`: `O_RDWR`.
    pub const fn read_write() -> Self {
        OpenFlags { read: true, write: true, create: false, exclusive: false, truncate: false, append: false }
    }
    /// Python `'w'` / `'wb'`: `O_WRONLY|O_CREAT|O_TRUNC`.
    pub const fn write_truncate() -> Self {
        OpenFlags { read: false, write: true, create: true, exclusive: false, truncate: true, append: false }
    }
    /// Python `'a'` / `'ab'`: `O_WRONLY|O_CREAT|O_APPEND`.
    pub const fn append() -> Self {
        OpenFlags { read: false, write: true, create: true, exclusive: false, truncate: false, append: true }
    }
    /// Python `'a+b'`: `O_RDWR|O_CREAT|O_APPEND`.
    pub const fn read_append() -> Self {
        OpenFlags { read: true, write: true, create: true, exclusive: false, truncate: false, append: true }
    }
    /// `O_WRONLY|O_CREAT|O_EXCL`.
    pub const fn create_exclusive() -> Self {
        OpenFlags { read: false, write: true, create: true, exclusive: true, truncate: false, append: false }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FileType {
    File,
    Dir,
}

/// What `stat(2)` returns that Mailman and Exim look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub ino: u64,
    pub nlink: u64,
    pub size: u64,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
    pub file_type: FileType,
}

/// The time `set_times` stores. `Explicit` is `utime(path, (t, t))` and is
/// sent over NFS as SET_TO_CLIENT_TIME; `ServerNow` is `utime(path, NULL)`,
/// sent as SET_TO_SERVER_TIME (docs/semantics/linux-nfs-client.md §12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetTime {
    ServerNow,
    Explicit(SystemTime),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Signal {
    /// Stop without restart (mailmanctl).
    Term,
    /// Stop and be restarted (mailmanctl).
    Int,
    /// Reopen logs.
    Hup,
    /// Uncatchable: the process is gone at once, as in a crash.
    Kill,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ExitStatus {
    Code(i32),
    Signaled(Signal),
}

/// Everything the model may touch. Keep it as small as Mailman's real needs.
#[allow(async_fn_in_trait)]
pub trait Os {
    type Listener;
    type Stream;

    // Files by handle.
    async fn open(&self, path: &str, flags: OpenFlags) -> io::Result<Fd>;
    /// Reads up to `len` bytes at the descriptor's position. An empty result is EOF.
    async fn read(&self, fd: Fd, len: usize) -> io::Result<Vec<u8>>;
    /// Writes all of `data` at the descriptor's position (or at the end with `append`).
    async fn write(&self, fd: Fd, data: &[u8]) -> io::Result<()>;
    /// `lseek(fd, pos, SEEK_SET)`.
    async fn seek(&self, fd: Fd, pos: u64) -> io::Result<()>;
    /// `ftruncate(fd, len)`.
    async fn set_len(&self, fd: Fd, len: u64) -> io::Result<()>;
    async fn fstat(&self, fd: Fd) -> io::Result<Metadata>;
    async fn fsync(&self, fd: Fd) -> io::Result<()>;
    async fn close(&self, fd: Fd) -> io::Result<()>;

    // Files by name. Paths are relative to the process's root (the Mailman prefix).
    async fn stat(&self, path: &str) -> io::Result<Metadata>;
    async fn link(&self, existing: &str, new: &str) -> io::Result<()>;
    async fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    async fn unlink(&self, path: &str) -> io::Result<()>;
    async fn mkdir(&self, path: &str) -> io::Result<()>;
    async fn rmdir(&self, path: &str) -> io::Result<()>;
    /// Entry names in the order the filesystem returns them, without `.` and `..`.
    async fn read_dir(&self, path: &str) -> io::Result<Vec<String>>;
    /// `utime(path, (t, t))` or `utime(path, NULL)`.
    async fn set_times(&self, path: &str, time: SetTime) -> io::Result<()>;

    // Clock and identity.
    /// This host's wall clock, with its offset and drift.
    fn now(&self) -> SystemTime;
    /// `CLOCK_MONOTONIC`: time since an arbitrary start that no clock offset or step moves.
    fn monotonic(&self) -> Duration;
    async fn sleep(&self, duration: Duration);
    /// Python's `random.random()`: uniform in [0, 1).
    fn random(&self) -> f64;
    fn hostname(&self) -> String;
    fn pid(&self) -> Pid;
    /// `getppid()`: the process that started this one; 1 (init) for one started at boot.
    fn parent_pid(&self) -> Pid;

    // Process control.
    /// Starts a model entry point by name on this host (fork + exec).
    async fn spawn(&self, program: &str, args: &[String]) -> io::Result<Pid>;
    /// Waits for a child to exit.
    async fn wait(&self, pid: Pid) -> io::Result<ExitStatus>;
    async fn kill(&self, pid: Pid, signal: Signal) -> io::Result<()>;
    /// Whether `pid` names a live process on this host (`kill(pid, 0)`).
    async fn alive(&self, pid: Pid) -> bool;
    /// A catchable signal delivered to this process and not yet taken.
    fn take_signal(&self) -> Option<Signal>;

    // Network.
    async fn tcp_listen(&self, port: u16) -> io::Result<Self::Listener>;
    /// The next connection, and who made it.
    async fn tcp_accept(&self, listener: &Self::Listener) -> io::Result<(Self::Stream, Peer)>;
    async fn tcp_connect(&self, host: &str, port: u16) -> io::Result<Self::Stream>;
    /// Reads what is available, at most `buf.len()` bytes; 0 means the peer closed.
    async fn tcp_read(&self, stream: &mut Self::Stream, buf: &mut [u8]) -> io::Result<usize>;
    async fn tcp_write(&self, stream: &mut Self::Stream, data: &[u8]) -> io::Result<()>;

    // Annotations: what the model believes, next to what it did.
    fn event(&self, event: ModelEvent);
}

/// The other end of an accepted connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its host name, or its address where no name is known.
    pub host: String,
    /// Whether it connected from this host (Exim's `hostlist relay_from_hosts = localhost`).
    pub local: bool,
}

/// The errno of an error, or 0 for errors that carry none.
pub fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// Builds an `io::Error` from an errno value.
pub fn err(errno: i32) -> io::Error {
    io::Error::from_raw_os_error(errno)
}

/// The symbol of an errno value (`"ENOENT"`), as events and log lines print it
/// (`nix` knows the symbols); unknown values print as `"E<number>"`.
pub fn errno_name(errno: i32) -> String {
    match nix::errno::Errno::from_raw(errno) {
        nix::errno::Errno::UnknownErrno => format!("E{errno}"),
        known => format!("{known:?}"),
    }
}
