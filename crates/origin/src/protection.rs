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
use sealcast_cenc::init::protect_init;
use sealcast_cenc::aes::AesCbc;
use sealcast_cenc::{iv, IvDeriver, TrackProtection};
use sealcast_drm::dash::Namespaces;
use sealcast_drm::hls::KeyTag;
use sealcast_drm::playready::PlayReadyHeader;
use sealcast_drm::widevine::WidevinePsshData;
use sealcast_drm::{ContentKey, Kid, PsshBox, Scheme, SystemId, TrackDesc};
use sealcast_package::manifest::dash::{DashProtection, TrackSignal};
use sealcast_package::manifest::hls::{HlsProtection, HlsTrackSignal};
use sealcast_package::protect::sample_format;
use sealcast_package::{Asset, AssetTrack, TrackKind};

use crate::assets::{Loaded, ManifestSlot};
use crate::catalog::{AssetPolicy, Delivery};

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
        match p {
            "cenc" => Some(Encryption::Cenc),
            "cbcs" => Some(Encryption::Cbcs),
            "aes" => Some(Encryption::Aes128),
            _ => None,
        }
    }

    /// The method a delivery type asks for.
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

/// HLS AES-128 state of one track.
pub struct Envelope {
    /// Expanded key.
    pub cbc: AesCbc,
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

    /// Encrypts a whole segment with AES-128-CBC and PKCS#7 padding (RFC 8216 §4.3.2.4), in
    /// place and without growing the buffer: the whole blocks are encrypted where they lie,
    /// and the last partial block plus padding becomes a second, 16-byte chunk.
    pub fn encrypt(&self, iv: [u8; 16], mut data: Vec<u8>) -> Result<Vec<Bytes>, String> {
        let whole = data.len() - data.len() % 16;
        let mut tail = [0u8; 16];
        let rest = data.len() - whole;
        tail[..rest].copy_from_slice(&data[whole..]);
        tail[rest..].fill((16 - rest) as u8);
        data.truncate(whole);
        self.cbc.encrypt(iv, &mut data).map_err(|e| e.to_string())?;
        // CBC chains on: the tail's IV is the last ciphertext block (or `iv` for a short input).
        let chain: [u8; 16] = data.last_chunk::<16>().copied().unwrap_or(iv);
        self.cbc.encrypt(chain, &mut tail).map_err(|e| e.to_string())?;
        Ok(vec![Bytes::from(data), Bytes::copy_from_slice(&tail)])
    }
}

/// One track under one method.
pub struct TrackCrypto {
    /// Key schedule, IV rule and layout, shared by every request (Common Encryption).
    pub prot: Option<TrackProtection>,
    /// AES-128 whole-segment state (envelope).
    pub envelope: Option<Envelope>,
    /// The protected init segment (`encv`/`enca` + `sinf`, `pssh` boxes).
    pub init: Bytes,
    /// Its key's ID.
    pub kid: Kid,
    /// Decode time (track timescale) before which fragments stay clear (clear lead).
    pub clear_until: u64,
    /// SAMPLE-AES over MPEG-TS (`cbcs` policies, H.264/AAC tracks): key and IV.
    pub sample_aes: Option<sealcast_package::ts::SampleAesParams>,
    /// Its `identity` key URI (the key delivery URL).
    pub sample_aes_uri: Option<String>,
    /// `#EXT-X-KEY` lines of the track's TS media playlist.
    pub ts_key_lines: Vec<String>,
    /// Everything besides the source that this track's encrypted bytes depend on — the
    /// protected init (KID, `pssh` with licence URLs, clear sample entry), the clear lead, and
    /// a check value of the key (AES of a zero block: public, reveals nothing of the key) —
    /// hashed, for ETags: a key re-bound to the same KID, a new clear lead or new licence URLs
    /// give new ETags, so caches never splice old and new bytes.
    pub fingerprint: String,
}

impl TrackCrypto {
    /// What an encrypted response of this track derives from, for its ETag: the `source`
    /// identity (files read), the KID and the fingerprint; never the key.
    pub fn identity(&self, source: &str) -> String {
        format!("{source}\n{}\n{}", self.kid.to_hex(), self.fingerprint)
    }
}

/// The ETag fingerprint of a protected track (see [`TrackCrypto::fingerprint`]).
fn fingerprint(init: &[u8], clear_until: u64, key: &[u8; 16], extra: &str) -> Result<String, String> {
    let mut kcv = [0u8; 16];
    AesCbc::new(key).map_err(|e| e.to_string())?.encrypt([0u8; 16], &mut kcv).map_err(|e| e.to_string())?;
    let mut h = Vec::with_capacity(init.len() + 64);
    h.extend_from_slice(init);
    h.extend_from_slice(&clear_until.to_be_bytes());
    h.extend_from_slice(&kcv);
    h.extend_from_slice(extra.as_bytes());
    Ok(format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&h)))
}

/// Everything one method needs for one asset.
pub struct SchemeCrypto {
    /// The method.
    pub method: Encryption,
    /// Per asset track, in asset order.
    pub tracks: Vec<TrackCrypto>,
    /// DASH signalling.
    pub dash: DashProtection,
    /// HLS signalling.
    pub hls: HlsProtection,
    /// Smooth `<Protection>` element (PlayReady Object of every key), `cenc` only.
    pub smooth: Option<String>,
    /// Cached manifests: MPD, HLS masters (fMP4, TS), Smooth, then per track its HLS media
    /// playlists (fMP4, TS).
    manifests: Vec<OnceLock<(Bytes, http::HeaderValue)>>,
}

impl SchemeCrypto {
    /// A cached manifest (see [`ManifestSlot`]), built on first use. The ETag hashes the
    /// asset identity, the slot and the body, so a new key or policy gives a new ETag.
    pub fn manifest(&self, loaded: &Loaded, kind: ManifestSlot, build: impl FnOnce(&Asset, &SchemeCrypto) -> String) -> (Bytes, http::HeaderValue) {
        let i = kind.index(self.tracks.len());
        self.manifests[i]
            .get_or_init(|| {
                let body = build(&loaded.asset, self);
                let tag = crate::respond::etag(&loaded.identity, &format!("{}/{i}\n{body}", self.method.path()));
                (Bytes::from(body), tag)
            })
            .clone()
    }
}

/// An asset's protection under one policy version.
pub struct AssetCrypto {
    /// The policy it was built from (compared by pointer: a reload makes a new `Arc`).
    pub policy: Arc<AssetPolicy>,
    methods: Vec<SchemeCrypto>,
}

impl AssetCrypto {
    /// Builds the protection of `loaded` for every method `policy` uses.
    pub fn build(loaded: &Loaded, policy: Arc<AssetPolicy>) -> Result<AssetCrypto, String> {
        let mut methods: Vec<SchemeCrypto> = Vec::new();
        for d in [policy.dash, policy.hls, policy.smooth].into_iter().flatten() {
            let Some(m) = Encryption::of(d) else { continue };
            if !methods.iter().any(|x| x.method == m) {
                methods.push(build_method(loaded, &policy, d, m)?);
            }
        }
        Ok(AssetCrypto { policy, methods })
    }

    /// The state of `method`, when the policy uses it.
    pub fn method(&self, method: Encryption) -> Option<&SchemeCrypto> {
        self.methods.iter().find(|m| m.method == method)
    }
}

fn desc(t: &AssetTrack) -> TrackDesc {
    let i = &t.track().info;
    match t.kind() {
        TrackKind::Video => TrackDesc::video(i.width as u32, i.height as u32).with_bitrate(t.bandwidth as u64),
        TrackKind::Audio => TrackDesc::audio().with_channels(i.channels as u32).with_bitrate(t.bandwidth as u64),
    }
}

/// The DRM system data for one set of keys: Widevine and W3C Common `pssh` boxes, the
/// PlayReady Object and its `pssh`.
struct Systems {
    widevine: PsshBox,
    common: PsshBox,
    pro: Vec<u8>,
    playready: PsshBox,
}

fn systems(scheme: Scheme, keys: &[&ContentKey], policy: &AssetPolicy, content_id: &str) -> Result<Systems, String> {
    let kids: Vec<Kid> = keys.iter().map(|k| k.kid()).collect();
    let err = |e: sealcast_drm::Error| e.to_string();
    // The content ID names the title for a Widevine licence service: the asset path (public).
    let widevine = WidevinePsshData { content_id: Some(content_id.as_bytes().to_vec()), ..WidevinePsshData::new(kids.clone(), scheme) }.to_pssh_box().map_err(err)?;
    let common = sealcast_drm::clearkey::common_pssh_box(&kids).map_err(err)?;
    let mut pr = PlayReadyHeader::new(scheme, keys.iter().copied()).map_err(err)?;
    if let Some(u) = &policy.license.playready {
        pr = pr.with_la_url(u).map_err(err)?;
    }
    let mut sys = Systems { widevine, common, pro: pr.to_pro().map_err(err)?, playready: pr.to_pssh_box().map_err(err)? };
    // A DRM vendor's own signalling from CPIX (its `pssh` carries what its licence server
    // expects: content IDs, provider, LA_URL) replaces ours, for a single key.
    if let (Some(doc), [kid]) = (policy.cpix.as_ref(), kids.as_slice()) {
        if let Some(p) = doc.signalling(*kid, SystemId::WIDEVINE).and_then(|s| s.pssh.clone()) {
            sys.widevine = p;
        }
        if let Some(p) = doc.signalling(*kid, SystemId::PLAYREADY).and_then(|s| s.pssh.clone()) {
            sys.pro = p.data.clone();
            sys.playready = p;
        }
    }
    Ok(sys)
}

/// The key delivery URL of `kid` (the policy's template, else our own key route).
pub fn key_uri(policy: &AssetPolicy, kid: Kid) -> String {
    policy.license.key_delivery.as_deref().unwrap_or("/key/{kid}").replace("{kid}", &kid.to_hex())
}

fn build_method(loaded: &Loaded, policy: &AssetPolicy, delivery: Delivery, method: Encryption) -> Result<SchemeCrypto, String> {
    match method.scheme() {
        Some(scheme) => build_scheme(loaded, policy, delivery, method, scheme),
        None => build_envelope(loaded, policy, delivery),
    }
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
fn iv_context(loaded: &Loaded, t: &AssetTrack) -> String {
    let ti = t.track();
    let mut h = Vec::with_capacity(ti.init.len() + ti.fragments.len() * 49);
    h.extend_from_slice(&ti.init);
    for f in &ti.fragments {
        for v in [f.decode_time, f.duration, f.pres_offset as u64, f.offset, f.size, f.media_bytes] {
            h.extend_from_slice(&v.to_be_bytes());
        }
        h.push(f.keyframe as u8);
    }
    let size = loaded.files.get(&t.file).map_or(0, |o| o.size);
    format!("{}\n{}\n{size}\n{:032x}", loaded.path, t.file, xxhash_rust::xxh3::xxh3_128(&h))
}

/// The keys of `delivery` and, per track, the index of the one that encrypts it: by the CPIX
/// document's usage rules when the keys came with some, else audio + quality groups.
fn assigned(asset: &Asset, policy: &AssetPolicy, delivery: Delivery) -> Result<(Vec<ContentKey>, Vec<usize>), String> {
    let descs: Vec<TrackDesc> = asset.tracks.iter().map(desc).collect();
    if let Some(doc) = policy.cpix.as_ref().filter(|d| !d.usage_rules.is_empty()) {
        let keys: Vec<ContentKey> = doc.keys.iter().map(|k| k.key.clone()).collect();
        let assignment = doc.assign_keys(&descs).map_err(|e| e.to_string())?;
        return Ok((keys, assignment));
    }
    let keys: Vec<ContentKey> = policy.keys_for(delivery).into_iter().cloned().collect();
    let assignment = sealcast_drm::assign_keys(&descs, &keys).map_err(|e| e.to_string())?;
    Ok((keys, assignment))
}

fn build_envelope(loaded: &Loaded, policy: &AssetPolicy, delivery: Delivery) -> Result<SchemeCrypto, String> {
    let asset = &loaded.asset;
    let (keys, assignment) = assigned(asset, policy, delivery)?;
    let mut tracks = Vec::with_capacity(asset.tracks.len());
    let mut hls = HlsProtection::default();
    for (t, &ki) in asset.tracks.iter().zip(&assignment) {
        let key = keys.get(ki).ok_or("key assignment out of range")?;
        let raw = key.aes128_bytes().map_err(|e| e.to_string())?;
        let cbc = AesCbc::new(raw).map_err(|e| e.to_string())?;
        let env = Envelope { cbc, key_uri: key_uri(policy, key.kid()), iv_context: iv_context(loaded, t), track_id: t.track().info.track_id };
        hls.tracks.push(HlsTrackSignal { key_lines: Vec::new(), path: Encryption::Aes128.path() });
        // The init segment stays clear: the key tags follow EXT-X-MAP.
        let fingerprint = fingerprint(&t.track().init, 0, raw, &env.key_uri)?;
        tracks.push(TrackCrypto { prot: None, envelope: Some(env), init: t.track().init.clone(), kid: key.kid(), clear_until: 0, sample_aes: None, sample_aes_uri: None, ts_key_lines: Vec::new(), fingerprint });
    }
    let slots = ManifestSlot::count(asset.tracks.len());
    Ok(SchemeCrypto { method: Encryption::Aes128, tracks, dash: DashProtection::default(), hls, smooth: None, manifests: (0..slots).map(|_| OnceLock::new()).collect() })
}

fn build_scheme(loaded: &Loaded, policy: &AssetPolicy, delivery: Delivery, method: Encryption, scheme: Scheme) -> Result<SchemeCrypto, String> {
    let asset = &loaded.asset;
    let (keys, assignment) = assigned(asset, policy, delivery)?;
    let ns = Namespaces::OnRoot;
    let mut tracks = Vec::with_capacity(asset.tracks.len());
    let mut dash = DashProtection { namespaces: sealcast_drm::dash::MPD_NAMESPACES.to_vec(), tracks: Vec::new() };
    let mut hls = HlsProtection::default();
    // Each distinct key's DRM system data, built once, in the order tracks first use them.
    let mut by_key: Vec<(&ContentKey, Systems)> = Vec::new();
    for (t, &ki) in asset.tracks.iter().zip(&assignment) {
        let key = keys.get(ki).ok_or("key assignment out of range")?;
        let kid = key.kid();
        let info = &t.track().info;
        let raw = key.aes128_bytes().map_err(|e| e.to_string())?;
        let context = iv_context(loaded, t);
        let format = sample_format(info);
        let prot = match scheme {
            Scheme::Cenc => TrackProtection::cenc(key, format, IvDeriver::derive(kid.as_bytes(), context.as_bytes(), info.track_id)),
            Scheme::Cbcs => TrackProtection::cbcs(key, format, iv::constant_iv(kid.as_bytes(), context.as_bytes(), info.track_id)),
        }
        .map_err(|e| format!("{}: {e}", t.name))?;
        if !by_key.iter().any(|(k, _)| k.kid() == kid) {
            by_key.push((key, systems(scheme, &[key], policy, &loaded.path)?));
        }
        let sys = &by_key.iter().find(|(k, _)| k.kid() == kid).ok_or("systems of a key just added")?.1;
        let pssh = vec![sys.widevine.clone(), sys.playready.clone(), sys.common.clone()];
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
        dash.tracks.push(TrackSignal { content_protection: cp, kid: kid.to_hex(), path: method.path() });

        let mut key_lines = Vec::new();
        if scheme == Scheme::Cbcs {
            if let Some(fp) = &policy.license.fairplay {
                key_lines.push(sealcast_drm::hls::fairplay(KeyTag::Key, &fp.replace("{kid}", &kid.to_hex())).map_err(|e| e.to_string())?);
            }
        }
        key_lines.push(sealcast_drm::hls::widevine(KeyTag::Key, scheme, &sys.widevine, kid, None));
        key_lines.push(sealcast_drm::hls::playready(KeyTag::Key, scheme, &sys.pro, None));
        hls.tracks.push(HlsTrackSignal { key_lines, path: method.path() });

        // SAMPLE-AES (Apple's MPEG-2 stream encryption) takes the track's cbcs key; H.264 and
        // AAC only. The IV is constant per track and stated in the playlist.
        let (mut sample_aes, mut sample_aes_uri, mut ts_key_lines) = (None, None, Vec::new());
        if scheme == Scheme::Cbcs && !matches!(info.config, sealcast_package::track::CodecConfig::Hevc(_)) {
            let iv = iv::constant_iv(kid.as_bytes(), format!("{context}\nsample-aes").as_bytes(), info.track_id);
            let uri = key_uri(policy, kid);
            ts_key_lines.push(format!(
                "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"{uri}\",IV=0x{},KEYFORMAT=\"identity\",KEYFORMATVERSIONS=\"1\"",
                iv.iter().map(|b| format!("{b:02x}")).collect::<String>()
            ));
            if let Some(fp) = &policy.license.fairplay {
                ts_key_lines.push(sealcast_drm::hls::fairplay(KeyTag::Key, &fp.replace("{kid}", &kid.to_hex())).map_err(|e| e.to_string())?);
            }
            sample_aes = Some(sealcast_package::ts::SampleAesParams { key: *raw, iv });
            sample_aes_uri = Some(uri);
        }
        let fingerprint = fingerprint(&init, clear_until, raw, &ts_key_lines.concat())?;
        tracks.push(TrackCrypto { prot: Some(prot), envelope: None, init: Bytes::from(init), kid, clear_until, sample_aes, sample_aes_uri, ts_key_lines, fingerprint });
    }
    // Session keys: one per distinct key, so players can fetch licences before playback.
    for (key, sys) in &by_key {
        let kid = key.kid();
        if scheme == Scheme::Cbcs {
            if let Some(fp) = &policy.license.fairplay {
                hls.session_keys.push(sealcast_drm::hls::fairplay(KeyTag::SessionKey, &fp.replace("{kid}", &kid.to_hex())).map_err(|e| e.to_string())?);
            }
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
            let used: Vec<&ContentKey> = by_key.iter().map(|(k, _)| *k).collect();
            let mut pr = PlayReadyHeader::new(scheme, used).map_err(|e| e.to_string())?;
            if let Some(u) = &policy.license.playready {
                pr = pr.with_la_url(u).map_err(|e| e.to_string())?;
            }
            Some(sealcast_drm::smooth::protection(&pr.to_pro().map_err(|e| e.to_string())?))
        }
        Scheme::Cbcs => None,
    };
    let slots = ManifestSlot::count(asset.tracks.len());
    Ok(SchemeCrypto { method, tracks, dash, hls, smooth, manifests: (0..slots).map(|_| OnceLock::new()).collect() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_equals_pad_then_cbc() {
        let key = [7u8; 16];
        let env = Envelope { cbc: AesCbc::new(&key).unwrap(), key_uri: String::new(), iv_context: String::new(), track_id: 1 };
        let iv = [9u8; 16];
        for n in [0usize, 1, 15, 16, 17, 100, 4096] {
            let data: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
            let got: Vec<u8> = env.encrypt(iv, data.clone()).unwrap().concat();
            // The obvious way: PKCS#7-pad, then one CBC pass (checked against RustCrypto in cenc).
            let mut want = data.clone();
            let pad = 16 - n % 16;
            want.resize(n + pad, pad as u8);
            AesCbc::new(&key).unwrap().encrypt(iv, &mut want).unwrap();
            assert_eq!(got, want, "length {n}");
        }
    }
}
