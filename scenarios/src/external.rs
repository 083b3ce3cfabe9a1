//! `exec`: an unmodified external program as a simulated process
//! (docs/real-programs.md).
//!
//! The program runs as a real child process with `mmsim-shim` preloaded. The
//! shim turns its calls on the simulated mount, its clocks, sleeps, pid, host
//! name, randomness and signals into [`Call`]s over a socket pair; this program
//! answers each through its own `Os`, so every one passes the sim gate and the
//! host's NFS client and lands in the trace like the model's calls. The child
//! is blocked while the world runs, and the world is blocked while the child
//! computes: the order of its calls is the seed's.
//!
//! A `link` onto `--lock` that finds it taken notes `LockContended`, once per
//! acquisition as LockFile notes it once per `lock()` call.
//!
//! Writes to the `--marks` file are also read as marks: a line `enter WHO N`
//! opens WHO's critical section on `--lock` (a `LockAcquired` note, at the
//! write), a line `exit WHO N` closes it (`LockReleasing`, after the close
//! returned), and every line is noted `Appended` once its close returned, so
//! `lock_exclusion` and `append_conservation` judge a real program exactly as
//! they judge `lock-worker`.
//!
//! A call the shim cannot represent, a version mismatch, a program that dies
//! before its first call, or a program that makes no call for the watchdog's
//! wall-clock seconds stops the run ([`take_refusal`]).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicU64, Ordering};

use model::args::{ArgDefault, ArgError, ArgKind, ArgSpec, ProgramSpec};
use model::{ExitStatus, ModelEvent, OpenFlags, Os, SetTime};
use shim_proto::{Call, Clock, Reply, Stat, Whence, ENV_FD, ENV_MOUNT, FRAME_MAX, VERSION};

use crate::kernel::Kernel;

/// Why a run was stopped by an external program, for the verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The scenario asks for something mmsim cannot run: bad input (exit 2).
    BadInput(String),
    /// The program made no call for the watchdog's time: a liveness verdict (exit 3).
    Hung(String),
}

thread_local! {
    static REFUSAL: RefCell<Option<Refusal>> = const { RefCell::new(None) };
}

fn refuse(r: Refusal) {
    REFUSAL.with(|slot| {
        slot.borrow_mut().get_or_insert(r);
    });
}

/// The first refusal since the last call, if any. The run loop asks after every step.
pub fn take_refusal() -> Option<Refusal> {
    REFUSAL.with(|slot| slot.borrow_mut().take())
}

fn check_mount(v: &str) -> Result<(), String> {
    let ok = v.starts_with('/')
        && v.len() > 1
        && !v.ends_with('/')
        && v.split('/').skip(1).all(|c| !c.is_empty() && c != "." && c != "..")
        && v.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err("expected an absolute path like /mm, without a trailing '/'".into())
    }
}

/// `exec`'s arguments.
pub static SPEC: ProgramSpec = ProgramSpec {
    name: "exec",
    summary: "an unmodified external program, its calls in lockstep with the world through mmsim-shim",
    options: &[
        ArgSpec {
            name: "mount",
            kind: ArgKind::Custom { what: "an absolute path", metavar: "PATH", check: check_mount },
            default: ArgDefault::Value("/mm"),
            help: "where the program sees the simulated ~mailman; no real path may be there",
        },
        ArgSpec {
            name: "marks",
            kind: ArgKind::Path,
            default: ArgDefault::Absent,
            help: "a shared log whose `enter WHO N` / `exit WHO N` lines are the program's critical sections",
        },
        ArgSpec {
            name: "lock",
            kind: ArgKind::Path,
            default: ArgDefault::Absent,
            help: "the lock those critical sections are under (default: the marks file)",
        },
        ArgSpec {
            name: "tmpdir",
            kind: ArgKind::Path,
            default: ArgDefault::Absent,
            help: "a directory on the mount the program's TMPDIR names (default: no TMPDIR)",
        },
        ArgSpec {
            name: "watchdog-s",
            kind: ArgKind::UInt { min: 1, max: 3600, unit: "seconds" },
            default: ArgDefault::Value("60"),
            help: "wall-clock seconds the program may run between two calls before it counts as hung",
        },
    ],
    positional: &[],
    command: true,
};

/// What `exec` runs, from its arguments and this machine.
#[derive(Clone)]
pub struct Plan {
    mount: String,
    marks: Option<String>,
    lock: String,
    watchdog: Duration,
    tmpdir: Option<String>,
    program: PathBuf,
    argv: Vec<String>,
}

/// The directories searched for a program, in order: the project's virtualenv
/// (`cargo xtask setup`), then the system's.
pub fn search_path() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = venv().map(|v| v.join("bin")).into_iter().collect();
    dirs.extend(["/usr/local/bin", "/usr/bin", "/bin"].map(PathBuf::from));
    dirs
}

/// Where the build's own files live: the directory of the `mmsim` binary and its parents
/// (`target/release`, and `target/debug` above a test binary's `deps/`).
fn build_dirs() -> Vec<PathBuf> {
    let exe = std::env::current_exe().ok();
    let mut dirs = Vec::new();
    let mut at = exe.as_deref().and_then(Path::parent);
    for _ in 0..3 {
        let Some(d) = at else { break };
        dirs.push(d.to_path_buf());
        at = d.parent();
    }
    dirs
}

/// The project's virtualenv: `$MMSIM_VENV`, or `mmsim-venv` in the target directory.
pub fn venv() -> Option<PathBuf> {
    if let Some(v) = std::env::var_os("MMSIM_VENV") {
        return Some(PathBuf::from(v));
    }
    build_dirs().into_iter().map(|d| d.join("mmsim-venv")).find(|v| v.join("bin").is_dir())
}

/// The interposition library: `$MMSIM_SHIM`, or `libmmsim_shim.so` beside the binary.
pub fn shim_library() -> Option<PathBuf> {
    if let Some(v) = std::env::var_os("MMSIM_SHIM") {
        return Some(PathBuf::from(v)).filter(|p| p.is_file());
    }
    build_dirs().into_iter().map(|d| d.join("libmmsim_shim.so")).find(|p| p.is_file())
}

fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    search_path().into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// Parses the arguments, finds the program and checks the mount point. This is
/// the one plan that looks at the machine: its program lives there.
pub fn plan(args: &[String]) -> Result<Plan, ArgError> {
    let p = SPEC.parse(args)?;
    let argv = p.command().to_vec();
    let program = find_program(&argv[0]).ok_or_else(|| {
        let dirs: Vec<String> = search_path().iter().map(|d| d.display().to_string()).collect();
        ArgError::new(
            format!("{:?}", model::args::shown(&argv[0])),
            format!(
                "a program installed on this machine (not in {}; `cargo xtask setup` installs the real-program tools)",
                dirs.join(":")
            ),
        )
    })?;
    let setid = std::fs::metadata(&program).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o6000);
    if setid.is_ok_and(|bits| bits != 0) {
        return Err(ArgError::new(
            format!("{:?}", model::args::shown(&argv[0])),
            format!(
                "a program without the set-user-ID or set-group-ID bit ({} has one, and ld.so ignores LD_PRELOAD for such programs; `cargo xtask setup` puts a copy without it in the project's virtualenv)",
                program.display()
            ),
        ));
    }
    let mount = p.text("mount");
    if Path::new(&mount).exists() {
        return Err(ArgError::option(
            "mount",
            &mount,
            "a mount point where no real path is (this one exists on the machine, so the program could not tell the two apart)",
        ));
    }
    let marks = p.value("marks").map(str::to_string);
    let lock = p.value("lock").map(str::to_string).or_else(|| marks.clone()).unwrap_or_default();
    let tmpdir = p.value("tmpdir").map(|d| format!("{mount}/{d}"));
    Ok(Plan { mount, marks, lock, watchdog: Duration::from_secs(p.uint("watchdog-s")), tmpdir, program, argv })
}

/// Kills and reaps the real child when the simulated process ends for any
/// reason, a crash included (the world drops the process's future).
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An open file of the program: where its position is, which the world's `Os` keeps but does not report.
struct File {
    path: String,
    /// `None` after an append, until a seek: then the end of the file.
    pos: Option<u64>,
    /// Mark lines written to this descriptor, noted once its close returns.
    pending: Vec<String>,
}

struct Session<'a, O: Kernel> {
    os: &'a O,
    plan: &'a Plan,
    files: BTreeMap<u32, File>,
    /// Whether the current attempt at the lock was already noted contended.
    contended: bool,
    /// The real process, from its hello: signals go there, and a crash kills it.
    real_pid: i32,
    /// Forks so far, which name each child for [`forked`].
    forks: u32,
    /// The status the program said it exits with ([`Call::Exit`]).
    exit: Option<i32>,
    /// Whether the program closed its socket (it exited), rather than the world dropping this session.
    ended: bool,
    /// Forks whose child has not yet taken its socket ([`FORKS`]).
    pending: Vec<(String, String)>,
    /// What the program wrote to its standard output (1) and error (2) past its last full line.
    partial: [Vec<u8>; 2],
}

impl<'a, O: Kernel> Session<'a, O> {
    fn new(os: &'a O, plan: &'a Plan) -> Self {
        Session {
            os,
            plan,
            files: BTreeMap::new(),
            contended: false,
            real_pid: 0,
            forks: 0,
            exit: None,
            ended: false,
            pending: Vec::new(),
            partial: [Vec::new(), Vec::new()],
        }
    }
}

/// A simulated process that ends for any other reason than its program's exit
/// (a crash, SIGKILL, the host's crash) takes its real process with it.
impl<O: Kernel> Drop for Session<'_, O> {
    fn drop(&mut self) {
        if !self.ended && self.real_pid > 0 {
            unsafe { libc::kill(self.real_pid, libc::SIGKILL) };
        }
        // A child killed before it took its socket: closing the listener ends its real process.
        FORKS.with(|f| {
            let mut f = f.borrow_mut();
            for key in &self.pending {
                f.remove(key);
            }
        });
    }
}

fn stat_of(m: &model::Metadata) -> Stat {
    let t = |s: SystemTime| {
        let d = s.duration_since(UNIX_EPOCH).unwrap_or_default();
        (d.as_secs() as i64, d.subsec_nanos())
    };
    Stat {
        ino: m.ino,
        nlink: m.nlink,
        size: m.size,
        dir: m.file_type == model::FileType::Dir,
        mtime: t(m.mtime),
        ctime: t(m.ctime),
    }
}

fn errno_of(e: &std::io::Error) -> Reply {
    Reply::Errno(e.raw_os_error().unwrap_or(libc::EIO))
}

fn done(r: std::io::Result<()>) -> Reply {
    match r {
        Ok(()) => Reply::Done,
        Err(e) => errno_of(&e),
    }
}

impl<O: Kernel> Session<'_, O> {
    fn note(&self, event: ModelEvent) {
        self.os.event(event);
    }

    async fn size(&self, fd: u32) -> std::io::Result<u64> {
        Ok(self.os.fstat(fd).await?.size)
    }

    async fn position(&mut self, fd: u32) -> std::io::Result<u64> {
        match self.files[&fd].pos {
            Some(p) => Ok(p),
            None => self.size(fd).await,
        }
    }

    async fn handle(&mut self, call: Call) -> Reply {
        let os = self.os;
        match call {
            Call::Hello { .. } => Reply::Refused("a second hello".into()),
            Call::Open { path, flags } => {
                let f = OpenFlags {
                    read: flags.read,
                    write: flags.write,
                    create: flags.create,
                    exclusive: flags.exclusive,
                    truncate: flags.truncate,
                    append: flags.append,
                };
                match os.open(&path, f).await {
                    Ok(fd) => {
                        self.files.insert(fd, File { path, pos: Some(0), pending: Vec::new() });
                        Reply::Fd(fd)
                    }
                    Err(e) => errno_of(&e),
                }
            }
            Call::Close { fd } => {
                let file = self.files.remove(&fd);
                let r = os.close(fd).await;
                if let (Ok(()), Some(file)) = (&r, file) {
                    for line in file.pending {
                        let exit = line.split(' ').next() == Some("exit");
                        let claim = line.split(' ').nth(1).unwrap_or_default().to_string();
                        self.note(ModelEvent::Appended { path: file.path.clone(), record: line });
                        if exit {
                            self.note(ModelEvent::LockReleasing { lock: self.plan.lock.clone(), claim });
                        }
                    }
                }
                done(r)
            }
            Call::Read { fd, len } => self.read(fd, len).await,
            Call::ReadAt { fd, len, offset } => {
                let back = match self.position(fd).await {
                    Ok(p) => p,
                    Err(e) => return errno_of(&e),
                };
                if let Err(e) = os.seek(fd, offset).await {
                    return errno_of(&e);
                }
                let r = os.read(fd, len as usize).await;
                if let Err(e) = os.seek(fd, back).await {
                    return errno_of(&e);
                }
                match r {
                    Ok(d) => Reply::Data(d),
                    Err(e) => errno_of(&e),
                }
            }
            Call::Write { fd, data } => self.write(fd, data).await,
            Call::WriteAt { fd, data, offset } => {
                let back = match self.position(fd).await {
                    Ok(p) => p,
                    Err(e) => return errno_of(&e),
                };
                if let Err(e) = os.seek(fd, offset).await {
                    return errno_of(&e);
                }
                let r = os.write(fd, &data).await;
                if let Err(e) = os.seek(fd, back).await {
                    return errno_of(&e);
                }
                done(r)
            }
            Call::Seek { fd, offset, whence } => {
                if !self.files.contains_key(&fd) {
                    return Reply::Errno(libc::EBADF);
                }
                let base = match whence {
                    Whence::Set => Ok(0),
                    Whence::Current => self.position(fd).await,
                    Whence::End => self.size(fd).await,
                };
                let target = match base {
                    Ok(b) => b as i64 + offset,
                    Err(e) => return errno_of(&e),
                };
                if target < 0 {
                    return Reply::Errno(libc::EINVAL);
                }
                match os.seek(fd, target as u64).await {
                    Ok(()) => {
                        self.files.get_mut(&fd).expect("checked above").pos = Some(target as u64);
                        Reply::Value(target as u64)
                    }
                    Err(e) => errno_of(&e),
                }
            }
            Call::Fstat { fd } => match os.fstat(fd).await {
                Ok(m) => Reply::Stat(stat_of(&m)),
                Err(e) => errno_of(&e),
            },
            Call::Ftruncate { fd, len } => done(os.set_len(fd, len).await),
            Call::Fsync { fd } => done(os.fsync(fd).await),
            Call::Stat { path } => match os.stat(&path).await {
                Ok(m) => Reply::Stat(stat_of(&m)),
                Err(e) => errno_of(&e),
            },
            Call::Link { existing, new } => {
                let r = os.link(&existing, &new).await;
                // A link onto the lock that finds it taken is the lock contended. LockFile notes
                // it once per lock() call, so this notes the first such link since the last `enter`.
                let taken = r.as_ref().err().and_then(|e| e.raw_os_error()) == Some(libc::EEXIST);
                if new == self.plan.lock && taken && !self.contended {
                    self.contended = true;
                    self.note(ModelEvent::LockContended { lock: new, claim: existing });
                }
                done(r)
            }
            Call::Unlink { path } => done(os.unlink(&path).await),
            Call::Rename { from, to } => done(os.rename(&from, &to).await),
            Call::Mkdir { path } => done(os.mkdir(&path).await),
            Call::Rmdir { path } => done(os.rmdir(&path).await),
            Call::SetTimes { path, time } => {
                let t = match time {
                    None => SetTime::ServerNow,
                    Some((s, ns)) => SetTime::Explicit(if s >= 0 {
                        UNIX_EPOCH + Duration::new(s as u64, ns)
                    } else {
                        UNIX_EPOCH - Duration::from_secs(s.unsigned_abs())
                    }),
                };
                done(os.set_times(&path, t).await)
            }
            Call::ReadDir { path } => match os.read_dir(&path).await {
                Ok(names) => Reply::Names(names),
                Err(e) => errno_of(&e),
            },
            Call::Now { clock } => {
                let d = match clock {
                    Clock::Wall => os.now().duration_since(UNIX_EPOCH).unwrap_or_default(),
                    Clock::Monotonic => os.monotonic(),
                };
                Reply::Time(d.as_secs() as i64, d.subsec_nanos())
            }
            Call::Sleep { ns } => {
                os.sleep(Duration::from_nanos(ns)).await;
                Reply::Done
            }
            Call::Pid => Reply::Value(os.pid() as u64),
            Call::ParentPid => Reply::Value(os.parent_pid() as u64),
            Call::Hostname => Reply::Text(os.hostname()),
            Call::Random { len } => {
                // Four bytes from each of the process's seeded draws.
                let mut bytes = Vec::with_capacity(len as usize + 4);
                while bytes.len() < len as usize {
                    let word = (os.random() * 4_294_967_296.0) as u32;
                    bytes.extend_from_slice(&word.to_le_bytes());
                }
                bytes.truncate(len as usize);
                Reply::Data(bytes)
            }
            Call::Kill { pid, signal: 0 } => {
                if os.alive(pid).await {
                    Reply::Done
                } else {
                    Reply::Errno(libc::ESRCH)
                }
            }
            Call::Kill { pid, signal } => match crate::sim_os::signal_from(signal) {
                Some(s) => done(os.kill(pid, s).await),
                None => Reply::Errno(libc::EINVAL),
            },
            Call::Output { fd, data } => {
                self.output(fd, &data, false);
                Reply::Done
            }
            Call::Fork => self.fork().await,
            Call::Pipe => match os.pipe().await {
                Ok((r, w)) => Reply::Pipe(r, w),
                Err(e) => errno_of(&e),
            },
            Call::PipeRead { end, len } => match os.pipe_read(end, len as usize).await {
                Ok(d) => Reply::Data(d),
                Err(e) => errno_of(&e),
            },
            Call::PipeWrite { end, data } => match os.pipe_write(end, &data).await {
                Ok(n) => Reply::Value(n as u64),
                Err(e) => errno_of(&e),
            },
            Call::PipeClose { end } => done(os.pipe_close(end).await),
            Call::Poll { ends, timeout_ns } => match os.poll(&ends, timeout_ns.map(Duration::from_nanos)).await {
                Ok(bits) => Reply::Ready(bits),
                Err(e) => errno_of(&e),
            },
            Call::Wait { pid, nohang } => {
                if nohang && os.alive(pid).await {
                    return Reply::Exited(None);
                }
                match os.wait(pid).await {
                    // As waitpid(2) encodes them: the code in the second byte, or the signal.
                    Ok(ExitStatus::Code(c)) => Reply::Exited(Some((c & 0xff) << 8)),
                    Ok(ExitStatus::Signaled(sig)) => Reply::Exited(Some(crate::sim_os::signal_number(sig))),
                    Err(e) => errno_of(&e),
                }
            }
            Call::SemOpen { name, create, exclusive, value } => {
                match os.sem_open(&name, create, exclusive, value).await {
                    Ok(n) => Reply::Value(n as u64),
                    Err(e) => errno_of(&e),
                }
            }
            Call::SemWait { sem, timeout_ns } => done(os.sem_wait(sem, timeout_ns.map(Duration::from_nanos)).await),
            Call::SemPost { sem } => done(os.sem_post(sem).await),
            Call::SemValue { sem } => match os.sem_value(sem).await {
                Ok(v) => Reply::Value(v as u64),
                Err(e) => errno_of(&e),
            },
            Call::SemClose { sem } => done(os.sem_close(sem).await),
            Call::SemUnlink { name } => done(os.sem_unlink(&name).await),
            Call::Exit { code } => {
                self.exit = Some(code);
                Reply::Done
            }
            Call::Unsupported { call, detail } => {
                let why =
                    format!("{} called {call} ({detail}), which mmsim-shim cannot run in lockstep", self.plan.argv[0]);
                refuse(Refusal::BadInput(why.clone()));
                Reply::Refused(why)
            }
        }
    }

    /// Notes each full line the program wrote to standard output or error; with
    /// `end`, what is left after the last one too.
    fn output(&mut self, fd: u32, data: &[u8], end: bool) {
        let (i, log) = if fd == 1 { (0, "stdout") } else { (1, "stderr") };
        self.partial[i].extend_from_slice(data);
        let upto = if end {
            self.partial[i].len()
        } else {
            self.partial[i].iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1)
        };
        let full: Vec<u8> = self.partial[i].drain(..upto).collect();
        for line in String::from_utf8_lossy(&full).lines() {
            self.note(ModelEvent::Log { log: log.into(), message: line.to_string() });
        }
    }

    /// `fork`: a listening socket for the child's shim, then the world's child,
    /// which [`forked`] runs; the shim forks the real process once this answers.
    async fn fork(&mut self) -> Reply {
        static SOCKETS: AtomicU64 = AtomicU64::new(0);
        // The child's name in the world (its argument, so in the trace) counts this
        // process's forks; the socket's name, which is not in the trace, is unique on the machine.
        let token = format!("{}.{}", self.os.pid(), self.forks);
        self.forks += 1;
        let socket = format!("mmsim-{}-{}", std::process::id(), SOCKETS.fetch_add(1, Ordering::Relaxed));
        let listener = std::os::unix::net::SocketAddr::from_abstract_name(socket.as_bytes())
            .and_then(|a| UnixListener::bind_addr(&a));
        let listener = match listener {
            Ok(l) => l,
            Err(_) => return Reply::Errno(libc::EAGAIN),
        };
        let key = (self.os.hostname(), token.clone());
        FORKS.with(|f| f.borrow_mut().insert(key.clone(), Forked { listener, plan: self.plan.clone() }));
        self.pending.retain(|k| FORKS.with(|f| f.borrow().contains_key(k)));
        self.pending.push(key.clone());
        match self.os.fork(FORKED, &[token]).await {
            Ok(pid) => Reply::Forked { pid, socket },
            Err(e) => {
                FORKS.with(|f| f.borrow_mut().remove(&key));
                errno_of(&e)
            }
        }
    }

    async fn read(&mut self, fd: u32, len: u64) -> Reply {
        match self.os.read(fd, len as usize).await {
            Ok(d) => {
                if let Some(f) = self.files.get_mut(&fd) {
                    f.pos = f.pos.map(|p| p + d.len() as u64);
                }
                Reply::Data(d)
            }
            Err(e) => errno_of(&e),
        }
    }

    async fn write(&mut self, fd: u32, data: Vec<u8>) -> Reply {
        let is_marks = self.files.get(&fd).is_some_and(|f| Some(&f.path) == self.plan.marks.as_ref());
        let lines: Vec<String> =
            if is_marks { String::from_utf8_lossy(&data).lines().map(str::to_string).collect() } else { Vec::new() };
        for line in &lines {
            let mut words = line.split(' ');
            if let (Some("enter"), Some(who)) = (words.next(), words.next()) {
                self.contended = false;
                self.note(ModelEvent::LockAcquired { lock: self.plan.lock.clone(), claim: who.to_string() });
            }
        }
        let r = self.os.write(fd, &data).await;
        if let (Ok(()), Some(f)) = (&r, self.files.get_mut(&fd)) {
            f.pos = f.pos.map(|p| p + data.len() as u64);
            f.pending.extend(lines);
        }
        done(r)
    }
}

fn read_frame(sock: &mut UnixStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match sock.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len);
    if len > FRAME_MAX {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "a frame longer than the protocol allows"));
    }
    let mut body = vec![0u8; len as usize];
    sock.read_exact(&mut body)?;
    Ok(Some(body))
}

/// The child's environment: nothing of mmsim's own, so that a run depends on the seed only.
fn command(plan: &Plan, shim: &Path, fd: i32) -> Command {
    let path: Vec<String> = search_path().iter().map(|d| d.display().to_string()).collect();
    let mut cmd = Command::new(&plan.program);
    cmd.args(&plan.argv[1..])
        .env_clear()
        .env("PATH", path.join(":"))
        .env("LD_PRELOAD", shim)
        .env(ENV_FD, fd.to_string())
        .env(ENV_MOUNT, &plan.mount)
        .env("TZ", "UTC")
        .env("LANG", "C.UTF-8")
        .env("HOME", &plan.mount)
        // The interpreter's own hash seed is fixed, and it writes no bytecode next to its modules.
        .env("PYTHONHASHSEED", "0")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // It starts in the project's virtualenv, so that a scenario can name the
    // files `cargo xtask setup` put there (`src/`) by relative paths.
    if let Some(v) = venv() {
        cmd.env("VIRTUAL_ENV", &v).current_dir(v);
    }
    if let Some(t) = &plan.tmpdir {
        cmd.env("TMPDIR", t);
    }
    cmd
}

fn log_error<O: Os>(os: &O, message: String) {
    os.event(ModelEvent::Log { log: "error".into(), message });
}

/// Runs the program to its end; returns its exit code (128 + signal when killed).
pub async fn exec<O: Kernel>(os: O, args: &[String]) -> i32 {
    let plan = match plan(args) {
        Ok(p) => p,
        Err(e) => {
            log_error(&os, format!("exec: {e}"));
            refuse(Refusal::BadInput(format!("exec: {e}")));
            return 2;
        }
    };
    let Some(shim) = shim_library() else {
        refuse(Refusal::BadInput(
            "the interposition library libmmsim_shim.so is not built (`cargo xtask setup`, or `cargo build -p mmsim-shim`)"
                .into(),
        ));
        return 127;
    };
    let (mut ours, theirs) = match UnixStream::pair() {
        Ok(p) => p,
        Err(e) => {
            refuse(Refusal::BadInput(format!("exec: cannot make a socket pair: {e}")));
            return 127;
        }
    };
    // The child inherits its end: clear close-on-exec on it, and only it.
    let fd = theirs.as_raw_fd();
    unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    let spawned = command(&plan, &shim, fd).spawn();
    drop(theirs);
    let mut child = match spawned {
        Ok(c) => ChildGuard(c),
        Err(e) => {
            refuse(Refusal::BadInput(format!("exec: cannot start {}: {e}", plan.program.display())));
            return 127;
        }
    };
    let mut session = Session::new(&os, &plan);
    let greeted = match serve(&mut session, &mut ours).await {
        Served::Hung => return 127,
        Served::Ended { greeted } => greeted,
    };
    drop(session);
    let status = child.0.wait();
    // Its forked children share the pipe and may outlive it: read what is there, not to the end.
    let mut stderr = String::new();
    if let Some(mut e) = child.0.stderr.take() {
        unsafe { libc::fcntl(e.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
        let mut bytes = Vec::new();
        let _ = e.read_to_end(&mut bytes);
        stderr = String::from_utf8_lossy(&bytes).into_owned();
    }
    let code = match status {
        Ok(s) => s.code().unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(&s).unwrap_or(0)),
        Err(_) => 127,
    };
    if !greeted {
        let tail = stderr.lines().last().unwrap_or("no output").to_string();
        refuse(Refusal::BadInput(format!(
            "{} exited (code {code}) before its first call through the shim: {tail}",
            plan.argv[0]
        )));
    } else if !stderr.trim().is_empty() {
        for line in stderr.lines() {
            os.event(ModelEvent::Log { log: "stderr".into(), message: line.to_string() });
        }
    }
    code
}

enum Served {
    /// The program closed its socket (it exited); `greeted` says whether it said hello first.
    Ended { greeted: bool },
    /// It made no call for the watchdog's time (refused as hung).
    Hung,
}

/// Answers the program's calls, one at a time, until it closes its socket.
async fn serve<O: Kernel>(session: &mut Session<'_, O>, sock: &mut UnixStream) -> Served {
    let plan = session.plan;
    let os = session.os;
    let _ = sock.set_read_timeout(Some(plan.watchdog));
    let mut greeted = false;
    loop {
        let body = match read_frame(sock) {
            Ok(Some(b)) => b,
            Ok(None) => break,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                refuse(Refusal::Hung(format!(
                    "{} made no call for {} s of wall-clock time (the watchdog stopped it)",
                    plan.argv[0],
                    plan.watchdog.as_secs()
                )));
                return Served::Hung;
            }
            Err(_) => break,
        };
        let reply = match shim_proto::decode::<Call>(&body) {
            Ok(Call::Hello { version, real_pid }) if !greeted => {
                greeted = true;
                session.real_pid = real_pid as i32;
                if version == VERSION {
                    Reply::Done
                } else {
                    let why = format!(
                        "{}'s mmsim-shim speaks protocol {version}, this mmsim speaks {VERSION}: rebuild both (`cargo xtask setup`)",
                        plan.argv[0]
                    );
                    refuse(Refusal::BadInput(why.clone()));
                    Reply::Refused(why)
                }
            }
            Ok(_) if !greeted => {
                refuse(Refusal::BadInput(format!("{}: the shim's first frame was not a hello", plan.argv[0])));
                Reply::Refused("no hello".into())
            }
            Ok(call) => session.handle(call).await,
            Err(e) => {
                refuse(Refusal::BadInput(format!("{}: an undecodable frame from the shim: {e}", plan.argv[0])));
                Reply::Refused("undecodable frame".into())
            }
        };
        // A catchable signal the world delivered to this process goes to the real
        // process, which takes it as its blocked call returns.
        while let Some(signal) = os.take_signal() {
            unsafe { libc::kill(session.real_pid, crate::sim_os::signal_number(signal)) };
        }
        if sock.write_all(&shim_proto::encode(&reply)).is_err() {
            break;
        }
    }
    session.ended = true;
    session.output(1, &[], true);
    session.output(2, &[], true);
    Served::Ended { greeted }
}

/// The program name under which the world runs a forked child.
pub const FORKED: &str = "forked";

/// A fork whose child the world has started and whose real process has yet to connect.
struct Forked {
    listener: UnixListener,
    plan: Plan,
}

thread_local! {
    /// Pending forks by (host, child's argument).
    static FORKS: RefCell<BTreeMap<(String, String), Forked>> = const { RefCell::new(BTreeMap::new()) };
}

/// The child of an `exec` program's `fork`: waits for the real child's shim to
/// connect, then serves its calls as `exec` serves its parent's. Its status is
/// the one its shim reported on exit.
pub async fn forked<O: Kernel>(os: O, args: &[String]) -> i32 {
    let key = (os.hostname(), args.first().cloned().unwrap_or_default());
    let Some(fork) = FORKS.with(|f| f.borrow_mut().remove(&key)) else {
        refuse(Refusal::BadInput(format!("{FORKED}: no exec program forked {:?}", key.1)));
        return 2;
    };
    let plan = fork.plan;
    let mut pfd = libc::pollfd { fd: fork.listener.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    let waited = unsafe { libc::poll(&mut pfd, 1, plan.watchdog.as_millis().min(i32::MAX as u128) as i32) };
    let accepted = if waited == 1 { fork.listener.accept().ok() } else { None };
    let Some((mut sock, _)) = accepted else {
        refuse(Refusal::Hung(format!(
            "{}'s forked child did not reach the world within {} s of wall-clock time",
            plan.argv[0],
            plan.watchdog.as_secs()
        )));
        return 127;
    };
    drop(fork.listener);
    let mut session = Session::new(&os, &plan);
    match serve(&mut session, &mut sock).await {
        Served::Hung => 127,
        Served::Ended { greeted: false } => {
            refuse(Refusal::BadInput(format!("{}'s forked child closed its socket before its hello", plan.argv[0])));
            127
        }
        Served::Ended { greeted: true } => session.exit.unwrap_or_else(|| {
            log_error(&os, format!("{}'s forked child exited without reporting a status", plan.argv[0]));
            255
        }),
    }
}
