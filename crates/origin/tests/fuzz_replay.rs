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
