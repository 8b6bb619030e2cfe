//! What the gateway did, counted per hour and kind, for the console's
//! Activity page: each instance adds its counts every few seconds, so the
//! hours hold the sum over instances.

use async_trait::async_trait;

use super::StoreError;

/// A kind of thing the gateway counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activity {
    /// A client registered (RFC 7591).
    Registration,
    /// An RFC 7592 call answered (read, replace, delete).
    Management,
    /// A sign-in started at the front's `/authorize`.
    Login,
    /// Tokens granted at the front's `/token`.
    TokenGrant,
    /// A request refused (400, 401 or 403).
    Refusal,
    /// A request refused by a rate limit (429).
    RateLimited,
}

impl Activity {
    /// Every kind, in the order pages show them.
    pub const ALL: [Self; 6] = [
        Self::Registration,
        Self::Management,
        Self::Login,
        Self::TokenGrant,
        Self::Refusal,
        Self::RateLimited,
    ];

    /// The name stored in the database.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registration => "registration",
            Self::Management => "management",
            Self::Login => "login",
            Self::TokenGrant => "token_grant",
            Self::Refusal => "refusal",
            Self::RateLimited => "rate_limited",
        }
    }

    /// Parses a stored name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// Counts of one hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourCount {
    /// The hour's start (seconds since the epoch, a multiple of 3600).
    pub hour: i64,
    /// What was counted.
    pub kind: Activity,
    /// How many.
    pub count: u64,
}

/// The hourly counts.
#[async_trait]
pub trait ActivityLog: Send + Sync {
    /// Adds `counts` to what the store holds for their hours.
    async fn add_activity(&self, counts: &[HourCount]) -> Result<(), StoreError>;

    /// The counts of the hours from `from_hour` on, oldest first.
    async fn activity_since(&self, from_hour: i64) -> Result<Vec<HourCount>, StoreError>;

    /// Forgets the hours before `before_hour`.
    async fn prune_activity(&self, before_hour: i64) -> Result<(), StoreError>;
}
