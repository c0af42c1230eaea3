//! Writing boxes: the size field is back-patched once the body is written.

use crate::FourCC;

/// Writes a box of type `typ` whose body is produced by `body`.
///
/// Uses a 32-bit size, or the 64-bit form when the box exceeds 4 GiB.
pub fn write_box(out: &mut Vec<u8>, typ: FourCC, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&typ.0);
    body(out);
    let size = out.len() - start;
    if let Ok(s) = u32::try_from(size) {
        out[start..start + 4].copy_from_slice(&s.to_be_bytes());
    } else {
        // Rare: re-insert an 8-byte largesize. Moves the body once.
        let size = size as u64 + 8;
        out[start..start + 4].copy_from_slice(&1u32.to_be_bytes());
        let at = start + 8;
        out.splice(at..at, size.to_be_bytes());
    }
}

/// Writes a full box (version and 24-bit flags before the body).
pub fn write_full_box(out: &mut Vec<u8>, typ: FourCC, version: u8, flags: u32, body: impl FnOnce(&mut Vec<u8>)) {
    write_box(out, typ, |o| {
        o.extend_from_slice(&(((version as u32) << 24) | (flags & 0x00ff_ffff)).to_be_bytes());
        body(o);
    });
}

/// Big-endian field writers for `Vec<u8>`.
pub trait Put {
    /// Appends a `u8`.
    fn put_u8(&mut self, v: u8);
    /// Appends a big-endian `u16`.
    fn put_u16(&mut self, v: u16);
    /// Appends a big-endian 24-bit value.
    fn put_u24(&mut self, v: u32);
    /// Appends a big-endian `u32`.
    fn put_u32(&mut self, v: u32);
    /// Appends a big-endian `u64`.
    fn put_u64(&mut self, v: u64);
    /// Appends a big-endian `i32`.
    fn put_i32(&mut self, v: i32);
}

impl Put for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v)
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes())
    }
    fn put_u24(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes()[1..])
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes())
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes())
    }
    fn put_i32(&mut self, v: i32) {
        self.extend_from_slice(&v.to_be_bytes())
    }
}
