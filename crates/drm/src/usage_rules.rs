//! CPIX content key usage rules: which key a track gets when a CPIX document says so.
//!
//! Kept beside [`crate::groups`], the other way a key is chosen for a track (by quality
//! group); [`crate::cpix::CpixDocument::assign_keys`] uses these rules when the document
//! has any and the groups otherwise. The rule types are also re-exported from
//! [`crate::cpix`], whose parser reads them.

use crate::error::{Error, Result};
use crate::groups::{TrackDesc, TrackKind};
use crate::kid::Kid;

/// `VideoFilter`: matches video whose pixel count is within `[min_pixels, max_pixels]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VideoFilter {
    /// Inclusive minimum (default 0).
    pub min_pixels: u64,
    /// Inclusive maximum (default `u32::MAX`, as CPIX says).
    pub max_pixels: u64,
}

/// `AudioFilter`: matches audio whose channel count is within `[min, max]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioFilter {
    /// Inclusive minimum, if given.
    pub min_channels: Option<u64>,
    /// Inclusive maximum, if given.
    pub max_channels: Option<u64>,
}

/// `BitrateFilter`: matches tracks whose nominal bitrate is within `[min, max]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BitrateFilter {
    /// Inclusive minimum (default 0).
    pub min_bitrate: u64,
    /// Inclusive maximum (default `u32::MAX`).
    pub max_bitrate: u64,
}

/// One `ContentKeyUsageRule`. Filters of one type are OR-ed, different types AND-ed; a
/// rule without filters matches every track.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageRule {
    /// The key this rule assigns.
    pub kid: Kid,
    /// `@intendedTrackType` (business label, e.g. `SD`; informative only).
    pub intended_track_type: Option<String>,
    /// `VideoFilter`s.
    pub video: Vec<VideoFilter>,
    /// `AudioFilter`s.
    pub audio: Vec<AudioFilter>,
    /// `BitrateFilter`s.
    pub bitrate: Vec<BitrateFilter>,
}

/// Picks a key for every track by `rules`; `key_index` gives the index of a KID's key.
///
/// Each track must match rules of exactly one KID. A track matching none is an error
/// rather than left clear (fail closed: the delivery policy asked for encryption); a
/// track matching two KIDs means the rules are contradictory.
pub fn assign_by_rules(rules: &[UsageRule], tracks: &[TrackDesc], key_index: impl Fn(Kid) -> Option<usize>) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(tracks.len());
    for (i, t) in tracks.iter().enumerate() {
        let mut found: Option<Kid> = None;
        for rule in rules {
            if !rule_matches(rule, t, i)? {
                continue;
            }
            match found {
                Some(k) if k != rule.kid => {
                    return Err(Error::UsageRules(format!(
                        "track {i} ({}) matches rules for two keys, {k} and {}",
                        describe(t),
                        rule.kid
                    )));
                }
                _ => found = Some(rule.kid),
            }
        }
        let kid =
            found.ok_or_else(|| Error::UsageRules(format!("track {i} ({}) matches no usage rule", describe(t))))?;
        // Rules were checked at parse time to reference known keys.
        let idx = key_index(kid).ok_or_else(|| Error::UsageRules(format!("usage rule references unknown key {kid}")))?;
        out.push(idx);
    }
    Ok(out)
}

fn describe(t: &TrackDesc) -> String {
    match t.kind {
        TrackKind::Audio => "audio".to_string(),
        TrackKind::Video => format!("video {}x{}", t.width, t.height),
    }
}

fn rule_matches(rule: &UsageRule, t: &TrackDesc, i: usize) -> Result<bool> {
    if !rule.video.is_empty() {
        // A VideoFilter, even without attributes, only matches video.
        let in_range = rule.video.iter().any(|f| (f.min_pixels..=f.max_pixels).contains(&t.pixels()));
        if t.kind != TrackKind::Video || !in_range {
            return Ok(false);
        }
    }
    if !rule.audio.is_empty() {
        if t.kind != TrackKind::Audio {
            return Ok(false);
        }
        let mut any = false;
        for f in &rule.audio {
            if f.min_channels.is_none() && f.max_channels.is_none() {
                any = true;
                break;
            }
            let ch = t.channels.ok_or_else(|| {
                Error::UsageRules(format!("AudioFilter for key {} needs the channel count of track {i}", rule.kid))
            })?;
            let ch = u64::from(ch);
            if f.min_channels.is_none_or(|m| ch >= m) && f.max_channels.is_none_or(|m| ch <= m) {
                any = true;
                break;
            }
        }
        if !any {
            return Ok(false);
        }
    }
    if !rule.bitrate.is_empty() {
        let b = t.bitrate.ok_or_else(|| {
            Error::UsageRules(format!("BitrateFilter for key {} needs the bitrate of track {i}", rule.kid))
        })?;
        if !rule.bitrate.iter().any(|f| (f.min_bitrate..=f.max_bitrate).contains(&b)) {
            return Ok(false);
        }
    }
    Ok(true)
}
