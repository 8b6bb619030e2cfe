//! Every member of the IANA "OAuth Dynamic Client Registration Metadata"
//! registry, through every back end: registered, echoed exactly, read and
//! replaced; the members a vendor has a field for reach its API. Then, member
//! by member, a value of the wrong type and one outside the member's rules
//! are refused with `invalid_client_metadata` naming it.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::{Map, Value, json};

use crate::providers::Subject;
use crate::support::billforward::BillForwardFake;
use crate::support::hydra::HydraFake;
use crate::support::oidc_provider::OidcProvider;
use crate::support::okta::OktaFake;
use crate::support::zendesk::ZendeskFake;
use crate::support::*;

/// The operator's extension member in these tests.
const EXTRA: &str = "[registration]\nextra_metadata = [\"tenant_hint\"]\n";

/// The registry's members beyond RFC 7591 and OpenID Connect DCR, valid.
fn registry_members() -> Value {
    json!({
        "post_logout_redirect_uris": ["https://app.example.com/bye", "https://app.example.com/Bye?x=1"],
        "frontchannel_logout_uri": "https://app.example.com/fc?from=op",
        "frontchannel_logout_session_required": true,
        "backchannel_logout_uri": "https://backend.example.com/bc",
        "backchannel_logout_session_required": false,
        "tls_client_certificate_bound_access_tokens": true,
        "tls_client_auth_subject_dn": "CN=app,O=Example",
        "dpop_bound_access_tokens": true,
        "require_pushed_authorization_requests": true,
        "require_signed_request_object": false,
        "authorization_details_types": ["payment_initiation", "account_information"],
        "authorization_signed_response_alg": "ES256",
        "authorization_encrypted_response_alg": "ECDH-ES",
        "authorization_encrypted_response_enc": "A128GCM",
        "introspection_signed_response_alg": "PS256",
        "introspection_encrypted_response_alg": "RSA-OAEP",
        "introspection_encrypted_response_enc": "A256CBC-HS512",
        "backchannel_token_delivery_mode": "ping",
        "backchannel_client_notification_endpoint": "https://app.example.com/ciba",
        "backchannel_authentication_request_signing_alg": "ES256",
        "backchannel_user_code_parameter": true,
        "client_registration_types": ["explicit", "automatic"],
        "organization_name": "Example Org",
        "signed_jwks_uri": "https://app.example.com/Signed-JWKS.jwt?v=1",
        "ace_profile": "coap_dtls",
        "nfv_token_signing_alg": "ES384",
        "nfv_token_encryption_alg": "RSA-OAEP-256",
        "nfv_token_encryption_enc": "A192GCM",
    })
}

/// RFC 7591 and OpenID Connect DCR members, valid with every provider
/// (a secret method, grants every vendor allows); `sector`, when given,
/// with pairwise subjects.
fn core_members(sector: Option<&str>) -> Value {
    let mut core = json!({
        "redirect_uris": ["https://app.example.com/cb"],
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "client_name": "Every member",
        "client_name#fr": "Chaque membre",
        "client_uri": "https://app.example.com/",
        "logo_uri": "https://app.example.com/logo.png",
        "tos_uri": "https://app.example.com/tos",
        "policy_uri": "https://app.example.com/policy",
        "scope": "openid",
        "contacts": ["ops@example.com"],
        "jwks_uri": "https://app.example.com/jwks.json",
        "software_id": "every-member-suite",
        "software_version": "1.0.0",
        "application_type": "web",
        "id_token_signed_response_alg": "RS256",
        "id_token_encrypted_response_alg": "RSA-OAEP-256",
        "id_token_encrypted_response_enc": "A256GCM",
        "userinfo_signed_response_alg": "RS256",
        "userinfo_encrypted_response_alg": "RSA-OAEP",
        "userinfo_encrypted_response_enc": "A128CBC-HS256",
        "request_object_signing_alg": "RS256",
        "request_object_encryption_alg": "RSA-OAEP-256",
        "request_object_encryption_enc": "A128CBC-HS256",
        "default_max_age": 3600,
        "require_auth_time": true,
        "default_acr_values": ["urn:mace:incommon:iap:silver"],
        "initiate_login_uri": "https://app.example.com/login",
        "request_uris": ["https://app.example.com/request.jwt#a1"],
    });
    if let Some(sector) = sector {
        core["sector_identifier_uri"] = json!(sector);
        core["subject_type"] = json!("pairwise");
    }
    core
}

/// Every member at once, with the operator's extension member and a member
/// nobody listed.
fn every_member(sector: Option<&str>) -> Value {
    let mut all = core_members(sector);
    merge(&mut all, registry_members());
    all["organization_name#fr"] = json!("Organisation exemple");
    all["tenant_hint"] = json!({ "region": "eu", "tier": [1, 2] });
    all["not_listed"] = json!("ignored");
    all
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(into), Value::Object(from)) = (into, from) {
        into.extend(from);
    }
}

/// Asserts that `answer` carries every member of `sent` exactly, and
/// neither the unlisted member nor an empty registry member.
fn assert_echoes(answer: &Value, sent: &Value, backend: &str) {
    for (member, value) in sent.as_object().unwrap() {
        if member == "not_listed" {
            assert!(answer.get(member).is_none(), "{backend}: `{member}` echoed");
            continue;
        }
        assert_eq!(&answer[member], value, "{backend}: `{member}` changed");
    }
}

/// A gateway in front of `provider_keys` (none: the built-in registry)
/// trusting the https document server whose CA is `ca`.
async fn gateway(provider_keys: Option<&str>, ca: &Path) -> TestApp {
    let provider = provider_keys.map_or(String::new(), |keys| {
        format!("[provider]\n{keys}\ntimeout = \"5s\"\nreconcile_interval = \"0s\"\nretries = 0\n")
    });
    spawn_app_with(&format!(
        "{provider}{EXTRA}[outbound]\nallow_private_networks = true\n\
         extra_root_certificates = [\"{}\"]\n",
        ca.display()
    ))
    .await
}

/// Registers every member, reads it, replaces it with itself and with each
/// other certificate subject: every answer echoes what was registered.
/// Returns the client as registered.
async fn round_trip(app: &TestApp, sent: &Value, backend: &str) -> Value {
    let client = app.register(sent).await;
    assert_echoes(&client, sent, backend);
    assert_echoes(&app.read_json(&client).await, sent, backend);
    let replaced = app.replace(&client, sent.clone()).await;
    assert_eq!(replaced.status(), StatusCode::OK, "{backend}");
    assert_echoes(&replaced.json().await.unwrap(), sent, backend);
    for (member, value) in [
        ("tls_client_auth_san_dns", "app.example.com"),
        ("tls_client_auth_san_uri", "spiffe://example.com/app"),
        ("tls_client_auth_san_ip", "2001:db8::1"),
        ("tls_client_auth_san_email", "app@example.com"),
    ] {
        let mut other = sent.clone();
        other
            .as_object_mut()
            .unwrap()
            .remove("tls_client_auth_subject_dn");
        other[member] = json!(value);
        let replaced = app.replace(&client, other.clone()).await;
        assert_eq!(replaced.status(), StatusCode::OK, "{backend}: {member}");
        let replaced: Value = replaced.json().await.unwrap();
        assert_echoes(&replaced, &other, backend);
        assert!(replaced.get("tls_client_auth_subject_dn").is_none());
    }
    let back = app.replace(&client, sent.clone()).await;
    assert_eq!(back.status(), StatusCode::OK, "{backend}");
    client
}

/// The https server of the sector identifier document, and its CA.
async fn sector_server(dir: &Path) -> (String, std::path::PathBuf) {
    let (addr, ca) = https_document_server(dir, json!(["https://app.example.com/cb"])).await;
    (format!("https://localhost:{}/sector.json", addr.port()), ca)
}

#[tokio::test]
async fn every_member_round_trips_through_the_built_in_registry() {
    let dir = tempfile::tempdir().unwrap();
    let (sector, ca) = sector_server(dir.path()).await;
    let app = gateway(None, &ca).await;
    round_trip(&app, &every_member(Some(&sector)), "local").await;
}

/// Through a fake vendor: the round trip, then what the vendor holds.
/// `native` are the registry members the back end writes to the vendor
/// under the same name; the vendor holds no other registry member.
async fn through_vendor<S: Subject>(native: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let (sector, ca) = sector_server(dir.path()).await;
    let fake = S::start().await;
    let app = gateway(Some(&S::keys_at(fake.base())), &ca).await;
    let sent = every_member(Some(&sector));
    let client = round_trip(&app, &sent, S::VENDOR).await;
    fake.ledger().assert_clean(S::VENDOR);
    let held = fake.held(id_of(&client)).unwrap();
    for (member, value) in registry_members().as_object().unwrap() {
        if native.contains(&member.as_str()) {
            assert_eq!(&held[member], value, "{} holds `{member}`", S::VENDOR);
        } else {
            assert!(held.get(member).is_none(), "{} got `{member}`", S::VENDOR);
        }
    }
    for member in ["tenant_hint", "not_listed"] {
        assert!(held.get(member).is_none(), "{} got `{member}`", S::VENDOR);
    }
}

#[tokio::test]
async fn every_member_round_trips_through_hydra() {
    through_vendor::<HydraFake>(&[
        "post_logout_redirect_uris",
        "frontchannel_logout_uri",
        "frontchannel_logout_session_required",
        "backchannel_logout_uri",
        "backchannel_logout_session_required",
    ])
    .await;
}

#[tokio::test]
async fn every_member_round_trips_through_okta() {
    through_vendor::<OktaFake>(&[
        "post_logout_redirect_uris",
        "frontchannel_logout_uri",
        "frontchannel_logout_session_required",
    ])
    .await;
}

#[tokio::test]
async fn every_member_round_trips_through_zendesk() {
    through_vendor::<ZendeskFake>(&[]).await;
}

#[tokio::test]
async fn every_member_round_trips_through_billforward() {
    through_vendor::<BillForwardFake>(&[]).await;
}

#[tokio::test]
async fn every_member_round_trips_through_an_rfc7591_server() {
    let upstream = OidcProvider::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, ca) = sector_server(dir.path()).await;
    let keys = format!(
        "kind = \"rfc7591\"\nissuer = \"{}\"\nregistration_endpoint = \"{}\"",
        upstream.issuer,
        upstream.registration_endpoint()
    );
    let app = gateway(Some(&keys), &ca).await;
    // The upstream serves public subjects only, could not fetch a sector
    // document from this test's own CA, and has no ACR values to ask for.
    let mut sent = every_member(None);
    sent.as_object_mut().unwrap().remove("default_acr_values");
    round_trip(&app, &sent, "rfc7591").await;
}

/// Each member with a value of the wrong JSON type, and (where its type
/// leaves room for one) a value outside its spec's rules.
#[rustfmt::skip]
fn refusals() -> Vec<(&'static str, Value, Option<Value>)> {
    vec![
        ("post_logout_redirect_uris", json!("https://app.example.com/bye"), Some(json!(["https://app.example.com/bye#top"]))),
        ("frontchannel_logout_uri", json!(1), Some(json!("https://other.example.com/fc"))),
        ("frontchannel_logout_session_required", json!("true"), None),
        ("backchannel_logout_uri", json!(["https://app.example.com/bc"]), Some(json!("https://app.example.com/bc#frag"))),
        ("backchannel_logout_session_required", json!(1), None),
        ("tls_client_certificate_bound_access_tokens", json!("yes"), None),
        ("tls_client_auth_subject_dn", json!(["CN=app"]), Some(json!(" "))),
        ("tls_client_auth_san_dns", json!(7), Some(json!(""))),
        ("tls_client_auth_san_uri", json!(true), Some(json!("not a uri"))),
        ("tls_client_auth_san_ip", json!(10), Some(json!("300.1.2.3"))),
        ("tls_client_auth_san_email", json!({}), Some(json!("no-at-sign"))),
        ("dpop_bound_access_tokens", json!("false"), None),
        ("require_pushed_authorization_requests", json!(0), None),
        ("require_signed_request_object", json!([true]), None),
        ("authorization_details_types", json!("payment_initiation"), Some(json!([""]))),
        ("authorization_signed_response_alg", json!(256), Some(json!("none"))),
        ("authorization_encrypted_response_alg", json!(true), Some(json!("ROT13"))),
        ("authorization_encrypted_response_enc", json!(1), Some(json!("A128GCM"))),
        ("introspection_signed_response_alg", json!({}), Some(json!("none"))),
        ("introspection_encrypted_response_alg", json!(1), Some(json!("RSA-OAEP-1024"))),
        ("introspection_encrypted_response_enc", json!(false), Some(json!("A256GCM"))),
        ("backchannel_token_delivery_mode", json!(1), Some(json!("pull"))),
        ("backchannel_client_notification_endpoint", json!(1), Some(json!("http://app.example.com/ciba"))),
        ("backchannel_authentication_request_signing_alg", json!(["ES256"]), Some(json!("none"))),
        ("backchannel_user_code_parameter", json!("1"), None),
        ("client_registration_types", json!("explicit"), Some(json!(["explicit", "manual"]))),
        ("organization_name", json!(7), None),
        ("signed_jwks_uri", json!(["https://app.example.com/jwks.jwt"]), Some(json!("http://app.example.com/jwks.jwt"))),
        ("ace_profile", json!(1), Some(json!(" "))),
        ("nfv_token_signing_alg", json!(true), Some(json!("HS1"))),
        ("nfv_token_encryption_alg", json!(256), Some(json!("RSA-OAEP-1024"))),
        ("nfv_token_encryption_enc", json!([]), Some(json!("A128GCM"))),
    ]
}

/// `web_client()` with `extra` members.
fn web_client_with(extra: Value) -> Value {
    let mut body = web_client();
    merge(&mut body, extra);
    body
}

#[tokio::test]
async fn each_member_refuses_a_wrong_type_and_a_value_outside_its_rules() {
    let app = spawn_app().await;
    let table = refusals();
    let registry: Map<String, Value> = registry_members().as_object().unwrap().clone();
    let subjects = [
        "tls_client_auth_san_dns",
        "tls_client_auth_san_uri",
        "tls_client_auth_san_ip",
        "tls_client_auth_san_email",
    ];
    for member in registry.keys().map(String::as_str).chain(subjects) {
        assert!(
            table.iter().any(|(m, ..)| *m == member),
            "no row for {member}"
        );
    }
    for (member, wrong_type, outside_rules) in table {
        assert_metadata_refused(&app, web_client_with(json!({ member: wrong_type })), member).await;
        if let Some(value) = outside_rules {
            assert_metadata_refused(&app, web_client_with(json!({ member: value })), member).await;
        }
    }
}

#[tokio::test]
async fn rules_between_members_are_refused_naming_the_member() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({ "backchannel_token_delivery_mode": "push" }),
            "backchannel_client_notification_endpoint",
        ),
        (
            json!({ "grant_types": ["authorization_code", "urn:openid:params:grant-type:ciba"] }),
            "backchannel_token_delivery_mode",
        ),
        (
            json!({ "token_endpoint_auth_method": "tls_client_auth" }),
            "tls_client_auth_subject_dn",
        ),
        (
            json!({ "tls_client_auth_san_dns": "a.example.com", "tls_client_auth_san_ip": "192.0.2.1" }),
            "tls_client_auth_san_ip",
        ),
        (
            json!({ "introspection_encrypted_response_enc": "A128GCM" }),
            "introspection_encrypted_response_alg",
        ),
    ];
    for (members, named) in cases {
        assert_metadata_refused(&app, web_client_with(members), named).await;
    }
    // With what each rule asks for, the same members are taken.
    let taken = app
        .post_register(&web_client_with(json!({
            "grant_types": ["authorization_code", "urn:openid:params:grant-type:ciba"],
            "backchannel_token_delivery_mode": "poll",
            "token_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_san_ip": "192.0.2.1",
        })))
        .await;
    assert_eq!(taken.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn only_listed_extension_members_are_kept() {
    let app = spawn_app_with(EXTRA).await;
    let client = app
        .register(&web_client_with(
            json!({ "tenant_hint": [1, "two"], "other": true }),
        ))
        .await;
    assert_eq!(client["tenant_hint"], json!([1, "two"]));
    assert!(client.get("other").is_none());
    let read = app.read_json(&client).await;
    assert_eq!(read["tenant_hint"], json!([1, "two"]));

    let plain = spawn_app().await;
    let client = plain
        .register(&web_client_with(json!({ "tenant_hint": 1 })))
        .await;
    assert!(client.get("tenant_hint").is_none(), "not listed: ignored");
}

#[test]
fn extra_metadata_refuses_registry_and_server_members() {
    for name in [
        "post_logout_redirect_uris",
        "client_name",
        "client_secret",
        "logo_uri#fr",
        " ",
    ] {
        let toml = format!("[registration]\nextra_metadata = [\"{name}\"]\n");
        let errors = dcr_gateway::config::Config::from_sources(&toml, Vec::new())
            .err()
            .unwrap_or_else(|| panic!("`{name}` was taken as an extension member"));
        assert!(
            format!("{errors:?}").contains("extra_metadata"),
            "{errors:?}"
        );
    }
}

#[tokio::test]
async fn the_openapi_document_types_every_member() {
    let app = spawn_app().await;
    let document = app.get_json("/openapi.json").await;
    let properties = &document["components"]["schemas"]["MetadataDocument"]["properties"];
    for (member, value) in every_member(Some("https://sector.example.com/s.json"))
        .as_object()
        .unwrap()
    {
        if member.contains('#') || ["tenant_hint", "not_listed"].contains(&member.as_str()) {
            continue;
        }
        let schema = &properties[member];
        let types = schema["type"].clone();
        let expected = match value {
            Value::Bool(_) => "boolean",
            Value::Number(_) => "integer",
            Value::Array(_) => "array",
            _ => "string",
        };
        assert!(
            types == expected
                || types
                    .as_array()
                    .is_some_and(|t| t.contains(&json!(expected))),
            "`{member}` is typed {types} in the OpenAPI document"
        );
    }
}

#[tokio::test]
async fn hydra_refuses_an_mtls_client_naming_itself() {
    let fake = HydraFake::start().await;
    let app = crate::providers::gateway(&fake).await;
    let (error, description) = app
        .register_error(&web_client_with(json!({
            "token_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_subject_dn": "CN=app",
        })))
        .await;
    assert_eq!(error, "invalid_client_metadata");
    assert!(description.contains("the hydra provider"), "{description}");
    assert!(fake.ids().is_empty(), "nothing reached Hydra");
}
