//! Who may register, and what: initial access tokens, policies, rotation,
//! lifetimes, rate limits and audit events, each rule both ways over HTTP.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::providers::Subject;
use crate::support::hydra::HydraFake;
use crate::support::*;

const IAT_MODE: &str = "[registration]\nmode = \"initial_access_token\"\n";

async fn register_with(app: &TestApp, token: Option<&str>, body: &Value) -> reqwest::Response {
    with_token(app.http.post(app.url("/register")).json(body), token)
        .send()
        .await
        .unwrap()
}

async fn assert_invalid_token(response: reqwest::Response) {
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    let (code, _) = error_of(response, StatusCode::UNAUTHORIZED).await;
    assert_eq!(code, "invalid_token");
}

#[tokio::test]
async fn protected_registration_needs_a_valid_initial_access_token() {
    let app = spawn_app_with(IAT_MODE).await;
    assert_invalid_token(register_with(&app, None, &web_client()).await).await;
    assert_invalid_token(register_with(&app, Some("made-up"), &web_client()).await).await;

    let (token, record) = app
        .service
        .create_initial_access_token(Some(2), None, None, Some("ci".into()))
        .await
        .unwrap();
    for _ in 0..2 {
        let response = register_with(&app, Some(token.expose()), &web_client()).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    // Used up.
    assert_invalid_token(register_with(&app, Some(token.expose()), &web_client()).await).await;
    let listed = app.service.initial_access_tokens().await.unwrap();
    assert_eq!(listed[0].id, record.id);
    assert_eq!(listed[0].uses_left, Some(0));

    let (expired, _) = app
        .service
        .create_initial_access_token(None, Some(Duration::ZERO), None, None)
        .await
        .unwrap();
    assert_invalid_token(register_with(&app, Some(expired.expose()), &web_client()).await).await;

    let (revoked, revoked_record) = app
        .service
        .create_initial_access_token(None, None, None, None)
        .await
        .unwrap();
    assert_eq!(
        register_with(&app, Some(revoked.expose()), &web_client())
            .await
            .status(),
        StatusCode::CREATED
    );
    app.service
        .revoke_initial_access_token(&revoked_record.id)
        .await
        .unwrap();
    assert_invalid_token(register_with(&app, Some(revoked.expose()), &web_client()).await).await;

    // A refused registration does not spend a use.
    let (once, _) = app
        .service
        .create_initial_access_token(Some(1), None, None, None)
        .await
        .unwrap();
    let bad = json!({ "redirect_uris": ["http://evil.example.com/cb"] });
    assert_eq!(
        register_with(&app, Some(once.expose()), &bad)
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        register_with(&app, Some(once.expose()), &web_client())
            .await
            .status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_single_use_token_yields_exactly_one_client_under_concurrency() {
    let app = spawn_app_with(IAT_MODE).await;
    let (token, _) = app
        .service
        .create_initial_access_token(Some(1), None, None, None)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let http = app.http.clone();
        let url = app.url("/register");
        let token = token.expose().to_owned();
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .bearer_auth(token)
                .json(&web_client())
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            StatusCode::CREATED => created += 1,
            StatusCode::UNAUTHORIZED => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(app.rows().await.len(), 1);
}

const POLICIES: &str = r#"
[registration]
mode = "initial_access_token"
default_policy = "default"

[policies.default]
grant_types = ["authorization_code", "refresh_token"]
response_types = ["code"]
token_endpoint_auth_methods = ["client_secret_basic", "private_key_jwt", "none"]
scopes = ["openid", "profile", "email"]
default_scope = "openid"
https_only = true
redirect_hosts = ["*.example.com"]
native_loopback_http = false
native_custom_schemes = true
max_clients_per_software_id = 2

[policies.machines]
grant_types = ["client_credentials"]
token_endpoint_auth_methods = ["client_secret_basic"]
client_lifetime = "0s"
"#;

async fn policy_app() -> (TestApp, String, String) {
    let app = spawn_app_with(POLICIES).await;
    let (default, _) = app
        .service
        .create_initial_access_token(None, None, None, None)
        .await
        .unwrap();
    let (machines, _) = app
        .service
        .create_initial_access_token(None, None, Some("machines".into()), None)
        .await
        .unwrap();
    (
        app,
        default.expose().to_owned(),
        machines.expose().to_owned(),
    )
}

async fn refused_by(app: &TestApp, token: &str, body: Value, code: &str, rule: &str) {
    let response = register_with(app, Some(token), &body).await;
    let (error, description) = error_of(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error, code, "{body}: {description}");
    assert!(
        description.contains(&format!("rule `{rule}`")),
        "{description} should name {rule}"
    );
}

#[tokio::test]
async fn policies_allow_and_refuse_naming_the_rule() {
    let (app, token, machines) = policy_app().await;
    let ok = json!({ "redirect_uris": ["https://app.example.com/cb"] });
    let client: Value = register_with(&app, Some(&token), &ok)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(client["scope"], "openid", "the default scope is given");

    let with = |key: &str, value: Value| {
        let mut body = ok.clone();
        body[key] = value;
        body
    };
    refused_by(
        &app,
        &token,
        json!({
            "redirect_uris": ["https://app.example.com/cb"],
            "grant_types": ["authorization_code", "implicit"],
            // Response types that agree with the grants: only the policy refuses.
            "response_types": ["code", "code id_token"],
        }),
        "invalid_client_metadata",
        "grant_types",
    )
    .await;
    refused_by(
        &app,
        &token,
        with("token_endpoint_auth_method", json!("client_secret_post")),
        "invalid_client_metadata",
        "token_endpoint_auth_methods",
    )
    .await;
    refused_by(
        &app,
        &token,
        with("scope", json!("openid admin")),
        "invalid_client_metadata",
        "scopes",
    )
    .await;
    refused_by(
        &app,
        &token,
        json!({ "redirect_uris": ["https://evil.test/cb"] }),
        "invalid_redirect_uri",
        "redirect_hosts",
    )
    .await;
    let (code, _) = error_of(
        register_with(
            &app,
            Some(&token),
            &json!({ "redirect_uris": ["http://localhost/cb"] }),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        code, "invalid_redirect_uri",
        "https_only refuses loopback http for web clients"
    );
    refused_by(
        &app,
        &token,
        json!({ "application_type": "native", "token_endpoint_auth_method": "none", "redirect_uris": ["http://127.0.0.1:5000/cb"] }),
        "invalid_redirect_uri",
        "native_loopback_http",
    )
    .await;
    let native = json!({ "application_type": "native", "token_endpoint_auth_method": "none", "redirect_uris": ["com.example.app:/cb"] });
    assert_eq!(
        register_with(&app, Some(&token), &native).await.status(),
        StatusCode::CREATED
    );

    // At most two clients per software_id.
    let software = with("software_id", json!("acme-app"));
    for _ in 0..2 {
        assert_eq!(
            register_with(&app, Some(&token), &software).await.status(),
            StatusCode::CREATED
        );
    }
    refused_by(
        &app,
        &token,
        software,
        "invalid_client_metadata",
        "max_clients_per_software_id",
    )
    .await;

    // The token's policy applies instead of the default one.
    let machine = json!({ "grant_types": ["client_credentials"] });
    assert_eq!(
        register_with(&app, Some(&machines), &machine)
            .await
            .status(),
        StatusCode::CREATED
    );
    refused_by(
        &app,
        &machines,
        ok.clone(),
        "invalid_client_metadata",
        "grant_types",
    )
    .await;
}

#[tokio::test]
async fn updates_are_held_to_the_client_policy() {
    let (app, token, _) = policy_app().await;
    let client: Value = register_with(
        &app,
        Some(&token),
        &json!({ "redirect_uris": ["https://app.example.com/cb"] }),
    )
    .await
    .json()
    .await
    .unwrap();
    let body = update_body(
        &client,
        json!({ "redirect_uris": ["https://evil.test/cb"] }),
    );
    let (code, description) = error_of(
        app.update(&client, Some(token_of(&client)), &body).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(code, "invalid_redirect_uri");
    assert!(description.contains("redirect_hosts"));
}

#[tokio::test]
async fn expired_clients_are_removed_by_the_janitor() {
    let (app, _, machines) = policy_app().await;
    let machine: Value = register_with(
        &app,
        Some(&machines),
        &json!({ "grant_types": ["client_credentials"] }),
    )
    .await
    .json()
    .await
    .unwrap();
    let removed = app.reconciler.expire_clients().await.unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(
        removed[0].to_string(),
        machine["client_id"].as_str().unwrap()
    );
    assert_eq!(
        app.read(&machine, Some(token_of(&machine))).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn updates_rotate_the_registration_token_when_configured() {
    let app =
        spawn_app_with("[registration]\nrotate_registration_access_token = \"on_update\"\n").await;
    let client = app.register(&web_client()).await;
    let old = token_of(&client).to_owned();
    // A read never rotates.
    let read: Value = app.read(&client, Some(&old)).await.json().await.unwrap();
    assert_eq!(read["registration_access_token"], old);
    let updated: Value = app
        .update(&client, Some(&old), &update_body(&client, web_client()))
        .await
        .json()
        .await
        .unwrap();
    let new = updated["registration_access_token"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(
        app.read(&client, Some(&old)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.read(&client, Some(new)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn client_secrets_expire_and_are_renewed_on_update() {
    let app = spawn_app_with("[policies.default]\nclient_secret_lifetime = \"2s\"\n").await;
    let client = app.register(&web_client()).await;
    let issued = client["client_id_issued_at"].as_i64().unwrap();
    let expires = client["client_secret_expires_at"].as_i64().unwrap();
    assert!(
        (issued + 1..=issued + 3).contains(&expires),
        "{expires} vs {issued}"
    );
    // Before expiry an update keeps the secret.
    let kept: Value = app
        .update(
            &client,
            Some(token_of(&client)),
            &update_body(&client, web_client()),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(kept.get("client_secret").is_none());
    app.clock.advance(Duration::from_secs(4));
    let renewed: Value = app
        .update(
            &client,
            Some(token_of(&client)),
            &update_body(&client, web_client()),
        )
        .await
        .json()
        .await
        .unwrap();
    let secret = renewed["client_secret"]
        .as_str()
        .expect("a new secret after expiry");
    assert_ne!(secret, client["client_secret"].as_str().unwrap());
    assert!(renewed["client_secret_expires_at"].as_i64().unwrap() > expires);
}

#[tokio::test]
async fn operators_rotate_secrets_through_the_provider() {
    let fake = crate::support::hydra::HydraFake::start().await;
    let app = spawn_app_with(&format!(
        "[provider]\nkind = \"hydra\"\nadmin_url = \"{0}\"\nissuer = \"{0}\"\ntimeout = \"2s\"\nreconcile_interval = \"0s\"\n",
        fake.base
    ))
    .await;
    let client = app.register(&web_client()).await;
    let id = client["client_id"].as_str().unwrap();
    let secret = app.service.rotate_secret(id, "test").await.unwrap();
    assert_ne!(secret.expose(), client["client_secret"].as_str().unwrap());
    assert_eq!(fake.client(id).unwrap()["client_secret"], secret.expose());
    // A public client has no secret to rotate.
    let public = app.register(&json!({ "redirect_uris": ["https://a.example.com/cb"], "token_endpoint_auth_method": "none" })).await;
    assert!(
        app.service
            .rotate_secret(public["client_id"].as_str().unwrap(), "test")
            .await
            .is_err()
    );
    fake.ledger.assert_clean("Hydra");
}

#[tokio::test]
async fn registrations_are_rate_limited_per_ip_with_trusted_proxies_honoured() {
    let app = spawn_app_with(
        "[limits]\nregister_per_ip = \"2/minute\"\nmanage_per_client = \"3/minute\"\ntrusted_proxies = [\"127.0.0.1/32\"]\n",
    )
    .await;
    let from = |ip: &str| {
        app.http
            .post(app.url("/register"))
            .header("x-forwarded-for", ip)
            .json(&web_client())
    };
    let registered_from = |ip: &'static str| async move {
        from(ip)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    for _ in 0..2 {
        assert_eq!(
            from("203.0.113.1").send().await.unwrap().status(),
            StatusCode::CREATED
        );
    }
    let refused = from("203.0.113.1").send().await.unwrap();
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait));
    let (code, _) = error_of(refused, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(code, "rate_limited");
    // Another address behind the same trusted proxy has its own budget.
    assert_eq!(
        from("203.0.113.2").send().await.unwrap().status(),
        StatusCode::CREATED
    );

    // Management requests are limited per client.
    let client = registered_from("198.51.100.7").await;
    for _ in 0..3 {
        assert_eq!(
            app.read(&client, Some(token_of(&client))).await.status(),
            StatusCode::OK
        );
    }
    let (code, _) = error_of(
        app.read(&client, Some(token_of(&client))).await,
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
    assert_eq!(code, "rate_limited");

    // A read counts once, also when its answer is not held yet: a replace
    // refused for its metadata (one request of the budget) leaves the
    // client cached without an answer, and two reads then fit.
    let other = registered_from("198.51.100.8").await;
    let refused = app
        .update(
            &other,
            Some(token_of(&other)),
            &json!({ "client_id": other["client_id"], "redirect_uris": ["not a uri"] }),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    for _ in 0..2 {
        assert_eq!(
            app.read(&other, Some(token_of(&other))).await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        app.read(&other, Some(token_of(&other))).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn forwarded_headers_from_untrusted_peers_are_ignored() {
    let app = spawn_app_with("[limits]\nregister_per_ip = \"1/minute\"\n").await;
    let send = |ip: &str| {
        app.http
            .post(app.url("/register"))
            .header("x-forwarded-for", ip)
            .json(&web_client())
            .send()
    };
    assert_eq!(
        send("203.0.113.1").await.unwrap().status(),
        StatusCode::CREATED
    );
    // A spoofed header does not buy a new budget: the peer is what counts.
    assert_eq!(
        send("203.0.113.2").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn registrations_are_rate_limited_per_initial_access_token() {
    let app = spawn_app_with(&format!(
        "{IAT_MODE}[limits]\nregister_per_ip = \"unlimited\"\nregister_per_initial_access_token = \"2/hour\"\n"
    ))
    .await;
    let (token, _) = app
        .service
        .create_initial_access_token(None, None, None, None)
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(
            register_with(&app, Some(token.expose()), &web_client())
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    let refused = register_with(&app, Some(token.expose()), &web_client()).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let (other, _) = app
        .service
        .create_initial_access_token(None, None, None, None)
        .await
        .unwrap();
    assert_eq!(
        register_with(&app, Some(other.expose()), &web_client())
            .await
            .status(),
        StatusCode::CREATED
    );
}

/// A filter naming the request span (`[request]=debug`) can show a
/// successful read's audit line only inside that span, so no read is
/// answered from memory under it: each of three reads is audited, with its
/// request id.
#[tokio::test]
async fn a_filter_by_span_sees_every_read() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port);
    let log = dir.path().join("gateway.log");
    let server =
        ServerProcess::start_logging(&config, port, Some(&log), "info,[request]=debug").await;
    let http = reqwest::Client::new();
    let client = server.register(&web_client()).await;
    for _ in 0..3 {
        let read = http
            .get(uri_of(&client))
            .bearer_auth(token_of(&client))
            .send()
            .await
            .unwrap();
        assert_eq!(read.status(), StatusCode::OK);
    }
    server.stop().await;
    let text = std::fs::read_to_string(&log).unwrap();
    let reads: Vec<Value> = audit_events(&text)
        .into_iter()
        .filter(|e| e["action"] == "read" && e["outcome"] == "success")
        .collect();
    assert_eq!(reads.len(), 3, "{text}");
    for read in reads {
        let request_id = read["span"]["request_id"].as_str().unwrap_or_default();
        assert!(!request_id.is_empty(), "{read}");
    }
}

/// Every action is audited, at `info`, but a successful read, which is at
/// `debug` (the access line records it; `audit=debug` shows it).
#[tokio::test]
async fn every_action_is_audited_and_no_secret_reaches_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port);
    let log = dir.path().join("gateway.log");
    let server = ServerProcess::start_logging(&config, port, Some(&log), "info,audit=debug").await;
    let http = reqwest::Client::new();
    let base = server.base.clone();
    let client: Value = http
        .post(format!("{base}/register"))
        .json(&json!({ "redirect_uris": ["https://app.example.com/cb"], "software_id": "audited-app" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let uri = uri_of(&client);
    let token = token_of(&client);
    // Twice: the second read's answer is held in memory, and is still
    // audited (with its request id) when `audit=debug` asks for it.
    for _ in 0..2 {
        http.get(&uri).bearer_auth(token).send().await.unwrap();
    }
    http.put(&uri)
        .bearer_auth(token)
        .json(&json!({ "client_id": client["client_id"], "redirect_uris": ["https://app.example.com/cb"], "software_id": "audited-app" }))
        .send()
        .await
        .unwrap();
    http.get(&uri).bearer_auth("wrong").send().await.unwrap();
    http.post(format!("{base}/register"))
        .json(&json!({ "redirect_uris": ["http://evil.example.com/cb"] }))
        .send()
        .await
        .unwrap();
    http.delete(&uri).bearer_auth(token).send().await.unwrap();
    server.stop().await;

    let text = std::fs::read_to_string(&log).unwrap();
    for secret in [token, client["client_secret"].as_str().unwrap()] {
        assert!(!text.contains(secret), "a secret reached the log");
    }
    let events = audit_events(&text);
    let id = client["client_id"].as_str().unwrap();
    let find = |action: &str, outcome: &str| {
        events
            .iter()
            .find(|e| e["action"] == action && e["outcome"] == outcome)
            .unwrap_or_else(|| panic!("no {action}/{outcome} audit event in {events:#?}"))
    };
    for event in &events {
        let request_id = event["span"]["request_id"].as_str().unwrap_or_default();
        assert!(
            request_id.len() > 17,
            "an audit line without its request id: {event}"
        );
    }
    let registered = find("register", "success");
    assert_eq!(registered["client_id"], id);
    assert_eq!(registered["software_id"], "audited-app");
    assert_eq!(registered["ip"], "127.0.0.1");
    let read = find("read", "success");
    assert_eq!(read["client_id"], id);
    assert_eq!(read["level"], "DEBUG");
    let reads = events
        .iter()
        .filter(|e| e["action"] == "read" && e["outcome"] == "success")
        .count();
    assert_eq!(reads, 2, "each read is audited");
    for event in events
        .iter()
        .filter(|e| !(e["action"] == "read" && e["outcome"] == "success"))
    {
        assert_eq!(event["level"], "INFO", "{event}");
    }
    assert_eq!(find("replace", "success")["client_id"], id);
    assert_eq!(find("read", "invalid_token")["client_id"], id);
    find("register", "invalid_redirect_uri");
    assert_eq!(find("delete", "success")["client_id"], id);
}

#[test]
fn iat_commands_print_the_token_once_and_never_list_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), free_port());
    let config = config.to_str().unwrap();
    let (ok, created, stderr) = run_cli(&[
        "iat",
        "create",
        "--max-uses",
        "3",
        "--expires-in",
        "24h",
        "--note",
        "partner onboarding",
        "--config",
        config,
    ]);
    assert!(ok, "{stderr}");
    let token = created
        .lines()
        .find_map(|l| l.strip_prefix("initial_access_token: "))
        .unwrap()
        .to_owned();
    let id = created
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .unwrap()
        .to_owned();
    let (ok, listed, stderr) = run_cli(&["iat", "list", "--json", "--config", config]);
    assert!(ok, "{stderr}");
    assert!(!listed.contains(&token));
    let listed: Vec<Value> = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["uses_left"], 3);
    assert_eq!(listed[0]["note"], "partner onboarding");
    let (ok, table, _) = run_cli(&["iat", "list", "--config", config]);
    assert!(ok && table.contains(&id) && !table.contains(&token));
    let (ok, _, stderr) = run_cli(&["iat", "revoke", &id, "--config", config]);
    assert!(ok, "{stderr}");
    let (ok, listed, _) = run_cli(&["iat", "list", "--json", "--config", config]);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Vec<Value>>(&listed).unwrap()[0]["revoked"],
        true
    );
    let (ok, _, stderr) = run_cli(&["iat", "create", "--policy", "nope", "--config", config]);
    assert!(!ok && stderr.contains("nope"));
}

/// A thousand wrong-token requests to one client's URI, from one address or
/// from fifty spoofed ones, cost the client nothing: the app's own read,
/// replace and delete go through. The attackers get 401, then 429.
#[tokio::test]
async fn nobody_can_lock_an_app_out_of_its_registration() {
    let app = spawn_app_with(
        "[limits]\nmanage_per_client = \"60/minute\"\nauth_failures_per_ip = \"30/minute\"\n\
         trusted_proxies = [\"127.0.0.1/32\"]\n",
    )
    .await;
    let client = app.register(&web_client()).await;
    let mut refused = 0;
    for i in 0..1000 {
        let mut request = app.http.get(uri_of(&client)).bearer_auth("wrong-token");
        if i % 2 == 1 {
            request = request.header("x-forwarded-for", format!("203.0.113.{}", (i / 2) % 50));
        }
        let status = request.send().await.unwrap().status();
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::TOO_MANY_REQUESTS,
            "{status}"
        );
        refused += usize::from(status == StatusCode::TOO_MANY_REQUESTS);
    }
    // 30 failures an address (and one more every two seconds): the one real
    // address runs out after its first 30 of 500, the fifty spoofed ones
    // (ten tries each) do not.
    assert!(
        (440..=470).contains(&refused),
        "failed attempts are limited per address ({refused})"
    );
    let token = token_of(&client);
    assert_eq!(
        app.read(&client, Some(token)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.update(&client, Some(token), &update_body(&client, web_client()))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.delete(&client, Some(token)).await.status(),
        StatusCode::NO_CONTENT
    );
}

/// Behind a trusted proxy that appends the real address to
/// `X-Forwarded-For`, whatever the client writes in that header or in
/// `Forwarded` buys no fresh budget.
#[tokio::test]
async fn spoofed_forwarding_headers_buy_no_fresh_budget() {
    let app = spawn_app_with(
        "[limits]\nregister_per_ip = \"5/minute\"\ntrusted_proxies = [\"127.0.0.1/32\"]\n",
    )
    .await;
    let mut created = 0;
    for i in 0..12 {
        let response = app
            .http
            .post(app.url("/register"))
            // The client's own claims, then what the proxy appended.
            .header("x-forwarded-for", format!("10.9.{i}.1, 198.51.100.7"))
            .header("forwarded", format!("for=192.0.2.{i}"))
            .json(&web_client())
            .send()
            .await
            .unwrap();
        created += usize::from(response.status() == StatusCode::CREATED);
    }
    assert_eq!(created, 5, "one client, one budget");
}

/// Registrations can be capped per software_id and per redirect host as
/// well as per address: shared egress addresses register for many users.
#[tokio::test]
async fn registrations_are_capped_per_software_and_per_redirect_host() {
    let app = spawn_app_with(
        "[limits]\nregister_per_ip = \"unlimited\"\nregister_per_software_id = \"2/minute\"\n\
         register_per_redirect_host = \"3/minute\"\n",
    )
    .await;
    let body = |software: &str, host: &str| json!({ "software_id": software, "redirect_uris": [format!("https://{host}/cb")] });
    for _ in 0..2 {
        app.register(&body("widget", "a.example.com")).await;
    }
    let refused = app.post_register(&body("widget", "b.example.com")).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    app.register(&body("gadget", "a.example.com")).await;
    let refused = app.post_register(&body("other", "A.EXAMPLE.COM")).await;
    assert_eq!(
        refused.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "hosts compare case-insensitively"
    );
    app.register(&body("other", "c.example.com")).await;
}

/// The per-software cap holds exactly however many registrations race, and
/// counts registrations still pending at the provider.
#[tokio::test]
async fn the_software_cap_is_exact_under_concurrency_and_counts_pending_clients() {
    let app = spawn_app_with("[policies.default]\nmax_clients_per_software_id = 3\n").await;
    let body = json!({ "redirect_uris": ["https://app.example.com/cb"], "software_id": "racer" });
    let racers: Vec<_> = (0..20)
        .map(|_| {
            let http = app.http.clone();
            let url = app.url("/register");
            let body = body.clone();
            tokio::spawn(async move { http.post(url).json(&body).send().await.unwrap().status() })
        })
        .collect();
    let mut created = 0;
    for racer in racers {
        created += usize::from(racer.await.unwrap() == StatusCode::CREATED);
    }
    assert_eq!(created, 3);

    let fake = HydraFake::start().await;
    let app = spawn_app_with(&format!(
        "[provider]\n{}\ntimeout = \"1s\"\nretries = 0\nreconcile_interval = \"0s\"\n\
         [policies.default]\nmax_clients_per_software_id = 2\n",
        HydraFake::keys_at(&fake.base)
    ))
    .await;
    fake.ledger
        .queue_faults(&[crate::support::faults::Fault::CommitAndDrop]);
    assert_eq!(
        app.post_register(&body).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    app.register(&body).await;
    let (error, _) = app.register_error(&body).await;
    assert_eq!(error, "invalid_client_metadata", "the pending one counts");
    fake.ledger.assert_clean("Hydra");
}

/// Through a provider back end, at debug level: no secret, token or
/// provider credential reaches the log, not even one the provider quotes
/// back in a refusal; operator deletes are audited like app deletes.
// The CLI runs as a blocking child process while the Hydra fake answers it
// from this test's runtime: it needs a second thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_log_through_a_provider_at_debug_level() {
    let fake = HydraFake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port);
    let api_key = "ory_pat_9f8e7d6c5b4a39281706f5e4d3c2b1a0";
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "[provider]\n{}\napi_key = \"{api_key}\"\ntimeout = \"2s\"\nretries = 0\n\
         reconcile_interval = \"0s\"\n",
        HydraFake::keys_at(&fake.base)
    ));
    std::fs::write(&config, text).unwrap();
    let log = dir.path().join("gateway.log");
    let server = ServerProcess::start_logging(&config, port, Some(&log), "debug").await;
    let http = reqwest::Client::new();
    let client = server.register(&web_client()).await;
    let secret = client["client_secret"].as_str().unwrap().to_owned();
    let token = token_of(&client).to_owned();
    http.get(uri_of(&client))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    // Hydra refuses the replace and quotes the secret back.
    fake.reject_next(&format!("client_secret {secret} is weak"));
    let refused = http
        .put(uri_of(&client))
        .bearer_auth(&token)
        .json(&update_body(&client, web_client()))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let description = refused.text().await.unwrap();
    assert!(!description.contains(&secret), "{description}");
    let config = config.to_str().unwrap();
    // An operator deletes the client.
    let (ok, _, stderr) = run_cli(&["clients", "delete", id_of(&client), "--config", config]);
    assert!(ok, "{stderr}");
    let other = server.register(&web_client()).await;
    server.stop().await;
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.contains("DEBUG"), "the log is at debug level");
    for secret in [secret.as_str(), token.as_str(), api_key] {
        assert!(!log_text.contains(secret), "a secret reached the log");
    }
    assert!(
        log_text.contains("[redacted]"),
        "Hydra's quote was redacted"
    );
    // The CLI's own audit events go to its stderr.
    let deleted = std::process::Command::new(binary())
        .args(["clients", "delete", id_of(&other), "--config", config])
        .output()
        .unwrap();
    let audit = String::from_utf8_lossy(&deleted.stderr);
    assert!(audit.contains("operator_delete"), "{audit}");
    assert!(!audit.contains(secret.as_str()));
    fake.ledger.assert_clean("Hydra");
}
