//! The dentry cache and path walks: when a cached name may answer without a
//! LOOKUP (the verifier and intent rules), the LOOKUP itself under the
//! directory's VFS lock, and the walk of a path one component at a time.

use super::*;

impl NfsClient {
    /// `nfs_check_verifier`: whether a dentry made under `verifier` may be
    /// trusted, revalidating the directory's attributes if they have expired.
    pub(super) async fn dir_verified(&self, ctx: &Ctx, dir: Fh, verifier: Nanos) -> bool {
        if self.options.lookupcache == LookupCache::None {
            return false;
        }
        let cached = self.attrs.borrow().get(dir).map(|e| (e.attr.ctime, e.is_fresh(true_now())));
        match cached {
            Some((ctime, _)) if ctime != verifier => false,
            Some((_, true)) => true,
            _ => matches!(self.getattr(ctx, dir).await, Ok(a) if a.ctime == verifier),
        }
    }

    pub(super) fn remember(&self, dir: Fh, name: &str, kind: DentryKind, verifier: Option<Nanos>, ev: u64) {
        // Linux 2.2's rules judge a dentry by its age, not by a verifier.
        let verifier = match self.options.dentry_revalidate {
            DentryRevalidate::ParentVerifier => verifier,
            DentryRevalidate::ParentMtime | DentryRevalidate::DentryAge => Some(verifier.unwrap_or(0)),
        };
        let renewed = true_now();
        let mut dentries = self.dentries.borrow_mut();
        match (kind, verifier) {
            (DentryKind::Negative, Some(v)) if self.options.lookupcache == LookupCache::All => {
                dentries.insert(dir, name, Dentry { kind, verifier: v, renewed, filled_by_ev: ev })
            }
            (DentryKind::Positive { .. }, Some(v)) => {
                dentries.insert(dir, name, Dentry { kind, verifier: v, renewed, filled_by_ev: ev })
            }
            _ => dentries.remove(dir, name),
        }
    }

    /// Whether `dir`'s cached mtime lies less than `secs` before this host's
    /// wall clock, in whole seconds (`CURRENT_TIME - i_mtime < secs`). A
    /// directory without cached attributes counts as changed.
    pub(super) fn dir_changed_within(&self, dir: Fh, secs: i64) -> bool {
        const S: i64 = 1_000_000_000;
        let Some(mtime) = self.attrs.borrow().get(dir).map(|e| e.attr.mtime) else { return true };
        let now = self.clock.wall_ns(true_now());
        now.div_euclid(S) - mtime.div_euclid(S) < secs
    }

    /// Linux 2.2's `d_revalidate` before any RPC: whether dentry `d` in `dir`
    /// may answer without a LOOKUP (docs/semantics/linux-2.2-client.md §1, §3).
    /// Times count in jiffies of a 100 Hz tick: a timeout of 0 still trusts a
    /// dentry within the tick that made it (`time_after(jiffies, d_time + 0)`).
    pub(super) fn age_trusted(&self, dir: Fh, d: &Dentry, intent: Intent) -> bool {
        const TICK_NS: u128 = 10_000_000;
        let jiffies = |t: Duration| (t.as_nanos() / TICK_NS) as u64;
        if self.options.lookupcache == LookupCache::None {
            return false;
        }
        let attrtimeo = |fh: Fh| self.attrs.borrow().get(fh).map_or(Duration::ZERO, |e| e.attrtimeo);
        let age = jiffies(true_now()) - jiffies(d.renewed);
        let s = Duration::from_secs;
        match (self.options.dentry_revalidate, d.kind) {
            (DentryRevalidate::ParentVerifier, _) => unreachable!("the verifier rule is judged by dir_verified"),
            // nfs_neg_need_reval
            (DentryRevalidate::ParentMtime, DentryKind::Negative) => {
                let timeout = if self.dir_changed_within(dir, 5 * 60) { s(1) } else { s(30) };
                age <= jiffies(timeout)
            }
            // nfs_dentry_force_reval: the last name of a walk (no LOOKUP_CONTINUE)
            // whose parent changed in the last 15 minutes gets a timeout of 0.
            (DentryRevalidate::ParentMtime, DentryKind::Positive { fh, .. }) => {
                let last = intent != Intent::Continue;
                let timeout =
                    if last && self.dir_changed_within(dir, 15 * 60) { Duration::ZERO } else { attrtimeo(fh) };
                age <= jiffies(timeout)
            }
            // 2.2.1's nfs_lookup_revalidate: NFS_REVALIDATE_INTERVAL, then NFS_ATTRTIMEO.
            (DentryRevalidate::DentryAge, DentryKind::Negative) => age < jiffies(s(5)),
            (DentryRevalidate::DentryAge, DentryKind::Positive { fh, .. }) => age < jiffies(attrtimeo(fh)),
        }
    }

    /// `lookup_fast`: what the dentry cache says about `name` in `dir` under the
    /// rules of docs/semantics/linux-nfs-client.md §4, with `d_revalidate`'s own RPCs, which run
    /// without the directory lock: a GETATTR of the directory when its
    /// attributes have expired, and for a positive dentry whose directory
    /// changed a LOOKUP that keeps the dentry if the name still leads to the
    /// same handle and throws it away otherwise (`nfs_lookup_revalidate_dentry`).
    pub(super) async fn lookup_cached(
        &self,
        ctx: &Ctx,
        dir: Fh,
        name: &str,
        intent: Intent,
        reval: Reval,
    ) -> Res<Cached> {
        let v3_excl = self.options.exclusive_create == ExclusiveCreate::Exclusive;
        let Some(d) = self.dentries.borrow().get(dir, name) else {
            return Ok(if reval { Cached::Untrusted } else { Cached::Absent });
        };
        match d.kind {
            DentryKind::Negative if reval => Ok(Cached::Untrusted),
            DentryKind::Negative => {
                // nfs_neg_need_reval: no revalidation for creates and rename targets
                // (modern); Linux 2.2 knew no intents and judged every use by age.
                let trusted = match (self.options.dentry_revalidate, intent) {
                    (DentryRevalidate::ParentMtime | DentryRevalidate::DentryAge, _) => {
                        self.age_trusted(dir, &d, intent)
                    }
                    (_, Intent::Create | Intent::Exclusive | Intent::RenameTarget) => true,
                    (_, Intent::Plain | Intent::Continue) => self.dir_verified(ctx, dir, d.verifier).await,
                };
                if trusted {
                    ctx.cache("neg-dentry", d.filled_by_ev);
                    self.count(|c| c.negative_dentry_hits += 1);
                    return Ok(Cached::Hit(None));
                }
                Ok(Cached::Untrusted)
            }
            DentryKind::Positive { fh, .. } if self.stale.borrow().contains(&fh) => {
                // A stale inode's dentry is bad at once, without an RPC.
                self.dentries.borrow_mut().remove(dir, name);
                Ok(Cached::Absent)
            }
            DentryKind::Positive { fh, ftype } => {
                // LOOKUP_EXCL and LOOKUP_REVAL skip the verifier (v3).
                let skip = (intent == Intent::Exclusive && v3_excl) || reval;
                let trusted = !skip
                    && match self.options.dentry_revalidate {
                        DentryRevalidate::ParentVerifier => self.dir_verified(ctx, dir, d.verifier).await,
                        DentryRevalidate::ParentMtime | DentryRevalidate::DentryAge => {
                            self.age_trusted(dir, &d, intent)
                        }
                    };
                if trusted {
                    ctx.cache("pos-dentry", d.filled_by_ev);
                    self.count(|c| c.positive_dentry_hits += 1);
                    return Ok(Cached::Hit(Some((fh, ftype))));
                }
                let got = self.rpc(ctx, Request::Lookup { dir, name: name.to_string() }).await?;
                let verifier = self.absorb_dir(dir, &got.reply.dir, got.ev);
                match got.reply.status {
                    Ok(Body::Handle(found)) if found == fh => {
                        let attr = match got.reply.obj {
                            Some(a) => {
                                self.absorb(fh, &a, got.ev, None);
                                a
                            }
                            None => self.getattr(ctx, fh).await?,
                        };
                        self.remember(dir, name, DentryKind::Positive { fh, ftype: attr.ftype }, verifier, got.ev);
                        Ok(Cached::Hit(Some((fh, attr.ftype))))
                    }
                    // Another handle, or the name is gone: the dentry is invalid,
                    // and the slow path looks the name up again.
                    Ok(Body::Handle(_)) | Err(NfsStat::Noent) | Err(NfsStat::Stale) => {
                        self.dentries.borrow_mut().remove(dir, name);
                        Ok(Cached::Absent)
                    }
                    Ok(_) => Err(libc::EIO),
                    Err(stat) => Err(stat.errno()),
                }
            }
        }
    }

    /// The slow path of a lookup, with `dir`'s lock held by the caller: the
    /// cache's answer if it had one, else a LOOKUP. `None` means the name is absent.
    pub(super) async fn lookup_slow(
        &self,
        ctx: &Ctx,
        dir: Fh,
        name: &str,
        intent: Intent,
        cached: Cached,
    ) -> Res<Option<(Fh, Ftype)>> {
        let v3_excl = self.options.exclusive_create == ExclusiveCreate::Exclusive;
        match cached {
            Cached::Hit(found) => return Ok(found),
            // nfs_lookup optimises the LOOKUP away for v3 exclusive creates and rename targets.
            Cached::Absent if (intent == Intent::Exclusive && v3_excl) || intent == Intent::RenameTarget => {
                return Ok(None)
            }
            Cached::Absent | Cached::Untrusted => {}
        }
        let got = self.rpc(ctx, Request::Lookup { dir, name: name.to_string() }).await?;
        let verifier = self.absorb_dir(dir, &got.reply.dir, got.ev);
        match got.reply.status {
            Ok(Body::Handle(fh)) => {
                let attr = match got.reply.obj {
                    Some(a) => {
                        self.absorb(fh, &a, got.ev, None);
                        a
                    }
                    None => self.getattr(ctx, fh).await?,
                };
                self.remember(dir, name, DentryKind::Positive { fh, ftype: attr.ftype }, verifier, got.ev);
                Ok(Some((fh, attr.ftype)))
            }
            Ok(_) => Err(libc::EIO),
            Err(NfsStat::Noent) => {
                self.remember(dir, name, DentryKind::Negative, verifier, got.ev);
                Ok(None)
            }
            Err(stat) => Err(stat.errno()),
        }
    }

    /// Looks `name` up in `dir` for a caller that holds no lock on `dir`: from
    /// the dentry cache when the rules allow (docs/semantics/linux-nfs-client.md §4), else with a
    /// LOOKUP under the directory's lock (`lookup_slow`), which waits while a
    /// namespace operation of this host holds it. `None` means the name is absent.
    pub(super) async fn lookup_name(
        &self,
        ctx: &Ctx,
        dir: Fh,
        name: &str,
        intent: Intent,
        reval: Reval,
    ) -> Res<Option<(Fh, Ftype)>> {
        let cached = self.lookup_cached(ctx, dir, name, intent, reval).await?;
        if let Cached::Hit(found) = cached {
            return Ok(found);
        }
        let held = self.lock_dir(dir, self.reader_mode()).await;
        // real_lookup: the cache is asked again after a wait, since the holder
        // may have changed the name meanwhile.
        let cached = if held.waited { self.lookup_cached(ctx, dir, name, intent, reval).await? } else { cached };
        self.lookup_slow(ctx, dir, name, intent, cached).await
    }

    /// Looks `name` up in `dir` for a caller that holds `dir`'s lock
    /// (`lookup_one_qstr_excl` after `filename_create`, `lock_rename`, …).
    pub(super) async fn lookup_locked(
        &self,
        ctx: &Ctx,
        dir: Fh,
        name: &str,
        intent: Intent,
        reval: Reval,
    ) -> Res<Option<(Fh, Ftype)>> {
        let cached = self.lookup_cached(ctx, dir, name, intent, reval).await?;
        self.lookup_slow(ctx, dir, name, intent, cached).await
    }

    /// Walks the directories of `parts` from the root.
    pub(super) async fn walk_dirs(&self, ctx: &Ctx, parts: &[&str], reval: Reval) -> Res<Fh> {
        let mut dir = ROOT;
        for part in parts {
            match self.lookup_name(ctx, dir, part, Intent::Continue, reval).await? {
                None => return Err(libc::ENOENT),
                Some((fh, Ftype::Dir)) => dir = fh,
                Some(_) => return Err(libc::ENOTDIR),
            }
        }
        Ok(dir)
    }

    /// Resolves the parent of `path`; returns it with the last name.
    pub(super) async fn parent<'p>(&self, ctx: &Ctx, path: &'p str, reval: Reval) -> Res<(Fh, &'p str)> {
        let parts = split_path(path)?;
        let Some((name, dirs)) = parts.split_last() else { return Err(libc::EINVAL) };
        Ok((self.walk_dirs(ctx, dirs, reval).await?, name))
    }

    /// Resolves a whole path to an existing object (the root for an empty path).
    pub(super) async fn resolve(&self, ctx: &Ctx, path: &str, reval: Reval) -> Res<(Fh, Ftype)> {
        let parts = split_path(path)?;
        let Some((name, dirs)) = parts.split_last() else { return Ok((ROOT, Ftype::Dir)) };
        let dir = self.walk_dirs(ctx, dirs, reval).await?;
        self.lookup_name(ctx, dir, name, Intent::Plain, reval).await?.ok_or(libc::ENOENT)
    }

    /// This client changed `dir`: its own listing is out of date.
    pub(super) fn dir_changed(&self, dir: Fh) {
        self.listings.borrow_mut().invalidate(dir);
    }
}
