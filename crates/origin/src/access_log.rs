//! The access log (`[access_log]`): one JSON line per request, appended to a shared buffer
//! that a background thread writes out every [`FLUSH_EVERY`] — a slow disk never holds up a
//! response, and no request wakes another thread (a wake-up and a `write` per line cost more
//! than the rest of a cached manifest's answer). A full buffer drops lines and counts them in
//! `sealcast_access_log_dropped_total`.
//!
//! Fields: `time`, `request_id`, `client`, `peer`, `method`, `path` (never the query string:
//! signed-URL signatures, tokens and `hdnts` live there), `route`, `asset`, `protocol`,
//! `protection`, `status`, `bytes`, `duration_ms`, `cache` (`hit` when no storage operation
//! was needed, else `miss`), `storage_reads`. No header value is logged besides a client
//! address and a well-formed `X-Request-Id`; cookies and `Authorization` never are.
//!
//! The client address is the connection's peer unless the peer is one of `trusted_proxies`:
//! then it comes from `Forwarded` (RFC 7239) or else `X-Forwarded-For`, read from the right,
//! skipping addresses of trusted proxies, so a viewer cannot forge it by sending the header
//! itself.
//!
//! Sampling (`sample`, 0–1) applies to successful answers (1xx–3xx); 4xx and 5xx are always
//! written.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use http::HeaderMap;
use serde::Deserialize;

/// `[access_log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessLogConfig {
    /// `stderr`, `stdout`, or a file (appended to, created 0640 if missing).
    pub path: String,
    /// Share of successful requests logged (0–1); errors are always logged.
    pub sample: f64,
    /// Proxies (addresses or CIDR ranges) whose `Forwarded` / `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<String>,
    /// Lines waiting for the writer at most (counted as 512 bytes each); more are dropped
    /// (and counted).
    pub queue: usize,
}

impl AccessLogConfig {
    /// The configuration checked: the trusted proxies parsed.
    pub fn check(&self) -> anyhow::Result<Vec<ipnet::IpNet>> {
        if !(0.0..=1.0).contains(&self.sample) {
            bail!("access_log.sample must be between 0 and 1");
        }
        if !(1..=10_000_000).contains(&self.queue) {
            bail!("access_log.queue must be between 1 and 10000000");
        }
        self.trusted_proxies.iter().map(|s| parse_net(s).with_context(|| format!("access_log.trusted_proxies: '{s}' is neither an address nor a CIDR range"))).collect()
    }
}

impl Default for AccessLogConfig {
    fn default() -> Self {
        AccessLogConfig { path: "stderr".into(), sample: 1.0, trusted_proxies: Vec::new(), queue: 16_384 }
    }
}

/// One request, as the log line shows it (fields in line order). Borrowed, so that making
/// one allocates nothing.
#[derive(Debug)]
pub struct Entry<'a> {
    /// The client's well-formed `X-Request-Id` ([`AccessLog::given_request_id`]); `None`: one
    /// made here from the process prefix and the request number `n`.
    pub request_id: Option<&'a str>,
    /// The request number ([`AccessLog::next`]).
    pub n: u64,
    /// The viewer's address from forwarding headers ([`AccessLog::forwarded_client`]); `None`:
    /// the peer's address.
    pub client: Option<&'a str>,
    /// The connection's peer.
    pub peer: Option<SocketAddr>,
    /// HTTP method, as the metrics label it.
    pub method: &'static str,
    /// Path, without the query string.
    pub path: &'a str,
    /// Route kind (as the metrics label it).
    pub route: &'static str,
    /// Asset path, for asset routes.
    pub asset: Option<&'a str>,
    /// Protocol label.
    pub protocol: &'static str,
    /// Protection label.
    pub protection: &'static str,
    /// Status code.
    pub status: u16,
    /// Body bytes.
    pub bytes: u64,
    /// Time to the response head (written in milliseconds, to the microsecond).
    pub duration: Duration,
    /// `hit`, `miss`, or absent for routes that read no content.
    pub cache: Option<&'static str>,
    /// Storage operations the request made.
    pub storage_reads: u32,
}

/// How often the writer thread writes out what requests appended.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Lines not yet written, and where they go.
struct Pending {
    buf: Mutex<Vec<u8>>,
    /// Bytes `buf` may hold; lines beyond are dropped.
    cap: usize,
    out: Mutex<Box<dyn Write + Send>>,
}

impl Pending {
    /// Writes out what is buffered (the writer thread, and [`AccessLog::flush`]).
    fn flush(&self) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let taken = {
            let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
            // The next interval likely needs as much room as this one took: no regrowth.
            let room = buf.len().min(self.cap);
            std::mem::replace(&mut *buf, Vec::with_capacity(room))
        };
        if !taken.is_empty() {
            let _ = out.write_all(&taken).and_then(|_| out.flush());
        }
    }
}

/// The running access log.
pub struct AccessLog {
    pending: Arc<Pending>,
    sample: f64,
    trusted: Vec<ipnet::IpNet>,
    seq: AtomicU64,
    /// Process-unique prefix of the request ids made here, as they show it: 16 hex digits and
    /// a `-`.
    prefix: [u8; 17],
}

impl AccessLog {
    /// Checks `cfg` and starts the writer thread.
    pub fn start(cfg: &AccessLogConfig) -> anyhow::Result<AccessLog> {
        let trusted = cfg.check()?;
        let out: Box<dyn Write + Send> = match cfg.path.as_str() {
            "stderr" => Box::new(std::io::stderr()),
            "stdout" => Box::new(std::io::stdout()),
            p => {
                let mut o = std::fs::OpenOptions::new();
                o.create(true).append(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o640);
                Box::new(o.open(p).with_context(|| format!("access_log.path {p}"))?)
            }
        };
        let pending = Arc::new(Pending { buf: Mutex::new(Vec::new()), cap: cfg.queue.saturating_mul(512), out: Mutex::new(out) });
        let writer = Arc::downgrade(&pending);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                // Ends when the log is dropped.
                while let Some(p) = writer.upgrade() {
                    p.flush();
                    drop(p);
                    std::thread::sleep(FLUSH_EVERY);
                }
            })
            .context("starting the access-log writer")?;
        let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64) ^ (u64::from(std::process::id()) << 40);
        let mut prefix = [b'-'; 17];
        for (i, d) in prefix[..16].iter_mut().enumerate() {
            *d = b"0123456789abcdef"[(seed >> (4 * (15 - i)) & 0xf) as usize];
        }
        Ok(AccessLog { pending, sample: cfg.sample, trusted, seq: AtomicU64::new(0), prefix })
    }

    /// Whether a request answered with `status` is written (sampling of successes).
    pub fn wanted(&self, status: u16, n: u64) -> bool {
        if status >= 400 || self.sample >= 1.0 {
            return true;
        }
        // Spread the kept share evenly over request numbers (Fibonacci hashing).
        (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) as f64 / u64::MAX as f64) < self.sample
    }

    /// The next request number.
    pub fn next(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// The client's `X-Request-Id` when it is 1–64 characters of letters, digits, `-`, `_`,
    /// `.` (else the line gets one made from the process prefix and the request number).
    pub fn given_request_id(headers: &HeaderMap) -> Option<&str> {
        // A constant name: looking the header up by a `&str` parses the name first (some
        // 300 instructions a request, callgrind).
        static X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");
        let v = headers.get(&X_REQUEST_ID)?.to_str().ok()?;
        ((1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))).then_some(v)
    }

    /// The request id line `n` shows: [`Self::given_request_id`], else `{prefix:016x}-{n:x}`
    /// (tests; lines write it in place).
    #[cfg(test)]
    pub fn request_id(&self, headers: &HeaderMap, n: u64) -> String {
        Self::given_request_id(headers).map_or_else(
            || {
                let mut b = Vec::new();
                made_id(&mut b, &self.prefix, n);
                String::from_utf8_lossy(&b).into_owned()
            },
            str::to_string,
        )
    }

    /// The viewer's address: the peer, or from forwarding headers when the peer is trusted
    /// (tests; lines write it from [`Self::forwarded_client`] and the peer).
    #[cfg(test)]
    pub fn client(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<String> {
        self.forwarded_client(peer, headers).or_else(|| peer.map(|p| p.ip().to_string()))
    }

    /// The viewer's address when the peer is a trusted proxy (from `Forwarded` or
    /// `X-Forwarded-For`, or the proxy itself without them); `None` when the viewer is the peer.
    pub fn forwarded_client(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<String> {
        let peer_ip = peer?.ip();
        if !self.is_trusted(peer_ip) {
            return None;
        }
        let hops: Vec<String> = if let Some(f) = joined(headers, "forwarded") {
            f.split(',').filter_map(|el| el.split(';').find_map(|kv| kv.trim().strip_prefix("for=").or_else(|| kv.trim().strip_prefix("For=")))).map(unquote_for).collect()
        } else if let Some(x) = joined(headers, "x-forwarded-for") {
            x.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
        } else {
            Vec::new()
        };
        // From the right: the nearest hop first; the first one not trusted is the viewer.
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) if self.is_trusted(ip) => continue,
                _ => return Some(hop.clone()),
            }
        }
        Some(hops.first().cloned().unwrap_or_else(|| peer_ip.to_string()))
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.trusted.iter().any(|n| n.contains(&ip))
    }

    /// Appends `entry`'s line, stamped with the time now; a full buffer drops it (`false`).
    pub fn write(&self, entry: &Entry<'_>) -> bool {
        // Written straight into the shared buffer (nothing allocated per request); a line that
        // does not fit is taken back out.
        let mut buf = self.pending.buf.lock().unwrap_or_else(|e| e.into_inner());
        let start = buf.len();
        write_line(&mut buf, entry, &self.prefix);
        if buf.len() > self.pending.cap {
            buf.truncate(start);
            return false;
        }
        true
    }

    /// Writes out every line appended so far (at shutdown; the writer thread does it every
    /// [`FLUSH_EVERY`] otherwise).
    pub fn flush(&self) {
        self.pending.flush();
    }
}

/// All values of header `name`, comma-joined (a list header may come in several lines).
fn joined(headers: &HeaderMap, name: &str) -> Option<String> {
    let v: Vec<&str> = headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
    (!v.is_empty()).then(|| v.join(","))
}

/// A `for=` value of `Forwarded` as an address when it is one: quotes, IPv6 brackets and
/// ports removed (`"[2001:db8::1]:4711"` → `2001:db8::1`); obfuscated names stay as they are.
fn unquote_for(v: &str) -> String {
    let v = v.trim().trim_matches('"');
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest).to_string();
    }
    match v.rsplit_once(':') {
        Some((host, port)) if host.parse::<std::net::Ipv4Addr>().is_ok() && port.bytes().all(|b| b.is_ascii_digit()) => host.to_string(),
        _ => v.to_string(),
    }
}

/// An address or CIDR range.
fn parse_net(s: &str) -> anyhow::Result<ipnet::IpNet> {
    if let Ok(n) = s.parse::<ipnet::IpNet>() {
        return Ok(n);
    }
    Ok(ipnet::IpNet::from(s.parse::<IpAddr>()?))
}

/// Now as RFC 3339 UTC with milliseconds (`2026-12-03T09:30:00.123Z`), as lines show it (tests).
#[cfg(test)]
pub fn now_rfc3339() -> String {
    let mut b = Vec::with_capacity(24);
    write_now(&mut b);
    String::from_utf8(b).unwrap_or_default()
}

/// Appends the time now, RFC 3339 in UTC to the millisecond.
fn write_now(buf: &mut Vec<u8>) {
    thread_local! {
        /// The second last formatted on this thread and its text: the date and time are
        /// formatted once a second, not per request.
        static SECOND: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let (secs, ms) = (now.as_secs(), now.subsec_millis());
    SECOND.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs {
            let t = chrono::DateTime::from_timestamp(secs as i64, 0).unwrap_or_default();
            c.1 = t.format("%Y-%m-%dT%H:%M:%S").to_string();
            c.0 = secs;
        }
        buf.extend_from_slice(c.1.as_bytes());
    });
    buf.extend_from_slice(&[b'.', b'0' + (ms / 100) as u8, b'0' + (ms / 10 % 10) as u8, b'0' + (ms % 10) as u8, b'Z']);
}

/// One JSON line (RFC 8259) for `e`, written by hand: deriving `Serialize` and going through
/// `serde_json` and `Display` for addresses and numbers cost some 6,600 instructions a line
/// (callgrind), more than a tenth of answering a cached manifest; this costs a fraction.
fn write_line(buf: &mut Vec<u8>, e: &Entry<'_>, prefix: &[u8; 17]) {
    // Each fixed piece carries the quotes around it, so a line is some 30 small copies.
    buf.extend_from_slice(b"{\"time\":\"");
    write_now(buf);
    match e.request_id {
        Some(id) => {
            buf.extend_from_slice(b"\",\"request_id\":");
            quoted(buf, id);
            buf.extend_from_slice(b",\"client\":");
        }
        None => {
            buf.extend_from_slice(b"\",\"request_id\":\"");
            made_id(buf, prefix, e.n);
            buf.extend_from_slice(b"\",\"client\":");
        }
    }
    // An IPv4 peer's address is formatted once for both fields (V6 peers through `Display`).
    let v4 = match e.peer {
        Some(SocketAddr::V4(p)) => Some(Ipv4Text::new(*p.ip())),
        _ => None,
    };
    match (e.client, e.peer, &v4) {
        (Some(c), _, _) => quoted(buf, c),
        (None, _, Some(t)) => {
            buf.push(b'"');
            buf.extend_from_slice(t.as_bytes());
            buf.push(b'"');
        }
        (None, Some(p), None) => {
            let _ = write!(buf, "\"{}\"", p.ip());
        }
        (None, None, _) => buf.extend_from_slice(b"null"),
    }
    match (e.peer, &v4) {
        (Some(p), Some(t)) => {
            buf.extend_from_slice(b",\"peer\":\"");
            buf.extend_from_slice(t.as_bytes());
            buf.push(b':');
            buf.extend_from_slice(itoa::Buffer::new().format(p.port()).as_bytes());
        }
        (Some(p), None) => {
            let _ = write!(buf, ",\"peer\":\"{p}");
        }
        (None, _) => buf.extend_from_slice(b",\"peer\":null,\"method\":\""),
    }
    if e.peer.is_some() {
        buf.extend_from_slice(b"\",\"method\":\"");
    }
    label(buf, e.method);
    buf.extend_from_slice(b"\",\"path\":");
    quoted(buf, e.path);
    buf.extend_from_slice(b",\"route\":\"");
    label(buf, e.route);
    match e.asset {
        Some(a) => {
            buf.extend_from_slice(b"\",\"asset\":");
            quoted(buf, a);
            buf.extend_from_slice(b",\"protocol\":\"");
        }
        None => buf.extend_from_slice(b"\",\"asset\":null,\"protocol\":\""),
    }
    label(buf, e.protocol);
    buf.extend_from_slice(b"\",\"protection\":\"");
    label(buf, e.protection);
    let mut n = itoa::Buffer::new();
    buf.extend_from_slice(b"\",\"status\":");
    buf.extend_from_slice(n.format(e.status).as_bytes());
    buf.extend_from_slice(b",\"bytes\":");
    buf.extend_from_slice(n.format(e.bytes).as_bytes());
    let us = e.duration.as_micros().min(u64::MAX as u128) as u64;
    buf.extend_from_slice(b",\"duration_ms\":");
    buf.extend_from_slice(n.format(us / 1000).as_bytes());
    let frac = us % 1000;
    buf.extend_from_slice(&[b'.', b'0' + (frac / 100) as u8, b'0' + (frac / 10 % 10) as u8, b'0' + (frac % 10) as u8]);
    match e.cache {
        Some(c) => {
            buf.extend_from_slice(b",\"cache\":\"");
            label(buf, c);
            buf.extend_from_slice(b"\",\"storage_reads\":");
        }
        None => buf.extend_from_slice(b",\"cache\":null,\"storage_reads\":"),
    }
    buf.extend_from_slice(n.format(e.storage_reads).as_bytes());
    buf.extend_from_slice(b"}\n");
}

/// One of our own fixed label values (route, protocol, protection, cache, method: words of
/// letters, digits and `_`), unescaped, inside quotes the caller writes; checked in debug
/// builds.
fn label(buf: &mut Vec<u8>, s: &'static str) {
    debug_assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{s}");
    buf.extend_from_slice(s.as_bytes());
}

/// `v` in lowercase hex, without leading zeros.
fn hex(buf: &mut Vec<u8>, v: u64) {
    let digits = (64 - v.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        buf.push(b"0123456789abcdef"[(v >> (4 * i) & 0xf) as usize]);
    }
}

/// `{prefix}{n:x}`: the id of request `n` when the client gave none.
fn made_id(buf: &mut Vec<u8>, prefix: &[u8; 17], n: u64) {
    buf.extend_from_slice(prefix);
    hex(buf, n);
}

/// `s` as a JSON string (RFC 8259). Paths and asset names rarely hold a byte JSON escapes:
/// those are copied as they are, anything else is escaped by serde_json.
fn quoted(buf: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        buf.push(b'"');
        buf.extend_from_slice(s.as_bytes());
        buf.push(b'"');
        return;
    }
    // Cannot fail: a `str` always serializes, and writing to a `Vec` never errs.
    let _ = serde_json::to_writer(&mut *buf, s);
}

/// An IPv4 address in dotted-decimal text, formatted on the stack (through `Display` it
/// cost a line some 240 instructions per address).
struct Ipv4Text {
    text: [u8; 15],
    len: usize,
}

impl Ipv4Text {
    fn new(ip: std::net::Ipv4Addr) -> Self {
        let mut t = Ipv4Text { text: [0; 15], len: 0 };
        for (i, o) in ip.octets().into_iter().enumerate() {
            if i > 0 {
                t.push(b'.');
            }
            if o >= 100 {
                t.push(b'0' + o / 100);
            }
            if o >= 10 {
                t.push(b'0' + o / 10 % 10);
            }
            t.push(b'0' + o % 10);
        }
        t
    }

    fn push(&mut self, b: u8) {
        self.text[self.len] = b;
        self.len += 1;
    }

    fn as_bytes(&self) -> &[u8] {
        &self.text[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_addresses_are_written_as_serde_json_and_display_write_them() {
        for t in ["/ladder/manifest.mpd", "", "a\"b", "back\\slash", "tab\there", "nl\n", "\u{7f}del", "é/日本/\u{1F600}", "\u{1}"] {
            let mut b = Vec::new();
            quoted(&mut b, t);
            assert_eq!(String::from_utf8(b).unwrap(), serde_json::to_string(t).unwrap(), "{t:?}");
        }
        for a in ["0.0.0.0", "255.255.255.255", "10.1.20.3", "192.168.100.9", "1.22.103.4"] {
            let ip: std::net::Ipv4Addr = a.parse().unwrap();
            assert_eq!(Ipv4Text::new(ip).as_bytes(), a.as_bytes());
        }
        let mut b = Vec::new();
        made_id(&mut b, b"0123456789abcdef-", 0);
        made_id(&mut b, b"0123456789abcdef-", 0x1f);
        assert_eq!(b, b"0123456789abcdef-00123456789abcdef-1f");
    }

    fn log(trusted: &[&str]) -> AccessLog {
        AccessLog::start(&AccessLogConfig { trusted_proxies: trusted.iter().map(|s| s.to_string()).collect(), ..AccessLogConfig::default() }).unwrap()
    }

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, v.parse().unwrap());
        }
        m
    }

    #[test]
    fn client_address_believes_forwarding_headers_only_from_trusted_proxies() {
        let l = log(&["10.0.0.0/8", "::1"]);
        let proxy: SocketAddr = "10.1.2.3:5000".parse().unwrap();
        let stranger: SocketAddr = "198.51.100.9:5000".parse().unwrap();
        let xff = h(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.9.9.9")]);
        // A viewer's own X-Forwarded-For is ignored.
        assert_eq!(l.client(Some(stranger), &xff).as_deref(), Some("198.51.100.9"));
        // Through trusted proxies: the first untrusted hop from the right, not the forged leftmost one.
        assert_eq!(l.client(Some(proxy), &xff).as_deref(), Some("203.0.113.7"));
        let fwd = h(&[("forwarded", "for=6.6.6.6, for=\"[2001:db8::7]:4711\";proto=https"), ("x-forwarded-for", "1.1.1.1")]);
        assert_eq!(l.client(Some(proxy), &fwd).as_deref(), Some("2001:db8::7"), "Forwarded wins over X-Forwarded-For");
        assert_eq!(l.client(Some(proxy), &h(&[("forwarded", "for=192.0.2.60:8080")])).as_deref(), Some("192.0.2.60"));
        assert_eq!(l.client(Some(proxy), &HeaderMap::new()).as_deref(), Some("10.1.2.3"), "no header: the proxy itself");
        assert_eq!(l.client(Some("[::1]:80".parse().unwrap()), &h(&[("x-forwarded-for", "203.0.113.8")])).as_deref(), Some("203.0.113.8"));
        assert!(AccessLog::start(&AccessLogConfig { trusted_proxies: vec!["nonsense".into()], ..AccessLogConfig::default() }).is_err());
    }

    #[test]
    fn request_ids_and_sampling() {
        let l = AccessLog::start(&AccessLogConfig { sample: 0.25, ..AccessLogConfig::default() }).unwrap();
        assert_eq!(l.request_id(&h(&[("x-request-id", "abc-123")]), 1), "abc-123");
        let made = l.request_id(&h(&[("x-request-id", "bad id with spaces")]), 7);
        assert!(made.ends_with("-7") && made.len() == 18, "{made}");
        let kept = (0..100_000u64).filter(|n| l.wanted(200, *n)).count();
        assert!((20_000..30_000).contains(&kept), "{kept} of 100000 kept at 0.25");
        assert!((0..1000u64).all(|n| l.wanted(503, n)), "errors are always logged");
    }

    #[test]
    fn lines_are_json_with_every_string_escaped() {
        let hostile = "/a\"b\\c\nd\u{1}e\u{7f}é\u{2028}/x";
        let base = Entry {
            request_id: None,
            n: 0x2a,
            client: None,
            peer: Some("192.0.2.7:51234".parse().unwrap()),
            method: "GET",
            path: hostile,
            route: "manifest",
            asset: Some("vod/\"movie\""),
            protocol: "dash",
            protection: "clear",
            status: 200,
            bytes: u64::MAX,
            duration: Duration::from_micros(12_345_678),
            cache: Some("hit"),
            storage_reads: 3,
        };
        let v6 = Entry { request_id: Some("abc-1"), client: Some("203.0.113.9"), peer: Some("[2001:db8::1]:443".parse().unwrap()), asset: None, cache: None, duration: Duration::from_micros(42), ..base };
        let none = Entry { peer: None, ..v6 };
        let v6_direct = Entry { client: None, ..v6 };
        let mut buf = Vec::new();
        for e in [&base, &v6, &none, &v6_direct] {
            write_line(&mut buf, e, b"000000000000feed-");
        }
        let text = String::from_utf8(buf).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|err| panic!("{l}: {err}"))).collect();
        assert!(text.ends_with('\n') && lines.len() == 4);
        assert_eq!((lines[3]["client"].as_str(), lines[3]["peer"].as_str()), (Some("2001:db8::1"), Some("[2001:db8::1]:443")));
        let (a, b, c) = (&lines[0], &lines[1], &lines[2]);
        assert_eq!(a["path"], hostile);
        assert_eq!(a["asset"], "vod/\"movie\"");
        assert_eq!(a["request_id"], "000000000000feed-2a");
        assert_eq!((a["client"].as_str(), a["peer"].as_str()), (Some("192.0.2.7"), Some("192.0.2.7:51234")));
        assert_eq!((a["status"].as_u64(), a["bytes"].as_u64(), a["storage_reads"].as_u64()), (Some(200), Some(u64::MAX), Some(3)));
        assert_eq!(a["duration_ms"].as_f64(), Some(12345.678));
        assert_eq!((a["cache"].as_str(), a["method"].as_str(), a["route"].as_str(), a["protocol"].as_str(), a["protection"].as_str()), (Some("hit"), Some("GET"), Some("manifest"), Some("dash"), Some("clear")));
        chrono::DateTime::parse_from_rfc3339(a["time"].as_str().unwrap()).unwrap();
        assert_eq!((b["request_id"].as_str(), b["client"].as_str(), b["peer"].as_str()), (Some("abc-1"), Some("203.0.113.9"), Some("[2001:db8::1]:443")));
        assert_eq!(b["duration_ms"].as_f64(), Some(0.042));
        assert!(b["asset"].is_null() && b["cache"].is_null());
        assert!(c["peer"].is_null() && c["client"] == "203.0.113.9");
        let keys: Vec<&str> = a.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 15, "{keys:?}");
    }

    #[test]
    fn timestamps_are_rfc3339() {
        for _ in 0..3 {
            let before = chrono::Utc::now();
            let t = now_rfc3339();
            let after = chrono::Utc::now();
            assert_eq!(t.len(), 24, "{t}");
            assert!(t.ends_with('Z') && &t[10..11] == "T" && &t[19..20] == ".", "{t}");
            let parsed = chrono::DateTime::parse_from_rfc3339(&t).unwrap_or_else(|e| panic!("{t}: {e}"));
            let ms = |d: chrono::DateTime<chrono::Utc>| d.timestamp_millis();
            assert!((ms(before)..=ms(after)).contains(&parsed.timestamp_millis()), "{t} not between {before} and {after}");
            std::thread::sleep(std::time::Duration::from_millis(400));
        }
    }
}
