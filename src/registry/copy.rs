//! Copying an image, or a manifest list with its manifests, to another tag, repository or
//! registry.

use futures_util::StreamExt;
use oci_client::errors::OciDistributionError;
use reqwest::header::HeaderValue;

use super::error::RegistryError;
use super::manifest::blobs_of;
use super::stream::{UPLOAD_CHUNK, batched};
use super::{Reference, Registry};
use crate::oci::{Descriptor, OCI_MANIFEST};

/// Copies what `src` names to `dst` (another tag, repository or registry): blobs the
/// destination lacks are mounted from the source repository when both are on one registry,
/// else streamed through (checked against their digests); the manifests are pushed byte for
/// byte, so the digest stays. Returns the digest.
pub async fn copy(
    src_registry: &Registry,
    src: &Reference,
    dst_registry: &Registry,
    dst: &Reference,
) -> Result<String, RegistryError> {
    let all = src_registry.manifests_of(src).await?;
    let same_registry = src.resolve_registry() == dst.resolve_registry();
    for m in &all {
        for blob in blobs_of(&m.doc) {
            copy_blob(src_registry, &m.at, dst_registry, dst, &blob, same_registry).await?;
        }
        let target = if &m.at == src {
            dst.clone()
        } else {
            dst.clone_with_digest(m.digest.clone())
        };
        let media_type = HeaderValue::from_str(m.doc.media_type())
            .unwrap_or(HeaderValue::from_static(OCI_MANIFEST));
        dst_registry.ready(&target).await;
        dst_registry
            .client
            .push_manifest_raw(&target, m.bytes.clone(), media_type)
            .await
            .map_err(|e| dst_registry.error(format!("pushing the manifest to {target}"), e))?;
    }
    Ok(all.last().map(|m| m.digest.clone()).unwrap_or_default())
}

/// Makes sure `dst`'s repository has `blob` of `at`: already there, mounted, or streamed.
async fn copy_blob(
    src_registry: &Registry,
    at: &Reference,
    dst_registry: &Registry,
    dst: &Reference,
    blob: &Descriptor,
    same_registry: bool,
) -> Result<(), RegistryError> {
    if dst_registry.blob_exists(dst, &blob.digest).await? {
        return Ok(());
    }
    if same_registry {
        dst_registry.ready(dst).await;
        let mounted = dst_registry.client.mount_blob(dst, at, &blob.digest).await;
        if mounted.is_ok() && dst_registry.blob_exists(dst, &blob.digest).await? {
            return Ok(());
        }
    }
    src_registry.ready(at).await;
    let source = src_registry
        .client
        .pull_blob_stream(at, blob.digest.as_str())
        .await
        .map_err(|e| src_registry.error(format!("fetching blob {} of {at}", blob.digest), e))?
        .stream;
    // The source's stream is checked against the digest as it ends (oci-client), and the
    // destination checks it again before it accepts the blob.
    let stream = batched(source, UPLOAD_CHUNK).map(|r| r.map_err(OciDistributionError::IoError));
    dst_registry.ready(dst).await;
    dst_registry
        .client
        .push_blob_stream(dst, stream, &blob.digest, Some(blob.size))
        .await
        .map_err(|e| dst_registry.error(format!("copying blob {} to {dst}", blob.digest), e))?;
    Ok(())
}
