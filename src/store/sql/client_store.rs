//! [`ClientStore`], [`ClientQueries`], [`InitialAccessTokens`] and
//! [`Health`] on SQL: each method one query, written once for both
//! databases.

use async_trait::async_trait;
use sqlx::Row;
use tokio::sync::oneshot;

use super::rows::{
    COLUMNS, NewRow, TOKEN_COLUMNS, decode_token, metadata_json, name_key, redirect_hosts,
    vouched_json,
};
use super::writer::{PendingWrite, Statement, Write, Written};
use super::{SOFTWARE_COUNT, SqlStore, as_bigint};
use crate::domain::{
    ClientId, ClientState, InitialAccessTokenRecord, ProviderState, RegisteredClient, SecretHash,
};
use crate::store::{ClientQueries, ClientStore, Health, InitialAccessTokens, StoreError};

/// Whether one row was affected, with a unique-key clash as [`StoreError::Duplicate`].
fn unique_violation(
    result: Result<sqlx::any::AnyQueryResult, sqlx::Error>,
    id: &ClientId,
) -> Result<bool, StoreError> {
    match result {
        Ok(done) => Ok(done.rows_affected() == 1),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(StoreError::Duplicate(id.clone()))
        }
        Err(e) => Err(e.into()),
    }
}

#[async_trait]
impl ClientStore for SqlStore {
    /// Inserts go through the group-commit writer, like every other write a
    /// request waits for: concurrent writes share one durable commit.
    async fn insert(
        &self,
        client: &RegisteredClient,
        software_limit: Option<u64>,
    ) -> Result<(), StoreError> {
        let row = NewRow {
            client_id: client.client_id.to_string(),
            state: client.state.as_str(),
            metadata: metadata_json(client)?,
            registration_token: client.registration_token.as_bytes().to_vec(),
            client_secret: client.client_secret.as_ref().map(|h| h.as_bytes().to_vec()),
            client_secret_expires_at: client.client_secret_expires_at,
            issued_at: client.issued_at,
            provider_state: self.seal(client)?,
            policy: client.policy.clone(),
            software_id: client.counted_software_id().map(str::to_owned),
            expires_at: client.expires_at,
            initial_access_token_id: client.initial_access_token_id.clone(),
            vouched: vouched_json(client)?,
            updated_at: self.clock.now_unix(),
            name_key: name_key(client),
            software_limit: software_limit.map(as_bigint),
            hosts: redirect_hosts(client),
        };
        match self.write(Write::Insert(Box::new(row))).await? {
            Written::Inserted => Ok(()),
            Written::Duplicate => Err(StoreError::Duplicate(client.client_id.clone())),
            Written::SoftwareFull => Err(StoreError::SoftwareFull(
                client.counted_software_id().unwrap_or_default().to_owned(),
            )),
            Written::Rows(_) => Err(StoreError::Write(
                "the writer answered an insert as a statement".into(),
            )),
        }
    }

    async fn get(&self, id: &ClientId) -> Result<Option<RegisteredClient>, StoreError> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM clients WHERE client_id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(|row| self.read_row(row))
        .transpose()
    }

    /// The metadata stays the pending row's; its redirect hosts follow a
    /// new id by their foreign key (`ON UPDATE CASCADE`), in this statement.
    async fn activate(
        &self,
        pending_id: &ClientId,
        client: &RegisteredClient,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE clients SET client_id = $1, state = 'active', client_secret_hash = $2, \
             client_secret_expires_at = $3, provider_state = $4, updated_at = $5 \
             WHERE client_id = $6 AND state = 'pending'",
        )
        .bind(client.client_id.as_str())
        .bind(client.client_secret.as_ref().map(SecretHash::as_bytes))
        .bind(client.client_secret_expires_at)
        .bind(self.seal(client)?)
        .bind(self.clock.now_unix())
        .bind(pending_id.as_str())
        .execute(&self.pool)
        .await;
        unique_violation(result, &client.client_id)
    }

    /// The redirect hosts follow the new id, as on activation.
    async fn claim_pending(
        &self,
        pending_id: &ClientId,
        provider_id: &ClientId,
        state: &ProviderState,
    ) -> Result<bool, StoreError> {
        let sealed = self.seal_state(provider_id.as_str(), state)?;
        let result = sqlx::query(
            "UPDATE clients SET client_id = $1, provider_state = $2, updated_at = $3 \
             WHERE client_id = $4 AND state = 'pending'",
        )
        .bind(provider_id.as_str())
        .bind(sealed)
        .bind(self.clock.now_unix())
        .bind(pending_id.as_str())
        .execute(&self.pool)
        .await;
        match unique_violation(result, provider_id) {
            Err(StoreError::Duplicate(_)) => Ok(false),
            other => other,
        }
    }

    async fn lease(
        &self,
        id: &ClientId,
        revision: i64,
        now: i64,
        until: i64,
    ) -> Result<Option<i64>, StoreError> {
        let changed = self
            .change(
                Statement::new(
                    "UPDATE clients SET lease_until = $1, revision = revision + 1, updated_at = $2 \
                     WHERE client_id = $3 AND state = 'active' AND revision = $4 \
                     AND (lease_until IS NULL OR lease_until <= $2)",
                )
                .integer(Some(until))
                .integer(Some(now))
                .text(Some(id.as_str()))
                .integer(Some(revision)),
            )
            .await?;
        Ok(changed.then_some(revision + 1))
    }

    async fn release(&self, id: &ClientId, revision: i64) -> Result<bool, StoreError> {
        self.change(
            Statement::new(
                "UPDATE clients SET lease_until = NULL, revision = revision + 1, updated_at = $1 \
                 WHERE client_id = $2 AND revision = $3",
            )
            .integer(Some(self.clock.now_unix()))
            .text(Some(id.as_str()))
            .integer(Some(revision)),
        )
        .await
    }

    /// The client's redirect hosts are written anew with its metadata, in
    /// the same transaction.
    async fn update(&self, client: &RegisteredClient) -> Result<bool, StoreError> {
        let id = client.client_id.as_str();
        let mut statement = Statement::new(
            "UPDATE clients SET metadata = $1, registration_token_hash = $2, \
             client_secret_hash = $3, client_secret_expires_at = $4, provider_state = $5, \
             software_id = $6, updated_at = $7, lease_until = NULL, \
             revision = revision + 1, vouched = $10, client_name_key = $11 \
             WHERE client_id = $8 AND state = 'active' AND revision = $9",
        )
        .text(Some(metadata_json(client)?))
        .bytes(Some(client.registration_token.as_bytes()))
        .bytes(client.client_secret.as_ref().map(SecretHash::as_bytes))
        .integer(Some(client.client_secret_expires_at))
        .bytes(self.seal(client)?)
        .text(client.counted_software_id())
        .integer(Some(self.clock.now_unix()))
        .text(Some(id))
        .integer(Some(client.revision))
        .text(vouched_json(client)?)
        .text(name_key(client))
        .then(
            Statement::new("DELETE FROM client_redirect_hosts WHERE client_id = $1").text(Some(id)),
        );
        for host in redirect_hosts(client) {
            // The client's columns as the update left them.
            statement = statement.then(
                Statement::new(
                    "INSERT INTO client_redirect_hosts \
                     (host, client_id_issued_at, client_id, software_id, client_name_key) \
                     SELECT $1, client_id_issued_at, client_id, software_id, client_name_key \
                     FROM clients WHERE client_id = $2 ON CONFLICT DO NOTHING",
                )
                .text(Some(host))
                .text(Some(id)),
            );
        }
        self.change(statement).await
    }

    async fn begin_delete(&self, id: &ClientId, now: i64) -> Result<bool, StoreError> {
        self.change(
            Statement::new(
                "UPDATE clients SET state = 'deleting', revision = revision + 1, updated_at = $1 \
                 WHERE client_id = $2 AND state = 'active' \
                 AND (lease_until IS NULL OR lease_until <= $1)",
            )
            .integer(Some(now))
            .text(Some(id.as_str())),
        )
        .await
    }

    async fn set_state(&self, id: &ClientId, state: ClientState) -> Result<bool, StoreError> {
        self.change(
            Statement::new(
                "UPDATE clients SET state = $1, revision = revision + 1, updated_at = $2 \
                 WHERE client_id = $3",
            )
            .text(Some(state.as_str()))
            .integer(Some(self.clock.now_unix()))
            .text(Some(id.as_str())),
        )
        .await
    }

    async fn remove(&self, id: &ClientId) -> Result<bool, StoreError> {
        self.change(
            Statement::new("DELETE FROM clients WHERE client_id = $1").text(Some(id.as_str())),
        )
        .await
    }

    async fn delete_active(&self, id: &ClientId, now: i64) -> Result<bool, StoreError> {
        self.change(
            Statement::new(
                "DELETE FROM clients WHERE client_id = $1 AND state = 'active' \
                 AND (lease_until IS NULL OR lease_until <= $2)",
            )
            .text(Some(id.as_str()))
            .integer(Some(now)),
        )
        .await
    }
}

#[async_trait]
impl ClientQueries for SqlStore {
    async fn list(
        &self,
        after: Option<&ClientId>,
        limit: u32,
    ) -> Result<Vec<RegisteredClient>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM clients WHERE client_id > $1 ORDER BY client_id LIMIT $2"
        );
        self.fetch_clients(
            sqlx::query(&sql)
                .bind(after.map_or("", ClientId::as_str))
                .bind(i64::from(limit)),
        )
        .await
    }

    async fn list_stale(
        &self,
        state: ClientState,
        updated_before: i64,
        limit: u32,
    ) -> Result<Vec<RegisteredClient>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM clients WHERE state = $1 AND updated_at <= $2 \
             ORDER BY updated_at LIMIT $3"
        );
        self.fetch_clients(
            sqlx::query(&sql)
                .bind(state.as_str())
                .bind(updated_before)
                .bind(i64::from(limit)),
        )
        .await
    }

    async fn list_lapsed_leases(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<RegisteredClient>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM clients WHERE state = 'active' AND lease_until <= $1 \
             ORDER BY lease_until LIMIT $2"
        );
        self.fetch_clients(sqlx::query(&sql).bind(now).bind(i64::from(limit)))
            .await
    }

    async fn count_software(&self, software_id: &str) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query(SOFTWARE_COUNT)
            .bind(software_id)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn list_expired(
        &self,
        now: i64,
        after: Option<(i64, &ClientId)>,
        limit: u32,
    ) -> Result<Vec<RegisteredClient>, StoreError> {
        // One range of the index on (state, expires_at, client_id).
        let sql = format!(
            "SELECT {COLUMNS} FROM clients WHERE state = 'active' AND expires_at <= $1 \
             AND (expires_at, client_id) > ($2, $3) ORDER BY expires_at, client_id LIMIT $4"
        );
        let (after_expiry, after_id) = after.map_or((i64::MIN, ""), |(at, id)| (at, id.as_str()));
        self.fetch_clients(
            sqlx::query(&sql)
                .bind(now)
                .bind(after_expiry)
                .bind(after_id)
                .bind(i64::from(limit)),
        )
        .await
    }
}

#[async_trait]
impl InitialAccessTokens for SqlStore {
    async fn insert_initial_access_token(
        &self,
        token: &InitialAccessTokenRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO initial_access_tokens ({TOKEN_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(token.id.as_str())
        .bind(token.hash.as_bytes())
        .bind(token.uses_left)
        .bind(token.expires_at)
        .bind(token.policy.as_deref())
        .bind(token.note.as_deref())
        .bind(token.created_at)
        .bind(i64::from(token.revoked))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn find_initial_access_token(
        &self,
        hash: &SecretHash,
    ) -> Result<Option<InitialAccessTokenRecord>, StoreError> {
        sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM initial_access_tokens WHERE token_hash = $1"
        ))
        .bind(hash.as_bytes())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(decode_token)
        .transpose()
    }

    async fn spend_initial_access_token(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        // One conditional UPDATE: the database serializes concurrent spenders.
        let result = sqlx::query(
            "UPDATE initial_access_tokens SET uses_left = uses_left - 1 \
             WHERE id = $1 AND revoked = 0 AND (expires_at IS NULL OR expires_at > $2) \
             AND (uses_left IS NULL OR uses_left > 0)",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn refund_initial_access_token(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE initial_access_tokens SET uses_left = uses_left + 1 \
             WHERE id = $1 AND uses_left IS NOT NULL",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_initial_access_tokens(
        &self,
    ) -> Result<Vec<InitialAccessTokenRecord>, StoreError> {
        sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM initial_access_tokens ORDER BY created_at DESC, id"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(decode_token)
        .collect()
    }

    async fn revoke_initial_access_token(&self, id: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE initial_access_tokens SET revoked = 1 WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }
}

#[async_trait]
impl Health for SqlStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

impl SqlStore {
    /// Hands `write` to the group-commit writer and waits until the commit
    /// that holds it is durable.
    async fn write(&self, write: Write) -> Result<Written, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writes
            .send(PendingWrite { write, reply })
            .await
            .map_err(|_| StoreError::Write("the writer has stopped".into()))?;
        match answer.await {
            Ok(Ok(written)) => Ok(written),
            Ok(Err(reason)) => Err(StoreError::Write(reason)),
            Err(_) => Err(StoreError::Write("the writer dropped the write".into())),
        }
    }

    /// Runs a statement through the writer; whether it changed one row.
    async fn change(&self, statement: Statement) -> Result<bool, StoreError> {
        Ok(self.write(Write::Statement(statement)).await? == Written::Rows(1))
    }
}
