//! Property tests (the fuzz targets): name parsing agrees with the documented pattern, and
//! reading damaged archives of every format never panics. `just fuzz` runs them with many more
//! cases; proptest keeps any failure it finds under proptest-regressions/ as a regression test.

use std::fs;
use std::path::Path;

use proptest::prelude::*;
use toolbox::codec::{self, Compression};
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
        let mut bytes = sample_archive(dir.path(), format);
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
        if flips.is_empty() && cut.is_none() {
            prop_assert!(verdict.is_ok(), "{:?}", verdict);
        }
        let _ = codec::with_tar_reader(&archive, &Silent, |r| {
            let mut sink = Vec::new();
            r.read_to_end(&mut sink).map_err(|e| toolbox::Error::io(&damaged, e))
        });
    }
}

thread_local! {
    static IMAGE_ID: String = sample_tar().1;
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
