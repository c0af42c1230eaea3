//! Key IDs and DRM system IDs: 16-byte UUIDs in their several spellings.
//!
//! The types live in [`sealcast_cenc::kid`] (the encryptors and the `pssh` box use them
//! too) and are re-exported here, where key sources and signalling have always found them.

pub use sealcast_cenc::kid::{Kid, SystemId};
