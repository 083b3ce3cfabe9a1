//! `mmsim bench`: seeds/s, simulated-to-wall time and peak RSS, each seed in its own process.

use std::process::ExitCode;

use scenarios::scenario;

use super::{flags, print_json, this_exe, CliError};

impl flags::Bench {
    pub fn run(self) -> Result<ExitCode, CliError> {
        let mut engines = Vec::new();
        for e in self.engine.split(',') {
            match e.trim() {
                "events" => engines.push(sim::EngineKind::Events),
                "turmoil" => engines.push(sim::EngineKind::Turmoil),
                other => {
                    return Err(CliError::bad_input(format!(
                        "--engine {other:?}: expected events, turmoil or events,turmoil"
                    )))
                }
            }
        }
        let (scenario, _) = scenario::load(&self.scenario, &self.sets)?;
        if self.seeds == 0 {
            return Err(CliError::bad_input("--seeds: expected at least 1"));
        }
        let scales = scenarios::bench::parse_scales(&self.scale)?;
        for &k in &scales {
            let (scaled, _) = scenarios::bench::scale_sets(&scenario, k)?;
            // Each scale's scenario must load too (a sender's --count has a bound).
            scenario::load(&self.scenario, &[self.sets.clone(), scaled].concat())
                .map_err(|e| CliError::bad_input(format!("--scale {k}: {e}")))?;
        }
        let real_dir = match (self.real, self.dir) {
            (false, None) => None,
            (false, Some(_)) => return Err(CliError::bad_input("--dir: only with --real")),
            (true, None) => return Err(CliError::bad_input("--real: expected --dir DIR")),
            (true, Some(d)) if !d.is_dir() => {
                return Err(CliError::bad_input(format!("--dir {}: not a directory", d.display())))
            }
            (true, Some(d)) => Some(d),
        };
        let opts = scenarios::bench::Options {
            exe: this_exe()?,
            scenario,
            scenario_arg: self.scenario,
            sets: self.sets,
            seeds: (1..=self.seeds).collect(),
            scales,
            engines,
            real_dir,
            real_messages: self.real_messages,
        };
        let report = scenarios::bench::bench(&opts, &mut |line| eprintln!("{line}"))
            .map_err(|e| CliError::internal(format!("bench: {e}")))?;
        if self.json {
            print_json(&report);
        } else {
            print!("{}", report.render());
        }
        Ok(ExitCode::SUCCESS)
    }
}
