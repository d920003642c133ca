//! The quick structural check of an archive: it reads only the ends of the file (and, for zstd,
//! the few bytes of each block header), never the data, so that `latest`, `config` and `clean`
//! can afford it on the archives they rely on. It catches what truncation and interrupted
//! copies do to a file; `verify` is the full check.
//!
//! - `.docker` (a tar): a valid first header, a size that is a whole number of 512-byte blocks,
//!   and the two zero blocks that end every tar.
//! - `.zip`: the end-of-central-directory record (ZIP64 included) and a central directory of
//!   exactly one entry, whose local header is where the directory says and whose data ends
//!   before the directory starts.
//! - `.zst`: every frame walked from block header to block header (skippable frames over), the
//!   last block of each frame and its checksum present, and the file ending exactly where the
//!   last frame does.
//!
//! The zstd walk is written here because no crate walks a frame's block headers without
//! decompressing it (`zstd_safe::find_frame_compressed_size` needs the whole frame in memory).

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use zip::ZipArchive;

use crate::name::Format;

/// Why an archive failed the quick check: the check that failed, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub check: String,
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.check)
    }
}

fn broken(check: impl Into<String>) -> Broken {
    Broken {
        check: check.into(),
    }
}

/// Checks the ends of the archive at `path` in `format` (a foreign format always passes: it is
/// never read).
pub fn check_ends(path: &Path, format: &Format) -> Result<(), Broken> {
    if !format.is_known() {
        return Ok(());
    }
    let file = File::open(path).map_err(|e| broken(format!("cannot be opened: {e}")))?;
    let len = file
        .metadata()
        .map_err(|e| broken(format!("cannot be read: {e}")))?
        .len();
    let (prefix, result) = match format {
        Format::Docker => ("tar", tar_ends(&file, len)),
        Format::Zip => ("zip", zip_ends(file, len)),
        Format::Zst => ("zst", zst_frames(&file, len)),
        Format::Foreign(_) => return Ok(()),
    };
    // Every verdict names the structure it checked.
    result.map_err(|b| {
        if b.check.starts_with(prefix) {
            b
        } else {
            broken(format!("{prefix}: {}", b.check))
        }
    })
}

/// Reads exactly `buf.len()` bytes at `offset`; a short read is a truncated file.
fn read_at(file: &File, buf: &mut [u8], offset: u64, what: &str) -> Result<(), Broken> {
    file.read_exact_at(buf, offset).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            broken(format!("truncated: the file ends inside {what}"))
        } else {
            broken(format!("cannot be read: {e}"))
        }
    })
}

const BLOCK: u64 = 512;

fn tar_ends(file: &File, len: u64) -> Result<(), Broken> {
    if len < 3 * BLOCK {
        return Err(broken(format!(
            "tar: {len} bytes is too short for a `docker save` tar (truncated)"
        )));
    }
    if !len.is_multiple_of(BLOCK) {
        return Err(broken(format!(
            "tar: {len} bytes is not a whole number of 512-byte blocks (truncated)"
        )));
    }
    let mut header = [0u8; BLOCK as usize];
    read_at(file, &mut header, 0, "the first tar header")?;
    if !header_checksum_ok(&header) {
        return Err(broken(
            "tar: the first header's checksum is wrong (not a tar)",
        ));
    }
    let mut end = [0u8; 2 * BLOCK as usize];
    read_at(file, &mut end, len - 2 * BLOCK, "the end-of-archive blocks")?;
    if end.iter().any(|&b| b != 0) {
        return Err(broken(
            "tar: the end-of-archive blocks (1,024 zero bytes) are missing (truncated)",
        ));
    }
    Ok(())
}

/// A tar header's checksum: the sum of its bytes, with the checksum field read as spaces.
pub(super) fn header_checksum_ok(block: &[u8; 512]) -> bool {
    let stored = std::str::from_utf8(&block[148..156])
        .ok()
        .and_then(|s| u32::from_str_radix(s.trim_matches(|c: char| c == '\0' || c == ' '), 8).ok());
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    stored == Some(sum)
}

fn zip_ends(file: File, len: u64) -> Result<(), Broken> {
    let mut zip = ZipArchive::new(file).map_err(|e| match e {
        zip::result::ZipError::Io(e) if e.kind() != io::ErrorKind::UnexpectedEof => {
            broken(format!("cannot be read: {e}"))
        }
        _ => broken("zip: truncated or not a ZIP (its end record cannot be found or read)"),
    })?;
    if zip.len() != 1 {
        return Err(broken(format!(
            "zip: {} entries where an archive has exactly one",
            zip.len()
        )));
    }
    let directory = zip.central_directory_start();
    let entry = zip
        .by_index_raw(0)
        .map_err(|e| broken(format!("zip: the entry's local header is damaged ({e})")))?;
    let data_start = entry
        .data_start()
        .ok_or_else(|| broken("zip: the entry's local header cannot be found"))?;
    let data_end = data_start.saturating_add(entry.compressed_size());
    if data_end > directory || data_end > len {
        return Err(broken(format!(
            "zip: the entry's data ({} bytes from offset {data_start}) runs past the central \
             directory at {directory}",
            entry.compressed_size()
        )));
    }
    Ok(())
}

const ZSTD_MAGIC: u32 = 0xFD2F_B528;
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;

fn zst_frames(file: &File, len: u64) -> Result<(), Broken> {
    if len == 0 {
        return Err(broken("zst: the file is empty"));
    }
    let mut at = 0u64;
    let mut frames = 0u32;
    while at < len {
        let mut word = [0u8; 4];
        read_at(file, &mut word, at, "a zstd frame's magic number")?;
        let magic = u32::from_le_bytes(word);
        if magic & SKIPPABLE_MASK == SKIPPABLE_MAGIC {
            let mut size = [0u8; 4];
            read_at(file, &mut size, at + 4, "a skippable frame's header")?;
            at += 8 + u64::from(u32::from_le_bytes(size));
            continue;
        }
        if magic != ZSTD_MAGIC {
            return Err(broken(if frames == 0 {
                "zst: it does not start with a zstd frame (not a zstd file)".to_string()
            } else {
                format!("zst: garbage after the last frame, at offset {at}")
            }));
        }
        at = frame_end(file, at + 4)?;
        frames += 1;
    }
    if at > len {
        return Err(broken(
            "zst: truncated: the last frame ends past the end of the file",
        ));
    }
    if frames == 0 {
        return Err(broken("zst: no zstd frame in the file"));
    }
    Ok(())
}

/// Walks one frame from just after its magic number; returns the offset just past its end.
fn frame_end(file: &File, mut at: u64) -> Result<u64, Broken> {
    let mut descriptor = [0u8; 1];
    read_at(file, &mut descriptor, at, "a zstd frame header")?;
    let d = descriptor[0];
    let content_size_flag = d >> 6;
    let single_segment = d & 0x20 != 0;
    let reserved = d & 0x08 != 0;
    let checksum = d & 0x04 != 0;
    let dictionary_flag = d & 0x03;
    if reserved {
        return Err(broken(
            "zst: a frame header's reserved bit is set (damaged)",
        ));
    }
    let window = u64::from(!single_segment);
    let dictionary = [0u64, 1, 2, 4][usize::from(dictionary_flag)];
    let content_size = match content_size_flag {
        0 => u64::from(single_segment),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    at += 1 + window + dictionary + content_size;
    loop {
        let mut header = [0u8; 3];
        read_at(file, &mut header, at, "a zstd block header")?;
        let h = u32::from(header[0]) | u32::from(header[1]) << 8 | u32::from(header[2]) << 16;
        let last = h & 1 != 0;
        let kind = (h >> 1) & 3;
        let size = u64::from(h >> 3);
        at += 3 + match kind {
            0 | 2 => size,
            1 => 1,
            _ => return Err(broken("zst: a block of the reserved type (damaged)")),
        };
        if last {
            break;
        }
    }
    if checksum {
        at += 4;
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tar_bytes() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let data = vec![7u8; 3000];
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "manifest.json", &data[..]).unwrap();
        b.into_inner().unwrap()
    }

    fn check(bytes: &[u8], format: Format) -> Result<(), Broken> {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a");
        std::fs::write(&p, bytes).unwrap();
        check_ends(&p, &format)
    }

    #[test]
    fn tar_ends_and_truncations() {
        let t = tar_bytes();
        assert_eq!(check(&t, Format::Docker), Ok(()));
        for cut in [0, 100, 512, t.len() - 512, t.len() - 1] {
            let e = check(&t[..cut], Format::Docker).unwrap_err();
            assert!(e.check.starts_with("tar:"), "{cut}: {e}");
        }
        let mut garbage = t.clone();
        garbage[0] ^= 1;
        assert!(check(&garbage, Format::Docker).is_err());
    }

    fn zip_bytes(t: &[u8]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        w.start_file("a.docker", zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(t).unwrap();
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn zip_ends_and_truncations() {
        let z = zip_bytes(&tar_bytes());
        assert_eq!(check(&z, Format::Zip), Ok(()));
        for cut in [0, 30, z.len() / 2, z.len() - 1] {
            let e = check(&z[..cut], Format::Zip).unwrap_err();
            assert!(e.check.contains("truncated or not a ZIP"), "{cut}: {e}");
        }
        // Two entries.
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for n in ["a", "b"] {
            w.start_file(n, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(b"x").unwrap();
        }
        let two = w.finish().unwrap().into_inner();
        assert!(
            check(&two, Format::Zip)
                .unwrap_err()
                .check
                .contains("2 entries")
        );
    }

    #[test]
    fn zst_frames_and_truncations() {
        let t: Vec<u8> = (0..400_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let mut z = Vec::new();
        let mut enc = zstd::Encoder::new(&mut z, 3).unwrap();
        enc.include_checksum(true).unwrap();
        enc.write_all(&t).unwrap();
        enc.finish().unwrap();
        assert_eq!(check(&z, Format::Zst), Ok(()));
        // Two frames and a skippable frame are one valid file.
        let mut two = z.clone();
        two.extend_from_slice(&0x184D_2A50u32.to_le_bytes());
        two.extend_from_slice(&3u32.to_le_bytes());
        two.extend_from_slice(b"abc");
        two.extend_from_slice(&z);
        assert_eq!(check(&two, Format::Zst), Ok(()));
        for cut in [0, 3, 10, z.len() / 2, z.len() - 1] {
            let e = check(&z[..cut], Format::Zst).unwrap_err();
            assert!(e.check.starts_with("zst:"), "{cut}: {e}");
        }
        let mut extra = z.clone();
        extra.extend_from_slice(b"junk");
        assert!(
            check(&extra, Format::Zst)
                .unwrap_err()
                .check
                .contains("garbage")
        );
    }

    #[test]
    fn foreign_formats_pass_and_missing_files_do_not() {
        assert_eq!(
            check_ends(Path::new("/nonexistent"), &Format::Foreign("bak".into())),
            Ok(())
        );
        assert!(check_ends(Path::new("/nonexistent/x"), &Format::Zip).is_err());
    }
}
