//! The tar a pull writes, as it streams: the config and manifest, every layer blob (checked
//! against its digest and size as it comes down), then `manifest.json`, `index.json` and
//! `oci-layout` — Docker 25's `docker save` layout, whose pieces the image writer
//! ([`crate::image::write`]) makes.

use std::collections::HashSet;

use bytes::Bytes;

use super::Registry;
use super::download::download_blob;
use super::error::RegistryError;
use super::resolved::Resolved;
use crate::image::blob_path;
use crate::image::write;
use crate::pipe;
use crate::progress::Reporter;

/// Sends the `docker save` tar of the resolved image into the pipe (the blobs as the registry
/// stores them, each checked against its digest as it streams, then `manifest.json`,
/// `index.json` and `oci-layout`); `tag` (`image:tag`) names it in `manifest.json` and
/// `index.json`. What becomes of the tar (an archive file) is the caller's.
pub async fn send_layout(
    registry: &Registry,
    resolved: &Resolved,
    tx: &pipe::Sender,
    tag: &str,
    reporter: &dyn Reporter,
) -> Result<(), RegistryError> {
    let reference = &resolved.reference;
    let doc = &resolved.doc;
    let config = doc
        .config
        .as_ref()
        .map(|c| c.digest.clone())
        .unwrap_or_default();
    // Small documents first: the config and the manifest.
    for (digest, bytes) in [
        (config.as_str(), resolved.config_bytes.as_slice()),
        (resolved.digest.as_str(), &resolved.manifest_bytes[..]),
    ] {
        send(tx, tar_member(&blob_path(digest), bytes)).await?;
    }
    let mut seen = HashSet::new();
    for layer in &doc.layers {
        if !seen.insert(layer.digest.clone()) {
            continue; // one blob serves every layer that names it
        }
        send(tx, tar_header(&blob_path(&layer.digest), layer.size)).await?;
        download_blob(registry, reference, layer, reporter, &mut &*tx).await?;
        send(tx, Bytes::from(vec![0u8; padding(layer.size)])).await?;
    }
    let layers: Vec<String> = doc.layers.iter().map(|l| l.digest.clone()).collect();
    let root = crate::oci::Descriptor {
        media_type: doc.media_type().to_string(),
        digest: resolved.digest.clone(),
        size: resolved.manifest_bytes.len() as u64,
        platform: None,
        annotations: Default::default(),
    };
    for (name, bytes) in write::save_documents(&config, &layers, tag, &root) {
        send(tx, tar_member(name, &bytes)).await?;
    }
    send(tx, Bytes::from_static(&write::TAR_END)).await
}

/// Sends a chunk to the archive writer; the writer having stopped is an error (its own error
/// says why).
async fn send(tx: &pipe::Sender, chunk: Bytes) -> Result<(), RegistryError> {
    if tx.send(chunk).await {
        Ok(())
    } else {
        Err(RegistryError::WriterStopped)
    }
}

fn padding(size: u64) -> usize {
    write::padding(size)
}

fn tar_header(name: &str, size: u64) -> Bytes {
    Bytes::copy_from_slice(&write::tar_header(name, size))
}

fn tar_member(name: &str, data: &[u8]) -> Bytes {
    Bytes::from(write::tar_member(name, data))
}
