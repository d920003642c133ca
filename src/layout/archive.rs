//! A layout as one tar (`export` writes it, `import` reads it): `oci-layout`, `index.json`,
//! `blobs/sha256/…`, and a classic `manifest.json` beside them as `docker save` writes since
//! Docker 25, so that `docker load` of a bundle works on every engine and skopeo reads it as an
//! `oci-archive:`.
//!
//! Each image of the tar is one entry of `index.json`, annotated with its archive's name
//! ([`ARCHIVE`]) and its engine name (`io.containerd.image.name`, and `IMAGE:TAG` as its
//! `ref.name`). A delta leaves out the blobs of the versions it was made against and names
//! them at the top of `index.json` ([`BASE`]).
//!
//! Reading is for untrusted files: the first pass ([`scan`]) reads only headers and the small
//! JSON blobs (bounded in number and bytes, each checked against its digest), and refuses
//! links, paths outside the layout and members the layout has no place for; the second pass
//! ([`copy_blobs`]) streams the blobs asked for into the store, each checked against its digest
//! before it gets its name.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde_json::json;

use super::graph::{BlobSource, MAX_DESCRIPTORS, Needs};
use super::index::REF_NAME;
use super::{DOCUMENT_LIMIT, Layout, LayoutError, MARKER, MARKER_BYTES};
use crate::digest::{self, HashingReader};
use crate::image::write::{TAR_END, padding, qualified, tar_header};
use crate::oci::{Descriptor, OCI_INDEX};

/// The annotation of an `index.json` entry that gives the name of the archive it was
/// exported from (`web_1.2.4_a24ee68eef8e`): what `import` names the `.ref` it writes.
pub const ARCHIVE: &str = "io.toolbox.archive";
/// The annotation of `index.json` itself that names the archives a delta was made against
/// (their blobs are left out), separated by `, `.
pub const BASE: &str = "io.toolbox.base";
/// The annotation by which the containerd image store names an image it loads.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// How many members a layout tar may have.
pub const MAX_MEMBERS: usize = MAX_DESCRIPTORS + 16;
/// The JSON blobs kept from one tar, in all.
pub const KEPT: u64 = 32 << 20;
/// The first bytes of a zstd frame.
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// What is wrong with a layout tar, or with writing one.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(
        "`{}` is neither a .tar nor a .tar.zst file name: name the file FILE.tar (a layout tar) \
         or FILE.tar.zst (compressed with zstd)",
        path.display()
    )]
    UnknownEnding { path: PathBuf },

    #[error("`{}` is not a layout tar: {reason}", file.display())]
    NotALayout { file: PathBuf, reason: String },

    #[error(
        "`{}` is refused: the member `{member}` {reason}; nothing was written",
        file.display()
    )]
    BadMember {
        file: PathBuf,
        member: String,
        reason: String,
    },

    #[error("`{}` is refused: {reason}; nothing was written", file.display())]
    TooLarge { file: PathBuf, reason: String },

    #[error("`{}` has no valid index.json: {reason}", file.display())]
    BadIndex { file: PathBuf, reason: String },

    #[error(
        "`{}` needs blob {digest}, which neither it nor the layer store `{}` holds: {what}; \
         nothing was written",
        file.display(),
        store.display()
    )]
    MissingBase {
        file: PathBuf,
        store: PathBuf,
        digest: String,
        /// What to do: import the base versions first (named), or get a whole bundle.
        what: String,
    },

    #[error(
        "`{}`: the entry for `{name}` is no image of that ID ({reason}); nothing was written",
        file.display()
    )]
    WrongName {
        file: PathBuf,
        name: String,
        reason: String,
    },

    #[error(
        "`{}` changed while it was read: blob {digest} {reason}; no archive was written (the \
         blobs copied are unreferenced: `clean` removes them)",
        file.display()
    )]
    Changed {
        file: PathBuf,
        digest: String,
        reason: String,
    },

    #[error("writing the layout tar `{}`: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("reading `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(transparent)]
    Layout(#[from] LayoutError),
}

type Result<T> = std::result::Result<T, BundleError>;

/// How a layout tar is stored, from its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleFormat {
    Tar,
    /// The tar compressed with zstd.
    TarZst,
}

impl BundleFormat {
    /// The format a file name asks for; refused for any ending but `.tar` and `.tar.zst`.
    pub fn of(path: &Path) -> Result<BundleFormat> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.len() > ".tar.zst".len() && name.ends_with(".tar.zst") {
            Ok(BundleFormat::TarZst)
        } else if name.len() > ".tar".len() && name.ends_with(".tar") {
            Ok(BundleFormat::Tar)
        } else {
            Err(BundleError::UnknownEnding {
                path: path.to_path_buf(),
            })
        }
    }
}

/// One image to write into a layout tar.
#[derive(Debug, Clone)]
pub struct BundleImage {
    /// The archive's name without its extension (`web_1.2.4_a24ee68eef8e`).
    pub stem: String,
    /// `IMAGE:TAG`, as `docker load` tags it.
    pub tag: String,
    /// The layout its blobs are in.
    pub layout: Layout,
    /// What its descriptor needs there.
    pub needs: Needs,
}

/// What [`write`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// The blobs in the tar.
    pub blobs: usize,
    /// Their bytes.
    pub blob_bytes: u64,
    /// The blobs left out (the base holds them).
    pub left_out: usize,
}

/// Writes the layout tar of `images` to `out`: every blob they need once (but those in
/// `left_out`), each checked against its digest as it streams (layers from their files, never
/// whole in memory), then `manifest.json`, `index.json` (naming `base` when there is one) and
/// `oci-layout`.
pub fn write(
    images: &[BundleImage],
    left_out: &HashSet<String>,
    base: &[String],
    out: &mut dyn Write,
    dest: &Path,
) -> Result<Written> {
    let write_error = |source: io::Error| BundleError::Write {
        path: dest.to_path_buf(),
        source,
    };
    let mut done = Written::default();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut skipped: HashSet<&str> = HashSet::new();
    for image in images {
        for need in image.needs.blobs.iter().filter(|n| n.present) {
            let d = &need.descriptor;
            if left_out.contains(&d.digest) {
                skipped.insert(&d.digest);
                continue;
            }
            if !seen.insert(&d.digest) {
                continue;
            }
            let name = crate::image::blob_path(&d.digest);
            out.write_all(&tar_header(&name, d.size))
                .map_err(write_error)?;
            match image.needs.documents.get(&d.digest) {
                Some(bytes) => out.write_all(bytes).map_err(write_error)?,
                None => copy_checked(&image.layout, d, out, dest)?,
            }
            out.write_all(&vec![0u8; padding(d.size)])
                .map_err(write_error)?;
            done.blobs += 1;
            done.blob_bytes += d.size;
        }
    }
    done.left_out = skipped.len();
    for (name, bytes) in documents(images, base)? {
        out.write_all(&tar_header(name, bytes.len() as u64))
            .map_err(write_error)?;
        out.write_all(&bytes).map_err(write_error)?;
        out.write_all(&vec![0u8; padding(bytes.len() as u64)])
            .map_err(write_error)?;
    }
    out.write_all(&TAR_END).map_err(write_error)?;
    Ok(done)
}

/// Streams the blob `d` of `layout` to `out`, failing (the tar is then never committed) when
/// its bytes are not its digest's.
fn copy_checked(layout: &Layout, d: &Descriptor, out: &mut dyn Write, dest: &Path) -> Result<()> {
    let file = layout.open(d)?;
    let mut reader = HashingReader::new(io::BufReader::with_capacity(1 << 20, file).take(d.size));
    let copied = io::copy(&mut reader, out).map_err(|e| match e.kind() {
        io::ErrorKind::WriteZero | io::ErrorKind::StorageFull | io::ErrorKind::BrokenPipe => {
            BundleError::Write {
                path: dest.to_path_buf(),
                source: e,
            }
        }
        _ => BundleError::Read {
            path: layout.blob_path(&d.digest).unwrap_or_default(),
            source: e,
        },
    })?;
    let (found, _) = reader.finish();
    if copied != d.size || found != d.digest {
        return Err(LayoutError::DamagedBlob {
            root: layout.root().to_path_buf(),
            digest: d.digest.clone(),
            problem: format!("its {copied} bytes have the digest {found}"),
        }
        .into());
    }
    Ok(())
}

/// `manifest.json` (the classic loader's: config, tag and layers of each image), `index.json`
/// and `oci-layout`.
fn documents(images: &[BundleImage], base: &[String]) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let mut classic = Vec::new();
    let mut entries = Vec::new();
    for image in images {
        let manifest = crate::image::write::image_manifest(&image.needs).ok_or_else(|| {
            LayoutError::BadRef {
                path: PathBuf::from(format!("{}.ref", image.stem)),
                reason: "its descriptor leads to no image (no manifest with a config)".into(),
            }
        })?;
        let config = manifest.config.map(|c| c.digest).unwrap_or_default();
        let layers: Vec<String> = manifest
            .layers
            .iter()
            .map(|l| crate::image::blob_path(&l.digest))
            .collect();
        classic.push(json!({
            "Config": crate::image::blob_path(&config),
            "RepoTags": [image.tag],
            "Layers": layers,
        }));
        let root = &image.needs.root;
        entries.push(json!({
            "mediaType": root.media_type,
            "digest": root.digest,
            "size": root.size,
            "annotations": {
                CONTAINERD_NAME: qualified(&image.tag),
                REF_NAME: image.tag,
                ARCHIVE: image.stem,
            },
        }));
    }
    let mut index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": entries,
    });
    if !base.is_empty() {
        index["annotations"] = json!({ BASE: base.join(", ") });
    }
    let to_bytes = |v: &serde_json::Value| serde_json::to_vec(v).unwrap_or_default();
    Ok(vec![
        (
            "manifest.json",
            to_bytes(&serde_json::Value::Array(classic)),
        ),
        ("index.json", to_bytes(&index)),
        (MARKER, MARKER_BYTES.to_vec()),
    ])
}

/// What the first pass found in a layout tar.
#[derive(Debug, Default)]
pub struct Scanned {
    /// Every blob member: its digest and size.
    pub sizes: HashMap<String, u64>,
    /// The JSON blobs (manifests, indexes, configs), each checked against its digest.
    pub documents: HashMap<String, Arc<[u8]>>,
    /// `index.json`.
    pub index: Vec<u8>,
    /// `manifest.json`, when there is one.
    pub manifest_json: Option<Vec<u8>>,
}

/// A member of a layout tar, by its path.
enum Place {
    Blob(String),
    Index,
    ClassicManifest,
    Marker,
    /// `repositories`, and the folders `blobs/` and `blobs/sha256/`: passed over.
    Ignored,
}

/// Where a member goes; refused when it is a link, not a regular file or folder, or its path
/// is outside the layout's places.
fn place<R: Read>(entry: &tar::Entry<'_, R>, file: &Path) -> Result<(Place, String)> {
    let raw = entry
        .path()
        .map_err(|e| BundleError::NotALayout {
            file: file.to_path_buf(),
            reason: format!("a member's path cannot be read: {e}"),
        })?
        .into_owned();
    let shown = raw.display().to_string();
    let bad = |reason: &str| BundleError::BadMember {
        file: file.to_path_buf(),
        member: shown.clone(),
        reason: reason.to_string(),
    };
    let mut parts = Vec::new();
    for c in raw.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str().ok_or_else(|| bad("is not UTF-8"))?),
            Component::CurDir => {}
            _ => {
                return Err(bad(
                    "leaves the layout (an absolute path, or `..`): a layout tar's members are \
                     `index.json`, `oci-layout`, `manifest.json` and `blobs/sha256/<digest>`",
                ));
            }
        }
    }
    let path = parts.join("/");
    let kind = entry.header().entry_type();
    if kind.is_dir() {
        return match path.as_str() {
            "blobs" | "blobs/sha256" => Ok((Place::Ignored, path)),
            _ => Err(bad("is a folder outside `blobs/sha256/`")),
        };
    }
    if kind.is_symlink() || kind.is_hard_link() {
        return Err(bad("is a link: a layout tar holds regular files only"));
    }
    if !kind.is_file() {
        return Err(bad(
            "is not a regular file (a device, a FIFO): a layout tar holds regular files only",
        ));
    }
    let found = match path.as_str() {
        "index.json" => Place::Index,
        "manifest.json" => Place::ClassicManifest,
        "oci-layout" => Place::Marker,
        "repositories" => Place::Ignored,
        other => match other.strip_prefix("blobs/sha256/") {
            Some(hex) if digest::is_sha256(&format!("sha256:{hex}")) => {
                Place::Blob(format!("sha256:{hex}"))
            }
            _ => {
                return Err(bad(
                    "is outside `blobs/sha256/` (or not named `sha256` and 64 lower-case hex \
                     digits) and is none of the layout's documents",
                ));
            }
        },
    };
    Ok((found, path))
}

/// The first pass over a layout tar: every member's place and size, the small JSON blobs
/// (each checked against its digest), `index.json` and `manifest.json`. Bounded: at most
/// [`MAX_MEMBERS`] members, documents of at most [`DOCUMENT_LIMIT`] bytes, [`KEPT`] in all.
pub fn scan(reader: &mut dyn Read, file: &Path) -> Result<Scanned> {
    let not_a_tar = |e: io::Error| BundleError::NotALayout {
        file: file.to_path_buf(),
        reason: e.to_string(),
    };
    let mut archive = tar::Archive::new(reader);
    let mut scanned = Scanned::default();
    let mut members = 0usize;
    let mut kept = 0u64;
    let mut index = None;
    for entry in archive.entries().map_err(not_a_tar)? {
        let mut entry = entry.map_err(not_a_tar)?;
        members += 1;
        if members > MAX_MEMBERS {
            return Err(BundleError::TooLarge {
                file: file.to_path_buf(),
                reason: format!("it has more than {MAX_MEMBERS} members"),
            });
        }
        let (place, path) = place(&entry, file)?;
        let size = entry.size();
        let bad = |reason: String| BundleError::BadMember {
            file: file.to_path_buf(),
            member: path.clone(),
            reason,
        };
        let read = |e: io::Error| BundleError::NotALayout {
            file: file.to_path_buf(),
            reason: format!("the member `{path}` cannot be read: {e}"),
        };
        match place {
            Place::Ignored => {}
            Place::Marker => {
                if size > 4096 {
                    return Err(bad(format!(
                        "has {size} bytes (oci-layout is a small JSON)"
                    )));
                }
            }
            Place::Index | Place::ClassicManifest => {
                if size > DOCUMENT_LIMIT {
                    return Err(bad(format!(
                        "has {size} bytes: documents are read up to {DOCUMENT_LIMIT}"
                    )));
                }
                let mut bytes = Vec::with_capacity(size as usize);
                entry.read_to_end(&mut bytes).map_err(read)?;
                let slot = match place {
                    Place::Index => &mut index,
                    _ => &mut scanned.manifest_json,
                };
                if slot.replace(bytes).is_some() {
                    return Err(bad("appears twice".into()));
                }
            }
            Place::Blob(d) => {
                if scanned.sizes.insert(d.clone(), size).is_some() {
                    return Err(bad("appears twice".into()));
                }
                // Every blob is hashed as it streams past (a blob that is not its name is
                // refused before anything is written); a small JSON blob (manifest, index,
                // config) is kept.
                let mut hashing = HashingReader::new(&mut entry);
                let mut first = [0u8; 1];
                let n = hashing.read(&mut first).map_err(read)?;
                let mut bytes = Vec::new();
                let document = size <= DOCUMENT_LIMIT && first[..n] == *b"{";
                if document {
                    kept += size;
                    if kept > KEPT {
                        return Err(BundleError::TooLarge {
                            file: file.to_path_buf(),
                            reason: format!("its JSON blobs take more than {KEPT} bytes"),
                        });
                    }
                    bytes.reserve(size as usize);
                    bytes.push(b'{');
                    hashing.read_to_end(&mut bytes).map_err(read)?;
                } else {
                    io::copy(&mut hashing, &mut io::sink()).map_err(read)?;
                }
                let (found, _) = hashing.finish();
                if found != d {
                    return Err(bad(format!(
                        "is named by a digest its bytes do not have (they have {found})"
                    )));
                }
                if !document {
                    continue;
                }
                scanned.documents.insert(d, bytes.into());
            }
        }
    }
    scanned.index = index.ok_or_else(|| BundleError::NotALayout {
        file: file.to_path_buf(),
        reason: "it has no index.json".into(),
    })?;
    Ok(scanned)
}

/// The blobs a walk reads during an import: those of the tar (its JSON blobs in memory, the
/// others known by size) over those the store holds.
pub struct Incoming<'a> {
    pub file: &'a Path,
    pub scanned: &'a Scanned,
    pub store: &'a Layout,
}

impl Incoming<'_> {
    /// Whether the tar holds the blob `d`, of its size.
    pub fn in_file(&self, d: &Descriptor) -> bool {
        self.scanned.sizes.get(&d.digest) == Some(&d.size)
    }
}

impl BlobSource for Incoming<'_> {
    fn root(&self) -> &Path {
        self.file
    }

    fn has(&self, d: &Descriptor) -> bool {
        self.in_file(d) || self.store.has(d)
    }

    fn absent(&self, d: &Descriptor) -> LayoutError {
        match self.scanned.sizes.get(&d.digest) {
            Some(size) => LayoutError::DamagedBlob {
                root: self.file.to_path_buf(),
                digest: d.digest.clone(),
                problem: format!("it has {size} bytes, its descriptor says {}", d.size),
            },
            None => LayoutError::MissingBlob {
                root: self.store.root().to_path_buf(),
                digest: d.digest.clone(),
                needed_by: String::new(),
            },
        }
    }

    fn read_document(&self, d: &Descriptor) -> std::result::Result<Vec<u8>, LayoutError> {
        if self.in_file(d) {
            return match self.scanned.documents.get(&d.digest) {
                Some(bytes) => Ok(bytes.to_vec()),
                None => Err(LayoutError::DamagedBlob {
                    root: self.file.to_path_buf(),
                    digest: d.digest.clone(),
                    problem: format!(
                        "it is named as a document (a manifest, index or config), and is none: \
                         not JSON, or more than {DOCUMENT_LIMIT} bytes"
                    ),
                }),
            };
        }
        if self.store.has(d) {
            return self.store.read_document(d);
        }
        Err(self.absent(d))
    }
}

/// The second pass over a layout tar: streams each blob of `wanted` (digest and size) into
/// `layout`, each named only once its bytes have that digest. Returns the bytes written. Every
/// blob of `wanted` must be in the tar.
pub fn copy_blobs(
    reader: &mut dyn Read,
    file: &Path,
    wanted: &HashMap<String, u64>,
    layout: &Layout,
) -> Result<u64> {
    let not_a_tar = |e: io::Error| BundleError::NotALayout {
        file: file.to_path_buf(),
        reason: e.to_string(),
    };
    let mut archive = tar::Archive::new(reader);
    let mut written: HashSet<String> = HashSet::new();
    let mut bytes = 0u64;
    for entry in archive.entries().map_err(not_a_tar)? {
        let mut entry = entry.map_err(not_a_tar)?;
        let (Place::Blob(d), _) = place(&entry, file)? else {
            continue;
        };
        let Some(&size) = wanted.get(&d) else {
            continue;
        };
        let changed = |reason: String| BundleError::Changed {
            file: file.to_path_buf(),
            digest: d.clone(),
            reason,
        };
        if entry.size() != size || written.contains(&d) {
            return Err(changed(format!(
                "has {} bytes where the first read found {size}",
                entry.size()
            )));
        }
        let mut blob = layout.blob_writer()?;
        let copied = io::copy(&mut entry, &mut blob).map_err(|e| BundleError::Read {
            path: file.to_path_buf(),
            source: e,
        })?;
        if copied != size {
            return Err(changed(format!("ended after {copied} of {size} bytes")));
        }
        match blob.commit(Some(&d)) {
            Ok(_) => {}
            Err(LayoutError::DamagedBlob { problem, .. }) => {
                return Err(changed(format!("is not the blob its name says: {problem}")));
            }
            Err(e) => return Err(e.into()),
        }
        bytes += size;
        written.insert(d);
    }
    if let Some(d) = wanted.keys().find(|d| !written.contains(*d)) {
        return Err(BundleError::Changed {
            file: file.to_path_buf(),
            digest: d.clone(),
            reason: "is no longer in it".into(),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::graph;

    /// A layout holding one image: a layer, its config and manifest; the manifest's descriptor.
    fn image(layout: &Layout, text: &[u8]) -> Descriptor {
        let (layer, layer_size) = layout.put(&text.repeat(300)).unwrap();
        let config =
            serde_json::to_vec(&json!({"rootfs": {"type": "layers", "diff_ids": [layer]}}))
                .unwrap();
        let (config, config_size) = layout.put(&config).unwrap();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": crate::oci::OCI_MANIFEST,
            "config": {"mediaType": crate::oci::DOCKER_CONFIG, "digest": config, "size": config_size},
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size},
            ],
        }))
        .unwrap();
        let (digest, size) = layout.put(&manifest).unwrap();
        Descriptor {
            media_type: crate::oci::OCI_MANIFEST.into(),
            digest,
            size,
            platform: None,
            annotations: Default::default(),
        }
    }

    #[test]
    fn a_written_tar_scans_walks_and_copies_into_another_layout() {
        let d = tempfile::tempdir().unwrap();
        for dir in ["from", "to"] {
            std::fs::create_dir(d.path().join(dir)).unwrap();
        }
        let layout = Layout::create(&d.path().join("from")).unwrap();
        let root = image(&layout, b"one");
        let needs = graph::needs(&layout, &root).unwrap();
        let bundle = [BundleImage {
            stem: "web_1_0123456789ab".into(),
            tag: "web:1".into(),
            layout: layout.clone(),
            needs,
        }];
        let mut tar = Vec::new();
        let dest = d.path().join("b.tar");
        let done = write(&bundle, &HashSet::new(), &[], &mut tar, &dest).unwrap();
        assert_eq!(done.blobs, 3);
        let scanned = scan(&mut &tar[..], &dest).unwrap();
        assert_eq!(scanned.sizes.len(), 3);
        assert_eq!(scanned.documents.len(), 2, "the config and the manifest");
        assert!(scanned.manifest_json.is_some());

        let store = Layout::at(&d.path().join("to"));
        let incoming = Incoming {
            file: &dest,
            scanned: &scanned,
            store: &store,
        };
        let walked = graph::walk(&incoming, &root).unwrap();
        let wanted: HashMap<String, u64> = walked
            .blobs
            .iter()
            .map(|n| (n.descriptor.digest.clone(), n.descriptor.size))
            .collect();
        let store = Layout::create(store.root()).unwrap();
        copy_blobs(&mut &tar[..], &dest, &wanted, &store).unwrap();
        assert_eq!(store.blobs().unwrap(), layout.blobs().unwrap());

        // Left out: only the documents are in the tar, and the walk over it alone fails.
        let left_out: HashSet<String> = [bundle[0].needs.blobs[2].descriptor.digest.clone()]
            .into_iter()
            .collect();
        let mut delta = Vec::new();
        let done = write(
            &bundle,
            &left_out,
            &["web_0_0123456789ab".into()],
            &mut delta,
            &dest,
        )
        .unwrap();
        assert_eq!((done.blobs, done.left_out), (2, 1));
        let scanned = scan(&mut &delta[..], &dest).unwrap();
        let empty = Layout::at(&d.path().join("empty"));
        let incoming = Incoming {
            file: &dest,
            scanned: &scanned,
            store: &empty,
        };
        assert!(matches!(
            graph::walk(&incoming, &root),
            Err(LayoutError::MissingBlob { .. })
        ));
    }

    #[test]
    fn endings_other_than_tar_and_tar_zst_are_refused() {
        assert_eq!(
            BundleFormat::of(Path::new("a/b.tar")).unwrap(),
            BundleFormat::Tar
        );
        assert_eq!(
            BundleFormat::of(Path::new("b.tar.zst")).unwrap(),
            BundleFormat::TarZst
        );
        for bad in ["b.zip", "b.tar.gz", ".tar", "b"] {
            assert!(BundleFormat::of(Path::new(bad)).is_err(), "{bad}");
        }
    }
}
