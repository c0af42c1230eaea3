//! Keeps a failing remote backend from taking the origin down with it.
//!
//! Every read, head and listing of a remote store goes through its [`Guard`]:
//! - a bounded number of requests in flight (a semaphore); a request that cannot get a slot
//!   within `queue_timeout` fails at once as [`Error::Overloaded`] instead of queueing behind a
//!   store that has stopped answering;
//! - a hard deadline over the whole operation, retries included ([`Error::Timeout`]);
//! - a circuit breaker: after `breaker_failures` consecutive failures the store is treated as
//!   down for `breaker_cooldown`, and requests fail fast ([`Error::Overloaded`], with the time
//!   left as a retry hint). Then one probe request goes through; its success closes the
//!   circuit, its failure opens it again. Nothing else has to happen for the origin to
//!   recover when storage comes back.
//!
//! A listing that runs out of time is not counted either way ([`Guard::run_listing`]): how
//! long a listing takes depends on how many objects the folder holds, and which folder is
//! listed is the client's choice (any asset path), so a client asking for huge folders must
//! not be able to open the circuit for everyone. A store that is really down still fails
//! its reads, and refused connections or error answers to a listing still count.
//!
//! Retries with exponential backoff and jitter happen below, inside `object_store`
//! (its `RetryConfig`, set up in [`crate::remote::open`]); they only repeat safe requests.

use std::error::Error as StdError;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::remote::RemoteTiming;
use crate::Error;

/// In-flight limit, deadline and circuit breaker of one remote store.
pub(crate) struct Guard {
    timing: RemoteTiming,
    permits: tokio::sync::Semaphore,
    breaker: Mutex<Breaker>,
    /// Times the circuit opened (closed → open, and a failed probe reopening it).
    trips: AtomicU64,
    /// Requests that had to wait for a slot (all were in use when they came).
    queue_waits: AtomicU64,
    /// Requests refused because no slot freed up within `queue_timeout`.
    queue_rejected: AtomicU64,
}

/// The circuit breaker's state, for metrics and readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests go through.
    Closed,
    /// Requests fail fast until the cool-down ends.
    Open,
    /// The cool-down is over: the next request (or the one in flight) probes the store.
    HalfOpen,
}

impl BreakerState {
    /// The state's name, as metrics and `/readyz` show it.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// A remote store's guard as it stands: what `/metrics` and `/readyz` report.
#[derive(Debug, Clone)]
pub struct GuardStatus {
    /// The breaker.
    pub breaker: BreakerState,
    /// Times the circuit opened so far.
    pub trips: u64,
    /// Requests in flight now.
    pub in_flight: u64,
    /// Requests that waited for a slot so far.
    pub queue_waits: u64,
    /// Requests refused for want of a slot so far.
    pub queue_rejected: u64,
}

#[derive(Default)]
struct Breaker {
    /// Consecutive failures.
    failures: u32,
    /// While set and in the future, requests fail fast.
    open_until: Option<Instant>,
    /// A probe request is in flight (half-open): others still fail fast.
    probing: bool,
}

/// How a request was let through the breaker.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Admission {
    Normal,
    Probe,
}

/// Resets the probe flag if a probe request is dropped before it finishes (its caller went
/// away), so the breaker does not stay half-open forever.
struct ProbeReset<'a> {
    guard: &'a Guard,
    armed: bool,
}

impl Drop for ProbeReset<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.guard.lock().probing = false;
        }
    }
}

impl Guard {
    pub(crate) fn new(timing: RemoteTiming) -> Guard {
        Guard {
            timing,
            permits: tokio::sync::Semaphore::new(timing.max_in_flight.max(1)),
            breaker: Mutex::default(),
            trips: AtomicU64::new(0),
            queue_waits: AtomicU64::new(0),
            queue_rejected: AtomicU64::new(0),
        }
    }

    /// The guard as it stands now.
    pub(crate) fn status(&self) -> GuardStatus {
        let breaker = {
            let b = self.lock();
            match b.open_until {
                None => BreakerState::Closed,
                Some(until) if Instant::now() < until => BreakerState::Open,
                Some(_) => BreakerState::HalfOpen,
            }
        };
        let slots = self.timing.max_in_flight.max(1);
        GuardStatus {
            breaker,
            trips: self.trips.load(Ordering::Relaxed),
            in_flight: slots.saturating_sub(self.permits.available_permits()) as u64,
            queue_waits: self.queue_waits.load(Ordering::Relaxed),
            queue_rejected: self.queue_rejected.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Breaker> {
        // The breaker holds plain counters; a panic elsewhere cannot leave them inconsistent.
        self.breaker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `op` (one `object_store` call on `what`) under the guard.
    pub(crate) async fn run<T>(&self, what: &str, op: impl Future<Output = Result<T, object_store::Error>>) -> Result<T, Error> {
        self.run_as(what, op, false).await
    }

    /// Runs a listing under the guard: like [`Guard::run`], except that a timeout leaves the
    /// breaker as it was (see the module comment).
    pub(crate) async fn run_listing<T>(&self, what: &str, op: impl Future<Output = Result<T, object_store::Error>>) -> Result<T, Error> {
        self.run_as(what, op, true).await
    }

    async fn run_as<T>(&self, what: &str, op: impl Future<Output = Result<T, object_store::Error>>, listing: bool) -> Result<T, Error> {
        let admission = self.admit(what)?;
        let mut reset = ProbeReset { guard: self, armed: admission == Admission::Probe };
        let permit = match self.permits.try_acquire() {
            Ok(p) => Ok(p),
            Err(_) => {
                self.queue_waits.fetch_add(1, Ordering::Relaxed);
                tokio::time::timeout(self.timing.queue_timeout, self.permits.acquire()).await.map_err(|_| ()).and_then(|r| r.map_err(|_| ()))
            }
        };
        let permit = match permit {
            Ok(p) => p,
            // The semaphore is never closed; treat it like a full queue all the same.
            Err(()) => {
                self.queue_rejected.fetch_add(1, Ordering::Relaxed);
                return Err(Error::Overloaded { detail: format!("{what}: {} storage requests already in flight", self.timing.max_in_flight), retry_after_secs: 1 });
            }
        };
        let r = match tokio::time::timeout(self.timing.deadline(), op).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(classify(e)),
            Err(_) => Err(Error::Timeout(format!("{what}: no answer within {:?}", self.timing.deadline()))),
        };
        drop(permit);
        reset.armed = false;
        if listing && matches!(r, Err(Error::Timeout(_))) {
            // Neither a success nor a failure: only release a probe so another can go.
            self.lock().probing = false;
            return r;
        }
        // A missing or changed object is an answer from a healthy store, not a fault.
        self.record(matches!(r, Ok(_) | Err(Error::NotFound(_) | Error::Changed(_))));
        r
    }

    fn admit(&self, what: &str) -> Result<Admission, Error> {
        let mut b = self.lock();
        match b.open_until {
            None => Ok(Admission::Normal),
            Some(until) => {
                let now = Instant::now();
                if now < until || b.probing {
                    let left = until.saturating_duration_since(now);
                    Err(Error::Overloaded { detail: format!("{what}: storage is failing, circuit open"), retry_after_secs: left.as_secs().max(1) })
                } else {
                    b.probing = true;
                    Ok(Admission::Probe)
                }
            }
        }
    }

    fn record(&self, ok: bool) {
        let mut b = self.lock();
        b.probing = false;
        if ok {
            b.failures = 0;
            b.open_until = None;
            return;
        }
        b.failures = b.failures.saturating_add(1);
        // A failed probe reopens at once; otherwise open after the threshold.
        if b.open_until.is_some() || (self.timing.breaker_failures > 0 && b.failures >= self.timing.breaker_failures) {
            // A trip is a change to open: from closed, or a failed probe after the cool-down
            // (not a straggler failing while the circuit is open already).
            if !b.open_until.is_some_and(|u| Instant::now() < u) {
                self.trips.fetch_add(1, Ordering::Relaxed);
            }
            b.open_until = Some(Instant::now() + self.timing.breaker_cooldown);
        }
    }
}

/// Sorts an `object_store` failure into what the HTTP layer needs to tell apart: missing
/// object, timeout, unreachable store, or an error answer from the store.
pub(crate) fn classify(e: object_store::Error) -> Error {
    use object_store::client::{HttpError, HttpErrorKind};
    match e {
        object_store::Error::NotFound { path, .. } => return Error::NotFound(path),
        object_store::Error::Precondition { path, .. } => return Error::Changed(path),
        _ => {}
    }
    let msg = e.to_string();
    let mut src: Option<&(dyn StdError + 'static)> = Some(&e);
    while let Some(s) = src {
        if let Some(h) = s.downcast_ref::<HttpError>() {
            return match h.kind() {
                HttpErrorKind::Timeout => Error::Timeout(msg),
                HttpErrorKind::Connect | HttpErrorKind::Request | HttpErrorKind::Interrupted => Error::Unavailable(msg),
                HttpErrorKind::Decode | HttpErrorKind::Unknown => Error::Upstream(msg),
                #[allow(unreachable_patterns)]
                _ => Error::Unavailable(msg),
            };
        }
        src = s.source();
    }
    // No transport error: the store answered, with an error status (after retries) or an
    // answer we could not use.
    Error::Upstream(msg)
}

impl RemoteTiming {
    /// Upper bound of one guarded operation: every attempt with its connect and request
    /// timeouts, plus the longest backoffs between them.
    pub fn deadline(&self) -> Duration {
        let attempts = self.max_retries as u32 + 1;
        (self.connect_timeout + self.request_timeout) * attempts + self.max_backoff * self.max_retries as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> RemoteTiming {
        RemoteTiming { breaker_failures: 2, breaker_cooldown: Duration::from_millis(50), ..RemoteTiming::default() }
    }

    fn fail() -> object_store::Error {
        object_store::Error::Generic { store: "test", source: "boom".into() }
    }

    #[tokio::test]
    async fn breaker_opens_fails_fast_probes_and_closes() {
        let g = Guard::new(timing());
        for _ in 0..2 {
            assert!(matches!(g.run("x", async { Err::<(), _>(fail()) }).await, Err(Error::Upstream(_))));
        }
        assert_eq!((g.status().breaker, g.status().trips), (BreakerState::Open, 1));
        // Open: the operation is not even started.
        let r = g.run("x", async { panic!("must not run while the circuit is open") as Result<(), object_store::Error> }).await;
        assert!(matches!(r, Err(Error::Overloaded { .. })), "{r:?}");
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(g.status().breaker, BreakerState::HalfOpen);
        // The probe fails: open again at once.
        assert!(g.run("x", async { Err::<(), _>(fail()) }).await.is_err());
        assert!(matches!(g.run("x", async { Ok::<_, object_store::Error>(()) }).await, Err(Error::Overloaded { .. })));
        tokio::time::sleep(Duration::from_millis(60)).await;
        // The probe succeeds: closed.
        g.run("x", async { Ok::<_, object_store::Error>(()) }).await.unwrap();
        g.run("x", async { Ok::<_, object_store::Error>(()) }).await.unwrap();
        assert_eq!((g.status().breaker, g.status().trips, g.status().in_flight), (BreakerState::Closed, 2, 0));
        // Not found is an answer, not a failure.
        for _ in 0..3 {
            let nf = object_store::Error::NotFound { path: "p".into(), source: "no".into() };
            assert!(matches!(g.run("x", async { Err::<(), _>(nf) }).await, Err(Error::NotFound(_))));
        }
        g.run("x", async { Ok::<_, object_store::Error>(()) }).await.unwrap();
    }

    #[tokio::test]
    async fn slow_listings_do_not_open_the_circuit() {
        let t = RemoteTiming {
            connect_timeout: Duration::from_millis(5),
            request_timeout: Duration::from_millis(5),
            max_retries: 0,
            breaker_failures: 2,
            breaker_cooldown: Duration::from_secs(600),
            ..RemoteTiming::default()
        };
        let g = Guard::new(t);
        let slow = || async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok::<_, object_store::Error>(())
        };
        for _ in 0..5 {
            assert!(matches!(g.run_listing("big/folder", slow()).await, Err(Error::Timeout(_))));
        }
        // Still closed: the next read runs.
        g.run("x", async { Ok::<_, object_store::Error>(()) }).await.unwrap();
        // A listing the store answers with an error still counts, and so do slow reads.
        assert!(g.run_listing("x", async { Err::<(), _>(fail()) }).await.is_err());
        assert!(matches!(g.run("x", slow()).await, Err(Error::Timeout(_))));
        assert!(matches!(g.run("x", async { Ok::<_, object_store::Error>(()) }).await, Err(Error::Overloaded { .. })));
    }

    #[tokio::test]
    async fn deadline_and_queue_bound() {
        let t = RemoteTiming {
            connect_timeout: Duration::from_millis(10),
            request_timeout: Duration::from_millis(10),
            max_retries: 0,
            max_in_flight: 1,
            queue_timeout: Duration::from_millis(10),
            ..RemoteTiming::default()
        };
        let g = std::sync::Arc::new(Guard::new(t));
        let r = g.run("x", async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok::<_, object_store::Error>(())
        });
        assert!(matches!(r.await, Err(Error::Timeout(_))));
        // One slot, held by a slow request: the next one is refused instead of queueing.
        let g = std::sync::Arc::new(Guard::new(RemoteTiming { request_timeout: Duration::from_secs(600), ..t }));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let g2 = g.clone();
        let slow = tokio::spawn(async move {
            g2.run("slow", async {
                let _ = rx.await;
                Ok::<_, object_store::Error>(())
            })
            .await
        });
        while g.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(g.run("x", async { Ok::<_, object_store::Error>(()) }).await, Err(Error::Overloaded { .. })));
        tx.send(()).unwrap();
        slow.await.unwrap().unwrap();
    }
}
