//! Wiring: builds the registration service from the configuration, the router
//! around it, and serves on a listener it is given.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, TlsSettings};
use crate::connections::{self, ConnectionLimits};
use crate::domain::uri::is_local_url;
use crate::error_text::with_causes;
use crate::front::{Front, FrontParts, FrontSetupError};
use crate::http::console::{Console, ConsoleParts};
use crate::http::edge::Edge;
use crate::http::extract::json_value_limit;
use crate::http::rate_limit::Limits;
use crate::http::reads::HeldReads;
use crate::http::{self, HttpState};
use crate::outbound::{GuardedClient, OutboundError};
use crate::provider::registry::Registry;
use crate::provider::rest::ProviderSetupError;
use crate::reconcile::Reconciler;
use crate::registration::core::Core;
use crate::registration::journal::Journal;
use crate::registration::{
    RegistrationMode, RegistrationRules, RegistrationService, StatementVerifier,
};
use crate::software_statement::SoftwareStatements;
use crate::store::cached::CachedStore;
use crate::store::operators::OperatorTokens;
use crate::store::sql::SqlStore;
use crate::store::{ChangeListener, StoreError};
use crate::tasks::TaskGuard;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The store could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The outbound client could not be built.
    #[error(transparent)]
    Outbound(#[from] OutboundError),
    /// The provider backend could not be built.
    #[error(transparent)]
    Provider(#[from] ProviderSetupError),
    /// The authorization front could not be built.
    #[error(transparent)]
    Front(#[from] FrontSetupError),
}

/// The registration service and the cache in front of its store.
pub struct Gateway {
    /// The registration service.
    pub service: Arc<RegistrationService>,
    /// Reconcile and the expiry janitor (run by [`Reconciler::spawn`] or on
    /// demand).
    pub reconciler: Arc<Reconciler>,
    /// The read cache, for its statistics.
    pub cache: Arc<CachedStore>,
    /// The RFC 7592 read answers the HTTP edge holds, kept fresh by the
    /// cache's change events.
    pub read_answers: Arc<HeldReads>,
    /// The authorization front, when `[front]` is on.
    pub front: Option<Arc<Front>>,
    /// The operator console, when `[console]` is on.
    pub console: Option<Arc<Console>>,
    /// The operator tokens (the CLI makes them; the console checks them).
    pub operator_tokens: Arc<dyn OperatorTokens>,
    /// The front's janitor, stopped when the gateway is dropped.
    _front_janitor: Option<TaskGuard>,
    /// The reads of the gateway's signing keys that rotate them when due,
    /// stopped when the gateway is dropped.
    _key_rotation: Option<TaskGuard>,
    /// The writer of clients' uses, stopped when the gateway is dropped.
    _usage_flusher: TaskGuard,
    /// The writer of the journal, stopped when the gateway is dropped.
    _journal_flusher: TaskGuard,
}

/// Opens the store, puts the cache in front (following other processes'
/// changes), and builds the service over the configured registry (the
/// gateway's own, or a provider), all reading time from `clock`.
pub async fn build_gateway(
    config: &Config,
    clock: Arc<dyn Clock>,
) -> Result<Gateway, StartupError> {
    // The recorder first: what is built below keeps metric handles.
    crate::telemetry::install();
    let store = SqlStore::open(
        &config.store.url,
        config.store.max_connections,
        clock.clone(),
        config.store.encryption_key.clone(),
    )
    .await?;
    let read_answers = Arc::new(HeldReads::new(
        config.cache.read_answer_bytes(),
        config.cache.ttl,
    ));
    let cache = Arc::new(CachedStore::new(
        Arc::new(store.clone()),
        config.cache.max_clients,
        config.cache.client_bytes(),
        config.cache.ttl,
        vec![read_answers.clone() as Arc<dyn ChangeListener>],
    ));
    cache.follow(store.change_feed().await?);
    let public_url = &config.server.public_url;
    let registry = match config.provider.kind.settings().build(clock.clone())? {
        None => Registry::Gateway,
        Some(provider) => Registry::External {
            provider,
            callback: crate::front::callback_at_provider(&config.front, public_url)?,
        },
    };
    let fetcher = GuardedClient::new(config.outbound.clone())?;
    let statements = (!config.software_statement.issuers.is_empty()).then(|| {
        Arc::new(SoftwareStatements::new(
            config.software_statement.issuers.clone(),
            fetcher.clone(),
            clock.clone(),
        )) as Arc<dyn StatementVerifier>
    });
    let rules = RegistrationRules {
        mode: config.registration.mode,
        rotation: config.registration.rotation,
        default_policy: config.registration.default_policy.clone(),
        statements,
        statement_required: config.software_statement.required,
        compat: config.registration.compat,
    };
    let journal = Arc::new(Journal::new(
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        clock.clone(),
    ));
    let core = Arc::new(Core::new(
        cache.clone(),
        Arc::new(store.clone()),
        registry,
        clock.clone(),
        config.registration.policies.clone(),
        Arc::new(store.clone()),
        journal,
    ));
    let service = Arc::new(RegistrationService::new(
        core.clone(),
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        Arc::new(fetcher),
        rules,
    ));
    let operator_tokens = store.clone();
    let reconciler = Arc::new(Reconciler::new(
        core,
        config.provider.report_unknown_clients,
    ));
    let console = match (&config.console, &config.store.encryption_key) {
        (settings, Some(sealer)) if settings.enabled => {
            Some(Arc::new(Console::new(ConsoleParts {
                settings: settings.clone(),
                public_url: public_url.clone(),
                sealer: sealer.clone(),
                operators: Arc::new(store.clone()),
                directory: Arc::new(store.clone()),
                documents: Arc::new(store.clone()),
                reconciler: reconciler.clone(),
                clock: clock.clone(),
            })))
        }
        _ => None,
    };
    let front = match (config.front.enabled, &config.store.encryption_key) {
        (false, _) => None,
        (true, None) => {
            return Err(FrontSetupError("the front needs store.encryption_key".into()).into());
        }
        (true, Some(sealer)) => Some(Arc::new(Front::new(FrontParts {
            settings: config.front.clone(),
            public_url: public_url.clone(),
            registrations: service.clone(),
            transactions: Arc::new(store.clone()),
            refresh_tokens: Arc::new(store.clone()),
            assertion_replays: Arc::new(store.clone()),
            signing_keys: Arc::new(store.clone()),
            documents: Arc::new(store),
            outbound: config.outbound.clone(),
            clock,
            provider_timeout: config.outbound.timeout,
            max_tracked_keys: config.limits.max_tracked_keys,
            scope_required: config
                .provider
                .kind
                .settings()
                .authorization_requires_scope(),
            sealer: sealer.clone(),
            broker: match &config.provider.kind {
                crate::provider::ProviderKind::Oidc(settings) => Some(settings.clone()),
                _ => None,
            },
        })?)),
    };
    let front_janitor = front.as_ref().map(|front| front.spawn_janitor());
    let key_rotation = front.as_ref().and_then(|front| front.spawn_key_rotation());
    let usage_flusher = service.usage().spawn_flusher();
    let journal_flusher = service.journal().spawn_flusher();
    Ok(Gateway {
        service,
        reconciler,
        cache,
        read_answers,
        front,
        console,
        operator_tokens: Arc::new(operator_tokens),
        _front_janitor: front_janitor,
        _key_rotation: key_rotation,
        _usage_flusher: usage_flusher,
        _journal_flusher: journal_flusher,
    })
}

/// Logs what an operator should know about the configuration at start.
pub fn warn_about(config: &Config) {
    if config.registration.mode == RegistrationMode::Open {
        tracing::warn!(
            "registration is open: anyone who reaches /register can create clients; \
             set registration.mode = \"initial_access_token\" outside local trials"
        );
    }
    if let crate::provider::ProviderKind::Oidc(settings) = &config.provider.kind
        && settings.profile.resource != crate::provider::oidc::presets::ResourceRule::Pass
        && settings.profile.resource != crate::provider::oidc::presets::ResourceRule::Drop
        && config.front.allowed_resources.is_empty()
    {
        tracing::warn!(
            "broker mode turns an app's resource into a scope or audience, and \
             front.allowed_resources is empty: any app may ask for tokens to any API the \
             operator's client may reach; list your MCP servers there"
        );
    }
    if let Some(url) = config.provider.kind.settings().credentialed_url()
        && url.scheme() == "http"
        && !is_local_url(url)
    {
        tracing::warn!(
            provider = %url,
            "the provider's credential is sent over plain http; use https outside a private network"
        );
    }
}

/// Whether the OpenID provider broker mode signs users in at can be used
/// now: its discovery document names the configured issuer and its keys
/// can be read (`check-config`, and a warning at start). Other kinds have
/// nothing to check here.
pub async fn check_provider(config: &Config) -> Result<(), String> {
    let crate::provider::ProviderKind::Oidc(settings) = &config.provider.kind else {
        return Ok(());
    };
    let http = crate::outbound::client_builder(config.outbound.timeout)
        .build()
        .map_err(|e| with_causes(&e))?;
    let broker = crate::front::broker::Broker::new(settings.clone(), http, Arc::new(SystemClock));
    broker.ready().await.map_err(|error| {
        format!(
            "the identity provider's discovery document ({}) or keys cannot be used: {}",
            settings.discovery_url,
            error.cause.unwrap_or(error.description)
        )
    })
}

/// The complete HTTP application for `gateway`.
pub fn build_router(gateway: &Gateway, config: &Config) -> Edge {
    let state = HttpState {
        service: gateway.service.clone(),
        front: gateway.front.clone(),
        public_url: config.server.public_url.as_str().into(),
        limits: Arc::new(Limits::new(&config.limits)),
        max_json_values: json_value_limit(config.server.max_body_bytes),
        read_answers: gateway.read_answers.clone(),
        console: gateway.console.clone(),
    };
    let settings = http::EdgeSettings {
        max_body_bytes: config.server.max_body_bytes,
        access_log: config.log.access,
        request_timeout: config.server.request_timeout,
    };
    http::router(state, &settings, &config.server.cors)
}

/// Serves `app` on `listener` (over TLS when `config.server.tls` is set)
/// with the connection limits of `[server]` until `shutdown` completes; then
/// stops accepting, lets in-flight requests finish for at most
/// `server.shutdown_timeout`, and returns.
pub fn serve(
    listener: TcpListener,
    app: Edge,
    shutdown: impl Future<Output = ()> + Send + 'static,
    config: &Config,
) -> impl Future<Output = std::io::Result<()>> + Send + 'static {
    let server = &config.server;
    let limits = ConnectionLimits {
        header_read_timeout: server.header_read_timeout,
        idle_timeout: server.idle_timeout,
        http2_keep_alive_interval: server.http2_keep_alive_interval,
        request_body_timeout: server.request_body_timeout,
        max_connections: server.max_connections,
        max_connections_per_ip: server.max_connections_per_ip,
        exempt: config.limits.trusted_proxies.clone(),
    };
    let (deadline, tls) = (server.shutdown_timeout, server.tls.clone());
    async move {
        let Some(tls) = tls else {
            return connections::serve(listener, app, shutdown, limits, deadline, None).await;
        };
        // One process-wide rustls provider: ring (no OpenSSL, no C toolchain).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let certificates = RustlsConfig::from_pem_file(&tls.cert, &tls.key).await?;
        let watcher = tokio::spawn(reload_certificates(certificates.clone(), tls));
        let served = connections::serve(
            listener,
            app,
            shutdown,
            limits,
            deadline,
            Some(certificates),
        )
        .await;
        watcher.abort();
        served
    }
}

/// Reloads the certificate and key on SIGHUP or when either file changes
/// (checked every two seconds). A bad pair is logged and the current one kept.
async fn reload_certificates(config: RustlsConfig, tls: TlsSettings) {
    let modified = |tls: &TlsSettings| {
        [&tls.cert, &tls.key]
            .iter()
            .filter_map(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok())
            .max()
    };
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut last = modified(&tls);
    let mut ticks = tokio::time::interval(Duration::from_secs(2));
    loop {
        #[cfg(unix)]
        let hangup_received = async {
            match hangup.as_mut() {
                Some(signal) => signal.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hangup_received = std::future::pending::<Option<()>>();
        tokio::select! {
            _ = ticks.tick() => {
                let now = modified(&tls);
                if now == last {
                    continue;
                }
                last = now;
            }
            _ = hangup_received => {}
        }
        match config.reload_from_pem_file(&tls.cert, &tls.key).await {
            Ok(()) => tracing::info!(cert = %tls.cert.display(), "TLS certificate reloaded"),
            Err(error) => {
                tracing::warn!(%error, "TLS certificate reload failed; keeping the current one");
            }
        }
    }
}
