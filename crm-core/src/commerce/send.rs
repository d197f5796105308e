//! Campaigns that send: a campaign's message (a minijinja template per part), checked strictly when it is set, and
//! rendered per target when the campaign is sent; each target's send state, moved by the delivery reports the host
//! passes on (delivered, opened, bounced, unsubscribed).
//!
//! # What a template may use
//!
//! The variables are fixed ([`FIELDS`]): the partner's, the chosen contact's and the campaign's fields. A template
//! naming anything else is refused when the message is set ([`CampaignMessage::check`], field `message.<part>`),
//! never when it is sent; a field a partner lacks (a contact without a role) renders as empty text, so
//! `{% if contact.role %}` works. Rendering runs in minijinja's strict mode on a fuel budget
//! ([`TEMPLATE_FUEL`]), and an HTML part is auto-escaped.
//!
//! # The target's state
//!
//! [`SendStatus`]: a target is `queued` when its message is in the outbox (or skipped: `no_address`,
//! `no_consent`, `failed`), then moves forward on reports: `delivered` → `opened` → `unsubscribed`; `bounced`
//! ends it. A report repeated (a webhook retried) changes nothing ([`TargetSend::report`]).

use super::campaign::{Campaign, Channel};
use crate::error::{Error, Result};
use crate::id::{ContactId, OutboxId};
pub use crate::kinds::SendStatus;
use crate::partner::{Contact, Partner};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// The variables a campaign template may use.
pub const FIELDS: &[&str] = &[
    "partner.name",
    "partner.host_ref",
    "partner.tax_id",
    "partner.website",
    "partner.group",
    "contact.name",
    "contact.role",
    "contact.email",
    "contact.phone",
    "campaign.name",
    "campaign.offer",
    "campaign.ends",
];

/// The objects [`FIELDS`] belong to.
const OBJECTS: &[&str] = &["partner", "contact", "campaign"];

/// The functions of minijinja's built-ins a template may call.
const FUNCTIONS: &[&str] = &["range", "dict", "namespace"];

/// The most characters of one template part.
pub const MAX_TEMPLATE: usize = 20_000;

/// The most characters of a rendered text message.
pub const MAX_SMS: usize = 1_600;

/// Fuel per rendering (instructions of the template machine): a loop in a template cannot stall a send.
pub const TEMPLATE_FUEL: u64 = 50_000;

/// A campaign's message: minijinja templates of its parts, and the offer they may quote.
///
/// ```
/// use crm_core::commerce::{send::CampaignMessage, Channel};
/// let ok = CampaignMessage::email("Our offer, {{ contact.name }}", "Dear {{ contact.name }}, {{ campaign.offer }}");
/// assert!(ok.check(Channel::Email).is_ok());
/// let typo = CampaignMessage::email("Hello", "Dear {{ contact.nam }}");
/// let err = typo.check(Channel::Email).unwrap_err();
/// assert_eq!(err.field(), Some("message.text"));
/// assert!(err.to_string().contains("contact.nam"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CampaignMessage {
    /// The subject line (e-mail; none for text messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The text.
    pub text: String,
    /// An HTML alternative (e-mail only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// The offer the templates quote as `campaign.offer` (plain text, at most 2,000 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<String>,
}

impl CampaignMessage {
    /// An e-mail message with a subject and a text.
    pub fn email(subject: &str, text: &str) -> Self {
        Self {
            subject: Some(subject.to_string()),
            text: text.to_string(),
            ..Self::default()
        }
    }

    /// A text message (SMS).
    pub fn sms(text: &str) -> Self {
        Self {
            text: text.to_string(),
            ..Self::default()
        }
    }

    /// The same message quoting `offer`.
    pub fn with_offer(mut self, offer: &str) -> Self {
        self.offer = Some(offer.to_string());
        self
    }

    /// Checks the message for a campaign of `channel`: each part's size and syntax, and that it names only
    /// [`FIELDS`]; then renders it once with every field filled, so an error a template would make at send time
    /// is made here.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `channel` (a campaign that sends nothing: telemarketing, event, other), on
    /// `message.subject` (missing for e-mail, given for a text message), `message.html` (given for a text message),
    /// `message.offer` (too long), and on the part (`message.subject`, `message.text`, `message.html`) that is
    /// empty, too long, does not parse, names a variable outside [`FIELDS`] or fails to render.
    pub fn check(&self, channel: Channel) -> Result<()> {
        match channel {
            Channel::Email => {
                if self.subject.is_none() {
                    return Err(Error::invalid(
                        "message.subject",
                        "an e-mail needs a subject",
                    ));
                }
            }
            Channel::Sms => {
                if self.subject.is_some() {
                    return Err(Error::invalid(
                        "message.subject",
                        "a text message has no subject",
                    ));
                }
                if self.html.is_some() {
                    return Err(Error::invalid(
                        "message.html",
                        "a text message has no HTML part",
                    ));
                }
            }
            other => {
                return Err(Error::invalid(
                    "channel",
                    format!(
                        "a {other:?} campaign sends no messages: only e-mail and SMS campaigns do"
                    ),
                ))
            }
        }
        crate::validate::optional("message.offer", self.offer.as_deref(), 2_000)?;
        let renderer = Renderer::new(self)?;
        renderer.render(&TemplateVars::sample()).map(|_| ())
    }
}

/// A message's templates, compiled once for a whole send.
#[derive(Debug)]
pub struct Renderer {
    env: minijinja::Environment<'static>,
    html: bool,
    subject: bool,
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rendered {
    /// The subject (e-mail).
    pub subject: Option<String>,
    /// The text.
    pub text: String,
    /// The HTML alternative, if the message has one.
    pub html: Option<String>,
}

impl Renderer {
    /// Compiles `message`'s parts.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on the part that is empty, too long, does not parse or names a variable outside
    /// [`FIELDS`].
    pub fn new(message: &CampaignMessage) -> Result<Self> {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.set_auto_escape_callback(|name| {
            if name == "html" {
                minijinja::AutoEscape::Html
            } else {
                minijinja::AutoEscape::None
            }
        });
        let parts = [
            ("subject", message.subject.as_deref()),
            ("text", Some(message.text.as_str())),
            ("html", message.html.as_deref()),
        ];
        for (part, source) in parts {
            let Some(source) = source else { continue };
            let field = field_of(part);
            if source.trim().is_empty() {
                return Err(Error::invalid(field, "empty"));
            }
            if source.chars().count() > MAX_TEMPLATE {
                return Err(Error::invalid(
                    field,
                    format!("longer than {MAX_TEMPLATE} characters"),
                ));
            }
            env.add_template_owned(part, source.to_string())
                .map_err(|e| Error::invalid(field, format!("not a template: {e}")))?;
            let t = env
                .get_template(part)
                .map_err(|e| Error::invalid(field, e.to_string()))?;
            let mut unknown: Vec<String> = t
                .undeclared_variables(true)
                .into_iter()
                .filter(|v| !known(v))
                .collect();
            unknown.sort();
            if !unknown.is_empty() {
                return Err(Error::invalid(
                    field,
                    format!(
                        "names {}, which a campaign message cannot use (the fields are {})",
                        unknown.join(", "),
                        FIELDS.join(", ")
                    ),
                ));
            }
        }
        Ok(Self {
            env,
            html: message.html.is_some(),
            subject: message.subject.is_some(),
        })
    }

    /// Renders the message for one target.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on the part that fails to render (out of fuel, a filter's error), or on `message.text`
    /// when a text message renders longer than [`MAX_SMS`] characters.
    pub fn render(&self, vars: &TemplateVars) -> Result<Rendered> {
        let one = |part: &str| -> Result<String> {
            let field = field_of(part);
            let t = self
                .env
                .get_template(part)
                .map_err(|e| Error::invalid(field, e.to_string()))?;
            t.render(vars)
                .map_err(|e| Error::invalid(field, format!("does not render: {e}")))
        };
        let subject = if self.subject {
            Some(one("subject")?.trim().to_string())
        } else {
            None
        };
        let text = one("text")?;
        if !self.subject && text.chars().count() > MAX_SMS {
            return Err(Error::invalid(
                "message.text",
                format!("renders longer than {MAX_SMS} characters"),
            ));
        }
        let html = if self.html { Some(one("html")?) } else { None };
        Ok(Rendered {
            subject,
            text,
            html,
        })
    }
}

/// The error field of a template part.
fn field_of(part: &str) -> &'static str {
    match part {
        "subject" => "message.subject",
        "html" => "message.html",
        _ => "message.text",
    }
}

/// Whether a template may use variable `v` (`partner`, `partner.name`, `range`).
fn known(v: &str) -> bool {
    FIELDS.contains(&v) || OBJECTS.contains(&v) || FUNCTIONS.contains(&v)
}

/// The variables of one target's message (see [`FIELDS`]); a missing value is empty text.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct TemplateVars {
    /// The partner.
    pub partner: PartnerVars,
    /// The contact written to.
    pub contact: ContactVars,
    /// The campaign.
    pub campaign: CampaignVars,
}

/// The partner's fields.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct PartnerVars {
    /// Name.
    pub name: String,
    /// The host's code.
    pub host_ref: String,
    /// Tax identifier.
    pub tax_id: String,
    /// Web site.
    pub website: String,
    /// Customer group.
    pub group: String,
}

/// The contact's fields.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ContactVars {
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// E-mail address.
    pub email: String,
    /// Phone.
    pub phone: String,
}

/// The campaign's fields.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct CampaignVars {
    /// Name.
    pub name: String,
    /// The message's offer.
    pub offer: String,
    /// The campaign's last day (`YYYY-MM-DD`).
    pub ends: String,
}

impl TemplateVars {
    /// The variables of `campaign`'s message to `contact` of `partner`.
    pub fn of(campaign: &Campaign, partner: &Partner, contact: &Contact) -> Self {
        let s = |v: Option<&str>| v.unwrap_or_default().to_string();
        Self {
            partner: PartnerVars {
                name: partner.name().to_string(),
                host_ref: s(partner.host_ref()),
                tax_id: s(partner.tax_id()),
                website: s(partner.website()),
                group: s(partner.group()),
            },
            contact: ContactVars {
                name: contact.name.clone(),
                role: s(contact.role.as_deref()),
                email: s(contact.email.as_deref()),
                phone: s(contact.phone.as_deref()),
            },
            campaign: CampaignVars {
                name: campaign.name().to_string(),
                offer: s(campaign.message().and_then(|m| m.offer.as_deref())),
                ends: campaign.period().to().to_string(),
            },
        }
    }

    /// Every field filled: what [`CampaignMessage::check`] renders.
    fn sample() -> Self {
        let f = |s: &str| s.to_string();
        Self {
            partner: PartnerVars {
                name: f("Acme SRL"),
                host_ref: f("C-001"),
                tax_id: f("RO123"),
                website: f("https://acme.example"),
                group: f("key accounts"),
            },
            contact: ContactVars {
                name: f("Ana Pop"),
                role: f("purchasing"),
                email: f("ana@acme.example"),
                phone: f("+40 721 000 000"),
            },
            campaign: CampaignVars {
                name: f("Spring"),
                offer: f("10% off"),
                ends: f("2026-12-31"),
            },
        }
    }
}

/// What the host reports about a campaign message (from its mail or SMS provider's webhook, a tracking pixel, a
/// reply `STOP`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DeliveryReport {
    /// The recipient's server accepted it.
    Delivered,
    /// The recipient opened it.
    Opened,
    /// It bounced.
    Bounced {
        /// Why (the provider's reason).
        reason: String,
    },
    /// The recipient unsubscribed: withdraws their marketing consent for the channel.
    Unsubscribed,
}

impl DeliveryReport {
    /// The status the report moves a target to.
    pub fn status(&self) -> SendStatus {
        match self {
            Self::Delivered => SendStatus::Delivered,
            Self::Opened => SendStatus::Opened,
            Self::Bounced { .. } => SendStatus::Bounced,
            Self::Unsubscribed => SendStatus::Unsubscribed,
        }
    }
}

/// A target's message: its state and the facts the reports added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetSend {
    /// Where it is.
    pub status: SendStatus,
    /// The outbox message (none when skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<OutboxId>,
    /// The contact written to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<ContactId>,
    /// When it was queued or skipped.
    pub at: Timestamp,
    /// When the outbox may first hand it over (the tenant's send rate spaces messages out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<Timestamp>,
    /// When it was reported delivered (or opened, which implies it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<Timestamp>,
    /// When it was reported opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<Timestamp>,
    /// When it was reported bounced or unsubscribed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// Why it was skipped or bounced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl TargetSend {
    /// A queued message.
    pub fn queued(message: OutboxId, contact: ContactId, at: Timestamp, due: Timestamp) -> Self {
        Self {
            status: SendStatus::Queued,
            message: Some(message),
            contact: Some(contact),
            at,
            due: Some(due),
            delivered_at: None,
            opened_at: None,
            ended_at: None,
            note: None,
        }
    }

    /// A target skipped for `status` (`no_address`, `no_consent`, `failed`) and why.
    pub fn skipped(status: SendStatus, note: String, at: Timestamp) -> Self {
        Self {
            status,
            message: None,
            contact: None,
            at,
            due: None,
            delivered_at: None,
            opened_at: None,
            ended_at: None,
            note: Some(note),
        }
    }

    /// The state after `report` at `at`; `None` when it changes nothing (a repeat, or news older than the state:
    /// `delivered` after `opened`). `opened` implies `delivered`; `unsubscribed` may follow any sent state but a
    /// bounce.
    ///
    /// ```
    /// use crm_core::commerce::send::{DeliveryReport, SendStatus, TargetSend};
    /// use crm_core::id::{ContactId, OutboxId};
    /// let now = chrono::Utc::now();
    /// let q = TargetSend::queued(OutboxId::new(), ContactId::new(), now, now);
    /// let opened = q.report(&DeliveryReport::Opened, now).unwrap().unwrap();
    /// assert_eq!((opened.status, opened.delivered_at), (SendStatus::Opened, Some(now)));
    /// assert_eq!(opened.report(&DeliveryReport::Delivered, now).unwrap(), None);
    /// let bounce = DeliveryReport::Bounced { reason: "550 no such user".into() };
    /// assert_eq!(opened.report(&bounce, now).unwrap_err().field(), Some("report"));
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `report` for a target that was never sent, news after a bounce (it was not delivered
    /// after all), and a bounce of a message already opened or unsubscribed from; on `report.reason` for a bounce
    /// without a reason (or one over 2,000 characters).
    pub fn report(&self, report: &DeliveryReport, at: Timestamp) -> Result<Option<TargetSend>> {
        let to = report.status();
        if !self.status.is_sent() {
            return Err(Error::invalid(
                "report",
                format!("the target was not sent to ({})", self.status.as_str()),
            ));
        }
        if self.status == to {
            return Ok(None);
        }
        let mut next = self.clone();
        match (self.status, report) {
            (SendStatus::Bounced, _) => {
                return Err(Error::invalid(
                    "report",
                    format!("the message bounced; it cannot be {}", to.as_str()),
                ))
            }
            (from, DeliveryReport::Bounced { reason }) => {
                if from.rank() > SendStatus::Delivered.rank() {
                    return Err(Error::invalid(
                        "report",
                        format!("the message was {}; it cannot bounce", from.as_str()),
                    ));
                }
                let reason = crate::validate::bounded("report.reason", reason, 2_000, true)?;
                next.status = SendStatus::Bounced;
                next.ended_at = Some(at);
                next.note = Some(reason);
                return Ok(Some(next));
            }
            _ => {}
        }
        if to.rank() >= SendStatus::Delivered.rank() && next.delivered_at.is_none() {
            next.delivered_at = Some(at);
        }
        if to.rank() >= SendStatus::Opened.rank() && to != SendStatus::Unsubscribed {
            next.opened_at.get_or_insert(at);
        }
        if to == SendStatus::Unsubscribed {
            next.ended_at = Some(at);
        }
        if to.rank() <= self.status.rank() {
            // Older news: keep the state, add the time it brings.
            return Ok((next != *self).then_some(next));
        }
        next.status = to;
        Ok(Some(next))
    }
}

/// What a [`CommerceService::send_campaign`](crate::service::CommerceService::send_campaign) did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendSummary {
    /// Messages put in the outbox by this call.
    pub queued: u64,
    /// Targets skipped by this call: no address for the channel.
    pub no_address: u64,
    /// Targets skipped by this call: no consent.
    pub no_consent: u64,
    /// Targets skipped by this call: the message did not render.
    pub failed: u64,
    /// Targets an earlier send already handled (left as they were).
    pub already: u64,
    /// When the first message of this call may go out.
    pub first_due: Option<Timestamp>,
    /// When the last may.
    pub last_due: Option<Timestamp>,
}

/// The contact of `partner` a message on `channel` goes to: the first contact (in the partner's order) with an
/// address for the channel who consents to marketing on it; else why there is none
/// ([`SendStatus::NoAddress`] or [`SendStatus::NoConsent`]).
pub fn recipient_of(
    partner: &Partner,
    channel: Channel,
) -> std::result::Result<&Contact, SendStatus> {
    use crate::consent::{ConsentChannel, Purpose};
    let (consent, has) = match channel {
        Channel::Sms => (ConsentChannel::Sms, address(|c: &Contact| &c.phone)),
        _ => (ConsentChannel::Email, address(|c: &Contact| &c.email)),
    };
    let reachable: Vec<&Contact> = partner.contacts().iter().filter(|c| has(c)).collect();
    if reachable.is_empty() {
        return Err(SendStatus::NoAddress);
    }
    reachable
        .into_iter()
        .find(|c| c.consent(consent, Purpose::Marketing).is_some())
        .ok_or(SendStatus::NoConsent)
}

/// Whether a contact has a non-empty value in the field `get` picks.
fn address(get: fn(&Contact) -> &Option<String>) -> impl Fn(&&Contact) -> bool {
    move |c| get(c).as_deref().is_some_and(|a| !a.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(m: &CampaignMessage, ch: Channel) -> (Option<String>, String) {
        let e = m.check(ch).unwrap_err();
        (e.field().map(str::to_string), e.to_string())
    }

    #[test]
    fn templates_are_checked_when_set_not_when_sent() {
        let ok = CampaignMessage {
            subject: Some("{{ campaign.name }} for {{ partner.name | upper }}".into()),
            text: "{% if contact.role %}({{ contact.role }}) {% endif %}{{ campaign.offer }} until {{ campaign.ends }}"
                .into(),
            html: Some("<p>{{ partner.name }}</p>".into()),
            offer: Some("10% off".into()),
        };
        ok.check(Channel::Email).unwrap();
        let mut bad = ok.clone();
        bad.html = Some("<p>{{ partner.revenue }}</p>".into());
        let (field, text) = err(&bad, Channel::Email);
        assert_eq!(field.as_deref(), Some("message.html"));
        assert!(text.contains("partner.revenue"), "{text}");
        bad = ok.clone();
        bad.subject = Some("{{ secret }}".into());
        assert_eq!(
            err(&bad, Channel::Email).0.as_deref(),
            Some("message.subject")
        );
        bad = ok.clone();
        bad.text = "{% if %}".into();
        assert_eq!(err(&bad, Channel::Email).0.as_deref(), Some("message.text"));
        bad.text = "  ".into();
        assert_eq!(err(&bad, Channel::Email).0.as_deref(), Some("message.text"));
        bad.text = "x".repeat(MAX_TEMPLATE + 1);
        assert_eq!(err(&bad, Channel::Email).0.as_deref(), Some("message.text"));
        // A subscript the variable check cannot see fails the trial render.
        bad.text = "{{ partner['nme'] }}".into();
        assert_eq!(err(&bad, Channel::Email).0.as_deref(), Some("message.text"));
        // A template that never stops runs out of fuel at check time.
        bad.text =
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
                .into();
        assert_eq!(err(&bad, Channel::Email).0.as_deref(), Some("message.text"));
        assert_eq!(
            err(&CampaignMessage::sms("hi"), Channel::Email)
                .0
                .as_deref(),
            Some("message.subject")
        );
        assert_eq!(err(&ok, Channel::Sms).0.as_deref(), Some("message.subject"));
        assert_eq!(
            err(&ok, Channel::Telemarketing).0.as_deref(),
            Some("channel")
        );
        let long = CampaignMessage::sms("{% for i in range(2000) %}x{% endfor %}");
        assert_eq!(err(&long, Channel::Sms).0.as_deref(), Some("message.text"));
        CampaignMessage::sms("{{ contact.name }}: {{ campaign.offer }}")
            .check(Channel::Sms)
            .unwrap();
    }

    #[test]
    fn html_is_escaped_and_missing_values_are_empty() {
        let m = CampaignMessage {
            subject: Some("Hi {{ contact.name }}".into()),
            text: "[{{ contact.role }}] {{ partner.name }}".into(),
            html: Some("<b>{{ partner.name }}</b>".into()),
            offer: None,
        };
        let r = Renderer::new(&m).unwrap();
        let mut vars = TemplateVars::default();
        vars.partner.name = "A & <B>".into();
        vars.contact.name = "Ana".into();
        let out = r.render(&vars).unwrap();
        assert_eq!(out.subject.as_deref(), Some("Hi Ana"));
        assert_eq!(out.text, "[] A & <B>");
        assert_eq!(out.html.as_deref(), Some("<b>A &amp; &lt;B&gt;</b>"));
    }

    #[test]
    fn reports_move_forward_and_repeats_change_nothing() {
        let t0 = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let t1 = t0 + chrono::Duration::hours(1);
        let q = TargetSend::queued(OutboxId::new(), ContactId::new(), t0, t0);
        let d = q.report(&DeliveryReport::Delivered, t0).unwrap().unwrap();
        assert_eq!(d.report(&DeliveryReport::Delivered, t1).unwrap(), None);
        let o = d.report(&DeliveryReport::Opened, t1).unwrap().unwrap();
        assert_eq!((o.delivered_at, o.opened_at), (Some(t0), Some(t1)));
        let u = o
            .report(&DeliveryReport::Unsubscribed, t1)
            .unwrap()
            .unwrap();
        assert_eq!(u.status, SendStatus::Unsubscribed);
        assert_eq!(u.report(&DeliveryReport::Opened, t1).unwrap(), None);
        // Unsubscribing from a message nobody reported delivered still marks it delivered then.
        let u2 = q
            .report(&DeliveryReport::Unsubscribed, t1)
            .unwrap()
            .unwrap();
        assert_eq!((u2.delivered_at, u2.opened_at), (Some(t1), None));
        let b = q
            .report(
                &DeliveryReport::Bounced {
                    reason: "550".into(),
                },
                t1,
            )
            .unwrap()
            .unwrap();
        assert_eq!(
            (b.status, b.note.as_deref()),
            (SendStatus::Bounced, Some("550"))
        );
        assert_eq!(
            b.report(&DeliveryReport::Delivered, t1)
                .unwrap_err()
                .field(),
            Some("report")
        );
        let no_reason = DeliveryReport::Bounced { reason: " ".into() };
        assert_eq!(
            d.report(&no_reason, t1).unwrap_err().field(),
            Some("report.reason")
        );
        let skipped = TargetSend::skipped(SendStatus::NoConsent, "no".into(), t0);
        assert_eq!(
            skipped
                .report(&DeliveryReport::Delivered, t1)
                .unwrap_err()
                .field(),
            Some("report")
        );
    }
}
