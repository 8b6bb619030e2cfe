//! The authorization server metadata (RFC 8414, and OpenID discovery) while
//! the front is on: the gateway is the issuer and holds the authorization,
//! token and registration endpoints; what describes the provider's tokens
//! (keys, userinfo, scopes, claims) is the provider's.

use serde_json::{Map, Value, json};

use super::Front;

/// Members copied from the provider's document, where present.
const FROM_PROVIDER: [&str; 7] = [
    "jwks_uri",
    "userinfo_endpoint",
    "scopes_supported",
    "claims_supported",
    "subject_types_supported",
    "id_token_signing_alg_values_supported",
    "service_documentation",
];

impl Front {
    /// The metadata apps see, from the provider's document (if any) and
    /// the gateway's registration endpoint.
    #[must_use]
    pub fn metadata(&self, provider: Option<&Value>, registration_endpoint: &str) -> Value {
        let mut document = Map::new();
        if let Some(provider) = provider.and_then(Value::as_object) {
            for member in FROM_PROVIDER {
                if let Some(value) = provider.get(member) {
                    document.insert(member.into(), value.clone());
                }
            }
        }
        let own = json!({
            "issuer": self.issuer,
            "authorization_endpoint": self.endpoint("/authorize"),
            "token_endpoint": self.endpoint("/token"),
            "revocation_endpoint": self.endpoint("/revoke"),
            "revocation_endpoint_auth_methods_supported":
                ["none", "client_secret_basic", "client_secret_post"],
            "registration_endpoint": registration_endpoint,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported":
                ["none", "client_secret_basic", "client_secret_post"],
            "authorization_response_iss_parameter_supported": true,
            "client_id_metadata_document_supported": self.documents.is_some(),
        });
        if let Value::Object(own) = own {
            document.extend(own);
        }
        Value::Object(document)
    }
}
