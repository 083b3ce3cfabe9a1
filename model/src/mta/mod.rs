//! An Exim-like MTA for one mail host: an SMTP server with two routers and
//! their transports (docs/semantics/exim.md).
//!
//! - **The Mailman router** serves `local_domains`: `require_files =
//!   lists/<list>/config.db` (2.0) or `config.pck` (2.1) as a `stat`: success
//!   → the router accepts; **ENOENT → the router is skipped**, no other router
//!   accepts, and the address is "Unrouteable address"; **any other errno →
//!   defer**. Exim routes an address twice: at RCPT time, to verify it (the
//!   default ACL's `require verify = recipient`, skipped for
//!   `relay_from_hosts`), and again in the delivery process, so the `stat`
//!   runs again after DATA. The local part is lower-cased and an optional
//!   suffix (`-bounces`, `-bounces+*`) selects the `bounces` script, otherwise
//!   `post`. Hostile names (outside `[A-Za-z0-9._-]`, or containing `..`) are
//!   refused before any filesystem call. The pipe transport spawns the script
//!   per routed recipient (`Os::spawn`), waits for it and maps the exit code
//!   as Exim's pipe transport does with the default `temp_errors = 75:73`: 0
//!   → delivered, 75/73 → deferred, anything else (including death by a
//!   signal) → failed.
//! - **The smarthost router** (`manualroute`, `route_list = * host::port`)
//!   takes every other domain, for clients in `relay_from_hosts` (this host:
//!   Mailman's `SMTPHOST = 'localhost'`); others get "relay not permitted".
//!   Such recipients are accepted at RCPT without routing, and after DATA a
//!   delivery process (`mta-deliver`, [`remote`]) carries them to the
//!   smarthost.
//!
//! Deliberate simplification: Exim accepts a message into its spool, then
//! delivers and, on failure, sends a bounce message. For the Mailman router
//! the model delivers synchronously during DATA, so the outcome reaches the
//! sender as the DATA reply; with several recipients the worst outcome wins
//! (any failure → 550, else any deferral → 451). Left out: the spool (a host
//! crash loses what a delivery process had not yet delivered), queue runs,
//! and every other router.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use serde::{Deserialize, Serialize};

use crate::event::{ModelEvent, RouteDecision, RouteStage};
use crate::list_access::{validate_list_name, ConfigFormat, LIST_DATA_DIR};
use crate::message::message_id_in_text;
use crate::os::{errno, errno_name, ExitStatus, Os, Peer, Signal};
use crate::smtp::{serve_session, split_address, Reply, ServerLimits, SmtpConn, SmtpHandler};
use crate::syslog::syslog;
use crate::task_set::TaskSet;

pub mod remote;

pub use remote::{mta_deliver, RetryRule, RetryState, RetryStep};

/// Where the smarthost router sends every address outside `local_domains`
/// (`route_list = * host`, the `remote_smtp` transport's `port`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smarthost {
    pub host: String,
    pub port: u16,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MtaSettings {
    pub smtp_port: u16,
    /// Which file `require_files = MAILMAN_HOME/lists/$local_part/<file>`
    /// names: Exim's own configuration, not Mailman's, so it is a knob of its
    /// own (the profiles set it to the store's primary file; a mismatch is a
    /// misconfigured site).
    pub require_file: ConfigFormat,
    /// How the Mailman router decides that a list exists
    /// (docs/semantics/exim.md, "The list check"): `require_files` on the
    /// config file (Mailman's `README.EXIM`, the default), on the list's
    /// directory, or an `exists` condition on the config file or its `.last`.
    pub list_check: ListCheck,
    /// `local_part_suffix` values routed to the `bounces` script; a trailing
    /// `*` matches anything.
    pub bounces_suffixes: Vec<String>,
    /// The pipe transport's `temp_errors`.
    pub temp_exit_codes: Vec<i32>,
    /// `smtp_accept_max`: concurrent sessions.
    pub smtp_accept_max: usize,
    /// `message_size_limit`.
    pub message_size_limit_bytes: usize,
    /// Commands per session before the server hangs up.
    pub session_commands_max: u32,
    /// `domainlist local_domains`: the domains the Mailman router serves.
    pub local_domains: Vec<String>,
    /// The smarthost router; without one, other domains are unrouteable.
    pub smarthost: Option<Smarthost>,
    /// The `remote_smtp` transport's `max_rcpt`: RCPTs per transaction.
    pub remote_rcpts_max: usize,
    /// The retry rule for deferred remote deliveries (`begin retry`).
    pub retry: RetryRule,
}

impl Default for MtaSettings {
    fn default() -> Self {
        MtaSettings {
            smtp_port: 25,
            require_file: ConfigFormat::Pck21,
            list_check: ListCheck::RequireFilesConfig,
            bounces_suffixes: vec!["-bounces".to_string(), "-bounces+*".to_string()],
            temp_exit_codes: vec![75, 73],
            smtp_accept_max: 20,
            message_size_limit_bytes: 50 * 1024 * 1024,
            session_commands_max: 10_000,
            local_domains: vec!["lists.example.com".to_string()],
            smarthost: None,
            remote_rcpts_max: 100,
            retry: RetryRule::default(),
        }
    }
}

impl MtaSettings {
    pub fn is_local_domain(&self, domain: &str) -> bool {
        self.local_domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
    }
}

/// The Mailman router's test that a list exists (docs/semantics/exim.md,
/// "The list check").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ListCheck {
    /// `require_files = MAILMAN_HOME/lists/$local_part/<require_file>`:
    /// ENOENT skips the router (unrouteable), any other errno defers.
    RequireFilesConfig,
    /// `require_files = MAILMAN_HOME/lists/$local_part/`: the list's
    /// directory, which `Save()` never renames.
    RequireFilesDirectory,
    /// No `require_files`; `condition = ${if or {{exists{…/<require_file>}}
    /// {exists{…/<require_file>.last}}}}`: the router runs when either
    /// `stat` succeeds, and is skipped (unrouteable) when both fail, whatever
    /// the errno.
    ExistsConfigOrLast,
}

/// The router's verdict for one address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Accepted by the Mailman router: run `program` for `list`.
    Pipe { list: String, program: &'static str },
    /// Deferred (451) with the errno of the failed stat.
    Defer { list: String, errno: i32 },
    /// Unrouteable (550): `errno` is ENOENT for a missing list, 0 for a refused name.
    Unrouteable { list: String, errno: i32 },
}

/// The Mailman router for one address of a local domain: suffix handling,
/// name check, the `require_files` stat. Records its decision for `stage`.
pub async fn route<O: Os>(os: &O, settings: &MtaSettings, recipient: &str, stage: RouteStage) -> Route {
    let (local, _domain) = split_address(recipient);
    let local = local.to_lowercase();
    let (list, program) = strip_suffix(&local, &settings.bounces_suffixes);
    let route = if validate_list_name(&list).is_err() {
        Route::Unrouteable { list, errno: 0 }
    } else {
        let primary = settings.require_file.primary();
        match settings.list_check {
            ListCheck::RequireFilesConfig => {
                require_files(os, &format!("{LIST_DATA_DIR}/{list}/{primary}"), list, program).await
            }
            ListCheck::RequireFilesDirectory => {
                require_files(os, &format!("{LIST_DATA_DIR}/{list}/"), list, program).await
            }
            ListCheck::ExistsConfigOrLast => {
                // `or{}` stops at the first true condition (expand.c).
                let mut last_errno = 0;
                for file in [primary.to_string(), format!("{primary}.last")] {
                    match os.stat(&format!("{LIST_DATA_DIR}/{list}/{file}")).await {
                        Ok(_) => return routed(os, Route::Pipe { list, program }, stage, recipient),
                        Err(e) => last_errno = errno(&e),
                    }
                }
                Route::Unrouteable { list, errno: last_errno }
            }
        }
    };
    routed(os, route, stage, recipient)
}

/// `require_files` with one path: found → the router runs; ENOENT → it is
/// skipped (unrouteable); any other errno → defer (route.c `check_files()`).
async fn require_files<O: Os>(os: &O, path: &str, list: String, program: &'static str) -> Route {
    match os.stat(path).await {
        Ok(_) => Route::Pipe { list, program },
        Err(e) if errno(&e) == libc::ENOENT => Route::Unrouteable { list, errno: libc::ENOENT },
        Err(e) => {
            syslog(os, "exim-main", format!("require_files: error for {path}: {e}"));
            Route::Defer { list, errno: errno(&e) }
        }
    }
}

/// Records the router's decision for `stage`.
fn routed<O: Os>(os: &O, route: Route, stage: RouteStage, recipient: &str) -> Route {
    let (list, decision, errno_value) = match &route {
        Route::Pipe { list, .. } => (list, RouteDecision::Accepted, 0),
        Route::Defer { list, errno } => (list, RouteDecision::Deferred, *errno),
        Route::Unrouteable { list, errno: 0 } => (list, RouteDecision::RefusedBadName, 0),
        Route::Unrouteable { list, errno } => (list, RouteDecision::BouncedUnknownList, *errno),
    };
    os.event(ModelEvent::MtaRouted {
        list: list.clone(),
        recipient: recipient.to_string(),
        stage,
        decision,
        errno: errno_name(errno_value),
    });
    route
}

fn strip_suffix(local: &str, suffixes: &[String]) -> (String, &'static str) {
    for suffix in suffixes {
        let hit = match suffix.strip_suffix('*') {
            Some(prefix) => local.find(prefix).filter(|i| *i > 0).map(|i| &local[..i]),
            None => local.strip_suffix(suffix.as_str()).filter(|l| !l.is_empty()),
        };
        if let Some(list) = hit {
            return (list.to_string(), "bounces");
        }
    }
    (local.to_string(), "post")
}

/// How a transport judges one delivery (the worst of several wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PipeOutcome {
    Delivered,
    Deferred,
    Bounced,
}

impl std::fmt::Display for PipeOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PipeOutcome::Delivered => "delivered",
            PipeOutcome::Deferred => "deferred",
            PipeOutcome::Bounced => "bounced",
        })
    }
}

/// Exim's pipe transport mapping.
pub fn pipe_outcome(status: &std::io::Result<ExitStatus>, temp_exit_codes: &[i32]) -> PipeOutcome {
    match status {
        Ok(ExitStatus::Code(0)) => PipeOutcome::Delivered,
        Ok(ExitStatus::Code(c)) if temp_exit_codes.contains(c) => PipeOutcome::Deferred,
        Ok(_) => PipeOutcome::Bounced,
        // The child could not be created or waited for: Exim defers.
        Err(_) => PipeOutcome::Deferred,
    }
}

/// Delivers `text` to the local-domain addresses `rcpts` as Exim's delivery
/// process does: every address is routed again (the second `require_files`
/// check), then the pipe transport runs for each routed one. The worst
/// outcome wins.
pub async fn deliver_local<O: Os>(
    os: &O,
    settings: &MtaSettings,
    child_args: &[String],
    rcpts: &[String],
    text: &str,
) -> PipeOutcome {
    let mut worst = PipeOutcome::Delivered;
    let mut routed = Vec::new();
    for rcpt in rcpts {
        match route(os, settings, rcpt, RouteStage::Delivery).await {
            Route::Pipe { list, program } => routed.push((list, program)),
            Route::Defer { .. } => worst = worst.max(PipeOutcome::Deferred),
            Route::Unrouteable { .. } => worst = PipeOutcome::Bounced,
        }
    }
    let message_id = message_id_in_text(text);
    for (list, program) in routed {
        let mut args: Vec<String> = child_args.to_vec();
        args.push(format!("--stdin={text}"));
        args.push(list.clone());
        let status = match os.spawn(program, &args).await {
            Ok(pid) => os.wait(pid).await,
            Err(e) => {
                syslog(
                    os,
                    "exim-main",
                    format!("Failed to create child process for {program} transport: {}", errno_name(errno(&e))),
                );
                Err(e)
            }
        };
        let outcome = pipe_outcome(&status, &settings.temp_exit_codes);
        let exit_code = match status {
            Ok(ExitStatus::Code(c)) => c,
            _ => -1,
        };
        os.event(ModelEvent::MtaPiped {
            list,
            message_id: message_id.clone(),
            program: program.to_string(),
            exit_code,
            outcome,
        });
        worst = worst.max(outcome);
    }
    worst
}

struct MtaSession<'a, O: Os> {
    os: &'a O,
    settings: &'a MtaSettings,
    child_args: &'a [String],
    peer: Peer,
    /// Accepted addresses of local domains.
    local: Vec<String>,
    /// Accepted addresses for the smarthost.
    remote: Vec<String>,
}

impl<O: Os> SmtpHandler for MtaSession<'_, O> {
    fn reset(&mut self) {
        self.local.clear();
        self.remote.clear();
    }

    async fn rcpt(&mut self, rcpt: &str) -> Reply {
        let (_, domain) = split_address(rcpt);
        let local_domain = self.settings.is_local_domain(domain);
        // The default ACL: `accept hosts = +relay_from_hosts` comes before
        // `require ... domains = +local_domains` and `require verify = recipient`.
        if self.peer.local {
            if local_domain {
                self.local.push(rcpt.to_string());
            } else {
                self.remote.push(rcpt.to_string());
            }
            return Reply::new(250, "Accepted");
        }
        if !local_domain {
            return Reply::new(550, "relay not permitted");
        }
        match route(self.os, self.settings, rcpt, RouteStage::Verify).await {
            Route::Pipe { .. } => {
                self.local.push(rcpt.to_string());
                Reply::new(250, "Accepted")
            }
            Route::Defer { .. } => Reply::new(451, "Temporary local problem - please try later"),
            Route::Unrouteable { .. } => Reply::new(550, "Unrouteable address"),
        }
    }

    async fn data(&mut self, from: &str, _rcpts: &[String], text: &str) -> Reply {
        let local = std::mem::take(&mut self.local);
        let remote = std::mem::take(&mut self.remote);
        if !remote.is_empty() {
            // The delivery process for the smarthost router's addresses: Exim
            // forks it once the message is in its spool and does not wait.
            let mut args: Vec<String> = self.child_args.to_vec();
            args.push(format!("--from={from}"));
            args.push(format!("--to={}", remote.join(",")));
            args.push(format!("--stdin={text}"));
            if let Err(e) = self.os.spawn("mta-deliver", &args).await {
                syslog(self.os, "exim-main", format!("fork of delivery process failed: {}", errno_name(errno(&e))));
                return Reply::new(451, "Temporary local problem - please try later");
            }
        }
        if local.is_empty() {
            return Reply::new(250, "OK");
        }
        match deliver_local(self.os, self.settings, self.child_args, &local, text).await {
            PipeOutcome::Delivered => Reply::new(250, "OK"),
            PipeOutcome::Deferred => Reply::new(451, "Temporary local problem - please try later"),
            PipeOutcome::Bounced => Reply::new(550, "Unrouteable address or mailman_transport error"),
        }
    }
}

/// Runs the MTA until SIGTERM (checked between connections) or a listener
/// error. `child_args` go in front of the script's own arguments.
pub async fn mta<O: Os>(os: &O, settings: &MtaSettings, child_args: &[String]) -> i32 {
    let listener = match os.tcp_listen(settings.smtp_port).await {
        Ok(l) => l,
        Err(e) => {
            syslog(os, "exim-main", format!("cannot listen on port {}: {e}", settings.smtp_port));
            return 1;
        }
    };
    let limits = ServerLimits {
        message_bytes_max: settings.message_size_limit_bytes,
        commands_max: settings.session_commands_max,
    };
    let hostname = os.hostname();
    let mut sessions: TaskSet<'_, ()> = TaskSet::new();
    type Accept<'a, S> = Pin<Box<dyn Future<Output = std::io::Result<(S, Peer)>> + 'a>>;
    let mut accept: Accept<'_, O::Stream> = Box::pin(os.tcp_accept(&listener));
    loop {
        let accepted = std::future::poll_fn(|cx| {
            if !sessions.is_empty() {
                if let Poll::Ready(Some(())) = sessions.poll_next(cx) {
                    return Poll::Ready(None);
                }
            }
            if sessions.len() < settings.smtp_accept_max {
                if let Poll::Ready(r) = accept.as_mut().poll(cx) {
                    return Poll::Ready(Some(r));
                }
            }
            Poll::Pending
        })
        .await;
        if matches!(os.take_signal(), Some(Signal::Term)) {
            return 0;
        }
        match accepted {
            None => {}
            Some(Ok((stream, peer))) => {
                accept = Box::pin(os.tcp_accept(&listener));
                let hostname = hostname.clone();
                sessions.push(async move {
                    let mut conn = SmtpConn::new(os, stream);
                    let mut handler =
                        MtaSession { os, settings, child_args, peer, local: Vec::new(), remote: Vec::new() };
                    if let Err(e) = serve_session(&mut conn, &hostname, limits, &mut handler).await {
                        syslog(os, "exim-main", format!("SMTP connection lost: {e}"));
                    }
                });
            }
            Some(Err(e)) => {
                syslog(os, "exim-main", format!("accept failed: {e}"));
                return 1;
            }
        }
    }
}
