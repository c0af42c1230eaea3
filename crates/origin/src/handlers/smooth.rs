//! Smooth Streaming fragments (`moof` with `tfxd` + `mdat`), clear or PIFF-encrypted.

use sealcast_package::{fmp4, smooth, TrackKind};

use super::{content, protection, Ctx, Reply};
use crate::assets::Loaded;
use crate::decide::Served;
use crate::error::ApiError;

/// The chunk at `time` of the quality level `bitrate` of `stream`.
pub async fn fragment(ctx: &Ctx<'_>, loaded: &Loaded, stream: &str, bitrate: u32, time: u64, served: Served) -> Result<Reply, ApiError> {
    let (track, seg) = smooth::find_fragment(&loaded.asset, stream, bitrate, time).ok_or_else(|| ApiError::NotFound(format!("fragment {stream}={time} at {bitrate}")))?;
    let prot = protection(loaded, served)?;
    let info = loaded.files.get(&track.file).ok_or_else(|| ApiError::NotFound(track.file.clone()))?;
    let content_type = if track.kind() == TrackKind::Video { "video/mp4" } else { "audio/mp4" };
    let tc = match &prot {
        Some((crypto, m)) => crypto.method(*m).and_then(|sc| sc.tracks.get(loaded.asset.tracks.iter().position(|t| std::ptr::eq(t, track))?)),
        None => None,
    };
    let identity = match (&prot, tc) {
        (None, _) => info.identity(),
        (Some(_), Some(tc)) => tc.identity(&info.identity()),
        (Some(_), None) => return Err(ApiError::Content { asset: loaded.path.clone(), detail: "no protection for this track".into() }),
    };
    if let Some(r) = ctx.unchanged(&identity, content_type, info.last_modified) {
        return Ok(r);
    }
    let (start, end) = track.segment_range(seg).ok_or_else(|| ApiError::NotFound(format!("fragment {stream}={time}")))?;
    let reads = track.segment_reads(seg).ok_or_else(|| ApiError::NotFound(format!("fragment {stream}={time}")))?;
    let data = ctx.st.assets.read_segment_source(loaded, &track.file, start..end, &reads).await?;
    let frags = fmp4::read_segment(track, seg, &data, start).map_err(|e| content(loaded, &track.file, e))?;
    let delay = smooth::delay(&loaded.asset, track);
    let body = match tc.and_then(|t| t.prot.as_ref()) {
        None => smooth::write_fragment(&frags, &data, start, track, delay).map_err(|e| content(loaded, &track.file, e))?,
        Some(p) => smooth::write_fragment_encrypted(&frags, data, start, track, delay, p).map_err(|e| content(loaded, &track.file, e))?,
    };
    Ok(Reply::Media { parts: body.parts, content_type, identity, modified: info.last_modified })
}
