//! Queries over one recorded trace, for the oracles and for the tools that
//! look into a run (`explain`, `timeline`, `--dump-at`, the Chrome trace):
//! an [`Index`] by event number, span and xid; what answered a call
//! ([`Served`], parsed from `served_by`); the server procedures that change a
//! name; who held which lock ([`Holdings`]); and events told in words. It reads
//! `sim::Event`s only and never asks the model, and neither the oracles nor the
//! tools it serves import each other through it.

use std::collections::BTreeMap;
use std::time::Duration;

use model::ModelEvent;
use sim::{Event, EventKind};

/// Lookups over one trace: programs by process, calls by span, RPCs and
/// server applies by (client host, xid).
pub struct Index<'a> {
    pub events: &'a [Event],
    programs: BTreeMap<(&'a str, u32), &'a str>,
    calls_by_span: BTreeMap<u64, usize>,
    rpcs_by_xid: BTreeMap<(&'a str, u32), Vec<usize>>,
    applies_by_xid: BTreeMap<(&'a str, u32), Vec<usize>>,
}

impl<'a> Index<'a> {
    /// The event numbered `seq`: looked up by number, not by position, so it
    /// holds for a trace that kept only some events. Every `seq` asked for
    /// here came from an event or a report of this trace.
    pub fn at(&self, seq: u64) -> &'a Event {
        self.get(seq).unwrap_or_else(|| panic!("no event {seq} in this trace"))
    }

    pub fn get(&self, seq: u64) -> Option<&'a Event> {
        sim::event_at(self.events, seq)
    }

    /// The events numbered below `seq`.
    pub fn before(&self, seq: u64) -> &'a [Event] {
        sim::events_before(self.events, seq)
    }

    /// The events numbered `from` up to, not including, `to`.
    pub fn between(&self, from: u64, to: u64) -> &'a [Event] {
        let below_to = self.before(to);
        &below_to[self.before(from).len().min(below_to.len())..]
    }

    /// The events numbered `seq` and above.
    pub fn from(&self, seq: u64) -> &'a [Event] {
        &self.events[self.before(seq).len()..]
    }

    pub fn new(events: &'a [Event]) -> Index<'a> {
        let mut ix = Index {
            events,
            programs: BTreeMap::new(),
            calls_by_span: BTreeMap::new(),
            rpcs_by_xid: BTreeMap::new(),
            applies_by_xid: BTreeMap::new(),
        };
        for (i, e) in events.iter().enumerate() {
            match &e.kind {
                EventKind::Start { host, pid, program, .. } => {
                    ix.programs.insert((&**host, *pid), program.as_str());
                }
                EventKind::Call { span, .. } => {
                    ix.calls_by_span.insert(*span, i);
                }
                EventKind::Rpc { host, xid, .. } => ix.rpcs_by_xid.entry((&**host, *xid)).or_default().push(i),
                EventKind::Apply { client, xid, .. } => ix.applies_by_xid.entry((&**client, *xid)).or_default().push(i),
                _ => {}
            }
        }
        ix
    }

    /// The program `host/pid` runs, or `?`.
    pub fn program(&self, host: &str, pid: u32) -> &str {
        self.programs.get(&(host, pid)).copied().unwrap_or("?")
    }

    /// `host/pid (program)`.
    pub fn who(&self, host: &str, pid: u32) -> String {
        format!("{host}/{pid} ({})", self.program(host, pid))
    }

    /// The call an RPC belongs to (calls are recorded when they return).
    pub fn call_of_span(&self, span: u64) -> Option<&'a Event> {
        self.calls_by_span.get(&span).map(|&i| &self.events[i])
    }

    /// The last RPC event of `host`'s `xid` at or before `before`.
    pub fn rpc_of(&self, host: &str, xid: u32, before: u64) -> Option<&'a Event> {
        let v = self.rpcs_by_xid.get(&(host, xid))?;
        v.iter().rev().map(|&i| &self.events[i]).find(|e| e.seq <= before)
    }

    /// The last server apply of `host`'s `xid` at or before `before`.
    pub fn apply_of(&self, host: &str, xid: u32, before: u64) -> Option<&'a Event> {
        let v = self.applies_by_xid.get(&(host, xid))?;
        v.iter().rev().map(|&i| &self.events[i]).find(|e| e.seq <= before)
    }

    /// The process (host, pid) whose call caused a server apply.
    pub fn caller_of_apply(&self, apply: &Event) -> Option<(&'a str, u32, &'a Event)> {
        let EventKind::Apply { client, xid, .. } = &apply.kind else { return None };
        let rpcs = self.rpcs_by_xid.get(&(&**client, *xid))?;
        // The RPC whose transmission led to this apply is recorded after it (at the reply),
        // or before it when the reply was lost: take the nearest one.
        let rpc = rpcs.iter().map(|&i| &self.events[i]).min_by_key(|e| e.seq.abs_diff(apply.seq))?;
        let EventKind::Rpc { span, .. } = &rpc.kind else { return None };
        let call = self.call_of_span(*span)?;
        match &call.kind {
            EventKind::Call { host, pid, .. } => Some((&**host, *pid, call)),
            _ => None,
        }
    }
}

/// The model annotation carried by a note event, if any.
pub fn model_event(e: &Event) -> Option<(&str, u32, &ModelEvent)> {
    match &e.kind {
        EventKind::Note { host, pid, payload, .. } => payload.downcast_ref::<ModelEvent>().map(|m| (&**host, *pid, m)),
        _ => None,
    }
}

pub fn t(e: &Event) -> String {
    format!("t={:.3}s", e.t.as_secs_f64())
}

/// A call's outcome as the trace shows it: `ok`, `ok <value>` or the errno's name.
pub fn outcome_text(outcome: &sim::Outcome) -> String {
    match outcome {
        Ok(v) if v.is_empty() => "ok".into(),
        Ok(v) => format!("ok {v}"),
        Err(errno) => sim::errno_name(*errno).to_string(),
    }
}

/// One event in words, without its time and number.
pub fn describe(ix: &Index, e: &Event) -> String {
    match &e.kind {
        EventKind::Call { host, pid, op, args, outcome, served_by, .. } => {
            format!("{} {op} {args} -> {} (served by {served_by})", ix.who(host, *pid), outcome_text(outcome))
        }
        EventKind::Rpc { host, xid, proc, retransmit, outcome, .. } => {
            format!("{host} RPC {proc} x{xid} #{retransmit} {outcome}")
        }
        EventKind::Apply { client, xid, proc, args, status, replay } => {
            format!("server: {proc} {args} {status} for {client} x{xid}{}", if *replay { " (replay)" } else { "" })
        }
        EventKind::Drc { client, xid, proc, outcome } => format!("server DRC {outcome} for {client} x{xid} {proc}"),
        EventKind::Note { host, pid, text, .. } => format!("{} noted {text}", ix.who(host, *pid)),
        EventKind::Start { host, pid, program, args, .. } => format!("{host}/{pid} started {program} {args:?}"),
        EventKind::Exit { host, pid, status } => format!("{} exited {status}", ix.who(host, *pid)),
        EventKind::Crash { host, pid: Some(pid) } => format!("{} crashed", ix.who(host, *pid)),
        EventKind::Crash { host, pid: None } => format!("host {host} crashed"),
        EventKind::Fault { text } => format!("fault: {text}"),
    }
}

/// `describe` with the time and the event number.
pub fn step(ix: &Index, e: &Event) -> String {
    format!("{} {} [ev {}]", t(e), describe(ix, e), e.seq)
}
/// One piece of a `served_by` string.
#[derive(Debug, PartialEq, Eq)]
pub enum Served<'s> {
    Xid(u32),
    Cache(&'s str, u64),
    Local,
}

/// Parses `x12+pos-dentry(ev 59)+attr-cache(ev 61)` or `local`.
pub fn parse_served_by(s: &str) -> Vec<Served<'_>> {
    s.split('+')
        .filter_map(|p| {
            if p == "local" {
                return Some(Served::Local);
            }
            if let Some(x) = p.strip_prefix('x').and_then(|x| x.parse().ok()) {
                return Some(Served::Xid(x));
            }
            let (name, rest) = p.split_once("(ev ")?;
            let ev = rest.strip_suffix(')')?.parse().ok()?;
            Some(Served::Cache(name, ev))
        })
        .collect()
}

/// Whether a call was answered without any RPC.
pub fn cache_served(served_by: &str) -> bool {
    !parse_served_by(served_by).iter().any(|p| matches!(p, Served::Xid(_)))
}
/// Whether a server procedure changes the namespace or a file.
pub fn changes_name(proc: &str) -> bool {
    matches!(proc, "RENAME" | "REMOVE" | "CREATE" | "LINK" | "SETATTR" | "WRITE" | "MKDIR" | "RMDIR" | "SYMLINK")
}

/// The server's changes to a name (an Apply whose args quote `basename`) in
/// `(from, to)`, the last `max` of them.
pub fn server_changes<'a>(ix: &Index<'a>, basename: &str, from: u64, to: u64, max: usize) -> Vec<&'a Event> {
    let quoted = format!("\"{basename}\"");
    let mut found: Vec<&Event> = ix
        .between(from, to)
        .iter()
        .rev()
        .filter(
            |e| matches!(&e.kind, EventKind::Apply { proc, args, .. } if changes_name(proc) && args.contains(&quoted)),
        )
        .take(max)
        .collect();
    found.reverse();
    found
}

/// The file named in a call's args: the first quoted token that looks like a path.
pub fn file_of(args: &str) -> Option<&str> {
    args.split('"').skip(1).step_by(2).find(|s| s.contains('/') || s.contains('.'))
}

pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}
/// One lock holding: a claim that acquired its lock and has not let go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holding {
    pub host: String,
    pub pid: u32,
    pub lock: String,
    pub claim: String,
    pub since: Duration,
    /// The `LockAcquired` event.
    pub seq: u64,
}

/// Who holds which lock, by claim, from the model's lock notes: a
/// `LockAcquired` starts a holding, and the holder's `LockReleasing` (or its
/// finding, at a refresh, that it no longer holds the lock) ends it. Fed events
/// in order, it is the one account of lock holdings that the tools share.
#[derive(Default)]
pub struct Holdings {
    by_claim: BTreeMap<String, Holding>,
}

impl Holdings {
    /// The holdings open just before event `before`.
    pub fn before(events: &[Event], before: u64) -> Holdings {
        let mut h = Holdings::default();
        for e in sim::events_before(events, before) {
            h.observe(e);
        }
        h
    }

    /// Feeds one event; returns the holding it ended, if any (a release, or a
    /// second acquisition under the same claim).
    pub fn observe(&mut self, e: &Event) -> Option<Holding> {
        let (host, pid, m) = model_event(e)?;
        match m {
            ModelEvent::LockAcquired { lock, claim } => self.by_claim.insert(
                claim.clone(),
                Holding {
                    host: host.to_string(),
                    pid,
                    lock: lock.clone(),
                    claim: claim.clone(),
                    since: e.t,
                    seq: e.seq,
                },
            ),
            ModelEvent::LockReleasing { claim, .. } | ModelEvent::LockRefreshed { claim, held: false, .. } => {
                self.by_claim.remove(claim)
            }
            _ => None,
        }
    }

    /// The open holdings, by claim.
    pub fn held(&self) -> impl Iterator<Item = &Holding> {
        self.by_claim.values()
    }

    /// The open holdings, by claim, when the trace ends.
    pub fn into_held(self) -> impl Iterator<Item = Holding> {
        self.by_claim.into_values()
    }
}
