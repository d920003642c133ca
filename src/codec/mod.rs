//! Archive bodies: the `docker save` tar as it is (`.docker`), inside a ZIP whose single entry
//! is that tar (`.zip`, deflated on all cores), or compressed with zstd (`.zst`, multi-threaded).
//! Everything streams: memory stays bounded whatever the image size.

pub mod deflate;
mod ends;
mod zipfile;

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use deflate::{Deflated, PipelineError, default_threads};
pub use ends::{Broken, MAX_WINDOW, ZipEntry, check_ends, zip_structure};
pub use zipfile::{ZipOptions, write_zip};

use crate::archive::{Archive, WrongFormat};
use crate::commit::{self, AtomicFile, Writeback};
use crate::io_error::{IoContext, IoError};
use crate::name::NameError;

/// Why an archive body could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("compression level {level} is not valid for {format}: use {range}")]
    InvalidLevel {
        format: String,
        level: u32,
        range: &'static str,
    },

    #[error("`{format}` is not a compressed format: use zip or zst")]
    NotACompressedFormat { format: String },

    #[error(transparent)]
    WrongFormat(#[from] WrongFormat),

    #[error("`{}` is damaged: {reason}", path.display())]
    NotATar { path: PathBuf, reason: &'static str },

    #[error("`{}` is not a valid ZIP archive: {reason}", path.display())]
    BadZip { path: PathBuf, reason: String },

    #[error("`{}` is broken: {check}", path.display())]
    Broken { path: PathBuf, check: String },

    #[error(
        "`{}` is not sound ({reason}): `{}` was not written, and nothing was removed",
        path.display(),
        dest.display()
    )]
    Unsound {
        path: PathBuf,
        dest: PathBuf,
        reason: String,
    },

    #[error(transparent)]
    Name(#[from] NameError),

    #[error(transparent)]
    Io(#[from] IoError),
}

type Result<T, E = CodecError> = std::result::Result<T, E>;
use crate::name::{ArchiveName, Format};
use crate::progress::{ProgressReader, Reporter};

const BUFFER: usize = 1 << 20;
/// The size of the jobs zstd's worker threads compress.
const ZST_JOB: u32 = 2 << 20;

/// How to compress an archive: its format (`zip` or `zst`) and level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compression {
    pub format: Format,
    pub level: u32,
}

impl Compression {
    /// The deflate level of ZIP archives when none is given.
    pub const DEFAULT_ZIP_LEVEL: u32 = 6;
    /// The zstd level of `.zst` archives when none is given.
    pub const DEFAULT_ZST_LEVEL: u32 = 3;

    /// Checks `level` against `format` (`zip`: 0-9, where 0 stores; `zst`: 1-19); `None` takes
    /// the format's default.
    pub fn new(format: Format, level: Option<u32>) -> Result<Compression> {
        let (default, range, valid): (u32, &'static str, fn(u32) -> bool) = match format {
            Format::Zip => (Self::DEFAULT_ZIP_LEVEL, "0-9 (0 stores)", |l| l <= 9),
            Format::Zst => (Self::DEFAULT_ZST_LEVEL, "1-19", |l| (1..=19).contains(&l)),
            other => {
                return Err(CodecError::NotACompressedFormat {
                    format: other.to_string(),
                });
            }
        };
        let level = level.unwrap_or(default);
        if !valid(level) {
            return Err(CodecError::InvalidLevel {
                format: format.to_string(),
                level,
                range,
            });
        }
        Ok(Compression { format, level })
    }
}

impl Default for Compression {
    fn default() -> Self {
        Compression {
            format: Format::Zip,
            level: Self::DEFAULT_ZIP_LEVEL,
        }
    }
}

/// What checks the `docker save` tar as it streams into an archive: it sees every piece, and
/// says at the end whether the tar is sound. Nothing is committed (and no source removed) that
/// it does not pass.
pub trait TarCheck {
    /// Sees the next piece of the tar.
    fn update(&mut self, piece: &[u8]);
    /// The tar has ended: `Err` says, in words, why it is not sound.
    fn finish(&mut self) -> std::result::Result<(), String>;
}

/// A reader that shows every piece it reads to a [`TarCheck`].
struct Teed<'r, 'c> {
    inner: &'r mut dyn Read,
    check: &'c mut dyn TarCheck,
}

impl Read for Teed<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.check.update(&buf[..n]);
        Ok(n)
    }
}

/// Turns a `.docker` archive into the compressed archive beside it, with `comment` as a ZIP's
/// archive comment, and removes the `.docker` once that is complete. Returns the path written.
pub fn compress(
    src: &Archive,
    compression: &Compression,
    comment: Option<&str>,
    reporter: &dyn Reporter,
) -> Result<PathBuf> {
    compress_checked(src, compression, comment, reporter, None)
}

/// [`compress`], committing the archive and removing the `.docker` only when `check`, when
/// given, found the tar sound.
pub fn compress_checked(
    src: &Archive,
    compression: &Compression,
    comment: Option<&str>,
    reporter: &dyn Reporter,
    check: Option<&mut dyn TarCheck>,
) -> Result<PathBuf> {
    let dest = src
        .path
        .with_file_name(src.name.with_format(compression.format.clone()).file_name());
    let input = File::open(&src.path).at(&src.path)?;
    check_tar_start(&input, &src.path)?;
    let size = input.metadata().at(&src.path)?.len();
    reporter.start(Some(size));
    let mut reader = ProgressReader::new(input, reporter);
    let body = Body {
        source: &src.path,
        modified: src.modified,
        comment,
    };
    let dest = write_checked_archive(&mut reader, body, &dest, compression.level, check)?;
    reporter.finish();
    remove_original(&src.path)?;
    Ok(dest)
}

/// Where the tar about to be written into an archive comes from.
#[derive(Debug, Clone, Copy)]
pub struct Body<'a> {
    /// Where the bytes come from, named in read errors.
    pub source: &'a Path,
    /// The modification time recorded in a ZIP entry.
    pub modified: SystemTime,
    /// The ZIP archive comment.
    pub comment: Option<&'a str>,
}

/// Writes the `docker save` tar read from `reader` into the archive `dest`, in the format its
/// name gives (`.docker`: as it is; `.zip`: deflated at `level` on all cores in a single entry
/// named after the archive with the `.docker` extension; `.zst`: zstd at `level` on all cores),
/// atomically: committed only when what was written passes the quick check of its format (an
/// existing archive at `dest` is otherwise left as it is). Returns `dest`.
pub fn write_archive(
    reader: &mut dyn Read,
    body: Body<'_>,
    dest: &Path,
    level: u32,
) -> Result<PathBuf> {
    write_checked_archive(reader, body, dest, level, None)
}

/// [`write_archive`], committed only when `check`, when given, also found the tar sound.
pub fn write_checked_archive(
    reader: &mut dyn Read,
    body: Body<'_>,
    dest: &Path,
    level: u32,
    mut check: Option<&mut dyn TarCheck>,
) -> Result<PathBuf> {
    let mut teed;
    let reader: &mut dyn Read = match check.as_deref_mut() {
        Some(check) => {
            teed = Teed {
                inner: reader,
                check,
            };
            &mut teed
        }
        None => reader,
    };
    let file_name = dest
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let name = ArchiveName::parse_strict(file_name)?;
    let mut out = AtomicFile::create(dest)?;
    let pipeline_error = |e| match e {
        PipelineError::Read(e) => IoError::new(body.source, e),
        PipelineError::Write(e) => IoError::new(dest, e),
    };
    match name.format {
        Format::Docker => {
            let mut writer = BufWriter::with_capacity(BUFFER, Writeback::new(out.file_mut()));
            copy(reader, body.source, &mut writer, dest)?;
            writer.flush().at(dest)?;
        }
        Format::Zip => {
            let options = ZipOptions {
                level,
                threads: default_threads(),
                force_zip64: false,
            };
            let entry = name.with_format(Format::Docker).file_name();
            let comment = body.comment.unwrap_or_default().as_bytes();
            write_zip(
                reader,
                out.file_mut(),
                &entry,
                body.modified,
                options,
                comment,
            )
            .map_err(pipeline_error)?;
        }
        Format::Zst => {
            let writer = BufWriter::with_capacity(BUFFER, Writeback::new(out.file_mut()));
            let mut encoder = zstd::stream::write::Encoder::new(writer, level as i32).at(dest)?;
            encoder.include_checksum(true).at(dest)?;
            encoder.multithread(default_threads() as u32).at(dest)?;
            // Bounded jobs keep memory bounded (zstd's default grows with the level's window).
            encoder
                .set_parameter(zstd::stream::raw::CParameter::JobSize(ZST_JOB))
                .at(dest)?;
            copy(reader, body.source, &mut encoder, dest)?;
            let writer = encoder.finish().at(dest)?;
            writer
                .into_inner()
                .map_err(|e| IoError::new(dest, e.into_error()))?;
        }
        Format::Foreign(_) | Format::Ref => {
            return Err(WrongFormat {
                path: dest.to_path_buf(),
                found: name.format.to_string(),
                expected: ".docker, .zip or .zst".into(),
                command: "writing",
            }
            .into());
        }
    }
    let unsound = |reason: String| CodecError::Unsound {
        path: body.source.to_path_buf(),
        dest: dest.to_path_buf(),
        reason,
    };
    if let Some(check) = check {
        check.finish().map_err(unsound)?;
    }
    ends::check_ends(out.temp_path(), &name.format).map_err(|b| unsound(b.check))?;
    Ok(out.commit()?)
}

/// Turns a compressed archive (`.zip` or `.zst`) back into the `.docker` tar beside it, and
/// removes the compressed one once the tar is complete and `check` found it sound. Returns the
/// path of the tar.
pub fn decompress(src: &Archive, reporter: &dyn Reporter) -> Result<PathBuf> {
    decompress_checked(src, reporter, None)
}

/// [`decompress`], committing the tar and removing the compressed archive only when `check`,
/// when given, found the tar sound.
pub fn decompress_checked(
    src: &Archive,
    reporter: &dyn Reporter,
    check: Option<&mut dyn TarCheck>,
) -> Result<PathBuf> {
    let dest = src
        .path
        .with_file_name(src.name.with_format(Format::Docker).file_name());
    let body = Body {
        source: &src.path,
        modified: src.modified,
        comment: None,
    };
    with_tar_reader(src, reporter, |tar| {
        write_checked_archive(tar, body, &dest, 0, check)
    })?;
    reporter.finish();
    remove_original(&src.path)?;
    Ok(dest)
}

/// Calls `f` with a stream of the `docker save` tar inside an archive of any known format. A
/// ZIP must hold exactly one entry, named after the archive with the `.docker` extension; its
/// CRC (or the zstd checksum) is checked as the stream ends.
pub fn with_tar_reader<T, E: From<CodecError> + From<IoError>>(
    archive: &Archive,
    reporter: &dyn Reporter,
    f: impl FnOnce(&mut dyn Read) -> Result<T, E>,
) -> Result<T, E> {
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
            let len = file.metadata().at(path)?.len();
            let entry = ends::zip_structure(&file, len).map_err(|b| {
                E::from(bad_zip(
                    path,
                    b.check
                        .strip_prefix("zip: ")
                        .unwrap_or(&b.check)
                        .to_string(),
                ))
            })?;
            let expected = archive.name.with_format(Format::Docker).file_name();
            if entry.name != expected.as_bytes() {
                return Err(E::from(bad_zip(
                    path,
                    format!(
                        "its entry is named `{}`, expected `{expected}`",
                        String::from_utf8_lossy(&entry.name)
                    ),
                )));
            }
            reporter.start(Some(entry.uncompressed));
            let mut data = BufReader::with_capacity(BUFFER, file);
            data.seek(io::SeekFrom::Start(entry.data_start)).at(path)?;
            f(&mut ProgressReader::new(
                ZipData::new(data.take(entry.compressed), entry),
                reporter,
            ))
        }
        Format::Zst => {
            let size = file.metadata().at(path)?.len();
            // A frame the decoder would refuse (a window past its limit) is said as the quick
            // check says it, before anything is read.
            if let Err(b) = ends::check_ends(path, &Format::Zst) {
                return Err(E::from(CodecError::Broken {
                    path: path.clone(),
                    check: b.check,
                }));
            }
            reporter.start(Some(size));
            let counted = ProgressReader::new(file, reporter);
            let decoder = zstd::stream::read::Decoder::new(counted).at(path)?;
            f(&mut ZstdData(decoder))
        }
        Format::Foreign(_) | Format::Ref => Err(E::from(CodecError::from(WrongFormat {
            path: path.clone(),
            found: archive.name.format.to_string(),
            expected: ".docker, .zip or .zst".into(),
            command: "reading",
        }))),
    }
}

/// The data of a ZIP's one entry, inflated (or stored), held to what the central directory says:
/// its size and CRC are checked as it ends, and every compressed byte must be used.
struct ZipData<R: io::BufRead> {
    data: ZipBody<R>,
    entry: ends::ZipEntry,
    crc: crc32fast::Hasher,
    read: u64,
}

enum ZipBody<R: io::BufRead> {
    Stored(R),
    Deflated(flate2::bufread::DeflateDecoder<R>),
}

impl<R: io::BufRead> ZipData<R> {
    fn new(raw: R, entry: ends::ZipEntry) -> ZipData<R> {
        let data = if entry.method == zipfile::METHOD_STORED {
            ZipBody::Stored(raw)
        } else {
            ZipBody::Deflated(flate2::bufread::DeflateDecoder::new(raw))
        };
        ZipData {
            data,
            entry,
            crc: crc32fast::Hasher::new(),
            read: 0,
        }
    }
}

fn damaged_entry(what: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the ZIP entry is damaged: {what}"),
    )
}

impl<R: io::BufRead> Read for ZipData<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match &mut self.data {
            ZipBody::Stored(r) => r.read(buf)?,
            ZipBody::Deflated(d) => d.read(buf).map_err(|e| match e.kind() {
                io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
                    damaged_entry(format!("its deflate data does not decode ({e})"))
                }
                _ => e,
            })?,
        };
        self.read += n as u64;
        if self.read > self.entry.uncompressed {
            return Err(damaged_entry(format!(
                "it holds more than the {} bytes the central directory says",
                self.entry.uncompressed
            )));
        }
        self.crc.update(&buf[..n]);
        if n == 0 && !buf.is_empty() {
            if self.read != self.entry.uncompressed {
                return Err(damaged_entry(format!(
                    "it holds {} bytes, the central directory says {} (truncated?)",
                    self.read, self.entry.uncompressed
                )));
            }
            let crc = self.crc.clone().finalize();
            if crc != self.entry.crc {
                return Err(damaged_entry(format!(
                    "its CRC is {crc:08x}, the central directory says {:08x}",
                    self.entry.crc
                )));
            }
            if let ZipBody::Deflated(d) = &mut self.data
                && !d.get_mut().fill_buf()?.is_empty()
            {
                return Err(damaged_entry(
                    "compressed bytes follow the end of its deflate data".into(),
                ));
            }
        }
        Ok(n)
    }
}

/// A zstd stream whose decoding errors say what they mean: the data is damaged or cut short
/// (zstd's own words, such as `Unknown frame descriptor`, follow in parentheses).
struct ZstdData<R>(R);

impl<R: Read> Read for ZstdData<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| match e.kind() {
            io::ErrorKind::Other | io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("the zstd data is damaged or truncated ({e})"),
                )
            }
            _ => e,
        })
    }
}

/// Refuses a `.docker` file that does not start with a tar header (empty, or not a tar at all),
/// before anything is written. The full check is `verify`'s.
fn check_tar_start(file: &File, path: &Path) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let mut block = [0u8; 512];
    let mut got = 0;
    while got < block.len() {
        match file.read_at(&mut block[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(IoError::new(path, e).into()),
        }
    }
    let corrupt = |reason: &'static str| CodecError::NotATar {
        path: path.to_path_buf(),
        reason,
    };
    if got < block.len() {
        return Err(corrupt("it is too short to be a `docker save` tar"));
    }
    if !ends::header_checksum_ok(&block) {
        return Err(corrupt(
            "it does not start with a tar header: not a `docker save` tar",
        ));
    }
    Ok(())
}

/// Copies a stream, naming the source or the destination in the error of whichever failed.
pub fn copy(reader: &mut dyn Read, from: &Path, writer: &mut dyn Write, to: &Path) -> Result<u64> {
    pump(reader, writer, |_| {}).map_err(|e| match e {
        PipelineError::Read(e) => IoError::new(from, e).into(),
        PipelineError::Write(e) => IoError::new(to, e).into(),
    })
}

/// The one copy loop of the codecs: moves every byte of `input` to `out` in large pieces,
/// showing each piece to `each` on the way (a CRC, say); says which side failed.
fn pump<R: Read + ?Sized, W: Write + ?Sized>(
    input: &mut R,
    out: &mut W,
    mut each: impl FnMut(&[u8]),
) -> std::result::Result<u64, PipelineError> {
    let mut buf = vec![0u8; BUFFER];
    let mut total = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(PipelineError::Read(e)),
        };
        each(&buf[..n]);
        out.write_all(&buf[..n]).map_err(PipelineError::Write)?;
        total += n as u64;
    }
}

fn remove_original(path: &Path) -> Result<()> {
    fs::remove_file(path).at(path)?;
    Ok(commit::sync_dir(
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    )?)
}

fn bad_zip(path: &Path, reason: String) -> CodecError {
    CodecError::BadZip {
        path: path.to_path_buf(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Silent;

    const ID: &str = "0123456789ab";

    fn sample(dir: &Path, len: usize) -> (PathBuf, Vec<u8>) {
        // Compressible, but not trivially: a repeating pattern with a counter.
        let body: Vec<u8> = (0..len).map(|i| ((i / 7) ^ (i % 251)) as u8).collect();
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_path("blob").unwrap();
        header.set_size(body.len() as u64);
        header.set_cksum();
        builder.append(&header, body.as_slice()).unwrap();
        let data = builder.into_inner().unwrap();
        let path = dir.join(format!("web_1.0_{ID}.docker"));
        fs::write(&path, &data).unwrap();
        (path, data)
    }

    #[test]
    fn compress_then_decompress_round_trips() {
        let d = tempfile::tempdir().unwrap();
        let (path, data) = sample(d.path(), 3 * BUFFER + 123);
        let zip_path = compress(
            &Archive::from_path(&path).unwrap(),
            &Compression::default(),
            None,
            &Silent,
        )
        .unwrap();
        assert_eq!(zip_path, d.path().join(format!("web_1.0_{ID}.zip")));
        assert!(!path.exists(), "the .docker is removed after compressing");
        assert!(fs::metadata(&zip_path).unwrap().len() < data.len() as u64);

        let tar = decompress(&Archive::from_path(&zip_path).unwrap(), &Silent).unwrap();
        assert_eq!(tar, path);
        assert_eq!(fs::read(&tar).unwrap(), data);
        assert!(!zip_path.exists());
    }

    #[test]
    fn zst_round_trips_and_levels_are_checked() {
        let d = tempfile::tempdir().unwrap();
        let (path, data) = sample(d.path(), 2 * BUFFER + 7);
        let zst = Compression::new(Format::Zst, Some(5)).unwrap();
        let zst_path = compress(&Archive::from_path(&path).unwrap(), &zst, None, &Silent).unwrap();
        assert_eq!(zst_path, d.path().join(format!("web_1.0_{ID}.zst")));
        let tar = decompress(&Archive::from_path(&zst_path).unwrap(), &Silent).unwrap();
        assert_eq!(fs::read(&tar).unwrap(), data);

        assert!(Compression::new(Format::Zip, Some(10)).is_err());
        assert!(Compression::new(Format::Zst, Some(0)).is_err());
        assert!(Compression::new(Format::Docker, None).is_err());
        assert_eq!(Compression::new(Format::Zip, Some(0)).unwrap().level, 0);
        assert_eq!(Compression::new(Format::Zst, None).unwrap().level, 3);
    }

    #[test]
    fn truncated_zst_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let (path, _) = sample(d.path(), 3 * BUFFER);
        let zst = Compression::new(Format::Zst, None).unwrap();
        let zst_path = compress(&Archive::from_path(&path).unwrap(), &zst, None, &Silent).unwrap();
        let bytes = fs::read(&zst_path).unwrap();
        fs::write(&zst_path, &bytes[..bytes.len() / 2]).unwrap();
        let err = decompress(&Archive::from_path(&zst_path).unwrap(), &Silent).unwrap_err();
        assert!(err.to_string().contains(".zst"), "{err}");
        assert!(zst_path.exists());
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1, "no leftover");
    }

    #[test]
    fn zip_with_wrong_entry_is_refused_and_kept() {
        let d = tempfile::tempdir().unwrap();
        let zip_path = d.path().join(format!("web_1.0_{ID}.zip"));
        {
            let file = File::create(&zip_path).unwrap();
            let options = ZipOptions {
                level: 6,
                threads: 1,
                force_zip64: false,
            };
            write_zip(
                &mut &b"data"[..],
                &file,
                "other.tar",
                SystemTime::now(),
                options,
                b"",
            )
            .unwrap();
        }
        let err = decompress(&Archive::from_path(&zip_path).unwrap(), &Silent).unwrap_err();
        assert!(err.to_string().contains("other.tar"), "{err}");
        assert!(zip_path.exists());
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1, "no leftover");
    }

    #[test]
    fn zips_with_several_entries_or_escaping_names_are_refused() {
        use zip::write::SimpleFileOptions;
        let d = tempfile::tempdir().unwrap();
        let zip_path = d.path().join(format!("web_1.0_{ID}.zip"));
        let expected = format!("web_1.0_{ID}.docker");
        let cases: [(&[String], &str); 2] = [
            (&[expected.clone(), "extra.txt".to_string()], "2 entries"),
            (&[format!("../{expected}")], "../"),
        ];
        for (names, said) in cases {
            let mut zip = zip::ZipWriter::new(File::create(&zip_path).unwrap());
            for name in names {
                zip.start_file(name.as_str(), SimpleFileOptions::default())
                    .unwrap();
                zip.write_all(b"data").unwrap();
            }
            zip.finish().unwrap();
            let err = decompress(&Archive::from_path(&zip_path).unwrap(), &Silent).unwrap_err();
            assert!(err.to_string().contains(said), "{err}");
            assert_eq!(
                fs::read_dir(d.path()).unwrap().count(),
                1,
                "nothing written beside it"
            );
        }
    }

    #[test]
    fn a_docker_file_that_is_not_a_tar_is_not_compressed() {
        let d = tempfile::tempdir().unwrap();
        for junk in [&b""[..], &[0xffu8; 2048][..]] {
            let path = d.path().join(format!("web_1.0_{ID}.docker"));
            fs::write(&path, junk).unwrap();
            let err = compress(
                &Archive::from_path(&path).unwrap(),
                &Compression::default(),
                None,
                &Silent,
            )
            .unwrap_err();
            assert!(matches!(err, CodecError::NotATar { .. }), "{err}");
            assert_eq!(fs::read(&path).unwrap(), junk);
            assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
        }
    }

    #[test]
    fn corrupt_zip_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let zip_path = d.path().join(format!("web_1.0_{ID}.zip"));
        fs::write(&zip_path, b"not a zip at all").unwrap();
        let err = decompress(&Archive::from_path(&zip_path).unwrap(), &Silent).unwrap_err();
        assert!(matches!(err, CodecError::BadZip { .. }), "{err}");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
