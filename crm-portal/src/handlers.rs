//! The pages: each reads through [`crm_core::service::PortalService`] as the signed-in representative.

use crate::texts::Lang;
use crate::web::{random_hex, App, Checked, Id, Me, Seg, SessionCookie, Visit};
use crate::{CSRF_COOKIE, CSS, LANG_COOKIE, SESSION_COOKIE};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::SignedCookieJar;
use chrono::{Datelike, NaiveDate};
use crm_core::commerce::{Document, DocumentKind, OpenItem};
use crm_core::id::{ContactId, ContractId, DocumentId, QuotationId, RequestId};
use crm_core::kinds::QuotationStatus;
use crm_core::money::Currency;
use crm_core::page::PageRequest;
use crm_core::partner::NewContact;
use crm_core::portal::{AttemptStatus, PayItem, PaymentAttempt};
use crm_core::service::{PortalRequest, PortalRequestKind};
use crm_core::Error;
use minijinja::context;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

type Page = Result<Response, Response>;

/// How many documents one page of the documents list shows.
const DOCUMENTS_PER_PAGE: u32 = 20;

fn ok(app: &App, me: &Me, name: &str, values: minijinja::Value) -> Page {
    Ok(app.page(&me.visit, Some(me), name, StatusCode::OK, values))
}

/// An id from a URL: one that does not parse names nothing, so it reads as not found.
fn id_of<T: FromStr>(raw: &str, entity: &'static str) -> Result<T, Error> {
    raw.parse().map_err(|_| Error::not_found(entity, raw))
}

fn money(amount: Decimal, currency: Currency) -> String {
    let digits = currency.minor_digits();
    format!(
        "{:.*} {}",
        digits as usize,
        amount.round_dp(digits),
        currency.code()
    )
}

fn kind_key(kind: DocumentKind) -> &'static str {
    match kind {
        DocumentKind::Invoice => "invoice",
        DocumentKind::CreditNote => "credit_note",
        DocumentKind::VendorBill => "vendor_bill",
        DocumentKind::Payment => "payment_doc",
    }
}

// ------------------------------------------------------------------ logging in and out

pub(crate) async fn login_form(State(app): State<App>, visit: Visit) -> Response {
    app.page(&visit, None, "login.html", StatusCode::OK, context! {})
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct LoginForm {
    email: String,
}

pub(crate) async fn login_send(
    State(app): State<App>,
    visit: Visit,
    Checked(f): Checked<LoginForm>,
) -> Page {
    app.service
        .request_login(app.tenant, &f.email)
        .await
        .map_err(|e| app.error(&visit, None, e))?;
    Ok(app.page(&visit, None, "login_sent.html", StatusCode::OK, context! {}))
}

pub(crate) async fn login_confirm(
    State(app): State<App>,
    visit: Visit,
    Seg(token): Seg,
) -> Response {
    let values = context! { token => token };
    app.page(&visit, None, "login_confirm.html", StatusCode::OK, values)
}

/// The page an unsubscribe link opens: one button, so a mail scanner fetching the link unsubscribes nobody.
pub(crate) async fn unsubscribe_confirm(
    State(app): State<App>,
    visit: Visit,
    Seg(token): Seg,
) -> Response {
    let values = context! { token => token };
    app.page(&visit, None, "unsubscribe.html", StatusCode::OK, values)
}

/// The unsubscribe: from the page's form (its CSRF token checked) or a mail client's one-click request (RFC 8058:
/// the body `List-Unsubscribe=One-Click`, no cookies; the token in the URL is the capability).
pub(crate) async fn unsubscribe_finish(
    State(app): State<App>,
    visit: Visit,
    Seg(token): Seg,
    body: axum::body::Bytes,
) -> Page {
    let one_click = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
        .unwrap_or_default()
        .iter()
        .any(|(k, v)| k == "List-Unsubscribe" && v == "One-Click");
    if !one_click {
        let sent: crate::web::CsrfField =
            serde_urlencoded::from_bytes(&body).unwrap_or(crate::web::CsrfField {
                csrf: String::new(),
            });
        app.check_csrf(&visit, &sent.csrf)?;
    }
    app.service
        .unsubscribe(app.tenant, &token)
        .await
        .map_err(|e| app.error(&visit, None, e))?;
    Ok(app.page(
        &visit,
        None,
        "unsubscribed.html",
        StatusCode::OK,
        context! {},
    ))
}

/// A form with nothing but its CSRF token.
#[derive(Debug, Deserialize)]
pub(crate) struct Nothing {}

pub(crate) async fn login_finish(
    State(app): State<App>,
    visit: Visit,
    jar: SignedCookieJar,
    Seg(token): Seg,
    Checked(_): Checked<Nothing>,
) -> Page {
    let who = app
        .service
        .login(app.tenant, &token)
        .await
        .map_err(|e| app.error(&visit, None, e))?;
    let session = SessionCookie {
        tenant: *app.tenant.as_uuid(),
        representative: *who.representative().as_uuid(),
        epoch: who.session_epoch(),
        started: app.service.now().timestamp(),
    };
    let cookie = app.cookie(SESSION_COOKIE, session.encode(), Some(app.session_hours));
    // A new CSRF token for the new session.
    let csrf = app.cookie(CSRF_COOKIE, random_hex(), None);
    let jar = jar.add(cookie).add(csrf);
    Ok((jar, Redirect::to(&app.link("/"))).into_response())
}

pub(crate) async fn logout(me: Me, jar: SignedCookieJar, Checked(_): Checked<Nothing>) -> Page {
    let app = &me.app;
    app.service
        .logout(&me.who)
        .await
        .map_err(|e| app.error(&me.visit, Some(&me), e))?;
    let jar = jar.remove(app.cookie(SESSION_COOKIE, String::new(), None));
    Ok((jar, Redirect::to(&app.link("/login"))).into_response())
}

pub(crate) async fn set_lang(
    State(app): State<App>,
    jar: SignedCookieJar,
    Seg(code): Seg,
) -> Response {
    let lang = Lang::parse(&code).unwrap_or_default();
    let jar = jar.add(app.cookie(LANG_COOKIE, lang.code().to_string(), Some(24 * 365)));
    (jar, Redirect::to(&app.link("/"))).into_response()
}

pub(crate) async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

pub(crate) async fn not_found(State(app): State<App>, visit: Visit) -> Response {
    app.message(&visit, None, StatusCode::NOT_FOUND, "not_found", None)
}

// ------------------------------------------------------------------ the statement

#[derive(Debug, Serialize)]
struct BalanceView {
    currency: &'static str,
    receivable: String,
    payable: String,
    overdue: String,
    has_receivable: bool,
    has_payable: bool,
    has_overdue: bool,
}

#[derive(Debug, Serialize)]
struct OpenItemView {
    id: String,
    number: String,
    kind: &'static str,
    issued: String,
    due: String,
    total: String,
    settled: String,
    open: String,
    open_plain: String,
    days_overdue: i64,
    payable: bool,
}

fn open_item_view(o: &OpenItem) -> OpenItemView {
    OpenItemView {
        id: o.document.to_string(),
        number: o.number.clone(),
        kind: kind_key(o.kind),
        issued: o.issue_date.to_string(),
        due: o.due_date.map(|d| d.to_string()).unwrap_or_default(),
        total: money(o.total, o.currency),
        settled: money(o.settled, o.currency),
        open: money(o.open, o.currency),
        open_plain: o.open.round_dp(o.currency.minor_digits()).to_string(),
        days_overdue: o.days_overdue,
        payable: o.kind == DocumentKind::Invoice && o.open > Decimal::ZERO,
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct AsOf {
    as_of: Option<String>,
}

pub(crate) async fn statement(me: Me, Query(q): Query<AsOf>) -> Page {
    let app = &me.app;
    let fail = |e| me.fail(e);
    let as_of = match q.as_of.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        Some(d) => Some(
            NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| fail(Error::invalid("as_of", "a date as YYYY-MM-DD")))?,
        ),
        None => None,
    };
    let st = app.service.statement(&me.who, as_of).await.map_err(fail)?;
    let balances: Vec<BalanceView> = st
        .balances
        .iter()
        .map(|b| BalanceView {
            currency: b.currency.code(),
            receivable: money(b.receivable, b.currency),
            payable: money(b.payable, b.currency),
            overdue: money(b.overdue, b.currency),
            has_receivable: b.receivable != Decimal::ZERO,
            has_payable: b.payable != Decimal::ZERO,
            has_overdue: b.overdue > Decimal::ZERO,
        })
        .collect();
    let items: Vec<OpenItemView> = st.open_items.iter().map(open_item_view).collect();
    let can_pay =
        me.who.rights().has(crm_core::portal::Right::Pay) && items.iter().any(|i| i.payable);
    ok(
        app,
        &me,
        "statement.html",
        context! { as_of => st.as_of.to_string(), balances, items, can_pay },
    )
}

/// The last day of the month `back` months before `day`'s.
fn month_end(day: NaiveDate, back: u32) -> Option<NaiveDate> {
    let first = day.with_day(1)?;
    let start = first.checked_sub_months(chrono::Months::new(back))?;
    start.checked_add_months(chrono::Months::new(1))?.pred_opt()
}

pub(crate) async fn chart(me: Me) -> Page {
    let app = &me.app;
    let fail = |e| me.fail(e);
    let today = app.service.today();
    let mut days: Vec<NaiveDate> = (1..=6).rev().filter_map(|b| month_end(today, b)).collect();
    days.push(today);
    let history = app
        .service
        .balance_history(&me.who, &days)
        .await
        .map_err(fail)?;
    // The currency of the most recent balance (the first one the partner has).
    let currency = history
        .iter()
        .rev()
        .find_map(|(_, b)| b.first().map(|x| x.currency));
    let bars: Vec<crm_reports::Bar> = history
        .iter()
        .map(|(d, b)| {
            let value = b
                .iter()
                .find(|x| Some(x.currency) == currency)
                .map_or(Decimal::ZERO, |x| x.receivable - x.payable);
            crm_reports::Bar {
                label: d.to_string(),
                value,
                note: String::new(),
            }
        })
        .collect();
    let texts = me.visit.lang.texts();
    let title = texts.get("balance_chart").copied().unwrap_or_default();
    let axis = currency.map_or("", |c| c.code());
    let svg = crm_reports::bar_chart_svg(title, axis, &bars).map_err(|e| {
        tracing::error!(error = %e, "portal chart failed");
        app.message(
            &me.visit,
            Some(&me),
            StatusCode::INTERNAL_SERVER_ERROR,
            "unavailable",
            None,
        )
    })?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

// ------------------------------------------------------------------ documents

#[derive(Debug, Deserialize)]
pub(crate) struct After {
    after: Option<String>,
}

#[derive(Debug, Serialize)]
struct DocumentView {
    id: String,
    kind: &'static str,
    number: String,
    issued: String,
    due: String,
    total: String,
}

fn document_view(d: &Document) -> DocumentView {
    DocumentView {
        id: d.id().to_string(),
        kind: kind_key(d.kind()),
        number: d.number().to_string(),
        issued: d.issue_date().to_string(),
        due: d.due_date().map(|x| x.to_string()).unwrap_or_default(),
        total: money(d.total(), d.currency()),
    }
}

/// `2026-01-31_<uuid>`: the cursor of the next page.
fn parse_after(raw: &str) -> Result<(NaiveDate, DocumentId), Error> {
    let bad = || Error::invalid("after", "not a page of this list");
    let (day, id) = raw.split_once('_').ok_or_else(bad)?;
    let day = NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| bad())?;
    Ok((day, id.parse().map_err(|_| bad())?))
}

pub(crate) async fn documents(me: Me, Query(q): Query<After>) -> Page {
    let app = &me.app;
    let fail = |e| me.fail(e);
    let after = q
        .after
        .as_deref()
        .map(parse_after)
        .transpose()
        .map_err(fail)?;
    let docs = app
        .service
        .documents(&me.who, after, DOCUMENTS_PER_PAGE)
        .await
        .map_err(fail)?;
    let next = (docs.len() == DOCUMENTS_PER_PAGE as usize)
        .then(|| docs.last())
        .flatten()
        .map(|d| format!("{}_{}", d.issue_date(), d.id()));
    let docs: Vec<DocumentView> = docs.iter().map(document_view).collect();
    ok(app, &me, "documents.html", context! { docs, next })
}

pub(crate) async fn document(me: Me, Id(id): Id<DocumentId>) -> Page {
    let app = &me.app;
    let fail = |e| me.fail(e);
    let d = app.service.document(&me.who, id).await.map_err(fail)?;
    let c = d.currency();
    let lines: Vec<_> = d
        .lines()
        .iter()
        .map(|l| {
            context! {
                quantity => l.quantity.normalize().to_string(),
                unit_price => money(l.unit_price, c),
                net => money(l.net, c),
            }
        })
        .collect();
    let allocations: Vec<_> = d
        .allocations()
        .iter()
        .map(|a| context! { number => a.number.clone(), amount => money(a.amount, c) })
        .collect();
    let has_pdf = app.pdf.as_ref().is_some_and(|p| p(&d).is_some());
    ok(
        app,
        &me,
        "document.html",
        context! { doc => document_view(&d), lines, allocations, has_pdf },
    )
}

pub(crate) async fn document_pdf(me: Me, Id(id): Id<DocumentId>) -> Page {
    let app = &me.app;
    let fail = |e| me.fail(e);
    let d = app.service.document(&me.who, id).await.map_err(fail)?;
    match app.pdf.as_ref().and_then(|p| p(&d)) {
        Some(bytes) => {
            let name = format!(
                "attachment; filename=\"{}.pdf\"",
                d.number()
                    .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
            );
            Ok((
                [
                    (header::CONTENT_TYPE, "application/pdf".to_string()),
                    (header::CONTENT_DISPOSITION, name),
                ],
                bytes,
            )
                .into_response())
        }
        None => Err(app.message(
            &me.visit,
            Some(&me),
            StatusCode::NOT_FOUND,
            "pdf_not_available",
            None,
        )),
    }
}

// ------------------------------------------------------------------ requests

#[derive(Debug, Serialize)]
struct RequestView {
    id: String,
    title: String,
    kind: String,
    status: String,
    opened: String,
    description: String,
}

fn request_view(r: &crm_core::request::Request) -> RequestView {
    RequestView {
        id: r.id().to_string(),
        title: r.title().to_string(),
        kind: r
            .kind()
            .unwrap_or_default()
            .trim_start_matches("portal_")
            .to_string(),
        status: format!("status_{:?}", r.status()).to_lowercase(),
        opened: r.created_at().format("%Y-%m-%d %H:%M").to_string(),
        description: r.description().unwrap_or_default().to_string(),
    }
}

pub(crate) async fn requests(me: Me) -> Page {
    let app = &me.app;
    let fail = |e| me.fail(e);
    let page = app
        .service
        .requests(&me.who, PageRequest::first(100))
        .await
        .map_err(fail)?;
    let list: Vec<RequestView> = page.items.iter().map(request_view).collect();
    ok(app, &me, "requests.html", context! { requests => list })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NewRequestForm {
    kind: String,
    title: String,
    body: String,
}

pub(crate) async fn open_request(me: Me, Checked(f): Checked<NewRequestForm>) -> Page {
    let app = &me.app;
    let fail = |e| me.fail(e);
    let kind = match f.kind.as_str() {
        "question" => PortalRequestKind::Question,
        "complaint" => PortalRequestKind::Complaint,
        "information" => PortalRequestKind::Information,
        _ => return Err(fail(Error::invalid("kind", "choose what it is"))),
    };
    let ask = PortalRequest {
        kind,
        title: f.title,
        body: f.body,
    };
    let r = app.service.open_request(&me.who, ask).await.map_err(fail)?;
    Ok(Redirect::to(&app.link(&format!("/requests/{}", r.id()))).into_response())
}

pub(crate) async fn request(me: Me, Id(id): Id<RequestId>) -> Page {
    let app = &me.app;
    let fail = |e| me.fail(e);
    let r = app.service.request(&me.who, id).await.map_err(fail)?;
    let replies = app.service.replies(&me.who, id).await.map_err(fail)?;
    let replies: Vec<_> = replies
        .iter()
        .map(|c| {
            let mine = matches!(
                c.author(),
                crm_core::actor::Actor::PartnerRepresentative { .. }
            );
            context! {
                body => c.body().to_string(),
                at => c.created_at().format("%Y-%m-%d %H:%M").to_string(),
                mine => mine,
            }
        })
        .collect();
    ok(
        app,
        &me,
        "request.html",
        context! { request => request_view(&r), replies },
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ReplyForm {
    body: String,
}

pub(crate) async fn reply(me: Me, Id(id): Id<RequestId>, Checked(f): Checked<ReplyForm>) -> Page {
    let app = &me.app;
    let fail = |e| me.fail(e);
    app.service
        .reply(&me.who, id, &f.body)
        .await
        .map_err(fail)?;
    Ok(Redirect::to(&app.link(&format!("/requests/{id}"))).into_response())
}

// ------------------------------------------------------------------ paying

pub(crate) async fn pay_form(me: Me) -> Page {
    let app = &me.app;
    let fail = |e| me.fail(e);
    // Reading the statement needs its right; paying needs its own: check it before showing the form.
    me.who
        .rights()
        .require(crm_core::portal::Right::Pay)
        .map_err(fail)?;
    let st = app.service.statement(&me.who, None).await.map_err(fail)?;
    let items: Vec<OpenItemView> = st
        .open_items
        .iter()
        .map(open_item_view)
        .filter(|i| i.payable)
        .collect();
    // The attempt's idempotency key: the same form posted twice pays once.
    let key = random_hex();
    ok(app, &me, "pay.html", context! { items, key })
}

/// The pay form as posted: `csrf`, `key`, `item` (once per chosen document), `amount_<document>`, and `confirm`:
/// without it, the confirmation page (each item, its amount, the total), which posts the same fields with it; with
/// it, the payment.
pub(crate) async fn pay(me: Me, Checked(fields): Checked<Vec<(String, String)>>) -> Page {
    let app = &me.app;
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    let fail = |e| me.fail(e);
    let mut items = Vec::new();
    for (i, (_, raw)) in fields.iter().filter(|(k, _)| k == "item").enumerate() {
        // An id that does not parse names no open item of the partner's.
        let document: DocumentId = id_of(raw, "open item").map_err(fail)?;
        let typed = get(&format!("amount_{raw}")).trim();
        let amount = if typed.is_empty() {
            None
        } else {
            Some(Decimal::from_str(typed).map_err(|_| {
                fail(Error::invalid(
                    format!("items[{i}].amount"),
                    "not an amount",
                ))
            })?)
        };
        items.push(PayItem { document, amount });
    }
    if get("confirm") != "1" {
        return confirm_page(app, &me, get("key"), &items).await;
    }
    // A currency, when the form names one, must be known and the items'.
    let named = get("currency").trim();
    if !named.is_empty() {
        let c = Currency::parse(named).map_err(fail)?;
        let st = app.service.statement(&me.who, None).await.map_err(fail)?;
        let chosen = st
            .open_items
            .iter()
            .filter(|o| items.iter().any(|i| i.document == o.document));
        if chosen.into_iter().any(|o| o.currency != c) {
            return Err(fail(Error::invalid("currency", "not the items' currency")));
        }
    }
    let attempt = app
        .service
        .pay(&me.who, get("key"), &items)
        .await
        .map_err(fail)?;
    Ok(Redirect::to(&app.link(&format!("/payments/{}", attempt.key()))).into_response())
}

/// What the chosen items come to, for the payer to confirm: nothing is paid or reserved yet. An item that is not
/// among the partner's open invoices reads as not found.
async fn confirm_page(app: &App, me: &Me, key: &str, items: &[PayItem]) -> Page {
    let fail = |e| app.error(&me.visit, Some(me), e);
    if items.is_empty() {
        return Err(fail(Error::invalid(
            "items",
            "choose at least one open item",
        )));
    }
    let st = app.service.statement(&me.who, None).await.map_err(fail)?;
    let mut lines = Vec::with_capacity(items.len());
    let mut total = Decimal::ZERO;
    let mut currency = None;
    for (i, item) in items.iter().enumerate() {
        let o = st
            .open_items
            .iter()
            .find(|o| o.document == item.document && o.kind == DocumentKind::Invoice)
            .ok_or_else(|| fail(Error::not_found("open item", item.document)))?;
        if currency.is_some_and(|c| c != o.currency) {
            return Err(fail(Error::invalid("items", "one currency per payment")));
        }
        currency = Some(o.currency);
        let amount = item.amount.unwrap_or(o.open);
        if amount <= Decimal::ZERO || amount > o.open {
            let why = format!("between 0 and the {} open on {}", o.open, o.number);
            return Err(fail(Error::invalid(format!("items[{i}].amount"), why)));
        }
        total = total
            .checked_add(amount)
            .ok_or_else(|| fail(Error::invalid("items", "too large")))?;
        lines.push(context! {
            id => o.document.to_string(),
            number => o.number.clone(),
            amount => money(amount, o.currency),
            plain => amount.normalize().to_string(),
        });
    }
    let total = currency.map(|c| money(total, c)).unwrap_or_default();
    ok(
        app,
        me,
        "pay_confirm.html",
        context! { lines, total, key => key.to_string() },
    )
}

fn attempt_view(a: &PaymentAttempt) -> minijinja::Value {
    let status = match a.status() {
        AttemptStatus::Confirmed => "confirmed",
        AttemptStatus::Failed => "failed",
        AttemptStatus::Started | AttemptStatus::Pending => "pending",
    };
    let items: Vec<_> = a
        .items()
        .iter()
        .map(|i| context! { number => i.number.clone(), amount => money(i.amount, a.currency()) })
        .collect();
    context! {
        key => a.key().to_string(),
        status => status,
        total => money(a.total(), a.currency()),
        failure => a.failure().map(str::to_string),
        items => items,
    }
}

pub(crate) async fn payment(me: Me, Seg(key): Seg) -> Page {
    let app = &me.app;
    let fail = |e| me.fail(e);
    let all = app.service.payments(&me.who).await.map_err(fail)?;
    let a = all
        .iter()
        .find(|a| a.key() == key)
        .ok_or_else(|| fail(Error::not_found("payment", &key)))?;
    ok(
        app,
        &me,
        "payment.html",
        context! { payment => attempt_view(a) },
    )
}

// ------------------------------------------------------------------ contacts

pub(crate) async fn contacts(me: Me) -> Page {
    let app = &me.app;
    let fail = |e| me.fail(e);
    let list = app.service.contacts(&me.who).await.map_err(fail)?;
    let list: Vec<_> = list
        .iter()
        .map(|c| {
            context! {
                id => c.id.to_string(),
                name => c.name.clone(),
                role => c.role.clone().unwrap_or_default(),
                email => c.email.clone().unwrap_or_default(),
                phone => c.phone.clone().unwrap_or_default(),
                me => c.id == me.who.contact(),
            }
        })
        .collect();
    ok(app, &me, "contacts.html", context! { contacts => list })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ContactForm {
    name: String,
    role: String,
    email: String,
    phone: String,
}

fn some(s: String) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

pub(crate) async fn add_contact(me: Me, Checked(f): Checked<ContactForm>) -> Page {
    let app = &me.app;
    let fail = |e| me.fail(e);
    let c = NewContact {
        name: f.name,
        role: some(f.role),
        email: some(f.email),
        phone: some(f.phone),
        host_ref: None,
    };
    app.service.add_contact(&me.who, c).await.map_err(fail)?;
    Ok(Redirect::to(&app.link("/contacts")).into_response())
}

pub(crate) async fn remove_contact(
    me: Me,
    Id(id): Id<ContactId>,
    Checked(_): Checked<Nothing>,
) -> Page {
    let removed = me.app.service.remove_contact(&me.who, id).await;
    removed.map_err(|e| me.fail(e))?;
    Ok(Redirect::to(&me.app.link("/contacts")).into_response())
}

// ------------------------------------------------------------------ contracts and offers

pub(crate) async fn contracts(me: Me) -> Page {
    let app = &me.app;
    let fail = |e| me.fail(e);
    let rights = me.who.rights();
    let mut contracts = Vec::new();
    if rights.has(crm_core::portal::Right::Documents) {
        for c in app.service.contracts(&me.who).await.map_err(fail)? {
            let term = c.term();
            contracts.push(context! {
                id => c.id().to_string(),
                number => c.number().to_string(),
                starts => term.starts_on.to_string(),
                ends => term.ends_on.map(|d| d.to_string()).unwrap_or_default(),
                value => money(c.value().amount(), c.value().currency()),
            });
        }
    }
    let mut quotations = Vec::new();
    if rights.has(crm_core::portal::Right::Quotations) {
        for q in app.service.quotations(&me.who).await.map_err(fail)? {
            let total = &q.totals().total;
            quotations.push(context! {
                id => q.id().to_string(),
                number => q.number().to_string(),
                version => q.version(),
                valid_until => q.valid_until().to_string(),
                total => money(total.amount(), total.currency()),
                status => format!("status_{:?}", q.status()).to_lowercase(),
                open => q.status() == QuotationStatus::Sent,
            });
        }
    }
    let can_ask = rights.has(crm_core::portal::Right::Contracts);
    ok(
        app,
        &me,
        "contracts.html",
        context! { contracts, quotations, can_ask, asked => false },
    )
}

pub(crate) async fn ask_for_contract(me: Me, Checked(f): Checked<AskForm>) -> Page {
    let app = &me.app;
    let fail = |e| me.fail(e);
    let earlier: Option<ContractId> = some(f.contract)
        .map(|c| id_of(&c, "contract"))
        .transpose()
        .map_err(fail)?;
    let title = some(f.title).unwrap_or_else(|| "New offer".to_string());
    app.service
        .ask_for_contract(&me.who, &title, some(f.note), earlier)
        .await
        .map_err(fail)?;
    Ok(app.message(&me.visit, Some(&me), StatusCode::OK, "asked", None))
}

/// Asking for a new offer, or the renewal of `contract`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct AskForm {
    title: String,
    note: String,
    contract: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct AnswerForm {
    version: String,
    answer: String,
}

pub(crate) async fn answer_quotation(
    me: Me,
    Id(id): Id<QuotationId>,
    Checked(f): Checked<AnswerForm>,
) -> Page {
    let app = &me.app;
    let fail = |e| me.fail(e);
    let version: u64 = f
        .version
        .parse()
        .map_err(|_| fail(Error::invalid("version", "not a version")))?;
    let accept = match f.answer.as_str() {
        "accept" => true,
        "decline" => false,
        _ => return Err(fail(Error::invalid("answer", "accept or decline"))),
    };
    app.service
        .answer_quotation(&me.who, id, version, accept)
        .await
        .map_err(fail)?;
    Ok(Redirect::to(&app.link("/contracts")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_ends_count_back_across_years() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 15).expect("day");
        assert_eq!(month_end(d, 1), NaiveDate::from_ymd_opt(2026, 2, 28));
        assert_eq!(month_end(d, 3), NaiveDate::from_ymd_opt(2025, 12, 31));
        let min = NaiveDate::MIN;
        assert_eq!(month_end(min, 1), None, "no panic at the edge");
    }

    #[test]
    fn cursors_read_back_and_garbage_is_refused_by_field() {
        let id = DocumentId::new();
        let day = NaiveDate::from_ymd_opt(2026, 1, 31).expect("day");
        assert_eq!(parse_after(&format!("{day}_{id}")).ok(), Some((day, id)));
        for bad in ["", "x_y", "2026-13-01_x", &id.to_string()] {
            assert_eq!(parse_after(bad).unwrap_err().field(), Some("after"));
        }
    }

    #[test]
    fn amounts_show_the_currency_digits() {
        let ron = Currency::parse("RON").expect("RON");
        let jpy = Currency::parse("JPY").expect("JPY");
        assert_eq!(money(Decimal::new(12345, 1), ron), "1234.50 RON");
        assert_eq!(money(Decimal::new(12345, 1), jpy), "1234 JPY");
    }
}
