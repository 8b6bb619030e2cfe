//! Calls to the provider's token and revocation endpoints: a form POSTed
//! with a client's credentials, and the answer read under a size cap. A
//! provider that cannot be reached, or answers 5xx, is
//! `temporarily_unavailable`. When spans are exported, each call is a span
//! of its own ([`crate::logging::traces::provider_call`]).

use axum::http::{HeaderValue, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tracing::Instrument;

use super::error::FrontError;
use crate::error_text::with_causes;
use crate::logging::traces;
use crate::provider::urlencode;

/// Largest provider answer read.
const MAX_ANSWER_BYTES: usize = 65_536;

/// The provider's answer. `Debug` leaves out the body, which holds tokens.
pub struct ProviderAnswer {
    /// Its status.
    pub status: StatusCode,
    /// Its `Content-Type`.
    pub content_type: Option<HeaderValue>,
    /// Its body.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for ProviderAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderAnswer")
            .field("status", &self.status)
            .field(
                "body",
                &format_args!("[{} bytes, redacted]", self.body.len()),
            )
            .finish_non_exhaustive()
    }
}

/// How a call authenticates a client at the provider. `Debug` leaves out
/// secrets.
pub enum Credentials<'a> {
    /// A public client: `client_id` in the form.
    ClientId(&'a str),
    /// A client secret, in the `Authorization` header (RFC 6749 §2.3.1).
    SecretBasic {
        /// The client id.
        id: &'a str,
        /// Its secret.
        secret: &'a str,
    },
    /// A client secret, in the form.
    SecretPost {
        /// The client id.
        id: &'a str,
        /// Its secret.
        secret: &'a str,
    },
    /// A signed client assertion (RFC 7523 §2.2).
    Assertion {
        /// The client id.
        id: &'a str,
        /// The JWT.
        assertion: String,
    },
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, id) = match self {
            Self::ClientId(id) => ("ClientId", id),
            Self::SecretBasic { id, .. } => ("SecretBasic", id),
            Self::SecretPost { id, .. } => ("SecretPost", id),
            Self::Assertion { id, .. } => ("Assertion", id),
        };
        write!(f, "{kind}({id}, [redacted])")
    }
}

/// Which of the provider's endpoints a call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// The token endpoint (RFC 6749 §3.2).
    Token,
    /// The revocation endpoint (RFC 7009).
    Revocation,
}

impl Endpoint {
    /// The call's name as an operation (`token`, `revocation`).
    fn operation(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Revocation => "revocation",
        }
    }
}

/// POSTs `form` to `url`, the `endpoint` of the provider `provider` (its
/// kind, as spans name it), with `credentials`.
pub async fn post_form(
    http: &reqwest::Client,
    provider: &'static str,
    endpoint: Endpoint,
    url: &str,
    credentials: Credentials<'_>,
    form: Vec<(&str, String)>,
) -> Result<ProviderAnswer, FrontError> {
    let span = traces::provider_call(provider, endpoint.operation());
    let answer = send_form(http, url, credentials, form)
        .instrument(span.clone())
        .await;
    let (outcome, failed) = match &answer {
        Ok(answer) if answer.status.is_success() => ("ok", false),
        Ok(_) => ("refused", false),
        Err(_) => ("unavailable", true),
    };
    traces::provider_call_ended(&span, outcome, failed);
    answer
}

/// [`post_form`]'s request and answer.
async fn send_form(
    http: &reqwest::Client,
    url: &str,
    credentials: Credentials<'_>,
    mut form: Vec<(&str, String)>,
) -> Result<ProviderAnswer, FrontError> {
    let mut request = http
        .post(url)
        .header(reqwest::header::ACCEPT, "application/json");
    match credentials {
        Credentials::ClientId(id) => form.push(("client_id", id.to_owned())),
        Credentials::SecretPost { id, secret } => {
            form.push(("client_id", id.to_owned()));
            form.push(("client_secret", secret.to_owned()));
        }
        Credentials::SecretBasic { id, secret } => {
            // RFC 6749 §2.3.1: each part form-encoded before Basic.
            let pair = format!("{}:{}", urlencode(id), urlencode(secret));
            let value = format!("Basic {}", STANDARD.encode(pair));
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        Credentials::Assertion { id, assertion } => {
            form.push(("client_id", id.to_owned()));
            form.push((
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
            ));
            form.push(("client_assertion", assertion));
        }
    }
    let response = request
        .form(&form)
        .send()
        .await
        .map_err(|e| FrontError::unavailable(&with_causes(&e)))?;
    let status = response.status();
    if status.is_server_error() {
        return Err(FrontError::unavailable(&format!(
            "the provider's endpoint {url} answered {status}"
        )));
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .cloned();
    let body = crate::outbound::read_capped(response, MAX_ANSWER_BYTES)
        .await
        .map_err(|e| FrontError::unavailable(&e.to_string()))?;
    Ok(ProviderAnswer {
        status,
        content_type,
        body,
    })
}
