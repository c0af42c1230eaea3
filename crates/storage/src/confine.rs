//! Local paths kept inside the storage root, symlinks included.
//!
//! Request paths are plain segments ([`crate::AssetPath`]), so no name climbs out of the
//! root; a symlink inside it still could (`movie/a.mp4 -> /etc/hostname`, a folder link to a
//! sibling folder). So every local read, `head` and listing resolves the path it was given to
//! its real path first and refuses, as not found, one that is not below the (canonical) root,
//! with a warning for the operator. Links that stay inside the root keep working.
//!
//! Reads resolve before they open (nothing outside the root is even opened: a link to a FIFO
//! would block the open) and, on Linux, check the descriptor they got
//! (`/proc/self/fd/N`) again, so a folder swapped for a link between the two steps is caught
//! too.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The real path of `root/rel`, if it is inside `root` (canonical, as the store keeps it).
/// A missing file, a broken link and a link out of the root are all [`Error::NotFound`].
pub(crate) fn resolve(root: &Path, rel: &str) -> Result<PathBuf> {
    let real = root.join(rel).canonicalize().map_err(|e| io_error(rel, e))?;
    if !real.starts_with(root) {
        return Err(outside(rel, &real));
    }
    Ok(real)
}

/// Whether `root/rel` resolves inside `root`, for filtering listings (a link out of the root
/// is logged). An entry that vanished since it was listed is left out too.
pub(crate) fn is_inside(root: &Path, rel: &str) -> bool {
    !matches!(resolve(root, rel), Err(Error::NotFound(_)))
}

/// Opens `root/rel` for reading if it resolves inside `root`.
pub(crate) fn open(root: &Path, rel: &str) -> Result<File> {
    let real = resolve(root, rel)?;
    let f = File::open(&real).map_err(|e| io_error(rel, e))?;
    if let Some(opened) = opened_path(&f) {
        if !opened.starts_with(root) {
            return Err(outside(rel, &opened));
        }
    }
    Ok(f)
}

/// Where the kernel says the open file is (`None` where we cannot ask).
#[cfg(target_os = "linux")]
fn opened_path(f: &File) -> Option<PathBuf> {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd())).ok()
}

#[cfg(not(target_os = "linux"))]
fn opened_path(_: &File) -> Option<PathBuf> {
    None
}

fn outside(rel: &str, real: &Path) -> Error {
    // The operator should fix the link; the client only learns that there is no such object.
    tracing::warn!(path = %rel, target = %real.display(), "symlink leads out of the storage root: not served");
    Error::NotFound(rel.to_string())
}

fn io_error(rel: &str, e: std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory => Error::NotFound(rel.to_string()),
        _ => Error::Unavailable(format!("{rel}: {e}")),
    }
}
