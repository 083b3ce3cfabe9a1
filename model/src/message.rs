//! An RFC 2822 message as the model handles it: ordered headers and a body.
//!
//! Models what Mailman's `email.Message` objects are used for in the queue
//! and delivery paths: header lookup and replacement (CookHeaders, Subject
//! prefixes), the `Message-Id` that lets a ledger follow one post through
//! every queue, and a text form for SMTP and for `_plaintext` queue entries.
//! Leaves out MIME structure, encodings and folding beyond continuation lines.

use serde::{Deserialize, Serialize};

/// Raised when text cannot be read as a message (Mailman's `MessageParseError`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("message parse error: {0}")]
pub struct MessageParseError(pub String);

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Headers in order, names as written.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Message {
    /// Parses text in the form the model's peers send: header lines, a blank
    /// line, then the body. A leading Unix `From ` line is dropped. Text whose
    /// first line is neither a header nor a continuation is a parse error, the
    /// model's stand-in for what makes Python's parser give up.
    pub fn parse(text: &str) -> Result<Message, MessageParseError> {
        let text = text.replace("\r\n", "\n");
        let (head, body) = match text.split_once("\n\n") {
            Some((h, b)) => (h.to_string(), b.to_string()),
            None => (text.clone(), String::new()),
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        for (i, line) in head.lines().enumerate() {
            if i == 0 && line.starts_with("From ") {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                match headers.last_mut() {
                    Some((_, v)) => {
                        v.push(' ');
                        v.push_str(line.trim());
                    }
                    None => return Err(MessageParseError(format!("continuation without header: {line:?}"))),
                }
                continue;
            }
            match line.split_once(':') {
                Some((name, value)) if !name.is_empty() && !name.contains(' ') => {
                    headers.push((name.to_string(), value.trim().to_string()));
                }
                _ => return Err(MessageParseError(format!("not a header line: {line:?}"))),
            }
        }
        Ok(Message { headers, body })
    }

    /// The text form, with `\n` line ends.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (name, value) in &self.headers {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.body);
        out
    }

    /// The first header called `name` (case-insensitive), as `msg[name]`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Replaces every header called `name` by one with `value`, in the place of
    /// the first (or at the end), as `del msg[name]; msg[name] = value` would
    /// except that it keeps the position.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.headers.iter().position(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some(i) => {
                self.headers[i].1 = value.to_string();
                let mut k = 0;
                self.headers.retain(|(n, _)| {
                    let keep = k <= i || !n.eq_ignore_ascii_case(name);
                    k += 1;
                    keep
                });
            }
            None => self.headers.push((name.to_string(), value.to_string())),
        }
    }

    /// The message's ledger id: the `Message-Id` header without angle
    /// brackets, or the empty string when there is none.
    pub fn message_id(&self) -> String {
        message_id_of(self.get("Message-Id").unwrap_or(""))
    }
}

/// Normalises a `Message-Id` value: trims it and drops the angle brackets.
pub fn message_id_of(value: &str) -> String {
    value.trim().trim_start_matches('<').trim_end_matches('>').to_string()
}

/// Finds the `Message-Id` in raw text without a full parse; the MTA uses it to
/// label events for messages it has not parsed.
pub fn message_id_in_text(text: &str) -> String {
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("Message-Id") {
                return message_id_of(value);
            }
        }
    }
    String::new()
}
