//! The world around the list server: a downstream SMTP sink that list
//! members' mail ends up in, and a sender that injects posts.
//!
//! Models only what the oracles need: the sink records every delivery with
//! the post number parsed from the subject prefix and refuses configured
//! recipients permanently (550) or temporarily (451); the sender injects
//! `count` messages at seeded times (`Os::random`) over at most
//! `connections` concurrent SMTP connections (one message at a time per
//! connection), retries 4xx and connection failures after a delay up to a
//! bounded number of attempts, and records 5xx. Every message carries a
//! `Message-Id` that the ledger follows. Left out: DSNs from the sink (its
//! refusals are synchronous), and any content beyond headers and one line.

use std::cell::RefCell;
use std::collections::BTreeSet;

use crate::event::ModelEvent;
use crate::message::Message;
use crate::os::{Os, Signal};
use crate::python::{duration_s, time_s};
use crate::smtp::{serve_session, Reply, ServerLimits, SmtpClient, SmtpConn, SmtpError, SmtpHandler};
use crate::syslog::syslog;
use crate::task_set::TaskSet;

/// The post number a subject carries after CookHeaders: the trailing digits
/// inside the first `[...]` (`[test 42] hello` → 42).
pub fn post_number_in_subject(subject: &str) -> Option<u64> {
    let start = subject.find('[')?;
    let end = start + subject[start..].find(']')?;
    let inner = &subject[start + 1..end];
    let digits_at = inner.rfind(|c: char| !c.is_ascii_digit()).map(|i| i + 1).unwrap_or(0);
    inner[digits_at..].parse().ok()
}

/// The sink's configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkSettings {
    pub port: u16,
    /// Recipients refused with 550.
    pub permanent_failures: BTreeSet<String>,
    /// Recipients refused with 451.
    pub temporary_failures: BTreeSet<String>,
    /// Concurrent sessions.
    pub sessions_max: usize,
}

struct SinkSession<'a, O: Os> {
    os: &'a O,
    settings: &'a SinkSettings,
}

impl<O: Os> SmtpHandler for SinkSession<'_, O> {
    async fn rcpt(&mut self, rcpt: &str) -> Reply {
        let rcpt = rcpt.to_lowercase();
        if self.settings.permanent_failures.contains(&rcpt) {
            Reply::new(550, "No such user here")
        } else if self.settings.temporary_failures.contains(&rcpt) {
            Reply::new(451, "Mailbox temporarily unavailable")
        } else {
            Reply::new(250, "OK")
        }
    }

    async fn data(&mut self, _from: &str, rcpts: &[String], text: &str) -> Reply {
        let (message_id, subject) = match Message::parse(text) {
            Ok(m) => (m.message_id(), m.get("Subject").unwrap_or("").to_string()),
            Err(_) => (crate::message::message_id_in_text(text), String::new()),
        };
        for r in rcpts {
            self.os.event(ModelEvent::SinkReceived {
                recipient: r.clone(),
                message_id: message_id.clone(),
                post_number: post_number_in_subject(&subject),
                subject: subject.clone(),
            });
        }
        Reply::new(250, "OK queued")
    }
}

/// A refusing sink also records each refusal; the RCPT hook has no message
/// id yet, so refusals are recorded with the recipient only.
fn record_refusal<O: Os>(os: &O, rcpt: &str, code: u16) {
    os.event(ModelEvent::SinkRefused { recipient: rcpt.to_string(), message_id: String::new(), code });
}

struct RecordingSink<'a, O: Os>(SinkSession<'a, O>);

impl<O: Os> SmtpHandler for RecordingSink<'_, O> {
    async fn rcpt(&mut self, rcpt: &str) -> Reply {
        let r = self.0.rcpt(rcpt).await;
        if r.code != 250 {
            record_refusal(self.0.os, rcpt, r.code);
        }
        r
    }

    async fn data(&mut self, from: &str, rcpts: &[String], text: &str) -> Reply {
        self.0.data(from, rcpts, text).await
    }
}

/// Runs the sink until SIGTERM (checked between connections).
pub async fn smtp_sink<O: Os>(os: &O, settings: &SinkSettings) -> i32 {
    let listener = match os.tcp_listen(settings.port).await {
        Ok(l) => l,
        Err(e) => {
            syslog(os, "sink", format!("cannot listen on port {}: {e}", settings.port));
            return 1;
        }
    };
    let hostname = os.hostname();
    let limits = ServerLimits { message_bytes_max: 50 * 1024 * 1024, commands_max: 10_000 };
    let mut sessions: TaskSet<'_, ()> = TaskSet::new();
    loop {
        // Accept only when below the bound; finished sessions are reaped first.
        while sessions.len() >= settings.sessions_max.max(1) {
            sessions.next().await;
        }
        let accepted = tokio::select! {
            biased;
            Some(()) = sessions.next(), if !sessions.is_empty() => None,
            r = os.tcp_accept(&listener) => Some(r),
        };
        if matches!(os.take_signal(), Some(Signal::Term)) {
            return 0;
        }
        match accepted {
            None => {}
            Some(Ok((stream, _peer))) => {
                let hostname = hostname.clone();
                sessions.push(async move {
                    let mut conn = SmtpConn::new(os, stream);
                    let mut handler = RecordingSink(SinkSession { os, settings });
                    if let Err(e) = serve_session(&mut conn, &hostname, limits, &mut handler).await {
                        syslog(os, "sink", format!("session error: {e}"));
                    }
                });
            }
            Some(Err(e)) => {
                syslog(os, "sink", format!("accept failed: {e}"));
                return 1;
            }
        }
    }
}

/// The sender's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct SenderSettings {
    pub host: String,
    pub port: u16,
    /// Envelope and header recipient (the list address).
    pub to: String,
    pub from: String,
    pub count: u32,
    pub connections: u32,
    /// Injection times are uniform in `[0, window_s)` after start.
    pub window_s: f64,
    pub retry_delay_s: f64,
    pub attempts_max: u32,
    /// Message ids are `<id_prefix>-<n>@<hostname>`.
    pub id_prefix: String,
}

impl Default for SenderSettings {
    fn default() -> Self {
        SenderSettings {
            host: "localhost".to_string(),
            port: 25,
            to: "test@lists.example.com".to_string(),
            from: "poster@example.org".to_string(),
            count: 1,
            connections: 1,
            window_s: 0.0,
            retry_delay_s: 60.0,
            attempts_max: 5,
            id_prefix: "m".to_string(),
        }
    }
}

#[derive(Clone, Debug)]
struct Pending {
    due_s: f64,
    n: u32,
    attempt: u32,
}

/// Injects the messages; returns 0 when every message reached a final
/// outcome (accepted or bounced), 1 otherwise.
pub async fn sender<O: Os>(os: &O, settings: &SenderSettings) -> i32 {
    let start = time_s(os);
    let mut pending: Vec<Pending> = (0..settings.count)
        .map(|n| Pending { due_s: start + os.random() * settings.window_s.max(0.0), n, attempt: 1 })
        .collect();
    pending.sort_by(|a, b| a.due_s.total_cmp(&b.due_s).then(a.n.cmp(&b.n)));
    let queue = RefCell::new(pending);
    let unfinished = RefCell::new(0u32);
    let hostname = os.hostname();
    let mut workers: TaskSet<'_, ()> = TaskSet::new();
    for _ in 0..settings.connections.max(1) {
        workers.push(worker(os, settings, &queue, &unfinished, &hostname));
    }
    while workers.next().await.is_some() {}
    if *unfinished.borrow() == 0 {
        0
    } else {
        1
    }
}

async fn worker<O: Os>(
    os: &O,
    s: &SenderSettings,
    queue: &RefCell<Vec<Pending>>,
    unfinished: &RefCell<u32>,
    hostname: &str,
) {
    loop {
        let next = {
            let mut q = queue.borrow_mut();
            if q.is_empty() {
                return;
            }
            let i = (0..q.len()).min_by(|a, b| q[*a].due_s.total_cmp(&q[*b].due_s)).expect("not empty");
            q.remove(i)
        };
        let now = time_s(os);
        if next.due_s > now {
            os.sleep(duration_s(next.due_s - now)).await;
        }
        let message_id = format!("{}-{}@{}", s.id_prefix, next.n, hostname);
        if next.attempt == 1 {
            os.event(ModelEvent::SenderInjected { message_id: message_id.clone(), recipient: s.to.clone() });
        }
        let text = format!(
            "From: {}\nTo: {}\nSubject: post {}\nMessage-Id: <{}>\n\nBody of post {}.\n",
            s.from, s.to, next.n, message_id, next.n
        );
        let result = async {
            let mut c = SmtpClient::connect(os, &s.host, s.port).await?;
            let r = c.sendmail(hostname, &s.from, std::slice::from_ref(&s.to), &text).await;
            c.quit().await;
            r
        }
        .await;
        let code: u16 = match &result {
            Ok(_) => 250,
            Err(SmtpError::RecipientsRefused(r)) => r.values().next().map(|x| x.code).unwrap_or(0),
            Err(SmtpError::Response { code, .. }) => *code,
            Err(SmtpError::Io(_)) => 0,
        };
        if code == 250 {
            os.event(ModelEvent::SenderAccepted { message_id, recipient: s.to.clone(), code });
        } else if code >= 500 {
            os.event(ModelEvent::SenderBounced { message_id, recipient: s.to.clone(), code });
        } else if next.attempt >= s.attempts_max {
            os.event(ModelEvent::SenderBounced { message_id, recipient: s.to.clone(), code: 0 });
            *unfinished.borrow_mut() += 1;
        } else {
            os.event(ModelEvent::SenderDeferred { message_id, recipient: s.to.clone(), code, attempt: next.attempt });
            let due_s = time_s(os) + duration_s(s.retry_delay_s).as_secs_f64();
            queue.borrow_mut().push(Pending { due_s, n: next.n, attempt: next.attempt + 1 });
        }
    }
}
