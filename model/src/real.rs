//! `RealOs`: the [`Os`] trait on the real kernel, rooted at one directory.
//!
//! Models nothing: every call is the system call it names, on the path
//! `root/<path>`, and failures carry the kernel's errno unchanged. This is the
//! one place in `model` allowed to read the wall clock, draw OS entropy and
//! start real processes; each such use is marked
//! `#[allow(clippy::disallowed_methods)]`.
//!
//! What it leaves out:
//! - Permissions and umask: files are created with the process's umask, as
//!   Mailman's `umask(002)`/`umask(007)` calls would only narrow them.
//! - Hostnames: `hostname()` is the name given to [`RealOs::new`], not
//!   `gethostname(2)`, so that several model "hosts" can share one machine.
//! - Signals other than TERM, INT and HUP for `take_signal`; KILL cannot be caught.
//!
//! `event` appends one line per event to Mailman-style log files under
//! `root/logs/` (see [`RealOs::log_name`]). Logging is best effort: an event
//! that cannot be written is dropped, because Mailman's logger never fails the
//! caller either.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::event::ModelEvent;
use crate::os::{err, ExitStatus, Fd, FileType, Metadata, OpenFlags, Os, Peer, Pid, SetTime, Signal};
use crate::python::{mailman_timestamp, unix_seconds};

/// How `RealOs::spawn` starts a model entry point: it runs
/// `exe <args_prefix...> <program> <args...>` as a child process. The
/// executable is expected to dispatch on `program` (for example a `scenarios`
/// binary with a `run-entry` subcommand in `args_prefix`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpawnConfig {
    pub exe: PathBuf,
    pub args_prefix: Vec<String>,
}

/// The first descriptor number handed out, after stdin, stdout and stderr.
const FD_FIRST: Fd = 3;
/// How often `wait` polls a child that has not exited yet.
const WAIT_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// [`Os`] on the real kernel. One value stands for one process.
pub struct RealOs {
    root: PathBuf,
    hostname: String,
    spawn_config: Option<SpawnConfig>,
    files: RefCell<BTreeMap<Fd, File>>,
    fd_next: Cell<Fd>,
    children: RefCell<BTreeMap<Pid, Child>>,
    rng: RefCell<StdRng>,
    /// Registered on the first `take_signal` call, so that a `RealOs` that
    /// never asks for signals keeps the default dispositions.
    signal_flags: OnceCell<Vec<(Signal, Arc<AtomicBool>)>>,
}

impl RealOs {
    /// A process rooted at `root` (the Mailman prefix) that calls itself `hostname`.
    pub fn new(root: PathBuf, hostname: String) -> Self {
        RealOs {
            root,
            hostname,
            spawn_config: None,
            files: RefCell::new(BTreeMap::new()),
            fd_next: Cell::new(FD_FIRST),
            children: RefCell::new(BTreeMap::new()),
            rng: RefCell::new(StdRng::from_os_rng()),
            signal_flags: OnceCell::new(),
        }
    }

    /// Enables `spawn`. Without a spawn config, `spawn` fails with ENOSYS.
    pub fn with_spawn(mut self, config: SpawnConfig) -> Self {
        self.spawn_config = Some(config);
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file under `root/logs/` that `event` appends `event` to: `locks`
    /// for lock events, `<log>` for [`ModelEvent::Log`], and the event's
    /// `kind` (its serde tag, for example `list_saved`) for everything else.
    pub fn log_name(event: &ModelEvent) -> String {
        if let ModelEvent::Log { log, .. } = event {
            return log.clone();
        }
        let kind = event_kind(event);
        if kind.starts_with("lock_") {
            "locks".to_string()
        } else {
            kind
        }
    }

    /// Resolves a trait path against the root. A path that would leave the
    /// root (absolute, or with a `..` component) fails with EACCES: the model
    /// can be handed such a name by a file it reads (a lock file names its
    /// claim file, and `__break` unlinks it), and a real run never writes
    /// outside its directory (docs/semantics/mailman-corrupt-files.md).
    fn path(&self, path: &str) -> io::Result<PathBuf> {
        if path.starts_with('/') || path.split('/').any(|c| c == "..") {
            return Err(err(libc::EACCES));
        }
        Ok(self.root.join(path))
    }

    fn with_file<T>(&self, fd: Fd, f: impl FnOnce(&mut File) -> io::Result<T>) -> io::Result<T> {
        let mut files = self.files.borrow_mut();
        let file = files.get_mut(&fd).ok_or_else(|| err(libc::EBADF))?;
        f(file)
    }

    fn append_log_line(&self, log: &str, message: &str) -> io::Result<()> {
        let dir = self.path("logs")?;
        std::fs::create_dir_all(&dir)?;
        let mut file = OpenOptions::new().append(true).create(true).open(dir.join(log))?;
        let stamp = mailman_timestamp(self.now());
        let line = format!("{stamp} ({:05}) {}: {message}\n", self.pid(), self.hostname);
        file.write_all(line.as_bytes())
    }

    fn signal_flags(&self) -> &[(Signal, Arc<AtomicBool>)] {
        self.signal_flags.get_or_init(|| {
            [(Signal::Term, libc::SIGTERM), (Signal::Int, libc::SIGINT), (Signal::Hup, libc::SIGHUP)]
                .into_iter()
                .map(|(signal, signo)| {
                    let flag = Arc::new(AtomicBool::new(false));
                    signal_hook::flag::register(signo, Arc::clone(&flag))
                        .expect("TERM, INT and HUP are catchable signals");
                    (signal, flag)
                })
                .collect()
        })
    }
}

impl Os for RealOs {
    type Listener = TcpListener;
    type Stream = TcpStream;

    async fn open(&self, path: &str, flags: OpenFlags) -> io::Result<Fd> {
        let mut options = OpenOptions::new();
        options.read(flags.read).write(flags.write).append(flags.append).truncate(flags.truncate);
        if flags.create && flags.exclusive {
            options.create_new(true);
        } else {
            options.create(flags.create);
        }
        let file = options.open(self.path(path)?)?;
        let fd = self.fd_next.get();
        self.fd_next.set(fd + 1);
        self.files.borrow_mut().insert(fd, file);
        Ok(fd)
    }

    async fn read(&self, fd: Fd, len: usize) -> io::Result<Vec<u8>> {
        self.with_file(fd, |file| {
            let mut buf = vec![0; len];
            let n = file.read(&mut buf)?;
            buf.truncate(n);
            Ok(buf)
        })
    }

    async fn write(&self, fd: Fd, data: &[u8]) -> io::Result<()> {
        self.with_file(fd, |file| file.write_all(data))
    }

    async fn seek(&self, fd: Fd, pos: u64) -> io::Result<()> {
        self.with_file(fd, |file| file.seek(SeekFrom::Start(pos)).map(drop))
    }

    async fn set_len(&self, fd: Fd, len: u64) -> io::Result<()> {
        self.with_file(fd, |file| file.set_len(len))
    }

    async fn fstat(&self, fd: Fd) -> io::Result<Metadata> {
        self.with_file(fd, |file| file.metadata().map(|m| metadata(&m)))
    }

    async fn fsync(&self, fd: Fd) -> io::Result<()> {
        self.with_file(fd, |file| file.sync_all())
    }

    async fn close(&self, fd: Fd) -> io::Result<()> {
        // Dropping the `File` closes it; std ignores close(2) errors, as most
        // programs do, so a close never fails here except on a bad descriptor.
        self.files.borrow_mut().remove(&fd).map(drop).ok_or_else(|| err(libc::EBADF))
    }

    async fn stat(&self, path: &str) -> io::Result<Metadata> {
        std::fs::metadata(self.path(path)?).map(|m| metadata(&m))
    }

    async fn link(&self, existing: &str, new: &str) -> io::Result<()> {
        std::fs::hard_link(self.path(existing)?, self.path(new)?)
    }

    async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.path(from)?, self.path(to)?)
    }

    async fn unlink(&self, path: &str) -> io::Result<()> {
        std::fs::remove_file(self.path(path)?)
    }

    async fn mkdir(&self, path: &str) -> io::Result<()> {
        std::fs::create_dir(self.path(path)?)
    }

    async fn rmdir(&self, path: &str) -> io::Result<()> {
        std::fs::remove_dir(self.path(path)?)
    }

    async fn read_dir(&self, path: &str) -> io::Result<Vec<String>> {
        // std already skips `.` and `..` and keeps the kernel's order.
        std::fs::read_dir(self.path(path)?)?
            .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect()
    }

    async fn set_times(&self, path: &str, time: SetTime) -> io::Result<()> {
        let c_path = CString::new(self.path(path)?.as_os_str().as_bytes()).map_err(|_| err(libc::EINVAL))?;
        let stamp = match time {
            SetTime::ServerNow => timespec(0, libc::UTIME_NOW),
            SetTime::Explicit(t) => {
                let (secs, nanos) = unix_seconds(t);
                timespec(secs, nanos)
            }
        };
        let times = [stamp, stamp];
        // SAFETY: `c_path` is a valid NUL-terminated string and `times` holds
        // the two timespecs utimensat(2) reads; both outlive the call.
        let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c_path.as_ptr(), times.as_ptr(), 0) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    #[allow(clippy::disallowed_methods)]
    fn monotonic(&self) -> Duration {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    fn random(&self) -> f64 {
        self.rng.borrow_mut().random::<f64>()
    }

    fn hostname(&self) -> String {
        self.hostname.clone()
    }

    fn parent_pid(&self) -> Pid {
        std::os::unix::process::parent_id()
    }

    fn pid(&self) -> Pid {
        std::process::id()
    }

    async fn spawn(&self, program: &str, args: &[String]) -> io::Result<Pid> {
        let config = self.spawn_config.as_ref().ok_or_else(|| err(libc::ENOSYS))?;
        let child = Command::new(&config.exe).args(&config.args_prefix).arg(program).args(args).spawn()?;
        let pid = child.id();
        self.children.borrow_mut().insert(pid, child);
        Ok(pid)
    }

    async fn wait(&self, pid: Pid) -> io::Result<ExitStatus> {
        loop {
            let status = {
                let mut children = self.children.borrow_mut();
                let child = children.get_mut(&pid).ok_or_else(|| err(libc::ECHILD))?;
                child.try_wait()?
            };
            if let Some(status) = status {
                self.children.borrow_mut().remove(&pid);
                return Ok(exit_status(status));
            }
            // Poll rather than block: the caller's runtime is single-threaded.
            tokio::time::sleep(WAIT_POLL_INTERVAL).await;
        }
    }

    async fn kill(&self, pid: Pid, signal: Signal) -> io::Result<()> {
        let signo = match signal {
            Signal::Term => libc::SIGTERM,
            Signal::Int => libc::SIGINT,
            Signal::Hup => libc::SIGHUP,
            Signal::Kill => libc::SIGKILL,
        };
        let pid = libc::pid_t::try_from(pid).map_err(|_| err(libc::ESRCH))?;
        // SAFETY: kill(2) takes plain integers and touches no memory of ours.
        if unsafe { libc::kill(pid, signo) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    async fn alive(&self, pid: Pid) -> bool {
        let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
        // SAFETY: as in `kill`; signal 0 only checks that the process exists.
        unsafe { libc::kill(pid, 0) == 0 }
    }

    fn take_signal(&self) -> Option<Signal> {
        // The first flag set wins, in the order TERM, INT, HUP: a stop request
        // outranks a restart, which outranks a log reopen.
        self.signal_flags().iter().find(|(_, flag)| flag.swap(false, Ordering::SeqCst)).map(|(signal, _)| *signal)
    }

    async fn tcp_listen(&self, port: u16) -> io::Result<TcpListener> {
        TcpListener::bind(("0.0.0.0", port)).await
    }

    async fn tcp_accept(&self, listener: &TcpListener) -> io::Result<(TcpStream, Peer)> {
        let (stream, addr) = listener.accept().await?;
        Ok((stream, Peer { host: addr.ip().to_string(), local: addr.ip().is_loopback() }))
    }

    async fn tcp_connect(&self, host: &str, port: u16) -> io::Result<TcpStream> {
        TcpStream::connect((host, port)).await
    }

    async fn tcp_read(&self, stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        stream.read(buf).await
    }

    async fn tcp_write(&self, stream: &mut TcpStream, data: &[u8]) -> io::Result<()> {
        stream.write_all(data).await
    }

    fn event(&self, event: ModelEvent) {
        let message = match &event {
            ModelEvent::Log { message, .. } => message.clone(),
            other => serde_json::to_string(other).expect("events serialise"),
        };
        // Best effort, see the module doc.
        let _ = self.append_log_line(&Self::log_name(&event), &message);
    }
}

/// The serde tag of an event (`"lock_acquired"`).
fn event_kind(event: &ModelEvent) -> String {
    let value = serde_json::to_value(event).expect("events serialise");
    value["kind"].as_str().expect("events are tagged with kind").to_string()
}

fn metadata(m: &std::fs::Metadata) -> Metadata {
    Metadata {
        ino: m.ino(),
        nlink: m.nlink(),
        size: m.size(),
        mtime: system_time(m.mtime(), m.mtime_nsec()),
        ctime: system_time(m.ctime(), m.ctime_nsec()),
        file_type: if m.is_dir() { FileType::Dir } else { FileType::File },
    }
}

fn system_time(secs: i64, nanos: i64) -> SystemTime {
    let nanos = Duration::from_nanos(u64::try_from(nanos).unwrap_or(0));
    match u64::try_from(secs) {
        Ok(secs) => UNIX_EPOCH + Duration::from_secs(secs) + nanos,
        Err(_) => UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + nanos,
    }
}

fn timespec(secs: i64, nanos: i64) -> libc::timespec {
    // SAFETY: timespec is plain old data; zero is a valid value for every field
    // (some targets have private padding fields, hence no struct literal).
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    ts.tv_sec = secs as libc::time_t;
    ts.tv_nsec = nanos as libc::c_long;
    ts
}

fn exit_status(status: std::process::ExitStatus) -> ExitStatus {
    if let Some(code) = status.code() {
        return ExitStatus::Code(code);
    }
    match status.signal() {
        Some(libc::SIGTERM) => ExitStatus::Signaled(Signal::Term),
        Some(libc::SIGINT) => ExitStatus::Signaled(Signal::Int),
        Some(libc::SIGHUP) => ExitStatus::Signaled(Signal::Hup),
        Some(libc::SIGKILL) => ExitStatus::Signaled(Signal::Kill),
        // A signal the model has no name for reads as the shell reports it.
        Some(other) => ExitStatus::Code(128 + other),
        None => ExitStatus::Code(-1),
    }
}
