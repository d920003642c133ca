//! Pushing an archive: its config, its layers (skipping what the registry has), then a Docker
//! v2 schema 2 manifest. The archive streams; nothing is unpacked to disk.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;

use super::error::RegistryError;
use super::layer_cache::{LayerCache, Pushable};
use super::layers::{Wanted, stored_blob, stream_layers};
use super::{Reference, Registry};
use crate::archive::Archive;
use crate::digest::sha256;
use crate::image::{ArchiveError, ImageError, ImageInfo};
use crate::oci::{DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, Document};
use crate::progress::Reporter;

/// What `push` did.
#[derive(Debug, Clone, Serialize)]
pub struct Pushed {
    /// The manifest's digest.
    pub digest: String,
    /// The reference pushed to.
    pub reference: String,
    /// Layers uploaded.
    pub uploaded: usize,
    /// Layers the registry already had.
    pub skipped: usize,
}

/// Pushes the image of `archive` to `target`: its config, its layers (gzip-compressed on the
/// way, on all cores, unless already compressed), skipping what the registry has, then a
/// Docker v2 schema 2 manifest. `layer_cache` is the JSON file that records which compressed
/// blob each layer became, so that a later push of the same layers uploads none (gzip here is
/// deterministic); `None` keeps no record.
///
/// A layer upload that fails in passing (a connection cut midway, a busy or failing
/// registry) starts the push over, at most the registry's `retries` times: the layers already
/// uploaded are known by then and not uploaded again.
pub async fn push(
    registry: &Registry,
    archive: &Archive,
    target: &Reference,
    layer_cache: Option<&Path>,
    reporter: Arc<dyn Reporter>,
) -> Result<Pushed, RegistryError> {
    let mut retry = 0;
    loop {
        let mut upload_failed = false;
        let attempt = push_once(
            registry,
            archive,
            target,
            layer_cache,
            Arc::clone(&reporter),
            &mut upload_failed,
        )
        .await;
        match attempt {
            Err(e) if upload_failed && registry.wait_to_retry(retry, &e).await => retry += 1,
            other => return other,
        }
    }
}

async fn push_once(
    registry: &Registry,
    archive: &Archive,
    target: &Reference,
    layer_cache: Option<&Path>,
    reporter: Arc<dyn Reporter>,
    upload_failed: &mut bool,
) -> Result<Pushed, RegistryError> {
    let (info, index) = crate::image::read(archive)?;
    registry.ready(target).await;
    let config_digest = info.id.clone();
    if !registry.blob_exists(target, &config_digest).await? {
        let action = format!("uploading the config to {target}");
        let (digest, _) = registry
            .retrying(|| {
                let chunk = Ok(Bytes::copy_from_slice(&info.config_bytes));
                super::blob::upload(
                    registry,
                    target,
                    futures_util::stream::iter([chunk]).boxed(),
                    &action,
                )
            })
            .await?;
        if digest != config_digest {
            return Err(RegistryError::DigestMismatch {
                what: format!("the config uploaded to {target}"),
                expected: config_digest,
                found: digest,
            });
        }
    }
    let mut known = LayerCache::load(layer_cache);
    remember_target_layers(registry, target, &info, &mut known).await;
    let mut ready: HashMap<String, Pushable> = HashMap::new();
    let mut wanted: Vec<Wanted> = Vec::new();
    let mut total: u64 = 0;
    for layer in &info.layers {
        let stored = stored_blob(&layer.path).filter(|d| *d != layer.diff_id);
        let candidate = match &stored {
            // A compressed OCI blob: pushed as stored, its name is its digest.
            Some(digest) => Some(Pushable {
                digest: digest.clone(),
                size: layer.size,
                media_type: DOCKER_LAYER_GZIP.into(),
            }),
            None => known.get(&layer.diff_id),
        };
        match candidate {
            Some(p) if registry.blob_exists(target, &p.digest).await? => {
                ready.insert(layer.diff_id.clone(), p);
            }
            _ => {
                total = total.saturating_add(layer.size);
                wanted.push(Wanted {
                    path: layer.path.clone(),
                    diff_id: layer.diff_id.clone(),
                    as_is: stored.is_some(),
                });
            }
        }
    }
    let skipped = info.layers.len() - wanted.len();
    reporter.start(Some(total));

    // A blocking reader hands each layer to upload as a stream of gzip bytes; the uploads run
    // here, one at a time, in the order the archive gives them.
    let (streams_tx, mut streams_rx) = tokio::sync::mpsc::channel(1);
    let archive_copy = archive.clone();
    let progress = Arc::clone(&reporter);
    let reader = tokio::task::spawn_blocking(move || {
        stream_layers(
            &archive_copy,
            &index,
            &wanted,
            &streams_tx,
            progress.as_ref(),
        )
    });
    let mut uploaded = 0;
    let mut failure = None;
    let action = format!("uploading a layer to {target}");
    while let Some((diff_id, stream)) = streams_rx.recv().await {
        match super::blob::upload(registry, target, stream, &action).await {
            Ok((digest, size)) => {
                uploaded += 1;
                let pushed = Pushable {
                    digest,
                    size,
                    media_type: DOCKER_LAYER_GZIP.into(),
                };
                ready.insert(diff_id, pushed);
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(streams_rx);
    let read = reader.await.map_err(|source| RegistryError::Worker {
        action: "reading the archive",
        source,
    })?;
    if let Some(e) = failure {
        // What did go up is remembered, so that a push started over skips it.
        for (diff_id, p) in &ready {
            known.insert(diff_id, p);
        }
        known.save();
        *upload_failed = true;
        return Err(e);
    }
    // The uncompressed digests the reader saw must be the config's.
    for layer in read? {
        if layer.diff_id != layer.found {
            return Err(ArchiveError::Damaged {
                path: archive.path.clone(),
                source: ImageError::LayerDigest {
                    layer: layer.path,
                    found: layer.found,
                    expected: layer.diff_id,
                },
            }
            .into());
        }
    }
    reporter.finish();
    for (diff_id, p) in &ready {
        known.insert(diff_id, p);
    }
    known.save();
    let (bytes, digest) = manifest(target, &info, &ready)?;
    registry
        .retrying(|| async {
            registry
                .client
                .push_manifest_raw(
                    target,
                    bytes.clone(),
                    reqwest::header::HeaderValue::from_static(DOCKER_MANIFEST),
                )
                .await
                .map_err(|e| registry.error(format!("pushing the manifest to {target}"), e))
        })
        .await?;
    Ok(Pushed {
        digest,
        reference: target.whole(),
        uploaded,
        skipped,
    })
}

/// A manifest of this very image already at the target names its layers' blobs: they go into
/// the record (what was recorded before stays).
async fn remember_target_layers(
    registry: &Registry,
    target: &Reference,
    info: &ImageInfo,
    known: &mut LayerCache,
) {
    if let Ok((bytes, _)) = registry.manifest(target).await
        && let Ok(doc) = Document::parse(&bytes)
        && doc.config.as_ref().is_some_and(|c| c.digest == info.id)
        && doc.layers.len() == info.layers.len()
    {
        for (layer, blob) in info.layers.iter().zip(&doc.layers) {
            if known.get(&layer.diff_id).is_none() {
                let found = Pushable {
                    digest: blob.digest.clone(),
                    size: blob.size,
                    media_type: blob.media_type.clone(),
                };
                known.insert(&layer.diff_id, &found);
            }
        }
    }
}

/// The Docker v2 schema 2 manifest of the pushed image, and its digest.
fn manifest(
    target: &Reference,
    info: &ImageInfo,
    ready: &HashMap<String, Pushable>,
) -> Result<(Vec<u8>, String), RegistryError> {
    let layers: Vec<Value> = info
        .layers
        .iter()
        .map(|l| {
            let p = ready
                .get(&l.diff_id)
                .ok_or_else(|| RegistryError::NotUploaded {
                    reference: target.to_string(),
                    diff_id: l.diff_id.clone(),
                })?;
            Ok(serde_json::json!({"mediaType": p.media_type, "size": p.size, "digest": p.digest}))
        })
        .collect::<Result<_, RegistryError>>()?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {
            "mediaType": DOCKER_CONFIG,
            "size": info.config_bytes.len(),
            "digest": info.id,
        },
        "layers": layers,
    });
    let bytes = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    let digest = sha256(&bytes);
    Ok((bytes, digest))
}
