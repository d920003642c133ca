//! What is known about an archive without reading it twice: the image's full ID and creation
//! time ([`Summary`]), carried in the comment of the ZIPs toolbox writes and kept in a cache
//! file in each folder that holds archives ([`CACHE_FILE`]), keyed by file name, size and
//! modification time so that an entry cannot go stale.
//!
//! It knows nothing of the latest rule: the store's callers read here, in one batch, what the
//! rule needs, and hand it over.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::archive::Archive;
use crate::commit::AtomicFile;
use crate::digest;
use crate::image::{self, ArchiveError, ImageInfo, parse_time};
use crate::io_error::{IoContext, IoError};

/// Why an archive's summary is not known.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error(
        "`{}` could not be read when it had this size and modification time (see {CACHE_FILE})",
        path.display()
    )]
    Unreadable { path: PathBuf },

    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

type Result<T, E = MetaError> = std::result::Result<T, E>;
use crate::name::Format;
use crate::timestamp;

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
/// The largest cache read (some 300 bytes an archive: a million archives in one folder).
const CACHE_CAP: u64 = 256 << 20;

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
        let hex = digest::hex_part(&self.id);
        hex.len() == 64 && hex.starts_with(&archive.name.id)
    }
}

impl Summary {
    /// The summary of the image `info` describes, in the archive named with `name_id`: its ID
    /// is the identity the name's ID begins (the config digest for a classic engine's archive
    /// and a pull's, a manifest's or index's digest for a containerd-store engine's), else the
    /// config digest.
    pub fn of(info: &ImageInfo, name_id: &str) -> Summary {
        let id = info
            .identities()
            .into_iter()
            .find(|id| digest::hex_part(id).starts_with(name_id))
            .unwrap_or(&info.id)
            .to_string();
        Summary {
            id,
            created: info.created().map(str::to_string),
        }
    }
}

/// The creation time of each archive, in order (`None` where it cannot be read), read as
/// [`summaries`] reads them.
pub fn created_times(archives: &[&Archive]) -> Vec<Option<OffsetDateTime>> {
    created_times_of(archives, true)
}

/// [`created_times`], remembering what is read in the cache only when `remember`.
pub fn created_times_of(archives: &[&Archive], remember: bool) -> Vec<Option<OffsetDateTime>> {
    read_summaries(archives, remember)
        .into_iter()
        .map(|s| s.ok().and_then(|s| s.created_time()))
        .collect()
}

/// The full image ID of each archive, in order (`None` where it cannot be read), remembering
/// what is read in the cache only when `remember`.
pub fn full_ids(archives: &[&Archive], remember: bool) -> Vec<Option<String>> {
    read_summaries(archives, remember)
        .into_iter()
        .map(|s| s.ok().map(|s| s.id))
        .collect()
}

/// The summary of each archive, in order: from the cache beside it (one read per folder), else
/// from its ZIP comment, else by reading the archive; what is read (or found unreadable) is
/// then kept in the cache.
pub fn summaries(archives: &[&Archive]) -> Vec<Result<Summary>> {
    read_summaries(archives, true)
}

/// The same as [`summaries`]; with `remember` false, what is read is not written to the
/// cache (for a run that must leave the folder as it is).
pub fn read_summaries(archives: &[&Archive], remember: bool) -> Vec<Result<Summary>> {
    let mut caches: HashMap<PathBuf, Cache> = HashMap::new();
    let out: Vec<Result<Summary>> = archives
        .iter()
        .map(|archive| summary_of(archive, &mut caches))
        .collect();
    for (dir, cache) in caches {
        if remember && cache.changed {
            // A cache that cannot be written (a read-only folder) only costs time later.
            let _ = cache.save(&dir);
        }
    }
    out
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
                return Err(MetaError::Unreadable {
                    path: archive.path.clone(),
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
        None => image::inspect(archive)
            .map(|info| Summary::of(&info, &archive.name.id))
            .map_err(MetaError::from),
    };
    // What cannot be read is remembered too (until the file changes), but not a failed read.
    let summary = match &found {
        Ok(summary) => Some(summary.clone()),
        Err(MetaError::Archive(ArchiveError::Io(_))) => return found,
        Err(_) => None,
    };
    cache.entries.insert(
        file_name,
        CacheEntry {
            key,
            summary,
            verified: false,
        },
    );
    cache.changed = true;
    found
}

/// Remembers, in the cache beside it, that `archive` (this very file: its name, size and
/// modification time) was verified in full and holds the image `info` describes. A cache that
/// cannot be written only costs a verification later.
pub fn remember_verified(archive: &Archive, info: &ImageInfo) {
    let dir = parent_of(archive);
    let mut cache = Cache::load(&dir);
    cache.entries.insert(
        archive.file_name(),
        CacheEntry {
            key: CacheKey::of(archive),
            summary: Some(Summary::of(info, &archive.name.id)),
            verified: true,
        },
    );
    let _ = cache.save(&dir);
    if let Ok(mut read) = VERIFIED.lock()
        && let Some(read) = read.as_mut()
    {
        read.remove(&dir);
    }
}

/// The files each folder's cache says toolbox verified (name, key), read once per run.
static VERIFIED: std::sync::Mutex<Option<HashMap<PathBuf, HashMap<String, CacheKey>>>> =
    std::sync::Mutex::new(None);

/// Whether the cache beside `archive` says toolbox verified this very file in full.
pub fn known_verified(archive: &Archive) -> bool {
    let dir = parent_of(archive);
    let Ok(mut read) = VERIFIED.lock() else {
        return false;
    };
    let verified = read
        .get_or_insert_with(HashMap::new)
        .entry(dir)
        .or_insert_with_key(|dir| {
            Cache::load(dir)
                .entries
                .into_iter()
                .filter(|(_, e)| e.verified)
                .map(|(name, e)| (name, e.key))
                .collect()
        });
    verified
        .get(&archive.file_name())
        .is_some_and(|key| *key == CacheKey::of(archive))
}

fn parent_of(archive: &Archive) -> PathBuf {
    archive
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
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
        // Seconds and nanoseconds since the epoch, whatever the time (no calendar involved).
        let (modified_s, modified_ns) = timestamp::unix(archive.modified);
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
    /// Whether toolbox verified this very file in full (when it wrote it, or in `verify`).
    verified: bool,
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
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    verified: bool,
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
            verified: e.verified,
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
            verified: e.verified,
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
        let path = dir.join(CACHE_FILE);
        let bytes = match crate::regular::read(&path, CACHE_CAP) {
            Ok(bytes) => bytes,
            Err(e) => {
                crate::warn::warn(e.to_string());
                None
            }
        };
        let stored: HashMap<String, StoredEntry> = bytes
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        let entries = stored.into_iter().map(|(k, v)| (k, v.into())).collect();
        Cache {
            entries,
            changed: false,
        }
    }

    /// Writes the cache atomically, keeping only entries whose files still exist.
    fn save(mut self, dir: &Path) -> Result<(), IoError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::tests::classic_tar;

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
}
