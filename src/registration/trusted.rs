//! Registrations the gateway makes on its own authority: clients described
//! by a Client ID Metadata Document that the authorization front fetched
//! and checked against the operator's host policy. They take the default
//! policy and the usual pending → active path; no initial access token.

use crate::domain::{MetadataDocument, RegisteredClient, RegistrationError};

use super::RegistrationService;

impl RegistrationService {
    /// Registers `document` under the policy `policy` (`None`: the default
    /// one).
    pub async fn register_trusted(
        &self,
        document: MetadataDocument,
        policy: Option<&str>,
    ) -> Result<RegisteredClient, RegistrationError> {
        Ok(self.register_admitted(document, None, policy).await?.client)
    }

    /// Removes the client of a document nobody used for the operator's
    /// idle lifetime, here and at the provider (audited as
    /// `document_unused`).
    pub async fn remove_unused(&self, client_id: &str) -> Result<(), RegistrationError> {
        let client = self.show(client_id).await?;
        self.core
            .delete_audited(&client, "document_unused", None)
            .await
    }

    /// Replaces the whole registration of `client_id` by `document`, under
    /// the client's own policy, at the provider first.
    pub async fn replace_trusted(
        &self,
        client_id: &str,
        document: MetadataDocument,
    ) -> Result<RegisteredClient, RegistrationError> {
        let current = self.show(client_id).await?;
        let policy = self.core.policy(&current.policy)?;
        let (metadata, _) = self.validate(document, policy, None).await?;
        Ok(self.core.replace(current, metadata, None, None).await?.0)
    }
}
