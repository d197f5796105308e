//! The CRM engine's self-service web portal: an [`axum::Router`] a host mounts in its own server, where the
//! authorised representatives of its partners (customers, vendors, employees) read their statement of account and
//! documents, open and follow requests, pay open items, ask for a new contract and keep their contacts.
//!
//! Every page is server-rendered HTML from [minijinja](https://docs.rs/minijinja) templates the host can replace
//! ([`Portal::template`]), in English or Romanian; no JavaScript. The portal holds no data of its own: each request
//! goes through [`PortalService`], which re-reads the representative and carries the tenant **and** the partner in
//! every read, so an id of another partner reads as not found (a 404 page) exactly like another tenant's.
//!
//! Security:
//! - login by a magic link ([`PortalService::request_login`]: single use, 15 minutes, one a minute); the link opens
//!   a page whose button signs in, so a mail scanner that fetches links does not use the token up;
//! - the session is a signed (HMAC-SHA256) `HttpOnly`, `SameSite=Strict` cookie naming the tenant, the
//!   representative, the session's epoch and its start; every request re-reads the representative
//!   ([`PortalService::session`]), so a revoked one or a logged-out session is refused at once, and a session
//!   older than [`Portal::session_hours`] ends;
//! - every form carries a CSRF token that must equal the one in a signed cookie (signed double submit);
//! - every response carries a strict Content-Security-Policy, `X-Frame-Options: DENY`, `nosniff`,
//!   `Referrer-Policy: no-referrer` (login links never leak through `Referer`) and `Cache-Control: no-store`.
//!
//! ```no_run
//! # async fn host(crm: crm_core::service::PortalService, tenant: crm_core::id::TenantId) -> Result<(), Box<dyn std::error::Error>> {
//! let secret = [7u8; 64]; // the host's own secret: at least 64 random bytes, kept across restarts
//! let portal = crm_portal::Portal::new(crm, tenant, &secret)?.mounted_at("/portal")?;
//! let app = axum::Router::new().nest("/portal", portal.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

// Handlers return `Result<Response, Response>` (axum's idiom: the error is the page that says what went wrong);
// a response is larger than clippy's default bound for an error, and boxing it would buy nothing.
#![allow(clippy::result_large_err)]

mod handlers;
mod texts;
mod web;

pub use texts::Lang;

use axum_extra::extract::cookie::Key;
use crm_core::commerce::Document;
use crm_core::id::TenantId;
use crm_core::service::PortalService;
use std::fmt;
use std::sync::Arc;

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "crm_portal_session";

/// The name of the CSRF cookie.
pub const CSRF_COOKIE: &str = "crm_portal_csrf";

/// The name of the language cookie.
pub const LANG_COOKIE: &str = "crm_portal_lang";

/// The templates the portal renders, by name: the host replaces any of them with [`Portal::template`]. Each
/// receives `t` (the texts in the visitor's language), `lang`, `base` (where the portal is mounted), `csrf` (the
/// token every form must post as `csrf`) and, once signed in, `account`; plus the page's own values.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("login.html", include_str!("../templates/login.html")),
    (
        "login_sent.html",
        include_str!("../templates/login_sent.html"),
    ),
    (
        "unsubscribe.html",
        include_str!("../templates/unsubscribe.html"),
    ),
    (
        "unsubscribed.html",
        include_str!("../templates/unsubscribed.html"),
    ),
    (
        "login_confirm.html",
        include_str!("../templates/login_confirm.html"),
    ),
    (
        "statement.html",
        include_str!("../templates/statement.html"),
    ),
    (
        "documents.html",
        include_str!("../templates/documents.html"),
    ),
    ("document.html", include_str!("../templates/document.html")),
    ("requests.html", include_str!("../templates/requests.html")),
    ("request.html", include_str!("../templates/request.html")),
    ("pay.html", include_str!("../templates/pay.html")),
    (
        "pay_confirm.html",
        include_str!("../templates/pay_confirm.html"),
    ),
    ("payment.html", include_str!("../templates/payment.html")),
    ("contacts.html", include_str!("../templates/contacts.html")),
    (
        "contracts.html",
        include_str!("../templates/contracts.html"),
    ),
    ("error.html", include_str!("../templates/error.html")),
];

/// The stylesheet served at `static/portal.css`.
const CSS: &str = include_str!("../templates/portal.css");

/// Prints a document as PDF for the portal's download link: `None` when there is no PDF of it (the page then says
/// "not available").
pub type DocumentPdf = dyn Fn(&Document) -> Option<Vec<u8>> + Send + Sync;

/// What can go wrong while setting the portal up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The secret that signs the cookies is shorter than 64 bytes.
    #[error("the portal's secret must be at least 64 bytes (got {0})")]
    ShortSecret(usize),
    /// A template does not parse.
    #[error("template {name}: {reason}")]
    Template {
        /// The template's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The base path is not `/` followed by path segments.
    #[error("the base path {0:?} must start with '/' and not end with one")]
    Base(String),
}

/// The self-service portal of one tenant: build it with [`Portal::new`], adjust it, then mount
/// [`Portal::router`] in the host's server (one portal per tenant; a host serving several tenants nests one router
/// per tenant, each under its own path or host name).
#[derive(Clone)]
pub struct Portal {
    /// The engine's portal service: every page reads through it.
    pub(crate) service: PortalService,
    pub(crate) tenant: TenantId,
    /// The templates, the host's overrides included.
    pub(crate) env: Arc<minijinja::Environment<'static>>,
    /// Signs the cookies.
    pub(crate) key: Key,
    pub(crate) base: String,
    /// The host's printer of documents.
    pub(crate) pdf: Option<Arc<DocumentPdf>>,
    pub(crate) secure: bool,
    pub(crate) session_hours: i64,
}

impl fmt::Debug for Portal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Portal")
            .field("tenant", &self.tenant)
            .field("base", &self.base)
            .field("secure", &self.secure)
            .field("session_hours", &self.session_hours)
            .finish_non_exhaustive()
    }
}

impl Portal {
    /// The portal of `tenant` over `service`, its cookies signed with `secret` (at least 64 random bytes the host
    /// keeps: a new secret signs everyone out). Mounted at the root, cookies `Secure`, sessions of 12 hours.
    ///
    /// # Errors
    ///
    /// [`SetupError::ShortSecret`] when `secret` is shorter than 64 bytes.
    pub fn new(
        service: PortalService,
        tenant: TenantId,
        secret: &[u8],
    ) -> Result<Self, SetupError> {
        let key = Key::try_from(secret).map_err(|_| SetupError::ShortSecret(secret.len()))?;
        let mut env = minijinja::Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template_owned(*name, *source)
                .map_err(|e| SetupError::Template {
                    name: (*name).to_string(),
                    reason: e.to_string(),
                })?;
        }
        Ok(Self {
            service,
            tenant,
            key,
            base: String::new(),
            secure: true,
            session_hours: 12,
            env: Arc::new(env),
            pdf: None,
        })
    }

    /// Where the host nests the router (`/portal`): links, redirects and the cookies' path start with it.
    ///
    /// # Errors
    ///
    /// [`SetupError::Base`] when `base` is neither empty nor `/` followed by segments without a trailing `/`.
    pub fn mounted_at(mut self, base: &str) -> Result<Self, SetupError> {
        if !base.is_empty() && (!base.starts_with('/') || base.ends_with('/')) {
            return Err(SetupError::Base(base.to_string()));
        }
        self.base = base.to_string();
        Ok(self)
    }

    /// Whether the cookies carry `Secure` (sent over HTTPS only): on by default; off only for plain-HTTP loopback
    /// (a development server, a test).
    pub fn secure_cookies(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// How long a session lasts from its login, in hours (1 to 720).
    pub fn session_hours(mut self, hours: u16) -> Self {
        self.session_hours = i64::from(hours.clamp(1, 720));
        self
    }

    /// Replaces the template `name` (one of [`TEMPLATES`]) with the host's `source`.
    ///
    /// # Errors
    ///
    /// [`SetupError::Template`] when the name is not one of the portal's, or the source does not parse.
    pub fn template(mut self, name: &str, source: &str) -> Result<Self, SetupError> {
        let fail = |reason: String| SetupError::Template {
            name: name.to_string(),
            reason,
        };
        if !TEMPLATES.iter().any(|(n, _)| *n == name) {
            return Err(fail("not a template of the portal".into()));
        }
        let mut env = (*self.env).clone();
        env.add_template_owned(name.to_string(), source.to_string())
            .map_err(|e| fail(e.to_string()))?;
        self.env = Arc::new(env);
        Ok(self)
    }

    /// How documents are printed for download (`None` from the printer, or no printer: "not available").
    pub fn document_pdf(
        mut self,
        printer: impl Fn(&Document) -> Option<Vec<u8>> + Send + Sync + 'static,
    ) -> Self {
        self.pdf = Some(Arc::new(printer));
        self
    }

    /// The portal's pages as a router to mount (nest it at the path given to [`Portal::mounted_at`]).
    pub fn router(self) -> axum::Router {
        web::router(self)
    }
}
