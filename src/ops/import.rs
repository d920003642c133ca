//! `import`: the versions of a layout tar (`export`'s bundle or delta) into the layer store of
//! the artifacts directory, as `.ref` archives.
//!
//! The file is untrusted and read twice (a `.tar.zst` is decompressed twice: nothing is spooled
//! to disk). The first pass reads only its members' names and sizes and its JSON blobs, hashing
//! every blob; then every image's descriptor is walked (bounded as the store's walks are) over
//! the file's blobs and the store's, and the identity its name gives is checked. Anything wrong
//! — a blob neither holds (a delta whose base is missing), a digest that lies, a member outside
//! the layout — refuses the file before anything is written. The second pass streams the blobs
//! the store lacks into it, each named only once its bytes have its digest; the `.ref` files
//! come last, then `index.json`. A run killed midway leaves at most unreferenced blobs.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use crate::digest;
use crate::error::Result;
use crate::io_error::IoContext;
use crate::layout::archive::{self, ARCHIVE, BASE, BundleError, Incoming, ZSTD_MAGIC};
use crate::layout::graph::{self, Kind, MAX_DESCRIPTORS};
use crate::layout::{Layout, LayoutError, RefFile};
use crate::lock::DirLock;
use crate::name::{ArchiveName, Format};
use crate::oci::Descriptor;

/// How many images one file may hold.
const MAX_IMAGES: usize = 1000;

/// One archive `import` wrote (or found current).
#[derive(Debug, Clone)]
pub struct ImportedArchive {
    pub path: PathBuf,
    pub name: ArchiveName,
    /// False when the `.ref` was there already, its blobs whole.
    pub written: bool,
}

/// What `import` did.
#[derive(Debug, Clone)]
pub struct Imported {
    pub archives: Vec<ImportedArchive>,
    /// The blobs copied into the store, and their bytes.
    pub blobs: usize,
    pub bytes: u64,
    /// The blobs the images need that the store held already.
    pub reused: usize,
    /// The names of the archives the file was made against (a delta), as it says.
    pub base: Option<String>,
}

/// One image of the file, checked.
struct Entry {
    name: Named,
    root: Descriptor,
}

/// How an image of the file is named.
enum Named {
    /// By the archive it was exported from.
    Archive(ArchiveName),
    /// By the engine's name (`docker save`): the ID is known once its manifest is read.
    Engine { image: String, version: String },
}

/// The image name (the repository's last component) and version (the tag) of an engine's
/// image name (`docker.io/library/web:1.2.4`).
fn engine_name(reference: &str) -> Option<(String, String)> {
    let reference = reference.split('@').next()?;
    let (repository, tag) = reference.rsplit_once(':')?;
    if tag.contains('/') {
        return None;
    }
    let image = repository.rsplit('/').next()?;
    Some((image.to_string(), tag.to_string()))
}

/// The archive name of an image the engine named: the ID is the config's digest (a classic
/// engine's, whose `docker save` has plain layers) or, where the layers are compressed as a
/// containerd-store engine keeps them, the digest of the manifest or index (its ID there).
fn engine_archive_name(
    file: &Path,
    image: &str,
    version: &str,
    root: &Descriptor,
    needs: &graph::Needs,
) -> Result<ArchiveName> {
    let manifest = crate::image::write::image_manifest(needs);
    let plain = manifest.as_ref().is_some_and(|m| {
        m.layers.iter().all(|l| {
            l.media_type == crate::image::ingest::LAYER_TAR
                || l.media_type == "application/vnd.docker.image.rootfs.diff.tar"
        })
    });
    let id = match manifest.and_then(|m| m.config) {
        Some(config) if plain => config.digest,
        _ => root.digest.clone(),
    };
    let short = digest::short_id(&id).unwrap_or_default();
    ArchiveName::new(image, version, &short, Format::Ref).map_err(|e| {
        BundleError::BadIndex {
            file: file.to_path_buf(),
            reason: format!("the image `{image}:{version}` cannot name an archive: {e}"),
        }
        .into()
    })
}

/// Imports the layout tar `file` into the artifacts directory `lock` holds.
pub fn import(lock: &DirLock, file: &Path) -> Result<Imported> {
    let dir = lock.dir();
    let source = File::open(file).at(file)?;
    let scanned = archive::scan(&mut *reader(&source, file)?, file)?;
    let (entries, base) = read_index(file, &scanned.index)?;

    // The store the `.ref` archives will use: the artifacts directory's own, never one above it.
    let store = Layout::at(dir);
    if let Ok(outer) = Layout::of_ref(&dir.join("x.ref"))
        && outer != store
    {
        return Err(LayoutError::InsideAnotherStore {
            dir: dir.to_path_buf(),
            root: outer.root().to_path_buf(),
        }
        .into());
    }
    store.check_folders()?;

    // Every image walked over the file's blobs and the store's; nothing is written yet.
    let incoming = Incoming {
        file,
        scanned: &scanned,
        store: &store,
    };
    let mut wanted: HashMap<String, u64> = HashMap::new();
    let mut reused = std::collections::HashSet::new();
    let mut walked = 0usize;
    let mut checked = Vec::new();
    for entry in entries {
        let needs = graph::walk(&incoming, &entry.root).map_err(|e| match e {
            LayoutError::MissingBlob { digest, .. } => BundleError::MissingBase {
                file: file.to_path_buf(),
                store: dir.to_path_buf(),
                digest,
                what: match &base {
                    Some(names) => format!(
                        "it is a delta against {names}: import or write those versions into \
                         this store first, or export a whole bundle (without --since)"
                    ),
                    None => "the file is incomplete: export it again".into(),
                },
            }
            .into(),
            // What is wrong in the file is said of the file, not of a store.
            LayoutError::DamagedBlob {
                root,
                digest,
                problem,
            } if root == file => BundleError::BadMember {
                file: file.to_path_buf(),
                member: crate::image::blob_path(&digest),
                reason: format!("is damaged: {problem}"),
            }
            .into(),
            LayoutError::TooLarge { root, reason } if root == file => BundleError::TooLarge {
                file: file.to_path_buf(),
                reason,
            }
            .into(),
            other => crate::Error::from(other),
        })?;
        walked += needs.blobs.len();
        if walked > MAX_DESCRIPTORS {
            return Err(BundleError::TooLarge {
                file: file.to_path_buf(),
                reason: format!("its images name more than {MAX_DESCRIPTORS} blobs in all"),
            }
            .into());
        }
        let name = match &entry.name {
            Named::Archive(name) => name.clone(),
            Named::Engine { image, version } => {
                engine_archive_name(file, image, version, &entry.root, &needs)?
            }
        };
        if checked
            .iter()
            .any(|(n, _): &(ArchiveName, Descriptor)| *n == name)
        {
            return Err(BundleError::BadIndex {
                file: file.to_path_buf(),
                reason: format!("`{}` is listed twice", name.file_name()),
            }
            .into());
        }
        check_identity(file, &name, &needs)?;
        for need in needs.blobs.iter().filter(|n| n.present) {
            let d = &need.descriptor;
            if store.has(d) {
                reused.insert(d.digest.clone());
            } else {
                wanted.insert(d.digest.clone(), d.size);
            }
        }
        checked.push((name, entry.root));
    }

    // Blobs first, then each `.ref`, then `index.json`.
    let layout = super::update::own_layout(dir)?;
    let bytes = if wanted.is_empty() {
        0
    } else {
        archive::copy_blobs(&mut *reader(&source, file)?, file, &wanted, &layout)?
    };
    let mut archives = Vec::new();
    for (name, root) in checked {
        let path = dir.join(name.file_name());
        let current = RefFile::read(&path).is_ok_and(|r| {
            r.digest == root.digest && graph::needs(&layout, &r.descriptor()).is_ok()
        });
        if !current {
            RefFile {
                media_type: root.media_type.clone(),
                digest: root.digest.clone(),
                size: root.size,
            }
            .write(&path)?;
        }
        archives.push(ImportedArchive {
            path,
            name,
            written: !current,
        });
    }
    super::update::rewrite_index(dir, &layout, &[])?;
    Ok(Imported {
        archives,
        blobs: wanted.len(),
        bytes,
        reused: reused.len(),
        base,
    })
}

/// The tar stream of `file` from its start: decompressed when it is zstd.
fn reader<'f>(source: &'f File, file: &Path) -> Result<Box<dyn Read + 'f>> {
    let mut source = source;
    source.rewind().at(file)?;
    let mut buffered = BufReader::with_capacity(1 << 20, source);
    let head = io::BufRead::fill_buf(&mut buffered).at(file)?;
    if head.starts_with(&ZSTD_MAGIC) {
        let decoder = zstd::stream::read::Decoder::with_buffer(buffered).at(file)?;
        Ok(Box::new(decoder))
    } else {
        Ok(Box::new(buffered))
    }
}

/// The images `index.json` lists (each with the archive name it carries) and the base it
/// names.
fn read_index(file: &Path, bytes: &[u8]) -> Result<(Vec<Entry>, Option<String>)> {
    let bad = |reason: String| BundleError::BadIndex {
        file: file.to_path_buf(),
        reason,
    };
    #[derive(serde::Deserialize)]
    struct Index {
        #[serde(default)]
        manifests: Vec<serde_json::Value>,
        #[serde(default)]
        annotations: HashMap<String, String>,
    }
    let index: Index = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    if index.manifests.is_empty() {
        return Err(bad("it lists no image".into()).into());
    }
    if index.manifests.len() > MAX_IMAGES {
        return Err(bad(format!("it lists more than {MAX_IMAGES} images")).into());
    }
    let mut entries: Vec<Entry> = Vec::new();
    for value in index.manifests {
        let root: Descriptor = serde_json::from_value(value)
            .map_err(|e| bad(format!("an entry is no descriptor: {e}")))?;
        if !crate::layout::reference::is_index_type(&root.media_type)
            && ![crate::oci::OCI_MANIFEST, crate::oci::DOCKER_MANIFEST]
                .contains(&root.media_type.as_str())
        {
            return Err(bad(format!(
                "the entry {} has the media type `{}`, which is no manifest's or index's",
                root.digest, root.media_type
            ))
            .into());
        }
        let name = match root.annotations.get(ARCHIVE) {
            Some(stem) => Named::Archive(
                ArchiveName::parse(&format!("{stem}.ref"))
                    .filter(|n| n.format == Format::Ref)
                    .and_then(|n| ArchiveName::new(&n.image, &n.version, &n.id, Format::Ref).ok())
                    .ok_or_else(|| {
                        bad(format!(
                            "`{stem}` (the `{ARCHIVE}` of {}) is not an archive name \
                             <image>_<version>_<id>",
                            root.digest
                        ))
                    })?,
            ),
            // A `docker save` of Docker 25 or later: named as the engine named it.
            None => {
                let reference = root.annotations.get(archive::CONTAINERD_NAME).ok_or_else(
                    || {
                        bad(format!(
                            "the entry {} has neither a `{ARCHIVE}` annotation naming its archive \
                             (as `toolbox export` writes) nor an `{}` (as `docker save` \
                             writes)",
                            root.digest,
                            archive::CONTAINERD_NAME
                        ))
                    },
                )?;
                let (image, version) = engine_name(reference).ok_or_else(|| {
                    bad(format!(
                        "`{reference}` (the image name of {}) is no REPOSITORY:TAG an archive \
                         can be named by",
                        root.digest
                    ))
                })?;
                Named::Engine { image, version }
            }
        };
        if let Named::Archive(n) = &name
            && entries
                .iter()
                .any(|e| matches!(&e.name, Named::Archive(m) if m == n))
        {
            return Err(bad(format!("`{}` is listed twice", n.file_name())).into());
        }
        entries.push(Entry { name, root });
    }
    Ok((entries, index.annotations.get(BASE).cloned()))
}

/// Checks that the ID the entry's name gives begins one of the image's identities: the digest
/// of its config (a classic engine's ID) or of a manifest or index its descriptor leads to (a
/// containerd-store engine's).
fn check_identity(file: &Path, name: &ArchiveName, needs: &graph::Needs) -> Result<()> {
    let ids: Vec<&str> = needs
        .blobs
        .iter()
        .filter(|n| n.present && matches!(n.kind, Kind::Document | Kind::Config))
        .map(|n| digest::hex_part(&n.descriptor.digest))
        .collect();
    if ids.iter().any(|id| id.starts_with(&name.id)) {
        return Ok(());
    }
    Err(BundleError::WrongName {
        file: file.to_path_buf(),
        name: name.file_name(),
        reason: format!(
            "its name says {}, its manifest and config digests are {}",
            name.id,
            ids.join(", ")
        ),
    }
    .into())
}
