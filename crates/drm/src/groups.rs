//! Which content key encrypts which track.
//!
//! The industry practice (DASH-IF, the SPEKE v2 presets that drive CPIX usage rules) is one
//! key for audio and one per video quality group, so a licence server can hand a device
//! only the qualities its security level allows. [`assign_keys`] implements that rule for
//! a plain ordered list of keys; CPIX documents with usage rules are mapped by
//! [`crate::cpix::CpixDocument::assign_keys`] instead.
//!
//! ## Quality groups
//!
//! Video is grouped by **pixel count** (encoded width × height), the measure CPIX
//! `VideoFilter@minPixels/@maxPixels` uses, so portrait and letterboxed video land where
//! their area says. The SD/HD (1024×576) and HD/UHD (1920×1080) boundaries are those of
//! the SPEKE v2 video presets in AWS's MediaPackage/MediaConvert documentation, which
//! encode them as CPIX pixel ranges; the UHD1/UHD2 boundary at DCI 4K (4096×2160) is our
//! choice (the preset table read did not show it), so every 4K ladder stays in UHD1:
//!
//! | group | pixels | i.e. up to |
//! |---|---|---|
//! | SD   | ≤ 589 824    | 1024×576 |
//! | HD   | ≤ 2 073 600  | 1920×1080 |
//! | UHD1 | ≤ 8 847 360  | 4096×2160 |
//! | UHD2 | above        | e.g. 7680×4320 |
//!
//! A video track with unknown size (0×0) counts as SD. Pass the cropped picture size (the
//! `VisualSampleEntry` width/height, or SPS size after cropping): 1080p H.264 is coded as
//! 1920×1088, which would be above HD.

use crate::error::{Error, Result};
use crate::key::ContentKey;

/// Largest SD picture, in pixels (1024×576).
pub const SD_MAX_PIXELS: u64 = 1024 * 576;
/// Largest HD picture, in pixels (1920×1080).
pub const HD_MAX_PIXELS: u64 = 1920 * 1080;
/// Largest UHD1 picture, in pixels (4096×2160).
pub const UHD1_MAX_PIXELS: u64 = 4096 * 2160;

pub use sealcast_codecs::TrackKind;

/// What key assignment needs to know about a track.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TrackDesc {
    /// Audio or video.
    pub kind: TrackKind,
    /// Encoded width in pixels (0 for audio or unknown).
    pub width: u32,
    /// Encoded height in pixels (0 for audio or unknown).
    pub height: u32,
    /// Audio channel count, if known (CPIX `AudioFilter`).
    pub channels: Option<u32>,
    /// Nominal bitrate in bit/s, if known (CPIX `BitrateFilter`).
    pub bitrate: Option<u64>,
}

impl TrackDesc {
    /// A video track of the given encoded size.
    pub const fn video(width: u32, height: u32) -> Self {
        TrackDesc { kind: TrackKind::Video, width, height, channels: None, bitrate: None }
    }

    /// An audio track.
    pub const fn audio() -> Self {
        TrackDesc { kind: TrackKind::Audio, width: 0, height: 0, channels: None, bitrate: None }
    }

    /// Sets the audio channel count.
    pub const fn with_channels(mut self, channels: u32) -> Self {
        self.channels = Some(channels);
        self
    }

    /// Sets the nominal bitrate (bit/s).
    pub const fn with_bitrate(mut self, bitrate: u64) -> Self {
        self.bitrate = Some(bitrate);
        self
    }

    /// Encoded width × height (no overflow: two u32 fit in a u64).
    pub const fn pixels(&self) -> u64 {
        self.width as u64 * self.height as u64
    }
}

/// The key group a track belongs to, ordered from lowest to highest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QualityGroup {
    /// All audio tracks.
    Audio,
    /// Video up to 1024×576 pixels.
    Sd,
    /// Video up to 1920×1080 pixels.
    Hd,
    /// Video up to 4096×2160 pixels.
    Uhd1,
    /// Video above 4096×2160 pixels.
    Uhd2,
}

impl QualityGroup {
    /// The group of a track (see the module docs for the thresholds).
    pub const fn of(track: &TrackDesc) -> Self {
        match track.kind {
            TrackKind::Audio => QualityGroup::Audio,
            TrackKind::Video => {
                let p = track.pixels();
                if p <= SD_MAX_PIXELS {
                    QualityGroup::Sd
                } else if p <= HD_MAX_PIXELS {
                    QualityGroup::Hd
                } else if p <= UHD1_MAX_PIXELS {
                    QualityGroup::Uhd1
                } else {
                    QualityGroup::Uhd2
                }
            }
        }
    }

    /// The label SPEKE v2 uses for CPIX `@intendedTrackType` (`AUDIO`, `SD`, `HD`, `UHD1`, `UHD2`).
    pub const fn label(self) -> &'static str {
        match self {
            QualityGroup::Audio => "AUDIO",
            QualityGroup::Sd => "SD",
            QualityGroup::Hd => "HD",
            QualityGroup::Uhd1 => "UHD1",
            QualityGroup::Uhd2 => "UHD2",
        }
    }
}

/// Picks a key for every track: returns, per track, an index into `keys`.
///
/// The rule (only groups that actually have tracks count):
///
/// 1. One key: every track uses key 0.
/// 2. Two or more keys and the asset has audio: all audio tracks use key 0, video uses
///    the keys from index 1 on. Without audio, video uses the keys from index 0.
/// 3. Video groups present, from lowest (SD) to highest (UHD2), take the video keys in
///    order. With at least as many video keys as groups, each group gets its own key and
///    surplus keys at the end of the list stay unused. With fewer, the highest groups get
///    their own keys and the lowest groups share the first video key: with `k` video keys
///    and `g` groups, the `g - k + 1` lowest groups share.
///
/// Examples (A = audio): A+SD+HD+UHD1 with 3 keys → A:0, SD:1, HD:1, UHD1:2;
/// SD+HD without audio and 2 keys → SD:0, HD:1; A+SD+HD with 2 keys → A:0, SD:1, HD:1.
///
/// Pass **all** tracks of the asset, never a filtered subset: the answer depends on which
/// groups exist, and a manifest filter must not change which key encrypts a track.
///
/// Errors: [`Error::NoKeys`] if there are tracks but no keys. No tracks → empty vector.
pub fn assign_keys(tracks: &[TrackDesc], keys: &[ContentKey]) -> Result<Vec<usize>> {
    assign_key_indices(tracks, keys.len())
}

/// [`assign_keys`] given only the number of keys.
pub fn assign_key_indices(tracks: &[TrackDesc], key_count: usize) -> Result<Vec<usize>> {
    if tracks.is_empty() {
        return Ok(Vec::new());
    }
    if key_count == 0 {
        return Err(Error::NoKeys { tracks: tracks.len() });
    }
    let groups: Vec<QualityGroup> = tracks.iter().map(QualityGroup::of).collect();
    if key_count == 1 {
        return Ok(vec![0; tracks.len()]);
    }
    let has_audio = groups.contains(&QualityGroup::Audio);
    let first_video_key = usize::from(has_audio);
    let mut video_groups: Vec<QualityGroup> = groups.iter().copied().filter(|g| *g != QualityGroup::Audio).collect();
    video_groups.sort_unstable();
    video_groups.dedup();
    // key_count >= 2 and first_video_key <= 1, so at least one video key.
    let video_keys = key_count - first_video_key;
    let shared = video_groups.len().saturating_sub(video_keys);
    let key_of = |g: QualityGroup| -> usize {
        if g == QualityGroup::Audio {
            return 0;
        }
        // `g` came from `groups`, so it is in `video_groups`; the fallback is unreachable.
        let rank = video_groups.iter().position(|v| *v == g).unwrap_or(0);
        first_video_key + rank.saturating_sub(shared)
    };
    Ok(groups.into_iter().map(key_of).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: TrackDesc = TrackDesc::audio();
    const SD: TrackDesc = TrackDesc::video(640, 360);
    const SD2: TrackDesc = TrackDesc::video(1024, 576);
    const HD: TrackDesc = TrackDesc::video(1280, 720);
    const HD2: TrackDesc = TrackDesc::video(1920, 1080);
    const UHD1: TrackDesc = TrackDesc::video(3840, 2160);
    const UHD2: TrackDesc = TrackDesc::video(7680, 4320);

    #[test]
    fn groups_by_pixels() {
        let cases = [
            (TrackDesc::video(0, 0), QualityGroup::Sd),
            (TrackDesc::video(416, 234), QualityGroup::Sd),
            (TrackDesc::video(720, 576), QualityGroup::Sd),
            (TrackDesc::video(1024, 576), QualityGroup::Sd),
            (TrackDesc::video(1024, 577), QualityGroup::Hd),
            (TrackDesc::video(1280, 720), QualityGroup::Hd),
            (TrackDesc::video(1080, 1920), QualityGroup::Hd), // portrait
            (TrackDesc::video(1920, 1080), QualityGroup::Hd),
            // Uncropped macroblock size of 1080p H.264: callers must pass the cropped size.
            (TrackDesc::video(1920, 1088), QualityGroup::Uhd1),
            (TrackDesc::video(2560, 1440), QualityGroup::Uhd1),
            (TrackDesc::video(3840, 2160), QualityGroup::Uhd1),
            (TrackDesc::video(4096, 2160), QualityGroup::Uhd1),
            (TrackDesc::video(4096, 2161), QualityGroup::Uhd2),
            (TrackDesc::video(7680, 4320), QualityGroup::Uhd2),
            (TrackDesc::video(u32::MAX, u32::MAX), QualityGroup::Uhd2),
            (TrackDesc::audio(), QualityGroup::Audio),
        ];
        for (t, g) in cases {
            assert_eq!(QualityGroup::of(&t), g, "{}x{}", t.width, t.height);
        }
    }

    #[test]
    fn assignment_table() {
        let full = [A, SD, SD2, HD, HD2, UHD1, UHD2];
        let a_sd_hd = [SD, A, HD, SD2, A];
        let no_audio = [SD, HD, UHD1];
        let audio_only = [A, A];
        let one_group = [HD, A, HD2];
        let video_one = [UHD1, UHD1];
        #[rustfmt::skip]
        let table: &[(&[TrackDesc], usize, &[usize])] = &[
            // full ladder: A SD SD HD HD UHD1 UHD2
            (&full, 1, &[0, 0, 0, 0, 0, 0, 0]),
            (&full, 2, &[0, 1, 1, 1, 1, 1, 1]),
            (&full, 3, &[0, 1, 1, 1, 1, 1, 2]),
            (&full, 4, &[0, 1, 1, 1, 1, 2, 3]),
            (&full, 5, &[0, 1, 1, 2, 2, 3, 4]),
            (&full, 6, &[0, 1, 1, 2, 2, 3, 4]), // surplus key 5 unused
            // SD A HD SD A
            (&a_sd_hd, 1, &[0, 0, 0, 0, 0]),
            (&a_sd_hd, 2, &[1, 0, 1, 1, 0]),
            (&a_sd_hd, 3, &[1, 0, 2, 1, 0]),
            (&a_sd_hd, 4, &[1, 0, 2, 1, 0]),
            (&a_sd_hd, 5, &[1, 0, 2, 1, 0]),
            // SD HD UHD1, no audio: video starts at key 0
            (&no_audio, 1, &[0, 0, 0]),
            (&no_audio, 2, &[0, 0, 1]),
            (&no_audio, 3, &[0, 1, 2]),
            (&no_audio, 4, &[0, 1, 2]),
            (&no_audio, 5, &[0, 1, 2]),
            // audio only
            (&audio_only, 1, &[0, 0]),
            (&audio_only, 2, &[0, 0]),
            (&audio_only, 5, &[0, 0]),
            // one video group with audio
            (&one_group, 1, &[0, 0, 0]),
            (&one_group, 2, &[1, 0, 1]),
            (&one_group, 3, &[1, 0, 1]),
            (&one_group, 4, &[1, 0, 1]),
            (&one_group, 5, &[1, 0, 1]),
            // one video group, no audio
            (&video_one, 1, &[0, 0]),
            (&video_one, 2, &[0, 0]),
            (&video_one, 5, &[0, 0]),
        ];
        for (tracks, n, want) in table {
            let got = assign_key_indices(tracks, *n).unwrap();
            assert_eq!(&got, want, "tracks {:?} keys {n}", tracks.iter().map(QualityGroup::of).collect::<Vec<_>>());
            assert!(got.iter().all(|&i| i < *n));
        }
    }

    #[test]
    fn audio_never_shares_with_two_or_more_keys() {
        let tracks = [A, SD, HD, UHD1, UHD2, A];
        for n in 2..8 {
            let got = assign_key_indices(&tracks, n).unwrap();
            assert_eq!(got[0], 0);
            assert_eq!(got[5], 0);
            assert!(got[1..5].iter().all(|&k| k != 0), "{n}: {got:?}");
            // Higher groups never get a lower key than lower groups.
            assert!(got[1..5].windows(2).all(|w| w[0] <= w[1]), "{n}: {got:?}");
            // The top group always has a key of its own once there are 2 video keys.
            if n >= 3 {
                assert_eq!(got.iter().filter(|&&k| k == got[4]).count(), 1, "{n}: {got:?}");
            }
        }
    }

    #[test]
    fn edge_cases() {
        assert_eq!(assign_key_indices(&[], 0).unwrap(), Vec::<usize>::new());
        assert_eq!(assign_key_indices(&[A], 0), Err(Error::NoKeys { tracks: 1 }));
        let keys: Vec<ContentKey> = (0..3u8)
            .map(|i| ContentKey::aes128(crate::Kid([i; 16]), crate::KeyKind::CommonEncryption, [i; 16]))
            .collect();
        assert_eq!(assign_keys(&[A, SD, HD], &keys).unwrap(), vec![0, 1, 2]);
    }
}
