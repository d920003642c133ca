//! An archive file: a regular file whose whole name is an archive name, with the facts its
//! directory entry gives (size, modification time). Nothing here reads what is inside it.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::io_error::{IoContext, IoError};
use crate::name::{ArchiveName, NameError};

/// An archive in a format the command does not take.
#[derive(Debug, thiserror::Error)]
#[error("`{}` is a {found} archive; {command} takes a {expected} archive", path.display())]
pub struct WrongFormat {
    pub path: PathBuf,
    pub found: String,
    pub expected: String,
    pub command: &'static str,
}

/// Why a path is not an archive file.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveFileError {
    #[error(
        "`{}` is not a regular file (a link, a folder or a device): archives are regular files, \
         and links to them are never followed",
        path.display()
    )]
    NotAFile { path: PathBuf },

    #[error(transparent)]
    Name(#[from] NameError),

    #[error(transparent)]
    Io(#[from] IoError),
}

type Result<T> = std::result::Result<T, ArchiveFileError>;

/// A file whose whole name is an archive name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    pub name: ArchiveName,
    /// The path as found (under the artifacts directory: the directory joined with the file's
    /// place below it).
    pub path: PathBuf,
    /// The file's size; for a `.ref` archive, the bytes its image's blobs take in the layer
    /// store (each once), or the file's size when they cannot be read.
    pub size: u64,
    pub modified: SystemTime,
}

/// The bytes the blobs of the `.ref` archive at `path` take in its layer store.
fn stored_size(path: &Path) -> Option<u64> {
    let layout = crate::layout::Layout::of_ref(path).ok()?;
    let reference = crate::layout::RefFile::read(path).ok()?;
    crate::layout::graph::needs(&layout, &reference.descriptor())
        .ok()
        .map(|n| n.size())
}

impl Archive {
    /// Describes the file at `path`, named `name`, with its metadata.
    pub fn new(name: ArchiveName, path: PathBuf, metadata: &fs::Metadata) -> Result<Archive> {
        let modified = metadata.modified().at(&path)?;
        let size = match name.format {
            crate::name::Format::Ref => stored_size(&path).unwrap_or(metadata.len()),
            _ => metadata.len(),
        };
        Ok(Archive {
            size,
            modified,
            name,
            path,
        })
    }

    /// Reads the archive at `path` (which must be a regular file with an archive name).
    pub fn from_path(path: &Path) -> Result<Archive> {
        let metadata = fs::symlink_metadata(path).at(path)?;
        if !metadata.is_file() {
            return Err(ArchiveFileError::NotAFile {
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

    /// Whether the version is a dirty build.
    pub fn is_dirty(&self) -> bool {
        self.name.is_dirty()
    }

    /// The file name.
    pub fn file_name(&self) -> String {
        self.name.file_name()
    }
}
