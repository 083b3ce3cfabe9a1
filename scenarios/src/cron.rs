//! `cron`: runs a program at the start of every period, as the crontab line
//! `* * * * * qrunner` did for Mailman 2.0 (docs/semantics/mailman-queues-runners.md §15).
//!
//! Like cron, it does not wait for the previous run to end: overlapping runs are
//! possible, and the 2.0 qrunner's own `qrunner.lock` keeps them apart.
//! Infrastructure, not Mailman: it lives beside `install`.

use std::time::Duration;

use model::args::{ArgDefault, ArgError, ArgKind, ArgSpec, ProgramSpec};
use model::Os;

/// `cron`'s arguments; the command after `--` is checked as its own program.
pub static SPEC: ProgramSpec = ProgramSpec {
    name: "cron",
    summary: "runs a program every period, as Mailman 2.0's crontab ran qrunner",
    options: &[
        ArgSpec {
            name: "every-s",
            kind: ArgKind::Float { min: 0.001, max: 86_400.0, unit: "seconds" },
            default: ArgDefault::Required,
            help: "the period; a run starts at the start of each",
        },
        ArgSpec {
            name: "runs",
            kind: ArgKind::UInt { min: 0, max: 1_000_000, unit: "runs" },
            default: ArgDefault::Absent,
            help: "stop after this many runs (none: until SIGTERM)",
        },
    ],
    positional: &[],
    command: true,
};

/// What `cron` runs, and how often.
pub struct Plan {
    pub every_s: f64,
    pub runs: Option<u64>,
    pub program: String,
    pub args: Vec<String>,
}

/// Parses and checks the arguments against [`SPEC`], the command's against
/// its own program's declaration (`crate::programs::check`). Pure: no I/O.
pub fn plan(args: &[String]) -> Result<Plan, ArgError> {
    let p = SPEC.parse(args)?;
    let (program, program_args) = p.command().split_first().expect("a command is required");
    if program == SPEC.name {
        return Err(ArgError::new("-- cron", "expected another program (cron does not run cron)"));
    }
    crate::programs::check(program, program_args).map_err(|e| ArgError::new("--", e.to_string()))?;
    Ok(Plan {
        every_s: p.float("every-s"),
        runs: p.uint_opt("runs"),
        program: program.clone(),
        args: program_args.to_vec(),
    })
}

pub async fn cron<O: Os>(os: O, args: &[String]) -> i32 {
    let Plan { every_s, runs, program, args } = match plan(args) {
        Ok(p) => p,
        Err(e) => {
            os.event(model::ModelEvent::Log { log: "error".into(), message: format!("cron: {e}") });
            return 2;
        }
    };
    let (program, program_args) = (&program, &args);
    let period = Duration::from_secs_f64(every_s);
    let mut started = 0u64;
    while runs.is_none_or(|n| started < n) {
        if let Err(e) = os.spawn(program, program_args).await {
            os.event(model::ModelEvent::Log { log: "cron".into(), message: format!("cannot run {program}: {e}") });
        }
        started += 1;
        if os.take_signal() == Some(model::Signal::Term) {
            break;
        }
        os.sleep(period).await;
    }
    0
}
