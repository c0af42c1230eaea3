//! `sealcast`: the just-in-time streaming origin.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use sealcast_origin::{catalog, config, ingest, inspect, server};

// Many small, short-lived allocations per request (headers, paths): mimalloc measured faster
// than glibc malloc for them in the load benchmark.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        /// Catalog TOML file to record the asset (and its storage key) in.
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
    /// Inspect the catalog.
    Catalog {
        #[command(subcommand)]
        cmd: CatalogCmd,
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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Inspect { file } => inspect::run(&file),
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
        Cmd::Ingest { files, asset, root, config, encrypt, catalog, dash, hls, smooth } => {
            let mut cfg = match &config {
                Some(p) => config::Config::from_file(p)?,
                None => config::Config::default(),
            };
            match root {
                Some(r) => cfg.root = r,
                None if config.is_none() => anyhow::bail!("give --root, or --config with a root and [[store]] routes"),
                None => {}
            }
            let root = cfg.root.clone();
            std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
            cfg.fill_from_env(&|k| std::env::var(k).ok());
            cfg.validate()?;
            let store = cfg.open_store(sealcast_storage::LocalRead::Pread)?;
            let publish = ingest::Publish { dash, hls, smooth };
            let args = ingest::IngestArgs { files, asset, encrypt, catalog, publish };
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
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
        Cmd::Serve { config, listen, root, log_json } => {
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
    let state = server::AppState::new(&cfg)?;
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
                let Some(cat) = state.toml_catalog.as_ref() else { continue };
                match cat.reload().and_then(|n| sealcast_origin::catalog::apply_storage_encryption(cat, state.assets.store()).map(|_| n)) {
                    Ok(n) => tracing::info!(catalog = %path.display(), assets = n, "catalog reloaded"),
                    Err(e) => tracing::error!(catalog = %path.display(), error = %format!("{e:#}"), "catalog reload failed; keeping the previous one"),
                }
            }
        });
    }
    // Validated by `cfg.validate()` already; this only converts.
    let limits = cfg.limits.limits()?;
    let drain = limits.drain_timeout;
    // The first stdout line (listening on …) is a contract with scripts and tests; the asset
    // lines follow once storage discovery is done, while requests are already answered.
    let announce = std::sync::Arc::new(|line: String| {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    });
    server::serve_announced(listener, state, tls, limits, async move {
        shutdown_signal().await;
        tracing::info!(drain_ms = drain.as_millis() as u64, "shutting down: no new connections, draining");
    }, announce)
    .await?;
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
