//! The accept loop and per-connection limits, shared by the plain-HTTP and the TLS listener.
//!
//! Each connection is served by [`crate::h1`] (HTTP/1.1 requests without a body) until it
//! needs more, then by hyper (bodies, HTTP/2) to its end; both call the same [`Guarded`]
//! service under the same watchdog.
//!
//! hyper enforces nothing by itself: without a timer it even drops its HTTP/1 header-read
//! timeout, and a response built whole waits for a reader forever. Every connection here runs
//! under a [`Limits`]:
//!
//! - at most `max_connections` at once; one more is accepted and closed at once (counted);
//! - TLS handshakes and HTTP/1 request heads must arrive within their timeouts;
//! - a connection with no request in flight for `idle_timeout` is shut down gracefully (this
//!   also bounds the time to the first request, HTTP/2 included);
//! - a request carrying a body (`POST /clearkey`) must be read and answered within
//!   `request_timeout`, else 408 and the connection closes;
//! - a response that makes no progress for `write_timeout` closes its connection: either a
//!   socket write stays blocked that long, or a response body is not asked for its next
//!   [`CHUNK`] that long while the whole connection wrote less than one [`CHUNK`] (HTTP/2 flow
//!   control holds streams without touching the socket; a stream queued behind busy siblings
//!   is not stalled). HTTP/2 bodies are handed to hyper in pieces of at most [`CHUNK`] bytes
//!   so that progress is seen per piece (HTTP/1 bodies whole: cutting them cost a quarter of
//!   the segment throughput in the load benchmark, and a blocked socket shows their stalls).
//!   Either way this sets a minimum send rate of about `CHUNK / write_timeout` per connection;
//! - HTTP/2: keep-alive pings, a cap on concurrent streams and on the header list size;
//! - response bodies held in memory (built, not yet handed to hyper) are budgeted per
//!   connection and in all: a response that would go over either budget is answered 503 with
//!   `Retry-After` instead (its bytes are freed at once). A segment sent from its file
//!   counts what it holds ([`crate::body::FileSend::held`]: its boxes and at most two reads),
//!   not its size.
//!
//! A response body is held until it is sent or its connection is cut. Memory pinned by readers
//! that never read is therefore at most 1.125 × `max_response_bytes` (small answers may
//! overdraw by an eighth), or one largest response if that is bigger; without the budgets it
//! would be `max_connections × h2_max_concurrent_streams` bodies.
//!
//! On shutdown the listener stops accepting, every connection is asked to finish gracefully
//! (HTTP/1: close after the response in flight; HTTP/2: GOAWAY), and whatever is still open
//! after `drain_timeout` is dropped.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::respond::{Answer, Wire};
use crate::server::AppState;

/// Largest piece of an HTTP/2 response body handed to hyper at once. Progress of a response is
/// seen per piece, so a connection slower than `CHUNK / write_timeout` is cut; 64 KiB over the
/// default 30 s is about 2 KiB/s.
pub const CHUNK: usize = 64 * 1024;

/// Responses up to this size may overdraw a response-bytes budget by an eighth of it.
const SMALL: u64 = 16 * 1024;

/// Connection limits, as validated from `[limits]` (see `config::LimitsConfig`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Open connections at most; more are closed as soon as accepted.
    pub max_connections: usize,
    /// HTTP/1: time from the first byte of a request head to its end (and, in hyper, from the
    /// end of one response to the next request's head).
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is shut down.
    pub idle_timeout: Duration,
    /// Whole-request bound for requests that carry a body (`POST /clearkey`).
    pub request_timeout: Duration,
    /// A response (or a socket write) without progress for this long closes its connection.
    pub write_timeout: Duration,
    /// TLS handshakes must finish within this.
    pub tls_handshake_timeout: Duration,
    /// After shutdown is asked for, connections get this long to finish.
    pub drain_timeout: Duration,
    /// On SIGTERM, how long everything is served as before (readiness 503) before the drain
    /// starts; applied by `sealcast serve` around [`serve`]'s `shutdown`.
    pub drain_delay: Duration,
    /// HTTP/2 concurrent streams per connection.
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2 keep-alive ping interval.
    pub h2_keep_alive_interval: Duration,
    /// HTTP/2: a ping not answered within this closes the connection.
    pub h2_keep_alive_timeout: Duration,
    /// HTTP/2 header list size at most (HTTP/1 heads are bounded by hyper's read buffer).
    pub max_header_bytes: u32,
    /// Bytes of response bodies one connection may hold (built, not yet handed to hyper);
    /// a response that would go over answers 503 instead. One response is always admitted
    /// when the connection holds none.
    pub max_connection_response_bytes: u64,
    /// The same over all connections.
    pub max_response_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            tls_handshake_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(10),
            drain_delay: Duration::ZERO,
            h2_max_concurrent_streams: 100,
            h2_keep_alive_interval: Duration::from_secs(20),
            h2_keep_alive_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            max_connection_response_bytes: 64 << 20,
            max_response_bytes: 1 << 30,
        }
    }
}

impl Limits {
    /// How often each connection's watchdog looks at its clocks: a quarter of the shortest
    /// limit it enforces, between 20 ms and 1 s, so a limit is enforced at most 25 % late.
    fn tick(&self) -> Duration {
        (self.idle_timeout.min(self.write_timeout) / 4).clamp(Duration::from_millis(20), Duration::from_secs(1))
    }

    fn builder(&self) -> Builder<TokioExecutor> {
        let mut b = Builder::new(TokioExecutor::new());
        // The timer is what makes `header_read_timeout` (and HTTP/2 pings) work at all.
        b.http1().timer(TokioTimer::new()).header_read_timeout(self.header_read_timeout).keep_alive(true);
        b.http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(self.h2_max_concurrent_streams)
            .max_header_list_size(self.max_header_bytes)
            .keep_alive_interval(self.h2_keep_alive_interval)
            .keep_alive_timeout(self.h2_keep_alive_timeout);
        b
    }
}

/// Serves `router(state)` on `listener` (over TLS when `tls` is given) under `limits` until
/// `shutdown` resolves, then drains for at most `limits.drain_timeout`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let limits = Arc::new(limits);
    let builder = Arc::new(limits.builder());
    let acceptor = tls.map(TlsAcceptor::from);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let held = Arc::new(AtomicU64::new(0));
    let (drain_tx, drain_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            // Reap finished connection tasks so the set does not grow with every connection.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    // Over the cap: closing at once costs the least and tells the client (or
                    // its load balancer) to go elsewhere.
                    state.metrics.limit_hit("max_connections");
                    drop(tcp);
                    continue;
                };
                // No Nagle: a response's last small write must not wait for a delayed ACK.
                let _ = tcp.set_nodelay(true);
                let conn = Conn {
                    state: Arc::new(ConnState::new()),
                    limits: limits.clone(),
                    builder: builder.clone(),
                    server: state.clone(),
                    held: held.clone(),
                    drain: drain_rx.clone(),
                };
                let acceptor = acceptor.clone();
                tasks.spawn(async move {
                    // Both released even when the task is aborted at the end of a drain.
                    let _permit = permit;
                    let _open = Open::new(conn.server.clone());
                    conn.run(tcp, peer, acceptor).await;
                });
            }
        }
    }
    drop(listener);
    // `send` fails only when every receiver is gone, i.e. no connection is left to tell.
    let _ = drain_tx.send(true);
    let deadline = tokio::time::sleep(limits.drain_timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = tasks.join_next() => if next.is_none() { break },
            _ = &mut deadline => {
                for _ in 0..tasks.len() {
                    state.metrics.limit_hit("drain");
                }
                tracing::info!(connections = tasks.len(), "drain limit reached; closing the remaining connections");
                tasks.shutdown().await;
                break;
            }
        }
    }
    Ok(())
}

/// Counts a connection in the `open` gauge while alive.
struct Open(Arc<AppState>);

impl Open {
    fn new(server: Arc<AppState>) -> Self {
        server.metrics.connections_open(1);
        Open(server)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.metrics.connections_open(-1);
    }
}

/// What a connection task needs.
struct Conn {
    state: Arc<ConnState>,
    limits: Arc<Limits>,
    builder: Arc<Builder<TokioExecutor>>,
    /// The server state, for its metrics.
    server: Arc<AppState>,
    /// Response bytes held over all connections.
    held: Arc<AtomicU64>,
    drain: watch::Receiver<bool>,
}

impl Conn {
    async fn run(self, tcp: TcpStream, peer: std::net::SocketAddr, acceptor: Option<TlsAcceptor>) {
        let io = WatchedIo { inner: tcp, state: self.state.clone() };
        match acceptor {
            None => self.http(io, peer).await,
            Some(acceptor) => match tokio::time::timeout(self.limits.tls_handshake_timeout, acceptor.accept(io)).await {
                Ok(Ok(tls)) => {
                    self.server.metrics.tls_handshake("ok");
                    self.http(tls, peer).await
                }
                Ok(Err(e)) => {
                    self.server.metrics.tls_handshake("failed");
                    tracing::debug!(%peer, error = %e, "TLS handshake failed")
                }
                Err(_) => {
                    self.server.metrics.tls_handshake("timeout");
                    self.server.metrics.limit_hit("tls_handshake_timeout")
                }
            },
        }
    }

    /// Drives one connection under the watchdog: requests without a body in [`crate::h1`],
    /// and from the first one that needs more (a body, HTTP/2), hyper to the end.
    async fn http<I>(mut self, mut io: I, peer: std::net::SocketAddr)
    where
        I: AsyncRead + AsyncWrite + crate::h1::SendFiles + Unpin + Send + 'static,
    {
        let svc = Guarded { state: self.state.clone(), limits: self.limits.clone(), server: self.server.clone(), held: self.held.clone(), peer };
        let mut dog = Watchdog::new(&self.limits);
        let mut buf = bytes::BytesMut::new();
        let max_head = self.limits.max_header_bytes as usize;
        {
            let fast = crate::h1::serve(&mut io, &mut buf, &svc, max_head);
            tokio::pin!(fast);
            if *self.drain.borrow() {
                self.state.closing.store(true, Ordering::Release);
                dog.closing = Some(Instant::now());
            }
            loop {
                // A connection asked to close with no request under way closes now.
                if self.state.closing.load(Ordering::Acquire) && !self.state.busy() {
                    return;
                }
                tokio::select! {
                    r = fast.as_mut() => match r {
                        Ok(crate::h1::Next::Hyper) => break,
                        Ok(crate::h1::Next::Close) => return,
                        Err(e) => {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                            return;
                        }
                    },
                    changed = self.drain.changed(), if dog.closing.is_none() => {
                        // An error means the server is gone: treat it as a drain too.
                        let _ = changed;
                        self.state.closing.store(true, Ordering::Release);
                        dog.closing = Some(Instant::now());
                    }
                    _ = dog.tick.tick() => match dog.check(&self.state, &self.limits, &self.server, *self.drain.borrow()) {
                        Check::Fine => {}
                        Check::Close => {
                            self.state.closing.store(true, Ordering::Release);
                            dog.closing = Some(Instant::now());
                        }
                        Check::Cut => return,
                    },
                }
            }
        }
        let io = Prefixed { prefix: buf.freeze(), inner: io };
        let conn = self.builder.serve_connection(TokioIo::new(io), svc);
        tokio::pin!(conn);
        if dog.closing.is_some() || *self.drain.borrow() {
            conn.as_mut().graceful_shutdown();
            dog.closing.get_or_insert_with(Instant::now);
        }
        loop {
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                changed = self.drain.changed(), if dog.closing.is_none() => {
                    let _ = changed;
                    conn.as_mut().graceful_shutdown();
                    dog.closing = Some(Instant::now());
                }
                _ = dog.tick.tick() => match dog.check(&self.state, &self.limits, &self.server, *self.drain.borrow()) {
                    Check::Fine => {}
                    Check::Close => {
                        conn.as_mut().graceful_shutdown();
                        dog.closing = Some(Instant::now());
                    }
                    Check::Cut => return,
                },
            }
        }
    }
}

/// What the watchdog found at a tick.
enum Check {
    Fine,
    /// Idle too long: close gracefully.
    Close,
    /// A response makes no progress, a head comes too slowly, or a graceful close does not
    /// finish: drop the connection.
    Cut,
}

/// A connection's clocks as its task sees them, looked at once a tick.
struct Watchdog {
    tick: tokio::time::Interval,
    /// `write_timeout` in milliseconds.
    window: u64,
    /// (time, bytes written) at accept and at each tick, back to one at least `write_timeout`
    /// old. The accept entry matters: without it, for up to a tick after the connection is
    /// `write_timeout` old no entry is old enough, its progress counts for nothing, and an
    /// HTTP/2 stream waiting behind busy siblings since the start looks stalled.
    history: std::collections::VecDeque<(u64, u64)>,
    /// When a graceful shutdown of this connection was started (drain or idle).
    closing: Option<Instant>,
    /// `ConnState::requests` at the last tick, and since when (ms) no request has been under
    /// way: idleness is seen at tick granularity, at most a tick after the last response.
    requests: u64,
    quiet_since: u64,
}

impl Watchdog {
    fn new(limits: &Limits) -> Self {
        let mut tick = tokio::time::interval(limits.tick());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Watchdog { tick, window: limits.write_timeout.as_millis() as u64, history: std::collections::VecDeque::from([(0, 0)]), closing: None, requests: 0, quiet_since: 0 }
    }

    fn check(&mut self, state: &ConnState, limits: &Limits, server: &AppState, draining: bool) -> Check {
        let now = state.now();
        let written = state.written.load(Ordering::Relaxed);
        self.history.push_back((now, written));
        while self.history.len() > 1 && self.history[1].0 + self.window <= now {
            self.history.pop_front();
        }
        let recent = self.history.front().filter(|(t, _)| t + self.window <= now).map(|(_, w)| written - w);
        if let Some(reason) = state.stalled(now, limits.write_timeout, recent) {
            tracing::debug!(reason, "closing a connection whose response makes no progress");
            server.metrics.limit_hit(reason);
            return Check::Cut;
        }
        // A head begun and not finished in time (hyper enforces this itself once it serves).
        let head = state.head_since.load(Ordering::Acquire);
        if head != 0 && now.saturating_sub(head - 1) >= limits.header_read_timeout.as_millis() as u64 {
            server.metrics.limit_hit("header_read_timeout");
            return Check::Cut;
        }
        let requests = state.requests.load(Ordering::Acquire);
        if state.active.load(Ordering::Acquire) > 0 || requests != self.requests {
            self.requests = requests;
            self.quiet_since = now;
        }
        let idle = Duration::from_millis(now.saturating_sub(self.quiet_since));
        match self.closing {
            None if idle >= limits.idle_timeout => {
                server.metrics.limit_hit("idle_timeout");
                Check::Close
            }
            // A graceful close that does not finish (a request that never completes its
            // head, a peer that never acknowledges) is cut; writes that stall are cut above
            // anyway.
            Some(t) if t.elapsed() >= limits.idle_timeout.max(limits.write_timeout) && !draining => Check::Cut,
            _ => Check::Fine,
        }
    }
}

/// The `AsyncWrite` methods a wrapper of `self.inner` passes through unchanged.
macro_rules! forward_write_rest {
    () => {
        fn is_write_vectored(&self) -> bool {
            self.inner.is_write_vectored()
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    };
}

/// The connection's stream with bytes already read from it in front: how a connection is
/// handed to hyper after [`crate::h1`] served its first requests.
struct Prefixed<I> {
    prefix: Bytes,
    inner: I,
}

impl<I: AsyncRead + Unpin> AsyncRead for Prefixed<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Prefixed<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    forward_write_rest!();
}

/// Per-connection clocks, in milliseconds since the connection was accepted.
pub(crate) struct ConnState {
    epoch: Instant,
    /// Requests whose response has not been fully handed to hyper (or dropped).
    active: AtomicUsize,
    /// Requests begun so far: the watchdog tells idleness from this count and `active`, so no
    /// request reads the clock for it.
    requests: AtomicU64,
    /// 1 + when a socket write started to be refused (`Pending`); 0 while writes go through.
    write_blocked_since: AtomicU64,
    /// Response bodies in progress, each with the time it last handed out a chunk.
    bodies: Mutex<Vec<Arc<AtomicU64>>>,
    /// Response bytes held by this connection.
    held: Arc<AtomicU64>,
    /// Bytes written to the socket so far.
    written: AtomicU64,
    /// 1 + when the first byte of a request head not yet complete arrived; 0 between heads
    /// (set by [`crate::h1`]; hyper keeps its own clock).
    head_since: AtomicU64,
    /// The connection is to close after the response under way ([`crate::h1`]).
    pub(crate) closing: AtomicBool,
}

impl ConnState {
    fn new() -> Self {
        ConnState {
            epoch: Instant::now(),
            active: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            write_blocked_since: AtomicU64::new(0),
            bodies: Mutex::new(Vec::new()),
            held: Arc::new(AtomicU64::new(0)),
            written: AtomicU64::new(0),
            head_since: AtomicU64::new(0),
            closing: AtomicBool::new(false),
        }
    }

    /// A request head has begun (only its first byte's time counts).
    pub(crate) fn head_started(&self) {
        if self.head_since.load(Ordering::Relaxed) == 0 {
            self.head_since.store(self.now() + 1, Ordering::Release);
        }
    }

    /// The head is complete.
    pub(crate) fn head_done(&self) {
        self.head_since.store(0, Ordering::Release);
    }

    /// A request is under way: its head has begun or its response is not sent.
    fn busy(&self) -> bool {
        self.head_since.load(Ordering::Acquire) != 0 || self.active.load(Ordering::Acquire) > 0
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Why the connection should be cut, if a write or a response has made no progress for
    /// `limit`. `recent`: bytes the connection wrote over the last `limit`, if it is that old.
    fn stalled(&self, now: u64, limit: Duration, recent: Option<u64>) -> Option<&'static str> {
        let limit = limit.as_millis() as u64;
        let blocked = self.write_blocked_since.load(Ordering::Acquire);
        if blocked != 0 && now.saturating_sub(blocked - 1) >= limit {
            return Some("write_timeout");
        }
        // An HTTP/2 stream can wait behind its siblings for the connection's flow-control
        // window on a slow link: that is progress. A connection that wrote less than a piece
        // over the whole limit is not progressing (pings and headers are a few bytes).
        if recent.is_some_and(|n| n >= CHUNK as u64) {
            return None;
        }
        let bodies = self.bodies.lock().unwrap_or_else(|e| e.into_inner());
        if bodies.iter().any(|b| now.saturating_sub(b.load(Ordering::Acquire)) >= limit) {
            return Some("response_stalled");
        }
        None
    }
}

/// Counts a request as in flight until dropped (with its response body, if any).
struct Active(Arc<ConnState>);

impl Active {
    fn new(state: Arc<ConnState>) -> Self {
        state.requests.fetch_add(1, Ordering::AcqRel);
        state.active.fetch_add(1, Ordering::AcqRel);
        Active(state)
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// [`crate::server::serve_request`] with request accounting, response budgets and the request
/// timeout: the service of both [`crate::h1`] and hyper.
#[derive(Clone)]
pub(crate) struct Guarded {
    state: Arc<ConnState>,
    limits: Arc<Limits>,
    server: Arc<AppState>,
    held: Arc<AtomicU64>,
    /// The connection's peer (access policies with address conditions).
    peer: std::net::SocketAddr,
}

impl Guarded {
    pub(crate) fn conn_state(&self) -> &ConnState {
        &self.state
    }

    pub(crate) fn metrics(&self) -> &crate::metrics::Metrics {
        &self.server.metrics
    }

    /// Answers `req`. `has_body`: it carries one (the request timeout applies); `piece`: the
    /// largest body frame to hand out at once; `wire`: how a cached answer's headers come.
    pub(crate) async fn respond(&self, req: Request<Body>, has_body: bool, piece: usize, wire: Wire) -> Answer<WatchedBody> {
        let active = Active::new(self.state.clone());
        let server = &self.server;
        let state = &self.state;
        let limits = &self.limits;
        // The handler's future is made where it is awaited: kept in a variable first, it
        // would be copied once more (it is kilobytes) for every request.
        let res = if has_body {
            match tokio::time::timeout(limits.request_timeout, crate::server::serve_request(server.clone(), req, self.peer, wire)).await {
                Ok(r) => r,
                Err(_) => {
                    server.metrics.limit_hit("request_timeout");
                    server.metrics.response(408);
                    let mut r = Response::new(Body::from("request not received in time\n"));
                    *r.status_mut() = StatusCode::REQUEST_TIMEOUT;
                    // The body may be half read: the connection cannot be reused.
                    r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                    r.into()
                }
            }
        } else {
            crate::server::serve_request(server.clone(), req, self.peer, wire).await
        };
        use http_body::Body as _;
        let Answer { response: res, lines } = res;
        let size = res.body().size_hint().exact().unwrap_or_else(|| res.body().size_hint().lower());
        // Small answers (/healthz, keys, most manifests) may overdraw a budget by an eighth,
        // so a budget filled by segments does not fail health checks too.
        let over = |budget: u64| {
            if size <= SMALL {
                budget.saturating_add(budget / 8)
            } else {
                budget
            }
        };
        let budgets = [(&state.held, over(limits.max_connection_response_bytes)), (&self.held, over(limits.max_response_bytes))];
        // A segment sent from its file holds its boxes and a read or two, not its size.
        let held = res.extensions().get::<crate::body::SendFile>().map_or(size, |s| s.0.held().min(size));
        let Some(reserved) = Reserved::take(held, budgets) else {
            // Built but over budget: freeing it now is what keeps memory bounded. The
            // status already counted for it stays counted; the limit counter says why.
            server.metrics.limit_hit("response_bytes");
            let mut r = Response::new(Body::from("too many responses in flight, try again\n"));
            *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return r.map(|b| WatchedBody::new(b, active, state, Reserved::default(), piece)).into();
        };
        Answer { response: res.map(|b| WatchedBody::new(b, active, state, reserved, piece)), lines }
    }
}

impl hyper::service::Service<Request<Incoming>> for Guarded {
    type Response = Response<WatchedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        use http_body::Body as _;
        let has_body = !req.body().is_end_stream();
        // HTTP/2 flow control can hold a stream without the socket ever blocking: only the
        // body's pieces show its progress there.
        let piece = if req.version() == http::Version::HTTP_2 { CHUNK } else { usize::MAX };
        let svc = self.clone();
        Box::pin(async move { Ok(svc.respond(req.map(Body::new), has_body, piece, Wire::Map).await.response) })
    }
}

/// Response bytes counted against budgets, given back when dropped.
#[derive(Default)]
struct Reserved(Vec<(Arc<AtomicU64>, u64)>);

impl Reserved {
    /// Counts `size` against each `(counter, budget)`, or none of them when one would go over
    /// (a counter at 0 admits any size, so one response always fits).
    fn take<const N: usize>(size: u64, budgets: [(&Arc<AtomicU64>, u64); N]) -> Option<Reserved> {
        let mut r = Reserved(Vec::with_capacity(N));
        if size == 0 {
            return Some(r);
        }
        for (counter, budget) in budgets {
            let before = counter.fetch_add(size, Ordering::AcqRel);
            r.0.push((counter.clone(), size));
            if before > 0 && before.saturating_add(size) > budget {
                // Dropping `r` gives back what was taken so far, this one included.
                return None;
            }
        }
        Some(r)
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        for (counter, n) in &self.0 {
            counter.fetch_sub(*n, Ordering::AcqRel);
        }
    }
}

/// A response body cut into pieces of at most `piece` bytes, registering the time of each
/// piece with its connection's watchdog, and keeping its request counted as in flight.
pub struct WatchedBody {
    inner: Body,
    /// The rest of a data frame larger than `piece`.
    rest: Bytes,
    piece: usize,
    /// When the body last handed out a piece, registered with the watchdog; only for bodies
    /// that can stall without blocking the socket: HTTP/2 streams (flow control) and bodies
    /// produced while they are sent (a storage stream). An HTTP/1 body already in memory is
    /// written at once, and a blocked write is what the watchdog sees then.
    clock: Option<Arc<AtomicU64>>,
    state: Arc<ConnState>,
    _active: Active,
    /// Dropped with the body, after `inner` and `rest` (fields drop in order).
    _reserved: Reserved,
}

impl WatchedBody {
    fn new(inner: Body, active: Active, state: &Arc<ConnState>, reserved: Reserved, piece: usize) -> Self {
        use http_body::Body as _;
        let watched = piece != usize::MAX || inner.size_hint().exact().is_none();
        let clock = watched.then(|| {
            let clock = Arc::new(AtomicU64::new(state.now()));
            state.bodies.lock().unwrap_or_else(|e| e.into_inner()).push(clock.clone());
            clock
        });
        WatchedBody { inner, rest: Bytes::new(), piece, clock, state: state.clone(), _active: active, _reserved: reserved }
    }

    fn piece(&mut self) -> Bytes {
        let n = self.rest.len().min(self.piece);
        if let Some(clock) = &self.clock {
            clock.store(self.state.now(), Ordering::Release);
        }
        self.rest.split_to(n)
    }
}

impl Drop for WatchedBody {
    fn drop(&mut self) {
        if let Some(clock) = &self.clock {
            self.state.bodies.lock().unwrap_or_else(|e| e.into_inner()).retain(|c| !Arc::ptr_eq(c, clock));
        }
    }
}

impl http_body::Body for WatchedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if !self.rest.is_empty() {
            return Poll::Ready(Some(Ok(Frame::data(self.piece()))));
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => {
                    self.rest = data;
                    Poll::Ready(Some(Ok(Frame::data(self.piece()))))
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let h = self.inner.size_hint();
        let rest = self.rest.len() as u64;
        let mut s = SizeHint::new();
        s.set_lower(h.lower() + rest);
        if let Some(u) = h.upper() {
            s.set_upper(u + rest);
        }
        s
    }
}

impl crate::h1::SendFiles for WatchedIo {
    fn sends_files(&self) -> bool {
        true
    }

    fn poll_send_file(&mut self, cx: &mut Context<'_>, file: &sealcast_storage::LocalFile, offset: u64, len: usize) -> Poll<io::Result<usize>> {
        let r = self.inner.poll_send_file(cx, file, offset, len);
        self.track(&r);
        r
    }
}

/// The TCP stream, timing how long writes stay refused.
struct WatchedIo {
    inner: TcpStream,
    state: Arc<ConnState>,
}

impl WatchedIo {
    fn track(&self, r: &Poll<io::Result<usize>>) {
        match r {
            Poll::Pending => {
                // Only the first refusal of a run sets the clock.
                let _ = self.state.write_blocked_since.compare_exchange(0, self.state.now() + 1, Ordering::AcqRel, Ordering::Acquire);
            }
            Poll::Ready(Ok(n)) if *n > 0 => {
                self.state.write_blocked_since.store(0, Ordering::Release);
                self.state.written.fetch_add(*n as u64, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

impl AsyncRead for WatchedIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.track(&r);
        r
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.track(&r);
        r
    }

    forward_write_rest!();
}
