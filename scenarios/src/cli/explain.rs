//! `mmsim explain`: one seed, and the causal story of its first violation.

use std::process::ExitCode;

use scenarios::exit;

use super::{caught, check_oracle, code, flags, CliError};

impl flags::Explain {
    pub fn run(self) -> Result<ExitCode, CliError> {
        let (scenario, seed) = self.target.load()?;
        check_oracle(self.oracle.as_deref())?;
        let replay_args = self.target.subject.replay_args(false);
        let out = caught(&scenario, seed, || scenarios::run_full(&scenario, seed, &replay_args))?;
        for line in scenarios::explain::explain(out.trace.events(), &out.report, self.oracle.as_deref()) {
            println!("{line}");
        }
        if out.report.exit_code != exit::PASS {
            println!("replay: {}", out.report.replay);
        }
        Ok(code(out.report.exit_code))
    }
}
