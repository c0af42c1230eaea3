//! `trun`: the samples of a track run.

use crate::fourcc::types::TRUN;
use crate::writer::Put;
use crate::{Atom, FourCC, Reader, Result};

/// Flag bits of `trun`.
pub mod flags {
    /// data_offset present.
    pub const DATA_OFFSET: u32 = 0x1;
    /// first_sample_flags present.
    pub const FIRST_SAMPLE_FLAGS: u32 = 0x4;
    /// Per-sample duration.
    pub const DURATION: u32 = 0x100;
    /// Per-sample size.
    pub const SIZE: u32 = 0x200;
    /// Per-sample flags.
    pub const FLAGS: u32 = 0x400;
    /// Per-sample composition time offset.
    pub const CTO: u32 = 0x800;
}

/// One sample entry; fields are `Some` when the trun carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrunEntry {
    /// Duration.
    pub duration: Option<u32>,
    /// Size.
    pub size: Option<u32>,
    /// Flags.
    pub flags: Option<u32>,
    /// Composition time offset (signed in version 1; stored as i64 for both).
    pub cto: Option<i64>,
}

/// Track run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trun {
    /// Version (1 allows negative composition offsets).
    pub version: u8,
    /// Flags (which optional fields are present).
    pub flags: u32,
    /// Data offset, relative to the base data offset.
    pub data_offset: Option<i32>,
    /// Flags of the first sample, overriding the defaults.
    pub first_sample_flags: Option<u32>,
    /// Samples.
    pub entries: Vec<TrunEntry>,
}

/// The fixed fields of a `trun` body, read without decoding its samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrunHeader {
    /// Flags (which optional fields are present).
    pub flags: u32,
    /// Declared sample count.
    pub sample_count: u32,
}

impl TrunHeader {
    /// Reads the version/flags word and the sample count at the start of a `trun` body.
    ///
    /// Lets a caller weigh what a run declares against the bytes that can back it before
    /// [`Trun::decode_body`] allocates one entry per declared sample.
    pub fn peek(body: &[u8]) -> Result<TrunHeader> {
        let mut r = Reader::new(body, TRUN);
        let (_, flags) = r.version_flags()?;
        let sample_count = r.u32()?;
        Ok(TrunHeader { flags, sample_count })
    }

    /// Bytes each sample entry takes in the box (0 when every sample uses the defaults).
    pub fn entry_size(&self) -> u64 {
        Trun::entry_size(self.flags)
    }

    /// Whether each sample entry carries its own size.
    pub fn has_sample_sizes(&self) -> bool {
        self.flags & flags::SIZE != 0
    }
}

impl Trun {
    /// Bytes one sample entry takes.
    fn entry_size(f: u32) -> u64 {
        4 * ((f & flags::DURATION != 0) as u64
            + (f & flags::SIZE != 0) as u64
            + (f & flags::FLAGS != 0) as u64
            + (f & flags::CTO != 0) as u64)
    }

    /// Byte offset of the `data_offset` field within the encoded box (header of 8 included),
    /// if present. Lets a segment writer patch it without re-encoding.
    pub fn data_offset_position(&self) -> Option<usize> {
        self.data_offset.map(|_| 16)
    }
}

impl Atom for Trun {
    const TYPE: FourCC = TRUN;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let (version, f) = r.version_flags()?;
        let count = r.u32()?;
        let data_offset = if f & flags::DATA_OFFSET != 0 { Some(r.i32()?) } else { None };
        let first_sample_flags = if f & flags::FIRST_SAMPLE_FLAGS != 0 { Some(r.u32()?) } else { None };
        let n = r.check_count(count as u64, Self::entry_size(f))?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            entries.push(TrunEntry {
                duration: if f & flags::DURATION != 0 { Some(r.u32()?) } else { None },
                size: if f & flags::SIZE != 0 { Some(r.u32()?) } else { None },
                flags: if f & flags::FLAGS != 0 { Some(r.u32()?) } else { None },
                cto: if f & flags::CTO != 0 {
                    let v = r.u32()?;
                    Some(if version == 0 { v as i64 } else { v as i32 as i64 })
                } else {
                    None
                },
            });
        }
        r.finish()?;
        Ok(Trun { version, flags: f, data_offset, first_sample_flags, entries })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u32(((self.version as u32) << 24) | self.flags);
        out.put_u32(self.entries.len() as u32);
        if let Some(d) = self.data_offset {
            out.put_i32(d);
        }
        if let Some(f) = self.first_sample_flags {
            out.put_u32(f);
        }
        out.reserve(self.entries.len() * Self::entry_size(self.flags) as usize);
        for e in &self.entries {
            for v in [e.duration, e.size, e.flags, e.cto.map(|c| c as u32)].into_iter().flatten() {
                out.put_u32(v);
            }
        }
    }
}

/// `sample_is_non_sync_sample` bit of sample flags.
pub const SAMPLE_IS_NON_SYNC: u32 = 0x0001_0000;

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        let t: Trun = crate::testutil::round_trip("000000287472756e0100020100000005000001e8000000940000009300000092000000a000000091");
        assert_eq!(t.entries.len(), 5);
        assert_eq!(t.data_offset, Some(0x1e8));
        // Negative composition offsets (version 1), per-sample duration/size/flags/cto.
        let t: Trun = crate::testutil::round_trip("000000387472756e01000f0500000002000001000200000000000e10000003e8000100000000000000000e100000020000010000fffffffc");
        assert_eq!(t.entries[1].cto, Some(-4));
        assert_eq!(t.first_sample_flags, Some(0x0200_0000));
    }
    #[test]
    fn peek_reads_flags_and_count_only() {
        // The header of the 16-byte run of issue 11: no per-sample fields, 2^20 samples.
        let h = TrunHeader::peek(&crate::testutil::hex("00000000 00100000")).unwrap();
        assert_eq!((h.flags, h.sample_count, h.entry_size(), h.has_sample_sizes()), (0, 1 << 20, 0, false));
        let h = TrunHeader::peek(&crate::testutil::hex("00000301 00000005")).unwrap();
        assert_eq!((h.entry_size(), h.has_sample_sizes()), (8, true));
        assert!(TrunHeader::peek(&crate::testutil::hex("00000301 0000")).is_err());
    }
    #[test]
    fn hostile_count() {
        let b = crate::testutil::hex("000000147472756e00000200ffffffff00000000");
        assert!(Trun::decode(&b).is_err());
    }
}

#[cfg(test)]
mod regression {
    use super::*;
    #[test]
    fn huge_count_without_per_sample_fields_is_refused() {
        // Found by cargo fuzz: no per-sample fields, sample_count 0xffffffff.
        let b = crate::testutil::hex("000000107472756e00000000ffffffff");
        assert!(Trun::decode(&b).is_err());
        let b = crate::testutil::hex("000000107472756e0000000000000010");
        assert_eq!(Trun::decode(&b).unwrap().entries.len(), 16);
    }
}
