//! A bounded big-endian reader over one box body.

use crate::{Error, FourCC, Result};

/// Most entries a box may declare when they take no bytes each.
pub const MAX_EMPTY_ENTRIES: u64 = 1 << 20;

/// Reads fields from a body; every read is bounds-checked and names the box on failure.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: FourCC,
}

macro_rules! read_be {
    ($name:ident, $t:ty) => {
        #[doc = concat!("Reads a big-endian `", stringify!($t), "`.")]
        pub fn $name(&mut self) -> Result<$t> {
            let b = self.take(std::mem::size_of::<$t>())?;
            let mut a = [0u8; std::mem::size_of::<$t>()];
            a.copy_from_slice(b);
            Ok(<$t>::from_be_bytes(a))
        }
    };
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, the body of a box of type `what`.
    pub fn new(buf: &'a [u8], what: FourCC) -> Self {
        Reader { buf, pos: 0, what }
    }
    /// The box type errors will name.
    pub fn what(&self) -> FourCC {
        self.what
    }
    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    /// Current offset in the body.
    pub fn position(&self) -> usize {
        self.pos
    }
    /// The unread bytes, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }
    /// Takes `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::Truncated { what: self.what, need: n as u64, have: self.remaining() as u64 });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> Result<()> {
        self.take(n).map(|_| ())
    }
    read_be!(u8, u8);
    read_be!(u16, u16);
    read_be!(u32, u32);
    read_be!(u64, u64);
    read_be!(i16, i16);
    read_be!(i32, i32);
    read_be!(i64, i64);
    /// Reads a 24-bit big-endian value.
    pub fn u24(&mut self) -> Result<u32> {
        let b = self.take(3)?;
        Ok(u32::from_be_bytes([0, b[0], b[1], b[2]]))
    }
    /// Reads a four-character code.
    pub fn fourcc(&mut self) -> Result<FourCC> {
        let b = self.take(4)?;
        Ok(FourCC([b[0], b[1], b[2], b[3]]))
    }
    /// Reads a full-box version and flags.
    pub fn version_flags(&mut self) -> Result<(u8, u32)> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }
    /// Reads a u32 (version 0) or u64 (version 1) field.
    pub fn u32_or_u64(&mut self, version: u8) -> Result<u64> {
        if version == 1 {
            self.u64()
        } else {
            self.u32().map(u64::from)
        }
    }
    /// Checks that a count of fixed-size entries fits in what is left, before allocating.
    /// Entries of size 0 (a `trun` whose samples all use defaults) take no bytes, so their
    /// count is bounded by [`MAX_EMPTY_ENTRIES`] instead: found by fuzzing, a count of 2^32
    /// would otherwise allocate hundreds of gigabytes.
    pub fn check_count(&self, count: u64, entry_size: u64) -> Result<usize> {
        if entry_size == 0 {
            return if count <= MAX_EMPTY_ENTRIES { Ok(count as usize) } else { Err(Error::Invalid { what: self.what, detail: "entry count too large" }) };
        }
        match count.checked_mul(entry_size) {
            Some(n) if n <= self.remaining() as u64 => Ok(count as usize),
            _ => Err(Error::Invalid { what: self.what, detail: "entry count exceeds box size" }),
        }
    }
    /// Fails unless the body has been consumed exactly.
    pub fn finish(&self) -> Result<()> {
        if self.remaining() != 0 {
            return Err(Error::Invalid { what: self.what, detail: "trailing bytes in box body" });
        }
        Ok(())
    }
}
