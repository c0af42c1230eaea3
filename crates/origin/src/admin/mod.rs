//! The management API (issue 14): its own listener (`[admin]`, off by default, never the
//! public port), every call authorised by a bearer JWT checked by the same verifier as key
//! delivery, with a `role` claim (`read`, `write`, `keys`: a token carries each role it
//! needs); every write lands in the catalog's audit trail.
//!
//! Today it serves Azure Media Services v2's protection-key flow ([`v2`]): the origin's
//! certificates (`GetProtectionKeyId`, `GetProtectionKey`), content keys uploaded RSA-OAEP
//! encrypted with their checksum (`POST /api/ContentKeys`), read back never in clear but to
//! the `keys` role (`RebindContentKey`), and their key delivery URLs.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::{header, HeaderValue, Request, StatusCode};
use serde::Deserialize;
use sealcast_drm::auth::{AuthorizationPolicy, AuthorizationPolicyConfig, RequiredClaim, TokenRequirementsConfig};

use crate::catalog::db::{Actor, Database};

pub mod entities;
pub mod native;
pub mod protection;
pub mod v2;

/// `[admin]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of the management listener (keep it private: loopback or an internal network).
    pub listen: SocketAddr,
    /// What a bearer token must be: `token_type = "Jwt"`, `issuer`, `audience`, `keys`, as
    /// for token-restricted keys; the `role` claim is checked per call on top.
    pub token: TokenRequirementsConfig,
    /// Terminate TLS on the management listener with this certificate and key (like the
    /// public side's `[tls]`); without it the listener speaks plain HTTP (keep it on
    /// loopback then).
    pub tls: Option<crate::config::TlsConfig>,
    /// The public base URL of this origin (key delivery URLs handed out:
    /// `{public_url}/key/{kid}`). Default: `http://{listen}` of the public side.
    pub public_url: Option<String>,
}

/// A role a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Read entities (never a key).
    Read = 0,
    /// Create, change and delete.
    Write = 1,
    /// Read a clear content key.
    Keys = 2,
}

impl Role {
    fn claim(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Keys => "keys",
        }
    }
}

/// The management API's state.
pub struct Admin {
    db: Arc<Database>,
    /// The verifier of each role, indexed by `Role as usize`.
    roles: [(Role, AuthorizationPolicy); 3],
    public_url: String,
    /// The token's subject is the audit identity; the verifier does not expose claims, so it
    /// is read from the (already verified) token's payload.
    clock: crate::server::Clock,
}

impl Admin {
    /// Builds the verifiers (one per role) and ensures a protection key exists.
    pub async fn new(cfg: &AdminConfig, db: Arc<Database>, public_default: String, clock: crate::server::Clock) -> anyhow::Result<Arc<Admin>> {
        let role_policy = |role: Role| -> anyhow::Result<AuthorizationPolicy> {
            let mut t = cfg.token.clone();
            t.required_claims.push(RequiredClaim { name: "role".into(), value: Some(role.claim().into()) });
            AuthorizationPolicyConfig::TokenRestricted(t).build_inline().map_err(|e| anyhow::anyhow!("admin.token: {e}"))
        };
        let roles = [(Role::Read, role_policy(Role::Read)?), (Role::Write, role_policy(Role::Write)?), (Role::Keys, role_policy(Role::Keys)?)];
        v2::ensure_protection_key(&db).await?;
        Ok(Arc::new(Admin { db, roles, public_url: cfg.public_url.clone().unwrap_or(public_default).trim_end_matches('/').to_string(), clock }))
    }

    fn now(&self) -> u64 {
        (self.clock)().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }

    /// Checks the bearer token for `role`: the caller's audit identity, or the refusal.
    fn authorize(&self, req: &Request<Body>, peer: Option<SocketAddr>, role: Role) -> Result<Actor, Box<Response>> {
        let token = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
        let policy = &self.roles[role as usize].1;
        match policy.check_token(token, self.now()) {
            Ok(_) => Ok(Actor { identity: subject(token.unwrap_or("")), address: peer.map(|p| p.ip().to_string()).unwrap_or_else(|| "-".into()) }),
            Err(r) => {
                let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::UNAUTHORIZED);
                let msg = if status == StatusCode::FORBIDDEN { format!("this call needs the '{}' role", role.claim()) } else { format!("bearer token refused: {}", r.reason()) };
                let mut resp = v2::odata_error(status, if status == StatusCode::FORBIDDEN { "Forbidden" } else { "Unauthorized" }, &msg);
                if status == StatusCode::UNAUTHORIZED {
                    resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                }
                Err(Box::new(resp))
            }
        }
    }
}

/// The `sub` claim of a verified JWT (for the audit trail), else `token`.
fn subject(token: &str) -> String {
    use base64::Engine;
    let payload = token.split('.').nth(1).and_then(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok());
    let sub = payload.and_then(|p| serde_json::from_slice::<serde_json::Value>(&p).ok()).and_then(|v| v.get("sub").and_then(|s| s.as_str()).map(str::to_string));
    match sub {
        Some(s) if s.len() <= 256 && !s.chars().any(char::is_control) => format!("token:{s}"),
        _ => "token".into(),
    }
}

/// The management router.
pub fn router(admin: Arc<Admin>) -> Router {
    Router::new().fallback(handle).with_state(admin)
}

async fn handle(State(admin): State<Arc<Admin>>, ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request<Body>) -> Response {
    let mut r = v2::handle(&admin, Some(peer), req).await;
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("dataserviceversion", HeaderValue::from_static("3.0;"));
    r
}

/// Serves the management API on `listener` until `shutdown`, over TLS when `tls` is given.
pub async fn serve(listener: tokio::net::TcpListener, admin: Arc<Admin>, tls: Option<Arc<rustls::ServerConfig>>, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    let Some(tls) = tls else {
        return axum::serve(listener, router(admin).into_make_service_with_connect_info::<SocketAddr>()).with_graceful_shutdown(shutdown).await;
    };
    use tower::ServiceExt;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let app = router(admin);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => r?,
            _ = &mut shutdown => return Ok(()),
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            // A handshake that does not finish in 10 s is dropped (management clients are few).
            let Ok(Ok(stream)) = tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp)).await else { return };
            let svc = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(req.map(Body::new))
            });
            let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new()).serve_connection(hyper_util::rt::TokioIo::new(stream), svc).await;
        });
    }
}

impl IntoResponse for v2::ApiError {
    fn into_response(self) -> Response {
        v2::odata_error(self.status, self.code, &self.message)
    }
}
