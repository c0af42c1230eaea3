//! Sample encryption: per-track protection data (shared, read-only) and a per-request
//! encryptor that encrypts samples in place and returns their `senc` entries.

use sealcast_isobmff::FourCC;

use crate::aes::{AesCtr, CtrStream, BLOCK};
use crate::boxes::{Senc, SencSample, Sinf, Tenc};
use crate::error::{Error, Result};
use crate::iv::IvDeriver;
use crate::lanes::{CbcsKey, Chain};
use crate::subsample::{check_cover, nal_subsamples, SampleFormat, SliceRule, Subsample, DEFAULT_CLEAR_PREFIX};
use crate::{ContentKey, Kid, Pattern, Scheme};

// One per track, built once and shared: its size does not matter (RustCrypto's key keeps the
// AES-NI and the software schedules), and a box would add a pointer to follow on every call.
#[allow(clippy::large_enum_variant)]
enum Cipher {
    Cenc { key: AesCtr, ivs: IvDeriver, iv_size: u8 },
    Cbcs { key: CbcsKey, iv: [u8; 16], pattern: Pattern },
}

/// How one track is protected: scheme, key, IV rule and sample layout. Built once from the
/// init segment's codec configuration and the content key, then shared read-only (it is
/// `Send + Sync`) by every request for the track.
pub struct TrackProtection {
    kid: Kid,
    format: SampleFormat,
    clear_prefix: usize,
    cipher: Cipher,
}

impl std::fmt::Debug for TrackProtection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackProtection")
            .field("scheme", &self.scheme())
            .field("kid", &crate::kid::hex(self.kid.as_bytes()))
            .field("format", &self.format)
            .field("clear_prefix", &self.clear_prefix)
            .finish_non_exhaustive()
    }
}

impl TrackProtection {
    /// `cenc` with 8-byte per-sample IVs from `ivs`.
    pub fn cenc(key: &ContentKey, format: SampleFormat, ivs: IvDeriver) -> Result<Self> {
        Self::cenc_with_iv_size(key, format, ivs, 8)
    }

    /// `cenc` with 8- or 16-byte per-sample IVs. A 16-byte IV is the 8-byte one followed by
    /// eight zero bytes (so the counter blocks, and their uniqueness, are the same).
    pub fn cenc_with_iv_size(key: &ContentKey, format: SampleFormat, ivs: IvDeriver, iv_size: u8) -> Result<Self> {
        format.validate()?;
        if !matches!(iv_size, 8 | 16) {
            return Err(Error::Param("cenc IV size must be 8 or 16"));
        }
        Ok(TrackProtection {
            kid: key.kid(),
            format,
            clear_prefix: DEFAULT_CLEAR_PREFIX,
            cipher: Cipher::Cenc { key: AesCtr::new(key.aes128_bytes()?)?, ivs, iv_size },
        })
    }

    /// `cbcs` with a constant IV: pattern 1:9 for video, whole blocks (0:0) for audio.
    pub fn cbcs(key: &ContentKey, format: SampleFormat, constant_iv: [u8; 16]) -> Result<Self> {
        format.validate()?;
        let pattern = if format.is_video() { Pattern::VIDEO } else { Pattern::FULL };
        Ok(TrackProtection {
            kid: key.kid(),
            format,
            clear_prefix: DEFAULT_CLEAR_PREFIX,
            cipher: Cipher::Cbcs { key: CbcsKey::new(key.aes128_bytes()?), iv: constant_iv, pattern },
        })
    }

    /// Overrides the `cbcs` pattern (ignored for `cenc`).
    pub fn with_pattern(mut self, p: Pattern) -> Result<Self> {
        p.validate()?;
        if let Cipher::Cbcs { pattern, .. } = &mut self.cipher {
            *pattern = p;
        }
        Ok(self)
    }

    /// Overrides the clear prefix of slice NAL units ([`DEFAULT_CLEAR_PREFIX`]).
    pub fn with_clear_prefix(mut self, bytes: usize) -> Self {
        self.clear_prefix = bytes;
        self
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        match self.cipher {
            Cipher::Cenc { .. } => Scheme::Cenc,
            Cipher::Cbcs { .. } => Scheme::Cbcs,
        }
    }

    /// The key ID.
    pub fn kid(&self) -> Kid {
        self.kid
    }

    /// The sample layout.
    pub fn format(&self) -> SampleFormat {
        self.format
    }

    /// Per-sample IV size written in `senc` (0 for `cbcs`).
    pub fn iv_size(&self) -> u8 {
        match self.cipher {
            Cipher::Cenc { iv_size, .. } => iv_size,
            Cipher::Cbcs { .. } => 0,
        }
    }

    /// The track's `tenc`.
    pub fn tenc(&self) -> Tenc {
        match &self.cipher {
            Cipher::Cenc { iv_size, .. } => Tenc::cenc(self.kid.0, *iv_size),
            Cipher::Cbcs { iv, pattern, .. } => Tenc::cbcs(self.kid.0, pattern.crypt, pattern.skip, *iv),
        }
    }

    /// The `sinf` for a sample entry whose original type is `original`.
    pub fn sinf(&self, original: FourCC) -> Sinf {
        Sinf::new(original, self.scheme().fourcc(), self.tenc())
    }

    /// An empty `senc` with this track's IV size and subsample flag.
    pub fn new_senc(&self) -> Senc {
        Senc::new(self.iv_size(), self.format.is_video())
    }

    /// A per-request encryptor.
    pub fn encryptor(&self) -> FragmentEncryptor<'_> {
        FragmentEncryptor { p: self, chains: Vec::new() }
    }

    fn rule(&self) -> SliceRule {
        SliceRule { clear_prefix: self.clear_prefix, align: matches!(self.cipher, Cipher::Cenc { .. }) }
    }
}

/// Where one sample's bytes are in a buffer, and the number its IV is derived from (its
/// absolute decode time, or its sample number: unique within the track; see [`crate::iv`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleRange {
    /// Offset of the sample in the buffer.
    pub offset: usize,
    /// Length.
    pub len: usize,
    /// IV index (`cenc`; ignored by `cbcs`).
    pub iv_index: u64,
}

/// Encrypts a request's samples for one track. Owns its scratch list; cheap to create.
pub struct FragmentEncryptor<'a> {
    p: &'a TrackProtection,
    /// `cbcs`: the chains waiting to be encrypted together ([`crate::lanes`]).
    chains: Vec<Chain>,
}

/// `cbcs` out of place: bytes copied between runs of the chains gathered so far, so the
/// copy is still in cache (L2) when the chains are encrypted.
const CBCS_BATCH: usize = 256 * 1024;

impl FragmentEncryptor<'_> {
    /// Encrypts the samples of one fragment in place (`samples` must not overlap) and returns
    /// the fragment's `senc`, one entry per sample in the order given.
    ///
    /// Every sample is mapped before any is encrypted: on error the buffer is untouched.
    pub fn encrypt_samples(&mut self, buf: &mut [u8], samples: &[SampleRange]) -> Result<Senc> {
        let mut senc = self.p.new_senc();
        senc.samples.reserve_exact(samples.len());
        for (i, r) in samples.iter().enumerate() {
            let end = r.offset.checked_add(r.len).filter(|&e| e <= buf.len());
            let end = end.ok_or(Error::SampleOutOfBounds { sample: i, offset: r.offset, len: r.len, buf_len: buf.len() })?;
            senc.samples.push(self.map(&buf[r.offset..end], i)?);
        }
        if let Cipher::Cbcs { .. } = self.p.cipher {
            // Every chain of the fragment at once: [`crate::lanes`].
            self.chains.clear();
            for (r, s) in samples.iter().zip(&senc.samples) {
                push_chains(&mut self.chains, self.p.format.is_video(), r.offset, r.len, &s.subsamples);
            }
            self.encrypt_chains(buf)?;
            return Ok(senc);
        }
        for (r, s) in samples.iter().zip(senc.samples.iter_mut()) {
            // Bounds were checked above.
            s.iv = self.crypt(&mut buf[r.offset..r.offset + r.len], r.iv_index, &s.subsamples)?;
        }
        Ok(senc)
    }

    /// [`Self::encrypt_samples`] out of place, for a source shared with other readers: `dst`
    /// holds the output for the start of `src` and is extended, sample by sample, with the
    /// bytes between samples and each sample encrypted. `cenc` runs the cipher from `src`
    /// into `dst`, so each byte is read once and written once; `cbcs` (nine blocks in ten
    /// clear) copies the samples, [`CBCS_BATCH`] bytes at a time, and encrypts the chains of
    /// each batch together while the copy is in cache. Either way there is no copy of the
    /// whole source first. `samples` must lie in increasing order at or past `dst`'s end.
    ///
    /// Every sample is mapped before any is copied: on error `dst` is unchanged.
    pub fn encrypt_samples_from(&mut self, src: &[u8], dst: &mut Vec<u8>, samples: &[SampleRange]) -> Result<Senc> {
        let mut senc = self.p.new_senc();
        senc.samples.reserve_exact(samples.len());
        let mut at = dst.len();
        for (i, r) in samples.iter().enumerate() {
            let end = r.offset.checked_add(r.len).filter(|&e| e <= src.len());
            let end = end.ok_or(Error::SampleOutOfBounds { sample: i, offset: r.offset, len: r.len, buf_len: src.len() })?;
            if r.offset < at {
                return Err(Error::Param("out-of-place encryption needs samples in increasing order"));
            }
            at = end;
            senc.samples.push(self.map(&src[r.offset..end], i)?);
        }
        if let Cipher::Cbcs { .. } = self.p.cipher {
            // `dst` holds the output for `src` from its start: offsets are the same in both.
            self.chains.clear();
            let base = dst.len();
            let mut batch_from = base;
            for (r, s) in samples.iter().zip(&senc.samples) {
                // Ordered and in bounds (checked above).
                dst.extend_from_slice(&src[dst.len()..r.offset + r.len]);
                push_chains(&mut self.chains, self.p.format.is_video(), r.offset, r.len, &s.subsamples);
                if dst.len() - batch_from >= CBCS_BATCH {
                    self.encrypt_chains(dst).inspect_err(|_| dst.truncate(base))?;
                    self.chains.clear();
                    batch_from = dst.len();
                }
            }
            self.encrypt_chains(dst).inspect_err(|_| dst.truncate(base))?;
            return Ok(senc);
        }
        for (r, s) in samples.iter().zip(senc.samples.iter_mut()) {
            // Ordered and in bounds (checked above).
            dst.extend_from_slice(&src[dst.len()..r.offset]);
            s.iv = self.crypt_into(&src[r.offset..r.offset + r.len], dst, r.iv_index, &s.subsamples)?;
        }
        Ok(senc)
    }

    /// Encrypts one sample in place following a subsample map the caller made (for video
    /// tracks; it must cover the sample exactly). Audio tracks take an empty map.
    pub fn encrypt_sample_with_map(&mut self, sample: &mut [u8], iv_index: u64, subs: &[Subsample], sample_index: usize) -> Result<SencSample> {
        if self.p.format.is_video() {
            check_cover(subs, sample.len(), sample_index)?;
            check_count(subs)?;
        } else if !subs.is_empty() {
            return Err(Error::Param("whole-sample tracks take no subsample map"));
        }
        let iv = self.crypt(sample, iv_index, subs)?;
        Ok(SencSample { iv, subsamples: subs.to_vec() })
    }

    /// The subsample map of a sample (empty for whole-sample tracks).
    fn map(&self, sample: &[u8], sample_index: usize) -> Result<SencSample> {
        let mut s = SencSample::default();
        nal_subsamples(self.p.format, self.p.rule(), sample, sample_index, &mut s.subsamples)?;
        check_count(&s.subsamples)?;
        Ok(s)
    }

    /// `cbcs`: encrypts the chains gathered in `self.chains` (offsets into `buf`) from the
    /// constant IV, along the video pattern or, for audio, whole blocks.
    fn encrypt_chains(&self, buf: &mut [u8]) -> Result<()> {
        let Cipher::Cbcs { key, iv, pattern } = &self.p.cipher else {
            return Err(Error::Param("cenc has no chains"));
        };
        let pattern = if self.p.format.is_video() { *pattern } else { Pattern::FULL };
        key.encrypt(*iv, pattern, buf, &self.chains)
    }

    /// Appends `sample` encrypted with `cenc` along a map that covers it (or an empty map:
    /// whole sample) to `dst`, running the cipher from `sample` into `dst` (each byte read
    /// once, written once); the IV. (`cbcs` goes by batches: [`Self::encrypt_samples_from`].)
    fn crypt_into(&mut self, sample: &[u8], dst: &mut Vec<u8>, iv_index: u64, subs: &[Subsample]) -> Result<[u8; 16]> {
        let Cipher::Cenc { key, ivs, .. } = &self.p.cipher else {
            return Err(Error::Param("cbcs is encrypted by batches"));
        };
        let counter = ivs.counter_block(iv_index);
        let mut ks = CtrStream::new(key, counter);
        if self.p.format.is_video() {
            let mut at = 0usize;
            for s in subs {
                let clear_end = at + s.clear as usize;
                let end = clear_end + s.protected as usize;
                dst.extend_from_slice(&sample[at..clear_end]);
                ks.extend_from(&sample[clear_end..end], dst)?;
                at = end;
            }
            // Maps cover their sample; should one fall short, its tail stays clear, as in place.
            dst.extend_from_slice(&sample[at..]);
        } else {
            ks.extend_from(sample, dst)?;
        }
        let mut iv_out = [0u8; 16];
        iv_out[..8].copy_from_slice(&counter[..8]);
        Ok(iv_out)
    }

    /// Encrypts a sample along a map that covers it (or an empty map: whole sample); the IV.
    fn crypt(&mut self, sample: &mut [u8], iv_index: u64, subs: &[Subsample]) -> Result<[u8; 16]> {
        let video = self.p.format.is_video();
        let mut iv_out = [0u8; 16];
        match &self.p.cipher {
            Cipher::Cenc { key, ivs, .. } => {
                let counter = ivs.counter_block(iv_index);
                iv_out[..8].copy_from_slice(&counter[..8]);
                let mut ks = CtrStream::new(key, counter);
                if video {
                    let mut at = 0usize;
                    for s in subs {
                        at += s.clear as usize;
                        let end = at + s.protected as usize;
                        ks.apply(&mut sample[at..end])?;
                        at = end;
                    }
                } else {
                    ks.apply(sample)?;
                }
            }
            Cipher::Cbcs { .. } => {
                self.chains.clear();
                push_chains(&mut self.chains, video, 0, sample.len(), subs);
                self.encrypt_chains(sample)?;
            }
        }
        Ok(iv_out)
    }
}

/// `senc` counts subsamples in 16 bits.
fn check_count(subs: &[Subsample]) -> Result<()> {
    if subs.len() > u16::MAX as usize {
        return Err(Error::TooLarge { what: "subsample_count", value: subs.len() as u64 });
    }
    Ok(())
}

/// Encrypts the samples of one fragment in place with a fresh encryptor (see
/// [`FragmentEncryptor::encrypt_samples`]).
pub fn encrypt_samples(p: &TrackProtection, buf: &mut [u8], samples: &[SampleRange]) -> Result<Senc> {
    p.encryptor().encrypt_samples(buf, samples)
}

/// The `cbcs` chains of the sample at `offset` (`len` bytes) along its subsample map: one
/// per protected range for video (the CBC chain restarts from the constant IV in each), the
/// whole sample for audio; a trailing partial block stays clear.
fn push_chains(chains: &mut Vec<Chain>, video: bool, offset: usize, len: usize, subs: &[Subsample]) {
    if !video {
        chains.push(Chain { start: offset, blocks: len / BLOCK });
        return;
    }
    let mut at = offset;
    for s in subs {
        at += s.clear as usize;
        chains.push(Chain { start: at, blocks: s.protected as usize / BLOCK });
        at += s.protected as usize;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ContentKey {
        ContentKey::aes128(Kid([0x11; 16]), crate::KeyKind::CommonEncryption, [0x22; 16])
    }

    #[test]
    fn params_are_checked() {
        let k = key();
        assert!(TrackProtection::cenc_with_iv_size(&k, SampleFormat::Whole, IvDeriver::from_base(0), 12).is_err());
        assert!(TrackProtection::cenc(&k, SampleFormat::Avc { nal_length_size: 3 }, IvDeriver::from_base(0)).is_err());
        let p = TrackProtection::cbcs(&k, SampleFormat::Whole, [0; 16]).unwrap();
        assert!(p.with_pattern(Pattern { crypt: 0, skip: 9 }).is_err());
        let p = TrackProtection::cbcs(&k, SampleFormat::Avc { nal_length_size: 4 }, [1; 16]).unwrap();
        assert_eq!(p.tenc(), Tenc::cbcs([0x11; 16], 1, 9, [1; 16]));
        assert_eq!(TrackProtection::cbcs(&k, SampleFormat::Whole, [1; 16]).unwrap().tenc(), Tenc::cbcs([0x11; 16], 0, 0, [1; 16]));
        assert!(format!("{:?}", k).contains("redacted"));
    }

    #[test]
    fn shared_across_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<TrackProtection>();
    }

    #[test]
    fn out_of_bounds_samples_are_errors() {
        let p = TrackProtection::cenc(&key(), SampleFormat::Whole, IvDeriver::from_base(0)).unwrap();
        let mut buf = [0u8; 10];
        let r = [SampleRange { offset: 4, len: 7, iv_index: 0 }];
        assert!(matches!(encrypt_samples(&p, &mut buf, &r), Err(Error::SampleOutOfBounds { sample: 0, .. })));
        let r = [SampleRange { offset: usize::MAX, len: 2, iv_index: 0 }];
        assert!(encrypt_samples(&p, &mut buf, &r).is_err());
    }

    #[test]
    fn out_of_place_equals_in_place() {
        // AVC samples (4-byte lengths, one slice NAL each) between bytes that are not samples.
        let mut src = vec![0xEEu8; 7];
        let mut ranges = Vec::new();
        for (i, n) in [40usize, 300, 17, 1200].into_iter().enumerate() {
            let at = src.len();
            src.extend_from_slice(&(n as u32).to_be_bytes());
            src.push(0x65);
            src.extend((1..n).map(|j| (i * 31 + j) as u8));
            ranges.push(SampleRange { offset: at, len: n + 4, iv_index: i as u64 * 3000 });
            src.extend_from_slice(&[0xDD; 9]);
        }
        let video = SampleFormat::Avc { nal_length_size: 4 };
        let schemes = |f| [TrackProtection::cenc(&key(), f, IvDeriver::from_base(7)).unwrap(), TrackProtection::cbcs(&key(), f, [3; 16]).unwrap()];
        // The same bytes as whole samples (audio): odd lengths, so a partial block ends each.
        for p in schemes(video).into_iter().chain(schemes(SampleFormat::Whole)) {
            let mut in_place = src.clone();
            let want = p.encryptor().encrypt_samples(&mut in_place, &ranges).unwrap();
            // In two calls, as fragments come, then the rest of the source.
            let mut enc = p.encryptor();
            let mut out = Vec::new();
            let mut got = enc.encrypt_samples_from(&src, &mut out, &ranges[..1]).unwrap().samples;
            got.extend(enc.encrypt_samples_from(&src, &mut out, &ranges[1..]).unwrap().samples);
            out.extend_from_slice(&src[out.len()..]);
            assert_eq!(got, want.samples);
            assert_eq!(out, in_place);
            // Samples must come in order past what was copied; nothing is copied on error.
            let mut out = Vec::new();
            let backwards = [ranges[1], ranges[0]];
            assert!(p.encryptor().encrypt_samples_from(&src, &mut out, &backwards).is_err());
            assert!(out.is_empty());
        }
    }
}
