//! `mmsim list`: the builtin scenarios, programs, marks and oracles.

use std::process::ExitCode;

use scenarios::scenario;

use super::{flags, CliError};

impl flags::List {
    pub fn run(self) -> Result<ExitCode, CliError> {
        println!("scenarios:");
        for (name, text) in scenario::BUILTIN {
            let Ok((s, _)) = scenario::parse(text, &[]) else { continue };
            println!("  {name:<32} {}", s.description);
            for v in &s.variants {
                println!("  {:<32} {}", format!("{name}/{}", v.name), v.description);
            }
        }
        println!("programs:");
        for p in scenarios::programs::programs() {
            for line in scenarios::programs::describe(p) {
                println!("{line}");
            }
        }
        println!("marks:");
        for scenarios::marks::Mark { name, description, .. } in scenarios::marks::MARKS {
            println!("  {name:<24} {description}");
        }
        println!("oracles:");
        for scenarios::oracle::OracleSpec { name, description, .. } in scenarios::oracle::ORACLES {
            println!("  {name:<24} {description}");
        }
        Ok(ExitCode::SUCCESS)
    }
}
