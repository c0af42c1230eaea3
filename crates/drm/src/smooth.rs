//! Smooth Streaming client-manifest protection:
//! `<Protection><ProtectionHeader SystemID="…">base64(PlayReady Object)</ProtectionHeader></Protection>`.
//!
//! The SystemID is written as a bare lowercase GUID. MS-SSTR's grammar shows it in braces,
//! other origins (nginx-vod-module) write it bare; GUID parsers accept both, and the bare
//! form matches what DASH and CPIX carry.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::kid::SystemId;

/// The `<Protection>` element for a PlayReady Object. One per manifest: with several
/// content keys, build the PRO from all of them (see [`crate::playready::PlayReadyHeader`]).
pub fn protection(pro: &[u8]) -> String {
    format!(
        r#"<Protection><ProtectionHeader SystemID="{}">{}</ProtectionHeader></Protection>"#,
        SystemId::PLAYREADY,
        STANDARD.encode(pro)
    )
}

/// The `<Protection>` element with a ready-made base64 header, e.g. CPIX
/// `SmoothStreamingProtectionHeaderData`. The caller's text is XML-escaped.
pub fn protection_from_base64(system_id: SystemId, header_base64: &str) -> String {
    format!(
        r#"<Protection><ProtectionHeader SystemID="{system_id}">{}</ProtectionHeader></Protection>"#,
        crate::xml::escape(header_base64.trim())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protection_element() {
        assert_eq!(
            protection(&[1, 2, 3]),
            r#"<Protection><ProtectionHeader SystemID="9a04f079-9840-4286-ab92-e65be0885f95">AQID</ProtectionHeader></Protection>"#
        );
        assert_eq!(protection_from_base64(SystemId::PLAYREADY, " AQID\n"), protection(&[1, 2, 3]));
    }
}
