//! SMIL server manifests (`.ism`) as Azure Media Services and Unified Origin write them:
//! which files and track IDs make up the asset, with bitrates and languages.

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::error::{Error, Result};
use crate::track::TrackKind;

/// One track named by a server manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsmTrack {
    /// `video` or `audio` (from the element name).
    pub kind: TrackKind,
    /// File name relative to the asset folder.
    pub src: String,
    /// `systemBitrate`, if given.
    pub bitrate: Option<u32>,
    /// `trackID` param, if given.
    pub track_id: Option<u32>,
    /// `systemLanguage`, if given.
    pub language: Option<String>,
    /// `trackName` param, if given.
    pub track_name: Option<String>,
}

/// Parses a `.ism` document.
pub fn parse(xml: &[u8]) -> Result<Vec<IsmTrack>> {
    let mut r = Reader::from_reader(xml);
    r.config_mut().trim_text(true);
    let mut buf = Vec::new();
    let mut out: Vec<IsmTrack> = Vec::new();
    let mut in_track = false;
    loop {
        let ev = r.read_event_into(&mut buf).map_err(|e| Error::Ism(e.to_string()))?;
        let (e, empty) = match &ev {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) => {
                if matches!(e.local_name().as_ref(), b"video" | b"audio") {
                    in_track = false;
                }
                buf.clear();
                continue;
            }
            Event::Eof => break,
            _ => {
                buf.clear();
                continue;
            }
        };
        let attr = |name: &[u8]| -> Result<Option<String>> {
            for a in e.attributes() {
                let a = a.map_err(|e| Error::Ism(e.to_string()))?;
                if a.key.local_name().as_ref() == name {
                    return Ok(Some(a.unescape_value().map_err(|e| Error::Ism(e.to_string()))?.into_owned()));
                }
            }
            Ok(None)
        };
        match e.local_name().as_ref() {
            n @ (b"video" | b"audio") => {
                let kind = if n == b"video" { TrackKind::Video } else { TrackKind::Audio };
                let src = attr(b"src")?.ok_or_else(|| Error::Ism("track without src".into()))?;
                let bitrate = attr(b"systemBitrate")?.map(|b| b.parse().map_err(|_| Error::Ism(format!("bad systemBitrate '{b}'")))).transpose()?;
                out.push(IsmTrack { kind, src, bitrate, track_id: None, language: attr(b"systemLanguage")?, track_name: None });
                in_track = !empty;
            }
            b"param" if in_track => {
                let (Some(name), Some(value)) = (attr(b"name")?, attr(b"value")?) else { continue };
                let Some(t) = out.last_mut() else { continue };
                match name.as_str() {
                    "trackID" => t.track_id = Some(value.parse().map_err(|_| Error::Ism(format!("bad trackID '{value}'")))?),
                    "trackName" => t.track_name = Some(value),
                    _ => {}
                }
            }
            _ => {}
        }
        buf.clear();
    }
    if out.is_empty() {
        return Err(Error::Ism("no video or audio tracks".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_ams_style() {
        let x = br#"<?xml version="1.0"?><smil xmlns="http://www.w3.org/2001/SMIL20/Language"><body><switch>
          <video src="v.ismv" systemBitrate="500000"><param name="trackID" value="2" valuetype="data"/></video>
          <audio src="a.isma" systemBitrate="64000" systemLanguage="fra"/></switch></body></smil>"#;
        let t = super::parse(x).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].track_id, t[0].bitrate), (Some(2), Some(500000)));
        assert_eq!(t[1].language.as_deref(), Some("fra"));
        assert!(super::parse(b"<smil><body/></smil>").is_err());
        assert!(super::parse(b"<smil><video src='x' systemBitrate='zz'/></smil>").is_err());
    }
}
