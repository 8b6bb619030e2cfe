//! Client metadata (RFC 7591 §2, OpenID Connect Dynamic Client Registration
//! 1.0 §2): the document as it is sent, and the validated value built from it.
//!
//! [`ClientMetadata`] is built by `TryFrom` from a [`Submitted`] document,
//! which must meet every rule of a registration, or from a [`Registered`]
//! one (read back from the store), which is only decoded: it met the rules
//! in force when it was registered. One small validator per group of
//! members does the work: `grants` (grant types, response types and the
//! authentication method), `redirects`, `keys`, `jose` (algorithms),
//! `localized` (language-tagged values) and `registry` (the registry's
//! members beyond RFC 7591 and OpenID Connect DCR). `extra` keeps the
//! operator's extension members; `size` weighs metadata for the cache.
//!
//! Every member is declared once, in the member table: the
//! `metadata_members!` invocation in `document.rs` (the macro and the kinds
//! of member are in `table.rs`).
//!
//! # Adding a metadata member
//!
//! A registry member that is a flag, a URI, a name, a JWS algorithm or a
//! list of URIs or of strings, with no rule involving another member:
//!
//! 1. One entry in the table, at the member's place in the document, after
//!    a doc comment written for API users (it is the member's description
//!    in `GET /openapi.json`, and the doc of its typed field):
//!
//!    ```text
//!    /// Whether the client always uses DPoP (RFC 9449).
//!    dpop_bound_access_tokens: flag,
//!    /// https URL of a signed JWT holding the client's JSON Web Key Set.
//!    signed_jwks_uri: one(Uri(RegisteredUri::parse_https)),
//!    /// Authorization details types the client may use (RFC 9396).
//!    authorization_details_types: list(Text(not_empty)),
//!    ```
//!
//!    `flag`, `one(Kind)` or `list(Kind)`, where `Kind` carries the rule a
//!    submitted value must meet: `Uri(parser)` (a stored URI is read as any
//!    absolute URI), `Text(not_blank)`, `Text(not_empty)`, `Alg(any)` (a
//!    JWS algorithm) or `Alg(not_none)`. That entry is the member's
//!    document field with its OpenAPI schema, its field in
//!    [`RegistryMembers`], its reading with its kind's rules and error
//!    messages, its writing back, its place among the URIs a registration
//!    checks, its weight in the client cache ([`HeapSize`]), and its
//!    refusal as an `extra_metadata` name.
//! 2. The providers: an `rfc7591` upstream is sent the document as
//!    registered, so it gets the member with no change; a provider with a
//!    field of its own for it maps it in its body builder (`src/provider/`),
//!    and the others leave it out.
//! 3. The tests and the README: the member's valid value in
//!    `registry_members()` and its refusals in `refusals()`
//!    (tests/gateway/metadata_members.rs), the native list of each provider
//!    that sends it, and its row in README's "Client metadata members".
//!
//! A new rule is a function beside `not_blank` in `table.rs`; a new kind
//! of value, a `table::Kind` implementation there and one `@value` line in
//! the macro. A member whose rules involve other members is an entry
//! `name: by_hand(JSON type)`; its typed field goes in the table's
//! `RegistryMembers` block, `registry::read` reads it into `Ruled` (and
//! checks the rules between members), `RegistryMembers::write` writes it
//! back and `RegistryMembers::uris` lists any URI it holds. Its weight is
//! counted either way: every field of `RegistryMembers` and
//! [`ClientMetadata`] is, and one of a type without a [`HeapSize`] does not
//! compile.

use super::uri::{RedirectRules, RegisteredUri};
use super::values::{
    ApplicationType, AuthMethod, GrantType, JwsAlgorithm, ResponseType, SubjectType,
};

mod document;
mod extra;
mod grants;
mod jose;
mod keys;
mod localized;
mod redirects;
mod registry;
mod size;
mod table;

pub use document::{MetadataDocument, RegistryMembers, whole_seconds};
pub use extra::{ExtraMetadata, SERVER_MEMBERS};
pub use jose::Encryption;
use jose::{Encrypted, Signed};
pub use keys::{CertificateSubject, ClientKeys};
pub use localized::Localized;
pub use size::HeapSize;
use size::heap_sized;
use table::{List, Member, Uri};

/// Why metadata was refused; each variant is one RFC 7591 §3.2.2 error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// `invalid_redirect_uri`.
    #[error("{0}")]
    InvalidRedirectUri(String),
    /// `invalid_client_metadata`.
    #[error("{0}")]
    InvalidClientMetadata(String),
}

fn invalid(message: impl Into<String>) -> MetadataError {
    MetadataError::InvalidClientMetadata(message.into())
}

heap_sized! {
    /// Validated client metadata. Defaults are applied; URIs keep their text.
    /// Its [`HeapSize`] counts every field.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ClientMetadata {
        /// Registered redirect URIs.
        pub redirect_uris: Vec<RegisteredUri>,
        /// Token endpoint authentication method.
        pub token_endpoint_auth_method: AuthMethod,
        /// Grant types.
        pub grant_types: Vec<GrantType>,
        /// Response types.
        pub response_types: Vec<ResponseType>,
        /// Client name, per language.
        pub client_name: Localized<String>,
        /// Client home page, per language.
        pub client_uri: Localized<RegisteredUri>,
        /// Logo, per language.
        pub logo_uri: Localized<RegisteredUri>,
        /// Terms of service, per language.
        pub tos_uri: Localized<RegisteredUri>,
        /// Privacy policy, per language.
        pub policy_uri: Localized<RegisteredUri>,
        /// Space-separated scopes.
        pub scope: Option<String>,
        /// Contacts.
        pub contacts: Vec<String>,
        /// Public keys, by URL or by value.
        pub keys: Option<ClientKeys>,
        /// Software identifier.
        pub software_id: Option<String>,
        /// Software version.
        pub software_version: Option<String>,
        /// Application type.
        pub application_type: ApplicationType,
        /// Sector identifier URI (pairwise subjects).
        pub sector_identifier_uri: Option<RegisteredUri>,
        /// Subject type.
        pub subject_type: Option<SubjectType>,
        /// ID token signature algorithm.
        pub id_token_signed_response_alg: Option<JwsAlgorithm>,
        /// ID token encryption.
        pub id_token_encryption: Option<Encryption>,
        /// UserInfo signature algorithm.
        pub userinfo_signed_response_alg: Option<JwsAlgorithm>,
        /// UserInfo encryption.
        pub userinfo_encryption: Option<Encryption>,
        /// Request object signature algorithm.
        pub request_object_signing_alg: Option<JwsAlgorithm>,
        /// Request object encryption.
        pub request_object_encryption: Option<Encryption>,
        /// Signature algorithm for `*_jwt` client authentication.
        pub token_endpoint_auth_signing_alg: Option<JwsAlgorithm>,
        /// Default maximum authentication age in seconds.
        pub default_max_age: Option<u64>,
        /// Whether `auth_time` is required.
        pub require_auth_time: Option<bool>,
        /// Default ACR values.
        pub default_acr_values: Vec<String>,
        /// Third-party login initiation URI.
        pub initiate_login_uri: Option<RegisteredUri>,
        /// Pre-registered request object URIs.
        pub request_uris: Vec<RegisteredUri>,
        /// The registry's members beyond RFC 7591 and OpenID Connect DCR.
        pub registry_members: RegistryMembers,
        /// The operator's extension members (`[registration] extra_metadata`).
        pub extra_metadata: ExtraMetadata,
    }
}

/// A document sent to be registered, with the redirect rules of the policy
/// it is registered under: it must meet every rule.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The document as sent.
    pub document: MetadataDocument,
    /// The policy's redirect URI rules.
    pub rules: RedirectRules,
}

/// A document that was validated when it was registered (what the store
/// holds): it is decoded, not validated again, so that rules added since
/// leave no stored client unreadable.
#[derive(Debug, Clone)]
pub struct Registered(pub MetadataDocument);

/// How a document is read: what a validator checks besides decoding.
#[derive(Debug, Clone, Copy)]
enum Reading<'a> {
    /// Every rule, redirect URIs under these.
    Submitted(&'a RedirectRules),
    /// Decoding only.
    Registered,
}

impl Reading<'_> {
    /// Applies `rule` to a submitted document; a registered one met it.
    fn check(self, rule: impl FnOnce() -> Result<(), MetadataError>) -> Result<(), MetadataError> {
        match self {
            Self::Submitted(_) => rule(),
            Self::Registered => Ok(()),
        }
    }

    /// Parses a URI member: with `parse`, the member's own rules, when
    /// submitted; as any absolute URI when registered.
    fn uri(
        self,
        text: &str,
        parse: fn(&str) -> Result<RegisteredUri, String>,
    ) -> Result<RegisteredUri, String> {
        match self {
            Self::Submitted(_) => parse(text),
            Self::Registered => RegisteredUri::parse(text),
        }
    }

    /// Reads the URI member `field`, which a submitted document must give as
    /// an https URI without a fragment.
    fn https_uri(
        self,
        text: Option<&str>,
        field: &str,
    ) -> Result<Option<RegisteredUri>, MetadataError> {
        self.uri_member(text, field, RegisteredUri::parse_https)
    }

    /// Reads the URI member `field` (when given), which a submitted
    /// document must give in the form `parse` accepts.
    fn uri_member(
        self,
        text: Option<&str>,
        field: &str,
        parse: fn(&str) -> Result<RegisteredUri, String>,
    ) -> Result<Option<RegisteredUri>, MetadataError> {
        text.map(|text| self.uri_named(text, field, parse))
            .transpose()
    }

    /// Reads `text`, a value of the URI member `field`, which a submitted
    /// document must give in the form `parse` accepts.
    fn uri_named(
        self,
        text: &str,
        field: &str,
        parse: fn(&str) -> Result<RegisteredUri, String>,
    ) -> Result<RegisteredUri, MetadataError> {
        self.uri(text, parse)
            .map_err(|e| invalid(format!("{field}: {e}")))
    }
}

impl TryFrom<Submitted> for ClientMetadata {
    type Error = MetadataError;

    /// Every group's validator with every rule, then what only a
    /// registration must meet.
    fn try_from(submitted: Submitted) -> Result<Self, MetadataError> {
        let Submitted { document, rules } = submitted;
        let metadata = Self::read(document, Reading::Submitted(&rules))?;
        metadata.check_registration(&rules)?;
        Ok(metadata)
    }
}

impl TryFrom<Registered> for ClientMetadata {
    type Error = MetadataError;

    /// Decodes a registered document, with the same defaults and without
    /// the rules of a registration.
    fn try_from(registered: Registered) -> Result<Self, MetadataError> {
        Self::read(registered.0, Reading::Registered)
    }
}

impl ClientMetadata {
    /// The hosts of its redirect URIs, with ASCII letters in lower case,
    /// each once, in the order first named; a URI without a host gives none.
    #[must_use]
    pub fn redirect_hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = Vec::new();
        for host in self
            .redirect_uris
            .iter()
            .filter_map(|uri| uri.url().host_str())
            .filter(|host| !host.is_empty())
            .map(str::to_ascii_lowercase)
        {
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
        hosts
    }

    /// Validates a metadata document under a policy's redirect `rules`,
    /// applying the defaults of RFC 7591 and OpenID Connect DCR; unknown
    /// members are ignored. `TryFrom` of a [`Submitted`] document.
    pub fn validate(
        document: MetadataDocument,
        rules: RedirectRules,
    ) -> Result<Self, MetadataError> {
        Self::try_from(Submitted { document, rules })
    }

    /// Reads metadata back from the store: `TryFrom` of a [`Registered`]
    /// document, decoded without the registration rules.
    pub fn from_stored(document: MetadataDocument) -> Result<Self, MetadataError> {
        Self::try_from(Registered(document))
    }

    /// Whether the gateway must issue a client secret for this client.
    #[must_use]
    pub fn needs_client_secret(&self) -> bool {
        self.token_endpoint_auth_method.uses_client_secret()
    }

    /// Reads a document group by group, in a fixed order, so that the first
    /// fault found is the one reported. Large values (names, key sets,
    /// lists) are taken out of the document, not copied.
    fn read(mut doc: MetadataDocument, reading: Reading<'_>) -> Result<Self, MetadataError> {
        let auth = grants::auth_method(&doc)?;
        let application_type = redirects::application_type(&doc)?;
        let (grant_types, response_types) = grants::read(&doc, auth, reading)?;
        let redirect_uris = redirects::read(&doc, &grant_types, application_type, reading)?;
        let keys = keys::read(doc.jwks_uri.as_deref(), doc.jwks.take(), auth, reading)?;
        let auth_alg = jose::auth_signing_alg(&doc, auth, reading)?;
        let id_token_alg = jose::id_token_signing_alg(&doc, &response_types, reading)?;
        let (subject_type, sector_identifier_uri) =
            redirects::subject(&doc, &redirect_uris, reading)?;
        let registry_members =
            registry::read(&mut doc, &redirect_uris, &grant_types, auth, reading)?;
        let other = std::mem::take(&mut doc.other);
        let extra_metadata = match reading {
            // Only the members the operator lists, picked by the service.
            Reading::Submitted(_) => ExtraMetadata::default(),
            Reading::Registered => ExtraMetadata::registered(&other),
        };
        let uris = |plain, field| localized::read_uris(plain, &other, field, reading);
        let (name, acr) = (doc.client_name.take(), doc.default_acr_values.take());
        Ok(Self {
            redirect_uris,
            token_endpoint_auth_method: auth,
            grant_types,
            response_types,
            client_name: localized::read(name, &other, "client_name", reading, Ok)?,
            client_uri: uris(doc.client_uri.take(), "client_uri")?,
            logo_uri: uris(doc.logo_uri.take(), "logo_uri")?,
            tos_uri: uris(doc.tos_uri.take(), "tos_uri")?,
            policy_uri: uris(doc.policy_uri.take(), "policy_uri")?,
            scope: read_scope(doc.scope.take(), reading)?,
            contacts: read_strings(doc.contacts.take(), "contacts", reading)?,
            keys,
            software_id: doc.software_id.take(),
            software_version: doc.software_version.take(),
            application_type,
            sector_identifier_uri,
            subject_type,
            id_token_signed_response_alg: id_token_alg,
            id_token_encryption: jose::encryption(&doc, Encrypted::IdToken)?,
            userinfo_signed_response_alg: jose::alg(&doc, Signed::UserInfo)?,
            userinfo_encryption: jose::encryption(&doc, Encrypted::UserInfo)?,
            request_object_signing_alg: jose::alg(&doc, Signed::RequestObject)?,
            request_object_encryption: jose::encryption(&doc, Encrypted::RequestObject)?,
            token_endpoint_auth_signing_alg: auth_alg,
            default_max_age: doc.default_max_age,
            require_auth_time: doc.require_auth_time,
            default_acr_values: read_strings(acr, "default_acr_values", reading)?,
            initiate_login_uri: reading
                .https_uri(doc.initiate_login_uri.as_deref(), "initiate_login_uri")?,
            request_uris: List(Uri(https_allowing_fragment)).read(
                doc.request_uris.take(),
                "request_uris",
                reading,
            )?,
            registry_members,
            extra_metadata,
        })
    }

    /// What a registration must meet besides what [`ClientMetadata::read`]
    /// checks: redirect URIs exactly as URL parsers read them and in the
    /// schemes RFC 8252 allows, no control characters or wildcard hosts in
    /// any URI, no private key material anywhere in `jwks`, and a usable
    /// signing key for `private_key_jwt`.
    fn check_registration(&self, rules: &RedirectRules) -> Result<(), MetadataError> {
        redirects::check_registration(self, rules)?;
        for (field, uri) in self.other_uris() {
            uri.check_text()
                .map_err(|e| invalid(format!("{field}: {e}")))?;
        }
        keys::check_registration(self)
    }

    /// Every registered URI other than the redirect URIs, with its member name.
    fn other_uris(&self) -> impl Iterator<Item = (String, &RegisteredUri)> {
        let localized = [
            ("client_uri", &self.client_uri),
            ("logo_uri", &self.logo_uri),
            ("tos_uri", &self.tos_uri),
            ("policy_uri", &self.policy_uri),
        ]
        .into_iter()
        .flat_map(|(field, value)| {
            let plain = value.plain.iter().map(move |uri| (field.to_owned(), uri));
            let tagged = value
                .tagged
                .iter()
                .map(move |(tag, uri)| (format!("{field}#{tag}"), uri));
            plain.chain(tagged)
        });
        let jwks_uri = match &self.keys {
            Some(ClientKeys::Uri(uri)) => Some(("jwks_uri".to_owned(), uri)),
            _ => None,
        };
        let sector = self.sector_identifier_uri.as_ref();
        let login = self.initiate_login_uri.as_ref();
        let registry = self
            .registry_members
            .uris()
            .map(|(field, uri)| (field.to_owned(), uri));
        localized
            .chain(registry)
            .chain(jwks_uri)
            .chain(sector.map(|uri| ("sector_identifier_uri".to_owned(), uri)))
            .chain(login.map(|uri| ("initiate_login_uri".to_owned(), uri)))
            .chain(
                self.request_uris
                    .iter()
                    .map(|uri| ("request_uris".to_owned(), uri)),
            )
    }
}

/// RFC 6749 §3.3: whether `token` is one scope token, printable ASCII
/// without space, `"` or `\\`.
#[must_use]
pub fn is_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// Reads `scope`; a submitted one is scope tokens separated by single
/// spaces (RFC 6749 §3.3).
fn read_scope(
    scope: Option<String>,
    reading: Reading<'_>,
) -> Result<Option<String>, MetadataError> {
    if let Some(scope) = &scope {
        reading.check(|| {
            if scope.split(' ').all(is_scope_token) {
                return Ok(());
            }
            Err(invalid(format!(
                "scope `{}` must be scope tokens separated by single spaces",
                scope.escape_debug()
            )))
        })?;
    }
    Ok(scope)
}

/// Reads a list of strings; a submitted one has no empty or blank string.
fn read_strings(
    list: Option<Vec<String>>,
    field: &str,
    reading: Reading<'_>,
) -> Result<Vec<String>, MetadataError> {
    let list = list.unwrap_or_default();
    reading.check(|| {
        if list.iter().any(|s| s.trim().is_empty()) {
            return Err(invalid(format!("{field} must not contain empty strings")));
        }
        Ok(())
    })?;
    Ok(list)
}

/// Parses an https URI that may carry a fragment, as `request_uris` do.
fn https_allowing_fragment(text: &str) -> Result<RegisteredUri, String> {
    let uri = RegisteredUri::parse(text)?;
    if uri.url().scheme() != "https" {
        return Err(format!("`{text}` must use https"));
    }
    Ok(uri)
}
