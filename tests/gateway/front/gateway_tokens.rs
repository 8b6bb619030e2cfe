//! The gateway's own access tokens (issue 30, `[front] tokens = "gateway"`,
//! in broker mode): RFC 9068 JWTs made out to the resource the app named,
//! checked by a resource server with a standard JWT library against the
//! gateway's key set; refused by a resource server with another URL; a
//! an app that asked for `openid` gets the gateway's own ID token with its
//! nonce; a refresh gives a new pair without calling the provider, and a reused
//! refresh token revokes the family. Key rotation: a new key is published
//! before it signs, and the old one stays until its tokens expired.

use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};

use super::broker::{Cookies, decide, form_token, refresh};
use super::*;
use crate::support::fake_op::FakeOp;

const MCP_A: &str = "https://mcp-a.example.com/mcp";
const MCP_B: &str = "https://mcp-b.example.com/mcp";

/// A gateway issuing its own tokens (broker mode's default) before a fake
/// provider.
async fn issuing() -> (TestApp, FakeOp) {
    let op = FakeOp::start("operator-client").await;
    let app = spawn_app_with(&format!(
        "[provider]\nkind = \"oidc\"\nissuer = \"{}\"\nclient_id = \"operator-client\"\n\
         client_secret = \"s3cret\"\nreconcile_interval = \"0s\"\n\
         [front]\nenabled = true\n\
         allowed_resources = [\"{MCP_A}\", \"{MCP_B}\"]\n\
         [[front.resource_servers]]\nresource = \"{MCP_A}\"\nclient_id = \"mcp-a\"\n\
         client_secret = \"secret-a\"\n\
         [[front.resource_servers]]\nresource = \"{MCP_B}\"\nclient_id = \"mcp-b\"\n\
         client_secret = \"secret-b\"\n",
        op.issuer
    ))
    .await;
    (app, op)
}

/// What the gateway's introspection tells the resource server `caller`
/// (id and secret) of `token`: status and body.
async fn introspect(
    app: &TestApp,
    caller: Option<(&str, &str)>,
    token: &str,
) -> (StatusCode, Value) {
    let mut request = app
        .http
        .post(app.url("/introspect"))
        .form(&[("token", token)]);
    if let Some((id, secret)) = caller {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

/// Signs in `client_id` for `resource` (through the consent page): the code.
async fn code_for(app: &TestApp, client_id: &str, pkce: &Pkce, resource: &str) -> Url {
    let mut cookies = Cookies::default();
    let url = super::authorize_url(
        app,
        client_id,
        "http://127.0.0.1:7/cb",
        pkce,
        &[("resource", resource), ("nonce", "app-nonce-1")],
    );
    let response = cookies.get(&url).await;
    if response.status().is_redirection() {
        return location(&response);
    }
    let page = response.text().await.unwrap();
    let at_provider = location(&decide(app, &mut cookies, &form_token(&page), "allow").await);
    let callback = location(&browser().get(at_provider).send().await.unwrap());
    location(&cookies.get(callback.as_str()).await)
}

/// A resource server at `resource` checking `token` against the gateway's
/// key set, as any JWT library does.
pub(super) async fn check_at(app: &TestApp, resource: &str, token: &str) -> Result<Value, String> {
    let set: JwkSet = serde_json::from_value(app.get_json("/jwks").await).unwrap();
    let header = decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = set.find(&kid).ok_or("unknown kid")?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[resource]);
    validation.set_issuer(&[&app.base]);
    decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .map(|data| data.claims)
        .map_err(|e| format!("{:?}", e.kind()))
}

#[tokio::test]
async fn access_tokens_are_audience_bound_jwts_that_refresh_without_the_provider() {
    let (app, op) = issuing().await;
    let discovery = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(discovery["jwks_uri"], app.url("/jwks"));
    assert_eq!(discovery["userinfo_endpoint"], app.url("/userinfo"));
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );
    let jwks = app.http.get(app.url("/jwks")).send().await.unwrap();
    assert_eq!(jwks.headers()["cache-control"], "public, max-age=300");

    let client_id = native_client(&app).await;
    let pkce = pkce("gateway-tokens");
    let back = code_for(&app, &client_id, &pkce, MCP_A).await;
    let (status, tokens) = redeem(&app, &client_id, &back, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    // The ID token is the gateway's own, with the app's nonce; the
    // provider's stays with the gateway.
    let id_token = tokens["id_token"].as_str().unwrap();
    let set: JwkSet = serde_json::from_value(app.get_json("/jwks").await).unwrap();
    let kid = decode_header(id_token).unwrap().kid.unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[client_id.as_str()]);
    validation.set_issuer(&[&app.base]);
    let key = DecodingKey::from_jwk(set.find(&kid).unwrap()).unwrap();
    let id = decode::<Value>(id_token, &key, &validation).unwrap().claims;
    assert_eq!(id["sub"], "dana");
    assert_eq!(id["nonce"], "app-nonce-1");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        decode_header(access).unwrap().typ.as_deref(),
        Some("at+jwt")
    );
    let claims = check_at(&app, MCP_A, access).await.unwrap();
    assert_eq!(claims["sub"], "dana");
    assert_eq!(claims["client_id"], client_id.as_str());
    assert_eq!(claims["scope"], "openid");
    assert!(claims["jti"].is_string());
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 3600);
    // Another MCP server refuses it.
    assert_eq!(
        check_at(&app, MCP_B, access).await.unwrap_err(),
        "InvalidAudience"
    );

    let first = tokens["refresh_token"].as_str().unwrap();
    let (status, refreshed) = refresh(&app, &client_id, first).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_eq!(op.refreshes(), 0, "the provider was not called");
    let renewed = refreshed["access_token"].as_str().unwrap();
    assert_ne!(renewed, access);
    assert_eq!(check_at(&app, MCP_A, renewed).await.unwrap()["sub"], "dana");
    let second = refreshed["refresh_token"].as_str().unwrap();
    let (_, reused) = refresh(&app, &client_id, first).await;
    assert_eq!(reused["error"], "invalid_grant");
    let (_, revoked) = refresh(&app, &client_id, second).await;
    assert_eq!(revoked["error"], "invalid_grant", "the family is revoked");

    // Without a resource there is nothing to make the token out to.
    let url = super::authorize_url(&app, &client_id, "http://127.0.0.1:7/cb", &pkce, &[]);
    let refused = location(&browser().get(url).send().await.unwrap());
    assert_eq!(param(&refused, "error").unwrap(), "invalid_target");
}

#[tokio::test]
async fn a_rotated_key_is_published_before_it_signs_and_the_old_one_until_its_tokens_expire() {
    let (app, _op) = issuing().await;
    let client_id = native_client(&app).await;
    let pkce = pkce("rotation");
    let back = code_for(&app, &client_id, &pkce, MCP_A).await;
    let (_, tokens) = redeem(&app, &client_id, &back, &pkce).await;
    let before = tokens["access_token"].as_str().unwrap().to_owned();
    let old_kid = decode_header(&before).unwrap().kid.unwrap();

    let keys = app.front.as_ref().unwrap().gateway_tokens().unwrap().keys();
    let now = dcr_gateway::clock::Clock::now_unix(app.clock.as_ref());
    let new_kid = keys.rotate(now, Duration::from_secs(3600)).await.unwrap();
    let published = app.get_json("/jwks").await;
    assert_eq!(
        published["keys"].as_array().unwrap().len(),
        2,
        "{published}"
    );
    let (_, refreshed) = refresh(&app, &client_id, tokens["refresh_token"].as_str().unwrap()).await;
    let still_old = refreshed["access_token"].as_str().unwrap();
    assert_eq!(
        decode_header(still_old).unwrap().kid.unwrap(),
        old_kid,
        "not yet"
    );

    app.clock.advance(Duration::from_secs(301));
    let (_, refreshed) = refresh(
        &app,
        &client_id,
        refreshed["refresh_token"].as_str().unwrap(),
    )
    .await;
    let signed_new = refreshed["access_token"].as_str().unwrap();
    assert_eq!(decode_header(signed_new).unwrap().kid.unwrap(), new_kid);
    assert!(
        check_at(&app, MCP_A, &before).await.is_ok(),
        "old tokens still check"
    );

    app.clock.advance(Duration::from_secs(3600));
    let published = app.get_json("/jwks").await;
    let kids: Vec<&str> = published["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap())
        .collect();
    assert_eq!(
        kids,
        [new_kid.as_str()],
        "the old key retired with its last token"
    );
}

#[tokio::test]
async fn instances_sharing_a_store_sign_with_one_key() {
    let op = FakeOp::start("operator-client").await;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("shared.db").display());
    let keys = format!(
        "[provider]\nkind = \"oidc\"\nissuer = \"{}\"\nclient_id = \"operator-client\"\n\
         client_secret = \"s3cret\"\nreconcile_interval = \"0s\"\n\
         [front]\nenabled = true\ntokens = \"gateway\"\n",
        op.issuer
    );
    let one = spawn_instance("https://dcr.example.com", &store, &keys).await;
    let two = spawn_instance("https://dcr.example.com", &store, &keys).await;
    // Neither has a key yet: the first asked make one, together.
    let (first, second) = tokio::join!(one.get_json("/jwks"), two.get_json("/jwks"));
    assert_eq!(first["keys"].as_array().unwrap().len(), 1, "{first}");
    assert_eq!(first, second);
}

#[tokio::test]
async fn introspection_tells_each_resource_server_of_its_own_live_tokens_only() {
    let (app, _op) = issuing().await;
    let discovery = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(discovery["introspection_endpoint"], app.url("/introspect"));
    let client_id = native_client(&app).await;
    let pkce = pkce("introspection");
    let back = code_for(&app, &client_id, &pkce, MCP_A).await;
    let (_, tokens) = redeem(&app, &client_id, &back, &pkce).await;
    let access = tokens["access_token"].as_str().unwrap();
    let a = Some(("mcp-a", "secret-a"));

    let (status, _) = introspect(&app, None, access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no credentials");
    let (status, _) = introspect(&app, Some(("mcp-a", "wrong")), access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a wrong secret");
    let (status, answer) = introspect(&app, a, access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(
        (answer["sub"].as_str(), answer["aud"].as_str()),
        (Some("dana"), Some(MCP_A))
    );
    let (_, answer) = introspect(&app, Some(("mcp-b", "secret-b")), access).await;
    assert_eq!(
        answer,
        json!({ "active": false }),
        "another resource's token"
    );

    // Forgeries: no signature, the public key as an HMAC secret, a key the
    // gateway never published.
    let claims = decode_header(access).unwrap();
    let payload = access.split('.').nth(1).unwrap();
    let encode = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let unsigned = format!(
        "{}.{payload}.",
        encode(&json!({"alg": "none", "typ": "at+jwt"}))
    );
    let published = app.get_json("/jwks").await;
    let hmac = {
        let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        header.kid = claims.kid.clone();
        let body: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        let secret = published["keys"][0].to_string();
        jsonwebtoken::encode(
            &header,
            &body,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let stranger = {
        let pair = rcgen::KeyPair::generate().unwrap();
        let mut header = jsonwebtoken::Header::new(Algorithm::ES256);
        header.typ = Some("at+jwt".into());
        header.kid = Some("not-ours".into());
        let body: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        let key = jsonwebtoken::EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap();
        jsonwebtoken::encode(&header, &body, &key).unwrap()
    };
    for (what, forged) in [
        ("alg none", unsigned),
        ("HS256", hmac),
        ("unknown key", stranger),
    ] {
        let (_, answer) = introspect(&app, a, &forged).await;
        assert_eq!(answer, json!({ "active": false }), "{what}");
    }

    // Revoking the grant ends its access tokens too; so does time.
    let (_, fresh) = refresh(&app, &client_id, tokens["refresh_token"].as_str().unwrap()).await;
    let live = fresh["access_token"].as_str().unwrap();
    assert_eq!(introspect(&app, a, live).await.1["active"], true);
    app.clock.advance(Duration::from_secs(3601));
    assert_eq!(
        introspect(&app, a, live).await.1["active"],
        false,
        "expired"
    );
    let back = code_for(&app, &client_id, &pkce, MCP_A).await;
    let (_, tokens) = redeem(&app, &client_id, &back, &pkce).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(introspect(&app, a, access).await.1["active"], true);
    let revoked = app
        .http
        .post(app.url("/revoke"))
        .form(&[
            ("token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(
        introspect(&app, a, access).await.1["active"],
        false,
        "revoked"
    );
}

/// `/userinfo` with `token` as the bearer (none if `None`): status, the
/// challenge, and the body.
async fn userinfo(app: &TestApp, token: Option<&str>) -> (StatusCode, String, Value) {
    let mut request = app.http.get(app.url("/userinfo"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (response.status(), challenge, response.json().await.unwrap())
}

#[tokio::test]
async fn copied_claims_pairwise_subjects_and_userinfo() {
    let op = FakeOp::start("operator-client").await;
    let app = spawn_app_with(&format!(
        "[provider]\nkind = \"oidc\"\nissuer = \"{}\"\nclient_id = \"operator-client\"\n\
         client_secret = \"s3cret\"\nreconcile_interval = \"0s\"\n\
         [front]\nenabled = true\nclaims = [\"email\", \"groups\"]\n\
         subject_type = \"pairwise\"\nallowed_resources = [\"{MCP_A}\", \"{MCP_B}\"]\n",
        op.issuer
    ))
    .await;
    let discovery = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(discovery["subject_types_supported"], json!(["pairwise"]));
    assert_eq!(
        discovery["claims_supported"],
        json!(["sub", "email", "groups"])
    );

    let client_id = native_client(&app).await;
    let pkce = pkce("pairwise");
    let sign_in = |resource| {
        let (app, client_id, pkce) = (&app, &client_id, &pkce);
        async move {
            let back = code_for(app, client_id, pkce, resource).await;
            redeem(app, client_id, &back, pkce).await.1
        }
    };
    let tokens = sign_in(MCP_A).await;
    let access = tokens["access_token"].as_str().unwrap();
    let claims = check_at(&app, MCP_A, access).await.unwrap();
    let sub_a = claims["sub"].as_str().unwrap().to_owned();
    assert_ne!(sub_a, "dana", "pairwise, not the provider's");
    assert_eq!(claims["email"], "dana@example.test");
    assert_eq!(claims["groups"], json!(["staff", "<b>ops</b>"]));
    let id = super::broker::id_token_claims(&tokens);
    assert_eq!(
        id["sub"],
        sub_a.as_str(),
        "the ID token names the same user"
    );
    assert_eq!(id["email"], "dana@example.test");
    // Stable per resource, different across resources.
    let again = sign_in(MCP_A).await;
    let again = check_at(&app, MCP_A, again["access_token"].as_str().unwrap()).await;
    assert_eq!(again.unwrap()["sub"], sub_a.as_str());
    let other = sign_in(MCP_B).await;
    let sub_b = check_at(&app, MCP_B, other["access_token"].as_str().unwrap()).await;
    assert_ne!(sub_b.unwrap()["sub"], sub_a.as_str());

    // Userinfo answers for the gateway's access token: the same sub and the
    // copied claims, and again after a refresh (the family kept them).
    let (status, _, info) = userinfo(&app, Some(access)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        info,
        json!({ "sub": sub_a, "email": "dana@example.test", "groups": ["staff", "<b>ops</b>"] })
    );
    let (_, renewed) = refresh(&app, &client_id, tokens["refresh_token"].as_str().unwrap()).await;
    let renewed = renewed["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&app, Some(renewed)).await.2, info);

    // RFC 6750 refusals: no token, a token not the gateway's, one without
    // openid.
    let (status, challenge, _) = userinfo(&app, None).await;
    assert_eq!(
        (status, challenge.as_str()),
        (StatusCode::UNAUTHORIZED, "Bearer")
    );
    let (status, challenge, _) = userinfo(&app, Some("not-a-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{challenge}"
    );
    let narrow = super::pkce("narrow");
    let url = super::authorize_url(
        &app,
        &client_id,
        "http://127.0.0.1:7/cb",
        &narrow,
        &[("resource", MCP_A), ("scope", "email")],
    );
    let mut cookies = super::broker::Cookies::default();
    let page = cookies.get(&url).await.text().await.unwrap();
    let at_provider = location(&decide(&app, &mut cookies, &form_token(&page), "allow").await);
    let callback = location(&browser().get(at_provider).send().await.unwrap());
    let back = location(&cookies.get(callback.as_str()).await);
    let (_, emails_only) = redeem(&app, &client_id, &back, &narrow).await;
    let token = emails_only["access_token"].as_str().unwrap();
    let (status, challenge, _) = userinfo(&app, Some(token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(challenge.contains("insufficient_scope"), "{challenge}");

    // Revoking an access token of the gateway's ends its grant.
    let revoked = app
        .http
        .post(app.url("/revoke"))
        .form(&[("token", renewed), ("client_id", client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(
        userinfo(&app, Some(renewed)).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_confidential_client_introspects_the_tokens_issued_to_it_only() {
    let (app, _op) = issuing().await;
    let registered = app
        .register(&json!({
            "redirect_uris": ["http://127.0.0.1:7/cb"],
            "token_endpoint_auth_method": "client_secret_post",
            "grant_types": ["authorization_code", "refresh_token"],
            "client_name": "Confidential app",
        }))
        .await;
    let id = registered["client_id"].as_str().unwrap();
    let secret = registered["client_secret"].as_str().unwrap();
    let pkce = pkce("confidential");
    let back = code_for(&app, id, &pkce, MCP_A).await;
    let code = param(&back, "code").unwrap();
    let (status, tokens) = super::token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", id),
            ("client_secret", secret),
            ("redirect_uri", "http://127.0.0.1:7/cb"),
            ("code_verifier", &pkce.verifier),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let own = tokens["access_token"].as_str().unwrap();
    let public_id = native_client(&app).await;
    let back = code_for(&app, &public_id, &pkce, MCP_A).await;
    let (_, others) = redeem(&app, &public_id, &back, &pkce).await;
    let foreign = others["access_token"].as_str().unwrap();

    let (status, answer) = introspect(&app, Some((id, secret)), own).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["client_id"], id);
    let (_, answer) = introspect(&app, Some((id, secret)), foreign).await;
    assert_eq!(answer, json!({ "active": false }), "another client's token");
    let (status, _) = introspect(&app, Some((id, "wrong")), own).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A public client proves nothing: it may not introspect.
    let response = app
        .http
        .post(app.url("/introspect"))
        .form(&[("token", foreign), ("client_id", public_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
