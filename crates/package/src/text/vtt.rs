//! WebVTT reader (W3C WebVTT, "WebVTT parser algorithm", simplified to what re-serialising
//! needs): the signature line is required, blocks are split on blank lines, `STYLE` and
//! `REGION` blocks before the first cue are kept, `NOTE` blocks dropped, and a block whose
//! timing line does not parse is dropped as the algorithm drops it.

use super::{Cue, TextDoc, TextError, TextLimits};

fn malformed(detail: impl Into<String>) -> TextError {
    TextError::Malformed { format: "WebVTT", detail: detail.into() }
}

/// Cue setting names WebVTT defines; other settings are dropped on the way through.
const SETTINGS: [&str; 6] = ["vertical", "line", "position", "size", "align", "region"];

/// Parses a WebVTT file.
pub fn parse(bytes: &[u8], limits: TextLimits) -> Result<TextDoc, TextError> {
    let text = std::str::from_utf8(bytes).map_err(|e| malformed(format!("not UTF-8 at byte {}", e.valid_up_to())))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Line terminators: CRLF, CR or LF. NUL becomes U+FFFD (as the algorithm says).
    let norm = text.replace("\r\n", "\n").replace('\r', "\n").replace('\0', "\u{fffd}");
    let mut lines = norm.split('\n').enumerate().peekable();
    let first = lines.next().map(|(_, l)| l).unwrap_or_default();
    let sig_ok = first.strip_prefix("WEBVTT").is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']));
    if !sig_ok {
        return Err(malformed("the first line is not 'WEBVTT'"));
    }
    // The rest of the header, up to the first blank line, is dropped.
    for (_, l) in lines.by_ref() {
        if l.is_empty() {
            break;
        }
    }
    let mut doc = TextDoc::default();
    let mut block: Vec<(usize, &str)> = Vec::new();
    let all: Vec<(usize, &str)> = lines.collect();
    let mut i = 0;
    while i <= all.len() {
        let line = all.get(i).copied();
        match line {
            Some((_, l)) if !(l.is_empty() || l.contains("-->") && block.iter().any(|(_, b)| b.contains("-->"))) => block.push(all[i]),
            // A blank line, the end, or a second timing line: the block is complete. (The
            // timing line then starts the next block.)
            _ => {
                if !block.is_empty() {
                    take_block(&block, &mut doc, limits)?;
                    block.clear();
                }
                if let Some((_, l)) = line {
                    if !l.is_empty() {
                        block.push(all[i]);
                    }
                }
            }
        }
        i += 1;
    }
    Ok(doc)
}

fn take_block(block: &[(usize, &str)], doc: &mut TextDoc, limits: TextLimits) -> Result<(), TextError> {
    let (no, head) = block[0];
    let word = |w: &str| head.strip_prefix(w).is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t']));
    if word("NOTE") {
        return Ok(());
    }
    if (word("STYLE") || word("REGION")) && doc.cues.is_empty() && !block.iter().any(|(_, l)| l.contains("-->")) {
        if doc.header.len() + block.iter().map(|(_, l)| l.len() + 1).sum::<usize>() > limits.max_bytes as usize {
            return Err(TextError::Limit("header blocks too large".into()));
        }
        for (_, l) in block {
            doc.header.push_str(l);
            doc.header.push('\n');
        }
        doc.header.push('\n');
        return Ok(());
    }
    let (id, timing, payload) = if head.contains("-->") {
        (None, head, &block[1..])
    } else {
        match block.get(1) {
            Some((_, t)) if t.contains("-->") => (Some(head.to_string()), *t, &block[2..]),
            // Not a cue: dropped, as the parser algorithm drops it.
            _ => return Ok(()),
        }
    };
    let Some((start_ms, end_ms, settings)) = parse_timing(timing, limits).map_err(|e| malformed(format!("line {}: {e}", no + 2)))? else {
        return Ok(());
    };
    if end_ms <= start_ms {
        return Ok(());
    }
    if doc.cues.len() >= limits.max_cues {
        return Err(TextError::Limit(format!("more than {} cues", limits.max_cues)));
    }
    let text = payload.iter().map(|(_, l)| *l).collect::<Vec<_>>().join("\n");
    doc.cues.push(Cue { id, start_ms, end_ms, settings, text });
    Ok(())
}

/// `start --> end [settings]`: `Ok(None)` when the line is not a timing line (the block is
/// dropped), an error for a timestamp past the limit.
fn parse_timing(line: &str, limits: TextLimits) -> Result<Option<(u64, u64, String)>, String> {
    let Some((a, rest)) = line.split_once("-->") else { return Ok(None) };
    let rest = rest.trim_start_matches([' ', '\t']);
    let (b, settings) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
    let (Some(start), Some(end)) = (parse_timestamp(a.trim_matches([' ', '\t'])), parse_timestamp(b)) else { return Ok(None) };
    for t in [start, end] {
        if t > limits.max_time_ms {
            return Err(format!("timestamp {} is past the {} h limit", super::timestamp(t), limits.max_time_ms / 3_600_000));
        }
    }
    let kept: Vec<&str> = settings
        .split([' ', '\t'])
        .filter(|s| s.split_once(':').is_some_and(|(k, v)| SETTINGS.contains(&k) && !v.is_empty() && v.bytes().all(|c| c.is_ascii_alphanumeric() || b"%.,:-_".contains(&c))))
        .collect();
    Ok(Some((start, end, kept.join(" "))))
}

/// `[hh+:]mm:ss.ttt` in milliseconds (`None` when malformed; hours capped at 10 digits so the
/// sum cannot overflow).
pub fn parse_timestamp(s: &str) -> Option<u64> {
    let (hms, frac) = s.split_once('.')?;
    if frac.len() != 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let parts: Vec<&str> = hms.split(':').collect();
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let (h, m, sec) = match parts.as_slice() {
        [m, s] => ("0", *m, *s),
        [h, m, s] if h.len() >= 2 && h.len() <= 10 => (*h, *m, *s),
        _ => return None,
    };
    if !digits(h) || m.len() != 2 || sec.len() != 2 || !digits(m) || !digits(sec) {
        return None;
    }
    let (h, m, sec, ms): (u64, u64, u64, u64) = (h.parse().ok()?, m.parse().ok()?, sec.parse().ok()?, frac.parse().ok()?);
    if m > 59 || sec > 59 {
        return None;
    }
    Some(h * 3_600_000 + m * 60_000 + sec * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<TextDoc, TextError> {
        parse(s.as_bytes(), TextLimits::default())
    }

    #[test]
    fn reads_cues_styles_and_settings() {
        let d = p("\u{feff}WEBVTT - title\r\nKind: captions\r\n\r\nSTYLE\r\n::cue { color: yellow }\r\n\r\nNOTE a comment\r\n\r\nintro\r\n00:01.000 --> 00:02.500 align:start line:90% bogus:1 position:10%,line-left\r\n<v Bob>Hi</v>\r\nthere\r\n\r\n\r\n01:00:00.000 --> 01:00:01.000\r\nlate\r\n").unwrap();
        assert_eq!(d.header, "STYLE\n::cue { color: yellow }\n\n");
        assert_eq!(d.cues.len(), 2);
        assert_eq!(d.cues[0], Cue { id: Some("intro".into()), start_ms: 1000, end_ms: 2500, settings: "align:start line:90% position:10%,line-left".into(), text: "<v Bob>Hi</v>\nthere".into() });
        assert_eq!((d.cues[1].start_ms, d.cues[1].end_ms), (3_600_000, 3_601_000));
    }

    #[test]
    fn drops_bad_blocks_keeps_going() {
        let d = p("WEBVTT\n\n00:01.000 --> nonsense\nx\n\nnot a cue\n\n00:02.000 --> 00:01.000\nbackwards\n\n00:03.000 --> 00:04.000\nok\n00:05.000 --> 00:06.000\nsecond timing line starts a cue\n").unwrap();
        let t: Vec<&str> = d.cues.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(t, ["ok", "second timing line starts a cue"]);
    }

    #[test]
    fn refuses_what_is_not_webvtt() {
        assert!(matches!(p("WEBVTTX\n"), Err(TextError::Malformed { .. })));
        assert!(matches!(p(""), Err(TextError::Malformed { .. })));
        assert!(matches!(parse(b"WEBVTT\n\n\xff\xfe", TextLimits::default()), Err(TextError::Malformed { .. })));
        assert!(matches!(p("WEBVTT\n\n9999999999:00:00.000 --> 9999999999:00:01.000\nx\n"), Err(TextError::Malformed { .. })));
        let many = format!("WEBVTT\n\n{}", "00:01.000 --> 00:02.000\nx\n\n".repeat(11));
        assert!(matches!(parse(many.as_bytes(), TextLimits { max_cues: 10, ..TextLimits::default() }), Err(TextError::Limit(_))));
    }

    #[test]
    fn timestamps_parse_strictly() {
        assert_eq!(parse_timestamp("00:01.000"), Some(1000));
        assert_eq!(parse_timestamp("01:00:01.001"), Some(3_601_001));
        assert_eq!(parse_timestamp("1:00:01.001"), None);
        assert_eq!(parse_timestamp("00:60.000"), None);
        assert_eq!(parse_timestamp("00:01.00"), None);
        assert_eq!(parse_timestamp("99999999999:00:00.000"), None);
    }
}
