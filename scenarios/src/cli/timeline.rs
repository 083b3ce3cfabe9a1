//! `mmsim timeline`: one seed, a window of it drawn as a self-contained HTML page.

use std::process::ExitCode;

use super::{caught, check_oracle, code, flags, writable, CliError};

impl flags::Timeline {
    pub fn run(self) -> Result<ExitCode, CliError> {
        let (scenario, seed) = self.target.load()?;
        check_oracle(self.oracle.as_deref())?;
        for (flag, v) in [("--from-s", self.from_s), ("--to-s", self.to_s)] {
            if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
                return Err(CliError::bad_input(format!("{flag}: expected a non-negative number of seconds")));
            }
        }
        if let (Some(a), Some(b)) = (self.from_s, self.to_s) {
            if b <= a {
                return Err(CliError::bad_input("--to-s: expected a time after --from-s"));
            }
        }
        let path = &self.out;
        writable("--out", path)?;
        let replay_args = self.target.subject.replay_args(false);
        let out = caught(&scenario, seed, || scenarios::run_full(&scenario, seed, &replay_args))?;
        let events = out.trace.events();
        let only = self.oracle.as_deref();
        let (a, b) = scenarios::timeline::window(&out.report, events, self.from_s, self.to_s, only);
        let html = scenarios::timeline::render(events, &out.report, a, b, only);
        std::fs::write(path, html)
            .map_err(|e| CliError::bad_input(format!("--out {}: {}", path.display(), e.kind())))?;
        println!("wrote {} (t={a:.3}s..{b:.3}s; verdict: {})", path.display(), out.report.verdict);
        Ok(code(out.report.exit_code))
    }
}
