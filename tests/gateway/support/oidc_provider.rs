//! A real RFC 7591/7592 server for interop tests: panva/node-oidc-provider,
//! pinned by tests/interop/oidc-provider/package-lock.json and installed from
//! it on first use.

use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::free_port;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/oidc-provider");

/// A running oidc-provider, killed when dropped.
pub struct OidcProvider {
    pub issuer: String,
    child: Child,
}

impl OidcProvider {
    pub async fn start() -> Self {
        install();
        let port = free_port();
        let child = Command::new("node")
            .arg("server.mjs")
            .arg(port.to_string())
            .current_dir(DIR)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("node must be installed");
        let provider = Self {
            issuer: format!("http://127.0.0.1:{port}"),
            child,
        };
        let http = reqwest::Client::new();
        for _ in 0..200 {
            let url = format!("{}/.well-known/openid-configuration", provider.issuer);
            if http
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return provider;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("oidc-provider did not start on port {port}");
    }

    pub fn registration_endpoint(&self) -> String {
        format!("{}/reg", self.issuer)
    }
}

/// Installs the pinned peer from its lockfile, once per test run, if needed.
fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        if std::path::Path::new(DIR)
            .join("node_modules/oidc-provider")
            .exists()
        {
            return;
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(DIR)
            .status()
            .expect("npm must be installed (Node.js 20 or later)");
        assert!(status.success(), "npm ci failed in {DIR}");
    });
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
