//! Garbage collection: the blobs no `.ref` archive of the layout needs. A blob needed by any
//! `.ref` (whatever its image, version or dirtiness) stays; the caller holds the directory lock,
//! so no writer is between writing blobs and writing the `.ref` that needs them.

use std::fs;
use std::io;

use super::graph::reachable;
use super::{Layout, Result};
use crate::io_error::IoError;
use crate::oci::Descriptor;

/// The blobs `collect` removed (or would remove), with their sizes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Collected {
    pub blobs: Vec<(String, u64)>,
}

impl Collected {
    /// The bytes freed.
    pub fn freed(&self) -> u64 {
        self.blobs.iter().map(|(_, s)| s).sum()
    }
}

/// Removes (with `dry_run`: only lists) the blobs of `layout` that none of `roots` (the
/// descriptors of every `.ref` that uses the layout) leads to. When the walk of any root fails
/// (a damaged manifest), nothing is collected: the error says which blob.
pub fn collect(layout: &Layout, roots: &[Descriptor], dry_run: bool) -> Result<Collected> {
    let keep = reachable(layout, roots)?;
    let mut collected = Collected::default();
    for (digest, size) in layout.blobs()? {
        if keep.contains(&digest) {
            continue;
        }
        if !dry_run && let Some(path) = layout.blob_path(&digest) {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(IoError::new(&path, e).into()),
            }
        }
        collected.blobs.push((digest, size));
    }
    if !dry_run && !collected.blobs.is_empty() {
        crate::commit::sync_dir(&layout.blob_dir())?;
    }
    Ok(collected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha256;

    fn descriptor(bytes: &[u8], media_type: &str) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest: sha256(bytes),
            size: bytes.len() as u64,
            platform: None,
            annotations: Default::default(),
        }
    }

    #[test]
    fn collect_keeps_what_a_ref_needs_and_removes_the_rest() {
        let d = tempfile::tempdir().unwrap();
        let layout = Layout::create(d.path()).unwrap();
        let config = br#"{"rootfs":{"type":"layers","diff_ids":[]}}"#;
        layout.put(config).unwrap();
        layout.put(b"shared layer").unwrap();
        layout.put(b"lonely layer").unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": crate::oci::OCI_MANIFEST,
            "config": descriptor(config, crate::oci::DOCKER_CONFIG),
            "layers": [descriptor(b"shared layer", "application/vnd.oci.image.layer.v1.tar+gzip")],
        }))
        .unwrap();
        layout.put(&manifest).unwrap();
        let root = descriptor(&manifest, crate::oci::OCI_MANIFEST);
        let dry = collect(&layout, std::slice::from_ref(&root), true).unwrap();
        assert_eq!(dry.blobs, vec![(sha256(b"lonely layer"), 12)]);
        assert_eq!(layout.blobs().unwrap().len(), 4);
        let done = collect(&layout, std::slice::from_ref(&root), false).unwrap();
        assert_eq!(done.freed(), 12);
        assert_eq!(layout.blobs().unwrap().len(), 3);
        // With no ref left, everything goes.
        assert_eq!(collect(&layout, &[], false).unwrap().blobs.len(), 3);
        assert!(layout.blobs().unwrap().is_empty());
    }
}
