//! The outbox message (what the rules decided, addressed to one person by one channel), the retry policy and the
//! [`Notifier`] port that delivers it.

use super::*;

/// How a message reaches its recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The person's in-app inbox.
    InApp,
    /// E-mail, rendered from a template.
    Email,
    /// A task for the host to carry out (open a request, reassign, tag, follow up).
    Task,
    /// A text message (SMS) to the recipient's phone, delivered by the host's SMS notifier (route it with
    /// `crm_delivery::ChannelRouter`).
    Sms,
}

impl Channel {
    /// The channel's name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::InApp => "in_app",
            Self::Email => "email",
            Self::Task => "task",
            Self::Sms => "sms",
        }
    }

    /// The inverse of [`Channel::as_str`].
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "in_app" => Self::InApp,
            "email" => Self::Email,
            "task" => Self::Task,
            "sms" => Self::Sms,
            other => {
                return Err(Error::invalid(
                    "channel",
                    format!("unknown channel `{other}`"),
                ))
            }
        })
    }
}

/// Where a message goes, resolved through the directory when it was decided.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResolvedRecipient {
    /// The user, when the recipient is one.
    pub user: Option<UserId>,
    /// Display name.
    pub name: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// Phone number (text messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

impl ResolvedRecipient {
    /// A short label for messages: the name, else the e-mail, else the user id.
    pub fn label(&self) -> String {
        self.name
            .clone()
            .or_else(|| self.email.clone())
            .or_else(|| self.phone.clone())
            .or_else(|| self.user.map(|u| u.to_string()))
            .unwrap_or_else(|| "nobody".to_string())
    }

    /// The part of an idempotency key naming this recipient (user id, else e-mail).
    pub fn key(&self) -> String {
        match (&self.user, &self.email, &self.phone) {
            (Some(u), _, _) => u.to_string(),
            (None, Some(e), _) => e.to_lowercase(),
            (None, None, Some(p)) => p
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '+')
                .collect(),
            (None, None, None) => "-".to_string(),
        }
    }
}

/// What a message says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// Subject line (in-app), or the action's name (task); empty for templated e-mail.
    pub subject: String,
    /// Text (in-app).
    pub body: String,
    /// The e-mail template's name.
    pub template: Option<String>,
    /// The template's variables, or the task's record ids.
    pub vars: serde_json::Value,
    /// The action to carry out (task channel).
    pub action: Option<Action>,
}

/// A file an e-mail carries (a quotation's PDF): its name, media type and bytes, kept base64-encoded in the
/// message's `vars.attachments`, so the outbox row holds everything its delivery needs. Build the value with
/// [`attachment_var`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailAttachment {
    /// The file name the recipient sees.
    pub name: String,
    /// The media type (`application/pdf`).
    pub media_type: String,
    /// The bytes, base64 (standard alphabet, padded).
    pub base64: String,
}

impl MailAttachment {
    /// The file's bytes.
    ///
    /// # Errors
    /// [`Error::Invalid`] on `attachments` when the stored text is not base64.
    pub fn bytes(&self) -> Result<Vec<u8>> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(&self.base64)
            .map_err(|e| {
                Error::invalid("attachments", format!("`{}` is not base64: {e}", self.name))
            })
    }
}

/// The `vars.attachments` value of an e-mail carrying `files` (name, media type, bytes).
///
/// ```
/// use crm_core::comms::{attachment_var, MailAttachment};
/// let v = attachment_var(&[("offer.pdf", "application/pdf", b"%PDF-1.7".as_slice())]);
/// let files: Vec<MailAttachment> = serde_json::from_value(v).unwrap();
/// assert_eq!(files[0].bytes().unwrap(), b"%PDF-1.7");
/// ```
pub fn attachment_var(files: &[(&str, &str, &[u8])]) -> serde_json::Value {
    use base64::Engine as _;
    let files: Vec<MailAttachment> = files
        .iter()
        .map(|(name, media_type, bytes)| MailAttachment {
            name: (*name).to_string(),
            media_type: (*media_type).to_string(),
            base64: base64::engine::general_purpose::STANDARD.encode(bytes),
        })
        .collect();
    serde_json::to_value(files).unwrap_or_default()
}

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    /// Waiting for (another) delivery attempt.
    Pending,
    /// Delivered.
    Delivered,
    /// Given up after too many attempts or a permanent error; an operator may retry it.
    Dead,
}

impl OutboxStatus {
    /// The status as a word.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    /// The inverse of [`OutboxStatus::as_str`].
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "pending" => Self::Pending,
            "delivered" => Self::Delivered,
            "dead" => Self::Dead,
            other => {
                return Err(Error::invalid(
                    "status",
                    format!("unknown outbox status `{other}`"),
                ))
            }
        })
    }
}

/// One decided message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMessage {
    /// The message's id.
    pub id: OutboxId,
    /// The tenant.
    pub tenant: TenantId,
    /// Unique per tenant: `<trigger>/<rule>/<action index>/<recipient>`. A second enqueue with the same key is
    /// ignored, and notifiers deduplicate on it.
    pub idempotency_key: String,
    /// The rule that decided it.
    pub rule: String,
    /// The channel.
    pub channel: Channel,
    /// The recipient.
    pub recipient: ResolvedRecipient,
    /// The content.
    pub payload: Payload,
    /// The status.
    pub status: OutboxStatus,
    /// Delivery attempts so far (a claim counts as an attempt).
    pub attempts: u32,
    /// When it may next be claimed (while claimed: when the lease ends).
    pub next_attempt_at: Timestamp,
    /// The last delivery error.
    pub last_error: Option<String>,
    /// When it was decided.
    pub created_at: Timestamp,
    /// When it was delivered.
    pub delivered_at: Option<Timestamp>,
    /// The records it is about (the lead, partner or request of the event or timer that decided it, or of the
    /// user's e-mail): once an e-mail about one is delivered, the dispatcher logs it on their timelines
    /// ([`EventKind::EmailSent`](crate::event::EventKind::EmailSent)). Empty when it is about nothing in
    /// particular.
    #[serde(default, skip_serializing_if = "about_nothing")]
    pub about: Subject,
    /// Why it is sent: a marketing message is only enqueued with the recipient's consent
    /// ([`crate::service::consent_gate`]).
    #[serde(default, skip_serializing_if = "crate::consent::Purpose::is_service")]
    pub purpose: crate::consent::Purpose,
}

/// Whether a message is about no record.
fn about_nothing(s: &Subject) -> bool {
    *s == Subject::default()
}

impl OutboxMessage {
    /// A message decided at `at`: pending, due at once, never attempted.
    pub fn pending(
        tenant: TenantId,
        idempotency_key: impl Into<String>,
        rule: impl Into<String>,
        channel: Channel,
        recipient: ResolvedRecipient,
        payload: Payload,
        at: Timestamp,
    ) -> Self {
        Self {
            id: OutboxId::new(),
            tenant,
            idempotency_key: idempotency_key.into(),
            rule: rule.into(),
            channel,
            recipient,
            payload,
            status: OutboxStatus::Pending,
            attempts: 0,
            next_attempt_at: at,
            last_error: None,
            created_at: at,
            delivered_at: None,
            about: Subject::default(),
            purpose: crate::consent::Purpose::Service,
        }
    }

    /// The same message, sent for `purpose`.
    pub fn for_purpose(mut self, purpose: crate::consent::Purpose) -> Self {
        self.purpose = purpose;
        self
    }

    /// The same message, about `subject`'s records.
    pub fn about(mut self, subject: Subject) -> Self {
        self.about = subject;
        self
    }

    /// The timeline entry of this e-mail once delivered at `at`, when it went to someone outside the tenant (a
    /// customer's contact, an address; an e-mail to one of the tenant's users is internal, not a contact with the
    /// customer) and is about a record:
    /// [`EventKind::EmailSent`](crate::event::EventKind::EmailSent) with the message's own id as the event's (so
    /// logging it twice writes it once: the second insert is [`Error::AlreadyExists`](crate::Error::AlreadyExists)),
    /// the sender as actor (the user named by [`SENDER_VAR`](crate::contact::SENDER_VAR), else the rule). `None`
    /// for a message that is not an e-mail, goes to a user, or is about no record.
    pub fn delivery_event(&self, at: Timestamp) -> Option<crate::event::DomainEvent> {
        use crate::actor::{Actor, Context, Source};
        if self.channel != Channel::Email
            || self.recipient.user.is_some()
            || about_nothing(&self.about)
        {
            return None;
        }
        let sender = self
            .payload
            .vars
            .get(crate::contact::SENDER_VAR)
            .and_then(|v| serde_json::from_value::<UserId>(v.clone()).ok());
        let (actor, source, by) = match sender {
            Some(id) => (Actor::User { id }, Source::Api, "user".to_string()),
            None => (
                Actor::Rule {
                    name: self.rule.clone(),
                },
                Source::Rules,
                self.rule.clone(),
            ),
        };
        let ctx = Context {
            tenant: self.tenant,
            actor,
            source,
        };
        let kind = crate::event::EventKind::EmailSent {
            message: self.id,
            to: self.recipient.email.clone().unwrap_or_default(),
            template: self.payload.template.clone(),
            by,
        };
        let mut e = crate::event::DomainEvent::new(&ctx, at, self.about, kind);
        e.id = crate::id::EventId::from_uuid(*self.id.as_uuid());
        Some(e)
    }
}

/// A notification in a person's in-app inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxItem {
    /// The item's id.
    pub id: InboxItemId,
    /// The tenant.
    pub tenant: TenantId,
    /// Whose inbox.
    pub user: UserId,
    /// The outbox message it came from (one item per message).
    pub message: OutboxId,
    /// The rule that decided it.
    pub rule: String,
    /// Subject line.
    pub subject: String,
    /// Text.
    pub body: String,
    /// When it arrived.
    pub created_at: Timestamp,
    /// When it was read; `None` while unread.
    pub read_at: Option<Timestamp>,
}

impl InboxItem {
    /// The inbox item an in-app message becomes; fails when the message has no user.
    pub fn from_message(m: &OutboxMessage, at: Timestamp) -> Result<Self> {
        let user = m.recipient.user.ok_or_else(|| {
            Error::invalid("recipient", "an in-app message needs a user as recipient")
        })?;
        Ok(Self {
            id: InboxItemId::new(),
            tenant: m.tenant,
            user,
            message: m.id,
            rule: m.rule.clone(),
            subject: m.payload.subject.clone(),
            body: m.payload.body.clone(),
            created_at: at,
            read_at: None,
        })
    }
}

// ---------------------------------------------------------------------------------------------------- policy

/// Retries with exponential back-off, then a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// After this many failed attempts the message is dead.
    pub max_attempts: u32,
    /// The wait after the first failure.
    pub base_seconds: i64,
    /// The longest wait.
    pub cap_seconds: i64,
    /// How long a claim lasts before another dispatcher may take the message (a crashed dispatcher's claims
    /// expire after this).
    pub lease_seconds: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_seconds: 30,
            cap_seconds: 3600,
            lease_seconds: 120,
        }
    }
}

impl RetryPolicy {
    /// The wait after the `attempts`-th failed attempt: base × 2^(attempts−1), capped.
    ///
    /// ```
    /// use crm_core::outbox::RetryPolicy;
    /// let p = RetryPolicy { max_attempts: 5, base_seconds: 10, cap_seconds: 60, lease_seconds: 30 };
    /// let waits: Vec<i64> = (1..=5).map(|a| p.backoff(a).num_seconds()).collect();
    /// assert_eq!(waits, [10, 20, 40, 60, 60]);
    /// ```
    pub fn backoff(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let secs = self.base_seconds.saturating_mul(1i64 << exp);
        Duration::seconds(secs.min(self.cap_seconds).max(0))
    }

    /// What to do after a failed attempt: retry at some time, or give up.
    pub fn after_failure(&self, attempts: u32, error: &DeliveryError, now: Timestamp) -> NextStep {
        match error {
            DeliveryError::Permanent(_) => NextStep::Dead,
            DeliveryError::Transient(_) if attempts >= self.max_attempts => NextStep::Dead,
            DeliveryError::Transient(_) => NextStep::RetryAt(now + self.backoff(attempts)),
        }
    }

    /// The lease as a duration.
    pub fn lease(&self) -> Duration {
        Duration::seconds(self.lease_seconds)
    }
}

/// The decision after a failed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Try again at this time.
    RetryAt(Timestamp),
    /// Give up: dead letter.
    Dead,
}

// ---------------------------------------------------------------------------------------------------- traits

/// Why a delivery failed, and so what the dispatcher does next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying later (server unreachable, timeout, 4xx SMTP reply): the dispatcher retries with back-off,
    /// and dead-letters after [`RetryPolicy::max_attempts`].
    #[error("temporary failure: {0}")]
    Transient(String),
    /// Retrying cannot help (recipient refused, template error, no address): the message goes straight to the dead
    /// letters, with this message, for an operator.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

/// Delivers one message. The one required method; everything else (retries, back-off, dead letters, leases) is the
/// dispatcher (`crm_delivery::Dispatcher`)'s.
///
/// # Behaviour
///
/// - `Ok(())`: the message was handed over; the dispatcher marks it delivered.
/// - `Err(DeliveryError::Transient)`: nothing was (reliably) handed over; it will be retried with back-off.
/// - `Err(DeliveryError::Permanent)`: it will never work; the message becomes a dead letter naming the error.
///
/// A message may be delivered again after a crash between hand-over and the dispatcher recording it: deduplicate on
/// [`OutboxMessage::idempotency_key`] where the medium allows it. An implementation bounds its own time (the
/// dispatcher waits for it).
#[async_trait]
pub trait Notifier: Send + Sync + Debug {
    /// Delivers `message`.
    async fn deliver(&self, message: &OutboxMessage) -> std::result::Result<(), DeliveryError>;
}
