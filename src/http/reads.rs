//! The RFC 7592 read from memory: the HTTP edge's own.
//!
//! Reads are most of the traffic, and a read of a client whose answer is
//! unchanged needs neither the router, nor the service, nor the store. So
//! the first read of a client, answered the full way (by the route
//! [`super::configure::read`]), leaves its answer here: the digest of the
//! token it was read with, and the serialized answer with a gap where the
//! token goes. The next read of that client with that token
//! ([`ReadLane::from_memory`]), a plain `GET /register/{id}` without
//! `Origin`, is answered from it, ahead of the router and of the request's
//! span, with the budget of the client checked as the full way checks it.
//!
//! What is held is dropped by the store's change events
//! ([`ChangeListener`]): this process's writes before they return, other
//! processes' as the change feed brings them. While the feed is broken
//! nothing is answered from memory. A full read that raced a change does
//! not leave its (perhaps old) answer behind. A read that something would
//! log (a successful read is audited at `debug`) takes the full way.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::HttpState;
use super::client_response::{ClientInformationReply, ClientInformationResponse, json_reply};
use super::extract::bearer;
use super::observe::RouteLabel;
use super::rate_limit::Limits;
use super::routes;
use crate::audit;
use crate::domain::{RegistrationAccessToken, SecretHash};
use crate::registration::ClientInformation;
use crate::registration::usage::UsageRecorder;
use crate::store::{Change, ChangeListener};

/// The path of a client's RFC 7592 routes.
pub const CLIENT_ROUTE: &str = "/register/{client_id}";

/// The label reads answered from memory are counted under: the route's.
pub const ROUTE: RouteLabel = RouteLabel(CLIENT_ROUTE);

/// The member whose value is spliced in per request.
const TOKEN_MEMBER: &[u8] = br#""registration_access_token":""#;

/// RFC 7592 read answers held in memory, by client id.
pub struct HeldReads {
    /// `None` when the operator gave them no memory.
    answers: Option<moka::sync::Cache<String, Arc<HeldRead>>>,
    /// Moves on every change; a full read keeps its answer only if it did
    /// not move while the read ran.
    epoch: AtomicU64,
    /// False while changes may go unseen.
    following: AtomicBool,
    /// Reads answered from memory: `dcr_reads_from_memory_total`, and the
    /// count for [`Self::served`].
    served: AtomicU64,
    served_metric: metrics::Counter,
}

/// One client's read answer, split where its token goes.
struct HeldRead {
    /// The digest of the token it answers.
    token: SecretHash,
    before_token: Bytes,
    after_token: Bytes,
}

impl HeldReads {
    /// Holds answers taking at most `max_bytes` between them (none when
    /// 0), each for at most `ttl`.
    #[must_use]
    pub fn new(max_bytes: u64, ttl: Duration) -> Self {
        let answers = (max_bytes > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|id: &String, answer: &Arc<HeldRead>| {
                    let size = id.len() + answer.before_token.len() + answer.after_token.len();
                    u32::try_from(size).unwrap_or(u32::MAX)
                })
                .time_to_live(ttl)
                .build()
        });
        Self {
            answers,
            epoch: AtomicU64::new(0),
            following: AtomicBool::new(true),
            served: AtomicU64::new(0),
            served_metric: metrics::counter!("dcr_reads_from_memory_total"),
        }
    }

    /// How many reads were answered from memory so far.
    #[must_use]
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Where a full read starts: [`Self::answer_and_keep`] keeps its answer
    /// only if nothing changed since.
    #[must_use]
    pub fn mark(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// The answer to a full read of `info` (its token verified), kept for
    /// the next reads of the client with the same token when nothing
    /// changed since `mark` and the token can be written into JSON as it
    /// is.
    pub fn answer_and_keep(
        &self,
        info: ClientInformation,
        state: &HttpState,
        mark: u64,
    ) -> Response {
        let token = &info.registration_access_token;
        let keep = self
            .answers
            .as_ref()
            .filter(|_| info.client_secret.is_none() && splicable(token));
        let Some(answers) = keep else {
            return ClientInformationReply::new(StatusCode::OK, info, state).into_response();
        };
        let held = match HeldRead::of(&info, state) {
            Ok(held) => Arc::new(held),
            Err(error) => return error.into_response(),
        };
        let response = held.with_token(token.expose());
        if self.following.load(Ordering::SeqCst) && self.epoch.load(Ordering::SeqCst) == mark {
            answers.insert(info.client.client_id.to_string(), held);
            if self.epoch.load(Ordering::SeqCst) != mark {
                // A change landed while the answer went in: it may be old.
                answers.invalidate(info.client.client_id.as_str());
            }
        }
        response
    }

    /// The answer held for a read of `client_id` with `token`, if one is
    /// held for that token: nothing is made.
    fn held(&self, client_id: &str, token: &RegistrationAccessToken) -> Option<Response> {
        if !self.following.load(Ordering::SeqCst) {
            return None;
        }
        let held = self.answers.as_ref()?.get(client_id)?;
        if !held.token.matches(token.expose()) {
            return None;
        }
        Some(held.with_token(token.expose()))
    }

    /// Counts a read answered from memory.
    fn count_served(&self) {
        self.served.fetch_add(1, Ordering::Relaxed);
        self.served_metric.increment(1);
    }
}

impl ChangeListener for HeldReads {
    fn changed(&self, change: &Change) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let Some(answers) = &self.answers else {
            return;
        };
        match change {
            Change::Client(id) => answers.invalidate(id.as_str()),
            Change::Everything => answers.invalidate_all(),
        }
    }

    fn following(&self, following: bool) {
        self.following.store(following, Ordering::SeqCst);
        self.changed(&Change::Everything);
    }
}

impl HeldRead {
    /// Serializes `info` with an empty token and splits it there. The token
    /// member comes before the metadata (field order), so its first
    /// occurrence is the top-level one.
    fn of(info: &ClientInformation, state: &HttpState) -> Result<Self, super::error::ApiError> {
        let body = ClientInformationResponse::of(&info.client, "", None, state);
        let json =
            Bytes::from(crate::json::exact(&body).map_err(super::client_response::unserializable)?);
        let gap = json
            .windows(TOKEN_MEMBER.len())
            .position(|window| window == TOKEN_MEMBER)
            .map(|at| at + TOKEN_MEMBER.len())
            .ok_or_else(|| super::client_response::unserializable("no token member"))?;
        Ok(Self {
            token: info.registration_access_token.hash(),
            before_token: json.slice(..gap),
            after_token: json.slice(gap..),
        })
    }

    /// The answer, with `token` spliced in.
    fn with_token(&self, token: &str) -> Response {
        let mut body =
            Vec::with_capacity(self.before_token.len() + token.len() + self.after_token.len());
        body.extend_from_slice(&self.before_token);
        body.extend_from_slice(token.as_bytes());
        body.extend_from_slice(&self.after_token);
        json_reply(StatusCode::OK, body)
    }
}

/// Whether `token` can be written into JSON as it is, with no escaping.
fn splicable(token: &RegistrationAccessToken) -> bool {
    token
        .expose()
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// The edge's lane for reads from memory: the held answers and the
/// budget they are served within.
pub struct ReadLane {
    reads: Arc<HeldReads>,
    limits: Arc<Limits>,
    usage: Arc<UsageRecorder>,
}

impl ReadLane {
    /// Reads from `reads`, within `limits`' budget of RFC 7592 requests,
    /// noting each read as a use of its client in `usage`.
    #[must_use]
    pub fn new(reads: Arc<HeldReads>, limits: Arc<Limits>, usage: Arc<UsageRecorder>) -> Self {
        Self {
            reads,
            limits,
            usage,
        }
    }

    /// The answer to `request` from memory, when it is a plain read (a
    /// `GET` of `/register/` and one segment with nothing to decode, with a
    /// well-formed bearer token, without `Origin`), its answer is held for
    /// its token, the client's budget admits it, and nothing about it is to
    /// be logged. `None` leaves it to the router.
    #[must_use]
    pub fn from_memory(&self, request: &Request) -> Option<Response> {
        if request.method() != Method::GET || request.headers().contains_key(header::ORIGIN) {
            return None;
        }
        let client_id = request.uri().path().strip_prefix("/register/")?;
        if client_id.is_empty() || client_id.contains(['/', '%']) {
            return None;
        }
        let Some(Ok(token)) = bearer(request.headers()) else {
            return None;
        };
        if audit::routine_recorded() {
            return None;
        }
        let mut response = self
            .reads
            .held(client_id, &RegistrationAccessToken::presented(token))?;
        // The budget last: a read it admits is answered here, so the full
        // way never counts the same read a second time.
        self.limits.management_budget(client_id).ok()?;
        self.reads.count_served();
        self.usage.used(client_id);
        routes::vary_as_cors_would(&mut response);
        Some(response)
    }
}
