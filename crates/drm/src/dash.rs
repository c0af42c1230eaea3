//! DASH `ContentProtection` elements, as text for the MPD writer to embed in an
//! `AdaptationSet` (or `Representation`).
//!
//! `ContentProtection` is MPEG's `ContentProtectionType` (a `DescriptorType`): required
//! `@schemeIdUri`, optional `@value`, any attribute and any child element from *other*
//! namespaces. The children we write are all in foreign namespaces, as that requires:
//!
//! | prefix | namespace | used for |
//! |---|---|---|
//! | `cenc`   | `urn:mpeg:cenc:2013`      | `@cenc:default_KID`, `<cenc:pssh>` (base64 of the whole `pssh` box) |
//! | `mspr`   | `urn:microsoft:playready` | `<mspr:pro>` (base64 of the PlayReady Object) |
//! | `dashif` | `https://dashif.org/CPS`  | `<dashif:Laurl>` (ClearKey licence URL, DASH-IF CPS schema) |
//!
//! Either the MPD root declares these once ([`Namespaces::OnRoot`], see
//! [`MPD_NAMESPACES`]), or each element declares what it uses ([`Namespaces::Inline`]),
//! which makes every fragment standalone (what CPIX `ContentProtectionData` expects).
//!
//! Order within an `AdaptationSet`: the `mp4protection` element first, then one element per
//! DRM system. `cenc:default_KID` is written on the `mp4protection` element only.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::cpix::DrmSystemSignalling;
use crate::error::Result;
use crate::key::Scheme;
use crate::kid::{Kid, SystemId};
use crate::pssh::{to_base64, Pssh};
use crate::xml::{check_embeddable, escape};

/// `schemeIdUri` announcing Common Encryption.
pub const MP4PROTECTION_SCHEME: &str = "urn:mpeg:dash:mp4protection:2011";
/// Namespace of `cenc:default_KID` and `cenc:pssh`.
pub const CENC_NS: &str = "urn:mpeg:cenc:2013";
/// Namespace of `mspr:pro`.
pub const MSPR_NS: &str = "urn:microsoft:playready";
/// Namespace of `dashif:Laurl` (DASH-IF content protection schema).
pub const DASHIF_NS: &str = "https://dashif.org/CPS";
/// `@value` of the PlayReady element (DASH-IF IOP spelling).
pub const PLAYREADY_VALUE: &str = "MSPR 2.0";
/// `@value` of the DASH-IF ClearKey element.
pub const CLEARKEY_VALUE: &str = "ClearKey1.0";

/// Prefix/namespace pairs to declare on the `MPD` element when using [`Namespaces::OnRoot`].
pub const MPD_NAMESPACES: &[(&str, &str)] = &[("cenc", CENC_NS), ("mspr", MSPR_NS), ("dashif", DASHIF_NS)];

/// Where namespace declarations go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Namespaces {
    /// The MPD root declares [`MPD_NAMESPACES`]; elements use the prefixes bare.
    OnRoot,
    /// Each element declares the prefixes it uses.
    Inline,
}

impl Namespaces {
    fn decl(self, prefix: &str, uri: &str) -> String {
        match self {
            Namespaces::OnRoot => String::new(),
            Namespaces::Inline => format!(r#" xmlns:{prefix}="{uri}""#),
        }
    }
}

/// `<ContentProtection schemeIdUri="urn:mpeg:dash:mp4protection:2011" value="cenc|cbcs" cenc:default_KID="…"/>`
pub fn mp4protection(scheme: Scheme, default_kid: Kid, ns: Namespaces) -> String {
    format!(
        r#"<ContentProtection{} schemeIdUri="{MP4PROTECTION_SCHEME}" value="{}" cenc:default_KID="{default_kid}"/>"#,
        ns.decl("cenc", CENC_NS),
        scheme.as_str(),
    )
}

/// Widevine: `<ContentProtection schemeIdUri="urn:uuid:edef8ba9-…"><cenc:pssh>…</cenc:pssh></ContentProtection>`.
pub fn widevine(pssh: &Pssh, ns: Namespaces) -> String {
    format!(
        r#"<ContentProtection{} schemeIdUri="{}"><cenc:pssh>{}</cenc:pssh></ContentProtection>"#,
        ns.decl("cenc", CENC_NS),
        SystemId::WIDEVINE.urn(),
        to_base64(pssh),
    )
}

/// PlayReady: `value="MSPR 2.0"`, `<cenc:pssh>` (when given) and `<mspr:pro>`.
pub fn playready(pro: &[u8], pssh: Option<&Pssh>, ns: Namespaces) -> String {
    let mut decls = String::new();
    if pssh.is_some() {
        decls.push_str(&ns.decl("cenc", CENC_NS));
    }
    decls.push_str(&ns.decl("mspr", MSPR_NS));
    let pssh_el = pssh.map(|p| format!("<cenc:pssh>{}</cenc:pssh>", to_base64(p))).unwrap_or_default();
    format!(
        r#"<ContentProtection{decls} schemeIdUri="{}" value="{PLAYREADY_VALUE}">{pssh_el}<mspr:pro>{}</mspr:pro></ContentProtection>"#,
        SystemId::PLAYREADY.urn(),
        STANDARD.encode(pro),
    )
}

/// DASH-IF ClearKey: `schemeIdUri="urn:uuid:e2719d58-…" value="ClearKey1.0"`, with
/// `<dashif:Laurl>` giving the licence URL when there is one (refuses control characters in
/// the URL). Written for every protected AdaptationSet, licence URL or not: players map only
/// this element (or the W3C Common one) to EME `org.w3.clearkey`, and dash.js finds no
/// playable stream without one even when the application hands it the keys.
pub fn clearkey(license_url: Option<&str>, ns: Namespaces) -> Result<String> {
    let Some(url) = license_url else {
        return Ok(format!(r#"<ContentProtection schemeIdUri="{}" value="{CLEARKEY_VALUE}"/>"#, SystemId::DASHIF_CLEARKEY.urn()));
    };
    check_embeddable("ClearKey licence URL", url, false)?;
    Ok(format!(
        r#"<ContentProtection{} schemeIdUri="{}" value="{CLEARKEY_VALUE}"><dashif:Laurl>{}</dashif:Laurl></ContentProtection>"#,
        ns.decl("dashif", DASHIF_NS),
        SystemId::DASHIF_CLEARKEY.urn(),
        escape(url),
    ))
}

/// W3C Common system (`urn:uuid:1077efec-…`) with its `pssh` box, which browsers use as
/// ClearKey initialization data when the init segment carries none.
pub fn common_system(pssh: &Pssh, ns: Namespaces) -> String {
    format!(
        r#"<ContentProtection{} schemeIdUri="{}"><cenc:pssh>{}</cenc:pssh></ContentProtection>"#,
        ns.decl("cenc", CENC_NS),
        SystemId::W3C_COMMON.urn(),
        to_base64(pssh),
    )
}

/// The element for one DRM system from CPIX signalling: its `ContentProtectionData`
/// verbatim when given (checked well-formed at parse time), otherwise `<cenc:pssh>` from its
/// `PSSH`; `@value` from `DRMSystem@name`. `None` when the entry carries neither.
/// Fragments may use the `cenc`, `mspr` and `dashif` prefixes, which [`Namespaces::Inline`]
/// declares on the element.
pub fn from_cpix(sig: &DrmSystemSignalling, ns: Namespaces) -> Option<String> {
    let inner = match (&sig.content_protection_data, &sig.pssh) {
        (Some(fragment), _) => fragment.clone(),
        (None, Some(pssh)) => format!("<cenc:pssh>{}</cenc:pssh>", to_base64(pssh)),
        (None, None) => return None,
    };
    let decls: String = MPD_NAMESPACES.iter().map(|(p, u)| ns.decl(p, u)).collect();
    let value = sig.name.as_deref().map(|n| format!(r#" value="{}""#, escape(n))).unwrap_or_default();
    Some(format!(
        r#"<ContentProtection{decls} schemeIdUri="{}"{value}>{inner}</ContentProtection>"#,
        sig.system_id.urn()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clearkey::common_pssh_box;
    use crate::key::{ContentKey, KeyKind};
    use crate::playready::PlayReadyHeader;
    use crate::widevine::WidevinePsshData;
    use crate::xml::{parse_tree, Limits};

    fn kid() -> Kid {
        Kid::parse("abba271e-8bcf-552b-bd2e-86a434a9a5d9").unwrap()
    }

    #[test]
    fn mp4protection_both_modes() {
        assert_eq!(
            mp4protection(Scheme::Cenc, kid(), Namespaces::OnRoot),
            r#"<ContentProtection schemeIdUri="urn:mpeg:dash:mp4protection:2011" value="cenc" cenc:default_KID="abba271e-8bcf-552b-bd2e-86a434a9a5d9"/>"#
        );
        assert_eq!(
            mp4protection(Scheme::Cbcs, kid(), Namespaces::Inline),
            r#"<ContentProtection xmlns:cenc="urn:mpeg:cenc:2013" schemeIdUri="urn:mpeg:dash:mp4protection:2011" value="cbcs" cenc:default_KID="abba271e-8bcf-552b-bd2e-86a434a9a5d9"/>"#
        );
    }

    #[test]
    fn system_elements() {
        let wv = WidevinePsshData::new(vec![kid()], Scheme::Cenc).to_pssh_box().unwrap();
        assert_eq!(
            widevine(&wv, Namespaces::OnRoot),
            format!(
                r#"<ContentProtection schemeIdUri="urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"><cenc:pssh>{}</cenc:pssh></ContentProtection>"#,
                to_base64(&wv)
            )
        );
        let ck = clearkey(Some("https://origin.example/clearkey?asset=a&b=1"), Namespaces::OnRoot).unwrap();
        assert_eq!(
            ck,
            r#"<ContentProtection schemeIdUri="urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e" value="ClearKey1.0"><dashif:Laurl>https://origin.example/clearkey?asset=a&amp;b=1</dashif:Laurl></ContentProtection>"#
        );
        assert!(clearkey(Some("https://x\r\n"), Namespaces::OnRoot).is_err());
        // Without a licence URL the element is still there (players need it to pick ClearKey).
        assert_eq!(
            clearkey(None, Namespaces::Inline).unwrap(),
            r#"<ContentProtection schemeIdUri="urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e" value="ClearKey1.0"/>"#
        );
    }

    /// Every inline fragment is well-formed standalone XML with children in foreign namespaces.
    #[test]
    fn inline_fragments_are_standalone() {
        let k = ContentKey::aes128(kid(), KeyKind::CommonEncryption, [7; 16]);
        let pr = PlayReadyHeader::new(Scheme::Cenc, [&k]).unwrap();
        let pro = pr.to_pro().unwrap();
        let pr_pssh = pr.to_pssh_box().unwrap();
        let wv = WidevinePsshData::new(vec![kid()], Scheme::Cenc).to_pssh_box().unwrap();
        let common = common_pssh_box(&[kid()]).unwrap();
        let limits = Limits { max_bytes: 1 << 20, max_elements: 100, max_depth: 8 };
        for frag in [
            mp4protection(Scheme::Cenc, kid(), Namespaces::Inline),
            widevine(&wv, Namespaces::Inline),
            playready(&pro, Some(&pr_pssh), Namespaces::Inline),
            playready(&pro, None, Namespaces::Inline),
            clearkey(Some("https://l.example/ck"), Namespaces::Inline).unwrap(),
            clearkey(None, Namespaces::Inline).unwrap(),
            common_system(&common, Namespaces::Inline),
        ] {
            let wrapped = format!(r#"<AdaptationSet xmlns="urn:mpeg:dash:schema:mpd:2011">{frag}</AdaptationSet>"#);
            let t = parse_tree(wrapped.as_bytes(), limits).unwrap_or_else(|e| panic!("{frag}: {e}"));
            let cp = &t.children[0];
            assert!(cp.is("urn:mpeg:dash:schema:mpd:2011", "ContentProtection"));
            assert!(cp.attr("schemeIdUri").is_some());
            for child in &cp.children {
                assert_ne!(child.ns, "urn:mpeg:dash:schema:mpd:2011", "{frag}");
                assert!(!child.text.is_empty());
            }
        }
        let p = playready(&pro, Some(&pr_pssh), Namespaces::Inline);
        let sig = DrmSystemSignalling {
            system_id: SystemId::DASHIF_CLEARKEY,
            kid: kid(),
            name: Some("ClearKey1.0".into()),
            pssh: Some(common.clone()),
            content_protection_data: Some("<dashif:Laurl>https://l.example/ck</dashif:Laurl>".into()),
            uri_ext_x_key: None,
            hls_signaling: Vec::new(),
            smooth_protection_header: None,
        };
        let c = from_cpix(&sig, Namespaces::OnRoot).unwrap();
        assert_eq!(
            c,
            r#"<ContentProtection schemeIdUri="urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e" value="ClearKey1.0"><dashif:Laurl>https://l.example/ck</dashif:Laurl></ContentProtection>"#
        );
        let inline =
            from_cpix(&DrmSystemSignalling { content_protection_data: None, ..sig.clone() }, Namespaces::Inline);
        let inline = inline.unwrap();
        assert!(inline.contains(&format!("<cenc:pssh>{}</cenc:pssh>", to_base64(&common))));
        parse_tree(inline.as_bytes(), limits).unwrap();
        assert!(from_cpix(
            &DrmSystemSignalling { content_protection_data: None, pssh: None, ..sig },
            Namespaces::OnRoot
        )
        .is_none());
        assert!(p.contains(r#"value="MSPR 2.0""#));
        assert!(p.contains(&format!("<mspr:pro>{}</mspr:pro>", STANDARD.encode(&pro))));
        assert!(p.contains(&format!("<cenc:pssh>{}</cenc:pssh>", to_base64(&pr_pssh))));
    }
}
