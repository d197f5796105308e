//! Paying open items from the portal: a [`PaymentAttempt`] is planned against the partner's open items (pure:
//! [`PaymentAttempt::plan`]), handed to the host's [`PaymentProvider`] under its idempotency key, and, once
//! confirmed, recorded as one payment document allocated to the items.
//!
//! Never allocating twice rests on two keys: the attempt's idempotency key is unique per tenant (the same key again
//! is the same attempt), and its payment document's number is derived from the attempt (`PORTAL-<attempt id>`), so a
//! confirmation recorded twice, a retry after a crash or two confirmations at once record one document. Two tabs
//! paying the same item: an attempt reserves its amounts until it is confirmed or fails, and a new one may pay only
//! what is open and not reserved.

use crate::error::{Error, Result};
use crate::id::{DocumentId, PartnerId, PaymentAttemptId, RepresentativeId, TenantId};
use crate::kinds::DocumentKind;
use crate::money::Currency;
use crate::time::Timestamp;
use async_trait::async_trait;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;

/// The most items one payment settles.
pub const MAX_PAY_ITEMS: usize = 100;

/// An open item as a payment is planned against it (what the partner's open items say of it; the service makes
/// these from [`crate::commerce::OpenItem`]s, so this module needs nothing of commerce).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payable {
    /// The document.
    pub document: DocumentId,
    /// Its number.
    pub number: String,
    /// Invoice or vendor bill.
    pub kind: DocumentKind,
    /// Its currency.
    pub currency: Currency,
    /// What is open of it.
    pub open: Decimal,
}

/// One open item to pay, and how much of it (what is open and not reserved when `amount` is `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayItem {
    /// The invoice.
    pub document: DocumentId,
    /// The amount, in the invoice's currency.
    pub amount: Option<Decimal>,
}

impl PayItem {
    /// The whole open amount of `document`.
    pub fn all_of(document: DocumentId) -> Self {
        Self {
            document,
            amount: None,
        }
    }

    /// `amount` of `document`.
    pub fn part_of(document: DocumentId, amount: Decimal) -> Self {
        Self {
            document,
            amount: Some(amount),
        }
    }
}

/// An item a payment settles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaidItem {
    /// The invoice.
    pub document: DocumentId,
    /// Its number (what the payment document allocates to).
    pub number: String,
    /// The amount.
    pub amount: Decimal,
}

/// Where an attempt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    /// Handed to the provider; no answer yet (or it timed out): the host's confirmation settles it.
    Started,
    /// The provider accepted it and will confirm later.
    Pending,
    /// Paid: recorded as a payment document.
    Confirmed,
    /// The provider refused it; nothing was recorded.
    Failed,
}

impl AttemptStatus {
    /// The stored code.
    pub fn code(self) -> i16 {
        match self {
            Self::Started => 0,
            Self::Pending => 1,
            Self::Confirmed => 2,
            Self::Failed => 3,
        }
    }

    /// Whether its amounts are still reserved (started or pending).
    pub fn reserves(self) -> bool {
        matches!(self, Self::Started | Self::Pending)
    }
}

record! {
    /// A payment a representative started in the portal.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct PaymentAttempt {
        /// Its id.
        id: PaymentAttemptId,
        /// The tenant.
        tenant: TenantId,
        /// The partner paying.
        partner: PartnerId,
        /// The representative who started it.
        representative: RepresentativeId,
        /// The idempotency key (unique per tenant): the same key again is the same attempt.
        key: String => &str = borrow,
        /// The currency of the items.
        currency: Currency,
        /// What it settles.
        items: Vec<PaidItem> => &[PaidItem] = borrow,
        /// The sum of the items.
        total: Decimal,
        /// Where it stands.
        status: AttemptStatus,
        /// The provider's reference, once it gave one.
        reference: Option<String> => Option<&str> = deref,
        /// Why it failed.
        failure: Option<String> => Option<&str> = deref,
        /// Optimistic-concurrency version, 1 on creation.
        version: u64,
        /// When it was started.
        created_at: Timestamp,
        /// When it last changed.
        updated_at: Timestamp,
    }
}

/// Who pays, for [`PaymentAttempt::plan`].
#[derive(Debug, Clone, Copy)]
pub struct Payer {
    /// The tenant.
    pub tenant: TenantId,
    /// The partner.
    pub partner: PartnerId,
    /// The representative.
    pub representative: RepresentativeId,
}

impl PaymentAttempt {
    /// Plans an attempt to pay `items` of the partner's `open` items (on the day it is paid), given the attempts
    /// still reserving amounts (`reserving`, the partner's started and pending ones).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `key` (empty or longer than 100 characters), on `items` (none, more than
    /// [`MAX_PAY_ITEMS`], one document twice, or several currencies), on `items[i].document` (an invoice already
    /// settled, or not an invoice), on `items[i].amount` (zero, negative, more decimals than the currency has, or
    /// more than is open and not reserved); [`Error::NotFound`] when a document is not among the partner's open
    /// items (another partner's or tenant's reads so too).
    pub fn plan(
        who: Payer,
        key: &str,
        items: &[PayItem],
        open: &[Payable],
        reserving: &[PaymentAttempt],
        now: Timestamp,
    ) -> Result<Self> {
        let key = key.trim();
        if key.is_empty() || key.chars().count() > 100 {
            return Err(Error::invalid("key", "1 to 100 characters"));
        }
        if items.is_empty() || items.len() > MAX_PAY_ITEMS {
            return Err(Error::invalid(
                "items",
                format!("choose 1 to {MAX_PAY_ITEMS} open items"),
            ));
        }
        let mut paid = Vec::with_capacity(items.len());
        let mut currency: Option<Currency> = None;
        for (i, item) in items.iter().enumerate() {
            if items[..i].iter().any(|x| x.document == item.document) {
                return Err(Error::invalid(
                    format!("items[{i}].document"),
                    "the same item twice",
                ));
            }
            let o = open
                .iter()
                .find(|o| o.document == item.document)
                .ok_or_else(|| Error::not_found("open item", item.document))?;
            let field = |f: &str| format!("items[{i}].{f}");
            if o.kind != DocumentKind::Invoice {
                return Err(Error::invalid(
                    field("document"),
                    "only invoices are paid in the portal",
                ));
            }
            if o.open <= Decimal::ZERO {
                return Err(Error::invalid(field("document"), "already settled"));
            }
            if currency.is_some_and(|c| c != o.currency) {
                return Err(Error::invalid("items", "one currency per payment"));
            }
            currency = Some(o.currency);
            let reserved: Decimal = reserving
                .iter()
                .filter(|a| a.status.reserves())
                .flat_map(|a| a.items.iter())
                .filter(|x| x.document == o.document)
                .map(|x| x.amount)
                .sum();
            let available = o.open - reserved;
            if available <= Decimal::ZERO {
                return Err(Error::invalid(
                    field("document"),
                    "already being paid (another payment is in progress)",
                ));
            }
            let amount = item.amount.unwrap_or(available);
            if amount <= Decimal::ZERO {
                return Err(Error::invalid(field("amount"), "must be positive"));
            }
            let digits = o.currency.minor_digits();
            if amount.normalize().scale() > digits {
                return Err(Error::invalid(
                    field("amount"),
                    format!("{} has {digits} decimals", o.currency.code()),
                ));
            }
            if amount > available {
                return Err(Error::invalid(
                    field("amount"),
                    format!("more than the {available} open on {}", o.number),
                ));
            }
            paid.push(PaidItem {
                document: o.document,
                number: o.number.clone(),
                amount,
            });
        }
        let total = paid.iter().map(|p| p.amount).sum();
        Ok(Self {
            id: PaymentAttemptId::new(),
            tenant: who.tenant,
            partner: who.partner,
            representative: who.representative,
            key: key.to_string(),
            currency: currency.ok_or_else(|| Error::invalid("items", "no item"))?,
            items: paid,
            total,
            status: AttemptStatus::Started,
            reference: None,
            failure: None,
            version: 1,
            created_at: now,
            updated_at: now,
        })
    }

    /// The number of the payment document it is recorded as.
    pub fn document_number(&self) -> String {
        format!("PORTAL-{}", self.id)
    }

    /// The attempt moved to `status` (version + 1), with the provider's reference or the failure.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `status` when it is confirmed or failed already (final).
    pub fn settle(
        &self,
        status: AttemptStatus,
        reference: Option<String>,
        failure: Option<String>,
        now: Timestamp,
    ) -> Result<Self> {
        if !self.status.reserves() {
            return Err(Error::invalid(
                "status",
                format!("the payment is {:?} already", self.status).to_lowercase(),
            ));
        }
        Ok(Self {
            status,
            reference: reference.or_else(|| self.reference.clone()),
            failure,
            version: self.version + 1,
            updated_at: now,
            ..self.clone()
        })
    }
}

/// What a provider answers when a payment is handed to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderAnswer {
    /// Paid now.
    Confirmed {
        /// The provider's reference.
        reference: String,
    },
    /// Accepted; the provider confirms later (the host calls
    /// [`crate::service::PortalService::gateway_answer`] from its webhook).
    Pending {
        /// The provider's reference.
        reference: String,
    },
    /// Refused.
    Failed {
        /// Why, in words for the payer.
        reason: String,
    },
}

/// The host's payment gateway. The engine hands it each attempt once it is stored; the provider must treat
/// [`PaymentAttempt::key`] as its own idempotency key (a retry of the same attempt is the same charge).
#[async_trait]
pub trait PaymentProvider: Send + Sync + Debug {
    /// Starts the payment of `attempt` (its total in its currency).
    ///
    /// # Errors
    ///
    /// Any error (a timeout, a lost connection): the attempt then stays started, its amounts reserved, until the
    /// host confirms it or marks it failed.
    async fn start(&self, attempt: &PaymentAttempt) -> Result<ProviderAnswer>;
}
