//! Resource patterns of signed URLs: `*` matches any run of characters (`/` included, as
//! CloudFront and Akamai both define it), `?` exactly one, everything else itself.
//!
//! Matching is over bytes and takes at most `pattern.len() * text.len()` steps whatever the
//! pattern (one backtrack point, the last `*`, instead of recursion), so a hostile pattern
//! such as `*a*a*a*…b` cannot blow up.

/// Whether `text` matches `pattern` whole.
pub fn matches(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0usize, 0usize);
    // The position after the last `*` seen, and the text position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi + 1, ti));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more byte and try again from there.
                Some((sp, st)) => {
                    pi = sp;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn table() {
        for (p, t, want) in [
            ("*", "", true),
            ("*", "https://d.example/any/thing?x=1", true),
            ("", "", true),
            ("", "a", false),
            ("a", "", false),
            ("https://d.example/vod/movie/*", "https://d.example/vod/movie/v1/1.m4s", true),
            ("https://d.example/vod/movie/*", "https://d.example/vod/movie", false),
            ("https://d.example/vod/movie/*", "https://d.example/vod/other/1.m4s", false),
            ("https://d.example/vod/*/master.m3u8", "https://d.example/vod/a/b/master.m3u8", true),
            ("https://d.example/vod/movie/?.m4s", "https://d.example/vod/movie/7.m4s", true),
            ("https://d.example/vod/movie/?.m4s", "https://d.example/vod/movie/17.m4s", false),
            ("/vod/*", "/vod/movie/manifest.mpd", true),
            ("*.m4s", "/a/b.m4s", true),
            ("*.m4s", "/a/b.m4s.txt", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("**", "abc", true),
            ("?", "", false),
            ("a?c", "abc", true),
        ] {
            assert_eq!(matches(p, t), want, "{p:?} vs {t:?}");
        }
    }

    #[test]
    fn hostile_patterns_finish() {
        let p = "*a".repeat(2000) + "b";
        let t = "a".repeat(4000);
        assert!(!matches(&p, &t));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_literal_patterns_are_equality(p in "[a*?/.]{0,24}", t in "[a/.]{0,24}") {
            let _ = matches(&p, &t);
            if !p.contains(['*', '?']) {
                proptest::prop_assert_eq!(matches(&p, &t), p == t);
            }
            let (pat, text) = (format!("*{t}"), format!("xyz{t}"));
            proptest::prop_assert!(matches(&pat, &text));
        }
    }
}
