//! The Okta backend against a stateful fake of Okta's client API that checks
//! every request against Okta's OpenAPI document.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::okta::{ACCESS_TOKEN, API_TOKEN, Fault, OktaFake};
use crate::support::*;

/// The `[provider]` keys of a gateway in front of `fake`.
pub(crate) fn keys_for(fake: &OktaFake) -> String {
    format!(
        "kind = \"okta\"\norg_url = \"{}\"\napi_token = \"{API_TOKEN}\"",
        fake.base
    )
}

/// Without retries and with a breaker that never sheds, so that each fault
/// shows how it is classified.
pub(crate) async fn gateway_for(fake: &OktaFake) -> TestApp {
    spawn_app_for_provider(&keys_for(fake)).await
}

#[tokio::test]
async fn okta_register_read_replace_rotate_delete() {
    let fake = OktaFake::start().await;
    let app = gateway_for(&fake).await;
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
    assert_eq!(
        held["client_secret"], client["client_secret"],
        "the app's secret is Okta's"
    );
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

    let read = app.read(&client, Some(token_of(&client))).await;
    assert_eq!(read.status(), StatusCode::OK);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["client_id"], id.as_str());
    assert_eq!(read["software_id"], "okta-sw");
    assert!(read.get("client_secret").is_none());

    let replaced = app
        .update(
            &client,
            Some(token_of(&client)),
            &update_body(
                &client,
                json!({
                    "redirect_uris": ["https://app.example.com/new"],
                    "client_name": "Okta app, renamed",
                    "scope": "openid",
                }),
            ),
        )
        .await;
    assert_eq!(replaced.status(), StatusCode::OK);
    let replaced: Value = replaced.json().await.unwrap();
    let held = fake.client(&id).unwrap();
    assert_eq!(
        held["redirect_uris"],
        json!(["https://app.example.com/new"])
    );
    assert_eq!(held["client_name"], "Okta app, renamed");
    assert_eq!(
        held["client_secret"], client["client_secret"],
        "no rotation on replace"
    );
    assert!(held.get("logo_uri").is_none(), "PUT is a full replace");
    assert_eq!(replaced["scope"], "openid");

    let rotated = app.service.rotate_secret(&id).await.unwrap();
    let held = fake.client(&id).unwrap();
    assert_eq!(
        held["client_secret"],
        rotated.expose(),
        "rotated through newSecret"
    );
    assert_ne!(held["client_secret"], client["client_secret"]);

    let deleted = app.delete(&replaced, Some(token_of(&replaced))).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert!(fake.client_ids().is_empty());
    let gone = app.read(&replaced, Some(token_of(&replaced))).await;
    assert_eq!(gone.status(), StatusCode::UNAUTHORIZED);
    fake.ledger.assert_clean("Okta");
}

#[tokio::test]
async fn okta_gets_a_name_and_the_app_type_its_grants_need() {
    let fake = OktaFake::start().await;
    let app = gateway_for(&fake).await;
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
    // An admin's setting the gateway has no member for survives a replace.
    fake.set_member(
        id_of(&first),
        "frontchannel_logout_uri",
        json!("https://app.example.com/logout"),
    );
    fake.set_member(
        id_of(&first),
        "post_logout_redirect_uris",
        json!(["https://app.example.com/bye"]),
    );

    // A full replace sends the same name again.
    let replaced = app
        .update(
            &first,
            Some(token_of(&first)),
            &update_body(
                &first,
                json!({ "redirect_uris": ["https://app.example.com/2"] }),
            ),
        )
        .await;
    assert_eq!(replaced.status(), StatusCode::OK);
    let held = fake.client(id_of(&first)).unwrap();
    assert_eq!(held["client_name"], names[0]);
    assert_eq!(
        held["frontchannel_logout_uri"],
        "https://app.example.com/logout"
    );
    assert_eq!(
        held["post_logout_redirect_uris"],
        json!(["https://app.example.com/bye"])
    );

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
    let app = gateway_for(&fake).await;
    let (error, description) = app
        .register_error(&json!({
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_subject_dn": "CN=app",
        }))
        .await;
    assert_eq!(error, "invalid_client_metadata");
    assert!(description.contains("okta"), "{description}");
    // Okta's table of grant types per app type: a browser app has no refresh_token.
    let (error, description) = app
        .register_error(&json!({
            "redirect_uris": ["https://spa.example.com/cb"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
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

fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn okta_spent_rate_budget_is_answered_without_calling() {
    let fake = OktaFake::start().await;
    let app = gateway_for(&fake).await;
    // Okta's own 429: the wait is until the announced reset, not a guess.
    fake.set_budget(100, 45);
    fake.ledger.queue_faults(&[Fault::RateLimited]);
    let response = app.post_register(&web_client()).await;
    assert!((30..=45).contains(&retry_after(&response)));
    let (error, _) = error_of(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(error, "temporarily_unavailable");
    assert!(app.rows().await.is_empty());

    fake.set_budget(1, 30);
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

#[tokio::test]
async fn okta_unknown_clients_answer_404_or_401_and_read_as_gone() {
    let fake = OktaFake::start().await;
    let app = gateway_for(&fake).await;
    let by_404 = app.register(&web_client()).await;
    let by_401 = app.register(&web_client()).await;
    for (client, use_401) in [(&by_404, false), (&by_401, true)] {
        if use_401 {
            fake.answer_unknown_with_401();
        }
        fake.forget(id_of(client));
        assert!(app.service.rotate_secret(id_of(client)).await.is_err());
        let report = app.reconcile().await;
        assert!(
            report
                .missing_at_provider
                .iter()
                .any(|id| id.as_str() == id_of(client)),
            "reconcile reports the client missing at Okta"
        );
        assert_missing_at_provider_reads_as_gone(&app, client).await;
    }
    assert!(app.rows().await.is_empty());
    fake.ledger.assert_clean("Okta");
}

#[tokio::test]
async fn okta_lost_create_answer_is_found_again_not_duplicated() {
    let fake = OktaFake::start().await;
    let app = gateway_for(&fake).await;
    fake.ledger.queue_faults(&[Fault::CommitAndDrop]);
    let client = app
        .register(&json!({
            "redirect_uris": ["https://app.example.com/cb"],
            "client_name": "Lost answer",
        }))
        .await;
    assert_eq!(
        fake.client_ids(),
        vec![id_of(&client).to_owned()],
        "one client at Okta"
    );
    assert_eq!(
        fake.client(id_of(&client)).unwrap()["client_secret"],
        client["client_secret"],
        "the first secret was never seen, so a new one was made"
    );
    let report = app.reconcile().await;
    assert!(!report.has_drift(), "{report:?}");
    fake.ledger.assert_clean("Okta");
}

#[tokio::test]
async fn okta_lost_create_that_cannot_be_found_yet_is_removed_by_reconcile() {
    let fake = OktaFake::start().await;
    let app = gateway_for(&fake).await;
    // The create's answer is lost and the search that follows fails too.
    fake.ledger
        .queue_faults(&[Fault::CommitAndDrop, Fault::ServerError]);
    let response = app.post_register(&web_client()).await;
    let (error, _) = error_of(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(error, "temporarily_unavailable");
    assert_eq!(fake.client_ids().len(), 1, "Okta made the client");
    assert_eq!(app.rows().await[0].1, "pending");

    let report = app.reconcile().await;
    assert_eq!(report.abandoned_removed_at_provider.len(), 1, "{report:?}");
    assert!(
        fake.client_ids().is_empty(),
        "the orphan was deleted at Okta"
    );
    assert!(app.rows().await.is_empty());
    fake.ledger.assert_clean("Okta");
}

#[tokio::test]
async fn okta_holds_keys_for_private_key_jwt() {
    let fake = OktaFake::start().await;
    let app = gateway_for(&fake).await;
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
async fn a_credential_okta_refuses_is_an_outage_not_the_apps_fault() {
    let fake = OktaFake::start().await;
    let app = spawn_app_for_provider(&format!(
        "kind = \"okta\"\norg_url = \"{}\"\napi_token = \"revoked-token\"",
        fake.base
    ))
    .await;
    let response = app.post_register(&web_client()).await;
    let (error, description) = error_of(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(error, "temporarily_unavailable");
    assert!(
        description.contains("okta provider is unavailable"),
        "{description}"
    );
    assert!(app.rows().await.is_empty());
    assert_eq!(
        fake.ledger.violations().len(),
        1,
        "the fake saw the wrong token"
    );
}

#[tokio::test]
async fn okta_lost_create_without_a_fresh_secret_stays_pending_until_reconcile() {
    let fake = OktaFake::start().await;
    let app = gateway_for(&fake).await;
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
    let reporting = gateway_for(&fake).await;
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
    let org = gateway_for(&fake).await;
    let custom_issuer = format!("{}/oauth2/default", fake.base);
    let custom = spawn_app_for_provider(&format!(
        "kind = \"okta\"\norg_url = \"{}\"\nissuer = \"{custom_issuer}\"\n\
         api_token = \"{API_TOKEN}\"",
        fake.base
    ))
    .await;
    for (app, issuer) in [(&org, fake.base.clone()), (&custom, custom_issuer)] {
        let doc = app.get_json("/.well-known/openid-configuration").await;
        assert_eq!(doc["issuer"], issuer.as_str());
        assert_eq!(doc["token_endpoint"], format!("{issuer}/v1/token"));
        assert_eq!(doc["registration_endpoint"], app.url("/register"));
    }
}
