//! `clean`: remove what the latest rule says is past keeping.

use crate::archive::Archive;
use crate::io_error::IoError;
use crate::lock::DirLock;
use crate::store::{self, LatestRule, Skipped, Store};

/// What `clean` did: the archives removed (or, for a dry run, that would be), and the first
/// removal that failed, if one did (the others are still tried).
#[derive(Debug)]
pub struct Cleaned<'a> {
    pub removed: Vec<&'a Archive>,
    /// Broken archives (by the quick check) that were skipped and left alone.
    pub skipped: Vec<Skipped<'a>>,
    pub error: Option<IoError>,
}

/// Whether `clean` removes what it finds.
#[derive(Debug, Clone, Copy)]
pub enum Removal<'l> {
    /// `--dry-run`: nothing is removed (and no lock is needed).
    DryRun,
    /// Remove, under the artifacts directory's lock.
    Remove(&'l DirLock),
}

/// Removes, for each of `images` (every image when empty), the archives outside the `keep`
/// greatest (version, id) pairs and the `.docker` archives a compressed twin supersedes (see
/// [`Store::clean_plan`]); with [`Removal::DryRun`], only says which.
pub fn clean<'a>(
    store: &'a Store,
    images: &[String],
    keep: usize,
    rule: LatestRule,
    removal: Removal<'_>,
) -> Cleaned<'a> {
    let plan = store.clean_plan(images, keep, rule);
    if let Removal::DryRun = removal {
        return Cleaned {
            removed: plan.doomed,
            skipped: plan.skipped,
            error: None,
        };
    }
    let (removed, error) = store::remove(&plan.doomed);
    Cleaned {
        skipped: plan.skipped,
        removed: plan
            .doomed
            .into_iter()
            .filter(|a| removed.contains(&a.path))
            .collect(),
        error,
    }
}
