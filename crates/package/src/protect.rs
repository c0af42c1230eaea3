//! Common Encryption of CMAF output, per request: the samples of a segment are encrypted in
//! place in the request's own buffer read from storage, or in one pass out of a cached
//! buffer ([`encrypt_source`]), and each `traf` gains
//! `saiz`, `saio` and `senc`. The protection data ([`TrackProtection`]: key schedule, IV
//! rule, sample layout) is built once per track and shared; everything here is per request.
//!
//! IVs (`cenc`) are indexed by each sample's absolute decode time, so a segment is encrypted
//! the same way whichever node builds it and whatever came before it (see
//! [`sealcast_cenc::iv`]).

use bytes::{Bytes, BytesMut};
use sealcast_cenc::boxes::Senc;
use sealcast_cenc::{SampleFormat, SampleRange, TrackProtection};

use crate::error::{Error, Result};
use crate::fmp4::{write_segment_with, Chunks, SourceFragment};
use crate::track::{CodecConfig, TrackInfo};

/// How a track's samples are laid out for the encryptor: NAL units with their length size
/// (H.264, HEVC) or whole samples (AAC).
pub fn sample_format(info: &TrackInfo) -> SampleFormat {
    match &info.config {
        CodecConfig::Avc(c) => SampleFormat::Avc { nal_length_size: c.nal_length_size },
        CodecConfig::Hevc(c) => SampleFormat::Hevc { nal_length_size: c.nal_length_size },
        CodecConfig::Aac { .. } => SampleFormat::Whole,
    }
}

/// Encrypts, in place, the samples of `frags` held in `buf` (the bytes read from file offset
/// `data_offset`) and returns each fragment's `senc`. Fragments that start before
/// `clear_until` (decode time, track timescale) stay clear and get `None`.
///
/// Nothing is written unless every sample of every fragment can be mapped: on error `buf` is
/// unchanged for the fragment that failed (earlier fragments may be encrypted; callers drop
/// the buffer on error).
pub fn encrypt_fragments(frags: &[SourceFragment], buf: &mut [u8], data_offset: u64, p: &TrackProtection, clear_until: u64) -> Result<Vec<Option<Senc>>> {
    let mut enc = p.encryptor();
    each_fragment(frags, data_offset, clear_until, |sf, ranges| enc.encrypt_samples(buf, ranges).map_err(|e| encryption(sf, e)))
}

/// The samples of `frags` in `data` (read from file offset `data_offset`) encrypted, and each
/// fragment's `senc` ([`encrypt_fragments`]). In place when this request holds the only
/// handle to the buffer (a fresh storage read). Otherwise (a cached or memory-mapped buffer
/// other requests share) out of place in one pass: each sample encrypted from the source into
/// the output (`cenc`) or copied, 256 KiB at a time, and encrypted while in cache (`cbcs`)
/// ([`sealcast_cenc::FragmentEncryptor::encrypt_samples_from`]), not the whole source copied
/// first and encrypted after; a source whose samples are not in increasing
/// order (a progressive file's chunks may not be) is copied first.
pub fn encrypt_source(frags: &[SourceFragment], data: Bytes, data_offset: u64, p: &TrackProtection, clear_until: u64) -> Result<(Bytes, Vec<Option<Senc>>)> {
    let ordered = || frags.iter().flat_map(|f| &f.traf.samples).try_fold(0u64, |end, s| (s.offset >= end).then(|| s.offset.saturating_add(u64::from(s.size)))).is_some();
    let mut buf = match data.try_into_mut() {
        Ok(own) => own,
        Err(shared) if ordered() => {
            let mut enc = p.encryptor();
            let mut out = Vec::with_capacity(shared.len());
            let sencs = each_fragment(frags, data_offset, clear_until, |sf, ranges| enc.encrypt_samples_from(&shared, &mut out, ranges).map_err(|e| encryption(sf, e)))?;
            out.extend_from_slice(&shared[out.len()..]);
            return Ok((Bytes::from(out), sencs));
        }
        Err(shared) => BytesMut::from(&shared[..]),
    };
    let sencs = encrypt_fragments(frags, &mut buf, data_offset, p, clear_until)?;
    Ok((buf.freeze(), sencs))
}

/// Runs `encrypt` over the sample ranges (in the read buffer) of each fragment of `frags`
/// from `clear_until` on; `None` for the clear-lead fragments before it.
fn each_fragment(frags: &[SourceFragment], data_offset: u64, clear_until: u64, mut encrypt: impl FnMut(&SourceFragment, &[SampleRange]) -> Result<Senc>) -> Result<Vec<Option<Senc>>> {
    let mut out = Vec::with_capacity(frags.len());
    let mut ranges = Vec::new();
    for sf in frags {
        if sf.decode_time < clear_until {
            out.push(None);
            continue;
        }
        ranges.clear();
        let mut t = sf.decode_time;
        for s in &sf.traf.samples {
            let offset = s.offset.checked_sub(data_offset).ok_or_else(|| Error::Read("sample before the read range".into()))?;
            let offset = usize::try_from(offset).map_err(|_| Error::Read("sample offset too large".into()))?;
            ranges.push(SampleRange { offset, len: s.size as usize, iv_index: t });
            t = t.saturating_add(s.duration as u64);
        }
        out.push(Some(encrypt(sf, &ranges)?));
    }
    Ok(out)
}

fn encryption(sf: &SourceFragment, e: sealcast_cenc::Error) -> Error {
    Error::Unsupported(format!("track {}: encryption: {e}", sf.traf.tfhd.track_id))
}

/// Writes a protected CMAF media segment: the samples of `frags` encrypted in place in
/// `data` (the segment's source read, from file offset `data_offset`), `moof`s with
/// `saiz`/`saio`/`senc`, and `mdat` payloads that are slices of the encrypted buffer.
///
/// Clear-lead fragments (starting before `clear_until`) stay clear and point their `tfhd` at
/// the clear copy of the sample entry, which the init must then carry
/// (`InitProtection::clear_entry`). `trex_index` is the track's default sample description
/// index (`trex`).
pub fn write_segment_encrypted(frags: &[SourceFragment], data: Bytes, data_offset: u64, p: &TrackProtection, clear_until: u64, trex_index: u32) -> Result<Chunks> {
    let (buf, sencs) = encrypt_source(frags, data, data_offset, p, clear_until)?;
    write_segment_with(frags, &buf, data_offset, &sencs, trex_index)
}
