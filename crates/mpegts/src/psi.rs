//! Program association and program map tables (ISO/IEC 13818-1 2.4.4).

use crate::packet::write_psi_packet;
use crate::{Error, PAT_PID, PMT_PID};

/// Program number of the one program we carry.
const PROGRAM_NUMBER: u16 = 1;
/// transport_stream_id in the PAT.
const TRANSPORT_STREAM_ID: u16 = 1;
/// reserved '11', version_number 0, current_next_indicator 1.
const VERSION_CURRENT: u8 = 0xC1;

/// One elementary stream as listed in the PMT.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PmtEntry<'a> {
    pub stream_type: u8,
    pub pid: u16,
    /// ES_info descriptors, already serialised (empty for clear streams).
    pub descriptors: &'a [u8],
}

/// Writes the PAT packet: one program, number 1, on [`PMT_PID`].
pub(crate) fn write_pat(out: &mut Vec<u8>, cc: u8) -> Result<(), Error> {
    write_psi_packet(out, PAT_PID, cc, |s| {
        // section_length: 5 bytes of header after it + 4 per program + 4 CRC.
        let section_length: u16 = 5 + 4 + 4;
        s.extend_from_slice(&[
            0x00,                               // table_id: program_association_section
            0xB0 | (section_length >> 8) as u8, // section_syntax_indicator, '0', reserved '11'
            section_length as u8,
            (TRANSPORT_STREAM_ID >> 8) as u8,
            TRANSPORT_STREAM_ID as u8,
            VERSION_CURRENT,
            0x00, // section_number
            0x00, // last_section_number
            (PROGRAM_NUMBER >> 8) as u8,
            PROGRAM_NUMBER as u8,
            0xE0 | (PMT_PID >> 8) as u8, // reserved '111', program_map_PID
            PMT_PID as u8,
        ]);
    })
}

/// Writes the PMT packet for `entries`, with the PCR on `pcr_pid`.
pub(crate) fn write_pmt(
    out: &mut Vec<u8>,
    cc: u8,
    pcr_pid: u16,
    entries: &[PmtEntry<'_>],
) -> Result<(), Error> {
    // Everything after section_length: 9 bytes of fixed fields, the entries, the CRC.
    let body: usize = 9
        + entries
            .iter()
            .map(|e| 5 + e.descriptors.len())
            .sum::<usize>()
        + 4;
    // One packet holds 183 bytes of section after the pointer_field; 3 precede the body.
    if body + 3 > crate::packet::PAYLOAD - 1 || entries.iter().any(|e| e.descriptors.len() > 0x3FF)
    {
        return Err(Error::Internal("PMT does not fit one packet"));
    }
    write_psi_packet(out, PMT_PID, cc, |s| {
        s.extend_from_slice(&[
            0x02, // table_id: TS_program_map_section
            0xB0 | (body >> 8) as u8,
            body as u8,
            (PROGRAM_NUMBER >> 8) as u8,
            PROGRAM_NUMBER as u8,
            VERSION_CURRENT,
            0x00,
            0x00,
            0xE0 | (pcr_pid >> 8) as u8, // reserved '111', PCR_PID
            pcr_pid as u8,
            0xF0, // reserved '1111', program_info_length 0
            0x00,
        ]);
        for e in entries {
            let n = e.descriptors.len();
            s.extend_from_slice(&[
                e.stream_type,
                0xE0 | (e.pid >> 8) as u8,
                e.pid as u8,
                0xF0 | (n >> 8) as u8,
                n as u8,
            ]);
            s.extend_from_slice(e.descriptors);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TS_PACKET_SIZE;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn pat_matches_known_packet() {
        // The PAT of a single-program stream (tsid 1, program 1 on PID 0x1000, version
        // 0), as found at the head of many TS files; CRC 2AB104B2 was also recomputed
        // with a bitwise Python CRC-32/MPEG-2 independent of this crate.
        let mut out = Vec::new();
        write_pat(&mut out, 0).unwrap();
        let mut expect = hex("47 40 00 10 00 00 B0 0D 00 01 C1 00 00 00 01 F0 00 2A B1 04 B2");
        expect.resize(TS_PACKET_SIZE, 0xFF);
        assert_eq!(out, expect);
        // Continuity counter lands in the low nibble.
        out.clear();
        write_pat(&mut out, 0x1F).unwrap();
        assert_eq!(out[3], 0x1F);
    }

    #[test]
    fn pmt_h264_aac() {
        let mut out = Vec::new();
        let entries = [
            PmtEntry {
                stream_type: 0x1B,
                pid: 0x100,
                descriptors: &[],
            },
            PmtEntry {
                stream_type: 0x0F,
                pid: 0x101,
                descriptors: &[],
            },
        ];
        write_pmt(&mut out, 5, 0x100, &entries).unwrap();
        // CRC from an independent bitwise Python CRC-32/MPEG-2 over bytes 5..27.
        let mut expect = hex("47 50 00 15 00 02 B0 17 00 01 C1 00 00 E1 00 F0 00 \
             1B E1 00 F0 00 0F E1 01 F0 00 2F 44 B9 9B");
        expect.resize(TS_PACKET_SIZE, 0xFF);
        assert_eq!(out, expect);
    }

    #[test]
    fn pmt_with_descriptors_and_overflow() {
        let mut out = Vec::new();
        let d = [0x0F, 0x04, b'z', b'a', b'v', b'c'];
        let entries = [PmtEntry {
            stream_type: 0xDB,
            pid: 0x100,
            descriptors: &d,
        }];
        write_pmt(&mut out, 0, 0x100, &entries).unwrap();
        assert_eq!(
            &out[17..28],
            &[0xDB, 0xE1, 0x00, 0xF0, 0x06, 0x0F, 0x04, b'z', b'a', b'v', b'c']
        );
        assert_eq!(crate::crc32_mpeg2(&out[5..5 + 3 + usize::from(out[7])]), 0);
        let big = [0u8; 200];
        let entries = [PmtEntry {
            stream_type: 0xDB,
            pid: 0x100,
            descriptors: &big,
        }];
        assert!(write_pmt(&mut Vec::new(), 0, 0x100, &entries).is_err());
    }
}
