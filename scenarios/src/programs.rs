//! The program table: which model entry points a simulated host can run.

use std::rc::Rc;

use sim::{Proc, World};

use crate::sim_os::SimOs;

/// (name, one-line description) of every program a scenario may boot or spawn.
pub const PROGRAMS: &[(&str, &str)] =
    &[("smoke-worker", "the smoke workload: an O_EXCL lock file and appends to a shared file")];

pub fn is_program(name: &str) -> bool {
    PROGRAMS.iter().any(|(n, _)| *n == name)
}

/// Registers every program on a world.
pub fn register(world: &World) {
    world.register_program(
        "smoke-worker",
        Rc::new(|proc: Proc, args: Vec<String>| {
            Box::pin(async move {
                let os = SimOs::new(proc);
                model::smoke::worker(&os, &args).await
            })
        }),
    );
}
