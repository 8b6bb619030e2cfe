//! Registrations generated at random, through each back end.

use super::{Subject, gateway};

/// Valid documents registered through the subject are created or refused
/// naming the provider, and no request breaks its vendor's document.
pub fn valid_registrations_never_break_the_providers_api<S: Subject>() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = runtime.block_on(S::start());
    let app = runtime.block_on(gateway(&fake));
    crate::properties::valid_registrations_respect_the_provider(S::KIND, &runtime, &app);
    fake.ledger().assert_clean(S::VENDOR);
}
