//! `FakeOs`: a scripted `Os` for step-by-step tests of the model.
//!
//! Files live on a real temporary directory through `RealOs`, so link counts,
//! renames and ENOENTs are the kernel's. On top of that:
//! - a virtual clock: `now()` is a value the test sets, `sleep()` advances it
//!   at once. Processes made with [`FakeOs::process`] share the directory and
//!   the clock, as processes on one host do;
//! - `random()` returns scripted values (0.5 once the script is empty);
//! - a rule table: for a given operation and path, fail with an errno, or run a
//!   closure on the directory first (to slip in another process's step);
//! - an operation log (`ops()`) and the events the model emitted (`events()`).
//!
//! Nothing here is a fault injector for the simulation: it exists only so that
//! each branch of Mailman's errno handling can be driven from a test.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use model::{err, ExitStatus, Fd, Metadata, ModelEvent, OpenFlags, Os, Pid, RealOs, SetTime, Signal};

/// The operations a rule can match and the op log names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Open,
    Read,
    Write,
    Seek,
    SetLen,
    Fstat,
    Fsync,
    Close,
    Stat,
    Link,
    Rename,
    Unlink,
    Mkdir,
    Rmdir,
    ReadDir,
    SetTimes,
}

type Hook = Box<dyn Fn(&Path)>;

enum Action {
    Fail(i32),
    Before(Hook),
}

struct Rule {
    op: Op,
    path: String,
    /// Matches left before the rule fires.
    skip: usize,
    /// Firings left; `usize::MAX` for "always".
    times: usize,
    action: Action,
}

/// The virtual clock starts on 2001-09-09, in the era of the races we replay.
pub const EPOCH_START_S: u64 = 1_000_000_000;

pub struct FakeOs {
    real: RealOs,
    dir: Rc<tempfile::TempDir>,
    now: Rc<Cell<SystemTime>>,
    hostname: String,
    pid: Pid,
    randoms: RefCell<VecDeque<f64>>,
    rules: RefCell<Vec<Rule>>,
    fd_paths: RefCell<BTreeMap<Fd, String>>,
    ops: RefCell<Vec<String>>,
    events: RefCell<Vec<ModelEvent>>,
}

impl FakeOs {
    /// Process `pid` 1234 on `host1`, on a fresh directory.
    pub fn new() -> Rc<FakeOs> {
        let dir = Rc::new(tempfile::tempdir().expect("temp dir"));
        let now = Rc::new(Cell::new(UNIX_EPOCH + Duration::from_secs(EPOCH_START_S)));
        Rc::new(FakeOs::with(dir, now, "host1", 1234))
    }

    fn with(dir: Rc<tempfile::TempDir>, now: Rc<Cell<SystemTime>>, hostname: &str, pid: Pid) -> FakeOs {
        FakeOs {
            real: RealOs::new(dir.path().to_path_buf(), hostname.to_string()),
            dir,
            now,
            hostname: hostname.to_string(),
            pid,
            randoms: RefCell::new(VecDeque::new()),
            rules: RefCell::new(Vec::new()),
            fd_paths: RefCell::new(BTreeMap::new()),
            ops: RefCell::new(Vec::new()),
            events: RefCell::new(Vec::new()),
        }
    }

    /// Another process on the same directory and clock.
    pub fn process(&self, hostname: &str, pid: Pid) -> Rc<FakeOs> {
        Rc::new(FakeOs::with(Rc::clone(&self.dir), Rc::clone(&self.now), hostname, pid))
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn now_value(&self) -> SystemTime {
        self.now.get()
    }

    pub fn advance(&self, by: Duration) {
        self.now.set(self.now.get() + by);
    }

    pub fn push_random(&self, value: f64) {
        self.randoms.borrow_mut().push_back(value);
    }

    /// The next `times` calls of `op` on `path` fail with `errno`.
    pub fn fail(&self, op: Op, path: &str, errno: i32, times: usize) {
        self.rule(op, path, 0, times, Action::Fail(errno));
    }

    /// The `skip+1`-th call of `op` on `path` fails with `errno`, once.
    pub fn fail_nth(&self, op: Op, path: &str, skip: usize, errno: i32) {
        self.rule(op, path, skip, 1, Action::Fail(errno));
    }

    /// Before the `skip+1`-th call of `op` on `path`, run `hook` on the root.
    pub fn before_nth(&self, op: Op, path: &str, skip: usize, hook: impl Fn(&Path) + 'static) {
        self.rule(op, path, skip, 1, Action::Before(Box::new(hook)));
    }

    fn rule(&self, op: Op, path: &str, skip: usize, times: usize, action: Action) {
        self.rules.borrow_mut().push(Rule { op, path: path.to_string(), skip, times, action });
    }

    /// Every file-system operation so far, as `"link a b"`, `"open a"`, …,
    /// with each event the model emitted as `"event <kind>"`.
    pub fn ops(&self) -> Vec<String> {
        self.ops.borrow().clone()
    }

    /// The name operations only (no open/read/write/close/fstat/seek).
    pub fn name_ops(&self) -> Vec<String> {
        let by_name = ["stat ", "link ", "rename ", "unlink ", "mkdir ", "rmdir ", "read_dir ", "set_times "];
        self.ops().into_iter().filter(|op| by_name.iter().any(|p| op.starts_with(p))).collect()
    }

    pub fn clear_ops(&self) {
        self.ops.borrow_mut().clear();
        self.events.borrow_mut().clear();
    }

    pub fn events(&self) -> Vec<ModelEvent> {
        self.events.borrow().clone()
    }

    /// The `logs/<log>` lines the model emitted as `ModelEvent::Log`.
    pub fn log_lines(&self, log: &str) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                ModelEvent::Log { log: l, message } if l == log => Some(message),
                _ => None,
            })
            .collect()
    }

    // Direct access to the directory, for setting the scene.

    pub fn put(&self, path: &str, content: &[u8]) {
        let full = self.root().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }

    pub fn mkdirs(&self, path: &str) {
        std::fs::create_dir_all(self.root().join(path)).unwrap();
    }

    pub fn get(&self, path: &str) -> Option<Vec<u8>> {
        std::fs::read(self.root().join(path)).ok()
    }

    pub fn exists(&self, path: &str) -> bool {
        self.root().join(path).exists()
    }

    pub fn hard_link(&self, existing: &str, new: &str) {
        std::fs::hard_link(self.root().join(existing), self.root().join(new)).unwrap();
    }

    pub fn nlink(&self, path: &str) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(self.root().join(path)).unwrap().nlink()
    }

    /// Sets both times of `path` directly.
    pub fn set_mtime(&self, path: &str, t: SystemTime) {
        let file = std::fs::File::options().write(true).open(self.root().join(path)).unwrap();
        file.set_times(std::fs::FileTimes::new().set_accessed(t).set_modified(t)).unwrap();
    }

    pub fn mtime(&self, path: &str) -> SystemTime {
        std::fs::metadata(self.root().join(path)).unwrap().modified().unwrap()
    }

    /// Records `op` and applies the first matching rule.
    fn enter(&self, op: Op, paths: &[&str]) -> io::Result<()> {
        let name = op_name(op);
        self.ops.borrow_mut().push(std::iter::once(name).chain(paths.iter().copied()).collect::<Vec<_>>().join(" "));
        let mut fired = None;
        {
            let mut rules = self.rules.borrow_mut();
            for (i, rule) in rules.iter_mut().enumerate() {
                if rule.op != op || rule.times == 0 || !paths.contains(&rule.path.as_str()) {
                    continue;
                }
                if rule.skip > 0 {
                    rule.skip -= 1;
                    continue;
                }
                rule.times = rule.times.saturating_sub(1);
                fired = Some(i);
                break;
            }
        }
        let Some(i) = fired else { return Ok(()) };
        let rules = self.rules.borrow();
        match &rules[i].action {
            Action::Fail(errno) => Err(err(*errno)),
            Action::Before(hook) => {
                hook(self.root());
                Ok(())
            }
        }
    }

    fn fd_path(&self, fd: Fd) -> String {
        self.fd_paths.borrow().get(&fd).cloned().unwrap_or_else(|| format!("fd{fd}"))
    }
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Open => "open",
        Op::Read => "read",
        Op::Write => "write",
        Op::Seek => "seek",
        Op::SetLen => "set_len",
        Op::Fstat => "fstat",
        Op::Fsync => "fsync",
        Op::Close => "close",
        Op::Stat => "stat",
        Op::Link => "link",
        Op::Rename => "rename",
        Op::Unlink => "unlink",
        Op::Mkdir => "mkdir",
        Op::Rmdir => "rmdir",
        Op::ReadDir => "read_dir",
        Op::SetTimes => "set_times",
    }
}

impl Os for FakeOs {
    type Listener = <RealOs as Os>::Listener;
    type Stream = <RealOs as Os>::Stream;

    async fn open(&self, path: &str, flags: OpenFlags) -> io::Result<Fd> {
        self.enter(Op::Open, &[path])?;
        let fd = self.real.open(path, flags).await?;
        self.fd_paths.borrow_mut().insert(fd, path.to_string());
        Ok(fd)
    }
    async fn read(&self, fd: Fd, len: usize) -> io::Result<Vec<u8>> {
        self.enter(Op::Read, &[&self.fd_path(fd)])?;
        self.real.read(fd, len).await
    }
    async fn write(&self, fd: Fd, data: &[u8]) -> io::Result<()> {
        self.enter(Op::Write, &[&self.fd_path(fd)])?;
        self.real.write(fd, data).await
    }
    async fn seek(&self, fd: Fd, pos: u64) -> io::Result<()> {
        self.enter(Op::Seek, &[&self.fd_path(fd)])?;
        self.real.seek(fd, pos).await
    }
    async fn set_len(&self, fd: Fd, len: u64) -> io::Result<()> {
        self.enter(Op::SetLen, &[&self.fd_path(fd)])?;
        self.real.set_len(fd, len).await
    }
    async fn fstat(&self, fd: Fd) -> io::Result<Metadata> {
        self.enter(Op::Fstat, &[&self.fd_path(fd)])?;
        self.real.fstat(fd).await
    }
    async fn fsync(&self, fd: Fd) -> io::Result<()> {
        self.enter(Op::Fsync, &[&self.fd_path(fd)])?;
        self.real.fsync(fd).await
    }
    async fn close(&self, fd: Fd) -> io::Result<()> {
        let path = self.fd_path(fd);
        self.fd_paths.borrow_mut().remove(&fd);
        let closed = self.real.close(fd).await;
        // Closing always releases the descriptor, even when a rule then
        // reports an error (as close(2) does on NFS write-back failures).
        self.enter(Op::Close, &[&path])?;
        closed
    }
    async fn stat(&self, path: &str) -> io::Result<Metadata> {
        self.enter(Op::Stat, &[path])?;
        self.real.stat(path).await
    }
    async fn link(&self, existing: &str, new: &str) -> io::Result<()> {
        self.enter(Op::Link, &[existing, new])?;
        self.real.link(existing, new).await
    }
    async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.enter(Op::Rename, &[from, to])?;
        self.real.rename(from, to).await
    }
    async fn unlink(&self, path: &str) -> io::Result<()> {
        self.enter(Op::Unlink, &[path])?;
        self.real.unlink(path).await
    }
    async fn mkdir(&self, path: &str) -> io::Result<()> {
        self.enter(Op::Mkdir, &[path])?;
        self.real.mkdir(path).await
    }
    async fn rmdir(&self, path: &str) -> io::Result<()> {
        self.enter(Op::Rmdir, &[path])?;
        self.real.rmdir(path).await
    }
    async fn read_dir(&self, path: &str) -> io::Result<Vec<String>> {
        self.enter(Op::ReadDir, &[path])?;
        self.real.read_dir(path).await
    }
    async fn set_times(&self, path: &str, time: SetTime) -> io::Result<()> {
        self.enter(Op::SetTimes, &[path])?;
        // ServerNow would read the real clock; the fake's server is its clock.
        let time = match time {
            SetTime::ServerNow => SetTime::Explicit(self.now.get()),
            explicit => explicit,
        };
        self.real.set_times(path, time).await
    }

    fn now(&self) -> SystemTime {
        self.now.get()
    }
    fn monotonic(&self) -> Duration {
        self.now.get().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default()
    }
    async fn sleep(&self, duration: Duration) {
        self.advance(duration);
    }
    fn random(&self) -> f64 {
        self.randoms.borrow_mut().pop_front().unwrap_or(0.5)
    }
    fn hostname(&self) -> String {
        self.hostname.clone()
    }
    fn parent_pid(&self) -> Pid {
        1
    }
    fn pid(&self) -> Pid {
        self.pid
    }

    async fn spawn(&self, program: &str, args: &[String]) -> io::Result<Pid> {
        self.real.spawn(program, args).await
    }
    async fn wait(&self, pid: Pid) -> io::Result<ExitStatus> {
        self.real.wait(pid).await
    }
    async fn kill(&self, pid: Pid, signal: Signal) -> io::Result<()> {
        self.real.kill(pid, signal).await
    }
    async fn alive(&self, pid: Pid) -> bool {
        self.real.alive(pid).await
    }
    fn take_signal(&self) -> Option<Signal> {
        None
    }

    async fn tcp_listen(&self, port: u16) -> io::Result<Self::Listener> {
        self.real.tcp_listen(port).await
    }
    async fn tcp_accept(&self, listener: &Self::Listener) -> io::Result<(Self::Stream, model::Peer)> {
        self.real.tcp_accept(listener).await
    }
    async fn tcp_connect(&self, host: &str, port: u16) -> io::Result<Self::Stream> {
        self.real.tcp_connect(host, port).await
    }
    async fn tcp_read(&self, stream: &mut Self::Stream, buf: &mut [u8]) -> io::Result<usize> {
        self.real.tcp_read(stream, buf).await
    }
    async fn tcp_write(&self, stream: &mut Self::Stream, data: &[u8]) -> io::Result<()> {
        self.real.tcp_write(stream, data).await
    }

    fn event(&self, event: ModelEvent) {
        // Events go into the op log too, so a test can see what the model
        // announced between which two operations.
        let kind = serde_json::to_value(&event).unwrap()["kind"].as_str().unwrap().to_string();
        self.ops.borrow_mut().push(format!("event {kind}"));
        self.events.borrow_mut().push(event);
    }
}
