//! `mmsim bench`: it runs, its JSON has the figures, bad input exits 2.

use super::mmsim;

#[test]
fn bench_runs_each_seed_in_a_child_and_reports_the_figures_as_json() {
    let out = mmsim(&["bench", "--scenario", "smoke", "--seeds", "2", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["scenario"], "smoke");
    let scale = &r["scales"][0];
    assert_eq!(scale["scale"], 1);
    assert_eq!(scale["seeds"].as_array().unwrap().len(), 2);
    for key in [
        "wall_s",
        "sim_s",
        "sim_to_wall",
        "load_sim_to_wall",
        "steps_per_s",
        "events_per_s",
        "rpcs_per_s",
        "messages_per_s",
        "peak_rss_mb",
    ] {
        for stat in ["median", "min", "max"] {
            assert!(scale[key][stat].is_number(), "{key}.{stat} in {scale}");
        }
    }
    let seed = &scale["seeds"][0];
    assert_eq!(seed["exit_code"], 0, "{seed}");
    assert_eq!(seed["sim_s"], 0.4, "smoke seed 1 runs 0.4 simulated seconds: {seed}");
    assert!(seed["peak_rss_mb"].as_f64().unwrap() > 1.0, "the child's peak RSS was read: {seed}");
    assert!(seed["events"].as_u64().unwrap() > 0 && seed["rpcs"].as_u64().unwrap() > 0, "{seed}");
    assert_eq!(seed["trace_hash"].as_str().unwrap().len(), 16, "{seed}");
}

#[test]
fn scale_multiplies_every_sender_count() {
    let (scenario, _) = scenarios::scenario::load("two-servers", &[]).unwrap();
    let (sets, messages) = scenarios::bench::scale_sets(&scenario, 10).unwrap();
    assert_eq!(messages, 20_000);
    assert_eq!(sets, ["load.posts=10000"]);
    let (scaled, _) = scenarios::scenario::load("two-servers", &sets).unwrap();
    assert_eq!(scenarios::bench::scale_sets(&scaled, 1).unwrap().1, 20_000, "the sets apply");
    assert_eq!(scenarios::bench::scale_sets(&scenario, 1).unwrap(), (vec![], 2000));
}

#[test]
fn bench_with_real_runs_the_model_on_a_real_directory_beside_the_simulation() {
    let dir = tempfile::tempdir().unwrap();
    let out = mmsim(&[
        "bench",
        "--scenario",
        "smoke",
        "--seeds",
        "1",
        "--real",
        "--dir",
        dir.path().to_str().unwrap(),
        "--real-messages",
        "5",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let real = &r["scales"][0]["real"];
    assert_eq!(real["messages"], 5, "{real}");
    assert_eq!(real["left_in_queue"], 0, "the real runners drained qfiles/in: {real}");
    assert!(real["messages_per_s"].as_f64().unwrap() > 0.0, "{real}");
}

#[test]
fn bench_refuses_bad_input_with_exit_2() {
    for args in [
        &["bench", "--scenario", "nosuch"][..],
        &["bench", "--scenario", "smoke", "--seeds", "0"],
        &["bench", "--scenario", "smoke", "--scale", "0"],
        &["bench", "--scenario", "smoke", "--scale", "x,2"],
        &["bench", "--scenario", "smoke", "--real"],
        &["bench", "--scenario", "smoke", "--dir", "/tmp"],
        &["bench", "--scenario", "smoke", "--real", "--dir", "/nonexistent-dir"],
        &["bench", "--scenario", "smoke", "--set", "network.nosuch=1"],
    ] {
        let out = mmsim(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn bench_runs_each_engine_side_by_side() {
    let out = mmsim(&["bench", "--scenario", "smoke", "--seeds", "1", "--engine", "events,turmoil"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("engine events | scale 1"), "{text}");
    assert!(text.contains("engine turmoil | scale 1"), "{text}");
    assert!(text.contains("engines side by side (medians; ratio against events)"), "{text}");
    assert!(text.contains("wall s/seed events "), "{text}");
    super::check_bad_input(&["bench", "--scenario", "smoke", "--engine", "warp"], "--engine \"warp\"");
}
