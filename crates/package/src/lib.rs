//! Packaging: from fragmented MP4 track files to what players ask for.
//!
//! Pure code: bytes in, bytes out, no IO and no clock. The index builder ([`index`]) is a
//! sans-IO state machine that tells its caller which byte ranges to read; segment and
//! manifest writers work on the resulting tables and on the bytes the caller read;
//! [`protection`] plans what each track is encrypted with and how manifests signal it.

pub mod asset;
pub mod error;
pub mod fmp4;
pub mod fragment;
pub mod fuzzing;
pub mod index;
pub mod ism;
pub mod lang;
pub mod manifest;
pub mod names;
pub mod progressive;
pub mod protect;
pub mod protection;
pub mod sidecar;
pub mod smooth;
pub mod text;
pub mod timeline;
pub mod track;
pub mod ts;

pub use asset::{Asset, AssetTrack, DashText, PackageOptions};
pub use error::{Error, Result};
pub use index::{FileIndex, Fragment, IndexBuilder, IndexMethod, Need, TrackIndex};
pub use track::{TrackInfo, TrackKind};
