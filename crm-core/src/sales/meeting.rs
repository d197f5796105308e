//! Meetings (the seed's "întâlniri"): who meets whom, when (in an IANA time zone, stored in UTC), where, and the
//! invitations as iCalendar (RFC 5545 with iTIP methods, RFC 5546): `METHOD:REQUEST` with a stable UID, updates
//! with an increasing `SEQUENCE`, `METHOD:CANCEL` on cancellation. Attendees' replies are recorded through
//! [`MeetingCommand::Reply`], which a host calls when it parses a reply.

use crate::error::{Error, Result};
use crate::id::{ContactId, LeadId, MeetingId, PartnerId, TenantId, UserId};
pub use crate::kinds::{MeetingStatus, Reply};
use crate::time::{check_business_date, Timestamp};
use crate::validate;
use chrono::{NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use icalendar::{Calendar, Component, EventLike, Property};
use serde::{Deserialize, Serialize};

/// The longest meeting accepted.
pub const MAX_MEETING_DAYS: i64 = 14;
/// The most attendees a meeting may have.
pub const MAX_ATTENDEES: usize = 200;

/// Who an attendee is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Participant {
    /// A user of the host.
    User {
        /// The user.
        id: UserId,
    },
    /// A contact of a partner.
    Contact {
        /// The partner.
        partner: PartnerId,
        /// The contact.
        contact: ContactId,
    },
}

/// An attendee: who, the name and address the invitation goes to, and their reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attendee {
    /// Who.
    pub who: Participant,
    /// The name printed in the invitation.
    pub name: String,
    /// The e-mail address the invitation goes to (unique within a meeting).
    pub email: String,
    /// Their reply (`NeedsAction` until they answer, and again after the meeting moves).
    pub reply: Reply,
}

/// Who organises a meeting: a user, with the name and address the invitation's `ORGANIZER` names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organiser {
    /// The user.
    pub id: UserId,
    /// The name.
    pub name: String,
    /// The e-mail address replies go to.
    pub email: String,
}

impl Organiser {
    /// An organiser.
    pub fn new(id: UserId, name: &str, email: &str) -> Self {
        Self {
            id,
            name: name.into(),
            email: email.into(),
        }
    }
}

/// When and where: the part of a meeting a reschedule changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// The start, in local time of `time_zone`.
    pub start: NaiveDateTime,
    /// The end, in local time of `time_zone` (after the start, at most [`MAX_MEETING_DAYS`] later).
    pub end: NaiveDateTime,
    /// The IANA time zone (`Europe/Bucharest`).
    pub time_zone: String,
    /// The place.
    pub place: Option<String>,
    /// The online link (`https://…`).
    pub online_link: Option<String>,
}

impl Slot {
    /// A slot from `start` to `end`, local times of `time_zone`, with no place or link.
    pub fn new(start: NaiveDateTime, end: NaiveDateTime, time_zone: &str) -> Self {
        Self {
            start,
            end,
            time_zone: time_zone.into(),
            place: None,
            online_link: None,
        }
    }

    /// The same slot at `place`.
    pub fn at(mut self, place: &str) -> Self {
        self.place = Some(place.into());
        self
    }
}

/// Input for a new meeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMeeting {
    /// The title.
    pub title: String,
    /// The lead it is about.
    pub lead: Option<LeadId>,
    /// The partner it is with.
    pub partner: Option<PartnerId>,
    /// The organiser (the invitation's `ORGANIZER`).
    pub organiser: Organiser,
    /// The attendees (their replies are ignored: every one starts at `NeedsAction`).
    pub attendees: Vec<Attendee>,
    /// When and where.
    pub slot: Slot,
    /// The agenda.
    pub agenda: Option<String>,
}

record! {
    /// A meeting.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Meeting {
        /// Its id; the invitation's UID is derived from it.
        id: MeetingId,
        /// The tenant.
        tenant: TenantId,
        /// The title.
        title: String => &str = borrow,
        /// The lead it is about.
        lead: Option<LeadId>,
        /// The partner it is with.
        partner: Option<PartnerId>,
        /// The organiser.
        organiser: Organiser => &Organiser = borrow,
        /// The attendees and their replies.
        attendees: Vec<Attendee> => &[Attendee] = borrow,
        /// The start, in UTC.
        starts_at: Timestamp,
        /// The end, in UTC.
        ends_at: Timestamp,
        /// The IANA time zone the times were given in.
        time_zone: String => &str = borrow,
        /// The place.
        place: Option<String> => Option<&str> = deref,
        /// The online link.
        online_link: Option<String> => Option<&str> = deref,
        /// The agenda.
        agenda: Option<String> => Option<&str> = deref,
        /// The notes taken afterwards.
        outcome: Option<String> => Option<&str> = deref,
        /// Scheduled, held or cancelled.
        status: MeetingStatus,
        /// The iCalendar `SEQUENCE`: 0, then + 1 for each reschedule or cancellation.
        sequence: u32,
        /// Optimistic-concurrency version.
        version: u64,
        /// When it was made.
        created_at: Timestamp,
        /// When it last changed.
        updated_at: Timestamp,
    }
}

/// The UTC instants of a slot, checked.
fn instants(slot: &Slot) -> Result<(Timestamp, Timestamp, String)> {
    let zone: Tz = slot.time_zone.trim().parse().map_err(|_| {
        Error::invalid(
            "time_zone",
            format!("`{}` is not an IANA time zone", slot.time_zone),
        )
    })?;
    let utc = |field: &str, local: NaiveDateTime| -> Result<Timestamp> {
        check_business_date(field, local.date())?;
        match zone.from_local_datetime(&local) {
            chrono::LocalResult::Single(t) => Ok(t.with_timezone(&chrono::Utc)),
            chrono::LocalResult::Ambiguous(..) => Err(Error::invalid(
                field,
                format!(
                    "{local} happens twice in {zone} (the clocks go back); give the other hour"
                ),
            )),
            chrono::LocalResult::None => Err(Error::invalid(
                field,
                format!("{local} does not exist in {zone} (the clocks go forward)"),
            )),
        }
    };
    let (start, end) = (utc("start", slot.start)?, utc("end", slot.end)?);
    if end <= start {
        return Err(Error::invalid(
            "end",
            format!("{} is not after the start {}", slot.end, slot.start),
        ));
    }
    if end - start > chrono::Duration::days(MAX_MEETING_DAYS) {
        return Err(Error::invalid(
            "end",
            format!("a meeting lasts at most {MAX_MEETING_DAYS} days"),
        ));
    }
    Ok((start, end, zone.name().to_string()))
}

fn link(value: Option<&str>) -> Result<Option<String>> {
    let link = validate::optional("online_link", value, 2_000)?;
    match &link {
        Some(l) if !(l.starts_with("https://") || l.starts_with("http://")) => Err(Error::invalid(
            "online_link",
            format!("`{l}` is not an http(s) link"),
        )),
        _ => Ok(link),
    }
}

fn checked_attendees(attendees: &[Attendee]) -> Result<Vec<Attendee>> {
    if attendees.len() > MAX_ATTENDEES {
        return Err(Error::invalid(
            "attendees",
            format!("at most {MAX_ATTENDEES} attendees"),
        ));
    }
    let mut out: Vec<Attendee> = Vec::with_capacity(attendees.len());
    for (i, a) in attendees.iter().enumerate() {
        let email = validate::email(&format!("attendees[{i}].email"), &a.email)?;
        if out.iter().any(|o| o.email.eq_ignore_ascii_case(&email)) {
            return Err(Error::invalid(
                format!("attendees[{i}].email"),
                format!("{email} is invited twice"),
            ));
        }
        out.push(Attendee {
            who: a.who,
            name: validate::name(&format!("attendees[{i}].name"), &a.name)?,
            email,
            reply: Reply::NeedsAction,
        });
    }
    Ok(out)
}

impl NewMeeting {
    /// Validates the meeting and converts its times to UTC.
    ///
    /// ```
    /// use crm_core::sales::{NewMeeting, Organiser, Slot};
    /// use crm_core::id::{MeetingId, TenantId, UserId};
    /// use chrono::{NaiveDate, Utc};
    /// let at = |h, m| NaiveDate::from_ymd_opt(2026, 3, 29).unwrap().and_hms_opt(h, m, 0).unwrap();
    /// let mut new = NewMeeting {
    ///     title: "Demo".into(), lead: None, partner: None, organiser: Organiser::new(UserId::new(), "Ana", "ana@example.ro"), attendees: vec![],
    ///     slot: Slot { start: at(10, 0), end: at(11, 0), time_zone: "Europe/Bucharest".into(), place: None, online_link: None },
    ///     agenda: None,
    /// };
    /// let m = new.clone().build(TenantId::new(), MeetingId::new(), Utc::now()).unwrap();
    /// assert_eq!(m.starts_at().to_rfc3339(), "2026-03-29T07:00:00+00:00"); // summer time began at 03:00
    /// new.slot.start = at(3, 30); // 03:00–04:00 does not exist that night in Bucharest
    /// assert_eq!(new.clone().build(TenantId::new(), MeetingId::new(), Utc::now()).unwrap_err().field(), Some("start"));
    /// ```
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field: an empty or long `title` or `organiser.name`, `organiser.email` or `attendees[i].email` not
    /// an address (or an address invited twice), an unknown `time_zone`, a `start` or `end` that does not exist or
    /// happens twice in that zone (daylight saving), outside the business calendar, an `end` not after the start or
    /// more than [`MAX_MEETING_DAYS`] later, an `online_link` that is not http(s), too many attendees.
    pub fn build(self, tenant: TenantId, id: MeetingId, now: Timestamp) -> Result<Meeting> {
        let (starts_at, ends_at, time_zone) = instants(&self.slot)?;
        Ok(Meeting {
            id,
            tenant,
            title: validate::name("title", &self.title)?,
            lead: self.lead,
            partner: self.partner,
            organiser: Organiser {
                id: self.organiser.id,
                name: validate::name("organiser.name", &self.organiser.name)?,
                email: validate::email("organiser.email", &self.organiser.email)?,
            },
            attendees: checked_attendees(&self.attendees)?,
            starts_at,
            ends_at,
            time_zone,
            place: validate::optional("place", self.slot.place.as_deref(), validate::MAX_NAME)?,
            online_link: link(self.slot.online_link.as_deref())?,
            agenda: validate::optional("agenda", self.agenda.as_deref(), validate::MAX_TEXT)?,
            outcome: None,
            status: MeetingStatus::Scheduled,
            sequence: 0,
            version: 1,
            created_at: now,
            updated_at: now,
        })
    }
}

/// What can happen to a meeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum MeetingCommand {
    /// Move it (or change its place or link): `SEQUENCE` + 1, every reply back to `NeedsAction`.
    Reschedule(Slot),
    /// Cancel it: `SEQUENCE` + 1, a `METHOD:CANCEL` goes out.
    Cancel,
    /// An attendee's reply, as the host parsed it from their answer to the invitation.
    Reply {
        /// The attendee's address.
        email: String,
        /// Their answer.
        reply: Reply,
    },
    /// It took place: the notes taken.
    Held {
        /// The outcome notes.
        outcome: String,
    },
}

/// Applies `cmd` at `now`: the new state (version + 1).
///
/// # Errors
/// [`Error::Invalid`] on `status` when the meeting is cancelled or held (a reply to a cancelled meeting, moving a
/// held one), on `email` when the address is not an attendee, on `outcome` when the meeting has not started yet,
/// and on the slot's fields as for [`NewMeeting::build`].
pub fn apply(m: &Meeting, cmd: MeetingCommand, now: Timestamp) -> Result<Meeting> {
    if m.status != MeetingStatus::Scheduled {
        return Err(Error::invalid(
            "status",
            format!("meeting `{}` is {}", m.title, m.status.as_str()),
        ));
    }
    let mut next = m.clone();
    match cmd {
        MeetingCommand::Reschedule(slot) => {
            let (starts_at, ends_at, zone) = instants(&slot)?;
            next.starts_at = starts_at;
            next.ends_at = ends_at;
            next.time_zone = zone;
            next.place = validate::optional("place", slot.place.as_deref(), validate::MAX_NAME)?;
            next.online_link = link(slot.online_link.as_deref())?;
            next.sequence = m.sequence.saturating_add(1);
            for a in &mut next.attendees {
                a.reply = Reply::NeedsAction;
            }
        }
        MeetingCommand::Cancel => {
            next.status = MeetingStatus::Cancelled;
            next.sequence = m.sequence.saturating_add(1);
        }
        MeetingCommand::Reply { email, reply } => {
            let a = next
                .attendees
                .iter_mut()
                .find(|a| a.email.eq_ignore_ascii_case(email.trim()))
                .ok_or_else(|| {
                    Error::invalid("email", format!("{email} is not invited to this meeting"))
                })?;
            a.reply = reply;
        }
        MeetingCommand::Held { outcome } => {
            if now < m.starts_at {
                return Err(Error::invalid("outcome", "the meeting has not started yet"));
            }
            next.outcome = Some(validate::bounded(
                "outcome",
                &outcome,
                validate::MAX_TEXT,
                true,
            )?);
            next.status = MeetingStatus::Held;
        }
    }
    next.version = m.version + 1;
    next.updated_at = now;
    Ok(next)
}

impl Meeting {
    /// The users whose agenda holds the meeting: the organiser, then the attendees who are users (each once).
    pub fn people(&self) -> Vec<UserId> {
        let mut out = vec![self.organiser.id];
        for a in &self.attendees {
            if let Participant::User { id } = a.who {
                if !out.contains(&id) {
                    out.push(id);
                }
            }
        }
        out
    }

    /// The invitation's UID: stable for the meeting's whole life, so calendars update the same entry.
    pub fn uid(&self) -> String {
        format!("{}@crm-engine", self.id)
    }

    /// The iCalendar object a calendar client imports: `METHOD:REQUEST` while scheduled (or held),
    /// `METHOD:CANCEL` once cancelled; times in UTC; every attendee with `RSVP=TRUE` and their `PARTSTAT`.
    ///
    /// ```
    /// # use crm_core::sales::{NewMeeting, Organiser, Slot};
    /// # use crm_core::id::{MeetingId, TenantId, UserId};
    /// # use chrono::{NaiveDate, Utc};
    /// # let at = |h| NaiveDate::from_ymd_opt(2026, 5, 4).unwrap().and_hms_opt(h, 0, 0).unwrap();
    /// # let m = NewMeeting { title: "Demo".into(), lead: None, partner: None, organiser: Organiser::new(UserId::new(), "Ana", "ana@example.ro"), attendees: vec![],
    /// #     slot: Slot { start: at(10), end: at(11), time_zone: "Europe/Bucharest".into(), place: None, online_link: None },
    /// #     agenda: None }.build(TenantId::new(), MeetingId::new(), Utc::now()).unwrap();
    /// let ics = m.to_ics();
    /// assert!(ics.contains("METHOD:REQUEST") && ics.contains("DTSTART:20260504T070000Z"));
    /// ```
    pub fn to_ics(&self) -> String {
        let cancelled = self.status == MeetingStatus::Cancelled;
        let mut event = icalendar::Event::new();
        event
            .uid(&self.uid())
            .sequence(self.sequence)
            .summary(&self.title)
            .timestamp(self.updated_at)
            .starts(self.starts_at)
            .ends(self.ends_at)
            .status(if cancelled {
                icalendar::EventStatus::Cancelled
            } else {
                icalendar::EventStatus::Confirmed
            });
        if let Some(agenda) = &self.agenda {
            event.description(agenda);
        }
        match (&self.place, &self.online_link) {
            (Some(p), _) => {
                event.location(p);
            }
            (None, Some(l)) => {
                event.location(l);
            }
            (None, None) => {}
        }
        if let Some(l) = &self.online_link {
            event.url(l);
        }
        let mut organizer = Property::new("ORGANIZER", format!("mailto:{}", self.organiser.email));
        organizer.add_parameter("CN", &self.organiser.name);
        event.append_property(organizer);
        for a in &self.attendees {
            let mut p = Property::new("ATTENDEE", format!("mailto:{}", a.email));
            p.add_parameter("CN", &a.name)
                .add_parameter("ROLE", "REQ-PARTICIPANT")
                .add_parameter("PARTSTAT", a.reply.partstat())
                .add_parameter("RSVP", "TRUE");
            event.append_multi_property(p);
        }
        let mut cal = Calendar::new();
        cal.append_property(Property::new(
            "METHOD",
            if cancelled { "CANCEL" } else { "REQUEST" },
        ));
        cal.push(event.done());
        cal.done().to_string()
    }
}
