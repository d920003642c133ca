//! Writes an image's root filesystem into a directory by applying its layers in order, the way
//! an engine does: whiteouts (`.wh.NAME`) remove what lower layers made, opaque directories
//! (`.wh..wh..opq`) hide a lower directory's contents, and regular files, directories,
//! symbolic and hard links, devices and FIFOs are made with their modes and modification times
//! (owners too when run as root).
//!
//! Nothing is ever written outside the directory: paths are cleaned (a leading `/` is dropped,
//! a path that climbs out with `..` is refused), and every path is resolved inside the
//! directory as if it were the root (`/` and `..` stop at it, symbolic links are followed
//! within it), so that a link to `/etc` leads to the directory's own `etc`. The last component
//! is never followed: whatever is there is replaced.

use std::collections::{BTreeMap, HashSet};
use std::ffi::{CString, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::ArchiveError as Error;
use super::{ImageError, Refusal, TarIndex};
use crate::archive::Archive;
use crate::codec;
use crate::io_error::{IoContext, IoError};

type Result<T> = std::result::Result<T, Error>;
use crate::name::Format;
use crate::progress::Silent;

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";
/// How many symbolic links one path may go through.
const MAX_LINKS: usize = 40;

/// What `extract` did.
#[derive(Debug, Default)]
pub struct Extracted {
    /// How many layer entries were applied.
    pub entries: u64,
    /// What could not be made (devices, when not run as root), one line each.
    pub skipped: Vec<String>,
}

/// Writes the root filesystem of the image in `archive` into `dest` (which must be an empty
/// directory, or missing), or only the file or folder `only` (a path inside the image). On
/// failure `dest` is left as it was found.
pub fn extract(archive: &Archive, dest: &Path, only: Option<&str>) -> Result<Extracted> {
    let created = prepare(dest)?;
    let only = match only.map(clean_path).transpose() {
        Ok(p) => p.filter(|p| !p.as_os_str().is_empty()),
        Err(refusal) => {
            undo(dest, created);
            return Err(Error::Refused {
                path: PathBuf::from(only.unwrap_or_default()),
                layer: None,
                refusal,
            });
        }
    };
    let result = extract_into(archive, dest, only.as_deref());
    if result.is_err() {
        undo(dest, created);
    }
    result
}

/// Checks that `dest` is an empty directory, or creates it; returns whether it was created.
fn prepare(dest: &Path) -> Result<bool> {
    match fs::symlink_metadata(dest) {
        Ok(m) if m.is_dir() => {
            if fs::read_dir(dest).at(dest)?.next().is_some() {
                return Err(Error::NotEmpty {
                    path: dest.to_path_buf(),
                });
            }
            Ok(false)
        }
        Ok(_) => Err(Error::NotEmpty {
            path: dest.to_path_buf(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dest).at(dest)?;
            Ok(true)
        }
        Err(e) => Err(IoError::new(dest, e).into()),
    }
}

/// Empties `dest` again (and removes it when it was created).
fn undo(dest: &Path, created: bool) {
    if created {
        let _ = fs::remove_dir_all(dest);
    } else if let Ok(children) = fs::read_dir(dest) {
        for child in children.flatten() {
            let _ = remove_any(&child.path());
        }
    }
}

fn extract_into(archive: &Archive, dest: &Path, only: Option<&Path>) -> Result<Extracted> {
    // Layers are applied in the manifest's order, which is not the tar's: a compressed archive
    // is first unpacked into a temporary tar beside `dest`, removed afterwards.
    let (file, path, _spool) = match archive.name.format {
        Format::Docker => (
            File::open(&archive.path).at(&archive.path)?,
            archive.path.clone(),
            None,
        ),
        _ => {
            let parent = dest
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let mut spool = tempfile::Builder::new()
                .prefix(".toolbox-extract.")
                .tempfile_in(parent)
                .at(parent)?;
            let spool_path = spool.path().to_path_buf();
            codec::with_tar_reader(archive, &Silent, |tar| {
                codec::copy(tar, &archive.path, spool.as_file_mut(), &spool_path)
                    .map(|_| ())
                    .map_err(Error::from)
            })?;
            let file = spool.reopen().at(&spool_path)?;
            (file, archive.path.clone(), Some(spool))
        }
    };
    let damaged = |source| Error::Damaged {
        path: path.clone(),
        source,
    };
    let index =
        TarIndex::read_seekable(BufReader::new(&file)).map_err(|e| super::indexing(&path, e))?;
    let info = index.image().map_err(damaged)?;
    let mut unpacker = Unpacker::new(dest, only);
    for (n, layer) in info.layers.iter().enumerate() {
        let found = index
            .file(&layer.path)
            .ok_or_else(|| damaged(ImageError::LayerMissing(layer.path.clone())))?;
        let mut data = &file;
        data.seek(SeekFrom::Start(found.offset)).at(&path)?;
        let reader = layer_reader(BufReader::new(data.take(found.size))).at(&path)?;
        unpacker.apply(reader).map_err(|e| match e {
            ApplyError::Io(at, e) => IoError::new(&at, e).into(),
            ApplyError::Refused(refusal) => Error::Refused {
                path: path.clone(),
                layer: Some((n + 1, layer.diff_id.clone())),
                refusal,
            },
        })?;
    }
    unpacker.finish().map_err(|e| match e {
        ApplyError::Io(at, e) => IoError::new(&at, e).into(),
        ApplyError::Refused(refusal) => Error::Refused {
            path: path.clone(),
            layer: None,
            refusal,
        },
    })?;
    if let Some(only) = only
        && fs::symlink_metadata(dest.join(only)).is_err()
    {
        return Err(Error::NotInImage {
            path: only.to_string_lossy().into_owned(),
            archive: path,
        });
    }
    Ok(unpacker.done)
}

/// A layer's tar: as stored, or gzip- or zstd-decompressed.
fn layer_reader<'r, R: io::BufRead + 'r>(mut reader: R) -> io::Result<Box<dyn Read + 'r>> {
    let head = reader.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(reader)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Box::new(zstd::stream::read::Decoder::with_buffer(reader)?))
    } else {
        Ok(Box::new(reader))
    }
}

/// Why a layer could not be applied.
#[derive(Debug)]
enum ApplyError {
    Io(PathBuf, io::Error),
    Refused(Refusal),
}

type Applied<T> = std::result::Result<T, ApplyError>;

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ApplyError + '_ {
    move |e| ApplyError::Io(path.to_path_buf(), e)
}

/// Applies layers to a root directory.
struct Unpacker<'a> {
    root: &'a Path,
    only: Option<&'a Path>,
    root_user: bool,
    /// Directories made or changed, with the mode and time to give them once all is written.
    dirs: BTreeMap<PathBuf, (u32, i64)>,
    done: Extracted,
}

impl<'a> Unpacker<'a> {
    fn new(root: &'a Path, only: Option<&'a Path>) -> Unpacker<'a> {
        Unpacker {
            root,
            only,
            // SAFETY: geteuid has no preconditions and cannot fail.
            root_user: unsafe { libc::geteuid() } == 0,
            dirs: BTreeMap::new(),
            done: Extracted::default(),
        }
    }

    /// Whether `rel` is kept by `--path`: the path itself, below it, or a folder above it.
    fn wanted(&self, rel: &Path, is_dir: bool) -> bool {
        match self.only {
            None => true,
            Some(only) => rel.starts_with(only) || (is_dir && only.starts_with(rel)),
        }
    }

    /// Whether removing `rel` touches what `--path` keeps.
    fn touches(&self, rel: &Path) -> bool {
        match self.only {
            None => true,
            Some(only) => rel.starts_with(only) || only.starts_with(rel),
        }
    }

    fn apply(&mut self, reader: Box<dyn Read + '_>) -> Applied<()> {
        let mut archive = tar::Archive::new(reader);
        let damaged = |e: io::Error| ApplyError::Refused(Refusal::Damaged(e));
        // What this layer made: an opaque directory keeps these and hides the rest.
        let mut unpacked: HashSet<PathBuf> = HashSet::new();
        for entry in archive.entries().map_err(damaged)? {
            let mut entry = entry.map_err(damaged)?;
            let raw = entry.path().map_err(damaged)?.into_owned();
            let rel = clean_path(&raw.to_string_lossy()).map_err(ApplyError::Refused)?;
            let Some(name) = rel.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                continue; // the root itself
            };
            let parent_rel = rel.parent().unwrap_or(Path::new("")).to_path_buf();
            if name == OPAQUE {
                if self.touches(&parent_rel) {
                    let dir = self.resolve(&parent_rel, true)?;
                    if fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
                        self.hide_lower(&dir, &parent_rel, &unpacked)?;
                    }
                }
                continue;
            }
            if let Some(hidden) = name.strip_prefix(WHITEOUT) {
                if hidden.starts_with(".wh.") || hidden.is_empty() {
                    continue; // other aufs metadata
                }
                if hidden == "." || hidden == ".." {
                    return Err(ApplyError::Refused(Refusal::WhiteoutAbove(
                        raw.display().to_string(),
                    )));
                }
                let target_rel = parent_rel.join(hidden);
                if self.touches(&target_rel) {
                    let target = self.resolve(&target_rel, false)?;
                    if fs::symlink_metadata(&target).is_ok() {
                        remove_any(&target).map_err(io_at(&target))?;
                    }
                }
                continue;
            }
            let kind = entry.header().entry_type();
            if !self.wanted(&rel, kind.is_dir()) {
                continue;
            }
            self.make(&mut entry, &rel)?;
            unpacked.insert(rel);
            self.done.entries += 1;
        }
        Ok(())
    }

    /// Removes what lower layers put in `dir`, keeping what this layer made.
    fn hide_lower(&self, dir: &Path, rel: &Path, unpacked: &HashSet<PathBuf>) -> Applied<()> {
        for child in fs::read_dir(dir).map_err(io_at(dir))? {
            let child = child.map_err(io_at(dir))?;
            let child_rel = rel.join(child.file_name());
            let path = child.path();
            if !unpacked.contains(&child_rel) {
                remove_any(&path).map_err(io_at(&path))?;
            } else if child.file_type().map_err(io_at(&path))?.is_dir() {
                self.hide_lower(&path, &child_rel, unpacked)?;
            }
        }
        Ok(())
    }

    /// Makes one entry at `rel`.
    fn make<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, rel: &Path) -> Applied<()> {
        let header = entry.header();
        let kind = header.entry_type();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let mtime = entry_time(header.mtime().unwrap_or(0));
        let owner = (
            header.uid().unwrap_or(0) as u32,
            header.gid().unwrap_or(0) as u32,
        );
        let path = self.resolve(rel, false)?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io_at(parent))?;
        }
        let existing = fs::symlink_metadata(&path).ok();
        if kind.is_dir() {
            match existing {
                Some(m) if m.is_dir() => {}
                Some(_) => {
                    remove_any(&path).map_err(io_at(&path))?;
                    fs::create_dir(&path).map_err(io_at(&path))?;
                }
                None => fs::create_dir(&path).map_err(io_at(&path))?,
            }
            self.chown(&path, owner)?;
            self.dirs.insert(path, (mode, mtime));
            return Ok(());
        }
        if existing.is_some() {
            remove_any(&path).map_err(io_at(&path))?;
        }
        if kind.is_file() || kind == tar::EntryType::Continuous {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(libc::O_NOFOLLOW)
                .mode(0o600)
                .open(&path)
                .map_err(io_at(&path))?;
            io::copy(entry, &mut file).map_err(io_at(&path))?;
            if self.root_user {
                std::os::unix::fs::fchown(&file, Some(owner.0), Some(owner.1))
                    .map_err(io_at(&path))?;
            }
            // After chown, which clears set-user-ID bits.
            file.set_permissions(fs::Permissions::from_mode(mode))
                .map_err(io_at(&path))?;
            let modified = crate::timestamp::from_unix(mtime, 0).unwrap_or(UNIX_EPOCH);
            file.set_modified(modified).map_err(io_at(&path))?;
        } else if kind.is_symlink() {
            let target =
                entry.link_name().ok().flatten().ok_or_else(|| {
                    ApplyError::Refused(Refusal::NoTarget(rel.display().to_string()))
                })?;
            std::os::unix::fs::symlink(&target, &path).map_err(io_at(&path))?;
            self.chown(&path, owner)?;
            set_time(&path, mtime).map_err(io_at(&path))?;
        } else if kind.is_hard_link() {
            let target =
                entry.link_name().ok().flatten().ok_or_else(|| {
                    ApplyError::Refused(Refusal::NoTarget(rel.display().to_string()))
                })?;
            let target_rel = clean_path(&target.to_string_lossy()).map_err(ApplyError::Refused)?;
            let source = self.resolve(&target_rel, false)?;
            match fs::symlink_metadata(&source) {
                Ok(m) if !m.is_dir() => fs::hard_link(&source, &path).map_err(io_at(&path))?,
                _ => {
                    return Err(ApplyError::Refused(Refusal::LinkOutside {
                        link: rel.display().to_string(),
                        target: target.display().to_string(),
                    }));
                }
            }
        } else if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            let file_type = if kind.is_fifo() {
                libc::S_IFIFO
            } else if kind.is_character_special() {
                libc::S_IFCHR
            } else {
                libc::S_IFBLK
            };
            let major = header.device_major().ok().flatten().unwrap_or(0);
            let minor = header.device_minor().ok().flatten().unwrap_or(0);
            let c_path = c_path(&path)?;
            // SAFETY: c_path is a valid NUL-terminated path; mknod has no other preconditions.
            let made = unsafe {
                libc::mknod(
                    c_path.as_ptr(),
                    file_type | mode,
                    libc::makedev(major, minor),
                )
            };
            if made != 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EPERM) {
                    self.done.skipped.push(format!(
                        "`/{}`: a device needs root to be made",
                        rel.display()
                    ));
                    return Ok(());
                }
                return Err(ApplyError::Io(path, e));
            }
            self.chown(&path, owner)?;
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(io_at(&path))?;
            set_time(&path, mtime).map_err(io_at(&path))?;
        }
        Ok(())
    }

    /// Gives the directories their modes and times, deepest first (writing into a directory
    /// changes its time, and a read-only mode would stop the writes).
    fn finish(&mut self) -> Applied<()> {
        for (path, (mode, mtime)) in self.dirs.iter().rev() {
            if !fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
                continue; // removed by a later layer
            }
            fs::set_permissions(path, fs::Permissions::from_mode(*mode)).map_err(io_at(path))?;
            set_time(path, *mtime).map_err(io_at(path))?;
        }
        Ok(())
    }

    fn chown(&self, path: &Path, (uid, gid): (u32, u32)) -> Applied<()> {
        if self.root_user {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(io_at(path))?;
        }
        Ok(())
    }

    /// The real path of `rel` inside the root: every component but the last (and the last too
    /// with `follow_last`) that is a symbolic link is followed inside the root, where `/` is
    /// the root and `..` stops at it.
    fn resolve(&self, rel: &Path, follow_last: bool) -> Applied<PathBuf> {
        let mut done: Vec<OsString> = Vec::new();
        let mut pending: Vec<OsString> = parts(rel);
        pending.reverse();
        let mut links = 0;
        while let Some(part) = pending.pop() {
            if part == ".." {
                done.pop();
                continue;
            }
            let last = pending.is_empty();
            let here: PathBuf = self.root.join(done.iter().collect::<PathBuf>()).join(&part);
            if last && !follow_last {
                done.push(part);
                break;
            }
            match fs::symlink_metadata(&here) {
                Ok(m) if m.file_type().is_symlink() => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(ApplyError::Refused(Refusal::LinkLoop(
                            rel.display().to_string(),
                        )));
                    }
                    let target = fs::read_link(&here).map_err(io_at(&here))?;
                    if target.is_absolute() {
                        done.clear();
                    }
                    let mut more = parts(&target);
                    more.reverse();
                    pending.extend(more);
                }
                _ => done.push(part),
            }
        }
        Ok(self.root.join(done.iter().collect::<PathBuf>()))
    }
}

/// The components of a path inside the image: names and `..`.
fn parts(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// A path inside the image, relative to its root: a leading `/` and `.` components dropped,
/// `..` resolved; one that climbs above the root is refused.
fn clean_path(path: &str) -> std::result::Result<PathBuf, Refusal> {
    let mut out = PathBuf::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::ParentDir if !out.pop() => {
                return Err(Refusal::Climbs(path.to_string()));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Removes a file, link or directory (with its contents), never following a link.
fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The latest modification time an entry keeps: Docker and containerd keep times a 64-bit
/// count of nanoseconds holds (up to 2262-04-11T23:47:16Z) and nothing before 1970.
const LATEST_ENTRY_TIME: u64 = i64::MAX as u64 / 1_000_000_000;

/// The modification time given to an entry whose header says `seconds`: the way Docker and
/// containerd apply layers, a time they cannot hold (after [`LATEST_ENTRY_TIME`], or before
/// 1970, which a base-256 header field reads as a huge number) becomes 1970-01-01.
fn entry_time(seconds: u64) -> i64 {
    match i64::try_from(seconds) {
        Ok(t) if seconds <= LATEST_ENTRY_TIME => t,
        _ => 0,
    }
}

fn c_path(path: &Path) -> Applied<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| ApplyError::Refused(Refusal::Nul(path.display().to_string())))
}

/// Sets a path's modification (and access) time without following a link.
fn set_time(path: &Path, seconds: i64) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let tv_sec = libc::time_t::try_from(seconds).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the modification time {seconds} does not fit this system's time type"),
        )
    })?;
    let t = libc::timespec { tv_sec, tv_nsec: 0 };
    let times = [t, t];
    // SAFETY: c is a valid NUL-terminated path and times points to two timespecs.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::tests::classic_tar;
    use std::os::unix::fs::MetadataExt;

    /// One entry of a test layer; names and link targets are written raw, hostile or not.
    enum E<'a> {
        Dir(&'a str),
        File(&'a str, &'a [u8]),
        Mode(&'a str, &'a [u8], u32),
        Link(&'a str, &'a str),
        Hard(&'a str, &'a str),
    }

    fn layer(entries: &[E]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for e in entries {
            let (name, kind, data, mode, link): (&str, _, &[u8], u32, &str) = match *e {
                E::Dir(n) => (n, tar::EntryType::Directory, b"", 0o755, ""),
                E::File(n, d) => (n, tar::EntryType::Regular, d, 0o644, ""),
                E::Mode(n, d, m) => (n, tar::EntryType::Regular, d, m, ""),
                E::Link(n, t) => (n, tar::EntryType::Symlink, b"", 0o777, t),
                E::Hard(n, t) => (n, tar::EntryType::Link, b"", 0o644, t),
            };
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_size(data.len() as u64);
            h.set_mode(mode);
            h.set_mtime(1_600_000_000);
            let gnu = h.as_gnu_mut().unwrap();
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
            h.set_cksum();
            builder.append(&h, data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    /// Writes an archive of the given layers into `dir` (compressed as `format`).
    fn archive(dir: &Path, layers: &[Vec<u8>], format: Format) -> Archive {
        let refs: Vec<&[u8]> = layers.iter().map(Vec::as_slice).collect();
        let (tar, id) = classic_tar(&refs, false);
        let docker = dir.join(format!("img_1.0_{}.docker", &id[7..19]));
        fs::write(&docker, tar).unwrap();
        let docker = Archive::from_path(&docker).unwrap();
        if format == Format::Docker {
            return docker;
        }
        let compression = codec::Compression::new(format, None).unwrap();
        let path = codec::compress(&docker, &compression, None, &Silent).unwrap();
        Archive::from_path(&path).unwrap()
    }

    fn tree(root: &Path) -> Vec<String> {
        let mut out: Vec<String> = walkdir::WalkDir::new(root)
            .min_depth(1)
            .into_iter()
            .map(|e| {
                let e = e.unwrap();
                let rel = e.path().strip_prefix(root).unwrap().display().to_string();
                let m = e.path().symlink_metadata().unwrap();
                if m.is_symlink() {
                    format!("{rel} -> {}", fs::read_link(e.path()).unwrap().display())
                } else if m.is_dir() {
                    format!("{rel}/")
                } else {
                    let body = String::from_utf8_lossy(&fs::read(e.path()).unwrap()).into_owned();
                    format!("{rel} {:o} {body}", m.mode() & 0o7777)
                }
            })
            .collect();
        out.sort();
        out
    }

    fn layered() -> Vec<Vec<u8>> {
        vec![
            layer(&[
                E::Dir("a/"),
                E::File("a/x", b"x1"),
                E::File("a/y", b"y1"),
                E::Dir("b/"),
                E::File("b/inner", b"i"),
                E::File("c", b"c1"),
                E::Dir("d/"),
                E::File("d/old", b"o"),
                E::Dir("d/sub/"),
                E::File("d/sub/deep", b"deep"),
                E::Mode("run.sh", b"#!", 0o4755),
                E::Link("link", "a/y"),
                E::Hard("a/hard", "a/y"),
            ]),
            layer(&[
                E::File("a/.wh.x", b""),
                E::File(".wh.b", b""),
                E::File("b", b"b is a file now"),
                E::File(".wh.c", b""),
                E::Dir("c/"),
                E::File("c/new", b"c2"),
                E::Dir("d/"),
                E::File("d/.wh..wh..opq", b""),
                E::File("d/fresh", b"f"),
            ]),
        ]
    }

    #[test]
    fn layers_apply_with_whiteouts_and_opaque_directories() {
        for format in [Format::Docker, Format::Zip, Format::Zst] {
            let d = tempfile::tempdir().unwrap();
            let a = archive(d.path(), &layered(), format.clone());
            let root = d.path().join("root");
            let done = extract(&a, &root, None).unwrap();
            assert!(done.entries > 10);
            assert_eq!(
                tree(&root),
                vec![
                    "a/",
                    "a/hard 644 y1",
                    "a/y 644 y1",
                    "b 644 b is a file now",
                    "c/",
                    "c/new 644 c2",
                    "d/",
                    "d/fresh 644 f",
                    "link -> a/y",
                    "run.sh 4755 #!",
                ],
                "{format}"
            );
            assert_eq!(
                root.join("a/hard").metadata().unwrap().ino(),
                root.join("a/y").metadata().unwrap().ino()
            );
            let mtime = root.join("a").metadata().unwrap().mtime();
            assert_eq!(mtime, 1_600_000_000);
            // Nothing left beside the directory (the spooled tar is gone).
            let names: Vec<_> = fs::read_dir(d.path()).unwrap().flatten().collect();
            assert_eq!(names.len(), 2, "{names:?}");
        }
    }

    #[test]
    fn only_a_path() {
        let d = tempfile::tempdir().unwrap();
        let a = archive(d.path(), &layered(), Format::Docker);
        let root = d.path().join("root");
        extract(&a, &root, Some("/c")).unwrap();
        assert_eq!(tree(&root), vec!["c/", "c/new 644 c2"]);
        let root = d.path().join("root2");
        extract(&a, &root, Some("a/y")).unwrap();
        assert_eq!(tree(&root), vec!["a/", "a/y 644 y1"]);
        let root = d.path().join("root3");
        let err = extract(&a, &root, Some("a/x")).unwrap_err();
        assert!(err.to_string().contains("a/x"), "{err}");
        assert!(!root.exists());
    }

    #[test]
    fn hostile_layers_write_nothing_outside() {
        let d = tempfile::tempdir().unwrap();
        let outside = d.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let cases: Vec<(Vec<Vec<u8>>, bool)> = vec![
            (vec![layer(&[E::File("../outside/escaped", b"x")])], false),
            (
                vec![layer(&[E::File("a/../../outside/escaped", b"x")])],
                false,
            ),
            // A link to the real /etc, and a file written through it.
            (
                vec![
                    layer(&[E::Link("etc", "/etc")]),
                    layer(&[E::File("etc/toolbox-escaped", b"x")]),
                ],
                false,
            ),
            (
                vec![layer(&[
                    E::Link("up", "../../../.."),
                    E::File("up/outside/escaped", b"x"),
                ])],
                true,
            ),
            (vec![layer(&[E::Hard("h", "../outside/target")])], false),
            (vec![layer(&[E::Hard("h", "/etc/passwd")])], false),
            (vec![layer(&[E::File("/abs", b"x")])], true),
            (vec![layer(&[E::File("a/.wh.../../outside", b"")])], true),
            (
                vec![layer(&[E::File("a/x", b""), E::File("a/.wh...", b"")])],
                false,
            ),
            (vec![layer(&[E::File(".wh...", b"")])], false),
        ];
        fs::write(outside.join("target"), b"t").unwrap();
        for (i, (layers, contained)) in cases.into_iter().enumerate() {
            let a = archive(d.path(), &layers, Format::Docker);
            let root = d.path().join(format!("root{i}"));
            let result = extract(&a, &root, None);
            assert_eq!(result.is_ok(), contained, "case {i}: {result:?}");
            if let Err(e) = result {
                assert!(
                    e.to_string().contains("refused") || e.to_string().contains("layer"),
                    "{e}"
                );
                assert!(!root.exists(), "case {i}: the directory is removed again");
            }
            let mut found: Vec<_> = fs::read_dir(&outside)
                .unwrap()
                .flatten()
                .map(|e| e.file_name())
                .collect();
            found.sort();
            assert_eq!(found, vec![OsString::from("target")], "case {i}");
            assert!(!Path::new("/etc/toolbox-escaped").exists());
            fs::remove_file(&a.path).unwrap();
        }
    }

    /// Times no engine keeps (before 1970, after 2262, or past any time type) become
    /// 1970-01-01, as Docker and containerd make them; the others stay, and nothing panics.
    #[test]
    fn absurd_modification_times_become_the_epoch() {
        let negative = {
            let mut field = [0xffu8; 12];
            field[11] = 0xfe; // -2 in base-256
            field
        };
        /// An mtime as `set_mtime` writes it, or a raw header field.
        type Field = std::result::Result<u64, [u8; 12]>;
        // (name, kind, mtime, the time expected)
        let cases: [(&str, tar::EntryType, Field, i64); 7] = [
            (
                "octal",
                tar::EntryType::Regular,
                Ok(0o77777777777),
                0o77777777777,
            ),
            (
                "latest",
                tar::EntryType::Regular,
                Ok(9_223_372_036),
                9_223_372_036,
            ),
            ("later", tar::EntryType::Regular, Ok(9_223_372_037), 0),
            ("huge", tar::EntryType::Regular, Ok(u64::MAX), 0),
            ("before", tar::EntryType::Regular, Err(negative), 0),
            ("dir", tar::EntryType::Directory, Ok(1 << 62), 0),
            ("link", tar::EntryType::Symlink, Ok(i64::MAX as u64 + 1), 0),
        ];
        let mut builder = tar::Builder::new(Vec::new());
        for (name, kind, mtime, _) in &cases {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(0);
            h.set_mode(0o755);
            h.set_path(name).unwrap();
            if kind.is_symlink() {
                h.set_link_name("octal").unwrap();
            }
            match mtime {
                Ok(t) => h.set_mtime(*t),
                Err(raw) => h.as_old_mut().mtime = *raw,
            }
            h.set_cksum();
            builder.append(&h, &b""[..]).unwrap();
        }
        let layers = vec![builder.into_inner().unwrap()];
        let d = tempfile::tempdir().unwrap();
        let a = archive(d.path(), &layers, Format::Docker);
        let root = d.path().join("root");
        let done = extract(&a, &root, None).unwrap();
        assert_eq!(done.entries, cases.len() as u64);
        for (name, _, _, expected) in cases {
            let found = root.join(name).symlink_metadata().unwrap().mtime();
            assert_eq!(found, expected, "{name}");
        }
        assert_eq!(entry_time(u64::MAX), 0);
        assert_eq!(entry_time(LATEST_ENTRY_TIME), 9_223_372_036);
    }

    #[test]
    fn the_directory_must_be_empty() {
        let d = tempfile::tempdir().unwrap();
        let a = archive(d.path(), &layered(), Format::Docker);
        let root = d.path().join("full");
        fs::create_dir(&root).unwrap();
        fs::write(root.join("keep"), b"k").unwrap();
        let err = extract(&a, &root, None).unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
        assert_eq!(fs::read(root.join("keep")).unwrap(), b"k");
        let file = d.path().join("file");
        fs::write(&file, b"f").unwrap();
        assert!(extract(&a, &file, None).is_err());
        assert_eq!(fs::read(&file).unwrap(), b"f");
    }
}
