//! `mmsim worker` (internal): the process a sweep job runs seeds in.

use std::process::ExitCode;

use super::{flags, CliError};

impl flags::Worker {
    pub fn run(self) -> Result<ExitCode, CliError> {
        let (scenario, _) = scenarios::scenario::load(&self.scenario, &self.sets)?;
        let job = scenarios::sweep::Job { scenario, check_determinism: self.check_determinism, swarm: self.swarm };
        job.serve(std::io::stdin().lock(), std::io::stdout().lock());
        Ok(ExitCode::SUCCESS)
    }
}
