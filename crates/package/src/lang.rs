//! Language codes: MP4 stores ISO 639-2/T; manifests want BCP 47 (two letters where one
//! exists) and a human name for HLS `NAME`.

/// (ISO 639-2 T and B codes, ISO 639-1 code, English name) for common languages.
const TABLE: &[(&str, &str, &str, &str)] = &[
    ("eng", "eng", "en", "English"),
    ("fra", "fre", "fr", "French"),
    ("deu", "ger", "de", "German"),
    ("spa", "spa", "es", "Spanish"),
    ("ita", "ita", "it", "Italian"),
    ("por", "por", "pt", "Portuguese"),
    ("nld", "dut", "nl", "Dutch"),
    ("rus", "rus", "ru", "Russian"),
    ("jpn", "jpn", "ja", "Japanese"),
    ("zho", "chi", "zh", "Chinese"),
    ("kor", "kor", "ko", "Korean"),
    ("ara", "ara", "ar", "Arabic"),
    ("hin", "hin", "hi", "Hindi"),
    ("swe", "swe", "sv", "Swedish"),
    ("nor", "nor", "no", "Norwegian"),
    ("dan", "dan", "da", "Danish"),
    ("fin", "fin", "fi", "Finnish"),
    ("pol", "pol", "pl", "Polish"),
    ("tur", "tur", "tr", "Turkish"),
    ("ces", "cze", "cs", "Czech"),
    ("ell", "gre", "el", "Greek"),
    ("heb", "heb", "he", "Hebrew"),
];

/// Whether `s` is usable as a language tag in manifests: 1 to 35 ASCII letters, digits and
/// hyphens, starting with a letter (the shape of BCP 47 and ISO 639 codes; nothing that could
/// close an attribute, start a line or name a path).
pub fn is_tag(s: &str) -> bool {
    (1..=35).contains(&s.len()) && s.starts_with(|c: char| c.is_ascii_alphabetic()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// BCP 47 tag for an ISO 639-2 code (two-letter when known, else the code itself).
pub fn bcp47(code: &str) -> String {
    TABLE.iter().find(|t| t.0 == code || t.1 == code || t.2 == code).map_or_else(|| code.to_string(), |t| t.2.to_string())
}

/// The ISO 639-2/T code MP4 `mdhd` stores for a language tag: the table's for a known one, a
/// three-letter lowercase tag as it is, else `und`.
pub fn iso639_2t(code: &str) -> [u8; 3] {
    let primary = code.split('-').next().unwrap_or_default();
    if let Some(t) = TABLE.iter().find(|t| t.0 == primary || t.1 == primary || t.2 == primary) {
        let b = t.0.as_bytes();
        return [b[0], b[1], b[2]];
    }
    match primary.as_bytes() {
        [a, b, c] if [a, b, c].iter().all(|x| x.is_ascii_lowercase()) => [*a, *b, *c],
        _ => *b"und",
    }
}

/// English display name for a language code, or the code itself.
pub fn display_name(code: &str) -> String {
    TABLE.iter().find(|t| t.0 == code || t.1 == code || t.2 == code).map_or_else(|| code.to_string(), |t| t.3.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn maps() {
        assert_eq!(super::bcp47("fre"), "fr");
        assert_eq!(super::bcp47("tlh"), "tlh");
        assert_eq!(super::display_name("eng"), "English");
        assert_eq!(&super::iso639_2t("en"), b"eng");
        assert_eq!(&super::iso639_2t("fre"), b"fra");
        assert_eq!(&super::iso639_2t("pt-BR"), b"por");
        assert_eq!(&super::iso639_2t("tlh"), b"tlh");
        assert_eq!(&super::iso639_2t("x-y"), b"und");
    }
}
