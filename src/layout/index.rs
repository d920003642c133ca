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

/// The entries of the layout's `index.json` that name no `.ref` archive (another tool's: an
/// image copied in with skopeo): kept as they are when `index.json` is rewritten, and their
/// blobs kept by garbage collection.
pub fn foreign_entries(layout: &Layout) -> Result<Vec<serde_json::Value>> {
    let Some(index) = read(layout)? else {
        return Ok(Vec::new());
    };
    let bad = |reason: String| super::LayoutError::BadIndex {
        path: layout.root().join(INDEX),
        reason,
    };
    let entries = match &index["manifests"] {
        serde_json::Value::Null => return Ok(Vec::new()),
        serde_json::Value::Array(entries) => entries.clone(),
        _ => return Err(bad("`manifests` is not a list".into())),
    };
    Ok(entries
        .into_iter()
        .filter(|e| {
            let ours = e["annotations"][REF_NAME].as_str().is_some_and(|stem| {
                crate::name::ArchiveName::parse(&format!("{stem}.ref"))
                    .is_some_and(|n| n.format == crate::name::Format::Ref)
            });
            !ours
        })
        .collect())
}

/// The descriptors of [`foreign_entries`]; one that is not a valid descriptor is an error
/// (what it needs cannot be known).
pub fn foreign_roots(layout: &Layout) -> Result<Vec<crate::oci::Descriptor>> {
    foreign_entries(layout)?
        .into_iter()
        .map(|e| {
            serde_json::from_value(e).map_err(|err| super::LayoutError::BadIndex {
                path: layout.root().join(INDEX),
                reason: format!("an entry that names no .ref archive is no descriptor: {err}"),
            })
        })
        .collect()
}

/// Writes `index.json` listing `refs` (file stem and what the `.ref` holds), sorted by stem,
/// after the entries of other tools it held.
pub fn write(layout: &Layout, refs: &[(String, RefFile)]) -> Result<()> {
    let sorted: BTreeMap<&str, &RefFile> = refs.iter().map(|(s, r)| (s.as_str(), r)).collect();
    let mut manifests = foreign_entries(layout)?;
    manifests.extend(sorted.into_iter().map(|(stem, r)| {
        json!({
            "mediaType": r.media_type,
            "digest": r.digest,
            "size": r.size,
            "annotations": { REF_NAME: stem },
        })
    }));
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
    read(layout).ok().flatten().is_some_and(|index| {
        index["manifests"].as_array().is_some_and(|m| {
            m.iter()
                .any(|d| d["annotations"][REF_NAME].as_str() == Some(stem))
        })
    })
}

/// The layout's `index.json`, parsed; `None` when there is none.
fn read(layout: &Layout) -> Result<Option<serde_json::Value>> {
    let path = layout.root().join(INDEX);
    let Some(bytes) = crate::regular::read(&path, super::DOCUMENT_LIMIT)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| super::LayoutError::BadIndex {
            path,
            reason: e.to_string(),
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
        // Another tool's entry stays, and is kept as a root.
        let foreign = serde_json::json!({
            "mediaType": crate::oci::OCI_MANIFEST,
            "digest": format!("sha256:{}", "b".repeat(64)),
            "size": 7,
            "annotations": { REF_NAME: "latest" },
        });
        let mut with_foreign = index.clone();
        with_foreign["manifests"]
            .as_array_mut()
            .unwrap()
            .push(foreign.clone());
        std::fs::write(d.path().join(INDEX), with_foreign.to_string()).unwrap();
        write(&layout, &[]).unwrap();
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.path().join(INDEX)).unwrap()).unwrap();
        assert_eq!(index["manifests"].as_array().unwrap(), &vec![foreign]);
        assert_eq!(foreign_roots(&layout).unwrap().len(), 1);
    }
}
