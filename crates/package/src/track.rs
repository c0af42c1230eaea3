//! Track descriptions read from a `moov`, and the per-track CMAF init segment.

use sealcast_codecs::{aac, avc::AvcConfig, hevc::HevcConfig};
use sealcast_isobmff::fourcc::types::*;
use sealcast_isobmff::tree::{RawBox, STSD_PATH};
use sealcast_isobmff::{elst::Elst, ftyp::Ftyp, hdlr::Hdlr, mdhd::Mdhd, stsd, tkhd::Tkhd, trex::Trex, Atom, FourCC};

use crate::error::{At, Error, Result};

pub use sealcast_codecs::TrackKind;

/// Codec configuration, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecConfig {
    /// H.264.
    Avc(AvcConfig),
    /// HEVC.
    Hevc(HevcConfig),
    /// AAC with its AudioSpecificConfig bytes.
    Aac {
        /// Parsed fields.
        asc: aac::AudioSpecificConfig,
        /// Raw AudioSpecificConfig.
        raw: Vec<u8>,
    },
}

/// What a packager needs to know about one track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    /// Track ID in its file.
    pub track_id: u32,
    /// Video or audio.
    pub kind: TrackKind,
    /// Media timescale.
    pub timescale: u32,
    /// ISO 639-2 language, `None` for `und`.
    pub language: Option<String>,
    /// Sample entry type (`avc1`, `hvc1`, `mp4a`, …).
    pub fourcc: FourCC,
    /// RFC 6381 codec string.
    pub codec_string: String,
    /// Parsed codec configuration.
    pub config: CodecConfig,
    /// Coded width and height (video).
    pub width: u16,
    /// Coded height (video).
    pub height: u16,
    /// Channels (audio).
    pub channels: u16,
    /// Sample rate (audio).
    pub sample_rate: u32,
    /// First edit's media time (media timescale): where presentation starts. 0 without edits.
    pub media_time: i64,
    /// Fragment defaults from `trex`.
    pub trex: Trex,
}

/// Parses every audio and video track of a `moov` (given as its tree). Other track types
/// (subtitles, metadata) are skipped for now.
pub fn parse_tracks(moov: &RawBox<'_>, moov_offset: u64) -> Result<Vec<TrackInfo>> {
    let at = moov_offset;
    let children = moov.children.as_deref().unwrap_or_default();
    let trexes: Vec<Trex> = moov
        .child(MVEX)
        .and_then(|m| m.children.as_ref())
        .map(|c| c.iter().filter(|b| b.typ == TREX).map(|b| Trex::decode(&reencode(b))).collect::<Result<Vec<_>, _>>())
        .transpose()
        .at(at)?
        .unwrap_or_default();
    let mut out = Vec::new();
    for trak in children.iter().filter(|b| b.typ == TRAK) {
        let tkhd = Tkhd::decode(&reencode(trak.child(TKHD).ok_or(Error::Box { offset: at, source: sealcast_isobmff::Error::Missing(TKHD) })?)).at(at)?;
        let mdia = trak.child(MDIA).ok_or(missing(at, MDIA))?;
        let hdlr = Hdlr::decode(&reencode(mdia.child(HDLR).ok_or(missing(at, HDLR))?)).at(at)?;
        let kind = match &hdlr.handler_type.0 {
            b"vide" => TrackKind::Video,
            b"soun" => TrackKind::Audio,
            _ => continue,
        };
        let mdhd = Mdhd::decode(&reencode(mdia.child(MDHD).ok_or(missing(at, MDHD))?)).at(at)?;
        let stsd_box = trak.path(&STSD_PATH).ok_or(missing(at, STSD))?;
        let entries = stsd::sample_entries(stsd_box).at(at)?;
        let entry = entries.first().ok_or(missing(at, STSD))?;
        if entries.len() > 1 {
            return Err(Error::Unsupported(format!("track {}: {} sample descriptions (one supported)", tkhd.track_id, entries.len())));
        }
        let track = tkhd.track_id;
        let codec = |e: sealcast_codecs::Error| Error::Codec { track, source: e };
        let fourcc_s = entry.fourcc.to_string();
        let (config, codec_string) = match &entry.fourcc.0 {
            b"avc1" | b"avc3" => {
                let c = AvcConfig::parse(entry.child(AVCC).ok_or(missing(at, AVCC))?).map_err(codec)?;
                let s = c.codec_string(&fourcc_s);
                (CodecConfig::Avc(c), s)
            }
            b"hvc1" | b"hev1" => {
                let c = HevcConfig::parse(entry.child(HVCC).ok_or(missing(at, HVCC))?).map_err(codec)?;
                let s = c.codec_string(&fourcc_s);
                (CodecConfig::Hevc(c), s)
            }
            b"mp4a" => {
                let e = aac::EsdsInfo::parse(entry.child(ESDS).ok_or(missing(at, ESDS))?).map_err(codec)?;
                if e.object_type_indication != 0x40 {
                    return Err(Error::Unsupported(format!("track {track}: audio object type indication {:#x}", e.object_type_indication)));
                }
                let asc = aac::AudioSpecificConfig::parse(&e.decoder_specific_info).map_err(codec)?;
                let s = asc.codec_string();
                (CodecConfig::Aac { asc, raw: e.decoder_specific_info }, s)
            }
            _ => return Err(Error::Unsupported(format!("track {track}: codec '{}'", entry.fourcc))),
        };
        let (width, height, channels, sample_rate) = match entry.kind {
            stsd::EntryKind::Visual { width, height } => (width, height, 0, 0),
            stsd::EntryKind::Audio { channels, sample_rate, .. } => {
                let (ch, sr) = match &config {
                    CodecConfig::Aac { asc, .. } if asc.channel_config > 0 => (asc.channel_config as u16, asc.sample_rate),
                    _ => (channels, sample_rate),
                };
                (0, 0, ch, sr)
            }
            stsd::EntryKind::Other => (0, 0, 0, 0),
        };
        let media_time = match trak.path(&[EDTS, ELST]) {
            Some(e) => Elst::decode(&reencode(e)).at(at)?.entries.iter().find(|e| e.media_time >= 0).map_or(0, |e| e.media_time),
            None => 0,
        };
        let lang = String::from_utf8_lossy(&mdhd.language).into_owned();
        out.push(TrackInfo {
            track_id: track,
            kind,
            timescale: mdhd.timescale,
            language: (lang != "und" && lang.chars().all(|c| c.is_ascii_lowercase())).then_some(lang),
            fourcc: entry.fourcc,
            codec_string,
            config,
            width,
            height,
            channels,
            sample_rate,
            media_time,
            trex: trexes.iter().copied().find(|t| t.track_id == track).unwrap_or(Trex { track_id: track, ..Trex::default() }),
        });
    }
    Ok(out)
}

fn missing(offset: u64, t: FourCC) -> Error {
    Error::Box { offset, source: sealcast_isobmff::Error::Missing(t) }
}

/// Re-encodes a tree node to bytes so a typed decoder can read it.
fn reencode(b: &RawBox<'_>) -> Vec<u8> {
    let mut v = Vec::with_capacity(b.encoded_len() as usize);
    b.encode(&mut v);
    v
}

/// Brands of the init segments we write (CMAF, ISO BMFF 6, DASH).
pub fn init_ftyp() -> Ftyp {
    Ftyp { major_brand: FourCC::new(b"cmfc"), minor_version: 0, compatible_brands: vec![FourCC::new(b"cmfc"), FourCC::new(b"iso6"), FourCC::new(b"dash")] }
}

/// Builds the init segment of one track: our `ftyp`, then the source `moov` reduced to
/// `mvhd`, that track's `trak` (byte for byte) and an `mvex` holding only its `trex`.
pub fn build_init(moov: &RawBox<'_>, track_id: u32) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(moov.encoded_len() as usize + 32);
    init_ftyp().encode(&mut out);
    let mut kept = Vec::new();
    for c in moov.children.iter().flatten() {
        match &c.typ.0 {
            b"mvhd" => kept.push(c.clone()),
            b"trak" => {
                let id = c.child(TKHD).map(|t| Tkhd::decode(&reencode(t)).map(|t| t.track_id)).transpose().at(0)?;
                if id == Some(track_id) {
                    kept.push(c.clone());
                }
            }
            _ => {}
        }
    }
    let trex = moov
        .child(MVEX)
        .and_then(|m| m.children.as_ref())
        .and_then(|c| c.iter().find(|b| b.typ == TREX && Trex::decode(&reencode(b)).map(|t| t.track_id == track_id).unwrap_or(false)))
        .cloned()
        .unwrap_or_else(|| RawBox::leaf(TREX, Trex { track_id, default_sample_description_index: 1, ..Trex::default() }.to_vec()[8..].to_vec()));
    kept.push(RawBox { typ: MVEX, large: false, to_end: false, prefix: Vec::new().into(), children: Some(vec![trex]) });
    RawBox { typ: MOOV, large: false, to_end: false, prefix: Vec::new().into(), children: Some(kept) }.encode(&mut out);
    Ok(out)
}
