//! The providers the front suite runs through: node oidc-provider (a real
//! RFC 7591 server), and the Hydra and Okta fakes, which serve their
//! vendors' OAuth 2.0 endpoints as documented and check each request the
//! gateway sends them. A flow written once against [`Upstream`] becomes one
//! test per provider with [`through_each_upstream!`].

use reqwest::StatusCode;
use reqwest::header::COOKIE;
use serde_json::Value;
use url::Url;

use super::{browser, location};
use crate::support::hydra::HydraFake;
use crate::support::oidc_provider::OidcProvider;
use crate::support::okta::{API_TOKEN, OktaFake};

/// A provider behind the front, as the suite drives it.
pub trait Upstream {
    /// The keys of `[provider]` for a gateway in front of it.
    fn provider_keys(&self) -> String;

    /// Its issuer: its authorization endpoint is under it.
    fn issuer(&self) -> String;

    /// The scope an app asks for to be given an ID token and a refresh
    /// token.
    fn scope(&self) -> &'static str;

    /// Plays the user `account` at the provider, from the authorization URL
    /// the gateway sent the browser to: where the provider then sends the
    /// browser (the gateway's callback).
    async fn log_in(&self, authorization_url: &Url, account: &str) -> Url;

    /// Ends a test: the provider met no request it documents as wrong (a
    /// fake's ledger; a real peer refuses such requests itself).
    fn assert_clean(&self);
}

/// One test per provider for each generic flow named (an `async fn` taking
/// `&impl Upstream`): `{flow}::oidc_provider`, `{flow}::hydra` and
/// `{flow}::okta`, in the module that invokes it.
macro_rules! through_each_upstream {
    ($($flow:ident),* $(,)?) => {$(
        mod $flow {
            #[tokio::test]
            async fn oidc_provider() {
                let upstream = crate::support::oidc_provider::OidcProvider::start().await;
                super::$flow(&upstream).await;
            }

            #[tokio::test]
            async fn hydra() {
                super::$flow(&crate::support::hydra::HydraFake::start().await).await;
            }

            #[tokio::test]
            async fn okta() {
                super::$flow(&crate::support::okta::OktaFake::start().await).await;
            }
        }
    )*};
}
pub(crate) use through_each_upstream;

impl Upstream for OidcProvider {
    fn provider_keys(&self) -> String {
        format!(
            "kind = \"rfc7591\"\nissuer = \"{}\"\nregistration_endpoint = \"{}\"",
            self.issuer,
            self.registration_endpoint()
        )
    }

    fn issuer(&self) -> String {
        self.issuer.clone()
    }

    /// Its clients with the refresh token grant get refresh tokens without
    /// `offline_access` (`tests/interop/oidc-provider/server.mjs`).
    fn scope(&self) -> &'static str {
        "openid"
    }

    /// Follows the redirect to the login step, checks what it shows, logs
    /// in through the provider's interaction routes, and follows the
    /// provider's redirects until it sends the browser out of itself.
    async fn log_in(&self, authorization_url: &Url, account: &str) -> Url {
        let mut jar = Jar::default();
        let interaction = location(&jar.get(authorization_url.as_str()).await);
        let prompt: Value = jar.get(interaction.as_str()).await.json().await.unwrap();
        assert_eq!(prompt["prompt"], "login", "{prompt}");
        let login = browser()
            .post(format!("{interaction}/login"))
            .header(COOKIE, jar.0.join("; "))
            .form(&[("login", account)])
            .send()
            .await
            .unwrap();
        jar.keep(&login);
        let mut next = location(&login);
        // The provider resumes the authorization, then redirects out of itself.
        while next.as_str().starts_with(&self.issuer) {
            next = location(&jar.get(next.as_str()).await);
        }
        next
    }

    fn assert_clean(&self) {}
}

impl Upstream for HydraFake {
    fn provider_keys(&self) -> String {
        format!(
            "kind = \"hydra\"\nadmin_url = \"{0}\"\nissuer = \"{0}\"",
            self.base
        )
    }

    fn issuer(&self) -> String {
        self.base.clone()
    }

    /// Hydra issues a refresh token for `offline` or `offline_access`.
    fn scope(&self) -> &'static str {
        "openid offline_access"
    }

    async fn log_in(&self, authorization_url: &Url, account: &str) -> Url {
        HydraFake::log_in(self, authorization_url, account).await
    }

    fn assert_clean(&self) {
        self.ledger.assert_clean("Hydra");
    }
}

impl Upstream for OktaFake {
    /// The org's `default` custom authorization server, as README's "MCP in
    /// front of Okta" sets it up.
    fn provider_keys(&self) -> String {
        format!(
            "kind = \"okta\"\norg_url = \"{}\"\nissuer = \"{}\"\napi_token = \"{API_TOKEN}\"",
            self.base,
            Upstream::issuer(self)
        )
    }

    fn issuer(&self) -> String {
        format!("{}/oauth2/default", self.base)
    }

    /// Okta issues a refresh token for `offline_access`.
    fn scope(&self) -> &'static str {
        "openid offline_access"
    }

    /// An admin assigned `account` to the app (Okta signs in only users
    /// assigned to it), who then signs in.
    async fn log_in(&self, authorization_url: &Url, account: &str) -> Url {
        let client_id = authorization_url
            .query_pairs()
            .find(|(name, _)| name == "client_id")
            .map(|(_, value)| value.into_owned())
            .unwrap();
        self.assign(&client_id, account);
        self.sign_in(authorization_url, account).await
    }

    fn assert_clean(&self) {
        self.ledger.assert_clean("Okta");
    }
}

/// The provider's userinfo answer for `access_token`, at the
/// `userinfo_endpoint` of its discovery document: how the suite sees that a
/// token is live, as a resource server would.
pub async fn userinfo(upstream: &impl Upstream, access_token: &str) -> (StatusCode, Value) {
    let http = reqwest::Client::new();
    let discovery: Value = http
        .get(format!(
            "{}/.well-known/openid-configuration",
            upstream.issuer()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoint = discovery["userinfo_endpoint"].as_str().unwrap();
    let response = http
        .get(endpoint)
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Cookies the provider set, sent back on every later request.
#[derive(Default)]
struct Jar(Vec<String>);

impl Jar {
    fn keep(&mut self, response: &reqwest::Response) {
        for cookie in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let pair = cookie
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned();
            let name = pair.split('=').next().unwrap().to_owned();
            self.0.retain(|kept| !kept.starts_with(&format!("{name}=")));
            self.0.push(pair);
        }
    }

    async fn get(&mut self, url: &str) -> reqwest::Response {
        let response = browser()
            .get(url)
            .header(COOKIE, self.0.join("; "))
            .send()
            .await
            .unwrap();
        self.keep(&response);
        response
    }
}
