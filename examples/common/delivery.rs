//! How the quickstart and communication examples deliver the outbox (each includes this file with `#[path]`).

use crm::rules::notify::{RecordingNotifier, SmtpConfig, SmtpNotifier, Templates};
use crm::{Crm, Error};
use crm_core::outbox::{
    Channel, ChannelRouter, DispatchReport, Dispatcher, InboxNotifier, Notifier, OutboxStore,
};
use crm_core::rules::TaskNotifier;
use crm_core::time::Clock;
use std::sync::Arc;

/// Drains up to `limit` outbox messages: in-app ones into the inboxes, tasks through the service, e-mails over SMTP
/// when `CRM_SMTP_ADDR` (`host:port`) is set, else into `printed` for the example to show.
pub async fn deliver(
    crm: &Crm,
    store: Arc<dyn OutboxStore>,
    clock: Arc<dyn Clock>,
    templates: Arc<Templates>,
    printed: Arc<RecordingNotifier>,
    limit: u32,
) -> crm::Result<DispatchReport> {
    let email: Arc<dyn Notifier> = match std::env::var("CRM_SMTP_ADDR") {
        Ok(addr) => {
            let (host, port) = addr
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
                .ok_or_else(|| Error::invalid("CRM_SMTP_ADDR", "expected host:port"))?;
            let config = SmtpConfig {
                host: host.into(),
                port,
                from: "CRM <crm@tenant.example>".into(),
                timeout: std::time::Duration::from_secs(10),
            };
            Arc::new(
                SmtpNotifier::new(&config, templates)
                    .map_err(|e| Error::invalid("CRM_SMTP_ADDR", e.to_string()))?,
            )
        }
        Err(_) => printed,
    };
    let router = ChannelRouter::new()
        .route(
            Channel::InApp,
            Arc::new(InboxNotifier::new(store.clone(), clock.clone())),
        )
        .route(Channel::Email, email)
        .route(
            Channel::Task,
            Arc::new(TaskNotifier::new(crm.service().clone())),
        );
    Dispatcher::new(store, Arc::new(router), clock)
        .drain(limit)
        .await
}
