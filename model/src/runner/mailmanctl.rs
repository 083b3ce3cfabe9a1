//! The 2.1 master, `bin/mailmanctl start` (docs/semantics/mailman-queues-runners.md §14).
//!
//! Models: the master lock `locks/master-qrunner` (lifetime
//! `days(1)+hours(6)`, `lock(0.1)`; failure exits 1), one `qrunner
//! --runner=Name:slice:count` child per slice of each configured runner via
//! `Os::spawn`, the restart rule (a child is restarted unless it exited on
//! SIGTERM or with status 15, up to `MAX_RESTARTS` counted exits per child,
//! where an exit with status 2 after a SIGINT is not counted), SIGTERM
//! (forward to children, no restarts), SIGINT (forward; children restart),
//! and the lock refresh every `SNOOZE`. Signals are noticed by polling
//! `Os::take_signal` every `signal_poll_s` while waiting for children, where
//! Python's `os.wait` would be interrupted by the handler.
//!
//! Left out: `-s` (stale lock removal), `-u`, daemonising, and the
//! `_transfer_to` hand-over of the lock to the forked child.

use serde::{Deserialize, Serialize};

use crate::event::ModelEvent;
use crate::list_access::{Condition, LOCK_DIR};
use crate::os::{ExitStatus, Os, Pid, Signal};
use crate::profile::Settings;
use crate::python::{duration_s, time_s};
use crate::syslog::syslog;
use crate::task_set::TaskSet;

use super::base::RunnerCtx;

/// One `(name, count)` entry of `QRUNNERS`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QrunnerSpec {
    pub name: String,
    pub count: u32,
    /// Which of the `count` slices this host starts. Stock mailmanctl starts
    /// every slice (`None`), so two hosts sharing `qfiles/` overlap
    /// (mailman-queues-runners.md §5 item 4); a site that dedicates slices to hosts lists them here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slices: Option<Vec<u32>>,
}

impl QrunnerSpec {
    /// The slices this host runs, each below `count`.
    pub fn host_slices(&self) -> Vec<u32> {
        match &self.slices {
            Some(slices) => slices.iter().copied().filter(|s| *s < self.count).collect(),
            None => (0..self.count).collect(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailmanctlSettings {
    /// `QRUNNERS`, restricted to the runners the model implements.
    pub qrunners: Vec<QrunnerSpec>,
    /// `MAX_RESTARTS`.
    pub max_restarts: u32,
    /// `LOCK_LIFETIME`.
    pub lock_lifetime_s: f64,
    /// The master's `lock(0.1)` timeout.
    pub lock_timeout_s: f64,
    /// `SNOOZE`: how often the master refreshes its lock.
    pub snooze_s: f64,
    /// How often the waiting master looks for signals (model-only).
    pub signal_poll_s: f64,
    /// The directory of `master-qrunner` (Mailman's `LOCK_DIR`). Only the
    /// master lock reads it: list locks are always under `locks/`. A scenario
    /// gives each host its own to run one master per host over shared lists.
    pub lock_dir: String,
}

impl Default for MailmanctlSettings {
    fn default() -> Self {
        let q = |name: &str| QrunnerSpec { name: name.to_string(), count: 1, slices: None };
        MailmanctlSettings {
            qrunners: vec![q("Arch"), q("Bounce"), q("Incoming"), q("Outgoing"), q("Virgin"), q("Retry")],
            max_restarts: 10,
            lock_lifetime_s: 86_400.0 + 6.0 * 3_600.0,
            lock_timeout_s: 0.1,
            snooze_s: 86_400.0,
            signal_poll_s: 1.0,
            lock_dir: LOCK_DIR.to_string(),
        }
    }
}

#[derive(Clone, Debug)]
struct Kid {
    name: String,
    slice: u32,
    count: u32,
    restarts: u32,
}

/// Runs the master; `child_args` are passed to every child after its
/// `--runner=` argument (the profile and settings). Returns the exit status.
pub async fn mailmanctl<O: Os>(os: &O, settings: &Settings, child_args: &[String]) -> i32 {
    let s = &settings.mailmanctl;
    // The master is a process of its own: its context holds its lock counter.
    let ctx = RunnerCtx::new(os, settings);
    let mut lock = ctx.site_lock(&format!("{}/master-qrunner", s.lock_dir), duration_s(s.lock_lifetime_s));
    if let Err(e) = lock.lock(Some(duration_s(s.lock_timeout_s))).await {
        syslog(os, "qrunner", format!("The master qrunner lock could not be acquired: {e}"));
        return 1;
    }
    let mut kids: Vec<(Pid, Kid)> = Vec::new();
    for spec in &s.qrunners {
        for slice in spec.host_slices() {
            let kid = Kid { name: spec.name.clone(), slice, count: spec.count, restarts: 0 };
            match start_runner(os, &kid, child_args).await {
                Ok(pid) => kids.push((pid, kid)),
                Err(e) => syslog(os, "qrunner", format!("could not start {}: {e}", spec.name)),
            }
        }
    }
    let mut waits: TaskSet<'_, (Pid, std::io::Result<ExitStatus>)> = TaskSet::new();
    for (pid, _) in &kids {
        let pid = *pid;
        waits.push(async move { (pid, os.wait(pid).await) });
    }
    let mut stopping = false;
    let mut next_refresh_s = time_s(os) + s.snooze_s;
    while !waits.is_empty() {
        let done = tokio::select! {
            biased;
            d = waits.next() => d,
            () = os.sleep(duration_s(s.signal_poll_s)) => None,
        };
        while let Some(sig) = os.take_signal() {
            match sig {
                Signal::Term | Signal::Int => {
                    stopping |= sig == Signal::Term;
                    for (pid, _) in &kids {
                        let _ = os.kill(*pid, sig).await;
                    }
                }
                Signal::Hup | Signal::Kill => {}
            }
        }
        if time_s(os) >= next_refresh_s {
            next_refresh_s = time_s(os) + s.snooze_s;
            if let Err(e) = lock.refresh(None, Condition::RequireLocked).await {
                syslog(os, "qrunner", format!("master lock refresh failed: {e}"));
            }
        }
        let Some((pid, status)) = done else { continue };
        let Some(i) = kids.iter().position(|(p, _)| *p == pid) else {
            continue;
        };
        let (_, mut kid) = kids.remove(i);
        let sigterm = matches!(status, Ok(ExitStatus::Signaled(Signal::Term)) | Ok(ExitStatus::Code(15)));
        syslog(
            os,
            "qrunner",
            format!(
                "Master qrunner detected subprocess exit (pid: {pid}, {status:?}, class: {}, slice: {}/{})",
                kid.name,
                kid.slice + 1,
                kid.count
            ),
        );
        let mut restarting = !stopping && !sigterm;
        // An exit with status 2 (the child's SIGINT handler) is not counted;
        // every other one is, restarted or not, and past `MAX_RESTARTS` the
        // child stays down.
        if !matches!(status, Ok(ExitStatus::Code(2))) {
            kid.restarts += 1;
        }
        if kid.restarts > s.max_restarts {
            syslog(
                os,
                "qrunner",
                format!("Qrunner {} reached maximum restart limit of {}, not restarting.", kid.name, s.max_restarts),
            );
            restarting = false;
        }
        if !restarting {
            continue;
        }
        match start_runner(os, &kid, child_args).await {
            Ok(newpid) => {
                waits.push(async move { (newpid, os.wait(newpid).await) });
                kids.push((newpid, kid));
            }
            Err(e) => syslog(os, "qrunner", format!("could not restart {}: {e}", kid.name)),
        }
    }
    // `finally: lock.unlock(unconditionally=1)`, then `__del__` at exit.
    if let Err(e) = lock.unlock(Condition::Unconditionally).await {
        syslog(os, "qrunner", format!("master lock unlock failed: {e}"));
    }
    if let Err(e) = lock.finalize().await {
        syslog(os, "qrunner", format!("Exception in LockFile __del__ ignored: {e}"));
    }
    0
}

async fn start_runner<O: Os>(os: &O, kid: &Kid, child_args: &[String]) -> std::io::Result<Pid> {
    let mut args = vec![format!("--runner={}:{}:{}", kid.name, kid.slice, kid.count)];
    args.extend(child_args.iter().cloned());
    let pid = os.spawn("qrunner", &args).await?;
    os.event(ModelEvent::RunnerSpawned {
        runner: kid.name.clone(),
        slice: kid.slice,
        count: kid.count,
        pid,
        restarts: kid.restarts,
    });
    Ok(pid)
}
