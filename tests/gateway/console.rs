//! The operator console (issue 31) in Debian's chromium, driven by
//! playwright-core from `tests/interop/browser/console.mjs`, in front of
//! the Hydra fake: signing in with an operator token, finding clients by
//! software and by redirect host, deleting one (gone here and at Hydra),
//! the Activity charts, markup shown as text, forged posts refused; and
//! over plain HTTP: every route without a session, no CORS, CSRF, tokens
//! revoked, the trail naming the operator.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use serde_json::{Value, json};

use crate::providers::Subject;
use crate::support::hydra::HydraFake;
use crate::support::*;
use dcr_gateway::clock::Clock;
use dcr_gateway::http::console::create_operator_token;

/// A gateway in front of `fake` with the console on.
async fn console_app(fake: &HydraFake) -> TestApp {
    spawn_app_with(&format!(
        "[provider]\n{}\ntimeout = \"2s\"\nreconcile_interval = \"0s\"\n\
         [console]\nenabled = true\n",
        HydraFake::keys_at(&fake.base)
    ))
    .await
}

/// A new operator token for `name`, in clear.
async fn operator_token(app: &TestApp, name: &str) -> (String, String) {
    let (token, record) = create_operator_token(
        app.operator_tokens.as_ref(),
        name,
        None,
        app.clock.now_unix(),
    )
    .await
    .unwrap();
    (token.expose().to_owned(), record.id)
}

/// Runs the `check` of console.mjs against `app` with `token`.
async fn in_browser(app: &TestApp, token: &str, check: &str, mut input: Value) -> Value {
    input["check"] = json!(check);
    input["base"] = json!(app.base);
    input["token"] = json!(token);
    let input = input.to_string();
    tokio::task::spawn_blocking(move || {
        crate::support::oidc_provider::browser("console.mjs", &[&input])
    })
    .await
    .unwrap()
}

/// Registers a client of `software_id` sent back to `redirect_uri`.
async fn register(app: &TestApp, name: &str, software_id: &str, redirect_uri: &str) -> String {
    let client = app
        .register(&json!({
            "client_name": name,
            "software_id": software_id,
            "redirect_uris": [redirect_uri],
        }))
        .await;
    client["client_id"].as_str().unwrap().to_owned()
}

fn ids(seen: &Value, key: &str) -> Vec<String> {
    let mut ids: Vec<String> = serde_json::from_value(seen[key].clone()).unwrap();
    ids.sort();
    ids
}

#[tokio::test]
async fn an_operator_finds_clients_deletes_one_and_sees_the_activity_in_a_browser() {
    let fake = HydraFake::start().await;
    let app = console_app(&fake).await;
    let mut claude = vec![
        register(
            &app,
            "Claude",
            "claude-ai",
            "https://claude.ai/api/mcp/auth_callback",
        )
        .await,
        register(
            &app,
            "Claude",
            "claude-ai",
            "https://claude.ai/api/mcp/auth_callback",
        )
        .await,
    ];
    claude.sort();
    let cursor = register(&app, "Cursor", "cursor", "http://127.0.0.1:33418/callback").await;
    let vscode = register(&app, "VS Code", "vscode", "https://vscode.dev/redirect").await;
    let (token, _) = operator_token(&app, "alice").await;

    let seen = in_browser(
        &app,
        &token,
        "journey",
        json!({ "software": "claude-ai", "host": "127.0.0.1", "open": claude[0] }),
    )
    .await;
    assert_eq!(seen["signed_out_at"], "/console/login", "{seen}");
    assert_eq!(seen["signed_in_at"], "/console/clients", "{seen}");
    assert_eq!(ids(&seen, "by_software"), claude, "{seen}");
    assert_eq!(
        ids(&seen, "by_host"),
        std::slice::from_ref(&cursor),
        "{seen}"
    );
    assert_eq!(seen["client_heading"], "Claude", "{seen}");
    let client_text = seen["client_text"].as_str().unwrap();
    assert!(client_text.contains(&claude[0]), "{client_text}");
    assert!(
        client_text.contains("register\tsuccess"),
        "the trail: {client_text}"
    );
    assert_eq!(seen["confirm_title"], "Delete a client", "{seen}");
    assert!(
        seen["deleted"].as_str().unwrap().contains(&claude[0]),
        "{seen}"
    );
    assert_eq!(ids(&seen, "after_delete"), [claude[1].clone()], "{seen}");
    assert_eq!(
        seen["console"],
        json!([]),
        "nothing refused by the policy: {seen}"
    );

    // Gone here and at Hydra; the others stay in both.
    assert!(fake.client(&claude[0]).is_none());
    assert!(app.service.show(&claude[0]).await.is_err());
    for kept in [&claude[1], &cursor, &vscode] {
        assert!(fake.client(kept).is_some(), "{kept} at Hydra");
    }

    // The charts drew the four registrations (the first of each pair of
    // charts: the last 48 hours), with a bar per hour and per day.
    let charts = seen["charts"].as_array().unwrap();
    assert_eq!(charts.len(), 12, "{seen}");
    let registrations: Vec<&Value> = charts
        .iter()
        .filter(|chart| {
            chart["caption"]
                .as_str()
                .unwrap()
                .starts_with("Registrations")
        })
        .collect();
    assert_eq!(registrations.len(), 2);
    for chart in &registrations {
        assert_eq!(chart["total"], 4, "{chart}");
        assert!(chart["rendered"].as_f64().unwrap() > 50.0, "drawn: {chart}");
    }
    assert_eq!(registrations[0]["bars"], 48);
    assert_eq!(registrations[1]["bars"], 30);
    let management = charts
        .iter()
        .find(|chart| chart["caption"].as_str().unwrap().starts_with("RFC 7592"))
        .unwrap();
    assert_eq!(management["total"], 0, "{management}");

    // The provider page names the back end and the operations it called.
    let provider = seen["provider"].as_str().unwrap();
    assert!(provider.contains("Back end: hydra"), "{provider}");
    assert!(provider.contains("Breaker: closed"), "{provider}");

    // The trail names the operator who deleted it.
    let trail = app
        .service
        .journal()
        .trail_of(&claude[0], 10)
        .await
        .unwrap();
    assert_eq!(trail[0].action, "operator_delete");
    assert_eq!(trail[0].actor.as_deref(), Some("operator:alice"));
    // Its page stays, with the trail.
    let cookie = session(&app, &token).await.unwrap();
    let page = page_of(&app, &cookie, &format!("/console/clients/{}", claude[0])).await;
    assert!(page.contains("no longer exists"), "{page}");
    assert!(
        page.contains("<td>operator_delete</td><td>success</td><td>operator:alice</td>"),
        "{page}"
    );
    assert!(!page.contains("Delete it"), "{page}");
    let unknown = page_of(&app, &cookie, "/console/clients/never-was").await;
    assert!(unknown.contains("No such client."), "{unknown}");
}

#[tokio::test]
async fn markup_in_a_clients_metadata_is_shown_as_text_in_the_browser() {
    let fake = HydraFake::start().await;
    let app = console_app(&fake).await;
    let name = "<img src=x onerror=\"window.pwned=1;alert(1)\"><b>Bold</b>";
    let software = "<script>window.pwned=2</script>";
    let client = app
        .register(&json!({
            "client_name": name,
            "software_id": software,
            "client_uri": "https://app.example.com/?q=<i>x</i>\"><svg/onload=alert(3)>",
            "redirect_uris": ["https://app.example.com/cb"],
        }))
        .await;
    let client_id = client["client_id"].as_str().unwrap();
    let (token, _) = operator_token(&app, "bob").await;
    let seen = in_browser(
        &app,
        &token,
        "markup",
        json!({ "software": software, "client_id": client_id }),
    )
    .await;
    for page in ["list", "client"] {
        let shown = &seen[page];
        assert_eq!(
            shown["made"], 0,
            "no element from the metadata on {page}: {seen}"
        );
        assert_eq!(
            shown["pwned"],
            Value::Null,
            "no script ran on {page}: {seen}"
        );
        let text = shown["text"].as_str().unwrap();
        assert!(text.contains(name), "the name as text on {page}: {text}");
        assert!(
            text.contains(software),
            "the software as text on {page}: {text}"
        );
        assert!(shown["title"].as_str().unwrap().ends_with("dcr-gateway"));
    }
    let client_page = seen["client"]["text"].as_str().unwrap();
    assert!(
        client_page.contains("<svg/onload=alert(3)>"),
        "{client_page}"
    );
    assert_eq!(seen["console"], json!([]), "{seen}");
}

#[tokio::test]
async fn a_forged_delete_from_another_site_or_origin_is_refused_and_the_page_cannot_be_framed() {
    let fake = HydraFake::start().await;
    let app = console_app(&fake).await;
    let kept = register(&app, "Kept", "kept", "https://app.example.com/cb").await;
    let (token, _) = operator_token(&app, "carol").await;
    let seen = in_browser(&app, &token, "forged", json!({ "client_id": kept })).await;
    assert_eq!(
        seen["cross_site"], 401,
        "no cookie from another site: {seen}"
    );
    assert_eq!(seen["cross_origin"], 403, "another origin refused: {seen}");
    assert!(app.service.show(&kept).await.is_ok());
    assert!(fake.client(&kept).is_some());

    let framed = in_browser(&app, &token, "framing", json!({})).await;
    for frame in framed["frames"].as_array().unwrap() {
        assert_eq!(frame["tables"], 0, "the list shows in no frame: {framed}");
    }
}

/// Every console route and method, with a client's id where one is named.
fn routes(client_id: &str) -> Vec<(reqwest::Method, String)> {
    use reqwest::Method;
    let client = format!("/console/clients/{client_id}");
    vec![
        (Method::GET, "/console".into()),
        (Method::GET, "/console/clients".into()),
        (Method::GET, "/console/clients?software=x&host=y".into()),
        (Method::GET, client.clone()),
        (Method::GET, format!("{client}/delete")),
        (Method::POST, format!("{client}/delete")),
        (Method::GET, format!("{client}/rotate-secret")),
        (Method::POST, format!("{client}/rotate-secret")),
        (Method::GET, "/console/activity".into()),
        (Method::GET, "/console/provider".into()),
        (Method::POST, "/console/logout".into()),
    ]
}

#[tokio::test]
async fn without_a_session_every_console_route_leads_to_sign_in_and_none_answers_cors() {
    let fake = HydraFake::start().await;
    let app = console_app(&fake).await;
    let client = register(&app, "Kept", "kept", "https://app.example.com/cb").await;
    let http = no_redirects();
    for (method, path) in routes(&client) {
        for cookie in [None, Some("dcr-console=forged"), Some("dcr-console=")] {
            let mut request = http
                .request(method.clone(), format!("{}{path}", app.base))
                .header(ORIGIN, app.base.as_str())
                .body(format!("csrf=x&confirm={client}"));
            if let Some(cookie) = cookie {
                request = request.header(COOKIE, cookie);
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            if method == reqwest::Method::GET {
                assert_eq!(status, StatusCode::SEE_OTHER, "{method} {path}");
                assert_eq!(response.headers()[LOCATION], "/console/login");
            } else {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
            }
        }
        // From another origin, a page gets no CORS answer, nor a preflight.
        let response = http
            .request(method.clone(), format!("{}{path}", app.base))
            .header(ORIGIN, "https://evil.example")
            .send()
            .await
            .unwrap();
        assert!(
            !response
                .headers()
                .contains_key("access-control-allow-origin"),
            "{method} {path}"
        );
        let preflight = http
            .request(reqwest::Method::OPTIONS, format!("{}{path}", app.base))
            .header(ORIGIN, "https://evil.example")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert!(
            !preflight
                .headers()
                .contains_key("access-control-allow-origin"),
            "preflight {path}"
        );
        assert_ne!(
            preflight.status(),
            StatusCode::NO_CONTENT,
            "preflight {path}"
        );
    }
    assert!(fake.client(&client).is_some());
}

/// Signs in over HTTP with `token`; the session cookie (`name=value`).
async fn session(app: &TestApp, token: &str) -> Option<String> {
    let response = no_redirects()
        .post(format!("{}/console/login", app.base))
        .header(ORIGIN, app.base.as_str())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap();
    let cookie = response
        .headers()
        .get(SET_COOKIE)?
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    Some(cookie.split(';').next().unwrap().to_owned())
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The page at `path`, seen with the session `cookie`.
async fn page_of(app: &TestApp, cookie: &str, path: &str) -> String {
    no_redirects()
        .get(format!("{}{path}", app.base))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The CSRF token of the page at `path`'s forms.
async fn csrf_of(app: &TestApp, cookie: &str, path: &str) -> String {
    let page = page_of(app, cookie, path).await;
    let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    page[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn posts_need_the_consoles_origin_and_csrf_token_and_a_revoked_token_ends_its_sessions() {
    let fake = HydraFake::start().await;
    let app = console_app(&fake).await;
    let client = register(&app, "Kept", "kept", "https://app.example.com/cb").await;
    let (token, id) = operator_token(&app, "dave").await;
    assert_eq!(session(&app, "not-a-token").await, None);
    let cookie = session(&app, &token).await.unwrap();
    let delete = format!("{}/console/clients/{client}/delete", app.base);
    let csrf = csrf_of(&app, &cookie, &format!("/console/clients/{client}/delete")).await;
    let post = |origin: Option<&str>, body: String| {
        let mut request = no_redirects()
            .post(&delete)
            .header(COOKIE, &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(origin) = origin {
            request = request.header(ORIGIN, origin);
        }
        request.send()
    };
    let good = format!("csrf={csrf}&confirm={client}");
    let cases = [
        (Some("https://evil.example"), good.clone()),
        (None, good.clone()),
        (Some(app.base.as_str()), format!("confirm={client}")),
        (
            Some(app.base.as_str()),
            format!("csrf=AAAA&confirm={client}"),
        ),
    ];
    for (origin, body) in cases {
        let status = post(origin, body.clone()).await.unwrap().status();
        assert_eq!(status, StatusCode::FORBIDDEN, "{origin:?} {body}");
    }
    let unconfirmed = post(Some(&app.base), format!("csrf={csrf}")).await.unwrap();
    assert_eq!(unconfirmed.status(), StatusCode::BAD_REQUEST);
    assert!(fake.client(&client).is_some(), "nothing deleted yet");

    // A page's answer carries the policy: no script, no framing.
    let page = no_redirects()
        .get(format!("{}/console/clients", app.base))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert_eq!(page.headers()["cache-control"], "no-store");

    // Revoked, the token's session ends at once.
    assert!(
        app.operator_tokens
            .revoke_operator_token(&id)
            .await
            .unwrap()
    );
    let status = post(Some(&app.base), good).await.unwrap().status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(session(&app, &token).await.is_none());
    assert!(fake.client(&client).is_some());
}

#[tokio::test]
async fn the_console_is_off_by_default() {
    let app = spawn_app().await;
    let response = no_redirects()
        .get(format!("{}/console/clients", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn failed_sign_ins_are_limited_and_the_activity_page_says_who_hit_the_limit() {
    let fake = HydraFake::start().await;
    let app = spawn_app_with(&format!(
        "[provider]\n{}\ntimeout = \"2s\"\nreconcile_interval = \"0s\"\n\
         [console]\nenabled = true\n[limits]\nauth_failures_per_ip = \"2/minute\"\n",
        HydraFake::keys_at(&fake.base)
    ))
    .await;
    let (token, _) = operator_token(&app, "erin").await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = no_redirects()
            .post(format!("{}/console/login", app.base))
            .header(ORIGIN, app.base.as_str())
            .body("token=wrong")
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 429]);
    // The right token still signs in: only failures count.
    let cookie = session(&app, &token).await.unwrap();
    let page = page_of(&app, &cookie, "/console/activity").await;
    assert!(
        page.contains("<td>auth_failures</td><td>127.0.0.1</td>"),
        "{page}"
    );
    assert!(
        page.contains("Rate-limit hits: <strong data-total=\"1\">"),
        "{page}"
    );
    assert!(
        page.contains("Refusals: <strong data-total=\"2\">"),
        "{page}"
    );
}

#[tokio::test]
async fn the_clients_table_names_each_redirect_host_once() {
    let fake = HydraFake::start().await;
    let app = console_app(&fake).await;
    let (token, _) = operator_token(&app, "frank").await;
    let client = app
        .register(&json!({
            "client_name": "Hosts",
            "redirect_uris": [
                "https://claude.ai/a",
                "https://x.example/cb",
                "https://claude.ai/b",
            ],
        }))
        .await;
    let id = client["client_id"].as_str().unwrap();
    let cookie = session(&app, &token).await.unwrap();
    let page = page_of(&app, &cookie, "/console/clients").await;
    assert!(
        page.contains(&format!(
            "<code>{id}</code></td><td><bdi></bdi></td><td>claude.ai x.example</td>"
        )),
        "{page}"
    );
}
