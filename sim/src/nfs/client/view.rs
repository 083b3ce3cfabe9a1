//! What the client holds, for state dumps (`mmsim run --dump-at`).

use super::*;

impl NfsClient {
    /// The lookup and attribute caches as they stand, for state dumps.
    pub fn caches(&self, now: Duration) -> CacheView {
        let dentries = self
            .dentries
            .borrow()
            .entries()
            .map(|(dir, name, d)| DentryView {
                dir: dir.ino,
                name: name.to_string(),
                target: match d.kind {
                    DentryKind::Positive { fh, .. } => Some((fh.ino, fh.gen)),
                    DentryKind::Negative => None,
                },
                filled_by_ev: d.filled_by_ev,
            })
            .collect();
        let attrs = self
            .attrs
            .borrow()
            .entries()
            .map(|(fh, e)| AttrView {
                ino: fh.ino,
                gen: fh.gen,
                nlink: e.attr.nlink,
                size: e.attr.size,
                mtime_ns: e.attr.mtime,
                fresh_for: e.fresh_for(now),
                filled_by_ev: e.filled_by_ev,
            })
            .collect();
        CacheView { dentries, attrs }
    }

    /// Paths this host has open, for state dumps.
    pub fn open_files(&self) -> Vec<(u32, u32, String)> {
        self.files.borrow().iter().map(|((pid, fd), f)| (*pid, *fd, f.path.clone())).collect()
    }
}
