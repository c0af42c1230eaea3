//! Counters the operator scrapes at `/metrics` (Prometheus text format 0.0.4).
//!
//! Hand-written rather than the `metrics` crate family: a handful of counters, read by one
//! route, and no exporter thread. Label values come from fixed sets (service names, refusal
//! reasons, status classes), never from request input, so the series count stays bounded.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The origin's counters.
#[derive(Default)]
pub struct Metrics {
    keys_delivered: Mutex<BTreeMap<&'static str, u64>>,
    keys_refused: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Responses by status class (index 1..=5).
    responses: [AtomicU64; 6],
    /// Connections open now (the listener's gauge).
    connections_open: std::sync::atomic::AtomicI64,
    /// Connection limits enforced, by limit name (see [`crate::listen`]).
    limits_hit: Mutex<BTreeMap<&'static str, u64>>,
    /// Tokens checked (signature and claims) for token-restricted keys.
    token_checks: AtomicU64,
    /// Asset requests refused by access control, by reason.
    access_refused: Mutex<BTreeMap<&'static str, u64>>,
    /// Asset requests admitted by a signed-access policy.
    access_granted: AtomicU64,
}

impl Metrics {
    /// A key (or licence) was handed out by `service` (`key`, `clearkey`).
    pub fn key_delivered(&self, service: &'static str) {
        *self.keys_delivered.lock().unwrap_or_else(|e| e.into_inner()).entry(service).or_default() += 1;
    }

    /// `service` refused a key for `reason`.
    pub fn key_refused(&self, service: &'static str, reason: &'static str) {
        *self.keys_refused.lock().unwrap_or_else(|e| e.into_inner()).entry((service, reason)).or_default() += 1;
    }

    /// A token was checked (signature and claims) for a token-restricted key.
    pub fn token_checked(&self) {
        self.token_checks.fetch_add(1, Ordering::Relaxed);
    }

    /// Tokens checked so far.
    pub fn token_checks(&self) -> u64 {
        self.token_checks.load(Ordering::Relaxed)
    }

    /// Access control refused a request for `reason` (a fixed label).
    pub fn access_refused(&self, reason: &'static str) {
        *self.access_refused.lock().unwrap_or_else(|e| e.into_inner()).entry(reason).or_default() += 1;
    }

    /// A signed-access policy admitted a request.
    pub fn access_granted(&self) {
        self.access_granted.fetch_add(1, Ordering::Relaxed);
    }

    /// How many requests access control refused for `reason` so far.
    pub fn access_refusals(&self, reason: &str) -> u64 {
        self.access_refused.lock().unwrap_or_else(|e| e.into_inner()).iter().filter(|(r, _)| **r == reason).map(|(_, n)| *n).sum()
    }

    /// Counts a response status.
    pub fn response(&self, status: u16) {
        let class = (status / 100).clamp(1, 5) as usize;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
    }

    /// A connection opened (`1`) or closed (`-1`).
    pub fn connections_open(&self, delta: i64) {
        self.connections_open.fetch_add(delta, Ordering::Relaxed);
    }

    /// A connection limit was enforced: `limit` is one of `max_connections`, `idle_timeout`,
    /// `write_timeout`, `response_stalled`, `request_timeout`, `response_bytes`,
    /// `tls_handshake_timeout`, `drain`.
    pub fn limit_hit(&self, limit: &'static str) {
        *self.limits_hit.lock().unwrap_or_else(|e| e.into_inner()).entry(limit).or_default() += 1;
    }

    /// How many times `limit` was enforced so far.
    pub fn limits_hit(&self, limit: &str) -> u64 {
        self.limits_hit.lock().unwrap_or_else(|e| e.into_inner()).iter().filter(|(l, _)| **l == limit).map(|(_, n)| *n).sum()
    }

    /// How many keys `service` refused for `reason` so far.
    pub fn refused(&self, service: &str, reason: &str) -> u64 {
        self.keys_refused.lock().unwrap_or_else(|e| e.into_inner()).iter().filter(|((s, r), _)| *s == service && *r == reason).map(|(_, n)| *n).sum()
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(1024);
        s.push_str("# HELP sealcast_responses_total HTTP responses by status class.\n# TYPE sealcast_responses_total counter\n");
        for (i, c) in self.responses.iter().enumerate().skip(1) {
            let _ = writeln!(s, "sealcast_responses_total{{class=\"{i}xx\"}} {}", c.load(Ordering::Relaxed));
        }
        s.push_str("# HELP sealcast_keys_delivered_total Keys and licences handed out.\n# TYPE sealcast_keys_delivered_total counter\n");
        for (svc, n) in self.keys_delivered.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(s, "sealcast_keys_delivered_total{{service=\"{svc}\"}} {n}");
        }
        s.push_str("# HELP sealcast_keys_refused_total Key and licence requests refused, by reason.\n# TYPE sealcast_keys_refused_total counter\n");
        for ((svc, reason), n) in self.keys_refused.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(s, "sealcast_keys_refused_total{{service=\"{svc}\",reason=\"{reason}\"}} {n}");
        }
        s.push_str("# HELP sealcast_token_checks_total Tokens checked (signature and claims) for token-restricted keys.\n# TYPE sealcast_token_checks_total counter\n");
        let _ = writeln!(s, "sealcast_token_checks_total {}", self.token_checks());
        s.push_str("# HELP sealcast_access_refused_total Asset requests refused by access control, by reason.\n# TYPE sealcast_access_refused_total counter\n");
        for (reason, n) in self.access_refused.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(s, "sealcast_access_refused_total{{reason=\"{reason}\"}} {n}");
        }
        s.push_str("# HELP sealcast_access_granted_total Asset requests admitted by a signed URL, cookie or token.\n# TYPE sealcast_access_granted_total counter\n");
        let _ = writeln!(s, "sealcast_access_granted_total {}", self.access_granted.load(Ordering::Relaxed));
        s.push_str("# HELP sealcast_connections_open Connections open now.\n# TYPE sealcast_connections_open gauge\n");
        let _ = writeln!(s, "sealcast_connections_open {}", self.connections_open.load(Ordering::Relaxed));
        s.push_str("# HELP sealcast_limits_total Connections refused or closed, and requests timed out, by the limit enforced.\n# TYPE sealcast_limits_total counter\n");
        for (limit, n) in self.limits_hit.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(s, "sealcast_limits_total{{limit=\"{limit}\"}} {n}");
        }
        s
    }
}
