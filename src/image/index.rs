//! ONE index of a `docker save` tar: its members (where each file's data starts, its size, and,
//! when read for verification, its digests), its links, and the bytes of its small JSON
//! documents. A `.docker` is indexed by seeking from tar header to tar header (file data is never
//! read); a stream is indexed in one pass, hashing every file when asked.
//!
//! Every reader of an archive's image (verify, inspect, extract, push) goes through it, so that
//! path normalisation, link following and the manifest reader exist once.

use std::collections::HashMap;
use std::io::{self, Read, Seek};
use std::path::{Component, Path};

use super::ImageError;
use crate::digest::HashingReader;

/// JSON documents up to this size are kept while indexing.
pub const SMALL: u64 = 4 << 20;
/// The JSON documents kept from one archive are at most this many bytes in all: a tar crafted
/// to hold many large documents is refused, never kept in memory.
pub const KEPT: u64 = 32 << 20;
/// How many links a path inside an archive may go through.
const MAX_LINKS: usize = 16;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// The first two bytes of a zstd frame.
const ZSTD_MAGIC: [u8; 2] = [0x28, 0xb5];

/// The digests of one file of the tar, when it was read for verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigest {
    /// `sha256:<hex>` of the bytes as stored.
    pub stored: String,
    /// `sha256:<hex>` of the bytes after gzip decompression, for gzip-compressed files.
    pub uncompressed: Option<String>,
    /// What `extract` would refuse in the file read as a layer (an entry that climbs out of
    /// the root with `..`, a hard link or whiteout that reaches above it); `None` when nothing
    /// (or when the file is no tar: the digests judge that).
    pub layer_problem: Option<String>,
    /// A compressed file (gzip, zstd) read with [`Reading::HashedAsStored`]: hashed as stored
    /// only, neither decompressed nor walked.
    pub left_compressed: bool,
}

impl FileDigest {
    /// The digest a layer's `diff_id` is compared with.
    pub fn diff_id(&self) -> &str {
        self.uncompressed.as_deref().unwrap_or(&self.stored)
    }
}

/// One member of the tar.
#[derive(Debug, Clone)]
pub enum Member {
    /// A regular file: where its data starts in the tar (meaningful for a seekable tar), its
    /// size, and its digests (when the tar was hashed).
    File {
        offset: u64,
        size: u64,
        digest: Option<FileDigest>,
    },
    /// A symbolic or hard link, to this path (normalized, relative to the tar's root).
    Link(String),
}

/// A regular file of the tar, found by [`TarIndex::file`].
#[derive(Debug, Clone, Copy)]
pub struct FileRef<'a> {
    /// Its path in the tar, after following links.
    pub path: &'a str,
    pub offset: u64,
    pub size: u64,
    pub digest: Option<&'a FileDigest>,
}

/// How a tar is read while it is indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Only the headers and the small JSON documents.
    Documents,
    /// Every file, hashed (and gzip files hashed uncompressed too).
    Hashed,
    /// Every file hashed as stored; a compressed file is not decompressed. For a reader that
    /// hands the layers to one that checks their content itself (an engine checks each
    /// layer's diff ID as it unpacks it): a compressed layer's check is then its blob digest.
    HashedAsStored,
}

/// The members of a `docker save` tar, and the bytes of its small JSON documents.
#[derive(Debug, Default)]
pub struct TarIndex {
    pub members: HashMap<String, Member>,
    pub small: HashMap<String, Vec<u8>>,
}

impl TarIndex {
    /// Indexes a tar read as a stream.
    pub fn read(reader: &mut dyn Read, reading: Reading) -> Result<TarIndex, ImageError> {
        let mut archive = tar::Archive::new(reader);
        let entries = archive.entries().map_err(ImageError::NotATar)?;
        Self::from_entries(entries, reading)
    }

    /// Indexes a tar that can be seeked, skipping over file data.
    pub fn read_seekable<R: Read + Seek>(reader: R) -> Result<TarIndex, ImageError> {
        let mut archive = tar::Archive::new(reader);
        let entries = archive.entries_with_seek().map_err(ImageError::NotATar)?;
        Self::from_entries(entries, Reading::Documents)
    }

    fn from_entries<R: Read>(
        entries: tar::Entries<'_, R>,
        reading: Reading,
    ) -> Result<TarIndex, ImageError> {
        let mut index = TarIndex::default();
        let mut kept_total = 0u64;
        for entry in entries {
            let mut entry = entry.map_err(ImageError::Damaged)?;
            let path = entry.path().map_err(ImageError::Damaged)?.into_owned();
            // Verification refuses every `..`, even one that stays inside the tar: `docker
            // save` never writes one.
            if reading != Reading::Documents
                && path
                    .components()
                    .any(|c| c == std::path::Component::ParentDir)
            {
                return Err(ImageError::EscapingPath(path.display().to_string()));
            }
            let key = normalize(&path)?;
            let kind = entry.header().entry_type();
            if let Some(resolved) = link_target(&entry, &key)? {
                index.members.insert(key, Member::Link(resolved));
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let size = entry.size();
            let offset = entry.raw_file_position();
            let wanted = size <= SMALL && (is_document(&key) || key.starts_with("blobs/"));
            let read = |e: io::Error| ImageError::Read {
                path: key.clone(),
                source: e,
            };
            let (kept, digest) = match reading {
                Reading::Hashed | Reading::HashedAsStored => {
                    let mut kept = Vec::new();
                    let digest = hash_file(
                        &mut entry,
                        wanted.then_some(&mut kept),
                        // Left compressed only where the name is the digest that checks it.
                        reading == Reading::Hashed || !key.starts_with("blobs/sha256/"),
                    )
                    .map_err(read)?;
                    (wanted.then_some(kept), Some(digest))
                }
                Reading::Documents if wanted => {
                    // A blob is a JSON document (manifest, index, config) or a layer: only the
                    // first byte of a layer is read.
                    let mut kept = Vec::new();
                    let mut first = [0u8; 1];
                    let n = entry.read(&mut first).map_err(read)?;
                    if is_document(&key) || first[..n] == *b"{" {
                        kept.extend_from_slice(&first[..n]);
                        entry.read_to_end(&mut kept).map_err(read)?;
                        (Some(kept), None)
                    } else {
                        (None, None)
                    }
                }
                Reading::Documents => (None, None),
            };
            if let Some(bytes) = kept.filter(|b| is_document(&key) || b.first() == Some(&b'{')) {
                kept_total += bytes.len() as u64;
                if kept_total > KEPT {
                    return Err(ImageError::TooMuchJson { limit: KEPT });
                }
                if let Some(replaced) = index.small.insert(key.clone(), bytes) {
                    kept_total -= replaced.len() as u64;
                }
            }
            index.members.insert(
                key,
                Member::File {
                    offset,
                    size,
                    digest,
                },
            );
        }
        Ok(index)
    }

    /// The regular file a path names, following links.
    pub fn file(&self, path: &str) -> Option<FileRef<'_>> {
        let mut key = normalize(Path::new(path)).ok()?;
        for _ in 0..MAX_LINKS {
            let (found, member) = self.members.get_key_value(&key)?;
            match member {
                Member::File {
                    offset,
                    size,
                    digest,
                } => {
                    return Some(FileRef {
                        path: found,
                        offset: *offset,
                        size: *size,
                        digest: digest.as_ref(),
                    });
                }
                Member::Link(target) => key = target.clone(),
            }
        }
        None
    }

    /// The bytes of a small document, following links.
    pub fn document(&self, path: &str) -> Option<&[u8]> {
        let file = self.file(path)?;
        self.small.get(file.path).map(Vec::as_slice)
    }

    /// Whether the tar has a member at `path` (a file or a link).
    pub fn contains(&self, path: &str) -> bool {
        normalize(Path::new(path)).is_ok_and(|key| self.members.contains_key(&key))
    }

    /// The regular files with their digests (for a tar read with [`Reading::Hashed`]).
    pub fn digests(&self) -> impl Iterator<Item = (&str, &FileDigest)> {
        self.members.iter().filter_map(|(path, m)| match m {
            Member::File {
                digest: Some(d), ..
            } => Some((path.as_str(), d)),
            _ => None,
        })
    }
}

/// Where a link member `key` leads (normalized, relative to the tar's root): a symbolic link
/// is relative to its folder, a hard link to the root. `None` for a member that is no link.
pub(super) fn link_target<R: Read>(
    entry: &tar::Entry<'_, R>,
    key: &str,
) -> Result<Option<String>, ImageError> {
    let kind = entry.header().entry_type();
    if !(kind.is_symlink() || kind.is_hard_link()) {
        return Ok(None);
    }
    let target = entry
        .link_name()
        .map_err(ImageError::Damaged)?
        .ok_or_else(|| ImageError::LinkWithoutTarget(key.to_string()))?;
    let resolved = match Path::new(key).parent() {
        Some(parent) if kind.is_symlink() => normalize(&parent.join(target))?,
        _ => normalize(&target)?,
    };
    Ok(Some(resolved))
}

/// The digest an OCI blob path names (`blobs/sha256/<64 hex>`); `None` for any other path.
pub fn stored_blob(path: &str) -> Option<String> {
    let digest = format!("sha256:{}", path.strip_prefix("blobs/sha256/")?);
    crate::digest::is_sha256(&digest).then_some(digest)
}

/// The path of a blob in an OCI layout.
pub fn blob_path(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}

/// Whether a member is one of the layout's JSON documents.
fn is_document(key: &str) -> bool {
    key.ends_with(".json") || key == "oci-layout" || key == "repositories"
}

/// A member path as manifests name it (no leading `./`, `..` resolved); refuses paths that are
/// absolute or leave the tar's root.
pub fn normalize(path: &Path) -> Result<String, ImageError> {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(ImageError::EscapingPath(path.display().to_string()));
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(ImageError::AbsolutePath(path.display().to_string()));
            }
        }
    }
    Ok(parts.join("/"))
}

/// Hashes a file as it streams (and its gzip-decompressed content when it is gzip), keeping
/// its bytes in `keep` when asked.
fn hash_file(
    reader: &mut dyn Read,
    keep: Option<&mut Vec<u8>>,
    decompress: bool,
) -> io::Result<FileDigest> {
    let mut first = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match reader.read(&mut first[got..])? {
            0 => break,
            n => got += n,
        }
    }
    let head = io::Cursor::new(first[..got].to_vec()).chain(reader);
    let mut tee = match keep {
        Some(keep) => HashingReader::keeping(head, keep),
        None => HashingReader::new(head),
    };
    let compressed = got == 2 && (first == GZIP_MAGIC || first == ZSTD_MAGIC);
    if !decompress && compressed {
        io::copy(&mut tee, &mut io::sink())?;
        return Ok(FileDigest {
            stored: tee.finish().0,
            uncompressed: None,
            layer_problem: None,
            left_compressed: true,
        });
    }
    let (uncompressed, layer_problem) = if first[..got] == GZIP_MAGIC {
        let mut plain = HashingReader::new(flate2::read::MultiGzDecoder::new(&mut tee));
        let problem = walk_layer(&mut plain);
        let digest = match io::copy(&mut plain, &mut io::sink()) {
            Ok(_) => Some(plain.digest()),
            // Gzip data that does not decode (a flipped byte, a bad checksum) is a damaged
            // blob, not a failed read: its stored digest (hashed to the end below) then matches
            // neither its name nor the config's diff_id, and the check names the layer.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData
                ) =>
            {
                None
            }
            Err(e) => return Err(e),
        };
        (digest, problem)
    } else if first[..got] == ZSTD_MAGIC {
        // A zstd layer (the layer store's, when asked): its content is hashed as gzip's is.
        match zstd::stream::read::Decoder::new(&mut tee) {
            Ok(decoder) => {
                let mut plain = HashingReader::new(decoder);
                let problem = walk_layer(&mut plain);
                let digest = match io::copy(&mut plain, &mut io::sink()) {
                    Ok(_) => Some(plain.digest()),
                    Err(e)
                        if e.kind() != io::ErrorKind::Interrupted && e.raw_os_error().is_none() =>
                    {
                        None
                    }
                    Err(e) => return Err(e),
                };
                (digest, problem)
            }
            Err(_) => (None, None),
        }
    } else {
        (None, walk_layer(&mut tee))
    };
    io::copy(&mut tee, &mut io::sink())?;
    Ok(FileDigest {
        stored: tee.finish().0,
        uncompressed,
        layer_problem,
        left_compressed: false,
    })
}

/// Reads a file as a layer's tar, as far as it goes, and says what `extract` would refuse in
/// it: a path that climbs out of the root with `..`, a hard link to such a path, a whiteout of
/// `.` or `..`. Entry data is read past (and so hashed by the caller's reader), never kept.
fn walk_layer(reader: &mut dyn Read) -> Option<String> {
    // Climbing out is judged as `extract` judges it.
    let climbs = |path: &Path| super::extract::clean_path(path).is_err();
    // What is no tar (a document, a damaged layer) is for the digests to judge.
    let mut archive = tar::Archive::new(reader);
    let Ok(entries) = archive.entries() else {
        return None;
    };
    for entry in entries {
        let Ok(entry) = entry else {
            return None;
        };
        let Ok(path) = entry.path() else {
            return Some("an entry's path cannot be read".into());
        };
        if climbs(&path) {
            return Some(format!(
                "the entry `{}` climbs out of the root with `..`",
                path.display()
            ));
        }
        if let Some(name) = path.file_name().and_then(|n| n.to_str())
            && matches!(name, ".wh.." | ".wh...")
        {
            return Some(format!(
                "the whiteout `{}` would remove a folder above it",
                path.display()
            ));
        }
        if entry.header().entry_type().is_hard_link()
            && let Ok(Some(target)) = entry.link_name()
            && climbs(&target)
        {
            return Some(format!(
                "the hard link `{}` leads out of the root to `{}`",
                path.display(),
                target.display()
            ));
        }
    }
    None
}
