//! Per-asset protection state: for each Common Encryption scheme an asset's delivery policy
//! uses, which key encrypts which track, the shared [`TrackProtection`] (key schedule, IV
//! rule, sample layout), the protected init segments, and the manifest signalling (DASH
//! `ContentProtection`, HLS key tags, Smooth `Protection`).
//!
//! Built once per (asset version, policy version) and shared read-only by every request;
//! requests only make a per-request encryptor from it. Encrypted manifests are cached here
//! too, so a policy or key change (a catalog reload gives a new policy `Arc`) rebuilds them.
//!
//! Nothing here logs, formats or hashes key bytes: ETags and IVs derive from KIDs and file
//! identities only.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use sealcast_cenc::boxes::Pssh;
use sealcast_cenc::init::protect_init;
use sealcast_cenc::{iv, IvDeriver, TrackProtection};
use sealcast_drm::dash::Namespaces;
use sealcast_drm::hls::KeyTag;
use sealcast_drm::playready::PlayReadyHeader;
use sealcast_drm::widevine::WidevinePsshData;
use sealcast_drm::{ContentKey, Kid, PsshBox, Scheme, TrackDesc};
use sealcast_package::manifest::dash::{DashProtection, TrackSignal};
use sealcast_package::manifest::hls::{HlsProtection, HlsTrackSignal};
use sealcast_package::protect::sample_format;
use sealcast_package::{Asset, AssetTrack, TrackKind};

use crate::assets::Loaded;
use crate::catalog::{AssetPolicy, Delivery};

/// The path segment of a scheme's encrypted init, segments and playlists.
pub fn scheme_path(s: Scheme) -> &'static str {
    match s {
        Scheme::Cenc => "cenc",
        Scheme::Cbcs => "cbcs",
    }
}

/// The scheme named by a path segment.
pub fn scheme_from_path(p: &str) -> Option<Scheme> {
    match p {
        "cenc" => Some(Scheme::Cenc),
        "cbcs" => Some(Scheme::Cbcs),
        _ => None,
    }
}

/// The scheme a delivery type asks for.
pub fn delivery_scheme(d: Delivery) -> Option<Scheme> {
    match d {
        Delivery::NoDynamicEncryption => None,
        Delivery::DynamicCommonEncryption => Some(Scheme::Cenc),
        Delivery::DynamicCommonEncryptionCbcs => Some(Scheme::Cbcs),
    }
}

/// One track under one scheme.
pub struct TrackCrypto {
    /// Key schedule, IV rule and layout, shared by every request.
    pub prot: TrackProtection,
    /// The protected init segment (`encv`/`enca` + `sinf`, `pssh` boxes).
    pub init: Bytes,
    /// Its key's ID.
    pub kid: Kid,
    /// Decode time (track timescale) before which fragments stay clear (clear lead).
    pub clear_until: u64,
}

/// Everything one scheme needs for one asset.
pub struct SchemeCrypto {
    /// The scheme.
    pub scheme: Scheme,
    /// Per asset track, in asset order.
    pub tracks: Vec<TrackCrypto>,
    /// DASH signalling.
    pub dash: DashProtection,
    /// HLS signalling.
    pub hls: HlsProtection,
    /// Smooth `<Protection>` element (PlayReady Object of every key), `cenc` only.
    pub smooth: Option<String>,
    /// Cached manifests: MPD, HLS master, Smooth, then one HLS media playlist per track.
    manifests: Vec<OnceLock<(Bytes, http::HeaderValue)>>,
}

impl SchemeCrypto {
    /// A cached manifest (see [`ManifestKind`]), built on first use. The ETag hashes the
    /// asset identity, the slot and the body, so a new key or policy gives a new ETag.
    pub fn manifest(&self, loaded: &Loaded, kind: ManifestKind, build: impl FnOnce(&Asset, &SchemeCrypto) -> String) -> (Bytes, http::HeaderValue) {
        let i = match kind {
            ManifestKind::Mpd => 0,
            ManifestKind::Master => 1,
            ManifestKind::Smooth => 2,
            ManifestKind::Media(t) => 3 + t,
        };
        self.manifests[i]
            .get_or_init(|| {
                let body = build(&loaded.asset, self);
                let tag = crate::respond::etag(&loaded.identity, &format!("{}/{i}\n{body}", scheme_path(self.scheme)));
                (Bytes::from(body), tag)
            })
            .clone()
    }
}

/// Which encrypted manifest.
#[derive(Debug, Clone, Copy)]
pub enum ManifestKind {
    /// DASH MPD.
    Mpd,
    /// HLS multivariant playlist (fMP4).
    Master,
    /// Smooth client manifest.
    Smooth,
    /// HLS media playlist of track `i`.
    Media(usize),
}

/// An asset's protection under one policy version.
pub struct AssetCrypto {
    /// The policy it was built from (compared by pointer: a reload makes a new `Arc`).
    pub policy: Arc<AssetPolicy>,
    cenc: Option<SchemeCrypto>,
    cbcs: Option<SchemeCrypto>,
}

impl AssetCrypto {
    /// Builds the protection of `loaded` for every scheme `policy` uses.
    pub fn build(loaded: &Loaded, policy: Arc<AssetPolicy>) -> Result<AssetCrypto, String> {
        let mut out = AssetCrypto { policy: policy.clone(), cenc: None, cbcs: None };
        for d in [policy.dash, policy.hls, policy.smooth] {
            let Some(scheme) = delivery_scheme(d) else { continue };
            let slot = match scheme {
                Scheme::Cenc => &mut out.cenc,
                Scheme::Cbcs => &mut out.cbcs,
            };
            if slot.is_none() {
                *slot = Some(build_scheme(loaded, &policy, d, scheme)?);
            }
        }
        Ok(out)
    }

    /// The state of `scheme`, when the policy uses it.
    pub fn scheme(&self, scheme: Scheme) -> Option<&SchemeCrypto> {
        match scheme {
            Scheme::Cenc => self.cenc.as_ref(),
            Scheme::Cbcs => self.cbcs.as_ref(),
        }
    }
}

fn desc(t: &AssetTrack) -> TrackDesc {
    let i = &t.track().info;
    match t.kind() {
        TrackKind::Video => TrackDesc::video(i.width as u32, i.height as u32).with_bitrate(t.bandwidth as u64),
        TrackKind::Audio => TrackDesc::audio().with_channels(i.channels as u32).with_bitrate(t.bandwidth as u64),
    }
}

fn to_box(p: &PsshBox) -> Pssh {
    Pssh::new(*p.system_id().as_bytes(), p.kids().iter().map(|k| *k.as_bytes()).collect(), p.data().to_vec())
}

/// The DRM system data for one set of keys: Widevine and W3C Common `pssh` boxes, the
/// PlayReady Object and its `pssh`.
struct Systems {
    widevine: PsshBox,
    common: PsshBox,
    pro: Vec<u8>,
    playready: PsshBox,
}

fn systems(scheme: Scheme, keys: &[&ContentKey], policy: &AssetPolicy) -> Result<Systems, String> {
    let kids: Vec<Kid> = keys.iter().map(|k| k.kid()).collect();
    let err = |e: sealcast_drm::Error| e.to_string();
    let widevine = WidevinePsshData::new(kids.clone(), scheme).to_pssh_box().map_err(err)?;
    let common = sealcast_drm::clearkey::common_pssh_box(&kids).map_err(err)?;
    let mut pr = PlayReadyHeader::new(scheme, keys.iter().copied()).map_err(err)?;
    if let Some(u) = &policy.license.playready {
        pr = pr.with_la_url(u).map_err(err)?;
    }
    Ok(Systems { widevine, common, pro: pr.to_pro().map_err(err)?, playready: pr.to_pssh_box().map_err(err)? })
}

fn build_scheme(loaded: &Loaded, policy: &AssetPolicy, delivery: Delivery, scheme: Scheme) -> Result<SchemeCrypto, String> {
    let asset = &loaded.asset;
    let keys: Vec<ContentKey> = policy.keys_for(delivery).into_iter().cloned().collect();
    let descs: Vec<TrackDesc> = asset.tracks.iter().map(desc).collect();
    let assignment = sealcast_drm::assign_keys(&descs, &keys).map_err(|e| e.to_string())?;
    let ns = Namespaces::OnRoot;
    let mut tracks = Vec::with_capacity(asset.tracks.len());
    let mut dash = DashProtection { namespaces: sealcast_drm::dash::MPD_NAMESPACES.to_vec(), tracks: Vec::new() };
    let mut hls = HlsProtection::default();
    for (t, &ki) in asset.tracks.iter().zip(&assignment) {
        let key = keys.get(ki).ok_or("key assignment out of range")?;
        let kid = key.kid();
        let info = &t.track().info;
        let raw = key.aes128_bytes().map_err(|e| e.to_string())?;
        let ck = sealcast_cenc::ContentKey { kid: *kid.as_bytes(), key: *raw };
        // IVs depend on the file's identity (path, size, time, ETag): new content, new IVs.
        let file = loaded.files.get(&t.file).map(|o| o.identity()).unwrap_or_else(|| t.file.clone());
        let context = format!("{}\n{}", loaded.path, file);
        let format = sample_format(info);
        let prot = match scheme {
            Scheme::Cenc => TrackProtection::cenc(&ck, format, IvDeriver::derive(kid.as_bytes(), context.as_bytes(), info.track_id)),
            Scheme::Cbcs => TrackProtection::cbcs(&ck, format, iv::constant_iv(kid.as_bytes(), context.as_bytes(), info.track_id)),
        }
        .map_err(|e| format!("{}: {e}", t.name))?;
        let sys = systems(scheme, &[key], policy)?;
        let pssh = vec![to_box(&sys.widevine), to_box(&sys.playready), to_box(&sys.common)];
        let clear_until = (policy.clear_lead_secs as u64).saturating_mul(info.timescale as u64);
        let mut ip = prot.init_protection(None, pssh);
        ip.clear_entry = clear_until > 0;
        let init = protect_init(&t.track().init, &ip).map_err(|e| format!("{}: {e}", t.name))?;

        let mut cp = String::new();
        for el in [
            sealcast_drm::dash::mp4protection(scheme, kid, ns),
            sealcast_drm::dash::widevine(&sys.widevine, ns),
            sealcast_drm::dash::playready(&sys.pro, Some(&sys.playready), ns),
        ] {
            cp.push_str("      ");
            cp.push_str(&el);
            cp.push('\n');
        }
        if let Some(u) = &policy.license.clearkey {
            cp.push_str("      ");
            cp.push_str(&sealcast_drm::dash::clearkey(u, ns).map_err(|e| e.to_string())?);
            cp.push('\n');
        }
        dash.tracks.push(TrackSignal { content_protection: cp, kid: kid.to_hex(), path: scheme_path(scheme) });

        let mut key_lines = Vec::new();
        if scheme == Scheme::Cbcs {
            if let Some(fp) = &policy.license.fairplay {
                key_lines.push(sealcast_drm::hls::fairplay(KeyTag::Key, &fp.replace("{kid}", &kid.to_hex())).map_err(|e| e.to_string())?);
            }
        }
        key_lines.push(sealcast_drm::hls::widevine(KeyTag::Key, scheme, &sys.widevine, kid, None));
        key_lines.push(sealcast_drm::hls::playready(KeyTag::Key, scheme, &sys.pro, None));
        hls.tracks.push(HlsTrackSignal { key_lines, path: scheme_path(scheme) });

        tracks.push(TrackCrypto { prot, init: Bytes::from(init), kid, clear_until });
    }
    // Session keys: one per distinct key, so players can fetch licences before playback.
    let mut seen: Vec<Kid> = Vec::new();
    for t in &tracks {
        if seen.contains(&t.kid) {
            continue;
        }
        seen.push(t.kid);
        let Some(key) = keys.iter().find(|k| k.kid() == t.kid) else { continue };
        let sys = systems(scheme, &[key], policy)?;
        if scheme == Scheme::Cbcs {
            if let Some(fp) = &policy.license.fairplay {
                hls.session_keys.push(sealcast_drm::hls::fairplay(KeyTag::SessionKey, &fp.replace("{kid}", &t.kid.to_hex())).map_err(|e| e.to_string())?);
            }
        }
        hls.session_keys.push(sealcast_drm::hls::widevine(KeyTag::SessionKey, scheme, &sys.widevine, t.kid, None));
        hls.session_keys.push(sealcast_drm::hls::playready(KeyTag::SessionKey, scheme, &sys.pro, None));
    }
    hls.session_keys.dedup();
    let smooth = match scheme {
        Scheme::Cenc => {
            let used: Vec<&ContentKey> = seen.iter().filter_map(|k| keys.iter().find(|c| c.kid() == *k)).collect();
            let mut pr = PlayReadyHeader::new(scheme, used).map_err(|e| e.to_string())?;
            if let Some(u) = &policy.license.playready {
                pr = pr.with_la_url(u).map_err(|e| e.to_string())?;
            }
            Some(sealcast_drm::smooth::protection(&pr.to_pro().map_err(|e| e.to_string())?))
        }
        Scheme::Cbcs => None,
    };
    let slots = 3 + asset.tracks.len();
    Ok(SchemeCrypto { scheme, tracks, dash, hls, smooth, manifests: (0..slots).map(|_| OnceLock::new()).collect() })
}
