//! The layer store: ONE OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`) in the
//! artifacts directory, each blob once, and the reference archives (`.ref`) over it, each the
//! descriptor of one image's manifest or index.
//!
//! What is here knows blobs and descriptors, never images: writing a blob (atomically, named by
//! the digest of what was written), reading one back (a regular file of the size its descriptor
//! gives, never through a link), what a descriptor needs ([`graph`]), `index.json` derived from
//! the `.ref` archives ([`index`]) and the blobs no `.ref` needs ([`gc`]). Everything read from
//! a layout is untrusted: sizes are bounded, documents are checked against their digests, walks
//! are bounded in breadth and depth. The model is go-containerregistry's `layout` package,
//! with what its own notes say it lacks: temporary files and renames, digest checks of what
//! was written, an atomic `index.json`, a garbage collection that removes, bounded walks, and
//! (through the directory lock the callers hold) no concurrent writer.

pub mod archive;
pub mod gc;
pub mod graph;
pub mod index;
pub mod reference;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::commit::AtomicFile;
use crate::digest::{self, Hasher};
use crate::io_error::{IoContext, IoError};
use crate::oci::Descriptor;
use crate::regular::{self, Irregular};

pub use graph::{Need, Needs};
pub use reference::RefFile;

/// The file that marks a folder as an OCI image layout.
pub const MARKER: &str = "oci-layout";
/// What [`MARKER`] holds.
pub const MARKER_BYTES: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
/// Documents (manifests, indexes, configs) are read up to this size.
pub const DOCUMENT_LIMIT: u64 = 4 << 20;

/// What went wrong with the layer store.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error(
        "no layer store for `{}`: no folder at or above it holds `oci-layout`; a `.ref` archive \
         needs the store it was written into (`update-image --store` makes one)",
        path.display()
    )]
    NoLayout { path: PathBuf },

    #[error(
        "blob {digest} is missing from the layer store `{}`{needed_by}; the store is incomplete: \
         write the version again (`update-image --store --force`) or restore the blob",
        root.display()
    )]
    MissingBlob {
        root: PathBuf,
        digest: String,
        needed_by: String,
    },

    #[error(
        "blob {digest} in the layer store `{}` is damaged: {problem}; restore it, or write the \
         versions that use it again",
        root.display()
    )]
    DamagedBlob {
        root: PathBuf,
        digest: String,
        problem: String,
    },

    #[error("`{}` is not a valid reference archive: {reason}", path.display())]
    BadRef { path: PathBuf, reason: String },

    #[error(
        "the layer store `{}` is too deep or too wide to read: {reason}",
        root.display()
    )]
    TooLarge { root: PathBuf, reason: String },

    #[error(
        "`{}` is not a folder (a link, or a file): the layer store's folders are folders, and \
         links are never followed; move it away",
        path.display()
    )]
    NotAFolder { path: PathBuf },

    #[error(
        "the artifacts directory `{}` is inside the layer store `{}`: run with --basedir {} \
         (the store and every archive that uses it are changed under one lock)",
        dir.display(),
        root.display(),
        root.display()
    )]
    InsideAnotherStore { dir: PathBuf, root: PathBuf },

    #[error("`{}` is not a valid index.json: {reason}", path.display())]
    BadIndex { path: PathBuf, reason: String },

    #[error(transparent)]
    Irregular(#[from] Irregular),

    #[error(transparent)]
    Io(#[from] IoError),
}

type Result<T> = std::result::Result<T, LayoutError>;

/// An OCI image layout on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout whose root is `root` (not checked), made absolute, with `.` and `..`
    /// resolved (lexically: `a/../b` is `b`, so that one folder is one layout).
    pub fn at(root: &Path) -> Layout {
        Layout {
            root: normalized(root),
        }
    }

    /// The layout a `.ref` archive at `ref_path` uses: the nearest folder at or above the
    /// file's folder that holds `oci-layout` (a regular file).
    pub fn of_ref(ref_path: &Path) -> Result<Layout> {
        let start = match ref_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let absolute = normalized(&start);
        let mut dir: Option<&Path> = Some(&absolute);
        while let Some(d) = dir {
            if fs::symlink_metadata(d.join(MARKER)).is_ok_and(|m| m.is_file()) {
                return Ok(Layout::at(d));
            }
            dir = d.parent();
        }
        Err(LayoutError::NoLayout {
            path: ref_path.to_path_buf(),
        })
    }

    /// Makes `root` a layout, when it is not one yet: `oci-layout`, an empty `index.json` and
    /// `blobs/sha256/`.
    pub fn create(root: &Path) -> Result<Layout> {
        let layout = Layout::at(root);
        layout.check_folders()?;
        let blobs = layout.root.join("blobs");
        for dir in [blobs.clone(), layout.blob_dir()] {
            match fs::create_dir(&dir) {
                Ok(()) => crate::commit::sync_dir(dir.parent().unwrap_or(&layout.root))?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(IoError::new(&dir, e).into()),
            }
        }
        layout.check_folders()?;
        if regular::read(&root.join(index::INDEX), DOCUMENT_LIMIT)?.is_none() {
            index::write(&layout, &[])?;
        }
        let marker = root.join(MARKER);
        if regular::read(&marker, 4096)?.is_none() {
            let mut file = AtomicFile::create(&marker)?;
            file.write_all(MARKER_BYTES).at(&marker)?;
            file.commit()?;
        }
        Ok(layout)
    }

    /// Checks that `blobs/` and `blobs/sha256/`, where they exist, are folders and not links:
    /// a link would take writes and removals outside the store.
    pub fn check_folders(&self) -> Result<()> {
        for dir in [self.root.join("blobs"), self.blob_dir()] {
            match fs::symlink_metadata(&dir) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(LayoutError::NotAFolder { path: dir });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(IoError::new(&dir, e).into()),
            }
        }
        Ok(())
    }

    /// The layout's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `blobs/sha256/` under the root.
    pub fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    /// Where the blob `digest` (`sha256:<64 hex>`) is; `None` for any other digest.
    pub fn blob_path(&self, digest: &str) -> Option<PathBuf> {
        digest::is_sha256(digest).then(|| self.blob_dir().join(digest::hex_part(digest)))
    }

    /// The size of the blob `digest`, when the store holds it as a regular file.
    pub fn blob_size(&self, digest: &str) -> Option<u64> {
        let path = self.blob_path(digest)?;
        fs::symlink_metadata(path)
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }

    /// Whether the store holds the blob `d` names, of the size it gives (its bytes are not
    /// read).
    pub fn has(&self, d: &Descriptor) -> bool {
        self.blob_size(&d.digest) == Some(d.size)
    }

    /// Opens the blob `d` names: a regular file (never through a link) of the size `d` gives.
    /// Its bytes are the caller's to check against the digest as they stream.
    pub fn open(&self, d: &Descriptor) -> Result<File> {
        let missing = || LayoutError::MissingBlob {
            root: self.root.clone(),
            digest: d.digest.clone(),
            needed_by: String::new(),
        };
        let path = self.blob_path(&d.digest).ok_or_else(missing)?;
        let file = match regular::open(&path, OpenOptions::new().read(true)) {
            Ok(f) => f,
            Err(Irregular::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Err(missing());
            }
            Err(Irregular::NotRegular { .. }) => {
                return Err(LayoutError::DamagedBlob {
                    root: self.root.clone(),
                    digest: d.digest.clone(),
                    problem: "it is not a regular file (a link, a FIFO, a device): blobs are \
                              regular files, and links are never followed"
                        .into(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let size = file.metadata().at(&path)?.len();
        if size != d.size {
            return Err(LayoutError::DamagedBlob {
                root: self.root.clone(),
                digest: d.digest.clone(),
                problem: format!("it has {size} bytes, its descriptor says {}", d.size),
            });
        }
        Ok(file)
    }

    /// The bytes of the document blob `d` names (a manifest, index or config), at most
    /// [`DOCUMENT_LIMIT`], checked against its digest.
    pub fn read_document(&self, d: &Descriptor) -> Result<Vec<u8>> {
        if d.size > DOCUMENT_LIMIT {
            return Err(LayoutError::DamagedBlob {
                root: self.root.clone(),
                digest: d.digest.clone(),
                problem: format!(
                    "a document of {} bytes (documents are read up to {DOCUMENT_LIMIT})",
                    d.size
                ),
            });
        }
        let mut bytes = Vec::with_capacity(d.size as usize);
        let path = self.blob_path(&d.digest).unwrap_or_default();
        self.open(d)?
            .take(d.size)
            .read_to_end(&mut bytes)
            .at(&path)?;
        let found = digest::sha256(&bytes);
        if found != d.digest {
            return Err(LayoutError::DamagedBlob {
                root: self.root.clone(),
                digest: d.digest.clone(),
                problem: format!("its bytes have the digest {found}"),
            });
        }
        Ok(bytes)
    }

    /// Starts writing a blob; its name comes from the digest of what is written.
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        let dir = self.blob_dir();
        self.check_folders()?;
        if !dir.is_dir() {
            Layout::create(&self.root)?;
        }
        // The temporary file's own name is never the blob's: it is given at commit.
        let file = AtomicFile::create(&dir.join("blob"))?;
        Ok(BlobWriter {
            layout: self.clone(),
            file,
            hasher: Hasher::default(),
        })
    }

    /// Writes a small blob (a document) unless the store holds it; returns its digest and size.
    pub fn put(&self, bytes: &[u8]) -> Result<(String, u64)> {
        let digest = digest::sha256(bytes);
        if self.blob_size(&digest) == Some(bytes.len() as u64) {
            return Ok((digest, bytes.len() as u64));
        }
        let mut writer = self.blob_writer()?;
        writer.write_all(bytes).at(self.blob_dir())?;
        writer.commit(Some(&digest))
    }

    /// Every blob file of the store, with its size (what is not a regular file named by 64 hex
    /// digits is left out).
    pub fn blobs(&self) -> Result<Vec<(String, u64)>> {
        self.check_folders()?;
        let dir = self.blob_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(IoError::new(&dir, e).into()),
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.at(&dir)?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let digest = format!("sha256:{name}");
            if !digest::is_sha256(&digest) {
                continue;
            }
            let meta = entry.metadata().at(entry.path())?;
            if meta.is_file() {
                found.push((digest, meta.len()));
            }
        }
        found.sort();
        Ok(found)
    }
}

/// `path` made absolute, with `.` and `..` resolved lexically.
fn normalized(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for c in absolute.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// A blob being written: hashed as written, named by its digest when committed.
pub struct BlobWriter {
    layout: Layout,
    file: AtomicFile,
    hasher: Hasher,
}

impl BlobWriter {
    /// The digest and size of what was written so far.
    pub fn digest(&self) -> (String, u64) {
        (self.hasher.digest(), self.hasher.size())
    }

    /// Makes the blob durable under its digest's name; with `expected`, only when that is the
    /// digest of what was written. Returns the digest and size.
    pub fn commit(self, expected: Option<&str>) -> Result<(String, u64)> {
        let (found, size) = self.hasher.finish();
        if let Some(expected) = expected
            && expected != found
        {
            return Err(LayoutError::DamagedBlob {
                root: self.layout.root.clone(),
                digest: expected.to_string(),
                problem: format!("what was written has the digest {found}"),
            });
        }
        let dest = self
            .layout
            .blob_path(&found)
            .unwrap_or_else(|| self.layout.blob_dir().join("invalid"));
        self.file.commit_as(&dest)?;
        Ok((found, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_named_by_their_digest_and_read_back_checked() {
        let d = tempfile::tempdir().unwrap();
        let layout = Layout::create(d.path()).unwrap();
        let (digest, size) = layout.put(b"{\"a\":1}").unwrap();
        assert_eq!(digest, digest::sha256(b"{\"a\":1}"));
        let desc = Descriptor {
            media_type: String::new(),
            digest: digest.clone(),
            size,
            platform: None,
            annotations: Default::default(),
        };
        assert!(layout.has(&desc));
        assert_eq!(layout.read_document(&desc).unwrap(), b"{\"a\":1}");
        // A flipped byte is found when read.
        let path = layout.blob_path(&digest).unwrap();
        fs::write(&path, b"{\"a\":2}").unwrap();
        let err = layout.read_document(&desc).unwrap_err();
        assert!(err.to_string().contains("damaged"), "{err}");
        // A wrong size is found without reading.
        fs::write(&path, b"{}").unwrap();
        assert!(!layout.has(&desc));
        assert!(matches!(
            layout.open(&desc),
            Err(LayoutError::DamagedBlob { .. })
        ));
        // A link is never followed.
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &path).unwrap();
        assert!(layout.open(&desc).is_err());
        assert_eq!(layout.blob_size(&digest), None);
    }

    #[test]
    fn a_ref_uses_the_nearest_layout_at_or_above_it() {
        let d = tempfile::tempdir().unwrap();
        Layout::create(d.path()).unwrap();
        fs::create_dir_all(d.path().join("a/b")).unwrap();
        let found = Layout::of_ref(&d.path().join("a/b/x.ref")).unwrap();
        assert_eq!(found.root(), d.path());
        Layout::create(&d.path().join("a")).unwrap();
        let found = Layout::of_ref(&d.path().join("a/b/x.ref")).unwrap();
        assert_eq!(found.root(), d.path().join("a"));
    }

    #[test]
    fn a_blob_written_with_a_wrong_expected_digest_is_not_committed() {
        let d = tempfile::tempdir().unwrap();
        let layout = Layout::create(d.path()).unwrap();
        let mut w = layout.blob_writer().unwrap();
        w.write_all(b"abc").unwrap();
        assert!(w.commit(Some(&digest::sha256(b"abd"))).is_err());
        assert!(layout.blobs().unwrap().is_empty());
    }
}
