//! A real client library drives the gateway: the `openidconnect` crate's
//! dynamic registration, then an RFC 7592 read of what it registered.

use openidconnect::core::{CoreApplicationType, CoreClientRegistrationRequest, CoreGrantType};
use openidconnect::registration::EmptyAdditionalClientMetadata;
use openidconnect::{ClientName, LocalizedClaim, RedirectUrl, RegistrationUrl};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::*;

#[tokio::test]
async fn openidconnect_crate_registers_and_rfc7592_reads_it_back() {
    let app = spawn_app().await;
    let http_client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let request = CoreClientRegistrationRequest::new(
        vec![RedirectUrl::new("https://rp.example.com/callback".into()).unwrap()],
        EmptyAdditionalClientMetadata {},
    )
    .set_application_type(Some(CoreApplicationType::Web))
    .set_grant_types(Some(vec![
        CoreGrantType::AuthorizationCode,
        CoreGrantType::RefreshToken,
    ]))
    .set_client_name(Some(LocalizedClaim::from(ClientName::new(
        "openidconnect-rs".into(),
    ))));
    let registration_url = RegistrationUrl::new(app.url("/register")).unwrap();
    let response = request
        .register_async(&registration_url, &http_client)
        .await
        .unwrap();

    let client_id = response.client_id().as_str().to_owned();
    assert!(response.client_secret().is_some());
    let token = response
        .registration_access_token()
        .expect("a registration access token")
        .secret()
        .clone();
    let uri = response
        .registration_client_uri()
        .expect("a registration client uri")
        .url()
        .to_string();
    assert_eq!(uri, app.url(&format!("/register/{client_id}")));

    let read = app.http.get(&uri).bearer_auth(&token).send().await.unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["client_id"], client_id);
    assert_eq!(read["client_name"], "openidconnect-rs");
    assert_eq!(read["redirect_uris"][0], "https://rp.example.com/callback");
    assert_eq!(
        read["grant_types"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
}
