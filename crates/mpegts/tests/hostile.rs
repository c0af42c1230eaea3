//! Hostile and malformed input: errors with context, never a panic, nothing written.

mod common;

use bytes::Bytes;
use common::*;
use proptest::prelude::*;
use sealcast_mpegts::{
    count_packets, mux_segment, AudioConfigError, Codec, ContinuityState, Error, MuxParams, Sample,
    Stream,
};

fn params() -> MuxParams {
    MuxParams {
        pts_offset_90k: 900_000,
        continuity: ContinuityState {
            pat: 1,
            pmt: 2,
            video: 3,
            audio: 4,
        },
        align_continuity: false,
        sample_aes: None,
    }
}

/// Muxes, checking that a failure leaves `out` and `params` untouched and that
/// count_packets agrees with mux_segment on success and failure alike.
fn mux(streams: &[Stream<'_>]) -> Result<Vec<u8>, Error> {
    let mut p = params();
    let mut out = vec![0xAB; 3];
    let counted = count_packets(streams, &p);
    match mux_segment(streams, &mut p, &mut out) {
        Ok(()) => {
            let counts = counted.expect("count agrees with mux");
            assert_eq!((out.len() - 3) as u64, counts.bytes());
            let mut cc = params().continuity;
            cc.advance(&counts);
            assert_eq!(p.continuity, cc);
            assert!(out[3..].chunks(188).all(|c| c.len() == 188 && c[0] == 0x47));
            Ok(out.split_off(3))
        }
        Err(e) => {
            assert_eq!(counted, Err(e.clone()), "count agrees with mux");
            assert_eq!(out, vec![0xAB; 3], "nothing written on error");
            assert_eq!(p, params(), "params untouched on error");
            Err(e)
        }
    }
}

fn video_err(nal_length_size: u8, data: &[u8]) -> Error {
    let codec = Codec::H264 {
        sps: vec![Bytes::from_static(SPS)],
        pps: vec![],
        nal_length_size,
    };
    let s = [Sample {
        dts: 0,
        pts: 0,
        keyframe: true,
        data,
    }];
    mux(&[stream(&codec, 90_000, &s)]).unwrap_err()
}

#[test]
fn nal_framing() {
    assert_eq!(
        video_err(4, &[0, 0, 0, 3, 0x65, 0x88]),
        Error::NalOverrun {
            stream: 0,
            sample: 0,
            offset: 0,
            declared: 3,
            available: 2
        }
    );
    assert_eq!(
        video_err(4, &[0xFF, 0xFF, 0xFF, 0xFF, 0x65]),
        Error::NalOverrun {
            stream: 0,
            sample: 0,
            offset: 0,
            declared: 0xFFFF_FFFF,
            available: 1
        }
    );
    assert_eq!(
        video_err(4, &[0, 0, 0, 1, 0x65, 0, 0]),
        Error::TruncatedNalLength {
            stream: 0,
            sample: 0,
            offset: 5
        }
    );
    assert_eq!(
        video_err(2, &[0]),
        Error::TruncatedNalLength {
            stream: 0,
            sample: 0,
            offset: 0
        }
    );
    assert_eq!(
        video_err(4, &[]),
        Error::EmptySample {
            stream: 0,
            sample: 0
        }
    );
    assert_eq!(
        video_err(0, &[1, 0x65]),
        Error::BadNalLengthSize { stream: 0, size: 0 }
    );
    assert_eq!(
        video_err(5, &[1, 0x65]),
        Error::BadNalLengthSize { stream: 0, size: 5 }
    );
    // Error context names the failing sample of the failing stream.
    let codec = h264_codec();
    let acodec = aac_codec();
    let good = [0, 0, 0, 1, 0x41];
    let s = [
        Sample {
            dts: 0,
            pts: 0,
            keyframe: true,
            data: &good,
        },
        Sample {
            dts: 3000,
            pts: 3000,
            keyframe: false,
            data: &[0, 0, 9, 0],
        },
    ];
    let a = [Sample {
        dts: 0,
        pts: 0,
        keyframe: true,
        data: &[1, 2, 3],
    }];
    assert_eq!(
        mux(&[stream(&acodec, 48_000, &a), stream(&codec, 90_000, &s)]).unwrap_err(),
        Error::NalOverrun {
            stream: 1,
            sample: 1,
            offset: 0,
            declared: 0x900,
            available: 0
        }
    );
}

#[test]
fn audio_input() {
    let codec = aac_codec();
    let big = vec![0u8; 8185];
    let max = vec![0u8; 8184];
    let a = [
        Sample {
            dts: 0,
            pts: 0,
            keyframe: true,
            data: &max,
        },
        Sample {
            dts: 1024,
            pts: 1024,
            keyframe: true,
            data: &big,
        },
    ];
    assert_eq!(
        mux(&[stream(&codec, 48_000, &a)]).unwrap_err(),
        Error::AacFrameTooLarge {
            stream: 0,
            sample: 1,
            len: 8185
        }
    );
    let a = [Sample {
        dts: 0,
        pts: 0,
        keyframe: true,
        data: &[],
    }];
    assert_eq!(
        mux(&[stream(&codec, 48_000, &a)]).unwrap_err(),
        Error::EmptySample {
            stream: 0,
            sample: 0
        }
    );
    let bad = Codec::Aac {
        audio_specific_config: Bytes::from_static(&[0x12]),
    };
    assert_eq!(
        mux(&[stream(&bad, 48_000, &[])]).unwrap_err(),
        Error::AudioConfig {
            stream: 0,
            reason: AudioConfigError::Truncated
        }
    );
    // Eight maximum-size frames in 60 ms still fit a bounded PES by splitting.
    let frames: Vec<Sample<'_>> = (0..8)
        .map(|i| Sample {
            dts: i,
            pts: i,
            keyframe: true,
            data: &max,
        })
        .collect();
    mux(&[stream(&codec, 48_000, &frames)]).unwrap();
}

#[test]
fn stream_layout_and_times() {
    let (v, a) = (h264_codec(), aac_codec());
    assert_eq!(mux(&[]).unwrap_err(), Error::NoStreams);
    assert_eq!(
        mux(&[stream(&v, 90_000, &[]), stream(&v, 90_000, &[])]).unwrap_err(),
        Error::DuplicateStream {
            stream: 1,
            kind: "video"
        }
    );
    assert_eq!(
        mux(&[stream(&a, 48_000, &[]), stream(&a, 48_000, &[])]).unwrap_err(),
        Error::DuplicateStream {
            stream: 1,
            kind: "audio"
        }
    );
    assert_eq!(
        mux(&[stream(&v, 0, &[])]).unwrap_err(),
        Error::ZeroTimescale { stream: 0 }
    );
    // 10 s offset: -10 s is fine, anything earlier is not.
    let data = [0, 0, 0, 1, 0x65];
    let ok = [Sample {
        dts: -900_000,
        pts: -900_000,
        keyframe: true,
        data: &data,
    }];
    mux(&[stream(&v, 90_000, &ok)]).unwrap();
    let early = [Sample {
        dts: -900_001,
        pts: 0,
        keyframe: true,
        data: &data,
    }];
    assert_eq!(
        mux(&[stream(&v, 90_000, &early)]).unwrap_err(),
        Error::BadTimestamp {
            stream: 0,
            sample: 0,
            value: -900_001
        }
    );
    let huge = [Sample {
        dts: 0,
        pts: i64::MAX,
        keyframe: true,
        data: &data,
    }];
    assert_eq!(
        mux(&[stream(&v, 1, &huge)]).unwrap_err(),
        Error::BadTimestamp {
            stream: 0,
            sample: 0,
            value: i64::MAX
        }
    );
    // Empty streams still make a valid PAT + PMT segment.
    assert_eq!(
        mux(&[stream(&v, 90_000, &[]), stream(&a, 48_000, &[])])
            .unwrap()
            .len(),
        2 * 188
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_video_samples_never_panic(
        size in 1u8..=4,
        hevc in any::<bool>(),
        samples in prop::collection::vec(
            (any::<bool>(), -5_000i64..5_000, 0i64..5_000, prop::collection::vec(any::<u8>(), 0..600)),
            0..8,
        ),
        timescale in 1u32..200_000,
    ) {
        let codec = if hevc {
            Codec::Hevc { vps: vec![Bytes::from_static(&[0x40, 1])], sps: vec![], pps: vec![Bytes::new()], nal_length_size: size }
        } else {
            Codec::H264 { sps: vec![Bytes::from_static(SPS)], pps: vec![Bytes::from_static(PPS)], nal_length_size: size }
        };
        let mut dts = 0;
        let s: Vec<Sample<'_>> = samples
            .iter()
            .map(|(key, step, cto, data)| {
                dts += step;
                Sample { dts, pts: dts + cto, keyframe: *key, data }
            })
            .collect();
        let _ = mux(&[stream(&codec, timescale, &s)]);
    }

    #[test]
    fn random_length_prefixed_nals_roundtrip_sizes(
        nals in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..400), 1..6),
        key in any::<bool>(),
    ) {
        // Well-formed framing with random NAL contents always muxes.
        let mut data = Vec::new();
        for n in &nals {
            data.extend_from_slice(&(n.len() as u32).to_be_bytes());
            data.extend_from_slice(n);
        }
        let codec = h264_codec();
        let s = [Sample { dts: 0, pts: 0, keyframe: key, data: &data }];
        prop_assert!(mux(&[stream(&codec, 90_000, &s)]).is_ok());
    }

    #[test]
    fn random_audio_never_panics(
        asc in prop::collection::vec(any::<u8>(), 0..6),
        frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..50), 0..20),
        step in 0i64..3000,
    ) {
        let codec = Codec::Aac { audio_specific_config: Bytes::from(asc) };
        let s: Vec<Sample<'_>> = frames
            .iter()
            .enumerate()
            .map(|(i, f)| Sample { dts: i as i64 * step, pts: i as i64 * step, keyframe: true, data: f })
            .collect();
        let _ = mux(&[stream(&codec, 48_000, &s)]);
    }
}

/// Found by `random_video_samples_never_panic`: an empty configuration parameter set was
/// counted (start code) but never written, so a keyframe's PES came out shorter than planned.
#[test]
fn empty_parameter_set_is_neither_counted_nor_written() {
    let codec = Codec::Hevc { vps: vec![Bytes::from_static(&[0x40, 1])], sps: vec![], pps: vec![Bytes::new()], nal_length_size: 1 };
    let mut data = vec![3u8, 0x26, 0x01, 0xaf];
    data.extend_from_slice(&[2, 0x02, 0x01]);
    let s = [Sample { dts: 0, pts: 0, keyframe: true, data: &data }];
    let out = mux(&[stream(&codec, 90_000, &s)]).expect("muxes");
    assert_eq!(out.len() % 188, 0);
}
