//! Wiring: builds the registration service from the configuration, the router
//! around it, and serves on a listener it is given.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ProviderConfig};
use crate::domain::RedirectRules;
use crate::http::{self, HttpState};
use crate::outbound::{GuardedClient, OutboundError};
use crate::provider::Provider;
use crate::provider::local::LocalRegistry;
use crate::registration::RegistrationService;
use crate::store::StoreError;
use crate::store::sqlite::SqliteStore;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The store could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The outbound client could not be built.
    #[error(transparent)]
    Outbound(#[from] OutboundError),
}

/// Opens the store and builds the service over the configured provider.
pub async fn build_service(config: &Config) -> Result<Arc<RegistrationService>, StartupError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = SqliteStore::open(&config.store.url, clock.clone()).await?;
    let provider: Arc<dyn Provider> = match config.provider {
        ProviderConfig::Local => Arc::new(LocalRegistry),
    };
    let fetcher = GuardedClient::new(config.outbound.clone())?;
    Ok(Arc::new(RegistrationService::new(
        Arc::new(store),
        provider,
        Arc::new(fetcher),
        clock,
        RedirectRules::default(),
    )))
}

/// The complete HTTP application for `service`.
pub fn build_router(service: Arc<RegistrationService>, config: &Config) -> Router {
    let state = HttpState {
        service,
        public_url: config.server.public_url.as_str().into(),
    };
    http::router(state, config.server.max_body_bytes)
}

/// Serves `router` on `listener` until `shutdown` completes, then lets
/// in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
