//! Software statements (RFC 7591 §2.3) signed with keys the test generates
//! (ES256 and RS256), trusted inline or through a `jwks_uri`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

use dcr_gateway::clock::Clock;

use crate::support::*;

/// A signing key and its public JWK.
struct Signer {
    key: EncodingKey,
    alg: Algorithm,
    kid: String,
    jwk: Value,
}

fn ec_signer(kid: &str) -> Signer {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let point = pair.public_key_raw();
    Signer {
        key: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap(),
        alg: Algorithm::ES256,
        kid: kid.to_owned(),
        jwk: json!({
            "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }),
    }
}

fn rsa_signer(kid: &str) -> Signer {
    let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let pem = private.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    Signer {
        key: EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        alg: Algorithm::RS256,
        kid: kid.to_owned(),
        jwk: json!({
            "kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
            "n": URL_SAFE_NO_PAD.encode(private.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(private.e().to_bytes_be()),
        }),
    }
}

impl Signer {
    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

const INLINE_ISSUER: &str = "https://directory.example.com";
const REMOTE_ISSUER: &str = "https://federation.example.org";

fn claims(iss: &str, software_id: &str) -> Value {
    json!({
        "iss": iss,
        "iat": 1_700_000_000,
        "software_id": software_id,
        "client_name": "From the statement",
        "redirect_uris": ["https://statement.example.com/cb"],
    })
}

struct Setup {
    app: TestApp,
    ec: Signer,
    rsa: Signer,
    _dir: tempfile::TempDir,
}

async fn setup(extra: &str) -> Setup {
    let ec = ec_signer("ec-1");
    let rsa = rsa_signer("rsa-1");
    let dir = tempfile::tempdir().unwrap();
    let (addr, ca) = https_document_server(dir.path(), json!({ "keys": [rsa.jwk] })).await;
    let inline = json!({ "keys": [ec.jwk] }).to_string().replace('"', "\\\"");
    let app = spawn_app_with(&format!(
        "[outbound]\nallow_private_networks = true\nextra_root_certificates = [\"{ca}\"]\n\
         [software_statement]\n{extra}\
         [[software_statement.issuers]]\nissuer = \"{INLINE_ISSUER}\"\njwks = \"{inline}\"\n\
         allowed_algs = [\"ES256\"]\nsoftware_ids = [\"approved-app\", \"other-app\"]\n\
         [[software_statement.issuers]]\nissuer = \"{REMOTE_ISSUER}\"\n\
         jwks_uri = \"https://localhost:{port}/jwks.json\"\nallowed_algs = [\"RS256\", \"PS256\"]\n",
        ca = ca.display(),
        port = addr.port(),
    ))
    .await;
    Setup {
        app,
        ec,
        rsa,
        _dir: dir,
    }
}

fn body_with(statement: &str) -> Value {
    json!({
        "redirect_uris": ["https://body.example.com/cb"],
        "client_name": "From the body",
        "contacts": ["dev@example.com"],
        "software_statement": statement,
    })
}

async fn refused(app: &TestApp, statement: &str, code: &str) {
    let (error, description) = app.register_error(&body_with(statement)).await;
    assert_eq!(error, code, "{description}");
}

#[tokio::test]
async fn verified_statements_take_precedence_over_the_body() {
    let s = setup("").await;
    for statement in [
        s.ec.sign(&claims(INLINE_ISSUER, "approved-app")),
        s.rsa.sign(&claims(REMOTE_ISSUER, "any-app")),
    ] {
        let client = s.app.register(&body_with(&statement)).await;
        assert_eq!(client["client_name"], "From the statement");
        assert_eq!(
            client["redirect_uris"],
            json!(["https://statement.example.com/cb"])
        );
        assert_eq!(
            client["contacts"],
            json!(["dev@example.com"]),
            "body members the statement lacks stay"
        );
        assert!(client["software_id"].as_str().unwrap().ends_with("-app"));
        assert!(client.get("software_statement").is_none());
    }
}

#[tokio::test]
async fn tampered_or_foreign_statements_are_invalid() {
    let s = setup("").await;
    let good = s.ec.sign(&claims(INLINE_ISSUER, "approved-app"));
    let parts: Vec<&str> = good.split('.').collect();
    let mut forged_claims = claims(INLINE_ISSUER, "approved-app");
    forged_claims["redirect_uris"] = json!(["https://attacker.example.net/cb"]);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(forged_claims.to_string()),
        parts[2]
    );
    refused(&s.app, &forged, "invalid_software_statement").await;

    // Signed by a key the issuer does not have.
    let stranger = ec_signer("ec-1");
    refused(
        &s.app,
        &stranger.sign(&claims(INLINE_ISSUER, "approved-app")),
        "invalid_software_statement",
    )
    .await;

    // RS256 from an issuer that only signs with ES256.
    refused(
        &s.app,
        &s.rsa.sign(&claims(INLINE_ISSUER, "approved-app")),
        "invalid_software_statement",
    )
    .await;

    // Unsigned, and HMAC-signed (a public key must never verify an HMAC).
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims(INLINE_ISSUER, "approved-app").to_string());
    refused(
        &s.app,
        &format!("{header}.{payload}."),
        "invalid_software_statement",
    )
    .await;
    let hmac = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(INLINE_ISSUER, "approved-app"),
        &EncodingKey::from_secret(b"guessable"),
    )
    .unwrap();
    refused(&s.app, &hmac, "invalid_software_statement").await;

    // Expired.
    let mut expired = claims(INLINE_ISSUER, "approved-app");
    expired["exp"] = json!(1_700_000_100);
    refused(&s.app, &s.ec.sign(&expired), "invalid_software_statement").await;

    refused(&s.app, "not-a-jwt", "invalid_software_statement").await;
}

#[tokio::test]
async fn untrusted_issuers_and_refused_software_are_unapproved() {
    let s = setup("").await;
    refused(
        &s.app,
        &s.ec
            .sign(&claims("https://unknown.example", "approved-app")),
        "unapproved_software_statement",
    )
    .await;
    refused(
        &s.app,
        &s.ec.sign(&claims(INLINE_ISSUER, "blocked-app")),
        "unapproved_software_statement",
    )
    .await;
}

#[tokio::test]
async fn a_required_statement_must_be_present() {
    let s = setup("required = true\n").await;
    let (error, _) = s.app.register_error(&web_client()).await;
    assert_eq!(error, "invalid_software_statement");
    s.app
        .register(&body_with(&s.ec.sign(&claims(INLINE_ISSUER, "other-app"))))
        .await;
}

/// What a statement vouched for is pinned to the registration: a replace
/// without a new statement may leave those members out (they stay) but not
/// change them; a replace with a new statement vouches anew.
#[tokio::test]
async fn vouched_claims_stay_pinned_on_replace() {
    let s = setup("").await;
    let client = s
        .app
        .register(&body_with(
            &s.ec.sign(&claims(INLINE_ISSUER, "approved-app")),
        ))
        .await;
    let token = token_of(&client);
    let changed = update_body(
        &client,
        json!({ "redirect_uris": ["https://attacker.example.net/cb"], "software_id": "approved-app" }),
    );
    let (error, description) = error_of(
        s.app.update(&client, Some(token), &changed).await,
        reqwest::StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(error, "invalid_client_metadata");
    assert!(description.contains("redirect_uris"), "{description}");
    let other_software = update_body(&client, json!({ "software_id": "other-app" }));
    let (error, _) = error_of(
        s.app.update(&client, Some(token), &other_software).await,
        reqwest::StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(error, "invalid_client_metadata");
    // Left out, they are kept; members the statement did not set may change.
    let kept: Value = s
        .app
        .update(
            &client,
            Some(token),
            &update_body(&client, json!({ "contacts": ["ops@example.com"] })),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        kept["redirect_uris"],
        json!(["https://statement.example.com/cb"])
    );
    assert_eq!(kept["client_name"], "From the statement");
    assert_eq!(kept["software_id"], "approved-app");
    assert_eq!(kept["contacts"], json!(["ops@example.com"]));
    // A new statement vouches for new values.
    let mut renewed = claims(INLINE_ISSUER, "approved-app");
    renewed["redirect_uris"] = json!(["https://moved.example.com/cb"]);
    let mut body = update_body(&client, json!({}));
    body["software_statement"] = json!(s.ec.sign(&renewed));
    let moved: Value = s
        .app
        .update(&client, Some(token), &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        moved["redirect_uris"],
        json!(["https://moved.example.com/cb"])
    );
}

#[tokio::test]
async fn a_statement_issued_in_the_future_is_refused() {
    let s = setup("").await;
    let mut future = claims(INLINE_ISSUER, "approved-app");
    future["iat"] = json!(dcr_gateway::clock::SystemClock.now_unix() + 86_400);
    refused(&s.app, &s.ec.sign(&future), "invalid_software_statement").await;
}

/// With statements required, a software_id the statement does not vouch
/// for counts against nobody's cap, so nobody can spend a vendor's quota by
/// writing its software_id into a body.
#[tokio::test]
async fn only_vouched_software_ids_count_when_statements_are_required() {
    let s = setup("required = true\n[policies.default]\nmax_clients_per_software_id = 2\n").await;
    // The inline issuer vouches only for listed software (a statement
    // without a software_id breaks that rule): the remote one signs this.
    let mut nameless = claims(REMOTE_ISSUER, "unused");
    nameless.as_object_mut().unwrap().remove("software_id");
    let unvouched = s.rsa.sign(&nameless);
    for _ in 0..3 {
        let mut body = body_with(&unvouched);
        body["software_id"] = json!("approved-app");
        s.app.register(&body).await;
    }
    let vouched = s.ec.sign(&claims(INLINE_ISSUER, "approved-app"));
    for _ in 0..2 {
        s.app.register(&body_with(&vouched)).await;
    }
    let (error, description) = s.app.register_error(&body_with(&vouched)).await;
    assert_eq!(error, "invalid_client_metadata");
    assert!(
        description.contains("max_clients_per_software_id"),
        "{description}"
    );
}
