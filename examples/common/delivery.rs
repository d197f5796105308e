//! How the quickstart and communication examples deliver the outbox (each includes this file with `#[path]`).

use crm::rules::notify::{RecordingNotifier, Rendered, SmtpConfig, SmtpNotifier, Templates};
use crm::{Channel, ChannelRouter, Crm, DispatchReport, Error, Notifier};
use std::sync::Arc;

/// Drains up to `limit` outbox messages: in-app ones into the inboxes, tasks through the service, e-mails over SMTP
/// when `CRM_SMTP_ADDR` (`host:port`) is set, else recorded for the example to show. Returns the pass's report and
/// the e-mails recorded instead of sent (see [`printed_emails`]).
pub async fn deliver(
    crm: &Crm,
    templates: Arc<Templates>,
    limit: u32,
) -> crm::Result<(DispatchReport, Vec<(String, Rendered)>)> {
    let printed = Arc::new(RecordingNotifier::new());
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
                SmtpNotifier::new(&config, templates.clone())
                    .map_err(|e| Error::invalid("CRM_SMTP_ADDR", e.to_string()))?,
            )
        }
        Err(_) => printed.clone(),
    };
    let router = ChannelRouter::new()
        .route(Channel::InApp, Arc::new(crm.inbox_notifier()))
        .route(Channel::Email, email)
        .route(Channel::Task, Arc::new(crm.task_notifier()));
    let report = crm.dispatcher(Arc::new(router)).drain(limit).await?;
    Ok((report, printed_emails(&printed, &templates)))
}

/// The e-mails `deliver` printed instead of sending, rendered with `templates`: each recipient's address (`?`
/// without one) and the rendered message.
fn printed_emails(printed: &RecordingNotifier, templates: &Templates) -> Vec<(String, Rendered)> {
    printed
        .delivered()
        .into_iter()
        .map(|m| {
            // A templated e-mail is rendered; one the engine wrote itself (a quotation, an invitation) is as written.
            let t = match m.payload.template.as_deref() {
                Some(name) => templates
                    .render(name, &m.payload.vars)
                    .expect("the example templates render"),
                None => Rendered {
                    subject: m.payload.subject.clone(),
                    text: m.payload.body.clone(),
                    html: None,
                },
            };
            let to = m.recipient.email.as_deref().unwrap_or("?").to_string();
            (to, t)
        })
        .collect()
}
