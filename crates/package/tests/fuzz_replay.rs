//! Replays the fuzz seeds and every input that once crashed a fuzz target (`fuzz/seeds/`,
//! `fuzz/regressions/`) through the same entry points the targets call, under plain
//! `cargo test` on stable. See `fuzz/README.md`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use sealcast_package::fuzzing::{fuzz_boxes, fuzz_file};
use sealcast_package::index::index_bytes;
use sealcast_package::{Asset, PackageOptions};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, sorted; none when the folder does not exist (a
/// target with no regressions yet has no folder in git).
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(rd) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut v: Vec<PathBuf> = rd
        .map(|e| e.unwrap_or_else(|e| panic!("listing {}: {e}", dir.display())).path())
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    v.sort();
    v
}

/// Runs `f` on every seed and regression of `target`, then fails naming every input that
/// panicked (each panic's message is printed above it by the default hook).
fn replay(target: &str, f: fn(&[u8])) {
    let seeds = inputs("seeds", target);
    assert!(!seeds.is_empty(), "no seeds in {}", fuzz_dir().join("seeds").join(target).display());
    let mut failed = Vec::new();
    for p in seeds.iter().chain(&inputs("regressions", target)) {
        let data = std::fs::read(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
        // An allocation failure aborts the process rather than panicking, so the list below
        // never prints; with --nocapture this line names the input that did it.
        eprintln!("replaying {}", p.display());
        if catch_unwind(AssertUnwindSafe(|| f(&data))).is_err() {
            failed.push(p.display().to_string());
        }
    }
    assert!(failed.is_empty(), "{target}: {} input(s) panicked:\n  {}", failed.len(), failed.join("\n  "));
}

#[test]
fn index_seeds_and_regressions_do_not_panic() {
    replay("index", fuzz_file);
}

#[test]
fn boxes_seeds_and_regressions_do_not_panic() {
    replay("boxes", fuzz_boxes);
}

/// The seeds are only worth having if some of them get past the index into the segment
/// writer; otherwise the fuzzer would start with no coverage of the later stages.
#[test]
fn some_index_seeds_reach_the_segment_writer() {
    let mut packaged = 0;
    for p in inputs("seeds", "index") {
        let data = Bytes::from(std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display())));
        let Ok(index) = index_bytes(&data, 4096) else { continue };
        let files = [sealcast_package::asset::SourceFile { name: "seed.mp4".into(), index: std::sync::Arc::new(index) }];
        let asset = Asset::build(&files, None, PackageOptions::default()).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        if asset.tracks.iter().all(|t| t.segments.len() >= 2) {
            packaged += 1;
        }
    }
    assert!(packaged >= 3, "only {packaged} index seeds package into two or more segments per track");
}
