//! The `dcr-gateway` command: serve, check a configuration, and operate on
//! registered clients through the same registration service as the HTTP API.

#![allow(clippy::print_stdout)] // a CLI prints its answers

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use serde::Serialize;
use tokio::net::TcpListener;

use dcr_gateway::app;
use dcr_gateway::clock::{Clock, SystemClock};
use dcr_gateway::config::Config;
use dcr_gateway::domain::{ClientId, MetadataDocument, RegisteredClient};
use dcr_gateway::error_text::with_causes;
use dcr_gateway::http::console;
use dcr_gateway::logging::traces;
use dcr_gateway::outbound::CollectorClient;
use dcr_gateway::registration::RegistrationService;

/// OAuth 2.0 Dynamic Client Registration gateway.
/// mimalloc: the request path allocates a lot of small, short-lived objects,
/// and glibc malloc/free showed up as about 9% of a profile of the read bench.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "dcr-gateway", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (embedded defaults when no file is given).
    Serve {
        /// TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Validate a configuration file and list every error.
    CheckConfig {
        /// TOML configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Bring gateway and provider in line and report drift (exit 1 on drift).
    Reconcile {
        /// TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Manage initial access tokens (RFC 7591 §3).
    Iat {
        /// TOML configuration file.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: IatAction,
    },
    /// Inspect and delete registered clients.
    Clients {
        /// TOML configuration file.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: ClientsAction,
    },
    /// Operator tokens, which sign operators in to the console.
    Operator {
        /// TOML configuration file.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: OperatorAction,
    },
    /// The gateway's signing keys (`[front] tokens = "gateway"`).
    Keys {
        /// TOML configuration file.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: KeysAction,
    },
}

#[derive(Debug, Subcommand)]
enum KeysAction {
    /// List the keys: kid, algorithm, from when each signs, when it retires.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add a key, published now, signing in five minutes; the others retire
    /// once the tokens they signed expired.
    Rotate,
}

#[derive(Debug, Subcommand)]
enum OperatorAction {
    /// Make a token for an operator; it is printed once and never again.
    Create {
        /// Who it is for: shown in the console and in the audit trail.
        #[arg(long)]
        name: String,
        /// Lifetime, e.g. `90d`, more than zero (default: no expiry).
        #[arg(long, value_parser = positive_duration)]
        expires_in: Option<humantime::Duration>,
    },
    /// List tokens: id, name, expiry (never the token).
    List,
    /// Revoke a token; its console sessions end at once.
    Revoke {
        /// The token's id (it may begin with `-`).
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum IatAction {
    /// Make a token; it is printed once and never again.
    Create {
        /// Registrations it allows, at least 1 (default: unlimited).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        max_uses: Option<u32>,
        /// Lifetime, e.g. `24h`, more than zero (default: no expiry).
        #[arg(long, value_parser = positive_duration)]
        expires_in: Option<humantime::Duration>,
        /// Policy for registrations made with it (default: the default policy).
        #[arg(long)]
        policy: Option<String>,
        /// Free text for operators.
        #[arg(long)]
        note: Option<String>,
    },
    /// List tokens: id, uses left, expiry, policy (never the token).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token.
    Revoke {
        /// The token's id (it may begin with `-`).
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum ClientsAction {
    /// List clients in id order.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Start after this client id.
        #[arg(long, allow_hyphen_values = true)]
        after: Option<String>,
        /// At most this many clients.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Show one client.
    Show {
        /// The client id (it may begin with `-`).
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete a client, at the provider and in the gateway.
    Delete {
        /// The client id (it may begin with `-`).
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Issue a new client secret, through the provider; printed once.
    RotateSecret {
        /// The client id (it may begin with `-`).
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

/// A lifetime that is more than zero: a token that is born expired is dead.
fn positive_duration(text: &str) -> Result<humantime::Duration, String> {
    let duration: humantime::Duration = text.parse().map_err(|e| format!("{e}"))?;
    if duration.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(duration)
}

/// The operator's view of a client: never a secret or a hash.
#[derive(Serialize)]
struct ClientView {
    client_id: String,
    state: &'static str,
    client_id_issued_at: i64,
    has_client_secret: bool,
    client_secret_expires_at: i64,
    #[serde(flatten)]
    metadata: MetadataDocument,
}

impl From<&RegisteredClient> for ClientView {
    fn from(client: &RegisteredClient) -> Self {
        Self {
            client_id: client.client_id.to_string(),
            state: client.state.as_str(),
            client_id_issued_at: client.issued_at,
            has_client_secret: client.client_secret.is_some(),
            client_secret_expires_at: client.client_secret_expires_at,
            metadata: client.metadata.to_document(),
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config } => serve(config.as_deref()).await,
        Command::CheckConfig { config } => check_config(&config).await,
        Command::Clients { config, action } => clients(config.as_deref(), action).await,
        Command::Iat { config, action } => iat(config.as_deref(), action).await,
        Command::Reconcile { config, json } => reconcile(config.as_deref(), json).await,
        Command::Keys { config, action } => keys(config.as_deref(), action).await,
        Command::Operator { config, action } => operator(config.as_deref(), action).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            // Messages may quote what apps or providers sent; keep their lines.
            let lines: Vec<Cow<'_, str>> = message.split('\n').map(terminal_safe).collect();
            eprintln!("dcr-gateway: {}", lines.join("\n"));
            ExitCode::FAILURE
        }
    }
}

fn load(path: Option<&Path>) -> Result<Config, String> {
    Config::load(path).map_err(|e| format!("invalid configuration:\n{e}"))
}

/// The registration service over the configured store and provider, for the
/// operator commands (the same one the HTTP routes use). Their audit events
/// (and warnings) go to stderr, like the server's; stdout stays the
/// command's own.
async fn service(config: &Config) -> Result<Arc<RegistrationService>, String> {
    gateway(config).await.map(|gateway| gateway.service)
}

/// The gateway over the configured store and provider, for the operator
/// commands, logging as [`service`] says.
async fn gateway(config: &Config) -> Result<app::Gateway, String> {
    config.log.init(Some("warn,audit=info"));
    app::build_gateway(config, Arc::new(SystemClock))
        .await
        .map_err(|e| with_causes(&e))
}

async fn serve(path: Option<&Path>) -> Result<(), String> {
    let config = load(path)?;
    let logging = config
        .log
        .init_background(|| CollectorClient::new(traces::EXPORT_TIMEOUT))
        .map_err(|e| with_causes(&e))?;
    let gateway = app::build_gateway(&config, Arc::new(SystemClock))
        .await
        .map_err(|e| with_causes(&e))?;
    let listener = TcpListener::bind(config.server.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.server.listen))?;
    let addr = listener.local_addr().map_err(|e| with_causes(&e))?;
    tracing::info!(%addr, public_url = %config.server.public_url, provider = ?config.provider.kind, "listening");
    app::warn_about(&config);
    if let Err(problem) = app::check_provider(&config).await {
        tracing::error!(%problem, "sign-ins fail until the identity provider answers; /readyz says so");
    }
    // Reconcile and the janitor run until this guard drops, when serving ends.
    let _reconciling = gateway.reconciler.spawn(config.provider.reconcile_interval);
    let router = app::build_router(&gateway, &config);
    let served = app::serve(listener, router, shutdown_signal(), &config).await;
    // The uses of the last seconds are not left in memory.
    if let Err(error) = gateway.service.usage().flush().await {
        tracing::warn!(%error, "the last client uses were not recorded");
    }
    if let Err(error) = gateway.service.journal().flush().await {
        tracing::warn!(%error, "the last activity was not recorded");
    }
    let served = served.map_err(|e| format!("server failed: {e}"));
    if served.is_ok() {
        tracing::info!("stopped");
    }
    // The last spans are sent, and the last lines written.
    logging.close().await;
    served
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

async fn reconcile(path: Option<&Path>, json: bool) -> Result<(), String> {
    let config = load(path)?;
    let gateway = gateway(&config).await?;
    let report = gateway
        .reconciler
        .reconcile()
        .await
        .map_err(|e| with_causes(&e))?;
    let ids = |list: &[ClientId]| list.iter().map(ToString::to_string).collect::<Vec<_>>();
    let sections = [
        (
            "abandoned_removed_at_provider",
            ids(&report.abandoned_removed_at_provider),
        ),
        (
            "abandoned_never_created",
            ids(&report.abandoned_never_created),
        ),
        (
            "abandoned_possible_orphans",
            ids(&report.abandoned_possible_orphans),
        ),
        ("deletions_completed", ids(&report.deletions_completed)),
        ("replaces_completed", ids(&report.replaces_completed)),
        ("orphans_removed", ids(&report.orphans_removed)),
        ("unknown_to_gateway", ids(&report.unknown_to_gateway)),
        ("missing_at_provider", ids(&report.missing_at_provider)),
        ("failed", report.failed.clone()),
    ];
    if json {
        let object: serde_json::Map<String, serde_json::Value> = sections
            .iter()
            .map(|(name, list)| ((*name).to_owned(), serde_json::json!(list)))
            .collect();
        print_json(&object)?;
    } else {
        for (name, list) in &sections {
            println!("{name}: {}", list.len());
            for item in list {
                println!("  {}", terminal_safe(item));
            }
        }
    }
    if report.has_drift() {
        return Err("gateway and provider disagree (see above)".into());
    }
    Ok(())
}

async fn check_config(path: &Path) -> Result<(), String> {
    let config = load(Some(path))?;
    app::check_provider(&config).await?;
    println!("{}: ok", path.display());
    Ok(())
}

async fn keys(path: Option<&Path>, action: KeysAction) -> Result<(), String> {
    let gateway = gateway(&load(path)?).await?;
    let tokens = gateway
        .front
        .as_ref()
        .and_then(|front| front.gateway_tokens())
        .ok_or("the gateway signs no tokens: set [front] tokens = \"gateway\"")?;
    let now = SystemClock.now_unix();
    match action {
        KeysAction::List { json } => {
            tokens.keys().loaded(now).await.map_err(|e| e.description)?;
            let keys = tokens.keys().list().await.map_err(|e| e.description)?;
            if json {
                print_json(&keys)?;
            } else {
                for key in keys {
                    let retired = key.retired_at.map_or("-".to_owned(), |at| at.to_string());
                    println!(
                        "{}  {}  signs from {}  retires {retired}",
                        key.kid, key.algorithm, key.signs_from
                    );
                }
            }
        }
        KeysAction::Rotate => {
            let kid = tokens.keys().rotate(now).await.map_err(|e| e.description)?;
            println!("new key {kid}: published now, signs in five minutes");
        }
    }
    Ok(())
}

async fn clients(path: Option<&Path>, action: ClientsAction) -> Result<(), String> {
    let service = service(&load(path)?).await?;
    match action {
        ClientsAction::List { json, after, limit } => {
            let clients = service
                .list(after.as_deref(), limit)
                .await
                .map_err(|e| with_causes(&e))?;
            let views: Vec<ClientView> = clients.iter().map(ClientView::from).collect();
            if json {
                print_json(&views)?;
            } else {
                print_table(&views);
            }
        }
        ClientsAction::Show { id, json } => {
            let client = service.show(&id).await.map_err(|e| with_causes(&e))?;
            let view = ClientView::from(&client);
            if json {
                print_json(&view)?;
            } else {
                print_details(&view)?;
            }
        }
        ClientsAction::Delete { id } => {
            service
                .remove(&id, CLI_ACTOR)
                .await
                .map_err(|e| with_causes(&e))?;
            println!("deleted {}", terminal_safe(&id));
        }
        ClientsAction::RotateSecret { id } => {
            let secret = service
                .rotate_secret(&id, CLI_ACTOR)
                .await
                .map_err(|e| with_causes(&e))?;
            println!("client_secret: {}", secret.expose());
        }
    }
    // The trail entry of a delete or rotation is written before the
    // process ends.
    service
        .journal()
        .flush()
        .await
        .map_err(|e| with_causes(&e))?;
    Ok(())
}

/// Who the audit trail names for what the CLI does.
const CLI_ACTOR: &str = "cli";

/// The operator's view of an initial access token: never the token.
#[derive(Serialize)]
struct TokenView {
    id: String,
    uses_left: Option<i64>,
    expires_at: Option<i64>,
    policy: Option<String>,
    note: Option<String>,
    created_at: i64,
    revoked: bool,
}

async fn iat(path: Option<&Path>, action: IatAction) -> Result<(), String> {
    let service = service(&load(path)?).await?;
    match action {
        IatAction::Create {
            max_uses,
            expires_in,
            policy,
            note,
        } => {
            let (token, record) = service
                .create_initial_access_token(max_uses, expires_in.map(Into::into), policy, note)
                .await
                .map_err(|e| with_causes(&e))?;
            println!("id: {}", record.id);
            println!("initial_access_token: {}", token.expose());
        }
        IatAction::List { json } => {
            let views: Vec<TokenView> = service
                .initial_access_tokens()
                .await
                .map_err(|e| with_causes(&e))?
                .into_iter()
                .map(|t| TokenView {
                    id: t.id,
                    uses_left: t.uses_left,
                    expires_at: t.expires_at,
                    policy: t.policy,
                    note: t.note,
                    created_at: t.created_at,
                    revoked: t.revoked,
                })
                .collect();
            if json {
                print_json(&views)?;
            } else {
                println!(
                    "{:<14} {:<10} {:<12} {:<12} {:<8} NOTE",
                    "ID", "USES_LEFT", "EXPIRES_AT", "POLICY", "REVOKED"
                );
                for v in &views {
                    let text = |o: Option<&str>| terminal_safe(o.unwrap_or("-")).into_owned();
                    println!(
                        "{:<14} {:<10} {:<12} {:<12} {:<8} {}",
                        terminal_safe(&v.id),
                        text(v.uses_left.map(|n| n.to_string()).as_deref()),
                        text(v.expires_at.map(|n| n.to_string()).as_deref()),
                        text(v.policy.as_deref()),
                        v.revoked,
                        text(v.note.as_deref())
                    );
                }
            }
        }
        IatAction::Revoke { id } => {
            service
                .revoke_initial_access_token(&id)
                .await
                .map_err(|e| with_causes(&e))?;
            println!("revoked {}", terminal_safe(&id));
        }
    }
    Ok(())
}

async fn operator(path: Option<&Path>, action: OperatorAction) -> Result<(), String> {
    let gateway = gateway(&load(path)?).await?;
    let tokens = gateway.operator_tokens.as_ref();
    match action {
        OperatorAction::Create { name, expires_in } => {
            let now = SystemClock.now_unix();
            let (token, record) =
                console::create_operator_token(tokens, &name, expires_in.map(Into::into), now)
                    .await
                    .map_err(|e| with_causes(&e))?;
            println!("id: {}", record.id);
            println!("operator_token: {}", token.expose());
        }
        OperatorAction::List => {
            println!("{:<14} {:<12} {:<8} NAME", "ID", "EXPIRES_AT", "REVOKED");
            for token in tokens
                .list_operator_tokens()
                .await
                .map_err(|e| with_causes(&e))?
            {
                println!(
                    "{:<14} {:<12} {:<8} {}",
                    terminal_safe(&token.id),
                    token
                        .expires_at
                        .map_or_else(|| "-".into(), |at| at.to_string()),
                    token.revoked,
                    terminal_safe(&token.name)
                );
            }
        }
        OperatorAction::Revoke { id } => {
            if !tokens
                .revoke_operator_token(&id)
                .await
                .map_err(|e| with_causes(&e))?
            {
                return Err(format!("no operator token `{}`", terminal_safe(&id)));
            }
            println!("revoked {}", terminal_safe(&id));
        }
    }
    Ok(())
}

fn print_json(value: &impl Serialize) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| with_causes(&e))?;
    println!("{text}");
    Ok(())
}

fn print_table(views: &[ClientView]) {
    println!(
        "{:<24} {:<8} {:<24} {:<20} GRANT_TYPES",
        "CLIENT_ID", "STATE", "NAME", "AUTH_METHOD"
    );
    for view in views {
        let metadata = &view.metadata;
        println!(
            "{:<24} {:<8} {:<24} {:<20} {}",
            terminal_safe(&view.client_id),
            view.state,
            terminal_safe(metadata.client_name.as_deref().unwrap_or("-")),
            terminal_safe(
                metadata
                    .token_endpoint_auth_method
                    .as_deref()
                    .unwrap_or("-")
            ),
            terminal_safe(
                &metadata
                    .grant_types
                    .as_deref()
                    .unwrap_or_default()
                    .join(",")
            )
        );
    }
}

fn print_details(view: &ClientView) -> Result<(), String> {
    let value = serde_json::to_value(view).map_err(|e| with_causes(&e))?;
    if let serde_json::Value::Object(members) = value {
        for (key, value) in members {
            let text = match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            println!("{:<34} {}", terminal_safe(&key), terminal_safe(&text));
        }
    }
    Ok(())
}

/// Text fit for an operator's terminal: control characters (ESC, CR, LF,
/// …), line and paragraph separators and bidirectional overrides are
/// written as escapes (`\u{1b}`, `\n`), so that what an app registered can
/// neither drive the terminal nor forge lines of the output. `--json` needs
/// none of this: JSON escapes control characters itself.
fn terminal_safe(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(
                c,
                '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}'
                    | '\u{2066}'..='\u{2069}'
            )
    };
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut safe = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            safe.extend(c.escape_debug());
        } else if unsafe_char(c) {
            safe.extend(c.escape_unicode());
        } else {
            safe.push(c);
        }
    }
    Cow::Owned(safe)
}
