//! Client ID Metadata Documents: an `https` client id is the URL of a JSON
//! document that describes the client. The front fetches it through the
//! SSRF-guarded client (size, time and address caps, no redirects), checks
//! it (its `client_id` is its URL byte for byte, no secrets, public client,
//! redirect URIs on the document's host or loopback), registers a client
//! for it at the provider through the registration service (pending →
//! active), keeps the URL → client mapping in the store, and replaces the
//! client when the document changes. Operator policy: allowed and denied
//! hosts, a cap per host, cache bounds, fetches per host; a document that
//! fails is remembered as failed for a minute.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{CACHE_CONTROL, HeaderMap};
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

use super::error::FrontError;
use super::settings::CimdSettings;
use super::{Front, FrontSetupError};
use crate::clock::seconds;
use crate::domain::{
    ClientState, MetadataDocument, RegisteredClient, RegisteredUri, RegistrationError,
};
use crate::limiter::KeyedLimiter;
use crate::outbound::{GuardedClient, OutboundSettings};
use crate::store::front::{CimdStore, Mapping};

/// What the store knew of a document before it was fetched.
enum Seen {
    /// No mapping: the document is new.
    Never,
    /// A mapping whose client the gateway no longer holds.
    ClientLost,
    /// A mapping to a client the gateway holds.
    Mapped(Mapping),
}

/// Longest client id URL accepted.
const MAX_URL_BYTES: usize = 2048;

/// How long a document that failed is answered from memory.
const FAILURE_MEMORY: Duration = Duration::from_secs(60);

/// The documents' side of the front.
pub struct Documents {
    settings: CimdSettings,
    public: GuardedClient,
    private: GuardedClient,
    store: Arc<dyn CimdStore>,
    fetches: Option<KeyedLimiter>,
    failures: moka::sync::Cache<String, FrontError>,
}

impl Documents {
    /// The documents' side, fetching with `outbound`'s guards and the
    /// document size cap.
    pub fn new(
        settings: CimdSettings,
        outbound: &OutboundSettings,
        store: Arc<dyn CimdStore>,
        max_tracked_keys: u64,
    ) -> Result<Self, FrontSetupError> {
        let client = |allow_private_networks| {
            GuardedClient::new(OutboundSettings {
                allow_private_networks,
                max_response_bytes: settings.max_document_bytes,
                ..outbound.clone()
            })
            .map_err(|e| FrontSetupError(e.to_string()))
        };
        Ok(Self {
            public: client(outbound.allow_private_networks)?,
            private: client(true)?,
            fetches: settings
                .fetches_per_host
                .map(|quota| KeyedLimiter::new(quota, max_tracked_keys)),
            failures: moka::sync::Cache::builder()
                .max_capacity(max_tracked_keys)
                .time_to_live(FAILURE_MEMORY)
                .build(),
            store,
            settings,
        })
    }

    /// Whether clients of documents get the gateway's consent page.
    #[must_use]
    pub fn consent_page(&self) -> bool {
        self.settings.consent_page
    }

    /// Whether `client_id` names a document (an `http(s)` URL) and documents
    /// are on.
    #[must_use]
    pub fn names_document(&self, client_id: &str) -> bool {
        self.settings.enabled
            && (client_id.starts_with("https://") || client_id.starts_with("http://"))
    }

    /// Whether `host` matches one of `patterns` (`example.com` exactly, or
    /// `*.example.com` for any name under it).
    fn matches(patterns: &[String], host: &str) -> bool {
        patterns
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(parent) => host.ends_with(&format!(".{parent}")),
                None => pattern == host,
            })
    }

    /// The URL of `client_id`, if the front may fetch it.
    fn checked_url(&self, client_id: &str) -> Result<(Url, String), FrontError> {
        let refuse = |why: &str| FrontError::invalid_request(format!("client_id document: {why}"));
        let url = Url::parse(client_id).map_err(|_| refuse("not a URL"))?;
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let private = Self::matches(&self.settings.private_hosts, &host);
        if client_id.len() > MAX_URL_BYTES
            || url.as_str() != client_id
            || !(url.scheme() == "https" || (private && url.scheme() == "http"))
            || url.fragment().is_some()
            || !url.username().is_empty()
            || url.password().is_some()
            || url.path() == "/"
            || url.path().split('/').any(|s| s == "." || s == "..")
        {
            return Err(refuse(
                "must be an https URL with a path, in normal form, without fragment or user",
            ));
        }
        if Self::matches(&self.settings.denied_hosts, &host)
            || !(self.settings.allowed_hosts.is_empty()
                || Self::matches(&self.settings.allowed_hosts, &host))
        {
            return Err(refuse("its host is not allowed here"));
        }
        Ok((url, host))
    }
}

impl Front {
    /// The client a document names, registered (or replaced) as needed.
    pub(super) async fn document_client(
        &self,
        documents: &Documents,
        client_id: &str,
    ) -> Result<RegisteredClient, FrontError> {
        let (url, host) = documents.checked_url(client_id)?;
        let now = self.now();
        let mut seen = match documents.store.mapping(client_id).await? {
            Some(known) => Seen::Mapped(known),
            None => Seen::Never,
        };
        if let Seen::Mapped(known) = &seen {
            match self.mapped(&known.client_id).await? {
                Some(client) if known.fresh_until > now => return Ok(client),
                Some(_) => {}
                // Removed behind the front's back (an operator, the expiry
                // janitor): registered again below.
                None => seen = Seen::ClientLost,
            }
        }
        if let Some(failure) = documents.failures.get(client_id) {
            return Err(failure);
        }
        let outcome = self.fetch_document(documents, &url, &host, seen, now).await;
        if let Err(error) = &outcome {
            if error.retry_after.is_none() {
                documents
                    .failures
                    .insert(client_id.to_owned(), error.clone());
            }
        }
        outcome
    }

    /// Fetches and checks the document, then registers, replaces or keeps
    /// its client.
    async fn fetch_document(
        &self,
        documents: &Documents,
        url: &Url,
        host: &str,
        seen: Seen,
        now: i64,
    ) -> Result<RegisteredClient, FrontError> {
        if let Some(limiter) = &documents.fetches {
            limiter.check(host).map_err(FrontError::rate_limited)?;
        }
        let private = Documents::matches(&documents.settings.private_hosts, host);
        let client = if private {
            &documents.private
        } else {
            &documents.public
        };
        let (body, headers) = client.get_with_headers(url).await.map_err(|e| {
            FrontError::invalid_request(format!("client_id document cannot be fetched: {e}"))
        })?;
        let document = checked_document(url, host, &body)?;
        let fresh = Mapping {
            client_id: String::new(),
            document_hash: Sha256::digest(&body).to_vec(),
            fresh_until: now.saturating_add(seconds(cache_time(&headers, &documents.settings))),
        };
        let client = match seen {
            Seen::Never | Seen::ClientLost => {
                let lost = matches!(seen, Seen::ClientLost);
                return self
                    .first_sight(documents, url.as_str(), host, document, fresh, lost)
                    .await;
            }
            Seen::Mapped(known) if known.document_hash == fresh.document_hash => {
                self.mapped(&known.client_id).await?.ok_or_else(not_ready)?
            }
            Seen::Mapped(known) => self
                .registrations
                .replace_trusted(&known.client_id, document)
                .await
                .map_err(refused)?,
        };
        let kept = Mapping {
            client_id: client.client_id.to_string(),
            ..fresh
        };
        documents.store.update_mapping(url.as_str(), &kept).await?;
        Ok(client)
    }

    /// Registers the client of a document seen for the first time, or
    /// (`lost`) whose client the gateway no longer holds.
    async fn first_sight(
        &self,
        documents: &Documents,
        url: &str,
        host: &str,
        document: MetadataDocument,
        fresh: Mapping,
        lost: bool,
    ) -> Result<RegisteredClient, FrontError> {
        let settings = &documents.settings;
        if !lost && documents.store.documents_of(Some(host)).await? >= settings.max_per_host {
            return Err(FrontError::invalid_request(
                "client_id document: this host has as many clients as the gateway allows",
            ));
        }
        if !lost && documents.store.documents_of(None).await? >= settings.max_documents {
            return Err(FrontError::busy(
                "the gateway holds as many client_id document clients as it allows",
            ));
        }
        let client = self
            .registrations
            .register_trusted(document, documents.settings.policy.as_deref())
            .await
            .map_err(refused)?;
        let mapping = Mapping {
            client_id: client.client_id.to_string(),
            ..fresh
        };
        if lost {
            documents.store.update_mapping(url, &mapping).await?;
            return Ok(client);
        }
        if documents.store.insert_mapping(url, host, &mapping).await? {
            return Ok(client);
        }
        // Another instance registered it first: keep theirs.
        if let Err(error) = self.registrations.remove(client.client_id.as_str()).await {
            tracing::warn!(%error, "front: a duplicate document client was not removed");
        }
        match documents.store.mapping(url).await? {
            Some(theirs) => self.mapped(&theirs.client_id).await?.ok_or_else(not_ready),
            None => Err(FrontError::internal("a document mapping vanished")),
        }
    }

    /// The client a mapping names: `None` when the gateway holds no such
    /// client any more, `temporarily_unavailable` while it is not active
    /// (its registration or replacement is still under way).
    async fn mapped(&self, client_id: &str) -> Result<Option<RegisteredClient>, FrontError> {
        match self.registrations.show(client_id).await {
            Ok(client) if client.state == ClientState::Active => Ok(Some(client)),
            Ok(_) => Err(not_ready()),
            Err(RegistrationError::UnknownClient(_)) => Ok(None),
            Err(error) => Err(FrontError::internal(&error.to_string())),
        }
    }
}

fn not_ready() -> FrontError {
    FrontError::busy("the client of this client_id document is not ready; retry")
}

/// The document as registration metadata, or why it is refused.
fn checked_document(url: &Url, host: &str, body: &[u8]) -> Result<MetadataDocument, FrontError> {
    let refuse = |why: &str| FrontError::invalid_request(format!("client_id document: {why}"));
    let Ok(Value::Object(mut members)) = serde_json::from_slice::<Value>(body) else {
        return Err(refuse("not a JSON object"));
    };
    if members.get("client_id").and_then(Value::as_str) != Some(url.as_str()) {
        return Err(refuse("its client_id differs from its URL"));
    }
    if members.contains_key("client_secret") || members.contains_key("client_secret_expires_at") {
        return Err(refuse("it must not hold a client secret"));
    }
    let method = members
        .entry("token_endpoint_auth_method")
        .or_insert_with(|| Value::from("none"));
    if method != "none" {
        return Err(refuse("token_endpoint_auth_method must be none"));
    }
    members.remove("client_id");
    let redirect_uris = members.get("redirect_uris").and_then(Value::as_array);
    let foreign = redirect_uris.into_iter().flatten().any(|uri| {
        let uri = uri
            .as_str()
            .and_then(|text| RegisteredUri::parse(text).ok());
        !uri.is_some_and(|uri| uri.is_loopback() || uri.url().host_str() == Some(host))
    });
    if foreign {
        return Err(refuse(
            "redirect URIs must be on the document's host or loopback",
        ));
    }
    serde_json::from_value(Value::Object(members))
        .map_err(|e| refuse(&format!("not client metadata ({e})")))
}

/// How long to keep a document: its `max-age`, within the operator's bounds.
fn cache_time(headers: &HeaderMap, settings: &CimdSettings) -> Duration {
    let max_age = headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|directive| directive.trim().strip_prefix("max-age="))
        .find_map(|seconds| seconds.trim_matches('"').parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_secs);
    max_age.clamp(settings.min_cache, settings.max_cache)
}

/// A registration refused for a document, in the words fit for the app.
fn refused(error: RegistrationError) -> FrontError {
    match error {
        RegistrationError::InvalidClientMetadata(why)
        | RegistrationError::InvalidRedirectUri(why) => {
            FrontError::invalid_request(format!("client_id document: {why}"))
        }
        RegistrationError::TemporarilyUnavailable { reason, .. } => {
            FrontError::unavailable(&reason)
        }
        other => FrontError::internal(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns_match_exactly_or_below_a_wildcard() {
        let patterns = vec!["example.com".to_owned(), "*.apps.example".to_owned()];
        assert!(Documents::matches(&patterns, "example.com"));
        assert!(Documents::matches(&patterns, "a.apps.example"));
        assert!(!Documents::matches(&patterns, "apps.example"));
        assert!(!Documents::matches(&patterns, "evilexample.com"));
    }

    #[test]
    fn max_age_is_kept_within_the_operators_bounds() {
        let mut report = crate::settings::Report::default();
        let keys: toml::Table =
            toml::from_str("[cimd]\nmin_cache = \"1m\"\nmax_cache = \"1h\"").unwrap();
        let settings = super::super::FrontSettings::read(keys, &mut report).cimd;
        let time = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(CACHE_CONTROL, value.parse().unwrap());
            cache_time(&headers, &settings).as_secs()
        };
        assert_eq!(time("public, max-age=600"), 600);
        assert_eq!(time("max-age=5"), 60);
        assert_eq!(time("max-age=86400"), 3600);
        assert_eq!(time("no-store"), 60);
        assert_eq!(cache_time(&HeaderMap::new(), &settings).as_secs(), 60);
    }

    #[test]
    fn documents_name_themselves_and_hold_no_secret() {
        let url = Url::parse("https://app.example/client.json").unwrap();
        let good = br#"{"client_id":"https://app.example/client.json","redirect_uris":["http://127.0.0.1/cb","https://app.example/cb"]}"#;
        let document = checked_document(&url, "app.example", good).unwrap();
        assert_eq!(document.token_endpoint_auth_method.as_deref(), Some("none"));
        for bad in [
            &br#"{"client_id":"https://app.example/other.json"}"#[..],
            br#"{"client_id":"https://app.example/client.json","client_secret":"s"}"#,
            br#"{"client_id":"https://app.example/client.json","token_endpoint_auth_method":"client_secret_basic"}"#,
            br#"{"client_id":"https://app.example/client.json","redirect_uris":["https://elsewhere.example/cb"]}"#,
            b"[]",
        ] {
            assert!(checked_document(&url, "app.example", bad).is_err());
        }
    }
}
