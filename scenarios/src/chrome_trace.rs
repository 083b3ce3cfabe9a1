//! `mmsim run --trace FILE --trace-format chrome`: the run as Chrome Trace
//! Event JSON, which Perfetto's UI (ui.perfetto.dev) and `chrome://tracing`
//! open as it is.
//!
//! The format is the JSON Object Format of Google's "Trace Event Format"
//! document: `{"traceEvents": [...], "displayTimeUnit": "ns"}`, each event
//! with a name, a category (`cat`), a phase (`ph`), a timestamp in
//! microseconds (`ts`), a process id (`pid`) and a thread id (`tid`). mmsim
//! writes these phases:
//! - `M` (metadata): `process_name` for each host and the NFS server,
//!   `thread_name` for each process (`pid program`);
//! - `X` (complete event, with `dur`): a file call from its start to its
//!   return (`cat` `call`); an RPC (`cat` `rpc`), on the calling process's
//!   track, from the previous reply of the same call, or the call's start, to
//!   its reply: a process waits for one RPC at a time, so that is when it was
//!   on the wire or queued at the server; a lock holding from `LockAcquired`
//!   to the holder's `LockReleasing` (`cat` `lock`), on its own track;
//! - `i` (instant): the server applying a request (`cat` `apply`), a model
//!   annotation (`cat` `note`), a fault or crash (`cat` `fault`), and each
//!   oracle's first violation (`cat` `violation`, global scope).
//!
//! Each call's `args` carry its arguments, outcome, `served_by` and trace
//! event number, so a slice in the UI says what answered it. Time is true
//! simulated time.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
use sim::{Event, EventKind};

use crate::timeline::lock_bars;
use crate::trace_query::{model_event, outcome_text};
use crate::Report;

/// Trace-file formats of `mmsim run --trace`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum TraceFormat {
    /// One JSON object per event and line (the trace as recorded).
    #[default]
    Jsonl,
    /// Chrome Trace Event JSON, for Perfetto and chrome://tracing.
    Chrome,
}

/// The thread id of a lock's track within its host: above any process id.
const LOCK_TID_BASE: u64 = 1 << 20;

#[derive(Serialize)]
struct TraceEvent {
    name: String,
    cat: &'static str,
    ph: &'static str,
    /// Microseconds since the start of the run.
    ts: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    dur: Option<f64>,
    pid: u64,
    tid: u64,
    /// Scope of an instant event: `t` thread, `g` global.
    #[serde(skip_serializing_if = "Option::is_none")]
    s: Option<&'static str>,
    #[serde(skip_serializing_if = "Value::is_null")]
    args: Value,
}

impl TraceEvent {
    /// A complete event (`X`) from `from` to `to` on track `(pid, tid)`.
    fn slice(
        name: String,
        cat: &'static str,
        (pid, tid): (u64, u64),
        from: Duration,
        to: Duration,
        args: Value,
    ) -> Self {
        let dur = Some(us(to.saturating_sub(from)));
        TraceEvent { name, cat, ph: "X", ts: us(from), dur, pid, tid, s: None, args }
    }

    /// An instant event (`i`) at `t`: on track `(pid, tid)`, or across every track.
    fn instant(name: String, cat: &'static str, track: Option<(u64, u64)>, t: Duration, args: Value) -> Self {
        let ((pid, tid), s) = match track {
            Some(track) => (track, "t"),
            None => ((1, 0), "g"),
        };
        TraceEvent { name, cat, ph: "i", ts: us(t), dur: None, pid, tid, s: Some(s), args }
    }

    /// A metadata event (`M`) naming a process (`tid` 0) or a thread.
    fn metadata(what: &str, (pid, tid): (u64, u64), name: &str) -> Self {
        let args = json!({ "name": name });
        TraceEvent { name: what.to_string(), cat: "__metadata", ph: "M", ts: 0.0, dur: None, pid, tid, s: None, args }
    }
}

fn us(t: Duration) -> f64 {
    t.as_nanos() as f64 / 1000.0
}

/// Track ids: one Chrome process per host (the NFS server is its own), in order
/// of first appearance.
#[derive(Default)]
struct Tracks {
    hosts: BTreeMap<String, u64>,
    threads: BTreeMap<(u64, u64), String>,
}

impl Tracks {
    fn host(&mut self, host: &str) -> u64 {
        let next = self.hosts.len() as u64 + 1;
        *self.hosts.entry(host.to_string()).or_insert(next)
    }

    fn thread(&mut self, host: &str, tid: u64, name: impl FnOnce() -> String) -> (u64, u64) {
        let pid = self.host(host);
        self.threads.entry((pid, tid)).or_insert_with(name);
        (pid, tid)
    }
}

const SERVER: &str = "nfs server";

/// Writes `events` (those `keep` selects) of a run with `report` as Chrome
/// Trace Event JSON.
pub fn write(
    w: &mut dyn Write,
    events: &[Event],
    report: &Report,
    keep: &dyn Fn(&Event) -> bool,
) -> std::io::Result<()> {
    let mut tracks = Tracks::default();
    tracks.host(SERVER);
    let mut programs: BTreeMap<(String, u32), String> = BTreeMap::new();
    // span -> (host, pid, call start): a call is recorded when it returns,
    // after its RPCs, so the first pass finds each RPC's caller.
    let mut calls: BTreeMap<u64, (String, u32, Duration)> = BTreeMap::new();
    for e in events {
        match &e.kind {
            EventKind::Start { host, pid, program, .. } => {
                programs.insert((host.to_string(), *pid), program.clone());
            }
            EventKind::Call { span, host, pid, started, .. } => {
                calls.insert(*span, (host.to_string(), *pid, *started));
            }
            _ => {}
        }
    }
    let name_of = |tracks: &mut Tracks, host: &str, pid: u32| {
        let program = programs.get(&(host.to_string(), pid)).cloned().unwrap_or_default();
        tracks.thread(host, u64::from(pid), || format!("{pid} {program}").trim_end().to_string())
    };
    let mut out: Vec<TraceEvent> = Vec::new();
    let mut last_reply: BTreeMap<u64, Duration> = BTreeMap::new();
    for e in events.iter().filter(|e| keep(e)) {
        match &e.kind {
            EventKind::Call { span, host, pid, op, args, outcome, served_by, started } => {
                let track = name_of(&mut tracks, host, *pid);
                let outcome = outcome_text(outcome);
                let args =
                    json!({ "args": args, "outcome": outcome, "served_by": served_by, "event": e.seq, "span": span });
                out.push(TraceEvent::slice(op.to_string(), "call", track, *started, e.t, args));
            }
            EventKind::Rpc { span, host, xid, proc, retransmit, outcome } => {
                let Some((caller, pid, started)) = calls.get(span).cloned() else { continue };
                debug_assert_eq!(caller, **host);
                let track = name_of(&mut tracks, &caller, pid);
                let from = last_reply.get(span).copied().unwrap_or(started).min(e.t);
                last_reply.insert(*span, e.t);
                let args = json!({ "xid": format!("x{xid}"), "outcome": outcome, "retransmit": retransmit, "event": e.seq, "span": span });
                out.push(TraceEvent::slice(proc.to_string(), "rpc", track, from, e.t, args));
            }
            EventKind::Apply { client, xid, proc, args, status, replay } => {
                let track = tracks.thread(SERVER, 0, || "applies".to_string());
                let args = json!({ "client": &**client, "xid": format!("x{xid}"), "args": args, "status": status, "replay": replay, "event": e.seq });
                out.push(TraceEvent::instant(proc.to_string(), "apply", Some(track), e.t, args));
            }
            EventKind::Note { host, pid, text, .. } => {
                let track = name_of(&mut tracks, host, *pid);
                let name = model_event(e)
                    .and_then(|(_, _, m)| serde_json::to_value(m).ok())
                    .and_then(|v| v.get("kind").and_then(Value::as_str).map(str::to_string))
                    .unwrap_or_else(|| "note".to_string());
                out.push(TraceEvent::instant(name, "note", Some(track), e.t, json!({ "note": text, "event": e.seq })));
            }
            EventKind::Fault { text } => {
                out.push(TraceEvent::instant(text.clone(), "fault", None, e.t, json!({ "event": e.seq })));
            }
            EventKind::Crash { host, pid } => {
                let track = match pid {
                    Some(pid) => name_of(&mut tracks, host, *pid),
                    None => tracks.thread(host, 0, || "host".to_string()),
                };
                out.push(TraceEvent::instant(
                    "crash".to_string(),
                    "fault",
                    Some(track),
                    e.t,
                    json!({ "event": e.seq }),
                ));
            }
            EventKind::Start { host, pid, .. } | EventKind::Exit { host, pid, .. } => {
                name_of(&mut tracks, host, *pid);
            }
            EventKind::Drc { .. } => {}
        }
    }
    // Lock holdings, each lock on its own track of its holder's host.
    let by_seq = |seq: u64| sim::event_at(events, seq);
    let mut lock_tids: BTreeMap<String, u64> = BTreeMap::new();
    for bar in lock_bars(events).into_iter().filter(|b| by_seq(b.seq).is_some_and(keep)) {
        let next = LOCK_TID_BASE + lock_tids.len() as u64;
        let tid = *lock_tids.entry(bar.lock.clone()).or_insert(next);
        let track = tracks.thread(&bar.host, tid, || format!("lock {}", bar.lock));
        let args = json!({ "lock": bar.lock, "claim": bar.claim, "event": bar.seq });
        out.push(TraceEvent::slice(format!("held by {}/{}", bar.host, bar.pid), "lock", track, bar.from, bar.to, args));
    }
    // Each failing oracle's first violation, across every track.
    for o in report.oracles.iter().filter(|o| o.status == crate::oracle::Status::Fail) {
        let Some(seq) = o.first_event else { continue };
        let Some(e) = by_seq(seq) else { continue };
        let args = json!({ "oracle": o.name, "violation": o.violations.first(), "event": seq });
        out.push(TraceEvent::instant(format!("violation: {}", o.name), "violation", None, e.t, args));
    }
    let mut meta: Vec<TraceEvent> = Vec::new();
    for (host, &pid) in &tracks.hosts {
        meta.push(TraceEvent::metadata("process_name", (pid, 0), host));
    }
    for (&track, name) in &tracks.threads {
        meta.push(TraceEvent::metadata("thread_name", track, name));
    }
    meta.extend(out);
    let doc = json!({
        "traceEvents": meta,
        "displayTimeUnit": "ns",
        "otherData": { "scenario": report.scenario, "seed": report.seed, "trace_hash": report.trace_hash, "verdict": report.verdict },
    });
    serde_json::to_writer(&mut *w, &doc)?;
    w.write_all(b"\n")
}
