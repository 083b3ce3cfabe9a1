//! `mmsim run --trace FILE --trace-format chrome`: the file follows the Trace
//! Event Format's JSON Object Format (the fields every event must have, by
//! phase), and holds the run: a track per host and process, calls, RPCs and
//! lock holdings as slices, `served_by` in a call's args, and the first
//! violation as a global instant.

use std::collections::BTreeSet;

use serde_json::Value;

use super::explain::SMALL_2002;
use super::{check_bad_input, mmsim};

/// Checks one event against the format: the fields each phase requires, with their types.
fn check_event(e: &Value) -> Result<(), String> {
    let field = |k: &str| e.get(k).ok_or_else(|| format!("no {k:?} in {e}"));
    field("name")?.as_str().ok_or("name is not a string")?;
    field("cat")?.as_str().ok_or("cat is not a string")?;
    field("pid")?.as_u64().ok_or("pid is not an integer")?;
    field("tid")?.as_u64().ok_or("tid is not an integer")?;
    let ts = field("ts")?.as_f64().ok_or("ts is not a number")?;
    if ts < 0.0 {
        return Err(format!("negative ts in {e}"));
    }
    match field("ph")?.as_str() {
        Some("X") => {
            let dur = field("dur")?.as_f64().ok_or("dur is not a number")?;
            if dur < 0.0 {
                return Err(format!("negative dur in {e}"));
            }
        }
        Some("i") => {
            if !matches!(field("s")?.as_str(), Some("t" | "p" | "g")) {
                return Err(format!("instant scope is not t, p or g in {e}"));
            }
        }
        Some("M") => {
            if !matches!(e["name"].as_str(), Some("process_name" | "thread_name")) || !e["args"]["name"].is_string() {
                return Err(format!("metadata without a name in {e}"));
            }
        }
        other => return Err(format!("unexpected phase {other:?} in {e}")),
    }
    Ok(())
}

#[test]
fn a_chrome_trace_holds_tracks_slices_provenance_and_the_violation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.json");
    let mut args = vec!["run"];
    args.extend_from_slice(SMALL_2002);
    args.extend_from_slice(&["--trace", path.to_str().unwrap(), "--trace-format", "chrome"]);
    let out = mmsim(&args);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(doc["displayTimeUnit"], "ns");
    let events = doc["traceEvents"].as_array().unwrap();
    for e in events {
        check_event(e).unwrap();
    }
    let of = |ph: &'static str, cat: &'static str| events.iter().filter(move |e| e["ph"] == ph && e["cat"] == cat);
    // Every track an event uses is named.
    let named: BTreeSet<(u64, u64)> = of("M", "__metadata")
        .filter(|e| e["name"] == "thread_name")
        .map(|e| (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap()))
        .collect();
    let hosts: BTreeSet<&str> = of("M", "__metadata")
        .filter(|e| e["name"] == "process_name")
        .map(|e| e["args"]["name"].as_str().unwrap())
        .collect();
    assert!(hosts.is_superset(&BTreeSet::from(["nfs server", "mail1", "mail2"])), "{hosts:?}");
    for e in events.iter().filter(|e| e["ph"] != "M" && e["s"] != "g") {
        assert!(named.contains(&(e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap())), "unnamed track: {e}");
    }
    let calls: Vec<&Value> = of("X", "call").collect();
    assert!(calls.iter().any(|c| c["args"]["served_by"].as_str().is_some_and(|s| s.contains("dentry"))));
    assert!(of("X", "rpc").count() > 0 && of("i", "apply").count() > 0 && of("X", "lock").count() > 0);
    // Each RPC lies inside its call (the same span), on the call's track.
    let by_span: std::collections::BTreeMap<u64, &Value> =
        calls.iter().map(|c| (c["args"]["span"].as_u64().unwrap(), *c)).collect();
    for r in of("X", "rpc") {
        let c =
            by_span.get(&r["args"]["span"].as_u64().unwrap()).unwrap_or_else(|| panic!("an RPC without its call: {r}"));
        let (ts, end) = (r["ts"].as_f64().unwrap(), r["ts"].as_f64().unwrap() + r["dur"].as_f64().unwrap());
        let (c_ts, c_end) = (c["ts"].as_f64().unwrap(), c["ts"].as_f64().unwrap() + c["dur"].as_f64().unwrap());
        assert!((c["pid"] == r["pid"] && c["tid"] == r["tid"]), "an RPC off its call's track: {r} {c}");
        assert!(c_ts <= ts && end <= c_end + 1e-6, "an RPC outside its call: {r} {c}");
    }
    let violations: Vec<&Value> = of("i", "violation").collect();
    assert!(violations.iter().any(|v| v["args"]["oracle"] == "no_missing_list" && v["s"] == "g"), "{violations:?}");
}

#[test]
fn a_trace_format_needs_a_trace_file() {
    check_bad_input(&["run", "smoke", "--trace-format", "chrome"], "--trace-format: needs --trace FILE");
}
