//! The CLI's contract: bad input gets one clear line and exit code 2, never a
//! panic or a backtrace; the seed comes from --seed, then MMSIM_SEED.

use super::{check_bad_input, mmsim};

#[test]
fn bad_input_gets_one_line_and_exit_code_2() {
    check_bad_input(&["run", "nosuch"], "expected one of: smoke");
    check_bad_input(&["run", "smoke", "--seed", "x"], "--seed");
    check_bad_input(&["run", "smoke", "--seed", "-1"], "-1");
    check_bad_input(&["run", "smoke", "--set", "network.nosuch=1"], "no such key; expected one of:");
    check_bad_input(&["run", "smoke", "--set", "network.latency_us=fast"], "expected an integer");
    check_bad_input(&["run", "smoke", "--set", "network.latency_us=3600000001"], "network.latency_us");
    check_bad_input(&["run", "smoke", "--set", "network.latency_us=-5"], "network.latency_us");
    check_bad_input(&["run", "smoke", "--set", "network.latency_ms=1"], "use latency_us");
    check_bad_input(&["run", "smoke", "--set", "network.faults.delay_ms_max=1"], "use delay_us_max");
    check_bad_input(&["run", "smoke", "--set", "network.engine=warp"], "network.engine");
    check_bad_input(&["run", "smoke", "--engine", "warp"], "warp");
    check_bad_input(&["run", "smoke", "--set", "network.profile=token-ring"], "network.profile");
    check_bad_input(
        &["run", "smoke", "--set", "network.engine=turmoil", "--set", "network.latency_us=0"],
        "turmoil engine cannot represent",
    );
    check_bad_input(&["run", "smoke", "--set", "hosts.9.name=x"], "expected an index below 2");
    check_bad_input(&["run", "smoke", "--set", "noequals"], "expected key=value");
    check_bad_input(&["run", "smoke", "--bogus"], "--bogus");
    check_bad_input(&["frobnicate"], "frobnicate");
    check_bad_input(&["run", "smoke", "--trace", "/nonexistent-dir/x.jsonl"], "--trace");
}

#[test]
fn a_malformed_or_unknown_key_scenario_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bad_toml = dir.path().join("bad.toml");
    std::fs::write(&bad_toml, "name = \n").unwrap();
    check_bad_input(&["run", bad_toml.to_str().unwrap()], "scenario:");
    let unknown = dir.path().join("unknown.toml");
    std::fs::write(&unknown, "name='x'\ndescription='y'\ncolour='red'\n[[hosts]]\nname='a'\n").unwrap();
    check_bad_input(&["run", unknown.to_str().unwrap()], "colour");
    let program = dir.path().join("program.toml");
    std::fs::write(&program, "name='x'\ndescription='y'\n[[hosts]]\nname='a'\nboot=[{program='nope'}]\n").unwrap();
    check_bad_input(&["run", program.to_str().unwrap()], "unknown program \"nope\"");
    check_bad_input(&["run", dir.path().join("missing.toml").to_str().unwrap()], "cannot read");
}

#[test]
fn mmsim_seed_is_used_when_no_seed_flag_is_given_and_a_bad_one_is_refused() {
    let out = crate::mmsim_command().args(["run", "smoke", "--json"]).env("MMSIM_SEED", "8").output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["seed"], 8);
    let out = crate::mmsim_command().args(["run", "smoke"]).env("MMSIM_SEED", "eight").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_report_names_seed_fingerprint_and_verdicts_and_the_trace_is_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.jsonl");
    let out = mmsim(&["run", "smoke", "--seed", "5", "--json", "--trace", trace.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "scenario",
        "seed",
        "sim_time_ms",
        "wall_ms",
        "steps",
        "steps_per_s",
        "events",
        "trace_hash",
        "oracles",
        "fingerprint",
        "lock_wait_ms",
        "marks",
        "counters",
    ] {
        assert!(v.get(key).is_some(), "report lacks {key}");
    }
    for key in ["git_revision", "rustc", "cargo_lock", "scenario"] {
        assert!(v["fingerprint"].get(key).is_some(), "fingerprint lacks {key}");
    }
    let lines = std::fs::read_to_string(&trace).unwrap();
    assert_eq!(lines.lines().count() as u64, v["events"].as_u64().unwrap());
    for line in lines.lines() {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(e.get("kind").is_some());
    }
    let human = String::from_utf8(mmsim(&["run", "smoke", "--seed", "5"]).stdout).unwrap();
    assert!(human.contains("seed        5") && human.contains("trace hash"), "{human}");
}

#[test]
fn every_builtin_scenario_and_variant_loads() {
    for (name, text) in scenarios::scenario::BUILTIN {
        let (s, _) = scenarios::scenario::parse(text, &[]).unwrap();
        scenarios::scenario::load(name, &[]).unwrap();
        for v in &s.variants {
            let full = format!("{name}/{}", v.name);
            let (loaded, _) = scenarios::scenario::load(&full, &[]).unwrap_or_else(|e| panic!("{full}: {e}"));
            assert_eq!(loaded.name, full);
        }
    }
}
