//! The packet writer: PAT, PMT and the PES of the schedule, padded as planned.

use std::ops::Range;

use super::continuity::Padding;
use super::hooks::{EsHook, Transformed};
use super::schedule::Sink;
use super::setup::{AudioTrack, Setup, Times, VideoTrack};
use crate::nal::{AuPlan, START_CODE};
use crate::packet::{FirstPacket, PesWriter};
use crate::pes::pes_header;
use crate::psi::{write_pat, write_pmt, PmtEntry};
use crate::{Error, AUDIO_PID, VIDEO_PID};

pub(super) const VIDEO_STREAM_ID: u8 = 0xE0;
const AUDIO_STREAM_ID: u8 = 0xC0;
const ADTS_STREAM_TYPE: u8 = 0x0F;

/// The writer's position on one PID: which PES comes next and the padding plan.
#[derive(Clone, Copy)]
pub(super) struct PidCursor {
    pub(super) pes: u64,
    pub(super) plan: Padding,
}

impl PidCursor {
    /// Extra packets for the next PES; moves on to the one after.
    pub(super) fn next_extra(&mut self) -> usize {
        let extra = self.plan.extra(self.pes);
        self.pes += 1;
        extra
    }
}

/// Writes packets.
pub(super) struct Writer<'o, 's, H> {
    pub(super) out: &'o mut Vec<u8>,
    pub(super) cc: crate::ContinuityState,
    pub(super) hook: &'o mut H,
    /// Transformed access units / audio PES payloads (empty for the clear hook).
    pub(super) es: &'o Transformed,
    /// Number of the next PES payload in `es`.
    pub(super) es_next: usize,
    pub(super) streams: &'s Setup<'s>,
    pub(super) video: PidCursor,
    pub(super) audio: PidCursor,
}

impl<H: EsHook> Writer<'_, '_, H> {
    pub(super) fn write_psi(&mut self) -> Result<(), Error> {
        write_pat(self.out, self.cc.pat)?;
        self.cc.pat = (self.cc.pat + 1) & 0x0F;
        // Descriptors only come from a non-clear hook; Vec::new() does not allocate.
        let (mut video_desc, mut audio_desc) = (Vec::new(), Vec::new());
        let hook = &*self.hook;
        let video_type = self.streams.video.as_ref().map(|v| {
            hook.pmt_entry(
                v.codec,
                crate::nal::stream_type(v.config.kind),
                &mut video_desc,
            )
        });
        let audio_type = self
            .streams
            .audio
            .as_ref()
            .map(|a| hook.pmt_entry(a.codec, ADTS_STREAM_TYPE, &mut audio_desc));
        let mut list = [PmtEntry {
            stream_type: 0,
            pid: 0,
            descriptors: &[],
        }; 2];
        let mut n = 0;
        if let Some(stream_type) = video_type {
            list[n] = PmtEntry {
                stream_type,
                pid: VIDEO_PID,
                descriptors: &video_desc,
            };
            n += 1;
        }
        if let Some(stream_type) = audio_type {
            list[n] = PmtEntry {
                stream_type,
                pid: AUDIO_PID,
                descriptors: &audio_desc,
            };
            n += 1;
        }
        write_pmt(self.out, self.cc.pmt, self.streams.pcr_pid(), &list[..n])?;
        self.cc.pmt = (self.cc.pmt + 1) & 0x0F;
        Ok(())
    }
}

impl<H: EsHook> Sink for Writer<'_, '_, H> {
    fn video(
        &mut self,
        v: &VideoTrack<'_>,
        sample: usize,
        plan: &AuPlan,
        t: Times,
        first: FirstPacket,
    ) -> Result<(), Error> {
        let s = &v.samples[sample];
        let cfg = &v.config;
        let header = pes_header(VIDEO_STREAM_ID, t.pts, t.dts, None);
        let (aud, aud_len) = cfg.aud(plan);
        // The sample was validated by plan(); a framing error here would be a bug.
        let bug = |_| Error::Internal("NAL framing changed between passes");
        let extra = self.video.next_extra();
        if H::IDENTITY {
            let len = header.as_bytes().len() + plan.es_len;
            let mut w = PesWriter::begin(self.out, VIDEO_PID, self.cc.video, len, first, extra);
            w.put(header.as_bytes())?;
            w.put(&aud[..aud_len])?;
            if plan.insert_param_sets {
                for ps in cfg.param_sets() {
                    w.put(&START_CODE)?;
                    w.put(ps)?;
                }
            }
            for nal in cfg.nals(s.data) {
                w.put(&START_CODE)?;
                w.put(nal.map_err(bug)?)?;
            }
            self.cc.video = w.finish()?;
        } else {
            let payload = self.es.get(self.es_next)?;
            self.es_next += 1;
            let len = header.as_bytes().len() + payload.len();
            let mut w = PesWriter::begin(self.out, VIDEO_PID, self.cc.video, len, first, extra);
            w.put(header.as_bytes())?;
            w.put(payload)?;
            self.cc.video = w.finish()?;
        }
        Ok(())
    }

    fn audio(
        &mut self,
        a: &AudioTrack<'_>,
        frames: Range<usize>,
        payload_len: usize,
        t: Times,
        first: FirstPacket,
    ) -> Result<(), Error> {
        // schedule() checked every frame against MAX_RAW_FRAME.
        let too_large = Error::Internal("AAC frame size changed between passes");
        let extra = self.audio.next_extra();
        if H::IDENTITY {
            let header = pes_header(AUDIO_STREAM_ID, t.pts, t.dts, Some(payload_len));
            let len = header.as_bytes().len() + payload_len;
            let mut w = PesWriter::begin(self.out, AUDIO_PID, self.cc.audio, len, first, extra);
            w.put(header.as_bytes())?;
            for s in &a.samples[frames] {
                w.put(
                    &a.adts
                        .header(s.data.len())
                        .ok_or_else(|| too_large.clone())?,
                )?;
                w.put(s.data)?;
            }
            self.cc.audio = w.finish()?;
        } else {
            // Counted (and bounded by MAX_BOUNDED_PAYLOAD) by Transformed::audio.
            let payload = self.es.get(self.es_next)?;
            self.es_next += 1;
            let header = pes_header(AUDIO_STREAM_ID, t.pts, t.dts, Some(payload.len()));
            let len = header.as_bytes().len() + payload.len();
            let mut w = PesWriter::begin(self.out, AUDIO_PID, self.cc.audio, len, first, extra);
            w.put(header.as_bytes())?;
            w.put(payload)?;
            self.cc.audio = w.finish()?;
        }
        Ok(())
    }
}
