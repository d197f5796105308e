//! The in-app inbox notifier.

use async_trait::async_trait;
use crm_core::outbox::{
    DeliveryError, InboxItem, Notifier, OutboxMessage, OutboxStore, OutboxStoreExt,
};
use crm_core::time::Clock;
use std::sync::Arc;

/// Delivers in-app messages into the recipient's inbox (idempotent per message).
#[derive(Debug, Clone)]
pub struct InboxNotifier {
    store: Arc<dyn OutboxStore>,
    clock: Arc<dyn Clock>,
}

impl InboxNotifier {
    /// An inbox notifier writing to `store`.
    pub fn new(store: Arc<dyn OutboxStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }
}

#[async_trait]
impl Notifier for InboxNotifier {
    async fn deliver(&self, m: &OutboxMessage) -> std::result::Result<(), DeliveryError> {
        let item = InboxItem::from_message(m, self.clock.now())
            .map_err(|e| DeliveryError::Permanent(e.to_string()))?;
        match self.store.inbox_put(item).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_retryable() => Err(DeliveryError::Transient(e.to_string())),
            Err(e) => Err(DeliveryError::Permanent(e.to_string())),
        }
    }
}
