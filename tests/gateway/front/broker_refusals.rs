//! Broker mode's refusals, against a small provider that issues ID tokens
//! wrong in one way each (`support::fake_op`): another issuer or audience,
//! a bad signature, an unknown key (read again once, then refused), a
//! missing or wrong nonce, an expired token; and a provider that is down
//! (the app hears `temporarily_unavailable`, and nothing is lost: the
//! registration stays, an unanswered refresh leaves the refresh token
//! usable).

use super::broker::{Cookies, decide, form_token, refresh};
use super::*;
use crate::support::fake_op::{FakeOp, IdToken};

const CLIENT: &str = "operator-client";

/// A gateway in broker mode in front of a fake provider.
async fn brokered() -> (TestApp, FakeOp) {
    let op = FakeOp::start(CLIENT).await;
    (in_front_of(&op).await, op)
}

/// A gateway in broker mode in front of `op`.
async fn in_front_of(op: &FakeOp) -> TestApp {
    spawn_app_with(&format!(
        "[provider]\nkind = \"oidc\"\nissuer = \"{}\"\nclient_id = \"{CLIENT}\"\n\
         client_secret = \"s3cret\"\ntimeout = \"2s\"\nreconcile_interval = \"0s\"\n\
         [front]\nenabled = true\ntokens = \"provider\"\n",
        op.issuer
    ))
    .await
}

/// A sign-in of `client_id` through the consent page and the provider:
/// where the app is sent back.
async fn sign_in(app: &TestApp, client_id: &str, pkce: &Pkce) -> Url {
    let mut cookies = Cookies::default();
    let response = cookies
        .get(&format!(
            "{}?response_type=code&client_id={client_id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A7%2Fcb\
             &state=s1&code_challenge={}&code_challenge_method=S256",
            app.url("/authorize"),
            pkce.challenge
        ))
        .await;
    if response.status().is_redirection() {
        return location(&response);
    }
    let token = form_token(&response.text().await.unwrap());
    let at_provider = location(&decide(app, &mut cookies, &token, "allow").await);
    let answer = browser().get(at_provider).send().await.unwrap();
    if !answer.status().is_redirection() {
        return Url::parse(&format!("http://unanswered/{}", answer.status().as_u16())).unwrap();
    }
    let callback = location(&answer);
    location(&cookies.get(callback.as_str()).await)
}

/// The error the app was sent back with, and its description.
fn app_error(back: &Url) -> (String, String) {
    assert!(back.as_str().starts_with("http://127.0.0.1:7/cb"), "{back}");
    (
        param(back, "error").unwrap_or_default(),
        param(back, "error_description").unwrap_or_default(),
    )
}

#[tokio::test]
async fn id_tokens_wrong_in_any_way_are_refused() {
    let (app, op) = brokered().await;
    let client_id = native_client(&app).await;
    let cases = [
        (IdToken::OtherIssuer, "another issuer"),
        (IdToken::OtherAudience, "InvalidAudience"),
        (IdToken::BadSignature, "InvalidSignature"),
        (IdToken::NoNonce, "nonce"),
        (IdToken::WrongNonce, "nonce"),
        (IdToken::Expired, "ExpiredSignature"),
    ];
    for (how, said) in cases {
        op.id_tokens(how);
        let back = sign_in(&app, &client_id, &pkce("refused")).await;
        let (error, description) = app_error(&back);
        assert_eq!(error, "access_denied", "{how:?}: {back}");
        assert!(description.contains(said), "{how:?}: {description}");
        assert!(param(&back, "code").is_none());
    }
    op.id_tokens(IdToken::Right);
    let pkce = pkce("right");
    let back = sign_in(&app, &client_id, &pkce).await;
    let (status, tokens) = redeem(&app, &client_id, &back, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
}

#[tokio::test]
async fn a_rotated_key_is_read_again_and_an_unknown_one_is_refused() {
    let (app, op) = brokered().await;
    let client_id = native_client(&app).await;
    let pkce = pkce("rotation");
    let back = sign_in(&app, &client_id, &pkce).await;
    assert!(param(&back, "code").is_some(), "{back}");
    let reads = op.key_reads();
    op.rotate_key("key-2");
    // Within ten seconds of a read, an unknown kid does not read the set
    // again: a stream of made-up kids costs the provider nothing.
    let back = sign_in(&app, &client_id, &pkce).await;
    assert_eq!(app_error(&back).0, "access_denied");
    assert_eq!(op.key_reads(), reads);
    app.clock.advance(std::time::Duration::from_secs(11));
    let back = sign_in(&app, &client_id, &pkce).await;
    assert!(
        param(&back, "code").is_some(),
        "the new key is found: {back}"
    );
    assert_eq!(op.key_reads(), reads + 1);
    op.id_tokens(IdToken::UnknownKid);
    let back = sign_in(&app, &client_id, &pkce).await;
    let (error, description) = app_error(&back);
    assert_eq!(error, "access_denied");
    assert!(description.contains("kid"), "{description}");
    assert_eq!(op.key_reads(), reads + 1, "read lately: not again");
}

#[tokio::test]
async fn a_provider_that_is_down_loses_nothing() {
    let (app, op) = brokered().await;
    let client_id = native_client(&app).await;
    let pkce = pkce("down");
    let back = sign_in(&app, &client_id, &pkce).await;
    let (_, tokens) = redeem(&app, &client_id, &back, &pkce).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();

    op.set_down(true);
    let (status, answer) = refresh(&app, &client_id, &refresh_token).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(answer["error"], "temporarily_unavailable");
    // The provider's document is cached, so the user reaches the provider,
    // which answers 503 itself; nothing is recorded at the gateway.
    let back = sign_in(&app, &client_id, &pkce).await;
    assert!(
        back.as_str().contains("temporarily_unavailable") || back.as_str().ends_with("/503"),
        "{back}"
    );

    op.set_down(false);
    assert!(
        app.service.show(&client_id).await.is_ok(),
        "the registration stays"
    );
    let (status, answer) = refresh(&app, &client_id, &refresh_token).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the unanswered refresh left the token usable: {answer}"
    );
    assert_eq!(op.refreshes(), 1);
}

#[tokio::test]
async fn readiness_covers_the_providers_discovery_and_keys() {
    let op = FakeOp::start(CLIENT).await;
    op.set_down(true);
    let app = in_front_of(&op).await;
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = ready.text().await.unwrap();
    assert!(body.contains("identity provider"), "{body}");
    op.set_down(false);
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
}

/// Signs in through the page in `cookies`' browser (allowed): the app's
/// redirect.
async fn consent_then_sign_in(
    app: &TestApp,
    cookies: &mut Cookies,
    client_id: &str,
    pkce: &Pkce,
    scope: &str,
) -> Url {
    let url = format!(
        "{}?response_type=code&client_id={client_id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A7%2Fcb\
         &state=s1&scope={scope}&code_challenge={}&code_challenge_method=S256",
        app.url("/authorize"),
        pkce.challenge
    );
    let response = cookies.get(&url).await;
    let at_provider = if response.status().is_redirection() {
        location(&response)
    } else {
        let token = form_token(&response.text().await.unwrap());
        location(&decide(app, cookies, &token, "allow").await)
    };
    let callback = location(&browser().get(at_provider).send().await.unwrap());
    location(&cookies.get(callback.as_str()).await)
}

#[tokio::test]
async fn a_remembered_consent_counts_only_in_its_own_browser() {
    let (app, _op) = brokered().await;
    let client_id = native_client(&app).await;
    let pkce = pkce("remembered");
    let mut attacker = Cookies::default();
    let back = consent_then_sign_in(&app, &mut attacker, &client_id, &pkce, "openid").await;
    assert!(param(&back, "code").is_some(), "{back}");
    // The consent is remembered: /authorize goes straight to the provider.
    let url = format!(
        "{}?response_type=code&client_id={client_id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A7%2Fcb\
         &state=s1&scope=openid&code_challenge={}&code_challenge_method=S256",
        app.url("/authorize"),
        pkce.challenge
    );
    let forwarded = location(&attacker.get(&url).await);
    // Another browser, sent that link, signs in at the provider, and comes
    // back to /callback without the attacker's cookie: refused.
    let callback = location(&browser().get(forwarded).send().await.unwrap());
    let mut victim = Cookies::default();
    let refused = victim.get(callback.as_str()).await;
    assert_page(refused, StatusCode::BAD_REQUEST, "another browser").await;
}

#[tokio::test]
async fn more_scope_asks_again_and_the_registered_scope_bounds_the_request() {
    let (app, _op) = brokered().await;
    let client = app
        .register(&json!({
            "redirect_uris": ["http://127.0.0.1:7/cb"],
            "token_endpoint_auth_method": "none",
            "scope": "openid email",
        }))
        .await;
    let client_id = client["client_id"].as_str().unwrap();
    let pkce = pkce("scope");
    let mut cookies = Cookies::default();
    let back = consent_then_sign_in(&app, &mut cookies, client_id, &pkce, "openid").await;
    assert!(param(&back, "code").is_some(), "{back}");
    let url = |scope: &str| {
        format!(
            "{}?response_type=code&client_id={client_id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A7%2Fcb\
             &state=s1&scope={scope}&resource=https%3A%2F%2Fmcp.example.com\
             &code_challenge={}&code_challenge_method=S256",
            app.url("/authorize"),
            pkce.challenge
        )
    };
    let page = cookies.get(&url("openid%20email")).await;
    assert_eq!(page.status(), StatusCode::OK, "more scope: the page again");
    let page = page.text().await.unwrap();
    assert!(page.contains("<code>openid email</code>"), "{page}");
    assert!(
        page.contains("<code>https://mcp.example.com</code>"),
        "{page}"
    );
    let beyond = location(&cookies.get(&url("openid%20Mail.ReadWrite")).await);
    assert_eq!(
        param(&beyond, "error").unwrap(),
        "invalid_scope",
        "{beyond}"
    );
}

#[tokio::test]
async fn a_provider_refusing_the_operators_client_ends_no_family() {
    let (app, op) = brokered().await;
    let client_id = native_client(&app).await;
    let pkce = pkce("operator");
    let back = sign_in(&app, &client_id, &pkce).await;
    let (_, tokens) = redeem(&app, &client_id, &back, &pkce).await;
    let token = tokens["refresh_token"].as_str().unwrap();
    for refusal in [
        (401, "invalid_client"),
        (429, "slow_down"),
        (400, "invalid_request"),
    ] {
        op.refuse_refreshes(Some(refusal));
        let (status, answer) = refresh(&app, &client_id, token).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{refusal:?}: {answer}"
        );
        assert_eq!(answer["error"], "temporarily_unavailable");
    }
    op.refuse_refreshes(None);
    let (status, answer) = refresh(&app, &client_id, token).await;
    assert_eq!(status, StatusCode::OK, "the family lives: {answer}");
    // A refused grant does end it.
    op.refuse_refreshes(Some((400, "invalid_grant")));
    let next = answer["refresh_token"].as_str().unwrap();
    let (_, answer) = refresh(&app, &client_id, next).await;
    assert_eq!(answer["error"], "invalid_grant");
    op.refuse_refreshes(None);
    let (_, answer) = refresh(&app, &client_id, next).await;
    assert_eq!(answer["error"], "invalid_grant", "revoked");
}

#[tokio::test]
async fn keys_the_gateway_cannot_read_are_left_out_of_the_set() {
    let (app, op) = brokered().await;
    op.publish_extra_keys(vec![
        json!({"kty": "EC", "crv": "P-521", "alg": "ES512", "kid": "p521",
               "x": "AQ", "y": "AQ"}),
        json!({"kty": "OKP", "crv": "X25519", "use": "enc", "kid": "x", "x": "AQ"}),
        json!({"kty": "RSA", "alg": "RSA-OAEP-512", "use": "enc", "kid": "enc",
               "n": "AQAB", "e": "AQAB"}),
        json!({"kty": "oct", "kid": "key-1", "k": "c2VjcmV0"}),
    ]);
    let client_id = native_client(&app).await;
    let pkce = pkce("odd keys");
    let back = sign_in(&app, &client_id, &pkce).await;
    assert!(param(&back, "code").is_some(), "{back}");
}

#[tokio::test]
async fn a_refresh_for_another_user_ends_the_grant() {
    let (app, op) = brokered().await;
    let client_id = native_client(&app).await;
    let pkce = pkce("subject");
    let back = sign_in(&app, &client_id, &pkce).await;
    let (_, tokens) = redeem(&app, &client_id, &back, &pkce).await;
    let token = tokens["refresh_token"].as_str().unwrap();
    op.refresh_for("mallory");
    let (status, answer) = refresh(&app, &client_id, token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"], "invalid_grant");
}

#[tokio::test]
async fn a_bad_id_token_on_a_refresh_ends_nothing_and_resources_are_held_to_the_list() {
    let (app, op) = brokered().await;
    let client_id = native_client(&app).await;
    let pkce = pkce("refresh-kid");
    let back = sign_in(&app, &client_id, &pkce).await;
    let (_, tokens) = redeem(&app, &client_id, &back, &pkce).await;
    let token = tokens["refresh_token"].as_str().unwrap();
    op.id_tokens(IdToken::UnknownKid);
    let (status, answer) = refresh(&app, &client_id, token).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    op.id_tokens(IdToken::Right);
    let (status, answer) = refresh(&app, &client_id, token).await;
    assert_eq!(status, StatusCode::OK, "the family lives: {answer}");

    let listed = spawn_app_with(&format!(
        "[provider]\nkind = \"oidc\"\nissuer = \"{}\"\nclient_id = \"{CLIENT}\"\n\
         client_secret = \"s3cret\"\nreconcile_interval = \"0s\"\n\
         [front]\nenabled = true\ntokens = \"provider\"\nallowed_resources = [\"https://mcp.example.com\"]\n",
        op.issuer
    ))
    .await;
    let client_id = native_client(&listed).await;
    let url = |resource: &str| {
        super::authorize_url(
            &listed,
            &client_id,
            "http://127.0.0.1:7/cb",
            &pkce,
            &[("resource", resource)],
        )
    };
    let mut cookies = Cookies::default();
    let refused = location(&cookies.get(&url("https://graph.microsoft.com")).await);
    assert_eq!(
        param(&refused, "error").unwrap(),
        "invalid_target",
        "{refused}"
    );
    let page = cookies.get(&url("https://mcp.example.com")).await;
    assert_eq!(page.status(), StatusCode::OK, "the consent page");
    let cookie = page.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap();
    assert!(
        cookie.contains("Max-Age=2592000"),
        "lasts as a remembered consent: {cookie}"
    );
}
