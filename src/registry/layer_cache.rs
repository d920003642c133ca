//! Which compressed blob each uncompressed layer was pushed as (gzip at a fixed level on fixed
//! chunks is deterministic), kept in a file the caller names (the command line:
//! `~/.cache/toolbox/pushed-layers.json`, `$XDG_CACHE_HOME` honoured) so that a second push of
//! the same layers uploads nothing.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::commit::AtomicFile;
use crate::io_error::{IoContext, IoError};

/// A layer as the registry stores it, once its digest is known.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct Pushable {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
}

/// The record of pushed layers, by diff ID.
pub(super) struct LayerCache {
    path: Option<PathBuf>,
    entries: HashMap<String, Pushable>,
    changed: bool,
}

impl LayerCache {
    /// Reads the record at `path` (`None`: no record is kept). A missing or unreadable file
    /// is an empty record.
    pub(super) fn load(path: Option<&Path>) -> LayerCache {
        let entries = path
            .and_then(|p| fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        LayerCache {
            path: path.map(Path::to_path_buf),
            entries,
            changed: false,
        }
    }

    pub(super) fn get(&self, diff_id: &str) -> Option<Pushable> {
        self.entries.get(diff_id).cloned()
    }

    pub(super) fn insert(&mut self, diff_id: &str, p: &Pushable) {
        if self.entries.get(diff_id) != Some(p) {
            self.entries.insert(diff_id.to_string(), p.clone());
            self.changed = true;
        }
    }

    /// Saves the record, atomically; a record that cannot be written only costs a later
    /// upload.
    pub(super) fn save(self) {
        let Some(path) = self.path.filter(|_| self.changed) else {
            return;
        };
        let write = || -> Result<(), IoError> {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).at(dir)?;
            }
            let mut file = AtomicFile::create(&path)?;
            let bytes = serde_json::to_vec(&self.entries).unwrap_or_default();
            io::Write::write_all(file.file_mut(), &bytes).at(&path)?;
            file.commit().map(|_| ())
        };
        let _ = write();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_survives_a_save_and_load() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("toolbox").join("pushed-layers.json");
        let layer = Pushable {
            digest: format!("sha256:{}", "a".repeat(64)),
            size: 42,
            media_type: crate::oci::DOCKER_LAYER_GZIP.into(),
        };
        let mut cache = LayerCache::load(Some(&path));
        assert_eq!(cache.get("sha256:diff"), None);
        cache.insert("sha256:diff", &layer);
        cache.save();
        assert_eq!(
            LayerCache::load(Some(&path)).get("sha256:diff"),
            Some(layer.clone())
        );
        // No path: nothing read, nothing written.
        let mut none = LayerCache::load(None);
        assert_eq!(none.get("sha256:diff"), None);
        none.insert("sha256:other", &layer);
        none.save();
        assert_eq!(LayerCache::load(Some(&path)).get("sha256:other"), None);
    }
}
