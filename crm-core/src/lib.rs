//! # crm-core: the pure core of the CRM engine that ERPs embed
//!
//! The key design decision: **everything that decides is a pure function, and everything that persists is one
//! trait.** A lead transition is [`lead::apply`]: lead, command, pipeline and facts in; new lead and events out, or a
//! typed error naming the broken rule. The [`service::CrmService`] loads through the [`store::Store`] trait, applies
//! the pure function and commits *one* [`store::ChangeSet`] holding the change, its events (which are the activity
//! log) and its stage-history step. No I/O happens in this crate and it depends on no runtime or database crate;
//! storage adapters (`crm-storage-sqlite`, `crm-storage-postgres`) implement [`store::Store`] and prove it with the
//! shared [`conformance`](crate#conformance) suite.
//!
//! Money is [`money::Money`] (`rust_decimal` + ISO 4217, no cross-currency arithmetic); time is UTC behind
//! [`time::Clock`]; ids are UUID v7 newtypes ([`id`]); every record carries its [`id::TenantId`].
//!
//! ## Conformance
//!
//! With the `conformance` feature, `crm_core::conformance` exposes one async check per storage behaviour and
//! proptest models that compare an adapter with a simple in-memory reference. Each adapter's
//! `tests/conformance.rs` runs all of them.

#[macro_use]
mod checked_form;
#[macro_use]
mod record;
#[macro_use]
mod storage_trait;
#[macro_use]
mod typed_reads;
#[macro_use]
mod variant_names;

pub mod actor;
pub mod commerce;
pub mod comms;
pub mod consent;
pub mod contact;
pub mod dedupe;
pub mod erasure;
pub mod error;
pub mod event;
pub mod id;
pub mod kinds;
pub mod lead;
pub mod lead_merge;
pub mod merge;
pub mod money;
pub mod outbox;
pub mod page;
pub mod partner;
pub mod pipeline;
pub mod portal;
pub mod request;
pub mod sales;
pub mod service;
pub mod setting;
pub mod store;
pub mod time;
pub mod validate;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use error::{Error, Result, StorageErrorKind, StorageSource};
