//! TS packet framing (ISO/IEC 13818-1 2.4.3.2 and 2.4.3.4): headers, adaptation fields,
//! stuffing, continuity counters.

use crate::pes::MASK_33;
use crate::{Error, TS_PACKET_SIZE};

/// Bytes after the 4-byte TS header.
pub(crate) const PAYLOAD: usize = TS_PACKET_SIZE - 4;
const SYNC: u8 = 0x47;

/// What the adaptation field of a PES's first packet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FirstPacket {
    /// 33-bit PCR base (90 kHz); the 27 MHz extension is always 0.
    pub pcr_base: Option<u64>,
    /// random_access_indicator.
    pub random_access: bool,
}

impl FirstPacket {
    /// Adaptation field size before stuffing: length byte + flags (+ 6 bytes of PCR).
    fn adaptation_len(&self) -> usize {
        match (self.pcr_base, self.random_access) {
            (Some(_), _) => 8,
            (None, true) => 2,
            (None, false) => 0,
        }
    }

    fn flags(&self) -> u8 {
        (u8::from(self.random_access) << 6) | (u8::from(self.pcr_base.is_some()) << 4)
    }
}

/// Packets a PES of `len` bytes (header included, `len > 0`) takes when every packet
/// but the last is full (the natural layout, no extra packets).
pub(crate) fn pes_packet_count(len: usize, first: FirstPacket) -> u64 {
    let first_room = PAYLOAD - first.adaptation_len();
    if len <= first_room {
        1
    } else {
        1 + (len - first_room).div_ceil(PAYLOAD) as u64
    }
}

/// Writes one PES as TS packets straight into `out`. The total length and the number
/// of packets are known up front, so each packet's stuffing is decided when that packet
/// starts and nothing is ever moved afterwards.
///
/// Layout: every packet takes as many bytes as it can while leaving at least one byte
/// for each packet still to come. With the natural packet count that is "all packets
/// full but the last"; with `extra` packets on top, the tail of the PES is spread out:
/// full packets, one partial packet, then packets of one payload byte each (the rest
/// adaptation-field stuffing). The first packet keeps its PCR/RAI adaptation field in
/// every case, and keeps the whole PES header as long as the packet count does not
/// exceed 1 + (bytes after the header).
///
/// Invariants: `room <= remaining`; `room == 0` with bytes still to come means a new
/// packet starts; `remaining - room >= later` (every later packet gets a byte).
pub(crate) struct PesWriter<'o> {
    out: &'o mut Vec<u8>,
    pid: u16,
    cc: u8,
    remaining: usize,
    room: usize,
    /// Packets still to start after the current one.
    later: usize,
}

impl<'o> PesWriter<'o> {
    /// Starts a PES of `len` bytes (`len > 0`) on `pid`, to be spread over
    /// [`pes_packet_count`] + `extra` packets; writes the first packet's header and
    /// adaptation field. A packet count above `len` cannot be met (every packet carries
    /// at least one byte) and is cut to `len`.
    pub(crate) fn begin(
        out: &'o mut Vec<u8>,
        pid: u16,
        cc: u8,
        len: usize,
        first: FirstPacket,
        extra: usize,
    ) -> Self {
        let packets = (pes_packet_count(len, first) as usize)
            .saturating_add(extra)
            .min(len.max(1));
        let mut w = PesWriter {
            out,
            pid,
            cc: cc & 0x0F,
            remaining: len,
            room: 0,
            later: packets,
        };
        w.start_packet(true, first);
        w
    }

    fn start_packet(&mut self, unit_start: bool, first: FirstPacket) {
        self.later = self.later.saturating_sub(1);
        let fixed = first.adaptation_len();
        let cap = PAYLOAD - fixed;
        let room = cap.min(self.remaining.saturating_sub(self.later));
        let stuffing = cap - room;
        let adaptation = fixed + stuffing;
        let control = if adaptation > 0 { 0x30 } else { 0x10 };
        self.out.extend_from_slice(&[
            SYNC,
            (u8::from(unit_start) << 6) | (self.pid >> 8) as u8,
            self.pid as u8,
            control | self.cc,
        ]);
        if adaptation > 0 {
            // adaptation_field_length counts the bytes after itself; adaptation <= 184.
            self.out.push((adaptation - 1) as u8);
            if adaptation > 1 {
                self.out.push(first.flags());
                if let Some(base) = first.pcr_base {
                    self.out.extend_from_slice(&pcr_bytes(base));
                }
                let pad = adaptation - fixed.max(2);
                self.out.resize(self.out.len() + pad, 0xFF);
            }
        }
        self.cc = (self.cc + 1) & 0x0F;
        self.room = room;
    }

    /// Appends PES bytes.
    #[inline]
    pub(crate) fn put(&mut self, mut data: &[u8]) -> Result<(), Error> {
        if data.len() > self.remaining {
            return Err(Error::Internal("PES longer than planned"));
        }
        while !data.is_empty() {
            if self.room == 0 {
                data = self.put_full_packets(data);
                if data.is_empty() {
                    break;
                }
                self.start_packet(
                    false,
                    FirstPacket {
                        pcr_base: None,
                        random_access: false,
                    },
                );
            }
            let n = self.room.min(data.len());
            self.out.extend_from_slice(&data[..n]);
            self.room -= n;
            self.remaining -= n;
            data = &data[n..];
        }
        Ok(())
    }

    /// Writes the packets that start here and are full without an adaptation field (the
    /// bulk of every PES: all but its first and last few) straight from `data`; returns the
    /// rest. Each is its 4-byte header and 184 bytes copied in two fixed-size pieces, which
    /// the compiler inlines: through `put` each was a call to `memmove` for 184 bytes, a third
    /// of the muxer's time. Called with `room == 0`; leaves `room == 0`.
    fn put_full_packets<'d>(&mut self, mut data: &'d [u8]) -> &'d [u8] {
        const HEAD: usize = 96;
        // A packet starting now is full and plain when it can take PAYLOAD bytes and still
        // leave one for each packet after it (see start_packet).
        let plain = |w: &Self| w.later >= 1 && w.remaining >= PAYLOAD + (w.later - 1);
        if data.len() < PAYLOAD || !plain(self) {
            return data;
        }
        self.out.reserve((data.len() / PAYLOAD) * crate::TS_PACKET_SIZE);
        let (hi, lo) = ((self.pid >> 8) as u8, self.pid as u8);
        while let Some((payload, rest)) = data.split_first_chunk::<PAYLOAD>() {
            if !plain(self) {
                break;
            }
            self.out.extend_from_slice(&[SYNC, hi, lo, 0x10 | self.cc]);
            let (a, b) = payload.split_at(HEAD);
            self.out.extend_from_slice(<&[u8; HEAD]>::try_from(a).expect("split at HEAD"));
            self.out.extend_from_slice(<&[u8; PAYLOAD - HEAD]>::try_from(b).expect("the rest of PAYLOAD"));
            self.cc = (self.cc + 1) & 0x0F;
            self.later -= 1;
            self.remaining -= PAYLOAD;
            data = rest;
        }
        data
    }

    /// Ends the PES; returns the continuity counter for the PID's next packet.
    pub(crate) fn finish(self) -> Result<u8, Error> {
        if self.remaining != 0 {
            return Err(Error::Internal("PES shorter than planned"));
        }
        Ok(self.cc)
    }
}

/// The 6-byte PCR: 33-bit base, 6 reserved bits (1), 9-bit extension (0).
fn pcr_bytes(base: u64) -> [u8; 6] {
    let b = base & MASK_33;
    [
        (b >> 25) as u8,
        (b >> 17) as u8,
        (b >> 9) as u8,
        (b >> 1) as u8,
        ((b as u8 & 1) << 7) | 0x7E,
        0x00,
    ]
}

/// Writes a one-packet PSI section (pointer_field 0, then `section`, then 0xFF stuffing).
/// `write_section` appends the section body without CRC; the CRC is computed here.
pub(crate) fn write_psi_packet(
    out: &mut Vec<u8>,
    pid: u16,
    cc: u8,
    write_section: impl FnOnce(&mut Vec<u8>),
) -> Result<(), Error> {
    let start = out.len();
    out.extend_from_slice(&[
        SYNC,
        0x40 | (pid >> 8) as u8,
        pid as u8,
        0x10 | (cc & 0x0F),
        0x00,
    ]);
    let section_start = out.len();
    write_section(out);
    let crc = crate::crc32_mpeg2(&out[section_start..]);
    out.extend_from_slice(&crc.to_be_bytes());
    let used = out.len() - start;
    if used > TS_PACKET_SIZE {
        out.truncate(start);
        return Err(Error::Internal("PSI section longer than one packet"));
    }
    out.resize(start + TS_PACKET_SIZE, 0xFF);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: FirstPacket = FirstPacket {
        pcr_base: None,
        random_access: false,
    };

    fn write(len: usize, first: FirstPacket, cc: u8) -> (Vec<u8>, u8) {
        write_extra(len, first, cc, 0)
    }

    fn write_extra(len: usize, first: FirstPacket, cc: u8, extra: usize) -> (Vec<u8>, u8) {
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut out = Vec::new();
        let mut w = PesWriter::begin(&mut out, 0x101, cc, len, first, extra);
        // Uneven pieces exercise packet boundaries inside a put.
        for piece in data.chunks(77) {
            w.put(piece).unwrap();
        }
        let next = w.finish().unwrap();
        (out, next)
    }

    /// Reads the payload back, checking the framing of every packet.
    fn payload(ts: &[u8]) -> Vec<u8> {
        let mut p = Vec::new();
        for pkt in ts.chunks(TS_PACKET_SIZE) {
            assert_eq!(pkt.len(), TS_PACKET_SIZE);
            assert_eq!(pkt[0], SYNC);
            let start = match pkt[3] >> 4 & 3 {
                1 => 4,
                3 => 5 + usize::from(pkt[4]),
                x => panic!("control {x}"),
            };
            assert!(start < TS_PACKET_SIZE, "packet without payload");
            p.extend_from_slice(&pkt[start..]);
        }
        p
    }

    #[test]
    fn every_length_fills_packets_exactly() {
        let firsts = [
            NONE,
            FirstPacket {
                pcr_base: None,
                random_access: true,
            },
            FirstPacket {
                pcr_base: Some(12345),
                random_access: true,
            },
            FirstPacket {
                pcr_base: Some(1),
                random_access: false,
            },
        ];
        for first in firsts {
            for len in 1..=600 {
                let (out, next) = write(len, first, 14);
                let n = pes_packet_count(len, first);
                assert_eq!(
                    out.len(),
                    n as usize * TS_PACKET_SIZE,
                    "len {len} {first:?}"
                );
                assert_eq!(next, ((14 + n) % 16) as u8);
                let expect: Vec<u8> = (0..len).map(|i| i as u8).collect();
                assert_eq!(payload(&out), expect, "len {len} {first:?}");
                // Only the first packet starts the unit.
                for (i, pkt) in out.chunks(TS_PACKET_SIZE).enumerate() {
                    assert_eq!(pkt[1] & 0x40 != 0, i == 0);
                    assert_eq!(pkt[3] & 0x0F, ((14 + i) % 16) as u8);
                }
            }
        }
    }

    /// Payload bytes of every packet.
    fn payload_sizes(ts: &[u8]) -> Vec<usize> {
        ts.chunks(TS_PACKET_SIZE)
            .map(|pkt| match pkt[3] >> 4 & 3 {
                1 => 184,
                _ => 183 - usize::from(pkt[4]),
            })
            .collect()
    }

    #[test]
    fn extra_packets_spread_the_tail() {
        let firsts = [
            NONE,
            FirstPacket {
                pcr_base: None,
                random_access: true,
            },
            FirstPacket {
                pcr_base: Some(0x1_2345_6789),
                random_access: true,
            },
        ];
        for first in firsts {
            let fixed = first.adaptation_len();
            for len in (1..=400).chain([2000, 5000]) {
                let n = pes_packet_count(len, first) as usize;
                for extra in 0..=15 {
                    let (out, next) = write_extra(len, first, 5, extra);
                    // Asked-for count, or one byte per packet when the PES is shorter.
                    let m = (n + extra).min(len);
                    assert_eq!(out.len(), m * TS_PACKET_SIZE, "len {len} extra {extra}");
                    assert_eq!(next, ((5 + m) % 16) as u8);
                    let expect: Vec<u8> = (0..len).map(|i| i as u8).collect();
                    assert_eq!(payload(&out), expect, "len {len} extra {extra}");
                    let sizes = payload_sizes(&out);
                    // Greedy: each packet as full as the rest allows, never empty.
                    let mut left = len;
                    for (i, &size) in sizes.iter().enumerate() {
                        let cap = if i == 0 { 184 - fixed } else { 184 };
                        assert_eq!(size, cap.min(left - (m - 1 - i)), "len {len} extra {extra}");
                        assert!(size >= 1);
                        left -= size;
                    }
                    // The first packet keeps its adaptation field: PCR and RAI intact.
                    let pkt = &out[..TS_PACKET_SIZE];
                    assert_eq!(pkt[1] & 0x40, 0x40);
                    if fixed > 0 {
                        assert_eq!(pkt[3] & 0x30, 0x30);
                        assert_eq!(pkt[5], first.flags());
                        if let Some(base) = first.pcr_base {
                            assert_eq!(&pkt[6..12], &pcr_bytes(base));
                        }
                    }
                    for (i, pkt) in out.chunks(TS_PACKET_SIZE).enumerate() {
                        assert_eq!(pkt[3] & 0x0F, ((5 + i) % 16) as u8);
                        assert_eq!(pkt[1] & 0x40 != 0, i == 0);
                        if i > 0 && pkt[3] & 0x20 != 0 && pkt[4] > 0 {
                            assert_eq!(pkt[5], 0, "later packets: stuffing only");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn one_and_two_byte_stuffing() {
        // 183 bytes: one stuffing byte, adaptation_field_length 0.
        let (out, _) = write(183, NONE, 0);
        assert_eq!(&out[..5], &[0x47, 0x41, 0x01, 0x30, 0x00]);
        // 182 bytes: length 1, flags 0.
        let (out, _) = write(182, NONE, 0);
        assert_eq!(&out[..6], &[0x47, 0x41, 0x01, 0x30, 0x01, 0x00]);
        // 180 bytes: length 3, flags 0, two 0xFF.
        let (out, _) = write(180, NONE, 0);
        assert_eq!(&out[..8], &[0x47, 0x41, 0x01, 0x30, 0x03, 0x00, 0xFF, 0xFF]);
    }

    #[test]
    fn pcr_and_rai() {
        // PCR base 0x1_0000_0001 (bit 32 and bit 0 set).
        let first = FirstPacket {
            pcr_base: Some(0x1_0000_0001),
            random_access: true,
        };
        let (out, _) = write(1000, first, 3);
        assert_eq!(
            &out[..12],
            &[0x47, 0x41, 0x01, 0x33, 0x07, 0x50, 0x80, 0x00, 0x00, 0x00, 0xFE, 0x00]
        );
        // Second packet: plain payload.
        assert_eq!(&out[188..192], &[0x47, 0x01, 0x01, 0x14]);
    }

    #[test]
    fn size_mismatch_is_an_error() {
        let mut out = Vec::new();
        let mut w = PesWriter::begin(&mut out, 0x100, 0, 10, NONE, 0);
        assert_eq!(
            w.put(&[0; 11]),
            Err(Error::Internal("PES longer than planned"))
        );
        w.put(&[0; 9]).unwrap();
        assert_eq!(w.finish(), Err(Error::Internal("PES shorter than planned")));
    }
}
