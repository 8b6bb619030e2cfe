//! The binary: check-config, operator commands, environment overrides, and
//! durability of acknowledged registrations across `kill -9`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::providers::Subject;
use crate::support::hydra::HydraFake;
use crate::support::*;

const SHIPPED_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/gateway.toml");

#[test]
fn shipped_config_passes_check_config() {
    let (ok, stdout, stderr) = run_cli(&["check-config", "--config", SHIPPED_CONFIG]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("ok"));
}

#[test]
fn the_config_docker_compose_mounts_passes_check_config() {
    let root = env!("CARGO_MANIFEST_DIR");
    let compose = std::fs::read_to_string(format!("{root}/docker-compose.yml")).unwrap();
    let mount = compose
        .lines()
        .map(str::trim)
        .find(|line| line.ends_with(":/etc/dcr-gateway/gateway.toml:ro"))
        .expect("docker-compose.yml mounts a gateway config");
    let source = mount
        .trim_start_matches("- ")
        .split(':')
        .next()
        .unwrap()
        .trim_start_matches("./");
    assert!(compose.contains("\"serve\", \"--config\", \"/etc/dcr-gateway/gateway.toml\""));
    let (ok, stdout, stderr) = run_cli(&["check-config", "--config", &format!("{root}/{source}")]);
    assert!(ok, "{source}: {stdout}{stderr}");
}

#[test]
fn okta_zendesk_and_billforward_examples_pass_check_config_with_their_token() {
    for (name, sealed) in [("okta", true), ("zendesk", true), ("billforward", false)] {
        let path = format!("{}/config/{name}.toml", env!("CARGO_MANIFEST_DIR"));
        let (ok, _, stderr) = run_cli(&["check-config", "--config", &path]);
        assert!(!ok, "{name}: the token must come from the environment");
        assert!(stderr.contains("api_token"), "{name}: {stderr}");
        // Provider state is sealed: without the key the first registration
        // would fail after creating the client at the provider.
        assert_eq!(
            stderr.contains("store.encryption_key is required"),
            sealed,
            "{name}: {stderr}"
        );
        let output = std::process::Command::new(binary())
            .args(["check-config", "--config", &path])
            .env("DCR_GATEWAY__PROVIDER__API_TOKEN", "from-the-environment")
            .env("DCR_GATEWAY__STORE__ENCRYPTION_KEY", TEST_ENCRYPTION_KEY)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn example_provider_configs_pass_check_config() {
    let hydra = concat!(env!("CARGO_MANIFEST_DIR"), "/config/hydra.toml");
    let (ok, stdout, stderr) = run_cli(&["check-config", "--config", hydra]);
    assert!(ok, "{stdout}{stderr}");

    let rfc7591 = concat!(env!("CARGO_MANIFEST_DIR"), "/config/rfc7591.toml");
    let (ok, _, stderr) = run_cli(&["check-config", "--config", rfc7591]);
    assert!(
        !ok,
        "the rfc7591 example needs its key from the environment"
    );
    assert!(stderr.contains("store.encryption_key"), "{stderr}");
    let output = std::process::Command::new(binary())
        .args(["check-config", "--config", rfc7591])
        .env("DCR_GATEWAY__STORE__ENCRYPTION_KEY", TEST_ENCRYPTION_KEY)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn provider_keys_are_checked_per_kind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[provider]\nkind = \"hydra\"\nregistration_endpoint = \"https://x/reg\"\n\
         timeout = \"soon\"\n[provider.lifespans]\nforever_lifespan = \"1h\"\n",
    )
    .unwrap();
    let (ok, _, stderr) = run_cli(&["check-config", "--config", path.to_str().unwrap()]);
    assert!(!ok);
    for needle in [
        "provider.admin_url is required",
        "provider.issuer is required",
        "provider.registration_endpoint does not apply",
        "provider.timeout",
        "forever_lifespan",
    ] {
        assert!(stderr.contains(needle), "{needle} missing from:\n{stderr}");
    }
}

#[tokio::test]
async fn reconcile_command_reports_and_exits_0_without_drift() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), free_port());
    let (ok, stdout, stderr) =
        run_cli(&["reconcile", "--json", "--config", config.to_str().unwrap()]);
    assert!(ok, "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["missing_at_provider"], json!([]));
    assert_eq!(report["failed"], json!([]));
}

/// Runs `reconcile --json` with `config`: its exit code, its report, and
/// its stderr.
fn reconcile_with(config: &std::path::Path) -> (Option<i32>, Value, String) {
    let output = std::process::Command::new(binary())
        .args(["reconcile", "--json", "--config"])
        .arg(config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {stderr}"));
    (output.status.code(), report, stderr)
}

/// Behind Hydra, `reconcile` exits 1 while a client the gateway does not
/// know is at Hydra, and 0 once gateway and Hydra agree again (README:
/// "exit 1 on drift").
// The CLI runs as a blocking child process while the Hydra fake answers it
// from this test's runtime: it needs a second thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_command_exits_1_on_drift_and_0_without() {
    let fake = HydraFake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "[provider]\n{}\ntimeout = \"2s\"\nretries = 0\nreconcile_interval = \"0s\"\n",
        HydraFake::keys_at(&fake.base)
    ));
    std::fs::write(&config, text).unwrap();
    // A client the gateway made: at both ends, no drift.
    let server = ServerProcess::start(&config, port).await;
    let client = server.register(&web_client()).await;
    server.stop().await;
    let (code, report, stderr) = reconcile_with(&config);
    assert_eq!(code, Some(0), "{report} {stderr}");
    assert_eq!(report["unknown_to_gateway"], json!([]));
    assert_eq!(fake.client_ids(), [id_of(&client)]);

    // An administrator makes a client at Hydra that no row holds.
    let made = reqwest::Client::new()
        .post(format!("{}/admin/clients", fake.base))
        .json(
            &json!({ "client_id": "made-by-hand", "redirect_uris": ["https://x.example.com/cb"] }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), StatusCode::CREATED);
    let (code, report, stderr) = reconcile_with(&config);
    assert_eq!(code, Some(1), "{report} {stderr}");
    assert_eq!(report["unknown_to_gateway"], json!(["made-by-hand"]));
    assert!(stderr.contains("disagree"), "{stderr}");

    // Removed again: no drift.
    fake.forget("made-by-hand").await;
    let (code, report, stderr) = reconcile_with(&config);
    assert_eq!(code, Some(0), "{report} {stderr}");
    fake.ledger.assert_clean("Hydra");
}

#[test]
fn check_config_lists_every_error_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"nowhere\"\npublic_url = \"ftp://x\"\ncolour = \"blue\"\n\
         [provider]\nkind = \"acme\"\n[store]\nurl = \"mysql://db\"\n",
    )
    .unwrap();
    let (ok, _, stderr) = run_cli(&["check-config", "--config", path.to_str().unwrap()]);
    assert!(!ok);
    for needle in [
        "server.listen",
        "server.public_url",
        "server.colour",
        "provider.kind",
        "store.url",
    ] {
        assert!(stderr.contains(needle), "{needle} missing from:\n{stderr}");
    }
    let (ok, _, stderr) = run_cli(&["check-config", "--config", "/no/such/file.toml"]);
    assert!(!ok);
    assert!(stderr.contains("cannot read"));
}

#[test]
fn environment_overrides_reach_check_config() {
    let output = std::process::Command::new(binary())
        .args(["check-config", "--config", SHIPPED_CONFIG])
        .env("DCR_GATEWAY__SERVER__LISTEN", "not-an-address")
        .env("DCR_GATEWAY__SERVER__MAX_BODY_BYTES", "4096")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not-an-address"));
}

#[tokio::test]
async fn operator_commands_go_through_the_service_and_print_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port);
    let config_arg = config.to_str().unwrap();
    let server = ServerProcess::start(&config, port).await;
    let http = reqwest::Client::new();
    let mut clients = Vec::new();
    for name in ["alpha", "beta", "gamma"] {
        clients.push(
            server
                .register(&json!({ "redirect_uris": ["https://app.example.com/cb"], "client_name": name }))
                .await,
        );
    }
    let secrets: Vec<&str> = clients
        .iter()
        .flat_map(|c| [c["client_secret"].as_str().unwrap(), token_of(c)])
        .collect();

    let (ok, table, _) = run_cli(&["clients", "list", "--config", config_arg]);
    assert!(ok);
    let (ok, listed, _) = run_cli(&["clients", "list", "--json", "--config", config_arg]);
    assert!(ok);
    let listed: Vec<Value> = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.len(), 3);
    for client in &clients {
        let id = client["client_id"].as_str().unwrap();
        assert!(table.contains(id));
        assert!(
            listed
                .iter()
                .any(|c| c["client_id"] == id && c["has_client_secret"] == true)
        );
    }
    let first = clients[0]["client_id"].as_str().unwrap();
    let (ok, shown, _) = run_cli(&["clients", "show", first, "--json", "--config", config_arg]);
    assert!(ok);
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["client_name"], "alpha");
    let (ok, text, _) = run_cli(&["clients", "show", first, "--config", config_arg]);
    assert!(ok && text.contains("alpha"));
    for output in [&table, &text, &serde_json::to_string(&listed).unwrap()] {
        for secret in &secrets {
            assert!(!output.contains(secret), "a secret was printed");
        }
    }

    // The server has the client cached; a delete by another process reaches
    // it through the store's change log.
    let read_status = || async {
        http.get(uri_of(&clients[0]))
            .bearer_auth(token_of(&clients[0]))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(read_status().await, StatusCode::OK);
    let (ok, _, _) = run_cli(&["clients", "delete", first, "--config", config_arg]);
    assert!(ok);
    assert!(
        eventually(|| async { read_status().await == StatusCode::UNAUTHORIZED }).await,
        "the server kept answering for a client deleted by the CLI"
    );
    let (ok, _, stderr) = run_cli(&["clients", "show", first, "--config", config_arg]);
    assert!(!ok && stderr.contains(first));
    let (ok, _, _) = run_cli(&["clients", "delete", first, "--config", config_arg]);
    assert!(!ok, "deleting twice fails");
    drop(server);
}

/// What a writer saw acknowledged before the kill.
#[derive(Default)]
struct Acknowledged {
    /// Registered (and perhaps replaced) clients, with the name last
    /// acknowledged for each.
    kept: Vec<(Value, String)>,
    /// Clients whose delete was acknowledged.
    deleted: Vec<Value>,
}

/// Registers, replaces every client and deletes every other one, until a
/// request fails (the kill); returns what was acknowledged. A client whose
/// last write was cut off by the kill is left out: that write may or may
/// not have committed, and either is correct.
async fn write_until_killed(http: reqwest::Client, base: String) -> Acknowledged {
    let mut seen = Acknowledged::default();
    for round in 0..400 {
        let Ok(response) = http
            .post(format!("{base}/register"))
            .json(
                &json!({ "redirect_uris": ["https://app.example.com/cb"], "client_name": "first" }),
            )
            .send()
            .await
        else {
            break;
        };
        if response.status() != StatusCode::CREATED {
            break;
        }
        let Ok(client) = response.json::<Value>().await else {
            break;
        };
        seen.kept.push((client.clone(), "first".to_owned()));
        let replaced = http
            .put(uri_of(&client))
            .bearer_auth(token_of(&client))
            .json(&json!({
                "client_id": client["client_id"],
                "redirect_uris": ["https://app.example.com/cb"],
                "client_name": "replaced",
            }))
            .send()
            .await;
        match replaced {
            Ok(answer) if answer.status() == StatusCode::OK => {
                if let Some(last) = seen.kept.last_mut() {
                    last.1 = "replaced".to_owned();
                }
            }
            _ => {
                seen.kept.pop();
                break;
            }
        }
        if round % 2 == 1 {
            let deleted = http
                .delete(uri_of(&client))
                .bearer_auth(token_of(&client))
                .send()
                .await;
            match deleted {
                Ok(answer) if answer.status() == StatusCode::NO_CONTENT => {
                    seen.kept.pop();
                    seen.deleted.push(client);
                }
                _ => {
                    seen.kept.pop();
                    break;
                }
            }
        }
    }
    seen
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port);
    let mut server = ServerProcess::start(&config, port).await;
    let http = reqwest::Client::new();

    // Eight concurrent writers; the process is killed while they run.
    let writers: Vec<_> = (0..8)
        .map(|_| tokio::spawn(write_until_killed(http.clone(), server.base.clone())))
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    let mut seen = Acknowledged::default();
    for writer in writers {
        let one = writer.await.unwrap();
        seen.kept.extend(one.kept);
        seen.deleted.extend(one.deleted);
    }
    assert!(
        seen.kept.iter().any(|(_, name)| name == "replaced") && !seen.deleted.is_empty(),
        "no replace and delete finished before the kill"
    );

    let server = ServerProcess::start(&config, port).await;
    let read = |client: &Value| {
        http.get(uri_of(client))
            .bearer_auth(token_of(client))
            .send()
    };
    for (client, name) in &seen.kept {
        let read = read(client).await.unwrap();
        assert_eq!(
            read.status(),
            StatusCode::OK,
            "an acknowledged client was lost"
        );
        let read: Value = read.json().await.unwrap();
        assert_eq!(
            read["client_name"],
            name.as_str(),
            "an acknowledged replace was lost"
        );
    }
    for client in &seen.deleted {
        assert_eq!(
            read(client).await.unwrap().status(),
            StatusCode::UNAUTHORIZED,
            "an acknowledged delete was undone"
        );
    }
    drop(server);
}

#[test]
fn ids_beginning_with_a_hyphen_are_ids_not_flags() {
    // Ids are random base64url text, so about one in 32 begins with `-`.
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), free_port());
    let config = config.to_str().unwrap();
    for command in [
        &["clients", "show", "-Xy3"][..],
        &["clients", "delete", "-Xy3"],
        &["clients", "rotate-secret", "-Xy3"],
        &["iat", "revoke", "-Xy3"],
    ] {
        let mut args = command.to_vec();
        args.extend(["--config", config]);
        let (ok, _, stderr) = run_cli(&args);
        assert!(!ok);
        assert!(
            stderr.contains("-Xy3") && !stderr.contains("unexpected argument"),
            "{command:?}: {stderr}"
        );
    }
    let (ok, _, stderr) = run_cli(&["clients", "list", "--after", "-Xy3", "--config", config]);
    assert!(ok, "{stderr}");
}

/// A log written to a file (as `serve > file 2>&1` or journald would take
/// it) carries no terminal colour codes, in either format.
#[tokio::test]
async fn a_log_written_to_a_file_has_no_escape_sequences() {
    for format in ["pretty", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = write_config(dir.path(), port);
        let text = std::fs::read_to_string(&config)
            .unwrap()
            .replace("format = \"json\"", &format!("format = \"{format}\""));
        std::fs::write(&config, text).unwrap();
        let log = dir.path().join("gateway.log");
        let server = ServerProcess::start_logging(&config, port, Some(&log), "info").await;
        server.register(&web_client()).await;
        server.stop().await;
        let written = std::fs::read_to_string(&log).unwrap();
        assert!(written.contains("listening"), "{format}: {written}");
        assert!(
            !written.contains('\u{1b}'),
            "{format}: an escape sequence in the log file: {written:?}"
        );
        if format == "json" {
            for line in written.lines() {
                serde_json::from_str::<Value>(line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            }
        }
    }
}

/// Every provider setting that would only fail at the first registration
/// (after the client was made at the provider) is refused up front, by
/// check-config and serve alike, naming the key.
#[test]
fn settings_that_would_fail_at_first_use_are_refused_up_front() {
    let key = format!("[store]\nencryption_key = \"{TEST_ENCRYPTION_KEY}\"\n");
    let okta = "kind = \"okta\"\norg_url = \"https://example.okta.com\"\n";
    let zendesk = "kind = \"zendesk\"\nsubdomain = \"acme\"\naccess_token = \"t\"\n";
    let billforward = "kind = \"billforward\"\nbase_url = \"https://bf.example.com/v1\"\n\
                       api_token = \"t\"\nresource_ids = [\"r\"]\nauthorities = [\"A\"]\n";
    let hydra = "kind = \"hydra\"\nissuer = \"https://auth.example.com\"\n";
    let cases = [
        (
            format!("[provider]\n{okta}api_token = \"t\"\n"),
            "store.encryption_key is required",
        ),
        (
            format!("[provider]\n{zendesk}user_id = 7\n"),
            "store.encryption_key is required",
        ),
        (
            format!("{key}[provider]\n{okta}api_token = \" \"\n"),
            "provider.api_token is empty",
        ),
        (
            format!("{key}[provider]\n{zendesk}user_id = 0\n"),
            "provider.user_id",
        ),
        (
            format!("[provider]\n{billforward}organization_id = \"\"\n"),
            "provider.organization_id is empty",
        ),
        (
            format!("[provider]\n{hydra}admin_url = \"http://\"\n"),
            "provider.admin_url",
        ),
        (
            format!("[provider]\n{hydra}admin_url = \"http://hydra:4445\"\nowner = \"\"\n"),
            "provider.owner is empty",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    for (config, needle) in cases {
        std::fs::write(&path, &config).unwrap();
        let path = path.to_str().unwrap();
        let (ok, _, stderr) = run_cli(&["check-config", "--config", path]);
        assert!(!ok, "{config}");
        assert!(stderr.contains(needle), "{needle} not in: {stderr}");
        let (ok, _, stderr) = run_cli(&["serve", "--config", path]);
        assert!(!ok && stderr.contains(needle), "serve: {stderr}");
    }
}

/// The provider's credential going over plain http to another machine is
/// warned about at start; to this machine it is not.
#[test]
fn a_credential_sent_over_plain_http_is_warned_about() {
    for (base_url, warned) in [
        ("http://billing.internal.example/v1", true),
        ("http://127.0.0.1:9/v1", false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), free_port());
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(&format!(
            "[provider]\nkind = \"billforward\"\nbase_url = \"{base_url}\"\n\
             organization_id = \"ORG-1\"\nresource_ids = [\"r\"]\nauthorities = [\"A\"]\n"
        ));
        std::fs::write(&config, text).unwrap();
        let log = dir.path().join("gateway.log");
        let mut child = std::process::Command::new(binary())
            .args(["serve", "--config"])
            .arg(&config)
            .env("DCR_GATEWAY__PROVIDER__API_TOKEN", "t")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut written = String::new();
        for _ in 0..200 {
            written = std::fs::read_to_string(&log).unwrap();
            if written.contains("listening") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(written.contains("listening"), "{written}");
        assert_eq!(
            written.contains("plain http"),
            warned,
            "{base_url}: {written}"
        );
    }
}

/// Each request gets exactly one access line (method, path, status,
/// latency, request id) under the `access` target; `log.access = false`
/// writes none.
#[tokio::test]
async fn each_request_gets_one_access_line_unless_switched_off() {
    for access in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = write_config(dir.path(), port);
        let text = std::fs::read_to_string(&config).unwrap().replace(
            "format = \"json\"",
            &format!("format = \"json\"\naccess = {access}"),
        );
        std::fs::write(&config, text).unwrap();
        let log = dir.path().join("gateway.log");
        let server = ServerProcess::start_logging(&config, port, Some(&log), "info").await;
        let http = reqwest::Client::new();
        let probes = [
            ("probe-read", "/healthz", 200),
            ("probe-register", "/register", 201),
        ];
        for (id, path, _) in probes {
            let request = if path == "/register" {
                http.post(format!("{}{path}", server.base))
                    .json(&web_client())
            } else {
                http.get(format!("{}{path}", server.base))
            };
            request.header("x-request-id", id).send().await.unwrap();
        }
        server.stop().await;
        let written = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<Value> = written
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["target"] == "access")
            .collect();
        if !access {
            assert!(
                lines.is_empty(),
                "access lines while switched off: {lines:?}"
            );
            continue;
        }
        for (id, path, status) in probes {
            let mine: Vec<_> = lines.iter().filter(|l| l["request_id"] == id).collect();
            assert_eq!(mine.len(), 1, "{id}: {written}");
            assert_eq!(mine[0]["path"], path);
            assert_eq!(mine[0]["status"], status);
            assert!(mine[0]["micros"].as_u64().is_some(), "{}", mine[0]);
        }
        // A line logged while serving a request names it: the registration's
        // audit line is in the request span, with the caller's id.
        let audited = audit_events(&written)
            .into_iter()
            .find(|line| line["action"] == "register")
            .unwrap_or_else(|| panic!("no audit line for the registration: {written}"));
        assert_eq!(audited["span"]["name"], "request", "{audited}");
        assert_eq!(audited["span"]["request_id"], "probe-register", "{audited}");
    }
}

/// When nothing reads the log (a stuck pipe), requests are still answered:
/// the log writer drops lines past its queue and counts them in /metrics.
#[tokio::test]
async fn a_log_nobody_reads_never_stalls_requests() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port);
    let mut command = std::process::Command::new(binary());
    command
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        // A pipe nobody reads: it fills after 64 KiB and then blocks.
        .stderr(std::process::Stdio::piped());
    let server = ServerProcess::start_command(command, port).await;
    let http = reqwest::Client::new();
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (http, base) = (http.clone(), server.base.clone());
            tokio::spawn(async move {
                for _ in 0..1200 {
                    let answer = http.get(format!("{base}/healthz")).send().await.unwrap();
                    assert_eq!(answer.status(), StatusCode::OK);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let metrics = http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dropped: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("dcr_log_lines_dropped_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no dropped-lines counter in {metrics}"));
    assert!(dropped > 0, "19,200 access lines fit a 64 KiB pipe?");
}

/// Broker mode's config for a provider at `issuer`.
fn broker_config(dir: &std::path::Path, issuer: &str) -> std::path::PathBuf {
    let path = dir.join("broker.toml");
    std::fs::write(
        &path,
        format!(
            "[store]\nencryption_key = \"{TEST_ENCRYPTION_KEY}\"\n[provider]\nkind = \"oidc\"\n\
             issuer = \"{issuer}\"\nclient_id = \"operator-client\"\nclient_secret = \"s\"\n\
             [front]\nenabled = true\n"
        ),
    )
    .unwrap();
    path
}

#[tokio::test]
async fn check_config_reads_the_brokered_providers_discovery_and_keys() {
    let op = crate::support::fake_op::FakeOp::start("operator-client").await;
    let dir = tempfile::tempdir().unwrap();
    let path = broker_config(dir.path(), &op.issuer);
    let run = |path: std::path::PathBuf| {
        tokio::task::spawn_blocking(move || {
            run_cli(&["check-config", "--config", path.to_str().unwrap()])
        })
    };
    let (ok, stdout, stderr) = run(path.clone()).await.unwrap();
    assert!(ok, "{stdout}{stderr}");
    assert!(op.key_reads() >= 1, "the keys were read");

    op.set_down(true);
    let (ok, _, stderr) = run(path).await.unwrap();
    assert!(!ok, "an unreachable provider fails check-config");
    assert!(stderr.contains("discovery document"), "{stderr}");
    assert!(stderr.contains("503"), "the cause is told: {stderr}");

    let cases = [
        ("", "client_secret or provider.private_key"),
        ("client_secret = \"s\"\n", "front.enabled = true"),
        ("client_secret = \"s\"\n", "encryption_key"),
        (
            "private_key = \"/nowhere.pem\"\n",
            "cannot read `/nowhere.pem`",
        ),
        (
            "client_secret = \"s\"\npreset = \"azure\"\n",
            "provider.preset `azure`",
        ),
    ];
    for (keys, needed) in cases {
        let unconfigured = dir.path().join("unconfigured.toml");
        std::fs::write(
            &unconfigured,
            format!(
                "[provider]\nkind = \"oidc\"\nissuer = \"https://op.example\"\nclient_id = \"c\"\n{keys}"
            ),
        )
        .unwrap();
        let (ok, _, stderr) = run(unconfigured).await.unwrap();
        assert!(!ok);
        assert!(stderr.contains(needed), "{needed}: {stderr}");
    }
}

#[tokio::test]
async fn keys_are_listed_and_rotated_from_the_command_line() {
    let op = crate::support::fake_op::FakeOp::start("operator-client").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.toml");
    std::fs::write(
        &path,
        format!(
            "[store]\nurl = \"sqlite://{}\"\nencryption_key = \"{TEST_ENCRYPTION_KEY}\"\n\
             [provider]\nkind = \"oidc\"\nissuer = \"{}\"\nclient_id = \"operator-client\"\n\
             client_secret = \"s\"\nreconcile_interval = \"0s\"\n\
             [front]\nenabled = true\ntokens = \"gateway\"\n",
            dir.path().join("keys.db").display(),
            op.issuer
        ),
    )
    .unwrap();
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_cli(&args)
        })
    };
    let config = path.to_str().unwrap().to_owned();
    let list = || {
        vec![
            "keys".into(),
            "list".into(),
            "--json".into(),
            "--config".into(),
            config.clone(),
        ]
    };
    let (ok, stdout, stderr) = run(list()).await.unwrap();
    assert!(ok, "{stderr}");
    let keys: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(keys.len(), 1, "the first key is made: {stdout}");
    let rotate = vec![
        "keys".into(),
        "rotate".into(),
        "--config".into(),
        config.clone(),
    ];
    let (ok, stdout, stderr) = run(rotate).await.unwrap();
    assert!(ok && stdout.contains("new key"), "{stdout}{stderr}");
    let (_, stdout, _) = run(list()).await.unwrap();
    let keys: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(keys.len(), 2);
    assert!(
        keys[0]["retired_at"].is_i64(),
        "the old key retires: {stdout}"
    );
    assert!(keys[1]["retired_at"].is_null());
}
