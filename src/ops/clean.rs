//! `clean`: remove what the latest rule says is past keeping.

use std::collections::HashSet;
use std::path::Path;

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
    /// What garbage collection of the layer stores freed (or would free): blobs and bytes.
    pub freed: Freed,
}

/// What garbage collection freed, and why it did not run in a layer store.
#[derive(Debug, Default)]
pub struct Freed {
    pub blobs: usize,
    pub bytes: u64,
    /// A layer store that was not collected, and why (a `.ref` that cannot be read).
    pub errors: Vec<crate::layout::LayoutError>,
}

/// Collects the blobs of every layer store under `store` that no `.ref` needs once `gone` are
/// removed, and rewrites their `index.json` (not on a dry run).
pub(crate) fn collect_garbage(store: &Store, gone: &[&Archive], dry_run: bool) -> Freed {
    let gone: HashSet<&Path> = gone.iter().map(|a| a.path.as_path()).collect();
    let mut freed = Freed::default();
    for layer_store in store.layer_stores() {
        if !dry_run && let Err(e) = layer_store.rewrite_index(&gone) {
            freed.errors.push(e);
            continue;
        }
        match layer_store.collect(&gone, dry_run) {
            Ok(c) => {
                freed.blobs += c.blobs.len();
                freed.bytes += c.freed();
            }
            Err(e) => freed.errors.push(e),
        }
    }
    freed
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
        let freed = collect_garbage(store, &plan.doomed, true);
        return Cleaned {
            removed: plan.doomed,
            skipped: plan.skipped,
            error: None,
            freed,
        };
    }
    let (removed, error) = store::remove(&plan.doomed);
    let removed: Vec<&Archive> = plan
        .doomed
        .into_iter()
        .filter(|a| removed.contains(&a.path))
        .collect();
    // Blobs go only once the `.ref` archives that needed them are gone.
    let freed = collect_garbage(store, &removed, false);
    Cleaned {
        skipped: plan.skipped,
        removed,
        error,
        freed,
    }
}
