//! The latest rule is one order: on generated stores (tied versions, dirty builds, unreadable
//! and truncated archives, `.docker`/`.zip`/`.zst` twins, foreign files), `latest` is always the
//! first row of `images`, `config` deploys it, `clean` never removes it whatever `--keep`, and
//! `images` lists each image's archives in the order the README's rule gives.

mod common;

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use time::OffsetDateTime;
use toolbox::codec::{self, Body};
use toolbox::digest::sha256;
use toolbox::meta::Summary;
use toolbox::ops::{deploy, open_store};
use toolbox::{Archive, ArchiveName, Format, LatestRule};

/// A classic `docker save` tar of a one-layer image created at `created` (seconds since the
/// epoch); returns the tar and the image ID.
fn image_tar(created: i64) -> (Vec<u8>, String) {
    let layer = format!("layer of an image created at {created}").into_bytes();
    let diff_id = sha256(&layer);
    let created = OffsetDateTime::from_unix_timestamp(created)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": created,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .unwrap();
    let id = sha256(&config);
    let config_name = format!("{}.json", &id[7..]);
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": config_name, "RepoTags": ["web:1"], "Layers": ["l/layer.tar"]}
    ]))
    .unwrap();
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("l/layer.tar", layer),
        (config_name.as_str(), config),
        ("manifest.json", manifest),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        builder.append_data(&mut h, name, data.as_slice()).unwrap();
    }
    (builder.into_inner().unwrap(), id)
}

/// What one generated file is.
#[derive(Debug, Clone)]
struct Spec {
    image: usize,
    /// Which image build (its creation time, hence its ID).
    build: usize,
    version: usize,
    format: usize,
    /// 0: a good archive; 1: garbage; 2: cut in half; 3: a good ZIP carrying its summary.
    content: usize,
    age_s: u64,
}

const IMAGES: [&str; 2] = ["web", "api_x"];
const VERSIONS: [&str; 7] = [
    "1.0", "1.0.0", "2.0", "latest", "1.2.3.0", "nightly", "2.0-rc.1",
];
/// What the generator knows of each of [`VERSIONS`], written out by hand from the README (not
/// computed by the crate): whether it is dirty, and its rank among the versions that parse
/// (`None`: it does not parse; `1.0` = `1.0.0` < `1.2.3.0` < `2.0-rc.1` < `2.0`).
const VERSION_FACTS: [(bool, Option<u8>); 7] = [
    (false, Some(1)),
    (false, Some(1)),
    (false, Some(4)),
    (true, None),
    (true, Some(2)),
    (false, None),
    (false, Some(3)),
];
const FORMATS: [&str; 4] = ["docker", "zip", "zst", "bak"];
/// Creation times of three builds (three image IDs).
const CREATED: [i64; 3] = [1_700_000_000, 1_700_000_100, 1_600_000_000];

fn spec() -> impl Strategy<Value = Spec> {
    (
        0..2usize,
        0..3usize,
        0..7usize,
        0..4usize,
        0..4usize,
        0..5u64,
    )
        .prop_map(|(image, build, version, format, content, age)| Spec {
            image,
            build,
            version,
            format,
            content,
            age_s: age * 10,
        })
}

impl Spec {
    fn dirty(&self) -> bool {
        VERSION_FACTS[self.version].0
    }

    fn version_rank(&self) -> Option<u8> {
        VERSION_FACTS[self.version].1
    }

    /// Whether the quick check of the ends must find it broken: garbage, or cut in half.
    fn broken(&self) -> bool {
        matches!(self.content, 1 | 2)
    }

    /// The image's creation time, when it can be read (not from garbage or half an archive).
    fn created(&self) -> Option<i64> {
        (!self.broken()).then_some(CREATED[self.build])
    }

    fn modified(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000 - self.age_s)
    }
}

/// Writes the files of `specs` into `dir` (a later spec with the same file name is skipped);
/// returns what each file written is.
fn write_store(dir: &Path, specs: &[Spec]) -> HashMap<PathBuf, Spec> {
    let builds: Vec<(Vec<u8>, String)> = CREATED.iter().map(|&c| image_tar(c)).collect();
    let mut written = HashMap::new();
    for s in specs {
        let (tar, id) = &builds[s.build];
        let format = Format::from_extension(FORMATS[s.format]);
        let name =
            ArchiveName::new(IMAGES[s.image], VERSIONS[s.version], &id[7..19], format).unwrap();
        let path = dir.join(name.file_name());
        if path.exists() {
            continue;
        }
        match (s.content, name.format.is_known()) {
            (1, _) | (_, false) => fs::write(&path, b"not an archive at all").unwrap(),
            (content, true) => {
                let summary = Summary {
                    id: id.clone(),
                    created: Some(
                        OffsetDateTime::from_unix_timestamp(CREATED[s.build])
                            .unwrap()
                            .format(&time::format_description::well_known::Rfc3339)
                            .unwrap(),
                    ),
                };
                let comment = summary.zip_comment();
                let body = Body {
                    source: Path::new("generated"),
                    modified: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
                    comment: (content == 3).then_some(comment.as_str()),
                };
                codec::write_archive(&mut tar.as_slice(), body, &path, 1).unwrap();
                if content == 2 {
                    let bytes = fs::read(&path).unwrap();
                    fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
                }
            }
        }
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(s.modified())
            .unwrap();
        written.insert(path, s.clone());
    }
    written
}

/// The README's rule, written out independently of the crate: compares two archives of one
/// image by what the generator made them (cleanliness, version, creation time, modification
/// time), given whether their (cleanliness, version) group holds more than one image ID.
fn readme_cmp(
    rule: LatestRule,
    (a, ka): (&Archive, &Spec),
    (b, kb): (&Archive, &Spec),
    group_has_other_ids: bool,
) -> Ordering {
    let clean = |k: &Spec| rule.allow_dirty || !k.dirty();
    clean(ka)
        .cmp(&clean(kb))
        .then_with(|| ka.version_rank().cmp(&kb.version_rank()))
        .then_with(|| {
            if group_has_other_ids {
                ka.created().cmp(&kb.created())
            } else {
                Ordering::Equal
            }
        })
        .then_with(|| ka.modified().cmp(&kb.modified()))
        .then_with(|| a.path.file_name().cmp(&b.path.file_name()))
        .then_with(|| a.path.cmp(&b.path))
}

/// Checks the store in `dir` against what the generator wrote there (`written`).
fn check_store(dir: &Path, written: &HashMap<PathBuf, Spec>) -> Result<(), TestCaseError> {
    let store = open_store(dir).unwrap();
    let spec = |a: &Archive| -> &Spec {
        written
            .get(&a.path)
            .unwrap_or_else(|| panic!("{:?} was not generated", a.path))
    };
    // The images none of whose archives passes the quick check, as the generator knows them.
    let all_broken: Vec<&str> = store
        .images()
        .into_iter()
        .filter(|image| {
            written
                .iter()
                .filter(|(p, k)| {
                    IMAGES[k.image] == *image
                        && Format::from_extension(
                            p.extension().and_then(|e| e.to_str()).unwrap_or(""),
                        )
                        .is_known()
                })
                .all(|(_, k)| k.broken())
        })
        .collect();
    for allow_dirty in [false, true] {
        let rule = LatestRule { allow_dirty };
        let listing = store.listing(&[], rule);
        let all_latest = store.latest_of(&[], rule);
        let deployed = deploy::deployment(&store, &[], "https://h", rule);
        // `latest` and `config` of every image answer unless an image has nothing sound.
        prop_assert_eq!(
            all_latest.is_err(),
            !all_broken.is_empty(),
            "{:?}",
            all_broken
        );
        prop_assert_eq!(
            deployed.is_err(),
            !all_broken.is_empty(),
            "{:?}: {:?}",
            all_broken,
            deployed.as_ref().err()
        );
        for image in store.images() {
            let rows: Vec<&Archive> = listing
                .iter()
                .copied()
                .filter(|a| a.name.image == image && a.name.format.is_known())
                .collect();
            // The archive `store.latest` resolves `IMAGE` to is the first row of `images`.
            prop_assert_eq!(&rows[0].path, &store.latest(image, rule).unwrap().path);
            // `latest` and `config` (every image, or this one) answer the first row of
            // `images` that the generator did not break.
            let sound = rows.iter().find(|a| !spec(a).broken());
            let one = store.latest_of(&[image.to_string()], rule);
            match sound {
                Some(sound) => {
                    prop_assert!(!all_broken.contains(&image));
                    prop_assert_eq!(&sound.path, &one.unwrap().chosen[image].path);
                    if let Ok(latest) = &all_latest {
                        prop_assert_eq!(&sound.path, &latest.chosen[image].path);
                    }
                    if let Ok((deployed, _)) = &deployed {
                        let url = &deployed.images[image].url;
                        prop_assert!(
                            url.ends_with(&sound.file_name()),
                            "{} {}",
                            url,
                            sound.file_name()
                        );
                    }
                    let (alone, _) =
                        deploy::deployment(&store, &[image.to_string()], "https://h", rule)
                            .map_err(|e| TestCaseError::fail(format!("config {image}: {e}")))?;
                    let url = &alone.images[image].url;
                    prop_assert!(
                        url.ends_with(&sound.file_name()),
                        "{} {}",
                        url,
                        sound.file_name()
                    );
                    // `clean` never removes it, whatever --keep.
                    for keep in 1..=3 {
                        let plan = store.clean_plan(&[image.to_string()], keep, rule);
                        prop_assert!(
                            !plan.doomed.iter().any(|a| a.path == sound.path),
                            "keep {} removes the latest",
                            keep
                        );
                    }
                }
                None => {
                    // Nothing passes: an error, and `clean` removes nothing of the image.
                    prop_assert!(all_broken.contains(&image));
                    prop_assert!(one.is_err());
                    prop_assert!(
                        deploy::deployment(&store, &[image.to_string()], "https://h", rule)
                            .is_err()
                    );
                    prop_assert!(
                        store
                            .clean_plan(&[image.to_string()], 1, rule)
                            .doomed
                            .is_empty()
                    );
                }
            }
            // The rows are in the README's order.
            let level = |x: &Archive| {
                let k = spec(x);
                (rule.allow_dirty || !k.dirty(), k.version_rank())
            };
            for pair in rows.windows(2) {
                let group_has_other_ids = rows
                    .iter()
                    .filter(|x| level(x) == level(pair[0]))
                    .any(|x| spec(x).build != spec(pair[0]).build);
                let order = readme_cmp(
                    rule,
                    (pair[0], spec(pair[0])),
                    (pair[1], spec(pair[1])),
                    group_has_other_ids,
                );
                prop_assert_eq!(
                    order,
                    Ordering::Greater,
                    "{:?} before {:?}",
                    pair[0].path,
                    pair[1].path
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
    ))]

    #[test]
    fn latest_images_config_and_clean_agree(specs in prop::collection::vec(spec(), 1..12)) {
        let dir = tempfile::tempdir().unwrap();
        let written = write_store(dir.path(), &specs);
        check_store(dir.path(), &written)?;
        // A second look (creation times now from the cache) gives the same answers.
        check_store(dir.path(), &written)?;
    }
}

/// Three archives of one image and version, of three image IDs: one created later but modified
/// earliest (a ZIP), one unreadable, one created earlier but modified last (a ZIP).
fn three_archives() -> Vec<Spec> {
    vec![
        Spec {
            image: 0,
            build: 1,
            version: 0,
            format: 1,
            content: 0,
            age_s: 40,
        },
        Spec {
            image: 0,
            build: 0,
            version: 0,
            format: 0,
            content: 1,
            age_s: 20,
        },
        Spec {
            image: 0,
            build: 2,
            version: 0,
            format: 1,
            content: 0,
            age_s: 0,
        },
    ]
}

/// The three archives: `latest` is the one created later, then the one created earlier, then
/// the unreadable one; `clean` keeps the first.
#[test]
fn three_archives_of_one_version() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_store(dir.path(), &three_archives());
    check_store(dir.path(), &written).unwrap();
    let store = open_store(dir.path()).unwrap();
    let rule = LatestRule::default();
    let (_, later) = image_tar(CREATED[1]);
    let (_, earlier) = image_tar(CREATED[2]);
    let rows: Vec<String> = store
        .listing(&[], rule)
        .iter()
        .map(|a| a.name.id.clone())
        .collect();
    assert_eq!(rows.len(), 3);
    // Created later first, then created earlier, then the unreadable one.
    assert_eq!(rows[0], later[7..19]);
    assert_eq!(rows[1], earlier[7..19]);
    let plan: Vec<String> = store
        .clean_plan(&[], 1, rule)
        .doomed
        .iter()
        .map(|a| a.name.id.clone())
        .collect();
    assert_eq!(plan.len(), 2);
    assert!(!plan.contains(&later[7..19].to_string()));
}

/// The same three archives, through the command line: `latest`, the first row of `images`,
/// `config` and what `clean` keeps (at every `--keep`) are the same file.
#[test]
fn three_archives_through_the_command_line() {
    let s = common::Scratch::new();
    write_store(&s.artifacts(), &three_archives());
    let (_, later) = image_tar(CREATED[1]);
    let run = |args: &[&str]| {
        let out = s.toolbox().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", common::stderr(&out));
        common::json(&out)
    };
    let latest = run(&["latest", "--json"]);
    let path = latest["web"]["path"].as_str().unwrap().to_string();
    assert!(path.contains(&later[7..19]), "{path}");
    let images = run(&["images", "--json"]);
    assert_eq!(images[0]["path"].as_str(), Some(path.as_str()));
    assert_eq!(images.as_array().unwrap().len(), 3);
    let config = run(&["config", "--baseurl", "https://h", "--json"]);
    let url = config["images"]["web"]["url"].as_str().unwrap();
    assert!(path.ends_with(url.rsplit('/').next().unwrap()), "{url}");
    for keep in ["1", "2", "3"] {
        let removed = run(&["clean", "--dry-run", "--keep", keep, "--json"]);
        assert!(
            !removed
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["path"].as_str() == Some(path.as_str())),
            "--keep {keep} removes the latest: {removed}"
        );
    }
    // Removing for real leaves the latest.
    run(&["clean", "--json"]);
    let left = run(&["images", "--json"]);
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_eq!(left[0]["path"].as_str(), Some(path.as_str()));
}
