//! The elementary-stream hook: where NAL units and AAC frames pass before they are
//! packetised (identity for clear output, SAMPLE-AES encryption otherwise), and the buffer
//! that keeps a transforming hook's output between counting and writing.

use std::ops::Range;

use sealcast_codecs::adts::ADTS_HEADER_LEN;

use super::setup::{AudioTrack, VideoTrack};
use crate::nal::{AuPlan, START_CODE};
use crate::pes::MAX_BOUNDED_PAYLOAD;
use crate::{Codec, Error};

/// Where the elementary-stream payload of every NAL unit and AAC frame passes before
/// it is packetised: the seam for HLS SAMPLE-AES ([`SampleAesHook`]).
///
/// The clear implementation is the identity and lets the writer copy straight from the
/// samples. A transforming implementation appends the transformed unit to `out` (for
/// H.264 SAMPLE-AES: encrypted slice data with emulation prevention re-applied, so the
/// size changes) and reports its stream type (0xDB / 0xCF) and ES descriptors
/// (private_data_indicator, registration + audio_setup_information) for the PMT. Its
/// output is made once, in the counting pass (sizes depend on it), kept in a
/// [`Transformed`] buffer and packetised from there.
pub(crate) trait EsHook {
    /// `true` when the hook never changes a byte.
    const IDENTITY: bool;
    /// Whether the hook can handle this stream; `Err` says what it cannot handle.
    fn accepts(&self, _codec: &Codec) -> Result<(), &'static str> {
        Ok(())
    }
    /// Appends the bytes to packetise for one NAL unit of a sample (no start code).
    /// Parameter sets and AUDs the muxer inserts do not pass through here.
    fn video_nal(&mut self, nal: &[u8], out: &mut Vec<u8>) -> Result<(), Error>;
    /// Appends the bytes to packetise for one raw AAC frame; the ADTS header is added
    /// in front of them afterwards, sized to what was appended.
    fn audio_frame(&mut self, frame: &[u8], out: &mut Vec<u8>) -> Result<(), Error>;
    /// Completes what the hook left for the end over the segment's transformed payloads
    /// `es` (SAMPLE-AES: every audio frame's CBC, the frames encrypted together). Called
    /// once, right after the counting pass, before a byte is written.
    fn finish(&mut self, _es: &mut [u8]) -> Result<(), Error> {
        Ok(())
    }
    /// PMT stream_type for a stream whose clear type is `clear`; may append ES
    /// descriptors to `descriptors`.
    fn pmt_entry(&self, codec: &Codec, clear: u8, descriptors: &mut Vec<u8>) -> u8;
}

/// No transformation: clear output.
pub(crate) struct Clear;

impl EsHook for Clear {
    const IDENTITY: bool = true;
    fn video_nal(&mut self, nal: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        out.extend_from_slice(nal);
        Ok(())
    }
    fn audio_frame(&mut self, frame: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        out.extend_from_slice(frame);
        Ok(())
    }
    fn pmt_entry(&self, _: &Codec, clear: u8, _: &mut Vec<u8>) -> u8 {
        clear
    }
}

/// PES payloads (without PES header) made by a transforming hook, back to back.
#[derive(Default)]
pub(super) struct Transformed {
    pub(super) bytes: Vec<u8>,
    /// End offset in `bytes` of each PES payload, in schedule order.
    pub(super) ends: Vec<usize>,
}

impl Transformed {
    /// Builds the Annex-B access unit of `v.samples[sample]`; returns its length.
    pub(super) fn video<H: EsHook>(
        &mut self,
        v: &VideoTrack<'_>,
        sample: usize,
        plan: &AuPlan,
        hook: &mut H,
    ) -> Result<usize, Error> {
        let s = v
            .samples
            .get(sample)
            .ok_or(Error::Internal("video index"))?;
        let cfg = &v.config;
        let start = self.bytes.len();
        let (aud, aud_len) = cfg.aud(plan);
        self.bytes.extend_from_slice(&aud[..aud_len]);
        if plan.insert_param_sets {
            for ps in cfg.param_sets() {
                self.bytes.extend_from_slice(&START_CODE);
                self.bytes.extend_from_slice(ps);
            }
        }
        for nal in cfg.nals(s.data) {
            // schedule() validated the framing with plan() just before.
            let nal = nal.map_err(|_| Error::Internal("NAL framing changed between passes"))?;
            self.bytes.extend_from_slice(&START_CODE);
            hook.video_nal(nal, &mut self.bytes)?;
        }
        self.ends.push(self.bytes.len());
        Ok(self.bytes.len() - start)
    }

    /// Builds the ADTS payload of one audio PES; returns its length.
    pub(super) fn audio<H: EsHook>(
        &mut self,
        a: &AudioTrack<'_>,
        frames: Range<usize>,
        hook: &mut H,
    ) -> Result<usize, Error> {
        let start = self.bytes.len();
        let samples = a
            .samples
            .get(frames.clone())
            .ok_or(Error::Internal("audio index"))?;
        for (i, s) in samples.iter().enumerate() {
            let at = self.bytes.len();
            self.bytes.extend_from_slice(&[0; ADTS_HEADER_LEN]);
            hook.audio_frame(s.data, &mut self.bytes)?;
            let raw = self.bytes.len() - at - ADTS_HEADER_LEN;
            let h = a.adts.header(raw).ok_or(Error::AacFrameTooLarge {
                stream: a.index,
                sample: frames.start + i,
                len: raw,
            })?;
            self.bytes[at..at + ADTS_HEADER_LEN].copy_from_slice(&h);
        }
        let len = self.bytes.len() - start;
        if len > MAX_BOUNDED_PAYLOAD {
            return Err(Error::AacFrameTooLarge {
                stream: a.index,
                sample: frames.start,
                len,
            });
        }
        self.ends.push(self.bytes.len());
        Ok(len)
    }

    /// PES payload number `k`.
    pub(super) fn get(&self, k: usize) -> Result<&[u8], Error> {
        let end = *self
            .ends
            .get(k)
            .ok_or(Error::Internal("more PES written than counted"))?;
        let start = if k == 0 { 0 } else { self.ends[k - 1] };
        Ok(&self.bytes[start..end])
    }
}
