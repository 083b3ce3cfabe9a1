//! The program table: which entry points a simulated host can run.
//!
//! Every program of `model::programs` (mailmanctl, the qrunners, post, the MTA,
//! the sink and the sender), plus `install` (directories and `newlist`) and the
//! Foundation's `smoke-worker`. The same table serves `mmsim exec`, which runs a
//! program on the real OS for `RealOs::spawn`.

use std::rc::Rc;

use model::Os;
use sim::{Proc, World};

use crate::sim_os::SimOs;

/// Programs this crate adds to the model's.
const EXTRA: &[(&str, &str)] = &[
    ("install", "creates Mailman's directories and one list with N members (bin/newlist)"),
    ("cron", "runs a program every period, as Mailman 2.0's crontab ran qrunner: --every-s=S -- PROGRAM ARGS"),
    ("lock-worker", "rounds of LockFile lock / append enter+exit marks / unlock on one lock"),
    ("smoke-worker", "the smoke workload: an O_EXCL lock file and appends to a shared file"),
];

/// (name, one-line description) of every program a scenario may boot or spawn.
pub fn programs() -> impl Iterator<Item = (&'static str, &'static str)> {
    model::programs::PROGRAMS.iter().chain(EXTRA).copied()
}

pub fn is_program(name: &str) -> bool {
    programs().any(|(n, _)| n == name)
}

/// Runs a program by name on any `Os`; returns its exit code.
pub async fn run<O: Os>(os: O, program: &str, args: &[String]) -> i32 {
    match program {
        "install" => crate::install::install(os, args).await,
        "cron" => crate::cron::cron(os, args).await,
        "lock-worker" => crate::lock_worker::lock_worker(os, args).await,
        "smoke-worker" => model::smoke::worker(&os, args).await,
        _ => model::programs::run(os, program, args).await,
    }
}

/// Registers every program on a world.
pub fn register(world: &World) {
    for (name, _) in programs() {
        world.register_program(
            name,
            Rc::new(move |proc: Proc, args: Vec<String>| {
                Box::pin(async move { run(SimOs::new(proc), name, &args).await })
            }),
        );
    }
}
