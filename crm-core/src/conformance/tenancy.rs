//! Every read path, called with another tenant's ids and filters, returns nothing of that tenant.
//!
//! The check walks the storage traits' surface: every [`Key`] and [`CommerceKey`] variant (exhaustive matches, so a
//! new variant does not compile until it is covered here) and every other required read method (the
//! `trait_surface` test asserts each required method's name appears in this file).

use super::checks::World;
use super::commerce::Shop;
use super::outbox::message;
use crate::commerce::{
    CampaignMeasuresExt as _, Channel, CommerceKey, CommerceStore, Criteria, DocumentKind, GroupBy,
    NewCampaign, NewDocument, Period, PortalKey, SumsQuery,
};
use crate::event::CommentTarget;
use crate::id::TenantId;
use crate::lead::NewLead;
use crate::outbox::{InboxItem, InboxWrite, OutboxRef, OutboxStatus, OutboxStore, Settlement};
use crate::page::PageRequest;
use crate::partner::NewContact;
use crate::request::NewRequest;
use crate::store::{Backend, ChangeSet, Key, LeadQuery, RequestQuery, Store, TimelineOf, Write};
use crate::time::Clock;
use crate::Error;
use std::sync::Arc;

/// `keys` as they are, after `named` has matched each (an exhaustive match there makes a new key variant a
/// compile error here until the check covers it).
fn every<K: Clone>(keys: &[K], named: impl Fn(&K)) -> Vec<K> {
    keys.iter().for_each(named);
    keys.to_vec()
}

/// Every lead-side key of tenant `a`'s records (the match is exhaustive on purpose).
fn store_keys(keys: &[Key]) -> Vec<Key> {
    every(keys, |k| match k {
        Key::Partner(_) | Key::PartnersByKeys(_) | Key::PartnerByRef(_) => {}
        Key::PartnerByContactRef(_) | Key::PartnersAfter { .. } | Key::PartnersByRefs { .. } => {}
        Key::Pipeline(_) | Key::Pipelines | Key::LostReasons => {}
        Key::Lead(_) | Key::LeadByRef(_) | Key::StageHistory(_) | Key::Request(_) => {}
        Key::Setting(_) | Key::PartnerLinks(_) | Key::Merge(_) | Key::SubjectKeys(_) => {}
        Key::LeadLinks(_) | Key::LeadMerge(_) | Key::LeadWithPipeline(_) => {}
    })
}

/// Every commerce key (the match is exhaustive on purpose).
fn commerce_keys(keys: &[CommerceKey]) -> Vec<CommerceKey> {
    every(keys, |k| match k {
        CommerceKey::Category(_)
        | CommerceKey::CategoryCode(_)
        | CommerceKey::Categories(_)
        | CommerceKey::Product(_)
        | CommerceKey::ProductCode(_)
        | CommerceKey::Products(_)
        | CommerceKey::Document(_)
        | CommerceKey::DocumentNumber(..)
        | CommerceKey::Rate { .. }
        | CommerceKey::Campaign(_)
        | CommerceKey::CampaignCosts(_)
        | CommerceKey::CampaignTargetOf(_)
        | CommerceKey::CampaignTarget { .. }
        | CommerceKey::DocumentsDue { .. }
        | CommerceKey::DocumentsRenewing { .. }
        | CommerceKey::Balances { .. }
        | CommerceKey::DocumentsAfter { .. }
        | CommerceKey::Quotation(_)
        | CommerceKey::QuotationsOfLead(_)
        | CommerceKey::QuotationRevisions { .. }
        | CommerceKey::QuotationsExpiring { .. }
        | CommerceKey::LastQuotationOfYear(_)
        | CommerceKey::Contract(_)
        | CommerceKey::ContractsOfPartner(_)
        | CommerceKey::ContractsRenewing { .. }
        | CommerceKey::Attachment(_)
        | CommerceKey::AttachmentsOf(_)
        | CommerceKey::Meeting(_)
        | CommerceKey::MeetingsOfLead(_)
        | CommerceKey::MeetingsStarting { .. }
        | CommerceKey::Agenda { .. } => {}
        // The portal's: its representatives, and its reads (one record by id, or a list of the partner's).
        CommerceKey::Representative(_)
        | CommerceKey::RepresentativeByToken(_)
        | CommerceKey::PaymentAttemptByKey(_)
        | CommerceKey::RepresentativesByEmail(_) => {}
        CommerceKey::OfPartner { key, .. } => match key {
            PortalKey::Document(_) | PortalKey::Request(_) => {}
            PortalKey::Quotation(_) | PortalKey::Contract(_) => {}
            PortalKey::Documents { .. } | PortalKey::Quotations => {}
            PortalKey::Contracts | PortalKey::Representatives => {}
            PortalKey::Payments | PortalKey::PaymentsInProgress => {}
        },
    })
}

fn nothing_or_not_found<T: std::fmt::Debug>(what: &str, r: crate::Result<Vec<T>>) {
    match r {
        Ok(v) => assert!(
            v.is_empty(),
            "{what}: another tenant's rows came back: {v:?}"
        ),
        Err(Error::NotFound { .. }) => {}
        Err(e) => panic!("{what}: {e}"),
    }
}

/// A query of the other tenant answered, with nothing.
fn empty_page<T: std::fmt::Debug>(what: &str, r: crate::Result<crate::page::Page<T>>) {
    let page = r.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(page.items.is_empty(), "{what}: {page:?}");
}

/// Every partner: "not never bought" or "never bought".
fn everyone() -> Criteria {
    let never = Criteria::LastSale {
        when: crate::commerce::LastSale::Never,
    };
    Criteria::Or {
        any: vec![
            never.clone(),
            Criteria::Not {
                not: Box::new(never),
            },
        ],
    }
}

/// Tenant A holds one of everything; tenant B asks for it by A's ids through every read path and gets nothing.
pub async fn check_every_read_is_tenant_scoped(backend: &Arc<dyn Backend>) {
    let store: Arc<dyn Store> = backend.clone();
    let commerce: Arc<dyn CommerceStore> = backend.clone();
    let outbox: Arc<dyn OutboxStore> = backend.clone();
    let a = Shop::new(&store, &commerce).await;
    let b = World::new(&store).await;
    let (ta, tb): (TenantId, TenantId) = (a.w.tenant, b.tenant);

    // A: a customer with a contact, a lead, a request with a comment, an invoice, rates, a campaign with a cost,
    // an outbox message and an inbox item.
    let customer = super::portal::customer_with_contact(&a, "Mine SRL").await;
    let mut contacts: Vec<NewContact> = customer
        .contacts
        .iter()
        .map(|c| NewContact {
            name: c.name.clone(),
            email: c.email.clone(),
            host_ref: Some("MINE-C1".into()),
            ..NewContact::default()
        })
        .collect();
    contacts.truncate(1);
    let with_ref = crate::partner::PartnerPatch {
        host_ref: Some(Some("MINE-1".into())),
        contacts: Some(contacts),
        ..Default::default()
    };
    let customer =
        a.w.crm
            .update_partner(&a.w.ctx, customer.id, customer.version, with_ref)
            .await
            .expect("host reference")
            .record;
    let lead =
        a.w.crm
            .enter_lead(
                &a.w.ctx,
                NewLead::for_partner(customer.id, "Deal").with_host_ref("MINE-L1"),
            )
            .await
            .expect("lead")
            .record;
    a.w.crm
        .put_setting(&a.w.ctx, "mine.setting", serde_json::json!({ "a": 1 }))
        .await
        .expect("setting");
    let request =
        a.w.crm
            .open_request(&a.w.ctx, NewRequest::on_lead(lead.id, "Call", a.w.agent))
            .await
            .expect("request")
            .record;
    a.w.crm
        .comment(&a.w.ctx, CommentTarget::Request(request.id), "noted")
        .await
        .expect("comment");
    let day = chrono::NaiveDate::from_ymd_opt(2026, 1, 5).expect("a day");
    let invoice = a
        .record(
            NewDocument::invoice(
                "F-9",
                customer.id,
                day,
                "RON",
                vec![a.line(0, "1", "10", "1")],
            )
            .due(day)
            .renewing_on(day),
        )
        .await;
    a.cs.record_rate(
        &a.w.ctx,
        "EUR",
        "RON",
        day,
        rust_decimal::Decimal::new(5, 0),
    )
    .await
    .expect("rate");
    let campaign =
        a.cs.create_campaign(
            &a.w.ctx,
            NewCampaign {
                criteria: Some(everyone()),
                ..a.year_campaign("Win back", Channel::Email)
            },
        )
        .await
        .expect("campaign");
    a.cs.add_campaign_cost(
        &a.w.ctx,
        campaign.id,
        day,
        crate::money::Money::parse("10", "RON").expect("money"),
        None,
    )
    .await
    .expect("cost");
    let quote = |price| {
        let q = crate::conformance::commerce::quotation_for(&lead, price);
        a.cs.create_quotation(&a.w.ctx, q)
    };
    let quotation = quote("100").await.expect("quotation");
    let contract = crate::conformance::sales::contract_from(&a.cs, &a.w.ctx, &quotation).await;
    // A second quotation, sent: the expiry key would find it for anyone.
    let pending = quote("200").await.expect("quotation");
    a.cs.quotation_command(
        &a.w.ctx,
        pending.id(),
        1,
        crate::sales::QuotationCommand::Send,
    )
    .await
    .expect("sent");
    let meeting =
        a.cs.schedule_meeting(
            &a.w.ctx,
            crate::conformance::commerce::meeting_for(&a.w, &lead),
        )
        .await
        .expect("meeting");
    let attachment =
        a.cs.attach(
            &a.w.ctx,
            crate::sales::NewAttachment {
                target: crate::sales::AttachedTo::Lead(lead.id),
                name: "notes.txt".into(),
                shared_with_partner: true,
            },
            crate::conformance::model::stream_of(&b"tenant A's notes"[..]),
        )
        .await
        .expect("attachment");
    let provider = Arc::new(super::portal::TestProvider::new(
        super::portal::ProviderMode::ConfirmLater,
    ));
    let portal = crate::service::PortalService::new(a.cs.clone()).with_payment_provider(provider);
    let invited = portal
        .invite(
            &a.w.ctx,
            customer.id,
            customer.contacts[0].id,
            crate::portal::Rights::all(),
        )
        .await
        .expect("representative");
    let me = portal
        .login(ta, invited.token.as_str())
        .await
        .expect("accept");
    let attempt = portal
        .pay(
            &me,
            "tenancy",
            &[crate::portal::PayItem::all_of(invoice.id)],
        )
        .await
        .expect("pay");
    let m = message(ta, "tenancy", a.w.clock.now(), Some(a.w.agent));
    let mut cs = ChangeSet::new();
    cs.push(Write::EnqueueOutbox(m.clone()));
    store.commit(ta, cs).await.expect("enqueue");
    outbox
        .inbox_write(&InboxWrite::Put(
            InboxItem::from_message(&m, a.w.clock.now()).expect("an in-app message"),
        ))
        .await
        .expect("inbox");
    let item = outbox
        .inbox(ta, a.w.agent, false, &PageRequest::default())
        .await
        .expect("inbox")
        .items[0]
        .id;

    // Every key: A sees its record, B sees nothing.
    let keys = store_keys(&[
        Key::Partner(customer.id),
        Key::PartnersByKeys(crate::dedupe::keys_of(&customer)),
        Key::PartnerByRef(
            customer
                .host_ref
                .clone()
                .expect("the fixture's customer has a host reference"),
        ),
        Key::PartnerByContactRef("MINE-C1".into()),
        Key::PartnersAfter {
            after: None,
            limit: 10,
        },
        Key::PartnersByRefs {
            partners: vec!["MINE-1".into()],
            contacts: vec!["MINE-C1".into()],
        },
        Key::Pipeline(a.w.pipeline.id),
        Key::Pipelines,
        Key::LostReasons,
        Key::Lead(lead.id),
        Key::LeadByRef("MINE-L1".into()),
        Key::Setting("mine.setting".into()),
        Key::StageHistory(lead.id),
        Key::Request(request.id),
        Key::SubjectKeys(vec![*customer.id.as_uuid()]),
        Key::PartnerLinks(customer.id),
        Key::LeadLinks(lead.id),
        Key::LeadWithPipeline(lead.id),
    ]);
    for k in &keys {
        assert!(
            !store
                .fetch(ta, k)
                .await
                .expect("A reads its own")
                .is_empty(),
            "{k:?}: the fixture holds a record"
        );
        if matches!(k, Key::Pipelines | Key::LostReasons) {
            // B has its own seed pipeline and reasons: none of them is A's.
            for r in store.fetch(tb, k).await.expect("B reads its own") {
                assert!(!format!("{r:?}").contains(&ta.to_string()), "{k:?}: {r:?}");
            }
            continue;
        }
        nothing_or_not_found(&format!("fetch {k:?}"), store.fetch(tb, k).await);
    }
    let ckeys = commerce_keys(&[
        CommerceKey::Category(a.category),
        CommerceKey::CategoryCode("TOOLS".into()),
        CommerceKey::Categories(vec![a.category]),
        CommerceKey::Product(a.products[0]),
        CommerceKey::ProductCode("P0".into()),
        CommerceKey::Products(a.products.clone()),
        CommerceKey::Document(invoice.id),
        CommerceKey::DocumentNumber(DocumentKind::Invoice, "F-9".into()),
        CommerceKey::Rate {
            from: crate::money::Currency::parse("EUR").expect("EUR"),
            to: crate::money::Currency::parse("RON").expect("RON"),
            on: day,
        },
        CommerceKey::Campaign(campaign.id),
        CommerceKey::CampaignCosts(campaign.id),
        CommerceKey::CampaignTargetOf(request.id),
        CommerceKey::CampaignTarget {
            campaign: campaign.id,
            partner: customer.id,
        },
        CommerceKey::DocumentsDue {
            kind: DocumentKind::Invoice,
            from: day,
            before: day + chrono::Duration::days(1),
        },
        CommerceKey::DocumentsRenewing { from: day, to: day },
        CommerceKey::Balances {
            partner: customer.id,
            as_of: crate::time::MAX_BUSINESS_DATE,
        },
        CommerceKey::DocumentsAfter {
            after: None,
            limit: 10,
            filter: crate::commerce::DocumentFilter {
                partner: Some(customer.id),
                ..Default::default()
            },
        },
        CommerceKey::Quotation(quotation.id()),
        CommerceKey::QuotationsOfLead(lead.id),
        CommerceKey::QuotationRevisions {
            year: quotation.number().year,
            sequence: quotation.number().sequence,
        },
        CommerceKey::LastQuotationOfYear(quotation.number().year),
        CommerceKey::QuotationsExpiring {
            before: crate::time::MAX_BUSINESS_DATE,
        },
        CommerceKey::Contract(contract.id()),
        CommerceKey::ContractsOfPartner(customer.id),
        CommerceKey::ContractsRenewing {
            from: contract.term().starts_on,
            to: crate::time::MAX_BUSINESS_DATE,
        },
        CommerceKey::Attachment(attachment.id()),
        CommerceKey::AttachmentsOf(crate::sales::AttachedTo::Lead(lead.id)),
        CommerceKey::Meeting(meeting.id()),
        CommerceKey::MeetingsOfLead(lead.id),
        CommerceKey::MeetingsStarting {
            from: meeting.starts_at(),
            before: meeting.ends_at(),
        },
        CommerceKey::Agenda {
            user: a.w.agent,
            from: meeting.starts_at(),
            before: meeting.ends_at(),
        },
        CommerceKey::Representative(invited.representative.id()),
        CommerceKey::RepresentativeByToken(invited.token.digest()),
        CommerceKey::PaymentAttemptByKey(attempt.key().to_string()),
        CommerceKey::RepresentativesByEmail(invited.representative.email().to_lowercase()),
    ]);
    // The portal's reads: each finds A's record for A's partner, and nothing for another partner of A.
    let other = a.customer("Other SRL").await;
    let of_customer = |key| CommerceKey::OfPartner {
        partner: customer.id,
        key,
    };
    let portal_keys = commerce_keys(&[
        of_customer(PortalKey::Document(invoice.id)),
        of_customer(PortalKey::Documents {
            after: None,
            limit: 10,
        }),
        of_customer(PortalKey::Request(request.id)),
        of_customer(PortalKey::Quotation(quotation.id())),
        of_customer(PortalKey::Quotations),
        of_customer(PortalKey::Contract(contract.id())),
        of_customer(PortalKey::Contracts),
        of_customer(PortalKey::Representatives),
        of_customer(PortalKey::Payments),
        of_customer(PortalKey::PaymentsInProgress),
    ]);
    for own in portal_keys {
        let CommerceKey::OfPartner { key, .. } = own.clone() else {
            unreachable!("portal keys only")
        };
        assert!(
            !commerce
                .fetch_commerce(ta, &own)
                .await
                .expect("A reads its own")
                .is_empty(),
            "{own:?}: the fixture holds a record"
        );
        let neighbour = CommerceKey::OfPartner {
            partner: other.id,
            key,
        };
        nothing_or_not_found(
            &format!("fetch_commerce {neighbour:?}"),
            commerce.fetch_commerce(ta, &neighbour).await,
        );
        nothing_or_not_found(
            &format!("fetch_commerce {own:?}"),
            commerce.fetch_commerce(tb, &own).await,
        );
    }
    for k in &ckeys {
        nothing_or_not_found(
            &format!("fetch_commerce {k:?}"),
            commerce.fetch_commerce(tb, k).await,
        );
    }

    // Every other read, with A's ids and filters.
    let of_customer = LeadQuery {
        partner: Some(customer.id),
        ..Default::default()
    };
    empty_page("query_leads", store.query_leads(tb, &of_customer).await);
    match store.board(tb, a.w.pipeline.id).await {
        Ok(board) => assert!(board.columns.iter().all(|c| c.count == 0), "{board:?}"),
        Err(Error::NotFound { .. }) => {}
        Err(e) => panic!("board: {e}"),
    }
    match store.funnel(tb, a.w.pipeline.id, None).await {
        Ok(f) => assert_eq!(
            (f.won, f.lost, f.steps.iter().map(|s| s.2).sum::<u64>()),
            (0, 0, 0)
        ),
        Err(Error::NotFound { .. }) => {}
        Err(e) => panic!("funnel: {e}"),
    }
    let of_lead = RequestQuery {
        lead: Some(lead.id),
        ..Default::default()
    };
    empty_page("query_requests", store.query_requests(tb, &of_lead).await);
    nothing_or_not_found(
        "comments",
        store
            .comments(
                tb,
                CommentTarget::Request(request.id),
                &PageRequest::default(),
            )
            .await
            .map(|p| p.items),
    );
    for of in [
        TimelineOf::Lead(lead.id),
        TimelineOf::Partner(customer.id),
        TimelineOf::Request(request.id),
    ] {
        nothing_or_not_found(
            &format!("timeline {of:?}"),
            store
                .timeline(tb, of, &PageRequest::default())
                .await
                .map(|p| p.items),
        );
    }
    let feed = store.events_since(tb, 0, 1000).await.expect("events_since");
    assert!(
        feed.iter().all(|(_, e)| e.tenant == tb),
        "events_since: {feed:?}"
    );
    nothing_or_not_found(
        "campaign_targets",
        commerce
            .campaign_targets(tb, campaign.id, &PageRequest::default())
            .await
            .map(|p| p.items),
    );
    let members = commerce
        .segment(
            tb,
            &everyone(),
            day,
            crate::money::Currency::parse("RON").expect("RON"),
        )
        .await
        .expect("segment");
    assert!(
        members.iter().all(|m| m.partner != customer.id),
        "segment: {members:?}"
    );
    let q = SumsQuery::by(
        GroupBy::Customer,
        Period::year(2026).expect("a year"),
        crate::money::Currency::parse("RON").expect("RON"),
    );
    nothing_or_not_found("profit_sums", commerce.profit_sums(tb, &q).await);
    let sums = commerce
        .campaign_sums(tb, campaign.id, None, q.reporting)
        .await
        .expect("campaign_sums");
    assert_eq!(sums, Default::default(), "campaign_sums");
    for (tenant, listed) in [(ta, true), (tb, false)] {
        let all = crate::commerce::CampaignMeasuresExt::campaigns_sums(
            &*commerce,
            tenant,
            None,
            q.reporting,
        )
        .await
        .expect("campaigns_sums");
        assert_eq!(
            all.iter().any(|c| c.campaign == campaign.id),
            listed,
            "campaigns_sums: {all:?}"
        );
    }
    let progress = match commerce
        .campaign_measures(tb, &crate::commerce::CampaignRead::Progress(campaign.id))
        .await
        .expect("progress")
    {
        crate::commerce::CampaignMeasure::Progress(p) => p,
        other => panic!("progress answered {other:?}"),
    };
    assert!(
        progress.iter().all(|p| p.targets == 0),
        "progress: {progress:?}"
    );
    // Another tenant's campaign has no targets, outcomes or touches here.
    let window = Period::year(2026).expect("a year");
    let outcomes = commerce
        .campaign_outcomes(
            tb,
            campaign.id,
            &crate::commerce::OutcomeQuery {
                window,
                promoted: vec![],
                reporting: q.reporting,
            },
        )
        .await
        .expect("outcomes");
    assert_eq!(outcomes, Default::default(), "campaign outcomes");
    let inputs = commerce
        .attribution_inputs(
            tb,
            &crate::commerce::AttributionScope {
                period: window,
                lookback_days: 3650,
                reporting: q.reporting,
            },
        )
        .await
        .expect("attribution inputs");
    assert!(
        inputs.sales.iter().all(|s| s.partner != customer.id)
            && inputs.touches.iter().all(|t| t.campaign != campaign.id),
        "attribution inputs: {inputs:?}"
    );
    nothing_or_not_found(
        "open_items",
        commerce.open_items(tb, customer.id, day).await,
    );
    // Another tenant's roll-ups: B has no documents, so neither a check nor a rebuild finds anything of A's (and
    // A's reports are unchanged by B's rebuild: `check_rollup_repair`).
    let check = commerce
        .rollups(tb, crate::commerce::RollupAction::Rebuild)
        .await
        .expect("rollups");
    assert!(check.is_clean(), "rollups: {check:?}");

    // The outbox and the inbox.
    nothing_or_not_found(
        "list_outbox",
        outbox
            .list_outbox(tb, OutboxStatus::Pending, &PageRequest::default())
            .await
            .map(|p| {
                p.items
                    .into_iter()
                    .filter(|x| x.id == m.id)
                    .collect::<Vec<_>>()
            }),
    );
    for by in [OutboxRef::Id(m.id), OutboxRef::Key("tenancy".into())] {
        assert!(
            matches!(
                outbox.find_outbox(tb, &by).await,
                Err(Error::NotFound { .. })
            ),
            "find_outbox {by:?}"
        );
    }
    let settled = outbox
        .settle(tb, m.id, &Settlement::Dead { error: "x".into() })
        .await;
    assert!(
        matches!(settled, Err(Error::NotFound { .. })),
        "settle: {settled:?}"
    );
    let read = outbox
        .inbox_write(&InboxWrite::SetRead {
            tenant: tb,
            user: a.w.agent,
            item,
            read_at: None,
        })
        .await;
    assert!(
        matches!(read, Err(Error::NotFound { .. })),
        "inbox_write: {read:?}"
    );
    nothing_or_not_found(
        "inbox",
        outbox
            .inbox(tb, a.w.agent, false, &PageRequest::default())
            .await
            .map(|p| p.items),
    );
    assert_eq!(outbox.unread_count(tb, a.w.agent).await.expect("unread"), 0);
    // A's message is untouched by B's attempts; claim_due serves every tenant by design.
    let mine = outbox
        .find_outbox(ta, &OutboxRef::Id(m.id))
        .await
        .expect("A's message");
    assert_eq!(mine.status, OutboxStatus::Pending);
}
