//! The errors a registration request can end in, one variant per RFC error code.

use super::metadata::MetadataError;

/// Why a registration or management request failed. Each variant is one error
/// code of RFC 7591 §3.2.2, RFC 7592 or RFC 6750; the HTTP layer maps each to
/// a status in one place.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// `invalid_redirect_uri`: a redirect URI breaks the rules.
    #[error("{0}")]
    InvalidRedirectUri(String),
    /// `invalid_client_metadata`: a metadata value is invalid or unsupported.
    #[error("{0}")]
    InvalidClientMetadata(String),
    /// `invalid_software_statement`: the software statement is malformed or
    /// its signature does not verify.
    #[error("{0}")]
    InvalidSoftwareStatement(String),
    /// `unapproved_software_statement`: the software statement is not accepted.
    #[error("{0}")]
    UnapprovedSoftwareStatement(String),
    /// `invalid_token`: the registration access token is missing or wrong, or
    /// the client does not exist. One answer for all, so that it reveals nothing.
    #[error("the registration access token is missing, invalid or revoked")]
    InvalidToken,
    /// `invalid_token` at the registration endpoint: the initial access
    /// token is missing, unknown, expired, revoked or used up (RFC 7591 §3).
    #[error("{0}")]
    InvalidInitialAccessToken(String),
    /// The named client does not exist (operator commands only; the RFC 7592
    /// endpoints answer [`RegistrationError::InvalidToken`] instead).
    #[error("no client with id `{0}`")]
    UnknownClient(String),
    /// `conflict`: another change of the same client came first or is in
    /// progress; the request did nothing, and may be retried after a read.
    #[error("{0}")]
    Conflict(String),
    /// `temporarily_unavailable`: a dependency is down; retrying later may help.
    #[error("{reason}")]
    TemporarilyUnavailable {
        /// What is unavailable, in words.
        reason: String,
        /// Seconds after which a retry makes sense.
        retry_after_secs: u64,
    },
    /// `server_error`: a fault of the gateway. The cause is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl RegistrationError {
    /// The RFC error code, for audit events.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRedirectUri(_) => "invalid_redirect_uri",
            Self::InvalidClientMetadata(_) => "invalid_client_metadata",
            Self::InvalidSoftwareStatement(_) => "invalid_software_statement",
            Self::UnapprovedSoftwareStatement(_) => "unapproved_software_statement",
            Self::InvalidToken | Self::InvalidInitialAccessToken(_) => "invalid_token",
            Self::UnknownClient(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::TemporarilyUnavailable { .. } => "temporarily_unavailable",
            Self::Internal(_) => "server_error",
        }
    }
}

impl From<MetadataError> for RegistrationError {
    fn from(error: MetadataError) -> Self {
        match error {
            MetadataError::InvalidRedirectUri(m) => Self::InvalidRedirectUri(m),
            MetadataError::InvalidClientMetadata(m) => Self::InvalidClientMetadata(m),
        }
    }
}
