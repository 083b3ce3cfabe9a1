//! A single-threaded test `Os` on `std::fs` over a temp dir, with a manual
//! virtual clock, a seeded PRNG, in-memory TCP (tokio duplex pipes) and
//! programs spawned as local tasks. It is test support, not a simulator:
//! the only fault it can inject is a fixed errno for `stat` of chosen paths
//! (to exercise the MTA router).

#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use model::{ExitStatus, Fd, FileType, Metadata, ModelEvent, OpenFlags, Os, Peer, Pid, SetTime, Signal};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;

pub struct World {
    pub dir: tempfile::TempDir,
    clock: Cell<SystemTime>,
    rng: Cell<u64>,
    next_pid: Cell<Pid>,
    next_fd: Cell<Fd>,
    files: RefCell<BTreeMap<Fd, File>>,
    pub events: RefCell<Vec<(Pid, ModelEvent)>>,
    /// Per port, the connections made and the host name each was made to.
    listeners: RefCell<BTreeMap<u16, mpsc::UnboundedSender<(DuplexStream, String)>>>,
    children: RefCell<BTreeMap<Pid, tokio::task::JoinHandle<i32>>>,
    signals: RefCell<BTreeMap<Pid, Vec<Signal>>>,
    /// `stat` of these paths fails with the errno.
    pub stat_faults: RefCell<BTreeMap<String, i32>>,
    /// Every path `stat` was called with.
    pub stat_log: RefCell<Vec<String>>,
    /// Whether every name operation (open, stat, link, rename, unlink,
    /// utime) first yields to the other tasks, so that concurrent processes
    /// interleave inside critical sections as they would on a real host.
    pub yield_on_io: Cell<bool>,
    /// Every `tcp_write`: the writing process and the bytes.
    pub tcp_writes: RefCell<Vec<(Pid, Vec<u8>)>>,
}

#[derive(Clone)]
pub struct TestOs {
    pub world: Rc<World>,
    pub pid: Pid,
}

impl TestOs {
    pub fn new(seed: u64) -> TestOs {
        let world = World {
            dir: tempfile::tempdir().expect("tempdir"),
            clock: Cell::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            rng: Cell::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            next_pid: Cell::new(100),
            next_fd: Cell::new(3),
            files: RefCell::new(BTreeMap::new()),
            events: RefCell::new(Vec::new()),
            listeners: RefCell::new(BTreeMap::new()),
            children: RefCell::new(BTreeMap::new()),
            signals: RefCell::new(BTreeMap::new()),
            stat_faults: RefCell::new(BTreeMap::new()),
            stat_log: RefCell::new(Vec::new()),
            yield_on_io: Cell::new(false),
            tcp_writes: RefCell::new(Vec::new()),
        };
        TestOs { world: Rc::new(world), pid: 1 }
    }

    /// Another process on the same host.
    /// The pid the next `fork` gives.
    pub fn world_next_pid(&self) -> Pid {
        self.world.next_pid.get()
    }

    pub fn fork(&self) -> TestOs {
        let pid = self.world.next_pid.get();
        self.world.next_pid.set(pid + 1);
        TestOs { world: self.world.clone(), pid }
    }

    /// Waits until every child spawned so far, and every child they spawn, has exited.
    pub async fn wait_children(&self) {
        loop {
            let next = self.world.children.borrow().keys().next().copied();
            let Some(pid) = next else { return };
            let handle = self.world.children.borrow_mut().remove(&pid).expect("listed");
            handle.await.expect("program panicked");
        }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.world.dir.path().join(p)
    }

    pub fn exists(&self, p: &str) -> bool {
        self.path(p).exists()
    }

    pub fn names(&self, dir: &str) -> Vec<String> {
        let mut v: Vec<String> = match fs::read_dir(self.path(dir)) {
            Ok(rd) => rd.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned()).collect(),
            Err(_) => Vec::new(),
        };
        v.sort();
        v
    }

    pub fn advance(&self, d: Duration) {
        self.world.clock.set(self.world.clock.get() + d);
    }

    pub fn events(&self) -> Vec<ModelEvent> {
        self.world.events.borrow().iter().map(|(_, e)| e.clone()).collect()
    }

    /// The messages syslogged to `log`, in order.
    pub fn log_lines(&self, log: &str) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                ModelEvent::Log { log: l, message } if l == log => Some(message),
                _ => None,
            })
            .collect()
    }

    async fn maybe_yield(&self) {
        if self.world.yield_on_io.get() {
            tokio::task::yield_now().await;
        }
    }

    pub fn send_signal(&self, pid: Pid, sig: Signal) {
        self.world.signals.borrow_mut().entry(pid).or_default().push(sig);
    }
}

fn meta(m: &fs::Metadata) -> Metadata {
    Metadata {
        ino: m.ino(),
        nlink: m.nlink(),
        size: m.size(),
        mtime: m.modified().unwrap_or(UNIX_EPOCH),
        ctime: UNIX_EPOCH + Duration::from_secs(m.ctime().max(0) as u64),
        file_type: if m.is_dir() { FileType::Dir } else { FileType::File },
    }
}

fn ebadf() -> io::Error {
    io::Error::from_raw_os_error(libc::EBADF)
}

pub struct Listener(tokio::sync::Mutex<mpsc::UnboundedReceiver<(DuplexStream, String)>>);

impl Os for TestOs {
    type Listener = Listener;
    type Stream = DuplexStream;

    async fn open(&self, path: &str, flags: OpenFlags) -> io::Result<Fd> {
        self.maybe_yield().await;
        let mut o = OpenOptions::new();
        o.read(flags.read).write(flags.write).append(flags.append).truncate(flags.truncate);
        if flags.exclusive {
            o.create_new(true);
        } else {
            o.create(flags.create);
        }
        let f = o.open(self.path(path))?;
        let fd = self.world.next_fd.get();
        self.world.next_fd.set(fd + 1);
        self.world.files.borrow_mut().insert(fd, f);
        Ok(fd)
    }
    async fn read(&self, fd: Fd, len: usize) -> io::Result<Vec<u8>> {
        let mut files = self.world.files.borrow_mut();
        let f = files.get_mut(&fd).ok_or_else(ebadf)?;
        let mut buf = vec![0u8; len];
        let n = f.read(&mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }
    async fn write(&self, fd: Fd, data: &[u8]) -> io::Result<()> {
        let mut files = self.world.files.borrow_mut();
        files.get_mut(&fd).ok_or_else(ebadf)?.write_all(data)
    }
    async fn seek(&self, fd: Fd, pos: u64) -> io::Result<()> {
        let mut files = self.world.files.borrow_mut();
        files.get_mut(&fd).ok_or_else(ebadf)?.seek(SeekFrom::Start(pos)).map(|_| ())
    }
    async fn set_len(&self, fd: Fd, len: u64) -> io::Result<()> {
        let files = self.world.files.borrow();
        files.get(&fd).ok_or_else(ebadf)?.set_len(len)
    }
    async fn fstat(&self, fd: Fd) -> io::Result<Metadata> {
        let files = self.world.files.borrow();
        Ok(meta(&files.get(&fd).ok_or_else(ebadf)?.metadata()?))
    }
    async fn fsync(&self, fd: Fd) -> io::Result<()> {
        let files = self.world.files.borrow();
        files.get(&fd).ok_or_else(ebadf)?.sync_all()
    }
    async fn close(&self, fd: Fd) -> io::Result<()> {
        self.world.files.borrow_mut().remove(&fd).map(|_| ()).ok_or_else(ebadf)
    }
    async fn stat(&self, path: &str) -> io::Result<Metadata> {
        self.maybe_yield().await;
        self.world.stat_log.borrow_mut().push(path.to_string());
        if let Some(e) = self.world.stat_faults.borrow().get(path) {
            return Err(io::Error::from_raw_os_error(*e));
        }
        Ok(meta(&fs::metadata(self.path(path))?))
    }
    async fn link(&self, existing: &str, new: &str) -> io::Result<()> {
        self.maybe_yield().await;
        fs::hard_link(self.path(existing), self.path(new))
    }
    async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.maybe_yield().await;
        fs::rename(self.path(from), self.path(to))
    }
    async fn unlink(&self, path: &str) -> io::Result<()> {
        self.maybe_yield().await;
        fs::remove_file(self.path(path))
    }
    async fn mkdir(&self, path: &str) -> io::Result<()> {
        fs::create_dir(self.path(path))
    }
    async fn rmdir(&self, path: &str) -> io::Result<()> {
        fs::remove_dir(self.path(path))
    }
    async fn read_dir(&self, path: &str) -> io::Result<Vec<String>> {
        let mut v: Vec<String> = fs::read_dir(self.path(path))?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<io::Result<_>>()?;
        v.sort();
        Ok(v)
    }
    async fn set_times(&self, path: &str, time: SetTime) -> io::Result<()> {
        self.maybe_yield().await;
        let t = match time {
            SetTime::ServerNow => self.world.clock.get(),
            SetTime::Explicit(t) => t,
        };
        File::options().write(true).open(self.path(path))?.set_modified(t)
    }
    fn now(&self) -> SystemTime {
        self.world.clock.get()
    }
    fn monotonic(&self) -> Duration {
        self.world.clock.get().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default()
    }
    async fn sleep(&self, duration: Duration) {
        self.advance(duration);
        tokio::task::yield_now().await;
    }
    fn random(&self) -> f64 {
        // splitmix64
        let mut z = self.world.rng.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        self.world.rng.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
    fn hostname(&self) -> String {
        "host1".to_string()
    }
    fn parent_pid(&self) -> Pid {
        1
    }
    fn pid(&self) -> Pid {
        self.pid
    }
    async fn spawn(&self, program: &str, args: &[String]) -> io::Result<Pid> {
        let child = self.fork();
        let pid = child.pid;
        let (program, args) = (program.to_string(), args.to_vec());
        let handle = tokio::task::spawn_local(async move { model::programs::run(child, &program, &args).await });
        self.world.children.borrow_mut().insert(pid, handle);
        Ok(pid)
    }
    async fn wait(&self, pid: Pid) -> io::Result<ExitStatus> {
        let handle = self.world.children.borrow_mut().remove(&pid);
        let handle = handle.ok_or_else(|| io::Error::from_raw_os_error(libc::ECHILD))?;
        let code = handle.await.expect("program panicked");
        Ok(ExitStatus::Code(code))
    }
    async fn kill(&self, pid: Pid, signal: Signal) -> io::Result<()> {
        self.send_signal(pid, signal);
        Ok(())
    }
    async fn alive(&self, pid: Pid) -> bool {
        self.world.children.borrow().get(&pid).is_some_and(|h| !h.is_finished())
    }
    fn take_signal(&self) -> Option<Signal> {
        let mut s = self.world.signals.borrow_mut();
        let q = s.get_mut(&self.pid)?;
        if q.is_empty() {
            None
        } else {
            Some(q.remove(0))
        }
    }
    async fn tcp_listen(&self, port: u16) -> io::Result<Listener> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut l = self.world.listeners.borrow_mut();
        if l.contains_key(&port) {
            return Err(io::Error::from_raw_os_error(libc::EADDRINUSE));
        }
        l.insert(port, tx);
        Ok(Listener(tokio::sync::Mutex::new(rx)))
    }
    async fn tcp_accept(&self, listener: &Listener) -> io::Result<(DuplexStream, Peer)> {
        let mut rx = listener.0.lock().await;
        let (stream, to) = rx.recv().await.ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        // One host: a connection to `localhost` is from this host, one to any
        // other name stands for a client elsewhere.
        let local = to == "localhost";
        Ok((stream, Peer { host: if local { to } else { "client".into() }, local }))
    }
    async fn tcp_connect(&self, host: &str, port: u16) -> io::Result<DuplexStream> {
        let tx = self.world.listeners.borrow().get(&port).cloned();
        let tx = tx.ok_or_else(|| io::Error::from_raw_os_error(libc::ECONNREFUSED))?;
        let (a, b) = tokio::io::duplex(1 << 16);
        tx.send((b, host.to_string())).map_err(|_| io::Error::from_raw_os_error(libc::ECONNREFUSED))?;
        Ok(a)
    }
    async fn tcp_read(&self, stream: &mut DuplexStream, buf: &mut [u8]) -> io::Result<usize> {
        stream.read(buf).await
    }
    async fn tcp_write(&self, stream: &mut DuplexStream, data: &[u8]) -> io::Result<()> {
        self.world.tcp_writes.borrow_mut().push((self.pid, data.to_vec()));
        stream.write_all(data).await
    }
    fn event(&self, event: ModelEvent) {
        self.world.events.borrow_mut().push((self.pid, event));
    }
}

/// Runs a future on a current-thread runtime inside a `LocalSet`.
pub fn block_on<F: Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, f)
}

pub fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// `bin/newlist` for list `name` with `members`, `subject_prefix` `[name %d]`
/// and `post_id` 7, through the real store.
pub async fn make_list(os: &TestOs, settings: &model::MailListSettings, name: &str, members: &[&str]) {
    let mut config = model::ListConfig::new(name, "lists.example.com", "example.net", 0);
    config.subject_prefix = format!("[{name} %d]");
    config.post_id = 7;
    config.members = members.iter().map(|m| m.to_string()).collect();
    // `bin/install` makes LOCK_DIR; nothing in the model does.
    fs::create_dir_all(os.path(model::LOCK_DIR)).expect("locks/");
    model::newlist(os, &model::LockCounter::new(), name, settings, config).await.expect("newlist");
}

/// A fresh list object's unlocked `Load()`: what a reader now sees.
pub async fn load_list(os: &TestOs, settings: &model::MailListSettings, name: &str) -> model::ListConfig {
    let mut mlist = model::MailList::new(os, &model::LockCounter::new(), name, settings.clone()).expect("name");
    mlist.load().await.expect("load");
    let config = mlist.config().clone();
    mlist.finalize().await.expect("finalize");
    config
}
