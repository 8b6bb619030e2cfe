//! Calls to a provider's REST API, shared by the backends, in four parts:
//!
//! - `client`: one rustls client per backend with connect and total
//!   timeouts and the backend's credential, retries with backoff for calls
//!   that may be repeated, and the breaker in front of the provider;
//! - `attempts`: what one attempt can end in, and the rule that reads a
//!   chain of attempts as one outcome;
//! - `answer`: a provider's answer read in full, and its classification
//!   into [`ProviderError`](super::ProviderError);
//! - `discovery`: a bounded-lifetime cache of the provider's discovery
//!   document.
//!
//! Nothing here knows the gateway's own HTTP edge: the types are reqwest's.

mod answer;
mod attempts;
mod client;
mod discovery;

pub use answer::{Answer, DEFAULT_RETRY_AFTER_SECS, may_have_acted};
pub use client::{ProviderAuth, ProviderHttp, Repeat, Resilience};
pub use discovery::DiscoveryCache;

/// Why a provider backend could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the provider HTTP client: {0}")]
pub struct ProviderSetupError(pub String);
