//! One movie fragment (`moof`) read for one track: its samples and where their bytes are.

use sealcast_isobmff::fourcc::types::*;
use sealcast_isobmff::trun::{Trun, TrunEntry, TrunHeader, SAMPLE_IS_NON_SYNC};
use sealcast_isobmff::{header, tfdt::Tfdt, tfhd::Tfhd, trex::Trex, Atom, BoxIter, FourCC};

use crate::error::{At, Error, Result};

/// One sample of a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Absolute file offset of the sample's bytes.
    pub offset: u64,
    /// Size in bytes.
    pub size: u32,
    /// Duration (media timescale).
    pub duration: u32,
    /// Sample flags.
    pub flags: u32,
    /// Composition time offset.
    pub cto: i64,
}

impl Sample {
    /// Whether the sample is a sync sample (keyframe).
    pub fn is_sync(&self) -> bool {
        self.flags & SAMPLE_IS_NON_SYNC == 0
    }
}

/// A track run with the absolute offset of its first sample's bytes.
#[derive(Debug, Clone)]
pub struct Run {
    /// The run as it was in the source.
    pub trun: Trun,
    /// Absolute offset of its data.
    pub data_start: u64,
    /// Bytes of data.
    pub data_len: u64,
}

/// One track's part of a `moof`.
#[derive(Debug, Clone)]
pub struct TrackFragment {
    /// The source `tfhd`.
    pub tfhd: Tfhd,
    /// Decode time of the first sample (from `tfdt`, or `None` when absent).
    pub decode_time: Option<u64>,
    /// Samples in decode order.
    pub samples: Vec<Sample>,
    /// Runs, in order.
    pub runs: Vec<Run>,
    /// Other `traf` children worth keeping (`sdtp`, `sbgp`, `sgpd`, `subs`), encoded.
    pub extra: Vec<Vec<u8>>,
}

impl TrackFragment {
    /// Sum of sample durations.
    pub fn duration(&self) -> u64 {
        self.samples.iter().map(|s| s.duration as u64).sum()
    }
    /// Sum of sample sizes.
    pub fn media_bytes(&self) -> u64 {
        self.samples.iter().map(|s| s.size as u64).sum()
    }
    /// Earliest presentation time relative to the decode time of the first sample.
    pub fn pres_offset(&self) -> i64 {
        let mut dts = 0i64;
        let mut min = i64::MAX;
        for s in &self.samples {
            min = min.min(dts.saturating_add(s.cto));
            dts = dts.saturating_add(s.duration as i64);
        }
        if min == i64::MAX {
            0
        } else {
            min
        }
    }
}

/// Most samples one `moof` may declare, over all its `traf`s, whatever the file size. A
/// sample costs [`SAMPLE_COST`] bytes while its fragment is read, so this keeps that under
/// 80 MiB; real fragments hold hundreds (10 s of 60 fps video: 600).
pub const MAX_FRAGMENT_SAMPLES: u64 = 1 << 20;

/// Bytes one declared sample costs while a fragment is read: its decoded `trun` entry and
/// its [`Sample`].
pub const SAMPLE_COST: u64 = (std::mem::size_of::<TrunEntry>() + std::mem::size_of::<Sample>()) as u64;

/// What the bytes around a `moof` can back: every count a `moof` declares is weighed against
/// these before anything is allocated for it (issue 11: a 16-byte `trun` may declare 2^20
/// samples that take no bytes at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentBounds {
    /// Bytes the samples of the whole `moof` may add up to: the file length while indexing,
    /// the bytes read while writing a segment.
    pub media_bytes: u64,
    /// Most samples the whole `moof` may declare.
    pub max_samples: u64,
}

impl Default for FragmentBounds {
    /// Bounds that rely on the file alone (no memory budget, no known length).
    fn default() -> Self {
        FragmentBounds { media_bytes: u64::MAX, max_samples: MAX_FRAGMENT_SAMPLES }
    }
}

/// What is left of a [`FragmentBounds`] while a `moof` is read.
struct Budget {
    samples: u64,
    bytes: u64,
    max_samples: u64,
    at: u64,
}

impl Budget {
    /// Takes `count` samples and `bytes` sample bytes, or says which bound they break.
    fn take(&mut self, count: u64, bytes: u64) -> Result<()> {
        if count > self.samples {
            return Err(Error::Limit(format!("moof at byte {}: more than {} samples in one fragment", self.at, self.max_samples)));
        }
        if bytes > self.bytes {
            return Err(Error::Unsupported(format!("moof at byte {}: its samples declare more bytes than there are to hold them", self.at)));
        }
        self.samples -= count;
        self.bytes -= bytes;
        Ok(())
    }
}

/// Reads the `traf` of `track_id` from a `moof` box. `moof` holds the whole box (header
/// included) and starts at file offset `moof_offset`. `Ok(None)` when the track has no
/// `traf` in this fragment. Counts are bounded by [`FragmentBounds::default`].
pub fn read_track_fragment(moof: &[u8], moof_offset: u64, track_id: u32, trex: &Trex) -> Result<Option<TrackFragment>> {
    read_track_fragment_within(moof, moof_offset, track_id, trex, FragmentBounds::default())
}

/// [`read_track_fragment`] with the bounds the caller knows (the file length, a memory
/// budget). Every `traf` of the `moof` counts toward them, not only the one returned.
pub fn read_track_fragment_within(moof: &[u8], moof_offset: u64, track_id: u32, trex: &Trex, bounds: FragmentBounds) -> Result<Option<TrackFragment>> {
    let mut found = None;
    for tf in read_moof(moof, moof_offset, &|_| *trex, bounds)? {
        if tf.tfhd.track_id == track_id {
            if found.is_some() {
                return Err(Error::Unsupported(format!("track {track_id}: several trafs in one moof")));
            }
            found = Some(tf);
        }
    }
    Ok(found)
}

/// Reads every `traf` of a `moof` (see [`read_track_fragment`]), each with the `trex`
/// defaults `trex_of` gives for its track ID, in one pass under one budget.
pub fn read_moof(moof: &[u8], moof_offset: u64, trex_of: &dyn Fn(u32) -> Trex, bounds: FragmentBounds) -> Result<Vec<TrackFragment>> {
    let (_, body) = BoxIter::new(moof)
        .next()
        .ok_or_else(|| Error::Read("empty moof".into()))?
        .at(moof_offset)?;
    let mut budget = Budget { samples: bounds.max_samples, bytes: bounds.media_bytes, max_samples: bounds.max_samples, at: moof_offset };
    // Where the previous traf's data ended: the implicit base of a traf without
    // default-base-is-moof that is not the first (ISO/IEC 14496-12 §8.8.7.1).
    let mut prev_end = moof_offset;
    let mut out = Vec::new();
    for item in BoxIter::new(body) {
        let (h, traf) = item.at(moof_offset)?;
        if h.typ != TRAF {
            continue;
        }
        let tfhd = Tfhd::decode_body(&mut sealcast_isobmff::Reader::new(header::require(traf, TFHD).at(moof_offset)?, TFHD)).at(moof_offset)?;
        let base = tfhd.base_data_offset.unwrap_or(if tfhd.default_base_is_moof { moof_offset } else { prev_end });
        let tf = read_traf(traf, tfhd, base, &trex_of(tfhd.track_id), moof_offset, &mut budget)?;
        prev_end = tf.runs.last().map_or(base, |r| r.data_start.saturating_add(r.data_len));
        out.push(tf);
    }
    Ok(out)
}

fn read_traf(traf: &[u8], tfhd: Tfhd, base: u64, trex: &Trex, at: u64, budget: &mut Budget) -> Result<TrackFragment> {
    let mut decode_time = None;
    let mut samples = Vec::new();
    let mut runs = Vec::new();
    let mut extra = Vec::new();
    let mut next = base;
    let d_dur = tfhd.default_sample_duration.unwrap_or(trex.default_sample_duration);
    let d_size = tfhd.default_sample_size.unwrap_or(trex.default_sample_size);
    let d_flags = tfhd.default_sample_flags.unwrap_or(trex.default_sample_flags);
    let mut pos = 0usize;
    for item in BoxIter::new(traf) {
        let (h, body) = item.at(at)?;
        let start = pos;
        pos += h.size as usize;
        match &h.typ.0 {
            b"tfdt" => decode_time = Some(Tfdt::decode_body(&mut sealcast_isobmff::Reader::new(body, TFDT)).at(at)?.base_media_decode_time),
            b"trun" => {
                // Weigh the declared count before decoding allocates an entry per sample: a
                // sample is backed by its entry's bytes in the box or by its bytes in mdat.
                let th = TrunHeader::peek(body).at(at)?;
                let count = th.sample_count as u64;
                if count > 0 && th.entry_size() == 0 && d_size == 0 {
                    return Err(Error::Unsupported(format!("trun in moof at byte {at} declares {count} samples of 0 bytes with no per-sample fields")));
                }
                let default_bytes = if th.has_sample_sizes() { 0 } else { count.saturating_mul(d_size as u64) };
                budget.take(count, default_bytes)?;
                let trun = Trun::decode_body(&mut sealcast_isobmff::Reader::new(body, TRUN)).at(at)?;
                if th.has_sample_sizes() {
                    let bytes = trun.entries.iter().map(|e| e.size.unwrap_or(0) as u64).sum();
                    budget.take(0, bytes)?;
                }
                let data_start = match trun.data_offset {
                    Some(o) => base.checked_add_signed(o as i64).ok_or_else(|| Error::Unsupported("trun data offset before file start".into()))?,
                    None => next,
                };
                let mut off = data_start;
                samples.reserve(trun.entries.len());
                for (i, e) in trun.entries.iter().enumerate() {
                    let size = e.size.unwrap_or(d_size);
                    let flags = if i == 0 { trun.first_sample_flags.or(e.flags).unwrap_or(d_flags) } else { e.flags.unwrap_or(d_flags) };
                    samples.push(Sample { offset: off, size, duration: e.duration.unwrap_or(d_dur), flags, cto: e.cto.unwrap_or(0) });
                    off = off.checked_add(size as u64).ok_or_else(|| Error::Unsupported("sample offsets overflow".into()))?;
                }
                next = off;
                runs.push(Run { trun, data_start, data_len: off - data_start });
            }
            b"sdtp" | b"sbgp" | b"sgpd" | b"subs" => extra.push(traf[start..pos].to_vec()),
            _ => {}
        }
    }
    Ok(TrackFragment { tfhd, decode_time, samples, runs, extra })
}

/// Box type helper re-exported for callers that match on `moof`.
pub const MOOF_TYPE: FourCC = MOOF;
