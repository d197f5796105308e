//! Domain events, which are also the append-only activity log.
//!
//! Every change the engine makes produces one or more [`DomainEvent`]s, written in the same storage transaction as
//! the change. The stored events *are* the activity log: a lead's or partner's timeline is the events that name it
//! in their [`Subject`], newest first. Rules (and any host subscriber) receive the same events after the commit.

use crate::actor::{Actor, Source};
use crate::id::{
    CommentId, EventId, LeadId, LostReasonId, PartnerId, PipelineId, RequestId, StageId, TenantId,
    UserId,
};
use crate::money::Money;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// One field's change, with its value before and after (as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    /// The field's name.
    pub field: String,
    /// The value before.
    pub before: serde_json::Value,
    /// The value after.
    pub after: serde_json::Value,
}

impl FieldChange {
    /// A change of `field` from `before` to `after`.
    pub fn new<T: Serialize + ?Sized>(field: &str, before: &T, after: &T) -> Self {
        Self {
            field: field.to_string(),
            before: serde_json::to_value(before).unwrap_or(serde_json::Value::Null),
            after: serde_json::to_value(after).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// What a comment is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum CommentTarget {
    /// A lead.
    Lead(LeadId),
    /// A partner.
    Partner(PartnerId),
    /// A request.
    Request(RequestId),
}

/// The records an event concerns: the timeline of each of them shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Subject {
    /// The partner concerned.
    pub partner: Option<PartnerId>,
    /// The lead concerned.
    pub lead: Option<LeadId>,
    /// The request concerned.
    pub request: Option<RequestId>,
}

/// The status of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Not started.
    Open,
    /// Being worked on.
    InProgress,
    /// Finished.
    Done,
    /// Dropped.
    Cancelled,
}

impl RequestStatus {
    /// Whether the request still needs work.
    pub fn is_active(&self) -> bool {
        matches!(self, Self::Open | Self::InProgress)
    }

    /// The status as a lower-case word.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::InProgress => "in_progress",
            Self::Done => "done",
            Self::Cancelled => "cancelled",
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A partner was created.
    PartnerCreated {
        /// Its name.
        name: String,
    },
    /// A partner's fields changed.
    PartnerUpdated {
        /// The changes.
        changes: Vec<FieldChange>,
    },
    /// A lead was entered.
    LeadEntered {
        /// Its title.
        title: String,
        /// Its pipeline.
        pipeline: PipelineId,
        /// Its first stage.
        stage: StageId,
        /// Its owner.
        owner: Option<UserId>,
        /// Its expected revenue.
        expected_revenue: Option<Money>,
    },
    /// A lead's fields changed.
    LeadUpdated {
        /// The changes.
        changes: Vec<FieldChange>,
    },
    /// A lead moved between stages.
    LeadStageMoved {
        /// The stage it left.
        from: StageId,
        /// The stage it entered.
        to: StageId,
        /// The name of the stage it left.
        from_name: String,
        /// The name of the stage it entered.
        to_name: String,
    },
    /// A lead was won.
    LeadWon {
        /// The won stage it is in.
        stage: StageId,
    },
    /// A lead was lost.
    LeadLost {
        /// The reason, from the tenant's list.
        reason: LostReasonId,
        /// The reason's name at the time.
        reason_name: String,
        /// The competitor that won, if known.
        competitor: Option<String>,
        /// A note.
        note: Option<String>,
    },
    /// A won or lost lead was reopened.
    LeadReopened {
        /// The stage it reopened in.
        stage: StageId,
    },
    /// A lead's score changed (`crm-scoring`; the lead's `score` holds it with its reasons).
    LeadScored {
        /// The new score, 0–100.
        value: u8,
        /// The score before, if it had one.
        previous: Option<u8>,
    },
    /// A comment was added.
    CommentAdded {
        /// The comment.
        comment: CommentId,
        /// What it is on.
        target: CommentTarget,
        /// Its first 140 characters.
        excerpt: String,
    },
    /// A request was opened.
    RequestOpened {
        /// Its title.
        title: String,
        /// Its kind, if any.
        kind: Option<String>,
        /// Who must do it.
        assignee: UserId,
        /// When it is due.
        due: Option<Timestamp>,
    },
    /// A request's fields changed.
    RequestUpdated {
        /// The changes.
        changes: Vec<FieldChange>,
    },
    /// A request's status changed.
    RequestStatusChanged {
        /// The status before.
        from: RequestStatus,
        /// The status after.
        to: RequestStatus,
    },
    /// A sales invoice, credit note or vendor bill was recorded (or replaced by a new version).
    InvoiceRecorded {
        /// The document.
        document: crate::id::DocumentId,
        /// Its kind.
        kind: crate::kinds::DocumentKind,
        /// The host's number.
        number: String,
        /// Its total in its currency.
        total: Money,
        /// The campaign it is attributed to.
        campaign: Option<crate::id::CampaignId>,
        /// Its version (above 1 when it replaced an earlier one).
        version: u64,
    },
    /// A payment was recorded (or replaced).
    PaymentRecorded {
        /// The document.
        document: crate::id::DocumentId,
        /// The host's number.
        number: String,
        /// The amount.
        amount: Money,
        /// Its version.
        version: u64,
        /// Which way the money moved (`None` in events recorded before the direction was kept).
        #[serde(default)]
        direction: Option<crate::kinds::PaymentDirection>,
    },
    /// A campaign was created.
    CampaignCreated {
        /// The campaign.
        campaign: crate::id::CampaignId,
        /// Its name.
        name: String,
    },
    /// A campaign was launched: its audience snapshotted and its calls handed out.
    CampaignLaunched {
        /// The campaign.
        campaign: crate::id::CampaignId,
        /// How many targets (those held out not counted).
        targets: u64,
        /// Each agent's call list: how many calls they were given (empty for campaigns without calls, and in
        /// events recorded before call lists were kept).
        #[serde(default)]
        calls: Vec<AgentCalls>,
        /// How many of the audience were held out (the control group, contacted by nobody).
        #[serde(default)]
        held_out: u64,
    },
    /// A campaign was closed.
    CampaignClosed {
        /// The campaign.
        campaign: crate::id::CampaignId,
    },
    /// A cost was booked on a campaign.
    CampaignCostAdded {
        /// The campaign.
        campaign: crate::id::CampaignId,
        /// The amount.
        amount: Money,
    },
    /// A campaign's booked costs passed its budget (the cost that crossed it was booked in the same change).
    BudgetExceeded {
        /// The campaign.
        campaign: crate::id::CampaignId,
        /// Its name.
        name: String,
        /// Its budget.
        budget: Money,
        /// Every cost booked on it so far, in the reporting currency.
        spent: Money,
    },
    /// A campaign's costs passed one of the tenant's budget alerts (a share of its budget, in percent: the setting
    /// `campaign.budget_alerts`); once per alert and crossing.
    BudgetThresholdPassed {
        /// The campaign.
        campaign: crate::id::CampaignId,
        /// Its name.
        name: String,
        /// The share of the budget passed, in percent (1–99).
        percent: u8,
        /// Its budget.
        budget: Money,
        /// Every cost booked on it so far, in the reporting currency.
        spent: Money,
    },
    /// An e-mail or SMS campaign's message was set.
    CampaignMessageSet {
        /// The campaign.
        campaign: crate::id::CampaignId,
    },
    /// A send of a campaign put messages in the outbox (one event per transaction of the send).
    CampaignMessagesQueued {
        /// The campaign.
        campaign: crate::id::CampaignId,
        /// Messages queued.
        queued: u64,
        /// Targets skipped (no address, no consent, not rendered).
        skipped: u64,
    },
    /// The host reported what became of a campaign message to the partner (delivered, opened, bounced,
    /// unsubscribed).
    CampaignMessageReported {
        /// The campaign.
        campaign: crate::id::CampaignId,
        /// The target's state after the report.
        status: crate::kinds::SendStatus,
        /// A bounce's reason.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// An agent recorded a call's outcome.
    CallOutcomeRecorded {
        /// The campaign.
        campaign: crate::id::CampaignId,
        /// The outcome.
        outcome: crate::kinds::OutcomeKind,
        /// The lead created, when the partner was interested.
        lead: Option<LeadId>,
    },
    /// A quotation was made (revision 1, a draft).
    QuotationCreated {
        /// The quotation revision.
        quotation: crate::id::QuotationId,
        /// Its number.
        number: String,
        /// Its total.
        total: Money,
    },
    /// A draft quotation's lines, validity or terms changed.
    QuotationEdited {
        /// The quotation revision.
        quotation: crate::id::QuotationId,
        /// Its number.
        number: String,
        /// Its new total.
        total: Money,
    },
    /// A quotation was revised: `quotation` (a new draft) supersedes `supersedes`.
    QuotationRevised {
        /// The new revision.
        quotation: crate::id::QuotationId,
        /// The revision it replaced.
        supersedes: crate::id::QuotationId,
        /// The new revision's number.
        number: String,
        /// Its total.
        total: Money,
    },
    /// A quotation was sent, accepted, declined or expired.
    QuotationStatusChanged {
        /// The quotation revision.
        quotation: crate::id::QuotationId,
        /// Its number.
        number: String,
        /// Its new status.
        status: crate::kinds::QuotationStatus,
    },
    /// A contract was made from an accepted quotation.
    ContractCreated {
        /// The contract.
        contract: crate::id::ContractId,
        /// Its number.
        number: String,
        /// Its value.
        value: Money,
    },
    /// A contract was signed.
    ContractSigned {
        /// The contract.
        contract: crate::id::ContractId,
        /// Its number.
        number: String,
    },
    /// A user logged a call with the customer.
    CallLogged {
        /// The call.
        call: crate::contact::Call,
    },
    /// An e-mail about the record was delivered (logged by the dispatcher once the notifier took it): sent by a
    /// user from a lead or by a rule.
    EmailSent {
        /// The outbox message.
        message: crate::id::OutboxId,
        /// The address it went to.
        to: String,
        /// Its template.
        template: Option<String>,
        /// Who sent it: `user` for a user's e-mail, else the rule's name.
        by: String,
    },
    /// A meeting was scheduled (its invitations were enqueued with it).
    MeetingScheduled {
        /// The meeting.
        meeting: crate::id::MeetingId,
        /// Its title.
        title: String,
        /// Its start.
        starts_at: Timestamp,
    },
    /// A meeting moved or changed its place (`sequence` is the invitation's new `SEQUENCE`).
    MeetingRescheduled {
        /// The meeting.
        meeting: crate::id::MeetingId,
        /// Its new start.
        starts_at: Timestamp,
        /// The invitation's sequence.
        sequence: u32,
    },
    /// A meeting was cancelled (a `METHOD:CANCEL` went to its attendees).
    MeetingCancelled {
        /// The meeting.
        meeting: crate::id::MeetingId,
    },
    /// An attendee answered a meeting invitation.
    MeetingReplied {
        /// The meeting.
        meeting: crate::id::MeetingId,
        /// The attendee's address.
        email: String,
        /// The answer.
        reply: crate::kinds::Reply,
    },
    /// A meeting took place; its outcome notes were recorded.
    MeetingHeld {
        /// The meeting.
        meeting: crate::id::MeetingId,
    },
    /// A file was attached (its bytes are in the blob store, never in the event).
    AttachmentAdded {
        /// The attachment.
        attachment: crate::id::AttachmentId,
        /// The file's name.
        name: String,
        /// Its media type.
        media_type: String,
        /// Its size in bytes.
        size: u64,
    },
    /// An attachment was shared with the partner, or no longer.
    AttachmentShared {
        /// The attachment.
        attachment: crate::id::AttachmentId,
        /// The file's name.
        name: String,
        /// Whether the partner sees it now.
        shared: bool,
    },
    /// An attachment was removed.
    AttachmentRemoved {
        /// The attachment.
        attachment: crate::id::AttachmentId,
        /// The file's name.
        name: String,
    },
    /// A partner's contact was invited to the self-service portal (again, after a revocation or an expired
    /// invitation).
    RepresentativeInvited {
        /// The representative.
        representative: crate::id::RepresentativeId,
        /// The contact's name.
        name: String,
        /// The rights given, by name, comma-separated.
        rights: String,
    },
    /// A representative accepted the invitation: it may now log in.
    RepresentativeAccepted {
        /// The representative.
        representative: crate::id::RepresentativeId,
        /// The contact's name.
        name: String,
    },
    /// A representative logged in to the portal with a login link.
    RepresentativeLoggedIn {
        /// The representative.
        representative: crate::id::RepresentativeId,
        /// The contact's name.
        name: String,
    },
    /// A representative's access was revoked: its next call fails.
    RepresentativeRevoked {
        /// The representative.
        representative: crate::id::RepresentativeId,
        /// The contact's name.
        name: String,
    },
    /// A representative's rights were changed.
    RepresentativeRightsChanged {
        /// The representative.
        representative: crate::id::RepresentativeId,
        /// The contact's name.
        name: String,
        /// The rights before, by name.
        from: String,
        /// The rights now, by name.
        to: String,
    },
    /// A representative started a payment in the portal.
    PortalPaymentStarted {
        /// The attempt's idempotency key.
        key: String,
        /// Its total, with the currency.
        total: String,
    },
    /// A portal payment was confirmed and recorded as a payment document.
    PortalPaymentConfirmed {
        /// The attempt's idempotency key.
        key: String,
        /// The payment document's number.
        document: String,
    },
    /// A portal payment failed; nothing was recorded.
    PortalPaymentFailed {
        /// The attempt's idempotency key.
        key: String,
        /// Why.
        reason: String,
    },
    /// Partners were merged: on the survivor's timeline and on each merged partner's.
    PartnersMerged {
        /// The merge's journal.
        merge: crate::id::MergeId,
        /// The surviving partner.
        survivor: PartnerId,
        /// The partners merged into it.
        merged: Vec<PartnerId>,
        /// How many records moved to the survivor.
        moved: u64,
    },
    /// A merge was undone: on the survivor's timeline and on each restored partner's.
    MergeUndone {
        /// The merge's journal.
        merge: crate::id::MergeId,
        /// The partner that had survived.
        survivor: PartnerId,
        /// The partners restored.
        merged: Vec<PartnerId>,
    },
    /// A contact's consent was given or withdrawn (on the partner's timeline).
    ConsentRecorded {
        /// The contact.
        contact: crate::id::ContactId,
        /// The consent as recorded (channel, purpose, answer, source, proof, time).
        consent: crate::consent::Consent,
    },
    /// A message a rule decided was not enqueued: a marketing message without the recipient's consent.
    MessageSuppressed {
        /// The rule.
        rule: String,
        /// Who it was for.
        recipient: String,
        /// Why.
        reason: String,
    },
    /// Contacts of a partner were merged into one.
    ContactsMerged {
        /// The merge (journaled in the partner's document).
        merge: crate::id::MergeId,
        /// The contact that stays.
        survivor: crate::id::ContactId,
        /// The contacts merged into it.
        merged: Vec<crate::id::ContactId>,
        /// How many leads, meetings and representatives moved.
        moved: u64,
    },
    /// A contact merge was undone.
    ContactMergeUndone {
        /// The merge.
        merge: crate::id::MergeId,
        /// The contact that had stayed.
        survivor: crate::id::ContactId,
        /// The contacts restored.
        merged: Vec<crate::id::ContactId>,
    },
    /// Leads were merged into one: on the survivor's timeline and on each merged lead's.
    LeadsMerged {
        /// The merge's journal.
        merge: crate::id::MergeId,
        /// The lead that stays.
        survivor: LeadId,
        /// The leads merged into it (tombstones now).
        merged: Vec<LeadId>,
        /// How many requests, comments, quotations, contracts, meetings, attachments and campaign targets moved.
        moved: u64,
    },
    /// A lead merge was undone: on the survivor's timeline and on each restored lead's.
    LeadMergeUndone {
        /// The merge's journal.
        merge: crate::id::MergeId,
        /// The lead that had stayed.
        survivor: LeadId,
        /// The leads restored.
        merged: Vec<LeadId>,
    },
    /// A contact, or a partner who is a natural person, was erased ([`crate::erasure`]).
    PersonErased {
        /// The contact or partner erased.
        person: uuid::Uuid,
        /// The pseudonym that replaced the name.
        pseudonym: String,
    },
    /// How an event about a partner is stored: its payload sealed under the keys of the people it names
    /// ([`crate::erasure::seal`]). Reads open it; a host never sees this.
    Sealed {
        /// The sealed event's type name.
        kind: String,
        /// The partner and contacts whose keys sealed it.
        keys: Vec<uuid::Uuid>,
        /// The nonce, base64.
        nonce: String,
        /// The ciphertext, base64.
        data: String,
    },
    /// An event that named a person since erased: its type and time stay, its payload is gone.
    Erased {
        /// The erased event's type name.
        kind: String,
    },
    /// A communication rule failed while handling an event; the triggering change still committed.
    RuleFailed {
        /// The rule's name.
        rule: String,
        /// Where and why it failed.
        message: String,
    },
}

variant_names! {
    /// The event's type name in snake case (`lead_stage_moved`), as rules and filters see it.
    pub fn name for EventKind {
        PartnerCreated => "partner_created",
        PartnerUpdated => "partner_updated",
        LeadEntered => "lead_entered",
        LeadUpdated => "lead_updated",
        LeadStageMoved => "lead_stage_moved",
        LeadWon => "lead_won",
        LeadLost => "lead_lost",
        LeadReopened => "lead_reopened",
        LeadScored => "lead_scored",
        CommentAdded => "comment_added",
        RequestOpened => "request_opened",
        RequestUpdated => "request_updated",
        RequestStatusChanged => "request_status_changed",
        InvoiceRecorded => "invoice_recorded",
        PaymentRecorded => "payment_recorded",
        CampaignCreated => "campaign_created",
        CampaignLaunched => "campaign_launched",
        CampaignClosed => "campaign_closed",
        CampaignCostAdded => "campaign_cost_added",
        BudgetExceeded => "budget_exceeded",
        BudgetThresholdPassed => "budget_threshold_passed",
        CampaignMessageSet => "campaign_message_set",
        CampaignMessagesQueued => "campaign_messages_queued",
        CampaignMessageReported => "campaign_message_reported",
        CallOutcomeRecorded => "call_outcome_recorded",
        QuotationCreated => "quotation_created",
        QuotationEdited => "quotation_edited",
        QuotationRevised => "quotation_revised",
        QuotationStatusChanged => "quotation_status_changed",
        ContractCreated => "contract_created",
        ContractSigned => "contract_signed",
        CallLogged => "call_logged",
        EmailSent => "email_sent",
        MeetingScheduled => "meeting_scheduled",
        MeetingRescheduled => "meeting_rescheduled",
        MeetingCancelled => "meeting_cancelled",
        MeetingReplied => "meeting_replied",
        MeetingHeld => "meeting_held",
        AttachmentAdded => "attachment_added",
        AttachmentShared => "attachment_shared",
        AttachmentRemoved => "attachment_removed",
        RepresentativeInvited => "representative_invited",
        RepresentativeAccepted => "representative_accepted",
        RepresentativeRevoked => "representative_revoked",
        RepresentativeLoggedIn => "representative_logged_in",
        RepresentativeRightsChanged => "representative_rights_changed",
        PortalPaymentStarted => "portal_payment_started",
        PortalPaymentConfirmed => "portal_payment_confirmed",
        PortalPaymentFailed => "portal_payment_failed",
        ConsentRecorded => "consent_recorded",
        MessageSuppressed => "message_suppressed",
        PartnersMerged => "partners_merged",
        MergeUndone => "merge_undone",
        ContactsMerged => "contacts_merged",
        ContactMergeUndone => "contact_merge_undone",
        LeadsMerged => "leads_merged",
        LeadMergeUndone => "lead_merge_undone",
        PersonErased => "person_erased",
        Sealed => "sealed",
        Erased => "erased",
        RuleFailed => "rule_failed",
    }
}

impl EventKind {
    /// Whether the payload may name a person: a contact by id, as a contact-shaped object, or by a name, e-mail or
    /// phone in its text. False only for a stage move, a win, a reopening and a score, whose payload is stage ids,
    /// the tenant's own stage names and numbers; the sealed log reads a partner's contacts only for the events that may (a contact
    /// who happens to be called like a stage is not a subject of every move through it).
    ///
    /// ```
    /// use crm_core::{event::EventKind, id::StageId};
    /// assert!(!EventKind::LeadWon { stage: StageId::new() }.may_name_people());
    /// assert!(EventKind::LeadUpdated { changes: vec![] }.may_name_people());
    /// ```
    pub fn may_name_people(&self) -> bool {
        !matches!(
            self,
            Self::LeadStageMoved { .. }
                | Self::LeadWon { .. }
                | Self::LeadReopened { .. }
                | Self::LeadScored { .. }
        )
    }

    /// The type name a stored row keeps in clear: the event's own [`EventKind::name`], or for a sealed or erased
    /// event the name of the event it holds.
    pub fn stored_name(&self) -> &str {
        match self {
            Self::Sealed { kind, .. } | Self::Erased { kind } => kind,
            other => other.name(),
        }
    }

    /// The names rules react to for this event: its own [`EventKind::name`], then the business moments it is
    /// (`invoice_issued` for the first version of a sales invoice, `payment_received` for the first version of a
    /// payment from a customer, `quotation_sent` / `_accepted` / `_declined` / `_expired` for a quotation's
    /// status). A rule reacts to either with `on_<name>`; both run when it defines both.
    pub fn trigger_names(&self) -> Vec<&'static str> {
        let mut names = vec![self.name()];
        match self {
            Self::InvoiceRecorded {
                kind: crate::kinds::DocumentKind::Invoice,
                version: 1,
                ..
            } => names.push("invoice_issued"),
            Self::PaymentRecorded {
                direction: Some(crate::kinds::PaymentDirection::Received),
                version: 1,
                ..
            } => names.push("payment_received"),
            Self::QuotationStatusChanged { status, .. } => names.push(match status {
                crate::kinds::QuotationStatus::Sent => "quotation_sent",
                crate::kinds::QuotationStatus::Accepted => "quotation_accepted",
                crate::kinds::QuotationStatus::Declined => "quotation_declined",
                crate::kinds::QuotationStatus::Expired => "quotation_expired",
                _ => return names,
            }),
            _ => {}
        }
        names
    }

    /// The document the event is about, if any.
    pub fn document(&self) -> Option<crate::id::DocumentId> {
        match self {
            Self::InvoiceRecorded { document, .. } | Self::PaymentRecorded { document, .. } => {
                Some(*document)
            }
            _ => None,
        }
    }

    /// The contract the event is about, if any.
    pub fn contract(&self) -> Option<crate::id::ContractId> {
        let (Self::ContractCreated { contract, .. } | Self::ContractSigned { contract, .. }) = self
        else {
            return None;
        };
        Some(*contract)
    }

    /// The meeting the event is about, if any.
    pub fn meeting(&self) -> Option<crate::id::MeetingId> {
        let (Self::MeetingScheduled { meeting, .. }
        | Self::MeetingRescheduled { meeting, .. }
        | Self::MeetingCancelled { meeting }
        | Self::MeetingReplied { meeting, .. }
        | Self::MeetingHeld { meeting }) = self
        else {
            return None;
        };
        Some(*meeting)
    }

    /// The campaign the event is about, if any.
    pub fn campaign(&self) -> Option<crate::id::CampaignId> {
        match self {
            Self::CampaignCreated { campaign, .. }
            | Self::CampaignLaunched { campaign, .. }
            | Self::CampaignClosed { campaign }
            | Self::CampaignCostAdded { campaign, .. }
            | Self::BudgetExceeded { campaign, .. }
            | Self::BudgetThresholdPassed { campaign, .. }
            | Self::CampaignMessageSet { campaign }
            | Self::CampaignMessagesQueued { campaign, .. }
            | Self::CampaignMessageReported { campaign, .. }
            | Self::CallOutcomeRecorded { campaign, .. } => Some(*campaign),
            Self::InvoiceRecorded { campaign, .. } => *campaign,
            _ => None,
        }
    }
}

/// One agent's share of a launched campaign's calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentCalls {
    /// The agent.
    pub agent: UserId,
    /// How many calls they were given.
    pub calls: u64,
}

/// Something that happened, with who, when, through which channel and to which records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainEvent {
    /// The event's id (UUID v7, so ids order like time within a process).
    pub id: EventId,
    /// The tenant.
    pub tenant: TenantId,
    /// When it happened.
    pub at: Timestamp,
    /// Who did it.
    pub actor: Actor,
    /// Through which channel.
    pub source: Source,
    /// Which records it concerns.
    pub subject: Subject,
    /// What happened.
    pub kind: EventKind,
}

impl DomainEvent {
    /// A new event for `ctx` at `at`.
    pub fn new(
        ctx: &crate::actor::Context,
        at: Timestamp,
        subject: Subject,
        kind: EventKind,
    ) -> Self {
        Self {
            id: EventId::new(),
            tenant: ctx.tenant,
            at,
            actor: ctx.actor.clone(),
            source: ctx.source,
            subject,
            kind,
        }
    }

    /// A one-line human description (for timelines).
    pub fn describe(&self) -> String {
        match &self.kind {
            EventKind::PartnerCreated { name } => format!("partner `{name}` created"),
            EventKind::PartnerUpdated { changes }
            | EventKind::LeadUpdated { changes }
            | EventKind::RequestUpdated { changes } => {
                let fields: Vec<_> = changes
                    .iter()
                    .map(|c| format!("{}: {} → {}", c.field, c.before, c.after))
                    .collect();
                format!(
                    "{} ({})",
                    self.kind.name().replace('_', " "),
                    fields.join("; ")
                )
            }
            EventKind::LeadEntered { title, .. } => format!("lead `{title}` entered"),
            EventKind::LeadStageMoved {
                from_name, to_name, ..
            } => format!("moved from {from_name} to {to_name}"),
            EventKind::LeadWon { .. } => "won".to_string(),
            EventKind::LeadLost {
                reason_name,
                competitor,
                ..
            } => match competitor {
                Some(c) => format!("lost: {reason_name} (to {c})"),
                None => format!("lost: {reason_name}"),
            },
            EventKind::LeadReopened { .. } => "reopened".to_string(),
            EventKind::LeadScored { value, previous } => match previous {
                Some(p) => format!("scored {value} (was {p})"),
                None => format!("scored {value}"),
            },
            EventKind::CommentAdded { excerpt, .. } => format!("comment: {excerpt}"),
            EventKind::RequestOpened { title, .. } => format!("request opened: {title}"),
            EventKind::RequestStatusChanged { from, to } => {
                format!("request {} → {}", from.as_str(), to.as_str())
            }
            EventKind::RuleFailed { rule, message } => format!("rule `{rule}` failed: {message}"),
            EventKind::PartnersMerged {
                merged,
                moved,
                survivor,
                ..
            } => format!(
                "{} partner(s) merged into {survivor}, {moved} record(s) moved",
                merged.len()
            ),
            EventKind::ConsentRecorded { consent, .. } => format!(
                "consent to {:?} by {:?} {} ({})",
                consent.purpose,
                consent.channel,
                if consent.granted {
                    "given"
                } else {
                    "withdrawn"
                },
                consent.source
            ),
            EventKind::MessageSuppressed {
                recipient, reason, ..
            } => {
                format!("message to {recipient} not sent: {reason}")
            }
            EventKind::MergeUndone { merged, .. } => {
                format!("merge undone: {} partner(s) restored", merged.len())
            }
            EventKind::QuotationCreated { number, total, .. } => {
                format!("quotation {number} made: {total}")
            }
            EventKind::QuotationEdited { number, total, .. } => {
                format!("quotation {number} edited: {total}")
            }
            EventKind::QuotationRevised { number, total, .. } => {
                format!("quotation revised as {number}: {total}")
            }
            EventKind::QuotationStatusChanged { number, status, .. } => {
                format!("quotation {number} {status}")
            }
            EventKind::ContractCreated { number, value, .. } => {
                format!("contract {number} made: {value}")
            }
            EventKind::ContractSigned { number, .. } => format!("contract {number} signed"),
            EventKind::MeetingScheduled {
                title, starts_at, ..
            } => {
                format!("meeting `{title}` scheduled for {starts_at}")
            }
            EventKind::MeetingRescheduled { starts_at, .. } => {
                format!("meeting moved to {starts_at}")
            }
            EventKind::MeetingCancelled { .. } => "meeting cancelled".to_string(),
            EventKind::MeetingReplied { email, reply, .. } => {
                format!("{email} answered {}", reply.partstat().to_lowercase())
            }
            EventKind::MeetingHeld { .. } => "meeting held".to_string(),
            EventKind::CallLogged { call } => call.summary(),
            EventKind::EmailSent { to, template, .. } => match template {
                Some(t) => format!("e-mail `{t}` sent to {to}"),
                None => format!("e-mail sent to {to}"),
            },
            EventKind::AttachmentAdded {
                name,
                media_type,
                size,
                ..
            } => format!("file `{name}` attached ({media_type}, {size} bytes)"),
            EventKind::AttachmentShared { name, shared, .. } => {
                let how = if *shared {
                    "shared with"
                } else {
                    "hidden from"
                };
                format!("file `{name}` {how} the partner")
            }
            EventKind::AttachmentRemoved { name, .. } => format!("file `{name}` removed"),
            EventKind::RepresentativeInvited { name, rights, .. } => {
                format!("{name} invited to the portal ({rights})")
            }
            EventKind::RepresentativeAccepted { name, .. }
            | EventKind::RepresentativeLoggedIn { name, .. }
            | EventKind::RepresentativeRevoked { name, .. } => {
                let what = match self.kind {
                    EventKind::RepresentativeAccepted { .. } => "accepted the portal invitation",
                    EventKind::RepresentativeLoggedIn { .. } => "logged in to the portal",
                    _ => "lost portal access (revoked)",
                };
                format!("{name} {what}")
            }
            EventKind::PortalPaymentStarted { total, .. } => {
                format!("payment of {total} started in the portal")
            }
            EventKind::PortalPaymentConfirmed { document, .. } => {
                format!("portal payment confirmed as {document}")
            }
            EventKind::PortalPaymentFailed { reason, .. } => {
                format!("portal payment failed: {reason}")
            }
            EventKind::RepresentativeRightsChanged { name, from, to, .. } => {
                format!("{name}'s portal rights: {from} → {to}")
            }
            EventKind::PersonErased { pseudonym, .. } => format!("person erased as {pseudonym}"),
            EventKind::ContactsMerged { merged, moved, .. } => {
                format!(
                    "{} contact(s) merged, {moved} record(s) moved",
                    merged.len()
                )
            }
            EventKind::LeadsMerged { merged, moved, .. } => {
                format!("{} lead(s) merged, {moved} record(s) moved", merged.len())
            }
            EventKind::LeadMergeUndone { merged, .. } => {
                format!("lead merge undone: {} lead(s) restored", merged.len())
            }
            EventKind::ContactMergeUndone { merged, .. } => {
                format!("contact merge undone: {} contact(s) restored", merged.len())
            }
            EventKind::Sealed { kind, .. } => format!("{} (sealed)", kind.replace('_', " ")),
            EventKind::Erased { kind } => format!("{} (erased)", kind.replace('_', " ")),
            EventKind::InvoiceRecorded {
                kind,
                number,
                total,
                version,
                ..
            } => {
                format!(
                    "{} {number} recorded ({total}, version {version})",
                    kind.as_str()
                )
            }
            EventKind::PaymentRecorded { number, amount, .. } => {
                format!("payment {number} recorded ({amount})")
            }
            EventKind::CampaignCreated { name, .. } => format!("campaign `{name}` created"),
            EventKind::CampaignLaunched { targets, .. } => {
                format!("campaign launched with {targets} targets")
            }
            EventKind::CampaignClosed { .. } => "campaign closed".to_string(),
            EventKind::CampaignCostAdded { amount, .. } => format!("campaign cost {amount}"),
            EventKind::BudgetExceeded {
                name,
                budget,
                spent,
                ..
            } => format!("campaign `{name}` over budget: {spent} spent of {budget}"),
            EventKind::BudgetThresholdPassed {
                name,
                percent,
                budget,
                spent,
                ..
            } => format!(
                "campaign `{name}` past {percent} % of its budget: {spent} spent of {budget}"
            ),
            EventKind::CallOutcomeRecorded { outcome, .. } => {
                format!("call outcome: {}", outcome.as_str().replace('_', " "))
            }
            EventKind::CampaignMessageSet { .. } => "campaign message set".to_string(),
            EventKind::CampaignMessagesQueued {
                queued, skipped, ..
            } => format!("campaign messages queued: {queued} ({skipped} skipped)"),
            EventKind::CampaignMessageReported { status, note, .. } => match note {
                Some(n) => format!(
                    "campaign message {}: {n}",
                    status.as_str().replace('_', " ")
                ),
                None => format!("campaign message {}", status.as_str().replace('_', " ")),
            },
        }
    }
}

/// One step of a lead through its pipeline: the source of time-in-stage, the funnel and the win rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageHistoryEntry {
    /// The tenant.
    pub tenant: TenantId,
    /// The lead.
    pub lead: LeadId,
    /// The pipeline.
    pub pipeline: PipelineId,
    /// The stage before (none when the lead was entered).
    pub from: Option<StageId>,
    /// The stage after.
    pub to: StageId,
    /// The lead's status after the step.
    pub status: crate::kinds::StatusKind,
    /// When.
    pub at: Timestamp,
    /// Who.
    pub actor: Actor,
}
