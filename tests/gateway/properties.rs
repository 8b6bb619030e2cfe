//! Property tests: arbitrary JSON never panics the metadata parser or the
//! server; valid metadata round-trips exactly; redirect URI validation holds
//! its invariants for any input.

use dcr_gateway::domain::uri::{RedirectContext, check_redirect_uri, parse_redirect_uri};
use dcr_gateway::domain::{ClientMetadata, MetadataDocument, RedirectRules};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::support::*;

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::String),
        prop_oneof![
            Just("https://app.example.com/cb"),
            Just("http://localhost/cb"),
            Just("javascript:alert(1)"),
            Just("code id_token"),
            Just("client_secret_basic"),
            Just("none"),
            Just("native"),
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const MEMBERS: &[&str] = &[
    "redirect_uris",
    "token_endpoint_auth_method",
    "grant_types",
    "response_types",
    "client_name",
    "client_uri",
    "logo_uri",
    "scope",
    "contacts",
    "tos_uri",
    "policy_uri",
    "jwks_uri",
    "jwks",
    "software_id",
    "software_version",
    "application_type",
    "sector_identifier_uri",
    "subject_type",
    "id_token_signed_response_alg",
    "id_token_encrypted_response_alg",
    "id_token_encrypted_response_enc",
    "userinfo_encrypted_response_enc",
    "request_object_encryption_alg",
    "token_endpoint_auth_signing_alg",
    "default_max_age",
    "require_auth_time",
    "default_acr_values",
    "initiate_login_uri",
    "request_uris",
    "client_name#fr",
    "logo_uri#ja-Jpan-JP",
    "client_id",
    "client_secret",
];

/// Objects whose keys are mostly real metadata members, to reach validation.
fn metadata_like_json() -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(MEMBERS), arbitrary_json()), 0..10).prop_map(
        |pairs| {
            let mut object = Map::new();
            for (key, value) in pairs {
                object.insert(key.to_owned(), value);
            }
            Value::Object(object)
        },
    )
}

fn validate_value(value: Value) -> Option<ClientMetadata> {
    let document: MetadataDocument = serde_json::from_value(value).ok()?;
    ClientMetadata::validate(document, RedirectRules::default()).ok()
}

/// Documents that are valid by construction, over the whole member set.
fn valid_document() -> impl Strategy<Value = Value> {
    let host = "[a-z]{1,10}\\.example\\.(com|org)";
    // Written as URL parsers write it: a path, no `.` or `..` segment.
    let path = "(/[a-zA-Z0-9_~-][a-zA-Z0-9._~-]{0,7}){1,3}";
    let query = "(\\?[a-z]{1,5}=[a-zA-Z0-9%]{0,6}){0,1}";
    let pattern = format!("https://{host}{path}{query}");
    let uri = || proptest::string::string_regex(&pattern).unwrap();
    (
        prop::collection::vec(uri(), 1..4),
        prop::option::of("[ -~]{1,30}"),
        prop::option::of(prop::collection::btree_map(
            "[a-z]{2}(-[A-Z][a-z]{3})?",
            "[^\\u{0}]{1,12}",
            0..3,
        )),
        prop::option::of("[a-z]{1,8}( [a-z:]{1,8}){0,3}"),
        prop::option::of(prop::collection::vec("[a-z]{1,8}@example\\.com", 1..3)),
        prop::sample::select(vec![
            "none",
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
        ]),
        prop::sample::select(vec![
            (vec!["authorization_code"], vec!["code"]),
            (vec!["authorization_code", "refresh_token"], vec!["code"]),
            (vec!["implicit"], vec!["id_token", "id_token token"]),
            (
                vec!["authorization_code", "implicit"],
                vec!["code id_token", "code"],
            ),
        ]),
        prop::option::of(0u64..1_000_000),
        prop::option::of(any::<bool>()),
        prop::option::of(uri()),
    )
        .prop_map(
            |(
                redirects,
                name,
                tagged,
                scope,
                contacts,
                auth,
                (grants, responses),
                max_age,
                auth_time,
                logo,
            )| {
                let mut doc = json!({
                    "redirect_uris": redirects,
                    "token_endpoint_auth_method": auth,
                    "grant_types": grants,
                    "response_types": responses,
                });
                let object = doc.as_object_mut().unwrap();
                if let Some(name) = name {
                    object.insert("client_name".into(), json!(name));
                }
                for (tag, text) in tagged.unwrap_or_default() {
                    object.insert(format!("client_name#{tag}"), json!(text));
                }
                if let Some(scope) = scope {
                    object.insert("scope".into(), json!(scope));
                }
                if let Some(contacts) = contacts {
                    object.insert("contacts".into(), json!(contacts));
                }
                if let Some(max_age) = max_age {
                    object.insert("default_max_age".into(), json!(max_age));
                }
                if let Some(flag) = auth_time {
                    object.insert("require_auth_time".into(), json!(flag));
                }
                if let Some(logo) = logo {
                    object.insert("logo_uri".into(), json!(logo));
                }
                doc
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_json_never_panics_the_parser(value in arbitrary_json()) {
        let _ = validate_value(value);
    }

    #[test]
    fn metadata_like_json_never_panics_the_parser(value in metadata_like_json()) {
        if let Some(metadata) = validate_value(value) {
            // Whatever is accepted serializes back to something accepted and equal.
            let again = ClientMetadata::validate(metadata.to_document(), RedirectRules::default());
            prop_assert_eq!(again, Ok(metadata));
        }
    }

    #[test]
    fn valid_metadata_round_trips_exactly(value in valid_document()) {
        let metadata = validate_value(value.clone());
        prop_assert!(metadata.is_some(), "valid document refused: {}", value);
        let metadata = metadata.unwrap();
        let document = serde_json::to_value(metadata.to_document()).unwrap();
        // Every member sent comes back byte for byte.
        for (key, sent) in value.as_object().unwrap() {
            prop_assert_eq!(&document[key], sent, "member {}", key);
        }
        let reparsed = validate_value(document.clone()).unwrap();
        prop_assert_eq!(&reparsed, &metadata);
        prop_assert_eq!(serde_json::to_value(reparsed.to_document()).unwrap(), document);
    }

    #[test]
    fn accepted_redirect_uris_keep_their_text_and_obey_the_rules(
        text in prop_oneof![
            ".{0,40}",
            "(https?|javascript|data|file|com\\.example)://?[a-z.:0-9\\[\\]]{0,20}(/[a-z#?=]{0,6}){0,3}",
        ],
        native in any::<bool>(),
        implicit in any::<bool>(),
    ) {
        let context = RedirectContext { native, implicit };
        let rules = RedirectRules::default();
        let registered = parse_redirect_uri(&text, context, &rules)
            .and_then(|uri| check_redirect_uri(&uri, context, &rules).map(|()| uri));
        if let Ok(uri) = registered {
            prop_assert_eq!(uri.as_str(), text.as_str());
            prop_assert_eq!(uri.url().as_str(), text.as_str());
            prop_assert!(!text.chars().any(char::is_control));
            prop_assert!(uri.url().fragment().is_none());
            prop_assert!(!["javascript", "data", "file"].contains(&uri.url().scheme()));
            if uri.url().scheme() == "http" {
                prop_assert!(uri.is_loopback());
                prop_assert!(!implicit || native);
            }
            if !native {
                prop_assert!(matches!(uri.url().scheme(), "http" | "https"));
            }
        }
    }
}

#[test]
fn arbitrary_bodies_never_make_the_server_fail() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(spawn_app());
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(200));
    runner
        .run(&metadata_like_json(), |body| {
            let status = runtime.block_on(async {
                app.http
                    .post(app.url("/register"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
            });
            prop_assert!(
                status.as_u16() == 201 || status.as_u16() == 400,
                "{} for {}",
                status,
                body
            );
            Ok(())
        })
        .unwrap();
}

/// Registers valid documents through a provider backend: each is created
/// (201) or refused before or by the provider with `invalid_client_metadata`
/// naming it (a limit of the provider, or Okta's unique names), never
/// anything else, and no request breaks the vendor's document.
pub(crate) fn valid_registrations_respect_the_provider(
    provider: &str,
    runtime: &tokio::runtime::Runtime,
    app: &TestApp,
) {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(48));
    runner
        .run(&valid_document(), |body| {
            let (status, answer) = runtime.block_on(async {
                let response = app.post_register(&body).await;
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.unwrap())
            });
            let refused_by_provider = status == 400
                && answer["error"] == "invalid_client_metadata"
                && answer["error_description"]
                    .as_str()
                    .is_some_and(|d| d.contains(&format!("the {provider} provider")));
            prop_assert!(
                status == 201 || refused_by_provider,
                "{} {} for {}",
                status,
                answer,
                body
            );
            Ok(())
        })
        .unwrap();
}
