//! Four-character codes.

use std::fmt;

/// A box type or brand: four bytes, shown as text when printable.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FourCC(pub [u8; 4]);

impl FourCC {
    /// From a 4-byte literal, e.g. `FourCC::new(b"moof")`.
    pub const fn new(b: &[u8; 4]) -> Self {
        FourCC(*b)
    }
    /// As a big-endian integer.
    pub const fn as_u32(self) -> u32 {
        u32::from_be_bytes(self.0)
    }
}

impl fmt::Display for FourCC {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for FourCC {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{self}'")
    }
}

/// Box types used across the crates.
#[allow(missing_docs)]
pub mod types {
    use super::FourCC;
    pub const FTYP: FourCC = FourCC::new(b"ftyp");
    pub const STYP: FourCC = FourCC::new(b"styp");
    pub const MOOV: FourCC = FourCC::new(b"moov");
    pub const MVHD: FourCC = FourCC::new(b"mvhd");
    pub const TRAK: FourCC = FourCC::new(b"trak");
    pub const TKHD: FourCC = FourCC::new(b"tkhd");
    pub const EDTS: FourCC = FourCC::new(b"edts");
    pub const ELST: FourCC = FourCC::new(b"elst");
    pub const MDIA: FourCC = FourCC::new(b"mdia");
    pub const MDHD: FourCC = FourCC::new(b"mdhd");
    pub const HDLR: FourCC = FourCC::new(b"hdlr");
    pub const MINF: FourCC = FourCC::new(b"minf");
    pub const STBL: FourCC = FourCC::new(b"stbl");
    pub const STSD: FourCC = FourCC::new(b"stsd");
    pub const STTS: FourCC = FourCC::new(b"stts");
    pub const CTTS: FourCC = FourCC::new(b"ctts");
    pub const STSC: FourCC = FourCC::new(b"stsc");
    pub const STSZ: FourCC = FourCC::new(b"stsz");
    pub const STZ2: FourCC = FourCC::new(b"stz2");
    pub const STCO: FourCC = FourCC::new(b"stco");
    pub const CO64: FourCC = FourCC::new(b"co64");
    pub const STSS: FourCC = FourCC::new(b"stss");
    pub const MVEX: FourCC = FourCC::new(b"mvex");
    pub const MEHD: FourCC = FourCC::new(b"mehd");
    pub const TREX: FourCC = FourCC::new(b"trex");
    pub const MOOF: FourCC = FourCC::new(b"moof");
    pub const MFHD: FourCC = FourCC::new(b"mfhd");
    pub const TRAF: FourCC = FourCC::new(b"traf");
    pub const TFHD: FourCC = FourCC::new(b"tfhd");
    pub const TFDT: FourCC = FourCC::new(b"tfdt");
    pub const TRUN: FourCC = FourCC::new(b"trun");
    pub const MDAT: FourCC = FourCC::new(b"mdat");
    pub const SIDX: FourCC = FourCC::new(b"sidx");
    pub const MFRA: FourCC = FourCC::new(b"mfra");
    pub const TFRA: FourCC = FourCC::new(b"tfra");
    pub const MFRO: FourCC = FourCC::new(b"mfro");
    pub const UDTA: FourCC = FourCC::new(b"udta");
    pub const FREE: FourCC = FourCC::new(b"free");
    pub const SKIP: FourCC = FourCC::new(b"skip");
    pub const UUID: FourCC = FourCC::new(b"uuid");
    pub const AVC1: FourCC = FourCC::new(b"avc1");
    pub const AVC3: FourCC = FourCC::new(b"avc3");
    pub const HVC1: FourCC = FourCC::new(b"hvc1");
    pub const HEV1: FourCC = FourCC::new(b"hev1");
    pub const MP4A: FourCC = FourCC::new(b"mp4a");
    pub const AVCC: FourCC = FourCC::new(b"avcC");
    pub const HVCC: FourCC = FourCC::new(b"hvcC");
    pub const ESDS: FourCC = FourCC::new(b"esds");
    pub const BTRT: FourCC = FourCC::new(b"btrt");
    pub const VIDE: FourCC = FourCC::new(b"vide");
    pub const SOUN: FourCC = FourCC::new(b"soun");
}
