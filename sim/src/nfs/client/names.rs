//! Operations on names: link, mkdir, rmdir, unlink with silly rename,
//! rename, readdir and setattr of times, each holding its parent
//! directories' VFS locks across its RPCs.

use super::*;

impl NfsClient {
    /// The BSD kludge for EEXIST from LINK and MKDIR (docs/semantics/linux-nfs-client.md §14).
    pub(super) fn map_eexist(&self, ctx: &Ctx, stat: NfsStat) -> Res<()> {
        let mapped = stat == NfsStat::Exist
            && match self.options.map_eexist_to_success {
                MapEexist::Never => false,
                MapEexist::OnRetransmit => ctx.retransmitted.get(),
                MapEexist::Always => true,
            };
        if mapped {
            self.count(|c| c.eexist_mapped_to_success += 1);
            Ok(())
        } else {
            Err(stat.errno())
        }
    }

    pub async fn link(&self, ctx: &Ctx, existing: &str, new: &str) -> Res<()> {
        retry_estale!(self, reval => self.link_once(ctx, existing, new, reval).await)
    }

    pub(super) async fn link_once(&self, ctx: &Ctx, existing: &str, new: &str, reval: Reval) -> Res<()> {
        // do_linkat's order: resolve the source, create the new name (EEXIST if it
        // exists), and only then vfs_link refuses a directory (EPERM).
        let (src, ftype) = self.resolve(ctx, existing, reval).await?;
        let (dir, name) = self.parent(ctx, new, reval).await?;
        // filename_create: the new name's directory, exclusively, for the lookup and the LINK.
        let _held = self.lock_dir(dir, Mode::Exclusive).await;
        if self.lookup_locked(ctx, dir, name, Intent::Exclusive, reval).await?.is_some() {
            return Err(libc::EEXIST);
        }
        if ftype == Ftype::Dir {
            return Err(libc::EPERM);
        }
        let got = self.rpc(ctx, Request::Link { fh: src, dir, name: name.to_string() }).await?;
        let verifier = self.absorb_dir(dir, &got.reply.dir, got.ev);
        self.dir_changed(dir);
        // nfs3_proc_link: the source is refreshed from the reply whether LINK succeeded or not.
        self.absorb_post_op(src, got.reply.obj, got.ev, None, Proc::Link);
        match got.reply.status {
            Ok(_) => {
                self.remember(dir, name, DentryKind::Positive { fh: src, ftype }, verifier, got.ev);
                Ok(())
            }
            Err(stat) => {
                self.dentries.borrow_mut().remove(dir, name);
                self.map_eexist(ctx, stat)
            }
        }
    }

    pub async fn mkdir(&self, ctx: &Ctx, path: &str) -> Res<()> {
        retry_estale!(self, reval => self.mkdir_once(ctx, path, reval).await)
    }

    pub(super) async fn mkdir_once(&self, ctx: &Ctx, path: &str, reval: Reval) -> Res<()> {
        let (dir, name) = self.parent(ctx, path, reval).await?;
        let _held = self.lock_dir(dir, Mode::Exclusive).await;
        if self.lookup_locked(ctx, dir, name, Intent::Exclusive, reval).await?.is_some() {
            return Err(libc::EEXIST);
        }
        let got = self.rpc(ctx, Request::Mkdir { dir, name: name.to_string() }).await?;
        match got.reply.status {
            Err(stat) => {
                self.absorb_dir(dir, &got.reply.dir, got.ev);
                self.dir_changed(dir);
                self.dentries.borrow_mut().remove(dir, name);
                self.map_eexist(ctx, stat)
            }
            Ok(_) => self.created(ctx, dir, name, got).await.map(|_| ()),
        }
    }

    pub async fn rmdir(&self, ctx: &Ctx, path: &str) -> Res<()> {
        retry_estale!(self, reval => self.remove_once(ctx, path, true, reval).await)
    }

    pub async fn unlink(&self, ctx: &Ctx, path: &str) -> Res<()> {
        retry_estale!(self, reval => self.remove_once(ctx, path, false, reval).await)
    }

    pub(super) async fn remove_once(&self, ctx: &Ctx, path: &str, want_dir: bool, reval: Reval) -> Res<()> {
        let (dir, name) = self.parent(ctx, path, reval).await?;
        // do_unlinkat / do_rmdir: the parent, exclusively, for the lookup and the
        // REMOVE (or the silly RENAME).
        let _held = self.lock_dir(dir, Mode::Exclusive).await;
        let (fh, ftype) = self.lookup_locked(ctx, dir, name, Intent::Plain, reval).await?.ok_or(libc::ENOENT)?;
        // may_delete(): the VFS checks the victim's type before the client sends anything.
        match (want_dir, ftype) {
            (false, Ftype::Dir) => return Err(libc::EISDIR),
            (true, Ftype::Reg) => return Err(libc::ENOTDIR),
            _ => {}
        }
        if !want_dir && self.silly.borrow().holds(dir, name) {
            // unlink(2): removing a silly-renamed file by hand gives EBUSY.
            return Err(libc::EBUSY);
        }
        // nfs_unlink: silly-rename when this dentry is in use (d_count > 1),
        // whatever other names of the inode are open (docs/semantics/linux-nfs-client.md §10).
        if !want_dir && self.silly.borrow().is_busy(dir, name, fh) {
            return self.silly_rename(ctx, dir, name, fh).await;
        }
        if !want_dir {
            // nfs_unlink unhashes the dentry (since 6.0: marks it
            // NFS_FSDATA_BLOCKED) for the REMOVE: a lookup of the name on this
            // host cannot be answered from the cache and waits for the lock.
            self.dentries.borrow_mut().remove(dir, name);
        }
        let request = if want_dir {
            Request::Rmdir { dir, name: name.to_string() }
        } else {
            Request::Remove { dir, name: name.to_string() }
        };
        let got = self.rpc(ctx, request).await?;
        let verifier = self.absorb_dir(dir, &got.reply.dir, got.ev);
        self.dir_changed(dir);
        match got.reply.status {
            Ok(_) => {
                self.silly.borrow_mut().removed(dir, name);
                self.remember(dir, name, DentryKind::Negative, verifier, got.ev);
                // nfs_drop_nlink: the inode's cached link count is no longer valid.
                self.attrs.borrow_mut().expire(fh);
                // Not open here, so nothing is dirty: the cached pages can go.
                self.pages.borrow_mut().remove(&fh);
                Ok(())
            }
            Err(stat) => {
                self.dentries.borrow_mut().remove(dir, name);
                Err(stat.errno())
            }
        }
    }

    /// Renames a busy file to `.nfs<fileid><counter>`, to be removed at last close.
    pub(super) async fn silly_rename(&self, ctx: &Ctx, dir: Fh, name: &str, fh: Fh) -> Res<()> {
        let hidden = self.silly.borrow_mut().next_name(fh.ino);
        let got = self
            .rpc(
                ctx,
                Request::Rename { from_dir: dir, from_name: name.to_string(), to_dir: dir, to_name: hidden.clone() },
            )
            .await?;
        let verifier = self.absorb_dir(dir, &got.reply.dir, got.ev);
        self.dir_changed(dir);
        if let Err(stat) = got.reply.status {
            self.dentries.borrow_mut().remove(dir, name);
            return Err(stat.errno());
        }
        self.count(|c| c.silly_renames += 1);
        // nfs_sillyrename d_moves the dentry to the hidden name: the old name
        // is left with no dentry, never a negative one, so a lookup of it on
        // this host asks the server under the directory lock, which the
        // unlink or rename holding it releases only when it is done.
        self.dentries.borrow_mut().remove(dir, name);
        self.remember(dir, &hidden, DentryKind::Positive { fh, ftype: Ftype::Reg }, verifier, got.ev);
        if !self.silly.borrow_mut().renamed(dir, name, hidden.clone()) {
            // Closed while the RENAME was on the wire: the unlink held the last
            // reference, and its dput removes the hidden name now.
            self.remove_hidden(ctx, dir, &hidden).await;
        }
        Ok(())
    }

    /// The sillydelete (`nfs_async_unlink`'s REMOVE of a hidden name); its
    /// failure is not reported to anyone.
    pub(super) async fn remove_hidden(&self, ctx: &Ctx, dir: Fh, name: &str) {
        if let Ok(got) = self.rpc(ctx, Request::Remove { dir, name: name.to_string() }).await {
            let verifier = self.absorb_dir(dir, &got.reply.dir, got.ev);
            self.remember(dir, name, DentryKind::Negative, verifier, got.ev);
            self.dir_changed(dir);
        }
    }

    pub async fn rename(&self, ctx: &Ctx, from: &str, to: &str) -> Res<()> {
        retry_estale!(self, reval => self.rename_once(ctx, from, to, reval).await)
    }

    pub(super) async fn rename_once(&self, ctx: &Ctx, from: &str, to: &str, reval: Reval) -> Res<()> {
        // do_renameat2: both parents are walked, then locked (`lock_rename`),
        // and both names are looked up under the locks, held to the end.
        let (from_dir, from_name) = self.parent(ctx, from, reval).await?;
        let (to_dir, to_name) = self.parent(ctx, to, reval).await?;
        let _held = self.lock_rename(from_dir, to_dir).await;
        let (src, ftype) =
            self.lookup_locked(ctx, from_dir, from_name, Intent::Plain, reval).await?.ok_or(libc::ENOENT)?;
        let dst = self.lookup_locked(ctx, to_dir, to_name, Intent::RenameTarget, reval).await?;
        // may_delete() on an existing target: its type must match the source's.
        match (ftype, dst.map(|(_, t)| t)) {
            (Ftype::Reg, Some(Ftype::Dir)) => return Err(libc::EISDIR),
            (Ftype::Dir, Some(Ftype::Reg)) => return Err(libc::ENOTDIR),
            _ => {}
        }
        if dst.is_some_and(|(dst_fh, _)| dst_fh == src) {
            // vfs_rename: both names already refer to the same inode, so it does
            // nothing and succeeds without calling the filesystem.
            return Ok(());
        }
        if let Some((dst_fh, _)) = dst {
            if self.silly.borrow().is_busy(to_dir, to_name, dst_fh) {
                // nfs_rename: a busy target is silly-renamed first; the name is then
                // absent on the server until the second RENAME (docs/semantics/linux-nfs-client.md §9),
                // and on this host a lookup of it waits for the locks held here.
                self.silly_rename(ctx, to_dir, to_name, dst_fh).await?;
                self.gap().await;
            } else {
                // nfs_rename unhashes (since 6.0: blocks) the target's dentry
                // for the RENAME, so lookups of it on this host wait.
                self.dentries.borrow_mut().remove(to_dir, to_name);
            }
        }
        let got = self
            .rpc(
                ctx,
                Request::Rename { from_dir, from_name: from_name.to_string(), to_dir, to_name: to_name.to_string() },
            )
            .await?;
        let from_verifier = self.absorb_dir(from_dir, &got.reply.dir, got.ev);
        let to_verifier = self.absorb_dir(to_dir, &got.reply.dir2, got.ev);
        self.dir_changed(from_dir);
        self.dir_changed(to_dir);
        match got.reply.status {
            Ok(_) => {
                self.silly.borrow_mut().moved((from_dir, from_name), (to_dir, to_name), src);
                if from_dir != to_dir || from_name != to_name {
                    self.remember(from_dir, from_name, DentryKind::Negative, from_verifier, got.ev);
                }
                self.remember(to_dir, to_name, DentryKind::Positive { fh: src, ftype }, to_verifier, got.ev);
                self.attrs.borrow_mut().expire(src);
                if let Some((dst_fh, _)) = dst {
                    self.attrs.borrow_mut().expire(dst_fh);
                }
                Ok(())
            }
            Err(stat) => {
                self.dentries.borrow_mut().remove(from_dir, from_name);
                self.dentries.borrow_mut().remove(to_dir, to_name);
                Err(stat.errno())
            }
        }
    }

    pub async fn read_dir(&self, ctx: &Ctx, path: &str) -> Res<Vec<String>> {
        retry_estale!(self, reval => self.read_dir_once(ctx, path, reval).await)
    }

    pub(super) async fn read_dir_once(&self, ctx: &Ctx, path: &str, reval: Reval) -> Res<Vec<String>> {
        let (dir, ftype) = self.resolve(ctx, path, reval).await?;
        if ftype != Ftype::Dir {
            return Err(libc::ENOTDIR);
        }
        // opendir is LOOKUP_OPEN on a directory: close-to-open revalidates it
        // (docs/semantics/linux-nfs-client.md §6, §7).
        let attr = self.cto_attrs(ctx, dir).await?;
        // iterate_dir holds the directory's lock shared for getdents (2.2's
        // sys_getdents: i_sem), so a listing waits for this host's renames in it.
        let _held = self.lock_dir(dir, self.reader_mode()).await;
        let cached = self.listings.borrow().get(dir, attr.ctime).map(|l| (l.names.clone(), l.filled_by_ev));
        if let Some((names, ev)) = cached {
            ctx.cache("readdir-cache", ev);
            self.count(|c| c.readdir_cache_hits += 1);
            return Ok(names.to_vec());
        }
        let got = self.rpc(ctx, Request::Readdir { dir }).await?;
        let names = match got.reply.status {
            Ok(Body::Entries(names)) => names,
            Ok(_) => return Err(libc::EIO),
            Err(stat) => return Err(stat.errno()),
        };
        if let Some(a) = got.reply.obj {
            self.absorb(dir, &a, got.ev, None);
            let listing = Listing { names: names.clone().into(), verifier: a.ctime, filled_by_ev: got.ev };
            self.listings.borrow_mut().insert(dir, listing);
        }
        Ok(names)
    }

    /// `utime`: explicit times go as SET_TO_CLIENT_TIME, `None` as SET_TO_SERVER_TIME.
    pub async fn set_times(&self, ctx: &Ctx, path: &str, time: Option<i64>) -> Res<()> {
        retry_estale!(self, reval => self.set_times_once(ctx, path, time, reval).await)
    }

    pub(super) async fn set_times_once(&self, ctx: &Ctx, path: &str, time: Option<i64>, reval: Reval) -> Res<()> {
        let (fh, _) = self.resolve(ctx, path, reval).await?;
        self.flush(ctx, fh, false).await?;
        let how = match time {
            Some(ns) => SetTime::ClientTime(ns),
            None => SetTime::ServerTime,
        };
        let got = self
            .rpc(ctx, Request::Setattr { fh, sattr: Sattr { size: None, atime: Some(how), mtime: Some(how) } })
            .await?;
        if let Err(stat) = got.reply.status {
            return Err(stat.errno());
        }
        self.absorb_post_op(fh, got.reply.obj, got.ev, got.reply.obj_before, Proc::Setattr);
        Ok(())
    }
}
