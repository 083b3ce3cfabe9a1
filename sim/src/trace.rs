//! The trace: every call, RPC, annotation and fault of a run, in order, and its hash.
//!
//! Two levels of event are linked by a span id: a `Call` (one `Os` call of one
//! process) and the `Rpc`s it caused. The server's side of each RPC is an
//! `Apply`. Annotations (`Note`), process starts and exits, crashes and faults
//! are events too.
//!
//! The trace hash is XXH3-64 (seed 0), computed incrementally over the
//! canonical text of each event, one line per event terminated by `\n`. The
//! canonical text is hand-written (see [`EventKind::canonical`]): errnos appear
//! as symbols (`ENOENT`), hosts by name (never by IP), times as true simulated
//! microseconds; it contains no tokio task ids, no wall time, no pointer and no
//! OS error text. It is therefore the same on every machine and in debug and
//! release builds, for one toolchain and one `Cargo.lock`.

use std::any::Any;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::rc::Rc;
use std::time::Duration;

use serde_json::json;
use xxhash_rust::xxh3::Xxh3;

use crate::errno::errno_name;

/// How a call ended: a short rendering of the value, or an errno.
pub type Outcome = Result<String, i32>;

pub enum EventKind {
    Call {
        span: u64,
        host: Rc<str>,
        pid: u32,
        op: &'static str,
        args: String,
        outcome: Outcome,
        served_by: String,
        started: Duration,
    },
    Rpc {
        span: u64,
        host: Rc<str>,
        xid: u32,
        proc: &'static str,
        retransmit: u32,
        outcome: String,
    },
    Apply {
        client: Rc<str>,
        xid: u32,
        proc: &'static str,
        args: String,
        status: &'static str,
        replay: bool,
    },
    /// The server's DRC answered a request (`hit`) or dropped a duplicate of one in
    /// progress (`in-progress`) without executing it.
    Drc {
        client: Rc<str>,
        xid: u32,
        proc: &'static str,
        outcome: &'static str,
    },
    Note {
        host: Rc<str>,
        pid: u32,
        text: String,
        payload: Rc<dyn Any>,
    },
    Start {
        host: Rc<str>,
        pid: u32,
        incarnation: u32,
        program: String,
        args: Vec<String>,
        parent: Option<u32>,
    },
    Exit {
        host: Rc<str>,
        pid: u32,
        status: String,
    },
    Crash {
        host: Rc<str>,
        pid: Option<u32>,
    },
    Fault {
        text: String,
    },
}

pub struct Event {
    pub seq: u64,
    /// True simulated time.
    pub t: Duration,
    pub kind: EventKind,
}

fn render_outcome(out: &mut String, outcome: &Outcome) {
    match outcome {
        Ok(v) if v.is_empty() => out.push_str("ok"),
        Ok(v) => {
            out.push_str("ok ");
            out.push_str(v);
        }
        Err(e) => out.push_str(&errno_name(*e)),
    }
}

/// Appends `n` in decimal, as `Display` writes it.
fn push_int(out: &mut String, n: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(n));
}

impl EventKind {
    pub fn tag(&self) -> &'static str {
        match self {
            EventKind::Call { .. } => "call",
            EventKind::Rpc { .. } => "rpc",
            EventKind::Apply { .. } => "apply",
            EventKind::Drc { .. } => "drc",
            EventKind::Note { .. } => "note",
            EventKind::Start { .. } => "start",
            EventKind::Exit { .. } => "exit",
            EventKind::Crash { .. } => "crash",
            EventKind::Fault { .. } => "fault",
        }
    }

    /// The canonical text of the event (without time and sequence number).
    /// Columns, by tag:
    /// - `call span host/pid op args -> outcome by=served_by`
    /// - `rpc span host xid PROC #retransmit outcome`
    /// - `apply client xid PROC args status [replay]`
    /// - `drc client xid PROC hit|in-progress`
    /// - `note host/pid text`
    /// - `start host/pid incarnation program args [parent]`
    /// - `exit host/pid status`, `crash host[/pid]`, `fault text`
    pub fn canonical(&self, out: &mut String) {
        out.push_str(self.tag());
        out.push(' ');
        match self {
            // The common events are pushed piece by piece rather than through
            // `write!`: the text is the same, without `core::fmt`'s dispatch,
            // which was most of the cost of a trace line.
            EventKind::Call { span, host, pid, op, args, outcome, served_by, .. } => {
                push_int(out, *span);
                out.push(' ');
                out.push_str(host);
                out.push('/');
                push_int(out, *pid);
                out.push(' ');
                out.push_str(op);
                out.push(' ');
                out.push_str(args);
                out.push_str(" -> ");
                render_outcome(out, outcome);
                out.push_str(" by=");
                out.push_str(served_by);
            }
            EventKind::Rpc { span, host, xid, proc, retransmit, outcome } => {
                push_int(out, *span);
                out.push(' ');
                out.push_str(host);
                out.push_str(" x");
                push_int(out, *xid);
                out.push(' ');
                out.push_str(proc);
                out.push_str(" #");
                push_int(out, *retransmit);
                out.push(' ');
                out.push_str(outcome);
            }
            EventKind::Apply { client, xid, proc, args, status, replay } => {
                out.push_str(client);
                out.push_str(" x");
                push_int(out, *xid);
                out.push(' ');
                out.push_str(proc);
                out.push(' ');
                out.push_str(args);
                out.push(' ');
                out.push_str(status);
                if *replay {
                    out.push_str(" replay");
                }
            }
            EventKind::Drc { client, xid, proc, outcome } => {
                let _ = write!(out, "{client} x{xid} {proc} {outcome}");
            }
            EventKind::Note { host, pid, text, .. } => {
                out.push_str(host);
                out.push('/');
                push_int(out, *pid);
                out.push(' ');
                out.push_str(text);
            }
            EventKind::Start { host, pid, incarnation, program, args, parent } => {
                let _ = write!(out, "{host}/{pid} i{incarnation} {program} {args:?}");
                if let Some(p) = parent {
                    let _ = write!(out, " parent={p}");
                }
            }
            EventKind::Exit { host, pid, status } => {
                let _ = write!(out, "{host}/{pid} {status}");
            }
            EventKind::Crash { host, pid } => match pid {
                Some(pid) => {
                    let _ = write!(out, "{host}/{pid}");
                }
                None => out.push_str(host),
            },
            EventKind::Fault { text } => out.push_str(text),
        }
    }

    pub fn host(&self) -> Option<&str> {
        match self {
            EventKind::Call { host, .. }
            | EventKind::Rpc { host, .. }
            | EventKind::Note { host, .. }
            | EventKind::Start { host, .. }
            | EventKind::Exit { host, .. }
            | EventKind::Crash { host, .. } => Some(host),
            EventKind::Apply { client, .. } | EventKind::Drc { client, .. } => Some(client),
            EventKind::Fault { .. } => None,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        match self {
            EventKind::Call { pid, .. }
            | EventKind::Note { pid, .. }
            | EventKind::Start { pid, .. }
            | EventKind::Exit { pid, .. } => Some(*pid),
            EventKind::Crash { pid, .. } => *pid,
            _ => None,
        }
    }
}

impl Event {
    /// The full canonical line: `seq t_us canonical`.
    pub fn line(&self) -> String {
        let mut s = String::new();
        self.write_line(&mut s);
        s
    }

    fn write_line(&self, out: &mut String) {
        let _ = write!(out, "{} {} ", self.seq, self.t.as_micros());
        self.kind.canonical(out);
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut v = json!({ "seq": self.seq, "t_us": self.t.as_micros() as u64, "kind": self.kind.tag() });
        let m = v.as_object_mut().expect("object");
        let mut put = |k: &str, val: serde_json::Value| {
            m.insert(k.to_string(), val);
        };
        match &self.kind {
            EventKind::Call { span, host, pid, op, args, outcome, served_by, started } => {
                put("span", json!(span));
                put("host", json!(&**host));
                put("pid", json!(pid));
                put("op", json!(op));
                put("args", json!(args));
                match outcome {
                    Ok(v) => put("ok", json!(v)),
                    Err(e) => put("errno", json!(errno_name(*e))),
                }
                put("served_by", json!(served_by));
                put("started_us", json!(started.as_micros() as u64));
            }
            EventKind::Rpc { span, host, xid, proc, retransmit, outcome } => {
                put("span", json!(span));
                put("host", json!(&**host));
                put("xid", json!(xid));
                put("proc", json!(proc));
                put("retransmit", json!(retransmit));
                put("outcome", json!(outcome));
            }
            EventKind::Apply { client, xid, proc, args, status, replay } => {
                put("client", json!(&**client));
                put("xid", json!(xid));
                put("proc", json!(proc));
                put("args", json!(args));
                put("status", json!(status));
                put("replay", json!(replay));
            }
            EventKind::Drc { client, xid, proc, outcome } => {
                put("client", json!(&**client));
                put("xid", json!(xid));
                put("proc", json!(proc));
                put("outcome", json!(outcome));
            }
            EventKind::Note { host, pid, text, .. } => {
                put("host", json!(&**host));
                put("pid", json!(pid));
                put("note", serde_json::from_str(text).unwrap_or_else(|_| json!(text)));
            }
            EventKind::Start { host, pid, incarnation, program, args, parent } => {
                put("host", json!(&**host));
                put("pid", json!(pid));
                put("incarnation", json!(incarnation));
                put("program", json!(program));
                put("args", json!(args));
                put("parent", json!(parent));
            }
            EventKind::Exit { host, pid, status } => {
                put("host", json!(&**host));
                put("pid", json!(pid));
                put("status", json!(status));
            }
            EventKind::Crash { host, pid } => {
                put("host", json!(&**host));
                put("pid", json!(pid));
            }
            EventKind::Fault { text } => put("fault", json!(text)),
        }
        v
    }
}

/// What a trace keeps of each event after hashing it (and showing it to the
/// observer, if any).
///
/// Every event is hashed (the trace hash and the event count never depend on
/// retention); `keep` then decides whether the event is stored, and may store a
/// smaller form of it. A run whose consumers read the events as they are
/// recorded (through [`Trace::set_observer`]) keeps none; the tools that show
/// events (`--trace`, explain, timeline, dump) keep everything.
#[derive(Clone, Copy)]
pub struct Retention {
    /// The event to store, if any. Must keep `seq` order (it sees events in order).
    pub keep: fn(EventKind) -> Option<EventKind>,
    /// Whether to keep the per-event line hashes that name the first divergence
    /// between two runs (8 bytes per event).
    pub line_hashes: bool,
}

impl Retention {
    /// Every event, in full, and every line hash.
    pub const ALL: Retention = Retention { keep: Some, line_hashes: true };
    /// No event and no line hash: only the hash and the count.
    pub const NONE: Retention = Retention { keep: |_| None, line_hashes: false };
}

/// Shown every event as it is recorded, after hashing and before retention
/// decides what to keep. It runs inside the world's borrow of its trace, so it
/// must not call back into the world.
pub type Observer = Box<dyn FnMut(&Event)>;

impl Default for Retention {
    fn default() -> Self {
        Retention::ALL
    }
}

/// The recorded history of one run.
pub struct Trace {
    /// The retained events, in `seq` order (all of them under [`Retention::ALL`]).
    events: Vec<Event>,
    /// How many events were recorded, retained or not: the next `seq`.
    recorded: u64,
    /// XXH3-64 of each event's line, to find the first divergence between two runs.
    line_hashes: Vec<u64>,
    hasher: Xxh3,
    scratch: String,
    retention: Retention,
    observer: Option<Observer>,
}

impl Default for Trace {
    fn default() -> Self {
        Trace::with_retention(Retention::ALL)
    }
}

impl Trace {
    pub fn with_retention(retention: Retention) -> Trace {
        Trace {
            events: Vec::new(),
            recorded: 0,
            line_hashes: Vec::new(),
            hasher: Xxh3::new(),
            scratch: String::new(),
            retention,
            observer: None,
        }
    }

    /// Shows every later event to `observer` as it is recorded (`None`: to no
    /// one); returns the previous observer.
    pub fn set_observer(&mut self, observer: Option<Observer>) -> Option<Observer> {
        std::mem::replace(&mut self.observer, observer)
    }

    /// Changes what later events keep; events already stored stay as they are.
    pub fn set_retention(&mut self, retention: Retention) {
        self.retention = retention;
    }

    pub fn retention(&self) -> Retention {
        self.retention
    }

    pub fn push(&mut self, t: Duration, kind: EventKind) -> u64 {
        let seq = self.recorded;
        self.recorded += 1;
        self.scratch.clear();
        push_int(&mut self.scratch, seq);
        self.scratch.push(' ');
        push_int(&mut self.scratch, t.as_micros());
        self.scratch.push(' ');
        kind.canonical(&mut self.scratch);
        self.scratch.push('\n');
        self.hasher.update(self.scratch.as_bytes());
        if self.retention.line_hashes {
            self.line_hashes.push(xxhash_rust::xxh3::xxh3_64(self.scratch.as_bytes()));
        }
        let event = Event { seq, t, kind };
        if let Some(observe) = &mut self.observer {
            observe(&event);
        }
        if let Some(kind) = (self.retention.keep)(event.kind) {
            self.events.push(Event { seq, t, kind });
        }
        seq
    }

    pub fn hash(&self) -> u64 {
        self.hasher.digest()
    }

    /// The retained events, in `seq` order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The retained event with sequence number `seq`.
    pub fn get(&self, seq: u64) -> Option<&Event> {
        event_at(&self.events, seq)
    }

    /// How many events were recorded (retained or not).
    pub fn len(&self) -> usize {
        self.recorded as usize
    }

    pub fn is_empty(&self) -> bool {
        self.recorded == 0
    }

    /// One hash per recorded event, when the retention keeps them (else empty).
    pub fn line_hashes(&self) -> &[u64] {
        &self.line_hashes
    }

    pub fn write_jsonl(&self, out: &mut dyn Write, keep: &dyn Fn(&Event) -> bool) -> io::Result<()> {
        for e in self.events.iter().filter(|e| keep(e)) {
            serde_json::to_writer(&mut *out, &e.to_json())?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }
}

/// The prefix of `events` (in `seq` order) whose sequence numbers are below `seq`.
pub fn events_before(events: &[Event], seq: u64) -> &[Event] {
    &events[..events.partition_point(|e| e.seq < seq)]
}

/// The event of `events` (in `seq` order) numbered `seq`, if it is there:
/// found by number, not by position, so it holds for a trace that kept only
/// some events.
pub fn event_at(events: &[Event], seq: u64) -> Option<&Event> {
    events_before(events, seq.saturating_add(1)).last().filter(|e| e.seq == seq)
}

/// The first index at which two runs' traces differ, if any.
pub fn first_divergence(a: &[u64], b: &[u64]) -> Option<usize> {
    let n = a.len().min(b.len());
    (0..n).find(|&i| a[i] != b[i]).or(if a.len() != b.len() { Some(n) } else { None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn fault(i: u64) -> EventKind {
        EventKind::Fault { text: format!("fault {i}") }
    }

    /// The observer sees every event, in order, whatever the trace keeps; the
    /// hash and the count do not depend on either.
    #[test]
    fn the_observer_sees_every_event_and_changes_no_hash() {
        let seen: Rc<RefCell<Vec<(u64, String)>>> = Rc::default();
        let mut observed = Trace::with_retention(Retention::NONE);
        let log = seen.clone();
        observed.set_observer(Some(Box::new(move |e: &Event| log.borrow_mut().push((e.seq, e.line())))));
        let mut all = Trace::default();
        for i in 0..5 {
            observed.push(Duration::from_millis(i), fault(i));
            all.push(Duration::from_millis(i), fault(i));
        }
        assert!(observed.events().is_empty());
        assert!(observed.line_hashes().is_empty());
        assert_eq!(observed.len(), 5);
        assert_eq!(observed.hash(), all.hash());
        let lines: Vec<(u64, String)> = all.events().iter().map(|e| (e.seq, e.line())).collect();
        assert_eq!(*seen.borrow(), lines);
        assert!(observed.set_observer(None).is_some());
        observed.push(Duration::from_millis(5), fault(5));
        assert_eq!(seen.borrow().len(), 5);
    }
}
