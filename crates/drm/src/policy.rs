//! The delivery model of Azure Media Services' content protection, as the catalog states it
//! per asset: what each protocol gets ([`Delivery`], its AssetDeliveryPolicyType) and where
//! players get licences and keys ([`LicenseUrls`]). Data only; what a delivery means for a
//! track's bytes is planned in `sealcast_package::protection`.

use serde::{Deserialize, Serialize};

use crate::key::KeyKind;

/// What one protocol gets (Azure Media Services' AssetDeliveryPolicy types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Delivery {
    /// Served clear.
    #[default]
    NoDynamicEncryption,
    /// Common Encryption, `cenc` (AES-CTR).
    DynamicCommonEncryption,
    /// Common Encryption, `cbcs` (AES-CBC 1:9 pattern).
    DynamicCommonEncryptionCbcs,
    /// HLS AES-128 whole-segment encryption, keys from the key delivery service.
    DynamicEnvelopeEncryption,
}

impl std::str::FromStr for Delivery {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Delivery::ALL.into_iter().find(|d| d.as_str() == s).ok_or_else(|| format!("'{s}' is none of {}", Delivery::ALL.map(|d| d.as_str()).join(", ")))
    }
}

impl Delivery {
    /// Every delivery type.
    pub const ALL: [Delivery; 4] = [Delivery::NoDynamicEncryption, Delivery::DynamicCommonEncryption, Delivery::DynamicCommonEncryptionCbcs, Delivery::DynamicEnvelopeEncryption];

    /// The name the catalog spells it with.
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::NoDynamicEncryption => "NoDynamicEncryption",
            Delivery::DynamicCommonEncryption => "DynamicCommonEncryption",
            Delivery::DynamicCommonEncryptionCbcs => "DynamicCommonEncryptionCbcs",
            Delivery::DynamicEnvelopeEncryption => "DynamicEnvelopeEncryption",
        }
    }

    /// The key kind this delivery needs, if any.
    pub fn key_kind(self) -> Option<KeyKind> {
        match self {
            Delivery::NoDynamicEncryption => None,
            Delivery::DynamicCommonEncryption => Some(KeyKind::CommonEncryption),
            Delivery::DynamicCommonEncryptionCbcs => Some(KeyKind::CommonEncryptionCbcs),
            Delivery::DynamicEnvelopeEncryption => Some(KeyKind::EnvelopeEncryption),
        }
    }
}

/// Where players get licenses and keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenseUrls {
    /// Widevine license server.
    pub widevine: Option<String>,
    /// PlayReady LA_URL.
    pub playready: Option<String>,
    /// ClearKey license server (signalled as `dashif:Laurl`).
    pub clearkey: Option<String>,
    /// FairPlay key URI (`skd://…`; `{kid}` is replaced by the key's ID in hex).
    pub fairplay: Option<String>,
    /// Key delivery URL of HLS AES-128 (and SAMPLE-AES `identity`) keys; `{kid}` is replaced
    /// by the key's ID in hex. Default: this origin's own `/key/{kid}`.
    pub key_delivery: Option<String>,
}
