//! Property tests (the fuzz targets): name parsing agrees with the documented pattern, and
//! reading damaged archives of every format never panics. `just fuzz` runs them with many more
//! cases; proptest keeps any failure it finds under proptest-regressions/ as a regression test.

use std::fs;
use std::path::Path;

use proptest::prelude::*;
use toolbox::codec::CodecError;
use toolbox::codec::{self, Compression};
use toolbox::image::ArchiveError;
use toolbox::io_error::IoError;
use toolbox::progress::Silent;
use toolbox::{Archive, ArchiveName, Format, image};

fn regex_parts(name: &str) -> Option<(String, String, String, String)> {
    let re = regex::Regex::new(toolbox::name::PATTERN).unwrap();
    re.captures(name).map(|c| {
        (
            c["image"].into(),
            c["version"].into(),
            c["id"].into(),
            c["archfmt"].into(),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512)
    ))]

    #[test]
    fn names_parse_exactly_as_the_pattern_says(
        head in "[a-z_.\\n0-9é-]{0,10}",
        id in "[0-9a-fA-F]{11,13}",
        ext in "[a-z.\\n]{0,4}",
        sep in prop::sample::select(vec!["_", "__", ".", ""]),
    ) {
        let name = format!("{head}{sep}{id}.{ext}");
        let ours = ArchiveName::parse(&name)
            .map(|n| (n.image, n.version, n.id, n.format.to_string()));
        prop_assert_eq!(ours.clone(), regex_parts(&name));
        if let Some((image, version, id, ext)) = ours {
            let again = ArchiveName::new(&image, &version, &id, Format::from_extension(&ext)).unwrap();
            prop_assert_eq!(again.file_name(), name);
        }
    }

    #[test]
    fn damaged_archives_are_errors_never_panics(
        format in prop::sample::select(vec!["docker", "zip", "zst"]),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let original = sample_archive(dir.path(), format);
        let mut bytes = original.clone();
        for (at, x) in &flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        let damaged = dir.path().join(format!("web_1.0_{}.{format}", IMAGE_ID.with(|i| i.clone())));
        fs::write(&damaged, &bytes).unwrap();
        let archive = Archive::from_path(&damaged).unwrap();
        let verdict = image::verify(&archive);
        let read = codec::with_tar_reader(&archive, &Silent, |r| {
            let mut sink = Vec::new();
            r.read_to_end(&mut sink).map_err(|e| toolbox::Error::io(&damaged, e))?;
            Ok::<_, toolbox::Error>(sink)
        });
        if bytes == original {
            // Flips that undid each other, a cut at the very end: nothing is damaged.
            prop_assert!(verdict.is_ok(), "{:?}", verdict);
            prop_assert_eq!(read.ok(), Some(SAMPLE_TAR.with(|t| t.clone())));
            return Ok(());
        }
        // A damaged archive is an error that names the file and says what is wrong with it,
        // and a stream read out of one is never other bytes than the tar that went in...
        match &read {
            Ok(tar) if format == "docker" => prop_assert_eq!(tar, &bytes),
            Ok(tar) => prop_assert!(
                *tar == SAMPLE_TAR.with(|t| t.clone()),
                "the {} stream gave {} bytes that are not the tar that went in, without an error",
                format,
                tar.len()
            ),
            Err(e) => damage_named(&e.to_string(), &damaged, format)?,
        }
        match &verdict {
            Err(e) => {
                // An error about the damaged file itself: its contents, its container, or
                // reading it.
                let about = match e {
                    ArchiveError::Damaged { path, .. } => Some(path),
                    ArchiveError::Codec(
                        CodecError::NotATar { path, .. }
                        | CodecError::BadZip { path, .. }
                        | CodecError::Broken { path, .. }
                        | CodecError::Io(IoError { path, .. }),
                    )
                    | ArchiveError::Io(IoError { path, .. }) => Some(path),
                    _ => None,
                };
                prop_assert_eq!(about, Some(&damaged), "not an error about the damage: {:?}", e);
                damage_named(&e.to_string(), &damaged, format)?;
            }
            // ...unless the bytes it changed carry nothing of the image (a tar's padding or end
            // blocks, a ZIP header's time, a tag in manifest.json, which no digest covers):
            // then the image read from it, its config and its layers, is the one that went in.
            Ok(_) => {
                let image = read.ok().and_then(|tar| image_of(&tar));
                prop_assert!(
                    image == image_of(&SAMPLE_TAR.with(|t| t.clone())),
                    "verify passed a {} archive whose image changed (flips {:?}, cut {:?})",
                    format,
                    flips,
                    cut
                );
            }
        }
    }
}

/// Fails unless `message` is about the damaged archive `path`: it names the file, and says
/// what kind of damage (one of the container's or the tar's or the image's complaints).
fn damage_named(message: &str, path: &Path, format: &str) -> Result<(), TestCaseError> {
    let name = path.file_name().unwrap().to_string_lossy();
    prop_assert!(
        message.contains(&*name),
        "the error does not name the file: {}",
        message
    );
    let kinds: &[&str] = match format {
        // The tar's or the image's complaint.
        "docker" => &["` is damaged: "],
        // The ZIP's structure, what its deflate stream and CRC say, or (bytes that inflated to
        // something else) the tar's complaint.
        "zip" => &[
            "` is damaged: ",
            "` is not a valid ZIP archive: ",
            ": the ZIP entry is damaged: ",
            ": corrupt deflate stream",
            ": incomplete deflate stream",
            ": Invalid checksum",
            ": File is larger than its declared uncompressed size",
            ": compression method not supported",
            ": Decompressor previously failed",
        ],
        _ => &[
            "` is damaged: ",
            ": the zstd data is damaged or truncated (",
            "` is broken: zst: ",
        ],
    };
    prop_assert!(
        kinds.iter().any(|k| message.contains(k)),
        "a {} error that says no known kind of damage: {}",
        format,
        message
    );
    Ok(())
}

/// The image a classic `docker save` tar holds, read by other means than toolbox's: its
/// config and its layers (in the manifest's order), or `None` when it cannot be read.
fn image_of(tar: &[u8]) -> Option<(Vec<u8>, Vec<Vec<u8>>)> {
    let mut members = std::collections::HashMap::new();
    for entry in tar::Archive::new(tar).entries().ok()? {
        let mut entry = entry.ok()?;
        let path = entry.path().ok()?.to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).ok()?;
        members.insert(path, data);
    }
    let manifest: serde_json::Value = serde_json::from_slice(members.get("manifest.json")?).ok()?;
    let config = members.get(manifest[0]["Config"].as_str()?)?.clone();
    let layers = manifest[0]["Layers"]
        .as_array()?
        .iter()
        .map(|l| members.get(l.as_str()?).cloned())
        .collect::<Option<Vec<_>>>()?;
    Some((config, layers))
}

thread_local! {
    static IMAGE_ID: String = sample_tar().1;
    static SAMPLE_TAR: Vec<u8> = sample_tar().0;
}

/// A small valid `docker save` tar (classic layout) and its 12-hex ID.
fn sample_tar() -> (Vec<u8>, String) {
    let layer = {
        let mut b = tar::Builder::new(Vec::new());
        let data = b"hello from a layer\n".repeat(50);
        let mut h = tar::Header::new_gnu();
        h.set_path("hello.txt").unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, data.as_slice()).unwrap();
        b.into_inner().unwrap()
    };
    let diff_id = toolbox::digest::sha256(&layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}
    }))
    .unwrap();
    let id = toolbox::digest::sha256(&config);
    let config_name = format!("{}.json", &id[7..]);
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": config_name, "RepoTags": ["web:1.0"], "Layers": ["l1/layer.tar"]}
    ]))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("l1/layer.tar", &layer),
        (config_name.as_str(), &config),
        ("manifest.json", &manifest),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, data.as_slice()).unwrap();
    }
    (b.into_inner().unwrap(), id[7..19].to_string())
}

/// The sample image as an archive of `format`, as bytes.
fn sample_archive(dir: &Path, format: &str) -> Vec<u8> {
    let (tar, id) = sample_tar();
    let path = dir.join(format!("web_1.0_{id}.docker"));
    fs::write(&path, &tar).unwrap();
    let path = match format {
        "docker" => path,
        other => {
            let compression = Compression::new(Format::from_extension(other), None).unwrap();
            codec::compress(
                &Archive::from_path(&path).unwrap(),
                &compression,
                None,
                &Silent,
            )
            .unwrap()
        }
    };
    let bytes = fs::read(&path).unwrap();
    fs::remove_file(path).unwrap();
    bytes
}
