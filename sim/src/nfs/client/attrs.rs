//! RPCs and what their replies teach the caches: attributes absorbed from
//! every reply (post-op and weak cache consistency data), GETATTR, and the
//! attributes a process is shown.

use super::*;

impl NfsClient {
    pub(super) async fn rpc(&self, ctx: &Ctx, request: Request) -> Res<Got> {
        let (reply, info) = self.transport.call(ctx.span, &request).await?;
        ctx.served.borrow_mut().push(Served::Rpc(info.xid));
        ctx.retransmitted.set(info.retransmits > 0);
        if let Err(NfsStat::Stale) = reply.status {
            self.stale(&request);
        }
        Ok(Got { reply, ev: info.ev })
    }

    /// The server called a handle stale: forget what was cached about it.
    pub(super) fn stale(&self, request: &Request) {
        let fh = match request {
            Request::Getattr { fh }
            | Request::Setattr { fh, .. }
            | Request::Read { fh, .. }
            | Request::Write { fh, .. }
            | Request::Commit { fh } => *fh,
            Request::Lookup { dir, .. } | Request::Readdir { dir } => *dir,
            _ => return,
        };
        self.attrs.borrow_mut().forget(fh);
        self.stale.borrow_mut().insert(fh);
    }

    /// Attributes from the server, by any path (`nfs_update_inode`).
    pub(super) fn absorb(&self, fh: Fh, attr: &Fattr, ev: u64, before: Option<DataVerifier>) {
        self.attrs.borrow_mut().update(fh, *attr, true_now(), ev);
        if attr.ftype == Ftype::Reg {
            if let Some(p) = self.pages.borrow_mut().get_mut(&fh) {
                p.absorb(attr, before);
            }
        }
    }

    /// Post-op attributes of the object of this client's own modifying call,
    /// subject to the `post_op_attrs` switch (docs/semantics/linux-nfs-client.md §3).
    pub(super) fn absorb_post_op(
        &self,
        fh: Fh,
        attr: Option<Fattr>,
        ev: u64,
        before: Option<DataVerifier>,
        proc: Proc,
    ) {
        let Some(attr) = attr else { return };
        match self.options.post_op_attrs {
            PostOpAttrs::Applied => self.absorb(fh, &attr, ev, before),
            PostOpAttrs::IgnoredAfterLink if proc != Proc::Link => self.absorb(fh, &attr, ev, before),
            PostOpAttrs::IgnoredAfterLink | PostOpAttrs::Ignored => {
                // The attribute cache keeps its stale values; the page cache still
                // learns that the change was this client's own.
                if let Some(p) = self.pages.borrow_mut().get_mut(&fh) {
                    p.absorb(&attr, before);
                }
            }
        }
    }

    /// A directory's WCC data: absorbs its post-op attributes and returns the
    /// ctime to use as the verifier of dentries made from this reply.
    pub(super) fn absorb_dir(&self, dir: Fh, wcc: &Option<Wcc>, ev: u64) -> Option<Nanos> {
        match wcc.as_ref().and_then(|w| w.after) {
            Some(a) => {
                self.absorb(dir, &a, ev, None);
                Some(a.ctime)
            }
            None => self.attrs.borrow().get(dir).map(|e| e.attr.ctime),
        }
    }

    pub(super) async fn getattr(&self, ctx: &Ctx, fh: Fh) -> Res<Fattr> {
        let got = self.rpc(ctx, Request::Getattr { fh }).await?;
        if let Err(stat) = got.reply.status {
            return Err(stat.errno());
        }
        let attr = got.reply.obj.ok_or(libc::EIO)?;
        self.absorb(fh, &attr, got.ev, None);
        Ok(attr)
    }

    /// Attributes from the cache while fresh, else a GETATTR.
    pub(super) async fn cached_or_getattr(&self, ctx: &Ctx, fh: Fh) -> Res<Fattr> {
        let hit = self.attrs.borrow().fresh(fh, true_now()).map(|e| (e.attr, e.filled_by_ev));
        if let Some((attr, ev)) = hit {
            ctx.cache("attr-cache", ev);
            self.count(|c| c.attr_cache_hits += 1);
            return Ok(attr);
        }
        self.getattr(ctx, fh).await
    }

    /// What a process sees: the local size while data is dirty.
    pub(super) fn view(&self, fh: Fh, mut attr: Fattr) -> Attr {
        if let Some(p) = self.pages.borrow().get(&fh) {
            if p.has_dirty() {
                attr.size = p.size;
            }
        }
        Attr { fh, attr }
    }
}
