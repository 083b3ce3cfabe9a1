//! `mmsim run --dump-at`, `--trace-filter` and `--logs`, and their bad inputs.

use super::{check_bad_input, mmsim};

const SHORT_2002: &[&str] = &["two-servers-2002", "--seed", "3", "--set", "load.posts=10"];

#[test]
fn dump_at_a_late_event_shows_the_list_config_in_the_server_namespace() {
    let mut args = vec!["run"];
    args.extend_from_slice(SHORT_2002);
    args.push("--json");
    let report: serde_json::Value = serde_json::from_slice(&mmsim(&args).stdout).unwrap();
    let events = report["events"].as_u64().unwrap();
    let late = (events - 50).to_string();
    args.pop();
    args.extend_from_slice(&["--dump-at", &late]);
    let out = mmsim(&args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with(&format!("state at event {late} ")), "{text}");
    for section in ["lock holders", "live processes", "open files", "server namespace"] {
        assert!(text.contains(section), "no {section} in:\n{text}");
    }
    assert!(text.contains("  lists/test/config.db ino="), "{text}");
}

#[test]
fn trace_filter_keeps_only_the_events_that_match_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all.jsonl");
    let some = dir.path().join("some.jsonl");
    assert_eq!(mmsim(&["run", "smoke", "--seed", "7", "--trace", all.to_str().unwrap()]).status.code(), Some(0));
    let out = mmsim(&[
        "run",
        "smoke",
        "--seed",
        "7",
        "--trace",
        some.to_str().unwrap(),
        "--trace-filter",
        "host=client1,pid=1,path=lock",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let all = std::fs::read_to_string(all).unwrap();
    let some = std::fs::read_to_string(some).unwrap();
    let kept: Vec<serde_json::Value> = some.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!kept.is_empty(), "the filter kept nothing");
    assert!(kept.len() < all.lines().count());
    for e in &kept {
        let host = e.get("host").or_else(|| e.get("client")).and_then(|h| h.as_str());
        assert_eq!(host, Some("client1"), "{e}");
        if let Some(pid) = e.get("pid").and_then(|p| p.as_u64()) {
            assert_eq!(pid, 1, "{e}");
        }
        // An RPC is judged by its call; everything else carries the path itself.
        if e["kind"] != "rpc" {
            assert!(e.to_string().contains("lock"), "{e}");
        }
    }
}

#[test]
fn logs_are_written_in_mailman_format_under_the_directory_only() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("out").join("logs-here");
    let out = mmsim(&["run", "smoke", "--seed", "7", "--logs", logs.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // Nothing but DIR appeared beside it.
    let siblings: Vec<_> = std::fs::read_dir(dir.path().join("out")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(siblings, vec![std::ffi::OsString::from("logs-here")]);
    let mut files = 0;
    for host in std::fs::read_dir(&logs).unwrap() {
        let host = host.unwrap().path();
        for f in std::fs::read_dir(host.join("logs")).unwrap() {
            let f = f.unwrap().path();
            files += 1;
            let text = std::fs::read_to_string(&f).unwrap();
            let first = text.lines().next().unwrap_or_default();
            // `Jan 15 00:00:01 2002 (3) message`
            let b = first.as_bytes();
            assert!(
                first.len() > 24 && b[3] == b' ' && b[6] == b' ' && b[9] == b':' && b[20] == b' ' && b[21] == b'(',
                "{f:?}: {first:?}"
            );
            assert!(first[16..20].parse::<u32>().is_ok(), "{f:?}: {first:?}");
        }
    }
    assert!(files > 0, "no log files written");
    let locks = std::fs::read_to_string(logs.join("client1").join("logs").join("locks")).unwrap();
    assert!(locks.starts_with("Jan 15 00:00:00 2002 (1) "), "{locks}");
}

#[test]
fn bad_inspection_inputs_get_one_line_and_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.jsonl");
    let trace = trace.to_str().unwrap();
    check_bad_input(&["run", "smoke", "--trace", trace, "--trace-filter", "colour=red"], "unknown key \"colour\"");
    check_bad_input(&["run", "smoke", "--trace", trace, "--trace-filter", "pid=x"], "pid");
    check_bad_input(&["run", "smoke", "--trace-filter", "host=a"], "needs --trace");
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    check_bad_input(&["run", "smoke", "--logs", file.join("sub").to_str().unwrap()], "--logs");
    check_bad_input(&["run", "smoke", "--seed", "7", "--dump-at", "99999999"], "--dump-at 99999999");
    check_bad_input(&["explain", "nosuch"], "expected one of: smoke");
    check_bad_input(&["timeline", "smoke", "--out", "/nonexistent-dir/x.html"], "--out");
    check_bad_input(
        &["timeline", "smoke", "--out", dir.path().join("x.html").to_str().unwrap(), "--from-s", "5", "--to-s", "1"],
        "--to-s",
    );
}

/// `--dump-at` stops between two events of one instant: the server's CREATE
/// of the lock file is in the namespace right after its `apply` event, and not
/// right after the event before it, recorded at the same simulated time. The dump also
/// shows each client's lookup and attribute caches, naming inodes by path.
#[test]
fn dump_at_stops_between_two_events_of_one_step_and_shows_client_caches() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.jsonl");
    // Under turmoil, so that the event before the CREATE shares its 1 ms step.
    let turmoil = ["--engine", "turmoil"];
    let run = ["run", "smoke", "--seed", "7", "--trace", trace.to_str().unwrap()];
    assert_eq!(mmsim(&[&run[..], &turmoil[..]].concat()).status.code(), Some(0));
    let events: Vec<serde_json::Value> =
        std::fs::read_to_string(&trace).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let create = (1..events.len())
        .find(|&i| {
            let e = &events[i];
            e["kind"] == "apply"
                && e["proc"] == "CREATE"
                && e["status"] == "OK"
                && e["args"].as_str().unwrap().contains("\"smoke.lock\"")
                && events[i - 1]["t_us"] == e["t_us"]
        })
        .expect("a CREATE of smoke.lock that shares its instant with the event before it");
    let dump = |seq: usize| {
        let seq = seq.to_string();
        let out = mmsim(&[&["run", "smoke", "--seed", "7", "--dump-at", &seq][..], &turmoil[..]].concat());
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let namespace = |text: &str| text.split("server namespace").nth(1).unwrap().to_string();
    let before = dump(create - 1);
    let after = dump(create);
    assert!(!namespace(&before).contains("  smoke.lock ino="), "{before}");
    assert!(namespace(&after).contains("  smoke.lock ino="), "{after}");
    for section in ["client client1: lookup cache", "client client1: attribute cache", "client client2: lookup cache"] {
        assert!(after.contains(section), "no {section} in:\n{after}");
    }
    assert!(after.lines().any(|l| l.contains(" nlink=") && l.contains("fresh")), "{after}");
}
