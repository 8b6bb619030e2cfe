//! The rows the store reads and writes: the columns of a client, its
//! metadata as the JSON document it was registered with, what the
//! directory searches it by (its name key and redirect hosts), and initial
//! access tokens.

use std::sync::Arc;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::metadata::Registered;
use crate::domain::{
    ClientId, ClientMetadata, ClientState, InitialAccessTokenRecord, MetadataDocument,
    RegisteredClient, SecretHash, VouchedClaims,
};
use crate::store::StoreError;

/// The columns of a new client, [`NewRow`]'s in order.
pub(super) const INSERT_COLUMNS: [&str; 15] = [
    "client_id",
    "state",
    "metadata",
    "registration_token_hash",
    "client_secret_hash",
    "client_secret_expires_at",
    "client_id_issued_at",
    "provider_state",
    "policy",
    "software_id",
    "expires_at",
    "initial_access_token_id",
    "vouched",
    "updated_at",
    "client_name_key",
];

/// The columns of a row of `client_redirect_hosts`, in the order
/// [`NewRow::host_rows`] gives them: the host, and the client's
/// registration time, id, software and name key.
pub(super) const HOST_COLUMNS: [&str; 5] = [
    "host",
    "client_id_issued_at",
    "client_id",
    "software_id",
    "client_name_key",
];

/// The columns a client is read from: those of a [`ClientRow`].
pub(super) const COLUMNS: &str = "client_id, state, metadata, registration_token_hash, \
                                  client_secret_hash, client_secret_expires_at, \
                                  client_id_issued_at, provider_state, policy, software_id, \
                                  expires_at, initial_access_token_id, revision, lease_until, \
                                  vouched";

/// The columns an initial access token is read from and written to.
pub(super) const TOKEN_COLUMNS: &str =
    "id, token_hash, uses_left, expires_at, policy, note, created_at, revoked";

/// The metadata column: the client's document, as JSON.
pub(super) fn metadata_json(client: &RegisteredClient) -> Result<String, StoreError> {
    crate::json::exact_string(&client.metadata.to_document()).map_err(|e| StoreError::Corrupt {
        client_id: client.client_id.to_string(),
        reason: e.to_string(),
    })
}

/// The vouched column: what a software statement vouched for, as JSON.
pub(super) fn vouched_json(client: &RegisteredClient) -> Result<Option<String>, StoreError> {
    client
        .vouched
        .as_ref()
        .map(|claims| serde_json::to_string(&claims.0))
        .transpose()
        .map_err(|e| StoreError::Corrupt {
            client_id: client.client_id.to_string(),
            reason: e.to_string(),
        })
}

/// Text the directory searches by, as it is kept and compared: ASCII
/// letters in lower case (URL hosts are ASCII once parsed; names are
/// matched ignoring ASCII case only).
pub(super) fn search_key(text: &str) -> String {
    text.to_ascii_lowercase()
}

/// The name key column: the client's `client_name` (the one without a
/// language tag) as a [`search_key`].
pub(super) fn name_key(client: &RegisteredClient) -> Option<String> {
    client.metadata.client_name.plain.as_deref().map(search_key)
}

/// The client's rows of `client_redirect_hosts`: the distinct hosts of its
/// redirect URIs, in lower case as [`search_key`] makes them
/// ([`crate::domain::ClientMetadata::redirect_hosts`]).
pub(super) fn redirect_hosts(client: &RegisteredClient) -> Vec<String> {
    client.metadata.redirect_hosts()
}

/// A `clients` row as the database holds it: columns, not yet domain values.
#[derive(sqlx::FromRow)]
pub(super) struct ClientRow {
    client_id: String,
    state: String,
    /// The metadata document, as JSON, that the client was registered with.
    metadata: String,
    registration_token_hash: Vec<u8>,
    client_secret_hash: Option<Vec<u8>>,
    client_secret_expires_at: i64,
    client_id_issued_at: i64,
    /// Sealed; the store holds the key that opens it.
    provider_state: Option<Vec<u8>>,
    policy: Option<String>,
    expires_at: Option<i64>,
    initial_access_token_id: Option<String>,
    revision: i64,
    lease_until: Option<i64>,
    vouched: Option<String>,
}

impl ClientRow {
    /// The client this row holds, with its provider state still sealed. The
    /// metadata is decoded as [`Registered`]: it met the registration rules
    /// when it was written, and is not validated again.
    pub(super) fn decode(self) -> Result<(RegisteredClient, Option<Vec<u8>>), StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            client_id: self.client_id.clone(),
            reason,
        };
        let state = ClientState::parse(&self.state)
            .ok_or_else(|| corrupt(format!("state `{}`", self.state)))?;
        let document: MetadataDocument =
            serde_json::from_str(&self.metadata).map_err(|e| corrupt(e.to_string()))?;
        let metadata =
            ClientMetadata::try_from(Registered(document)).map_err(|e| corrupt(e.to_string()))?;
        let registration_token = SecretHash::from_bytes(&self.registration_token_hash)
            .ok_or_else(|| corrupt("token hash length".into()))?;
        let client_secret = self
            .client_secret_hash
            .map(|s| SecretHash::from_bytes(&s).ok_or_else(|| corrupt("secret hash length".into())))
            .transpose()?;
        let vouched = self
            .vouched
            .map(|text| serde_json::from_str(&text).map(VouchedClaims))
            .transpose()
            .map_err(|e| corrupt(format!("vouched claims: {e}")))?;
        let client = RegisteredClient {
            client_id: ClientId::new(self.client_id),
            metadata: Arc::new(metadata),
            issued_at: self.client_id_issued_at,
            registration_token,
            client_secret,
            client_secret_expires_at: self.client_secret_expires_at,
            state,
            provider_state: None,
            policy: self.policy.unwrap_or_else(|| "default".to_owned()),
            expires_at: self.expires_at,
            initial_access_token_id: self.initial_access_token_id,
            revision: self.revision,
            lease_until: self.lease_until,
            vouched,
        };
        Ok((client, self.provider_state))
    }
}

/// An initial access token from its row.
pub(super) fn decode_token(row: &AnyRow) -> Result<InitialAccessTokenRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let hash: Vec<u8> = row.try_get("token_hash")?;
    let hash = SecretHash::from_bytes(&hash).ok_or_else(|| StoreError::Corrupt {
        client_id: format!("initial access token {id}"),
        reason: "token hash length".into(),
    })?;
    Ok(InitialAccessTokenRecord {
        id,
        hash,
        uses_left: row.try_get("uses_left")?,
        expires_at: row.try_get("expires_at")?,
        policy: row.try_get("policy")?,
        note: row.try_get("note")?,
        created_at: row.try_get("created_at")?,
        revoked: row.try_get::<i64, _>("revoked")? != 0,
    })
}

/// A client row to insert, owned, for the writer task.
pub(super) struct NewRow {
    pub(super) client_id: String,
    pub(super) state: &'static str,
    pub(super) metadata: String,
    pub(super) registration_token: Vec<u8>,
    pub(super) client_secret: Option<Vec<u8>>,
    pub(super) client_secret_expires_at: i64,
    pub(super) issued_at: i64,
    pub(super) provider_state: Option<Vec<u8>>,
    pub(super) policy: String,
    pub(super) software_id: Option<String>,
    pub(super) expires_at: Option<i64>,
    pub(super) initial_access_token_id: Option<String>,
    pub(super) vouched: Option<String>,
    pub(super) updated_at: i64,
    pub(super) name_key: Option<String>,
    /// Most clients its software may have (pending and active), if capped.
    pub(super) software_limit: Option<i64>,
    /// The distinct hosts of its redirect URIs ([`redirect_hosts`]).
    pub(super) hosts: Vec<String>,
}

impl NewRow {
    /// Its rows of `client_redirect_hosts`, each as [`HOST_COLUMNS`].
    pub(super) fn host_rows(&self) -> impl Iterator<Item = HostRow<'_>> {
        self.hosts.iter().map(|host| HostRow {
            host,
            issued_at: self.issued_at,
            client_id: &self.client_id,
            software_id: self.software_id.as_deref(),
            name_key: self.name_key.as_deref(),
        })
    }
}

/// A row of `client_redirect_hosts`: [`HOST_COLUMNS`].
pub(super) struct HostRow<'a> {
    pub(super) host: &'a str,
    pub(super) issued_at: i64,
    pub(super) client_id: &'a str,
    pub(super) software_id: Option<&'a str>,
    pub(super) name_key: Option<&'a str>,
}
