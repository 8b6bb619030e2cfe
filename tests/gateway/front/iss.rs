//! RFC 9207 at `/callback`: a provider whose metadata says it sends `iss`
//! (node oidc-provider does) must send it. A real authorization response
//! with `iss` taken off is refused, and the transaction it names cannot be
//! completed afterwards, even with the right `iss`.

use reqwest::StatusCode;
use serde_json::Value;

use super::*;

#[tokio::test]
async fn a_response_without_iss_from_a_provider_that_sends_it_is_refused_for_good() {
    let upstream = OidcProvider::start().await;
    let metadata: Value = reqwest::get(format!(
        "{}/.well-known/openid-configuration",
        upstream.issuer
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        metadata["authorization_response_iss_parameter_supported"], true,
        "the provider says it sends iss"
    );
    let app = front_for(&upstream).await;
    let client_id = native_client(&app).await;
    let pkce = pkce("no-iss");
    let to_provider =
        location(&authorize(&app, &client_id, "http://127.0.0.1:53129/cb", &pkce, &[]).await);
    let callback = log_in(&upstream, &to_provider, "alice").await;
    assert!(callback.as_str().starts_with(&app.url("/callback")));
    assert_eq!(param(&callback, "iss").unwrap(), upstream.issuer);

    let mut without_iss = callback.clone();
    without_iss
        .query_pairs_mut()
        .clear()
        .extend_pairs(callback.query_pairs().filter(|(name, _)| name != "iss"));
    assert!(param(&without_iss, "code").is_some() && param(&without_iss, "state").is_some());
    let refused = browser().get(without_iss).send().await.unwrap();
    assert_page(refused, StatusCode::BAD_REQUEST, "iss").await;

    // The response as the provider sent it comes too late: the transaction
    // was ended, and the app gets no code.
    let replayed = browser().get(callback).send().await.unwrap();
    assert_page(replayed, StatusCode::BAD_REQUEST, "start again").await;
}
