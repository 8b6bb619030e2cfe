//! Admission: who may register and with what — the initial access token,
//! the software statement, the metadata rules and the policy, the sector
//! identifier document, the cap of clients per software.

use serde_json::{Map, Value};

use crate::domain::metadata::ExtraMetadata;
use crate::domain::policy::Policy;
use crate::domain::{
    ClientMetadata, InitialAccessTokenRecord, MetadataDocument, RegistrationError, VouchedClaims,
};

use super::core::internal;
use super::{RegistrationMode, RegistrationService, RequestContext};

/// JWT claims of a software statement that are not client metadata.
const JWT_CLAIMS: [&str; 7] = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

impl RegistrationService {
    /// Checks the initial access token the mode requires (or the one
    /// presented in open mode). Its use is spent later, just before the write.
    pub(super) async fn admit(
        &self,
        context: &RequestContext,
    ) -> Result<Option<InitialAccessTokenRecord>, RegistrationError> {
        let Some(presented) = &context.initial_access_token else {
            return match self.rules.mode {
                RegistrationMode::Open => Ok(None),
                RegistrationMode::InitialAccessToken => {
                    Err(RegistrationError::InvalidInitialAccessToken(
                        "registration requires an initial access token (Authorization: Bearer)"
                            .into(),
                    ))
                }
            };
        };
        let record = self
            .tokens
            .find_initial_access_token(&presented.hash())
            .await
            .map_err(internal)?;
        match record {
            Some(record) if record.usable(self.core.now()) => Ok(Some(record)),
            _ => Err(RegistrationError::InvalidInitialAccessToken(
                "the initial access token is unknown, expired, revoked or used up".into(),
            )),
        }
    }

    /// Applies the software statement, the client-compatibility rules, the
    /// metadata rules and the policy, then checks what needs fetching.
    /// `pinned` holds what an earlier statement vouched for (on a replace);
    /// the answer carries what is vouched for from now on.
    pub(super) async fn validate(
        &self,
        document: MetadataDocument,
        policy: &Policy,
        pinned: Option<&VouchedClaims>,
    ) -> Result<(ClientMetadata, Option<VouchedClaims>), RegistrationError> {
        let (mut document, vouched) = self.apply_software_statement(document, pinned).await?;
        let compat = &self.rules.compat;
        compat.normalise(&mut document);
        let extra_metadata = ExtraMetadata::pick(&document, &policy.extra_metadata);
        let rules = compat.redirect_rules(policy.redirect_rules());
        let mut metadata = ClientMetadata::validate(document, rules)?;
        metadata.extra_metadata = extra_metadata;
        policy.apply(&mut metadata)?;
        compat
            .fit_provider(&mut metadata, |m| self.core.registry().supports(m))
            .map_err(RegistrationError::InvalidClientMetadata)?;
        self.check_sector_identifier(&metadata).await?;
        Ok((metadata, vouched))
    }

    /// RFC 7591 §2.3: a verified statement's claims take precedence over the
    /// same members in the body, and stay pinned to the registration. A
    /// replace without a new statement keeps the `pinned` claims: it may
    /// leave those members out, but not change them.
    async fn apply_software_statement(
        &self,
        document: MetadataDocument,
        pinned: Option<&VouchedClaims>,
    ) -> Result<(MetadataDocument, Option<VouchedClaims>), RegistrationError> {
        let vouched = match &document.software_statement {
            Some(statement) => {
                let Some(verifier) = &self.rules.statements else {
                    return Err(RegistrationError::UnapprovedSoftwareStatement(
                        "this gateway trusts no software statement issuers".into(),
                    ));
                };
                let mut claims = verifier.verify(statement).await?;
                claims.retain(|claim, _| !JWT_CLAIMS.contains(&claim.as_str()));
                VouchedClaims(claims)
            }
            None if pinned.is_some() => {
                let pinned = pinned.cloned().unwrap_or_default();
                let sent = serde_json::to_value(&document).unwrap_or(Value::Null);
                if let Some((member, _)) = pinned
                    .0
                    .iter()
                    .find(|(member, value)| sent.get(member).is_some_and(|s| s != *value))
                {
                    return Err(RegistrationError::InvalidClientMetadata(format!(
                        "`{member}` was vouched for by the software statement; send a new \
                         software_statement to change it"
                    )));
                }
                pinned
            }
            None if self.rules.statement_required => {
                return Err(RegistrationError::InvalidSoftwareStatement(
                    "a software_statement is required".into(),
                ));
            }
            None => return Ok((document, None)),
        };
        let mut merged = match serde_json::to_value(&document) {
            Ok(Value::Object(members)) => members,
            _ => Map::new(),
        };
        merged.extend(vouched.0.clone());
        let document = serde_json::from_value(Value::Object(merged)).map_err(|e| {
            RegistrationError::InvalidSoftwareStatement(format!(
                "the statement's claims are not valid metadata: {e}"
            ))
        })?;
        Ok((document, Some(vouched)))
    }

    /// OpenID Connect Core §8.1: the sector document lists every redirect URI.
    async fn check_sector_identifier(
        &self,
        metadata: &ClientMetadata,
    ) -> Result<(), RegistrationError> {
        let Some(uri) = &metadata.sector_identifier_uri else {
            return Ok(());
        };
        let document = self.fetcher.fetch_json(uri.url()).await.map_err(|error| {
            // The cause (connection refused, a certificate, a status) would
            // let an app probe what the gateway can reach: it is logged only.
            tracing::warn!(uri = uri.as_str(), %error, "sector_identifier_uri fetch failed");
            RegistrationError::InvalidClientMetadata(format!(
                "sector_identifier_uri `{}` could not be fetched as a JSON document",
                uri.as_str()
            ))
        })?;
        let listed: Vec<&str> = document
            .as_array()
            .and_then(|items| items.iter().map(Value::as_str).collect())
            .ok_or_else(|| {
                RegistrationError::InvalidClientMetadata(
                    "sector_identifier_uri must return a JSON array of URI strings".into(),
                )
            })?;
        match metadata
            .redirect_uris
            .iter()
            .find(|redirect| !listed.contains(&redirect.as_str()))
        {
            Some(missing) => Err(RegistrationError::InvalidClientMetadata(format!(
                "redirect URI `{}` is not listed in the sector_identifier_uri document",
                missing.as_str()
            ))),
            None => Ok(()),
        }
    }

    /// Whether a client moving to another software (by a replace) fits that
    /// software's cap.
    pub(super) async fn check_software_limit(
        &self,
        software_id: Option<&str>,
        policy: &Policy,
    ) -> Result<(), RegistrationError> {
        let (Some(limit), Some(software_id)) = (policy.max_clients_per_software_id, software_id)
        else {
            return Ok(());
        };
        let count = self
            .core
            .queries()
            .count_software(software_id)
            .await
            .map_err(internal)?;
        if count >= limit {
            return Err(RegistrationError::InvalidClientMetadata(format!(
                "software `{software_id}` already has {count} clients (policy `{}`, rule `max_clients_per_software_id`)",
                policy.name
            )));
        }
        Ok(())
    }
}
