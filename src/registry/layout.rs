//! The tar a pull writes, as it streams: the config and manifest, every layer blob (checked
//! against its digest and size as it comes down), then `manifest.json`, `index.json` and
//! `oci-layout` — Docker 25's `docker save` layout, whose pieces the image writer
//! ([`crate::image::write`]) makes.

use std::collections::HashSet;

use bytes::Bytes;
use futures_util::StreamExt;

use super::Registry;
use super::blob::{blob_from, skip_start};
use super::error::RegistryError;
use super::resolved::Resolved;
use crate::digest::Hasher;
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
        let mut hasher = Hasher::default();
        // What was sent stays sent: a download that breaks off resumes after it.
        let mut sent: u64 = 0;
        let mut retry = 0;
        loop {
            let attempt: Result<(), RegistryError> = async {
                let mut from = blob_from(registry, reference, &layer.digest, sent).await?;
                while let Some(chunk) = from.stream.next().await {
                    let chunk = chunk.map_err(|e| RegistryError::BlobStream {
                        reference: reference.to_string(),
                        digest: layer.digest.clone(),
                        source: std::io::Error::other(e),
                    })?;
                    let chunk = skip_start(chunk, &mut from.skip);
                    if chunk.is_empty() {
                        continue;
                    }
                    hasher.update(&chunk);
                    if hasher.size() > layer.size {
                        break;
                    }
                    sent += chunk.len() as u64;
                    reporter.advance(chunk.len() as u64);
                    send(tx, chunk).await?;
                }
                Ok(())
            }
            .await;
            match attempt {
                Ok(()) if hasher.size() < layer.size && retry < registry.retries => {
                    // The answer ended early without an error: the connection was cut.
                    let cut = RegistryError::BlobStream {
                        reference: reference.to_string(),
                        digest: layer.digest.clone(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            format!("the download stopped after {sent} of {} bytes", layer.size),
                        ),
                    };
                    if !registry.wait_to_retry(retry, &cut).await {
                        break;
                    }
                    retry += 1;
                }
                Ok(()) => break,
                Err(e) if registry.wait_to_retry(retry, &e).await => retry += 1,
                Err(e) => return Err(e),
            }
        }
        let (found, got) = hasher.finish();
        if got != layer.size || found != layer.digest {
            return Err(RegistryError::DigestMismatch {
                what: format!("blob {} of {reference} ({got} bytes)", layer.digest),
                expected: format!("{} ({} bytes)", layer.digest, layer.size),
                found,
            });
        }
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
