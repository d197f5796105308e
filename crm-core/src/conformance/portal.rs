//! The self-service portal on every adapter: the representative's lifecycle ([`check_portal_representatives`]),
//! what a representative reads and does ([`check_portal_reads_and_requests`]), and the property test of scope
//! ([`run_portal_scope`]): random partners, documents, requests and representatives with random rights, random portal
//! calls with ids of the partner's own records, of another partner's and of another tenant's; no row of another
//! partner or tenant ever comes back or changes, and a missing right is `Forbidden`.

use super::commerce::Shop;
use crate::actor::{Actor, Source};
use crate::commerce::{CommerceStore, NewDocument};
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
    let mut new = NewPartner::company(name).with_role(PartnerRole::Customer);
    new.owner = Some(shop.w.agent);
    new.contacts.push(NewContact {
        name: format!("{name} buyer"),
        email: Some(format!(
            "buyer@{}.example",
            name.to_lowercase().replace(' ', "-")
        )),
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
        .accept(shop.w.tenant, invited.token.as_str())
        .await
        .expect("accept")
}

fn portal_of(shop: &Shop) -> PortalService {
    PortalService::new(shop.cs.clone()).with_login_base("https://portal.example/login/")
}

/// Invitation, acceptance, a used or forged token, rights changes, revocation (the next call fails), reinvitation,
/// each in the partner's timeline; the invitation e-mail in the outbox with its link.
pub async fn check_portal_representatives(backend: &Arc<dyn crate::store::Backend>) {
    let store: Arc<dyn Store> = backend.clone();
    let commerce: Arc<dyn CommerceStore> = backend.clone();
    let outbox: Arc<dyn OutboxStore> = backend.clone();
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
    let mut silent = NewPartner::company("Silent").with_role(PartnerRole::Customer);
    silent.contacts.push(NewContact {
        name: "No Mail".into(),
        ..NewContact::default()
    });
    let silent = shop
        .w
        .crm
        .create_partner(&shop.w.ctx, silent)
        .await
        .expect("partner")
        .record;
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
        .accept(other.w.tenant, invited.token.as_str())
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("token"));
    let e = portal
        .accept(shop.w.tenant, "not-a-token")
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("token"));
    let me = portal
        .accept(shop.w.tenant, invited.token.as_str())
        .await
        .expect("accept");
    assert_eq!((me.partner(), me.representative()), (acme.id, id));
    assert_eq!(me.rights(), &statement);
    // The token is used up.
    let e = portal
        .accept(shop.w.tenant, invited.token.as_str())
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
        .accept(shop.w.tenant, again.token.as_str())
        .await
        .expect("accept again");
    assert!(portal.statement(&back, None).await.is_ok());
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
    let pending = outbox
        .list_outbox(
            shop.w.tenant,
            OutboxStatus::Pending,
            &PageRequest::first(50),
        )
        .await
        .expect("outbox");
    let links: Vec<String> = pending
        .items
        .iter()
        .filter(|m| m.payload.template.as_deref() == Some(crate::service::INVITATION_TEMPLATE))
        .map(|m| {
            m.payload.vars["login_url"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(links.len(), 2, "{links:?}");
    assert!(links.contains(&format!(
        "https://portal.example/login/{}",
        again.token.as_str()
    )));
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
        Just(Right::Requests)
    ];
    (
        holdings(),
        holdings(),
        holdings(),
        prop::collection::btree_set(right, 1..=3),
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
    let portal = portal_of(a);
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
    for call in &c.calls {
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
        }
    }
    // Nothing of the neighbour or the stranger changed.
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
