//! The members of the IANA "OAuth Dynamic Client Registration Metadata"
//! registry that extend RFC 7591 and OpenID Connect DCR 1.0: logout
//! (RP-Initiated, Front-Channel and Back-Channel Logout 1.0), mutual TLS
//! (RFC 8705), DPoP (RFC 9449), PAR (RFC 9126), JAR (RFC 9101), rich
//! authorization requests (RFC 9396), JARM, CIBA, JWT introspection
//! responses (RFC 9701), OpenID Federation 1.0, ACE (RFC 9200) and NFV
//! access tokens (ETSI GS NFV-SEC 022), each read into a typed value under
//! its spec's rules.
//!
//! The simple ones are rows of the member table (`document.rs`), which reads
//! and writes them; the code here reads and writes the others, and checks
//! the rules between members.

use std::net::IpAddr;

use super::document::Ruled;
use super::jose::{self, Encrypted};
use super::keys::CertificateSubject;
use super::localized::{self, put_localized};
use super::table::check_text;
use super::{MetadataDocument, MetadataError, Reading, RegistryMembers, invalid};
use crate::domain::uri::RegisteredUri;
use crate::domain::values::{AuthMethod, GrantType, RegistrationType, TokenDeliveryMode};

/// Reads every registry member of `doc`: the table's, then those read
/// here. A submitted document meets each member's rules and the rules
/// between members: logout URIs without a fragment, a front-channel logout
/// URI on the origin of a redirect URI, one certificate subject (exactly one
/// for `tls_client_auth`), no `none` signatures, `*_enc` only with `*_alg`,
/// a CIBA client with a delivery mode and, to be pinged or pushed to, a
/// notification endpoint, at least one known registration type, an https
/// `signed_jwks_uri` and a named ACE profile.
pub(super) fn read(
    doc: &mut MetadataDocument,
    redirect_uris: &[RegisteredUri],
    grant_types: &[GrantType],
    auth: AuthMethod,
    reading: Reading<'_>,
) -> Result<RegistryMembers, MetadataError> {
    let members = RegistryMembers::read_with(doc, reading, |doc| {
        Ok(Ruled {
            tls_client_auth_subject: certificate_subject(doc, auth, reading)?,
            client_registration_types: registration_types(doc, reading)?,
            organization_name: localized::read(
                doc.organization_name.take(),
                &doc.other,
                "organization_name",
                reading,
                Ok,
            )?,
            authorization_encryption: jose::encryption(doc, Encrypted::Authorization)?,
            introspection_encryption: jose::encryption(doc, Encrypted::Introspection)?,
            backchannel_token_delivery_mode: delivery_mode(doc)?,
            nfv_token_encryption: jose::encryption(doc, Encrypted::NfvToken)?,
        })
    })?;
    reading.check(|| members.check_between(redirect_uris, grant_types))?;
    Ok(members)
}

impl RegistryMembers {
    /// Writes the members back into `doc`, as registered.
    pub(super) fn write(&self, doc: &mut MetadataDocument) {
        self.write_table(doc);
        if let Some(subject) = &self.tls_client_auth_subject {
            *subject_slot(doc, subject) = Some(subject.as_str().to_owned());
        }
        (
            doc.authorization_encrypted_response_alg,
            doc.authorization_encrypted_response_enc,
        ) = jose::encryption_names(self.authorization_encryption);
        (
            doc.introspection_encrypted_response_alg,
            doc.introspection_encrypted_response_enc,
        ) = jose::encryption_names(self.introspection_encryption);
        doc.backchannel_token_delivery_mode = self
            .backchannel_token_delivery_mode
            .map(|m| m.as_str().to_owned());
        let types = &self.client_registration_types;
        doc.client_registration_types =
            (!types.is_empty()).then(|| types.iter().map(|t| t.as_str().to_owned()).collect());
        doc.organization_name = put_localized(
            &self.organization_name,
            "organization_name",
            &mut doc.other,
            Clone::clone,
        );
        (doc.nfv_token_encryption_alg, doc.nfv_token_encryption_enc) =
            jose::encryption_names(self.nfv_token_encryption);
    }

    /// Every URI among the members, with its member name.
    pub(super) fn uris(&self) -> impl Iterator<Item = (&'static str, &RegisteredUri)> {
        let san_uri = match &self.tls_client_auth_subject {
            Some(CertificateSubject::SanUri(uri)) => Some(("tls_client_auth_san_uri", uri)),
            _ => None,
        };
        self.table_uris().chain(san_uri)
    }

    /// The rules between members: Front-Channel Logout 1.0 §2 and CIBA.
    fn check_between(
        &self,
        redirect_uris: &[RegisteredUri],
        grant_types: &[GrantType],
    ) -> Result<(), MetadataError> {
        if let Some(uri) = &self.frontchannel_logout_uri {
            same_origin_as_a_redirect(uri, redirect_uris)?;
        }
        self.check_ciba(grant_types)
    }

    /// CIBA Core 1.0 §4: a client of the CIBA grant names its delivery
    /// mode, and `ping` and `push` need the endpoint they call.
    fn check_ciba(&self, grant_types: &[GrantType]) -> Result<(), MetadataError> {
        let mode = self.backchannel_token_delivery_mode;
        if grant_types.contains(&GrantType::Ciba) && mode.is_none() {
            return Err(invalid(format!(
                "backchannel_token_delivery_mode is required with the `{}` grant type",
                GrantType::Ciba
            )));
        }
        match mode {
            Some(mode @ (TokenDeliveryMode::Ping | TokenDeliveryMode::Push))
                if self.backchannel_client_notification_endpoint.is_none() =>
            {
                Err(invalid(format!(
                    "backchannel_token_delivery_mode `{mode}` requires \
                     backchannel_client_notification_endpoint"
                )))
            }
            _ => Ok(()),
        }
    }
}

/// Front-Channel Logout 1.0 §2: the URI's scheme, host and port are those
/// of a registered redirect URI.
fn same_origin_as_a_redirect(
    uri: &RegisteredUri,
    redirect_uris: &[RegisteredUri],
) -> Result<(), MetadataError> {
    let origin = uri.url().origin();
    if redirect_uris.iter().any(|r| r.url().origin() == origin) {
        return Ok(());
    }
    Err(invalid(format!(
        "frontchannel_logout_uri `{}` must have the scheme, host and port of a redirect URI",
        uri.as_str()
    )))
}

/// Reads the `tls_client_auth_*` members: at most one, and exactly one
/// for `tls_client_auth` (RFC 8705 §2.1.2).
fn certificate_subject(
    doc: &mut MetadataDocument,
    auth: AuthMethod,
    reading: Reading<'_>,
) -> Result<Option<CertificateSubject>, MetadataError> {
    let given = [
        doc.tls_client_auth_subject_dn
            .take()
            .map(CertificateSubject::SubjectDn),
        doc.tls_client_auth_san_dns
            .take()
            .map(CertificateSubject::SanDns),
        reading
            .uri_member(
                doc.tls_client_auth_san_uri.take().as_deref(),
                "tls_client_auth_san_uri",
                RegisteredUri::parse,
            )?
            .map(CertificateSubject::SanUri),
        doc.tls_client_auth_san_ip
            .take()
            .map(CertificateSubject::SanIp),
        doc.tls_client_auth_san_email
            .take()
            .map(CertificateSubject::SanEmail),
    ];
    let mut given = given.into_iter().flatten();
    let subject = given.next();
    let second = given.next();
    reading.check(|| {
        if let (Some(first), Some(second)) = (&subject, &second) {
            return Err(invalid(format!(
                "{} and {}: register one expected certificate subject, not two",
                first.member(),
                second.member()
            )));
        }
        match &subject {
            None if auth == AuthMethod::TlsClientAuth => Err(invalid(
                "tls_client_auth needs one of tls_client_auth_subject_dn, _san_dns, \
                 _san_uri, _san_ip or _san_email",
            )),
            None => Ok(()),
            Some(subject) => check_subject(subject),
        }
    })?;
    Ok(subject)
}

/// A subject's text is of its kind: not blank, an IP address for
/// `san_ip`, an address with `@` for `san_email`.
fn check_subject(subject: &CertificateSubject) -> Result<(), MetadataError> {
    let text = subject.as_str();
    let fits = match subject {
        CertificateSubject::SanIp(text) => text.parse::<IpAddr>().is_ok(),
        CertificateSubject::SanEmail(text) => text
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty()),
        _ => !text.trim().is_empty(),
    };
    check_text(subject.member(), text, fits)
}

/// Reads `client_registration_types`: each `automatic` or `explicit`, and
/// a submitted list names at least one (OpenID Federation 1.0 §5.1.2).
fn registration_types(
    doc: &mut MetadataDocument,
    reading: Reading<'_>,
) -> Result<Vec<RegistrationType>, MetadataError> {
    let Some(texts) = doc.client_registration_types.take() else {
        return Ok(Vec::new());
    };
    reading.check(|| {
        if texts.is_empty() {
            return Err(invalid(
                "client_registration_types must name at least one registration type",
            ));
        }
        Ok(())
    })?;
    texts
        .iter()
        .map(|text| {
            RegistrationType::parse(text).ok_or_else(|| {
                invalid(format!(
                    "client_registration_types: `{}` is not automatic or explicit",
                    text.escape_debug()
                ))
            })
        })
        .collect()
}

/// Reads `backchannel_token_delivery_mode`: `poll`, `ping` or `push`.
fn delivery_mode(doc: &MetadataDocument) -> Result<Option<TokenDeliveryMode>, MetadataError> {
    doc.backchannel_token_delivery_mode
        .as_deref()
        .map(|text| {
            TokenDeliveryMode::parse(text).ok_or_else(|| {
                invalid(format!(
                    "backchannel_token_delivery_mode: `{text}` is not poll, ping or push"
                ))
            })
        })
        .transpose()
}

/// Where `subject`'s member lives in a document.
fn subject_slot<'a>(
    doc: &'a mut MetadataDocument,
    subject: &CertificateSubject,
) -> &'a mut Option<String> {
    match subject {
        CertificateSubject::SubjectDn(_) => &mut doc.tls_client_auth_subject_dn,
        CertificateSubject::SanDns(_) => &mut doc.tls_client_auth_san_dns,
        CertificateSubject::SanUri(_) => &mut doc.tls_client_auth_san_uri,
        CertificateSubject::SanIp(_) => &mut doc.tls_client_auth_san_ip,
        CertificateSubject::SanEmail(_) => &mut doc.tls_client_auth_san_email,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::ClientMetadata;
    use crate::domain::metadata::ExtraMetadata;
    use crate::domain::uri::RedirectRules;

    fn document(members: serde_json::Value) -> MetadataDocument {
        let mut body = json!({ "redirect_uris": ["https://app.example.com/cb"] });
        if let (Some(body), serde_json::Value::Object(members)) = (body.as_object_mut(), members) {
            body.extend(members);
        }
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn what_is_stored_reads_back_the_same() {
        let sent = document(json!({
            "post_logout_redirect_uris": ["https://app.example.com/Bye?x=%41"],
            "frontchannel_logout_uri": "https://app.example.com/fc",
            "backchannel_logout_session_required": true,
            "tls_client_auth_san_ip": "::ffff:192.0.2.1",
            "authorization_encrypted_response_alg": "RSA-OAEP",
            "backchannel_token_delivery_mode": "push",
            "backchannel_client_notification_endpoint": "https://app.example.com/n",
            "client_registration_types": ["automatic"],
            "organization_name": "Example",
            "organization_name#fr": "Exemple",
            "signed_jwks_uri": "https://app.example.com/Keys.jwt",
            "nfv_token_encryption_alg": "RSA-OAEP",
            "tenant_hint": { "a": [1] },
        }));
        let extra = ExtraMetadata::pick(&sent, &["tenant_hint".to_owned()]);
        let mut metadata = ClientMetadata::validate(sent, RedirectRules::PERMISSIVE).unwrap();
        metadata.extra_metadata = extra;
        let stored = metadata.to_document();
        assert_eq!(
            stored.authorization_encrypted_response_enc.as_deref(),
            Some("A128CBC-HS256"),
            "JARM's default content encryption is written"
        );
        assert_eq!(
            stored.other.get("organization_name#fr"),
            Some(&json!("Exemple")),
            "language-tagged variants are written back"
        );
        assert_eq!(ClientMetadata::from_stored(stored).unwrap(), metadata);
    }

    #[test]
    fn an_empty_client_registration_types_is_refused() {
        let sent = document(json!({ "client_registration_types": [] }));
        let refused = ClientMetadata::validate(sent, RedirectRules::PERMISSIVE).unwrap_err();
        assert!(refused.to_string().contains("client_registration_types"));
    }

    #[test]
    fn stored_documents_are_decoded_without_the_registration_rules() {
        // A front-channel URI on no redirect URI's origin, and two subjects:
        // refused when sent, decoded when read from the store.
        let members = json!({
            "frontchannel_logout_uri": "https://elsewhere.example.com/fc",
            "tls_client_auth_subject_dn": "CN=a",
            "tls_client_auth_san_dns": "a.example.com",
        });
        assert!(
            ClientMetadata::validate(document(members.clone()), RedirectRules::PERMISSIVE).is_err()
        );
        let stored = ClientMetadata::from_stored(document(members)).unwrap();
        assert!(stored.registry_members.frontchannel_logout_uri.is_some());
    }
}
