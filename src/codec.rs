//! Archive bodies: the `docker save` tar as it is (`.docker`), or inside a ZIP whose single entry
//! is that tar (`.zip`). Everything streams: memory stays constant whatever the image size.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use crate::commit::{self, AtomicFile};
use crate::error::{Error, IoContext, Result};
use crate::name::Format;
use crate::progress::{ProgressReader, Reporter};
use crate::store::Archive;

/// The deflate level of ZIP archives.
pub const DEFAULT_LEVEL: i64 = 6;

const BUFFER: usize = 1 << 20;

/// Turns a `.docker` archive into the `.zip` beside it, and removes the `.docker` once the ZIP
/// is complete. Returns the path of the ZIP.
pub fn compress(src: &Archive, reporter: &dyn Reporter) -> Result<PathBuf> {
    let dest = src
        .path
        .with_file_name(src.name.with_format(Format::Zip).file_name());
    let input = File::open(&src.path).at(&src.path)?;
    let size = input.metadata().at(&src.path)?.len();
    reporter.start(Some(size));
    let mut reader = ProgressReader::new(input, reporter);
    let body = Body {
        source: &src.path,
        size: Some(size),
        modified: src.modified,
    };
    let dest = write_archive(&mut reader, body, &dest)?;
    reporter.finish();
    remove_original(&src.path)?;
    Ok(dest)
}

/// What is known of a `docker save` tar about to be written into an archive.
#[derive(Debug, Clone, Copy)]
pub struct Body<'a> {
    /// Where the bytes come from, named in read errors.
    pub source: &'a Path,
    /// The tar's size, when known (a ZIP then uses ZIP64 fields only when needed).
    pub size: Option<u64>,
    /// The modification time recorded in a ZIP entry.
    pub modified: SystemTime,
}

/// Writes the `docker save` tar read from `reader` into the archive `dest`, in the format its
/// name gives (`.docker`: as it is; `.zip`: deflated in a single entry named after the
/// archive with the `.docker` extension), atomically. Returns `dest`.
pub fn write_archive(reader: &mut dyn Read, body: Body<'_>, dest: &Path) -> Result<PathBuf> {
    let file_name = dest
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let name = crate::ArchiveName::parse_strict(file_name)?;
    let mut out = AtomicFile::create(dest)?;
    match name.format {
        Format::Docker => {
            let mut writer = BufWriter::with_capacity(BUFFER, &mut out);
            copy(reader, body.source, &mut writer, dest)?;
            writer.flush().at(dest)?;
        }
        Format::Zip => {
            let zip_error = |e| zip_error(dest, e);
            let mut zip = ZipWriter::new(BufWriter::with_capacity(BUFFER, out.file_mut()));
            let options = SimpleFileOptions::default()
                .compression_method(CompressionMethod::Deflated)
                .compression_level(Some(DEFAULT_LEVEL))
                .large_file(body.size.is_none_or(|n| n >= u64::from(u32::MAX)))
                .unix_permissions(0o644)
                .last_modified_time(dos_time(body.modified));
            zip.start_file(name.with_format(Format::Docker).file_name(), options)
                .map_err(zip_error)?;
            copy(reader, body.source, &mut zip, dest)?;
            let buffered = zip.finish().map_err(zip_error)?;
            buffered
                .into_inner()
                .map_err(|e| Error::io(dest, e.into_error()))?;
        }
        Format::Foreign(ref ext) => {
            return Err(Error::WrongFormat {
                path: dest.to_path_buf(),
                found: ext.clone(),
                expected: ".docker or .zip",
                command: "writing",
            });
        }
    }
    out.commit()
}

/// Turns a `.zip` archive back into the `.docker` tar beside it, and removes the `.zip` once
/// the tar is complete. Returns the path of the tar.
pub fn decompress(src: &Archive, reporter: &dyn Reporter) -> Result<PathBuf> {
    let dest = src
        .path
        .with_file_name(src.name.with_format(Format::Docker).file_name());
    let body = Body {
        source: &src.path,
        size: None,
        modified: src.modified,
    };
    with_tar_reader(src, reporter, |tar| write_archive(tar, body, &dest))?;
    reporter.finish();
    remove_original(&src.path)?;
    Ok(dest)
}

/// Calls `f` with a stream of the `docker save` tar inside an archive of either format. A ZIP
/// must hold exactly one entry, named after the archive with the `.docker` extension; its CRC
/// is checked as the stream ends.
pub fn with_tar_reader<T>(
    archive: &Archive,
    reporter: &dyn Reporter,
    f: impl FnOnce(&mut dyn Read) -> Result<T>,
) -> Result<T> {
    let path = &archive.path;
    let file = File::open(path).at(path)?;
    match archive.name.format {
        Format::Docker => {
            let size = file.metadata().at(path)?.len();
            reporter.start(Some(size));
            f(&mut ProgressReader::new(
                BufReader::with_capacity(BUFFER, file),
                reporter,
            ))
        }
        Format::Zip => {
            let mut zip = ZipArchive::new(BufReader::with_capacity(BUFFER, file))
                .map_err(|e| zip_error(path, e))?;
            if zip.len() != 1 {
                return Err(bad_zip(
                    path,
                    format!(
                        "it holds {} entries; an archive holds exactly one",
                        zip.len()
                    ),
                ));
            }
            let entry = zip.by_index(0).map_err(|e| zip_error(path, e))?;
            let expected = archive.name.with_format(Format::Docker).file_name();
            let found = entry.name().map_err(|e| zip_error(path, e))?.into_owned();
            if found != expected {
                return Err(bad_zip(
                    path,
                    format!("its entry is named `{found}`, expected `{expected}`"),
                ));
            }
            reporter.start(Some(entry.size()));
            f(&mut ProgressReader::new(entry, reporter))
        }
        Format::Foreign(ref ext) => Err(Error::WrongFormat {
            path: path.clone(),
            found: ext.clone(),
            expected: ".docker or .zip",
            command: "reading",
        }),
    }
}

/// Copies a stream, naming the source or the destination in the error of whichever failed.
fn copy(reader: &mut dyn Read, from: &Path, writer: &mut dyn Write, to: &Path) -> Result<u64> {
    let mut buf = vec![0u8; BUFFER];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(from, e)),
        };
        writer.write_all(&buf[..n]).at(to)?;
        total += n as u64;
    }
}

fn remove_original(path: &Path) -> Result<()> {
    fs::remove_file(path).at(path)?;
    commit::sync_dir(
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    )
}

fn bad_zip(path: &Path, reason: String) -> Error {
    Error::BadZip {
        path: path.to_path_buf(),
        reason,
    }
}

fn zip_error(path: &Path, e: zip::result::ZipError) -> Error {
    match e {
        zip::result::ZipError::Io(e) => Error::io(path, e),
        other => bad_zip(path, other.to_string()),
    }
}

/// The ZIP (MS-DOS) time of a file's modification time, in UTC.
fn dos_time(t: SystemTime) -> DateTime {
    let t = time::OffsetDateTime::from(t);
    DateTime::from_date_and_time(
        u16::try_from(t.year()).unwrap_or(1980),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    )
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Silent;

    const ID: &str = "0123456789ab";

    fn sample(dir: &Path, len: usize) -> (PathBuf, Vec<u8>) {
        // Compressible, but not trivially: a repeating pattern with a counter.
        let data: Vec<u8> = (0..len).map(|i| ((i / 7) ^ (i % 251)) as u8).collect();
        let path = dir.join(format!("web_1.0_{ID}.docker"));
        fs::write(&path, &data).unwrap();
        (path, data)
    }

    #[test]
    fn compress_then_decompress_round_trips() {
        let d = tempfile::tempdir().unwrap();
        let (path, data) = sample(d.path(), 3 * BUFFER + 123);
        let zip_path = compress(&Archive::from_path(&path).unwrap(), &Silent).unwrap();
        assert_eq!(zip_path, d.path().join(format!("web_1.0_{ID}.zip")));
        assert!(!path.exists(), "the .docker is removed after compressing");
        assert!(fs::metadata(&zip_path).unwrap().len() < data.len() as u64);

        let tar = decompress(&Archive::from_path(&zip_path).unwrap(), &Silent).unwrap();
        assert_eq!(tar, path);
        assert_eq!(fs::read(&tar).unwrap(), data);
        assert!(!zip_path.exists());
    }

    #[test]
    fn zip_with_wrong_entry_is_refused_and_kept() {
        let d = tempfile::tempdir().unwrap();
        let zip_path = d.path().join(format!("web_1.0_{ID}.zip"));
        {
            let mut zip = ZipWriter::new(File::create(&zip_path).unwrap());
            zip.start_file("other.tar", SimpleFileOptions::default())
                .unwrap();
            zip.write_all(b"data").unwrap();
            zip.finish().unwrap();
        }
        let err = decompress(&Archive::from_path(&zip_path).unwrap(), &Silent).unwrap_err();
        assert!(err.to_string().contains("other.tar"), "{err}");
        assert!(zip_path.exists());
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1, "no leftover");
    }

    #[test]
    fn corrupt_zip_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let zip_path = d.path().join(format!("web_1.0_{ID}.zip"));
        fs::write(&zip_path, b"not a zip at all").unwrap();
        let err = decompress(&Archive::from_path(&zip_path).unwrap(), &Silent).unwrap_err();
        assert!(matches!(err, Error::BadZip { .. }), "{err}");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
