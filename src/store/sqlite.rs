//! The embedded SQLite store: one file, WAL mode, `synchronous = FULL`, so a
//! write that returned survives a crash of the process or of the machine.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::sealing::Sealer;
use super::{ClientStore, StoreError};
use crate::clock::Clock;
use crate::domain::{
    ClientId, ClientMetadata, ClientState, MetadataDocument, ProviderState, RedirectRules,
    RegisteredClient, SecretHash,
};
use std::sync::Arc;

/// Connections kept open; SQLite serializes writers, readers run in parallel.
const MAX_CONNECTIONS: u32 = 8;

/// The SQLite implementation of [`ClientStore`].
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    clock: Arc<dyn Clock>,
    sealer: Option<Sealer>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` and applies the
    /// embedded migrations. Provider state is sealed with `sealer`.
    pub async fn open(
        url: &str,
        clock: Arc<dyn Clock>,
        sealer: Option<Sealer>,
    ) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        if let Some(parent) = Path::new(options.get_filename()).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError::Open(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        Ok(Self {
            pool,
            clock,
            sealer,
        })
    }

    fn seal(&self, client: &RegisteredClient) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(state) = &client.provider_state else {
            return Ok(None);
        };
        let failure = |reason: String| StoreError::Sealing {
            client_id: client.client_id.to_string(),
            reason,
        };
        let sealer = self
            .sealer
            .as_ref()
            .ok_or_else(|| failure("no store.encryption_key is configured".into()))?;
        let plain = serde_json::to_vec(&state.0).map_err(|e| failure(e.to_string()))?;
        sealer
            .seal(&plain, client.client_id.as_str())
            .map(Some)
            .map_err(|e| failure(e.to_string()))
    }

    fn unseal(
        &self,
        client_id: &str,
        sealed: Option<Vec<u8>>,
    ) -> Result<Option<ProviderState>, StoreError> {
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let failure = |reason: String| StoreError::Sealing {
            client_id: client_id.to_owned(),
            reason,
        };
        let sealer = self
            .sealer
            .as_ref()
            .ok_or_else(|| failure("no store.encryption_key is configured".into()))?;
        let plain = sealer
            .open(&sealed, client_id)
            .map_err(|e| failure(e.to_string()))?;
        serde_json::from_slice(&plain)
            .map(|value| Some(ProviderState(value)))
            .map_err(|e| failure(e.to_string()))
    }

    fn read_row(&self, row: &sqlx::sqlite::SqliteRow) -> Result<RegisteredClient, StoreError> {
        let mut client = decode_row(row)?;
        client.provider_state =
            self.unseal(client.client_id.as_str(), row.try_get("provider_state")?)?;
        Ok(client)
    }
}

const COLUMNS: &str = "client_id, state, metadata, registration_token_hash, client_secret_hash, \
                       client_secret_expires_at, client_id_issued_at, provider_state";

fn metadata_json(client: &RegisteredClient) -> Result<String, StoreError> {
    serde_json::to_string(&client.metadata.to_document()).map_err(|e| StoreError::Corrupt {
        client_id: client.client_id.to_string(),
        reason: e.to_string(),
    })
}

fn decode_row(row: &sqlx::sqlite::SqliteRow) -> Result<RegisteredClient, StoreError> {
    let client_id: String = row.try_get("client_id")?;
    let corrupt = |reason: String| StoreError::Corrupt {
        client_id: client_id.clone(),
        reason,
    };
    let state: String = row.try_get("state")?;
    let state = ClientState::parse(&state).ok_or_else(|| corrupt(format!("state `{state}`")))?;
    let metadata: String = row.try_get("metadata")?;
    let document: MetadataDocument =
        serde_json::from_str(&metadata).map_err(|e| corrupt(e.to_string()))?;
    let metadata = ClientMetadata::validate(document, RedirectRules::PERMISSIVE)
        .map_err(|e| corrupt(e.to_string()))?;
    let token: Vec<u8> = row.try_get("registration_token_hash")?;
    let registration_token =
        SecretHash::from_bytes(&token).ok_or_else(|| corrupt("token hash length".into()))?;
    let secret: Option<Vec<u8>> = row.try_get("client_secret_hash")?;
    let client_secret = secret
        .map(|s| SecretHash::from_bytes(&s).ok_or_else(|| corrupt("secret hash length".into())))
        .transpose()?;
    Ok(RegisteredClient {
        client_id: ClientId::new(client_id.clone()),
        metadata,
        issued_at: row.try_get("client_id_issued_at")?,
        registration_token,
        client_secret,
        client_secret_expires_at: row.try_get("client_secret_expires_at")?,
        state,
        provider_state: None,
    })
}

#[async_trait]
impl ClientStore for SqliteStore {
    async fn insert(&self, client: &RegisteredClient) -> Result<(), StoreError> {
        let result = sqlx::query(&format!(
            "INSERT INTO clients ({COLUMNS}, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(client.client_id.as_str())
        .bind(client.state.as_str())
        .bind(metadata_json(client)?)
        .bind(client.registration_token.as_bytes())
        .bind(client.client_secret.as_ref().map(SecretHash::as_bytes))
        .bind(client.client_secret_expires_at)
        .bind(client.issued_at)
        .bind(self.seal(client)?)
        .bind(self.clock.now_unix())
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::Duplicate(client.client_id.clone()))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn get(&self, id: &ClientId) -> Result<Option<RegisteredClient>, StoreError> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM clients WHERE client_id = ?"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(|row| self.read_row(row))
        .transpose()
    }

    async fn activate(
        &self,
        pending_id: &ClientId,
        client: &RegisteredClient,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE clients SET client_id = ?, state = 'active', client_secret_hash = ?, \
             provider_state = ?, updated_at = ? WHERE client_id = ? AND state = 'pending'",
        )
        .bind(client.client_id.as_str())
        .bind(client.client_secret.as_ref().map(SecretHash::as_bytes))
        .bind(self.seal(client)?)
        .bind(self.clock.now_unix())
        .bind(pending_id.as_str())
        .execute(&self.pool)
        .await;
        match result {
            Ok(done) => Ok(done.rows_affected() == 1),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::Duplicate(client.client_id.clone()))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn update(&self, client: &RegisteredClient) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE clients SET metadata = ?, registration_token_hash = ?, \
             client_secret_hash = ?, client_secret_expires_at = ?, provider_state = ?, \
             updated_at = ? WHERE client_id = ? AND state = 'active'",
        )
        .bind(metadata_json(client)?)
        .bind(client.registration_token.as_bytes())
        .bind(client.client_secret.as_ref().map(SecretHash::as_bytes))
        .bind(client.client_secret_expires_at)
        .bind(self.seal(client)?)
        .bind(self.clock.now_unix())
        .bind(client.client_id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn set_state(&self, id: &ClientId, state: ClientState) -> Result<bool, StoreError> {
        let result =
            sqlx::query("UPDATE clients SET state = ?, updated_at = ? WHERE client_id = ?")
                .bind(state.as_str())
                .bind(self.clock.now_unix())
                .bind(id.as_str())
                .execute(&self.pool)
                .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn remove(&self, id: &ClientId) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM clients WHERE client_id = ?")
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn list(
        &self,
        after: Option<&ClientId>,
        limit: u32,
    ) -> Result<Vec<RegisteredClient>, StoreError> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM clients WHERE client_id > ? ORDER BY client_id LIMIT ?"
        ))
        .bind(after.map_or("", ClientId::as_str))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| self.read_row(row))
        .collect()
    }

    async fn list_stale(
        &self,
        state: ClientState,
        updated_before: i64,
        limit: u32,
    ) -> Result<Vec<RegisteredClient>, StoreError> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM clients WHERE state = ? AND updated_at <= ? \
             ORDER BY updated_at LIMIT ?"
        ))
        .bind(state.as_str())
        .bind(updated_before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| self.read_row(row))
        .collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
