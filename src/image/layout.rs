//! The two layouts a `docker save` tar comes in, read from its [`TarIndex`]: the classic one
//! (`manifest.json` naming `<config>.json` and `<layer>/layer.tar`) and the OCI image layout of
//! Docker 25 and later (`index.json` → manifest, through nested indexes → config, `blobs/…`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::ImageError;
use super::index::{TarIndex, blob_path};
use super::info::{ImageInfo, LayerInfo, ManifestRef};
use crate::digest::sha256;
use crate::oci::Document;

/// How deep OCI indexes may nest.
const MAX_DEPTH: usize = 16;
/// How many descriptors the indexes of one layout may list in all.
pub const MAX_DESCRIPTORS: usize = 10_000;

/// The manifests and indexes of a layout, each once, with the index that lists it.
#[derive(Debug, Default)]
struct Graph {
    nodes: Vec<Node>,
}

#[derive(Debug)]
struct Node {
    parent: Option<usize>,
    /// The config digest, for an image manifest.
    config: Option<String>,
    reference: ManifestRef,
}

impl Graph {
    /// The chain from `index.json` to the first image manifest whose config is
    /// `config_digest`, outermost first (empty when there is none).
    fn chain_to(&self, config_digest: &str) -> Vec<ManifestRef> {
        let Some(mut at) = self
            .nodes
            .iter()
            .position(|n| n.config.as_deref() == Some(config_digest))
        else {
            return Vec::new();
        };
        let mut chain = vec![self.nodes[at].reference.clone()];
        while let Some(parent) = self.nodes[at].parent {
            chain.push(self.nodes[parent].reference.clone());
            at = parent;
        }
        chain.reverse();
        chain
    }
}

/// Checks that the blob at `path` has the digest and size its descriptor gives.
fn check_blob(
    path: &str,
    bytes: &[u8],
    descriptor: &crate::oci::Descriptor,
) -> Result<(), ImageError> {
    let found = sha256(bytes);
    if found != descriptor.digest {
        return Err(ImageError::BlobDigest {
            path: path.to_string(),
            found,
        });
    }
    if bytes.len() as u64 != descriptor.size {
        return Err(ImageError::BlobSize {
            path: path.to_string(),
            declared: descriptor.size,
            found: bytes.len() as u64,
        });
    }
    Ok(())
}

/// One image in `manifest.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ManifestEntry {
    pub config: String,
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    pub layers: Vec<String>,
}

impl TarIndex {
    /// The first image the tar holds (the one an archive is named after).
    pub fn image(&self) -> Result<ImageInfo, ImageError> {
        self.read_images(1)?
            .into_iter()
            .next()
            .ok_or(ImageError::NoImage)
    }

    /// Every image the tar holds: each entry of `manifest.json` or, when there is none, the
    /// image `index.json` leads to.
    pub fn images(&self) -> Result<Vec<ImageInfo>, ImageError> {
        self.read_images(usize::MAX)
    }

    /// The first `count` images the tar holds (the others are not read), each with the
    /// manifests and indexes of `index.json` that lead to it.
    fn read_images(&self, count: usize) -> Result<Vec<ImageInfo>, ImageError> {
        let mut images = self.read_image_configs(count)?;
        if self.contains("index.json") {
            let graph = self.graph()?;
            for image in &mut images {
                image.manifests = graph.chain_to(&image.id);
            }
        }
        Ok(images)
    }

    /// The manifests and indexes of the layout, from `index.json` down: each descriptor is
    /// visited once (an index that lists another many times, or itself, costs no more), at most
    /// [`MAX_DESCRIPTORS`] in all, [`MAX_DEPTH`] deep. A child held in the tar whose bytes do not
    /// have its descriptor's digest and size is damage; one the tar does not hold (another
    /// platform's, not saved) is passed over.
    fn graph(&self) -> Result<Graph, ImageError> {
        let mut graph = Graph::default();
        let Some(top) = self
            .document("index.json")
            .and_then(|b| Document::parse(b).ok())
        else {
            return Ok(graph);
        };
        let mut seen: HashSet<String> = HashSet::new();
        let mut visited = 0usize;
        self.visit(&top, None, 0, &mut graph, &mut seen, &mut visited)?;
        Ok(graph)
    }

    /// Adds the children of `doc` (and theirs, depth first, in each index's order) to `graph`.
    fn visit(
        &self,
        doc: &Document,
        parent: Option<usize>,
        depth: usize,
        graph: &mut Graph,
        seen: &mut HashSet<String>,
        visited: &mut usize,
    ) -> Result<(), ImageError> {
        let Some(list) = &doc.manifests else {
            return Ok(());
        };
        if depth >= MAX_DEPTH {
            return Err(ImageError::TooDeep);
        }
        let attestation = |d: &crate::oci::Descriptor| {
            d.annotations
                .get("vnd.docker.reference.type")
                .is_some_and(|t| t == "attestation-manifest")
        };
        let attestations = list.iter().filter(|d| attestation(d)).count();
        let images = list.len() - attestations;
        for descriptor in list {
            *visited += 1;
            if *visited > MAX_DESCRIPTORS {
                return Err(ImageError::TooManyDescriptors(MAX_DESCRIPTORS));
            }
            if !seen.insert(descriptor.digest.clone()) {
                continue;
            }
            let path = blob_path(&descriptor.digest);
            let Some(bytes) = self.document(&path) else {
                continue;
            };
            check_blob(&path, bytes, descriptor)?;
            let Ok(child) = Document::parse(bytes) else {
                continue;
            };
            let node = graph.nodes.len();
            graph.nodes.push(Node {
                parent,
                config: child.config.as_ref().map(|c| c.digest.clone()),
                reference: ManifestRef {
                    digest: descriptor.digest.clone(),
                    media_type: child
                        .media_type
                        .clone()
                        .unwrap_or_else(|| descriptor.media_type.clone()),
                    platform: descriptor.platform.as_ref().map(|p| p.to_string()),
                    is_index: child.manifests.is_some(),
                    siblings: images.saturating_sub(1),
                    attestations,
                },
            });
            self.visit(&child, Some(node), depth + 1, graph, seen, visited)?;
        }
        Ok(())
    }

    /// The first `count` images of `manifest.json` or, when there is none, the one image
    /// `index.json` leads to.
    fn read_image_configs(&self, count: usize) -> Result<Vec<ImageInfo>, ImageError> {
        if let Some(bytes) = self.document("manifest.json") {
            let manifest: Vec<ManifestEntry> =
                serde_json::from_slice(bytes).map_err(ImageError::BadManifest)?;
            if manifest.is_empty() {
                return Err(ImageError::NoImage);
            }
            // One parsed copy of each config, however many images name it.
            let mut configs = Configs::new();
            return manifest
                .into_iter()
                .take(count)
                .map(|entry| {
                    let layers = entry
                        .layers
                        .iter()
                        .map(|l| {
                            self.file(l)
                                .map(|f| (l.clone(), f.size))
                                .ok_or_else(|| ImageError::MissingLayer(l.clone()))
                        })
                        .collect::<Result<_, _>>()?;
                    self.build(
                        &entry.config,
                        entry.repo_tags.unwrap_or_default(),
                        layers,
                        &mut configs,
                    )
                })
                .collect();
        }
        if self.contains("index.json") {
            return self.oci_image().map(|image| vec![image]);
        }
        Err(ImageError::NotAnImage)
    }

    /// Reads an OCI image layout: `index.json` → manifest (through nested indexes) → config.
    fn oci_image(&self) -> Result<ImageInfo, ImageError> {
        let parse = |path: &str| -> Result<Document, ImageError> {
            let bytes = self.document(path).ok_or_else(|| match self.file(path) {
                Some(file) => ImageError::DocumentTooLarge {
                    path: path.to_string(),
                    size: file.size,
                },
                None => ImageError::MissingDocument(path.to_string()),
            })?;
            serde_json::from_slice(bytes).map_err(|source| ImageError::BadOciDocument {
                path: path.to_string(),
                source,
            })
        };
        let mut doc = parse("index.json")?;
        let mut tags = Vec::new();
        for _ in 0..MAX_DEPTH {
            if let Some(config) = &doc.config {
                let config_path = blob_path(&config.digest);
                if let Some(bytes) = self.document(&config_path) {
                    check_blob(&config_path, bytes, config)?;
                }
                let layers = doc
                    .layers
                    .iter()
                    .map(|l| {
                        let path = blob_path(&l.digest);
                        match self.file(&path) {
                            Some(f) if f.size != l.size => Err(ImageError::BlobSize {
                                path,
                                declared: l.size,
                                found: f.size,
                            }),
                            _ => Ok((path, l.size)),
                        }
                    })
                    .collect::<Result<_, _>>()?;
                return self.build(&config_path, tags, layers, &mut Configs::new());
            }
            let first = doc
                .manifests
                .as_ref()
                .and_then(|m| m.first())
                .ok_or(ImageError::EmptyIndex)?;
            let ann = &first.annotations;
            if tags.is_empty()
                && let Some(name) = ann
                    .get("io.containerd.image.name")
                    .or_else(|| ann.get("org.opencontainers.image.ref.name"))
            {
                tags.push(name.clone());
            }
            let path = blob_path(&first.digest);
            if let Some(bytes) = self.document(&path) {
                check_blob(&path, bytes, first)?;
            }
            doc = parse(&path)?;
        }
        Err(ImageError::TooDeep)
    }

    /// The image whose config is at `config_path`, with these tags and layers (path and size
    /// as stored).
    fn build(
        &self,
        config_path: &str,
        repo_tags: Vec<String>,
        layers: Vec<(String, u64)>,
        configs: &mut Configs,
    ) -> Result<ImageInfo, ImageError> {
        if let Some((config, bytes)) = configs.get(config_path) {
            return image_of(
                config.clone(),
                bytes.clone(),
                config_path,
                repo_tags,
                layers,
            );
        }
        let bytes = match (self.document(config_path), self.file(config_path)) {
            (Some(bytes), _) => bytes,
            // Only small documents are kept: a larger "config" is no image config.
            (None, Some(file)) => {
                return Err(ImageError::ConfigTooLarge {
                    path: config_path.to_string(),
                    size: file.size,
                });
            }
            (None, None) => return Err(ImageError::MissingConfig(config_path.to_string())),
        };
        let config: Arc<Value> =
            Arc::new(
                serde_json::from_slice(bytes).map_err(|source| ImageError::BadConfig {
                    path: config_path.to_string(),
                    source,
                })?,
            );
        let bytes: Arc<[u8]> = Arc::from(bytes);
        configs.insert(config_path.to_string(), (config.clone(), bytes.clone()));
        image_of(config, bytes, config_path, repo_tags, layers)
    }
}

/// The configs read so far, parsed, by path.
type Configs = HashMap<String, (Arc<Value>, Arc<[u8]>)>;

/// The image of a config, with these tags and layers (path and size as stored).
fn image_of(
    config: Arc<Value>,
    bytes: Arc<[u8]>,
    config_path: &str,
    repo_tags: Vec<String>,
    layers: Vec<(String, u64)>,
) -> Result<ImageInfo, ImageError> {
    let diff_ids: Vec<String> = config
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if diff_ids.len() != layers.len() {
        return Err(ImageError::LayerCount {
            layers: layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    Ok(ImageInfo {
        id: sha256(&bytes),
        repo_tags,
        layers: layers
            .into_iter()
            .zip(diff_ids)
            .map(|((path, size), diff_id)| LayerInfo {
                diff_id,
                size,
                path,
            })
            .collect(),
        config,
        config_path: config_path.to_string(),
        config_bytes: bytes,
        manifests: Vec::new(),
    })
}
