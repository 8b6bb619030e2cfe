//! The authorization front (`[front] enabled = true`) in front of a real
//! OpenID provider (node oidc-provider as an RFC 7591 upstream) and of the
//! Hydra and Okta fakes, driven over HTTP: the test plays the app and the
//! user, whose login step at the provider it drives through the provider's
//! own routes. The core flows run through each provider
//! ([`upstreams::through_each_upstream`]); the rest through oidc-provider.

mod broker;
mod broker_refusals;
mod broker_sdk;
mod browser;
mod cimd;
mod client_assertions;
mod gateway_tokens;
mod gateway_tokens_upstreams;
mod instances;
mod iss;
mod mcp;
mod refusals;
mod trust;
mod upstreams;
mod vendors;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use crate::support::oidc_provider::OidcProvider;
use crate::support::*;
use upstreams::{Upstream, through_each_upstream, userinfo};

/// The provider and front sections of a gateway in front of `upstream`.
fn front_toml(upstream: &impl Upstream) -> String {
    format!(
        "[provider]\n{}\ntimeout = \"5s\"\nreconcile_interval = \"0s\"\n[front]\nenabled = true\n",
        upstream.provider_keys()
    )
}

/// A gateway with the front on, in front of `upstream`.
async fn front_for(upstream: &impl Upstream) -> TestApp {
    spawn_app_with(&front_toml(upstream)).await
}

/// The registered redirect URI of the native clients here; the flows use
/// other ports.
const REGISTERED: &str = "http://127.0.0.1:4000/cb";

/// Registers a public native client through the gateway; its id.
async fn native_client(app: &TestApp) -> String {
    let client = app
        .register(&json!({
            "redirect_uris": [REGISTERED],
            "application_type": "native",
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "client_name": "Native app",
        }))
        .await;
    client["client_id"].as_str().unwrap().to_owned()
}

/// A PKCE verifier and its S256 challenge.
struct Pkce {
    verifier: String,
    challenge: String,
}

fn pkce(seed: &str) -> Pkce {
    let verifier = format!("{seed}-{}", "v".repeat(50));
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

/// An HTTP client that follows no redirect, as the test checks each hop.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `Location` of a redirect (which it must be), resolved against the
/// request's URL.
fn location(response: &reqwest::Response) -> Url {
    assert!(
        response.status().is_redirection(),
        "expected a redirect, got {}",
        response.status()
    );
    let location = response.headers()[LOCATION].to_str().unwrap();
    response.url().join(location).unwrap()
}

/// The value of `name` in `url`'s query.
fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// `/authorize` with `extra` parameters on top of a complete S256 request.
async fn authorize(
    app: &TestApp,
    client_id: &str,
    redirect_uri: &str,
    pkce: &Pkce,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let url = authorize_url(app, client_id, redirect_uri, pkce, extra);
    browser().get(url).send().await.unwrap()
}

/// The URL of [`authorize`]'s request.
fn authorize_url(
    app: &TestApp,
    client_id: &str,
    redirect_uri: &str,
    pkce: &Pkce,
    extra: &[(&str, &str)],
) -> String {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("state", "app-state-1"),
        ("scope", "openid"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    for (name, value) in extra {
        params.retain(|(kept, _)| kept != name);
        if !value.is_empty() {
            params.push((name, value));
        }
    }
    Url::parse_with_params(&app.url("/authorize"), &params)
        .unwrap()
        .into()
}

/// Plays the user `account` at `upstream` from its authorization URL: where
/// the provider sends the browser back (the gateway's callback, with the
/// provider's code and state, and its iss if it sends one).
async fn log_in(upstream: &impl Upstream, authorization_url: &Url, account: &str) -> Url {
    upstream.log_in(authorization_url, account).await
}

/// Runs `/authorize` → provider login → `/callback` for `client_id` with
/// `redirect_uri`, asking for the provider's scope that gets an ID token
/// and a refresh token; the app's redirect with the gateway's code.
async fn authorized(
    app: &TestApp,
    upstream: &impl Upstream,
    client_id: &str,
    redirect_uri: &str,
    pkce: &Pkce,
) -> Url {
    let scope = [("scope", upstream.scope())];
    let to_provider = location(&authorize(app, client_id, redirect_uri, pkce, &scope).await);
    assert!(to_provider.as_str().starts_with(&upstream.issuer()));
    assert_eq!(
        param(&to_provider, "redirect_uri").unwrap(),
        app.url("/callback")
    );
    assert_eq!(
        param(&to_provider, "code_challenge").unwrap(),
        pkce.challenge
    );
    let callback = log_in(upstream, &to_provider, "alice").await;
    assert!(callback.as_str().starts_with(&app.url("/callback")));
    location(&browser().get(callback).send().await.unwrap())
}

/// A page: no redirect, an HTML body naming the error.
pub(super) async fn assert_page(response: reqwest::Response, status: StatusCode, error: &str) {
    assert_eq!(response.status(), status);
    assert!(response.headers().get(LOCATION).is_none());
    assert!(
        response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let body = response.text().await.unwrap();
    assert!(body.contains(error), "{body}");
}

/// POSTs a form to the gateway's `/token`: status and JSON body.
async fn token(app: &TestApp, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = app
        .http
        .post(app.url("/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert_eq!(response.headers()["cache-control"], "no-store");
    (status, response.json().await.unwrap())
}

/// Redeems the code in `back` for `client_id`.
async fn redeem(app: &TestApp, client_id: &str, back: &Url, pkce: &Pkce) -> (StatusCode, Value) {
    let code = param(back, "code").unwrap();
    let mut redirect = back.clone();
    redirect.set_query(None);
    token(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", client_id),
            ("redirect_uri", redirect.as_str()),
            ("code_verifier", &pkce.verifier),
        ],
    )
    .await
}

through_each_upstream!(
    discovery_names_the_gateway_as_issuer_with_the_providers_keys,
    a_native_client_signs_in_on_another_loopback_port_and_refreshes,
    a_confidential_client_authenticates_with_client_secret_basic,
    a_confidential_client_authenticates_with_client_secret_post,
);

async fn discovery_names_the_gateway_as_issuer_with_the_providers_keys(upstream: &impl Upstream) {
    let app = front_for(upstream).await;
    let provider = app
        .http
        .get(format!(
            "{}/.well-known/openid-configuration",
            upstream.issuer()
        ))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let doc = app.get_json(path).await;
        assert_eq!(doc["issuer"], app.base, "{path}");
        assert_eq!(doc["authorization_endpoint"], app.url("/authorize"));
        assert_eq!(doc["token_endpoint"], app.url("/token"));
        assert_eq!(doc["registration_endpoint"], app.url("/register"));
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        assert!(
            doc["jwks_uri"]
                .as_str()
                .unwrap()
                .starts_with(&upstream.issuer())
        );
        assert_eq!(doc["jwks_uri"], provider["jwks_uri"]);
        assert_eq!(doc["userinfo_endpoint"], provider["userinfo_endpoint"]);
    }
    upstream.assert_clean();
}

async fn a_native_client_signs_in_on_another_loopback_port_and_refreshes(upstream: &impl Upstream) {
    let app = front_for(upstream).await;
    let client_id = native_client(&app).await;
    // The provider holds the gateway's callback, not the app's URI; the app
    // is still told its own.
    let read = app.service.show(&client_id).await.unwrap();
    assert_eq!(read.metadata.redirect_uris[0].as_str(), REGISTERED);

    let pkce = pkce("native");
    let redirect_uri = "http://127.0.0.1:53127/cb";
    let back = authorized(&app, upstream, &client_id, redirect_uri, &pkce).await;
    assert!(back.as_str().starts_with(redirect_uri), "{back}");
    assert_eq!(param(&back, "state").unwrap(), "app-state-1");
    assert_eq!(param(&back, "iss").unwrap(), app.base);

    let (status, tokens) = redeem(&app, &client_id, &back, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access_token = tokens["access_token"].as_str().unwrap();
    let (status, claims) = userinfo(upstream, access_token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(claims["sub"], "alice");

    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let (status, refreshed) = token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let renewed = refreshed["access_token"].as_str().unwrap();
    assert_ne!(renewed, access_token);
    assert_eq!(userinfo(upstream, renewed).await.0, StatusCode::OK);

    // Nothing the flow handed out is stored in clear.
    let bytes = std::fs::read(&app.db_path).unwrap();
    let code = param(&back, "code").unwrap();
    for secret in [code.as_str(), access_token, refresh_token] {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }
    upstream.assert_clean();
}

async fn a_confidential_client_authenticates_with_client_secret_basic(upstream: &impl Upstream) {
    a_confidential_client_authenticates_with_its_secret(upstream, "client_secret_basic").await;
}

async fn a_confidential_client_authenticates_with_client_secret_post(upstream: &impl Upstream) {
    a_confidential_client_authenticates_with_its_secret(upstream, "client_secret_post").await;
}

/// A client that registered `method` authenticates with its secret that
/// way; a wrong secret or none gets `invalid_client` from the gateway.
async fn a_confidential_client_authenticates_with_its_secret(
    upstream: &impl Upstream,
    method: &str,
) {
    let app = front_for(upstream).await;
    let redirect_uri = "http://127.0.0.1:4000/web";
    let client = app
        .register(&json!({
            "redirect_uris": [redirect_uri],
            "token_endpoint_auth_method": method,
            "grant_types": ["authorization_code"],
        }))
        .await;
    let client_id = client["client_id"].as_str().unwrap();
    let secret = client["client_secret"].as_str().unwrap();
    let pkce = pkce("confidential");
    let back = authorized(&app, upstream, client_id, redirect_uri, &pkce).await;
    let code = param(&back, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let post = |secret: &str| {
        let request = app.http.post(app.url("/token"));
        let request = match method {
            "client_secret_basic" => request.basic_auth(client_id, Some(secret)).form(&form),
            _ => {
                let credentials = [("client_id", client_id), ("client_secret", secret)];
                request.form(&[&form[..], &credentials[..]].concat())
            }
        };
        request.send()
    };
    let refused = post("not-the-secret").await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.headers().contains_key("www-authenticate"));
    let public = [("client_id", client_id)];
    let (status, _) = token(&app, &[&form[..], &public[..]].concat()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no secret, no tokens");
    let answer = post(secret).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let tokens: Value = answer.json().await.unwrap();
    let access_token = tokens["access_token"].as_str().unwrap();
    assert_eq!(userinfo(upstream, access_token).await.1["sub"], "alice");
    upstream.assert_clean();
}

/// `/authorize` and `/token` are uses of a client (issue 31): a client that
/// only signs users in is not idle, one nobody uses is.
#[tokio::test]
async fn signing_in_keeps_a_client_from_the_idle_sweep() {
    let upstream = OidcProvider::start().await;
    let app = spawn_app_with(&format!(
        "{}[policies.default]\nidle_lifetime = \"1h\"\n",
        front_toml(&upstream)
    ))
    .await;
    let signing_in = native_client(&app).await;
    let unused = native_client(&app).await;

    app.clock.advance(std::time::Duration::from_secs(50 * 60));
    let pkce = pkce("idle");
    let back = authorized(&app, &upstream, &signing_in, REGISTERED, &pkce).await;
    let (status, _) = redeem(&app, &signing_in, &back, &pkce).await;
    assert_eq!(status, StatusCode::OK);

    app.clock.advance(std::time::Duration::from_secs(20 * 60));
    let removed = app.reconciler.remove_idle_clients().await.unwrap();
    let removed: Vec<&str> = removed.iter().map(|id| id.as_str()).collect();
    assert_eq!(removed, [unused.as_str()]);
    assert!(app.service.show(&signing_in).await.is_ok());
}
