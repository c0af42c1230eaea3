//! Stream setup: the segment's streams checked and resolved (codec configuration, ADTS
//! header fields, Annex-B parameter sets), and per-sample 90 kHz times.

use sealcast_codecs::adts::AdtsConfig;

use crate::nal::{FramingError, VideoConfig};
use crate::packet::FirstPacket;
use crate::pes::{rescale_to_90k, MASK_33};
use crate::{Codec, Error, Sample, Stream, AUDIO_PID, PCR_LEAD_90K, VIDEO_PID};

pub(super) struct VideoTrack<'a> {
    pub(super) index: usize,
    pub(super) timescale: u32,
    pub(super) samples: &'a [Sample<'a>],
    pub(super) codec: &'a Codec,
    pub(super) config: VideoConfig<'a>,
}

pub(super) struct AudioTrack<'a> {
    pub(super) index: usize,
    pub(super) timescale: u32,
    pub(super) samples: &'a [Sample<'a>],
    pub(super) codec: &'a Codec,
    pub(super) adts: AdtsConfig,
}

/// The segment's streams, checked and resolved.
pub(super) struct Setup<'a> {
    pub(super) video: Option<VideoTrack<'a>>,
    pub(super) audio: Option<AudioTrack<'a>>,
}

impl<'a> Setup<'a> {
    pub(super) fn new(streams: &'a [Stream<'a>]) -> Result<Self, Error> {
        if streams.is_empty() {
            return Err(Error::NoStreams);
        }
        let mut setup = Setup {
            video: None,
            audio: None,
        };
        for (index, s) in streams.iter().enumerate() {
            if s.timescale == 0 {
                return Err(Error::ZeroTimescale { stream: index });
            }
            let video = |config: VideoConfig<'a>, size: u8| {
                if !(1..=4).contains(&size) {
                    return Err(Error::BadNalLengthSize {
                        stream: index,
                        size,
                    });
                }
                Ok(VideoTrack {
                    index,
                    timescale: s.timescale,
                    samples: s.samples,
                    codec: s.codec,
                    config,
                })
            };
            let video_config = match s.codec {
                Codec::H264 {
                    sps,
                    pps,
                    nal_length_size,
                } => Some((VideoConfig::h264(sps, pps, *nal_length_size), *nal_length_size)),
                Codec::Hevc {
                    vps,
                    sps,
                    pps,
                    nal_length_size,
                } => Some((VideoConfig::hevc(vps, sps, pps, *nal_length_size), *nal_length_size)),
                Codec::Aac { .. } => None,
            };
            if let Some((config, size)) = video_config {
                if setup.video.is_some() {
                    return Err(Error::DuplicateStream {
                        stream: index,
                        kind: "video",
                    });
                }
                setup.video = Some(video(config, size)?);
                continue;
            }
            match s.codec {
                // Video streams were taken above.
                Codec::H264 { .. } | Codec::Hevc { .. } => {}
                Codec::Aac {
                    audio_specific_config,
                } => {
                    if setup.audio.is_some() {
                        return Err(Error::DuplicateStream {
                            stream: index,
                            kind: "audio",
                        });
                    }
                    let adts = AdtsConfig::from_audio_specific_config(audio_specific_config)
                        .map_err(|reason| Error::AudioConfig {
                            stream: index,
                            reason,
                        })?;
                    setup.audio = Some(AudioTrack {
                        index,
                        timescale: s.timescale,
                        samples: s.samples,
                        codec: s.codec,
                        adts,
                    });
                }
            }
        }
        Ok(setup)
    }

    pub(super) fn pcr_pid(&self) -> u16 {
        if self.video.is_some() {
            VIDEO_PID
        } else {
            AUDIO_PID
        }
    }
}

/// PTS and DTS of a PES in 90 kHz ticks, offset applied, not yet wrapped to 33 bits.
#[derive(Debug, Clone, Copy)]
pub(super) struct Times {
    pub(super) pts: u64,
    pub(super) dts: u64,
}

pub(super) fn time_90k(
    stream: usize,
    sample: usize,
    t: i64,
    timescale: u32,
    offset: u64,
) -> Result<u64, Error> {
    rescale_to_90k(t, timescale)
        .and_then(|v| u64::try_from(i128::from(v) + i128::from(offset)).ok())
        .ok_or(Error::BadTimestamp {
            stream,
            sample,
            value: t,
        })
}

pub(super) fn sample_times(
    stream: usize,
    sample: usize,
    s: &Sample<'_>,
    timescale: u32,
    offset: u64,
) -> Result<Times, Error> {
    Ok(Times {
        pts: time_90k(stream, sample, s.pts, timescale, offset)?,
        dts: time_90k(stream, sample, s.dts, timescale, offset)?,
    })
}

/// The first packet of a PES: PCR if this PID carries it, RAI on keyframes.
pub(super) fn first_packet(carries_pcr: bool, dts: u64, keyframe: bool) -> FirstPacket {
    FirstPacket {
        pcr_base: carries_pcr.then(|| dts.saturating_sub(PCR_LEAD_90K) & MASK_33),
        random_access: keyframe,
    }
}

pub(super) fn framing_error(stream: usize, sample: usize, e: FramingError) -> Error {
    match e {
        FramingError::Truncated { offset } => Error::TruncatedNalLength {
            stream,
            sample,
            offset,
        },
        FramingError::Overrun {
            offset,
            declared,
            available,
        } => Error::NalOverrun {
            stream,
            sample,
            offset,
            declared,
            available,
        },
    }
}
