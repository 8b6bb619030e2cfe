//! dcr-gateway: OAuth 2.0 Dynamic Client Registration (RFC 7591) and
//! management (RFC 7592) in front of identity providers.
//!
//! # Layout
//!
//! - [`domain`]: pure values — client metadata and its validation, policies,
//!   secrets, registered clients, initial access tokens, RFC error codes.
//!   No I/O.
//! - [`registration`]: [`registration::RegistrationService`], the one place
//!   that orders admission, validation, store writes and provider calls for
//!   RFC 7591 registration, RFC 7592 management, the operator's commands and
//!   the front's document clients. It stands on
//!   [`registration::core::Core`] (the client store and queries, the
//!   [`provider::registry::Registry`]: the gateway's own store or a
//!   [`provider::Provider`], the clock, the policies, the bounded provider
//!   calls, and the replace and delete of a client), which
//!   [`reconcile::Reconciler`] shares. Its other ports:
//!   [`store::InitialAccessTokens`], [`store::Health`],
//!   [`registration::DocumentFetcher`], [`registration::StatementVerifier`].
//! - [`reconcile`]: bringing gateway and provider back in line, and the
//!   expiry janitor; run in the background under a [`tasks::TaskGuard`],
//!   or by `dcr-gateway reconcile`.
//! - [`store`]: the store's ports, one per job, and the SQL store that
//!   implements them (SQLite embedded, PostgreSQL for several instances),
//!   the read cache in front of the client port (telling the HTTP edge's
//!   read memory of every change), sealing of provider state.
//! - [`provider`]: one backend per file (`local`, `hydra`, `rfc7591`, `okta`,
//!   `zendesk`, `billforward`), each with its own settings (in
//!   `provider/<kind>/settings.rs`), the calls to a provider's REST API
//!   they share ([`provider::rest`]: timeouts, retries, circuit breaker),
//!   the metrics, and the registry the service
//!   holds: the gateway's own store, or one backend, with the gateway's
//!   callback registered there when the front is on.
//! - [`outbound`]: how the gateway calls out over HTTP: the policy every
//!   client it builds starts from, answers read under a size cap, and the
//!   SSRF-guarded client for URLs apps point at.
//! - [`software_statement`]: verification of signed software statements.
//! - [`front`]: the opt-in authorization front (`/authorize`, `/callback`,
//!   `/token`) that makes the gateway the issuer apps see.
//! - [`http`]: the gateway's own HTTP surface: the edge every request goes
//!   through (ids, spans, timeouts, access lines, the faults behind 500s
//!   logged, and RFC 7592 reads answered from its own memory,
//!   [`http::reads`]), routes, extractors, rate limits, and the one table
//!   from error to RFC code and status ([`http::error`]).
//! - [`config`]: the loader (TOML plus environment, every error at once) and
//!   the list of top-level sections; each section is read by the module
//!   that uses it, with the helpers of [`settings`]. `[provider]` is read
//!   by [`provider::settings`] and each backend's own keys by that backend.
//! - [`logging`]: `[log]` and the `tracing` subscriber.
//! - [`app`]: wiring — build the gateway, the router, serve (plain or TLS).
//! - [`connections`]: the accept loop and each connection's life: caps on
//!   connections, header-read, idle and HTTP/2 keep-alive timeouts.
//! - [`audit`], [`telemetry`]: audit events and Prometheus metrics.
//! - [`clock`]: the one reader of wall-clock time; [`tasks`]: background
//!   tasks stopped when their guard drops.
//! - [`error_text`], [`json`]: error messages with their causes; JSON
//!   written into exact-size buffers; [`jwt`]: a JWT's claims read before
//!   its signature is checked.
//!
//! `http`, `store`, `provider` and `software_statement` are adapters around
//! `registration` and do not import each other; `outbound` sits below them
//! all and imports none of them (the providers, the front, the software
//! statements and the documents `registration` fetches all call out
//! through it). `config`
//! imports the modules whose sections it hands out (the provider seam, not
//! a backend), and none of them imports `config`; `settings` imports no
//! module of the crate.

pub mod app;
pub mod audit;
pub mod clock;
pub mod config;
pub mod connections;
pub mod domain;
pub mod error_text;
pub mod front;
pub mod http;
pub mod json;
pub mod jwt;
pub mod limiter;
pub mod logging;
pub mod outbound;
pub mod provider;
pub mod reconcile;
pub mod registration;
pub mod settings;
pub mod software_statement;
pub mod store;
pub mod tasks;
pub mod telemetry;
