//! Throwaway PostgreSQL databases for tests, on the server named by
//! `DCR_TEST_POSTGRES_URL` (default: postgres@127.0.0.1:5432). A test that
//! needs one fails when no server answers: every such test has `postgres`
//! in its name, so `cargo test --all-features -- --skip postgres` leaves
//! them out, and the summary counts them as filtered out.

use sqlx::{Connection, Executor, PgConnection};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database created for one test and dropped after it.
pub struct TestDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

impl TestDatabase {
    /// A fresh empty database; panics, saying how to provide one or leave
    /// these tests out, when no server answers.
    pub async fn create() -> Self {
        let admin_url =
            std::env::var("DCR_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.into());
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|error| panic!("{}", no_server(&admin_url, &error)));
        let name = format!("dcr_test_{}", rand::random::<u64>());
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        let mut url = url::Url::parse(&admin_url).unwrap();
        url.set_path(&name);
        Self {
            url: url.to_string(),
            admin_url,
            name,
        }
    }
}

/// Why a PostgreSQL test cannot run, and what to do about it.
fn no_server(admin_url: &str, error: &sqlx::Error) -> String {
    let mut shown = url::Url::parse(admin_url).ok();
    if let Some(url) = shown.as_mut().filter(|url| url.password().is_some()) {
        let _ = url.set_password(Some("***"));
    }
    let shown = shown.map_or_else(|| admin_url.to_owned(), String::from);
    format!(
        "this test needs PostgreSQL and cannot connect to {shown} ({error}). \
         Start it (on Debian: `pg_ctlcluster --skip-systemctl-redirect \
         $(ls /etc/postgresql) main start`; `.ci/run` does) or set \
         DCR_TEST_POSTGRES_URL to a server that answers; \
         `cargo test --all-features -- --skip postgres` leaves the PostgreSQL \
         tests out (the summary counts them as filtered out)."
    )
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
