//! The self-service portal, served on 127.0.0.1 with seeded data: prints a login link for Maria, Acme's
//! representative; open it in a browser, sign in, read the statement, pay an invoice, open a request.
//!
//! ```sh
//! cargo run --example portal            # http://127.0.0.1:8088, Ctrl-C to stop
//! CRM_PORTAL_ADDR=127.0.0.1:9000 cargo run --example portal
//! ```
//!
//! The data lives in SQLite in memory (it is gone when the example stops). Login links asked for on the login page
//! are e-mails in the outbox; the example prints them, as no SMTP server is configured.

#[path = "common/portal_seed.rs"]
mod portal_seed;

use crm::{OutboxStatus, OutboxStore, PageRequest};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("CRM_PORTAL_ADDR").unwrap_or_else(|_| "127.0.0.1:8088".into());
    let crm = portal_seed::demo_crm().await?;
    let seeded = portal_seed::seed(&crm).await?;
    let app = portal_seed::portal_of(&crm, &seeded).router();
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("Self-service portal of Exemplu Utilaje SRL on {base}");
    println!(
        "Sign in as Maria Pop (Acme SRL): {base}/login/{}",
        seeded.maria_token
    );
    println!(
        "Sign in as Radu Rus (Rival SA):  {base}/login/{}",
        seeded.radu_token
    );
    // Login links asked for later are printed as they are queued (the e-mail a real host would send).
    let outbox = crm.outbox();
    let tenant = seeded.tenant;
    let printer = base.clone();
    tokio::spawn(async move {
        let mut seen = std::collections::BTreeSet::new();
        loop {
            let page = PageRequest::first(100);
            if let Ok(p) = outbox
                .list_outbox(tenant, OutboxStatus::Pending, &page)
                .await
            {
                for m in p.items {
                    let token = m.payload.vars["token"].as_str().map(str::to_string);
                    if let (Some(t), true) = (token, seen.insert(m.id)) {
                        if m.payload.template.as_deref() == Some(crm::portal::LOGIN_TEMPLATE) {
                            let name = m.payload.vars["name"].as_str().unwrap_or_default();
                            println!("Login link e-mailed to {name}: {printer}/login/{t}");
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
