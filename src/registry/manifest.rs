//! Reading what a registry holds: manifests (checked against the digest a reference names),
//! whether a blob is there, small blobs (configs), and the manifests a list stands for.

use bytes::Bytes;
use futures_util::StreamExt;

use super::blob::{blob_from, manifest_bytes};
use super::error::RegistryError;
use super::{Reference, Registry};
use crate::digest::sha256;
use crate::oci::{DOCKER_LIST, DOCKER_MANIFEST, Descriptor, Document, OCI_INDEX, OCI_MANIFEST};

/// The manifest media types asked for.
const ACCEPTED: [&str; 4] = [DOCKER_MANIFEST, OCI_MANIFEST, DOCKER_LIST, OCI_INDEX];
/// Configs and manifests larger than this are refused.
const MAX_DOCUMENT: usize = 4 << 20;

/// One manifest a reference stands for: where it is, parsed, its bytes and its digest.
pub(super) struct Manifest {
    pub at: Reference,
    pub doc: Document,
    pub bytes: Bytes,
    pub digest: String,
}

impl Registry {
    /// The raw manifest at `reference` and its digest (checked when the reference has one).
    pub(super) async fn manifest(
        &self,
        reference: &Reference,
    ) -> Result<(Bytes, String), RegistryError> {
        let accept = ACCEPTED.join(", ");
        let bytes = self
            .retrying(|| manifest_bytes(self, reference, &accept, MAX_DOCUMENT))
            .await?;
        let what = || format!("the manifest of {reference}");
        let digest = sha256(&bytes);
        if let Some(wanted) = reference.digest() {
            check_digest(what, wanted, &digest)?;
        }
        Ok((bytes, digest))
    }

    /// Whether the repository of `reference` has the blob `digest`.
    pub(super) async fn blob_exists(
        &self,
        reference: &Reference,
        digest: &str,
    ) -> Result<bool, RegistryError> {
        self.retrying(|| async {
            self.ready(reference).await;
            self.client
                .blob_exists(reference, digest)
                .await
                .map_err(|e| self.error(format!("looking for blob {digest} in {reference}"), e))
        })
        .await
    }

    /// A small blob (a config), checked against its digest.
    pub(super) async fn small_blob(
        &self,
        reference: &Reference,
        digest: &str,
    ) -> Result<Vec<u8>, RegistryError> {
        self.retrying(|| self.small_blob_once(reference, digest))
            .await
    }

    async fn small_blob_once(
        &self,
        reference: &Reference,
        digest: &str,
    ) -> Result<Vec<u8>, RegistryError> {
        let mut stream = blob_from(self, reference, digest, 0).await?.stream;
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| RegistryError::BlobStream {
                reference: reference.to_string(),
                digest: digest.to_string(),
                source: std::io::Error::other(e),
            })?;
            out.extend_from_slice(&chunk);
            if out.len() > MAX_DOCUMENT {
                return Err(RegistryError::TooLarge {
                    reference: reference.to_string(),
                    digest: digest.to_string(),
                    limit: MAX_DOCUMENT,
                });
            }
        }
        check_digest(
            || format!("blob {digest} of {reference}"),
            digest,
            &sha256(&out),
        )?;
        Ok(out)
    }

    /// The manifests `reference` stands for: for a list or index each manifest in it, then
    /// itself (last).
    pub(super) async fn manifests_of(
        &self,
        reference: &Reference,
    ) -> Result<Vec<Manifest>, RegistryError> {
        let (bytes, digest) = self.manifest(reference).await?;
        let doc = parse_document(&bytes, &format!("the manifest of {reference}"))?;
        let mut out = Vec::new();
        for child in doc.manifests.clone().unwrap_or_default() {
            let at = reference.clone_with_digest(child.digest.clone());
            let (bytes, digest) = self.manifest(&at).await?;
            let doc = parse_document(&bytes, &format!("the manifest of {at}"))?;
            out.push(Manifest {
                at,
                doc,
                bytes,
                digest,
            });
        }
        out.push(Manifest {
            at: reference.clone(),
            doc,
            bytes,
            digest,
        });
        Ok(out)
    }
}

/// Parses a manifest, manifest list or index; `what` names it in the error.
pub(super) fn parse_document(bytes: &[u8], what: &str) -> Result<Document, RegistryError> {
    Document::parse(bytes).map_err(|source| RegistryError::BadDocument {
        what: what.to_string(),
        source,
    })
}

/// The blobs a manifest names: its config, then its layers.
pub(super) fn blobs_of(doc: &Document) -> Vec<Descriptor> {
    doc.config
        .iter()
        .chain(doc.layers.iter())
        .cloned()
        .collect()
}

fn check_digest(
    what: impl FnOnce() -> String,
    expected: &str,
    found: &str,
) -> Result<(), RegistryError> {
    if found == expected {
        return Ok(());
    }
    Err(RegistryError::DigestMismatch {
        what: what(),
        expected: expected.to_string(),
        found: found.to_string(),
    })
}
