//! `sidx`: segment index.

use crate::fourcc::types::SIDX;
use crate::writer::Put;
use crate::{Atom, FourCC, Reader, Result};

/// One reference of a segment index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SidxRef {
    /// Points at another sidx rather than media.
    pub reference_type: bool,
    /// Size in bytes of the referenced material.
    pub referenced_size: u32,
    /// Duration in the sidx timescale.
    pub subsegment_duration: u32,
    /// starts_with_SAP.
    pub starts_with_sap: bool,
    /// SAP type (3 bits).
    pub sap_type: u8,
    /// SAP delta time (28 bits).
    pub sap_delta_time: u32,
}

/// Segment index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sidx {
    /// Version.
    pub version: u8,
    /// Reference ID (track).
    pub reference_id: u32,
    /// Timescale.
    pub timescale: u32,
    /// Earliest presentation time of the first subsegment.
    pub earliest_presentation_time: u64,
    /// Distance from the end of this box to the first referenced byte.
    pub first_offset: u64,
    /// References.
    pub references: Vec<SidxRef>,
}

impl Atom for Sidx {
    const TYPE: FourCC = SIDX;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let (version, _) = r.version_flags()?;
        let reference_id = r.u32()?;
        let timescale = r.u32()?;
        let earliest_presentation_time = r.u32_or_u64(version)?;
        let first_offset = r.u32_or_u64(version)?;
        r.skip(2)?;
        let count = r.u16()?;
        let n = r.check_count(count as u64, 12)?;
        let mut references = Vec::with_capacity(n);
        for _ in 0..n {
            let a = r.u32()?;
            let subsegment_duration = r.u32()?;
            let c = r.u32()?;
            references.push(SidxRef {
                reference_type: a >> 31 != 0,
                referenced_size: a & 0x7fff_ffff,
                subsegment_duration,
                starts_with_sap: c >> 31 != 0,
                sap_type: ((c >> 28) & 7) as u8,
                sap_delta_time: c & 0x0fff_ffff,
            });
        }
        r.finish()?;
        Ok(Sidx { version, reference_id, timescale, earliest_presentation_time, first_offset, references })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u32((self.version as u32) << 24);
        out.put_u32(self.reference_id);
        out.put_u32(self.timescale);
        let put = |o: &mut Vec<u8>, v: u64| if self.version == 1 { o.put_u64(v) } else { o.put_u32(v as u32) };
        put(out, self.earliest_presentation_time);
        put(out, self.first_offset);
        out.put_u16(0);
        out.put_u16(self.references.len() as u16);
        for x in &self.references {
            out.put_u32(((x.reference_type as u32) << 31) | x.referenced_size);
            out.put_u32(x.subsegment_duration);
            out.put_u32(((x.starts_with_sap as u32) << 31) | ((x.sap_type as u32) << 28) | x.sap_delta_time);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        let s: Sidx = crate::testutil::round_trip("0000006473696478010000000000000100015f9000000000000000000000000000000000000000050000ddb60002bf2080000000000112330002bf20800000000000fda60002bf2080000000000110200002bf20800000000000f1040002bf2080000000");
        assert_eq!(s.references.len(), 5);
        assert_eq!(s.references[0].subsegment_duration, 180000);
        assert!(s.references[0].starts_with_sap);
    }
}
