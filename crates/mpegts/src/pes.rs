//! PES packet headers and 90 kHz timestamps (ISO/IEC 13818-1 2.4.3.6).

/// PTS, DTS and PCR base are 33-bit fields.
pub(crate) const MASK_33: u64 = (1 << 33) - 1;

/// Longest PES header we write: 9 fixed bytes + PTS + DTS.
const MAX_HEADER: usize = 19;

/// `t` ticks of `timescale` in 90 kHz ticks, rounded to nearest (halves up). `None` for
/// a zero timescale or a result outside `i64`.
///
/// Rounding each time on its own (rather than accumulating durations) keeps every
/// timestamp within half a tick of the exact value, with no drift over long titles.
pub fn rescale_to_90k(t: i64, timescale: u32) -> Option<i64> {
    if timescale == 0 {
        return None;
    }
    // In 64 bits whenever it fits (any time under ~1.6 years at 90 kHz): 128-bit division is
    // a library call, and this runs for every sample of every TS segment.
    let ts = i64::from(timescale);
    if let Some(n) = t.checked_mul(180_000).and_then(|n| n.checked_add(ts)) {
        return Some(n.div_euclid(2 * ts));
    }
    let ts = i128::from(timescale);
    let v = (i128::from(t) * 180_000 + ts).div_euclid(2 * ts);
    i64::try_from(v).ok()
}

/// A PES header held on the stack.
pub(crate) struct PesHeader {
    buf: [u8; MAX_HEADER],
    len: usize,
}

impl PesHeader {
    /// Header bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Length of the header `pes_header` writes for these times.
pub(crate) fn pes_header_len(pts: u64, dts: u64) -> usize {
    if pts == dts {
        14
    } else {
        19
    }
}

/// Longest payload a bounded PES can carry (with PTS and DTS).
pub(crate) const MAX_BOUNDED_PAYLOAD: usize = 0xFFFF - (MAX_HEADER - 6);

/// PES header for `stream_id` with data_alignment_indicator set (payload starts with an
/// access unit), PTS alone when `pts == dts`, PTS and DTS otherwise. `payload_len`
/// `None` writes PES_packet_length 0 (unbounded, video only); the caller keeps bounded
/// payloads within [`MAX_BOUNDED_PAYLOAD`].
pub(crate) fn pes_header(
    stream_id: u8,
    pts: u64,
    dts: u64,
    payload_len: Option<usize>,
) -> PesHeader {
    let with_dts = pts != dts;
    let data_len: u8 = if with_dts { 10 } else { 5 };
    let packet_len = match payload_len {
        // Bounded by MAX_BOUNDED_PAYLOAD at the caller; min() only guards a bug.
        Some(n) => (3 + usize::from(data_len) + n).min(0xFFFF) as u16,
        None => 0,
    };
    let mut buf = [0u8; MAX_HEADER];
    buf[..9].copy_from_slice(&[
        0x00,
        0x00,
        0x01,
        stream_id,
        (packet_len >> 8) as u8,
        packet_len as u8,
        0x84, // '10', not scrambled, no priority, data_alignment_indicator, no copyright, copy
        if with_dts { 0xC0 } else { 0x80 },
        data_len,
    ]);
    buf[9..14].copy_from_slice(&timestamp(if with_dts { 0b0011 } else { 0b0010 }, pts));
    if with_dts {
        buf[14..19].copy_from_slice(&timestamp(0b0001, dts));
    }
    PesHeader {
        buf,
        len: 9 + usize::from(data_len),
    }
}

/// A 33-bit timestamp in the 5-byte PES layout: 4-bit prefix, then 3 + 15 + 15 bits each
/// followed by a marker bit.
fn timestamp(prefix: u8, t: u64) -> [u8; 5] {
    let t = t & MASK_33;
    [
        (prefix << 4) | (((t >> 30) as u8 & 0x07) << 1) | 1,
        (t >> 22) as u8,
        (((t >> 15) as u8 & 0x7F) << 1) | 1,
        (t >> 7) as u8,
        ((t as u8 & 0x7F) << 1) | 1,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rescale() {
        assert_eq!(rescale_to_90k(1, 90_000), Some(1));
        assert_eq!(rescale_to_90k(1001, 30_000), Some(3003));
        assert_eq!(rescale_to_90k(1024, 48_000), Some(1920));
        // 1024 / 44100 s = 2089.795... ticks
        assert_eq!(rescale_to_90k(1024, 44_100), Some(2090));
        assert_eq!(rescale_to_90k(-1024, 44_100), Some(-2090));
        // Exactly half a tick rounds up: 1 tick of 180 kHz.
        assert_eq!(rescale_to_90k(1, 180_000), Some(1));
        assert_eq!(rescale_to_90k(-1, 180_000), Some(0));
        assert_eq!(rescale_to_90k(5, 0), None);
        assert_eq!(rescale_to_90k(i64::MAX, 1), None);
        // The 64-bit path agrees with 128-bit arithmetic, up to where it stops fitting and past it.
        let wide = |t: i64, ts: u32| i64::try_from((i128::from(t) * 180_000 + i128::from(ts)).div_euclid(2 * i128::from(ts))).ok();
        let edge = i64::MAX / 180_000;
        for ts in [1, 1000, 44_100, 90_000, 10_000_000, u32::MAX] {
            for t in [0, 1, -1, 12_345_678_901, -98_765_432_109, edge - 1, edge, edge + 1, -edge - 1, -edge - 2, i64::MAX, i64::MIN] {
                assert_eq!(rescale_to_90k(t, ts), wide(t, ts), "{t} at {ts}");
            }
        }
    }

    #[test]
    fn pts_only_header() {
        // PTS 0x1_2345_6789 does not fit 32 bits: exercises the top 3 bits. Expected bytes
        // were built as a bit string: '0010' + bits 32..30 + '1' + bits 29..15 + '1' +
        // bits 14..0 + '1'. PES_packet_length = 3 + 5 + 100 = 0x6C.
        let h = pes_header(0xC0, 0x1_2345_6789, 0x1_2345_6789, Some(100));
        assert_eq!(
            h.as_bytes(),
            [0x00, 0x00, 0x01, 0xC0, 0x00, 0x6C, 0x84, 0x80, 0x05, 0x29, 0x8D, 0x15, 0xCF, 0x13]
        );
        assert_eq!(pes_header_len(7, 7), 14);
        assert_eq!(pes_header_len(8, 7), 19);
    }

    #[test]
    fn pts_dts_header() {
        let h = pes_header(0xE0, 183_003, 180_000, None);
        let b = h.as_bytes();
        assert_eq!(
            &b[..9],
            &[0x00, 0x00, 0x01, 0xE0, 0x00, 0x00, 0x84, 0xC0, 0x0A]
        );
        assert_eq!(decode(&b[9..14]), (0b0011, 183_003));
        assert_eq!(decode(&b[14..19]), (0b0001, 180_000));
        // Values wrap at 33 bits.
        let h = pes_header(0xE0, (1 << 33) + 5, 3, None);
        assert_eq!(decode(&h.as_bytes()[9..14]), (0b0011, 5));
    }

    /// Independent reading of the 5-byte layout, checking the marker bits.
    fn decode(b: &[u8]) -> (u8, u64) {
        assert_eq!(b[0] & 1, 1);
        assert_eq!(b[2] & 1, 1);
        assert_eq!(b[4] & 1, 1);
        let t = (u64::from(b[0] >> 1 & 7) << 30)
            | (u64::from(b[1]) << 22)
            | (u64::from(b[2] >> 1) << 15)
            | (u64::from(b[3]) << 7)
            | u64::from(b[4] >> 1);
        (b[0] >> 4, t)
    }
}
