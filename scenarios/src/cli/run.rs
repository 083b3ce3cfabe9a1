//! `mmsim run`: one scenario under one seed, its report, and what it can write
//! beside (a trace, logs, the world at one event).

use std::io::Write;
use std::process::ExitCode;

use scenarios::chrome_trace::TraceFormat;
use scenarios::trace_filter::TraceFilter;

use super::{caught, code, flags, print_json, writable, CliError};

impl flags::Run {
    pub fn run(self) -> Result<ExitCode, CliError> {
        let (mut scenario, seed) = self.target.load()?;
        let drawn = if self.swarm { scenarios::swarm::apply(&mut scenario, seed) } else { Vec::new() };
        let filter = self.trace_filter.as_deref().map(TraceFilter::parse).transpose().map_err(CliError::bad_input)?;
        if filter.is_some() && self.trace.is_none() {
            return Err(CliError::bad_input("--trace-filter: needs --trace FILE"));
        }
        if self.trace_format != TraceFormat::Jsonl && self.trace.is_none() {
            return Err(CliError::bad_input("--trace-format: needs --trace FILE"));
        }
        if let Some(dir) = &self.logs {
            scenarios::logs::prepare(dir).map_err(CliError::bad_input)?;
        }
        if let Some(event) = self.dump_at {
            let text = caught(&scenario, seed, || scenarios::dump::dump_at(&scenario, seed, event))?
                .map_err(|e| CliError::bad_input(format!("--dump-at {event}: {e}")))?;
            print!("{text}");
            return Ok(ExitCode::SUCCESS);
        }
        if let Some(path) = &self.trace {
            writable("--trace", path)?;
        }
        let replay_args = self.target.subject.replay_args(self.swarm);
        // The tools that show events keep them all; a run that only reports
        // keeps what the oracles read (the report is the same either way).
        let retention = if self.trace.is_some() || self.logs.is_some() || self.check_determinism {
            sim::Retention::ALL
        } else {
            scenarios::FOR_ORACLES
        };
        let checked = caught(&scenario, seed, || {
            scenarios::run_checked(&scenario, seed, &replay_args, retention, self.check_determinism)
        })?;
        let first = checked.first;
        if let (Some(i), Some(second)) = (checked.divergence, &checked.second) {
            let line = |t: &sim::Trace| t.events().get(i).map(|e| e.line()).unwrap_or_else(|| "(end of trace)".into());
            eprintln!("mmsim: nondeterminism: the two runs diverge at event {i}");
            eprintln!("  first:  {}", line(&first.trace));
            eprintln!("  second: {}", line(&second.trace));
        }
        if let Some(dir) = &self.logs {
            let hosts = scenario.world_config(seed).hosts;
            scenarios::logs::write(dir, first.trace.events(), &hosts)
                .map_err(|e| CliError::bad_input(format!("--logs {}: {}", dir.display(), e.kind())))?;
        }
        let mut report = first.report;
        report.swarm = drawn;
        // After the determinism check, so that a Chrome trace's verdict is the report's.
        if let Some(path) = &self.trace {
            let written = std::fs::File::create(path).and_then(|f| {
                let mut w = std::io::BufWriter::new(f);
                let events = first.trace.events();
                let kept = filter.as_ref().map(|f| f.select(events));
                let keep = |e: &sim::Event| kept.as_ref().is_none_or(|k| k[e.seq as usize]);
                match self.trace_format {
                    TraceFormat::Jsonl => first.trace.write_jsonl(&mut w, &keep)?,
                    TraceFormat::Chrome => scenarios::chrome_trace::write(&mut w, events, &report, &keep)?,
                }
                w.flush()
            });
            written.map_err(|e| CliError::bad_input(format!("--trace {}: {}", path.display(), e.kind())))?;
        }
        if self.json {
            print_json(&report);
        } else {
            print!("{}", report.render());
        }
        Ok(code(report.exit_code))
    }
}
