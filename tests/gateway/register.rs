//! CONFORMANCE "Register (RFC 7591 §3)": one test per line, success and failure.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn registration_answers_201_json_no_store() {
    let app = spawn_app().await;
    let response = app.post_register(&web_client()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let headers = response.headers();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["pragma"], "no-cache");
}

#[tokio::test]
async fn response_carries_metadata_credentials_and_management_uri() {
    let app = spawn_app().await;
    let client = app
        .register(&json!({
            "redirect_uris": ["https://app.example.com/cb"],
            "client_name": "Demo",
            "scope": "openid profile",
            "contacts": ["ops@example.com"],
        }))
        .await;
    let id = client["client_id"].as_str().unwrap();
    assert_eq!(id.len(), 22);
    assert!(client["client_id_issued_at"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(client["client_secret"].as_str().unwrap().len(), 43);
    assert_eq!(client["client_secret_expires_at"], 0);
    assert_eq!(token_of(&client).len(), 43);
    assert_eq!(uri_of(&client), app.url(&format!("/register/{id}")));
    assert_eq!(client["client_name"], "Demo");
    assert_eq!(client["scope"], "openid profile");
    assert_eq!(client["contacts"], json!(["ops@example.com"]));
    assert_eq!(client["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(client["application_type"], "web");
}

#[tokio::test]
async fn public_clients_get_no_secret() {
    let app = spawn_app().await;
    let client = app
        .register(&json!({
            "redirect_uris": ["https://app.example.com/cb"],
            "token_endpoint_auth_method": "none",
        }))
        .await;
    assert!(client.get("client_secret").is_none());
    assert!(client.get("client_secret_expires_at").is_none());
    assert!(client.get("registration_access_token").is_some());
    assert!(client.get("registration_client_uri").is_some());
}

#[tokio::test]
async fn client_chosen_id_and_secret_are_not_honoured() {
    let app = spawn_app().await;
    let client = app
        .register(&json!({
            "redirect_uris": ["https://app.example.com/cb"],
            "client_id": "i-choose-my-id",
            "client_secret": "i-choose-my-secret",
        }))
        .await;
    assert_ne!(client["client_id"], "i-choose-my-id");
    assert_ne!(client["client_secret"], "i-choose-my-secret");
}

#[tokio::test]
async fn unknown_metadata_is_ignored_and_language_tags_are_kept() {
    let app = spawn_app().await;
    let client = app
        .register(&json!({
            "redirect_uris": ["https://app.example.com/cb"],
            "client_name": "Example",
            "client_name#ja-Jpan-JP": "クライアント名",
            "tos_uri#fr": "https://app.example.com/fr/cgu",
            "x_vendor_flag": true,
            "another_unknown": {"nested": [1, 2]},
        }))
        .await;
    assert_eq!(client["client_name#ja-Jpan-JP"], "クライアント名");
    assert_eq!(client["tos_uri#fr"], "https://app.example.com/fr/cgu");
    assert!(client.get("x_vendor_flag").is_none());
    assert!(client.get("another_unknown").is_none());
    let read: Value = app
        .read(&client, Some(token_of(&client)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["client_name#ja-Jpan-JP"], "クライアント名");
}

#[tokio::test]
async fn bad_language_tags_are_refused() {
    let app = spawn_app().await;
    let (code, description) = app
        .register_error(&json!({
            "redirect_uris": ["https://app.example.com/cb"],
            "client_name#not a tag!": "x",
        }))
        .await;
    assert_eq!(code, "invalid_client_metadata");
    assert!(description.contains("language tag"), "{description}");
}

#[tokio::test]
async fn registered_uris_are_kept_exactly() {
    let app = spawn_app().await;
    let uris = [
        "https://app.example.com/cb/x?b=2&a=1&empty=",
        "https://app.example.com/cb?q=%7Euser",
    ];
    let client = app
        .register(&json!({
            "redirect_uris": uris,
            "logo_uri": "https://cdn.example.com/logo.png?v=3",
        }))
        .await;
    assert_eq!(client["redirect_uris"], json!(uris));
    assert_eq!(client["logo_uri"], "https://cdn.example.com/logo.png?v=3");
}

async fn assert_redirect_refused(app: &TestApp, body: Value) {
    let (code, description) = app.register_error(&body).await;
    assert_eq!(code, "invalid_redirect_uri", "{body} -> {description}");
}

#[tokio::test]
async fn invalid_redirect_uris_are_refused() {
    let app = spawn_app().await;
    for uri in [
        "/relative/cb",
        "app.example.com/cb",
        "https://app.example.com/cb#fragment",
        "https://app.example.com/cb#",
        "http://app.example.com/cb",
        "com.example.app:/cb",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
    ] {
        let web = json!({ "redirect_uris": [uri], "application_type": "web" });
        assert_redirect_refused(&app, web).await;
    }
}

#[tokio::test]
async fn redirect_uris_are_required_for_redirect_flows() {
    let app = spawn_app().await;
    assert_redirect_refused(&app, json!({ "client_name": "no redirects" })).await;
    // client_credentials needs none.
    let client = app
        .register(&json!({ "grant_types": ["client_credentials"] }))
        .await;
    assert_eq!(client["response_types"], json!([]));
    assert!(client.get("redirect_uris").is_none());
}

#[tokio::test]
async fn native_clients_use_private_schemes_or_loopback_http() {
    let app = spawn_app().await;
    let client = app
        .register(&json!({
            "application_type": "native",
            "token_endpoint_auth_method": "none",
            "redirect_uris": [
                "com.example.app:/oauth2redirect",
                "http://127.0.0.1:51004/cb",
                "http://[::1]/cb",
                "http://localhost/cb",
            ],
        }))
        .await;
    assert_eq!(client["application_type"], "native");
    for uri in [
        "http://app.example.com/cb",
        "javascript:alert(1)",
        "file:///tmp/x",
    ] {
        assert_redirect_refused(
            &app,
            json!({ "application_type": "native", "redirect_uris": [uri] }),
        )
        .await;
    }
}

#[tokio::test]
async fn web_clients_may_use_loopback_http_by_default_policy() {
    let app = spawn_app().await;
    app.register(&json!({ "redirect_uris": ["http://localhost:3000/cb", "http://127.0.0.1/cb"] }))
        .await;
}

#[tokio::test]
async fn implicit_web_clients_need_https_and_no_localhost() {
    let app = spawn_app().await;
    let implicit = |uri: &str| {
        json!({
            "redirect_uris": [uri],
            "grant_types": ["implicit"],
            "response_types": ["id_token"],
        })
    };
    app.register(&implicit("https://app.example.com/cb")).await;
    assert_redirect_refused(&app, implicit("http://localhost/cb")).await;
    // This machine in every form (issue 20: `a.localhost` and `0.0.0.0`
    // got through).
    for local in [
        "https://localhost/cb",
        "https://localhost./cb",
        "https://a.localhost/cb",
        "https://127.0.0.1/cb",
        "https://127.1.2.3/cb",
        "https://0.0.0.0/cb",
        "https://[::1]/cb",
        "https://[::]/cb",
        "https://[::ffff:7f00:1]/cb",
    ] {
        assert_redirect_refused(&app, implicit(local)).await;
    }
}

#[tokio::test]
async fn wrong_types_name_the_member() {
    let app = spawn_app().await;
    for (body, member) in [
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "client_name": 42 }),
            "client_name",
        ),
        (json!({ "redirect_uris": [1] }), "redirect_uris"),
        (
            json!({ "redirect_uris": "https://a.example/cb" }),
            "redirect_uris",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "grant_types": "authorization_code" }),
            "grant_types",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "default_max_age": -1 }),
            "default_max_age",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "require_auth_time": "yes" }),
            "require_auth_time",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "client_name#fr": 1 }),
            "client_name#fr",
        ),
    ] {
        assert_metadata_refused(&app, body, member).await;
    }
}

#[tokio::test]
async fn integral_floats_count_as_integers() {
    let app = spawn_app().await;
    let mut body = web_client();
    body["default_max_age"] = json!(600.0);
    let client = app.register(&body).await;
    assert_eq!(client["default_max_age"], 600);
    body["default_max_age"] = json!(600.5);
    let (code, description) = app.register_error(&body).await;
    assert_eq!(code, "invalid_client_metadata");
    assert!(description.contains("default_max_age"), "{description}");
}

#[tokio::test]
async fn jwks_and_jwks_uri_are_exclusive_and_keys_must_be_public() {
    let app = spawn_app().await;
    let key = json!({ "kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" });
    let base = |extra: Value| {
        let mut body = web_client();
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    assert_metadata_refused(
        &app,
        base(json!({ "jwks": { "keys": [key] }, "jwks_uri": "https://app.example.com/jwks" })),
        "jwks_uri and jwks",
    )
    .await;
    let mut private = key.clone();
    private["d"] = json!("private-part");
    assert_metadata_refused(
        &app,
        base(json!({ "jwks": { "keys": [private] } })),
        "private key",
    )
    .await;
    assert_metadata_refused(&app, base(json!({ "jwks": { "no_keys": [] } })), "keys").await;
    assert_metadata_refused(
        &app,
        base(json!({ "jwks_uri": "http://app.example.com/jwks" })),
        "https",
    )
    .await;
    let client = app
        .register(&base(
            json!({ "token_endpoint_auth_method": "private_key_jwt", "jwks": { "keys": [key] } }),
        ))
        .await;
    assert_eq!(client["jwks"]["keys"][0]["kty"], "EC");
    assert!(client.get("client_secret").is_none());
}

#[tokio::test]
async fn private_key_jwt_needs_keys() {
    let app = spawn_app().await;
    let mut body = web_client();
    body["token_endpoint_auth_method"] = json!("private_key_jwt");
    assert_metadata_refused(&app, body, "jwks").await;
}

#[tokio::test]
async fn grant_and_response_types_must_agree() {
    let app = spawn_app().await;
    let with = |grants: Value, responses: Value| json!({ "redirect_uris": ["https://app.example.com/cb"], "grant_types": grants, "response_types": responses });
    assert_metadata_refused(
        &app,
        with(json!(["implicit"]), json!(["code"])),
        "authorization_code",
    )
    .await;
    assert_metadata_refused(
        &app,
        with(json!(["authorization_code"]), json!(["code id_token"])),
        "implicit",
    )
    .await;
    assert_metadata_refused(
        &app,
        with(json!(["authorization_code", "implicit"]), json!(["code"])),
        "implicit",
    )
    .await;
    assert_metadata_refused(
        &app,
        with(json!(["authorization_code"]), json!(["token"])),
        "implicit",
    )
    .await;
    let hybrid = app
        .register(&with(
            json!(["authorization_code", "implicit"]),
            json!(["code id_token"]),
        ))
        .await;
    assert_eq!(hybrid["response_types"], json!(["code id_token"]));
}

#[tokio::test]
async fn grant_and_response_types_default_per_rfc() {
    let app = spawn_app().await;
    let client = app.register(&web_client()).await;
    assert_eq!(client["grant_types"], json!(["authorization_code"]));
    assert_eq!(client["response_types"], json!(["code"]));
    let derived = app
        .register(&json!({ "redirect_uris": ["https://app.example.com/cb"], "response_types": ["code id_token"] }))
        .await;
    assert_eq!(
        derived["grant_types"],
        json!(["authorization_code", "implicit"])
    );
}

#[tokio::test]
async fn unsupported_values_are_refused() {
    let app = spawn_app().await;
    let with = |key: &str, value: Value| {
        let mut body = web_client();
        body[key] = value;
        body
    };
    assert_metadata_refused(
        &app,
        with("grant_types", json!(["authorization_code", "magic"])),
        "magic",
    )
    .await;
    assert_metadata_refused(
        &app,
        with("response_types", json!(["code teleport"])),
        "code teleport",
    )
    .await;
    assert_metadata_refused(
        &app,
        with("token_endpoint_auth_method", json!("telepathy")),
        "telepathy",
    )
    .await;
    assert_metadata_refused(&app, with("application_type", json!("desktop")), "desktop").await;
    assert_metadata_refused(&app, with("subject_type", json!("secret")), "secret").await;
    assert_metadata_refused(
        &app,
        with("id_token_signed_response_alg", json!("RS1")),
        "RS1",
    )
    .await;
    assert_metadata_refused(&app, with("scope", json!("openid  profile")), "scope").await;
    assert_metadata_refused(
        &app,
        json!({ "grant_types": ["client_credentials"], "token_endpoint_auth_method": "none" }),
        "client_credentials",
    )
    .await;
}

#[tokio::test]
async fn encryption_enc_needs_alg_and_defaults_when_alg_is_given() {
    let app = spawn_app().await;
    let with = |extra: Value| {
        let mut body = web_client();
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    for prefix in [
        "id_token_encrypted_response",
        "userinfo_encrypted_response",
        "request_object_encryption",
    ] {
        assert_metadata_refused(
            &app,
            with(json!({ format!("{prefix}_enc"): "A128GCM" })),
            &format!("{prefix}_alg"),
        )
        .await;
    }
    let client = app
        .register(&with(
            json!({ "id_token_encrypted_response_alg": "RSA-OAEP" }),
        ))
        .await;
    assert_eq!(client["id_token_encrypted_response_enc"], "A128CBC-HS256");
}

#[tokio::test]
async fn initiate_login_and_request_uris_must_be_https() {
    let app = spawn_app().await;
    let mut body = web_client();
    body["initiate_login_uri"] = json!("http://app.example.com/login");
    assert_metadata_refused(&app, body, "initiate_login_uri").await;
    let mut body = web_client();
    body["request_uris"] = json!(["http://app.example.com/req"]);
    assert_metadata_refused(&app, body, "request_uris").await;
    let mut body = web_client();
    body["initiate_login_uri"] = json!("https://app.example.com/login");
    body["request_uris"] = json!(["https://app.example.com/req#hash"]);
    let client = app.register(&body).await;
    assert_eq!(
        client["request_uris"],
        json!(["https://app.example.com/req#hash"])
    );
}

#[tokio::test]
async fn software_statements_are_unapproved_without_trusted_issuers() {
    let app = spawn_app().await;
    let mut body = web_client();
    body["software_statement"] = json!("eyJhbGciOiJSUzI1NiJ9.eyJzb2Z0d2FyZV9pZCI6IngifQ.c2ln");
    let (code, _) = app.register_error(&body).await;
    assert_eq!(code, "unapproved_software_statement");
}

#[tokio::test]
async fn malformed_json_is_400_never_422_or_500() {
    let app = spawn_app().await;
    for raw in [
        "{bad",
        "",
        "[]",
        "\"string\"",
        "42",
        "null",
        "{\"redirect_uris\": [",
        "\u{0}",
    ] {
        let response = app
            .http
            .post(app.url("/register"))
            .header("content-type", "application/json")
            .body(raw.to_owned())
            .send()
            .await
            .unwrap();
        let (code, _) = error_of(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(code, "invalid_client_metadata", "{raw:?}");
    }
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let response = app
        .http
        .post(app.url("/register"))
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn wrong_content_type_is_400() {
    let app = spawn_app().await;
    let response = app
        .http
        .post(app.url("/register"))
        .header("content-type", "text/plain")
        .body(web_client().to_string())
        .send()
        .await
        .unwrap();
    let (code, description) = error_of(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(code, "invalid_client_metadata");
    assert!(description.contains("application/json"));
}

#[tokio::test]
async fn oversized_body_is_413() {
    let app = spawn_app().await;
    let mut body = web_client();
    body["client_name"] = json!("x".repeat(70_000));
    let response = app.post_register(&body).await;
    let (code, _) = error_of(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(code, "invalid_request");
    // Under the limit is fine.
    body["client_name"] = json!("x".repeat(60_000));
    app.register(&body).await;
}

/// The 413 is given before the body is read, so hyper closes the
/// connection: the answer says so, and a keep-alive client's next request
/// goes out on a fresh connection and gets its answer.
#[tokio::test]
async fn an_answer_before_the_body_is_read_closes_the_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    // Far over the limit: the gateway answers long before the body's end.
    let oversized = format!("{{\"client_name\":\"{}\"}}", "x".repeat(300_000));
    let mut socket = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let request = format!(
        "POST /register HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{oversized}",
        oversized.len()
    );
    // The server may answer (and close) while the body is still going out.
    let _ = socket.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        socket.read_to_end(&mut answer),
    )
    .await;
    assert!(closed.is_ok(), "the gateway closed the connection");
    let head = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 413"), "{head}");
    assert!(head.contains("connection: close"), "{head}");

    // A read the body needs no reading for keeps the connection.
    let kept = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert!(kept.headers().get("connection").is_none());
    // A keep-alive client (one connection at most) goes on after a 413.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    for _ in 0..3 {
        let refused = client
            .post(app.url("/register"))
            .header("content-type", "application/json")
            .body(oversized.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let next = client
            .post(app.url("/register"))
            .json(&web_client())
            .send()
            .await
            .expect("the next request gets its answer");
        assert_eq!(next.status(), StatusCode::CREATED);
    }
}

#[tokio::test]
async fn sector_identifier_uri_must_list_every_redirect_uri() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, ca) = https_document_server(
        dir.path(),
        json!(["https://a.example.com/cb", "https://b.example.com/cb"]),
    )
    .await;
    let app = spawn_app_with(&format!(
        "[outbound]\nallow_private_networks = true\nextra_root_certificates = [\"{}\"]\n",
        ca.display()
    ))
    .await;
    let sector = format!("https://localhost:{}/sector.json", addr.port());
    let client = app
        .register(&json!({
            "redirect_uris": ["https://a.example.com/cb", "https://b.example.com/cb"],
            "subject_type": "pairwise",
            "sector_identifier_uri": sector,
        }))
        .await;
    assert_eq!(client["sector_identifier_uri"], sector);
    assert_metadata_refused(
        &app,
        json!({
            "redirect_uris": ["https://c.example.com/cb"],
            "sector_identifier_uri": sector,
        }),
        "https://c.example.com/cb",
    )
    .await;
    assert_metadata_refused(
        &app,
        json!({ "redirect_uris": ["https://a.example.com/cb"], "sector_identifier_uri": format!("http://localhost:{}/s", addr.port()) }),
        "https",
    )
    .await;
}

#[tokio::test]
async fn sector_identifier_fetch_refuses_private_addresses_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, ca) = https_document_server(dir.path(), json!(["https://a.example.com/cb"])).await;
    let app = spawn_app_with(&format!(
        "[outbound]\nextra_root_certificates = [\"{}\"]\n",
        ca.display()
    ))
    .await;
    for host in ["127.0.0.1", "localhost"] {
        assert_metadata_refused(
            &app,
            json!({
                "redirect_uris": ["https://a.example.com/cb"],
                "sector_identifier_uri": format!("https://{host}:{}/s.json", addr.port()),
            }),
            "could not be fetched",
        )
        .await;
    }
}

#[tokio::test]
async fn sector_identifier_content_must_be_an_array_of_strings() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, ca) = https_document_server(dir.path(), json!({ "not": "an array" })).await;
    let app = spawn_app_with(&format!(
        "[outbound]\nallow_private_networks = true\nextra_root_certificates = [\"{}\"]\n",
        ca.display()
    ))
    .await;
    assert_metadata_refused(
        &app,
        json!({
            "redirect_uris": ["https://a.example.com/cb"],
            "sector_identifier_uri": format!("https://localhost:{}/s.json", addr.port()),
        }),
        "JSON array",
    )
    .await;
}

#[tokio::test]
async fn pairwise_clients_on_several_hosts_need_a_sector_identifier() {
    let app = spawn_app().await;
    assert_metadata_refused(
        &app,
        json!({
            "redirect_uris": ["https://a.example.com/cb", "https://b.example.com/cb"],
            "subject_type": "pairwise",
        }),
        "sector_identifier_uri",
    )
    .await;
}

/// The guard says why it refused: an address that is not public, written
/// directly or carried in an IPv6 form (NAT64, 6to4, IPv4-compatible), or a
/// name that resolves to none.
#[tokio::test]
async fn the_outbound_guard_refuses_private_destinations_and_says_why() {
    use dcr_gateway::outbound::{GuardedClient, OutboundSettings};
    let client = GuardedClient::new(OutboundSettings {
        allow_private_networks: false,
        timeout: std::time::Duration::from_secs(2),
        max_response_bytes: 1024,
        extra_root_certificates: Vec::new(),
    })
    .unwrap();
    for (url, reason) in [
        (
            "https://127.0.0.1/s.json",
            "127.0.0.1 is not a public address",
        ),
        (
            "https://[64:ff9b::7f00:1]/s.json",
            "64:ff9b::7f00:1 is not a public address",
        ),
        (
            "https://[64:ff9b::a9fe:a9fe]/s.json",
            "is not a public address",
        ),
        (
            "https://[2002:a00:1::1]/s.json",
            "2002:a00:1::1 is not a public address",
        ),
        ("https://[::a00:1]/s.json", "is not a public address"),
        (
            "https://localhost/s.json",
            "localhost resolves to no public address",
        ),
    ] {
        let error = client
            .get(&url::Url::parse(url).unwrap())
            .await
            .unwrap_err();
        assert!(error.0.contains(reason), "{url}: {}", error.0);
    }
}

/// Proxy settings in the environment would let a proxy resolve names past
/// the guard: the gateway ignores them.
#[tokio::test]
async fn the_outbound_client_ignores_proxy_settings() {
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    proxy.set_nonblocking(true).unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut command = std::process::Command::new(binary());
    command
        .args(["serve", "--config"])
        .arg(write_config(dir.path(), port))
        .env("HTTPS_PROXY", &proxy_url)
        .env("HTTP_PROXY", &proxy_url)
        .env("ALL_PROXY", &proxy_url)
        .env("https_proxy", &proxy_url)
        .stderr(std::process::Stdio::null());
    let server = ServerProcess::start_command(command, port).await;
    let response = reqwest::Client::new()
        .post(format!("{}/register", server.base))
        .json(&json!({
            "redirect_uris": ["https://a.example.com/cb"],
            "sector_identifier_uri": "https://sector.example.test/s.json",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        proxy.accept().is_err(),
        "the gateway reached out through the proxy"
    );
}
