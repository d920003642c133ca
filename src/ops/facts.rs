//! The store's questions about archives' contents, answered by reading them (through the ZIP
//! comment and the per-folder cache of [`crate::meta`] first).

use std::path::Path;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::archive::Archive;
use crate::codec::{self, Broken};
use crate::error::Result;
use crate::meta;
use crate::store::{ArchiveFacts, Store};

/// Answers from the archives themselves, through the cache.
#[derive(Debug, Clone, Copy)]
pub struct ArchiveContents {
    /// Whether what is read is written to the cache.
    pub remember: bool,
}

impl ArchiveFacts for ArchiveContents {
    fn created(&self, archives: &[&Archive]) -> Vec<Option<OffsetDateTime>> {
        meta::created_times_of(archives, self.remember)
    }

    fn full_ids(&self, archives: &[&Archive]) -> Vec<Option<String>> {
        meta::full_ids(archives, self.remember)
    }

    fn broken(&self, archive: &Archive) -> Option<Broken> {
        codec::check_ends(&archive.path, &archive.name.format).err()
    }

    fn sound(&self, archive: &Archive) -> bool {
        // A `.ref`'s blobs may change without its file changing (and a blob is shared): it is
        // verified now, never taken on the word of the cache.
        let memo = archive.name.format != crate::name::Format::Ref && meta::known_verified(archive);
        memo || super::verify::verify_remembering(archive, self.remember).is_ok()
    }
}

/// Opens the artifacts directory `dir`, with what is inside its archives read as the latest rule
/// and ID lookups need it.
pub fn open_store(dir: &Path) -> Result<Store> {
    Ok(Store::open(
        dir,
        Arc::new(ArchiveContents { remember: true }),
    )?)
}

/// [`open_store`], for a use case that leaves in the folder only what it is asked to change:
/// what it reads of archives is not written to the cache.
pub fn open_store_quietly(dir: &Path) -> Result<Store> {
    Ok(Store::open(
        dir,
        Arc::new(ArchiveContents { remember: false }),
    )?)
}
