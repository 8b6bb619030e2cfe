//! dcr-gateway: OAuth 2.0 Dynamic Client Registration (RFC 7591) and
//! management (RFC 7592) in front of identity providers.
//!
//! # Layout
//!
//! - [`domain`]: pure values — client metadata and its validation, secrets,
//!   registered clients, RFC error codes. No I/O.
//! - [`registration`]: [`registration::RegistrationService`], the one place
//!   that orders validation, store writes and provider calls.
//! - [`store`]: the [`store::ClientStore`] trait and its SQLite implementation.
//! - [`provider`]: the [`provider::Provider`] trait and one backend per file
//!   (the built-in registry is `local`).
//! - [`outbound`]: the SSRF-guarded HTTP client for URLs apps point at.
//! - [`software_statement`]: verification of signed software statements.
//! - [`http`]: routes, extractors, error mapping and the layer stack.
//! - [`config`]: TOML plus environment, validated with every error at once.
//! - [`app`]: wiring — build the service and router, serve on a listener.
//! - [`audit`]: structured audit events (never a secret).
//! - [`clock`]: the one reader of wall-clock time.
//! - [`telemetry`]: Prometheus metrics.
//! - [`error_text`]: error messages with their causes.
//!
//! `http`, `store`, `provider` and `outbound` are adapters around
//! `registration` and never import each other.

pub mod app;
pub mod audit;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error_text;
pub mod http;
pub mod outbound;
pub mod provider;
pub mod registration;
pub mod software_statement;
pub mod store;
pub mod telemetry;
