//! The provider contract, written once and run against every back end that
//! has a fake, as the store's contract runs against SQLite and PostgreSQL.
//!
//! A back end takes part by describing itself and its fake as a [`Subject`]
//! (in its own test file, next to its vendor-specific tests) and by one line
//! in the `subjects!` list at the end of this file. Each contract test is a
//! function generic over the subject; the list makes one test per contract
//! test and subject, named `providers::<subject>::<test>`.
//!
//! - `lifecycle`: register, read, replace, rotate, delete; a client deleted
//!   behind the gateway's back; replaces and deletes whose outcome is lost.
//! - `failures`: a refused credential, a rate limit, no provider at all,
//!   creates whose answer is lost, unknown outcomes, and listings across
//!   capped pages.
//! - `drill`: many registrations and deletes under random write faults.
//! - `properties`: registrations generated at random.
//!
//! The gateways here are made by [`spawn_app_for_provider`] (calls are not
//! retried and the breaker never sheds, so each fault lands where the test
//! queues it), except the drill's, which has the default retries and
//! breaker, and the concurrent replaces', whose calls may take longer.

mod drill;
mod failures;
mod lifecycle;
mod properties;

use std::future::Future;
use std::ops::RangeInclusive;

use serde_json::Value;

use crate::support::faults::{Fault, Ledger};
use crate::support::*;

/// A provider back end and its fake, as the contract drives them.
pub trait Subject: Sized + Send + Sync + 'static {
    /// The vendor, as failed assertions name it.
    const VENDOR: &'static str;
    /// The back end's `kind`, as the gateway names the provider to apps.
    const KIND: &'static str;
    /// What the back end does about a create whose answer was lost, with
    /// calls sent once (as here).
    const LOST_CREATE: LostCreate;
    /// Calls a replace sends before its write (reads of what the provider
    /// holds), so that a fault can be aimed at the write.
    const READS_BEFORE_REPLACE: usize;
    /// Calls a delete sends before its write.
    const READS_BEFORE_DELETE: usize;
    /// The member of the provider's record that holds the client secret.
    const SECRET: &'static str;
    /// The member of the provider's record that holds the redirect URIs.
    const REDIRECT_URIS: &'static str;

    /// Starts the fake.
    fn start() -> impl Future<Output = Self> + Send;

    /// The `[provider]` keys of a gateway in front of the provider at `base`.
    fn keys_at(base: &str) -> String;

    /// The fake's base URL.
    fn base(&self) -> &str;

    /// What the fake received and was told to do.
    fn ledger(&self) -> &Ledger;

    /// The ids of the clients the provider holds (and has not retired),
    /// sorted.
    fn ids(&self) -> Vec<String>;

    /// The provider's record of client `id`.
    fn held(&self, id: &str) -> Option<Value>;

    /// The client secret the provider holds for `id`.
    fn secret_of(&self, id: &str) -> Option<String> {
        self.held(id)?[Self::SECRET].as_str().map(str::to_owned)
    }

    /// The redirect URIs the provider holds for `id`.
    fn redirect_uris_of(&self, id: &str) -> Option<Vec<String>> {
        uris(&self.held(id)?[Self::REDIRECT_URIS])
    }

    /// Removes `id` behind the gateway's back, as an admin would.
    fn forget(&self, id: &str) -> impl Future<Output = ()> + Send;

    /// From now on pages of the provider's listing hold at most `n` clients.
    fn limit_page_size(&self, n: usize);

    /// `[provider]` keys whose credential the fake refuses (telling it to
    /// check one, where it would not).
    fn refused_credential(&self) -> String;

    /// Makes the next call meet a rate limit; returns the wait, in
    /// seconds, that the app should be told.
    fn rate_limit(&self) -> RangeInclusive<u64> {
        self.ledger().queue_faults(&[Fault::RateLimited]);
        7..=7
    }

    /// Lets the fake serve a bulk run (the drill) without refusing calls
    /// for reasons of its own.
    fn allow_bulk(&self) {}
}

/// The items of a [`Subject`] that every fake here answers alike: it is
/// started by its own `start()` and keeps its base URL in `base`, its
/// ledger in `ledger` and a client's record behind `client(id)`.
macro_rules! fake_basics {
    () => {
        async fn start() -> Self {
            Self::start().await
        }

        fn base(&self) -> &str {
            &self.base
        }

        fn ledger(&self) -> &crate::support::faults::Ledger {
            &self.ledger
        }

        fn held(&self, id: &str) -> Option<serde_json::Value> {
            self.client(id)
        }
    };
}
pub(crate) use fake_basics;

/// What a back end does about a create whose answer was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostCreate {
    /// It looks for the client (a search, a read by id) and, found, adopts
    /// it: the registration succeeds.
    FoundAgain,
    /// It cannot look: the registration is left pending for reconcile.
    LeftPending,
}

impl LostCreate {
    /// Faults that lose a create's answer after the provider made the
    /// client, and leave the back end unable to find it.
    fn lost_and_not_found(self) -> &'static [Fault] {
        match self {
            Self::FoundAgain => &[Fault::CommitAndDrop, Fault::ServerError],
            Self::LeftPending => &[Fault::CommitAndDrop],
        }
    }
}

/// A gateway in front of `fake`, calls sent once and never shed.
pub async fn gateway<S: Subject>(fake: &S) -> TestApp {
    spawn_app_for_provider(&S::keys_at(fake.base())).await
}

/// Makes the write of the next operation meet `fault`, after the `reads`
/// that come before it.
fn fault_on_write<S: Subject>(fake: &S, reads: usize, fault: Fault) {
    let mut faults = vec![Fault::Pass; reads];
    faults.push(fault);
    fake.ledger().queue_faults(&faults);
}

/// Redirect URIs as a provider holds them: an array, or one
/// comma-separated string.
fn uris(value: &Value) -> Option<Vec<String>> {
    if let Some(joined) = value.as_str() {
        return Some(joined.split(',').map(str::to_owned).collect());
    }
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// The ids in a reconcile report's list, as text.
fn texts(ids: &[dcr_gateway::domain::ClientId]) -> Vec<String> {
    ids.iter().map(ToString::to_string).collect()
}

/// One test per contract test, for `$subject`: async ones, then ones that
/// run their own runtime.
macro_rules! contract_tests {
    (
        $subject:ty;
        async: $($module:ident::$test:ident),*;
        blocking: $($blocking_module:ident::$blocking:ident),* $(,)?
    ) => {
        $(
            #[tokio::test]
            async fn $test() {
                crate::providers::$module::$test::<$subject>().await;
            }
        )*
        $(
            #[test]
            fn $blocking() {
                crate::providers::$blocking_module::$blocking::<$subject>();
            }
        )*
    };
}

/// The contract, run against each subject: `name: Subject`.
macro_rules! subjects {
    ($($name:ident: $subject:ty),* $(,)?) => {$(
        mod $name {
            contract_tests!($subject;
                async:
                    lifecycle::register_read_replace_rotate_delete,
                    lifecycle::a_client_deleted_behind_the_gateways_back_reads_as_gone,
                    lifecycle::a_failed_replace_leaves_the_registration_as_it_was,
                    lifecycle::a_replace_with_an_unknown_outcome_is_sent_again_by_reconcile,
                    lifecycle::concurrent_replaces_one_wins_the_other_is_refused,
                    lifecycle::a_delete_whose_answer_is_lost_finishes_in_reconcile,
                    failures::a_refused_credential_is_an_outage_not_the_apps_fault,
                    failures::a_rate_limit_is_passed_on_and_leaves_nothing,
                    failures::a_provider_that_does_not_answer_is_503_with_retry_after,
                    failures::a_lost_create_is_found_again_or_left_pending,
                    failures::a_lost_create_not_found_is_removed_by_reconcile,
                    failures::unknown_outcomes_of_creates_are_settled_by_reconcile,
                    failures::reconcile_follows_capped_pages,
                    drill::drill;
                blocking:
                    properties::valid_registrations_never_break_the_providers_api,
            );
        }
    )*};
}

// The local registry has no provider to fake. The rfc7591 back end's
// upstream in these tests is a real node oidc-provider: it cannot be told
// to fail, holds no listing for reconcile to compare, and shows secrets
// only by using them, so its own file (`rfc7591.rs`) runs the lifecycle
// and the unknown-client case against it.
subjects! {
    hydra: crate::support::hydra::HydraFake,
    okta: crate::support::okta::OktaFake,
    zendesk: crate::support::zendesk::ZendeskFake,
    billforward: crate::support::billforward::BillForwardFake,
}
