//! CONFORMANCE "Manage (RFC 7592 §2)": one test per line, success and failure.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn read_returns_the_current_registration_without_rotating() {
    let app = spawn_app().await;
    let client = app
        .register(
            &json!({ "redirect_uris": ["https://app.example.com/cb"], "client_name": "Reader" }),
        )
        .await;
    for _ in 0..2 {
        let response = app.read(&client, Some(token_of(&client))).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let read: Value = response.json().await.unwrap();
        assert_eq!(read["client_id"], client["client_id"]);
        assert_eq!(read["client_name"], "Reader");
        assert_eq!(read["redirect_uris"], client["redirect_uris"]);
        assert_eq!(read["client_id_issued_at"], client["client_id_issued_at"]);
        assert_eq!(
            read["registration_access_token"],
            client["registration_access_token"]
        );
        assert_eq!(
            read["registration_client_uri"],
            client["registration_client_uri"]
        );
        assert_eq!(read["client_secret_expires_at"], 0);
        assert!(
            read.get("client_secret").is_none(),
            "a secret is never read back"
        );
    }
}

#[tokio::test]
async fn missing_wrong_and_foreign_tokens_and_unknown_clients_get_the_same_401() {
    let app = spawn_app().await;
    let a = app.register(&web_client()).await;
    let b = app.register(&web_client()).await;

    let missing = app.read(&a, None).await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert!(
        missing.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );

    let mut bodies = Vec::new();
    let mut unknown = a.clone();
    unknown["registration_client_uri"] = json!(app.url("/register/no-such-client"));
    for (client, token) in [
        (&a, "wrong-token"),
        (&b, token_of(&a)),
        (&unknown, token_of(&a)),
    ] {
        let response = app.read(client, Some(token)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\""
        );
        bodies.push(response.text().await.unwrap());
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");

    let basic = app
        .http
        .get(uri_of(&a))
        .basic_auth("user", Some("pass"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);

    // The same 401 on PUT and DELETE, before the body is looked at.
    let put = app
        .update(&b, Some(token_of(&a)), &update_body(&b, web_client()))
        .await;
    assert_eq!(put.status(), StatusCode::UNAUTHORIZED);
    let delete = app.delete(&b, Some(token_of(&a))).await;
    assert_eq!(delete.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.read(&b, Some(token_of(&b))).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn update_replaces_the_whole_registration() {
    let app = spawn_app().await;
    let client = app
        .register(&json!({
            "redirect_uris": ["https://app.example.com/cb"],
            "client_name": "Before",
            "contacts": ["a@example.com"],
            "grant_types": ["authorization_code", "refresh_token"],
        }))
        .await;
    let response = app
        .update(
            &client,
            Some(token_of(&client)),
            &update_body(
                &client,
                json!({ "redirect_uris": ["https://new.example.com/cb?v=2"] }),
            ),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let updated: Value = response.json().await.unwrap();
    assert_eq!(
        updated["redirect_uris"],
        json!(["https://new.example.com/cb?v=2"])
    );
    assert!(updated.get("client_name").is_none());
    assert!(updated.get("contacts").is_none());
    assert_eq!(updated["grant_types"], json!(["authorization_code"]));
    assert_eq!(updated["client_id"], client["client_id"]);
    assert_eq!(
        updated["client_id_issued_at"],
        client["client_id_issued_at"]
    );
    assert_eq!(
        updated["registration_access_token"],
        client["registration_access_token"]
    );
    assert_eq!(
        updated["registration_client_uri"],
        client["registration_client_uri"]
    );
    assert!(
        updated.get("client_secret").is_none(),
        "the secret did not change"
    );
    let read: Value = app
        .read(&client, Some(token_of(&client)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["redirect_uris"], updated["redirect_uris"]);
    assert!(read.get("client_name").is_none());
}

#[tokio::test]
async fn update_must_name_this_client() {
    let app = spawn_app().await;
    let client = app.register(&web_client()).await;
    let token = token_of(&client);
    let (code, _) = error_of(
        app.update(&client, Some(token), &web_client()).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(code, "invalid_client_metadata");
    let mut other = web_client();
    other["client_id"] = json!("someone-else");
    let (code, _) = error_of(
        app.update(&client, Some(token), &other).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(code, "invalid_client_metadata");
}

#[tokio::test]
async fn update_may_carry_only_the_current_secret() {
    let app = spawn_app().await;
    let client = app.register(&web_client()).await;
    let token = token_of(&client);
    let mut body = update_body(&client, web_client());
    body["client_secret"] = json!("not-the-secret");
    let (code, description) = error_of(
        app.update(&client, Some(token), &body).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(code, "invalid_client_metadata");
    assert!(description.contains("client_secret"));
    body["client_secret"] = client["client_secret"].clone();
    assert_eq!(
        app.update(&client, Some(token), &body).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn update_must_not_carry_server_managed_members() {
    let app = spawn_app().await;
    let client = app.register(&web_client()).await;
    let token = token_of(&client);
    for member in [
        "registration_access_token",
        "registration_client_uri",
        "client_secret_expires_at",
        "client_id_issued_at",
    ] {
        let mut body = update_body(&client, web_client());
        body[member] = client[member].clone();
        let (code, description) = error_of(
            app.update(&client, Some(token), &body).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(code, "invalid_client_metadata");
        assert!(description.contains(member), "{description}");
    }
}

#[tokio::test]
async fn invalid_update_leaves_the_old_registration_untouched() {
    let app = spawn_app().await;
    let client = app
        .register(
            &json!({ "redirect_uris": ["https://app.example.com/cb"], "client_name": "Keep me" }),
        )
        .await;
    let token = token_of(&client);
    let bad = update_body(
        &client,
        json!({ "redirect_uris": ["http://evil.example.com/cb"] }),
    );
    let (code, _) = error_of(
        app.update(&client, Some(token), &bad).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(code, "invalid_redirect_uri");
    let bad = update_body(
        &client,
        json!({ "redirect_uris": ["https://a.example.com/cb"], "grant_types": ["implicit"] }),
    );
    let (code, _) = error_of(
        app.update(&client, Some(token), &bad).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(code, "invalid_client_metadata");
    let malformed = app
        .http
        .put(uri_of(&client))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (code, _) = error_of(malformed, StatusCode::BAD_REQUEST).await;
    assert_eq!(code, "invalid_client_metadata");
    let mut huge = update_body(&client, web_client());
    huge["client_name"] = json!("x".repeat(70_000));
    assert_eq!(
        app.update(&client, Some(token), &huge).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );

    let read: Value = app.read(&client, Some(token)).await.json().await.unwrap();
    assert_eq!(read["client_name"], "Keep me");
    assert_eq!(read["redirect_uris"], json!(["https://app.example.com/cb"]));
}

#[tokio::test]
async fn changing_to_a_secret_method_issues_a_secret_and_dropping_it_removes_it() {
    let app = spawn_app().await;
    let client = app
        .register(&json!({ "redirect_uris": ["https://app.example.com/cb"], "token_endpoint_auth_method": "none" }))
        .await;
    let token = token_of(&client);
    let confidential: Value = app
        .update(&client, Some(token), &update_body(&client, web_client()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        confidential["token_endpoint_auth_method"],
        "client_secret_basic"
    );
    assert_eq!(confidential["client_secret"].as_str().unwrap().len(), 43);
    assert_eq!(confidential["client_secret_expires_at"], 0);

    let mut public = update_body(&client, web_client());
    public["token_endpoint_auth_method"] = json!("none");
    public["client_secret"] = confidential["client_secret"].clone();
    let public: Value = app
        .update(&client, Some(token), &public)
        .await
        .json()
        .await
        .unwrap();
    assert!(public.get("client_secret").is_none());
    assert!(public.get("client_secret_expires_at").is_none());
}

#[tokio::test]
async fn delete_answers_204_and_kills_the_token() {
    let app = spawn_app().await;
    let client = app.register(&web_client()).await;
    let token = token_of(&client);
    let other = app.register(&web_client()).await;
    let response = app.delete(&client, Some(token)).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.read(&client, Some(token)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.delete(&client, Some(token)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.update(&client, Some(token), &update_body(&client, web_client()))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.read(&other, Some(token_of(&other))).await.status(),
        StatusCode::OK
    );
}
