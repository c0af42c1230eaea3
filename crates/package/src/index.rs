//! The file index: init bytes and a fragment table per track, built from `sidx` when the
//! file has one, else by walking `moof` headers — never by reading `mdat`.
//!
//! [`IndexBuilder`] is sans-IO: it says which byte range it needs next ([`Need`]) and the
//! caller feeds it the bytes, from a local file, an object store or a test vector alike.

use bytes::Bytes;
use sealcast_isobmff::fourcc::types::*;
use sealcast_isobmff::{sidx::Sidx, tree::RawBox, Atom, BoxHeader, FourCC};

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
    /// Bytes of this track's samples.
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
}

impl FileIndex {
    /// Approximate heap size, for byte-weighted caches.
    pub fn weight(&self) -> usize {
        self.tracks.iter().map(|t| t.init.len() + t.fragments.len() * std::mem::size_of::<Fragment>() + t.samples.as_ref().map_or(0, SampleTable::weight) + 512).sum::<usize>() + 64
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

/// Largest `moov`/`moof`/`sidx` we accept; bigger is treated as hostile.
const MAX_HEADER_BOX: u64 = 64 << 20;

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
        }
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
        let len = self.read_ahead.max(self.need_len).min(self.file_len - self.pos);
        Need::Read { offset: self.pos, len }
    }

    /// Feeds the bytes read at `offset` and advances as far as they allow.
    pub fn feed(&mut self, offset: u64, data: Bytes) -> Result<()> {
        if offset != self.pos || data.is_empty() {
            return Err(Error::Read(format!("fed {} bytes at {offset}, wanted {}", data.len(), self.pos)));
        }
        self.reads += 1;
        self.window = data;
        self.window_off = offset;
        self.advance()
    }

    fn advance(&mut self) -> Result<()> {
        self.need_len = 0;
        while !self.done {
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
                    b"moov" => self.on_moov(&whole)?,
                    b"sidx" => self.on_sidx(&whole, h)?,
                    _ => self.on_moof(&whole)?,
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
        let moov = if progressive { strip_sample_tables(&moov) } else { moov };
        let mut tables = self.tables.into_iter();
        let mut tracks = Vec::with_capacity(self.tracks.len());
        for (info, fragments) in self.tracks.into_iter().zip(self.frags) {
            if fragments.is_empty() {
                return Err(Error::Unsupported(format!("track {} has no fragments (not a fragmented MP4?)", info.track_id)));
            }
            let init = Bytes::from(build_init(&moov, info.track_id)?);
            tracks.push(TrackIndex { info, init, fragments, samples: tables.next().flatten() });
        }
        Ok(FileIndex { file_len: self.file_len, tracks, reads: self.reads })
    }
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
