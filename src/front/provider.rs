//! The provider as the front sees it: its endpoints, read from its
//! discovery document.

use serde_json::Value;

/// What the front needs of the provider's discovery document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEndpoints {
    /// The provider's issuer: the `iss` its authorization responses carry.
    pub issuer: String,
    /// Where users are sent to log in.
    pub authorization_endpoint: String,
    /// Where codes and refresh tokens are exchanged.
    pub token_endpoint: String,
    /// Where tokens are revoked (RFC 7009), when the provider has it.
    pub revocation_endpoint: Option<String>,
    /// Where its signing keys are (its ID tokens are checked against them
    /// when the gateway issues its own tokens).
    pub jwks_uri: Option<String>,
    /// Whether the provider says it sends `iss` (RFC 9207); then an
    /// authorization response without one is refused.
    pub sends_iss: bool,
}

impl ProviderEndpoints {
    /// Reads the endpoints out of the provider's document.
    pub fn read(document: &Value) -> Result<Self, String> {
        let text = |member: &str| {
            document
                .get(member)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let required = |member: &str| {
            text(member)
                .ok_or_else(|| format!("the provider's discovery document lacks `{member}`"))
        };
        Ok(Self {
            issuer: required("issuer")?,
            authorization_endpoint: required("authorization_endpoint")?,
            token_endpoint: required("token_endpoint")?,
            revocation_endpoint: text("revocation_endpoint"),
            jwks_uri: text("jwks_uri"),
            sends_iss: document
                .get("authorization_response_iss_parameter_supported")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }
}
