//! The ONE writer of `docker save` tars in Docker 25's layout (`blobs/sha256/…`, `index.json`,
//! `oci-layout`, and a classic `manifest.json` beside them, which every engine the project
//! starts loads): the tar pieces a pull streams, and the tar composed from the blobs of a `.ref`
//! archive in the layer store, which every reader of a `.ref` (verify, load, push, convert)
//! reads as it would a `.docker`.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;

use super::index::{Member, TarIndex};
use crate::archive::Archive;
use crate::layout::graph::Kind;
use crate::layout::{Layout, LayoutError, RefFile, index::REF_NAME};
use crate::oci::{Document, OCI_INDEX};

/// The zero bytes that pad a member of `size` bytes to a whole block.
pub fn padding(size: u64) -> usize {
    ((512 - size % 512) % 512) as usize
}

/// The header of a regular file member.
pub fn tar_header(name: &str, size: u64) -> [u8; 512] {
    let mut header = tar::Header::new_ustar();
    // Every name written here is short (`blobs/sha256/` and 64 hex digits at most).
    let _ = header.set_path(name);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut out = [0u8; 512];
    out.copy_from_slice(header.as_bytes());
    out
}

/// A whole member: header, data, padding.
pub fn tar_member(name: &str, data: &[u8]) -> Vec<u8> {
    let mut out = tar_header(name, data.len() as u64).to_vec();
    out.extend_from_slice(data);
    out.resize(out.len() + padding(data.len() as u64), 0);
    out
}

/// The end of a tar: two zero blocks.
pub const TAR_END: [u8; 1024] = [0; 1024];

/// The documents that end a `docker save` tar of one image: `manifest.json` (the classic
/// loader's), `index.json` (naming the image `tag` as containerd does) and `oci-layout`.
pub fn save_documents(
    config: &str,
    layers: &[String],
    tag: &str,
    root: &crate::oci::Descriptor,
) -> Vec<(&'static str, Vec<u8>)> {
    let layer_paths: Vec<String> = layers.iter().map(|d| super::blob_path(d)).collect();
    let manifest_json = serde_json::to_vec(&json!([{
        "Config": super::blob_path(config),
        "RepoTags": [tag],
        "Layers": layer_paths,
    }]))
    .unwrap_or_default();
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": root.media_type,
            "digest": root.digest,
            "size": root.size,
            "annotations": {
                // containerd keeps images under their fully qualified name.
                "io.containerd.image.name": qualified(tag),
                REF_NAME: tag.rsplit(':').next().unwrap_or_default(),
            },
        }],
    }))
    .unwrap_or_default();
    vec![
        ("manifest.json", manifest_json),
        ("index.json", index),
        ("oci-layout", crate::layout::MARKER_BYTES.to_vec()),
    ]
}

/// `reference` fully qualified as containerd names images (what a containerd-store engine's
/// `docker save` writes, and what its `docker load` resolves): a reference without a registry
/// gets `docker.io/`, and a one-component Docker Hub repository `library/`.
pub fn qualified(reference: &str) -> String {
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

/// Where a member's bytes come from.
#[derive(Debug, Clone)]
enum Body {
    Bytes(Arc<[u8]>),
    Blob(crate::oci::Descriptor),
}

/// One member of a composed tar.
#[derive(Debug, Clone)]
struct Piece {
    path: String,
    size: u64,
    body: Body,
}

/// The `docker save` tar of a `.ref` archive, composed from the layer store's blobs: every
/// blob its descriptor needs (documents and configs held in memory, layers read from their
/// files as the tar streams), then `manifest.json`, `index.json` and `oci-layout`.
#[derive(Debug, Clone)]
pub struct Composed {
    layout: Layout,
    pieces: Vec<Piece>,
    /// The `.ref` file.
    pub path: PathBuf,
    /// The bytes the image's blobs take in the store.
    pub stored: u64,
}

impl Composed {
    /// Composes the tar of the `.ref` archive `archive`; fails when its layout, a document or
    /// a blob is missing (blob bytes are checked by who reads the tar).
    pub fn of(archive: &Archive) -> Result<Composed, LayoutError> {
        let layout = Layout::of_ref(&archive.path)?;
        let reference = RefFile::read(&archive.path)?;
        let root = reference.descriptor();
        let needs = crate::layout::graph::needs(&layout, &root).map_err(|e| match e {
            LayoutError::MissingBlob { root, digest, .. } => LayoutError::MissingBlob {
                root,
                digest,
                needed_by: format!(" (needed by `{}`)", archive.path.display()),
            },
            other => other,
        })?;
        let mut pieces = Vec::new();
        for need in needs.blobs.iter().filter(|n| n.present) {
            let d = &need.descriptor;
            let body = match (need.kind, needs.documents.get(&d.digest)) {
                (Kind::Document | Kind::Config, Some(bytes)) => Body::Bytes(bytes.clone()),
                _ => Body::Blob(d.clone()),
            };
            pieces.push(Piece {
                path: super::blob_path(&d.digest),
                size: d.size,
                body,
            });
        }
        // The classic manifest names the image manifest (of the host's platform, when the
        // root is an index).
        let tag = format!(
            "{}:{}",
            archive.name.image,
            crate::version::docker_tag(&archive.name.version)
                .unwrap_or_else(|_| "latest".to_string())
        );
        let image = image_manifest(&needs).ok_or_else(|| LayoutError::BadRef {
            path: archive.path.clone(),
            reason: "its descriptor leads to no image (no manifest with a config)".into(),
        })?;
        let config = image.config.map(|c| c.digest).unwrap_or_default();
        let layers: Vec<String> = image.layers.into_iter().map(|l| l.digest).collect();
        for (name, bytes) in save_documents(&config, &layers, &tag, &root) {
            pieces.push(Piece {
                path: name.to_string(),
                size: bytes.len() as u64,
                body: Body::Bytes(bytes.into()),
            });
        }
        Ok(Composed {
            stored: needs.size(),
            layout,
            pieces,
            path: archive.path.clone(),
        })
    }

    /// The layer store the tar is composed from.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The index of the tar, as [`TarIndex::read_seekable`] would give it (documents kept,
    /// layers named and sized, no byte of a layer read).
    pub fn index(&self) -> TarIndex {
        let mut index = TarIndex::default();
        for piece in &self.pieces {
            if let Body::Bytes(bytes) = &piece.body {
                index.small.insert(piece.path.clone(), bytes.to_vec());
            }
            index.members.insert(
                piece.path.clone(),
                Member::File {
                    offset: 0,
                    size: piece.size,
                    digest: None,
                },
            );
        }
        index
    }

    /// The bytes of the member at `path` (a blob), read from the store.
    pub fn open(&self, path: &str) -> Result<Box<dyn Read + Send>, LayoutError> {
        let piece = self.pieces.iter().find(|p| p.path == path).ok_or_else(|| {
            LayoutError::MissingBlob {
                root: self.layout.root().to_path_buf(),
                digest: path.to_string(),
                needed_by: format!(" (needed by `{}`)", self.path.display()),
            }
        })?;
        match &piece.body {
            Body::Bytes(bytes) => Ok(Box::new(io::Cursor::new(bytes.clone()))),
            Body::Blob(d) => Ok(Box::new(Exact::new(self.layout.open(d)?, d)?)),
        }
    }

    /// The tar without the members at `paths` (layers an engine holds: their blobs are then
    /// never read).
    pub fn without(&self, paths: &std::collections::HashSet<String>) -> Composed {
        let mut thin = self.clone();
        thin.pieces.retain(|p| !paths.contains(&p.path));
        thin
    }

    /// The whole tar as a stream.
    pub fn reader(&self) -> ComposedReader {
        ComposedReader {
            composed: self.clone(),
            next: 0,
            current: None,
            ended: false,
        }
    }

    /// The size of the whole tar.
    pub fn tar_size(&self) -> u64 {
        self.pieces
            .iter()
            .map(|p| 512 + p.size + padding(p.size) as u64)
            .sum::<u64>()
            + TAR_END.len() as u64
    }
}

/// The first image manifest the walk read (under an index: of the host's platform when the
/// index says, else the first that is not an attestation).
pub fn image_manifest(needs: &crate::layout::Needs) -> Option<Document> {
    let host = crate::oci::Platform::host();
    let mut candidates: Vec<(&crate::oci::Descriptor, Document)> = needs
        .blobs
        .iter()
        .filter(|n| n.present && n.kind == Kind::Document)
        .filter_map(|n| {
            let doc = Document::parse(needs.documents.get(&n.descriptor.digest)?).ok()?;
            (doc.config.is_some() && doc.manifests.is_none()).then_some((&n.descriptor, doc))
        })
        .collect();
    let attestation = |d: &crate::oci::Descriptor| {
        d.annotations
            .get("vnd.docker.reference.type")
            .is_some_and(|t| t == "attestation-manifest")
    };
    candidates.sort_by_key(|(d, _)| {
        let platform_ok = d.platform.as_ref().is_none_or(|p| host.matches(p));
        (attestation(d), !platform_ok)
    });
    candidates.into_iter().next().map(|(_, doc)| doc)
}

/// A blob file held to its descriptor's size: one that ends early is an error naming it.
struct Exact {
    file: io::Take<io::BufReader<File>>,
    left: u64,
    digest: String,
}

impl Exact {
    fn new(file: File, d: &crate::oci::Descriptor) -> Result<Exact, LayoutError> {
        Ok(Exact {
            file: io::BufReader::with_capacity(1 << 20, file).take(d.size),
            left: d.size,
            digest: d.digest.clone(),
        })
    }
}

impl Read for Exact {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the blob {} ended {} bytes before its size",
                    self.digest, self.left
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A [`Composed`] tar, read as a stream; memory is one member's header and one read buffer.
pub struct ComposedReader {
    composed: Composed,
    next: usize,
    current: Option<Box<dyn Read + Send>>,
    ended: bool,
}

impl Read for ComposedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(current) = &mut self.current {
                let n = current.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                self.current = None;
            }
            if self.ended {
                return Ok(0);
            }
            let Some(piece) = self.composed.pieces.get(self.next) else {
                self.current = Some(Box::new(io::Cursor::new(TAR_END)));
                self.ended = true;
                continue;
            };
            self.next += 1;
            let header = io::Cursor::new(tar_header(&piece.path, piece.size));
            let pad = io::Cursor::new(vec![0u8; padding(piece.size)]);
            let body: Box<dyn Read + Send> =
                match &piece.body {
                    Body::Bytes(b) => Box::new(io::Cursor::new(b.clone())),
                    Body::Blob(d) => {
                        let file = self.composed.layout.open(d).map_err(|e| {
                            io::Error::new(io::ErrorKind::InvalidData, e.to_string())
                        })?;
                        Box::new(Exact::new(file, d).map_err(|e| {
                            io::Error::new(io::ErrorKind::InvalidData, e.to_string())
                        })?)
                    }
                };
            self.current = Some(Box::new(header.chain(body).chain(pad)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_members_are_padded() {
        let member = tar_member("blobs/sha256/x", b"hello");
        assert_eq!(member.len(), 1024);
        let mut all = member.to_vec();
        all.extend_from_slice(&TAR_END);
        let mut archive = tar::Archive::new(all.as_slice());
        let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
        let mut data = String::new();
        entry.read_to_string(&mut data).unwrap();
        assert_eq!(data, "hello");
    }

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
