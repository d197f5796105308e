//! Routing messages to the notifier of their channel.

use async_trait::async_trait;
use crm_core::outbox::{Channel, DeliveryError, Notifier, OutboxMessage};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Sends each message to the notifier of its channel; a channel without one is a permanent error (the message waits
/// in the dead letters until an operator configures it and retries).
#[derive(Debug, Clone, Default)]
pub struct ChannelRouter {
    routes: BTreeMap<Channel, Arc<dyn Notifier>>,
}

impl ChannelRouter {
    /// A router with no routes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes `channel` to `notifier`.
    pub fn route(mut self, channel: Channel, notifier: Arc<dyn Notifier>) -> Self {
        self.routes.insert(channel, notifier);
        self
    }
}

#[async_trait]
impl Notifier for ChannelRouter {
    async fn deliver(&self, m: &OutboxMessage) -> std::result::Result<(), DeliveryError> {
        match self.routes.get(&m.channel) {
            Some(n) => n.deliver(m).await,
            None => Err(DeliveryError::Permanent(format!(
                "no notifier is configured for channel `{}`",
                m.channel.as_str()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_core::id::TenantId;
    use crm_core::outbox::{Payload, ResolvedRecipient};
    use std::sync::Mutex;

    /// The host's SMS gateway, as a test sees it: what it was handed.
    #[derive(Debug, Default)]
    struct Gateway(Mutex<Vec<(String, String)>>);

    #[async_trait]
    impl Notifier for Gateway {
        async fn deliver(&self, m: &OutboxMessage) -> std::result::Result<(), DeliveryError> {
            let phone = m.recipient.phone.clone().ok_or_else(|| {
                DeliveryError::Permanent("a text message needs a phone number".into())
            })?;
            self.0
                .lock()
                .expect("not poisoned")
                .push((phone, m.payload.body.clone()));
            Ok(())
        }
    }

    fn text(channel: Channel) -> OutboxMessage {
        OutboxMessage::pending(
            TenantId::new(),
            "campaign:1/2",
            "campaign:1",
            channel,
            ResolvedRecipient {
                phone: Some("+40 721 000 001".into()),
                name: Some("Bob".into()),
                ..ResolvedRecipient::default()
            },
            Payload {
                body: "Bob: Spring SMS".into(),
                ..Payload::default()
            },
            chrono::Utc::now(),
        )
    }

    #[tokio::test]
    async fn text_messages_go_to_the_sms_notifier_and_an_unrouted_channel_is_permanent() {
        let gateway = Arc::new(Gateway::default());
        let router = ChannelRouter::new().route(Channel::Sms, gateway.clone());
        router.deliver(&text(Channel::Sms)).await.expect("routed");
        assert_eq!(
            *gateway.0.lock().expect("not poisoned"),
            vec![("+40 721 000 001".to_string(), "Bob: Spring SMS".to_string())]
        );
        match router.deliver(&text(Channel::Email)).await {
            Err(DeliveryError::Permanent(why)) => assert!(why.contains("`email`"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
