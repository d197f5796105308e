//! The self-service portal in a real browser: Debian's Chromium, headless, driven over WebDriver by its
//! `chromedriver` (started here on loopback). Maria signs in through her link, reads Acme's balance, pays one
//! invoice whole and another in part in one batch and sees the balance change, opens a request that the CRM then
//! holds (and answers), adds a contact, switches to Romanian and signs out; Radu, Rival's representative, edits URLs
//! and a form field to Acme's ids and gets the not-found page, seeing nothing of Acme. Screenshots of the statement,
//! the payment and the not-found page are written under `target/tmp/`.
//!
//! `scripts/test` installs `chromium` and `chromium-driver` and sets `CRM_REQUIRE_BROWSER=1`, so there a missing
//! browser fails the test; elsewhere it says so and passes.

#![cfg(feature = "web")]

#[path = "../examples/common/portal_seed.rs"]
mod portal_seed;

use crm::commerce::DocumentKind;
use crm::{CommerceStoreExt, RequestQuery};
use fantoccini::{Client, ClientBuilder, Locator};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `chromedriver` on a free loopback port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("bound").port()
}

/// Starts the driver, or says why not: `None` when it is not installed and not required.
async fn driver() -> Option<Driver> {
    let bin = std::env::var("CRM_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    let required = std::env::var_os("CRM_REQUIRE_BROWSER").is_some();
    let port = free_port();
    let child = match Command::new(&bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if !required => {
            eprintln!(
                "portal_browser: no {bin} ({e}); install chromium-driver (scripts/test does)"
            );
            return None;
        }
        Err(e) => panic!("CRM_REQUIRE_BROWSER is set but {bin} does not start: {e}"),
    };
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some(driver);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not listen on {port}");
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    let mut chrome = serde_json::json!({
        "args": [
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--window-size=1280,1400",
        ]
    });
    if let Ok(bin) = std::env::var("CRM_CHROMIUM") {
        chrome["binary"] = bin.into();
    } else if std::path::Path::new("/usr/bin/chromium").exists() {
        chrome["binary"] = "/usr/bin/chromium".into();
    }
    caps.insert("goog:chromeOptions".into(), chrome);
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

/// The text of the element `css` once it satisfies `want`, polling: after a click the browser may still show the
/// page it leaves, whose elements go stale or hold the old text.
async fn text_until(c: &Client, css: &str, want: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut last = None;
    loop {
        if let Ok(el) = c.find(Locator::Css(css)).await {
            if let Ok(t) = el.text().await {
                if want(&t) {
                    return t;
                }
                last = Some(t);
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{css}: never as wanted (last text {last:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for `css` to show exactly `want`.
async fn shows(c: &Client, css: &str, want: &str) {
    text_until(c, css, |t| t == want).await;
}

/// Waits for `css` to be on the page; its text.
async fn text(c: &Client, css: &str) -> String {
    text_until(c, css, |_| true).await
}

/// The element `css`, once the page has it.
async fn element(c: &Client, css: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
}

async fn click(c: &Client, css: &str) {
    let el = element(c, css).await;
    el.click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

async fn fill(c: &Client, css: &str, value: &str) {
    let el = element(c, css).await;
    el.clear().await.expect("clear");
    el.send_keys(value).await.expect("type");
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, png).expect("write the screenshot");
    eprintln!("portal_browser: {}", path.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn representatives_use_the_portal_in_chromium() {
    let Some(driver) = driver().await else { return };
    let crm = portal_seed::demo_crm().await.expect("crm");
    let seeded = portal_seed::seed(&crm).await.expect("seed");
    let app = portal_seed::portal_of(&crm, &seeded).router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let c = browser(&driver).await;
    let result = walk(&c, &crm, &seeded, &base).await;
    c.close().await.expect("close the browser");
    result
}

async fn walk(c: &Client, crm: &crm::Crm, seeded: &portal_seed::Seeded, base: &str) {
    let t = seeded.tenant;
    // Maria follows the link in her invitation and signs in.
    c.goto(&format!("{base}/login/{}", seeded.maria_token))
        .await
        .expect("goto");
    click(c, "#sign-in").await;
    shows(c, "#partner", "Acme SRL").await;
    shows(c, "tr.balance .receivable", "2050.00 EUR").await;
    shows(c, "tr.balance .overdue-amount", "1200.00 EUR").await;
    let overdue = c
        .find_all(Locator::Css("#open-items tr.item.overdue"))
        .await
        .expect("rows");
    assert_eq!(overdue.len(), 1);
    assert_eq!(
        overdue[0]
            .attr("data-number")
            .await
            .expect("attr")
            .as_deref(),
        Some("F-1001")
    );
    // The chart of the balance over time loads (an SVG from the portal itself, allowed by its CSP).
    let loaded = c
        .execute(
            "const i = document.getElementById('chart'); return i.complete && i.naturalWidth > 0;",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(loaded, serde_json::Value::Bool(true), "the chart shows");
    screenshot(c, "portal-statement.png").await;

    // She pays F-1001 whole and 200 of F-1003 in one batch.
    click(c, "#pay-link").await;
    text(c, "#pay-form").await;
    click(c, "#pick-F-1001").await;
    click(c, "#pick-F-1003").await;
    fill(c, "#amount-F-1003", "200").await;
    click(c, "#pay-submit").await;
    shows(c, "#confirm-total", "1400.00 EUR").await;
    click(c, "#pay-confirm").await;
    text_until(c, "#payment-status", |t| t.contains("confirmed")).await;
    screenshot(c, "portal-payment.png").await;
    click(c, "#back-to-account").await;
    shows(c, "tr.balance .receivable", "650.00 EUR").await;
    shows(c, "tr.balance .overdue-amount", "0.00 EUR").await;
    assert!(
        c.find(Locator::Css("tr.item[data-number='F-1001']"))
            .await
            .is_err(),
        "F-1001 is settled"
    );
    shows(c, "tr.item[data-number='F-1003'] .open", "250.00 EUR").await;

    // She opens a complaint; the CRM holds it, assigned to the account manager, and his answer shows.
    click(c, "#nav-requests").await;
    let kind = element(c, "#request-kind").await;
    kind.select_by_value("complaint").await.expect("select");
    fill(c, "#request-title", "Router arrived scratched").await;
    fill(
        c,
        "#request-body",
        "The left panel is scratched; photos on request.",
    )
    .await;
    click(c, "#request-send").await;
    shows(c, "#request-title", "Router arrived scratched").await;
    let q = RequestQuery {
        partner: Some(seeded.acme),
        ..RequestQuery::default()
    };
    let held = crm
        .leads()
        .store()
        .query_requests(t, &q)
        .await
        .expect("requests")
        .items;
    let r = held
        .iter()
        .find(|r| r.title() == "Router arrived scratched")
        .expect("the CRM holds the request");
    assert_eq!(r.kind(), Some("portal_complaint"));
    assert_eq!(r.assignee(), seeded.ana);
    assert!(matches!(
        r.opened_by(),
        crm::Actor::PartnerRepresentative { .. }
    ));
    let target = crm::CommentTarget::Request(r.id());
    crm.leads()
        .comment(&seeded.staff, target, "Sorry: a new panel ships tomorrow.")
        .await
        .expect("staff answer");
    c.refresh().await.expect("reload");
    text_until(c, "#replies", |t| t.contains("a new panel ships tomorrow")).await;
    let maria_request = r.id();

    // She adds a colleague to Acme's contacts.
    click(c, "#nav-contacts").await;
    fill(c, "#contact-name", "Elena Dinu").await;
    fill(c, "#contact-email", "elena@acme.example").await;
    click(c, "#contact-add").await;
    text_until(c, "#contacts", |t| t.contains("elena@acme.example")).await;
    let acme = crm.leads().partner(t, seeded.acme).await.expect("acme");
    assert!(
        acme.contacts().iter().any(|x| x.name == "Elena Dinu"),
        "the CRM has the contact"
    );

    // In Romanian, then out.
    c.goto(&format!("{base}/lang/ro")).await.expect("goto");
    shows(c, "main h1", "Cont").await;
    click(c, "#logout").await;
    text(c, "#send-link").await;
    c.goto(&format!("{base}/")).await.expect("goto");
    assert!(c
        .current_url()
        .await
        .expect("url")
        .path()
        .ends_with("/login"));

    // Radu signs in for Rival and edits URLs and a form field to Acme's ids: not found, nothing of Acme shows.
    c.goto(&format!("{base}/login/{}", seeded.radu_token))
        .await
        .expect("goto");
    click(c, "#sign-in").await;
    shows(c, "#partner", "Rival SA").await;
    let acme_invoice = crm
        .commerce()
        .store()
        .document_by_number(t, DocumentKind::Invoice, "F-1003")
        .await
        .expect("read")
        .expect("F-1003");
    for path in [
        format!("/documents/{}", acme_invoice.id()),
        format!("/requests/{maria_request}"),
    ] {
        c.goto(&format!("{base}{path}")).await.expect("goto");
        text(c, "#message").await;
        let page = c.source().await.expect("source");
        assert!(
            page.contains("class=\"message not_found\""),
            "{path}: {page}"
        );
        for secret in ["Acme", "F-1003", "scratched"] {
            assert!(!page.contains(secret), "{path} shows {secret}");
        }
    }
    screenshot(c, "portal-not-found.png").await;
    c.goto(&format!("{base}/pay")).await.expect("goto");
    c.execute(
        "const box = document.querySelector('input[name=item]'); box.value = arguments[0]; box.checked = true;",
        vec![acme_invoice.id().to_string().into()],
    )
    .await
    .expect("edit the form");
    click(c, "#pay-submit").await;
    text(c, "#message").await;
    let page = c.source().await.expect("source");
    assert!(page.contains("class=\"message not_found\""), "{page}");
    assert!(!page.contains("Acme"));
    let still = portal_seed::acme_owes(crm, seeded).await.expect("balances");
    assert_eq!(
        still,
        crm::Decimal::from(650),
        "Acme's account is untouched"
    );

    // Maria's offers carry an unsubscribe link: she follows it from her mail and presses the button (the page is
    // in Romanian now: the language cookie stays).
    let token = portal_seed::maria_consents(crm, seeded)
        .await
        .expect("consent");
    c.goto(&format!("{base}/unsubscribe/{token}"))
        .await
        .expect("goto");
    assert!(portal_seed::maria_consent_stands(crm, seeded)
        .await
        .expect("read"));
    click(c, "#unsubscribe").await;
    text_until(c, "#unsubscribed", |t| t.contains("marketing")).await;
    screenshot(c, "portal-unsubscribed.png").await;
    assert!(
        !portal_seed::maria_consent_stands(crm, seeded)
            .await
            .expect("read"),
        "the CRM holds the withdrawal"
    );
}
