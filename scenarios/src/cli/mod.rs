//! The `mmsim` command line. `flags` declares every subcommand; each file
//! here runs one (`impl flags::X { fn run(self) }`), and this module holds
//! what they share: [`CliError`], loading a [`Subject`] or [`Target`], and
//! the checks made before a run (an executable to re-run, a file to write).

pub mod flags;

mod bench;
mod exec;
mod experiment;
mod explain;
mod list;
mod merge;
mod real;
mod run;
mod show;
mod shrink;
mod sweep;
mod timeline;
mod worker;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use scenarios::{exit, scenario, Scenario};

use flags::{SchedArgs, Subject, Target};

/// Why a subcommand stopped early: its exit code and the one line it prints.
#[derive(Debug)]
pub struct CliError {
    code: i32,
    message: String,
}

impl CliError {
    /// Bad input: exit 2. The line is escaped, since it may quote the input.
    pub fn bad_input(message: impl Into<String>) -> CliError {
        CliError { code: exit::BAD_INPUT, message: scenario::escape_controls(&message.into()) }
    }

    /// A failure of mmsim itself (a panic caught, a worker lost): exit 6.
    pub fn internal(message: impl Into<String>) -> CliError {
        CliError { code: exit::PANIC, message: message.into() }
    }

    /// Prints the line and gives the exit code.
    pub fn report(self) -> ExitCode {
        eprintln!("mmsim: {}", self.message);
        code(self.code)
    }
}

impl From<scenarios::InputError> for CliError {
    fn from(e: scenarios::InputError) -> CliError {
        CliError::bad_input(e.to_string())
    }
}

/// An exit code as the process gives it.
pub fn code(exit_code: i32) -> ExitCode {
    ExitCode::from(exit_code.clamp(0, 255) as u8)
}

impl SchedArgs {
    /// The `--set`s this sugar stands for.
    fn sets(&self) -> Vec<String> {
        let mut sets = Vec::new();
        if let Some(kind) = &self.sched {
            sets.push(format!("sched.kind={kind}"));
        }
        if let Some(depth) = self.depth {
            sets.push(format!("sched.depth={depth}"));
        }
        if let Some(engine) = &self.engine {
            sets.push(format!("network.engine={engine}"));
        }
        sets
    }

    /// The same flags, for a replay command.
    fn replay(&self) -> String {
        let mut s = String::new();
        if let Some(kind) = &self.sched {
            s.push_str(&format!(" --sched {kind}"));
        }
        if let Some(depth) = self.depth {
            s.push_str(&format!(" --depth {depth}"));
        }
        if let Some(engine) = &self.engine {
            s.push_str(&format!(" --engine {engine}"));
        }
        s
    }
}

impl Subject {
    /// Loads the scenario with the `--set`s and the scheduler sugar; returns
    /// it with every `--set` it took (for sweep workers). `--depth` needs
    /// pct, from `--sched pct` or from the scenario itself.
    pub fn load(&self) -> Result<(Scenario, Vec<String>), CliError> {
        let sched = &self.sched;
        if sched.depth.is_some() && sched.sched.as_deref() != Some("pct") {
            let mut without_depth = self.sets.clone();
            without_depth.extend(SchedArgs { depth: None, ..sched.clone() }.sets());
            let (s, _) = scenario::load(&self.scenario, &without_depth)?;
            if s.sched.kind != sim::SchedKind::Pct {
                return Err(CliError::bad_input(
                    "--depth: only with --sched pct (or a scenario whose sched.kind is \"pct\")",
                ));
            }
        }
        let all = self.all_sets();
        let (s, _) = scenario::load(&self.scenario, &all)?;
        Ok((s, all))
    }

    /// The `--set`s, then those the scheduler sugar stands for.
    pub fn all_sets(&self) -> Vec<String> {
        let mut all = self.sets.clone();
        all.extend(self.sched.sets());
        all
    }

    /// The replay arguments of a run: its `--set`s, the scheduler sugar, `--swarm`.
    pub fn replay_args(&self, swarm: bool) -> String {
        let mut args: String = self.sets.iter().map(|s| format!(" --set {s}")).collect();
        args.push_str(&self.sched.replay());
        if swarm {
            args.push_str(" --swarm");
        }
        args
    }
}

impl Target {
    /// The scenario and the seed: `--seed`, otherwise `MMSIM_SEED`, otherwise 1.
    pub fn load(&self) -> Result<(Scenario, u64), CliError> {
        let seed = match self.seed {
            Some(s) => s,
            None => match std::env::var("MMSIM_SEED") {
                Ok(v) => v.trim().parse().map_err(|_| {
                    CliError::bad_input(format!("MMSIM_SEED={v:?}: expected an unsigned 64-bit integer"))
                })?,
                Err(_) => 1,
            },
        };
        let (scenario, _) = self.subject.load()?;
        Ok((scenario, seed))
    }
}

/// `--oracle NAME`, when given, names an oracle.
fn check_oracle(oracle: Option<&str>) -> Result<(), CliError> {
    match oracle.filter(|o| !scenarios::oracle::is_oracle(o)) {
        Some(o) => Err(CliError::bad_input(format!("--oracle {o:?}: expected one of: {}", scenarios::oracle::names()))),
        None => Ok(()),
    }
}

/// This executable, which sweeps, benches and real runs start again.
fn this_exe() -> Result<PathBuf, CliError> {
    std::env::current_exe()
        .map_err(|e| CliError::bad_input(format!("cannot find this executable to re-run it: {}", e.kind())))
}

/// Creates (truncates) `path` now, so that an unwritable output is bad input
/// before any run, not an error after it.
fn writable(flag: &str, path: &Path) -> Result<(), CliError> {
    std::fs::File::create(path)
        .map(drop)
        .map_err(|e| CliError::bad_input(format!("{flag} {}: cannot write: {}", path.display(), e.kind())))
}

/// Runs `f`, the run of `scenario` under `seed`; a panic is an internal failure.
fn caught<T>(scenario: &Scenario, seed: u64, f: impl FnOnce() -> T) -> Result<T, CliError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .map_err(|_| CliError::internal(format!("internal panic while running {} --seed {seed}", scenario.name)))
}

/// Prints a report as pretty JSON.
fn print_json(value: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(value).expect("report serialises"));
}
