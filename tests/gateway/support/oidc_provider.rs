//! Real peers from npm for interop tests: panva/node-oidc-provider (an RFC
//! 7591/7592 server), the official MCP TypeScript SDK (a client) and
//! playwright-core (which drives Debian's chromium, a real browser), each
//! pinned by the lockfile in its `tests/interop/` folder and installed from
//! it on first use.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::free_port;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/oidc-provider");
const MCP_SDK_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/mcp-sdk");
const BROWSER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/browser");

/// The browser the browser tests drive: Debian's `chromium` package.
/// Nothing downloads a browser build.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// A running oidc-provider, killed when dropped.
pub struct OidcProvider {
    pub issuer: String,
    child: Child,
}

impl OidcProvider {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// An oidc-provider started with the environment `env` (see
    /// `server.mjs`: fixed clients with registration off, a vendor's rules).
    pub async fn start_with(env: &[(&str, String)]) -> Self {
        install(DIR, "oidc-provider");
        let port = free_port();
        let child = Command::new("node")
            .arg("server.mjs")
            .arg(port.to_string())
            .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
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

/// Installs the pinned peer in `dir` from its lockfile, once per test run
/// and folder, unless `node_modules/{package}` is there.
fn install(dir: &'static str, package: &str) {
    static INSTALLED: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut installed = INSTALLED.lock().unwrap();
    if installed.contains(&dir)
        || std::path::Path::new(dir)
            .join("node_modules")
            .join(package)
            .exists()
    {
        installed.push(dir);
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .status()
        .expect("npm must be installed (Node.js 20 or later)");
    assert!(status.success(), "npm ci failed in {dir}");
    installed.push(dir);
}

/// Runs the MCP TypeScript SDK's discovery and registration, as an MCP
/// client does, against the authorization server `issuer`, registering
/// `client_metadata`; returns what the SDK learnt (`{metadata, client}`).
pub fn mcp_sdk_register(issuer: &str, client_metadata: &serde_json::Value) -> serde_json::Value {
    mcp_sdk(
        "discover-and-register.mjs",
        &[issuer, &client_metadata.to_string()],
    )
}

/// Runs `script` of the MCP SDK folder with `args`; its one JSON line.
pub fn mcp_sdk(script: &str, args: &[&str]) -> serde_json::Value {
    mcp_sdk_with(script, args, &[])
}

/// [`mcp_sdk`] with the environment `env` added.
pub fn mcp_sdk_with(script: &str, args: &[&str], env: &[(&str, String)]) -> serde_json::Value {
    install(MCP_SDK_DIR, "@modelcontextprotocol/sdk");
    node(MCP_SDK_DIR, script, args, env, "the MCP SDK")
}

/// Runs `script` of the browser folder with `args`: playwright-core driving
/// [`CHROMIUM`]; its one JSON line. Without chromium it fails, saying how
/// to install it, rather than skip.
pub fn browser(script: &str, args: &[&str]) -> serde_json::Value {
    assert!(
        std::path::Path::new(CHROMIUM).exists(),
        "the browser tests need Debian's chromium at {CHROMIUM}: \
         apt-get install -y chromium (.ci/run does)"
    );
    install(BROWSER_DIR, "playwright-core");
    node(BROWSER_DIR, script, args, &[], "the browser script")
}

/// Runs `node script args` in `dir` with `env` added, which must succeed
/// and print one JSON line; `what` names it in failures.
fn node(
    dir: &str,
    script: &str,
    args: &[&str],
    env: &[(&str, String)],
    what: &str,
) -> serde_json::Value {
    let output = Command::new("node")
        .arg(script)
        .args(args)
        .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
        .current_dir(dir)
        .output()
        .expect("node must be installed (Node.js 20 or later)");
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "{what} printed no JSON ({error}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
