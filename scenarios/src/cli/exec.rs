//! `mmsim exec` (internal): one program on the real OS; how `RealOs::spawn`
//! starts a child process.

use std::process::ExitCode;

use super::{code, flags, this_exe, CliError};

impl flags::Exec {
    pub fn run(self) -> Result<ExitCode, CliError> {
        if !scenarios::programs::is_program(&self.program) {
            let known: Vec<&str> = scenarios::programs::programs().map(|p| p.name).collect();
            return Err(CliError::bad_input(format!(
                "exec: unknown program {:?}; expected one of: {}",
                self.program,
                known.join(", ")
            )));
        }
        let spawn = model::SpawnConfig {
            exe: this_exe()?,
            args_prefix: vec![
                "exec".into(),
                "--root".into(),
                self.root.display().to_string(),
                "--host".into(),
                self.host.clone(),
            ],
        };
        let os = model::RealOs::new(self.root, self.host).with_spawn(spawn);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
        let local = tokio::task::LocalSet::new();
        let status = local.block_on(&runtime, scenarios::programs::run(os, &self.program, &self.args));
        Ok(code(status))
    }
}
