//! Consent on a backend: recorded per contact, channel and purpose; a rule's marketing e-mail enqueued only for a
//! contact who consents (with the token that withdraws it), suppressed otherwise; the unsubscribe token withdraws it.

use crate::actor::Context;
use crate::comms::{
    Action, DecidedAction, Decision, Recipient, RuleEngine, StaticDirectory, Trigger, Views,
};
use crate::consent::{ConsentChannel, NewConsent, Purpose, UNSUBSCRIBE_VAR};
use crate::event::EventKind;
use crate::id::{ContactId, UserId};
use crate::lead::NewLead;
use crate::outbox::{OutboxMessage, OutboxStatus, OutboxStore};
use crate::page::PageRequest;
use crate::partner::{NewContact, NewPartner, Partner, PartnerPatch};
use crate::service::CrmService;
use crate::store::{Backend, Store, StoreExt, TimelineOf};
use crate::time::FixedClock;
use crate::Error;
use chrono::TimeZone;
use std::sync::Arc;

/// On every new lead: an offer (marketing) and a welcome (service) to the partner's contacts.
#[derive(Debug)]
struct Offers;

impl RuleEngine for Offers {
    fn evaluate(&self, trigger: &Trigger, _: &Views) -> Decision {
        let mut d = Decision::default();
        if matches!(trigger, Trigger::Event(e) if matches!(e.kind, EventKind::LeadEntered { .. })) {
            for (template, purpose) in
                [("offer", Purpose::Marketing), ("welcome", Purpose::Service)]
            {
                d.actions.push(DecidedAction {
                    rule: template.into(),
                    action: Action::SendEmail {
                        to: Recipient::PartnerContact("primary".into()),
                        template: template.into(),
                        vars: serde_json::json!({}),
                        purpose,
                    },
                });
            }
        }
        d
    }
}

fn answer(channel: &str, purpose: &str, granted: bool) -> NewConsent {
    NewConsent {
        channel: channel.into(),
        purpose: purpose.into(),
        granted,
        source: "web form".into(),
        proof: Some("form 4711".into()),
    }
}

/// The pending e-mails of `template`, by address.
async fn mails(outbox: &Arc<dyn OutboxStore>, ctx: &Context, template: &str) -> Vec<OutboxMessage> {
    let page = PageRequest {
        limit: 500,
        ..PageRequest::default()
    };
    let all = outbox
        .list_outbox(ctx.tenant, OutboxStatus::Pending, &page)
        .await
        .expect("outbox");
    all.items
        .into_iter()
        .filter(|m| m.payload.template.as_deref() == Some(template))
        .collect()
}

fn to(ms: &[OutboxMessage]) -> Vec<String> {
    let mut v: Vec<String> = ms
        .iter()
        .filter_map(|m| m.recipient.email.clone())
        .collect();
    v.sort();
    v
}

/// Consent recorded and enforced where messages are enqueued; the unsubscribe token.
pub async fn check_consent(backend: &Arc<dyn Backend>) {
    let store: Arc<dyn Store> = backend.clone();
    let outbox: Arc<dyn OutboxStore> = backend.clone();
    let tenant = crate::id::TenantId::new();
    let clock = Arc::new(FixedClock::new(
        chrono::Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(),
    ));
    let crm = CrmService::builder()
        .store(store.clone())
        .clock(clock.clone())
        .rules(Arc::new(Offers), Arc::new(StaticDirectory::new(tenant)))
        .build()
        .expect("service");
    let ctx = Context::user(tenant, UserId::new());
    crm.setup_tenant(&ctx).await.expect("setup");
    let mut new = NewPartner::company("Acme SRL");
    for (name, email) in [
        ("Ana Pop", "ana@acme.example"),
        ("Bob Ionescu", "bob@acme.example"),
    ] {
        new.contacts.push(NewContact {
            name: name.into(),
            email: Some(email.into()),
            ..NewContact::default()
        });
    }
    let acme: Partner = crm.create_partner(&ctx, new).await.expect("partner").record;
    let (ana, bob) = (acme.contacts()[0].id, acme.contacts()[1].id);

    // Bad input: nothing written.
    let record = |p: &Partner, c: ContactId, a: NewConsent| {
        let (id, v) = (p.id(), p.version());
        let crm = &crm;
        let ctx = &ctx;
        async move { crm.record_consent(ctx, id, v, c, a).await }
    };
    let field = |r: crate::Result<crate::service::Outcome<Partner>>| {
        r.expect_err("refused").field().map(str::to_string)
    };
    assert_eq!(
        field(record(&acme, ana, answer("fax", "marketing", true)).await).as_deref(),
        Some("channel")
    );
    assert_eq!(
        field(record(&acme, ana, answer("email", "spam", true)).await).as_deref(),
        Some("purpose")
    );
    let mut no_source = answer("email", "marketing", true);
    no_source.source = " ".into();
    assert_eq!(
        field(record(&acme, ana, no_source).await).as_deref(),
        Some("source")
    );
    assert!(matches!(
        record(&acme, ContactId::new(), answer("email", "marketing", true)).await,
        Err(Error::NotFound {
            entity: "contact",
            ..
        })
    ));
    let other = Context::user(crate::id::TenantId::new(), UserId::new());
    assert!(matches!(
        crm.record_consent(
            &other,
            acme.id(),
            acme.version(),
            ana,
            answer("email", "marketing", true)
        )
        .await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        store
            .partner(tenant, acme.id())
            .await
            .expect("read")
            .version(),
        acme.version()
    );

    // Ana consents to marketing by e-mail; Bob only to calls.
    let acme = record(&acme, ana, answer("email", "marketing", true))
        .await
        .expect("consent")
        .record;
    let acme = record(&acme, bob, answer("phone", "marketing", true))
        .await
        .expect("consent")
        .record;
    let stale = crm
        .record_consent(&ctx, acme.id(), 1, bob, answer("email", "service", true))
        .await;
    assert!(matches!(stale, Err(Error::Conflict { .. })));
    let read = crm.partner(tenant, acme.id()).await.expect("read");
    let consent = read.contacts()[0]
        .consent(ConsentChannel::Email, Purpose::Marketing)
        .expect("given");
    assert_eq!(
        (consent.source.as_str(), consent.proof.as_deref()),
        ("web form", Some("form 4711"))
    );
    assert!(read.contacts()[1]
        .consent(ConsentChannel::Email, Purpose::Marketing)
        .is_none());
    // An edit of the contacts keeps their consents.
    let keep = PartnerPatch {
        contacts: Some(read.contacts().iter().map(NewContact::from).collect()),
        tags: Some(std::collections::BTreeSet::from(["vip".to_string()])),
        ..Default::default()
    };
    let read = crm
        .update_partner(&ctx, read.id(), read.version(), keep)
        .await
        .expect("edit")
        .record;
    assert!(read.contacts()[0]
        .consent(ConsentChannel::Email, Purpose::Marketing)
        .is_some());

    // A lead: the offer goes to Ana only, with her unsubscribe token; the welcome to both; Bob's offer is a
    // suppressed-message event.
    crm.enter_lead(&ctx, NewLead::for_partner(acme.id(), "Forklifts"))
        .await
        .expect("lead");
    let offers = mails(&outbox, &ctx, "offer").await;
    assert_eq!(to(&offers), vec!["ana@acme.example"]);
    assert_eq!(
        to(&mails(&outbox, &ctx, "welcome").await),
        vec!["ana@acme.example", "bob@acme.example"]
    );
    assert_eq!(offers[0].purpose, Purpose::Marketing);
    let token = offers[0].payload.vars[UNSUBSCRIBE_VAR]
        .as_str()
        .expect("the offer carries its unsubscribe token")
        .to_string();
    let timeline = crm
        .timeline(
            tenant,
            TimelineOf::Partner(acme.id()),
            &PageRequest::default(),
        )
        .await
        .expect("timeline");
    let suppressed: Vec<&str> = timeline
        .items
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::MessageSuppressed { recipient, .. } => Some(recipient.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(suppressed, vec!["Bob Ionescu"]);
    let logged = timeline.items.iter().find_map(|e| match &e.kind {
        EventKind::ConsentRecorded { contact, consent } if *contact == ana => Some(consent.clone()),
        _ => None,
    });
    assert!(
        logged.is_some_and(|c| c.granted && c.key.is_none()),
        "the log keeps the answer, not the key"
    );

    // The unsubscribe link withdraws Ana's consent; the next offer is suppressed; the link again changes nothing.
    assert_eq!(
        crm.unsubscribe("garbage")
            .await
            .expect_err("bad token")
            .field(),
        Some("token")
    );
    let out = crm.unsubscribe(&token).await.expect("unsubscribe");
    assert_eq!(out.events.len(), 1);
    let withdrawn = out.record.contacts()[0]
        .consents
        .iter()
        .find(|c| c.channel == ConsentChannel::Email && c.purpose == Purpose::Marketing)
        .expect("the answer")
        .clone();
    assert!(!withdrawn.granted && withdrawn.source == "unsubscribe link");
    assert!(crm
        .unsubscribe(&token)
        .await
        .expect("again")
        .events
        .is_empty());
    clock.advance(chrono::Duration::minutes(5));
    crm.enter_lead(&ctx, NewLead::for_partner(acme.id(), "Pallets"))
        .await
        .expect("lead");
    assert_eq!(
        mails(&outbox, &ctx, "offer").await.len(),
        1,
        "no new offer after unsubscribing"
    );
    // Consent given again makes a new key: the old link no longer speaks for it.
    let now = crm.partner(tenant, acme.id()).await.expect("read");
    record(&now, ana, answer("email", "marketing", true))
        .await
        .expect("again");
    assert_eq!(
        crm.unsubscribe(&token)
            .await
            .expect_err("an old link")
            .field(),
        Some("token")
    );
}
