//! `mmsim explain`: the causal story of a run's first violation, told from the trace.
//!
//! Starting at the failing oracle's `first_event`, the story walks back to the
//! violating process's last failing call and its provenance (`served_by`: each
//! xid leads to the client's `Rpc` and the server's `Apply` of that xid; each
//! cache entry leads to the `Rpc` event that filled it), to the server-side
//! changes of the same name just before, and forward to the consequence (the
//! process's exit, the MTA's verdict, the sender's bounce, a shunt). Every step
//! names its trace event (`[ev N]`), so the story can be checked against
//! `mmsim run … --trace FILE`.
//!
//! Rich stories exist for `no_missing_list`, `lost_update` and
//! `lock_exclusion`; every other oracle gets the generic story (the first
//! violation line, the violating event, and the five events before it of the
//! same host/pid). The story reads the trace only; it never asks the model.

//!
//! The query layer is `crate::trace_query`; each rich story is its own file here.

mod lock_exclusion;
mod lost_update;
mod missing_list;

use model::{ListLoadOutcome, ModelEvent};
use sim::{Event, EventKind};

use crate::trace_query::*;
use crate::Report;

/// The story of the first violation of a run (of oracle `only`, if given): lines to print.
pub fn explain(events: &[Event], report: &Report, only: Option<&str>) -> Vec<String> {
    let Some(oracle) = report.first_failing(only) else {
        if let Some(name) = only {
            return vec![format!("no violation of {name}")];
        }
        if report.exit_code == crate::exit::PASS {
            return vec!["no violation".into()];
        }
        return vec![format!("no oracle violation; verdict: {}", report.verdict)];
    };
    let ix = Index::new(events);
    let mut out = vec![format!(
        "{} --seed {}: {} failed; first violation: {}",
        report.scenario,
        report.seed,
        oracle.name,
        oracle.violations.first().map(String::as_str).unwrap_or("?")
    )];
    let Some(seq) = oracle.first_event.filter(|s| ix.get(*s).is_some()) else {
        out.push("(the violation is about the end state, not one event; no story to tell)".into());
        return out;
    };
    let rich = match oracle.name.as_str() {
        "no_missing_list" => missing_list::story(&ix, seq),
        "lost_update" => lost_update::story(&ix, seq),
        "lock_exclusion" => lock_exclusion::story(&ix, seq),
        _ => None,
    };
    match rich {
        Some(lines) => out.extend(lines),
        None => out.extend(generic(&ix, seq)),
    }
    out
}

/// The violating event and the five events of its host/pid before it.
pub fn generic(ix: &Index, seq: u64) -> Vec<String> {
    let e = ix.at(seq);
    let mut out = vec![format!("violating event: {}", step(ix, e))];
    let (host, pid) = (e.kind.host(), e.kind.pid());
    let before: Vec<&Event> = ix
        .before(seq)
        .iter()
        .rev()
        .filter(|p| p.kind.host() == host && (pid.is_none() || p.kind.pid() == pid))
        .take(5)
        .collect();
    if !before.is_empty() {
        out.push(format!(
            "before it, on {}{}:",
            host.unwrap_or("the world"),
            pid.map(|p| format!("/{p}")).unwrap_or_default()
        ));
        for p in before.iter().rev() {
            out.push(format!("  {}", step(ix, p)));
        }
    }
    out
}

/// What a cache name means, in words.
fn cache_words(name: &str) -> &str {
    match name {
        "pos-dentry" => "a positive dentry",
        "neg-dentry" => "a negative dentry",
        "attr-cache" => "cached attributes",
        "page-cache" => "cached pages",
        "readdir-cache" => "a cached directory listing",
        other => other,
    }
}

/// Whether the cache entry filled at event `ev` is about `name` (and not a
/// directory on the way to it). A dentry is filled by an RPC whose server
/// apply quotes the name (`LOOKUP 2.2 "test"`); attributes and pages by one
/// on a handle, judged by its call's path.
fn cache_entry_names(ix: &Index, ev: u64, name: &str) -> bool {
    let Some(fill) = ix.get(ev) else { return true };
    let EventKind::Rpc { span, host, xid, .. } = &fill.kind else { return true };
    if let Some(EventKind::Apply { args, .. }) = ix.apply_of(host, *xid, ev).map(|a| &a.kind) {
        if args.contains('"') {
            return args.contains(&format!("\"{name}\""));
        }
    }
    match ix.call_of_span(*span).map(|c| &c.kind) {
        Some(EventKind::Call { args, .. }) => args.contains(name),
        _ => true,
    }
}

/// The provenance of one call, one line per piece of `served_by`. Cache
/// entries of the directories on the way are summed up in one line.
fn provenance(ix: &Index, call: &Event) -> Vec<String> {
    let EventKind::Call { host, served_by, args, .. } = &call.kind else { return Vec::new() };
    let name = file_of(args).map(basename).unwrap_or("");
    let mut out = Vec::new();
    let mut on_the_way = 0;
    for piece in parse_served_by(served_by) {
        if let Served::Cache(_, ev) = piece {
            if !name.is_empty() && !cache_entry_names(ix, ev, name) {
                on_the_way += 1;
                continue;
            }
        }
        match piece {
            Served::Xid(xid) => {
                let rpc = ix.rpc_of(host, xid, call.seq);
                let apply = ix.apply_of(host, xid, call.seq);
                let mut s = format!("  answered by RPC x{xid}");
                if let Some(r) = rpc {
                    if let EventKind::Rpc { proc, outcome, .. } = &r.kind {
                        s.push_str(&format!(" {proc} -> {outcome} [ev {}]", r.seq));
                    }
                }
                match apply {
                    Some(a) => s.push_str(&format!("; {} at {} [ev {}]", describe(ix, a), t(a), a.seq)),
                    None => s.push_str("; no server apply recorded (lost, or answered by the DRC)"),
                }
                out.push(s);
            }
            Served::Cache(cache, ev) => {
                let mut s = format!("  answered from {} (no RPC)", cache_words(cache));
                if let Some(fill) = ix.get(ev) {
                    s.push_str(&format!(" filled at {} [ev {ev}]", t(fill)));
                    if let EventKind::Rpc { span, xid, proc, .. } = &fill.kind {
                        s.push_str(&format!(" by {proc} x{xid}"));
                        if let Some(c) = ix.call_of_span(*span) {
                            if let EventKind::Call { host, pid, op, args, .. } = &c.kind {
                                s.push_str(&format!(" for {} {op} {args} [ev {}]", ix.who(host, *pid), c.seq));
                            }
                        }
                        if let Some(a) = ix.apply_of(host, *xid, ev) {
                            s.push_str(&format!(" (server then: {} [ev {}])", describe(ix, a), a.seq));
                            // A name the server called absent: what had taken it away just before.
                            let absent = matches!(&a.kind, EventKind::Apply { status, .. } if status.contains("NOENT"));
                            if let Some(gone) =
                                server_changes(ix, name, 0, a.seq, 1).into_iter().next().filter(|_| absent)
                            {
                                s.push_str(&format!(
                                    "; the name was absent since {} at {} [ev {}]",
                                    describe(ix, gone),
                                    t(gone),
                                    gone.seq
                                ));
                            }
                        }
                    }
                }
                out.push(s);
            }
            Served::Local => out.push("  answered locally (no NFS involved)".into()),
        }
    }
    if on_the_way > 0 {
        out.push(format!("  (and {on_the_way} cached entries of the directories on the way)"));
    }
    out
}
/// Locks `host/pid` holds just before `before`, with since when.
fn locks_held(ix: &Index, host: &str, pid: u32, before: u64) -> Vec<(String, u64)> {
    Holdings::before(ix.events, before)
        .into_held()
        .filter(|h| h.host == host && h.pid == pid)
        .map(|h| (h.lock, h.seq))
        .collect()
}

/// A server change, told as the act of the process that caused it.
fn tell_change(ix: &Index, apply: &Event) -> String {
    let EventKind::Apply { client, proc, args, status, .. } = &apply.kind else { return step(ix, apply) };
    let server = format!("(server: {proc} {args} {status} [ev {}])", apply.seq);
    let Some((host, pid, call)) = ix.caller_of_apply(apply) else {
        return format!("a process on {client} changed the name at {} {server}", t(apply));
    };
    let locks = locks_held(ix, host, pid, apply.seq);
    let holder = if locks.is_empty() { "" } else { "the lock holder " };
    let holding = if locks.is_empty() {
        String::new()
    } else {
        let l: Vec<String> = locks.iter().map(|(l, s)| format!("{l} since [ev {s}]")).collect();
        format!(", holding {},", l.join(", "))
    };
    let what = match &call.kind {
        EventKind::Call { op: "rename", args, .. } => {
            let mut parts = args.split('"').skip(1).step_by(2);
            match (parts.next(), parts.next()) {
                (Some(from), Some(to)) => format!("renamed {from} over {to}"),
                _ => format!("rename {args}"),
            }
        }
        EventKind::Call { op, args, .. } => format!("{op} {args}"),
        _ => String::new(),
    };
    format!("{holder}{}{holding} {what} at {} [ev {}] {server}", ix.who(host, pid), t(call), call.seq)
}

/// The last call of `host/pid` before `before` whose args contain `needle`,
/// preferring a failed one.
fn last_call<'a>(ix: &Index<'a>, host: &str, pid: u32, before: u64, needle: &str) -> Option<&'a Event> {
    let mine = |e: &&Event| matches!(&e.kind, EventKind::Call { host: h, pid: p, args, .. } if &**h == host && *p == pid && args.contains(needle));
    let range = ix.before(before);
    // Only the calls since the process's previous note about this list matter; look back a bounded way.
    let recent: Vec<&Event> = range.iter().rev().filter(mine).take(20).collect();
    recent.iter().find(|e| matches!(&e.kind, EventKind::Call { outcome: Err(_), .. })).or(recent.first()).copied()
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generic_story_shows_the_violating_event_and_five_before_it_of_its_process() {
        use std::rc::Rc;
        use std::time::Duration;
        let host: Rc<str> = "mail1".into();
        let call = |seq: u64, pid: u32| Event {
            seq,
            t: Duration::from_millis(seq),
            kind: EventKind::Call {
                span: seq,
                host: host.clone(),
                pid,
                op: "stat",
                args: format!("\"f{seq}\""),
                outcome: Err(libc::ENOENT),
                served_by: "x1".into(),
                started: Duration::from_millis(seq),
            },
        };
        let events: Vec<Event> = (0..9).map(|i| call(i, if i % 4 == 3 { 2 } else { 1 })).collect();
        let lines = generic(&Index::new(&events), 8);
        assert!(lines[0].starts_with("violating event: t=0.008s mail1/1 (?) stat \"f8\" -> ENOENT"), "{lines:?}");
        assert_eq!(lines.len(), 7, "{lines:?}");
        assert!(lines[2].contains("[ev 1]") && lines[6].contains("[ev 6]"), "{lines:?}");
        assert!(!lines.iter().any(|l| l.contains("[ev 3]") || l.contains("[ev 7]")), "{lines:?}");
    }

    #[test]
    fn served_by_splits_into_xids_and_cache_entries() {
        assert_eq!(
            parse_served_by("x12+pos-dentry(ev 59)+attr-cache(ev 61)"),
            vec![Served::Xid(12), Served::Cache("pos-dentry", 59), Served::Cache("attr-cache", 61)]
        );
        assert!(cache_served("pos-dentry(ev 1)"));
        assert!(!cache_served("pos-dentry(ev 1)+x3"));
        assert!(cache_served("local"));
    }
}
