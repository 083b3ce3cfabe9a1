//! `no_missing_list`: no process concluded that an existing list does not exist.
//!
//! Three places conclude it (docs/semantics/mailman-queues-runners.md §17, §7, §15):
//! - the MTA router's `require_files` stat got ENOENT, when verifying at RCPT
//!   (550 "Unrouteable address") or when routing again for delivery, and the
//!   message bounced;
//! - `post` exited 1 because `list_exists` or the 2.0 Load failed;
//! - a runner dequeued a message "for missing list" (a shunt in 2.1, a delete in 2.0).
//!
//! A list "exists" from the moment its config was first saved. Each finding names
//! the time, host, pid and errno, and the provenance of the failing call: the
//! `served_by` of that process's last filesystem call on the list's files before
//! the conclusion (an RPC xid, or a cache entry and the event that filled it).

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use model::{ModelEvent, RouteStage};
use sim::{EventKind, Outcome};

use super::{End, Oracle, OracleResult, Property, Seen, Violations};

/// A safety property: a process that concluded an existing list is missing did so at an event.
pub const PROPERTY: Property = Property::Safety;

/// A server apply, as a finding quotes it.
struct Applied {
    seq: u64,
    t: Duration,
    client: Rc<str>,
    xid: u32,
    proc: &'static str,
    args: String,
    status: &'static str,
}

/// `name_state_at`: the server's last change to a list config name, as the
/// server applied it (what the name looked like on the server then).
fn server_state(change: Option<&Applied>) -> String {
    match change {
        Some(a) => format!(
            "last change {} {} {} by {} x{} at t={:.3}s [event {}]",
            a.proc,
            a.args,
            a.status,
            a.client,
            a.xid,
            a.t.as_secs_f64(),
            a.seq
        ),
        None => "no server change to the config before this".into(),
    }
}

/// An apply that can have filled a negative dentry on its client: what a
/// finding says of it.
enum Fill {
    /// A LOOKUP that got NOENT, with the server's last config change before it.
    Lookup { config_before: Option<Rc<Applied>> },
    /// The client's own REMOVE, RMDIR or RENAME away of the name.
    Own { t: Duration, proc: &'static str, args: Box<str>, status: &'static str },
}

struct NegativeFill {
    seq: u64,
    /// The previous fill of the same client and name (an index into `fills`).
    prev: Option<u32>,
    fill: Fill,
}

/// A call on a list's files.
struct Call {
    seq: u64,
    op: &'static str,
    args: String,
    outcome: Outcome,
    served_by: String,
}

/// pid -> list -> the process's last call whose arguments mention `lists/{list}/`.
type CallsOf = BTreeMap<u32, BTreeMap<String, Rc<Call>>>;

#[derive(Default)]
pub struct NoMissingList {
    violations: Violations,
    checked: u64,
    /// list -> when its config was first saved.
    created: BTreeMap<String, Duration>,
    /// The server's last change to a list config.
    config_change: Option<Rc<Applied>>,
    /// host -> pid -> list -> the process's last call on the list's files.
    calls: BTreeMap<Rc<str>, CallsOf>,
    /// Every apply that can have made a name absent on its client, in order.
    fills: Vec<NegativeFill>,
    /// client -> name -> its last such apply (an index into `fills`).
    last_fill: BTreeMap<Rc<str>, BTreeMap<Box<str>, u32>>,
}

/// The name in a quoted-name argument (`21.21 "config.pck"`, as the trace
/// renders a request), still escaped as the trace quotes it.
fn quoted_name(arg: &str) -> Option<&str> {
    let rest = arg.split_once(' ')?.1.strip_prefix('"')?;
    let mut escaped = false;
    for (i, c) in rest.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(&rest[..i]),
            _ => escaped = false,
        }
    }
    None
}

/// The name an apply can have made absent on its client: a LOOKUP's that got
/// NOENT, a REMOVE's or RMDIR's, a RENAME's source, when they succeeded.
fn made_absent<'a>(proc: &str, args: &'a str, status: &str) -> Option<&'a str> {
    match proc {
        "LOOKUP" if status.contains("NOENT") => quoted_name(args),
        "REMOVE" | "RMDIR" | "RENAME" if status == "OK" => quoted_name(args),
        _ => None,
    }
}

impl NoMissingList {
    fn apply(&mut self, seq: u64, t: Duration, kind: &EventKind) {
        let EventKind::Apply { client, xid, proc, args, status, .. } = kind else { return };
        let applied = || Applied { seq, t, client: client.clone(), xid: *xid, proc, args: args.clone(), status };
        if let Some(name) = made_absent(proc, args, status) {
            let fill = match *proc {
                "LOOKUP" => Fill::Lookup { config_before: self.config_change.clone() },
                _ => Fill::Own { t, proc, args: args.as_str().into(), status },
            };
            let names = match self.last_fill.get_mut(&**client) {
                Some(names) => names,
                None => self.last_fill.entry(client.clone()).or_default(),
            };
            let index = self.fills.len() as u32;
            let prev = match names.get_mut(name) {
                Some(last) => Some(std::mem::replace(last, index)),
                None => {
                    names.insert(name.into(), index);
                    None
                }
            };
            self.fills.push(NegativeFill { seq, prev, fill });
        }
        let touches = args.contains("\"config.pck\"") || args.contains("\"config.db\"");
        let changes = crate::trace_query::changes_name(proc);
        if touches && changes {
            self.config_change = Some(Rc::new(applied()));
        }
    }

    /// Remembers a call as its process's last on every list whose files it names.
    fn call(&mut self, seq: u64, kind: &EventKind) {
        let EventKind::Call { host, pid, op, args, outcome, served_by, .. } = kind else { return };
        let mut lists = args.match_indices("lists/").filter_map(|(i, _)| {
            let rest = &args[i + "lists/".len()..];
            rest.find('/').map(|end| &rest[..end])
        });
        let Some(first) = lists.next() else { return };
        let call =
            Rc::new(Call { seq, op, args: args.clone(), outcome: outcome.clone(), served_by: served_by.clone() });
        let pids = match self.calls.get_mut(&**host) {
            Some(pids) => pids,
            None => self.calls.entry(host.clone()).or_default(),
        };
        let by_list = pids.entry(*pid).or_default();
        for list in std::iter::once(first).chain(lists) {
            match by_list.get_mut(list) {
                Some(last) => *last = call.clone(),
                None => {
                    by_list.insert(list.to_string(), call.clone());
                }
            }
        }
    }

    /// The last call by `host/pid` on the files of `list`. When a negative
    /// dentry answered it, what filled the dentry follows.
    fn provenance(&self, host: &str, pid: u32, list: &str) -> String {
        let Some(c) = self.calls.get(host).and_then(|p| p.get(&pid)).and_then(|l| l.get(list)) else {
            return "no matching call".into();
        };
        let result = match &c.outcome {
            Ok(_) => "ok".to_string(),
            Err(errno) => sim::errno_name(*errno).to_string(),
        };
        let mut s = format!("{} {} -> {result} served_by={} [event {}]", c.op, c.args, c.served_by, c.seq);
        let negative = crate::trace_query::parse_served_by(&c.served_by).into_iter().find_map(|p| match p {
            crate::trace_query::Served::Cache("neg-dentry", ev) => Some(ev),
            _ => None,
        });
        if let Some(filled) = negative {
            s.push_str(&self.negative_fill(host, filled, &c.args));
        }
        s
    }

    /// The server's side of the RPC whose reply (event `filled`) made a
    /// negative dentry: this host's last apply before it that can have made
    /// the name absent. A LOOKUP that got NOENT comes with the server's last
    /// change to the config before it (what had made the name absent); this
    /// host's own REMOVE or RENAME (a silly rename of a busy file) speaks for
    /// itself.
    fn negative_fill(&self, host: &str, filled: u64, call_args: &str) -> String {
        let name = call_args.trim_matches('"').rsplit('/').next().unwrap_or("");
        let mut at = self.last_fill.get(host).and_then(|names| names.get(name)).copied();
        let fill = loop {
            let Some(f) = at.map(|i| &self.fills[i as usize]) else { return String::new() };
            if f.seq < filled {
                break f;
            }
            at = f.prev;
        };
        match &fill.fill {
            Fill::Lookup { config_before } => format!(
                "; its negative dentry was filled by a LOOKUP that got NOENT on the server [event {}] after the server's {}",
                fill.seq,
                server_state(config_before.as_deref())
            ),
            Fill::Own { t, proc, args, status } => format!(
                "; its negative dentry was filled by this host's own {proc} {args} {status} at t={:.3}s [event {}]",
                t.as_secs_f64(),
                fill.seq
            ),
        }
    }
}

impl Oracle for NoMissingList {
    fn observe(&mut self, seen: &Seen) {
        let event = seen.event;
        match &event.kind {
            EventKind::Apply { .. } => return self.apply(event.seq, event.t, &event.kind),
            EventKind::Call { .. } => return self.call(event.seq, &event.kind),
            _ => {}
        }
        let Some((host, pid, note)) = seen.note else { return };
        let (list, what, errno) = match note {
            ModelEvent::ListSaved { list, .. } => {
                if !self.created.contains_key(list.as_str()) {
                    self.created.insert(list.clone(), event.t);
                }
                return;
            }
            ModelEvent::MtaRouted { list, decision, errno, stage, .. } => {
                self.checked += 1;
                if *decision != model::RouteDecision::BouncedUnknownList {
                    return;
                }
                let what = match stage {
                    RouteStage::Verify => "the MTA router found no config (RCPT 550, bounce)",
                    RouteStage::Delivery => "the MTA router found no config when delivering (unrouteable, bounce)",
                };
                (list, what, errno.clone())
            }
            ModelEvent::PostExited { list, exit_code: 1, reason, .. } => (list, "post exited 1", reason.clone()),
            ModelEvent::PostExited { .. } => {
                self.checked += 1;
                return;
            }
            ModelEvent::Shunted { list, reason, errno, .. } if reason.is_missing_list() => {
                (list, "a runner shunted a message for a missing list", errno.clone())
            }
            ModelEvent::MessageDeleted { list, reason, .. } if reason.is_missing_list() => {
                (list, "the 2.0 qrunner deleted a message for a missing list", reason.to_string())
            }
            ModelEvent::ListMissing { list, errnos, .. } => (list, "list_exists() was false", errnos.join(",")),
            _ => return,
        };
        let Some(since) = self.created.get(list.as_str()) else { return };
        let text = format!(
            "t={:.3}s {host}/{pid}: {what} for list {list:?} (exists since t={:.3}s), errno {errno}; via {}; on the server: {} [event {}]",
            event.t.as_secs_f64(),
            since.as_secs_f64(),
            self.provenance(host, pid, list),
            server_state(self.config_change.as_deref()),
            event.seq
        );
        self.violations.push(event.seq, || text);
    }

    fn finish(self: Box<Self>, _: &End) -> OracleResult {
        OracleResult::new("no_missing_list", self.checked, self.violations)
    }
}
