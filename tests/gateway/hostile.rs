//! Hostile input, second pass (issue 20): what a hostile tester found open,
//! each shut and tested against the real server or the binary.

use std::path::Path;
use std::time::{Duration, Instant};

use dcr_gateway::domain::{
    ClientMetadata, MetadataDocument, RegisteredClient, RegistrationAccessToken,
};
use dcr_gateway::store::ClientStore;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::connections::server_with;
use crate::support::*;

/// Registers `body` and expects a 400 with `code`; returns the description.
async fn refused(app: &TestApp, body: &Value, code: &str) -> String {
    let (error, description) = app.register_error(body).await;
    assert_eq!(error, code, "{body} -> {description}");
    description
}

/// Registers a web client with `member` set to `value`; expects `400
/// invalid_client_metadata` and returns the description.
async fn member_refused(app: &TestApp, member: &str, value: Value) -> String {
    let mut body = web_client();
    body[member] = value;
    refused(app, &body, "invalid_client_metadata").await
}

/// Sends `request` and reads its JSON answer.
async fn json_of(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

fn redirecting_to(uri: &str) -> Value {
    json!({ "redirect_uris": [uri] })
}

fn native(uri: &str) -> Value {
    json!({
        "application_type": "native",
        "token_endpoint_auth_method": "none",
        "redirect_uris": [uri],
    })
}

#[tokio::test]
async fn redirect_uris_are_registered_only_as_url_parsers_write_them() {
    let app = spawn_app_with(
        "[policies.default]\nredirect_hosts = [\"*.example.com\", \"b\u{fc}cher.example\"]\n",
    )
    .await;
    for uri in [
        "https://app.example.com/cb\r\nSet-Cookie: a=b",
        "https://app.example.com/cb\u{0}",
        "https://app.example.com/c\u{1b}[2Jb",
        "https://app.exa\tmple.com/cb",
        "https://app\u{ff0e}example\u{ff0e}com/cb",
        "https://app%2eexample.com/cb",
        "https://app.example.com%2f.evil.test/cb",
        "https://App.Example.com:443/cb/../x",
        "https://b\u{fc}cher.example/cb",
    ] {
        let description = refused(&app, &redirecting_to(uri), "invalid_redirect_uri").await;
        assert!(
            !description.contains(['\r', '\n', '\0', '\u{1b}']),
            "{description:?}"
        );
    }
    // The text parsers write is accepted and kept byte for byte; the policy
    // compares hosts in their IDNA ASCII form.
    for uri in [
        "https://app.example.com/x?b=2&a=1&empty=",
        "https://xn--bcher-kva.example/cb",
    ] {
        let client = app.register(&redirecting_to(uri)).await;
        assert_eq!(client["redirect_uris"], json!([uri]));
    }
    // Other registered URIs carry no control characters either.
    let logo = json!("https://app.example.com/logo.png\r\nX: y");
    let description = member_refused(&app, "logo_uri", logo).await;
    assert!(description.contains("logo_uri"), "{description}");
}

#[tokio::test]
async fn wildcard_hosts_are_refused_in_every_registered_uri() {
    for policy in [
        "",
        "[policies.default]\nredirect_hosts = [\"*.example.com\"]\n",
    ] {
        let app = spawn_app_with(policy).await;
        for body in [
            redirecting_to("https://*.example.com/cb"),
            redirecting_to("https://%2A.example.com/cb"),
            native("com.example.app://*.example.com/cb"),
        ] {
            refused(&app, &body, "invalid_redirect_uri").await;
        }
        let wildcard = json!("https://*.example.com/");
        let description = member_refused(&app, "client_uri", wildcard).await;
        assert!(description.contains("client_uri"), "{description}");
    }
}

#[tokio::test]
async fn native_clients_use_reverse_domain_schemes_loopback_http_or_https() {
    // Without the compatibility rule that allows MCP clients' schemes.
    let app = spawn_app_with("[registration.compat]\nclient_schemes = false\n").await;
    for uri in [
        "view-source:https://app.example.com/",
        "jar:https://app.example.com/app.jar!/cb",
        "mailto:ops@example.com",
        "tel:+15550100",
        "ms-settings:privacy",
        "cursor://anysphere.cursor-retrieval/cb",
    ] {
        let description = refused(&app, &native(uri), "invalid_redirect_uri").await;
        assert!(description.contains("reverse-domain"), "{description}");
    }
    for uri in [
        "com.example.app:/oauth2redirect",
        "http://127.0.0.1:51004/cb",
        "http://[::1]/cb",
        "https://app.example.com/cb",
    ] {
        app.register(&native(uri)).await;
    }
    // An operator may allow a scheme that is not a reverse domain.
    let app = spawn_app_with("[policies.default]\nnative_schemes = [\"cursor\"]\n").await;
    app.register(&native("cursor://anysphere.cursor-retrieval/cb"))
        .await;
    refused(&app, &native("tel:+15550100"), "invalid_redirect_uri").await;
}

#[tokio::test]
async fn jwks_carry_public_signing_keys_only() {
    let app = spawn_app().await;
    let key = json!({
        "kty": "EC", "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    });
    let with_jwks = |jwks: Value| {
        let mut body = web_client();
        body["token_endpoint_auth_method"] = json!("private_key_jwt");
        body["jwks"] = jwks;
        body
    };
    let mut upper = key.clone();
    upper["D"] = json!("private-part");
    let mut nested = key.clone();
    nested["x_extra"] = json!({ "inner": [{ "qi": "private-part" }] });
    for (jwks, path) in [
        (json!({ "keys": [upper] }), "jwks.keys[0].D"),
        (
            json!({ "keys": [nested] }),
            "jwks.keys[0].x_extra.inner[0].qi",
        ),
        (json!({ "keys": [key], "d": "private-part" }), "jwks.d"),
    ] {
        let description = refused(&app, &with_jwks(jwks), "invalid_client_metadata").await;
        assert!(description.contains(path), "{path}: {description}");
    }
    let mut encryption_only = key.clone();
    encryption_only["use"] = json!("enc");
    for jwks in [
        json!({ "keys": [] }),
        json!({ "keys": [encryption_only] }),
        json!({ "keys": [{ "kty": "RSA", "e": "AQAB" }] }),
    ] {
        let description = refused(&app, &with_jwks(jwks), "invalid_client_metadata").await;
        assert!(description.contains("signing key"), "{description}");
    }
    app.register(&with_jwks(json!({ "keys": [key] }))).await;
}

/// Clients stored before these rules (here: a URI with an upper-case host, a
/// scheme that is not a reverse domain) still read back: the new rules apply
/// to registrations, never to what the store already holds.
#[tokio::test]
async fn clients_stored_under_older_rules_still_read_back() {
    let app = spawn_app().await;
    let document: MetadataDocument = serde_json::from_value(json!({
        "application_type": "native",
        "token_endpoint_auth_method": "none",
        "redirect_uris": ["https://App.Example.com/cb", "myapp://cb"],
    }))
    .unwrap();
    let token = RegistrationAccessToken::generate();
    let id = "stored-under-older-rules";
    let client = RegisteredClient {
        metadata: std::sync::Arc::new(ClientMetadata::from_stored(document).unwrap()),
        registration_token: token.hash(),
        ..crate::store::client(id, "stored")
    };
    app.cache.insert(&client, None).await.unwrap();
    let response = app
        .http
        .get(app.url(&format!("/register/{id}")))
        .bearer_auth(token.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let read: Value = response.json().await.unwrap();
    assert_eq!(read["redirect_uris"][1], "myapp://cb");
}

/// What an app registered cannot drive the operator's terminal: every
/// human-readable CLI output escapes control characters, while `--json`
/// keeps the values exactly.
#[tokio::test]
async fn cli_output_escapes_control_characters_from_apps() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", app.db_path.display());
    let config = write_config_with_store(dir.path(), free_port(), &store);
    let config = config.to_str().unwrap();
    let name = "evil\u{1b}]0;owned\u{7}\u{1b}[2J\r\nFORGED-ROW active \u{202e}emanresu";
    let client = app
        .register(&json!({
            "redirect_uris": ["https://app.example.com/cb"],
            "client_name": name,
            "software_id": "sw\u{1b}[31m\nFORGED-ID",
        }))
        .await;
    let id = id_of(&client);
    let (ok, created, stderr) = run_cli(&["iat", "create", "--note", name, "--config", config]);
    assert!(ok, "{stderr}");
    assert!(!created.contains('\u{1b}'));
    for args in [
        &["clients", "list"][..],
        &["clients", "show", id],
        &["iat", "list"],
    ] {
        let mut args = args.to_vec();
        args.extend(["--config", config]);
        let (ok, stdout, stderr) = run_cli(&args);
        assert!(ok, "{args:?}: {stderr}");
        assert!(
            !stdout.contains(['\u{1b}', '\u{7}', '\r', '\u{202e}']),
            "{args:?} printed a control character: {stdout:?}"
        );
        assert!(
            !stdout.lines().any(|line| line.starts_with("FORGED")),
            "{args:?} printed a forged line: {stdout}"
        );
        assert!(stdout.contains("evil\\u{1b}"), "{args:?}: {stdout}");
    }
    let (ok, json_out, _) = run_cli(&["clients", "show", id, "--json", "--config", config]);
    assert!(ok);
    let shown: Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(shown["client_name"], name);
}

/// Runs `check-config` (and `serve`, which reads the configuration the same
/// way) on `toml` with `env`; returns (success, stderr).
fn check_config(toml: &str, env: &[(&str, &str)], command: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    let store = format!("sqlite://{}", dir.path().join("gateway.db").display());
    std::fs::write(&path, format!("[store]\nurl = \"{store}\"\n{toml}")).unwrap();
    let output = std::process::Command::new(binary())
        .args([command, "--config"])
        .arg(&path)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn settings_that_cannot_work_are_errors_naming_the_key() {
    let issuer = |uri: &str| {
        format!(
            "[[software_statement.issuers]]\nissuer = \"https://directory.example.com\"\n\
             jwks_uri = \"{uri}\"\nallowed_algs = [\"ES256\"]\n"
        )
    };
    let cases = [
        (
            "[policies.default]\nscopes = [\"openid\"]\ndefault_scope = \"openid email\"\n"
                .to_owned(),
            Vec::new(),
            "policies.default.default_scope",
        ),
        (
            "[policies.default]\nscopes = [\"openid\", \"pro\\u001b[2Jfile\"]\n".to_owned(),
            Vec::new(),
            "policies.default.scopes",
        ),
        (
            "[policies.default]\ndefault_scope = \"openid\\nemail\"\n".to_owned(),
            Vec::new(),
            "policies.default.default_scope",
        ),
        (
            issuer("https://127.0.0.1:8443/jwks.json"),
            Vec::new(),
            "software_statement.issuers[0].jwks_uri",
        ),
        (
            issuer("https://10.1.2.3/jwks.json"),
            Vec::new(),
            "software_statement.issuers[0].jwks_uri",
        ),
        (
            issuer("https://keys.localhost/jwks.json"),
            Vec::new(),
            "software_statement.issuers[0].jwks_uri",
        ),
        (
            String::new(),
            vec![(
                "DCR_GATEWAY__OUTBOUND__ALLOW_PRIVATE_NETWORKS",
                "true # comment",
            )],
            "outbound.allow_private_networks",
        ),
    ];
    for (toml, env, key) in &cases {
        for command in ["check-config", "serve"] {
            let (ok, stderr) = check_config(toml, env, command);
            assert!(!ok, "{command} accepted:\n{toml}{env:?}");
            assert!(
                stderr.contains(key),
                "{command}: {key} missing from {stderr}"
            );
        }
    }
    // The explicit opt-in makes a private jwks_uri acceptable (as in labs
    // and these tests).
    let allowed = format!(
        "[outbound]\nallow_private_networks = true\n{}",
        issuer("https://127.0.0.1:8443/jwks.json")
    );
    let (ok, stderr) = check_config(&allowed, &[], "check-config");
    assert!(ok, "{stderr}");
}

#[test]
fn initial_access_tokens_that_could_never_be_used_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), free_port());
    let config = config.to_str().unwrap();
    for (flag, value) in [("--max-uses", "0"), ("--expires-in", "0s")] {
        let (ok, _, stderr) = run_cli(&["iat", "create", flag, value, "--config", config]);
        assert!(!ok, "{flag} {value} was accepted");
        assert!(stderr.contains(flag), "{stderr}");
    }
    let (ok, _, stderr) = run_cli(&[
        "iat",
        "create",
        "--max-uses",
        "1",
        "--expires-in",
        "1h",
        "--config",
        config,
    ]);
    assert!(ok, "{stderr}");
}

/// A refused RFC 7592 request costs the same store work whether the client
/// exists or not (one read that finds nothing), so the answer's timing does
/// not tell which client ids exist. Counted, not timed.
#[tokio::test]
async fn unknown_clients_and_wrong_tokens_cost_the_same_store_work() {
    let app = spawn_app().await;
    let client = app.register(&web_client()).await;
    assert_eq!(
        app.read(&client, Some(token_of(&client))).await.status(),
        200
    );
    let unknown = json!({ "registration_client_uri": app.url("/register/no-such-client") });
    let probes = 20;
    let mut misses = Vec::new();
    for target in [&client, &unknown] {
        let before = app.cache.stats().misses;
        for _ in 0..probes {
            let response = app.read(target, Some("wrong-token")).await;
            let (code, _) = error_of(response, StatusCode::UNAUTHORIZED).await;
            assert_eq!(code, "invalid_token");
        }
        misses.push(app.cache.stats().misses - before);
    }
    assert_eq!(misses, [probes, probes], "store reads that found nothing");
}

/// Why an outbound fetch failed (a certificate, a refused connection, a
/// private address) stays in the log; the app gets one fixed reason.
#[tokio::test]
async fn outbound_fetch_failures_give_the_app_a_fixed_reason() {
    let dir = tempfile::tempdir().unwrap();
    // A server whose certificate the gateway does not trust, and a port
    // nothing listens on.
    let (untrusted, _ca) =
        https_document_server(dir.path(), json!(["https://a.example.com/cb"])).await;
    let closed = free_port();
    let lab = spawn_app_with("[outbound]\nallow_private_networks = true\n").await;
    let guarded = spawn_app().await;
    let mut reasons = Vec::new();
    for (app, sector) in [
        (
            &lab,
            format!("https://localhost:{}/s.json", untrusted.port()),
        ),
        (&lab, format!("https://127.0.0.1:{closed}/s.json")),
        (
            &guarded,
            format!("https://127.0.0.1:{}/s.json", untrusted.port()),
        ),
    ] {
        let body = json!({
            "redirect_uris": ["https://a.example.com/cb"],
            "sector_identifier_uri": sector,
        });
        let description = refused(app, &body, "invalid_client_metadata").await;
        reasons.push(description.replace(&sector, "URI"));
    }
    assert!(reasons.iter().all(|r| r == &reasons[0]), "{reasons:#?}");
    for needle in ["certificate", "connect", "refused", "public", "error"] {
        assert!(!reasons[0].contains(needle), "{}", reasons[0]);
    }

    // The same for a statement issuer's keys.
    let app = spawn_app_with(&format!(
        "[outbound]\nallow_private_networks = true\n\
         [[software_statement.issuers]]\nissuer = \"https://directory.example.com\"\n\
         jwks_uri = \"https://localhost:{}/jwks.json\"\nallowed_algs = [\"RS256\"]\n",
        untrusted.port()
    ))
    .await;
    use base64::Engine;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let statement = format!(
        "{}.{}.c2ln",
        b64(json!({ "alg": "RS256", "typ": "JWT" })),
        b64(json!({ "iss": "https://directory.example.com" }))
    );
    let mut body = web_client();
    body["software_statement"] = json!(statement);
    let (code, description) = error_of(
        app.post_register(&body).await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert_eq!(code, "temporarily_unavailable");
    assert!(!description.contains("certificate"), "{description}");
    assert!(description.ends_with("cannot be fetched"), "{description}");
}

#[tokio::test]
async fn an_undecodable_client_id_gets_a_json_rfc_error() {
    let app = spawn_app().await;
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        for token in [None, Some("some-token")] {
            let request = app
                .http
                .request(method.clone(), app.url("/register/%ff"))
                .json(&web_client());
            let response = with_token(request, token).send().await.unwrap();
            assert!(response.headers().contains_key("www-authenticate"));
            let (code, _) = error_of(response, StatusCode::UNAUTHORIZED).await;
            assert_eq!(code, "invalid_token", "{method} {token:?}");
        }
    }
}

/// After `clients delete` from the CLI, a server on `store` (in `dir`) that
/// had the client cached stops answering for it within the bound README
/// states (SQLite: one change-log poll, 100 ms; PostgreSQL: one
/// notification). Timed only against a generous bound; the windows seen
/// are printed.
async fn a_client_deleted_by_the_cli_stops_being_served_promptly(dir: &Path, store: &str) {
    let http = reqwest::Client::new();
    let port = free_port();
    let config = write_config_with_store(dir, port, store);
    let server = ServerProcess::start(&config, port).await;
    let mut windows = Vec::new();
    for _ in 0..3 {
        let register = http.post(format!("{}/register", server.base));
        let client = json_of(register.json(&web_client())).await;
        let status = || async {
            http.get(uri_of(&client))
                .bearer_auth(token_of(&client))
                .send()
                .await
                .unwrap()
                .status()
        };
        assert_eq!(status().await, StatusCode::OK, "now cached");
        let (ok, _, stderr) = run_cli(&[
            "clients",
            "delete",
            id_of(&client),
            "--config",
            config.to_str().unwrap(),
        ]);
        assert!(ok, "{stderr}");
        let deleted = Instant::now();
        while status().await == StatusCode::OK {
            assert!(deleted.elapsed() < Duration::from_secs(5));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        windows.push(deleted.elapsed());
    }
    eprintln!("{store}: answered 200 after the delete for {windows:?}");
    assert!(
        windows.iter().all(|w| *w < Duration::from_secs(1)),
        "{store}: {windows:?}"
    );
}

#[tokio::test]
async fn a_client_deleted_by_the_cli_stops_being_served_promptly_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("gateway.db").display());
    a_client_deleted_by_the_cli_stops_being_served_promptly(dir.path(), &store).await;
}

#[tokio::test]
async fn a_client_deleted_by_the_cli_stops_being_served_promptly_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let database = crate::support::postgres::TestDatabase::create().await;
    a_client_deleted_by_the_cli_stops_being_served_promptly(dir.path(), &database.url).await;
}

/// The client cache is bounded in bytes, not only in clients: with a 1 MiB
/// budget, clients of 60 KB each fill it at about sixteen.
#[tokio::test]
async fn the_client_cache_is_bounded_by_bytes() {
    let app = spawn_app_with("[cache]\nmax_bytes = 1048576\n").await;
    let name = "n".repeat(60_000);
    for i in 0..40 {
        let client = app
            .register(&json!({
                "redirect_uris": ["https://app.example.com/cb"],
                "client_name": format!("{name}{i}"),
            }))
            .await;
        let read = app.read(&client, Some(token_of(&client))).await;
        assert_eq!(read.status(), StatusCode::OK);
    }
    let contents = app.cache.contents();
    assert!(contents.weighted_bytes <= 1_048_576, "{contents:?}");
    assert!(
        (1..=17).contains(&contents.entries),
        "60 KB clients under a 1 MiB budget: {contents:?}"
    );
}

/// A body is refused when it holds more JSON values than its size allows
/// (one per 256 bytes of `max_body_bytes`, at least 1024; an object counts
/// 16), before any of it is built.
#[tokio::test]
async fn bodies_with_too_many_json_values_are_refused_before_they_are_built() {
    let app = spawn_app().await;
    for (member, value) in [
        ("x_numbers", json!(vec![1; 2_000])),
        ("x_objects", json!(vec![json!({}); 70])),
        ("contacts", json!(vec!["a@example.com"; 1_100])),
    ] {
        let description = member_refused(&app, member, value).await;
        assert!(
            description.contains("JSON values"),
            "{member}: {description}"
        );
    }
    let mut body = web_client();
    body["contacts"] = json!(vec!["a@example.com"; 500]);
    app.register(&body).await;
}

/// Peak memory of the gateway process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// With `max_body_bytes` at its 16 MiB maximum, a body of eight million tiny
/// values (which the JSON parser would build into a gigabyte) is refused,
/// and the process's peak memory grows by less than eight times the limit.
#[tokio::test]
async fn per_request_memory_stays_within_a_multiple_of_the_body_limit() {
    let (server, _addr, _dir) = server_with("max_body_bytes = 16777216\n", None).await;
    let before = peak_rss_kib(server.child.id());
    let mut body = b"{\"redirect_uris\":[\"https://a.example.com/cb\"],\"x_other\":[1".to_vec();
    while body.len() < 16 * 1024 * 1024 - 16 {
        body.extend_from_slice(b",1");
    }
    body.extend_from_slice(b"]}");
    let response = reqwest::Client::new()
        .post(format!("{}/register", server.base))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let (code, description) = error_of(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(code, "invalid_client_metadata");
    assert!(description.contains("JSON values"), "{description}");
    let grown_mib = (peak_rss_kib(server.child.id()) - before) / 1024;
    eprintln!("peak memory grew by {grown_mib} MiB for a 16 MiB body");
    assert!(grown_mib < 8 * 16, "peak memory grew by {grown_mib} MiB");
}
