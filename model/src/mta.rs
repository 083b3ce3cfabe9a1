//! An Exim-like MTA for one mail host: an SMTP server whose only router is
//! Mailman's list router, and a pipe transport to `post`
//! (spec/mailman.md §5.1, §5.2).
//!
//! Models: `require_files = lists/<list>/config.db` (2.0) or `config.pck`
//! (2.1) as a `stat`: success → the router accepts; **ENOENT → the router is
//! skipped**, no other router accepts, and the address fails with 550
//! "Unrouteable address" at RCPT time (recipient verification on); **any
//! other errno → 451 defer**. The local part is lower-cased and an optional
//! suffix (`-bounces`, `-bounces+*`) selects the `bounces` script, otherwise
//! `post`. Hostile names (outside `[A-Za-z0-9._-]`, or containing `..`) are
//! refused with 550 before any filesystem call. At DATA, the pipe transport
//! spawns the script per accepted recipient (`Os::spawn`), waits for it and
//! maps the exit code as Exim's pipe transport does with the default
//! `temp_errors = 75:73`: 0 → delivered, 75/73 → 451, anything else
//! (including death by a signal) → permanent failure (550).
//!
//! Deliberate simplification: Exim accepts the message into its spool, then
//! delivers and (on failure) sends a DSN. The model delivers synchronously
//! during DATA, so the outcome reaches the sender as the DATA reply; with
//! several recipients the worst outcome wins (any permanent → 550, else any
//! temporary → 451). Left out: the spool, the retry queue, other routers.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use serde::{Deserialize, Serialize};

use crate::event::ModelEvent;
use crate::list_access::{validate_list_name, ConfigFormat, LIST_DATA_DIR};
use crate::message::message_id_in_text;
use crate::os::{errno, errno_name, ExitStatus, Os, Signal};
use crate::smtp::{serve_session, split_address, Reply, ServerLimits, SmtpConn, SmtpHandler};
use crate::syslog::syslog;
use crate::task_set::TaskSet;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MtaSettings {
    pub smtp_port: u16,
    /// Which file `require_files = MAILMAN_HOME/lists/$local_part/<file>`
    /// names: Exim's own configuration, not Mailman's, so it is a knob of its
    /// own (the profiles set it to the store's primary file; a mismatch is a
    /// misconfigured site).
    pub require_file: ConfigFormat,
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
}

impl Default for MtaSettings {
    fn default() -> Self {
        MtaSettings {
            smtp_port: 25,
            require_file: ConfigFormat::Pck21,
            bounces_suffixes: vec!["-bounces".to_string(), "-bounces+*".to_string()],
            temp_exit_codes: vec![75, 73],
            smtp_accept_max: 20,
            message_size_limit_bytes: 50 * 1024 * 1024,
            session_commands_max: 10_000,
        }
    }
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

/// The list router: suffix handling, name check, `require_files` stat.
pub async fn route<O: Os>(os: &O, settings: &MtaSettings, recipient: &str) -> Route {
    let (local, _domain) = split_address(recipient);
    let local = local.to_lowercase();
    let (list, program) = strip_suffix(&local, &settings.bounces_suffixes);
    if validate_list_name(&list).is_err() {
        return Route::Unrouteable { list, errno: 0 };
    }
    let path = format!("{LIST_DATA_DIR}/{list}/{}", settings.require_file.primary());
    match os.stat(&path).await {
        Ok(_) => Route::Pipe { list, program },
        Err(e) if errno(&e) == libc::ENOENT => Route::Unrouteable { list, errno: libc::ENOENT },
        Err(e) => {
            syslog(os, "exim-main", format!("require_files: error for {path}: {e}"));
            Route::Defer { list, errno: errno(&e) }
        }
    }
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

/// How the pipe transport judges a script's exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipeOutcome {
    Delivered,
    Deferred,
    Bounced,
}

/// Exim's pipe transport mapping (§5.2).
pub fn pipe_outcome(status: &std::io::Result<ExitStatus>, temp_exit_codes: &[i32]) -> PipeOutcome {
    match status {
        Ok(ExitStatus::Code(0)) => PipeOutcome::Delivered,
        Ok(ExitStatus::Code(c)) if temp_exit_codes.contains(c) => PipeOutcome::Deferred,
        Ok(_) => PipeOutcome::Bounced,
        // The child could not be created or waited for: Exim defers.
        Err(_) => PipeOutcome::Deferred,
    }
}

struct MtaSession<'a, O: Os> {
    os: &'a O,
    settings: &'a MtaSettings,
    child_args: &'a [String],
    routes: Vec<(String, String, &'static str)>,
}

impl<O: Os> SmtpHandler for MtaSession<'_, O> {
    fn reset(&mut self) {
        self.routes.clear();
    }

    async fn rcpt(&mut self, rcpt: &str) -> Reply {
        let (decision, errno_value, reply) = match route(self.os, self.settings, rcpt).await {
            Route::Pipe { list, program } => {
                self.routes.push((rcpt.to_string(), list.clone(), program));
                (("accepted", list), 0, Reply::new(250, "Accepted"))
            }
            Route::Defer { list, errno } => {
                (("deferred", list), errno, Reply::new(451, "Temporary local problem - please try later"))
            }
            Route::Unrouteable { list, errno: 0 } => {
                (("refused_bad_name", list), 0, Reply::new(550, "Unrouteable address"))
            }
            Route::Unrouteable { list, errno } => {
                (("bounced_unknown_list", list), errno, Reply::new(550, "Unrouteable address"))
            }
        };
        self.os.event(ModelEvent::MtaRouted {
            list: decision.1,
            recipient: rcpt.to_string(),
            decision: decision.0.to_string(),
            errno: errno_name(errno_value),
        });
        reply
    }

    async fn data(&mut self, _from: &str, _rcpts: &[String], text: &str) -> Reply {
        let message_id = message_id_in_text(text);
        let mut worst = PipeOutcome::Delivered;
        for (_rcpt, list, program) in std::mem::take(&mut self.routes) {
            let mut args: Vec<String> = self.child_args.to_vec();
            args.push(format!("--stdin={text}"));
            args.push(list.clone());
            let status = match self.os.spawn(program, &args).await {
                Ok(pid) => self.os.wait(pid).await,
                Err(e) => {
                    syslog(
                        self.os,
                        "exim-main",
                        format!("Failed to create child process for {program} transport: {}", errno_name(errno(&e))),
                    );
                    Err(e)
                }
            };
            let outcome = pipe_outcome(&status, &self.settings.temp_exit_codes);
            let exit_code = match status {
                Ok(ExitStatus::Code(c)) => c,
                _ => -1,
            };
            self.os.event(ModelEvent::MtaPiped {
                list,
                message_id: message_id.clone(),
                program: program.to_string(),
                exit_code,
                outcome: match outcome {
                    PipeOutcome::Delivered => "delivered",
                    PipeOutcome::Deferred => "deferred",
                    PipeOutcome::Bounced => "bounced",
                }
                .to_string(),
            });
            worst = match (worst, outcome) {
                (PipeOutcome::Bounced, _) | (_, PipeOutcome::Bounced) => PipeOutcome::Bounced,
                (PipeOutcome::Deferred, _) | (_, PipeOutcome::Deferred) => PipeOutcome::Deferred,
                _ => PipeOutcome::Delivered,
            };
        }
        match worst {
            PipeOutcome::Delivered => Reply::new(250, "OK"),
            PipeOutcome::Deferred => Reply::new(451, "Temporary local problem - please try later"),
            PipeOutcome::Bounced => Reply::new(550, "Child process of mailman_transport transport returned an error"),
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
    let mut accept: Pin<Box<dyn Future<Output = std::io::Result<O::Stream>> + '_>> = Box::pin(os.tcp_accept(&listener));
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
            Some(Ok(stream)) => {
                accept = Box::pin(os.tcp_accept(&listener));
                let hostname = hostname.clone();
                sessions.push(async move {
                    let mut conn = SmtpConn::new(os, stream);
                    let mut handler = MtaSession { os, settings, child_args, routes: Vec::new() };
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
