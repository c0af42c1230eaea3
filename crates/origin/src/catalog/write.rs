//! Writing the TOML catalog: `sealcast ingest` records an asset (its storage encryption and
//! the protocols it publishes) in the catalog file, atomically, keeping everything else.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use sealcast_cenc::kid::hex;
use sealcast_storage::upload::random_id;

use super::Delivery;

/// What an ingest records as the asset's delivery policy (`None`: leave as it is; a new
/// entry then does not name the protocol, which blocks it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Publish {
    /// DASH.
    pub dash: Option<Delivery>,
    /// HLS.
    pub hls: Option<Delivery>,
    /// Smooth Streaming.
    pub smooth: Option<Delivery>,
}

impl Publish {
    /// Every protocol clear (`NoDynamicEncryption`).
    pub fn clear() -> Publish {
        let c = Some(Delivery::NoDynamicEncryption);
        Publish { dash: c, hls: c, smooth: c }
    }

    /// Whether it names no protocol.
    pub fn is_empty(&self) -> bool {
        *self == Publish::default()
    }
}

/// A storage key record: key ID, key bytes, and per file its name and IV.
pub type StorageRecord = (String, Vec<u8>, Vec<(String, [u8; 8])>);

/// Writes (or replaces) the asset's entry in the catalog file: keeps its other entries and
/// the asset's other settings (keys, protocols `publish` does not name), sets or removes
/// `storage`, sets the protocols `publish` names. A clear ingest that publishes nothing adds
/// no entry (an entry is a delivery policy, which would block every protocol it does not
/// name). The new file is loaded as the origin would load it before it replaces the old one.
pub fn record(catalog: &Path, asset: &str, storage: Option<StorageRecord>, publish: Publish) -> anyhow::Result<()> {
    if catalog.is_dir() {
        bail!("{} is a folder: give the catalog file to record the asset in", catalog.display());
    }
    let mut doc: toml::Table = match std::fs::read_to_string(catalog) {
        Ok(t) => toml::from_str(&t).with_context(|| format!("parsing catalog {}", catalog.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => toml::Table::new(),
        Err(e) => return Err(e).with_context(|| format!("reading catalog {}", catalog.display())),
    };
    let assets = doc.entry("asset").or_insert_with(|| toml::Value::Array(Vec::new()));
    let Some(list) = assets.as_array_mut() else { bail!("catalog {}: 'asset' is not a list of tables", catalog.display()) };
    let pos = list.iter().position(|a| a.get("path").and_then(|p| p.as_str()) == Some(asset));
    let entry = match pos {
        Some(i) => &mut list[i],
        None if storage.is_none() && publish.is_empty() => return Ok(()),
        None => {
            let mut t = toml::Table::new();
            t.insert("path".into(), toml::Value::String(asset.to_string()));
            list.push(toml::Value::Table(t));
            let last = list.len() - 1;
            &mut list[last]
        }
    };
    let Some(t) = entry.as_table_mut() else { bail!("catalog {}: asset '{asset}' is not a table", catalog.display()) };
    match storage {
        Some((key_id, key, files)) => {
            let mut s = toml::Table::new();
            s.insert("key_id".into(), toml::Value::String(key_id));
            s.insert("key".into(), toml::Value::String(hex(&key)));
            let files = files
                .into_iter()
                .map(|(name, iv)| {
                    let mut f = toml::Table::new();
                    f.insert("name".into(), toml::Value::String(name));
                    f.insert("iv".into(), toml::Value::String(hex(&iv)));
                    toml::Value::Table(f)
                })
                .collect();
            s.insert("files".into(), toml::Value::Array(files));
            t.insert("storage".into(), toml::Value::Table(s));
        }
        None => {
            t.remove("storage");
        }
    }
    for (proto, d) in [("dash", publish.dash), ("hls", publish.hls), ("smooth", publish.smooth)] {
        if let Some(d) = d {
            t.insert(proto.into(), toml::Value::String(d.as_str().into()));
        }
    }
    let text = format!("# Written by `sealcast ingest`; storage keys are secrets: keep this file private.\n{}", toml::to_string(&doc)?);
    let dir = catalog.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let file_name = catalog.file_name().and_then(|n| n.to_str()).unwrap_or("catalog.toml");
    // An unguessable name, created exclusively (never through a link someone planted there).
    let tmp = dir.join(format!(".{file_name}.ingest-{}", hex(&random_id()?)));
    let write = || -> anyhow::Result<()> {
        let mut f = open_private(&tmp)?;
        keep_owner_and_mode(&f, catalog)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        super::TomlCatalog::load(&tmp).context("the new catalog does not validate")?;
        std::fs::rename(&tmp, catalog)?;
        Ok(())
    };
    let r = write();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r.with_context(|| format!("writing catalog {}", catalog.display()))
}

#[cfg(unix)]
fn open_private(p: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(p)
}

#[cfg(not(unix))]
fn open_private(p: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).create_new(true).open(p)
}

/// Gives the new catalog file the owner, group and mode of the one it replaces (an operator's
/// `root:sealcast 0640` stays so), when there is one; a new catalog stays `0600`.
#[cfg(unix)]
fn keep_owner_and_mode(new: &std::fs::File, old: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Ok(meta) = std::fs::metadata(old) else { return Ok(()) };
    // Changing the owner needs privileges; when we lack them the file stays ours.
    let _ = std::os::unix::fs::fchown(new, Some(meta.uid()), Some(meta.gid()));
    new.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    Ok(())
}

#[cfg(not(unix))]
fn keep_owner_and_mode(_: &std::fs::File, _: &Path) -> anyhow::Result<()> {
    Ok(())
}
