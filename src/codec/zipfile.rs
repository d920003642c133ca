//! The ZIP container of an archive: a single entry, written as its data streams through, with
//! the CRC and sizes patched into the local header afterwards (so no data descriptor is needed)
//! and ZIP64 records where sizes or offsets pass 4 GiB.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::time::SystemTime;

use super::deflate::{self, Deflated, PipelineError};
use crate::commit::Writeback;

pub(super) const LOCAL_HEADER: u32 = 0x0403_4b50;
/// The signature of a data descriptor (optional before its fields).
pub(super) const DATA_DESCRIPTOR: u32 = 0x0807_4b50;
pub(super) const CENTRAL_HEADER: u32 = 0x0201_4b50;
pub(super) const END_OF_CENTRAL: u32 = 0x0605_4b50;
pub(super) const ZIP64_END_OF_CENTRAL: u32 = 0x0606_4b50;
pub(super) const ZIP64_LOCATOR: u32 = 0x0706_4b50;
pub(super) const ZIP64_EXTRA: u16 = 0x0001;
const VERSION_ZIP64: u16 = 45;
const VERSION_MADE_BY: u16 = (3 << 8) | VERSION_ZIP64; // Unix
const FLAG_UTF8: u16 = 1 << 11;
pub(super) const METHOD_STORED: u16 = 0;
pub(super) const METHOD_DEFLATED: u16 = 8;
const MAX32: u64 = 0xFFFF_FFFF;
const BUFFER: usize = 1 << 20;

/// How an entry is compressed.
#[derive(Debug, Clone, Copy)]
pub struct ZipOptions {
    /// 0 stores, 1-9 deflate.
    pub level: u32,
    /// Threads to deflate on.
    pub threads: usize,
    /// Write ZIP64 records even when nothing needs them (for tests of the large-file path).
    pub force_zip64: bool,
}

/// Writes a ZIP holding one entry, `name`, whose data is all of `input`, at the start of
/// `file` (which must be empty), with `comment` as the archive comment (at most 65,535 bytes;
/// a longer one is left out). Returns what was compressed.
pub fn write_zip<R: Read + ?Sized>(
    input: &mut R,
    file: &File,
    name: &str,
    modified: SystemTime,
    options: ZipOptions,
    comment: &[u8],
) -> Result<Deflated, PipelineError> {
    let comment = if comment.len() <= usize::from(u16::MAX) {
        comment
    } else {
        &[]
    };
    let write_err = PipelineError::Write;
    let method = if options.level == 0 {
        METHOD_STORED
    } else {
        METHOD_DEFLATED
    };
    let flags = if name.is_ascii() { 0 } else { FLAG_UTF8 };
    // UTC, clamped to the years DOS dates can hold.
    let (time, date) = crate::timestamp::dos(modified);
    let name_len = u16::try_from(name.len())
        .map_err(|_| write_err(io::Error::other("entry name too long")))?;

    // Local header with placeholders: CRC 0, sizes in a ZIP64 extra field patched later.
    let mut local = Vec::with_capacity(30 + name.len() + 20);
    put32(&mut local, LOCAL_HEADER);
    put16(&mut local, VERSION_ZIP64);
    put16(&mut local, flags);
    put16(&mut local, method);
    put16(&mut local, time);
    put16(&mut local, date);
    put32(&mut local, 0);
    put32(&mut local, MAX32 as u32);
    put32(&mut local, MAX32 as u32);
    put16(&mut local, name_len);
    put16(&mut local, 20);
    local.extend_from_slice(name.as_bytes());
    put16(&mut local, ZIP64_EXTRA);
    put16(&mut local, 16);
    put64(&mut local, 0);
    put64(&mut local, 0);

    let mut out = BufWriter::with_capacity(BUFFER, Writeback::new(file));
    out.write_all(&local).map_err(write_err)?;
    let deflated = if options.level == 0 {
        store(input, &mut out)?
    } else {
        deflate::deflate(input, &mut out, options.level, options.threads)?
    };

    // Patch the CRC and the sizes into the local header.
    let mut patch = Vec::with_capacity(16);
    put64(&mut patch, deflated.uncompressed);
    put64(&mut patch, deflated.compressed);
    out.flush().map_err(write_err)?;
    file.write_all_at(&deflated.crc.to_le_bytes(), 14)
        .map_err(write_err)?;
    file.write_all_at(&patch, 30 + u64::from(name_len) + 4)
        .map_err(write_err)?;

    // The central directory and its end.
    let central_offset = local.len() as u64 + deflated.compressed;
    let big_sizes =
        options.force_zip64 || deflated.uncompressed >= MAX32 || deflated.compressed >= MAX32;
    let mut extra = Vec::new();
    if big_sizes {
        put64(&mut extra, deflated.uncompressed);
        put64(&mut extra, deflated.compressed);
    }
    let mut central = Vec::with_capacity(46 + name.len() + 4 + extra.len());
    put32(&mut central, CENTRAL_HEADER);
    put16(&mut central, VERSION_MADE_BY);
    put16(&mut central, VERSION_ZIP64);
    put16(&mut central, flags);
    put16(&mut central, method);
    put16(&mut central, time);
    put16(&mut central, date);
    put32(&mut central, deflated.crc);
    put32(
        &mut central,
        if big_sizes {
            MAX32
        } else {
            deflated.compressed
        } as u32,
    );
    put32(
        &mut central,
        if big_sizes {
            MAX32
        } else {
            deflated.uncompressed
        } as u32,
    );
    put16(&mut central, name_len);
    put16(
        &mut central,
        if extra.is_empty() {
            0
        } else {
            4 + extra.len() as u16
        },
    );
    put16(&mut central, 0); // comment
    put16(&mut central, 0); // disk
    put16(&mut central, 0); // internal attributes
    put32(&mut central, 0o100644 << 16); // a regular file, rw-r--r--
    put32(&mut central, 0); // the local header is at the start
    central.extend_from_slice(name.as_bytes());
    if !extra.is_empty() {
        put16(&mut central, ZIP64_EXTRA);
        put16(&mut central, extra.len() as u16);
        central.extend_from_slice(&extra);
    }
    let central_size = central.len() as u64;
    let mut end = Vec::with_capacity(98);
    let big_offset = options.force_zip64 || central_offset >= MAX32;
    if big_offset {
        let zip64_end_offset = central_offset + central_size;
        put32(&mut end, ZIP64_END_OF_CENTRAL);
        put64(&mut end, 44);
        put16(&mut end, VERSION_MADE_BY);
        put16(&mut end, VERSION_ZIP64);
        put32(&mut end, 0);
        put32(&mut end, 0);
        put64(&mut end, 1);
        put64(&mut end, 1);
        put64(&mut end, central_size);
        put64(&mut end, central_offset);
        put32(&mut end, ZIP64_LOCATOR);
        put32(&mut end, 0);
        put64(&mut end, zip64_end_offset);
        put32(&mut end, 1);
    }
    put32(&mut end, END_OF_CENTRAL);
    put16(&mut end, 0);
    put16(&mut end, 0);
    put16(&mut end, 1);
    put16(&mut end, 1);
    put32(&mut end, central_size as u32);
    put32(
        &mut end,
        if big_offset { MAX32 } else { central_offset } as u32,
    );
    put16(&mut end, comment.len() as u16);
    end.extend_from_slice(comment);
    out.write_all(&central).map_err(write_err)?;
    out.write_all(&end).map_err(write_err)?;
    out.flush().map_err(write_err)?;
    Ok(deflated)
}

/// Copies without compression, computing the CRC.
fn store<R: Read + ?Sized, W: Write>(
    input: &mut R,
    out: &mut W,
) -> Result<Deflated, PipelineError> {
    let mut crc = crc32fast::Hasher::new();
    let total = super::pump(input, out, |chunk| crc.update(chunk))?;
    Ok(Deflated {
        crc: crc.finalize(),
        uncompressed: total,
        compressed: total,
    })
}

fn put16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn put32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn put64(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const COMMENT: &str = "toolbox-image {}";

    fn sample(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| ((i / 3) as u8) ^ ((i >> 13) as u8))
            .collect()
    }

    fn check_with_tools(path: &std::path::Path, name: &str, data: &[u8]) {
        let unzipped = Command::new("unzip")
            .arg("-p")
            .arg(path)
            .output()
            .expect("unzip is installed");
        assert!(
            unzipped.status.success(),
            "unzip: {}",
            String::from_utf8_lossy(&unzipped.stderr)
        );
        assert!(unzipped.stdout == data, "unzip gives the data back");
        let tested = Command::new("unzip").arg("-t").arg(path).output().unwrap();
        assert!(
            tested.status.success(),
            "unzip -t: {}",
            String::from_utf8_lossy(&tested.stdout)
        );
        let py = Command::new("python3")
            .args([
                "-c",
                "import sys, zipfile, zlib; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; \
                 [i] = z.infolist(); print(i.filename, i.file_size, zlib.crc32(z.read(i)), z.comment.decode())",
            ])
            .arg(path)
            .output()
            .expect("python3 is installed");
        assert!(
            py.status.success(),
            "python: {}",
            String::from_utf8_lossy(&py.stderr)
        );
        let expected = format!(
            "{name} {} {} {COMMENT}\n",
            data.len(),
            crc32fast::hash(data)
        );
        assert_eq!(String::from_utf8_lossy(&py.stdout), expected);
        let mut archive = zip::ZipArchive::new(File::open(path).unwrap()).unwrap();
        assert_eq!(archive.comment(), COMMENT.as_bytes());
        let mut entry = archive.by_index(0).unwrap();
        let mut back = Vec::new();
        entry.read_to_end(&mut back).unwrap();
        assert!(back == data, "the zip crate reads it back");
    }

    #[test]
    fn readable_by_unzip_python_and_the_zip_crate() {
        let d = tempfile::tempdir().unwrap();
        for (level, force_zip64, len) in [
            (6, false, 3 << 20),
            (1, true, 100_000),
            (0, false, 70_000),
            (9, true, 0),
            (6, false, 0),
        ] {
            let data = sample(len);
            let path = d.path().join(format!("t{level}{force_zip64}{len}.zip"));
            let file = File::create_new(&path).unwrap();
            let options = ZipOptions {
                level,
                threads: 2,
                force_zip64,
            };
            let name = "web_1.0_0123456789ab.docker";
            let done = write_zip(
                &mut data.as_slice(),
                &file,
                name,
                SystemTime::now(),
                options,
                COMMENT.as_bytes(),
            )
            .unwrap();
            assert_eq!(done.uncompressed, len as u64);
            check_with_tools(&path, name, &data);
        }
    }

    /// A file time far beyond what a calendar holds (a year past 9999, or before -9999)
    /// writes a ZIP whose entry time is clamped into the DOS range, without a panic.
    #[test]
    fn times_out_of_range_are_clamped() {
        let far = |seconds: i64| crate::timestamp::from_unix(seconds, 0).unwrap();
        let d = tempfile::tempdir().unwrap();
        for (i, (modified, expected)) in [
            (far(i64::MAX), (2107, 12, 31, 23, 59, 58)),
            (far(300_000_000_000), (2107, 12, 31, 23, 59, 58)),
            (far(i64::MIN + 1), (1980, 1, 1, 0, 0, 0)),
            (far(-1), (1980, 1, 1, 0, 0, 0)),
        ]
        .into_iter()
        .enumerate()
        {
            let path = d.path().join(format!("t{i}.zip"));
            let file = File::create_new(&path).unwrap();
            let options = ZipOptions {
                level: 1,
                threads: 1,
                force_zip64: false,
            };
            write_zip(
                &mut &b"data"[..],
                &file,
                "x",
                modified,
                options,
                COMMENT.as_bytes(),
            )
            .unwrap();
            let mut archive = zip::ZipArchive::new(File::open(&path).unwrap()).unwrap();
            let entry = archive.by_index(0).unwrap();
            let t = entry.last_modified().unwrap();
            assert_eq!(
                (
                    t.year(),
                    t.month(),
                    t.day(),
                    t.hour(),
                    t.minute(),
                    t.second()
                ),
                expected,
                "case {i}"
            );
        }
    }
}
