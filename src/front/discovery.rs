//! The authorization server metadata (RFC 8414, and OpenID discovery) while
//! the front is on: the gateway is the issuer and holds the authorization,
//! token and registration endpoints; what describes the provider's tokens
//! (keys, userinfo, scopes, claims) is the provider's.

use serde_json::{Map, Value, json};

use super::Front;
use super::error::FrontError;

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
    /// How clients may authenticate at `/token`: in broker mode also with
    /// `private_key_jwt`, which the gateway verifies itself.
    fn token_auth_methods(&self) -> Vec<&'static str> {
        let mut methods = vec!["none", "client_secret_basic", "client_secret_post"];
        if self.broker.is_some() {
            methods.push("private_key_jwt");
        }
        methods
    }

    /// The metadata apps see, from the provider's document (if any) and
    /// the gateway's registration endpoint; with the gateway's own tokens,
    /// the algorithms of its published keys (which fails when the keys
    /// cannot be read).
    pub async fn metadata(
        &self,
        provider: Option<&Value>,
        registration_endpoint: &str,
    ) -> Result<Value, FrontError> {
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
            "token_endpoint_auth_methods_supported": self.token_auth_methods(),
            "authorization_response_iss_parameter_supported": true,
            "client_id_metadata_document_supported": self.documents.is_some(),
        });
        if let Value::Object(own) = own {
            document.extend(own);
        }
        if let Some(tokens) = &self.tokens {
            // The provider's keys and userinfo do not serve the gateway's
            // tokens: its own keys and their algorithms (while a key of
            // another algorithm is replaced, both), userinfo and subjects
            // stand in their place.
            document.insert(
                "userinfo_endpoint".into(),
                Value::from(self.endpoint("/userinfo")),
            );
            let subject_type = match self.settings.subject_type {
                super::tokens::SubjectType::Public => "public",
                super::tokens::SubjectType::Pairwise => "pairwise",
            };
            document.insert(
                "subject_types_supported".into(),
                Value::from(vec![subject_type]),
            );
            let mut claims = vec!["sub".to_owned()];
            claims.extend(self.settings.claims.iter().cloned());
            document.insert("claims_supported".into(), Value::from(claims));
            document.insert(
                "id_token_signing_alg_values_supported".into(),
                Value::from(tokens.algorithms(self.now()).await?),
            );
            document.insert("jwks_uri".into(), Value::from(self.endpoint("/jwks")));
            document.insert(
                "introspection_endpoint".into(),
                Value::from(self.endpoint("/introspect")),
            );
        }
        if self.broker.is_some() {
            let algorithms: Vec<String> = super::jwks::ASYMMETRIC
                .iter()
                .map(|alg| format!("{alg:?}"))
                .collect();
            document.insert(
                "token_endpoint_auth_signing_alg_values_supported".into(),
                Value::from(algorithms),
            );
        }
        Ok(Value::Object(document))
    }
}
