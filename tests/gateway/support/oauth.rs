//! What the Hydra and Okta fakes' authorization servers share, vendor
//! neutral: authorization requests waiting for the user, codes (single use,
//! bound to the client, the redirect URI and the PKCE challenge: RFC 6749
//! §4.1.3, RFC 7636 §4.6), the tokens issued and whether they are still
//! active, and how a client presented itself at a token or revocation
//! endpoint (RFC 6749 §2.3.1). Each fake adds its vendor's own rules,
//! answers and discovery document on top.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use dcr_gateway::clock::{Clock, SystemClock};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

/// An authorization request the vendor accepted, waiting for the user.
#[derive(Clone, Debug)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: Vec<String>,
    pub state: String,
    /// The PKCE challenge and its method (`S256` or `plain`).
    pub challenge: Option<(String, String)>,
    pub nonce: Option<String>,
}

/// What a redeemed code or a refresh token stands for: who signed in, to
/// which client, with which scopes, under which grant (all the tokens of one
/// sign-in share it).
#[derive(Clone, Debug)]
pub struct Grant {
    pub client_id: String,
    pub subject: String,
    pub scope: Vec<String>,
    pub nonce: Option<String>,
    pub id: u64,
}

impl Grant {
    /// Whether `scope` was granted.
    pub fn has(&self, scope: &str) -> bool {
        self.scope.iter().any(|s| s == scope)
    }
}

/// Why a code was not redeemed.
#[derive(Debug)]
pub enum CodeRefusal {
    /// Never issued.
    Unknown,
    /// Past its lifetime.
    Expired,
    /// Redeemed before, under this grant.
    Used(u64),
    /// Issued to another client.
    OtherClient,
    /// `redirect_uri` differs from the authorization request's.
    RedirectUri,
    /// The authorization request had a challenge and no verifier came.
    NoVerifier,
    /// The verifier does not match the challenge.
    Verifier,
}

struct Code {
    request: AuthorizationRequest,
    subject: String,
    issued: Instant,
    redeemed: Option<u64>,
}

struct Token {
    access: bool,
    grant: Grant,
    active: bool,
}

/// Tokens issued for one token request.
pub struct Issued {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub scope: String,
    pub expires_in: u64,
}

impl Issued {
    /// The RFC 6749 §5.1 answer, with `token_type`.
    pub fn answer(&self, token_type: &str) -> Value {
        let mut answer = json!({
            "access_token": self.access_token,
            "token_type": token_type,
            "expires_in": self.expires_in,
            "scope": self.scope,
        });
        if let Some(refresh) = &self.refresh_token {
            answer["refresh_token"] = json!(refresh);
        }
        if let Some(id_token) = &self.id_token {
            answer["id_token"] = json!(id_token);
        }
        answer
    }
}

#[derive(Default)]
struct State {
    pending: BTreeMap<String, AuthorizationRequest>,
    codes: BTreeMap<String, Code>,
    tokens: BTreeMap<String, Token>,
    grants: u64,
}

/// The authorization server's memory.
#[derive(Clone)]
pub struct Grants {
    state: Arc<Mutex<State>>,
    code_lifetime: Duration,
    /// Prefixes of the vendor's codes, access and refresh tokens.
    prefixes: [&'static str; 3],
}

/// A random value of `bytes` bytes, base64url.
pub fn random_value(bytes: usize) -> String {
    let random: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    URL_SAFE_NO_PAD.encode(random)
}

impl Grants {
    /// Codes live `code_lifetime`; codes and tokens start with `prefixes`
    /// (code, access token, refresh token).
    pub fn new(code_lifetime: Duration, prefixes: [&'static str; 3]) -> Self {
        Self {
            state: Arc::default(),
            code_lifetime,
            prefixes,
        }
    }

    /// Keeps `request` until the user signs in; the handle of the sign-in.
    pub fn begin(&self, request: AuthorizationRequest) -> String {
        let challenge = random_value(24);
        let mut state = self.state.lock().unwrap();
        state.pending.insert(challenge.clone(), request);
        challenge
    }

    /// The request waiting under `challenge`, taken (a sign-in ends once).
    pub fn take_pending(&self, challenge: &str) -> Option<AuthorizationRequest> {
        self.state.lock().unwrap().pending.remove(challenge)
    }

    /// A code for `request`, signed in as `subject`.
    pub fn code_for(&self, request: AuthorizationRequest, subject: &str) -> String {
        let code = format!("{}{}", self.prefixes[0], random_value(32));
        let mut state = self.state.lock().unwrap();
        state.codes.insert(
            code.clone(),
            Code {
                request,
                subject: subject.to_owned(),
                issued: Instant::now(),
                redeemed: None,
            },
        );
        code
    }

    /// Redeems `code` for `client_id` (RFC 6749 §4.1.3, RFC 7636 §4.6).
    pub fn redeem(
        &self,
        code: &str,
        client_id: &str,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
    ) -> Result<Grant, CodeRefusal> {
        let mut state = self.state.lock().unwrap();
        state.grants += 1;
        let id = state.grants;
        let Some(stored) = state.codes.get_mut(code) else {
            return Err(CodeRefusal::Unknown);
        };
        if let Some(grant) = stored.redeemed {
            return Err(CodeRefusal::Used(grant));
        }
        if stored.issued.elapsed() > self.code_lifetime {
            return Err(CodeRefusal::Expired);
        }
        let request = &stored.request;
        if request.client_id != client_id {
            return Err(CodeRefusal::OtherClient);
        }
        if redirect_uri != Some(request.redirect_uri.as_str()) {
            return Err(CodeRefusal::RedirectUri);
        }
        if let Some((challenge, method)) = &request.challenge {
            let Some(verifier) = verifier else {
                return Err(CodeRefusal::NoVerifier);
            };
            let derived = match method.as_str() {
                "S256" => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
                _ => verifier.to_owned(),
            };
            if !is_verifier(verifier) || &derived != challenge {
                return Err(CodeRefusal::Verifier);
            }
        }
        stored.redeemed = Some(id);
        Ok(Grant {
            client_id: client_id.to_owned(),
            subject: stored.subject.clone(),
            scope: request.scope.clone(),
            nonce: request.nonce.clone(),
            id,
        })
    }

    /// Issues an access token (and a refresh token when `refresh`) under
    /// `grant`, with an ID token when `openid` was granted; `issuer` signs.
    pub fn issue(&self, grant: &Grant, refresh: bool, issuer: &str) -> Issued {
        let access_token = format!("{}{}", self.prefixes[1], random_value(32));
        let refresh_token = refresh.then(|| format!("{}{}", self.prefixes[2], random_value(32)));
        let mut state = self.state.lock().unwrap();
        state.tokens.insert(
            access_token.clone(),
            Token {
                access: true,
                grant: grant.clone(),
                active: true,
            },
        );
        if let Some(refresh_token) = &refresh_token {
            state.tokens.insert(
                refresh_token.clone(),
                Token {
                    access: false,
                    grant: grant.clone(),
                    active: true,
                },
            );
        }
        Issued {
            access_token,
            refresh_token,
            id_token: grant.has("openid").then(|| id_token(issuer, grant)),
            scope: grant.scope.join(" "),
            expires_in: 3600,
        }
    }

    /// The grant of an active refresh token of `client_id`; with `rotate`,
    /// the token is spent by this use.
    pub fn refresh(&self, refresh_token: &str, client_id: &str, rotate: bool) -> Option<Grant> {
        let mut state = self.state.lock().unwrap();
        let token = state.tokens.get_mut(refresh_token)?;
        if token.access || !token.active || token.grant.client_id != client_id {
            return None;
        }
        if rotate {
            token.active = false;
        }
        Some(token.grant.clone())
    }

    /// Revokes `token` for `client_id` (RFC 7009 §2.1): `Err` when it was
    /// issued to another client; an unknown token is no error. With
    /// `cascade`, a refresh token takes every token of its grant along.
    pub fn revoke(&self, token: &str, client_id: &str, cascade: bool) -> Result<(), ()> {
        let mut state = self.state.lock().unwrap();
        let Some(found) = state.tokens.get_mut(token) else {
            return Ok(());
        };
        if found.grant.client_id != client_id {
            return Err(());
        }
        found.active = false;
        let grant = found.grant.id;
        if cascade && !found.access {
            drop(state);
            self.revoke_grant(grant);
        }
        Ok(())
    }

    /// Revokes every token issued under `grant`.
    pub fn revoke_grant(&self, grant: u64) {
        let mut state = self.state.lock().unwrap();
        for token in state.tokens.values_mut() {
            if token.grant.id == grant {
                token.active = false;
            }
        }
    }

    /// How many issued tokens are still active.
    pub fn active_tokens(&self) -> usize {
        let state = self.state.lock().unwrap();
        state.tokens.values().filter(|token| token.active).count()
    }

    /// The grant of an active access token.
    pub fn access(&self, access_token: &str) -> Option<Grant> {
        let state = self.state.lock().unwrap();
        let token = state.tokens.get(access_token)?;
        (token.access && token.active).then(|| token.grant.clone())
    }
}

/// Whether `redirect_uri` is, as text, one `client` registered (RFC 6749
/// §3.1.2.3).
pub fn registered_redirect(client: &Value, redirect_uri: &str) -> bool {
    strings(client, "redirect_uris")
        .iter()
        .any(|r| r == redirect_uri)
}

/// An authorization error sent back to the client's `redirect_uri` with its
/// `state` (RFC 6749 §4.1.2.1).
pub fn error_back(
    redirect_uri: &str,
    state: &str,
    code: &str,
    description: &str,
) -> axum::response::Response {
    found(&redirect_to(
        redirect_uri,
        &[
            ("error", code),
            ("error_description", description),
            ("state", state),
        ],
    ))
}

/// Whether `verifier` is a PKCE code verifier: 43 to 128 unreserved
/// characters (RFC 7636 §4.1).
fn is_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// The fakes' one RSA key (vendors sign ID tokens RS256), made once per
/// test process: its `kid` and encoding key, and its public JWK.
fn signing_key() -> &'static (jsonwebtoken::EncodingKey, Value) {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    static KEY: std::sync::OnceLock<(jsonwebtoken::EncodingKey, Value)> =
        std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let der = private.to_pkcs1_der().unwrap();
        let jwk = json!({
            "kty": "RSA", "alg": "RS256", "use": "sig", "kid": "fake-vendor-key",
            "n": URL_SAFE_NO_PAD.encode(private.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(private.e().to_bytes_be()),
        });
        (jsonwebtoken::EncodingKey::from_rsa_der(der.as_bytes()), jwk)
    })
}

/// The key set the fakes publish at their `jwks_uri`.
pub fn published_keys() -> Value {
    json!({ "keys": [signing_key().1] })
}

/// An ID token, signed RS256 by the fakes' key ([`published_keys`]).
fn id_token(issuer: &str, grant: &Grant) -> String {
    let now = SystemClock.now_unix();
    let mut claims = json!({
        "iss": issuer,
        "sub": grant.subject,
        "aud": grant.client_id,
        "iat": now,
        "exp": now + 3600,
    });
    if let Some(nonce) = &grant.nonce {
        claims["nonce"] = json!(nonce);
    }
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("fake-vendor-key".into());
    jsonwebtoken::encode(&header, &claims, &signing_key().0).unwrap()
}

/// The members of a form body, or what is wrong with it: not
/// `application/x-www-form-urlencoded`, or a member sent twice (RFC 6749
/// §3.2: "parameters MUST NOT be included more than once").
pub fn form_body(headers: &HeaderMap, body: &Bytes) -> Result<BTreeMap<String, String>, String> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return Err("Content-Type is not application/x-www-form-urlencoded".into());
    }
    let mut form = BTreeMap::new();
    for (name, value) in url::form_urlencoded::parse(body) {
        if form.insert(name.to_string(), value.into_owned()).is_some() {
            return Err(format!("form member `{name}` is sent more than once"));
        }
    }
    Ok(form)
}

/// How a client presented itself at a token or revocation endpoint.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented {
    /// `Authorization: Basic`, each part form-encoded (RFC 6749 §2.3.1).
    Basic { id: String, secret: String },
    /// `client_id` and `client_secret` in the form.
    Post { id: String, secret: String },
    /// `client_id` alone: a public client.
    Public { id: String },
    /// A JWT assertion (`client_assertion`).
    Assertion,
    /// Nothing at all.
    Nothing,
    /// More than one way at once.
    Several,
}

impl Presented {
    /// Reads the client's credentials from the request.
    pub fn read(headers: &HeaderMap, form: &BTreeMap<String, String>) -> Self {
        let basic = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .map(basic_pair);
        let secret = form.get("client_secret");
        let assertion = form.contains_key("client_assertion");
        let id = form.get("client_id").cloned();
        match (basic, secret, assertion) {
            (Some(Some((basic_id, secret))), None, false) => {
                if id.is_some_and(|id| id != basic_id) {
                    return Self::Several;
                }
                Self::Basic {
                    id: basic_id,
                    secret,
                }
            }
            (Some(None), _, _) => Self::Nothing,
            (None, Some(secret), false) => match id {
                Some(id) => Self::Post {
                    id,
                    secret: secret.clone(),
                },
                None => Self::Nothing,
            },
            (None, None, true) => Self::Assertion,
            (None, None, false) => id.map_or(Self::Nothing, |id| Self::Public { id }),
            _ => Self::Several,
        }
    }

    /// The `token_endpoint_auth_method` this presentation is.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Basic { .. } => "client_secret_basic",
            Self::Post { .. } => "client_secret_post",
            Self::Public { .. } => "none",
            Self::Assertion => "private_key_jwt",
            Self::Nothing | Self::Several => "",
        }
    }

    /// The client id and the secret presented, if any.
    pub fn credentials(&self) -> Option<(&str, Option<&str>)> {
        match self {
            Self::Basic { id, secret } | Self::Post { id, secret } => Some((id, Some(secret))),
            Self::Public { id } => Some((id, None)),
            _ => None,
        }
    }
}

/// The id and secret of a Basic credential, each form-decoded.
fn basic_pair(encoded: &str) -> Option<(String, String)> {
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let decode = |part: &str| -> String {
        url::form_urlencoded::parse(format!("x={part}").as_bytes())
            .next()
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default()
    };
    Some((decode(id), decode(secret)))
}

/// The text values of `client[member]`.
pub fn strings(client: &Value, member: &str) -> Vec<String> {
    client[member]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// `redirect_uri` with `params` added to its query.
pub fn redirect_to(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let mut url = Url::parse(redirect_uri).unwrap();
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
    }
    url.into()
}

/// A `302 Found` to `location`.
pub fn found(location: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::FOUND,
        [(header::LOCATION, location.to_owned())],
    )
        .into_response()
}

/// The Bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// An HTTP client that follows no redirect: a browser whose every hop the
/// test sees.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `Location` of a redirect, which `answer` must be, resolved against
/// the request's URL.
pub fn redirected(answer: &reqwest::Response) -> Url {
    assert!(
        answer.status().is_redirection(),
        "expected a redirect, got {}",
        answer.status()
    );
    let location = answer.headers()[header::LOCATION].to_str().unwrap();
    answer.url().join(location).unwrap()
}
