//! The subset of SMTP (RFC 5321) spoken between the model's processes, over
//! `Os` TCP streams: a client in the shape of Python's `smtplib.sendmail`,
//! and a server session loop for the MTA and the downstream sink.
//!
//! Models: the greeting, `EHLO`/`HELO`, `MAIL FROM`, `RCPT TO`, `DATA` with
//! dot-stuffing, `RSET`, `NOOP`, `QUIT`, multi-line replies, and smtplib's
//! error classes (sender refused, all recipients refused, data error) that
//! SMTPDirect classifies (docs/semantics/mailman-queues-runners.md §10).
//!
//! PIPELINING (RFC 2920) as Exim 4.90 does it (docs/semantics/exim.md,
//! "PIPELINING"): the server advertises it in its `EHLO` reply and, like
//! Exim's stdio `smtp_out`, holds its replies until it must read again, so
//! the replies to a pipelined group leave in one write. smtplib never
//! pipelines (`SmtpClient::sendmail`); Exim's smtp transport does when the
//! peer offers it (`SmtpClient::transact`). Leaves out the other extensions
//! (SIZE, 8BITMIME, CHUNKING, STARTTLS, AUTH) and the timeouts of RFC 5321
//! §4.5.3.2: a silent peer is left to the simulation's network faults.

use std::io;

use indexmap::IndexMap;

use crate::os::Os;

/// Longest command or text line accepted, including CRLF (RFC 5321 §4.5.3.1.6).
pub const LINE_BYTES_MAX: usize = 1000;

/// One reply: a code and its text (the last line's text for multi-line replies).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    pub fn new(code: u16, text: impl Into<String>) -> Reply {
        Reply { code, text: text.into() }
    }
}

/// A line-oriented connection over an `Os` stream.
pub struct SmtpConn<'a, O: Os> {
    os: &'a O,
    stream: O::Stream,
    buf: Vec<u8>,
    /// Replies held until the next read (`reply`), as Exim's `smtp_out`.
    held: Vec<u8>,
    /// The read buffer handed to `tcp_read`, zeroed once per connection
    /// rather than once per read.
    chunk: Box<[u8]>,
}

/// Bytes asked of one `tcp_read`.
const READ_CHUNK_BYTES: usize = 4096;

impl<'a, O: Os> SmtpConn<'a, O> {
    pub fn new(os: &'a O, stream: O::Stream) -> Self {
        SmtpConn { os, stream, buf: Vec::new(), held: Vec::new(), chunk: vec![0; READ_CHUNK_BYTES].into() }
    }

    /// Whether a whole line is already buffered: Exim's `smtp_buffered()`,
    /// the sign that the peer pipelined.
    pub fn line_buffered(&self) -> bool {
        self.buf.contains(&b'\n')
    }

    /// Writes the held replies, if any. Exim's `smtp_refill` does this
    /// (`fflush(smtp_out)`) before every `read()`.
    pub async fn flush(&mut self) -> io::Result<()> {
        if self.held.is_empty() {
            return Ok(());
        }
        let held = std::mem::take(&mut self.held);
        self.os.tcp_write(&mut self.stream, &held).await
    }

    /// Reads one line without its line end. `Ok(None)` when the peer closed.
    /// A line longer than `max_bytes` is an `EINVAL` error.
    pub async fn read_line(&mut self, max_bytes: usize) -> io::Result<Option<String>> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
            }
            if self.buf.len() > max_bytes {
                return Err(crate::os::err(libc::EINVAL));
            }
            self.flush().await?;
            let n = self.os.tcp_read(&mut self.stream, &mut self.chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&self.chunk[..n]);
        }
    }

    pub async fn write_line(&mut self, line: &str) -> io::Result<()> {
        let mut data = line.as_bytes().to_vec();
        data.extend_from_slice(b"\r\n");
        self.os.tcp_write(&mut self.stream, &data).await
    }

    /// Holds a server reply until the next read or `flush`.
    pub fn reply(&mut self, reply: &Reply) {
        self.hold_line(&format!("{} {}", reply.code, reply.text));
    }

    fn hold_line(&mut self, line: &str) {
        self.held.extend_from_slice(line.as_bytes());
        self.held.extend_from_slice(b"\r\n");
    }

    /// Reads a (possibly multi-line) reply. A closed connection is
    /// `ECONNRESET` (smtplib's `SMTPServerDisconnected`).
    pub async fn read_reply(&mut self) -> io::Result<Reply> {
        self.read_reply_lines(&mut Vec::new()).await
    }

    /// `read_reply`, also collecting the text of every line but the last
    /// (an `EHLO` reply's extension keywords).
    async fn read_reply_lines(&mut self, earlier: &mut Vec<String>) -> io::Result<Reply> {
        loop {
            let Some(line) = self.read_line(LINE_BYTES_MAX).await? else {
                return Err(crate::os::err(libc::ECONNRESET));
            };
            let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).ok_or_else(|| crate::os::err(libc::EPROTO))?;
            let text = line.get(4..).unwrap_or("").to_string();
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(Reply { code, text });
            }
            earlier.push(text);
        }
    }

    /// Sends message text as `DATA` content: CRLF line ends, dot-stuffed, then `.`.
    pub async fn write_data(&mut self, text: &str) -> io::Result<()> {
        let mut out = String::with_capacity(text.len() + 16);
        for line in text.replace("\r\n", "\n").split('\n') {
            if line.starts_with('.') {
                out.push('.');
            }
            out.push_str(line);
            out.push_str("\r\n");
        }
        out.push_str(".\r\n");
        self.os.tcp_write(&mut self.stream, out.as_bytes()).await
    }
}

/// smtplib's exceptions, as SMTPDirect tells them apart.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    /// `socket.error` / `IOError`.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// An `SMTPResponseException`: HELO, MAIL FROM or DATA refused.
    #[error("SMTP response {code} {text}")]
    Response { code: u16, text: String },
    /// `SMTPRecipientsRefused`: every recipient refused.
    #[error("all recipients refused")]
    RecipientsRefused(IndexMap<String, Reply>),
}

/// A client session, as `smtplib.SMTP`.
pub struct SmtpClient<'a, O: Os> {
    conn: SmtpConn<'a, O>,
    helo_done: bool,
    /// The peer's `EHLO` reply offered PIPELINING.
    peer_pipelining: bool,
}

/// Exim's smtp transport output buffer (`outbuffer[4096]` in
/// `transports/smtp.h`): a pipelined group is flushed when the next
/// command would not fit.
const PIPELINE_BUFFER_BYTES: usize = 4096;

/// A pipelined command whose reply is still to be read.
#[derive(Clone, Copy)]
enum Awaiting {
    Mail,
    Rcpt(usize),
    Data,
}

impl<'a, O: Os> SmtpClient<'a, O> {
    /// `SMTP(host, port)`: connect and read the greeting.
    pub async fn connect(os: &'a O, host: &str, port: u16) -> Result<Self, SmtpError> {
        let stream = os.tcp_connect(host, port).await?;
        let mut conn = SmtpConn::new(os, stream);
        let greeting = conn.read_reply().await?;
        if greeting.code != 220 {
            return Err(SmtpError::Response { code: greeting.code, text: greeting.text });
        }
        Ok(SmtpClient { conn, helo_done: false, peer_pipelining: false })
    }

    pub async fn command(&mut self, line: &str) -> Result<Reply, SmtpError> {
        self.conn.write_line(line).await?;
        Ok(self.conn.read_reply().await?)
    }

    async fn ehlo_or_helo(&mut self, name: &str) -> Result<(), SmtpError> {
        if self.helo_done {
            return Ok(());
        }
        self.conn.write_line(&format!("EHLO {name}")).await?;
        let mut keywords = Vec::new();
        let r = self.conn.read_reply_lines(&mut keywords).await?;
        // The first line is the greeting; a last line is a keyword too.
        keywords.push(r.text.clone());
        self.peer_pipelining =
            (200..300).contains(&r.code) && keywords.iter().skip(1).any(|k| k.eq_ignore_ascii_case("PIPELINING"));
        if !(200..300).contains(&r.code) {
            let r = self.command(&format!("HELO {name}")).await?;
            if !(200..300).contains(&r.code) {
                return Err(SmtpError::Response { code: r.code, text: r.text });
            }
        }
        self.helo_done = true;
        Ok(())
    }

    /// `sendmail(from, to_addrs, msg)`: returns the refused recipients when at
    /// least one was accepted and the data went through.
    pub async fn sendmail(
        &mut self,
        helo_name: &str,
        from: &str,
        rcpts: &[String],
        text: &str,
    ) -> Result<IndexMap<String, Reply>, SmtpError> {
        self.ehlo_or_helo(helo_name).await?;
        let r = self.command(&format!("MAIL FROM:<{from}>")).await?;
        if r.code != 250 {
            self.rset().await;
            return Err(SmtpError::Response { code: r.code, text: r.text });
        }
        let mut refused = IndexMap::new();
        for rcpt in rcpts {
            let r = self.command(&format!("RCPT TO:<{rcpt}>")).await?;
            if r.code != 250 && r.code != 251 {
                refused.insert(rcpt.clone(), r);
            }
        }
        if refused.len() == rcpts.len() {
            self.rset().await;
            return Err(SmtpError::RecipientsRefused(refused));
        }
        self.data(text).await?;
        Ok(refused)
    }

    /// One transaction as Exim's smtp transport makes it
    /// (`smtp_write_mail_and_rcpt_cmds` and `smtp_deliver` in
    /// `transports/smtp.c`, docs/semantics/exim.md "PIPELINING"): when the
    /// peer offered PIPELINING, `MAIL FROM`, the `RCPT TO`s and `DATA` go
    /// out in groups of at most `PIPELINE_BUFFER_BYTES`, and the replies of
    /// each flushed group are read before the next (`sync_responses`);
    /// otherwise one command at a time, as `sendmail`. Same results as
    /// `sendmail`.
    pub async fn transact(
        &mut self,
        helo_name: &str,
        from: &str,
        rcpts: &[String],
        text: &str,
    ) -> Result<IndexMap<String, Reply>, SmtpError> {
        self.ehlo_or_helo(helo_name).await?;
        if !self.peer_pipelining {
            return self.sendmail(helo_name, from, rcpts, text).await;
        }
        let mut out: Vec<u8> = Vec::with_capacity(PIPELINE_BUFFER_BYTES);
        let mut awaiting: Vec<Awaiting> = Vec::new();
        let mut mail: Option<Reply> = None;
        let mut refused = IndexMap::new();
        let mut data: Option<Reply> = None;
        let commands = std::iter::once((Awaiting::Mail, format!("MAIL FROM:<{from}>\r\n")))
            .chain(rcpts.iter().enumerate().map(|(i, r)| (Awaiting::Rcpt(i), format!("RCPT TO:<{r}>\r\n"))))
            .chain(std::iter::once((Awaiting::Data, "DATA\r\n".to_string())));
        for (what, line) in commands {
            if out.len() + line.len() > PIPELINE_BUFFER_BYTES {
                self.pipeline_sync(&mut out, &mut awaiting, &mut mail, &mut refused, rcpts, &mut data).await?;
                // A refused MAIL ends the transaction at the first sync.
                if mail.as_ref().is_some_and(|r| r.code != 250) {
                    break;
                }
            }
            out.extend_from_slice(line.as_bytes());
            awaiting.push(what);
        }
        if !awaiting.is_empty() {
            self.pipeline_sync(&mut out, &mut awaiting, &mut mail, &mut refused, rcpts, &mut data).await?;
        }
        if let Some(r) = mail.filter(|r| r.code != 250) {
            self.rset().await;
            return Err(SmtpError::Response { code: r.code, text: r.text });
        }
        if refused.len() == rcpts.len() {
            // The server refused `DATA` too: no valid recipient.
            self.rset().await;
            return Err(SmtpError::RecipientsRefused(refused));
        }
        let r = data.expect("DATA was sent after the last RCPT");
        if r.code != 354 {
            self.rset().await;
            return Err(SmtpError::Response { code: r.code, text: r.text });
        }
        self.data_text(text).await?;
        Ok(refused)
    }

    /// Writes a pipelined group and reads its replies in order.
    async fn pipeline_sync(
        &mut self,
        out: &mut Vec<u8>,
        awaiting: &mut Vec<Awaiting>,
        mail: &mut Option<Reply>,
        refused: &mut IndexMap<String, Reply>,
        rcpts: &[String],
        data: &mut Option<Reply>,
    ) -> Result<(), SmtpError> {
        self.conn.os.tcp_write(&mut self.conn.stream, out).await?;
        out.clear();
        for what in awaiting.drain(..) {
            let r = self.conn.read_reply().await?;
            match what {
                Awaiting::Mail => *mail = Some(r),
                Awaiting::Rcpt(i) if r.code != 250 && r.code != 251 => {
                    refused.insert(rcpts[i].clone(), r);
                }
                Awaiting::Rcpt(_) => {}
                Awaiting::Data => *data = Some(r),
            }
        }
        Ok(())
    }

    /// `DATA`, the text, and the final reply; anything but 354 then 250 is
    /// an error (after `RSET`).
    pub async fn data(&mut self, text: &str) -> Result<(), SmtpError> {
        let r = self.command("DATA").await?;
        if r.code != 354 {
            self.rset().await;
            return Err(SmtpError::Response { code: r.code, text: r.text });
        }
        self.data_text(text).await
    }

    /// After a 354: the text, then the final reply.
    async fn data_text(&mut self, text: &str) -> Result<(), SmtpError> {
        self.conn.write_data(text).await?;
        let r = self.conn.read_reply().await?;
        if r.code != 250 {
            self.rset().await;
            return Err(SmtpError::Response { code: r.code, text: r.text });
        }
        Ok(())
    }

    /// `RSET`, errors ignored (smtplib's `_rset`).
    pub async fn rset(&mut self) {
        let _ = self.command("RSET").await;
    }

    /// `QUIT`, errors ignored.
    pub async fn quit(mut self) {
        let _ = self.command("QUIT").await;
    }
}

/// The decisions a server session delegates.
#[allow(async_fn_in_trait)]
pub trait SmtpHandler {
    /// A new transaction starts (`HELO`, `MAIL FROM`, `RSET`): forget recipients.
    fn reset(&mut self) {}
    /// The reply to `RCPT TO:<rcpt>`.
    async fn rcpt(&mut self, rcpt: &str) -> Reply;
    /// The reply after the final `.` of `DATA`, for the accepted recipients.
    async fn data(&mut self, from: &str, rcpts: &[String], text: &str) -> Reply;
}

/// Server limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// `message_size_limit` in bytes; larger data gets 552.
    pub message_bytes_max: usize,
    /// Commands per session before the server hangs up (bounds a looping client).
    pub commands_max: u32,
}

/// Runs one server session until `QUIT`, EOF or an error. Replies are held
/// until the session must read again, and the last ones are written before
/// it returns.
pub async fn serve_session<O: Os, H: SmtpHandler>(
    conn: &mut SmtpConn<'_, O>,
    hostname: &str,
    limits: ServerLimits,
    handler: &mut H,
) -> io::Result<()> {
    let served = serve_commands(conn, hostname, limits, handler).await;
    let flushed = conn.flush().await;
    served.and(flushed)
}

async fn serve_commands<O: Os, H: SmtpHandler>(
    conn: &mut SmtpConn<'_, O>,
    hostname: &str,
    limits: ServerLimits,
    handler: &mut H,
) -> io::Result<()> {
    conn.reply(&Reply::new(220, format!("{hostname} ESMTP mmsim")));
    let mut from: Option<String> = None;
    let mut rcpts: Vec<String> = Vec::new();
    for _ in 0..limits.commands_max {
        let line = match conn.read_line(LINE_BYTES_MAX).await {
            Ok(Some(l)) => l,
            Ok(None) => return Ok(()),
            Err(e) if crate::os::errno(&e) == libc::EINVAL => {
                conn.reply(&Reply::new(500, "line too long"));
                continue;
            }
            Err(e) => return Err(e),
        };
        let upper = line.to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO ") || upper == "EHLO" {
            from = None;
            rcpts.clear();
            handler.reset();
            // Exim's EHLO reply (`smtp_setup_msg`): the greeting line, then
            // the extensions offered; of those only PIPELINING is modelled.
            conn.hold_line(&format!("250-{hostname} Hello {}", line.get(5..).unwrap_or("").trim()));
            Reply::new(250, "PIPELINING")
        } else if upper.starts_with("HELO ") || upper == "HELO" {
            from = None;
            rcpts.clear();
            handler.reset();
            Reply::new(250, hostname)
        } else if let Some(rest) = upper.strip_prefix("MAIL FROM:") {
            let _ = rest;
            from = Some(angle_address(&line["MAIL FROM:".len()..]));
            rcpts.clear();
            handler.reset();
            Reply::new(250, "OK")
        } else if upper.starts_with("RCPT TO:") {
            if from.is_none() {
                Reply::new(503, "sender not yet given")
            } else {
                let addr = angle_address(&line["RCPT TO:".len()..]);
                let r = handler.rcpt(&addr).await;
                if r.code == 250 || r.code == 251 {
                    rcpts.push(addr);
                }
                r
            }
        } else if upper == "DATA" {
            if rcpts.is_empty() {
                Reply::new(503, "valid RCPT command must precede DATA")
            } else {
                conn.reply(&Reply::new(354, "Enter message, ending with \".\" on a line by itself"));
                let mut text = String::new();
                let mut too_big = false;
                loop {
                    let Some(l) = conn.read_line(LINE_BYTES_MAX).await? else {
                        return Ok(());
                    };
                    if l == "." {
                        break;
                    }
                    let l = l.strip_prefix('.').unwrap_or(&l);
                    if text.len() + l.len() > limits.message_bytes_max {
                        too_big = true;
                    } else {
                        text.push_str(l);
                        text.push('\n');
                    }
                }
                let r = if too_big {
                    Reply::new(552, "Message size exceeds maximum permitted")
                } else {
                    handler.data(from.as_deref().unwrap_or(""), &rcpts, &text).await
                };
                from = None;
                rcpts.clear();
                r
            }
        } else if upper == "RSET" {
            from = None;
            rcpts.clear();
            handler.reset();
            Reply::new(250, "Reset OK")
        } else if upper == "NOOP" {
            Reply::new(250, "OK")
        } else if upper == "QUIT" {
            conn.reply(&Reply::new(221, format!("{hostname} closing connection")));
            return Ok(());
        } else {
            Reply::new(500, "unrecognized command")
        };
        conn.reply(&reply);
    }
    conn.reply(&Reply::new(421, "too many commands"));
    Ok(())
}

/// The address inside `<...>`, or the trimmed text.
fn angle_address(s: &str) -> String {
    let s = s.trim();
    match (s.find('<'), s.find('>')) {
        (Some(a), Some(b)) if a < b => s[a + 1..b].to_string(),
        _ => s.split_whitespace().next().unwrap_or("").to_string(),
    }
}

/// Splits `local@domain` (a missing domain is empty).
pub fn split_address(addr: &str) -> (&str, &str) {
    addr.rsplit_once('@').unwrap_or((addr, ""))
}
