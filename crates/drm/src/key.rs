//! Content keys: KID, key bytes and what the key is for; the Common Encryption schemes.
//!
//! The types live in [`sealcast_cenc::key`] (the encryptors take the same content key) and
//! are re-exported here, where key sources and signalling have always found them.

pub use sealcast_cenc::key::{ContentKey, KeyBytes, KeyKind, Scheme};
