//! The OpenID Connect logout members that Hydra and Okta both hold under
//! the registry's names (RP-Initiated and Front-Channel Logout 1.0), as
//! their client documents take them: the registered text, absent when not
//! registered.

use serde::Serialize;

use crate::domain::metadata::RegistryMembers;

/// `post_logout_redirect_uris`, `frontchannel_logout_uri` and
/// `frontchannel_logout_session_required`, flattened into a vendor's body.
#[derive(Debug, Serialize)]
pub(super) struct LogoutMembers<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    post_logout_redirect_uris: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frontchannel_logout_uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frontchannel_logout_session_required: Option<bool>,
}

impl<'a> From<&'a RegistryMembers> for LogoutMembers<'a> {
    fn from(members: &'a RegistryMembers) -> Self {
        Self {
            post_logout_redirect_uris: members
                .post_logout_redirect_uris
                .iter()
                .map(|u| u.as_str())
                .collect(),
            frontchannel_logout_uri: members.frontchannel_logout_uri.as_ref().map(|u| u.as_str()),
            frontchannel_logout_session_required: members.frontchannel_logout_session_required,
        }
    }
}
