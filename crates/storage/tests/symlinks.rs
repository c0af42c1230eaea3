//! Symlinks inside a local storage root: one that stays inside the root works like the file
//! or folder it points at; one that leads out of it (to `/etc/hostname`, to a sibling folder)
//! is not found — not by a read (pread or mmap), not by `head`, not in a listing.

#![cfg(unix)]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use sealcast_storage::{Error, LocalRead, Store};

/// A fresh folder under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("sealcast-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `root/` with a real asset folder, symlinks in and out, and a sibling folder with a secret.
fn layout(base: &Path) -> PathBuf {
    let (root, sibling) = (base.join("root"), base.join("sibling"));
    std::fs::create_dir_all(root.join("a")).unwrap();
    std::fs::create_dir_all(&sibling).unwrap();
    std::fs::write(root.join("a/inside.mp4"), b"inside-bytes").unwrap();
    std::fs::write(sibling.join("secret.mp4"), b"secret-bytes").unwrap();
    // Inside the root: a file link and a folder link.
    symlink(root.join("a/inside.mp4"), root.join("a/link_in.mp4")).unwrap();
    symlink("a", root.join("alias")).unwrap();
    // Out of the root: a file in a sibling folder (absolute and relative), a system file,
    // and a whole folder.
    symlink(sibling.join("secret.mp4"), root.join("a/sibling.mp4")).unwrap();
    symlink("../../sibling/secret.mp4", root.join("a/relative.mp4")).unwrap();
    symlink("/etc/hostname", root.join("a/hostname.mp4")).unwrap();
    symlink(&sibling, root.join("out")).unwrap();
    root
}

const OUTSIDE: [&str; 4] = ["a/sibling.mp4", "a/relative.mp4", "a/hostname.mp4", "out/secret.mp4"];

#[tokio::test]
async fn symlinks_out_of_the_root_are_not_found_by_read_head_or_listing() {
    let tmp = TempDir::new("symlinks");
    let root = layout(&tmp.0);
    for mode in [LocalRead::Pread, LocalRead::Mmap] {
        let s = Store::local_with(&root, mode).unwrap();
        // Links that stay inside the root keep working.
        assert_eq!(&s.read_range("a/inside.mp4", 0..6).await.unwrap()[..], b"inside", "{mode:?}");
        assert_eq!(&s.read_range("a/link_in.mp4", 0..6).await.unwrap()[..], b"inside", "{mode:?}");
        assert_eq!(&s.read_range("alias/inside.mp4", 7..12).await.unwrap()[..], b"bytes", "{mode:?}");
        assert_eq!(s.head("a/link_in.mp4").await.unwrap().size, 12);
        // Links that lead out are not found, whatever the range.
        for p in OUTSIDE {
            let r = s.read_range(p, 0..1).await;
            assert!(matches!(r, Err(Error::NotFound(_))), "{mode:?} read {p}: {r:?}");
            let h = s.head(p).await;
            assert!(matches!(h, Err(Error::NotFound(_))), "{mode:?} head {p}: {h:?}");
        }
    }
    let s = Store::local(&root).unwrap();
    let names = |v: Vec<sealcast_storage::ObjectInfo>| v.into_iter().map(|o| o.path).collect::<Vec<_>>();
    assert_eq!(names(s.list_dir("a").await.unwrap()), ["a/inside.mp4", "a/link_in.mp4"]);
    assert_eq!(names(s.list_dir("alias").await.unwrap()), ["alias/inside.mp4", "alias/link_in.mp4"]);
    assert_eq!(s.list_subdirs("").await.unwrap(), ["a", "alias"]);
    let out = s.list_dir("out").await;
    assert!(matches!(out, Err(Error::NotFound(_))) || out.as_ref().is_ok_and(|v| v.is_empty()), "{out:?}");
    let out = s.list_subdirs("out").await;
    assert!(matches!(out, Err(Error::NotFound(_))) || out.as_ref().is_ok_and(|v| v.is_empty()), "{out:?}");
}

#[tokio::test]
async fn a_root_reached_through_a_symlink_still_serves_its_files() {
    // The root itself may be a symlink (a deployment's `current` link): what counts is where
    // the links inside it lead.
    let tmp = TempDir::new("symlinked-root");
    let root = layout(&tmp.0);
    symlink(&root, tmp.0.join("current")).unwrap();
    for mode in [LocalRead::Pread, LocalRead::Mmap] {
        let s = Store::local_with(&tmp.0.join("current"), mode).unwrap();
        assert_eq!(&s.read_range("a/link_in.mp4", 0..6).await.unwrap()[..], b"inside", "{mode:?}");
        assert!(matches!(s.read_range("a/sibling.mp4", 0..1).await, Err(Error::NotFound(_))), "{mode:?}");
    }
}

/// Local reads first try the kernel's caches without blocking (Linux: `openat2` with
/// `RESOLVE_BENEATH | RESOLVE_CACHED`, `preadv2` with `RWF_NOWAIT`): they take only files the
/// kernel resolves below the root, and leave everything else to the blocking path, whose checks
/// decide as before.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn nonblocking_reads_take_only_what_resolves_below_the_root() {
    use std::sync::atomic::Ordering::Relaxed;
    let tmp = TempDir::new("nonblocking");
    let root = layout(&tmp.0);
    let s = Store::local(&root).unwrap();
    let fast = || s.counters().nonblocking_reads.load(Relaxed);
    // Whether a read takes the fast path depends on the kernel's caches: a path just written
    // is normally cached, but a dentry or a link's target not looked up yet makes
    // `RESOLVE_CACHED` give up (CI saw it once for the folder link). The blocking path's read
    // caches it, so a path that resolves below the root is read fast within a few tries.
    for (path, range, want, what) in [
        ("a/inside.mp4", 0..6, &b"inside"[..], "a cached file is read without the blocking pool"),
        ("alias/inside.mp4", 7..12, &b"bytes"[..], "a relative folder link inside the root resolves below it"),
    ] {
        let mut took = false;
        for _ in 0..3 {
            let before = fast();
            assert_eq!(&s.read_range(path, range.clone()).await.unwrap()[..], want, "{path}");
            if fast() == before + 1 {
                took = true;
                break;
            }
        }
        assert!(took, "{what}");
    }
    let base = fast();
    // An absolute link, even into the root, is refused by RESOLVE_BENEATH, however warm the
    // caches: the blocking path serves it after its own check.
    for _ in 0..2 {
        assert_eq!(&s.read_range("a/link_in.mp4", 0..6).await.unwrap()[..], b"inside");
    }
    assert_eq!(fast(), base);
    for _ in 0..2 {
        for p in OUTSIDE {
            assert!(matches!(s.read_range(p, 0..6).await, Err(Error::NotFound(_))), "{p}");
        }
    }
    assert_eq!(fast(), base, "no link out of the root is read by the fast path");
    // Past the end: a short read, reported as such, whichever path reads it.
    assert!(matches!(s.read_range("a/inside.mp4", 6..20).await, Err(Error::ShortRead { .. })));
    // A version that is not the file's: the blocking path reports the change.
    let info = s.head("a/inside.mp4").await.unwrap();
    std::fs::write(root.join("a/inside.mp4"), b"INSIDE-BYTES-LONGER").unwrap();
    assert!(matches!(s.read_version(&info, 0..6).await, Err(Error::Changed(_))));
}
