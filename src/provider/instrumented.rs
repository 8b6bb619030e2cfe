//! A provider wrapped with metrics: the latency and outcome of every call.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;

use super::{ListedClient, Presence, Provider, ProviderError, ProvisionRequest, Provisioned};
use crate::domain::{ClientId, ClientMetadata, ProviderState};

/// Records `dcr_provider_*` metrics around another provider.
pub struct Instrumented(pub Arc<dyn Provider>);

impl Instrumented {
    fn record<T>(
        &self,
        operation: &'static str,
        started: Instant,
        result: &Result<T, ProviderError>,
    ) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(ProviderError::Rejected(_)) => "rejected",
            Err(ProviderError::Refused { .. }) => "refused",
            Err(ProviderError::Unavailable { .. }) => "unavailable",
            Err(ProviderError::Indeterminate(_)) => "indeterminate",
            Err(ProviderError::NotFound(_)) => "not_found",
        };
        let provider = self.0.name();
        metrics::counter!("dcr_provider_calls_total", "provider" => provider, "operation" => operation, "outcome" => outcome)
            .increment(1);
        metrics::histogram!("dcr_provider_call_duration_seconds", "provider" => provider, "operation" => operation)
            .record(started.elapsed().as_secs_f64());
    }
}

#[async_trait]
impl Provider for Instrumented {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn is_gateway_registry(&self) -> bool {
        self.0.is_gateway_registry()
    }

    fn supports(&self, metadata: &ClientMetadata) -> Result<(), String> {
        self.0.supports(metadata)
    }

    fn operation_deadline(&self) -> Option<Duration> {
        self.0.operation_deadline()
    }

    fn clock_skew(&self) -> Duration {
        self.0.clock_skew()
    }

    async fn create(&self, request: &ProvisionRequest<'_>) -> Result<Provisioned, ProviderError> {
        let started = Instant::now();
        let result = self.0.create(request).await;
        self.record("create", started, &result);
        result
    }

    async fn replace(&self, request: &ProvisionRequest<'_>) -> Result<Provisioned, ProviderError> {
        let started = Instant::now();
        let result = self.0.replace(request).await;
        self.record("replace", started, &result);
        result
    }

    async fn delete(
        &self,
        client_id: &ClientId,
        state: Option<&ProviderState>,
    ) -> Result<(), ProviderError> {
        let started = Instant::now();
        let result = self.0.delete(client_id, state).await;
        self.record("delete", started, &result);
        result
    }

    async fn discard_unconfirmed(
        &self,
        client: &ProvisionRequest<'_>,
    ) -> Result<Presence, ProviderError> {
        let started = Instant::now();
        let result = self.0.discard_unconfirmed(client).await;
        self.record("discard_unconfirmed", started, &result);
        result
    }

    async fn list_clients(&self) -> Result<Option<Vec<ListedClient>>, ProviderError> {
        let started = Instant::now();
        let result = self.0.list_clients().await;
        self.record("list", started, &result);
        result
    }

    async fn discovery(&self) -> Result<Option<Value>, ProviderError> {
        let started = Instant::now();
        let result = self.0.discovery().await;
        self.record("discovery", started, &result);
        result
    }
}
