//! Each way the front refuses a request, and what the caller is told: a
//! page where the redirect URI is not known good (or the transaction is
//! not), the app's redirect with an RFC 6749 error and `iss` otherwise, and
//! RFC 6749 §5.2 errors at `/token`. The refusals that must hold whatever
//! the provider, and the bound, single-use codes, run through each one.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::*;

/// The app's redirect with `error`, the app's state and the gateway's iss;
/// nothing went to the provider.
fn assert_sent_back(app: &TestApp, response: &reqwest::Response, redirect_uri: &str, error: &str) {
    let back = location(response);
    assert!(back.as_str().starts_with(redirect_uri), "{back}");
    assert_eq!(param(&back, "error").unwrap(), error);
    assert_eq!(param(&back, "state").unwrap(), "app-state-1");
    assert_eq!(param(&back, "iss").unwrap(), app.base);
}

through_each_upstream!(
    pkce_is_required_and_plain_is_refused,
    a_wrong_redirect_uri_or_client_is_a_page_never_a_redirect,
    codes_are_bound_single_use_and_a_replay_revokes_the_tokens,
);

async fn pkce_is_required_and_plain_is_refused(upstream: &impl Upstream) {
    let app = front_for(upstream).await;
    let client_id = native_client(&app).await;
    let pkce = pkce("refusals");
    let redirect_uri = "http://127.0.0.1:5999/cb";
    for extra in [
        vec![("code_challenge", ""), ("code_challenge_method", "")],
        vec![("code_challenge_method", "")],
        vec![("code_challenge_method", "plain")],
        vec![("code_challenge", "short")],
    ] {
        let response = authorize(&app, &client_id, redirect_uri, &pkce, &extra).await;
        assert_sent_back(&app, &response, redirect_uri, "invalid_request");
    }
    let response = authorize(
        &app,
        &client_id,
        redirect_uri,
        &pkce,
        &[("response_type", "token")],
    )
    .await;
    assert_sent_back(&app, &response, redirect_uri, "unsupported_response_type");
    upstream.assert_clean();
}

async fn a_wrong_redirect_uri_or_client_is_a_page_never_a_redirect(upstream: &impl Upstream) {
    let app = front_for(upstream).await;
    let client_id = native_client(&app).await;
    let pkce = pkce("refusals");
    for redirect_uri in [
        "https://attacker.example/cb",
        "http://127.0.0.1:4000/other",
        "http://localhost:4000/cb",
        "http://127.0.0.1:4000/cb#fragment",
        "",
    ] {
        let extra = [("redirect_uri", redirect_uri)];
        let response = authorize(&app, &client_id, REGISTERED, &pkce, &extra).await;
        assert_page(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    let response = authorize(&app, "no-such-client", REGISTERED, &pkce, &[]).await;
    assert_page(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    // Even a missing PKCE challenge is not redirected to an unchecked URI.
    let extra = [
        ("redirect_uri", "https://attacker.example/cb"),
        ("code_challenge", ""),
    ];
    let response = authorize(&app, &client_id, REGISTERED, &pkce, &extra).await;
    assert_page(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    upstream.assert_clean();
}

/// The gateway's `state` at the provider, from `/authorize`'s redirect.
async fn provider_state(app: &TestApp, client_id: &str, pkce: &Pkce) -> String {
    let to_provider = location(&authorize(app, client_id, REGISTERED, pkce, &[]).await);
    param(&to_provider, "state").unwrap()
}

async fn callback(app: &TestApp, query: &[(&str, &str)]) -> reqwest::Response {
    browser()
        .get(app.url("/callback"))
        .query(query)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_response_from_another_issuer_ends_the_transaction() {
    let upstream = OidcProvider::start().await;
    let app = front_for(&upstream).await;
    let client_id = native_client(&app).await;
    let state = provider_state(&app, &client_id, &pkce("mixup")).await;
    let issuer = upstream.issuer.as_str();
    for iss in ["https://attacker.example", ""] {
        let query = [("state", state.as_str()), ("code", "c"), ("iss", iss)];
        let response = callback(&app, &query).await;
        assert_page(response, StatusCode::BAD_REQUEST, "iss").await;
    }
    // The right iss cannot complete it afterwards: the response was burnt.
    let query = [("state", state.as_str()), ("code", "c"), ("iss", issuer)];
    assert_page(
        callback(&app, &query).await,
        StatusCode::BAD_REQUEST,
        "start again",
    )
    .await;
}

#[tokio::test]
async fn an_expired_or_used_transaction_is_a_page() {
    let upstream = OidcProvider::start().await;
    let app = front_for(&upstream).await;
    let client_id = native_client(&app).await;
    let issuer = upstream.issuer.as_str();
    let state = provider_state(&app, &client_id, &pkce("expiry")).await;
    app.clock.advance(Duration::from_secs(601));
    let query = [("state", state.as_str()), ("code", "c"), ("iss", issuer)];
    assert_page(
        callback(&app, &query).await,
        StatusCode::BAD_REQUEST,
        "expired",
    )
    .await;

    let state = provider_state(&app, &client_id, &pkce("used")).await;
    let query = [("state", state.as_str()), ("code", "c"), ("iss", issuer)];
    assert!(callback(&app, &query).await.status().is_redirection());
    assert_page(
        callback(&app, &query).await,
        StatusCode::BAD_REQUEST,
        "already",
    )
    .await;
    let unknown = [("state", "made-up"), ("code", "c"), ("iss", issuer)];
    assert_page(
        callback(&app, &unknown).await,
        StatusCode::BAD_REQUEST,
        "unknown",
    )
    .await;
}

#[tokio::test]
async fn provider_errors_go_back_to_the_app_with_the_gateways_iss() {
    let upstream = OidcProvider::start().await;
    let app = front_for(&upstream).await;
    let client_id = native_client(&app).await;
    let state = provider_state(&app, &client_id, &pkce("denied")).await;
    let query = [
        ("state", state.as_str()),
        ("error", "access_denied"),
        ("error_description", "the user said no"),
        ("iss", upstream.issuer.as_str()),
    ];
    let back = location(&callback(&app, &query).await);
    assert!(back.as_str().starts_with(REGISTERED));
    assert_eq!(param(&back, "error").unwrap(), "access_denied");
    assert_eq!(
        param(&back, "error_description").unwrap(),
        "the user said no"
    );
    assert_eq!(param(&back, "state").unwrap(), "app-state-1");
    assert_eq!(param(&back, "iss").unwrap(), app.base);
}

async fn codes_are_bound_single_use_and_a_replay_revokes_the_tokens(upstream: &impl Upstream) {
    let app = front_for(upstream).await;
    let client_id = native_client(&app).await;
    let other = native_client(&app).await;
    let pkce = pkce("bound");
    let back = authorized(&app, upstream, &client_id, REGISTERED, &pkce).await;

    // Another client, a wrong verifier or a wrong redirect URI: refused
    // before the provider is asked, and the code stays good.
    let (status, error) = redeem(&app, &other, &back, &pkce).await;
    assert_eq!(
        (status, error["error"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_grant"))
    );
    let (status, error) = redeem(&app, &client_id, &back, &super::pkce("wrong")).await;
    assert_eq!(
        (status, error["error"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_grant"))
    );
    let code = param(&back, "code").unwrap();
    let wrong_redirect = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("client_id", client_id.as_str()),
        ("redirect_uri", "http://127.0.0.1:4001/cb"),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let (status, error) = token(&app, &wrong_redirect).await;
    assert_eq!(
        (status, error["error"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_grant"))
    );

    let (status, tokens) = redeem(&app, &client_id, &back, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access_token = tokens["access_token"].as_str().unwrap();
    assert_eq!(userinfo(upstream, access_token).await.0, StatusCode::OK);

    let (status, error) = redeem(&app, &client_id, &back, &pkce).await;
    assert_eq!(
        (status, error["error"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_grant"))
    );
    assert_eq!(
        userinfo(upstream, access_token).await.0,
        StatusCode::UNAUTHORIZED
    );
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ("client_id", client_id.as_str()),
    ];
    let (status, error) = token(&app, &refresh).await;
    assert_eq!(
        (status, error["error"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_grant"))
    );
    upstream.assert_clean();
}

/// A `/token` form.
type Form<'a> = &'a [(&'a str, &'a str)];

#[tokio::test]
async fn token_requests_get_rfc_6749_errors() {
    let upstream = OidcProvider::start().await;
    let app = front_for(&upstream).await;
    let client_id = native_client(&app).await;
    let cases: [(Form<'_>, StatusCode, &str); 5] = [
        (
            &[("grant_type", "authorization_code"), ("code", "x")],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            &[("grant_type", "password"), ("client_id", &client_id)],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "nobody"),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &client_id),
                ("client_secret", "s"),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &client_id),
                ("code", "made-up"),
                ("code_verifier", "v"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
    ];
    for (form, status, error) in cases {
        let (got, body) = token(&app, form).await;
        assert_eq!(
            (got, body["error"].as_str().unwrap()),
            (status, error),
            "{form:?}"
        );
    }
    let json_body = app
        .http
        .post(app.url("/token"))
        .json(&json!({ "grant_type": "authorization_code" }))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn answered_logins_are_bounded_and_requests_rate_limited() {
    let upstream = OidcProvider::start().await;
    let app = spawn_app_with(&format!(
        "{}max_transactions = 2\nauthorize_per_ip = \"3/hour\"\ntoken_per_ip = \"1/hour\"\n",
        front_toml(&upstream)
    ))
    .await;
    let client_id = native_client(&app).await;
    let pkce = pkce("bounds");
    // Two logins are kept once the provider answered them; the third
    // provider answer finds the store at its cap.
    for kept in [true, true, false] {
        let to_provider = location(&authorize(&app, &client_id, REGISTERED, &pkce, &[]).await);
        let callback = log_in(&upstream, &to_provider, "alice").await;
        let answer = browser().get(callback).send().await.unwrap();
        if kept {
            assert!(param(&location(&answer), "code").is_some());
        } else {
            assert!(answer.headers().contains_key("retry-after"));
            assert_page(
                answer,
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
            )
            .await;
        }
    }
    let response = authorize(&app, &client_id, REGISTERED, &pkce, &[]).await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=1200).contains(&retry_after), "{retry_after}");
    assert_page(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;

    let form = [("grant_type", "refresh_token"), ("client_id", "x")];
    assert_eq!(token(&app, &form).await.0, StatusCode::UNAUTHORIZED);
    let (status, error) = token(&app, &form).await;
    assert_eq!(
        (status, error["error"].clone()),
        (StatusCode::TOO_MANY_REQUESTS, json!("rate_limited"))
    );
}
