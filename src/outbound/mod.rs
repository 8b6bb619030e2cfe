//! How the gateway calls out over HTTP: the policy every client it builds
//! starts from ([`client_builder`]: the providers', the front's, the
//! guarded one's), answers read under a size cap ([`read_capped`]), the
//! SSRF-guarded client for URLs that apps name ([`GuardedClient`], set by
//! `[outbound]`), and the trace exporter's client ([`CollectorClient`]).
//! Nothing here knows what is fetched or why.

mod body;
mod collector;
mod guarded;
mod settings;

use std::time::Duration;

pub use body::{BodyError, read_capped};
pub use collector::CollectorClient;
pub use guarded::{FetchError, GuardedClient, OutboundError, is_public, names_private_host};
pub use settings::OutboundSettings;

/// The gateway's policy for every HTTP client it builds: each request within
/// `timeout` (connecting included), no redirect followed, no proxy from the
/// environment (a proxy would resolve names past the outbound guard, and
/// calls to a provider carry its credentials and client secrets), and the
/// gateway's user agent.
pub fn client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("dcr-gateway/", env!("CARGO_PKG_VERSION")))
}
