//! One movie fragment (`moof`) read for one track: its samples and where their bytes are.

use sealcast_isobmff::fourcc::types::*;
use sealcast_isobmff::trun::{Trun, SAMPLE_IS_NON_SYNC};
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

/// Reads the `traf` of `track_id` from a `moof` box. `moof` holds the whole box (header
/// included) and starts at file offset `moof_offset`. `Ok(None)` when the track has no
/// `traf` in this fragment.
pub fn read_track_fragment(moof: &[u8], moof_offset: u64, track_id: u32, trex: &Trex) -> Result<Option<TrackFragment>> {
    let (_, body) = BoxIter::new(moof)
        .next()
        .ok_or_else(|| Error::Read("empty moof".into()))?
        .at(moof_offset)?;
    // Where the previous traf's data ended: the implicit base of a traf without
    // default-base-is-moof that is not the first (ISO/IEC 14496-12 §8.8.7.1).
    let mut prev_end = moof_offset;
    let mut found = None;
    for item in BoxIter::new(body) {
        let (h, traf) = item.at(moof_offset)?;
        if h.typ != TRAF {
            continue;
        }
        let tfhd = Tfhd::decode_body(&mut sealcast_isobmff::Reader::new(header::require(traf, TFHD).at(moof_offset)?, TFHD)).at(moof_offset)?;
        let base = tfhd.base_data_offset.unwrap_or(if tfhd.default_base_is_moof { moof_offset } else { prev_end });
        let tf = read_traf(traf, tfhd, base, trex, moof_offset)?;
        prev_end = tf.runs.last().map_or(base, |r| r.data_start.saturating_add(r.data_len));
        if tf.tfhd.track_id == track_id {
            if found.is_some() {
                return Err(Error::Unsupported(format!("track {track_id}: several trafs in one moof")));
            }
            found = Some(tf);
        }
    }
    Ok(found)
}

fn read_traf(traf: &[u8], tfhd: Tfhd, base: u64, trex: &Trex, at: u64) -> Result<TrackFragment> {
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
                let trun = Trun::decode_body(&mut sealcast_isobmff::Reader::new(body, TRUN)).at(at)?;
                let data_start = match trun.data_offset {
                    Some(o) => base.checked_add_signed(o as i64).ok_or_else(|| Error::Unsupported("trun data offset before file start".into()))?,
                    None => next,
                };
                let mut off = data_start;
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
