//! What `clean` removes, and removing it.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use super::{LatestRule, Skipped, Store};
use crate::archive::Archive;
use crate::io_error::IoError;
use crate::name::Format;

/// What `clean` would remove, and the broken archives it skipped (and leaves alone).
#[derive(Debug, Default)]
pub struct CleanPlan<'a> {
    pub doomed: Vec<&'a Archive>,
    pub skipped: Vec<Skipped<'a>>,
}

impl Store {
    /// What `clean` removes: for each of `images` (every image when empty), every archive
    /// outside the `keep` greatest (version, id) pairs by `rule` that hold an archive passing
    /// the quick check, and every `.docker` archive of a kept pair whose compressed twin (same
    /// image, version and id) passes it. Walking an image's archives latest first, each archive
    /// of a pair that may still be kept is checked; a broken one is skipped (left alone, and
    /// reported); archives below the kept pairs are removed unchecked. So the latest archive
    /// that passes is never removed, and an image none of whose archives passes loses nothing.
    /// Foreign files are never included.
    pub fn clean_plan(&self, images: &[String], keep: usize, rule: LatestRule) -> CleanPlan<'_> {
        let mut plan = CleanPlan::default();
        // Every image's archives latest first, as `images` lists them.
        let by_image = self.ordered(self.by_image(images), rule).into_values();
        for archives in by_image {
            let pair = |a: &Archive| (a.name.version.clone(), a.name.id.clone());
            let mut kept = HashSet::new();
            let mut sound = Vec::new();
            let mut stale = Vec::new();
            for a in &archives {
                let p = pair(a);
                if kept.len() >= keep && !kept.contains(&p) {
                    stale.push(*a);
                    continue;
                }
                match self.facts().broken(a) {
                    Some(broken) => plan.skipped.push(Skipped { archive: a, broken }),
                    None => {
                        kept.insert(p);
                        sound.push(*a);
                    }
                }
            }
            // A `.docker` goes when a compressed or `.ref` twin of its pair is known sound
            // (verified in full, now or when toolbox wrote or verified it), but never the
            // archive `latest` returns (the first that passes). A `.ref` beside a `.zip` or
            // `.zst` stays: that file is made for shipping.
            let latest = sound.first().map(|a| a.path.clone());
            let candidates: Vec<&Archive> = sound
                .iter()
                .copied()
                .filter(|a| Some(&a.path) != latest.as_ref() && a.name.format == Format::Docker)
                .collect();
            let wanted: HashSet<_> = candidates.iter().map(|a| pair(a)).collect();
            let compressed: HashSet<_> = sound
                .iter()
                .filter(|a| {
                    (a.name.format.is_compressed() || a.name.format == Format::Ref)
                        && wanted.contains(&pair(a))
                })
                .filter(|a| self.facts().sound(a))
                .map(|a| pair(a))
                .collect();
            let mut doomed: HashSet<&Path> = stale.iter().map(|a| a.path.as_path()).collect();
            doomed.extend(
                candidates
                    .iter()
                    .filter(|a| compressed.contains(&pair(a)))
                    .map(|a| a.path.as_path()),
            );
            // In the order `images` lists them.
            plan.doomed.extend(
                archives
                    .iter()
                    .copied()
                    .filter(|a| doomed.contains(a.path.as_path())),
            );
        }
        plan
    }
}

/// Removes archives one by one; returns the paths removed and the first error met, if any.
pub fn remove(archives: &[&Archive]) -> (Vec<PathBuf>, Option<IoError>) {
    let mut removed = Vec::new();
    let mut first_error = None;
    for a in archives {
        // Re-check right before removing: only a regular file, never a link put there since.
        let result = match fs::symlink_metadata(&a.path) {
            Ok(m) if m.is_file() => fs::remove_file(&a.path),
            Ok(_) => Err(std::io::Error::other(
                "no longer a regular file; left alone",
            )),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => removed.push(a.path.clone()),
            Err(e) => {
                first_error.get_or_insert(IoError::new(&a.path, e));
            }
        }
    }
    // The removals are made durable before anything that relies on them (the blobs only the
    // removed `.ref` archives needed) goes.
    let folders: std::collections::BTreeSet<&Path> = removed
        .iter()
        .filter_map(|p: &PathBuf| p.parent())
        .collect();
    for folder in folders {
        let folder = if folder.as_os_str().is_empty() {
            Path::new(".")
        } else {
            folder
        };
        if let Err(e) = crate::commit::sync_dir(folder) {
            first_error.get_or_insert(e);
        }
    }
    (removed, first_error)
}
