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
