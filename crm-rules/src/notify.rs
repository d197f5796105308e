//! Notifiers: e-mail over SMTP (lettre) with minijinja templates, and a recording notifier for tests.
//!
//! The in-app inbox notifier lives in `crm_core::outbox::InboxNotifier` (it only needs the outbox store).

use crate::error::RulesError;
use async_trait::async_trait;
use crm_core::outbox::{Channel, DeliveryError, Notifier, OutboxMessage};
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------------- templates

/// A rendered e-mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rendered {
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body, when the template has one.
    pub html: Option<String>,
}

/// E-mail templates: for each name a subject, a text body and an optional HTML body, rendered by minijinja.
///
/// Undefined variables are errors (a typo in a template must not send "Dear ,"), HTML bodies are auto-escaped and
/// every rendering runs on a fuel budget, so an organisation's templates can be edited at run time safely.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    names: Vec<String>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    /// Fuel per rendering (instructions of the template machine).
    pub const FUEL: u64 = 50_000;

    /// No templates yet.
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(Self::FUEL));
        Self {
            env,
            names: Vec::new(),
        }
    }

    /// Adds (or replaces) template `name`; syntax errors name the template and line.
    pub fn add(
        &mut self,
        name: &str,
        subject: &str,
        text: &str,
        html: Option<&str>,
    ) -> Result<(), RulesError> {
        let err = |part: &str, e: minijinja::Error| RulesError::Template {
            template: format!("{name}.{part}"),
            message: e.to_string(),
        };
        self.env
            .add_template_owned(format!("{name}.subject"), subject.to_string())
            .map_err(|e| err("subject", e))?;
        self.env
            .add_template_owned(format!("{name}.txt"), text.to_string())
            .map_err(|e| err("txt", e))?;
        if let Some(h) = html {
            self.env
                .add_template_owned(format!("{name}.html"), h.to_string())
                .map_err(|e| err("html", e))?;
        }
        if !self.names.iter().any(|n| n == name) {
            self.names.push(name.to_string());
        }
        Ok(())
    }

    /// Loads `NAME.subject`, `NAME.txt` and optionally `NAME.html` for every `NAME.subject` file of `dir`.
    pub fn load_dir(dir: &Path) -> Result<Self, RulesError> {
        let mut t = Self::new();
        let mut names = Vec::new();
        for e in std::fs::read_dir(dir).map_err(|e| RulesError::io(dir, e))? {
            let p = e.map_err(|e| RulesError::io(dir, e))?.path();
            if p.extension().and_then(|x| x.to_str()) == Some("subject") {
                if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
                    names.push(stem.to_string());
                }
            }
        }
        names.sort();
        for n in names {
            let read = |ext: &str| std::fs::read_to_string(dir.join(format!("{n}.{ext}")));
            let subject = read("subject").map_err(|e| RulesError::io(dir.join(&n), e))?;
            let text = read("txt").map_err(|e| RulesError::io(dir.join(format!("{n}.txt")), e))?;
            let html = read("html").ok();
            t.add(&n, subject.trim_end(), &text, html.as_deref())?;
        }
        Ok(t)
    }

    /// The template names.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Renders template `name` with `vars`.
    pub fn render(&self, name: &str, vars: &serde_json::Value) -> Result<Rendered, RulesError> {
        if !self.names.iter().any(|n| n == name) {
            return Err(RulesError::Template {
                template: name.to_string(),
                message: format!("no such template; known: {}", self.names.join(", ")),
            });
        }
        let one = |part: &str| -> Result<String, RulesError> {
            let full = format!("{name}.{part}");
            let t = self
                .env
                .get_template(&full)
                .map_err(|e| RulesError::Template {
                    template: full.clone(),
                    message: e.to_string(),
                })?;
            t.render(vars).map_err(|e| RulesError::Template {
                template: full.clone(),
                message: e.to_string(),
            })
        };
        let html = if self.env.get_template(&format!("{name}.html")).is_ok() {
            Some(one("html")?)
        } else {
            None
        };
        Ok(Rendered {
            subject: one("subject")?.trim().to_string(),
            text: one("txt")?,
            html,
        })
    }
}

// ---------------------------------------------------------------------------------------------------- smtp

/// Where and as whom to send e-mail.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    /// Server host name or address.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// The sender (`CRM <crm@example.com>`).
    pub from: String,
    /// The bound on one whole send (connect, dialogue, data): lettre's own timeouts cover only parts of it.
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Sends e-mail messages of the outbox over SMTP.
///
/// Each message is rendered from its template (an error there is permanent, naming the template), addressed to
/// the resolved recipient (an invalid address is permanent) and sent on a fresh connection under
/// [`SmtpConfig::timeout`]. A 5xx reply is permanent (naming the refused recipient); a 4xx reply, a refused or
/// dropped connection and a timeout are transient. The message's `Message-ID` is derived from its idempotency key,
/// so receivers can discard a copy resent after a crash.
#[derive(Debug, Clone)]
pub struct SmtpNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    templates: Arc<Templates>,
    timeout: Duration,
}

impl SmtpNotifier {
    /// A notifier for plain SMTP (a local relay or a test server). For TLS, enable one of lettre's TLS features in
    /// the host, build the transport there and use [`SmtpNotifier::with_transport`].
    pub fn new(config: &SmtpConfig, templates: Arc<Templates>) -> Result<Self, RulesError> {
        let transport =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.as_str())
                .port(config.port)
                .timeout(Some(config.timeout))
                .build();
        Self::with_transport(transport, config, templates)
    }

    /// A notifier on a given transport.
    pub fn with_transport(
        transport: AsyncSmtpTransport<Tokio1Executor>,
        config: &SmtpConfig,
        templates: Arc<Templates>,
    ) -> Result<Self, RulesError> {
        let from: Mailbox = config.from.parse().map_err(|e| RulesError::Fixture {
            file: "smtp config".into(),
            message: format!("from `{}` is not a mailbox: {e}", config.from),
        })?;
        Ok(Self {
            transport,
            from,
            templates,
            timeout: config.timeout,
        })
    }

    /// Builds the e-mail for `m` (what [`Notifier::deliver`] sends).
    pub fn build(&self, m: &OutboxMessage) -> Result<Message, DeliveryError> {
        let address = m.recipient.email.as_deref().ok_or_else(|| {
            DeliveryError::Permanent(format!(
                "recipient {} has no e-mail address",
                m.recipient.label()
            ))
        })?;
        let to: Mailbox = match &m.recipient.name {
            Some(n) => format!("{n} <{address}>").parse(),
            None => address.parse(),
        }
        .or_else(|_| address.parse())
        .map_err(|e| {
            DeliveryError::Permanent(format!("`{address}` is not a valid address: {e}"))
        })?;
        let rendered = match &m.payload.template {
            Some(t) => self
                .templates
                .render(t, &m.payload.vars)
                .map_err(|e| DeliveryError::Permanent(e.to_string()))?,
            None => Rendered {
                subject: m.payload.subject.clone(),
                text: m.payload.body.clone(),
                html: None,
            },
        };
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(rendered.subject)
            .message_id(Some(message_id(&m.idempotency_key)));
        let built = match rendered.html {
            Some(html) => builder.multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(rendered.text),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(html),
                    ),
            ),
            None => builder.header(ContentType::TEXT_PLAIN).body(rendered.text),
        };
        built.map_err(|e| DeliveryError::Permanent(format!("cannot build the e-mail: {e}")))
    }
}

/// A `Message-ID` derived from an idempotency key (stable across retries).
pub fn message_id(key: &str) -> String {
    let local: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '.'
            }
        })
        .collect();
    format!("<{}@crm.invalid>", local.trim_matches('.'))
}

#[async_trait]
impl Notifier for SmtpNotifier {
    async fn deliver(&self, m: &OutboxMessage) -> Result<(), DeliveryError> {
        if m.channel != Channel::Email {
            return Err(DeliveryError::Permanent(format!(
                "the SMTP notifier sends e-mail, not `{}` messages",
                m.channel.as_str()
            )));
        }
        let email = self.build(m)?;
        let to = m.recipient.email.clone().unwrap_or_default();
        match tokio::time::timeout(self.timeout, self.transport.send(email)).await {
            Err(_) => Err(DeliveryError::Transient(format!(
                "sending to {to} took longer than {:?}",
                self.timeout
            ))),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if e.is_permanent() => Err(DeliveryError::Permanent(format!(
                "the server refused recipient {to}: {e}"
            ))),
            Ok(Err(e)) => Err(DeliveryError::Transient(format!("sending to {to}: {e}"))),
        }
    }
}

// ---------------------------------------------------------------------------------------------------- recording

/// Records every delivery in memory; can be told to fail the next deliveries. For tests.
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    delivered: Mutex<Vec<OutboxMessage>>,
    failures: Mutex<VecDeque<DeliveryError>>,
}

impl RecordingNotifier {
    /// A notifier that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next delivery fails with `e` (queued: call several times for several failures).
    pub fn fail_next(&self, e: DeliveryError) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(e);
    }

    /// Every message delivered, in order (a redelivery appears twice).
    pub fn delivered(&self) -> Vec<OutboxMessage> {
        self.delivered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Deliveries per idempotency key.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for m in self.delivered() {
            *out.entry(m.idempotency_key).or_insert(0) += 1;
        }
        out
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    async fn deliver(&self, m: &OutboxMessage) -> Result<(), DeliveryError> {
        if let Some(e) = self
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front()
        {
            return Err(e);
        }
        self.delivered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(m.clone());
        Ok(())
    }
}
