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
    /// `server_error`: a fault of the gateway. The cause (with its own
    /// causes) is logged once, at the HTTP edge or by the command that met
    /// it, and never sent.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl RegistrationError {
    /// A fault of the gateway, keeping `cause` (an error, or a message).
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(cause.into())
    }

    /// The RFC error code of the answer, and of the audit event.
    #[must_use]
    pub fn error_code(&self) -> ErrorCode {
        match self {
            Self::InvalidRedirectUri(_) => ErrorCode::InvalidRedirectUri,
            Self::InvalidClientMetadata(_) => ErrorCode::InvalidClientMetadata,
            Self::InvalidSoftwareStatement(_) => ErrorCode::InvalidSoftwareStatement,
            Self::UnapprovedSoftwareStatement(_) => ErrorCode::UnapprovedSoftwareStatement,
            Self::InvalidToken | Self::InvalidInitialAccessToken(_) => ErrorCode::InvalidToken,
            Self::UnknownClient(_) => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::TemporarilyUnavailable { .. } => ErrorCode::TemporarilyUnavailable,
            Self::Internal(_) => ErrorCode::ServerError,
        }
    }

    /// The RFC error code as written, for audit events.
    #[must_use]
    pub fn code(&self) -> &'static str {
        self.error_code().as_str()
    }
}

/// The error codes the gateway answers with (RFC 6749 §5.2, RFC 6750 §3.1,
/// RFC 7591 §3.2.2, RFC 7592 §2, and its own `not_found`, `conflict` and
/// `rate_limited`): the one place they are spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// `invalid_redirect_uri`.
    InvalidRedirectUri,
    /// `invalid_client_metadata`.
    InvalidClientMetadata,
    /// `invalid_software_statement`.
    InvalidSoftwareStatement,
    /// `unapproved_software_statement`.
    UnapprovedSoftwareStatement,
    /// `invalid_token`.
    InvalidToken,
    /// `invalid_request`.
    InvalidRequest,
    /// `not_found`.
    NotFound,
    /// `conflict`.
    Conflict,
    /// `rate_limited`.
    RateLimited,
    /// `temporarily_unavailable`.
    TemporarilyUnavailable,
    /// `server_error`.
    ServerError,
}

impl ErrorCode {
    /// The code as written.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::InvalidSoftwareStatement => "invalid_software_statement",
            Self::UnapprovedSoftwareStatement => "unapproved_software_statement",
            Self::InvalidToken => "invalid_token",
            Self::InvalidRequest => "invalid_request",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::RateLimited => "rate_limited",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::ServerError => "server_error",
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
