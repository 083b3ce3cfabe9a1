//! `mmsim shrink`: a failing run made smaller while the same oracle fails the same way.

use std::process::ExitCode;

use super::{code, flags, writable, CliError};

impl flags::Shrink {
    pub fn run(self) -> Result<ExitCode, CliError> {
        let (scenario, _) = self.subject.load()?;
        let name = &self.subject.scenario;
        let seed = self.seed;
        let path = self.out.unwrap_or_else(|| format!("{}-seed-{seed}-shrunk.toml", name.replace('/', "_")).into());
        writable("--out", &path)?;
        let Some(shrunk) =
            scenarios::shrink::shrink(&scenario, seed, self.runs_max.max(2), |line| eprintln!("shrink: {line}"))
        else {
            let _ = std::fs::remove_file(&path);
            println!("{name} --seed {seed} does not fail: nothing to shrink");
            return Ok(ExitCode::SUCCESS);
        };
        let text = toml::to_string(&shrunk.scenario).expect("scenario serialises");
        std::fs::write(&path, &text)
            .map_err(|e| CliError::bad_input(format!("--out {}: {}", path.display(), e.kind())))?;
        println!("{text}");
        println!("# signature: {}", shrunk.signature);
        println!(
            "# {} runs; kept: {}",
            shrunk.runs,
            if shrunk.steps.is_empty() { "nothing".into() } else { shrunk.steps.join("; ") }
        );
        println!("# replay: mmsim run {} --seed {seed}", path.display());
        Ok(code(shrunk.exit_code))
    }
}
