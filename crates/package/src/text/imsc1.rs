//! IMSC1 Text Profile writer: the cues of one window of a [`TextDoc`] as one TTML document,
//! the sample of an `stpp` media segment ([`super::stpp`]).
//!
//! Timing. ISO/IEC 14496-30 puts the time expressions of a TTML sample on the track's media
//! timeline (the track's time 0, not the sample's start; Smooth Streaming is the exception,
//! with times relative to the fragment), and both browser players read them that way:
//! shaka-player adds only the Period start (`TtmlTextParser`, `timeContext.periodStart`),
//! dash.js offsets by the sample time only for Smooth (`ttmlTimeIsRelative`). Our text track
//! has timescale 1000 and no `presentationTimeOffset`, so media time is presentation time and
//! a cue's milliseconds are written as they are. Each document presents only its sample's
//! interval (14496-30: a sample is active for its duration), so a cue crossing a segment
//! boundary is cut at it: each half in its own sample, never shown twice at once.
//!
//! The cue text is untrusted: WebVTT markup is read (`<b>`, `<i>`, `<u>` become styled
//! `<span>`s, other tags are dropped with their text kept, character references decoded),
//! then every character is XML-escaped and characters XML 1.0 cannot carry are dropped, so
//! no input can end an element or inject one. Positioning (cue settings) is not carried: all
//! cues go to one bottom region, centred.

use std::fmt::Write;

use super::TextDoc;

/// IMSC1 Text Profile designator (W3C IMSC1 6.2), written as `ttp:profile`.
pub const PROFILE_TEXT: &str = "http://www.w3.org/ns/ttml/profile/imsc1/text";
/// The TTML namespace: the `stpp` sample entry's `namespace`.
pub const NS_TTML: &str = "http://www.w3.org/ns/ttml";

impl TextDoc {
    /// The cues overlapping `[start_ms, end_ms)`, cut to that window, as one IMSC1 Text
    /// Profile document; `lang` is its `xml:lang` (empty: undetermined, as TTML allows).
    pub fn imsc1(&self, start_ms: u64, end_ms: u64, lang: &str) -> String {
        let mut s = String::with_capacity(640);
        s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = write!(
            s,
            "<tt xmlns=\"{NS_TTML}\" xmlns:ttp=\"{NS_TTML}#parameter\" xmlns:tts=\"{NS_TTML}#styling\" ttp:profile=\"{PROFILE_TEXT}\" xml:lang=\""
        );
        escape_into(&mut s, lang, true);
        s.push_str("\">\n<head>\n<styling>\n<style xml:id=\"s\" tts:textAlign=\"center\"/>\n</styling>\n<layout>\n");
        s.push_str("<region xml:id=\"r\" tts:origin=\"10% 10%\" tts:extent=\"80% 80%\" tts:displayAlign=\"after\"/>\n</layout>\n</head>\n");
        s.push_str("<body region=\"r\" style=\"s\">\n<div>\n");
        for c in self.cues.iter().take_while(|c| c.start_ms < end_ms).filter(|c| c.end_ms > start_ms) {
            let (b, e) = (c.start_ms.max(start_ms), c.end_ms.min(end_ms));
            let _ = write!(s, "<p begin=\"{}\" end=\"{}\">", clock(b), clock(e));
            payload_into(&mut s, &c.text);
            s.push_str("</p>\n");
        }
        s.push_str("</div>\n</body>\n</tt>\n");
        s
    }
}

/// A TTML clock time with fraction, `HH:MM:SS.mmm` (hours grow past two digits when they must).
fn clock(ms: u64) -> String {
    super::timestamp(ms)
}

/// Whether XML 1.0 can carry `c` (its `Char` production).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Appends `text` XML-escaped (`"` too when `attr`), dropping what XML cannot carry.
fn escape_into(out: &mut String, text: &str, attr: bool) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attr => out.push_str("&quot;"),
            c if xml_char(c) => out.push(c),
            _ => {}
        }
    }
}

/// The TTML content of a WebVTT cue payload: lines joined by `<br/>`, `<b>`/`<i>`/`<u>` as
/// styled spans (closed in order; a stray end tag is ignored), other tags dropped, character
/// references decoded, text escaped.
fn payload_into(out: &mut String, payload: &str) {
    let mut open: Vec<char> = Vec::new();
    let mut text = String::new();
    let mut rest = payload;
    while let Some(i) = rest.find(['<', '&', '\n']) {
        text.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix('\n') {
            flush(out, &mut text);
            out.push_str("<br/>");
            rest = after;
        } else if tail.starts_with('&') {
            let (c, used) = reference(tail);
            text.push(c);
            rest = &tail[used..];
        } else {
            // A tag runs to the next `>` (or the end of the payload).
            let end = tail.find('>').map_or(tail.len(), |j| j + 1);
            let tag = tail[1..end].trim_end_matches('>');
            flush(out, &mut text);
            let (closing, name) = match tag.strip_prefix('/') {
                Some(n) => (true, n),
                None => (false, tag),
            };
            let name = name.split(['.', ' ', '\t']).next().unwrap_or_default();
            let kind = match name {
                "b" => Some('b'),
                "i" => Some('i'),
                "u" => Some('u'),
                _ => None,
            };
            if let Some(k) = kind {
                if !closing {
                    out.push_str(match k {
                        'b' => "<span tts:fontWeight=\"bold\">",
                        'i' => "<span tts:fontStyle=\"italic\">",
                        _ => "<span tts:textDecoration=\"underline\">",
                    });
                    open.push(k);
                } else if open.last() == Some(&k) {
                    out.push_str("</span>");
                    open.pop();
                }
            }
            rest = &tail[end..];
        }
    }
    text.push_str(rest);
    flush(out, &mut text);
    for _ in open {
        out.push_str("</span>");
    }
}

fn flush(out: &mut String, text: &mut String) {
    escape_into(out, text, false);
    text.clear();
}

/// The character a WebVTT character reference at the start of `s` stands for and the bytes it
/// takes; an unknown or malformed one is a literal `&`.
fn reference(s: &str) -> (char, usize) {
    let Some(semi) = s.get(..s.len().min(12)).and_then(|h| h.find(';')) else { return ('&', 1) };
    let name = &s[1..semi];
    let c = match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some('\u{a0}'),
        "lrm" => Some('\u{200e}'),
        "rlm" => Some('\u{200f}'),
        _ => match name.strip_prefix('#') {
            Some(h) if h.starts_with(['x', 'X']) => u32::from_str_radix(&h[1..], 16).ok().and_then(char::from_u32),
            Some(d) => d.parse::<u32>().ok().and_then(char::from_u32),
            None => None,
        },
    };
    match c {
        Some(c) => (c, semi + 1),
        None => ('&', 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::{TextFormat, TextLimits};
    use proptest::strategy::Strategy;

    fn doc(vtt: &str) -> TextDoc {
        TextDoc::parse(vtt.as_bytes(), TextFormat::WebVtt, TextLimits::default()).unwrap()
    }

    #[test]
    fn window_cuts_cues_and_keeps_media_time() {
        let d = doc("WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nA\n\n00:00:04.500 --> 00:00:05.000\nC\n");
        let s = d.imsc1(2000, 4000, "en");
        assert!(s.contains("<p begin=\"00:00:02.000\" end=\"00:00:03.000\">A</p>"), "{s}");
        assert!(!s.contains(">C<"), "{s}");
        let s = d.imsc1(4000, 6000, "en");
        assert!(s.contains("<p begin=\"00:00:04.500\" end=\"00:00:05.000\">C</p>") && !s.contains(">A<"), "{s}");
        assert!(s.contains(&format!("ttp:profile=\"{PROFILE_TEXT}\"")) && s.contains("xml:lang=\"en\""));
        // An empty window is still a whole document.
        let s = d.imsc1(6000, 8000, "");
        assert!(s.contains("<div>\n</div>") && s.ends_with("</tt>\n"), "{s}");
    }

    #[test]
    fn hostile_text_is_escaped_and_markup_mapped() {
        let d = doc("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<b>x</b> &lt;/p&gt;&lt;script&gt; &amp; \"q\" ]]>\n<i>y <u>z</i> w</u> <v Bob>v</v> <c.red>c</c>\u{1}\u{fffe}\n");
        let s = d.imsc1(0, 3000, "en\"><x");
        assert!(s.contains("xml:lang=\"en&quot;&gt;&lt;x\""), "{s}");
        let p = s.split("<p ").nth(1).unwrap();
        assert_eq!(
            p,
            "begin=\"00:00:01.000\" end=\"00:00:02.000\"><span tts:fontWeight=\"bold\">x</span> &lt;/p&gt;&lt;script&gt; &amp; \"q\" ]]&gt;<br/><span tts:fontStyle=\"italic\">y <span tts:textDecoration=\"underline\">z w</span> v c</span></p>\n</div>\n</body>\n</tt>\n"
        );
        // A mismatched `</i>` is ignored and the span closed at the end: always well formed.
        // What quick-xml reads back: the text intact.
        let mut r = quick_xml::Reader::from_str(&s);
        let mut texts = String::new();
        loop {
            match r.read_event().unwrap() {
                quick_xml::events::Event::Text(t) => texts.push_str(&t.unescape().unwrap()),
                quick_xml::events::Event::Eof => break,
                _ => {}
            }
        }
        assert!(texts.contains("</p><script> & \"q\" ]]>"), "{texts}");
    }

    /// Text made of the pieces that could break a document out of its escaping (markup,
    /// references to `<` and `&`, characters XML cannot carry) and plain ones.
    fn tokens() -> impl proptest::strategy::Strategy<Value = String> {
        const PIECES: &[&str] = &["a", " ", "\n", "<", ">", "&", "\"", "'", "&lt;", "&gt;", "&amp;", "&quot;", "&#60;", "&#x3C;", "&#38;", "<b>", "</b>", "<i>", "</i>", "</u>", "<c.x>", "<v A>", "]]>", "<!--", "\u{1}", "\u{fffe}", "é", "&#0;", "&#x1;"];
        proptest::collection::vec(proptest::sample::select(PIECES), 0..16).prop_map(|v| v.concat())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        /// Whatever the cue text and language, the document is well-formed XML and the text
        /// of its one `<p>` is the payload's characters (markup aside): nothing escapes.
        #[test]
        fn any_text_makes_a_well_formed_document(text in tokens(), lang in tokens()) {
            let d = TextDoc { cues: vec![crate::text::Cue { id: None, start_ms: 0, end_ms: 1000, settings: String::new(), text }], ..TextDoc::default() };
            let s = d.imsc1(0, 1000, &lang);
            let mut r = quick_xml::Reader::from_str(&s);
            let (mut ps, mut depth) = (0, 0i32);
            loop {
                match r.read_event() {
                    Ok(quick_xml::events::Event::Start(e)) => {
                        depth += 1;
                        if e.local_name().as_ref() == b"p" { ps += 1; }
                    }
                    Ok(quick_xml::events::Event::End(_)) => depth -= 1,
                    Ok(quick_xml::events::Event::Eof) => break,
                    Ok(_) => {}
                    Err(e) => panic!("{e}: {s}"),
                }
            }
            proptest::prop_assert_eq!((ps, depth), (1, 0));
        }
    }

    #[test]
    fn references() {
        assert_eq!(reference("&amp;x"), ('&', 5));
        assert_eq!(reference("&#x2019;"), ('\u{2019}', 8));
        assert_eq!(reference("&#38;"), ('&', 5));
        assert_eq!(reference("&bogus;"), ('&', 1));
        assert_eq!(reference("& no"), ('&', 1));
        assert_eq!(reference("&#xD800;"), ('&', 1));
    }
}
