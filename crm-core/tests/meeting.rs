//! Meetings: times in IANA zones stored in UTC (daylight saving's gaps and repeats refused), invitations as
//! iCalendar parsed back with the `icalendar` crate's parser, replies, reschedules and cancellation.

use chrono::{NaiveDate, NaiveDateTime, Utc};
use crm_core::id::{ContactId, MeetingId, PartnerId, TenantId, UserId};
use crm_core::sales::meeting::{
    self, Attendee, MeetingCommand, MeetingStatus, NewMeeting, Organiser, Participant, Reply, Slot,
};
use icalendar::{Calendar, CalendarComponent, Component, EventLike};

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, mo, d)
        .unwrap()
        .and_hms_opt(h, mi, 0)
        .unwrap()
}

fn attendee(name: &str, email: &str) -> Attendee {
    Attendee {
        who: Participant::Contact {
            partner: PartnerId::new(),
            contact: ContactId::new(),
        },
        name: name.into(),
        email: email.into(),
        reply: Reply::Accepted, // ignored: every attendee starts unanswered
    }
}

fn new_meeting() -> NewMeeting {
    NewMeeting {
        title: "Prezentare ofertă — Șantier".into(),
        lead: None,
        partner: None,
        organiser: Organiser::new(UserId::new(), "Ana Pop", "ana@exemplu.ro"),
        attendees: vec![
            attendee("Ion Ștefan", "ion@client.ro"),
            attendee("Maria", "maria@client.ro"),
        ],
        slot: Slot {
            start: at(2026, 10, 20, 14, 0),
            end: at(2026, 10, 20, 15, 30),
            time_zone: "Europe/Bucharest".into(),
            place: Some("Str. Mureșului 14, Brașov".into()),
            online_link: Some("https://meet.example.ro/abc".into()),
        },
        agenda: Some("1. Oferta\n2. Termene".into()),
    }
}

fn built() -> meeting::Meeting {
    let new = new_meeting();
    new.build(TenantId::new(), MeetingId::new(), Utc::now())
        .unwrap()
}

fn reply(
    m: &meeting::Meeting,
    email: &str,
    answer: Reply,
) -> Result<meeting::Meeting, crm_core::Error> {
    meeting::apply(
        m,
        MeetingCommand::Reply {
            email: email.into(),
            reply: answer,
        },
        Utc::now(),
    )
}

type Spoil = Box<dyn Fn(&mut NewMeeting)>;

fn parse(ics: &str) -> icalendar::Event {
    let cal: Calendar = ics.parse().expect("the invitation parses as iCalendar");
    cal.components
        .into_iter()
        .find_map(|c| match c {
            CalendarComponent::Event(e) => Some(e),
            _ => None,
        })
        .expect("one VEVENT")
}

#[test]
fn an_invitation_parses_back_with_its_fields() {
    let m = built();
    // 14:00 in Bucharest on 20 October 2026 is summer time (UTC+3).
    assert_eq!(m.starts_at().to_rfc3339(), "2026-10-20T11:00:00+00:00");
    let ics = m.to_ics();
    assert!(ics.contains("METHOD:REQUEST"), "{ics}");
    let e = parse(&ics);
    assert_eq!(e.get_uid(), Some(m.uid().as_str()));
    assert_eq!(e.get_sequence(), Some(0));
    assert_eq!(e.get_summary(), Some("Prezentare ofertă — Șantier"));
    assert_eq!(e.get_description(), Some("1. Oferta\n2. Termene"));
    assert_eq!(e.get_location(), Some("Str. Mureșului 14, Brașov"));
    assert_eq!(e.get_url(), Some("https://meet.example.ro/abc"));
    let start = e.get_start().expect("DTSTART");
    assert_eq!(
        start,
        icalendar::DatePerhapsTime::DateTime(icalendar::CalendarDateTime::Utc(m.starts_at()))
    );
    let end = e.get_end().expect("DTEND");
    assert_eq!(
        end,
        icalendar::DatePerhapsTime::DateTime(icalendar::CalendarDateTime::Utc(m.ends_at()))
    );
    let attendees: Vec<String> = e
        .multi_properties()
        .get("ATTENDEE")
        .unwrap()
        .iter()
        .map(|p| p.value().to_string())
        .collect();
    assert_eq!(
        attendees,
        vec!["mailto:ion@client.ro", "mailto:maria@client.ro"]
    );
    assert!(ics.contains("PARTSTAT=NEEDS-ACTION"), "{ics}");
    assert!(e
        .property_value("ORGANIZER")
        .unwrap()
        .ends_with("ana@exemplu.ro"));
}

#[test]
fn a_reschedule_raises_the_sequence_and_a_cancel_sends_method_cancel() {
    let m = built();
    let replied = reply(&m, " ION@client.ro ", Reply::Accepted).unwrap();
    assert_eq!(replied.attendees()[0].reply, Reply::Accepted);
    assert_eq!(
        replied.sequence(),
        0,
        "a reply is not an update of the invitation"
    );
    let moved = meeting::apply(
        &replied,
        MeetingCommand::Reschedule(Slot {
            start: at(2026, 11, 3, 9, 0),
            end: at(2026, 11, 3, 10, 0),
            ..new_meeting().slot
        }),
        Utc::now(),
    )
    .unwrap();
    // 3 November is winter time (UTC+2); the replies start over.
    assert_eq!(moved.starts_at().to_rfc3339(), "2026-11-03T07:00:00+00:00");
    assert_eq!(moved.attendees()[0].reply, Reply::NeedsAction);
    let e = parse(&moved.to_ics());
    assert_eq!(
        (e.get_uid(), e.get_sequence()),
        (Some(m.uid().as_str()), Some(1))
    );
    let cancelled = meeting::apply(&moved, MeetingCommand::Cancel, Utc::now()).unwrap();
    let ics = cancelled.to_ics();
    assert!(
        ics.contains("METHOD:CANCEL") && ics.contains("STATUS:CANCELLED"),
        "{ics}"
    );
    assert_eq!(parse(&ics).get_sequence(), Some(2));
    // A reply to a cancelled meeting is refused.
    let late = reply(&cancelled, "ion@client.ro", Reply::Accepted);
    assert_eq!(late.unwrap_err().field(), Some("status"));
    assert_eq!(cancelled.status(), MeetingStatus::Cancelled);
}

#[test]
fn bad_meetings_name_their_field() {
    let cases: Vec<(Spoil, &str)> = vec![
        (
            Box::new(|m| m.slot.time_zone = "Europe/Atlantis".into()),
            "time_zone",
        ),
        (Box::new(|m| m.slot.end = m.slot.start), "end"),
        (Box::new(|m| m.slot.end = at(2026, 10, 19, 9, 0)), "end"),
        (Box::new(|m| m.slot.end = at(2026, 12, 20, 9, 0)), "end"),
        // 29 March 2026, 03:30 does not exist in Bucharest; 25 October 03:30 happens twice.
        (Box::new(|m| m.slot.start = at(2026, 3, 29, 3, 30)), "start"),
        (
            Box::new(|m| {
                m.slot.start = at(2026, 10, 25, 3, 30);
                m.slot.end = at(2026, 10, 25, 5, 0)
            }),
            "start",
        ),
        (Box::new(|m| m.slot.start = at(1800, 1, 1, 9, 0)), "start"),
        (Box::new(|m| m.title = "  ".into()), "title"),
        (
            Box::new(|m| m.organiser.email = "ana".into()),
            "organiser.email",
        ),
        (
            Box::new(|m| m.attendees[1].email = "ION@client.ro".into()),
            "attendees[1].email",
        ),
        (
            Box::new(|m| m.attendees[0].email = "not an address".into()),
            "attendees[0].email",
        ),
        (
            Box::new(|m| m.slot.online_link = Some("javascript:alert(1)".into())),
            "online_link",
        ),
    ];
    for (i, (spoil, field)) in cases.into_iter().enumerate() {
        let mut m = new_meeting();
        spoil(&mut m);
        let err = m
            .build(TenantId::new(), MeetingId::new(), Utc::now())
            .unwrap_err();
        assert_eq!(err.field(), Some(field), "case {i}: {err}");
    }
}

#[test]
fn replies_read_from_partstat_and_only_invited_addresses_reply() {
    assert_eq!(Reply::from_partstat("tentative"), Some(Reply::Tentative));
    assert_eq!(Reply::from_partstat("DELEGATED"), None);
    let m = built();
    let stranger = reply(&m, "eve@x.ro", Reply::Accepted);
    assert_eq!(stranger.unwrap_err().field(), Some("email"));
    let early = meeting::apply(
        &m,
        MeetingCommand::Held {
            outcome: "ok".into(),
        },
        m.starts_at() - chrono::Duration::hours(1),
    );
    assert_eq!(early.unwrap_err().field(), Some("outcome"));
    let held = meeting::apply(
        &m,
        MeetingCommand::Held {
            outcome: "Semnăm luni".into(),
        },
        m.ends_at(),
    )
    .unwrap();
    assert_eq!(
        (held.status(), held.outcome()),
        (MeetingStatus::Held, Some("Semnăm luni"))
    );
}
