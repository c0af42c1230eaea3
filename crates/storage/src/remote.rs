//! Remote backends (S3 and S3-compatible endpoints, Azure Blob, Google Cloud Storage) and the typed settings that
//! open them. The library reads no environment: the origin's configuration layer fills in
//! credentials from the config file or the usual environment variables before calling here.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

use crate::{Error, Result};

/// The Azurite emulator's published development account key (not a secret).
const AZURITE_ACCOUNT_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// One remote store. `Debug` never shows secrets.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RemoteSpec {
    /// S3 or an S3-compatible endpoint (path-style requests when `endpoint` is given).
    S3 {
        /// Bucket.
        bucket: String,
        /// Region (`us-east-1` if unsure; S3-compatible servers mostly ignore it).
        region: String,
        /// Endpoint URL for S3-compatible servers (`http://127.0.0.1:5055`); `None` = AWS.
        endpoint: Option<String>,
        /// Allow `http://` endpoints.
        allow_http: bool,
        /// Access key ID.
        access_key_id: Option<String>,
        /// Secret access key.
        secret_access_key: Option<String>,
        /// Session token.
        session_token: Option<String>,
    },
    /// Azure Blob Storage container (or the Azurite emulator).
    Azure {
        /// Storage account (`devstoreaccount1` for the emulator).
        account: String,
        /// Container.
        container: String,
        /// Account key (base64).
        access_key: Option<String>,
        /// SAS token (query string, without `?`).
        sas: Option<String>,
        /// Use the Azurite emulator's well-known account key (at `endpoint` when given, else
        /// at `http://127.0.0.1:10000`).
        use_emulator: bool,
        /// Endpoint URL (e.g. Azurite at a non-default port: `http://127.0.0.1:PORT/devstoreaccount1`).
        endpoint: Option<String>,
        /// Allow `http://` endpoints.
        allow_http: bool,
    },
    /// Google Cloud Storage bucket. Built, but no emulator tests it here.
    Gcs {
        /// Bucket.
        bucket: String,
        /// Service account JSON key file; `None` = the platform's default credentials.
        service_account_path: Option<String>,
    },
}

impl std::fmt::Debug for RemoteSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RemoteSpec::S3 { bucket, region, endpoint, allow_http, .. } => {
                f.debug_struct("S3").field("bucket", bucket).field("region", region).field("endpoint", endpoint).field("allow_http", allow_http).finish_non_exhaustive()
            }
            RemoteSpec::Azure { account, container, use_emulator, endpoint, .. } => {
                f.debug_struct("Azure").field("account", account).field("container", container).field("use_emulator", use_emulator).field("endpoint", endpoint).finish_non_exhaustive()
            }
            RemoteSpec::Gcs { bucket, service_account_path } => f.debug_struct("Gcs").field("bucket", bucket).field("service_account_path", service_account_path).finish(),
        }
    }
}

/// Timeouts, retries and overload protection of remote requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteTiming {
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Timeout of one attempt, from sending the request to the last body byte.
    pub request_timeout: Duration,
    /// Retries of failed safe requests (GET, HEAD, LIST), with exponential backoff and jitter
    /// done by `object_store`: 5xx answers, dropped or refused connections, timeouts.
    pub max_retries: usize,
    /// First backoff before a retry (doubled each time, randomised by `object_store`).
    pub initial_backoff: Duration,
    /// Longest backoff between two attempts.
    pub max_backoff: Duration,
    /// Requests in flight to this store at most; more wait up to `queue_timeout`.
    pub max_in_flight: usize,
    /// How long a request may wait for a slot before it fails as overloaded.
    pub queue_timeout: Duration,
    /// Consecutive failures that open the circuit (0: never).
    pub breaker_failures: u32,
    /// How long an open circuit fails requests fast before one probe is let through.
    pub breaker_cooldown: Duration,
}

impl Default for RemoteTiming {
    fn default() -> Self {
        RemoteTiming {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            max_retries: 2,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            max_in_flight: 256,
            queue_timeout: Duration::from_secs(1),
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(5),
        }
    }
}

/// Counts the HTTP requests a backend sends (first attempts and retries alike), so retries can
/// be told apart from operations: `object_store` retries inside a call and reports neither.
#[derive(Debug)]
struct CountingConnector(Arc<std::sync::atomic::AtomicU64>);

#[derive(Debug)]
struct Counting {
    inner: object_store::client::HttpClient,
    attempts: Arc<std::sync::atomic::AtomicU64>,
}

#[async_trait::async_trait]
impl object_store::client::HttpService for Counting {
    async fn call(&self, req: object_store::client::HttpRequest) -> std::result::Result<object_store::client::HttpResponse, object_store::client::HttpError> {
        self.attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.execute(req).await
    }
}

impl object_store::client::HttpConnector for CountingConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<object_store::client::HttpClient> {
        let inner = object_store::client::ReqwestConnector::default().connect(options)?;
        Ok(object_store::client::HttpClient::new(Counting { inner, attempts: self.0.clone() }))
    }
}

/// Opens the backend `spec` describes (no request is made yet).
pub fn open(spec: &RemoteSpec, timing: RemoteTiming) -> Result<Arc<dyn ObjectStore>> {
    open_counted(spec, timing).map(|(s, _)| s)
}

/// [`open`], with the count of HTTP requests the backend sends (pass it to
/// [`crate::Store::with_counted_route`]: operations and attempts give the retries).
pub fn open_counted(spec: &RemoteSpec, timing: RemoteTiming) -> Result<(Arc<dyn ObjectStore>, Arc<std::sync::atomic::AtomicU64>)> {
    let attempts = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let connector = || CountingConnector(attempts.clone());
    let bad = |e: object_store::Error| Error::Unavailable(format!("{spec:?}: {e}"));
    let retry = RetryConfig {
        max_retries: timing.max_retries,
        retry_timeout: timing.deadline(),
        backoff: BackoffConfig { init_backoff: timing.initial_backoff, max_backoff: timing.max_backoff, base: 2.0 },
    };
    let opts = |allow_http: bool| ClientOptions::new().with_connect_timeout(timing.connect_timeout).with_timeout(timing.request_timeout).with_allow_http(allow_http);
    match spec {
        RemoteSpec::S3 { bucket, region, endpoint, allow_http, access_key_id, secret_access_key, session_token } => {
            let mut b = AmazonS3Builder::new().with_bucket_name(bucket).with_region(region).with_client_options(opts(*allow_http)).with_retry(retry).with_http_connector(connector());
            if let Some(e) = endpoint {
                b = b.with_endpoint(e).with_virtual_hosted_style_request(false);
            }
            if let Some(k) = access_key_id {
                b = b.with_access_key_id(k);
            }
            if let Some(s) = secret_access_key {
                b = b.with_secret_access_key(s);
            }
            if let Some(t) = session_token {
                b = b.with_token(t);
            }
            Ok((Arc::new(b.build().map_err(bad)?), attempts))
        }
        RemoteSpec::Azure { account, container, access_key, sas, use_emulator, endpoint, allow_http } => {
            // object_store's emulator mode ignores the endpoint (it reads the address from an
            // environment variable instead, which a library must not depend on): an emulator
            // at a given endpoint is a plain account at a path-style URL with the well-known key.
            let emulator_at_endpoint = *use_emulator && endpoint.is_some();
            let mut b = MicrosoftAzureBuilder::new()
                .with_account(account)
                .with_container_name(container)
                .with_use_emulator(*use_emulator && !emulator_at_endpoint)
                .with_client_options(opts(*allow_http || *use_emulator))
                .with_retry(retry)
                .with_http_connector(connector());
            if let Some(e) = endpoint {
                b = b.with_endpoint(e.clone());
            }
            if emulator_at_endpoint && access_key.is_none() && sas.is_none() {
                b = b.with_access_key(AZURITE_ACCOUNT_KEY);
            }
            if let Some(k) = access_key {
                b = b.with_access_key(k);
            }
            if let Some(s) = sas {
                b = b.with_config(object_store::azure::AzureConfigKey::SasKey, s);
            }
            Ok((Arc::new(b.build().map_err(bad)?), attempts))
        }
        RemoteSpec::Gcs { bucket, service_account_path } => {
            let mut b = GoogleCloudStorageBuilder::new().with_bucket_name(bucket).with_client_options(opts(false)).with_retry(retry).with_http_connector(connector());
            if let Some(p) = service_account_path {
                b = b.with_service_account_path(p);
            }
            Ok((Arc::new(b.build().map_err(bad)?), attempts))
        }
    }
}
