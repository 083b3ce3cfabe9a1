//! The program table: which entry points a simulated host can run.
//!
//! Every program of `model::programs` (mailmanctl, the qrunners, post, the MTA,
//! the sink and the sender), plus `install` (directories and `newlist`),
//! `cron`, `lock-worker`, `list-worker`, `smoke-worker` and `exec` (an external
//! program through `mmsim-shim`, docs/real-programs.md). The same table
//! serves `mmsim exec`, which runs a program on the real OS for `RealOs::spawn`.
//!
//! Each program declares its arguments once (`model::args::ProgramSpec`); its
//! `plan` parses them against that declaration when it starts, and [`check`]
//! runs the same `plan` at scenario load, so a bad argument is refused before
//! the world starts (docs/scenario-format.md, "Programs and their arguments").

use std::rc::Rc;

use crate::kernel::Kernel;
use model::args::{ArgError, ProgramSpec};
use sim::{Proc, World};

use crate::sim_os::SimOs;

/// Programs this crate adds to the model's.
fn extra() -> [&'static ProgramSpec; 7] {
    [
        &crate::external::SPEC,
        &crate::tool_lock_worker::SPEC,
        &crate::install::SPEC,
        &crate::cron::SPEC,
        &crate::lock_worker::SPEC,
        &crate::list_worker::SPEC,
        &model::smoke::SPEC,
    ]
}

/// Every program a scenario may boot or spawn, with its arguments.
pub fn programs() -> impl Iterator<Item = &'static ProgramSpec> {
    model::programs::SPECS.iter().chain(extra())
}

pub fn is_program(name: &str) -> bool {
    programs().any(|p| p.name == name)
}

/// The declaration of program `name`.
pub fn spec(name: &str) -> Option<&'static ProgramSpec> {
    programs().find(|p| p.name == name)
}

/// Checks `program`'s arguments exactly as the program will when it starts
/// (its own `plan`), without running anything.
pub fn check(program: &str, args: &[String]) -> Result<(), ArgError> {
    match program {
        "exec" => crate::external::plan(args).map(drop),
        "tool-lock-worker" => crate::tool_lock_worker::plan(args).map(drop),
        "install" => crate::install::plan(args).map(drop),
        "cron" => crate::cron::plan(args).map(drop),
        "lock-worker" => crate::lock_worker::plan(args).map(drop),
        "list-worker" => crate::list_worker::plan(args).map(drop),
        "smoke-worker" => model::smoke::plan(args).map(drop),
        _ if !is_program(program) => {
            let known: Vec<&str> = programs().map(|p| p.name).collect();
            Err(ArgError::new(
                format!("{:?}", model::args::shown(program)),
                format!("unknown program; expected one of: {}", known.join(", ")),
            ))
        }
        _ => model::programs::plan(program, args).map(drop),
    }
}

/// Runs a program by name on any `Os`; returns its exit code.
pub async fn run<O: Kernel>(os: O, program: &str, args: &[String]) -> i32 {
    match program {
        "exec" => crate::external::exec(os, args).await,
        "tool-lock-worker" => crate::tool_lock_worker::tool_lock_worker(os, args).await,
        "install" => crate::install::install(os, args).await,
        "cron" => crate::cron::cron(os, args).await,
        "lock-worker" => crate::lock_worker::lock_worker(os, args).await,
        "list-worker" => crate::list_worker::list_worker(os, args).await,
        "smoke-worker" => model::smoke::worker(&os, args).await,
        _ => model::programs::run(os, program, args).await,
    }
}

/// Registers every program on a world.
pub fn register(world: &World) {
    for p in programs() {
        let name = p.name;
        world.register_program(
            name,
            Rc::new(move |proc: Proc, args: Vec<String>| {
                Box::pin(async move { run(SimOs::new(proc), name, &args).await })
            }),
        );
    }
    // The child of an `exec` program's fork: the world starts it, no scenario can.
    world.register_program(
        crate::external::FORKED,
        Rc::new(|proc: Proc, args: Vec<String>| {
            Box::pin(async move { crate::external::forked(SimOs::new(proc), &args).await })
        }),
    );
}

/// `mmsim list`'s lines for one program: its summary, usage, then one line per
/// argument (name, type and range, default, help), all from its declaration.
pub fn describe(p: &ProgramSpec) -> Vec<String> {
    let mut lines = vec![format!("  {:<24} {}", p.name, p.summary), format!("      usage: {}", p.usage())];
    let args = p.options.iter().map(|a| (a, false)).chain(p.positional.iter().map(|a| (a, true)));
    for (a, positional) in args {
        lines.push(format!("      {}  ({}; {})  {}", a.usage(positional), a.kind.describe(), a.default_text(), a.help));
    }
    if p.command {
        lines.push(
            "      -- PROGRAM ARGS...  (a program and its arguments; required)  the command, checked as that program"
                .into(),
        );
    }
    lines
}
