//! The BillForward backend against a stateful fake of its Clients API that
//! checks every request against the documented Client model: how the
//! contract suite (`providers`) drives it, and what only BillForward does.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::providers::{LostCreate, Subject, fake_basics};
use crate::support::billforward::{API_TOKEN, BillForwardFake};
use crate::support::*;

impl Subject for BillForwardFake {
    const VENDOR: &'static str = "BillForward";
    const KIND: &'static str = "billforward";
    // The gateway picks the clientId: a lost create is read back by it.
    const LOST_CREATE: LostCreate = LostCreate::FoundAgain;
    // A replace reads the held secret, to send the whole record back; a
    // delete reads the record, to send it back retired.
    const READS_BEFORE_REPLACE: usize = 1;
    const READS_BEFORE_DELETE: usize = 1;
    const SECRET: &'static str = "clientSecret";
    // One `list_separator`-separated string.
    const REDIRECT_URIS: &'static str = "registeredRedirectUris";

    fake_basics!();

    fn keys_at(base_url: &str) -> String {
        keys_for(base_url, ",")
    }

    fn ids(&self) -> Vec<String> {
        self.active_ids()
    }

    async fn forget(&self, id: &str) {
        BillForwardFake::forget(self, id);
    }

    fn limit_page_size(&self, n: usize) {
        BillForwardFake::limit_page_size(self, n);
    }

    fn refused_credential(&self) -> String {
        Self::keys_at(&self.base).replace(API_TOKEN, "revoked-token")
    }
}

/// The `[provider]` keys of a gateway in front of BillForward at
/// `base_url`, holding lists as `separator`-separated strings.
fn keys_for(base_url: &str, separator: &str) -> String {
    format!(
        "kind = \"billforward\"\nbase_url = \"{base_url}\"\napi_token = \"{API_TOKEN}\"\n\
         organization_id = \"ORG-1\"\nresource_ids = [\"billing\", \"invoices\"]\n\
         authorities = [\"ROLE_CLIENT\"]\naccess_token_validity_seconds = 600\n\
         list_separator = \"{separator}\""
    )
}

async fn gateway_for(fake: &BillForwardFake, separator: &str) -> TestApp {
    spawn_app_for_provider(&keys_for(&fake.base, separator)).await
}

#[tokio::test]
async fn billforward_holds_lists_as_strings_and_retires_deleted_clients() {
    let fake = BillForwardFake::start().await;
    let app = gateway_for(&fake, ",").await;
    let client = app
        .register(&json!({
            "redirect_uris": ["https://app.example.com/cb"],
            "client_name": "Billing app",
            "scope": "read write",
            "grant_types": ["authorization_code", "refresh_token"],
        }))
        .await;
    let id = id_of(&client);
    let held = fake.client(id).expect("the gateway chose the clientId");
    assert_eq!(held["organizationID"], "ORG-1");
    assert_eq!(held["scope"], "read,write");
    assert_eq!(
        held["authorizedGrantTypes"],
        "authorization_code,refresh_token"
    );
    assert_eq!(held["registeredRedirectUris"], "https://app.example.com/cb");
    assert_eq!(held["resourceIds"], "billing,invoices");
    assert_eq!(held["authorities"], "ROLE_CLIENT");
    assert_eq!(held["accessTokenValiditySeconds"], 600);
    assert_eq!(
        held["refreshTokenValiditySeconds"], 2_592_000,
        "Spring's default"
    );
    assert_eq!(
        client["client_name"], "Billing app",
        "the gateway keeps the name"
    );

    let replaced = app
        .replace(
            &client,
            json!({
                "redirect_uris": ["https://app.example.com/a", "https://app.example.com/b"],
                "scope": "read",
            }),
        )
        .await;
    assert_eq!(replaced.status(), StatusCode::OK);
    let replaced: Value = replaced.json().await.unwrap();
    let held = fake.client(id).unwrap();
    assert_eq!(
        held["registeredRedirectUris"],
        "https://app.example.com/a,https://app.example.com/b"
    );
    assert_eq!(held["scope"], "read");

    let deleted = app.delete(&replaced, Some(token_of(&replaced))).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        fake.client(id).unwrap()["deleted"],
        true,
        "retired, not removed"
    );
    fake.ledger.assert_clean("BillForward");
}

#[tokio::test]
async fn billforward_refuses_what_it_cannot_hold_before_calling() {
    let fake = BillForwardFake::start().await;
    let app = gateway_for(&fake, ",").await;
    for (body, limit) in [
        (
            json!({ "redirect_uris": ["https://app.example.com/cb"], "token_endpoint_auth_method": "none" }),
            "always authenticate with a client secret",
        ),
        (
            json!({
                "redirect_uris": ["https://app.example.com/cb"],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks_uri": "https://app.example.com/jwks.json",
            }),
            "always authenticate with a client secret",
        ),
        (
            json!({ "redirect_uris": ["https://app.example.com/cb?a=1,2"] }),
            "`,`-separated",
        ),
    ] {
        let (error, description) = app.register_error(&body).await;
        assert_eq!(error, "invalid_client_metadata");
        assert!(description.contains("billforward"), "{description}");
        assert!(description.contains(limit), "{description}");
    }
    assert_eq!(fake.ledger.requests(), 0);

    // With another separator the same URI can be held.
    let fake = BillForwardFake::start().await;
    let app = gateway_for(&fake, " ").await;
    let client = app
        .register(&json!({ "redirect_uris": ["https://app.example.com/cb?a=1,2"], "scope": "a b" }))
        .await;
    assert_eq!(fake.client(id_of(&client)).unwrap()["scope"], "a b");
    fake.ledger.assert_clean("BillForward");
}

#[tokio::test]
async fn billforward_replace_issues_a_new_secret_when_the_held_one_is_not_shown() {
    let fake = BillForwardFake::start().await;
    let app = gateway_for(&fake, ",").await;
    let client = app.register(&web_client()).await;
    fake.hide_secrets();
    let replaced = app
        .replace(
            &client,
            json!({ "redirect_uris": ["https://app.example.com/2"] }),
        )
        .await;
    assert_eq!(replaced.status(), StatusCode::OK);
    let replaced: Value = replaced.json().await.unwrap();
    let held = fake.client(id_of(&client)).unwrap();
    assert_eq!(
        held["clientSecret"], replaced["client_secret"],
        "never a blank secret"
    );
    assert_ne!(replaced["client_secret"], client["client_secret"]);
    fake.ledger.assert_clean("BillForward");
}

/// A listing that never advances (the API ignores `offset`) ends reconcile's
/// comparison with an error instead of a loop.
#[tokio::test]
async fn a_listing_that_does_not_advance_ends_with_an_error() {
    let fake = BillForwardFake::start().await;
    let app = gateway_for(&fake, ",").await;
    for _ in 0..3 {
        app.register(&web_client()).await;
    }
    fake.limit_page_size(2);
    fake.ignore_offset();
    let report = tokio::time::timeout(std::time::Duration::from_secs(10), app.reconcile())
        .await
        .expect("reconcile ends");
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(report.failed[0].contains("does not advance"), "{report:?}");
    fake.ledger.assert_clean("BillForward");
}
