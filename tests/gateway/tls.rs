//! HTTPS with rustls: certificates made by the test (rcgen), reloaded without
//! a restart on SIGHUP and when the files change.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

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

/// When either file of the pair in `dir` last changed.
fn pair_modified(dir: &Path) -> SystemTime {
    ["cert.pem", "key.pem"]
        .iter()
        .map(|file| {
            std::fs::metadata(dir.join(file))
                .unwrap()
                .modified()
                .unwrap()
        })
        .max()
        .unwrap()
}

/// Dates both files of the pair in `dir` a second after `previous` (when
/// the pair last changed before this write), so that the gateway's check
/// by modification time sees a change however coarse the file system's
/// clock.
fn mark_changed(dir: &Path, previous: SystemTime) {
    for file in ["cert.pem", "key.pem"] {
        std::fs::File::options()
            .write(true)
            .open(dir.join(file))
            .unwrap()
            .set_modified(previous + Duration::from_secs(1))
            .unwrap();
    }
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
    let log = dir.path().join("gateway.log");
    let child = Command::new(binary())
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
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
    let previous = pair_modified(dir.path());
    let third = write_certificate(dir.path());
    mark_changed(dir.path(), previous);
    assert!(
        eventually(|| answers(third.clone(), base.clone())).await,
        "the file change was not noticed"
    );
    assert!(
        !answers(second.clone(), base.clone()).await,
        "the old certificate is still served"
    );

    // A broken pair is refused, once the gateway tried it, and the current
    // certificate kept. (A tick between the writes of a new key and its
    // certificate may have failed a reload already: a new failure counts.)
    let failed_reloads = || {
        std::fs::read_to_string(&log)
            .unwrap()
            .matches("TLS certificate reload failed")
            .count()
    };
    let failed_before = failed_reloads();
    let previous = pair_modified(dir.path());
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    mark_changed(dir.path(), previous);
    assert!(
        eventually(|| async { failed_reloads() > failed_before }).await,
        "the broken pair was not tried (no new failed reload in the log)"
    );
    assert!(
        answers(third.clone(), base.clone()).await,
        "a bad certificate replaced a good one"
    );
    drop(server);
}
