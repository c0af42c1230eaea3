//! Progressive (non-fragmented) MP4 input: a track's samples described once in its `stbl`
//! (ISO/IEC 14496-12 §8.5–8.7) instead of in movie fragments.
//!
//! A [`SampleTable`] keeps the `stbl` in a compact form — one `u32` size per sample, the
//! chunk offsets and the run-length tables as they were — and cuts the track into the same
//! [`Fragment`] units a fragmented file gives, starting on sync samples. When a segment is
//! served, [`SampleTable::track_fragment`] synthesizes the [`TrackFragment`] a `moof` would
//! have described (one `trun` per chunk, absolute sample offsets), so every writer — CMAF,
//! MPEG-TS, Smooth, each encryption — works on progressive input unchanged, and the `mdat`
//! it writes is slices of the bytes read (no copy).
//!
//! Every count is hostile: sample, chunk and run tables are only as long as the box bytes
//! that declare them (or, for a fixed sample size, as the file bytes the samples would
//! take), and declared run counts are walked without being expanded.

use sealcast_isobmff::co64::Co64;
use sealcast_isobmff::ctts::Ctts;
use sealcast_isobmff::fourcc::types::*;
use sealcast_isobmff::stco::Stco;
use sealcast_isobmff::stsc::Stsc;
use sealcast_isobmff::stss::Stss;
use sealcast_isobmff::stsz::Stsz;
use sealcast_isobmff::stts::Stts;
use sealcast_isobmff::stz2::Stz2;
use sealcast_isobmff::tfhd::Tfhd;
use sealcast_isobmff::tree::RawBox;
use sealcast_isobmff::trun::{flags as trun_flags, Trun, TrunEntry};
use sealcast_isobmff::{Atom, FourCC, Reader};

use crate::error::{At, Error, Result};
use crate::fragment::{Run, Sample, TrackFragment};
use crate::index::Fragment;

/// Sample flags written for a sync sample: `sample_depends_on` = 2 (depends on no other).
const SYNC_FLAGS: u32 = 0x0200_0000;
/// Sample flags written for a non-sync sample: depends on others, `sample_is_non_sync_sample`.
const NON_SYNC_FLAGS: u32 = 0x0101_0000;

/// Where a progressive track is cut into fragments: at a sync sample whose decode time falls
/// in another second than the fragment's first sample. Video (sync samples a GOP apart, one
/// second or more) gets one fragment per GOP, like `frag_keyframe` fragmented input; audio
/// (every sample a sync sample) gets one-second fragments instead of one per frame. The
/// segment planner ([`crate::timeline`]) then groups fragments by the same rule as for
/// fragmented input, so renditions cut on the same key frames stay aligned.
const FRAGMENT_GRID_SECONDS: u64 = 1;

/// A run of samples sharing one value (durations from `stts`, offsets from `ctts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ValueRun<T> {
    /// First sample of the run.
    first: u32,
    value: T,
}

/// A track's `stbl`, compact: memory is 4 bytes per sample (its size) plus 12 per chunk,
/// 16 per `stts` run, 8 per `ctts` run, 4 per sync sample and 12 per fragment. Where ffmpeg
/// writes a chunk and a `ctts` run per video frame (B-frames, interleaving) that tends to
/// 4 + 12 + 8 = 24 bytes per video sample; measured on the 4 s fixtures, fixed part
/// included (`tests/progressive.rs`): 26.7 per video sample, 12.2 per AAC frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleTable {
    count: u32,
    /// One size for every sample (`stsz` with a sample size), else `sizes`.
    fixed_size: u32,
    sizes: Vec<u32>,
    /// File offset of each chunk, and its first sample (two arrays: 12 bytes a chunk).
    chunk_offsets: Vec<u64>,
    chunk_first: Vec<u32>,
    durations: Vec<ValueRun<u32>>,
    /// Decode time of the first sample of each entry of `durations`.
    run_dts: Vec<u64>,
    offsets: Vec<ValueRun<i32>>,
    /// Sync samples (from 0), increasing; `None`: every sample is one.
    sync: Option<Vec<u32>>,
    /// First sample of each fragment the table was cut into.
    frag_first: Vec<u32>,
    /// File offset of each fragment's first sample: where a walk over the fragment starts
    /// without summing the sizes before it in its chunk (a chunk may hold every sample).
    frag_offset: Vec<u64>,
}

impl SampleTable {
    /// Reads the sample table of `trak` and cuts it into fragments. `file_len` bounds every
    /// offset and size; `budget` is the memory the table may take (fails with
    /// [`Error::Limit`] over it).
    pub fn read(trak: &RawBox<'_>, track_id: u32, timescale: u32, file_len: u64, budget: u64) -> Result<(SampleTable, Vec<Fragment>)> {
        let stbl = trak.path(&[MDIA, MINF, STBL]).ok_or_else(|| bad(track_id, "no stbl"))?;
        let leaf = |t: FourCC| stbl.child(t).filter(|b| b.children.is_none());
        let decode = |t: FourCC| -> Option<Reader<'_>> { leaf(t).map(|b| Reader::new(&b.prefix, t)) };
        let at = 0;
        let (count, fixed_size, sizes) = match (decode(STSZ), decode(STZ2)) {
            (Some(mut r), _) => {
                let s = Stsz::decode_body(&mut r).at(at)?;
                (s.sample_count, s.sample_size, s.sizes)
            }
            (None, Some(mut r)) => {
                let s = Stz2::decode_body(&mut r).at(at)?;
                (u32::try_from(s.sizes.len()).map_err(|_| bad(track_id, "too many samples"))?, 0, s.sizes)
            }
            (None, None) => return Err(bad(track_id, "no stsz or stz2")),
        };
        if count == 0 {
            return Err(bad(track_id, "no samples"));
        }
        // A fixed size declares its count without bytes behind it: the samples must fit in
        // the file before anything is sized by the count.
        if fixed_size != 0 && (fixed_size as u64).saturating_mul(count as u64) > file_len {
            return Err(bad(track_id, &format!("stsz declares {count} samples of {fixed_size} bytes, more than the file's {file_len}")));
        }
        if sizes.contains(&0) {
            return Err(bad(track_id, "a sample of 0 bytes"));
        }
        if sizes.iter().map(|&s| s as u64).sum::<u64>() > file_len {
            return Err(bad(track_id, "its sample sizes add up to more than the file"));
        }
        let chunk_offsets: Vec<u64> = match (decode(STCO), decode(CO64)) {
            (Some(mut r), _) => Stco::decode_body(&mut r).at(at)?.offsets.into_iter().map(u64::from).collect(),
            (None, Some(mut r)) => Co64::decode_body(&mut r).at(at)?.offsets,
            (None, None) => return Err(bad(track_id, "no stco or co64")),
        };
        let stsc = Stsc::decode_body(&mut decode(STSC).ok_or_else(|| bad(track_id, "no stsc"))?).at(at)?;
        let stts = Stts::decode_body(&mut decode(STTS).ok_or_else(|| bad(track_id, "no stts"))?).at(at)?;
        let ctts = decode(CTTS).map(|mut r| Ctts::decode_body(&mut r)).transpose().at(at)?;
        let stss = decode(STSS).map(|mut r| Stss::decode_body(&mut r)).transpose().at(at)?;

        // What the table will hold, weighed before it is built (each source table is already
        // in memory, no larger than its box).
        let cost = sizes.capacity() * 4 + chunk_offsets.len() * 12 + stts.entries.len() * 16 + ctts.as_ref().map_or(0, |c| c.entries.len() * 8) + stss.as_ref().map_or(0, |s| s.samples.len() * 4);
        if cost as u64 > budget {
            return Err(Error::Limit(format!("track {track_id}: sample table of {cost} bytes is over the index budget of {budget}")));
        }

        let chunk_first = chunks(track_id, &chunk_offsets, &stsc, count)?;
        let mut chunk_offsets = chunk_offsets;
        chunk_offsets.truncate(chunk_first.len());
        chunk_offsets.shrink_to_fit();
        let (durations, run_dts) = runs_u32(track_id, &stts, count)?;
        let offsets = match &ctts {
            Some(c) => runs_i32(track_id, c, count)?,
            None => vec![ValueRun { first: 0, value: 0 }],
        };
        let sync = match stss {
            None => None,
            Some(s) => {
                let mut prev = 0u32;
                let mut out = Vec::with_capacity(s.samples.len());
                for n in s.samples {
                    if n <= prev || n > count {
                        return Err(bad(track_id, &format!("stss lists sample {n} (samples 1 to {count}, increasing)")));
                    }
                    prev = n;
                    out.push(n - 1);
                }
                if out.first() != Some(&0) {
                    return Err(bad(track_id, "its first sample is not a sync sample"));
                }
                Some(out)
            }
        };
        let mut table = SampleTable { count, fixed_size, sizes, chunk_offsets, chunk_first, durations, run_dts, offsets, sync, frag_first: Vec::new(), frag_offset: Vec::new() };
        let frags = table.cut(track_id, timescale, file_len)?;
        table.sizes.shrink_to_fit();
        Ok((table, frags))
    }

    /// Bytes the table takes.
    pub fn weight(&self) -> usize {
        self.sizes.capacity() * 4
            + self.chunk_offsets.capacity() * 8
            + self.chunk_first.capacity() * 4
            + self.durations.capacity() * std::mem::size_of::<ValueRun<u32>>()
            + self.run_dts.capacity() * 8
            + self.offsets.capacity() * std::mem::size_of::<ValueRun<i32>>()
            + self.sync.as_ref().map_or(0, |s| s.capacity() * 4)
            + self.frag_first.capacity() * 4
            + self.frag_offset.capacity() * 8
            + std::mem::size_of::<Self>()
    }

    /// Number of fragments cut from the table: the track's first ones (a fragmented file may
    /// follow them with movie fragments).
    pub fn fragments(&self) -> usize {
        self.frag_first.len()
    }

    /// Number of samples.
    pub fn len(&self) -> u32 {
        self.count
    }

    /// Whether the table has no samples (never, once read).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn size(&self, i: u32) -> u32 {
        if self.fixed_size != 0 {
            self.fixed_size
        } else {
            self.sizes[i as usize]
        }
    }

    fn is_sync(&self, i: u32) -> bool {
        self.sync.as_ref().is_none_or(|s| s.binary_search(&i).is_ok())
    }

    /// Samples `first..first + n` with their offsets, decode times walked from the tables;
    /// `offset` is the file offset of sample `first` (its chunk's offset when it starts one).
    fn samples(&self, first: u32, offset: u64, n: u32) -> Samples<'_> {
        let chunk = self.chunk_first.partition_point(|&c| c <= first).saturating_sub(1);
        let d = self.durations.partition_point(|r| r.first <= first).saturating_sub(1);
        let dts = self.run_dts[d] + (first - self.durations[d].first) as u64 * self.durations[d].value as u64;
        let o = self.offsets.partition_point(|r| r.first <= first).saturating_sub(1);
        Samples { t: self, i: first, end: first.saturating_add(n).min(self.count), chunk, offset, d, o, dts }
    }

    /// Cuts the track into fragments (see [`FRAGMENT_GRID_SECONDS`]), checking that every
    /// sample lies inside the file.
    fn cut(&mut self, track_id: u32, timescale: u32, file_len: u64) -> Result<Vec<Fragment>> {
        let grid = (timescale as u64).saturating_mul(FRAGMENT_GRID_SECONDS).max(1);
        let mut frags: Vec<Fragment> = Vec::new();
        let mut firsts = Vec::new();
        let mut span = (u64::MAX, 0u64);
        let mut dts_min_pts = i64::MAX;
        let mut offsets = Vec::new();
        for s in self.samples(0, self.chunk_offsets[0], self.count) {
            let end = s.offset.checked_add(s.size as u64).filter(|&e| e <= file_len).ok_or_else(|| bad(track_id, &format!("sample at byte {} ({} bytes) is outside the file of {file_len} bytes", s.offset, s.size)))?;
            let starts = match frags.last() {
                None => true,
                Some(f) => s.sync && s.dts / grid != f.decode_time / grid,
            };
            if starts {
                close(&mut frags, span, dts_min_pts);
                firsts.push(s.index);
                offsets.push(s.offset);
                frags.push(Fragment { decode_time: s.dts, duration: 0, pres_offset: 0, offset: 0, size: 0, media_bytes: 0, keyframe: s.sync, samples: 0, min_cto: i64::MAX });
                span = (u64::MAX, 0);
                dts_min_pts = i64::MAX;
            }
            let f = frags.last_mut().expect("a fragment was pushed for the first sample");
            f.duration = f.duration.saturating_add(s.duration as u64);
            f.media_bytes += s.size as u64;
            f.samples += 1;
            f.min_cto = f.min_cto.min(s.cto);
            dts_min_pts = dts_min_pts.min((s.dts - f.decode_time) as i64 + s.cto);
            span = (span.0.min(s.offset), span.1.max(end));
        }
        close(&mut frags, span, dts_min_pts);
        self.frag_first = firsts;
        self.frag_offset = offsets;
        Ok(frags)
    }

    /// First sample and its file offset of fragment `frag`.
    fn start_of(&self, frag: usize) -> Option<(u32, u64)> {
        Some((*self.frag_first.get(frag)?, *self.frag_offset.get(frag)?))
    }

    /// The byte runs `(start, end)` of fragment `frag`'s samples: each a run of adjacent
    /// samples (a chunk, or chunks that follow each other), in file order.
    pub fn byte_runs(&self, frag: usize, f: &Fragment) -> Vec<(u64, u64)> {
        let Some((first, offset)) = self.start_of(frag) else { return Vec::new() };
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for s in self.samples(first, offset, f.samples) {
            let end = s.offset.saturating_add(s.size as u64);
            match runs.last_mut() {
                Some(r) if r.1 == s.offset => r.1 = end,
                _ => runs.push((s.offset, end)),
            }
        }
        runs
    }

    /// The fragment `frag` of the track as a `moof` would describe it: one `trun` of all its
    /// samples (offsets absolute, in the [`Sample`]s), its run's `data_start` the first
    /// sample's offset and `data_len` their total bytes — they need not be adjacent in the
    /// file: the writers slice the sample bytes by sample, and the `mdat` written holds them
    /// one after the other.
    pub fn track_fragment(&self, frag: usize, f: &Fragment, track_id: u32) -> Result<TrackFragment> {
        let (first, offset) = self.start_of(frag).ok_or_else(|| Error::Read(format!("track {track_id}: no fragment {frag}")))?;
        let mut samples = Vec::with_capacity(f.samples as usize);
        let mut entries = Vec::with_capacity(f.samples as usize);
        for s in self.samples(first, offset, f.samples) {
            let sample = Sample { offset: s.offset, size: s.size, duration: s.duration, flags: if s.sync { SYNC_FLAGS } else { NON_SYNC_FLAGS }, cto: s.cto };
            entries.push(TrunEntry { duration: Some(s.duration), size: Some(s.size), flags: Some(sample.flags), cto: Some(s.cto) });
            samples.push(sample);
        }
        let first_offset = samples.first().map_or(0, |s| s.offset);
        let data_len = samples.iter().map(|s| s.size as u64).sum();
        // Version 1 when an offset is negative: the smallest version that holds them.
        let version = u8::from(samples.iter().any(|s| s.cto < 0));
        let flags = trun_flags::DURATION | trun_flags::SIZE | trun_flags::FLAGS | trun_flags::CTO;
        let runs = vec![Run { trun: Trun { version, flags, data_offset: None, first_sample_flags: None, entries }, data_start: first_offset, data_len }];
        let tfhd = Tfhd { track_id, default_base_is_moof: true, ..Tfhd::default() };
        Ok(TrackFragment { tfhd, decode_time: Some(f.decode_time), samples, runs, extra: Vec::new() })
    }
}

/// Byte runs merged into ranged reads: sorted, overlapping or adjacent runs joined, and runs
/// closer than `gap` read together (the bytes between them are read and not used).
///
/// Which of the two ways a segment is read, and why: one read spanning the track's chunks
/// when the other tracks' bytes between them are small (each gap under `gap`, what a
/// request's round trip costs in transfer), several reads otherwise. The sample bytes stay
/// slices of what was read either way; several reads are placed into one buffer covering the
/// span ([`assemble`]), which copies only this track's bytes.
pub fn coalesce(mut runs: Vec<(u64, u64)>, gap: u64) -> Vec<std::ops::Range<u64>> {
    runs.sort_unstable();
    let mut out: Vec<std::ops::Range<u64>> = Vec::new();
    for (s, e) in runs {
        match out.last_mut() {
            Some(r) if s <= r.end.saturating_add(gap) => r.end = r.end.max(e),
            _ => out.push(s..e),
        }
    }
    out
}

/// The bytes of `span` as [`crate::fmp4::read_segment`] and the writers take them, from the
/// reads of [`coalesce`] (`pieces`: each read's start and bytes). One read covering the span
/// is returned as it is (no copy); several are copied into a buffer of the span's length at
/// their offsets, the bytes between them (other tracks' chunks, never referenced) left zero.
pub fn assemble(span: std::ops::Range<u64>, pieces: Vec<(u64, bytes::Bytes)>) -> Result<bytes::Bytes> {
    if let [(start, b)] = pieces.as_slice() {
        if *start == span.start && b.len() as u64 == span.end - span.start {
            return Ok(b.clone());
        }
    }
    let len = usize::try_from(span.end.saturating_sub(span.start)).map_err(|_| Error::Read("segment span too large".into()))?;
    let mut buf = bytes::BytesMut::zeroed(len);
    for (start, b) in pieces {
        let at = start.checked_sub(span.start).map(|a| a as usize).filter(|&a| a.checked_add(b.len()).is_some_and(|e| e <= len)).ok_or_else(|| Error::Read(format!("read at {start} of {} bytes is outside the span {span:?}", b.len())))?;
        buf[at..at + b.len()].copy_from_slice(&b);
    }
    Ok(buf.freeze())
}

fn close(frags: &mut [Fragment], span: (u64, u64), dts_min_pts: i64) {
    if let Some(f) = frags.last_mut() {
        f.offset = span.0;
        f.size = span.1 - span.0;
        f.pres_offset = dts_min_pts;
    }
}

fn bad(track_id: u32, what: &str) -> Error {
    Error::Unsupported(format!("track {track_id}: progressive sample table: {what}"))
}

/// Expands `stsc` over the chunk offsets: each used chunk's first sample. Runs must start at
/// chunk 1 and increase (a run pointing back would loop); chunks must hold exactly `count`
/// samples, or at least that many with the extra in unused trailing chunks.
fn chunks(track_id: u32, offsets: &[u64], stsc: &Stsc, count: u32) -> Result<Vec<u32>> {
    let n = offsets.len() as u64;
    if stsc.entries.first().is_none_or(|e| e.first_chunk != 1) {
        return Err(bad(track_id, "stsc does not start at chunk 1"));
    }
    let mut out = Vec::with_capacity(offsets.len());
    let mut sample = 0u64;
    for (k, e) in stsc.entries.iter().enumerate() {
        let next = stsc.entries.get(k + 1).map_or(n + 1, |x| x.first_chunk as u64);
        if next <= e.first_chunk as u64 || e.first_chunk as u64 > n {
            return Err(bad(track_id, &format!("stsc entry {} (chunk {}) does not increase within the {n} chunks", k + 1, e.first_chunk)));
        }
        if e.samples_per_chunk == 0 {
            return Err(bad(track_id, "stsc declares chunks of 0 samples"));
        }
        for _ in e.first_chunk as u64..next.min(n + 1) {
            if sample >= count as u64 {
                break;
            }
            out.push(sample as u32);
            sample += e.samples_per_chunk as u64;
        }
    }
    if sample < count as u64 {
        return Err(bad(track_id, &format!("its chunks hold {sample} samples, stsz declares {count}")));
    }
    Ok(out)
}

/// `stts` as runs with their first sample and decode time, walked only up to `count`
/// samples (a run's declared count is never expanded).
fn runs_u32(track_id: u32, stts: &Stts, count: u32) -> Result<(Vec<ValueRun<u32>>, Vec<u64>)> {
    let mut runs = Vec::with_capacity(stts.entries.len().min(count as usize));
    let mut dts_of = Vec::with_capacity(runs.capacity());
    let (mut first, mut dts) = (0u64, 0u64);
    for e in &stts.entries {
        if first >= count as u64 {
            break;
        }
        if e.count == 0 {
            continue;
        }
        runs.push(ValueRun { first: first as u32, value: e.delta });
        dts_of.push(dts);
        let n = (e.count as u64).min(count as u64 - first);
        dts = dts.checked_add(n * e.delta as u64).ok_or_else(|| bad(track_id, "decode times overflow"))?;
        first += n;
    }
    if first < count as u64 {
        return Err(bad(track_id, &format!("stts covers {first} of {count} samples")));
    }
    Ok((runs, dts_of))
}

/// `ctts` as runs with their first sample; samples past its end get offset 0.
fn runs_i32(track_id: u32, ctts: &Ctts, count: u32) -> Result<Vec<ValueRun<i32>>> {
    let mut runs = Vec::with_capacity(ctts.entries.len().min(count as usize) + 1);
    let mut first = 0u64;
    for e in &ctts.entries {
        if first >= count as u64 {
            break;
        }
        if e.count == 0 {
            continue;
        }
        // Version 0 offsets over 2^31 (a negative offset written unsigned, or a lie) have no
        // meaning in a 32-bit timeline.
        let value = i32::try_from(e.offset).map_err(|_| bad(track_id, &format!("composition offset {} out of range", e.offset)))?;
        runs.push(ValueRun { first: first as u32, value });
        first += e.count as u64;
    }
    if first < count as u64 {
        runs.push(ValueRun { first: first as u32, value: 0 });
    }
    Ok(runs)
}

/// One sample as [`SampleTable::samples`] walks them.
#[derive(Debug, Clone, Copy)]
struct Walked {
    index: u32,
    offset: u64,
    size: u32,
    duration: u32,
    dts: u64,
    cto: i64,
    sync: bool,
}

/// Walks samples in decode order, advancing a cursor in each table.
struct Samples<'a> {
    t: &'a SampleTable,
    i: u32,
    end: u32,
    chunk: usize,
    offset: u64,
    d: usize,
    o: usize,
    dts: u64,
}

impl Iterator for Samples<'_> {
    type Item = Walked;
    fn next(&mut self) -> Option<Walked> {
        if self.i >= self.end {
            return None;
        }
        let t = self.t;
        let i = self.i;
        if t.chunk_first.get(self.chunk + 1).is_some_and(|&c| c <= i) {
            self.chunk += 1;
            self.offset = t.chunk_offsets[self.chunk];
        }
        if t.durations.get(self.d + 1).is_some_and(|r| r.first <= i) {
            self.d += 1;
        }
        if t.offsets.get(self.o + 1).is_some_and(|r| r.first <= i) {
            self.o += 1;
        }
        let size = t.size(i);
        let duration = t.durations[self.d].value;
        let s = Walked { index: i, offset: self.offset, size, duration, dts: self.dts, cto: t.offsets[self.o].value as i64, sync: t.is_sync(i) };
        self.offset = self.offset.saturating_add(size as u64);
        self.dts = self.dts.saturating_add(duration as u64);
        self.i += 1;
        Some(s)
    }
}

/// The `moov` with every track's sample tables emptied: what an init segment of
/// progressive input carries (a fragmented track describes its samples in fragments). The
/// sample description and everything outside `stbl` pass through untouched.
pub fn strip_sample_tables(moov: &RawBox<'_>) -> RawBox<'static> {
    let mut m = moov.clone().into_owned();
    for trak in m.children.iter_mut().flatten().filter(|b| b.typ == TRAK) {
        if let Some(stbl) = trak.path_mut(&[MDIA, MINF, STBL]) {
            let kids = stbl.children.take().unwrap_or_default();
            let mut kept: Vec<RawBox<'static>> = kids.into_iter().filter(|b| b.typ == STSD).collect();
            // Empty full boxes: version/flags then a zero count (stsz: size and count).
            kept.push(RawBox::leaf(STTS, vec![0; 8]));
            kept.push(RawBox::leaf(STSC, vec![0; 8]));
            kept.push(RawBox::leaf(STSZ, vec![0; 12]));
            kept.push(RawBox::leaf(STCO, vec![0; 8]));
            stbl.children = Some(kept);
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealcast_isobmff::stsc::StscEntry;

    #[test]
    fn stsc_runs_expand_to_chunk_firsts() {
        let stsc = Stsc { entries: vec![StscEntry { first_chunk: 1, samples_per_chunk: 2, sample_description_index: 1 }, StscEntry { first_chunk: 3, samples_per_chunk: 1, sample_description_index: 1 }] };
        assert_eq!(chunks(1, &[100, 200, 300, 400], &stsc, 6).unwrap(), vec![0, 2, 4, 5]);
        assert!(chunks(1, &[100, 200, 300, 400], &stsc, 7).is_err(), "too few samples in the chunks");
    }

    #[test]
    fn stsc_that_points_back_is_refused() {
        let e = |f| StscEntry { first_chunk: f, samples_per_chunk: 1, sample_description_index: 1 };
        assert!(chunks(1, &[1, 2, 3], &Stsc { entries: vec![e(1), e(3), e(2)] }, 3).is_err());
        assert!(chunks(1, &[1, 2, 3], &Stsc { entries: vec![e(2)] }, 3).is_err());
        assert!(chunks(1, &[1, 2, 3], &Stsc { entries: vec![e(1), e(9)] }, 3).is_err());
    }

    #[test]
    fn runs_coalesce_by_gap() {
        let runs = vec![(300, 400), (0, 100), (100, 150), (1000, 1100), (390, 420)];
        assert_eq!(coalesce(runs.clone(), 0), vec![0..150, 300..420, 1000..1100]);
        assert_eq!(coalesce(runs.clone(), 150), vec![0..420, 1000..1100]);
        assert_eq!(coalesce(runs, 1000), vec![0..1100]);
    }

    #[test]
    fn pieces_assemble_at_their_offsets() {
        let b = |v: &[u8]| bytes::Bytes::copy_from_slice(v);
        let whole = b(b"abcdef");
        assert_eq!(assemble(10..16, vec![(10, whole.clone())]).unwrap().as_ptr(), whole.as_ptr(), "one covering read is not copied");
        assert_eq!(&assemble(10..16, vec![(10, b(b"ab")), (14, b(b"ef"))]).unwrap()[..], b"ab\0\0ef");
        assert!(assemble(10..16, vec![(15, b(b"ef"))]).is_err());
        assert!(assemble(10..16, vec![(9, b(b"ef"))]).is_err());
    }

    #[test]
    fn huge_stts_counts_are_walked_not_expanded() {
        use sealcast_isobmff::stts::SttsEntry;
        let stts = Stts { entries: vec![SttsEntry { count: u32::MAX, delta: 1024 }, SttsEntry { count: u32::MAX, delta: 1 }] };
        let (runs, dts) = runs_u32(1, &stts, 10).unwrap();
        assert_eq!((runs.len(), dts), (1, vec![0]));
        assert!(runs_u32(1, &Stts { entries: vec![SttsEntry { count: 3, delta: 1 }] }, 10).is_err());
    }
}
