//! E-mail against a real SMTP server on loopback (aiosmtpd, started by `scripts/with-smtp`).
//!
//! Without `CRM_TEST_SMTP_ADDR` the tests say they were skipped; with `CRM_REQUIRE_SMTP=1` they fail instead.

use chrono::{Duration, TimeZone, Utc};
use crm_core::id::{OutboxId, TenantId, UserId};
use crm_core::outbox::{
    Channel, DeliveryError, MemoryOutbox, Notifier, OutboxMessage, OutboxStatus, Payload,
    ResolvedRecipient, RetryPolicy,
};
use crm_core::outbox::{OutboxStore, OutboxStoreExt};
use crm_core::time::FixedClock;
use crm_delivery::Dispatcher;
use crm_rules::notify::{
    message_id, SmtpConfig, SmtpNotifier, Templates, DEFAULT_MESSAGE_ID_DOMAIN,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

struct Server {
    host: String,
    port: u16,
    maildir: PathBuf,
}

fn server(test: &str) -> Option<Server> {
    match std::env::var("CRM_TEST_SMTP_ADDR") {
        Ok(addr) => {
            let (host, port) = addr
                .rsplit_once(':')
                .expect("CRM_TEST_SMTP_ADDR is host:port");
            Some(Server {
                host: host.to_string(),
                port: port.parse().expect("a port number"),
                maildir: PathBuf::from(
                    std::env::var("CRM_TEST_SMTP_MAILDIR").expect("CRM_TEST_SMTP_MAILDIR is set"),
                ),
            })
        }
        Err(_) => {
            assert!(
                std::env::var("CRM_REQUIRE_SMTP").as_deref() != Ok("1"),
                "{test}: CRM_REQUIRE_SMTP=1 but no SMTP server: run under scripts/with-smtp"
            );
            eprintln!("{test}: skipped (no CRM_TEST_SMTP_ADDR; run under scripts/with-smtp)");
            None
        }
    }
}

fn templates() -> Arc<Templates> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rules/templates");
    Arc::new(Templates::load_dir(&dir).unwrap())
}

fn notifier(s: &Server) -> SmtpNotifier {
    SmtpNotifier::new(
        &SmtpConfig {
            host: s.host.clone(),
            port: s.port,
            from: "CRM <crm@tenant.example>".into(),
            timeout: std::time::Duration::from_secs(5),
        },
        templates(),
    )
    .unwrap()
}

fn email(to: &str, name: Option<&str>) -> OutboxMessage {
    let at = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
    OutboxMessage::pending(
        TenantId::new(),
        format!("event:{}/won/2/{to}", uuid::Uuid::now_v7()),
        "won",
        Channel::Email,
        ResolvedRecipient {
            phone: None,
            user: None,
            name: name.map(str::to_string),
            email: Some(to.to_string()),
        },
        Payload {
            template: Some("welcome".into()),
            vars: serde_json::json!({
                "deal": "Solar roof",
                "partner": {"name": "Customer Ltd"},
            }),
            ..Default::default()
        },
        at,
    )
}

/// The value of header `name` of a stored e-mail (unfolded), if it has one.
fn header(mail: &str, name: &str) -> Option<String> {
    let mut lines = mail.lines().take_while(|l| !l.is_empty());
    let mut value: Option<String> = None;
    for line in lines.by_ref() {
        match &mut value {
            Some(v) if line.starts_with([' ', '\t']) => v.push_str(line),
            Some(_) => break,
            None => {
                if let Some((n, v)) = line.split_once(':') {
                    if n.eq_ignore_ascii_case(name) {
                        value = Some(v.to_string());
                    }
                }
            }
        }
    }
    value.map(|v| v.trim().to_string())
}

/// The stored e-mails whose `Message-ID` header is `id`, oldest first.
fn received_with_id(s: &Server, id: &str) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(&s.maildir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    // The sink names files by arrival time.
    files.sort();
    files
        .into_iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .filter(|text| header(text, "Message-ID").as_deref() == Some(id))
        .collect()
}

/// The stored e-mails carrying this message's Message-ID.
fn received(s: &Server, m: &OutboxMessage) -> Vec<String> {
    received_with_id(
        s,
        &message_id(m.tenant, &m.idempotency_key, DEFAULT_MESSAGE_ID_DOMAIN),
    )
}

#[tokio::test]
async fn messages_arrive_with_the_right_recipient_subject_and_bodies() {
    let Some(s) = server("messages_arrive_with_the_right_recipient_subject_and_bodies") else {
        return;
    };
    let n = notifier(&s);
    let m = email("maria@customer.example", Some("Maria Georgescu"));
    n.deliver(&m).await.unwrap();
    let got = received(&s, &m);
    assert_eq!(got.len(), 1);
    let mail = &got[0];
    assert!(
        mail.contains("X-Envelope-To: maria@customer.example"),
        "{mail}"
    );
    assert!(
        mail.contains("X-Envelope-From: crm@tenant.example"),
        "{mail}"
    );
    assert!(
        mail.contains("Subject: Welcome aboard, Customer Ltd"),
        "{mail}"
    );
    assert!(
        mail.contains("To: \"Maria Georgescu\" <maria@customer.example>"),
        "{mail}"
    );
    assert!(mail.contains("multipart/alternative"), "{mail}");
    assert!(
        mail.contains("text/plain") && mail.contains("text/html"),
        "{mail}"
    );
    assert!(
        mail.contains("thank you for choosing us for \"Solar roof\""),
        "{mail}"
    );
    assert!(mail.contains("<strong>Solar roof</strong>"), "{mail}");

    // A plain in-line message (no template) goes out as text.
    let mut plain = email("dan@example.com", None);
    plain.payload = Payload {
        subject: "Overdue: Call back".into(),
        body: "\"Call back\" was due yesterday.".into(),
        ..Default::default()
    };
    n.deliver(&plain).await.unwrap();
    let got = received(&s, &plain);
    assert_eq!(got.len(), 1);
    assert!(got[0].contains("Subject: Overdue: Call back"));
    assert!(got[0].contains("was due yesterday."));
}

#[tokio::test]
async fn a_refused_recipient_is_a_permanent_error_naming_it_and_the_host_keeps_working() {
    let Some(s) = server("a_refused_recipient_is_a_permanent_error_naming_it") else {
        return;
    };
    let n = notifier(&s);
    let bad = email("refuse.me@customer.example", None);
    match n.deliver(&bad).await {
        Err(DeliveryError::Permanent(m)) => {
            assert!(m.contains("refuse.me@customer.example"), "{m}");
            assert!(m.contains("refused"), "{m}");
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
    // Through the dispatcher: dead-lettered at once, while the next message goes out.
    let store = Arc::new(MemoryOutbox::new());
    let bad = email("refuse.again@customer.example", None);
    let good = email("ok@customer.example", None);
    store.enqueue(bad.clone());
    store.enqueue(good.clone());
    let clock = Arc::new(FixedClock::new(bad.created_at));
    let d = Dispatcher::new(store.clone(), Arc::new(n), clock);
    let r = d.run_once(10).await.unwrap();
    assert_eq!((r.delivered, r.dead, r.retried), (1, 1, 0));
    let dead = store.outbox_message(bad.tenant, bad.id).await.unwrap();
    assert_eq!(dead.status, OutboxStatus::Dead);
    assert!(dead
        .last_error
        .unwrap()
        .contains("refuse.again@customer.example"));
    assert_eq!(received(&s, &good).len(), 1);
}

#[tokio::test]
async fn a_server_vanishing_mid_send_is_retried_and_delivers_exactly_once() {
    let Some(s) = server("a_server_vanishing_mid_send_is_retried_and_delivers_exactly_once") else {
        return;
    };
    let store = Arc::new(MemoryOutbox::new());
    let m = email("vanish@customer.example", None);
    store.enqueue(m.clone());
    let clock = Arc::new(FixedClock::new(m.created_at));
    let d = Dispatcher::new(store.clone(), Arc::new(notifier(&s)), clock.clone()).with_policy(
        RetryPolicy {
            max_attempts: 5,
            base_seconds: 30,
            cap_seconds: 600,
            lease_seconds: 60,
        },
    );
    let first = d.run_once(10).await.unwrap();
    assert_eq!(first.retried, 1, "the dropped connection is transient");
    let after = store.outbox_message(m.tenant, m.id).await.unwrap();
    assert_eq!(after.status, OutboxStatus::Pending);
    assert!(after.last_error.is_some());
    assert_eq!(after.next_attempt_at, m.created_at + Duration::seconds(30));
    assert!(received(&s, &m).is_empty());
    assert_eq!(
        d.run_once(10).await.unwrap().claimed,
        0,
        "not before the back-off"
    );
    clock.advance(Duration::seconds(30));
    let second = d.run_once(10).await.unwrap();
    assert_eq!(second.delivered, 1);
    assert_eq!(received(&s, &m).len(), 1, "exactly one delivery");
    assert_eq!(
        store.outbox_message(m.tenant, m.id).await.unwrap().status,
        OutboxStatus::Delivered
    );
}

#[tokio::test]
async fn an_unreachable_server_is_transient_and_bounded_by_the_timeout() {
    if server("an_unreachable_server_is_transient").is_none() {
        return;
    }
    // Port 9 on loopback: nothing listens, the connection is refused.
    let n = SmtpNotifier::new(
        &SmtpConfig {
            host: "127.0.0.1".into(),
            port: 9,
            from: "crm@tenant.example".into(),
            timeout: std::time::Duration::from_secs(2),
        },
        templates(),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let r = n.deliver(&email("x@customer.example", None)).await;
    assert!(matches!(r, Err(DeliveryError::Transient(_))), "{r:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    // A template error is permanent and names the template.
    let mut m = email("x@customer.example", None);
    m.payload.vars = serde_json::json!({"partner": null});
    match n.deliver(&m).await {
        Err(DeliveryError::Permanent(e)) => {
            assert!(
                e.contains("template `welcome.") && e.contains("undefined"),
                "{e}"
            )
        }
        other => panic!("{other:?}"),
    }
    let _ = UserId::new();
}

#[tokio::test]
async fn every_send_of_a_message_carries_the_message_id_of_its_idempotency_key() {
    let Some(s) = server("every_send_of_a_message_carries_the_message_id_of_its_idempotency_key")
    else {
        return;
    };
    // A known tenant and key give a known Message-ID (SHA-256 of the tenant's id and the key, computed
    // independently with Python's hashlib), in every process and release.
    let mut m = email("maria@customer.example", Some("Maria Georgescu"));
    m.tenant = "01890a5d-ac96-774b-bcce-b302099a8057".parse().unwrap();
    m.idempotency_key = format!(
        "event:{}/won/2/email:maria@customer.example",
        uuid::Uuid::now_v7()
    );
    let known = "event:01890a5d-ac96-774b-bcce-b302099a8057/won/2/email:maria@customer.example";
    let mut k = m.clone();
    k.idempotency_key = known.into();
    k.id = OutboxId::new();
    let n = notifier(&s);
    n.deliver(&k).await.unwrap();
    let expected = "<82352dbc33ce7d9627cf09390eb6358e7a8ef3d7371755c65eb3c1e5cf4fe31a@crm.invalid>";
    assert!(
        !received_with_id(&s, expected).is_empty(),
        "the known key's e-mail arrives with Message-ID {expected}"
    );

    // A dispatcher hands the e-mail to the server and dies before recording it (claimed, sent, no outcome); after
    // its lease runs out the next dispatcher sends it again: the server gets two copies with one Message-ID.
    let store = Arc::new(MemoryOutbox::new());
    store.enqueue(m.clone());
    let clock = Arc::new(FixedClock::new(m.created_at));
    let policy = RetryPolicy {
        max_attempts: 5,
        base_seconds: 30,
        cap_seconds: 600,
        lease_seconds: 60,
    };
    let claimed = store
        .claim_due(m.created_at, policy.lease(), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    n.deliver(&claimed[0]).await.unwrap();
    clock.advance(Duration::seconds(61));
    let d = Dispatcher::new(store.clone(), Arc::new(n.clone()), clock).with_policy(policy);
    assert_eq!(d.run_once(10).await.unwrap().delivered, 1);
    assert_eq!(
        store.outbox_message(m.tenant, m.id).await.unwrap().status,
        OutboxStatus::Delivered
    );
    let id = n.message_id(&m);
    assert_eq!(
        id,
        message_id(m.tenant, &m.idempotency_key, DEFAULT_MESSAGE_ID_DOMAIN)
    );
    let copies = received_with_id(&s, &id);
    assert_eq!(copies.len(), 2, "sent twice (at least once)");
    for c in &copies {
        assert_eq!(header(c, "Message-ID").as_deref(), Some(id.as_str()));
        assert!(c.contains("X-Envelope-To: maria@customer.example"), "{c}");
    }
    assert_eq!(header(&copies[0], "Subject"), header(&copies[1], "Subject"));

    // The organisation's own domain, through the real server.
    let own = notifier(&s)
        .with_message_id_domain("mail.tenant.example")
        .unwrap();
    let mut o = email("oana@customer.example", None);
    o.idempotency_key = m.idempotency_key.clone();
    o.tenant = m.tenant;
    own.deliver(&o).await.unwrap();
    let id = own.message_id(&o);
    assert!(id.ends_with("@mail.tenant.example>"), "{id}");
    assert_eq!(received_with_id(&s, &id).len(), 1);
}

#[tokio::test]
async fn a_meeting_invitation_arrives_as_imip_with_its_calendar_object() {
    use crm_core::sales::{
        Attendee, MeetingCommand, NewMeeting, Organiser, Participant, Reply, Slot,
    };
    let Some(s) = server("a_meeting_invitation_arrives_as_imip_with_its_calendar_object") else {
        return;
    };
    let at = |h| {
        chrono::NaiveDate::from_ymd_opt(2026, 6, 1)
            .unwrap()
            .and_hms_opt(h, 0, 0)
            .unwrap()
    };
    let meeting = NewMeeting {
        title: "Negociere contract".into(),
        lead: None,
        partner: None,
        organiser: Organiser::new(crm_core::id::UserId::new(), "Ana", "ana@tenant.example"),
        attendees: vec![Attendee {
            who: Participant::User {
                id: crm_core::id::UserId::new(),
            },
            name: "Maria".into(),
            email: "maria@customer.example".into(),
            reply: Reply::NeedsAction,
        }],
        slot: Slot {
            start: at(10),
            end: at(11),
            time_zone: "Europe/Bucharest".into(),
            place: None,
            online_link: None,
        },
        agenda: None,
    }
    .build(TenantId::new(), crm_core::id::MeetingId::new(), Utc::now())
    .unwrap();
    let n = notifier(&s);
    for (m, method) in [
        (meeting.clone(), "REQUEST"),
        (
            crm_core::sales::meeting::apply(&meeting, MeetingCommand::Cancel, Utc::now()).unwrap(),
            "CANCEL",
        ),
    ] {
        let mut msg = email("maria@customer.example", Some("Maria"));
        msg.idempotency_key = format!("meeting/{}/{}/{method}/maria", m.id(), m.sequence());
        msg.payload = Payload {
            subject: format!("Invitation: {}", m.title()),
            body: "See the attached invitation.".into(),
            vars: serde_json::json!({ "ics": m.to_ics(), "method": method }),
            ..Default::default()
        };
        n.deliver(&msg).await.unwrap();
        let got = received(&s, &msg);
        assert_eq!(got.len(), 1);
        let mail = got[0].replace("\r\n", "\n");
        assert!(mail.contains("multipart/alternative"), "{mail}");
        assert!(
            mail.contains(&format!("text/calendar; charset=utf-8; method={method}")),
            "{mail}"
        );
        assert!(
            mail.contains("BEGIN:VCALENDAR") && mail.contains(&format!("METHOD:{method}")),
            "{mail}"
        );
        assert!(mail.contains(&format!("UID:{}", m.uid())), "{mail}");
        assert!(mail.contains("See the attached invitation."), "{mail}");
    }
}

#[tokio::test]
async fn a_quotation_arrives_with_its_pdf_attached() {
    let Some(s) = server("a_quotation_arrives_with_its_pdf_attached") else {
        return;
    };
    // A PDF's second line holds bytes above 127, so the part goes out base64-encoded.
    let mut pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    pdf.extend((0u8..=255).cycle().take(600));
    let mut msg = email("maria@customer.example", Some("Maria"));
    msg.payload = Payload {
        subject: "Oferta Q-2026-0042/2".into(),
        body: "Găsiți oferta atașată.".into(),
        vars: serde_json::json!({
            "attachments": crm_core::comms::attachment_var(&[("Q-2026-0042-2.pdf", "application/pdf", &pdf)]),
        }),
        ..Default::default()
    };
    notifier(&s).deliver(&msg).await.unwrap();
    let got = received(&s, &msg);
    assert_eq!(got.len(), 1);
    let mail = got[0].replace("\r\n", "\n");
    assert!(mail.contains("multipart/mixed"), "{mail}");
    assert!(mail.contains("Content-Type: application/pdf"), "{mail}");
    assert!(mail.contains("filename=\"Q-2026-0042-2.pdf\""), "{mail}");
    // The attachment's base64 body decodes to the PDF sent.
    let encoded = base64_of(&pdf);
    assert!(mail.replace('\n', "").contains(&encoded), "{mail}");
    // A message whose attachment is not base64 is a permanent error, not a retry.
    let mut broken = email("maria@customer.example", None);
    broken.payload.vars = serde_json::json!({
        "attachments": [{"name": "x.pdf", "media_type": "application/pdf", "base64": "not base64!"}],
    });
    let e = notifier(&s).deliver(&broken).await.unwrap_err();
    assert!(
        matches!(e, crm_core::outbox::DeliveryError::Permanent(_)),
        "{e:?}"
    );
}

/// Standard base64 of `bytes` (the body of a MIME attachment, without its line breaks).
fn base64_of(bytes: &[u8]) -> String {
    let v = crm_core::comms::attachment_var(&[("f", "application/octet-stream", bytes)]);
    v[0]["base64"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn an_email_from_a_lead_arrives_rendered_with_its_file_and_is_logged_once_delivered() {
    use crm_core::actor::Context;
    use crm_core::contact::{MailFile, UserEmail};
    use crm_core::event::{CommentTarget, EventKind};
    use crm_core::lead::{LeadPartner, NewLead};
    use crm_core::partner::NewPartner;
    use crm_core::service::CrmService;
    use crm_core::store::{PageRequest, TimelineOf};
    let Some(s) =
        server("an_email_from_a_lead_arrives_rendered_with_its_file_and_is_logged_once_delivered")
    else {
        return;
    };
    let store = Arc::new(crm_storage_sqlite::SqliteStore::open_in_memory().unwrap());
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(),
    ));
    let crm = CrmService::builder()
        .store(store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let (tenant, ana) = (TenantId::new(), UserId::new());
    let ctx = Context::user(tenant, ana);
    crm.setup_tenant(&ctx).await.unwrap();
    let partner = LeadPartner::New {
        partner: NewPartner::company("Acme SRL"),
    };
    let lead = crm
        .enter_lead(&ctx, NewLead::new(partner, "Forklifts"))
        .await
        .unwrap()
        .record;
    let brochure = b"%PDF-1.7\n% a brochure\n".to_vec();
    let mail = UserEmail::new("maria@customer.example", "follow_up")
        .to_name("Maria")
        .var("offer", "10% off")
        .attach(MailFile::new(
            "brochure.pdf",
            "application/pdf",
            brochure.clone(),
        ));
    let sent = crm
        .send_email(&ctx, CommentTarget::Lead(lead.id()), mail)
        .await
        .unwrap()
        .record;
    let emailed = || async {
        let log = crm
            .timeline(tenant, TimelineOf::Lead(lead.id()), &PageRequest::first(50))
            .await
            .unwrap();
        log.items
            .into_iter()
            .filter(|e| matches!(e.kind, EventKind::EmailSent { .. }))
            .map(|e| (e.kind, e.actor))
            .collect::<Vec<_>>()
    };
    assert!(
        emailed().await.is_empty(),
        "nothing is logged before delivery"
    );
    let dispatcher = Dispatcher::new(store.clone(), Arc::new(notifier(&s)), clock.clone())
        .with_log(store.clone());
    let report = dispatcher.drain(10).await.unwrap();
    assert_eq!((report.delivered, report.dead), (1, 0));
    let got = received(&s, &sent);
    assert_eq!(got.len(), 1);
    let mail = got[0].replace("\r\n", "\n");
    assert!(mail.contains("Forklifts: our offer for Acme SRL"), "{mail}");
    // The text part is quoted-printable: its soft line breaks removed, the sentence reads whole.
    assert!(
        mail.replace("=\n", "").contains("we offer 10% off"),
        "{mail}"
    );
    assert!(mail.contains("filename=\"brochure.pdf\""), "{mail}");
    // A text-only file goes out as it is (no base64 needed).
    assert!(mail.contains("%PDF-1.7\n% a brochure"), "{mail}");
    let logged = emailed().await;
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0].1, ctx.actor);
    match &logged[0].0 {
        EventKind::EmailSent {
            to, template, by, ..
        } => {
            assert_eq!(to, "maria@customer.example");
            assert_eq!(template.as_deref(), Some("follow_up"));
            assert_eq!(by, "user");
        }
        other => panic!("{other:?}"),
    }
    // A second pass delivers and logs nothing more.
    assert_eq!(dispatcher.drain(10).await.unwrap().claimed, 0);
    assert_eq!(emailed().await.len(), 1);
}

#[tokio::test]
async fn marketing_mail_carries_its_unsubscribe_link_and_one_click_headers() {
    let Some(s) = server("marketing_mail_carries_its_unsubscribe_link_and_one_click_headers")
    else {
        return;
    };
    let templates = || {
        let mut t = Templates::new();
        t.add(
            "offer",
            "Spring offer for {{ partner.name }}",
            "Ten percent off this month.\nUnsubscribe: {{ unsubscribe_url }}\n",
            None,
        )
        .unwrap();
        Arc::new(t)
    };
    let config = SmtpConfig {
        host: s.host.clone(),
        port: s.port,
        from: "CRM <crm@tenant.example>".into(),
        timeout: std::time::Duration::from_secs(5),
    };
    let mut m = email("ana@customer.example", Some("Ana Pop"))
        .for_purpose(crm_core::consent::Purpose::Marketing);
    m.payload.template = Some("offer".into());
    m.payload.vars["unsubscribe_token"] = "TOKEN123".into();

    // Without an unsubscribe address a marketing e-mail is not sent.
    let bare = SmtpNotifier::new(&config, templates()).unwrap();
    match bare.deliver(&m).await {
        Err(DeliveryError::Permanent(why)) => assert!(why.contains("unsubscribe"), "{why}"),
        other => panic!("expected a permanent error, got {other:?}"),
    }
    assert!(SmtpNotifier::new(&config, templates())
        .unwrap()
        .with_unsubscribe_url("http://portal.example/unsubscribe/")
        .is_err());

    let n = SmtpNotifier::new(&config, templates())
        .unwrap()
        .with_unsubscribe_url("https://portal.example/unsubscribe/")
        .unwrap();
    n.deliver(&m).await.unwrap();
    let got = received(&s, &m);
    assert_eq!(got.len(), 1);
    let url = "https://portal.example/unsubscribe/TOKEN123";
    assert_eq!(
        header(&got[0], "List-Unsubscribe").as_deref(),
        Some(format!("<{url}>").as_str())
    );
    assert_eq!(
        header(&got[0], "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(got[0].contains(url), "the body links it: {}", got[0]);

    // A service e-mail carries neither.
    let mut plain = email("ana@customer.example", None);
    plain.payload.template = Some("offer".into());
    plain.payload.vars["unsubscribe_url"] = "(none)".into();
    n.deliver(&plain).await.unwrap();
    let got = received(&s, &plain);
    assert_eq!(header(&got[0], "List-Unsubscribe"), None);
}

/// A campaign's e-mails, end to end on SQLite: rendered per target when sent, spaced by the tenant's send rate (the
/// dispatcher hands over the second only once it is due), arriving with their subject, text and HTML and the
/// campaign's unsubscribe link (in the body and the one-click headers), logged on the partner's timeline; the link's
/// token unsubscribes the contact and marks the target.
#[tokio::test]
async fn a_campaigns_emails_arrive_rendered_spaced_and_unsubscribable() {
    use crm_core::actor::Context;
    use crm_core::commerce::send::{CampaignMessage, SendStatus};
    use crm_core::commerce::{
        CampaignMeasuresExt as _, Channel as Medium, CommerceStoreExt as _, Criteria, NewCampaign,
        Period,
    };
    use crm_core::consent::{ConsentChannel, NewConsent, Purpose};
    use crm_core::event::EventKind;
    use crm_core::money::Currency;
    use crm_core::partner::{NewContact, NewPartner};
    use crm_core::service::{message_key, CommerceService, CrmService, SendRate};
    use crm_core::store::{PageRequest, TimelineOf};
    let Some(s) = server("a_campaigns_emails_arrive_rendered_spaced_and_unsubscribable") else {
        return;
    };
    let store = Arc::new(crm_storage_sqlite::SqliteStore::open_in_memory().unwrap());
    let start = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
    let clock = Arc::new(FixedClock::new(start));
    let crm = CrmService::builder()
        .store(store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let (tenant, ana) = (TenantId::new(), UserId::new());
    let ctx = Context::user(tenant, ana);
    crm.setup_tenant(&ctx).await.unwrap();
    let commerce =
        CommerceService::new(crm.clone(), store.clone(), Currency::parse("RON").unwrap())
            .with_send_rate(SendRate::per_hour(60).unwrap());
    let mut partners = Vec::new();
    for (company, person, address) in [
        ("Acme SRL", "Maria Pop", "maria@acme.example"),
        ("Beta & Co", "Ion Rus", "ion@beta.example"),
    ] {
        let mut n = NewPartner::company(company);
        n.tags.insert("spring".into());
        n.contacts.push(NewContact {
            name: person.into(),
            email: Some(address.into()),
            ..NewContact::default()
        });
        let p = crm.create_partner(&ctx, n).await.unwrap().record;
        let yes = NewConsent {
            channel: "email".into(),
            purpose: "marketing".into(),
            granted: true,
            source: "newsletter form".into(),
            proof: None,
        };
        let p = crm
            .record_consent(&ctx, p.id(), p.version(), p.contacts()[0].id, yes)
            .await
            .unwrap()
            .record;
        partners.push(p);
    }
    let new = NewCampaign {
        name: "Spring pumps".into(),
        channel: Medium::Email,
        period: Period::year(2026).unwrap(),
        owner: ana,
        agents: vec![],
        script: None,
        budget: None,
        criteria: Some(Criteria::Tag {
            tag: "spring".into(),
        }),
    };
    let c = commerce.create_campaign(&ctx, new).await.unwrap();
    let message = CampaignMessage {
        subject: Some("{{ campaign.name }} for {{ partner.name }}".into()),
        text: "Dear {{ contact.name }},\n{{ campaign.offer }} until {{ campaign.ends }}.\n".into(),
        html: Some("<p>Dear {{ contact.name }} of {{ partner.name }}</p>".into()),
        offer: Some("10% off every pump".into()),
    };
    let c = commerce
        .set_campaign_message(&ctx, c.id(), c.version(), message)
        .await
        .unwrap();
    commerce
        .launch_campaign(&ctx, c.id(), c.version())
        .await
        .unwrap();
    let summary = commerce.send_campaign(&ctx, c.id()).await.unwrap();
    assert_eq!(summary.queued, 2);
    assert_eq!(summary.last_due, Some(start + Duration::minutes(1)));

    let smtp = SmtpNotifier::new(
        &SmtpConfig {
            host: s.host.clone(),
            port: s.port,
            from: "CRM <crm@tenant.example>".into(),
            timeout: std::time::Duration::from_secs(5),
        },
        Arc::new(Templates::new()),
    )
    .unwrap()
    .with_unsubscribe_url("https://portal.example/unsubscribe/")
    .unwrap();
    let dispatcher =
        Dispatcher::new(store.clone(), Arc::new(smtp), clock.clone()).with_log(store.clone());
    let first = dispatcher.drain(10).await.unwrap();
    assert_eq!(first.delivered, 1, "the second message is not due yet");
    clock.advance(Duration::minutes(1));
    assert_eq!(dispatcher.drain(10).await.unwrap().delivered, 1);

    let mut tokens = Vec::new();
    for p in &partners {
        let m = store
            .outbox_by_key(tenant, &message_key(c.id(), p.id()))
            .await
            .unwrap();
        assert_eq!(m.status, OutboxStatus::Delivered);
        let got = received(&s, &m);
        assert_eq!(got.len(), 1);
        let mail = got[0].replace("\r\n", "\n").replace("=\n", "");
        assert_eq!(
            header(&mail, "Subject").as_deref(),
            Some(format!("Spring pumps for {}", p.name()).as_str())
        );
        let person = &p.contacts()[0].name;
        assert!(mail.contains(&format!("Dear {person},")), "{mail}");
        assert!(
            mail.contains("10% off every pump until 2026-12-31."),
            "{mail}"
        );
        assert!(mail.contains("text/html"), "{mail}");
        let token = m.payload.vars["unsubscribe_token"]
            .as_str()
            .unwrap()
            .to_string();
        let url = format!("https://portal.example/unsubscribe/{token}");
        assert_eq!(
            header(&mail, "List-Unsubscribe").as_deref(),
            Some(format!("<{url}>").as_str())
        );
        assert!(mail.contains(&format!("Unsubscribe: {url}")), "{mail}");
        tokens.push(token);
    }
    // The HTML part escapes what the partner's name holds.
    let beta = store
        .outbox_by_key(tenant, &message_key(c.id(), partners[1].id()))
        .await
        .unwrap();
    assert_eq!(
        beta.payload.vars["html"],
        "<p>Dear Ion Rus of Beta &amp; Co</p>"
    );
    let log = crm
        .timeline(
            tenant,
            TimelineOf::Partner(partners[0].id()),
            &PageRequest::first(50),
        )
        .await
        .unwrap();
    assert!(log
        .items
        .iter()
        .any(|e| matches!(e.kind, EventKind::EmailSent { .. })));

    // The link unsubscribes Maria from marketing e-mail and marks Acme's target.
    commerce.unsubscribe(&tokens[0]).await.unwrap();
    let maria = crm.partner(tenant, partners[0].id()).await.unwrap();
    assert!(maria.contacts()[0]
        .consent(ConsentChannel::Email, Purpose::Marketing)
        .is_none());
    let target = store
        .campaign_target_of(tenant, c.id(), partners[0].id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        target.send().map(|x| x.status),
        Some(SendStatus::Unsubscribed)
    );
    let progress = store.progress(tenant, c.id()).await.unwrap();
    assert_eq!(
        progress[0].messages.get(&SendStatus::Unsubscribed),
        Some(&1)
    );
    assert_eq!(progress[0].messages.get(&SendStatus::Queued), Some(&1));
}
