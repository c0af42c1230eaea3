//! Per-asset protection state: for each encryption method an asset's delivery policy uses,
//! the plan made by [`sealcast_package::protection`] (which key encrypts which track, the
//! shared per-track encryption state, protected inits, manifest signalling) and the
//! encrypted manifests built from it.
//!
//! Built once per (asset version, policy version) and shared read-only by every request;
//! requests only make a per-request encryptor from it. Encrypted manifests are cached here
//! too, so a policy or key change (a catalog reload gives a new policy `Arc`) rebuilds them.
//! This module only adapts the catalog and the loaded asset to the planner's input and keeps
//! the caches; the planning is pure code in the package crate.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use sealcast_package::protection::{plan, MethodPlan, PlanInput};
use sealcast_package::Asset;

pub use sealcast_package::protection::{key_uri, Encryption, TrackPlan};

use crate::assets::{Loaded, ManifestSlot};
use crate::catalog::{AssetPolicy, Delivery};
use crate::respond::Cached;

/// Everything one method needs for one asset: its plan and its encrypted manifests.
pub struct SchemeCrypto {
    plan: MethodPlan,
    /// Cached manifests: MPD, HLS masters (fMP4, TS), Smooth, then per track its HLS media
    /// playlists (fMP4, TS).
    manifests: Vec<OnceLock<Arc<Cached>>>,
}

impl std::ops::Deref for SchemeCrypto {
    type Target = MethodPlan;
    fn deref(&self) -> &MethodPlan {
        &self.plan
    }
}

impl SchemeCrypto {
    /// A cached manifest (see [`ManifestSlot`]), built on first use. The ETag hashes the
    /// asset identity, the slot and the body, so a new key or policy gives a new ETag.
    pub fn manifest(&self, loaded: &Loaded, kind: ManifestSlot, build: impl FnOnce(&Asset, &MethodPlan) -> String) -> Arc<Cached> {
        let i = kind.index(self.plan.tracks.len());
        self.manifests[i]
            .get_or_init(|| {
                let body = build(&loaded.asset, &self.plan);
                let tag = crate::respond::etag(&loaded.identity, &format!("{}/{i}\n{body}", self.plan.method.path()));
                Arc::new(Cached::new(Bytes::from(body), tag))
            })
            .clone()
    }
}

/// An asset's protection under one policy version.
pub struct AssetCrypto {
    /// The policy it was built from (compared by pointer: a reload makes a new `Arc`).
    pub policy: Arc<AssetPolicy>,
    methods: Vec<SchemeCrypto>,
}

impl AssetCrypto {
    /// Plans the protection of `loaded` for every method `policy` uses.
    pub fn build(loaded: &Loaded, policy: Arc<AssetPolicy>) -> Result<AssetCrypto, String> {
        let mut methods: Vec<SchemeCrypto> = Vec::new();
        for d in [policy.dash, policy.hls, policy.smooth].into_iter().flatten() {
            let Some(m) = Encryption::of(d) else { continue };
            if !methods.iter().any(|x| x.plan.method == m) {
                let plan = plan(m, &input(loaded, &policy, d)).map_err(|e| e.to_string())?;
                let slots = ManifestSlot::count(plan.tracks.len());
                methods.push(SchemeCrypto { plan, manifests: (0..slots).map(|_| OnceLock::new()).collect() });
            }
        }
        Ok(AssetCrypto { policy, methods })
    }

    /// The state of `method`, when the policy uses it.
    pub fn method(&self, method: Encryption) -> Option<&SchemeCrypto> {
        self.methods.iter().find(|m| m.plan.method == method)
    }
}

/// The planner's view of `loaded` under `policy`'s `delivery`.
fn input<'a>(loaded: &'a Loaded, policy: &'a AssetPolicy, delivery: Delivery) -> PlanInput<'a> {
    PlanInput {
        asset: &loaded.asset,
        path: &loaded.path,
        file_sizes: loaded.asset.tracks.iter().map(|t| loaded.files.get(&t.file).map_or(0, |o| o.size)).collect(),
        keys: policy.keys_for(delivery).into_iter().cloned().collect(),
        cpix: policy.cpix.as_deref(),
        license: &policy.license,
        clear_lead_secs: policy.clear_lead_secs,
    }
}
