//! The expiry janitor at a million clients on SQLite: one pass that removes
//! the 1% whose lifetime has ended, then one that finds nothing (what most
//! runs, every `reconcile_interval`, do).
//!   cargo bench --bench janitor [-- CLIENTS]
//! The clients are copies of one registered through the service (claude.ai's
//! registration), written straight into the store's file.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::sync::Arc;
use std::time::Instant;

use dcr_gateway::app;
use dcr_gateway::clock::{Clock, SystemClock};
use dcr_gateway::config::Config;
use dcr_gateway::registration::RequestContext;
use serde_json::json;

/// Every client's columns but its id and expiry, copied from the template.
const COPIED: &str = "state, metadata, registration_token_hash, client_secret_hash, \
    client_secret_expires_at, client_id_issued_at, updated_at, provider_state, policy, \
    software_id, initial_access_token_id, revision, lease_until, vouched";

#[tokio::main]
async fn main() {
    let clients: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("janitor.db");
    let config = Config::from_sources(
        &format!(
            "[store]\nurl = \"sqlite://{}\"\n[policies.default]\nclient_lifetime = \"30d\"\n",
            db.display()
        ),
        Vec::new(),
    )
    .unwrap();
    let gateway = app::build_gateway(&config, Arc::new(SystemClock))
        .await
        .unwrap();
    let document = serde_json::from_value(json!({
        "client_name": "Claude",
        "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }))
    .unwrap();
    let context = RequestContext::default();
    let admission = gateway.service.admit_registration(&context).await.unwrap();
    let template = gateway
        .service
        .register(admission, document, &context)
        .await
        .unwrap()
        .client
        .client_id;

    let now = SystemClock.now_unix();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let started = Instant::now();
    sqlx::query(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
         INSERT INTO clients (client_id, expires_at, {COPIED}) \
         SELECT printf('m%09d', i), CASE WHEN i % 100 = 0 THEN $2 ELSE $3 END, {COPIED} \
         FROM n, clients WHERE client_id = $4"
    ))
    .bind(i64::try_from(clients).unwrap())
    .bind(now - 1)
    .bind(now + 30 * 24 * 3600)
    .bind(template.as_str())
    .execute(&pool)
    .await
    .unwrap();
    println!(
        "{clients} clients written in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    for pass in ["the 1% expired", "nothing expired"] {
        let started = Instant::now();
        let removed = gateway.reconciler.expire_clients().await.unwrap();
        println!(
            "janitor pass, {pass}: {} removed in {:.3} s",
            removed.len(),
            started.elapsed().as_secs_f64()
        );
    }
}
