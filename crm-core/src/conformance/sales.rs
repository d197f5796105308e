//! Quotations through the storage port: numbering, revisions and their history, versions, uniqueness of numbers,
//! all-or-nothing changes, and the events on the lead's timeline. Registered as a commerce check.

use super::commerce::Shop;
use crate::commerce::{CommerceStore, CommerceStoreExt, CommerceWrite};
use crate::error::Error;
use crate::lead::{Lead, NewLead};
use crate::money::{Currency, Money};
use crate::sales::{
    Attendee, MeetingCommand, NewMeeting, NewQuotation, Organiser, Participant, Quotation,
    QuotationCommand, QuotationLine, QuotationStatus, QuotationTerms, Reply, Slot, Term,
};
use crate::store::{ChangeSet, PageRequest, Store, TimelineOf, Write};
use crate::time::MAX_BUSINESS_DATE;
use rust_decimal::Decimal;
use std::sync::Arc;

/// A shop (a fresh tenant) with one customer named `customer` and one lead of it named `title`: the fixture of the
/// sales checks, and of the tests of other crates that need a lead in a store.
pub async fn shop_with_lead(
    store: &Arc<dyn Store>,
    commerce: &Arc<dyn CommerceStore>,
    customer: &str,
    title: &str,
) -> (Shop, crate::partner::Partner, Lead) {
    let shop = Shop::new(store, commerce).await;
    let partner = shop.customer(customer).await;
    let lead = shop.lead_of(&partner, title).await;
    (shop, partner, lead)
}

impl Shop {
    /// A new lead of `partner` in the default pipeline.
    async fn lead_of(&self, partner: &crate::partner::Partner, title: &str) -> Lead {
        let n = NewLead::for_partner(partner.id, title);
        self.w
            .crm
            .enter_lead(&self.w.ctx, n)
            .await
            .expect("lead")
            .record
    }

    /// A one-line quotation for `lead` at `price`, made.
    async fn quote(&self, lead: &Lead, price: &str) -> Quotation {
        let q = self
            .cs
            .create_quotation(&self.w.ctx, quotation_for(lead, price))
            .await;
        q.expect("quotation")
    }
}

/// Asserts that an operation was refused naming `field`, and that the records it would have added are not there.
fn assert_refused_and_kept(
    refused: crate::Result<()>,
    field: &str,
    stored: crate::Result<usize>,
    before: usize,
) {
    assert_eq!(refused.unwrap_err().field(), Some(field));
    assert_eq!(stored.expect("a read"), before, "nothing written");
}

/// Asserts that each of `names` is a trigger name of an event on the lead's timeline.
async fn assert_on_timeline(
    crm: &crate::service::CrmService,
    t: crate::id::TenantId,
    lead: crate::id::LeadId,
    names: &[&str],
) {
    let page = PageRequest {
        limit: 100,
        ..Default::default()
    };
    let timeline = crm
        .timeline(t, TimelineOf::Lead(lead), &page)
        .await
        .expect("timeline");
    let on: Vec<&str> = timeline
        .items
        .iter()
        .flat_map(|e| e.kind.trigger_names())
        .collect();
    for want in names {
        assert!(on.contains(want), "{want} is not on the timeline: {on:?}");
    }
}

/// A one-line quotation in RON (VAT `S`) for `lead`'s partner, valid to the end of the business calendar.
pub fn quotation_for(lead: &Lead, price: &str) -> NewQuotation {
    NewQuotation {
        lead: Some(lead.id),
        partner: lead.partner,
        currency: Currency::parse("RON").expect("RON"),
        terms: QuotationTerms {
            lines: vec![QuotationLine::new(
                "Audit",
                Decimal::ONE,
                Money::parse(price, "RON").expect("a price"),
                "S",
            )],
            valid_until: MAX_BUSINESS_DATE,
            terms: None,
        },
    }
}

/// Quotations round-trip, number themselves per tenant and year (also when two are made at once), keep their
/// revisions' history, refuse stale versions and duplicate numbers, write nothing when refused, and log every
/// step on the lead's timeline.
pub async fn check_commerce_quotations(store: &Arc<dyn Store>, commerce: &Arc<dyn CommerceStore>) {
    let (shop, customer, lead) = shop_with_lead(store, commerce, "Ofertare SRL", "Licenses").await;
    let (cs, ctx, t) = (&shop.cs, &shop.w.ctx, shop.w.tenant);

    // Made, read back whole, numbered 1, 2, … in the year of the fixed clock.
    let first = shop.quote(&lead, "100").await;
    assert_eq!(
        commerce.quotation(t, first.id()).await.expect("read back"),
        first
    );
    assert_eq!(first.number().to_string(), "Q-2026-0001/1");
    assert_eq!(
        first.totals().total,
        Money::parse("121", "RON").expect("money")
    );
    let without_lead = NewQuotation {
        lead: None,
        ..quotation_for(&lead, "5")
    };
    let second = cs
        .create_quotation(ctx, without_lead)
        .await
        .expect("second");
    assert_eq!(second.number().sequence, 2);
    let last = commerce
        .last_quotation_of_year(t, 2026)
        .await
        .expect("last");
    assert_eq!(last.map(|q| q.id()), Some(second.id()));
    assert!(commerce
        .last_quotation_of_year(t, 2025)
        .await
        .expect("none")
        .is_none());

    // Two made at once get different numbers.
    let (a, b) = futures::future::join(
        cs.create_quotation(ctx, quotation_for(&lead, "1")),
        cs.create_quotation(ctx, quotation_for(&lead, "2")),
    )
    .await;
    let (a, b) = (a.expect("concurrent a"), b.expect("concurrent b"));
    assert_ne!(a.number(), b.number());

    // A refused create (a line in another currency) writes nothing.
    let mut bad = quotation_for(&lead, "1");
    bad.terms.lines[0].unit_price = Money::parse("1", "EUR").expect("money");
    let refused = cs.create_quotation(ctx, bad).await.map(|_| ());
    let stored = commerce
        .quotations_of_lead(t, lead.id)
        .await
        .map(|v| v.len());
    assert_refused_and_kept(refused, "lines[0].unit_price", stored, 3);

    // Sent, then a stale command is a conflict and changes nothing.
    let sent = cs
        .quotation_command(ctx, first.id(), 1, QuotationCommand::Send)
        .await
        .expect("send");
    assert_eq!((sent.status(), sent.version()), (QuotationStatus::Sent, 2));
    let stale = cs
        .quotation_command(ctx, first.id(), 1, QuotationCommand::Accept)
        .await;
    assert!(matches!(stale, Err(Error::Conflict { .. })), "{stale:?}");
    assert_eq!(commerce.quotation(t, first.id()).await.expect("read"), sent);

    // Revised: version 1 superseded, version 2 a draft of the same number; the history reads in order.
    let mut terms = quotation_for(&lead, "90").terms;
    terms.terms = Some("Discount for a two-year contract".into());
    let v2 = cs
        .revise_quotation(ctx, first.id(), 2, terms)
        .await
        .expect("revise");
    assert_eq!(v2.number().to_string(), "Q-2026-0001/2");
    let history = commerce
        .quotation_revisions(t, 2026, 1)
        .await
        .expect("history");
    let ids: Vec<_> = history.iter().map(Quotation::id).collect();
    assert_eq!(ids, vec![first.id(), v2.id()]);
    assert_eq!(history[0].status(), QuotationStatus::Superseded);
    assert_eq!(history[0].superseded_by(), Some(v2.id()));
    assert_eq!(history[1].supersedes(), Some(first.id()));
    let of_lead: Vec<_> = commerce
        .quotations_of_lead(t, lead.id)
        .await
        .expect("of lead")
        .iter()
        .map(|q| q.number().to_string())
        .collect();
    let mut sorted = of_lead.clone();
    sorted.sort_by_key(|n| {
        n.parse::<crate::sales::QuotationNumber>()
            .expect("a number")
    });
    assert_eq!(of_lead, sorted, "by number");
    assert_eq!(of_lead.len(), 4);

    // The store refuses a second revision with a taken number, and a stale update, and commits neither.
    let mut clash = v2.clone();
    clash.id = crate::id::QuotationId::new();
    let mut cs_clash = ChangeSet::new();
    cs_clash.push(Write::Commerce(CommerceWrite::InsertQuotation(
        clash.clone(),
    )));
    let err = store.commit(t, cs_clash).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    assert!(matches!(
        commerce.quotation(t, clash.id).await,
        Err(Error::NotFound { .. })
    ));
    let mut changed = v2.clone();
    changed.version = 8;
    let update = CommerceWrite::UpdateQuotation {
        quotation: changed,
        expected_version: 7,
    };
    let err = store
        .commit(t, ChangeSet::from_iter([Write::Commerce(update)]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    assert_eq!(commerce.quotation(t, v2.id()).await.expect("read"), v2);

    // Sent and accepted; every step is on the lead's timeline.
    let v2 = cs
        .quotation_command(ctx, v2.id(), 1, QuotationCommand::Send)
        .await
        .expect("send v2");
    let won = cs
        .quotation_command(ctx, v2.id(), 2, QuotationCommand::Accept)
        .await
        .expect("accept");
    assert_eq!(won.answer().map(|a| &a.by), Some(&ctx.actor));
    assert_on_timeline(
        &shop.w.crm,
        t,
        lead.id,
        &[
            "quotation_created",
            "quotation_sent",
            "quotation_revised",
            "quotation_accepted",
        ],
    )
    .await;

    // A stage that requires a sent quotation refuses the move until one is sent (a draft does not count), through
    // a lead service that reads quotations; a lead service without the commerce store says so.
    let guarded = crate::service::CrmService::builder()
        .store(store.clone())
        .commerce(commerce.clone())
        .clock(shop.w.clock.clone())
        .build()
        .expect("service");
    let mut np = crate::pipeline::NewPipeline::seed_default();
    np.name = "Quoted".into();
    np.is_default = false;
    np.stages[4] = crate::pipeline::NewStage::open("Negotiation", 70)
        .requiring(crate::kinds::Requirement::QuotationSent);
    let p = guarded.create_pipeline(ctx, np).await.expect("pipeline");
    let mut n = NewLead::for_partner(customer.id, "Quoted lead");
    n.pipeline = Some(p.id);
    let quoted = guarded.enter_lead(ctx, n).await.expect("lead").record;
    let nego = crate::lead::LeadCommand::MoveTo {
        stage: p.stage_named("Negotiation").expect("a stage").id,
    };
    let unmet = |e: Error| {
        matches!(
            e,
            Error::Transition(crate::error::TransitionError::UnmetRequirement { .. })
        )
    };
    let e = guarded
        .transition(ctx, quoted.id, 1, nego.clone())
        .await
        .unwrap_err();
    assert!(unmet(e));
    let q = shop.quote(&quoted, "5").await;
    let e = guarded
        .transition(ctx, quoted.id, 1, nego.clone())
        .await
        .unwrap_err();
    assert!(unmet(e), "a draft is not sent");
    let e = shop
        .w
        .crm
        .transition(ctx, quoted.id, 1, nego.clone())
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("requirements"));
    cs.quotation_command(ctx, q.id(), 1, QuotationCommand::Send)
        .await
        .expect("send");
    let moved = guarded
        .transition(ctx, quoted.id, 1, nego)
        .await
        .expect("moves once a quotation is sent");
    assert_eq!(moved.record.version, 2);

    // Accepting a quotation can win its lead in the same change; when the win is refused (the won stage wants an
    // expected revenue) nothing is written and the quotation stays sent.
    let mut np = crate::pipeline::NewPipeline::seed_default();
    np.name = "Revenue first".into();
    np.is_default = false;
    np.stages[5] =
        crate::pipeline::NewStage::won("Contract").requiring(crate::kinds::Requirement::Field {
            field: crate::pipeline::LeadField::ExpectedRevenue,
        });
    let strict = shop.w.crm.create_pipeline(ctx, np).await.expect("pipeline");
    let mut n = NewLead::for_partner(customer.id, "Strict lead");
    n.pipeline = Some(strict.id);
    let strict_lead = shop.w.crm.enter_lead(ctx, n).await.expect("lead").record;
    let q = shop.quote(&strict_lead, "9").await;
    cs.quotation_command(ctx, q.id(), 1, QuotationCommand::Send)
        .await
        .expect("send");
    let refused = cs.accept_quotation(ctx, q.id(), 2, true).await.unwrap_err();
    assert!(unmet(refused));
    assert_eq!(
        commerce.quotation(t, q.id()).await.expect("read").status(),
        QuotationStatus::Sent
    );
    let open_lead = shop.lead_of(&customer, "Wins on acceptance").await;
    let q = shop.quote(&open_lead, "9").await;
    cs.quotation_command(ctx, q.id(), 1, QuotationCommand::Send)
        .await
        .expect("send");
    let accepted = cs
        .accept_quotation(ctx, q.id(), 2, true)
        .await
        .expect("accept and win");
    assert_eq!(accepted.status(), QuotationStatus::Accepted);
    let won = shop.w.crm.lead(t, open_lead.id).await.expect("lead");
    assert_eq!(won.status.kind(), crate::lead::StatusKind::Won);
    assert_on_timeline(
        &shop.w.crm,
        t,
        open_lead.id,
        &["quotation_accepted", "lead_won"],
    )
    .await;
}

/// A one-hour meeting on `lead` next Monday at 10:00 in Bucharest, organised by the world's agent, with the
/// manager and the lead's partner's first contact (when it has one) invited.
pub fn meeting_for(w: &super::World, lead: &Lead) -> NewMeeting {
    let day = chrono::NaiveDate::from_ymd_opt(2026, 3, 9).expect("a day");
    let at = |h| day.and_hms_opt(h, 0, 0).expect("a time of day");
    NewMeeting {
        title: "Demo".into(),
        lead: Some(lead.id),
        partner: None,
        organiser: Organiser::new(w.agent, "Agent", "agent@example.ro"),
        attendees: vec![Attendee {
            who: Participant::User { id: w.manager },
            name: "Manager".into(),
            email: "manager@example.ro".into(),
            reply: Reply::NeedsAction,
        }],
        slot: Slot::new(at(10), at(11), "Europe/Bucharest").at("Brașov"),
        agenda: Some("Offer".into()),
    }
}

/// Meetings round-trip; a lead's meetings and each user's agenda read by start; a reschedule, a reply and a
/// cancellation commit with their events and invitations (one per attendee and sequence), stale versions conflict,
/// a contact of another tenant's partner is refused with nothing written.
pub async fn check_meetings(backend: &Arc<dyn crate::store::Backend>) {
    let store: Arc<dyn Store> = backend.clone();
    let commerce: Arc<dyn CommerceStore> = backend.clone();
    let outbox: Arc<dyn crate::outbox::OutboxStore> = backend.clone();
    let shop = Shop::new(&store, &commerce).await;
    let (cs, w, t) = (&shop.cs, &shop.w, shop.w.tenant);
    let customer = shop.customer("Întâlniri SRL").await;
    let lead = w
        .crm
        .enter_lead(&w.ctx, NewLead::for_partner(customer.id, "Meetings"))
        .await
        .expect("lead")
        .record;
    let mut new = meeting_for(w, &lead);
    if let Some(c) = customer.contacts.first() {
        new.attendees.push(Attendee {
            who: Participant::Contact {
                partner: customer.id,
                contact: c.id,
            },
            name: c.name.clone(),
            email: "client@example.ro".into(),
            reply: Reply::NeedsAction,
        });
    }
    let invited = new.attendees.len();
    let m = cs
        .schedule_meeting(&w.ctx, new.clone())
        .await
        .expect("schedule");
    assert_eq!(commerce.meeting(t, m.id()).await.expect("read back"), m);
    assert_eq!(m.partner(), Some(customer.id), "the lead's partner");
    assert_eq!(m.starts_at().to_rfc3339(), "2026-03-09T08:00:00+00:00");
    let later = NewMeeting {
        slot: Slot {
            start: new.slot.start + chrono::Duration::days(1),
            end: new.slot.end + chrono::Duration::days(1),
            ..new.slot.clone()
        },
        ..new.clone()
    };
    let second = cs.schedule_meeting(&w.ctx, later).await.expect("second");
    let ids = |v: Vec<crate::sales::Meeting>| v.into_iter().map(|m| m.id()).collect::<Vec<_>>();
    assert_eq!(
        ids(commerce
            .meetings_of_lead(t, lead.id)
            .await
            .expect("of lead")),
        vec![m.id(), second.id()]
    );
    // The agenda: the organiser's and the invited user's, by start, within the window only.
    let week = (
        m.starts_at() - chrono::Duration::hours(1),
        m.starts_at() + chrono::Duration::days(7),
    );
    for user in [w.agent, w.manager] {
        let agenda = commerce
            .agenda(t, user, week.0, week.1)
            .await
            .expect("agenda");
        assert_eq!(ids(agenda), vec![m.id(), second.id()]);
    }
    let first_day = commerce
        .agenda(t, w.agent, week.0, second.starts_at())
        .await
        .expect("agenda");
    assert_eq!(ids(first_day), vec![m.id()]);
    assert!(commerce
        .agenda(t, crate::id::UserId::new(), week.0, week.1)
        .await
        .expect("none")
        .is_empty());

    // A reply, then a move (sequence 1, replies reset), then a stale command.
    let replied = cs
        .meeting_command(
            &w.ctx,
            m.id(),
            1,
            MeetingCommand::Reply {
                email: "MANAGER@example.ro".into(),
                reply: Reply::Accepted,
            },
        )
        .await
        .expect("reply");
    assert_eq!(replied.attendees()[0].reply, Reply::Accepted);
    let moved_slot = Slot {
        start: new.slot.start + chrono::Duration::days(14),
        end: new.slot.end + chrono::Duration::days(14),
        ..new.slot.clone()
    };
    let moved = cs
        .meeting_command(&w.ctx, m.id(), 2, MeetingCommand::Reschedule(moved_slot))
        .await
        .expect("move");
    assert_eq!(
        (moved.sequence(), moved.attendees()[0].reply),
        (1, Reply::NeedsAction)
    );
    let stale = cs
        .meeting_command(&w.ctx, m.id(), 2, MeetingCommand::Cancel)
        .await;
    assert!(matches!(stale, Err(Error::Conflict { .. })), "{stale:?}");
    // The agenda follows the move.
    let agenda = commerce
        .agenda(t, w.manager, week.0, week.1)
        .await
        .expect("agenda");
    assert_eq!(ids(agenda), vec![second.id()]);
    let off = cs
        .meeting_command(&w.ctx, m.id(), 3, MeetingCommand::Cancel)
        .await
        .expect("cancel");
    assert_eq!(off.status(), crate::sales::MeetingStatus::Cancelled);

    // A contact of no partner of this tenant is refused, and nothing is written.
    let mut stranger = meeting_for(w, &lead);
    stranger.attendees.push(Attendee {
        who: Participant::Contact {
            partner: crate::id::PartnerId::new(),
            contact: crate::id::ContactId::new(),
        },
        name: "Eve".into(),
        email: "eve@example.ro".into(),
        reply: Reply::NeedsAction,
    });
    let refused = cs.schedule_meeting(&w.ctx, stranger).await.map(|_| ());
    let stored = commerce.meetings_of_lead(t, lead.id).await.map(|v| v.len());
    assert_refused_and_kept(refused, "attendees[1].who", stored, 2);

    // Invitations: one per attendee for the schedule, the move and the cancellation of the first meeting, each
    // carrying the iCalendar object with its method and sequence.
    for (sequence, method) in [(0, "REQUEST"), (1, "REQUEST"), (2, "CANCEL")] {
        for a in &new.attendees {
            let key = format!(
                "meeting/{}/{sequence}/{method}/{}",
                m.id(),
                a.email.to_lowercase()
            );
            let msg = crate::outbox::OutboxStoreExt::outbox_by_key(&*outbox, t, &key)
                .await
                .unwrap_or_else(|e| panic!("{key}: {e}"));
            let ics = msg.payload.vars["ics"]
                .as_str()
                .expect("an iCalendar object");
            assert!(
                ics.contains(&format!("METHOD:{method}"))
                    && ics.contains(&format!("SEQUENCE:{sequence}")),
                "{ics}"
            );
            assert_eq!(msg.recipient.email.as_deref(), Some(a.email.as_str()));
        }
    }
    assert_on_timeline(
        &w.crm,
        t,
        lead.id,
        &[
            "meeting_scheduled",
            "meeting_replied",
            "meeting_rescheduled",
            "meeting_cancelled",
        ],
    )
    .await;
    assert!(invited >= 1);
}

/// Sends and accepts `q` (a fresh revision 1) and makes its contract, `C-` and the quotation's number, for 2027.
pub async fn contract_from(
    cs: &crate::service::CommerceService,
    ctx: &crate::actor::Context,
    q: &Quotation,
) -> crate::sales::Contract {
    cs.quotation_command(ctx, q.id(), q.version(), QuotationCommand::Send)
        .await
        .expect("send");
    cs.quotation_command(ctx, q.id(), q.version() + 1, QuotationCommand::Accept)
        .await
        .expect("accept");
    let day = |m| chrono::NaiveDate::from_ymd_opt(2027, m, 1).expect("a day");
    let term = Term {
        starts_on: day(1),
        ends_on: Some(day(12)),
        renews_on: Some(day(10)),
    };
    cs.create_contract(ctx, q.id(), &format!("C-{}", q.number()), term)
        .await
        .expect("contract")
}

/// Contracts come only from accepted quotations, one per quotation and number; they read back by partner and by
/// renewal window; bad terms name their field; a signature is recorded once, and only by the tenant's side or the
/// partner's own representative.
pub async fn check_commerce_contracts(store: &Arc<dyn Store>, commerce: &Arc<dyn CommerceStore>) {
    let (shop, customer, lead) = shop_with_lead(store, commerce, "Contract SRL", "Contract").await;
    let (cs, ctx, t) = (&shop.cs, &shop.w.ctx, shop.w.tenant);
    let draft = shop.quote(&lead, "1000").await;
    let day = |y, m| chrono::NaiveDate::from_ymd_opt(y, m, 1).expect("a day");
    let term = Term {
        starts_on: day(2027, 1),
        ends_on: Some(day(2027, 12)),
        renews_on: Some(day(2027, 10)),
    };
    // A draft does not become a contract.
    let err = cs
        .create_contract(ctx, draft.id(), "C-1", term)
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("quotation"));
    let c = contract_from(cs, ctx, &draft).await;
    assert_eq!(commerce.contract(t, c.id()).await.expect("read back"), c);
    assert_eq!(
        (c.partner(), c.lead(), c.quotation()),
        (customer.id, Some(lead.id), Some(draft.id()))
    );
    assert_eq!(c.value(), Money::parse("1210", "RON").expect("money"));
    // One contract per quotation, and numbers are unique.
    let again = cs.create_contract(ctx, draft.id(), "C-2", term).await;
    assert!(
        matches!(again, Err(Error::AlreadyExists { .. })),
        "{again:?}"
    );
    let other = shop.quote(&lead, "10").await;
    cs.quotation_command(ctx, other.id(), 1, QuotationCommand::Send)
        .await
        .expect("send");
    cs.quotation_command(ctx, other.id(), 2, QuotationCommand::Accept)
        .await
        .expect("accept");
    let taken = cs.create_contract(ctx, other.id(), c.number(), term).await;
    assert!(
        matches!(taken, Err(Error::AlreadyExists { .. })),
        "{taken:?}"
    );
    // Bad terms name their field, and write nothing.
    for (bad, field) in [
        (
            Term {
                ends_on: Some(day(2026, 12)),
                ..term
            },
            "ends_on",
        ),
        (
            Term {
                renews_on: Some(day(2028, 1)),
                ..term
            },
            "renews_on",
        ),
        (
            Term {
                starts_on: chrono::NaiveDate::MIN,
                ..term
            },
            "starts_on",
        ),
    ] {
        let err = cs
            .create_contract(ctx, other.id(), "C-3", bad)
            .await
            .unwrap_err();
        assert_eq!(err.field(), Some(field));
    }
    let unnumbered = cs
        .create_contract(ctx, other.id(), " ", term)
        .await
        .unwrap_err();
    assert_eq!(unnumbered.field(), Some("number"));
    let open_ended = Term {
        ends_on: None,
        renews_on: Some(day(2027, 3)),
        ..term
    };
    let second = cs
        .create_contract(ctx, other.id(), "C-3", open_ended)
        .await
        .expect("second");
    let ids = |v: Vec<crate::sales::Contract>| v.into_iter().map(|c| c.id()).collect::<Vec<_>>();
    let of_partner = commerce
        .contracts_of_partner(t, customer.id)
        .await
        .expect("of partner");
    assert_eq!(
        ids(of_partner),
        vec![second.id(), c.id()],
        "by start, then number (`C-3` sorts before `C-Q-…`)"
    );
    let renewing = commerce
        .contracts_renewing(t, day(2027, 1), day(2027, 12))
        .await
        .expect("renewing");
    assert_eq!(ids(renewing), vec![second.id(), c.id()], "by renewal date");
    let none = commerce
        .contracts_renewing(t, day(2027, 4), day(2027, 9))
        .await
        .expect("renewing");
    assert!(none.is_empty());
    // Signed once; another partner's representative does not see it; a stale version conflicts.
    let stranger = crate::actor::Context {
        actor: crate::actor::Actor::PartnerRepresentative {
            partner: crate::id::PartnerId::new(),
            contact: crate::id::ContactId::new(),
        },
        ..ctx.clone()
    };
    let hidden = cs.sign_contract(&stranger, c.id(), 1).await;
    assert!(matches!(hidden, Err(Error::NotFound { .. })), "{hidden:?}");
    let signed = cs.sign_contract(ctx, c.id(), 1).await.expect("sign");
    assert_eq!(signed.signature().map(|s| &s.by), Some(&ctx.actor));
    let stale = cs.sign_contract(ctx, c.id(), 1).await;
    assert!(matches!(stale, Err(Error::Conflict { .. })), "{stale:?}");
    let twice = cs.sign_contract(ctx, c.id(), 2).await.unwrap_err();
    assert_eq!(twice.field(), Some("signature"));
    assert_on_timeline(
        &shop.w.crm,
        t,
        lead.id,
        &["contract_created", "contract_signed"],
    )
    .await;
}

/// Sending a quotation by e-mail: the quotation becomes sent and one e-mail carrying its PDF is in the outbox,
/// committed together; a mail without a PDF is refused and leaves the draft and the outbox as they were; a second
/// send is refused (the quotation is sent) and adds no e-mail.
pub async fn check_quotation_mail(backend: &Arc<dyn crate::store::Backend>) {
    let store: Arc<dyn Store> = backend.clone();
    let commerce: Arc<dyn CommerceStore> = backend.clone();
    let outbox: Arc<dyn crate::outbox::OutboxStore> = backend.clone();
    let (shop, _, lead) = shop_with_lead(&store, &commerce, "Mail SRL", "Mailed").await;
    let (cs, ctx, t) = (&shop.cs, &shop.w.ctx, shop.w.tenant);
    let q = shop.quote(&lead, "250").await;
    let pdf = b"%PDF-1.7\n% a quotation\n".to_vec();
    let mail = crate::sales::QuotationMail {
        to_name: "Maria Pop".into(),
        to_email: "Maria@Mail.ro".into(),
        subject: "Oferta Q-2026".into(),
        body: "Găsiți oferta atașată.".into(),
        pdf: pdf.clone(),
    };
    let key = format!("quotation/{}/sent/maria@mail.ro", q.id());
    let not_a_pdf = crate::sales::QuotationMail {
        pdf: b"hello".to_vec(),
        ..mail.clone()
    };
    let refused = cs
        .send_quotation(ctx, q.id(), 1, not_a_pdf)
        .await
        .map(|_| ());
    let drafts = commerce.quotations_of_lead(t, lead.id).await.map(|v| {
        v.iter()
            .filter(|q| q.status() == QuotationStatus::Draft)
            .count()
    });
    assert_refused_and_kept(refused, "pdf", drafts, 1);
    let none = crate::outbox::OutboxStoreExt::outbox_by_key(&*outbox, t, &key).await;
    assert!(matches!(none, Err(Error::NotFound { .. })), "{none:?}");
    let sent = cs
        .send_quotation(ctx, q.id(), 1, mail.clone())
        .await
        .expect("send");
    assert_eq!(sent.status(), QuotationStatus::Sent);
    let msg = crate::outbox::OutboxStoreExt::outbox_by_key(&*outbox, t, &key)
        .await
        .expect("the e-mail");
    assert_eq!(msg.recipient.email.as_deref(), Some("Maria@Mail.ro"));
    let files: Vec<crate::comms::MailAttachment> =
        serde_json::from_value(msg.payload.vars["attachments"].clone()).expect("attachments");
    assert_eq!(files.len(), 1);
    assert_eq!(
        files[0].name,
        format!("{}.pdf", q.number().to_string().replace('/', "-"))
    );
    assert_eq!(
        (
            files[0].media_type.as_str(),
            files[0].bytes().expect("base64")
        ),
        ("application/pdf", pdf)
    );
    let again = cs.send_quotation(ctx, q.id(), 2, mail).await.unwrap_err();
    assert_eq!(again.field(), Some("status"));
}

/// The log of every contact: a call logged on a lead shows on the lead's and its partner's timelines; one on
/// another tenant's lead (or starting after the clock) is refused and writes nothing; a user's e-mail from a lead
/// is one outbox message about the lead carrying the record, the vars and the files, logged on the timeline only
/// once delivered, and logging the delivery twice writes it once (the event takes the message's id).
pub async fn check_contact_log(backend: &Arc<dyn crate::store::Backend>) {
    use crate::contact::{Call, CallDirection, CallResult, MailFile, UserEmail};
    use crate::event::{CommentTarget, EventKind};
    let store: Arc<dyn Store> = backend.clone();
    let commerce: Arc<dyn CommerceStore> = backend.clone();
    let outbox: Arc<dyn crate::outbox::OutboxStore> = backend.clone();
    let (shop, partner, lead) = shop_with_lead(&store, &commerce, "Call SRL", "Called").await;
    let (crm, ctx, t) = (&shop.w.crm, &shop.w.ctx, shop.w.tenant);
    let now = crate::time::Clock::now(&*shop.w.clock);
    let kinds = |of: TimelineOf| async move {
        let page = crm
            .timeline(t, of, &PageRequest::first(100))
            .await
            .expect("timeline");
        page.items
            .into_iter()
            .map(|e| (e.kind, e.actor))
            .collect::<Vec<_>>()
    };
    let started = now - chrono::Duration::minutes(10);
    let call = Call::new(
        CallDirection::Outbound,
        CallResult::Connected,
        started,
        300,
        Some("Ana Pop"),
        "Wants a demo in May",
        now,
    )
    .expect("a call");
    crm.log_call(ctx, CommentTarget::Lead(lead.id), call.clone())
        .await
        .expect("logged");
    let logged = EventKind::CallLogged { call: call.clone() };
    assert_eq!(kinds(TimelineOf::Lead(lead.id)).await[0].0, logged);
    assert!(kinds(TimelineOf::Partner(partner.id))
        .await
        .iter()
        .any(|(k, _)| *k == logged));
    let before = kinds(TimelineOf::Lead(lead.id)).await.len();
    let stranger = crate::actor::Context::user(crate::id::TenantId::new(), shop.w.agent);
    let err = crm
        .log_call(&stranger, CommentTarget::Lead(lead.id), call.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let later = Call {
        started_at: now + chrono::Duration::hours(1),
        ..call
    };
    let err = crm
        .log_call(ctx, CommentTarget::Lead(lead.id), later)
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("started_at"));
    assert_eq!(kinds(TimelineOf::Lead(lead.id)).await.len(), before);

    let prices = MailFile::new("prices.txt", "text/plain", b"Forklift: 90 000 RON".to_vec());
    let mail = UserEmail::new("maria@call.ro", "follow_up")
        .var("offer", "10% off")
        .attach(prices);
    // A stored attachment goes along, read whole from the blob store; an unknown one is not found.
    let terms = crate::sales::NewAttachment {
        target: crate::sales::AttachedTo::Lead(lead.id),
        name: "terms.txt".into(),
        shared_with_partner: false,
    };
    let stream = crate::conformance::model::stream_of(&b"Payment in 30 days."[..]);
    let terms = shop.cs.attach(ctx, terms, stream).await.expect("attached");
    let with_terms = shop
        .cs
        .send_email_with_attachments(
            ctx,
            CommentTarget::Lead(lead.id),
            mail.clone(),
            &[terms.id()],
        )
        .await
        .expect("sent with the stored file")
        .record;
    let files: Vec<crate::comms::MailAttachment> =
        serde_json::from_value(with_terms.payload.vars["attachments"].clone()).expect("files");
    assert_eq!(
        files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
        ["prices.txt", "terms.txt"]
    );
    assert_eq!(
        files[1].bytes().expect("base64"),
        b"Payment in 30 days.".to_vec()
    );
    // Files together past the e-mail's limit are refused by field, before any enqueue.
    let near_limit = crate::contact::MailFile::new(
        "big.bin",
        "application/octet-stream",
        vec![0; crate::contact::MAX_MAIL_BYTES - 5],
    );
    let too_much = shop
        .cs
        .send_email_with_attachments(
            ctx,
            CommentTarget::Lead(lead.id),
            UserEmail::new("maria@call.ro", "follow_up").attach(near_limit),
            &[terms.id()],
        )
        .await
        .unwrap_err();
    assert_eq!(too_much.field(), Some("attachments"));
    // Another tenant's lead reads as not found.
    let err = crm
        .send_email(&stranger, CommentTarget::Lead(lead.id), mail.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let unknown = crate::id::AttachmentId::new();
    let err = shop
        .cs
        .send_email_with_attachments(ctx, CommentTarget::Lead(lead.id), mail.clone(), &[unknown])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let system = crate::actor::Context::system(t);
    let err = crm
        .send_email(&system, CommentTarget::Lead(lead.id), mail.clone())
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("actor"));
    let sent = crm
        .send_email(ctx, CommentTarget::Lead(lead.id), mail)
        .await
        .expect("sent")
        .record;
    let stored = crate::outbox::OutboxStoreExt::outbox_by_key(&*outbox, t, &sent.idempotency_key)
        .await
        .expect("the e-mail is in the outbox");
    assert_eq!(stored.about.lead, Some(lead.id));
    assert_eq!(stored.about.partner, Some(partner.id));
    assert_eq!(stored.payload.template.as_deref(), Some("follow_up"));
    assert_eq!(stored.payload.vars["offer"], "10% off");
    assert_eq!(stored.payload.vars["lead"]["title"], "Called");
    assert_eq!(stored.payload.vars["partner"]["name"], "Call SRL");
    let files: Vec<crate::comms::MailAttachment> =
        serde_json::from_value(stored.payload.vars["attachments"].clone()).expect("files");
    assert_eq!(
        files[0].bytes().expect("base64"),
        b"Forklift: 90 000 RON".to_vec()
    );
    let emailed = |k: &[(EventKind, crate::actor::Actor)]| {
        k.iter()
            .filter(|(k, a)| matches!(k, EventKind::EmailSent { .. }) && *a == ctx.actor)
            .count()
    };
    assert_eq!(
        emailed(&kinds(TimelineOf::Lead(lead.id)).await),
        0,
        "logged only once delivered"
    );
    // An e-mail to a colleague is no contact with the customer; one about no record has no timeline.
    let mut internal = stored.clone();
    internal.recipient.user = Some(shop.w.manager);
    assert!(internal.delivery_event(now).is_none());
    let mut about_nothing = stored.clone();
    about_nothing.about = crate::event::Subject::default();
    assert!(about_nothing.delivery_event(now).is_none());
    let delivered = stored.delivery_event(now).expect("an e-mail about a lead");
    let once: ChangeSet = [Write::AppendEvent(delivered.clone())]
        .into_iter()
        .collect();
    store.commit(t, once.clone()).await.expect("logged");
    let twice = store.commit(t, once).await.unwrap_err();
    assert!(matches!(twice, Error::AlreadyExists { .. }), "{twice:?}");
    assert_eq!(emailed(&kinds(TimelineOf::Lead(lead.id)).await), 1);
    assert_eq!(emailed(&kinds(TimelineOf::Partner(partner.id)).await), 1);
}

/// The expiry time rule: only sent quotations whose validity ended before today expire (a draft, an accepted one
/// and one still valid today stay), oldest validity first, `limit` at a time, each with its `quotation_expired`
/// event on the lead's timeline; a second run finds nothing; a limit of 0 is refused.
pub async fn check_quotation_expiry(backend: &Arc<dyn crate::store::Backend>) {
    let store: Arc<dyn Store> = backend.clone();
    let commerce: Arc<dyn CommerceStore> = backend.clone();
    let (shop, _, lead) = shop_with_lead(&store, &commerce, "Expira SRL", "Short offers").await;
    let (cs, ctx, t) = (&shop.cs, &shop.w.ctx, shop.w.tenant);
    let today = crate::time::Clock::now(&*shop.w.clock).date_naive();
    let day = |n: i64| today + chrono::Duration::days(n);
    let for_lead = &lead;
    let make = |valid_until: chrono::NaiveDate, send: bool| async move {
        let mut new = quotation_for(for_lead, "100");
        new.terms.valid_until = valid_until;
        let q = cs.create_quotation(ctx, new).await.expect("quotation");
        if send {
            cs.quotation_command(ctx, q.id(), 1, QuotationCommand::Send)
                .await
                .expect("sent")
        } else {
            q
        }
    };
    let later = make(day(5), true).await;
    let sooner = make(day(2), true).await;
    let draft = make(day(1), false).await;
    let accepted = make(day(1), true).await;
    cs.quotation_command(ctx, accepted.id(), 2, QuotationCommand::Accept)
        .await
        .expect("accepted");
    let still_valid = make(day(30), true).await;
    assert!(cs.expire_quotations(ctx, 10).await.expect("run").is_empty());
    assert_eq!(
        cs.expire_quotations(ctx, 0).await.unwrap_err().field(),
        Some("limit")
    );
    // Six days on: the two sent ones whose last valid day has passed expire, the earlier validity first.
    shop.w.clock.advance(chrono::Duration::days(6));
    let due = commerce.quotations_expiring(t, day(6)).await.expect("due");
    assert_eq!(
        due.iter().map(|q| q.id()).collect::<Vec<_>>(),
        [sooner.id(), later.id()]
    );
    let first = cs.expire_quotations(ctx, 1).await.expect("run");
    assert_eq!(
        first
            .iter()
            .map(|q| (q.id(), q.status()))
            .collect::<Vec<_>>(),
        [(sooner.id(), QuotationStatus::Expired)]
    );
    let rest = cs.expire_quotations(ctx, 10).await.expect("run");
    assert_eq!(
        rest.iter().map(|q| q.id()).collect::<Vec<_>>(),
        [later.id()]
    );
    assert!(cs.expire_quotations(ctx, 10).await.expect("run").is_empty());
    for (q, status) in [
        (&sooner, QuotationStatus::Expired),
        (&later, QuotationStatus::Expired),
        (&draft, QuotationStatus::Draft),
        (&accepted, QuotationStatus::Accepted),
        (&still_valid, QuotationStatus::Sent),
    ] {
        let stored = commerce.quotation(t, q.id()).await.expect("stored");
        assert_eq!(stored.status(), status, "{}", q.number());
    }
    assert_on_timeline(&shop.w.crm, t, lead.id, &["quotation_expired"]).await;
}

/// The reminders' read: the tenant's scheduled meetings starting in a window, by start; a cancelled one is not a
/// candidate, nor one outside the window.
pub async fn check_meetings_starting(backend: &Arc<dyn crate::store::Backend>) {
    let store: Arc<dyn Store> = backend.clone();
    let commerce: Arc<dyn CommerceStore> = backend.clone();
    let (shop, _, lead) = shop_with_lead(&store, &commerce, "Amintire SRL", "Reminded").await;
    let (cs, ctx, t) = (&shop.cs, &shop.w.ctx, shop.w.tenant);
    let on = |d: u32, h: u32| {
        chrono::NaiveDate::from_ymd_opt(2026, 3, d)
            .and_then(|day| day.and_hms_opt(h, 0, 0))
            .expect("a time")
    };
    let (w, lead) = (&shop.w, &lead);
    let schedule = |d: u32, h: u32| async move {
        let mut new = meeting_for(w, lead);
        new.slot = Slot::new(on(d, h), on(d, h + 1), "Europe/Bucharest");
        cs.schedule_meeting(ctx, new).await.expect("scheduled")
    };
    let demo = schedule(9, 10).await;
    let later = schedule(10, 10).await;
    let called_off = schedule(9, 12).await;
    cs.meeting_command(ctx, called_off.id(), 1, MeetingCommand::Cancel)
        .await
        .expect("cancelled");
    let utc = |d: u32| on(d, 0).and_utc();
    let ids = |v: Vec<crate::sales::Meeting>| v.iter().map(|m| m.id()).collect::<Vec<_>>();
    let day = commerce
        .meetings_starting(t, utc(9), utc(10))
        .await
        .expect("read");
    assert_eq!(ids(day), [demo.id()]);
    let week = commerce
        .meetings_starting(t, utc(1), utc(11))
        .await
        .expect("read");
    assert_eq!(ids(week), [demo.id(), later.id()]);
    let none = commerce
        .meetings_starting(t, utc(11), utc(12))
        .await
        .expect("read");
    assert!(none.is_empty());
}
