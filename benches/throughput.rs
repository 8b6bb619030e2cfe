//! Throughput and latency of the gateway over real HTTP/1.1 keep-alive
//! connections, against a bare hyper server in the same run.
//!
//! `cargo bench --bench throughput` starts the gateway in process on loopback
//! (built-in registry, a temporary SQLite file) and drives it at several
//! concurrencies: register, cached read, replace, delete. It then serves a
//! fixed body of the size of a client read from a bare hyper server and
//! reports the gateway's read throughput as a ratio of it.
//!
//! Options (after `--`):
//! - `--seconds N`: time per measurement (default 3).
//! - `--peer-registration-endpoint URL`: also drive another RFC 7591/7592
//!   server (register and read) and print the gateway's ratios to it.
//! - `--memory N`: register N clients, then print peak RSS.
//! - `--population N`: read latency with 1k clients in the store, then with
//!   N, in the same run (reads spread over 2048 clients, so most come from
//!   the store, not the cache).
//! - `--serve-bare BYTES`: only serve the bare hyper baseline, a fixed JSON
//!   body of BYTES bytes, print its address and run until killed (for an
//!   external load generator: `benches/as-shipped.sh`).

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dcr_gateway::app;
use dcr_gateway::clock::SystemClock;
use dcr_gateway::config::Config;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

const CONCURRENCIES: [usize; 4] = [1, 8, 32, 128];

/// The gateway binary's allocator, so that the bench measures what runs (the
/// baselines share the process and the allocator).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One keep-alive HTTP/1.1 connection.
struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Connection {
    async fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        Self { sender }
    }

    async fn call(
        &mut self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Bytes) {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "bench");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Full::new(Bytes::from(body.to_string()))
            }
            None => Full::new(Bytes::new()),
        };
        self.sender.ready().await.unwrap();
        let response = self
            .sender
            .send_request(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, bytes)
    }
}

/// What a measurement produced.
struct Figures {
    requests: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
}

impl Figures {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn line(&self, name: &str, concurrency: usize) -> String {
        let ms = |q: f64| self.latency.value_at_quantile(q) as f64 / 1000.0;
        format!(
            "| {name:<10} | {concurrency:>4} | {:>10.0} | {:>8.2} | {:>8.2} | {:>8.2} |",
            self.per_second(),
            ms(0.5),
            ms(0.99),
            ms(0.999)
        )
    }
}

/// A target speaking RFC 7591/7592.
#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    registration_path: String,
}

fn client_body() -> Value {
    json!({
        "redirect_uris": ["https://app.example.com/cb"],
        "client_name": "Benchmark client",
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid",
    })
}

/// Path and token of a registered client, from a registration answer.
fn handle_of(answer: &Bytes) -> (String, String, String) {
    let client: Value = serde_json::from_slice(answer).expect("a JSON registration answer");
    let uri = client["registration_client_uri"]
        .as_str()
        .expect("registration_client_uri");
    let path = uri.splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap();
    (
        path,
        client["registration_access_token"]
            .as_str()
            .unwrap()
            .to_owned(),
        client["client_id"].as_str().unwrap().to_owned(),
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Operation {
    /// A plain GET of `/` (the bare baseline).
    Plain,
    Register,
    Read,
    Replace,
    Delete,
}

/// Runs `operation` from `concurrency` connections for `seconds` (deletes:
/// until each connection's clients are gone).
async fn measure(
    target: &Target,
    operation: Operation,
    concurrency: usize,
    seconds: u64,
) -> Figures {
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut connection = Connection::open(target.addr).await;
            let mut latency = Histogram::<u64>::new(3).unwrap();
            let body = client_body();
            // Deletes and reads need clients of their own; registering them
            // is not measured.
            let mut clients = Vec::new();
            let preparation = match operation {
                Operation::Plain | Operation::Register => 0,
                Operation::Read | Operation::Replace => 1,
                Operation::Delete => 200,
            };
            for _ in 0..preparation {
                let (_, answer) = connection
                    .call(Method::POST, &target.registration_path, None, Some(&body))
                    .await;
                clients.push(handle_of(&answer));
            }
            let begin = Instant::now();
            let deadline = begin + Duration::from_secs(seconds);
            let mut requests = 0u64;
            while Instant::now() < deadline {
                let sent = Instant::now();
                let status = match operation {
                    Operation::Plain => connection.call(Method::GET, "/", None, None).await.0,
                    Operation::Register => {
                        connection
                            .call(Method::POST, &target.registration_path, None, Some(&body))
                            .await
                            .0
                    }
                    Operation::Read => {
                        let (path, token, _) = &clients[0];
                        connection
                            .call(Method::GET, path, Some(token), None)
                            .await
                            .0
                    }
                    Operation::Replace => {
                        let (path, token, id) = &clients[0];
                        let mut update = body.clone();
                        update["client_id"] = json!(id);
                        connection
                            .call(Method::PUT, path, Some(token), Some(&update))
                            .await
                            .0
                    }
                    Operation::Delete => {
                        let Some((path, token, _)) = clients.pop() else {
                            break;
                        };
                        connection
                            .call(Method::DELETE, &path, Some(&token), None)
                            .await
                            .0
                    }
                };
                assert!(status < 300, "HTTP {status}");
                latency.record(sent.elapsed().as_micros() as u64).unwrap();
                requests += 1;
            }
            (requests, latency, begin.elapsed())
        }));
    }
    collect(tasks).await
}

/// Adds up what the connections measured; the elapsed time is the longest
/// measured span of any connection (setup excluded).
async fn collect(tasks: Vec<tokio::task::JoinHandle<(u64, Histogram<u64>, Duration)>>) -> Figures {
    let mut latency = Histogram::<u64>::new(3).unwrap();
    let mut requests = 0;
    let mut elapsed = Duration::ZERO;
    for task in tasks {
        let (n, measured, span) = task.await.unwrap();
        requests += n;
        latency.add(measured).unwrap();
        elapsed = elapsed.max(span);
    }
    Figures {
        requests,
        elapsed,
        latency,
    }
}

/// A bare hyper server answering every request with `body`.
async fn bare_hyper(body: Bytes) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            stream.set_nodelay(true).unwrap();
            let body = body.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |_request: Request<hyper::body::Incoming>| {
                        let body = body.clone();
                        async move {
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .header("content-type", "application/json")
                                    .body(Full::new(body))
                                    .unwrap(),
                            )
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// A JSON object of exactly `size` bytes (at least 11).
fn json_body_of_size(size: usize) -> Bytes {
    let filler = "x".repeat(size.saturating_sub(11));
    Bytes::from(format!("{{\"body\":\"{filler}\"}}"))
}

/// The gateway in process on loopback, on a temporary SQLite file. The load
/// generator is one address opening up to 128 connections, past the default
/// per-address cap (64), so the cap is raised here.
async fn gateway(dir: &std::path::Path) -> (Target, Arc<dcr_gateway::store::cached::CachedStore>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let toml = format!(
        "[server]\nlisten = \"{addr}\"\npublic_url = \"http://{addr}\"\n\
         max_connections_per_ip = 1024\n\
         [store]\nurl = \"sqlite://{}\"\n[cache]\nmax_clients = 2000000\n\
         [limits]\nregister_per_ip = \"unlimited\"\nmanage_per_client = \"unlimited\"\n\
         [provider]\nreconcile_interval = \"0s\"\n",
        dir.join("bench.db").display()
    );
    let config = Config::from_sources(&toml, Vec::new()).unwrap();
    let gateway = app::build_gateway(&config, Arc::new(SystemClock))
        .await
        .unwrap();
    let router = app::build_router(&gateway, &config);
    tokio::spawn(app::serve(
        listener,
        router,
        std::future::pending(),
        &config,
    ));
    (
        Target {
            addr,
            registration_path: "/register".into(),
        },
        gateway.cache,
    )
}

fn argument(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    if let Some(size) = argument("--serve-bare").and_then(|s| s.parse::<usize>().ok()) {
        let addr = bare_hyper(json_body_of_size(size)).await;
        println!("{addr}");
        return std::future::pending().await;
    }
    let seconds: u64 = argument("--seconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let (target, _cache) = gateway(dir.path()).await;

    if let Some(count) = argument("--memory").and_then(|s| s.parse::<usize>().ok()) {
        return memory(&target, count).await;
    }
    if let Some(count) = argument("--population").and_then(|s| s.parse::<usize>().ok()) {
        return population(&target, count, seconds).await;
    }

    println!("| operation  | conc | requests/s | p50 ms   | p99 ms   | p99.9 ms |");
    println!("|------------|------|------------|----------|----------|----------|");
    let mut gateway_reads = Vec::new();
    let mut gateway_registers = Vec::new();
    for concurrency in CONCURRENCIES {
        for (name, operation) in [
            ("register", Operation::Register),
            ("read", Operation::Read),
            ("replace", Operation::Replace),
            ("delete", Operation::Delete),
        ] {
            let figures = measure(&target, operation, concurrency, seconds).await;
            println!("{}", figures.line(name, concurrency));
            match operation {
                Operation::Read => gateway_reads.push(figures.per_second()),
                Operation::Register => gateway_registers.push(figures.per_second()),
                _ => {}
            }
        }
    }

    // The bare baseline answers a body of the size of a client read.
    let mut connection = Connection::open(target.addr).await;
    let (_, answer) = connection
        .call(Method::POST, "/register", None, Some(&client_body()))
        .await;
    let (path, token, _) = handle_of(&answer);
    let (_, read_body) = connection
        .call(Method::GET, &path, Some(&token), None)
        .await;
    let bare = bare_hyper(read_body.clone()).await;
    let bare_target = Target {
        addr: bare,
        registration_path: "/".into(),
    };
    println!();
    println!(
        "bare hyper, fixed {}-byte body (the size of a client read):",
        read_body.len()
    );
    println!("| conc | bare requests/s | gateway read requests/s | ratio |");
    println!("|------|-----------------|-------------------------|-------|");
    for (i, concurrency) in CONCURRENCIES.into_iter().enumerate() {
        let figures = measure(&bare_target, Operation::Plain, concurrency, seconds).await;
        println!(
            "| {concurrency:>4} | {:>15.0} | {:>23.0} | {:>5.2} |",
            figures.per_second(),
            gateway_reads[i],
            gateway_reads[i] / figures.per_second()
        );
    }

    if let Some(endpoint) = argument("--peer-registration-endpoint") {
        let url = url::Url::parse(&endpoint).unwrap();
        let addr = SocketAddr::new(
            url.host_str().unwrap().parse().unwrap(),
            url.port().unwrap(),
        );
        let peer = Target {
            addr,
            registration_path: url.path().to_owned(),
        };
        println!();
        println!("peer at {endpoint}:");
        println!(
            "| conc | peer register/s | gateway register/s | ratio | peer read/s | gateway read/s | ratio |"
        );
        println!(
            "|------|-----------------|--------------------|-------|-------------|----------------|-------|"
        );
        for (i, concurrency) in CONCURRENCIES.into_iter().enumerate() {
            let register = measure(&peer, Operation::Register, concurrency, seconds)
                .await
                .per_second();
            let read = measure(&peer, Operation::Read, concurrency, seconds)
                .await
                .per_second();
            println!(
                "| {concurrency:>4} | {register:>15.0} | {:>18.0} | {:>5.2} | {read:>11.0} | {:>14.0} | {:>5.2} |",
                gateway_registers[i],
                gateway_registers[i] / register,
                gateway_reads[i],
                gateway_reads[i] / read
            );
        }
    }
}

/// Registers `count` clients over 128 connections; keeps every `keep_every`-th handle.
async fn populate(
    target: &Target,
    count: usize,
    keep_every: usize,
) -> Vec<(String, String, String)> {
    let per_task = count.div_ceil(128);
    let mut tasks = Vec::new();
    for task in 0..128 {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut connection = Connection::open(target.addr).await;
            let body = client_body();
            let mut kept = Vec::new();
            for i in 0..per_task {
                let (status, answer) = connection
                    .call(Method::POST, &target.registration_path, None, Some(&body))
                    .await;
                assert_eq!(status, 201);
                if (task * per_task + i) % keep_every == 0 {
                    kept.push(handle_of(&answer));
                }
            }
            kept
        }));
    }
    let mut handles = Vec::new();
    for task in tasks {
        handles.extend(task.await.unwrap());
    }
    handles
}

/// Registers `count` clients, then prints peak RSS.
async fn memory(target: &Target, count: usize) {
    let before = peak_rss_mb();
    let started = Instant::now();
    populate(target, count, usize::MAX).await;
    println!(
        "registered {count} clients in {:.1} s; peak RSS {:.1} MB (before: {:.1} MB)",
        started.elapsed().as_secs_f64(),
        peak_rss_mb(),
        before
    );
}

/// Reads spread over `handles` from 32 connections for `seconds`.
async fn spread_reads(
    target: &Target,
    handles: &[(String, String, String)],
    seconds: u64,
) -> Figures {
    let handles = Arc::new(handles.to_vec());
    let mut tasks = Vec::new();
    for task in 0..32 {
        let target = target.clone();
        let handles = Arc::clone(&handles);
        tasks.push(tokio::spawn(async move {
            let mut connection = Connection::open(target.addr).await;
            let mut latency = Histogram::<u64>::new(3).unwrap();
            let begin = Instant::now();
            let deadline = begin + Duration::from_secs(seconds);
            let mut requests = 0u64;
            let mut next = task * 997;
            while Instant::now() < deadline {
                let (path, token, _) = &handles[next % handles.len()];
                next += 31;
                let sent = Instant::now();
                let (status, _) = connection.call(Method::GET, path, Some(token), None).await;
                assert_eq!(status, 200);
                latency.record(sent.elapsed().as_micros() as u64).unwrap();
                requests += 1;
            }
            (requests, latency, begin.elapsed())
        }));
    }
    collect(tasks).await
}

/// Read latency with 1k clients, then with `count`, in one run.
async fn population(target: &Target, count: usize, seconds: u64) {
    let small = populate(target, 1000, 1).await;
    let small: Vec<_> = small.into_iter().cycle().take(2048).collect();
    let with_small = spread_reads(target, &small, seconds).await;
    let started = Instant::now();
    let keep_every = (count / 2048).max(1);
    let large = populate(target, count.saturating_sub(1000), keep_every).await;
    println!(
        "grew the store to {count} clients in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let with_large = spread_reads(target, &large, seconds).await;
    println!("| clients | reads/s | p50 ms | p99 ms |");
    println!("|---------|---------|--------|--------|");
    for (n, figures) in [(1000, &with_small), (count, &with_large)] {
        println!(
            "| {n:>7} | {:>7.0} | {:>6.2} | {:>6.2} |",
            figures.per_second(),
            figures.latency.value_at_quantile(0.5) as f64 / 1000.0,
            figures.latency.value_at_quantile(0.99) as f64 / 1000.0
        );
    }
    println!(
        "p99 ratio ({count} / 1000): {:.2}; peak RSS {:.1} MB",
        with_large.latency.value_at_quantile(0.99) as f64
            / with_small.latency.value_at_quantile(0.99) as f64,
        peak_rss_mb()
    );
}
