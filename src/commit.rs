//! Atomic file creation: write under a hidden temporary name in the target's own folder, fsync,
//! rename onto the final name, fsync the folder. Nothing half written ever carries a final name.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::io_error::{IoContext, IoError};

type Result<T> = std::result::Result<T, IoError>;

/// The prefix of every temporary file toolbox writes; hidden, so never listed as an archive.
pub const TEMP_PREFIX: &str = ".toolbox-tmp.";

/// A file being written that appears under its final name only when committed. Dropped
/// without a commit, it removes its temporary file.
#[derive(Debug)]
pub struct AtomicFile {
    file: Option<File>,
    temp: PathBuf,
    dest: PathBuf,
    /// Removes the temporary file if the run is interrupted.
    _registered: crate::interrupt::Registered,
}

impl AtomicFile {
    /// Starts writing the file that will be `dest`.
    pub fn create(dest: &Path) -> Result<AtomicFile> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = parent_dir(dest);
        let file_name = dest
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let unique = format!(
            "{}.{}.{}",
            std::process::id(),
            nanos,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let temp = dir.join(format!("{TEMP_PREFIX}{unique}.{file_name}"));
        // Made and registered in one section of work: an interrupted run removes it, whenever
        // the signal comes.
        let section = crate::interrupt::section();
        let registered = crate::interrupt::remove_file_on_stop(&temp);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .at(&temp)?;
        drop(section);
        // Held while the file lives: the next run removes only temporary files nobody holds.
        file.lock().at(&temp)?;
        Ok(AtomicFile {
            file: Some(file),
            temp,
            dest: dest.to_path_buf(),
            _registered: registered,
        })
    }

    /// The temporary file's path (to check what was written before it is committed).
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// The final path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// The temporary file, for writers that need more than [`Write`] (seeking).
    pub fn file_mut(&mut self) -> &mut File {
        self.file.as_mut().expect("the file is open until commit")
    }

    /// Makes the file durable and gives it its final name.
    pub fn commit(self) -> Result<PathBuf> {
        let dest = self.dest.clone();
        self.commit_as(&dest)
    }

    /// Makes the file durable and gives it the name `dest` in the same folder (a name known
    /// only once the content is: a blob's digest).
    pub fn commit_as(mut self, dest: &Path) -> Result<PathBuf> {
        let file = self.file.take().expect("the file is open until commit");
        file.sync_all().at(&self.temp)?;
        drop(file);
        fs::rename(&self.temp, dest).at(dest)?;
        sync_dir(parent_dir(dest))?;
        Ok(dest.to_path_buf())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file_mut().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file_mut().flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A writer to a file that starts the kernel's writeback every few megabytes, so that the fsync
/// before an atomic rename has little left to do (and a large write does not end with a long
/// stall). The data is still only durable after that fsync.
pub struct Writeback<'f> {
    file: &'f File,
    written: u64,
    started: u64,
}

/// How much is written between two writeback starts.
const WRITEBACK_STEP: u64 = 32 << 20;

impl<'f> Writeback<'f> {
    /// Writes at `file`'s current position, which must be its end.
    pub fn new(file: &'f File) -> Writeback<'f> {
        Writeback {
            file,
            written: 0,
            started: 0,
        }
    }
}

impl Write for Writeback<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = (&*self.file).write(buf)?;
        self.written += n as u64;
        if self.written - self.started >= WRITEBACK_STEP {
            start_writeback(self.file, self.started, self.written - self.started);
            self.started = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self.file).flush()
    }
}

/// Asks the kernel to start writing a range of the file out, without waiting for it.
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: the descriptor is open for as long as `file` is borrowed; sync_file_range only
    // reads its arguments. A failure only loses the early start, never data.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Makes a rename or removal in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn commit_renames_into_place() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("a.zip");
        let mut f = AtomicFile::create(&dest).unwrap();
        f.write_all(b"hello").unwrap();
        assert!(!dest.exists(), "nothing under the final name before commit");
        let hidden = entries(d.path());
        assert_eq!(hidden.len(), 1);
        assert!(hidden[0].starts_with(TEMP_PREFIX));
        f.commit().unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"hello");
        assert_eq!(entries(d.path()), vec!["a.zip"]);
    }

    #[test]
    fn drop_without_commit_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("a.zip");
        fs::write(&dest, b"before").unwrap();
        {
            let mut f = AtomicFile::create(&dest).unwrap();
            f.write_all(b"partial").unwrap();
        }
        assert_eq!(fs::read(&dest).unwrap(), b"before");
        assert_eq!(entries(d.path()), vec!["a.zip"]);
    }
}
