//! Connection limits against slow and idle clients, on real sockets against the in-process
//! server (`listen::serve`) with short limits. Every check waits for an event (the socket is
//! closed, a counter moves) under a generous bound; none asserts how fast something happened.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sealcast_origin::config::Config;
use sealcast_origin::listen::{serve, Limits};
use sealcast_origin::server::AppState;
use sealcast_storage::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Long enough for any limit under test (300 ms) to act many times over on a loaded machine.
const BOUND: Duration = Duration::from_secs(20);
const SHORT: Duration = Duration::from_millis(300);
/// Longer than any test runs: a limit set to this never acts.
const NEVER: Duration = Duration::from_secs(600);

struct Running {
    addr: SocketAddr,
    state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

/// Limits that never act, for a test to shorten the one it is about.
fn lax() -> Limits {
    Limits {
        header_read_timeout: NEVER,
        idle_timeout: NEVER,
        request_timeout: NEVER,
        write_timeout: NEVER,
        tls_handshake_timeout: NEVER,
        drain_timeout: NEVER,
        h2_keep_alive_interval: NEVER,
        h2_keep_alive_timeout: NEVER,
        ..Limits::default()
    }
}

async fn start(limits: Limits) -> Running {
    let fx = sealcast_testkit::fixtures_dir();
    let cfg = Config { root: fx.clone(), ..Config::default() };
    let state = AppState::with_store(&cfg, Store::local(&fx).unwrap());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(l, state.clone(), None, limits, async {
        let _ = rx.await;
    }));
    Running { addr, state, stop: Some(tx), task }
}

/// Reads and discards until the peer closes (EOF or reset): true, or `BOUND` passes: false.
async fn closed(s: &mut TcpStream) -> bool {
    let mut buf = vec![0u8; 64 * 1024];
    let r = tokio::time::timeout(BOUND, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    r.is_ok()
}

/// One HTTP/1.1 response (head and `Content-Length` body) from `s`: status line and body.
async fn response(s: &mut TcpStream) -> (String, Vec<u8>) {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(tokio::time::timeout(BOUND, s.read(&mut b)).await.expect("response in time").unwrap(), 1, "connection closed mid-head");
        head.push(b[0]);
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let len = text.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap())).unwrap_or(0);
    let mut body = vec![0u8; len];
    tokio::time::timeout(BOUND, s.read_exact(&mut body)).await.expect("body in time").unwrap();
    (text.lines().next().unwrap_or_default().to_string(), body)
}

/// Waits until `limit` has been enforced at least once.
async fn hit(st: &AppState, limit: &'static str) -> bool {
    tokio::time::timeout(BOUND, async {
        while st.metrics.limits_hit(limit) == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .is_ok()
}

/// The largest media segment of the demo asset.
async fn big_segment(st: &Arc<AppState>) -> String {
    let mut best = (0, String::new());
    for u in support::demo_urls(st).await.into_iter().filter(|u| u.ends_with(".m4s")) {
        let url = format!("/demo/{u}");
        let n = support::get(st, &url).await.2.len();
        if n > best.0 {
            best = (n, url);
        }
    }
    best.1
}

async fn stop(mut r: Running) {
    r.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(BOUND, r.task).await.expect("server stops").unwrap().unwrap();
}

#[tokio::test]
async fn half_header_socket_is_closed_after_the_header_timeout() {
    let r = start(Limits { header_read_timeout: SHORT, ..lax() }).await;
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    assert!(closed(&mut s).await, "a request head that never ends keeps its connection");
    // Nothing else could have closed it.
    assert_eq!(r.state.metrics.limits_hit("idle_timeout"), 0);
    stop(r).await;
}

#[tokio::test]
async fn silent_socket_is_closed_after_the_idle_timeout() {
    // Connected, not a byte sent: hyper has not even chosen HTTP/1 or HTTP/2 yet, so only
    // the idle limit (the bound on the time to the first request) can act.
    let r = start(Limits { idle_timeout: SHORT, ..lax() }).await;
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    assert!(closed(&mut s).await, "a silent connection stays open");
    assert!(hit(&r.state, "idle_timeout").await);
    stop(r).await;
}

#[tokio::test]
async fn idle_keep_alive_socket_is_closed_after_the_idle_timeout() {
    let r = start(Limits { idle_timeout: SHORT, ..lax() }).await;
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let (status, _) = response(&mut s).await;
    assert!(status.contains(" 200 "), "{status}");
    assert!(closed(&mut s).await, "an idle keep-alive connection stays open");
    assert!(hit(&r.state, "idle_timeout").await);
    stop(r).await;
}

#[tokio::test]
async fn client_that_never_reads_is_cut_after_the_write_timeout() {
    let r = start(Limits { write_timeout: SHORT, ..lax() }).await;
    let seg = big_segment(&r.state).await;
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    // Far more than the socket buffers on both sides hold, pipelined, never read.
    let req = format!("GET {seg} HTTP/1.1\r\nHost: x\r\n\r\n");
    s.write_all(req.repeat(400).as_bytes()).await.unwrap();
    assert!(hit(&r.state, "write_timeout").await || r.state.metrics.limits_hit("response_stalled") > 0, "a stalled response was not cut");
    assert!(closed(&mut s).await, "the stalled connection stays open");
    stop(r).await;
}

/// A minimal HTTP/2 client that advertises a zero receive window: the server may send
/// headers but not a byte of body.
async fn h2_zero_window(addr: SocketAddr, path: &str, streams: u32) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    // SETTINGS: SETTINGS_INITIAL_WINDOW_SIZE (0x4) = 0.
    out.extend_from_slice(&[0, 0, 6, 0x4, 0, 0, 0, 0, 0, 0, 0x4, 0, 0, 0, 0]);
    // HPACK without Huffman or dynamic table: `:method GET` (static 2), `:scheme http` (6),
    // `:path` (literal, name index 4), `:authority` (literal, name index 1).
    let mut block = vec![0x82, 0x86, 0x04, path.len() as u8];
    block.extend_from_slice(path.as_bytes());
    block.extend_from_slice(&[0x01, 1, b'x']);
    for i in 0..streams {
        let id = 1 + 2 * i;
        let len = block.len() as u32;
        // HEADERS, END_STREAM | END_HEADERS.
        out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, 0x1, 0x5]);
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&block);
    }
    s.write_all(&out).await.unwrap();
    s
}

#[tokio::test]
async fn http2_client_with_a_zero_window_is_cut_after_the_write_timeout() {
    let r = start(Limits { write_timeout: SHORT, ..lax() }).await;
    let seg = big_segment(&r.state).await;
    let mut s = h2_zero_window(r.addr, &seg, 50).await;
    assert!(hit(&r.state, "response_stalled").await, "streams held by flow control were not cut");
    assert!(closed(&mut s).await, "the stalled HTTP/2 connection stays open");
    stop(r).await;
}

#[tokio::test]
async fn connections_beyond_the_cap_are_refused_while_open_ones_still_answer() {
    let r = start(Limits { max_connections: 2, ..lax() }).await;
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(r.addr).await.unwrap();
        // A full exchange proves the server counts this connection before the next connects.
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        assert!(response(&mut s).await.0.contains(" 200 "));
        open.push(s);
    }
    let mut extra = TcpStream::connect(r.addr).await.unwrap();
    let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(closed(&mut extra).await, "a connection over the cap was served");
    assert!(hit(&r.state, "max_connections").await);
    for s in &mut open {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        assert!(response(s).await.0.contains(" 200 "), "an open connection stopped answering");
    }
    // A slot freed is a slot usable again.
    drop(open.pop());
    let served = tokio::time::timeout(BOUND, async {
        loop {
            let mut s = TcpStream::connect(r.addr).await.unwrap();
            if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.is_ok() {
                let mut buf = Vec::new();
                if s.read_to_end(&mut buf).await.is_ok() && buf.starts_with(b"HTTP/1.1 200") {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(served.is_ok(), "a freed slot was never reused");
    stop(r).await;
}

#[tokio::test]
async fn body_that_never_arrives_gets_408() {
    let r = start(Limits { request_timeout: SHORT, ..lax() }).await;
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    s.write_all(b"POST /clearkey HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"kids\":").await.unwrap();
    let (status, _) = response(&mut s).await;
    assert!(status.contains(" 408 "), "{status}");
    assert!(closed(&mut s).await, "a connection with a half-read body was kept");
    assert!(hit(&r.state, "request_timeout").await);
    stop(r).await;
}

#[tokio::test]
async fn graceful_shutdown_ends_within_the_drain_limit_despite_stalled_clients() {
    let mut r = start(Limits { drain_timeout: SHORT, ..lax() }).await;
    let seg = big_segment(&r.state).await;
    let mut stalled = TcpStream::connect(r.addr).await.unwrap();
    stalled.write_all(format!("GET {seg} HTTP/1.1\r\nHost: x\r\n\r\n").repeat(400).as_bytes()).await.unwrap();
    let mut half = TcpStream::connect(r.addr).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let h2 = h2_zero_window(r.addr, &seg, 20).await;
    // Let the server take all three in and start answering.
    tokio::time::timeout(BOUND, async {
        while r.state.metrics.connections() != 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("three connections open");
    r.stop.take().unwrap().send(()).unwrap();
    let done = tokio::time::timeout(BOUND, &mut r.task).await;
    assert!(matches!(done, Ok(Ok(Ok(())))), "shutdown did not finish: {done:?}");
    // The never-reading clients could not finish: the drain limit ended them.
    assert!(r.state.metrics.limits_hit("drain") >= 1);
    assert!(closed(&mut stalled).await && closed(&mut half).await);
    drop(h2);
    // Nothing listens any more.
    assert!(TcpStream::connect(r.addr).await.is_err());
}

#[tokio::test]
async fn connection_response_budget_refuses_streams_over_it_but_not_other_connections() {
    let r = start(Limits { max_connection_response_bytes: 1, ..lax() }).await;
    let seg = big_segment(&r.state).await;
    // One stream's body is admitted and held by flow control; the rest would go over.
    let held = h2_zero_window(r.addr, &seg, 50).await;
    assert!(hit(&r.state, "response_bytes").await, "streams over the connection's budget were served");
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    s.write_all(format!("GET {seg} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
    let (status, _) = response(&mut s).await;
    assert!(status.contains(" 200 "), "another connection was refused: {status}");
    // Without a drain limit, shutdown waits for the held connection to go.
    drop(held);
    stop(r).await;
}

#[tokio::test]
async fn server_response_budget_answers_503_until_memory_is_given_back() {
    let r = start(Limits { max_response_bytes: 1, ..lax() }).await;
    let seg = big_segment(&r.state).await;
    let held = h2_zero_window(r.addr, &seg, 1).await;
    // The held body is counted once the server has answered that stream.
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    let refused = tokio::time::timeout(BOUND, async {
        loop {
            s.write_all(format!("GET {seg} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
            let (status, _) = response(&mut s).await;
            if status.contains(" 503 ") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(refused.is_ok(), "a response over the server's budget was served");
    assert!(r.state.metrics.limits_hit("response_bytes") >= 1);
    // The holder goes away: its body is freed and the budget serves again.
    drop(held);
    let served = tokio::time::timeout(BOUND, async {
        loop {
            s.write_all(format!("GET {seg} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
            if response(&mut s).await.0.contains(" 200 ") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(served.is_ok(), "the budget was never given back");
    stop(r).await;
}

// Two worker threads: on one, the server building 61 responses would keep the client from
// opening windows, which is not what is under test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_stream_queued_behind_progressing_siblings_is_not_cut() {
    let r = start(Limits { write_timeout: Duration::from_secs(1), ..lax() }).await;
    let seg = big_segment(&r.state).await;
    // The body size is known before the streams open: building it while they wait (a debug
    // build on a busy machine can take over a second) would leave the connection with nothing
    // to send for a write timeout, a real stall.
    let size = support::get(&r.state, &seg).await.2.len();
    // Streams 1, 3, ..., 121 all ask for the segment with zero windows; the client then opens
    // the window of one stream at a time, so the later ones wait several write timeouts while
    // the connection as a whole keeps moving.
    let s = h2_zero_window(r.addr, &seg, 61).await;
    let (mut rd, mut wr) = s.into_split();
    let window_update = |stream: u32, n: u32| {
        let mut f = vec![0, 0, 4, 0x8, 0];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(&n.to_be_bytes());
        f
    };
    let reader = tokio::spawn(async move {
        // Counts, per stream, whether DATA with END_STREAM was seen; returns at EOF.
        let mut done = std::collections::BTreeSet::new();
        let mut head = [0u8; 9];
        loop {
            if rd.read_exact(&mut head).await.is_err() {
                return done;
            }
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let mut payload = vec![0u8; len];
            if rd.read_exact(&mut payload).await.is_err() {
                return done;
            }
            let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
            if head[3] == 0x0 && head[4] & 0x1 != 0 {
                done.insert(stream);
            }
        }
    });
    // 16 KiB every 10 ms to the first stream until it has its body, then the next: about
    // 1.6 MB/s, 25 times the least the limit asks for, so a slow test machine does not make it
    // look stalled. Streams 1..119 take several write timeouts; 121 never gets a window.
    let per_stream = size.div_ceil(16384) * 16384;
    for stream in (1..=119).step_by(2) {
        let mut granted = 0;
        while granted < per_stream {
            if wr.write_all(&[window_update(0, 16384), window_update(stream, 16384)].concat()).await.is_err() {
                break;
            }
            granted += 16384;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    assert_eq!(r.state.metrics.limits_hit("response_stalled"), 0, "a connection that was sending was cut");
    // The client stops opening windows: now the connection is stalled and is cut.
    assert!(hit(&r.state, "response_stalled").await, "a connection with no progress was kept");
    let done = tokio::time::timeout(BOUND, reader).await.expect("connection closed").unwrap();
    assert!(done.contains(&1) && done.contains(&119), "streams given a window were not completed: {done:?}");
    stop(r).await;
}
