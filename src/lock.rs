//! The artifacts directory's lock: mutating commands hold an exclusive `flock` on
//! `.toolbox.lock` inside it, so that two runs never write or remove the same archives at once.
//! Read-only commands never take it.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use walkdir::WalkDir;

use crate::commit::TEMP_PREFIX;
use crate::io_error::{IoContext, IoError, MissingDir};

/// Why an artifacts directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(transparent)]
    MissingDir(#[from] MissingDir),

    #[error(
        "another toolbox run holds the lock on `{}`; wait for it, or run again without --no-wait",
        dir.display()
    )]
    Locked { dir: PathBuf },

    #[error(transparent)]
    Io(#[from] IoError),
}

type Result<T> = std::result::Result<T, LockError>;

/// The lock file's name inside the artifacts directory.
pub const LOCK_FILE: &str = ".toolbox.lock";

/// How long to wait before saying that another run holds the lock.
const PATIENCE: Duration = Duration::from_secs(1);

/// What to do when another run holds the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Wait for it (calling the `waiting` callback once, after a second).
    Yes,
    /// Fail at once.
    No,
}

/// What [`DirLock::for_change`] tells its caller while it works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice<'a> {
    /// Another run holds `lock_file`; this one waits for it.
    Waiting { lock_file: &'a Path },
    /// `path`, a temporary file an interrupted run left, was removed.
    RemovedLeftover { path: &'a Path },
    /// The artifacts directory `dir` did not exist and was created.
    Created { dir: &'a Path },
}

/// Whether the file `file` (its folder resolved, the file itself never followed) is outside the
/// artifacts directory `basedir` (or `basedir` does not exist). A folder that cannot be
/// resolved counts as inside.
pub fn is_outside(file: &Path, basedir: &Path) -> bool {
    let folder = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match (folder.canonicalize(), basedir.canonicalize()) {
        (Ok(folder), Ok(base)) => !folder.starts_with(&base),
        (Ok(_), Err(_)) => true,
        _ => false,
    }
}

/// An exclusive lock on an artifacts directory, released when dropped.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Locks `dir` (which must exist). When another run holds the lock: with [`Wait::No`] fails
    /// at once; with [`Wait::Yes`] waits, calling `waiting` once if that takes over a second.
    pub fn acquire(dir: &Path, wait: Wait, waiting: &mut dyn FnMut()) -> Result<DirLock> {
        if !dir.is_dir() {
            return Err(MissingDir {
                path: dir.to_path_buf(),
            }
            .into());
        }
        let path = dir.join(LOCK_FILE);
        let file = crate::regular::open(
            &path,
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
        )
        .map_err(|e| match e {
            crate::regular::Irregular::Io { path, source } => IoError::new(path, source),
            other => IoError::new(&path, std::io::Error::other(other.to_string())),
        })?;
        let start = Instant::now();
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(DirLock { _file: file, path }),
                Err(TryLockError::WouldBlock) if wait == Wait::Yes => {
                    if !told && start.elapsed() >= PATIENCE {
                        waiting();
                        told = true;
                    }
                    std::thread::sleep(Duration::from_millis(25));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(LockError::Locked {
                        dir: dir.to_path_buf(),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(IoError::new(&path, e).into()),
            }
        }
    }

    /// Locks `dir` for a run that changes it (as [`DirLock::acquire`] does), then removes what
    /// interrupted runs left there (as [`DirLock::remove_leftovers`] does), telling `notice`
    /// when it starts waiting and of each file removed.
    pub fn for_change(
        dir: &Path,
        wait: Wait,
        notice: &mut dyn FnMut(Notice<'_>),
    ) -> Result<DirLock> {
        let lock_file = dir.join(LOCK_FILE);
        let lock = DirLock::acquire(dir, wait, &mut || {
            notice(Notice::Waiting {
                lock_file: &lock_file,
            });
        })?;
        for path in lock.remove_leftovers(dir)? {
            notice(Notice::RemovedLeftover { path: &path });
        }
        Ok(lock)
    }

    /// The same as [`DirLock::for_change`], for a run that writes into `dir`: a missing `dir`
    /// (and the folders above it) is created first, and `notice` told so.
    pub fn for_writing(
        dir: &Path,
        wait: Wait,
        notice: &mut dyn FnMut(Notice<'_>),
    ) -> Result<DirLock> {
        if fs::symlink_metadata(dir).is_err() {
            fs::create_dir_all(dir).at(dir)?;
            notice(Notice::Created { dir });
        }
        DirLock::for_change(dir, wait, notice)
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory locked, as it was named.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// Removes the temporary files that killed runs left in `dir` (and below it), keeping any a
    /// live run still holds. Returns the paths removed.
    pub fn remove_leftovers(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let mut removed = Vec::new();
        let walk = WalkDir::new(dir)
            .follow_links(false)
            .into_iter()
            .filter_entry(|e| {
                // Descend into visible folders only; look at every file.
                e.depth() == 0
                    || !e.file_type().is_dir()
                    || !e.file_name().to_string_lossy().starts_with('.')
            });
        for entry in walk.flatten() {
            let is_temp = entry.file_type().is_file()
                && entry.file_name().to_str().is_some_and(is_own_temp_name);
            if !is_temp {
                continue;
            }
            // A writer holds a lock on its temporary file for as long as it lives.
            let Ok(file) = File::open(entry.path()) else {
                continue;
            };
            if file.try_lock().is_ok() {
                fs::remove_file(entry.path()).at(entry.path())?;
                removed.push(entry.into_path());
            }
        }
        Ok(removed)
    }
}

/// Whether `name` is the name of a temporary file toolbox writes:
/// `.toolbox-tmp.<pid>.<nanoseconds>.<counter>.<final name>`.
fn is_own_temp_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(TEMP_PREFIX) else {
        return false;
    };
    let mut parts = rest.splitn(4, '.');
    let numbers = (0..3).all(|_| {
        parts
            .next()
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    });
    numbers && parts.next().is_some_and(|last| !last.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commit::AtomicFile;
    use std::io::Write;

    #[test]
    fn a_second_lock_fails_without_waiting_and_waits_otherwise() {
        let d = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(d.path(), Wait::No, &mut || {}).unwrap();
        let err = DirLock::acquire(d.path(), Wait::No, &mut || {}).unwrap_err();
        assert!(matches!(err, LockError::Locked { .. }), "{err}");

        let dir = d.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let mut told = 0;
            let lock = DirLock::acquire(&dir, Wait::Yes, &mut || told += 1);
            (lock.is_ok(), told)
        });
        std::thread::sleep(Duration::from_millis(1300));
        drop(first);
        assert_eq!(
            waiter.join().unwrap(),
            (true, 1),
            "it waited, said so once, then got the lock"
        );
    }

    #[test]
    fn leftovers_are_removed_unless_held() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("sub")).unwrap();
        let dead = d
            .path()
            .join(format!("{TEMP_PREFIX}1.2.3.web_1_0123456789ab.zip"));
        let dead_below = d
            .path()
            .join("sub")
            .join(format!("{TEMP_PREFIX}9.8.7.web_1_0123456789ab.zip"));
        fs::write(&dead, b"partial").unwrap();
        fs::write(&dead_below, b"partial").unwrap();
        let mut live = AtomicFile::create(&d.path().join("web_2_0123456789ab.zip")).unwrap();
        live.write_all(b"in progress").unwrap();

        let lock = DirLock::acquire(d.path(), Wait::No, &mut || {}).unwrap();
        let mut removed = lock.remove_leftovers(d.path()).unwrap();
        removed.sort();
        assert_eq!(removed, vec![dead, dead_below]);
        live.commit().unwrap();
        assert!(d.path().join("web_2_0123456789ab.zip").exists());
    }

    #[test]
    fn locking_for_a_change_sweeps_and_says_what_it_removed() {
        let d = tempfile::tempdir().unwrap();
        let dead = d
            .path()
            .join(format!("{TEMP_PREFIX}1.2.3.web_1_0123456789ab.zip"));
        fs::write(&dead, b"partial").unwrap();
        let mut told = Vec::new();
        let lock = DirLock::for_change(d.path(), Wait::No, &mut |n| match n {
            Notice::RemovedLeftover { path } => told.push(path.to_path_buf()),
            Notice::Waiting { .. } => panic!("nothing holds the lock"),
            Notice::Created { .. } => panic!("the directory exists"),
        })
        .unwrap();
        assert_eq!(told, vec![dead.clone()]);
        assert!(!dead.exists());
        let err = DirLock::for_change(d.path(), Wait::No, &mut |_| {}).unwrap_err();
        assert!(matches!(err, LockError::Locked { .. }), "{err}");
        drop(lock);
        let missing = d.path().join("missing");
        let err = DirLock::for_change(&missing, Wait::No, &mut |_| {}).unwrap_err();
        assert!(matches!(err, LockError::MissingDir(_)), "{err}");
    }

    #[test]
    fn only_toolbox_own_temporary_names_are_swept() {
        assert!(is_own_temp_name(
            ".toolbox-tmp.12.345.0.web_1_0123456789ab.zip"
        ));
        assert!(!is_own_temp_name(".toolbox-tmp.precious"));
        assert!(!is_own_temp_name(".toolbox-tmp.1.2.x.web.zip"));
        assert!(!is_own_temp_name(".toolbox-tmp.1.2.3."));
        let d = tempfile::tempdir().unwrap();
        let precious = d.path().join(".toolbox-tmp.notes");
        fs::write(&precious, b"mine").unwrap();
        let lock = DirLock::acquire(d.path(), Wait::No, &mut || {}).unwrap();
        assert!(lock.remove_leftovers(d.path()).unwrap().is_empty());
        assert!(precious.exists());
    }

    #[test]
    fn a_file_outside_the_artifacts_directory_is_outside() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("artifacts");
        let other = d.path().join("elsewhere");
        fs::create_dir_all(&base).unwrap();
        fs::create_dir_all(&other).unwrap();
        let inside = base.join("web_1_0123456789ab.docker");
        let outside = other.join("web_1_0123456789ab.docker");
        fs::write(&inside, b"").unwrap();
        fs::write(&outside, b"").unwrap();
        assert!(!is_outside(&inside, &base));
        assert!(is_outside(&outside, &base));
        assert!(!is_outside(&base.join("gone.docker"), &base));
        // A link in the artifacts directory to a file elsewhere is inside: the link is what
        // would be changed (and is refused as no archive).
        let link = base.join("web_2_0123456789ab.docker");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        assert!(!is_outside(&link, &base));
    }

    #[test]
    fn a_writing_run_creates_the_directory_and_says_so() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("new/artifacts");
        let mut created = Vec::new();
        let lock = DirLock::for_writing(&dir, Wait::No, &mut |n| {
            if let Notice::Created { dir } = n {
                created.push(dir.to_path_buf());
            }
        })
        .unwrap();
        assert_eq!(created, vec![dir.clone()]);
        assert_eq!(lock.dir(), dir.as_path());
        drop(lock);
        created.clear();
        DirLock::for_writing(&dir, Wait::No, &mut |_| created.push(PathBuf::new())).unwrap();
        assert!(created.is_empty(), "an existing directory is not announced");
    }
}
