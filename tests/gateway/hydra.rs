//! The Hydra backend against a stateful fake of Hydra's admin API that checks
//! every request against Hydra's OpenAPI document: how the contract suite
//! (`providers`) drives it, and what only Hydra does.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::providers::{LostCreate, Subject, fake_basics};
use crate::support::hydra::{Fault, HydraFake};
use crate::support::*;

impl Subject for HydraFake {
    const VENDOR: &'static str = "Hydra";
    const KIND: &'static str = "hydra";
    // The create is under the gateway's id: repeated, it would meet its own
    // client; sent once, a lost answer leaves nothing to look for.
    const LOST_CREATE: LostCreate = LostCreate::LeftPending;
    const READS_BEFORE_REPLACE: usize = 0;
    const READS_BEFORE_DELETE: usize = 0;
    const SECRET: &'static str = "client_secret";
    const REDIRECT_URIS: &'static str = "redirect_uris";

    fake_basics!();

    fn keys_at(admin_url: &str) -> String {
        format!("kind = \"hydra\"\nadmin_url = \"{admin_url}\"\nissuer = \"{admin_url}\"")
    }

    fn ids(&self) -> Vec<String> {
        self.client_ids()
    }

    /// An operator deletes it with Hydra's own admin API.
    async fn forget(&self, id: &str) {
        let removed = reqwest::Client::new()
            .delete(format!("{}/admin/clients/{id}", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    }

    fn limit_page_size(&self, n: usize) {
        HydraFake::limit_page_size(self, n);
    }

    fn refused_credential(&self) -> String {
        self.require_api_key();
        format!("{}\napi_key = \"revoked-key\"", Self::keys_at(&self.base))
    }
}

/// Without retries and with a breaker that never sheds, so that each fault
/// shows how it is classified.
async fn gateway_for(fake: &HydraFake) -> TestApp {
    gateway_with(fake, "retries = 0\ncircuit_failure_rate = 1.0\n").await
}

async fn gateway_with(fake: &HydraFake, resilience: &str) -> TestApp {
    spawn_app_with(&format!(
        "[provider]\n{}\ntimeout = \"1s\"\nreconcile_interval = \"0s\"\n{resilience}\
         [provider.lifespans]\nauthorization_code_grant_access_token_lifespan = \"1h\"\n",
        HydraFake::keys_at(&fake.base)
    ))
    .await
}

#[tokio::test]
async fn hydra_holds_what_it_can_and_the_gateway_keeps_the_rest() {
    let fake = HydraFake::start().await;
    let app = gateway_for(&fake).await;
    let client = app
        .register(&json!({
            "redirect_uris": ["https://app.example.com/cb?x=1"],
            "client_name": "Hydra app",
            "client_name#ja-Jpan-JP": "ハイドラ",
            "scope": "openid offline",
            "contacts": ["ops@example.com"],
            "grant_types": ["authorization_code", "refresh_token"],
            "software_id": "4NRB1-0XZABZI9E6-5SM3R",
            "software_version": "2.1",
            "default_max_age": 600,
            "require_auth_time": true,
            "id_token_signed_response_alg": "ES256",
            "skip_consent": true,
            "metadata": { "role": "admin" },
            "access_token_strategy": "jwt",
            "owner": "someone",
            "audience": ["https://api.example.com"],
        }))
        .await;
    let id = client["client_id"].as_str().unwrap();
    assert_eq!(id.len(), 22, "the gateway chose the id");
    let held = fake.client(id).expect("the client is at Hydra");
    assert_eq!(held["client_name"], "Hydra app");
    assert_eq!(
        held["redirect_uris"],
        json!(["https://app.example.com/cb?x=1"])
    );
    assert_eq!(held["scope"], "openid offline");
    assert_eq!(held["contacts"], json!(["ops@example.com"]));
    assert_eq!(
        held["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(held["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(
        held["authorization_code_grant_access_token_lifespan"],
        "3600s"
    );
    assert_eq!(
        held["owner"], "dcr-gateway",
        "the gateway's mark, not the app's"
    );
    for operator_only in [
        "skip_consent",
        "metadata",
        "access_token_strategy",
        "audience",
        "skip_logout_consent",
    ] {
        assert!(
            held.get(operator_only).is_none(),
            "{operator_only} reached Hydra"
        );
    }

    // What Hydra cannot hold comes back from the gateway.
    let read: Value = app.read_json(&client).await;
    assert_eq!(read["client_name#ja-Jpan-JP"], "ハイドラ");
    assert_eq!(read["software_id"], "4NRB1-0XZABZI9E6-5SM3R");
    assert_eq!(read["software_version"], "2.1");
    assert_eq!(read["default_max_age"], 600);
    assert_eq!(read["require_auth_time"], true);
    assert_eq!(read["id_token_signed_response_alg"], "ES256");
    assert!(read.get("skip_consent").is_none());

    // A replace is a full one.
    let updated = app
        .replace(
            &client,
            json!({ "redirect_uris": ["https://app.example.com/new"], "client_name": "Renamed" }),
        )
        .await;
    assert_eq!(updated.status(), StatusCode::OK);
    let held = fake.client(id).unwrap();
    assert_eq!(held["client_name"], "Renamed");
    assert!(
        held.get("contacts").is_none(),
        "a full replace drops omitted members"
    );
    fake.ledger.assert_clean("Hydra");
}

#[tokio::test]
async fn discovery_comes_from_hydra_with_the_gateway_as_registration_endpoint() {
    let fake = HydraFake::start().await;
    let app = gateway_for(&fake).await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let doc: Value = app.get_json(path).await;
        assert_eq!(doc["issuer"], fake.base);
        assert_eq!(doc["token_endpoint"], format!("{}/oauth2/token", fake.base));
        assert_eq!(doc["registration_endpoint"], app.url("/register"));
    }
    fake.ledger.assert_clean("Hydra");
}

#[tokio::test]
async fn hydra_refusals_get_answers_a_client_can_act_on() {
    let fake = HydraFake::start().await;
    let app = gateway_for(&fake).await;

    fake.reject_next("The redirect URL is not allowed by policy.");
    let (code, description) = app.register_error(&web_client()).await;
    assert_eq!(code, "invalid_client_metadata");
    // The gateway's own words: Hydra's text is for the operator's log.
    assert!(
        description.contains("hydra provider refused this client (HTTP 400)"),
        "{description}"
    );
    assert!(!description.contains("redirect URL"), "{description}");

    let mut keys = web_client();
    keys["token_endpoint_auth_method"] = json!("private_key_jwt");
    keys["jwks"] = json!({ "keys": [{ "kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" }] });
    let (code, description) = app.register_error(&keys).await;
    assert_eq!(code, "invalid_client_metadata");
    assert!(
        description.contains("hydra") && description.contains("kid"),
        "{description}"
    );

    // Refusals leave nothing behind.
    assert!(app.rows().await.is_empty());
    assert!(fake.client_ids().is_empty());
    fake.ledger.assert_clean("Hydra");
}

#[tokio::test]
async fn reconcile_reports_drift_both_ways() {
    let fake = HydraFake::start().await;
    let app = gateway_for(&fake).await;
    let kept = app.register(&web_client()).await;
    let lost = app.register(&web_client()).await;
    // Someone deletes one client at Hydra and creates another there directly.
    fake.forget(id_of(&lost)).await;
    reqwest::Client::new()
        .post(format!("{}/admin/clients", fake.base))
        .json(
            &json!({ "client_id": "made-by-hand", "redirect_uris": ["https://x.example.com/cb"] }),
        )
        .send()
        .await
        .unwrap();
    let report = app.reconcile().await;
    assert!(report.has_drift());
    assert_eq!(
        report
            .unknown_to_gateway
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["made-by-hand"]
    );
    assert_eq!(
        report
            .missing_at_provider
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [lost["client_id"].as_str().unwrap()]
    );
    assert!(fake.client(kept["client_id"].as_str().unwrap()).is_some());
    fake.ledger.assert_clean("Hydra");
}

#[tokio::test]
async fn retries_absorb_transient_failures_without_duplicates() {
    let fake = HydraFake::start().await;
    let app = gateway_with(&fake, "retries = 2\n").await;
    // A 500, then an answer lost after the client was created: the retried
    // create finds its own client (409) and succeeds.
    fake.ledger
        .queue_faults(&[Fault::ServerError, Fault::CommitAndDrop]);
    let client = app.register(&web_client()).await;
    assert_eq!(fake.client_ids(), [client["client_id"].as_str().unwrap()]);
    assert_eq!(
        app.rows().await,
        [(client["client_id"].as_str().unwrap().to_owned(), "active")]
    );
    // Idempotent calls are retried too.
    fake.ledger.queue_faults(&[Fault::Garbage]);
    assert_eq!(
        app.delete(&client, Some(token_of(&client))).await.status(),
        StatusCode::NO_CONTENT
    );
    assert!(fake.client_ids().is_empty());
    fake.ledger.assert_clean("Hydra");
}
