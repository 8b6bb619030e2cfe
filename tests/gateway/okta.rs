//! The Okta backend against a stateful fake of Okta's client API that checks
//! every request against Okta's OpenAPI document: how the contract suite
//! (`providers`) drives it, and what only Okta does.

use std::ops::RangeInclusive;

use dcr_gateway::clock::Clock;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::providers::{LostCreate, Subject, fake_basics, gateway};
use crate::support::okta::{ACCESS_TOKEN, API_TOKEN, Fault, OktaFake};
use crate::support::*;

impl Subject for OktaFake {
    const VENDOR: &'static str = "Okta";
    const KIND: &'static str = "okta";
    // Okta picks the id: a lost create is searched for by name.
    const LOST_CREATE: LostCreate = LostCreate::FoundAgain;
    // A replace reads the admin's settings first, to send them back.
    const READS_BEFORE_REPLACE: usize = 1;
    const READS_BEFORE_DELETE: usize = 0;
    const SECRET: &'static str = "client_secret";
    const REDIRECT_URIS: &'static str = "redirect_uris";

    fake_basics!();

    fn keys_at(org_url: &str) -> String {
        format!("kind = \"okta\"\norg_url = \"{org_url}\"\napi_token = \"{API_TOKEN}\"")
    }

    fn ids(&self) -> Vec<String> {
        self.client_ids()
    }

    async fn forget(&self, id: &str) {
        OktaFake::forget(self, id);
    }

    fn limit_page_size(&self, n: usize) {
        OktaFake::limit_page_size(self, n);
    }

    fn refused_credential(&self) -> String {
        Self::keys_at(&self.base).replace(API_TOKEN, "revoked-token")
    }

    /// Okta's own 429: the wait is until the announced reset, not a guess.
    fn rate_limit(&self) -> RangeInclusive<u64> {
        self.set_budget(100, 45);
        self.ledger.queue_faults(&[Fault::RateLimited]);
        30..=45
    }

    /// Every lost create of the drill costs a search of the 300 clients
    /// named "Claude", two pages each: more than the fake's usual 600 calls
    /// a minute.
    fn allow_bulk(&self) {
        self.set_budget_limit(2000);
    }
}

#[tokio::test]
async fn okta_holds_what_it_can_and_the_gateway_keeps_the_rest() {
    let fake = OktaFake::start().await;
    let app = gateway(&fake).await;
    let client = app
        .register(&json!({
            "redirect_uris": ["https://app.example.com/cb"],
            "client_name": "Okta app",
            "client_uri": "https://app.example.com",
            "logo_uri": "https://app.example.com/logo.png",
            "scope": "openid profile",
            "contacts": ["ops@example.com"],
            "grant_types": ["authorization_code", "refresh_token"],
            "software_id": "okta-sw",
        }))
        .await;
    let id = id_of(&client).to_owned();
    assert!(id.starts_with("0oa"), "Okta chose the id: {id}");
    let held = fake.client(&id).expect("the client is at Okta");
    assert_eq!(held["client_name"], "Okta app");
    assert_eq!(held["application_type"], "web");
    assert_eq!(held["logo_uri"], "https://app.example.com/logo.png");
    assert_eq!(
        held["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    for kept in ["scope", "contacts", "client_uri", "software_id"] {
        assert!(held.get(kept).is_none(), "Okta has no `{kept}`");
    }
    assert_eq!(client["client_uri"], "https://app.example.com");
    assert_eq!(client["scope"], "openid profile");
    assert_eq!(client["contacts"], json!(["ops@example.com"]));

    let read: Value = app.read_json(&client).await;
    assert_eq!(read["software_id"], "okta-sw");

    let replaced = app
        .replace(
            &client,
            json!({
                "redirect_uris": ["https://app.example.com/new"],
                "client_name": "Okta app, renamed",
                "scope": "openid",
            }),
        )
        .await;
    assert_eq!(replaced.status(), StatusCode::OK);
    let replaced: Value = replaced.json().await.unwrap();
    let held = fake.client(&id).unwrap();
    assert_eq!(held["client_name"], "Okta app, renamed");
    assert!(held.get("logo_uri").is_none(), "PUT is a full replace");
    assert_eq!(replaced["scope"], "openid");
    fake.ledger.assert_clean("Okta");
}

#[tokio::test]
async fn okta_gets_a_name_and_the_app_type_its_grants_need() {
    let fake = OktaFake::start().await;
    let app = gateway(&fake).await;
    let first = app.register(&web_client()).await;
    let second = app.register(&web_client()).await;
    let names: Vec<Value> = [&first, &second]
        .iter()
        .map(|c| fake.client(id_of(c)).unwrap()["client_name"].clone())
        .collect();
    assert_ne!(names[0], names[1]);
    assert!(names[0].as_str().unwrap().starts_with("dcr-"));
    assert!(
        first.get("client_name").is_none(),
        "the app sees what it sent"
    );
    // An admin's setting the gateway sends no member for survives a replace;
    // the logout members are the app's, so a replace without them clears them.
    fake.set_member(id_of(&first), "request_object_signing_alg", json!("RS256"));
    fake.set_member(
        id_of(&first),
        "post_logout_redirect_uris",
        json!(["https://app.example.com/bye"]),
    );

    // A full replace sends the same name again.
    let replaced = app
        .replace(
            &first,
            json!({ "redirect_uris": ["https://app.example.com/2"] }),
        )
        .await;
    assert_eq!(replaced.status(), StatusCode::OK);
    let held = fake.client(id_of(&first)).unwrap();
    assert_eq!(held["client_name"], names[0]);
    assert_eq!(held["request_object_signing_alg"], "RS256");
    assert!(held.get("post_logout_redirect_uris").is_none());

    let service = app
        .register(&json!({ "grant_types": ["client_credentials"] }))
        .await;
    assert_eq!(
        fake.client(id_of(&service)).unwrap()["application_type"],
        "service"
    );
    let browser = app
        .register(&json!({
            "redirect_uris": ["https://spa.example.com/cb"],
            "token_endpoint_auth_method": "none",
        }))
        .await;
    let held = fake.client(id_of(&browser)).unwrap();
    assert_eq!(held["application_type"], "browser");
    assert!(held.get("client_secret").is_none() && browser.get("client_secret").is_none());
    // claude.ai: a public web client that wants refresh tokens.
    let refreshing = app
        .register(&json!({
            "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
        }))
        .await;
    assert_eq!(
        fake.client(id_of(&refreshing)).unwrap()["application_type"],
        "native"
    );
    let native = app
        .register(&json!({
            "redirect_uris": ["com.example.app:/cb"],
            "application_type": "native",
            "token_endpoint_auth_method": "none",
        }))
        .await;
    assert_eq!(
        fake.client(id_of(&native)).unwrap()["application_type"],
        "native"
    );
    fake.ledger.assert_clean("Okta");
}

#[tokio::test]
async fn okta_limits_are_refused_clearly_and_names_may_repeat() {
    let fake = OktaFake::start().await;
    let app = gateway(&fake).await;
    let (error, description) = app
        .register_error(&json!({
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_subject_dn": "CN=app",
        }))
        .await;
    assert_eq!(error, "invalid_client_metadata");
    assert!(description.contains("okta"), "{description}");
    // Okta's table of grant types per app type: a browser app has no
    // password grant (nor refresh_token: a public web client asking for one
    // is held as a native app).
    let (error, description) = app
        .register_error(&json!({
            "redirect_uris": ["https://spa.example.com/cb"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "password"],
        }))
        .await;
    assert_eq!(error, "invalid_client_metadata");
    assert!(description.contains("`browser` app"), "{description}");
    assert_eq!(fake.ledger.requests(), 0, "refused before calling Okta");

    // Okta names need not be unique: every claude.ai connection is "Claude".
    let seeded = fake.seed("Claude");
    let claude = json!({
        "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
        "client_name": "Claude",
    });
    let first = app.register(&claude).await;
    let second = app.register(&claude).await;
    for client in [&first, &second] {
        assert_eq!(fake.client(id_of(client)).unwrap()["client_name"], "Claude");
    }
    assert_eq!(fake.client_ids().len(), 3);
    assert!(fake.client(&seeded).is_some());
    fake.ledger.assert_clean("Okta");
}

/// Once Okta says the budget is spent, the gateway answers without calling
/// until the announced reset.
#[tokio::test]
async fn okta_spent_rate_budget_is_answered_without_calling() {
    let fake = OktaFake::start().await;
    let app = gateway(&fake).await;
    // The reset is 30 s away on the gateway's (frozen) clock, however long
    // the test took to get here by the wall clock.
    fake.set_budget_until(1, app.clock.now_unix() + 30);
    app.register(&web_client()).await;
    let calls = fake.ledger.requests();
    let response = app.post_register(&web_client()).await;
    assert!((1..=30).contains(&retry_after(&response)));
    let (error, _) = error_of(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(error, "temporarily_unavailable");
    assert_eq!(
        fake.ledger.requests(),
        calls,
        "the gateway did not call Okta"
    );
    assert_eq!(
        app.rows().await.len(),
        1,
        "the refused registration left no row"
    );
    fake.ledger.assert_clean("Okta");
}

/// Okta may answer an unknown client with 401 `invalid_client` instead
/// of 404: it still reads as a client deleted at Okta, not as a refused
/// credential.
#[tokio::test]
async fn okta_unknown_clients_answered_401_read_as_gone() {
    let fake = OktaFake::start().await;
    let app = gateway(&fake).await;
    let client = app.register(&web_client()).await;
    fake.answer_unknown_with_401();
    fake.forget(id_of(&client));
    assert!(
        app.service
            .rotate_secret(id_of(&client), "test")
            .await
            .is_err()
    );
    let report = app.reconcile().await;
    assert!(
        report
            .missing_at_provider
            .iter()
            .any(|id| id.as_str() == id_of(&client)),
        "reconcile reports the client missing at Okta"
    );
    assert_missing_at_provider_reads_as_gone(&app, &client).await;
    assert!(app.rows().await.is_empty());
    fake.ledger.assert_clean("Okta");
}

#[tokio::test]
async fn okta_holds_keys_for_private_key_jwt() {
    let fake = OktaFake::start().await;
    let app = gateway(&fake).await;
    let jwks = json!({ "keys": [{
        "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    }] });
    let client = app
        .register(&json!({
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": jwks,
        }))
        .await;
    let held = fake.client(id_of(&client)).unwrap();
    assert_eq!(held["jwks"], jwks);
    assert_eq!(held["token_endpoint_auth_method"], "private_key_jwt");
    assert!(held.get("client_secret").is_none() && client.get("client_secret").is_none());
    fake.ledger.assert_clean("Okta");
}

#[tokio::test]
async fn okta_accepts_an_oauth_access_token_instead_of_an_api_token() {
    let fake = OktaFake::start().await;
    let app = spawn_app_for_provider(&format!(
        "kind = \"okta\"\norg_url = \"{}\"\naccess_token = \"{ACCESS_TOKEN}\"",
        fake.base
    ))
    .await;
    let client = app.register(&web_client()).await;
    assert!(fake.client(id_of(&client)).is_some());
    fake.ledger.assert_clean("Okta");
}

#[tokio::test]
async fn okta_lost_create_without_a_fresh_secret_stays_pending_until_reconcile() {
    let fake = OktaFake::start().await;
    let app = gateway(&fake).await;
    // Found again, but newSecret fails: the client is at Okta, the app has no secret.
    fake.ledger
        .queue_faults(&[Fault::CommitAndDrop, Fault::Pass, Fault::ServerError]);
    let response = app.post_register(&web_client()).await;
    error_of(response, StatusCode::SERVICE_UNAVAILABLE).await;
    // client_secret_jwt: Okta's newSecret does not apply, so it cannot be adopted.
    fake.ledger.queue_faults(&[Fault::CommitAndDrop]);
    let response = app
        .post_register(&json!({
            "redirect_uris": ["https://jwt.example.com/cb"],
            "token_endpoint_auth_method": "client_secret_jwt",
        }))
        .await;
    error_of(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(fake.client_ids().len(), 2);
    assert!(
        app.rows()
            .await
            .iter()
            .all(|(_, state)| *state == "pending")
    );

    let report = app.reconcile().await;
    assert_eq!(report.abandoned_removed_at_provider.len(), 2, "{report:?}");
    assert!(fake.client_ids().is_empty());
    assert!(app.rows().await.is_empty());
    fake.ledger.assert_clean("Okta");
}

#[tokio::test]
async fn clients_made_elsewhere_in_the_org_are_drift_only_when_asked() {
    let fake = OktaFake::start().await;
    // Listing must follow Okta's Link header across pages.
    fake.limit_page_size(1);
    let foreign = fake.seed("Made in the admin console");
    let reporting = gateway(&fake).await;
    for _ in 0..3 {
        reporting.register(&web_client()).await;
    }
    let report = reporting.reconcile().await;
    assert_eq!(
        report
            .unknown_to_gateway
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        vec![foreign]
    );
    assert!(report.missing_at_provider.is_empty(), "{report:?}");

    let quiet = spawn_app_for_provider(&format!(
        "kind = \"okta\"\norg_url = \"{}\"\napi_token = \"{API_TOKEN}\"\n\
         report_unknown_clients = false",
        fake.base
    ))
    .await;
    let mine = quiet.register(&web_client()).await;
    let report = quiet.reconcile().await;
    assert!(!report.has_drift(), "{report:?}");
    // Its own clients that vanish at Okta are still reported.
    fake.forget(id_of(&mine));
    let report = quiet.reconcile().await;
    assert_eq!(report.missing_at_provider.len(), 1, "{report:?}");
    fake.ledger.assert_clean("Okta");
}

#[tokio::test]
async fn discovery_comes_from_the_org_or_a_custom_authorization_server() {
    let fake = OktaFake::start().await;
    let org = gateway(&fake).await;
    let custom_issuer = format!("{}/oauth2/default", fake.base);
    let custom = spawn_app_for_provider(&format!(
        "kind = \"okta\"\norg_url = \"{}\"\nissuer = \"{custom_issuer}\"\n\
         api_token = \"{API_TOKEN}\"",
        fake.base
    ))
    .await;
    // The org's endpoints are under `/oauth2/v1`, a custom server's under
    // its issuer (the document's `OrgASOidcMetadata` and
    // `CustomASOidcMetadata` examples).
    let org_endpoints = format!("{}/oauth2", fake.base);
    for (app, issuer, endpoints) in [
        (&org, fake.base.as_str(), org_endpoints.as_str()),
        (&custom, custom_issuer.as_str(), custom_issuer.as_str()),
    ] {
        let doc = app.get_json("/.well-known/openid-configuration").await;
        assert_eq!(doc["issuer"], issuer);
        assert_eq!(doc["token_endpoint"], format!("{endpoints}/v1/token"));
        assert_eq!(doc["registration_endpoint"], app.url("/register"));
    }
}
