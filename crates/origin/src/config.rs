//! Configuration: TOML file, then command-line flags, validated once at start-up into typed
//! values. Libraries never read the environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Storage root: a local folder holding asset folders.
    pub root: PathBuf,
    /// Target segment duration in milliseconds (segments are whole source fragments).
    pub segment_duration_ms: u32,
    /// Subtitle formats in MPDs: `both` (default), `webvtt` or `imsc1` (see
    /// [`sealcast_package::DashText`]).
    pub dash_text: DashTextConfig,
    /// Bytes read per request while indexing a file (`moov`, `sidx`, `moof` headers).
    pub index_read_ahead: u64,
    /// Progressive input: a track's chunks closer than this are fetched by one ranged read
    /// (the other tracks' bytes between them read and dropped), farther ones by separate
    /// reads. 0: one read per run of adjacent samples.
    pub source_read_gap: u64,
    /// How local files are read: `pread` (default, safe whatever happens to the files) or
    /// `mmap` (no copy; files must be replaced, never truncated in place, while served).
    pub local_read: LocalReadMode,
    /// Clear fMP4 segments of local files stored clear are sent over plain HTTP/1.1 with
    /// their samples straight from the page cache (`sendfile`, where the kernel can tell what
    /// is cached: Linux 6.5+), not read into memory first. `false`: read and written, as over
    /// TLS and HTTP/2.
    pub send_files: bool,
    /// Segments with fewer source bytes than this are read and written even so: opening the
    /// file, asking what is cached and reading the `moof`s cost a few system calls more than a
    /// fragment-cache hit, which only the copies saved on a large segment pay back (32 KB audio
    /// segments sent from the file: −13 % per core-second; 1 MB video: +25 to +60 %).
    pub send_files_min_bytes: u64,
    /// Cache sizes and lifetimes.
    pub cache: CacheConfig,
    /// `Cache-Control` values sent to players and CDNs.
    pub cache_control: CacheControlConfig,
    /// The catalog (policies and keys): a TOML file or a folder of them. Without one, no asset
    /// has a policy.
    pub catalog: Option<PathBuf>,
    /// The catalog database: `sqlite:///var/lib/sealcast/catalog.db` or `postgres://…`.
    /// Default, when no TOML `catalog` is given: SQLite at `{data_dir}/catalog.db`.
    pub database: Option<String>,
    /// Folder of the embedded database and of the default key-encryption key.
    pub data_dir: PathBuf,
    /// The key-encryption key sealing the database's secrets: `{ local = "/etc/sealcast/kek" }`
    /// (written by `sealcast keys init`) or `{ aws_kms = "arn:aws:kms:…:key/…" }`. Default:
    /// `{data_dir}/kek`, created on first start.
    pub kek: Option<KekConfig>,
    /// Milliseconds between checks of the database catalog's version (PostgreSQL
    /// notifications apply changes at once; this is the safety net).
    pub catalog_poll_ms: u64,
    /// The management API's own listener (`[admin]`; off when absent). It needs the catalog
    /// database.
    pub admin: Option<crate::admin::AdminConfig>,
    /// Serve assets that have no policy in clear. With it off, only assets the catalog lists
    /// are served at all.
    pub allow_clear_without_policy: bool,
    /// Azure Media Services locators: locator ID (the first path segment of
    /// `/{locator}/{name}.ism/manifest`) to asset path under the root. Until the management
    /// API exists, this is how AMS URLs find their asset.
    pub locators: std::collections::BTreeMap<String, String>,
    /// Terminate TLS (HTTPS, HTTP/2 through ALPN) with this certificate and key. Without it
    /// the server speaks plain HTTP (local use, or behind a TLS-terminating proxy).
    pub tls: Option<TlsConfig>,
    /// Remote stores (`[[store]]`), each serving the assets under one path prefix; the
    /// longest prefix wins, other paths come from `root`.
    pub store: Vec<StoreConfig>,
    /// Timeouts, retries and overload protection of the remote stores.
    pub storage: StorageTiming,
    /// Connection limits against slow and idle clients (`[limits]`).
    pub limits: LimitsConfig,
    /// What one asset's files may cost in memory and work, whatever they declare.
    pub content_limits: ContentLimits,
    /// Access control (`[access]`): the default policy of assets the catalog gives none, the
    /// CDN-only origin header, where the viewer's address comes from.
    pub access: crate::access::AccessConfig,
    /// The metrics listener (`[metrics] listen = "0.0.0.0:9464"`; off when absent): Prometheus
    /// scrapes `/metrics` there. Never the public port.
    pub metrics: Option<MetricsConfig>,
    /// One JSON line per request (`[access_log]`; off when absent).
    pub access_log: Option<crate::access_log::AccessLogConfig>,
}

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address of the metrics listener.
    pub listen: SocketAddr,
}

/// `[content_limits]`: bounds on the memory and work one asset may cost, so a hostile or
/// broken file answers a clear 500 instead of taking the process down (issue 11).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContentLimits {
    /// Most bytes the index of one track file may take (parsed `moov`, init segments,
    /// fragment tables, and the sample table of the fragment being read).
    pub index_bytes_per_file: u64,
    /// Most track files one asset folder may hold; over it the asset is refused before any
    /// file is indexed.
    pub files_per_asset: usize,
    /// Longest segment in milliseconds; longer runs of fragments are cut at a fragment
    /// boundary, and a single fragment longer than this is refused.
    pub segment_max_ms: u64,
    /// Most source bytes one segment may span (it is read into memory whole); cut and
    /// refused like `segment_max_ms`.
    pub segment_max_bytes: u64,
    /// How long an asset that failed to index is answered from memory (its error) before it
    /// is listed and indexed again, in milliseconds; doubled after each further failure.
    pub failed_retry_ms: u64,
    /// The longest that back-off grows to, in milliseconds.
    pub failed_retry_max_ms: u64,
}

impl Default for ContentLimits {
    fn default() -> Self {
        let seg = sealcast_package::timeline::SegmentLimits::default();
        ContentLimits {
            index_bytes_per_file: sealcast_package::index::IndexLimits::default().max_bytes,
            files_per_asset: 256,
            segment_max_ms: seg.max_duration_ms,
            segment_max_bytes: seg.max_bytes,
            failed_retry_ms: 1000,
            failed_retry_max_ms: 60_000,
        }
    }
}

impl ContentLimits {
    /// Checks the values against each other and the segment target.
    fn validate(&self, segment_duration_ms: u32) -> anyhow::Result<()> {
        if !(64 << 10..=4 << 30).contains(&self.index_bytes_per_file) {
            bail!("content_limits.index_bytes_per_file must be between 64 KiB and 4 GiB");
        }
        if !(1..=100_000).contains(&self.files_per_asset) {
            bail!("content_limits.files_per_asset must be between 1 and 100000");
        }
        // Below twice the target, ordinary segments (cut on keyframes, a little over the
        // target) would be cut too and the output would change.
        if self.segment_max_ms < 2 * segment_duration_ms as u64 || self.segment_max_ms > 3_600_000 {
            bail!("content_limits.segment_max_ms must be between twice segment_duration_ms and 3600000");
        }
        if !(1 << 20..=4 << 30).contains(&self.segment_max_bytes) {
            bail!("content_limits.segment_max_bytes must be between 1 MiB and 4 GiB");
        }
        if self.failed_retry_ms > self.failed_retry_max_ms || self.failed_retry_max_ms > 3_600_000 {
            bail!("content_limits.failed_retry_ms must be at most failed_retry_max_ms, which must be at most 3600000");
        }
        Ok(())
    }
}

/// `kek = { local = "…" }` or `kek = { aws_kms = "arn:…", region = "…", endpoint = "…" }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KekConfig {
    /// A key file (64 hex digits, mode 0600).
    pub local: Option<PathBuf>,
    /// An AWS KMS key ARN, ID or alias.
    pub aws_kms: Option<String>,
    /// Its region (default `AWS_REGION` / `AWS_DEFAULT_REGION`, else `us-east-1`).
    pub region: Option<String>,
    /// KMS endpoint (default `AWS_ENDPOINT_URL_KMS`, else AWS's).
    pub endpoint: Option<String>,
    /// From `AWS_ACCESS_KEY_ID`.
    #[serde(skip)]
    pub access_key_id: Option<String>,
    /// From `AWS_SECRET_ACCESS_KEY`.
    #[serde(skip)]
    pub secret_access_key: Option<Secret>,
    /// From `AWS_SESSION_TOKEN`.
    #[serde(skip)]
    pub session_token: Option<Secret>,
}

impl KekConfig {
    /// Takes the AWS credentials, region and endpoint the usual variables give.
    pub fn fill_from_env(&mut self, env: &dyn Fn(&str) -> Option<String>) {
        let get = |k: &str| env(k).filter(|v| !v.is_empty());
        if self.aws_kms.is_none() {
            return;
        }
        if self.region.is_none() {
            self.region = get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION"));
        }
        if self.endpoint.is_none() {
            self.endpoint = get("AWS_ENDPOINT_URL_KMS").or_else(|| get("AWS_ENDPOINT_URL"));
        }
        self.access_key_id = get("AWS_ACCESS_KEY_ID");
        self.secret_access_key = get("AWS_SECRET_ACCESS_KEY").map(Secret);
        self.session_token = get("AWS_SESSION_TOKEN").map(Secret);
    }

    /// The key-encryption key it names.
    pub fn source(&self) -> anyhow::Result<crate::catalog::kek::KekSource> {
        use crate::catalog::kek::{KekSource, KmsConfig};
        match (&self.local, &self.aws_kms) {
            (Some(p), None) => Ok(KekSource::Local(p.clone())),
            (None, Some(arn)) => {
                let (Some(id), Some(secret)) = (&self.access_key_id, &self.secret_access_key) else {
                    bail!("kek.aws_kms needs AWS credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)");
                };
                Ok(KekSource::AwsKms(KmsConfig {
                    key_id: arn.clone(),
                    region: self.region.clone().unwrap_or_else(|| "us-east-1".into()),
                    endpoint: self.endpoint.clone(),
                    access_key_id: id.clone(),
                    secret_access_key: zeroize::Zeroizing::new(secret.0.clone()),
                    session_token: self.session_token.as_ref().map(|t| zeroize::Zeroizing::new(t.0.clone())),
                }))
            }
            _ => {
                bail!("kek must name exactly one of `local` (a key file) or `aws_kms` (a KMS key)")
            }
        }
    }
}

/// Which store holds the catalog.
#[derive(Debug, Clone)]
pub enum CatalogStore {
    /// No catalog at all (tests).
    None,
    /// A read-only TOML file or folder.
    Toml(PathBuf),
    /// A database; `create_kek`: the default key file may be created.
    Database { url: String, kek: crate::catalog::kek::KekSource, create_kek: bool },
}

/// A secret from the config (a key or token): deserialised as a plain string, never shown by
/// `Debug`.
#[derive(Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

/// One `[[store]]`: a path prefix and the backend that holds it (paths inside the backend
/// are without the prefix: `vod/movie/a.cmfv` is `movie/a.cmfv` in the bucket).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum StoreConfig {
    /// S3 or an S3-compatible endpoint (path-style requests when `endpoint` is set). Without
    /// keys here, `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN` are
    /// used when set, else the platform's credentials (instance or task role).
    S3 {
        /// URL path prefix, like `vod`.
        prefix: String,
        /// Bucket.
        bucket: String,
        /// Region; default `AWS_REGION` / `AWS_DEFAULT_REGION`, else `us-east-1`.
        region: Option<String>,
        /// Endpoint URL of an S3-compatible server (`http://127.0.0.1:5055`).
        endpoint: Option<String>,
        /// Allow an `http://` endpoint.
        #[serde(default)]
        allow_http: bool,
        /// Access key ID.
        access_key_id: Option<Secret>,
        /// Secret access key.
        secret_access_key: Option<Secret>,
        /// Session token (temporary credentials).
        session_token: Option<Secret>,
    },
    /// Azure Blob Storage container: `access_key`, `sas` or `use_emulator` (Azurite). Without
    /// any, `AZURE_STORAGE_ACCOUNT_KEY` or `AZURE_STORAGE_SAS_TOKEN` from the environment.
    Azure {
        /// URL path prefix.
        prefix: String,
        /// Storage account (`devstoreaccount1` for Azurite).
        account: String,
        /// Container.
        container: String,
        /// Account key (base64).
        access_key: Option<Secret>,
        /// SAS token (query string without `?`).
        sas: Option<Secret>,
        /// Azurite's well-known account key.
        #[serde(default)]
        use_emulator: bool,
        /// Endpoint URL (Azurite elsewhere than 127.0.0.1:10000, or a private endpoint).
        endpoint: Option<String>,
        /// Allow an `http://` endpoint.
        #[serde(default)]
        allow_http: bool,
    },
    /// Google Cloud Storage bucket; `service_account_path` or `GOOGLE_APPLICATION_CREDENTIALS`.
    Gcs {
        /// URL path prefix.
        prefix: String,
        /// Bucket.
        bucket: String,
        /// Service account JSON key file.
        service_account_path: Option<PathBuf>,
    },
}

impl StoreConfig {
    /// The URL path prefix this store serves.
    pub fn prefix(&self) -> &str {
        match self {
            StoreConfig::S3 { prefix, .. } | StoreConfig::Azure { prefix, .. } | StoreConfig::Gcs { prefix, .. } => prefix,
        }
    }

    /// Fills credentials and region left out of the file from the environment (`env` looks a
    /// variable up; the binary passes `std::env::var`). Only the configuration layer calls this.
    pub fn fill_from_env(&mut self, env: &dyn Fn(&str) -> Option<String>) {
        let get = |k: &str| env(k).filter(|v| !v.is_empty());
        match self {
            StoreConfig::S3 { region, access_key_id, secret_access_key, session_token, .. } => {
                if region.is_none() {
                    *region = get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION"));
                }
                if access_key_id.is_none() && secret_access_key.is_none() {
                    *access_key_id = get("AWS_ACCESS_KEY_ID").map(Secret);
                    *secret_access_key = get("AWS_SECRET_ACCESS_KEY").map(Secret);
                    if session_token.is_none() {
                        *session_token = get("AWS_SESSION_TOKEN").map(Secret);
                    }
                }
            }
            StoreConfig::Azure { access_key, sas, use_emulator, .. } => {
                if access_key.is_none() && sas.is_none() && !*use_emulator {
                    *access_key = get("AZURE_STORAGE_ACCOUNT_KEY").map(Secret);
                    if access_key.is_none() {
                        *sas = get("AZURE_STORAGE_SAS_TOKEN").map(Secret);
                    }
                }
            }
            StoreConfig::Gcs { service_account_path, .. } => {
                if service_account_path.is_none() {
                    *service_account_path = get("GOOGLE_APPLICATION_CREDENTIALS").map(PathBuf::from);
                }
            }
        }
    }

    /// Checks the settings and turns them into the storage crate's typed spec.
    pub fn spec(&self) -> anyhow::Result<sealcast_storage::remote::RemoteSpec> {
        use sealcast_storage::remote::RemoteSpec;
        let p = self.prefix();
        if sealcast_storage::AssetPath::parse(&format!("/{p}")).is_err() {
            bail!("[[store]] prefix '{p}' must be a plain folder path like 'vod' or 'vod/archive'");
        }
        let check_endpoint = |e: &Option<String>, allow_http: bool| -> anyhow::Result<()> {
            match e.as_deref() {
                None => Ok(()),
                Some(u) if u.starts_with("https://") => Ok(()),
                Some(u) if u.starts_with("http://") && allow_http => Ok(()),
                Some(u) if u.starts_with("http://") => bail!("[[store]] '{p}': endpoint {u} is plain http; set allow_http = true to use it"),
                Some(u) => {
                    bail!("[[store]] '{p}': endpoint '{u}' must be an http:// or https:// URL")
                }
            }
        };
        let nonempty = |what: &str, v: &str| -> anyhow::Result<()> {
            if v.trim().is_empty() {
                bail!("[[store]] '{p}': {what} must not be empty");
            }
            Ok(())
        };
        let s = |v: &Option<Secret>| v.as_ref().map(|s| s.0.clone());
        Ok(match self {
            StoreConfig::S3 { bucket, region, endpoint, allow_http, access_key_id, secret_access_key, session_token, .. } => {
                nonempty("bucket", bucket)?;
                check_endpoint(endpoint, *allow_http)?;
                if access_key_id.is_some() != secret_access_key.is_some() {
                    bail!("[[store]] '{p}': access_key_id and secret_access_key go together");
                }
                RemoteSpec::S3 {
                    bucket: bucket.clone(),
                    region: region.clone().unwrap_or_else(|| "us-east-1".into()),
                    endpoint: endpoint.clone(),
                    allow_http: *allow_http,
                    access_key_id: s(access_key_id),
                    secret_access_key: s(secret_access_key),
                    session_token: s(session_token),
                }
            }
            StoreConfig::Azure { account, container, access_key, sas, use_emulator, endpoint, allow_http, .. } => {
                nonempty("account", account)?;
                nonempty("container", container)?;
                check_endpoint(endpoint, *allow_http || *use_emulator)?;
                match (access_key.is_some(), sas.is_some(), *use_emulator) {
                    (true, false, false) | (false, true, false) | (false, false, true) => {}
                    (false, false, false) => bail!("[[store]] '{p}': Azure needs one of access_key, sas or use_emulator = true (or AZURE_STORAGE_ACCOUNT_KEY / AZURE_STORAGE_SAS_TOKEN)"),
                    _ => bail!("[[store]] '{p}': give only one of access_key, sas and use_emulator"),
                }
                RemoteSpec::Azure {
                    account: account.clone(),
                    container: container.clone(),
                    access_key: s(access_key),
                    sas: s(sas),
                    use_emulator: *use_emulator,
                    endpoint: endpoint.clone(),
                    allow_http: *allow_http,
                }
            }
            StoreConfig::Gcs { bucket, service_account_path, .. } => {
                nonempty("bucket", bucket)?;
                if let Some(f) = service_account_path {
                    if !f.is_file() {
                        bail!("[[store]] '{p}': service_account_path {} is not a file", f.display());
                    }
                }
                RemoteSpec::Gcs { bucket: bucket.clone(), service_account_path: service_account_path.as_ref().map(|f| f.display().to_string()) }
            }
        })
    }
}

/// `[storage]`: how remote stores are read. Every value has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageTiming {
    /// TCP/TLS connect timeout, ms.
    pub connect_timeout_ms: u64,
    /// Timeout of one request attempt, first byte sent to last byte read, ms.
    pub read_timeout_ms: u64,
    /// Retries of a failed read, HEAD or listing (5xx, dropped/refused connection, timeout).
    pub max_retries: u32,
    /// First backoff before a retry, ms (doubles, with jitter).
    pub retry_backoff_ms: u64,
    /// Longest backoff between retries, ms.
    pub retry_max_backoff_ms: u64,
    /// Requests in flight per store at most.
    pub max_in_flight: u32,
    /// How long a request may wait for one of those slots before answering 503, ms.
    pub queue_timeout_ms: u64,
    /// Consecutive failures after which a store is considered down (0: never).
    pub breaker_failures: u32,
    /// How long a store considered down answers 503 at once before it is tried again, ms.
    pub breaker_cooldown_ms: u64,
}

impl Default for StorageTiming {
    fn default() -> Self {
        let d = sealcast_storage::remote::RemoteTiming::default();
        StorageTiming {
            connect_timeout_ms: d.connect_timeout.as_millis() as u64,
            read_timeout_ms: d.request_timeout.as_millis() as u64,
            max_retries: d.max_retries as u32,
            retry_backoff_ms: d.initial_backoff.as_millis() as u64,
            retry_max_backoff_ms: d.max_backoff.as_millis() as u64,
            max_in_flight: d.max_in_flight as u32,
            queue_timeout_ms: d.queue_timeout.as_millis() as u64,
            breaker_failures: d.breaker_failures,
            breaker_cooldown_ms: d.breaker_cooldown.as_millis() as u64,
        }
    }
}

impl StorageTiming {
    /// Checked typed values.
    pub fn timing(&self) -> anyhow::Result<sealcast_storage::remote::RemoteTiming> {
        use std::time::Duration;
        let ms = |name: &str, v: u64, lo: u64, hi: u64| -> anyhow::Result<Duration> {
            if !(lo..=hi).contains(&v) {
                bail!("storage.{name} must be between {lo} and {hi} ms");
            }
            Ok(Duration::from_millis(v))
        };
        if self.max_retries > 10 {
            bail!("storage.max_retries must be at most 10");
        }
        if !(1..=100_000).contains(&self.max_in_flight) {
            bail!("storage.max_in_flight must be between 1 and 100000");
        }
        Ok(sealcast_storage::remote::RemoteTiming {
            connect_timeout: ms("connect_timeout_ms", self.connect_timeout_ms, 10, 60_000)?,
            request_timeout: ms("read_timeout_ms", self.read_timeout_ms, 10, 600_000)?,
            max_retries: self.max_retries as usize,
            initial_backoff: ms("retry_backoff_ms", self.retry_backoff_ms, 1, 60_000)?,
            max_backoff: ms("retry_max_backoff_ms", self.retry_max_backoff_ms.max(self.retry_backoff_ms), 1, 60_000)?,
            max_in_flight: self.max_in_flight as usize,
            queue_timeout: ms("queue_timeout_ms", self.queue_timeout_ms, 0, 60_000)?,
            breaker_failures: self.breaker_failures,
            breaker_cooldown: ms("breaker_cooldown_ms", self.breaker_cooldown_ms, 1, 600_000)?,
        })
    }
}

/// `[limits]`: connection limits on both listeners (see [`crate::listen`]). Every value has a
/// safe default; times are in milliseconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Open connections at most; one more is accepted and closed at once.
    pub max_connections: u32,
    /// HTTP/1: a request head must arrive within this.
    pub header_read_timeout_ms: u64,
    /// A connection with no request in flight for this long is closed (also bounds the time to
    /// the first request, HTTP/2 included).
    pub idle_timeout_ms: u64,
    /// Requests carrying a body (`POST /clearkey`) must be read and answered within this (408).
    pub request_timeout_ms: u64,
    /// A response or socket write without progress for this long closes the connection.
    pub write_timeout_ms: u64,
    /// TLS handshakes must finish within this.
    pub tls_handshake_timeout_ms: u64,
    /// On SIGTERM, readiness answers 503 at once and everything is served as before for this
    /// long (load balancers and endpoint lists catch up), then no new connection is accepted.
    pub drain_delay_ms: u64,
    /// Then in-flight requests get this long before every connection is closed.
    pub drain_timeout_ms: u64,
    /// HTTP/2 concurrent streams per connection.
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2 keep-alive ping interval.
    pub h2_keep_alive_interval_ms: u64,
    /// HTTP/2: a ping unanswered for this long closes the connection.
    pub h2_keep_alive_timeout_ms: u64,
    /// HTTP/2 header list size at most, bytes.
    pub max_header_bytes: u32,
    /// Bytes of built responses one connection may hold before it is sent; more answer 503.
    pub max_connection_response_bytes: u64,
    /// The same over all connections: with the write timeout, what bounds the memory slow
    /// readers can pin.
    pub max_response_bytes: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let d = crate::listen::Limits::default();
        let ms = |d: std::time::Duration| d.as_millis() as u64;
        LimitsConfig {
            max_connections: d.max_connections as u32,
            header_read_timeout_ms: ms(d.header_read_timeout),
            idle_timeout_ms: ms(d.idle_timeout),
            request_timeout_ms: ms(d.request_timeout),
            write_timeout_ms: ms(d.write_timeout),
            tls_handshake_timeout_ms: ms(d.tls_handshake_timeout),
            drain_delay_ms: ms(d.drain_delay),
            drain_timeout_ms: ms(d.drain_timeout),
            h2_max_concurrent_streams: d.h2_max_concurrent_streams,
            h2_keep_alive_interval_ms: ms(d.h2_keep_alive_interval),
            h2_keep_alive_timeout_ms: ms(d.h2_keep_alive_timeout),
            max_header_bytes: d.max_header_bytes,
            max_connection_response_bytes: d.max_connection_response_bytes,
            max_response_bytes: d.max_response_bytes,
        }
    }
}

impl LimitsConfig {
    /// Checked typed values. Zero is refused everywhere: every limit is on.
    pub fn limits(&self) -> anyhow::Result<crate::listen::Limits> {
        use std::time::Duration;
        let ms = |name: &str, v: u64, lo: u64, hi: u64| -> anyhow::Result<Duration> {
            if !(lo..=hi).contains(&v) {
                bail!("limits.{name} must be between {lo} and {hi} ms");
            }
            Ok(Duration::from_millis(v))
        };
        if !(1..=1_000_000).contains(&self.max_connections) {
            bail!("limits.max_connections must be between 1 and 1000000");
        }
        if !(1..=1000).contains(&self.h2_max_concurrent_streams) {
            bail!("limits.h2_max_concurrent_streams must be between 1 and 1000");
        }
        if !(1024..=1 << 20).contains(&self.max_header_bytes) {
            bail!("limits.max_header_bytes must be between 1024 and 1048576");
        }
        // Any value works (one response always fits); the upper bound only catches typos.
        for (name, v) in [("max_connection_response_bytes", self.max_connection_response_bytes), ("max_response_bytes", self.max_response_bytes)] {
            if !(1..=1 << 40).contains(&v) {
                bail!("limits.{name} must be between 1 and 2^40");
            }
        }
        Ok(crate::listen::Limits {
            max_connections: self.max_connections as usize,
            header_read_timeout: ms("header_read_timeout_ms", self.header_read_timeout_ms, 50, 600_000)?,
            idle_timeout: ms("idle_timeout_ms", self.idle_timeout_ms, 50, 3_600_000)?,
            request_timeout: ms("request_timeout_ms", self.request_timeout_ms, 50, 600_000)?,
            write_timeout: ms("write_timeout_ms", self.write_timeout_ms, 50, 600_000)?,
            tls_handshake_timeout: ms("tls_handshake_timeout_ms", self.tls_handshake_timeout_ms, 50, 600_000)?,
            drain_delay: ms("drain_delay_ms", self.drain_delay_ms, 0, 600_000)?,
            drain_timeout: ms("drain_timeout_ms", self.drain_timeout_ms, 0, 600_000)?,
            h2_max_concurrent_streams: self.h2_max_concurrent_streams,
            h2_keep_alive_interval: ms("h2_keep_alive_interval_ms", self.h2_keep_alive_interval_ms, 50, 3_600_000)?,
            h2_keep_alive_timeout: ms("h2_keep_alive_timeout_ms", self.h2_keep_alive_timeout_ms, 50, 600_000)?,
            max_header_bytes: self.max_header_bytes,
            max_connection_response_bytes: self.max_connection_response_bytes,
            max_response_bytes: self.max_response_bytes,
        })
    }
}

/// TLS certificate and key files (PEM).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// See [`Config::local_read`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocalReadMode {
    /// `pread` into a fresh buffer.
    #[default]
    Pread,
    /// Memory-mapped files.
    Mmap,
}

/// Cache settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Byte budget of file indexes (init segments and fragment tables).
    pub index_bytes: u64,
    /// Byte budget of built assets with their cached manifests.
    pub asset_bytes: u64,
    /// Seconds an asset's file listing is trusted before storage is asked again; a changed
    /// file is picked up after at most this long.
    pub asset_ttl_secs: u64,
    /// Milliseconds an unknown asset (404) is remembered, so repeated requests for it do not
    /// each list storage (0: not remembered).
    pub negative_ttl_ms: u64,
    /// Byte budget of hot source fragments (clear segment bytes as read from storage, before
    /// any output encryption), so a segment many players ask for is read once (0: no cache).
    /// Which misses it takes: `sealcast_storage::Store::read_fragment`.
    pub fragment_bytes: u64,
}

/// Cache-Control header values.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheControlConfig {
    /// For media and init segments (immutable for a given source file).
    pub segments: String,
    /// For manifests and playlists.
    pub manifests: String,
}

/// `dash_text`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DashTextConfig {
    /// WebVTT and IMSC1 in fMP4.
    Both,
    /// WebVTT only.
    Webvtt,
    /// IMSC1 in fMP4 only.
    Imsc1,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".parse().expect("literal address parses"),
            root: default_root(),
            segment_duration_ms: 2000,
            dash_text: DashTextConfig::Both,
            index_read_ahead: 64 * 1024,
            source_read_gap: sealcast_package::asset::DEFAULT_READ_GAP,
            local_read: LocalReadMode::default(),
            send_files: true,
            send_files_min_bytes: 256 * 1024,
            cache: CacheConfig::default(),
            cache_control: CacheControlConfig::default(),
            locators: Default::default(),
            catalog: None,
            database: None,
            data_dir: PathBuf::from("sealcast-data"),
            kek: None,
            catalog_poll_ms: 250,
            admin: None,
            allow_clear_without_policy: true,
            tls: None,
            store: Vec::new(),
            storage: StorageTiming::default(),
            limits: LimitsConfig::default(),
            content_limits: ContentLimits::default(),
            access: Default::default(),
            metrics: None,
            access_log: None,
        }
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { index_bytes: 256 << 20, asset_bytes: 64 << 20, asset_ttl_secs: 5, negative_ttl_ms: 2000, fragment_bytes: 256 << 20 }
    }
}

impl Default for CacheControlConfig {
    fn default() -> Self {
        CacheControlConfig { segments: "public, max-age=31536000, immutable".into(), manifests: "public, max-age=5".into() }
    }
}

/// The repo's fixtures when run from a checkout, else the current folder.
fn default_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
    if here.is_dir() {
        here
    } else {
        PathBuf::from(".")
    }
}

impl Config {
    /// Reads a TOML file.
    pub fn from_file(p: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(p).with_context(|| format!("reading config {}", p.display()))?;
        let mut cfg: Config = toml::from_str(&text).with_context(|| format!("parsing config {}", p.display()))?;
        // Key files of the default access policy are relative to the config file, as the
        // catalog's are to the catalog file.
        let dir = p.parent().unwrap_or(Path::new("."));
        for k in cfg.access.default.iter_mut().flat_map(|d| d.cloudfront.iter_mut()).flat_map(|c| c.keys.iter_mut()) {
            if let Some(f) = k.pem_file.as_mut().filter(|f| f.is_relative()) {
                *f = dir.join(&*f);
            }
        }
        Ok(cfg)
    }

    /// Checks values that serde cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !self.root.is_dir() {
            bail!("storage root {} is not a folder", self.root.display());
        }
        if !(100..=60_000).contains(&self.segment_duration_ms) {
            bail!("segment_duration_ms must be between 100 and 60000");
        }
        if self.source_read_gap > 64 << 20 {
            bail!("source_read_gap must be at most 64 MiB");
        }
        if !(1024..=64 << 20).contains(&self.index_read_ahead) {
            bail!("index_read_ahead must be between 1 KiB and 64 MiB");
        }
        for (id, asset) in &self.locators {
            let ok_id = !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok_id {
                bail!("locator ID '{id}' must be 1-128 letters, digits, '-' or '_'");
            }
            if sealcast_storage::AssetPath::parse(&format!("/{asset}")).is_err() {
                bail!("locator '{id}' points at '{asset}', which is not a plain path under the root");
            }
        }
        for (n, v) in [("segments", &self.cache_control.segments), ("manifests", &self.cache_control.manifests)] {
            if http::HeaderValue::from_str(v).is_err() {
                bail!("cache_control.{n} is not a valid header value");
            }
        }
        if self.cache.negative_ttl_ms > 60_000 {
            bail!("cache.negative_ttl_ms must be at most 60000");
        }
        self.content_limits.validate(self.segment_duration_ms)?;
        if !(50..=60_000).contains(&self.catalog_poll_ms) {
            bail!("catalog_poll_ms must be between 50 and 60000");
        }
        if let (Some(a), Ok(CatalogStore::Toml(_))) = (&self.admin, self.catalog_store()) {
            bail!("[admin] (the management API on {}) needs the catalog database, not a TOML catalog", a.listen);
        }
        if self.admin.as_ref().is_some_and(|a| a.listen == self.listen) {
            bail!("[admin] listen must differ from the public listen address");
        }
        self.catalog_store()?;
        self.storage.timing()?;
        self.limits.limits()?;
        crate::access::Access::new(&self.access, |p| std::fs::read_to_string(p))?;
        if let Some(a) = &self.access_log {
            a.check()?;
        }
        if let Some(m) = &self.metrics {
            // Port 0 picks a free port for each listener: never the same one.
            if m.listen.port() != 0 && (m.listen == self.listen || self.admin.as_ref().is_some_and(|a| a.listen == m.listen)) {
                bail!("metrics.listen must differ from listen and admin.listen: metrics are never served on the public port");
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for s in &self.store {
            s.spec()?;
            if !seen.insert(s.prefix()) {
                bail!("two [[store]] entries have the prefix '{}'", s.prefix());
            }
        }
        Ok(())
    }

    /// Packaging options: the segment target and `[content_limits]`' segment caps.
    pub fn package_options(&self) -> sealcast_package::PackageOptions {
        let l = &self.content_limits;
        sealcast_package::PackageOptions {
            segment_target_ms: self.segment_duration_ms,
            segment_limits: sealcast_package::timeline::SegmentLimits { max_duration_ms: l.segment_max_ms, max_bytes: l.segment_max_bytes },
            read_gap: self.source_read_gap,
            dash_text: match self.dash_text {
                DashTextConfig::Both => sealcast_package::DashText::Both,
                DashTextConfig::Webvtt => sealcast_package::DashText::WebVtt,
                DashTextConfig::Imsc1 => sealcast_package::DashText::Imsc1,
            },
        }
    }

    /// Fills what `[[store]]` entries leave out from the environment (credentials, region);
    /// called once by the binary, before [`Config::validate`].
    pub fn fill_from_env(&mut self, env: &dyn Fn(&str) -> Option<String>) {
        for s in &mut self.store {
            s.fill_from_env(env);
        }
        if let Some(k) = &mut self.kek {
            k.fill_from_env(env);
        }
    }

    /// Where the catalog is: the TOML `catalog`, the `database`, or by default SQLite in
    /// `data_dir` with the key-encryption key beside it.
    pub fn catalog_store(&self) -> anyhow::Result<CatalogStore> {
        match (&self.catalog, &self.database) {
            (Some(_), Some(_)) => bail!("give either `catalog` (a read-only TOML catalog) or `database`, not both; `sealcast catalog import` moves a TOML catalog into the database"),
            (Some(p), None) => Ok(CatalogStore::Toml(p.clone())),
            (None, db) => {
                let url = db.clone().unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("catalog.db").display()));
                let (kek, create_kek) = match &self.kek {
                    Some(k) => (k.source()?, false),
                    None => (crate::catalog::kek::KekSource::Local(self.data_dir.join("kek")), true),
                };
                Ok(CatalogStore::Database { url, kek, create_kek })
            }
        }
    }

    /// The local root with every `[[store]]` routed in, each guarded by `[storage]`. Opening
    /// makes no request; a store that is down shows up as 503s, not as a failed start.
    pub fn open_store(&self, mode: sealcast_storage::LocalRead) -> anyhow::Result<sealcast_storage::Store> {
        let timing = self.storage.timing()?;
        let mut store = sealcast_storage::Store::local_with(&self.root, mode)?;
        for s in &self.store {
            let (backend, attempts) = sealcast_storage::remote::open_counted(&s.spec()?, timing).with_context(|| format!("[[store]] '{}'", s.prefix()))?;
            store = store.with_counted_route(s.prefix(), backend, timing, attempts)?;
        }
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn example_config_parses() {
        let c: Config = toml::from_str(include_str!("../../../deploy/sealcast.example.toml")).unwrap();
        assert_eq!(c.segment_duration_ms, 2000);
    }

    #[test]
    fn deploy_configs_parse() {
        for text in [include_str!("../../../deploy/kubernetes/base/sealcast.toml"), include_str!("../../../deploy/kubernetes/overlays/example/sealcast.toml")] {
            let c: Config = toml::from_str(text).unwrap();
            assert_eq!(c.metrics.map(|m| m.listen.port()), Some(9464));
            let a = c.access_log.unwrap();
            assert!(!a.check().unwrap().is_empty());
            let l = c.limits.limits().unwrap();
            assert_eq!((l.drain_delay.as_millis(), l.drain_timeout.as_millis()), (2000, 10000));
        }
    }

    #[test]
    fn example_catalog_loads() {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/catalog.example.toml");
        let c = crate::catalog::TomlCatalog::load(&p).unwrap();
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn stores_parse_validate_and_fill_from_env() {
        let text = r#"
            [[store]]
            prefix = "vod"
            kind = "s3"
            bucket = "media"
            endpoint = "http://127.0.0.1:5055"
            allow_http = true
            [[store]]
            prefix = "archive"
            kind = "azure"
            account = "devstoreaccount1"
            container = "media"
            use_emulator = true
            [[store]]
            prefix = "gcs"
            kind = "gcs"
            bucket = "b"
            [storage]
            read_timeout_ms = 500
            max_retries = 1
        "#;
        let mut c: Config = toml::from_str(text).unwrap();
        c.root = std::env::temp_dir();
        let env = |k: &str| match k {
            "AWS_ACCESS_KEY_ID" => Some("AKID".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("SECRET".to_string()),
            _ => None,
        };
        c.fill_from_env(&env);
        c.validate().unwrap();
        assert!(!format!("{c:?}").contains("SECRET"), "secrets must not show in Debug");
        let Some(StoreConfig::S3 { access_key_id, region, .. }) = c.store.first() else { panic!("first store is S3") };
        assert_eq!((access_key_id.as_ref().map(|s| s.0.as_str()), region.as_deref()), (Some("AKID"), None));
        assert_eq!(c.storage.timing().unwrap().request_timeout, std::time::Duration::from_millis(500));
        c.open_store(sealcast_storage::LocalRead::Pread).unwrap();

        let bad = |t: &str| {
            let r = toml::from_str::<Config>(t).map_err(|e| e.to_string()).and_then(|mut c: Config| {
                c.root = std::env::temp_dir();
                c.validate().map_err(|e| e.to_string())
            });
            r.expect_err(t)
        };
        assert!(bad("[[store]]\nprefix = \"v\"\nkind = \"s3\"\nbucket = \"b\"\nbogus = 1").contains("bogus"));
        assert!(bad("[[store]]\nprefix = \"v\"\nkind = \"ftp\"").contains("ftp"));
        assert!(bad("[[store]]\nprefix = \"../v\"\nkind = \"s3\"\nbucket = \"b\"").contains("plain folder path"));
        assert!(bad("[[store]]\nprefix = \"v\"\nkind = \"s3\"\nbucket = \"b\"\nendpoint = \"http://x\"").contains("allow_http"));
        assert!(bad("[[store]]\nprefix = \"v\"\nkind = \"azure\"\naccount = \"a\"\ncontainer = \"c\"").contains("access_key, sas or use_emulator"));
        assert!(bad("[[store]]\nprefix = \"v\"\nkind = \"s3\"\nbucket = \"b\"\n[[store]]\nprefix = \"v\"\nkind = \"s3\"\nbucket = \"c\"").contains("two [[store]]"));
        assert!(bad("[storage]\nread_timeout_ms = 0").contains("read_timeout_ms"));
    }

    #[test]
    fn limits_parse_validate_and_refuse_unknown_fields() {
        let c: Config = toml::from_str("[limits]\nmax_connections = 10\nwrite_timeout_ms = 300").unwrap();
        let l = c.limits.limits().unwrap();
        assert_eq!((l.max_connections, l.write_timeout), (10, std::time::Duration::from_millis(300)));
        assert_eq!(LimitsConfig::default().limits().unwrap(), crate::listen::Limits::default());
        assert!(toml::from_str::<Config>("[limits]\nbogus = 1").unwrap_err().to_string().contains("bogus"));
        for bad in ["max_connections = 0", "idle_timeout_ms = 0", "h2_max_concurrent_streams = 0", "max_header_bytes = 10", "write_timeout_ms = 999999999", "max_response_bytes = 0"] {
            let c: Config = toml::from_str(&format!("[limits]\n{bad}")).unwrap();
            let e = c.limits.limits().expect_err(bad).to_string();
            assert!(e.contains(bad.split(' ').next().unwrap()), "{bad}: {e}");
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(toml::from_str::<Config>("listen = \"127.0.0.1:1\"\nbogus = 1").is_err());
        let c: Config = toml::from_str("[cache]\nindex_bytes = 1024\n[cache_control]\nmanifests = \"no-cache\"").unwrap();
        assert_eq!((c.cache.index_bytes, c.cache_control.manifests.as_str()), (1024, "no-cache"));
        assert!(toml::from_str::<Config>("[content_limits]\nbogus = 1").is_err());
    }

    #[test]
    fn content_limits_parse_and_validate() {
        let parse = |t: &str| {
            let mut c: Config = toml::from_str(t).map_err(|e| e.to_string())?;
            c.root = std::env::temp_dir();
            c.validate().map_err(|e| e.to_string())?;
            Ok::<_, String>(c)
        };
        let c = parse("[content_limits]\nfiles_per_asset = 8\nsegment_max_bytes = 2097152").unwrap();
        assert_eq!((c.content_limits.files_per_asset, c.package_options().segment_limits.max_bytes), (8, 2 << 20));
        assert_eq!(c.package_options().segment_target_ms, 2000);
        assert!(parse("[content_limits]\nfiles_per_asset = 0").unwrap_err().contains("files_per_asset"));
        assert!(parse("[content_limits]\nsegment_max_ms = 3000").unwrap_err().contains("segment_max_ms"));
        assert!(parse("[content_limits]\nindex_bytes_per_file = 10").unwrap_err().contains("index_bytes_per_file"));
        assert!(parse("[content_limits]\nfailed_retry_ms = 70000").unwrap_err().contains("failed_retry_ms"));
    }
}
