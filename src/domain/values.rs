//! The closed vocabularies of client metadata: grant types, response types,
//! authentication methods, application and subject types, JOSE algorithms.

use std::fmt;

/// Declares a fieldless enum whose values have one registered string name each.
macro_rules! registered_names {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value the gateway accepts, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The registered name, as it appears on the wire.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Parses a registered name; `None` for anything else.
            #[must_use]
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

registered_names!(
    /// OAuth 2.0 grant types (RFC 7591 §2 and the extension grants in common use).
    GrantType {
        /// RFC 6749 §4.1.
        AuthorizationCode = "authorization_code",
        /// RFC 6749 §4.2.
        Implicit = "implicit",
        /// RFC 6749 §4.3.
        Password = "password",
        /// RFC 6749 §4.4.
        ClientCredentials = "client_credentials",
        /// RFC 6749 §6.
        RefreshToken = "refresh_token",
        /// RFC 7523.
        JwtBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer",
        /// RFC 7522.
        Saml2Bearer = "urn:ietf:params:oauth:grant-type:saml2-bearer",
        /// RFC 8628.
        DeviceCode = "urn:ietf:params:oauth:grant-type:device_code",
        /// RFC 8693.
        TokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange",
        /// OpenID Connect CIBA.
        Ciba = "urn:openid:params:grant-type:ciba",
    }
);

registered_names!(
    /// One word of a response type (OAuth 2.0 Multiple Response Type Encoding Practices).
    ResponseTypeWord {
        /// Authorization code.
        Code = "code",
        /// Access token from the authorization endpoint.
        Token = "token",
        /// OpenID Connect ID token.
        IdToken = "id_token",
        /// No token at all (OAuth 2.0 Multiple Response Types §4).
        None = "none",
    }
);

registered_names!(
    /// How the client authenticates at the token endpoint.
    AuthMethod {
        /// Public client: no authentication.
        None = "none",
        /// HTTP Basic with the client secret (the default).
        ClientSecretBasic = "client_secret_basic",
        /// Client secret in the form body.
        ClientSecretPost = "client_secret_post",
        /// JWT signed with the client secret (HMAC).
        ClientSecretJwt = "client_secret_jwt",
        /// JWT signed with the client's private key.
        PrivateKeyJwt = "private_key_jwt",
        /// Mutual TLS with a PKI certificate (RFC 8705).
        TlsClientAuth = "tls_client_auth",
        /// Mutual TLS with a self-signed certificate (RFC 8705).
        SelfSignedTlsClientAuth = "self_signed_tls_client_auth",
    }
);

impl AuthMethod {
    /// Whether the gateway issues a client secret for this method.
    #[must_use]
    pub fn uses_client_secret(self) -> bool {
        matches!(
            self,
            Self::ClientSecretBasic | Self::ClientSecretPost | Self::ClientSecretJwt
        )
    }

    /// Whether the method proves possession of a key from the client's JWK set.
    #[must_use]
    pub fn needs_client_keys(self) -> bool {
        matches!(self, Self::PrivateKeyJwt | Self::SelfSignedTlsClientAuth)
    }
}

registered_names!(
    /// OpenID Connect application type; it decides which redirect URIs are allowed.
    ApplicationType {
        /// Browser-based or server-side web application (the default).
        Web = "web",
        /// Native application on a device.
        Native = "native",
    }
);

registered_names!(
    /// OpenID Connect subject identifier type.
    SubjectType {
        /// The same `sub` for every client.
        Public = "public",
        /// A `sub` per sector (OpenID Connect Core §8.1).
        Pairwise = "pairwise",
    }
);

registered_names!(
    /// JWS signature algorithms (RFC 7518 §3, RFC 8037).
    JwsAlgorithm {
        /// HMAC SHA-256.
        Hs256 = "HS256",
        /// HMAC SHA-384.
        Hs384 = "HS384",
        /// HMAC SHA-512.
        Hs512 = "HS512",
        /// RSASSA-PKCS1-v1_5 SHA-256.
        Rs256 = "RS256",
        /// RSASSA-PKCS1-v1_5 SHA-384.
        Rs384 = "RS384",
        /// RSASSA-PKCS1-v1_5 SHA-512.
        Rs512 = "RS512",
        /// ECDSA P-256 SHA-256.
        Es256 = "ES256",
        /// ECDSA P-384 SHA-384.
        Es384 = "ES384",
        /// ECDSA P-521 SHA-512.
        Es512 = "ES512",
        /// RSASSA-PSS SHA-256.
        Ps256 = "PS256",
        /// RSASSA-PSS SHA-384.
        Ps384 = "PS384",
        /// RSASSA-PSS SHA-512.
        Ps512 = "PS512",
        /// Edwards-curve signatures.
        EdDsa = "EdDSA",
        /// Unsigned.
        None = "none",
    }
);

impl JwsAlgorithm {
    /// Whether the algorithm is keyed with a shared secret.
    #[must_use]
    pub fn is_symmetric(self) -> bool {
        matches!(self, Self::Hs256 | Self::Hs384 | Self::Hs512)
    }
}

registered_names!(
    /// JWE key management algorithms (RFC 7518 §4).
    JweAlgorithm {
        /// RSAES-PKCS1-v1_5.
        Rsa15 = "RSA1_5",
        /// RSAES OAEP.
        RsaOaep = "RSA-OAEP",
        /// RSAES OAEP SHA-256.
        RsaOaep256 = "RSA-OAEP-256",
        /// AES-128 key wrap.
        A128Kw = "A128KW",
        /// AES-192 key wrap.
        A192Kw = "A192KW",
        /// AES-256 key wrap.
        A256Kw = "A256KW",
        /// Direct use of a shared key.
        Dir = "dir",
        /// ECDH-ES direct key agreement.
        EcdhEs = "ECDH-ES",
        /// ECDH-ES with AES-128 key wrap.
        EcdhEsA128Kw = "ECDH-ES+A128KW",
        /// ECDH-ES with AES-192 key wrap.
        EcdhEsA192Kw = "ECDH-ES+A192KW",
        /// ECDH-ES with AES-256 key wrap.
        EcdhEsA256Kw = "ECDH-ES+A256KW",
        /// AES-GCM 128 key wrap.
        A128GcmKw = "A128GCMKW",
        /// AES-GCM 192 key wrap.
        A192GcmKw = "A192GCMKW",
        /// AES-GCM 256 key wrap.
        A256GcmKw = "A256GCMKW",
        /// PBES2 with HMAC SHA-256 and AES-128 key wrap.
        Pbes2Hs256A128Kw = "PBES2-HS256+A128KW",
        /// PBES2 with HMAC SHA-384 and AES-192 key wrap.
        Pbes2Hs384A192Kw = "PBES2-HS384+A192KW",
        /// PBES2 with HMAC SHA-512 and AES-256 key wrap.
        Pbes2Hs512A256Kw = "PBES2-HS512+A256KW",
    }
);

registered_names!(
    /// JWE content encryption algorithms (RFC 7518 §5).
    JweEncryption {
        /// AES-128-CBC with HMAC SHA-256 (the OpenID Connect default).
        A128CbcHs256 = "A128CBC-HS256",
        /// AES-192-CBC with HMAC SHA-384.
        A192CbcHs384 = "A192CBC-HS384",
        /// AES-256-CBC with HMAC SHA-512.
        A256CbcHs512 = "A256CBC-HS512",
        /// AES-128-GCM.
        A128Gcm = "A128GCM",
        /// AES-192-GCM.
        A192Gcm = "A192GCM",
        /// AES-256-GCM.
        A256Gcm = "A256GCM",
    }
);

registered_names!(
    /// How a CIBA client receives its tokens (CIBA Core 1.0 §4, §5).
    TokenDeliveryMode {
        /// The client polls the token endpoint.
        Poll = "poll",
        /// The server pings the client's notification endpoint, then it polls.
        Ping = "ping",
        /// The server pushes the tokens to the notification endpoint.
        Push = "push",
    }
);

registered_names!(
    /// How an OpenID Federation relying party registers (OpenID Federation
    /// 1.0 §5.1.2, `client_registration_types`).
    RegistrationType {
        /// Automatic registration: the OP resolves the RP's trust chain.
        Automatic = "automatic",
        /// Explicit registration at the OP's federation registration endpoint.
        Explicit = "explicit",
    }
);

/// A response type: one or more words, kept in the order the client sent them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseType(Vec<ResponseTypeWord>);

impl ResponseType {
    /// The default response type, `code`.
    #[must_use]
    pub fn code() -> Self {
        Self(vec![ResponseTypeWord::Code])
    }

    /// Parses a space-separated response type such as `code id_token`.
    ///
    /// Words must be known, distinct and separated by single spaces, and `none`
    /// stands alone, so that the value serializes back exactly as sent.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut words = Vec::new();
        for part in text.split(' ') {
            let word = ResponseTypeWord::parse(part)
                .ok_or_else(|| format!("unsupported response type `{text}`"))?;
            if words.contains(&word) {
                return Err(format!("response type `{text}` repeats `{part}`"));
            }
            words.push(word);
        }
        if words.len() > 1 && words.contains(&ResponseTypeWord::None) {
            return Err(format!("response type `{text}`: `none` cannot be combined"));
        }
        Ok(Self(words))
    }

    /// The words, in the order sent.
    #[must_use]
    pub fn words(&self) -> &[ResponseTypeWord] {
        &self.0
    }

    /// Whether the response type contains `word`.
    #[must_use]
    pub fn contains(&self, word: ResponseTypeWord) -> bool {
        self.0.contains(&word)
    }

    /// Whether the authorization endpoint returns a token (implicit or hybrid).
    #[must_use]
    pub fn returns_token(&self) -> bool {
        self.contains(ResponseTypeWord::Token) || self.contains(ResponseTypeWord::IdToken)
    }
}

impl fmt::Display for ResponseType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, word) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(word.as_str())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for grant in GrantType::ALL {
            assert_eq!(GrantType::parse(grant.as_str()), Some(*grant));
        }
        for alg in JweAlgorithm::ALL {
            assert_eq!(JweAlgorithm::parse(alg.as_str()), Some(*alg));
        }
        assert_eq!(
            AuthMethod::parse("client_secret_basic"),
            Some(AuthMethod::ClientSecretBasic)
        );
        assert_eq!(AuthMethod::parse("CLIENT_SECRET_BASIC"), None);
    }

    #[test]
    fn response_types_keep_their_order() {
        let rt = ResponseType::parse("id_token code").unwrap();
        assert_eq!(rt.to_string(), "id_token code");
        assert!(rt.returns_token());
        assert!(ResponseType::parse("code  token").is_err());
        assert!(ResponseType::parse("code code").is_err());
        assert!(ResponseType::parse("none code").is_err());
        assert!(ResponseType::parse("").is_err());
        assert!(!ResponseType::parse("none").unwrap().returns_token());
    }
}
