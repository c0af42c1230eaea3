//! Every decision about what a request gets — clear, which scheme, or refused — made in one
//! place from the typed [`Resource`] and the asset's delivery policy, before anything is read.
//! Pure: no IO, no lookup; the caller passes the policy.
//!
//! What a track itself allows (SAMPLE-AES is defined for H.264 and AAC only) is checked once
//! the asset is loaded, by [`track_allows`].

use std::sync::Arc;

use crate::ams::AmsEncryption;
use crate::catalog::{AssetPolicy, Delivery};
use crate::error::ApiError;
use crate::protection::Encryption;
use crate::route::{Container, ManifestKind, Resource};

/// How a resource is served.
#[derive(Debug, Clone)]
pub enum Served {
    /// Clear.
    Clear,
    /// Encrypted with `method` under `policy`.
    Protected {
        /// The asset's policy.
        policy: Arc<AssetPolicy>,
        /// The method.
        method: Encryption,
    },
}

/// The protocol a resource belongs to, for the delivery policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Dash,
    Hls,
    Smooth,
    /// fMP4/CMAF init and media segments: shared by DASH and HLS-fMP4.
    Cmaf,
}

impl Proto {
    fn delivery(self, p: &AssetPolicy) -> Delivery {
        match self {
            Proto::Dash => p.dash,
            Proto::Smooth => p.smooth,
            Proto::Hls | Proto::Cmaf => p.hls,
        }
    }
}

/// Decides how `resource` of `asset` is served under `policy` (`None`: the asset has none;
/// then it is served clear only when `allow_clear`).
pub fn decide(asset: &str, resource: &Resource, policy: Option<Arc<AssetPolicy>>, allow_clear: bool) -> Result<Served, ApiError> {
    let no_policy = || ApiError::Forbidden(format!("asset '{asset}' has no delivery policy"));
    match resource {
        Resource::AmsEncryptedFragment(e) => Err(ApiError::Forbidden(format!("encryption={e} is not offered by this asset's delivery policy"))),
        Resource::Manifest { kind, encryption } => {
            let proto = match kind {
                ManifestKind::Mpd => Proto::Dash,
                ManifestKind::Smooth => Proto::Smooth,
                ManifestKind::Master(_) => Proto::Hls,
            };
            let policy = match policy {
                Some(p) => Some(p),
                None if allow_clear => None,
                None => return Err(no_policy()),
            };
            let method = policy.as_ref().and_then(|p| Encryption::of(proto.delivery(p)));
            if let Some(e) = encryption {
                // AMS `encryption=` must be what the policy gives that protocol (never clear).
                if Some(ams_method(*e)) != method {
                    return Err(ApiError::Forbidden(format!("encryption={e} is not offered by this asset's delivery policy")));
                }
            }
            match (method, policy) {
                (Some(m), Some(policy)) => {
                    let refuse = |what: &str| ApiError::Forbidden(format!("{what} with {} is not offered", m.path()));
                    match kind {
                        ManifestKind::Master(Container::Ts) if m == Encryption::Cenc => Err(refuse("HLS over MPEG-TS")),
                        ManifestKind::Smooth if m != Encryption::Cenc => Err(refuse("Smooth Streaming")),
                        _ => Ok(Served::Protected { policy, method: m }),
                    }
                }
                _ => Ok(Served::Clear),
            }
        }
        Resource::SmoothFragment { .. } => {
            let Some(policy) = policy else { return if allow_clear { Ok(Served::Clear) } else { Err(no_policy()) } };
            match Encryption::of(policy.smooth) {
                None => Ok(Served::Clear),
                // Smooth protection is PIFF (`cenc`): fragments keep their URLs.
                Some(Encryption::Cenc) => Ok(Served::Protected { policy, method: Encryption::Cenc }),
                Some(m) => Err(ApiError::Forbidden(format!("Smooth Streaming with {} is not offered", m.path()))),
            }
        }
        Resource::MediaPlaylist { method: None, .. } | Resource::Init { method: None, .. } | Resource::Segment { method: None, .. } => {
            let Some(p) = policy else { return if allow_clear { Ok(Served::Clear) } else { Err(no_policy()) } };
            // Clear CMAF segments serve whichever of DASH and HLS-fMP4 is clear.
            let proto = if is_hls_only(resource) { Proto::Hls } else { Proto::Cmaf };
            let clear = match proto {
                Proto::Cmaf => p.dash == Delivery::NoDynamicEncryption || p.hls == Delivery::NoDynamicEncryption,
                _ => proto.delivery(&p) == Delivery::NoDynamicEncryption,
            };
            if clear {
                Ok(Served::Clear)
            } else {
                Err(ApiError::Forbidden(format!("the delivery policy of '{asset}' does not allow clear {proto:?} output")))
            }
        }
        Resource::MediaPlaylist { method: Some(m), .. } | Resource::Init { method: Some(m), .. } | Resource::Segment { method: Some(m), .. } => {
            let m = *m;
            let policy = policy.ok_or_else(|| if allow_clear { ApiError::NotFound(format!("asset '{asset}' is not encrypted")) } else { no_policy() })?;
            let uses = |d: Delivery| Encryption::of(d) == Some(m);
            // AES-128 and everything TS or playlist is HLS's; CMAF files serve DASH or HLS.
            let allowed = if is_hls_only(resource) || m == Encryption::Aes128 { uses(policy.hls) } else { uses(policy.dash) || uses(policy.hls) };
            if !allowed {
                return Err(ApiError::Forbidden(format!("the delivery policy of '{asset}' does not offer {} here", m.path())));
            }
            if m == Encryption::Cenc && matches!(resource, Resource::MediaPlaylist { container: Container::Ts, .. }) {
                return Err(ApiError::Forbidden("HLS over MPEG-TS with cenc is not offered".into()));
            }
            Ok(Served::Protected { policy, method: m })
        }
    }
}

/// Whether a track resource belongs to HLS alone (playlists and TS segments).
fn is_hls_only(r: &Resource) -> bool {
    matches!(r, Resource::MediaPlaylist { .. } | Resource::Segment { container: Container::Ts, .. })
}

/// The method an AMS `encryption=` names.
fn ams_method(e: AmsEncryption) -> Encryption {
    match e {
        AmsEncryption::Cenc | AmsEncryption::Piff => Encryption::Cenc,
        AmsEncryption::CbcsAapl => Encryption::Cbcs,
        AmsEncryption::Cbc => Encryption::Aes128,
    }
}

/// What a loaded track allows under `method` for a TS output: SAMPLE-AES (cbcs over MPEG-TS) is
/// defined for H.264 and AAC only.
pub fn track_allows(track: &str, method: Encryption, ts: bool, has_sample_aes: bool) -> Result<(), ApiError> {
    if ts && method == Encryption::Cbcs && !has_sample_aes {
        return Err(ApiError::Forbidden(format!("SAMPLE-AES over MPEG-TS is defined for H.264 and AAC only, not track '{track}'")));
    }
    Ok(())
}
