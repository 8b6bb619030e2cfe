//! Test harness: the real gateway on 127.0.0.1:0 with a temporary SQLite file,
//! the real binary for CLI and crash tests, an HTTPS document server, and
//! stateful provider fakes (Hydra, Okta, Zendesk, BillForward) that check
//! every request against the facts of their vendor's published document
//! (`contract`, loading `tests/contracts/`) and
//! keep a `faults::Ledger` of what they received and were told to do. The
//! Hydra and Okta fakes also serve their vendor's OAuth 2.0 endpoints, on
//! what they share (`oauth`).

pub mod billforward;
pub mod contract;
pub mod fake_op;
pub mod faults;
pub mod hydra;
pub mod oauth;
pub mod oidc_provider;
pub mod okta;
pub mod postgres;
pub mod zendesk;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use dcr_gateway::app;
use dcr_gateway::clock::{Clock, SystemClock};
use dcr_gateway::config::Config;
use dcr_gateway::reconcile::{ReconcileReport, Reconciler};
use dcr_gateway::registration::RegistrationService;
use dcr_gateway::store::cached::CachedStore;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The gateway's clock in tests: it starts at the wall clock's time and
/// moves only when the test says so.
#[derive(Debug)]
pub struct TestClock(AtomicI64);

impl TestClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(SystemClock.now_unix())))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.0
            .fetch_add(i64::try_from(by.as_secs()).unwrap(), Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now_unix(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A running in-process gateway.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub service: Arc<RegistrationService>,
    pub reconciler: Arc<Reconciler>,
    pub cache: Arc<CachedStore>,
    pub front: Option<Arc<dcr_gateway::front::Front>>,
    /// The read answers the HTTP edge holds in memory.
    pub read_answers: Arc<dcr_gateway::http::reads::HeldReads>,
    pub clock: Arc<TestClock>,
    /// The operator tokens (what `dcr-gateway operator create` writes).
    pub operator_tokens: Arc<dyn dcr_gateway::store::operators::OperatorTokens>,
    /// Its background tasks run as long as it does.
    _gateway: app::Gateway,
    pub db_path: PathBuf,
    _dir: TempDir,
    _shutdown: oneshot::Sender<()>,
}

/// A gateway on embedded defaults (but a temporary store and a free port).
pub async fn spawn_app() -> TestApp {
    spawn_app_with("").await
}

/// A `[limits]` section that lifts the per-address and per-client rate
/// limits: bulk tests register far more than any sane production limit
/// allows.
pub const NO_RATE_LIMITS: &str = "[limits]\nregister_per_ip = \"unlimited\"\nmanage_per_client = \"unlimited\"\nauth_failures_per_ip = \"unlimited\"\n";

/// The key that seals provider state in tests.
pub const TEST_ENCRYPTION_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY";

/// A gateway with extra TOML sections (not `[server]` or `[store]`) appended
/// to its configuration.
pub async fn spawn_app_with(extra_toml: &str) -> TestApp {
    spawn_app_under("", extra_toml).await
}

/// A gateway whose `public_url` has the path `public_path` (`/dcr`), with
/// extra TOML sections as [`spawn_app_with`] takes them.
pub async fn spawn_app_under(public_path: &str, extra_toml: &str) -> TestApp {
    spawn_app_on(gateway_listener().await, public_path, extra_toml).await
}

/// The listener of a gateway started later by [`spawn_app_on`], so that
/// its address is known first (broker mode's provider must hold the
/// gateway's callback before the gateway starts).
pub async fn gateway_listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

/// [`spawn_app_under`] on `listener`.
pub async fn spawn_app_on(listener: TcpListener, public_path: &str, extra_toml: &str) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let addr = listener.local_addr().unwrap();
    let db_path = dir.path().join("gateway.db");
    let limits = if extra_toml.contains("[limits]") {
        ""
    } else {
        NO_RATE_LIMITS
    };
    let store = format!("sqlite://{}", db_path.display());
    let toml = format!(
        "[server]\nlisten = \"{addr}\"\npublic_url = \"http://{addr}{public_path}\"\n\
         [store]\nurl = \"{store}\"\nencryption_key = \"{TEST_ENCRYPTION_KEY}\"\n{limits}{extra_toml}"
    );
    start_app(listener, &toml, dir, db_path).await
}

/// One of several gateway instances that share `store` (a database URL)
/// and one `public_url`, with extra TOML sections.
pub async fn spawn_instance(public_url: &str, store: &str, extra_toml: &str) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let toml = format!(
        "[server]\nlisten = \"{addr}\"\npublic_url = \"{public_url}\"\n\
         [store]\nurl = \"{store}\"\nencryption_key = \"{TEST_ENCRYPTION_KEY}\"\n{extra_toml}"
    );
    let db_path = dir.path().join("unused.db");
    start_app(listener, &toml, dir, db_path).await
}

/// Serves the gateway configured by `toml` on `listener`.
async fn start_app(listener: TcpListener, toml: &str, dir: TempDir, db_path: PathBuf) -> TestApp {
    let addr = listener.local_addr().unwrap();
    let config = Config::from_sources(toml, Vec::new()).unwrap();
    let clock = TestClock::new();
    let gateway = app::build_gateway(&config, clock.clone()).await.unwrap();
    let router = app::build_router(&gateway, &config);
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(app::serve(
        listener,
        router,
        async {
            let _ = rx.await;
        },
        &config,
    ));
    TestApp {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        service: gateway.service.clone(),
        reconciler: gateway.reconciler.clone(),
        cache: gateway.cache.clone(),
        front: gateway.front.clone(),
        read_answers: gateway.read_answers.clone(),
        operator_tokens: gateway.operator_tokens.clone(),
        _gateway: gateway,
        clock,
        db_path,
        _dir: dir,
        _shutdown: tx,
    }
}

/// A gateway in front of a provider fake, with `provider_keys` in
/// `[provider]`. Calls are not retried and the breaker never sheds, so that
/// each fault shows how it is classified.
pub async fn spawn_app_for_provider(provider_keys: &str) -> TestApp {
    spawn_app_with(&format!(
        "[provider]\n{provider_keys}\ntimeout = \"1s\"\nreconcile_interval = \"0s\"\n\
         retries = 0\ncircuit_failure_rate = 1.0\n"
    ))
    .await
}

/// After reconcile: every row of `app` is active, and the gateway holds
/// exactly the clients `vendor` holds (`at_provider`). Returns those.
pub async fn assert_same_clients(
    app: &TestApp,
    vendor: &str,
    at_provider: Vec<String>,
) -> BTreeSet<String> {
    let rows = app.rows().await;
    assert!(
        rows.iter().all(|(_, state)| *state == "active"),
        "{vendor}: {rows:?}"
    );
    let gateway: BTreeSet<String> = rows.into_iter().map(|(id, _)| id).collect();
    let provider: BTreeSet<String> = at_provider.into_iter().collect();
    assert_eq!(
        gateway, provider,
        "gateway and {vendor} disagree after reconcile"
    );
    provider
}

/// For a client the provider no longer holds (deleted behind the gateway's
/// back): an update answers RFC 7592's `401 invalid_token` (the client does
/// not exist), and a delete succeeds, since the client is gone either way.
pub async fn assert_missing_at_provider_reads_as_gone(app: &TestApp, client: &Value) {
    let response = app
        .update(
            client,
            Some(token_of(client)),
            &update_body(client, web_client()),
        )
        .await;
    let (error, _) = error_of(response, StatusCode::UNAUTHORIZED).await;
    assert_eq!(
        error, "invalid_token",
        "RFC 7592: the client does not exist"
    );
    let deleted = app.delete(client, Some(token_of(client))).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
}

impl TestApp {
    /// Reconciles as the background task would once every row written so
    /// far is older than the grace period: the clock is moved past it first.
    pub async fn reconcile(&self) -> ReconcileReport {
        self.clock
            .advance(self.reconciler.grace() + Duration::from_secs(1));
        self.reconciler.reconcile().await.unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GETs `path` and parses the JSON answer.
    pub async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// GETs `path` and reads the answer as text.
    pub async fn get_text(&self, path: &str) -> String {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Every client row of the gateway as (id, state), in id order.
    pub async fn rows(&self) -> Vec<(String, &'static str)> {
        self.service
            .list(None, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.client_id.to_string(), c.state.as_str()))
            .collect()
    }

    /// A browser's CORS preflight of `method` at `url` from `origin`.
    pub async fn preflight(&self, url: &str, origin: &str, method: &str) -> Response {
        self.http
            .request(reqwest::Method::OPTIONS, url)
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header(
                "access-control-request-headers",
                "content-type, authorization",
            )
            .send()
            .await
            .unwrap()
    }

    /// A cross-origin GET of `path` from `origin`.
    pub async fn get_from(&self, path: &str, origin: &str) -> Response {
        self.http
            .get(self.url(path))
            .header("origin", origin)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_register(&self, body: &Value) -> Response {
        self.http
            .post(self.url("/register"))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Registers and returns the client information response.
    pub async fn register(&self, body: &Value) -> Value {
        let response = self.post_register(body).await;
        let status = response.status();
        let json: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json
    }

    /// Registers and returns the 400 error code and description.
    pub async fn register_error(&self, body: &Value) -> (String, String) {
        let response = self.post_register(body).await;
        error_of(response, StatusCode::BAD_REQUEST).await
    }

    pub async fn read(&self, client: &Value, token: Option<&str>) -> Response {
        with_token(self.http.get(uri_of(client)), token)
            .send()
            .await
            .unwrap()
    }

    pub async fn update(&self, client: &Value, token: Option<&str>, body: &Value) -> Response {
        with_token(self.http.put(uri_of(client)), token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Reads `client` with its own token and parses the answer.
    pub async fn read_json(&self, client: &Value) -> Value {
        self.read(client, Some(token_of(client)))
            .await
            .json()
            .await
            .unwrap()
    }

    /// Replaces `client`'s registration with `metadata`, with its own token.
    pub async fn replace(&self, client: &Value, metadata: Value) -> Response {
        self.update(
            client,
            Some(token_of(client)),
            &update_body(client, metadata),
        )
        .await
    }

    pub async fn delete(&self, client: &Value, token: Option<&str>) -> Response {
        with_token(self.http.delete(uri_of(client)), token)
            .send()
            .await
            .unwrap()
    }
}

pub fn uri_of(client: &Value) -> String {
    client["registration_client_uri"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub fn id_of(client: &Value) -> &str {
    client["client_id"].as_str().unwrap()
}

pub fn token_of(client: &Value) -> &str {
    client["registration_access_token"].as_str().unwrap()
}

/// `request` with `Authorization: Bearer token`, or without the header.
pub fn with_token(
    request: reqwest::RequestBuilder,
    token: Option<&str>,
) -> reqwest::RequestBuilder {
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

/// The audit events of a JSON log, in order.
pub fn audit_events(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["target"] == "audit")
        .collect()
}

/// Asserts the status and an RFC error body; returns (error, error_description).
pub async fn error_of(response: Response, status: StatusCode) -> (String, String) {
    assert_eq!(response.status(), status);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = response.json().await.unwrap();
    (
        body["error"].as_str().unwrap().to_owned(),
        body["error_description"].as_str().unwrap().to_owned(),
    )
}

/// Asserts that registering `body` is `400 invalid_client_metadata` with
/// a description that mentions `needle`.
pub async fn assert_metadata_refused(app: &TestApp, body: Value, needle: &str) {
    let (code, description) = app.register_error(&body).await;
    assert_eq!(code, "invalid_client_metadata", "{body} -> {description}");
    assert!(
        description.contains(needle),
        "{body}: `{description}` should mention `{needle}`"
    );
}

/// The seconds of a response's `Retry-After`.
pub fn retry_after(response: &Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// A minimal valid web client.
pub fn web_client() -> Value {
    json!({ "redirect_uris": ["https://app.example.com/cb"] })
}

/// The update body that keeps a client as it is (RFC 7592 §2.2 shape).
pub fn update_body(client: &Value, metadata: Value) -> Value {
    let mut body = metadata;
    body["client_id"] = client["client_id"].clone();
    body
}

/// The path of the gateway binary built for these tests.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_dcr-gateway")
}

/// A free TCP port on loopback (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The gateway's binary running with its config in `dir`, behind the
/// Hydra fake (returned too: it must outlive the server).
pub async fn server_behind_hydra(dir: &Path) -> (ServerProcess, hydra::HydraFake) {
    let port = free_port();
    let hydra = hydra::HydraFake::start().await;
    let config = write_hydra_config(dir, port, &hydra);
    (ServerProcess::start(&config, port).await, hydra)
}

/// Writes a configuration for the binary ([`write_config`]) whose provider
/// is `hydra`.
pub fn write_hydra_config(dir: &Path, port: u16, hydra: &hydra::HydraFake) -> PathBuf {
    let config = write_config(dir, port);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "[provider]\nkind = \"hydra\"\nadmin_url = \"{0}\"\nissuer = \"{0}\"\n",
        hydra.base
    ));
    std::fs::write(&config, text).unwrap();
    config
}

/// Writes a configuration for the binary: a store in `dir`, listening on `port`.
pub fn write_config(dir: &Path, port: u16) -> PathBuf {
    let store = format!("sqlite://{}", dir.join("gateway.db").display());
    write_config_with_store(dir, port, &store)
}

/// Writes a configuration for the binary with the given store URL; the cache
/// keeps entries for ten minutes, so only invalidation can refresh them.
pub fn write_config_with_store(dir: &Path, port: u16, store_url: &str) -> PathBuf {
    let path = dir.join(format!("gateway-{port}.toml"));
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\
             [store]\nurl = \"{store_url}\"\nencryption_key = \"{TEST_ENCRYPTION_KEY}\"\n[cache]\nttl = \"10m\"\n[log]\nformat = \"json\"\n{NO_RATE_LIMITS}"
        ),
    )
    .unwrap();
    path
}

/// Polls `check` every 50 ms for up to 5 s; true as soon as it holds.
pub async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// The gateway binary serving `config`, killed when dropped.
pub struct ServerProcess {
    pub child: Child,
    pub base: String,
}

impl ServerProcess {
    pub async fn start(config: &Path, port: u16) -> Self {
        Self::start_logging(config, port, None, "info").await
    }

    /// Starts the server with its log (stderr), filtered by `filter`
    /// (`RUST_LOG`), written to `log`.
    pub async fn start_logging(config: &Path, port: u16, log: Option<&Path>, filter: &str) -> Self {
        let stderr = match log {
            Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
            None => Stdio::null(),
        };
        let mut command = Command::new(binary());
        command
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", filter)
            .stderr(stderr);
        Self::start_command(command, port).await
    }

    /// Runs `command`, a gateway serving on `port`, and waits until it is
    /// ready.
    pub async fn start_command(mut command: Command, port: u16) -> Self {
        let child = command.stdout(Stdio::null()).spawn().unwrap();
        // Owned from here on, so that a panic below still kills the child.
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        for _ in 0..400 {
            if let Ok(r) = http.get(format!("{}/readyz", server.base)).send().await {
                if r.status().is_success() {
                    return server;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the gateway did not become ready on port {port}");
    }
}

impl ServerProcess {
    /// Registers `body` over HTTP and returns the client information
    /// response (asserting a 201).
    pub async fn register(&self, body: &Value) -> Value {
        register_at(&reqwest::Client::new(), &self.base, body).await
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Stops the gateway as an operator would (SIGTERM), so that its log
    /// writer writes out what is queued; kills it if it takes over 10 s.
    pub async fn stop(mut self) {
        self.terminate();
        self.exit_within(Duration::from_secs(10)).await;
    }

    /// Waits up to `limit` for the process to exit; its status if it did.
    pub async fn exit_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        for _ in 0..(limit.as_millis() / 50) {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Registers `body` at the gateway at `base` with `http` and returns the
/// client information response (asserting a 201).
pub async fn register_at(http: &reqwest::Client, base: &str, body: &Value) -> Value {
    let response = http
        .post(format!("{base}/register"))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

/// Runs the CLI and returns (exit success, stdout, stderr).
pub fn run_cli(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(binary()).args(args).output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// An HTTPS server on loopback answering every GET with `body`, with a
/// certificate made for this test. Returns its address and the CA PEM path.
pub async fn https_document_server(dir: &Path, body: Value) -> (SocketAddr, PathBuf) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert_pem = certified.cert.pem();
    let key_pem = certified.key_pair.serialize_pem();
    let ca_path = dir.join("test-ca.pem");
    std::fs::write(&ca_path, &cert_pem).unwrap();
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
        cert_pem.into_bytes(),
        key_pem.into_bytes(),
    )
    .await
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new().fallback(move || {
        let body = body.clone();
        async move { axum::Json(body) }
    });
    tokio::spawn(axum_server::from_tcp_rustls(listener, tls).serve(router.into_make_service()));
    (addr, ca_path)
}

/// Runs `future` with the audit events it records captured: what it
/// returned, and each event as JSON.
///
/// Audit events outside such a future go to a global subscriber that
/// drops them. It is there for tracing's callsite cache: while only one
/// subscriber is registered, a callsite met for the first time is judged
/// by the subscriber of the thread that meets it, which in another test
/// is none at all, and the audit callsite would stay "never" for every
/// test, this one included.
pub async fn audited<T>(future: impl std::future::Future<Output = T>) -> (T, Vec<Value>) {
    use tracing::instrument::WithSubscriber;
    static DROPPED_ELSEWHERE: std::sync::Once = std::sync::Once::new();
    DROPPED_ELSEWHERE.call_once(|| {
        let sink = tracing_subscriber::fmt()
            .with_env_filter("audit=info")
            .with_writer(std::io::sink)
            .finish();
        tracing::subscriber::set_global_default(sink).unwrap();
    });
    #[derive(Clone, Default)]
    struct Lines(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter("audit=info")
        .with_writer(move || writer.clone())
        .finish();
    let output = future.with_subscriber(subscriber).await;
    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    let events = text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    (output, events)
}
