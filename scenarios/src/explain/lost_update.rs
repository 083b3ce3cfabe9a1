//! The story of a lost update (`lost_update`): the post number given twice,
//! or the Save that another one overwrote, and the Loads that read stale state.

use super::*;

/// The other `PostNumbered` of `list` with `post_id` before `seq`, for another message.
fn numbered_before<'a>(ix: &Index<'a>, list: &str, post_id: u64, not: &str, seq: u64) -> Option<&'a Event> {
    ix.before(seq).iter().rev().find(|p| {
        matches!(model_event(p), Some((_, _, ModelEvent::PostNumbered { list: l, post_id: n, message_id: m }))
            if l == list && *n == post_id && m != not)
    })
}

pub(super) fn story(ix: &Index, seq: u64) -> Option<Vec<String>> {
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
