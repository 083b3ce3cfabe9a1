//! A small bench for the mechanism tests: hosts with boot programs that drive
//! `Proc` calls at chosen true times and log what the application observes.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use sim::{
    errno_name, BootProgram, EventKind, GateConfig, HostConfig, MountOptions, Proc, ServerConfig, Simulation,
    WorldConfig,
};

pub type Log = Rc<RefCell<Vec<String>>>;

pub fn host(name: &str, mount: MountOptions, boot: &[&str]) -> HostConfig {
    HostConfig {
        name: name.into(),
        clock: Default::default(),
        mount,
        link: Default::default(),
        boot: boot.iter().map(|p| BootProgram { program: p.to_string(), args: vec![], start_ms: 0 }).collect(),
    }
}

pub fn config(seed: u64, server: ServerConfig, hosts: Vec<HostConfig>) -> WorldConfig {
    WorldConfig {
        seed,
        engine: Default::default(),
        net: sim::LinkProfile::WholeMs.net_config(),
        server,
        hosts,
        gate: GateConfig::default(),
        sched: Default::default(),
    }
}

pub struct Bench {
    pub sim: Simulation<'static>,
    pub log: Log,
}

impl Bench {
    pub fn new(config: WorldConfig) -> Bench {
        Bench { sim: Simulation::new(config), log: Rc::default() }
    }

    pub fn program<F, Fut>(&self, name: &str, f: F)
    where
        F: Fn(Proc, Log) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let log = self.log.clone();
        let f = Rc::new(f);
        self.sim.world().register_program(
            name,
            Rc::new(move |p: Proc, _args| {
                let (f, log) = (f.clone(), log.clone());
                Box::pin(async move {
                    f(p, log).await;
                    0
                })
            }),
        );
    }

    /// Steps until true time `ms`.
    pub fn run_to(&mut self, ms: u64) {
        while self.sim.elapsed() < Duration::from_millis(ms) {
            self.sim.step().unwrap();
        }
    }

    /// Steps until every process has exited, or panics after `max_ms`.
    pub fn run_until_done(&mut self, max_ms: u64) {
        self.sim.step().unwrap();
        while !self.sim.world().live_processes().is_empty() {
            assert!(self.sim.elapsed() < Duration::from_millis(max_ms), "processes still running at {max_ms} ms");
            self.sim.step().unwrap();
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.log.borrow().clone()
    }

    /// `served_by` of every call `op` on `args` (as rendered), in order.
    pub fn served_by(&self, op: &str, args: &str) -> Vec<String> {
        let trace = self.sim.world().trace();
        trace
            .events()
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Call { op: o, args: a, served_by, .. } if *o == op && a == args => Some(served_by.clone()),
                _ => None,
            })
            .collect()
    }

    /// Canonical lines of the trace events with this tag.
    pub fn events(&self, tag: &str) -> Vec<String> {
        let trace = self.sim.world().trace();
        trace.events().iter().filter(|e| e.kind.tag() == tag).map(|e| e.line()).collect()
    }
}

/// Sleeps until true simulated time `ms`.
pub async fn at(p: &Proc, ms: u64) {
    let now = sim::true_now();
    let target = Duration::from_millis(ms);
    if target > now {
        p.sleep(target - now).await;
    }
}

pub fn show<T>(r: &Result<T, i32>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => errno_name(*e).to_string(),
    }
}

pub fn push(log: &Log, line: impl Into<String>) {
    log.borrow_mut().push(line.into());
}

pub fn rw() -> sim::Flags {
    sim::Flags { read: true, write: true, create: true, ..Default::default() }
}

pub fn ro() -> sim::Flags {
    sim::Flags { read: true, ..Default::default() }
}

/// Writes a whole file through `open(O_CREAT|O_TRUNC)`, `write`, `close`.
pub async fn write_file(p: &Proc, path: &str, data: &[u8]) {
    let fd =
        p.open(path, sim::Flags { write: true, create: true, truncate: true, ..Default::default() }).await.unwrap();
    p.write(fd, data).await.unwrap();
    p.close(fd).await.unwrap();
}

/// Reads a whole file through `open`, `read`, `close`.
pub async fn read_file(p: &Proc, path: &str) -> Result<String, i32> {
    let fd = p.open(path, ro()).await?;
    let data = p.read(fd, 1 << 20).await;
    p.close(fd).await?;
    Ok(String::from_utf8_lossy(&data?).into_owned())
}
