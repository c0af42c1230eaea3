//! CMAF media segments: `styp`, then per source fragment a rewritten `moof` (one `traf`,
//! new `mfhd` sequence number, `tfdt`, `trun` data offsets relative to the new `moof`) and an
//! `mdat` whose payload is slices of the bytes read from storage — never copied.

use bytes::Bytes;
use sealcast_isobmff::fourcc::types::*;
use sealcast_isobmff::trun::flags::DATA_OFFSET;
use sealcast_isobmff::writer::Put;
use sealcast_isobmff::{ftyp::Ftyp, mfhd::Mfhd, tfdt::Tfdt, tfhd::Tfhd, write_box, Atom, BoxHeader, FourCC};

use sealcast_cenc::boxes::Senc;

use crate::asset::AssetTrack;
use crate::error::{At, Error, Result};
use crate::fragment::{read_track_fragment_within, FragmentBounds, TrackFragment};

/// A response body as a list of chunks (our headers and slices of the source).
#[derive(Debug, Clone, Default)]
pub struct Chunks {
    /// Chunks in order.
    pub parts: Vec<Bytes>,
}

impl Chunks {
    /// Total length.
    pub fn len(&self) -> u64 {
        self.parts.iter().map(|b| b.len() as u64).sum()
    }
    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Appends a chunk, skipping empty ones.
    pub fn push(&mut self, b: Bytes) {
        if !b.is_empty() {
            self.parts.push(b);
        }
    }
    /// Concatenates (tests and small bodies).
    pub fn concat(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len() as usize);
        for p in &self.parts {
            v.extend_from_slice(p);
        }
        v
    }
}

/// Brands of the media segments we write.
pub fn styp() -> Ftyp {
    Ftyp { major_brand: FourCC::new(b"msdh"), minor_version: 0, compatible_brands: vec![FourCC::new(b"msdh"), FourCC::new(b"msix"), FourCC::new(b"cmfs")] }
}

/// One source fragment of a segment, read for its track.
pub struct SourceFragment {
    /// The track's part of the source `moof`.
    pub traf: TrackFragment,
    /// Decode time (from `tfdt`, else from the index).
    pub decode_time: u64,
    /// Sequence number to write (fragment index + 1).
    pub sequence: u32,
}

/// Reads the fragments of segment `seg` of `track` from `data`, the bytes of the segment's
/// source range starting at file offset `data_offset`.
pub fn read_segment(track: &AssetTrack, seg: usize, data: &Bytes, data_offset: u64) -> Result<Vec<SourceFragment>> {
    let s = track.segments.get(seg).ok_or_else(|| Error::Read(format!("no segment {seg}")))?;
    read_fragments(track, s.first..s.first + s.count, data, data_offset)
}

/// Reads fragments `range` of `track` from `data` (bytes starting at file offset `data_offset`).
pub fn read_fragments(track: &AssetTrack, range: std::ops::Range<usize>, data: &Bytes, data_offset: u64) -> Result<Vec<SourceFragment>> {
    let t = track.track();
    let mut out = Vec::with_capacity(range.len());
    for fi in range {
        let f = t.fragments.get(fi).ok_or_else(|| Error::Read(format!("no fragment {fi}")))?;
        if let Some(table) = t.samples.as_ref().filter(|table| fi < table.fragments()) {
            // Progressive input: the fragment is synthesized from the sample table; its samples
            // must lie in what was read.
            let traf = table.track_fragment(fi, f, t.info.track_id)?;
            let end = data_offset + data.len() as u64;
            if traf.samples.iter().any(|s| s.offset < data_offset || s.offset + s.size as u64 > end) {
                return Err(Error::Read(format!("track {}: fragment {fi} lies outside the bytes read", t.info.track_id)));
            }
            out.push(SourceFragment { traf, decode_time: f.decode_time, sequence: fi as u32 + 1 });
            continue;
        }
        let rel = f.offset.checked_sub(data_offset).ok_or_else(|| Error::Read("fragment before the read range".into()))? as usize;
        let avail = data.get(rel..).ok_or_else(|| Error::Read("fragment past the read range".into()))?;
        // The samples of a fragment lie in what was read for it: more declared bytes than that
        // is a lie, refused before it is allocated for.
        out.push(from_moof(track, fi, avail, data.len() as u64)?);
    }
    Ok(out)
}

/// Fragment `fi` of `track` from `avail`, bytes read at its offset that start with its `moof`
/// (the whole `moof`, at least); `media_bytes`: what its samples may add up to.
fn from_moof(track: &AssetTrack, fi: usize, avail: &[u8], media_bytes: u64) -> Result<SourceFragment> {
    let t = track.track();
    let f = t.fragments.get(fi).ok_or_else(|| Error::Read(format!("no fragment {fi}")))?;
    let h = BoxHeader::parse(avail, avail.len() as u64).at(f.offset)?.ok_or_else(|| Error::Read("short read".into()))?;
    if h.typ != MOOF {
        return Err(Error::Unsupported(format!("expected moof at {}, found '{}' (file changed?)", f.offset, h.typ)));
    }
    let moof = avail.get(..h.size as usize).ok_or_else(|| Error::Truncated { offset: f.offset, need: h.size, file_len: f.offset + avail.len() as u64 })?;
    let bounds = FragmentBounds { media_bytes, ..FragmentBounds::default() };
    let traf = read_track_fragment_within(moof, f.offset, t.info.track_id, &t.info.trex, bounds)?
        .ok_or_else(|| Error::Unsupported(format!("track {} missing from fragment at {}", t.info.track_id, f.offset)))?;
    let decode_time = traf.decode_time.unwrap_or(f.decode_time);
    Ok(SourceFragment { traf, decode_time, sequence: fi as u32 + 1 })
}

/// Bytes read from the start of each fragment to find its `moof` ([`head_reads`]); a longer
/// `moof` is read again whole ([`moof_len`]). A 4 s fragment of 60 fps video has a `moof` of
/// about 4 KB.
pub const HEAD_READ: u64 = 8 * 1024;

/// Where the `moof`s of segment `seg` of `track` are to be read: the first [`HEAD_READ`]
/// bytes of each fragment (all of a shorter one). `None` for progressive input (its fragments
/// are made from the sample table) and for a segment the index does not have.
pub fn head_reads(track: &AssetTrack, seg: usize) -> Option<Vec<std::ops::Range<u64>>> {
    let t = track.track();
    let s = track.segments.get(seg)?;
    if t.samples.is_some() {
        return None;
    }
    let f = t.fragments.get(s.first..s.first.checked_add(s.count)?)?;
    f.iter().map(|f| Some(f.offset..f.offset.checked_add(f.size.min(HEAD_READ))?)).collect()
}

/// The size of the `moof` that `head` starts with, when it starts with one.
pub fn moof_len(head: &[u8]) -> Option<u64> {
    let h = BoxHeader::parse(head, u64::MAX).ok()??;
    (h.typ == MOOF).then_some(h.size)
}

/// The fragments of segment `seg` of `track` from their `moof`s alone: `heads[i]` was read at
/// the offset of the segment's `i`-th fragment and holds at least its whole `moof`
/// ([`head_reads`], [`moof_len`]). Every sample must lie inside the segment's bytes as the
/// index measured them ([`AssetTrack::segment_range`]), as [`read_segment`] requires of the
/// bytes it is given: the same segments are accepted and refused either way. The sample bytes
/// are then sent from the file as they lie ([`write_segment_in_place`]), never seen here.
pub fn read_segment_heads(track: &AssetTrack, seg: usize, heads: &[Bytes]) -> Result<Vec<SourceFragment>> {
    let t = track.track();
    let s = track.segments.get(seg).ok_or_else(|| Error::Read(format!("no segment {seg}")))?;
    if t.samples.is_some() {
        return Err(Error::Unsupported("progressive input has no moof to read".into()));
    }
    if heads.len() != s.count {
        return Err(Error::Read(format!("{} moofs for {} fragments", heads.len(), s.count)));
    }
    let (from, to) = track.segment_range(seg).ok_or_else(|| Error::Read(format!("no segment {seg}")))?;
    let mut out = Vec::with_capacity(s.count);
    for (head, fi) in heads.iter().zip(s.first..s.first + s.count) {
        let sf = from_moof(track, fi, head, to - from)?;
        if let Some(bad) = sf.traf.samples.iter().find(|x| x.offset < from || x.offset.saturating_add(u64::from(x.size)) > to) {
            return Err(Error::Truncated { offset: bad.offset, need: u64::from(bad.size), file_len: to });
        }
        out.push(sf);
    }
    Ok(out)
}

/// The file byte range of the fragment that starts segment `seg` of `track`: where its key
/// frame is (segments start on key frames). `None` when there is no such segment or its first
/// fragment does not start with a sync sample.
pub fn iframe_range(track: &AssetTrack, seg: usize) -> Option<(u64, u64)> {
    let s = track.segments.get(seg)?;
    let f = track.track().fragments.get(s.first).filter(|f| f.keyframe)?;
    Some((f.offset, f.offset.checked_add(f.size)?))
}

/// The I-frame of segment `seg`: its first fragment (read from `data`, the bytes of
/// [`iframe_range`] at file offset `data_offset`) cut to its first sample, the key frame. Its
/// `traf` keeps only what describes that sample (`sdtp`, `sbgp`, `subs` describing the whole
/// run are dropped). What [`write_segment`] and the encryptors take, so an I-frame segment is
/// written, and encrypted, exactly like a media segment of one sample.
pub fn read_iframe(track: &AssetTrack, seg: usize, data: &Bytes, data_offset: u64) -> Result<Vec<SourceFragment>> {
    let s = track.segments.get(seg).ok_or_else(|| Error::Read(format!("no segment {seg}")))?;
    let mut frags = read_fragments(track, s.first..s.first + 1, data, data_offset)?;
    let sf = frags.pop().ok_or_else(|| Error::Read("no fragment".into()))?;
    let first = *sf.traf.samples.first().ok_or_else(|| Error::Read("fragment without samples".into()))?;
    if !first.is_sync() {
        return Err(Error::Read(format!("segment {} does not start with a key frame", seg + 1)));
    }
    let run = sf.traf.runs.first().filter(|r| !r.trun.entries.is_empty() && r.data_start == first.offset).ok_or_else(|| Error::Read("first run does not hold the first sample".into()))?;
    let mut trun = run.trun.clone();
    trun.entries.truncate(1);
    let run = crate::fragment::Run { trun, data_start: run.data_start, data_len: first.size as u64 };
    let traf = crate::fragment::TrackFragment { samples: vec![first], runs: vec![run], extra: Vec::new(), ..sf.traf };
    Ok(vec![SourceFragment { traf, ..sf }])
}

/// Writes a CMAF media segment from the fragments [`read_segment`] returned.
pub fn write_segment(frags: &[SourceFragment], data: &Bytes, data_offset: u64) -> Result<Chunks> {
    write_segment_with(frags, data, data_offset, &[], 1)
}

/// [`write_segment`], with the `senc` of each fragment when the samples in `data` were
/// encrypted (`saiz`, `saio` and `senc` end each `traf`; `None` or a missing entry: clear).
///
/// A protected segment (`sencs` not empty) whose fragment has no `senc` is a clear-lead
/// fragment; `trex_index` is the track's default sample description index.
pub(crate) fn write_segment_with(frags: &[SourceFragment], data: &Bytes, data_offset: u64, sencs: &[Option<Senc>], trex_index: u32) -> Result<Chunks> {
    let mut body = Chunks::default();
    write_parts(frags, sencs, trex_index, |part| {
        body.push(match part {
            FilePart::Ours(b) => b,
            FilePart::Source(r) => slice(data, data_offset, (r.start, r.end))?,
        });
        Ok(())
    })?;
    Ok(body)
}

/// A part of a media segment whose samples are left where they lie in the source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilePart {
    /// Bytes of ours: `styp`, a `moof`, an `mdat` header.
    Ours(Bytes),
    /// This byte range of the source file, as it is.
    Source(std::ops::Range<u64>),
}

impl FilePart {
    /// Its length.
    pub fn len(&self) -> u64 {
        match self {
            FilePart::Ours(b) => b.len() as u64,
            FilePart::Source(r) => r.end - r.start,
        }
    }
    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A clear CMAF media segment as [`write_segment`] writes it, with the sample bytes named by
/// their place in the source file instead of copied or sliced: the caller sends them from the
/// file (`sendfile`). The same bytes as [`write_segment`] of the same fragments.
pub fn write_segment_in_place(frags: &[SourceFragment]) -> Result<Vec<FilePart>> {
    let mut out = Vec::new();
    write_parts(frags, &[], 1, |part| {
        if !part.is_empty() {
            out.push(part);
        }
        Ok(())
    })?;
    Ok(out)
}

/// Writes a media segment as its parts in the order they are sent: our boxes, and after each
/// `mdat` header the spans of adjacent sample bytes (file offsets) it holds. `sencs`,
/// `trex_index`: see [`write_segment_with`].
fn write_parts(frags: &[SourceFragment], sencs: &[Option<Senc>], trex_index: u32, mut out: impl FnMut(FilePart) -> Result<()>) -> Result<()> {
    let mut head = Vec::with_capacity(1024);
    // Same body as ftyp, written under the 'styp' type.
    write_box(&mut head, STYP, |o| styp().encode_body(o));
    for (i, sf) in frags.iter().enumerate() {
        let tf = &sf.traf;
        let senc = sencs.get(i).and_then(Option::as_ref);
        let clear_entry = !sencs.is_empty() && senc.is_none();
        let moof = build_moof(sf, 0, senc, clear_entry, trex_index)?;
        // The trun offsets depend on the moof's own size: build once to measure, then again.
        let moof = build_moof(sf, moof.len() as u64 + 8, senc, clear_entry, trex_index)?;
        head.extend_from_slice(&moof);
        let media_len: u64 = tf.runs.iter().map(|r| r.data_len).sum();
        let mdat_size = u32::try_from(media_len + 8).map_err(|_| Error::Unsupported("fragment larger than 4 GiB".into()))?;
        head.put_u32(mdat_size);
        head.extend_from_slice(&MDAT.0);
        out(FilePart::Ours(Bytes::from(std::mem::take(&mut head))))?;
        // The samples' bytes in order, adjacent ones coalesced into one span: a run's
        // samples are adjacent in a fragmented source, so that is one span per run of
        // runs; a progressive fragment's one run spans its chunks, a span each.
        let mut pending: Option<(u64, u64)> = None;
        for s in &tf.samples {
            let end = s.offset + s.size as u64;
            match pending {
                Some((a, e)) if e == s.offset => pending = Some((a, end)),
                _ => {
                    if let Some((a, e)) = pending {
                        out(FilePart::Source(a..e))?;
                    }
                    pending = Some((s.offset, end));
                }
            }
        }
        if let Some((a, e)) = pending {
            out(FilePart::Source(a..e))?;
        }
    }
    Ok(())
}

fn slice(data: &Bytes, data_offset: u64, (s, e): (u64, u64)) -> Result<Bytes> {
    let a = s.checked_sub(data_offset).ok_or_else(|| Error::Read("sample data before the read range".into()))? as usize;
    let b = (e - data_offset) as usize;
    if b > data.len() {
        return Err(Error::Truncated { offset: s, need: e - s, file_len: data_offset + data.len() as u64 });
    }
    Ok(data.slice(a..b))
}

/// `clear_entry`: the fragment is clear in a protected track and points its `tfhd` at the
/// clear copy of its sample entry (the source's index `i` becomes `2i`: every protected entry
/// is followed by its clear copy); `trex_index` is the track's default index.
fn build_moof(sf: &SourceFragment, first_data_offset: u64, senc: Option<&Senc>, clear_entry: bool, trex_index: u32) -> Result<Vec<u8>> {
    let tf = &sf.traf;
    let mut out = Vec::with_capacity(256 + tf.samples.len() * if senc.is_some() { 40 } else { 16 });
    let mut aux = Ok(());
    write_box(&mut out, MOOF, |o| {
        Mfhd { sequence_number: sf.sequence }.encode(o);
        write_box(o, TRAF, |o| {
            let mut tfhd = Tfhd { base_data_offset: None, duration_is_empty: false, default_base_is_moof: true, ..tf.tfhd };
            if clear_entry {
                // A clear fragment of a protected track: the init's clear copy of the sample
                // entry follows the protected one (see `sealcast_cenc::init::InitProtection`).
                let index = tfhd.sample_description_index.unwrap_or(trex_index);
                tfhd.sample_description_index = Some(index.saturating_mul(2));
            }
            tfhd.encode(o);
            Tfdt::new(sf.decode_time).encode(o);
            for x in &tf.extra {
                o.extend_from_slice(x);
            }
            let mut off = first_data_offset;
            for r in &tf.runs {
                let mut t = r.trun.clone();
                t.flags |= DATA_OFFSET;
                t.data_offset = Some(off as i32);
                t.encode(o);
                off += r.data_len;
            }
            if let Some(senc) = senc {
                // saio offsets count from the moof's first byte, which is the buffer's.
                aux = sealcast_cenc::traf::write_aux_boxes(o, 0, senc);
            }
        });
    });
    aux.map_err(|e| Error::Unsupported(format!("track {}: {e}", tf.tfhd.track_id)))?;
    Ok(out)
}
