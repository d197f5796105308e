//! Self-service: who may act for a partner, and with which rights.
//!
//! A [`Representative`] is one of a partner's contacts given portal access with [`Rights`]. It is invited (a
//! single-use [`InvitationToken`] sent by e-mail; only its SHA-256 is stored), accepts, and can be revoked or have
//! its rights changed; each step is a pure transition here and an event on the partner's timeline. A portal call
//! takes a [`Principal`], which only [`crate::service::PortalService`] makes, from an active representative read in
//! the same call: a revoked representative's next call fails.
//!
//! Every portal read is scoped by the principal's tenant **and** partner in the statement itself
//! ([`crate::commerce::PortalKey`]): an id of another partner reads as not found, exactly like another tenant's.

mod payment;

pub use payment::{
    AttemptStatus, PaidItem, PayItem, Payable, Payer, PaymentAttempt, PaymentProvider,
    ProviderAnswer, MAX_PAY_ITEMS,
};

use crate::error::{Error, Result};
use crate::id::{ContactId, PartnerId, RepresentativeId, TenantId};
use crate::time::Timestamp;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fmt;

/// How long an invitation can be accepted.
pub const INVITATION_DAYS: i64 = 7;

/// How long a login link works.
pub const LOGIN_LINK_MINUTES: i64 = 15;

/// How soon after one login link another can be sent to the same representative.
pub const LOGIN_LINK_INTERVAL_SECS: i64 = 60;

/// One thing a representative may do in the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Right {
    /// See the balances, open items and statement of account.
    Statement,
    /// See and download the documents (invoices, credit notes, payments, quotations, contracts).
    Documents,
    /// Open requests and follow them.
    Requests,
    /// Pay open items.
    Pay,
    /// Accept or decline quotations.
    Quotations,
    /// Ask for a renewal or a new offer (a lead with source portal).
    Contracts,
    /// See and manage the partner's representatives.
    Contacts,
}

impl Right {
    /// Every right, in order.
    pub const ALL: [Right; 7] = [
        Right::Statement,
        Right::Documents,
        Right::Requests,
        Right::Pay,
        Right::Quotations,
        Right::Contracts,
        Right::Contacts,
    ];

    /// The right's name in snake case (`statement`), as errors and events name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Statement => "statement",
            Self::Documents => "documents",
            Self::Requests => "requests",
            Self::Pay => "pay",
            Self::Quotations => "quotations",
            Self::Contracts => "contracts",
            Self::Contacts => "contacts",
        }
    }
}

impl fmt::Display for Right {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of rights (serialised as a sorted list of names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Rights(BTreeSet<Right>);

impl Rights {
    /// No right at all.
    pub fn none() -> Self {
        Self::default()
    }

    /// Every right.
    pub fn all() -> Self {
        Right::ALL.into_iter().collect()
    }

    /// Whether `right` is in the set.
    pub fn has(&self, right: Right) -> bool {
        self.0.contains(&right)
    }

    /// The set with `right` added.
    pub fn with(mut self, right: Right) -> Self {
        self.0.insert(right);
        self
    }

    /// The rights, in order.
    pub fn iter(&self) -> impl Iterator<Item = Right> + '_ {
        self.0.iter().copied()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Ok when `right` is in the set, else [`Error::Forbidden`] naming it.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] when the right is missing.
    pub fn require(&self, right: Right) -> Result<()> {
        if self.has(right) {
            Ok(())
        } else {
            Err(Error::Forbidden {
                right: right.as_str(),
            })
        }
    }
}

impl FromIterator<Right> for Rights {
    fn from_iter<I: IntoIterator<Item = Right>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl fmt::Display for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Right::as_str).collect();
        f.write_str(&names.join(", "))
    }
}

/// Where a representative's access stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepresentativeStatus {
    /// Invited; the invitation has not been accepted yet.
    Invited,
    /// Accepted: may log in and act within its rights.
    Active,
    /// Revoked: every call fails; may be invited again.
    Revoked,
}

impl RepresentativeStatus {
    /// The status's stored code.
    pub fn code(self) -> i16 {
        match self {
            Self::Invited => 0,
            Self::Active => 1,
            Self::Revoked => 2,
        }
    }
}

/// A single-use invitation token: 256 random bits, URL-safe. Only its [`InvitationToken::digest`] is stored; the
/// token itself is handed to the caller once and sent to the contact.
#[derive(Clone, PartialEq, Eq)]
pub struct InvitationToken(String);

impl InvitationToken {
    /// A fresh random token.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] of kind `Other` when the operating system gives no randomness.
    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| {
            Error::storage(
                crate::StorageErrorKind::Other,
                format!("no randomness for an invitation token: {e}"),
            )
        })?;
        Ok(Self(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        ))
    }

    /// A token as the contact presents it (from the link).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `token` when it is not 43 URL-safe base64 characters.
    pub fn parse(token: &str) -> Result<Self> {
        let ok = token.len() == 43
            && base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token)
                .is_ok_and(|b| b.len() == 32);
        if ok {
            Ok(Self(token.to_string()))
        } else {
            Err(Error::invalid("token", "not an invitation token"))
        }
    }

    /// The token's text (put it in the link; never log it).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The SHA-256 of the token, hex: what is stored and looked up.
    pub fn digest(&self) -> String {
        Sha256::digest(self.0.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl fmt::Debug for InvitationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InvitationToken(…)")
    }
}

record! {
    /// A partner's contact with portal access.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Representative {
        /// Its id.
        id: RepresentativeId,
        /// The tenant.
        tenant: TenantId,
        /// The partner it acts for.
        partner: PartnerId,
        /// The partner's contact it is.
        contact: ContactId,
        /// The contact's name when invited.
        name: String => &str = borrow,
        /// The address invitations and login links go to.
        email: String => &str = borrow,
        /// What it may do.
        rights: Rights => &Rights = borrow,
        /// Invited, active or revoked.
        status: RepresentativeStatus,
        /// The SHA-256 (hex) of the pending token (an invitation while invited, a login link while active), while
        /// one is pending.
        token_digest: Option<String> => Option<&str> = deref,
        /// When the pending token stops being valid.
        invitation_expires: Option<Timestamp>,
        /// When the last token was issued (login links are rate limited by it).
        #[serde(default)]
        token_issued_at: Option<Timestamp>,
        /// The generation of its sessions: a session names the epoch it began in, and ending the sessions
        /// ([`RepresentativeCommand::EndSessions`], a log-out) moves it on, so every earlier session cookie is void.
        #[serde(default)]
        session_epoch: u32,
        /// Optimistic-concurrency version, 1 on creation.
        version: u64,
        /// When it was first invited.
        created_at: Timestamp,
        /// When it last changed.
        updated_at: Timestamp,
    }
}

/// What a change to a representative is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepresentativeCommand {
    /// Accept the invitation with this token.
    Accept(InvitationToken),
    /// Revoke the access.
    Revoke,
    /// Replace the rights.
    SetRights(Rights),
    /// Invite again (a new token; the old one stops working): for a revoked representative, or an invitation that
    /// expired.
    Reinvite(InvitationToken),
    /// Issue a login link with this token (single use, [`LOGIN_LINK_MINUTES`] long, at most one per
    /// [`LOGIN_LINK_INTERVAL_SECS`]).
    IssueLogin(InvitationToken),
    /// Log in with a login link's token (it is used up).
    Login(InvitationToken),
    /// End every session begun so far (a log-out): their cookies stop working.
    EndSessions,
}

impl Representative {
    /// A new invited representative of `partner`'s `contact`, with `email` and `name` taken from the contact.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `rights` when the set is empty, on `email` when it is not an address.
    #[allow(clippy::too_many_arguments)]
    pub fn invite(
        tenant: TenantId,
        partner: PartnerId,
        contact: &crate::partner::Contact,
        rights: Rights,
        token: &InvitationToken,
        now: Timestamp,
    ) -> Result<Self> {
        if rights.is_empty() {
            return Err(Error::invalid("rights", "give at least one right"));
        }
        let Some(email) = contact.email.as_deref() else {
            return Err(Error::invalid(
                "contact.email",
                "the contact has no e-mail address to invite",
            ));
        };
        let email = crate::validate::email("contact.email", email)?;
        Ok(Self {
            id: RepresentativeId::new(),
            tenant,
            partner,
            contact: contact.id,
            name: contact.name.clone(),
            email,
            rights,
            status: RepresentativeStatus::Invited,
            token_digest: Some(token.digest()),
            invitation_expires: Some(now + chrono::Duration::days(INVITATION_DAYS)),
            token_issued_at: Some(now),
            session_epoch: 0,
            version: 1,
            created_at: now,
            updated_at: now,
        })
    }

    /// Whether it may act now (accepted and not revoked).
    pub fn is_active(&self) -> bool {
        self.status == RepresentativeStatus::Active
    }

    /// The representative after `cmd` (version + 1).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `token` when accepting with a token that is not the pending one (reused, forged or
    /// replaced), or after the invitation expired; on `status` when the command does not fit the status (accepting
    /// when not invited, revoking twice, reinviting an active one); on `rights` when the new set is empty.
    pub fn apply(&self, cmd: RepresentativeCommand, now: Timestamp) -> Result<Self> {
        use RepresentativeStatus as S;
        let mut next = self.clone();
        match cmd {
            RepresentativeCommand::Accept(token) => {
                if self.status != S::Invited
                    || self.token_digest.as_deref() != Some(&token.digest())
                {
                    return Err(Error::invalid(
                        "token",
                        "this invitation is not valid (already used, replaced or never issued)",
                    ));
                }
                if self.invitation_expires.is_some_and(|e| now >= e) {
                    return Err(Error::invalid("token", "this invitation has expired"));
                }
                next.status = S::Active;
                next.token_digest = None;
                next.invitation_expires = None;
            }
            RepresentativeCommand::Revoke => {
                if self.status == S::Revoked {
                    return Err(Error::invalid("status", "the access is already revoked"));
                }
                next.status = S::Revoked;
                next.token_digest = None;
                next.invitation_expires = None;
            }
            RepresentativeCommand::SetRights(rights) => {
                if rights.is_empty() {
                    return Err(Error::invalid("rights", "give at least one right"));
                }
                next.rights = rights;
            }
            RepresentativeCommand::Reinvite(token) => {
                if self.status == S::Active {
                    return Err(Error::invalid(
                        "status",
                        "the representative is active: revoke it first",
                    ));
                }
                next.status = S::Invited;
                next.token_digest = Some(token.digest());
                next.invitation_expires = Some(now + chrono::Duration::days(INVITATION_DAYS));
                next.token_issued_at = Some(now);
            }
            RepresentativeCommand::IssueLogin(token) => {
                if self.status != S::Active {
                    return Err(Error::invalid(
                        "status",
                        "only an active representative logs in",
                    ));
                }
                let wait = chrono::Duration::seconds(LOGIN_LINK_INTERVAL_SECS);
                if self.token_issued_at.is_some_and(|t| now < t + wait) {
                    return Err(Error::invalid(
                        "email",
                        "a login link was sent a moment ago: check your e-mail",
                    ));
                }
                next.token_digest = Some(token.digest());
                next.invitation_expires = Some(now + chrono::Duration::minutes(LOGIN_LINK_MINUTES));
                next.token_issued_at = Some(now);
            }
            RepresentativeCommand::Login(token) => {
                if self.status != S::Active || self.token_digest.as_deref() != Some(&token.digest())
                {
                    return Err(Error::invalid(
                        "token",
                        "this login link is not valid (already used, replaced or never sent)",
                    ));
                }
                if self.invitation_expires.is_some_and(|e| now >= e) {
                    return Err(Error::invalid("token", "this login link has expired"));
                }
                next.token_digest = None;
                next.invitation_expires = None;
            }
            RepresentativeCommand::EndSessions => {
                next.session_epoch = self.session_epoch.wrapping_add(1);
            }
        }
        next.version += 1;
        next.updated_at = now;
        Ok(next)
    }
}

/// Who is acting in the portal: an active representative of one partner, with its rights, as read in this call.
/// Only [`crate::service::PortalService`] makes one; every portal read it makes carries the tenant and the partner
/// in its statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub(crate) tenant: TenantId,
    pub(crate) partner: PartnerId,
    pub(crate) representative: RepresentativeId,
    pub(crate) contact: ContactId,
    pub(crate) rights: Rights,
    pub(crate) session_epoch: u32,
}

impl Principal {
    pub(crate) fn of(r: &Representative) -> Self {
        Self {
            tenant: r.tenant,
            partner: r.partner,
            representative: r.id,
            contact: r.contact,
            rights: r.rights.clone(),
            session_epoch: r.session_epoch,
        }
    }

    /// The generation of the representative's sessions when it was read: a session cookie carries it, and
    /// [`crate::service::PortalService::session`] refuses one from an ended generation.
    pub fn session_epoch(&self) -> u32 {
        self.session_epoch
    }

    /// The tenant.
    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    /// The partner represented.
    pub fn partner(&self) -> PartnerId {
        self.partner
    }

    /// The representative.
    pub fn representative(&self) -> RepresentativeId {
        self.representative
    }

    /// The partner's contact acting.
    pub fn contact(&self) -> ContactId {
        self.contact
    }

    /// Its rights.
    pub fn rights(&self) -> &Rights {
        &self.rights
    }

    /// The context the principal's writes run in: the representative as actor, the portal as source.
    pub fn context(&self) -> crate::actor::Context {
        crate::actor::Context {
            tenant: self.tenant,
            actor: crate::actor::Actor::PartnerRepresentative {
                partner: self.partner,
                contact: self.contact,
            },
            source: crate::actor::Source::Portal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn contact() -> crate::partner::Contact {
        crate::partner::Contact {
            id: ContactId::new(),
            name: "Maria Pop".into(),
            role: None,
            email: Some("maria@acme.example".into()),
            phone: None,
            host_ref: None,
            consents: Vec::new(),
        }
    }

    #[test]
    fn an_invitation_is_accepted_once_with_its_own_token_before_it_expires() {
        let now = chrono::Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        let token = InvitationToken::generate().unwrap();
        let r = Representative::invite(
            TenantId::new(),
            PartnerId::new(),
            &contact(),
            Rights::none().with(Right::Statement),
            &token,
            now,
        )
        .unwrap();
        assert_eq!(r.token_digest(), Some(token.digest().as_str()));
        let forged = InvitationToken::generate().unwrap();
        let e = r
            .apply(RepresentativeCommand::Accept(forged), now)
            .unwrap_err();
        assert_eq!(e.field(), Some("token"));
        let late = now + chrono::Duration::days(INVITATION_DAYS);
        let e = r
            .apply(RepresentativeCommand::Accept(token.clone()), late)
            .unwrap_err();
        assert_eq!(e.field(), Some("token"));
        let active = r
            .apply(RepresentativeCommand::Accept(token.clone()), now)
            .unwrap();
        assert!(active.is_active());
        assert_eq!(active.version(), 2);
        assert_eq!(active.token_digest(), None);
        let again = active.apply(RepresentativeCommand::Accept(token), now);
        assert_eq!(again.unwrap_err().field(), Some("token"));
    }

    #[test]
    fn a_login_link_works_once_within_its_minutes_and_links_are_rate_limited() {
        let now = chrono::Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        let invitation = InvitationToken::generate().unwrap();
        let rights = Rights::none().with(Right::Statement);
        let r = Representative::invite(
            TenantId::new(),
            PartnerId::new(),
            &contact(),
            rights,
            &invitation,
            now,
        )
        .unwrap();
        let link = InvitationToken::generate().unwrap();
        // An invited representative gets no login link.
        let e = r
            .apply(RepresentativeCommand::IssueLogin(link.clone()), now)
            .unwrap_err();
        assert_eq!(e.field(), Some("status"));
        let active = r
            .apply(RepresentativeCommand::Accept(invitation), now)
            .unwrap();
        // Too soon after the invitation: rate limited.
        let e = active
            .apply(RepresentativeCommand::IssueLogin(link.clone()), now)
            .unwrap_err();
        assert_eq!(e.field(), Some("email"));
        let later = now + chrono::Duration::minutes(5);
        let sent = active
            .apply(RepresentativeCommand::IssueLogin(link.clone()), later)
            .unwrap();
        let expired = later + chrono::Duration::minutes(LOGIN_LINK_MINUTES);
        let e = sent
            .apply(RepresentativeCommand::Login(link.clone()), expired)
            .unwrap_err();
        assert_eq!(e.field(), Some("token"));
        let forged = InvitationToken::generate().unwrap();
        let e = sent
            .apply(RepresentativeCommand::Login(forged), later)
            .unwrap_err();
        assert_eq!(e.field(), Some("token"));
        let logged = sent
            .apply(RepresentativeCommand::Login(link.clone()), later)
            .unwrap();
        let e = logged
            .apply(RepresentativeCommand::Login(link), later)
            .unwrap_err();
        assert_eq!(e.field(), Some("token"), "single use");
    }

    #[test]
    fn tokens_parse_back_and_bad_ones_are_refused() {
        let t = InvitationToken::generate().unwrap();
        assert_eq!(InvitationToken::parse(t.as_str()).unwrap(), t);
        for bad in ["", "abc", &"A".repeat(44), &"!".repeat(43)] {
            assert_eq!(
                InvitationToken::parse(bad).unwrap_err().field(),
                Some("token")
            );
        }
        assert!(
            !format!("{t:?}").contains(t.as_str()),
            "the token is never logged"
        );
    }

    #[test]
    fn a_missing_right_is_forbidden_by_name() {
        let r = Rights::none().with(Right::Statement);
        assert!(r.require(Right::Statement).is_ok());
        assert_eq!(
            r.require(Right::Pay).unwrap_err(),
            Error::Forbidden { right: "pay" }
        );
        let json = serde_json::to_string(&Rights::all()).unwrap();
        assert_eq!(
            json,
            r#"["statement","documents","requests","pay","quotations","contracts","contacts"]"#
        );
    }
}
