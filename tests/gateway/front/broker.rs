//! Broker mode (`[provider] kind = "oidc"`, issue 29) against a real OpenID
//! provider with registration off: node oidc-provider holding one fixed
//! client, the operator's, whose redirect URI is the gateway's callback.
//! Apps register with the gateway; every sign-in goes through the consent
//! page, then the provider as the operator's client; the app gets the
//! provider's access and ID tokens and the gateway's own rotating refresh
//! token. The same against the provider set up like Entra ID and like
//! Google, each with its preset.

use reqwest::header::{COOKIE, ORIGIN, SET_COOKIE};
use tokio::net::TcpListener;

use super::*;

/// The operator's client at the provider.
pub(super) const UPSTREAM_CLIENT: &str = "dcr-gateway";
/// Its secret.
pub(super) const UPSTREAM_SECRET: &str = "operator-secret-0123456789abcdef";

/// A gateway in broker mode in front of an oidc-provider that holds only the
/// operator's client (and behaves like `like`, if given), with `provider`
/// keys added to `[provider]`.
pub(super) async fn broker(like: Option<&str>, provider: &str) -> (TestApp, OidcProvider) {
    broker_with(like, provider, "").await
}

/// [`broker`] with `extra` TOML sections too.
pub(super) async fn broker_with(
    like: Option<&str>,
    provider: &str,
    extra: &str,
) -> (TestApp, OidcProvider) {
    let listener = gateway_listener().await;
    let upstream = upstream_for(&listener, like, None).await;
    let app = broker_on(listener, &upstream, provider, extra).await;
    (app, upstream)
}

/// An oidc-provider holding the operator's client for the gateway that will
/// listen on `listener`: with its secret, or, given `jwks`, authenticating
/// with `private_key_jwt` by those keys.
pub(super) async fn upstream_for(
    listener: &TcpListener,
    like: Option<&str>,
    jwks: Option<Value>,
) -> OidcProvider {
    let callback = format!("http://{}/callback", listener.local_addr().unwrap());
    let mut client = json!({
        "client_id": UPSTREAM_CLIENT,
        "redirect_uris": [callback],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    });
    match jwks {
        Some(jwks) => {
            client["token_endpoint_auth_method"] = json!("private_key_jwt");
            client["jwks"] = jwks;
        }
        None => client["client_secret"] = json!(UPSTREAM_SECRET),
    }
    let mut env = vec![("OIDC_STATIC_CLIENTS", json!([client]).to_string())];
    if let Some(like) = like {
        env.push(("OIDC_LIKE", like.to_owned()));
    }
    OidcProvider::start_with(&env).await
}

/// The gateway in broker mode on `listener` in front of `upstream`.
pub(super) async fn broker_on(
    listener: TcpListener,
    upstream: &OidcProvider,
    provider: &str,
    extra: &str,
) -> TestApp {
    // The suite checks the provider's tokens passed on, unless a test asks
    // for the gateway's own (broker mode's default).
    let tokens = match extra.contains("tokens =") {
        true => "",
        false => "tokens = \"provider\"\n",
    };
    let credential = if provider.contains("private_key") {
        String::new()
    } else {
        format!("client_secret = \"{UPSTREAM_SECRET}\"\n")
    };
    spawn_app_on(
        listener,
        "",
        &format!(
            "[provider]\nkind = \"oidc\"\nissuer = \"{}\"\nclient_id = \"{UPSTREAM_CLIENT}\"\n\
             timeout = \"5s\"\nreconcile_interval = \"0s\"\n{credential}{provider}\n\
             [front]\nenabled = true\n{tokens}{extra}",
            upstream.issuer
        ),
    )
    .await
}

/// A browser's cookies for the gateway, as `name=value` pairs.
#[derive(Default)]
pub(super) struct Cookies(Vec<String>);

impl Cookies {
    /// Keeps the cookies `response` sets.
    fn keep(&mut self, response: &reqwest::Response) {
        for set in response.headers().get_all(SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
            let name = pair.split('=').next().unwrap().to_owned();
            self.0.retain(|kept| !kept.starts_with(&format!("{name}=")));
            self.0.push(pair);
        }
    }

    fn header(&self) -> String {
        self.0.join("; ")
    }

    /// GETs `url` with these cookies, keeping the ones it sets.
    pub(super) async fn get(&mut self, url: &str) -> reqwest::Response {
        let response = browser()
            .get(url)
            .header(COOKIE, self.header())
            .send()
            .await
            .unwrap();
        self.keep(&response);
        response
    }
}

/// The consent page's form token in `page`.
pub(super) fn form_token(page: &str) -> String {
    page.split("name=\"consent\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

/// The user's answer on the consent page: the gateway's `303`.
pub(super) async fn decide(
    app: &TestApp,
    cookies: &mut Cookies,
    token: &str,
    decision: &str,
) -> reqwest::Response {
    let response = browser()
        .post(app.url("/consent"))
        .header(COOKIE, cookies.header())
        .header(ORIGIN, &app.base)
        .form(&[("consent", token), ("decision", decision)])
        .send()
        .await
        .unwrap();
    cookies.keep(&response);
    response
}

/// `/authorize` for `client_id` through the consent page (allowed) unless
/// `cookies` remember a consent: the provider's authorization URL.
pub(super) async fn to_provider(
    app: &TestApp,
    cookies: &mut Cookies,
    client_id: &str,
    pkce: &Pkce,
    extra: &[(&str, &str)],
) -> Url {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", "http://127.0.0.1:53127/cb"),
        ("state", "app-state-1"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish();
    let response = cookies
        .get(&format!("{}?{query}", app.url("/authorize")))
        .await;
    if response.status().is_redirection() {
        return location(&response);
    }
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("registered itself with this gateway"),
        "{page}"
    );
    location(&decide(app, cookies, &form_token(&page), "allow").await)
}

/// The whole sign-in of `client_id` as `account`: the app's redirect with
/// the gateway's code, and the provider's authorization URL it went
/// through.
pub(super) async fn signed_in(
    app: &TestApp,
    upstream: &OidcProvider,
    cookies: &mut Cookies,
    client_id: &str,
    pkce: &Pkce,
    extra: &[(&str, &str)],
) -> (Url, Url) {
    let at_provider = to_provider(app, cookies, client_id, pkce, extra).await;
    assert!(
        at_provider.as_str().starts_with(&upstream.issuer),
        "{at_provider}"
    );
    let callback = log_in(upstream, &at_provider, "alice").await;
    assert!(
        callback.as_str().starts_with(&app.url("/callback")),
        "{callback}"
    );
    let back = location(&cookies.get(callback.as_str()).await);
    (back, at_provider)
}

/// The claims of the ID token in a token answer (its signature is the
/// gateway's to check, and was).
pub(super) fn id_token_claims(tokens: &Value) -> Value {
    let token = tokens["id_token"].as_str().expect("an ID token");
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// A refresh at the gateway for `client_id`.
pub(super) async fn refresh(app: &TestApp, client_id: &str, token: &str) -> (StatusCode, Value) {
    super::token(
        app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", client_id),
        ],
    )
    .await
}

#[tokio::test]
async fn an_app_signs_in_through_the_operators_client_and_its_refresh_tokens_rotate() {
    let (app, upstream) = broker(None, "").await;
    let client_id = native_client(&app).await;
    let pkce = pkce("broker");
    let mut cookies = Cookies::default();
    let resource = "https://mcp.example.com/mcp";
    let (back, at_provider) = signed_in(
        &app,
        &upstream,
        &mut cookies,
        &client_id,
        &pkce,
        &[("scope", "openid offline_access"), ("resource", resource)],
    )
    .await;
    // The provider saw the operator's client, the gateway's callback, PKCE
    // and nonce; the app's resource passed on (the generic preset).
    assert_eq!(param(&at_provider, "client_id").unwrap(), UPSTREAM_CLIENT);
    assert_eq!(
        param(&at_provider, "redirect_uri").unwrap(),
        app.url("/callback")
    );
    assert_ne!(
        param(&at_provider, "code_challenge").unwrap(),
        pkce.challenge
    );
    assert!(param(&at_provider, "nonce").is_some());
    assert_eq!(param(&at_provider, "resource").unwrap(), resource);
    assert_eq!(param(&back, "state").unwrap(), "app-state-1");
    assert_eq!(param(&back, "iss").unwrap(), app.base);

    let (status, tokens) = redeem(&app, &client_id, &back, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert!(tokens["id_token"].as_str().is_some(), "{tokens}");
    let access_token = tokens["access_token"].as_str().unwrap();
    let claims = id_token_claims(&tokens);
    assert_eq!(
        (claims["sub"].as_str(), claims["aud"].as_str()),
        (Some("alice"), Some(UPSTREAM_CLIENT))
    );
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();

    // Each refresh rotates the gateway's token and gets a fresh access token.
    let (status, refreshed) = refresh(&app, &client_id, &first).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let second = refreshed["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    let renewed = refreshed["access_token"].as_str().unwrap();
    assert_ne!(renewed, access_token);

    // Nothing the flow handed out, nor the provider's refresh token, is
    // stored in clear.
    let bytes = std::fs::read(&app.db_path).unwrap();
    for secret in [first.as_str(), second.as_str(), access_token, renewed] {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }

    // Another registered client cannot use it.
    let other = native_client(&app).await;
    let (status, answer) = refresh(&app, &other, &second).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"], "invalid_grant");
    // The first token again is a replay: the family is revoked, the live
    // token with it.
    let (status, answer) = refresh(&app, &client_id, &first).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, answer) = refresh(&app, &client_id, &second).await;
    assert_eq!(
        answer["error"], "invalid_grant",
        "{status}: the family is revoked"
    );

    // The consent is remembered for this client in this browser.
    let again = to_provider(&app, &mut cookies, &client_id, &pkce, &[]).await;
    assert!(again.as_str().starts_with(&upstream.issuer));
    // Not for another client.
    let response = cookies
        .get(&format!(
            "{}?response_type=code&client_id={other}&redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Fcb\
             &code_challenge={}&code_challenge_method=S256",
            app.url("/authorize"),
            pkce.challenge
        ))
        .await;
    assert_eq!(response.status(), StatusCode::OK, "the consent page again");
}

#[tokio::test]
async fn revocation_ends_the_family_and_a_declined_consent_reaches_the_app() {
    let (app, upstream) = broker(None, "").await;
    let client_id = native_client(&app).await;
    let pkce = pkce("revoke");
    let mut cookies = Cookies::default();
    let (back, _) = signed_in(&app, &upstream, &mut cookies, &client_id, &pkce, &[]).await;
    let (_, tokens) = redeem(&app, &client_id, &back, &pkce).await;
    let token = tokens["refresh_token"].as_str().unwrap();
    let revoked = app
        .http
        .post(app.url("/revoke"))
        .form(&[("token", token), ("client_id", client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    let (_, answer) = refresh(&app, &client_id, token).await;
    assert_eq!(answer["error"], "invalid_grant");
    let discovery = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(discovery["revocation_endpoint"], app.url("/revoke"));

    // A user who declines: the app hears access_denied, the provider nothing.
    let other = native_client(&app).await;
    let mut fresh = Cookies::default();
    let response = fresh
        .get(&format!(
            "{}?response_type=code&client_id={other}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb\
             &state=s&code_challenge={}&code_challenge_method=S256",
            app.url("/authorize"),
            pkce.challenge
        ))
        .await;
    let token = form_token(&response.text().await.unwrap());
    let declined = location(&decide(&app, &mut fresh, &token, "deny").await);
    assert!(declined.as_str().starts_with("http://127.0.0.1:9/cb"));
    assert_eq!(param(&declined, "error").unwrap(), "access_denied");
    // A consent form posted from another browser (no cookie) is refused.
    let mut stranger = Cookies::default();
    let refused = decide(&app, &mut stranger, &token, "allow").await;
    assert_page(refused, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn like_entra_the_resource_becomes_a_default_scope() {
    let resource = "https://mcp.example.com/mcp";
    let (app, upstream) = broker(
        Some("entra"),
        &format!(
            "preset = \"entra\"\n[provider.resource_scopes]\n\"{resource}\" = \"api://mcp/.default\""
        ),
    )
    .await;
    let client_id = native_client(&app).await;
    let pkce = pkce("entra");
    let mut cookies = Cookies::default();
    let extra = [("scope", "openid offline_access"), ("resource", resource)];
    let (back, at_provider) =
        signed_in(&app, &upstream, &mut cookies, &client_id, &pkce, &extra).await;
    assert!(param(&at_provider, "resource").is_none());
    let scope = param(&at_provider, "scope").unwrap();
    assert!(
        scope.split(' ').any(|s| s == "api://mcp/.default"),
        "{scope}"
    );
    let (status, tokens) = redeem(&app, &client_id, &back, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    // The refresh repeats the scope, which this provider requires.
    let token = tokens["refresh_token"].as_str().unwrap();
    let (status, refreshed) = refresh(&app, &client_id, token).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
}

#[tokio::test]
async fn like_entra_without_its_preset_the_app_hears_the_providers_refusal() {
    let (app, upstream) = broker(Some("entra"), "").await;
    let client_id = native_client(&app).await;
    let pkce = pkce("generic");
    let mut cookies = Cookies::default();
    let extra = [("resource", "https://mcp.example.com/mcp")];
    let at_provider = to_provider(&app, &mut cookies, &client_id, &pkce, &extra).await;
    let callback = location(&browser().get(at_provider).send().await.unwrap());
    let back = location(&cookies.get(callback.as_str()).await);
    assert_eq!(param(&back, "error").unwrap(), "invalid_target", "{back}");
    drop(upstream);
}

#[tokio::test]
async fn like_google_offline_access_becomes_access_type_offline() {
    let (app, upstream) = broker(Some("google"), "preset = \"google\"").await;
    let client_id = native_client(&app).await;
    let offline = pkce("google");
    let mut cookies = Cookies::default();
    let extra = [("scope", "openid offline_access")];
    let (back, at_provider) =
        signed_in(&app, &upstream, &mut cookies, &client_id, &offline, &extra).await;
    assert_eq!(param(&at_provider, "access_type").unwrap(), "offline");
    assert_eq!(param(&at_provider, "prompt").unwrap(), "consent");
    assert_eq!(param(&at_provider, "scope").unwrap(), "openid");
    let (status, tokens) = redeem(&app, &client_id, &back, &offline).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let token = tokens["refresh_token"].as_str().expect("a refresh token");
    let (status, refreshed) = refresh(&app, &client_id, token).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");

    // Without offline_access the provider gives no refresh token, and the
    // gateway hands out none.
    let online = pkce("google-online");
    let (back, at_provider) = signed_in(
        &app,
        &upstream,
        &mut cookies,
        &client_id,
        &online,
        &[("scope", "openid")],
    )
    .await;
    assert!(param(&at_provider, "access_type").is_none());
    let (_, tokens) = redeem(&app, &client_id, &back, &online).await;
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
}

#[tokio::test]
async fn the_operators_client_may_authenticate_with_a_private_key() {
    let dir = tempfile::tempdir().unwrap();
    let pair = rcgen::KeyPair::generate().unwrap();
    let raw = pair.public_key_raw();
    let jwks = json!({ "keys": [{
        "kty": "EC", "crv": "P-256", "kid": "operator-key",
        "x": URL_SAFE_NO_PAD.encode(&raw[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&raw[33..65]),
    }]});
    let key = dir.path().join("operator.pem");
    std::fs::write(&key, pair.serialize_pem()).unwrap();
    let listener = gateway_listener().await;
    let upstream = upstream_for(&listener, None, Some(jwks)).await;
    let app = broker_on(
        listener,
        &upstream,
        &format!(
            "private_key = \"{}\"\nprivate_key_id = \"operator-key\"",
            key.display()
        ),
        "",
    )
    .await;
    let client_id = native_client(&app).await;
    let pkce = pkce("key");
    let mut cookies = Cookies::default();
    let extra = [("scope", "openid offline_access")];
    let (back, _) = signed_in(&app, &upstream, &mut cookies, &client_id, &pkce, &extra).await;
    let (status, tokens) = redeem(&app, &client_id, &back, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let token = tokens["refresh_token"].as_str().unwrap();
    let (status, refreshed) = refresh(&app, &client_id, token).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
}
