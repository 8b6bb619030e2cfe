//! What the front meets only in front of one vendor: Okta signs in only the
//! users assigned to an app and documents `scope` as required at its
//! authorization endpoint; Hydra rotates refresh tokens. And the fakes'
//! own check: each refuses, and records, what its vendor documents as
//! wrong, so that a clean ledger at the end of a flow means something.

use reqwest::StatusCode;
use serde_json::json;

use super::*;
use crate::support::hydra::HydraFake;
use crate::support::okta::OktaFake;

#[tokio::test]
async fn okta_refuses_a_user_not_assigned_to_the_app_and_the_app_hears_it() {
    let okta = OktaFake::start().await;
    let app = front_for(&okta).await;
    let client_id = native_client(&app).await;
    let pkce = pkce("unassigned");
    let scope = [("scope", okta.scope())];
    let to_okta = location(&authorize(&app, &client_id, REGISTERED, &pkce, &scope).await);
    // Nobody assigned "mallory" to the app.
    let callback = okta.sign_in(&to_okta, "mallory").await;
    assert_eq!(param(&callback, "error").unwrap(), "access_denied");
    let back = location(&browser().get(callback).send().await.unwrap());
    assert!(back.as_str().starts_with(REGISTERED), "{back}");
    assert_eq!(param(&back, "error").unwrap(), "access_denied");
    assert_eq!(
        param(&back, "error_description").unwrap(),
        "User is not assigned to the client application."
    );
    assert_eq!(param(&back, "state").unwrap(), "app-state-1");
    assert_eq!(param(&back, "iss").unwrap(), app.base);
    assert!(param(&back, "code").is_none());
    okta.ledger.assert_clean("Okta");
}

/// RFC 6749 lets an app leave `scope` out; Okta's `/v1/authorize`
/// documents it as required (and answers `invalid_scope` unless the
/// authorization server has a default scope). The gateway must not pass the
/// omission on: it may send a scope of its own (the client's registered
/// one, a policy's `default_scope`) or answer the app itself.
#[tokio::test]
async fn okta_is_never_asked_for_an_authorization_without_scope() {
    let okta = OktaFake::start().await;
    let app = front_for(&okta).await;
    let client_id = native_client(&app).await;
    let pkce = pkce("no-scope");
    let response = authorize(&app, &client_id, REGISTERED, &pkce, &[("scope", "")]).await;
    let next = location(&response);
    if next.as_str().starts_with(&Upstream::issuer(&okta)) {
        // The browser takes the request to Okta, which must accept it.
        let at_okta = location(&browser().get(next).send().await.unwrap());
        okta.ledger.assert_clean("Okta");
        assert_eq!(at_okta.path(), "/_fake/signin", "{at_okta}");
    } else {
        // Refused by the gateway itself, the RFC 6749 way.
        assert!(next.as_str().starts_with(REGISTERED), "{next}");
        assert!(param(&next, "error").is_some());
        assert_eq!(param(&next, "iss").unwrap(), app.base);
    }
    okta.ledger.assert_clean("Okta");
}

#[tokio::test]
async fn hydra_rotates_refresh_tokens_and_the_gateway_passes_the_new_one_on() {
    let hydra = HydraFake::start().await;
    let app = front_for(&hydra).await;
    let client_id = native_client(&app).await;
    let pkce = pkce("rotation");
    let back = authorized(&app, &hydra, &client_id, REGISTERED, &pkce).await;
    let (status, tokens) = redeem(&app, &client_id, &back, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let first = tokens["refresh_token"].as_str().unwrap();
    assert!(first.starts_with("ory_rt_"), "Hydra's own token, unchanged");
    let (status, renewed) = refresh(&app, &client_id, first).await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let second = renewed["refresh_token"].as_str().unwrap();
    assert_ne!(second, first);
    // The spent one is refused by Hydra, and the gateway says so.
    let (status, error) = refresh(&app, &client_id, first).await;
    assert_eq!(
        (status, error["error"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_grant"))
    );
    assert_eq!(refresh(&app, &client_id, second).await.0, StatusCode::OK);
    hydra.ledger.assert_clean("Hydra");
}

/// A refresh at the gateway's `/token` for the public client `client_id`.
async fn refresh(app: &TestApp, client_id: &str, refresh_token: &str) -> (StatusCode, Value) {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", client_id),
    ];
    token(app, &form).await
}

/// A fake recorded exactly these violations: each mentions its needle, in
/// order.
fn assert_recorded(found: &[String], needles: &[&str]) {
    assert_eq!(found.len(), needles.len(), "{found:#?}");
    for (violation, needle) in found.iter().zip(needles) {
        assert!(
            violation.contains(needle),
            "{violation} should mention {needle}"
        );
    }
}

#[tokio::test]
async fn the_hydra_fake_refuses_and_records_what_hydra_documents_as_wrong() {
    let hydra = HydraFake::start().await;
    let app = front_for(&hydra).await;
    let client_id = native_client(&app).await;
    let callback = app.url("/callback");
    let pkce = pkce("fake");
    let authorize = |extra: &[(&str, &str)]| {
        let mut query = vec![
            ("response_type", "code"),
            ("client_id", client_id.as_str()),
            ("redirect_uri", callback.as_str()),
            ("state", "long-enough-state"),
            ("scope", "openid"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        for (name, value) in extra {
            query.retain(|(kept, _)| kept != name);
            query.push((name, value));
        }
        browser()
            .get(format!("{}/oauth2/auth", hydra.base))
            .query(&query)
            .send()
    };
    let unregistered = authorize(&[("redirect_uri", "http://127.0.0.1:1/other")]).await;
    assert_eq!(unregistered.unwrap().status(), StatusCode::BAD_REQUEST);
    let short_state = location(&authorize(&[("state", "short")]).await.unwrap());
    assert_eq!(param(&short_state, "error").unwrap(), "invalid_state");
    // A scope the client may not ask for is the app's choice: answered,
    // not recorded.
    let scope = location(&authorize(&[("scope", "admin")]).await.unwrap());
    assert_eq!(param(&scope, "error").unwrap(), "invalid_scope");
    // A public client presenting a secret, and a code nobody issued.
    let token = |form: &[(&str, &str)], secret: Option<&str>| {
        let request = reqwest::Client::new().post(format!("{}/oauth2/token", hydra.base));
        let request = match secret {
            Some(secret) => request.basic_auth(&client_id, Some(secret)),
            None => request,
        };
        request.form(form).send()
    };
    let code_grant = [
        ("grant_type", "authorization_code"),
        ("code", "ory_ac_made-up"),
        ("redirect_uri", callback.as_str()),
        ("client_id", client_id.as_str()),
    ];
    let basic = token(&code_grant[..3], Some("s3cret")).await.unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    let made_up = token(&code_grant, None).await.unwrap();
    assert_eq!(made_up.status(), StatusCode::BAD_REQUEST);
    assert_recorded(
        &hydra.ledger.violations(),
        &[
            "redirect_uri `http://127.0.0.1:1/other` not registered",
            "state shorter than 8 characters",
            "method 'client_secret_basic' was requested",
            "Unknown",
        ],
    );
}

#[tokio::test]
async fn the_okta_fake_refuses_and_records_what_okta_documents_as_wrong() {
    let okta = OktaFake::start().await;
    let app = front_for(&okta).await;
    let client_id = native_client(&app).await;
    let callback = app.url("/callback");
    let pkce = pkce("fake");
    let issuer = Upstream::issuer(&okta);
    let authorize = |extra: &[(&str, &str)]| {
        let mut query = vec![
            ("response_type", "code"),
            ("client_id", client_id.as_str()),
            ("redirect_uri", callback.as_str()),
            ("state", "state-1"),
            ("scope", "openid"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        for (name, value) in extra {
            query.retain(|(kept, _)| kept != name);
            if !value.is_empty() {
                query.push((name, value));
            }
        }
        browser()
            .get(format!("{issuer}/v1/authorize"))
            .query(&query)
            .send()
    };
    let plain = location(
        &authorize(&[("code_challenge_method", "plain")])
            .await
            .unwrap(),
    );
    assert_eq!(param(&plain, "error").unwrap(), "invalid_request");
    let no_state = location(&authorize(&[("state", "")]).await.unwrap());
    assert_eq!(param(&no_state, "error").unwrap(), "invalid_request");
    let scope = location(&authorize(&[("scope", "openid admin")]).await.unwrap());
    assert_eq!(param(&scope, "error").unwrap(), "invalid_scope");
    // Two credentials at once, and a revocation hint Okta does not know.
    let post = |path: &str, form: &[(&str, &str)]| {
        reqwest::Client::new()
            .post(format!("{issuer}{path}"))
            .basic_auth(&client_id, Some("s3cret"))
            .form(form)
            .send()
    };
    let twice = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "x"),
        ("client_id", "other"),
    ];
    let answer = post("/v1/token", &twice).await.unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    let public = reqwest::Client::new()
        .post(format!("{issuer}/v1/revoke"))
        .form(&[
            ("token", "x"),
            ("token_type_hint", "id_token"),
            ("client_id", &client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), StatusCode::BAD_REQUEST);
    assert_recorded(
        &okta.ledger.violations(),
        &[
            "`code_challenge_method=plain` is not one of the documented values",
            "required query parameter `state` missing",
            "Can't supply multiple client credentials",
            "`token_type_hint=id_token` is not one of the documented values",
        ],
    );
}
