//! The one public error type.
//!
//! Every failure a caller can act on has its own variant, and every variant says *what* (the field or record) and
//! *why*. Adapters keep private error types and convert them into [`Error::Storage`] with a [`StorageErrorKind`],
//! so callers never match on SQLSTATEs or SQLite result codes.

use crate::id::{LeadId, LostReasonId, StageId};
use crate::kinds::{MovePolicy, Requirement, StatusKind};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// The result type of the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Bad input: names the field (a path such as `contacts[1].email`) and the reason.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field, as a path in the input.
        field: String,
        /// Why it was refused, in words a user can act on.
        reason: String,
    },
    /// The record does not exist in this tenant (ids of other tenants read as not found too).
    #[error("{entity} {id} not found")]
    NotFound {
        /// The kind of record.
        entity: &'static str,
        /// Its id or key.
        id: String,
    },
    /// A record with the same key already exists.
    #[error("{entity} {key} already exists")]
    AlreadyExists {
        /// The kind of record.
        entity: &'static str,
        /// The key that collided.
        key: String,
    },
    /// Optimistic concurrency: the caller's version is stale. Reload and retry.
    #[error("{entity} {id} was changed by someone else: you had version {expected}, it is now at version {actual}; reload and retry")]
    Conflict {
        /// The kind of record.
        entity: &'static str,
        /// Its id.
        id: String,
        /// The version the caller based its change on.
        expected: u64,
        /// The version in storage.
        actual: u64,
    },
    /// No exchange rate is known for converting a document into the reporting currency at its date: record the
    /// rate (or supply it through the host's rate source) and retry.
    #[error("no exchange rate from {from} to {to} on {on}: record one and retry")]
    MissingRate {
        /// The document's currency.
        from: String,
        /// The reporting currency.
        to: String,
        /// The date the rate is needed for.
        on: chrono::NaiveDate,
    },
    /// A partner's representative lacks the right the call needs (self-service; see [`crate::portal::Rights`]).
    #[error("forbidden: this needs the `{right}` right")]
    Forbidden {
        /// The right, by name (`pay`, `statement`, …).
        right: &'static str,
    },
    /// A lead transition was refused by the pipeline's rules.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// A storage failure, classified, with the native error that caused it (see [`std::error::Error::source`]).
    #[error("storage ({kind}): {message}")]
    Storage {
        /// What kind of storage failure it was.
        kind: StorageErrorKind,
        /// The adapter's message (no personal data).
        message: String,
        /// The native error (rusqlite's, tokio-postgres's, …), when there is one.
        source: Option<StorageSource>,
    },
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(entity: &'static str, id: impl fmt::Display) -> Self {
        Self::NotFound {
            entity,
            id: id.to_string(),
        }
    }

    /// Shorthand for [`Error::Storage`] without a native cause.
    pub fn storage(kind: StorageErrorKind, message: impl Into<String>) -> Self {
        Self::Storage {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// [`Error::Storage`] keeping the native error that caused it, reachable through
    /// [`std::error::Error::source`].
    ///
    /// ```
    /// use crm_core::{Error, StorageErrorKind};
    /// use std::error::Error as _;
    /// let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
    /// let e = Error::storage_caused(StorageErrorKind::Unavailable, "connection lost", io);
    /// assert_eq!(e.source().unwrap().to_string(), "reset by peer");
    /// assert!(e.is_retryable());
    /// ```
    pub fn storage_caused(
        kind: StorageErrorKind,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Storage {
            kind,
            message: message.into(),
            source: Some(StorageSource(Arc::new(source))),
        }
    }

    /// Whether retrying the same operation (after reloading, for a conflict) can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Conflict { .. } => true,
            Self::Storage { kind, .. } => matches!(
                kind,
                StorageErrorKind::Retryable | StorageErrorKind::Unavailable
            ),
            _ => false,
        }
    }

    /// The class of an [`Error::Storage`], if it is one.
    pub fn storage_kind(&self) -> Option<StorageErrorKind> {
        match self {
            Self::Storage { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// The field an [`Error::Invalid`] names, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// The classes of storage failure every adapter maps its native errors into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StorageErrorKind {
    /// The server or file cannot be reached now (connection refused, reset, pool exhausted). Retry later.
    Unavailable,
    /// A transient failure such as a serialization failure or deadlock. Retry the whole operation.
    Retryable,
    /// The configuration is wrong (bad credentials, missing database). Retrying will not help.
    Config,
    /// Stored data could not be decoded: a bug or a corrupted database.
    Corrupt,
    /// The adapter failed while serving the call (a panic in its connection thread): a bug. Retrying repeats it;
    /// the message says what happened.
    Internal,
    /// Anything else.
    Other,
}

impl fmt::Display for StorageErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unavailable => "unavailable",
            Self::Retryable => "retryable",
            Self::Config => "configuration",
            Self::Corrupt => "corrupt data",
            Self::Internal => "internal error",
            Self::Other => "other",
        })
    }
}

/// The native error behind an [`Error::Storage`]: shared, so [`Error`] stays `Clone`.
///
/// Errors compare by what they mean (kind and message); the native cause is context for logs, so two sources always
/// compare equal.
#[derive(Clone)]
pub struct StorageSource(Arc<dyn std::error::Error + Send + Sync>);

impl StorageSource {
    /// The native error.
    pub fn get(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl fmt::Debug for StorageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for StorageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for StorageSource {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for StorageSource {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for StorageSource {}

/// A refused transition, naming the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TransitionError {
    /// The lead is won or lost; only reopening (or editing fields) is possible.
    #[error("lead {lead} is {status}: reopen it before moving it")]
    NotOpen {
        /// The lead.
        lead: LeadId,
        /// Its status.
        status: StatusKind,
    },
    /// Reopen on a lead that is open.
    #[error("lead {lead} is already open")]
    AlreadyOpen {
        /// The lead.
        lead: LeadId,
    },
    /// The target stage is not in the lead's pipeline.
    #[error("stage {stage} is not a stage of the lead's pipeline")]
    UnknownStage {
        /// The stage.
        stage: StageId,
    },
    /// The lead is already in that stage.
    #[error("the lead is already in stage `{stage}`")]
    SameStage {
        /// The stage's name.
        stage: String,
    },
    /// The pipeline's move policy forbids the move.
    #[error("moving from `{from}` to `{to}` is not allowed by the pipeline's {policy:?} policy")]
    IllegalMove {
        /// The current stage's name.
        from: String,
        /// The target stage's name.
        to: String,
        /// The policy.
        policy: MovePolicy,
    },
    /// A requirement of the target stage is not met.
    #[error("cannot enter `{stage}`: {requirement}")]
    UnmetRequirement {
        /// The target stage's name.
        stage: String,
        /// The requirement.
        requirement: Requirement,
    },
    /// Losing a lead needs a reason.
    #[error("a lost lead needs a reason from the tenant's lost-reason list")]
    MissingLostReason,
    /// The reason is not (or no longer) in the tenant's list.
    #[error("lost reason {reason} is not an active reason of this tenant")]
    UnknownLostReason {
        /// The reason.
        reason: LostReasonId,
    },
    /// The pipeline has no won stage to win into.
    #[error("pipeline `{pipeline}` has no won stage")]
    NoWonStage {
        /// The pipeline's name.
        pipeline: String,
    },
    /// Reopening into a won stage makes no sense.
    #[error("a lead cannot be reopened into the won stage `{stage}`")]
    ReopenIntoWonStage {
        /// The stage's name.
        stage: String,
    },
    /// A communication rule's guard refused the transition.
    #[error("refused by rule `{rule}`: {reason}")]
    RefusedByRule {
        /// The rule's name.
        rule: String,
        /// Its reason.
        reason: String,
    },
}

variant_names! {
    /// A short, stable code for the broken rule (`illegal_move`, `unmet_requirement`, …).
    pub fn code for TransitionError {
        NotOpen => "not_open",
        AlreadyOpen => "already_open",
        UnknownStage => "unknown_stage",
        SameStage => "same_stage",
        IllegalMove => "illegal_move",
        UnmetRequirement => "unmet_requirement",
        MissingLostReason => "missing_lost_reason",
        UnknownLostReason => "unknown_lost_reason",
        NoWonStage => "no_won_stage",
        ReopenIntoWonStage => "reopen_into_won_stage",
        RefusedByRule => "refused_by_rule",
    }
}
