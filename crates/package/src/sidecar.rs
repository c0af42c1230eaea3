//! Sidecar index: a fragmented file's `moov` and fragment tables stored next to it
//! (`NAME.sealcast-idx`), so a file with neither `sidx` nor `mfra` indexes in one read of the
//! sidecar instead of a walk over every `moof`. Written by `sealcast index` and `ingest`.
//!
//! The sidecar names the source version it describes — its size and its ETag as the store
//! lists it — and [`decode`] refuses it for any other version, so a replaced source is never
//! indexed from a stale sidecar.
//!
//! Format, version 2 (all integers big-endian unless said; `varint` is unsigned LEB128,
//! `zigzag` a signed value zigzag-mapped to a varint):
//!
//! ```text
//! magic "SCIX" | version u8 = 2 | reserved u8[3] = 0
//! source size u64 | key length u16 | key bytes (the source's ETag, or "mtime:<secs>" without one)
//! moov length u32 | the moov box, byte for byte
//! track count u16, per track:
//!   track_ID u32 | fragment count u32, per fragment:
//!     zigzag(decode_time - previous end) | varint duration | zigzag pres_offset
//!     varint(offset - previous end of fragment) | varint size | varint media_bytes
//!     u8 flags (bit 0: keyframe) | varint samples | zigzag min_cto
//! FNV-1a 64 of every byte before it, u64
//! ```
//!
//! About 15 bytes a fragment: a two-hour title with 2 s fragments is some 55 KB per track
//! (54,810 bytes for the benchmark's, `benches/README.md`).
//! Everything read is checked before use (counts against the bytes behind them and the
//! index budget, offsets against the source size) like any other input.

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::index::{FileIndex, Fragment, IndexLimits, IndexMethod};

/// File name suffix of sidecars: `video.cmfv` → `video.cmfv.sealcast-idx`.
pub const SUFFIX: &str = ".sealcast-idx";

const MAGIC: &[u8; 4] = b"SCIX";
/// 2: single-track `media_bytes` are sample-byte estimates (they were fragment spans in 1).
const VERSION: u8 = 2;
/// Smallest encoding of one fragment (nine one-byte fields).
const MIN_FRAGMENT_BYTES: usize = 9;
/// Longest source key kept.
const MAX_KEY: usize = 1024;

/// The version of a source a sidecar describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceKey {
    /// Source size in bytes.
    pub size: u64,
    /// The source's ETag as listed, or `mtime:<secs>` for stores without ETags.
    pub key: String,
}

/// Encodes a sidecar for `index` (built from the source version `source`), its `moov` box
/// being `moov`. Only fragmented files have sidecars: progressive ones index from their
/// `moov` alone.
pub fn encode(source: &SourceKey, moov: &[u8], index: &FileIndex) -> Result<Vec<u8>> {
    if index.tracks.iter().any(|t| t.samples.is_some()) {
        return Err(Error::Unsupported("a sidecar holds fragmented files only (this one has moov sample tables)".into()));
    }
    let key = source.key.as_bytes();
    if key.len() > MAX_KEY || moov.len() > u32::MAX as usize || index.tracks.len() > u16::MAX as usize {
        return Err(Error::Unsupported("source key, moov or track count too large for a sidecar".into()));
    }
    let mut out = Vec::with_capacity(64 + moov.len() + index.tracks.iter().map(|t| 12 * t.fragments.len() + 8).sum::<usize>());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[VERSION, 0, 0, 0]);
    out.extend_from_slice(&source.size.to_be_bytes());
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&(moov.len() as u32).to_be_bytes());
    out.extend_from_slice(moov);
    out.extend_from_slice(&(index.tracks.len() as u16).to_be_bytes());
    for t in &index.tracks {
        out.extend_from_slice(&t.info.track_id.to_be_bytes());
        let n = u32::try_from(t.fragments.len()).map_err(|_| Error::Unsupported("too many fragments for a sidecar".into()))?;
        out.extend_from_slice(&n.to_be_bytes());
        let (mut dt_end, mut off_end) = (0u64, 0u64);
        for f in &t.fragments {
            zigzag(&mut out, f.decode_time as i128 - dt_end as i128)?;
            varint(&mut out, f.duration);
            zigzag(&mut out, f.pres_offset as i128)?;
            varint(&mut out, f.offset.checked_sub(off_end).ok_or_else(|| Error::Unsupported("fragments out of file order".into()))?);
            varint(&mut out, f.size);
            varint(&mut out, f.media_bytes);
            out.push(f.keyframe as u8);
            varint(&mut out, f.samples as u64);
            zigzag(&mut out, f.min_cto as i128)?;
            dt_end = f.decode_time.saturating_add(f.duration);
            off_end = f.offset.saturating_add(f.size);
        }
    }
    let sum = fnv1a(&out);
    out.extend_from_slice(&sum.to_be_bytes());
    Ok(out)
}

/// A decoded sidecar: the `moov` to parse and one fragment table per track.
#[derive(Debug, Clone)]
pub struct Sidecar {
    /// The source's `moov` box.
    pub moov: Bytes,
    /// Per track ID, its fragments in decode order.
    pub tables: Vec<(u32, Vec<Fragment>)>,
}

/// Why a sidecar was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SidecarError {
    /// Written for another version of the source (size or ETag differ).
    #[error("stale: written for a source of {have_size} bytes with ETag {have_key:?}, the source now has {want_size} bytes and ETag {want_key:?}")]
    Stale {
        /// Size the sidecar names.
        have_size: u64,
        /// ETag the sidecar names.
        have_key: String,
        /// The source's size.
        want_size: u64,
        /// The source's ETag.
        want_key: String,
    },
    /// Not a sidecar we can read (corrupt, truncated, another version, over a bound).
    #[error("unreadable: {0}")]
    Invalid(String),
}

/// Decodes a sidecar for the source version `source`, within `limits`.
pub fn decode(data: &Bytes, source: &SourceKey, limits: IndexLimits) -> std::result::Result<Sidecar, SidecarError> {
    let bad = |s: &str| SidecarError::Invalid(s.to_string());
    if data.len() < 8 + 8 + 2 + 4 + 2 + 8 {
        return Err(bad("too short"));
    }
    if &data[..4] != MAGIC {
        return Err(bad("not a sealcast sidecar index"));
    }
    if data[4] != VERSION {
        return Err(SidecarError::Invalid(format!("format version {} (this build reads {VERSION})", data[4])));
    }
    let (body, sum) = data.split_at(data.len() - 8);
    if fnv1a(body) != u64::from_be_bytes(sum.try_into().map_err(|_| bad("checksum"))?) {
        return Err(bad("checksum mismatch (corrupt or truncated)"));
    }
    if data.len() as u64 > limits.max_bytes {
        return Err(bad("larger than the index budget of a file"));
    }
    let mut r = Cursor { b: body, at: 8 };
    let have_size = r.u64()?;
    let klen = r.u16()? as usize;
    let have_key = String::from_utf8(r.take(klen)?.to_vec()).map_err(|_| bad("key is not UTF-8"))?;
    if have_size != source.size || have_key != source.key {
        return Err(SidecarError::Stale { have_size, have_key, want_size: source.size, want_key: source.key.clone() });
    }
    let mlen = r.u32()? as usize;
    let moov_at = r.at;
    r.take(mlen)?;
    let moov = data.slice(moov_at..moov_at + mlen);
    let ntracks = r.u16()? as usize;
    let mut tables = Vec::with_capacity(ntracks.min(r.left() / 8));
    let mut cost = 0u64;
    for _ in 0..ntracks {
        let track_id = r.u32()?;
        let n = r.u32()? as usize;
        if n == 0 || n > r.left() / MIN_FRAGMENT_BYTES {
            return Err(SidecarError::Invalid(format!("track {track_id}: {n} fragments in {} bytes", r.left())));
        }
        cost = cost.saturating_add((n * std::mem::size_of::<Fragment>()) as u64);
        if cost > limits.max_bytes {
            return Err(bad("fragment tables over the index budget of a file"));
        }
        let mut frags = Vec::with_capacity(n);
        let (mut dt_end, mut off_end) = (0u64, 0u64);
        for k in 0..n {
            let err = |what: &str| SidecarError::Invalid(format!("track {track_id} fragment {k}: {what}"));
            let decode_time = u64::try_from(dt_end as i128 + r.zigzag()?).map_err(|_| err("negative decode time"))?;
            let duration = r.varint()?;
            let pres_offset = i64::try_from(r.zigzag()?).map_err(|_| err("presentation offset"))?;
            let offset = off_end.checked_add(r.varint()?).ok_or_else(|| err("offset"))?;
            let size = r.varint()?;
            let media_bytes = r.varint()?;
            let flags = r.u8()?;
            let samples = u32::try_from(r.varint()?).map_err(|_| err("sample count"))?;
            let min_cto = i64::try_from(r.zigzag()?).map_err(|_| err("composition offset"))?;
            let end = offset.checked_add(size).filter(|&e| e <= source.size).ok_or_else(|| err("past the end of the source"))?;
            if flags > 1 || size == 0 || media_bytes > size {
                return Err(err("bad flags or sizes"));
            }
            if k > 0 && decode_time < dt_end {
                return Err(err("decode times overlap"));
            }
            frags.push(Fragment { decode_time, duration, pres_offset, offset, size, media_bytes, keyframe: flags & 1 == 1, samples, min_cto });
            dt_end = decode_time.checked_add(duration).ok_or_else(|| err("duration"))?;
            off_end = end;
        }
        tables.push((track_id, frags));
    }
    if r.left() != 0 {
        return Err(bad("trailing bytes"));
    }
    Ok(Sidecar { moov, tables })
}

/// The index of a source from its decoded sidecar: the `moov` parsed as if read from the
/// source, the tables as stored.
pub fn to_index(sidecar: Sidecar, file_len: u64, limits: IndexLimits) -> Result<FileIndex> {
    crate::index::from_parts(file_len, &sidecar.moov, sidecar.tables, limits).map(|mut fi| {
        fi.method = IndexMethod::Sidecar;
        fi.reads = 0;
        fi
    })
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn zigzag(out: &mut Vec<u8>, v: i128) -> Result<()> {
    let v = i64::try_from(v).map_err(|_| Error::Unsupported("value out of range for a sidecar".into()))?;
    varint(out, ((v << 1) ^ (v >> 63)) as u64);
    Ok(())
}

/// FNV-1a, 64 bits: catches truncation and corruption, not tampering (whoever can write next
/// to the source can replace the source).
fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| (h ^ x as u64).wrapping_mul(0x0100_0000_01b3))
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn left(&self) -> usize {
        self.b.len() - self.at
    }
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], SidecarError> {
        if n > self.left() {
            return Err(SidecarError::Invalid("truncated".into()));
        }
        self.at += n;
        Ok(&self.b[self.at - n..self.at])
    }
    fn u8(&mut self) -> std::result::Result<u8, SidecarError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> std::result::Result<u16, SidecarError> {
        Ok(u16::from_be_bytes([self.take(1)?[0], self.take(1)?[0]]))
    }
    fn u32(&mut self) -> std::result::Result<u32, SidecarError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> std::result::Result<u64, SidecarError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn varint(&mut self) -> std::result::Result<u64, SidecarError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                break;
            }
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(SidecarError::Invalid("varint overflows 64 bits".into()))
    }
    fn zigzag(&mut self) -> std::result::Result<i128, SidecarError> {
        let u = self.varint()?;
        Ok(((u >> 1) as i64 ^ -((u & 1) as i64)) as i128)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> (Bytes, FileIndex, Bytes) {
        let data = Bytes::from(std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/demo/video_180p.cmfv")).unwrap());
        let mut b = crate::IndexBuilder::new(data.len() as u64, 1 << 30);
        while let crate::Need::Read { offset, len } = b.next_read() {
            b.feed(offset, data.slice(offset as usize..(offset + len) as usize)).unwrap();
        }
        let moov = b.moov_bytes().unwrap();
        (data, b.finish().unwrap(), moov)
    }

    #[test]
    fn round_trip_gives_the_same_index() {
        let (data, fi, moov) = demo();
        let key = SourceKey { size: data.len() as u64, key: "\"abc\"".into() };
        let enc = encode(&key, &moov, &fi).unwrap();
        let back = to_index(decode(&Bytes::from(enc.clone()), &key, IndexLimits::default()).unwrap(), data.len() as u64, IndexLimits::default()).unwrap();
        assert_eq!(back.method, IndexMethod::Sidecar);
        assert_eq!(back.tracks.len(), fi.tracks.len());
        for (a, b) in back.tracks.iter().zip(&fi.tracks) {
            assert_eq!(a.fragments, b.fragments);
            assert_eq!(a.init, b.init);
        }
        // Compact: the moov plus a few bytes per fragment.
        assert!(enc.len() < moov.len() + 64 + 20 * fi.tracks[0].fragments.len(), "{} bytes", enc.len());
    }

    #[test]
    fn another_version_of_the_source_is_stale() {
        let (data, fi, moov) = demo();
        let key = SourceKey { size: data.len() as u64, key: "\"abc\"".into() };
        let enc = Bytes::from(encode(&key, &moov, &fi).unwrap());
        for other in [SourceKey { size: key.size + 1, ..key.clone() }, SourceKey { key: "\"abd\"".into(), ..key.clone() }] {
            assert!(matches!(decode(&enc, &other, IndexLimits::default()), Err(SidecarError::Stale { .. })));
        }
    }

    #[test]
    fn every_corruption_is_refused_without_panic() {
        let (data, fi, moov) = demo();
        let key = SourceKey { size: data.len() as u64, key: "e".into() };
        let enc = encode(&key, &moov, &fi).unwrap();
        for cut in 0..enc.len() {
            assert!(decode(&Bytes::copy_from_slice(&enc[..cut]), &key, IndexLimits::default()).is_err());
        }
        for i in 0..enc.len() {
            let mut b = enc.clone();
            b[i] ^= 0x40;
            assert!(decode(&Bytes::from(b), &key, IndexLimits::default()).is_err(), "flip at {i} accepted");
        }
    }
}
