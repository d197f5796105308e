//! The self-service portal on every adapter: the representative's lifecycle ([`check_portal_representatives`]),
//! what a representative reads and does ([`check_portal_reads_and_requests`]), and the property test of scope
//! ([`run_portal_scope`]): random partners, documents, requests and representatives with random rights, random portal
//! calls with ids of the partner's own records, of another partner's and of another tenant's; no row of another
//! partner or tenant ever comes back or changes, and a missing right is `Forbidden`.

use super::commerce::Shop;
use crate::actor::{Actor, Source};
use crate::commerce::{CommerceStore, CommerceStoreExt, NewDocument};
use crate::event::EventKind;
use crate::id::{DocumentId, RequestId};
use crate::outbox::{OutboxStatus, OutboxStore};
use crate::page::PageRequest;
use crate::partner::{NewContact, NewPartner, Partner, PartnerRole};
use crate::portal::{Principal, Right, Rights};
use crate::request::NewRequest;
use crate::service::{PortalRequest, PortalRequestKind, PortalService};
use crate::store::{Store, StoreExt, TimelineOf};
use crate::Error;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::collections::BTreeSet;
use std::sync::Arc;

/// How many random cases the scope property test runs per adapter by default (each builds three partners with
/// their documents, requests and representatives, then makes up to 24 portal calls).
pub const PORTAL_CASES: u32 = 256;

fn day(d: u32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 1, d.clamp(1, 28)).expect("a day")
}

/// A customer owned by the agent, with one contact who has an address.
pub(super) async fn customer_with_contact(shop: &Shop, name: &str) -> Partner {
    let email = format!("buyer@{}.example", name.to_lowercase().replace(' ', "-"));
    customer(shop, name, Some(email), Some(shop.w.agent)).await
}

/// A customer named `name` with one contact (`<name> buyer`, at `email`), owned by `owner`.
async fn customer(
    shop: &Shop,
    name: &str,
    email: Option<String>,
    owner: Option<crate::id::UserId>,
) -> Partner {
    let mut new = NewPartner::company(name).with_role(PartnerRole::Customer);
    new.owner = owner;
    new.contacts.push(NewContact {
        name: format!("{name} buyer"),
        email,
        ..NewContact::default()
    });
    let made = shop.w.crm.create_partner(&shop.w.ctx, new).await;
    made.expect("partner").record
}

/// A request about `partner` (on a new lead of it), assigned to the agent.
async fn request_about(shop: &Shop, partner: &Partner, title: &str) -> crate::request::Request {
    let lead = crate::lead::NewLead::for_partner(partner.id, "Deal");
    let lead = shop
        .w
        .crm
        .enter_lead(&shop.w.ctx, lead)
        .await
        .expect("lead");
    let mut r = NewRequest::on_lead(lead.record.id, title, shop.w.agent);
    r.partner = Some(partner.id);
    let made = shop.w.crm.open_request(&shop.w.ctx, r).await;
    made.expect("request").record
}

/// The `var` of every pending e-mail of `template` in the tenant's outbox.
async fn pending_var(
    outbox: &Arc<dyn OutboxStore>,
    tenant: crate::id::TenantId,
    template: &str,
    var: &str,
) -> Vec<String> {
    let page = outbox
        .list_outbox(tenant, OutboxStatus::Pending, &PageRequest::first(100))
        .await
        .expect("outbox");
    page.items
        .into_iter()
        .filter(|m| m.payload.template.as_deref() == Some(template))
        .filter_map(|m| m.payload.vars[var].as_str().map(str::to_string))
        .collect()
}

/// A representative of `partner` with `rights`, accepted: its principal.
async fn accepted(
    portal: &PortalService,
    shop: &Shop,
    partner: &Partner,
    rights: Rights,
) -> Principal {
    let invited = portal
        .invite(&shop.w.ctx, partner.id, partner.contacts[0].id, rights)
        .await
        .expect("invite");
    portal
        .login(shop.w.tenant, invited.token.as_str())
        .await
        .expect("accept")
}

/// The backend as the three ports the portal's checks use.
fn ports(
    backend: &Arc<dyn crate::store::Backend>,
) -> (Arc<dyn Store>, Arc<dyn CommerceStore>, Arc<dyn OutboxStore>) {
    (backend.clone(), backend.clone(), backend.clone())
}

fn portal_of(shop: &Shop) -> PortalService {
    PortalService::new(shop.cs.clone()).with_login_base("https://portal.example/login/")
}

/// Invitation, acceptance, a used or forged token, rights changes, revocation (the next call fails), reinvitation,
/// each in the partner's timeline; the invitation e-mail in the outbox with its link.
pub async fn check_portal_representatives(backend: &Arc<dyn crate::store::Backend>) {
    let (store, commerce, outbox) = ports(backend);
    let (store, commerce) = (&store, &commerce);
    let shop = Shop::new(store, commerce).await;
    let portal = portal_of(&shop);
    let acme = customer_with_contact(&shop, "Acme").await;
    let statement = Rights::none().with(Right::Statement);
    let invited = portal
        .invite(&shop.w.ctx, acme.id, acme.contacts[0].id, statement.clone())
        .await
        .expect("invite");
    assert_eq!(invited.representative.email(), "buyer@acme.example");
    // Inviting the same contact twice is refused; so is a contact without an address, and no rights.
    let twice = portal
        .invite(&shop.w.ctx, acme.id, acme.contacts[0].id, statement.clone())
        .await;
    assert!(
        matches!(twice, Err(Error::AlreadyExists { .. })),
        "{twice:?}"
    );
    let silent = customer(&shop, "Silent", None, None).await;
    let e = portal
        .invite(
            &shop.w.ctx,
            silent.id,
            silent.contacts[0].id,
            statement.clone(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("contact.email"));
    let e = portal
        .invite(&shop.w.ctx, acme.id, acme.contacts[0].id, Rights::none())
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::AlreadyExists { .. } | Error::Invalid { .. }),
        "{e:?}"
    );
    // Not active before acceptance.
    let id = invited.representative.id();
    assert!(matches!(
        portal.principal(shop.w.tenant, id).await,
        Err(Error::NotFound { .. })
    ));
    // Another tenant cannot use the token; a forged one is refused.
    let other = Shop::new(store, commerce).await;
    let e = portal
        .login(other.w.tenant, invited.token.as_str())
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("token"));
    let e = portal
        .login(shop.w.tenant, "not-a-token")
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("token"));
    let me = portal
        .login(shop.w.tenant, invited.token.as_str())
        .await
        .expect("accept");
    assert_eq!((me.partner(), me.representative()), (acme.id, id));
    assert_eq!(me.rights(), &statement);
    // The token is used up.
    let e = portal
        .login(shop.w.tenant, invited.token.as_str())
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("token"));
    assert!(portal.statement(&me, Some(day(20))).await.is_ok());
    assert_eq!(
        portal.documents(&me, None, 10).await.unwrap_err(),
        Error::Forbidden { right: "documents" }
    );
    // Rights take effect at the next call, with the principal the representative already holds.
    let r = portal
        .set_rights(&shop.w.ctx, id, 2, statement.clone().with(Right::Documents))
        .await
        .expect("rights");
    assert_eq!(r.version(), 3);
    assert!(portal.documents(&me, None, 10).await.is_ok());
    let stale = portal
        .set_rights(&shop.w.ctx, id, 2, statement.clone())
        .await
        .unwrap_err();
    assert!(matches!(stale, Error::Conflict { .. }), "{stale:?}");
    // Revoked mid-session: the next call fails as not found, and the principal cannot be had again.
    portal.revoke(&shop.w.ctx, id, 3).await.expect("revoke");
    assert!(matches!(
        portal.statement(&me, None).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        portal.principal(shop.w.tenant, id).await,
        Err(Error::NotFound { .. })
    ));
    let e = portal.revoke(&shop.w.ctx, id, 4).await.unwrap_err();
    assert_eq!(e.field(), Some("status"));
    // Invited again: a new token works, the old one does not.
    let again = portal.reinvite(&shop.w.ctx, id, 4).await.expect("reinvite");
    assert_ne!(again.token, invited.token);
    let back = portal
        .login(shop.w.tenant, again.token.as_str())
        .await
        .expect("accept again");
    assert!(portal.statement(&back, None).await.is_ok());
    let e = portal.reinvite(&shop.w.ctx, id, 6).await.unwrap_err();
    assert_eq!(
        e.field(),
        Some("status"),
        "an active one is revoked before it is invited again"
    );
    // Every step is on the partner's timeline, acceptance by the representative through the portal.
    let log = shop
        .w
        .crm
        .timeline(
            shop.w.tenant,
            TimelineOf::Partner(acme.id),
            &PageRequest::first(50),
        )
        .await
        .expect("timeline");
    let names: Vec<&str> = log.items.iter().rev().map(|e| e.kind.name()).collect();
    let steps: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| n.starts_with("representative_"))
        .collect();
    assert_eq!(
        steps,
        [
            "representative_invited",
            "representative_accepted",
            "representative_rights_changed",
            "representative_revoked",
            "representative_invited",
            "representative_accepted"
        ]
    );
    let accepted_by = log
        .items
        .iter()
        .find(|e| matches!(e.kind, EventKind::RepresentativeAccepted { .. }))
        .expect("accepted");
    assert_eq!(accepted_by.source, Source::Portal);
    assert!(
        matches!(accepted_by.actor, Actor::PartnerRepresentative { partner, .. } if partner == acme.id)
    );
    // Two invitation e-mails wait in the outbox, each with its own link.
    let invitation = crate::service::INVITATION_TEMPLATE;
    let links = pending_var(&outbox, shop.w.tenant, invitation, "login_url").await;
    assert_eq!(links.len(), 2, "{links:?}");
    assert!(links.contains(&format!(
        "https://portal.example/login/{}",
        again.token.as_str()
    )));
    // Logging in again later: a link by e-mail (any case of the address), single use, rate limited, short-lived.
    let t = shop.w.tenant;
    let links = |outbox: Arc<dyn OutboxStore>| async move {
        pending_var(&outbox, t, crate::service::LOGIN_TEMPLATE, "token").await
    };
    shop.w.clock.advance(chrono::Duration::minutes(2));
    portal
        .request_login(t, "BUYER@Acme.example")
        .await
        .expect("link");
    let sent = links(outbox.clone()).await;
    assert_eq!(sent.len(), 1);
    let e = portal
        .request_login(t, "buyer@acme.example")
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("email"), "one link a minute");
    portal
        .request_login(t, "nobody@acme.example")
        .await
        .expect("says nothing");
    assert_eq!(links(outbox.clone()).await.len(), 1);
    let me_again = portal.login(t, &sent[0]).await.expect("login");
    assert_eq!(me_again.representative(), id);
    assert_eq!(
        portal.login(t, &sent[0]).await.unwrap_err().field(),
        Some("token")
    );
    shop.w.clock.advance(chrono::Duration::minutes(2));
    let asked = portal.request_login(t, "buyer@acme.example").await;
    assert!(asked.is_ok(), "a minute later, another link: {asked:?}");
    let late = links(outbox.clone()).await;
    let newest = late
        .iter()
        .find(|x| **x != sent[0])
        .expect("a second link")
        .clone();
    shop.w
        .clock
        .advance(chrono::Duration::minutes(crate::portal::LOGIN_LINK_MINUTES));
    assert_eq!(
        portal.login(t, &newest).await.unwrap_err().field(),
        Some("token")
    );
    // The staff lists the partner's representatives; another tenant's staff does not see them.
    assert_eq!(
        portal
            .representatives(shop.w.tenant, acme.id)
            .await
            .expect("list")
            .len(),
        1
    );
    assert!(portal
        .representatives(other.w.tenant, acme.id)
        .await
        .expect("list")
        .is_empty());
    assert!(matches!(
        portal.revoke(&other.w.ctx, id, 6).await,
        Err(Error::NotFound { .. })
    ));
}

/// Sessions, the account, contacts and the balance history: logging out voids every earlier session (the epoch is
/// stored); a revoked representative's session ends; a representative with the contacts right adds and removes the
/// partner's contacts (the change is the partner's, made by the representative), never another partner's and never
/// one with portal access; the balance history is the balances on each day.
pub async fn check_portal_sessions_and_contacts(backend: &Arc<dyn crate::store::Backend>) {
    let (store, commerce, outbox) = ports(backend);
    let (store, commerce) = (&store, &commerce);
    let shop = Shop::new(store, commerce).await;
    let portal = portal_of(&shop);
    let t = shop.w.tenant;
    let acme = customer_with_contact(&shop, "Acme").await;
    let rival = customer_with_contact(&shop, "Rival").await;
    let me = accepted(&portal, &shop, &acme, Rights::all()).await;
    let id = me.representative();
    let epoch = me.session_epoch();
    assert_eq!(portal.session(t, id, epoch).await.expect("session"), me);
    // Another tenant does not know the representative.
    let other = Shop::new(store, commerce).await;
    assert!(matches!(
        portal.session(other.w.tenant, id, epoch).await,
        Err(Error::NotFound { .. })
    ));
    portal.logout(&me).await.expect("logout");
    let e = portal.session(t, id, epoch).await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::NotFound {
                entity: "session",
                ..
            }
        ),
        "{e:?}"
    );
    let stored = commerce.representative(t, id).await.expect("stored");
    assert_eq!(
        stored.session_epoch(),
        epoch.wrapping_add(1),
        "the epoch is stored"
    );
    // Logging in again begins a session in the new epoch.
    let link = {
        let again = portal.reinvite(&shop.w.ctx, id, stored.version()).await;
        assert!(again.is_err(), "an active one is not reinvited");
        shop.w.clock.advance(chrono::Duration::minutes(2));
        portal
            .request_login(t, "buyer@acme.example")
            .await
            .expect("link");
        pending_var(&outbox, t, crate::service::LOGIN_TEMPLATE, "token")
            .await
            .pop()
            .expect("a link")
    };
    let me = portal.login(t, &link).await.expect("login");
    assert_eq!(me.session_epoch(), epoch.wrapping_add(1));
    portal
        .session(t, id, me.session_epoch())
        .await
        .expect("new session");
    // The account: the partner's name and roles.
    let account = portal.account(&me).await.expect("account");
    assert_eq!(account.partner, "Acme");
    assert_eq!(account.roles, vec![PartnerRole::Customer]);
    assert_eq!(account.email, "buyer@acme.example");
    // Contacts: add, refuse a duplicate name, remove; never one with portal access, never another partner's.
    let person = |name: &str, email: Option<&str>| NewContact {
        name: name.into(),
        email: email.map(str::to_string),
        ..NewContact::default()
    };
    let added = portal
        .add_contact(&me, person("Ion Ionescu", Some("ion@acme.example")))
        .await
        .expect("add");
    assert_eq!(added.len(), 2);
    let twice = portal.add_contact(&me, person("ion ionescu", None)).await;
    assert_eq!(twice.unwrap_err().field(), Some("name"));
    let bad = portal.add_contact(&me, person("Bad", Some("not an address")));
    let e = bad.await.unwrap_err();
    assert_eq!(e.field(), Some("contacts[2].email"), "{e:?}");
    let timeline = shop
        .w
        .crm
        .timeline(t, TimelineOf::Partner(acme.id), &PageRequest::first(50))
        .await
        .expect("timeline");
    let by_rep = timeline.items.iter().any(|e| {
        matches!(e.kind, EventKind::PartnerUpdated { .. })
            && matches!(e.actor, Actor::PartnerRepresentative { partner, contact } if partner == acme.id && contact == me.contact())
            && e.source == Source::Portal
    });
    assert!(
        by_rep,
        "the change is the representative's, from the portal"
    );
    let ion = added
        .iter()
        .find(|c| c.name == "Ion Ionescu")
        .expect("ion")
        .id;
    let e = portal
        .remove_contact(&me, acme.contacts[0].id)
        .await
        .unwrap_err();
    assert_eq!(
        e.field(),
        Some("contact"),
        "a representative's contact stays"
    );
    let e = portal
        .remove_contact(&me, rival.contacts[0].id)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    let left = portal.remove_contact(&me, ion).await.expect("remove");
    assert_eq!(left.len(), 1);
    assert_eq!(portal.contacts(&me).await.expect("contacts"), left);
    assert_eq!(
        store
            .partner(t, rival.id)
            .await
            .expect("rival")
            .contacts
            .len(),
        1,
        "the rival is untouched"
    );
    // The balance history is the balances on each day.
    shop.record(
        NewDocument::invoice(
            "H-1",
            acme.id,
            day(5),
            "RON",
            vec![shop.line(0, "1", "70", "1")],
        )
        .due(day(10)),
    )
    .await;
    let days = [day(1), day(5), day(20)];
    let history = portal.balance_history(&me, &days).await.expect("history");
    assert_eq!(history.len(), 3);
    for (d, b) in &history {
        let want = shop
            .cs
            .balances(t, acme.id, Some(*d))
            .await
            .expect("balances");
        assert_eq!(b, &want, "on {d}");
    }
    assert!(history[0].1.is_empty());
    assert_eq!(history[2].1[0].receivable, rust_decimal::Decimal::from(70));
    let many = vec![day(1); crate::service::MAX_HISTORY + 1];
    let e = portal.balance_history(&me, &many).await.unwrap_err();
    assert_eq!(e.field(), Some("days"));
    // Without the right: forbidden; revoked: the session ends.
    let rights = Rights::none().with(Right::Requests);
    let r = commerce.representative(t, id).await.expect("stored");
    portal
        .set_rights(&shop.w.ctx, id, r.version(), rights)
        .await
        .expect("rights");
    assert!(matches!(
        portal.contacts(&me).await,
        Err(Error::Forbidden { right: "contacts" })
    ));
    assert!(matches!(
        portal.balance_history(&me, &days).await,
        Err(Error::Forbidden { right: "statement" })
    ));
    portal
        .account(&me)
        .await
        .expect("the account needs no right");
    let r = commerce.representative(t, id).await.expect("stored");
    portal
        .revoke(&shop.w.ctx, id, r.version())
        .await
        .expect("revoke");
    assert!(matches!(
        portal.session(t, id, me.session_epoch()).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        portal.account(&me).await,
        Err(Error::NotFound { .. })
    ));
}

/// What a representative reads and does: the statement, documents newest first by page, one document, requests
/// (opening one lands in the CRM with source portal, assigned to the owner), quotations, asking for a contract;
/// another partner's ids read as not found; bad input is refused by field.
pub async fn check_portal_reads_and_requests(
    store: &Arc<dyn Store>,
    commerce: &Arc<dyn CommerceStore>,
) {
    let shop = Shop::new(store, commerce).await;
    let portal = portal_of(&shop);
    let acme = customer_with_contact(&shop, "Acme").await;
    let rival = customer_with_contact(&shop, "Rival").await;
    let mut mine = Vec::new();
    for (i, d) in [3, 9, 9, 17].into_iter().enumerate() {
        let doc = shop
            .record(
                NewDocument::invoice(
                    &format!("A-{i}"),
                    acme.id,
                    day(d),
                    "RON",
                    vec![shop.line(0, "1", &format!("{}", 100 + i), "1")],
                )
                .due(day(d + 5)),
            )
            .await;
        mine.push(doc);
    }
    let theirs = shop
        .record(NewDocument::invoice(
            "R-1",
            rival.id,
            day(4),
            "RON",
            vec![shop.line(0, "1", "50", "1")],
        ))
        .await;
    let me = accepted(&portal, &shop, &acme, Rights::all()).await;
    // The statement is the partner's account.
    let st = portal
        .statement(&me, Some(day(28)))
        .await
        .expect("statement");
    assert_eq!(st.open_items.len(), 4);
    assert!(st
        .open_items
        .iter()
        .all(|o| mine.iter().any(|d| d.id == o.document)));
    assert_eq!(
        st.balances,
        shop.cs
            .balances(shop.w.tenant, acme.id, Some(day(28)))
            .await
            .expect("balances")
    );
    assert!(st.open_items.iter().any(|o| o.days_overdue > 0));
    // Documents newest first, two per page, then the rest.
    let first = portal.documents(&me, None, 2).await.expect("page 1");
    let last = first.last().expect("two");
    let rest = portal
        .documents(&me, Some((last.issue_date, last.id)), 2)
        .await
        .expect("page 2");
    let got: Vec<DocumentId> = first.iter().chain(&rest).map(|d| d.id).collect();
    let mut want: Vec<&crate::commerce::Document> = mine.iter().collect();
    want.sort_by_key(|d| std::cmp::Reverse((d.issue_date, d.id)));
    assert_eq!(got, want.iter().map(|d| d.id).collect::<Vec<_>>());
    for bad in [0, crate::service::MAX_PAGE + 1] {
        assert_eq!(
            portal.documents(&me, None, bad).await.unwrap_err().field(),
            Some("limit")
        );
    }
    assert_eq!(
        portal.document(&me, mine[0].id).await.expect("mine").id,
        mine[0].id
    );
    assert!(matches!(
        portal.document(&me, theirs.id).await,
        Err(Error::NotFound { .. })
    ));
    // A request opened in the portal is the CRM's, about the partner, assigned to its owner, from the portal.
    let asked = portal
        .open_request(
            &me,
            PortalRequest {
                kind: PortalRequestKind::Complaint,
                title: "Late delivery".into(),
                body: "The order of March arrived late.".into(),
            },
        )
        .await
        .expect("request");
    let staff_view = shop
        .w
        .store()
        .request(shop.w.tenant, asked.id)
        .await
        .expect("in the CRM");
    assert_eq!(staff_view.partner, Some(acme.id));
    assert_eq!(staff_view.assignee, shop.w.agent);
    assert_eq!(staff_view.kind.as_deref(), Some("portal_complaint"));
    assert!(
        matches!(staff_view.opened_by, Actor::PartnerRepresentative { partner, .. } if partner == acme.id)
    );
    let theirs_request = request_about(&shop, &rival, "Call back").await;
    let listed = portal
        .requests(&me, PageRequest::first(50))
        .await
        .expect("requests");
    assert_eq!(
        listed.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        [asked.id]
    );
    assert_eq!(
        portal.request(&me, asked.id).await.expect("mine").id,
        asked.id
    );
    assert!(matches!(
        portal.request(&me, theirs_request.id).await,
        Err(Error::NotFound { .. })
    ));
    for (body, title) in [
        ("", "x"),
        ("  ", "x"),
        (&*"x".repeat(1 << 20), "x"),
        ("ok", "two\nlines"),
    ] {
        let e = portal
            .open_request(
                &me,
                PortalRequest {
                    kind: PortalRequestKind::Question,
                    title: title.into(),
                    body: body.into(),
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(e.field(), Some("body" | "title")), "{e:?}");
    }
    // Quotations: the partner's only; another partner's cannot be answered.
    let lead = shop
        .w
        .crm
        .enter_lead(
            &shop.w.ctx,
            crate::lead::NewLead::for_partner(rival.id, "Quote"),
        )
        .await
        .expect("lead")
        .record;
    let q = shop
        .cs
        .create_quotation(&shop.w.ctx, super::sales::quotation_for(&lead, "10"))
        .await
        .expect("quotation");
    assert!(portal.quotations(&me).await.expect("quotations").is_empty());
    assert!(matches!(
        portal.answer_quotation(&me, q.id(), 1, true).await,
        Err(Error::NotFound { .. })
    ));
    // Asking for a contract enters a lead from the portal.
    let lead = portal
        .ask_for_contract(&me, "Renew the forklifts", Some("Two more".into()), None)
        .await
        .expect("lead");
    assert_eq!(lead.partner, acme.id);
    assert_eq!(lead.source.medium.as_deref(), Some("portal"));
    assert_eq!(lead.owner, Some(shop.w.agent));
    let contract = super::sales::contract_from(&shop.cs, &shop.w.ctx, &q).await;
    assert!(matches!(
        portal
            .ask_for_contract(&me, "Renew", None, Some(contract.id()))
            .await,
        Err(Error::NotFound { .. })
    ));
    assert!(portal.contracts(&me).await.expect("contracts").is_empty());
    // The partner's own quotations: listed, one accepted and one declined in the portal; its own contract is
    // named by the renewal it asks for.
    let ours = |price| {
        let q = super::sales::quotation_for(&lead, price);
        shop.cs.create_quotation(&shop.w.ctx, q)
    };
    let send = crate::sales::QuotationCommand::Send;
    let (yes, no) = (ours("20").await.expect("q"), ours("30").await.expect("q"));
    for q in [&yes, &no] {
        let sent = shop
            .cs
            .quotation_command(&shop.w.ctx, q.id(), 1, send.clone())
            .await;
        sent.expect("sent");
    }
    assert_eq!(portal.quotations(&me).await.expect("quotations").len(), 2);
    let took = portal.answer_quotation(&me, yes.id(), 2, true).await;
    assert_eq!(
        took.expect("accepted").status(),
        crate::sales::QuotationStatus::Accepted
    );
    let declined = portal.answer_quotation(&me, no.id(), 2, false).await;
    assert_eq!(
        declined.expect("declined").status(),
        crate::sales::QuotationStatus::Declined
    );
    let own = ours("40").await.expect("q");
    let own = super::sales::contract_from(&shop.cs, &shop.w.ctx, &own).await;
    assert_eq!(portal.contracts(&me).await.expect("contracts").len(), 1);
    let renewal = portal
        .ask_for_contract(&me, "Renew", None, Some(own.id()))
        .await
        .expect("renewal");
    assert!(renewal
        .description
        .as_deref()
        .unwrap_or_default()
        .contains(own.number()));
    // A partner without an account owner: its request is refused by field, unless the portal names who answers.
    let lone = customer(&shop, "Lone", Some("buyer@lone.example".into()), None).await;
    let them = accepted(&portal, &shop, &lone, Rights::all()).await;
    let ask = PortalRequest {
        kind: PortalRequestKind::Information,
        title: "Catalogue".into(),
        body: "Please send the 2027 catalogue.".into(),
    };
    let e = portal.open_request(&them, ask.clone()).await.unwrap_err();
    assert_eq!(e.field(), Some("owner"));
    let answered = portal.clone().with_fallback_assignee(shop.w.manager);
    let r = answered.open_request(&them, ask).await.expect("request");
    assert_eq!(r.assignee, shop.w.manager);
}

/// One portal call of the property test, on a record of the caller's own partner, another partner's, or another
/// tenant's.
#[derive(Debug, Clone, Copy)]
enum Whose {
    Own,
    OtherPartner,
    OtherTenant,
}

#[derive(Debug, Clone, Copy)]
enum Call {
    Statement,
    Documents,
    Document(Whose, usize),
    Requests,
    Request(Whose, usize),
    OpenRequest,
    Pay(Whose, usize),
}

fn whose() -> impl Strategy<Value = Whose> {
    prop_oneof![
        Just(Whose::Own),
        Just(Whose::OtherPartner),
        Just(Whose::OtherTenant)
    ]
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        Just(Call::Statement),
        Just(Call::Documents),
        (whose(), 0usize..4).prop_map(|(w, i)| Call::Document(w, i)),
        Just(Call::Requests),
        (whose(), 0usize..4).prop_map(|(w, i)| Call::Request(w, i)),
        Just(Call::OpenRequest),
        (whose(), 0usize..4).prop_map(|(w, i)| Call::Pay(w, i)),
    ]
}

/// A partner's generated records: invoice amounts (with their issue days) and request titles.
#[derive(Debug, Clone)]
struct Holdings {
    invoices: Vec<(u32, u32)>,
    requests: usize,
}

fn holdings() -> impl Strategy<Value = Holdings> {
    (
        prop::collection::vec((1u32..28, 1u32..500), 0..4),
        0usize..3,
    )
        .prop_map(|(invoices, requests)| Holdings { invoices, requests })
}

#[derive(Debug, Clone)]
struct Case {
    mine: Holdings,
    neighbour: Holdings,
    stranger: Holdings,
    rights: BTreeSet<Right>,
    revoked: bool,
    calls: Vec<Call>,
}

fn case() -> impl Strategy<Value = Case> {
    let right = prop_oneof![
        Just(Right::Statement),
        Just(Right::Documents),
        Just(Right::Requests),
        Just(Right::Pay)
    ];
    (
        holdings(),
        holdings(),
        holdings(),
        prop::collection::btree_set(right, 1..=4),
        prop::bool::weighted(0.15),
        prop::collection::vec(call(), 1..24),
    )
        .prop_map(|(mine, neighbour, stranger, rights, revoked, calls)| Case {
            mine,
            neighbour,
            stranger,
            rights,
            revoked,
            calls,
        })
}

/// A partner made for one case, with its documents and requests.
struct Held {
    partner: Partner,
    documents: Vec<DocumentId>,
    requests: Vec<RequestId>,
}

async fn hold(shop: &Shop, name: &str, h: &Holdings, n: u64) -> Held {
    let partner = customer_with_contact(shop, name).await;
    let mut documents = Vec::new();
    for (i, (d, amount)) in h.invoices.iter().enumerate() {
        let doc = shop
            .record(
                NewDocument::invoice(
                    &format!("{name}-{n}-{i}"),
                    partner.id,
                    day(*d),
                    "RON",
                    vec![shop.line(0, "1", &amount.to_string(), "1")],
                )
                .due(day(*d)),
            )
            .await;
        documents.push(doc.id);
    }
    let mut requests = Vec::new();
    for i in 0..h.requests {
        let made = request_about(shop, &partner, &format!("Request {i}")).await;
        requests.push(made.id);
    }
    Held {
        partner,
        documents,
        requests,
    }
}

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    if ok {
        Ok(())
    } else {
        Err(TestCaseError::fail(what()))
    }
}

/// The id of `whose`'s `i`-th record from `of`, or a fresh id when that partner has none; and whether it is one of
/// the caller's own records.
fn pick<T: Copy>(
    held: [&Held; 3],
    whose: Whose,
    i: usize,
    of: impl Fn(&Held) -> &Vec<T>,
    fresh: impl FnOnce() -> T,
) -> (T, bool) {
    let h = match whose {
        Whose::Own => held[0],
        Whose::OtherPartner => held[1],
        Whose::OtherTenant => held[2],
    };
    let v = of(h);
    if v.is_empty() {
        (fresh(), false)
    } else {
        (v[i % v.len()], matches!(whose, Whose::Own))
    }
}

/// Judges a call reading one record by id: the caller's own record comes back (and is the partner's), any other
/// is not found; a refusal must be the one `want` names.
fn judge_one<T: std::fmt::Debug>(
    call: Call,
    got: crate::Result<T>,
    want: &Option<Error>,
    own: bool,
    is_partners: impl Fn(&T) -> bool,
) -> Result<(), TestCaseError> {
    match (got, want) {
        (Ok(r), None) => ensure(own && is_partners(&r), || {
            format!("{call:?}: {r:?} came back")
        }),
        (Err(Error::NotFound { .. }), None) => {
            ensure(!own, || format!("{call:?}: its own record was not found"))
        }
        (Ok(r), Some(w)) => Err(TestCaseError::fail(format!(
            "{call:?}: {r:?} came back where {w:?} was due"
        ))),
        (Err(e), want) => ensure(refused(want, &e), || format!("{call:?}: {e:?}")),
    }
}

/// Judges a call listing the partner's records: exactly the caller's own come back; a refusal must be the one
/// `want` names.
fn judge_list<I: Ord + Copy + std::fmt::Debug>(
    call: Call,
    got: crate::Result<BTreeSet<I>>,
    want: &Option<Error>,
    own: &[I],
) -> Result<(), TestCaseError> {
    let own: BTreeSet<I> = own.iter().copied().collect();
    match (got, want) {
        (Ok(got), None) => ensure(got == own, || format!("{call:?}: {got:?} vs {own:?}")),
        (Ok(got), Some(w)) => Err(TestCaseError::fail(format!(
            "{call:?}: {got:?} came back where {w:?} was due"
        ))),
        (Err(e), want) => ensure(refused(want, &e), || format!("{call:?}: {e:?}")),
    }
}

/// Whether `got` is the refusal `want` names (any not-found for a not-found).
fn refused(want: &Option<Error>, got: &Error) -> bool {
    match (want, got) {
        (Some(Error::NotFound { .. }), Error::NotFound { .. }) => true,
        (Some(w), g) => w == g,
        (None, _) => false,
    }
}

async fn run_case(a: &Shop, b: &Shop, n: u64, c: &Case) -> Result<(), TestCaseError> {
    let portal =
        portal_of(a).with_payment_provider(Arc::new(TestProvider::new(ProviderMode::Succeed)));
    let mut mine = hold(a, "Own", &c.mine, n).await;
    let neighbour = hold(a, "Neighbour", &c.neighbour, n).await;
    let stranger = hold(b, "Stranger", &c.stranger, n).await;
    let rights: Rights = c.rights.iter().copied().collect();
    let me = accepted(&portal, a, &mine.partner, rights.clone()).await;
    // The neighbour has a representative with every right: its presence must change nothing for `me`.
    let _ = accepted(&portal, a, &neighbour.partner, Rights::all()).await;
    if c.revoked {
        portal
            .revoke(&a.w.ctx, me.representative(), 2)
            .await
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    let need = |right: Right| -> Option<Error> {
        if c.revoked {
            Some(Error::not_found("representative", me.representative()))
        } else if !rights.has(right) {
            Some(Error::Forbidden {
                right: right.as_str(),
            })
        } else {
            None
        }
    };
    for (step, call) in c.calls.iter().enumerate() {
        let held = [&mine, &neighbour, &stranger];
        match *call {
            Call::Statement => {
                let want = need(Right::Statement);
                match portal.statement(&me, Some(day(28))).await {
                    Ok(st) => {
                        ensure(want.is_none(), || format!("{call:?}: allowed"))?;
                        let staff =
                            a.cs.open_items(a.w.tenant, mine.partner.id, Some(day(28)))
                                .await
                                .map_err(|e| TestCaseError::fail(e.to_string()))?;
                        ensure(st.open_items == staff, || format!("{call:?}: {st:?}"))?;
                        ensure(
                            st.open_items
                                .iter()
                                .all(|o| mine.documents.contains(&o.document)),
                            || format!("{call:?}: another partner's item"),
                        )?;
                    }
                    Err(e) => ensure(refused(&want, &e), || format!("{call:?}: {e:?}"))?,
                }
            }
            Call::Documents => {
                let got = portal.documents(&me, None, crate::service::MAX_PAGE).await;
                if let Ok(docs) = &got {
                    ensure(
                        docs.windows(2)
                            .all(|w| (w[0].issue_date, w[0].id) > (w[1].issue_date, w[1].id)),
                        || format!("{call:?}: not newest first"),
                    )?;
                }
                let got = got.map(|docs| docs.iter().map(|d| d.id).collect());
                judge_list(*call, got, &need(Right::Documents), &mine.documents)?;
            }
            Call::Document(whose, i) => {
                let (id, own) = pick(held, whose, i, |h| &h.documents, DocumentId::new);
                let got = portal.document(&me, id).await;
                judge_one(*call, got, &need(Right::Documents), own, |d| {
                    d.partner == mine.partner.id
                })?;
            }
            Call::Requests => {
                let got = portal.requests(&me, PageRequest::first(100)).await;
                let got = got.map(|page| page.items.iter().map(|r| r.id).collect());
                judge_list(*call, got, &need(Right::Requests), &mine.requests)?;
            }
            Call::Request(whose, i) => {
                let (id, own) = pick(held, whose, i, |h| &h.requests, RequestId::new);
                let got = portal.request(&me, id).await;
                judge_one(*call, got, &need(Right::Requests), own, |r| {
                    r.partner == Some(mine.partner.id)
                })?;
            }
            Call::OpenRequest => {
                let want = need(Right::Requests);
                let ask = PortalRequest {
                    kind: PortalRequestKind::Question,
                    title: "A question".into(),
                    body: "When is the next delivery?".into(),
                };
                match portal.open_request(&me, ask).await {
                    Ok(r) => {
                        ensure(want.is_none() && r.partner == Some(mine.partner.id), || {
                            format!("{call:?}: {r:?}")
                        })?;
                        mine.requests.push(r.id);
                    }
                    Err(e) => ensure(refused(&want, &e), || format!("{call:?}: {e:?}"))?,
                }
            }
            Call::Pay(whose, i) => {
                let (id, own) = pick(held, whose, i, |h| &h.documents, DocumentId::new);
                let key = format!("{n}-{step}");
                let items = [crate::portal::PayItem::all_of(id)];
                match (portal.pay(&me, &key, &items).await, need(Right::Pay)) {
                    (Ok(paid), None) => {
                        ensure(own && paid.partner() == mine.partner.id, || {
                            format!("{call:?}: {paid:?}")
                        })?;
                        // The payment is one of the partner's documents now.
                        let number = paid.document_number();
                        let kind = crate::commerce::DocumentKind::Payment;
                        let doc =
                            a.cs.store()
                                .document_by_number(a.w.tenant, kind, &number)
                                .await;
                        let doc = doc.map_err(|e| TestCaseError::fail(e.to_string()))?;
                        mine.documents.extend(doc.map(|d| d.id));
                    }
                    // Its own item may be settled already by an earlier call: refused by field, not found never.
                    (Err(Error::Invalid { .. }), None) => ensure(own, || {
                        format!("{call:?}: another's item refused as invalid")
                    })?,
                    (Err(Error::NotFound { .. }), None) => {
                        ensure(!own, || format!("{call:?}: its own document was not found"))?
                    }
                    (got, want) => ensure(matches!(&got, Err(e) if refused(&want, e)), || {
                        format!("{call:?}: {got:?} where {want:?} was due")
                    })?,
                }
            }
        }
    }
    // Nothing of the neighbour or the stranger changed: their requests, and what they owe.
    for (shop, h) in [(a, &neighbour), (b, &stranger)] {
        let open = shop
            .cs
            .open_items(shop.w.tenant, h.partner.id, Some(day(28)))
            .await
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let untouched = open.iter().all(|o| o.settled.is_zero());
        ensure(open.len() == h.documents.len() && untouched, || {
            format!("another partner's open items changed: {open:?}")
        })?;
    }
    for (shop, h) in [(a, &neighbour), (b, &stranger)] {
        let q = crate::store::RequestQuery {
            partner: Some(h.partner.id),
            page: PageRequest::first(100),
            ..Default::default()
        };
        let now = shop
            .w
            .store()
            .query_requests(shop.w.tenant, &q)
            .await
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        ensure(now.items.len() == h.requests.len(), || {
            format!("another partner's requests changed: {:?}", now.items)
        })?;
    }
    Ok(())
}

/// The scope property test: `cases` random cases (see the module docs) on one backend.
///
/// # Panics
///
/// On the first case where a portal call returns or changes another partner's or tenant's row, or refuses with
/// anything but `Forbidden` for a missing right (or not found for a revoked representative).
pub fn run_portal_scope(
    store: Arc<dyn Store>,
    commerce: Arc<dyn CommerceStore>,
    block_on: &super::BlockOn<'_>,
    cases: u32,
) {
    let shops: Arc<std::sync::Mutex<Option<(Shop, Shop)>>> = Arc::default();
    {
        let (store, commerce, shops) = (store.clone(), commerce.clone(), shops.clone());
        block_on(Box::pin(async move {
            let a = Shop::new(&store, &commerce).await;
            let b = Shop::new(&store, &commerce).await;
            *shops.lock().expect("fixture") = Some((a, b));
        }));
    }
    let counter = std::sync::atomic::AtomicU64::new(0);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Default::default()
    });
    let result = runner.run(&case(), |c| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let shops = shops.clone();
        let out: Arc<std::sync::Mutex<Result<(), TestCaseError>>> =
            Arc::new(std::sync::Mutex::new(Ok(())));
        let slot = out.clone();
        super::block_on_case(
            block_on,
            Box::pin(async move {
                let guard = shops.lock().expect("fixture").take().expect("the shops");
                let r = run_case(&guard.0, &guard.1, n, &c).await;
                *shops.lock().expect("fixture") = Some(guard);
                *slot.lock().expect("result") = r;
            }),
        )?;
        let r = out.lock().expect("result").clone();
        r
    });
    if let Err(e) = result {
        panic!("a portal call crossed its partner's scope: {e}");
    }
}

/// How [`TestProvider`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderMode {
    /// Paid at once.
    Succeed,
    /// Refused (card declined).
    Fail,
    /// No answer: an error, as a timeout gives.
    TimeOut,
    /// Accepted; the confirmation comes later, through the host.
    ConfirmLater,
}

/// The in-crate payment provider for tests: answers as its mode says and remembers every attempt it was handed (by
/// key, in order).
#[derive(Debug)]
pub struct TestProvider {
    mode: std::sync::Mutex<ProviderMode>,
    started: std::sync::Mutex<Vec<String>>,
}

impl TestProvider {
    /// A provider answering as `mode`.
    pub fn new(mode: ProviderMode) -> Self {
        Self {
            mode: std::sync::Mutex::new(mode),
            started: std::sync::Mutex::default(),
        }
    }

    /// Answers as `mode` from now on.
    pub fn set(&self, mode: ProviderMode) {
        *self.mode.lock().unwrap_or_else(|p| p.into_inner()) = mode;
    }

    /// The keys of the attempts handed to it, in order.
    pub fn started(&self) -> Vec<String> {
        self.started
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[async_trait::async_trait]
impl crate::portal::PaymentProvider for TestProvider {
    async fn start(
        &self,
        attempt: &crate::portal::PaymentAttempt,
    ) -> crate::Result<crate::portal::ProviderAnswer> {
        use crate::portal::ProviderAnswer;
        let key = attempt.key().to_string();
        self.started
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(key.clone());
        let mode = *self.mode.lock().unwrap_or_else(|p| p.into_inner());
        match mode {
            ProviderMode::Succeed => Ok(ProviderAnswer::Confirmed {
                reference: format!("ref-{key}"),
            }),
            ProviderMode::ConfirmLater => Ok(ProviderAnswer::Pending {
                reference: format!("ref-{key}"),
            }),
            ProviderMode::Fail => Ok(ProviderAnswer::Failed {
                reason: "card declined".into(),
            }),
            ProviderMode::TimeOut => Err(Error::storage(
                crate::StorageErrorKind::Unavailable,
                "the payment gateway did not answer in time",
            )),
        }
    }
}

/// Paying open items: part of one, then a batch (the rest of it and part of another) at their residuals; the
/// statement changes at once. The same key twice pays once; a failed payment records nothing and frees its amounts;
/// a timed-out one stays started and a late confirmation (twice) records one payment; two tabs cannot reserve more
/// than is open; an overpayment, a zero or negative amount, a settled item, another partner's item, a mix of
/// currencies and an unknown key are refused by field; without the right, `Forbidden`.
pub async fn check_portal_payments(backend: &Arc<dyn crate::store::Backend>) {
    use crate::portal::{AttemptStatus, PayItem};
    use rust_decimal::Decimal;
    let store: Arc<dyn Store> = backend.clone();
    let commerce: Arc<dyn CommerceStore> = backend.clone();
    let shop = Shop::new(&store, &commerce).await;
    let provider = Arc::new(TestProvider::new(ProviderMode::Succeed));
    let portal = portal_of(&shop).with_payment_provider(provider.clone());
    let acme = customer_with_contact(&shop, "Acme").await;
    let rival = customer_with_contact(&shop, "Rival").await;
    let invoice = |n: &str, who: &Partner, price: &str, ccy: &str| {
        NewDocument::invoice(n, who.id, day(2), ccy, vec![shop.line(0, "1", price, "1")])
            .due(day(9))
    };
    shop.cs
        .record_rate(&shop.w.ctx, "EUR", "RON", day(1), Decimal::new(5, 0))
        .await
        .expect("rate");
    let a1 = shop.record(invoice("A-1", &acme, "100", "RON")).await;
    let a2 = shop.record(invoice("A-2", &acme, "50", "RON")).await;
    let a3 = shop.record(invoice("A-3", &acme, "10", "EUR")).await;
    let r1 = shop.record(invoice("R-1", &rival, "70", "RON")).await;
    let me = accepted(&portal, &shop, &acme, Rights::all()).await;
    let open_of = |st: &crate::service::Statement, id| {
        st.open_items
            .iter()
            .find(|o| o.document == id)
            .map(|o| o.open)
    };
    let dec = |s: &str| s.parse::<Decimal>().expect("a decimal");
    let confirmed_as = |reference: &str| crate::portal::ProviderAnswer::Confirmed {
        reference: reference.to_string(),
    };
    // Pays `items` under `key` with the provider answering as `mode`.
    let pay = |mode, key: &'static str, items: Vec<PayItem>| {
        let (portal, me, provider) = (portal.clone(), me.clone(), provider.clone());
        async move {
            provider.set(mode);
            portal.pay(&me, key, &items).await.expect(key)
        }
    };
    // Part of one item.
    let items = vec![PayItem::part_of(a1.id, dec("30"))];
    let paid = pay(ProviderMode::Succeed, "k-1", items).await;
    assert_eq!(paid.status(), AttemptStatus::Confirmed);
    let st = portal.statement(&me, None).await.expect("statement");
    assert_eq!(open_of(&st, a1.id), Some(dec("70")));
    // The same key again: the same attempt, nothing more paid, the provider not asked again.
    let items = vec![PayItem::part_of(a1.id, dec("30"))];
    let again = pay(ProviderMode::Succeed, "k-1", items).await;
    assert_eq!(again.id(), paid.id());
    assert_eq!(provider.started(), ["k-1"]);
    // A batch: the rest of A-1 and 20 of A-2.
    let items = vec![PayItem::all_of(a1.id), PayItem::part_of(a2.id, dec("20"))];
    let batch = pay(ProviderMode::Succeed, "k-2", items).await;
    assert_eq!(batch.total(), dec("90"));
    let st = portal.statement(&me, None).await.expect("statement");
    assert_eq!(open_of(&st, a1.id), None, "settled: no longer open");
    assert_eq!(open_of(&st, a2.id), Some(dec("30")));
    // Refusals, by field; nothing is stored for them.
    let refuse = |items: Vec<PayItem>, key: &'static str| {
        let portal = portal.clone();
        let me = me.clone();
        async move { portal.pay(&me, key, &items).await.unwrap_err() }
    };
    let e = refuse(vec![PayItem::part_of(a2.id, dec("31"))], "k-over").await;
    assert_eq!(e.field(), Some("items[0].amount"), "{e:?}");
    for bad in ["0", "-5", "0.001"] {
        let e = refuse(vec![PayItem::part_of(a2.id, dec(bad))], "k-bad").await;
        assert_eq!(e.field(), Some("items[0].amount"), "{bad}: {e:?}");
    }
    let e = refuse(vec![PayItem::all_of(a1.id)], "k-settled").await;
    assert!(
        matches!(e, Error::NotFound { .. } | Error::Invalid { .. }),
        "{e:?}"
    );
    let e = refuse(vec![PayItem::all_of(r1.id)], "k-rival").await;
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    let e = refuse(
        vec![PayItem::all_of(a2.id), PayItem::all_of(a3.id)],
        "k-mix",
    )
    .await;
    assert_eq!(e.field(), Some("items"), "{e:?}");
    let e = refuse(vec![], "k-none").await;
    assert_eq!(e.field(), Some("items"), "{e:?}");
    assert_eq!(
        provider.started(),
        ["k-1", "k-2"],
        "refused payments never reach the provider"
    );
    // A failed payment records nothing and frees its amount.
    let failed = pay(ProviderMode::Fail, "k-3", vec![PayItem::all_of(a2.id)]).await;
    assert_eq!(failed.status(), AttemptStatus::Failed);
    assert_eq!(failed.failure(), Some("card declined"));
    let st = portal.statement(&me, None).await.expect("statement");
    assert_eq!(open_of(&st, a2.id), Some(dec("30")));
    // Timed out: started, reserving; a second tab cannot pay the reserved amount.
    let items = vec![PayItem::part_of(a2.id, dec("25"))];
    let late = pay(ProviderMode::TimeOut, "k-4", items).await;
    assert_eq!(late.status(), AttemptStatus::Started);
    provider.set(ProviderMode::Succeed);
    let e = refuse(vec![PayItem::part_of(a2.id, dec("6"))], "k-5").await;
    assert_eq!(e.field(), Some("items[0].amount"), "{e:?}");
    // The late confirmation, twice (and an unknown key): one payment, allocated once.
    let confirmed = portal
        .gateway_answer(shop.w.tenant, "k-4", confirmed_as("gw-44"))
        .await
        .expect("confirm");
    assert_eq!(confirmed.status(), AttemptStatus::Confirmed);
    assert_eq!(confirmed.reference(), Some("gw-44"));
    let twice = portal
        .gateway_answer(shop.w.tenant, "k-4", confirmed_as("gw-44"))
        .await
        .expect("again");
    assert_eq!(twice.version(), confirmed.version());
    assert!(matches!(
        portal
            .gateway_answer(shop.w.tenant, "k-unknown", confirmed_as("x"))
            .await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        portal
            .gateway_answer(shop.w.tenant, "k-3", confirmed_as("x"))
            .await,
        Err(Error::Invalid { .. })
    ));
    let st = portal.statement(&me, None).await.expect("statement");
    assert_eq!(open_of(&st, a2.id), Some(dec("5")));
    let balance = st
        .balances
        .iter()
        .find(|b| b.currency.code() == "RON")
        .expect("RON");
    assert_eq!(balance.receivable, dec("5"));
    // A pending one confirmed later through the host; the list shows every attempt, newest first.
    let items = vec![PayItem::all_of(a2.id)];
    let pending = pay(ProviderMode::ConfirmLater, "k-6", items).await;
    assert_eq!(pending.status(), AttemptStatus::Pending);
    portal
        .gateway_answer(shop.w.tenant, "k-6", confirmed_as("gw-6"))
        .await
        .expect("confirmed");
    let st = portal.statement(&me, None).await.expect("statement");
    assert_eq!(open_of(&st, a2.id), None);
    let keys: Vec<String> = portal
        .payments(&me)
        .await
        .expect("payments")
        .iter()
        .map(|a| a.key().to_string())
        .collect();
    assert_eq!(keys, ["k-6", "k-4", "k-3", "k-2", "k-1"]);
    // Each confirmed attempt is one payment document.
    for (key, number) in [
        ("k-1", paid.document_number()),
        ("k-4", late.document_number()),
    ] {
        let doc = commerce
            .fetch_commerce(
                shop.w.tenant,
                &crate::commerce::CommerceKey::DocumentNumber(
                    crate::commerce::DocumentKind::Payment,
                    number.clone(),
                ),
            )
            .await
            .expect("read");
        assert_eq!(doc.len(), 1, "{key}: {number}");
    }
    // Two confirmations at once (a webhook retried while the first is in flight): one payment document.
    let a4 = shop.record(invoice("A-4", &acme, "60", "RON")).await;
    let items = vec![PayItem::all_of(a4.id)];
    let twin = pay(ProviderMode::ConfirmLater, "k-8", items).await;
    let t = shop.w.tenant;
    let (x, y) = futures::future::join(
        portal.gateway_answer(t, "k-8", confirmed_as("gw-8")),
        portal.gateway_answer(t, "k-8", confirmed_as("gw-8")),
    )
    .await;
    assert_eq!(x.expect("first").status(), AttemptStatus::Confirmed);
    assert_eq!(y.expect("second").status(), AttemptStatus::Confirmed);
    let docs = commerce
        .fetch_commerce(
            t,
            &crate::commerce::CommerceKey::DocumentNumber(
                crate::commerce::DocumentKind::Payment,
                twin.document_number(),
            ),
        )
        .await
        .expect("read");
    assert_eq!(docs.len(), 1);
    let st = portal.statement(&me, None).await.expect("statement");
    assert_eq!(open_of(&st, a4.id), None);
    // Another partner may not reuse the key; without the right, forbidden.
    let other = accepted(&portal, &shop, &rival, Rights::none().with(Right::Pay)).await;
    let e = portal
        .pay(&other, "k-1", &[PayItem::all_of(r1.id)])
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("key"));
    portal
        .set_rights(
            &shop.w.ctx,
            other.representative(),
            2,
            Rights::none().with(Right::Statement),
        )
        .await
        .expect("rights");
    assert_eq!(
        portal
            .pay(&other, "k-7", &[PayItem::all_of(r1.id)])
            .await
            .unwrap_err(),
        Error::Forbidden { right: "pay" }
    );
}
