//! The circuit breaker in front of one provider: it sheds calls only while
//! the provider fails most of them, and then only in proportion.
//!
//! It counts calls and failures over a sliding window. Below
//! `min_calls`, or while the failure rate stays under `failure_rate`, every
//! call goes through. Above it, a share `(calls - k * successes) / (calls + 1)`
//! of calls is refused, where `k = 1 / (1 - failure_rate)` (client-side
//! adaptive throttling, as in Google's SRE book). That share is zero at the
//! threshold, never more than the observed failure rate, and below one, so
//! trial calls keep going through and the breaker closes as soon as the
//! provider recovers. A breaker that refused everything for a fixed
//! cool-down would turn a provider failing one call in five into an outage;
//! this one never refuses more than the provider would fail anyway.
//!
//! The book draws a random number per call; this breaker sheds by error
//! diffusion instead: each call adds the current share to what is owed, and
//! a call is refused when that reaches one (and one is taken off). Over any
//! run of calls the refusals add up to the sum of the shares, to within one
//! call, and the same history always refuses the same calls. While nothing
//! is to be shed, nothing is owed.
//!
//! No crate of the field offers this shape (they open on a failure count or
//! rate and then refuse every call until a cool-down ends), hence this file.
//!
//! The share being shed is the breaker's state: each call asking to go out
//! sets `dcr_provider_breaker_shed_share{provider}` to it (0: every call goes
//! through).

use std::sync::Mutex;
use std::time::Duration;

use metrics::Gauge;
use tokio::time::Instant;

/// Buckets the window is divided into.
const BUCKETS: u32 = 10;

/// When the breaker sheds calls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerSettings {
    /// Failure rate (0 to 1) over the window above which calls are shed;
    /// 1 never sheds.
    pub failure_rate: f64,
    /// Calls the window must hold before the rate is believed.
    pub min_calls: u32,
    /// How far back calls are counted.
    pub window: Duration,
}

impl BreakerSettings {
    /// The defaults: shed above half the calls failing, over at least 20
    /// calls in the last 30 seconds.
    pub const DEFAULT: Self = Self {
        failure_rate: 0.5,
        min_calls: 20,
        window: Duration::from_secs(30),
    };
}

/// A breaker for one upstream.
#[derive(Debug)]
pub struct Breaker {
    settings: BreakerSettings,
    buckets: Mutex<Window>,
    /// `dcr_provider_breaker_shed_share` of this upstream.
    shed_metric: Gauge,
}

/// Calls and failures per bucket, the newest last, and the shedding owed.
#[derive(Debug)]
struct Window {
    /// When the newest bucket began.
    newest_start: Instant,
    /// (calls, failures), oldest first.
    counts: Vec<(u32, u32)>,
    /// The shares of the calls admitted or shed so far, less one per call
    /// shed: always in [0, 1) between calls.
    owed: f64,
}

impl Window {
    /// Calls and failures in the window.
    fn totals(&self) -> (u32, u32) {
        self.counts
            .iter()
            .fold((0, 0), |(c, f), (calls, failures)| {
                (c + calls, f + failures)
            })
    }
}

/// Why a call was not let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shed {
    /// Seconds after which a retry makes sense: the window's length.
    pub retry_after_secs: u64,
}

impl Breaker {
    /// A closed breaker in front of the provider named `provider` (its
    /// label in metrics).
    #[must_use]
    pub fn new(settings: BreakerSettings, provider: &'static str) -> Self {
        let shed_metric =
            metrics::gauge!("dcr_provider_breaker_shed_share", "provider" => provider);
        shed_metric.set(0.0);
        Self {
            settings,
            buckets: Mutex::new(Window {
                newest_start: Instant::now(),
                counts: vec![(0, 0); BUCKETS as usize],
                owed: 0.0,
            }),
            shed_metric,
        }
    }

    /// Whether a call may go out now: the call's share of shedding is
    /// added to what is owed, and it is refused once that reaches one.
    pub fn admit(&self) -> Result<(), Shed> {
        let mut window = self.window();
        let (calls, failures) = window.totals();
        let share = self.shed_share(calls, failures);
        self.shed_metric.set(share);
        if share == 0.0 {
            window.owed = 0.0;
            return Ok(());
        }
        window.owed += share;
        if window.owed < 1.0 {
            return Ok(());
        }
        window.owed -= 1.0;
        Err(Shed {
            retry_after_secs: self.settings.window.as_secs().max(1),
        })
    }

    /// Records how a call that went out ended.
    pub fn record(&self, failed: bool) {
        let mut window = self.window();
        if let Some(newest) = window.counts.last_mut() {
            newest.0 += 1;
            newest.1 += u32::from(failed);
        }
    }

    /// The share of calls to shed, given the window's counts.
    #[must_use]
    pub fn shed_share(&self, calls: u32, failures: u32) -> f64 {
        let BreakerSettings {
            failure_rate,
            min_calls,
            ..
        } = self.settings;
        if calls < min_calls || failure_rate >= 1.0 {
            return 0.0;
        }
        let k = 1.0 / (1.0 - failure_rate.max(0.0));
        let calls = f64::from(calls);
        let successes = calls - f64::from(failures);
        ((calls - k * successes) / (calls + 1.0)).max(0.0)
    }

    /// The window, with buckets that aged out dropped.
    fn window(&self) -> std::sync::MutexGuard<'_, Window> {
        let mut window = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let width = self.settings.window / BUCKETS;
        let elapsed = window.newest_start.elapsed();
        if !width.is_zero() && elapsed >= width {
            let steps = u32::try_from(elapsed.as_nanos() / width.as_nanos()).unwrap_or(BUCKETS);
            let drop = steps.min(BUCKETS) as usize;
            window.counts.drain(..drop);
            window.counts.resize(BUCKETS as usize, (0, 0));
            window.newest_start += width * steps;
        }
        window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerSettings::DEFAULT, "test")
    }

    /// Feeds `calls` outcomes of which every `1 / every`-th fails.
    fn feed(breaker: &Breaker, calls: u32, every: u32) {
        for i in 0..calls {
            breaker.record(every != 0 && i % every == 0);
        }
    }

    /// Asks to admit `calls` calls in a row; whether each was shed.
    fn shed_of(breaker: &Breaker, calls: usize) -> Vec<bool> {
        (0..calls).map(|_| breaker.admit().is_err()).collect()
    }

    /// How many of `outcomes` were shed.
    fn count(outcomes: &[bool]) -> usize {
        outcomes.iter().filter(|shed| **shed).count()
    }

    #[tokio::test(start_paused = true)]
    async fn a_provider_failing_one_call_in_five_is_never_shed() {
        let breaker = breaker();
        feed(&breaker, 1000, 5);
        assert_eq!(breaker.shed_share(1000, 200), 0.0);
        assert_eq!(count(&shed_of(&breaker, 1000)), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn shedding_never_exceeds_the_failure_rate_and_lets_trials_through() {
        let breaker = breaker();
        for failures in 0..=100 {
            let share = breaker.shed_share(100, failures);
            assert!(share <= f64::from(failures) / 100.0, "{failures}: {share}");
            assert!(share < 1.0, "trial calls always go through");
        }
        // All 100 calls failed: a share of 100/101 is shed, and a trial goes
        // through at least once in every 101 calls.
        feed(&breaker, 100, 1);
        let outcomes = shed_of(&breaker, 300);
        assert_eq!(count(&outcomes), 297, "300 × 100/101, rounded down");
        assert!(
            outcomes.windows(101).all(|run| run.contains(&false)),
            "a trial in every 101 calls"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_share_shed_is_exact_and_the_same_history_sheds_the_same_calls() {
        let history = |breaker: &Breaker| {
            // 30 failures then 10 successes: (40 - 2 × 10) / 41 = 20/41.
            for failed in (0..40).map(|i| i < 30) {
                breaker.record(failed);
            }
        };
        let (one, other) = (breaker(), breaker());
        history(&one);
        history(&other);
        let outcomes = shed_of(&one, 100);
        assert_eq!(count(&outcomes), 48, "100 × 20/41, rounded down");
        assert_eq!(outcomes, shed_of(&other, 100));
    }

    #[tokio::test(start_paused = true)]
    async fn too_few_calls_say_nothing() {
        let breaker = breaker();
        feed(&breaker, 19, 1);
        assert_eq!(count(&shed_of(&breaker, 100)), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_age_out_of_the_window_and_leave_nothing_owed() {
        let breaker = breaker();
        feed(&breaker, 50, 1);
        // 50/51 is owed after the first call, which goes through; the
        // second brings it past one, and so does the third.
        assert_eq!(shed_of(&breaker, 3), [false, true, true]);
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(breaker.admit().is_ok(), "the window forgot them");
        assert_eq!(breaker.window().totals(), (0, 0));
        // A new run of failures starts from nothing owed: its first call
        // goes through, as the first of the last run did.
        feed(&breaker, 50, 1);
        assert_eq!(shed_of(&breaker, 2), [false, true]);
    }

    #[test]
    fn a_rate_of_one_never_sheds() {
        let breaker = Breaker::new(
            BreakerSettings {
                failure_rate: 1.0,
                ..BreakerSettings::DEFAULT
            },
            "test",
        );
        assert_eq!(breaker.shed_share(1000, 1000), 0.0);
        feed(&breaker, 1000, 1);
        assert_eq!(count(&shed_of(&breaker, 100)), 0);
    }
}
