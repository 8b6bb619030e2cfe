//! Pure domain values: client metadata and its validation, registered clients,
//! secrets, and the RFC error codes. Nothing here performs I/O or knows HTTP,
//! SQL or any provider.

pub mod client;
pub mod error;
pub mod metadata;
pub mod policy;
pub mod secret;
pub mod uri;
pub mod values;

pub use client::{
    ClientId, ClientState, InitialAccessTokenRecord, ProviderState, RegisteredClient, VouchedClaims,
};
pub use error::{ErrorCode, RegistrationError};
pub use metadata::{ClientMetadata, MetadataDocument, MetadataError};
pub use secret::{
    ClientSecret, InitialAccessToken, OperatorToken, RegistrationAccessToken, SecretHash,
};
pub use uri::{RedirectRules, RegisteredUri};
