//! What an image archive holds, read from the archive alone (no engine): the image ID, tags,
//! config and layers, from the classic `docker save` layout (`manifest.json`) or, when there is
//! no `manifest.json`, from an OCI image layout (`index.json`, `blobs/…`).
//!
//! A `.docker` archive is read by seeking from tar header to tar header, never reading layer
//! data; a compressed one is decompressed as a stream (deflate and zstd cannot be skipped), with
//! only the small JSON documents kept.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, Write};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::codec;
use crate::commit::AtomicFile;
use crate::error::{Error, IoContext, Result};
use crate::image::{ManifestEntry, sha256};
use crate::name::Format;
use crate::oci::Document;
use crate::progress::Silent;
use crate::store::Archive;

/// JSON documents up to this size are kept while indexing.
const SMALL: u64 = 4 << 20;
/// How many symbolic links a path inside an archive may go through.
const MAX_LINKS: usize = 16;

/// An image as its archive describes it.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    /// `sha256:` and the 64 hex digits of the config's digest.
    pub id: String,
    pub repo_tags: Vec<String>,
    /// The image config, parsed.
    pub config: Value,
    /// The image config's bytes, as stored (their sha256 is the ID).
    pub config_bytes: Vec<u8>,
    /// The layers, bottom first.
    pub layers: Vec<LayerInfo>,
}

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// The digest of the uncompressed layer tar (the config's `diff_id`).
    pub diff_id: String,
    /// The layer's size as stored in the archive.
    pub size: u64,
    /// Where the layer is inside the archive.
    pub path: String,
}

impl ImageInfo {
    /// The `created` string of the config.
    pub fn created(&self) -> Option<&str> {
        self.config.get("created").and_then(Value::as_str)
    }

    /// The creation time, when the config has a valid one.
    pub fn created_time(&self) -> Option<OffsetDateTime> {
        parse_time(self.created()?)
    }

    /// A top-level string of the config (`architecture`, `os`, `author`, …).
    pub fn field(&self, key: &str) -> Option<&str> {
        self.config.get(key).and_then(Value::as_str)
    }

    /// The runtime configuration (`config` in the image config), when there is one.
    pub fn runtime(&self) -> Option<&serde_json::Map<String, Value>> {
        self.config.get("config").and_then(Value::as_object)
    }

    /// The total size of the layers as stored.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
}

/// What the latest rule and `images --created` need of an image: its full ID and creation
/// time. Kept in the comment of the ZIPs toolbox writes, and in a cache file beside other
/// archives ([`CACHE_FILE`]), keyed by file name, size and modification time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

/// How a toolbox ZIP comment starts.
const COMMENT_PREFIX: &str = "toolbox-image ";
/// The cache of summaries in each folder that holds archives.
pub const CACHE_FILE: &str = ".toolbox-cache.json";

impl Summary {
    /// The ZIP archive comment that carries this summary.
    pub fn zip_comment(&self) -> String {
        format!(
            "{COMMENT_PREFIX}{}",
            serde_json::to_string(self).unwrap_or_default()
        )
    }

    /// The creation time, when there is a valid one.
    pub fn created_time(&self) -> Option<OffsetDateTime> {
        parse_time(self.created.as_deref()?)
    }

    /// Whether this summary can describe `archive` (its ID agrees with the file name).
    fn fits(&self, archive: &Archive) -> bool {
        let hex = self.id.strip_prefix("sha256:").unwrap_or(&self.id);
        hex.len() == 64 && hex.starts_with(&archive.name.id)
    }
}

impl ImageInfo {
    /// The image's summary.
    pub fn summary(&self) -> Summary {
        Summary {
            id: self.id.clone(),
            created: self.created().map(str::to_string),
        }
    }
}

/// The summary of each archive, in order: from the cache beside it (one read per folder), else
/// from its ZIP comment, else by reading the archive; what is read (or found unreadable) is
/// then kept in the cache.
pub fn summaries(archives: &[&Archive]) -> Vec<Result<Summary>> {
    let mut caches: HashMap<PathBuf, Cache> = HashMap::new();
    let out: Vec<Result<Summary>> = archives
        .iter()
        .map(|archive| summary_of(archive, &mut caches))
        .collect();
    for (dir, cache) in caches {
        if cache.changed {
            // A cache that cannot be written (a read-only folder) only costs time later.
            let _ = cache.save(&dir);
        }
    }
    out
}

/// Reads the creation time of many archives at once (one cache read per folder), so that the
/// latest rule and `images --created` need not read them one by one.
pub fn prime_created(archives: &[&Archive]) {
    for (archive, summary) in archives.iter().zip(summaries(archives)) {
        archive.set_created(summary.ok().and_then(|s| s.created_time()));
    }
}

fn summary_of(archive: &Archive, caches: &mut HashMap<PathBuf, Cache>) -> Result<Summary> {
    let dir = archive
        .path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let cache = caches
        .entry(dir.clone())
        .or_insert_with(|| Cache::load(&dir));
    let file_name = archive.file_name();
    let key = CacheKey::of(archive);
    if let Some(entry) = cache.entries.get(&file_name)
        && entry.key == key
    {
        match &entry.summary {
            Some(summary) if summary.fits(archive) => return Ok(summary.clone()),
            None => {
                return Err(Error::Corrupt {
                    path: archive.path.clone(),
                    reason: format!(
                        "it could not be read when it had this size and time (see {CACHE_FILE})"
                    ),
                });
            }
            Some(_) => {}
        }
    }
    let comment = (archive.name.format == Format::Zip)
        .then(|| zip_summary(&archive.path))
        .flatten()
        .filter(|s| s.fits(archive));
    let found = match comment {
        Some(summary) => Ok(summary),
        None => inspect(archive).map(|info| info.summary()),
    };
    // What cannot be read is remembered too (until the file changes), but not a failed read.
    let summary = match &found {
        Ok(summary) => Some(summary.clone()),
        Err(Error::Io { .. }) => return found,
        Err(_) => None,
    };
    cache.entries.insert(file_name, CacheEntry { key, summary });
    cache.changed = true;
    found
}

/// The summary in a ZIP's archive comment, when it carries one.
fn zip_summary(path: &Path) -> Option<Summary> {
    let file = File::open(path).ok()?;
    let zip = zip::ZipArchive::new(BufReader::new(file)).ok()?;
    let text = std::str::from_utf8(zip.comment()).ok()?;
    serde_json::from_str(text.strip_prefix(COMMENT_PREFIX)?).ok()
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct CacheKey {
    size: u64,
    modified_s: i64,
    modified_ns: u32,
}

impl CacheKey {
    fn of(archive: &Archive) -> CacheKey {
        let (modified_s, modified_ns) = crate::timestamp::unix(archive.modified);
        CacheKey {
            size: archive.size,
            modified_s,
            modified_ns,
        }
    }
}

#[derive(Debug, Clone)]
struct CacheEntry {
    key: CacheKey,
    /// `None`: the archive could not be read.
    summary: Option<Summary>,
}

/// A cache entry as stored: flat, so that a large cache parses fast.
#[derive(Serialize, Deserialize)]
struct StoredEntry {
    size: u64,
    modified_s: i64,
    modified_ns: u32,
    #[serde(default)]
    id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created: Option<String>,
}

impl From<StoredEntry> for CacheEntry {
    fn from(e: StoredEntry) -> Self {
        CacheEntry {
            key: CacheKey {
                size: e.size,
                modified_s: e.modified_s,
                modified_ns: e.modified_ns,
            },
            summary: e.id.map(|id| Summary {
                id,
                created: e.created,
            }),
        }
    }
}

impl From<&CacheEntry> for StoredEntry {
    fn from(e: &CacheEntry) -> Self {
        StoredEntry {
            size: e.key.size,
            modified_s: e.key.modified_s,
            modified_ns: e.key.modified_ns,
            id: e.summary.as_ref().map(|s| s.id.clone()),
            created: e.summary.as_ref().and_then(|s| s.created.clone()),
        }
    }
}

#[derive(Debug, Default)]
struct Cache {
    entries: HashMap<String, CacheEntry>,
    changed: bool,
}

impl Cache {
    fn load(dir: &Path) -> Cache {
        let stored: HashMap<String, StoredEntry> = std::fs::read(dir.join(CACHE_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        let entries = stored.into_iter().map(|(k, v)| (k, v.into())).collect();
        Cache {
            entries,
            changed: false,
        }
    }

    /// Writes the cache atomically, keeping only entries whose files still exist.
    fn save(mut self, dir: &Path) -> Result<()> {
        self.entries
            .retain(|name, _| dir.join(name).symlink_metadata().is_ok());
        let stored: HashMap<&String, StoredEntry> =
            self.entries.iter().map(|(k, v)| (k, v.into())).collect();
        let bytes = serde_json::to_vec(&stored).unwrap_or_default();
        let mut file = AtomicFile::create(&dir.join(CACHE_FILE))?;
        let dest = file.dest().to_path_buf();
        file.file_mut().write_all(&bytes).at(&dest)?;
        file.commit().map(|_| ())
    }
}

impl ImageInfo {
    /// The image as `inspect --json` prints it: `docker inspect`'s field names (`Id`,
    /// `RepoTags`, `Created`, `Author`, `Architecture`, `Os`, `Config`, `RootFS`, `Size`), and
    /// the archive's own facts (`Archive`, `Format`, `ArchiveSize`, `Layers` with each layer's
    /// digest and size as stored). `Size` is the layers' total size as stored.
    pub fn docker_json(&self, archive: &Archive) -> Value {
        let mut config = self.runtime().cloned().unwrap_or_default();
        // `docker inspect` shows these keys even when the image does not set them.
        for key in ["User", "WorkingDir"] {
            config.entry(key).or_insert_with(|| Value::from(""));
        }
        for key in ["Env", "Cmd", "Entrypoint", "Volumes", "OnBuild", "Labels"] {
            config.entry(key).or_insert(Value::Null);
        }
        let mut out = serde_json::Map::new();
        out.insert("Id".into(), self.id.clone().into());
        out.insert("RepoTags".into(), self.repo_tags.clone().into());
        out.insert("Created".into(), self.created().into());
        for (key, field) in [
            ("Author", "author"),
            ("DockerVersion", "docker_version"),
            ("Architecture", "architecture"),
            ("Variant", "variant"),
            ("Os", "os"),
            ("OsVersion", "os.version"),
        ] {
            match self.field(field) {
                Some(v) => out.insert(key.into(), v.into()),
                None if matches!(key, "Variant" | "OsVersion") => None,
                None => out.insert(key.into(), "".into()),
            };
        }
        out.insert("Config".into(), Value::Object(config));
        out.insert(
            "RootFS".into(),
            serde_json::json!({
                "Type": "layers",
                "Layers": self.layers.iter().map(|l| l.diff_id.as_str()).collect::<Vec<_>>(),
            }),
        );
        out.insert("Size".into(), self.size().into());
        out.insert(
            "Layers".into(),
            self.layers
                .iter()
                .map(|l| serde_json::json!({"Digest": l.diff_id, "Size": l.size}))
                .collect(),
        );
        out.insert(
            "Archive".into(),
            archive.path.to_string_lossy().into_owned().into(),
        );
        out.insert("Format".into(), archive.name.format.to_string().into());
        out.insert("ArchiveSize".into(), archive.size.into());
        Value::Object(out)
    }
}

/// Parses an RFC 3339 time.
pub fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// Reads the image an archive holds (the first image, for an archive of several).
pub fn inspect(archive: &Archive) -> Result<ImageInfo> {
    read(archive).map(|(info, _)| info)
}

/// Reads the image an archive holds and the index of the archive's tar (member offsets are
/// usable for a `.docker` only); the image ID must agree with the file name.
pub fn read(archive: &Archive) -> Result<(ImageInfo, TarIndex)> {
    let corrupt = |reason: String| Error::Corrupt {
        path: archive.path.clone(),
        reason,
    };
    let index = match archive.name.format {
        Format::Docker => {
            let file = File::open(&archive.path).at(&archive.path)?;
            TarIndex::read_seekable(BufReader::new(file))
                .map_err(|e| read_error(&archive.path, e))?
        }
        _ => codec::with_tar_reader(archive, &Silent, |tar| {
            TarIndex::read(tar).map_err(|e| read_error(&archive.path, e))
        })?,
    };
    let info = index.image().map_err(corrupt)?;
    let hex = info.id.strip_prefix("sha256:").unwrap_or(&info.id);
    if !hex.starts_with(&archive.name.id) {
        return Err(corrupt(format!(
            "the image ID is {}, but the file name says {}",
            info.id, archive.name.id
        )));
    }
    Ok((info, index))
}

/// The library error for an indexing error of the tar at `path`.
pub fn read_error(path: &Path, e: IndexError) -> Error {
    match e {
        IndexError::Io(e) => Error::io(path, e),
        IndexError::Bad(reason) => Error::Corrupt {
            path: path.to_path_buf(),
            reason,
        },
    }
}

/// Why a tar could not be indexed.
#[derive(Debug)]
pub enum IndexError {
    /// Reading failed.
    Io(io::Error),
    /// The tar is not what it should be.
    Bad(String),
}

impl From<io::Error> for IndexError {
    fn from(e: io::Error) -> Self {
        IndexError::Io(e)
    }
}

/// One member of the outer tar.
#[derive(Debug, Clone)]
pub enum Member {
    /// A regular file: where its data starts in the tar, and its size.
    File { offset: u64, size: u64 },
    /// A symbolic or hard link, to this path (normalized, relative to the tar's root).
    Link(String),
}

/// The members of a `docker save` tar, and the bytes of its small JSON documents.
#[derive(Debug, Default)]
pub struct TarIndex {
    pub members: HashMap<String, Member>,
    pub small: HashMap<String, Vec<u8>>,
}

impl TarIndex {
    /// Indexes a tar read as a stream.
    pub fn read(reader: &mut dyn Read) -> std::result::Result<TarIndex, IndexError> {
        let mut archive = tar::Archive::new(reader);
        let entries = archive
            .entries()
            .map_err(|e| IndexError::Bad(format!("not a tar: {e}")))?;
        Self::from_entries(entries)
    }

    /// Indexes a tar that can be seeked, skipping over file data.
    pub fn read_seekable<R: Read + Seek>(reader: R) -> std::result::Result<TarIndex, IndexError> {
        let mut archive = tar::Archive::new(reader);
        let entries = archive
            .entries_with_seek()
            .map_err(|e| IndexError::Bad(format!("not a tar: {e}")))?;
        Self::from_entries(entries)
    }

    fn from_entries<R: Read>(
        entries: tar::Entries<'_, R>,
    ) -> std::result::Result<TarIndex, IndexError> {
        let damaged = |e: io::Error| IndexError::Bad(format!("the tar is damaged: {e}"));
        let mut index = TarIndex::default();
        for entry in entries {
            let mut entry = entry.map_err(damaged)?;
            let path = entry.path().map_err(damaged)?.into_owned();
            let key = normalize(&path).map_err(IndexError::Bad)?;
            let kind = entry.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name()
                    .map_err(damaged)?
                    .ok_or_else(|| IndexError::Bad(format!("the link `{key}` has no target")))?;
                // A symbolic link is relative to its folder; a hard link to the tar's root.
                let base = if kind.is_symlink() {
                    Path::new(&key)
                        .parent()
                        .unwrap_or(Path::new(""))
                        .to_path_buf()
                } else {
                    Default::default()
                };
                let resolved = normalize(&base.join(target)).map_err(IndexError::Bad)?;
                index.members.insert(key, Member::Link(resolved));
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let size = entry.size();
            let offset = entry.raw_file_position();
            if size <= SMALL && is_document(&key) {
                let mut bytes = Vec::with_capacity(size as usize);
                entry.read_to_end(&mut bytes)?;
                index.small.insert(key.clone(), bytes);
            } else if size <= SMALL && key.starts_with("blobs/") {
                // A blob is a JSON document (manifest, index, config) or a layer.
                let mut first = [0u8; 1];
                if entry.read(&mut first)? == 1 && first[0] == b'{' {
                    let mut bytes = vec![b'{'];
                    entry.read_to_end(&mut bytes)?;
                    index.small.insert(key.clone(), bytes);
                }
            }
            index.members.insert(key, Member::File { offset, size });
        }
        Ok(index)
    }

    /// The regular file a path names, following links: its final path, data offset and size.
    pub fn file(&self, path: &str) -> Option<(String, u64, u64)> {
        let mut key = normalize(Path::new(path)).ok()?;
        for _ in 0..MAX_LINKS {
            match self.members.get(&key)? {
                Member::File { offset, size } => return Some((key, *offset, *size)),
                Member::Link(target) => key = target.clone(),
            }
        }
        None
    }

    /// The bytes of a small document, following links.
    pub fn document(&self, path: &str) -> Option<&[u8]> {
        let (key, _, _) = self.file(path)?;
        self.small.get(&key).map(Vec::as_slice)
    }

    /// The first image the tar holds.
    pub fn image(&self) -> std::result::Result<ImageInfo, String> {
        if let Some(bytes) = self.document("manifest.json") {
            let manifest: Vec<ManifestEntry> = serde_json::from_slice(bytes)
                .map_err(|e| format!("manifest.json is not valid: {e}"))?;
            let entry = manifest
                .first()
                .ok_or("manifest.json lists no image")?
                .clone();
            let layers: Vec<(String, u64)> = entry
                .layers
                .iter()
                .map(|l| {
                    self.file(l)
                        .map(|(_, _, size)| (l.clone(), size))
                        .ok_or_else(|| format!("the layer `{l}` named by manifest.json is missing"))
                })
                .collect::<std::result::Result<_, _>>()?;
            return self.build(&entry.config, entry.repo_tags.unwrap_or_default(), layers);
        }
        if self.members.contains_key("index.json") {
            return self.oci_image();
        }
        Err("no manifest.json and no index.json: this is not a `docker save` archive".into())
    }

    /// Reads an OCI image layout: `index.json` → manifest (through nested indexes) → config.
    fn oci_image(&self) -> std::result::Result<ImageInfo, String> {
        let parse = |path: &str| -> std::result::Result<Document, String> {
            let bytes = self
                .document(path)
                .ok_or_else(|| format!("`{path}` is missing"))?;
            Document::parse(bytes).map_err(|e| format!("`{path}`: {e}"))
        };
        let mut doc = parse("index.json")?;
        let mut tags = Vec::new();
        for _ in 0..MAX_LINKS {
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
                .ok_or("the OCI index lists no manifest")?;
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
        Err("the OCI index nests too deeply".into())
    }

    fn build(
        &self,
        config_path: &str,
        repo_tags: Vec<String>,
        layers: Vec<(String, u64)>,
    ) -> std::result::Result<ImageInfo, String> {
        let bytes = self.document(config_path).ok_or_else(|| {
            format!("the config `{config_path}` is missing or too large for an image config")
        })?;
        let config: Value = serde_json::from_slice(bytes)
            .map_err(|e| format!("the config `{config_path}` is not valid: {e}"))?;
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
            return Err(format!(
                "the manifest lists {} layers, the config {} diff_ids",
                layers.len(),
                diff_ids.len()
            ));
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
            config_bytes: bytes.to_vec(),
        })
    }
}

/// The path of a blob in an OCI layout.
pub(crate) fn blob_path(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}

/// Whether a member is one of the layout's JSON documents.
fn is_document(key: &str) -> bool {
    key.ends_with(".json") || key == "oci-layout" || key == "repositories"
}

/// A member path as manifests name it (no leading `./`, `..` resolved); refuses paths that are
/// absolute or leave the tar's root.
pub(crate) fn normalize(path: &Path) -> std::result::Result<String, String> {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(format!(
                        "the tar holds a path that escapes with `..`: `{}`",
                        path.display()
                    ));
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "the tar holds an absolute path `{}`",
                    path.display()
                ));
            }
        }
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::tests::{classic_tar, tar_of};

    #[test]
    fn classic_layout_streamed_and_seeked_agree() {
        let (tar, id) = classic_tar(&[b"layer one", b"layer two!"], false);
        let streamed = TarIndex::read(&mut tar.as_slice())
            .unwrap()
            .image()
            .unwrap();
        let seeked = TarIndex::read_seekable(io::Cursor::new(&tar))
            .unwrap()
            .image()
            .unwrap();
        assert_eq!(streamed.id, id);
        assert_eq!(seeked.id, id);
        assert_eq!(streamed.layers, seeked.layers);
        assert_eq!(streamed.layers.len(), 2);
        assert!(streamed.layers[0].diff_id.starts_with("sha256:"));
    }

    #[test]
    fn symlinked_layers_are_followed() {
        let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:a","sha256:a"]}}"#;
        let config_name = format!("{}.json", &sha256(config)[7..]);
        let manifest = format!(
            r#"[{{"Config":"{config_name}","RepoTags":["x:1"],"Layers":["aa/layer.tar","bb/layer.tar"]}}]"#
        );
        let mut builder = tar::Builder::new(Vec::new());
        let mut add = |path: &str, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            builder.append_data(&mut h, path, data).unwrap();
        };
        add("aa/layer.tar", b"0123456789");
        add(&config_name, config);
        add("manifest.json", manifest.as_bytes());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        builder
            .append_link(&mut h, "bb/layer.tar", "../aa/layer.tar")
            .unwrap();
        let tar = builder.into_inner().unwrap();
        let info = TarIndex::read_seekable(io::Cursor::new(&tar))
            .unwrap()
            .image()
            .unwrap();
        assert_eq!(info.layers[1].size, 10);
        assert_eq!(info.repo_tags, vec!["x:1".to_string()]);
        assert_eq!(info.field("architecture"), Some("amd64"));
    }

    #[test]
    fn oci_layout_without_manifest_json() {
        let config = br#"{"created":"2024-01-02T03:04:05.123456789Z","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:d1"]}}"#;
        let layer = vec![7u8; 300];
        let cfg_digest = sha256(config);
        let layer_digest = sha256(&layer);
        let manifest = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{cfg_digest}","size":{}}},"layers":[{{"digest":"{layer_digest}","size":300}}]}}"#,
            config.len()
        );
        let man_digest = sha256(manifest.as_bytes());
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"digest":"{man_digest}","size":{},"annotations":{{"io.containerd.image.name":"docker.io/library/web:2.0"}}}}]}}"#,
            manifest.len()
        );
        let tar = tar_of(&[
            (
                "oci-layout".into(),
                br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
            ),
            ("index.json".into(), index.into_bytes()),
            (blob_path(&man_digest), manifest.into_bytes()),
            (blob_path(&cfg_digest), config.to_vec()),
            (blob_path(&layer_digest), layer),
        ]);
        let info = TarIndex::read(&mut tar.as_slice())
            .unwrap()
            .image()
            .unwrap();
        assert_eq!(info.id, cfg_digest);
        assert_eq!(
            info.repo_tags,
            vec!["docker.io/library/web:2.0".to_string()]
        );
        assert_eq!(info.layers[0].size, 300);
        assert_eq!(info.layers[0].diff_id, "sha256:d1");
        assert_eq!(
            info.created_time().map(|t| t.unix_timestamp()),
            Some(1_704_164_645)
        );
    }

    #[test]
    fn unreadable_archives_are_remembered_until_they_change() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("web_1.0_aaaaaaaaaaaa.docker");
        std::fs::write(&path, b"not a tar").unwrap();
        let archive = Archive::from_path(&path).unwrap();
        assert!(summaries(&[&archive])[0].is_err());
        let cache = std::fs::read_to_string(d.path().join(CACHE_FILE)).unwrap();
        assert!(cache.contains("\"id\":null"), "{cache}");
        let again = summaries(&[&archive]).pop().unwrap().unwrap_err();
        assert!(again.to_string().contains(CACHE_FILE), "{again}");
        // A readable one is read and remembered with its ID.
        let (tar, id) = classic_tar(&[b"layer"], false);
        let good = d.path().join(format!("web_1.0_{}.docker", &id[7..19]));
        std::fs::write(&good, tar).unwrap();
        let archive = Archive::from_path(&good).unwrap();
        assert_eq!(summaries(&[&archive])[0].as_ref().unwrap().id, id);
    }

    #[test]
    fn escaping_members_are_refused() {
        let tar = tar_of(&[("a/../../x".into(), b"x".to_vec())]);
        assert!(TarIndex::read(&mut tar.as_slice()).is_err());
    }

    #[test]
    fn not_an_image() {
        let tar = tar_of(&[("hello.txt".into(), b"hi".to_vec())]);
        let err = TarIndex::read(&mut tar.as_slice())
            .unwrap()
            .image()
            .unwrap_err();
        assert!(err.contains("manifest.json"), "{err}");
    }
}
