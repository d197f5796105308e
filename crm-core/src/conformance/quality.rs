//! Data-quality checks: the host's references on leads and contacts (partners' are in `checks`).

use super::checks::World;
use crate::error::Error;
use crate::lead::{LeadCommand, LeadPartner, LeadPatch, NewLead};
use crate::partner::{LocationKind, NewContact, NewLocation, NewPartner, Partner, PartnerPatch};
use crate::service::{ContactRow, ImportMode, ImportRow, Imported, RowOutcome};
use crate::store::{ChangeSet, Store, StoreExt, Write};
use crate::time::Clock;
use std::sync::Arc;

/// A contact named `name` with the host's code `code`.
fn person(name: &str, code: Option<&str>) -> NewContact {
    NewContact {
        name: name.into(),
        host_ref: code.map(Into::into),
        ..NewContact::default()
    }
}

/// A company `name` with these contacts.
async fn company(w: &World, name: &str, contacts: Vec<NewContact>) -> Result<Partner, Error> {
    let mut new = NewPartner::company(name);
    new.contacts = contacts;
    w.crm.create_partner(&w.ctx, new).await.map(|e| e.record)
}

/// Whether `e` is the store's unique-index refusal of an `entity`.
fn refused_by_index(e: &Error, entity: &str) -> bool {
    matches!(e, Error::AlreadyExists { entity: got, .. } if *got == entity)
}

/// Commits `racer` straight to the store, past the service's check of its codes: the store's unique index refuses
/// it as an existing `entity`, and nothing of it is written.
pub(super) async fn race_partner(
    w: &World,
    store: &Arc<dyn Store>,
    racer: NewPartner,
    entity: &str,
) {
    let racer = racer.build(w.tenant, w.clock.now()).expect("valid");
    let keys = crate::dedupe::keys_of(&racer);
    let insert = Write::InsertPartner {
        partner: racer.clone(),
        keys,
    };
    let raced = store
        .commit(w.tenant, ChangeSet::from_iter([insert]))
        .await
        .unwrap_err();
    assert!(refused_by_index(&raced, entity), "{raced:?}");
    let read = store.partner(w.tenant, racer.id).await;
    assert!(matches!(read, Err(Error::NotFound { .. })), "{read:?}");
}

/// Host references on leads and contacts: found by the code, unique in the tenant (refused by field in the
/// service, by the store's unique index when writes race), free in another tenant, which does not see them;
/// changing or clearing a code moves the lookup; a contact keeps its id when the code names it though its name
/// changed; two contacts of one partner may not share a code.
pub async fn check_lead_and_contact_host_refs(store: &Arc<dyn Store>) {
    let w = World::new(store).await;
    let t = w.tenant;
    // Contacts.
    let acme = company(
        &w,
        "Acme SRL",
        vec![person("Ana Pop", Some(" P-1 ")), person("Ion", None)],
    )
    .await
    .expect("acme");
    let (found, ana) = w.crm.contact_by_ref(t, "P-1").await.expect("by ref");
    assert_eq!((found.id, ana.name.as_str()), (acme.id, "Ana Pop"));
    assert_eq!(ana.host_ref.as_deref(), Some("P-1"), "trimmed");
    let taken = company(&w, "Globex", vec![person("Ana", Some("P-1"))])
        .await
        .unwrap_err();
    assert_eq!(taken.field(), Some("contacts[0].host_ref"), "{taken:?}");
    let twice = company(
        &w,
        "Twice",
        vec![person("A", Some("P-9")), person("B", Some("P-9"))],
    )
    .await
    .unwrap_err();
    assert_eq!(twice.field(), Some("contacts[1].host_ref"), "{twice:?}");
    assert!(matches!(
        w.crm.contact_by_ref(t, "P-9").await,
        Err(Error::NotFound { .. })
    ));
    // Racing past the service's check, the store's unique index refuses the second partner.
    let mut racer = NewPartner::company("Racer SRL");
    racer.contacts.push(person("R", Some("P-1")));
    race_partner(&w, store, racer, "contact").await;
    // Renamed but named by the code: the same contact; the code moves with a change; a removed contact frees it.
    let renamed = PartnerPatch {
        contacts: Some(vec![
            person("Ion", None),
            person("Ana Popescu", Some("P-1")),
        ]),
        ..PartnerPatch::default()
    };
    let acme = w
        .crm
        .update_partner(&w.ctx, acme.id, acme.version, renamed)
        .await
        .expect("renamed")
        .record;
    let (_, again) = w.crm.contact_by_ref(t, "P-1").await.expect("still");
    assert_eq!((again.id, again.name.as_str()), (ana.id, "Ana Popescu"));
    let moved = PartnerPatch {
        contacts: Some(vec![person("Ana Popescu", Some("P-2"))]),
        ..PartnerPatch::default()
    };
    let acme = w
        .crm
        .update_partner(&w.ctx, acme.id, acme.version, moved)
        .await
        .expect("moved")
        .record;
    assert!(matches!(
        w.crm.contact_by_ref(t, "P-1").await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        w.crm.contact_by_ref(t, "P-2").await.expect("new code").1.id,
        ana.id
    );
    let globex = company(&w, "Globex", vec![person("Ana", Some("P-1"))])
        .await
        .expect("P-1 is free again");
    let removed = PartnerPatch {
        contacts: Some(Vec::new()),
        ..PartnerPatch::default()
    };
    w.crm
        .update_partner(&w.ctx, acme.id, acme.version, removed)
        .await
        .expect("removed");
    assert!(matches!(
        w.crm.contact_by_ref(t, "P-2").await,
        Err(Error::NotFound { .. })
    ));
    // Leads.
    let deal = |code: &str| NewLead::for_partner(globex.id, "Deal").with_host_ref(code);
    let lead = w
        .crm
        .enter_lead(&w.ctx, deal("OPP-1"))
        .await
        .expect("lead")
        .record;
    assert_eq!(w.crm.lead_by_ref(t, "OPP-1").await.expect("by ref"), lead);
    let dup = w.crm.enter_lead(&w.ctx, deal("OPP-1")).await.unwrap_err();
    assert_eq!(dup.field(), Some("host_ref"), "{dup:?}");
    let pipeline = w.pipeline.clone();
    let (racer, _) = deal("OPP-1")
        .build(t, globex.id, &pipeline, w.clock.now())
        .expect("valid");
    let raced = store
        .commit(t, ChangeSet::from_iter([Write::InsertLead(racer.clone())]))
        .await
        .unwrap_err();
    assert!(
        refused_by_index(&raced, "lead") || refused_by_index(&raced, "record"),
        "{raced:?}"
    );
    assert!(matches!(
        store.lead(t, racer.id).await,
        Err(Error::NotFound { .. })
    ));
    let second = w
        .crm
        .enter_lead(&w.ctx, deal("OPP-2"))
        .await
        .expect("second")
        .record;
    let recode = |code: Option<&str>| {
        LeadCommand::Update(LeadPatch {
            host_ref: Some(code.map(Into::into)),
            ..LeadPatch::default()
        })
    };
    let clash = w
        .crm
        .transition(&w.ctx, second.id, second.version, recode(Some("OPP-1")))
        .await
        .unwrap_err();
    assert_eq!(clash.field(), Some("host_ref"), "{clash:?}");
    let lead = w
        .crm
        .transition(&w.ctx, lead.id, lead.version, recode(Some("OPP-3")))
        .await
        .expect("recoded")
        .record;
    assert!(matches!(
        w.crm.lead_by_ref(t, "OPP-1").await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        w.crm.lead_by_ref(t, "OPP-3").await.expect("new code").id,
        lead.id
    );
    let lead = w
        .crm
        .transition(&w.ctx, lead.id, lead.version, recode(None))
        .await
        .expect("cleared")
        .record;
    assert_eq!(lead.host_ref, None);
    assert!(matches!(
        w.crm.lead_by_ref(t, "OPP-3").await,
        Err(Error::NotFound { .. })
    ));
    // Another tenant: the codes are free there and ours are not seen.
    let other = World::new(store).await;
    assert!(matches!(
        other.crm.lead_by_ref(other.tenant, "OPP-2").await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        other.crm.contact_by_ref(other.tenant, "P-1").await,
        Err(Error::NotFound { .. })
    ));
    let theirs = company(&other, "Theirs", vec![person("X", Some("P-1"))])
        .await
        .expect("free there");
    let their_deal = NewLead::for_partner(theirs.id, "Deal").with_host_ref("OPP-2");
    other
        .crm
        .enter_lead(&other.ctx, their_deal)
        .await
        .expect("free there");
    assert_eq!(
        w.crm.contact_by_ref(t, "P-1").await.expect("ours").0.id,
        globex.id
    );
    assert_eq!(
        w.crm.lead_by_ref(t, "OPP-2").await.expect("ours").id,
        second.id
    );
    // Many codes at once (an import batch's read): partners by their code or their contacts' codes.
    let coded = NewPartner::company("Coded").with_host_ref("C-77");
    let coded = w
        .crm
        .create_partner(&w.ctx, coded)
        .await
        .expect("coded")
        .record;
    let refs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (codes, contact_codes) = (refs(&["C-77", "C-404"]), refs(&["P-1", "P-404"]));
    let by_refs = store.partners_by_refs(t, &codes, &contact_codes).await;
    let mut found: Vec<_> = by_refs
        .expect("by refs")
        .into_iter()
        .map(|p| p.id)
        .collect();
    found.sort();
    let mut expected = vec![globex.id, coded.id];
    expected.sort();
    assert_eq!(found, expected);
    assert!(store
        .partners_by_refs(t, &[], &[])
        .await
        .expect("none")
        .is_empty());
    let theirs = other
        .crm
        .store()
        .partners_by_refs(other.tenant, &codes, &[])
        .await;
    assert!(theirs.expect("other tenant").is_empty());
    let many = vec!["x".to_string(); 1001];
    let e = store.partners_by_refs(t, &many, &[]).await.unwrap_err();
    assert_eq!(e.field(), Some("partners"), "{e:?}");
    let e = store.partners_by_refs(t, &[], &many).await.unwrap_err();
    assert_eq!(e.field(), Some("contacts"), "{e:?}");
    // Bad codes, by field.
    let long = "x".repeat(crate::partner::MAX_HOST_REF + 1);
    for bad in [long.as_str(), "a\u{0}b"] {
        let e = w.crm.enter_lead(&w.ctx, deal(bad)).await.unwrap_err();
        assert_eq!(e.field(), Some("host_ref"), "{bad:?}");
        let e = company(&w, "Bad", vec![person("B", Some(bad))])
            .await
            .unwrap_err();
        assert_eq!(e.field(), Some("contacts[0].host_ref"), "{bad:?}");
        assert_eq!(
            w.crm.lead_by_ref(t, bad).await.unwrap_err().field(),
            Some("host_ref")
        );
        assert_eq!(
            w.crm.contact_by_ref(t, bad).await.unwrap_err().field(),
            Some("host_ref")
        );
    }
}

/// `n` rows from line 2 on.
fn rows<T>(records: Vec<T>) -> Vec<ImportRow<T>> {
    let line = |i: usize| i as u64 + 2;
    records
        .into_iter()
        .enumerate()
        .map(|(i, record)| ImportRow {
            line: line(i),
            record,
        })
        .collect()
}

/// How many rows came out each way: (created, updated, unchanged, failed).
fn tally<I>(done: &[Imported<I>]) -> (usize, usize, usize, usize) {
    let count = |f: fn(&RowOutcome<I>) -> bool| done.iter().filter(|d| f(&d.outcome)).count();
    (
        count(|o| matches!(o, RowOutcome::Created(_))),
        count(|o| matches!(o, RowOutcome::Updated(..))),
        count(|o| matches!(o, RowOutcome::Unchanged(_))),
        count(|o| matches!(o, RowOutcome::Failed(_))),
    )
}

/// The error of a failed row.
fn failure<I: std::fmt::Debug>(done: &Imported<I>) -> &Error {
    match &done.outcome {
        RowOutcome::Failed(e) => e,
        other => panic!("line {} did not fail: {other:?}", done.line),
    }
}

/// Imports: partners with contacts and locations are created in batches, the bad rows refused by field and
/// left out while the good ones commit; importing the same rows again changes nothing and logs nothing; a changed
/// row updates the partner it names and keeps what the row leaves empty; a reference twice in a batch, or a contact
/// code another partner has, fails its row; a dry run writes nothing and reports the duplicates; contacts and
/// leads import by their own references.
pub async fn check_imports(store: &Arc<dyn Store>) {
    let w = World::new(store).await;
    let t = w.tenant;
    let events = || async {
        store
            .events_since(t, 0, 10_000)
            .await
            .expect("events")
            .len()
    };
    let acme = |name: &str| {
        let mut p = NewPartner::company(name)
            .with_host_ref("C-1")
            .with_tax_id("RO 123 456 78");
        p.contacts.push(person("Ana Pop", Some("P-1")));
        p.contacts[0].email = Some("ana@acme.example".into());
        p.locations.push(NewLocation {
            kind: LocationKind::Billing,
            street: Some("Str. Lungă 1".into()),
            city: Some("Brașov".into()),
            region: None,
            postal_code: None,
            country: "RO".into(),
        });
        p
    };
    let file = || {
        rows(vec![
            acme("Acme SRL"),
            NewPartner::company("").with_host_ref("C-2"),
            NewPartner::company("Globex SA").with_host_ref("C-3"),
            NewPartner::company("Globex again").with_host_ref("C-3"),
        ])
    };
    // A dry run: what would happen, with nothing written.
    let before = events().await;
    let dry = w
        .crm
        .import_partners(&w.ctx, file(), ImportMode::DryRun)
        .await
        .expect("dry run");
    assert_eq!(tally(&dry), (2, 0, 0, 2), "{dry:?}");
    assert_eq!(failure(&dry[1]).field(), Some("name"));
    assert_eq!(
        (dry[3].line, failure(&dry[3]).field()),
        (5, Some("host_ref"))
    );
    assert!(matches!(
        w.crm.partner_by_ref(t, "C-1").await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(events().await, before, "a dry run logs nothing");
    // The import: good rows commit, bad ones are refused by field.
    let done = w
        .crm
        .import_partners(&w.ctx, file(), ImportMode::Commit)
        .await
        .expect("import");
    assert_eq!(tally(&done), (2, 0, 0, 2), "{done:?}");
    let stored = w.crm.partner_by_ref(t, "C-1").await.expect("imported");
    assert_eq!(
        Some(stored.id),
        match done[0].outcome {
            RowOutcome::Created(id) => Some(id),
            _ => None,
        }
    );
    assert_eq!((stored.contacts.len(), stored.locations.len()), (1, 1));
    assert_eq!(
        w.crm
            .contact_by_ref(t, "P-1")
            .await
            .expect("contact")
            .1
            .email
            .as_deref(),
        Some("ana@acme.example")
    );
    assert_eq!(
        w.crm
            .partner_by_ref(t, "C-3")
            .await
            .expect("first of C-3")
            .name,
        "Globex SA"
    );
    assert_eq!(events().await, before + 2, "one event per created partner");
    // Again: nothing changes, nothing is logged.
    let again = w
        .crm
        .import_partners(&w.ctx, file(), ImportMode::Commit)
        .await
        .expect("again");
    assert_eq!(tally(&again), (0, 0, 2, 2), "{again:?}");
    assert_eq!(w.crm.partner_by_ref(t, "C-1").await.expect("same"), stored);
    assert_eq!(events().await, before + 2);
    // A changed row updates what it gives and keeps the rest; a dry run of it reports duplicates of new rows.
    let mut renamed = acme("Acme Industries SRL");
    renamed.tax_id = None;
    renamed.contacts[0].phone = Some("+40 721 234 567".into());
    renamed.contacts[0].email = None;
    let lookalike =
        NewPartner::company("Acme Trading").with_contact("Ana", Some("ana@acme.example"), None);
    let dry = w
        .crm
        .import_partners(
            &w.ctx,
            rows(vec![NewPartner::company("ACME S.R.L.")]),
            ImportMode::DryRun,
        )
        .await
        .expect("dry");
    assert!(matches!(dry[0].outcome, RowOutcome::Created(_)), "{dry:?}");
    assert!(
        dry[0].duplicates.iter().any(|d| d.partner == stored.id),
        "{dry:?}"
    );
    let changed = w
        .crm
        .import_partners(&w.ctx, rows(vec![renamed]), ImportMode::Commit)
        .await
        .expect("update");
    assert!(
        matches!(&changed[0].outcome, RowOutcome::Updated(id, f) if *id == stored.id && f.contains(&"name".to_string())),
        "{changed:?}"
    );
    let updated = w.crm.partner_by_ref(t, "C-1").await.expect("updated");
    assert_eq!(
        (updated.name.as_str(), updated.version),
        ("Acme Industries SRL", stored.version + 1)
    );
    assert_eq!(
        updated.tax_id, stored.tax_id,
        "an empty cell keeps the stored value"
    );
    assert_eq!(
        updated.contacts.len(),
        1,
        "the contact named by its code is updated, not added"
    );
    assert_eq!(updated.contacts[0].id, stored.contacts[0].id);
    assert_eq!(
        updated.contacts[0].email.as_deref(),
        Some("ana@acme.example")
    );
    assert!(updated.contacts[0].phone.is_some());
    assert_eq!(
        updated.locations, stored.locations,
        "the same address is not added twice"
    );
    // Without a reference, the one strong match is the partner (same e-mail): updated, not created again.
    let matched = w
        .crm
        .import_partners(&w.ctx, rows(vec![lookalike]), ImportMode::Commit)
        .await
        .expect("matched");
    assert!(
        matches!(matched[0].outcome, RowOutcome::Updated(id, _) if id == stored.id),
        "{matched:?}"
    );
    // A contact code another partner's contact has fails its row.
    let mut thief = NewPartner::company("Thief").with_host_ref("C-9");
    thief.contacts.push(person("Ana", Some("P-1")));
    let stolen = w
        .crm
        .import_partners(&w.ctx, rows(vec![thief]), ImportMode::Commit)
        .await
        .expect("batch");
    assert_eq!(failure(&stolen[0]).field(), Some("contacts[0].host_ref"));
    assert!(matches!(
        w.crm.partner_by_ref(t, "C-9").await,
        Err(Error::NotFound { .. })
    ));
    // Contacts of known partners: several rows of one partner in a batch, a new one added, an unknown partner.
    let contacts = rows(vec![
        ContactRow {
            partner_ref: "C-3".into(),
            contact: person("Ion Ionescu", Some("P-2")),
        },
        ContactRow {
            partner_ref: "C-3".into(),
            contact: person("Maria", Some("P-3")),
        },
        ContactRow {
            partner_ref: "C-404".into(),
            contact: person("Nobody", Some("P-4")),
        },
        ContactRow {
            partner_ref: "C-3".into(),
            contact: person("", Some("P-5")),
        },
    ]);
    let done = w
        .crm
        .import_contacts(&w.ctx, contacts.clone(), ImportMode::Commit)
        .await
        .expect("contacts");
    assert_eq!(tally(&done), (0, 2, 0, 2), "{done:?}");
    assert_eq!(failure(&done[2]).field(), Some("partner_ref"));
    assert_eq!(failure(&done[3]).field(), Some("contacts[2].name"));
    let globex = w.crm.partner_by_ref(t, "C-3").await.expect("globex");
    assert_eq!(globex.contacts.len(), 2);
    assert_eq!(
        w.crm.contact_by_ref(t, "P-3").await.expect("maria").0.id,
        globex.id
    );
    let again = w
        .crm
        .import_contacts(&w.ctx, contacts, ImportMode::Commit)
        .await
        .expect("again");
    assert_eq!(tally(&again), (0, 0, 2, 2), "{again:?}");
    // Leads: entered with their partner matched by code, again unchanged, then updated; a bad one refused.
    let lead = |title: &str, code: &str| {
        let partner = NewPartner::company("Acme").with_host_ref("C-1");
        NewLead::new(LeadPartner::MatchOrCreate { partner }, title).with_host_ref(code)
    };
    let leads = rows(vec![
        lead("Forklifts", "OPP-1"),
        lead("", "OPP-2"),
        lead("Pallets", "OPP-1"),
    ]);
    let dry = w
        .crm
        .import_leads(&w.ctx, leads.clone(), ImportMode::DryRun)
        .await
        .expect("dry");
    assert_eq!(tally(&dry), (1, 0, 0, 2), "{dry:?}");
    assert!(matches!(
        w.crm.lead_by_ref(t, "OPP-1").await,
        Err(Error::NotFound { .. })
    ));
    let done = w
        .crm
        .import_leads(&w.ctx, leads.clone(), ImportMode::Commit)
        .await
        .expect("leads");
    assert_eq!(tally(&done), (1, 0, 0, 2), "{done:?}");
    assert_eq!(failure(&done[1]).field(), Some("title"));
    assert_eq!(failure(&done[2]).field(), Some("host_ref"));
    let entered = w.crm.lead_by_ref(t, "OPP-1").await.expect("entered");
    assert_eq!(
        entered.partner, stored.id,
        "the lead's partner is found by its code"
    );
    let again = w
        .crm
        .import_leads(&w.ctx, leads, ImportMode::Commit)
        .await
        .expect("again");
    assert_eq!(tally(&again), (0, 0, 1, 2), "{again:?}");
    let retitled = w
        .crm
        .import_leads(
            &w.ctx,
            rows(vec![lead("Forklifts x4", "OPP-1")]),
            ImportMode::Commit,
        )
        .await;
    assert!(
        matches!(&retitled.expect("update")[0].outcome, RowOutcome::Updated(id, f) if *id == entered.id && f == &["title".to_string()])
    );
    assert_eq!(
        w.crm.lead_by_ref(t, "OPP-1").await.expect("lead").title,
        "Forklifts x4"
    );
}

/// The tenant's partners page by page in id order (the export's read): every partner once, none of another
/// tenant's, a page never longer than asked.
pub async fn check_partner_pages(store: &Arc<dyn Store>) {
    let w = World::new(store).await;
    let other = World::new(store).await;
    company(&other, "Not ours", Vec::new())
        .await
        .expect("theirs");
    let mut made = Vec::new();
    for i in 0..7 {
        made.push(
            company(&w, &format!("Partner {i}"), Vec::new())
                .await
                .expect("partner")
                .id,
        );
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .partners_after(w.tenant, after, 3)
            .await
            .expect("page");
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        seen.extend(page.iter().map(|p| p.id));
    }
    made.sort();
    assert_eq!(seen, made, "every partner once, in id order");
    let none = store
        .partners_after(w.tenant, made.last().copied(), 3)
        .await
        .expect("past the end");
    assert!(none.is_empty());
    let capped = store
        .partners_after(w.tenant, None, u32::MAX)
        .await
        .expect("capped");
    assert_eq!(capped.len(), 7);
}

/// The stronger duplicate matchers: phone numbers compared in E.164 whatever their writing (the last nine digits
/// still match keys stored before), names compared by similarity with a threshold, each reason with its score;
/// within the tenant only.
pub async fn check_duplicate_matchers(store: &Arc<dyn Store>) {
    use crate::dedupe::{DedupeKey, MatchKind};
    let w = World::new(store).await;
    let t = w.tenant;
    let mut acme =
        NewPartner::company("Acme Industries SRL").with_contact("Ana", None, Some("0721 234 567"));
    acme.locations.push(NewLocation {
        kind: LocationKind::Billing,
        street: None,
        city: Some("Cluj".into()),
        region: None,
        postal_code: None,
        country: "RO".into(),
    });
    let acme = w
        .crm
        .create_partner(&w.ctx, acme)
        .await
        .expect("acme")
        .record;
    let probe =
        |name: &str, phone: Option<&str>| NewPartner::company(name).with_contact("X", None, phone);
    let kinds = |c: &crate::dedupe::DuplicateCandidate| {
        c.reasons.iter().map(|r| r.kind).collect::<Vec<_>>()
    };
    // Another writing of the number, and a misspelt name: the same phone in E.164 and a similar name.
    let found = w
        .crm
        .find_duplicates(
            t,
            &probe("ACME Industris S.R.L.", Some("+40 (721) 234-567")),
        )
        .await;
    let found = found.expect("found");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].partner, acme.id);
    assert_eq!(
        kinds(&found[0]),
        [MatchKind::E164, MatchKind::SimilarName],
        "{found:?}"
    );
    assert_eq!(found[0].reasons[0].value, "+40721234567");
    assert_eq!(found[0].score, 95);
    assert!(
        found[0].explain().contains("similar name acme industries"),
        "{}",
        found[0].explain()
    );
    let intl = w
        .crm
        .find_duplicates(t, &probe("Other", Some("0040 721 234 567")))
        .await
        .expect("found");
    assert_eq!(
        intl.iter().map(kinds).collect::<Vec<_>>(),
        [[MatchKind::E164]]
    );
    // A name that only shares a word is not similar; the same name is the same name; a similar one alone.
    let globex = w
        .crm
        .find_duplicates(t, &probe("Globex Industries", None))
        .await
        .expect("none");
    assert!(globex.is_empty(), "{globex:?}");
    let same = w
        .crm
        .find_duplicates(t, &probe("acme industries", None))
        .await
        .expect("same");
    assert_eq!(
        (kinds(&same[0]), same[0].score),
        (vec![MatchKind::Name], 90)
    );
    let close = w
        .crm
        .find_duplicates(t, &probe("Acme Industrie", None))
        .await
        .expect("close");
    assert_eq!(kinds(&close[0]), [MatchKind::SimilarName]);
    let alike = crate::dedupe::similarity("acme industrie", "acme industries");
    assert!((crate::dedupe::NAME_SIMILARITY..100).contains(&alike));
    assert_eq!(close[0].score, alike - 10, "{close:?}");
    // A partner stored before E.164 keys (only the last nine digits): still found by them.
    let old = NewPartner::company("Old Timer").with_contact("O", None, Some("0744 999 888"));
    let old = old.build(t, w.clock.now()).expect("valid");
    let legacy = vec![DedupeKey {
        kind: MatchKind::Phone,
        value: "744999888".into(),
    }];
    let insert = Write::InsertPartner {
        partner: old.clone(),
        keys: legacy,
    };
    store
        .commit(t, ChangeSet::from_iter([insert]))
        .await
        .expect("legacy keys");
    let by_tail = w
        .crm
        .find_duplicates(t, &probe("Someone", Some("+40 744 999 888")))
        .await
        .expect("tail");
    assert_eq!(
        by_tail
            .iter()
            .map(|c| (c.partner, kinds(c), c.score))
            .collect::<Vec<_>>(),
        [(old.id, vec![MatchKind::Phone], 80)]
    );
    // The threshold is the service's; another tenant sees nothing of these.
    let strict = crate::service::CrmService::builder()
        .store(store.clone())
        .name_similarity(100)
        .build()
        .expect("strict");
    let none = strict
        .find_duplicates(t, &probe("ACME Industris", None))
        .await
        .expect("strict");
    assert!(none.is_empty(), "{none:?}");
    let other = World::new(store).await;
    let theirs = other
        .crm
        .find_duplicates(other.tenant, &probe("ACME Industris", Some("0721 234 567")))
        .await;
    assert!(theirs.expect("other tenant").is_empty());
}

/// Tenant settings: a value stored under a key reads back, a new value replaces it, another key or another tenant
/// reads nothing, bad keys and values are refused by field with nothing written; a setting is no bulk insert.
pub async fn check_settings(store: &Arc<dyn Store>) {
    use serde_json::json;
    let w = World::new(store).await;
    let t = w.tenant;
    assert_eq!(
        w.crm
            .setting(t, "import.mapping.partners")
            .await
            .expect("none yet"),
        None
    );
    let first = json!({ "name": "Denumire", "ref": "Cod", "note": "Brașov ăîșț" });
    w.crm
        .put_setting(&w.ctx, "import.mapping.partners", first.clone())
        .await
        .expect("put");
    assert_eq!(
        w.crm
            .setting(t, "import.mapping.partners")
            .await
            .expect("read"),
        Some(first)
    );
    let second = json!(["a", 1, null, { "deep": [true] }]);
    w.crm
        .put_setting(&w.ctx, "import.mapping.partners", second.clone())
        .await
        .expect("replace");
    assert_eq!(
        w.crm
            .setting(t, "import.mapping.partners")
            .await
            .expect("read"),
        Some(second.clone())
    );
    let stored = store
        .setting(t, "import.mapping.partners")
        .await
        .expect("store read")
        .expect("one");
    assert_eq!(
        (stored.key(), stored.tenant(), stored.updated_at()),
        ("import.mapping.partners", t, w.clock.now())
    );
    assert_eq!(
        w.crm
            .setting(t, "import.mapping.leads")
            .await
            .expect("other key"),
        None
    );
    let other = World::new(store).await;
    assert_eq!(
        other
            .crm
            .setting(other.tenant, "import.mapping.partners")
            .await
            .expect("other tenant"),
        None
    );
    other
        .crm
        .put_setting(&other.ctx, "import.mapping.partners", json!(2))
        .await
        .expect("theirs");
    assert_eq!(
        w.crm
            .setting(t, "import.mapping.partners")
            .await
            .expect("ours"),
        Some(second.clone())
    );
    for bad in [
        "",
        "Upper",
        "with space",
        "x/y",
        &"k".repeat(crate::setting::MAX_KEY + 1),
    ] {
        let e = w.crm.put_setting(&w.ctx, bad, json!(1)).await.unwrap_err();
        assert_eq!(e.field(), Some("key"), "{bad:?}");
        assert_eq!(
            w.crm.setting(t, bad).await.unwrap_err().field(),
            Some("key"),
            "{bad:?}"
        );
    }
    let big = json!("x".repeat(crate::setting::MAX_VALUE));
    let e = w
        .crm
        .put_setting(&w.ctx, "import.mapping.partners", big)
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("value"));
    assert_eq!(
        w.crm
            .setting(t, "import.mapping.partners")
            .await
            .expect("kept"),
        Some(second)
    );
    let setting = crate::setting::Setting::new(t, "bulk", json!(1), w.clock.now()).expect("valid");
    let e = store
        .ingest(t, ChangeSet::from_iter([Write::PutSetting(setting)]))
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("writes"), "{e:?}");
}
