//! Discovery, health, OpenAPI, unknown routes and request ids.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::*;

#[tokio::test]
async fn discovery_documents_point_at_the_gateway() {
    let app = spawn_app().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let doc: Value = response.json().await.unwrap();
        assert_eq!(doc["issuer"], app.base);
        assert_eq!(doc["registration_endpoint"], app.url("/register"));
        assert!(
            doc["grant_types_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g == "authorization_code")
        );
        assert!(
            doc["token_endpoint_auth_methods_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m == "private_key_jwt")
        );
    }
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "ok");
    }
}

#[tokio::test]
async fn openapi_document_describes_every_route() {
    let app = spawn_app().await;
    let doc: Value = app.get_json("/openapi.json").await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = &doc["paths"];
    for (path, methods) in [
        ("/register", &["post"][..]),
        ("/register/{client_id}", &["get", "put", "delete"][..]),
        ("/.well-known/openid-configuration", &["get"][..]),
        ("/.well-known/oauth-authorization-server", &["get"][..]),
        (
            "/.well-known/oauth-authorization-server/{issuer_path}",
            &["get"][..],
        ),
        ("/healthz", &["get"][..]),
        ("/readyz", &["get"][..]),
        ("/openapi.json", &["get"][..]),
        ("/metrics", &["get"][..]),
    ] {
        for method in methods {
            assert!(
                paths[path][method].is_object(),
                "{method} {path} is not documented"
            );
        }
    }
    assert_eq!(
        paths.as_object().unwrap().len(),
        9,
        "a route is documented that does not exist"
    );
    let post = &paths["/register"]["post"]["responses"];
    for status in ["201", "400", "413", "503", "500"] {
        assert!(post[status].is_object(), "POST /register {status}");
    }
    let schemas = &doc["components"]["schemas"];
    for member in [
        "redirect_uris",
        "client_name",
        "jwks",
        "request_uris",
        "default_max_age",
    ] {
        assert!(
            schemas["MetadataDocument"]["properties"][member].is_object(),
            "{member}"
        );
    }
    // The response is the metadata plus the credentials (allOf).
    let parts = schemas["ClientInformationResponse"]["allOf"]
        .as_array()
        .unwrap();
    assert!(
        parts
            .iter()
            .any(|p| p["$ref"] == "#/components/schemas/MetadataDocument")
    );
    for member in [
        "client_id",
        "registration_access_token",
        "registration_client_uri",
    ] {
        assert!(
            parts.iter().any(|p| p["properties"][member].is_object()),
            "{member}"
        );
        assert!(
            parts.iter().any(|p| p["required"]
                .as_array()
                .is_some_and(|r| r.contains(&member.into()))),
            "{member}"
        );
    }
    assert!(doc["components"]["securitySchemes"]["registration_access_token"].is_object());
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = spawn_app().await;
    let (code, _) = error_of(
        app.http.get(app.url("/nope")).send().await.unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(code, "not_found");
    let response = app.http.patch(app.url("/register")).send().await.unwrap();
    let (code, _) = error_of(response, StatusCode::METHOD_NOT_ALLOWED).await;
    assert_eq!(code, "invalid_request");
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/healthz")).send().await.unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert!(id.len() > 17 && id.is_ascii(), "{id}");
    let response = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "caller-chosen-id")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "caller-chosen-id");
}

/// The metrics recorder is one per process: this runs the binary, so that
/// no other test writes to what it reads, and checks exact counts.
#[tokio::test]
async fn metrics_cover_requests_provider_calls_and_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    // Behind Hydra: the built-in registry makes no provider calls to count.
    let (server, hydra) = server_behind_hydra(dir.path()).await;
    let http = reqwest::Client::new();
    let client = server.register(&web_client()).await;
    for _ in 0..2 {
        http.get(uri_of(&client))
            .bearer_auth(token_of(&client))
            .send()
            .await
            .unwrap();
    }
    http.delete(uri_of(&client))
        .bearer_auth(token_of(&client))
        .send()
        .await
        .unwrap();
    let response = http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    for needle in [
        r#"dcr_http_requests_total{route="/register",method="POST",status="201"} 1"#,
        r#"dcr_http_requests_total{route="/register/{client_id}",method="GET",status="200"} 2"#,
        r#"dcr_http_requests_total{route="/register/{client_id}",method="DELETE",status="204"} 1"#,
        r#"dcr_http_request_duration_seconds_bucket{route="/register",method="POST",le="#,
        r#"dcr_provider_calls_total{provider="hydra",operation="create",outcome="ok"} 1"#,
        r#"dcr_provider_calls_total{provider="hydra",operation="delete",outcome="ok"} 1"#,
        // The first read misses the client cache and leaves its answer in
        // memory, the second is answered from there, the delete's token
        // check hits the cache.
        "dcr_cache_misses_total 1",
        "dcr_cache_hits_total 1",
        "dcr_reads_from_memory_total 1",
    ] {
        assert!(
            text.contains(needle),
            "{needle} missing from /metrics:\n{text}"
        );
    }
    assert!(
        !text.contains(client["client_id"].as_str().unwrap()),
        "no client id in labels"
    );
    hydra.ledger.assert_clean("Hydra");
}

/// Browser clients (MCP Inspector in direct mode, single-page apps) can
/// preflight and call the registration API and read discovery; operational
/// routes get no CORS headers.
#[tokio::test]
async fn browser_clients_get_cors_on_the_registration_routes_only() {
    let app = spawn_app().await;
    let origin = "http://localhost:6274";
    let preflight = app.preflight(&app.url("/register"), origin, "POST").await;
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(
        methods.contains("POST") && !methods.contains("DELETE"),
        "{methods}"
    );
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("authorization") && allowed.contains("content-type"));
    assert!(headers.get("access-control-allow-credentials").is_none());

    let registered = app
        .http
        .post(app.url("/register"))
        .header("origin", origin)
        .json(&web_client())
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    assert_eq!(registered.headers()["access-control-allow-origin"], "*");
    let client: Value = registered.json().await.unwrap();
    let preflight = app.preflight(&uri_of(&client), origin, "DELETE").await;
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    let methods = preflight.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap();
    assert!(methods.contains("GET") && methods.contains("PUT") && methods.contains("DELETE"));

    let discovery = app
        .get_from("/.well-known/oauth-authorization-server", origin)
        .await;
    assert_eq!(discovery.headers()["access-control-allow-origin"], "*");
    let document: Value = discovery.json().await.unwrap();
    assert_eq!(
        document["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );

    for path in ["/metrics", "/readyz", "/healthz"] {
        let response = app.get_from(path, origin).await;
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{path}"
        );
    }
}

/// With `public_url` at a path, the RFC 8414 metadata is also served in its
/// path-insertion form.
#[tokio::test]
async fn discovery_is_served_in_the_rfc8414_path_insertion_form() {
    let app = spawn_app_under("/dcr", "").await;
    let document: Value = app
        .get_json("/.well-known/oauth-authorization-server/dcr")
        .await;
    assert_eq!(document["issuer"], format!("{}/dcr", app.base));
    assert_eq!(
        document["registration_endpoint"],
        format!("{}/dcr/register", app.base)
    );
    let other = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server/elsewhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
}

/// A plain RFC 7592 read is answered ahead of the router (from memory once
/// its answer is held, as for the second read here); the same read with
/// its id percent-encoded goes through the router. All answer alike
/// (status, headers but the date and the request id, body) for the owner's
/// token, a wrong token and no token.
#[tokio::test]
async fn a_read_answers_alike_ahead_of_the_router_and_through_it() {
    let app = spawn_app().await;
    let client = app
        .register(&serde_json::json!({"redirect_uris": ["https://app.example.com/cb"]}))
        .await;
    let id = id_of(&client);
    let plain = uri_of(&client);
    let first = id.chars().next().unwrap();
    let encoded_id = format!("%{:02X}{}", u32::from(first), &id[first.len_utf8()..]);
    let encoded = plain.replace(id, &encoded_id);
    assert_ne!(plain, encoded);
    for token in [Some(token_of(&client)), Some("wrong-token"), None] {
        let mut answers = Vec::new();
        for uri in [&plain, &plain, &encoded] {
            let response = with_token(app.http.get(uri), token).send().await.unwrap();
            let status = response.status();
            let mut headers: Vec<(String, String)> = response
                .headers()
                .iter()
                .filter(|(name, _)| *name != "date" && *name != "x-request-id")
                .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
                .collect();
            headers.sort();
            let body = response.bytes().await.unwrap();
            answers.push((status, headers, body));
        }
        assert_eq!(answers[0], answers[1], "token {token:?}");
        assert_eq!(answers[0], answers[2], "token {token:?}");
    }
}
