//! The accept loop and the life of each connection: HTTP/1.1 and HTTP/2
//! (h2c, or h2 over TLS) on a listener the caller bound, with the guards a
//! server facing the Internet needs against sockets that are held open and
//! send little or nothing, without turning away clients that only come in
//! numbers (a pooled client's burst, many users behind one NAT).
//!
//! A connection is *working* while it has a request whose head and body
//! have both arrived, and *waiting* otherwise: before its first head (TLS
//! and HTTP/2 handshakes included), while a body trickles in, and idle
//! between requests. Only waiting connections can be held open cheaply by a
//! client, so only they are capped:
//!
//! - At most `max_connections_per_ip` connections of one address (one /64
//!   for IPv6) wait at once; trusted proxies are exempt. A connection over
//!   it makes the address's longest-idle keep-alive connection (one that
//!   has no request to lose) close, and waits up to [`QUEUE_WAIT`] for a
//!   place: one frees up as soon as a waiting connection's request is in,
//!   so a burst of hundreds passes. If none does, its request is answered
//!   `503` with `Retry-After` and `Connection: close`. An HTTP/1.1
//!   connection whose answer would leave its address over the cap (or at
//!   it, with others queued) is told `Connection: close` with that answer.
//! - At most `max_connections` are open at once. At the cap, the connection
//!   that has been waiting longest is closed to make room for the new one,
//!   as nginx drains idle keep-alive connections; a working connection is
//!   never closed for room. When every connection is working, new ones
//!   wait in the kernel's backlog; when descriptors run out anyway
//!   (`EMFILE`), the loop waits for one to free up.
//! - A connection's first request head must arrive within
//!   `header_read_timeout` of the accept. On HTTP/1.1 every later head must
//!   arrive within it of the end of the previous request, so it is also how
//!   long an idle HTTP/1.1 connection stays open.
//! - A request's whole body must arrive within `request_body_timeout` of
//!   its head, on HTTP/1.1 and on each HTTP/2 stream alike; past it the
//!   request is answered `408` and the connection closed
//!   ([`crate::http::request_body`]).
//! - A connection with no request in flight for `idle_timeout` is closed
//!   (HTTP/2 with a GOAWAY).
//! - HTTP/2 peers are pinged every `http2_keep_alive_interval` and dropped
//!   when a ping goes unanswered as long.
//!
//! Every socket has `TCP_NODELAY`. All these timeouts are one timer per
//! connection, not one per request (hyper's own head timeout would arm and
//! clear a timer on every request): requests do not wake the connection's
//! task to report their progress, they update counters that its timer reads
//! when it fires. A body that has to wait arms a timer of its own.
//!
//! On shutdown the listener is closed, every connection is asked to finish
//! (HTTP/1.1 closes after the response in progress, HTTP/2 sends GOAWAY),
//! and whatever still runs after the deadline is dropped.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum_server::accept::Accept;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use hyper::body::{Body as _, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::http::edge::Edge;
use crate::http::request_body::{BodyProgress, GuardedBody};

/// How long a connection closed for idleness may take to say goodbye (send
/// GOAWAY, finish a write) before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How long the loop waits when accepting fails (descriptors exhausted).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How long a connection over its address's cap waits for a place.
pub const QUEUE_WAIT: Duration = Duration::from_secs(2);

/// How many connections of one address may queue for a place, in multiples
/// of the cap; more are refused at once.
const QUEUE_FACTOR: usize = 4;

/// How long a refused connection has to send the request its refusal
/// answers.
const REFUSAL_TIME: Duration = Duration::from_secs(2);

/// How often the loop, at the cap, looks again for a connection to close
/// when the one it chose started working meanwhile.
const ROOM_RETRY: Duration = Duration::from_millis(100);

/// The limits of `[server]` on connections.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Longest wait for a request head (see the module documentation).
    pub header_read_timeout: Duration,
    /// Longest a connection may stay open with no request in flight.
    pub idle_timeout: Duration,
    /// Interval of HTTP/2 pings, and how long an answer may take.
    pub http2_keep_alive_interval: Duration,
    /// Longest wait for a request's whole body, from its head.
    pub request_body_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most waiting connections of one address (one /64 for IPv6).
    pub max_connections_per_ip: usize,
    /// Addresses exempt from the per-address cap (trusted proxies).
    pub exempt: Vec<IpNet>,
}

/// Serves `app` on `listener` until `shutdown` completes; then stops
/// accepting, lets connections finish for at most `deadline`, and returns.
/// With `tls`, every connection first completes a TLS handshake with the
/// certificate `tls` holds at that moment (so reloads take effect).
pub async fn serve(
    listener: TcpListener,
    app: Edge,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: ConnectionLimits,
    deadline: Duration,
    tls: Option<RustlsConfig>,
) -> std::io::Result<()> {
    let tls =
        tls.map(|config| RustlsAcceptor::new(config).handshake_timeout(limits.header_read_timeout));
    let http = Arc::new(http_builder(&limits));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_address = Arc::new(PerAddress::new(&limits));
    let open = Arc::new(OpenConnections::default());
    let limits = Arc::new(limits);
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut accept_failing = false;
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    accept_failing = false;
                    accepted
                }
                Err(error) => {
                    if !std::mem::replace(&mut accept_failing, true) {
                        tracing::warn!(%error, "cannot accept connections; retrying");
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = room(&slots, &open) => match slot {
                Some(slot) => slot,
                None => break,
            },
        };
        // Answers go out as soon as they are written, not held back by
        // Nagle's algorithm waiting for the peer's delayed ACK.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
        }
        let activity = Arc::new(Activity::new(Instant::now(), per_address.member(peer.ip())));
        // Places are taken in the order connections arrive; only one that
        // finds none waits, in its own task.
        activity.try_admit();
        let connection = Connection {
            peer,
            app: app.clone(),
            http: Arc::clone(&http),
            limits: Arc::clone(&limits),
            stopping: stopping.clone(),
            held: (slot, open.add(&activity)),
            activity,
        };
        match &tls {
            None => connections.spawn(connection.start(stream)),
            Some(tls) => connections.spawn(connection.start_tls(tls.clone(), stream)),
        };
    }
    drop(listener);
    let _ = stop.send(true);
    let finished = tokio::time::timeout(deadline, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            open = connections.len(),
            "shutdown deadline passed; dropping the connections still open"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// A place for one more connection: at once below the cap; at the cap,
/// once the connection that has waited longest is closed for it, or (every
/// connection working) once one ends. `None` when the places are gone.
async fn room(slots: &Arc<Semaphore>, open: &OpenConnections) -> Option<OwnedSemaphorePermit> {
    loop {
        if let Ok(slot) = Arc::clone(slots).try_acquire_owned() {
            return Some(slot);
        }
        let waited = tokio::time::timeout(ROOM_RETRY, async {
            if open.close_longest_waiting() {
                metrics::counter!("dcr_connections_closed_total", "reason" => "room").increment(1);
            }
            Arc::clone(slots).acquire_owned().await
        })
        .await;
        match waited {
            Ok(slot) => return slot.ok(),
            Err(_) => continue,
        }
    }
}

fn http_builder(limits: &ConnectionLimits) -> auto::Builder<TokioExecutor> {
    // HTTP/1.1 heads are timed by the connection's own timer (see the
    // module documentation), so hyper's HTTP/1 side has no timer.
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.http2_keep_alive_interval)
        .keep_alive_timeout(limits.http2_keep_alive_interval);
    builder
}

/// The open connections, so that at the cap the one that has waited
/// longest can be found and closed. Touched on accept and close only.
#[derive(Default)]
struct OpenConnections {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Activity>>>,
}

impl OpenConnections {
    /// Registers a connection until the returned guard drops.
    fn add(self: &Arc<Self>, activity: &Arc<Activity>) -> Registered {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, Arc::clone(activity));
        Registered(Arc::clone(self), id)
    }

    /// Asks the connection that has waited longest (see the module
    /// documentation) to close; `false` when every connection is working.
    fn close_longest_waiting(&self) -> bool {
        self.close_first(Activity::waiting_to_close)
    }

    /// Asks the connection of address `key` that has been idle longest
    /// between requests to close, so that one queued there gets its place;
    /// `false` when it has none.
    fn close_idle_of(&self, key: IpAddr) -> bool {
        self.close_first(|activity| {
            let of_key = activity.member.as_ref().is_some_and(|m| m.key == key);
            of_key.then(|| activity.idle_to_close()).flatten()
        })
    }

    /// Asks the connection that `since` dates earliest to close (those it
    /// dates not at all are kept); whether there was one.
    fn close_first(&self, since: impl Fn(&Activity) -> Option<Instant>) -> bool {
        let open = self.lock();
        let first = open
            .values()
            .filter_map(|activity| Some((since(activity)?, activity)))
            .min_by_key(|(since, _)| *since);
        first.is_some_and(|(_, activity)| {
            activity.close_for_room();
            true
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Activity>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A connection's entry in [`OpenConnections`], removed when it drops.
struct Registered(Arc<OpenConnections>, u64);

impl Registered {
    /// The connections it is one of.
    fn open(&self) -> &OpenConnections {
        &self.0
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.0.lock().remove(&self.1);
    }
}

/// The waiting connections of each address, against the cap.
struct PerAddress {
    limit: usize,
    exempt: Vec<IpNet>,
    gates: Mutex<HashMap<IpAddr, (Arc<AddressGate>, usize)>>,
}

impl PerAddress {
    fn new(limits: &ConnectionLimits) -> Self {
        Self {
            limit: limits.max_connections_per_ip.max(1),
            exempt: limits.exempt.clone(),
            gates: Mutex::new(HashMap::new()),
        }
    }

    /// The gate a connection from `ip` passes, held until the returned
    /// membership drops; `None` for an exempt address.
    fn member(self: &Arc<Self>, ip: IpAddr) -> Option<Member> {
        if self.exempt.iter().any(|net| net.contains(&ip)) {
            return None;
        }
        let key = address_key(ip);
        let mut gates = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
        let (gate, members) = gates.entry(key).or_insert_with(|| {
            let gate = AddressGate {
                limit: self.limit,
                waiting: AtomicUsize::new(0),
                queued: AtomicUsize::new(0),
                freed: Notify::new(),
            };
            (Arc::new(gate), 0)
        });
        *members += 1;
        Some(Member {
            gate: Arc::clone(gate),
            table: Arc::clone(self),
            key,
        })
    }

    fn leave(&self, key: IpAddr) {
        let mut gates = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, members)) = gates.get_mut(&key) {
            *members -= 1;
            if *members == 0 {
                gates.remove(&key);
            }
        }
    }
}

/// One address's count of waiting connections, and the connections queued
/// for a place among them.
struct AddressGate {
    limit: usize,
    waiting: AtomicUsize,
    queued: AtomicUsize,
    freed: Notify,
}

impl AddressGate {
    /// Takes a place for a waiting connection if one is free.
    fn try_enter(&self) -> bool {
        self.waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .is_ok()
    }

    /// Takes a place, queuing up to [`QUEUE_WAIT`] for one; `false` when
    /// none freed up in time, or too many are queued already.
    async fn enter(&self) -> bool {
        if self.try_enter() {
            return true;
        }
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.limit * QUEUE_FACTOR {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        let entered = tokio::time::timeout(QUEUE_WAIT, async {
            loop {
                let freed = self.freed.notified();
                tokio::pin!(freed);
                freed.as_mut().enable();
                if self.try_enter() {
                    return;
                }
                freed.await;
            }
        })
        .await
        .is_ok();
        self.queued.fetch_sub(1, Ordering::AcqRel);
        entered
    }

    /// Gives a place back.
    fn leave(&self) {
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        if self.queued.load(Ordering::Acquire) > 0 {
            self.freed.notify_one();
        }
    }

    /// Takes a place back for a connection that stopped working, even over
    /// the cap; whether it should rather close: the address is now over the
    /// cap, or at it with connections queued for a place.
    fn rejoin(&self) -> bool {
        let waiting = self.waiting.fetch_add(1, Ordering::AcqRel) + 1;
        waiting > self.limit || (waiting == self.limit && self.queued.load(Ordering::Acquire) > 0)
    }
}

/// A connection's membership of its address's gate.
struct Member {
    gate: Arc<AddressGate>,
    table: Arc<PerAddress>,
    key: IpAddr,
}

impl Drop for Member {
    fn drop(&mut self) {
        self.table.leave(self.key);
    }
}

/// The address an IP counts under: itself, or its /64 for IPv6 (one
/// subscriber's usual share), an IPv4-mapped address as IPv4.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
    }
}

/// Whether requests are being handled on a connection, and since when it
/// has been idle or waiting. The idle deadline is kept in atomics that
/// requests update without waking the connection's task; its one timer
/// reads them when it fires.
struct Activity {
    accepted: Instant,
    in_flight: AtomicUsize,
    /// When the last request ended, in nanoseconds after `accepted`.
    idle_since: AtomicU64,
    served: AtomicBool,
    /// Requests come over HTTP/2, whose idle connections are not waiting
    /// for a head.
    http2: AtomicBool,
    /// Working or waiting, and the place at the address's gate that a
    /// waiting connection holds: changed together, under one lock (never
    /// contended on HTTP/1.1, one request at a time).
    place: Mutex<Place>,
    /// The connection's address's gate (`None`: exempt).
    member: Option<Member>,
    /// Wakes the connection to close for room.
    close: Notify,
}

/// Where a connection stands against its address's gate.
struct Place {
    /// Requests in flight whose head and body have both arrived.
    working: usize,
    /// Whether it holds one of the address's places (admitted, waiting).
    holding: bool,
    /// Whether it was let in (took a place, or is exempt).
    admitted: bool,
    /// Whether it ended (it takes no place any more).
    ended: bool,
    /// When it last started waiting.
    waiting_since: Instant,
    /// Whether the accept loop asked it to close for room.
    closing: bool,
}

impl Activity {
    fn new(accepted: Instant, member: Option<Member>) -> Self {
        Self {
            accepted,
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            served: AtomicBool::new(false),
            http2: AtomicBool::new(false),
            place: Mutex::new(Place {
                working: 0,
                holding: false,
                admitted: false,
                ended: false,
                waiting_since: accepted,
                closing: false,
            }),
            member,
            close: Notify::new(),
        }
    }

    fn place(&self) -> std::sync::MutexGuard<'_, Place> {
        self.place.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a place at the connection's address's gate if one is free
    /// (or the address is exempt); whether it has one now.
    fn try_admit(&self) -> bool {
        let mut place = self.place();
        if place.admitted {
            return true;
        }
        place.admitted = match &self.member {
            Some(member) => member.gate.try_enter(),
            None => true,
        };
        place.holding = place.admitted && self.member.is_some();
        place.admitted
    }

    /// Takes the connection's place at its address's gate, queuing for one
    /// if it has none yet; `false` when it is to be refused.
    async fn admit(&self) -> bool {
        if self.try_admit() {
            return true;
        }
        let Some(member) = &self.member else {
            return true;
        };
        if !member.gate.enter().await {
            return false;
        }
        let mut place = self.place();
        place.admitted = true;
        place.holding = true;
        true
    }

    /// When the connection is to be closed if nothing changes; `None` while
    /// a request is in flight.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let allowed = if !self.served() {
            limits.header_read_timeout
        } else if self.http2.load(Ordering::Relaxed) {
            limits.idle_timeout
        } else {
            // An idle HTTP/1.1 connection is waiting for its next head.
            limits.idle_timeout.min(limits.header_read_timeout)
        };
        let idle_since = Duration::from_nanos(self.idle_since.load(Ordering::Acquire));
        Some(self.accepted + idle_since + allowed)
    }

    fn served(&self) -> bool {
        self.served.load(Ordering::Acquire)
    }

    fn is_waiting(&self) -> bool {
        self.place().working == 0
    }

    /// Since when it has been waiting, when it is and was not asked to
    /// close yet.
    fn waiting_to_close(&self) -> Option<Instant> {
        let place = self.place();
        (place.working == 0 && !place.closing).then_some(place.waiting_since)
    }

    /// Since when it has been idle between requests, when it is (served,
    /// nothing in flight) and was not asked to close yet.
    fn idle_to_close(&self) -> Option<Instant> {
        if !self.served() || self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        self.waiting_to_close()
    }

    fn close_for_room(&self) {
        self.place().closing = true;
        self.close.notify_one();
    }

    /// A request's head and body are in: the connection works.
    fn start_working(&self) {
        let mut place = self.place();
        place.working += 1;
        place.closing = false;
        if std::mem::take(&mut place.holding) {
            if let Some(member) = &self.member {
                member.gate.leave();
            }
        }
    }

    /// A working request ended; whether the connection, waiting again,
    /// leaves its address over the cap.
    fn stop_working(&self) -> bool {
        let mut place = self.place();
        place.working = place.working.saturating_sub(1);
        if place.working > 0 || place.ended {
            return false;
        }
        place.waiting_since = Instant::now();
        match &self.member {
            Some(member) => {
                place.holding = true;
                member.gate.rejoin()
            }
            None => false,
        }
    }

    /// The connection ends: its place, if it holds one, is given back.
    fn end(&self) {
        let mut place = self.place();
        place.ended = true;
        if std::mem::take(&mut place.holding) {
            if let Some(member) = &self.member {
                member.gate.leave();
            }
        }
    }
}

/// One request on a connection, for as long as it lives: in flight, and
/// working once its body is in.
struct InFlight {
    activity: Arc<Activity>,
    working: AtomicBool,
}

impl InFlight {
    fn start(activity: &Arc<Activity>, version: hyper::Version) -> Arc<Self> {
        if version == hyper::Version::HTTP_2 {
            activity.http2.store(true, Ordering::Relaxed);
        }
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        Arc::new(Self {
            activity: Arc::clone(activity),
            working: AtomicBool::new(false),
        })
    }

    /// The request ends; whether its connection is to close after the
    /// answer to keep its address within the cap.
    fn finish(&self) -> bool {
        let activity = &self.activity;
        let over = self.working.swap(false, Ordering::AcqRel) && activity.stop_working();
        let idle_since = u64::try_from(activity.accepted.elapsed().as_nanos()).unwrap_or(u64::MAX);
        activity.idle_since.store(idle_since, Ordering::Release);
        activity.served.store(true, Ordering::Release);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
        over
    }
}

impl BodyProgress for InFlight {
    fn body_complete(&self) {
        if !self.working.swap(true, Ordering::AcqRel) {
            self.activity.start_working();
        }
    }
}

/// Ends a request that was dropped before it finished (its connection
/// went away).
struct Finish(Option<Arc<InFlight>>);

impl Drop for Finish {
    fn drop(&mut self) {
        if let Some(request) = self.0.take() {
            request.finish();
        }
    }
}

/// An accepted connection and what serving it needs.
struct Connection {
    peer: SocketAddr,
    app: Edge,
    http: Arc<auto::Builder<TokioExecutor>>,
    limits: Arc<ConnectionLimits>,
    stopping: watch::Receiver<bool>,
    activity: Arc<Activity>,
    /// Released when the connection ends.
    held: (OwnedSemaphorePermit, Registered),
}

impl Connection {
    async fn start_tls(self, tls: RustlsAcceptor, stream: TcpStream) {
        match tls.accept(stream, ()).await {
            Ok((stream, ())) => self.start(stream).await,
            Err(error) => tracing::debug!(peer = %self.peer, %error, "TLS handshake failed"),
        }
    }

    /// Serves the connection once it has a place at its address's gate, or
    /// refuses it.
    async fn start<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = Arc::clone(&self.activity);
        if let (false, Some(member)) = (activity.try_admit(), &activity.member) {
            // Its address is at the cap: an idle keep-alive connection of the
            // same address gives way (it has no request to lose).
            if self.held.1.open().close_idle_of(member.key) {
                metrics::counter!("dcr_connections_closed_total", "reason" => "room").increment(1);
            }
        }
        let admitted = tokio::select! {
            admitted = activity.admit() => admitted,
            () = activity.close.notified() => return,
        };
        if admitted {
            self.run(io).await;
        } else {
            metrics::counter!("dcr_connections_refused_total", "reason" => "per_ip").increment(1);
            tracing::debug!(peer = %self.peer, "too many waiting connections from this address");
            self.refuse(io).await;
        }
        activity.end();
    }

    /// Answers the connection's request `503` and closes it.
    async fn refuse<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let app = self.app.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let response = app.too_many_connections(&request);
            async move { Ok::<_, std::convert::Infallible>(response) }
        });
        let connection = self.http.serve_connection(TokioIo::new(io), service);
        let _ = tokio::time::timeout(REFUSAL_TIME, connection).await;
    }

    async fn run<I>(mut self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = Arc::clone(&self.activity);
        let (peer, app, counter) = (self.peer, self.app.clone(), Arc::clone(&activity));
        let body_timeout = self.limits.request_body_timeout;
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let app = app.clone();
            let version = request.version();
            let request_in = InFlight::start(&counter, version);
            let (request, watch) = if request.body().is_end_stream() {
                request_in.body_complete();
                (request.map(axum::body::Body::new), None)
            } else {
                let (parts, body) = request.into_parts();
                let progress: Arc<dyn BodyProgress> = request_in.clone();
                let deadline = Instant::now() + body_timeout;
                let (body, watch) = GuardedBody::new(body, deadline, Some(progress));
                let request = hyper::Request::from_parts(parts, axum::body::Body::new(body));
                (request, Some(watch))
            };
            let mut finish = Finish(Some(request_in));
            async move {
                let mut response = app.handle(request, peer, watch).await;
                if let Some(request_in) = finish.0.take() {
                    if request_in.finish() && version < hyper::Version::HTTP_2 {
                        response.headers_mut().insert(
                            hyper::header::CONNECTION,
                            hyper::header::HeaderValue::from_static("close"),
                        );
                    }
                }
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let connection = self.http.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        // One timer for the connection's life: when it fires, it is moved to
        // the deadline the activity now gives, or closes the connection if
        // that has passed. While a request is in flight it looks again an
        // idle timeout later.
        let timer = tokio::time::sleep_until(activity.accepted + self.limits.header_read_timeout);
        tokio::pin!(timer);
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    }
                    return;
                }
                _ = self.stopping.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.as_mut().await;
                    return;
                }
                () = activity.close.notified() => {
                    if !activity.is_waiting() {
                        continue;
                    }
                    tracing::debug!(%peer, "waiting connection closed to make room");
                }
                () = timer.as_mut() => {
                    let now = Instant::now();
                    match activity.deadline(&self.limits) {
                        Some(deadline) if deadline <= now => {}
                        Some(deadline) => {
                            timer.as_mut().reset(deadline);
                            continue;
                        }
                        None => {
                            timer.as_mut().reset(now + self.limits.idle_timeout);
                            continue;
                        }
                    }
                    metrics::counter!("dcr_connections_closed_idle_total").increment(1);
                    tracing::debug!(%peer, "idle or silent connection closed");
                }
            }
            // A peer that was served and has nothing in flight gets a
            // goodbye (HTTP/2 GOAWAY); any other is simply dropped.
            if activity.served() && activity.in_flight.load(Ordering::Acquire) == 0 {
                connection.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(CLOSE_GRACE, connection.as_mut()).await;
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_count_by_their_64_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.1".parse::<IpAddr>().unwrap());
    }

    fn limits(per_ip: usize) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            http2_keep_alive_interval: Duration::from_secs(1),
            request_body_timeout: Duration::from_secs(1),
            max_connections: 10,
            max_connections_per_ip: per_ip,
            exempt: vec!["10.0.0.0/8".parse().unwrap()],
        }
    }

    fn connection(table: &Arc<PerAddress>, ip: &str) -> Arc<Activity> {
        accepted_at(table, ip, Instant::now())
    }

    fn accepted_at(table: &Arc<PerAddress>, ip: &str, accepted: Instant) -> Arc<Activity> {
        let member = table.member(ip.parse().unwrap());
        Arc::new(Activity::new(accepted, member))
    }

    #[tokio::test(start_paused = true)]
    async fn only_waiting_connections_count_and_a_queued_one_takes_a_freed_place() {
        let table = Arc::new(PerAddress::new(&limits(2)));
        let first = connection(&table, "192.0.2.1");
        let second = connection(&table, "192.0.2.1");
        assert!(first.admit().await && second.admit().await);
        // A third waits; it gets a place as soon as the first starts
        // working on a request.
        let third = connection(&table, "192.0.2.1");
        let queued = tokio::spawn({
            let third = Arc::clone(&third);
            async move { third.admit().await }
        });
        tokio::task::yield_now().await;
        first.start_working();
        assert!(queued.await.unwrap(), "the freed place was taken");
        // Back to waiting, the first leaves the address over the cap.
        assert!(first.stop_working());
        first.end();
        // Nobody frees a place: a fourth is refused after the queue wait.
        let fourth = connection(&table, "192.0.2.1");
        let started = Instant::now();
        assert!(!fourth.admit().await);
        assert_eq!(started.elapsed(), QUEUE_WAIT);
        // Another address, and a trusted proxy's, are not affected.
        assert!(connection(&table, "192.0.2.2").admit().await);
        for _ in 0..5 {
            assert!(connection(&table, "10.1.2.3").admit().await);
        }
    }

    #[test]
    fn at_the_cap_the_connection_waiting_longest_is_asked_to_close() {
        let table = Arc::new(PerAddress::new(&limits(10)));
        let open = Arc::new(OpenConnections::default());
        let now = Instant::now();
        let older = accepted_at(&table, "192.0.2.1", now);
        let working = accepted_at(&table, "192.0.2.2", now);
        let newer = accepted_at(&table, "192.0.2.3", now + Duration::from_secs(1));
        let _held: Vec<_> = [&older, &working, &newer]
            .into_iter()
            .map(|activity| open.add(activity))
            .collect();
        working.start_working();
        assert!(open.close_longest_waiting());
        assert!(older.place().closing && !newer.place().closing);
        assert!(open.close_longest_waiting());
        assert!(newer.place().closing);
        assert!(!open.close_longest_waiting(), "the working one is kept");
    }
}
