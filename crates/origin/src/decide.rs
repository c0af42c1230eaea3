//! Every decision about what a request gets — clear, which scheme, or refused — made in one
//! place from the typed [`Resource`] and the asset's delivery policy, before anything is read.
//! Pure: no IO, no lookup; the caller passes the policy.
//!
//! The rule fails closed, as Azure Media Services' did: an asset with a delivery policy serves
//! only the protocols it names, clear only where it says `NoDynamicEncryption`; a protocol it
//! does not name is 403 (so a storage-encrypted asset, whose catalog entry names none until
//! it is published, serves nothing). An asset without a policy is clear only when
//! `allow_clear_without_policy` is on.
//!
//! What a track itself allows (SAMPLE-AES is defined for H.264 and AAC only) is checked once
//! the asset is loaded, by [`track_allows`].

use std::sync::Arc;

use crate::ams::AmsEncryption;
use crate::catalog::{AssetPolicy, Delivery};
use crate::error::ApiError;
use crate::protection::Encryption;
use crate::route::{Container, ManifestKind, Resource, TextFile};

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
    /// What the policy names for the protocol; `None`: not named, so blocked.
    fn delivery(self, p: &AssetPolicy) -> Option<Delivery> {
        match self {
            Proto::Dash => p.dash,
            Proto::Smooth => p.smooth,
            Proto::Hls | Proto::Cmaf => p.hls,
        }
    }
}

/// The refusal of a protocol an asset's policy does not name.
fn not_named(asset: &str, proto: Proto) -> ApiError {
    ApiError::Forbidden(format!("the delivery policy of '{asset}' does not name {proto:?}: blocked"))
}

/// Decides how `resource` of `asset` is served under `policy` (`None`: the asset has none;
/// then it is served clear only when `allow_clear`).
pub fn decide(asset: &str, resource: &Resource, policy: Option<Arc<AssetPolicy>>, allow_clear: bool) -> Result<Served, ApiError> {
    let no_policy = || ApiError::Forbidden(format!("asset '{asset}' has no delivery policy"));
    match resource {
        // A file leaves clear (storage encryption removed), so only a policy naming the
        // protocol lets it out; without a policy, as any clear output.
        Resource::Download { .. } => match policy {
            Some(p) if p.progressive_download => Ok(Served::Clear),
            Some(_) => Err(ApiError::Forbidden(format!("the delivery policy of '{asset}' does not name ProgressiveDownload: blocked"))),
            None if allow_clear => Ok(Served::Clear),
            None => Err(no_policy()),
        },
        // Subtitles are never encrypted (Common Encryption covers samples of audio and video)
        // and need no key, but belong to their protocol: served clear wherever the policy
        // names that protocol at all, blocked where it does not.
        Resource::Text { file, .. } => {
            let proto = match file {
                TextFile::Whole | TextFile::StppInit | TextFile::StppSegment(_) => Proto::Dash,
                TextFile::Playlist(_) | TextFile::Segment(..) => Proto::Hls,
            };
            let Some(p) = policy else { return if allow_clear { Ok(Served::Clear) } else { Err(no_policy()) } };
            let delivery = proto.delivery(&p).ok_or_else(|| not_named(asset, proto))?;
            // The MPEG-TS presentation is refused under `cenc`; so are its subtitles.
            if matches!(file, TextFile::Playlist(Container::Ts) | TextFile::Segment(Container::Ts, _)) && delivery == Delivery::DynamicCommonEncryption {
                return Err(ApiError::Forbidden("HLS over MPEG-TS with cenc is not offered".into()));
            }
            Ok(Served::Clear)
        }
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
            let method = match &policy {
                Some(p) => Encryption::of(proto.delivery(p).ok_or_else(|| not_named(asset, proto))?),
                None => None,
            };
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
            match Encryption::of(policy.smooth.ok_or_else(|| not_named(asset, Proto::Smooth))?) {
                None => Ok(Served::Clear),
                // Smooth protection is PIFF (`cenc`): fragments keep their URLs.
                Some(Encryption::Cenc) => Ok(Served::Protected { policy, method: Encryption::Cenc }),
                Some(m) => Err(ApiError::Forbidden(format!("Smooth Streaming with {} is not offered", m.path()))),
            }
        }
        Resource::MediaPlaylist { method: None, .. } | Resource::Init { method: None, .. } | Resource::Segment { method: None, .. } | Resource::IFramePlaylist { method: None, .. } | Resource::IFrameSegment { method: None, .. } => {
            let Some(p) = policy else { return if allow_clear { Ok(Served::Clear) } else { Err(no_policy()) } };
            // Clear CMAF segments serve whichever of DASH and HLS-fMP4 is clear.
            let proto = if is_hls_only(resource) { Proto::Hls } else { Proto::Cmaf };
            let clear_named = |d: Option<Delivery>| d == Some(Delivery::NoDynamicEncryption);
            let clear = match proto {
                Proto::Cmaf => clear_named(p.dash) || clear_named(p.hls),
                _ => clear_named(proto.delivery(&p)),
            };
            if clear {
                Ok(Served::Clear)
            } else {
                Err(ApiError::Forbidden(format!("the delivery policy of '{asset}' does not allow clear {proto:?} output")))
            }
        }
        Resource::MediaPlaylist { method: Some(m), .. }
        | Resource::Init { method: Some(m), .. }
        | Resource::Segment { method: Some(m), .. }
        | Resource::IFramePlaylist { method: Some(m), .. }
        | Resource::IFrameSegment { method: Some(m), .. } => {
            let m = *m;
            let policy = policy.ok_or_else(|| if allow_clear { ApiError::NotFound(format!("asset '{asset}' is not encrypted")) } else { no_policy() })?;
            let uses = |d: Option<Delivery>| d.and_then(Encryption::of) == Some(m);
            // AES-128 and everything TS or playlist is HLS's; CMAF files serve DASH or HLS.
            let allowed = if is_hls_only(resource) || m == Encryption::Aes128 { uses(policy.hls) } else { uses(policy.dash) || uses(policy.hls) };
            if !allowed {
                return Err(ApiError::Forbidden(format!("the delivery policy of '{asset}' does not offer {} here", m.path())));
            }
            if m == Encryption::Cenc && matches!(resource, Resource::MediaPlaylist { container: Container::Ts, .. } | Resource::IFramePlaylist { container: Container::Ts, .. }) {
                return Err(ApiError::Forbidden("HLS over MPEG-TS with cenc is not offered".into()));
            }
            Ok(Served::Protected { policy, method: m })
        }
    }
}

/// Whether a track resource belongs to HLS alone (playlists, TS segments, I-frame segments).
fn is_hls_only(r: &Resource) -> bool {
    matches!(r, Resource::MediaPlaylist { .. } | Resource::Segment { container: Container::Ts, .. } | Resource::IFramePlaylist { .. } | Resource::IFrameSegment { .. })
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

/// What each protocol of `asset` gets under `policy`, for `sealcast catalog check`: one
/// (protocol, verdict) per manifest kind, the verdict being `clear`, the method (`cenc`,
/// `cbcs`, `aes-128`, `SAMPLE-AES` for cbcs over TS) or `blocked: why`. Made by [`decide`]
/// itself, so it says exactly what requests will get.
pub fn describe(asset: &str, policy: Option<Arc<AssetPolicy>>, allow_clear: bool) -> Vec<(&'static str, String)> {
    let kinds = [("DASH", ManifestKind::Mpd), ("HLS fMP4", ManifestKind::Master(Container::Fmp4)), ("HLS TS", ManifestKind::Master(Container::Ts)), ("Smooth", ManifestKind::Smooth)];
    kinds
        .into_iter()
        .map(|(name, kind)| {
            let verdict = match decide(asset, &Resource::Manifest { kind, encryption: None }, policy.clone(), allow_clear) {
                Ok(Served::Clear) => "clear".to_string(),
                Ok(Served::Protected { method: Encryption::Cbcs, .. }) if kind == ManifestKind::Master(Container::Ts) => "SAMPLE-AES (cbcs)".into(),
                Ok(Served::Protected { method, .. }) => method.label().to_string(),
                Err(e) => format!("blocked: {}", e.to_string().trim_start_matches("forbidden: ")),
            };
            (name, verdict)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::LicenseUrls;

    fn policy(dash: Option<Delivery>, hls: Option<Delivery>, smooth: Option<Delivery>) -> Option<Arc<AssetPolicy>> {
        Some(Arc::new(AssetPolicy { dash, hls, smooth, clear_lead_secs: 0, license: LicenseUrls::default(), keys: Vec::new(), storage: None, carry_token: false, cpix: None, progressive_download: false }))
    }

    fn verdicts(p: Option<Arc<AssetPolicy>>, allow: bool) -> Vec<String> {
        describe("a", p, allow).into_iter().map(|(_, v)| v.split(':').next().unwrap().to_string()).collect()
    }

    /// Every combination of per-protocol deliveries × every resource kind: clear only where the
    /// policy says `NoDynamicEncryption` for a protocol that serves the resource; encrypted only
    /// with the method the policy names; else refused.
    #[test]
    fn policy_table_fails_closed() {
        use Delivery::*;
        let options = [None, Some(NoDynamicEncryption), Some(DynamicCommonEncryption), Some(DynamicCommonEncryptionCbcs), Some(DynamicEnvelopeEncryption)];
        let t = || "v".to_string();
        let resources = |m: Option<Encryption>| {
            vec![
                Resource::MediaPlaylist { track: t(), container: Container::Fmp4, method: m },
                Resource::MediaPlaylist { track: t(), container: Container::Ts, method: m },
                Resource::Init { track: t(), method: m },
                Resource::Segment { track: t(), method: m, n: 1, container: Container::Fmp4 },
                Resource::Segment { track: t(), method: m, n: 1, container: Container::Ts },
                Resource::IFramePlaylist { track: t(), container: Container::Fmp4, method: m },
                Resource::IFramePlaylist { track: t(), container: Container::Ts, method: m },
                Resource::IFrameSegment { track: t(), method: m, n: 1, container: Container::Fmp4 },
                Resource::IFrameSegment { track: t(), method: m, n: 1, container: Container::Ts },
            ]
        };
        for dash in options {
            for hls in options {
                for smooth in options {
                    let p = policy(dash, hls, smooth);
                    let named = |d: Option<Delivery>| d.and_then(Encryption::of);
                    // Manifests.
                    for (kind, d) in [(ManifestKind::Mpd, dash), (ManifestKind::Master(Container::Fmp4), hls), (ManifestKind::Master(Container::Ts), hls), (ManifestKind::Smooth, smooth)] {
                        let got = decide("a", &Resource::Manifest { kind, encryption: None }, p.clone(), true);
                        match (d, got) {
                            (None, r) => assert!(r.is_err(), "{kind:?} not named but served under {dash:?}/{hls:?}/{smooth:?}"),
                            (Some(NoDynamicEncryption), r) => assert!(matches!(r, Ok(Served::Clear)), "{kind:?}"),
                            (Some(d), Ok(Served::Protected { method, .. })) => assert_eq!(Some(method), Encryption::of(d)),
                            (Some(_), Ok(Served::Clear)) => panic!("{kind:?} served clear under {d:?}"),
                            (Some(_), Err(_)) => {}
                        }
                    }
                    // Smooth fragments.
                    match decide("a", &Resource::SmoothFragment { stream: t(), bitrate: 1, time: 0 }, p.clone(), true) {
                        Ok(Served::Clear) => assert_eq!(smooth, Some(NoDynamicEncryption)),
                        Ok(Served::Protected { method, .. }) => assert_eq!((method, named(smooth)), (Encryption::Cenc, Some(Encryption::Cenc))),
                        Err(_) => assert!(smooth.is_none() || named(smooth).is_some_and(|m| m != Encryption::Cenc)),
                    }
                    // Clear track resources: only if a protocol serving them is named clear.
                    for r in resources(None) {
                        let hls_only = matches!(r, Resource::MediaPlaylist { .. } | Resource::Segment { container: Container::Ts, .. } | Resource::IFramePlaylist { .. } | Resource::IFrameSegment { .. });
                        let clear_ok = hls == Some(NoDynamicEncryption) || (!hls_only && dash == Some(NoDynamicEncryption));
                        assert_eq!(decide("a", &r, p.clone(), true).is_ok(), clear_ok, "{r:?} under {dash:?}/{hls:?}");
                    }
                    // Encrypted track resources: only with a method a serving protocol names.
                    for m in [Encryption::Cenc, Encryption::Cbcs, Encryption::Aes128] {
                        for r in resources(Some(m)) {
                            let hls_only = matches!(r, Resource::MediaPlaylist { .. } | Resource::Segment { container: Container::Ts, .. } | Resource::IFramePlaylist { .. } | Resource::IFrameSegment { .. }) || m == Encryption::Aes128;
                            let ok = named(hls) == Some(m) || (!hls_only && named(dash) == Some(m));
                            let ok = ok && !(m == Encryption::Cenc && matches!(r, Resource::MediaPlaylist { container: Container::Ts, .. } | Resource::IFramePlaylist { container: Container::Ts, .. }));
                            match decide("a", &r, p.clone(), true) {
                                Ok(Served::Protected { method, .. }) => assert!(ok && method == m, "{r:?} under {dash:?}/{hls:?}"),
                                Ok(Served::Clear) => panic!("{r:?} clear"),
                                Err(_) => assert!(!ok, "{r:?} refused under {dash:?}/{hls:?}"),
                            }
                        }
                    }
                }
            }
        }
    }

    /// Subtitles: clear under every policy that names their protocol (whatever it encrypts
    /// with), blocked where it is not named, and the TS timeline's refused with TS under cenc.
    #[test]
    fn subtitles_follow_their_protocol_never_encrypted() {
        use Delivery::*;
        let options = [None, Some(NoDynamicEncryption), Some(DynamicCommonEncryption), Some(DynamicCommonEncryptionCbcs), Some(DynamicEnvelopeEncryption)];
        let files = [TextFile::Whole, TextFile::StppInit, TextFile::StppSegment(1), TextFile::Playlist(Container::Fmp4), TextFile::Playlist(Container::Ts), TextFile::Segment(Container::Fmp4, 1), TextFile::Segment(Container::Ts, 1)];
        for dash in options {
            for hls in options {
                for file in files {
                    let r = Resource::Text { track: "s".into(), file };
                    let named = if matches!(file, TextFile::Whole | TextFile::StppInit | TextFile::StppSegment(_)) { dash } else { hls };
                    let ts = matches!(file, TextFile::Playlist(Container::Ts) | TextFile::Segment(Container::Ts, _));
                    let ok = named.is_some() && !(ts && named == Some(DynamicCommonEncryption));
                    match decide("a", &r, policy(dash, hls, Some(NoDynamicEncryption)), false) {
                        Ok(Served::Clear) => assert!(ok, "{file:?} served under {dash:?}/{hls:?}"),
                        Ok(Served::Protected { .. }) => panic!("{file:?} encrypted"),
                        Err(e) => assert!(!ok && e.status() == http::StatusCode::FORBIDDEN, "{file:?} refused under {dash:?}/{hls:?}: {e}"),
                    }
                }
            }
        }
        let r = Resource::Text { track: "s".into(), file: TextFile::Whole };
        assert!(matches!(decide("a", &r, None, true), Ok(Served::Clear)));
        assert!(decide("a", &r, None, false).is_err());
    }

    #[test]
    fn no_policy_is_clear_only_when_allowed() {
        assert_eq!(verdicts(None, true), ["clear"; 4]);
        assert_eq!(verdicts(None, false), ["blocked"; 4]);
        // A policy that names nothing (a storage-encrypted ingest before it is published).
        assert_eq!(verdicts(policy(None, None, None), true), ["blocked"; 4]);
        let p = policy(Some(Delivery::DynamicCommonEncryption), Some(Delivery::DynamicCommonEncryptionCbcs), None);
        assert_eq!(verdicts(p, true), ["cenc", "cbcs", "SAMPLE-AES (cbcs)", "blocked"]);
    }
}
