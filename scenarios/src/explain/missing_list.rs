//! The story of a list that appeared missing (`no_missing_list`): the failing
//! existence check, what answered it, the server change that had taken the
//! name away, and what the process did next.

use super::*;

pub(super) fn story(ix: &Index, seq: u64) -> Option<Vec<String>> {
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
                |e| matches!(&e.kind, EventKind::Apply { proc, args, .. } if changes_name(proc) && args.contains(&quoted)),
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
                        let why =
                            if *outcome == model::mta::PipeOutcome::Bounced { " (permanent failure)" } else { "" };
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
