//! Continuity: packet counts per PID, and the padding that makes an aligned PID end on a
//! multiple of 16 packets so continuity counters line up across segments.

use std::ops::Range;

use super::hooks::{EsHook, Transformed};
use super::schedule::Sink;
use super::setup::{AudioTrack, Times, VideoTrack};
use crate::nal::AuPlan;
use crate::packet::{pes_packet_count, FirstPacket};
use crate::pes::pes_header_len;
use crate::{Error, MuxParams};

/// Continuity counters are 4 bits: aligned PIDs take a multiple of this many packets.
pub(super) const CC_MODULUS: u64 = 16;
/// How many PES at the end of a PID the alignment padding may touch. Each PES can take
/// at least 6 extra packets with its header intact (every PES carries an AUD or an
/// ADTS header), so 15 padding packets never need more than 3 of them.
pub(super) const TAIL: usize = 16;
/// Padding packets per PID at most.
pub(super) const MAX_PAD: u8 = (CC_MODULUS - 1) as u8;

/// Packet count of one PID, and how far the last few PES could be stretched.
#[derive(Default)]
pub(super) struct PidCount {
    /// PES on the PID.
    pub(super) pes: u64,
    /// Packets in the natural layout (all full but the last of each PES).
    pub(super) packets: u64,
    /// Ring indexed by PES number % TAIL: extra packets each of the last TAIL PES can
    /// take while its first packet still holds the whole PES header (capped at 15).
    pub(super) room: [u8; TAIL],
    /// Extra packets the last PES can take at all, one payload byte per packet, header
    /// split over packets if need be (capped at 15).
    pub(super) last_room: u8,
}

impl PidCount {
    pub(super) fn add(&mut self, header_len: usize, len: usize, first: FirstPacket) {
        let n = pes_packet_count(len, first);
        let cap =
            |max_packets: usize| (max_packets as u64).saturating_sub(n).min(MAX_PAD.into()) as u8;
        self.room[(self.pes % TAIL as u64) as usize] = cap(1 + len.saturating_sub(header_len));
        self.last_room = cap(len);
        self.pes += 1;
        self.packets += n;
    }

    /// Where the padding goes. Without alignment: nowhere. With it: the last PES takes
    /// as much as it can with its header intact, then the one before, and so on (in
    /// practice the last PES alone does it: it needs 15 bytes after its header). If the
    /// whole tail cannot take it with headers intact (a PID with only a few bytes of
    /// payload in the segment, e.g. one tiny AAC frame), the last PES takes all of it
    /// with its header spread over packets; every PES has at least 20 bytes, so that
    /// always works and the error below is unreachable.
    pub(super) fn plan(&self, params: &MuxParams) -> Result<Padding, Error> {
        let mut p = Padding {
            pes: self.pes,
            packets: self.packets,
            extra: [0; TAIL],
        };
        if !params.align_continuity || self.pes == 0 {
            return Ok(p);
        }
        let pad = ((CC_MODULUS - self.packets % CC_MODULUS) % CC_MODULUS) as u8;
        let mut need = pad;
        for k in (self.pes.saturating_sub(TAIL as u64)..self.pes).rev() {
            if need == 0 {
                break;
            }
            let slot = (k % TAIL as u64) as usize;
            let take = need.min(self.room[slot]);
            p.extra[slot] = take;
            need -= take;
        }
        if need > 0 {
            if pad > self.last_room {
                return Err(Error::Internal("PES too short for continuity alignment"));
            }
            p.extra = [0; TAIL];
            p.extra[((self.pes - 1) % TAIL as u64) as usize] = pad;
        }
        p.packets += u64::from(pad);
        Ok(p)
    }
}

/// Extra packets per PES of one PID, decided before writing.
#[derive(Clone, Copy)]
pub(super) struct Padding {
    /// PES on the PID.
    pub(super) pes: u64,
    /// Packets on the PID, padding included.
    pub(super) packets: u64,
    /// Ring indexed by PES number % TAIL, for the last TAIL PES; 0 elsewhere.
    pub(super) extra: [u8; TAIL],
}

impl Padding {
    /// Extra packets for PES number `k` of the PID.
    pub(super) fn extra(&self, k: u64) -> usize {
        if k < self.pes && k + TAIL as u64 >= self.pes {
            usize::from(self.extra[(k % TAIL as u64) as usize])
        } else {
            0
        }
    }
}

/// Counts packets per PID; a transforming hook's output is made and kept here.
pub(super) struct Counter<'h, H> {
    pub(super) video: PidCount,
    pub(super) audio: PidCount,
    pub(super) hook: &'h mut H,
    pub(super) es: Transformed,
}

impl<H: EsHook> Sink for Counter<'_, H> {
    fn video(
        &mut self,
        v: &VideoTrack<'_>,
        sample: usize,
        plan: &AuPlan,
        t: Times,
        first: FirstPacket,
    ) -> Result<(), Error> {
        let header = pes_header_len(t.pts, t.dts);
        let es_len = if H::IDENTITY {
            plan.es_len
        } else {
            self.es.video(v, sample, plan, self.hook)?
        };
        self.video.add(header, header + es_len, first);
        Ok(())
    }

    fn audio(
        &mut self,
        a: &AudioTrack<'_>,
        frames: Range<usize>,
        len: usize,
        t: Times,
        first: FirstPacket,
    ) -> Result<(), Error> {
        let header = pes_header_len(t.pts, t.dts);
        let len = if H::IDENTITY {
            len
        } else {
            self.es.audio(a, frames, self.hook)?
        };
        self.audio.add(header, header + len, first);
        Ok(())
    }
}
