//! The self-service portal over HTTP, bad input first: expired, reused and forged login links; forged and replayed
//! session cookies; forms without their CSRF token; another partner's or tenant's ids in URLs and form fields;
//! payments above the residual, of zero, negative, in an unknown currency, on a settled item; the same payment
//! posted twice; requests empty or of 1 MB; a representative revoked mid-session. Each gets a clear page with the
//! right status, and nothing is written or shown that should not be. (The browser test, `portal_browser.rs`, walks
//! the pages as a person does.)

#![cfg(feature = "web")]

#[path = "../examples/common/portal_seed.rs"]
mod portal_seed;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use chrono::{Duration, TimeZone, Utc};
use crm::commerce::DocumentKind;
use crm::{Clock, CommerceStoreExt, Crm, FixedClock, OutboxStore, PageRequest, RequestQuery};
use http_body_util::BodyExt;
use std::collections::BTreeMap;
use std::sync::Arc;
use tower::ServiceExt;

/// A client keeping the portal's cookies, as a browser does.
struct Client {
    app: Router,
    cookies: BTreeMap<String, String>,
}

struct Got {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Client {
    fn new(app: Router) -> Self {
        Self {
            app,
            cookies: BTreeMap::new(),
        }
    }

    async fn send(&mut self, method: Method, path: &str, form: Option<String>) -> Got {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut req = Request::builder().method(method).uri(path);
        if !cookie.is_empty() {
            req = req.header(header::COOKIE, cookie);
        }
        let body = match form {
            Some(f) => {
                req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Body::from(f)
            }
            None => Body::empty(),
        };
        let res = self
            .app
            .clone()
            .oneshot(req.body(body).expect("request"))
            .await
            .expect("infallible");
        for v in res.headers().get_all(header::SET_COOKIE) {
            let v = v.to_str().expect("ascii");
            let pair = v.split(';').next().expect("a pair");
            let (k, val) = pair.split_once('=').expect("name=value");
            if val.is_empty() || v.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), val.to_string());
            }
        }
        for (h, want) in [
            ("x-frame-options", "DENY"),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
            ("cache-control", "no-store"),
        ] {
            assert_eq!(res.headers()[h], want, "{h} on {path}");
        }
        assert!(res.headers()["content-security-policy"]
            .to_str()
            .expect("ascii")
            .contains("default-src 'none'"));
        let status = res.status();
        let location = res
            .headers()
            .get(header::LOCATION)
            .map(|l| l.to_str().expect("ascii").to_string());
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        Got {
            status,
            location,
            // minijinja's HTML escaping writes `/` as `&#x2f;` (a browser reads it back as `/`).
            body: String::from_utf8_lossy(&bytes).replace("&#x2f;", "/"),
        }
    }

    async fn get(&mut self, path: &str) -> Got {
        self.send(Method::GET, path, None).await
    }

    /// Posts `fields` with this browser's CSRF token.
    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Got {
        let csrf = self.csrf().await;
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Got {
        let form = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.send(Method::POST, path, Some(form)).await
    }

    /// The CSRF token the forms carry (read from the login page, as a browser would).
    async fn csrf(&mut self) -> String {
        let page = self.get("/login").await;
        let at = page
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field")
            + 19;
        page.body[at..at + 64].to_string()
    }

    /// Signs Maria in again through a login link she asks for (her invitation is used up).
    async fn sign_in_again(&mut self, w: &World) {
        w.clock.advance(Duration::minutes(2));
        let asked = self
            .post("/login", &[("email", "maria@acme.example")])
            .await;
        assert_eq!(asked.status, StatusCode::OK);
        let pending = w
            .crm
            .outbox()
            .list_outbox(
                w.seeded.tenant,
                crm::OutboxStatus::Pending,
                &PageRequest::first(100),
            )
            .await
            .expect("outbox");
        let token = pending
            .items
            .iter()
            .rev()
            .filter(|m| m.payload.template.as_deref() == Some(crm::portal::LOGIN_TEMPLATE))
            .find_map(|m| m.payload.vars["token"].as_str().map(str::to_string))
            .expect("a login link");
        self.sign_in(&token).await;
    }

    async fn sign_in(&mut self, token: &str) {
        let got = self.post(&format!("/login/{token}"), &[]).await;
        assert_eq!(got.status, StatusCode::SEE_OTHER, "{}", got.body);
        assert!(self.cookies.contains_key(crm::web::SESSION_COOKIE));
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

struct World {
    crm: Crm,
    clock: Arc<FixedClock>,
    seeded: portal_seed::Seeded,
    app: Router,
}

async fn world() -> World {
    let at = Utc
        .with_ymd_and_hms(2026, 12, 1, 9, 0, 0)
        .single()
        .expect("a time");
    let clock = Arc::new(FixedClock::new(at));
    let crm = portal_seed::demo_crm_at(clock.clone()).await.expect("crm");
    let seeded = portal_seed::seed(&crm).await.expect("seed");
    let app = portal_seed::portal_of(&crm, &seeded).router();
    World {
        crm,
        clock,
        seeded,
        app,
    }
}

/// The world, and Maria signed in through her invitation.
async fn maria_signed_in() -> (World, Client) {
    let w = world().await;
    let mut maria = Client::new(w.app.clone());
    maria.sign_in(&w.seeded.maria_token).await;
    (w, maria)
}

async fn acme_invoice(w: &World, number: &str) -> crm::id::DocumentId {
    let doc = w
        .crm
        .commerce()
        .store()
        .document_by_number(w.seeded.tenant, DocumentKind::Invoice, number)
        .await
        .expect("read")
        .expect("recorded");
    doc.id()
}

/// A new partner `new` with a representative (its first contact) holding `rights`, signed in.
async fn represented(
    w: &World,
    new: crm::NewPartner,
    rights: crm::portal::Rights,
) -> (crm::id::PartnerId, Client) {
    let staff = &w.seeded.staff;
    let partner = w.crm.leads().create_partner(staff, new).await;
    let partner = partner.expect("partner").record;
    let contact = partner.contacts()[0].id;
    let portal = w.crm.portal();
    let invited = portal.invite(staff, partner.id(), contact, rights).await;
    let mut client = Client::new(w.app.clone());
    client
        .sign_in(invited.expect("invite").token.as_str())
        .await;
    (partner.id(), client)
}

/// How many requests the tenant holds.
async fn requests_held(w: &World) -> usize {
    let q = RequestQuery::default();
    let page = w
        .crm
        .leads()
        .store()
        .query_requests(w.seeded.tenant, &q)
        .await;
    page.expect("requests").items.len()
}

/// Rival's contacts as the CRM holds them.
async fn rival_contacts(w: &World) -> Vec<crm::partner::Contact> {
    let rival = w.crm.leads().partner(w.seeded.tenant, w.seeded.rival).await;
    rival.expect("rival").contacts().to_vec()
}

/// How many open items `partner` has.
async fn open_count(w: &World, partner: crm::id::PartnerId) -> usize {
    let open = w.crm.commerce().open_items(w.seeded.tenant, partner, None);
    open.await.expect("open items").len()
}

#[tokio::test]
async fn login_links_expired_reused_or_forged_are_refused_with_a_page() {
    let w = world().await;
    let mut maria = Client::new(w.app.clone());
    // Not signed in: the pages send to the login page.
    let got = maria.get("/").await;
    assert_eq!(got.status, StatusCode::SEE_OTHER);
    assert_eq!(got.location.as_deref(), Some("/login"));
    // The link's page does not use the token up (a mail scanner may fetch it); the button does.
    let page = maria.get(&format!("/login/{}", w.seeded.maria_token)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"sign-in\""));
    maria.sign_in(&w.seeded.maria_token).await;
    assert_eq!(maria.get("/").await.status, StatusCode::OK);
    // Used once: a second use is refused.
    let mut again = Client::new(w.app.clone());
    let reused = again
        .post(&format!("/login/{}", w.seeded.maria_token), &[])
        .await;
    assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reused.body.contains("token"), "{}", reused.body);
    assert!(!again.cookies.contains_key(crm::web::SESSION_COOKIE));
    // Forged: a well-formed token nobody issued, and garbage.
    // (A segment that is not even UTF-8 names nothing: the not-found page.)
    for (forged, status) in [
        (
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("x", StatusCode::UNPROCESSABLE_ENTITY),
        ("%00%ff", StatusCode::NOT_FOUND),
    ] {
        let got = again.post(&format!("/login/{forged}"), &[]).await;
        assert_eq!(got.status, status, "{forged}");
        assert!(
            got.body.contains("id=\"message\""),
            "a page, not a bare status"
        );
        assert!(!again.cookies.contains_key(crm::web::SESSION_COOKIE));
    }
    // Expired: Radu's invitation, a week and a day later.
    w.clock.advance(Duration::days(8));
    let late = again
        .post(&format!("/login/{}", w.seeded.radu_token), &[])
        .await;
    assert_eq!(late.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(late.body.contains("expired"), "{}", late.body);
    // A login link asked for on the login page says the same whether the address is known or not.
    let mut anyone = Client::new(w.app.clone());
    let known = anyone
        .post("/login", &[("email", "maria@acme.example")])
        .await;
    let unknown = anyone
        .post("/login", &[("email", "who@nowhere.example")])
        .await;
    assert_eq!(known.status, StatusCode::OK);
    assert_eq!(unknown.status, StatusCode::OK);
    assert_eq!(known.body, unknown.body);
    let bad = anyone.post("/login", &[("email", "not an address")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("email"));
}

#[tokio::test]
async fn forged_replayed_and_expired_sessions_and_missing_csrf_tokens_are_refused() {
    let (w, mut maria) = maria_signed_in().await;
    let session = maria.cookies[crm::web::SESSION_COOKIE].clone();
    // Forged: the signed value altered (another representative's id), or a value without a signature.
    let mut forged = Client::new(w.app.clone());
    let altered = session.replacen(&session[50..52], "00", 1);
    for value in [altered, "x".into(), session[44..].to_string()] {
        forged
            .cookies
            .insert(crm::web::SESSION_COOKIE.into(), value.clone());
        let got = forged.get("/").await;
        assert_eq!(got.status, StatusCode::UNAUTHORIZED, "{value}");
        assert!(!got.body.contains("Acme"), "nothing of the partner shows");
    }
    // Without its CSRF token, or with another, a form is refused and does nothing.
    let before = requests_held(&w).await;
    let fields = [("kind", "question"), ("title", "Hello"), ("body", "Hi")];
    let no_token = maria.post_raw("/requests", &fields).await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let mut wrong = fields.to_vec();
    let other = "0123456789abcdef".repeat(4);
    wrong.push(("csrf", other.as_str()));
    assert_eq!(
        maria.post_raw("/requests", &wrong).await.status,
        StatusCode::FORBIDDEN
    );
    let after = requests_held(&w).await;
    assert_eq!(before, after, "nothing was opened");
    // Logging out ends the session: the same cookie replayed is refused.
    let out = maria.post("/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let mut replay = Client::new(w.app.clone());
    replay
        .cookies
        .insert(crm::web::SESSION_COOKIE.into(), session.clone());
    assert_eq!(replay.get("/").await.status, StatusCode::UNAUTHORIZED);
    // A session lasts 12 hours.
    let mut radu = Client::new(w.app.clone());
    radu.sign_in(&w.seeded.radu_token).await;
    w.clock.advance(Duration::hours(13));
    let late = radu.get("/").await;
    assert_eq!(late.status, StatusCode::UNAUTHORIZED);
    assert!(late.body.contains("id=\"to-login\""));
}

#[tokio::test]
async fn another_partners_or_tenants_ids_read_as_not_found_and_change_nothing() {
    let w = world().await;
    // A second tenant in the same engine, with its own seeded partners.
    let elsewhere = portal_seed::seed(&w.crm).await.expect("second tenant");
    let mut maria = Client::new(w.app.clone());
    maria.sign_in(&w.seeded.maria_token).await;
    let foreign_invoice = elsewhere.rival_invoice.to_string();
    for path in [
        format!("/documents/{}", w.seeded.rival_invoice),
        format!("/documents/{}/pdf", w.seeded.rival_invoice),
        format!("/requests/{}", w.seeded.rival_request),
        format!("/documents/{foreign_invoice}"),
        format!("/requests/{}", elsewhere.rival_request),
        "/payments/someone-elses-key".to_string(),
        "/documents/not-an-id".to_string(),
    ] {
        let got = maria.get(&path).await;
        assert_eq!(got.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!got.body.contains("Rival"), "{path} shows nothing of Rival");
    }
    // In form fields: paying Rival's invoice, replying on Rival's request, removing Rival's contact.
    let rival_contact = rival_contacts(&w).await[0].id;
    // (At the confirmation step and at the payment itself.)
    let theirs = w.seeded.rival_invoice.to_string();
    for confirm in ["", "1"] {
        let fields = [
            ("key", "k-1"),
            ("item", theirs.as_str()),
            ("confirm", confirm),
        ];
        let pay = maria.post("/pay", &fields).await;
        assert_eq!(pay.status, StatusCode::NOT_FOUND);
        assert!(!pay.body.contains("R-2001"));
    }
    let reply = maria
        .post(
            &format!("/requests/{}/reply", w.seeded.rival_request),
            &[("body", "let me in")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let remove = maria
        .post(&format!("/contacts/{}/remove", rival_contact), &[])
        .await;
    assert_eq!(remove.status, StatusCode::NOT_FOUND);
    // Nothing changed at Rival: its invoice open, its request without comments, its contact kept.
    assert_eq!(open_count(&w, w.seeded.rival).await, 1);
    let target = crm::CommentTarget::Request(w.seeded.rival_request);
    let comments = w
        .crm
        .leads()
        .comments(w.seeded.tenant, target, &PageRequest::first(10))
        .await
        .expect("comments");
    assert!(comments.items.is_empty());
    assert_eq!(rival_contacts(&w).await.len(), 1);
    // A representative without the contacts right is refused (403), without the page showing the contacts.
    let mut radu = Client::new(w.app.clone());
    radu.sign_in(&w.seeded.radu_token).await;
    let contacts = radu.get("/contacts").await;
    assert_eq!(contacts.status, StatusCode::FORBIDDEN);
    assert!(!contacts.body.contains("radu@rival.example"));
}

#[tokio::test]
async fn payments_refuse_bad_amounts_and_pay_once_per_key() {
    let (w, mut maria) = maria_signed_in().await;
    let f1 = acme_invoice(&w, "F-1001").await.to_string();
    let f3 = acme_invoice(&w, "F-1003").await.to_string();
    let amount = format!("amount_{f3}");
    // Each bad value (an amount, or a currency the form names) is refused by field, at the payment itself.
    let cases = [
        (amount.as_str(), "450.01", "items[0].amount"),
        (&amount, "0", "items[0].amount"),
        (&amount, "-5", "items[0].amount"),
        (&amount, "12.345", "items[0].amount"),
        (&amount, "lots", "items[0].amount"),
        (
            &amount,
            "99999999999999999999999999999999",
            "items[0].amount",
        ),
        ("currency", "XYZ", "currency"),
        ("currency", "RON", "currency"),
    ];
    for (name, typed, field) in cases {
        let fields = [
            ("key", "bad"),
            ("item", &f3),
            (name, typed),
            ("confirm", "1"),
        ];
        let got = maria.post("/pay", &fields).await;
        assert_eq!(got.status, StatusCode::UNPROCESSABLE_ENTITY, "{typed}");
        assert!(got.body.contains(field), "{typed}: {}", got.body);
    }
    let nothing = maria
        .post("/pay", &[("key", "bad"), ("confirm", "1")])
        .await;
    assert_eq!(nothing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(open_count(&w, w.seeded.acme).await, 3, "nothing was paid");
    // The first step shows what the chosen items come to and pays nothing; a bad amount is refused there already.
    let summary = maria
        .post(
            "/pay",
            &[
                ("key", "tab-1"),
                ("item", &f1),
                ("item", &f3),
                (&amount, "50"),
            ],
        )
        .await;
    assert_eq!(summary.status, StatusCode::OK);
    assert!(
        summary.body.contains("id=\"confirm-total\">1250.00 EUR"),
        "{}",
        summary.body
    );
    assert!(summary.body.contains("name=\"confirm\" value=\"1\""));
    let too_much = maria
        .post("/pay", &[("key", "tab-1"), ("item", &f3), (&amount, "451")])
        .await;
    assert_eq!(too_much.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(too_much.body.contains("items[0].amount"));
    assert_eq!(open_count(&w, w.seeded.acme).await, 3, "nothing was paid");
    // F-1001 in full, confirmed twice with the same key (a double click, a retry): one payment.
    let fields = [("key", "tab-1"), ("item", f1.as_str()), ("confirm", "1")];
    let first = maria.post("/pay", &fields).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    let second = maria.post("/pay", &fields).await;
    assert_eq!(second.location, first.location);
    let result = maria
        .get(first.location.as_deref().expect("to the result"))
        .await;
    assert!(
        result.body.contains("id=\"payment-status\" class=\"ok\""),
        "{}",
        result.body
    );
    let owed = portal_seed::acme_owes(&w.crm, &w.seeded)
        .await
        .expect("balances");
    assert_eq!(owed, crm::Decimal::from(850), "2050 − 1200, once");
    // A settled item is refused by field.
    let settled = maria
        .post("/pay", &[("key", "tab-2"), ("item", &f1), ("confirm", "1")])
        .await;
    assert_eq!(settled.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(settled.body.contains("items[0].document"));
}

#[tokio::test]
async fn requests_empty_or_huge_are_refused_and_revocation_ends_the_session() {
    let (w, mut maria) = maria_signed_in().await;
    let before = requests_held(&w).await;
    let huge = "x".repeat(1 << 20);
    for (title, body) in [("Hello", ""), ("Hello", "   "), ("Hello", huge.as_str())] {
        let got = maria
            .post(
                "/requests",
                &[("kind", "question"), ("title", title), ("body", body)],
            )
            .await;
        assert_eq!(
            got.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            body.len()
        );
        assert!(got.body.contains("body"));
    }
    let odd = maria
        .post(
            "/requests",
            &[("kind", "gossip"), ("title", "Hi"), ("body", "Hi")],
        )
        .await;
    assert_eq!(odd.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(requests_held(&w).await, before, "nothing was opened");
    let ok = maria
        .post(
            "/requests",
            &[
                ("kind", "complaint"),
                ("title", "Late delivery"),
                ("body", "Two weeks late."),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(requests_held(&w).await, before + 1);
    // Revoked by the staff mid-session: the next page ends the session.
    let reps = w
        .crm
        .portal()
        .representatives(w.seeded.tenant, w.seeded.acme)
        .await
        .expect("reps");
    let r = &reps[0];
    w.crm
        .portal()
        .revoke(&w.seeded.staff, r.id(), r.version())
        .await
        .expect("revoke");
    let got = maria.get("/").await;
    assert_eq!(got.status, StatusCode::UNAUTHORIZED);
    assert!(!got.body.contains("2050"), "no figure of the account");
    assert!(
        !maria.cookies.contains_key(crm::web::SESSION_COOKIE),
        "the cookie is cleared"
    );
}

#[tokio::test]
async fn a_host_mounts_the_portal_under_a_path_and_overrides_its_templates() {
    let w = world().await;
    let own = "{% extends \"base.html\" %}{% block main %}<h1 id=\"own\">Intră în contul Exemplu</h1>\
               <form method=\"post\" action=\"{{ base }}/login\"><input type=\"hidden\" name=\"csrf\" value=\"{{ csrf }}\">\
               <input name=\"email\"></form>{% endblock %}";
    let portal = portal_seed::portal_of(&w.crm, &w.seeded)
        .mounted_at("/portal")
        .expect("a base")
        .template("login.html", own)
        .expect("the host's template");
    let app = Router::new().nest("/portal", portal.router());
    let mut maria = Client::new(app);
    let got = maria.get("/portal").await;
    assert_eq!(got.location.as_deref(), Some("/portal/login"));
    let login = maria.get("/portal/login").await;
    assert!(
        login.body.contains("Intră în contul Exemplu"),
        "{}",
        login.body
    );
    assert!(login.body.contains("href=\"/portal/static/portal.css\""));
    let csrf = {
        let at = login.body.find("name=\"csrf\" value=\"").expect("csrf") + 19;
        login.body[at..at + 64].to_string()
    };
    let signed = maria
        .post_raw(
            &format!("/portal/login/{}", w.seeded.maria_token),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(signed.location.as_deref(), Some("/portal"));
    let home = maria.get("/portal").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("href=\"/portal/documents\""));
    // Setting up wrongly is a typed error, not a panic.
    let e = portal_seed::portal_of(&w.crm, &w.seeded).template("nope.html", "x");
    assert!(matches!(e, Err(crm::web::SetupError::Template { .. })));
    let e = portal_seed::portal_of(&w.crm, &w.seeded).template("login.html", "{% if %}");
    assert!(matches!(e, Err(crm::web::SetupError::Template { .. })));
    let e = portal_seed::portal_of(&w.crm, &w.seeded).mounted_at("portal/");
    assert!(matches!(e, Err(crm::web::SetupError::Base(_))));
    let short = crm::web::Portal::new(w.crm.portal().clone(), w.seeded.tenant, &[1u8; 32]);
    assert!(matches!(short, Err(crm::web::SetupError::ShortSecret(32))));
}

#[tokio::test]
async fn each_role_reads_its_side_and_offers_pdfs_and_contracts_work_from_the_pages() {
    let w = world().await;
    // A vendor: its statement speaks of what the tenant owes it, its bill among the open items, nothing to pay.
    let vendor = crm::NewPartner::company("Furnizor SRL")
        .with_role(crm::PartnerRole::Vendor)
        .with_contact("Vlad Stan", Some("vlad@furnizor.example"), None);
    let rights = crm::portal::Rights::none()
        .with(crm::portal::Right::Statement)
        .with(crm::portal::Right::Pay);
    let (vendor, mut vlad) = represented(&w, vendor, rights).await;
    let ten_at_seven = crm::commerce::NewLine::new(
        w.seeded.product,
        crm::Decimal::from(10),
        crm::Decimal::from(7),
        crm::Decimal::from(7),
    );
    let day = w.clock.now().date_naive();
    let bill =
        crm::commerce::NewDocument::vendor_bill("V-9", vendor, day, "EUR", vec![ten_at_seven]);
    let recorded = w
        .crm
        .commerce()
        .record_document(&w.seeded.staff, bill)
        .await;
    recorded.expect("bill");
    let page = vlad.get("/").await;
    assert!(page.body.contains("We owe you"), "{}", page.body);
    assert!(!page.body.contains("You owe us"));
    assert!(page.body.contains("data-number=\"V-9\""));
    assert!(page.body.contains("70.00 EUR"));
    assert!(
        !page.body.contains("id=\"pay-link\""),
        "a bill is not paid by its vendor"
    );
    let pay = vlad.get("/pay").await;
    assert!(pay.body.contains("id=\"nothing-to-pay\""));
    // An employee reads advances to settle and reimbursements due, not a customer's words.
    let employee = crm::NewPartner::person("Ana Ionescu")
        .with_role(crm::PartnerRole::Employee)
        .with_contact("Ana Ionescu", Some("ana.ionescu@exemplu.example"), None);
    let statement_only = crm::portal::Rights::none().with(crm::portal::Right::Statement);
    let (_, mut ana) = represented(&w, employee, statement_only).await;
    let page = ana.get("/").await;
    assert!(
        page.body.contains("Advances to settle") && page.body.contains("Reimbursements due to you")
    );
    assert!(!page.body.contains("You owe us"));
    assert!(
        !page.body.contains("id=\"nav-pay\""),
        "no pay right, no pay link"
    );
    assert_eq!(ana.get("/pay").await.status, StatusCode::FORBIDDEN);
    // The statement as of a day before anything was issued; a date that does not parse is refused by field.
    let mut maria = Client::new(w.app.clone());
    maria.sign_in(&w.seeded.maria_token).await;
    let early = maria.get("/?as_of=2025-01-31").await;
    assert_eq!(early.status, StatusCode::OK);
    assert!(early.body.contains("id=\"nothing-open\""), "{}", early.body);
    let bad = maria.get("/?as_of=31.01.2025").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("as_of"));
    // Documents: a PDF where the host prints one, "not available" otherwise.
    let printing = portal_seed::portal_of(&w.crm, &w.seeded)
        .document_pdf(|d| (d.number() == "F-1001").then(|| b"%PDF-1.7 F-1001".to_vec()));
    let mut reader = Client::new(printing.router());
    reader.sign_in_again(&w).await;
    let f1 = acme_invoice(&w, "F-1001").await;
    let f2 = acme_invoice(&w, "F-1002").await;
    let with = reader.get(&format!("/documents/{f1}")).await;
    assert!(with.body.contains("id=\"pdf\""));
    let pdf = reader.get(&format!("/documents/{f1}/pdf")).await;
    assert_eq!(pdf.status, StatusCode::OK);
    assert!(pdf.body.starts_with("%PDF"));
    let without = reader.get(&format!("/documents/{f2}")).await;
    assert!(without.body.contains("id=\"no-pdf\""));
    assert_eq!(
        reader.get(&format!("/documents/{f2}/pdf")).await.status,
        StatusCode::NOT_FOUND
    );
    // The open offer accepted from the contracts page; a renewal asked for becomes a lead with source portal.
    let page = maria.get("/contracts").await;
    let at = page.body.find("/quotations/").expect("an open offer") + 12;
    let id = page.body[at..at + 36].to_string();
    // A stale version is a conflict; the current one accepts.
    let answer = format!("/quotations/{id}/answer");
    for (version, status) in [("1", StatusCode::CONFLICT), ("2", StatusCode::SEE_OTHER)] {
        let fields = [("version", version), ("answer", "accept")];
        assert_eq!(
            maria.post(&answer, &fields).await.status,
            status,
            "{version}"
        );
    }
    let q = w
        .crm
        .commerce()
        .store()
        .quotation(w.seeded.tenant, id.parse().expect("id"))
        .await
        .expect("q");
    assert_eq!(q.status(), crm::sales::QuotationStatus::Accepted);
    let contract_at = page
        .body
        .find("name=\"contract\" value=\"")
        .expect("a contract")
        + 23;
    let contract = page.body[contract_at..contract_at + 36].to_string();
    let asked = maria
        .post(
            "/contracts/ask",
            &[
                ("contract", &contract),
                ("title", "Renewal C-2026-7"),
                ("note", "Same terms, please."),
            ],
        )
        .await;
    assert_eq!(asked.status, StatusCode::OK);
    let leads = w
        .crm
        .leads()
        .store()
        .query_leads(
            w.seeded.tenant,
            &crm::LeadQuery {
                partner: Some(w.seeded.acme),
                ..Default::default()
            },
        )
        .await
        .expect("leads");
    let lead = leads
        .items
        .iter()
        .find(|l| l.title() == "Renewal C-2026-7")
        .expect("a lead");
    assert_eq!(lead.source().medium.as_deref(), Some("portal"));
    assert!(lead.description().unwrap_or_default().contains("C-2026-7"));
    // A contract id of another partner in the form: not found, no lead.
    let foreign = maria
        .post(
            "/contracts/ask",
            &[
                ("contract", &crm::id::ContractId::new().to_string()),
                ("title", "X"),
            ],
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_unsubscribe_link_withdraws_marketing_consent_once_and_only_its_own() {
    let w = world().await;
    let token = portal_seed::maria_consents(&w.crm, &w.seeded)
        .await
        .expect("consent");
    assert!(portal_seed::maria_consent_stands(&w.crm, &w.seeded)
        .await
        .expect("read"));
    let mut visitor = Client::new(w.app.clone());
    // The link opens a page with a button: fetching it (a mail scanner) changes nothing.
    let page = visitor.get(&format!("/unsubscribe/{token}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"unsubscribe\""), "{}", page.body);
    assert!(portal_seed::maria_consent_stands(&w.crm, &w.seeded)
        .await
        .expect("read"));
    // A form without its CSRF token is refused.
    let forged = visitor
        .post_raw(&format!("/unsubscribe/{token}"), &[])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // Bad and foreign tokens: a page each, nothing changes.
    let bad = visitor
        .post(&format!("/unsubscribe/{}", "x".repeat(40)), &[])
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    let mut foreign = crm::consent::UnsubscribeToken::parse(&token).expect("a token");
    foreign.tenant = crm::id::TenantId::new();
    let other = visitor
        .post(&format!("/unsubscribe/{}", foreign.encode()), &[])
        .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "{}", other.body);
    assert!(portal_seed::maria_consent_stands(&w.crm, &w.seeded)
        .await
        .expect("read"));
    // A mail client's one-click request (RFC 8058: no cookies, no CSRF token) unsubscribes.
    let mut mail_client = Client::new(w.app.clone());
    let done = mail_client
        .post_raw(
            &format!("/unsubscribe/{token}"),
            &[("List-Unsubscribe", "One-Click")],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("id=\"unsubscribed\""));
    assert!(!portal_seed::maria_consent_stands(&w.crm, &w.seeded)
        .await
        .expect("read"));
    // The same link again: the same page, nothing more written.
    let again = visitor.post(&format!("/unsubscribe/{token}"), &[]).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
}
