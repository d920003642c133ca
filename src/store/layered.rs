//! The layer stores under an artifacts directory and the `.ref` archives that use each: what
//! keeps `index.json` in step with the `.ref` files, what garbage collection may take, what an
//! image's `.ref` archives take on disk, and which archives use a blob.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::Store;
use crate::archive::Archive;
use crate::layout::gc::{self, Collected};
use crate::layout::{Layout, LayoutError, RefFile, graph};
use crate::name::Format;

/// One layer store and the `.ref` archives that use it.
#[derive(Debug)]
pub struct LayerStore<'a> {
    pub layout: Layout,
    pub refs: Vec<&'a Archive>,
}

impl Store {
    /// Every layer store the `.ref` archives use (each `.ref` uses the nearest folder at or
    /// above it holding `oci-layout`), and the artifacts directory's own when it is one.
    pub fn layer_stores(&self) -> Vec<LayerStore<'_>> {
        let mut by_root: BTreeMap<PathBuf, Vec<&Archive>> = BTreeMap::new();
        if let Ok(own) = Layout::of_ref(&self.dir().join("x.ref"))
            && own.root() == std::path::absolute(self.dir()).unwrap_or_default()
        {
            by_root.entry(own.root().to_path_buf()).or_default();
        }
        for a in self.all().iter().filter(|a| a.name.format == Format::Ref) {
            if let Ok(layout) = Layout::of_ref(&a.path) {
                by_root
                    .entry(layout.root().to_path_buf())
                    .or_default()
                    .push(a);
            }
        }
        by_root
            .into_iter()
            .map(|(root, refs)| LayerStore {
                layout: Layout::at(&root),
                refs,
            })
            .collect()
    }

    /// The layer store `layout`, with every `.ref` under the artifacts directory that uses it;
    /// `None` when it is not one of [`Store::layer_stores`].
    pub fn layer_store(&self, layout: &Layout) -> Option<LayerStore<'_>> {
        self.layer_stores()
            .into_iter()
            .find(|s| s.layout == *layout)
    }
}

impl LayerStore<'_> {
    /// The `.ref` archives that remain once `gone` are removed, with what each holds; the
    /// first that cannot be read is an error (nothing can be said of the blobs it needs).
    fn remaining(&self, gone: &HashSet<&Path>) -> Result<Vec<(&Archive, RefFile)>, LayoutError> {
        self.refs
            .iter()
            .filter(|a| !gone.contains(a.path.as_path()))
            .map(|a| RefFile::read(&a.path).map(|r| (*a, r)))
            .collect()
    }

    /// Rewrites `index.json` from the `.ref` archives that remain once `gone` are removed
    /// (those that cannot be read are left out of it).
    pub fn rewrite_index(&self, gone: &HashSet<&Path>) -> Result<(), LayoutError> {
        let entries: Vec<(String, RefFile)> = self
            .refs
            .iter()
            .filter(|a| !gone.contains(a.path.as_path()))
            .filter_map(|a| {
                let stem = a.file_name().strip_suffix(".ref")?.to_string();
                Some((stem, RefFile::read(&a.path).ok()?))
            })
            .collect();
        crate::layout::index::write(&self.layout, &entries)
    }

    /// Removes (or with `dry_run`, lists) the blobs that no `.ref` remaining once `gone` are
    /// removed needs. A `.ref` that cannot be read stops the collection (its blobs are not
    /// known): the error says which.
    pub fn collect(&self, gone: &HashSet<&Path>, dry_run: bool) -> Result<Collected, LayoutError> {
        let mut roots: Vec<_> = self
            .remaining(gone)?
            .into_iter()
            .map(|(_, r)| r.descriptor())
            .collect();
        // What other tools listed in `index.json` stays too.
        roots.extend(crate::layout::index::foreign_roots(&self.layout)?);
        gc::collect(&self.layout, &roots, dry_run)
    }

    /// The blobs each `.ref` needs (those that cannot be read are left out).
    pub fn needs(&self) -> HashMap<PathBuf, graph::Needs> {
        self.refs
            .iter()
            .filter_map(|a| {
                let r = RefFile::read(&a.path).ok()?;
                let needs = graph::needs(&self.layout, &r.descriptor()).ok()?;
                Some((a.path.clone(), needs))
            })
            .collect()
    }

    /// The `.ref` archives whose descriptor leads to the blob `digest`.
    pub fn users(&self, digest: &str) -> Vec<PathBuf> {
        let mut users: Vec<PathBuf> = self
            .refs
            .iter()
            .filter(|a| {
                RefFile::read(&a.path).is_ok_and(|r| {
                    graph::reachable(&self.layout, &[r.descriptor()])
                        .is_ok_and(|keep| keep.contains(digest))
                        // A blob damaged beyond reading is found by its name in the documents.
                        || graph::needs(&self.layout, &r.descriptor()).is_err()
                            && names(&self.layout, &r.descriptor(), digest)
                })
            })
            .map(|a| a.path.clone())
            .collect();
        users.sort();
        users
    }
}

/// Whether a document of the store that `root` leads to names `digest` (read leniently: the
/// blob may be what broke the walk).
fn names(layout: &Layout, root: &crate::oci::Descriptor, digest: &str) -> bool {
    let Some(path) = layout.blob_path(&root.digest) else {
        return false;
    };
    crate::regular::read(&path, crate::layout::DOCUMENT_LIMIT)
        .ok()
        .flatten()
        .is_some_and(|bytes| {
            root.digest == digest
                || String::from_utf8_lossy(&bytes).contains(crate::digest::hex_part(digest))
        })
}
