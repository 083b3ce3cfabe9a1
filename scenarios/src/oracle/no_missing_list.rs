//! `no_missing_list`: no process concluded that an existing list does not exist.
//!
//! Three places conclude it (spec/mailman.md §5, §4.1, §4.9):
//! - the MTA router's `require_files` stat got ENOENT, so RCPT got 550
//!   ("Unrouteable address") and the message bounced;
//! - `post` exited 1 because `list_exists` or the 2.0 Load failed;
//! - a runner dequeued a message "for missing list" (a shunt in 2.1, a delete in 2.0).
//!
//! A list "exists" from the moment its config was first saved. Each finding names
//! the time, host, pid and errno, and the provenance of the failing call: the
//! `served_by` of that process's last filesystem call on the list's files before
//! the conclusion (an RPC xid, or a cache entry and the event that filled it).

use std::collections::BTreeMap;
use std::time::Duration;

use model::ModelEvent;
use sim::EventKind;

use super::{History, OracleResult};

/// The last call by `host/pid` before event `seq` whose arguments mention `needle`.
/// When a negative dentry answered it, the server's last change to the name
/// before that dentry was filled follows: what made the name absent then.
pub fn provenance(history: &History, host: &str, pid: u32, before: usize, needle: &str) -> String {
    for e in sim::events_before(history.events, before as u64).iter().rev() {
        if let EventKind::Call { host: h, pid: p, op, args, outcome, served_by, .. } = &e.kind {
            if &**h == host && *p == pid && args.contains(needle) {
                let result = match outcome {
                    Ok(_) => "ok".to_string(),
                    Err(errno) => sim::errno_name(*errno).to_string(),
                };
                let mut s = format!("{op} {args} -> {result} served_by={served_by} [event {}]", e.seq);
                let negative = crate::explain::parse_served_by(served_by).into_iter().find_map(|p| match p {
                    crate::explain::Served::Cache("neg-dentry", ev) => Some(ev),
                    _ => None,
                });
                if let Some(filled) = negative {
                    s.push_str(&negative_fill(history, host, filled, args));
                }
                return s;
            }
        }
    }
    "no matching call".into()
}

/// The server's side of the RPC whose reply (event `filled`) made a negative
/// dentry: this host's last apply on the name before it. A LOOKUP that got
/// NOENT comes with the server's last change to the config before it (what
/// had made the name absent); this host's own REMOVE or RENAME (a silly
/// rename of a busy file) speaks for itself.
fn negative_fill(history: &History, host: &str, filled: u64, call_args: &str) -> String {
    let name = call_args.trim_matches('"').rsplit('/').next().unwrap_or("");
    let quoted = format!("\"{name}\"");
    let apply = sim::events_before(history.events, filled).iter().rev().find(
        |e| matches!(&e.kind, EventKind::Apply { client, args, .. } if &**client == host && args.contains(&quoted)),
    );
    match apply.map(|e| (e, &e.kind)) {
        Some((e, EventKind::Apply { proc: "LOOKUP", status, .. })) if status.contains("NOENT") => format!(
            "; its negative dentry was filled by a LOOKUP that got NOENT on the server [event {}] after the server's {}",
            e.seq,
            history.name_state_at(e.seq, "")
        ),
        Some((e, EventKind::Apply { proc, args, status, .. })) => format!(
            "; its negative dentry was filled by this host's own {proc} {args} {status} at t={:.3}s [event {}]",
            e.t.as_secs_f64(),
            e.seq
        ),
        _ => String::new(),
    }
}

pub fn check(history: &History) -> OracleResult {
    let mut created: BTreeMap<&str, Duration> = BTreeMap::new();
    let mut violations = Vec::new();
    let mut checked = 0u64;
    for (event, host, pid, note) in history.notes() {
        let (list, what, errno) = match note {
            ModelEvent::ListSaved { list, .. } => {
                created.entry(list).or_insert(event.t);
                continue;
            }
            ModelEvent::MtaRouted { list, decision, errno, .. } => {
                checked += 1;
                if decision != "bounced_unknown_list" {
                    continue;
                }
                (list, "the MTA router found no config (RCPT 550, bounce)", errno.clone())
            }
            ModelEvent::PostExited { list, exit_code: 1, reason, .. } => (list, "post exited 1", reason.clone()),
            ModelEvent::PostExited { .. } => {
                checked += 1;
                continue;
            }
            ModelEvent::Shunted { list, reason, errno, .. } if reason.contains("missing list") => {
                (list, "a runner shunted a message for a missing list", errno.clone())
            }
            ModelEvent::MessageDeleted { list, reason, .. } if reason.contains("missing list") => {
                (list, "the 2.0 qrunner deleted a message for a missing list", reason.clone())
            }
            ModelEvent::ListMissing { list, errnos, .. } => (list, "list_exists() was false", errnos.join(",")),
            _ => continue,
        };
        let Some(since) = created.get(list.as_str()) else { continue };
        let server = history.name_state_at(event.seq, list);
        violations.push((
            event.seq,
            format!(
                "t={:.3}s {host}/{pid}: {what} for list {list:?} (exists since t={:.3}s), errno {errno}; via {}; on the server: {server} [event {}]",
                event.t.as_secs_f64(),
                since.as_secs_f64(),
                provenance(history, host, pid, event.seq as usize, &format!("lists/{list}/")),
                event.seq
            ),
        ));
    }
    OracleResult::new("no_missing_list", checked, violations)
}
