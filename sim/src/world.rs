//! The world: hosts, their processes and NFS clients, the NFS server's state,
//! the program table, the trace and the counters, behind one shared handle.
//! What it is built from is in `config`, the counters in `counters`.
//!
//! Everything runs on the engine's single thread, so the world is an
//! `Rc<RefCell<…>>` and no borrow is ever held across an `.await`.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Serialize;
use tokio::sync::Notify;

use crate::process::Held;

use crate::clock::{true_now, ClockConfig};
use crate::config::{HostConfig, Program, WorldConfig};
use crate::counters::Counters;
use crate::nfs::client::NfsClient;
use crate::nfs::server::ServerState;
use crate::process::Proc;
use crate::rpc::{LinkFaults, Transport};
use crate::sched::{ProcKey, Sched, SchedReport};
use crate::trace::{EventKind, Trace};

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ProcStatus {
    Code(i32),
    /// Killed by this signal number.
    Signaled(i32),
}

impl ProcStatus {
    pub fn describe(self) -> String {
        match self {
            ProcStatus::Code(c) => format!("code={c}"),
            ProcStatus::Signaled(s) => format!("signal={s}"),
        }
    }
}

struct ProcSlot {
    proc: Proc,
    program: String,
    status: Option<ProcStatus>,
    exited: Rc<Notify>,
    join: Option<crate::engine::TaskHandle>,
}

struct HostState {
    name: Rc<str>,
    config: HostConfig,
    incarnation: u32,
    pid_next: u32,
    procs: BTreeMap<u32, ProcSlot>,
    client: Option<Rc<NfsClient>>,
    /// Pids whose files the kernel must close (after a crash or kill).
    reap: VecDeque<u32>,
    reap_wake: Rc<Notify>,
    /// The host's named semaphores (its `/dev/shm`).
    sem_names: Rc<crate::sem::Names>,
}

/// A callback run once, right after one event is recorded.
pub type Probe = Box<dyn FnOnce(&World)>;

struct Inner {
    config: WorldConfig,
    trace: RefCell<Trace>,
    /// A state dump waiting for its event (see [`World::probe_at`]).
    probe: RefCell<Option<(u64, Probe)>>,
    programs: RefCell<IndexMap<String, Program>>,
    hosts: RefCell<IndexMap<Rc<str>, HostState>>,
    server: RefCell<ServerState>,
    counters: RefCell<Counters>,
    span_next: Cell<u64>,
    ops_step: Cell<u64>,
    ops_in_step: Cell<u64>,
    livelock: RefCell<Option<String>>,
    sched: RefCell<Sched>,
    /// Set by [`World::heal`]: the fault phase is over (no more losses or stalls).
    healed: Cell<bool>,
}

/// A cheap handle to the world.
#[derive(Clone)]
pub struct World(Rc<Inner>);

impl World {
    /// How many handles to this world exist (a leak check: once its
    /// simulation is dropped, only the caller's own should be left).
    pub fn handles(&self) -> usize {
        Rc::strong_count(&self.0)
    }

    /// Drops what the hosts hold (processes, NFS clients, pending reaps) and
    /// the program table: they hold handles to the world, so a world that
    /// kept them after its simulation ended would never be freed. The
    /// server, the counters and the trace stay for the report.
    pub(crate) fn release_hosts(&self) {
        let (procs, clients): (Vec<_>, Vec<_>) = self
            .0
            .hosts
            .borrow_mut()
            .values_mut()
            .map(|h| {
                h.reap.clear();
                (std::mem::take(&mut h.procs), h.client.take())
            })
            .unzip();
        let programs = std::mem::take(&mut *self.0.programs.borrow_mut());
        // Dropped outside the borrows: their drops may reach the world.
        drop(procs);
        drop(clients);
        drop(programs);
    }
    pub fn new(config: WorldConfig) -> World {
        let server = ServerState::new(config.seed, config.server.clone());
        let sched = Sched::new(config.seed, config.sched.clone());
        let hosts = config
            .hosts
            .iter()
            .map(|h| {
                let name: Rc<str> = h.name.as_str().into();
                let state = HostState {
                    name: name.clone(),
                    config: h.clone(),
                    incarnation: 0,
                    pid_next: 1,
                    procs: BTreeMap::new(),
                    client: None,
                    reap: VecDeque::new(),
                    reap_wake: Rc::new(Notify::new()),
                    sem_names: Rc::default(),
                };
                (name, state)
            })
            .collect();
        World(Rc::new(Inner {
            config,
            trace: RefCell::new(Trace::default()),
            probe: RefCell::new(None),
            programs: RefCell::new(IndexMap::new()),
            hosts: RefCell::new(hosts),
            server: RefCell::new(server),
            counters: RefCell::new(Counters::default()),
            span_next: Cell::new(1),
            ops_step: Cell::new(0),
            ops_in_step: Cell::new(0),
            livelock: RefCell::new(None),
            sched: RefCell::new(sched),
            healed: Cell::new(false),
        }))
    }

    pub fn seed(&self) -> u64 {
        self.0.config.seed
    }

    pub fn config(&self) -> &WorldConfig {
        &self.0.config
    }

    pub fn register_program(&self, name: &str, program: Program) {
        self.0.programs.borrow_mut().insert(name.to_string(), program);
    }

    // ---- trace and counters ----

    pub fn record(&self, kind: EventKind) -> u64 {
        let seq = self.0.trace.borrow_mut().push(true_now(), kind);
        let due = matches!(&*self.0.probe.borrow(), Some((at, _)) if *at == seq);
        if due {
            if let Some((_, probe)) = self.0.probe.borrow_mut().take() {
                probe(self);
            }
        }
        seq
    }

    pub fn record_rpc(
        &self,
        span: u64,
        host: &Rc<str>,
        xid: u32,
        proc: &'static str,
        retransmit: u32,
        outcome: &str,
    ) -> u64 {
        self.record(EventKind::Rpc { span, host: host.clone(), xid, proc, retransmit, outcome: outcome.to_string() })
    }

    pub fn record_apply(
        &self,
        client: Rc<str>,
        xid: u32,
        proc: &'static str,
        args: String,
        status: &'static str,
        replay: bool,
    ) {
        self.record(EventKind::Apply { client, xid, proc, args, status, replay });
    }

    pub fn note(&self, host: &Rc<str>, pid: u32, text: String, payload: Rc<dyn Any>) {
        self.record(EventKind::Note { host: host.clone(), pid, text, payload });
    }

    pub fn fault(&self, text: String) {
        self.record(EventKind::Fault { text });
    }

    pub fn trace(&self) -> std::cell::Ref<'_, Trace> {
        self.0.trace.borrow()
    }

    /// What the trace keeps of the events recorded from now on (it hashes them all).
    pub fn set_trace_retention(&self, retention: crate::trace::Retention) {
        self.0.trace.borrow_mut().set_retention(retention);
    }

    /// Shows every event recorded from now on to `observer` (see [`crate::trace::Observer`]).
    pub fn set_trace_observer(&self, observer: Option<crate::trace::Observer>) -> Option<crate::trace::Observer> {
        self.0.trace.borrow_mut().set_observer(observer)
    }

    /// Takes the trace out of the world, at the end of a run.
    pub fn take_trace(&self) -> Trace {
        let mut trace = self.0.trace.borrow_mut();
        let retention = trace.retention();
        std::mem::replace(&mut *trace, Trace::with_retention(retention))
    }

    pub fn count(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut self.0.counters.borrow_mut())
    }

    pub fn counters(&self) -> Counters {
        self.0.counters.borrow().clone()
    }

    pub(crate) fn next_span(&self) -> u64 {
        let s = self.0.span_next.get();
        self.0.span_next.set(s + 1);
        s
    }

    // ---- the server ----

    pub fn with_server<R>(&self, f: impl FnOnce(&mut ServerState) -> R) -> R {
        f(&mut self.0.server.borrow_mut())
    }

    /// Changes the fault rates of `host`'s link to the server from now on (this
    /// incarnation; a reboot returns to the configured rates).
    pub fn set_link_faults(&self, host: &str, faults: LinkFaults) -> bool {
        let client = self.0.hosts.borrow().get(host).and_then(|h| h.client.clone());
        match client {
            Some(c) => {
                self.fault(format!("link faults of {host}: {faults:?}"));
                c.transport().set_faults(faults);
                true
            }
            None => false,
        }
    }

    /// Ends the world's own fault mechanisms for good: from now on no link drops
    /// or duplicates a message (jitter stays: it is latency, not a fault), on
    /// live hosts and on every later incarnation, and no process stalls at the
    /// gate. Returns what it changed (empty when nothing was faulty), without
    /// recording anything: the caller notes the heal once.
    pub fn heal(&self) -> Vec<String> {
        self.0.healed.set(true);
        let mut healed = Vec::new();
        let clients: Vec<(Rc<str>, LinkFaults, Option<Rc<NfsClient>>)> =
            self.0.hosts.borrow().values().map(|h| (h.name.clone(), h.config.link.clone(), h.client.clone())).collect();
        for (host, link, client) in clients {
            if link.is_lossy() {
                healed.push(format!("link faults of {host}"));
                if let Some(c) = client {
                    c.transport().set_faults(link.healed());
                }
            }
        }
        if self.0.config.gate.stall_ppm > 0 {
            healed.push("gate stalls".into());
        }
        healed
    }

    /// Whether [`World::heal`] has run.
    pub fn healed(&self) -> bool {
        self.0.healed.get()
    }

    /// Crashes the NFS server now; it answers again `down_for` later (docs/semantics/nfs-server.md §5).
    pub fn reboot_server(&self, down_for: Duration) {
        let (lost, rolled_back) = self.with_server(|s| s.crash(true_now(), down_for));
        self.count(|c| {
            c.server_reboots += 1;
            c.unstable_files_lost += lost as u64;
            c.rollbacks += rolled_back as u64;
        });
        self.record(EventKind::Crash { host: crate::SERVER_HOST.into(), pid: None });
        self.fault(format!(
            "nfs: server down for {} ms; {lost} files lost uncommitted data{}",
            down_for.as_millis(),
            if rolled_back { "; async export rolled back" } else { "" }
        ));
    }

    // ---- steps and the op cap ----

    /// Counts one `Os` call against the per-step cap. False once the cap is passed.
    pub(crate) fn charge_op(&self, host: &str, pid: u32) -> bool {
        let step = self.step();
        if self.0.ops_step.get() != step {
            self.0.ops_step.set(step);
            self.0.ops_in_step.set(0);
        }
        let n = self.0.ops_in_step.get() + 1;
        self.0.ops_in_step.set(n);
        self.0.counters.borrow_mut().calls += 1;
        if n > self.0.config.gate.ops_per_step_max {
            let mut livelock = self.0.livelock.borrow_mut();
            if livelock.is_none() {
                *livelock = Some(format!(
                    "more than {} Os calls in the 1 ms step {step} (last by {host}/{pid}): a livelock",
                    self.0.config.gate.ops_per_step_max
                ));
            }
            return false;
        }
        true
    }

    /// The current 1 ms window of true time (the unit of the op cap and of `pct`'s waits).
    pub(crate) fn step(&self) -> u64 {
        (true_now().as_nanos() / 1_000_000) as u64
    }

    /// Set once a process has passed the per-step op cap.
    pub fn livelock(&self) -> Option<String> {
        self.0.livelock.borrow().clone()
    }

    // ---- the scheduler ----

    /// A new process's priority under `pct`; `None` under the default scheduler.
    pub(crate) fn sched_priority_at_start(&self, key: &ProcKey) -> Option<u64> {
        let sched = self.0.sched.borrow();
        sched.is_pct().then(|| sched.initial_priority(self.seed(), key))
    }

    pub(crate) fn with_sched<R>(&self, f: impl FnOnce(&mut Sched) -> R) -> R {
        f(&mut self.0.sched.borrow_mut())
    }

    /// What the scheduler did so far: its parameters, change points and waits.
    pub fn sched_report(&self) -> SchedReport {
        self.0.sched.borrow().report()
    }

    /// A live or exited process's current priority under `pct`.
    pub fn sched_priority(&self, host: &str, pid: u32) -> Option<u64> {
        self.0.hosts.borrow().get(host).and_then(|h| h.procs.get(&pid)).and_then(|s| s.proc.priority())
    }

    // ---- hosts ----

    pub fn host_names(&self) -> Vec<String> {
        self.0.hosts.borrow().keys().map(|k| k.to_string()).collect()
    }

    /// Called by a host's software when it (re)boots: a new incarnation with a fresh client.
    pub(crate) async fn boot_host(&self, name: &Rc<str>) {
        let (incarnation, config) = {
            let mut hosts = self.0.hosts.borrow_mut();
            let h = hosts.get_mut(name).expect("registered host");
            h.incarnation += 1;
            h.procs.clear();
            h.reap.clear();
            h.client = None;
            (h.incarnation, h.config.clone())
        };
        let transport = Transport::bind(
            self.clone(),
            name.clone(),
            crate::SERVER_HOST,
            incarnation,
            if self.healed() { config.link.healed() } else { config.link.clone() },
            config.mount.transport.clone(),
        )
        .await;
        let jiffies_base =
            crate::rng::Rng::stream(self.seed(), &format!("host/{name}/{incarnation}/jiffies")).below(1 << 31);
        let gaps = crate::rng::Rng::stream(self.seed(), &format!("host/{name}/{incarnation}/gaps"));
        let client = Rc::new(NfsClient::new(transport, config.mount.clone(), config.clock.clone(), jiffies_base, gaps));
        self.0.hosts.borrow_mut().get_mut(name).expect("registered host").client = Some(client);
        for boot in config.boot {
            let world = self.clone();
            let host = name.clone();
            let start = move || {
                if let Err(e) = world.spawn(&host, None, &boot.program, boot.args.clone()) {
                    world.fault(format!("boot of {} on {host} failed: {}", boot.program, crate::errno::errno_name(e)));
                }
            };
            if boot.start_ms == 0 {
                start();
            } else {
                crate::engine::spawn(name.as_ref(), async move {
                    crate::engine::sleep(Duration::from_millis(boot.start_ms)).await;
                    start();
                });
            }
        }
    }

    /// The host kernel's loop after boot: closes the files of killed processes.
    pub(crate) async fn reaper(&self, name: &Rc<str>) {
        loop {
            let wake = self.0.hosts.borrow()[name].reap_wake.clone();
            wake.notified().await;
            loop {
                let (pid, client) = {
                    let mut hosts = self.0.hosts.borrow_mut();
                    let h = hosts.get_mut(name).expect("registered host");
                    match h.reap.pop_front() {
                        Some(pid) => (pid, h.client.clone()),
                        None => break,
                    }
                };
                if let Some(client) = client {
                    let ctx = crate::nfs::client::Ctx::new(self.next_span(), pid);
                    client.close_all(&ctx).await;
                }
            }
        }
    }

    pub(crate) fn sem_names(&self, host: &str) -> Rc<crate::sem::Names> {
        self.0.hosts.borrow()[host].sem_names.clone()
    }

    pub(crate) fn host_clock(&self, host: &str) -> ClockConfig {
        self.0.hosts.borrow()[host].config.clock.clone()
    }

    /// Starts `program` as a new process on `host`. Must run inside that host's
    /// runtime (its boot, or one of its processes). Returns the pid, or ENOENT for
    /// an unknown program.
    pub fn spawn(&self, host: &Rc<str>, parent: Option<u32>, program: &str, args: Vec<String>) -> Result<u32, i32> {
        self.spawn_with(host, parent, program, args, Held::default())
    }

    /// [`World::spawn`] of a process that starts holding `ends` (a fork's child).
    pub(crate) fn spawn_with(
        &self,
        host: &Rc<str>,
        parent: Option<u32>,
        program: &str,
        args: Vec<String>,
        held: Held,
    ) -> Result<u32, i32> {
        let entry = self.0.programs.borrow().get(program).cloned();
        let slot = {
            let mut hosts = self.0.hosts.borrow_mut();
            match (entry, hosts.get_mut(host)) {
                (None, _) | (_, None) => Err(libc::ENOENT),
                (Some(entry), Some(h)) => match h.client.clone() {
                    None => Err(libc::EIO),
                    Some(client) => {
                        let pid = h.pid_next;
                        h.pid_next += 1;
                        Ok((entry, pid, h.incarnation, client))
                    }
                },
            }
        };
        let (entry, pid, incarnation, client) = match slot {
            Ok(s) => s,
            Err(e) => {
                // The child never held them: the ends counted for it close again.
                held.close();
                return Err(e);
            }
        };
        let proc = Proc::new(self.clone(), host.clone(), pid, parent, incarnation, client, held);
        self.record(EventKind::Start {
            host: host.clone(),
            pid,
            incarnation,
            program: program.to_string(),
            args: args.clone(),
            parent,
        });
        self.count(|c| c.processes_started += 1);
        let exited = Rc::new(Notify::new());
        self.0.hosts.borrow_mut().get_mut(host).expect("host").procs.insert(
            pid,
            ProcSlot { proc: proc.clone(), program: program.to_string(), status: None, exited, join: None },
        );
        let world = self.clone();
        let child = proc.clone();
        let join = crate::engine::spawn(host, async move {
            let code = entry(child.clone(), args).await;
            world.exited(&child, ProcStatus::Code(code));
        });
        let Some(join) = join else {
            proc.close_held();
            return Err(libc::EIO);
        };
        if let Some(slot) = self.0.hosts.borrow_mut().get_mut(host).expect("host").procs.get_mut(&pid) {
            slot.join = Some(join);
        }
        Ok(pid)
    }

    fn exited(&self, proc: &Proc, status: ProcStatus) {
        let host = proc.host_rc();
        let notify = {
            let mut hosts = self.0.hosts.borrow_mut();
            let h = hosts.get_mut(&host).expect("host");
            if h.incarnation != proc.incarnation() {
                return;
            }
            let Some(slot) = h.procs.get_mut(&proc.pid()) else { return };
            if slot.status.is_some() {
                return;
            }
            slot.status = Some(status);
            slot.join = None;
            h.reap.push_back(proc.pid());
            h.reap_wake.notify_one();
            slot.exited.clone()
        };
        proc.revoke();
        proc.close_held();
        self.record(EventKind::Exit { host: host.clone(), pid: proc.pid(), status: status.describe() });
        notify.notify_waiters();
    }

    /// Kills a process at once (SIGKILL, or a crash). Its `Os` is revoked
    /// synchronously, so no call issued after this gets through; its task is
    /// aborted, and the host's kernel closes its files.
    pub fn crash_process(&self, host: &str, pid: u32) -> bool {
        let (proc, join) = {
            let mut hosts = self.0.hosts.borrow_mut();
            let Some(h) = hosts.get_mut(host) else { return false };
            let Some(slot) = h.procs.get_mut(&pid) else { return false };
            if slot.status.is_some() {
                return false;
            }
            (slot.proc.clone(), slot.join.take())
        };
        proc.revoke();
        if let Some(join) = join {
            join.abort();
        }
        self.count(|c| c.process_crashes += 1);
        self.record(EventKind::Crash { host: proc.host_rc(), pid: Some(pid) });
        self.exited(&proc, ProcStatus::Signaled(libc::SIGKILL));
        true
    }

    /// Delivers a catchable signal, or kills for SIGKILL.
    pub fn signal(&self, host: &str, pid: u32, signal: i32) -> Result<(), i32> {
        if signal == libc::SIGKILL {
            return if self.crash_process(host, pid) { Ok(()) } else { Err(libc::ESRCH) };
        }
        let hosts = self.0.hosts.borrow();
        let slot = hosts.get(host).and_then(|h| h.procs.get(&pid)).ok_or(libc::ESRCH)?;
        if slot.status.is_some() {
            return Err(libc::ESRCH);
        }
        slot.proc.deliver_signal(signal);
        Ok(())
    }

    /// Marks every process of a host dead and drops its client, for a host crash.
    /// The caller crashes the engine's host, which drops its tasks.
    pub fn host_crashed(&self, host: &str) {
        let procs: Vec<Proc> = {
            let mut hosts = self.0.hosts.borrow_mut();
            let Some(h) = hosts.get_mut(host) else { return };
            h.client = None;
            h.procs.values().filter(|s| s.status.is_none()).map(|s| s.proc.clone()).collect()
        };
        for p in &procs {
            p.revoke();
        }
        self.count(|c| c.host_crashes += 1);
        self.record(EventKind::Crash { host: host.into(), pid: None });
    }

    pub fn status(&self, host: &str, pid: u32) -> Option<Option<ProcStatus>> {
        self.0.hosts.borrow().get(host).and_then(|h| h.procs.get(&pid)).map(|s| s.status)
    }

    pub(crate) fn exit_notify(&self, host: &str, pid: u32) -> Option<Rc<Notify>> {
        self.0.hosts.borrow().get(host).and_then(|h| h.procs.get(&pid)).map(|s| s.exited.clone())
    }

    /// Whether any live process runs one of `programs`.
    pub fn any_live(&self, programs: &[&str]) -> bool {
        let hosts = self.0.hosts.borrow();
        hosts.values().any(|h| h.procs.values().any(|s| s.status.is_none() && programs.contains(&s.program.as_str())))
    }

    /// Live processes: (host, pid, program).
    pub fn live_processes(&self) -> Vec<(String, u32, String)> {
        let hosts = self.0.hosts.borrow();
        let mut out = Vec::new();
        for h in hosts.values() {
            for (pid, slot) in &h.procs {
                if slot.status.is_none() {
                    out.push((h.name.to_string(), *pid, slot.program.clone()));
                }
            }
        }
        out
    }

    /// Each host's open files: (host, pid, fd, path).
    pub fn open_files(&self) -> Vec<(String, u32, u32, String)> {
        let hosts = self.0.hosts.borrow();
        let mut out = Vec::new();
        for h in hosts.values() {
            if let Some(client) = &h.client {
                for (pid, fd, path) in client.open_files() {
                    out.push((h.name.to_string(), pid, fd, path));
                }
            }
        }
        out
    }

    /// Each host's NFS client caches (hosts whose client is up), in host order.
    pub fn client_caches(&self) -> Vec<(String, crate::nfs::client::CacheView)> {
        let now = true_now();
        let hosts = self.0.hosts.borrow();
        hosts.values().filter_map(|h| h.client.as_ref().map(|c| (h.name.to_string(), c.caches(now)))).collect()
    }

    /// Calls `probe` once, right after event `seq` is recorded (between two
    /// events of one step, with no part of the world borrowed), for state dumps.
    pub fn probe_at(&self, seq: u64, probe: Probe) {
        *self.0.probe.borrow_mut() = Some((seq, probe));
    }

    pub(crate) fn cpu_cost(&self) -> Duration {
        Duration::from_micros(self.0.config.gate.cpu_cost_us_per_call)
    }
}
