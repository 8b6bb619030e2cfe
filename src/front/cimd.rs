//! Client ID Metadata Documents: an `https` client id is the URL of a JSON
//! document that describes the client. The front fetches it through the
//! SSRF-guarded client (size, time and address caps, no redirects), checks
//! it (its `client_id` is its URL byte for byte, no secrets, public client,
//! redirect URIs on the document's host or loopback), registers a client
//! for it at the provider through the registration service (pending →
//! active), keeps the URL → client mapping in the store, and replaces the
//! client when the document changes. Operator policy: allowed and denied
//! hosts, a cap per host and in all, cache bounds, fetches per host; a
//! document that fails is remembered as failed for a minute.
//!
//! A first sight reserves the document's place in the store before the
//! provider is called, so the caps hold however many first sights race,
//! across instances; a reservation whose registration never finished (the
//! process died) is given up once it is stale. Each use is recorded (at
//! most once per [`TOUCH_EVERY`]), so that the janitor can remove clients
//! nobody uses.

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
use crate::store::front::{DocumentCaps, Mapping, Reserved};

/// What the store knew of a document before it was fetched.
enum Seen {
    /// No mapping: the document is new.
    Never,
    /// A mapping whose client the gateway no longer holds.
    ClientLost,
    /// A mapping to a client the gateway holds.
    Mapped(Mapping),
}

/// How often a document's use is recorded, at most.
pub const TOUCH_EVERY: Duration = Duration::from_secs(3600);

/// How long a reservation holds while its client is registered; one older
/// was left by a registration that never finished.
const RESERVATION: Duration = Duration::from_secs(600);

/// Longest client id URL accepted.
const MAX_URL_BYTES: usize = 2048;

/// How long a document that failed is answered from memory.
const FAILURE_MEMORY: Duration = Duration::from_secs(60);

/// The documents' side of the front.
pub struct Documents {
    settings: CimdSettings,
    public: GuardedClient,
    private: GuardedClient,
    fetches: Option<KeyedLimiter>,
    failures: moka::sync::Cache<String, FrontError>,
}

impl Documents {
    /// The documents' side, fetching with `outbound`'s guards and the
    /// document size cap.
    pub fn new(
        settings: CimdSettings,
        outbound: &OutboundSettings,
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
        let seen = match self.documents_store.mapping(client_id).await? {
            None => Seen::Never,
            Some(reservation) if reservation.is_reservation() => {
                if reservation.fresh_until > now {
                    return Err(not_ready());
                }
                // Left by a registration that never finished: given up.
                self.documents_store
                    .remove_mapping(client_id, &reservation)
                    .await?;
                Seen::Never
            }
            Some(known) => match self.mapped(&known.client_id).await? {
                Some(client) if known.fresh_until > now => {
                    self.touch(client_id, &known, now).await;
                    return Ok(client);
                }
                Some(_) => Seen::Mapped(known),
                // Removed behind the front's back (an operator, a janitor):
                // registered again below.
                None => Seen::ClientLost,
            },
        };
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

    /// Records a use of the document at `url`, if the last one recorded is
    /// older than [`TOUCH_EVERY`]. A failure only delays the record.
    async fn touch(&self, url: &str, known: &Mapping, now: i64) {
        if now.saturating_sub(known.last_used) < seconds(TOUCH_EVERY) {
            return;
        }
        if let Err(error) = self.documents_store.touch(url, now).await {
            tracing::warn!(%error, "front: a document's use was not recorded");
        }
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
            last_used: now,
        };
        let client = match seen {
            Seen::Never => {
                return self
                    .first_sight(documents, url.as_str(), host, document, fresh, now)
                    .await;
            }
            Seen::ClientLost => self
                .registrations
                .register_trusted(document, documents.settings.policy.as_deref())
                .await
                .map_err(refused)?,
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
        self.documents_store
            .update_mapping(url.as_str(), &kept, now)
            .await?;
        Ok(client)
    }

    /// Registers the client of a document seen for the first time, in a
    /// place reserved for it first within the operator's caps.
    async fn first_sight(
        &self,
        documents: &Documents,
        url: &str,
        host: &str,
        document: MetadataDocument,
        fresh: Mapping,
        now: i64,
    ) -> Result<RegisteredClient, FrontError> {
        let settings = &documents.settings;
        let caps = DocumentCaps {
            per_host: settings.max_per_host,
            in_all: settings.max_documents,
        };
        let until = now.saturating_add(seconds(RESERVATION));
        match self
            .documents_store
            .reserve(url, host, caps, now, until)
            .await?
        {
            Reserved::Yes => {}
            // Another request, here or on another instance, is registering
            // it: its client will be there in a moment.
            Reserved::Taken => return Err(not_ready()),
            Reserved::HostFull => {
                return Err(FrontError::invalid_request(
                    "client_id document: this host has as many clients as the gateway allows",
                ));
            }
            Reserved::AllFull => {
                return Err(FrontError::busy(
                    "the gateway holds as many client_id document clients as it allows",
                ));
            }
        }
        let registered = self
            .registrations
            .register_trusted(document, settings.policy.as_deref())
            .await;
        let client = match registered {
            Ok(client) => client,
            Err(error) => {
                let reservation = Mapping {
                    client_id: String::new(),
                    document_hash: Vec::new(),
                    fresh_until: until,
                    last_used: now,
                };
                self.documents_store
                    .remove_mapping(url, &reservation)
                    .await?;
                return Err(refused(error));
            }
        };
        let mapping = Mapping {
            client_id: client.client_id.to_string(),
            ..fresh
        };
        self.documents_store
            .update_mapping(url, &mapping, now)
            .await?;
        Ok(client)
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
        let settings = super::super::FrontSettings::read(keys, false, &mut report).cimd;
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
