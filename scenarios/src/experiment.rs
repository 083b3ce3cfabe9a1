//! Experiments: a grid of `--set` values, each cell a seed sweep, summed up as
//! one CSV row per cell and one SVG plot per metric.
//!
//! An experiment file (TOML, `docs/experiment-format.md`) names a scenario, the
//! seeds per cell, fixed `set`s and a `[grid]` of scenario key → values. Every
//! cell is checked by loading the scenario with its `--set`s before any seed
//! runs, so an unknown key, an empty grid or an unwritable output directory is a
//! one-line bad-input error (exit 2) at once. Each cell then runs as a sweep
//! (`sweep.rs`: isolated workers, watchdog, seed order), so a cell's lines are
//! the same for any `jobs`.
//!
//! Left out: adaptive sampling (every cell gets the same seeds) and
//! resuming a half-finished experiment.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::run::exit;
use crate::scenario::{self, InputError};
use crate::sweep::{self, SeedLine};

/// The experiment file, as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentFile {
    pub name: String,
    /// The question the experiment answers, one line.
    pub description: String,
    /// A builtin scenario name, or a path (relative to the experiment file).
    pub scenario: String,
    /// Seeds per cell.
    pub seeds: u64,
    #[serde(default)]
    pub seed_first: u64,
    /// Worker processes (default: the number of cores).
    #[serde(default)]
    pub jobs: Option<usize>,
    /// Wall-clock seconds one seed may take before it counts as hung.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: u64,
    /// `key=value` overrides applied to every cell, before the grid's.
    #[serde(default)]
    pub set: Vec<String>,
    /// Scenario key → the values it takes. Dotted keys may be written as
    /// nested tables (`vars.lifetime_s = [...]`) or quoted.
    pub grid: toml::Table,
    /// The grid key on the x-axis (required when the grid has several keys);
    /// every combination of the other keys' values is one series.
    #[serde(default)]
    pub x: Option<String>,
    /// Metrics to plot, one SVG each (`METRICS`).
    #[serde(default = "default_plot")]
    pub plot: Vec<String>,
    /// Whose violations `violation_rate` counts: an oracle name, or `any`
    /// (every seed whose exit code is not 0).
    #[serde(default = "default_oracle")]
    pub oracle: String,
    /// Cost metrics to plot `violation_rate` against, one scatter SVG each
    /// (`violation_rate_vs_<metric>.svg`): a point per cell.
    #[serde(default)]
    pub tradeoff: Vec<String>,
    /// Human names for grid keys and values in the plots (`"vars.lifetime_s"
    /// = "lock lifetime (s)"`, `"--variant=flufl" = "flufl.lock"`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn default_timeout_s() -> u64 {
    600
}

fn default_plot() -> Vec<String> {
    vec!["violation_rate".into(), "lock_wait_p99_ms".into(), "acquisitions_per_s".into()]
}

fn default_oracle() -> String {
    "any".into()
}

/// How a metric is summed over a cell's seeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Aggregate {
    /// A share of seeds with its Wilson 95 % interval.
    Rate,
    /// The median over seeds of a per-seed figure, with the quartiles as the interval.
    Median,
    /// One percentile over every seed's values together (no interval).
    Pooled,
    /// A sum over seeds.
    Sum,
    /// A count per 1000 messages, pooled over seeds, with a Wilson 95 %
    /// interval that takes the messages as independent (they are not quite:
    /// one window can bounce several).
    PerThousand,
}

/// A plottable metric.
pub struct Metric {
    pub name: &'static str,
    /// The axis unit.
    pub unit: &'static str,
    /// The metric in words, as a plot's axis names it.
    pub title: &'static str,
    /// What it is, per seed and per cell.
    pub help: &'static str,
}

/// Plottable metrics; `aggregate` says how each is summed over a cell.
pub const METRICS: &[Metric] = &[
    Metric {
        name: "violation_rate",
        unit: "% of seeds",
        title: "seeds that failed",
        help: "seeds that failed (see `oracle`), with a Wilson 95 % interval",
    },
    Metric {
        name: "lock_wait_p99_ms",
        unit: "ms",
        title: "lock wait, 99th percentile",
        help: "median over seeds of each seed's 99th-percentile lock wait",
    },
    Metric {
        name: "lock_contended",
        unit: "lock() calls",
        title: "lock() calls that found the lock held",
        help: "median over seeds of lock() calls that found the lock held",
    },
    Metric {
        name: "acquisitions_per_s",
        unit: "per simulated s",
        title: "lock acquisitions per second",
        help: "median over seeds of lock acquisitions per simulated second",
    },
    Metric {
        name: "deliveries_per_s",
        unit: "per simulated s",
        title: "deliveries per second",
        help: "median over seeds of downstream deliveries per simulated second",
    },
    Metric {
        name: "bounce_delay_p50_ms",
        unit: "ms",
        title: "bounce registration delay, median",
        help: "median delay from a permanent failure to its bounce registration, pooled",
    },
    Metric {
        name: "bounce_delay_p99_ms",
        unit: "ms",
        title: "bounce registration delay, 99th percentile",
        help: "99th-percentile bounce-registration delay, pooled over seeds",
    },
    Metric {
        name: "bounces_unregistered",
        unit: "failures",
        title: "permanent failures never registered",
        help: "permanent failures never registered, summed over seeds",
    },
    Metric {
        name: "bounced_per_1000",
        unit: "per 1000 messages",
        title: "messages bounced per 1000",
        help: "bounces per 1000 injected messages, pooled over seeds (Wilson 95 % interval over messages)",
    },
    Metric {
        name: "bounced_list_missing",
        unit: "messages",
        title: "messages bounced for a missing list",
        help: "messages bounced because a list appeared missing, summed over seeds",
    },
    Metric {
        name: "list_missing_appearances",
        unit: "appearances",
        title: "times a list appeared missing",
        help: "times a process concluded an existing list was missing, summed over seeds",
    },
    Metric {
        name: "rpcs_per_message",
        unit: "RPCs",
        title: "NFS RPCs per message",
        help: "median over seeds of NFS RPCs per injected message",
    },
];

fn aggregate(metric: &str) -> Aggregate {
    match metric {
        "violation_rate" => Aggregate::Rate,
        "bounce_delay_p50_ms" | "bounce_delay_p99_ms" => Aggregate::Pooled,
        "bounces_unregistered" | "bounced_list_missing" | "list_missing_appearances" => Aggregate::Sum,
        "bounced_per_1000" => Aggregate::PerThousand,
        _ => Aggregate::Median,
    }
}

/// One grid key and its values, as `--set` text.
#[derive(Clone, Debug)]
pub struct Axis {
    pub key: String,
    pub values: Vec<String>,
}

/// One cell: a value for every axis, in axis order.
#[derive(Clone, Debug)]
pub struct Cell {
    pub values: Vec<String>,
}

/// A validated experiment, ready to run.
#[derive(Clone, Debug)]
pub struct Experiment {
    pub file: ExperimentFile,
    /// The scenario as `mmsim worker` takes it (a builtin name or a path).
    pub scenario: String,
    pub axes: Vec<Axis>,
    /// Index of the x-axis in `axes`.
    pub x: usize,
    pub cells: Vec<Cell>,
    pub jobs: usize,
}

/// The most cells a grid may have: each is a sweep, and each is loaded up front.
pub const CELLS_MAX: usize = 10_000;

fn bad(msg: impl Into<String>) -> InputError {
    InputError(msg.into())
}

/// Flattens `[grid]` into dotted keys whose values are arrays.
fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<(String, toml::Value)>) {
    for (k, v) in table {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(t) => flatten(&key, t, out),
            other => out.push((key, other.clone())),
        }
    }
}

fn value_text(key: &str, v: &toml::Value) -> Result<String, InputError> {
    match v {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => Ok(v.to_string()),
        _ => Err(bad(format!("grid.{key}: expected a list of strings, numbers or true/false"))),
    }
}

impl Experiment {
    /// Reads and validates an experiment file: every cell's scenario must load.
    pub fn load(path: &Path, jobs: Option<usize>) -> Result<Experiment, InputError> {
        let text = scenario::read_input_file(path)
            .map_err(|e| bad(format!("cannot read experiment file {}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Experiment::parse(&text, base, jobs)
    }

    /// Validates experiment text; `base` resolves a relative scenario path.
    pub fn parse(text: &str, base: &Path, jobs: Option<usize>) -> Result<Experiment, InputError> {
        let file: ExperimentFile = toml::from_str(text)
            .map_err(|e| bad(format!("experiment: {}", crate::scenario::one_line(&e.to_string()))))?;
        // A builtin name (or `NAME/VARIANT`) as it is; a path relative to the experiment file.
        let builtin = |n: &str| scenario::BUILTIN.iter().any(|(b, _)| *b == n);
        let is_builtin = builtin(&file.scenario) || file.scenario.rsplit_once('/').is_some_and(|(b, _)| builtin(b));
        let scenario = if is_builtin || Path::new(&file.scenario).is_absolute() {
            file.scenario.clone()
        } else {
            base.join(&file.scenario).display().to_string()
        };
        if file.seeds == 0 {
            return Err(bad("seeds: expected at least 1 seed per cell"));
        }
        if file.seed_first.checked_add(file.seeds).is_none() {
            return Err(bad("seed_first: too large"));
        }
        let jobs = jobs.or(file.jobs).unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        if jobs == 0 {
            return Err(bad("jobs: expected at least 1"));
        }
        let mut flat = Vec::new();
        flatten("", &file.grid, &mut flat);
        if flat.is_empty() {
            return Err(bad("grid: empty; expected at least one key = [values]"));
        }
        let mut axes = Vec::new();
        for (key, v) in &flat {
            let toml::Value::Array(values) = v else {
                return Err(bad(format!("grid.{key}: expected a list of values")));
            };
            if values.is_empty() {
                return Err(bad(format!("grid.{key}: empty list; expected at least one value")));
            }
            let values = values.iter().map(|v| value_text(key, v)).collect::<Result<Vec<_>, _>>()?;
            let distinct: BTreeSet<&String> = values.iter().collect();
            if distinct.len() != values.len() {
                return Err(bad(format!("grid.{key}: a value appears twice")));
            }
            axes.push(Axis { key: key.clone(), values });
        }
        let x = match &file.x {
            Some(x) => axes.iter().position(|a| &a.key == x).ok_or_else(|| {
                let keys: Vec<&str> = axes.iter().map(|a| a.key.as_str()).collect();
                bad(format!("x: {x:?} is not a grid key; expected one of: {}", keys.join(", ")))
            })?,
            None if axes.len() == 1 => 0,
            None => {
                let keys: Vec<&str> = axes.iter().map(|a| a.key.as_str()).collect();
                return Err(bad(format!("x: required with several grid keys; expected one of: {}", keys.join(", "))));
            }
        };
        for m in &file.plot {
            if !METRICS.iter().any(|x| x.name == m) {
                let names: Vec<&str> = METRICS.iter().map(|x| x.name).collect();
                return Err(bad(format!("plot: unknown metric {m:?}; expected one of: {}", names.join(", "))));
            }
        }
        for m in &file.tradeoff {
            if m == "violation_rate" || !METRICS.iter().any(|x| x.name == m) {
                let names: Vec<&str> = METRICS.iter().map(|x| x.name).filter(|n| *n != "violation_rate").collect();
                return Err(bad(format!("tradeoff: unknown cost metric {m:?}; expected one of: {}", names.join(", "))));
            }
        }
        // Each grid key alone, first: an unknown key is named as the grid's.
        for axis in &axes {
            let mut sets = file.set.clone();
            sets.push(format!("{}={}", axis.key, axis.values[0]));
            scenario::load(&scenario, &sets).map_err(|e| bad(format!("grid key {:?}: {e}", axis.key)))?;
        }
        let cells_total = axes.iter().try_fold(1usize, |n, a| n.checked_mul(a.values.len()));
        if cells_total.is_none_or(|n| n > CELLS_MAX) {
            return Err(bad(format!("grid: more than {CELLS_MAX} cells (the product of the value counts)")));
        }
        let mut cells = vec![Cell { values: Vec::new() }];
        for axis in &axes {
            cells = cells
                .into_iter()
                .flat_map(|c| {
                    axis.values.iter().map(move |v| {
                        let mut values = c.values.clone();
                        values.push(v.clone());
                        Cell { values }
                    })
                })
                .collect();
        }
        for key in file.labels.keys() {
            if !axes.iter().any(|a| &a.key == key || a.values.contains(key)) {
                return Err(bad(format!("labels: {key:?} is neither a grid key nor a grid value")));
            }
        }
        let exp = Experiment { file, scenario, axes, x, cells, jobs };
        let mut oracles = BTreeSet::new();
        for cell in &exp.cells {
            let (s, _) = scenario::load(&exp.scenario, &exp.sets(cell))
                .map_err(|e| bad(format!("cell {}: {e}", exp.label(cell))))?;
            oracles.extend(s.oracles.enabled);
        }
        if exp.file.oracle != "any" && !oracles.contains(&exp.file.oracle) {
            return Err(bad(format!(
                "oracle: {:?} is not enabled in {}; expected any or one of: {}",
                exp.file.oracle,
                exp.file.scenario,
                oracles.into_iter().collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(exp)
    }

    /// The `--set`s of a cell: the fixed ones, then the grid's.
    pub fn sets(&self, cell: &Cell) -> Vec<String> {
        let mut sets = self.file.set.clone();
        sets.extend(self.axes.iter().zip(&cell.values).map(|(a, v)| format!("{}={v}", a.key)));
        sets
    }

    /// `key=value key=value`, for messages and replay commands.
    pub fn label(&self, cell: &Cell) -> String {
        self.axes.iter().zip(&cell.values).map(|(a, v)| format!("{}={v}", a.key)).collect::<Vec<_>>().join(" ")
    }

    /// A grid key or value as the plots name it (`labels`, else as written).
    pub fn human<'a>(&'a self, text: &'a str) -> &'a str {
        self.file.labels.get(text).map_or(text, String::as_str)
    }

    /// The series a cell belongs to: its values of every axis but x.
    pub fn series(&self, cell: &Cell) -> String {
        let parts: Vec<String> = self
            .axes
            .iter()
            .zip(&cell.values)
            .enumerate()
            .filter(|(i, _)| *i != self.x)
            .map(|(_, (a, v))| {
                if self.axes.len() == 2 {
                    self.human(v).to_string()
                } else {
                    format!("{}: {}", self.human(&a.key), self.human(v))
                }
            })
            .collect();
        if parts.is_empty() {
            self.file.scenario.clone()
        } else {
            parts.join(", ")
        }
    }
}

/// The output files, created (empty) up front so that an unwritable path fails before any seed runs.
pub struct Outputs {
    pub dir: PathBuf,
}

impl Outputs {
    pub fn prepare(dir: &Path) -> Result<Outputs, InputError> {
        let fail = |e: std::io::Error| bad(format!("--out {}: cannot write: {}", dir.display(), e.kind()));
        std::fs::create_dir_all(dir).map_err(fail)?;
        for name in ["results.csv", "seeds.jsonl"] {
            std::fs::File::create(dir.join(name)).map_err(fail)?;
        }
        Ok(Outputs { dir: dir.to_path_buf() })
    }
}

/// One metric's value in one cell, with its interval when it has one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub y: f64,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
}

/// A finished cell.
#[derive(Clone, Debug)]
pub struct CellResult {
    pub cell: Cell,
    pub lines: Vec<SeedLine>,
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // Nearest rank, as the run report's lock-wait percentiles.
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn per_second(count: u64, until_ms: u64) -> f64 {
    if until_ms == 0 {
        0.0
    } else {
        count as f64 * 1000.0 / until_ms as f64
    }
}

impl CellResult {
    fn failed(&self, oracle: &str, l: &SeedLine) -> Option<bool> {
        if oracle == "any" {
            Some(l.exit_code != exit::PASS)
        } else {
            l.oracles.get(oracle).map(|s| s == "fail")
        }
    }

    /// (failures, seeds it was judged on) for `oracle` (`any`: the exit code).
    pub fn failures(&self, oracle: &str) -> (u64, u64) {
        let judged: Vec<bool> = self.lines.iter().filter_map(|l| self.failed(oracle, l)).collect();
        (judged.iter().filter(|f| **f).count() as u64, judged.len() as u64)
    }

    fn per_seed(&self, metric: &str) -> Vec<f64> {
        let mut v: Vec<f64> = self
            .lines
            .iter()
            .filter(|l| l.exit_code != exit::PANIC)
            .map(|l| match metric {
                "lock_wait_p99_ms" => l.lock_wait_ms.p99 as f64,
                "lock_contended" => l.marks.get("lock_contended").copied().unwrap_or(0) as f64,
                "acquisitions_per_s" => per_second(l.lock_wait_ms.acquisitions, l.figures.last_acquired_ms),
                "deliveries_per_s" => per_second(l.figures.deliveries, l.figures.last_delivery_ms),
                "bounces_unregistered" => {
                    l.figures.permanent_failures.saturating_sub(l.figures.bounce_delays_ms.len() as u64) as f64
                }
                "bounced_list_missing" => l.figures.mail.bounced_list_missing as f64,
                "list_missing_appearances" => l.figures.mail.appearances() as f64,
                "rpcs_per_message" if l.figures.mail.injected == 0 => f64::NAN,
                "rpcs_per_message" => l.rpcs as f64 / l.figures.mail.injected as f64,
                other => unreachable!("metric {other} is not per seed"),
            })
            .collect();
        v.sort_by(f64::total_cmp);
        v
    }

    /// The cell's value of `metric` (`violation_rate` counts `oracle`).
    pub fn metric(&self, metric: &str, oracle: &str) -> Point {
        match aggregate(metric) {
            Aggregate::Rate => {
                let (k, n) = self.failures(oracle);
                let (lo, hi) = sweep::wilson(k, n);
                let y = if n == 0 { f64::NAN } else { k as f64 / n as f64 };
                Point { y, lo: Some(lo), hi: Some(hi) }
            }
            Aggregate::Median => {
                let v = self.per_seed(metric);
                Point { y: quantile(&v, 0.5), lo: Some(quantile(&v, 0.25)), hi: Some(quantile(&v, 0.75)) }
            }
            Aggregate::Sum => Point { y: self.per_seed(metric).iter().sum(), lo: None, hi: None },
            Aggregate::PerThousand => {
                let mail = sweep::total_mail(&self.lines);
                let (lo, hi) = sweep::wilson(mail.bounced, mail.injected);
                Point { y: mail.bounced_per_1000(), lo: Some(1000.0 * lo), hi: Some(1000.0 * hi) }
            }
            Aggregate::Pooled => {
                let mut all: Vec<f64> =
                    self.lines.iter().flat_map(|l| l.figures.bounce_delays_ms.iter().map(|d| *d as f64)).collect();
                all.sort_by(f64::total_cmp);
                let q = if metric == "bounce_delay_p50_ms" { 0.5 } else { 0.99 };
                Point { y: quantile(&all, q), lo: None, hi: None }
            }
        }
    }
}

/// Runs every cell, in order; `progress` gets one line per finished cell.
pub fn run(
    exp: &Experiment,
    exe: &Path,
    out: &Outputs,
    progress: &mut dyn FnMut(&str),
) -> std::io::Result<Vec<CellResult>> {
    let mut results = Vec::new();
    let mut jsonl = std::io::BufWriter::new(std::fs::File::create(out.dir.join("seeds.jsonl"))?);
    let seeds = (exp.file.seed_first, exp.file.seed_first + exp.file.seeds);
    for (i, cell) in exp.cells.iter().enumerate() {
        #[allow(clippy::disallowed_methods)] // wall time is reported, never fed to a run
        let started = std::time::Instant::now();
        let mut worker_args = vec![exp.scenario.clone()];
        for s in exp.sets(cell) {
            worker_args.push("--set".into());
            worker_args.push(s);
        }
        // The cell loaded when the experiment was validated, so this cannot fail.
        let sched = scenario::load(&exp.scenario, &exp.sets(cell)).map(|(s, _)| s.sched.label()).unwrap_or_default();
        let opts = sweep::Options {
            exe: exe.to_path_buf(),
            worker_args,
            sched,
            seeds,
            jobs: exp.jobs,
            out: None,
            stop_on_first: false,
            timeout: Duration::from_secs(exp.file.timeout_s.max(1)),
            progress: true,
        };
        let lines = sweep::sweep(&opts)?;
        for l in &lines {
            let mut v = serde_json::to_value(l).expect("a seed line serialises");
            let params: serde_json::Map<String, serde_json::Value> = exp
                .axes
                .iter()
                .zip(&cell.values)
                .map(|(a, v)| (a.key.clone(), serde_json::Value::String(v.clone())))
                .collect();
            v["cell"] = serde_json::Value::from(i);
            v["params"] = serde_json::Value::Object(params);
            serde_json::to_writer(&mut jsonl, &v)?;
            jsonl.write_all(b"\n")?;
        }
        let result = CellResult { cell: cell.clone(), lines };
        let (k, n) = result.failures(&exp.file.oracle);
        progress(&format!(
            "cell {}/{} {}: {k}/{n} failed ({}), lock wait p99 {} ms, {:.1} s wall",
            i + 1,
            exp.cells.len(),
            exp.label(cell),
            exp.file.oracle,
            fmt_num(result.metric("lock_wait_p99_ms", "any").y),
            started.elapsed().as_secs_f64()
        ));
        results.push(result);
    }
    jsonl.flush()?;
    Ok(results)
}

/// The results of an earlier run of `exp`, read back from `dir/seeds.jsonl`
/// (`--replot`): every line's `cell` index must name a cell of the grid, and
/// each cell must hold the file's number of seeds.
pub fn read_results(exp: &Experiment, dir: &Path) -> Result<Vec<CellResult>, InputError> {
    let path = dir.join("seeds.jsonl");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| bad(format!("--replot: cannot read {}: {}", path.display(), e.kind())))?;
    let mut lines: Vec<Vec<SeedLine>> = vec![Vec::new(); exp.cells.len()];
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = || format!("--replot: {}:{}", path.display(), i + 1);
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| bad(format!("{}: {e}", at())))?;
        let cell = v["cell"].as_u64().filter(|c| (*c as usize) < exp.cells.len()).ok_or_else(|| {
            bad(format!(
                "{}: no cell index of this grid ({} cells); was it written by another experiment?",
                at(),
                exp.cells.len()
            ))
        })?;
        let seed_line: SeedLine =
            serde_json::from_value(v).map_err(|e| bad(format!("{}: not a seed line ({e})", at())))?;
        lines[cell as usize].push(seed_line);
    }
    for (cell, l) in exp.cells.iter().zip(&lines) {
        if l.len() as u64 != exp.file.seeds {
            return Err(bad(format!(
                "--replot: cell {} has {} seeds in {}, the file asks for {}",
                exp.label(cell),
                l.len(),
                path.display(),
                exp.file.seeds
            )));
        }
    }
    Ok(exp.cells.iter().cloned().zip(lines).map(|(cell, lines)| CellResult { cell, lines }).collect())
}

fn fmt_num(v: f64) -> String {
    if v.is_nan() {
        String::new()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.4}")
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The mail totals in `results.csv`, as `mail_<name>` (`mail.rs`).
const MAIL_COLUMNS: &[&str] =
    &["injected", "accepted", "delivered", "shunted", "undelivered", "bounced", "bounced_list_missing"];

/// Every oracle that judged some seed, sorted.
fn oracle_names(results: &[CellResult]) -> Vec<String> {
    let names: BTreeSet<&String> = results.iter().flat_map(|r| &r.lines).flat_map(|l| l.oracles.keys()).collect();
    names.into_iter().cloned().collect()
}

/// `results.csv`: one row per cell. Columns: the grid keys; `seeds`,
/// `failures`, `fail_rate`, `fail_ci_lo`, `fail_ci_hi` (any non-zero exit);
/// `crashed` (exit 6); per oracle `<oracle>_failures`, `_rate`, `_ci_lo`,
/// `_ci_hi`; then every other metric, medians with `_q1`/`_q3`.
pub fn csv(exp: &Experiment, results: &[CellResult]) -> String {
    let oracles = oracle_names(results);
    let mut header: Vec<String> = exp.axes.iter().map(|a| a.key.clone()).collect();
    header.extend(["seeds", "failures", "fail_rate", "fail_ci_lo", "fail_ci_hi", "crashed"].map(String::from));
    for o in &oracles {
        for suffix in ["failures", "rate", "ci_lo", "ci_hi"] {
            header.push(format!("{o}_{suffix}"));
        }
    }
    let others: Vec<&str> = METRICS.iter().map(|x| x.name).filter(|n| *n != "violation_rate").collect();
    for m in &others {
        header.push(m.to_string());
        match aggregate(m) {
            Aggregate::Median => {
                header.push(format!("{m}_q1"));
                header.push(format!("{m}_q3"));
            }
            Aggregate::PerThousand => {
                header.push(format!("{m}_ci_lo"));
                header.push(format!("{m}_ci_hi"));
            }
            _ => {}
        }
    }
    header.extend(["permanent_failures", "bounces_registered"].map(String::from));
    header.extend(MAIL_COLUMNS.iter().map(|c| format!("mail_{c}")));
    let mechanisms: Vec<String> = crate::mail::mechanisms().collect();
    header.extend(mechanisms.iter().map(|m| format!("missing_{m}")));
    let mut s = header.iter().map(|h| csv_field(h)).collect::<Vec<_>>().join(",");
    s.push('\n');
    for r in results {
        let mut row: Vec<String> = r.cell.values.clone();
        let rate = |oracle: &str| {
            let (k, n) = r.failures(oracle);
            let p = r.metric("violation_rate", oracle);
            [
                k.to_string(),
                fmt_num(p.y),
                fmt_num(p.lo.unwrap_or(f64::NAN)),
                fmt_num(p.hi.unwrap_or(f64::NAN)),
                n.to_string(),
            ]
        };
        let [k, p, lo, hi, _] = rate("any");
        row.extend([r.lines.len().to_string(), k, p, lo, hi]);
        row.push(r.lines.iter().filter(|l| l.exit_code == exit::PANIC).count().to_string());
        for o in &oracles {
            let [k, p, lo, hi, _] = rate(o);
            row.extend([k, p, lo, hi]);
        }
        for m in &others {
            let p = r.metric(m, "any");
            row.push(fmt_num(p.y));
            if matches!(aggregate(m), Aggregate::Median | Aggregate::PerThousand) {
                row.push(fmt_num(p.lo.unwrap_or(f64::NAN)));
                row.push(fmt_num(p.hi.unwrap_or(f64::NAN)));
            }
        }
        row.push(r.lines.iter().map(|l| l.figures.permanent_failures).sum::<u64>().to_string());
        row.push(r.lines.iter().map(|l| l.figures.bounce_delays_ms.len() as u64).sum::<u64>().to_string());
        let mail = sweep::total_mail(&r.lines);
        row.extend(
            [
                mail.injected,
                mail.accepted,
                mail.delivered,
                mail.shunted,
                mail.undelivered,
                mail.bounced,
                mail.bounced_list_missing,
            ]
            .map(|v| v.to_string()),
        );
        row.extend(mechanisms.iter().map(|m| mail.missing.get(m).copied().unwrap_or(0).to_string()));
        let _ = writeln!(s, "{}", row.iter().map(|v| csv_field(v)).collect::<Vec<_>>().join(","));
    }
    s
}

/// A validated metric by name.
fn metric_of(name: &str) -> &'static Metric {
    METRICS.iter().find(|m| m.name == name).expect("a validated metric")
}

/// One plot's data: per series (in first-seen order), one point per x value.
pub struct PlotData {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_values: Vec<String>,
    pub series: Vec<(String, Vec<Option<Point>>)>,
    /// Draw the y-axis in percent (rates).
    pub percent: bool,
}

pub fn plot_data(exp: &Experiment, results: &[CellResult], metric: &str) -> PlotData {
    let x_values = exp.axes[exp.x].values.clone();
    let mut series: Vec<(String, Vec<Option<Point>>)> = Vec::new();
    for r in results {
        let name = exp.series(&r.cell);
        let xi = x_values.iter().position(|v| *v == r.cell.values[exp.x]).expect("a grid value");
        let slot = match series.iter().position(|(n, _)| *n == name) {
            Some(i) => i,
            None => {
                series.push((name, vec![None; x_values.len()]));
                series.len() - 1
            }
        };
        let p = r.metric(metric, &exp.file.oracle);
        series[slot].1[xi] = (!p.y.is_nan()).then_some(p);
    }
    let unit = metric_of(metric).unit;
    // Milliseconds read as seconds once the data reach ten seconds.
    let y_max =
        series.iter().flat_map(|(_, p)| p.iter().flatten()).map(|p| p.hi.unwrap_or(p.y).max(p.y)).fold(0.0, f64::max);
    let unit = if unit == "ms" && y_max >= 10_000.0 {
        for p in series.iter_mut().flat_map(|(_, p)| p.iter_mut().flatten()) {
            *p = Point { y: p.y / 1000.0, lo: p.lo.map(|v| v / 1000.0), hi: p.hi.map(|v| v / 1000.0) };
        }
        "s"
    } else {
        unit
    };
    let what = if metric == "violation_rate" {
        let oracle = &exp.file.oracle;
        if oracle == "any" {
            "seeds that failed".to_string()
        } else {
            format!("seeds that failed {oracle}")
        }
    } else {
        metric_of(metric).title.to_string()
    };
    let interval = match aggregate(metric) {
        Aggregate::Rate => ", bars: Wilson 95% CI",
        Aggregate::Median => ", median over seeds, bars: quartiles",
        Aggregate::PerThousand => ", pooled, bars: Wilson 95% CI",
        _ => "",
    };
    let lines: Vec<&str> =
        exp.axes.iter().enumerate().filter(|(i, _)| *i != exp.x).map(|(_, a)| exp.human(&a.key)).collect();
    let lines = if lines.is_empty() { String::new() } else { format!("; lines: {}", lines.join(", ")) };
    PlotData {
        title: format!("{}: {what} ({} seeds/cell{interval}{lines})", exp.file.name, exp.file.seeds),
        x_label: exp.human(&exp.axes[exp.x].key).to_string(),
        y_label: format!("{what} ({unit})"),
        x_values: x_values.iter().map(|v| exp.human(v).to_string()).collect(),
        series,
        percent: metric == "violation_rate",
    }
}

/// Writes `results.csv` and one SVG per plotted metric; returns the files written.
pub fn write_outputs(exp: &Experiment, results: &[CellResult], out: &Outputs) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let path = out.dir.join("results.csv");
    std::fs::write(&path, csv(exp, results))?;
    written.push(path);
    for metric in &exp.file.plot {
        let path = out.dir.join(format!("{metric}.svg"));
        let svg = crate::plot::svg(&plot_data(exp, results, metric));
        std::fs::write(&path, svg)?;
        written.push(path);
    }
    for cost in &exp.file.tradeoff {
        let path = out.dir.join(format!("violation_rate_vs_{cost}.svg"));
        std::fs::write(&path, crate::plot::scatter_svg(&tradeoff_data(exp, results, cost)))?;
        written.push(path);
    }
    Ok(written)
}

/// A rate-against-cost plot: one point per cell.
pub struct TradeoffData {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// (cell label, cost, violation rate with its interval).
    pub points: Vec<(String, f64, Point)>,
}

pub fn tradeoff_data(exp: &Experiment, results: &[CellResult], cost: &str) -> TradeoffData {
    let Metric { unit, title: cost_title, .. } = metric_of(cost);
    let points = results
        .iter()
        .map(|r| {
            let label: Vec<&str> = r.cell.values.iter().map(|v| exp.human(v)).collect();
            (label.join(", "), r.metric(cost, &exp.file.oracle).y, r.metric("violation_rate", &exp.file.oracle))
        })
        .filter(|(_, x, p)| !x.is_nan() && !p.y.is_nan())
        .collect();
    let oracle = &exp.file.oracle;
    let what = if oracle == "any" { "seeds that failed".to_string() } else { format!("seeds that failed {oracle}") };
    TradeoffData {
        title: format!(
            "{}: {what} against {} ({} seeds/cell, bars: Wilson 95% CI)",
            exp.file.name, cost_title, exp.file.seeds
        ),
        x_label: format!("{} ({unit})", cost_title),
        y_label: format!("{what} (% of seeds)"),
        points,
    }
}

/// The summary table printed at the end: one line per cell, the plotted metrics.
pub fn summary(exp: &Experiment, results: &[CellResult]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}: {} cells x {} seeds", exp.file.name, results.len(), exp.file.seeds);
    for r in results {
        let figures: Vec<String> = exp
            .file
            .plot
            .iter()
            .map(|m| {
                let p = r.metric(m, &exp.file.oracle);
                if m == "violation_rate" {
                    let (lo, hi) = (p.lo.unwrap_or(0.0), p.hi.unwrap_or(0.0));
                    format!("{m}={:.1}% [{:.1}, {:.1}]", 100.0 * p.y, 100.0 * lo, 100.0 * hi)
                } else {
                    format!("{m}={}", fmt_num(p.y))
                }
            })
            .collect();
        let _ = writeln!(s, "  {}: {}", exp.label(&r.cell), figures.join(" "));
    }
    s
}
