//! `tfra`: track fragment random access — per track, the time and `moof` offset of each
//! fragment holding a random access (sync) sample, and where in that fragment it is.

use crate::fourcc::types::TFRA;
use crate::writer::Put;
use crate::{Atom, FourCC, Reader, Result};

/// One random access point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TfraEntry {
    /// Presentation time of the sync sample (track timescale).
    pub time: u64,
    /// File offset of the `moof` holding it.
    pub moof_offset: u64,
    /// 1-based `traf` number in that `moof`.
    pub traf_number: u32,
    /// 1-based `trun` number in that `traf`.
    pub trun_number: u32,
    /// 1-based sample number in that `trun`.
    pub sample_number: u32,
}

/// Track fragment random access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tfra {
    /// Version: 0 (32-bit time and offset) or 1 (64-bit).
    pub version: u8,
    /// Flags (none defined).
    pub flags: u32,
    /// Track.
    pub track_id: u32,
    /// Bytes minus one of `traf_number`, `trun_number` and `sample_number` (2 bits each).
    pub length_sizes: [u8; 3],
    /// Entries, in file order.
    pub entries: Vec<TfraEntry>,
}

impl Tfra {
    /// Bytes one entry takes in the box.
    pub fn entry_size(version: u8, length_sizes: [u8; 3]) -> u64 {
        let t = if version == 1 { 16 } else { 8 };
        t + length_sizes.iter().map(|&l| l as u64 + 1).sum::<u64>()
    }
}

fn read_n(r: &mut Reader<'_>, bytes: u8) -> Result<u32> {
    Ok(r.take(bytes as usize + 1)?.iter().fold(0u32, |a, &b| (a << 8) | b as u32))
}

fn put_n(out: &mut Vec<u8>, v: u32, bytes: u8) {
    out.extend_from_slice(&v.to_be_bytes()[3 - bytes as usize..]);
}

impl Atom for Tfra {
    const TYPE: FourCC = TFRA;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let (version, flags) = r.version_flags()?;
        let track_id = r.u32()?;
        let l = r.u32()?;
        let length_sizes = [((l >> 4) & 3) as u8, ((l >> 2) & 3) as u8, (l & 3) as u8];
        let count = r.u32()?;
        // Bounded by the box before anything is allocated.
        let n = r.check_count(count as u64, Self::entry_size(version, length_sizes))?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let time = r.u32_or_u64(version)?;
            let moof_offset = r.u32_or_u64(version)?;
            let traf_number = read_n(r, length_sizes[0])?;
            let trun_number = read_n(r, length_sizes[1])?;
            let sample_number = read_n(r, length_sizes[2])?;
            entries.push(TfraEntry { time, moof_offset, traf_number, trun_number, sample_number });
        }
        r.finish()?;
        Ok(Tfra { version, flags, track_id, length_sizes, entries })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u32(((self.version as u32) << 24) | self.flags);
        out.put_u32(self.track_id);
        let [a, b, c] = self.length_sizes;
        out.put_u32(((a as u32) << 4) | ((b as u32) << 2) | c as u32);
        out.put_u32(self.entries.len() as u32);
        for e in &self.entries {
            if self.version == 1 {
                out.put_u64(e.time);
                out.put_u64(e.moof_offset);
            } else {
                out.put_u32(e.time as u32);
                out.put_u32(e.moof_offset as u32);
            }
            put_n(out, e.traf_number, a);
            put_n(out, e.trun_number, b);
            put_n(out, e.sample_number, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip_v1() {
        // Two of ffmpeg's entries (fixtures/demo/video_180p.cmfv): one-byte numbers.
        let t: Tfra = crate::testutil::round_trip(
            "0000003e7466726101000000000000010000000000000002000000000000000000000000000002f9010101000000000002bf200000000000006b9b010101",
        );
        assert_eq!(t.entries.len(), 2);
        assert_eq!(t.entries[1], TfraEntry { time: 180000, moof_offset: 27547, traf_number: 1, trun_number: 1, sample_number: 1 });
    }

    #[test]
    fn round_trip_v0_wide_numbers() {
        let t: Tfra = crate::testutil::round_trip("0000002974667261000000000000000700000039000000010000006400000200000000010000020003");
        assert_eq!(t.length_sizes, [3, 2, 1]);
        assert_eq!(t.entries[0], TfraEntry { time: 100, moof_offset: 512, traf_number: 1, trun_number: 2, sample_number: 3 });
    }

    #[test]
    fn count_beyond_the_box_is_refused_before_allocating() {
        let mut b = crate::testutil::hex("0000002974667261000000000000000700000039000000010000006400000200000000010000020003");
        b[20..24].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(Tfra::decode(&b).is_err());
    }
}
