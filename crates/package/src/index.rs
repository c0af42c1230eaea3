//! The file index: init bytes and a fragment table per track, built from the cheapest
//! source the file offers — never by reading `mdat`:
//!
//! | layout | reads (cold, 64 KiB read-ahead) |
//! |---|---|
//! | progressive `moov` at the start / at the end | 1 / 2 (3 when the `moov` is larger than the read-ahead) |
//! | fragmented with `sidx` | 1 (the head holds `moov`, `sidx` and the first `moof`) |
//! | fragmented, single track, `mfra` at the end | 3: head, tail (`mfro` → `mfra`), the last `moof`; 2 when the tail read holds that `moof` |
//! | fragmented with a sidecar index (`crate::sidecar`) | 1: the sidecar, the source is not read |
//! | none of these | head, tail (no `mfra` found), then a walk over the `moof`s in reads that double from the read-ahead up to [`WALK_READ_CAP`] |
//!
//! [`IndexBuilder`] is sans-IO: it says which byte range it needs next ([`Need`]) and the
//! caller feeds it the bytes, from a local file, an object store or a test vector alike.

use bytes::Bytes;
use sealcast_isobmff::fourcc::types::*;
use sealcast_isobmff::mfro::Mfro;
use sealcast_isobmff::tfra::{Tfra, TfraEntry};
use sealcast_isobmff::{sidx::Sidx, tree::RawBox, Atom, BoxHeader, BoxIter, FourCC, Reader};

use crate::error::{At, Error, Result};
use crate::fragment::{read_moof, FragmentBounds, MAX_FRAGMENT_SAMPLES, SAMPLE_COST};
use crate::progressive::{strip_sample_tables, SampleTable};
use crate::track::{build_init, parse_tracks, TrackInfo};

/// One fragment of one track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// Decode time of the first sample (media timescale).
    pub decode_time: u64,
    /// Sum of sample durations.
    pub duration: u64,
    /// Earliest presentation time minus `decode_time`.
    pub pres_offset: i64,
    /// File offset of the `moof`.
    pub offset: u64,
    /// Bytes from the `moof` to the next fragment (or the end of the media).
    pub size: u64,
    /// Bytes of this track's samples; for a single-track fragmented file an estimate the same
    /// whatever the index was built from (see [`IndexBuilder::finish`]).
    pub media_bytes: u64,
    /// Starts with a sync sample.
    pub keyframe: bool,
    /// Number of samples (0 when the fragment came from a `sidx` and was not read).
    pub samples: u32,
    /// Smallest composition offset of its samples (from the first fragment for `sidx` tables).
    pub min_cto: i64,
}

/// One track of a file with its init segment and fragments.
#[derive(Debug, Clone)]
pub struct TrackIndex {
    /// Description.
    pub info: TrackInfo,
    /// The CMAF init segment for this track alone.
    pub init: Bytes,
    /// Fragments in decode order.
    pub fragments: Vec<Fragment>,
    /// For progressive input (samples described in the `moov`, no movie fragments): the
    /// sample table the fragments were cut from; their media is synthesized from it.
    pub samples: Option<SampleTable>,
}

/// Everything the origin keeps about one track file.
#[derive(Debug, Clone)]
pub struct FileIndex {
    /// File length the index was built for.
    pub file_len: u64,
    /// Tracks.
    pub tracks: Vec<TrackIndex>,
    /// Ranged reads it took (for tests and metrics).
    pub reads: u32,
    /// Where the fragment table came from.
    pub method: IndexMethod,
    /// Why a cheaper source the file offered was not used (a `tfra` that did not check out),
    /// for a log line.
    pub note: Option<String>,
}

/// Where a file's fragment table came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IndexMethod {
    /// A progressive file's `moov` sample tables (hybrid files: plus a walk).
    Moov,
    /// The `sidx` after the `moov`.
    Sidx,
    /// The `mfra`/`tfra` at the end of the file.
    Mfra,
    /// A sidecar index written by `sealcast index` or `ingest` ([`crate::sidecar`]).
    Sidecar,
    /// A walk over every `moof` header.
    Walk,
}

impl IndexMethod {
    /// Lower-case name for logs and CLI output.
    pub fn name(self) -> &'static str {
        match self {
            IndexMethod::Moov => "moov",
            IndexMethod::Sidx => "sidx",
            IndexMethod::Mfra => "mfra",
            IndexMethod::Sidecar => "sidecar",
            IndexMethod::Walk => "walk",
        }
    }
}

impl FileIndex {
    /// Approximate heap size, for byte-weighted caches.
    pub fn weight(&self) -> usize {
        self.tracks.iter().map(|t| t.init.len() + t.fragments.len() * std::mem::size_of::<Fragment>() + t.samples.as_ref().map_or(0, SampleTable::weight) + 512).sum::<usize>() + 64
    }

    /// A single-track fragmented file: its fragments' `media_bytes` are estimates from their
    /// spans (`size`) and the first fragment (see [`IndexBuilder::finish`]).
    pub fn media_bytes_estimated(&self) -> bool {
        self.tracks.len() == 1 && self.tracks[0].samples.is_none()
    }
}

/// What the builder needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Read `len` bytes at `offset` and [`IndexBuilder::feed`] them.
    Read {
        /// File offset.
        offset: u64,
        /// Length (never past the end of the file).
        len: u64,
    },
    /// Call [`IndexBuilder::finish`].
    Done,
}

/// Largest `moov`/`moof`/`sidx`/`mfra` we accept; bigger is treated as hostile.
pub const MAX_HEADER_BOX: u64 = 64 << 20;

/// Largest read of the fallback walk: reads start at the read-ahead and double up to this,
/// so a file of small fragments is walked in a few dozen requests instead of one per
/// fragment, while the bytes read past a fragment's `moof` (its `mdat`) stay bounded.
pub const WALK_READ_CAP: u64 = 4 << 20;

/// Bytes one `tfra` entry may take at most (version 1, four-byte numbers): the tail read is
/// sized from this so it usually holds the whole `mfra`.
const TFRA_ENTRY_MAX: u64 = 28;

/// Bytes a `moov` may cost per byte of box once parsed: its raw tree holds each box's bytes
/// plus a [`RawBox`] (about 60 bytes) per box of at least 8 bytes, and the init segments
/// copy its `trak`s once more.
const MOOV_COST_PER_BYTE: u64 = 10;

/// What indexing one file may cost, so that memory stays proportional to what the file can
/// back and below a fixed ceiling whatever it declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexLimits {
    /// Most bytes the index of one file may take while it is built and kept: the parsed
    /// `moov`, the init segments, the fragment tables, and the sample table of the
    /// fragment being read. Over it, indexing fails with [`Error::Limit`].
    pub max_bytes: u64,
}

impl Default for IndexLimits {
    /// 64 MiB: a two-hour title with one fragment per video frame at 30 fps indexes in
    /// about 16 MiB.
    fn default() -> Self {
        IndexLimits { max_bytes: 64 << 20 }
    }
}

/// Builds a [`FileIndex`] from ranged reads.
pub struct IndexBuilder {
    file_len: u64,
    read_ahead: u64,
    pos: u64,
    need_len: u64,
    window: Bytes,
    window_off: u64,
    moov: Option<RawBox<'static>>,
    tracks: Vec<TrackInfo>,
    frags: Vec<Vec<Fragment>>,
    /// Per track, its sample table when the file is progressive.
    tables: Vec<Option<SampleTable>>,
    open: Vec<usize>,
    sidx: Option<(Sidx, u64)>,
    done: bool,
    reads: u32,
    limits: IndexLimits,
    /// What the parsed `moov` and the init segments it will give cost (see [`Self::cost`]).
    moov_cost: u64,
    /// The `moov` bytes, for a sidecar ([`Self::moov_bytes`]).
    moov_bytes: Option<Bytes>,
    /// The `mfra` fast path's progress.
    tail: Tail,
    /// Length of the next walk read (doubles per read up to `walk_cap`).
    walk_len: u64,
    walk_cap: u64,
    method: IndexMethod,
    note: Option<String>,
    /// A checked `tfra` waiting for the last `moof`.
    mfra: Option<MfraPlan>,
    /// Sample bytes of the first fragment of the first track (read by every layout).
    first_media: Option<u64>,
}

/// A checked `tfra` and where its `mfra` starts.
#[derive(Debug)]
struct MfraPlan {
    entries: Vec<TfraEntry>,
    mfra_off: u64,
}

/// Progress of the `mfra` fast path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tail {
    /// Not tried yet.
    Untried,
    /// The first fragment was read; the next read is `len` bytes at the end of the file.
    Wanted { len: u64 },
    /// The `mfro` was read but the `mfra` starts before what was read: read it whole.
    Mfra { offset: u64 },
    /// The `tfra` checked out; the last `moof` (at `offset`, `len` bytes wanted) gives the
    /// last fragment's duration.
    LastMoof { offset: u64, len: u64 },
    /// The first fragment was read by a read that reaches the end of the file: the tail is
    /// in hand.
    InWindow,
    /// Used, or given up (the walk goes on).
    Over,
}

impl IndexBuilder {
    /// A builder for a file of `file_len` bytes, reading at least `read_ahead` bytes at a time.
    pub fn new(file_len: u64, read_ahead: u64) -> Self {
        IndexBuilder {
            file_len,
            read_ahead: read_ahead.max(64),
            pos: 0,
            need_len: 0,
            window: Bytes::new(),
            window_off: 0,
            moov: None,
            tracks: Vec::new(),
            frags: Vec::new(),
            tables: Vec::new(),
            open: Vec::new(),
            sidx: None,
            done: file_len == 0,
            reads: 0,
            limits: IndexLimits::default(),
            moov_cost: 0,
            moov_bytes: None,
            tail: Tail::Untried,
            walk_len: read_ahead.max(64),
            walk_cap: WALK_READ_CAP.max(read_ahead),
            method: IndexMethod::Walk,
            note: None,
            first_media: None,
            mfra: None,
        }
    }

    /// Caps the fallback walk's reads at `cap` bytes instead of [`WALK_READ_CAP`] (never
    /// below the read-ahead).
    pub fn with_walk_cap(mut self, cap: u64) -> Self {
        self.walk_cap = cap.max(self.read_ahead);
        self
    }

    /// The `moov` box as read (for a sidecar), once it was read.
    pub fn moov_bytes(&self) -> Option<Bytes> {
        self.moov_bytes.clone()
    }

    /// Builds within `limits` instead of [`IndexLimits::default`].
    pub fn with_limits(mut self, limits: IndexLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Bytes the index holds so far: the `moov` estimate and the fragment tables as
    /// allocated (capacity, not length: that is what the allocator gave).
    fn cost(&self) -> u64 {
        let frags: usize = self.frags.iter().map(|v| v.capacity() * std::mem::size_of::<Fragment>()).sum();
        let tables: usize = self.tables.iter().flatten().map(SampleTable::weight).sum();
        self.moov_cost.saturating_add(frags as u64).saturating_add(tables as u64)
    }

    /// Fails with [`Error::Limit`] once the index costs more than the limit.
    fn check_cost(&self) -> Result<()> {
        let c = self.cost();
        if c > self.limits.max_bytes {
            return Err(Error::Limit(format!("index of the file needs more than {} bytes (at byte {} of {}); limit {}", c, self.pos, self.file_len, self.limits.max_bytes)));
        }
        Ok(())
    }

    /// The next read, or `Done`.
    pub fn next_read(&self) -> Need {
        if self.done {
            return Need::Done;
        }
        match self.tail {
            Tail::Wanted { len } => return Need::Read { offset: self.file_len - len, len },
            Tail::Mfra { offset } => return Need::Read { offset, len: self.file_len - offset },
            Tail::LastMoof { offset, len } => return Need::Read { offset, len },
            Tail::Untried | Tail::InWindow | Tail::Over => {}
        }
        // Once the moov is known, the walk's reads grow (see `WALK_READ_CAP`).
        let base = if self.moov.is_some() { self.walk_len } else { self.read_ahead };
        let len = base.max(self.need_len).min(self.file_len - self.pos);
        Need::Read { offset: self.pos, len }
    }

    /// Feeds the bytes read at `offset` and advances as far as they allow.
    pub fn feed(&mut self, offset: u64, data: Bytes) -> Result<()> {
        let want = match self.next_read() {
            Need::Read { offset, len } => (offset, len),
            Need::Done => return Err(Error::Read(format!("fed {} bytes at {offset} after the index was complete", data.len()))),
        };
        if offset != want.0 || data.is_empty() || data.len() as u64 > want.1 {
            return Err(Error::Read(format!("fed {} bytes at {offset}, wanted {} at {}", data.len(), want.1, want.0)));
        }
        self.reads += 1;
        match self.tail {
            Tail::Wanted { .. } | Tail::Mfra { .. } | Tail::LastMoof { .. } => return self.on_tail_read(offset, data),
            Tail::Untried | Tail::InWindow | Tail::Over => {}
        }
        if self.moov.is_some() {
            self.walk_len = self.walk_len.saturating_mul(2).min(self.walk_cap);
        }
        self.window = data;
        self.window_off = offset;
        self.advance()
    }

    fn advance(&mut self) -> Result<()> {
        self.need_len = 0;
        while !self.done {
            match self.tail {
                Tail::Wanted { .. } => return Ok(()),
                Tail::InWindow => {
                    let (off, w) = (self.window_off, self.window.clone());
                    self.tail = Tail::Wanted { len: w.len() as u64 };
                    return self.on_tail_read(off, w);
                }
                _ => {}
            }
            if self.pos >= self.file_len {
                self.close_open(self.file_len);
                self.done = true;
                break;
            }
            let rel = match self.pos.checked_sub(self.window_off) {
                Some(r) if r < self.window.len() as u64 => r as usize,
                _ => return Ok(()),
            };
            let avail = &self.window[rel..];
            let remaining = self.file_len - self.pos;
            if self.pos == 0 && avail.len() >= 8 && !matches!(&avail[4..8], b"ftyp" | b"styp" | b"moov" | b"free" | b"skip" | b"sidx" | b"wide" | b"mdat") {
                return Err(Error::Unsupported(format!("not an MP4 file (starts with {:?})", sealcast_isobmff::FourCC([avail[4], avail[5], avail[6], avail[7]]))));
            }
            let h = match BoxHeader::parse(avail, remaining) {
                Ok(Some(h)) => h,
                Ok(None) if (avail.len() as u64) < remaining.min(16) => return Ok(()),
                Ok(None) => return Err(Error::Unsupported(format!("{} stray bytes at the end of the file at {}", remaining, self.pos))),
                Err(sealcast_isobmff::Error::BadSize { what, size }) if size > remaining && (what.0.iter().all(|c| c.is_ascii_alphanumeric() || *c == b' ')) => {
                    return Err(Error::Truncated { offset: self.pos, need: size, file_len: self.file_len });
                }
                Err(e) => return Err(Error::Box { offset: self.pos, source: e }),
            };
            let parse_whole = matches!(&h.typ.0, b"moov" | b"moof" | b"sidx");
            if parse_whole {
                if h.size > MAX_HEADER_BOX {
                    return Err(Error::Unsupported(format!("'{}' box of {} bytes at {}", h.typ, h.size, self.pos)));
                }
                // Checked before the box is read whole: reading it is already its cost.
                let cost = if h.typ == MOOV { h.size.saturating_mul(MOOV_COST_PER_BYTE) } else { h.size };
                if self.cost().saturating_add(cost) > self.limits.max_bytes {
                    return Err(Error::Limit(format!("'{}' box of {} bytes at {} would take the index over {} bytes", h.typ, h.size, self.pos, self.limits.max_bytes)));
                }
                if (avail.len() as u64) < h.size {
                    self.need_len = h.size;
                    return Ok(());
                }
                let whole = self.window.slice(rel..rel + h.size as usize);
                match &h.typ.0 {
                    b"moov" => {
                        self.on_moov(&whole)?;
                        self.moov_bytes = Some(whole);
                    }
                    b"sidx" => self.on_sidx(&whole, h)?,
                    _ => {
                        self.on_moof(&whole)?;
                        if !self.done {
                            self.consider_tail(h.size);
                        }
                    }
                }
            } else if h.typ == MFRA {
                self.close_open(self.pos);
                self.done = true;
                break;
            }
            if !self.done {
                self.pos += h.size;
            }
        }
        Ok(())
    }

    fn on_moov(&mut self, whole: &Bytes) -> Result<()> {
        if self.moov.is_some() {
            return Err(Error::Unsupported("two moov boxes".into()));
        }
        let tree = RawBox::parse_all(whole).at(self.pos)?.pop().ok_or_else(|| Error::Read("empty moov".into()))?.into_owned();
        self.tracks = parse_tracks(&tree, self.pos)?;
        if self.tracks.is_empty() {
            return Err(Error::Unsupported("no audio or video track".into()));
        }
        self.frags = vec![Vec::new(); self.tracks.len()];
        self.moov_cost = whole.len() as u64 * 2 + count_boxes(&tree) * std::mem::size_of::<RawBox<'static>>() as u64;
        self.check_cost()?;
        if tree.child(MVEX).is_none() {
            // No movie fragments can follow: the moov describes every sample. Wherever it is
            // (start or end of the file), nothing after it needs reading.
            self.on_progressive(&tree, true)?;
            self.method = IndexMethod::Moov;
            self.done = true;
        } else if has_moov_samples(&tree) {
            // A fragmented file whose first samples are in the moov (ffmpeg's
            // `frag_keyframe` without `empty_moov`): those from the sample tables, the rest
            // from the fragments that follow.
            self.on_progressive(&tree, false)?;
        }
        self.moov = Some(tree);
        Ok(())
    }

    /// Reads each track's sample table and cuts it into fragments. `all`: every track must
    /// have samples there (a progressive file); else tracks without are left to fragments.
    fn on_progressive(&mut self, moov: &RawBox<'static>, all: bool) -> Result<()> {
        self.tables = vec![None; self.tracks.len()];
        for (i, t) in self.tracks.iter().enumerate() {
            let trak = moov
                .children
                .iter()
                .flatten()
                .filter(|b| b.typ == TRAK)
                .find(|b| b.child(TKHD).is_some_and(|h| sealcast_isobmff::tkhd::Tkhd::decode_body(&mut sealcast_isobmff::Reader::new(&h.prefix, TKHD)).is_ok_and(|h| h.track_id == t.track_id)))
                .ok_or_else(|| Error::Unsupported(format!("track {}: trak not found", t.track_id)))?;
            if !all && !has_moov_samples(trak) {
                continue;
            }
            let left = self.limits.max_bytes.saturating_sub(self.cost());
            let (table, frags) = SampleTable::read(trak, t.track_id, t.timescale, self.file_len, left).map_err(|e| match e {
                Error::Box { source, .. } => Error::Box { offset: self.pos, source },
                e => e,
            })?;
            self.frags[i] = frags;
            self.tables[i] = Some(table);
            self.check_cost()?;
        }
        Ok(())
    }

    fn on_sidx(&mut self, whole: &Bytes, h: BoxHeader) -> Result<()> {
        if self.sidx.is_none() && self.tracks.len() == 1 {
            let s = Sidx::decode(whole).at(self.pos)?;
            if s.reference_id == self.tracks[0].track_id && s.timescale > 0 && s.references.iter().all(|r| !r.reference_type) {
                self.sidx = Some((s, self.pos + h.size));
            }
        }
        Ok(())
    }

    fn on_moof(&mut self, whole: &Bytes) -> Result<()> {
        if self.moov.is_none() {
            return Err(Error::Unsupported("moof before moov".into()));
        }
        self.close_open(self.pos);
        // Every count in the moof is bounded by the file (its samples cannot add up to more
        // bytes than it holds) and by what is left of the memory budget.
        let left = self.limits.max_bytes.saturating_sub(self.cost());
        let bounds = FragmentBounds { media_bytes: self.file_len, max_samples: (left / SAMPLE_COST).min(MAX_FRAGMENT_SAMPLES) };
        let tracks = &self.tracks;
        let trex_of = |id: u32| tracks.iter().find(|t| t.track_id == id).map_or_else(Default::default, |t| t.trex);
        let trafs = read_moof(whole, self.pos, &trex_of, bounds)?;
        for (i, t) in self.tracks.iter().enumerate() {
            let mut mine = trafs.iter().filter(|tf| tf.tfhd.track_id == t.track_id);
            let Some(tf) = mine.next() else { continue };
            if mine.next().is_some() {
                return Err(Error::Unsupported(format!("track {}: several trafs in one moof", t.track_id)));
            }
            if tf.samples.is_empty() {
                continue;
            }
            let prev_end = self.frags[i].last().map(|f| f.decode_time.saturating_add(f.duration));
            let decode_time = tf.decode_time.or(prev_end).unwrap_or(0);
            for r in &tf.runs {
                if r.data_start.checked_add(r.data_len).is_none_or(|e| e > self.file_len) {
                    return Err(Error::Truncated { offset: r.data_start, need: r.data_len, file_len: self.file_len });
                }
            }
            if i == 0 && self.frags[0].is_empty() {
                self.first_media = Some(tf.media_bytes());
            }
            self.frags[i].push(Fragment {
                decode_time,
                duration: tf.duration(),
                pres_offset: tf.pres_offset(),
                offset: self.pos,
                size: 0,
                media_bytes: tf.media_bytes(),
                keyframe: tf.samples[0].is_sync(),
                samples: tf.samples.len() as u32,
                min_cto: tf.samples.iter().map(|s| s.cto).min().unwrap_or(0),
            });
            self.open.push(i);
        }
        drop(trafs);
        self.check_cost()?;
        // With a usable sidx, the first fragment gives the base decode time; sidx the rest.
        if let Some((sidx, sidx_end)) = self.sidx.take() {
            if let Some(first) = self.frags[0].first().copied() {
                if let Some(table) = self.fragments_from_sidx(&sidx, sidx_end, first) {
                    self.open.clear();
                    // A sidx holds at most 65535 references (under 5 MiB of table), but the
                    // budget is per file.
                    let cost = (table.capacity() * std::mem::size_of::<Fragment>()) as u64;
                    if self.cost().saturating_add(cost) > self.limits.max_bytes {
                        return Err(Error::Limit(format!("sidx fragment table of {} entries would take the index over {} bytes", table.len(), self.limits.max_bytes)));
                    }
                    self.frags[0] = table;
                    self.method = IndexMethod::Sidx;
                    self.done = true;
                }
            }
        }
        Ok(())
    }

    fn fragments_from_sidx(&self, s: &Sidx, sidx_end: u64, first: Fragment) -> Option<Vec<Fragment>> {
        let ts = self.tracks[0].timescale as u128;
        let conv = |v: u64| -> u64 { (v as u128 * ts / s.timescale as u128) as u64 };
        let mut off = sidx_end.checked_add(s.first_offset)?;
        if off != first.offset {
            return None;
        }
        let mut dt = first.decode_time;
        let ept = (conv(s.earliest_presentation_time) as i64).checked_sub(i64::try_from(first.decode_time).ok()?)?;
        let mut out = Vec::with_capacity(s.references.len());
        for r in &s.references {
            let d = conv(r.subsegment_duration as u64);
            out.push(Fragment {
                decode_time: dt,
                duration: d,
                pres_offset: ept,
                offset: off,
                size: r.referenced_size as u64,
                media_bytes: r.referenced_size as u64,
                keyframe: r.starts_with_sap,
                samples: if out.is_empty() { first.samples } else { 0 },
                min_cto: first.min_cto,
            });
            off = off.checked_add(r.referenced_size as u64)?;
            dt = dt.checked_add(d)?;
        }
        (off <= self.file_len && !out.is_empty()).then_some(out)
    }

    /// After the first fragment of a single-track fragmented file (no `sidx`, no sample
    /// tables), asks for the file's tail instead of walking on, when the head read did not
    /// already reach the end. The tail read is sized from the first fragment so that it
    /// usually holds the whole `mfra` (at most [`TFRA_ENTRY_MAX`] bytes per fragment, twice
    /// the fragments the first one's size suggests).
    fn consider_tail(&mut self, moof_size: u64) {
        if self.tail != Tail::Untried || self.tracks.len() != 1 || !self.tables.is_empty() || self.frags[0].len() != 1 {
            return;
        }
        self.tail = Tail::Over;
        let window_end = self.window_off + self.window.len() as u64;
        let media_start = self.pos + moof_size;
        if media_start >= self.file_len {
            return;
        }
        if window_end >= self.file_len {
            // The read in hand reaches the end: the same path without a read, so the index
            // does not depend on the read-ahead.
            self.tail = Tail::InWindow;
            return;
        }
        let mdat = (media_start - self.window_off) as usize;
        let frag_size = match self.window.get(mdat..).map(|b| BoxHeader::parse(b, self.file_len - media_start)) {
            Some(Ok(Some(h))) if h.typ == MDAT => moof_size.saturating_add(h.size),
            _ => moof_size.saturating_add(self.read_ahead),
        };
        let est_frags = self.file_len / frag_size.max(1) + 1;
        let est = est_frags.saturating_mul(2 * TFRA_ENTRY_MAX).saturating_add(64).min(MAX_HEADER_BOX);
        // At most the rest of the file, which the walk goes on in if there is no mfra.
        let len = self.read_ahead.max(est).min(self.file_len - media_start);
        self.tail = Tail::Wanted { len };
    }

    /// A read of the `mfra` fast path: the tail, the whole `mfra`, or the last `moof`.
    fn on_tail_read(&mut self, offset: u64, data: Bytes) -> Result<()> {
        match self.tail {
            Tail::Wanted { len } => {
                if data.len() as u64 != len || offset + len != self.file_len {
                    return self.give_up(format!("short read of the file's tail ({} of {len} bytes)", data.len()));
                }
                // Holding what the walk needs next, the tail is where it goes on if there is
                // no usable mfra (no byte read twice).
                if offset <= self.pos {
                    self.window = data.clone();
                    self.window_off = offset;
                }
                let Some(mfro) = data.len().checked_sub(Mfro::SIZE as usize).and_then(|at| Mfro::decode(&data[at..]).ok()) else {
                    return self.give_up("no mfro at the end of the file".into());
                };
                let size = mfro.parent_size as u64;
                // The mfra lies after the first fragment's moof, within the size we accept.
                if size < 8 + Mfro::SIZE || size > self.file_len - self.pos || size > MAX_HEADER_BOX || self.cost().saturating_add(size) > self.limits.max_bytes {
                    return self.give_up(format!("mfro names an mfra of {size} bytes in a file of {}", self.file_len));
                }
                let mfra_off = self.file_len - size;
                if mfra_off < offset {
                    self.tail = Tail::Mfra { offset: mfra_off };
                    return Ok(());
                }
                self.on_mfra(mfra_off, data.slice((mfra_off - offset) as usize..), offset, &data)
            }
            Tail::Mfra { offset: mfra_off } => {
                if offset + data.len() as u64 != self.file_len {
                    return self.give_up("short read of the mfra".into());
                }
                self.on_mfra(mfra_off, data.clone(), offset, &data)
            }
            Tail::LastMoof { offset: at, .. } => {
                let plan = self.mfra.take().ok_or_else(|| Error::Read("last moof read without a tfra".into()))?;
                self.on_last_moof(plan, at, data)
            }
            Tail::Untried | Tail::InWindow | Tail::Over => Err(Error::Read("unexpected tail read".into())),
        }
    }

    /// Reads the `tfra` of the file's track from the `mfra` at `mfra_off`, checks it, and
    /// either finishes from the last `moof` in hand (`buf` read at `buf_off`) or asks for it.
    fn on_mfra(&mut self, mfra_off: u64, mfra: Bytes, buf_off: u64, buf: &Bytes) -> Result<()> {
        let track_id = self.tracks[0].track_id;
        let entries = match read_tfra(&mfra, track_id) {
            Ok(e) => e,
            Err(why) => return self.give_up(why),
        };
        // What the tfra and the table built from it will hold, before it is kept.
        let cost = entries.capacity() as u64 * (std::mem::size_of::<TfraEntry>() + std::mem::size_of::<Fragment>()) as u64;
        if self.cost().saturating_add(cost) > self.limits.max_bytes {
            return self.give_up(format!("tfra of {} entries would take the index over {} bytes", entries.len(), self.limits.max_bytes));
        }
        let first = self.frags[0][0];
        if let Err(why) = check_tfra(&entries, first.offset, mfra_off) {
            return self.give_up(why);
        }
        let last = entries[entries.len() - 1].moof_offset;
        let plan = MfraPlan { entries, mfra_off };
        if last == first.offset {
            return self.finish_mfra(plan, None);
        }
        // The last moof, if the tail read holds it whole.
        if last >= buf_off {
            let rel = (last - buf_off) as usize;
            if let Ok(Some(h)) = BoxHeader::parse(&buf[rel..], mfra_off - last) {
                if h.typ == MOOF && rel as u64 + h.size <= buf.len() as u64 {
                    return self.on_last_moof(plan, last, buf.slice(rel..rel + h.size as usize));
                }
            }
        }
        self.tail = Tail::LastMoof { offset: last, len: self.read_ahead.min(mfra_off - last) };
        self.mfra = Some(plan);
        Ok(())
    }

    /// The last `moof` (read at `at`, perhaps only its start): its decode time ties the
    /// `tfra` times to decode times, its samples give the last fragment's duration.
    fn on_last_moof(&mut self, plan: MfraPlan, at: u64, data: Bytes) -> Result<()> {
        let h = match BoxHeader::parse(&data, plan.mfra_off - at) {
            Ok(Some(h)) if h.typ == MOOF && h.size <= MAX_HEADER_BOX && h.size <= plan.mfra_off - at => h,
            _ => return self.give_up(format!("tfra points at {at}, where there is no moof")),
        };
        if (data.len() as u64) < h.size {
            // A moof larger than the read-ahead: one more read.
            self.tail = Tail::LastMoof { offset: at, len: h.size };
            self.mfra = Some(plan);
            return Ok(());
        }
        let whole = data.slice(..h.size as usize);
        self.finish_mfra(plan, Some((at, whole)))
    }

    /// Builds the fragment table from a checked `tfra` and the first and last `moof`s.
    fn finish_mfra(&mut self, plan: MfraPlan, last_moof: Option<(u64, Bytes)>) -> Result<()> {
        let first = self.frags[0][0];
        let t = &self.tracks[0];
        let (last_decode, last_duration, last_samples) = match &last_moof {
            None => (first.decode_time, first.duration, first.samples),
            Some((at, whole)) => {
                let left = self.limits.max_bytes.saturating_sub(self.cost());
                let bounds = FragmentBounds { media_bytes: self.file_len, max_samples: (left / SAMPLE_COST).min(MAX_FRAGMENT_SAMPLES) };
                let trex = t.trex;
                let trafs = match read_moof(whole, *at, &|_| trex, bounds) {
                    Ok(t) => t,
                    Err(e) => return self.give_up(format!("last moof at {at}: {e}")),
                };
                let mut mine = trafs.iter().filter(|tf| tf.tfhd.track_id == t.track_id);
                match (mine.next(), mine.next()) {
                    (Some(tf), None) if !tf.samples.is_empty() && tf.decode_time.is_some() => (tf.decode_time.unwrap_or_default(), tf.duration(), tf.samples.len() as u32),
                    _ => return self.give_up(format!("last moof at {at} has no single traf with samples and a tfdt for track {}", t.track_id)),
                }
            }
        };
        let n = plan.entries.len();
        // tfra times are presentation times; the last moof says what they are in decode time.
        let delta = plan.entries[n - 1].time as i128 - last_decode as i128;
        let decode = |k: usize| -> i128 { if k == 0 { first.decode_time as i128 } else { plan.entries[k].time as i128 - delta } };
        if n > 1 && decode(1) != first.decode_time as i128 + first.duration as i128 {
            return self.give_up(format!("tfra times disagree with the first fragment (its end {} vs {})", first.decode_time as i128 + first.duration as i128, decode(1)));
        }
        let mut table = Vec::with_capacity(n);
        for k in 0..n {
            let (d, next) = (decode(k), if k + 1 < n { decode(k + 1) } else { decode(k) + last_duration as i128 });
            let (Ok(decode_time), Ok(duration)) = (u64::try_from(d), u64::try_from(next - d)) else {
                return self.give_up(format!("tfra entry {k} gives a negative time or duration"));
            };
            let offset = plan.entries[k].moof_offset;
            let end = plan.entries.get(k + 1).map_or(plan.mfra_off, |e| e.moof_offset);
            table.push(Fragment {
                decode_time,
                duration,
                // As for sidx tables: the first fragment's presentation offsets hold for all.
                pres_offset: first.pres_offset,
                offset,
                size: end - offset,
                media_bytes: end - offset,
                keyframe: if k == 0 { first.keyframe } else { true },
                samples: match k {
                    0 => first.samples,
                    _ if k == n - 1 => last_samples,
                    _ => 0,
                },
                min_cto: first.min_cto,
            });
        }
        self.frags[0] = table;
        self.open.clear();
        self.method = IndexMethod::Mfra;
        self.tail = Tail::Over;
        self.done = true;
        Ok(())
    }

    /// Leaves the `mfra` fast path (saying why in the index's note) and walks on from the
    /// first fragment.
    fn give_up(&mut self, why: String) -> Result<()> {
        self.note = Some(format!("mfra not used: {why}"));
        self.tail = Tail::Over;
        self.mfra = None;
        self.advance()
    }

    fn close_open(&mut self, end: u64) {
        for &i in &self.open {
            if let Some(f) = self.frags[i].last_mut() {
                f.size = end - f.offset;
            }
        }
        self.open.clear();
    }

    /// The finished index. Fails when the file is not a fragmented MP4 we can serve.
    pub fn finish(self) -> Result<FileIndex> {
        if !self.done {
            return Err(Error::Read("index finished before all reads were fed".into()));
        }
        let moov = self.moov.ok_or_else(|| Error::Unsupported("no moov box".into()))?;
        let progressive = !self.tables.is_empty();
        let method = if progressive { IndexMethod::Moov } else { self.method };
        let moov = if progressive { strip_sample_tables(&moov) } else { moov };
        let mut tables = self.tables.into_iter();
        let mut tracks = Vec::with_capacity(self.tracks.len());
        let single = self.tracks.len() == 1 && !progressive;
        for (info, mut fragments) in self.tracks.into_iter().zip(self.frags) {
            if single {
                // A sidx or mfra table knows each fragment's byte span, not its sample bytes.
                // So that every output (the TS bandwidth estimate reads them) is the same
                // whatever the layout, the walk's exact figures are not used either: every
                // fragment's sample bytes are its span less the first fragment's non-sample
                // bytes (its moof and mdat header, read by every layout), scaled down for a
                // shorter fragment, never up and never past half the span, so the estimate
                // errs on the side of more sample bytes (a higher BANDWIDTH). A sidecar holds
                // these estimates already.
                if method != IndexMethod::Sidecar {
                    estimate_media_bytes(&mut fragments, self.first_media);
                }
            }
            if fragments.is_empty() {
                return Err(Error::Unsupported(format!("track {} has no fragments (not a fragmented MP4?)", info.track_id)));
            }
            let init = Bytes::from(build_init(&moov, info.track_id)?);
            tracks.push(TrackIndex { info, init, fragments, samples: tables.next().flatten() });
        }
        Ok(FileIndex { file_len: self.file_len, tracks, reads: self.reads, method, note: self.note })
    }
}

/// Sets a single-track file's fragments' `media_bytes` from their spans and the first
/// fragment's sample bytes `first_media` (see [`IndexBuilder::finish`]).
fn estimate_media_bytes(fragments: &mut [Fragment], first_media: Option<u64>) {
    let Some(first) = fragments.first().copied() else { return };
    let overhead = first_media.map_or(0, |m| first.size.saturating_sub(m));
    for f in fragments {
        let scaled = if f.duration >= first.duration || first.duration == 0 { overhead } else { (overhead as u128 * f.duration as u128 / first.duration as u128) as u64 };
        f.media_bytes = f.size - scaled.min(f.size / 2);
    }
}

/// The entries of `track_id`'s `tfra` in a whole `mfra` box, bounded by the box (a count
/// beyond it is refused before anything is allocated).
fn read_tfra(mfra: &[u8], track_id: u32) -> std::result::Result<Vec<TfraEntry>, String> {
    let (h, body) = match BoxIter::new(mfra).next() {
        Some(Ok((h, body))) if h.typ == MFRA && h.size == mfra.len() as u64 => (h, body),
        _ => return Err("no mfra box where mfro says it starts".into()),
    };
    let mut found = None;
    for child in BoxIter::new(body) {
        let (ch, cbody) = child.map_err(|e| format!("mfra at {}: {e}", h.size))?;
        if ch.typ != TFRA {
            continue;
        }
        let t = Tfra::decode_body(&mut Reader::new(cbody, TFRA)).map_err(|e| format!("tfra: {e}"))?;
        if t.track_id == track_id {
            if found.is_some() {
                return Err(format!("two tfra boxes for track {track_id}"));
            }
            found = Some(t.entries);
        }
    }
    found.ok_or_else(|| format!("no tfra for track {track_id}"))
}

/// Checks a `tfra` against what the walk read and where the `mfra` is: every fragment a
/// random access point at its first sample, `moof` offsets strictly increasing from the first
/// fragment's up to the `mfra`, times strictly increasing.
fn check_tfra(entries: &[TfraEntry], first_moof: u64, mfra_off: u64) -> std::result::Result<(), String> {
    let Some(e0) = entries.first() else { return Err("empty tfra".into()) };
    if e0.moof_offset != first_moof {
        return Err(format!("tfra starts at {}, the first moof is at {first_moof}", e0.moof_offset));
    }
    for (k, e) in entries.iter().enumerate() {
        if (e.traf_number, e.trun_number, e.sample_number) != (1, 1, 1) {
            return Err(format!("tfra entry {k} is not the first sample of a fragment (traf {}, trun {}, sample {})", e.traf_number, e.trun_number, e.sample_number));
        }
        if e.moof_offset >= mfra_off {
            return Err(format!("tfra entry {k} points at {}, past the media (mfra at {mfra_off})", e.moof_offset));
        }
        if e.time > i64::MAX as u64 {
            return Err(format!("tfra entry {k} has time {}", e.time));
        }
        if k > 0 {
            let p = &entries[k - 1];
            if e.moof_offset <= p.moof_offset {
                return Err(format!("tfra moof offsets not increasing at entry {k}"));
            }
            if e.time <= p.time {
                return Err(format!("tfra times not increasing at entry {k}"));
            }
        }
    }
    Ok(())
}

/// Whether a `moov` (or one `trak`) declares samples in a sample table: an `stbl` whose
/// `stsz`/`stz2` count and `stco`/`co64` entry count are both non-zero (a fragmented file's
/// are empty; one that only lies about its sample count, with no chunk to hold them, is a
/// fragmented file with a bad empty table, which was never read and still is not).
fn has_moov_samples(b: &RawBox<'_>) -> bool {
    if b.typ == STBL {
        // Full boxes: stsz and stz2 have their count at body bytes 8..12, stco and co64 at 4..8.
        let count = |t: FourCC, at: usize| b.child(t).and_then(|c| c.prefix.get(at..at + 4)).is_some_and(|c| c != [0, 0, 0, 0]);
        return (count(STSZ, 8) || count(STZ2, 8)) && (count(STCO, 4) || count(CO64, 4));
    }
    b.children.iter().flatten().any(has_moov_samples)
}

/// Boxes in a tree, the tree's own root included.
fn count_boxes(b: &RawBox<'_>) -> u64 {
    1 + b.children.iter().flatten().map(count_boxes).sum::<u64>()
}

/// The index of a fragmented file of `file_len` bytes from its `moov` box and one fragment
/// table per track (a sidecar's contents, [`crate::sidecar`]), within `limits`. Every track of
/// the `moov` needs exactly one table.
pub fn from_parts(file_len: u64, moov: &Bytes, tables: Vec<(u32, Vec<Fragment>)>, limits: IndexLimits) -> Result<FileIndex> {
    let mut b = IndexBuilder::new(file_len, 64).with_limits(limits);
    match BoxHeader::parse(moov, moov.len() as u64) {
        Ok(Some(h)) if h.typ == MOOV && h.size == moov.len() as u64 && h.size <= MAX_HEADER_BOX => {}
        _ => return Err(Error::Unsupported("sidecar: not a moov box".into())),
    }
    if (moov.len() as u64).saturating_mul(MOOV_COST_PER_BYTE) > limits.max_bytes {
        return Err(Error::Limit(format!("sidecar moov of {} bytes over the index budget {}", moov.len(), limits.max_bytes)));
    }
    b.on_moov(moov)?;
    if b.done || !b.tables.is_empty() {
        return Err(Error::Unsupported("sidecar for a file whose moov holds samples".into()));
    }
    if tables.len() != b.tracks.len() {
        return Err(Error::Unsupported(format!("sidecar has {} fragment tables for {} tracks", tables.len(), b.tracks.len())));
    }
    for (id, frags) in tables {
        let i = b.tracks.iter().position(|t| t.track_id == id).ok_or_else(|| Error::Unsupported(format!("sidecar table for track {id}, which the moov does not have")))?;
        if !b.frags[i].is_empty() || frags.is_empty() {
            return Err(Error::Unsupported(format!("sidecar: track {id} has two tables or an empty one")));
        }
        b.frags[i] = frags;
        b.check_cost()?;
    }
    b.done = true;
    b.method = IndexMethod::Sidecar;
    b.finish()
}

/// Indexes a file held wholly in memory (tests, `inspect`, fuzzing), within
/// [`IndexLimits::default`].
pub fn index_bytes(data: &Bytes, read_ahead: u64) -> Result<FileIndex> {
    index_bytes_within(data, read_ahead, IndexLimits::default())
}

/// [`index_bytes`] within `limits`.
pub fn index_bytes_within(data: &Bytes, read_ahead: u64, limits: IndexLimits) -> Result<FileIndex> {
    let mut b = IndexBuilder::new(data.len() as u64, read_ahead).with_limits(limits);
    while let Need::Read { offset, len } = b.next_read() {
        b.feed(offset, data.slice(offset as usize..(offset + len) as usize))?;
    }
    b.finish()
}
