//! MPEG-2 Transport Stream muxer for HLS media segments (ISO/IEC 13818-1, RFC 8216).
//!
//! Pure code: samples in, TS packets out. No IO, no clock, no randomness; the same
//! input always gives the same bytes, so every origin node serves identical segments.
//!
//! # What a segment looks like
//!
//! ```text
//! PAT (PID 0) | PMT (PID 0x1000) | PES packets of video (0x100) and audio (0x101),
//!                                  interleaved in DTS order (video first on ties)
//! ```
//!
//! * **PSI**: one PAT and one PMT at the start of every segment, so each HLS segment
//!   decodes on its own. Program number 1, transport_stream_id 1, version 0.
//! * **Video** (H.264 stream_type 0x1B, HEVC 0x24, stream_id 0xE0): one PES per access
//!   unit with `PES_packet_length` 0 (unbounded, allowed for video). Length-prefixed NAL
//!   units (ISO/IEC 14496-15) become Annex-B NAL units with 4-byte start codes. Every
//!   access unit starts with our own access unit delimiter; AUDs already in the sample
//!   are dropped; zero-length NAL units are dropped. Keyframes get the configuration
//!   record's parameter sets (VPS/SPS/PPS) right after the AUD, unless the sample
//!   already carries an SPS (in-band parameter sets, `avc3`/`hev1` style), in which case
//!   nothing is inserted.
//! * **Audio** (AAC in ADTS, stream_type 0x0F, stream_id 0xC0): every raw AAC frame gets
//!   a 7-byte ADTS header built from the AudioSpecificConfig. Consecutive frames are
//!   grouped into one PES while their DTS lie within [`AUDIO_PES_SPAN_90K`] of the
//!   group's first frame (at most [`AUDIO_PES_MAX_FRAMES`] frames, and always within
//!   the 16-bit `PES_packet_length`). Grouping restarts at every segment, so it depends
//!   only on the segment's own samples. At 48 kHz AAC-LC that is 3 frames per PES.
//! * **PCR** is on the video PID (on the audio PID when the program has no video), in
//!   the adaptation field of the first TS packet of every PES on that PID. Its value is
//!   the PES's DTS minus [`PCR_LEAD_90K`] (100 ms), clamped at 0, with a zero 27 MHz
//!   extension. Pick `pts_offset_90k` ≥ `PCR_LEAD_90K` (plus the most negative input
//!   time) to keep the clamp from ever applying.
//! * **PTS/DTS**: both are written when they differ after conversion to 90 kHz, PTS
//!   alone otherwise. Conversion rounds to nearest (see [`rescale_to_90k`]), then adds
//!   `pts_offset_90k`; values are written modulo 2^33 as the field requires.
//! * **Packets**: the last TS packet of every PES is filled with adaptation-field
//!   stuffing (with [`MuxParams::align_continuity`], the last few packets of a PID's
//!   last PES in the segment are, see below); the first packet of a keyframe PES has
//!   `random_access_indicator` set (audio frames flagged as sync samples too);
//!   continuity counters count only packets with payload, per PID.
//!
//! # Continuity counters across segments
//!
//! A player reading segment N after segment N-1 sees one continuous stream only if the
//! counters carry on: hls.js, AVPlayer and ffmpeg's HLS demuxer feed consecutive
//! segments into one TS demuxer, and ffmpeg marks packets corrupt on a counter jump.
//! [`MuxParams::continuity`] is where a segment starts and is left where the next one
//! starts. There are two ways to choose it.
//!
//! **Alignment (recommended for an origin).** Segments are produced independently, per
//! request, on whichever node (or CDN edge shield) gets the request, in any order; none
//! of them knows how many packets the others used. With
//! [`MuxParams::align_continuity`] the muxer makes the number of payload-carrying
//! packets on the video PID and on the audio PID a multiple of 16, so a segment that
//! starts those PIDs at counter 0 ends them at 15 and the next segment, also starting
//! at 0, follows seamlessly. The PAT and PMT take exactly one packet per segment, so
//! their counters are the segment's position in the playlist mod 16: segment `i` uses
//! `ContinuityState { pat: i % 16, pmt: i % 16, video: 0, audio: 0 }` (see
//! [`MuxParams`]).
//!
//! *How:* the counting pass that already sizes the output also computes, per PID,
//! `pad = (16 - packets % 16) % 16` and which PES take the extra packets, before a byte
//! is written. The PID's last PES is spread over `pad` more packets: its leading
//! packets stay full, the tail packets carry less payload (down to one byte) and more
//! adaptation-field stuffing. Every packet still carries payload (only those advance
//! the counter), the first packet of each PES keeps its PCR / random-access adaptation
//! field and the whole PES header, and PES bytes are unchanged, so the demuxed
//! elementary streams are identical to the unaligned output. A PES can take one extra
//! packet per byte after its header, so a last PES with 15 such bytes suffices (any
//! real video access unit or AAC PES); if it has fewer, the PES before it take the rest.
//! Only when the PID's whole payload in the segment is tinier than that (one AAC frame
//! of a few bytes) does the last PES take everything with its PES header spread over
//! the first few packets, which is legal TS (ffmpeg, hls.js reassemble it) and always
//! possible, since every PES is at least 20 bytes.
//!
//! *Cost:* at most 15 extra packets per PID per segment (2,820 bytes), on average
//! 7.5, so about 2.8 KB per audio+video segment on average and 5.6 KB at worst
//! (measured over 200 six-second segments at ~5.6 Mbit/s: +2.8 KB mean, 0.07%; at
//! 1 Mbit/s the same 2.8 KB is about 0.4%). Speed is unchanged: no extra pass, no
//! allocation (the plan is a fixed-size array per PID).
//!
//! **Exact counting.** Without alignment, an origin serving segment N calls
//! [`count_packets`] on segments 0 to N-1 and adds the results with
//! [`ContinuityState::advance`]; the count needs only the NAL length fields, not the
//! payload, but it does need the sample bytes, so cache per-segment counts next to the
//! segment index rather than recounting. Counters are 4 bits, so only the sums mod 16
//! matter. This keeps segments minimal but ties every segment to all earlier ones.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use sealcast_mpegts::{
//!     count_packets, mux_segment, Codec, ContinuityState, MuxParams, Sample, Stream,
//! };
//!
//! let video = Codec::H264 {
//!     sps: vec![Bytes::from_static(&[0x67, 0x42, 0xC0, 0x1E])],
//!     pps: vec![Bytes::from_static(&[0x68, 0xCE, 0x3C, 0x80])],
//!     nal_length_size: 4,
//! };
//! let audio = Codec::Aac { audio_specific_config: Bytes::from_static(&[0x11, 0x90]) };
//! let idr = [0, 0, 0, 3, 0x65, 0x88, 0x84]; // one length-prefixed NAL unit
//! let aac = [0x21, 0x10, 0x04]; // one raw AAC frame
//! let v = [Sample { dts: 0, pts: 3003, keyframe: true, data: &idr }];
//! let a = [Sample { dts: 0, pts: 0, keyframe: true, data: &aac }];
//! let streams = [
//!     Stream { codec: &video, timescale: 30_000, samples: &v },
//!     Stream { codec: &audio, timescale: 48_000, samples: &a },
//! ];
//!
//! // Segment 7 of a title: counters continue from segments 0..7 (counted earlier).
//! let mut params = MuxParams { pts_offset_90k: 900_000, ..Default::default() };
//! let earlier = count_packets(&streams, &params)?; // stand-in for segment 6
//! params.continuity.advance(&earlier);
//!
//! let mut out = Vec::new();
//! mux_segment(&streams, &mut params, &mut out)?;
//! assert_eq!(out.len() as u64, earlier.bytes()); // same input, same size
//! assert!(out.chunks(188).all(|p| p[0] == 0x47));
//!
//! // The same segment, aligned: muxed on its own, no knowledge of segments 0..7.
//! let i = 7;
//! let mut params = MuxParams {
//!     pts_offset_90k: 900_000,
//!     continuity: ContinuityState { pat: i % 16, pmt: i % 16, video: 0, audio: 0 },
//!     align_continuity: true,
//!     sample_aes: None,
//! };
//! let counts = count_packets(&streams, &params)?;
//! assert_eq!((counts.video % 16, counts.audio % 16), (0, 0));
//! let mut aligned = Vec::new();
//! mux_segment(&streams, &mut params, &mut aligned)?;
//! assert_eq!(aligned.len() as u64, counts.bytes());
//! // Video and audio counters are back at 0: segment 8 starts there too.
//! assert_eq!((params.continuity.video, params.continuity.audio), (0, 0));
//! # Ok::<(), sealcast_mpegts::Error>(())
//! ```
//!
//! # Speed
//!
//! [`mux_segment`] first sizes the output exactly ([`count_packets`], which also validates
//! all input and, with alignment, places the padding), reserves it once, then writes
//! every packet straight into the caller's `Vec` in one pass; no allocation happens per
//! packet or per sample.
//!
//! # SAMPLE-AES
//!
//! With [`MuxParams::sample_aes`] set, the segment is encrypted as Apple's "MPEG-2
//! Stream Encryption Format for HTTP Live Streaming" says (H.264 slices 1:9 after a
//! 32-byte clear leader, AAC frames after a 16-byte clear leader, AES-128-CBC; stream
//! types 0xDB/0xCF with their private-data and registration descriptors in the PMT; see
//! `sample_aes.rs` for the layout and for how emulation prevention is handled). HEVC is
//! refused with [`Error::SampleAesUnsupported`]: the format defines no HEVC variant.
//!
//! The packetiser takes each NAL unit and each AAC frame through an internal `EsHook`
//! (see `mux.rs`). The clear hook is the identity and compiles to the zero-copy path.
//! The encrypting hook changes sizes (emulation prevention after encryption), so it runs
//! in the counting pass, once; its output is kept and packetised from there, and the
//! continuity alignment is planned on the encrypted sizes. [`count_packets`] and
//! [`estimate_size`] therefore encrypt too when SAMPLE-AES is on.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod crc;
pub mod fuzzing;
mod mux;
mod nal;
mod packet;
mod pes;
mod psi;
mod sample_aes;

use bytes::Bytes;

pub use crc::crc32_mpeg2;
pub use mux::{count_packets, estimate_size, mux_segment, Pieces};
pub use pes::rescale_to_90k;
pub use sample_aes::{
    SampleAes, STREAM_TYPE_AAC as SAMPLE_AES_STREAM_TYPE_AAC,
    STREAM_TYPE_H264 as SAMPLE_AES_STREAM_TYPE_H264,
};
pub use sealcast_codecs::adts::{AdtsConfig, AudioConfigError};

/// Size of one transport stream packet.
pub const TS_PACKET_SIZE: usize = 188;
/// PID of the program association table.
pub const PAT_PID: u16 = 0x0000;
/// PID of the program map table (program number 1).
pub const PMT_PID: u16 = 0x1000;
/// PID of the video elementary stream.
pub const VIDEO_PID: u16 = 0x0100;
/// PID of the audio elementary stream.
pub const AUDIO_PID: u16 = 0x0101;
/// How far the PCR runs ahead of the DTS of the PES that carries it (90 kHz ticks).
pub const PCR_LEAD_90K: u64 = 9_000;
/// Audio frames whose DTS lie within this many 90 kHz ticks of the first frame of a
/// PES join that PES (60 ms: keeps PCR intervals on audio-only streams under 100 ms
/// for frames up to ~43 ms long).
pub const AUDIO_PES_SPAN_90K: u64 = 5_400;
/// Upper bound on AAC frames per audio PES.
pub const AUDIO_PES_MAX_FRAMES: usize = 8;

/// Codec configuration of one elementary stream, as found in the sample entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Codec {
    /// H.264 from an `avcC` record.
    H264 {
        /// Sequence parameter set NAL units (with NAL header, without length prefix).
        sps: Vec<Bytes>,
        /// Picture parameter set NAL units.
        pps: Vec<Bytes>,
        /// Size of the NAL length prefix in samples (1, 2 or 4; 3 is accepted too).
        nal_length_size: u8,
    },
    /// HEVC from an `hvcC` record.
    Hevc {
        /// Video parameter set NAL units.
        vps: Vec<Bytes>,
        /// Sequence parameter set NAL units.
        sps: Vec<Bytes>,
        /// Picture parameter set NAL units.
        pps: Vec<Bytes>,
        /// Size of the NAL length prefix in samples (1, 2 or 4; 3 is accepted too).
        nal_length_size: u8,
    },
    /// AAC from the `esds` DecoderSpecificInfo.
    Aac {
        /// The AudioSpecificConfig bytes (ISO/IEC 14496-3 1.6.2.1).
        audio_specific_config: Bytes,
    },
}

impl Codec {
    /// Whether this codec goes on the video PID.
    pub fn is_video(&self) -> bool {
        matches!(self, Codec::H264 { .. } | Codec::Hevc { .. })
    }
}

/// One ISO-BMFF sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample<'a> {
    /// Decode time in the track's timescale.
    pub dts: i64,
    /// Presentation time in the track's timescale (DTS + composition offset).
    pub pts: i64,
    /// Sync sample: gets parameter sets and `random_access_indicator`.
    pub keyframe: bool,
    /// Sample bytes: length-prefixed NAL units for video, one raw AAC frame for audio.
    pub data: &'a [u8],
}

/// The samples of one track that fall into the segment, in decode order.
#[derive(Debug, Clone, Copy)]
pub struct Stream<'a> {
    /// Codec configuration.
    pub codec: &'a Codec,
    /// Ticks per second of `Sample::dts` / `Sample::pts`.
    pub timescale: u32,
    /// Samples in decode order.
    pub samples: &'a [Sample<'a>],
}

/// Continuity counters (4 bits each) per PID.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ContinuityState {
    /// Counter for the next PAT packet.
    pub pat: u8,
    /// Counter for the next PMT packet.
    pub pmt: u8,
    /// Counter for the next video packet.
    pub video: u8,
    /// Counter for the next audio packet.
    pub audio: u8,
}

impl ContinuityState {
    /// Moves every counter past `counts` packets, as if those packets had been written.
    pub fn advance(&mut self, counts: &PacketCounts) {
        // Only the count mod 16 matters; reduce first so the add cannot overflow.
        let step = |cc: u8, n: u64| ((u64::from(cc & 0x0F) + (n & 0x0F)) & 0x0F) as u8;
        self.pat = step(self.pat, counts.pat);
        self.pmt = step(self.pmt, counts.pmt);
        self.video = step(self.video, counts.video);
        self.audio = step(self.audio, counts.audio);
    }
}

/// Number of TS packets each PID takes in a segment (all of them carry payload).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PacketCounts {
    /// PAT packets.
    pub pat: u64,
    /// PMT packets.
    pub pmt: u64,
    /// Video packets.
    pub video: u64,
    /// Audio packets.
    pub audio: u64,
}

impl PacketCounts {
    /// All packets of the segment.
    pub fn total(&self) -> u64 {
        self.pat + self.pmt + self.video + self.audio
    }

    /// Segment size in bytes.
    pub fn bytes(&self) -> u64 {
        self.total() * TS_PACKET_SIZE as u64
    }
}

/// Per-segment muxing parameters.
///
/// # Continuity contract with `align_continuity`
///
/// With [`MuxParams::align_continuity`] set, a segment can be muxed without knowing any
/// other segment and still continue its predecessor's counters, provided the caller
/// sets [`MuxParams::continuity`] for segment `i` (0 for the first segment of the
/// playlist, counting in playlist order, e.g. `media_sequence_number - first` or, with
/// segments numbered from 1, `segment_number - 1`) to
///
/// ```text
/// ContinuityState { pat: i % 16, pmt: i % 16, video: 0, audio: 0 }
/// ```
///
/// This works because every segment writes exactly one PAT packet and one PMT packet
/// (so those counters advance by one per segment), and, with the option on, a multiple
/// of 16 payload packets on the video PID and on the audio PID (so those counters end
/// each segment where they started). `video`/`audio` may be any fixed value rather
/// than 0, as long as every segment uses the same one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MuxParams {
    /// Added to every PTS and DTS after conversion to 90 kHz, so nothing is negative.
    pub pts_offset_90k: u64,
    /// Continuity counters to start from; on success left where the next segment starts.
    pub continuity: ContinuityState,
    /// Pads the video PID and the audio PID to a multiple of 16 payload-carrying TS
    /// packets each, so their continuity counters end the segment where they started
    /// (see the contract above and "Continuity counters across segments" in the crate
    /// docs). The padding is adaptation-field stuffing that spreads the PID's last
    /// PES (and, if it is very short, the one or two before it) over up to 15 extra
    /// packets; the PES bytes themselves do not change. Default `false`: no padding,
    /// every PES packed into as few packets as possible.
    pub align_continuity: bool,
    /// Encrypt the segment with HLS SAMPLE-AES (H.264 and AAC only). `None`: clear.
    pub sample_aes: Option<SampleAes>,
}

/// Which stream of the segment an error is about.
pub type StreamIndex = usize;

/// Everything that can go wrong while muxing. Input problems name the stream (index in
/// the `streams` slice), the sample (index in `Stream::samples`) and, for NAL framing,
/// the byte offset inside the sample.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `streams` was empty.
    #[error("no streams to mux")]
    NoStreams,
    /// More than one video or more than one audio stream: one program carries at most one of each.
    #[error("stream {stream}: a second {kind} stream (one video and one audio at most)")]
    DuplicateStream {
        /// Index of the extra stream.
        stream: StreamIndex,
        /// "video" or "audio".
        kind: &'static str,
    },
    /// A timescale of zero.
    #[error("stream {stream}: timescale is 0")]
    ZeroTimescale {
        /// Stream index.
        stream: StreamIndex,
    },
    /// NAL length prefix size outside 1..=4.
    #[error("stream {stream}: NAL length size {size} is not 1..=4")]
    BadNalLengthSize {
        /// Stream index.
        stream: StreamIndex,
        /// The size from the configuration record.
        size: u8,
    },
    /// A sample with no bytes.
    #[error("stream {stream} sample {sample}: empty sample")]
    EmptySample {
        /// Stream index.
        stream: StreamIndex,
        /// Sample index.
        sample: usize,
    },
    /// A NAL length prefix cut off by the end of the sample.
    #[error("stream {stream} sample {sample}: NAL length field at offset {offset} is cut off by the end of the sample")]
    TruncatedNalLength {
        /// Stream index.
        stream: StreamIndex,
        /// Sample index.
        sample: usize,
        /// Offset of the length field inside the sample.
        offset: usize,
    },
    /// A NAL unit longer than what is left of the sample.
    #[error("stream {stream} sample {sample}: NAL at offset {offset} declares {declared} bytes, {available} remain")]
    NalOverrun {
        /// Stream index.
        stream: StreamIndex,
        /// Sample index.
        sample: usize,
        /// Offset of the length field inside the sample.
        offset: usize,
        /// Length the prefix declares.
        declared: u64,
        /// Bytes left after the prefix.
        available: usize,
    },
    /// The AudioSpecificConfig is malformed or cannot be expressed as ADTS.
    #[error("stream {stream}: AudioSpecificConfig: {reason}")]
    AudioConfig {
        /// Stream index.
        stream: StreamIndex,
        /// What is wrong with it.
        reason: AudioConfigError,
    },
    /// An AAC frame too long for the 13-bit ADTS frame_length.
    #[error(
        "stream {stream} sample {sample}: AAC frame of {len} bytes does not fit ADTS (max 8184)"
    )]
    AacFrameTooLarge {
        /// Stream index.
        stream: StreamIndex,
        /// Sample index.
        sample: usize,
        /// Raw frame size.
        len: usize,
    },
    /// A time that is negative after conversion and offset, or too large to represent.
    #[error("stream {stream} sample {sample}: time {value} ticks cannot be written as a 90 kHz timestamp (negative after offset, or overflow)")]
    BadTimestamp {
        /// Stream index.
        stream: StreamIndex,
        /// Sample index.
        sample: usize,
        /// The offending input time (PTS or DTS) in the track timescale.
        value: i64,
    },
    /// SAMPLE-AES was asked for a stream the format does not cover (HEVC).
    #[error("stream {stream}: SAMPLE-AES cannot encrypt {what}")]
    SampleAesUnsupported {
        /// Stream index.
        stream: StreamIndex,
        /// What cannot be encrypted.
        what: &'static str,
    },
    /// The AES implementation failed.
    #[error("encryption failed: {0}")]
    Crypto(&'static str),
    /// A bug in this crate: the writer produced a different size than it planned.
    #[error("internal error: {0}")]
    Internal(&'static str),
}
