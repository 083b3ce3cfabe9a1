//! The `events` engine: a single-threaded discrete-event executor with a
//! nanosecond clock.
//!
//! It polls every ready task, in FIFO order of their wake-ups; when none is
//! ready it jumps the clock to the earliest timer and fires every timer due at
//! that instant (in `(deadline, insertion sequence)` order) before polling
//! again, so an idle millisecond costs nothing and messages that arrive at one
//! instant are all queued before their receiver runs (the NFS server then
//! shuffles such a batch from its own stream, see `nfs::server`).
//!
//! Tasks are `async-task` tasks whose schedule function pushes onto this
//! runtime's FIFO queue; nothing here draws a random number, so a run is a
//! function of the seed by construction. The network is simulated here too:
//! datagram mailboxes and byte-stream pipes per host, each message delivered by
//! a timer at `send time + link time` (see [`super::LinkTiming`]), with a
//! per-direction "busy until" so that a link serialises what it carries.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use async_task::{Runnable, Task};

use super::{Addr, NetConfig};

/// A host's software, started at boot and again at every restart.
pub type Software = Rc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>>>>>;

/// Polls allowed at one instant before the engine declares a livelock (a task
/// that wakes itself forever without letting time pass).
pub const POLLS_PER_INSTANT_MAX: u64 = 50_000_000;

/// What a timer does when it fires: wake a task, or deliver a message.
type Action = Box<dyn FnOnce(&Rc<Runtime>)>;

/// A directed link: (from, to) host names.
type Link = (Rc<str>, Rc<str>);

enum Timer {
    Wake(Waker),
    Deliver(Action),
}

struct Host {
    name: Rc<str>,
    alive: bool,
    software: Software,
    tasks: BTreeMap<u64, Task<()>>,
}

struct Mailbox {
    queue: VecDeque<(Box<dyn Any>, Addr)>,
    waker: Option<Waker>,
    /// Which bind owns this address (a stale socket's drop must not unbind a newer one).
    generation: u64,
}

#[derive(Default)]
struct Pipe {
    buf: VecDeque<u8>,
    eof: bool,
    reset: bool,
    waker: Option<Waker>,
}

struct ListenerState {
    backlog: VecDeque<(Stream, Rc<str>)>,
    waker: Option<Waker>,
    generation: u64,
}

type ReadyQueue = Arc<Mutex<VecDeque<Runnable>>>;

/// The runtime. Shared as `Rc<Runtime>`; every method runs with no borrow held
/// across a poll or a timer's action.
pub struct Runtime {
    now_ns: Cell<u64>,
    timers: RefCell<BTreeMap<(u64, u64), Timer>>,
    timer_seq: Cell<u64>,
    ready: ReadyQueue,
    hosts: RefCell<Vec<Host>>,
    task_next: Cell<u64>,
    finished: Rc<RefCell<Vec<(usize, u64)>>>,
    sockets: RefCell<BTreeMap<Addr, Mailbox>>,
    listeners: RefCell<BTreeMap<Addr, ListenerState>>,
    pipes: RefCell<BTreeMap<u64, Pipe>>,
    pipe_next: Cell<u64>,
    generation_next: Cell<u64>,
    /// Per directed link (or loopback), the time its transmitter is busy until.
    busy_until: RefCell<BTreeMap<Link, u64>>,
    partitions: RefCell<BTreeSet<Link>>,
    net: NetConfig,
    instants: Cell<u64>,
    error: RefCell<Option<String>>,
}

impl Runtime {
    pub fn new(net: NetConfig) -> Rc<Runtime> {
        Rc::new(Runtime {
            now_ns: Cell::new(0),
            timers: RefCell::new(BTreeMap::new()),
            timer_seq: Cell::new(0),
            ready: Arc::new(Mutex::new(VecDeque::new())),
            hosts: RefCell::new(Vec::new()),
            task_next: Cell::new(1),
            finished: Rc::new(RefCell::new(Vec::new())),
            sockets: RefCell::new(BTreeMap::new()),
            listeners: RefCell::new(BTreeMap::new()),
            pipes: RefCell::new(BTreeMap::new()),
            pipe_next: Cell::new(1),
            generation_next: Cell::new(1),
            busy_until: RefCell::new(BTreeMap::new()),
            partitions: RefCell::new(BTreeSet::new()),
            net,
            instants: Cell::new(0),
            error: RefCell::new(None),
        })
    }

    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.now_ns.get())
    }

    /// Distinct instants at which the engine woke up so far.
    pub fn instants(&self) -> u64 {
        self.instants.get()
    }

    fn generation(&self) -> u64 {
        let g = self.generation_next.get();
        self.generation_next.set(g + 1);
        g
    }

    // ---- hosts and tasks ----

    /// Registers a host and starts its software.
    pub fn add_host(self: &Rc<Self>, name: &str, software: Software) {
        let idx = {
            let mut hosts = self.hosts.borrow_mut();
            hosts.push(Host { name: name.into(), alive: true, software, tasks: BTreeMap::new() });
            hosts.len() - 1
        };
        self.start_software(idx);
    }

    fn host_index(&self, name: &str) -> Option<usize> {
        self.hosts.borrow().iter().position(|h| &*h.name == name)
    }

    fn start_software(self: &Rc<Self>, idx: usize) {
        let (software, name) = {
            let hosts = self.hosts.borrow();
            (hosts[idx].software.clone(), hosts[idx].name.clone())
        };
        let rt = Rc::downgrade(self);
        self.spawn_at(idx, async move {
            if let Err(e) = software().await {
                if let Some(rt) = rt.upgrade() {
                    rt.error.borrow_mut().get_or_insert(format!("host {name}: {e}"));
                }
            }
        });
    }

    /// Spawns a task on `host`; it dies with the host. Returns its id.
    pub fn spawn(self: &Rc<Self>, host: &str, future: impl Future<Output = ()> + 'static) -> Option<TaskId> {
        let idx = self.host_index(host)?;
        if !self.hosts.borrow()[idx].alive {
            return None;
        }
        Some(self.spawn_at(idx, future))
    }

    fn spawn_at(self: &Rc<Self>, idx: usize, future: impl Future<Output = ()> + 'static) -> TaskId {
        let id = self.task_next.get();
        self.task_next.set(id + 1);
        let finished = self.finished.clone();
        let wrapped = async move {
            future.await;
            finished.borrow_mut().push((idx, id));
        };
        let queue = self.ready.clone();
        let schedule = move |runnable: Runnable| queue.lock().expect("ready queue").push_back(runnable);
        let (runnable, task) = async_task::spawn_local(wrapped, schedule);
        self.hosts.borrow_mut()[idx].tasks.insert(id, task);
        runnable.schedule();
        TaskId { host: idx, id }
    }

    /// Cancels a task: its future is never polled again and is dropped by the
    /// executor (never inside this call).
    pub fn abort(&self, task: TaskId) {
        let t = self.hosts.borrow_mut()[task.host].tasks.remove(&task.id);
        drop(t);
    }

    /// Crashes a host: every task of it is cancelled and its endpoints close.
    pub fn crash(&self, host: &str) {
        let Some(idx) = self.host_index(host) else { return };
        let (tasks, name) = {
            let mut hosts = self.hosts.borrow_mut();
            hosts[idx].alive = false;
            (std::mem::take(&mut hosts[idx].tasks), hosts[idx].name.clone())
        };
        drop(tasks);
        self.sockets.borrow_mut().retain(|a, _| a.host != name);
        self.listeners.borrow_mut().retain(|a, _| a.host != name);
    }

    /// Boots a crashed host again: its software starts anew.
    pub fn restart(self: &Rc<Self>, host: &str) {
        let Some(idx) = self.host_index(host) else { return };
        let old = {
            let mut hosts = self.hosts.borrow_mut();
            hosts[idx].alive = true;
            std::mem::take(&mut hosts[idx].tasks)
        };
        drop(old);
        self.start_software(idx);
    }

    fn host_alive(&self, name: &str) -> bool {
        self.hosts.borrow().iter().any(|h| &*h.name == name && h.alive)
    }

    // ---- running ----

    fn pop_ready(&self) -> Option<Runnable> {
        self.ready.lock().expect("ready queue").pop_front()
    }

    fn run_ready(&self) -> Result<(), String> {
        let mut polls = 0u64;
        while let Some(runnable) = self.pop_ready() {
            runnable.run();
            polls += 1;
            if polls > POLLS_PER_INSTANT_MAX {
                return Err(format!(
                    "more than {POLLS_PER_INSTANT_MAX} task polls at {} ns without time passing: a livelock",
                    self.now_ns.get()
                ));
            }
        }
        let done = std::mem::take(&mut *self.finished.borrow_mut());
        if !done.is_empty() {
            let mut hosts = self.hosts.borrow_mut();
            for (idx, id) in done {
                hosts[idx].tasks.remove(&id);
            }
        }
        if let Some(e) = self.error.borrow_mut().take() {
            return Err(e);
        }
        Ok(())
    }

    /// Runs every event up to and including true time `until`, then sets the
    /// clock to `until`.
    pub fn run_until(self: &Rc<Self>, until: Duration) -> Result<(), String> {
        let until_ns = until.as_nanos() as u64;
        loop {
            self.run_ready()?;
            let next = self.timers.borrow().first_key_value().map(|(k, _)| k.0);
            match next {
                Some(t) if t <= until_ns => {
                    self.now_ns.set(t.max(self.now_ns.get()));
                    self.instants.set(self.instants.get() + 1);
                    self.fire_due(t);
                }
                _ => {
                    self.now_ns.set(until_ns.max(self.now_ns.get()));
                    return Ok(());
                }
            }
        }
    }

    /// Fires every timer due at `t`, including those its actions add for `t`.
    fn fire_due(self: &Rc<Self>, t: u64) {
        loop {
            let timer = {
                let mut timers = self.timers.borrow_mut();
                match timers.first_entry() {
                    Some(e) if e.key().0 <= t => e.remove(),
                    _ => return,
                }
            };
            match timer {
                Timer::Wake(w) => w.wake(),
                Timer::Deliver(f) => f(self),
            }
        }
    }

    /// Cancels every task and drops every future (breaking the cycles between
    /// the runtime and the futures that hold it).
    pub fn shutdown(&self) {
        loop {
            let tasks: Vec<Task<()>> =
                self.hosts.borrow_mut().iter_mut().flat_map(|h| std::mem::take(&mut h.tasks).into_values()).collect();
            let timers = std::mem::take(&mut *self.timers.borrow_mut());
            let idle = tasks.is_empty() && timers.is_empty();
            drop(tasks);
            drop(timers);
            while let Some(r) = self.pop_ready() {
                drop(r);
            }
            if idle {
                break;
            }
        }
        self.sockets.borrow_mut().clear();
        self.listeners.borrow_mut().clear();
        self.pipes.borrow_mut().clear();
    }

    // ---- timers ----

    fn add_timer(&self, at_ns: u64, timer: Timer) -> (u64, u64) {
        let seq = self.timer_seq.get();
        self.timer_seq.set(seq + 1);
        let key = (at_ns, seq);
        self.timers.borrow_mut().insert(key, timer);
        key
    }

    fn deliver_at(&self, at_ns: u64, f: impl FnOnce(&Rc<Runtime>) + 'static) {
        self.add_timer(at_ns, Timer::Deliver(Box::new(f)));
    }

    // ---- links ----

    fn partitioned(&self, a: &Rc<str>, b: &Rc<str>) -> bool {
        let p = self.partitions.borrow();
        !p.is_empty() && (p.contains(&(a.clone(), b.clone())) || p.contains(&(b.clone(), a.clone())))
    }

    pub fn partition(&self, a: &str, b: &str) {
        self.partitions.borrow_mut().insert((a.into(), b.into()));
    }

    pub fn repair(&self, a: &str, b: &str) {
        let mut p = self.partitions.borrow_mut();
        p.remove(&(Rc::<str>::from(a), Rc::<str>::from(b)));
        p.remove(&(Rc::<str>::from(b), Rc::<str>::from(a)));
    }

    /// When a message of `bytes` sent now from `from` to `to` arrives: the
    /// link's transmitter sends it once it is free, then it travels the link's latency.
    fn arrival_ns(&self, from: &Rc<str>, to: &Rc<str>, bytes: usize) -> u64 {
        let timing = if from == to { &self.net.loopback } else { &self.net.lan };
        let now = self.now_ns.get();
        let tx = timing.transmission_ns(bytes);
        let mut busy = self.busy_until.borrow_mut();
        let slot = busy.entry((from.clone(), to.clone())).or_insert(0);
        let start = (*slot).max(now);
        *slot = start + tx;
        start + tx + timing.latency_ns
    }

    // ---- datagrams ----

    pub fn bind(&self, addr: Addr) -> Result<u64, i32> {
        let mut sockets = self.sockets.borrow_mut();
        if sockets.contains_key(&addr) {
            return Err(libc::EADDRINUSE);
        }
        let generation = self.generation();
        sockets.insert(addr, Mailbox { queue: VecDeque::new(), waker: None, generation });
        Ok(generation)
    }

    pub fn unbind(&self, addr: &Addr, generation: u64) {
        let mut sockets = self.sockets.borrow_mut();
        if sockets.get(addr).is_some_and(|m| m.generation == generation) {
            sockets.remove(addr);
        }
    }

    pub fn send_datagram(&self, from: &Addr, to: &Addr, msg: Box<dyn Any>, extra: Duration, bytes: usize) {
        if self.partitioned(&from.host, &to.host) {
            return;
        }
        let at = self.arrival_ns(&from.host, &to.host, bytes) + extra.as_nanos() as u64;
        let (from, to) = (from.clone(), to.clone());
        self.deliver_at(at, move |rt| {
            if rt.partitioned(&from.host, &to.host) {
                return;
            }
            let waker = {
                let mut sockets = rt.sockets.borrow_mut();
                let Some(mb) = sockets.get_mut(&to) else { return };
                mb.queue.push_back((msg, from));
                mb.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        });
    }

    pub fn poll_datagram(&self, addr: &Addr, cx: &mut Context<'_>) -> Poll<(Box<dyn Any>, Addr)> {
        let mut sockets = self.sockets.borrow_mut();
        let Some(mb) = sockets.get_mut(addr) else { return Poll::Pending };
        match mb.queue.pop_front() {
            Some(m) => Poll::Ready(m),
            None => {
                mb.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    pub fn try_datagram(&self, addr: &Addr) -> Option<(Box<dyn Any>, Addr)> {
        self.sockets.borrow_mut().get_mut(addr).and_then(|mb| mb.queue.pop_front())
    }

    // ---- streams ----

    pub fn listen(&self, addr: Addr) -> Result<u64, i32> {
        let mut listeners = self.listeners.borrow_mut();
        if listeners.contains_key(&addr) {
            return Err(libc::EADDRINUSE);
        }
        let generation = self.generation();
        listeners.insert(addr, ListenerState { backlog: VecDeque::new(), waker: None, generation });
        Ok(generation)
    }

    pub fn unlisten(&self, addr: &Addr, generation: u64) {
        let dropped = {
            let mut listeners = self.listeners.borrow_mut();
            match listeners.get(addr) {
                Some(l) if l.generation == generation => listeners.remove(addr),
                _ => None,
            }
        };
        // Connections never accepted are reset (their Stream drops run here, with no borrow held).
        drop(dropped);
    }

    pub fn poll_accept(&self, addr: &Addr, cx: &mut Context<'_>) -> Poll<(Stream, Rc<str>)> {
        let mut listeners = self.listeners.borrow_mut();
        let Some(l) = listeners.get_mut(addr) else { return Poll::Pending };
        match l.backlog.pop_front() {
            Some(s) => Poll::Ready(s),
            None => {
                l.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    fn new_pipe(&self) -> u64 {
        let id = self.pipe_next.get();
        self.pipe_next.set(id + 1);
        self.pipes.borrow_mut().insert(id, Pipe::default());
        id
    }

    /// Opens a connection from `local` to `to`: the SYN travels one way, the
    /// listener queues the connection, the SYN-ACK travels back. No listener:
    /// ECONNREFUSED after the round trip. A partition: ETIMEDOUT after 1 s
    /// (SYN retransmission is not modelled).
    pub fn connect(self: &Rc<Self>, local: Rc<str>, to: Addr) -> tokio::sync::oneshot::Receiver<Result<Stream, i32>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.partitioned(&local, &to.host) {
            let at = self.now_ns.get() + 1_000_000_000;
            self.deliver_at(at, move |_| {
                let _ = tx.send(Err(libc::ETIMEDOUT));
            });
            return rx;
        }
        let syn = self.arrival_ns(&local, &to.host, 60);
        self.deliver_at(syn, move |rt| {
            let accepted = {
                let listeners = rt.listeners.borrow();
                listeners.contains_key(&to) && !rt.partitioned(&local, &to.host)
            };
            let back = rt.arrival_ns(&to.host, &local, 60);
            if !accepted {
                rt.deliver_at(back, move |_| {
                    let _ = tx.send(Err(libc::ECONNREFUSED));
                });
                return;
            }
            let (c2s, s2c) = (rt.new_pipe(), rt.new_pipe());
            let server_end = Stream { rt: rt.clone(), local: to.host.clone(), peer: local.clone(), rx: c2s, tx: s2c };
            let client_end = Stream { rt: rt.clone(), local: local.clone(), peer: to.host.clone(), rx: s2c, tx: c2s };
            let waker = {
                let mut listeners = rt.listeners.borrow_mut();
                let l = listeners.get_mut(&to).expect("checked above");
                l.backlog.push_back((server_end, local.clone()));
                l.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
            rt.deliver_at(back, move |_| {
                let _ = tx.send(Ok(client_end));
            });
        });
        rx
    }

    fn pipe_deliver(&self, from: &Rc<str>, to: &Rc<str>, pipe: u64, data: Option<Vec<u8>>, reset: bool) {
        if self.partitioned(from, to) {
            return;
        }
        let bytes = data.as_ref().map_or(60, |d| d.len() + 60);
        let at = self.arrival_ns(from, to, bytes);
        self.deliver_at(at, move |rt| {
            let waker = {
                let mut pipes = rt.pipes.borrow_mut();
                let Some(p) = pipes.get_mut(&pipe) else { return };
                match data {
                    Some(d) => p.buf.extend(d),
                    None if reset => p.reset = true,
                    None => p.eof = true,
                }
                p.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        });
    }
}

/// A task's handle, for [`Runtime::abort`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskId {
    host: usize,
    id: u64,
}

/// A timer future: ready once the clock reaches its deadline. A deadline that
/// has already passed still yields once, as `nanosleep(0)` enters the kernel.
pub struct Sleep {
    rt: Rc<Runtime>,
    deadline_ns: u64,
    key: Option<(u64, u64)>,
    yielded: bool,
}

impl Sleep {
    pub fn until(rt: Rc<Runtime>, deadline: Duration) -> Sleep {
        Sleep { rt, deadline_ns: deadline.as_nanos() as u64, key: None, yielded: false }
    }
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let now = self.rt.now_ns.get();
        if self.deadline_ns <= now {
            if self.key.is_none() && !self.yielded {
                self.yielded = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.key = None;
            return Poll::Ready(());
        }
        match self.key {
            None => {
                let key = self.rt.add_timer(self.deadline_ns, Timer::Wake(cx.waker().clone()));
                self.key = Some(key);
            }
            Some(key) => {
                if let Some(Timer::Wake(w)) = self.rt.timers.borrow_mut().get_mut(&key) {
                    if !w.will_wake(cx.waker()) {
                        *w = cx.waker().clone();
                    }
                }
            }
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        // No timer borrow is ever held while a future is dropped (see `Runtime`).
        if let Some(key) = self.key.take() {
            self.rt.timers.borrow_mut().remove(&key);
        }
    }
}

/// One end of a simulated byte stream. Dropping it sends a FIN (or, when its
/// host has crashed, a reset) after the data already written.
pub struct Stream {
    rt: Rc<Runtime>,
    local: Rc<str>,
    peer: Rc<str>,
    rx: u64,
    tx: u64,
}

impl Stream {
    pub fn write(&self, data: &[u8]) -> Result<(), i32> {
        // The peer's read end is gone (it closed or its host crashed).
        if !self.rt.pipes.borrow().contains_key(&self.tx) {
            return Err(libc::EPIPE);
        }
        self.rt.pipe_deliver(&self.local, &self.peer, self.tx, Some(data.to_vec()), false);
        Ok(())
    }

    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<Result<usize, i32>> {
        let mut pipes = self.rt.pipes.borrow_mut();
        let Some(p) = pipes.get_mut(&self.rx) else { return Poll::Ready(Err(libc::ECONNRESET)) };
        if !p.buf.is_empty() {
            let n = buf.len().min(p.buf.len());
            for (dst, src) in buf.iter_mut().zip(p.buf.drain(..n)) {
                *dst = src;
            }
            return Poll::Ready(Ok(n));
        }
        if p.reset {
            return Poll::Ready(Err(libc::ECONNRESET));
        }
        if p.eof {
            return Poll::Ready(Ok(0));
        }
        p.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let reset = !self.rt.host_alive(&self.local);
        self.rt.pipes.borrow_mut().remove(&self.rx);
        self.rt.pipe_deliver(&self.local, &self.peer, self.tx, None, reset);
    }
}
