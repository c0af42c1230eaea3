//! Protection planning: for one asset under one encryption method, which key encrypts which
//! track, the shared per-track state the per-request encryptors start from, the protected
//! init segments, the IV contexts, and the signalling every manifest writer embeds (DASH
//! `ContentProtection`, HLS `#EXT-X-KEY` / `#EXT-X-SESSION-KEY`, Smooth `<Protection>`).
//!
//! Pure: the caller (the origin) passes the asset, its path, its file sizes, the keys and
//! licence URLs its catalog holds, and keeps the plan (with its own caches) for as long as
//! the asset and the policy stay the same. [`crate::protect`] is the per-request half.
//!
//! Nothing here logs, formats or hashes key bytes: IVs derive from KIDs and file identities
//! only, and the ETag fingerprint holds a key check value (AES of a zero block), never the key.

use bytes::Bytes;
use std::sync::Arc;

use sealcast_cenc::aes::AesCbc;
use sealcast_cenc::multibuf::MultiKey;
use sealcast_cenc::init::protect_init;
use sealcast_cenc::{iv, IvDeriver, TrackProtection};
use sealcast_drm::cpix::CpixDocument;
use sealcast_drm::dash::Namespaces;
use sealcast_drm::hls::KeyTag;
use sealcast_drm::playready::PlayReadyHeader;
use sealcast_drm::widevine::WidevinePsshData;
use sealcast_drm::{ContentKey, Delivery, Kid, LicenseUrls, PsshBox, Scheme, SystemId, TrackDesc};

use crate::manifest::dash::{DashProtection, TrackSignal};
use crate::manifest::hls::{HlsProtection, HlsTrackSignal};
use crate::protect::sample_format;
use crate::track::CodecConfig;
use crate::ts::SampleAesParams;
use crate::{Asset, AssetTrack, TrackKind};

/// How an output is protected: a Common Encryption scheme, or HLS AES-128 whole-segment
/// (envelope) encryption. Names the path segment of its URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encryption {
    /// ISO 23001-7 `cenc`.
    Cenc,
    /// ISO 23001-7 `cbcs` (and SAMPLE-AES for MPEG-TS).
    Cbcs,
    /// HLS AES-128: whole segments, AES-128-CBC with PKCS#7 padding.
    Aes128,
}

impl Encryption {
    /// The path segment between the track name and the file name.
    pub fn path(self) -> &'static str {
        match self {
            Encryption::Cenc => "cenc",
            Encryption::Cbcs => "cbcs",
            Encryption::Aes128 => "aes",
        }
    }

    /// Its name for people (`cenc`, `cbcs`, `aes-128`).
    pub fn label(self) -> &'static str {
        match self {
            Encryption::Cenc => "cenc",
            Encryption::Cbcs => "cbcs",
            Encryption::Aes128 => "aes-128",
        }
    }

    /// The method named by a path segment.
    pub fn from_path(p: &str) -> Option<Encryption> {
        [Encryption::Cenc, Encryption::Cbcs, Encryption::Aes128].into_iter().find(|e| e.path() == p)
    }

    /// The method a delivery type asks for (`None`: clear).
    pub fn of(d: Delivery) -> Option<Encryption> {
        match d {
            Delivery::NoDynamicEncryption => None,
            Delivery::DynamicCommonEncryption => Some(Encryption::Cenc),
            Delivery::DynamicCommonEncryptionCbcs => Some(Encryption::Cbcs),
            Delivery::DynamicEnvelopeEncryption => Some(Encryption::Aes128),
        }
    }

    /// The Common Encryption scheme, for the sample-encryption methods.
    pub fn scheme(self) -> Option<Scheme> {
        match self {
            Encryption::Cenc => Some(Scheme::Cenc),
            Encryption::Cbcs => Some(Scheme::Cbcs),
            Encryption::Aes128 => None,
        }
    }
}

/// Why a plan could not be made: a catalog fault (keys, CPIX, licence URLs) or a track the
/// schemes cannot protect. The origin answers requests of the asset with a 5xx naming it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// Keys, their assignment to tracks, or DRM signalling (e.g. a licence URL that cannot be
    /// embedded).
    #[error("{0}")]
    Drm(#[from] sealcast_drm::Error),
    /// A key that is not an AES-128 key.
    #[error("{0}")]
    Key(#[from] sealcast_cenc::KeyError),
    /// Encryption setup of a track (its sample format, its init segment).
    #[error("{track}: {source}")]
    Track {
        /// The track's name.
        track: String,
        /// What failed.
        source: sealcast_cenc::Error,
    },
    /// Key setup.
    #[error("{0}")]
    Crypto(#[from] sealcast_cenc::Error),
    /// A key assignment that names a key the policy does not hold.
    #[error("key assignment out of range")]
    Assignment,
}

/// What the planner needs to know of an asset and its catalog entry.
pub struct PlanInput<'a> {
    /// The asset.
    pub asset: &'a Asset,
    /// Its path under the storage root: the title's content ID for Widevine (public), and
    /// part of every IV context.
    pub path: &'a str,
    /// Size in bytes of each track's file, in asset track order (part of the IV context).
    pub file_sizes: Vec<u64>,
    /// The keys the policy holds for the method's delivery type, in catalog order.
    pub keys: Vec<ContentKey>,
    /// The CPIX document the keys came from: its usage rules (when it has some) assign keys
    /// to tracks, and its DRM signalling (vendor `pssh` boxes) is used as given.
    pub cpix: Option<&'a CpixDocument>,
    /// Where players get licences and keys.
    pub license: &'a LicenseUrls,
    /// Seconds served clear at the start of each track (Common Encryption only).
    pub clear_lead_secs: u32,
}

/// HLS AES-128 state of one track.
pub struct Envelope {
    /// Expanded key, shared with the segments queued for encryption together
    /// ([`sealcast_cenc::multibuf`]).
    key: Arc<MultiKey>,
    /// The `#EXT-X-KEY` URI (the key delivery URL of the key).
    pub key_uri: String,
    /// What the per-segment IVs derive from (file identity, track).
    iv_context: String,
    track_id: u32,
}

impl Envelope {
    /// The IV of segment `n` (from 1) in format `fmt` (`ts`, `m4s`): derived from public
    /// values only, different for every segment and format so no IV is reused under the key.
    pub fn iv(&self, kid: Kid, fmt: &str, n: usize) -> [u8; 16] {
        iv::constant_iv(kid.as_bytes(), format!("{}\nhls-aes128/{fmt}/{n}", self.iv_context).as_bytes(), self.track_id)
    }

    /// The key, for segments encrypted together with others ([`sealcast_cenc::multibuf`]).
    pub fn key(&self) -> &Arc<MultiKey> {
        &self.key
    }
}

/// One track under one method.
pub struct TrackPlan {
    /// Key schedule, IV rule and layout, shared by every request (Common Encryption).
    pub prot: Option<TrackProtection>,
    /// AES-128 whole-segment state (envelope).
    pub envelope: Option<Envelope>,
    /// The protected init segment (`encv`/`enca` + `sinf`, `pssh` boxes; the clear init
    /// under AES-128).
    pub init: Bytes,
    /// Its key's ID.
    pub kid: Kid,
    /// Decode time (track timescale) before which fragments stay clear (clear lead).
    pub clear_until: u64,
    /// SAMPLE-AES over MPEG-TS (`cbcs` methods, H.264/AAC tracks): key and IV.
    pub sample_aes: Option<SampleAesParams>,
    /// Its `identity` key URI (the key delivery URL).
    pub sample_aes_uri: Option<String>,
    /// `#EXT-X-KEY` lines of the track's TS media playlist.
    pub ts_key_lines: Vec<String>,
    /// Everything besides the source that this track's encrypted bytes depend on — the
    /// protected init (KID, `pssh` with licence URLs, clear sample entry), the clear lead, the
    /// key URIs, and a check value of the key (AES of a zero block: public, reveals nothing of
    /// the key) — hashed, for ETags: a key re-bound to the same KID, a new clear lead or new
    /// licence URLs give new ETags, so caches never splice old and new bytes.
    pub fingerprint: String,
}

impl TrackPlan {
    /// What an encrypted response of this track derives from, for its ETag: the `source`
    /// identity (files read), the KID and the fingerprint; never the key.
    pub fn identity(&self, source: &str) -> String {
        format!("{source}\n{}\n{}", self.kid.to_hex(), self.fingerprint)
    }
}

/// An asset under one method: per track its plan, and the manifest signalling.
pub struct MethodPlan {
    /// The method.
    pub method: Encryption,
    /// Per asset track, in asset order.
    pub tracks: Vec<TrackPlan>,
    /// DASH signalling.
    pub dash: DashProtection,
    /// HLS signalling.
    pub hls: HlsProtection,
    /// Smooth `<Protection>` element (PlayReady Object of every key), `cenc` only.
    pub smooth: Option<String>,
}

/// Plans `input`'s asset under `method`.
pub fn plan(method: Encryption, input: &PlanInput<'_>) -> Result<MethodPlan, PlanError> {
    match method.scheme() {
        Some(scheme) => plan_scheme(method, scheme, input),
        None => plan_envelope(input),
    }
}

/// The key delivery URL of `kid`: the `key_delivery` template of `license`, else the origin's
/// own key route.
pub fn key_uri(license: &LicenseUrls, kid: Kid) -> String {
    license.key_delivery.as_deref().unwrap_or("/key/{kid}").replace("{kid}", &kid.to_hex())
}

/// What a track's IVs derive from: the asset's path, the file's name and length, and a
/// fingerprint of what the index read from it (the init segment, and every fragment's times,
/// offset and sizes).
///
/// Two assets never share a counter block under one key, even when their files have the same
/// name, size and fragment table (size-preserving A/B watermark variants): the asset path
/// differs. New content at the same path under the same key gets new IVs when the re-encode
/// changes the init or the fragment table. It does not depend on how or on which node the file
/// is stored (modification time, storage ETag, storage encryption), so every replica and a
/// storage-encrypted copy serve the same bytes. Left open: a file replaced in place by one
/// with the same init and fragment table (same sizes everywhere) reuses the IVs; only a hash
/// of the media bytes, which the index never reads, could tell them apart.
pub fn iv_context(path: &str, file_size: u64, t: &AssetTrack) -> String {
    let ti = t.track();
    // A single-track fragmented file's `media_bytes` is an estimate made from `size` and the
    // first fragment (`IndexBuilder::finish`); its `size` stands in, as the index held before
    // the estimate existed, so IVs did not change with it (a cached playlist's IV must keep
    // matching the segments).
    let estimated = t.media_bytes_estimated();
    let mut h = Vec::with_capacity(ti.init.len() + ti.fragments.len() * 49);
    h.extend_from_slice(&ti.init);
    for f in &ti.fragments {
        for v in [f.decode_time, f.duration, f.pres_offset as u64, f.offset, f.size, if estimated { f.size } else { f.media_bytes }] {
            h.extend_from_slice(&v.to_be_bytes());
        }
        h.push(f.keyframe as u8);
    }
    format!("{path}\n{}\n{file_size}\n{:032x}", t.file, xxhash_rust::xxh3::xxh3_128(&h))
}

fn file_size(input: &PlanInput<'_>, track: usize) -> u64 {
    input.file_sizes.get(track).copied().unwrap_or(0)
}

/// The ETag fingerprint of a protected track (see [`TrackPlan::fingerprint`]).
fn fingerprint(init: &[u8], clear_until: u64, key: &[u8; 16], extra: &str) -> Result<String, PlanError> {
    let mut kcv = [0u8; 16];
    AesCbc::new(key)?.encrypt([0u8; 16], &mut kcv)?;
    let mut h = Vec::with_capacity(init.len() + 64);
    h.extend_from_slice(init);
    h.extend_from_slice(&clear_until.to_be_bytes());
    h.extend_from_slice(&kcv);
    h.extend_from_slice(extra.as_bytes());
    Ok(format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&h)))
}

fn desc(t: &AssetTrack) -> TrackDesc {
    let i = &t.track().info;
    match t.kind() {
        TrackKind::Video => TrackDesc::video(i.width as u32, i.height as u32).with_bitrate(t.bandwidth as u64),
        TrackKind::Audio => TrackDesc::audio().with_channels(i.channels as u32).with_bitrate(t.bandwidth as u64),
    }
}

/// The keys and, per track, the index of the one that encrypts it: by the CPIX document's
/// usage rules when the keys came with some, else audio + quality groups over `input.keys`.
fn assigned(input: &PlanInput<'_>) -> Result<(Vec<ContentKey>, Vec<usize>), PlanError> {
    let descs: Vec<TrackDesc> = input.asset.tracks.iter().map(desc).collect();
    if let Some(doc) = input.cpix.filter(|d| !d.usage_rules.is_empty()) {
        let keys: Vec<ContentKey> = doc.keys.iter().map(|k| k.key.clone()).collect();
        let assignment = doc.assign_keys(&descs)?;
        return Ok((keys, assignment));
    }
    let assignment = sealcast_drm::assign_keys(&descs, &input.keys)?;
    Ok((input.keys.clone(), assignment))
}

/// The DRM system data for one set of keys: Widevine and W3C Common `pssh` boxes, the
/// PlayReady Object and its `pssh`.
struct Systems {
    widevine: PsshBox,
    common: PsshBox,
    pro: Vec<u8>,
    playready: PsshBox,
}

fn playready_header<'k>(scheme: Scheme, keys: impl IntoIterator<Item = &'k ContentKey>, license: &LicenseUrls) -> Result<PlayReadyHeader, PlanError> {
    let pr = PlayReadyHeader::new(scheme, keys)?;
    Ok(match &license.playready {
        Some(u) => pr.with_la_url(u)?,
        None => pr,
    })
}

fn systems(scheme: Scheme, key: &ContentKey, input: &PlanInput<'_>) -> Result<Systems, PlanError> {
    let kid = key.kid();
    // The content ID names the title for a Widevine licence service: the asset path (public).
    let widevine = WidevinePsshData { content_id: Some(input.path.as_bytes().to_vec()), ..WidevinePsshData::new(vec![kid], scheme) }.to_pssh_box()?;
    let common = sealcast_drm::clearkey::common_pssh_box(&[kid])?;
    let pr = playready_header(scheme, [key], input.license)?;
    let mut sys = Systems { widevine, common, pro: pr.to_pro()?, playready: pr.to_pssh_box()? };
    // A DRM vendor's own signalling from CPIX (its `pssh` carries what its licence server
    // expects: content IDs, provider, LA_URL) replaces ours.
    if let Some(doc) = input.cpix {
        if let Some(p) = doc.signalling(kid, SystemId::WIDEVINE).and_then(|s| s.pssh.clone()) {
            sys.widevine = p;
        }
        if let Some(p) = doc.signalling(kid, SystemId::PLAYREADY).and_then(|s| s.pssh.clone()) {
            sys.pro = p.data.clone();
            sys.playready = p;
        }
    }
    Ok(sys)
}

/// The FairPlay key line of `kid` (`cbcs` only), when the policy names a FairPlay key URI.
fn fairplay(tag: KeyTag, license: &LicenseUrls, kid: Kid) -> Result<Option<String>, PlanError> {
    Ok(match &license.fairplay {
        Some(fp) => Some(sealcast_drm::hls::fairplay(tag, &fp.replace("{kid}", &kid.to_hex()))?),
        None => None,
    })
}

fn plan_envelope(input: &PlanInput<'_>) -> Result<MethodPlan, PlanError> {
    let asset = input.asset;
    let (keys, assignment) = assigned(input)?;
    let mut tracks = Vec::with_capacity(asset.tracks.len());
    let mut hls = HlsProtection::default();
    for (i, (t, &ki)) in asset.tracks.iter().zip(&assignment).enumerate() {
        let key = keys.get(ki).ok_or(PlanError::Assignment)?;
        let raw = key.aes128_bytes()?;
        let env = Envelope {
            key: Arc::new(MultiKey::new(raw)?),
            key_uri: key_uri(input.license, key.kid()),
            iv_context: iv_context(input.path, file_size(input, i), t),
            track_id: t.track().info.track_id,
        };
        hls.tracks.push(HlsTrackSignal { key_lines: Vec::new(), path: Encryption::Aes128.path() });
        // The init segment stays clear: the key tags follow EXT-X-MAP.
        let fingerprint = fingerprint(&t.track().init, 0, raw, &env.key_uri)?;
        tracks.push(TrackPlan { prot: None, envelope: Some(env), init: t.track().init.clone(), kid: key.kid(), clear_until: 0, sample_aes: None, sample_aes_uri: None, ts_key_lines: Vec::new(), fingerprint });
    }
    Ok(MethodPlan { method: Encryption::Aes128, tracks, dash: DashProtection::default(), hls, smooth: None })
}

fn plan_scheme(method: Encryption, scheme: Scheme, input: &PlanInput<'_>) -> Result<MethodPlan, PlanError> {
    let asset = input.asset;
    let license = input.license;
    let (keys, assignment) = assigned(input)?;
    let ns = Namespaces::OnRoot;
    let mut tracks = Vec::with_capacity(asset.tracks.len());
    let mut dash = DashProtection { namespaces: sealcast_drm::dash::MPD_NAMESPACES.to_vec(), tracks: Vec::new() };
    let mut hls = HlsProtection::default();
    // Each distinct key's DRM system data, built once, in the order tracks first use them.
    let mut by_key: Vec<(&ContentKey, Systems)> = Vec::new();
    for (i, (t, &ki)) in asset.tracks.iter().zip(&assignment).enumerate() {
        let key = keys.get(ki).ok_or(PlanError::Assignment)?;
        let kid = key.kid();
        let info = &t.track().info;
        let raw = key.aes128_bytes()?;
        let context = iv_context(input.path, file_size(input, i), t);
        let format = sample_format(info);
        let on_track = |source| PlanError::Track { track: t.name.clone(), source };
        let prot = match scheme {
            Scheme::Cenc => TrackProtection::cenc(key, format, IvDeriver::derive(kid.as_bytes(), context.as_bytes(), info.track_id)),
            Scheme::Cbcs => TrackProtection::cbcs(key, format, iv::constant_iv(kid.as_bytes(), context.as_bytes(), info.track_id)),
        }
        .map_err(on_track)?;
        let sys = match by_key.iter().position(|(k, _)| k.kid() == kid) {
            Some(i) => &by_key[i].1,
            None => {
                by_key.push((key, systems(scheme, key, input)?));
                &by_key[by_key.len() - 1].1
            }
        };
        let pssh = vec![sys.widevine.clone(), sys.playready.clone(), sys.common.clone()];
        let clear_until = (input.clear_lead_secs as u64).saturating_mul(info.timescale as u64);
        let mut ip = prot.init_protection(None, pssh);
        ip.clear_entry = clear_until > 0;
        let init = protect_init(&t.track().init, &ip).map_err(on_track)?;

        let mut cp = String::new();
        // ClearKey always: without it dash.js finds no stream it can play with keys it is
        // given (issue 12); its licence URL when the policy names one.
        let elements = [
            sealcast_drm::dash::mp4protection(scheme, kid, ns),
            sealcast_drm::dash::widevine(&sys.widevine, ns),
            sealcast_drm::dash::playready(&sys.pro, Some(&sys.playready), ns),
            sealcast_drm::dash::clearkey(license.clearkey.as_deref(), ns)?,
        ];
        for el in elements {
            cp.push_str("      ");
            cp.push_str(&el);
            cp.push('\n');
        }
        dash.tracks.push(TrackSignal { content_protection: cp, kid: kid.to_hex(), path: method.path() });

        let mut key_lines = Vec::new();
        if scheme == Scheme::Cbcs {
            key_lines.extend(fairplay(KeyTag::Key, license, kid)?);
        }
        key_lines.push(sealcast_drm::hls::widevine(KeyTag::Key, scheme, &sys.widevine, kid, None));
        key_lines.push(sealcast_drm::hls::playready(KeyTag::Key, scheme, &sys.pro, None));
        hls.tracks.push(HlsTrackSignal { key_lines, path: method.path() });

        // SAMPLE-AES (Apple's MPEG-2 stream encryption) takes the track's cbcs key; H.264 and
        // AAC only. The IV is constant per track and stated in the playlist.
        let (mut sample_aes, mut sample_aes_uri, mut ts_key_lines) = (None, None, Vec::new());
        if scheme == Scheme::Cbcs && !matches!(info.config, CodecConfig::Hevc(_)) {
            let iv = iv::constant_iv(kid.as_bytes(), format!("{context}\nsample-aes").as_bytes(), info.track_id);
            let uri = key_uri(license, kid);
            ts_key_lines.push(sealcast_drm::hls::sample_aes_identity(&uri, iv)?);
            ts_key_lines.extend(fairplay(KeyTag::Key, license, kid)?);
            sample_aes = Some(SampleAesParams { key: *raw, iv });
            sample_aes_uri = Some(uri);
        }
        let fingerprint = fingerprint(&init, clear_until, raw, &ts_key_lines.concat())?;
        tracks.push(TrackPlan { prot: Some(prot), envelope: None, init: Bytes::from(init), kid, clear_until, sample_aes, sample_aes_uri, ts_key_lines, fingerprint });
    }
    // Session keys: one per distinct key, so players can fetch licences before playback.
    for (key, sys) in &by_key {
        let kid = key.kid();
        if scheme == Scheme::Cbcs {
            hls.session_keys.extend(fairplay(KeyTag::SessionKey, license, kid)?);
        }
        hls.session_keys.push(sealcast_drm::hls::widevine(KeyTag::SessionKey, scheme, &sys.widevine, kid, None));
        hls.session_keys.push(sealcast_drm::hls::playready(KeyTag::SessionKey, scheme, &sys.pro, None));
    }
    // RFC 8216 §4.3.4.5: no two EXT-X-SESSION-KEY tags with the same METHOD, URI, IV,
    // KEYFORMAT and KEYFORMATVERSIONS (a FairPlay URI without `{kid}` is one for all keys).
    let mut seen_lines = std::collections::HashSet::new();
    hls.session_keys.retain(|l| seen_lines.insert(l.clone()));
    let smooth = match scheme {
        Scheme::Cenc => {
            let pr = playready_header(scheme, by_key.iter().map(|(k, _)| *k), license)?;
            Some(sealcast_drm::smooth::protection(&pr.to_pro()?))
        }
        Scheme::Cbcs => None,
    };
    Ok(MethodPlan { method, tracks, dash, hls, smooth })
}
