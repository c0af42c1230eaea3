//! The database store of the catalog: SQLite embedded (the default) or PostgreSQL (fleets),
//! one schema with versioned migrations applied at start, every secret sealed under the
//! key-encryption key ([`super::kek`]).
//!
//! The request path never queries the database: [`DbCatalog`] holds the whole catalog in
//! memory as a [`Snapshot`] and swaps in a new one when the catalog's version changes — at
//! once on a PostgreSQL notification, and by a version poll (the safety net, and the only way
//! a second process on one SQLite file learns of a change). When the database cannot be
//! reached it keeps serving its last good copy and says so ([`Catalog::degraded`]).
//!
//! Writes ([`Database::import`], [`Database::delete_asset`], [`Database::delete_locator`],
//! [`Database::rotate_kek`]) are whole transactions that lock the catalog's version row first
//! (so concurrent writers serialise and each validates what it commits), validate the catalog
//! they would leave, bump the version, append to the audit trail and notify.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::{bail, Context};
use sealcast_drm::auth::AuthorizationPolicyConfig;
use sealcast_drm::Kid;
use sqlx::any::AnyPoolOptions;
use sqlx::AnyConnection;
use sqlx::{AnyPool, Row};
use zeroize::Zeroizing;

use super::doc::{identity, AssetDoc, CatalogDoc, KeyDoc, KindDoc, LocatorDoc, Resolve, SecretText, Snapshot, StorageDoc, StorageFileDoc};
use super::kek::{KekSource, Sealer, WrappedDek};
use super::{AssetPolicy, Catalog, Delivery, KeyGrant, LicenseUrls, Locator};

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, embedded.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The notification channel writers notify on PostgreSQL.
const CHANNEL: &str = "sealcast_catalog";

/// The schema migrations of each backend, embedded in the binary (no `sqlx::migrate!`, so the
/// drivers are not compiled a second time for a proc-macro). Same versions on both.
fn migrator(backend: Backend) -> sqlx::migrate::Migrator {
    use std::borrow::Cow;
    use sqlx::migrate::{Migration, MigrationType};
    let list: &[(i64, &str, &'static str)] = match backend {
        Backend::Sqlite => &[
            (1, "catalog", include_str!("../../migrations/sqlite/0001_catalog.sql")),
            (2, "protection keys", include_str!("../../migrations/common/0002_protection_keys.sql")),
            (3, "v2 entities", include_str!("../../migrations/common/0003_v2_entities.sql")),
            (4, "access policies", include_str!("../../migrations/common/0004_access.sql")),
        ],
        Backend::Postgres => &[
            (1, "catalog", include_str!("../../migrations/postgres/0001_catalog.sql")),
            (2, "protection keys", include_str!("../../migrations/common/0002_protection_keys.sql")),
            (3, "v2 entities", include_str!("../../migrations/common/0003_v2_entities.sql")),
            (4, "access policies", include_str!("../../migrations/common/0004_access.sql")),
        ],
    };
    let migrations: Vec<Migration> = list.iter().map(|(v, d, sql)| Migration::new(*v, Cow::Borrowed(*d), MigrationType::Simple, Cow::Borrowed(*sql), false)).collect();
    sqlx::migrate::Migrator { migrations: Cow::Owned(migrations), ignore_missing: false, locking: true, no_tx: false }
}

/// The newest schema this binary knows.
pub fn schema_version(backend: Backend) -> i64 {
    migrator(backend).migrations.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Who made a change, for the audit trail.
#[derive(Debug, Clone)]
pub struct Actor {
    /// An identity (`cli:alice`, a token subject).
    pub identity: String,
    /// Where from (`local`, a client address).
    pub address: String,
}

/// What an import did, by entity.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// (entity, name) created.
    pub created: Vec<(String, String)>,
    /// (entity, name) changed.
    pub updated: Vec<(String, String)>,
    /// How many entries were already as given.
    pub unchanged: usize,
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (e, n) in &self.created {
            writeln!(f, "created {e} {n}")?;
        }
        for (e, n) in &self.updated {
            writeln!(f, "updated {e} {n}")?;
        }
        write!(f, "{} created, {} updated, {} unchanged", self.created.len(), self.updated.len(), self.unchanged)
    }
}

/// One audit row.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub address: String,
    pub action: String,
    pub entity: String,
    pub entity_id: String,
    pub detail: String,
}

/// A connection to the catalog database with its unwrapped data-encryption key.
pub struct Database {
    pool: AnyPool,
    backend: Backend,
    url: String,
    kek: KekSource,
    sealer: RwLock<Arc<Sealer>>,
    dek_wrapped: RwLock<String>,
    client: reqwest::Client,
}

/// The database URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A new entity id: `prefix` and a random (version 4) GUID, as Azure Media Services forms them.
pub(crate) fn new_id(prefix: &str) -> String {
    let mut b = [0u8; 16];
    // aws-lc's generator does not fail on supported platforms; without secure randomness no
    // id (nor any sealed secret) can be made safely, so refusing to go on is the answer.
    aws_lc_rs::rand::fill(&mut b).expect("secure randomness");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    format!("{prefix}{}", Kid(b))
}

impl Database {
    /// Connects, applies migrations (refusing a schema newer than this binary) and opens the
    /// data-encryption key with `kek` (creating and wrapping one in a new database). Every
    /// refusal is a clear error naming what is wrong; nothing is served from a half-opened
    /// database.
    pub async fn open(url: &str, kek: &KekSource) -> anyhow::Result<Database> {
        sqlx::any::install_default_drivers();
        let (backend, connect_url) = if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            let file = path.split('?').next().unwrap_or(path);
            if file != ":memory:" {
                if let Some(dir) = std::path::Path::new(file).parent().filter(|d| !d.as_os_str().is_empty()) {
                    // Private: the files hold only sealed secrets, but nobody else needs them.
                    super::kek::private_dir(dir).context("the catalog database's folder")?;
                }
            }
            let u = if url.contains('?') { url.to_string() } else { format!("{url}?mode=rwc") };
            (Backend::Sqlite, u)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            bail!("database '{}' is neither sqlite:… nor postgres://…", redact_url(url));
        };
        let shown = redact_url(url);
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .acquire_timeout(Duration::from_secs(5))
            .connect(&connect_url)
            .await
            .with_context(|| format!("cannot reach the catalog database {shown}"))?;
        if backend == Backend::Sqlite {
            // WAL: readers (other replicas' polls) never block the writer.
            sqlx::query("PRAGMA journal_mode=WAL").execute(&pool).await.context("setting the SQLite journal mode")?;
        }
        let applied: Option<i64> = sqlx::query("SELECT MAX(version) FROM _sqlx_migrations").fetch_one(&pool).await.ok().and_then(|r| r.try_get::<Option<i64>, _>(0).ok().flatten());
        let known = schema_version(backend);
        if let Some(v) = applied.filter(|v| *v > known) {
            bail!("the catalog database {shown} has schema version {v}, newer than this binary's {known}: run a newer sealcast (never an older one against an upgraded database)");
        }
        migrator(backend).run(&pool).await.with_context(|| format!("applying the catalog schema to {shown}"))?;
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().context("HTTP client")?;
        let stored = read_kek(&pool).await?;
        let (sealer, wrapped) = match stored {
            Some(s) => (Sealer::open(kek, &s, &client).await?, s.wrapped),
            None => {
                let (sealer, w) = Sealer::create(kek, &client).await?;
                // Two replicas starting on a new database race here: one row wins, and
                // whoever lost opens the winner's key.
                let r = sqlx::query("INSERT INTO kek (id, kind, reference, wrapped_dek, created_at) VALUES ('current', $1, $2, $3, $4) ON CONFLICT (id) DO NOTHING")
                    .bind(&w.kind)
                    .bind(&w.reference)
                    .bind(&w.wrapped)
                    .bind(now_secs())
                    .execute(&pool)
                    .await?;
                if r.rows_affected() == 1 {
                    (sealer, w.wrapped)
                } else {
                    let s = read_kek(&pool).await?.context("kek row vanished")?;
                    (Sealer::open(kek, &s, &client).await?, s.wrapped)
                }
            }
        };
        Ok(Database { pool, backend, url: url.to_string(), kek: kek.clone(), sealer: RwLock::new(Arc::new(sealer)), dek_wrapped: RwLock::new(wrapped), client })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL, password hidden.
    pub fn shown_url(&self) -> String {
        redact_url(&self.url)
    }

    /// The connection pool (the management API's own tables).
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub(crate) fn sealer(&self) -> Arc<Sealer> {
        self.sealer.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The catalog's version (bumped by every change).
    pub async fn version(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query("SELECT version FROM catalog_state WHERE id = 1").fetch_one(&self.pool).await?.try_get(0)?)
    }

    /// When the stored data-encryption key changed (a KEK rotation by another process), opens
    /// the new one with the configured KEK (re-read from its file or KMS).
    async fn follow_dek(&self) -> anyhow::Result<()> {
        let stored = read_kek(&self.pool).await?.context("the database has no key-encryption record")?;
        if *self.dek_wrapped.read().unwrap_or_else(|e| e.into_inner()) == stored.wrapped {
            return Ok(());
        }
        let sealer = Sealer::open(&self.kek, &stored, &self.client).await?;
        *self.sealer.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(sealer);
        *self.dek_wrapped.write().unwrap_or_else(|e| e.into_inner()) = stored.wrapped;
        Ok(())
    }

    /// The whole catalog and its version, secrets sealed, as one consistent read.
    pub async fn load(&self) -> anyhow::Result<(i64, CatalogDoc)> {
        self.follow_dek().await?;
        let mut tx = self.pool.begin().await?;
        let v: i64 = sqlx::query("SELECT version FROM catalog_state WHERE id = 1").fetch_one(&mut *tx).await?.try_get(0)?;
        let doc = read_doc(&mut tx).await?;
        tx.commit().await?;
        Ok((v, doc))
    }

    /// The catalog as served, and its version: the imported catalog plus what the management
    /// API's v2 entities make (a v2 asset whose folder already has an imported entry is left
    /// out, and logged).
    pub async fn load_serving(&self) -> anyhow::Result<(i64, CatalogDoc)> {
        self.follow_dek().await?;
        let sealer = self.sealer();
        let mut tx = self.pool.begin().await?;
        let v: i64 = sqlx::query("SELECT version FROM catalog_state WHERE id = 1").fetch_one(&mut *tx).await?.try_get(0)?;
        let mut doc = read_doc(&mut tx).await?;
        let v2 = super::ams::read(&mut tx, &sealer).await?;
        tx.commit().await?;
        let taken: std::collections::HashSet<String> = doc.assets.iter().map(|a| a.path.to_ascii_lowercase()).collect();
        for a in v2.assets {
            if taken.contains(&a.path.to_ascii_lowercase()) {
                tracing::warn!(path = %a.path, "a v2 asset names a folder the imported catalog has an entry for; the imported entry is served");
                continue;
            }
            doc.assets.push(a);
        }
        let ids: std::collections::HashSet<String> = doc.locators.iter().map(|l| l.id.clone()).collect();
        doc.locators.extend(v2.locators.into_iter().filter(|l| !ids.contains(&l.id)));
        doc.authorization_wrapped.extend(v2.authorization_wrapped);
        Ok((v, doc))
    }

    /// Builds the in-memory snapshot of a loaded document.
    pub fn snapshot(&self, doc: &CatalogDoc) -> anyhow::Result<Snapshot> {
        let r = Opener(self.sealer());
        Snapshot::build(&[(self.shown_url(), doc, &r as &dyn Resolve)])
    }

    /// `catalog export`: the catalog as a document; secrets left out, or (`with_keys`) sealed
    /// with the data-encryption key, which the document carries wrapped by the KEK — so it
    /// imports into any database whose configuration has the same KEK.
    pub async fn export(&self, with_keys: bool) -> anyhow::Result<CatalogDoc> {
        let (_, mut doc) = self.load().await?;
        if with_keys {
            let w = read_kek(&self.pool).await?.context("the database has no key-encryption record")?;
            doc.sealed_by = Some(super::doc::SealedBy { kind: w.kind, reference: w.reference, wrapped_dek: w.wrapped });
        } else {
            strip_secrets(&mut doc);
        }
        Ok(doc)
    }

    /// `catalog import`: merges `incoming` into the catalog in one transaction (assets by
    /// path, locators by ID, authorization policies by name; nothing is deleted). Idempotent:
    /// entries equal to what is stored are left untouched. `resolve` reads the files the
    /// incoming document names (CPIX, PEM).
    pub async fn import(&self, incoming: &CatalogDoc, resolve: &dyn Resolve, actor: &Actor) -> anyhow::Result<ImportReport> {
        self.import_many(&[(incoming, resolve)], actor).await
    }

    /// [`import`](Self::import) of several documents (a folder of catalog files) in one
    /// transaction: all of them or none.
    pub async fn import_many(&self, docs: &[(&CatalogDoc, &dyn Resolve)], actor: &Actor) -> anyhow::Result<ImportReport> {
        self.follow_dek().await?;
        let sealer = self.sealer();
        // Secrets of an export `--with-keys` open with the DEK it carries.
        let mut foreign = Vec::new();
        for (incoming, _) in docs {
            foreign.push(match &incoming.sealed_by {
                Some(s) => Some(Sealer::open(&self.kek, &WrappedDek { kind: s.kind.clone(), reference: s.reference.clone(), wrapped: s.wrapped_dek.clone() }, &self.client).await.context("opening the keys of the imported document")?),
                None => None,
            });
        }
        let mut tx = self.pool.begin().await?;
        // Lock first: concurrent writers serialise on the version row.
        sqlx::query("UPDATE catalog_state SET version = version + 1 WHERE id = 1").execute(&mut *tx).await?;
        let ours = Opener(sealer.clone());
        let mut report = ImportReport::default();
        let mut merged = read_doc(&mut tx).await?;
        let mut audit: Vec<(String, String, String, String)> = Vec::new();
        for ((incoming, resolve), foreign) in docs.iter().zip(&foreign) {
            let resolve: &dyn Resolve = *resolve;
            let incoming_opener = Incoming { files: resolve, sealer: foreign.as_ref() };
            // What earlier documents of this import wrote counts as stored.
            let current = merged.clone();

            // Authorization policies: clear (files inlined) or sealed, compared by content.
            let mut incoming_auth: BTreeMap<String, AuthorizationPolicyConfig> = BTreeMap::new();
            for (name, cfg) in &incoming.authorization {
                let mut cfg = cfg.clone();
                cfg.inline_files(|p| resolve.file(p)).map_err(|e| anyhow::anyhow!("authorization '{name}': {e}"))?;
                incoming_auth.insert(name.clone(), cfg);
            }
            for (name, sealed) in &incoming.authorization_wrapped {
                let json = incoming_opener.unwrap(sealed, &identity::authorization(name)).with_context(|| format!("authorization '{name}'"))?;
                incoming_auth.insert(name.clone(), serde_json::from_slice(&json).map_err(|_| anyhow::anyhow!("authorization '{name}': not a policy"))?);
            }
            for (name, cfg) in incoming_auth {
                let json = Zeroizing::new(serde_json::to_vec(&cfg)?);
                let existing = match current.authorization_wrapped.get(&name) {
                    Some(s) => Some(ours.unwrap(s, &identity::authorization(&name))?),
                    None => None,
                };
                match existing {
                    Some(e) if *e == *json => report.unchanged += 1,
                    e => {
                        let sealed = sealer.seal(&json, &identity::authorization(&name));
                        let id = auth_id(&mut tx, &name).await?.unwrap_or_else(|| new_id("nb:ckpid:UUID:"));
                        sqlx::query("DELETE FROM authorization_policies WHERE name = $1").bind(&name).execute(&mut *tx).await?;
                        sqlx::query("INSERT INTO authorization_policies (id, name, options_sealed, updated_at) VALUES ($1, $2, $3, $4)").bind(&id).bind(&name).bind(&sealed).bind(now_secs()).execute(&mut *tx).await?;
                        merged.authorization_wrapped.insert(name.clone(), sealed);
                        let verb = if e.is_some() { "updated" } else { "created" };
                        audit.push((verb.into(), "authorization_policy".into(), id, format!("name={name}")));
                        if e.is_some() { report.updated.push(("authorization".into(), name)) } else { report.created.push(("authorization".into(), name)) }
                    }
                }
            }

            // Access policies (sealed: EdgeAuth keys are secrets) and prefix rules.
            let mut incoming_access: BTreeMap<String, crate::access::AccessPolicyConfig> = BTreeMap::new();
            for (name, cfg) in &incoming.access {
                let mut cfg = cfg.clone();
                if let Some(cf) = &mut cfg.cloudfront {
                    for k in &mut cf.keys {
                        if let Some(f) = k.pem_file.take() {
                            k.pem = Some(resolve.file(&f.to_string_lossy()).with_context(|| format!("access '{name}': reading {}", f.display()))?);
                        }
                    }
                }
                incoming_access.insert(name.clone(), cfg);
            }
            for (name, sealed) in &incoming.access_wrapped {
                let json = incoming_opener.unwrap(sealed, &identity::access(name)).with_context(|| format!("access '{name}'"))?;
                incoming_access.insert(name.clone(), serde_json::from_slice(&json).map_err(|_| anyhow::anyhow!("access '{name}': not an access policy"))?);
            }
            for (name, cfg) in incoming_access {
                let json = Zeroizing::new(serde_json::to_vec(&cfg)?);
                let existing = current.access_wrapped.get(&name).map(|s| ours.unwrap(s, &identity::access(&name))).transpose()?;
                if existing.as_deref().map(|e| &e[..]) == Some(&json[..]) {
                    report.unchanged += 1;
                    continue;
                }
                let sealed = sealer.seal(&json, &identity::access(&name));
                sqlx::query("DELETE FROM access_policies WHERE name = $1").bind(&name).execute(&mut *tx).await?;
                sqlx::query("INSERT INTO access_policies (name, config_sealed, updated_at) VALUES ($1, $2, $3)").bind(&name).bind(&sealed).bind(now_secs()).execute(&mut *tx).await?;
                merged.access_wrapped.insert(name.clone(), sealed);
                let verb = if existing.is_some() { "updated" } else { "created" };
                audit.push((verb.into(), "access_policy".into(), name.clone(), String::new()));
                if existing.is_some() { report.updated.push(("access".into(), name)) } else { report.created.push(("access".into(), name)) }
            }
            for r in &incoming.access_rules {
                let old = current.access_rules.iter().find(|c| c.prefix.eq_ignore_ascii_case(&r.prefix));
                if old == Some(r) {
                    report.unchanged += 1;
                    continue;
                }
                sqlx::query("DELETE FROM access_rules WHERE prefix = $1").bind(r.prefix.to_ascii_lowercase()).execute(&mut *tx).await?;
                sqlx::query("INSERT INTO access_rules (prefix, access) VALUES ($1, $2)").bind(r.prefix.to_ascii_lowercase()).bind(&r.access).execute(&mut *tx).await?;
                audit.push((if old.is_some() { "updated" } else { "created" }.into(), "access_rule".into(), r.prefix.clone(), format!("access={}", r.access)));
                merged.access_rules.retain(|c| !c.prefix.eq_ignore_ascii_case(&r.prefix));
                merged.access_rules.push(super::doc::AccessRuleDoc { prefix: r.prefix.to_ascii_lowercase(), access: r.access.clone() });
                if old.is_some() { report.updated.push(("access_rule".into(), r.prefix.clone())) } else { report.created.push(("access_rule".into(), r.prefix.clone())) }
            }

            // Assets: the incoming entry, its secrets opened (or taken from the stored entry when
            // an export without keys left them out), compared with the stored one opened.
            for a in &incoming.assets {
                let key = a.path.to_ascii_lowercase();
                let stored = current.assets.iter().find(|c| c.path.to_ascii_lowercase() == key);
                let new = open_asset(a, &incoming_opener, stored, &ours, incoming.keys_omitted).with_context(|| format!("asset '{}'", a.path))?;
                let old = stored.map(|s| open_asset(s, &ours, None, &ours, false)).transpose()?;
                if old.as_ref() == Some(&new) {
                    report.unchanged += 1;
                    continue;
                }
                let sealed = seal_asset(&new, &sealer);
                let asset_id = write_asset(&mut tx, &sealed).await?;
                let verb = if old.is_some() { "updated" } else { "created" };
                audit.push((verb.into(), "asset".into(), asset_id, format!("path={}", a.path)));
                if old.is_some() { report.updated.push(("asset".into(), a.path.clone())) } else { report.created.push(("asset".into(), a.path.clone())) }
                match merged.assets.iter_mut().find(|c| c.path.to_ascii_lowercase() == key) {
                    Some(slot) => *slot = sealed,
                    None => merged.assets.push(sealed),
                }
            }

            for l in &incoming.locators {
                let old = current.locators.iter().find(|c| c.id == l.id);
                let normalized = normalize_locator(l)?;
                if old == Some(&normalized) {
                    report.unchanged += 1;
                    continue;
                }
                write_locator(&mut tx, &normalized).await?;
                let verb = if old.is_some() { "updated" } else { "created" };
                audit.push((verb.into(), "locator".into(), normalized.id.clone(), format!("asset={} start={} expiry={}", normalized.asset, normalized.start.as_deref().unwrap_or("-"), normalized.expiry.as_deref().unwrap_or("-"))));
                if old.is_some() { report.updated.push(("locator".into(), l.id.clone())) } else { report.created.push(("locator".into(), l.id.clone())) }
                match merged.locators.iter_mut().find(|c| c.id == l.id) {
                    Some(slot) => *slot = normalized,
                    None => merged.locators.push(normalized),
                }
            }

        }
        // The catalog this would leave must validate as a whole before it is committed.
        Snapshot::build(&[(self.shown_url(), &merged, &ours as &dyn Resolve)]).context("the catalog after this import does not validate; nothing was changed")?;
        if audit.is_empty() {
            // Nothing changed: no new version, no notification.
            tx.rollback().await?;
            return Ok(report);
        }
        for (action, entity, id, detail) in audit {
            append_audit(&mut tx, actor, &action, &entity, &id, &detail).await?;
        }
        self.notify(&mut tx).await?;
        tx.commit().await?;
        Ok(report)
    }

    /// What `sealcast ingest` records: the asset's storage encryption (set or removed) and the
    /// protocols `publish` names, keeping the rest of its entry.
    pub async fn record(&self, asset: &str, storage: Option<super::write::StorageRecord>, publish: super::write::Publish, actor: &Actor) -> anyhow::Result<ImportReport> {
        let all = self.export(true).await?;
        let mut a = match all.assets.iter().find(|a| a.path.eq_ignore_ascii_case(asset)) {
            Some(a) => a.clone(),
            None if storage.is_none() && publish.is_empty() => return Ok(ImportReport::default()),
            None => AssetDoc::new(asset),
        };
        a.storage = storage.map(|(key_id, key, files)| StorageDoc {
            key_id,
            key: Some(SecretText(sealcast_cenc::kid::hex(&key))),
            key_wrapped: None,
            files: files.into_iter().map(|(name, iv)| StorageFileDoc { name, iv: sealcast_cenc::kid::hex(&iv) }).collect(),
        });
        for (slot, d) in [(&mut a.dash, publish.dash), (&mut a.hls, publish.hls), (&mut a.smooth, publish.smooth)] {
            if d.is_some() {
                *slot = d;
            }
        }
        let doc = CatalogDoc { assets: vec![a], sealed_by: all.sealed_by, ..Default::default() };
        self.import(&doc, &Opener(self.sealer()), actor).await
    }

    /// Deletes an asset's entry (its policy and keys); `false` when there was none.
    pub async fn delete_asset(&self, path: &str, actor: &Actor) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE catalog_state SET version = version + 1 WHERE id = 1").execute(&mut *tx).await?;
        let id: Option<String> = sqlx::query("SELECT id FROM assets WHERE path_key = $1").bind(path.to_ascii_lowercase()).fetch_optional(&mut *tx).await?.map(|r| r.try_get(0)).transpose()?;
        let Some(id) = id else {
            tx.rollback().await?;
            return Ok(false);
        };
        for t in ["content_keys", "delivery_policies", "asset_files"] {
            sqlx::query(&format!("DELETE FROM {t} WHERE asset_id = $1")).bind(&id).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM assets WHERE id = $1").bind(&id).execute(&mut *tx).await?;
        append_audit(&mut tx, actor, "deleted", "asset", &id, &format!("path={path}")).await?;
        self.notify(&mut tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes a locator; `false` when there was none.
    pub async fn delete_locator(&self, id: &str, actor: &Actor) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE catalog_state SET version = version + 1 WHERE id = 1").execute(&mut *tx).await?;
        let n = sqlx::query("DELETE FROM locators WHERE id = $1").bind(id).execute(&mut *tx).await?.rows_affected();
        if n == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        append_audit(&mut tx, actor, "deleted", "locator", id, "").await?;
        self.notify(&mut tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// `keys rotate-kek`: a new data-encryption key wrapped by `new_kek`, every sealed value
    /// opened and sealed again under it, in one transaction. Returns how many values were
    /// re-sealed. Other processes follow on their next load once they have the new KEK.
    pub async fn rotate_kek(&self, new_kek: &KekSource, actor: &Actor) -> anyhow::Result<usize> {
        self.follow_dek().await?;
        let old = self.sealer();
        let (new, wrapped) = Sealer::create(new_kek, &self.client).await?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE catalog_state SET version = version + 1 WHERE id = 1").execute(&mut *tx).await?;
        let mut n = 0;
        let reseal = |sealed: &str, ident: &str| -> anyhow::Result<String> { Ok(new.seal(&old.open_sealed(sealed, ident)?, ident)) };
        n += reseal_rows(&mut tx, "SELECT name, options_sealed FROM authorization_policies", "UPDATE authorization_policies SET options_sealed = $1 WHERE name = $2", &|k| identity::authorization(k), &reseal).await?;
        let rows = sqlx::query("SELECT asset_id, position, id, content_key_type, key_sealed FROM content_keys").fetch_all(&mut *tx).await?;
        for r in rows {
            let (asset, pos, id, t): (String, i64, String, i64) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
            let kid = parse_nb_kid(&id)?;
            let kind = KindDoc::from_ams_type(t).context("unknown content key type")?;
            let s = reseal(&r.try_get::<String, _>(4)?, &identity::content_key(kid, kind))?;
            sqlx::query("UPDATE content_keys SET key_sealed = $1 WHERE asset_id = $2 AND position = $3").bind(s).bind(&asset).bind(pos).execute(&mut *tx).await?;
            n += 1;
        }
        let rows = sqlx::query("SELECT id, path, cpix_sealed, storage_key_id, storage_key_sealed FROM assets").fetch_all(&mut *tx).await?;
        for r in rows {
            let (id, path): (String, String) = (r.try_get(0)?, r.try_get(1)?);
            if let Some(c) = r.try_get::<Option<String>, _>(2)? {
                let s = reseal(&c, &identity::cpix(&path))?;
                sqlx::query("UPDATE assets SET cpix_sealed = $1 WHERE id = $2").bind(s).bind(&id).execute(&mut *tx).await?;
                n += 1;
            }
            if let (Some(kid), Some(k)) = (r.try_get::<Option<String>, _>(3)?, r.try_get::<Option<String>, _>(4)?) {
                let kid = Kid::parse(&kid).map_err(|e| anyhow::anyhow!("storage key id: {e}"))?;
                let s = reseal(&k, &identity::storage_key(kid))?;
                sqlx::query("UPDATE assets SET storage_key_sealed = $1 WHERE id = $2").bind(s).bind(&id).execute(&mut *tx).await?;
                n += 1;
            }
        }
        n += reseal_rows(&mut tx, "SELECT name, config_sealed FROM access_policies", "UPDATE access_policies SET config_sealed = $1 WHERE name = $2", &|k| identity::access(k), &reseal).await?;
        n += reseal_rows(&mut tx, "SELECT thumbprint, private_key_sealed FROM protection_keys", "UPDATE protection_keys SET private_key_sealed = $1 WHERE thumbprint = $2", &|k| identity::protection_key(k), &reseal).await?;
        n += reseal_rows(&mut tx, "SELECT id, key_sealed FROM ams_content_keys", "UPDATE ams_content_keys SET key_sealed = $1 WHERE id = $2", &|k| identity::uploaded_key(k), &reseal).await?;
        for set in super::ams::SEALED_SETS {
            let select = format!("SELECT id, body FROM ams_entities WHERE entity_set = '{set}'");
            let update = format!("UPDATE ams_entities SET body = $1 WHERE entity_set = '{set}' AND id = $2");
            n += reseal_rows(&mut tx, &select, &update, &|k| super::ams::entity_identity(set, k), &reseal).await?;
        }
        sqlx::query("UPDATE kek SET kind = $1, reference = $2, wrapped_dek = $3, created_at = $4 WHERE id = 'current'").bind(&wrapped.kind).bind(&wrapped.reference).bind(&wrapped.wrapped).bind(now_secs()).execute(&mut *tx).await?;
        append_audit(&mut tx, actor, "rotated", "kek", "current", &format!("to={} resealed={n}", wrapped.reference)).await?;
        self.notify(&mut tx).await?;
        tx.commit().await?;
        *self.sealer.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new);
        *self.dek_wrapped.write().unwrap_or_else(|e| e.into_inner()) = wrapped.wrapped;
        Ok(n)
    }

    /// The audit trail, oldest first (the last `limit` rows).
    pub async fn audit(&self, limit: i64) -> anyhow::Result<Vec<AuditRow>> {
        let rows = sqlx::query("SELECT seq, at, actor, address, action, entity, entity_id, detail FROM audit ORDER BY seq DESC LIMIT $1").bind(limit).fetch_all(&self.pool).await?;
        let mut v: Vec<AuditRow> = rows
            .into_iter()
            .map(|r| -> anyhow::Result<AuditRow> {
                Ok(AuditRow { seq: r.try_get(0)?, at: r.try_get(1)?, actor: r.try_get(2)?, address: r.try_get(3)?, action: r.try_get(4)?, entity: r.try_get(5)?, entity_id: r.try_get(6)?, detail: r.try_get(7)? })
            })
            .collect::<anyhow::Result<_>>()?;
        v.reverse();
        Ok(v)
    }

    pub(crate) async fn notify(&self, tx: &mut AnyConnection) -> anyhow::Result<()> {
        if self.backend == Backend::Postgres {
            // Delivered on commit, to every listening replica.
            sqlx::query("SELECT pg_notify($1, 'changed')").bind(CHANNEL).execute(&mut *tx).await?;
        }
        Ok(())
    }
}

/// Re-seals one sealed column: `select` gives (key, sealed value) rows, `update` takes
/// (sealed value, key); `ident` is each row's associated data.
async fn reseal_rows(tx: &mut AnyConnection, select: &str, update: &str, ident: &dyn Fn(&str) -> String, reseal: &dyn Fn(&str, &str) -> anyhow::Result<String>) -> anyhow::Result<usize> {
    let rows = sqlx::query(select).fetch_all(&mut *tx).await?;
    for r in &rows {
        let key: String = r.try_get(0)?;
        let sealed = reseal(&r.try_get::<String, _>(1)?, &ident(&key))?;
        sqlx::query(update).bind(sealed).bind(&key).execute(&mut *tx).await?;
    }
    Ok(rows.len())
}

async fn read_kek(pool: &AnyPool) -> anyhow::Result<Option<WrappedDek>> {
    let r = sqlx::query("SELECT kind, reference, wrapped_dek FROM kek WHERE id = 'current'").fetch_optional(pool).await.context("reading the key-encryption record")?;
    r.map(|r| -> anyhow::Result<WrappedDek> { Ok(WrappedDek { kind: r.try_get(0)?, reference: r.try_get(1)?, wrapped: r.try_get(2)? }) }).transpose()
}

async fn auth_id(tx: &mut AnyConnection, name: &str) -> anyhow::Result<Option<String>> {
    Ok(sqlx::query("SELECT id FROM authorization_policies WHERE name = $1").bind(name).fetch_optional(&mut *tx).await?.map(|r| r.try_get(0)).transpose()?)
}

pub(crate) async fn append_audit(tx: &mut AnyConnection, actor: &Actor, action: &str, entity: &str, id: &str, detail: &str) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO audit (at, actor, address, action, entity, entity_id, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(now_secs())
        .bind(&actor.identity)
        .bind(&actor.address)
        .bind(action)
        .bind(entity)
        .bind(id)
        .bind(detail)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Opens sealed values with the database's data-encryption key; database documents name no
/// files.
struct Opener(Arc<Sealer>);

impl Resolve for Opener {
    fn file(&self, rel: &str) -> std::io::Result<String> {
        Err(std::io::Error::other(format!("a database catalog names no files ({rel})")))
    }
    fn unwrap(&self, sealed: &str, identity: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        self.0.open_sealed(sealed, identity)
    }
}

/// An incoming document's files, and the key its sealed values open with.
struct Incoming<'a> {
    files: &'a dyn Resolve,
    sealer: Option<&'a Sealer>,
}

impl Resolve for Incoming<'_> {
    fn file(&self, rel: &str) -> std::io::Result<String> {
        self.files.file(rel)
    }
    fn unwrap(&self, sealed: &str, identity: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        match self.sealer {
            Some(s) => s.open_sealed(sealed, identity),
            None => bail!("a wrapped key in a document that does not carry its sealing key (`sealed_by`)"),
        }
    }
}

/// An asset with every secret opened to clear text (hex, or the CPIX text): comparable.
fn open_asset(a: &AssetDoc, r: &dyn Resolve, stored: Option<&AssetDoc>, ours: &dyn Resolve, omitted: bool) -> anyhow::Result<AssetDoc> {
    let mut out = a.clone();
    out.keys.clear();
    for k in &a.keys {
        let kid = Kid::parse(&k.kid).map_err(|e| anyhow::anyhow!("kid '{}': {e}", k.kid))?;
        let ident = identity::content_key(kid, k.kind);
        let clear = match (&k.key, &k.key_wrapped) {
            (Some(c), _) => c.0.trim().to_ascii_lowercase(),
            (None, Some(s)) => sealcast_cenc::kid::hex(&r.unwrap(s, &ident)?),
            (None, None) if omitted => {
                let s = stored.and_then(|s| s.keys.iter().find(|x| Kid::parse(&x.kid).ok() == Some(kid) && x.kind == k.kind)).and_then(|x| x.key_wrapped.clone()).with_context(|| format!("key {kid} is given without its key and is not stored"))?;
                sealcast_cenc::kid::hex(&ours.unwrap(&s, &ident)?)
            }
            (None, None) => bail!("key {kid}: no key given"),
        };
        out.keys.push(KeyDoc { kid: kid.to_string(), key: Some(SecretText(clear)), key_wrapped: None, kind: k.kind, authorization: k.authorization.clone() });
    }
    let cpix_ident = identity::cpix(&a.path);
    out.cpix = None;
    out.cpix_wrapped = match (&a.cpix, &a.cpix_wrapped) {
        (Some(p), _) => Some(r.file(&p.to_string_lossy()).with_context(|| format!("reading CPIX {}", p.display()))?),
        (None, Some(s)) => Some(String::from_utf8(r.unwrap(s, &cpix_ident)?.to_vec()).context("CPIX is not UTF-8")?),
        (None, None) if omitted && a.keys.is_empty() => match stored.and_then(|s| s.cpix_wrapped.as_ref()) {
            Some(s) => Some(String::from_utf8(ours.unwrap(s, &cpix_ident)?.to_vec()).context("CPIX is not UTF-8")?),
            None => None,
        },
        (None, None) => None,
    };
    if let Some(st) = &a.storage {
        let kid = Kid::parse(&st.key_id).map_err(|e| anyhow::anyhow!("storage.key_id '{}': {e}", st.key_id))?;
        let ident = identity::storage_key(kid);
        let clear = match (&st.key, &st.key_wrapped) {
            (Some(c), _) => c.0.trim().to_ascii_lowercase(),
            (None, Some(s)) => sealcast_cenc::kid::hex(&r.unwrap(s, &ident)?),
            (None, None) if omitted => {
                let s = stored.and_then(|s| s.storage.as_ref()).filter(|s| Kid::parse(&s.key_id).ok() == Some(kid)).and_then(|s| s.key_wrapped.clone()).with_context(|| format!("storage key {kid} is given without its key and is not stored"))?;
                sealcast_cenc::kid::hex(&ours.unwrap(&s, &ident)?)
            }
            (None, None) => bail!("storage key {kid}: no key given"),
        };
        let files = st.files.iter().map(|f| StorageFileDoc { name: f.name.clone(), iv: f.iv.trim().to_ascii_lowercase() }).collect();
        out.storage = Some(StorageDoc { key_id: kid.to_string(), key: Some(SecretText(clear)), key_wrapped: None, files });
    }
    Ok(out)
}

/// An opened asset (see [`open_asset`]) with every secret sealed for storing.
fn seal_asset(a: &AssetDoc, s: &Sealer) -> AssetDoc {
    let mut out = a.clone();
    for k in &mut out.keys {
        if let (Some(c), Ok(kid)) = (k.key.take(), Kid::parse(&k.kid)) {
            let bytes = Zeroizing::new(super::doc::hex_n(&c.0, c.0.len() / 2).unwrap_or_default());
            k.key_wrapped = Some(s.seal(&bytes, &identity::content_key(kid, k.kind)));
        }
    }
    if let Some(x) = out.cpix_wrapped.take() {
        out.cpix_wrapped = Some(s.seal(x.as_bytes(), &identity::cpix(&a.path)));
    }
    if let Some(st) = &mut out.storage {
        if let (Some(c), Ok(kid)) = (st.key.take(), Kid::parse(&st.key_id)) {
            let bytes = Zeroizing::new(super::doc::hex_n(&c.0, c.0.len() / 2).unwrap_or_default());
            st.key_wrapped = Some(s.seal(&bytes, &identity::storage_key(kid)));
        }
    }
    out
}

fn strip_secrets(doc: &mut CatalogDoc) {
    doc.keys_omitted = true;
    doc.authorization_wrapped.clear();
    doc.access_wrapped.clear();
    for a in &mut doc.assets {
        a.cpix_wrapped = None;
        for k in &mut a.keys {
            k.key_wrapped = None;
        }
        if let Some(s) = &mut a.storage {
            s.key_wrapped = None;
        }
    }
}

fn normalize_locator(l: &LocatorDoc) -> anyhow::Result<LocatorDoc> {
    let t = |v: &Option<String>| -> anyhow::Result<Option<String>> {
        v.as_deref().map(|s| super::doc::parse_time(s).map(super::doc::format_time).ok_or_else(|| anyhow::anyhow!("locator '{}': '{s}' is not an RFC 3339 time", l.id))).transpose()
    };
    Ok(LocatorDoc { id: l.id.clone(), asset: l.asset.clone(), start: t(&l.start)?, expiry: t(&l.expiry)? })
}

/// AssetDeliveryPolicyType of a delivery.
fn policy_type(d: Delivery) -> i64 {
    match d {
        Delivery::NoDynamicEncryption => 2,
        Delivery::DynamicEnvelopeEncryption => 3,
        Delivery::DynamicCommonEncryption => 4,
        Delivery::DynamicCommonEncryptionCbcs => 5,
    }
}

fn delivery_of(t: i64) -> Option<Delivery> {
    Delivery::ALL.into_iter().find(|d| policy_type(*d) == t)
}

/// AssetDeliveryProtocol flags.
const SMOOTH: i64 = 0x1;
const DASH: i64 = 0x2;
const HLS: i64 = 0x4;
const PROGRESSIVE_DOWNLOAD: i64 = 0x10;

fn parse_nb_kid(id: &str) -> anyhow::Result<Kid> {
    let raw = id.strip_prefix("nb:kid:UUID:").unwrap_or(id);
    Kid::parse(raw).map_err(|e| anyhow::anyhow!("content key id '{id}': {e}"))
}

/// Writes a sealed asset (replacing its rows); returns its ID.
async fn write_asset(tx: &mut AnyConnection, a: &AssetDoc) -> anyhow::Result<String> {
    let key = a.path.to_ascii_lowercase();
    let existing: Option<String> = sqlx::query("SELECT id FROM assets WHERE path_key = $1").bind(&key).fetch_optional(&mut *tx).await?.map(|r| r.try_get(0)).transpose()?;
    let now = now_secs();
    let id = match existing {
        Some(id) => {
            for t in ["content_keys", "delivery_policies", "asset_files"] {
                sqlx::query(&format!("DELETE FROM {t} WHERE asset_id = $1")).bind(&id).execute(&mut *tx).await?;
            }
            sqlx::query("UPDATE assets SET path = $1, options = $2, clear_lead_secs = $3, carry_token = $4, authorization_policy = $5, cpix_sealed = $6, storage_key_id = $7, storage_key_sealed = $8, updated_at = $9, access = $11 WHERE id = $10")
                .bind(&a.path)
                .bind(i64::from(a.storage.is_some()))
                .bind(i64::from(a.clear_lead_secs))
                .bind(i64::from(a.carry_token))
                .bind(a.authorization.clone())
                .bind(a.cpix_wrapped.clone())
                .bind(a.storage.as_ref().map(|s| s.key_id.clone()))
                .bind(a.storage.as_ref().and_then(|s| s.key_wrapped.clone()))
                .bind(now)
                .bind(&id)
                .bind(a.access.clone())
                .execute(&mut *tx)
                .await?;
            id
        }
        None => {
            let id = new_id("nb:cid:UUID:");
            sqlx::query("INSERT INTO assets (id, path, path_key, options, clear_lead_secs, carry_token, authorization_policy, cpix_sealed, storage_key_id, storage_key_sealed, created_at, updated_at, access) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)")
                .bind(&id)
                .bind(&a.path)
                .bind(&key)
                .bind(i64::from(a.storage.is_some()))
                .bind(i64::from(a.clear_lead_secs))
                .bind(i64::from(a.carry_token))
                .bind(a.authorization.clone())
                .bind(a.cpix_wrapped.clone())
                .bind(a.storage.as_ref().map(|s| s.key_id.clone()))
                .bind(a.storage.as_ref().and_then(|s| s.key_wrapped.clone()))
                .bind(now)
                .bind(now)
                .bind(a.access.clone())
                .execute(&mut *tx)
                .await?;
            id
        }
    };
    if let Some(st) = &a.storage {
        for f in &st.files {
            let iv = super::doc::hex_n(&f.iv, 8).and_then(|v| <[u8; 8]>::try_from(v).ok()).map(u64::from_be_bytes).context("storage IV")?;
            sqlx::query("INSERT INTO asset_files (asset_id, name, is_encrypted, encryption_scheme, initialization_vector) VALUES ($1, $2, 1, 'StorageEncryption', $3)").bind(&id).bind(&f.name).bind(iv.to_string()).execute(&mut *tx).await?;
        }
    }
    for (i, k) in a.keys.iter().enumerate() {
        let kid = Kid::parse(&k.kid).map_err(|e| anyhow::anyhow!("kid: {e}"))?;
        sqlx::query("INSERT INTO content_keys (asset_id, position, id, content_key_type, key_sealed, authorization_policy) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&id)
            .bind(i as i64)
            .bind(format!("nb:kid:UUID:{kid}"))
            .bind(k.kind.ams_type())
            .bind(k.key_wrapped.clone().context("unsealed key")?)
            .bind(k.authorization.clone())
            .execute(&mut *tx)
            .await?;
    }
    // One delivery policy per delivery type, naming the protocols that use it.
    let license = serde_json::to_string(&a.license)?;
    let mut by_type: BTreeMap<i64, i64> = BTreeMap::new();
    for (flag, d) in [(DASH, a.dash), (HLS, a.hls), (SMOOTH, a.smooth)] {
        if let Some(d) = d {
            *by_type.entry(policy_type(d)).or_default() |= flag;
        }
    }
    if a.progressive_download {
        // Downloads are never encrypted on the way out: the flag rides on a clear policy row.
        *by_type.entry(policy_type(Delivery::NoDynamicEncryption)).or_default() |= PROGRESSIVE_DOWNLOAD;
    }
    for (t, protocols) in by_type {
        sqlx::query("INSERT INTO delivery_policies (id, asset_id, protocols, policy_type, configuration) VALUES ($1, $2, $3, $4, $5)").bind(new_id("nb:adpid:UUID:")).bind(&id).bind(protocols).bind(t).bind(&license).execute(&mut *tx).await?;
    }
    Ok(id)
}

async fn write_locator(tx: &mut AnyConnection, l: &LocatorDoc) -> anyhow::Result<()> {
    let t = |v: &Option<String>| v.as_deref().and_then(super::doc::parse_time);
    sqlx::query("DELETE FROM locators WHERE id = $1").bind(&l.id).execute(&mut *tx).await?;
    sqlx::query("INSERT INTO locators (id, asset_path, locator_type, start_time, expiry_time, created_at) VALUES ($1, $2, 2, $3, $4, $5)").bind(&l.id).bind(&l.asset).bind(t(&l.start)).bind(t(&l.expiry)).bind(now_secs()).execute(&mut *tx).await?;
    Ok(())
}

/// Reads the whole catalog (secrets sealed) inside a transaction.
async fn read_doc(tx: &mut AnyConnection) -> anyhow::Result<CatalogDoc> {
    let mut doc = CatalogDoc::default();
    for r in sqlx::query("SELECT name, options_sealed FROM authorization_policies ORDER BY name").fetch_all(&mut *tx).await? {
        doc.authorization_wrapped.insert(r.try_get(0)?, r.try_get(1)?);
    }
    let mut files: BTreeMap<String, Vec<StorageFileDoc>> = BTreeMap::new();
    for r in sqlx::query("SELECT asset_id, name, initialization_vector FROM asset_files ORDER BY asset_id, name").fetch_all(&mut *tx).await? {
        let iv: String = r.try_get(2)?;
        let iv: u64 = iv.parse().context("stored IV is not a decimal u64")?;
        files.entry(r.try_get(0)?).or_default().push(StorageFileDoc { name: r.try_get(1)?, iv: sealcast_cenc::kid::hex(&iv.to_be_bytes()) });
    }
    let mut keys: BTreeMap<String, Vec<KeyDoc>> = BTreeMap::new();
    for r in sqlx::query("SELECT asset_id, id, content_key_type, key_sealed, authorization_policy FROM content_keys ORDER BY asset_id, position").fetch_all(&mut *tx).await? {
        let kid = parse_nb_kid(&r.try_get::<String, _>(1)?)?;
        let kind = KindDoc::from_ams_type(r.try_get(2)?).context("stored content key of an unknown type")?;
        keys.entry(r.try_get(0)?).or_default().push(KeyDoc { kid: kid.to_string(), key: None, key_wrapped: Some(r.try_get(3)?), kind, authorization: r.try_get(4)? });
    }
    let mut policies: BTreeMap<String, Vec<(i64, i64, String)>> = BTreeMap::new();
    for r in sqlx::query("SELECT asset_id, protocols, policy_type, configuration FROM delivery_policies ORDER BY asset_id, policy_type").fetch_all(&mut *tx).await? {
        policies.entry(r.try_get(0)?).or_default().push((r.try_get(1)?, r.try_get(2)?, r.try_get(3)?));
    }
    for r in sqlx::query("SELECT name, config_sealed FROM access_policies ORDER BY name").fetch_all(&mut *tx).await? {
        doc.access_wrapped.insert(r.try_get(0)?, r.try_get(1)?);
    }
    for r in sqlx::query("SELECT prefix, access FROM access_rules ORDER BY prefix").fetch_all(&mut *tx).await? {
        doc.access_rules.push(super::doc::AccessRuleDoc { prefix: r.try_get(0)?, access: r.try_get(1)? });
    }
    for r in sqlx::query("SELECT id, path, clear_lead_secs, carry_token, authorization_policy, cpix_sealed, storage_key_id, storage_key_sealed, access FROM assets ORDER BY path_key").fetch_all(&mut *tx).await? {
        let id: String = r.try_get(0)?;
        let path: String = r.try_get(1)?;
        let mut a = AssetDoc {
            path: path.clone(),
            dash: None,
            hls: None,
            smooth: None,
            clear_lead_secs: u32::try_from(r.try_get::<i64, _>(2)?).unwrap_or(0),
            license: LicenseUrls::default(),
            keys: keys.remove(&id).unwrap_or_default(),
            cpix: None,
            cpix_wrapped: r.try_get(5)?,
            storage: None,
            authorization: r.try_get(4)?,
            carry_token: r.try_get::<i64, _>(3)? != 0,
            progressive_download: false,
            access: r.try_get(8)?,
        };
        for (protocols, t, config) in policies.remove(&id).unwrap_or_default() {
            let d = delivery_of(t).with_context(|| format!("asset '{path}': delivery policy type {t} is not served"))?;
            a.progressive_download |= protocols & PROGRESSIVE_DOWNLOAD != 0;
            for (flag, slot) in [(DASH, &mut a.dash), (HLS, &mut a.hls), (SMOOTH, &mut a.smooth)] {
                if protocols & flag != 0 {
                    if slot.is_some() {
                        bail!("asset '{path}': two delivery policies cover one protocol");
                    }
                    *slot = Some(d);
                }
            }
            a.license = serde_json::from_str(&config).with_context(|| format!("asset '{path}': delivery policy configuration"))?;
        }
        if let (Some(kid), Some(k)) = (r.try_get::<Option<String>, _>(6)?, r.try_get::<Option<String>, _>(7)?) {
            a.storage = Some(StorageDoc { key_id: kid, key: None, key_wrapped: Some(k), files: files.remove(&id).unwrap_or_default() });
        }
        doc.assets.push(a);
    }
    for r in sqlx::query("SELECT id, asset_path, start_time, expiry_time FROM locators ORDER BY id").fetch_all(&mut *tx).await? {
        let t = |v: Option<i64>| v.map(super::doc::format_time);
        doc.locators.push(LocatorDoc { id: r.try_get(0)?, asset: r.try_get(1)?, start: t(r.try_get(2)?), expiry: t(r.try_get(3)?) });
    }
    Ok(doc)
}

/// The database store as the request path sees it: the whole catalog in memory, kept current
/// by a watcher task.
pub struct DbCatalog {
    db: Arc<Database>,
    current: RwLock<Arc<Snapshot>>,
    version: AtomicI64,
    degraded: Mutex<Option<String>>,
    reload_failures: AtomicU64,
    last_load: AtomicI64,
    store: Option<sealcast_storage::Store>,
}

impl DbCatalog {
    /// Loads the catalog (which must succeed) and, when `watch` is set, keeps it current:
    /// PostgreSQL notifications and a version poll every `poll`. `store`, when given, is told
    /// the storage-encrypted files of every new snapshot before it is used.
    pub async fn start(db: Arc<Database>, store: Option<sealcast_storage::Store>, poll: Duration, watch: bool) -> anyhow::Result<Arc<DbCatalog>> {
        let (v, doc) = db.load_serving().await.with_context(|| format!("loading the catalog from {}", db.shown_url()))?;
        let snap = db.snapshot(&doc).with_context(|| format!("the catalog in {} does not validate", db.shown_url()))?;
        if let Some(s) = &store {
            s.set_encrypted_files(snap.storage_files()).map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let c = Arc::new(DbCatalog {
            db,
            current: RwLock::new(Arc::new(snap)),
            version: AtomicI64::new(v),
            degraded: Mutex::new(None),
            reload_failures: AtomicU64::new(0),
            last_load: AtomicI64::new(now_secs()),
            store,
        });
        if watch {
            let weak = Arc::downgrade(&c);
            tokio::spawn(watch_loop(weak, poll));
        }
        Ok(c)
    }

    /// The database.
    pub fn database(&self) -> &Arc<Database> {
        &self.db
    }

    /// The version in force.
    pub fn version(&self) -> i64 {
        self.version.load(Ordering::Acquire)
    }

    /// Catalog reloads that failed (database unreachable, or a catalog that does not validate).
    pub fn reload_failures(&self) -> u64 {
        self.reload_failures.load(Ordering::Relaxed)
    }

    /// Unix seconds of the last successful load or version check.
    pub fn last_load(&self) -> i64 {
        self.last_load.load(Ordering::Relaxed)
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every asset with its policy, by path.
    pub fn assets(&self) -> Vec<(String, Arc<AssetPolicy>)> {
        self.snapshot().assets()
    }

    /// Checks the version and loads a changed catalog. Errors leave the current one in force.
    pub async fn refresh(&self) -> anyhow::Result<bool> {
        let v = self.db.version().await?;
        self.last_load.store(now_secs(), Ordering::Relaxed);
        if v == self.version() {
            return Ok(false);
        }
        let (v, doc) = self.db.load_serving().await?;
        let snap = self.db.snapshot(&doc)?;
        if let Some(s) = &self.store {
            s.set_encrypted_files(snap.storage_files()).map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snap);
        self.version.store(v, Ordering::Release);
        Ok(true)
    }

    fn set_degraded(&self, why: Option<String>) {
        let mut d = self.degraded.lock().unwrap_or_else(|e| e.into_inner());
        match (&*d, &why) {
            (None, Some(w)) => tracing::error!(database = %self.db.shown_url(), error = %w, "catalog database unreachable or invalid; serving the last good catalog"),
            (Some(_), None) => tracing::info!(database = %self.db.shown_url(), version = self.version(), "catalog database reachable again; catalog current"),
            _ => {}
        }
        *d = why;
    }
}

async fn watch_loop(weak: std::sync::Weak<DbCatalog>, poll: Duration) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    if let Some(c) = weak.upgrade() {
        if c.db.backend == Backend::Postgres {
            tokio::spawn(listen_loop(c.db.url.clone(), tx.clone(), weak.clone()));
        }
    }
    drop(tx);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            Some(()) = rx.recv() => {}
        }
        let Some(c) = weak.upgrade() else { return };
        match c.refresh().await {
            Ok(changed) => {
                if changed {
                    tracing::info!(version = c.version(), assets = c.snapshot().len(), "catalog changed; new version in force");
                }
                c.set_degraded(None);
            }
            Err(e) => {
                c.reload_failures.fetch_add(1, Ordering::Relaxed);
                c.set_degraded(Some(format!("{e:#}")));
            }
        }
    }
}

/// PostgreSQL `LISTEN`: a notification wakes the watcher at once. Reconnects after errors
/// (the version poll covers the gap).
async fn listen_loop(url: String, tx: tokio::sync::mpsc::Sender<()>, weak: std::sync::Weak<DbCatalog>) {
    loop {
        if weak.upgrade().is_none() {
            return;
        }
        if let Ok(mut l) = sqlx::postgres::PgListener::connect(&url).await {
            if l.listen(CHANNEL).await.is_ok() {
                // A change may have landed while we were not listening.
                let _ = tx.try_send(());
                while l.recv().await.is_ok() {
                    let _ = tx.try_send(());
                    if weak.upgrade().is_none() {
                        return;
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

impl Catalog for DbCatalog {
    fn policy(&self, path: &str) -> Option<Arc<AssetPolicy>> {
        self.snapshot().policy(path)
    }

    fn key(&self, kid: Kid) -> Option<KeyGrant> {
        self.snapshot().keys.get(&kid).cloned()
    }

    fn locator(&self, id: &str) -> Option<Locator> {
        self.snapshot().locators.get(id).cloned()
    }

    fn storage_files(&self) -> Vec<(String, sealcast_storage::FileEncryption)> {
        self.snapshot().storage_files()
    }

    fn degraded(&self) -> Option<String> {
        self.degraded.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn access(&self, path: &str) -> Option<Arc<crate::access::AccessPolicy>> {
        self.snapshot().access(path)
    }
}
