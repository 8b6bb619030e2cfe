//! The front's third trust pass (issue 27): the consent page bound to the
//! browser that saw it, a document's client used only by its URL, caps on
//! documents and on logins in progress that hold under races, the resource
//! bound at `/authorize`, expired secrets, and a replay that races the
//! first redemption.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};

use super::cimd::{LOOPBACK_ALLOWED, Served, document, gateway};
use super::*;
use crate::support::hydra::{Fault, HydraFake};

/// The consent page of `url`'s document client for a request to
/// `redirect_uri`: the page, the browser's cookie (`name=value`) and the
/// form token.
async fn consent_page(
    app: &TestApp,
    url: &str,
    redirect_uri: &str,
    pkce: &Pkce,
) -> (String, String, String) {
    let response = authorize(app, url, redirect_uri, pkce, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(
        policy.contains("default-src 'none'") && policy.contains("frame-ancestors 'none'"),
        "{policy}"
    );
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let page = response.text().await.unwrap();
    let token = page
        .split("name=\"consent\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    (page, cookie, token)
}

/// Posts the consent form with `decision`, from a browser holding `cookie`
/// (if any), sent from `origin` (if any).
async fn post_consent(
    app: &TestApp,
    cookie: Option<&str>,
    token: &str,
    decision: &str,
    origin: Option<&str>,
) -> reqwest::Response {
    let mut request = browser()
        .post(app.url("/consent"))
        .form(&[("consent", token), ("decision", decision)]);
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    if let Some(origin) = origin {
        request = request.header(ORIGIN, origin);
    }
    request.send().await.unwrap()
}

/// A gateway with documents and the consent page, serving one document
/// named `name`; its URL.
pub(super) async fn consenting(upstream: &OidcProvider, name: &str) -> (TestApp, Served, String) {
    let app = gateway(
        upstream,
        &format!("{LOOPBACK_ALLOWED}consent_page = true\n"),
    )
    .await;
    let served = Served::default();
    let url = format!("{}/clients/app.json", served.start().await);
    served.put("/clients/app.json", &document(&url, name), "max-age=60");
    (app, served, url)
}

#[tokio::test]
async fn the_consent_page_posts_from_its_browser_and_links_nowhere() {
    let upstream = OidcProvider::start().await;
    let name = "<b>Editor</b>\u{202E}txt.exe\u{200B}";
    let (app, _served, url) = consenting(&upstream, name).await;
    let pkce = pkce("consent");
    let redirect_uri = "http://127.0.0.1:50999/cb";
    let (page, cookie, token) = consent_page(&app, &url, redirect_uri, &pkce).await;
    // Escaped, and stripped of the override and the invisible space.
    assert!(
        page.contains("&lt;b&gt;Editor&lt;/b&gt;txt.exe asks you to sign in"),
        "{page}"
    );
    assert!(page.contains("sent back to <strong>127.0.0.1</strong>"));
    // Nothing on the page leads to the provider: no link to forward.
    assert!(!page.contains(&upstream.issuer), "{page}");
    assert!(!page.contains("href="), "{page}");

    let response = post_consent(&app, Some(&cookie), &token, "allow", Some(&app.base)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let to_provider = location(&response);
    assert!(to_provider.as_str().starts_with(&upstream.issuer));

    let callback = log_in(&upstream, &to_provider, "dave").await;
    let back = browser()
        .get(callback)
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    let back = location(&back);
    assert!(back.as_str().starts_with(redirect_uri), "{back}");
    let (status, tokens) = redeem(&app, &url, &back, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
}

/// The attack of issue 27: whoever holds the page's token, or the provider
/// URL, cannot carry the login to another browser.
#[tokio::test]
async fn a_consent_cannot_be_carried_to_another_browser() {
    let upstream = OidcProvider::start().await;
    let (app, _served, url) = consenting(&upstream, "Editor").await;
    let pkce = pkce("carried");
    let (_, cookie, token) = consent_page(&app, &url, REGISTERED, &pkce).await;
    let (_, other_cookie, _) = consent_page(&app, &url, REGISTERED, &pkce).await;
    assert_ne!(cookie, other_cookie);
    // The form token from a browser without the cookie, or with another
    // browser's, or posted from another site: refused, nothing spent.
    let without = post_consent(&app, None, &token, "allow", None).await;
    assert_page(
        without,
        StatusCode::BAD_REQUEST,
        "did not open the consent page",
    )
    .await;
    let other = post_consent(&app, Some(&other_cookie), &token, "allow", None).await;
    assert_page(other, StatusCode::BAD_REQUEST, "another").await;
    let forged = post_consent(
        &app,
        Some(&cookie),
        &token,
        "allow",
        Some("https://evil.example"),
    )
    .await;
    assert_page(forged, StatusCode::BAD_REQUEST, "from another site").await;
    // The right browser still can; the provider's redirect back, taken to a
    // browser without the cookie, delivers nothing.
    let response = post_consent(&app, Some(&cookie), &token, "allow", None).await;
    let to_provider = location(&response);
    let callback = log_in(&upstream, &to_provider, "dave").await;
    let elsewhere = browser().get(callback).send().await.unwrap();
    assert_page(elsewhere, StatusCode::BAD_REQUEST, "another browser").await;
}

#[tokio::test]
async fn declining_sends_the_app_access_denied_with_its_state() {
    let upstream = OidcProvider::start().await;
    let (app, _served, url) = consenting(&upstream, "Editor").await;
    let (_, cookie, token) = consent_page(&app, &url, REGISTERED, &pkce("deny")).await;
    let response = post_consent(&app, Some(&cookie), &token, "deny", None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let back = location(&response);
    assert!(back.as_str().starts_with(REGISTERED));
    assert_eq!(param(&back, "error").unwrap(), "access_denied");
    assert_eq!(param(&back, "state").unwrap(), "app-state-1");
    assert_eq!(param(&back, "iss").unwrap(), app.base);
}

/// A document's client answers only to the document's URL: its internal
/// id, which the provider's screens show, opens nothing.
#[tokio::test]
async fn a_document_client_is_usable_only_by_its_url() {
    let upstream = OidcProvider::start().await;
    let app = gateway(&upstream, LOOPBACK_ALLOWED).await;
    let served = Served::default();
    let url = format!("{}/clients/app.json", served.start().await);
    served.put("/clients/app.json", &document(&url, "Doc"), "max-age=60");
    let pkce = pkce("by-url");
    let first = authorize(&app, &url, REGISTERED, &pkce, &[]).await;
    let internal = param(&location(&first), "client_id").unwrap();
    assert_ne!(internal, url);
    let by_id = authorize(&app, &internal, REGISTERED, &pkce, &[]).await;
    assert_page(by_id, StatusCode::BAD_REQUEST, "no such client").await;
    let (status, body) = token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "anything"),
            ("client_id", &internal),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");
}

/// 30 first sights of distinct documents on one host at once, against a
/// cap of 3 per host: exactly 3 clients, at the gateway and the provider.
#[tokio::test]
async fn document_caps_hold_when_first_sights_race() {
    let upstream = OidcProvider::start().await;
    let app = gateway(
        &upstream,
        &format!("{LOOPBACK_ALLOWED}max_per_host = 3\nfetches_per_host = \"unlimited\"\n"),
    )
    .await;
    let served = Served::default();
    let base = served.start().await;
    let urls: Vec<String> = (0..30)
        .map(|i| {
            let url = format!("{base}/clients/{i}.json");
            served.put(
                &format!("/clients/{i}.json"),
                &document(&url, "Race"),
                "max-age=60",
            );
            url
        })
        .collect();
    let pkce = pkce("race");
    let answers = futures_util::future::join_all(
        urls.iter()
            .map(|url| authorize(&app, url, REGISTERED, &pkce, &[])),
    )
    .await;
    let sent_on = answers
        .iter()
        .filter(|answer| answer.status() == StatusCode::FOUND)
        .count();
    assert_eq!(sent_on, 3, "three documents got a client");
    assert_eq!(app.rows().await.len(), 3, "{:?}", app.rows().await);
}

/// Logins in progress take no room: `/authorize` stores nothing (the login
/// travels sealed in the provider-side state), so no number of started and
/// abandoned logins fills anything; a state is answered once.
#[tokio::test]
async fn starting_logins_stores_nothing_and_a_state_is_answered_once() {
    let upstream = OidcProvider::start().await;
    let app = spawn_app_with(&format!(
        "{}authorize_per_ip = \"unlimited\"\n",
        front_toml(&upstream)
    ))
    .await;
    let client_id = native_client(&app).await;
    let pkce = pkce("nothing");
    let mut last = None;
    for _ in 0..200 {
        let to_provider = location(&authorize(&app, &client_id, REGISTERED, &pkce, &[]).await);
        assert!(to_provider.as_str().starts_with(&upstream.issuer));
        last = Some(to_provider);
    }
    assert_eq!(stored_logins(&app).await, 0);
    // The state is sealed: it says nothing of the app's redirect URI.
    let to_provider = last.unwrap();
    let state = param(&to_provider, "state").unwrap();
    assert!(
        !state.contains("127.0.0.1") && !state.contains("4000"),
        "{state}"
    );
    let callback = log_in(&upstream, &to_provider, "frank").await;
    let back = location(&browser().get(callback.clone()).send().await.unwrap());
    assert!(param(&back, "code").is_some());
    assert_eq!(stored_logins(&app).await, 1);
    let again = browser().get(callback).send().await.unwrap();
    assert_page(again, StatusCode::BAD_REQUEST, "already completed").await;
    // A state the gateway did not seal opens nothing.
    let forged = browser()
        .get(app.url("/callback"))
        .query(&[
            ("state", state.replace(&state[10..12], "zz").as_str()),
            ("code", "c"),
        ])
        .send()
        .await
        .unwrap();
    assert_page(forged, StatusCode::BAD_REQUEST, "unknown").await;
}

/// How many logins the gateway's store holds.
async fn stored_logins(app: &TestApp) -> i64 {
    let url = format!("sqlite://{}", app.db_path.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM front_transactions")
        .fetch_one(&pool)
        .await
        .unwrap()
}

/// RFC 8707: the resource bound at `/authorize` is the grant's; another at
/// `/token` is `invalid_target`, before the code is spent.
#[tokio::test]
async fn the_resource_bound_at_authorize_is_the_grants() {
    let upstream = OidcProvider::start().await;
    let app = front_for(&upstream).await;
    let client_id = native_client(&app).await;
    let pkce = pkce("resource");
    let resource = [("resource", "https://mcp.example.com/")];
    let to_provider = location(&authorize(&app, &client_id, REGISTERED, &pkce, &resource).await);
    let callback = log_in(&upstream, &to_provider, "erin").await;
    let back = location(&browser().get(callback).send().await.unwrap());
    let code = param(&back, "code").unwrap();
    let form = |resource: &'static str| {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("client_id", client_id.as_str()),
            ("redirect_uri", REGISTERED),
            ("code_verifier", pkce.verifier.as_str()),
        ];
        if !resource.is_empty() {
            form.push(("resource", resource));
        }
        form
    };
    let (status, body) = token(&app, &form("https://other.example.com/")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_target");
    let (status, body) = token(&app, &form("")).await;
    assert_eq!(status, StatusCode::OK, "the code was not spent: {body}");
}

/// A secret past its `client_secret_expires_at` (here from the policy's
/// `client_secret_lifetime`, at Hydra, where the gateway makes secrets) no
/// longer authenticates at `/token`.
#[tokio::test]
async fn a_client_secret_past_its_expiry_no_longer_authenticates() {
    let fake = HydraFake::start().await;
    let app = spawn_app_with(&format!(
        "{}[policies.default]\nclient_secret_lifetime = \"1h\"\n",
        front_toml(&fake)
    ))
    .await;
    let client = app
        .register(&json!({
            "redirect_uris": ["http://127.0.0.1:4000/web"],
            "token_endpoint_auth_method": "client_secret_post",
            "grant_types": ["authorization_code", "refresh_token"],
        }))
        .await;
    let id = client["client_id"].as_str().unwrap();
    let secret = client["client_secret"].as_str().unwrap();
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "not-a-real-one"),
        ("client_id", id),
        ("client_secret", secret),
    ];
    let (status, body) = token(&app, &refresh).await;
    assert_ne!(body["error"], "invalid_client", "{status} {body}");
    app.clock.advance(Duration::from_secs(2 * 3600));
    let (status, body) = token(&app, &refresh).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    fake.ledger.assert_clean("Hydra");
}

/// A replay that arrives while the first redemption is still at the
/// provider: neither gets tokens, and what the provider issued for the
/// first is revoked.
#[tokio::test]
async fn a_replay_racing_the_first_redemption_revokes_what_it_got() {
    let fake = HydraFake::start().await;
    let app = front_for(&fake).await;
    let client_id = native_client(&app).await;
    let pkce = pkce("race-replay");
    let back = authorized(&app, &fake, &client_id, REGISTERED, &pkce).await;
    // The provider's token endpoint answers the first redemption slowly.
    fake.ledger.queue_faults(&[Fault::Slow]);
    let arrived = fake.ledger.requests();
    let first = redeem(&app, &client_id, &back, &pkce);
    let replay = async {
        assert!(
            eventually(|| async { fake.ledger.requests() > arrived }).await,
            "the first redemption reached the provider"
        );
        redeem(&app, &client_id, &back, &pkce).await
    };
    let ((first_status, first_body), (replay_status, replay_body)) = tokio::join!(first, replay);
    assert_eq!(replay_status, StatusCode::BAD_REQUEST, "{replay_body}");
    assert_eq!(first_status, StatusCode::BAD_REQUEST, "{first_body}");
    assert_eq!(first_body["error"], "invalid_grant");
    assert_eq!(
        fake.active_tokens(),
        0,
        "what the provider issued is revoked"
    );
    fake.ledger.assert_clean("Hydra");
}

/// The janitor removes the clients of documents nobody used for the
/// operator's idle lifetime; the next use registers them again.
#[tokio::test]
async fn unused_document_clients_leave_and_come_back_on_use() {
    let upstream = OidcProvider::start().await;
    let app = gateway(
        &upstream,
        &format!("{LOOPBACK_ALLOWED}idle_lifetime = \"1d\"\n"),
    )
    .await;
    let served = Served::default();
    let url = format!("{}/clients/app.json", served.start().await);
    served.put("/clients/app.json", &document(&url, "Idle"), "max-age=60");
    let pkce = pkce("idle");
    let first = location(&authorize(&app, &url, REGISTERED, &pkce, &[]).await);
    assert_eq!(app.rows().await.len(), 1);
    let front = app.front.as_ref().unwrap();
    front.sweep().await.unwrap();
    assert_eq!(app.rows().await.len(), 1, "used today: kept");
    app.clock.advance(Duration::from_secs(2 * 86_400));
    front.sweep().await.unwrap();
    assert!(app.rows().await.is_empty(), "unused for two days: removed");
    let again = location(&authorize(&app, &url, REGISTERED, &pkce, &[]).await);
    assert_ne!(param(&again, "client_id"), param(&first, "client_id"));
    assert_eq!(app.rows().await.len(), 1);
}

#[tokio::test]
async fn front_rate_limits_are_counted_and_audited() {
    let upstream = OidcProvider::start().await;
    let app = spawn_app_with(&format!(
        "{}token_per_ip = \"2/minute\"\n",
        front_toml(&upstream)
    ))
    .await;
    for _ in 0..2 {
        let (status, _) = token(&app, &[("grant_type", "refresh_token")]).await;
        assert_ne!(status, StatusCode::TOO_MANY_REQUESTS);
    }
    let response = app
        .http
        .post(app.url("/token"))
        .form(&[("grant_type", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    assert!(response.headers().get(LOCATION).is_none());
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains("dcr_rate_limited_total{limit=\"token\"}"),
        "{metrics}"
    );
}
