//! What every provider fake keeps besides its clients: a [`Ledger`] of the
//! requests it received and the ones that broke its vendor's document, and
//! the faults it is told to meet (queued for the next requests, or drawn at
//! random). Each fake answers faults in its vendor's shape.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::{Rng, SeedableRng};

/// What a fake does to one request instead of (or after) serving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Served normally: holds a place in a queue of faults.
    Pass,
    /// 500 without doing anything.
    ServerError,
    /// Sleeps far past any client timeout, doing nothing.
    Hang,
    /// Does the work, then answers 200 with a body that is not JSON.
    Garbage,
    /// Does the work, then drops the connection without an answer.
    CommitAndDrop,
    /// 429 with `Retry-After: 7`, doing nothing.
    RateLimited,
    /// Served normally, a second late.
    Slow,
}

/// The faults still to come.
#[derive(Default)]
struct FaultPlan {
    queued: VecDeque<Fault>,
    random: Option<RandomFaults>,
}

/// Faults drawn at random: a share `rate` of requests (of writes only, when
/// `writes_only`) meets one of `faults`, equally likely.
struct RandomFaults {
    rate: f64,
    faults: Vec<Fault>,
    writes_only: bool,
    rng: rand::rngs::StdRng,
}

/// Every kind of fault.
const ALL_FAULTS: [Fault; 5] = [
    Fault::ServerError,
    Fault::Hang,
    Fault::Garbage,
    Fault::CommitAndDrop,
    Fault::RateLimited,
];

impl FaultPlan {
    /// The next requests meet these faults, in order.
    fn queue(&mut self, faults: &[Fault]) {
        self.queued.extend(faults);
    }

    /// From now on faults are drawn as `random` says.
    fn random(&mut self, random: Option<RandomFaults>) {
        self.random = random.filter(|r| r.rate > 0.0);
    }

    /// The fault this request meets, if any.
    fn next(&mut self, write: bool) -> Option<Fault> {
        if let Some(fault) = self.queued.pop_front() {
            return Some(fault);
        }
        let random = self.random.as_mut()?;
        if (write || !random.writes_only) && random.rng.random_bool(random.rate) {
            Some(random.faults[random.rng.random_range(0..random.faults.len())])
        } else {
            None
        }
    }
}

/// In a fake's handler: the value of an `Ok`, or return the `Err` answer.
macro_rules! or_answer {
    ($result:expr) => {
        match $result {
            Ok(value) => value,
            Err(response) => return response,
        }
    };
}
pub(crate) use or_answer;

/// A fake's record of requests and violations, and its fault plan.
#[derive(Clone, Default)]
pub struct Ledger(Arc<Mutex<LedgerState>>);

#[derive(Default)]
struct LedgerState {
    requests: usize,
    violations: Vec<String>,
    faults: FaultPlan,
}

impl Ledger {
    /// Counts a request made with `method` and draws the fault it meets.
    pub fn arrive(&self, method: &str) -> Option<Fault> {
        let mut state = self.0.lock().unwrap();
        state.requests += 1;
        state.faults.next(method != "GET")
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.0.lock().unwrap().requests
    }

    /// Waits until `count` requests were received in all (polling, for up
    /// to 5 s); fails the test, naming `awaited`, if they were not.
    pub async fn await_requests(&self, count: usize, awaited: &str) {
        let arrived = super::eventually(|| async { self.requests() >= count }).await;
        assert!(
            arrived,
            "{awaited} never reached the fake: {} requests, not {count}",
            self.requests()
        );
    }

    /// Records what broke the vendor's document.
    pub fn violations_found(&self, found: impl IntoIterator<Item = String>) {
        self.0.lock().unwrap().violations.extend(found);
    }

    /// Records one thing that broke the vendor's document.
    pub fn violation(&self, text: String) {
        self.violations_found([text]);
    }

    /// Requests that broke the vendor's document so far.
    pub fn violations(&self) -> Vec<String> {
        self.0.lock().unwrap().violations.clone()
    }

    /// Ends a test: no request broke `vendor`'s document.
    pub fn assert_clean(&self, vendor: &str) {
        let violations = self.violations();
        assert!(
            violations.is_empty(),
            "requests broke {vendor}'s API: {violations:#?}"
        );
    }

    /// The next requests meet these faults, in order.
    pub fn queue_faults(&self, faults: &[Fault]) {
        self.0.lock().unwrap().faults.queue(faults);
    }

    /// From now on a share `rate` of requests meets a random fault of any kind.
    pub fn random_faults(&self, rate: f64, seed: u64) {
        self.draw_faults(rate, &ALL_FAULTS, false, seed);
    }

    /// From now on a share `rate` of writes (any method but GET) meets one
    /// of `faults`, equally likely.
    pub fn random_write_faults(&self, rate: f64, faults: &[Fault], seed: u64) {
        self.draw_faults(rate, faults, true, seed);
    }

    fn draw_faults(&self, rate: f64, faults: &[Fault], writes_only: bool, seed: u64) {
        self.0.lock().unwrap().faults.random(Some(RandomFaults {
            rate,
            faults: faults.to_vec(),
            writes_only,
            rng: rand::rngs::StdRng::seed_from_u64(seed),
        }));
    }
}

/// Applies a fault before the work. `Err` is the answer instead of the work
/// (`refusal` builds the vendor's 500 or 429); `Ok` carries what to do after.
pub async fn before(
    fault: Option<Fault>,
    refusal: impl Fn(StatusCode) -> Response,
) -> Result<Option<Fault>, Response> {
    match fault {
        Some(Fault::ServerError) => Err(refusal(StatusCode::INTERNAL_SERVER_ERROR)),
        Some(Fault::RateLimited) => {
            let mut response = refusal(StatusCode::TOO_MANY_REQUESTS);
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("7"),
            );
            Err(response)
        }
        Some(Fault::Slow) => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(None)
        }
        Some(Fault::Hang) => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Err(refusal(StatusCode::GATEWAY_TIMEOUT))
        }
        other => Ok(other),
    }
}

/// Applies a fault after the work was committed.
pub fn after(fault: Option<Fault>, response: Response) -> Response {
    match fault {
        Some(Fault::Garbage) => {
            (StatusCode::OK, "<html>upstream proxy error</html>").into_response()
        }
        Some(Fault::CommitAndDrop) => {
            // A panicking handler makes hyper close the connection unanswered.
            std::panic::panic_any("injected: committed, then dropped the connection")
        }
        _ => response,
    }
}
