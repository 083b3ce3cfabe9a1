//! `mmsim merge`: sweep outputs (shards) combined into one, in seed order.

use std::process::ExitCode;

use super::{code, flags, CliError};

impl flags::Merge {
    pub fn run(self) -> Result<ExitCode, CliError> {
        if self.files.is_empty() {
            return Err(CliError::bad_input("merge: expected at least one results file"));
        }
        let lines = scenarios::sweep::merge(&self.files)?;
        let mut text = String::new();
        for l in &lines {
            text.push_str(&serde_json::to_string(l).expect("line serialises"));
            text.push('\n');
        }
        match &self.out {
            Some(path) => std::fs::write(path, text)
                .map_err(|e| CliError::bad_input(format!("--out {}: {}", path.display(), e.kind())))?,
            None => print!("{text}"),
        }
        eprint!("{}", scenarios::sweep::summary(&lines, "merged", ""));
        Ok(code(lines.iter().map(|l| l.exit_code).max().unwrap_or(0)))
    }
}
