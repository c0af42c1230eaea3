//! Manifest writers. Each takes an [`Asset`](crate::Asset) and returns text; URLs inside are
//! relative to the manifest, so the same bytes serve under any host or locator.

pub mod dash;
pub mod hls;
pub mod smooth;

/// ISO 8601 duration with millisecond precision, as DASH wants it (`PT12.345S`).
pub(crate) fn iso_duration(secs: f64) -> String {
    format!("PT{:.3}S", secs.max(0.0))
}

/// Frame rate as DASH writes it (`25` or `30000/1001`).
pub(crate) fn frame_rate_str((n, d): (u32, u32)) -> String {
    if d == 1 {
        n.to_string()
    } else {
        format!("{n}/{d}")
    }
}
