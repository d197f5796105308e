//! Contracts: what an accepted quotation becomes. The value and parties come from the accepted revision; the
//! dates (start, end, renewal) from the people who agree them; the signature is recorded by the host or the
//! partner's representative in the portal.

use crate::actor::Actor;
use crate::error::{Error, Result};
use crate::id::{ContractId, LeadId, PartnerId, QuotationId, TenantId};
use crate::money::Money;
use crate::sales::quotation::{Quotation, QuotationStatus};
use crate::time::{check_business_date, Timestamp};
use crate::validate;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Who signed a contract, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// Who signed (a user for the tenant, or the partner's representative).
    pub by: Actor,
    /// When.
    pub at: Timestamp,
}

/// The dates of a contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Term {
    /// The first day it applies.
    pub starts_on: NaiveDate,
    /// The last day it applies; `None` for an open-ended contract.
    pub ends_on: Option<NaiveDate>,
    /// The day it is up for renewal (the renewal time rules count back from it); within the term.
    pub renews_on: Option<NaiveDate>,
}

record! {
    /// A contract.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Contract {
        /// Its id.
        id: ContractId,
        /// The tenant.
        tenant: TenantId,
        /// Its number (`C-2026-0042`, unique per tenant).
        number: String => &str = borrow,
        /// The partner.
        partner: PartnerId,
        /// The lead it closed.
        lead: Option<LeadId>,
        /// The accepted quotation revision it came from.
        quotation: Option<QuotationId>,
        /// Its value.
        value: Money,
        /// Its dates.
        term: Term,
        /// The signature, once signed.
        signature: Option<Signature> => Option<&Signature> = as_ref,
        /// Optimistic-concurrency version.
        version: u64,
        /// When it was made.
        created_at: Timestamp,
        /// When it last changed.
        updated_at: Timestamp,
    }
}

fn checked_term(t: Term) -> Result<Term> {
    check_business_date("starts_on", t.starts_on)?;
    if let Some(end) = t.ends_on {
        check_business_date("ends_on", end)?;
        if end < t.starts_on {
            return Err(Error::invalid(
                "ends_on",
                format!("{end} is before the start {}", t.starts_on),
            ));
        }
    }
    if let Some(r) = t.renews_on {
        check_business_date("renews_on", r)?;
        if r < t.starts_on || t.ends_on.is_some_and(|e| r > e) {
            return Err(Error::invalid(
                "renews_on",
                format!("{r} is outside the contract's term"),
            ));
        }
    }
    Ok(t)
}

impl Contract {
    /// The contract an accepted quotation revision becomes: its partner, lead and total; `number` and `term` as
    /// agreed.
    ///
    /// # Errors
    /// [`Error::Invalid`] on `quotation` when the revision is not accepted, on `number` when empty or long, and on
    /// `starts_on`, `ends_on` (before the start) or `renews_on` (outside the term) or a date outside the business
    /// calendar.
    pub fn from_quotation(
        q: &Quotation,
        id: ContractId,
        number: &str,
        term: Term,
        now: Timestamp,
    ) -> Result<Self> {
        if q.status() != QuotationStatus::Accepted {
            return Err(Error::invalid(
                "quotation",
                format!(
                    "quotation {} is {}; only an accepted one becomes a contract",
                    q.number(),
                    q.status()
                ),
            ));
        }
        Ok(Self {
            id,
            tenant: q.tenant(),
            number: validate::bounded("number", number, 64, true)?,
            partner: q.partner(),
            lead: q.lead(),
            quotation: Some(q.id()),
            value: q.totals().total,
            term: checked_term(term)?,
            signature: None,
            version: 1,
            created_at: now,
            updated_at: now,
        })
    }

    /// The contract signed by `by` at `now` (version + 1). A partner's representative signs only their partner's
    /// contract; another partner's reads as not found.
    ///
    /// # Errors
    /// [`Error::Invalid`] on `signature` when it is signed already; [`Error::NotFound`] for another partner's
    /// representative.
    pub fn sign(&self, by: Actor, now: Timestamp) -> Result<Self> {
        if let Actor::PartnerRepresentative { partner, .. } = &by {
            if *partner != self.partner {
                return Err(Error::not_found("contract", self.id));
            }
        }
        if let Some(s) = &self.signature {
            return Err(Error::invalid(
                "signature",
                format!("contract {} was signed at {}", self.number, s.at),
            ));
        }
        let mut next = self.clone();
        next.signature = Some(Signature { by, at: now });
        next.version += 1;
        next.updated_at = now;
        Ok(next)
    }
}
