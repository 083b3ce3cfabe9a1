//! `mmsim real`: the model on a real directory with real processes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use scenarios::exit;

use super::{code, flags, print_json, this_exe, CliError};

impl flags::Real {
    pub fn run(self) -> Result<ExitCode, CliError> {
        match self {
            flags::Real::LockStress(cmd) => cmd.run(),
            flags::Real::ListStress(cmd) => cmd.run(),
            flags::Real::Corrupt(cmd) => cmd.run(),
        }
    }
}

impl flags::LockStress {
    fn run(self) -> Result<ExitCode, CliError> {
        let exe = stress_exe(&self.dir, self.processes, self.rounds)?;
        let params = scenarios::real::LockStress {
            dir: self.dir,
            processes: self.processes,
            rounds: self.rounds,
            variant: self.variant,
            retry_ms_spread: self.retry_ms_spread,
            hold_ms: self.hold_ms,
            lifetime_s: self.lifetime_s,
        };
        // The workers' own declaration checks what they will be given (--variant, --lifetime-s, …).
        scenarios::lock_worker::plan(&scenarios::real::worker_args(&params))
            .map_err(|e| CliError::bad_input(format!("lock-worker {e}")))?;
        let report = scenarios::real::lock_stress(&exe, &params)
            .map_err(|e| CliError::bad_input(format!("lock-stress: {}", e.kind())))?;
        if self.json {
            print_json(&report);
        } else {
            println!("dir           {}", report.dir);
            println!(
                "processes     {} x {} rounds ({}), {} failed",
                report.processes, report.rounds, report.variant, report.failed_processes
            );
            println!("acquisitions  {}", report.acquisitions);
            println!("waits         {}", report.waits);
            println!("breaks        {}", report.breaks);
            println!(
                "overlaps      {}{}",
                report.overlaps,
                report.first_overlap.as_deref().map(|f| format!(" (first: {f})")).unwrap_or_default()
            );
            println!("wall          {:.2} s", report.wall_s);
        }
        Ok(stress_exit(report.overlaps > 0, report.failed_processes))
    }
}

impl flags::ListStress {
    fn run(self) -> Result<ExitCode, CliError> {
        let params = self.params;
        let exe = stress_exe(&params.dir, params.processes, params.rounds)?;
        // The programs' own declarations check what they will be given.
        scenarios::install::plan(&scenarios::real::install_args(&params))
            .map_err(|e| CliError::bad_input(format!("install {e}")))?;
        scenarios::list_worker::plan(&scenarios::real::list_worker_args(&params))
            .map_err(|e| CliError::bad_input(format!("list-worker {e}")))?;
        let dir = params.dir.display().to_string();
        let report = scenarios::real::list_stress(&exe, params)
            .map_err(|e| CliError::bad_input(format!("list-stress --dir {dir}: {e}")))?;
        if self.json {
            print_json(&report);
        } else {
            print!("{}", scenarios::real::render_list_stress(&report));
        }
        Ok(stress_exit(report.log.lost_updates > 0, report.failed_processes))
    }
}

impl flags::Corrupt {
    fn run(self) -> Result<ExitCode, CliError> {
        let dir = &self.dir;
        scenarios::corrupt::check_dir(dir).map_err(|e| CliError::bad_input(e.to_string()))?;
        let host = scenarios::real::hostname();
        let report = std::panic::catch_unwind(|| scenarios::corrupt::corrupt(dir, &host))
            .map_err(|_| CliError::internal("internal panic in real corrupt"))?
            .map_err(|e| CliError::bad_input(format!("corrupt: seeding {}: {}", dir.display(), e.kind())))?;
        if self.json {
            print_json(&report);
        } else {
            print!("{}", report.render());
        }
        Ok(code(if report.as_release() { exit::PASS } else { exit::SAFETY }))
    }
}

/// What `lock-stress` and `list-stress` check before any process starts;
/// gives the executable the workers re-execute.
fn stress_exe(dir: &Path, processes: u32, rounds: u32) -> Result<PathBuf, CliError> {
    if processes == 0 || rounds == 0 {
        return Err(CliError::bad_input("--processes and --rounds: expected at least 1"));
    }
    if !dir.is_dir() {
        return Err(CliError::bad_input(format!("--dir {}: not a directory", dir.display())));
    }
    this_exe()
}

/// A stress run's exit: 1 when it saw the violation, 6 when a worker failed, else 0.
fn stress_exit(violated: bool, failed_processes: u32) -> ExitCode {
    code(if violated {
        exit::SAFETY
    } else if failed_processes > 0 {
        exit::PANIC
    } else {
        exit::PASS
    })
}
