//! The tar a pull writes, as it streams: the config and manifest, every layer blob (checked
//! against its digest and size as it comes down), then `manifest.json`, `index.json` and
//! `oci-layout` — Docker 25's `docker save` layout.

use std::collections::HashSet;

use bytes::Bytes;
use futures_util::StreamExt;

use super::Registry;
use super::blob::{blob_from, skip_start};
use super::error::RegistryError;
use super::resolved::Resolved;
use crate::digest::Hasher;
use crate::image::blob_path;
use crate::oci::OCI_INDEX;
use crate::pipe;
use crate::progress::Reporter;

/// Sends the tar of the pulled image into the pipe; `tag` (`image:tag`) names it in
/// `manifest.json` and `index.json`.
pub(super) async fn send_layout(
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
    let layers: Vec<String> = doc.layers.iter().map(|l| blob_path(&l.digest)).collect();
    let manifest_json = serde_json::to_vec(&serde_json::json!([{
        "Config": blob_path(&config),
        "RepoTags": [tag],
        "Layers": layers,
    }]))
    .unwrap_or_default();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": doc.media_type(),
            "digest": resolved.digest,
            "size": resolved.manifest_bytes.len(),
            "annotations": {
                // containerd keeps images under their fully qualified name.
                "io.containerd.image.name": qualified(tag),
                "org.opencontainers.image.ref.name": tag.rsplit(':').next().unwrap_or_default(),
            },
        }],
    }))
    .unwrap_or_default();
    for (name, bytes) in [
        ("manifest.json", manifest_json.as_slice()),
        ("index.json", index.as_slice()),
        (
            "oci-layout",
            br#"{"imageLayoutVersion":"1.0.0"}"#.as_slice(),
        ),
    ] {
        send(tx, tar_member(name, bytes)).await?;
    }
    // The end of the tar: two zero blocks.
    send(tx, Bytes::from(vec![0u8; 1024])).await
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
    ((512 - size % 512) % 512) as usize
}

fn tar_header(name: &str, size: u64) -> Bytes {
    let mut header = tar::Header::new_ustar();
    let _ = header.set_path(name);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    Bytes::copy_from_slice(header.as_bytes())
}

fn tar_member(name: &str, data: &[u8]) -> Bytes {
    let mut out = tar_header(name, data.len() as u64).to_vec();
    out.extend_from_slice(data);
    out.resize(out.len() + padding(data.len() as u64), 0);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn tar_members_are_padded() {
        let member = tar_member("blobs/sha256/x", b"hello");
        assert_eq!(member.len(), 1024);
        let mut all = member.to_vec();
        all.extend_from_slice(&[0u8; 1024]);
        let mut archive = tar::Archive::new(all.as_slice());
        let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
        let mut data = String::new();
        entry.read_to_string(&mut data).unwrap();
        assert_eq!(data, "hello");
    }
}

/// `reference` fully qualified as containerd names images (what a containerd-store engine's
/// `docker save` writes, and what its `docker load` resolves): a reference without a registry
/// gets `docker.io/`, and a one-component Docker Hub repository `library/`.
fn qualified(reference: &str) -> String {
    let (first, rest) = match reference.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (reference, None),
    };
    let is_registry = |c: &str| c.contains('.') || c.contains(':') || c == "localhost";
    match rest {
        Some(_) if is_registry(first) => reference.to_string(),
        Some(_) => format!("docker.io/{reference}"),
        None => format!("docker.io/library/{reference}"),
    }
}

#[cfg(test)]
mod qualified_tests {
    use super::qualified;

    #[test]
    fn references_are_qualified_as_containerd_names_them() {
        assert_eq!(qualified("dp:3.0"), "docker.io/library/dp:3.0");
        assert_eq!(qualified("team/app:1"), "docker.io/team/app:1");
        assert_eq!(
            qualified("127.0.0.1:5000/lib/x:3"),
            "127.0.0.1:5000/lib/x:3"
        );
        assert_eq!(qualified("localhost/x:1"), "localhost/x:1");
        assert_eq!(qualified("registry.example/x:1"), "registry.example/x:1");
    }
}
