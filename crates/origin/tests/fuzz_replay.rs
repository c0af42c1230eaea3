//! Replays the `route` fuzz target's seeds and regressions (`fuzz/seeds/route/`,
//! `fuzz/regressions/route/`) under plain `cargo test`, and runs its body over generated
//! URL-shaped inputs. See `fuzz/README.md`.

use proptest::prelude::*;
use sealcast_origin::route::fuzz_one;

#[test]
fn route_seeds_and_regressions_do_not_panic() {
    sealcast_testkit::replay_fuzz_inputs("route", fuzz_one);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]
    /// Paths made of the grammar's own pieces (so most reach deep into it), with any range.
    #[test]
    fn url_shaped_inputs_keep_the_invariants(
        parts in proptest::collection::vec(prop_oneof![
            Just("demo".to_string()), Just("loc".to_string()), Just("x.ism".to_string()), Just("cenc".to_string()), Just("cbcs".to_string()), Just("aes".to_string()), Just("1.m4s".to_string()), Just("0.ts".to_string()),
            Just("init.mp4".to_string()), Just("index.m3u8".to_string()), Just("ts.m3u8".to_string()), Just("Manifest".to_string()), Just("manifest(format=m3u8-aapl,encryption=cbc)".to_string()),
            Just("QualityLevels(1)".to_string()), Just("Fragments(v=0)".to_string()), Just("Fragments(v=i,format=mpd-time-csf)".to_string()), Just("..".to_string()), Just("%2e%2e".to_string()),
            Just("".to_string()), Just("%00".to_string()), Just("a\\b".to_string()), Just("key".to_string()), "[ -~]{0,12}",
        ], 0..7),
        range in "(bytes=)?[0-9-,]{0,24}",
    ) {
        fuzz_one(format!("/{}\n{range}", parts.join("/")).as_bytes());
    }
}

#[test]
fn http1_seeds_and_regressions_do_not_panic() {
    sealcast_testkit::replay_fuzz_inputs("http1", sealcast_origin::h1::fuzz_one);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]
    /// Request heads made of HTTP's own pieces (and some that are not), read in pieces of
    /// every size and whole.
    #[test]
    fn head_shaped_inputs_read_alike_in_pieces_and_whole(
        piece in any::<u8>(),
        method in prop_oneof![Just("GET".to_string()), Just("HEAD".to_string()), Just("POST".to_string()), Just("PRI".to_string()), Just("G T".to_string()), "[A-Z]{1,7}"],
        target in prop_oneof![Just("/demo/manifest.mpd".to_string()), Just("*".to_string()), Just("http://h/a?b".to_string()), "/[ -~]{0,30}"],
        version in prop_oneof![Just("HTTP/1.1".to_string()), Just("HTTP/1.0".to_string()), Just("HTTP/2.0".to_string()), "HTTP/[0-9x.]{1,4}"],
        headers in proptest::collection::vec(("[a-zA-Z-]{1,16}|Content-Length|Connection|Transfer-Encoding|Expect", "[ -~]{0,24}|0|close|keep-alive"), 0..8),
        eol in prop_oneof![Just("\r\n".to_string()), Just("\n".to_string())],
        rest in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let mut head = format!("{method} {target} {version}{eol}");
        for (k, v) in headers {
            head += &format!("{k}: {v}{eol}");
        }
        head += &eol;
        let input = [&[piece][..], head.as_bytes(), &rest].concat();
        sealcast_origin::h1::fuzz_one(&input);
    }

    /// Anything at all.
    #[test]
    fn any_bytes_read_alike_in_pieces_and_whole(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        sealcast_origin::h1::fuzz_one(&data);
    }
}
