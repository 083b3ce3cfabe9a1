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

use std::collections::BTreeMap;

use model::{ListLoadOutcome, ModelEvent};
use sim::{Event, EventKind};

use crate::Report;

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
pub(crate) fn outcome_text(outcome: &sim::Outcome) -> String {
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

/// Whether the cache entry filled at event `ev` is about `name` (and not a
/// directory on the way to it). A dentry is filled by an RPC whose server
/// apply quotes the name (`LOOKUP 2.2 "test"`); attributes and pages by one
/// on a handle, judged by its call's path.
fn cache_entry_names(ix: &Index, ev: u64, name: &str) -> bool {
    let Some(fill) = ix.events.get(ev as usize) else { return true };
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
                if let Some(fill) = ix.events.get(ev as usize) {
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

/// Whether a server procedure changes the namespace or a file.
fn changes(proc: &str) -> bool {
    matches!(proc, "RENAME" | "REMOVE" | "CREATE" | "LINK" | "SETATTR" | "WRITE" | "MKDIR" | "RMDIR" | "SYMLINK")
}

/// The server's changes to a name (an Apply whose args quote `basename`) in
/// `(from, to)`, the last `max` of them.
fn server_changes<'a>(ix: &Index<'a>, basename: &str, from: u64, to: u64, max: usize) -> Vec<&'a Event> {
    let quoted = format!("\"{basename}\"");
    let mut found: Vec<&Event> = ix
        .between(from, to)
        .iter()
        .rev()
        .filter(|e| matches!(&e.kind, EventKind::Apply { proc, args, .. } if changes(proc) && args.contains(&quoted)))
        .take(max)
        .collect();
    found.reverse();
    found
}

/// Locks `host/pid` holds just before `before`, with since when.
fn locks_held(ix: &Index, host: &str, pid: u32, before: u64) -> Vec<(String, u64)> {
    let mut held: BTreeMap<String, (String, u64)> = BTreeMap::new();
    for e in ix.before(before) {
        let Some((h, p, m)) = model_event(e) else { continue };
        if h != host || p != pid {
            continue;
        }
        match m {
            ModelEvent::LockAcquired { lock, claim } => {
                held.insert(claim.clone(), (lock.clone(), e.seq));
            }
            ModelEvent::LockReleasing { claim, .. } | ModelEvent::LockRefreshed { claim, held: false, .. } => {
                held.remove(claim);
            }
            _ => {}
        }
    }
    held.into_values().collect()
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

/// The file named in a call's args: the first quoted token that looks like a path.
fn file_of(args: &str) -> Option<&str> {
    args.split('"').skip(1).step_by(2).find(|s| s.contains('/') || s.contains('.'))
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

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
    let Some(seq) = oracle.first_event.filter(|s| (*s as usize) < events.len()) else {
        out.push("(the violation is about the end state, not one event; no story to tell)".into());
        return out;
    };
    let rich = match oracle.name.as_str() {
        "no_missing_list" => missing_list(&ix, seq),
        "lost_update" => lost_update(&ix, seq),
        "lock_exclusion" => lock_exclusion(&ix, seq),
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

fn missing_list(ix: &Index, seq: u64) -> Option<Vec<String>> {
    let e = ix.at(seq);
    let (host, pid, note) = model_event(e)?;
    let (list, conclusion, message_id) = match note {
        ModelEvent::MtaRouted { list, errno, .. } => {
            (list, format!("the MTA router found no config ({errno}) and answered RCPT with 550"), None)
        }
        ModelEvent::PostExited { list, message_id, exit_code, reason } => {
            (list, format!("post exited {exit_code}: {reason}"), Some(message_id.as_str()))
        }
        ModelEvent::Shunted { list, message_id, reason, errno, .. } => {
            (list, format!("the runner shunted the message: {reason} ({errno})"), Some(message_id.as_str()))
        }
        ModelEvent::MessageDeleted { list, message_id, reason, .. } => {
            (list, format!("the 2.0 qrunner deleted the message: {reason}"), Some(message_id.as_str()))
        }
        ModelEvent::ListMissing { list, errnos, .. } => {
            (list, format!("list_exists() was false ({})", errnos.join(",")), None)
        }
        _ => return None,
    };
    let who = ix.who(host, pid);
    let mut out = Vec::new();
    let call = last_call(ix, host, pid, seq, &format!("lists/{list}/"));
    if let Some(call) = call {
        let EventKind::Call { op, args, outcome, served_by, started, .. } = &call.kind else { return None };
        let file = file_of(args).unwrap_or(args);
        let name = basename(file);
        // The window in which the name changed under the caller: since the cache
        // entry it trusted was filled, or since just before the call started.
        // The cache entry for the name itself (not a directory on the way).
        let fill = parse_served_by(served_by)
            .iter()
            .filter_map(|p| match p {
                Served::Cache(_, ev) if cache_entry_names(ix, *ev, name) => Some(*ev),
                _ => None,
            })
            .max();
        let from = match fill {
            Some(ev) => ev,
            None => {
                let start = *started;
                ix.before(call.seq)
                    .iter()
                    .rev()
                    .find(|p| p.t + std::time::Duration::from_secs(2) < start)
                    .map(|p| p.seq)
                    .unwrap_or(0)
            }
        };
        let mut changed = server_changes(ix, name, from, call.seq, 3);
        // With a cache entry, the first change after its fill is the one that
        // replaced (freed) what the entry pointed to.
        let quoted = format!("\"{name}\"");
        let freed = fill.and_then(|ev| {
            ix.between(ev, call.seq).iter().find(
                |e| matches!(&e.kind, EventKind::Apply { proc, args, .. } if changes(proc) && args.contains(&quoted)),
            )
        });
        if let Some(f) = freed.filter(|f| !changed.iter().any(|c| c.seq == f.seq)) {
            let total = server_changes(ix, name, f.seq, call.seq, usize::MAX).len();
            changed.insert(0, f);
            if total > changed.len() {
                out.push(format!(
                    "({total} server changes to {name} since the cache entry was filled; the first and the last {} follow)",
                    changed.len() - 1
                ));
            }
        }
        if changed.is_empty() {
            let last = server_changes(ix, name, 0, call.seq, 1);
            for a in last {
                out.push(format!("the last change to {name} before: {}", tell_change(ix, a)));
            }
        }
        for a in &changed {
            out.push(tell_change(ix, a));
        }
        out.push(format!(
            "{who} called {op} {args} at {} and got {} [ev {}] (served by {served_by})",
            t(call),
            outcome_text(outcome),
            call.seq
        ));
        let mut prov = provenance(ix, call);
        if let (Some(ev), Some(freed)) = (fill, freed) {
            if let Some(line) = prov.iter_mut().find(|l| l.contains(&format!("[ev {ev}]"))) {
                line.push_str(&format!(
                    "; it pointed to the inode the server replaced (freed) at {} [ev {}]",
                    t(freed),
                    freed.seq
                ));
            }
        }
        out.extend(prov);
    } else {
        out.push(format!("(no call of {who} on lists/{list}/ before the conclusion)"));
    }
    out.push(format!("{who} concluded: {conclusion}, for list {list:?} at {} [ev {seq}]", t(e)));
    out.extend(consequences(ix, host, pid, seq, message_id, list));
    Some(out)
}

/// What followed a conclusion: the process's exit, the MTA's verdict, the
/// sender's bounce, a shunt of the same message.
fn consequences(ix: &Index, host: &str, pid: u32, seq: u64, message_id: Option<&str>, list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut exited = false;
    let mut piped = false;
    let mut bounced = false;
    // Bounded: the consequences of one conclusion follow within a few thousand events.
    for e in ix.events.iter().skip(seq as usize + 1).take(200_000) {
        match &e.kind {
            EventKind::Exit { host: h, pid: p, status } if !exited && &**h == host && *p == pid => {
                exited = true;
                out.push(format!("{} exited {status} at {} [ev {}]", ix.who(host, pid), t(e), e.seq));
            }
            EventKind::Note { .. } => {
                let Some((h, p, m)) = model_event(e) else { continue };
                match m {
                    ModelEvent::MtaPiped { message_id: id, program, exit_code, outcome, .. }
                        if !piped && Some(id.as_str()) == message_id =>
                    {
                        piped = true;
                        let why = if outcome == "bounced" { " (permanent failure)" } else { "" };
                        out.push(format!(
                            "the MTA {} saw {program} exit {exit_code}: the message was {outcome}{why} at {} [ev {}]",
                            ix.who(h, p),
                            t(e),
                            e.seq
                        ));
                    }
                    ModelEvent::SenderBounced { message_id: id, recipient, code }
                        if !bounced
                            && (Some(id.as_str()) == message_id
                                || (message_id.is_none() && recipient.starts_with(&format!("{list}@")))) =>
                    {
                        bounced = true;
                        out.push(format!(
                            "the sender {} got the bounce of {id} to {recipient} (code {code}) at {} [ev {}]",
                            ix.who(h, p),
                            t(e),
                            e.seq
                        ));
                    }
                    ModelEvent::Shunted { message_id: id, queue, .. } if Some(id.as_str()) == message_id => {
                        out.push(format!("{} shunted {id} from {queue} at {} [ev {}]", ix.who(h, p), t(e), e.seq));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        if exited && (piped || message_id.is_none()) && bounced {
            break;
        }
    }
    out
}

/// The other `PostNumbered` of `list` with `post_id` before `seq`, for another message.
fn numbered_before<'a>(ix: &Index<'a>, list: &str, post_id: u64, not: &str, seq: u64) -> Option<&'a Event> {
    ix.before(seq).iter().rev().find(|p| {
        matches!(model_event(p), Some((_, _, ModelEvent::PostNumbered { list: l, post_id: n, message_id: m }))
            if l == list && *n == post_id && m != not)
    })
}

fn lost_update(ix: &Index, seq: u64) -> Option<Vec<String>> {
    let e = ix.at(seq);
    let (_, _, note) = model_event(e)?;
    let mut out = Vec::new();
    // The process whose stale state made the violation, and the event where it showed.
    let stale: &Event = match note {
        ModelEvent::ListSaved { .. } => e,
        ModelEvent::PostNumbered { list, message_id, post_id } => {
            if let Some(first) = numbered_before(ix, list, *post_id, message_id, seq) {
                out.push(format!("first numbering: {}", step(ix, first)));
            }
            e
        }
        ModelEvent::SinkReceived { message_id, post_number: Some(n), .. } => {
            out.push(format!("the sink got post number {n} twice; the second: {}", step(ix, e)));
            // The numbering of this message, and the earlier one with the same number.
            let mine = ix.before(seq).iter().rev().find(|p| {
                matches!(model_event(p), Some((_, _, ModelEvent::PostNumbered { message_id: m, post_id: k, .. })) if m == message_id && k == n)
            })?;
            let Some((_, _, ModelEvent::PostNumbered { list, .. })) = model_event(mine) else { return None };
            let other = numbered_before(ix, list, *n, message_id, seq)?;
            // The later of the two numberings is the one made from stale state.
            let (first, second) = if other.seq < mine.seq { (other, mine) } else { (mine, other) };
            out.push(format!("first numbering: {}", step(ix, first)));
            second
        }
        _ => return None,
    };
    let (host, pid, note) = model_event(stale)?;
    let (list, post_id) = match note {
        ModelEvent::ListSaved { list, post_id, .. } | ModelEvent::PostNumbered { list, post_id, .. } => {
            (list, *post_id)
        }
        _ => return None,
    };
    let who = ix.who(host, pid);
    let prev = ix.before(stale.seq).iter().rev().find_map(|p| match model_event(p) {
        Some((h, q, ModelEvent::ListSaved { list: l, post_id: id, .. })) if l == list && (h, q) != (host, pid) => {
            Some((p, h, q, *id))
        }
        _ => None,
    });
    if let Some((p, h, q, id)) = prev {
        out.push(format!("{} saved list {list:?} with post_id {id} at {} [ev {}]", ix.who(h, q), t(p), p.seq));
    }
    // This process's loads of the list before; the last one decided what it had in memory.
    let loads: Vec<&Event> = ix.before(stale.seq)
        .iter()
        .rev()
        .filter(|p| {
            matches!(model_event(p), Some((h, q, ModelEvent::ListFileLoad { list: l, .. })) if h == host && q == pid && l == list)
        })
        .take(1)
        .collect();
    for load in loads.iter().rev() {
        let Some((_, _, ModelEvent::ListFileLoad { file: f, outcome, errno, post_id: id, .. })) = model_event(load)
        else {
            continue;
        };
        let what = match outcome {
            ListLoadOutcome::Loaded => {
                format!("loaded {f} with post_id {}", id.map_or_else(|| "?".to_string(), |i| i.to_string()))
            }
            ListLoadOutcome::ShortcutSkip => {
                format!("skipped loading {f} (the mtime shortcut: it kept the post_id it had in memory)")
            }
            ListLoadOutcome::Corrupt => format!("found {f} corrupt"),
            ListLoadOutcome::Missing => format!("found {f} missing ({})", errno.as_deref().unwrap_or("?")),
        };
        out.push(format!("{who} {what} at {} [ev {}]", t(load), load.seq));
        // The stat and open behind that load, and the reads of the opened file,
        // with their provenance.
        let mut calls: Vec<&Event> = ix.before(load.seq)
            .iter()
            .rev()
            .filter(|c| matches!(&c.kind, EventKind::Call { host: h, pid: q, args, .. } if &**h == host && *q == pid && args.contains(f.as_str())))
            .take(2)
            .collect();
        calls.reverse();
        let fd = calls.iter().find_map(|c| match &c.kind {
            EventKind::Call { op: "open", outcome: Ok(v), .. } => v.strip_prefix("fd=").map(|fd| format!("fd={fd} ")),
            _ => None,
        });
        if let (Some(fd), Some(last)) = (fd, calls.last().map(|c| c.seq)) {
            let reads = ix.between(last, load.seq).iter().filter(|c| {
                matches!(&c.kind, EventKind::Call { host: h, pid: q, op: "read", args, .. } if &**h == host && *q == pid && args.starts_with(&fd))
            });
            calls.extend(reads.take(2));
        }
        for c in &calls {
            out.push(format!("  {}", step(ix, c)));
            out.extend(provenance(ix, c).into_iter().map(|l| format!("  {l}")));
        }
    }
    let locks = locks_held(ix, host, pid, stale.seq);
    let holding = if locks.is_empty() {
        " holding no lock".to_string()
    } else {
        format!(" holding {}", locks.iter().map(|(l, s)| format!("{l} since [ev {s}]")).collect::<Vec<_>>().join(", "))
    };
    let did = match note {
        ModelEvent::ListSaved { file, .. } => format!("saved {file} with post_id {post_id}"),
        _ => format!("numbered a post {post_id}"),
    };
    out.push(format!(
        "{who},{holding}, {did} at {} [ev {}]: {}",
        t(stale),
        stale.seq,
        match prev {
            Some((_, _, _, id)) if post_id <= id => format!("the server already had post_id {id}: an update was lost"),
            Some((_, _, _, id)) => format!("after a save of post_id {id}"),
            None => "before any other save".into(),
        }
    ));
    Some(out)
}

fn lock_exclusion(ix: &Index, seq: u64) -> Option<Vec<String>> {
    let e = ix.at(seq);
    let (host, pid, note) = model_event(e)?;
    let (lock, claim) = match note {
        ModelEvent::LockAcquired { lock, claim } | ModelEvent::LockRefreshed { lock, claim, held: false } => {
            (lock, claim)
        }
        _ => return None,
    };
    let who = ix.who(host, pid);
    // Replay the holder of this lock up to the violation.
    let mut holder: Option<(&Event, &str, u32, &str)> = None;
    let mut mine: Option<&Event> = None;
    for p in ix.before(seq) {
        let Some((h, q, m)) = model_event(p) else { continue };
        match m {
            ModelEvent::LockAcquired { lock: l, claim: c } if l == lock => {
                if c == claim {
                    mine = Some(p);
                }
                holder = Some((p, h, q, c.as_str()));
            }
            ModelEvent::LockReleasing { lock: l, claim: c }
                if l == lock && holder.is_some_and(|(_, _, _, hc)| hc == c) =>
            {
                holder = None;
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    let since = match note {
        ModelEvent::LockAcquired { .. } => holder.map(|(p, ..)| p.seq).unwrap_or(0),
        _ => mine.map(|p| p.seq).unwrap_or(0),
    };
    if let ModelEvent::LockAcquired { .. } = note {
        if let Some((p, h, q, c)) = holder {
            out.push(format!("{} acquired {lock} (claim {c}) at {} [ev {}]", ix.who(h, q), t(p), p.seq));
        }
    } else if let Some(p) = mine {
        out.push(format!("{who} acquired {lock} (claim {claim}) at {} [ev {}]", t(p), p.seq));
    }
    // Breaks of this lock since then, by anyone.
    for p in ix.between(since, seq) {
        if let Some((h, q, ModelEvent::LockBroken { lock: l, claim: c, winner })) = model_event(p) {
            if l == lock {
                out.push(format!(
                    "{} (claim {c}) broke {lock}, whose file named {} at {} [ev {}]",
                    ix.who(h, q),
                    winner.as_deref().unwrap_or("nobody (ENOENT)"),
                    t(p),
                    p.seq
                ));
            }
        }
    }
    // The calls on the lock file that let this process in.
    let lock_name = basename(lock);
    let calls: Vec<&Event> = ix.between(since, seq)
        .iter()
        .rev()
        .filter(|c| matches!(&c.kind, EventKind::Call { host: h, pid: q, args, .. } if &**h == host && *q == pid && args.contains(lock_name)))
        .take(3)
        .collect();
    for c in calls.iter().rev() {
        out.push(format!("  {}", step(ix, c)));
        out.extend(provenance(ix, c).into_iter().map(|l| format!("  {l}")));
    }
    match note {
        ModelEvent::LockAcquired { .. } => out.push(format!(
            "{who} acquired {lock} (claim {claim}) at {} [ev {seq}] while the other holder still held it",
            t(e)
        )),
        _ => out.push(format!("{who} found its lock {lock} broken at {} [ev {seq}] while it was alive", t(e))),
    }
    if let (ModelEvent::LockAcquired { .. }, Some((_, h, q, c))) = (note, holder) {
        let release = ix.from(seq).iter().take(200_000).find(|p| {
            matches!(model_event(p), Some((_, _, ModelEvent::LockReleasing { claim: rc, .. } | ModelEvent::LockRefreshed { claim: rc, held: false, .. })) if rc == c)
        });
        if let Some(r) = release {
            out.push(format!("the first holder {} let go only at {} [ev {}]", ix.who(h, q), t(r), r.seq));
        }
    }
    Some(out)
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
