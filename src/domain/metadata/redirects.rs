//! Redirect URIs (OpenID Connect DCR 1.0 §2, RFC 8252) and what their rules
//! depend on or decide: the application type, and pairwise subjects, whose
//! redirect URIs share one host unless a sector identifier lists them.

use super::{ClientMetadata, MetadataDocument, MetadataError, Reading, invalid};
use crate::domain::uri::{
    RedirectContext, RedirectRules, RegisteredUri, check_redirect_uri, parse_redirect_uri,
};
use crate::domain::values::{ApplicationType, GrantType, SubjectType};

/// Reads `application_type`; `web` by default.
pub(super) fn application_type(doc: &MetadataDocument) -> Result<ApplicationType, MetadataError> {
    match doc.application_type.as_deref() {
        None => Ok(ApplicationType::Web),
        Some(text) => ApplicationType::parse(text)
            .ok_or_else(|| invalid(format!("unsupported application_type `{text}`"))),
    }
}

/// What the redirect URI rules of a client depend on.
fn context(application_type: ApplicationType, grants: &[GrantType]) -> RedirectContext {
    RedirectContext {
        native: application_type == ApplicationType::Native,
        implicit: grants.contains(&GrantType::Implicit),
    }
}

/// Reads `redirect_uris`. A submitted document's URIs meet the rules every
/// stored client met, under its policy's `rules`, and are present when the
/// grants redirect.
pub(super) fn read(
    doc: &MetadataDocument,
    grants: &[GrantType],
    application_type: ApplicationType,
    reading: Reading<'_>,
) -> Result<Vec<RegisteredUri>, MetadataError> {
    let context = context(application_type, grants);
    let uris = doc
        .redirect_uris
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|uri| match reading {
            Reading::Submitted(rules) => parse_redirect_uri(uri, context, rules),
            Reading::Registered => RegisteredUri::parse(uri),
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(MetadataError::InvalidRedirectUri)?;
    reading.check(|| {
        let redirects_needed = grants
            .iter()
            .any(|g| matches!(g, GrantType::AuthorizationCode | GrantType::Implicit));
        if redirects_needed && uris.is_empty() {
            return Err(MetadataError::InvalidRedirectUri(
                "redirect_uris is required for the authorization_code and implicit grants".into(),
            ));
        }
        Ok(())
    })?;
    Ok(uris)
}

/// Reads `subject_type` and `sector_identifier_uri` (https). A submitted
/// pairwise client without a sector identifier has all its `redirect_uris`
/// on one host.
pub(super) fn subject(
    doc: &MetadataDocument,
    redirect_uris: &[RegisteredUri],
    reading: Reading<'_>,
) -> Result<(Option<SubjectType>, Option<RegisteredUri>), MetadataError> {
    let subject_type = doc
        .subject_type
        .as_deref()
        .map(|text| {
            SubjectType::parse(text)
                .ok_or_else(|| invalid(format!("unsupported subject_type `{text}`")))
        })
        .transpose()?;
    let sector_identifier_uri = reading.https_uri(
        doc.sector_identifier_uri.as_deref(),
        "sector_identifier_uri",
    )?;
    if subject_type == Some(SubjectType::Pairwise) && sector_identifier_uri.is_none() {
        reading.check(|| check_single_host(redirect_uris))?;
    }
    Ok((subject_type, sector_identifier_uri))
}

/// Pairwise subjects without a sector identifier need all redirect URIs on one host.
fn check_single_host(redirect_uris: &[RegisteredUri]) -> Result<(), MetadataError> {
    let mut hosts = redirect_uris.iter().map(|u| u.url().host_str());
    if let Some(first) = hosts.next() {
        if hosts.any(|h| h != first) {
            return Err(invalid(
                "pairwise subject_type with redirect URIs on several hosts needs a sector_identifier_uri",
            ));
        }
    }
    Ok(())
}

/// The rules a registration's redirect URIs meet on top of those [`read`]
/// applies (see [`check_redirect_uri`]).
pub(super) fn check_registration(
    metadata: &ClientMetadata,
    rules: &RedirectRules,
) -> Result<(), MetadataError> {
    let context = context(metadata.application_type, &metadata.grant_types);
    for uri in &metadata.redirect_uris {
        check_redirect_uri(uri, context, rules).map_err(MetadataError::InvalidRedirectUri)?;
    }
    Ok(())
}

/// Parses a logout URI: absolute, http or https, without a fragment (the
/// three logout specs forbid one).
pub(super) fn logout_uri(text: &str) -> Result<RegisteredUri, String> {
    let uri = RegisteredUri::parse_web(text)?;
    if uri.url().fragment().is_some() {
        return Err(format!("`{text}` must not contain a fragment"));
    }
    Ok(uri)
}
