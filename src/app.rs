//! Wiring: builds the registration service from the configuration, the router
//! around it, and serves on a listener it is given.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ProviderConfig, ProviderKind};
use crate::http::rate_limit::Limits;
use crate::http::{self, HttpState};
use crate::outbound::{GuardedClient, OutboundError};
use crate::provider::Provider;
use crate::provider::http_client::ProviderSetupError;
use crate::provider::hydra::Hydra;
use crate::provider::instrumented::Instrumented;
use crate::provider::local::LocalRegistry;
use crate::provider::rfc7591::Rfc7591;
use crate::registration::{
    RegistrationMode, RegistrationService, RegistrationSettings, StatementVerifier,
};
use crate::software_statement::SoftwareStatements;
use crate::store::StoreError;
use crate::store::cached::CachedStore;
use crate::store::sql::SqlStore;

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
}

/// The registration service and the cache in front of its store.
pub struct Gateway {
    /// The registration service.
    pub service: Arc<RegistrationService>,
    /// The read cache, for its statistics.
    pub cache: Arc<CachedStore>,
}

/// Opens the store, puts the cache in front (following other processes'
/// changes), and builds the service over the configured provider.
pub async fn build_gateway(config: &Config) -> Result<Gateway, StartupError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = SqlStore::open(
        &config.store.url,
        config.store.max_connections,
        clock.clone(),
        config.store.encryption_key.clone(),
    )
    .await?;
    let cache = Arc::new(CachedStore::new(
        Arc::new(store.clone()),
        config.cache.max_clients,
        config.cache.ttl,
    ));
    cache.follow(store.change_feed().await?);
    let provider = build_provider(&config.provider)?;
    let fetcher = GuardedClient::new(config.outbound.clone())?;
    let statements = (!config.software_statement.issuers.is_empty()).then(|| {
        Arc::new(SoftwareStatements::new(
            config.software_statement.issuers.clone(),
            fetcher.clone(),
        )) as Arc<dyn StatementVerifier>
    });
    let settings = RegistrationSettings {
        mode: config.registration.mode,
        rotation: config.registration.rotation,
        policies: config.registration.policies.clone(),
        default_policy: config.registration.default_policy.clone(),
        statements,
        statement_required: config.software_statement.required,
    };
    let service = Arc::new(RegistrationService::new(
        cache.clone(),
        provider,
        Arc::new(fetcher),
        clock,
        settings,
    ));
    Ok(Gateway { service, cache })
}

/// Logs what an operator should know about the configuration at start.
pub fn warn_about(config: &Config) {
    if config.registration.mode == RegistrationMode::Open {
        tracing::warn!(
            "registration is open: anyone who reaches /register can create clients; \
             set registration.mode = \"initial_access_token\" outside local trials"
        );
    }
}

fn build_provider(config: &ProviderConfig) -> Result<Arc<dyn Provider>, ProviderSetupError> {
    let backend: Arc<dyn Provider> = match &config.kind {
        ProviderKind::Local => Arc::new(LocalRegistry),
        ProviderKind::Hydra(settings) => Arc::new(Hydra::new(settings.clone())?),
        ProviderKind::Rfc7591(settings) => Arc::new(Rfc7591::new(settings.clone())?),
    };
    Ok(Arc::new(Instrumented(backend)))
}

/// Runs reconcile and the expiry janitor every `config.reconcile_interval`
/// (never when zero), until the returned handle is aborted or the runtime stops.
pub fn spawn_reconciler(
    service: Arc<RegistrationService>,
    config: &ProviderConfig,
) -> Option<tokio::task::JoinHandle<()>> {
    let interval = config.reconcile_interval;
    if interval.is_zero() {
        return None;
    }
    let grace = config.reconcile_grace();
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match service.reconcile(grace).await {
                Ok(report) if report.has_drift() => {
                    tracing::warn!(?report, "reconcile found drift");
                }
                Ok(report) => tracing::debug!(?report, "reconcile"),
                Err(error) => tracing::warn!(%error, "reconcile failed"),
            }
            match service.expire_clients().await {
                Ok(expired) if !expired.is_empty() => {
                    tracing::info!(count = expired.len(), "expired clients removed");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "expiry janitor failed"),
            }
        }
    }))
}

/// The complete HTTP application for `service`.
pub fn build_router(service: Arc<RegistrationService>, config: &Config) -> Router {
    crate::telemetry::install();
    let state = HttpState {
        service,
        public_url: config.server.public_url.as_str().into(),
        limits: Arc::new(Limits::new(&config.limits)),
    };
    http::router(state, config.server.max_body_bytes)
}

/// Serves `router` on `listener` until `shutdown` completes; then stops
/// accepting, lets in-flight requests finish for at most `deadline`, and
/// returns (dropping whatever is still running).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    deadline: Duration,
) -> std::io::Result<()> {
    let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        let _ = signalled.send(());
    })
    .into_future();
    let expired = async move {
        if on_signal.await.is_ok() {
            tokio::time::sleep(deadline).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server => result,
        () = expired => {
            tracing::warn!(?deadline, "shutdown deadline passed; dropping requests still in flight");
            Ok(())
        }
    }
}
