//! The accept loop and the life of each connection: HTTP/1.1 and HTTP/2
//! (h2c, or h2 over TLS) on a listener the caller bound, with the guards a
//! server facing the Internet needs against sockets that are held open and
//! send little or nothing.
//!
//! - At most `max_connections` connections are open at once. At the cap the
//!   loop stops accepting, so further connections wait in the kernel's
//!   backlog instead of taking descriptors; when descriptors run out anyway
//!   (`EMFILE`), it waits for one to free up.
//! - At most `max_connections_per_ip` come from one address (one /64 for
//!   IPv6); more are closed as soon as they are accepted. Trusted proxies
//!   are exempt.
//! - A connection's first request head must arrive within
//!   `header_read_timeout` of the accept, TLS and HTTP/2 handshakes included.
//!   On HTTP/1.1 every later head must arrive within it of the end of the
//!   previous request, so it is also how long an idle HTTP/1.1 connection
//!   stays open.
//! - A connection with no request in flight for `idle_timeout` is closed
//!   (HTTP/2 with a GOAWAY).
//! - HTTP/2 peers are pinged every `http2_keep_alive_interval` and dropped
//!   when a ping goes unanswered as long.
//!
//! Every socket has `TCP_NODELAY`. All these timeouts are one timer per
//! connection, not one per request (hyper's own head timeout would arm and
//! clear a timer on every request): requests do not wake the connection's
//! task to report their progress, they update counters that its timer reads
//! when it fires.
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
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::http::edge::Edge;

/// How long a connection closed for idleness may take to say goodbye (send
/// GOAWAY, finish a write) before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How long the loop waits when accepting fails (descriptors exhausted).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The limits of `[server]` on connections.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Longest wait for a request head (see the module documentation).
    pub header_read_timeout: Duration,
    /// Longest a connection may stay open with no request in flight.
    pub idle_timeout: Duration,
    /// Interval of HTTP/2 pings, and how long an answer may take.
    pub http2_keep_alive_interval: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most connections open at once from one address (one /64 for IPv6).
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
    let limits = Arc::new(limits);
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut accept_failing = false;
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
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
        // Answers go out as soon as they are written, not held back by
        // Nagle's algorithm waiting for the peer's delayed ACK.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
        }
        let Some(address_slot) = per_address.admit(peer.ip()) else {
            metrics::counter!("dcr_connections_refused_total", "reason" => "per_ip").increment(1);
            tracing::debug!(%peer, "too many connections from this address; closed");
            continue;
        };
        let connection = Connection {
            peer,
            accepted: Instant::now(),
            app: app.clone(),
            http: Arc::clone(&http),
            limits: Arc::clone(&limits),
            stopping: stopping.clone(),
            _slots: (slot, address_slot),
        };
        match &tls {
            None => connections.spawn(connection.run(stream)),
            Some(tls) => connections.spawn(connection.run_tls(tls.clone(), stream)),
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

/// Open connections per address, against the cap.
struct PerAddress {
    limit: usize,
    exempt: Vec<IpNet>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerAddress {
    fn new(limits: &ConnectionLimits) -> Self {
        Self {
            limit: limits.max_connections_per_ip.max(1),
            exempt: limits.exempt.clone(),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A slot for one more connection from `ip`, or `None` at the cap.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        if self.exempt.iter().any(|net| net.contains(&ip)) {
            return Some(AddressSlot(None));
        }
        let key = address_key(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(AddressSlot(Some((Arc::clone(self), key))))
    }

    fn release(&self, key: IpAddr) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&key);
            }
        }
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

/// One connection of an address, released when the connection ends.
struct AddressSlot(Option<(Arc<PerAddress>, IpAddr)>);

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if let Some((table, key)) = &self.0 {
            table.release(*key);
        }
    }
}

/// Whether requests are being handled on a connection, and since when it
/// has been idle. Kept in atomics that requests update without waking the
/// connection's task; its one timer reads them when it fires.
struct Activity {
    accepted: Instant,
    in_flight: AtomicUsize,
    /// When the last request ended, in nanoseconds after `accepted`.
    idle_since: AtomicU64,
    served: AtomicBool,
    /// Requests come over HTTP/2, whose idle connections are not waiting
    /// for a head.
    http2: AtomicBool,
}

impl Activity {
    fn new(accepted: Instant) -> Self {
        Self {
            accepted,
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            served: AtomicBool::new(false),
            http2: AtomicBool::new(false),
        }
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
}

/// Counts a request in flight for as long as it lives.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>, version: hyper::Version) -> Self {
        if version == hyper::Version::HTTP_2 {
            activity.http2.store(true, Ordering::Relaxed);
        }
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        let idle_since = activity.accepted.elapsed().as_nanos();
        activity.idle_since.store(
            u64::try_from(idle_since).unwrap_or(u64::MAX),
            Ordering::Release,
        );
        activity.served.store(true, Ordering::Release);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An accepted connection and what serving it needs.
struct Connection {
    peer: SocketAddr,
    accepted: Instant,
    app: Edge,
    http: Arc<auto::Builder<TokioExecutor>>,
    limits: Arc<ConnectionLimits>,
    stopping: watch::Receiver<bool>,
    /// Released when the connection ends.
    _slots: (OwnedSemaphorePermit, AddressSlot),
}

impl Connection {
    async fn run_tls(self, tls: RustlsAcceptor, stream: TcpStream) {
        match tls.accept(stream, ()).await {
            Ok((stream, ())) => self.run(stream).await,
            Err(error) => tracing::debug!(peer = %self.peer, %error, "TLS handshake failed"),
        }
    }

    async fn run<I>(mut self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = Arc::new(Activity::new(self.accepted));
        let (peer, app, counter) = (self.peer, self.app.clone(), Arc::clone(&activity));
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let in_flight = InFlight::start(&counter, request.version());
            let app = app.clone();
            async move {
                let response = app.handle(request, peer).await;
                drop(in_flight);
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let connection = self.http.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        // One timer for the connection's life: when it fires, it is moved to
        // the deadline the activity now gives, or closes the connection if
        // that has passed. While a request is in flight it looks again an
        // idle timeout later.
        let timer = tokio::time::sleep_until(self.accepted + self.limits.header_read_timeout);
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
                    // A peer that was served gets a goodbye (HTTP/2 GOAWAY);
                    // one that never sent a request is simply dropped.
                    if activity.served() {
                        connection.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(CLOSE_GRACE, connection.as_mut()).await;
                    }
                    return;
                }
            }
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

    #[test]
    fn the_per_address_cap_counts_open_connections_and_exempts_proxies() {
        let limits = ConnectionLimits {
            header_read_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            http2_keep_alive_interval: Duration::from_secs(1),
            max_connections: 10,
            max_connections_per_ip: 2,
            exempt: vec!["10.0.0.0/8".parse().unwrap()],
        };
        let table = Arc::new(PerAddress::new(&limits));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let first = table.admit(ip).unwrap();
        let _second = table.admit(ip).unwrap();
        assert!(table.admit(ip).is_none());
        drop(first);
        assert!(table.admit(ip).is_some());
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let held: Vec<_> = (0..5).filter_map(|_| table.admit(proxy)).collect();
        assert_eq!(held.len(), 5);
    }
}
