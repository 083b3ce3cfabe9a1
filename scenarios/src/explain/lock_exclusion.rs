//! The story of two holders of one lock (`lock_exclusion`): who held it, who
//! broke it and why, and when the first holder let go.

use super::*;

pub(super) fn story(ix: &Index, seq: u64) -> Option<Vec<String>> {
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
