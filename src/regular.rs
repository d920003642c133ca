//! The files toolbox reads and writes by a fixed name inside folders it did not make (the cache
//! `.toolbox-cache.json`, the lock `.toolbox.lock`): only regular files, opened without
//! following a link and without blocking (a FIFO of that name never stalls a run), and read with
//! a size cap (a link to `/dev/zero` never fills the memory).

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Why a file of a fixed name was not read.
#[derive(Debug, thiserror::Error)]
pub enum Irregular {
    #[error("`{}` is not a regular file (a link, a FIFO, a device): ignored", path.display())]
    NotRegular { path: std::path::PathBuf },
    #[error("`{}` is larger than {cap} bytes: ignored", path.display())]
    TooLarge { path: std::path::PathBuf, cap: u64 },
    #[error("`{}` cannot be read: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: io::Error,
    },
}

/// Opens the regular file at `path` with `options`, never following a link there and never
/// blocking on a FIFO; anything but a regular file is [`Irregular::NotRegular`].
pub fn open(path: &Path, options: &mut OpenOptions) -> Result<File, Irregular> {
    let file = options
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| match source.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::ENXIO) => Irregular::NotRegular {
                path: path.to_path_buf(),
            },
            _ => Irregular::Io {
                path: path.to_path_buf(),
                source,
            },
        })?;
    let meta = file.metadata().map_err(|source| Irregular::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(Irregular::NotRegular {
            path: path.to_path_buf(),
        });
    }
    Ok(file)
}

/// The bytes of the regular file at `path`, at most `cap` of them; `Ok(None)` when there is no
/// file.
pub fn read(path: &Path, cap: u64) -> Result<Option<Vec<u8>>, Irregular> {
    let mut file = match open(path, OpenOptions::new().read(true)) {
        Ok(file) => file,
        Err(Irregular::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    (&mut file)
        .take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| Irregular::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > cap {
        return Err(Irregular::TooLarge {
            path: path.to_path_buf(),
            cap,
        });
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_are_read_and_only_so_much() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("f");
        std::fs::write(&file, b"12345").unwrap();
        assert_eq!(read(&file, 5).unwrap().unwrap(), b"12345");
        assert!(matches!(read(&file, 4), Err(Irregular::TooLarge { .. })));
        assert!(read(&d.path().join("none"), 5).unwrap().is_none());
        let link = d.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(matches!(read(&link, 5), Err(Irregular::NotRegular { .. })));
        let fifo = d.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: c is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(read(&fifo, 5), Err(Irregular::NotRegular { .. })));
        assert!(matches!(
            read(d.path(), 5),
            Err(Irregular::NotRegular { .. } | Irregular::Io { .. })
        ));
    }
}
