//! TTML / IMSC1 reader: each timed `<p>` becomes a cue, its text (with `<span>` content and
//! `<br/>` line breaks) escaped into a WebVTT payload, its region's position into cue
//! settings. Timing follows TTML's `par` default: an element's `begin` counts from its
//! parent's, `end` or `dur` closes it, and a `<p>` without either ends with its parent.
//!
//! Hostile input: quick-xml never expands entities beyond the five predefined ones and
//! character references, and a document type declaration (where entity definitions would
//! live: "billion laughs") is refused outright; nesting depth and cue count are bounded.
//!
//! Not carried over: TTML styling (colours, fonts), `<span>` timing inside a `<p>`, `<set>`
//! animation, and `timeBase` other than `media`.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::{Cue, TextDoc, TextError, TextLimits};

fn malformed(detail: impl Into<String>) -> TextError {
    TextError::Malformed { format: "TTML", detail: detail.into() }
}

/// Frame and tick rates from the root's `ttp:` parameters.
#[derive(Debug, Clone, Copy)]
struct Rates {
    /// Effective frames per second.
    frame_rate: f64,
    /// Ticks per second.
    tick_rate: f64,
}

/// A region's placement, as WebVTT cue settings.
#[derive(Debug, Clone)]
struct Region {
    id: String,
    settings: String,
}

/// An open element's timing: its absolute begin and, if known, end (milliseconds).
#[derive(Debug, Clone, Copy)]
struct Span {
    begin: f64,
    end: Option<f64>,
}

/// Parses a TTML document.
pub fn parse(bytes: &[u8], limits: TextLimits) -> Result<TextDoc, TextError> {
    let mut r = Reader::from_reader(bytes);
    let mut buf = Vec::new();
    let mut doc = TextDoc::default();
    let mut rates = Rates { frame_rate: 30.0, tick_rate: 1.0 };
    let mut regions: Vec<Region> = Vec::new();
    // Timing of each open element (the root's is [0, none)).
    let mut stack: Vec<(Vec<u8>, Span)> = Vec::new();
    let mut seen_root = false;
    // The `<p>` being collected: its timing, settings, text.
    let mut para: Option<(Span, String, String)> = None;
    let mut para_depth = 0usize;
    loop {
        let pos = r.buffer_position();
        let ev = r.read_event_into(&mut buf).map_err(|e| malformed(format!("at byte {}: {e}", r.error_position())))?;
        match ev {
            Event::DocType(_) => return Err(malformed("a document type declaration (entity definitions) is not accepted")),
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(ev, Event::Empty(_));
                let name = e.local_name().as_ref().to_vec();
                if !seen_root {
                    if name != b"tt" {
                        return Err(malformed("the root element is not <tt>"));
                    }
                    seen_root = true;
                    rates = root_rates(e)?;
                    doc.language = attr(e, b"lang")?;
                }
                if stack.len() >= limits.max_depth {
                    return Err(TextError::Limit(format!("elements nested deeper than {}", limits.max_depth)));
                }
                let parent = stack.last().map_or(Span { begin: 0.0, end: None }, |s| s.1);
                let span = timing(e, parent, rates, limits).map_err(|d| malformed(format!("at byte {pos}: {d}")))?;
                match name.as_slice() {
                    // `xml:id` (any prefix); at most 256 regions are kept.
                    b"region" if regions.len() < 256 => {
                        if let Some(id) = attr(e, b"id")? {
                            regions.push(Region { id, settings: region_settings(e)? });
                        }
                    }
                    b"p" if para.is_none() => {
                        let region = attr(e, b"region")?.or_else(|| inherited_region(&stack));
                        let settings = region.and_then(|id| regions.iter().find(|x| x.id == id).map(|x| x.settings.clone())).unwrap_or_default();
                        let align = attr(e, b"textAlign")?.and_then(|a| text_align(&a));
                        let settings = join_settings(&settings, align);
                        para = Some((span, settings, String::new()));
                        para_depth = stack.len();
                    }
                    b"br" if para.is_some() => {
                        if let Some((_, _, t)) = &mut para {
                            t.push('\n');
                        }
                    }
                    _ => {}
                }
                if !empty {
                    let mut name_with_region = name;
                    if let Some(reg) = attr(e, b"region")? {
                        // Remember a container's region for the paragraphs inside it.
                        name_with_region.push(0);
                        name_with_region.extend_from_slice(reg.as_bytes());
                    }
                    stack.push((name_with_region, span));
                } else if e.local_name().as_ref() == b"p" && para.is_some() && para_depth == stack.len() {
                    // `<p/>`: an empty paragraph, nothing to show.
                    para = None;
                }
            }
            Event::Text(t) => {
                if let Some((_, _, text)) = &mut para {
                    let s = t.unescape().map_err(|e| malformed(format!("at byte {pos}: {e}")))?;
                    push_collapsed(text, &s);
                    if text.len() > limits.max_bytes as usize {
                        return Err(TextError::Limit("paragraph text too large".into()));
                    }
                }
            }
            Event::CData(t) => {
                if let Some((_, _, text)) = &mut para {
                    push_collapsed(text, &String::from_utf8_lossy(&t));
                }
            }
            Event::End(_) => {
                stack.pop();
                if para.is_some() && stack.len() == para_depth {
                    if let Some((span, settings, text)) = para.take() {
                        finish_cue(&mut doc, span, settings, &text, limits)?;
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !seen_root {
        return Err(malformed("no <tt> element"));
    }
    Ok(doc)
}

/// The region a container element on the stack named (`div region="r1"`), innermost first.
fn inherited_region(stack: &[(Vec<u8>, Span)]) -> Option<String> {
    stack.iter().rev().find_map(|(n, _)| n.iter().position(|&b| b == 0).map(|i| String::from_utf8_lossy(&n[i + 1..]).into_owned()))
}

fn finish_cue(doc: &mut TextDoc, span: Span, settings: String, text: &str, limits: TextLimits) -> Result<(), TextError> {
    let Some(end) = span.end else { return Ok(()) };
    let (start, end) = (span.begin.round(), end.round());
    if start < 0.0 || end <= start {
        return Ok(());
    }
    if end > limits.max_time_ms as f64 {
        return Err(malformed(format!("a time past the {} h limit", limits.max_time_ms / 3_600_000)));
    }
    // Trim each line; drop empty lines (a WebVTT payload may not hold a blank line).
    let lines: Vec<&str> = text.split('\n').map(str::trim).filter(|l| !l.is_empty()).collect();
    if lines.is_empty() {
        return Ok(());
    }
    if doc.cues.len() >= limits.max_cues {
        return Err(TextError::Limit(format!("more than {} cues", limits.max_cues)));
    }
    doc.cues.push(Cue { id: None, start_ms: start as u64, end_ms: end as u64, settings, text: lines.join("\n") });
    Ok(())
}

/// Appends `s` to `out`, whitespace runs collapsed to one space (TTML's default
/// `xml:space="default"`) and WebVTT's markup characters escaped.
fn push_collapsed(out: &mut String, s: &str) {
    for c in s.chars() {
        if c.is_whitespace() {
            if !out.is_empty() && !out.ends_with([' ', '\n']) {
                out.push(' ');
            }
            continue;
        }
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // What a WebVTT reader would turn it into anyway.
            '\0' => out.push('\u{fffd}'),
            _ => out.push(c),
        }
    }
}

/// The value of attribute `local` (any namespace prefix).
fn attr(e: &BytesStart<'_>, local: &[u8]) -> Result<Option<String>, TextError> {
    for a in e.attributes() {
        let a = a.map_err(|e| malformed(e.to_string()))?;
        if a.key.local_name().as_ref() == local {
            return Ok(Some(a.unescape_value().map_err(|e| malformed(e.to_string()))?.into_owned()));
        }
    }
    Ok(None)
}

fn root_rates(e: &BytesStart<'_>) -> Result<Rates, TextError> {
    let num = |v: Option<String>, what: &str| -> Result<Option<f64>, TextError> {
        v.map(|s| s.trim().parse::<f64>().ok().filter(|x| x.is_finite() && *x > 0.0 && *x < 1e10).ok_or_else(|| malformed(format!("bad {what} '{s}'")))).transpose()
    };
    let fr = num(attr(e, b"frameRate")?, "ttp:frameRate")?;
    let mult = match attr(e, b"frameRateMultiplier")? {
        Some(m) => {
            let mut it = m.split_whitespace().map(|x| x.parse::<f64>().ok().filter(|v| *v > 0.0 && v.is_finite()));
            match (it.next().flatten(), it.next().flatten()) {
                (Some(n), Some(d)) => n / d,
                _ => return Err(malformed(format!("bad ttp:frameRateMultiplier '{m}'"))),
            }
        }
        None => 1.0,
    };
    let sub = num(attr(e, b"subFrameRate")?, "ttp:subFrameRate")?.unwrap_or(1.0);
    let frame_rate = fr.unwrap_or(30.0) * mult;
    // TTML: tickRate defaults to frameRate × subFrameRate when a frame rate is given, else 1.
    let tick_rate = num(attr(e, b"tickRate")?, "ttp:tickRate")?.unwrap_or(if fr.is_some() { frame_rate * sub } else { 1.0 });
    Ok(Rates { frame_rate, tick_rate })
}

/// An element's absolute timing under `parent`.
fn timing(e: &BytesStart<'_>, parent: Span, rates: Rates, limits: TextLimits) -> Result<Span, String> {
    let get = |n: &[u8]| attr(e, n).map_err(|e| e.to_string());
    let t = |v: Option<String>| -> Result<Option<f64>, String> {
        v.map(|s| {
            let ms = time_expression(&s, rates).ok_or_else(|| format!("bad time expression '{s}'"))?;
            if ms > limits.max_time_ms as f64 {
                return Err(format!("time '{s}' is past the {} h limit", limits.max_time_ms / 3_600_000));
            }
            Ok(ms)
        })
        .transpose()
    };
    let begin = parent.begin + t(get(b"begin")?)?.unwrap_or(0.0);
    let end = match (t(get(b"end")?)?, t(get(b"dur")?)?) {
        (Some(e), _) => Some(parent.begin + e),
        (None, Some(d)) => Some(begin + d),
        (None, None) => parent.end,
    };
    // A child never outlasts its parent.
    let end = match (end, parent.end) {
        (Some(e), Some(p)) => Some(e.min(p)),
        (e, _) => e,
    };
    Ok(Span { begin, end })
}

/// A TTML time expression in milliseconds: clock time `hh:mm:ss[.fff]` or `hh:mm:ss:ff[.sub]`,
/// or offset time `<n>(h|m|s|ms|f|t)`.
pub fn time_expression(s: &str, rates: impl Into<Option<(f64, f64)>>) -> Option<f64> {
    let (fr, tr) = rates.into().unwrap_or((30.0, 1.0));
    let s = s.trim();
    let num = |x: &str| -> Option<f64> { (!x.is_empty() && x.bytes().all(|b| b.is_ascii_digit() || b == b'.') && x.bytes().filter(|&b| b == b'.').count() <= 1 && x.len() <= 20).then(|| x.parse::<f64>().ok()).flatten() };
    if s.contains(':') {
        let p: Vec<&str> = s.split(':').collect();
        let (h, m, sec, frames) = match p.as_slice() {
            [h, m, s] => (*h, *m, *s, None),
            [h, m, s, f] => (*h, *m, *s, Some(*f)),
            _ => return None,
        };
        if h.len() < 2 || m.len() != 2 || !m.bytes().all(|b| b.is_ascii_digit()) || !h.bytes().all(|b| b.is_ascii_digit()) || h.len() > 9 {
            return None;
        }
        let (h, m, sec) = (num(h)?, num(m)?, num(sec)?);
        if m >= 60.0 || sec >= 61.0 {
            return None;
        }
        let f = match frames {
            Some(f) => num(f)? / fr * 1000.0,
            None => 0.0,
        };
        return Some(h * 3_600_000.0 + m * 60_000.0 + sec * 1000.0 + f);
    }
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = s.split_at(split);
    let n = num(n)?;
    let ms = match unit {
        "h" => n * 3_600_000.0,
        "m" => n * 60_000.0,
        "s" => n * 1000.0,
        "ms" => n,
        "f" => n / fr * 1000.0,
        "t" => n / tr * 1000.0,
        _ => return None,
    };
    ms.is_finite().then_some(ms)
}

impl From<Rates> for Option<(f64, f64)> {
    fn from(r: Rates) -> Self {
        Some((r.frame_rate, r.tick_rate))
    }
}

/// WebVTT settings placing a cue like TTML region `e`: `tts:origin` and `tts:extent` in
/// percent give the line (top, or bottom with `displayAlign="after"`), the left edge and the
/// width. Other units (pixels need the root extent) are left out.
fn region_settings(e: &BytesStart<'_>) -> Result<String, TextError> {
    let pct = |v: Option<String>| -> Option<(f64, f64)> {
        let v = v?;
        let mut it = v.split_whitespace().map(|x| x.strip_suffix('%').and_then(|n| n.parse::<f64>().ok()).filter(|n| (0.0..=100.0).contains(n)));
        Some((it.next()??, it.next()??))
    };
    let origin = pct(attr(e, b"origin")?);
    let extent = pct(attr(e, b"extent")?);
    let after = attr(e, b"displayAlign")?.as_deref() == Some("after");
    let mut out = Vec::new();
    if let Some((x, y)) = origin {
        let (w, h) = extent.unwrap_or((100.0 - x, 100.0 - y));
        if after {
            out.push(format!("line:{}%,end", fmt_pct((y + h).min(100.0))));
        } else {
            out.push(format!("line:{}%", fmt_pct(y)));
        }
        out.push(format!("position:{}%,line-left", fmt_pct(x)));
        out.push(format!("size:{}%", fmt_pct(w.min(100.0 - x))));
    }
    Ok(out.join(" "))
}

fn fmt_pct(v: f64) -> String {
    let r = (v * 100.0).round() / 100.0;
    if r.fract() == 0.0 {
        format!("{}", r as i64)
    } else {
        format!("{r}")
    }
}

fn text_align(a: &str) -> Option<&'static str> {
    match a {
        "left" => Some("align:left"),
        "center" => Some("align:center"),
        "right" => Some("align:right"),
        "start" => Some("align:start"),
        "end" => Some("align:end"),
        _ => None,
    }
}

fn join_settings(region: &str, align: Option<&str>) -> String {
    match (region.is_empty(), align) {
        (_, None) => region.to_string(),
        (true, Some(a)) => a.to_string(),
        (false, Some(a)) => format!("{region} {a}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<TextDoc, TextError> {
        parse(s.as_bytes(), TextLimits::default())
    }

    #[test]
    fn paragraphs_become_cues() {
        let d = p(r#"<?xml version="1.0" encoding="UTF-8"?>
<tt xmlns="http://www.w3.org/ns/ttml" xmlns:tts="http://www.w3.org/ns/ttml#styling" xmlns:ttp="http://www.w3.org/ns/ttml#parameter" ttp:frameRate="25" xml:lang="fr">
  <head><layout><region xml:id="top" tts:origin="10% 5%" tts:extent="80% 20%"/><region xml:id="bottom" tts:origin="10% 70%" tts:extent="80% 20%" tts:displayAlign="after"/></layout></head>
  <body region="bottom"><div begin="1s">
    <p begin="00:00:00.500" end="00:00:02.000">Bonjour <span tts:color="yellow">&amp; bienvenue</span><br/>  ligne   deux </p>
    <p begin="2.5s" dur="1000ms" region="top" tts:textAlign="center">a &lt;b&gt;</p>
    <p begin="00:00:04:05" end="00:00:05:00">frames</p>
    <p begin="6s">no end: dropped</p>
  </div></body>
</tt>"#)
        .unwrap();
        assert_eq!(d.language.as_deref(), Some("fr"));
        let got: Vec<(u64, u64, &str, &str)> = d.cues.iter().map(|c| (c.start_ms, c.end_ms, c.settings.as_str(), c.text.as_str())).collect();
        assert_eq!(
            got,
            [
                (1500, 3000, "line:90%,end position:10%,line-left size:80%", "Bonjour &amp; bienvenue\nligne deux"),
                (3500, 4500, "line:5% position:10%,line-left size:80% align:center", "a &lt;b&gt;"),
                (5200, 6000, "line:90%,end position:10%,line-left size:80%", "frames"),
            ]
        );
    }

    #[test]
    fn time_expressions() {
        assert_eq!(time_expression("00:00:01.250", None), Some(1250.0));
        assert_eq!(time_expression("01:00:00:15", Some((30.0, 1.0))), Some(3_600_500.0));
        assert_eq!(time_expression("2.5s", None), Some(2500.0));
        assert_eq!(time_expression("10000000t", Some((30.0, 10_000_000.0))), Some(1000.0));
        assert_eq!(time_expression("1.5h", None), Some(5_400_000.0));
        assert_eq!(time_expression("12", None), None);
        assert_eq!(time_expression("1:2:3", None), None);
        assert_eq!(time_expression("-1s", None), None);
    }

    #[test]
    fn hostile_documents_are_refused() {
        let laughs = r#"<?xml version="1.0"?><!DOCTYPE tt [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><tt xmlns="http://www.w3.org/ns/ttml"><body><div><p begin="0s" end="1s">&b;</p></div></body></tt>"#;
        assert!(matches!(p(laughs), Err(TextError::Malformed { .. })), "{:?}", p(laughs));
        // An undefined entity is an error, never expanded.
        assert!(p(r#"<tt><body><div><p begin="0s" end="1s">&b;</p></div></body></tt>"#).is_err());
        assert!(matches!(p(&format!("<tt>{}", "<div>".repeat(100))), Err(TextError::Limit(_))));
        assert!(p("<html/>").is_err());
        assert!(p("not xml at all").is_err());
        assert!(p(r#"<tt><body><p begin="999999999h" end="1000000000h">x</p></body></tt>"#).is_err());
        assert!(p(r#"<tt><body><p begin="0s" end="1s">x</p></body></t>"#).is_err());
    }
}
