//! The protection boxes, one module per box: what `moov` needs (`sinf` with `frma`, `schm`,
//! `schi`/`tenc`; `pssh`) and what each `traf` needs (`senc`, `saiz`, `saio`; PIFF's `uuid`
//! sample encryption box for Smooth Streaming).
//!
//! Each type implements [`sealcast_isobmff::Atom`] (body only; the header is written once,
//! centrally) and round-trips byte for byte.

pub mod frma;
pub mod piff_senc;
pub mod pssh;
pub mod saio;
pub mod saiz;
pub mod schm;
pub mod senc;
pub mod sinf;
pub mod tenc;

pub use frma::Frma;
pub use piff_senc::{PiffOverride, PiffSenc, PIFF_SENC_UUID};
pub use pssh::Pssh;
pub use saio::Saio;
pub use saiz::Saiz;
pub use schm::Schm;
pub use senc::{Senc, SencSample};
pub use sinf::Sinf;
pub use tenc::Tenc;

use sealcast_isobmff::FourCC;

/// Box types of this crate.
#[allow(missing_docs)]
pub mod types {
    use super::FourCC;
    pub const SINF: FourCC = FourCC::new(b"sinf");
    pub const FRMA: FourCC = FourCC::new(b"frma");
    pub const SCHM: FourCC = FourCC::new(b"schm");
    pub const SCHI: FourCC = FourCC::new(b"schi");
    pub const TENC: FourCC = FourCC::new(b"tenc");
    pub const SENC: FourCC = FourCC::new(b"senc");
    pub const SAIZ: FourCC = FourCC::new(b"saiz");
    pub const SAIO: FourCC = FourCC::new(b"saio");
    pub const PSSH: FourCC = FourCC::new(b"pssh");
    pub const ENCV: FourCC = FourCC::new(b"encv");
    pub const ENCA: FourCC = FourCC::new(b"enca");
}
