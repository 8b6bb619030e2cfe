//! A small OpenID provider for broker mode's refusals: it signs the user in
//! at once (no login step) and issues ID tokens that are right, or wrong in
//! the one way a test asks for (another issuer or audience, a bad
//! signature, an unknown `kid`, a missing or wrong nonce), with a key it
//! can rotate; it can also be down. It counts the reads of its key set.
//! (The real provider of the other broker tests is node oidc-provider.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dcr_gateway::clock::{Clock, SystemClock};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// How the provider's ID tokens are wrong, if they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdToken {
    Right,
    OtherIssuer,
    OtherAudience,
    BadSignature,
    UnknownKid,
    NoNonce,
    WrongNonce,
    Expired,
}

/// An ES256 key with its id.
struct Key {
    kid: String,
    pem: String,
    jwk: Value,
}

impl Key {
    fn generate(kid: &str) -> Self {
        let pair = rcgen::KeyPair::generate().unwrap();
        let raw = pair.public_key_raw();
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&raw[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&raw[33..65]),
        });
        Self {
            kid: kid.to_owned(),
            pem: pair.serialize_pem(),
            jwk,
        }
    }

    fn sign(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_owned());
        let key = EncodingKey::from_ec_pem(self.pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }
}

struct OpState {
    issuer: String,
    client_id: String,
    key: Key,
    id_token: IdToken,
    down: bool,
    /// The nonce of each code issued.
    codes: BTreeMap<String, String>,
    key_reads: usize,
    refreshes: usize,
    /// Keys published beside the signing key.
    extra_keys: Vec<Value>,
    /// A refusal (status, error) for refreshes, if told.
    refresh_refusal: Option<(u16, &'static str)>,
    /// The user a refresh's ID token names, if not the sign-in's.
    refresh_subject: Option<String>,
}

/// The running provider.
#[derive(Clone)]
pub struct FakeOp {
    pub issuer: String,
    state: Arc<Mutex<OpState>>,
}

impl FakeOp {
    /// A provider whose only client is `client_id` (any secret).
    pub async fn start(client_id: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(OpState {
            issuer: issuer.clone(),
            client_id: client_id.to_owned(),
            key: Key::generate("key-1"),
            id_token: IdToken::Right,
            down: false,
            codes: BTreeMap::new(),
            key_reads: 0,
            refreshes: 0,
            extra_keys: Vec::new(),
            refresh_refusal: None,
            refresh_subject: None,
        }));
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { issuer, state }
    }

    /// From now on, ID tokens are wrong as `how` says.
    pub fn id_tokens(&self, how: IdToken) {
        self.state.lock().unwrap().id_token = how;
    }

    /// Replaces the signing key with a new one, `kid`.
    pub fn rotate_key(&self, kid: &str) {
        self.state.lock().unwrap().key = Key::generate(kid);
    }

    /// Takes the provider down (every endpoint answers 503), or back up.
    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// Publishes `keys` beside the signing key (first in the set).
    pub fn publish_extra_keys(&self, keys: Vec<Value>) {
        self.state.lock().unwrap().extra_keys = keys;
    }

    /// Refreshes are refused with `status` and `error` (or answered again).
    pub fn refuse_refreshes(&self, refusal: Option<(u16, &'static str)>) {
        self.state.lock().unwrap().refresh_refusal = refusal;
    }

    /// A refresh's ID token names `subject`.
    pub fn refresh_for(&self, subject: &str) {
        self.state.lock().unwrap().refresh_subject = Some(subject.to_owned());
    }

    /// How many times its key set was read.
    pub fn key_reads(&self) -> usize {
        self.state.lock().unwrap().key_reads
    }

    /// How many refreshes it answered.
    pub fn refreshes(&self) -> usize {
        self.state.lock().unwrap().refreshes
    }
}

type Shared = State<Arc<Mutex<OpState>>>;

fn unavailable() -> Response {
    StatusCode::SERVICE_UNAVAILABLE.into_response()
}

async fn discovery(State(state): Shared) -> Response {
    let state = state.lock().unwrap();
    if state.down {
        return unavailable();
    }
    let issuer = &state.issuer;
    axum::Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    }))
    .into_response()
}

async fn jwks(State(state): Shared) -> Response {
    let mut state = state.lock().unwrap();
    if state.down {
        return unavailable();
    }
    state.key_reads += 1;
    let mut keys = state.extra_keys.clone();
    keys.push(state.key.jwk.clone());
    axum::Json(json!({ "keys": keys })).into_response()
}

/// Signs the user in at once: back to the callback with a code.
async fn authorize(
    State(state): Shared,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let mut state = state.lock().unwrap();
    if state.down {
        return unavailable();
    }
    assert_eq!(query["client_id"], state.client_id);
    assert_eq!(query["code_challenge_method"], "S256");
    let code = format!("code-{}", state.codes.len());
    state.codes.insert(code.clone(), query["nonce"].clone());
    let mut back = url::Url::parse(&query["redirect_uri"]).unwrap();
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &query["state"]);
    Redirect::to(back.as_str()).into_response()
}

async fn token(State(state): Shared, body: Bytes) -> Response {
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let mut state = state.lock().unwrap();
    if state.down {
        return unavailable();
    }
    let nonce = match form["grant_type"].as_str() {
        "authorization_code" => match state.codes.remove(&form["code"]) {
            Some(nonce) => Some(nonce),
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"error": "invalid_grant"})),
                )
                    .into_response();
            }
        },
        _ => {
            if let Some((status, error)) = state.refresh_refusal {
                let status = StatusCode::from_u16(status).unwrap();
                return (status, axum::Json(json!({ "error": error }))).into_response();
            }
            state.refreshes += 1;
            None
        }
    };
    let now = SystemClock.now_unix();
    let sub = match (&nonce, &state.refresh_subject) {
        (None, Some(other)) => other.clone(),
        _ => "dana".to_owned(),
    };
    let mut claims = json!({
        "iss": state.issuer, "aud": state.client_id, "sub": sub,
        "iat": now, "exp": now + 300,
        "email": format!("{sub}@example.test"), "groups": ["staff", "<b>ops</b>"],
    });
    if let Some(nonce) = nonce {
        claims["nonce"] = json!(nonce);
    }
    let mut kid = state.key.kid.clone();
    let mut signer = None;
    match state.id_token {
        IdToken::Right => {}
        IdToken::OtherIssuer => claims["iss"] = json!("https://elsewhere.example"),
        IdToken::OtherAudience => claims["aud"] = json!("someone-else"),
        IdToken::BadSignature => signer = Some(Key::generate("other")),
        IdToken::UnknownKid => kid = "no-such-key".into(),
        IdToken::NoNonce => {
            claims.as_object_mut().unwrap().remove("nonce");
        }
        IdToken::WrongNonce => claims["nonce"] = json!("not-the-nonce"),
        IdToken::Expired => claims["exp"] = json!(now - 3600),
    }
    let id_token = signer.as_ref().unwrap_or(&state.key).sign(&kid, &claims);
    axum::Json(json!({
        "access_token": format!("at-{now}-{}", state.refreshes),
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
        "refresh_token": format!("rt-{}", state.refreshes),
        "scope": "openid",
    }))
    .into_response()
}
