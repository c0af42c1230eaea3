//! Replays the fuzz seeds and every input that once crashed a fuzz target (`fuzz/seeds/`,
//! `fuzz/regressions/`) through the same entry points the targets call, under plain
//! `cargo test` on stable. See `fuzz/README.md`.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use sealcast_package::fuzzing::{fuzz_boxes, fuzz_cenc_boxes, fuzz_file, fuzz_ism, fuzz_mfra, fuzz_progressive, fuzz_protect, fuzz_sidecar, fuzz_text};
use sealcast_package::index::index_bytes;
use sealcast_package::{Asset, PackageOptions};

use sealcast_testkit::{fuzz_inputs as inputs, replay_fuzz_inputs as replay};

/// Counts the bytes each thread has allocated and the most it held at once, so a test can
/// bound what one input costs. libFuzzer's `-malloc_limit_mb` does the same for the fuzz
/// targets on nightly; this is its stable counterpart. Per thread, because the test harness
/// runs tests on several threads at once.
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    pub struct Counting;

    thread_local! {
        static NOW: Cell<usize> = const { Cell::new(0) };
        static PEAK: Cell<usize> = const { Cell::new(0) };
    }

    /// Most bytes one thread may hold: past it an allocation fails (and the test binary
    /// aborts, naming the input in the `measuring` line before), like `-malloc_limit_mb` in
    /// a fuzz run, instead of an allocation bomb taking the machine's memory.
    const CEILING: usize = 1 << 30;

    /// Counts `n` more bytes; false (counting nothing) when that would pass [`CEILING`].
    fn add(n: usize) -> bool {
        // try_with: the thread-locals may be gone while a thread is torn down.
        NOW.try_with(|c| {
            let v = c.get().saturating_add(n);
            if v > CEILING {
                return false;
            }
            c.set(v);
            let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
            true
        })
        .unwrap_or(true)
    }

    fn sub(n: usize) {
        // Memory freed on another thread than it was allocated on would go below zero.
        let _ = NOW.try_with(|c| c.set(c.get().saturating_sub(n)));
    }

    // SAFETY: every call is passed straight to the system allocator; the bookkeeping only
    // touches const-initialised thread-locals, which do not allocate.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            if !add(l.size()) {
                return std::ptr::null_mut();
            }
            // SAFETY: same contract as ours.
            unsafe { System.alloc(l) }
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            sub(l.size());
            // SAFETY: same contract as ours.
            unsafe { System.dealloc(p, l) }
        }
        unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
            if !add(l.size()) {
                return std::ptr::null_mut();
            }
            // SAFETY: same contract as ours.
            unsafe { System.alloc_zeroed(l) }
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
            if !add(new) {
                return std::ptr::null_mut();
            }
            // SAFETY: same contract as ours.
            let q = unsafe { System.realloc(p, l, new) };
            // On failure the old block is still held: take back the new size only.
            sub(if q.is_null() { new } else { l.size() });
            q
        }
    }

    /// Most bytes this thread held at once while `f` ran, above what it held before.
    pub fn peak_of(f: impl FnOnce()) -> usize {
        let base = NOW.with(Cell::get);
        PEAK.with(|p| p.set(base));
        f();
        PEAK.with(Cell::get) - base
    }
}

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

/// What the whole pipeline of [`fuzz_file`] (two indexes, every manifest, every segment in
/// three formats) may hold at once for an input of `len` bytes: proportional to the input,
/// plus a constant for the writers' fixed buffers. A sample costs about 72 bytes while its
/// fragment is read, and is backed by 4 bytes of its `trun` entry or, when it has none, by at
/// least one byte of the file: hence up to 72 bytes per input byte (measured: 67x for
/// `hostile/many_trafs`, whose samples are one byte each; 2-4x for real fragments).
fn allocation_bound(len: usize) -> usize {
    80 * len + (4 << 20)
}

fn fuzz_dir() -> PathBuf {
    sealcast_testkit::repo_root().join("fuzz")
}

#[test]
fn index_seeds_and_regressions_do_not_panic() {
    replay("index", fuzz_file);
}

#[test]
fn progressive_seeds_and_regressions_do_not_panic() {
    replay("progressive", fuzz_progressive);
}

#[test]
fn boxes_seeds_and_regressions_do_not_panic() {
    replay("boxes", fuzz_boxes);
}

#[test]
fn protect_seeds_and_regressions_do_not_panic() {
    replay("protect", fuzz_protect);
}

#[test]
fn cenc_boxes_seeds_and_regressions_do_not_panic() {
    replay("cenc_boxes", fuzz_cenc_boxes);
}

#[test]
fn ism_seeds_and_regressions_do_not_panic() {
    replay("ism", fuzz_ism);
}

/// Every `.ism` seed parses, so the target starts from documents that reach the round trip.
#[test]
fn ism_seeds_parse() {
    for p in inputs("seeds", "ism") {
        let tracks = sealcast_package::ism::parse(&std::fs::read(&p).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(!tracks.is_empty());
    }
}

proptest::proptest! {
    // SMIL-shaped text with hostile values (entities, quotes, markup characters, numbers
    // with signs): the stable stand-in for coverage-guided runs of the `ism` target.
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]
    #[test]
    fn random_smil(doc in "<smil><body>(<(video|audio) src=\"[a-z&;#0-9<>'. ]{0,8}\"( systemBitrate=\"[+0-9]{0,11}\")?( systemLanguage=\"[a-z&;'\"]{0,6}\")?>(<param name=\"(trackID|trackName|other)\" value=\"[a-z0-9&;#x]{0,8}\"/>){0,3}</(video|audio)>){0,3}</body></smil>") {
        fuzz_ism(doc.as_bytes());
    }
}

/// Writes `fuzz/seeds/cenc_boxes/`: from each `protect` seed, the protected init segment
/// (`cenc` with a `pssh`), and the protection boxes of its first encrypted CMAF segment
/// (`cenc` and `cbcs`) and Smooth fragment (PIFF), one box per file. Run by
/// `fuzz/make_seeds.sh`; deterministic (fixed keys and IVs).
#[test]
#[ignore = "writes seed files; run by fuzz/make_seeds.sh"]
fn write_cenc_boxes_seeds() {
    use sealcast_cenc::boxes::Pssh;
    use sealcast_cenc::init::protect_init;
    use sealcast_cenc::{iv, ContentKey, IvDeriver, KeyKind, Kid, TrackProtection};
    use sealcast_isobmff::tree::RawBox;
    use sealcast_package::protect::{sample_format, write_segment_encrypted};
    use sealcast_package::{fmp4, smooth};

    fn save(dir: &Path, name: &str, b: &RawBox<'_>, kinds: &mut std::collections::BTreeSet<String>) {
        let typ = b.typ.to_string();
        let piff = typ == "uuid" && b.body().starts_with(&sealcast_cenc::boxes::PIFF_SENC_UUID);
        let wanted = piff || ["senc", "saiz", "saio", "pssh", "tenc", "sinf", "schm", "frma"].contains(&typ.as_str());
        if wanted && kinds.insert(format!("{name}_{typ}")) {
            let mut out = Vec::new();
            b.encode(&mut out);
            std::fs::write(dir.join(format!("{name}_{typ}.bin")), out).unwrap();
        }
        for c in b.children.iter().flatten() {
            save(dir, name, c, kinds);
        }
    }

    let dir = fuzz_dir().join("seeds/cenc_boxes");
    std::fs::create_dir_all(&dir).unwrap();
    let key = ContentKey::aes128(Kid([0x5c; 16]), KeyKind::CommonEncryption, [0xa7; 16]);
    for p in inputs("seeds", "protect") {
        let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
        let data = Bytes::from(std::fs::read(&p).unwrap());
        let index = index_bytes(&data, 4096).unwrap();
        let files = [sealcast_package::asset::SourceFile { name: "seed.mp4".into(), index: std::sync::Arc::new(index) }];
        let asset = Asset::build(&files, None, PackageOptions::default()).unwrap();
        for t in &asset.tracks {
            let info = &t.track().info;
            let name = format!("{stem}_{}", t.name);
            let mut kinds = std::collections::BTreeSet::new();
            let cenc = TrackProtection::cenc(&key, sample_format(info), IvDeriver::derive(key.kid().as_bytes(), b"fuzz", info.track_id)).unwrap();
            let cbcs = TrackProtection::cbcs(&key, sample_format(info), iv::constant_iv(key.kid().as_bytes(), b"fuzz", info.track_id)).unwrap();
            let init = protect_init(&t.track().init, &cenc.init_protection(None, vec![Pssh::common(vec![key.kid()])])).unwrap();
            std::fs::write(dir.join(format!("{name}_init.mp4")), &init).unwrap();
            for b in RawBox::parse_all(&init).unwrap() {
                save(&dir, &format!("{name}_init"), &b, &mut kinds);
            }
            let (s, e) = t.segment_range(0).unwrap();
            let range = data.slice(s as usize..e as usize);
            let frags = fmp4::read_segment(t, 0, &range, s).unwrap();
            let trex = info.trex.default_sample_description_index;
            for (label, prot) in [("cenc", &cenc), ("cbcs", &cbcs)] {
                let seg = write_segment_encrypted(&frags, range.clone(), s, prot, 0, trex).unwrap().concat();
                for b in RawBox::parse_all(&seg).unwrap() {
                    save(&dir, &format!("{name}_{label}"), &b, &mut kinds);
                }
            }
            let frag = smooth::write_fragment_encrypted(&frags, range.clone(), s, t, smooth::delay(&asset, t), &cenc).unwrap().concat();
            for b in RawBox::parse_all(&frag).unwrap() {
                save(&dir, &format!("{name}_piff"), &b, &mut kinds);
            }
        }
    }
}

/// Every index seed and regression, and every file of the hostile corpus
/// (`fixtures/hostile/`, issue 11), goes through the whole pipeline holding at most
/// [`allocation_bound`] bytes at once. Before the counts in a `moof` were bounded by the
/// bytes behind them, the 16 KB `trun` bomb asked for tens of gigabytes.
#[test]
fn index_inputs_allocate_in_proportion_to_their_size() {
    let hostile = sealcast_testkit::repo_root().join("fixtures/hostile");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&hostile).unwrap().map(|e| e.unwrap().path().join("video.cmfv")).filter(|p| p.is_file()).collect();
    files.sort();
    assert!(files.len() >= 10, "hostile corpus missing: run fixtures/hostile/generate.py");
    files.extend(inputs("seeds", "index"));
    files.extend(inputs("regressions", "index"));
    let mut over = Vec::new();
    for p in &files {
        let data = std::fs::read(p).unwrap();
        eprintln!("measuring {}", p.display());
        let peak = counting::peak_of(|| fuzz_file(&data));
        eprintln!("  {} bytes in, {peak} bytes held at most", data.len());
        if peak > allocation_bound(data.len()) {
            over.push(format!("{}: {} bytes in, {peak} bytes held at once (bound {})", p.display(), data.len(), allocation_bound(data.len())));
        }
    }
    assert!(over.is_empty(), "inputs over the allocation bound:\n  {}", over.join("\n  "));
}

/// The counter sees what it must: a test of the test.
#[test]
fn the_allocation_counter_counts() {
    let peak = counting::peak_of(|| drop(std::hint::black_box(vec![0u8; 10 << 20])));
    assert!((10 << 20..11 << 20).contains(&peak), "{peak}");
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

#[test]
fn progressive_seeds_index_as_progressive() {
    // The target's checks only run on files that index as progressive: the ffmpeg seeds must.
    let mut progressive = 0;
    for p in inputs("seeds", "progressive") {
        let data = Bytes::from(std::fs::read(&p).unwrap());
        if index_bytes(&data, 4096).is_ok_and(|i| i.tracks.iter().all(|t| t.samples.is_some())) {
            progressive += 1;
        }
    }
    assert!(progressive >= 5, "only {progressive} progressive seeds index as progressive");
}

/// A stable stand-in for a fuzz run of the progressive target: deterministic random byte
/// mutations of the `moov` of each ffmpeg-made progressive seed (where the sample tables
/// are), each run through `fuzz_progressive`, which asserts its invariants and must not
/// panic. (`fuzz/run.sh progressive` is the real thing, on nightly.)
#[test]
fn progressive_moov_mutations_do_not_panic() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut runs = 0;
    for p in inputs("seeds", "progressive").iter().filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with("hostile_")) {
        let data = std::fs::read(p).unwrap();
        let moov = data.windows(4).position(|w| w == b"moov").expect("seed has a moov") - 4;
        let len = u32::from_be_bytes(data[moov..moov + 4].try_into().unwrap()) as usize;
        for _ in 0..1000 {
            let mut m = data.clone();
            for _ in 0..1 + next() % 4 {
                let at = moov + 8 + (next() as usize) % (len - 12);
                if next() % 2 == 0 {
                    m[at] = [next() as u8, 0xff, 0][(next() % 3) as usize];
                } else {
                    // Four bytes (counts, sizes, offsets are 32-bit fields) set to a boundary value.
                    let v = [0u32, 1, 2, 0x7fff_ffff, 0xffff_ffff, data.len() as u32, next() as u32][(next() % 7) as usize];
                    m[at..at + 4].copy_from_slice(&v.to_be_bytes());
                }
            }
            if std::panic::catch_unwind(|| fuzz_progressive(&m)).is_err() {
                let out = std::env::temp_dir().join(format!("progressive-crash-{runs}.mp4"));
                std::fs::write(&out, &m).unwrap();
                panic!("{}: a mutation panicked; input saved to {}", p.display(), out.display());
            }
            runs += 1;
        }
    }
    assert!(runs >= 4000, "{runs} runs");
}

#[test]
fn mfra_seeds_and_regressions_do_not_panic() {
    replay("mfra", fuzz_mfra);
}

#[test]
fn sidecar_seeds_and_regressions_do_not_panic() {
    replay("sidecar", fuzz_sidecar);
}

#[test]
fn text_seeds_and_regressions_do_not_panic() {
    replay("text", fuzz_text);
}

/// Every subtitle seed (and fixture) parses, so the target starts from documents that reach
/// the round trip; the hostile subtitle corpus is replayed too (refused, never a panic).
#[test]
fn text_seeds_parse_and_hostile_files_replay() {
    use sealcast_package::text::{TextDoc, TextFormat, TextLimits};
    let seeds = inputs("seeds", "text");
    assert!(seeds.len() >= 4, "text seeds missing");
    for p in seeds {
        let b = std::fs::read(&p).unwrap();
        let format = if b.first() == Some(&b'T') { TextFormat::Ttml } else { TextFormat::WebVtt };
        TextDoc::parse(&b[1..], format, TextLimits::default()).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
    let dir = sealcast_testkit::fixtures_dir().join("hostile/subtitles");
    for e in std::fs::read_dir(&dir).unwrap() {
        let b = std::fs::read(e.unwrap().path()).unwrap();
        for mode in [b'T', b'V'] {
            let mut input = vec![mode];
            input.extend_from_slice(&b);
            fuzz_text(&input);
        }
    }
}

/// A stable stand-in for coverage-guided runs of the `text` target: 20 000 deterministic
/// mutations of the text seeds (bytes flipped, cut, repeated, and WebVTT/TTML tokens spliced
/// in), each through `fuzz_text` and its round-trip invariant.
#[test]
fn text_mutations_keep_the_round_trip() {
    const TOKENS: [&[u8]; 12] = [
        b"-->",
        b"\n\n",
        b"\r",
        b"NOTE",
        b"STYLE\n",
        b"00:00:01.000",
        b"99:59:59.999",
        b"<br/>",
        b"&amp;",
        b"<!DOCTYPE x>",
        b" begin=\"1s\"",
        b"</p>",
    ];
    let seeds: Vec<Vec<u8>> = inputs("seeds", "text")
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..20_000 {
        let mut d = seeds[i % seeds.len()].clone();
        for _ in 0..1 + next() % 4 {
            let at = 1 + (next() as usize) % d.len().max(2).saturating_sub(1);
            let at = at.min(d.len());
            match next() % 4 {
                0 if at < d.len() => d[at] = next() as u8,
                1 => d.truncate(at),
                2 => {
                    let t = TOKENS[(next() as usize) % TOKENS.len()];
                    d.splice(at..at, t.iter().copied());
                }
                _ => {
                    let end = (at + (next() as usize) % 64).min(d.len());
                    let piece = d[at..end].to_vec();
                    d.splice(at..at, piece);
                }
            }
        }
        fuzz_text(&d);
    }
}
