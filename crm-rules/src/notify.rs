//! Notifiers: e-mail over SMTP (lettre) with minijinja templates, and a recording notifier for tests.
//!
//! The in-app inbox notifier lives in `crm_core::outbox::InboxNotifier` (it only needs the outbox store).

use crate::error::RulesError;
use async_trait::async_trait;
use crm_core::id::TenantId;
use crm_core::outbox::{Channel, DeliveryError, Notifier, OutboxMessage};
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;
use sha2::{Digest, Sha256};
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
/// Each message is rendered from its template (an error there is permanent, naming the template) or, without one,
/// sent as it was rendered when decided (a campaign's message: subject, text, `vars.html`; a marketing one gets its
/// unsubscribe link as a last line), addressed to the resolved recipient (an invalid address is permanent) and sent on a fresh connection under
/// [`SmtpConfig::timeout`]. A 5xx reply is permanent (naming the refused recipient); a 4xx reply, a refused or
/// dropped connection and a timeout are transient.
///
/// # Repeats
///
/// The dispatcher delivers *at least once*: a crash between handing an e-mail to the server and recording that it
/// was sent makes it send the e-mail again after the restart (and a 4xx reply after the server kept the message
/// does the same). Every send of one outbox message therefore carries the same `Message-ID`, derived from the
/// message's tenant and idempotency key ([`message_id`]), so mail servers and clients that drop repeats by
/// `Message-ID` show it once. The domain part is [`DEFAULT_MESSAGE_ID_DOMAIN`] unless
/// [`SmtpNotifier::with_message_id_domain`] sets the organisation's own.
#[derive(Debug, Clone)]
pub struct SmtpNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    templates: Arc<Templates>,
    timeout: Duration,
    message_id_domain: String,
    unsubscribe_url: Option<String>,
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
            message_id_domain: DEFAULT_MESSAGE_ID_DOMAIN.to_string(),
            unsubscribe_url: None,
        })
    }

    /// Uses `domain` (e.g. the organisation's mail domain, `mail.example.com`) as the right-hand side of every
    /// `Message-ID`. A domain is dot-separated labels of ASCII letters, digits and `-` (at most 63 characters each,
    /// 253 in all); anything else is refused, naming the domain. Changing the domain changes the `Message-ID` of
    /// messages sent after the change: keep it fixed while messages may still be resent.
    pub fn with_message_id_domain(mut self, domain: &str) -> Result<Self, RulesError> {
        check_domain(domain).map_err(|why| RulesError::Fixture {
            file: "smtp config".into(),
            message: format!("message-id domain `{domain}`: {why}"),
        })?;
        self.message_id_domain = domain.to_ascii_lowercase();
        Ok(self)
    }

    /// Where a marketing e-mail's unsubscribe link points: `base` followed by the message's token (the portal's
    /// `…/unsubscribe/` page, e.g. `https://portal.example.com/unsubscribe/`). Every marketing e-mail then gives its
    /// template `unsubscribe_url` and carries the `List-Unsubscribe` and `List-Unsubscribe-Post: List-Unsubscribe=
    /// One-Click` headers (RFC 8058), so mail clients offer the one-click unsubscribe too. Without it a marketing
    /// e-mail is not sent (a permanent delivery error): the law wants the link in every one. `base` must be an
    /// `https://` URL (`http://` only on loopback).
    pub fn with_unsubscribe_url(mut self, base: &str) -> Result<Self, RulesError> {
        let ok = base.starts_with("https://")
            || base.starts_with("http://127.0.0.1")
            || base.starts_with("http://localhost");
        if !ok
            || base
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '>')
        {
            return Err(RulesError::Fixture {
                file: "smtp config".into(),
                message: format!(
                    "unsubscribe url `{base}`: an https:// URL (http:// only on loopback)"
                ),
            });
        }
        self.unsubscribe_url = Some(base.to_string());
        Ok(self)
    }

    /// The unsubscribe link of a marketing e-mail (`None` for any other).
    fn unsubscribe_link(&self, m: &OutboxMessage) -> Result<Option<String>, DeliveryError> {
        if m.purpose.is_service() {
            return Ok(None);
        }
        let token = m
            .payload
            .vars
            .get(crm_core::consent::UNSUBSCRIBE_VAR)
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                DeliveryError::Permanent("a marketing e-mail without its unsubscribe token".into())
            })?;
        let base = self.unsubscribe_url.as_deref().ok_or_else(|| {
            DeliveryError::Permanent(
                "a marketing e-mail needs an unsubscribe link: set SmtpNotifier::with_unsubscribe_url".into(),
            )
        })?;
        Ok(Some(format!("{base}{token}")))
    }

    /// The `Message-ID` every send of `m` carries.
    pub fn message_id(&self, m: &OutboxMessage) -> String {
        message_id(m.tenant, &m.idempotency_key, &self.message_id_domain)
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
        let unsubscribe = self.unsubscribe_link(m)?;
        let mut vars = m.payload.vars.clone();
        if let (Some(url), Some(o)) = (&unsubscribe, vars.as_object_mut()) {
            o.insert("unsubscribe_url".into(), url.clone().into());
        }
        let rendered = match &m.payload.template {
            Some(t) => self
                .templates
                .render(t, &vars)
                .map_err(|e| DeliveryError::Permanent(e.to_string()))?,
            // Rendered when it was decided (a campaign's message): the subject and text as they are, the HTML
            // alternative from `vars.html`; a marketing one gets its unsubscribe link as a last line (the
            // template could not know the address).
            None => {
                let mut text = m.payload.body.clone();
                let mut html = m
                    .payload
                    .vars
                    .get("html")
                    .and_then(|v| v.as_str())
                    .map(str::to_string);
                if let Some(url) = &unsubscribe {
                    text = format!("{}\n\n--\nUnsubscribe: {url}\n", text.trim_end());
                    if let Some(h) = &mut html {
                        h.push_str(&format!(
                            "\n<p><a href=\"{}\">Unsubscribe</a></p>\n",
                            escape_html(url)
                        ));
                    }
                }
                Rendered {
                    subject: m.payload.subject.clone(),
                    text,
                    html,
                }
            }
        };
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(rendered.subject)
            .message_id(Some(self.message_id(m)));
        if let Some(url) = &unsubscribe {
            use lettre::message::header::{HeaderName, HeaderValue};
            builder = builder
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe"),
                    format!("<{url}>"),
                ))
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".to_string(),
                ));
        }
        // A meeting invitation carries its iCalendar object (`vars.ics`, `vars.method`): sent as iMIP, an inline
        // `text/calendar; method=…` alternative that calendar clients turn into an entry they can answer.
        let calendar = match m.payload.vars.get("ics").and_then(|v| v.as_str()) {
            Some(ics) => {
                let method = m
                    .payload
                    .vars
                    .get("method")
                    .and_then(|v| v.as_str())
                    .unwrap_or("REQUEST");
                let kind =
                    ContentType::parse(&format!("text/calendar; charset=utf-8; method={method}"))
                        .map_err(|e| {
                        DeliveryError::Permanent(format!("bad calendar method `{method}`: {e}"))
                    })?;
                Some(SinglePart::builder().header(kind).body(ics.to_string()))
            }
            None => None,
        };
        let files = attachments(&m.payload.vars)?;
        let built = match (rendered.html, calendar, files.is_empty()) {
            (None, None, true) => builder.header(ContentType::TEXT_PLAIN).body(rendered.text),
            (html, calendar, _) => {
                let mut parts = MultiPart::alternative().singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(rendered.text),
                );
                if let Some(html) = html {
                    parts = parts.singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(html),
                    );
                }
                if let Some(calendar) = calendar {
                    parts = parts.singlepart(calendar);
                }
                if files.is_empty() {
                    builder.multipart(parts)
                } else {
                    // The text and its alternatives first, then each file, in a `multipart/mixed`.
                    let mixed = MultiPart::mixed().multipart(parts);
                    builder.multipart(files.into_iter().fold(mixed, |m, f| m.singlepart(f)))
                }
            }
        };
        built.map_err(|e| DeliveryError::Permanent(format!("cannot build the e-mail: {e}")))
    }
}

/// `s` with the characters HTML gives a meaning escaped.
fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The files a message carries (`vars.attachments`, written by `crm_core::comms::attachment_var`), as e-mail parts.
fn attachments(vars: &serde_json::Value) -> Result<Vec<SinglePart>, DeliveryError> {
    let Some(list) = vars.get("attachments") else {
        return Ok(Vec::new());
    };
    let files: Vec<crm_core::comms::MailAttachment> = serde_json::from_value(list.clone())
        .map_err(|e| DeliveryError::Permanent(format!("bad attachments: {e}")))?;
    files
        .into_iter()
        .map(|f| {
            let kind = ContentType::parse(&f.media_type).map_err(|e| {
                DeliveryError::Permanent(format!("bad media type `{}`: {e}", f.media_type))
            })?;
            let bytes = f
                .bytes()
                .map_err(|e| DeliveryError::Permanent(e.to_string()))?;
            Ok(lettre::message::Attachment::new(f.name).body(bytes, kind))
        })
        .collect()
}

/// The right-hand side of a `Message-ID` when the host sets none: `.invalid` is reserved (RFC 2606), so it can
/// never collide with a real host's identifiers.
pub const DEFAULT_MESSAGE_ID_DOMAIN: &str = "crm.invalid";

/// The `Message-ID` of the outbox message with idempotency key `key` of `tenant`: `<HEX@DOMAIN>`, where `HEX` is
/// the SHA-256 of the tenant id and the key (64 lower-case hex digits).
///
/// Stable (the same message gives the same id in every process and release, so a repeat after a crash is
/// recognisable), unique (the outbox is unique per tenant and key, and both are hashed), valid under RFC 5322's
/// `msg-id` (`"<" dot-atom-text "@" dot-atom-text ">"` whatever characters the key holds), and opaque (the key
/// names events, rules and addresses that the recipient has no business reading). `domain` is not checked here;
/// [`SmtpNotifier::with_message_id_domain`] checks it.
///
/// ```
/// use crm_core::id::TenantId;
/// use crm_rules::notify::message_id;
/// let tenant: TenantId = "01890a5d-ac96-774b-bcce-b302099a8057".parse().unwrap();
/// let id = message_id(tenant, "event:0190/won/2/email:maria@customer.example", "crm.invalid");
/// assert_eq!(id, message_id(tenant, "event:0190/won/2/email:maria@customer.example", "crm.invalid"));
/// assert!(id.starts_with('<') && id.ends_with("@crm.invalid>") && id.len() == 1 + 64 + 1 + 11 + 1);
/// assert_ne!(id, message_id(TenantId::new(), "event:0190/won/2/email:maria@customer.example", "crm.invalid"));
/// ```
pub fn message_id(tenant: TenantId, key: &str, domain: &str) -> String {
    let mut h = Sha256::new();
    h.update(tenant.as_uuid().as_bytes());
    h.update(key.as_bytes());
    let digest = h.finalize();
    let mut hex = String::with_capacity(64);
    for b in digest.iter() {
        hex.push_str(&format!("{b:02x}"));
    }
    format!("<{hex}@{domain}>")
}

/// Why `domain` cannot be the right-hand side of a `Message-ID` (a host name: LDH labels), if it cannot.
fn check_domain(domain: &str) -> Result<(), String> {
    if domain.is_empty() || domain.len() > 253 {
        return Err("must have 1 to 253 characters".into());
    }
    for label in domain.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each dot-separated label must have 1 to 63 characters".into());
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!(
                "`{c}` is not allowed (ASCII letters, digits, `-` and `.` only)"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label cannot start or end with `-`".into());
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_stable_valid_and_distinct_per_tenant_and_key() {
        let t: TenantId = "01890a5d-ac96-774b-bcce-b302099a8057".parse().unwrap();
        // Keys hold `:`, `/`, `@`, spaces, quotes, non-ASCII, `..`: none of it reaches the id.
        let keys = [
            "event:01890a5d-ac96-774b-bcce-b302099a8057/won/2/email:maria@customer.example",
            "timer:lead_idle/x/2026-03-02/r/0/-",
            "a//b..c <\"Ștefan\"> \r\n",
            "",
        ];
        let mut seen = std::collections::BTreeSet::new();
        for k in keys {
            let id = message_id(t, k, DEFAULT_MESSAGE_ID_DOMAIN);
            assert_eq!(id, message_id(t, k, DEFAULT_MESSAGE_ID_DOMAIN), "stable");
            let inner = id.strip_prefix('<').unwrap().strip_suffix('>').unwrap();
            let (left, right) = inner.split_once('@').unwrap();
            assert_eq!(left.len(), 64);
            assert!(left
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
            assert!(check_domain(right).is_ok());
            assert!(seen.insert(id));
            assert!(seen.insert(message_id(TenantId::new(), k, DEFAULT_MESSAGE_ID_DOMAIN)));
        }
        // Pinned (checked with Python's hashlib): a release that changed the derivation would make mail resent
        // across the upgrade look new.
        assert_eq!(
            message_id(t, keys[0], "crm.invalid"),
            "<82352dbc33ce7d9627cf09390eb6358e7a8ef3d7371755c65eb3c1e5cf4fe31a@crm.invalid>"
        );
    }

    #[test]
    fn the_message_id_domain_is_checked() {
        let n = SmtpNotifier::new(
            &SmtpConfig {
                host: "127.0.0.1".into(),
                port: 25,
                from: "crm@tenant.example".into(),
                timeout: Duration::from_secs(1),
            },
            Arc::new(Templates::new()),
        )
        .unwrap();
        for bad in [
            "",
            "a..b",
            ".a",
            "a b",
            "-a.b",
            "a-.b",
            "tenant.example>",
            "ex@mple",
            "ștefan.ro",
        ] {
            let e = n.clone().with_message_id_domain(bad).unwrap_err();
            assert!(e.to_string().contains("message-id domain"), "{bad}: {e}");
        }
        let n = n.with_message_id_domain("Mail.Tenant-1.example").unwrap();
        let m = crm_core::outbox::OutboxMessage {
            id: crm_core::id::OutboxId::new(),
            tenant: TenantId::new(),
            idempotency_key: "k".into(),
            rule: "r".into(),
            channel: Channel::Email,
            recipient: crm_core::outbox::ResolvedRecipient {
                phone: None,
                user: None,
                name: None,
                email: Some("x@customer.example".into()),
            },
            payload: crm_core::outbox::Payload {
                subject: "s".into(),
                body: "b".into(),
                ..Default::default()
            },
            status: crm_core::outbox::OutboxStatus::Pending,
            attempts: 0,
            next_attempt_at: chrono::Utc::now(),
            last_error: None,
            created_at: chrono::Utc::now(),
            delivered_at: None,
            about: Default::default(),
            purpose: Default::default(),
        };
        assert!(n.message_id(&m).ends_with("@mail.tenant-1.example>"));
        let sent = String::from_utf8(n.build(&m).unwrap().formatted()).unwrap();
        assert!(
            sent.contains(&format!("Message-ID: {}\r\n", n.message_id(&m))),
            "{sent}"
        );
    }
}
