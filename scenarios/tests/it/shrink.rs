//! `mmsim shrink` prints a smaller scenario that still fails the same way.

#[test]
fn shrink_prints_a_smaller_scenario_that_still_fails_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("shrunk.toml");
    let sets = ["--set", "nfs.client=linux-2.2", "--set", "nfs.server=linux-2.2"];
    let out = crate::mmsim_command()
        .args(["shrink", "smoke", "--seed", "2"])
        .args(sets)
        .args(["--out", out_path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("# signature: lock_exclusion"), "{stdout}");
    assert!(stdout.contains(&format!("# replay: mmsim run {} --seed 2", out_path.display())), "{stdout}");
    // Smaller: the budget and the jitter were cut.
    let (original, _) =
        scenarios::scenario::load("smoke", &["nfs.client=linux-2.2".into(), "nfs.server=linux-2.2".into()]).unwrap();
    let (shrunk, _) = scenarios::scenario::load(out_path.to_str().unwrap(), &[]).unwrap();
    assert!(shrunk.run.duration_s_max < original.run.duration_s_max);
    assert!(shrunk.network.faults.delay_ppm < original.network.faults.delay_ppm);
    // And it fails the same way on replay.
    let before = scenarios::run(&original, 2);
    let after = scenarios::run(&shrunk, 2);
    assert_eq!(scenarios::shrink::signature(&after), scenarios::shrink::signature(&before));
}

#[test]
fn shrinking_a_passing_seed_says_so_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::mmsim_command()
        .args(["shrink", "smoke", "--seed", "7", "--out", dir.path().join("s.toml").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("does not fail"));
}
