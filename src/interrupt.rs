//! What an interrupted run (SIGINT or SIGTERM) leaves behind: nothing of its own. Whatever a run
//! writes that is not yet committed — a temporary file beside its target, a spool, the entries
//! `extract` made in a directory — is registered here while it lives, and [`stop`] (called by
//! the command line's signal handler) removes it before the process exits.
//!
//! Work that must not overlap that removal (making one entry of an extracted layer) runs inside
//! [`section`]: `stop` waits for the section in progress to end, and a section asked for after
//! `stop` began never starts (its thread waits for the exit). Long reads inside a section see
//! the interruption through [`Interruptible`] and end early.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Held by a section of work, and by [`stop`] from the moment it starts (to the exit).
static SECTION: Mutex<()> = Mutex::new(());
static NEXT: AtomicU64 = AtomicU64::new(0);
static LEFTOVERS: Mutex<Option<HashMap<u64, Leftover>>> = Mutex::new(None);

/// What an interrupted run removes.
#[derive(Debug, Clone)]
enum Leftover {
    /// A file.
    File(PathBuf),
    /// What is inside a directory, and the directory too when `remove_dir`.
    Contents { dir: PathBuf, remove_dir: bool },
}

/// A registration: dropped (the work was committed, or undone by its owner), it is forgotten.
#[derive(Debug)]
#[must_use = "the registration ends when this is dropped"]
pub struct Registered(u64);

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut all) = LEFTOVERS.lock()
            && let Some(all) = all.as_mut()
        {
            all.remove(&self.0);
        }
    }
}

fn register(leftover: Leftover) -> Registered {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut all) = LEFTOVERS.lock() {
        all.get_or_insert_with(HashMap::new).insert(id, leftover);
    }
    Registered(id)
}

/// Removes the file at `path` if the run is interrupted before the registration is dropped.
pub fn remove_file_on_stop(path: &Path) -> Registered {
    register(Leftover::File(path.to_path_buf()))
}

/// Empties `dir` (and removes it when `remove_dir`) if the run is interrupted before the
/// registration is dropped.
pub fn empty_dir_on_stop(dir: &Path, remove_dir: bool) -> Registered {
    register(Leftover::Contents {
        dir: dir.to_path_buf(),
        remove_dir,
    })
}

/// Whether the run was interrupted.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Enters a section of work that [`stop`] must not overlap. Once the run is interrupted no
/// section starts: the calling thread waits for the exit.
pub fn section() -> MutexGuard<'static, ()> {
    let guard = SECTION
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if interrupted() {
        drop(guard);
        park_forever();
    }
    guard
}

/// Waits for the exit an interrupted run is making (called instead of reporting an error that
/// the interruption caused).
pub fn wait_for_exit() -> ! {
    park_forever()
}

fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}

/// Marks the run interrupted, waits for the section of work in progress to end, and removes
/// everything registered. Called once, by the signal handler, which then exits.
pub fn stop() {
    INTERRUPTED.store(true, Ordering::SeqCst);
    // Kept to the exit: no section starts again.
    std::mem::forget(SECTION.lock().unwrap_or_else(|p| p.into_inner()));
    let leftovers: Vec<Leftover> = match LEFTOVERS.lock() {
        Ok(mut all) => all
            .take()
            .map(|m| m.into_values().collect())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    for leftover in leftovers {
        match leftover {
            Leftover::File(path) => {
                let _ = fs::remove_file(path);
            }
            Leftover::Contents { dir, remove_dir } => empty_dir(&dir, remove_dir),
        }
    }
}

/// Removes what is inside `dir` (and `dir` too when `remove_dir`), never following a link;
/// folders are first given their owner's full access, so that what was made read-only (an
/// image's folder of mode 0555) can go for a user who is not root. Failures are passed over:
/// this is clean-up, done as far as it goes.
pub fn empty_dir(dir: &Path, remove_dir: bool) {
    use std::os::unix::fs::PermissionsExt;
    for entry in walkdir::WalkDir::new(dir).follow_links(false).min_depth(1) {
        if let Ok(entry) = entry
            && entry.file_type().is_dir()
        {
            let _ = fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o700));
        }
    }
    if remove_dir {
        let _ = fs::remove_dir_all(dir);
    } else if let Ok(children) = fs::read_dir(dir) {
        for child in children.flatten() {
            let path = child.path();
            let _ = match child.file_type() {
                Ok(t) if t.is_dir() => fs::remove_dir_all(&path),
                _ => fs::remove_file(&path),
            };
        }
    }
}

/// A reader that fails once the run is interrupted, so that a long copy ends early.
pub struct Interruptible<R>(pub R);

impl<R: Read> Read for Interruptible<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if interrupted() {
            return Err(io::Error::other("interrupted"));
        }
        self.0.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_registration_is_forgotten() {
        let d = tempfile::tempdir().unwrap();
        let kept = d.path().join("kept");
        fs::write(&kept, b"k").unwrap();
        let registered = remove_file_on_stop(&kept);
        drop(registered);
        let all = LEFTOVERS.lock().unwrap();
        assert!(all.as_ref().is_none_or(|m| {
            m.values()
                .all(|l| !matches!(l, Leftover::File(p) if *p == kept))
        }));
    }
}
