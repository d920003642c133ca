//! The artifacts directory: scanning it into archives, the latest rule, selection, and what
//! `clean` removes.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

use time::OffsetDateTime;

use walkdir::WalkDir;

use crate::error::{Error, IoContext, Result};
use crate::name::{ArchiveName, Format};
use crate::version::Version;

/// A file in the artifacts directory whose whole name is an archive name.
#[derive(Debug, Clone)]
pub struct Archive {
    pub name: ArchiveName,
    /// The path as found under the artifacts directory (the directory joined with the file's
    /// place below it).
    pub path: PathBuf,
    pub size: u64,
    pub modified: SystemTime,
    dirty: bool,
    parsed: Option<Version>,
    /// The image's creation time, read when first needed (see [`Archive::created`]).
    created: OnceLock<Option<OffsetDateTime>>,
}

impl Archive {
    /// Describes the file at `path`, named `name`, with its metadata.
    pub fn new(name: ArchiveName, path: PathBuf, metadata: &fs::Metadata) -> Result<Archive> {
        let modified = metadata.modified().at(&path)?;
        Ok(Archive {
            dirty: name.is_dirty(),
            parsed: Version::parse(&name.version),
            created: OnceLock::new(),
            size: metadata.len(),
            modified,
            name,
            path,
        })
    }

    /// Reads the archive at `path` (which must be a regular file with an archive name).
    pub fn from_path(path: &Path) -> Result<Archive> {
        let metadata = fs::symlink_metadata(path).at(path)?;
        if !metadata.is_file() {
            return Err(Error::NotAFile {
                path: path.to_path_buf(),
            });
        }
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let name = ArchiveName::parse_strict(file_name)?;
        Archive::new(name, path.to_path_buf(), &metadata)
    }

    /// The image's own creation time (from its config), read on first use from the ZIP's
    /// comment, the cache beside the archive, or the archive itself; `None` when unreadable.
    pub fn created(&self) -> Option<OffsetDateTime> {
        *self.created.get_or_init(|| {
            crate::inspect::summaries(&[self])
                .pop()
                .and_then(|s| s.ok())
                .and_then(|s| s.created_time())
        })
    }

    /// Records the creation time read elsewhere.
    pub(crate) fn set_created(&self, created: Option<OffsetDateTime>) {
        let _ = self.created.set(created);
    }

    /// Whether the version is a dirty build.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The file name.
    pub fn file_name(&self) -> String {
        self.name.file_name()
    }
}

/// The one rule that decides which archive of an image is the latest.
///
/// Among the archives of one image the latest is the greatest by, in order: clean beats dirty
/// (dropped with `allow_dirty`); a version that parses beats one that does not, and parsed
/// versions compare as [`Version`] does; the newer image creation time, when both archives
/// carry one and their IDs differ ([`Archive::created`], read only when it comes to this); the
/// newer modification time; the greater file name (then the greater path, so that the answer is
/// always the same).
#[derive(Debug, Clone, Copy, Default)]
pub struct LatestRule {
    pub allow_dirty: bool,
}

impl LatestRule {
    /// Orders two archives; `Greater` means `a` is the more recent.
    pub fn cmp(&self, a: &Archive, b: &Archive) -> Ordering {
        self.level(a, b)
            .then_with(|| {
                if a.name.id == b.name.id {
                    return Ordering::Equal;
                }
                match (a.created(), b.created()) {
                    (Some(x), Some(y)) => x.cmp(&y),
                    _ => Ordering::Equal,
                }
            })
            .then_with(|| a.modified.cmp(&b.modified))
            .then_with(|| a.path.file_name().cmp(&b.path.file_name()))
            .then_with(|| a.path.cmp(&b.path))
    }

    /// Sorts archives latest first.
    pub fn sort(&self, archives: &mut [&Archive]) {
        self.prime(archives);
        archives.sort_by(|a, b| self.cmp(b, a));
    }

    /// The latest of some archives.
    pub fn latest<'a>(
        &self,
        archives: impl IntoIterator<Item = &'a Archive>,
    ) -> Option<&'a Archive> {
        let archives: Vec<&Archive> = archives.into_iter().collect();
        let top = self.top(&archives);
        self.prime(&top);
        // Only the top (cleanliness, version) group can hold the latest: the creation times of
        // the others are never needed.
        top.into_iter().max_by(|a, b| self.cmp(a, b))
    }

    /// The archives that share the greatest (cleanliness, version) of `archives`.
    fn top<'a>(&self, archives: &[&'a Archive]) -> Vec<&'a Archive> {
        let Some(best) = archives.iter().copied().max_by(|a, b| self.level(a, b)) else {
            return Vec::new();
        };
        archives
            .iter()
            .copied()
            .filter(|a| self.level(a, best).is_eq())
            .collect()
    }

    /// The rule's first two steps: cleanliness, then version.
    fn level(&self, a: &Archive, b: &Archive) -> Ordering {
        let clean = |x: &Archive| self.allow_dirty || !x.dirty;
        clean(a)
            .cmp(&clean(b))
            .then_with(|| a.parsed.cmp(&b.parsed))
    }

    /// Reads in one batch the creation times comparisons among `archives` will need: those of
    /// archives of one image that tie on cleanliness and version with an archive of another
    /// image ID. Nothing is read when there is no such tie (the usual case).
    pub fn prime(&self, archives: &[&Archive]) {
        let level = |a: &&Archive, b: &&Archive| {
            a.name
                .image
                .cmp(&b.name.image)
                .then_with(|| self.level(a, b))
        };
        let mut sorted = archives.to_vec();
        sorted.sort_by(level);
        let need: Vec<&Archive> = sorted
            .chunk_by(|a, b| level(a, b).is_eq())
            .filter(|run| run.iter().any(|a| a.name.id != run[0].name.id))
            .flatten()
            .filter(|a| a.created.get().is_none())
            .copied()
            .collect();
        if !need.is_empty() {
            crate::inspect::prime_created(&need);
        }
    }
}

/// What a command was asked to act on: an archive file, or an image with an optional version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A path to an archive file.
    Path(PathBuf),
    /// An image, optionally with a version (`IMAGE[:VERSION]`).
    Image {
        image: String,
        version: Option<String>,
    },
}

impl Target {
    /// An existing file path, or an archive file name, is an archive; anything else is
    /// `IMAGE[:VERSION]`.
    pub fn parse(arg: &str) -> Target {
        let path = Path::new(arg);
        if arg.contains('/') || path.is_file() || ArchiveName::parse(arg).is_some() {
            return Target::Path(path.to_path_buf());
        }
        if id_prefix(arg).is_some() {
            return Target::Image {
                image: arg.to_string(),
                version: None,
            };
        }
        match arg.split_once(':') {
            Some((image, version)) => Target::Image {
                image: image.to_string(),
                version: Some(version.to_string()),
            },
            None => Target::Image {
                image: arg.to_string(),
                version: None,
            },
        }
    }
}

/// The archives found in an artifacts directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    archives: Vec<Archive>,
}

impl Store {
    /// Scans `dir` recursively for files whose whole name is an archive name. Hidden files and
    /// folders are skipped, links are never followed (the directory itself may be one), and
    /// directories are never archives.
    pub fn open(dir: &Path) -> Result<Store> {
        match fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::BasedirNotADirectory {
                    path: dir.to_path_buf(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::MissingBasedir {
                    path: dir.to_path_buf(),
                });
            }
            Err(e) => return Err(Error::io(dir, e)),
        }
        let mut found = Vec::new();
        let walk = WalkDir::new(dir)
            .follow_links(false)
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
        for entry in walk {
            let entry = entry.map_err(|e| {
                let path = e.path().unwrap_or(dir).to_path_buf();
                Error::io(path, e.into())
            })?;
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
        })
    }

    /// The artifacts directory.
    pub fn dir(&self) -> &Path {
        &self.dir
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

    /// Every file with an archive name (of `images`, or all when empty), sorted by image name,
    /// each image's archives latest first, its foreign files after them by name.
    pub fn listing(&self, images: &[String], rule: LatestRule) -> Vec<&Archive> {
        let wanted: HashSet<&str> = images.iter().map(String::as_str).collect();
        let mut by_image: BTreeMap<&str, (Vec<&Archive>, Vec<&Archive>)> = BTreeMap::new();
        for a in &self.archives {
            if !wanted.is_empty() && !wanted.contains(a.name.image.as_str()) {
                continue;
            }
            let (known, foreign) = by_image.entry(&a.name.image).or_default();
            if a.name.format.is_known() {
                known
            } else {
                foreign
            }
            .push(a);
        }
        // One batch for the whole listing (the per-image sorts then read nothing).
        let all_known: Vec<&Archive> = by_image.values().flat_map(|(k, _)| k.clone()).collect();
        rule.prime(&all_known);
        let mut out = Vec::with_capacity(self.archives.len());
        for (_, (mut known, mut foreign)) in by_image {
            rule.sort(&mut known);
            foreign.sort_by(|a, b| {
                a.path
                    .file_name()
                    .cmp(&b.path.file_name())
                    .then_with(|| a.path.cmp(&b.path))
            });
            out.extend(known);
            out.extend(foreign);
        }
        out
    }

    /// The latest archive of `image`.
    pub fn latest(&self, image: &str, rule: LatestRule) -> Result<&Archive> {
        rule.latest(self.known_of(image))
            .ok_or_else(|| Error::NoArchive {
                image: image.to_string(),
                dir: self.dir.clone(),
            })
    }

    /// The latest archive of each of `images` (of every image when empty), keyed by image.
    pub fn latest_of(
        &self,
        images: &[String],
        rule: LatestRule,
    ) -> Result<BTreeMap<String, &Archive>> {
        if images.is_empty() {
            let mut by_image: BTreeMap<&str, Vec<&Archive>> = BTreeMap::new();
            for a in self.archives.iter().filter(|a| a.name.format.is_known()) {
                by_image.entry(&a.name.image).or_default().push(a);
            }
            // Each image's top group; the creation times they need, read in one batch.
            let tops: Vec<(&str, Vec<&Archive>)> = by_image
                .into_iter()
                .map(|(image, group)| (image, rule.top(&group)))
                .collect();
            rule.prime(
                &tops
                    .iter()
                    .flat_map(|(_, top)| top.clone())
                    .collect::<Vec<_>>(),
            );
            return Ok(tops
                .into_iter()
                .filter_map(|(image, top)| {
                    let best = top.into_iter().max_by(|a, b| rule.cmp(a, b))?;
                    Some((image.to_string(), best))
                })
                .collect());
        }
        images
            .iter()
            .map(|image| Ok((image.clone(), self.latest(image, rule)?)))
            .collect()
    }

    /// Resolves `target` to one archive in one of `formats` (any known format when empty): a
    /// path must name such an archive; `IMAGE[:VERSION]` gives the latest archive of that image
    /// (and version) in those formats.
    pub fn select(
        &self,
        target: &Target,
        formats: &[Format],
        command: &'static str,
    ) -> Result<Archive> {
        match target {
            Target::Path(path) => {
                let found = if path.exists() || path.components().count() > 1 {
                    Archive::from_path(path)?
                } else {
                    // A bare archive file name: look for it in the artifacts directory.
                    let name = path.to_string_lossy();
                    match self.archives.iter().find(|a| a.file_name() == name) {
                        Some(a) => a.clone(),
                        None => Archive::from_path(&self.dir.join(path))?,
                    }
                };
                check_format(found, formats, command)
            }
            Target::Image { image, version } => {
                let by_id = match version {
                    None if self.known_of(image).next().is_none() => self.by_id(image)?,
                    _ => None,
                };
                let candidates = by_id
                    .unwrap_or_else(|| self.known_of(image).collect())
                    .into_iter()
                    .filter(|a| fits(&a.name.format, formats))
                    .filter(|a| version.as_ref().is_none_or(|v| &a.name.version == v));
                LatestRule::default()
                    .latest(candidates)
                    .cloned()
                    .ok_or_else(|| {
                        let what = match version {
                            Some(v) => format!("{image}:{v}"),
                            None => image.clone(),
                        };
                        Error::NoArchiveInFormat {
                            what,
                            format: format_label(formats),
                            dir: self.dir.clone(),
                        }
                    })
            }
        }
    }

    /// The archives whose image ID starts with `arg`, when `arg` is an image ID or a prefix of
    /// one (at least 4 hex digits, `sha256:` allowed); `None` when it is not. Matching archives
    /// of more than one image ID is an error listing them, and so is matching none. A prefix
    /// longer than the 12 digits of file names is checked against each candidate's full ID.
    pub fn by_id(&self, arg: &str) -> Result<Option<Vec<&Archive>>> {
        let Some(prefix) = id_prefix(arg) else {
            return Ok(None);
        };
        let short = &prefix[..prefix.len().min(crate::name::ID_LEN)];
        let mut found: Vec<&Archive> = self
            .archives
            .iter()
            .filter(|a| a.name.format.is_known() && a.name.id.starts_with(short))
            .collect();
        if prefix.len() > short.len() {
            let summaries = crate::inspect::summaries(&found);
            let full = format!("sha256:{prefix}");
            let mut keep = summaries
                .iter()
                .map(|s| s.as_ref().is_ok_and(|s| s.id.starts_with(&full)));
            found.retain(|_| keep.next().unwrap_or(false));
        }
        if found.is_empty() {
            return Err(Error::NoIdMatch {
                prefix: arg.to_string(),
                dir: self.dir.clone(),
            });
        }
        let ids: HashSet<&str> = found.iter().map(|a| a.name.id.as_str()).collect();
        if ids.len() > 1 {
            found.sort_by(|a, b| a.path.cmp(&b.path));
            return Err(Error::AmbiguousId {
                count: found.len(),
                prefix: arg.to_string(),
                list: found
                    .iter()
                    .map(|a| a.file_name())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(Some(found))
    }

    /// The image names that IMAGE arguments stand for: each is an image name, unless no
    /// archive has that name and it is an image ID or a prefix of one (see [`Store::by_id`]),
    /// which stands for the images of the archives it matches.
    pub fn resolve_images(&self, args: &[String]) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::with_capacity(args.len());
        for arg in args {
            let named = self.known_of(arg).next().is_some();
            match self.by_id(arg) {
                Ok(Some(found)) if !named => {
                    for a in found {
                        if !out.contains(&a.name.image) {
                            out.push(a.name.image.clone());
                        }
                    }
                }
                Err(e) if !named => return Err(e),
                _ => out.push(arg.clone()),
            }
        }
        Ok(out)
    }

    /// What `clean` removes: for each of `images` (every image when empty), every archive
    /// outside the `keep` greatest (version, id) pairs by `rule`, and every `.docker` archive
    /// whose `.zip` twin (same image, version and id) exists. Foreign files are never included.
    pub fn clean_plan(&self, images: &[String], keep: usize, rule: LatestRule) -> Vec<&Archive> {
        let wanted: HashSet<&str> = images.iter().map(String::as_str).collect();
        let mut by_image: BTreeMap<&str, Vec<&Archive>> = BTreeMap::new();
        for a in self.archives.iter().filter(|a| a.name.format.is_known()) {
            if wanted.is_empty() || wanted.contains(a.name.image.as_str()) {
                by_image.entry(&a.name.image).or_default().push(a);
            }
        }
        rule.prime(&by_image.values().flatten().copied().collect::<Vec<_>>());
        let mut doomed = Vec::new();
        for mut archives in by_image.into_values() {
            rule.sort(&mut archives);
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
                Err(e) => return Err(Error::io(&path, e)),
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

/// Passes `archive` on when it is in `format`, else explains what `command` expected.
pub fn check_format(
    archive: Archive,
    formats: &[Format],
    command: &'static str,
) -> Result<Archive> {
    if fits(&archive.name.format, formats) {
        return Ok(archive);
    }
    Err(Error::WrongFormat {
        found: archive.name.format.to_string(),
        path: archive.path,
        expected: format_label(formats),
        command,
    })
}

/// Removes archives one by one; returns the paths removed and the first error met, if any.
pub fn remove(archives: &[&Archive]) -> (Vec<PathBuf>, Option<Error>) {
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
                first_error.get_or_insert(Error::io(&a.path, e));
            }
        }
    }
    (removed, first_error)
}

/// Whether `format` is one of `formats` (any known format when empty).
/// The lowercase hex digits of an image ID or ID prefix (`sha256:` allowed, at least 4 digits,
/// at most 64); `None` for anything else.
pub fn id_prefix(arg: &str) -> Option<String> {
    let hex = arg.strip_prefix("sha256:").unwrap_or(arg);
    ((4..=64).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

fn fits(format: &Format, formats: &[Format]) -> bool {
    if formats.is_empty() {
        format.is_known()
    } else {
        formats.contains(format)
    }
}

fn format_label(formats: &[Format]) -> String {
    let known = [Format::Docker, Format::Zip, Format::Zst];
    let list = if formats.is_empty() {
        &known[..]
    } else {
        formats
    };
    let names: Vec<String> = list.iter().map(|f| format!(".{f}")).collect();
    names.join(" or ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::time::Duration;

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
        let store = Store::open(dir).unwrap();
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
        let store = Store::open(d.path()).unwrap();
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
        let err = Store::open(&d.path().join("nope")).unwrap_err();
        assert!(matches!(err, Error::MissingBasedir { .. }));
        let f = touch(d.path(), "file", 0);
        assert!(matches!(
            Store::open(&f).unwrap_err(),
            Error::BasedirNotADirectory { .. }
        ));
    }

    #[test]
    fn only_foreign_files_is_no_archive() {
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), &format!("web_1.0_{ID}.bak"), 0);
        let store = Store::open(d.path()).unwrap();
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
        let store = Store::open(d.path()).unwrap();
        let names = |v: Vec<&Archive>| {
            let mut n: Vec<String> = v.iter().map(|a| a.file_name()).collect();
            n.sort();
            n
        };
        let rule = LatestRule::default();
        assert_eq!(
            names(store.clean_plan(&["web".into()], 1, rule)),
            vec![
                format!("web_1.0_{ID}.zip"),
                format!("web_2.0_{ID}.docker"),
                format!("web_2.0_{ID}.zip"),
            ]
        );
        assert_eq!(
            names(store.clean_plan(&["web".into()], 2, rule)),
            vec![format!("web_1.0_{ID}.zip"), format!("web_2.0_{ID}.docker")]
        );
        assert!(
            store
                .clean_plan(&[], 5, rule)
                .iter()
                .all(|a| a.name.format.is_known())
        );
        assert!(store.clean_plan(&["api".into()], 1, rule).is_empty());
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
