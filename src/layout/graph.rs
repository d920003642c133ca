//! What a descriptor needs: the blobs a `.ref` archive's manifest or index leads to (nested
//! indexes, manifests, configs, layers), each once, read from the layer store. The walk is
//! bounded: each digest is visited once, at most [`MAX_DESCRIPTORS`] in all, [`MAX_DEPTH`]
//! deep; documents are read up to [`super::DOCUMENT_LIMIT`] each and [`KEPT`] in all, and
//! checked against their digests.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use super::reference::is_index_type;
use super::{Layout, LayoutError, Result};
use crate::oci::{Descriptor, Document};

/// How deep indexes may nest.
const MAX_DEPTH: usize = 16;
/// How many descriptors one walk may meet.
pub const MAX_DESCRIPTORS: usize = 10_000;
/// The documents one walk keeps, in all.
const KEPT: u64 = 32 << 20;

/// What a blob is to the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A manifest or an index.
    Document,
    Config,
    Layer,
}

/// One blob a descriptor needs.
#[derive(Debug, Clone)]
pub struct Need {
    pub descriptor: Descriptor,
    pub kind: Kind,
    /// Whether the store holds it (an index may list manifests the store never had: other
    /// platforms, attestations).
    pub present: bool,
    /// Whether the image needs it (an index's children it may do without).
    pub required: bool,
}

/// The blobs a `.ref` archive's descriptor needs, the root first, documents before the blobs
/// they name.
#[derive(Debug, Clone)]
pub struct Needs {
    pub root: Descriptor,
    pub blobs: Vec<Need>,
    /// The bytes of every document and config read.
    pub documents: HashMap<String, Arc<[u8]>>,
}

impl Needs {
    /// The bytes the image's blobs take in the store (each blob once).
    pub fn size(&self) -> u64 {
        self.blobs
            .iter()
            .filter(|n| n.present)
            .map(|n| n.descriptor.size)
            .sum()
    }

    /// The digests of the blobs the store holds for it.
    pub fn digests(&self) -> impl Iterator<Item = &str> {
        self.blobs
            .iter()
            .filter(|n| n.present)
            .map(|n| n.descriptor.digest.as_str())
    }
}

/// Where a walk reads blobs from: a layout on disk, or (for an import) a layout tar's members
/// over the store they go into.
pub trait BlobSource {
    /// The folder or file errors name.
    fn root(&self) -> &std::path::Path;
    /// Whether the blob `d` names is there, of the size it gives (its bytes are not read).
    fn has(&self, d: &Descriptor) -> bool;
    /// Why the blob `d` names, which [`BlobSource::has`] says is not there, cannot be had
    /// (missing, or of the wrong size).
    fn absent(&self, d: &Descriptor) -> LayoutError;
    /// The bytes of the document blob `d` names, checked against its digest.
    fn read_document(&self, d: &Descriptor) -> Result<Vec<u8>>;
}

impl BlobSource for Layout {
    fn root(&self) -> &std::path::Path {
        Layout::root(self)
    }

    fn has(&self, d: &Descriptor) -> bool {
        Layout::has(self, d)
    }

    fn absent(&self, d: &Descriptor) -> LayoutError {
        // Opening says why: missing, or of the wrong size.
        match self.open(d) {
            Err(e) => e,
            Ok(_) => LayoutError::MissingBlob {
                root: self.root().to_path_buf(),
                digest: d.digest.clone(),
                needed_by: String::new(),
            },
        }
    }

    fn read_document(&self, d: &Descriptor) -> Result<Vec<u8>> {
        Layout::read_document(self, d)
    }
}

/// Walks what `root` needs in `layout`. The root, and every config and layer of a manifest
/// held, must be present (else [`LayoutError::MissingBlob`]); an index's children may be
/// missing.
pub fn needs(layout: &Layout, root: &Descriptor) -> Result<Needs> {
    layout.check_folders()?;
    walk(layout, root)
}

/// What `root` needs as far as `layout` holds it: the walk of [`needs`], where a blob the
/// image needs and the store lacks is listed as not present rather than an error (what a
/// download still has to fetch; the documents it cannot read yet hide what they name).
pub fn so_far(layout: &Layout, root: &Descriptor) -> Result<Needs> {
    layout.check_folders()?;
    walk_from(layout, root, false)
}

/// Walks what `root` needs in `source`, as [`needs`] does in a layout.
pub fn walk(source: &dyn BlobSource, root: &Descriptor) -> Result<Needs> {
    walk_from(source, root, true)
}

/// The walk; with `strict`, a blob the image needs and `source` lacks is an error.
fn walk_from(source: &dyn BlobSource, root: &Descriptor, strict: bool) -> Result<Needs> {
    let layout = source;
    let mut blobs: Vec<Need> = Vec::new();
    let mut documents: HashMap<String, Arc<[u8]>> = HashMap::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut kept = 0u64;
    let mut queue: VecDeque<(Descriptor, usize, bool)> = VecDeque::new();
    queue.push_back((root.clone(), 0, true));
    seen.insert(root.digest.clone());
    let too_large = |reason: String| LayoutError::TooLarge {
        root: layout.root().to_path_buf(),
        reason,
    };
    while let Some((d, depth, required)) = queue.pop_front() {
        if depth > MAX_DEPTH {
            return Err(too_large(format!(
                "indexes nest more than {MAX_DEPTH} deep"
            )));
        }
        if !layout.has(&d) {
            if required && strict {
                return Err(layout.absent(&d));
            }
            blobs.push(Need {
                descriptor: d,
                kind: Kind::Document,
                present: false,
                required,
            });
            continue;
        }
        let bytes: Arc<[u8]> = layout.read_document(&d)?.into();
        kept += bytes.len() as u64;
        if kept > KEPT {
            return Err(too_large(format!(
                "its documents take more than {KEPT} bytes"
            )));
        }
        let doc = Document::parse(&bytes).map_err(|e| LayoutError::DamagedBlob {
            root: layout.root().to_path_buf(),
            digest: d.digest.clone(),
            problem: format!("it is not a manifest or an index: {e}"),
        })?;
        documents.insert(d.digest.clone(), bytes);
        let mut children: Vec<(Descriptor, Kind, bool)> = Vec::new();
        if let Some(manifests) = &doc.manifests {
            if !is_index_type(&d.media_type) && doc.config.is_some() {
                return Err(LayoutError::DamagedBlob {
                    root: layout.root().to_path_buf(),
                    digest: d.digest.clone(),
                    problem: "it is both a manifest and an index".into(),
                });
            }
            children.extend(manifests.iter().map(|m| (m.clone(), Kind::Document, false)));
        } else {
            let config = doc.config.clone().ok_or_else(|| LayoutError::DamagedBlob {
                root: layout.root().to_path_buf(),
                digest: d.digest.clone(),
                problem: "a manifest without a config".into(),
            })?;
            children.push((config, Kind::Config, true));
            children.extend(doc.layers.iter().map(|l| (l.clone(), Kind::Layer, true)));
        }
        // Counted before any is looked up: a document naming thousands of blobs is refused
        // as too wide, whatever it names.
        if children.len() > MAX_DESCRIPTORS {
            return Err(too_large(format!(
                "it names more than {MAX_DESCRIPTORS} blobs"
            )));
        }
        blobs.push(Need {
            descriptor: d,
            kind: Kind::Document,
            present: true,
            required,
        });
        for (child, kind, required) in children {
            if !seen.insert(child.digest.clone()) {
                continue;
            }
            if seen.len() > MAX_DESCRIPTORS {
                return Err(too_large(format!(
                    "it names more than {MAX_DESCRIPTORS} blobs"
                )));
            }
            match kind {
                Kind::Document => queue.push_back((child, depth + 1, required)),
                Kind::Config | Kind::Layer if !strict && !layout.has(&child) => {
                    blobs.push(Need {
                        descriptor: child,
                        kind,
                        present: false,
                        required: true,
                    });
                }
                Kind::Config => {
                    let bytes: Arc<[u8]> = layout.read_document(&child)?.into();
                    kept += bytes.len() as u64;
                    if kept > KEPT {
                        return Err(too_large(format!(
                            "its documents take more than {KEPT} bytes"
                        )));
                    }
                    documents.insert(child.digest.clone(), bytes);
                    blobs.push(Need {
                        descriptor: child,
                        kind,
                        present: true,
                        required: true,
                    });
                }
                Kind::Layer => {
                    if !layout.has(&child) {
                        return Err(layout.absent(&child));
                    }
                    blobs.push(Need {
                        descriptor: child,
                        kind,
                        present: true,
                        required: true,
                    });
                }
            }
        }
    }
    Ok(Needs {
        root: root.clone(),
        blobs,
        documents,
    })
}

/// The digests every descriptor of `roots` leads to, as far as the store holds them: what
/// garbage collection keeps. A root whose walk fails is an error: what it needs is not known,
/// so nothing may be collected.
pub fn reachable(layout: &Layout, roots: &[Descriptor]) -> Result<HashSet<String>> {
    let mut keep = HashSet::new();
    for root in roots {
        keep.insert(root.digest.clone());
        let n = needs(layout, root)?;
        keep.extend(n.blobs.into_iter().map(|b| b.descriptor.digest));
    }
    Ok(keep)
}
