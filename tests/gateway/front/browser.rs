//! The consent page (`[front.cimd] consent_page = true`, and broker mode's
//! for every client) in a real browser:
//! Debian's chromium, driven by playwright-core from
//! `tests/interop/browser/consent.mjs`, with scripts off, since the page
//! must work without them. The script reports what the browser saw as one
//! JSON line; the checks are here.

use super::cimd::Served;
use super::trust::consenting;
use super::*;
use crate::support::oidc_provider;

/// Runs the `check` of consent.mjs with `input`; what the browser saw.
async fn in_browser(check: &str, mut input: Value) -> Value {
    input["check"] = json!(check);
    let input = input.to_string();
    tokio::task::spawn_blocking(move || oidc_provider::browser("consent.mjs", &[&input]))
        .await
        .unwrap()
}

/// The app's redirect URI: `/cb` beside its document (`url`), which
/// `served` answers, so the browser lands there.
fn app_redirect(served: &Served, url: &str) -> String {
    served.put("/cb", &json!("back at the app"), "no-store");
    Url::parse(url).unwrap().join("/cb").unwrap().into()
}

/// The URL at which the app sends the browser to `/authorize` for
/// `client_id`, as [`authorize`] asks.
fn authorize_url(app: &TestApp, client_id: &str, redirect_uri: &str, pkce: &Pkce) -> String {
    super::authorize_url(app, client_id, redirect_uri, pkce, &[])
}

/// The browser clicks Continue (with `allowing`, signing in at `upstream`
/// as grace) on one consent page for `client_id`, and Cancel on another:
/// what it saw of each.
async fn decisions(
    app: &TestApp,
    client_id: &str,
    back_to: &str,
    allowing: &Pkce,
    upstream: &OidcProvider,
) -> Value {
    in_browser(
        "decisions",
        json!({
            "allow": authorize_url(app, client_id, back_to, allowing),
            "cancel": authorize_url(app, client_id, back_to, &pkce("cancel")),
            "upstream": upstream.issuer,
            "redirect_uri": back_to,
            "account": "grace",
        }),
    )
    .await
}

/// The page names the client and where the user goes back, offers two
/// labelled buttons, declares its language and viewport, forbids framing,
/// gets its style past its own policy, and fits a phone without sideways
/// scrolling.
#[tokio::test]
async fn the_consent_page_shows_in_a_browser_without_scripts_and_fits_a_phone() {
    let upstream = OidcProvider::start().await;
    let (app, _served, url) = consenting(&upstream, "Editor").await;
    let authorize = authorize_url(&app, &url, REGISTERED, &pkce("shown"));
    let seen = in_browser("page", json!({ "authorize": authorize })).await;
    assert_eq!(seen["status"], 200, "{seen}");
    assert_eq!(seen["title"], "Sign in", "{seen}");
    assert_eq!(seen["lang"], "en");
    assert!(
        seen["viewport"]
            .as_str()
            .unwrap()
            .contains("width=device-width"),
        "{seen}"
    );
    assert_eq!(seen["heading"], "Editor asks you to sign in");
    let text = seen["text"].as_str().unwrap();
    assert!(text.contains("sent back to 127.0.0.1"), "{text}");
    assert!(text.contains(&url), "the document's URL is shown: {text}");
    let buttons: Vec<(&str, &str)> = seen["buttons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["text"].as_str().unwrap(), b["value"].as_str().unwrap()))
        .collect();
    assert_eq!(buttons, [("Continue", "allow"), ("Cancel", "deny")]);
    let aria = seen["aria"].as_str().unwrap();
    for label in ["button \"Continue\"", "button \"Cancel\""] {
        assert!(aria.contains(label), "{label} in {aria}");
    }
    assert!(
        seen["csp"]
            .as_str()
            .unwrap()
            .contains("frame-ancestors 'none'"),
        "{seen}"
    );
    assert_eq!(seen["frame_options"], "DENY");
    assert_eq!(seen["max_width"], "512px", "the style applies: {seen}");
    assert_eq!(seen["console"], json!([]), "nothing refused: {seen}");
    let (scroll_width, inner_width) = (&seen["scroll_width"], &seen["inner_width"]);
    assert_eq!(inner_width, 375, "{seen}");
    assert!(
        scroll_width.as_u64().unwrap() <= inner_width.as_u64().unwrap(),
        "scrolls sideways on a phone: {scroll_width} > {inner_width}, for {}",
        seen["too_wide"]
    );
}

/// A `client_name` holding markup is shown as its text: no element comes
/// of it and the title stays, with scripts off and on.
#[tokio::test]
async fn a_client_name_with_markup_shows_as_text_in_a_browser() {
    let upstream = OidcProvider::start().await;
    let name = "<img src=x onerror=\"document.title='pwned'\"><b>Bold</b> & Co";
    let (app, _served, url) = consenting(&upstream, name).await;
    let authorize = authorize_url(&app, &url, REGISTERED, &pkce("markup"));
    let seen = in_browser("markup", json!({ "authorize": authorize })).await;
    for scripts in ["without_scripts", "with_scripts"] {
        let look = &seen[scripts];
        assert_eq!(
            look["heading"],
            format!("{name} asks you to sign in"),
            "{scripts}: {look}"
        );
        assert!(
            look["text"].as_str().unwrap().contains("<b>Bold</b> & Co"),
            "{scripts}: {look}"
        );
        assert_eq!(
            look["elements"],
            json!({ "img": 0, "b": 0, "in_heading": 0 }),
            "{scripts}"
        );
        assert_eq!(look["title"], "Sign in", "{scripts}");
    }
}

/// Continue posts the form, with the browser's cookie, and leads to the
/// provider's login; signing in there brings the browser back to the app
/// with a code that redeems. Cancel leads to the app with `access_denied`
/// and the app's state.
#[tokio::test]
async fn continue_leads_to_the_provider_and_cancel_back_to_the_app_in_a_browser() {
    let upstream = OidcProvider::start().await;
    let (app, served, url) = consenting(&upstream, "Editor").await;
    let back_to = app_redirect(&served, &url);
    let allowing = pkce("allow");
    let seen = decisions(&app, &url, &back_to, &allowing, &upstream).await;
    let allow = &seen["allow"];
    assert_eq!(allow["posted"]["status"], 303, "{allow}");
    let first = Url::parse(allow["to_upstream"][0].as_str().unwrap()).unwrap();
    assert!(first.as_str().starts_with(&upstream.issuer), "{first}");
    assert_eq!(param(&first, "redirect_uri").unwrap(), app.url("/callback"));
    assert_eq!(param(&first, "code_challenge").unwrap(), allowing.challenge);
    assert_ne!(param(&first, "client_id").unwrap(), url);
    assert!(
        allow["landed"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/interaction/", upstream.issuer)),
        "{allow}"
    );
    let prompt: Value = serde_json::from_str(allow["text"].as_str().unwrap()).unwrap();
    assert_eq!(prompt["prompt"], "login", "{allow}");
    assert_eq!(prompt["redirect_uri"], app.url("/callback"));
    assert_eq!(allow["to_app"].as_array().unwrap().len(), 1, "{allow}");
    assert_eq!(allow["signed_in"], allow["to_app"][0], "{allow}");
    let back = Url::parse(allow["signed_in"].as_str().unwrap()).unwrap();
    assert!(back.as_str().starts_with(&back_to), "{back}");
    assert_eq!(param(&back, "state").unwrap(), "app-state-1");
    assert_eq!(param(&back, "iss").unwrap(), app.base);
    let (status, tokens) = redeem(&app, &url, &back, &allowing).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");

    let cancel = &seen["cancel"];
    assert_eq!(cancel["posted"]["status"], 303, "{cancel}");
    assert_eq!(cancel["to_app"].as_array().unwrap().len(), 1, "{cancel}");
    assert_eq!(cancel["landed"], cancel["to_app"][0], "{cancel}");
    let back = Url::parse(cancel["landed"].as_str().unwrap()).unwrap();
    assert!(back.as_str().starts_with(&back_to), "{back}");
    assert_eq!(param(&back, "error").unwrap(), "access_denied");
    assert_eq!(param(&back, "state").unwrap(), "app-state-1");
    assert_eq!(param(&back, "iss").unwrap(), app.base);
}

/// Another site's page that frames the consent page gets the browser's
/// error page in the frame, not the form.
#[tokio::test]
async fn the_consent_page_cannot_be_framed_by_another_site_in_a_browser() {
    let upstream = OidcProvider::start().await;
    let (app, _served, url) = consenting(&upstream, "Editor").await;
    let authorize = authorize_url(&app, &url, REGISTERED, &pkce("framed"));
    let seen = in_browser("framing", json!({ "authorize": authorize })).await;
    assert_eq!(seen["gateway_answers"], json!([200]), "{seen}");
    let frames = seen["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 1, "{seen}");
    assert_eq!(frames[0]["forms"], 0, "{seen}");
    assert_eq!(frames[0]["buttons"], 0, "{seen}");
    assert!(
        !frames[0]["url"].as_str().unwrap().starts_with(&app.base),
        "{seen}"
    );
    let console = seen["console"].to_string();
    assert!(console.contains("frame-ancestors 'none'"), "{console}");
}

/// In broker mode every client gets the page. In the browser, Continue
/// leads to the provider as the operator's client (with the gateway's own
/// PKCE challenge), and back to the app with a code that redeems; Cancel
/// leads to the app with `access_denied`.
#[tokio::test]
async fn in_broker_mode_the_page_works_in_a_browser_for_a_registered_client() {
    let listener = gateway_listener().await;
    let upstream = super::broker::upstream_for(&listener, None, None).await;
    let app = super::broker::broker_on(listener, &upstream, "", "").await;
    let served = Served::default();
    let base = served.start().await;
    let back_to = app_redirect(&served, &format!("{base}/app"));
    let client = app
        .register(&json!({
            "redirect_uris": [back_to],
            "token_endpoint_auth_method": "none",
            "client_name": "Broker <i>app</i>",
        }))
        .await;
    let client_id = client["client_id"].as_str().unwrap();
    let allowing = pkce("broker-allow");
    let seen = decisions(&app, client_id, &back_to, &allowing, &upstream).await;
    let allow = &seen["allow"];
    assert_eq!(allow["posted"]["status"], 303, "{allow}");
    let first = Url::parse(allow["to_upstream"][0].as_str().unwrap()).unwrap();
    assert_eq!(
        param(&first, "client_id").unwrap(),
        super::broker::UPSTREAM_CLIENT
    );
    assert_ne!(param(&first, "code_challenge").unwrap(), allowing.challenge);
    let back = Url::parse(allow["signed_in"].as_str().unwrap()).unwrap();
    assert!(back.as_str().starts_with(&back_to), "{back}");
    let (status, tokens) = redeem(&app, client_id, &back, &allowing).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let back = Url::parse(seen["cancel"]["landed"].as_str().unwrap()).unwrap();
    assert_eq!(param(&back, "error").unwrap(), "access_denied", "{back}");
}
