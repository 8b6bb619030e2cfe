//! Grant types, response types and the token endpoint authentication
//! method: parsed, each list defaulted from the other, and consistent with
//! each other (OpenID Connect DCR 1.0 §2).

use super::{MetadataDocument, MetadataError, Reading, invalid};
use crate::domain::values::{AuthMethod, GrantType, ResponseType, ResponseTypeWord};

/// Reads `token_endpoint_auth_method`; `client_secret_basic` by default.
pub(super) fn auth_method(doc: &MetadataDocument) -> Result<AuthMethod, MetadataError> {
    match doc.token_endpoint_auth_method.as_deref() {
        None => Ok(AuthMethod::ClientSecretBasic),
        Some(text) => AuthMethod::parse(text)
            .ok_or_else(|| invalid(format!("unsupported token_endpoint_auth_method `{text}`"))),
    }
}

/// Reads `grant_types` and `response_types`. When only one is sent, the
/// other is derived from it (`code` ⇔ `authorization_code`, `token`/`id_token`
/// ⇔ `implicit`), so a `client_credentials`-only client needs no
/// `response_types: []`. A submitted document's lists must agree with each
/// other and with `auth`.
pub(super) fn read(
    doc: &MetadataDocument,
    auth: AuthMethod,
    reading: Reading<'_>,
) -> Result<(Vec<GrantType>, Vec<ResponseType>), MetadataError> {
    let (grants, responses) =
        grants_and_responses(doc.grant_types.as_deref(), doc.response_types.as_deref())?;
    reading.check(|| check_consistency(&grants, &responses, auth))?;
    Ok((grants, responses))
}

fn grants_and_responses(
    grants: Option<&[String]>,
    responses: Option<&[String]>,
) -> Result<(Vec<GrantType>, Vec<ResponseType>), MetadataError> {
    let grants = grants
        .map(|list| {
            list.iter()
                .map(|g| {
                    GrantType::parse(g)
                        .ok_or_else(|| invalid(format!("unsupported grant type `{g}`")))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let responses = responses
        .map(|list| {
            list.iter()
                .map(|r| ResponseType::parse(r).map_err(invalid))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    Ok(match (grants, responses) {
        (Some(g), Some(r)) => (g, r),
        (None, None) => (
            vec![GrantType::AuthorizationCode],
            vec![ResponseType::code()],
        ),
        (Some(g), None) => {
            let r = if g.contains(&GrantType::AuthorizationCode) {
                vec![ResponseType::code()]
            } else {
                Vec::new()
            };
            (g, r)
        }
        (None, Some(r)) => {
            let mut g = Vec::new();
            if r.iter().any(|t| t.contains(ResponseTypeWord::Code)) {
                g.push(GrantType::AuthorizationCode);
            }
            if r.iter().any(ResponseType::returns_token) {
                g.push(GrantType::Implicit);
            }
            (g, r)
        }
    })
}

/// OpenID Connect DCR §2: `code` needs `authorization_code`, `token` and
/// `id_token` need `implicit`, and each of those grants needs its response type.
fn check_consistency(
    grants: &[GrantType],
    responses: &[ResponseType],
    auth: AuthMethod,
) -> Result<(), MetadataError> {
    let has = |g| grants.contains(&g);
    let any_code = responses.iter().any(|r| r.contains(ResponseTypeWord::Code));
    let any_token = responses.iter().any(ResponseType::returns_token);
    if any_code && !has(GrantType::AuthorizationCode) {
        return Err(invalid(
            "response type `code` requires the authorization_code grant type",
        ));
    }
    if any_token && !has(GrantType::Implicit) {
        return Err(invalid(
            "response types with `token` or `id_token` require the implicit grant type",
        ));
    }
    if has(GrantType::AuthorizationCode) && !any_code {
        return Err(invalid(
            "the authorization_code grant type requires a response type with `code`",
        ));
    }
    if has(GrantType::Implicit) && !any_token {
        return Err(invalid(
            "the implicit grant type requires a response type with `token` or `id_token`",
        ));
    }
    if auth == AuthMethod::None && has(GrantType::ClientCredentials) {
        return Err(invalid(
            "the client_credentials grant type needs client authentication, not `none`",
        ));
    }
    Ok(())
}
