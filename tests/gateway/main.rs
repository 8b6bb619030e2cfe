//! Black-box tests of the gateway over real HTTP on 127.0.0.1:0 with a
//! temporary SQLite file. One test binary, so the suite links once.

// The provider fakes answer refusals as `Err(Response)`, as axum handlers do.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::result_large_err,
    missing_docs
)]

mod access;
mod billforward;
mod cli;
mod connections;
mod console;
mod console_store;
mod dashboard;
mod fakes;
mod faults;
mod front;
mod front_store;
mod hostile;
mod hydra;
mod idle;
mod layers;
mod lifecycle;
mod manage;
mod mcp;
mod metadata_members;
mod oidc_client;
mod okta;
mod properties;
mod providers;
mod register;
mod rfc7591;
mod scale;
mod statements;
mod store;
mod support;
mod surface;
mod tls;
mod traces;
mod zendesk;
