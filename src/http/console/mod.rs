//! The operator console (`[console] enabled = true`): server-rendered
//! pages under `/console`, with no script and nothing fetched from
//! elsewhere. Operators sign in with an operator token
//! (`dcr-gateway operator create`); a sealed cookie then holds the session
//! ([`session`]). Pages: the clients, with filters and paging by key
//! ([`clients`]), each client with its trail and the delete and
//! rotate-secret actions; what the gateway did per hour ([`activity`]);
//! the provider's health, the last reconcile and the metadata documents
//! held ([`provider`]). Console routes answer no CORS: no other origin's
//! script may read them.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::HttpState;
use super::extract::CallerIp;
use super::routes::Routes;
use crate::audit::AuditEvent;
use crate::clock::Clock;
use crate::domain::OperatorToken;
use crate::reconcile::Reconciler;
use crate::store::directory::ClientDirectory;
use crate::store::front::CimdStore;
use crate::store::operators::{OperatorTokenRecord, OperatorTokens};
use crate::store::sealing::Sealer;
use error::ConsoleError;
use page::{Page, SignedIn, text, with_page_headers};
use session::{Session, Sessions, same_origin};

pub mod activity;
pub mod chart;
pub mod clients;
pub mod error;
pub mod page;
pub mod provider;
pub mod session;
pub mod settings;

pub use settings::ConsoleSettings;

/// What the console's pages read and act through.
pub struct Console {
    sessions: Sessions,
    operators: Arc<dyn OperatorTokens>,
    directory: Arc<dyn ClientDirectory>,
    documents: Arc<dyn CimdStore>,
    reconciler: Arc<Reconciler>,
    clock: Arc<dyn Clock>,
    /// The gateway's origin (`https://gw.example.com`), which form posts
    /// must come from.
    origin: String,
}

/// What the console is built from.
pub struct ConsoleParts {
    /// `[console]`.
    pub settings: ConsoleSettings,
    /// The gateway's public URL.
    pub public_url: String,
    /// The key sessions are sealed under.
    pub sealer: Sealer,
    /// The operator tokens.
    pub operators: Arc<dyn OperatorTokens>,
    /// The directory of clients.
    pub directory: Arc<dyn ClientDirectory>,
    /// The metadata documents' clients.
    pub documents: Arc<dyn CimdStore>,
    /// Reconcile, for its last report.
    pub reconciler: Arc<Reconciler>,
    /// The time.
    pub clock: Arc<dyn Clock>,
}

impl Console {
    /// The console of `parts`.
    #[must_use]
    pub fn new(parts: ConsoleParts) -> Self {
        let origin = url::Url::parse(&parts.public_url)
            .map(|url| url.origin().ascii_serialization())
            .unwrap_or_default();
        Self {
            sessions: Sessions::new(
                parts.sealer,
                &parts.public_url,
                parts.settings.session_lifetime.as_secs(),
            ),
            operators: parts.operators,
            directory: parts.directory,
            documents: parts.documents,
            reconciler: parts.reconciler,
            clock: parts.clock,
            origin,
        }
    }

    /// The signed-in operator of a request, if its session holds and its
    /// token is still good.
    async fn operator(&self, headers: &HeaderMap) -> Result<Option<Operator>, ConsoleError> {
        let Some(session) = self.sessions.presented(headers) else {
            return Ok(None);
        };
        let now = self.clock.now_unix();
        if session.expires_at <= now {
            return Ok(None);
        }
        let Some(token) = self.operators.operator_token(&session.token_id).await? else {
            return Ok(None);
        };
        if !token.usable(now) {
            return Ok(None);
        }
        let csrf = self.sessions.csrf_token(&session);
        Ok(Some(Operator {
            session,
            token,
            csrf,
        }))
    }

    /// The operator of a page request; without one, the way to sign in.
    async fn viewer(&self, headers: &HeaderMap) -> Result<Operator, ConsoleError> {
        self.operator(headers)
            .await?
            .ok_or(ConsoleError::SignInFirst)
    }

    /// The operator of a form post that came from the console's own page
    /// with the session's CSRF token; the form's fields.
    async fn actor(
        &self,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<(Operator, Form), ConsoleError> {
        let operator = self
            .operator(headers)
            .await?
            .ok_or(ConsoleError::NoSession)?;
        if !same_origin(headers, &self.origin) {
            return Err(ConsoleError::Forbidden(
                "the form was not posted from the console",
            ));
        }
        let form = Form::parse(body);
        let csrf = form.get("csrf").unwrap_or_default();
        if !self.sessions.csrf_matches(&operator.session, csrf) {
            return Err(ConsoleError::Forbidden(
                "the form's CSRF token is missing or wrong",
            ));
        }
        Ok((operator, form))
    }
}

/// Makes an operator token for `name`, lasting `lifetime` (or for ever)
/// from `now`, and stores its digest; the token is in clear only here.
pub async fn create_operator_token(
    tokens: &dyn OperatorTokens,
    name: &str,
    lifetime: Option<std::time::Duration>,
    now: i64,
) -> Result<(OperatorToken, OperatorTokenRecord), crate::store::StoreError> {
    let token = OperatorToken::generate();
    let record = OperatorTokenRecord {
        id: crate::domain::secret::random_base64url(9),
        hash: token.hash(),
        name: name.to_owned(),
        created_at: now,
        expires_at: lifetime.map(|lifetime| {
            now.saturating_add(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX))
        }),
        revoked: false,
    };
    tokens.insert_operator_token(&record).await?;
    Ok((token, record))
}

/// A signed-in operator.
pub struct Operator {
    session: Session,
    token: OperatorTokenRecord,
    csrf: String,
}

impl Operator {
    /// Who the audit trail says acted.
    #[must_use]
    pub fn actor(&self) -> String {
        self.token.actor()
    }

    /// The layout's view of the operator.
    #[must_use]
    pub fn signed_in(&self) -> SignedIn<'_> {
        SignedIn {
            name: &self.token.name,
            csrf: &self.csrf,
        }
    }

    /// The session's CSRF token, for its forms.
    #[must_use]
    pub fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The fields of an `application/x-www-form-urlencoded` body or query.
pub struct Form(Vec<(String, String)>);

impl Form {
    /// The fields of `bytes`.
    #[must_use]
    pub fn parse(bytes: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(bytes).into_owned().collect())
    }

    /// The first value of `name`, if given and not empty.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, value)| key == name && !value.is_empty())
            .map(|(_, value)| value.as_str())
    }
}

/// Adds the console's routes (none when `enabled` is false). None answers
/// CORS.
pub fn routes(routes: Routes<'_>, enabled: bool) -> Routes<'_> {
    if !enabled {
        return routes;
    }
    routes
        .plain("/console", get(home))
        .plain("/console/login", get(login_page).post(login))
        .plain("/console/logout", axum::routing::post(logout))
        .plain("/console/clients", get(clients::list))
        .plain("/console/clients/{client_id}", get(clients::show))
        .plain(
            "/console/clients/{client_id}/delete",
            get(clients::confirm_delete).post(clients::delete),
        )
        .plain(
            "/console/clients/{client_id}/rotate-secret",
            get(clients::confirm_rotation).post(clients::rotate),
        )
        .plain("/console/activity", get(activity::show))
        .plain("/console/provider", get(provider::show))
}

/// The console of the state; only its routes call this, and they exist
/// only when it does.
fn console(state: &HttpState) -> Result<&Arc<Console>, ConsoleError> {
    state
        .console
        .as_ref()
        .ok_or(ConsoleError::Forbidden("the console is off"))
}

/// `/console`: the clients, or signing in.
async fn home(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    match console(&state) {
        Ok(console) => match console.operator(&headers).await {
            Ok(Some(_)) => see_other("/console/clients", None),
            Ok(None) => ConsoleError::SignInFirst.into_response(),
            Err(error) => error.into_response(),
        },
        Err(error) => error.into_response(),
    }
}

/// The sign-in page.
async fn login_page() -> Response {
    login_form(StatusCode::OK, None)
}

/// The sign-in form, with what went wrong, if anything.
fn login_form(status: StatusCode, problem: Option<&str>) -> Response {
    let problem = problem
        .map(|problem| format!("<p role=\"alert\">{}</p>", text(problem)))
        .unwrap_or_default();
    Page {
        title: "Sign in",
        operator: None,
        body: format!(
            "{problem}<form method=\"post\" action=\"/console/login\">\
             <label>Operator token <input type=\"password\" name=\"token\" \
             autocomplete=\"off\" required></label> <button type=\"submit\">Sign in</button>\
             </form><p class=\"note\">Tokens are made with \
             <code>dcr-gateway operator create --name NAME</code>.</p>"
        ),
        status,
    }
    .into_response()
}

/// Signs an operator in with a token posted from the sign-in page.
async fn login(
    State(state): State<HttpState>,
    CallerIp(ip): CallerIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let console = match console(&state) {
        Ok(console) => console,
        Err(error) => return error.into_response(),
    };
    if !same_origin(&headers, &console.origin) {
        return ConsoleError::Forbidden("the form was not posted from the console").into_response();
    }
    let form = Form::parse(&body);
    let presented = OperatorToken::presented(form.get("token").unwrap_or_default());
    let now = console.clock.now_unix();
    let token = match console
        .operators
        .operator_token_by_hash(&presented.hash())
        .await
    {
        Ok(token) => token.filter(|token| token.usable(now)),
        Err(error) => return ConsoleError::from(error).into_response(),
    };
    let Some(token) = token else {
        if let Err(wait) = state.limits.check_failed_authentication(ip) {
            let mut response = login_form(
                StatusCode::TOO_MANY_REQUESTS,
                Some("Too many failed sign-ins."),
            );
            if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return response;
        }
        return login_form(
            StatusCode::UNAUTHORIZED,
            Some("That token is not a valid operator token."),
        );
    };
    let lifetime = i64::try_from(console.sessions.lifetime()).unwrap_or(i64::MAX);
    let expires_at = token
        .expires_at
        .map_or(now.saturating_add(lifetime), |end| {
            end.min(now.saturating_add(lifetime))
        });
    let session = Session::new(token.id.clone(), expires_at);
    let Some(cookie) = console.sessions.set(&session, now) else {
        return ConsoleError::Forbidden("the session could not be sealed").into_response();
    };
    let actor = token.actor();
    crate::audit::record(&AuditEvent {
        action: "console_sign_in",
        outcome: "success",
        ip: Some(ip),
        actor: Some(&actor),
        ..AuditEvent::default()
    });
    see_other("/console/clients", Some(&cookie))
}

/// Signs the operator out.
async fn logout(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let console = match console(&state) {
        Ok(console) => console,
        Err(error) => return error.into_response(),
    };
    match console.actor(&headers, &body).await {
        Ok(_) => see_other("/console/login", Some(&console.sessions.clear())),
        Err(error) => error.into_response(),
    }
}

/// A `303` to `location`, setting `cookie` if given.
fn see_other(location: &'static str, cookie: Option<&str>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, HeaderValue::from_static(location));
    if let Some(cookie) = cookie.and_then(|c| HeaderValue::from_str(c).ok()) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    with_page_headers(response)
}

/// The page of a handler's outcome.
fn answered(outcome: Result<Response, ConsoleError>) -> Response {
    outcome.unwrap_or_else(IntoResponse::into_response)
}
