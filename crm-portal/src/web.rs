//! The router, the cookies (session, CSRF, language), the security headers, and how pages and errors render.

use crate::handlers as h;
use crate::texts::Lang;
use crate::{Portal, CSRF_COOKIE, LANG_COOKIE, SESSION_COOKIE};
use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request, State};
use axum::http::header::{self, HeaderValue};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::cookie::{Cookie, CookieJar, Key, SameSite, SignedCookieJar};
use crm_core::id::RepresentativeId;
use crm_core::portal::Principal;
use crm_core::service::Account;
use crm_core::Error;
use minijinja::Value;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The router's state: the portal.
pub(crate) type App = Portal;

impl FromRef<Portal> for Key {
    fn from_ref(p: &Portal) -> Key {
        p.key.clone()
    }
}

pub(crate) fn router(portal: Portal) -> Router {
    Router::new()
        .route("/", get(h::statement))
        .route("/chart.svg", get(h::chart))
        .route("/login", get(h::login_form).post(h::login_send))
        .route(
            "/login/{token}",
            get(h::login_confirm).post(h::login_finish),
        )
        .route(
            "/unsubscribe/{token}",
            get(h::unsubscribe_confirm).post(h::unsubscribe_finish),
        )
        .route("/logout", post(h::logout))
        .route("/lang/{code}", get(h::set_lang))
        .route("/documents", get(h::documents))
        .route("/documents/{id}", get(h::document))
        .route("/documents/{id}/pdf", get(h::document_pdf))
        .route("/requests", get(h::requests).post(h::open_request))
        .route("/requests/{id}", get(h::request))
        .route("/requests/{id}/reply", post(h::reply))
        .route("/pay", get(h::pay_form).post(h::pay))
        .route("/payments/{key}", get(h::payment))
        .route("/contacts", get(h::contacts).post(h::add_contact))
        .route("/contacts/{id}/remove", post(h::remove_contact))
        .route("/contracts", get(h::contracts))
        .route("/contracts/ask", post(h::ask_for_contract))
        .route("/quotations/{id}/answer", post(h::answer_quotation))
        .route("/static/portal.css", get(h::css))
        .fallback(h::not_found)
        .layer(middleware::from_fn_with_state(portal.clone(), guard))
        .with_state(portal)
}

/// What every request carries into its handler: the language, the CSRF token of this browser.
#[derive(Debug, Clone)]
pub(crate) struct Visit {
    pub lang: Lang,
    pub csrf: String,
}

/// Sets the CSRF cookie when the browser has none, and the security headers on every response.
async fn guard(
    State(app): State<App>,
    jar: SignedCookieJar,
    mut req: Request,
    next: Next,
) -> Response {
    let lang = jar
        .get(LANG_COOKIE)
        .and_then(|c| Lang::parse(c.value()))
        .or_else(|| {
            req.headers()
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|h| h.to_str().ok())
                .map(Lang::from_accept)
        })
        .unwrap_or_default();
    let known = jar
        .get(CSRF_COOKIE)
        .map(|c| c.value().to_string())
        .filter(|v| v.len() == 64);
    let (csrf, fresh) = match known {
        Some(v) => (v, false),
        None => (random_hex(), true),
    };
    req.extensions_mut().insert(Visit {
        lang,
        csrf: csrf.clone(),
    });
    let mut res = next.run(req).await;
    if fresh {
        res = (jar.add(app.cookie(CSRF_COOKIE, csrf, None)), res).into_response();
    }
    let h = res.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in set {
        h.insert(name, HeaderValue::from_static(value));
    }
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    res
}

impl<S: Send + Sync> FromRequestParts<S> for Visit {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Visit>()
            .cloned()
            .ok_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// The one segment a route captures (an id, a token, a key). One that does not decode (not UTF-8) names nothing:
/// the not-found page, never a bare 400.
#[derive(Debug, Clone)]
pub(crate) struct Seg(pub String);

impl FromRequestParts<App> for Seg {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<String>::from_request_parts(parts, app).await {
            Ok(axum::extract::Path(s)) => Ok(Seg(s)),
            Err(_) => {
                let visit = Visit::from_request_parts(parts, app)
                    .await
                    .map_err(IntoResponse::into_response)?;
                Err(app.message(&visit, None, StatusCode::NOT_FOUND, "not_found", None))
            }
        }
    }
}

/// An id from the route, typed: one that does not parse names nothing, so it is the not-found page.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Id<T>(pub T);

impl<T: std::str::FromStr + Send> FromRequestParts<App> for Id<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let Seg(raw) = Seg::from_request_parts(parts, app).await?;
        match raw.parse().ok() {
            Some(id) => Ok(Id(id)),
            None => {
                let visit = Visit::from_request_parts(parts, app)
                    .await
                    .map_err(IntoResponse::into_response)?;
                Err(app.message(&visit, None, StatusCode::NOT_FOUND, "not_found", None))
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfField {
    #[serde(default)]
    pub(crate) csrf: String,
}

/// A posted form whose `csrf` field is this browser's token; its fields as `T` (each form's struct defaults what
/// is missing, so the engine, not the extractor, says what is wrong with a value).
#[derive(Debug)]
pub(crate) struct Checked<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest<App> for Checked<T> {
    type Rejection = Response;

    async fn from_request(req: Request, app: &App) -> Result<Self, Self::Rejection> {
        let visit = req
            .extensions()
            .get::<Visit>()
            .cloned()
            .ok_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())?;
        let body = Bytes::from_request(req, app)
            .await
            .map_err(IntoResponse::into_response)?;
        let sent: CsrfField = serde_urlencoded::from_bytes(&body).unwrap_or(CsrfField {
            csrf: String::new(),
        });
        app.check_csrf(&visit, &sent.csrf)?;
        serde_urlencoded::from_bytes(&body)
            .map(Checked)
            .map_err(|e| {
                let detail = Some(format!("form: {e}"));
                app.message(
                    &visit,
                    None,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    detail,
                )
            })
    }
}

/// 64 hex digits of the operating system's randomness.
pub(crate) fn random_hex() -> String {
    let mut b = [0u8; 32];
    // The OS generator failing is a broken machine; the all-zero fallback is refused as a token by `check_csrf`.
    if getrandom::fill(&mut b).is_err() {
        return "0".repeat(64);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The session a signed cookie names: `tenant.representative.epoch.started` (UUIDs, the epoch, Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionCookie {
    pub tenant: uuid::Uuid,
    pub representative: uuid::Uuid,
    pub epoch: u32,
    pub started: i64,
}

impl SessionCookie {
    pub fn encode(&self) -> String {
        format!(
            "{}.{}.{}.{}",
            self.tenant, self.representative, self.epoch, self.started
        )
    }

    pub fn decode(s: &str) -> Option<Self> {
        let mut it = s.split('.');
        let out = Self {
            tenant: it.next()?.parse().ok()?,
            representative: it.next()?.parse().ok()?,
            epoch: it.next()?.parse().ok()?,
            started: it.next()?.parse().ok()?,
        };
        it.next().is_none().then_some(out)
    }
}

/// A signed-in representative: the principal as read again for this request, and who it is.
#[derive(Debug, Clone)]
pub(crate) struct Me {
    pub app: App,
    pub who: Principal,
    pub account: Account,
    pub visit: Visit,
}

impl Me {
    /// The page for an engine error, as this representative sees it.
    pub(crate) fn fail(&self, e: Error) -> Response {
        self.app.error(&self.visit, Some(self), e)
    }
}

impl FromRequestParts<App> for Me {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let visit = Visit::from_request_parts(parts, app)
            .await
            .map_err(IntoResponse::into_response)?;
        let jar = SignedCookieJar::<Key>::from_request_parts(parts, app)
            .await
            .map_err(IntoResponse::into_response)?;
        if CookieJar::from_headers(&parts.headers)
            .get(SESSION_COOKIE)
            .is_none()
        {
            // Never signed in: to the login page.
            return Err(Redirect::to(&app.link("/login")).into_response());
        }
        let ended = || app.ended(&visit, jar.clone());
        // A cookie whose signature does not verify (forged or altered) reads as absent in the signed jar.
        let cookie = jar
            .get(SESSION_COOKIE)
            .and_then(|c| SessionCookie::decode(c.value()))
            .ok_or_else(ended)?;
        let now = app.service.now().timestamp();
        let fresh = cookie.started <= now && now - cookie.started < app.session_hours * 3600;
        if cookie.tenant != *app.tenant.as_uuid() || !fresh {
            return Err(ended());
        }
        // A representative revoked or logged out since is a session that ended; anything else is its own page.
        let refused = |e| match e {
            Error::NotFound { .. } => ended(),
            e => app.error(&visit, None, e),
        };
        let id = RepresentativeId::from_uuid(cookie.representative);
        let session = app.service.session(app.tenant, id, cookie.epoch).await;
        let who = session.map_err(refused)?;
        let account = app.service.account(&who).await.map_err(refused)?;
        Ok(Me {
            app: app.clone(),
            who,
            account,
            visit,
        })
    }
}

impl Portal {
    /// `path` under the portal's base.
    pub(crate) fn link(&self, path: &str) -> String {
        // The root of a nested router is the base itself (`/portal`), not `/portal/`.
        if path == "/" && !self.base.is_empty() {
            return self.base.clone();
        }
        format!("{}{}", self.base, path)
    }

    /// A cookie of the portal: `HttpOnly`, `SameSite=Strict`, on the portal's path, `Secure` unless turned off.
    pub(crate) fn cookie(
        &self,
        name: &'static str,
        value: String,
        max_age_hours: Option<i64>,
    ) -> Cookie<'static> {
        let path = if self.base.is_empty() {
            "/".to_string()
        } else {
            self.base.clone()
        };
        let mut c = Cookie::build((name, value))
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(self.secure)
            .path(path);
        if let Some(h) = max_age_hours {
            c = c.max_age(cookie::time::Duration::hours(h));
        }
        c.build()
    }

    /// The page `name` with `values`, in the visit's language, as the signed-in `me` when there is one.
    pub(crate) fn page(
        &self,
        visit: &Visit,
        me: Option<&Me>,
        name: &str,
        status: StatusCode,
        values: Value,
    ) -> Response {
        let ctx = minijinja::context! {
            t => visit.lang.texts(),
            lang => visit.lang.code(),
            base => self.base.clone(),
            home => self.link("/"),
            csrf => visit.csrf.clone(),
            account => me.map(|m| account_view(&m.account)),
            ..values
        };
        let rendered = self.env.get_template(name).and_then(|t| t.render(ctx));
        match rendered {
            Ok(html) => (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html,
            )
                .into_response(),
            Err(e) => {
                tracing::error!(template = name, error = %e, "portal template failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the page cannot be shown",
                )
                    .into_response()
            }
        }
    }

    /// The page for an engine error: 404 for not found (another partner's or tenant's id too), 403 for a missing
    /// right, 422 with the field and reason for bad input, 409 for a conflict, 503 for the store.
    pub(crate) fn error(&self, visit: &Visit, me: Option<&Me>, e: Error) -> Response {
        let (status, key, detail) = match &e {
            Error::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found", None),
            Error::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden", None),
            Error::Invalid { field, reason } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                Some(format!("{field}: {reason}")),
            ),
            Error::Conflict { .. } | Error::AlreadyExists { .. } => {
                (StatusCode::CONFLICT, "conflict", None)
            }
            _ => {
                tracing::error!(error = %e, "portal request failed");
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable", None)
            }
        };
        self.message(visit, me, status, key, detail)
    }

    /// The error page with text `key` and an optional detail.
    pub(crate) fn message(
        &self,
        visit: &Visit,
        me: Option<&Me>,
        status: StatusCode,
        key: &str,
        detail: Option<String>,
    ) -> Response {
        let values = minijinja::context! { message_key => key, detail => detail };
        self.page(visit, me, "error.html", status, values)
    }

    /// The "session ended" page, the session cookie cleared.
    fn ended(&self, visit: &Visit, jar: SignedCookieJar) -> Response {
        let jar = jar.remove(self.cookie(SESSION_COOKIE, String::new(), None));
        let page = self.message(visit, None, StatusCode::UNAUTHORIZED, "session_ended", None);
        (jar, page).into_response()
    }

    /// Refuses a form whose CSRF token is not this browser's.
    pub(crate) fn check_csrf(&self, visit: &Visit, sent: &str) -> Result<(), Response> {
        use subtle::ConstantTimeEq;
        let ok = sent.len() == 64
            && visit.csrf != "0".repeat(64)
            && bool::from(sent.as_bytes().ct_eq(visit.csrf.as_bytes()));
        if ok {
            Ok(())
        } else {
            Err(self.message(visit, None, StatusCode::FORBIDDEN, "form_expired", None))
        }
    }
}

#[derive(Serialize)]
struct AccountView {
    partner: String,
    representative: String,
    customer: bool,
    vendor: bool,
    employee: bool,
    rights: Vec<&'static str>,
}

fn account_view(a: &Account) -> AccountView {
    use crm_core::partner::PartnerRole;
    AccountView {
        partner: a.partner.clone(),
        representative: a.representative.clone(),
        customer: a.roles.contains(&PartnerRole::Customer)
            || a.roles.contains(&PartnerRole::Prospect),
        vendor: a.roles.contains(&PartnerRole::Vendor),
        employee: a.roles.contains(&PartnerRole::Employee),
        rights: a.rights.iter().map(|r| r.as_str()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_cookie_reads_back_and_nothing_else_does() {
        let c = SessionCookie {
            tenant: uuid::Uuid::now_v7(),
            representative: uuid::Uuid::now_v7(),
            epoch: 3,
            started: 1_700_000_000,
        };
        assert_eq!(SessionCookie::decode(&c.encode()), Some(c));
        for bad in ["", "a.b.c.d", &format!("{}.x", c.encode()), "..."] {
            assert_eq!(SessionCookie::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn tokens_are_64_hex_digits_and_differ() {
        let (a, b) = (random_hex(), random_hex());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
