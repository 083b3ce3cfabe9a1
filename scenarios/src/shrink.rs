//! `mmsim shrink`: minimise a failing run while the same oracle keeps failing
//! by the same mechanism.
//!
//! The mechanism signature of a run is its first failing oracle plus the
//! symbols of its first violation: errnos (`ESTALE`), cache kinds
//! (`pos-dentry`, `attr-cache`, …) and the failing operation (`via open`).
//! Shrinking is greedy delta debugging over the scenario itself, with the seed
//! fixed: fewer posts and list members, fewer and shorter faults, lower fault
//! rates, fewer runners, a smaller budget. A candidate is kept when its run
//! fails with the same signature; the search restarts from it until no
//! candidate is kept or the run budget is spent. Shrinking changes the
//! schedule, so a candidate may pass or fail differently: that is why every
//! candidate is re-run, never assumed.

use serde_json::Value;

use crate::oracle::Status;
use crate::scenario::{FaultSpec, Scenario};

/// The failure a shrink must preserve.
pub fn signature(report: &crate::Report) -> Option<String> {
    let o = report.oracles.iter().find(|o| o.status == Status::Fail)?;
    let line = o.violations.first().map(String::as_str).unwrap_or("");
    let mut parts = vec![o.name.clone()];
    let words: Vec<&str> =
        line.split(|c: char| c.is_whitespace() || c == '+' || c == '(' || c == ')' || c == ',' || c == ';').collect();
    for (i, w) in words.iter().enumerate() {
        let is_errno = w.len() > 2 && w.starts_with('E') && w.chars().all(|c| c.is_ascii_uppercase());
        let is_cache = ["pos-dentry", "neg-dentry", "attr-cache", "page-cache", "readdir-cache"].contains(w);
        if is_errno || is_cache {
            parts.push(w.to_string());
        }
        if *w == "via" {
            if let Some(op) = words.get(i + 1) {
                parts.push(format!("via-{op}"));
            }
        }
    }
    parts.dedup();
    Some(parts.join(" "))
}

/// Smaller variants of `s`, most promising first.
fn candidates(s: &Scenario) -> Vec<(String, Scenario)> {
    let mut out = Vec::new();
    let uses_posts = s.hosts.iter().flat_map(|h| &h.boot).flat_map(|b| &b.args).any(|a| a.contains("{posts}"));
    if uses_posts && s.load.posts > 1 {
        let mut c = s.clone();
        c.load.posts = s.load.posts / 2;
        out.push((format!("load.posts {} -> {}", s.load.posts, c.load.posts), c));
    }
    for i in 0..s.faults.len() {
        let mut c = s.clone();
        c.faults.remove(i);
        out.push((format!("drop fault {i}"), c));
        let mut c = s.clone();
        let halved = match &mut c.faults[i] {
            FaultSpec::Partition { window_s, .. } if *window_s > 0.5 => {
                *window_s /= 2.0;
                true
            }
            FaultSpec::RebootServer { down_s, .. } if *down_s > 0.5 => {
                *down_s /= 2.0;
                true
            }
            _ => false,
        };
        if halved {
            out.push((format!("halve fault {i}"), c));
        }
    }
    for (hi, h) in s.hosts.iter().enumerate() {
        for (bi, b) in h.boot.iter().enumerate() {
            for (ai, a) in b.args.iter().enumerate() {
                if let Some(n) = a.strip_prefix("--members=").and_then(|n| n.parse::<u64>().ok()).filter(|n| *n > 1) {
                    let mut c = s.clone();
                    c.hosts[hi].boot[bi].args[ai] = format!("--members={}", n / 2);
                    out.push((format!("{}: --members={} -> {}", h.name, n, n / 2), c));
                }
                if let Some(json) = a.strip_prefix("--settings=") {
                    let Ok(v) = serde_json::from_str::<Value>(json) else { continue };
                    let runners =
                        v.pointer("/mailmanctl/qrunners").and_then(Value::as_array).cloned().unwrap_or_default();
                    for ri in 0..runners.len() {
                        let mut v2 = v.clone();
                        if let Some(Value::Array(list)) = v2.pointer_mut("/mailmanctl/qrunners") {
                            let removed = list.remove(ri);
                            let mut c = s.clone();
                            c.hosts[hi].boot[bi].args[ai] = format!("--settings={v2}");
                            out.push((format!("{}: drop runner {}", h.name, removed["name"]), c));
                        }
                    }
                }
            }
        }
    }
    let f = &s.network.faults;
    for (name, value) in [
        ("drop_request_ppm", f.drop_request_ppm),
        ("drop_reply_ppm", f.drop_reply_ppm),
        ("duplicate_ppm", f.duplicate_ppm),
        ("delay_ppm", f.delay_ppm),
    ] {
        // Off first, then half: a fault kind the failure does not need goes in one run.
        for target in [0, value / 2] {
            if value == 0 || (target == value / 2 && target == 0) {
                continue;
            }
            let mut c = s.clone();
            let g = &mut c.network.faults;
            let slot = match name {
                "drop_request_ppm" => &mut g.drop_request_ppm,
                "drop_reply_ppm" => &mut g.drop_reply_ppm,
                "duplicate_ppm" => &mut g.duplicate_ppm,
                _ => &mut g.delay_ppm,
            };
            *slot = target;
            out.push((format!("network.faults.{name} {value} -> {target}"), c));
        }
    }
    if s.gate.stall_ppm > 0 {
        let mut c = s.clone();
        c.gate.stall_ppm /= 2;
        out.push((format!("gate.stall_ppm {} -> {}", s.gate.stall_ppm, c.gate.stall_ppm), c));
    }
    out
}

pub struct Shrunk {
    pub scenario: Scenario,
    /// The exit code of the original failing run.
    pub exit_code: i32,
    pub signature: String,
    pub runs: u32,
    /// What was kept, in order.
    pub steps: Vec<String>,
}

/// Shrinks `scenario` under `seed`. `None` when the seed does not fail.
pub fn shrink(scenario: &Scenario, seed: u64, runs_max: u32, mut progress: impl FnMut(&str)) -> Option<Shrunk> {
    let first = crate::run(scenario, seed);
    let signature = signature(&first)?;
    progress(&format!("signature: {signature}"));
    let mut best = scenario.clone();
    // The budget need not be larger than the failing run plus a margin.
    let budget_s = (first.sim_time_ms / 1000 + 120).max(60);
    let mut runs = 1;
    let mut steps = Vec::new();
    if budget_s < best.run.duration_s_max {
        let mut c = best.clone();
        c.run.duration_s_max = budget_s;
        runs += 1;
        if self::signature(&crate::run(&c, seed)).as_deref() == Some(signature.as_str()) {
            steps.push(format!("run.duration_s_max -> {budget_s}"));
            best = c;
        }
    }
    'outer: while runs < runs_max {
        for (what, candidate) in candidates(&best) {
            if runs >= runs_max {
                break 'outer;
            }
            runs += 1;
            let report = crate::run(&candidate, seed);
            let kept = self::signature(&report).as_deref() == Some(signature.as_str());
            progress(&format!("{} {what}", if kept { "kept   " } else { "dropped" }));
            if kept {
                steps.push(what);
                best = candidate;
                continue 'outer;
            }
        }
        break;
    }
    best.name = format!("{}-shrunk", scenario.name);
    Some(Shrunk { scenario: best, exit_code: first.exit_code, signature, runs, steps })
}
