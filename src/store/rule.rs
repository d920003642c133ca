//! The one rule that decides which archive of an image is the latest, as a key: every archive
//! gets a [`LatestKey`] before anything is sorted, and keys are compared as plain values, so
//! that `images`, `latest`, `config` and `clean` order archives the same way, always.

use std::ffi::OsStr;
use std::path::Path;
use std::time::SystemTime;

use time::OffsetDateTime;

use super::ArchiveFacts;
use crate::archive::Archive;
use crate::version::Version;

/// The latest rule. Among the archives of one image the latest is the greatest by, in order:
///
/// 1. clean beats dirty (dropped with `allow_dirty`);
/// 2. a version that parses beats one that does not, and parsed versions compare as
///    [`Version`] does;
/// 3. among archives that tie on 1 and 2 and do not all hold the same image ID: the newer image
///    creation time, an archive whose creation time cannot be read ranking below every one that
///    has one (the times are read before sorting, in one batch: see [`LatestRule::keys`]);
/// 4. the newer file modification time;
/// 5. the greater file name, then the greater path (so that the answer is always the same).
#[derive(Debug, Clone, Copy, Default)]
pub struct LatestRule {
    pub allow_dirty: bool,
}

/// Where an archive stands by the latest rule: greater is more recent. A total order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LatestKey<'a> {
    level: Level,
    /// `None`: not read (its group needs no creation time) or unreadable.
    created: Option<OffsetDateTime>,
    modified: SystemTime,
    file_name: Option<&'a OsStr>,
    path: &'a Path,
}

/// The first two steps of the rule, which group archives whose creation time may matter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Level {
    clean: bool,
    version: Option<Version>,
}

impl LatestRule {
    fn level(&self, a: &Archive) -> Level {
        Level {
            clean: self.allow_dirty || !a.is_dirty(),
            version: Version::parse(&a.name.version),
        }
    }

    /// The key of `archive` at `level`, given its creation time when the rule needs it
    /// (`None` when it is not needed or cannot be read).
    fn key<'a>(
        &self,
        level: Level,
        archive: &'a Archive,
        created: Option<OffsetDateTime>,
    ) -> LatestKey<'a> {
        LatestKey {
            level,
            created,
            modified: archive.modified,
            file_name: archive.path.file_name(),
            path: &archive.path,
        }
    }

    /// The key of each archive, in order, with the creation times the rule needs read in one
    /// batch: `facts` is asked once, for the archives of groups (one image, one cleanliness and
    /// version) that hold more than one image ID — usually none.
    pub fn keys<'a>(
        &self,
        archives: &[&'a Archive],
        facts: &dyn ArchiveFacts,
    ) -> Vec<LatestKey<'a>> {
        let levels: Vec<Level> = archives.iter().map(|a| self.level(a)).collect();
        let need = needing(archives, &levels);
        let mut created: Vec<Option<OffsetDateTime>> = vec![None; archives.len()];
        if !need.is_empty() {
            let batch: Vec<&Archive> = need.iter().map(|&i| archives[i]).collect();
            for (i, time) in need.into_iter().zip(facts.created(&batch)) {
                created[i] = time;
            }
        }
        levels
            .into_iter()
            .zip(archives)
            .zip(created)
            .map(|((level, a), time)| self.key(level, a, time))
            .collect()
    }

    /// The latest of some archives (of one image).
    pub fn latest<'a>(
        &self,
        archives: &[&'a Archive],
        facts: &dyn ArchiveFacts,
    ) -> Option<&'a Archive> {
        // Only the top (cleanliness, version) group can hold the latest: the creation times of
        // the others are never needed.
        let top = self.top(archives);
        let keys = self.keys(&top, facts);
        keys.into_iter()
            .zip(top)
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, a)| a)
    }

    /// The archives (of one image) that share the greatest cleanliness and version.
    pub(crate) fn top<'a>(&self, archives: &[&'a Archive]) -> Vec<&'a Archive> {
        let levels: Vec<Level> = archives.iter().map(|a| self.level(a)).collect();
        let Some(best) = levels.iter().max() else {
            return Vec::new();
        };
        archives
            .iter()
            .zip(&levels)
            .filter(|(_, l)| *l == best)
            .map(|(a, _)| *a)
            .collect()
    }
}

/// The indices of the archives in a group (one image, one level) that holds more than one image
/// ID.
fn needing(archives: &[&Archive], levels: &[Level]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..archives.len()).collect();
    let group = |i: usize| (archives[i].name.image.as_str(), &levels[i]);
    order.sort_by(|&a, &b| group(a).cmp(&group(b)));
    order
        .chunk_by(|&a, &b| group(a) == group(b))
        .filter(|run| {
            run.iter()
                .any(|&i| archives[i].name.id != archives[run[0]].name.id)
        })
        .flatten()
        .copied()
        .collect()
}
