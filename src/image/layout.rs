//! The two layouts a `docker save` tar comes in, read from its [`TarIndex`]: the classic one
//! (`manifest.json` naming `<config>.json` and `<layer>/layer.tar`) and the OCI image layout of
//! Docker 25 and later (`index.json` → manifest, through nested indexes → config, `blobs/…`).

use serde::Deserialize;
use serde_json::Value;

use super::ImageError;
use super::index::{TarIndex, blob_path};
use super::info::{ImageInfo, LayerInfo, ManifestRef};
use crate::digest::sha256;
use crate::oci::Document;

/// How deep OCI indexes may nest.
const MAX_DEPTH: usize = 16;

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
            for image in &mut images {
                image.manifests = self.manifests_of(&image.id);
            }
        }
        Ok(images)
    }

    /// The chain of descriptors from `index.json` down to the image manifest whose config is
    /// `config_digest` (the first such chain), outermost first.
    pub(crate) fn manifests_of(&self, config_digest: &str) -> Vec<ManifestRef> {
        let Some(top) = self
            .document("index.json")
            .and_then(|b| Document::parse(b).ok())
        else {
            return Vec::new();
        };
        let mut chain = Vec::new();
        self.find_chain(&top, config_digest, 0, &mut chain);
        chain
    }

    fn find_chain(
        &self,
        doc: &Document,
        config_digest: &str,
        depth: usize,
        chain: &mut Vec<ManifestRef>,
    ) -> bool {
        if depth >= MAX_DEPTH {
            return false;
        }
        let Some(list) = &doc.manifests else {
            return false;
        };
        let children: Vec<(&crate::oci::Descriptor, Option<Document>)> = list
            .iter()
            .map(|d| {
                let parsed = self
                    .document(&blob_path(&d.digest))
                    .and_then(|b| Document::parse(b).ok());
                (d, parsed)
            })
            .collect();
        let attestation = |d: &crate::oci::Descriptor| {
            d.annotations
                .get("vnd.docker.reference.type")
                .is_some_and(|t| t == "attestation-manifest")
        };
        let attestations = children.iter().filter(|(d, _)| attestation(d)).count();
        let images = children.len() - attestations;
        for (descriptor, parsed) in &children {
            let Some(child) = parsed else { continue };
            let reference = ManifestRef {
                digest: descriptor.digest.clone(),
                media_type: child
                    .media_type
                    .clone()
                    .unwrap_or_else(|| descriptor.media_type.clone()),
                platform: descriptor.platform.as_ref().map(|p| {
                    let mut text = format!("{}/{}", p.os, p.architecture);
                    if let Some(v) = &p.variant {
                        text.push('/');
                        text.push_str(v);
                    }
                    text
                }),
                is_index: child.manifests.is_some(),
                siblings: images.saturating_sub(1),
                attestations,
            };
            if child
                .config
                .as_ref()
                .is_some_and(|c| c.digest == config_digest)
            {
                chain.push(reference);
                return true;
            }
            if child.manifests.is_some() {
                chain.push(reference);
                if self.find_chain(child, config_digest, depth + 1, chain) {
                    return true;
                }
                chain.pop();
            }
        }
        false
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
                    self.build(&entry.config, entry.repo_tags.unwrap_or_default(), layers)
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
            let bytes = self
                .document(path)
                .ok_or_else(|| ImageError::MissingDocument(path.to_string()))?;
            serde_json::from_slice(bytes).map_err(|source| ImageError::BadOciDocument {
                path: path.to_string(),
                source,
            })
        };
        let mut doc = parse("index.json")?;
        let mut tags = Vec::new();
        for _ in 0..MAX_DEPTH {
            if let Some(config) = &doc.config {
                let layers = doc
                    .layers
                    .iter()
                    .map(|l| (blob_path(&l.digest), l.size))
                    .collect();
                return self.build(&blob_path(&config.digest), tags, layers);
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
            doc = parse(&blob_path(&first.digest))?;
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
    ) -> Result<ImageInfo, ImageError> {
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
        let config: Value =
            serde_json::from_slice(bytes).map_err(|source| ImageError::BadConfig {
                path: config_path.to_string(),
                source,
            })?;
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
            id: sha256(bytes),
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
            config_bytes: bytes.to_vec(),
            manifests: Vec::new(),
        })
    }
}
