//! What `clean` removes, and removing it.

use std::collections::HashSet;
use std::fs;
use std::path::PathBuf;

use super::{LatestRule, Store};
use crate::archive::Archive;
use crate::io_error::IoError;
use crate::name::Format;

impl Store {
    /// What `clean` removes: for each of `images` (every image when empty), every archive
    /// outside the `keep` greatest (version, id) pairs by `rule`, and every `.docker` archive
    /// whose `.zip` twin (same image, version and id) exists. Foreign files are never included.
    pub fn clean_plan(&self, images: &[String], keep: usize, rule: LatestRule) -> Vec<&Archive> {
        let mut doomed = Vec::new();
        // Every image's archives latest first, as `images` lists them.
        let by_image = self.ordered(self.by_image(images), rule).into_values();
        for archives in by_image {
            let pair = |a: &Archive| (a.name.version.clone(), a.name.id.clone());
            // Pairs in the order of their best archive; the first `keep` stay.
            let mut kept = HashSet::new();
            let mut seen = HashSet::new();
            for a in &archives {
                if seen.insert(pair(a)) && kept.len() < keep {
                    kept.insert(pair(a));
                }
            }
            let compressed: HashSet<_> = archives
                .iter()
                .filter(|a| a.name.format.is_compressed())
                .map(|a| pair(a))
                .collect();
            // Never the archive `latest` returns (the first after sorting), whatever the twins.
            let latest = archives.first().map(|a| a.path.clone());
            doomed.extend(
                archives
                    .into_iter()
                    .filter(|a| Some(&a.path) != latest.as_ref())
                    .filter(|a| {
                        let p = pair(a);
                        !kept.contains(&p)
                            || (a.name.format == Format::Docker && compressed.contains(&p))
                    }),
            );
        }
        doomed
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
    (removed, first_error)
}
