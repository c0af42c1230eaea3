//! What an independent demuxer (the `mpeg2ts` crate) must read in every segment we mux.
//! Used by the replay of the `ts_mux` fuzz target (`tests/fuzz_replay.rs`) and, through a
//! `#[path]` module, by the target itself (`fuzz/fuzz_targets/ts_mux.rs`).

use mpeg2ts::pes::{PesPacketReader, ReadPesPacket};
use mpeg2ts::ts::{ReadTsPacket, TsPacketReader, TsPayload};

/// PES stream_id of the video stream.
const VIDEO_STREAM_ID: u8 = 0xE0;

/// Reads every TS packet and then every PES packet of `ts` with `mpeg2ts`, and panics on
/// anything it rejects, on a segment without a PAT and a PMT, or when the number of video
/// PES packets is not `video_samples` (the muxer writes one PES per video sample).
pub fn read_back(ts: &[u8], video_samples: usize) {
    let mut reader = TsPacketReader::new(ts);
    let (mut packets, mut pat, mut pmt) = (0usize, false, false);
    while let Some(p) = reader
        .read_ts_packet()
        .unwrap_or_else(|e| panic!("mpeg2ts rejects TS packet {packets}: {e:?}"))
    {
        match p.payload {
            Some(TsPayload::Pat(_)) => pat = true,
            Some(TsPayload::Pmt(_)) => pmt = true,
            _ => {}
        }
        packets += 1;
    }
    assert_eq!(
        packets * 188,
        ts.len(),
        "mpeg2ts read {packets} packets of {} bytes",
        ts.len()
    );
    assert!(pat && pmt, "segment without PAT or PMT");
    let mut pes = PesPacketReader::new(TsPacketReader::new(ts));
    let mut video = 0;
    while let Some(p) = pes
        .read_pes_packet()
        .unwrap_or_else(|e| panic!("mpeg2ts rejects a PES packet: {e:?}"))
    {
        if p.header.stream_id.as_u8() == VIDEO_STREAM_ID {
            video += 1;
        }
    }
    assert_eq!(video, video_samples, "video PES packets");
}
