//! Partners: customers, vendors, employees and prospects, with their contacts and locations.

use crate::error::{Error, Result};
use crate::id::{ContactId, LocationId, PartnerId, TenantId, UserId};
use crate::money::Money;
use crate::time::Timestamp;
use crate::validate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Whether the partner is an organisation or a natural person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartnerKind {
    /// A company or other organisation.
    Company,
    /// A natural person.
    Person,
}

/// The roles a partner plays (several at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartnerRole {
    /// Buys from the tenant.
    Customer,
    /// Sells to the tenant.
    Vendor,
    /// Works for the tenant.
    Employee,
    /// A potential customer (created with a lead).
    Prospect,
}

/// A contact person of a partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// The contact's id.
    pub id: ContactId,
    /// Full name.
    pub name: String,
    /// Role at the partner ("purchasing", "CEO", …).
    pub role: Option<String>,
    /// E-mail address (syntax-checked).
    pub email: Option<String>,
    /// Phone number (syntax-checked).
    pub phone: Option<String>,
    /// The host's own code for the person, unique among the tenant's contacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ref: Option<String>,
    /// The latest answer per channel and purpose to being contacted
    /// ([`CrmService::record_consent`](crate::service::CrmService::record_consent); the activity log holds them
    /// all). Kept when the contact is edited.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consents: Vec<crate::consent::Consent>,
}

impl Contact {
    /// The contact's consent for `channel` and `purpose`, if it has given one and not withdrawn it.
    pub fn consent(
        &self,
        channel: crate::consent::ConsentChannel,
        purpose: crate::consent::Purpose,
    ) -> Option<&crate::consent::Consent> {
        self.consents
            .iter()
            .find(|c| c.channel == channel && c.purpose == purpose && c.granted)
    }
}

/// A kind of record that names a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactLinkKind {
    /// A lead (its contact).
    Lead,
    /// A meeting (an attendee who is the contact).
    Meeting,
    /// A portal representative (the contact it is).
    Representative,
}

/// A record a contact merge moves from a merged contact to the survivor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactMove {
    /// What it is.
    pub kind: ContactLinkKind,
    /// Its id.
    pub id: uuid::Uuid,
    /// The merged contact it named.
    pub from: ContactId,
    /// Its version: as read, in a plan; after the move, in the journal.
    pub version: u64,
    /// A meeting's attendees that were the merged contact, by position.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attendees: Vec<u32>,
}

/// One merge of a partner's contacts, kept in the partner's document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactMerge {
    /// The merge.
    pub id: crate::id::MergeId,
    /// The contact that stays.
    pub survivor: ContactId,
    /// The contacts as they were: the survivor first, then the merged ones.
    pub before: Vec<Contact>,
    /// The survivor as the merge left it (an undo is refused once it changed).
    pub after: Contact,
    /// The records moved to the survivor, at their versions after the move.
    pub moved: Vec<ContactMove>,
    /// When.
    pub at: Timestamp,
    /// When it was undone, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undone_at: Option<Timestamp>,
}

impl ContactMerge {
    /// The merged contacts' ids.
    pub fn merged(&self) -> impl Iterator<Item = ContactId> + '_ {
        self.before.iter().skip(1).map(|c| c.id)
    }
}

impl Partner {
    /// The contact with `id`, or, for a contact merged into another, the survivor (through any chain of merges
    /// not undone).
    pub fn contact(&self, id: ContactId) -> Option<&Contact> {
        let mut id = id;
        for _ in 0..=self.contact_merges.len() {
            if let Some(c) = self.contacts.iter().find(|c| c.id == id) {
                return Some(c);
            }
            id = (self.contact_merges.iter().rev())
                .find(|m| m.undone_at.is_none() && m.merged().any(|x| x == id))?
                .survivor;
        }
        None
    }
}

/// What a location is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocationKind {
    /// Where invoices go.
    Billing,
    /// Where goods go.
    Delivery,
    /// A site of the partner.
    Site,
}

/// A typed address of a partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// The location's id.
    pub id: LocationId,
    /// What it is used for.
    pub kind: LocationKind,
    /// Street and number.
    pub street: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Region, county or state.
    pub region: Option<String>,
    /// Postal code.
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
}

/// The partner's field of activity: free text plus an optional classification code (NACE, CAEN, SIC, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Industry {
    /// Free-text name, e.g. "Wholesale of hardware".
    pub name: String,
    /// Optional classification code, e.g. "4674".
    pub code: Option<String>,
}

/// Annual turnover as reported for a year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turnover {
    /// The amount.
    pub amount: Money,
    /// The financial year.
    pub year: i32,
}

record! {
    /// A partner of the tenant.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Partner {
        /// The partner's id.
        id: PartnerId,
        /// The tenant it belongs to.
        tenant: TenantId,
        /// Company or person.
        kind: PartnerKind,
        /// Display name.
        name: String => &str = borrow,
        /// Roles (at least one).
        roles: BTreeSet<PartnerRole> => &BTreeSet<PartnerRole> = borrow,
        /// Contact persons.
        contacts: Vec<Contact> => &[Contact] = borrow,
        /// Addresses.
        locations: Vec<Location> => &[Location] = borrow,
        /// Field of activity.
        industry: Option<Industry> => Option<&Industry> = as_ref,
        /// Reported turnover.
        turnover: Option<Turnover>,
        /// Tax or VAT identifier, as given.
        tax_id: Option<String> => Option<&str> = deref,
        /// Web site.
        website: Option<String> => Option<&str> = deref,
        /// The reporting group (customer group). A partner is in at most one, so group totals add up to the whole.
        group: Option<String> => Option<&str> = deref,
        /// The account owner.
        owner: Option<UserId>,
        /// Free tags (lower case).
        tags: BTreeSet<String> => &BTreeSet<String> = borrow,
        /// The host's own code for the partner (its ERP's customer or vendor code), unique in the tenant.
        #[serde(default)]
        host_ref: Option<String> => Option<&str> = deref,
        /// The partner this one was merged into: set, it is a tombstone (no contacts, no duplicate keys) that
        /// [`crate::service::CrmService::partner`] resolves to the survivor.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        merged_into: Option<PartnerId>,
        /// The merges of its contacts, oldest first (undone ones stay, marked): the journal an undo reads, and how
        /// a merged contact's id finds its survivor ([`Partner::contact`]).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        contact_merges: Vec<ContactMerge> => &[ContactMerge] = borrow,
        /// Optimistic-concurrency version, 1 on creation.
        version: u64,
        /// When it was created.
        created_at: Timestamp,
        /// When it last changed.
        updated_at: Timestamp,
    }
}

/// Input for a new contact.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewContact {
    /// Full name (required).
    pub name: String,
    /// Role at the partner.
    pub role: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// The host's own code for the person (at most 64 characters, unique among the tenant's contacts).
    #[serde(default)]
    pub host_ref: Option<String>,
}

impl From<&Contact> for NewContact {
    fn from(c: &Contact) -> Self {
        NewContact {
            name: c.name.clone(),
            role: c.role.clone(),
            email: c.email.clone(),
            phone: c.phone.clone(),
            host_ref: c.host_ref.clone(),
        }
    }
}

impl From<&Location> for NewLocation {
    fn from(l: &Location) -> Self {
        NewLocation {
            kind: l.kind,
            street: l.street.clone(),
            city: l.city.clone(),
            region: l.region.clone(),
            postal_code: l.postal_code.clone(),
            country: l.country.clone(),
        }
    }
}

/// Input for a new location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewLocation {
    /// What it is used for.
    pub kind: LocationKind,
    /// Street and number.
    pub street: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// Postal code.
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
}

/// Input for a new partner. Build it with [`NewPartner::company`] or [`NewPartner::person`] and the `with_*`
/// methods, or as a struct literal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPartner {
    /// Company or person.
    pub kind: PartnerKind,
    /// Display name (required, at most 200 characters).
    pub name: String,
    /// The host's own code for the partner (at most 64 characters, unique in the tenant).
    #[serde(default)]
    pub host_ref: Option<String>,
    /// Roles; empty means prospect.
    pub roles: BTreeSet<PartnerRole>,
    /// Contacts.
    pub contacts: Vec<NewContact>,
    /// Locations.
    pub locations: Vec<NewLocation>,
    /// Field of activity.
    pub industry: Option<Industry>,
    /// Turnover.
    pub turnover: Option<Turnover>,
    /// Tax id.
    pub tax_id: Option<String>,
    /// Web site.
    pub website: Option<String>,
    /// Reporting group.
    pub group: Option<String>,
    /// Account owner.
    pub owner: Option<UserId>,
    /// Tags.
    pub tags: BTreeSet<String>,
}

impl NewPartner {
    /// A company with a name and nothing else yet.
    pub fn company(name: impl Into<String>) -> Self {
        Self::of_kind(PartnerKind::Company, name)
    }

    /// A person with a name and nothing else yet.
    pub fn person(name: impl Into<String>) -> Self {
        Self::of_kind(PartnerKind::Person, name)
    }

    pub(crate) fn of_kind(kind: PartnerKind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
            roles: BTreeSet::new(),
            contacts: Vec::new(),
            locations: Vec::new(),
            industry: None,
            turnover: None,
            tax_id: None,
            website: None,
            group: None,
            owner: None,
            tags: BTreeSet::new(),
            host_ref: None,
        }
    }

    /// Sets the host's own code for the partner.
    pub fn with_host_ref(mut self, host_ref: &str) -> Self {
        self.host_ref = Some(host_ref.into());
        self
    }

    /// Adds a role.
    pub fn with_role(mut self, role: PartnerRole) -> Self {
        self.roles.insert(role);
        self
    }

    /// Adds a contact.
    pub fn with_contact(mut self, name: &str, email: Option<&str>, phone: Option<&str>) -> Self {
        self.contacts.push(NewContact {
            name: name.into(),
            role: None,
            email: email.map(Into::into),
            phone: phone.map(Into::into),
            host_ref: None,
        });
        self
    }

    /// Sets the tax id.
    pub fn with_tax_id(mut self, tax_id: &str) -> Self {
        self.tax_id = Some(tax_id.into());
        self
    }

    /// Sets the account owner.
    pub fn with_owner(mut self, owner: UserId) -> Self {
        self.owner = Some(owner);
        self
    }

    /// Sets the reporting group.
    pub fn with_group(mut self, group: &str) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Adds a location.
    pub fn with_location(mut self, location: NewLocation) -> Self {
        self.locations.push(location);
        self
    }

    /// Sets the industry.
    pub fn with_industry(mut self, name: &str, code: Option<&str>) -> Self {
        self.industry = Some(Industry {
            name: name.into(),
            code: code.map(Into::into),
        });
        self
    }

    /// Validates the input and builds the partner record.
    pub fn build(self, tenant: TenantId, now: Timestamp) -> Result<Partner> {
        let mut roles = self.roles;
        if roles.is_empty() {
            roles.insert(PartnerRole::Prospect);
        }
        let contacts = self
            .contacts
            .into_iter()
            .enumerate()
            .map(|(i, c)| build_contact(i, c, ContactId::new()))
            .collect::<Result<Vec<_>>>()?;
        contact_refs_distinct(&contacts)?;
        let locations = self
            .locations
            .into_iter()
            .enumerate()
            .map(|(i, l)| build_location(i, l, LocationId::new()))
            .collect::<Result<Vec<_>>>()?;
        let partner = Partner {
            id: PartnerId::new(),
            tenant,
            kind: self.kind,
            name: validate::name("name", &self.name)?,
            roles,
            contacts,
            locations,
            industry: build_industry(self.industry)?,
            turnover: build_turnover(self.turnover)?,
            tax_id: validate::optional("tax_id", self.tax_id.as_deref(), 32)?,
            website: validate::optional("website", self.website.as_deref(), 200)?,
            group: validate::optional("group", self.group.as_deref(), validate::MAX_TAG)?,
            owner: self.owner,
            tags: build_tags(self.tags)?,
            host_ref: host_ref(self.host_ref.as_deref())?,
            merged_into: None,
            contact_merges: Vec::new(),
            version: 1,
            created_at: now,
            updated_at: now,
        };
        Ok(partner)
    }
}

/// The most characters of a host reference.
pub const MAX_HOST_REF: usize = 64;

/// A host reference: trimmed, 1 to [`MAX_HOST_REF`] characters, no control characters; empty reads as none.
pub fn host_ref(value: Option<&str>) -> Result<Option<String>> {
    validate::optional("host_ref", value, MAX_HOST_REF)
}

fn build_contact(i: usize, c: NewContact, id: ContactId) -> Result<Contact> {
    let f = |name: &str| format!("contacts[{i}].{name}");
    Ok(Contact {
        id,
        name: validate::name(&f("name"), &c.name)?,
        role: validate::optional(&f("role"), c.role.as_deref(), validate::MAX_NAME)?,
        email: c
            .email
            .as_deref()
            .map(|e| validate::email(&f("email"), e))
            .transpose()?,
        phone: c
            .phone
            .as_deref()
            .map(|p| validate::phone(&f("phone"), p))
            .transpose()?,
        host_ref: validate::optional(&f("host_ref"), c.host_ref.as_deref(), MAX_HOST_REF)?,
        consents: Vec::new(),
    })
}

/// Two contacts of one partner may not share a host reference (it names one person).
fn contact_refs_distinct(contacts: &[Contact]) -> Result<()> {
    for (i, c) in contacts.iter().enumerate() {
        let Some(r) = c.host_ref.as_deref() else {
            continue;
        };
        if let Some(j) = contacts[..i]
            .iter()
            .position(|o| o.host_ref.as_deref() == Some(r))
        {
            return Err(Error::invalid(
                format!("contacts[{i}].host_ref"),
                format!("contacts[{j}] has the same reference `{r}`"),
            ));
        }
    }
    Ok(())
}

fn build_location(i: usize, l: NewLocation, id: LocationId) -> Result<Location> {
    let f = |name: &str| format!("locations[{i}].{name}");
    Ok(Location {
        id,
        kind: l.kind,
        street: validate::optional(&f("street"), l.street.as_deref(), validate::MAX_NAME)?,
        city: validate::optional(&f("city"), l.city.as_deref(), validate::MAX_NAME)?,
        region: validate::optional(&f("region"), l.region.as_deref(), validate::MAX_NAME)?,
        postal_code: validate::optional(&f("postal_code"), l.postal_code.as_deref(), 16)?,
        country: validate::country(&f("country"), &l.country)?,
    })
}

fn build_industry(i: Option<Industry>) -> Result<Option<Industry>> {
    i.map(|i| {
        Ok(Industry {
            name: validate::name("industry.name", &i.name)?,
            code: validate::optional("industry.code", i.code.as_deref(), 16)?,
        })
    })
    .transpose()
}

fn build_turnover(t: Option<Turnover>) -> Result<Option<Turnover>> {
    if let Some(t) = &t {
        if t.amount.is_negative() {
            return Err(Error::invalid("turnover.amount", "must not be negative"));
        }
        if !(1900..=2200).contains(&t.year) {
            return Err(Error::invalid(
                "turnover.year",
                format!("{} is not a plausible year", t.year),
            ));
        }
    }
    Ok(t)
}

pub(crate) fn build_tags(tags: BTreeSet<String>) -> Result<BTreeSet<String>> {
    if tags.len() > 50 {
        return Err(Error::invalid("tags", "at most 50 tags are allowed"));
    }
    tags.iter().map(|t| validate::tag("tags", t)).collect()
}

/// A change to a partner: every `Some` field replaces the current value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerPatch {
    /// New name.
    pub name: Option<String>,
    /// New roles (replaces the set).
    pub roles: Option<BTreeSet<PartnerRole>>,
    /// New contacts (replaces the list; contacts keep their ids by position when their name is unchanged).
    pub contacts: Option<Vec<NewContact>>,
    /// New locations (replaces the list).
    pub locations: Option<Vec<NewLocation>>,
    /// New industry (`Some(None)` clears it).
    pub industry: Option<Option<Industry>>,
    /// New turnover (`Some(None)` clears it).
    pub turnover: Option<Option<Turnover>>,
    /// New tax id (`Some(None)` clears it).
    pub tax_id: Option<Option<String>>,
    /// New reporting group (`Some(None)` clears it).
    pub group: Option<Option<String>>,
    /// New owner (`Some(None)` clears it).
    pub owner: Option<Option<UserId>>,
    /// New tags (replaces the set).
    pub tags: Option<BTreeSet<String>>,
    /// New host reference (`Some(None)` clears it).
    #[serde(default)]
    pub host_ref: Option<Option<String>>,
    /// New web site (`Some(None)` clears it).
    #[serde(default)]
    pub website: Option<Option<String>>,
}

impl Partner {
    /// The patch an imported row makes to this partner: what the row gives replaces what is stored and what it
    /// leaves empty stays (an import never clears a field); roles and tags are added to the stored ones; a contact
    /// of the row updates the stored one with its code, else its e-mail, else its name, and is added otherwise; a
    /// location the partner does not have yet is added. Applying the patch of the row that made the partner
    /// changes nothing, which makes an import repeatable.
    pub fn import_patch(&self, row: NewPartner) -> PartnerPatch {
        let or_keep = |new: Option<String>| new.map(Some);
        let mut contacts: Vec<NewContact> = self.contacts.iter().map(NewContact::from).collect();
        for c in row.contacts {
            let same = |old: &NewContact| {
                let eq = |a: &Option<String>, b: &Option<String>| {
                    a.as_deref()
                        .map(str::trim)
                        .zip(b.as_deref().map(str::trim))
                        .is_some_and(|(a, b)| a.eq_ignore_ascii_case(b))
                };
                if c.host_ref.is_some() || old.host_ref.is_some() {
                    return eq(&old.host_ref, &c.host_ref);
                }
                eq(&old.email, &c.email) || old.name.trim().eq_ignore_ascii_case(c.name.trim())
            };
            match contacts.iter_mut().find(|old| same(old)) {
                Some(old) => {
                    old.name = c.name;
                    old.role = c.role.or(old.role.take());
                    old.email = c.email.or(old.email.take());
                    old.phone = c.phone.or(old.phone.take());
                    old.host_ref = c.host_ref.or(old.host_ref.take());
                }
                None => contacts.push(c),
            }
        }
        let mut locations: Vec<NewLocation> =
            self.locations.iter().map(NewLocation::from).collect();
        let place = |l: &NewLocation| {
            build_location(0, l.clone(), LocationId::from_uuid(uuid::Uuid::nil())).ok()
        };
        for l in row.locations {
            let new = place(&l);
            if new.is_none() || !locations.iter().any(|old| place(old) == new) {
                locations.push(l);
            }
        }
        let union = |mut old: BTreeSet<String>, new: BTreeSet<String>| {
            old.extend(new);
            old
        };
        let mut roles = self.roles.clone();
        roles.extend(row.roles);
        PartnerPatch {
            name: Some(row.name),
            roles: Some(roles),
            contacts: Some(contacts),
            locations: Some(locations),
            industry: row.industry.map(Some),
            turnover: row.turnover.map(Some),
            tax_id: or_keep(row.tax_id),
            group: or_keep(row.group),
            owner: row.owner.map(Some),
            tags: Some(union(self.tags.clone(), row.tags)),
            host_ref: or_keep(row.host_ref),
            website: or_keep(row.website),
        }
    }

    /// Applies a patch, returning the changed record (version bumped) and the names of the fields that changed.
    pub fn patched(
        &self,
        patch: PartnerPatch,
        now: Timestamp,
    ) -> Result<(Partner, Vec<crate::event::FieldChange>)> {
        use crate::event::FieldChange;
        let mut next = self.clone();
        let mut changes = Vec::new();
        if let Some(n) = patch.name {
            next.name = validate::name("name", &n)?;
        }
        if let Some(r) = patch.roles {
            if r.is_empty() {
                return Err(Error::invalid("roles", "a partner needs at least one role"));
            }
            next.roles = r;
        }
        if let Some(cs) = patch.contacts {
            next.contacts = cs
                .into_iter()
                .enumerate()
                .map(|(i, c)| {
                    // A contact keeps its id when the host's code names it, else when its name is unchanged.
                    let code = host_ref(c.host_ref.as_deref()).ok().flatten();
                    let same_code = |old: &&Contact| code.is_some() && old.host_ref == code;
                    let same_name = |old: &&Contact| old.name.eq_ignore_ascii_case(c.name.trim());
                    let old = (self.contacts.iter().find(same_code))
                        .or_else(|| self.contacts.iter().find(same_name));
                    let mut contact = build_contact(i, c, old.map(|o| o.id).unwrap_or_default())?;
                    contact.consents = old.map(|o| o.consents.clone()).unwrap_or_default();
                    Ok(contact)
                })
                .collect::<Result<_>>()?;
            contact_refs_distinct(&next.contacts)?;
        }
        if let Some(ls) = patch.locations {
            next.locations = ls
                .into_iter()
                .enumerate()
                .map(|(i, l)| {
                    // A location keeps its id when an old one has the same address.
                    let built = build_location(i, l, LocationId::new())?;
                    let same = |old: &&Location| {
                        Location {
                            id: old.id,
                            ..built.clone()
                        } == **old
                    };
                    let id = self
                        .locations
                        .iter()
                        .find(same)
                        .map_or(built.id, |old| old.id);
                    Ok(Location { id, ..built })
                })
                .collect::<Result<_>>()?;
        }
        if let Some(i) = patch.industry {
            next.industry = build_industry(i)?;
        }
        if let Some(t) = patch.turnover {
            next.turnover = build_turnover(t)?;
        }
        if let Some(t) = patch.tax_id {
            next.tax_id = validate::optional("tax_id", t.as_deref(), 32)?;
        }
        if let Some(g) = patch.group {
            next.group = validate::optional("group", g.as_deref(), validate::MAX_TAG)?;
        }
        if let Some(w) = patch.website {
            next.website = validate::optional("website", w.as_deref(), 200)?;
        }
        if let Some(o) = patch.owner {
            next.owner = o;
        }
        if let Some(t) = patch.tags {
            next.tags = build_tags(t)?;
        }
        if let Some(r) = patch.host_ref {
            next.host_ref = host_ref(r.as_deref())?;
        }
        macro_rules! diff {
            ($($f:ident),*) => {$(
                if self.$f != next.$f {
                    changes.push(FieldChange::new(stringify!($f), &self.$f, &next.$f));
                }
            )*};
        }
        diff!(
            name, roles, contacts, locations, industry, turnover, tax_id, website, group, owner,
            tags, host_ref
        );
        if !changes.is_empty() {
            next.version += 1;
            next.updated_at = now;
        }
        Ok((next, changes))
    }

    /// Every e-mail address of the partner's contacts.
    pub fn emails(&self) -> impl Iterator<Item = &str> {
        self.contacts.iter().filter_map(|c| c.email.as_deref())
    }

    /// Whether the contact belongs to this partner.
    pub fn has_contact(&self, id: ContactId) -> bool {
        self.contacts.iter().any(|c| c.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn bad_contact_email_names_the_path() {
        let e = NewPartner::company("Acme")
            .with_contact("Ana", Some("ana@acme.ro"), None)
            .with_contact("Bob", Some("bob-at-acme"), None)
            .build(TenantId::new(), Utc::now())
            .unwrap_err();
        assert_eq!(e.field(), Some("contacts[1].email"));
    }

    #[test]
    fn default_role_is_prospect() {
        let p = NewPartner::company("Acme")
            .build(TenantId::new(), Utc::now())
            .unwrap();
        assert!(p.roles.contains(&PartnerRole::Prospect));
        assert_eq!(p.version, 1);
    }

    #[test]
    fn patch_reports_changes_and_bumps_version() {
        let p = NewPartner::company("Acme")
            .build(TenantId::new(), Utc::now())
            .unwrap();
        let (q, changes) = p
            .patched(
                PartnerPatch {
                    name: Some("Acme SRL".into()),
                    ..Default::default()
                },
                Utc::now(),
            )
            .unwrap();
        assert_eq!(q.version, 2);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].field, "name");
        let (r, none) = q.patched(PartnerPatch::default(), Utc::now()).unwrap();
        assert!(none.is_empty());
        assert_eq!(r.version, 2);
    }
}
