//! `SimOs`: the `model::Os` trait on a simulated process.
//!
//! This adapter is the only place where the model's vocabulary meets the sim's.
//! It converts flags, times and errors, and turns model annotations into trace
//! notes whose payload is the typed `ModelEvent`, so oracles can read them back.

use std::io;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use model::{ExitStatus, Fd, FileType, Metadata, ModelEvent, OpenFlags, Os, Peer, Pid, SetTime, Signal};
use sim::{Attr, Flags, Proc, ProcStatus};

pub struct SimOs {
    proc: Proc,
}

impl SimOs {
    pub fn new(proc: Proc) -> SimOs {
        SimOs { proc }
    }
}

fn err(errno: i32) -> io::Error {
    io::Error::from_raw_os_error(errno)
}

fn metadata(a: Attr) -> Metadata {
    Metadata {
        ino: a.attr.fileid,
        nlink: a.attr.nlink as u64,
        size: a.attr.size,
        mtime: sim::to_system_time(a.attr.mtime),
        ctime: sim::to_system_time(a.attr.ctime),
        file_type: if a.attr.ftype == sim::nfs::proto::Ftype::Dir { FileType::Dir } else { FileType::File },
    }
}

fn flags(f: OpenFlags) -> Flags {
    Flags {
        read: f.read,
        write: f.write,
        create: f.create,
        exclusive: f.exclusive,
        truncate: f.truncate,
        append: f.append,
    }
}

pub fn signal_number(s: Signal) -> i32 {
    match s {
        Signal::Term => libc::SIGTERM,
        Signal::Int => libc::SIGINT,
        Signal::Hup => libc::SIGHUP,
        Signal::Kill => libc::SIGKILL,
    }
}

pub(crate) fn signal_from(n: i32) -> Option<Signal> {
    match n {
        libc::SIGTERM => Some(Signal::Term),
        libc::SIGINT => Some(Signal::Int),
        libc::SIGHUP => Some(Signal::Hup),
        libc::SIGKILL => Some(Signal::Kill),
        _ => None,
    }
}

impl Os for SimOs {
    type Listener = sim::TcpListener;
    type Stream = sim::TcpStream;

    async fn open(&self, path: &str, f: OpenFlags) -> io::Result<Fd> {
        self.proc.open(path, flags(f)).await.map_err(err)
    }
    async fn read(&self, fd: Fd, len: usize) -> io::Result<Vec<u8>> {
        self.proc.read(fd, len).await.map_err(err)
    }
    async fn write(&self, fd: Fd, data: &[u8]) -> io::Result<()> {
        self.proc.write(fd, data).await.map_err(err)
    }
    async fn seek(&self, fd: Fd, pos: u64) -> io::Result<()> {
        self.proc.seek(fd, pos).await.map_err(err)
    }
    async fn set_len(&self, fd: Fd, len: u64) -> io::Result<()> {
        self.proc.set_len(fd, len).await.map_err(err)
    }
    async fn fstat(&self, fd: Fd) -> io::Result<Metadata> {
        self.proc.fstat(fd).await.map(metadata).map_err(err)
    }
    async fn fsync(&self, fd: Fd) -> io::Result<()> {
        self.proc.fsync(fd).await.map_err(err)
    }
    async fn close(&self, fd: Fd) -> io::Result<()> {
        self.proc.close(fd).await.map_err(err)
    }
    async fn stat(&self, path: &str) -> io::Result<Metadata> {
        self.proc.stat(path).await.map(metadata).map_err(err)
    }
    async fn link(&self, existing: &str, new: &str) -> io::Result<()> {
        self.proc.link(existing, new).await.map_err(err)
    }
    async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.proc.rename(from, to).await.map_err(err)
    }
    async fn unlink(&self, path: &str) -> io::Result<()> {
        self.proc.unlink(path).await.map_err(err)
    }
    async fn mkdir(&self, path: &str) -> io::Result<()> {
        self.proc.mkdir(path).await.map_err(err)
    }
    async fn rmdir(&self, path: &str) -> io::Result<()> {
        self.proc.rmdir(path).await.map_err(err)
    }
    async fn read_dir(&self, path: &str) -> io::Result<Vec<String>> {
        self.proc.read_dir(path).await.map_err(err)
    }
    async fn set_times(&self, path: &str, time: SetTime) -> io::Result<()> {
        let t = match time {
            SetTime::ServerNow => None,
            SetTime::Explicit(t) => Some(sim::from_system_time(t)),
        };
        self.proc.set_times(path, t).await.map_err(err)
    }
    fn now(&self) -> SystemTime {
        self.proc.now()
    }
    async fn sleep(&self, duration: Duration) {
        self.proc.sleep(duration).await
    }
    fn random(&self) -> f64 {
        self.proc.random()
    }
    fn monotonic(&self) -> Duration {
        self.proc.monotonic()
    }
    fn hostname(&self) -> String {
        self.proc.host().to_string()
    }
    fn pid(&self) -> Pid {
        self.proc.pid()
    }
    fn parent_pid(&self) -> Pid {
        self.proc.parent().unwrap_or(1)
    }
    async fn spawn(&self, program: &str, args: &[String]) -> io::Result<Pid> {
        self.proc.spawn(program, args).await.map_err(err)
    }
    async fn wait(&self, pid: Pid) -> io::Result<ExitStatus> {
        match self.proc.wait(pid).await.map_err(err)? {
            ProcStatus::Code(c) => Ok(ExitStatus::Code(c)),
            ProcStatus::Signaled(s) => Ok(ExitStatus::Signaled(signal_from(s).unwrap_or(Signal::Kill))),
        }
    }
    async fn kill(&self, pid: Pid, signal: Signal) -> io::Result<()> {
        self.proc.kill(pid, signal_number(signal)).await.map_err(err)
    }
    async fn alive(&self, pid: Pid) -> bool {
        self.proc.alive(pid).await
    }
    fn take_signal(&self) -> Option<Signal> {
        self.proc.take_signal().and_then(signal_from)
    }
    async fn tcp_listen(&self, port: u16) -> io::Result<Self::Listener> {
        self.proc.tcp_listen(port).await.map_err(err)
    }
    async fn tcp_accept(&self, listener: &Self::Listener) -> io::Result<(Self::Stream, Peer)> {
        let (stream, host) = self.proc.tcp_accept(listener).await.map_err(err)?;
        // The events engine names the connecting host; turmoil's loopback
        // address has no name and reads as `localhost`.
        let local = host == "localhost" || host == self.proc.host();
        Ok((stream, Peer { host, local }))
    }
    async fn tcp_connect(&self, host: &str, port: u16) -> io::Result<Self::Stream> {
        self.proc.tcp_connect(host, port).await.map_err(err)
    }
    async fn tcp_read(&self, stream: &mut Self::Stream, buf: &mut [u8]) -> io::Result<usize> {
        self.proc.tcp_read(stream, buf).await.map_err(err)
    }
    async fn tcp_write(&self, stream: &mut Self::Stream, data: &[u8]) -> io::Result<()> {
        self.proc.tcp_write(stream, data).await.map_err(err)
    }
    fn event(&self, event: ModelEvent) {
        let text = serde_json::to_string(&event).expect("ModelEvent serialises");
        self.proc.note(text, Rc::new(event));
    }
}

impl crate::kernel::Kernel for SimOs {
    async fn fork(&self, program: &str, args: &[String]) -> io::Result<Pid> {
        self.proc.fork(program, args).await.map_err(err)
    }
    async fn pipe(&self) -> io::Result<(u32, u32)> {
        self.proc.pipe().await.map_err(err)
    }
    async fn pipe_read(&self, end: u32, len: usize) -> io::Result<Vec<u8>> {
        self.proc.pipe_read(end, len).await.map_err(err)
    }
    async fn pipe_write(&self, end: u32, data: &[u8]) -> io::Result<usize> {
        self.proc.pipe_write(end, data).await.map_err(err)
    }
    async fn pipe_close(&self, end: u32) -> io::Result<()> {
        self.proc.pipe_close(end).await.map_err(err)
    }
    async fn sem_open(&self, name: &str, create: bool, exclusive: bool, value: u32) -> io::Result<u32> {
        self.proc.sem_open(name, create, exclusive, value).await.map_err(err)
    }
    async fn sem_wait(&self, sem: u32, timeout: Option<Duration>) -> io::Result<()> {
        self.proc.sem_wait(sem, timeout).await.map_err(err)
    }
    async fn sem_post(&self, sem: u32) -> io::Result<()> {
        self.proc.sem_post(sem).await.map_err(err)
    }
    async fn sem_value(&self, sem: u32) -> io::Result<u32> {
        self.proc.sem_value(sem).await.map_err(err)
    }
    async fn sem_close(&self, sem: u32) -> io::Result<()> {
        self.proc.sem_close(sem).await.map_err(err)
    }
    async fn sem_unlink(&self, name: &str) -> io::Result<()> {
        self.proc.sem_unlink(name).await.map_err(err)
    }
    async fn poll(&self, asked: &[(u32, u16)], timeout: Option<Duration>) -> io::Result<Vec<u16>> {
        self.proc.poll(asked, timeout).await.map_err(err)
    }
}
