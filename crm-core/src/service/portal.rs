//! The self-service portal's service: the staff side (invite, reinvite, revoke, change rights) and the
//! representative's side (log in with an invitation or a login link, the statement of account, documents, requests,
//! quotations, asking for a new contract, paying open items).
//!
//! Scope is enforced in two places. Every representative-side method first reads the representative again (it
//! exists in the principal's tenant, belongs to its partner, is active and holds the right the read needs), so a revoked representative's next call fails and a right taken away is gone at once. Every
//! read then goes through [`CommerceKey::OfPartner`] (or a partner-filtered report), whose statement carries the
//! tenant **and** the partner: an id of another partner reads as not found.

use super::CommerceService;
use crate::actor::Context;
use crate::commerce::{Allocation, NewDocument};
use crate::commerce::{
    Balance, CommerceKey, CommerceRecord, CommerceStoreExt, CommerceWrite, Document, OpenItem,
    PortalKey,
};
use crate::comms::{Channel, OutboxMessage, Payload, ResolvedRecipient};
use crate::error::{Error, Result};
use crate::event::CommentTarget;
use crate::event::{DomainEvent, EventKind, Subject};
use crate::id::{ContactId, ContractId, DocumentId, PartnerId, QuotationId, RepresentativeId};
use crate::id::{RequestId, TenantId, UserId};
use crate::lead::{Lead, LeadSource, NewLead};
use crate::page::{Page, PageRequest};
use crate::partner::{Contact, NewContact, Partner, PartnerPatch, PartnerRole};
use crate::portal::{
    AttemptStatus, InvitationToken, PayItem, Payable, Payer, PaymentAttempt, PaymentProvider,
    Principal, ProviderAnswer, Representative, RepresentativeCommand, Right, Rights,
};
use crate::request::{Comment, NewRequest, Request};
use crate::sales::{Contract, Quotation};
use crate::store::{ChangeSet, RequestQuery, StoreExt, Write};
use crate::typed_reads::Pick;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The template of the invitation e-mail (vars: `name`, `partner`, `token`, `login_url` when a base is set,
/// `expires_at`).
pub const INVITATION_TEMPLATE: &str = "portal_invitation";

/// The template of the login-link e-mail (the same vars as the invitation's).
pub const LOGIN_TEMPLATE: &str = "portal_login";

/// The longest body of a request opened in the portal, in bytes.
pub const MAX_REQUEST_BODY: usize = 20_000;

/// The most documents one page lists.
pub const MAX_PAGE: u32 = 100;

/// The most days one balance history reads.
pub const MAX_HISTORY: usize = 24;

/// Who a representative is and whom it acts for ([`PortalService::account`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The partner's name.
    pub partner: String,
    /// The partner's roles.
    pub roles: Vec<PartnerRole>,
    /// The representative's name.
    pub representative: String,
    /// The representative's address.
    pub email: String,
    /// Its rights.
    pub rights: Rights,
}

/// An invitation made: the representative, and the token (also sent by e-mail through the outbox; hand it to no one
/// else).
#[derive(Debug, Clone)]
pub struct Invited {
    /// The representative, invited.
    pub representative: Representative,
    /// The single-use token.
    pub token: InvitationToken,
}

/// A partner's statement of account on a day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// The day it is as of.
    pub as_of: NaiveDate,
    /// Per currency: receivable, payable, overdue.
    pub balances: Vec<Balance>,
    /// The open items at their residual, with due dates and days overdue.
    pub open_items: Vec<OpenItem>,
}

/// What a representative asks in the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PortalRequestKind {
    /// A question.
    Question,
    /// A complaint.
    Complaint,
    /// A request for information.
    Information,
}

impl PortalRequestKind {
    /// The request kind the CRM records (`portal_question`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Question => "portal_question",
            Self::Complaint => "portal_complaint",
            Self::Information => "portal_information",
        }
    }
}

/// A request opened in the portal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalRequest {
    /// What it is.
    pub kind: PortalRequestKind,
    /// A title (required, one line).
    pub title: String,
    /// The text (at most [`MAX_REQUEST_BODY`] bytes).
    pub body: String,
}

/// The self-service service. Made by [`PortalService::new`] over a [`CommerceService`] (the `crm` facade hands one
/// out as `crm.portal()`).
#[derive(Debug, Clone)]
pub struct PortalService {
    commerce: CommerceService,
    login_base: Option<String>,
    fallback_assignee: Option<UserId>,
    payments: Option<Arc<dyn PaymentProvider>>,
}

impl PortalService {
    /// The portal over `commerce`.
    pub fn new(commerce: CommerceService) -> Self {
        Self {
            commerce,
            login_base: None,
            fallback_assignee: None,
            payments: None,
        }
    }

    /// The host's payment gateway, through which representatives pay open items ([`PortalService::pay`]).
    pub fn with_payment_provider(mut self, provider: Arc<dyn PaymentProvider>) -> Self {
        self.payments = Some(provider);
        self
    }

    /// The URL the invitation e-mail's link starts with; the token is appended (`https://portal.example/login/`).
    pub fn with_login_base(mut self, base: impl Into<String>) -> Self {
        self.login_base = Some(base.into());
        self
    }

    /// Who answers requests from partners without an account owner.
    pub fn with_fallback_assignee(mut self, user: UserId) -> Self {
        self.fallback_assignee = Some(user);
        self
    }

    // ------------------------------------------------------------------ the staff side

    /// Invites `contact` of `partner` to the portal with `rights`: an invited representative, a
    /// `representative_invited` event on the partner's timeline, and the invitation e-mail (template
    /// [`INVITATION_TEMPLATE`]) in the outbox, all in one change. The token is returned once.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (commerce, ctx) = crm_core::conformance::model::example_sales().await?;
    /// use crm_core::partner::{NewContact, NewPartner};
    /// use crm_core::portal::{Right, Rights};
    /// use crm_core::service::PortalService;
    /// let mut new = NewPartner::company("Acme SRL");
    /// new.contacts.push(NewContact { name: "Maria Pop".into(), email: Some("maria@acme.example".into()), ..Default::default() });
    /// let acme = commerce.crm().create_partner(&ctx, new).await?.record;
    /// let portal = PortalService::new(commerce);
    /// let invited = portal.invite(&ctx, acme.id(), acme.contacts()[0].id, Rights::none().with(Right::Statement)).await?;
    /// let me = portal.login(ctx.tenant, invited.token.as_str()).await?;
    /// assert_eq!(me.partner(), acme.id());
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the tenant has no such partner, or the partner no such contact;
    /// [`Error::Invalid`] on `rights` when empty, on `contact.email` when the contact has no address;
    /// [`Error::AlreadyExists`] when the contact is a representative already (reinvite it instead);
    /// [`Error::Storage`] when the store cannot be read or written.
    pub async fn invite(
        &self,
        ctx: &Context,
        partner: PartnerId,
        contact: ContactId,
        rights: Rights,
    ) -> Result<Invited> {
        let crm = self.commerce.crm();
        let p = crm.store().partner(ctx.tenant, partner).await?;
        // A merged contact's id names its survivor.
        let c = p
            .contact(contact)
            .ok_or_else(|| Error::not_found("contact", contact))?;
        let contact = c.id;
        let existing = self.representatives(ctx.tenant, partner).await?;
        if existing.iter().any(|r| r.contact() == contact) {
            return Err(Error::AlreadyExists {
                entity: "representative",
                key: contact.to_string(),
            });
        }
        let token = InvitationToken::generate()?;
        let now = crm.clock().now();
        let r = Representative::invite(ctx.tenant, partner, c, rights, &token, now)?;
        let event = EventKind::RepresentativeInvited {
            representative: r.id(),
            name: r.name().to_string(),
            rights: r.rights().to_string(),
        };
        let mail = self.invitation(ctx, &r, p.name(), &token, now);
        let cs = ChangeSet::from_iter([
            Write::from(CommerceWrite::InsertRepresentative(r.clone())),
            Write::AppendEvent(DomainEvent::new(ctx, now, partner_subject(partner), event)),
            Write::EnqueueOutbox(mail),
        ]);
        crm.commit(ctx, cs).await?;
        Ok(Invited {
            representative: r,
            token,
        })
    }

    /// Invites a revoked representative, or one whose invitation expired, again: a new token (the old one stops
    /// working) and a new e-mail.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the tenant has no such representative; [`Error::Conflict`] when `expected_version`
    /// is stale; [`Error::Invalid`] on `status` when it is active; [`Error::Storage`] as for
    /// [`PortalService::invite`].
    pub async fn reinvite(
        &self,
        ctx: &Context,
        id: RepresentativeId,
        expected_version: u64,
    ) -> Result<Invited> {
        let token = InvitationToken::generate()?;
        let crm = self.commerce.crm();
        let r = self.commerce.store().representative(ctx.tenant, id).await?;
        let partner = crm.store().partner(ctx.tenant, r.partner()).await?;
        let now = crm.clock().now();
        let mail = self.invitation(ctx, &r, partner.name(), &token, now);
        let next = self
            .change(
                ctx,
                r,
                expected_version,
                RepresentativeCommand::Reinvite(token.clone()),
                Some(mail),
            )
            .await?;
        Ok(Invited {
            representative: next,
            token,
        })
    }

    /// Revokes a representative's access: its next call fails.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::Conflict`] as for [`PortalService::reinvite`]; [`Error::Invalid`] on
    /// `status` when it is revoked already; [`Error::Storage`] when the store cannot be read or written.
    pub async fn revoke(
        &self,
        ctx: &Context,
        id: RepresentativeId,
        expected_version: u64,
    ) -> Result<Representative> {
        self.staff_change(ctx, id, expected_version, RepresentativeCommand::Revoke)
            .await
    }

    /// Replaces a representative's rights (effective at its next call).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::Conflict`] as for [`PortalService::reinvite`]; [`Error::Invalid`] on `rights`
    /// when empty; [`Error::Storage`] when the store cannot be read or written.
    pub async fn set_rights(
        &self,
        ctx: &Context,
        id: RepresentativeId,
        expected_version: u64,
        rights: Rights,
    ) -> Result<Representative> {
        self.staff_change(
            ctx,
            id,
            expected_version,
            RepresentativeCommand::SetRights(rights),
        )
        .await
    }

    /// A partner's representatives, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] when the store cannot be read.
    pub async fn representatives(
        &self,
        tenant: TenantId,
        partner: PartnerId,
    ) -> Result<Vec<Representative>> {
        self.of_partner(tenant, partner, PortalKey::Representatives)
            .await
    }

    // ------------------------------------------------------------------ unsubscribing

    /// Withdraws the consent an unsubscribe link of this tenant's marketing e-mail names
    /// ([`CommerceService::unsubscribe`](super::CommerceService::unsubscribe): a campaign's link also marks its
    /// target unsubscribed); a token of another tenant reads as not found.
    /// No session is needed: the token is the capability (it carries the consent's random 128-bit key).
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::{id::TenantId, service::PortalService, Error};
    /// # futures::executor::block_on(async {
    /// # let (commerce, _) = crm_core::conformance::model::example_sales().await?;
    /// let portal = PortalService::new(commerce);
    /// let err = portal.unsubscribe(TenantId::new(), "not-a-token").await.unwrap_err();
    /// assert_eq!(err.field(), Some("token"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `token` when it is not a token or not the contact's current one; [`Error::NotFound`]
    /// when it is another tenant's, or its partner or contact is gone; [`Error::Conflict`] when the partner changed
    /// meanwhile (try again); [`Error::Storage`] as for any write.
    pub async fn unsubscribe(&self, tenant: TenantId, token: &str) -> Result<()> {
        let t = crate::consent::UnsubscribeToken::parse(token)?;
        if t.tenant != tenant {
            return Err(Error::not_found("contact", t.contact));
        }
        self.commerce.unsubscribe(token).await.map(|_| ())
    }

    // ------------------------------------------------------------------ logging in

    /// Sends a login link to every active representative with this address (one per partner it represents), by
    /// e-mail through the outbox: single use, [`LOGIN_LINK_MINUTES`](crate::portal::LOGIN_LINK_MINUTES) long, at
    /// most one per minute. Says nothing of whether the address is known (an unknown one is `Ok` and sends nothing),
    /// so the login form cannot be used to probe addresses.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `email` when it is not an address, or a link was sent to it a moment ago;
    /// [`Error::Storage`] when the store cannot be read or written.
    pub async fn request_login(&self, tenant: TenantId, email: &str) -> Result<()> {
        let email = crate::validate::email("email", email)?.to_lowercase();
        let store = self.commerce.store();
        let found = store
            .fetch_commerce(tenant, &CommerceKey::RepresentativesByEmail(email))
            .await?;
        let crm = self.commerce.crm();
        for r in found.into_iter().filter_map(Representative::pick) {
            if !r.is_active() {
                continue;
            }
            let token = InvitationToken::generate()?;
            let partner = crm.store().partner(tenant, r.partner()).await?;
            let now = crm.clock().now();
            let mut mail = self.invitation(&host_context(tenant), &r, partner.name(), &token, now);
            mail.payload.template = Some(LOGIN_TEMPLATE.into());
            mail.rule = "portal_login".into();
            mail.idempotency_key = format!("portal_login/{}/{}", r.id(), &token.digest()[..16]);
            let version = r.version();
            let cmd = RepresentativeCommand::IssueLogin(token);
            self.change(&host_context(tenant), r, version, cmd, Some(mail))
                .await?;
        }
        Ok(())
    }

    /// Logs in with the token of a link: an invitation's (it is accepted: the representative becomes active) or a
    /// login link's (it is used up). The principal of the representative.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `token` when it is malformed, unknown in the tenant, used, replaced or expired;
    /// [`Error::Storage`] when the store cannot be read or written.
    pub async fn login(&self, tenant: TenantId, token: &str) -> Result<Principal> {
        let token = InvitationToken::parse(token)?;
        let r = self
            .commerce
            .store()
            .representative_by_token(tenant, &token.digest())
            .await?
            .ok_or_else(|| Error::invalid("token", "this link is not valid"))?;
        let ctx = Principal::of(&r).context();
        let version = r.version();
        let cmd = if r.is_active() {
            RepresentativeCommand::Login(token)
        } else {
            RepresentativeCommand::Accept(token)
        };
        let next = self.change(&ctx, r, version, cmd, None).await?;
        Ok(Principal::of(&next))
    }

    /// The principal of an active representative (for each request of a session that names it).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the tenant has no such representative, or it is not active (revoked, or not yet
    /// accepted); [`Error::Storage`] when the store cannot be read.
    pub async fn principal(&self, tenant: TenantId, id: RepresentativeId) -> Result<Principal> {
        let r = self.commerce.store().representative(tenant, id).await?;
        if !r.is_active() {
            return Err(Error::not_found("representative", id));
        }
        Ok(Principal::of(&r))
    }

    /// The principal of a session that began in `epoch` ([`Principal::session_epoch`] at its login): the
    /// representative is active and has not logged out since. What a web portal calls on each request of a session.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (commerce, ctx) = crm_core::conformance::model::example_sales().await?;
    /// use crm_core::partner::NewPartner;
    /// use crm_core::portal::{Right, Rights};
    /// use crm_core::service::PortalService;
    /// let new = NewPartner::company("Acme SRL").with_contact("Maria Pop", Some("maria@acme.example"), None);
    /// let acme = commerce.crm().create_partner(&ctx, new).await?.record;
    /// let portal = PortalService::new(commerce);
    /// let invited = portal.invite(&ctx, acme.id(), acme.contacts()[0].id, Rights::none().with(Right::Statement)).await?;
    /// let me = portal.login(ctx.tenant, invited.token.as_str()).await?;
    /// let epoch = me.session_epoch();
    /// assert_eq!(portal.session(ctx.tenant, me.representative(), epoch).await?, me);
    /// portal.logout(&me).await?;
    /// let err = portal.session(ctx.tenant, me.representative(), epoch).await.unwrap_err();
    /// assert!(matches!(err, Error::NotFound { entity: "session", .. }));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] on `representative` when the tenant has none with this id or it is not active, on
    /// `session` when the representative logged out since; [`Error::Storage`] when the store cannot be read.
    pub async fn session(
        &self,
        tenant: TenantId,
        id: RepresentativeId,
        epoch: u32,
    ) -> Result<Principal> {
        let p = self.principal(tenant, id).await?;
        if p.session_epoch != epoch {
            return Err(Error::not_found("session", id));
        }
        Ok(p)
    }

    /// Logs the representative out everywhere: every session begun so far ends (their cookies stop working).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the representative is no longer active; [`Error::Conflict`] when it changed at
    /// this moment (log out again); [`Error::Storage`] when the store cannot be read or written.
    pub async fn logout(&self, who: &Principal) -> Result<()> {
        let r = self
            .commerce
            .store()
            .representative(who.tenant, who.representative)
            .await?;
        if r.partner() != who.partner {
            return Err(Error::not_found("representative", who.representative));
        }
        let version = r.version();
        self.change(
            &who.context(),
            r,
            version,
            RepresentativeCommand::EndSessions,
            None,
        )
        .await?;
        Ok(())
    }

    /// The clock's time now (a web portal dates its sessions with it).
    pub fn now(&self) -> crate::time::Timestamp {
        self.commerce.crm().clock().now()
    }

    /// The tenant's business day today.
    pub fn today(&self) -> NaiveDate {
        self.commerce.today()
    }

    // ------------------------------------------------------------------ the representative's side

    /// The partner's statement of account on `as_of` (the tenant's business day when `None`): balances per
    /// currency and open items at their residual.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the representative is no longer active; [`Error::Forbidden`] without the
    /// `statement` right; [`Error::Invalid`] on `as_of` out of range; [`Error::Storage`] when the store cannot be
    /// read.
    pub async fn statement(&self, who: &Principal, as_of: Option<NaiveDate>) -> Result<Statement> {
        let p = self.authorize(who, Right::Statement).await?;
        let as_of = crate::time::check_business_date(
            "as_of",
            as_of.unwrap_or_else(|| self.commerce.today()),
        )?;
        let balances = self
            .commerce
            .balances(p.tenant, p.partner, Some(as_of))
            .await?;
        let open_items = self
            .commerce
            .open_items(p.tenant, p.partner, Some(as_of))
            .await?;
        Ok(Statement {
            as_of,
            balances,
            open_items,
        })
    }

    /// The partner's documents, newest first, `limit` (1 to [`MAX_PAGE`]) after `after` (the issue date and id of
    /// the previous page's last document).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the representative is no longer active; [`Error::Forbidden`] without the
    /// `documents` right; [`Error::Invalid`] on `limit` out of range; [`Error::Storage`] when the store cannot be
    /// read.
    pub async fn documents(
        &self,
        who: &Principal,
        after: Option<(NaiveDate, DocumentId)>,
        limit: u32,
    ) -> Result<Vec<Document>> {
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(Error::invalid("limit", format!("between 1 and {MAX_PAGE}")));
        }
        self.list(who, PortalKey::Documents { after, limit }).await
    }

    /// One of the partner's documents.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the document is not the partner's (another partner's or tenant's reads so too) or
    /// the representative is no longer active; [`Error::Forbidden`] without the `documents` right;
    /// [`Error::Storage`] when the store cannot be read.
    pub async fn document(&self, who: &Principal, id: DocumentId) -> Result<Document> {
        self.one(who, PortalKey::Document(id), "document", id).await
    }

    /// The partner's requests, due first, then id.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the representative is no longer active; [`Error::Forbidden`] without the
    /// `requests` right; [`Error::Storage`] when the store cannot be read.
    pub async fn requests(&self, who: &Principal, page: PageRequest) -> Result<Page<Request>> {
        let p = self.authorize(who, Right::Requests).await?;
        let q = RequestQuery {
            partner: Some(p.partner),
            page,
            ..RequestQuery::default()
        };
        self.commerce
            .crm()
            .store()
            .query_requests(p.tenant, &q)
            .await
    }

    /// One of the partner's requests.
    ///
    /// # Errors
    ///
    /// As [`PortalService::document`], with the `requests` right.
    pub async fn request(&self, who: &Principal, id: RequestId) -> Result<Request> {
        self.one(who, PortalKey::Request(id), "request", id).await
    }

    /// The replies on one of the partner's requests (its comments, the staff's and the representatives'), oldest
    /// first, at most 200. Every comment on a request the partner can see is a reply: the staff keeps internal notes
    /// on the lead or the partner.
    ///
    /// # Errors
    ///
    /// As [`PortalService::request`].
    pub async fn replies(&self, who: &Principal, id: RequestId) -> Result<Vec<Comment>> {
        let r: Request = self.one(who, PortalKey::Request(id), "request", id).await?;
        let page = PageRequest::first(200);
        let crm = self.commerce.crm();
        let mut all = crm
            .comments(who.tenant, CommentTarget::Request(r.id()), &page)
            .await?
            .items;
        all.reverse();
        Ok(all)
    }

    /// Replies on one of the partner's requests, as its representative.
    ///
    /// # Errors
    ///
    /// As [`PortalService::request`]; [`Error::Invalid`] on `body` (empty, longer than 20 000 characters, control
    /// characters); [`Error::Storage`] when the store cannot be read or written.
    pub async fn reply(&self, who: &Principal, id: RequestId, body: &str) -> Result<Comment> {
        let r: Request = self.one(who, PortalKey::Request(id), "request", id).await?;
        let crm = self.commerce.crm();
        let target = CommentTarget::Request(r.id());
        Ok(crm.comment(&who.context(), target, body).await?.record)
    }

    /// Opens a request from the portal: a tracked request about the partner with source portal, assigned to the
    /// account owner (or the fallback assignee), so the communication rules tell them.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the representative is no longer active; [`Error::Forbidden`] without the
    /// `requests` right; [`Error::Invalid`] on `title` (empty, or more than one line), on `body` (empty or longer
    /// than [`MAX_REQUEST_BODY`] bytes), on `owner` when nobody answers the partner's requests;
    /// [`Error::Storage`] when the store cannot be read or written.
    pub async fn open_request(&self, who: &Principal, ask: PortalRequest) -> Result<Request> {
        let body = ask.body.trim();
        if body.is_empty() {
            return Err(Error::invalid("body", "write what you need"));
        }
        if body.len() > MAX_REQUEST_BODY {
            return Err(Error::invalid(
                "body",
                format!("at most {MAX_REQUEST_BODY} bytes"),
            ));
        }
        if ask.title.contains(['\n', '\r']) {
            return Err(Error::invalid("title", "one line"));
        }
        let p = self.authorize(who, Right::Requests).await?;
        let crm = self.commerce.crm();
        let partner = self.partner_of(&p).await?;
        let assignee = partner
            .owner()
            .or(self.fallback_assignee)
            .ok_or_else(|| Error::invalid("owner", "the partner has no account owner to answer"))?;
        let new = NewRequest {
            lead: None,
            partner: Some(p.partner),
            title: ask.title,
            description: Some(body.to_string()),
            kind: Some(ask.kind.as_str().to_string()),
            assignee: Some(assignee),
            due: None,
            priority: crate::lead::Priority::Normal,
        };
        Ok(crm.open_request(&p.context(), new).await?.record)
    }

    /// The quotations made for the partner, newest number first.
    ///
    /// # Errors
    ///
    /// As [`PortalService::documents`], with the `quotations` right.
    pub async fn quotations(&self, who: &Principal) -> Result<Vec<Quotation>> {
        self.list(who, PortalKey::Quotations).await
    }

    /// Accepts (`accept`) or declines a sent quotation made for the partner, as its representative; accepting wins
    /// the quotation's lead.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the quotation is not the partner's; [`Error::Forbidden`] without the
    /// `quotations` right; [`Error::Conflict`] when `expected_version` is stale; [`Error::Invalid`] on `status`
    /// when it is not sent or no longer valid; [`Error::Storage`] when the store cannot be read or written.
    pub async fn answer_quotation(
        &self,
        who: &Principal,
        id: QuotationId,
        expected_version: u64,
        accept: bool,
    ) -> Result<Quotation> {
        let key = PortalKey::Quotation(id);
        let _: Quotation = self.one(who, key, "quotation", id).await?;
        let ctx = who.context();
        if accept {
            self.commerce
                .accept_quotation(&ctx, id, expected_version, true)
                .await
        } else {
            let cmd = crate::sales::QuotationCommand::Decline {
                reason: Some("declined in the portal".into()),
            };
            self.commerce
                .quotation_command(&ctx, id, expected_version, cmd)
                .await
        }
    }

    /// The partner's contracts, by start.
    ///
    /// # Errors
    ///
    /// As [`PortalService::documents`], with the `documents` right.
    pub async fn contracts(&self, who: &Principal) -> Result<Vec<Contract>> {
        self.list(who, PortalKey::Contracts).await
    }

    /// Asks for a renewal or a new offer: a lead about the partner with source portal (medium `portal`), naming
    /// the earlier contract when there is one, owned by the account owner.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when `earlier` is not the partner's contract, or the representative is no longer active;
    /// [`Error::Forbidden`] without the `contracts` right; [`Error::Invalid`] on `title` when empty;
    /// [`Error::Storage`] when the store cannot be read or written.
    pub async fn ask_for_contract(
        &self,
        who: &Principal,
        title: &str,
        note: Option<String>,
        earlier: Option<ContractId>,
    ) -> Result<Lead> {
        let p = self.authorize(who, Right::Contracts).await?;
        let mut description = note;
        if let Some(id) = earlier {
            let found: Vec<Contract> = self
                .of_partner(p.tenant, p.partner, PortalKey::Contract(id))
                .await?;
            let c = found
                .into_iter()
                .next()
                .ok_or_else(|| Error::not_found("contract", id))?;
            let line = format!("Renewal of contract {}", c.number());
            description = Some(match description {
                Some(n) => format!("{line}\n\n{n}"),
                None => line,
            });
        }
        let crm = self.commerce.crm();
        let partner = self.partner_of(&p).await?;
        let mut new = NewLead::for_partner(p.partner, title);
        new.description = description;
        new.contact = Some(p.contact);
        new.owner = partner.owner();
        new.source = LeadSource {
            campaign: None,
            medium: Some("portal".into()),
            source: earlier.map(|c| format!("contract {c}")),
        };
        Ok(crm.enter_lead(&p.context(), new).await?.record)
    }

    /// Who the representative is and whom it acts for: the partner's name and roles (a customer reads its
    /// receivables, a vendor its payables, an employee its advances and reimbursements), its own name and rights.
    /// Needs no particular right, only an active representative.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the representative is no longer active; [`Error::Storage`] when the store cannot
    /// be read.
    pub async fn account(&self, who: &Principal) -> Result<Account> {
        let r = self.active(who).await?;
        let partner = self.partner_of(who).await?;
        Ok(Account {
            partner: partner.name().to_string(),
            roles: partner.roles().iter().copied().collect(),
            representative: r.name().to_string(),
            email: r.email().to_string(),
            rights: r.rights().clone(),
        })
    }

    /// The partner's balances at each of `days` (at most [`MAX_HISTORY`], each a business date), in the order
    /// given: the points of a chart of the balance over time.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the representative is no longer active; [`Error::Forbidden`] without the
    /// `statement` right; [`Error::Invalid`] on `days` (more than [`MAX_HISTORY`]) or `days[i]` (out of range);
    /// [`Error::Storage`] when the store cannot be read.
    pub async fn balance_history(
        &self,
        who: &Principal,
        days: &[NaiveDate],
    ) -> Result<Vec<(NaiveDate, Vec<Balance>)>> {
        if days.len() > MAX_HISTORY {
            return Err(Error::invalid("days", format!("at most {MAX_HISTORY}")));
        }
        for (i, d) in days.iter().enumerate() {
            crate::time::check_business_date(&format!("days[{i}]"), *d)?;
        }
        let p = self.authorize(who, Right::Statement).await?;
        // The days are checked and the partner is the representative's: one balances read per day, nothing more.
        let store = self.commerce.store();
        let mut out = Vec::with_capacity(days.len());
        for d in days {
            out.push((*d, store.balances(p.tenant, p.partner, *d).await?));
        }
        Ok(out)
    }

    /// The partner's contacts.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the representative is no longer active; [`Error::Forbidden`] without the
    /// `contacts` right; [`Error::Storage`] when the store cannot be read.
    pub async fn contacts(&self, who: &Principal) -> Result<Vec<Contact>> {
        let p = self.authorize(who, Right::Contacts).await?;
        let partner = self.partner_of(&p).await?;
        Ok(partner.contacts().to_vec())
    }

    /// Adds a contact to the partner, as its representative (a `partner_updated` event by the representative).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the representative is no longer active; [`Error::Forbidden`] without the
    /// `contacts` right; [`Error::Invalid`] on `contacts[i].name` (`email`, `phone`, `role`) as
    /// [`CrmService::update_partner`](super::CrmService::update_partner) says, on `name` when the partner has a
    /// contact of that name; [`Error::Conflict`] when the partner changed at this moment; [`Error::Storage`] when
    /// the store cannot be read or written.
    pub async fn add_contact(&self, who: &Principal, contact: NewContact) -> Result<Vec<Contact>> {
        let p = self.authorize(who, Right::Contacts).await?;
        let partner = self.partner_of(&p).await?;
        let name = contact.name.trim();
        if partner
            .contacts()
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(name))
        {
            return Err(Error::invalid(
                "name",
                "the partner has a contact of this name",
            ));
        }
        let mut list: Vec<NewContact> = partner.contacts().iter().map(NewContact::from).collect();
        list.push(contact);
        self.set_contacts(&p, &partner, list).await
    }

    /// Removes one of the partner's contacts, as its representative. A contact with portal access is removed by
    /// the tenant's staff (who revoke it first).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the partner has no such contact (another partner's reads so too), or the
    /// representative is no longer active; [`Error::Forbidden`] without the `contacts` right; [`Error::Invalid`] on
    /// `contact` when it has portal access; [`Error::Conflict`], [`Error::Storage`] as for
    /// [`PortalService::add_contact`].
    pub async fn remove_contact(&self, who: &Principal, id: ContactId) -> Result<Vec<Contact>> {
        let p = self.authorize(who, Right::Contacts).await?;
        let partner = self.partner_of(&p).await?;
        if !partner.has_contact(id) {
            return Err(Error::not_found("contact", id));
        }
        let reps = self.representatives(p.tenant, p.partner).await?;
        if reps.iter().any(|r| r.contact() == id) {
            return Err(Error::invalid(
                "contact",
                "has portal access: ask us to revoke it",
            ));
        }
        let list = partner
            .contacts()
            .iter()
            .filter(|c| c.id != id)
            .map(NewContact::from)
            .collect();
        self.set_contacts(&p, &partner, list).await
    }

    async fn set_contacts(
        &self,
        p: &Principal,
        partner: &Partner,
        contacts: Vec<NewContact>,
    ) -> Result<Vec<Contact>> {
        let patch = PartnerPatch {
            contacts: Some(contacts),
            ..PartnerPatch::default()
        };
        let crm = self.commerce.crm();
        let out = crm
            .update_partner(&p.context(), partner.id(), partner.version(), patch)
            .await?;
        Ok(out.record.contacts().to_vec())
    }

    // ------------------------------------------------------------------ paying open items

    /// Pays open items of the partner (one or several, each whole or in part) through the host's
    /// [`PaymentProvider`](crate::portal::PaymentProvider), under the caller's idempotency `key`: the attempt is
    /// stored first (reserving its amounts), then handed to the provider; a confirmed payment is recorded at once as
    /// one payment document allocated to the items, so the statement shows the new residuals. The same key again
    /// returns the same attempt and pays nothing more.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when an item is not among the partner's open items, or the representative is no longer
    /// active; [`Error::Forbidden`] without the `pay` right; [`Error::Invalid`] as
    /// [`PaymentAttempt::plan`](crate::portal::PaymentAttempt::plan) says (on `items[i].amount` above what is open
    /// and not reserved, zero or negative; on `items[i].document` already settled; on `items` of several
    /// currencies), on `key` when another partner used it, and on `payments` when no provider is configured;
    /// [`Error::Storage`] when the store cannot be read or written. A provider's error is no error here: the
    /// attempt stays started, to be confirmed later.
    pub async fn pay(
        &self,
        who: &Principal,
        key: &str,
        items: &[PayItem],
    ) -> Result<PaymentAttempt> {
        let provider = self
            .payments
            .clone()
            .ok_or_else(|| Error::invalid("payments", "no payment provider is configured"))?;
        let p = self.authorize(who, Right::Pay).await?;
        if let Some(known) = self.attempt_by_key(p.tenant, key).await? {
            return self.same_attempt(&p, known);
        }
        let crm = self.commerce.crm();
        let open = self.commerce.open_items(p.tenant, p.partner, None).await?;
        let reserving: Vec<PaymentAttempt> = self
            .of_partner(p.tenant, p.partner, PortalKey::PaymentsInProgress)
            .await?;
        let now = crm.clock().now();
        let payer = Payer {
            tenant: p.tenant,
            partner: p.partner,
            representative: p.representative,
        };
        // An item of the partner's that is not open: settled already (or no invoice), said so by field.
        for (i, item) in items.iter().enumerate() {
            if !open.iter().any(|o| o.document == item.document) {
                let key = PortalKey::Document(item.document);
                let doc: Vec<Document> = self.of_partner(p.tenant, p.partner, key).await?;
                if !doc.is_empty() {
                    let field = format!("items[{i}].document");
                    return Err(Error::invalid(field, "already settled, or not an invoice"));
                }
            }
        }
        let payable: Vec<Payable> = open
            .iter()
            .map(|o| Payable {
                document: o.document,
                number: o.number.clone(),
                kind: o.kind,
                currency: o.currency,
                open: o.open,
            })
            .collect();
        let attempt = PaymentAttempt::plan(payer, key, items, &payable, &reserving, now)?;
        let event = EventKind::PortalPaymentStarted {
            key: attempt.key().to_string(),
            total: format!("{} {}", attempt.total(), attempt.currency().code()),
        };
        let ctx = p.context();
        let cs = ChangeSet::from_iter([
            Write::from(CommerceWrite::InsertPaymentAttempt(attempt.clone())),
            Write::AppendEvent(DomainEvent::new(
                &ctx,
                now,
                partner_subject(p.partner),
                event,
            )),
        ]);
        match crm.commit(&ctx, cs).await {
            Ok(_) => {}
            // Two tabs with the same key at once: the other one stored it first.
            Err(Error::AlreadyExists { .. }) => {
                if let Some(known) = self.attempt_by_key(p.tenant, key).await? {
                    return self.same_attempt(&p, known);
                }
            }
            Err(e) => return Err(e),
        }
        match provider.start(&attempt).await {
            Ok(answer) => self.gateway_answer(p.tenant, attempt.key(), answer).await,
            // A timeout or a lost answer: the attempt stays started until the host confirms or fails it.
            Err(_) => Ok(attempt),
        }
    }

    /// Records what the host's gateway answered about the attempt with idempotency `key` (the host calls this from
    /// its webhook; [`PortalService::pay`] calls it with the provider's immediate answer). A confirmation records one
    /// payment document, allocated to the items (each at most what is still open), and confirms the attempt; a
    /// confirmation recorded twice, after a crash or twice at once records one document. A failure frees the
    /// attempt's amounts; pending keeps them reserved.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the tenant has no attempt with this key; [`Error::Invalid`] on `status` when the
    /// answer does not fit (confirming a failed one, failing a confirmed one); [`Error::Storage`] when the store
    /// cannot be read or written.
    pub async fn gateway_answer(
        &self,
        tenant: TenantId,
        key: &str,
        answer: ProviderAnswer,
    ) -> Result<PaymentAttempt> {
        let attempt = self.known_attempt(tenant, key).await?;
        let ctx = host_context(tenant);
        match answer {
            ProviderAnswer::Confirmed { reference } => match attempt.status() {
                AttemptStatus::Confirmed => Ok(attempt),
                AttemptStatus::Failed => Err(Error::invalid("status", "the payment failed")),
                _ => self.confirm(tenant, key, attempt, reference).await,
            },
            ProviderAnswer::Pending { reference } => {
                self.settle_attempt(&ctx, attempt, AttemptStatus::Pending, Some(reference), None)
                    .await
            }
            ProviderAnswer::Failed { reason } => {
                self.settle_attempt(&ctx, attempt, AttemptStatus::Failed, None, Some(reason))
                    .await
            }
        }
    }

    /// Records the attempt's payment document (once) and confirms it.
    async fn confirm(
        &self,
        tenant: TenantId,
        key: &str,
        attempt: PaymentAttempt,
        reference: String,
    ) -> Result<PaymentAttempt> {
        let ctx = host_context(tenant);
        let number = attempt.document_number();
        let recorded = self
            .commerce
            .store()
            .document_by_number(tenant, crate::commerce::DocumentKind::Payment, &number)
            .await?;
        if recorded.is_none() {
            let open = self
                .commerce
                .open_items(tenant, attempt.partner(), None)
                .await?;
            let allocations = attempt
                .items()
                .iter()
                .filter_map(|i| {
                    let still = open
                        .iter()
                        .find(|o| o.document == i.document)
                        .map_or(rust_decimal::Decimal::ZERO, |o| o.open);
                    let amount = i.amount.min(still);
                    (amount > rust_decimal::Decimal::ZERO).then(|| Allocation {
                        number: i.number.clone(),
                        amount,
                    })
                })
                .collect();
            let mut payment = NewDocument::payment(
                &number,
                attempt.partner(),
                self.commerce.today(),
                attempt.currency().code(),
                crate::commerce::PaymentDirection::Received,
                attempt.total(),
            );
            payment.allocations = allocations;
            if let Err(e) = self.commerce.record_document(&ctx, payment).await {
                // Recorded meanwhile by a confirmation running at once (it may have allocated from other
                // residuals, so the contents differ): its document is the payment; otherwise the error stands.
                let kind = crate::commerce::DocumentKind::Payment;
                let store = self.commerce.store();
                if store
                    .document_by_number(tenant, kind, &number)
                    .await?
                    .is_none()
                {
                    return Err(e);
                }
            }
        }
        let reference = Some(reference);
        match self
            .settle_attempt(&ctx, attempt, AttemptStatus::Confirmed, reference, None)
            .await
        {
            // Confirmed at once by another call: its document is the one recorded.
            Err(Error::Conflict { .. }) => self.known_attempt(tenant, key).await,
            other => other,
        }
    }

    /// The partner's payment attempts, newest first.
    ///
    /// # Errors
    ///
    /// As [`PortalService::documents`], with the `pay` right.
    pub async fn payments(&self, who: &Principal) -> Result<Vec<PaymentAttempt>> {
        self.list(who, PortalKey::Payments).await
    }

    /// The tenant's attempt with `key`; not found when there is none.
    async fn known_attempt(&self, tenant: TenantId, key: &str) -> Result<PaymentAttempt> {
        self.attempt_by_key(tenant, key)
            .await?
            .ok_or_else(|| Error::not_found("payment", key))
    }

    async fn attempt_by_key(&self, tenant: TenantId, key: &str) -> Result<Option<PaymentAttempt>> {
        self.commerce
            .store()
            .payment_attempt_by_key(tenant, key.trim())
            .await
    }

    /// An attempt found by the caller's key: its own partner's is returned as it is; another partner's key is
    /// refused without saying more.
    fn same_attempt(&self, p: &Principal, known: PaymentAttempt) -> Result<PaymentAttempt> {
        if known.partner() == p.partner {
            Ok(known)
        } else {
            Err(Error::invalid("key", "this key is taken: use a new one"))
        }
    }

    async fn settle_attempt(
        &self,
        ctx: &Context,
        attempt: PaymentAttempt,
        status: AttemptStatus,
        reference: Option<String>,
        failure: Option<String>,
    ) -> Result<PaymentAttempt> {
        let crm = self.commerce.crm();
        let now = crm.clock().now();
        let next = attempt.settle(status, reference, failure, now)?;
        let mut cs = ChangeSet::from_iter([Write::from(CommerceWrite::UpdatePaymentAttempt {
            attempt: next.clone(),
            expected_version: attempt.version(),
        })]);
        let event = match status {
            AttemptStatus::Confirmed => Some(EventKind::PortalPaymentConfirmed {
                key: next.key().to_string(),
                document: next.document_number(),
            }),
            AttemptStatus::Failed => Some(EventKind::PortalPaymentFailed {
                key: next.key().to_string(),
                reason: next.failure().unwrap_or_default().to_string(),
            }),
            _ => None,
        };
        if let Some(e) = event {
            let subject = partner_subject(next.partner());
            cs.push(Write::AppendEvent(DomainEvent::new(ctx, now, subject, e)));
        }
        crm.commit(ctx, cs).await?;
        Ok(next)
    }

    // ------------------------------------------------------------------ inside

    /// The representative behind `who` as stored now: active, of the principal's partner, with `right`; its
    /// principal (with the stored rights).
    async fn authorize(&self, who: &Principal, right: Right) -> Result<Principal> {
        let r = self.active(who).await?;
        r.rights().require(right)?;
        Ok(Principal::of(&r))
    }

    /// The representative behind `who` as stored now, when active and of the principal's partner.
    async fn active(&self, who: &Principal) -> Result<Representative> {
        self.commerce
            .store()
            .fetch_commerce(
                who.tenant,
                &CommerceKey::OfPartner {
                    partner: who.partner,
                    key: PortalKey::Representatives,
                },
            )
            .await?
            .into_iter()
            .find_map(|x| match x {
                CommerceRecord::Representative(r) if r.id() == who.representative => Some(r),
                _ => None,
            })
            .filter(Representative::is_active)
            .ok_or_else(|| Error::not_found("representative", who.representative))
    }

    /// The partner the principal acts for.
    async fn partner_of(&self, p: &Principal) -> Result<Partner> {
        self.commerce
            .crm()
            .store()
            .partner(p.tenant, p.partner)
            .await
    }

    async fn of_partner<T: Pick<CommerceRecord>>(
        &self,
        tenant: TenantId,
        partner: PartnerId,
        key: PortalKey,
    ) -> Result<Vec<T>> {
        let rows = self
            .commerce
            .store()
            .fetch_commerce(tenant, &CommerceKey::OfPartner { partner, key })
            .await?;
        Ok(rows.into_iter().filter_map(T::pick).collect())
    }

    /// The partner's records `key` names, when the representative holds the right the key needs
    /// ([`right_for`]).
    async fn list<T: Pick<CommerceRecord>>(
        &self,
        who: &Principal,
        key: PortalKey,
    ) -> Result<Vec<T>> {
        let p = self.authorize(who, right_for(&key)).await?;
        self.of_partner(p.tenant, p.partner, key).await
    }

    /// The partner's one record `key` names, as [`PortalService::list`]; not found otherwise (another partner's or
    /// tenant's id).
    async fn one<T: Pick<CommerceRecord>>(
        &self,
        who: &Principal,
        key: PortalKey,
        entity: &'static str,
        id: impl std::fmt::Display,
    ) -> Result<T> {
        let found: Vec<T> = self.list(who, key).await?;
        found
            .into_iter()
            .next()
            .ok_or_else(|| Error::not_found(entity, id))
    }

    /// Reads the tenant's representative `id` and applies a staff member's `cmd` to it.
    async fn staff_change(
        &self,
        ctx: &Context,
        id: RepresentativeId,
        expected_version: u64,
        cmd: RepresentativeCommand,
    ) -> Result<Representative> {
        let r = self.commerce.store().representative(ctx.tenant, id).await?;
        self.change(ctx, r, expected_version, cmd, None).await
    }

    /// Applies `cmd` to `r` (stored at `expected_version`) with its event, and `mail` when given, in one change.
    async fn change(
        &self,
        ctx: &Context,
        r: Representative,
        expected_version: u64,
        cmd: RepresentativeCommand,
        mail: Option<OutboxMessage>,
    ) -> Result<Representative> {
        super::check_version("representative", r.id(), expected_version, r.version())?;
        let crm = self.commerce.crm();
        let now = crm.clock().now();
        let (id, name) = (r.id(), r.name().to_string());
        let event = match &cmd {
            RepresentativeCommand::Accept(_) => Some(EventKind::RepresentativeAccepted {
                representative: id,
                name,
            }),
            RepresentativeCommand::Revoke => Some(EventKind::RepresentativeRevoked {
                representative: id,
                name,
            }),
            RepresentativeCommand::SetRights(to) => Some(EventKind::RepresentativeRightsChanged {
                representative: id,
                name,
                from: r.rights().to_string(),
                to: to.to_string(),
            }),
            RepresentativeCommand::Reinvite(_) => Some(EventKind::RepresentativeInvited {
                representative: id,
                name,
                rights: r.rights().to_string(),
            }),
            RepresentativeCommand::Login(_) => Some(EventKind::RepresentativeLoggedIn {
                representative: id,
                name,
            }),
            // A link sent, or a log-out, is no action with the customer; the login it leads to is.
            RepresentativeCommand::IssueLogin(_) | RepresentativeCommand::EndSessions => None,
        };
        let next = r.apply(cmd, now)?;
        let mut cs = ChangeSet::from_iter([Write::from(CommerceWrite::UpdateRepresentative {
            representative: next.clone(),
            expected_version,
        })]);
        if let Some(e) = event {
            let subject = partner_subject(next.partner());
            cs.push(Write::AppendEvent(DomainEvent::new(ctx, now, subject, e)));
        }
        if let Some(m) = mail {
            cs.push(Write::EnqueueOutbox(m));
        }
        crm.commit(ctx, cs).await?;
        Ok(next)
    }

    /// The invitation e-mail to `r` (the token is in its vars until it is delivered).
    fn invitation(
        &self,
        ctx: &Context,
        r: &Representative,
        partner: &str,
        token: &InvitationToken,
        now: crate::time::Timestamp,
    ) -> OutboxMessage {
        let expires = now + chrono::Duration::days(crate::portal::INVITATION_DAYS);
        let mut vars = serde_json::json!({
            "name": r.name(),
            "partner": partner,
            "token": token.as_str(),
            "expires_at": expires,
        });
        if let (Some(base), Some(all)) = (&self.login_base, vars.as_object_mut()) {
            all.insert(
                "login_url".into(),
                serde_json::json!(format!("{base}{}", token.as_str())),
            );
        }
        let recipient = ResolvedRecipient {
            phone: None,
            user: None,
            name: Some(r.name().to_string()),
            email: Some(r.email().to_string()),
        };
        let payload = Payload {
            subject: String::new(),
            body: String::new(),
            template: Some(INVITATION_TEMPLATE.into()),
            vars,
            action: None,
        };
        let mut m = OutboxMessage::pending(
            ctx.tenant,
            String::new(),
            "portal_invitation",
            Channel::Email,
            recipient,
            payload,
            now,
        )
        .about(partner_subject(r.partner()));
        m.idempotency_key = format!("portal_invitation/{}/{}", r.id(), &token.digest()[..16]);
        m
    }
}

/// The subject of an event about a partner alone.
fn partner_subject(partner: PartnerId) -> Subject {
    Subject {
        partner: Some(partner),
        ..Subject::default()
    }
}

/// The right a portal read needs: one table, so no call can ask with the wrong one.
fn right_for(key: &PortalKey) -> Right {
    match key {
        PortalKey::Request(_) => Right::Requests,
        PortalKey::Quotation(_) | PortalKey::Quotations => Right::Quotations,
        PortalKey::Representatives => Right::Contacts,
        PortalKey::Payments | PortalKey::PaymentsInProgress => Right::Pay,
        // Documents, contracts, and any read added later: the documents right.
        _ => Right::Documents,
    }
}

/// The context of the host's calls about payments (its gateway's confirmations): the engine, through the portal.
fn host_context(tenant: TenantId) -> Context {
    Context {
        tenant,
        actor: crate::actor::Actor::System,
        source: crate::actor::Source::Portal,
    }
}
