//! IMSC1 in fragmented MP4 (ISO/IEC 14496-30, DASH-IF IOP 6.4): a subtitle track's init
//! segment (`moov` with a `subt` handler, `sthd` media header and an `stpp` sample entry) and
//! its media segments (`styp`, one `moof` + `mdat` holding one sample: one IMSC1 document).
//!
//! The track has timescale 1000 (the cues' milliseconds), track ID 1, and every sample is a
//! sync sample. The boxes only a text track has (`sthd`, `stpp`) are written here rather than
//! in `sealcast-isobmff`, whose types are what the origin reads from sources.

use sealcast_isobmff::fourcc::types::*;
use sealcast_isobmff::trun::{flags as trun_flags, Trun, TrunEntry};
use sealcast_isobmff::writer::{write_box, write_full_box, Put};
use sealcast_isobmff::{ftyp::Ftyp, hdlr::Hdlr, mdhd::Mdhd, mfhd::Mfhd, tfdt::Tfdt, tfhd::Tfhd, trex::Trex, Atom, FourCC};

use super::imsc1::NS_TTML;

/// Timescale of the text track: milliseconds.
pub const TIMESCALE: u32 = 1000;
/// `codecs` of the track (ISO/IEC 14496-30 Annex; DASH-IF IOP: IMSC1 Text Profile).
pub const CODECS: &str = "stpp.ttml.im1t";
/// `mimeType` of its segments.
pub const MIME: &str = "application/mp4";
/// The `mime` box's content type in the sample entry: TTML with the IMSC1 Text Profile
/// (14496-12 12.6.3.2, MIMEBox).
pub const CONTENT_TYPE: &str = "application/ttml+xml;codecs=im1t";

const TRACK_ID: u32 = 1;

/// The init segment of a subtitle track in language `iso639_2t` (three letters, `und` when
/// unknown).
pub fn init_segment(iso639_2t: [u8; 3]) -> Vec<u8> {
    let mut out = Vec::with_capacity(640);
    // CMAF brand `im1t`: an IMSC1 Text Profile CMAF track (ISO/IEC 23000-19).
    Ftyp { major_brand: FourCC::new(b"iso6"), minor_version: 0, compatible_brands: vec![FourCC::new(b"iso6"), FourCC::new(b"cmfc"), FourCC::new(b"im1t"), FourCC::new(b"dash")] }
        .encode(&mut out);
    write_box(&mut out, MOOV, |o| {
        write_full_box(o, MVHD, 0, 0, |o| {
            o.put_u32(0); // creation
            o.put_u32(0); // modification
            o.put_u32(TIMESCALE);
            o.put_u32(0); // duration: fragmented
            o.put_u32(0x0001_0000); // rate 1.0
            o.put_u16(0x0100); // volume 1.0
            o.extend_from_slice(&[0; 10]);
            unity_matrix(o);
            o.extend_from_slice(&[0; 24]); // pre_defined
            o.put_u32(TRACK_ID + 1); // next_track_ID
        });
        write_box(o, TRAK, |o| {
            // Flags: enabled, in movie, in preview.
            write_full_box(o, TKHD, 0, 7, |o| {
                o.put_u32(0);
                o.put_u32(0);
                o.put_u32(TRACK_ID);
                o.put_u32(0);
                o.put_u32(0); // duration
                o.extend_from_slice(&[0; 8]);
                o.put_u16(0); // layer
                o.put_u16(0); // alternate_group
                o.put_u16(0); // volume: not audio
                o.put_u16(0);
                unity_matrix(o);
                o.put_u32(0); // width
                o.put_u32(0); // height
            });
            write_box(o, MDIA, |o| {
                Mdhd { version: 0, creation_time: 0, modification_time: 0, timescale: TIMESCALE, duration: 0, language: iso639_2t, pre_defined: 0 }.encode(o);
                Hdlr { handler_type: FourCC::new(b"subt"), name: b"sealcast subtitles\0".to_vec() }.encode(o);
                write_box(o, MINF, |o| {
                    // Subtitle media header (14496-12 12.6.2): a full box with no fields.
                    write_full_box(o, FourCC::new(b"sthd"), 0, 0, |_| {});
                    write_box(o, FourCC::new(b"dinf"), |o| {
                        write_full_box(o, FourCC::new(b"dref"), 0, 0, |o| {
                            o.put_u32(1);
                            // `url ` with flag 1: the media is in this file.
                            write_full_box(o, FourCC::new(b"url "), 0, 1, |_| {});
                        });
                    });
                    write_box(o, STBL, |o| {
                        write_full_box(o, STSD, 0, 0, |o| {
                            o.put_u32(1);
                            sample_entry(o);
                        });
                        write_full_box(o, STTS, 0, 0, |o| o.put_u32(0));
                        write_full_box(o, STSC, 0, 0, |o| o.put_u32(0));
                        write_full_box(o, STSZ, 0, 0, |o| {
                            o.put_u32(0);
                            o.put_u32(0);
                        });
                        write_full_box(o, STCO, 0, 0, |o| o.put_u32(0));
                    });
                });
            });
        });
        write_box(o, MVEX, |o| {
            Trex { track_id: TRACK_ID, default_sample_description_index: 1, default_sample_duration: 0, default_sample_size: 0, default_sample_flags: 0 }.encode(o);
        });
    });
    out
}

/// `XMLSubtitleSampleEntry` (14496-12 12.6.3.2; 14496-30 5): reserved, data reference index,
/// then `namespace`, `schema_location` and `auxiliary_mime_types` as NUL-terminated UTF-8,
/// and a `mime` box naming the IMSC1 Text Profile.
fn sample_entry(o: &mut Vec<u8>) {
    write_box(o, FourCC::new(b"stpp"), |o| {
        o.extend_from_slice(&[0; 6]);
        o.put_u16(1);
        for s in [NS_TTML, "", ""] {
            o.extend_from_slice(s.as_bytes());
            o.push(0);
        }
        write_full_box(o, FourCC::new(b"mime"), 0, 0, |o| {
            o.extend_from_slice(CONTENT_TYPE.as_bytes());
            o.push(0);
        });
    });
}

fn unity_matrix(o: &mut Vec<u8>) {
    for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        o.put_u32(v);
    }
}

/// Media segment number `sequence` (from 1): one sample starting at `start_ms` on the track
/// timeline, lasting `duration_ms`, whose bytes are `document` (an IMSC1 document).
pub fn media_segment(sequence: u32, start_ms: u64, duration_ms: u32, document: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(document.len() + 160);
    write_box(&mut out, STYP, |o| crate::fmp4::styp().encode_body(o));
    let moof = |data_offset: i32| {
        let mut m = Vec::with_capacity(128);
        write_box(&mut m, MOOF, |o| {
            Mfhd { sequence_number: sequence }.encode(o);
            write_box(o, TRAF, |o| {
                Tfhd { track_id: TRACK_ID, base_data_offset: None, sample_description_index: None, default_sample_duration: None, default_sample_size: None, default_sample_flags: None, duration_is_empty: false, default_base_is_moof: true }.encode(o);
                Tfdt::new(start_ms).encode(o);
                let entry = TrunEntry { duration: Some(duration_ms), size: Some(document.len() as u32), flags: Some(0), cto: None };
                Trun { version: 0, flags: trun_flags::DATA_OFFSET | trun_flags::DURATION | trun_flags::SIZE | trun_flags::FLAGS, data_offset: Some(data_offset), first_sample_flags: None, entries: vec![entry] }.encode(o);
            });
        });
        m
    };
    // The data offset counts from the moof's first byte to the sample, past the mdat header.
    let len = moof(0).len();
    out.extend_from_slice(&moof(len as i32 + 8));
    write_box(&mut out, MDAT, |o| o.extend_from_slice(document));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealcast_isobmff::tree::RawBox;

    #[test]
    fn init_parses_back() {
        let init = init_segment(*b"fra");
        let top = RawBox::parse_all(&init).unwrap();
        assert_eq!(top.iter().map(|b| b.typ).collect::<Vec<_>>(), vec![FTYP, MOOV]);
        let moov = &top[1];
        let mdia = moov.path(&[TRAK, MDIA]).unwrap();
        let hdlr = Hdlr::decode(&encoded(mdia.child(HDLR).unwrap())).unwrap();
        assert_eq!(hdlr.handler_type, FourCC::new(b"subt"));
        let mdhd = Mdhd::decode(&encoded(mdia.child(MDHD).unwrap())).unwrap();
        assert_eq!((mdhd.timescale, &mdhd.language), (1000, b"fra"));
        let minf = mdia.child(MINF).unwrap();
        assert_eq!(minf.child(FourCC::new(b"sthd")).unwrap().body(), &[0, 0, 0, 0]);
        let stsd = minf.path(&[STBL, STSD]).unwrap();
        // version/flags, entry count 1, then the stpp entry.
        assert_eq!(stsd.body(), &[0, 0, 0, 0, 0, 0, 0, 1]);
        let entry = &stsd.children.as_ref().unwrap()[0];
        assert_eq!(entry.typ, FourCC::new(b"stpp"));
        // reserved(6), data_reference_index 1.
        assert_eq!(&entry.body()[..8], &[0, 0, 0, 0, 0, 0, 0, 1]);
        let fields = &entry.body()[8..];
        let want = b"http://www.w3.org/ns/ttml\0\0\0";
        assert_eq!(&fields[..want.len()], want);
        let mime = RawBox::parse_all(&fields[want.len()..]).unwrap();
        assert_eq!(mime[0].typ, FourCC::new(b"mime"));
        assert_eq!(&mime[0].body()[4..], b"application/ttml+xml;codecs=im1t\0");
        let trex = Trex::decode(&encoded(moov.path(&[MVEX, TREX]).unwrap())).unwrap();
        assert_eq!(trex.track_id, 1);
    }

    #[test]
    fn media_segment_parses_back() {
        let doc = b"<tt/>";
        let seg = media_segment(3, 4000, 2000, doc);
        let top = RawBox::parse_all(&seg).unwrap();
        assert_eq!(top.iter().map(|b| b.typ).collect::<Vec<_>>(), vec![STYP, MOOF, MDAT]);
        let traf = top[1].child(TRAF).unwrap();
        assert_eq!(Mfhd::decode(&encoded(top[1].child(MFHD).unwrap())).unwrap().sequence_number, 3);
        assert_eq!(Tfdt::decode(&encoded(traf.child(TFDT).unwrap())).unwrap().base_media_decode_time, 4000);
        let trun = Trun::decode(&encoded(traf.child(TRUN).unwrap())).unwrap();
        assert_eq!(trun.entries.len(), 1);
        assert_eq!((trun.entries[0].duration, trun.entries[0].size), (Some(2000), Some(doc.len() as u32)));
        // The data offset lands on the document, counted from the moof.
        let moof_at = top[0].encoded_len() as usize;
        let at = moof_at + trun.data_offset.unwrap() as usize;
        assert_eq!(&seg[at..], doc);
        assert_eq!(top[2].body(), doc);
    }

    fn encoded(b: &RawBox<'_>) -> Vec<u8> {
        let mut v = Vec::new();
        b.encode(&mut v);
        v
    }
}
