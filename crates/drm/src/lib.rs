//! Content keys and DRM signalling for sealcast: pure code, no IO, no clock.
//!
//! * [`kid`], [`key`]: KIDs in their spellings (GUID, hex, PlayReady byte order) and
//!   content keys whose `Debug` never shows key bytes (re-exported from `sealcast-cenc`, so
//!   the encryptors take the same types).
//! * [`groups`]: which key encrypts which track (audio + SD/HD/UHD1/UHD2 groups).
//! * [`pssh`], [`widevine`], [`playready`], [`clearkey`]: `pssh` boxes (the one box type
//!   of `sealcast-cenc`, bounded and base64-encoded here) and the system
//!   data inside them (Widevine protobuf, PlayReady Object, W3C Common).
//! * [`dash`], [`hls`], [`smooth`]: the strings manifest writers embed
//!   (`ContentProtection`, `#EXT-X-KEY`/`#EXT-X-SESSION-KEY`, `<Protection>`).
//! * [`policy`]: per-protocol delivery types and licence URLs (the catalog's model).
//! * [`cpix`]: DASH-IF CPIX 2.3 documents with clear keys, including usage rules.
//! * [`clearkey`]: the W3C ClearKey licence request/response JSON.
//! * [`signed`]: CDN signed URLs, cookies and tokens (CloudFront, Akamai EdgeAuth).
//!
//! Everything that reads outside input (CPIX XML, licence requests, `pssh` boxes) is
//! bounded and returns [`Error`] rather than panicking.

#![deny(missing_docs)]

pub mod auth;
pub mod clearkey;
pub mod cpix;
pub mod dash;
pub mod error;
pub mod fuzzing;
pub mod groups;
pub mod hls;
pub mod key;
pub mod kid;
pub mod playready;
pub mod policy;
pub mod pssh;
pub mod signed;
pub mod smooth;
pub mod usage_rules;
pub mod widevine;
mod xml;

pub use error::{Error, Result};
pub use groups::{assign_keys, QualityGroup, TrackDesc, TrackKind};
pub use key::{ContentKey, KeyBytes, KeyKind, Scheme};
pub use kid::{Kid, SystemId};
pub use policy::{Delivery, LicenseUrls};
pub use pssh::{Pssh, PsshBox};
