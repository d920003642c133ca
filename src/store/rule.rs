//! The one rule that decides which archive of an image is the latest, as a key: every archive
//! gets a [`LatestKey`] before anything is sorted, and keys are compared as plain values, so
//! that `images`, `latest`, `config` and `clean` order archives the same way, always.

use std::path::PathBuf;
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
///    has one (the times are read before sorting, in one batch: see [`LatestRule::needs_created`]);
/// 4. the newer file modification time;
/// 5. the greater file name, then the greater path (so that the answer is always the same).
#[derive(Debug, Clone, Copy, Default)]
pub struct LatestRule {
    pub allow_dirty: bool,
}

/// Where an archive stands by the latest rule: greater is more recent. A total order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LatestKey {
    clean: bool,
    version: Option<Version>,
    /// `None`: not read (its group needs no creation time) or unreadable.
    created: Option<OffsetDateTime>,
    modified: SystemTime,
    file_name: Option<std::ffi::OsString>,
    path: PathBuf,
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

    /// The key of `archive`, given its creation time when the rule needs it (`None` when it
    /// is not needed or cannot be read).
    pub fn key(&self, archive: &Archive, created: Option<OffsetDateTime>) -> LatestKey {
        let Level { clean, version } = self.level(archive);
        LatestKey {
            clean,
            version,
            created,
            modified: archive.modified,
            file_name: archive.path.file_name().map(ToOwned::to_owned),
            path: archive.path.clone(),
        }
    }

    /// Which of `archives` (of any images) the rule needs the creation time of: those of an
    /// image whose archives tie on cleanliness and version with an archive of another image
    /// ID. Usually none.
    pub fn needs_created<'a>(&self, archives: &[&'a Archive]) -> Vec<&'a Archive> {
        let mut grouped: Vec<(&str, Level, &'a Archive)> = archives
            .iter()
            .map(|a| (a.name.image.as_str(), self.level(a), *a))
            .collect();
        grouped.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        grouped
            .chunk_by(|a, b| a.0 == b.0 && a.1 == b.1)
            .filter(|run| run.iter().any(|(_, _, a)| a.name.id != run[0].2.name.id))
            .flatten()
            .map(|(_, _, a)| *a)
            .collect()
    }

    /// Sorts archives latest first. `facts` are asked once, for the archives
    /// [`LatestRule::needs_created`] names, and gives their creation times in order.
    pub fn sort<'a>(&self, archives: &mut Vec<&'a Archive>, facts: &dyn ArchiveFacts) {
        let keys = self.keys(archives, facts);
        let mut keyed: Vec<(LatestKey, &'a Archive)> =
            keys.into_iter().zip(archives.iter().copied()).collect();
        keyed.sort_by(|a, b| b.0.cmp(&a.0));
        *archives = keyed.into_iter().map(|(_, a)| a).collect();
    }

    /// The key of each archive, in order, with the creation times the rule needs read in one
    /// batch.
    pub fn keys(&self, archives: &[&Archive], facts: &dyn ArchiveFacts) -> Vec<LatestKey> {
        let need = self.needs_created(archives);
        let times: std::collections::HashMap<&std::path::Path, Option<OffsetDateTime>> =
            if need.is_empty() {
                Default::default()
            } else {
                need.iter()
                    .map(|a| a.path.as_path())
                    .zip(facts.created(&need))
                    .collect()
            };
        archives
            .iter()
            .map(|a| self.key(a, times.get(a.path.as_path()).copied().flatten()))
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
