//! DASH-IF CPIX 2.3 documents (clear keys only): content keys, DRM signalling, and usage
//! rules mapping keys to tracks.
//!
//! What is read:
//!
//! * `ContentKeyList/ContentKey@kid` with `Data/pskc:Secret/pskc:PlainValue` (base64 key),
//!   `@explicitIV`, `@commonEncryptionScheme`.
//! * `DRMSystemList/DRMSystem@kid@systemId@name` with `PSSH` (whole box, checked),
//!   `ContentProtectionData`, `URIExtXKey` (2.3, deprecated), `HLSSignalingData@playlist`
//!   (`master`/2.4 `multiVariant` or `media`) and `SmoothStreamingProtectionHeaderData`.
//! * `ContentKeyUsageRuleList/ContentKeyUsageRule@kid@intendedTrackType` with
//!   `VideoFilter@minPixels@maxPixels`, `AudioFilter@minChannels@maxChannels` and
//!   `BitrateFilter@minBitrate@maxBitrate`.
//!
//! What is refused with a clear error, as CPIX asks of an implementation that cannot apply
//! something ("unusable" rules stop key mapping altogether):
//! `pskc:EncryptedValue` keys (document-key encryption is not implemented yet), key
//! hierarchies (`@dependsOnKey`), key periods (rotation), `LabelFilter`, `KeyPeriodFilter`,
//! `VideoFilter@hdr/@wcg/@minFps/@maxFps`, unknown filter elements, `cens`/`cbc1`.
//!
//! XML signatures are not verified: trust in the document comes from the channel it was
//! fetched over. Input is bounded ([`MAX_CPIX_BYTES`], element count, depth, key count) and
//! never panics.

use crate::error::Result;
use crate::groups::{assign_key_indices, TrackDesc};
use crate::key::{ContentKey, Scheme};
use crate::kid::{Kid, SystemId};
use crate::pssh::Pssh;
use crate::usage_rules::assign_by_rules;
use crate::xml::Limits;

pub use crate::usage_rules::{AudioFilter, BitrateFilter, UsageRule, VideoFilter};
pub use parse::parse_cpix;

mod parse;

/// CPIX namespace.
pub const CPIX_NS: &str = "urn:dashif:org:cpix";
/// PSKC (RFC 6030) namespace.
pub const PSKC_NS: &str = "urn:ietf:params:xml:ns:keyprov:pskc";
/// XML Encryption namespace (inside `pskc:EncryptedValue`).
pub const XMLENC_NS: &str = "http://www.w3.org/2001/04/xmlenc#";

/// Largest CPIX document accepted.
pub const MAX_CPIX_BYTES: usize = 4 * 1024 * 1024;
/// Most content keys in one document.
pub const MAX_CPIX_KEYS: usize = 256;
const LIMITS: Limits = Limits { max_bytes: MAX_CPIX_BYTES, max_elements: 50_000, max_depth: 32 };

/// A content key from the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpixKey {
    /// The key (its kind from `@commonEncryptionScheme`, else the parser's default).
    pub key: ContentKey,
    /// `@commonEncryptionScheme`, if given.
    pub scheme: Option<Scheme>,
    /// `@explicitIV` (constant IV / HLS IV), if given.
    pub explicit_iv: Option<[u8; 16]>,
}

/// Which HLS playlist a `HLSSignalingData` belongs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HlsPlaylist {
    /// The multivariant playlist (`master` in 2.3, `multiVariant` in 2.4).
    MultiVariant,
    /// Media playlists (also the default when `@playlist` is absent).
    Media,
}

/// One `HLSSignalingData`: decoded text of whole playlist line(s).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HlsSignalingData {
    /// Target playlist.
    pub playlist: HlsPlaylist,
    /// The `#EXT-X-KEY` / `#EXT-X-SESSION-KEY` line(s), UTF-8.
    pub data: String,
}

/// One `DRMSystem`: signalling for one key and one DRM system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrmSystemSignalling {
    /// The DRM system.
    pub system_id: SystemId,
    /// The content key this signalling is for.
    pub kid: Kid,
    /// `@name`, a human-readable name (usable as `ContentProtection@value`).
    pub name: Option<String>,
    /// `PSSH`: the whole box, decoded and checked to belong to `system_id`.
    pub pssh: Option<Pssh>,
    /// `ContentProtectionData`: decoded XML fragment for inside `ContentProtection`.
    pub content_protection_data: Option<String>,
    /// `URIExtXKey` (CPIX 2.3, deprecated): decoded `URI` value for `#EXT-X-KEY`.
    pub uri_ext_x_key: Option<String>,
    /// `HLSSignalingData` (0 to 2).
    pub hls_signaling: Vec<HlsSignalingData>,
    /// `SmoothStreamingProtectionHeaderData`: inner text of `ProtectionHeader` (base64).
    pub smooth_protection_header: Option<String>,
}

/// A parsed CPIX document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpixDocument {
    /// `CPIX@contentId`.
    pub content_id: Option<String>,
    /// `CPIX@version` (e.g. `2.3`).
    pub version: Option<String>,
    /// Content keys in document order.
    pub keys: Vec<CpixKey>,
    /// DRM signalling in document order.
    pub drm_systems: Vec<DrmSystemSignalling>,
    /// Usage rules in document order (empty: use [`crate::groups::assign_keys`] semantics).
    pub usage_rules: Vec<UsageRule>,
}

impl CpixDocument {
    /// The key with this KID.
    pub fn key(&self, kid: Kid) -> Option<&CpixKey> {
        self.keys.iter().find(|k| k.key.kid() == kid)
    }

    /// Signalling for one key and DRM system.
    pub fn signalling(&self, kid: Kid, system_id: SystemId) -> Option<&DrmSystemSignalling> {
        self.drm_systems.iter().find(|d| d.kid == kid && d.system_id == system_id)
    }

    /// Picks a key for every track; returns indices into [`CpixDocument::keys`].
    ///
    /// With usage rules, the rules decide ([`crate::usage_rules::assign_by_rules`]): each
    /// track must match rules of exactly one KID, and a track matching none is an error
    /// (fail closed). Without usage rules, the keys in document order go through
    /// [`crate::groups::assign_keys`].
    pub fn assign_keys(&self, tracks: &[TrackDesc]) -> Result<Vec<usize>> {
        if self.usage_rules.is_empty() {
            return assign_key_indices(tracks, self.keys.len());
        }
        assign_by_rules(&self.usage_rules, tracks, |kid| self.keys.iter().position(|k| k.key.kid() == kid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use crate::error::Error;
    use crate::key::KeyKind;
    use crate::clearkey::common_pssh_box;
    use sealcast_cenc::kid::hex;
    use crate::widevine::WidevinePsshData;

    const K_AUDIO: &str = "0f3c2a10-5b7d-4e21-9a88-c4d2e6f01a01";
    const K_SD: &str = "0f3c2a10-5b7d-4e21-9a88-c4d2e6f01a02";
    const K_HD: &str = "0f3c2a10-5b7d-4e21-9a88-c4d2e6f01a03";

    fn b64(b: &[u8]) -> String {
        STANDARD.encode(b)
    }

    /// A hand-written document: default namespace for CPIX, `p:` for PSKC, keys with and
    /// without scheme, whitespace inside base64, signalling for two systems, three rules.
    fn document() -> String {
        let wv = WidevinePsshData::new(vec![Kid::parse(K_SD).unwrap()], Scheme::Cenc).to_pssh_box().unwrap();
        let cp = b64(br#"<dashif:Laurl xmlns:dashif="https://dashif.org/CPS">https://lic.example/ck</dashif:Laurl>"#);
        let hls_media = b64(b"#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI=\"data:text/plain;base64,AA==\"");
        let hls_master = b64(b"#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES-CTR,URI=\"data:text/plain;base64,AA==\"");
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- written by hand for sealcast tests -->
<CPIX xmlns="urn:dashif:org:cpix" xmlns:p="urn:ietf:params:xml:ns:keyprov:pskc" contentId="title-42" version="2.3">
  <ContentKeyList>
    <ContentKey kid="{K_AUDIO}" commonEncryptionScheme="cenc">
      <Data><p:Secret><p:PlainValue>ERERERERERER
      EREREREREQ==</p:PlainValue></p:Secret></Data>
    </ContentKey>
    <ContentKey kid="{K_SD}" explicitIV="{iv}">
      <Data><p:Secret><p:PlainValue>{k2}</p:PlainValue></p:Secret></Data>
    </ContentKey>
    <ContentKey kid="{K_HD}">
      <Data><p:Secret><p:PlainValue>{k3}</p:PlainValue></p:Secret></Data>
    </ContentKey>
  </ContentKeyList>
  <DRMSystemList>
    <DRMSystem kid="{K_SD}" systemId="edef8ba9-79d6-4ace-a3c8-27dcd51d21ed" name="Widevine">
      <PSSH>{wv}</PSSH>
      <HLSSignalingData playlist="media">{hls_media}</HLSSignalingData>
      <HLSSignalingData playlist="master">{hls_master}</HLSSignalingData>
      <x:Future xmlns:x="urn:example:ext">ignored</x:Future>
    </DRMSystem>
    <DRMSystem kid="{K_SD}" systemId="e2719d58-a985-b3c9-781a-b030af78d30e">
      <ContentProtectionData>{cp}</ContentProtectionData>
    </DRMSystem>
  </DRMSystemList>
  <ContentKeyUsageRuleList>
    <ContentKeyUsageRule kid="{K_AUDIO}" intendedTrackType="AUDIO"><AudioFilter/></ContentKeyUsageRule>
    <ContentKeyUsageRule kid="{K_SD}" intendedTrackType="SD"><VideoFilter maxPixels="589824"/></ContentKeyUsageRule>
    <ContentKeyUsageRule kid="{K_HD}" intendedTrackType="HD"><VideoFilter minPixels="589825"/></ContentKeyUsageRule>
  </ContentKeyUsageRuleList>
</CPIX>"#,
            iv = b64(&[0xcd; 16]),
            k2 = b64(&[0x22; 16]),
            k3 = b64(&[0x33; 16]),
            wv = crate::pssh::to_base64(&wv),
        )
    }

    #[test]
    fn parses_keys_signalling_and_rules() {
        let doc = parse_cpix(document().as_bytes(), KeyKind::CommonEncryptionCbcs).unwrap();
        assert_eq!(doc.content_id.as_deref(), Some("title-42"));
        assert_eq!(doc.version.as_deref(), Some("2.3"));
        assert_eq!(doc.keys.len(), 3);
        let a = &doc.keys[0];
        assert_eq!(a.key.kid(), Kid::parse(K_AUDIO).unwrap());
        assert_eq!(a.key.aes128_bytes().unwrap(), &[0x11; 16]);
        assert_eq!(a.key.kind(), KeyKind::CommonEncryption);
        assert_eq!(a.scheme, Some(Scheme::Cenc));
        assert_eq!(doc.keys[1].key.kind(), KeyKind::CommonEncryptionCbcs, "default kind");
        assert_eq!(doc.keys[1].explicit_iv, Some([0xcd; 16]));

        let wv = doc.signalling(Kid::parse(K_SD).unwrap(), SystemId::WIDEVINE).unwrap();
        assert_eq!(wv.name.as_deref(), Some("Widevine"));
        assert_eq!(hex(&wv.pssh.as_ref().unwrap().data[2..18]), hex(Kid::parse(K_SD).unwrap().as_bytes()));
        assert_eq!(wv.hls_signaling.len(), 2);
        assert_eq!(wv.hls_signaling[0].playlist, HlsPlaylist::Media);
        assert!(wv.hls_signaling[1].data.starts_with("#EXT-X-SESSION-KEY:"));
        assert_eq!(wv.hls_signaling[1].playlist, HlsPlaylist::MultiVariant);
        let ck = doc.signalling(Kid::parse(K_SD).unwrap(), SystemId::DASHIF_CLEARKEY).unwrap();
        assert!(ck.content_protection_data.as_deref().unwrap().contains("dashif:Laurl"));

        assert_eq!(doc.usage_rules.len(), 3);
        assert_eq!(doc.usage_rules[1].video, vec![VideoFilter { min_pixels: 0, max_pixels: 589_824 }]);
        assert_eq!(doc.usage_rules[2].video[0].max_pixels, u64::from(u32::MAX));
    }

    #[test]
    fn usage_rules_decide() {
        let doc = parse_cpix(document().as_bytes(), KeyKind::CommonEncryption).unwrap();
        let tracks = [
            TrackDesc::video(1920, 1080),
            TrackDesc::audio(),
            TrackDesc::video(640, 360),
            TrackDesc::video(1024, 576),
            TrackDesc::video(3840, 2160),
            TrackDesc::audio().with_channels(6),
        ];
        assert_eq!(doc.assign_keys(&tracks).unwrap(), vec![2, 0, 1, 1, 2, 0]);
    }

    #[test]
    fn without_rules_groups_apply() {
        let xml = document();
        let start = xml.find("<ContentKeyUsageRuleList>").unwrap();
        let end = xml.find("</ContentKeyUsageRuleList>").unwrap() + "</ContentKeyUsageRuleList>".len();
        let no_rules = format!("{}{}", &xml[..start], &xml[end..]);
        let doc = parse_cpix(no_rules.as_bytes(), KeyKind::CommonEncryption).unwrap();
        assert!(doc.usage_rules.is_empty());
        let tracks = [TrackDesc::audio(), TrackDesc::video(640, 360), TrackDesc::video(1920, 1080)];
        assert_eq!(doc.assign_keys(&tracks).unwrap(), vec![0, 1, 2]);
    }

    fn with_rules(rules: &str) -> String {
        let xml = document();
        let start = xml.find("<ContentKeyUsageRuleList>").unwrap() + "<ContentKeyUsageRuleList>".len();
        let end = xml.find("</ContentKeyUsageRuleList>").unwrap();
        format!("{}{rules}{}", &xml[..start], &xml[end..])
    }

    #[test]
    fn rule_conflicts_and_gaps() {
        // Overlapping video ranges for two keys: invalid at the overlap only.
        let overlap = with_rules(&format!(
            r#"<ContentKeyUsageRule kid="{K_SD}"><VideoFilter maxPixels="1000000"/></ContentKeyUsageRule>
               <ContentKeyUsageRule kid="{K_HD}"><VideoFilter minPixels="900000"/></ContentKeyUsageRule>
               <ContentKeyUsageRule kid="{K_AUDIO}"><AudioFilter/></ContentKeyUsageRule>"#
        ));
        let doc = parse_cpix(overlap.as_bytes(), KeyKind::CommonEncryption).unwrap();
        assert_eq!(doc.assign_keys(&[TrackDesc::video(640, 360)]).unwrap(), vec![1]);
        assert!(matches!(doc.assign_keys(&[TrackDesc::video(1280, 720)]), Err(Error::UsageRules(_))));
        // Gap: audio has no rule -> fail closed.
        let gap = with_rules(&format!(r#"<ContentKeyUsageRule kid="{K_SD}"><VideoFilter/></ContentKeyUsageRule>"#));
        let doc = parse_cpix(gap.as_bytes(), KeyKind::CommonEncryption).unwrap();
        let err = doc.assign_keys(&[TrackDesc::audio()]).unwrap_err();
        assert!(err.to_string().contains("matches no usage rule"), "{err}");
        // Two rules for the same key OR together; a filterless rule matches all.
        let same = with_rules(&format!(
            r#"<ContentKeyUsageRule kid="{K_SD}"><VideoFilter maxPixels="10"/><VideoFilter minPixels="2000000"/></ContentKeyUsageRule>
               <ContentKeyUsageRule kid="{K_HD}"><VideoFilter minPixels="11" maxPixels="1999999"/></ContentKeyUsageRule>
               <ContentKeyUsageRule kid="{K_AUDIO}"><AudioFilter/></ContentKeyUsageRule>"#
        ));
        let doc = parse_cpix(same.as_bytes(), KeyKind::CommonEncryption).unwrap();
        assert_eq!(doc.assign_keys(&[TrackDesc::video(1920, 1080), TrackDesc::video(1280, 720)]).unwrap(), vec![1, 2]);
        assert_eq!(doc.assign_keys(&[TrackDesc::audio()]).unwrap(), vec![0]);
        // A rule without filters matches every track.
        let all = with_rules(&format!(r#"<ContentKeyUsageRule kid="{K_HD}"/>"#));
        let doc = parse_cpix(all.as_bytes(), KeyKind::CommonEncryption).unwrap();
        assert_eq!(doc.assign_keys(&[TrackDesc::audio(), TrackDesc::video(7680, 4320)]).unwrap(), vec![2, 2]);
        // Channel and bitrate filters need the facts.
        let ch = with_rules(&format!(
            r#"<ContentKeyUsageRule kid="{K_AUDIO}"><AudioFilter maxChannels="2"/></ContentKeyUsageRule>
               <ContentKeyUsageRule kid="{K_HD}"><AudioFilter minChannels="3"/></ContentKeyUsageRule>
               <ContentKeyUsageRule kid="{K_SD}"><VideoFilter/><BitrateFilter maxBitrate="3000000"/></ContentKeyUsageRule>"#
        ));
        let doc = parse_cpix(ch.as_bytes(), KeyKind::CommonEncryption).unwrap();
        assert_eq!(
            doc.assign_keys(&[TrackDesc::audio().with_channels(2), TrackDesc::audio().with_channels(6)]).unwrap(),
            vec![0, 2]
        );
        assert!(doc.assign_keys(&[TrackDesc::audio()]).is_err());
        assert_eq!(doc.assign_keys(&[TrackDesc::video(1, 1).with_bitrate(500_000)]).unwrap(), vec![1]);
        assert!(doc.assign_keys(&[TrackDesc::video(1, 1)]).is_err());
    }

    #[test]
    fn unusable_rules_are_refused() {
        for rule in [
            format!(r#"<ContentKeyUsageRule kid="{K_SD}"><LabelFilter label="x"/></ContentKeyUsageRule>"#),
            format!(r#"<ContentKeyUsageRule kid="{K_SD}"><KeyPeriodFilter periodId="p"/></ContentKeyUsageRule>"#),
            format!(r#"<ContentKeyUsageRule kid="{K_SD}"><VideoFilter hdr="true"/></ContentKeyUsageRule>"#),
            format!(r#"<ContentKeyUsageRule kid="{K_SD}"><SpeedFilter/></ContentKeyUsageRule>"#),
            format!(r#"<ContentKeyUsageRule kid="{K_SD}"><v:VideoFilter xmlns:v="urn:x"/></ContentKeyUsageRule>"#),
        ] {
            let e = parse_cpix(with_rules(&rule).as_bytes(), KeyKind::CommonEncryption).unwrap_err();
            assert!(matches!(e, Error::CpixUnsupported(_)), "{rule}: {e}");
        }
        for rule in [
            format!(r#"<ContentKeyUsageRule kid="{K_SD}"><VideoFilter maxPixels="-1"/></ContentKeyUsageRule>"#),
            format!(r#"<ContentKeyUsageRule kid="{K_SD}"><BitrateFilter/></ContentKeyUsageRule>"#),
            r#"<ContentKeyUsageRule kid="00000000-0000-0000-0000-000000000000"/>"#.to_string(),
            r#"<ContentKeyUsageRule/>"#.to_string(),
        ] {
            assert!(parse_cpix(with_rules(&rule).as_bytes(), KeyKind::CommonEncryption).is_err(), "{rule}");
        }
    }

    #[test]
    fn encrypted_keys_get_a_clear_error() {
        let xml = format!(
            r#"<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc" xmlns:enc="http://www.w3.org/2001/04/xmlenc#">
  <cpix:ContentKeyList><cpix:ContentKey kid="{K_SD}"><cpix:Data><pskc:Secret>
    <pskc:EncryptedValue><enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes256-cbc"/>
      <enc:CipherData><enc:CipherValue>AAAA</enc:CipherValue></enc:CipherData></pskc:EncryptedValue>
    <pskc:ValueMAC>AAAA</pskc:ValueMAC>
  </pskc:Secret></cpix:Data></cpix:ContentKey></cpix:ContentKeyList></cpix:CPIX>"#
        );
        let e = parse_cpix(xml.as_bytes(), KeyKind::CommonEncryption).unwrap_err();
        assert_eq!(e, Error::EncryptedCpixKey { kid: Kid::parse(K_SD).unwrap() });
        assert!(e.to_string().contains("encrypted CPIX keys are not supported yet"));
    }

    #[test]
    fn refuses_inconsistent_documents() {
        let key = |kid: &str, extra: &str, value: &str| {
            format!(
                r#"<ContentKey kid="{kid}"{extra}><Data><p:Secret><p:PlainValue>{value}</p:PlainValue></p:Secret></Data></ContentKey>"#
            )
        };
        let wrap = |body: &str| {
            format!(r#"<CPIX xmlns="urn:dashif:org:cpix" xmlns:p="urn:ietf:params:xml:ns:keyprov:pskc">{body}</CPIX>"#)
        };
        let k16 = b64(&[1; 16]);
        let common = crate::pssh::to_base64(&common_pssh_box(&[Kid::parse(K_SD).unwrap()]).unwrap());
        let cases = [
            wrap(&format!("<ContentKeyList>{}{}</ContentKeyList>", key(K_SD, "", &k16), key(K_SD, "", &k16))),
            wrap(&format!("<ContentKeyList>{}</ContentKeyList>", key(K_SD, "", &b64(&[1; 15])))),
            wrap(&format!("<ContentKeyList>{}</ContentKeyList>", key(K_SD, "", "not base64!"))),
            wrap(&format!("<ContentKeyList>{}</ContentKeyList>", key("not-a-kid", "", &k16))),
            wrap(&format!(
                "<ContentKeyList>{}</ContentKeyList>",
                key(K_SD, &format!(r#" dependsOnKey="{K_HD}""#), &k16)
            )),
            wrap(&format!("<ContentKeyList>{}</ContentKeyList>", key(K_SD, r#" commonEncryptionScheme="cens""#, &k16))),
            wrap(&format!("<ContentKeyList>{}</ContentKeyList>", key(K_SD, r#" explicitIV="AAAA""#, &k16))),
            wrap(&format!(r#"<ContentKeyList><ContentKey kid="{K_SD}"/></ContentKeyList>"#)),
            // DRMSystem for an unknown key; pssh of the wrong system; bad pssh; bad playlist.
            wrap(&format!(
                r#"<ContentKeyList>{}</ContentKeyList><DRMSystemList><DRMSystem kid="{K_HD}" systemId="{}"/></DRMSystemList>"#,
                key(K_SD, "", &k16),
                SystemId::WIDEVINE
            )),
            wrap(&format!(
                r#"<ContentKeyList>{}</ContentKeyList><DRMSystemList><DRMSystem kid="{K_SD}" systemId="{}"><PSSH>{common}</PSSH></DRMSystem></DRMSystemList>"#,
                key(K_SD, "", &k16),
                SystemId::WIDEVINE
            )),
            wrap(&format!(
                r#"<ContentKeyList>{}</ContentKeyList><DRMSystemList><DRMSystem kid="{K_SD}" systemId="{}"><PSSH>AAAAAA==</PSSH></DRMSystem></DRMSystemList>"#,
                key(K_SD, "", &k16),
                SystemId::WIDEVINE
            )),
            wrap(&format!(
                r#"<ContentKeyList>{}</ContentKeyList><DRMSystemList><DRMSystem kid="{K_SD}" systemId="{}"><HLSSignalingData playlist="both">AA==</HLSSignalingData></DRMSystem></DRMSystemList>"#,
                key(K_SD, "", &k16),
                SystemId::WIDEVINE
            )),
            wrap(&format!(
                r#"<ContentKeyList>{}</ContentKeyList><ContentKeyPeriodList><ContentKeyPeriod id="p1" index="1"/></ContentKeyPeriodList>"#,
                key(K_SD, "", &k16)
            )),
            // Signalling that would break the manifest or playlist it is pasted into.
            wrap(&format!(
                r#"<ContentKeyList>{}</ContentKeyList><DRMSystemList><DRMSystem kid="{K_SD}" systemId="{}"><ContentProtectionData>{}</ContentProtectionData></DRMSystem></DRMSystemList>"#,
                key(K_SD, "", &k16),
                SystemId::WIDEVINE,
                b64(b"<cenc:pssh>AA==</cenc:pssh></ContentProtection><Evil/>")
            )),
            wrap(&format!(
                r#"<ContentKeyList>{}</ContentKeyList><DRMSystemList><DRMSystem kid="{K_SD}" systemId="{}"><ContentProtectionData>{}</ContentProtectionData></DRMSystem></DRMSystemList>"#,
                key(K_SD, "", &k16),
                SystemId::WIDEVINE,
                b64(b"<x:y>undeclared prefix</x:y>")
            )),
            wrap(&format!(
                r#"<ContentKeyList>{}</ContentKeyList><DRMSystemList><DRMSystem kid="{K_SD}" systemId="{}"><HLSSignalingData>{}</HLSSignalingData></DRMSystem></DRMSystemList>"#,
                key(K_SD, "", &k16),
                SystemId::WIDEVINE,
                b64(b"#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://x\"\nhttps://evil.example/segment.ts")
            )),
            // Wrong root, wrong namespace.
            format!(
                r#"<CPIX xmlns="urn:dashif:org:cpix:v1" xmlns:p="urn:ietf:params:xml:ns:keyprov:pskc">{}</CPIX>"#,
                key(K_SD, "", &k16)
            ),
            "<MPD/>".to_string(),
        ];
        for (i, xml) in cases.iter().enumerate() {
            assert!(parse_cpix(xml.as_bytes(), KeyKind::CommonEncryption).is_err(), "case {i}: {xml}");
        }
        // The valid baseline of those cases parses (so the failures are for the stated reason).
        let ok = wrap(&format!("<ContentKeyList>{}</ContentKeyList>", key(K_SD, "", &k16)));
        assert_eq!(parse_cpix(ok.as_bytes(), KeyKind::CommonEncryption).unwrap().keys.len(), 1);
    }

    #[test]
    fn hostile_inputs_fail_cleanly() {
        let xml = document();
        // Every prefix of a valid document: an error, never a panic.
        for n in (0..xml.len()).step_by(7) {
            if let Some(prefix) = xml.get(..n) {
                assert!(parse_cpix(prefix.as_bytes(), KeyKind::CommonEncryption).is_err());
            }
        }
        // Byte flips: Ok or Err, never a panic.
        let bytes = xml.as_bytes();
        for i in (0..bytes.len()).step_by(13) {
            let mut b = bytes.to_vec();
            b[i] ^= 0x5a;
            let _ = parse_cpix(&b, KeyKind::CommonEncryption);
        }
        let big = vec![b' '; MAX_CPIX_BYTES + 1];
        assert!(matches!(parse_cpix(&big, KeyKind::CommonEncryption), Err(Error::TooLarge { .. })));
        let deep = format!("{}{}", "<a>".repeat(100), "</a>".repeat(100));
        assert!(matches!(parse_cpix(deep.as_bytes(), KeyKind::CommonEncryption), Err(Error::TooLarge { .. })));
        let many_keys: String = (0..=MAX_CPIX_KEYS)
            .map(|i| {
                format!(
                    r#"<ContentKey kid="{:032x}"><Data><p:Secret><p:PlainValue>{}</p:PlainValue></p:Secret></Data></ContentKey>"#,
                    i,
                    b64(&[1; 16])
                )
            })
            .collect();
        let xml = format!(
            r#"<CPIX xmlns="urn:dashif:org:cpix" xmlns:p="urn:ietf:params:xml:ns:keyprov:pskc"><ContentKeyList>{many_keys}</ContentKeyList></CPIX>"#
        );
        assert!(matches!(parse_cpix(xml.as_bytes(), KeyKind::CommonEncryption), Err(Error::TooLarge { .. })));
        let entity =
            r#"<!DOCTYPE CPIX [<!ENTITY x SYSTEM "file:///etc/passwd">]><CPIX xmlns="urn:dashif:org:cpix">&x;</CPIX>"#;
        assert!(parse_cpix(entity.as_bytes(), KeyKind::CommonEncryption).is_err());
    }
}
