//! Replays the DRM fuzz targets' seeds and every input that once crashed one
//! (`fuzz/seeds/<target>/`, `fuzz/regressions/<target>/`) through the entry points the
//! targets call (`sealcast_drm::fuzzing`), under plain `cargo test` on stable. See
//! `fuzz/README.md`.

use std::path::{Path, PathBuf};

use sealcast_drm::fuzzing::{fuzz_clearkey, fuzz_cpix, fuzz_pssh, fuzz_signed, fuzz_token, signed_token_outcome};

use sealcast_testkit::{fuzz_inputs as inputs, replay_fuzz_inputs as replay};

fn fuzz_dir() -> PathBuf {
    sealcast_testkit::repo_root().join("fuzz")
}

#[test]
fn token_seeds_and_regressions_do_not_panic() {
    replay("token", fuzz_token);
}

#[test]
fn clearkey_seeds_and_regressions_do_not_panic() {
    replay("clearkey", fuzz_clearkey);
}

#[test]
fn cpix_seeds_and_regressions_do_not_panic() {
    replay("cpix", fuzz_cpix);
}

#[test]
fn pssh_seeds_and_regressions_do_not_panic() {
    replay("pssh", fuzz_pssh);
}

#[test]
fn signed_seeds_and_regressions_do_not_panic() {
    replay("signed", fuzz_signed);
}

/// The `J` and `S` token seeds are only worth having if some get all the way through the
/// claim checks; otherwise the fuzzer would start with no coverage of them. Seeds named
/// `*_ok*` must be accepted, the others refused.
#[test]
fn signed_token_seeds_reach_the_claim_checks() {
    let mut accepted = 0;
    for p in inputs("seeds", "token") {
        let data = std::fs::read(&p).unwrap();
        let Some(outcome) = signed_token_outcome(&data) else { continue };
        let ok = p.file_name().is_some_and(|n| n.to_string_lossy().contains("_ok"));
        assert_eq!(outcome.is_ok(), ok, "{}: {outcome:?}", p.display());
        accepted += usize::from(ok);
    }
    assert!(accepted >= 2, "only {accepted} accepted J/S seeds");
}

/// Writes `fuzz/seeds/{token,clearkey,cpix,pssh}/`. Run by `fuzz/make_seeds.sh`;
/// deterministic (fixed secrets, keys and KIDs; RSA/EC signatures from the throw-away keys
/// in `tests/keys/`: PKCS#1 v1.5 is deterministic, ECDSA is not, so the ES256 seed changes
/// on each run and is written only when missing).
#[test]
#[ignore = "writes seed files; run by fuzz/make_seeds.sh"]
fn write_drm_seeds() {
    use aws_lc_rs::hmac;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use sealcast_drm::auth::CONTENT_KEY_CLAIM;
    use sealcast_drm::fuzzing::{FUZZ_AUDIENCE as AUD, FUZZ_ISSUER as ISS, FUZZ_KID, FUZZ_NOW as NOW};
    use sealcast_drm::widevine::WidevinePsshData;
    use sealcast_drm::{clearkey, Kid, Pssh, Scheme, SystemId};
    use sealcast_isobmff::Atom as _;
    use serde_json::json;

    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = fuzz_dir().join("seeds").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    let with_mode = |mode: u8, body: &[u8]| [&[mode][..], body].concat();
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keys");
    let pem_der = |name: &str| {
        let text = std::fs::read_to_string(keys.join(name)).unwrap();
        STANDARD.decode(text.lines().filter(|l| !l.starts_with("-----")).collect::<String>()).unwrap()
    };
    let kid = FUZZ_KID.to_guid_string();

    // Tokens, `J` mode: JWT payloads the fuzz function signs.
    let good = json!({ "iss": ISS, "aud": AUD, "exp": NOW + 600, "nbf": NOW - 10, "sub": "viewer-1", "role": "premium", CONTENT_KEY_CLAIM: kid });
    write("token", "jwt_payload_ok.json", &with_mode(b'J', good.to_string().as_bytes()));
    let aud_array = json!({ "iss": ISS, "aud": ["x", AUD], "exp": (NOW + 600) as f64 + 0.5, "sub": 1, "role": ["basic", "premium"] });
    write("token", "jwt_payload_ok_aud_array.json", &with_mode(b'J', aud_array.to_string().as_bytes()));
    let expired = json!({ "iss": ISS, "aud": AUD, "exp": NOW - 3600, "sub": "v", "role": "premium" });
    write("token", "jwt_payload_expired.json", &with_mode(b'J', expired.to_string().as_bytes()));
    let other_kid = json!({ "iss": ISS, "aud": AUD, "exp": 1e300, "nbf": -1, "sub": null, "role": true, CONTENT_KEY_CLAIM: "00112233445566778899aabbccddeeff" });
    write("token", "jwt_payload_odd_types.json", &with_mode(b'J', other_kid.to_string().as_bytes()));

    // `S` mode: SWT bodies the fuzz function signs.
    let enc = |s: &str| {
        s.bytes()
            .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect::<String>()
    };
    let swt =
        format!("Issuer={}&Audience={}&ExpiresOn={}&{}={}", enc(ISS), enc(AUD), NOW + 600, enc(CONTENT_KEY_CLAIM), kid);
    write("token", "swt_body_ok.txt", &with_mode(b'S', swt.as_bytes()));
    let swt_bad = format!("Issuer={}&Audience=other&ExpiresOn=99999999999999999999&Issuer=again", enc(ISS));
    write("token", "swt_body_refused.txt", &with_mode(b'S', swt_bad.as_bytes()));

    // `T` mode: whole tokens with a valid structure and a bad signature (another HMAC key;
    // RS256 and ES256 with one signature byte changed: the policy holds all the test
    // keys), plus `alg: none` and an SWT under another key.
    let tamper = |t: String| {
        let mut b = t.into_bytes();
        let i = b.len() - 10;
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
        String::from_utf8(b).unwrap()
    };
    let other_secret = b"a-different-secret-of-32-bytes!!-";
    let hs =
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &good, &EncodingKey::from_secret(other_secret).unwrap())
            .unwrap();
    write("token", "token_hs256_other_key.txt", &with_mode(b'T', hs.as_bytes()));
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some("rsa-2".into());
    let rs = jsonwebtoken::encode(&h, &good, &EncodingKey::from_rsa_der(&pem_der("rsa2_private.pem"))).unwrap();
    write("token", "token_rs256_jwks_bad_sig.txt", &with_mode(b'T', tamper(rs).as_bytes()));
    let es_path = fuzz_dir().join("seeds/token/token_es256_bad_sig.txt");
    if !es_path.exists() {
        let mut h = Header::new(Algorithm::ES256);
        h.kid = Some("ec-9".into());
        let es = jsonwebtoken::encode(&h, &good, &EncodingKey::from_ec_der(&pem_der("ec_private.pem"))).unwrap();
        write("token", "token_es256_bad_sig.txt", &with_mode(b'T', tamper(es).as_bytes()));
    }
    let none =
        format!("{}.{}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#), URL_SAFE_NO_PAD.encode(good.to_string()));
    write("token", "token_alg_none.txt", &with_mode(b'T', none.as_bytes()));
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, other_secret), swt.as_bytes());
    let swt_other = format!("{swt}&HMACSHA256={}", enc(&STANDARD.encode(tag.as_ref())));
    write("token", "token_swt_other_key.txt", &with_mode(b'T', swt_other.as_bytes()));

    // ClearKey licence requests.
    let k = |kid: &Kid| URL_SAFE_NO_PAD.encode(kid.as_bytes());
    let k2 = Kid([0x11; 16]);
    write(
        "clearkey",
        "request_temporary.json",
        format!(r#"{{"kids":["{}"],"type":"temporary"}}"#, k(&FUZZ_KID)).as_bytes(),
    );
    write(
        "clearkey",
        "request_two_padded.json",
        format!(r#"{{"kids":["{}","{}=="],"type":"persistent-license"}}"#, k(&FUZZ_KID), k(&k2)).as_bytes(),
    );
    write("clearkey", "request_no_type_dup.json", format!(r#"{{"kids":["{0}","{0}"]}}"#, k(&k2)).as_bytes());

    // pssh boxes: Widevine v0, W3C Common v1 with two KIDs, v1 with data.
    let wv = WidevinePsshData::new(vec![FUZZ_KID], Scheme::Cenc).to_pssh_box().unwrap();
    write("pssh", "widevine_v0.bin", &wv.to_vec());
    let common = clearkey::common_pssh_box(&[FUZZ_KID, k2]).unwrap();
    write("pssh", "common_v1.bin", &common.to_vec());
    let pr = Pssh::new(SystemId::PLAYREADY, vec![k2], b"<WRMHEADER/>".to_vec());
    write("pssh", "v1_with_data.bin", &pr.to_vec());

    // CPIX: keys with and without scheme and IV, signalling for two systems, usage rules of
    // every filter kind we evaluate.
    let b64 = |b: &[u8]| STANDARD.encode(b);
    let kids = [
        "0f3c2a10-5b7d-4e21-9a88-c4d2e6f01a01",
        "0f3c2a10-5b7d-4e21-9a88-c4d2e6f01a02",
        "0f3c2a10-5b7d-4e21-9a88-c4d2e6f01a03",
    ];
    let wv2 = WidevinePsshData::new(vec![Kid::parse(kids[1]).unwrap()], Scheme::Cenc).to_pssh_box().unwrap();
    let cp = b64(br#"<dashif:Laurl xmlns:dashif="https://dashif.org/CPS">https://lic.example/ck</dashif:Laurl>"#);
    let hls = b64(b"#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI=\"data:text/plain;base64,AA==\"");
    let cpix = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<CPIX xmlns="urn:dashif:org:cpix" xmlns:p="urn:ietf:params:xml:ns:keyprov:pskc" contentId="fuzz" version="2.3">
  <ContentKeyList>
    <ContentKey kid="{k0}" commonEncryptionScheme="cenc"><Data><p:Secret><p:PlainValue>{v0}</p:PlainValue></p:Secret></Data></ContentKey>
    <ContentKey kid="{k1}" explicitIV="{iv}"><Data><p:Secret><p:PlainValue>{v1}</p:PlainValue></p:Secret></Data></ContentKey>
    <ContentKey kid="{k2}" commonEncryptionScheme="cbcs"><Data><p:Secret><p:PlainValue>{v2}</p:PlainValue></p:Secret></Data></ContentKey>
  </ContentKeyList>
  <DRMSystemList>
    <DRMSystem kid="{k1}" systemId="edef8ba9-79d6-4ace-a3c8-27dcd51d21ed" name="Widevine">
      <PSSH>{wv}</PSSH>
      <HLSSignalingData playlist="media">{hls}</HLSSignalingData>
      <URIExtXKey>{uri}</URIExtXKey>
    </DRMSystem>
    <DRMSystem kid="{k1}" systemId="e2719d58-a985-b3c9-781a-b030af78d30e"><ContentProtectionData>{cp}</ContentProtectionData></DRMSystem>
  </DRMSystemList>
  <ContentKeyUsageRuleList>
    <ContentKeyUsageRule kid="{k0}" intendedTrackType="AUDIO"><AudioFilter minChannels="1" maxChannels="2"/></ContentKeyUsageRule>
    <ContentKeyUsageRule kid="{k1}" intendedTrackType="SD"><VideoFilter maxPixels="589824"/><BitrateFilter maxBitrate="3000000"/></ContentKeyUsageRule>
    <ContentKeyUsageRule kid="{k2}" intendedTrackType="HD"><VideoFilter minPixels="589825"/></ContentKeyUsageRule>
  </ContentKeyUsageRuleList>
</CPIX>"#,
        k0 = kids[0],
        k1 = kids[1],
        k2 = kids[2],
        v0 = b64(&[0x11; 16]),
        v1 = b64(&[0x22; 16]),
        v2 = b64(&[0x33; 16]),
        iv = b64(&[0xcd; 16]),
        wv = sealcast_drm::pssh::to_base64(&wv2),
        uri = b64(b"skd://key-1"),
    );
    write("cpix", "keys_signalling_rules.xml", cpix.as_bytes());
    let minimal = format!(
        r#"<c:CPIX xmlns:c="urn:dashif:org:cpix" xmlns:p="urn:ietf:params:xml:ns:keyprov:pskc"><c:ContentKeyList><c:ContentKey kid="{}"><c:Data><p:Secret><p:PlainValue>{}</p:PlainValue></p:Secret></c:Data></c:ContentKey></c:ContentKeyList></c:CPIX>"#,
        kids[0],
        b64(&[0x44; 16])
    );
    write("cpix", "minimal_prefixed.xml", minimal.as_bytes());
}

/// Without a nightly toolchain at hand: 100,000 deterministic mutations of the `signed` seeds
/// (byte flips, inserted delimiters, truncations, mode swaps) through the same entry point.
#[test]
fn signed_seed_mutations_do_not_panic() {
    let seeds: Vec<Vec<u8>> = inputs("seeds", "signed").iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(seeds.len() >= 5, "signed seeds missing");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    const BYTES: &[u8] = b"~!=*?/\n:.%_-{}[]\",0123456789abcdefACEIPW";
    for i in 0..100_000 {
        let mut d = seeds[i % seeds.len()].clone();
        for _ in 0..1 + rnd() % 4 {
            let n = d.len().max(1);
            match rnd() % 5 {
                0 if !d.is_empty() => {
                    let at = rnd() as usize % d.len();
                    d[at] ^= 1 << (rnd() % 8);
                }
                1 => {
                    let at = rnd() as usize % (d.len() + 1);
                    d.insert(at, BYTES[rnd() as usize % BYTES.len()]);
                }
                2 => d.truncate(rnd() as usize % n),
                3 if !d.is_empty() => d[0] = b"PBWIEC"[rnd() as usize % 6],
                _ => {
                    let half = d[..d.len() / 2].to_vec();
                    d.extend_from_slice(&half);
                }
            }
            if d.is_empty() {
                d.push(b'W');
            }
        }
        fuzz_signed(&d);
    }
}
