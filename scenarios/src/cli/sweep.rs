//! `mmsim sweep`: a range of seeds in isolated worker processes (`mmsim worker`).

use std::process::ExitCode;

use scenarios::sweep;

use super::{code, flags, this_exe, writable, CliError};

impl flags::Sweep {
    pub fn run(self) -> Result<ExitCode, CliError> {
        let range = sweep::parse_seed_range(&self.seeds)?;
        let shard = self.shard.as_deref().map(sweep::parse_shard).transpose()?;
        let (scenario, all_sets) = self.subject.load()?;
        if self.jobs == Some(0) {
            return Err(CliError::bad_input("--jobs: expected at least 1"));
        }
        if let Some(path) = &self.out {
            writable("--out", path)?;
        }
        let mut worker_args = vec![self.subject.scenario.clone()];
        for s in &all_sets {
            worker_args.push("--set".into());
            worker_args.push(s.clone());
        }
        if self.check_determinism {
            worker_args.push("--check-determinism".into());
        }
        if self.swarm {
            worker_args.push("--swarm".into());
        }
        let jobs = self.jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
        let opts = sweep::Options {
            exe: this_exe()?,
            worker_args,
            seeds: sweep::shard_seeds(range.0, range.1, shard),
            jobs,
            out: self.out.clone(),
            stop_on_first: self.stop_on_first,
            timeout: std::time::Duration::from_secs(self.timeout_s.max(1)),
            progress: true,
            sched: scenario.sched.label(),
        };
        let lines = sweep::sweep(&opts).map_err(|e| CliError::bad_input(format!("sweep: {}", e.kind())))?;
        let replay_args = self.subject.replay_args(self.swarm);
        eprint!("{}", sweep::summary(&lines, &self.subject.scenario, &replay_args));
        Ok(code(lines.iter().map(|l| l.exit_code).max().unwrap_or(0)))
    }
}
