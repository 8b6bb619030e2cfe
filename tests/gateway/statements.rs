//! Software statements (RFC 7591 §2.3) signed with keys the test generates
//! (ES256 and RS256), trusted inline or through a `jwks_uri`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

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
