//! HTTPS with rustls: certificates made by the test (rcgen), reloaded without
//! a restart on SIGHUP and when the files change.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;

use crate::support::*;

/// Writes a fresh self-signed certificate for localhost; returns its PEM.
fn write_certificate(dir: &Path) -> String {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert = certified.cert.pem();
    // Write the key first: a reload sees the pair only once the cert changes.
    std::fs::write(dir.join("key.pem"), certified.key_pair.serialize_pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), &cert).unwrap();
    cert
}

/// A client that trusts only `ca` (no pooled connections, so each request
/// makes a fresh handshake).
fn trusting(ca: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// Whether a fresh client trusting only `ca` gets an answer.
async fn answers(ca: String, base: String) -> bool {
    trusting(&ca)
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == StatusCode::OK)
}

#[tokio::test]
async fn serves_https_and_reloads_certificates_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = write_certificate(dir.path());
    let port = free_port();
    let config = write_config(dir.path(), port);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text = text.replace("http://127.0.0.1", "https://localhost");
    text.push_str(&format!(
        "[server.tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        dir.path().join("cert.pem").display(),
        dir.path().join("key.pem").display()
    ));
    std::fs::write(&config, text).unwrap();
    let child = Command::new(binary())
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = ServerProcess {
        child,
        base: format!("https://localhost:{port}"),
    };
    let base = server.base.clone();
    assert!(
        eventually(|| answers(first.clone(), base.clone())).await,
        "the gateway did not come up over HTTPS"
    );
    let client = register_at(&trusting(&first), &base, &web_client()).await;
    assert!(uri_of(&client).starts_with("https://localhost:"));

    // A new certificate, announced with SIGHUP.
    let second = write_certificate(dir.path());
    let status = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        eventually(|| answers(second.clone(), base.clone())).await,
        "SIGHUP did not reload"
    );
    assert!(
        !answers(first.clone(), base.clone()).await,
        "the old certificate is still served"
    );

    // Another one, picked up from the file change alone.
    tokio::time::sleep(Duration::from_millis(1100)).await; // a distinct mtime
    let third = write_certificate(dir.path());
    assert!(
        eventually(|| answers(third.clone(), base.clone())).await,
        "the file change was not noticed"
    );

    // A broken pair is refused and the current certificate kept.
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        answers(third.clone(), base.clone()).await,
        "a bad certificate replaced a good one"
    );
    drop(server);
}
