//! `mmsim show`: a scenario with every default and profile expanded, after `--set`.

use std::process::ExitCode;

use super::{flags, CliError};

impl flags::Show {
    pub fn run(self) -> Result<ExitCode, CliError> {
        let (_, canonical) = scenarios::scenario::load(&self.subject.scenario, &self.subject.all_sets())?;
        print!("{canonical}");
        Ok(ExitCode::SUCCESS)
    }
}
