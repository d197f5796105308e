//! Consent to be contacted: per contact, channel (e-mail, phone, SMS) and purpose (marketing, service), with its
//! source, time and proof. The contact keeps the latest answer per channel and purpose ([`Contact::consents`](crate::partner::Contact::consents)); the
//! activity log keeps every answer (`consent_recorded` events).
//!
//! A marketing message is never enqueued without consent: [`crate::service::consent_gate`] is the one check every
//! message passes where it becomes an outbox row (the rules' [`decision_writes`](crate::service::decision_writes),
//! for events and timers alike), so no rule has to remember it. A marketing e-mail that passes carries its recipient's
//! unsubscribe token ([`UNSUBSCRIBE_VAR`]); [`CrmService::unsubscribe`](crate::service::CrmService::unsubscribe)
//! withdraws the consent it names.

use crate::error::{Error, Result};
use crate::id::{ContactId, PartnerId, TenantId};
use crate::time::Timestamp;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The template variable holding a marketing e-mail's unsubscribe token (the host's link carries it to
/// [`CrmService::unsubscribe`](crate::service::CrmService::unsubscribe)).
pub const UNSUBSCRIBE_VAR: &str = "unsubscribe_token";

/// How a contact may be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentChannel {
    /// E-mail.
    Email,
    /// Phone calls.
    Phone,
    /// Text messages.
    Sms,
}

impl ConsentChannel {
    /// Parses `email`, `phone` or `sms`.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `channel` for anything else.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "email" | "e-mail" => Ok(Self::Email),
            "phone" => Ok(Self::Phone),
            "sms" => Ok(Self::Sms),
            other => Err(Error::invalid(
                "channel",
                format!("unknown channel {other:?}: one of email, phone, sms"),
            )),
        }
    }

    fn code(self) -> u8 {
        match self {
            Self::Email => 0,
            Self::Phone => 1,
            Self::Sms => 2,
        }
    }
}

/// Why a message is sent.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// About the customer's own business with the tenant (an invoice, a request, a meeting): no marketing
    /// consent needed.
    #[default]
    Service,
    /// Offers and campaigns: only with the contact's consent for the channel.
    Marketing,
}

impl Purpose {
    /// Parses `marketing` or `service`.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `purpose` for anything else.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "marketing" => Ok(Self::Marketing),
            "service" => Ok(Self::Service),
            other => Err(Error::invalid(
                "purpose",
                format!("unknown purpose {other:?}: marketing or service"),
            )),
        }
    }

    /// Whether it is [`Purpose::Service`] (the default, left out of stored messages).
    pub fn is_service(&self) -> bool {
        *self == Self::Service
    }

    fn code(self) -> u8 {
        match self {
            Self::Service => 0,
            Self::Marketing => 1,
        }
    }
}

/// A contact's latest answer for one channel and purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    /// The channel.
    pub channel: ConsentChannel,
    /// The purpose.
    pub purpose: Purpose,
    /// Given (`true`) or withdrawn.
    pub granted: bool,
    /// Where the answer came from (`web form`, `phone call`, `unsubscribe link`, …).
    pub source: String,
    /// What proves it (a form's reference, a recording's id, the request's address), if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
    /// When it was given or withdrawn.
    pub at: Timestamp,
    /// The secret an unsubscribe token of a given consent carries (32 hex digits, new with each grant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// An answer to record ([`CrmService::record_consent`](crate::service::CrmService::record_consent)); channel and
/// purpose as text, as forms and imports give them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NewConsent {
    /// `email`, `phone` or `sms`.
    pub channel: String,
    /// `marketing` or `service`.
    pub purpose: String,
    /// Given or withdrawn.
    pub granted: bool,
    /// Where it came from (required, at most 200 characters).
    pub source: String,
    /// What proves it (at most 2,000 characters).
    pub proof: Option<String>,
}

impl NewConsent {
    /// The consent this answer records at `at`.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `channel`, `purpose`, `source` (empty, too long, control characters) or `proof`;
    /// [`Error::Storage`] when the operating system gives no random bytes for the key.
    pub fn build(self, at: Timestamp) -> Result<Consent> {
        let channel = ConsentChannel::parse(&self.channel)?;
        let purpose = Purpose::parse(&self.purpose)?;
        let source = crate::validate::name("source", &self.source)?;
        if source.chars().count() > 200 {
            return Err(Error::invalid("source", "longer than 200 characters"));
        }
        let proof = crate::validate::optional("proof", self.proof.as_deref(), 2000)?;
        let key = if self.granted {
            let mut bytes = [0u8; 16];
            getrandom::fill(&mut bytes).map_err(|e| {
                Error::storage(
                    crate::error::StorageErrorKind::Other,
                    format!("no random bytes for the consent's key: {e}"),
                )
            })?;
            Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
        } else {
            None
        };
        Ok(Consent {
            channel,
            purpose,
            granted: self.granted,
            source,
            proof,
            at,
            key,
        })
    }
}

/// What an unsubscribe link carries: whose consent, for what, and the consent's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubscribeToken {
    /// The tenant.
    pub tenant: TenantId,
    /// The contact's partner.
    pub partner: PartnerId,
    /// The contact.
    pub contact: ContactId,
    /// The channel.
    pub channel: ConsentChannel,
    /// The purpose.
    pub purpose: Purpose,
    /// The consent's key.
    pub key: String,
    /// The campaign whose message carried it, if one did: unsubscribing through it also marks the campaign's
    /// target ([`CommerceService::unsubscribe`](crate::service::CommerceService::unsubscribe)).
    pub campaign: Option<crate::id::CampaignId>,
}

impl UnsubscribeToken {
    /// The token as URL-safe text.
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(66);
        bytes.extend_from_slice(self.tenant.as_uuid().as_bytes());
        bytes.extend_from_slice(self.partner.as_uuid().as_bytes());
        bytes.extend_from_slice(self.contact.as_uuid().as_bytes());
        bytes.push(self.channel.code());
        bytes.push(self.purpose.code());
        bytes.extend_from_slice(self.key.as_bytes());
        if let Some(c) = self.campaign {
            bytes.extend_from_slice(c.as_uuid().as_bytes());
        }
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Reads a token.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `token` when it is not one.
    pub fn parse(token: &str) -> Result<Self> {
        let bad = || Error::invalid("token", "not an unsubscribe token");
        if token.len() > 200 {
            return Err(bad());
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| bad())?;
        const PLAIN: usize = 16 * 3 + 2 + 32;
        if bytes.len() != PLAIN && bytes.len() != PLAIN + 16 {
            return Err(bad());
        }
        let id = |i: usize| {
            let mut b = [0u8; 16];
            b.copy_from_slice(&bytes[i * 16..(i + 1) * 16]);
            uuid::Uuid::from_bytes(b)
        };
        let channel = match bytes[48] {
            0 => ConsentChannel::Email,
            1 => ConsentChannel::Phone,
            2 => ConsentChannel::Sms,
            _ => return Err(bad()),
        };
        let purpose = match bytes[49] {
            0 => Purpose::Service,
            1 => Purpose::Marketing,
            _ => return Err(bad()),
        };
        let key = std::str::from_utf8(&bytes[50..PLAIN]).map_err(|_| bad())?;
        let campaign = (bytes.len() > PLAIN).then(|| {
            let mut b = [0u8; 16];
            b.copy_from_slice(&bytes[PLAIN..]);
            crate::id::CampaignId::from_uuid(uuid::Uuid::from_bytes(b))
        });
        if !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(Self {
            tenant: TenantId::from_uuid(id(0)),
            partner: PartnerId::from_uuid(id(1)),
            contact: ContactId::from_uuid(id(2)),
            channel,
            purpose,
            key: key.to_string(),
            campaign,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_read_back_and_garbage_is_refused() {
        let t = UnsubscribeToken {
            tenant: TenantId::new(),
            partner: PartnerId::new(),
            contact: ContactId::new(),
            channel: ConsentChannel::Email,
            purpose: Purpose::Marketing,
            key: "0123456789abcdef0123456789abcdef".into(),
            campaign: None,
        };
        assert_eq!(UnsubscribeToken::parse(&t.encode()).unwrap(), t);
        let of_campaign = UnsubscribeToken {
            campaign: Some(crate::id::CampaignId::new()),
            ..t.clone()
        };
        assert_eq!(
            UnsubscribeToken::parse(&of_campaign.encode()).unwrap(),
            of_campaign
        );
        for bad in ["", "x", "!!!!", &"A".repeat(300), &t.encode()[..20]] {
            assert_eq!(
                UnsubscribeToken::parse(bad).unwrap_err().field(),
                Some("token")
            );
        }
    }

    #[test]
    fn unknown_channels_and_purposes_are_refused_by_field() {
        assert_eq!(
            ConsentChannel::parse("fax").unwrap_err().field(),
            Some("channel")
        );
        assert_eq!(Purpose::parse("spam").unwrap_err().field(), Some("purpose"));
        assert_eq!(ConsentChannel::parse(" SMS ").unwrap(), ConsentChannel::Sms);
    }
}
