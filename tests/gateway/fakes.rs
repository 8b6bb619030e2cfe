//! The provider fakes themselves: each flags the requests its vendor's
//! document refuses, so that a backend sending one fails its tests.

use serde_json::json;

use crate::support::billforward::{self, BillForwardFake};
use crate::support::hydra::HydraFake;
use crate::support::okta::{self, OktaFake};
use crate::support::zendesk::{self, ZendeskFake};

fn flagged(violations: &[String], needle: &str) {
    assert!(
        violations.iter().any(|v| v.contains(needle)),
        "no violation mentions `{needle}`: {violations:#?}"
    );
}

#[tokio::test]
async fn hydra_fake_flags_what_hydra_documents_as_invalid() {
    let fake = HydraFake::start().await;
    let http = reqwest::Client::new();
    let url = format!("{}/admin/clients", fake.base);
    http.post(format!("{url}?dry_run=true"))
        .json(&json!({ "client_id": "c1", "colour": "red" }))
        .send()
        .await
        .unwrap();
    http.get(format!("{url}?page_size=0")).send().await.unwrap();
    http.get(format!("{url}/c1?include_secret=true"))
        .send()
        .await
        .unwrap();
    http.put(format!("{url}/c1?upsert=true"))
        .json(&json!({ "client_id": "c1" }))
        .send()
        .await
        .unwrap();
    http.delete(format!("{url}/c1?cascade=true"))
        .send()
        .await
        .unwrap();
    let violations = fake.ledger.violations();
    flagged(&violations, "`dry_run`");
    flagged(&violations, "colour");
    flagged(&violations, "`page_size=0` is out of the documented range");
    flagged(
        &violations,
        "GET /admin/clients/{id}: undocumented query parameter `include_secret`",
    );
    flagged(&violations, "`upsert`");
    flagged(
        &violations,
        "DELETE /admin/clients/{id}: undocumented query parameter `cascade`",
    );
}

#[tokio::test]
async fn okta_fake_flags_what_okta_documents_as_invalid() {
    let fake = OktaFake::start().await;
    let http = reqwest::Client::new();
    let sswss = format!("SSWS {}", okta::API_TOKEN);
    let response = http
        .post(format!("{}/oauth2/v1/clients", fake.base))
        .header("authorization", &sswss)
        .json(&json!({
            "client_name": "x",
            "client_id": "chosen-by-caller",
            "redirect_uris": ["https://a.example.com/cb"],
            "colour": "red",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = http
        .post(format!("{}/oauth2/v1/clients", fake.base))
        .header("authorization", &sswss)
        .json(&json!({ "client_name": "svc", "application_type": "service", "grant_types": ["authorization_code"], "redirect_uris": ["https://a.example.com/cb"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    http.post(format!("{}/oauth2/v1/clients", fake.base))
        .header("authorization", &sswss)
        .json(&json!({
            "client_name": "keys",
            "application_type": "service",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": { "keys": [{ "kty": "EC", "use": "sig", "kid": "half-a-key" }] },
        }))
        .send()
        .await
        .unwrap();
    http.put(format!("{}/oauth2/v1/clients/0oa-anything", fake.base))
        .header("authorization", &sswss)
        .json(&json!({
            "client_name": "partial",
            "application_type": "service",
            "grant_types": ["client_credentials"],
        }))
        .send()
        .await
        .unwrap();
    http.get(format!(
        "{}/oauth2/v1/clients?limit=500&sort=name",
        fake.base
    ))
    .header("authorization", &sswss)
    .send()
    .await
    .unwrap();
    http.get(format!("{}/oauth2/v1/clients", fake.base))
        .send()
        .await
        .unwrap();
    let violations = fake.ledger.violations();
    flagged(&violations, "client_id");
    flagged(&violations, "colour");
    flagged(&violations, "not valid for a `service` app");
    flagged(&violations, "/jwks/keys/0");
    flagged(&violations, "settings missing");
    flagged(&violations, "limit=500");
    flagged(&violations, "`sort`");
    flagged(&violations, "no SSWS API token or Bearer access token");
}

#[tokio::test]
async fn zendesk_fake_flags_what_zendesk_documents_as_invalid() {
    let fake = ZendeskFake::start().await;
    let http = reqwest::Client::new();
    let auth = |r: reqwest::RequestBuilder| {
        r.basic_auth(
            format!("{}/token", zendesk::EMAIL),
            Some(zendesk::API_TOKEN),
        )
    };
    let url = format!("{}/api/v2/oauth/clients", fake.base);
    auth(http.post(&url))
        .json(&json!({ "client": { "name": "x", "identifier": "y", "user_id": 1, "secret": "mine" } }))
        .send()
        .await
        .unwrap();
    auth(http.post(&url))
        .json(&json!({ "name": "x", "identifier": "z", "user_id": 1 }))
        .send()
        .await
        .unwrap();
    auth(http.post(&url))
        .json(&json!({ "client": { "identifier": "w", "user_id": 1 } }))
        .send()
        .await
        .unwrap();
    auth(http.get(format!("{url}/not-a-number")))
        .send()
        .await
        .unwrap();
    auth(http.get(format!("{url}?per_page=5")))
        .send()
        .await
        .unwrap();
    let violations = fake.ledger.violations();
    flagged(&violations, "secret");
    flagged(&violations, "envelope");
    flagged(&violations, "\"name\" is a required property");
    flagged(&violations, "not an integer");
    flagged(&violations, "`per_page`");
}

#[tokio::test]
async fn billforward_fake_flags_what_the_client_model_refuses() {
    let fake = BillForwardFake::start().await;
    let http = reqwest::Client::new();
    let url = format!("{}/clients", fake.base);
    let response = http
        .post(&url)
        .bearer_auth(billforward::API_TOKEN)
        .json(&json!({
            "clientId": "c1",
            "clientSecret": "s",
            "scope": "read",
            "resourceIds": "r",
            "authorizedGrantTypes": "client_credentials",
            "registeredRedirectUris": "",
            "authorities": "ROLE",
            "accessTokenValiditySeconds": "600",
            "refreshTokenValiditySeconds": 60,
            "created": "2026-01-01T00:00:00Z",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["errorType"], "ValidationError",
        "errors come as BFError"
    );
    http.get(format!("{url}?records=ten&colour=red"))
        .bearer_auth(billforward::API_TOKEN)
        .send()
        .await
        .unwrap();
    http.delete(format!("{url}/c1"))
        .bearer_auth(billforward::API_TOKEN)
        .send()
        .await
        .unwrap();
    let violations = fake.ledger.violations();
    flagged(&violations, "\"organizationID\" is a required property");
    flagged(
        &violations,
        "is not of type \"integer\" at `/accessTokenValiditySeconds`",
    );
    flagged(&violations, "at `/created`");
    flagged(&violations, "`records=ten` is not an integer");
    flagged(&violations, "`colour`");
    flagged(&violations, "DELETE");
}
