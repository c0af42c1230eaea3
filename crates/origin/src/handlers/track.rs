//! Per-track resources: HLS media playlists, init segments and media segments (CMAF or
//! MPEG-TS), clear or encrypted with the method decided.

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use http::header;
use sealcast_package::manifest::hls;
use sealcast_package::protection::Envelope;
use sealcast_package::{fmp4, protect, ts, AssetTrack, TrackKind};

use super::{content, protection, Ctx, Reply, HLS_TYPE};
use crate::assets::{Loaded, ManifestSlot};
use crate::body::{FileBody, FileSend, PiecesBody, SendFile};
use crate::decide::{track_allows, Served};
use crate::error::ApiError;
use crate::protection::Encryption;
use crate::respond::Wire;
use crate::route::Container;

/// The track named `name`, with its index.
fn find<'a>(loaded: &'a Loaded, name: &str) -> Result<(usize, &'a AssetTrack), ApiError> {
    loaded.asset.tracks.iter().enumerate().find(|(_, t)| t.name == name).ok_or_else(|| ApiError::NotFound(format!("track '{name}'")))
}

fn mime(t: &AssetTrack) -> &'static str {
    match t.kind() {
        TrackKind::Video => "video/mp4",
        TrackKind::Audio => "audio/mp4",
    }
}

/// HLS over MPEG-TS carries H.264 and AAC only ([`ts::carries`]): the TS playlist and segments
/// of any other track (HEVC) do not exist, clear or protected, so nothing of it is read.
fn ts_carries(track: &AssetTrack, container: Container) -> Result<(), ApiError> {
    if container == Container::Ts && !ts::carries(track) {
        return Err(ApiError::NotFound(format!("track '{}' is not offered over MPEG-TS (HEVC is HLS fMP4 only)", track.name)));
    }
    Ok(())
}

fn file_info<'a>(loaded: &'a Loaded, t: &AssetTrack) -> Result<&'a sealcast_storage::ObjectInfo, ApiError> {
    loaded.files.get(&t.file).ok_or_else(|| ApiError::NotFound(t.file.clone()))
}

/// An HLS media playlist.
pub fn playlist(ctx: &Ctx<'_>, loaded: &Loaded, name: &str, container: Container, served: Served) -> Result<Reply, ApiError> {
    let (ti, track) = find(loaded, name)?;
    ts_carries(track, container)?;
    let slot = match container {
        Container::Fmp4 => ManifestSlot::Media(ti),
        Container::Ts => ManifestSlot::MediaTs(ti),
    };
    TrackPlaylist { ti, name, container, slot, iframes: false }.answer(ctx, loaded, served)
}

/// One HLS playlist of a track — its media playlist or its I-frame playlist — clear, or with
/// the track's key lines (AES-128: a key line per entry, with that entry's IV).
struct TrackPlaylist<'a> {
    ti: usize,
    name: &'a str,
    container: Container,
    slot: ManifestSlot,
    iframes: bool,
}

impl TrackPlaylist<'_> {
    fn write(&self, track: &AssetTrack, key_lines: &[String], segment_key: Option<&dyn Fn(usize) -> String>) -> String {
        let flavor = match self.container {
            Container::Fmp4 => hls::FMP4,
            Container::Ts => hls::TS,
        };
        match self.iframes {
            false => hls::write_media_with(track, flavor, key_lines, segment_key),
            true => hls::write_iframes_with(track, flavor, key_lines, segment_key),
        }
    }

    /// What tells this playlist's AES-128 IVs apart from every other's under the key.
    fn iv_tag(&self) -> &'static str {
        match (self.iframes, self.container) {
            (false, Container::Fmp4) => hls::FMP4.segment_ext,
            (false, Container::Ts) => hls::TS.segment_ext,
            (true, c) => iframe_iv_tag(c),
        }
    }

    fn answer(&self, ctx: &Ctx<'_>, loaded: &Loaded, served: Served) -> Result<Reply, ApiError> {
        let ti = self.ti;
        let reply = |cached| Reply::Manifest { cached, content_type: HLS_TYPE, last_modified: loaded.last_modified_header.clone() };
        let Some((crypto, m)) = protection(loaded, served)? else {
            return Ok(carried(ctx, reply(loaded.manifest(self.slot, |a| self.write(&a.tracks[ti], &[], None))), None));
        };
        let sc = crypto.method(m).ok_or_else(|| not_offered(loaded, m))?;
        let tc = &sc.tracks[ti];
        track_allows(self.name, m, self.container == Container::Ts, tc.sample_aes.is_some())?;
        let body = sc.manifest(loaded, self.slot, |a, sc| {
            let t = &sc.tracks[ti];
            match (&t.envelope, self.container) {
                (Some(env), _) => {
                    let (kid, tag) = (t.kid, self.iv_tag());
                    let line = |i: usize| sealcast_drm::hls::aes128(&env.key_uri, Some(env.iv(kid, tag, i + 1))).unwrap_or_default();
                    self.write(&a.tracks[ti], &[], Some(&line))
                }
                (None, Container::Ts) => self.write(&a.tracks[ti], &t.ts_key_lines, None),
                (None, Container::Fmp4) => self.write(&a.tracks[ti], &sc.hls.tracks[ti].key_lines, None),
            }
        });
        let token = if crypto.policy.carry_token { crate::keys::query_token(ctx.query) } else { None };
        let uris: Vec<&str> = tc.envelope.as_ref().map(|e| e.key_uri.as_str()).into_iter().chain(tc.sample_aes_uri.as_deref()).collect();
        Ok(carried(ctx, reply(body), token.map(|t| (t, uris))))
    }
}

/// `reply`, or the viewer's own copy (`private, no-store`) whose segment and init URIs carry
/// the request's access credential and whose key URIs carry its key token, when either is to
/// be carried.
fn carried(ctx: &Ctx<'_>, reply: Reply, token: Option<(String, Vec<&str>)>) -> Reply {
    let Reply::Manifest { cached, content_type, .. } = &reply else { return reply };
    let body = &cached.body;
    if token.is_none() && ctx.carry.is_none() {
        return reply;
    }
    let mut text = match &ctx.carry {
        Some(c) => hls::carry_query_media(body, &c.0),
        None => String::from_utf8_lossy(body).into_owned(),
    };
    if let Some((t, uris)) = token {
        text = hls::carry_token_keys(text.as_bytes(), &uris, &t);
    }
    Reply::Private { body: text, content_type }
}

fn not_offered(loaded: &Loaded, m: Encryption) -> ApiError {
    ApiError::Forbidden(format!("the delivery policy of '{}' does not offer {} here", loaded.path, m.path()))
}

/// A CMAF init segment (protected: `encv`/`enca` + `sinf` and `pssh`; AES-128 keeps it clear).
pub fn init(loaded: &Loaded, name: &str, served: Served) -> Result<Reply, ApiError> {
    let (ti, track) = find(loaded, name)?;
    let info = file_info(loaded, track)?;
    let (parts, identity) = match protection(loaded, served)? {
        None => (vec![track.track().init.clone()], info.identity()),
        Some((crypto, m)) => {
            let tc = &crypto.method(m).ok_or_else(|| not_offered(loaded, m))?.tracks[ti];
            (vec![tc.init.clone()], tc.identity(&info.identity()))
        }
    };
    Ok(Reply::Media { parts, content_type: mime(track), identity, modified: info.last_modified })
}

/// Media segment `n` (from 1).
pub async fn segment(ctx: &Ctx<'_>, loaded: &Loaded, name: &str, n: usize, container: Container, served: Served) -> Result<Reply, ApiError> {
    let (ti, track) = find(loaded, name)?;
    ts_carries(track, container)?;
    if n > track.segments.len() {
        return Err(ApiError::NotFound(format!("segment {n} of track '{name}'")));
    }
    let info = file_info(loaded, track)?;
    let prot = protection(loaded, served)?;
    let tc = match &prot {
        Some((crypto, m)) => Some(&crypto.method(*m).ok_or_else(|| not_offered(loaded, *m))?.tracks[ti]),
        None => None,
    };
    let identity_of = |id: String| match tc {
        Some(tc) => tc.identity(&id),
        None => id,
    };
    if container == Container::Ts {
        let sample_aes = match tc {
            Some(tc) if tc.envelope.is_none() => {
                // Sample encryption over MPEG-TS is SAMPLE-AES, H.264 and AAC only.
                let Some(sa) = tc.sample_aes.clone() else {
                    return Err(ApiError::Forbidden(format!("SAMPLE-AES over MPEG-TS is defined for H.264 and AAC only, not track '{name}'")));
                };
                Some(sa)
            }
            _ => None,
        };
        let envelope = tc.and_then(|t| t.envelope.as_ref().map(|e| (e, e.iv(t.kid, "ts", n))));
        let Some((body, content_type, identity)) = ts_segment(ctx, loaded, ti, n, sample_aes, envelope, &identity_of).await? else {
            let identity = identity_of(ts_identity(loaded, ti, n));
            return Ok(ctx.unchanged(&identity, ts_type(track), info.last_modified).expect("ts_segment found the client's copy current"));
        };
        let (identity, modified) = (identity_of(identity), info.last_modified);
        return Ok(match body {
            TsBody::Whole(parts) => Reply::Media { parts, content_type, identity, modified },
            TsBody::Made(p) => Reply::Made { len: p.len() as u64, body: Body::new(PiecesBody::new(p)), send: None, content_type, identity, modified },
        });
    }
    let identity = identity_of(info.identity());
    if let Some(r) = ctx.unchanged(&identity, mime(track), info.last_modified) {
        return Ok(r);
    }
    // Clear, whole, large, over a socket that takes file ranges: the samples go from the file.
    let (start, end) = track.segment_range(n - 1).ok_or_else(|| ApiError::NotFound(format!("segment {n}")))?;
    if tc.is_none() && ctx.wire == Wire::Files && end - start >= ctx.st.send_files_min && !ctx.headers.contains_key(header::RANGE) {
        if let Some(send) = in_place(ctx, loaded, track, n - 1).await? {
            let send = Arc::new(send);
            let body = Body::new(FileBody::new(send.clone()));
            return Ok(Reply::Made { len: send.len, body, send: Some(SendFile(send)), content_type: mime(track), identity, modified: info.last_modified });
        }
    }
    let reads = track.segment_reads(n - 1).ok_or_else(|| ApiError::NotFound(format!("segment {n}")))?;
    let data = ctx.st.assets.read_segment_source(loaded, &track.file, start..end, &reads).await?;
    let frags = fmp4::read_segment(track, n - 1, &data, start).map_err(|e| content(loaded, &track.file, e))?;
    let parts = match tc {
        None => fmp4::write_segment(&frags, &data, start).map_err(|e| content(loaded, &track.file, e))?.parts,
        Some(tc) => match (&tc.envelope, &tc.prot) {
            (Some(env), _) => {
                let clear = fmp4::write_segment(&frags, &data, start).map_err(|e| content(loaded, &track.file, e))?.concat();
                aes128(ctx, loaded, env, env.iv(tc.kid, "m4s", n), clear).await?
            }
            (None, Some(p)) => {
                let idx = track.track().info.trex.default_sample_description_index;
                protect::write_segment_encrypted(&frags, data, start, p, tc.clear_until, idx).map_err(|e| content(loaded, &track.file, e))?.parts
            }
            (None, None) => return Err(ApiError::NotFound(format!("no route for '{}'", ctx.path))),
        },
    };
    Ok(Reply::Media { parts, content_type: mime(track), identity, modified: info.last_modified })
}

/// Clear media segment `seg` of `track` made from its `moof`s alone, its samples left in the
/// file to be sent from there ([`FileSend`]): `None` when its file cannot be sent that way
/// (not a local file stored clear, progressive input). Only the `moof`s are read.
async fn in_place(ctx: &Ctx<'_>, loaded: &Loaded, track: &AssetTrack, seg: usize) -> Result<Option<FileSend>, ApiError> {
    let Some(reads) = fmp4::head_reads(track, seg) else { return Ok(None) };
    let Some(file) = ctx.st.assets.open_source(loaded, &track.file).await? else { return Ok(None) };
    let mut heads = Vec::with_capacity(reads.len());
    for r in reads {
        let mut head = file.read(r.clone()).await?;
        // A `moof` longer than the first read: read it whole (a short one is refused below).
        if let Some(moof) = fmp4::moof_len(&head).filter(|&m| m > head.len() as u64 && r.start.saturating_add(m) <= file.size()) {
            head = file.read(r.start..r.start + moof).await?;
        }
        heads.push(head);
    }
    let frags = fmp4::read_segment_heads(track, seg, &heads).map_err(|e| content(loaded, &track.file, e))?;
    let parts = fmp4::write_segment_in_place(&frags).map_err(|e| content(loaded, &track.file, e))?;
    if parts.iter().any(|p| matches!(p, fmp4::FilePart::Source(r) if r.end > file.size())) {
        return Err(content(loaded, &track.file, sealcast_package::Error::Read("samples past the end of the file".into())));
    }
    Ok(Some(FileSend::new(file, parts)))
}

/// The identity of TS segment `n` of track `ti`: its file's and, when audio is muxed in, the
/// audio file's (every file read).
fn ts_identity(loaded: &Loaded, ti: usize, n: usize) -> String {
    let asset = &loaded.asset;
    let mut identity = loaded.files.get(&asset.tracks[ti].file).map(|i| i.identity()).unwrap_or_default();
    if let Some(ap) = ts::plan_segment(asset, ti, n).and_then(|p| p.audio) {
        if let Some(ainfo) = loaded.files.get(&asset.tracks[ap.track].file) {
            identity.push('\n');
            identity.push_str(&ainfo.identity());
        }
    }
    identity
}

fn ts_type(t: &AssetTrack) -> &'static str {
    if t.kind() == TrackKind::Video {
        "video/mp2t"
    } else {
        "audio/mp2t"
    }
}

/// A TS segment's body: built whole, or made as it is sent (clear, and no `Range` asked for).
enum TsBody {
    Whole(Vec<Bytes>),
    Made(ts::TsPieces),
}

/// TS segment `n` of track `ti`: planned (which byte ranges of which tracks), read (both
/// ranges at once), built, then AES-128-encrypted together with the segments of other
/// requests ([`crate::cbc_batch`]) when `envelope` (key and IV) is given. A video segment
/// carries the asset's default audio. Returns the body's parts, type and the identity the ETag derives from (every file read); `None`, before any
/// read, when the client's copy is current (`protected` maps the source identity to the
/// response's, see [`Ctx::unchanged`]).
async fn ts_segment(
    ctx: &Ctx<'_>,
    loaded: &Loaded,
    ti: usize,
    n: usize,
    sample_aes: Option<ts::SampleAesParams>,
    envelope: Option<(&Envelope, [u8; 16])>,
    protected: &(dyn Fn(String) -> String + Sync),
) -> Result<Option<(TsBody, &'static str, String)>, ApiError> {
    let asset = &loaded.asset;
    let track = &asset.tracks[ti];
    let plan = ts::plan_segment(asset, ti, n).ok_or_else(|| ApiError::NotFound(format!("segment {n}")))?;
    let identity = ts_identity(loaded, ti, n);
    let modified = loaded.files.get(&track.file).map_or(std::time::UNIX_EPOCH, |i| i.last_modified);
    if ctx.unchanged(&protected(identity.clone()), ts_type(track), modified).is_some() {
        return Ok(None);
    }
    let assets = &ctx.st.assets;
    let main = assets.read_segment_source(loaded, &track.file, plan.bytes.clone(), &plan.reads);
    let (main, audio) = match &plan.audio {
        Some(ap) => {
            let a = &asset.tracks[ap.track];
            let (m, au) = tokio::join!(main, assets.read_segment_source(loaded, &a.file, ap.bytes.clone(), &ap.reads));
            (m?, Some(au?))
        }
        None => (main.await?, None),
    };
    // Clear and whole: made as it is sent, a piece at a time (ts::TS_PIECE). A range is cut
    // from the segment built whole.
    if sample_aes.is_none() && envelope.is_none() && !ctx.headers.contains_key(http::header::RANGE) {
        let pieces = ts::build_pieces(asset, &plan, main, audio).map_err(|(file, e)| content(loaded, &file, e))?;
        return Ok(Some((TsBody::Made(pieces), ts_type(track), identity)));
    }
    let body = ts::build_segment(asset, &plan, &main, audio.as_ref(), sample_aes).map_err(|(file, e)| content(loaded, &file, e))?;
    let parts = match envelope {
        Some((env, iv)) => aes128(ctx, loaded, env, iv, body).await?,
        None => vec![Bytes::from(body)],
    };
    Ok(Some((TsBody::Whole(parts), ts_type(track), identity)))
}

/// A clear segment under HLS AES-128 (the whole segment one CBC chain from `iv`), encrypted
/// together with the segments of other requests ([`crate::cbc_batch`]): the whole blocks,
/// then the padded last one.
async fn aes128(ctx: &Ctx<'_>, loaded: &Loaded, env: &Envelope, iv: [u8; 16], clear: Vec<u8>) -> Result<Vec<Bytes>, ApiError> {
    ctx.st.cbc.encrypt(env.key().clone(), iv, clear).await.map_err(|e| ApiError::Content { asset: loaded.path.clone(), detail: format!("AES-128: {e}") })
}

/// The track named `name` if it is a video track whose I-frames `container` carries.
fn iframe_track<'a>(loaded: &'a Loaded, name: &str, container: Container) -> Result<(usize, &'a AssetTrack), ApiError> {
    let (ti, track) = find(loaded, name)?;
    if track.kind() != TrackKind::Video {
        return Err(ApiError::NotFound(format!("track '{name}' is not video: no I-frame playlist")));
    }
    ts_carries(track, container)?;
    Ok((ti, track))
}

/// The IV format tag of AES-128 I-frame segments: not the media segments' (`m4s`, `ts`), so no
/// IV is shared by an I-frame segment and the media segment it is cut from.
fn iframe_iv_tag(container: Container) -> &'static str {
    match container {
        Container::Fmp4 => "i-m4s",
        Container::Ts => "i-ts",
    }
}

/// An HLS I-frame playlist (RFC 8216 4.3.3.6) of a video track, clear or with the track's key
/// lines (AES-128: one IV per I-frame segment).
pub fn iframe_playlist(ctx: &Ctx<'_>, loaded: &Loaded, name: &str, container: Container, served: Served) -> Result<Reply, ApiError> {
    let (ti, _) = iframe_track(loaded, name, container)?;
    let slot = match container {
        Container::Fmp4 => ManifestSlot::IFrames(ti),
        Container::Ts => ManifestSlot::IFramesTs(ti),
    };
    TrackPlaylist { ti, name, container, slot, iframes: true }.answer(ctx, loaded, served)
}

/// The I-frame segment of segment `n` (from 1): the key frame that starts it, alone — one
/// ranged read of the segment's first fragment, written (and encrypted) like a media segment
/// of one sample; TS without audio.
pub async fn iframe_segment(ctx: &Ctx<'_>, loaded: &Loaded, name: &str, n: usize, container: Container, served: Served) -> Result<Reply, ApiError> {
    let (ti, track) = iframe_track(loaded, name, container)?;
    let (start, end) = n.checked_sub(1).and_then(|s| fmp4::iframe_range(track, s)).ok_or_else(|| ApiError::NotFound(format!("I-frame {n} of track '{name}'")))?;
    let info = file_info(loaded, track)?;
    let prot = protection(loaded, served)?;
    let tc = match &prot {
        Some((crypto, m)) => Some(&crypto.method(*m).ok_or_else(|| not_offered(loaded, *m))?.tracks[ti]),
        None => None,
    };
    let source = format!("{}\niframe", info.identity());
    let identity = match tc {
        Some(tc) => tc.identity(&source),
        None => source,
    };
    let content_type = if container == Container::Ts { ts_type(track) } else { mime(track) };
    if let Some(r) = ctx.unchanged(&identity, content_type, info.last_modified) {
        return Ok(r);
    }
    let sample_aes = match (tc, container) {
        (Some(tc), Container::Ts) if tc.envelope.is_none() => {
            Some(tc.sample_aes.clone().ok_or_else(|| ApiError::Forbidden(format!("SAMPLE-AES over MPEG-TS is defined for H.264 and AAC only, not track '{name}'")))?)
        }
        _ => None,
    };
    let data = ctx.st.assets.read_source(loaded, &track.file, start..end).await?;
    let envelope = tc.and_then(|t| t.envelope.as_ref().map(|e| (t, e)));
    let parts = match container {
        Container::Ts => {
            let body = ts::build_iframe(&loaded.asset, ti, n, &data, start, sample_aes).map_err(|(file, e)| content(loaded, &file, e))?;
            match envelope {
                Some((tc, env)) => aes128(ctx, loaded, env, env.iv(tc.kid, iframe_iv_tag(container), n), body).await?,
                None => vec![Bytes::from(body)],
            }
        }
        Container::Fmp4 => {
            let frags = fmp4::read_iframe(track, n - 1, &data, start).map_err(|e| content(loaded, &track.file, e))?;
            match (tc, envelope) {
                (None, _) => fmp4::write_segment(&frags, &data, start).map_err(|e| content(loaded, &track.file, e))?.parts,
                (Some(_), Some((tc, env))) => {
                    let clear = fmp4::write_segment(&frags, &data, start).map_err(|e| content(loaded, &track.file, e))?.concat();
                    aes128(ctx, loaded, env, env.iv(tc.kid, iframe_iv_tag(container), n), clear).await?
                }
                (Some(tc), None) => {
                    let p = tc.prot.as_ref().ok_or_else(|| ApiError::NotFound(format!("no route for '{}'", ctx.path)))?;
                    let idx = track.track().info.trex.default_sample_description_index;
                    protect::write_segment_encrypted(&frags, data, start, p, tc.clear_until, idx).map_err(|e| content(loaded, &track.file, e))?.parts
                }
            }
        }
    };
    Ok(Reply::Media { parts, content_type, identity, modified: info.last_modified })
}
