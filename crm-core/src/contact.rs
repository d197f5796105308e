//! The contacts a user has with a customer, as the activity log keeps them beside the data changes: a **call**
//! (direction, result, duration, notes) logged by the user who made or took it, and an **e-mail** logged once it is
//! delivered (by the dispatcher, for every e-mail about a lead, partner or request that went to someone outside the
//! tenant: sent by a user from a record or by a rule; an e-mail to a colleague is internal). Meetings, quotations
//! and attachments log their own events.
//!
//! A [`Call`] is a value checked on construction; it lives only in its event (no table of its own), so the lead's
//! and partner's timelines are the call log.

use crate::error::{Error, Result};
use crate::time::Timestamp;
use crate::validate;
use serde::{Deserialize, Serialize};

/// The longest call that can be logged: one day.
pub const MAX_CALL_SECONDS: u32 = 24 * 60 * 60;

/// Who called whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallDirection {
    /// The customer called us.
    Inbound,
    /// We called the customer.
    Outbound,
}

/// How a call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallResult {
    /// Someone answered and the parties talked.
    Connected,
    /// Nobody answered.
    NoAnswer,
    /// The line was busy.
    Busy,
    /// A message was left.
    Voicemail,
    /// The number did not belong to the customer.
    WrongNumber,
}

impl CallResult {
    /// The words a timeline shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::NoAnswer => "no answer",
            Self::Busy => "busy",
            Self::Voicemail => "voicemail",
            Self::WrongNumber => "wrong number",
        }
    }
}

/// A call as the log keeps it. Build it with [`Call::new`], which checks every field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// Who called whom.
    pub direction: CallDirection,
    /// How it went.
    pub result: CallResult,
    /// When it started.
    pub started_at: Timestamp,
    /// How long the parties talked, in seconds (0 when nobody answered).
    pub duration_seconds: u32,
    /// Whom the user spoke to (a contact's name or number), when given.
    pub with: Option<String>,
    /// What was said.
    pub notes: String,
}

impl Call {
    /// A call that started at `started_at` (not after `now`) and lasted `duration_seconds`.
    ///
    /// # Examples
    ///
    /// ```
    /// use crm_core::contact::{Call, CallDirection, CallResult};
    /// let now = chrono::Utc::now();
    /// let started = now - chrono::Duration::minutes(10);
    /// let call = Call::new(CallDirection::Outbound, CallResult::Connected, started, 240, Some("Ana Pop"), "Wants a demo", now)?;
    /// assert_eq!(call.duration_seconds, 240);
    /// let err = Call::new(CallDirection::Outbound, CallResult::Busy, started, 30, None, "", now).unwrap_err();
    /// assert_eq!(err.field(), Some("duration_seconds"));
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `started_at` (after `now`), `duration_seconds` (over [`MAX_CALL_SECONDS`], or not 0
    /// for a call nobody talked on: no answer, busy, wrong number), `with` (over 200 characters or control
    /// characters) or `notes` (over 20 000 characters or control characters).
    pub fn new(
        direction: CallDirection,
        result: CallResult,
        started_at: Timestamp,
        duration_seconds: u32,
        with: Option<&str>,
        notes: &str,
        now: Timestamp,
    ) -> Result<Self> {
        if started_at > now {
            return Err(Error::invalid(
                "started_at",
                format!("{started_at} is in the future (now is {now})"),
            ));
        }
        if duration_seconds > MAX_CALL_SECONDS {
            return Err(Error::invalid(
                "duration_seconds",
                format!("{duration_seconds} s is longer than a day ({MAX_CALL_SECONDS} s)"),
            ));
        }
        let talked = matches!(result, CallResult::Connected | CallResult::Voicemail);
        if !talked && duration_seconds != 0 {
            return Err(Error::invalid(
                "duration_seconds",
                format!(
                    "a call with result `{}` lasted no time (got {duration_seconds} s)",
                    result.as_str()
                ),
            ));
        }
        Ok(Self {
            direction,
            result,
            started_at,
            duration_seconds,
            with: validate::optional("with", with, 200)?,
            notes: validate::bounded("notes", notes, validate::MAX_TEXT, false)?,
        })
    }

    /// The line a timeline shows: "outbound call, connected, 4 min: Wants a demo".
    pub fn summary(&self) -> String {
        let dir = match self.direction {
            CallDirection::Inbound => "inbound",
            CallDirection::Outbound => "outbound",
        };
        let mut s = format!("{dir} call, {}", self.result.as_str());
        if self.duration_seconds > 0 {
            let m = self.duration_seconds / 60;
            let secs = self.duration_seconds % 60;
            s.push_str(&if m > 0 {
                format!(", {m} min {secs} s")
            } else {
                format!(", {secs} s")
            });
        }
        if let Some(w) = &self.with {
            s.push_str(&format!(" with {w}"));
        }
        if !self.notes.is_empty() {
            let excerpt: String = self.notes.chars().take(140).collect();
            s.push_str(&format!(": {excerpt}"));
        }
        s
    }
}

/// The var of a user's e-mail naming its sender: the dispatcher logs its delivery as theirs.
pub const SENDER_VAR: &str = "sent_by";

/// The most files one e-mail carries.
pub const MAX_MAIL_FILES: usize = 20;

/// The most bytes the files of one e-mail carry together (they ride in the outbox row): 10 MiB.
pub const MAX_MAIL_BYTES: usize = 10 * 1024 * 1024;

/// A file a user's e-mail carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailFile {
    /// The name the recipient sees.
    pub name: String,
    /// Its media type (`application/pdf`).
    pub media_type: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

impl MailFile {
    /// A file.
    pub fn new(name: impl Into<String>, media_type: impl Into<String>, bytes: Vec<u8>) -> Self {
        Self {
            name: name.into(),
            media_type: media_type.into(),
            bytes,
        }
    }
}

/// An e-mail a user sends from a lead, partner or request through a template (see
/// [`CrmService::send_email`](crate::service::CrmService::send_email)).
#[derive(Debug, Clone, PartialEq)]
pub struct UserEmail {
    /// The address.
    pub to_email: String,
    /// The recipient's name.
    pub to_name: Option<String>,
    /// The template's name (the host's template set renders it at delivery).
    pub template: String,
    /// The template's variables beside the record's (a JSON object).
    pub vars: serde_json::Value,
    /// The files it carries.
    pub attachments: Vec<MailFile>,
}

impl UserEmail {
    /// An e-mail to `to_email` rendered from `template`, without variables or files.
    pub fn new(to_email: impl Into<String>, template: impl Into<String>) -> Self {
        Self {
            to_email: to_email.into(),
            to_name: None,
            template: template.into(),
            vars: serde_json::json!({}),
            attachments: Vec::new(),
        }
    }

    /// With the recipient's name.
    pub fn to_name(mut self, name: impl Into<String>) -> Self {
        self.to_name = Some(name.into());
        self
    }

    /// With the template variable `name` set to `value`.
    pub fn var(mut self, name: &str, value: impl Serialize) -> Self {
        if let serde_json::Value::Object(o) = &mut self.vars {
            o.insert(
                name.to_string(),
                serde_json::to_value(value).unwrap_or_default(),
            );
        }
        self
    }

    /// With a file attached.
    pub fn attach(mut self, file: MailFile) -> Self {
        self.attachments.push(file);
        self
    }

    /// The e-mail with its texts trimmed, if every field holds.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `to_email` (not an address), `to_name` (over 200 characters or control characters),
    /// `template` (empty, over 200 characters, or not a name of letters, digits, `_`, `-` and `.`), `vars` (not
    /// an object, or naming `lead`, `partner`, `request` or `attachments`, which the engine sets) or
    /// `attachments` (more than [`MAX_MAIL_FILES`], over [`MAX_MAIL_BYTES`] together, an empty file, or a file
    /// without a name or media type).
    pub fn check(self) -> Result<Self> {
        let to_email = validate::email("to_email", &self.to_email)?;
        let to_name = validate::optional("to_name", self.to_name.as_deref(), validate::MAX_NAME)?;
        let template = validate::name("template", &self.template)?;
        if !template
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(Error::invalid(
                "template",
                format!("`{template}` is not a template name (letters, digits, `_`, `-`, `.`)"),
            ));
        }
        let serde_json::Value::Object(given) = &self.vars else {
            return Err(Error::invalid("vars", "must be a JSON object"));
        };
        if let Some(k) = given.keys().find(|k| {
            ["lead", "partner", "request", "attachments", SENDER_VAR].contains(&k.as_str())
        }) {
            return Err(Error::invalid(
                "vars",
                format!("`{k}` is set by the engine from the record"),
            ));
        }
        if self.attachments.len() > MAX_MAIL_FILES {
            return Err(Error::invalid(
                "attachments",
                format!("{} files; at most {MAX_MAIL_FILES}", self.attachments.len()),
            ));
        }
        let total: usize = self.attachments.iter().map(|f| f.bytes.len()).sum();
        if total > MAX_MAIL_BYTES {
            return Err(Error::invalid(
                "attachments",
                format!("{total} bytes together; at most {MAX_MAIL_BYTES}"),
            ));
        }
        for f in &self.attachments {
            validate::name("attachments", &f.name)?;
            validate::name("attachments", &f.media_type)?;
            if f.bytes.is_empty() {
                return Err(Error::invalid(
                    "attachments",
                    format!("`{}` is empty", f.name),
                ));
            }
        }
        Ok(Self {
            to_email,
            to_name,
            template,
            ..self
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(min: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap() + chrono::Duration::minutes(min)
    }

    #[test]
    fn checks_each_field() {
        let now = at(0);
        let ok = Call::new(
            CallDirection::Inbound,
            CallResult::Connected,
            at(-5),
            125,
            Some(" Ana "),
            "Asked for prices",
            now,
        )
        .unwrap();
        assert_eq!(ok.with.as_deref(), Some("Ana"));
        assert_eq!(
            ok.summary(),
            "inbound call, connected, 2 min 5 s with Ana: Asked for prices"
        );
        let err = |r: Result<Call>| r.unwrap_err().field().map(str::to_string);
        let call = |result, started, secs, with: Option<&str>, notes: &str| {
            Call::new(
                CallDirection::Outbound,
                result,
                started,
                secs,
                with,
                notes,
                now,
            )
        };
        assert_eq!(
            err(call(CallResult::Connected, at(1), 10, None, "")).as_deref(),
            Some("started_at")
        );
        assert_eq!(
            err(call(
                CallResult::Connected,
                at(-1),
                MAX_CALL_SECONDS + 1,
                None,
                ""
            ))
            .as_deref(),
            Some("duration_seconds")
        );
        assert_eq!(
            err(call(CallResult::NoAnswer, at(-1), 1, None, "")).as_deref(),
            Some("duration_seconds")
        );
        assert_eq!(
            err(call(CallResult::Connected, at(-1), 1, Some("a\u{7}b"), "")).as_deref(),
            Some("with")
        );
        let long = "x".repeat(validate::MAX_TEXT + 1);
        assert_eq!(
            err(call(CallResult::Connected, at(-1), 1, None, &long)).as_deref(),
            Some("notes")
        );
        // The calendar's ends do not panic.
        let end = Timestamp::MAX_UTC;
        assert!(call(CallResult::Busy, end, 0, None, "").is_err());
        assert!(call(CallResult::Busy, Timestamp::MIN_UTC, 0, None, "").is_ok());
        assert_eq!(
            call(CallResult::Busy, at(-1), 0, None, "")
                .unwrap()
                .summary(),
            "outbound call, busy"
        );
    }

    #[test]
    fn user_email_checks_each_field() {
        let ok = UserEmail::new(" maria@acme.ro ", "follow_up")
            .to_name(" Maria ")
            .var("offer", 10)
            .attach(MailFile::new("a.pdf", "application/pdf", vec![1]))
            .check()
            .unwrap();
        assert_eq!(ok.to_email, "maria@acme.ro");
        assert_eq!(ok.to_name.as_deref(), Some("Maria"));
        let field = |m: UserEmail| m.check().unwrap_err().field().map(str::to_string);
        let base = || UserEmail::new("maria@acme.ro", "follow_up");
        assert_eq!(
            field(UserEmail::new("maria", "t")).as_deref(),
            Some("to_email")
        );
        assert_eq!(field(base().to_name("a\u{1}")).as_deref(), Some("to_name"));
        assert_eq!(
            field(UserEmail::new("m@a.ro", " ")).as_deref(),
            Some("template")
        );
        assert_eq!(
            field(UserEmail::new("m@a.ro", "../x")).as_deref(),
            Some("template")
        );
        assert_eq!(field(base().var("lead", 1)).as_deref(), Some("vars"));
        let mut not_object = base();
        not_object.vars = serde_json::json!([1]);
        assert_eq!(field(not_object).as_deref(), Some("vars"));
        let empty = MailFile::new("a.pdf", "application/pdf", Vec::new());
        assert_eq!(field(base().attach(empty)).as_deref(), Some("attachments"));
        let big = MailFile::new(
            "a.bin",
            "application/octet-stream",
            vec![0; MAX_MAIL_BYTES + 1],
        );
        assert_eq!(field(base().attach(big)).as_deref(), Some("attachments"));
        let many = (0..=MAX_MAIL_FILES).fold(base(), |m, _| {
            m.attach(MailFile::new("a.txt", "text/plain", vec![b'a']))
        });
        assert_eq!(field(many).as_deref(), Some("attachments"));
        let unnamed = MailFile::new(" ", "text/plain", vec![b'a']);
        assert_eq!(
            field(base().attach(unnamed)).as_deref(),
            Some("attachments")
        );
    }
}
