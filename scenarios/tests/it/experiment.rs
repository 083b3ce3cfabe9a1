//! `mmsim experiment`: a grid of cells, each a seed sweep, into one CSV row per
//! cell and one SVG per metric; bad experiment files refused before any run;
//! scenario `[vars]` and `{var}` placeholders.

use super::mmsim;
use std::path::Path;

/// A 2 x 2 grid on `smoke`, two seeds a cell.
const TINY: &str = r#"
name = "tiny"
description = "latency x stalls on smoke"
scenario = "smoke"
seeds = 2
seed_first = 5
jobs = 2
x = "network.latency_us"
plot = ["violation_rate", "lock_wait_p99_ms", "acquisitions_per_s"]

[grid]
network.latency_us = [1000, 3000]
"gate.stall_ppm" = [0, 20000]
"#;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn a_two_by_two_grid_writes_a_csv_row_per_cell_and_an_svg_per_metric() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "tiny.toml", TINY);
    let out = dir.path().join("out");
    let o = mmsim(&["experiment", &file, "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    let header = &rows[0];
    for column in [
        "gate.stall_ppm",
        "network.latency_us",
        "seeds",
        "failures",
        "fail_rate",
        "fail_ci_lo",
        "fail_ci_hi",
        "lock_exclusion_rate",
        "lock_wait_p99_ms",
        "acquisitions_per_s",
        "bounce_delay_p99_ms",
    ] {
        assert!(header.contains(&column), "no column {column} in {header:?}");
    }
    assert_eq!(rows.len(), 5, "a header and one row per cell:\n{csv}");
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let cells: Vec<(&str, &str)> =
        rows[1..].iter().map(|r| (r[col("gate.stall_ppm")], r[col("network.latency_us")])).collect();
    assert_eq!(cells, [("0", "1000"), ("0", "3000"), ("20000", "1000"), ("20000", "3000")]);
    for r in &rows[1..] {
        assert_eq!(r.len(), header.len());
        assert_eq!(r[col("seeds")], "2");
        assert!(r[col("acquisitions_per_s")].parse::<f64>().unwrap() > 0.0, "{r:?}");
    }
    let seeds = std::fs::read_to_string(out.join("seeds.jsonl")).unwrap();
    assert_eq!(seeds.lines().count(), 8);
    for (metric, axis) in [
        ("violation_rate", "seeds that failed (% of seeds)"),
        ("lock_wait_p99_ms", "lock wait, 99th percentile (ms)"),
        ("acquisitions_per_s", "lock acquisitions per second (per simulated s)"),
    ] {
        let svg = std::fs::read_to_string(out.join(format!("{metric}.svg"))).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{metric}.svg is not an SVG");
        assert!(svg.contains(axis), "{metric}.svg lacks its axis label {axis:?}");
        // One series per value of the other grid key, named by the value in the legend.
        let texts: Vec<&str> = svg.lines().map(str::trim).collect();
        for series in ["0", "20000"] {
            assert!(texts.contains(&series), "{metric}.svg lacks series {series}");
        }
        assert!(svg.contains("lines: gate.stall_ppm"), "{metric}.svg does not name its series key");
    }
}

#[test]
fn experiment_output_is_identical_for_any_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "tiny.toml", TINY);
    let run = |jobs: &str| {
        let out = dir.path().join(format!("j{jobs}"));
        let o = mmsim(&["experiment", &file, "--jobs", jobs, "--out", out.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        (std::fs::read(out.join("results.csv")).unwrap(), std::fs::read(out.join("seeds.jsonl")).unwrap())
    };
    assert_eq!(run("1"), run("3"));
}

/// `labels` name grid keys and values in the plots; `--replot` redraws the
/// plots and the CSV from `seeds.jsonl` without running a seed, so a change
/// of labels shows at once and the data stay the same.
#[test]
fn labels_name_keys_and_values_in_the_plots_and_replot_redraws_without_running() {
    let dir = tempfile::tempdir().unwrap();
    let labelled = |latency: &str| {
        format!(
            "{TINY}
[labels]
\"network.latency_us\" = \"{latency}\"
\"20000\" = \"stalls 2 %\"
"
        )
    };
    let file = write(dir.path(), "tiny.toml", &labelled("one-way latency (us)"));
    let out = dir.path().join("out");
    let o = mmsim(&["experiment", &file, "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let svg = || std::fs::read_to_string(out.join("violation_rate.svg")).unwrap();
    assert!(svg().contains("one-way latency (us)") && svg().contains("stalls 2 %"), "{}", svg());
    let csv = std::fs::read(out.join("results.csv")).unwrap();
    let seeds = std::fs::read(out.join("seeds.jsonl")).unwrap();

    let file = write(dir.path(), "tiny.toml", &labelled("latency between hosts"));
    let o = mmsim(&["experiment", &file, "--out", out.to_str().unwrap(), "--replot"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(svg().contains("latency between hosts") && !svg().contains("one-way latency"));
    assert_eq!(std::fs::read(out.join("results.csv")).unwrap(), csv);
    assert_eq!(std::fs::read(out.join("seeds.jsonl")).unwrap(), seeds);

    // A grid that does not match the lines, or no lines at all, is bad input.
    let other = write(dir.path(), "other.toml", &TINY.replace("seeds = 2", "seeds = 3"));
    let o = mmsim(&["experiment", &other, "--out", out.to_str().unwrap(), "--replot"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("the file asks for 3"));
    let empty = dir.path().join("empty");
    let o = mmsim(&["experiment", &file, "--out", empty.to_str().unwrap(), "--replot"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read"));
}

/// Asserts exit 2, one stderr line containing `needle`, and that nothing ran.
fn check_refused(text: &str, extra: &[&str], needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "e.toml", text);
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    let mut args = vec!["experiment", file.as_str(), "--out", out];
    args.extend_from_slice(extra);
    let o = mmsim(&args);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{needle}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line expected, got {stderr:?}");
    assert!(stderr.contains(needle), "{stderr:?} lacks {needle:?}");
    assert!(std::fs::read(dir.path().join("out/seeds.jsonl")).map_or(true, |s| s.is_empty()), "a seed ran");
}

#[test]
fn bad_experiment_files_are_refused_with_exit_2_before_any_run() {
    let head = "name='e'\ndescription='d'\nscenario='smoke'\nseeds=1\n";
    check_refused(&format!("{head}[grid]\nnetwork.nosuch=[1]\n"), &[], "grid key \"network.nosuch\"");
    check_refused(&format!("{head}[grid]\nvars.nosuch=[1]\n"), &[], "vars.nosuch");
    check_refused(&format!("{head}[grid]\n"), &[], "grid: empty");
    check_refused(&format!("{head}[grid]\nnetwork.latency_us=[]\n"), &[], "empty list");
    check_refused(&format!("{head}[grid]\nnetwork.latency_us=[1000]\n"), &["--jobs", "0"], "jobs");
    check_refused(&format!("{head}colour='red'\n[grid]\nnetwork.latency_us=[1000]\n"), &[], "colour");
    check_refused("name = \n", &[], "experiment:");
    check_refused(&format!("{head}plot=['beauty']\n[grid]\nnetwork.latency_us=[1000]\n"), &[], "unknown metric");
    check_refused(
        &format!("{head}[grid]\nnetwork.latency_us=[1000]\ngate.stall_ppm=[0]\n"),
        &[],
        "x: required with several grid keys",
    );
    check_refused(&format!("{head}[grid]\nnetwork.latency_us=[3600000001]\n"), &[], "network.latency_us");
    check_refused(&format!("{head}[grid]\nnetwork.latency_ms=[1]\n"), &[], "use latency_us");
    check_refused(&format!("{head}oracle='nosuch'\n[grid]\nnetwork.latency_us=[1000]\n"), &[], "oracle");
    check_refused(
        &format!("{head}[grid]\nnetwork.latency_us=[1000]\n[labels]\n'2000' = 'two'\n"),
        &[],
        "labels: \"2000\" is neither a grid key nor a grid value",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "e.toml", &format!("{head}[grid]\nnetwork.latency_us=[1000]\n"));
    let o = mmsim(&["experiment", &file, "--out", "/proc/no-such-dir/out"]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("--out /proc/no-such-dir/out: cannot write") && stderr.trim_end().lines().count() == 1);
    let o = mmsim(&["experiment", "/nonexistent/e.toml"]);
    assert_eq!(o.status.code(), Some(2));
}

fn lock_worker_args(sets: &[&str]) -> Vec<String> {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let (s, _) = scenarios::scenario::load("lock-stress", &sets).unwrap();
    s.world_config(1).hosts[1].boot[0].args.clone()
}

#[test]
fn vars_fill_placeholders_and_set_changes_them() {
    let args = lock_worker_args(&[]);
    assert!(args.contains(&"--lifetime-s=15".to_string()) && args.contains(&"--rounds=25".to_string()), "{args:?}");
    assert!(!args.iter().any(|a| a.is_empty() || a.starts_with("--variant")), "an empty var leaves its argument out");
    let args = lock_worker_args(&["vars.lifetime_s=2.5", "vars.variant=--variant=flufl"]);
    assert!(args.contains(&"--lifetime-s=2.5".to_string()), "{args:?}");
    assert!(args.contains(&"--variant=flufl".to_string()), "{args:?}");
    // JSON braces are not placeholders; a new var may be defined by --set when an argument uses it.
    let (s, _) = scenarios::scenario::load(
        "two-servers-2002-21early",
        &[
            r#"hosts.0.boot.2.args.1=--settings={"outgoing":{"deal_with_permfailures_every":{every}}}"#.into(),
            "vars.every=7".into(),
        ],
    )
    .unwrap();
    let args = &s.world_config(1).hosts[0].boot[2].args;
    assert_eq!(args[1], r#"--settings={"outgoing":{"deal_with_permfailures_every":7}}"#);
}

#[test]
fn bad_vars_are_one_line_errors() {
    let load = |text: &str, sets: &[&str]| {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        scenarios::scenario::parse(text, &sets).unwrap_err().to_string()
    };
    let undefined =
        "name='x'\ndescription='y'\n[[hosts]]\nname='a'\nboot=[{program='smoke-worker', args=['--n={count}']}]\n";
    let e = load(undefined, &[]);
    assert!(e.contains("hosts.0.boot.0.args.0: undefined variable {count}; defined: posts, profile"), "{e}");
    let defined = format!("{undefined}[vars]\ncount = 3\n");
    let e = load(&defined, &["vars.cuont=4"]);
    assert!(e.contains("vars.cuont: no such variable; no boot argument says {cuont}"), "{e}");
    let reserved = format!("{undefined}[vars]\ncount = 3\nposts = 2\n");
    assert!(load(&reserved, &[]).contains("vars.posts: reserved"));
    for e in [load(undefined, &[]), load(&defined, &["vars.cuont=4"])] {
        assert_eq!(e.lines().count(), 1, "{e}");
    }
}

/// Every shipped experiment (`scenarios/experiments/*.toml`) loads: its grid,
/// its `set`s and vars, every cell's scenario and its metrics and oracle.
#[test]
fn every_shipped_experiment_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.iter().any(|p| p.ends_with("bracket-2002-disk.toml")), "{files:?}");
    for file in &files {
        if let Err(e) = scenarios::experiment::Experiment::load(file, Some(1)) {
            panic!("{}: {e}", file.display());
        }
    }
}
