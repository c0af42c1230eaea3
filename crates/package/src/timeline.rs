//! Segments: runs of whole fragments, cut on keyframes at a target duration.
//!
//! The cut rule depends only on a track's own fragment times, so renditions that share
//! keyframe times (a CMAF switching set) get the same segment boundaries without looking at
//! each other: a keyframe fragment starts a new segment when `floor((t + target/8) / target)`
//! differs from that of the current segment's start. The slack of an eighth keeps fragments a
//! hair shorter than the target (29.97 fps content) from being merged in pairs.
//!
//! Segments also have a duration and a byte cap ([`SegmentLimits`]): a segment is read into
//! memory whole, and a source with one keyframe would otherwise be one segment as long as the
//! file. Over a cap the segment is cut at the next fragment boundary even without a keyframe;
//! a single fragment over a cap is refused. Caps far above the target change nothing for
//! normal sources.

use crate::error::{Error, Result};
use crate::index::Fragment;

/// Caps on one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentLimits {
    /// Longest segment, in milliseconds.
    pub max_duration_ms: u64,
    /// Most source bytes one segment may span (what is read to serve it).
    pub max_bytes: u64,
}

impl SegmentLimits {
    /// No caps: [`plan`].
    pub const NONE: SegmentLimits = SegmentLimits { max_duration_ms: u64::MAX, max_bytes: u64::MAX };
}

impl Default for SegmentLimits {
    /// Two minutes and 128 MiB: twice the longest target the origin accepts, and room for
    /// ten seconds of 100 Mbit/s video.
    fn default() -> Self {
        SegmentLimits { max_duration_ms: 120_000, max_bytes: 128 << 20 }
    }
}

/// A segment: fragments `first..first + count` of a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Index of the first fragment.
    pub first: usize,
    /// Number of fragments.
    pub count: usize,
    /// Decode time of the first sample.
    pub decode_time: u64,
    /// Presentation time of the earliest sample (as the DASH timeline uses).
    pub pres_time: i64,
    /// Sum of decode durations.
    pub duration: u64,
    /// Bytes of the fragments (`moof` + `mdat` in the source).
    pub bytes: u64,
    /// Bytes of this track's samples.
    pub media_bytes: u64,
}

/// Cuts a track's fragments into segments of about `target_ms`, without caps.
pub fn plan(frags: &[Fragment], timescale: u32, target_ms: u32) -> Vec<Segment> {
    // With no caps nothing can be over one.
    plan_within(frags, timescale, target_ms, SegmentLimits::NONE).unwrap_or_default()
}

/// Cuts a track's fragments into segments of about `target_ms`, each within `limits`.
/// Fails with [`Error::Limit`] when a single fragment is over a cap.
pub fn plan_within(frags: &[Fragment], timescale: u32, target_ms: u32, limits: SegmentLimits) -> Result<Vec<Segment>> {
    let target = (target_ms.max(1) as u128 * timescale as u128 / 1000).max(1);
    let max_dur = limits.max_duration_ms as u128 * timescale as u128 / 1000;
    let fits = |d: u64, b: u64| d as u128 <= max_dur && b <= limits.max_bytes;
    let key = |t: u64| (t as u128 + target / 8) / target;
    let mut out: Vec<Segment> = Vec::new();
    let mut cur_key = None;
    for (i, f) in frags.iter().enumerate() {
        if !fits(f.duration, f.size) {
            return Err(Error::Limit(format!(
                "fragment at byte {} ({} bytes, {} ms) is over the segment caps ({} bytes, {} ms)",
                f.offset,
                f.size,
                f.duration as u128 * 1000 / timescale.max(1) as u128,
                limits.max_bytes,
                limits.max_duration_ms
            )));
        }
        let k = key(f.decode_time);
        let start_new = match (out.last(), cur_key) {
            (None, _) => true,
            (Some(s), Some(ck)) => (f.keyframe && k != ck) || !fits(s.duration.saturating_add(f.duration), s.bytes.saturating_add(f.size)),
            _ => false,
        };
        if start_new {
            cur_key = Some(k);
            out.push(Segment {
                first: i,
                count: 1,
                decode_time: f.decode_time,
                pres_time: (f.decode_time as i64).saturating_add(f.pres_offset),
                duration: f.duration,
                bytes: f.size,
                media_bytes: f.media_bytes,
            });
        } else if let Some(s) = out.last_mut() {
            s.count += 1;
            s.duration = s.duration.saturating_add(f.duration);
            s.bytes = s.bytes.saturating_add(f.size);
            s.media_bytes = s.media_bytes.saturating_add(f.media_bytes);
        }
    }
    // A trailing sliver (an encoder's last partial AAC frame, a lone final frame) becomes part
    // of the segment before it: players stall on very short last segments, and a TS segment of
    // a few bytes cannot be padded to whole continuity cycles without splitting a PES header.
    let sliver = |l: &Segment| (l.duration as u128) * 4 < target;
    let merged_fits = |p: &Segment, l: &Segment| fits(p.duration.saturating_add(l.duration), p.bytes.saturating_add(l.bytes));
    if out.len() >= 2 && out.last().is_some_and(sliver) && merged_fits(&out[out.len() - 2], &out[out.len() - 1]) {
        let l = out.pop().expect("checked: at least two segments");
        let p = out.last_mut().expect("checked: at least two segments");
        p.count += l.count;
        p.duration = p.duration.saturating_add(l.duration);
        p.bytes = p.bytes.saturating_add(l.bytes);
        p.media_bytes = p.media_bytes.saturating_add(l.media_bytes);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(t: u64, d: u64, key: bool) -> Fragment {
        Fragment { decode_time: t, duration: d, pres_offset: 0, offset: t, size: 10, media_bytes: 8, keyframe: key, samples: 1, min_cto: 0 }
    }

    #[test]
    fn one_fragment_per_segment_when_fragments_match_target() {
        let f: Vec<_> = (0..5).map(|i| frag(i * 180_000, 180_000, true)).collect();
        let s = plan(&f, 90_000, 2000);
        assert_eq!(s.len(), 5);
        assert!(s.iter().all(|s| s.count == 1));
    }

    #[test]
    fn short_fragments_are_grouped_and_cuts_wait_for_keyframes() {
        // 0.5 s fragments, keyframe every 1 s, target 2 s -> 4 fragments per segment.
        let f: Vec<_> = (0..8).map(|i| frag(i * 45_000, 45_000, i % 2 == 0)).collect();
        let s = plan(&f, 90_000, 2000);
        assert_eq!(s.iter().map(|s| s.count).collect::<Vec<_>>(), vec![4, 4]);
        assert_eq!(s.iter().map(|s| s.duration).sum::<u64>(), 8 * 45_000);
    }

    #[test]
    fn trailing_sliver_joins_the_last_segment() {
        let mut f: Vec<_> = (0..3).map(|i| frag(i * 180_000, 180_000, true)).collect();
        f.push(frag(540_000, 1920, true));
        let s = plan(&f, 90_000, 2000);
        assert_eq!(s.iter().map(|s| s.count).collect::<Vec<_>>(), vec![1, 1, 2]);
        assert_eq!(s[2].duration, 181_920);
    }

    #[test]
    fn caps_cut_at_fragment_boundaries_and_refuse_one_fragment_over_them() {
        // One keyframe, then 1 s fragments: without caps, one segment of the whole track.
        let f: Vec<_> = (0..10).map(|i| frag(i * 90_000, 90_000, i == 0)).collect();
        assert_eq!(plan(&f, 90_000, 2000).len(), 1);
        let by_time = plan_within(&f, 90_000, 2000, SegmentLimits { max_duration_ms: 3000, max_bytes: u64::MAX }).unwrap();
        assert_eq!(by_time.iter().map(|s| s.count).collect::<Vec<_>>(), vec![3, 3, 3, 1]);
        assert!(by_time.iter().all(|s| s.duration <= 270_000));
        // Each fragment is 10 bytes.
        let by_bytes = plan_within(&f, 90_000, 2000, SegmentLimits { max_duration_ms: u64::MAX, max_bytes: 45 }).unwrap();
        assert_eq!(by_bytes.iter().map(|s| s.count).collect::<Vec<_>>(), vec![4, 4, 2]);
        // The trailing sliver is not merged when that would break a cap.
        let mut g: Vec<_> = (0..3).map(|i| frag(i * 180_000, 180_000, true)).collect();
        g.push(frag(540_000, 1920, true));
        let s = plan_within(&g, 90_000, 2000, SegmentLimits { max_duration_ms: 2000, max_bytes: u64::MAX }).unwrap();
        assert_eq!(s.iter().map(|s| s.count).collect::<Vec<_>>(), vec![1, 1, 1, 1]);
        // Within generous caps, the plan is the uncapped one.
        assert_eq!(plan_within(&g, 90_000, 2000, SegmentLimits::default()).unwrap(), plan(&g, 90_000, 2000));
        // A single fragment over a cap cannot be cut: refused, naming it.
        let e = plan_within(&f, 90_000, 2000, SegmentLimits { max_duration_ms: 500, max_bytes: u64::MAX }).unwrap_err();
        assert!(matches!(&e, Error::Limit(m) if m.contains("fragment at byte 0")), "{e}");
        assert!(plan_within(&f, 90_000, 2000, SegmentLimits { max_duration_ms: u64::MAX, max_bytes: 9 }).is_err());
    }

    #[test]
    fn slightly_short_fragments_do_not_merge() {
        let f: Vec<_> = (0..4).map(|i| frag(i * 1999, 1999, true)).collect();
        assert_eq!(plan(&f, 1000, 2000).len(), 4);
    }
}
