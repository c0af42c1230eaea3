//! `sealcast`: the just-in-time streaming origin.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use sealcast_origin::{catalog, config, ingest, inspect, server};

// Many small, short-lived allocations per request (headers, paths): mimalloc measured faster
// than glibc malloc for them in the load benchmark (see `alloc` for how it is called).
#[global_allocator]
static GLOBAL: sealcast_origin::alloc::Mimalloc = sealcast_origin::alloc::Mimalloc;

/// A just-in-time streaming origin: one fMP4/CMAF copy in storage, DASH and HLS on request.
#[derive(Parser)]
#[command(name = "sealcast", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve assets over HTTP.
    Serve {
        /// TOML configuration file.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Listen address (overrides the config).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Storage root folder (overrides the config).
        #[arg(long)]
        root: Option<PathBuf>,
        /// Metrics listener address (overrides `[metrics] listen`).
        #[arg(long)]
        metrics: Option<std::net::SocketAddr>,
        /// Log as JSON lines.
        #[arg(long)]
        log_json: bool,
    },
    /// Check track files (and an optional .ism), upload them as one asset, optionally
    /// storage-encrypted at rest, and record the asset in the catalog.
    Ingest {
        /// Track files (.mp4 .cmfv .cmfa .ismv .isma) and optionally one .ism.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Destination asset path under the storage root, like `vod/movie`.
        #[arg(long)]
        asset: String,
        /// Storage root folder to write to (overrides the config's `root`).
        #[arg(long)]
        root: Option<PathBuf>,
        /// Configuration file: its `root` and `[[store]]` routes say where the asset goes
        /// (e.g. `--asset vod/movie` into the S3 bucket serving `vod`).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Encrypt the files at rest (AES-256-CTR, fresh key, random IV per file).
        #[arg(long)]
        encrypt: bool,
        /// Catalog TOML file to record the asset (and its storage key) in. Without it the
        /// asset is recorded in the configured catalog (the database by default) when it is
        /// encrypted or published, or a configuration is given.
        #[arg(long)]
        catalog: Option<PathBuf>,
        /// DASH delivery to record (NoDynamicEncryption, DynamicCommonEncryption, …). An asset
        /// in the catalog serves only the protocols it names.
        #[arg(long, value_name = "DELIVERY")]
        dash: Option<catalog::Delivery>,
        /// HLS delivery to record.
        #[arg(long, value_name = "DELIVERY")]
        hls: Option<catalog::Delivery>,
        /// Smooth Streaming delivery to record.
        #[arg(long, value_name = "DELIVERY")]
        smooth: Option<catalog::Delivery>,
    },
    /// Write sidecar indexes for track files already in storage (local, S3, Azure Blob,
    /// GCS), so that fragmented files with neither sidx nor mfra index in one request instead
    /// of a walk over every fragment. Files that index cheaply without one are left alone.
    Index {
        /// Track files as storage paths under the root, like `vod/movie/video_720p.cmfv`.
        #[arg(required = true)]
        files: Vec<String>,
        /// Storage root folder (overrides the config's `root`).
        #[arg(long)]
        root: Option<PathBuf>,
        /// Configuration file: its `root` and `[[store]]` routes say where the files are.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Write a sidecar even for files with a sidx or an mfra.
        #[arg(long)]
        force: bool,
    },
    /// Inspect and change the catalog.
    Catalog {
        #[command(subcommand)]
        cmd: CatalogCmd,
    },
    /// Common management operations through the native API of a running origin's `[admin]`
    /// listener (token from `--token` or `SEALCAST_ADMIN_TOKEN`).
    Admin {
        /// The management listener.
        #[arg(long, default_value = "http://127.0.0.1:8081")]
        url: String,
        /// Bearer token (default: `SEALCAST_ADMIN_TOKEN`).
        #[arg(long)]
        token: Option<String>,
        #[command(subcommand)]
        cmd: AdminCmd,
    },
    /// Key-encryption keys of the catalog database.
    Keys {
        #[command(subcommand)]
        cmd: KeysCmd,
    },
    /// Print the box tree and fragment table of a track file.
    Inspect {
        /// The file.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum CatalogCmd {
    /// Print, per asset (the catalog's, and those found in storage) and protocol, what will be
    /// served: clear, the encryption scheme, or blocked (with why).
    Check {
        /// TOML configuration file (its `catalog`, `root`, `[[store]]` routes and
        /// `allow_clear_without_policy`).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Storage root folder (overrides the config).
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// Import a TOML catalog file or folder into the database, in one transaction:
    /// idempotent, merges by asset path, locator ID and policy name, prints what changed.
    Import {
        /// TOML catalog file, or folder of them.
        source: PathBuf,
        /// Configuration file (its `database` and `kek`; default: the embedded database).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Print the database catalog as TOML; keys left out unless --with-keys (then sealed,
    /// importable where the same key-encryption key is configured).
    Export {
        /// Include keys, sealed.
        #[arg(long)]
        with_keys: bool,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Print the audit trail of catalog changes.
    Audit {
        /// How many of the latest rows.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Create or change a streaming locator (its URLs answer from start to expiry).
    Locator {
        /// Locator ID (the first segment of `/{locator}/{name}.ism/…`).
        #[arg(long)]
        id: String,
        /// Asset path.
        #[arg(long)]
        asset: String,
        /// RFC 3339 start (default: now on).
        #[arg(long)]
        start: Option<String>,
        /// RFC 3339 expiry (default: never).
        #[arg(long)]
        expiry: Option<String>,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Delete an asset's entry or a locator.
    Delete {
        /// Asset path.
        #[arg(long, conflicts_with = "locator")]
        asset: Option<String>,
        /// Locator ID.
        #[arg(long)]
        locator: Option<String>,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AdminCmd {
    /// List assets.
    Assets,
    /// Create (or replace) an asset's entry for a storage path.
    AssetCreate {
        /// Asset folder path under the storage root.
        path: String,
        #[arg(long, value_name = "DELIVERY")]
        dash: Option<String>,
        #[arg(long, value_name = "DELIVERY")]
        hls: Option<String>,
        #[arg(long, value_name = "DELIVERY")]
        smooth: Option<String>,
    },
    /// Give an asset its keys from a CPIX 2.3 file.
    AssetKeys {
        path: String,
        #[arg(long)]
        cpix: PathBuf,
    },
    /// Attach an authorization policy to an asset's keys.
    AssetPolicy {
        path: String,
        #[arg(long)]
        authorization: String,
    },
    /// Publish an asset under a streaming locator.
    Publish {
        path: String,
        #[arg(long)]
        locator: String,
        #[arg(long)]
        start: Option<String>,
        #[arg(long)]
        expiry: Option<String>,
    },
    /// Remove a streaming locator.
    Unpublish {
        #[arg(long)]
        locator: String,
    },
}

/// Runs one `sealcast admin` operation against the native API.
fn admin_cmd(url: String, token: Option<String>, cmd: AdminCmd) -> anyhow::Result<()> {
    let token = token.or_else(|| std::env::var("SEALCAST_ADMIN_TOKEN").ok()).context("give --token or set SEALCAST_ADMIN_TOKEN")?;
    let base = format!("{}/v1", url.trim_end_matches('/'));
    let enc = |p: &str| percent_encoding::utf8_percent_encode(p, percent_encoding::NON_ALPHANUMERIC).to_string();
    runtime()?.block_on(async move {
        let client = reqwest::Client::new();
        let send = |m: reqwest::Method, path: String, body: Option<(Vec<u8>, &'static str)>| {
            let mut r = client.request(m, format!("{base}/{path}")).bearer_auth(&token);
            if let Some((b, ct)) = body {
                r = r.header("content-type", ct).body(b);
            }
            async move {
                let resp = r.send().await.context("calling the management API")?;
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                if !status.is_success() {
                    anyhow::bail!("{status}: {text}");
                }
                anyhow::Ok(text)
            }
        };
        let out = match cmd {
            AdminCmd::Assets => send(reqwest::Method::GET, "assets".into(), None).await?,
            AdminCmd::AssetCreate { path, dash, hls, smooth } => {
                let body = serde_json::json!({ "dash": dash, "hls": hls, "smooth": smooth });
                send(reqwest::Method::PUT, format!("assets/{}", enc(&path)), Some((body.to_string().into_bytes(), "application/json"))).await?
            }
            AdminCmd::AssetKeys { path, cpix } => {
                let xml = std::fs::read(&cpix).with_context(|| format!("reading {}", cpix.display()))?;
                send(reqwest::Method::PUT, format!("assets/{}/cpix", enc(&path)), Some((xml, "application/xml"))).await?
            }
            AdminCmd::AssetPolicy { path, authorization } => {
                let current = send(reqwest::Method::GET, format!("assets/{}", enc(&path)), None).await?;
                let mut a: serde_json::Value = serde_json::from_str(&current)?;
                let obj = a.as_object_mut().context("not an asset")?;
                for k in ["path", "cpix", "storage_encrypted"] {
                    obj.remove(k);
                }
                obj.insert("authorization".into(), serde_json::json!(authorization));
                send(reqwest::Method::PUT, format!("assets/{}", enc(&path)), Some((a.to_string().into_bytes(), "application/json"))).await?
            }
            AdminCmd::Publish { path, locator, start, expiry } => {
                let body = serde_json::json!({ "asset": path, "start": start, "expiry": expiry });
                send(reqwest::Method::PUT, format!("locators/{}", enc(&locator)), Some((body.to_string().into_bytes(), "application/json"))).await?
            }
            AdminCmd::Unpublish { locator } => send(reqwest::Method::DELETE, format!("locators/{}", enc(&locator)), None).await?,
        };
        if !out.is_empty() {
            println!("{out}");
        }
        anyhow::Ok(())
    })
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Write a new random 256-bit key-encryption key file (mode 0600); never overwrites.
    Init {
        /// Where (e.g. /etc/sealcast/kek).
        #[arg(long)]
        kek: PathBuf,
    },
    /// Make a new protection key (RSA-2048 + X.509) the one the management API hands out;
    /// older ones stay for keys uploaded to them.
    RotateProtectionKey {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Re-seal every secret of the database under a new key-encryption key, in one
    /// transaction; then point `kek` in the configuration at the new one.
    RotateKek {
        /// The new key file (made with `keys init`).
        #[arg(long, conflicts_with = "new_aws_kms")]
        new_local: Option<PathBuf>,
        /// The new AWS KMS key.
        #[arg(long)]
        new_aws_kms: Option<String>,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn load_config(path: &Option<PathBuf>) -> anyhow::Result<config::Config> {
    let mut cfg = match path {
        Some(p) => config::Config::from_file(p)?,
        None => config::Config::default(),
    };
    cfg.fill_from_env(&|k| std::env::var(k).ok());
    Ok(cfg)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")
}

/// The configured catalog database (the embedded one by default).
async fn open_database(cfg: &config::Config) -> anyhow::Result<catalog::db::Database> {
    match cfg.catalog_store()? {
        config::CatalogStore::Database { url, kek, create_kek } => {
            if let (true, catalog::kek::KekSource::Local(p)) = (create_kek, &kek) {
                if catalog::kek::init_local_kek(p)? {
                    eprintln!("created a new key-encryption key {} for the embedded database: back it up", p.display());
                }
            }
            catalog::db::Database::open(&url, &kek).await
        }
        _ => anyhow::bail!("this command works on a database catalog; the configuration names a read-only TOML catalog"),
    }
}

fn cli_actor() -> catalog::db::Actor {
    catalog::db::Actor { identity: format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into())), address: "local".into() }
}

fn catalog_cmd(cmd: CatalogCmd) -> anyhow::Result<()> {
    let rt = runtime()?;
    match cmd {
        CatalogCmd::Check { .. } => unreachable!("handled in main"),
        CatalogCmd::Import { source, config } => {
            let cfg = load_config(&config)?;
            let files = catalog::toml_store::catalog_files(&source)?;
            rt.block_on(async {
                let db = open_database(&cfg).await?;
                let started = std::time::Instant::now();
                // Every file is one document (its relative CPIX and PEM paths resolve beside
                // it); the whole import is one transaction, validated against the catalog it
                // leaves.
                let docs: Vec<catalog::CatalogDoc> = files.iter().map(|f| catalog::toml_store::read_doc(f)).collect::<anyhow::Result<_>>()?;
                let beside: Vec<catalog::toml_store::FilesBeside> = files.iter().map(|f| catalog::toml_store::FilesBeside(f.parent().unwrap_or(std::path::Path::new(".")))).collect();
                let pairs: Vec<(&catalog::CatalogDoc, &dyn catalog::doc::Resolve)> = docs.iter().zip(&beside).map(|(d, b)| (d, b as &dyn catalog::doc::Resolve)).collect();
                let total = db.import_many(&pairs, &cli_actor()).await.with_context(|| format!("importing {}", source.display()))?;
                println!("{total}");
                let n = total.created.len() + total.updated.len() + total.unchanged;
                eprintln!("import: {n} entries from {} file(s) in {:.3} s", files.len(), started.elapsed().as_secs_f64());
                anyhow::Ok(())
            })
        }
        CatalogCmd::Export { with_keys, config } => {
            let cfg = load_config(&config)?;
            rt.block_on(async {
                let db = open_database(&cfg).await?;
                let doc = db.export(with_keys).await?;
                let head = if with_keys { "# sealcast catalog export, keys sealed (open with the same key-encryption key)\n" } else { "# sealcast catalog export, keys left out\n" };
                print!("{head}{}", toml::to_string(&doc)?);
                anyhow::Ok(())
            })
        }
        CatalogCmd::Audit { limit, config } => {
            let cfg = load_config(&config)?;
            rt.block_on(async {
                let db = open_database(&cfg).await?;
                for r in db.audit(limit).await? {
                    println!("{}\t{}\t{}\t{}\t{}\t{} {}\t{}", r.seq, catalog::doc::format_time(r.at), r.actor, r.address, r.action, r.entity, r.entity_id, r.detail);
                }
                anyhow::Ok(())
            })
        }
        CatalogCmd::Locator { id, asset, start, expiry, config } => {
            let cfg = load_config(&config)?;
            rt.block_on(async {
                let db = open_database(&cfg).await?;
                let doc = catalog::CatalogDoc { locators: vec![catalog::doc::LocatorDoc { id, asset, start, expiry }], ..Default::default() };
                println!("{}", db.import(&doc, &catalog::toml_store::FilesBeside(std::path::Path::new(".")), &cli_actor()).await?);
                anyhow::Ok(())
            })
        }
        CatalogCmd::Delete { asset, locator, config } => {
            let cfg = load_config(&config)?;
            rt.block_on(async {
                let db = open_database(&cfg).await?;
                let (what, found) = match (asset, locator) {
                    (Some(a), None) => (format!("asset {a}"), db.delete_asset(&a, &cli_actor()).await?),
                    (None, Some(l)) => (format!("locator {l}"), db.delete_locator(&l, &cli_actor()).await?),
                    _ => anyhow::bail!("give --asset or --locator"),
                };
                if !found {
                    anyhow::bail!("{what} is not in the catalog");
                }
                println!("deleted {what}");
                anyhow::Ok(())
            })
        }
    }
}

fn keys_cmd(cmd: KeysCmd) -> anyhow::Result<()> {
    match cmd {
        KeysCmd::Init { kek } => {
            if !catalog::kek::init_local_kek(&kek)? {
                anyhow::bail!("{} exists already: never overwritten", kek.display());
            }
            println!("wrote a new key-encryption key to {} (mode 0600)", kek.display());
            Ok(())
        }
        KeysCmd::RotateProtectionKey { config } => {
            let cfg = load_config(&config)?;
            runtime()?.block_on(async {
                let db = open_database(&cfg).await?;
                let t = sealcast_origin::admin::v2::rotate_protection_key(&db, &cli_actor()).await?;
                println!("new protection key {t} (older ones kept for unwrapping)");
                anyhow::Ok(())
            })
        }
        KeysCmd::RotateKek { new_local, new_aws_kms, config } => {
            let cfg = load_config(&config)?;
            let mut new = config::KekConfig { local: new_local, aws_kms: new_aws_kms, ..Default::default() };
            new.fill_from_env(&|k| std::env::var(k).ok());
            if let (Some(old), true) = (&cfg.kek, new.aws_kms.is_some()) {
                new.region = new.region.or(old.region.clone());
                new.endpoint = new.endpoint.or(old.endpoint.clone());
            }
            let new = new.source()?;
            runtime()?.block_on(async {
                let db = open_database(&cfg).await?;
                let n = db.rotate_kek(&new, &cli_actor()).await?;
                println!("re-sealed {n} secret(s) under {}; now set `kek` in the configuration to it on every replica", new.describe());
                anyhow::Ok(())
            })
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Inspect { file } => inspect::run(&file),
        Cmd::Keys { cmd } => keys_cmd(cmd),
        Cmd::Admin { url, token, cmd } => admin_cmd(url, token, cmd),
        Cmd::Catalog { cmd: cmd @ (CatalogCmd::Import { .. } | CatalogCmd::Export { .. } | CatalogCmd::Audit { .. } | CatalogCmd::Locator { .. } | CatalogCmd::Delete { .. }) } => catalog_cmd(cmd),
        Cmd::Catalog { cmd: CatalogCmd::Check { config, root } } => {
            let mut cfg = match &config {
                Some(p) => config::Config::from_file(p)?,
                None => config::Config::default(),
            };
            if let Some(r) = root {
                cfg.root = r;
            }
            cfg.fill_from_env(&|k| std::env::var(k).ok());
            cfg.validate()?;
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
            print!("{}", rt.block_on(server::catalog_check(&cfg))?);
            Ok(())
        }
        Cmd::Index { files, root, config, force } => {
            let mut cfg = match &config {
                Some(p) => config::Config::from_file(p)?,
                None => config::Config::default(),
            };
            match root {
                Some(r) => cfg.root = r,
                None if config.is_none() => anyhow::bail!("give --root, or --config with a root and [[store]] routes"),
                None => {}
            }
            cfg.fill_from_env(&|k| std::env::var(k).ok());
            cfg.validate()?;
            let store = cfg.open_store(sealcast_storage::LocalRead::Pread)?;
            let limits = sealcast_package::index::IndexLimits { max_bytes: cfg.content_limits.index_bytes_per_file };
            let rt = runtime()?;
            let mut failed = 0;
            for f in &files {
                let path = f.trim_start_matches('/');
                match rt.block_on(sealcast_origin::sidecar::write_for(&store, path, cfg.index_read_ahead, limits, force)) {
                    Ok(sealcast_origin::sidecar::Outcome::Written { bytes, reads, fragments }) => {
                        println!("{path}: {fragments} fragments (walked in {reads} requests); wrote {} ({bytes} bytes)", sealcast_origin::sidecar::path_of(path))
                    }
                    Ok(sealcast_origin::sidecar::Outcome::NotNeeded(m, reads)) => println!("{path}: indexes from its {} in {reads} requests; no sidecar needed", m.name()),
                    Err(e) => {
                        failed += 1;
                        eprintln!("{path}: {e:#}");
                    }
                }
            }
            if failed > 0 {
                anyhow::bail!("{failed} of {} file(s) not indexed", files.len());
            }
            Ok(())
        }
        Cmd::Ingest { files, asset, root, config, encrypt, catalog, dash, hls, smooth } => {
            let mut cfg = match &config {
                Some(p) => config::Config::from_file(p)?,
                None => config::Config::default(),
            };
            match root {
                Some(r) => cfg.root = r,
                None if config.is_none() => {
                    anyhow::bail!("give --root, or --config with a root and [[store]] routes")
                }
                None => {}
            }
            let root = cfg.root.clone();
            std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
            cfg.fill_from_env(&|k| std::env::var(k).ok());
            cfg.validate()?;
            let store = cfg.open_store(sealcast_storage::LocalRead::Pread)?;
            let publish = ingest::Publish { dash, hls, smooth };
            let rt = runtime()?;
            // `--catalog FILE` records in that TOML file; otherwise in the configured store
            // (the database, the embedded one by default) when there is something to record.
            let record = match catalog {
                Some(p) => Some(ingest::RecordIn::Toml(p)),
                None if encrypt || !publish.is_empty() || config.is_some() => match cfg.catalog_store()? {
                    config::CatalogStore::Toml(p) => Some(ingest::RecordIn::Toml(p)),
                    config::CatalogStore::Database { .. } => Some(ingest::RecordIn::Database(std::sync::Arc::new(rt.block_on(open_database(&cfg))?), cli_actor())),
                    config::CatalogStore::None => None,
                },
                None => None,
            };
            let args = ingest::IngestArgs { files, asset, encrypt, catalog: record, publish };
            let r = rt.block_on(ingest::run(&store, &args))?;
            let secs = r.elapsed.as_secs_f64().max(1e-6);
            eprintln!(
                "ingest: {} file(s), {:.1} MiB in {secs:.2} s ({:.0} MiB/s) to {}/{}{}",
                r.files.len(),
                r.bytes as f64 / 1048576.0,
                r.bytes as f64 / 1048576.0 / secs,
                root.display(),
                args.asset,
                r.key_id.map(|k| format!(", storage-encrypted with key {k}")).unwrap_or_default()
            );
            if encrypt && publish.is_empty() {
                eprintln!(
                    "ingest: {} is recorded BLOCKED: its catalog entry names no protocol, so nothing is served. Publish it with \
                     --dash/--hls/--smooth <DELIVERY> (e.g. --dash DynamicCommonEncryption with keys in its entry, or NoDynamicEncryption \
                     to serve it clear), or add dash/hls/smooth to its [[asset]] entry, then reload the catalog (SIGHUP).",
                    args.asset
                );
            }
            Ok(())
        }
        Cmd::Serve { config, listen, root, metrics, log_json } => {
            init_tracing(log_json);
            let mut cfg = match &config {
                Some(p) => config::Config::from_file(p)?,
                None => config::Config::default(),
            };
            if let Some(l) = listen {
                cfg.listen = l;
            }
            if let Some(r) = root {
                cfg.root = r;
            }
            if let Some(m) = metrics {
                cfg.metrics = Some(config::MetricsConfig { listen: m });
            }
            // Credentials and regions left out of `[[store]]` come from the usual variables.
            cfg.fill_from_env(&|k| std::env::var(k).ok());
            cfg.validate()?;
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
            rt.block_on(serve(cfg))
        }
    }
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SEALCAST_LOG").unwrap_or_else(|_| "info".into());
    let b = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        b.json().init();
    } else {
        b.init();
    }
}

async fn serve(cfg: config::Config) -> anyhow::Result<()> {
    let state = server::AppState::open(&cfg).await?;
    let tls = cfg.tls.as_ref().map(|t| sealcast_origin::tls::server_config(&t.cert, &t.key)).transpose()?;
    let listener = tokio::net::TcpListener::bind(cfg.listen).await.with_context(|| format!("binding {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(root = %cfg.root.display(), %addr, "serving");
    #[cfg(unix)]
    if let Some(path) = cfg.catalog.clone() {
        // SIGHUP reloads the catalog; a catalog that fails validation leaves the current one
        // in force. Requests in flight keep the snapshot they started with.
        let state = state.clone();
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).context("installing SIGHUP handler")?;
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                let Some(cat) = state.toml_catalog.as_ref() else {
                    continue;
                };
                match cat.reload().and_then(|n| sealcast_origin::catalog::apply_storage_encryption(cat.as_ref(), state.assets.store()).map(|_| n)) {
                    Ok(n) => {
                        tracing::info!(catalog = %path.display(), assets = n, "catalog reloaded")
                    }
                    Err(e) => {
                        tracing::error!(catalog = %path.display(), error = %format!("{e:#}"), "catalog reload failed; keeping the previous one")
                    }
                }
            }
        });
    }
    // Validated by `cfg.validate()` already; this only converts.
    let limits = cfg.limits.limits()?;
    let (drain, delay) = (limits.drain_timeout, limits.drain_delay);
    // The first stdout line (listening on …) is a contract with scripts and tests; the asset
    // lines follow once storage discovery is done, while requests are already answered.
    let announce = std::sync::Arc::new(|line: String| {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    });
    // The management API, on its own listener, over the same database and clock.
    if let (Some(admin_cfg), Some(db)) = (&cfg.admin, state.db_catalog.as_ref().map(|c| c.database().clone())) {
        let admin = sealcast_origin::admin::Admin::new(admin_cfg, db, format!("http://{addr}"), std::sync::Arc::new(std::time::SystemTime::now)).await?;
        let l = tokio::net::TcpListener::bind(admin_cfg.listen).await.with_context(|| format!("binding the management API to {}", admin_cfg.listen))?;
        let admin_addr = l.local_addr()?;
        let admin_tls = admin_cfg.tls.as_ref().map(|t| sealcast_origin::tls::server_config(&t.cert, &t.key)).transpose().context("[admin] tls")?;
        let scheme = if admin_tls.is_some() { "https" } else { "http" };
        tracing::info!(%admin_addr, scheme, "management API listening");
        eprintln!("sealcast management API on {scheme}://{admin_addr}");
        tokio::spawn(async move {
            if let Err(e) = sealcast_origin::admin::serve(l, admin, admin_tls, shutdown_signal()).await {
                tracing::error!(error = %e, "management API stopped");
            }
        });
    }
    // Metrics on their own listener, never the public one; up until the process exits.
    if let Some(m) = &cfg.metrics {
        let l = tokio::net::TcpListener::bind(m.listen).await.with_context(|| format!("binding the metrics listener to {}", m.listen))?;
        let metrics_addr = l.local_addr()?;
        tracing::info!(%metrics_addr, "metrics listening");
        eprintln!("sealcast metrics on http://{metrics_addr}/metrics");
        let app = server::metrics_router(state.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(l, app).await {
                tracing::error!(error = %e, "metrics listener stopped");
            }
        });
    }
    let draining = state.clone();
    let flush_at_exit = state.clone();
    server::serve_announced(
        listener,
        state,
        tls,
        limits,
        async move {
            shutdown_signal().await;
            // Readiness turns 503 at once; everything else is served as before for the delay,
            // so load balancers stop sending new requests before connections are refused.
            draining.draining.store(true, std::sync::atomic::Ordering::Relaxed);
            if !delay.is_zero() {
                tracing::info!(delay_ms = delay.as_millis() as u64, "draining: readiness answers 503; serving on until the delay ends");
                tokio::time::sleep(delay).await;
            }
            tracing::info!(drain_ms = drain.as_millis() as u64, "shutting down: no new connections, draining");
        },
        announce,
    )
    .await?;
    // The last lines of the access log, written before the process ends.
    if let Some(log) = &flush_at_exit.access_log {
        log.flush();
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("installing SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
