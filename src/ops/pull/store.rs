//! `pull REF --store`: an image from a registry into the layer store, as a `.ref` archive,
//! downloading only the blobs the store lacks (several at a time, each checked against its
//! digest as it streams into the store); the `.ref` is written last.

use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};

use crate::error::Result;
use crate::layout::{Layout, RefFile};
use crate::lock::DirLock;
use crate::name::Format;
use crate::oci::Descriptor;
use crate::progress::Reporter;
use crate::registry::{self, Access, PullRequest, Reference, Registry, WriteSink};

use super::{Downloaded, PARALLEL};

/// Pulls `req.reference` into the layer store of the artifacts directory `lock` holds, unless
/// an archive of the same image, version and ID is there already.
pub async fn pull_into_store(
    lock: &DirLock,
    req: &PullRequest,
    access: &Access,
    reporter: Arc<dyn Reporter>,
) -> Result<Downloaded> {
    let registry = Registry::for_reference(&req.reference, access)?;
    let resolved = registry::resolve(&registry, req).await?;
    let name = resolved.name.with_format(Format::Ref);
    let dir = lock.dir();
    if let Some(existing) = super::already_there(dir, &name)? {
        return Ok(Downloaded::existing(existing));
    }
    let layout = crate::ops::update::own_layout(dir)?;
    let doc = resolved.manifest();
    let mut downloaded = 0u64;
    let mut reused = 0u64;
    // The config and the manifest came with the resolution (each checked): into the store.
    for bytes in [resolved.config_bytes(), resolved.manifest_bytes()] {
        downloaded += bytes.len() as u64;
        layout.put(bytes)?;
    }
    let mut missing: Vec<Descriptor> = Vec::new();
    for layer in &doc.layers {
        if missing.iter().any(|m| m.digest == layer.digest) {
            continue;
        }
        if layout.has(layer) {
            reused += layer.size;
        } else {
            missing.push(layer.clone());
        }
    }
    let total: u64 = missing.iter().map(|d| d.size).sum();
    reporter.start(Some(total));
    let reference = &resolved.reference;
    futures_util::stream::iter(missing.iter().map(|d| {
        let (registry, layout, reporter) = (&registry, &layout, reporter.clone());
        async move { fetch(registry, reference, layout, d, reporter.as_ref()).await }
    }))
    .buffer_unordered(PARALLEL)
    .try_collect::<Vec<()>>()
    .await?;
    downloaded += total;
    reporter.finish();
    let root = RefFile {
        media_type: doc.media_type().to_string(),
        digest: resolved.digest.clone(),
        size: resolved.manifest_bytes().len() as u64,
    };
    let (dest, _) = super::write_ref(dir, &layout, &name, &root)?;
    Ok(Downloaded {
        path: dest,
        name,
        written: true,
        downloaded,
        reused,
    })
}

/// One layer into the store, committed under its digest only when what came matches it.
async fn fetch(
    registry: &Registry,
    reference: &Reference,
    layout: &Layout,
    layer: &Descriptor,
    reporter: &dyn Reporter,
) -> Result<()> {
    let mut sink = WriteSink(layout.blob_writer()?);
    registry::download_blob(registry, reference, layer, reporter, &mut sink).await?;
    sink.0.commit(Some(&layer.digest))?;
    Ok(())
}
