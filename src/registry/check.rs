//! Checking that a manifest (and each manifest a list names) and every blob it names are
//! there.

use serde::Serialize;

use super::error::RegistryError;
use super::manifest::blobs_of;
use super::{Reference, Registry};

/// What `check` found.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    /// The digest of the manifest the reference names.
    pub digest: String,
    /// The blobs named, counted once per manifest naming them.
    pub blobs: usize,
    /// The digests of the blobs the registry lacks.
    pub missing: Vec<String>,
}

/// Checks that the manifest of `reference` (and of every manifest a list names) is there and
/// that every blob it names is.
pub async fn check(registry: &Registry, reference: &Reference) -> Result<Checked, RegistryError> {
    let all = registry.manifests_of(reference).await?;
    let digest = all.last().map(|m| m.digest.clone()).unwrap_or_default();
    let mut blobs = 0;
    let mut missing = Vec::new();
    for m in &all {
        for blob in blobs_of(&m.doc) {
            blobs += 1;
            if !registry.blob_exists(&m.at, &blob.digest).await? {
                missing.push(blob.digest);
            }
        }
    }
    Ok(Checked {
        digest,
        blobs,
        missing,
    })
}
