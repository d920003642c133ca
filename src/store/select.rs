//! Choosing archives from command arguments: `ARCHIVE`, `IMAGE[:VERSION]`, image IDs and
//! their prefixes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::StoreError as Error;
use super::{LatestRule, Store};
use crate::archive::{Archive, WrongFormat};
use crate::digest::{SHORT_ID_LEN, id_prefix};

type Result<T> = std::result::Result<T, Error>;
use crate::name::{ArchiveName, Format};

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

impl Store {
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
                let candidates: Vec<&Archive> = by_id
                    .unwrap_or_else(|| self.known_of(image).collect())
                    .into_iter()
                    .filter(|a| fits(&a.name.format, formats))
                    .filter(|a| version.as_ref().is_none_or(|v| &a.name.version == v))
                    .collect();
                LatestRule::default()
                    .latest(&candidates, self.facts())
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
        let short = &prefix[..prefix.len().min(SHORT_ID_LEN)];
        let mut found: Vec<&Archive> = self
            .archives
            .iter()
            .filter(|a| a.name.format.is_known() && a.name.id.starts_with(short))
            .collect();
        if prefix.len() > short.len() {
            let full = format!("sha256:{prefix}");
            let ids = self.facts().full_ids(&found);
            let mut keep = ids
                .iter()
                .map(|id| id.as_ref().is_some_and(|id| id.starts_with(&full)));
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
    Err(WrongFormat {
        found: archive.name.format.to_string(),
        path: archive.path,
        expected: format_label(formats),
        command,
    }
    .into())
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
