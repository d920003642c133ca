//! The quick structural check of an archive: it reads only the ends of the file (and, for zstd,
//! the few bytes of each block header), never the data, so that `latest`, `config` and `clean`
//! can afford it on the archives they rely on. It catches what truncation and interrupted
//! copies do to a file; `verify` is the full check.
//!
//! - `.docker` (a tar): a valid first header, a size that is a whole number of 512-byte blocks,
//!   and the two zero blocks that end every tar.
//! - `.zip`: every byte accounted for ([`zip_structure`]): the end record (ZIP64 included), a
//!   central directory of exactly one record by its count and by its size, the local header at
//!   the start naming the same entry, and its data running exactly up to the directory (or to a
//!   data descriptor of it).
//! - `.zst`: every frame walked from block header to block header (skippable frames over), the
//!   last block of each frame and its checksum present, the file ending exactly where the
//!   last frame does, and no frame needing a larger window than toolbox's reader accepts.
//!
//! The zstd walk is written here because no crate walks a frame's block headers without
//! decompressing it (`zstd_safe::find_frame_compressed_size` needs the whole frame in memory).

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

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

/// The quick check of a `.ref` archive: it holds a descriptor, its layer store is found, and
/// every blob the descriptor needs is there at its size (documents are read and checked against
/// their digests; layers are not read).
fn ref_ends(path: &Path) -> Result<(), crate::layout::LayoutError> {
    let layout = crate::layout::Layout::of_ref(path)?;
    let reference = crate::layout::RefFile::read(path)?;
    let needs = crate::layout::graph::needs(&layout, &reference.descriptor())?;
    if needs
        .blobs
        .iter()
        .any(|n| n.kind == crate::layout::graph::Kind::Config)
    {
        Ok(())
    } else {
        Err(crate::layout::LayoutError::BadRef {
            path: path.to_path_buf(),
            reason: "its descriptor leads to no image (no manifest with a config)".into(),
        })
    }
}

/// Checks the ends of the archive at `path` in `format` (a foreign format always passes: it is
/// never read).
pub fn check_ends(path: &Path, format: &Format) -> Result<(), Broken> {
    if !format.is_known() {
        return Ok(());
    }
    if *format == Format::Ref {
        return ref_ends(path).map_err(|e| broken(format!("ref: {e}")));
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
        Format::Foreign(_) | Format::Ref => return Ok(()),
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
    zip_structure(&file, len).map(|_| ())
}

/// The one entry of a ZIP archive, as the ZIP's structure gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipEntry {
    /// Its name, as stored (the same in the central directory and the local header).
    pub name: Vec<u8>,
    /// 0 (stored) or 8 (deflated).
    pub method: u16,
    pub crc: u32,
    pub compressed: u64,
    pub uncompressed: u64,
    /// Where its data starts in the file.
    pub data_start: u64,
}

use super::zipfile::{
    CENTRAL_HEADER as CENTRAL, DATA_DESCRIPTOR as DESCRIPTOR, END_OF_CENTRAL as EOCD,
    LOCAL_HEADER as LOCAL, METHOD_DEFLATED, METHOD_STORED, ZIP64_END_OF_CENTRAL as EOCD64,
    ZIP64_EXTRA, ZIP64_LOCATOR as LOCATOR64,
};

const MAX16: u16 = 0xFFFF;
const MAX32: u32 = 0xFFFF_FFFF;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// Reads the structure of a ZIP archive of exactly one entry, every byte of the file accounted
/// for: the local header at offset 0, its data, an optional data descriptor, a central directory
/// of exactly one record (the same name and method as the local header) right after, the ZIP64
/// end records when there are any, and the end record whose comment ends the file. Entry counts
/// and sizes are read from the records themselves, so that nothing a reader might take for a
/// second entry (a duplicate name, a record the count leaves out, bytes between the parts) is
/// let through, whichever reader later opens the file.
///
/// Written here, not read through the `zip` crate, because that crate keeps entries by name (two
/// entries of one name count as one) and does not hold declared sizes to the data.
pub fn zip_structure(file: &File, len: u64) -> Result<ZipEntry, Broken> {
    let not_zip = || broken("zip: truncated or not a ZIP (its end record cannot be found or read)");
    if len < 22 {
        return Err(not_zip());
    }
    // The end record: 22 bytes and a comment of up to 65,535 that ends the file.
    let tail_len = len.min(22 + 65_535);
    let mut tail = vec![0u8; tail_len as usize];
    read_at(file, &mut tail, len - tail_len, "the end record")?;
    let eocd = (0..=tail.len() - 22)
        .rev()
        .find(|&i| {
            u32_at(&tail, i) == EOCD && i + 22 + usize::from(u16_at(&tail, i + 20)) == tail.len()
        })
        .ok_or_else(not_zip)?;
    let eocd_offset = len - tail_len + eocd as u64;
    let e = &tail[eocd..eocd + 22];
    if u16_at(e, 4) != 0 || u16_at(e, 6) != 0 {
        return Err(broken("zip: it spans several disks"));
    }
    let (mut on_disk, mut total) = (u64::from(u16_at(e, 8)), u64::from(u16_at(e, 10)));
    let (mut cd_size, mut cd_offset) = (u64::from(u32_at(e, 12)), u64::from(u32_at(e, 16)));
    // Where the central directory must end: the ZIP64 end record, else the end record.
    let mut cd_end = eocd_offset;
    let mut locator = [0u8; 20];
    let has_locator = eocd_offset >= 20
        && file.read_exact_at(&mut locator, eocd_offset - 20).is_ok()
        && u32_at(&locator, 0) == LOCATOR64;
    if has_locator {
        let record_at = u64_at(&locator, 8);
        let mut record = [0u8; 56];
        read_at(file, &mut record, record_at, "the ZIP64 end record")?;
        if u32_at(&record, 0) != EOCD64
            || record_at
                .checked_add(12)
                .and_then(|x| x.checked_add(u64_at(&record, 4)))
                != Some(eocd_offset - 20)
        {
            return Err(broken("zip: the ZIP64 end record is damaged or misplaced"));
        }
        let wide = |narrow: u64, max: u64, wide: u64| {
            if narrow == max || narrow == wide {
                Ok(wide)
            } else {
                Err(broken(
                    "zip: the end record and the ZIP64 end record disagree",
                ))
            }
        };
        on_disk = wide(on_disk, u64::from(MAX16), u64_at(&record, 24))?;
        total = wide(total, u64::from(MAX16), u64_at(&record, 32))?;
        cd_size = wide(cd_size, u64::from(MAX32), u64_at(&record, 40))?;
        cd_offset = wide(cd_offset, u64::from(MAX32), u64_at(&record, 48))?;
        cd_end = record_at;
    } else if on_disk == u64::from(MAX16)
        || total == u64::from(MAX16)
        || cd_size == u64::from(MAX32)
        || cd_offset == u64::from(MAX32)
    {
        return Err(broken(
            "zip: the ZIP64 end records are missing (truncated?)",
        ));
    }
    if on_disk != 1 || total != 1 {
        return Err(broken(format!(
            "zip: {total} entries where an archive has exactly one"
        )));
    }
    if cd_offset.checked_add(cd_size) != Some(cd_end) {
        return Err(broken(format!(
            "zip: the central directory ({cd_size} bytes at offset {cd_offset}) does not end \
             where the end record starts ({cd_end}): bytes between them, or a damaged size"
        )));
    }
    if !(46..=46 + 3 * 65_535).contains(&cd_size) {
        return Err(broken(format!(
            "zip: a central directory of {cd_size} bytes cannot be exactly one record"
        )));
    }
    let mut cd = vec![0u8; cd_size as usize];
    read_at(file, &mut cd, cd_offset, "the central directory")?;
    if u32_at(&cd, 0) != CENTRAL {
        return Err(broken("zip: the central directory record is damaged"));
    }
    let flags = u16_at(&cd, 8);
    let method = u16_at(&cd, 10);
    let crc = u32_at(&cd, 16);
    let (name_len, extra_len, comment_len) = (
        usize::from(u16_at(&cd, 28)),
        usize::from(u16_at(&cd, 30)),
        usize::from(u16_at(&cd, 32)),
    );
    if 46 + name_len + extra_len + comment_len != cd.len() {
        return Err(broken(
            "zip: the central directory holds more (or less) than exactly one record",
        ));
    }
    let name = cd[46..46 + name_len].to_vec();
    let extra = &cd[46 + name_len..46 + name_len + extra_len];
    let mut compressed = u64::from(u32_at(&cd, 20));
    let mut uncompressed = u64::from(u32_at(&cd, 24));
    let mut local_offset = u64::from(u32_at(&cd, 42));
    if compressed == u64::from(MAX32)
        || uncompressed == u64::from(MAX32)
        || local_offset == u64::from(MAX32)
    {
        let zip64 =
            zip64_extra(extra).ok_or_else(|| broken("zip: the entry's ZIP64 sizes are missing"))?;
        let mut fields = zip64.chunks_exact(8).map(|c| u64_at(c, 0));
        let mut next = |value: &mut u64| -> Result<(), Broken> {
            if *value == u64::from(MAX32) {
                *value = fields
                    .next()
                    .ok_or_else(|| broken("zip: the entry's ZIP64 sizes are missing"))?;
            }
            Ok(())
        };
        next(&mut uncompressed)?;
        next(&mut compressed)?;
        next(&mut local_offset)?;
    }
    if local_offset != 0 {
        return Err(broken(format!(
            "zip: the entry's local header is at offset {local_offset}, not at the start"
        )));
    }
    if method != METHOD_STORED && method != METHOD_DEFLATED {
        return Err(broken(format!(
            "zip: the entry is compressed with method {method}; toolbox reads stored (0) and \
             deflated (8) entries"
        )));
    }
    if method == METHOD_STORED && compressed != uncompressed {
        return Err(broken(
            "zip: a stored entry whose two sizes differ (damaged)",
        ));
    }
    let mut local = [0u8; 30];
    read_at(file, &mut local, 0, "the entry's local header")?;
    if u32_at(&local, 0) != LOCAL {
        return Err(broken("zip: the entry's local header is damaged"));
    }
    let (local_name_len, local_extra_len) =
        (u64::from(u16_at(&local, 26)), u64::from(u16_at(&local, 28)));
    let mut local_name = vec![0u8; local_name_len as usize];
    read_at(file, &mut local_name, 30, "the entry's local header")?;
    if local_name != name || u16_at(&local, 8) != method {
        return Err(broken(
            "zip: the local header and the central directory describe different entries",
        ));
    }
    let data_start = 30 + local_name_len + local_extra_len;
    let data_end = data_start
        .checked_add(compressed)
        .filter(|&end| end <= cd_offset)
        .ok_or_else(|| {
            broken(format!(
                "zip: the entry's data ({compressed} bytes from offset {data_start}) runs past \
                 the central directory at {cd_offset}"
            ))
        })?;
    let gap = cd_offset - data_end;
    let described = if flags & 0x08 != 0 && gap > 0 {
        // A data descriptor: [signature] CRC, then 4- or 8-byte sizes.
        if gap > 24 {
            false
        } else {
            let mut d = vec![0u8; gap as usize];
            read_at(file, &mut d, data_end, "the data descriptor")?;
            let body = if d.len() >= 4 && u32_at(&d, 0) == DESCRIPTOR {
                &d[4..]
            } else {
                &d[..]
            };
            match body.len() {
                12 => {
                    u32_at(body, 0) == crc
                        && u64::from(u32_at(body, 4)) == compressed
                        && u64::from(u32_at(body, 8)) == uncompressed
                }
                20 => {
                    u32_at(body, 0) == crc
                        && u64_at(body, 4) == compressed
                        && u64_at(body, 12) == uncompressed
                }
                _ => false,
            }
        }
    } else {
        gap == 0
    };
    if !described {
        return Err(broken(format!(
            "zip: {gap} bytes between the entry's data and the central directory that are no \
             data descriptor of it (another entry, or damage)"
        )));
    }
    Ok(ZipEntry {
        name,
        method,
        crc,
        compressed,
        uncompressed,
        data_start,
    })
}

/// The data of the ZIP64 extra field (id 1) in a central directory record's extra fields.
fn zip64_extra(mut extra: &[u8]) -> Option<&[u8]> {
    while extra.len() >= 4 {
        let (id, size) = (u16_at(extra, 0), usize::from(u16_at(extra, 2)));
        let data = extra.get(4..4 + size)?;
        if id == ZIP64_EXTRA {
            return Some(data);
        }
        extra = &extra[4 + size..];
    }
    None
}

const ZSTD_MAGIC: u32 = 0xFD2F_B528;
/// The largest window toolbox's zstd reader accepts (zstd's default limit, 2^27 bytes).
pub const MAX_WINDOW: u64 = 1 << 27;
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
    // The window the frame needs to be decoded: its window descriptor, or for a single-segment
    // frame its content size. The reader refuses more than MAX_WINDOW: so does this check.
    let needed = if single_segment {
        let mut field = [0u8; 8];
        let n = content_size as usize;
        read_at(
            file,
            &mut field[..n],
            at + 1 + dictionary,
            "a zstd frame header",
        )?;
        let size = u64::from_le_bytes(field);
        if n == 2 { size + 256 } else { size }
    } else {
        let mut descriptor = [0u8; 1];
        read_at(file, &mut descriptor, at + 1, "a zstd frame header")?;
        let exponent = u32::from(descriptor[0] >> 3);
        let base = 1u64 << (10 + exponent);
        base + (base / 8) * u64::from(descriptor[0] & 7)
    };
    if needed > MAX_WINDOW {
        return Err(broken(format!(
            "zst: a frame needs a window of {} MiB, more than the {} MiB toolbox reads",
            needed >> 20,
            MAX_WINDOW >> 20
        )));
    }
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

    /// A stored ZIP of these entries, laid out by hand: `count` overrides the end record's entry
    /// counts, `sizes` the central directory's declared sizes of every entry.
    fn handmade_zip(entries: &[(&str, &[u8])], count: Option<u16>, sizes: Option<u32>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data) in entries {
            let offset = out.len() as u32;
            let crc = crc32fast::hash(data);
            let mut local = Vec::new();
            local.extend(LOCAL.to_le_bytes());
            local.extend([20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            local.extend(crc.to_le_bytes());
            local.extend((data.len() as u32).to_le_bytes());
            local.extend((data.len() as u32).to_le_bytes());
            local.extend((name.len() as u16).to_le_bytes());
            local.extend(0u16.to_le_bytes());
            local.extend(name.as_bytes());
            out.extend(&local);
            out.extend(*data);
            let size = sizes.unwrap_or(data.len() as u32);
            central.extend(CENTRAL.to_le_bytes());
            central.extend([20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            central.extend(crc.to_le_bytes());
            central.extend(size.to_le_bytes());
            central.extend(size.to_le_bytes());
            central.extend((name.len() as u16).to_le_bytes());
            central.extend([0u8; 12]);
            central.extend(offset.to_le_bytes());
            central.extend(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend(&central);
        let n = count.unwrap_or(entries.len() as u16);
        out.extend(EOCD.to_le_bytes());
        out.extend([0, 0, 0, 0]);
        out.extend(n.to_le_bytes());
        out.extend(n.to_le_bytes());
        out.extend((central.len() as u32).to_le_bytes());
        out.extend(cd_offset.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out
    }

    /// What could be read as a second entry, or as other sizes than the data has, is broken
    /// for the quick check (and so for every reader, which runs it first).
    #[test]
    fn zips_that_could_smuggle_are_broken() {
        let t = tar_bytes();
        let one = handmade_zip(&[("a.docker", &t)], None, None);
        assert_eq!(check(&one, Format::Zip), Ok(()));
        let junk = b"junk";
        let cases: [(Vec<u8>, &str); 5] = [
            // Two entries of one name, counted.
            (
                handmade_zip(&[("a.docker", &t), ("a.docker", junk)], None, None),
                "2 entries",
            ),
            // Two entries of one name, the count saying one.
            (
                handmade_zip(&[("a.docker", &t), ("a.docker", junk)], Some(1), None),
                "central directory",
            ),
            // Declared sizes larger than the data.
            (
                handmade_zip(&[("a.docker", &t)], None, Some(t.len() as u32 + 512)),
                "runs past",
            ),
            // Declared sizes smaller than the data: bytes left between data and directory.
            (
                handmade_zip(&[("a.docker", &t)], None, Some(t.len() as u32 - 512)),
                "between",
            ),
            // Bytes after the end record.
            (
                {
                    let mut z = one.clone();
                    z.extend(b"tail");
                    z
                },
                "truncated or not a ZIP",
            ),
        ];
        for (i, (bytes, said)) in cases.iter().enumerate() {
            let e = check(bytes, Format::Zip).unwrap_err();
            assert!(e.check.contains(said), "case {i}: {e}");
        }
    }

    /// A frame whose window is larger than toolbox's reader takes is broken for the quick check
    /// too.
    #[test]
    fn a_zst_frame_toolbox_will_not_read_is_broken() {
        let t = tar_bytes();
        let mut z = Vec::new();
        let mut enc = zstd::Encoder::new(&mut z, 3).unwrap();
        enc.include_checksum(true).unwrap();
        enc.set_parameter(zstd::zstd_safe::CParameter::WindowLog(31))
            .unwrap();
        enc.set_parameter(zstd::zstd_safe::CParameter::EnableLongDistanceMatching(
            true,
        ))
        .unwrap();
        enc.write_all(&t).unwrap();
        enc.finish().unwrap();
        let e = check(&z, Format::Zst).unwrap_err();
        assert!(e.check.contains("window"), "{e}");
        // And the reader says the same.
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("web_1.0_0123456789ab.zst");
        std::fs::write(&p, &z).unwrap();
        let a = crate::archive::Archive::from_path(&p).unwrap();
        let err = super::super::with_tar_reader(&a, &crate::progress::Silent, |r| {
            std::io::copy(r, &mut std::io::sink())
                .map_err(|e| crate::io_error::IoError::new(&p, e))
                .map_err(super::super::CodecError::from)
        })
        .unwrap_err();
        assert!(err.to_string().contains("window"), "{err}");
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
