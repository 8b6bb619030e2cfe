//! Throwaway PostgreSQL databases for tests, on the server named by
//! `DCR_TEST_POSTGRES_URL` (default: postgres@127.0.0.1:5432). CI sets it and
//! must have PostgreSQL; elsewhere a missing server skips those tests loudly.

use sqlx::{Connection, Executor, PgConnection};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database created for one test and dropped after it.
pub struct TestDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

impl TestDatabase {
    /// A fresh empty database, or `None` (outside CI) when no server answers.
    pub async fn create() -> Option<Self> {
        let admin_url =
            std::env::var("DCR_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.into());
        let mut admin = match PgConnection::connect(&admin_url).await {
            Ok(connection) => connection,
            Err(error) if std::env::var_os("CI").is_none() => {
                eprintln!("SKIPPED: no PostgreSQL at {admin_url} ({error}); CI runs these tests");
                return None;
            }
            Err(error) => panic!("PostgreSQL is required in CI ({admin_url}): {error}"),
        };
        let name = format!("dcr_test_{}", rand::random::<u64>());
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        let mut url = url::Url::parse(&admin_url).unwrap();
        url.set_path(&name);
        Some(Self {
            url: url.to_string(),
            admin_url,
            name,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop runs outside any runtime the test may still be inside.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url)
                    .await
                    .map_err(std::io::Error::other)?;
                admin
                    .execute(statement.as_str())
                    .await
                    .map_err(std::io::Error::other)?;
                Ok::<(), std::io::Error>(())
            })
        })
        .join();
    }
}
