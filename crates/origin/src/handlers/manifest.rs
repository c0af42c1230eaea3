//! Asset-level manifests: DASH MPD, HLS multivariant playlists (fMP4, TS), Smooth client
//! manifest, clear or with the protection signalling of the method decided.

use sealcast_package::manifest::hls::{self, HlsProtection};
use sealcast_package::{manifest as mf, smooth, ts, Asset};

use super::{protection, Ctx, Reply, DASH_TYPE, HLS_TYPE, SMOOTH_TYPE};
use crate::assets::{Loaded, ManifestSlot};
use crate::decide::Served;
use crate::error::ApiError;
use crate::protection::Encryption;
use crate::route::{Container, ManifestKind};

fn slot_and_type(kind: ManifestKind) -> (ManifestSlot, &'static str) {
    match kind {
        ManifestKind::Mpd => (ManifestSlot::Mpd, DASH_TYPE),
        ManifestKind::Master(Container::Fmp4) => (ManifestSlot::Master, HLS_TYPE),
        ManifestKind::Master(Container::Ts) => (ManifestSlot::MasterTs, HLS_TYPE),
        ManifestKind::Smooth => (ManifestSlot::Smooth, SMOOTH_TYPE),
    }
}

/// Serves manifest `kind` of `loaded` from the asset's manifest cache.
pub fn manifest(ctx: &Ctx<'_>, loaded: &Loaded, kind: ManifestKind, served: Served) -> Result<Reply, ApiError> {
    let (slot, content_type) = slot_and_type(kind);
    let reply = |cached| Reply::Manifest { cached, content_type, last_modified: loaded.last_modified_header.clone() };
    // TS playlists list only what TS carries (H.264, AAC); an asset with nothing of that has
    // no TS presentation at all.
    if kind == ManifestKind::Master(Container::Ts) && !loaded.asset.tracks.iter().any(ts::carries) {
        return Err(ApiError::NotFound(format!("no rendition of '{}' can be carried over MPEG-TS", loaded.path)));
    }
    let Some((crypto, m)) = protection(loaded, served)? else {
        let build: fn(&Asset) -> String = match kind {
            ManifestKind::Mpd => mf::dash::write_mpd,
            ManifestKind::Master(Container::Fmp4) => |a| hls::write_master(a, hls::FMP4),
            ManifestKind::Master(Container::Ts) => |a| hls::write_master(a, hls::TS),
            ManifestKind::Smooth => smooth::write_manifest,
        };
        return Ok(carried(ctx, kind, reply(loaded.manifest(slot, build)), None));
    };
    let sc = crypto.method(m).ok_or_else(|| ApiError::Forbidden(format!("this protocol with {} is not offered", m.path())))?;
    if kind == ManifestKind::Master(Container::Ts) && m == Encryption::Cbcs && sc.tracks.iter().zip(&loaded.asset.tracks).any(|(t, a)| ts::carries(a) && t.sample_aes.is_none()) {
        return Err(ApiError::Forbidden("SAMPLE-AES over MPEG-TS is defined for H.264 and AAC only".into()));
    }
    let body = sc.manifest(loaded, slot, |a, sc| match kind {
        ManifestKind::Mpd => mf::dash::write_mpd_with(a, Some(&sc.dash)),
        ManifestKind::Master(Container::Fmp4) => hls::write_master_with(a, hls::FMP4, Some(&sc.hls)),
        // Session keys describe the fMP4 (cbcs) keys; TS media playlists carry their own.
        ManifestKind::Master(Container::Ts) => hls::write_master_with(a, hls::TS, Some(&HlsProtection { session_keys: Vec::new(), tracks: sc.hls.tracks.clone() })),
        ManifestKind::Smooth => smooth::write_manifest_with(a, sc.smooth.as_deref()),
    });
    // The viewer's key token goes on to the media playlists (which put it on their key URIs),
    // never to segments; the playlist is then the viewer's own.
    let token = if crypto.policy.carry_token { crate::keys::query_token(ctx.query) } else { None };
    Ok(carried(ctx, kind, reply(body), token))
}

/// `reply`, or, when the request's access credential or key token is to be carried into the
/// URLs the manifest lists, the viewer's own copy with them (`private, no-store`). DASH MPDs
/// carry the access credential on their segment templates; Smooth manifests carry nothing.
fn carried(ctx: &Ctx<'_>, kind: ManifestKind, reply: Reply, token: Option<String>) -> Reply {
    let Reply::Manifest { cached, content_type, .. } = &reply else { return reply };
    let body = &cached.body;
    let token = token.filter(|_| matches!(kind, ManifestKind::Master(_)));
    let access = ctx.carry.as_ref().filter(|_| kind != ManifestKind::Smooth);
    if token.is_none() && access.is_none() {
        return reply;
    }
    let mut text = String::from_utf8_lossy(body).into_owned();
    if let Some(c) = access {
        text = match kind {
            ManifestKind::Mpd => mf::dash::carry_query_mpd(&text, &c.0),
            _ => hls::carry_query_master(text.as_bytes(), &c.0),
        };
    }
    if let Some(t) = token {
        text = hls::carry_token_master(text.as_bytes(), &t);
    }
    Reply::Private { body: text, content_type }
}
