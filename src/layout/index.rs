//! The layout's `index.json`, derived from the `.ref` archives that use the layout: one
//! descriptor per archive, annotated `org.opencontainers.image.ref.name` with the archive's
//! file stem (`web_1.2.4_0123456789ab`), so that `skopeo inspect oci:DIR:web_1.2.4_0123456789ab`
//! finds it. It is rewritten atomically, and can always be rebuilt from the `.ref` files: the
//! `.ref` files are the truth, `index.json` is their table of contents for other tools.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::json;

use super::reference::RefFile;
use super::{Layout, Result};
use crate::commit::AtomicFile;
use crate::io_error::IoContext;
use crate::oci::OCI_INDEX;

/// The file name.
pub const INDEX: &str = "index.json";
/// The annotation that names an image in a layout.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Writes `index.json` listing `refs` (file stem and what the `.ref` holds), sorted by stem.
pub fn write(layout: &Layout, refs: &[(String, RefFile)]) -> Result<()> {
    let sorted: BTreeMap<&str, &RefFile> = refs.iter().map(|(s, r)| (s.as_str(), r)).collect();
    let manifests: Vec<serde_json::Value> = sorted
        .into_iter()
        .map(|(stem, r)| {
            json!({
                "mediaType": r.media_type,
                "digest": r.digest,
                "size": r.size,
                "annotations": { REF_NAME: stem },
            })
        })
        .collect();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    let mut bytes = serde_json::to_vec_pretty(&index).unwrap_or_default();
    bytes.push(b'\n');
    let path = layout.root().join(INDEX);
    let mut file = AtomicFile::create(&path)?;
    file.write_all(&bytes).at(&path)?;
    file.commit()?;
    Ok(())
}

/// Whether `index.json` lists the `.ref` archive named `file_name` (by its stem).
pub fn lists(layout: &Layout, file_name: &str) -> bool {
    let Some(stem) = file_name.strip_suffix(".ref") else {
        return false;
    };
    let path = layout.root().join(INDEX);
    let Ok(Some(bytes)) = crate::regular::read(&path, super::DOCUMENT_LIMIT) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&bytes).is_ok_and(|index| {
        index["manifests"].as_array().is_some_and(|m| {
            m.iter()
                .any(|d| d["annotations"][REF_NAME].as_str() == Some(stem))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_names_each_ref_by_its_stem() {
        let d = tempfile::tempdir().unwrap();
        let layout = Layout::create(d.path()).unwrap();
        let r = RefFile {
            media_type: crate::oci::OCI_MANIFEST.into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            size: 5,
        };
        write(&layout, &[("web_1_0123456789ab".into(), r)]).unwrap();
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.path().join(INDEX)).unwrap()).unwrap();
        assert_eq!(
            index["manifests"][0]["annotations"][REF_NAME],
            "web_1_0123456789ab"
        );
        assert_eq!(index["manifests"][0]["size"], 5);
    }
}
