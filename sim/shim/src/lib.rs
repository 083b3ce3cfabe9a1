//! `mmsim-shim`: an `LD_PRELOAD` library that runs an unmodified program's
//! calls in lockstep with an mmsim world (docs/real-programs.md).
//!
//! Loaded into a program that mmsim started, it intercepts libc's exported
//! functions. Calls on paths under the simulated mount point, or on the
//! descriptors and directory streams opened there, become [`Call`] frames to
//! the world; so do the clocks, the sleeps, `getpid`, `gethostname`/`uname`,
//! `getrandom`, `kill` and the program's writes to its standard output and
//! error. The program is blocked until the world answers. Everything else
//! (the interpreter's own imports and libraries) passes through to the real
//! kernel, through the next definition of the symbol (`dlsym(RTLD_NEXT)`).
//!
//! A call on the mount that the world does not model (stdio streams, `mmap`,
//! `dup`, `fcntl` locks, `chdir` into the mount, `fork`, threads, …) is sent
//! as [`Call::Unsupported`]: the world stops the run naming it, and the
//! program exits. Nothing is silently passed to the real kernel for a path
//! under the mount point.
//!
//! Only functions called through the dynamic linker can be intercepted: glibc's
//! calls inside itself (`fopen`'s own `open`, `sleep`'s own `nanosleep`) never
//! reach a preloaded library, which is why `sleep`, `usleep`, `opendir` and
//! `fopen` are intercepted by name. Static binaries and raw system calls are
//! out of reach (README, "Real programs").
//!
//! Without [`ENV_FD`] in its environment the library is inert.

#![allow(clippy::missing_safety_doc)]

use std::cell::Cell;
use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, c_long, c_uint, c_void, CStr};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use libc::{mode_t, off_t, size_t, ssize_t};
use shim_proto::{Call, Clock, OpenFlags, Reply, Stat, Whence, ENV_FD, ENV_MOUNT, FRAME_MAX, VERSION};

/// The fake device number of files on the simulated mount.
const SIM_DEV: u64 = 0x6d6d;

/// The next definition of a libc symbol: the real one.
macro_rules! real {
    ($name:ident : $ty:ty) => {{
        static PTR: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let mut p = PTR.load(std::sync::atomic::Ordering::Relaxed);
        if p == 0 {
            p = libc::dlsym(libc::RTLD_NEXT, concat!(stringify!($name), "\0").as_ptr() as *const std::ffi::c_char)
                as usize;
            if p == 0 {
                die(concat!("mmsim-shim: no real ", stringify!($name), "\n"));
            }
            PTR.store(p, std::sync::atomic::Ordering::Relaxed);
        }
        std::mem::transmute::<usize, $ty>(p)
    }};
}

mod threads;

/// A descriptor opened on the mount: a real placeholder descriptor (on
/// `/dev/null`, so its number is the program's and nothing else takes it) stands
/// for the world's.
#[derive(Clone)]
struct Mapped {
    /// The world's descriptor; `None` for a directory opened with `O_DIRECTORY`.
    world: Option<u32>,
    /// The path it was opened by (for `futimens`, `fdopendir` and `*at` calls).
    path: String,
    flags: OpenFlags,
    /// The world's pipe end, for a descriptor from `pipe()`.
    pipe: Option<u32>,
}

/// A directory stream from `opendir` on the mount.
struct Dir {
    names: Vec<String>,
    next: usize,
    entry: libc::dirent64,
}

struct Shim {
    sock: c_int,
    mount: Vec<u8>,
    fds: BTreeMap<c_int, Mapped>,
    dirs: BTreeMap<usize, Box<Dir>>,
    pid: Option<u32>,
    hostname: Option<String>,
    /// The working directory, while it is on the mount (relative to it). The
    /// real process stays in its real working directory meanwhile.
    cwd: Option<String>,
    /// Children from `fork`: simulated pid to real pid, which `waitpid` reaps.
    children: BTreeMap<u32, libc::pid_t>,
    /// Named semaphores from `sem_open`: the address handed out, and the world's number.
    sems: BTreeMap<usize, u32>,
}

/// 0: not yet looked; 1: active; 2: inert (no world in the environment).
static STATE: AtomicU8 = AtomicU8::new(0);
static SHIM: Mutex<Option<Shim>> = Mutex::new(None);

thread_local! {
    /// Set while the shim itself runs: anything it calls passes through.
    static BUSY: Cell<bool> = const { Cell::new(false) };
}

fn die(message: &str) -> ! {
    unsafe {
        libc::syscall(libc::SYS_write, 2, message.as_ptr(), message.len());
        libc::syscall(libc::SYS_exit_group, 127);
    }
    unreachable!()
}

fn raw_write_all(fd: c_int, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        let n = unsafe { libc::syscall(libc::SYS_write, fd, data.as_ptr(), data.len()) };
        if n < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return false;
        }
        data = &data[n as usize..];
    }
    true
}

fn raw_read_exact(fd: c_int, mut buf: &mut [u8]) -> bool {
    while !buf.is_empty() {
        let n = unsafe { libc::syscall(libc::SYS_read, fd, buf.as_mut_ptr(), buf.len()) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            return false;
        }
        buf = &mut buf[n as usize..];
    }
    true
}

fn errno() -> c_int {
    unsafe { *libc::__errno_location() }
}

fn set_errno(e: c_int) {
    unsafe { *libc::__errno_location() = e };
}

/// `-1` with `errno` set, as a failing libc call returns.
fn fail<T: From<i8>>(e: c_int) -> T {
    set_errno(e);
    T::from(-1)
}

impl Shim {
    fn start() -> Option<Shim> {
        let fd = unsafe { libc::getenv(c"MMSIM_SHIM_FD".as_ptr()) };
        debug_assert_eq!(ENV_FD, "MMSIM_SHIM_FD");
        if fd.is_null() {
            return None;
        }
        let sock: c_int = unsafe { CStr::from_ptr(fd) }.to_str().ok()?.parse().ok()?;
        let mount = unsafe { libc::getenv(c"MMSIM_SHIM_MOUNT".as_ptr()) };
        debug_assert_eq!(ENV_MOUNT, "MMSIM_SHIM_MOUNT");
        if mount.is_null() {
            die("mmsim-shim: MMSIM_SHIM_FD without MMSIM_SHIM_MOUNT\n");
        }
        let mount = unsafe { CStr::from_ptr(mount) }.to_bytes().to_vec();
        let mut shim = Shim {
            sock,
            mount,
            fds: BTreeMap::new(),
            dirs: BTreeMap::new(),
            pid: None,
            hostname: None,
            cwd: None,
            children: BTreeMap::new(),
            sems: BTreeMap::new(),
        };
        shim.hello();
        Some(shim)
    }

    fn hello(&mut self) {
        let real_pid = unsafe { libc::syscall(libc::SYS_getpid) } as u32;
        match self.ask(&Call::Hello { version: VERSION, real_pid }) {
            Reply::Done => {}
            Reply::Refused(why) => die(&format!("mmsim-shim: refused: {why}\n")),
            other => die(&format!("mmsim-shim: unexpected answer to hello: {other:?}\n")),
        }
    }

    /// `fork`: the world makes the child first, then the real fork runs, and the
    /// child's shim says hello on a socket of its own. Files open on the mount
    /// would be shared with the child in a real kernel; the world's child does not
    /// inherit them, so such a fork is refused.
    fn fork(&mut self) -> libc::pid_t {
        let open: Vec<String> = self.fds.values().filter(|m| m.world.is_some()).map(|m| m.path.clone()).collect();
        if !open.is_empty() {
            self.unsupported("fork", format!("with files open on the simulated mount ({})", open.join(", ")));
        }
        let (pid, socket) = match self.ask(&Call::Fork) {
            Reply::Forked { pid, socket } => (pid, socket),
            Reply::Errno(e) => return fail(e),
            other => self.bad_reply(&Call::Fork, other),
        };
        let real = unsafe { real!(fork: unsafe extern "C" fn() -> libc::pid_t)() };
        if real < 0 {
            die("mmsim-shim: the real fork failed after the world's\n");
        }
        if real > 0 {
            self.children.insert(pid, real);
            return pid as libc::pid_t;
        }
        // The child: the parent's socket is the parent's; this process gets its own.
        unsafe { libc::syscall(libc::SYS_close, self.sock) };
        self.sock = connect_abstract(&socket).unwrap_or_else(|| die("mmsim-shim: the child cannot reach the world\n"));
        self.pid = None;
        self.children.clear();
        self.hello();
        0
    }

    /// `waitpid` on a child from `fork`. A wait for any child (`pid` -1) is
    /// exactly a wait for the one child there is; with several it is refused.
    fn waitpid(&mut self, pid: libc::pid_t, status: *mut c_int, options: c_int, call: &str) -> libc::pid_t {
        let pid = match pid {
            -1 if self.children.len() == 1 => *self.children.keys().next().expect("one child") as libc::pid_t,
            -1 if self.children.is_empty() => return fail(libc::ECHILD),
            p if p <= 0 => self.unsupported(call, format!("pid {p} (any child, or a process group)")),
            p => p,
        };
        if options & !libc::WNOHANG != 0 {
            self.unsupported(call, format!("options {options:#x}"));
        }
        let Some(&real) = self.children.get(&(pid as u32)) else { return fail(libc::ECHILD) };
        let call = Call::Wait { pid: pid as u32, nohang: options & libc::WNOHANG != 0 };
        match self.ask(&call) {
            Reply::Exited(None) => 0,
            Reply::Exited(Some(raw)) => {
                // The real child is gone too, or going: reap it, so no zombie is left. One
                // the world killed may never have reached it (killed before its first call).
                if libc::WIFSIGNALED(raw) {
                    unsafe { libc::syscall(libc::SYS_kill, real, libc::SIGKILL) };
                }
                unsafe {
                    libc::syscall(
                        libc::SYS_wait4,
                        real,
                        std::ptr::null_mut::<c_int>(),
                        0,
                        std::ptr::null_mut::<c_void>(),
                    )
                };
                self.children.remove(&(pid as u32));
                if !status.is_null() {
                    unsafe { *status = raw };
                }
                pid
            }
            Reply::Errno(e) => fail(e),
            other => self.bad_reply(&call, other),
        }
    }

    fn pipe(&mut self, fds: *mut c_int, flags: c_int) -> c_int {
        if flags & !libc::O_CLOEXEC != 0 {
            self.unsupported("pipe2", format!("flags {flags:#o}"));
        }
        let (r, w) = match self.ask(&Call::Pipe) {
            Reply::Pipe(r, w) => (r, w),
            Reply::Errno(e) => return fail(e),
            other => self.bad_reply(&Call::Pipe, other),
        };
        let mut placeholders = [0; 2];
        for (i, (end, read)) in [(r, true), (w, false)].into_iter().enumerate() {
            let fd = placeholder(flags & libc::O_CLOEXEC);
            let flags = OpenFlags { read, write: !read, ..OpenFlags::default() };
            self.fds.insert(fd, Mapped { world: None, path: format!("pipe:[{end}]"), flags, pipe: Some(end) });
            placeholders[i] = fd;
        }
        unsafe { std::ptr::copy_nonoverlapping(placeholders.as_ptr(), fds, 2) };
        0
    }

    fn pipe_end(&self, fd: c_int) -> Option<u32> {
        self.fds.get(&fd).and_then(|m| m.pipe)
    }

    fn pipe_read(&mut self, end: u32, buf: *mut c_void, len: size_t) -> ssize_t {
        match self.data(Call::PipeRead { end, len: len as u64 }) {
            Ok(d) => {
                let n = d.len().min(len);
                unsafe { std::ptr::copy_nonoverlapping(d.as_ptr(), buf as *mut u8, n) };
                n as ssize_t
            }
            Err(e) => fail(e),
        }
    }

    fn pipe_write(&mut self, end: u32, data: Vec<u8>) -> ssize_t {
        match self.value(Call::PipeWrite { end, data }) {
            Ok(n) => n as ssize_t,
            Err(e) => fail(e),
        }
    }

    /// `poll` over descriptors of which at least one is a pipe end: the pipes
    /// wait in the world; files on the mount are always ready, as regular files
    /// are; a real descriptor cannot wait in lockstep and is refused.
    fn poll(&mut self, asked: &[(c_int, i16)], timeout_ns: Option<u64>, call: &str) -> Vec<i16> {
        let mut out = vec![0i16; asked.len()];
        let mut ends = Vec::new();
        let mut at = Vec::new();
        for (i, &(fd, events)) in asked.iter().enumerate() {
            if fd < 0 {
                continue;
            }
            match self.fds.get(&fd) {
                Some(Mapped { pipe: Some(end), .. }) => {
                    ends.push((*end, events as u16));
                    at.push(i);
                }
                Some(_) => out[i] = events & (libc::POLLIN | libc::POLLOUT),
                None => self.unsupported(call, format!("waiting on descriptor {fd}, which is not the world's")),
            }
        }
        let files_ready = out.iter().any(|&r| r != 0);
        let timeout_ns = if files_ready { Some(0) } else { timeout_ns };
        let c = Call::Poll { ends, timeout_ns };
        match self.ask(&c) {
            Reply::Ready(bits) if bits.len() == at.len() => {
                for (i, b) in at.into_iter().zip(bits) {
                    out[i] = b as i16;
                }
            }
            other => self.bad_reply(&c, other),
        }
        out
    }

    /// One call, one answer. A broken socket means the world is gone: exit at once.
    fn ask(&mut self, call: &Call) -> Reply {
        if !raw_write_all(self.sock, &shim_proto::encode(call)) {
            die("mmsim-shim: the world went away\n");
        }
        let mut len = [0u8; 4];
        if !raw_read_exact(self.sock, &mut len) {
            die("mmsim-shim: the world went away\n");
        }
        let len = u32::from_le_bytes(len);
        if len > FRAME_MAX {
            die("mmsim-shim: a frame longer than the protocol allows\n");
        }
        let mut body = vec![0u8; len as usize];
        if !raw_read_exact(self.sock, &mut body) {
            die("mmsim-shim: the world went away\n");
        }
        match shim_proto::decode::<Reply>(&body) {
            Ok(Reply::Refused(why)) => die(&format!("mmsim-shim: the world stopped this program: {why}\n")),
            Ok(reply) => reply,
            Err(e) => die(&format!("mmsim-shim: undecodable frame: {e}\n")),
        }
    }

    /// Stops the run: the world names the call, and the program exits.
    fn unsupported(&mut self, call: &str, detail: impl Into<String>) -> ! {
        self.ask(&Call::Unsupported { call: call.to_string(), detail: detail.into() });
        die(&format!("mmsim-shim: {call} is not supported on the simulated mount\n"))
    }

    /// `0`, or `-1` with `errno`.
    fn status(&mut self, call: Call) -> c_int {
        match self.ask(&call) {
            Reply::Done => 0,
            Reply::Errno(e) => fail(e),
            other => self.bad_reply(&call, other),
        }
    }

    fn value(&mut self, call: Call) -> Result<u64, c_int> {
        match self.ask(&call) {
            Reply::Value(v) => Ok(v),
            Reply::Fd(v) => Ok(v as u64),
            Reply::Errno(e) => Err(e),
            other => self.bad_reply(&call, other),
        }
    }

    fn data(&mut self, call: Call) -> Result<Vec<u8>, c_int> {
        match self.ask(&call) {
            Reply::Data(d) => Ok(d),
            Reply::Errno(e) => Err(e),
            other => self.bad_reply(&call, other),
        }
    }

    fn stat(&mut self, call: Call) -> Result<Stat, c_int> {
        match self.ask(&call) {
            Reply::Stat(s) => Ok(s),
            Reply::Errno(e) => Err(e),
            other => self.bad_reply(&call, other),
        }
    }

    fn time(&mut self, clock: Clock) -> (i64, u32) {
        let call = Call::Now { clock };
        match self.ask(&call) {
            Reply::Time(s, ns) => (s, ns),
            other => self.bad_reply(&call, other),
        }
    }

    fn bad_reply(&mut self, call: &Call, reply: Reply) -> ! {
        die(&format!("mmsim-shim: the world answered {call:?} with {reply:?}\n"))
    }

    /// Where `path` lies: on the mount (as a path relative to it), or not. A
    /// relative path is on the mount while the working directory is.
    fn resolve(&mut self, path: *const c_char) -> Option<String> {
        if path.is_null() {
            return None;
        }
        let bytes = unsafe { CStr::from_ptr(path) }.to_bytes();
        if bytes.first() == Some(&b'/') {
            return self.resolve_bytes(bytes);
        }
        let cwd = self.cwd.clone()?;
        let mut joined = self.mount.clone();
        joined.push(b'/');
        joined.extend_from_slice(cwd.as_bytes());
        joined.push(b'/');
        joined.extend_from_slice(bytes);
        self.resolve_bytes(&joined)
    }

    fn resolve_bytes(&mut self, bytes: &[u8]) -> Option<String> {
        let rest = bytes.strip_prefix(self.mount.as_slice())?;
        if !(rest.is_empty() || rest[0] == b'/') {
            return None;
        }
        let Ok(rest) = std::str::from_utf8(rest) else {
            self.unsupported("path", "a path on the simulated mount that is not UTF-8")
        };
        let mut parts: Vec<&str> = Vec::new();
        for part in rest.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        let shown = String::from_utf8_lossy(bytes).into_owned();
                        self.unsupported("path", format!("{shown:?} leaves the simulated mount"));
                    }
                }
                p => parts.push(p),
            }
        }
        Some(if parts.is_empty() { ".".to_string() } else { parts.join("/") })
    }

    /// A `*at` call's path: relative to a directory descriptor on the mount,
    /// to the working directory (`AT_FDCWD`), or absolute.
    fn resolve_at(&mut self, dirfd: c_int, path: *const c_char) -> Option<String> {
        if path.is_null() {
            return None;
        }
        let relative = unsafe { *path } as u8 != b'/';
        if !relative || dirfd == libc::AT_FDCWD {
            return self.resolve(path);
        }
        let dir = self.fds.get(&dirfd)?.path.clone();
        let mut joined = self.mount.clone();
        joined.push(b'/');
        joined.extend_from_slice(dir.as_bytes());
        joined.push(b'/');
        joined.extend_from_slice(unsafe { CStr::from_ptr(path) }.to_bytes());
        self.resolve_bytes(&joined)
    }

    fn world_fd(&mut self, fd: c_int, call: &str) -> Option<u32> {
        let mapped = self.fds.get(&fd)?;
        if mapped.pipe.is_some() {
            let path = mapped.path.clone();
            self.unsupported(call, format!("{call} on {path}"));
        }
        match mapped.world {
            Some(w) => Some(w),
            None => {
                let path = mapped.path.clone();
                self.unsupported(call, format!("{call} on the directory descriptor of {path:?}"))
            }
        }
    }

    fn open(&mut self, path: String, flags: c_int, call: &str) -> c_int {
        const IGNORED: c_int = libc::O_CLOEXEC
            | libc::O_NOCTTY
            | libc::O_LARGEFILE
            | libc::O_NOFOLLOW
            | libc::O_NOATIME
            | libc::O_NONBLOCK;
        const MODELLED: c_int = libc::O_ACCMODE
            | libc::O_CREAT
            | libc::O_EXCL
            | libc::O_TRUNC
            | libc::O_APPEND
            | libc::O_DIRECTORY
            | libc::O_PATH;
        let extra = flags & !(IGNORED | MODELLED);
        if extra != 0 {
            self.unsupported(call, format!("open flags {extra:#o} on {path:?}"));
        }
        let acc = flags & libc::O_ACCMODE;
        let f = OpenFlags {
            read: acc == libc::O_RDONLY || acc == libc::O_RDWR,
            write: acc == libc::O_WRONLY || acc == libc::O_RDWR,
            create: flags & libc::O_CREAT != 0,
            exclusive: flags & libc::O_EXCL != 0,
            truncate: flags & libc::O_TRUNC != 0,
            append: flags & libc::O_APPEND != 0,
            directory: flags & libc::O_DIRECTORY != 0,
        };
        // O_PATH (a handle for *at calls and fchdir, no I/O) and O_DIRECTORY open nothing in the world.
        let handle_only = flags & libc::O_PATH != 0;
        let world = if f.directory || handle_only {
            match self.stat(Call::Stat { path: path.clone() }) {
                Ok(s) if s.dir || !f.directory => None,
                Ok(_) => return fail(libc::ENOTDIR),
                Err(e) => return fail(e),
            }
        } else {
            match self.value(Call::Open { path: path.clone(), flags: f }) {
                Ok(w) => Some(w as u32),
                Err(e) => return fail(e),
            }
        };
        let cloexec = if flags & libc::O_CLOEXEC != 0 { libc::O_CLOEXEC } else { 0 };
        let fd = placeholder(cloexec);
        self.fds.insert(fd, Mapped { world, path, flags: f, pipe: None });
        fd
    }

    /// Closes the placeholder; the world's descriptor or pipe end closes with
    /// the last placeholder that shares it (`dup`), as a file description does.
    fn close(&mut self, fd: c_int) -> c_int {
        let Some(mapped) = self.fds.remove(&fd) else { return 0 };
        unsafe { libc::syscall(libc::SYS_close, fd) };
        match (mapped.world, mapped.pipe) {
            (Some(w), _) if !self.fds.values().any(|m| m.world == Some(w)) => self.status(Call::Close { fd: w }),
            (_, Some(end)) if !self.fds.values().any(|m| m.pipe == Some(end)) => self.status(Call::PipeClose { end }),
            _ => 0,
        }
    }

    /// `dup` family: a new placeholder that shares the world's descriptor (and so its position).
    /// `to` is dup2/dup3's target, or `F_DUPFD`'s lowest number.
    fn dup(&mut self, fd: c_int, to: Dup, cloexec: bool) -> c_int {
        let mapped = self.fds[&fd].clone();
        let new = match to {
            Dup::Lowest(min) => {
                let cmd = if cloexec { libc::F_DUPFD_CLOEXEC } else { libc::F_DUPFD };
                unsafe { libc::syscall(libc::SYS_fcntl, fd, cmd, min) }
            }
            Dup::Onto(target) if target == fd => return fd,
            Dup::Onto(target) => {
                if self.fds.contains_key(&target) {
                    self.close(target);
                }
                let flags = if cloexec { libc::O_CLOEXEC } else { 0 };
                unsafe { libc::syscall(libc::SYS_dup3, fd, target, flags) }
            }
        } as c_int;
        if new < 0 {
            return -1;
        }
        self.fds.insert(new, mapped);
        new
    }

    fn read(&mut self, fd: u32, buf: *mut c_void, len: size_t, offset: Option<u64>) -> ssize_t {
        let call = match offset {
            Some(offset) => Call::ReadAt { fd, len: len as u64, offset },
            None => Call::Read { fd, len: len as u64 },
        };
        match self.data(call) {
            Ok(d) => {
                let n = d.len().min(len);
                unsafe { std::ptr::copy_nonoverlapping(d.as_ptr(), buf as *mut u8, n) };
                n as ssize_t
            }
            Err(e) => fail(e),
        }
    }

    fn write(&mut self, fd: u32, data: Vec<u8>, offset: Option<u64>) -> ssize_t {
        let n = data.len() as ssize_t;
        let call = match offset {
            Some(offset) => Call::WriteAt { fd, data, offset },
            None => Call::Write { fd, data },
        };
        match self.status(call) {
            0 => n,
            _ => -1,
        }
    }

    fn opendir(&mut self, path: String) -> *mut libc::DIR {
        let names = match self.ask(&Call::ReadDir { path: path.clone() }) {
            Reply::Names(n) => n,
            Reply::Errno(e) => return fail_ptr(e),
            other => self.bad_reply(&Call::ReadDir { path }, other),
        };
        let mut all = vec![".".to_string(), "..".to_string()];
        all.extend(names);
        let dir = Box::new(Dir { names: all, next: 0, entry: unsafe { std::mem::zeroed() } });
        let ptr = &*dir as *const Dir as usize;
        self.dirs.insert(ptr, dir);
        ptr as *mut libc::DIR
    }
}

/// A real descriptor on `/dev/null` to stand for a world's: its number is the
/// program's own, and nothing else takes it while it is open.
fn placeholder(cloexec: c_int) -> c_int {
    let fd = unsafe { libc::syscall(libc::SYS_openat, libc::AT_FDCWD, c"/dev/null".as_ptr(), libc::O_RDWR | cloexec) }
        as c_int;
    if fd < 0 {
        die("mmsim-shim: cannot open /dev/null for a descriptor number\n");
    }
    fd
}

/// A stream socket connected to the abstract `AF_UNIX` name `name`.
fn connect_abstract(name: &str) -> Option<c_int> {
    let fd =
        unsafe { libc::syscall(libc::SYS_socket, libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) } as c_int;
    if fd < 0 {
        return None;
    }
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    if name.len() + 1 > addr.sun_path.len() {
        return None;
    }
    for (i, b) in name.bytes().enumerate() {
        addr.sun_path[i + 1] = b as c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + 1 + name.len();
    let r = unsafe { libc::syscall(libc::SYS_connect, fd, &addr as *const libc::sockaddr_un, len as libc::socklen_t) };
    (r == 0).then_some(fd)
}

/// Where a `dup` puts its new descriptor.
enum Dup {
    Lowest(c_int),
    Onto(c_int),
}

fn fail_ptr<T>(e: c_int) -> *mut T {
    set_errno(e);
    std::ptr::null_mut()
}

/// Runs `f` on the shim, or returns `None` when the program should go to the
/// real kernel: the library is inert, or the shim is itself running.
fn with_shim<R>(f: impl FnOnce(&mut Shim) -> Option<R>) -> Option<R> {
    if STATE.load(Ordering::Acquire) == 2 || BUSY.with(Cell::get) || threads::gone() {
        return None;
    }
    BUSY.with(|b| b.set(true));
    let mut guard: MutexGuard<'_, Option<Shim>> = SHIM.lock().unwrap_or_else(|p| p.into_inner());
    if STATE.load(Ordering::Acquire) == 0 {
        *guard = Shim::start();
        STATE.store(if guard.is_some() { 1 } else { 2 }, Ordering::Release);
    }
    let out = guard.as_mut().and_then(f);
    drop(guard);
    BUSY.with(|b| b.set(false));
    out
}

fn on_path<R>(path: *const c_char, f: impl FnOnce(&mut Shim, String) -> R) -> Option<R> {
    with_shim(|s| s.resolve(path).map(|p| f(s, p)))
}

fn on_path_at<R>(dirfd: c_int, path: *const c_char, f: impl FnOnce(&mut Shim, String) -> R) -> Option<R> {
    with_shim(|s| s.resolve_at(dirfd, path).map(|p| f(s, p)))
}

fn on_fd<R>(fd: c_int, f: impl FnOnce(&mut Shim) -> R) -> Option<R> {
    with_shim(|s| s.fds.contains_key(&fd).then(|| f(s)))
}

fn on_dir<R>(dir: *mut libc::DIR, f: impl FnOnce(&mut Shim) -> R) -> Option<R> {
    with_shim(|s| s.dirs.contains_key(&(dir as usize)).then(|| f(s)))
}

fn timespec(t: (i64, u32)) -> libc::timespec {
    libc::timespec { tv_sec: t.0, tv_nsec: t.1 as c_long }
}

fn fill_stat(s: &Stat, buf: *mut libc::stat64) {
    let mut st: libc::stat64 = unsafe { std::mem::zeroed() };
    st.st_dev = SIM_DEV;
    st.st_ino = s.ino;
    st.st_nlink = s.nlink;
    st.st_mode = if s.dir { libc::S_IFDIR | 0o755 } else { libc::S_IFREG | 0o644 };
    st.st_uid = unsafe { libc::getuid() };
    st.st_gid = unsafe { libc::getgid() };
    st.st_size = s.size as i64;
    st.st_blksize = 4096;
    st.st_blocks = s.size.div_ceil(512) as i64;
    st.st_atime = s.mtime.0;
    st.st_atime_nsec = s.mtime.1 as i64;
    st.st_mtime = s.mtime.0;
    st.st_mtime_nsec = s.mtime.1 as i64;
    st.st_ctime = s.ctime.0;
    st.st_ctime_nsec = s.ctime.1 as i64;
    unsafe { *buf = st };
}

fn stat_into(s: &mut Shim, call: Call, buf: *mut libc::stat64) -> c_int {
    match s.stat(call) {
        Ok(st) => {
            fill_stat(&st, buf);
            0
        }
        Err(e) => fail(e),
    }
}

fn fstat_into(s: &mut Shim, fd: c_int, buf: *mut libc::stat64) -> c_int {
    let mapped = &s.fds[&fd];
    if let Some(end) = mapped.pipe {
        let mut st: libc::stat64 = unsafe { std::mem::zeroed() };
        st.st_dev = SIM_DEV;
        st.st_ino = end as u64;
        st.st_mode = libc::S_IFIFO | 0o600;
        st.st_nlink = 1;
        st.st_blksize = 4096;
        unsafe { *buf = st };
        return 0;
    }
    let call = match mapped.world {
        Some(w) => Call::Fstat { fd: w },
        None => Call::Stat { path: mapped.path.clone() },
    };
    stat_into(s, call, buf)
}

// ---------------------------------------------------------------------------
// Opening and closing.

#[no_mangle]
pub unsafe extern "C" fn open(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    if let Some(r) = on_path(path, |s, p| s.open(p, flags, "open")) {
        return r;
    }
    real!(open: unsafe extern "C" fn(*const c_char, c_int, mode_t) -> c_int)(path, flags, mode)
}

#[no_mangle]
pub unsafe extern "C" fn open64(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    if let Some(r) = on_path(path, |s, p| s.open(p, flags, "open64")) {
        return r;
    }
    real!(open64: unsafe extern "C" fn(*const c_char, c_int, mode_t) -> c_int)(path, flags, mode)
}

#[no_mangle]
pub unsafe extern "C" fn __open_2(path: *const c_char, flags: c_int) -> c_int {
    if let Some(r) = on_path(path, |s, p| s.open(p, flags, "open")) {
        return r;
    }
    real!(__open_2: unsafe extern "C" fn(*const c_char, c_int) -> c_int)(path, flags)
}

#[no_mangle]
pub unsafe extern "C" fn __open64_2(path: *const c_char, flags: c_int) -> c_int {
    if let Some(r) = on_path(path, |s, p| s.open(p, flags, "open64")) {
        return r;
    }
    real!(__open64_2: unsafe extern "C" fn(*const c_char, c_int) -> c_int)(path, flags)
}

#[no_mangle]
pub unsafe extern "C" fn openat(dirfd: c_int, path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    if let Some(r) = on_path_at(dirfd, path, |s, p| s.open(p, flags, "openat")) {
        return r;
    }
    real!(openat: unsafe extern "C" fn(c_int, *const c_char, c_int, mode_t) -> c_int)(dirfd, path, flags, mode)
}

#[no_mangle]
pub unsafe extern "C" fn openat64(dirfd: c_int, path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    if let Some(r) = on_path_at(dirfd, path, |s, p| s.open(p, flags, "openat64")) {
        return r;
    }
    real!(openat64: unsafe extern "C" fn(c_int, *const c_char, c_int, mode_t) -> c_int)(dirfd, path, flags, mode)
}

#[no_mangle]
pub unsafe extern "C" fn __openat_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    if let Some(r) = on_path_at(dirfd, path, |s, p| s.open(p, flags, "openat")) {
        return r;
    }
    real!(__openat_2: unsafe extern "C" fn(c_int, *const c_char, c_int) -> c_int)(dirfd, path, flags)
}

#[no_mangle]
pub unsafe extern "C" fn __openat64_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    if let Some(r) = on_path_at(dirfd, path, |s, p| s.open(p, flags, "openat64")) {
        return r;
    }
    real!(__openat64_2: unsafe extern "C" fn(c_int, *const c_char, c_int) -> c_int)(dirfd, path, flags)
}

#[no_mangle]
pub unsafe extern "C" fn creat(path: *const c_char, mode: mode_t) -> c_int {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC;
    if let Some(r) = on_path(path, |s, p| s.open(p, flags, "creat")) {
        return r;
    }
    real!(creat: unsafe extern "C" fn(*const c_char, mode_t) -> c_int)(path, mode)
}

#[no_mangle]
pub unsafe extern "C" fn creat64(path: *const c_char, mode: mode_t) -> c_int {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC;
    if let Some(r) = on_path(path, |s, p| s.open(p, flags, "creat64")) {
        return r;
    }
    real!(creat64: unsafe extern "C" fn(*const c_char, mode_t) -> c_int)(path, mode)
}

#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    if let Some(r) = on_fd(fd, |s| s.close(fd)) {
        return r;
    }
    real!(close: unsafe extern "C" fn(c_int) -> c_int)(fd)
}

/// `close_range`/`closefrom` close the world's descriptors in the range as
/// `close` does, so a pipe's last writer is seen to go; the shim's own socket
/// cannot be closed under it.
unsafe fn close_span(first: c_uint, last: c_uint, cloexec: bool, call: &str) {
    with_shim(|s| {
        if (first..=last).contains(&(s.sock as c_uint)) && !cloexec {
            s.unsupported(call, format!("closing descriptors {first}..={last}, the world's socket among them"));
        }
        if !cloexec {
            let fds: Vec<c_int> =
                s.fds.keys().copied().filter(|&fd| (first..=last).contains(&(fd as c_uint))).collect();
            for fd in fds {
                s.close(fd);
            }
        }
        Some(())
    });
}

#[no_mangle]
pub unsafe extern "C" fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    close_span(first, last, flags & libc::CLOSE_RANGE_CLOEXEC as c_int != 0, "close_range");
    real!(close_range: unsafe extern "C" fn(c_uint, c_uint, c_int) -> c_int)(first, last, flags)
}

#[no_mangle]
pub unsafe extern "C" fn closefrom(low: c_int) {
    close_span(low.max(0) as c_uint, c_uint::MAX, false, "closefrom");
    real!(closefrom: unsafe extern "C" fn(c_int))(low)
}

/// stdio streams on the mount would do their I/O through glibc's internal
/// calls, which no preloaded library sees: refused, never silently real.
#[no_mangle]
pub unsafe extern "C" fn fopen(path: *const c_char, mode: *const c_char) -> *mut libc::FILE {
    if let Some(()) = on_path(path, |s, p| s.unsupported("fopen", format!("a stdio stream on {p:?}"))) {
        unreachable!()
    }
    real!(fopen: unsafe extern "C" fn(*const c_char, *const c_char) -> *mut libc::FILE)(path, mode)
}

#[no_mangle]
pub unsafe extern "C" fn fopen64(path: *const c_char, mode: *const c_char) -> *mut libc::FILE {
    if let Some(()) = on_path(path, |s, p| s.unsupported("fopen64", format!("a stdio stream on {p:?}"))) {
        unreachable!()
    }
    real!(fopen64: unsafe extern "C" fn(*const c_char, *const c_char) -> *mut libc::FILE)(path, mode)
}

#[no_mangle]
pub unsafe extern "C" fn fdopen(fd: c_int, mode: *const c_char) -> *mut libc::FILE {
    if let Some(()) = on_fd(fd, |s| s.unsupported("fdopen", "a stdio stream on a descriptor of the mount")) {
        unreachable!()
    }
    real!(fdopen: unsafe extern "C" fn(c_int, *const c_char) -> *mut libc::FILE)(fd, mode)
}

// ---------------------------------------------------------------------------
// Reading and writing.

#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, len: size_t) -> ssize_t {
    if scheduled() && with_shim(|s| s.pipe_end(fd)).is_some() {
        threads::let_others_run();
    }
    if let Some(r) = on_fd(fd, |s| match s.pipe_end(fd) {
        Some(end) => s.pipe_read(end, buf, len),
        None => match s.world_fd(fd, "read") {
            Some(w) => s.read(w, buf, len, None),
            None => fail(libc::EISDIR),
        },
    }) {
        return r;
    }
    real!(read: unsafe extern "C" fn(c_int, *mut c_void, size_t) -> ssize_t)(fd, buf, len)
}

#[no_mangle]
pub unsafe extern "C" fn pread(fd: c_int, buf: *mut c_void, len: size_t, offset: off_t) -> ssize_t {
    if let Some(r) = on_fd(fd, |s| match s.world_fd(fd, "pread") {
        Some(w) => s.read(w, buf, len, Some(offset as u64)),
        None => fail(libc::EISDIR),
    }) {
        return r;
    }
    real!(pread: unsafe extern "C" fn(c_int, *mut c_void, size_t, off_t) -> ssize_t)(fd, buf, len, offset)
}

#[no_mangle]
pub unsafe extern "C" fn pread64(fd: c_int, buf: *mut c_void, len: size_t, offset: off_t) -> ssize_t {
    if let Some(r) = on_fd(fd, |s| match s.world_fd(fd, "pread64") {
        Some(w) => s.read(w, buf, len, Some(offset as u64)),
        None => fail(libc::EISDIR),
    }) {
        return r;
    }
    real!(pread64: unsafe extern "C" fn(c_int, *mut c_void, size_t, off_t) -> ssize_t)(fd, buf, len, offset)
}

fn output(s: &mut Shim, fd: c_int, data: &[u8]) -> ssize_t {
    match s.ask(&Call::Output { fd: fd as u32, data: data.to_vec() }) {
        Reply::Done => data.len() as ssize_t,
        other => s.bad_reply(&Call::Output { fd: fd as u32, data: Vec::new() }, other),
    }
}

#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, len: size_t) -> ssize_t {
    let data = || std::slice::from_raw_parts(buf as *const u8, len);
    let r = with_shim(|s| {
        if let Some(end) = s.pipe_end(fd) {
            Some(s.pipe_write(end, data().to_vec()))
        } else if s.fds.contains_key(&fd) {
            Some(match s.world_fd(fd, "write") {
                Some(w) => s.write(w, data().to_vec(), None),
                None => fail(libc::EISDIR),
            })
        } else if fd == 1 || fd == 2 {
            Some(output(s, fd, data()))
        } else {
            None
        }
    });
    if let Some(r) = r {
        return r;
    }
    real!(write: unsafe extern "C" fn(c_int, *const c_void, size_t) -> ssize_t)(fd, buf, len)
}

#[no_mangle]
pub unsafe extern "C" fn pwrite(fd: c_int, buf: *const c_void, len: size_t, offset: off_t) -> ssize_t {
    if let Some(r) = on_fd(fd, |s| match s.world_fd(fd, "pwrite") {
        Some(w) => s.write(w, std::slice::from_raw_parts(buf as *const u8, len).to_vec(), Some(offset as u64)),
        None => fail(libc::EISDIR),
    }) {
        return r;
    }
    real!(pwrite: unsafe extern "C" fn(c_int, *const c_void, size_t, off_t) -> ssize_t)(fd, buf, len, offset)
}

#[no_mangle]
pub unsafe extern "C" fn pwrite64(fd: c_int, buf: *const c_void, len: size_t, offset: off_t) -> ssize_t {
    if let Some(r) = on_fd(fd, |s| match s.world_fd(fd, "pwrite64") {
        Some(w) => s.write(w, std::slice::from_raw_parts(buf as *const u8, len).to_vec(), Some(offset as u64)),
        None => fail(libc::EISDIR),
    }) {
        return r;
    }
    real!(pwrite64: unsafe extern "C" fn(c_int, *const c_void, size_t, off_t) -> ssize_t)(fd, buf, len, offset)
}

unsafe fn gather(iov: *const libc::iovec, count: c_int) -> Vec<u8> {
    let mut data = Vec::new();
    for i in 0..count.max(0) as usize {
        let v = &*iov.add(i);
        data.extend_from_slice(std::slice::from_raw_parts(v.iov_base as *const u8, v.iov_len));
    }
    data
}

#[no_mangle]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const libc::iovec, count: c_int) -> ssize_t {
    let r = with_shim(|s| {
        if let Some(end) = s.pipe_end(fd) {
            Some(s.pipe_write(end, gather(iov, count)))
        } else if s.fds.contains_key(&fd) {
            Some(match s.world_fd(fd, "writev") {
                Some(w) => s.write(w, gather(iov, count), None),
                None => fail(libc::EISDIR),
            })
        } else if fd == 1 || fd == 2 {
            Some(output(s, fd, &gather(iov, count)))
        } else {
            None
        }
    });
    if let Some(r) = r {
        return r;
    }
    real!(writev: unsafe extern "C" fn(c_int, *const libc::iovec, c_int) -> ssize_t)(fd, iov, count)
}

#[no_mangle]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const libc::iovec, count: c_int) -> ssize_t {
    if let Some(r) = on_fd(fd, |s| {
        let Some(w) = s.world_fd(fd, "readv") else { return fail(libc::EISDIR) };
        let total: usize = (0..count.max(0) as usize).map(|i| (*iov.add(i)).iov_len).sum();
        match s.data(Call::Read { fd: w, len: total as u64 }) {
            Ok(d) => {
                let mut at = 0;
                for i in 0..count.max(0) as usize {
                    let v = &*iov.add(i);
                    let n = v.iov_len.min(d.len() - at);
                    std::ptr::copy_nonoverlapping(d[at..].as_ptr(), v.iov_base as *mut u8, n);
                    at += n;
                }
                at as ssize_t
            }
            Err(e) => fail(e),
        }
    }) {
        return r;
    }
    real!(readv: unsafe extern "C" fn(c_int, *const libc::iovec, c_int) -> ssize_t)(fd, iov, count)
}

fn seek(s: &mut Shim, fd: c_int, offset: i64, whence: c_int) -> i64 {
    if s.pipe_end(fd).is_some() {
        return fail(libc::ESPIPE);
    }
    let Some(w) = s.world_fd(fd, "lseek") else { return 0 };
    let whence = match whence {
        libc::SEEK_SET => Whence::Set,
        libc::SEEK_CUR => Whence::Current,
        libc::SEEK_END => Whence::End,
        other => s.unsupported("lseek", format!("whence {other}")),
    };
    match s.value(Call::Seek { fd: w, offset, whence }) {
        Ok(v) => v as i64,
        Err(e) => fail(e),
    }
}

#[no_mangle]
pub unsafe extern "C" fn lseek(fd: c_int, offset: off_t, whence: c_int) -> off_t {
    if let Some(r) = on_fd(fd, |s| seek(s, fd, offset, whence)) {
        return r;
    }
    real!(lseek: unsafe extern "C" fn(c_int, off_t, c_int) -> off_t)(fd, offset, whence)
}

#[no_mangle]
pub unsafe extern "C" fn lseek64(fd: c_int, offset: off_t, whence: c_int) -> off_t {
    if let Some(r) = on_fd(fd, |s| seek(s, fd, offset, whence)) {
        return r;
    }
    real!(lseek64: unsafe extern "C" fn(c_int, off_t, c_int) -> off_t)(fd, offset, whence)
}

fn truncate_fd(s: &mut Shim, fd: c_int, len: off_t) -> c_int {
    match s.world_fd(fd, "ftruncate") {
        Some(w) if len >= 0 => s.status(Call::Ftruncate { fd: w, len: len as u64 }),
        Some(_) => fail(libc::EINVAL),
        None => fail(libc::EISDIR),
    }
}

#[no_mangle]
pub unsafe extern "C" fn ftruncate(fd: c_int, len: off_t) -> c_int {
    if let Some(r) = on_fd(fd, |s| truncate_fd(s, fd, len)) {
        return r;
    }
    real!(ftruncate: unsafe extern "C" fn(c_int, off_t) -> c_int)(fd, len)
}

#[no_mangle]
pub unsafe extern "C" fn ftruncate64(fd: c_int, len: off_t) -> c_int {
    if let Some(r) = on_fd(fd, |s| truncate_fd(s, fd, len)) {
        return r;
    }
    real!(ftruncate64: unsafe extern "C" fn(c_int, off_t) -> c_int)(fd, len)
}

fn sync_fd(s: &mut Shim, fd: c_int) -> c_int {
    if s.pipe_end(fd).is_some() {
        return fail(libc::EINVAL);
    }
    match s.fds[&fd].world {
        Some(w) => s.status(Call::Fsync { fd: w }),
        None => 0,
    }
}

#[no_mangle]
pub unsafe extern "C" fn fsync(fd: c_int) -> c_int {
    if let Some(r) = on_fd(fd, |s| sync_fd(s, fd)) {
        return r;
    }
    real!(fsync: unsafe extern "C" fn(c_int) -> c_int)(fd)
}

#[no_mangle]
pub unsafe extern "C" fn fdatasync(fd: c_int) -> c_int {
    if let Some(r) = on_fd(fd, |s| sync_fd(s, fd)) {
        return r;
    }
    real!(fdatasync: unsafe extern "C" fn(c_int) -> c_int)(fd)
}

// ---------------------------------------------------------------------------
// Metadata.

/// `stat` and its aliases: the world's metadata for a path on the mount. There
/// are no symbolic links in the world, so `lstat` is `stat`. The `__xstat`
/// forms (binaries built before glibc 2.33) take a version first; on x86_64
/// their struct is `stat64`'s.
macro_rules! stat_on_path {
    ($($name:ident),*) => {$(
        #[no_mangle]
        pub unsafe extern "C" fn $name(path: *const c_char, buf: *mut libc::stat64) -> c_int {
            if let Some(r) = on_path(path, |s, p| stat_into(s, Call::Stat { path: p }, buf)) {
                return r;
            }
            real!($name: unsafe extern "C" fn(*const c_char, *mut libc::stat64) -> c_int)(path, buf)
        }
    )*};
}

macro_rules! xstat_on_path {
    ($($name:ident),*) => {$(
        #[no_mangle]
        pub unsafe extern "C" fn $name(ver: c_int, path: *const c_char, buf: *mut libc::stat64) -> c_int {
            if let Some(r) = on_path(path, |s, p| stat_into(s, Call::Stat { path: p }, buf)) {
                return r;
            }
            real!($name: unsafe extern "C" fn(c_int, *const c_char, *mut libc::stat64) -> c_int)(ver, path, buf)
        }
    )*};
}

/// `fstat` and its aliases on a descriptor of the mount.
macro_rules! stat_on_fd {
    ($($name:ident),*) => {$(
        #[no_mangle]
        pub unsafe extern "C" fn $name(fd: c_int, buf: *mut libc::stat64) -> c_int {
            if let Some(r) = on_fd(fd, |s| fstat_into(s, fd, buf)) {
                return r;
            }
            real!($name: unsafe extern "C" fn(c_int, *mut libc::stat64) -> c_int)(fd, buf)
        }
    )*};
}

macro_rules! xstat_on_fd {
    ($($name:ident),*) => {$(
        #[no_mangle]
        pub unsafe extern "C" fn $name(ver: c_int, fd: c_int, buf: *mut libc::stat64) -> c_int {
            if let Some(r) = on_fd(fd, |s| fstat_into(s, fd, buf)) {
                return r;
            }
            real!($name: unsafe extern "C" fn(c_int, c_int, *mut libc::stat64) -> c_int)(ver, fd, buf)
        }
    )*};
}

stat_on_path!(stat, stat64, lstat, lstat64);
xstat_on_path!(__xstat, __xstat64, __lxstat, __lxstat64);
stat_on_fd!(fstat, fstat64);
xstat_on_fd!(__fxstat, __fxstat64);

#[no_mangle]
pub unsafe extern "C" fn __fxstatat(
    ver: c_int,
    dirfd: c_int,
    path: *const c_char,
    buf: *mut libc::stat64,
    flags: c_int,
) -> c_int {
    if let Some(r) = fstatat_shim(dirfd, path, buf, flags) {
        return r;
    }
    real!(__fxstatat: unsafe extern "C" fn(c_int, c_int, *const c_char, *mut libc::stat64, c_int) -> c_int)(
        ver, dirfd, path, buf, flags,
    )
}

unsafe fn fstatat_shim(dirfd: c_int, path: *const c_char, buf: *mut libc::stat64, flags: c_int) -> Option<c_int> {
    if flags & libc::AT_EMPTY_PATH != 0 && !path.is_null() && *path == 0 {
        return on_fd(dirfd, |s| fstat_into(s, dirfd, buf));
    }
    on_path_at(dirfd, path, |s, p| stat_into(s, Call::Stat { path: p }, buf))
}

#[no_mangle]
pub unsafe extern "C" fn fstatat(dirfd: c_int, path: *const c_char, buf: *mut libc::stat64, flags: c_int) -> c_int {
    if let Some(r) = fstatat_shim(dirfd, path, buf, flags) {
        return r;
    }
    real!(fstatat: unsafe extern "C" fn(c_int, *const c_char, *mut libc::stat64, c_int) -> c_int)(
        dirfd, path, buf, flags,
    )
}

#[no_mangle]
pub unsafe extern "C" fn fstatat64(dirfd: c_int, path: *const c_char, buf: *mut libc::stat64, flags: c_int) -> c_int {
    if let Some(r) = fstatat_shim(dirfd, path, buf, flags) {
        return r;
    }
    real!(fstatat64: unsafe extern "C" fn(c_int, *const c_char, *mut libc::stat64, c_int) -> c_int)(
        dirfd, path, buf, flags,
    )
}

#[no_mangle]
pub unsafe extern "C" fn statx(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mask: c_uint,
    buf: *mut libc::statx,
) -> c_int {
    let mut st: libc::stat64 = std::mem::zeroed();
    if let Some(r) = fstatat_shim(dirfd, path, &mut st, flags) {
        if r == 0 {
            let mut x: libc::statx = std::mem::zeroed();
            x.stx_mask = libc::STATX_BASIC_STATS;
            x.stx_blksize = st.st_blksize as u32;
            x.stx_nlink = st.st_nlink as u32;
            x.stx_uid = st.st_uid;
            x.stx_gid = st.st_gid;
            x.stx_mode = st.st_mode as u16;
            x.stx_ino = st.st_ino;
            x.stx_size = st.st_size as u64;
            x.stx_blocks = st.st_blocks as u64;
            let ts = |s: i64, ns: i64| {
                let mut t: libc::statx_timestamp = std::mem::zeroed();
                t.tv_sec = s;
                t.tv_nsec = ns as u32;
                t
            };
            x.stx_atime = ts(st.st_atime, st.st_atime_nsec);
            x.stx_mtime = ts(st.st_mtime, st.st_mtime_nsec);
            x.stx_ctime = ts(st.st_ctime, st.st_ctime_nsec);
            x.stx_dev_major = 0;
            x.stx_dev_minor = SIM_DEV as u32;
            *buf = x;
        }
        return r;
    }
    real!(statx: unsafe extern "C" fn(c_int, *const c_char, c_int, c_uint, *mut libc::statx) -> c_int)(
        dirfd, path, flags, mask, buf,
    )
}

fn access_check(s: &mut Shim, p: String) -> c_int {
    // Permissions are not modelled: a name that exists is accessible.
    match s.stat(Call::Stat { path: p }) {
        Ok(_) => 0,
        Err(e) => fail(e),
    }
}

#[no_mangle]
pub unsafe extern "C" fn access(path: *const c_char, mode: c_int) -> c_int {
    if let Some(r) = on_path(path, access_check) {
        return r;
    }
    real!(access: unsafe extern "C" fn(*const c_char, c_int) -> c_int)(path, mode)
}

#[no_mangle]
pub unsafe extern "C" fn faccessat(dirfd: c_int, path: *const c_char, mode: c_int, flags: c_int) -> c_int {
    if let Some(r) = on_path_at(dirfd, path, access_check) {
        return r;
    }
    real!(faccessat: unsafe extern "C" fn(c_int, *const c_char, c_int, c_int) -> c_int)(dirfd, path, mode, flags)
}

#[no_mangle]
pub unsafe extern "C" fn euidaccess(path: *const c_char, mode: c_int) -> c_int {
    if let Some(r) = on_path(path, access_check) {
        return r;
    }
    real!(euidaccess: unsafe extern "C" fn(*const c_char, c_int) -> c_int)(path, mode)
}

#[no_mangle]
pub unsafe extern "C" fn eaccess(path: *const c_char, mode: c_int) -> c_int {
    if let Some(r) = on_path(path, access_check) {
        return r;
    }
    real!(eaccess: unsafe extern "C" fn(*const c_char, c_int) -> c_int)(path, mode)
}

/// `readlink` on the mount: the world has no symbolic links, so a name that exists is not one.
#[no_mangle]
pub unsafe extern "C" fn readlink(path: *const c_char, buf: *mut c_char, len: size_t) -> ssize_t {
    if let Some(r) = on_path(path, |s, p| match s.stat(Call::Stat { path: p }) {
        Ok(_) => fail(libc::EINVAL),
        Err(e) => fail(e),
    }) {
        return r;
    }
    real!(readlink: unsafe extern "C" fn(*const c_char, *mut c_char, size_t) -> ssize_t)(path, buf, len)
}

// ---------------------------------------------------------------------------
// Names.

#[no_mangle]
pub unsafe extern "C" fn link(existing: *const c_char, new: *const c_char) -> c_int {
    if let Some(r) = with_shim(|s| match (s.resolve(existing), s.resolve(new)) {
        (Some(a), Some(b)) => Some(s.status(Call::Link { existing: a, new: b })),
        (None, None) => None,
        _ => Some(fail(libc::EXDEV)),
    }) {
        return r;
    }
    real!(link: unsafe extern "C" fn(*const c_char, *const c_char) -> c_int)(existing, new)
}

#[no_mangle]
pub unsafe extern "C" fn linkat(
    olddir: c_int,
    existing: *const c_char,
    newdir: c_int,
    new: *const c_char,
    flags: c_int,
) -> c_int {
    if let Some(r) = with_shim(|s| match (s.resolve_at(olddir, existing), s.resolve_at(newdir, new)) {
        (Some(a), Some(b)) => Some(s.status(Call::Link { existing: a, new: b })),
        (None, None) => None,
        _ => Some(fail(libc::EXDEV)),
    }) {
        return r;
    }
    real!(linkat: unsafe extern "C" fn(c_int, *const c_char, c_int, *const c_char, c_int) -> c_int)(
        olddir, existing, newdir, new, flags,
    )
}

#[no_mangle]
pub unsafe extern "C" fn unlink(path: *const c_char) -> c_int {
    if let Some(r) = on_path(path, |s, p| s.status(Call::Unlink { path: p })) {
        return r;
    }
    real!(unlink: unsafe extern "C" fn(*const c_char) -> c_int)(path)
}

#[no_mangle]
pub unsafe extern "C" fn unlinkat(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    if let Some(r) = on_path_at(dirfd, path, |s, p| {
        if flags & libc::AT_REMOVEDIR != 0 {
            s.status(Call::Rmdir { path: p })
        } else {
            s.status(Call::Unlink { path: p })
        }
    }) {
        return r;
    }
    real!(unlinkat: unsafe extern "C" fn(c_int, *const c_char, c_int) -> c_int)(dirfd, path, flags)
}

#[no_mangle]
pub unsafe extern "C" fn rename(from: *const c_char, to: *const c_char) -> c_int {
    if let Some(r) = with_shim(|s| match (s.resolve(from), s.resolve(to)) {
        (Some(a), Some(b)) => Some(s.status(Call::Rename { from: a, to: b })),
        (None, None) => None,
        _ => Some(fail(libc::EXDEV)),
    }) {
        return r;
    }
    real!(rename: unsafe extern "C" fn(*const c_char, *const c_char) -> c_int)(from, to)
}

unsafe fn renameat_shim(
    olddir: c_int,
    from: *const c_char,
    newdir: c_int,
    to: *const c_char,
    flags: c_uint,
) -> Option<c_int> {
    with_shim(|s| match (s.resolve_at(olddir, from), s.resolve_at(newdir, to)) {
        (Some(_), Some(_)) if flags != 0 => s.unsupported("renameat2", format!("flags {flags:#x}")),
        (Some(a), Some(b)) => Some(s.status(Call::Rename { from: a, to: b })),
        (None, None) => None,
        _ => Some(fail(libc::EXDEV)),
    })
}

#[no_mangle]
pub unsafe extern "C" fn renameat(olddir: c_int, from: *const c_char, newdir: c_int, to: *const c_char) -> c_int {
    if let Some(r) = renameat_shim(olddir, from, newdir, to, 0) {
        return r;
    }
    real!(renameat: unsafe extern "C" fn(c_int, *const c_char, c_int, *const c_char) -> c_int)(olddir, from, newdir, to)
}

#[no_mangle]
pub unsafe extern "C" fn renameat2(
    olddir: c_int,
    from: *const c_char,
    newdir: c_int,
    to: *const c_char,
    flags: c_uint,
) -> c_int {
    if let Some(r) = renameat_shim(olddir, from, newdir, to, flags) {
        return r;
    }
    real!(renameat2: unsafe extern "C" fn(c_int, *const c_char, c_int, *const c_char, c_uint) -> c_int)(
        olddir, from, newdir, to, flags,
    )
}

#[no_mangle]
pub unsafe extern "C" fn mkdir(path: *const c_char, mode: mode_t) -> c_int {
    if let Some(r) = on_path(path, |s, p| s.status(Call::Mkdir { path: p })) {
        return r;
    }
    real!(mkdir: unsafe extern "C" fn(*const c_char, mode_t) -> c_int)(path, mode)
}

#[no_mangle]
pub unsafe extern "C" fn mkdirat(dirfd: c_int, path: *const c_char, mode: mode_t) -> c_int {
    if let Some(r) = on_path_at(dirfd, path, |s, p| s.status(Call::Mkdir { path: p })) {
        return r;
    }
    real!(mkdirat: unsafe extern "C" fn(c_int, *const c_char, mode_t) -> c_int)(dirfd, path, mode)
}

#[no_mangle]
pub unsafe extern "C" fn rmdir(path: *const c_char) -> c_int {
    if let Some(r) = on_path(path, |s, p| s.status(Call::Rmdir { path: p })) {
        return r;
    }
    real!(rmdir: unsafe extern "C" fn(*const c_char) -> c_int)(path)
}

/// The world stores one time for both atime and mtime (utime's `(t, t)`): the modification time is sent.
fn set_times(s: &mut Shim, p: String, mtime: Option<(i64, u32)>) -> c_int {
    s.status(Call::SetTimes { path: p, time: mtime })
}

#[no_mangle]
pub unsafe extern "C" fn utime(path: *const c_char, times: *const libc::utimbuf) -> c_int {
    if let Some(r) = on_path(path, |s, p| set_times(s, p, (!times.is_null()).then(|| ((*times).modtime, 0)))) {
        return r;
    }
    real!(utime: unsafe extern "C" fn(*const c_char, *const libc::utimbuf) -> c_int)(path, times)
}

#[no_mangle]
pub unsafe extern "C" fn utimes(path: *const c_char, times: *const libc::timeval) -> c_int {
    if let Some(r) = on_path(path, |s, p| {
        let m = (!times.is_null()).then(|| {
            let tv = *times.add(1);
            (tv.tv_sec, (tv.tv_usec * 1000) as u32)
        });
        set_times(s, p, m)
    }) {
        return r;
    }
    real!(utimes: unsafe extern "C" fn(*const c_char, *const libc::timeval) -> c_int)(path, times)
}

/// `utimensat`/`futimens` times: both `UTIME_NOW` (or NULL) is the server's now; `UTIME_OMIT` is refused.
unsafe fn timespec_pair(s: &mut Shim, call: &str, times: *const libc::timespec) -> Option<(i64, u32)> {
    if times.is_null() {
        return None;
    }
    let (a, m) = (*times, *times.add(1));
    if a.tv_nsec == libc::UTIME_OMIT || m.tv_nsec == libc::UTIME_OMIT {
        s.unsupported(call, "UTIME_OMIT: the world sets both times at once");
    }
    if m.tv_nsec == libc::UTIME_NOW {
        return None;
    }
    Some((m.tv_sec, m.tv_nsec as u32))
}

#[no_mangle]
pub unsafe extern "C" fn utimensat(
    dirfd: c_int,
    path: *const c_char,
    times: *const libc::timespec,
    flags: c_int,
) -> c_int {
    if let Some(r) = on_path_at(dirfd, path, |s, p| {
        let m = timespec_pair(s, "utimensat", times);
        set_times(s, p, m)
    }) {
        return r;
    }
    real!(utimensat: unsafe extern "C" fn(c_int, *const c_char, *const libc::timespec, c_int) -> c_int)(
        dirfd, path, times, flags,
    )
}

#[no_mangle]
pub unsafe extern "C" fn futimens(fd: c_int, times: *const libc::timespec) -> c_int {
    if let Some(r) = on_fd(fd, |s| {
        let m = timespec_pair(s, "futimens", times);
        let p = s.fds[&fd].path.clone();
        set_times(s, p, m)
    }) {
        return r;
    }
    real!(futimens: unsafe extern "C" fn(c_int, *const libc::timespec) -> c_int)(fd, times)
}

// ---------------------------------------------------------------------------
// Directory streams.

#[no_mangle]
pub unsafe extern "C" fn opendir(path: *const c_char) -> *mut libc::DIR {
    if let Some(r) = on_path(path, |s, p| s.opendir(p)) {
        return r;
    }
    real!(opendir: unsafe extern "C" fn(*const c_char) -> *mut libc::DIR)(path)
}

#[no_mangle]
pub unsafe extern "C" fn fdopendir(fd: c_int) -> *mut libc::DIR {
    if let Some(r) = on_fd(fd, |s| {
        let path = s.fds[&fd].path.clone();
        let dir = s.opendir(path);
        if !dir.is_null() {
            s.close(fd);
        }
        dir
    }) {
        return r;
    }
    real!(fdopendir: unsafe extern "C" fn(c_int) -> *mut libc::DIR)(fd)
}

fn next_entry(s: &mut Shim, dir: *mut libc::DIR) -> *mut libc::dirent64 {
    let d = s.dirs.get_mut(&(dir as usize)).expect("checked by on_dir");
    let Some(name) = d.names.get(d.next) else { return std::ptr::null_mut() };
    d.next += 1;
    let mut e: libc::dirent64 = unsafe { std::mem::zeroed() };
    // The world's listing carries names only: callers that need the type stat the name.
    e.d_ino = d.next as u64;
    e.d_off = d.next as i64;
    e.d_reclen = std::mem::size_of::<libc::dirent64>() as u16;
    e.d_type = libc::DT_UNKNOWN;
    for (slot, b) in e.d_name.iter_mut().zip(name.bytes().take(255)) {
        *slot = b as c_char;
    }
    d.entry = e;
    &mut d.entry
}

#[no_mangle]
pub unsafe extern "C" fn readdir(dir: *mut libc::DIR) -> *mut libc::dirent64 {
    if let Some(r) = on_dir(dir, |s| next_entry(s, dir)) {
        return r;
    }
    real!(readdir: unsafe extern "C" fn(*mut libc::DIR) -> *mut libc::dirent64)(dir)
}

#[no_mangle]
pub unsafe extern "C" fn readdir64(dir: *mut libc::DIR) -> *mut libc::dirent64 {
    if let Some(r) = on_dir(dir, |s| next_entry(s, dir)) {
        return r;
    }
    real!(readdir64: unsafe extern "C" fn(*mut libc::DIR) -> *mut libc::dirent64)(dir)
}

#[no_mangle]
pub unsafe extern "C" fn closedir(dir: *mut libc::DIR) -> c_int {
    if let Some(r) = on_dir(dir, |s| {
        s.dirs.remove(&(dir as usize));
        0
    }) {
        return r;
    }
    real!(closedir: unsafe extern "C" fn(*mut libc::DIR) -> c_int)(dir)
}

#[no_mangle]
pub unsafe extern "C" fn rewinddir(dir: *mut libc::DIR) {
    if on_dir(dir, |s| s.dirs.get_mut(&(dir as usize)).expect("checked").next = 0).is_some() {
        return;
    }
    real!(rewinddir: unsafe extern "C" fn(*mut libc::DIR))(dir)
}

#[no_mangle]
pub unsafe extern "C" fn dirfd(dir: *mut libc::DIR) -> c_int {
    if let Some(()) = on_dir(dir, |s| s.unsupported("dirfd", "a descriptor for a directory stream on the mount")) {
        unreachable!()
    }
    real!(dirfd: unsafe extern "C" fn(*mut libc::DIR) -> c_int)(dir)
}

// ---------------------------------------------------------------------------
// Descriptor calls the world does not model: refused on the mount.

fn fcntl_mapped(s: &mut Shim, fd: c_int, cmd: c_int, arg: c_long) -> Option<c_int> {
    match cmd {
        // Close-on-exec lives on the placeholder, which is the program's own descriptor.
        libc::F_GETFD | libc::F_SETFD => None,
        libc::F_DUPFD => Some(s.dup(fd, Dup::Lowest(arg as c_int), false)),
        libc::F_DUPFD_CLOEXEC => Some(s.dup(fd, Dup::Lowest(arg as c_int), true)),
        libc::F_GETFL => {
            let f = s.fds[&fd].flags;
            let acc = match (f.read, f.write) {
                (true, true) => libc::O_RDWR,
                (false, true) => libc::O_WRONLY,
                _ => libc::O_RDONLY,
            };
            Some(acc | if f.append { libc::O_APPEND } else { 0 })
        }
        other => s.unsupported("fcntl", format!("command {other} on a descriptor of the mount")),
    }
}

#[no_mangle]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: c_long) -> c_int {
    if let Some(Some(r)) = on_fd(fd, |s| fcntl_mapped(s, fd, cmd, arg)) {
        return r;
    }
    real!(fcntl: unsafe extern "C" fn(c_int, c_int, c_long) -> c_int)(fd, cmd, arg)
}

/// glibc's `fcntl` for programs built with 64-bit file offsets (CPython among them).
#[no_mangle]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: c_long) -> c_int {
    if let Some(Some(r)) = on_fd(fd, |s| fcntl_mapped(s, fd, cmd, arg)) {
        return r;
    }
    real!(fcntl64: unsafe extern "C" fn(c_int, c_int, c_long) -> c_int)(fd, cmd, arg)
}

#[no_mangle]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    if let Some(r) = on_fd(fd, |s| s.dup(fd, Dup::Lowest(0), false)) {
        return r;
    }
    real!(dup: unsafe extern "C" fn(c_int) -> c_int)(fd)
}

/// `dup2`/`dup3` from a descriptor of the mount, or onto one (which closes it first).
unsafe fn dup_onto(fd: c_int, new: c_int, cloexec: bool) -> Option<c_int> {
    with_shim(|s| {
        if s.fds.contains_key(&fd) {
            Some(s.dup(fd, Dup::Onto(new), cloexec))
        } else {
            if s.fds.contains_key(&new) && fd != new {
                s.close(new);
            }
            None
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn dup2(fd: c_int, new: c_int) -> c_int {
    if let Some(r) = dup_onto(fd, new, false) {
        return r;
    }
    real!(dup2: unsafe extern "C" fn(c_int, c_int) -> c_int)(fd, new)
}

#[no_mangle]
pub unsafe extern "C" fn dup3(fd: c_int, new: c_int, flags: c_int) -> c_int {
    if let Some(r) = dup_onto(fd, new, flags & libc::O_CLOEXEC != 0) {
        return r;
    }
    real!(dup3: unsafe extern "C" fn(c_int, c_int, c_int) -> c_int)(fd, new, flags)
}

#[no_mangle]
pub unsafe extern "C" fn ioctl(fd: c_int, request: libc::c_ulong, arg: *mut c_void) -> c_int {
    if let Some(Some(r)) = on_fd(fd, |s| match request {
        // isatty(): a file on the mount is not a terminal.
        libc::TCGETS => Some(fail(libc::ENOTTY)),
        libc::FIOCLEX | libc::FIONCLEX => None,
        other => s.unsupported("ioctl", format!("request {other:#x} on a descriptor of the mount")),
    }) {
        return r;
    }
    real!(ioctl: unsafe extern "C" fn(c_int, libc::c_ulong, *mut c_void) -> c_int)(fd, request, arg)
}

macro_rules! refused_on_fd {
    ($name:ident ( $fd:ident : c_int $(, $arg:ident : $ty:ty)* ) -> $ret:ty) => {
        #[no_mangle]
        pub unsafe extern "C" fn $name($fd: c_int $(, $arg: $ty)*) -> $ret {
            if let Some(()) = on_fd($fd, |s| {
                s.unsupported(stringify!($name), "on a descriptor of the mount")
            }) {
                unreachable!()
            }
            real!($name: unsafe extern "C" fn(c_int $(, $ty)*) -> $ret)($fd $(, $arg)*)
        }
    };
}

refused_on_fd!(flock(fd: c_int, op: c_int) -> c_int);
refused_on_fd!(lockf(fd: c_int, cmd: c_int, len: off_t) -> c_int);
refused_on_fd!(lockf64(fd: c_int, cmd: c_int, len: off_t) -> c_int);
refused_on_fd!(fstatfs64(fd: c_int, buf: *mut libc::statfs) -> c_int);
refused_on_fd!(fstatvfs64(fd: c_int, buf: *mut libc::statvfs) -> c_int);
refused_on_fd!(posix_fallocate64(fd: c_int, offset: off_t, len: off_t) -> c_int);
refused_on_fd!(fallocate(fd: c_int, mode: c_int, offset: off_t, len: off_t) -> c_int);
refused_on_fd!(preadv(fd: c_int, iov: *const libc::iovec, count: c_int, offset: off_t) -> ssize_t);
refused_on_fd!(preadv64(fd: c_int, iov: *const libc::iovec, count: c_int, offset: off_t) -> ssize_t);
refused_on_fd!(pwritev(fd: c_int, iov: *const libc::iovec, count: c_int, offset: off_t) -> ssize_t);
refused_on_fd!(pwritev64(fd: c_int, iov: *const libc::iovec, count: c_int, offset: off_t) -> ssize_t);
refused_on_fd!(preadv2(fd: c_int, iov: *const libc::iovec, count: c_int, offset: off_t, flags: c_int) -> ssize_t);
refused_on_fd!(preadv64v2(fd: c_int, iov: *const libc::iovec, count: c_int, offset: off_t, flags: c_int) -> ssize_t);
refused_on_fd!(pwritev2(fd: c_int, iov: *const libc::iovec, count: c_int, offset: off_t, flags: c_int) -> ssize_t);
refused_on_fd!(pwritev64v2(fd: c_int, iov: *const libc::iovec, count: c_int, offset: off_t, flags: c_int) -> ssize_t);
refused_on_fd!(posix_fadvise(fd: c_int, offset: off_t, len: off_t, advice: c_int) -> c_int);
refused_on_fd!(posix_fadvise64(fd: c_int, offset: off_t, len: off_t, advice: c_int) -> c_int);
refused_on_fd!(futimes(fd: c_int, times: *const libc::timeval) -> c_int);
refused_on_fd!(fgetxattr(fd: c_int, name: *const c_char, value: *mut c_void, size: size_t) -> ssize_t);
refused_on_fd!(fsetxattr(fd: c_int, name: *const c_char, value: *const c_void, size: size_t, flags: c_int) -> c_int);
refused_on_fd!(flistxattr(fd: c_int, list: *mut c_char, size: size_t) -> ssize_t);
refused_on_fd!(copy_file_range(input: c_int, in_off: *mut off_t, out: c_int, out_off: *mut off_t, len: size_t, flags: c_uint) -> ssize_t);
refused_on_fd!(splice(input: c_int, in_off: *mut off_t, out: c_int, out_off: *mut off_t, len: size_t, flags: c_uint) -> ssize_t);
refused_on_fd!(sendfile(out: c_int, input: c_int, offset: *mut off_t, count: size_t) -> ssize_t);
refused_on_fd!(sendfile64(out: c_int, input: c_int, offset: *mut off_t, count: size_t) -> ssize_t);
refused_on_fd!(fchmod(fd: c_int, mode: mode_t) -> c_int);
refused_on_fd!(fchown(fd: c_int, uid: libc::uid_t, gid: libc::gid_t) -> c_int);
refused_on_fd!(fstatfs(fd: c_int, buf: *mut libc::statfs) -> c_int);
refused_on_fd!(fstatvfs(fd: c_int, buf: *mut libc::statvfs) -> c_int);
refused_on_fd!(posix_fallocate(fd: c_int, offset: off_t, len: off_t) -> c_int);

/// `mmap64` is glibc's `mmap` for programs built with 64-bit file offsets.
#[no_mangle]
pub unsafe extern "C" fn mmap64(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    offset: off_t,
) -> *mut c_void {
    if let Some(()) = on_fd(fd, |s| s.unsupported("mmap64", "a mapping of a file on the mount")) {
        unreachable!()
    }
    real!(mmap64: unsafe extern "C" fn(*mut c_void, size_t, c_int, c_int, c_int, off_t) -> *mut c_void)(
        addr, len, prot, flags, fd, offset,
    )
}

#[no_mangle]
pub unsafe extern "C" fn mmap(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    offset: off_t,
) -> *mut c_void {
    if let Some(()) = on_fd(fd, |s| s.unsupported("mmap", "a mapping of a file on the mount")) {
        unreachable!()
    }
    real!(mmap: unsafe extern "C" fn(*mut c_void, size_t, c_int, c_int, c_int, off_t) -> *mut c_void)(
        addr, len, prot, flags, fd, offset,
    )
}

macro_rules! refused_on_path {
    ($name:ident ( $path:ident : *const c_char $(, $arg:ident : $ty:ty)* ) -> $ret:ty) => {
        #[no_mangle]
        pub unsafe extern "C" fn $name($path: *const c_char $(, $arg: $ty)*) -> $ret {
            if let Some(()) = on_path($path, |s, p| s.unsupported(stringify!($name), format!("on {p:?}"))) {
                unreachable!()
            }
            real!($name: unsafe extern "C" fn(*const c_char $(, $ty)*) -> $ret)($path $(, $arg)*)
        }
    };
}

refused_on_path!(chmod(path: *const c_char, mode: mode_t) -> c_int);
refused_on_path!(chown(path: *const c_char, uid: libc::uid_t, gid: libc::gid_t) -> c_int);
refused_on_path!(lchown(path: *const c_char, uid: libc::uid_t, gid: libc::gid_t) -> c_int);
refused_on_path!(truncate(path: *const c_char, len: off_t) -> c_int);
refused_on_path!(truncate64(path: *const c_char, len: off_t) -> c_int);
refused_on_path!(statfs(path: *const c_char, buf: *mut libc::statfs) -> c_int);
refused_on_path!(statvfs(path: *const c_char, buf: *mut libc::statvfs) -> c_int);
refused_on_path!(lutimes(path: *const c_char, times: *const libc::timeval) -> c_int);
refused_on_path!(getxattr(path: *const c_char, name: *const c_char, value: *mut c_void, size: size_t) -> ssize_t);
refused_on_path!(lgetxattr(path: *const c_char, name: *const c_char, value: *mut c_void, size: size_t) -> ssize_t);
refused_on_path!(setxattr(path: *const c_char, name: *const c_char, value: *const c_void, size: size_t, flags: c_int) -> c_int);
refused_on_path!(lsetxattr(path: *const c_char, name: *const c_char, value: *const c_void, size: size_t, flags: c_int) -> c_int);
refused_on_path!(listxattr(path: *const c_char, list: *mut c_char, size: size_t) -> ssize_t);
refused_on_path!(llistxattr(path: *const c_char, list: *mut c_char, size: size_t) -> ssize_t);
refused_on_path!(statfs64(path: *const c_char, buf: *mut libc::statfs) -> c_int);
refused_on_path!(statvfs64(path: *const c_char, buf: *mut libc::statvfs) -> c_int);
refused_on_path!(mknod(path: *const c_char, mode: mode_t, dev: libc::dev_t) -> c_int);
refused_on_path!(mkfifo(path: *const c_char, mode: mode_t) -> c_int);
refused_on_path!(realpath(path: *const c_char, out: *mut c_char) -> *mut c_char);
refused_on_path!(freopen(path: *const c_char, mode: *const c_char, stream: *mut libc::FILE) -> *mut libc::FILE);

/// `chdir` onto the mount moves only the shim's own working directory: the
/// real process stays where it was, and relative paths resolve on the mount.
#[no_mangle]
pub unsafe extern "C" fn chdir(path: *const c_char) -> c_int {
    if let Some(r) = on_path(path, |s, p| match s.stat(Call::Stat { path: p.clone() }) {
        Ok(st) if st.dir => {
            s.cwd = Some(p);
            0
        }
        Ok(_) => fail(libc::ENOTDIR),
        Err(e) => fail(e),
    }) {
        return r;
    }
    let r = real!(chdir: unsafe extern "C" fn(*const c_char) -> c_int)(path);
    if r == 0 {
        with_shim(|s| s.cwd.take().map(drop));
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn fchdir(fd: c_int) -> c_int {
    if let Some(r) = on_fd(fd, |s| {
        let p = s.fds[&fd].path.clone();
        match s.stat(Call::Stat { path: p.clone() }) {
            Ok(st) if st.dir => {
                s.cwd = Some(p);
                0
            }
            Ok(_) => fail(libc::ENOTDIR),
            Err(e) => fail(e),
        }
    }) {
        return r;
    }
    let r = real!(fchdir: unsafe extern "C" fn(c_int) -> c_int)(fd);
    if r == 0 {
        with_shim(|s| s.cwd.take().map(drop));
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn getcwd(buf: *mut c_char, len: size_t) -> *mut c_char {
    if let Some(r) = with_shim(|s| {
        let cwd = s.cwd.clone()?;
        let mut full = s.mount.clone();
        if cwd != "." {
            full.push(b'/');
            full.extend_from_slice(cwd.as_bytes());
        }
        if buf.is_null() {
            return Some(fail_ptr(libc::EINVAL));
        }
        if full.len() + 1 > len {
            return Some(fail_ptr(libc::ERANGE));
        }
        std::ptr::copy_nonoverlapping(full.as_ptr(), buf as *mut u8, full.len());
        *buf.add(full.len()) = 0;
        Some(buf)
    }) {
        return r;
    }
    real!(getcwd: unsafe extern "C" fn(*mut c_char, size_t) -> *mut c_char)(buf, len)
}

/// The `*at` calls the world does not model, refused for paths on the mount.
macro_rules! refused_on_path_at {
    ($name:ident ( $dirfd:ident : c_int, $path:ident : *const c_char $(, $arg:ident : $ty:ty)* ) -> $ret:ty) => {
        #[no_mangle]
        pub unsafe extern "C" fn $name($dirfd: c_int, $path: *const c_char $(, $arg: $ty)*) -> $ret {
            if let Some(()) = on_path_at($dirfd, $path, |s, p| s.unsupported(stringify!($name), format!("on {p:?}"))) {
                unreachable!()
            }
            real!($name: unsafe extern "C" fn(c_int, *const c_char $(, $ty)*) -> $ret)($dirfd, $path $(, $arg)*)
        }
    };
}

refused_on_path_at!(fchmodat(dirfd: c_int, path: *const c_char, mode: mode_t, flags: c_int) -> c_int);
refused_on_path_at!(fchownat(dirfd: c_int, path: *const c_char, uid: libc::uid_t, gid: libc::gid_t, flags: c_int) -> c_int);
refused_on_path_at!(mknodat(dirfd: c_int, path: *const c_char, mode: mode_t, dev: libc::dev_t) -> c_int);
refused_on_path_at!(mkfifoat(dirfd: c_int, path: *const c_char, mode: mode_t) -> c_int);
refused_on_path_at!(futimesat(dirfd: c_int, path: *const c_char, times: *const libc::timeval) -> c_int);

/// `readlinkat` on the mount: as `readlink`, a name that exists is no symbolic link.
#[no_mangle]
pub unsafe extern "C" fn readlinkat(dirfd: c_int, path: *const c_char, buf: *mut c_char, len: size_t) -> ssize_t {
    if let Some(r) = on_path_at(dirfd, path, |s, p| match s.stat(Call::Stat { path: p }) {
        Ok(_) => fail(libc::EINVAL),
        Err(e) => fail(e),
    }) {
        return r;
    }
    real!(readlinkat: unsafe extern "C" fn(c_int, *const c_char, *mut c_char, size_t) -> ssize_t)(dirfd, path, buf, len)
}

#[no_mangle]
pub unsafe extern "C" fn symlinkat(target: *const c_char, dirfd: c_int, path: *const c_char) -> c_int {
    if let Some(()) = on_path_at(dirfd, path, |s, p| s.unsupported("symlinkat", format!("a symbolic link at {p:?}"))) {
        unreachable!()
    }
    real!(symlinkat: unsafe extern "C" fn(*const c_char, c_int, *const c_char) -> c_int)(target, dirfd, path)
}

#[no_mangle]
pub unsafe extern "C" fn symlink(target: *const c_char, path: *const c_char) -> c_int {
    if let Some(()) = on_path(path, |s, p| s.unsupported("symlink", format!("a symbolic link at {p:?}"))) {
        unreachable!()
    }
    real!(symlink: unsafe extern "C" fn(*const c_char, *const c_char) -> c_int)(target, path)
}

// ---------------------------------------------------------------------------
// Clocks and sleeps: always the world's.

#[no_mangle]
pub unsafe extern "C" fn clock_gettime(clock: libc::clockid_t, ts: *mut libc::timespec) -> c_int {
    if let Some(r) = with_shim(|s| {
        let which = match clock {
            libc::CLOCK_REALTIME | libc::CLOCK_REALTIME_COARSE | libc::CLOCK_TAI => Clock::Wall,
            libc::CLOCK_MONOTONIC
            | libc::CLOCK_MONOTONIC_RAW
            | libc::CLOCK_MONOTONIC_COARSE
            | libc::CLOCK_BOOTTIME
            | libc::CLOCK_PROCESS_CPUTIME_ID
            | libc::CLOCK_THREAD_CPUTIME_ID => Clock::Monotonic,
            other => s.unsupported("clock_gettime", format!("clock {other}")),
        };
        *ts = timespec(s.time(which));
        Some(0)
    }) {
        return r;
    }
    real!(clock_gettime: unsafe extern "C" fn(libc::clockid_t, *mut libc::timespec) -> c_int)(clock, ts)
}

#[no_mangle]
pub unsafe extern "C" fn gettimeofday(tv: *mut libc::timeval, tz: *mut c_void) -> c_int {
    if let Some(r) = with_shim(|s| {
        let (sec, ns) = s.time(Clock::Wall);
        if !tv.is_null() {
            *tv = libc::timeval { tv_sec: sec, tv_usec: (ns / 1000) as libc::suseconds_t };
        }
        Some(0)
    }) {
        return r;
    }
    real!(gettimeofday: unsafe extern "C" fn(*mut libc::timeval, *mut c_void) -> c_int)(tv, tz)
}

#[no_mangle]
pub unsafe extern "C" fn time(out: *mut libc::time_t) -> libc::time_t {
    if let Some(t) = with_shim(|s| Some(s.time(Clock::Wall).0)) {
        if !out.is_null() {
            *out = t;
        }
        return t;
    }
    real!(time: unsafe extern "C" fn(*mut libc::time_t) -> libc::time_t)(out)
}

fn sleep_ns(s: &mut Shim, ns: u64) -> c_int {
    s.status(Call::Sleep { ns })
}

/// A sleep once the program has threads: a block with a deadline, so the others run meanwhile.
fn threaded_sleep(ns: u64) -> bool {
    if !scheduled() {
        return false;
    }
    threads::sleep(ns);
    true
}

fn ns_of(ts: &libc::timespec) -> u64 {
    (ts.tv_sec.max(0) as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec.max(0) as u64)
}

#[no_mangle]
pub unsafe extern "C" fn nanosleep(req: *const libc::timespec, rem: *mut libc::timespec) -> c_int {
    if threaded_sleep(ns_of(&*req)) {
        if !rem.is_null() {
            *rem = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        }
        return 0;
    }
    if let Some(r) = with_shim(|s| {
        if !rem.is_null() {
            *rem = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        }
        Some(sleep_ns(s, ns_of(&*req)))
    }) {
        return r;
    }
    real!(nanosleep: unsafe extern "C" fn(*const libc::timespec, *mut libc::timespec) -> c_int)(req, rem)
}

#[no_mangle]
pub unsafe extern "C" fn clock_nanosleep(
    clock: libc::clockid_t,
    flags: c_int,
    req: *const libc::timespec,
    rem: *mut libc::timespec,
) -> c_int {
    if scheduled() {
        if flags & libc::TIMER_ABSTIME != 0 {
            threads::block(threads::Obj::Sleep, Some(threads::deadline_of(clock, &*req)));
        } else {
            threads::sleep(ns_of(&*req));
        }
        return 0;
    }
    if let Some(r) = with_shim(|s| {
        let mut ns = ns_of(&*req);
        if flags & libc::TIMER_ABSTIME != 0 {
            let which = if clock == libc::CLOCK_REALTIME { Clock::Wall } else { Clock::Monotonic };
            let now = s.time(which);
            ns = ns.saturating_sub(ns_of(&timespec(now)));
        }
        if !rem.is_null() {
            *rem = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        }
        // clock_nanosleep returns the error number, not -1.
        Some(if sleep_ns(s, ns) == 0 { 0 } else { errno() })
    }) {
        return r;
    }
    real!(clock_nanosleep: unsafe extern "C" fn(libc::clockid_t, c_int, *const libc::timespec, *mut libc::timespec) -> c_int)(
        clock, flags, req, rem,
    )
}

#[no_mangle]
pub unsafe extern "C" fn usleep(us: libc::useconds_t) -> c_int {
    if threaded_sleep(us as u64 * 1000) {
        return 0;
    }
    if let Some(r) = with_shim(|s| Some(sleep_ns(s, us as u64 * 1000))) {
        return r;
    }
    real!(usleep: unsafe extern "C" fn(libc::useconds_t) -> c_int)(us)
}

#[no_mangle]
pub unsafe extern "C" fn sleep(secs: c_uint) -> c_uint {
    if threaded_sleep(secs as u64 * 1_000_000_000) {
        return 0;
    }
    if with_shim(|s| Some(sleep_ns(s, secs as u64 * 1_000_000_000))).is_some() {
        return 0;
    }
    real!(sleep: unsafe extern "C" fn(c_uint) -> c_uint)(secs)
}

/// `select` with no descriptors is a sleep; on pipe ends (and files of the
/// mount) it waits in the world; on a real descriptor it is refused.
#[no_mangle]
pub unsafe extern "C" fn select(
    nfds: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    timeout: *mut libc::timeval,
) -> c_int {
    if scheduled() {
        if nfds <= 0 && !timeout.is_null() {
            threaded_sleep((*timeout).tv_sec.max(0) as u64 * 1_000_000_000 + (*timeout).tv_usec.max(0) as u64 * 1000);
            return 0;
        }
        threads::let_others_run();
    }
    if let Some(res) = with_shim(|s| {
        let timeout_ns = (!timeout.is_null())
            .then(|| (*timeout).tv_sec.max(0) as u64 * 1_000_000_000 + (*timeout).tv_usec.max(0) as u64 * 1000);
        let mut asked: Vec<(c_int, i16)> = Vec::new();
        for fd in 0..nfds.clamp(0, libc::FD_SETSIZE as c_int) {
            let mut events = 0;
            if !r.is_null() && libc::FD_ISSET(fd, r) {
                events |= libc::POLLIN;
            }
            if !w.is_null() && libc::FD_ISSET(fd, w) {
                events |= libc::POLLOUT;
            }
            if !e.is_null() && libc::FD_ISSET(fd, e) {
                events |= libc::POLLPRI;
            }
            if events != 0 {
                asked.push((fd, events));
            }
        }
        if asked.is_empty() {
            let Some(ns) = timeout_ns else { s.unsupported("select", "a sleep without end") };
            return Some(sleep_ns(s, ns));
        }
        let ready = s.poll(&asked, timeout_ns, "select");
        for set in [r, w, e] {
            if !set.is_null() {
                libc::FD_ZERO(set);
            }
        }
        let mut count = 0;
        for (&(fd, events), bits) in asked.iter().zip(ready) {
            // As the kernel's select maps poll bits: only into the sets the fd was asked in.
            let asked_read = events & libc::POLLIN != 0;
            let asked_write = events & libc::POLLOUT != 0;
            let readable = asked_read && bits & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0;
            let writable = asked_write && bits & (libc::POLLOUT | libc::POLLERR) != 0;
            for (set, on) in [(r, readable), (w, writable)] {
                if on {
                    libc::FD_SET(fd, set);
                    count += 1;
                }
            }
        }
        Some(count)
    }) {
        return res;
    }
    real!(select: unsafe extern "C" fn(c_int, *mut libc::fd_set, *mut libc::fd_set, *mut libc::fd_set, *mut libc::timeval) -> c_int)(
        nfds, r, w, e, timeout,
    )
}

/// `poll` with no descriptors is a sleep; on pipe ends (and files of the mount)
/// it waits in the world; on a real descriptor it is refused.
#[no_mangle]
pub unsafe extern "C" fn poll(fds: *mut libc::pollfd, nfds: libc::nfds_t, timeout_ms: c_int) -> c_int {
    if scheduled() {
        if nfds == 0 && timeout_ms >= 0 {
            threaded_sleep(timeout_ms as u64 * 1_000_000);
            return 0;
        }
        threads::let_others_run();
    }
    if let Some(res) = with_shim(|s| {
        let timeout_ns = (timeout_ms >= 0).then(|| timeout_ms as u64 * 1_000_000);
        if nfds == 0 {
            let Some(ns) = timeout_ns else { s.unsupported("poll", "a sleep without end") };
            return Some(sleep_ns(s, ns));
        }
        let entries = std::slice::from_raw_parts_mut(fds, nfds as usize);
        let asked: Vec<(c_int, i16)> = entries.iter().map(|p| (p.fd, p.events)).collect();
        let ready = s.poll(&asked, timeout_ns, "poll");
        let mut count = 0;
        for (p, bits) in entries.iter_mut().zip(ready) {
            p.revents = bits;
            count += (bits != 0) as c_int;
        }
        Some(count)
    }) {
        return res;
    }
    real!(poll: unsafe extern "C" fn(*mut libc::pollfd, libc::nfds_t, c_int) -> c_int)(fds, nfds, timeout_ms)
}

// ---------------------------------------------------------------------------
// Named semaphores: the host's, in the world. A process-shared semaphore in
// real memory would block the real kernel, where the world cannot see it.

/// The world's semaphore that `sem` names, if it is one `sem_open` gave out.
fn world_sem(s: &Shim, sem: *mut libc::sem_t) -> Option<u32> {
    s.sems.get(&(sem as usize)).copied()
}

#[no_mangle]
pub unsafe extern "C" fn sem_open(name: *const c_char, flags: c_int, mode: mode_t, value: c_uint) -> *mut libc::sem_t {
    if let Some(r) = with_shim(|s| {
        let name = CStr::from_ptr(name).to_string_lossy().into_owned();
        let create = flags & libc::O_CREAT != 0;
        let call =
            Call::SemOpen { name, create, exclusive: flags & libc::O_EXCL != 0, value: if create { value } else { 0 } };
        Some(match s.value(call) {
            Ok(n) => {
                // A sem_t's worth of memory stands for it; a fork copies the address with the table.
                let mem = Box::into_raw(Box::new(std::mem::zeroed::<libc::sem_t>()));
                s.sems.insert(mem as usize, n as u32);
                mem
            }
            Err(e) => {
                set_errno(e);
                libc::SEM_FAILED
            }
        })
    }) {
        return r;
    }
    real!(sem_open: unsafe extern "C" fn(*const c_char, c_int, mode_t, c_uint) -> *mut libc::sem_t)(
        name, flags, mode, value,
    )
}

/// A wait on the world's semaphore: `None` for ever, else for `timeout_ns`; a
/// timed wait that times out fails with `ETIMEDOUT`, a try with `EAGAIN`.
fn sem_wait_world(s: &mut Shim, sem: u32, timeout_ns: Option<u64>, timed: bool) -> c_int {
    match s.status(Call::SemWait { sem, timeout_ns }) {
        -1 if timed && errno() == libc::EAGAIN => fail(libc::ETIMEDOUT),
        r => r,
    }
}

/// Nanoseconds from now to `abstime` on `clock`, as the world keeps its clocks.
fn until(s: &mut Shim, clock: libc::clockid_t, abstime: *const libc::timespec) -> u64 {
    let now = s.time(if clock == libc::CLOCK_REALTIME { Clock::Wall } else { Clock::Monotonic });
    let at = unsafe { *abstime };
    let ns = |sec: i64, nsec: i64| sec as i128 * 1_000_000_000 + nsec as i128;
    (ns(at.tv_sec, at.tv_nsec) - ns(now.0, now.1 as i64)).max(0) as u64
}

/// How long a semaphore wait may take: for ever, not at all (`sem_trywait`), or until a time on a clock.
#[derive(Clone, Copy)]
enum SemWait {
    Forever,
    Try,
    Until(libc::clockid_t, *const libc::timespec),
}

/// `sem_wait` and its kin. A named semaphore waits in the world (the other
/// threads run first); a private one, once the program has threads, waits in
/// the shim's schedule on its real count; otherwise it is the real call's.
unsafe fn sem_wait_any(sem: *mut libc::sem_t, how: SemWait) -> Option<c_int> {
    if let Some(n) = with_shim(|s| world_sem(s, sem)) {
        if !matches!(how, SemWait::Try) {
            threads::let_others_run();
        }
        return with_shim(|s| {
            Some(match how {
                SemWait::Forever => sem_wait_world(s, n, None, false),
                SemWait::Try => sem_wait_world(s, n, Some(0), false),
                SemWait::Until(clock, abstime) => {
                    let ns = until(s, clock, abstime);
                    sem_wait_world(s, n, Some(ns), true)
                }
            })
        });
    }
    if !threads::active() || matches!(how, SemWait::Try) {
        return None;
    }
    let deadline = match how {
        SemWait::Until(clock, abstime) => Some(threads::deadline_of(clock, &*abstime)),
        _ => None,
    };
    loop {
        if real!(sem_trywait: unsafe extern "C" fn(*mut libc::sem_t) -> c_int)(sem) == 0 {
            return Some(0);
        }
        if threads::block(threads::Obj::Sem(threads::key(sem)), deadline) {
            return Some(fail(libc::ETIMEDOUT));
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn sem_wait(sem: *mut libc::sem_t) -> c_int {
    if let Some(r) = sem_wait_any(sem, SemWait::Forever) {
        return r;
    }
    real!(sem_wait: unsafe extern "C" fn(*mut libc::sem_t) -> c_int)(sem)
}

#[no_mangle]
pub unsafe extern "C" fn sem_trywait(sem: *mut libc::sem_t) -> c_int {
    if let Some(r) = sem_wait_any(sem, SemWait::Try) {
        return r;
    }
    real!(sem_trywait: unsafe extern "C" fn(*mut libc::sem_t) -> c_int)(sem)
}

#[no_mangle]
pub unsafe extern "C" fn sem_timedwait(sem: *mut libc::sem_t, abstime: *const libc::timespec) -> c_int {
    if let Some(r) = sem_wait_any(sem, SemWait::Until(libc::CLOCK_REALTIME, abstime)) {
        return r;
    }
    real!(sem_timedwait: unsafe extern "C" fn(*mut libc::sem_t, *const libc::timespec) -> c_int)(sem, abstime)
}

#[no_mangle]
pub unsafe extern "C" fn sem_clockwait(
    sem: *mut libc::sem_t,
    clock: libc::clockid_t,
    abstime: *const libc::timespec,
) -> c_int {
    if let Some(r) = sem_wait_any(sem, SemWait::Until(clock, abstime)) {
        return r;
    }
    real!(sem_clockwait: unsafe extern "C" fn(*mut libc::sem_t, libc::clockid_t, *const libc::timespec) -> c_int)(
        sem, clock, abstime,
    )
}

#[no_mangle]
pub unsafe extern "C" fn sem_post(sem: *mut libc::sem_t) -> c_int {
    if let Some(r) = with_shim(|s| world_sem(s, sem).map(|n| s.status(Call::SemPost { sem: n }))) {
        return r;
    }
    let r = real!(sem_post: unsafe extern "C" fn(*mut libc::sem_t) -> c_int)(sem);
    if threads::active() {
        threads::wake(threads::Obj::Sem(threads::key(sem)), true);
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn sem_getvalue(sem: *mut libc::sem_t, value: *mut c_int) -> c_int {
    if let Some(r) = with_shim(|s| {
        world_sem(s, sem).map(|n| match s.value(Call::SemValue { sem: n }) {
            Ok(v) => {
                *value = v as c_int;
                0
            }
            Err(e) => fail(e),
        })
    }) {
        return r;
    }
    real!(sem_getvalue: unsafe extern "C" fn(*mut libc::sem_t, *mut c_int) -> c_int)(sem, value)
}

// ---------------------------------------------------------------------------
// Threads, one at a time (threads.rs): creation, exit, join, and the waits of
// mutexes and condition variables.

#[no_mangle]
pub unsafe extern "C" fn pthread_create(
    thread: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    start: extern "C-unwind" fn(*mut c_void) -> *mut c_void,
    arg: *mut c_void,
) -> c_int {
    if with_shim(|_| Some(())).is_some() {
        return threads::create(thread, attr, start, arg);
    }
    type Create = unsafe extern "C" fn(
        *mut libc::pthread_t,
        *const libc::pthread_attr_t,
        extern "C-unwind" fn(*mut c_void) -> *mut c_void,
        *mut c_void,
    ) -> c_int;
    real!(pthread_create: Create)(thread, attr, start, arg)
}

#[no_mangle]
pub unsafe extern "C" fn pthread_exit(ret: *mut c_void) -> ! {
    threads::exited();
    real!(pthread_exit: unsafe extern "C" fn(*mut c_void) -> !)(ret)
}

#[no_mangle]
pub unsafe extern "C" fn pthread_join(thread: libc::pthread_t, ret: *mut *mut c_void) -> c_int {
    if threads::active() {
        threads::join(thread);
    }
    real!(pthread_join: unsafe extern "C" fn(libc::pthread_t, *mut *mut c_void) -> c_int)(thread, ret)
}

/// Whether this call is the program's, under the schedule (not the shim's own, not before threads).
fn scheduled() -> bool {
    threads::active() && !BUSY.with(Cell::get)
}

/// `pthread_mutex_lock` under the schedule: the real `trylock`, blocking while it is taken.
unsafe fn mutex_lock(m: *mut libc::pthread_mutex_t, deadline: Option<i128>) -> c_int {
    loop {
        let r = real!(pthread_mutex_trylock: unsafe extern "C" fn(*mut libc::pthread_mutex_t) -> c_int)(m);
        if r != libc::EBUSY {
            return r;
        }
        if threads::block(threads::Obj::Mutex(threads::key(m)), deadline) {
            return libc::ETIMEDOUT;
        }
    }
}

unsafe fn mutex_unlock(m: *mut libc::pthread_mutex_t) -> c_int {
    let r = real!(pthread_mutex_unlock: unsafe extern "C" fn(*mut libc::pthread_mutex_t) -> c_int)(m);
    threads::wake(threads::Obj::Mutex(threads::key(m)), true);
    r
}

#[no_mangle]
pub unsafe extern "C" fn pthread_mutex_lock(m: *mut libc::pthread_mutex_t) -> c_int {
    if scheduled() {
        return mutex_lock(m, None);
    }
    real!(pthread_mutex_lock: unsafe extern "C" fn(*mut libc::pthread_mutex_t) -> c_int)(m)
}

#[no_mangle]
pub unsafe extern "C" fn pthread_mutex_timedlock(
    m: *mut libc::pthread_mutex_t,
    abstime: *const libc::timespec,
) -> c_int {
    if scheduled() {
        return mutex_lock(m, Some(threads::deadline_of(libc::CLOCK_REALTIME, &*abstime)));
    }
    real!(pthread_mutex_timedlock: unsafe extern "C" fn(*mut libc::pthread_mutex_t, *const libc::timespec) -> c_int)(
        m, abstime,
    )
}

#[no_mangle]
pub unsafe extern "C" fn pthread_mutex_unlock(m: *mut libc::pthread_mutex_t) -> c_int {
    // A thread on its way out still wakes the waiters of what it lets go.
    if scheduled() || (threads::any() && threads::gone()) {
        return mutex_unlock(m);
    }
    real!(pthread_mutex_unlock: unsafe extern "C" fn(*mut libc::pthread_mutex_t) -> c_int)(m)
}

#[no_mangle]
pub unsafe extern "C" fn pthread_cond_init(
    c: *mut libc::pthread_cond_t,
    attr: *const libc::pthread_condattr_t,
) -> c_int {
    if !attr.is_null() {
        let mut clock: libc::clockid_t = libc::CLOCK_REALTIME;
        real!(pthread_condattr_getclock: unsafe extern "C" fn(*const libc::pthread_condattr_t, *mut libc::clockid_t) -> c_int)(
            attr, &mut clock,
        );
        threads::COND_CLOCKS.lock().unwrap_or_else(|p| p.into_inner()).insert(threads::key(c), clock);
    }
    real!(pthread_cond_init: unsafe extern "C" fn(*mut libc::pthread_cond_t, *const libc::pthread_condattr_t) -> c_int)(
        c, attr,
    )
}

/// A condition wait under the schedule: the mutex goes, the thread blocks on
/// the condition (until `deadline`), and takes the mutex again.
unsafe fn cond_wait(c: *mut libc::pthread_cond_t, m: *mut libc::pthread_mutex_t, deadline: Option<i128>) -> c_int {
    mutex_unlock(m);
    let timed_out = threads::block(threads::Obj::Cond(threads::key(c)), deadline);
    mutex_lock(m, None);
    if timed_out {
        libc::ETIMEDOUT
    } else {
        0
    }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_cond_wait(c: *mut libc::pthread_cond_t, m: *mut libc::pthread_mutex_t) -> c_int {
    if scheduled() {
        return cond_wait(c, m, None);
    }
    real!(pthread_cond_wait: unsafe extern "C" fn(*mut libc::pthread_cond_t, *mut libc::pthread_mutex_t) -> c_int)(c, m)
}

#[no_mangle]
pub unsafe extern "C" fn pthread_cond_timedwait(
    c: *mut libc::pthread_cond_t,
    m: *mut libc::pthread_mutex_t,
    abstime: *const libc::timespec,
) -> c_int {
    if scheduled() {
        let deadline = threads::deadline_of(threads::cond_clock(threads::key(c)), &*abstime);
        return cond_wait(c, m, Some(deadline));
    }
    type Timed =
        unsafe extern "C" fn(*mut libc::pthread_cond_t, *mut libc::pthread_mutex_t, *const libc::timespec) -> c_int;
    real!(pthread_cond_timedwait: Timed)(c, m, abstime)
}

#[no_mangle]
pub unsafe extern "C" fn pthread_cond_clockwait(
    c: *mut libc::pthread_cond_t,
    m: *mut libc::pthread_mutex_t,
    clock: libc::clockid_t,
    abstime: *const libc::timespec,
) -> c_int {
    if scheduled() {
        return cond_wait(c, m, Some(threads::deadline_of(clock, &*abstime)));
    }
    type Clocked = unsafe extern "C" fn(
        *mut libc::pthread_cond_t,
        *mut libc::pthread_mutex_t,
        libc::clockid_t,
        *const libc::timespec,
    ) -> c_int;
    real!(pthread_cond_clockwait: Clocked)(c, m, clock, abstime)
}

#[no_mangle]
pub unsafe extern "C" fn pthread_cond_signal(c: *mut libc::pthread_cond_t) -> c_int {
    if scheduled() {
        threads::wake(threads::Obj::Cond(threads::key(c)), false);
        return 0;
    }
    real!(pthread_cond_signal: unsafe extern "C" fn(*mut libc::pthread_cond_t) -> c_int)(c)
}

#[no_mangle]
pub unsafe extern "C" fn pthread_cond_broadcast(c: *mut libc::pthread_cond_t) -> c_int {
    if scheduled() {
        threads::wake(threads::Obj::Cond(threads::key(c)), true);
        return 0;
    }
    real!(pthread_cond_broadcast: unsafe extern "C" fn(*mut libc::pthread_cond_t) -> c_int)(c)
}

#[no_mangle]
pub unsafe extern "C" fn sem_close(sem: *mut libc::sem_t) -> c_int {
    if let Some(r) = with_shim(|s| {
        world_sem(s, sem).map(|n| {
            s.sems.remove(&(sem as usize));
            drop(Box::from_raw(sem));
            s.status(Call::SemClose { sem: n })
        })
    }) {
        return r;
    }
    real!(sem_close: unsafe extern "C" fn(*mut libc::sem_t) -> c_int)(sem)
}

#[no_mangle]
pub unsafe extern "C" fn sem_unlink(name: *const c_char) -> c_int {
    if let Some(r) = with_shim(|s| {
        let name = CStr::from_ptr(name).to_string_lossy().into_owned();
        Some(s.status(Call::SemUnlink { name }))
    }) {
        return r;
    }
    real!(sem_unlink: unsafe extern "C" fn(*const c_char) -> c_int)(name)
}

// ---------------------------------------------------------------------------
// Processes and pipes: fork, waitpid, exit, pipe.

#[no_mangle]
pub unsafe extern "C" fn fork() -> libc::pid_t {
    let held = threads::hold_for_fork();
    let r = with_shim(|s| Some(s.fork()));
    threads::after_fork(held, r == Some(0));
    if let Some(r) = r {
        return r;
    }
    real!(fork: unsafe extern "C" fn() -> libc::pid_t)()
}

#[no_mangle]
pub unsafe extern "C" fn waitpid(pid: libc::pid_t, status: *mut c_int, options: c_int) -> libc::pid_t {
    if scheduled() && options & libc::WNOHANG == 0 {
        threads::let_others_run();
    }
    if let Some(r) = with_shim(|s| Some(s.waitpid(pid, status, options, "waitpid"))) {
        return r;
    }
    real!(waitpid: unsafe extern "C" fn(libc::pid_t, *mut c_int, c_int) -> libc::pid_t)(pid, status, options)
}

#[no_mangle]
pub unsafe extern "C" fn wait4(
    pid: libc::pid_t,
    status: *mut c_int,
    options: c_int,
    usage: *mut libc::rusage,
) -> libc::pid_t {
    if scheduled() && options & libc::WNOHANG == 0 {
        threads::let_others_run();
    }
    if let Some(r) = with_shim(|s| {
        if !usage.is_null() {
            *usage = std::mem::zeroed();
        }
        Some(s.waitpid(pid, status, options, "wait4"))
    }) {
        return r;
    }
    real!(wait4: unsafe extern "C" fn(libc::pid_t, *mut c_int, c_int, *mut libc::rusage) -> libc::pid_t)(
        pid, status, options, usage,
    )
}

#[no_mangle]
pub unsafe extern "C" fn wait(status: *mut c_int) -> libc::pid_t {
    if scheduled() {
        threads::let_others_run();
    }
    if let Some(r) = with_shim(|s| Some(s.waitpid(-1, status, 0, "wait"))) {
        return r;
    }
    real!(wait: unsafe extern "C" fn(*mut c_int) -> libc::pid_t)(status)
}

/// Tells the world the status the program exits with; a forked child has no
/// other way to report it (its real parent, not mmsim, reaps it).
fn exiting(code: c_int) {
    // A program that made no call has nothing to report: it never met the world.
    if STATE.load(Ordering::Acquire) != 1 {
        return;
    }
    with_shim(|s| {
        s.status(Call::Exit { code });
        Some(())
    });
}

type Main = unsafe extern "C" fn(c_int, *mut *mut c_char, *mut *mut c_char) -> c_int;

static MAIN: AtomicUsize = AtomicUsize::new(0);

/// The program's `main`, and then the status it returned: libc's own call of
/// `exit` with it is internal, so no preloaded `exit` would see it.
unsafe extern "C" fn main_then_exit(argc: c_int, argv: *mut *mut c_char, envp: *mut *mut c_char) -> c_int {
    let main = std::mem::transmute::<usize, Main>(MAIN.load(Ordering::Relaxed));
    let code = main(argc, argv, envp);
    exiting(code);
    code
}

/// The program's start, through the dynamic linker: it runs `main` under [`main_then_exit`].
#[no_mangle]
pub unsafe extern "C" fn __libc_start_main(
    main: Main,
    argc: c_int,
    argv: *mut *mut c_char,
    init: *mut c_void,
    fini: *mut c_void,
    rtld_fini: *mut c_void,
    stack_end: *mut c_void,
) -> c_int {
    MAIN.store(main as usize, Ordering::Relaxed);
    type Start = unsafe extern "C" fn(
        Main,
        c_int,
        *mut *mut c_char,
        *mut c_void,
        *mut c_void,
        *mut c_void,
        *mut c_void,
    ) -> c_int;
    real!(__libc_start_main: Start)(main_then_exit, argc, argv, init, fini, rtld_fini, stack_end)
}

#[no_mangle]
pub unsafe extern "C" fn exit(code: c_int) -> ! {
    exiting(code);
    real!(exit: unsafe extern "C" fn(c_int) -> !)(code)
}

#[no_mangle]
pub unsafe extern "C" fn _exit(code: c_int) -> ! {
    exiting(code);
    real!(_exit: unsafe extern "C" fn(c_int) -> !)(code)
}

#[no_mangle]
pub unsafe extern "C" fn _Exit(code: c_int) -> ! {
    exiting(code);
    real!(_Exit: unsafe extern "C" fn(c_int) -> !)(code)
}

#[no_mangle]
pub unsafe extern "C" fn pipe(fds: *mut c_int) -> c_int {
    if let Some(r) = with_shim(|s| Some(s.pipe(fds, 0))) {
        return r;
    }
    real!(pipe: unsafe extern "C" fn(*mut c_int) -> c_int)(fds)
}

#[no_mangle]
pub unsafe extern "C" fn pipe2(fds: *mut c_int, flags: c_int) -> c_int {
    if let Some(r) = with_shim(|s| Some(s.pipe(fds, flags))) {
        return r;
    }
    real!(pipe2: unsafe extern "C" fn(*mut c_int, c_int) -> c_int)(fds, flags)
}

/// epoll on a placeholder would wait on `/dev/null`, not on the world's pipe.
#[no_mangle]
pub unsafe extern "C" fn epoll_ctl(epfd: c_int, op: c_int, fd: c_int, event: *mut libc::epoll_event) -> c_int {
    if let Some(()) = on_fd(fd, |s| s.unsupported("epoll_ctl", "waiting on a descriptor of the world with epoll")) {
        unreachable!()
    }
    real!(epoll_ctl: unsafe extern "C" fn(c_int, c_int, c_int, *mut libc::epoll_event) -> c_int)(epfd, op, fd, event)
}

// ---------------------------------------------------------------------------
// Identity, randomness, signals, names.

#[no_mangle]
pub unsafe extern "C" fn getpid() -> libc::pid_t {
    if let Some(p) = with_shim(|s| {
        if s.pid.is_none() {
            let pid = s.value(Call::Pid).unwrap_or_else(|e| die(&format!("mmsim-shim: getpid: errno {e}\n")));
            s.pid = Some(pid as u32);
        }
        s.pid
    }) {
        return p as libc::pid_t;
    }
    real!(getpid: unsafe extern "C" fn() -> libc::pid_t)()
}

/// The simulated parent: the process that spawned this one in the world
/// (dotlockfile, for one, gives up waiting once its parent is gone).
#[no_mangle]
pub unsafe extern "C" fn getppid() -> libc::pid_t {
    if let Some(p) = with_shim(|s| s.value(Call::ParentPid).ok()) {
        return p as libc::pid_t;
    }
    real!(getppid: unsafe extern "C" fn() -> libc::pid_t)()
}

fn hostname(s: &mut Shim) -> String {
    if s.hostname.is_none() {
        let name = match s.ask(&Call::Hostname) {
            Reply::Text(t) => t,
            other => s.bad_reply(&Call::Hostname, other),
        };
        s.hostname = Some(name);
    }
    s.hostname.clone().expect("set above")
}

#[no_mangle]
pub unsafe extern "C" fn gethostname(buf: *mut c_char, len: size_t) -> c_int {
    if let Some(r) = with_shim(|s| {
        let name = hostname(s);
        if name.len() + 1 > len {
            return Some(fail(libc::ENAMETOOLONG));
        }
        std::ptr::copy_nonoverlapping(name.as_ptr(), buf as *mut u8, name.len());
        *buf.add(name.len()) = 0;
        Some(0)
    }) {
        return r;
    }
    real!(gethostname: unsafe extern "C" fn(*mut c_char, size_t) -> c_int)(buf, len)
}

#[no_mangle]
pub unsafe extern "C" fn uname(buf: *mut libc::utsname) -> c_int {
    let r = real!(uname: unsafe extern "C" fn(*mut libc::utsname) -> c_int)(buf);
    if r == 0 {
        if let Some(name) = with_shim(|s| Some(hostname(s))) {
            let node = &mut (*buf).nodename;
            node.fill(0);
            for (slot, b) in node.iter_mut().zip(name.bytes().take(64)) {
                *slot = b as c_char;
            }
        }
    }
    r
}

fn random_into(s: &mut Shim, buf: *mut c_void, len: usize) -> ssize_t {
    match s.data(Call::Random { len: len.min(u32::MAX as usize) as u32 }) {
        Ok(d) => {
            unsafe { std::ptr::copy_nonoverlapping(d.as_ptr(), buf as *mut u8, d.len().min(len)) };
            d.len().min(len) as ssize_t
        }
        Err(e) => fail(e),
    }
}

#[no_mangle]
pub unsafe extern "C" fn getrandom(buf: *mut c_void, len: size_t, flags: c_uint) -> ssize_t {
    if let Some(r) = with_shim(|s| Some(random_into(s, buf, len))) {
        return r;
    }
    real!(getrandom: unsafe extern "C" fn(*mut c_void, size_t, c_uint) -> ssize_t)(buf, len, flags)
}

#[no_mangle]
pub unsafe extern "C" fn getentropy(buf: *mut c_void, len: size_t) -> c_int {
    if let Some(r) = with_shim(|s| Some(if random_into(s, buf, len) < 0 { -1 } else { 0 })) {
        return r;
    }
    real!(getentropy: unsafe extern "C" fn(*mut c_void, size_t) -> c_int)(buf, len)
}

/// Signals go to simulated processes: a simulated pid names no real one.
#[no_mangle]
pub unsafe extern "C" fn kill(pid: libc::pid_t, signal: c_int) -> c_int {
    if let Some(r) = with_shim(|s| {
        if pid <= 0 {
            s.unsupported("kill", format!("process group {pid}"));
        }
        Some(s.status(Call::Kill { pid: pid as u32, signal }))
    }) {
        return r;
    }
    real!(kill: unsafe extern "C" fn(libc::pid_t, c_int) -> c_int)(pid, signal)
}

/// The simulated hosts have no resolver: every name is unknown (`EAI_NONAME`),
/// so `socket.getfqdn()` answers the host name itself.
#[no_mangle]
pub unsafe extern "C" fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const libc::addrinfo,
    res: *mut *mut libc::addrinfo,
) -> c_int {
    if with_shim(|_| Some(())).is_some() {
        return libc::EAI_NONAME;
    }
    real!(getaddrinfo: unsafe extern "C" fn(*const c_char, *const c_char, *const libc::addrinfo, *mut *mut libc::addrinfo) -> c_int)(
        node, service, hints, res,
    )
}

extern "C" {
    fn __h_errno_location() -> *mut c_int;
}

const HOST_NOT_FOUND: c_int = 1;

#[no_mangle]
pub unsafe extern "C" fn gethostbyname(name: *const c_char) -> *mut libc::hostent {
    if with_shim(|_| Some(())).is_some() {
        *__h_errno_location() = HOST_NOT_FOUND;
        return std::ptr::null_mut();
    }
    real!(gethostbyname: unsafe extern "C" fn(*const c_char) -> *mut libc::hostent)(name)
}

#[no_mangle]
pub unsafe extern "C" fn gethostbyaddr(addr: *const c_void, len: libc::socklen_t, kind: c_int) -> *mut libc::hostent {
    if with_shim(|_| Some(())).is_some() {
        *__h_errno_location() = HOST_NOT_FOUND;
        return std::ptr::null_mut();
    }
    real!(gethostbyaddr: unsafe extern "C" fn(*const c_void, libc::socklen_t, c_int) -> *mut libc::hostent)(
        addr, len, kind,
    )
}

#[no_mangle]
pub unsafe extern "C" fn gethostbyname_r(
    name: *const c_char,
    ret: *mut libc::hostent,
    buf: *mut c_char,
    len: size_t,
    result: *mut *mut libc::hostent,
    h_errnop: *mut c_int,
) -> c_int {
    if with_shim(|_| Some(())).is_some() {
        *result = std::ptr::null_mut();
        *h_errnop = HOST_NOT_FOUND;
        return libc::ENOENT;
    }
    real!(gethostbyname_r: unsafe extern "C" fn(*const c_char, *mut libc::hostent, *mut c_char, size_t, *mut *mut libc::hostent, *mut c_int) -> c_int)(
        name, ret, buf, len, result, h_errnop,
    )
}

#[no_mangle]
pub unsafe extern "C" fn gethostbyaddr_r(
    addr: *const c_void,
    alen: libc::socklen_t,
    kind: c_int,
    ret: *mut libc::hostent,
    buf: *mut c_char,
    len: size_t,
    result: *mut *mut libc::hostent,
    h_errnop: *mut c_int,
) -> c_int {
    if with_shim(|_| Some(())).is_some() {
        *result = std::ptr::null_mut();
        *h_errnop = HOST_NOT_FOUND;
        return libc::ENOENT;
    }
    real!(gethostbyaddr_r: unsafe extern "C" fn(*const c_void, libc::socklen_t, c_int, *mut libc::hostent, *mut c_char, size_t, *mut *mut libc::hostent, *mut c_int) -> c_int)(
        addr, alen, kind, ret, buf, len, result, h_errnop,
    )
}

// ---------------------------------------------------------------------------
// New processes and threads: not in lockstep yet, so refused while in the world.

macro_rules! refused_in_world {
    ($name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty) => {
        refused_in_world!("a new process or thread outside the world's lockstep"; $name($($arg: $ty),*) -> $ret);
    };
    ($detail:literal; $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty) => {
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            if let Some(()) = with_shim(|s| s.unsupported(stringify!($name), $detail)) {
                unreachable!()
            }
            real!($name: unsafe extern "C" fn($($ty),*) -> $ret)($($arg),*)
        }
    };
}

refused_in_world!(vfork() -> libc::pid_t);
refused_in_world!(execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int);
refused_in_world!(execv(path: *const c_char, argv: *const *const c_char) -> c_int);
refused_in_world!(execvp(path: *const c_char, argv: *const *const c_char) -> c_int);
refused_in_world!(system(command: *const c_char) -> c_int);
refused_in_world!(popen(command: *const c_char, mode: *const c_char) -> *mut libc::FILE);
refused_in_world!(posix_spawn(pid: *mut libc::pid_t, path: *const c_char, actions: *const c_void, attr: *const c_void, argv: *const *mut c_char, envp: *const *mut c_char) -> c_int);
refused_in_world!(posix_spawnp(pid: *mut libc::pid_t, path: *const c_char, actions: *const c_void, attr: *const c_void, argv: *const *mut c_char, envp: *const *mut c_char) -> c_int);
