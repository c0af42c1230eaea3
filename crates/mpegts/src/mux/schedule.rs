//! The PES schedule: both streams walked in DTS order, every sample validated, each PES
//! handed to a [`Sink`] (the counter or the writer).

use std::ops::Range;

use sealcast_codecs::adts::{ADTS_HEADER_LEN, MAX_RAW_FRAME};

use super::setup::{
    first_packet, framing_error, sample_times, AudioTrack, Setup, Times, VideoTrack,
};
use crate::nal::AuPlan;
use crate::packet::FirstPacket;
use crate::pes::MAX_BOUNDED_PAYLOAD;
use crate::{Error, AUDIO_PES_MAX_FRAMES, AUDIO_PES_SPAN_90K};

/// Consumer of the PES schedule. The sample index and frame ranges it receives index
/// into the track's samples: schedule() fetched each of them with `get` first.
pub(super) trait Sink {
    fn video(
        &mut self,
        v: &VideoTrack<'_>,
        sample: usize,
        plan: &AuPlan,
        t: Times,
        first: FirstPacket,
    ) -> Result<(), Error>;
    fn audio(
        &mut self,
        a: &AudioTrack<'_>,
        frames: Range<usize>,
        payload_len: usize,
        t: Times,
        first: FirstPacket,
    ) -> Result<(), Error>;
}

/// Walks both streams in DTS order (video first on ties, so its PCR leads), validating
/// every sample and handing each PES to `sink`.
pub(super) fn schedule(setup: &Setup<'_>, offset: u64, sink: &mut impl Sink) -> Result<(), Error> {
    let mut at = Position::default();
    while at.step(setup, offset, sink)? {}
    Ok(())
}

/// Where the schedule stands between two PES: the next sample of each stream and, once
/// fetched, its times. Kept between calls, it lets a segment be written a piece at a time.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Position {
    vi: usize,
    ai: usize,
    next_video: Option<Times>,
    next_audio: Option<Times>,
}

impl Position {
    /// Hands the next PES to `sink`; `false` when there is none left.
    pub(super) fn step(&mut self, setup: &Setup<'_>, offset: u64, sink: &mut impl Sink) -> Result<bool, Error> {
        let video_pcr = setup.video.is_some();
        let Position { vi, ai, next_video, next_audio } = self;
        if let (None, Some(v)) = (*next_video, &setup.video) {
            if let Some(s) = v.samples.get(*vi) {
                *next_video = Some(sample_times(v.index, *vi, s, v.timescale, offset)?);
            }
        }
        if let (None, Some(a)) = (*next_audio, &setup.audio) {
            if let Some(s) = a.samples.get(*ai) {
                *next_audio = Some(sample_times(a.index, *ai, s, a.timescale, offset)?);
            }
        }
        let video_turn = match (*next_video, *next_audio) {
            (None, None) => return Ok(false),
            (Some(v), Some(a)) => v.dts <= a.dts,
            (v, _) => v.is_some(),
        };
        if video_turn {
            // next_video is Some only when the video track exists and vi indexes one of
            // its samples, so neither error below can happen.
            let (Some(v), Some(t)) = (&setup.video, next_video.take()) else {
                return Err(Error::Internal("video turn without video"));
            };
            let s = v.samples.get(*vi).ok_or(Error::Internal("video index"))?;
            if s.data.is_empty() {
                return Err(Error::EmptySample {
                    stream: v.index,
                    sample: *vi,
                });
            }
            let plan = v
                .config
                .plan(s.data, s.keyframe)
                .map_err(|e| framing_error(v.index, *vi, e))?;
            sink.video(v, *vi, &plan, t, first_packet(true, t.dts, s.keyframe))?;
            *vi += 1;
        } else {
            // As above for audio.
            let (Some(a), Some(t)) = (&setup.audio, next_audio.take()) else {
                return Err(Error::Internal("audio turn without audio"));
            };
            let first = *ai;
            let mut payload_len = 0;
            loop {
                let s = a.samples.get(*ai).ok_or(Error::Internal("audio index"))?;
                if s.data.is_empty() {
                    return Err(Error::EmptySample {
                        stream: a.index,
                        sample: *ai,
                    });
                }
                if s.data.len() > MAX_RAW_FRAME {
                    return Err(Error::AacFrameTooLarge {
                        stream: a.index,
                        sample: *ai,
                        len: s.data.len(),
                    });
                }
                payload_len += ADTS_HEADER_LEN + s.data.len();
                *ai += 1;
                let Some(n) = a.samples.get(*ai) else { break };
                let nt = sample_times(a.index, *ai, n, a.timescale, offset)?;
                let fits = payload_len + ADTS_HEADER_LEN + n.data.len() <= MAX_BOUNDED_PAYLOAD;
                if *ai - first >= AUDIO_PES_MAX_FRAMES
                    || nt.dts >= t.dts.saturating_add(AUDIO_PES_SPAN_90K)
                    || !fits
                {
                    *next_audio = Some(nt);
                    break;
                }
            }
            // In bounds: the loop above fetched sample `first`.
            let key = a.samples[first].keyframe;
            sink.audio(
                a,
                first..*ai,
                payload_len,
                t,
                first_packet(!video_pcr, t.dts, key),
            )?;
        }
        Ok(true)
    }
}
