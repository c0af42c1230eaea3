//! ISO Base Media File Format boxes: bounded decoding and byte-exact encoding.
//!
//! Pure code over byte slices: no IO, no crypto. Every length read from input is treated as
//! hostile and bounded by its enclosing box; the size of a box is handled once, in
//! [`header`], so each box only reads its own body.
//!
//! We write this by hand rather than use `mp4-atom`: a just-in-time origin mostly needs to
//! *patch* a few fields (`mfhd`, `tfdt`, `trun` offsets) and pass every other byte through
//! untouched, including boxes no crate models (encryption boxes, `uuid`). A raw box tree
//! ([`tree::RawBox`]) plus typed views of the handful of boxes we read gives exact
//! round trips, which a full decode/encode model does not (see ARCHITECTURE.md).

pub mod error;
pub mod fourcc;
pub mod header;
pub mod reader;
pub mod tree;
pub mod writer;

pub mod co64;
pub mod ctts;
pub mod elst;
pub mod ftyp;
pub mod hdlr;
pub mod mdhd;
pub mod mfhd;
pub mod mfro;
pub mod mvhd;
pub mod sidx;
pub mod stco;
pub mod stsc;
pub mod stsd;
pub mod stss;
pub mod stsz;
pub mod stts;
pub mod stz2;
pub mod tfdt;
pub mod tfra;
pub mod tfhd;
pub mod tkhd;
pub mod trex;
pub mod trun;

pub use error::{Error, Result};
pub use fourcc::FourCC;
pub use header::{BoxHeader, BoxIter};
pub use reader::Reader;
pub use writer::{write_box, write_full_box};

/// A box body type that can be decoded from and encoded to its body bytes.
///
/// Size and type are handled by [`write_box`] / [`BoxIter`]; implementors only see their body.
pub trait Atom: Sized {
    /// The four-character code of the box.
    const TYPE: FourCC;
    /// Decodes the body (everything after the box header).
    fn decode_body(r: &mut Reader<'_>) -> Result<Self>;
    /// Appends the body (everything after the box header) to `out`.
    fn encode_body(&self, out: &mut Vec<u8>);

    /// Decodes a whole box (header included), checking its type and that the body is consumed.
    fn decode(buf: &[u8]) -> Result<Self> {
        let mut it = BoxIter::new(buf);
        let (h, body) = it.next().ok_or(Error::Truncated { what: Self::TYPE, need: 8, have: buf.len() as u64 })??;
        if h.typ != Self::TYPE {
            return Err(Error::UnexpectedBox { expected: Self::TYPE, found: h.typ });
        }
        let mut r = Reader::new(body, Self::TYPE);
        let v = Self::decode_body(&mut r)?;
        Ok(v)
    }

    /// Encodes the whole box, header included.
    fn encode(&self, out: &mut Vec<u8>) {
        write_box(out, Self::TYPE, |o| self.encode_body(o));
    }

    /// Convenience: encodes to a fresh vector.
    fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    /// Parses a hex string with optional whitespace.
    pub fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// Decode-then-encode must give the input back, byte for byte.
    pub fn round_trip<A: super::Atom + std::fmt::Debug>(h: &str) -> A {
        let bytes = hex(h);
        let a = A::decode(&bytes).unwrap_or_else(|e| panic!("decode {}: {e}", A::TYPE));
        assert_eq!(a.to_vec(), bytes, "{} did not round-trip: {:?}", A::TYPE, a);
        a
    }
}
