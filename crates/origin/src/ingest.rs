//! `sealcast ingest`: puts an asset into storage, optionally encrypted at rest, and records
//! it in the catalog.
//!
//! Order of work, so that a failure at any point leaves no half-registered asset:
//! 1. every file is checked first (a track file must index as fragmented MP4 exactly as the
//!    origin will index it; an `.ism` must parse), before anything is uploaded;
//! 2. files are streamed to the store in constant memory, storage-encrypted on the way with a
//!    fresh random key and a fresh random IV per file; if one upload fails, the files already
//!    uploaded are deleted again;
//! 3. a fragmented file with neither `sidx` nor `mfra` (which the origin would have to walk,
//!    `moof` by `moof`) gets a sidecar index next to it ([`crate::sidecar`]), keyed by the
//!    uploaded object's ETag; not for files encrypted at rest (it would hold their `moov` in
//!    clear). A sidecar that cannot be written is reported, not fatal (the file is still
//!    served, by the walk);
//! 4. only then is the catalog rewritten, atomically (temporary file, validated by loading it
//!    as the origin will, then renamed over the old one).

use std::io::{IsTerminal, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use sealcast_package::{ism, sidecar, FileIndex, IndexBuilder, IndexMethod, Need};
use sealcast_storage::upload::{random_id, random_iv, random_key};
use sealcast_storage::{AssetPath, FileEncryption, Store};
use sealcast_cenc::kid::hex;

/// Extensions of track files (as the origin lists them).
const TRACK_EXTS: [&str; 5] = ["mp4", "cmfv", "cmfa", "ismv", "isma"];
/// Bytes read per index read, as the origin's default `index_read_ahead`.
const READ_AHEAD: u64 = 64 * 1024;

/// What to ingest.
#[derive(Debug)]
pub struct IngestArgs {
    /// Track files and optionally one `.ism`.
    pub files: Vec<PathBuf>,
    /// Destination asset path under the store root (`vod/movie`).
    pub asset: String,
    /// Storage-encrypt the files at rest.
    pub encrypt: bool,
    /// The catalog to record the asset in (needed with `encrypt`: it holds the key).
    pub catalog: Option<RecordIn>,
    /// Delivery policy to record per protocol. A catalog entry serves only the protocols it
    /// names, so a storage-encrypted asset ingested without any is recorded blocked.
    pub publish: Publish,
}

pub use crate::catalog::write::Publish;

/// Where an ingest records the asset.
pub enum RecordIn {
    /// A TOML catalog file, rewritten atomically.
    Toml(PathBuf),
    /// The catalog database (one transaction, audited).
    Database(std::sync::Arc<crate::catalog::db::Database>, crate::catalog::db::Actor),
}

impl std::fmt::Debug for RecordIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordIn::Toml(p) => write!(f, "Toml({})", p.display()),
            RecordIn::Database(d, _) => write!(f, "Database({})", d.shown_url()),
        }
    }
}

/// What was ingested.
#[derive(Debug)]
pub struct IngestReport {
    /// Files uploaded (names inside the asset folder).
    pub files: Vec<String>,
    /// Bytes uploaded.
    pub bytes: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// The storage key's ID, when encrypted.
    pub key_id: Option<String>,
    /// Sidecar indexes written (for files without `sidx` or `mfra`).
    pub sidecars: usize,
}

/// Checks, uploads and registers an asset (see the module documentation for the order).
pub async fn run(store: &Store, args: &IngestArgs) -> anyhow::Result<IngestReport> {
    if AssetPath::parse(&format!("/{}", args.asset)).is_err() {
        bail!("asset path '{}' must be a plain folder path (like vod/movie)", args.asset);
    }
    if args.encrypt && args.catalog.is_none() {
        bail!("--encrypt needs --catalog: the catalog is where the storage key is kept");
    }
    let files = check_files(&args.files)?;
    let total: u64 = files.iter().map(|f| f.size).sum();
    let key = if args.encrypt { Some((guid(random_id()?), random_key()?)) } else { None };
    let mut ivs = Vec::<[u8; 8]>::new();
    let mut plan = Vec::new();
    for f in &files {
        let enc = match &key {
            Some((kid, k)) => {
                // Random 64-bit IVs; a collision within one asset is astronomically unlikely,
                // but the catalog refuses reuse, so draw again rather than fail later.
                let mut iv = random_iv()?;
                while ivs.contains(&iv) {
                    iv = random_iv()?;
                }
                ivs.push(iv);
                Some(FileEncryption { key_id: kid.clone(), key: k.to_vec(), iv })
            }
            None => None,
        };
        plan.push((f, enc));
    }

    let progress = Progress::new(total);
    let started = Instant::now();
    let mut uploaded: Vec<String> = Vec::new();
    for (f, enc) in &plan {
        let dest = format!("{}/{}", args.asset, f.name);
        progress.file(&f.name, f.size);
        match store.upload_file(&f.path, &dest, enc.as_ref(), &|n| progress.add(n)).await {
            Ok(_) => uploaded.push(dest),
            Err(e) => {
                // Leave nothing behind: the asset is registered only when whole.
                for p in uploaded.iter().chain(std::iter::once(&dest)) {
                    let _ = store.delete(p).await;
                }
                progress.finish();
                return Err(anyhow::anyhow!("{e}")).with_context(|| format!("uploading {} to {dest}", f.path.display()));
            }
        }
    }
    progress.finish();

    let mut sidecars = 0;
    for (f, enc) in &plan {
        let (Some((fi, moov)), None) = (&f.walked, enc) else { continue };
        let dest = format!("{}/{}", args.asset, f.name);
        match write_sidecar(store, &dest, fi, moov).await {
            Ok(path) => {
                sidecars += 1;
                uploaded.push(path);
            }
            Err(e) => eprintln!("ingest: warning: no sidecar index for {} ({e:#}); it will be indexed by walking its fragments", f.name),
        }
    }

    if let Some(cat) = &args.catalog {
        let storage = key.as_ref().map(|(kid, k)| {
            let files = plan.iter().filter_map(|(f, e)| e.as_ref().map(|e| (f.name.clone(), e.iv))).collect::<Vec<_>>();
            (kid.clone(), k.to_vec(), files)
        });
        let recorded = match cat {
            RecordIn::Toml(p) => crate::catalog::write::record(p, &args.asset, storage, args.publish),
            RecordIn::Database(db, actor) => db.record(&args.asset, storage, args.publish, actor).await.map(|_| ()),
        };
        if let Err(e) = recorded {
            for p in &uploaded {
                let _ = store.delete(p).await;
            }
            return Err(e.context("recording the asset in the catalog (uploaded files removed again)"));
        }
    }
    Ok(IngestReport {
        files: files.into_iter().map(|f| f.name).collect(),
        bytes: total,
        elapsed: started.elapsed(),
        key_id: key.map(|(k, _)| k),
        sidecars,
    })
}

/// Writes the sidecar of the uploaded `dest` from the index of the local file it came from,
/// keyed by the stored object's size and ETag. Returns the sidecar's path.
async fn write_sidecar(store: &Store, dest: &str, fi: &FileIndex, moov: &Bytes) -> anyhow::Result<String> {
    let o = store.head(dest).await?;
    if o.size != fi.file_len {
        bail!("stored size {} differs from the local file's {}", o.size, fi.file_len);
    }
    let bytes = sidecar::encode(&crate::sidecar::source_key(&o), moov, fi)?;
    let path = crate::sidecar::path_of(dest);
    store.put_bytes(&path, Bytes::from(bytes)).await?;
    Ok(path)
}

struct Checked {
    path: PathBuf,
    name: String,
    size: u64,
    /// A fragmented track file the origin would walk: its index and `moov`, for a sidecar.
    walked: Option<(FileIndex, Bytes)>,
}

/// Every file must be one the origin can serve; checked before anything is uploaded.
fn check_files(paths: &[PathBuf]) -> anyhow::Result<Vec<Checked>> {
    let mut out: Vec<Checked> = Vec::new();
    let mut tracks = 0;
    let mut isms = 0;
    for p in paths {
        let name = p.file_name().and_then(|n| n.to_str()).map(str::to_string).with_context(|| format!("{}: not a file name", p.display()))?;
        if AssetPath::parse(&format!("/{name}")).is_err() {
            bail!("{}: the file name cannot be served in a URL", p.display());
        }
        if out.iter().any(|c| c.name == name) {
            bail!("{name} is given twice");
        }
        let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
        let mut file = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
        let size = file.metadata().with_context(|| format!("reading {}", p.display()))?.len();
        let mut walked = None;
        if ext == "ism" {
            isms += 1;
            if size > 1 << 20 {
                bail!("{name}: server manifest larger than 1 MiB");
            }
            let mut b = Vec::new();
            file.read_to_end(&mut b).with_context(|| format!("reading {}", p.display()))?;
            ism::parse(&b).map_err(|e| anyhow::anyhow!("{name} is not a server manifest the origin can use: {e}"))?;
        } else if TRACK_EXTS.contains(&ext.as_str()) {
            tracks += 1;
            let (fi, moov) = index_local(&mut file, size).map_err(|e| anyhow::anyhow!("{name} is not fragmented MP4 the origin can serve: {e}"))?;
            // A file the head read holds whole (one read) gains nothing from a sidecar.
            if fi.method == IndexMethod::Walk && fi.reads > 1 && fi.tracks.iter().all(|t| t.samples.is_none()) {
                walked = moov.map(|m| (fi, m));
            }
        } else {
            bail!("{name}: expected a track file (.{}) or a server manifest (.ism)", TRACK_EXTS.join(", ."));
        }
        out.push(Checked { path: p.clone(), name, size, walked });
    }
    if tracks == 0 {
        bail!("no track files given");
    }
    if isms > 1 {
        bail!("at most one .ism per asset");
    }
    Ok(out)
}

/// Indexes a local file exactly as the origin will (same builder, same ranged reads); with
/// its `moov` bytes, for a sidecar.
fn index_local(file: &mut std::fs::File, size: u64) -> anyhow::Result<(FileIndex, Option<Bytes>)> {
    let mut b = IndexBuilder::new(size, READ_AHEAD);
    while let Need::Read { offset, len } = b.next_read() {
        let mut buf = vec![0u8; usize::try_from(len)?];
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(&mut buf)?;
        b.feed(offset, Bytes::from(buf))?;
    }
    let moov = b.moov_bytes();
    Ok((b.finish()?, moov))
}

/// What the catalog records of a storage-encrypted asset: key ID, key, and each file's IV.
/// A random (version 4) GUID string.
fn guid(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// Progress: a live line (bytes, rate, ETA) on a terminal, plain log lines otherwise.
struct Progress {
    total: u64,
    done: AtomicU64,
    started: Instant,
    tty: bool,
    last: Mutex<Instant>,
}

impl Progress {
    fn new(total: u64) -> Progress {
        let now = Instant::now();
        Progress { total, done: AtomicU64::new(0), started: now, tty: std::io::stderr().is_terminal(), last: Mutex::new(now) }
    }

    fn file(&self, name: &str, size: u64) {
        if !self.tty {
            eprintln!("ingest: uploading {name} ({})", mib(size));
        }
    }

    fn add(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        let every = if self.tty { Duration::from_millis(100) } else { Duration::from_secs(5) };
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() < every && done < self.total {
            return;
        }
        *last = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(1e-6);
        let rate = done as f64 / secs;
        let eta = if rate > 0.0 { (self.total - done.min(self.total)) as f64 / rate } else { 0.0 };
        let pct = if self.total == 0 { 100.0 } else { 100.0 * done as f64 / self.total as f64 };
        let line = format!("{} / {} ({pct:.0} %)  {}/s  ETA {eta:.0} s", mib(done), mib(self.total), mib(rate as u64));
        if self.tty {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("ingest: {line}");
        }
    }

    fn finish(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_v4_and_parse_as_kids() {
        let g = guid([0xff; 16]);
        assert_eq!(&g[14..15], "4");
        assert!(sealcast_drm::Kid::parse(&g).is_ok());
    }
}
