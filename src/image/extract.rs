//! Writes an image's root filesystem into a directory by applying its layers in order, the way
//! an engine does: whiteouts (`.wh.NAME`) remove what lower layers made, opaque directories
//! (`.wh..wh..opq`) hide a lower directory's contents, and regular files, directories,
//! symbolic and hard links, devices and FIFOs are made with their modes and modification times
//! (owners too when run as root).
//!
//! Nothing is ever written outside the directory, in any pass (making entries, linking,
//! removing, setting owners, modes and times): paths are cleaned (a leading `/` is dropped, a
//! path that climbs out with `..` is refused), and every folder an entry is made in is opened by
//! the kernel with `openat2(RESOLVE_IN_ROOT)` relative to the directory, as if it were the root
//! (`/` and `..` stop at it, symbolic links are followed within it: a link to `/etc` leads to the
//! directory's own `etc`). Everything is then done relative to that open folder, and the last
//! component is never followed. The folder of the previous entry stays open, so that entries
//! of one folder cost the same at any depth.
//!
//! Every layer is checked as it streams (its blob digest, and its content against the config's
//! `diff_id`), as the image ID against the file name is before anything is written; when
//! anything fails, or the run is interrupted, the directory is left as it was found.

use std::collections::{BTreeMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use std::time::UNIX_EPOCH;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps};
use rustix::io::Errno;

use super::ArchiveError as Error;
use super::{ImageError, Refusal, TarIndex};
use crate::archive::Archive;
use crate::codec;
use crate::digest::HashingReader;
use crate::interrupt::{self, Interruptible};
use crate::io_error::{IoContext, IoError};

type Result<T> = std::result::Result<T, Error>;
use crate::progress::Silent;

const WHITEOUT: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";
/// The longest path an entry may have (the kernel's `PATH_MAX`, with its NUL).
const PATH_MAX: usize = 4095;
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
    let only = match only.map(|p| clean_path(Path::new(p))).transpose() {
        Ok(p) => p.filter(|p| !p.as_os_str().is_empty()),
        Err(refusal) => {
            return Err(Error::Refused {
                path: PathBuf::from(only.unwrap_or_default()),
                layer: None,
                refusal,
            });
        }
    };
    let created = prepare(dest)?;
    let registered = interrupt::empty_dir_on_stop(dest, created);
    let result = extract_into(archive, dest, only.as_deref());
    if result.is_err() {
        // Emptied again (and removed when it was made).
        interrupt::empty_dir(dest, created);
    }
    drop(registered);
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

fn extract_into(archive: &Archive, dest: &Path, only: Option<&Path>) -> Result<Extracted> {
    // Layers are applied in the manifest's order, which is not the tar's: a compressed archive
    // is first unpacked into a temporary tar beside `dest`, removed afterwards (and by an
    // interrupted run).
    let path = archive.path.clone();
    let damaged = |source| Error::Damaged {
        path: path.clone(),
        source,
    };
    let (members, _spool) = match super::Members::open(archive)? {
        Some(members) => (members, None),
        None => {
            let parent = dest
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let mut spool = tempfile::Builder::new()
                .prefix(".toolbox-extract.")
                .tempfile_in(parent)
                .at(parent)?;
            let spool_path = spool.path().to_path_buf();
            let registered = interrupt::remove_file_on_stop(&spool_path);
            super::with_tar(archive, &Silent, |tar| {
                codec::copy(
                    &mut Interruptible(tar),
                    &archive.path,
                    spool.as_file_mut(),
                    &spool_path,
                )
                .map(|_| ())
                .map_err(Error::from)
            })?;
            let file = spool.reopen().at(&spool_path)?;
            (super::Members::Tar(file), Some((spool, registered)))
        }
    };
    let index = match &members {
        super::Members::Tar(file) => {
            TarIndex::read_seekable(BufReader::new(file)).map_err(|e| super::indexing(&path, e))?
        }
        super::Members::Store(composed) => composed.index(),
    };
    let info = index.image().map_err(damaged)?;
    // Nothing is written from an archive that is not what its name says.
    super::check_name(&info, &archive.name.id).map_err(damaged)?;
    let mut unpacker = Unpacker::new(dest, only).at(dest)?;
    let refused = |layer: Option<(usize, String)>| {
        let path = path.clone();
        move |e| match e {
            ApplyError::Io(at, e) => IoError::new(&at, e).into(),
            ApplyError::Refused(refusal) => Error::Refused {
                path,
                layer,
                refusal,
            },
        }
    };
    for (n, layer) in info.layers.iter().enumerate() {
        let found = index
            .file(&layer.path)
            .ok_or_else(|| damaged(ImageError::LayerMissing(layer.path.clone())))?;
        let mut raw = BufReader::new(members.read(&found)?);
        // The bytes as stored are hashed apart only when they are a compressed blob (else
        // their digest is the content's).
        let blob = found.path.strip_prefix("blobs/sha256/");
        let compressed = is_compressed(raw.fill_buf().at(&path)?);
        let mut stored = StoredBytes {
            inner: raw,
            hasher: (blob.is_some() && compressed).then(crate::digest::Hasher::default),
        };
        let plain = {
            let reader = layer_reader(BufReader::new(&mut stored)).at(&path)?;
            let mut plain = HashingReader::new(Interruptible(reader));
            unpacker
                .apply(&mut plain)
                .map_err(refused(Some((n + 1, layer.diff_id.clone()))))?;
            // What the tar reader left (padding) counts too.
            io::copy(&mut plain, &mut io::sink()).map_err(|e| {
                damaged(ImageError::Read {
                    path: layer.path.clone(),
                    source: e,
                })
            })?;
            plain.digest()
        };
        io::copy(&mut stored, &mut io::sink()).at(&path)?;
        let stored = stored.hasher.map_or_else(|| plain.clone(), |h| h.digest());
        if let Some(hex) = blob
            && stored != format!("sha256:{hex}")
        {
            return Err(damaged(ImageError::BlobDigest {
                path: found.path.to_string(),
                found: stored,
            }));
        }
        if plain != layer.diff_id {
            return Err(damaged(ImageError::LayerDigest {
                layer: layer.path.clone(),
                found: plain,
                expected: layer.diff_id.clone(),
            }));
        }
    }
    unpacker.finish().map_err(refused(None))?;
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

/// A layer's bytes as stored, hashed on the way when asked.
struct StoredBytes<R> {
    inner: R,
    hasher: Option<crate::digest::Hasher>,
}

impl<R: Read> Read for StoredBytes<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

pub(super) const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// Whether a layer's first bytes are gzip's or zstd's magic number.
pub(super) fn is_compressed(head: &[u8]) -> bool {
    head.starts_with(GZIP_MAGIC) || head.starts_with(ZSTD_MAGIC)
}

/// A layer's tar: as stored, or gzip- or zstd-decompressed.
fn layer_reader<'r, R: io::BufRead + 'r>(mut reader: R) -> io::Result<Box<dyn Read + 'r>> {
    let head = reader.fill_buf()?;
    if head.starts_with(GZIP_MAGIC) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(reader)))
    } else if head.starts_with(ZSTD_MAGIC) {
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

/// An open folder inside the root.
type DirFd = Rc<OwnedFd>;

/// Folders are opened to be worked in (`O_PATH`: no read permission needed).
const DIR_FLAGS: OFlags = OFlags::PATH.union(OFlags::DIRECTORY).union(OFlags::CLOEXEC);
const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// Applies layers to a root directory.
struct Unpacker<'a> {
    /// The root directory, open.
    root: DirFd,
    /// Its path, for messages.
    root_path: &'a Path,
    only: Option<&'a Path>,
    root_user: bool,
    /// Directories made or changed (paths inside the root), with the mode and time to give them
    /// once all is written.
    dirs: BTreeMap<PathBuf, (u32, i64)>,
    /// The folder the last entry was made in (or the last folder made), open: the next entries
    /// of that folder need not resolve it again. Forgotten whenever anything is removed or
    /// replaced (which may change what a path leads to).
    near: Option<(PathBuf, DirFd)>,
    done: Extracted,
}

impl<'a> Unpacker<'a> {
    fn new(root_path: &'a Path, only: Option<&'a Path>) -> io::Result<Unpacker<'a>> {
        let root = rustix::fs::open(root_path, DIR_FLAGS, Mode::empty())?;
        Ok(Unpacker {
            root: Rc::new(root),
            root_path,
            only,
            // SAFETY: geteuid has no preconditions and cannot fail.
            root_user: unsafe { libc::geteuid() } == 0,
            dirs: BTreeMap::new(),
            near: None,
            done: Extracted::default(),
        })
    }

    /// The path of `rel` for messages.
    fn shown(&self, rel: &Path) -> PathBuf {
        self.root_path.join(rel)
    }

    fn io(&self, rel: &Path) -> impl FnOnce(Errno) -> ApplyError + use<> {
        let at = self.shown(rel);
        move |e| ApplyError::Io(at, e.into())
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

    fn apply(&mut self, reader: &mut dyn Read) -> Applied<()> {
        let mut archive = tar::Archive::new(reader);
        let damaged = |e: io::Error| ApplyError::Refused(Refusal::Damaged(e));
        // What this layer made: an opaque directory keeps these and hides the rest.
        let mut unpacked: HashSet<PathBuf> = HashSet::new();
        for entry in archive.entries().map_err(damaged)? {
            let mut entry = entry.map_err(damaged)?;
            let raw = entry.path().map_err(damaged)?.into_owned();
            let rel = clean_path(&raw).map_err(ApplyError::Refused)?;
            if rel.as_os_str().len() > PATH_MAX {
                return Err(ApplyError::Refused(Refusal::TooLong(rel.as_os_str().len())));
            }
            let Some(name) = rel.file_name().map(OsStr::to_os_string) else {
                continue; // the root itself
            };
            let parent_rel = rel.parent().unwrap_or(Path::new("")).to_path_buf();
            // The interrupted run's clean-up never overlaps the making of an entry.
            let _section = interrupt::section();
            if name.as_bytes() == OPAQUE {
                if self.touches(&parent_rel)
                    && let Some(dir) = self.lookup(&parent_rel)?
                {
                    self.near = None;
                    self.hide_lower(&dir, &parent_rel, &unpacked)?;
                }
                continue;
            }
            if let Some(hidden) = name.as_bytes().strip_prefix(WHITEOUT) {
                if hidden.starts_with(WHITEOUT) || hidden.is_empty() {
                    continue; // other aufs metadata
                }
                if hidden == b"." || hidden == b".." {
                    return Err(ApplyError::Refused(Refusal::WhiteoutAbove(
                        raw.display().to_string(),
                    )));
                }
                let target_rel = parent_rel.join(OsStr::from_bytes(hidden));
                if self.touches(&target_rel)
                    && let Some(dir) = self.lookup(&parent_rel)?
                {
                    self.near = None;
                    remove_at(&dir, OsStr::from_bytes(hidden)).map_err(self.io(&target_rel))?;
                }
                continue;
            }
            let kind = entry.header().entry_type();
            if !self.wanted(&rel, kind.is_dir()) {
                continue;
            }
            self.make(&mut entry, &rel, &parent_rel, &name)?;
            unpacked.insert(rel);
            self.done.entries += 1;
        }
        Ok(())
    }

    /// The folder at `rel` inside the root (links followed within it), `None` when there is
    /// none.
    fn lookup(&mut self, rel: &Path) -> Applied<Option<DirFd>> {
        if let Some((near, fd)) = &self.near
            && near == rel
        {
            return Ok(Some(fd.clone()));
        }
        if rel.as_os_str().is_empty() {
            return Ok(Some(self.root.clone()));
        }
        let mut tries = 0;
        loop {
            match rustix::fs::openat2(&*self.root, rel, DIR_FLAGS, Mode::empty(), IN_ROOT) {
                Ok(fd) => return Ok(Some(Rc::new(fd))),
                Err(Errno::NOENT) => return Ok(None),
                // The kernel could not tell that a rename elsewhere left the path inside.
                Err(Errno::AGAIN) if tries < 8 => tries += 1,
                Err(Errno::LOOP) => {
                    return Err(ApplyError::Refused(Refusal::LinkLoop(
                        rel.display().to_string(),
                    )));
                }
                Err(e) => return Err(self.io(rel)(e)),
            }
        }
    }

    /// The folder at `rel`, made (with the folders above it) where missing. Where a link on
    /// the way leads to a folder that does not exist yet, that folder is made inside the root,
    /// as an engine makes it.
    fn folder(&mut self, rel: &Path) -> Applied<DirFd> {
        if let Some(fd) = self.lookup(rel)? {
            return Ok(fd);
        }
        // The path with every link on the way followed inside the root: only real folders
        // (existing or not) remain, made from the root down.
        let real = self.real_path(rel)?;
        let mut fd = self.root.clone();
        for name in &real {
            match rustix::fs::mkdirat(&*fd, name, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(self.io(rel)(e)),
            }
            fd = Rc::new(
                rustix::fs::openat(&*fd, name, DIR_FLAGS | OFlags::NOFOLLOW, Mode::empty())
                    .map_err(self.io(rel))?,
            );
        }
        Ok(fd)
    }

    /// The components of `rel` inside the root with every symbolic link followed inside it
    /// (`/` and `..` stop at the root), read with `readlinkat` below folders already known to be
    /// real: the slow path, for folders that do not exist yet.
    fn real_path(&self, rel: &Path) -> Applied<Vec<OsString>> {
        let mut done: Vec<OsString> = Vec::new();
        let mut pending: Vec<OsString> = parts(rel);
        pending.reverse();
        let mut links = 0;
        while let Some(part) = pending.pop() {
            if part == ".." {
                done.pop();
                continue;
            }
            let here: PathBuf = done.iter().chain(std::iter::once(&part)).collect();
            match rustix::fs::readlinkat(&*self.root, &here, Vec::new()) {
                Ok(target) => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(ApplyError::Refused(Refusal::LinkLoop(
                            rel.display().to_string(),
                        )));
                    }
                    let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
                    if target.is_absolute() {
                        done.clear();
                    }
                    let mut more = parts(&target);
                    more.reverse();
                    pending.extend(more);
                }
                Err(_) => done.push(part),
            }
        }
        Ok(done)
    }

    /// Removes what lower layers put in `dir`, keeping what this layer made.
    fn hide_lower(&self, dir: &DirFd, rel: &Path, unpacked: &HashSet<PathBuf>) -> Applied<()> {
        for (name, is_dir) in children(dir).map_err(self.io(rel))? {
            let child_rel = rel.join(&name);
            if !unpacked.contains(&child_rel) {
                remove_at(dir, &name).map_err(self.io(&child_rel))?;
            } else if is_dir {
                let child =
                    rustix::fs::openat(&**dir, &name, DIR_FLAGS | OFlags::NOFOLLOW, Mode::empty())
                        .map_err(self.io(&child_rel))?;
                self.hide_lower(&Rc::new(child), &child_rel, unpacked)?;
            }
        }
        Ok(())
    }

    /// Makes one entry at `rel` (`name` in the folder `parent_rel`).
    fn make<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        rel: &Path,
        parent_rel: &Path,
        name: &OsStr,
    ) -> Applied<()> {
        let header = entry.header();
        let kind = header.entry_type();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let mtime = entry_time(header.mtime().unwrap_or(0));
        let owner = (
            header.uid().unwrap_or(0) as u32,
            header.gid().unwrap_or(0) as u32,
        );
        let parent = self.folder(parent_rel)?;
        self.near = Some((parent_rel.to_path_buf(), parent.clone()));
        let root_path = self.root_path;
        let io = move |e: Errno| ApplyError::Io(root_path.join(rel), e.into());
        let existing = match rustix::fs::statat(&*parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Some(FileType::from_raw_mode(stat.st_mode)),
            Err(Errno::NOENT) => None,
            Err(e) => return Err(io(e)),
        };
        if kind.is_dir() {
            match existing {
                Some(FileType::Directory) => {}
                Some(_) => {
                    self.near = None;
                    remove_at(&parent, name).map_err(io)?;
                    rustix::fs::mkdirat(&*parent, name, Mode::from_raw_mode(0o755)).map_err(io)?;
                }
                None => {
                    rustix::fs::mkdirat(&*parent, name, Mode::from_raw_mode(0o755)).map_err(io)?
                }
            }
            self.chown(&parent, name, owner).map_err(io)?;
            let made =
                rustix::fs::openat(&*parent, name, DIR_FLAGS | OFlags::NOFOLLOW, Mode::empty())
                    .map_err(io)?;
            self.near = Some((rel.to_path_buf(), Rc::new(made)));
            self.dirs.insert(rel.to_path_buf(), (mode, mtime));
            return Ok(());
        }
        if existing.is_some() {
            // A child of the folder open in `near`: what that folder is does not change.
            remove_at(&parent, name).map_err(io)?;
        }
        let times = Timestamps {
            last_access: Timespec {
                tv_sec: mtime,
                tv_nsec: 0,
            },
            last_modification: Timespec {
                tv_sec: mtime,
                tv_nsec: 0,
            },
        };
        if kind.is_file() || kind == tar::EntryType::Continuous {
            let fd = rustix::fs::openat(
                &*parent,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(io)?;
            let mut file = File::from(fd);
            let at = self.shown(rel);
            io::copy(entry, &mut file).map_err(|e| ApplyError::Io(at.clone(), e))?;
            if self.root_user {
                rustix::fs::fchown(&file, Some(uid(owner.0)), Some(gid(owner.1))).map_err(io)?;
            }
            // After chown, which clears set-user-ID bits.
            rustix::fs::fchmod(&file, Mode::from_raw_mode(mode)).map_err(io)?;
            let modified = crate::timestamp::from_unix(mtime, 0).unwrap_or(UNIX_EPOCH);
            file.set_modified(modified)
                .map_err(|e| ApplyError::Io(at, e))?;
        } else if kind.is_symlink() {
            let target =
                entry.link_name().ok().flatten().ok_or_else(|| {
                    ApplyError::Refused(Refusal::NoTarget(rel.display().to_string()))
                })?;
            rustix::fs::symlinkat(&*target, &*parent, name).map_err(io)?;
            self.chown(&parent, name, owner).map_err(io)?;
            rustix::fs::utimensat(&*parent, name, &times, AtFlags::SYMLINK_NOFOLLOW).map_err(io)?;
        } else if kind.is_hard_link() {
            let target =
                entry.link_name().ok().flatten().ok_or_else(|| {
                    ApplyError::Refused(Refusal::NoTarget(rel.display().to_string()))
                })?;
            let outside = || {
                ApplyError::Refused(Refusal::LinkOutside {
                    link: rel.display().to_string(),
                    target: target.display().to_string(),
                })
            };
            let target_rel = clean_path(&target).map_err(ApplyError::Refused)?;
            let (Some(source_name), Some(source_parent)) =
                (target_rel.file_name(), target_rel.parent())
            else {
                return Err(outside());
            };
            let Some(source_dir) = self.lookup(source_parent)? else {
                return Err(outside());
            };
            match rustix::fs::statat(&*source_dir, source_name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) if FileType::from_raw_mode(stat.st_mode) != FileType::Directory => {
                    rustix::fs::linkat(&*source_dir, source_name, &*parent, name, AtFlags::empty())
                        .map_err(io)?;
                }
                _ => return Err(outside()),
            }
        } else if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            let file_type = if kind.is_fifo() {
                FileType::Fifo
            } else if kind.is_character_special() {
                FileType::CharacterDevice
            } else {
                FileType::BlockDevice
            };
            let major = header.device_major().ok().flatten().unwrap_or(0);
            let minor = header.device_minor().ok().flatten().unwrap_or(0);
            match rustix::fs::mknodat(
                &*parent,
                name,
                file_type,
                Mode::from_raw_mode(mode),
                rustix::fs::makedev(major, minor),
            ) {
                Ok(()) => {}
                Err(Errno::PERM) => {
                    self.done.skipped.push(format!(
                        "`/{}`: a device needs root to be made",
                        rel.display()
                    ));
                    return Ok(());
                }
                Err(e) => return Err(io(e)),
            }
            self.chown(&parent, name, owner).map_err(io)?;
            // What was just made is no link: nothing to follow.
            rustix::fs::chmodat(&*parent, name, Mode::from_raw_mode(mode), AtFlags::empty())
                .map_err(io)?;
            rustix::fs::utimensat(&*parent, name, &times, AtFlags::SYMLINK_NOFOLLOW).map_err(io)?;
        }
        Ok(())
    }

    /// Gives the directories their modes and times, deepest first (writing into a directory
    /// changes its time, and a read-only mode would stop the writes). Each is opened as the
    /// entries were made: its folder resolved inside the root, itself never followed.
    fn finish(&mut self) -> Applied<()> {
        self.near = None;
        let dirs = std::mem::take(&mut self.dirs);
        for (rel, (mode, mtime)) in dirs.iter().rev() {
            let _section = interrupt::section();
            let (Some(name), Some(parent_rel)) = (rel.file_name(), rel.parent()) else {
                continue;
            };
            let parent = match self.lookup(parent_rel) {
                Ok(Some(parent)) => parent,
                // Removed, or no longer reachable, by a later layer.
                Ok(None) | Err(ApplyError::Refused(_)) => continue,
                Err(e) => return Err(e),
            };
            let dir = match rustix::fs::openat(
                &*parent,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(dir) => dir,
                // Replaced by a later layer (a link, a file) or gone: nothing of it to set.
                Err(Errno::NOENT | Errno::LOOP | Errno::NOTDIR) => continue,
                Err(e) => return Err(self.io(rel)(e)),
            };
            rustix::fs::fchmod(&dir, Mode::from_raw_mode(*mode)).map_err(self.io(rel))?;
            let t = Timespec {
                tv_sec: *mtime,
                tv_nsec: 0,
            };
            let times = Timestamps {
                last_access: t,
                last_modification: t,
            };
            rustix::fs::futimens(&dir, &times).map_err(self.io(rel))?;
        }
        Ok(())
    }

    fn chown(&self, dir: &DirFd, name: &OsStr, (u, g): (u32, u32)) -> rustix::io::Result<()> {
        if self.root_user {
            rustix::fs::chownat(
                &**dir,
                name,
                Some(uid(u)),
                Some(gid(g)),
                AtFlags::SYMLINK_NOFOLLOW,
            )?;
        }
        Ok(())
    }
}

fn uid(raw: u32) -> rustix::fs::Uid {
    rustix::fs::Uid::from_raw(raw)
}

fn gid(raw: u32) -> rustix::fs::Gid {
    rustix::fs::Gid::from_raw(raw)
}

/// The names in a folder (without `.` and `..`), and whether each is a folder.
fn children(dir: &impl AsFd) -> rustix::io::Result<Vec<(OsString, bool)>> {
    let readable = rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut out = Vec::new();
    for entry in Dir::new(readable)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let name = OsStr::from_bytes(name).to_os_string();
        let is_dir = match entry.file_type() {
            FileType::Unknown => rustix::fs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Directory),
            t => t == FileType::Directory,
        };
        out.push((name, is_dir));
    }
    Ok(out)
}

/// Removes `name` in the folder `dir` — a file, a link (never followed) or a folder with all it
/// holds; nothing there is fine.
fn remove_at(dir: &impl AsFd, name: &OsStr) -> rustix::io::Result<()> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR | Errno::PERM) => {}
        Err(e) => return Err(e),
    }
    let sub = rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    // A folder of the image may have no write or search permission for its owner.
    let _ = rustix::fs::chmodat(dir, name, Mode::from_raw_mode(0o700), AtFlags::empty());
    for (child, _) in children(&sub)? {
        remove_at(&sub, &child)?;
    }
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)
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
pub(super) fn clean_path(path: &Path) -> std::result::Result<PathBuf, Refusal> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::ParentDir if !out.pop() => {
                return Err(Refusal::Climbs(path.display().to_string()));
            }
            _ => {}
        }
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::tests::classic_tar;
    use crate::name::Format;
    use std::os::unix::fs::MetadataExt;

    /// One entry of a test layer; names and link targets are written raw, hostile or not.
    enum E<'a> {
        Dir(&'a str),
        DirMode(&'a str, u32),
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
                E::DirMode(n, m) => (n, tar::EntryType::Directory, b"", m, ""),
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

    /// A folder replaced by a link to a folder outside, after an entry inside it: the pass that
    /// sets folder modes and times resolves inside the directory and never follows the link out.
    #[test]
    fn folders_replaced_by_links_never_lead_outside() {
        let d = tempfile::tempdir().unwrap();
        let outside = d.path().join("outside");
        fs::create_dir_all(outside.join("victim")).unwrap();
        let before = |p: &Path| {
            let m = fs::symlink_metadata(p).unwrap();
            (m.mode(), m.mtime(), m.mtime_nsec())
        };
        let (o, v) = (before(&outside), before(&outside.join("victim")));
        let absolute = outside.to_str().unwrap().to_string();
        let relative = "../../../../../../../../../../outside".to_string();
        for (i, target) in [absolute, relative].iter().enumerate() {
            let victim = layer(&[
                E::Dir("a/"),
                E::DirMode("a/victim/", 0o777),
                E::Link("a", target),
            ]);
            let a = archive(d.path(), &[victim], Format::Docker);
            let root = d.path().join(format!("root{i}"));
            extract(&a, &root, None).unwrap();
            assert!(root.join("a").symlink_metadata().unwrap().is_symlink());
            assert_eq!(
                before(&outside),
                o,
                "case {i}: the folder outside is untouched"
            );
            assert_eq!(before(&outside.join("victim")), v, "case {i}");
            fs::remove_file(&a.path).unwrap();
        }
    }

    /// Entries of one folder cost the same at any depth: 5,000 files 1,500 folders deep.
    #[test]
    fn deep_folders_with_many_files() {
        let mut entries = Vec::new();
        let mut dir = String::new();
        for _ in 0..1500 {
            dir.push_str("d/");
            entries.push(dir.clone());
        }
        let files: Vec<String> = (0..5000).map(|i| format!("{dir}f{i}")).collect();
        let mut builder = tar::Builder::new(Vec::new());
        for (name, kind) in entries
            .iter()
            .map(|n| (n, tar::EntryType::Directory))
            .chain(files.iter().map(|n| (n, tar::EntryType::Regular)))
        {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_size(0);
            h.set_mode(0o755);
            builder.append_data(&mut h, name, &b""[..]).unwrap();
        }
        let d = tempfile::tempdir().unwrap();
        let a = archive(d.path(), &[builder.into_inner().unwrap()], Format::Docker);
        let root = d.path().join("root");
        let done = extract(&a, &root, None).unwrap();
        assert_eq!(done.entries, 6500);
    }

    /// A layer whose bytes are not what the config says, and an archive named for another
    /// image, write nothing: the directory is left as it was found.
    #[test]
    fn damaged_or_renamed_archives_write_nothing() {
        let d = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let layers = vec![
            layer(&[E::File("first", b"1")]),
            layer(&[E::File("second", &big)]),
        ];
        for format in [Format::Docker, Format::Zip, Format::Zst] {
            // A byte of the second layer's file flipped in the .docker before compressing.
            let refs: Vec<&[u8]> = layers.iter().map(Vec::as_slice).collect();
            let (mut tar, id) = classic_tar(&refs, false);
            let at = tar.windows(4).position(|w| w == [0u8, 1, 2, 3]).unwrap() + 1000;
            tar[at] ^= 0xff;
            let docker = d.path().join(format!("img_1.0_{}.docker", &id[7..19]));
            fs::write(&docker, &tar).unwrap();
            let mut a = Archive::from_path(&docker).unwrap();
            if format != Format::Docker {
                let c = codec::Compression::new(format.clone(), None).unwrap();
                a = Archive::from_path(&codec::compress(&a, &c, None, &Silent).unwrap()).unwrap();
            }
            let root = d.path().join("kept");
            fs::create_dir(&root).unwrap();
            let err = extract(&a, &root, None).unwrap_err();
            assert!(err.to_string().contains("layer"), "{format}: {err}");
            assert_eq!(fs::read_dir(&root).unwrap().count(), 0, "{format}");
            fs::remove_dir(&root).unwrap();
            fs::remove_file(&a.path).unwrap();
        }
        // Renamed: a sound archive under another image's ID.
        let a = archive(d.path(), &layers, Format::Docker);
        let renamed = d.path().join("img_1.0_0123456789ab.docker");
        fs::rename(&a.path, &renamed).unwrap();
        let root = d.path().join("renamed");
        let err = extract(&Archive::from_path(&renamed).unwrap(), &root, None).unwrap_err();
        assert!(err.to_string().contains("0123456789ab"), "{err}");
        assert!(!root.exists());
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
