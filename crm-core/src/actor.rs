//! Who did it, and through which door.

use crate::id::{ContactId, PartnerId, TenantId, UserId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The author of a change, recorded on every activity entry and event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Actor {
    /// A user of the host ERP.
    User {
        /// The user.
        id: UserId,
    },
    /// An authorised representative of a partner, acting through self-service.
    PartnerRepresentative {
        /// The partner represented.
        partner: PartnerId,
        /// The contact acting.
        contact: ContactId,
    },
    /// The engine itself (scheduler, migrations).
    System,
    /// A communication rule, by name.
    Rule {
        /// The rule's name.
        name: String,
    },
    /// A bulk import, by batch label.
    Import {
        /// The batch label.
        batch: String,
    },
}

impl Actor {
    /// A user actor.
    pub fn user(id: UserId) -> Self {
        Self::User { id }
    }

    /// The user behind this actor, if it is one.
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Self::User { id } => Some(*id),
            _ => None,
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User { id } => write!(f, "user {id}"),
            Self::PartnerRepresentative { partner, contact } => {
                write!(f, "representative {contact} of partner {partner}")
            }
            Self::System => f.write_str("system"),
            Self::Rule { name } => write!(f, "rule {name}"),
            Self::Import { batch } => write!(f, "import {batch}"),
        }
    }
}

/// The channel a change came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Source {
    /// The host application's API calls.
    Api,
    /// The self-service portal.
    Portal,
    /// A bulk import.
    Import,
    /// A communication rule's action.
    Rules,
    /// The time-driven scheduler.
    Scheduler,
}

/// Who is acting, for which tenant, through which door: passed to every service call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// The tenant (host company) the call works in; it can reach no other tenant's data.
    pub tenant: TenantId,
    /// Who acts.
    pub actor: Actor,
    /// Through which channel.
    pub source: Source,
}

impl Context {
    /// A user acting through the API.
    pub fn user(tenant: TenantId, user: UserId) -> Self {
        Self {
            tenant,
            actor: Actor::user(user),
            source: Source::Api,
        }
    }

    /// The engine acting on its own.
    pub fn system(tenant: TenantId) -> Self {
        Self {
            tenant,
            actor: Actor::System,
            source: Source::Api,
        }
    }
}
