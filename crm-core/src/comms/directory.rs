//! The organisation as the host knows it ([`Directory`]), resolving recipients to people, and a decided action
//! as outbox messages ([`to_outbox`]).

use super::*;

/// A person as the directory knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// The user, when the person is a user of the host (partner contacts are not).
    pub user: Option<UserId>,
    /// Display name.
    pub name: String,
    /// E-mail address.
    pub email: Option<String>,
}

/// The organisation as the host knows it: users, roles, reporting lines, partners' contacts.
///
/// Implementations answer from memory or a cache: they are called inside the commit path and must not block on
/// I/O for long.
pub trait Directory: Send + Sync + Debug {
    /// A user of the tenant.
    fn user(&self, tenant: TenantId, id: UserId) -> Option<Person>;
    /// The members of a role; `None` when the tenant has no such role (an error for the rule that named it).
    fn role_members(&self, tenant: TenantId, role: &str) -> Option<Vec<UserId>>;
    /// The user's manager (one step up the reporting line).
    fn manager_of(&self, tenant: TenantId, user: UserId) -> Option<UserId>;
    /// A partner's contacts with `role` (`primary`: all contacts with an e-mail address).
    fn partner_contacts(&self, tenant: TenantId, partner: PartnerId, role: &str) -> Vec<Person>;
    /// Every role of the tenant with its members (for diagrams).
    fn roles(&self, tenant: TenantId) -> BTreeMap<String, Vec<UserId>>;
    /// The user the host knows by `key` (rules write `user:ana`); `None` by default.
    fn user_by_key(&self, tenant: TenantId, key: &str) -> Option<UserId> {
        let _ = (tenant, key);
        None
    }
}

/// One user of a [`StaticDirectory`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryUser {
    /// The user.
    pub id: UserId,
    /// Display name.
    pub name: String,
    /// E-mail address.
    pub email: Option<String>,
    /// Roles.
    #[serde(default)]
    pub roles: BTreeSet<String>,
    /// Manager.
    #[serde(default)]
    pub manager: Option<UserId>,
}

/// A partner contact in a [`StaticDirectory`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryContact {
    /// The partner.
    pub partner: PartnerId,
    /// The contact's role (`purchasing`, `primary`, …).
    pub role: String,
    /// Name.
    pub name: String,
    /// E-mail address.
    pub email: Option<String>,
}

/// An in-memory directory for one tenant: for tests, the CLI and small hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticDirectory {
    /// The tenant it answers for; other tenants see an empty organisation.
    pub tenant: TenantId,
    /// Declared roles (a role may have no members yet and still be known).
    #[serde(default)]
    pub roles: BTreeSet<String>,
    /// Users.
    #[serde(default)]
    pub users: Vec<DirectoryUser>,
    /// Partner contacts.
    #[serde(default)]
    pub contacts: Vec<DirectoryContact>,
    /// Users by the key rules name them with (`user:ana`).
    #[serde(default)]
    pub keys: BTreeMap<String, UserId>,
}

impl StaticDirectory {
    /// An empty organisation of `tenant`.
    pub fn new(tenant: TenantId) -> Self {
        Self {
            tenant,
            roles: BTreeSet::new(),
            users: Vec::new(),
            contacts: Vec::new(),
            keys: BTreeMap::new(),
        }
    }

    /// Adds a user with roles and an optional manager.
    pub fn with_user(
        mut self,
        id: UserId,
        name: &str,
        email: Option<&str>,
        roles: &[&str],
        manager: Option<UserId>,
    ) -> Self {
        for r in roles {
            self.roles.insert(r.to_string());
        }
        self.users.push(DirectoryUser {
            id,
            name: name.to_string(),
            email: email.map(str::to_string),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            manager,
        });
        self
    }

    /// Adds a partner contact.
    pub fn with_contact(mut self, partner: PartnerId, role: &str, name: &str, email: &str) -> Self {
        self.contacts.push(DirectoryContact {
            partner,
            role: role.to_string(),
            name: name.to_string(),
            email: Some(email.to_string()),
        });
        self
    }
}

impl Directory for StaticDirectory {
    fn user(&self, tenant: TenantId, id: UserId) -> Option<Person> {
        (tenant == self.tenant)
            .then(|| self.users.iter().find(|u| u.id == id))
            .flatten()
            .map(|u| Person {
                user: Some(u.id),
                name: u.name.clone(),
                email: u.email.clone(),
            })
    }

    fn role_members(&self, tenant: TenantId, role: &str) -> Option<Vec<UserId>> {
        if tenant != self.tenant {
            return None;
        }
        let members: Vec<_> = self
            .users
            .iter()
            .filter(|u| u.roles.contains(role))
            .map(|u| u.id)
            .collect();
        (self.roles.contains(role) || !members.is_empty()).then_some(members)
    }

    fn manager_of(&self, tenant: TenantId, user: UserId) -> Option<UserId> {
        (tenant == self.tenant)
            .then(|| self.users.iter().find(|u| u.id == user))
            .flatten()
            .and_then(|u| u.manager)
    }

    fn partner_contacts(&self, tenant: TenantId, partner: PartnerId, role: &str) -> Vec<Person> {
        if tenant != self.tenant {
            return Vec::new();
        }
        self.contacts
            .iter()
            .filter(|c| {
                c.partner == partner && (c.role == role || (role == "primary" && c.email.is_some()))
            })
            .map(|c| Person {
                user: None,
                name: c.name.clone(),
                email: c.email.clone(),
            })
            .collect()
    }

    fn user_by_key(&self, tenant: TenantId, key: &str) -> Option<UserId> {
        (tenant == self.tenant)
            .then(|| self.keys.get(key).copied())
            .flatten()
    }

    fn roles(&self, tenant: TenantId) -> BTreeMap<String, Vec<UserId>> {
        if tenant != self.tenant {
            return BTreeMap::new();
        }
        self.roles
            .iter()
            .map(|r| {
                let members = self
                    .users
                    .iter()
                    .filter(|u| u.roles.contains(r))
                    .map(|u| u.id)
                    .collect();
                (r.clone(), members)
            })
            .collect()
    }
}

/// The error for a recipient that cannot be resolved: [`Error::Invalid`] on `recipient`.
fn unresolved(reason: impl Into<String>) -> Error {
    Error::invalid("recipient", reason)
}

/// Resolves a recipient to people, for the records of `trigger` and `views`.
///
/// Errors name what could not be resolved: an unknown role, a trigger without an owner or assignee, a user
/// without a manager.
pub fn resolve(
    to: &Recipient,
    tenant: TenantId,
    views: &Views,
    directory: &dyn Directory,
) -> Result<Vec<ResolvedRecipient>> {
    let person = |u: UserId| -> ResolvedRecipient {
        match directory.user(tenant, u) {
            Some(p) => ResolvedRecipient {
                phone: None,
                user: Some(u),
                name: Some(p.name),
                email: p.email,
            },
            None => ResolvedRecipient {
                phone: None,
                user: Some(u),
                name: None,
                email: None,
            },
        }
    };
    Ok(match to {
        Recipient::Person(u) => vec![person(*u)],
        Recipient::UserKey(k) => {
            let u = directory
                .user_by_key(tenant, k)
                .ok_or_else(|| unresolved(format!("`{to}`: no user has the key `{k}`")))?;
            vec![person(u)]
        }
        Recipient::FirstOf(all) => {
            let mut why = Vec::new();
            for r in all {
                match resolve(r, tenant, views, directory) {
                    Ok(found) if !found.is_empty() => return Ok(found),
                    Ok(_) => why.push(format!("`{r}` is nobody")),
                    Err(e) => why.push(match &e {
                        Error::Invalid { reason, .. } => reason.clone(),
                        other => other.to_string(),
                    }),
                }
            }
            return Err(unresolved(format!(
                "`{to}` reaches nobody: {}",
                why.join("; ")
            )));
        }
        Recipient::Role(r) => directory
            .role_members(tenant, r)
            .ok_or_else(|| {
                let known: Vec<_> = directory.roles(tenant).into_keys().collect();
                unresolved(format!(
                    "unknown role `{r}`; the directory knows: {}",
                    known.join(", ")
                ))
            })?
            .into_iter()
            .map(person)
            .collect(),
        Recipient::Owner => {
            let owner = views.owner().ok_or_else(|| {
                unresolved("`owner`: the lead (or partner, or campaign) has no owner")
            })?;
            vec![person(owner)]
        }
        Recipient::Assignee => {
            let r = views
                .request
                .as_ref()
                .ok_or_else(|| unresolved("`assignee`: the trigger concerns no request"))?;
            vec![person(r.assignee)]
        }
        Recipient::ManagerOf(inner) => {
            let mut out = Vec::new();
            for p in resolve(inner, tenant, views, directory)? {
                let u = p.user.ok_or_else(|| {
                    unresolved(format!("`{to}`: a partner contact has no manager"))
                })?;
                let m = directory.manager_of(tenant, u).ok_or_else(|| {
                    unresolved(format!(
                        "`{to}`: user {} has no manager in the directory",
                        p.label()
                    ))
                })?;
                out.push(person(m));
            }
            out
        }
        Recipient::PartnerContact(role) => {
            let partner = views
                .partner_id()
                .ok_or_else(|| unresolved(format!("`{to}`: the trigger concerns no partner")))?;
            let mut found: Vec<ResolvedRecipient> = directory
                .partner_contacts(tenant, partner, role)
                .into_iter()
                .map(|p| ResolvedRecipient {
                    phone: None,
                    user: None,
                    name: Some(p.name),
                    email: p.email,
                })
                .collect();
            if found.is_empty() {
                if let Some(p) = views.partner.as_ref().filter(|p| p.id == partner) {
                    found = p
                        .contacts
                        .iter()
                        .filter(|c| {
                            c.email.is_some()
                                && (role == "primary" || c.role.as_deref() == Some(role))
                        })
                        .map(|c| ResolvedRecipient {
                            phone: None,
                            user: None,
                            name: Some(c.name.clone()),
                            email: c.email.clone(),
                        })
                        .collect();
                }
            }
            if found.is_empty() {
                return Err(unresolved(format!(
                    "`{to}`: partner {partner} has no contact with role `{role}`"
                )));
            }
            found
        }
        Recipient::Email(e) => vec![ResolvedRecipient {
            phone: None,
            user: None,
            name: None,
            email: Some(e.clone()),
        }],
    })
}

/// Turns one decided action into outbox messages, one per resolved recipient.
///
/// The idempotency key is `<trigger key>/<rule>/<action index>/<recipient>`: the same decision always yields the
/// same keys, so re-deciding (a repeated timer tick, a retried commit) never enqueues a message twice.
pub fn to_outbox(
    trigger: &Trigger,
    views: &Views,
    index: usize,
    decided: &DecidedAction,
    directory: &dyn Directory,
) -> Result<Vec<OutboxMessage>> {
    let tenant = trigger.tenant();
    let at = trigger.at();
    let action = &decided.action;
    let recipients = match action {
        Action::AddTag { .. } | Action::ScheduleFollowUp { .. } => {
            resolve(&Recipient::Owner, tenant, views, directory).unwrap_or_default()
        }
        _ => resolve(&action.recipient(), tenant, views, directory)?,
    };
    let (channel, payload) = match action {
        Action::Notify { subject, body, .. } | Action::Escalate { subject, body, .. } => (
            Channel::InApp,
            Payload {
                subject: subject.clone(),
                body: body.clone(),
                template: None,
                vars: serde_json::Value::Null,
                action: None,
            },
        ),
        Action::SendEmail { template, vars, .. } => {
            // The template's context: built here only, since a notification or a task does not carry it (it was
            // built for every action, serialising the lead and partner for nothing: 8 µs of a stage move at MID).
            let mut all = serde_json::json!({
                "trigger": trigger.name(),
                "lead": views.lead,
                "partner": views.partner,
                "request": views.request,
            });
            // Commerce triggers also give templates their document and campaign.
            if let Some(o) = all.as_object_mut() {
                if let Some(d) = &views.document {
                    o.insert("document".into(), serde_json::json!(d));
                }
                if let Some(c) = &views.campaign {
                    o.insert("campaign".into(), serde_json::json!(c));
                }
            }
            if let (Some(obj), serde_json::Value::Object(given)) = (all.as_object_mut(), vars) {
                for (k, v) in given {
                    obj.insert(k.clone(), v.clone());
                }
            }
            (
                Channel::Email,
                Payload {
                    subject: String::new(),
                    body: String::new(),
                    template: Some(template.clone()),
                    vars: all,
                    action: None,
                },
            )
        }
        other => (
            Channel::Task,
            Payload {
                subject: other.name().to_string(),
                body: String::new(),
                template: None,
                vars: serde_json::json!({
                    "lead": views.lead.as_ref().map(|l| l.id),
                    "request": views.request.as_ref().map(|r| r.id),
                }),
                action: Some(other.clone()),
            },
        ),
    };
    let targets: Vec<Option<ResolvedRecipient>> = if recipients.is_empty() {
        vec![None]
    } else {
        recipients.into_iter().map(Some).collect()
    };
    let mut out = Vec::new();
    for r in targets {
        // An in-app notification for someone who is not a user (a partner contact, an address) goes by e-mail.
        let channel = match &r {
            Some(r) if channel == Channel::InApp && r.user.is_none() && r.email.is_some() => {
                Channel::Email
            }
            _ => channel,
        };
        if channel == Channel::Email && r.as_ref().and_then(|r| r.email.as_ref()).is_none() {
            return Err(unresolved(format!(
                "`{}` resolved to {} who has no e-mail address",
                action.recipient(),
                r.as_ref()
                    .map(|r| r.label())
                    .unwrap_or_else(|| "nobody".into())
            )));
        }
        let who = r
            .as_ref()
            .map(|r| r.key())
            .unwrap_or_else(|| "-".to_string());
        out.push(
            OutboxMessage::pending(
                tenant,
                format!("{}/{}/{}/{}", trigger.key(), decided.rule, index, who),
                decided.rule.clone(),
                channel,
                r.unwrap_or_default(),
                payload.clone(),
                at,
            )
            .about(trigger.subject())
            .for_purpose(match action {
                Action::SendEmail { purpose, .. } => *purpose,
                _ => crate::consent::Purpose::Service,
            }),
        );
    }
    Ok(out)
}
