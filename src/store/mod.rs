//! The artifacts directory: the archives found in it, and what the latest rule makes of them.
//! The store reads names and directory entries only, never what is inside an archive: what the
//! rule needs of that (creation times, full image IDs) comes, in batches, from the
//! [`ArchiveFacts`] it is opened with.

mod clean;
mod error;
pub mod layered;
mod rule;
mod select;

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use time::OffsetDateTime;
use walkdir::WalkDir;

pub use crate::archive::Archive;
use crate::codec::Broken;
use crate::io_error::{IoError, MissingDir};
pub use error::StoreError;

type Error = StoreError;
type Result<T> = std::result::Result<T, StoreError>;
use crate::name::ArchiveName;
pub use clean::{CleanPlan, remove};
pub use rule::{LatestKey, LatestRule};
pub use select::{Target, check_format};

/// What the store needs to know of what is inside archives, read by a layer above it, one batch
/// per question.
pub trait ArchiveFacts: Send + Sync {
    /// The image creation time of each archive, in order (`None` where it cannot be read).
    fn created(&self, archives: &[&Archive]) -> Vec<Option<OffsetDateTime>>;
    /// The full image ID (`sha256:<64 hex>`) of each archive, in order (`None` where it cannot
    /// be read).
    fn full_ids(&self, archives: &[&Archive]) -> Vec<Option<String>>;
    /// Whether `archive` fails the quick structural check of its ends (see
    /// [`crate::codec::check_ends`]), and which check failed; `None` when it passes.
    fn broken(&self, archive: &Archive) -> Option<Broken>;
    /// Whether `archive` is known sound: verified in full, now, or by toolbox when it wrote or
    /// verified that very file. `clean` removes a `.docker` only when its twin is.
    fn sound(&self, archive: &Archive) -> bool;
}

/// An archive the quick check found broken, skipped by `latest`, `config` or `clean`.
#[derive(Debug, Clone)]
pub struct Skipped<'a> {
    pub archive: &'a Archive,
    pub broken: Broken,
}

/// The latest archive of each image that passes the quick check, and the broken ones skipped
/// on the way.
#[derive(Debug, Clone, Default)]
pub struct Latest<'a> {
    pub chosen: BTreeMap<String, &'a Archive>,
    pub skipped: Vec<Skipped<'a>>,
}

/// Facts from the file names alone: nothing inside an archive is known.
#[derive(Debug, Default, Clone, Copy)]
pub struct NamesOnly;

impl ArchiveFacts for NamesOnly {
    fn created(&self, archives: &[&Archive]) -> Vec<Option<OffsetDateTime>> {
        vec![None; archives.len()]
    }
    fn full_ids(&self, archives: &[&Archive]) -> Vec<Option<String>> {
        vec![None; archives.len()]
    }
    fn broken(&self, _archive: &Archive) -> Option<Broken> {
        None
    }
    /// Names alone say every archive is sound (as they say none is broken).
    fn sound(&self, _archive: &Archive) -> bool {
        true
    }
}

/// The archives found in an artifacts directory.
#[derive(Clone)]
pub struct Store {
    dir: PathBuf,
    archives: Vec<Archive>,
    facts: Arc<dyn ArchiveFacts>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .field("archives", &self.archives.len())
            .finish()
    }
}

impl Store {
    /// Scans `dir` recursively for files whose whole name is an archive name. Hidden files and
    /// folders are skipped, links are never followed (the directory itself may be one), and
    /// directories are never archives. `facts` answers what the latest rule and ID lookups need
    /// to know of archives' contents.
    pub fn open(dir: &Path, facts: Arc<dyn ArchiveFacts>) -> Result<Store> {
        match fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::BasedirNotADirectory {
                    path: dir.to_path_buf(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(MissingDir {
                    path: dir.to_path_buf(),
                }
                .into());
            }
            Err(e) => return Err(IoError::new(dir, e).into()),
        }
        let mut found = Vec::new();
        let walk = WalkDir::new(dir)
            .follow_links(false)
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
        for entry in walk {
            let entry = match entry {
                Ok(entry) => entry,
                // A folder below that cannot be read (`lost+found`) is passed over, and said so.
                Err(e) if e.depth() > 0 => {
                    let path = e.path().unwrap_or(dir).to_path_buf();
                    crate::warn::warn(format!(
                        "skipping `{}`, which cannot be read: {}",
                        path.display(),
                        e.io_error()
                            .map_or_else(|| e.to_string(), ToString::to_string)
                    ));
                    continue;
                }
                Err(e) => {
                    let path = e.path().unwrap_or(dir).to_path_buf();
                    return Err(IoError::new(path, e.into()).into());
                }
            };
            if !entry.file_type().is_file() {
                continue;
            }
            if let Some(name) = entry.file_name().to_str().and_then(ArchiveName::parse) {
                found.push((name, entry.into_path()));
            }
        }
        let archives = describe_all(found)?;
        Ok(Store {
            dir: dir.to_path_buf(),
            archives,
            facts,
        })
    }

    /// The artifacts directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What the store knows of archives' contents.
    pub fn facts(&self) -> &dyn ArchiveFacts {
        self.facts.as_ref()
    }

    /// Every file with an archive name, foreign ones included, in no particular order.
    pub fn all(&self) -> &[Archive] {
        &self.archives
    }

    /// The archives of `image` in a format toolbox manages (foreign files excluded).
    pub fn known_of<'a, 'b>(
        &'a self,
        image: &'b str,
    ) -> impl Iterator<Item = &'a Archive> + use<'a, 'b> {
        self.archives
            .iter()
            .filter(move |a| a.name.image == image && a.name.format.is_known())
    }

    /// The names of the images with at least one archive in a known format, sorted.
    pub fn images(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .archives
            .iter()
            .filter(|a| a.name.format.is_known())
            .map(|a| a.name.image.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The archives in a known format of each of `images` (of every image when empty), by
    /// image.
    pub(crate) fn by_image(&self, images: &[String]) -> BTreeMap<&str, Vec<&Archive>> {
        let wanted: HashSet<&str> = images.iter().map(String::as_str).collect();
        let mut by_image: BTreeMap<&str, Vec<&Archive>> = BTreeMap::new();
        for a in self.archives.iter().filter(|a| a.name.format.is_known()) {
            if wanted.is_empty() || wanted.contains(a.name.image.as_str()) {
                by_image.entry(&a.name.image).or_default().push(a);
            }
        }
        by_image
    }

    /// Every file with an archive name (of `images`, or all when empty), sorted by image name,
    /// each image's archives latest first, its foreign files after them by name.
    pub fn listing(&self, images: &[String], rule: LatestRule) -> Vec<&Archive> {
        let wanted: HashSet<&str> = images.iter().map(String::as_str).collect();
        let known = self.by_image(images);
        let names_known: Vec<&str> = known.keys().copied().collect();
        let mut foreign: BTreeMap<&str, Vec<&Archive>> = BTreeMap::new();
        for a in self.archives.iter().filter(|a| !a.name.format.is_known()) {
            if wanted.is_empty() || wanted.contains(a.name.image.as_str()) {
                foreign.entry(&a.name.image).or_default().push(a);
            }
        }
        let mut groups = self.ordered(known, rule);
        let mut names: Vec<&str> = names_known
            .into_iter()
            .chain(foreign.keys().copied())
            .collect();
        names.sort_unstable();
        names.dedup();
        let mut out = Vec::with_capacity(self.archives.len());
        for image in names {
            if let Some(group) = groups.remove(image) {
                out.extend(group);
            }
            if let Some(files) = foreign.get_mut(image) {
                files.sort_by(|a, b| {
                    a.path
                        .file_name()
                        .cmp(&b.path.file_name())
                        .then_with(|| a.path.cmp(&b.path))
                });
                out.extend(files.iter().copied());
            }
        }
        out
    }

    /// Each image's archives (as [`Store::by_image`] gives them), latest first. Every key is
    /// made in one batch: the creation times the rule needs are read once.
    pub(crate) fn ordered<'a>(
        &'a self,
        known: BTreeMap<&'a str, Vec<&'a Archive>>,
        rule: LatestRule,
    ) -> BTreeMap<&'a str, Vec<&'a Archive>> {
        let all: Vec<&Archive> = known.values().flatten().copied().collect();
        let mut keys = rule.keys(&all, self.facts()).into_iter();
        known
            .into_iter()
            .map(|(image, archives)| {
                let mut keyed: Vec<(LatestKey, &Archive)> =
                    keys.by_ref().take(archives.len()).zip(archives).collect();
                keyed.sort_by(|a, b| b.0.cmp(&a.0));
                (image, keyed.into_iter().map(|(_, a)| a).collect())
            })
            .collect()
    }

    /// The image creation time of each of `archives` (`None` for a foreign file or where it
    /// cannot be read), in order, read in one batch.
    pub fn created_of(&self, archives: &[&Archive]) -> Vec<Option<OffsetDateTime>> {
        let known: Vec<&Archive> = archives
            .iter()
            .copied()
            .filter(|a| a.name.format.is_known())
            .collect();
        let mut times = self.facts.created(&known).into_iter();
        archives
            .iter()
            .map(|a| {
                if a.name.format.is_known() {
                    times.next().flatten()
                } else {
                    None
                }
            })
            .collect()
    }

    /// The latest archive of `image`.
    pub fn latest(&self, image: &str, rule: LatestRule) -> Result<&Archive> {
        let archives: Vec<&Archive> = self.known_of(image).collect();
        rule.latest(&archives, self.facts())
            .ok_or_else(|| Error::NoArchive {
                image: image.to_string(),
                dir: self.dir.clone(),
            })
    }

    /// The latest archive of each of `images` (of every image when empty), keyed by image, that
    /// passes the quick check of its ends: a broken one is skipped (and reported in
    /// [`Latest::skipped`]) and the next in order taken. Only the archives chosen are checked.
    /// An image none of whose archives passes is an error.
    pub fn latest_of(&self, images: &[String], rule: LatestRule) -> Result<Latest<'_>> {
        let by_image = self.by_image(images);
        if let Some(missing) = images.iter().find(|i| !by_image.contains_key(i.as_str())) {
            return Err(Error::NoArchive {
                image: missing.clone(),
                dir: self.dir.clone(),
            });
        }
        // Each image's top (cleanliness, version) group; the creation times they need, read in
        // one batch.
        let tops: Vec<(&str, Vec<&Archive>)> = by_image
            .iter()
            .map(|(image, group)| (*image, rule.top(group)))
            .collect();
        let all: Vec<&Archive> = tops.iter().flat_map(|(_, t)| t.iter().copied()).collect();
        let keys = rule.keys(&all, self.facts());
        let mut keyed = keys.into_iter().zip(all.iter().copied());
        let mut latest = Latest::default();
        for (image, top) in tops {
            let Some((_, best)) = keyed.by_ref().take(top.len()).max_by(|a, b| a.0.cmp(&b.0))
            else {
                continue;
            };
            let Some(broken) = self.facts.broken(best) else {
                latest.chosen.insert(image.to_string(), best);
                continue;
            };
            // The rare case: walk the image's archives in order until one passes.
            latest.skipped.push(Skipped {
                archive: best,
                broken,
            });
            let one = BTreeMap::from([(image, by_image[image].clone())]);
            let ordered = self.ordered(one, rule).remove(image).unwrap_or_default();
            let mut found = None;
            for a in ordered.into_iter().filter(|a| a.path != best.path) {
                match self.facts.broken(a) {
                    None => {
                        found = Some(a);
                        break;
                    }
                    Some(broken) => latest.skipped.push(Skipped { archive: a, broken }),
                }
            }
            match found {
                Some(a) => {
                    latest.chosen.insert(image.to_string(), a);
                }
                None => {
                    return Err(Error::AllBroken {
                        image: image.to_string(),
                        dir: self.dir.clone(),
                        count: latest
                            .skipped
                            .iter()
                            .filter(|s| s.archive.name.image == image)
                            .count(),
                    });
                }
            }
        }
        Ok(latest)
    }
}

/// Reads the metadata of the files found, on all cores when there are many (the `lstat` calls
/// are most of the time a scan takes). A file removed since it was listed is left out.
fn describe_all(found: Vec<(ArchiveName, PathBuf)>) -> Result<Vec<Archive>> {
    const PER_THREAD: usize = 4096;
    let describe = |chunk: Vec<(ArchiveName, PathBuf)>| -> Result<Vec<Archive>> {
        let mut out = Vec::with_capacity(chunk.len());
        for (name, path) in chunk {
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_file() => out.push(Archive::new(name, path, &m)?),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(IoError::new(&path, e).into()),
            }
        }
        Ok(out)
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(found.len() / PER_THREAD)
        .max(1);
    if threads == 1 {
        return describe(found);
    }
    let per_chunk = found.len().div_ceil(threads);
    let mut chunks = Vec::with_capacity(threads);
    let mut rest = found;
    while rest.len() > per_chunk {
        let tail = rest.split_off(per_chunk);
        chunks.push(rest);
        rest = tail;
    }
    chunks.push(rest);
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| scope.spawn(move || describe(c)))
            .collect();
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?);
        }
        Ok(all)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::time::{Duration, SystemTime};

    const ID: &str = "0123456789ab";

    fn touch(dir: &Path, name: &str, age_s: u64) -> PathBuf {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        let f = File::create(&path).unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000 - age_s);
        f.set_modified(t).unwrap();
        path
    }

    fn latest_name(dir: &Path, image: &str, allow_dirty: bool) -> String {
        let store = Store::open(dir, Arc::new(NamesOnly)).unwrap();
        store
            .latest(image, LatestRule { allow_dirty })
            .unwrap()
            .file_name()
    }

    #[test]
    fn clean_beats_dirty_unless_allowed() {
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), &format!("web_1.0_{ID}.zip"), 100);
        touch(d.path(), &format!("web_2.0.0.0_{ID}.zip"), 0);
        touch(d.path(), &format!("web_latest_{ID}.zip"), 0);
        assert_eq!(
            latest_name(d.path(), "web", false),
            format!("web_1.0_{ID}.zip")
        );
        assert_eq!(
            latest_name(d.path(), "web", true),
            format!("web_2.0.0.0_{ID}.zip")
        );
    }

    #[test]
    fn parsed_beats_unparsed_then_numeric_order() {
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), &format!("web_nightly_{ID}.zip"), 0);
        touch(d.path(), &format!("web_1.9_{ID}.zip"), 0);
        touch(d.path(), &format!("web_1.10_{ID}.docker"), 50);
        touch(d.path(), &format!("web_1.10.0-rc.1_{ID}.zip"), 0);
        assert_eq!(
            latest_name(d.path(), "web", false),
            format!("web_1.10_{ID}.docker")
        );
    }

    #[test]
    fn equal_versions_fall_back_to_mtime_then_name() {
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), &format!("web_1.2_{ID}.zip"), 10);
        touch(d.path(), &format!("web_1.2.0_{ID}.zip"), 5);
        assert_eq!(
            latest_name(d.path(), "web", false),
            format!("web_1.2.0_{ID}.zip")
        );
        touch(d.path(), &format!("web_1.2_{ID}.zip"), 5);
        // Same version, same time: the greater file name wins.
        assert_eq!(
            latest_name(d.path(), "web", false),
            format!("web_1.2_{ID}.zip")
        );
    }

    #[test]
    fn scan_skips_hidden_foreign_dirs_and_links_and_recurses() {
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), &format!("sub/deeper/web_1.0_{ID}.zip"), 0);
        touch(d.path(), &format!(".hidden/web_9.0_{ID}.zip"), 0);
        touch(d.path(), &format!(".web_8.0_{ID}.zip"), 0);
        touch(d.path(), &format!("web_7.0_{ID}.bak"), 0);
        touch(d.path(), "README", 0);
        fs::create_dir(d.path().join(format!("web_6.0_{ID}.zip"))).unwrap();
        std::os::unix::fs::symlink(
            d.path().join("README"),
            d.path().join(format!("web_5.0_{ID}.zip")),
        )
        .unwrap();
        let store = Store::open(d.path(), Arc::new(NamesOnly)).unwrap();
        let mut names: Vec<String> = store.all().iter().map(Archive::file_name).collect();
        names.sort();
        assert_eq!(
            names,
            vec![format!("web_1.0_{ID}.zip"), format!("web_7.0_{ID}.bak")]
        );
        assert_eq!(
            latest_name(d.path(), "web", false),
            format!("web_1.0_{ID}.zip")
        );
    }

    #[test]
    fn missing_or_file_basedir_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let err = Store::open(&d.path().join("nope"), Arc::new(NamesOnly)).unwrap_err();
        assert!(matches!(err, Error::MissingBasedir(_)));
        let f = touch(d.path(), "file", 0);
        assert!(matches!(
            Store::open(&f, Arc::new(NamesOnly)).unwrap_err(),
            Error::BasedirNotADirectory { .. }
        ));
    }

    #[test]
    fn only_foreign_files_is_no_archive() {
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), &format!("web_1.0_{ID}.bak"), 0);
        let store = Store::open(d.path(), Arc::new(NamesOnly)).unwrap();
        assert!(matches!(
            store.latest("web", LatestRule::default()),
            Err(Error::NoArchive { .. })
        ));
        assert!(store.images().is_empty());
    }

    #[test]
    fn clean_keeps_the_greatest_pairs_and_drops_superseded_docker() {
        let d = tempfile::tempdir().unwrap();
        let other = "fedcba987654";
        touch(d.path(), &format!("web_1.0_{ID}.zip"), 30);
        touch(d.path(), &format!("web_2.0_{ID}.docker"), 20);
        touch(d.path(), &format!("web_2.0_{ID}.zip"), 20);
        touch(d.path(), &format!("web_2.0_{other}.docker"), 10);
        touch(d.path(), &format!("web_3.0_{ID}.bak"), 0);
        touch(d.path(), &format!("api_1.0_{ID}.zip"), 0);
        let store = Store::open(d.path(), Arc::new(NamesOnly)).unwrap();
        let names = |v: Vec<&Archive>| {
            let mut n: Vec<String> = v.iter().map(|a| a.file_name()).collect();
            n.sort();
            n
        };
        let rule = LatestRule::default();
        assert_eq!(
            names(store.clean_plan(&["web".into()], 1, rule).doomed),
            vec![
                format!("web_1.0_{ID}.zip"),
                format!("web_2.0_{ID}.docker"),
                format!("web_2.0_{ID}.zip"),
            ]
        );
        assert_eq!(
            names(store.clean_plan(&["web".into()], 2, rule).doomed),
            vec![format!("web_1.0_{ID}.zip"), format!("web_2.0_{ID}.docker")]
        );
        assert!(
            store
                .clean_plan(&[], 5, rule)
                .doomed
                .iter()
                .all(|a| a.name.format.is_known())
        );
        assert!(store.clean_plan(&["api".into()], 1, rule).doomed.is_empty());
    }

    /// Facts that call the archives named broken.
    struct BrokenNames(Vec<String>);

    impl ArchiveFacts for BrokenNames {
        fn created(&self, archives: &[&Archive]) -> Vec<Option<OffsetDateTime>> {
            vec![None; archives.len()]
        }
        fn full_ids(&self, archives: &[&Archive]) -> Vec<Option<String>> {
            vec![None; archives.len()]
        }
        fn broken(&self, archive: &Archive) -> Option<Broken> {
            self.0.contains(&archive.file_name()).then(|| Broken {
                check: "zip: truncated".into(),
            })
        }
        /// Names that start with `unsound-` pass the quick check, but not the full one.
        fn sound(&self, archive: &Archive) -> bool {
            !self.0.contains(&archive.file_name())
                && !self.0.contains(&format!("unsound-{}", archive.file_name()))
        }
    }

    #[test]
    fn broken_archives_are_skipped_and_never_cost_the_last_sound_one() {
        let d = tempfile::tempdir().unwrap();
        let n = |v: &str, f: &str| format!("web_{v}_{ID}.{f}");
        touch(d.path(), &n("1.0.0.8", "zip"), 0);
        touch(d.path(), &n("1.0.0.7", "zip"), 5);
        touch(d.path(), &n("1.0.0.1", "zip"), 10);
        touch(d.path(), &n("1.0.0.1", "docker"), 10);
        touch(d.path(), &n("0.9", "zip"), 20);
        let facts = BrokenNames(vec![n("1.0.0.8", "zip"), n("1.0.0.7", "zip")]);
        let store = Store::open(d.path(), Arc::new(facts)).unwrap();
        let rule = LatestRule::default();
        let latest = store.latest_of(&[], rule).unwrap();
        assert_eq!(latest.chosen["web"].file_name(), n("1.0.0.1", "zip"));
        let skipped: Vec<String> = latest
            .skipped
            .iter()
            .map(|s| s.archive.file_name())
            .collect();
        assert_eq!(skipped, vec![n("1.0.0.8", "zip"), n("1.0.0.7", "zip")]);
        // clean --keep 1: the broken ones above are left alone, the good 1.0.0.1 stays, its
        // .docker goes (its .zip passed), 0.9 goes.
        let plan = store.clean_plan(&[], 1, rule);
        let mut doomed: Vec<String> = plan.doomed.iter().map(|a| a.file_name()).collect();
        doomed.sort();
        assert_eq!(doomed, vec![n("0.9", "zip"), n("1.0.0.1", "docker")]);
        assert_eq!(plan.skipped.len(), 2);
        // A broken .zip twin never costs its .docker.
        let facts = BrokenNames(vec![n("1.0.0.1", "zip")]);
        let d2 = tempfile::tempdir().unwrap();
        touch(d2.path(), &n("1.0.0.1", "zip"), 0);
        touch(d2.path(), &n("1.0.0.1", "docker"), 10);
        let store = Store::open(d2.path(), Arc::new(facts)).unwrap();
        assert!(store.clean_plan(&[], 1, rule).doomed.is_empty());
        assert_eq!(
            store.latest_of(&[], rule).unwrap().chosen["web"].file_name(),
            n("1.0.0.1", "docker")
        );
        // A .zip twin that passes the quick check but not the full one (a wrong CRC, a junk
        // entry) never costs its .docker either.
        let d3 = tempfile::tempdir().unwrap();
        touch(d3.path(), &n("1.0.0.1", "zip"), 0);
        touch(d3.path(), &n("1.0.0.1", "docker"), 10);
        let store = Store::open(d3.path(), Arc::new(NamesOnly)).unwrap();
        assert_eq!(
            store.latest_of(&[], rule).unwrap().chosen["web"].file_name(),
            n("1.0.0.1", "zip")
        );
        assert_eq!(store.clean_plan(&[], 1, rule).doomed.len(), 1);
        let facts = BrokenNames(vec![format!("unsound-{}", n("1.0.0.1", "zip"))]);
        let store = Store::open(d3.path(), Arc::new(facts)).unwrap();
        assert!(store.clean_plan(&[], 1, rule).doomed.is_empty());
        // Nothing passes: latest is an error, clean removes nothing.
        let facts = BrokenNames(vec![n("1.0.0.1", "zip"), n("1.0.0.1", "docker")]);
        let store = Store::open(d2.path(), Arc::new(facts)).unwrap();
        assert!(matches!(
            store.latest_of(&[], rule),
            Err(StoreError::AllBroken { count: 2, .. })
        ));
        assert!(store.clean_plan(&[], 1, rule).doomed.is_empty());
    }

    #[test]
    fn targets() {
        assert_eq!(
            Target::parse("web:1.0"),
            Target::Image {
                image: "web".into(),
                version: Some("1.0".into())
            }
        );
        assert_eq!(
            Target::parse("web"),
            Target::Image {
                image: "web".into(),
                version: None
            }
        );
        assert_eq!(Target::parse("a/b.zip"), Target::Path("a/b.zip".into()));
        let n = format!("web_1.0_{ID}.zip");
        assert_eq!(Target::parse(&n), Target::Path(n.clone().into()));
    }
}
