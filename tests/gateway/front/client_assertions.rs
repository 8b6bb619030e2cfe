//! `private_key_jwt` verified by the gateway itself in broker mode (issue
//! 30's client authentication): a client registered with its public keys
//! (`jwks`, or `jwks_uri` fetched through the outbound guard) redeems its
//! code with a signed assertion. Refused: a replayed `jti`, another
//! audience, an expired or too long-lived assertion, another client's key,
//! `alg: none`, and an HS256 assertion keyed with the public key (the
//! classic confusion).

use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::broker::{Cookies, decide, form_token};
use super::*;
use crate::support::fake_op::FakeOp;

/// A client's P-256 key: the PEM of the private key, and its public JWK.
struct ClientKey {
    pem: String,
    jwk: Value,
}

fn client_key(kid: &str) -> ClientKey {
    let pair = rcgen::KeyPair::generate().unwrap();
    let raw = pair.public_key_raw();
    ClientKey {
        pem: pair.serialize_pem(),
        jwk: json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&raw[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&raw[33..65]),
        }),
    }
}

/// An assertion for `client_id`, to `audience`, signed by `key`.
fn assertion(key: &ClientKey, client_id: &str, audience: &str, jti: &str, exp_in: i64) -> String {
    let now = dcr_gateway::clock::Clock::now_unix(&dcr_gateway::clock::SystemClock);
    let mut header = Header::new(Algorithm::ES256);
    header.kid = key.jwk["kid"].as_str().map(str::to_owned);
    let claims = json!({
        "iss": client_id, "sub": client_id, "aud": audience, "jti": jti,
        "iat": now, "exp": now + exp_in,
    });
    let signing = EncodingKey::from_ec_pem(key.pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &claims, &signing).unwrap()
}

/// A gateway in broker mode in front of a fake provider, with `extra` TOML.
async fn brokered(extra: &str) -> TestApp {
    let op = FakeOp::start("operator-client").await;
    let app = spawn_app_with(&format!(
        "[provider]\nkind = \"oidc\"\nissuer = \"{}\"\nclient_id = \"operator-client\"\n\
         client_secret = \"s3cret\"\ntimeout = \"2s\"\nreconcile_interval = \"0s\"\n\
         [front]\nenabled = true\ntokens = \"provider\"\n{extra}",
        op.issuer
    ))
    .await;
    std::mem::forget(op);
    app
}

/// Registers a `private_key_jwt` client with `keys` (`jwks` or `jwks_uri`).
async fn keyed_client(app: &TestApp, keys: Value) -> String {
    let mut metadata = json!({
        "redirect_uris": ["http://127.0.0.1:7/cb"],
        "token_endpoint_auth_method": "private_key_jwt",
        "grant_types": ["authorization_code", "refresh_token"],
    });
    for (name, value) in keys.as_object().unwrap() {
        metadata[name] = value.clone();
    }
    let client = app.register(&metadata).await;
    client["client_id"].as_str().unwrap().to_owned()
}

/// A fresh code for `client_id` (through the consent page).
async fn code(app: &TestApp, client_id: &str, pkce: &Pkce) -> String {
    let mut cookies = Cookies::default();
    let url = super::authorize_url(app, client_id, "http://127.0.0.1:7/cb", pkce, &[]);
    let page = cookies.get(&url).await.text().await.unwrap();
    let at_provider = location(&decide(app, &mut cookies, &form_token(&page), "allow").await);
    let callback = location(&browser().get(at_provider).send().await.unwrap());
    let back = location(&cookies.get(callback.as_str()).await);
    param(&back, "code").unwrap_or_else(|| panic!("{back}"))
}

/// Redeems `code` with `assertion`: status and body.
async fn redeem_with(
    app: &TestApp,
    code: &str,
    pkce: &Pkce,
    assertion: &str,
) -> (StatusCode, Value) {
    token(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", "http://127.0.0.1:7/cb"),
            ("code_verifier", &pkce.verifier),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ],
    )
    .await
}

#[tokio::test]
async fn a_client_authenticates_with_its_own_key_once_per_assertion() {
    let app = brokered("").await;
    let discovery = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    let methods = discovery["token_endpoint_auth_methods_supported"].to_string();
    assert!(methods.contains("private_key_jwt"), "{methods}");
    let key = client_key("k1");
    let client_id = keyed_client(&app, json!({ "jwks": { "keys": [key.jwk] } })).await;
    let endpoint = app.url("/token");
    let pkce = pkce("assertion");

    let good = assertion(&key, &client_id, &endpoint, "jti-1", 60);
    let (status, tokens) =
        redeem_with(&app, &code(&app, &client_id, &pkce).await, &pkce, &good).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    // The same assertion again, on a fresh code: a replay.
    let fresh = code(&app, &client_id, &pkce).await;
    let (status, answer) = redeem_with(&app, &fresh, &pkce, &good).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert!(
        answer["error_description"]
            .as_str()
            .unwrap()
            .contains("used before")
    );
    // The issuer is an audience too.
    let to_issuer = assertion(&key, &client_id, &app.base, "jti-2", 60);
    let (status, answer) = redeem_with(&app, &fresh, &pkce, &to_issuer).await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let other = client_key("k1");
    let public_pem = {
        // The public key as an HMAC secret: the classic confusion.
        let header = Header::new(Algorithm::HS256);
        let claims = json!({"iss": client_id, "sub": client_id, "aud": endpoint, "jti": "h", "exp": 9_999_999_999_i64});
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_secret(key.jwk.to_string().as_bytes()),
        )
        .unwrap()
    };
    let unsigned = {
        let encode = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let claims = json!({"iss": client_id, "sub": client_id, "aud": endpoint, "jti": "n", "exp": 9_999_999_999_i64});
        format!(
            "{}.{}.",
            encode(&json!({"alg": "none", "typ": "JWT"})),
            encode(&claims)
        )
    };
    let refused = [
        (
            "another audience",
            assertion(&key, &client_id, "https://elsewhere.example/token", "a", 60),
        ),
        ("expired", assertion(&key, &client_id, &endpoint, "e", -120)),
        (
            "too long-lived",
            assertion(&key, &client_id, &endpoint, "l", 7_200),
        ),
        (
            "another client's key",
            assertion(&other, &client_id, &endpoint, "o", 60),
        ),
        ("HS256 with the public key", public_pem),
        ("alg none", unsigned),
    ];
    for (what, bad) in refused {
        let fresh = code(&app, &client_id, &pkce).await;
        let (status, answer) = redeem_with(&app, &fresh, &pkce, &bad).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {answer}");
        assert_eq!(answer["error"], "invalid_client", "{what}");
    }
}

#[tokio::test]
async fn keys_at_a_jwks_uri_are_fetched_through_the_outbound_guard() {
    let dir = tempfile::tempdir().unwrap();
    let key = client_key("uri-key");
    let (addr, ca) = https_document_server(dir.path(), json!({ "keys": [key.jwk] })).await;
    let jwks_uri = format!("https://localhost:{}/jwks.json", addr.port());
    // Loopback is refused by the guard unless the operator allows it.
    let guarded = brokered(&format!(
        "[outbound]\nextra_root_certificates = [\"{}\"]\n",
        ca.display()
    ))
    .await;
    let client_id = keyed_client(&guarded, json!({ "jwks_uri": jwks_uri })).await;
    let pkce = pkce("uri");
    let signed = assertion(&key, &client_id, &guarded.url("/token"), "u1", 60);
    let (status, answer) = redeem_with(
        &guarded,
        &code(&guarded, &client_id, &pkce).await,
        &pkce,
        &signed,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");

    let allowed = brokered(&format!(
        "[outbound]\nallow_private_networks = true\nextra_root_certificates = [\"{}\"]\n",
        ca.display()
    ))
    .await;
    let client_id = keyed_client(&allowed, json!({ "jwks_uri": jwks_uri })).await;
    let signed = assertion(&key, &client_id, &allowed.url("/token"), "u2", 60);
    let (status, answer) = redeem_with(
        &allowed,
        &code(&allowed, &client_id, &pkce).await,
        &pkce,
        &signed,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}
