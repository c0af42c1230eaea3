//! Apple HLS SAMPLE-AES ("MPEG-2 Stream Encryption Format for HTTP Live Streaming"):
//! which bytes of H.264 NAL units and AAC frames are encrypted, emulation prevention over
//! the encrypted NAL units, and the PMT signalling.
//!
//! # Layout (from the spec's listings)
//!
//! * **H.264**: only NAL units of type 1 and 5. The NAL header byte and the 31 bytes after
//!   it stay clear; then, while more than 16 bytes remain, one 16-byte block is encrypted
//!   and up to 144 bytes (nine blocks) follow in the clear. "More than 16" means a block
//!   that would end exactly at the end of the NAL unit stays clear, and a NAL unit of 48
//!   bytes or fewer is not touched at all. AES-128-CBC, the IV restarting at every NAL unit
//!   and the chain running through that NAL unit's encrypted blocks only.
//! * **AAC** (ADTS): the ADTS header and the next 16 bytes stay clear, then every whole
//!   16-byte block is encrypted, the trailing partial block stays clear; CBC with the IV
//!   restarting at every frame. Sizes do not change.
//!
//! # Emulation prevention
//!
//! The spec: "Each NAL unit is formed with start code emulation prevention applied"; the
//! decryptors we checked (ffmpeg's `hls_sample_encryption.c`, hls.js, Chromium's
//! `es_parser_h264.cc`) all strip every `00 00 03` emulation prevention byte from an
//! encrypted NAL unit, decrypt the 1:9 pattern on the stripped bytes, and hand the result
//! to the decoder **without re-inserting anything**. So the bytes that are encrypted must
//! be the NAL unit exactly as the decoder wants it, i.e. as it sits in the MP4 sample
//! (with the encoder's own emulation prevention bytes), and emulation prevention is then
//! applied once more over the whole encrypted NAL unit (clear leader included) so that no
//! start code can appear in the ciphertext. What we do:
//!
//! 1. take the NAL unit unchanged (nothing removed; its own `03` bytes count as data),
//! 2. encrypt the 1:9 pattern in place (offsets counted on those bytes),
//! 3. write it with a `03` inserted after every `00 00` that is followed by a byte ≤ 3.
//!
//! A decryptor's removal of all `00 00 03` bytes undoes exactly step 3 (our insertions
//! and the encoder's `03` bytes, which step 3 protected with a `03` of their own), leaving
//! the step-2 bytes. Removing the encoder's bytes *before* encrypting instead would make
//! those decryptors hand the decoder a NAL unit without emulation prevention, which
//! decodes differently whenever the slice had any (ffmpeg test in `tests/`). NAL units we
//! do not encrypt are copied unchanged (no step 3): a decryptor must not see them grow
//! past 48 bytes and take them for encrypted ones.

use std::fmt;

use sealcast_cenc::multibuf::{encrypt_many, Message, MultiKey};
use sealcast_codecs::nal::NalCodec;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::mux::EsHook;
use crate::{Codec, Error};

/// Key and IV of an HLS SAMPLE-AES segment (`EXT-X-KEY:METHOD=SAMPLE-AES`).
///
/// `Debug` prints the IV (the playlist carries it) but never the key. Not `Copy`: the key is
/// wiped when a value is dropped, which a bitwise copy would escape.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SampleAes {
    /// AES-128 content key.
    pub key: [u8; 16],
    /// Initialisation vector, restarted at every NAL unit and audio frame.
    pub iv: [u8; 16],
}

impl fmt::Debug for SampleAes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let iv: String = self.iv.iter().map(|b| format!("{b:02x}")).collect();
        f.debug_struct("SampleAes")
            .field("key", &"<redacted>")
            .field("iv", &iv)
            .finish()
    }
}

/// AES block size.
const BLOCK: usize = 16;
/// Clear bytes at the start of an encrypted NAL unit (header byte + 31).
const NAL_CLEAR_LEADER: usize = 32;
/// Clear bytes after each encrypted block of a NAL unit, at most (nine blocks).
const NAL_SKIP: usize = 144;
/// Clear bytes after the ADTS header of an audio frame.
const AUDIO_CLEAR_LEADER: usize = 16;
/// Longest AudioSpecificConfig we put into the PMT's audio setup information: the PMT
/// must fit one TS packet (the spec says so too) and real configs are 2 to 5 bytes.
pub(crate) const MAX_SETUP_DATA: usize = 64;

/// PMT stream_type of SAMPLE-AES H.264.
pub const STREAM_TYPE_H264: u8 = 0xDB;
/// PMT stream_type of SAMPLE-AES AAC in ADTS.
pub const STREAM_TYPE_AAC: u8 = 0xCF;

/// Whether SAMPLE-AES encrypts this H.264 NAL unit (types 1 and 5, more than 48 bytes).
pub(crate) fn is_encrypted_nal(nal: &[u8]) -> bool {
    nal.len() > NAL_CLEAR_LEADER + BLOCK && matches!(NalCodec::Avc.nal_type(nal[0]), 1 | 5)
}

/// Offsets of the encrypted 16-byte blocks in a NAL unit of `len` bytes, following
/// Listing 2-1 literally (empty for 48 bytes or fewer).
pub(crate) fn nal_blocks(len: usize) -> impl Iterator<Item = usize> {
    let mut pos = NAL_CLEAR_LEADER;
    std::iter::from_fn(move || {
        // `pos < len` with more than one block left: encrypt one, skip up to nine.
        if pos < len && len - pos > BLOCK {
            let at = pos;
            pos += BLOCK;
            pos += NAL_SKIP.min(len - pos);
            Some(at)
        } else {
            None
        }
    })
}

/// The encrypted range of a raw AAC frame of `len` bytes (after its ADTS header).
pub(crate) fn audio_range(len: usize) -> std::ops::Range<usize> {
    let n = len.saturating_sub(AUDIO_CLEAR_LEADER) / BLOCK * BLOCK;
    AUDIO_CLEAR_LEADER..AUDIO_CLEAR_LEADER + n
}

/// Inserts an emulation_prevention_three_byte after every `00 00` followed by a byte ≤ 3
/// (ITU-T H.264 7.4.1) in `buf[from..]`, so no start code prefix can occur there. Each
/// `00 00` is found with `memchr`'s vectorised substring search (in encrypted slice data one
/// is due every few hundred kilobytes), and the bytes after an insertion are moved once, from
/// the back, so a NAL unit with no insertion is only read.
pub(crate) fn escape_in_place(buf: &mut Vec<u8>, from: usize) {
    let mut at: Vec<usize> = Vec::new();
    let mut pos = from;
    while let Some(i) = memchr::memmem::find(&buf[pos..], &[0, 0]) {
        let next = pos + i + 2;
        match buf.get(next) {
            // The zero run starts again at `next` (a `00` there counts as its first zero).
            Some(&b) if b <= 3 => {
                at.push(next);
                pos = next;
            }
            Some(_) => pos = next + 1,
            None => break,
        }
    }
    if at.is_empty() {
        return;
    }
    let old = buf.len();
    buf.resize(old + at.len(), 0);
    // Move each stretch between insertions to its place, last first, and put a 03 before it.
    let mut end = old;
    for (k, &i) in at.iter().enumerate().rev() {
        let shift = k + 1;
        buf.copy_within(i..end, i + shift);
        buf[i + shift - 1] = 3;
        end = i;
    }
}

/// The SAMPLE-AES payload hook: one per segment, owning its scratch buffers.
pub(crate) struct SampleAesHook {
    key: MultiKey,
    iv: [u8; 16],
    /// A NAL unit's encrypted blocks gathered for one CBC call.
    blocks: Vec<u8>,
    /// The encrypted range of every audio frame so far, in the transformed bytes: each its
    /// own chain from the IV, all encrypted together in [`EsHook::finish`] (audio sizes do
    /// not depend on the ciphertext, so nothing waits for them).
    audio: Vec<std::ops::Range<usize>>,
}

impl SampleAesHook {
    pub(crate) fn new(p: &SampleAes) -> Result<Self, Error> {
        Ok(SampleAesHook {
            key: MultiKey::new(&p.key).map_err(|_| Error::Crypto("AES key setup"))?,
            iv: p.iv,
            blocks: Vec::new(),
            audio: Vec::new(),
        })
    }
}

impl EsHook for SampleAesHook {
    const IDENTITY: bool = false;

    fn accepts(&self, codec: &Codec) -> Result<(), &'static str> {
        match codec {
            Codec::H264 { .. } => Ok(()),
            // Apple's format defines H.264 only; HEVC in TS has no SAMPLE-AES signalling.
            Codec::Hevc { .. } => Err("HEVC (the format defines H.264, AAC, AC-3 and E-AC-3 only)"),
            Codec::Aac {
                audio_specific_config,
            } if audio_specific_config.len() > MAX_SETUP_DATA => {
                Err("an AudioSpecificConfig this long (PMT must fit one packet)")
            }
            Codec::Aac { .. } => Ok(()),
        }
    }

    fn video_nal(&mut self, nal: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if !is_encrypted_nal(nal) {
            out.extend_from_slice(nal);
            return Ok(());
        }
        // The NAL unit goes to `out` as it is; its 1-in-10 blocks are gathered, encrypted in
        // one CBC call (the chain runs through them), scattered back; then escaped in place.
        let start = out.len();
        out.extend_from_slice(nal);
        self.blocks.clear();
        for at in nal_blocks(nal.len()) {
            self.blocks.extend_from_slice(&nal[at..at + BLOCK]);
        }
        self.key
            .cbc()
            .encrypt(self.iv, &mut self.blocks)
            .map_err(|_| Error::Crypto("AES-CBC"))?;
        let written = &mut out[start..];
        for (at, block) in nal_blocks(nal.len()).zip(self.blocks.chunks_exact(BLOCK)) {
            written[at..at + BLOCK].copy_from_slice(block);
        }
        escape_in_place(out, start);
        Ok(())
    }

    fn audio_frame(&mut self, frame: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let start = out.len();
        out.extend_from_slice(frame);
        let r = audio_range(frame.len());
        if !r.is_empty() {
            self.audio.push(start + r.start..start + r.end);
        }
        Ok(())
    }

    fn finish(&mut self, es: &mut [u8]) -> Result<(), Error> {
        // Carve each frame's range out of `es` (they were appended in order, so they are
        // increasing and disjoint), then encrypt them all, up to eight chains at a time.
        let mut msgs = Vec::with_capacity(self.audio.len());
        let mut rest: &mut [u8] = es;
        let mut base = 0;
        for r in self.audio.drain(..) {
            let (Some(skip), Some(len)) = (r.start.checked_sub(base), r.end.checked_sub(r.start)) else {
                return Err(Error::Internal("SAMPLE-AES audio ranges out of order"));
            };
            if skip + len > rest.len() {
                return Err(Error::Internal("SAMPLE-AES audio range past the payloads"));
            }
            let (data, after) = std::mem::take(&mut rest)[skip..].split_at_mut(len);
            msgs.push(Message { key: &self.key, iv: self.iv, data });
            rest = after;
            base = r.end;
        }
        encrypt_many(&mut msgs).map_err(|_| Error::Crypto("AES-CBC"))
    }

    fn pmt_entry(&self, codec: &Codec, clear: u8, d: &mut Vec<u8>) -> u8 {
        match codec {
            Codec::H264 { .. } => {
                private_data_indicator(d, b"zavc");
                STREAM_TYPE_H264
            }
            Codec::Aac {
                audio_specific_config,
            } => {
                private_data_indicator(d, b"aacd");
                // registration_descriptor: format_identifier 'apad', then the audio setup
                // information: audio_type, priming (u16), version, setup_data_length,
                // setup_data (the AudioSpecificConfig). accepts() bounded its length.
                let asc = &audio_specific_config[..audio_specific_config.len().min(MAX_SETUP_DATA)];
                d.extend_from_slice(&[0x05, (4 + 8 + asc.len()) as u8]);
                d.extend_from_slice(b"apad");
                d.extend_from_slice(aac_audio_type(asc));
                d.extend_from_slice(&[0, 0, 1, asc.len() as u8]);
                d.extend_from_slice(asc);
                STREAM_TYPE_AAC
            }
            // Refused by accepts() before anything is written.
            Codec::Hevc { .. } => clear,
        }
    }
}

/// private_data_indicator_descriptor (ISO/IEC 13818-1 2.6.29), tag 0x0F.
fn private_data_indicator(d: &mut Vec<u8>, fourcc: &[u8; 4]) {
    d.extend_from_slice(&[0x0F, 4]);
    d.extend_from_slice(fourcc);
}

/// audio_type of the setup information: 'zach' for explicit HE-AAC (SBR, object type 5),
/// 'zacp' for explicit HE-AACv2 (PS, 29), 'zaac' otherwise (AAC-LC and the other cores;
/// implicitly signalled SBR cannot be seen in the config).
fn aac_audio_type(asc: &[u8]) -> &'static [u8; 4] {
    let object_type = asc.first().map_or(0, |b| b >> 3);
    match object_type {
        5 => b"zach",
        29 => b"zacp",
        _ => b"zaac",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealcast_cenc::aes::AesCbc;
    use cbc::cipher::{BlockDecryptMut, KeyIvInit};

    const KEY: [u8; 16] = [
        0x69, 0xea, 0xa8, 0x02, 0xa6, 0x76, 0x3a, 0xf9, 0x79, 0xe8, 0xd1, 0x94, 0x0f, 0xb8, 0x83,
        0x92,
    ];
    const IV: [u8; 16] = [
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
        0xef,
    ];

    fn hook() -> SampleAesHook {
        SampleAesHook::new(&SampleAes { key: KEY, iv: IV }).unwrap()
    }

    /// An independent decryptor written from the spec and from what ffmpeg, hls.js and
    /// Chromium do: strip every `00 00 03`, then CBC-decrypt (RustCrypto) the blocks the
    /// listing names, chained within the NAL unit.
    fn decrypt_nal(stream: &[u8]) -> Vec<u8> {
        if !(stream.len() > 48 && matches!(stream[0] & 0x1F, 1 | 5)) {
            return stream.to_vec();
        }
        let mut d = unescape(stream);
        let mut dec = cbc::Decryptor::<aes::Aes128>::new(&KEY.into(), &IV.into());
        let (mut pos, len) = (32, d.len());
        while pos < len {
            if len - pos > 16 {
                dec.decrypt_block_mut((&mut d[pos..pos + 16]).into());
                pos += 16;
            }
            pos += 144.min(len - pos);
        }
        d
    }

    /// Every `00 00 03` loses its `03` (as ffmpeg's `remove_scep_3_bytes` does).
    fn unescape(stream: &[u8]) -> Vec<u8> {
        let mut d = Vec::new();
        let mut i = 0;
        while i < stream.len() {
            if stream.len() - i > 3 && stream[i..i + 3] == [0, 0, 3] {
                d.extend_from_slice(&[0, 0]);
                i += 3;
            } else {
                d.push(stream[i]);
                i += 1;
            }
        }
        d
    }

    fn encrypt_nal(nal: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        hook().video_nal(nal, &mut out).unwrap();
        out
    }

    /// No start code prefix (00 00 00/01/02) anywhere inside.
    fn no_start_code(b: &[u8]) -> bool {
        b.windows(3).all(|w| !(w[0] == 0 && w[1] == 0 && w[2] <= 2))
    }

    #[test]
    fn the_key_is_zeroized_on_drop() {
        fn zeroized_on_drop<T: ZeroizeOnDrop>() {}
        zeroized_on_drop::<SampleAes>();
    }

    #[test]
    fn nal_block_offsets_follow_the_listing() {
        let v = |len| nal_blocks(len).collect::<Vec<_>>();
        // 48 bytes or fewer: nothing; 49: one block right after the 32-byte leader.
        assert!(v(0).is_empty() && v(32).is_empty() && v(48).is_empty());
        assert_eq!(v(49), [32]);
        // One pattern unit of 160 after the leader, then the next block.
        assert_eq!(v(32 + 160), [32]);
        assert_eq!(v(32 + 160 + 16), [32]); // exactly 16 left: stays clear
        assert_eq!(v(32 + 160 + 17), [32, 192]);
        assert_eq!(v(1000), [32, 192, 352, 512, 672, 832]);
        // 992 = 32 + 6 * 160: the block at 992 would end at 1008 = len: clear.
        assert_eq!(v(1008), [32, 192, 352, 512, 672, 832]);
        assert_eq!(v(1009), [32, 192, 352, 512, 672, 832, 992]);
    }

    #[test]
    fn audio_range_leaves_leader_and_tail_clear() {
        assert!(audio_range(0).is_empty());
        assert!(audio_range(31).is_empty());
        assert_eq!(audio_range(32), 16..32);
        assert_eq!(audio_range(47), 16..32);
        assert_eq!(audio_range(48), 16..48);
        assert_eq!(audio_range(371), 16..368);
    }

    #[test]
    fn only_slices_over_48_bytes_are_touched() {
        let body: Vec<u8> = (0..200u32).map(|i| (i * 7 + 1) as u8).collect();
        for (hdr, len, touched) in [
            (0x65u8, 49usize, true),
            (0x41, 200, true),
            (0x21, 49, true), // type 1, nal_ref_idc 1
            (0x65, 48, false),
            (0x41, 10, false),
            (0x06, 200, false), // SEI
            (0x67, 200, false), // SPS
            (0x68, 200, false), // PPS
            (0x49, 200, false), // type 9 (AUD) with ref bits
        ] {
            let mut nal = body[..len].to_vec();
            nal[0] = hdr;
            let out = encrypt_nal(&nal);
            assert_eq!(out != nal, touched, "type {hdr:#x} len {len}");
            // The 32-byte leader and the tail after the last block are clear.
            assert_eq!(&out[..32.min(len)], &nal[..32.min(len)]);
            assert_eq!(decrypt_nal(&out), nal);
        }
    }

    #[test]
    fn clear_and_encrypted_bytes_are_where_the_listing_says() {
        // Bytes with no zeros, so no emulation prevention shifts anything.
        let mut nal: Vec<u8> = (0..1009u32).map(|i| (i % 250 + 1) as u8).collect();
        nal[0] = 0x65;
        // Ciphertext may hold zeros: compare before emulation prevention.
        let out = unescape(&encrypt_nal(&nal));
        assert_eq!(out.len(), nal.len());
        let blocks: Vec<usize> = nal_blocks(nal.len()).collect();
        for (i, (a, b)) in out.iter().zip(&nal).enumerate() {
            let encrypted = blocks.iter().any(|&s| (s..s + 16).contains(&i));
            if !encrypted {
                assert_eq!(a, b, "byte {i} must be clear");
            }
        }
        for &s in &blocks {
            assert_ne!(
                &out[s..s + 16],
                &nal[s..s + 16],
                "block at {s} must be encrypted"
            );
        }
        // CBC chains across the blocks of one NAL: equal plaintext blocks encrypt
        // differently; the IV restarts per NAL: the same NAL twice gives the same bytes.
        let mut same = nal.clone();
        for &s in &blocks {
            same[s..s + 16].copy_from_slice(&[0x55; 16]);
        }
        let o = unescape(&encrypt_nal(&same));
        assert_ne!(&o[32..48], &o[192..208]);
        assert_eq!(unescape(&encrypt_nal(&same)), o);
        // The first block is plain CBC from the IV: AES(block ^ IV).
        let mut first = [0x55u8; 16];
        first.iter_mut().zip(IV).for_each(|(b, v)| *b ^= v);
        AesCbc::new(&KEY)
            .unwrap()
            .encrypt([0; 16], &mut first)
            .unwrap();
        assert_eq!(&o[32..48], &first);
    }

    #[test]
    fn emulation_prevention_is_reapplied_and_keeps_the_encoders_own() {
        // A slice whose clear leader and body hold the encoder's emulation prevention
        // (00 00 03 0x) and zero runs; the output must have no start code prefix, and the
        // decryptor must get back the NAL unit *with* those 03 bytes.
        let mut nal = vec![
            0x65, 0x88, 0x80, 0x00, 0x00, 0x03, 0x01, 0x00, 0x00, 0x03, 0x00,
        ];
        nal.extend((0..600u32).map(|i| if i % 5 < 3 { 0 } else { (i % 4) as u8 }));
        nal.extend([0x00, 0x00, 0x03, 0x80]);
        let out = encrypt_nal(&nal);
        assert!(no_start_code(&out), "start code inside an encrypted NAL");
        assert!(out.len() > nal.len());
        // The encoder's 00 00 03 01 in the leader is itself protected: 00 00 03 03 01.
        assert_eq!(&out[..8], &[0x65, 0x88, 0x80, 0, 0, 3, 3, 1]);
        assert_eq!(decrypt_nal(&out), nal);
    }

    /// The rule byte by byte: the oracle of [`escape_in_place`].
    fn escape_one_by_one(src: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut zeros = 0usize;
        for &b in src {
            if zeros >= 2 && b <= 3 {
                out.push(3);
                zeros = 0;
            }
            out.push(b);
            zeros = if b == 0 { zeros + 1 } else { 0 };
        }
        out
    }

    /// `src` escaped in place after a prefix that must stay as it is (zeros, so a run
    /// crossing into `src` would show).
    fn escaped(src: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8, 0];
        buf.extend_from_slice(src);
        escape_in_place(&mut buf, 2);
        assert_eq!(&buf[..2], &[0, 0]);
        buf.split_off(2)
    }

    proptest::proptest! {
        /// Bytes drawn mostly from 0..=4 (zero runs, every byte that needs a 03 and one that
        /// does not), at any length: the same as the rule applied byte by byte.
        #[test]
        fn escape_in_place_equals_the_rule_byte_by_byte(src in proptest::collection::vec(proptest::prop_oneof![4 => 0u8..=4, 1 => proptest::prelude::any::<u8>()], 0..400)) {
            proptest::prop_assert_eq!(escaped(&src), escape_one_by_one(&src));
        }
    }

    #[test]
    fn escape_rules() {
        let e = |s: &[u8]| {
            let o = escaped(s);
            assert_eq!(o, escape_one_by_one(s));
            o
        };
        assert_eq!(e(&[]), [] as [u8; 0]);
        assert_eq!(e(&[0, 0]), [0, 0]);
        assert_eq!(e(&[0, 0, 4]), [0, 0, 4]);
        for b in 0..=3 {
            assert_eq!(e(&[0, 0, b]), [0, 0, 3, b]);
        }
        assert_eq!(e(&[0, 0, 0, 0, 1]), [0, 0, 3, 0, 0, 3, 1]);
        assert_eq!(e(&[0, 0, 3, 0, 0, 3]), [0, 0, 3, 3, 0, 0, 3, 3]);
        assert_eq!(e(&[1, 0, 0, 0]), [1, 0, 0, 3, 0]);
    }

    #[test]
    fn hostile_nals_do_not_panic_and_round_trip() {
        // All zeros, all 00 00 03 runs, tiny, odd lengths around the thresholds.
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for len in [
            1usize, 2, 31, 32, 33, 47, 48, 49, 50, 63, 64, 65, 191, 192, 208, 209, 4096,
        ] {
            for hdr in [0x65u8, 0x41, 0x01, 0x05] {
                let mut z = vec![0u8; len];
                z[0] = hdr;
                cases.push(z);
                let mut p: Vec<u8> = [0u8, 0, 3].iter().copied().cycle().take(len).collect();
                p[0] = hdr;
                cases.push(p);
                let mut q: Vec<u8> = [0u8, 0, 0, 1].iter().copied().cycle().take(len).collect();
                q[0] = hdr;
                cases.push(q);
            }
        }
        for nal in &cases {
            let out = encrypt_nal(nal);
            if is_encrypted_nal(nal) {
                assert!(no_start_code(&out[..out.len().saturating_sub(1)]));
                // A hostile NAL ending in 00 cannot be told from a start code's leading
                // zero in any Annex-B stream; everything else must round-trip.
                if nal.last() != Some(&0) {
                    assert_eq!(decrypt_nal(&out), *nal, "len {}", nal.len());
                }
            } else {
                assert_eq!(&out, nal);
            }
        }
    }

    #[test]
    fn audio_frames_keep_size_and_leader() {
        let mut h = hook();
        for len in [1usize, 16, 31, 32, 33, 47, 48, 400, 8184] {
            let frame: Vec<u8> = (0..len as u32).map(|i| (i * 13) as u8).collect();
            let mut out = Vec::new();
            h.audio_frame(&frame, &mut out).unwrap();
            h.finish(&mut out).unwrap();
            assert_eq!(out.len(), len);
            let r = audio_range(len);
            assert_eq!(&out[..r.start.min(len)], &frame[..r.start.min(len)]);
            assert_eq!(&out[r.end.min(len)..], &frame[r.end.min(len)..]);
            if !r.is_empty() {
                assert_ne!(&out[r.clone()], &frame[r.clone()]);
                let mut d = out[r.clone()].to_vec();
                let mut dec = cbc::Decryptor::<aes::Aes128>::new(&KEY.into(), &IV.into());
                for b in d.chunks_exact_mut(16) {
                    dec.decrypt_block_mut(b.into());
                }
                assert_eq!(d, frame[r]);
            }
        }
    }

    #[test]
    fn pmt_descriptors() {
        let h = hook();
        let mut d = Vec::new();
        let v = Codec::H264 {
            sps: vec![],
            pps: vec![],
            nal_length_size: 4,
        };
        assert_eq!(h.pmt_entry(&v, 0x1B, &mut d), 0xDB);
        assert_eq!(d, [0x0F, 4, b'z', b'a', b'v', b'c']);
        d.clear();
        let a = Codec::Aac {
            audio_specific_config: bytes::Bytes::from_static(&[0x11, 0x90]),
        };
        assert_eq!(h.pmt_entry(&a, 0x0F, &mut d), 0xCF);
        assert_eq!(
            d,
            [
                0x0F, 4, b'a', b'a', b'c', b'd', // private_data_indicator 'aacd'
                0x05, 14, b'a', b'p', b'a', b'd', // registration 'apad'
                b'z', b'a', b'a', b'c', 0, 0, 1, 2, 0x11, 0x90 // setup information
            ]
        );
        assert_eq!(aac_audio_type(&[0x2B, 0x11, 0x88, 0x00]), b"zach");
        assert_eq!(aac_audio_type(&[0xEB, 0x09, 0x88, 0x00]), b"zacp");
        let hevc = Codec::Hevc {
            vps: vec![],
            sps: vec![],
            pps: vec![],
            nal_length_size: 4,
        };
        assert!(h.accepts(&hevc).is_err());
        assert!(h.accepts(&v).is_ok() && h.accepts(&a).is_ok());
    }

    #[test]
    fn debug_redacts_the_key() {
        let s = format!("{:?}", SampleAes { key: KEY, iv: IV });
        assert!(s.contains("redacted") && s.contains("0123456789abcdef"));
        assert!(!s.contains("69eaa8") && !s.contains("105"), "{s}");
    }
}
