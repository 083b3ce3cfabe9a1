//! `mmsim experiment`: a grid of scenario settings, each cell a seed sweep,
//! written as CSV and plots (or, with `--replot`, redrawn from the seeds).

use std::process::ExitCode;

use scenarios::exit;
use scenarios::experiment::{self, CellResult, Experiment, Outputs};

use super::{code, flags, this_exe, CliError};

impl flags::Experiment {
    pub fn run(self) -> Result<ExitCode, CliError> {
        let exp = Experiment::load(&self.file, self.jobs)?;
        let dir = self.out.unwrap_or_else(|| std::path::Path::new("experiments").join(&exp.file.name));
        if self.replot {
            let results = experiment::read_results(&exp, &dir)?;
            let files = experiment::write_outputs(&exp, &results, &Outputs { dir: dir.clone() })
                .map_err(|e| CliError::bad_input(format!("--out {}: cannot write: {}", dir.display(), e.kind())))?;
            print_summary(&exp, &results, &files);
            return Ok(ExitCode::SUCCESS);
        }
        let outputs = Outputs::prepare(&dir)?;
        let exe = this_exe()?;
        eprintln!(
            "{}: {} cells x {} seeds, {} jobs, into {}",
            exp.file.name,
            exp.cells.len(),
            exp.file.seeds,
            exp.jobs,
            dir.display()
        );
        let results = experiment::run(&exp, &exe, &outputs, &mut |line| eprintln!("{line}"))
            .map_err(|e| CliError::internal(format!("experiment: {e}")))?;
        let files = experiment::write_outputs(&exp, &results, &outputs)
            .map_err(|e| CliError::internal(format!("experiment: writing {}: {e}", dir.display())))?;
        print_summary(&exp, &results, &files);
        // Violations are the experiment's data; only a crashed seed makes it fail.
        let crashed = results.iter().flat_map(|r| &r.lines).any(|l| l.exit_code == exit::PANIC);
        Ok(code(if crashed { exit::PANIC } else { exit::PASS }))
    }
}

fn print_summary(exp: &Experiment, results: &[CellResult], files: &[std::path::PathBuf]) {
    print!("{}", experiment::summary(exp, results));
    for f in files {
        println!("wrote {}", f.display());
    }
}
