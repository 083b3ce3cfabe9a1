//! A simulated process and the sim gate every one of its calls passes through.
//!
//! A process is (host, pid, incarnation) and runs as its own task on its host's
//! `LocalSet`. Its handle offers what an `Os` offers, in the sim's own terms;
//! the adapter to `model::Os` lives in `scenarios`.
//!
//! **The gate.** Every call first passes [`Proc::gate`], which
//! 1. stops a revoked (crashed) process for good: the call never returns, so no
//!    call issued after a crash gets through, even before the task abort lands;
//! 2. counts the call against the world's per-step cap, turning a livelock into a
//!    liveness verdict;
//! 3. under the `pct` scheduler, counts the call toward the next priority change
//!    point and waits whole steps while a higher-priority process is running
//!    ([`crate::sched`]; the default scheduler skips this entirely);
//! 4. stalls the process, with chance `stall_ppm` per call, for a long-tailed
//!    number of ms drawn from the process's own stall stream ([`crate::GateConfig`]),
//!    standing in for the OS scheduler and paging;
//! 5. charges the configured CPU cost, and sleeps 1 ms whenever the charge reaches
//!    1 ms, so a loop over cached answers cannot freeze simulated time.
//!
//! Calls are recorded as `Call` events when they return. `now`, `random`,
//! `hostname` and `pid` are charged but not recorded: they cannot fail, and the
//! values they return shape the calls that are recorded.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use crate::clock::{true_now, ClockConfig};
use crate::engine;
pub use crate::engine::{TcpListener, TcpStream};
use crate::nfs::client::{Attr, Ctx, Flags, NfsClient, Res};
use crate::pipe::Ends;
use crate::rng::Rng;
use crate::sched::ProcKey;
use crate::sem::Sems;
use crate::trace::{EventKind, Outcome};
use crate::world::{ProcStatus, World};

struct Inner {
    world: World,
    host: Rc<str>,
    pid: u32,
    /// The process that spawned this one; `None` for a host's boot programs.
    parent: Option<u32>,
    incarnation: u32,
    alive: Cell<bool>,
    signals: RefCell<VecDeque<i32>>,
    cost: Cell<Duration>,
    rng: RefCell<Rng>,
    /// Stalls at the gate draw from their own stream, so turning them on does not
    /// shift the values `random()` returns.
    stall_rng: RefCell<Rng>,
    /// The scheduling priority under `pct` (higher runs first); `None` under the
    /// default scheduler.
    priority: Cell<Option<u64>>,
    clock: ClockConfig,
    client: Rc<NfsClient>,
    held: Held,
}

/// What a process holds of its host's kernel besides files: its pipe ends
/// ([`crate::pipe`]) and open named semaphores ([`crate::sem`]). A fork's child
/// starts with a copy.
#[derive(Default)]
pub(crate) struct Held {
    ends: Ends,
    sems: Sems,
}

impl Held {
    fn fork(&self) -> Held {
        Held { ends: self.ends.fork(), sems: self.sems.fork() }
    }

    /// Lets go of everything, as the kernel does when the process exits or is
    /// killed: its pipe ends close (a semaphore needs no closing).
    pub(crate) fn close(&self) {
        self.ends.close_all();
    }
}

/// A handle to one simulated process.
#[derive(Clone)]
pub struct Proc(Rc<Inner>);

fn render_attr(a: &Attr) -> String {
    format!(
        "ino={} nlink={} size={} mtime={} ctime={} {}",
        a.attr.fileid,
        a.attr.nlink,
        a.attr.size,
        a.attr.mtime,
        a.attr.ctime,
        if a.attr.ftype == crate::nfs::proto::Ftype::Dir { "dir" } else { "file" }
    )
}

fn render_names(names: &[String]) -> String {
    let mut s = format!("n={}", names.len());
    if names.len() <= 8 {
        for n in names {
            let _ = write!(s, " {n:?}");
        }
    } else {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for n in names {
            h.update(n.as_bytes());
            h.update(b"\n");
        }
        let _ = write!(s, " h={:016x}", h.digest());
    }
    s
}

impl Proc {
    pub(crate) fn new(
        world: World,
        host: Rc<str>,
        pid: u32,
        parent: Option<u32>,
        incarnation: u32,
        client: Rc<NfsClient>,
        held: Held,
    ) -> Proc {
        let rng = Rng::stream(world.seed(), &format!("proc/{host}/{incarnation}/{pid}"));
        let stall_rng = Rng::stream(world.seed(), &format!("proc/{host}/{incarnation}/{pid}/stall"));
        let clock = world.host_clock(&host);
        let priority = world.sched_priority_at_start(&ProcKey { host: host.clone(), incarnation, pid });
        Proc(Rc::new(Inner {
            world,
            host,
            pid,
            parent,
            incarnation,
            alive: Cell::new(true),
            signals: RefCell::new(VecDeque::new()),
            cost: Cell::new(Duration::ZERO),
            rng: RefCell::new(rng),
            stall_rng: RefCell::new(stall_rng),
            priority: Cell::new(priority),
            clock,
            client,
            held,
        }))
    }

    pub fn host(&self) -> &str {
        &self.0.host
    }

    pub(crate) fn host_rc(&self) -> Rc<str> {
        self.0.host.clone()
    }

    pub fn pid(&self) -> u32 {
        self.0.pid
    }

    /// The pid of the process that spawned this one (`None` for a boot program).
    pub fn parent(&self) -> Option<u32> {
        self.0.parent
    }

    pub fn incarnation(&self) -> u32 {
        self.0.incarnation
    }

    pub fn world(&self) -> &World {
        &self.0.world
    }

    /// The scheduling priority under `pct`; `None` under the default scheduler.
    pub fn priority(&self) -> Option<u64> {
        self.0.priority.get()
    }

    fn key(&self) -> ProcKey {
        ProcKey { host: self.0.host.clone(), incarnation: self.0.incarnation, pid: self.0.pid }
    }

    pub(crate) fn revoke(&self) {
        self.0.alive.set(false);
    }

    /// Lets go of the process's pipe ends and semaphores ([`Held::close`]).
    pub(crate) fn close_held(&self) {
        self.0.held.close();
    }

    pub fn is_alive(&self) -> bool {
        self.0.alive.get()
    }

    pub(crate) fn deliver_signal(&self, signal: i32) {
        self.0.signals.borrow_mut().push_back(signal);
    }

    /// Charges one call's CPU cost; true when the charge has reached 1 ms.
    fn charge(&self) -> bool {
        let cost = self.0.cost.get() + self.0.world.cpu_cost();
        if cost >= Duration::from_millis(1) {
            self.0.cost.set(cost - Duration::from_millis(1));
            true
        } else {
            self.0.cost.set(cost);
            false
        }
    }

    /// The sim gate (see the module docs).
    async fn gate(&self) {
        if !self.is_alive() || !self.0.world.charge_op(&self.0.host, self.0.pid) {
            std::future::pending::<()>().await;
        }
        if self.priority().is_some() {
            self.schedule().await;
        }
        let stall_ms = {
            let gate = &self.0.world.config().gate;
            let mut rng = self.0.stall_rng.borrow_mut();
            // No stall after the heal (`World::heal`); the stream is this one's alone.
            if !self.0.world.healed() && rng.chance_ppm(gate.stall_ppm) {
                gate.draw_stall_ms(&mut rng)
            } else {
                0
            }
        };
        if stall_ms > 0 {
            self.0.world.count(|c| {
                c.stalls += 1;
                c.stall_ms_total += stall_ms;
            });
            engine::sleep(Duration::from_millis(stall_ms)).await;
            self.after().await;
        }
        if self.charge() {
            engine::sleep(Duration::from_millis(1)).await;
        }
    }

    /// The `pct` part of the gate (see [`crate::sched`]): a change point reached
    /// by this call lowers this process's priority; the call yields once so that
    /// its host's other ready processes reach the gate in this step too, then
    /// waits whole steps, at most `defer_ms_max`, while a process of higher
    /// priority waits at the gate or passed it in this step or the previous one.
    async fn schedule(&self) {
        let world = &self.0.world;
        let key = self.key();
        let (lowered, defer_ms_max) = world.with_sched(|s| (s.count_call(), s.defer_ms_max()));
        if let Some(priority) = lowered {
            self.0.priority.set(Some(priority));
            let call = world.with_sched(|s| s.calls());
            world.fault(format!("sched pct: call {call} lowers {}/{} to priority {priority}", key.host, key.pid));
        }
        let priority = self.priority().expect("pct");
        world.with_sched(|s| s.arrive(&key, priority, world.step()));
        engine::yield_now().await;
        self.after().await;
        let mut deferred = 0;
        while deferred < defer_ms_max && world.with_sched(|s| s.must_wait(&key, priority, world.step())) {
            world.with_sched(|s| s.deferred());
            engine::sleep(Duration::from_millis(1)).await;
            self.after().await;
            world.with_sched(|s| s.arrive(&key, priority, world.step()));
            deferred += 1;
        }
        world.with_sched(|s| s.pass(&key, priority, world.step()));
    }

    /// After a call: a process crashed while the call was in flight never sees its result.
    async fn after(&self) {
        if !self.is_alive() {
            std::future::pending::<()>().await;
        }
    }

    /// One system call through the sim gate: the gate, then `op` on a fresh
    /// span, recorded as a `Call` event with `args` and its rendered result,
    /// then the crash check (a process that crashed while the call was in
    /// flight never sees its result). Every call of `Proc` goes through here.
    async fn call<T>(
        &self,
        op: &'static str,
        args: String,
        f: impl AsyncFnOnce(&Ctx) -> Res<T>,
        render: impl Fn(&T) -> String,
    ) -> Res<T> {
        self.gate().await;
        let (ctx, t0) = self.begin();
        let r = f(&ctx).await;
        self.end(ctx, t0, op, args, &r, render);
        self.after().await;
        r
    }

    fn begin(&self) -> (Ctx, Duration) {
        (Ctx::new(self.0.world.next_span(), self.0.pid), true_now())
    }

    fn end<T>(
        &self,
        ctx: Ctx,
        started: Duration,
        op: &'static str,
        args: String,
        result: &Res<T>,
        render: impl Fn(&T) -> String,
    ) {
        let outcome: Outcome = match result {
            Ok(v) => Ok(render(v)),
            Err(e) => Err(*e),
        };
        self.0.world.record(EventKind::Call {
            span: ctx.span,
            host: self.0.host.clone(),
            pid: self.0.pid,
            op,
            args,
            outcome,
            served_by: ctx.served_by(),
            started,
        });
    }

    // ---- clock and identity ----

    /// This host's wall clock.
    pub fn now(&self) -> SystemTime {
        let _ = self.charge();
        self.0.clock.wall(true_now())
    }

    /// True simulated time since the world began: `CLOCK_MONOTONIC`, which no
    /// host clock offset, drift or step touches.
    pub fn monotonic(&self) -> Duration {
        let _ = self.charge();
        true_now()
    }

    pub fn random(&self) -> f64 {
        let _ = self.charge();
        self.0.rng.borrow_mut().unit_f64()
    }

    pub async fn sleep(&self, d: Duration) {
        self.gate().await;
        engine::sleep(d).await;
        self.after().await;
    }

    pub fn take_signal(&self) -> Option<i32> {
        self.0.signals.borrow_mut().pop_front()
    }

    // ---- files ----

    pub async fn open(&self, path: &str, flags: Flags) -> Res<u32> {
        self.call(
            "open",
            format!("{path:?} {}", flags_text(flags)),
            async |ctx: &Ctx| self.0.client.open(ctx, path, flags).await,
            |fd| format!("fd={fd}"),
        )
        .await
    }

    pub async fn read(&self, fd: u32, len: usize) -> Res<Vec<u8>> {
        self.call(
            "read",
            format!("fd={fd} n={len}"),
            async |ctx: &Ctx| self.0.client.read(ctx, fd, len).await,
            |d| format!("n={}", d.len()),
        )
        .await
    }

    pub async fn write(&self, fd: u32, data: &[u8]) -> Res<()> {
        self.call(
            "write",
            format!("fd={fd} n={}", data.len()),
            async |ctx: &Ctx| self.0.client.write(ctx, fd, data).await,
            |_| String::new(),
        )
        .await
    }

    pub async fn seek(&self, fd: u32, pos: u64) -> Res<()> {
        self.call(
            "seek",
            format!("fd={fd} pos={pos}"),
            async |_ctx: &Ctx| self.0.client.seek(self.0.pid, fd, pos),
            |_| String::new(),
        )
        .await
    }

    pub async fn set_len(&self, fd: u32, len: u64) -> Res<()> {
        self.call(
            "ftruncate",
            format!("fd={fd} len={len}"),
            async |ctx: &Ctx| self.0.client.set_len(ctx, fd, len).await,
            |_| String::new(),
        )
        .await
    }

    pub async fn fstat(&self, fd: u32) -> Res<Attr> {
        self.call("fstat", format!("fd={fd}"), async |ctx: &Ctx| self.0.client.fstat(ctx, fd).await, render_attr).await
    }

    pub async fn fsync(&self, fd: u32) -> Res<()> {
        self.call("fsync", format!("fd={fd}"), async |ctx: &Ctx| self.0.client.fsync(ctx, fd).await, |_| String::new())
            .await
    }

    pub async fn close(&self, fd: u32) -> Res<()> {
        self.call("close", format!("fd={fd}"), async |ctx: &Ctx| self.0.client.close(ctx, fd).await, |_| String::new())
            .await
    }

    pub async fn stat(&self, path: &str) -> Res<Attr> {
        self.call("stat", format!("{path:?}"), async |ctx: &Ctx| self.0.client.stat(ctx, path).await, render_attr).await
    }

    pub async fn link(&self, existing: &str, new: &str) -> Res<()> {
        self.call(
            "link",
            format!("{existing:?} {new:?}"),
            async |ctx: &Ctx| self.0.client.link(ctx, existing, new).await,
            |_| String::new(),
        )
        .await
    }

    pub async fn rename(&self, from: &str, to: &str) -> Res<()> {
        self.call(
            "rename",
            format!("{from:?} {to:?}"),
            async |ctx: &Ctx| self.0.client.rename(ctx, from, to).await,
            |_| String::new(),
        )
        .await
    }

    pub async fn unlink(&self, path: &str) -> Res<()> {
        self.call(
            "unlink",
            format!("{path:?}"),
            async |ctx: &Ctx| self.0.client.unlink(ctx, path).await,
            |_| String::new(),
        )
        .await
    }

    pub async fn mkdir(&self, path: &str) -> Res<()> {
        self.call(
            "mkdir",
            format!("{path:?}"),
            async |ctx: &Ctx| self.0.client.mkdir(ctx, path).await,
            |_| String::new(),
        )
        .await
    }

    pub async fn rmdir(&self, path: &str) -> Res<()> {
        self.call(
            "rmdir",
            format!("{path:?}"),
            async |ctx: &Ctx| self.0.client.rmdir(ctx, path).await,
            |_| String::new(),
        )
        .await
    }

    pub async fn read_dir(&self, path: &str) -> Res<Vec<String>> {
        self.call(
            "readdir",
            format!("{path:?}"),
            async |ctx: &Ctx| self.0.client.read_dir(ctx, path).await,
            |names| render_names(names),
        )
        .await
    }

    /// `utime(path, (t, t))` with `Some(ns)` (client time), or `utime(path, NULL)`.
    pub async fn set_times(&self, path: &str, time: Option<i64>) -> Res<()> {
        let what = match time {
            Some(ns) => format!("client={ns}"),
            None => "server-now".to_string(),
        };
        let set = async |ctx: &Ctx| self.0.client.set_times(ctx, path, time).await;
        self.call("utime", format!("{path:?} {what}"), set, |_| String::new()).await
    }

    // ---- processes ----

    pub async fn spawn(&self, program: &str, args: &[String]) -> Res<u32> {
        self.call(
            "spawn",
            format!("{program} {args:?}"),
            async |_ctx: &Ctx| self.0.world.spawn(&self.0.host, Some(self.0.pid), program, args.to_vec()),
            |pid| format!("pid={pid}"),
        )
        .await
    }

    /// `fork`: starts `program` as a child that holds this process's pipe ends
    /// (the one thing of the parent's a child inherits in the world; its files on
    /// the mount it does not).
    pub async fn fork(&self, program: &str, args: &[String]) -> Res<u32> {
        self.call(
            "fork",
            format!("{program} {args:?}"),
            async |_ctx: &Ctx| {
                self.0.world.spawn_with(&self.0.host, Some(self.0.pid), program, args.to_vec(), self.0.held.fork())
            },
            |pid| format!("pid={pid}"),
        )
        .await
    }

    pub async fn wait(&self, pid: u32) -> Res<ProcStatus> {
        let exited = async |_ctx: &Ctx| loop {
            let Some(notify) = self.0.world.exit_notify(&self.0.host, pid) else { break Err(libc::ECHILD) };
            let notified = notify.notified();
            match self.0.world.status(&self.0.host, pid) {
                Some(Some(status)) => break Ok(status),
                Some(None) => notified.await,
                None => break Err(libc::ECHILD),
            }
        };
        self.call("wait", format!("pid={pid}"), exited, |s| s.describe()).await
    }

    pub async fn kill(&self, pid: u32, signal: i32) -> Res<()> {
        self.call(
            "kill",
            format!("pid={pid} sig={signal}"),
            async |_ctx: &Ctx| self.0.world.signal(&self.0.host, pid, signal),
            |_| String::new(),
        )
        .await
    }

    pub async fn alive(&self, pid: u32) -> bool {
        self.gate().await;
        matches!(self.0.world.status(&self.0.host, pid), Some(None))
    }

    // ---- pipes ----

    /// `pipe()`: a new pipe's (read end, write end).
    pub async fn pipe(&self) -> Res<(u32, u32)> {
        self.call(
            "pipe",
            String::new(),
            async |_ctx: &Ctx| Ok(self.0.held.ends.pipe()),
            |(r, w)| format!("r={r} w={w}"),
        )
        .await
    }

    pub async fn pipe_read(&self, end: u32, len: usize) -> Res<Vec<u8>> {
        self.call(
            "pipe_read",
            format!("end={end} n={len}"),
            async |_ctx: &Ctx| self.0.held.ends.read(end, len).await,
            |d| format!("n={}", d.len()),
        )
        .await
    }

    pub async fn pipe_write(&self, end: u32, data: &[u8]) -> Res<usize> {
        self.call(
            "pipe_write",
            format!("end={end} n={}", data.len()),
            async |_ctx: &Ctx| self.0.held.ends.write(end, data).await,
            |n| format!("n={n}"),
        )
        .await
    }

    pub async fn pipe_close(&self, end: u32) -> Res<()> {
        self.call("pipe_close", format!("end={end}"), async |_ctx: &Ctx| self.0.held.ends.close(end), |_| String::new())
            .await
    }

    /// `poll` on pipe ends: each `(end, events)`'s ready bits, once one shows
    /// any or `timeout` passes (all zero then); `None` waits for ever.
    pub async fn poll(&self, asked: &[(u32, u16)], timeout: Option<Duration>) -> Res<Vec<u16>> {
        let wait = async |_ctx: &Ctx| match timeout {
            Some(t) if t.is_zero() => self.0.held.ends.ready_now(asked),
            Some(t) => {
                let ready = std::pin::pin!(self.0.held.ends.poll(asked));
                let timer = std::pin::pin!(engine::sleep(t));
                match futures_race(ready, timer).await {
                    Some(r) => r,
                    None => Ok(vec![0; asked.len()]),
                }
            }
            None => self.0.held.ends.poll(asked).await,
        };
        let args = asked.iter().map(|(e, ev)| format!("{e}:{ev:#x}")).collect::<Vec<_>>().join(" ");
        let args = match timeout {
            Some(t) => format!("{args} timeout_ns={}", t.as_nanos()),
            None => args,
        };
        self.call("poll", args, wait, |r| r.iter().map(|b| format!("{b:#x}")).collect::<Vec<_>>().join(" ")).await
    }

    // ---- named semaphores ----

    /// `sem_open`: the process's number for the semaphore `name`.
    pub async fn sem_open(&self, name: &str, create: bool, exclusive: bool, value: u32) -> Res<u32> {
        let open = async |_ctx: &Ctx| {
            let sem = self.0.world.sem_names(&self.0.host).open(name, create, exclusive, value)?;
            Ok(self.0.held.sems.insert(sem))
        };
        let args = format!("{name:?} create={create} excl={exclusive} value={value}");
        self.call("sem_open", args, open, |n| format!("sem={n}")).await
    }

    /// `sem_wait` (`timeout` `None`), `sem_trywait` (zero) or `sem_timedwait`: `ETIMEDOUT` once it passes.
    pub async fn sem_wait(&self, sem: u32, timeout: Option<Duration>) -> Res<()> {
        let wait = async |_ctx: &Ctx| match timeout {
            None => self.0.held.sems.wait(sem, false).await,
            Some(t) => match self.0.held.sems.wait(sem, true).await {
                Err(libc::EAGAIN) if !t.is_zero() => {
                    let taken = std::pin::pin!(self.0.held.sems.wait(sem, false));
                    let timer = std::pin::pin!(engine::sleep(t));
                    futures_race(taken, timer).await.unwrap_or(Err(libc::ETIMEDOUT))
                }
                r => r,
            },
        };
        let args = match timeout {
            Some(t) => format!("sem={sem} timeout_ns={}", t.as_nanos()),
            None => format!("sem={sem}"),
        };
        self.call("sem_wait", args, wait, |_| String::new()).await
    }

    pub async fn sem_post(&self, sem: u32) -> Res<()> {
        self.call("sem_post", format!("sem={sem}"), async |_ctx: &Ctx| self.0.held.sems.post(sem), |_| String::new())
            .await
    }

    pub async fn sem_value(&self, sem: u32) -> Res<u32> {
        self.call(
            "sem_getvalue",
            format!("sem={sem}"),
            async |_ctx: &Ctx| self.0.held.sems.value(sem),
            |v| format!("{v}"),
        )
        .await
    }

    pub async fn sem_close(&self, sem: u32) -> Res<()> {
        self.call("sem_close", format!("sem={sem}"), async |_ctx: &Ctx| self.0.held.sems.close(sem), |_| String::new())
            .await
    }

    pub async fn sem_unlink(&self, name: &str) -> Res<()> {
        let unlink = async |_ctx: &Ctx| self.0.world.sem_names(&self.0.host).unlink(name);
        self.call("sem_unlink", format!("{name:?}"), unlink, |_| String::new()).await
    }

    // ---- network ----

    pub async fn tcp_listen(&self, port: u16) -> Res<TcpListener> {
        self.call(
            "listen",
            format!("port={port}"),
            async |_ctx: &Ctx| engine::listen(&self.0.host, port).await,
            |_| String::new(),
        )
        .await
    }

    pub async fn tcp_accept(&self, listener: &TcpListener) -> Res<(TcpStream, String)> {
        self.call(
            "accept",
            String::new(),
            async |_ctx: &Ctx| engine::accept(listener).await,
            |(_, peer)| format!("peer={peer}"),
        )
        .await
    }

    pub async fn tcp_connect(&self, host: &str, port: u16) -> Res<TcpStream> {
        self.call(
            "connect",
            format!("{host}:{port}"),
            async |_ctx: &Ctx| engine::connect(&self.0.host, host, port).await,
            |_| String::new(),
        )
        .await
    }

    pub async fn tcp_read(&self, stream: &mut TcpStream, buf: &mut [u8]) -> Res<usize> {
        self.call("recv", String::new(), async |_ctx: &Ctx| stream.read(buf).await, |n| format!("n={n}")).await
    }

    pub async fn tcp_write(&self, stream: &mut TcpStream, data: &[u8]) -> Res<()> {
        self.call(
            "send",
            format!("n={}", data.len()),
            async |_ctx: &Ctx| stream.write_all(data).await,
            |_| String::new(),
        )
        .await
    }

    // ---- annotations ----

    /// Records what the program believes, as canonical text plus a typed payload
    /// that checkers in other crates can downcast.
    pub fn note(&self, text: String, payload: Rc<dyn Any>) {
        self.0.world.note(&self.0.host, self.0.pid, text, payload);
    }
}

fn flags_text(f: Flags) -> String {
    let mut s = String::new();
    for (on, name) in [
        (f.read && !f.write, "RDONLY"),
        (f.write && !f.read, "WRONLY"),
        (f.read && f.write, "RDWR"),
        (f.create, "CREAT"),
        (f.exclusive, "EXCL"),
        (f.truncate, "TRUNC"),
        (f.append, "APPEND"),
    ] {
        if on {
            if !s.is_empty() {
                s.push('|');
            }
            s.push_str(name);
        }
    }
    s
}

/// The first of two futures to finish: `Some` with the first's output, `None` when the second came first.
async fn futures_race<T>(
    mut a: std::pin::Pin<&mut impl std::future::Future<Output = T>>,
    mut b: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> Option<T> {
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(v) = a.as_mut().poll(cx) {
            return std::task::Poll::Ready(Some(v));
        }
        if b.as_mut().poll(cx).is_ready() {
            return std::task::Poll::Ready(None);
        }
        std::task::Poll::Pending
    })
    .await
}
