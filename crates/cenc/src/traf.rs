//! The encryption boxes of a `traf`: `saiz`, `saio` and `senc`, written after the `trun`s
//! with `saio` pointing into `senc` (offsets from the start of the `moof`, as Shaka Packager
//! writes them with `tfhd` default-base-is-moof).

use sealcast_isobmff::Atom;

use crate::boxes::{Saio, Saiz, Senc};
use crate::error::{Error, Result};

/// Bytes from the start of a `senc` box (32-bit size form) to its first per-sample byte:
/// header (8), version and flags (4), sample_count (4).
pub const SENC_AUX_START: u64 = 16;

/// The `saio` offset for a `senc` box that starts `senc_pos` bytes after the start of the
/// `moof`: where its first per-sample byte is.
pub fn saio_offset(senc_pos: u64) -> u64 {
    senc_pos + SENC_AUX_START
}

/// Bytes [`write_aux_boxes`] will write for `senc` (to size a `moof` before writing it).
pub fn aux_boxes_len(senc: &Senc) -> Result<usize> {
    let senc_len = 16 + senc.samples.iter().map(|s| senc.aux_size(s)).sum::<usize>();
    if senc.is_aux_empty() {
        return Ok(senc_len);
    }
    Ok(Saiz::for_senc(senc)?.encoded_len() + Saio::single(0).encoded_len() + senc_len)
}

/// Appends `saiz`, `saio` and `senc` (in that order, the last boxes of the `traf`) to
/// `out`, a buffer holding a `moof` being written from index `moof_start`.
///
/// `saio` gets its final offset here, so nothing before `senc` in the `moof` may change
/// size afterwards (patching `trun` data offsets in place is fine). When there is no aux
/// info at all (`cbcs` audio: constant IV, whole-sample) only `senc` is written, with its
/// sample count, as Shaka Packager does.
pub fn write_aux_boxes(out: &mut Vec<u8>, moof_start: usize, senc: &Senc) -> Result<()> {
    if senc.samples.len() > u32::MAX as usize {
        return Err(Error::TooLarge { what: "senc sample_count", value: senc.samples.len() as u64 });
    }
    if senc.is_aux_empty() {
        senc.encode(out);
        return Ok(());
    }
    Saiz::for_senc(senc)?.encode(out);
    let saio = Saio::single(0);
    let field = out.len() + saio.first_offset_position();
    saio.encode(out);
    let senc_pos = out.len().checked_sub(moof_start).ok_or(Error::Param("moof_start past the end of the buffer"))?;
    senc.encode(out);
    // A senc over 4 GiB would take the 64-bit size form, moving its body by 8 bytes.
    let large = out[moof_start + senc_pos..][..4] == [0, 0, 0, 1];
    let offset = saio_offset(senc_pos as u64) + if large { 8 } else { 0 };
    let offset = u32::try_from(offset).map_err(|_| Error::TooLarge { what: "saio offset", value: offset })?;
    out[field..field + 4].copy_from_slice(&offset.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boxes::SencSample;
    use crate::subsample::Subsample;
    use crate::testutil::hex;

    #[test]
    fn offsets_point_into_senc() {
        let mut senc = Senc::new(8, true);
        for i in 0..3u8 {
            let mut s = SencSample { iv: [i; 16], subsamples: vec![Subsample { clear: 100, protected: 32 }] };
            s.iv[8..].fill(0);
            senc.samples.push(s);
        }
        let mut out = b"junkmoof-header".to_vec();
        let moof_start = 4;
        write_aux_boxes(&mut out, moof_start, &senc).unwrap();
        assert_eq!(out.len() - 15, aux_boxes_len(&senc).unwrap());
        let saiz_len = 17;
        let saio = Saio::decode(&out[15 + saiz_len..15 + saiz_len + 20]).unwrap();
        let at = moof_start + saio.offsets[0] as usize;
        assert_eq!(&out[at..at + 8], &[0u8; 8]);
        assert_eq!(&out[at + 8..at + 10], &hex("0001")[..]);
        assert_eq!(&out[at + 16..at + 24], &[1u8; 8]);
        // cbcs audio: senc only.
        let mut senc = Senc::new(0, false);
        senc.samples = vec![SencSample::default(); 5];
        let mut out = Vec::new();
        write_aux_boxes(&mut out, 0, &senc).unwrap();
        assert_eq!(out, hex("00000010 73656e63 00000000 00000005"));
        assert_eq!(aux_boxes_len(&senc).unwrap(), 16);
    }
}
