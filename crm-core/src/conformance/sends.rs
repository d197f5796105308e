//! E-mail and SMS campaigns that send: the message checked when set, one outbox message per target (consent-gated,
//! spaced by the tenant's send rate, exactly once even when two sends race), and the host's delivery reports.

use super::commerce::Shop;
use super::uplift::all_targets;
use crate::commerce::reference;
use crate::commerce::send::{CampaignMessage, DeliveryReport, SendStatus};
use crate::commerce::{
    Campaign, CampaignMeasuresExt as _, Channel, CommerceStore, CommerceStoreExt as _, Criteria,
    Holdout, TouchKind,
};
use crate::consent::{ConsentChannel, NewConsent, Purpose, UNSUBSCRIBE_VAR};
use crate::event::EventKind;
use crate::id::PartnerId;
use crate::outbox::{Channel as Medium, OutboxStatus, OutboxStore, OutboxStoreExt as _};
use crate::page::PageRequest;
use crate::partner::{NewContact, NewPartner, Partner, PartnerRole};
use crate::service::{message_key, CommerceService, SendRate};
use crate::store::{Backend, Store, TimelineOf};
use crate::time::Clock as _;
use crate::Error;
use chrono::Duration;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What a partner of the fixture is given: its contacts as (name, e-mail, phone, consents to e-mail marketing,
/// consents to SMS marketing).
type Contacts = &'static [(
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    bool,
    bool,
)];

/// The audience: what each partner should get from an e-mail send.
const AUDIENCE: &[(&str, Contacts, SendStatus)] = &[
    (
        "Alfa",
        &[("Ana", Some("ana@alfa.example"), None, true, false)],
        SendStatus::Queued,
    ),
    (
        "Beta",
        &[(
            "Bob",
            Some("bob@beta.example"),
            Some("+40 721 000 001"),
            true,
            true,
        )],
        SendStatus::Queued,
    ),
    (
        "Gama",
        &[("Gia", Some("gia@gama.example"), None, true, false)],
        SendStatus::Queued,
    ),
    (
        "Delta",
        &[("Dan", Some("dan@delta.example"), None, true, false)],
        SendStatus::Queued,
    ),
    (
        "Epsilon",
        &[(
            "Eva",
            Some("eva@eps.example"),
            Some("0721 000 002"),
            true,
            true,
        )],
        SendStatus::Queued,
    ),
    (
        "Zeta",
        &[("Zoe", Some("zoe@zeta.example"), None, false, false)],
        SendStatus::NoConsent,
    ),
    (
        "Eta",
        &[("Eli", None, Some("0721 000 003"), false, true)],
        SendStatus::NoAddress,
    ),
    ("Theta", &[], SendStatus::NoAddress),
    (
        "Iota",
        &[
            ("Ion", Some("ion@iota.example"), None, false, false),
            ("Ira", Some("ira@iota.example"), None, true, false),
        ],
        SendStatus::Queued,
    ),
    (
        "Kappa",
        &[("Kim", Some("kim@kappa.example"), None, true, false)],
        SendStatus::Queued,
    ),
];

async fn consent(s: &Shop, p: &Partner, contact: usize, channel: &str, granted: bool) -> Partner {
    let answer = NewConsent {
        channel: channel.into(),
        purpose: "marketing".into(),
        granted,
        source: "web form".into(),
        proof: None,
    };
    s.w.crm
        .record_consent(
            &s.w.ctx,
            p.id(),
            p.version(),
            p.contacts()[contact].id,
            answer,
        )
        .await
        .expect("consent")
        .record
}

/// The partners of [`AUDIENCE`], tagged `mailing`, with their consents; by name.
async fn audience(s: &Shop) -> BTreeMap<&'static str, Partner> {
    let mut out = BTreeMap::new();
    for (name, contacts, _) in AUDIENCE {
        let mut n = NewPartner::company(format!("{name} SRL")).with_role(PartnerRole::Customer);
        n.tags.insert("mailing".into());
        for (cname, email, phone, _, _) in contacts.iter() {
            n.contacts.push(NewContact {
                name: (*cname).into(),
                email: email.map(str::to_string),
                phone: phone.map(str::to_string),
                ..NewContact::default()
            });
        }
        let mut p =
            s.w.crm
                .create_partner(&s.w.ctx, n)
                .await
                .expect("partner")
                .record;
        for (i, (_, _, _, mail, sms)) in contacts.iter().enumerate() {
            if *mail {
                p = consent(s, &p, i, "email", true).await;
            }
            if *sms {
                p = consent(s, &p, i, "sms", true).await;
            }
        }
        out.insert(*name, p);
    }
    out
}

/// The pending campaign messages of the tenant, by key.
async fn pending(
    outbox: &Arc<dyn OutboxStore>,
    s: &Shop,
) -> BTreeMap<String, crate::outbox::OutboxMessage> {
    let mut out = BTreeMap::new();
    let mut page = PageRequest::first(100);
    loop {
        let p = outbox
            .list_outbox(s.w.tenant, OutboxStatus::Pending, &page)
            .await
            .expect("outbox");
        for m in p.items {
            if m.idempotency_key.starts_with("campaign:") {
                assert!(
                    out.insert(m.idempotency_key.clone(), m).is_none(),
                    "one message per key"
                );
            }
        }
        match p.next {
            Some(after) => page.after = Some(after),
            None => return out,
        }
    }
}

async fn launched(
    s: &Shop,
    cs: &CommerceService,
    name: &str,
    channel: Channel,
    holdout: Option<Holdout>,
) -> Campaign {
    let mut input = s.year_campaign(name, channel);
    input.agents.clear();
    input.criteria = Some(Criteria::Tag {
        tag: "mailing".into(),
    });
    let c = cs.create_campaign(&s.w.ctx, input).await.expect("campaign");
    cs.launch_campaign_with(&s.w.ctx, c.id(), c.version(), holdout)
        .await
        .expect("launch")
        .campaign
}

/// An e-mail campaign over ten partners (a 20 % holdout drawn from them) sends each target that has a consenting
/// contact with an address exactly one marketing e-mail, rendered for that contact (the first consenting one), due
/// a minute apart at the tenant's rate of 60 an hour, carrying the campaign's unsubscribe token; those held out get
/// nothing; the others are recorded as skipped (`no_consent`, `no_address`). Sending again, or two sends racing
/// from two services, adds nothing. An SMS campaign of the same tenant starts after the e-mail's last slot. The
/// host's reports move targets forward (delivered → opened; bounced; unsubscribed, through the API and through
/// the e-mail's token, withdrawing the contact's consent); repeats change nothing; the progress counts each state
/// as the reference does. Bad input: a template naming a missing field, a message for a telemarketing campaign,
/// a send before the launch or without a message, a report for an unknown message, a skipped target, another
/// tenant's message, news after a bounce, a bounce without a reason.
pub async fn check_campaign_sends(backend: &Arc<dyn Backend>) {
    let store: Arc<dyn Store> = backend.clone();
    let commerce: Arc<dyn CommerceStore> = backend.clone();
    let outbox: Arc<dyn OutboxStore> = backend.clone();
    let s = Shop::new(&store, &commerce).await;
    let (ctx, tenant) = (s.w.ctx.clone(), s.w.tenant);
    let rate = SendRate::per_hour(60).expect("rate");
    let cs = s.cs.clone().with_tenant_send_rate(tenant, rate);
    let partners = audience(&s).await;

    // Bad input before anything is sent.
    let mut draft = s.year_campaign("Calls", Channel::Telemarketing);
    draft.criteria = Some(Criteria::Tag {
        tag: "mailing".into(),
    });
    let calls = cs.create_campaign(&ctx, draft).await.expect("campaign");
    let message = CampaignMessage {
        subject: Some("{{ campaign.name }} for {{ partner.name }}".into()),
        text: "Dear {{ contact.name }}, {{ campaign.offer }} until {{ campaign.ends }}.".into(),
        html: Some("<p>Dear {{ contact.name }}</p>".into()),
        offer: Some("10% off every pump".into()),
    };
    let e = cs
        .set_campaign_message(&ctx, calls.id(), calls.version(), message.clone())
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("channel"), "{e}");
    let holdout = Holdout::new(rust_decimal::Decimal::from(20), 7).expect("holdout");
    let spring = launched(&s, &cs, "Spring", Channel::Email, Some(holdout)).await;
    let e = cs.send_campaign(&ctx, spring.id()).await.unwrap_err();
    assert_eq!(e.field(), Some("message"), "{e}");
    let typo = CampaignMessage {
        text: "Dear {{ contact.first_name }}".into(),
        ..message.clone()
    };
    let e = cs
        .set_campaign_message(&ctx, spring.id(), spring.version(), typo)
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("message.text"), "{e}");
    assert!(e.to_string().contains("contact.first_name"), "{e}");
    let unchanged = cs.campaign(tenant, spring.id()).await.expect("campaign");
    assert_eq!(
        (unchanged.version(), unchanged.message()),
        (spring.version(), None)
    );
    let spring = cs
        .set_campaign_message(&ctx, spring.id(), spring.version(), message.clone())
        .await
        .expect("message");
    assert_eq!(spring.message(), Some(&message));

    // The send.
    let held: BTreeSet<PartnerId> = all_targets(&s, &spring)
        .await
        .iter()
        .filter(|t| t.holdout())
        .map(|t| t.partner())
        .collect();
    assert_eq!(held.len(), 2);
    let expected: BTreeMap<PartnerId, SendStatus> = AUDIENCE
        .iter()
        .map(|(name, _, status)| (partners[name].id(), *status))
        .filter(|(p, _)| !held.contains(p))
        .collect();
    let count = |status: SendStatus| expected.values().filter(|s| **s == status).count() as u64;
    let now = s.w.clock.now();
    // Two services (two processes' worth of send locks) race: between them, each target is sent once.
    let other = s.cs.clone().with_tenant_send_rate(tenant, rate);
    let (a, b) = futures::future::join(
        cs.send_campaign(&ctx, spring.id()),
        other.send_campaign(&ctx, spring.id()),
    )
    .await;
    for r in [&a, &b] {
        assert!(matches!(r, Ok(_) | Err(Error::Conflict { .. })), "{r:?}");
    }
    let again = cs
        .send_campaign(&ctx, spring.id())
        .await
        .expect("send again");
    let summaries: Vec<_> = [a, b]
        .into_iter()
        .flatten()
        .chain([again.clone()])
        .collect();
    let queued: u64 = summaries.iter().map(|x| x.queued).sum();
    assert_eq!(
        queued,
        count(SendStatus::Queued),
        "each target queued once: {summaries:?}"
    );
    assert_eq!(
        again.already + again.queued + again.no_address + again.no_consent,
        expected.len() as u64
    );
    let sent = pending(&outbox, &s).await;
    assert_eq!(sent.len() as u64, count(SendStatus::Queued));
    let targets = all_targets(&s, &spring).await;
    for t in &targets {
        let key = message_key(spring.id(), t.partner());
        if held.contains(&t.partner()) {
            assert!(t.send().is_none(), "the holdout gets nothing");
            assert!(!sent.contains_key(&key));
            continue;
        }
        let send = t.send().expect("every target handled");
        assert_eq!(send.status, expected[&t.partner()], "{}", t.partner());
        assert_eq!(sent.contains_key(&key), send.status == SendStatus::Queued);
        if let Some(m) = sent.get(&key) {
            assert_eq!(send.message, Some(m.id));
            assert_eq!((m.channel, m.purpose), (Medium::Email, Purpose::Marketing));
            assert_eq!(m.about.partner, Some(t.partner()));
            assert_eq!(Some(m.next_attempt_at), send.due);
        }
    }
    let iota = &partners["Iota"];
    if !held.contains(&iota.id()) {
        let m = &sent[&message_key(spring.id(), iota.id())];
        assert_eq!(
            m.recipient.email.as_deref(),
            Some("ira@iota.example"),
            "the consenting contact"
        );
        assert_eq!(m.payload.subject, "Spring for Iota SRL");
        assert_eq!(
            m.payload.body,
            "Dear Ira, 10% off every pump until 2026-12-31."
        );
        assert_eq!(m.payload.vars["html"], "<p>Dear Ira</p>");
        let token = m.payload.vars[UNSUBSCRIBE_VAR].as_str().expect("token");
        let token = crate::consent::UnsubscribeToken::parse(token).expect("a token");
        assert_eq!(
            (token.campaign, token.contact),
            (Some(spring.id()), iota.contacts()[1].id)
        );
    }
    let mut dues: Vec<_> = sent.values().map(|m| m.next_attempt_at).collect();
    dues.sort();
    assert_eq!(dues.first(), Some(&now), "the first slot is now");
    assert!(
        dues.windows(2).all(|w| w[1] - w[0] == Duration::minutes(1)),
        "{dues:?}"
    );
    let last_email = *dues.last().expect("messages");

    let progress = cs.progress(tenant, spring.id()).await.expect("progress");
    assert_eq!(progress, reference::progress(&targets, spring.id()));
    let by: BTreeMap<SendStatus, u64> = [
        SendStatus::Queued,
        SendStatus::NoConsent,
        SendStatus::NoAddress,
    ]
    .into_iter()
    .map(|x| (x, count(x)))
    .filter(|(_, n)| *n > 0)
    .collect();
    assert_eq!(progress[0].messages, by);

    // An SMS campaign of the same tenant queues after the e-mails' last slot, to the consenting phones.
    let sms = launched(&s, &cs, "Spring SMS", Channel::Sms, None).await;
    let sms = cs
        .set_campaign_message(
            &ctx,
            sms.id(),
            sms.version(),
            CampaignMessage::sms("{{ contact.name }}: {{ campaign.name }}"),
        )
        .await
        .expect("sms message");
    let texted = cs.send_campaign(&ctx, sms.id()).await.expect("sms send");
    assert_eq!(
        (texted.queued, texted.first_due),
        (3, Some(last_email + Duration::minutes(1)))
    );
    let m = outbox
        .outbox_by_key(tenant, &message_key(sms.id(), partners["Beta"].id()))
        .await
        .expect("sms");
    assert_eq!(
        (
            m.channel,
            m.recipient.phone.as_deref(),
            m.payload.body.as_str()
        ),
        (Medium::Sms, Some("+40 721 000 001"), "Bob: Spring SMS")
    );
    assert!(m.payload.vars[UNSUBSCRIBE_VAR].is_string());

    // Reports.
    let queued_partners: Vec<PartnerId> = expected
        .iter()
        .filter(|(_, st)| **st == SendStatus::Queued)
        .map(|(p, _)| *p)
        .collect();
    assert!(queued_partners.len() >= 4, "{queued_partners:?}");
    let key = |p: PartnerId| message_key(spring.id(), p);
    let report = |p: PartnerId, r: DeliveryReport| {
        let (cs, ctx) = (&cs, &ctx);
        async move { cs.report_campaign_message(ctx, &key(p), r).await }
    };
    s.w.clock.advance(Duration::hours(1));
    let (opened, bounced, unsubscribed, via_token) = (
        queued_partners[0],
        queued_partners[1],
        queued_partners[2],
        queued_partners[3],
    );
    report(opened, DeliveryReport::Delivered)
        .await
        .expect("delivered");
    let t = report(opened, DeliveryReport::Opened)
        .await
        .expect("opened");
    let again = report(opened, DeliveryReport::Opened)
        .await
        .expect("repeat");
    assert_eq!(again, t, "a repeated report changes nothing");
    let bounce = DeliveryReport::Bounced {
        reason: "550 5.1.1 no such user".into(),
    };
    let before = commerce
        .campaign_target_of(tenant, spring.id(), bounced)
        .await
        .unwrap()
        .unwrap();
    let e = report(bounced, DeliveryReport::Bounced { reason: " ".into() })
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("report.reason"), "{e}");
    let same = commerce
        .campaign_target_of(tenant, spring.id(), bounced)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(same, before, "a refused report writes nothing");
    report(bounced, bounce).await.expect("bounced");
    let e = report(bounced, DeliveryReport::Delivered)
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("report"), "{e}");
    let t = report(unsubscribed, DeliveryReport::Unsubscribed)
        .await
        .expect("unsubscribed");
    let contact = t.send().and_then(|x| x.contact).expect("contact");
    let p =
        s.w.crm
            .partner(tenant, unsubscribed)
            .await
            .expect("partner");
    let c = p
        .contacts()
        .iter()
        .find(|c| c.id == contact)
        .expect("contact");
    assert!(
        c.consent(ConsentChannel::Email, Purpose::Marketing)
            .is_none(),
        "consent withdrawn"
    );
    let token = sent[&key(via_token)].payload.vars[UNSUBSCRIBE_VAR]
        .as_str()
        .expect("token")
        .to_string();
    cs.unsubscribe(&token).await.expect("unsubscribe link");
    let t = commerce
        .campaign_target_of(tenant, spring.id(), via_token)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.send().map(|x| x.status), Some(SendStatus::Unsubscribed));
    let p = s.w.crm.partner(tenant, via_token).await.expect("partner");
    assert!(p.contacts().iter().all(|c| c
        .consent(ConsentChannel::Email, Purpose::Marketing)
        .is_none()));
    // The same link again changes nothing.
    cs.unsubscribe(&token).await.expect("a second click");

    // Unknown messages.
    let stranger = message_key(spring.id(), PartnerId::new());
    let e = cs
        .report_campaign_message(&ctx, &stranger, DeliveryReport::Delivered)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::NotFound {
                entity: "campaign message",
                ..
            }
        ),
        "{e}"
    );
    let skipped = expected
        .iter()
        .find(|(_, st)| **st != SendStatus::Queued)
        .map(|(p, _)| *p)
        .expect("a skipped target");
    let e = report(skipped, DeliveryReport::Delivered)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    let e = cs
        .report_campaign_message(&ctx, "quotation/1/sent/x", DeliveryReport::Delivered)
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("message"), "{e}");
    let elsewhere = Shop::new(&store, &commerce).await;
    let e = elsewhere
        .cs
        .report_campaign_message(&elsewhere.w.ctx, &key(opened), DeliveryReport::Delivered)
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::NotFound { .. }),
        "another tenant's message reads as not found: {e}"
    );

    // The progress counts every state as the reference does.
    let targets = all_targets(&s, &spring).await;
    let progress = cs.progress(tenant, spring.id()).await.expect("progress");
    assert_eq!(progress, reference::progress(&targets, spring.id()));
    let m = &progress[0].messages;
    assert_eq!(m.get(&SendStatus::Opened), Some(&1));
    assert_eq!(m.get(&SendStatus::Bounced), Some(&1));
    assert_eq!(m.get(&SendStatus::Unsubscribed), Some(&2));
    assert_eq!(
        m.get(&SendStatus::Queued).copied().unwrap_or(0),
        count(SendStatus::Queued) - 4
    );
    let opened_t = targets
        .iter()
        .find(|t| t.partner() == opened)
        .and_then(|t| t.send().cloned())
        .expect("opened");
    assert_eq!(
        (opened_t.delivered_at, opened_t.opened_at),
        (
            Some(now + Duration::hours(1)),
            Some(now + Duration::hours(1))
        )
    );

    // Delivered and opened messages are touches of the campaign (a bounce is none).
    let scope = crate::commerce::AttributionScope {
        period: crate::commerce::Period::year(2026).expect("a year"),
        lookback_days: 90,
        reporting: crate::money::Currency::parse("RON").expect("RON"),
    };
    let inputs = commerce
        .attribution_inputs(tenant, &scope)
        .await
        .expect("attribution inputs");
    let got: BTreeSet<(PartnerId, TouchKind, chrono::NaiveDate)> = inputs
        .touches
        .iter()
        .filter(|t| t.campaign == spring.id())
        .map(|t| (t.partner, t.kind, t.on))
        .collect();
    let launch_day = spring.launched_at().expect("launched").date_naive();
    let mut want = BTreeSet::new();
    for t in targets.iter().filter(|t| !t.holdout()) {
        want.insert((t.partner(), TouchKind::Targeted, launch_day));
        if let Some(send) = t.send() {
            for (at, kind) in [
                (send.delivered_at, TouchKind::Messaged),
                (send.opened_at, TouchKind::Opened),
            ] {
                if let Some(at) = at {
                    want.insert((t.partner(), kind, at.date_naive()));
                }
            }
        }
    }
    assert_eq!(got, want);
    let kinds = |p: PartnerId| -> BTreeSet<TouchKind> {
        got.iter().filter(|x| x.0 == p).map(|x| x.1).collect()
    };
    assert_eq!(
        kinds(opened),
        BTreeSet::from([TouchKind::Targeted, TouchKind::Messaged, TouchKind::Opened])
    );
    assert_eq!(kinds(bounced), BTreeSet::from([TouchKind::Targeted]));

    // The partner's timeline tells the bounce.
    let events =
        s.w.crm
            .timeline(
                tenant,
                TimelineOf::Partner(bounced),
                &PageRequest::first(100),
            )
            .await
            .expect("timeline");
    assert!(events.items.iter().any(|e| matches!(
        &e.kind,
        EventKind::CampaignMessageReported { status: SendStatus::Bounced, note: Some(n), .. } if n.starts_with("550")
    )));
}
