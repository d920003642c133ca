//! `export` and `import`, end to end: a bundle of two images (a `.ref` from the layer store and
//! a `.zst`) loaded by `docker load` on every engine with the original IDs and tags, and read
//! by skopeo; a delta (`export --since`) that leaves out the base's blobs, imported into a
//! store holding the base and loaded with its ID; a delta whose base is missing, and hostile
//! files (a digest that lies, a self-naming index, a size that lies, paths outside the layout,
//! links, a manifest naming too many blobs), refused with nothing written.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use common::{
    Scratch, docker, docker_ok, json, ok, scratch_context, stderr, stdout, toolbox, unique_image,
};
use serde_json::json;

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Removes the images `references` from the engine at `host` (those missing are passed over).
fn remove_images(s: &Scratch, host: &str, references: &[&str]) {
    common::deleting(|| {
        let mut args = vec!["rmi", "-f"];
        args.extend(references);
        let _ = docker(s, host).args(&args).output();
    });
}

/// Builds `image:version` from `ctx` with `content` in its content file; returns the full ID.
fn build(s: &Scratch, host: &str, image: &str, version: &str, ctx: &Path, content: &str) -> String {
    fs::write(ctx.join("content.txt"), content).unwrap();
    common::build(s, host, image, version, ctx)
}

/// The 12 hex digits of an archive name's ID.
fn name_id(path: &str) -> String {
    let stem = Path::new(path).file_stem().unwrap().to_string_lossy();
    stem.rsplit('_').next().unwrap().to_string()
}

/// The blob digests a layout tar holds.
fn tar_blobs(bytes: &[u8]) -> BTreeSet<String> {
    common::tar_members(bytes)
        .keys()
        .filter_map(|k| k.strip_prefix("blobs/sha256/"))
        .map(|h| format!("sha256:{h}"))
        .collect()
}

/// A bundle of two images of two names (a `.ref` and a `.zst`) loads with `docker load` on the
/// engine `flavour` with the IDs and tags of the archives, and skopeo reads it.
fn bundle(flavour: &str) {
    let host = common::engine_flavour(flavour);
    let s = Scratch::new();
    let web = unique_image("exweb");
    let api = unique_image("exapi");
    let ctx = scratch_context(s.path(), "one", "");
    build(&s, &host, &web, "1.2.4", &ctx, "web");
    build(&s, &host, &api, "2.0+b7", &ctx, "api");
    let stored = json(&ok(toolbox(
        &s,
        &host,
        &[
            "update-image",
            &web,
            "--version",
            "1.2.4",
            "--store",
            "--json",
        ],
    )));
    let zst = json(&ok(toolbox(
        &s,
        &host,
        &[
            "update-image",
            &api,
            "--version",
            "2.0+b7",
            "--compress",
            "--format",
            "zst",
            "--json",
        ],
    )));
    let (ref_path, zst_path) = (
        stored["path"].as_str().unwrap().to_string(),
        zst["path"].as_str().unwrap().to_string(),
    );
    assert!(ref_path.ends_with(".ref") && zst_path.ends_with(".zst"));
    let web_tag = format!("{web}:1.2.4");
    let api_tag = format!("{api}:2.0-b7");

    let out = json(&ok(toolbox(
        &s,
        &host,
        &[
            "export",
            &format!("{web}:1.2.4"),
            &api,
            "-o",
            "bundle.tar",
            "--json",
        ],
    )));
    let file = s.path().join("bundle.tar");
    let bytes = fs::read(&file).unwrap();
    assert_eq!(out["bytes"], bytes.len() as u64);
    assert_eq!(out["base"], json!([]));
    let stem = |p: &str| {
        Path::new(p)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    assert_eq!(out["images"], json!([stem(&ref_path), stem(&zst_path)]));
    let members = common::tar_members(&bytes);
    for doc in ["oci-layout", "index.json", "manifest.json"] {
        assert!(members.contains_key(doc), "{doc}: {:?}", members.keys());
    }
    let index: serde_json::Value = serde_json::from_slice(&members["index.json"]).unwrap();
    let names: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["io.containerd.image.name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        names,
        [
            format!("docker.io/library/{web_tag}"),
            format!("docker.io/library/{api_tag}")
        ]
    );
    assert_eq!(
        index["manifests"][0]["annotations"]["io.toolbox.archive"],
        stem(&ref_path)
    );
    // Every blob once: as many blob members as distinct blobs.
    let blob_members = members
        .keys()
        .filter(|k| k.starts_with("blobs/sha256/"))
        .count();
    assert_eq!(blob_members, tar_blobs(&bytes).len());

    // skopeo reads it. A containerd-store engine's manifests are kept as they are (their
    // digest is the image's ID); where one is Docker-typed, Debian 12's skopeo 1.9.3 does not
    // look at its entry (it only matches OCI-typed descriptors).
    let entries = index["manifests"].as_array().unwrap();
    for (tag, entry) in [&web_tag, &api_tag].into_iter().zip(entries) {
        let oci_typed = entry["mediaType"] == MANIFEST || entry["mediaType"] == INDEX;
        assert!(
            oci_typed || flavour == "26-containerd",
            "{flavour}: the store's own manifests are OCI-typed: {entry}"
        );
        if !oci_typed {
            continue;
        }
        let inspected = common::skopeo(&s)
            .args(["inspect", &format!("oci-archive:{}:{tag}", file.display())])
            .output()
            .unwrap();
        assert!(inspected.status.success(), "{}", stderr(&inspected));
    }

    // docker load gives both images their IDs and tags.
    remove_images(&s, &host, &[&web_tag, &api_tag]);
    let loaded = docker_ok(&s, &host, &["load", "-i", file.to_str().unwrap()]);
    for (tag, archive) in [(&web_tag, &ref_path), (&api_tag, &zst_path)] {
        let id = docker_ok(&s, &host, &["image", "inspect", "--format", "{{.Id}}", tag]);
        assert!(
            id.starts_with(&format!("sha256:{}", name_id(archive))),
            "{flavour}: {tag} loaded as {id}, its archive is {archive} ({loaded})"
        );
    }
    remove_images(&s, &host, &[&web_tag, &api_tag]);
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine"
)]
fn a_bundle_loads_on_docker_20_10() {
    bundle("20.10");
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine"
)]
fn a_bundle_loads_on_docker_26_classic() {
    bundle("26-classic");
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine"
)]
fn a_bundle_loads_on_docker_26_containerd() {
    bundle("26-containerd");
}

/// `export --since N` of N+1 holds only what N lacks; imported into a store holding N it gives
/// N+1, which loads with its ID; into an empty store it is refused, naming N.
#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine"
)]
fn a_delta_holds_only_the_new_blobs_and_imports_over_its_base() {
    let host = common::engine_flavour("26-classic");
    let s = Scratch::new();
    let art = s.artifacts();
    let image = unique_image("exdelta");
    let ctx = scratch_context(s.path(), "one", "");
    build(&s, &host, &image, "1.0.1", &ctx, "version one");
    let id2 = build(&s, &host, &image, "1.0.2", &ctx, "version two");
    let mut refs = Vec::new();
    for version in ["1.0.1", "1.0.2"] {
        let out = json(&ok(toolbox(
            &s,
            &host,
            &[
                "update-image",
                &image,
                "--version",
                version,
                "--store",
                "--json",
            ],
        )));
        refs.push(s.path().join(out["path"].as_str().unwrap()));
    }
    let (n, n1) = (
        common::ref_blobs(&art, &refs[0]),
        common::ref_blobs(&art, &refs[1]),
    );
    let base: BTreeSet<&String> = n.iter().map(|(d, _)| d).collect();
    let new_bytes: u64 = n1
        .iter()
        .filter(|(d, _)| !base.contains(d))
        .map(|(_, size)| size)
        .sum();
    let shared: u64 = n1
        .iter()
        .filter(|(d, _)| base.contains(d))
        .map(|(_, size)| size)
        .sum();
    assert!(
        shared > 64 << 10,
        "the versions share a base layer: {n:?} {n1:?}"
    );

    let out = json(&ok(toolbox(
        &s,
        &host,
        &[
            "export",
            &format!("{image}:1.0.2"),
            "--since",
            &format!("{image}:1.0.1"),
            "-o",
            "delta.tar.zst",
            "--json",
        ],
    )));
    let stem = |p: &Path| p.file_stem().unwrap().to_string_lossy().into_owned();
    assert_eq!(out["base"], json!([stem(&refs[0])]));
    let delta = s.path().join("delta.tar.zst");
    let plain = zstd::decode_all(&fs::read(&delta).unwrap()[..]).unwrap();
    let held = tar_blobs(&plain);
    assert!(
        held.iter().all(|d| !base.contains(d)),
        "no blob of the base is in the delta: {held:?}"
    );
    assert!(
        (plain.len() as u64) <= new_bytes + (32 << 10),
        "the delta ({} bytes) is the new blobs ({new_bytes} bytes) and a few documents",
        plain.len()
    );
    let index: serde_json::Value =
        serde_json::from_slice(&common::tar_members(&plain)["index.json"]).unwrap();
    assert_eq!(index["annotations"]["io.toolbox.base"], stem(&refs[0]));

    // Into an empty store: refused, naming N, nothing written.
    let empty = s.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let out = toolbox(
        &s,
        &host,
        &["--basedir", "empty", "import", delta.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(&stem(&refs[0])), "{}", stderr(&out));
    assert_eq!(files(&empty), Vec::<String>::new());

    // Into a store holding N (imported from a bundle of N): N+1, which loads with its ID.
    ok(toolbox(
        &s,
        &host,
        &["export", refs[0].to_str().unwrap(), "-o", "n.tar"],
    ));
    let host_dir = s.path().join("host");
    let first = json(&ok(toolbox(
        &s,
        &host,
        &["--basedir", "host", "import", "n.tar", "--json"],
    )));
    assert_eq!(first["archives"][0]["written"], true);
    let out = json(&ok(toolbox(
        &s,
        &host,
        &[
            "--basedir",
            "host",
            "import",
            delta.to_str().unwrap(),
            "--json",
        ],
    )));
    let written = host_dir.join(refs[1].file_name().unwrap());
    assert!(written.is_file(), "{out}");
    assert_eq!(
        out["reused"].as_u64().unwrap() as usize,
        n1.len() - held.len()
    );
    assert_eq!(fs::read(&written).unwrap(), fs::read(&refs[1]).unwrap());
    let reference = format!("{image}:1.0.2");
    remove_images(&s, &host, &[&reference]);
    let loaded = ok(toolbox(
        &s,
        &host,
        &["--basedir", "host", "load", &reference],
    ));
    assert!(stdout(&loaded).contains(&id2), "{}", stdout(&loaded));
    assert!(
        ok(toolbox(
            &s,
            &host,
            &["--basedir", "host", "verify", &reference]
        ))
        .status
        .success()
    );
    remove_images(&s, &host, &[&format!("{image}:1.0.1"), &reference]);
}

/// A `docker save` tar of Docker 25 or later (an OCI layout with `manifest.json`) imports as a
/// `.ref` named by the engine's name and ID, which verifies.
fn docker_save_imports(flavour: &str) {
    let host = common::engine_flavour(flavour);
    let s = Scratch::new();
    let image = unique_image("exsaved");
    let ctx = scratch_context(s.path(), "one", "");
    let id = build(&s, &host, &image, "3.1", &ctx, "saved");
    let reference = format!("{image}:3.1");
    let saved = s.path().join("saved.tar");
    docker_ok(
        &s,
        &host,
        &["save", "-o", saved.to_str().unwrap(), &reference],
    );
    let out = json(&ok(toolbox(
        &s,
        &host,
        &["import", saved.to_str().unwrap(), "--json"],
    )));
    let short = &id.trim_start_matches("sha256:")[..12];
    let expected = s.artifacts().join(format!("{image}_3.1_{short}.ref"));
    assert!(expected.is_file(), "{flavour}: {out}");
    ok(toolbox(&s, &host, &["verify", &reference]));
    remove_images(&s, &host, &[&reference]);
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine"
)]
fn a_docker_save_of_docker_26_classic_imports() {
    docker_save_imports("26-classic");
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine"
)]
fn a_docker_save_of_docker_26_containerd_imports() {
    docker_save_imports("26-containerd");
}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != ".toolbox.lock")
        .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
        .collect();
    out.sort();
    out
}

/// A tar of `members` (path, bytes, kind) written with raw names, so that a test can write
/// what `tar` refuses to (`..`).
fn raw_tar(members: &[(String, Vec<u8>, tar::EntryType, Option<&str>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data, kind, link) in members {
        let mut header = tar::Header::new_gnu();
        {
            let raw = &mut header.as_old_mut().name;
            raw.fill(0);
            raw[..name.len()].copy_from_slice(name.as_bytes());
        }
        if let Some(link) = link {
            let raw = &mut header.as_old_mut().linkname;
            raw[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(*kind);
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0; 1024]);
    out
}

fn sha(bytes: &[u8]) -> String {
    common::images::sha256(bytes)
}

fn file(name: &str, data: Vec<u8>) -> (String, Vec<u8>, tar::EntryType, Option<&'static str>) {
    (name.to_string(), data, tar::EntryType::Regular, None)
}

fn blob(data: &[u8]) -> (String, Vec<u8>, tar::EntryType, Option<&'static str>) {
    file(
        &format!("blobs/sha256/{}", sha(data).trim_start_matches("sha256:")),
        data.to_vec(),
    )
}

/// The index.json of one image `root` named `stem`.
fn index_of(root: &serde_json::Value, stem: &str) -> Vec<u8> {
    let mut entry = root.clone();
    entry["annotations"] = json!({ "io.toolbox.archive": stem });
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [entry],
    }))
    .unwrap()
}

fn descriptor(media_type: &str, data: &[u8]) -> serde_json::Value {
    json!({ "mediaType": media_type, "digest": sha(data), "size": data.len() })
}

/// A small image's blobs (layer, config, manifest), the manifest's descriptor and the archive
/// stem its config digest gives.
fn small_image() -> (Vec<Vec<u8>>, serde_json::Value, String) {
    let layer = common::images::tar_of(&[("hello.txt".into(), b"hello".repeat(100))]);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": { "type": "layers", "diff_ids": [sha(&layer)] },
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
        "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", &layer)],
    }))
    .unwrap();
    let stem = format!("tiny_1.0_{}", &sha(&config)["sha256:".len()..][..12]);
    let root = descriptor(MANIFEST, &manifest);
    (vec![layer, config, manifest], root, stem)
}

/// Imports `tar` into a fresh, empty artifacts directory; returns the output and the files
/// the directory holds afterwards.
fn import_fresh(tar: &[u8], what: &str) -> (std::process::Output, Vec<String>) {
    let s = Scratch::new();
    let file = s.path().join(format!("{what}.tar"));
    fs::write(&file, tar).unwrap();
    let out = common::output_within(
        {
            let mut cmd = s.toolbox_std();
            cmd.args(["import", file.to_str().unwrap()]);
            cmd
        },
        std::time::Duration::from_secs(60),
        what,
    );
    let left = files(&s.artifacts());
    let outside: Vec<String> = files(s.path())
        .into_iter()
        .filter(|f| !f.starts_with("artifacts") && !f.ends_with(".tar"))
        .collect();
    assert!(outside.is_empty(), "{what}: written outside: {outside:?}");
    (out, left)
}

/// Hostile layout tars are refused, exit 1, with nothing written; the sound one they are made
/// from imports.
#[test]
fn hostile_files_are_refused_and_nothing_is_written() {
    let (blobs, root, stem) = small_image();
    let (layer, config, manifest) = (&blobs[0], &blobs[1], &blobs[2]);
    let sound = |index: Vec<u8>| {
        vec![
            blob(layer),
            blob(config),
            blob(manifest),
            file("index.json", index),
            file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        ]
    };
    // The sound file imports, and the .ref it writes verifies.
    {
        let s = Scratch::new();
        let path = s.path().join("sound.tar");
        fs::write(&path, raw_tar(&sound(index_of(&root, &stem)))).unwrap();
        let out = ok(s
            .toolbox()
            .args(["import", path.to_str().unwrap(), "--json"])
            .output()
            .unwrap());
        assert_eq!(json(&out)["archives"][0]["written"], true);
        assert!(s.artifacts().join(format!("{stem}.ref")).is_file());
        ok(s.toolbox().args(["verify", "tiny:1.0"]).output().unwrap());
    }

    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    // A layer whose bytes are not its name's digest.
    let mut members = sound(index_of(&root, &stem));
    let last = members[0].1.len() - 600;
    members[0].1[last] ^= 1;
    cases.push(("bad-digest", raw_tar(&members), "digest"));
    // A digest that is not sha256 and 64 hex digits.
    let mut bad_root = root.clone();
    bad_root["digest"] = json!("sha256:../../etc/passwd");
    cases.push((
        "bad-name",
        raw_tar(&sound(index_of(&bad_root, &stem))),
        "index.json",
    ));
    // An index that names itself: named by a digest its bytes cannot have.
    let fake = format!("sha256:{}", "ab".repeat(32));
    let selfish = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [{ "mediaType": INDEX, "digest": fake, "size": 200 }],
    }))
    .unwrap();
    let mut members = sound(index_of(
        &json!({ "mediaType": INDEX, "digest": fake, "size": selfish.len() }),
        &stem,
    ));
    members.push(file(&format!("blobs/sha256/{}", "ab".repeat(32)), selfish));
    cases.push(("self-index", raw_tar(&members), "digest"));
    // A size that lies.
    let mut lying = root.clone();
    lying["size"] = json!(root["size"].as_u64().unwrap() + 1);
    cases.push((
        "lying-size",
        raw_tar(&sound(index_of(&lying, &stem))),
        "bytes",
    ));
    // Paths outside the layout, and links.
    let mut members = sound(index_of(&root, &stem));
    members.push(file("../evil", b"x".to_vec()));
    cases.push(("climbing", raw_tar(&members), "leaves the layout"));
    let mut members = sound(index_of(&root, &stem));
    members.push(file("blobs/other/x", b"x".to_vec()));
    cases.push(("elsewhere", raw_tar(&members), "outside"));
    let mut members = sound(index_of(&root, &stem));
    members.push((
        format!("blobs/sha256/{}", "cd".repeat(32)),
        Vec::new(),
        tar::EntryType::Symlink,
        Some("/etc/passwd"),
    ));
    cases.push(("link", raw_tar(&members), "link"));
    // A name whose ID is not the image's.
    cases.push((
        "wrong-name",
        raw_tar(&sound(index_of(&root, "tiny_1.0_0123456789ab"))),
        "0123456789ab",
    ));
    // A manifest naming thousands of blobs.
    let many: Vec<serde_json::Value> = (0..20_000u32)
        .map(|i| {
            json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": sha(&i.to_le_bytes()),
                "size": 4,
            })
        })
        .collect();
    let big = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": descriptor("application/vnd.oci.image.config.v1+json", config),
        "layers": many,
    }))
    .unwrap();
    let mut members = sound(index_of(&descriptor(MANIFEST, &big), &stem));
    members.push(blob(&big));
    cases.push(("many-blobs", raw_tar(&members), "more than"));
    // Huge JSON.
    let mut members = sound(index_of(&root, &stem));
    members[3].1.resize(5 << 20, b' ');
    cases.push(("huge-index", raw_tar(&members), "bytes"));

    for (what, tar, says) in cases {
        let (out, left) = import_fresh(&tar, what);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{what}: {}", stderr(&out));
        assert_eq!(left, Vec::<String>::new(), "{what}: nothing written");
    }
}

/// An ending other than .tar and .tar.zst is wrong usage, naming the file.
#[test]
fn an_unknown_ending_is_wrong_usage() {
    let s = Scratch::new();
    let out = s
        .toolbox()
        .args(["export", "web:1.0", "-o", "bundle.zip"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("bundle.zip"), "{}", stderr(&out));
}

#[test]
fn a_killed_import_leaves_no_ref_and_the_next_run_completes() {
    use common::images::{self, Entry};
    // A bundle of one image with a large random layer, made without an engine: a classic
    // archive converted into the store, then exported.
    let s = Scratch::new();
    let big = images::layer(&[Entry::File("big.bin", &images::random_bytes(256 << 20, 3))]);
    let archive = images::image_archive(
        images::Layout::Classic,
        "killed:1.0.0",
        "2024-01-01T00:00:00Z",
        &[big],
    );
    let path = s
        .artifacts()
        .join(format!("killed_1.0.0_{}.docker", archive.short_id()));
    fs::write(&path, archive.tar()).unwrap();
    ok(s.toolbox()
        .args(["convert", path.to_str().unwrap(), "--to", "ref"])
        .output()
        .unwrap());
    let bundle = s.path().join("bundle.tar");
    ok(s.toolbox()
        .args(["export", "killed", "-o", bundle.to_str().unwrap()])
        .output()
        .unwrap());

    let target = s.path().join("target");
    fs::create_dir(&target).unwrap();
    let mut child = s
        .toolbox_std()
        .args([
            "import",
            bundle.to_str().unwrap(),
            "--basedir",
            target.to_str().unwrap(),
        ])
        .spawn()
        .unwrap();
    // Killed while it writes the large blob (a temporary file in the store's blob folder).
    let blobs = target.join("blobs/sha256");
    let writing = || {
        fs::read_dir(&blobs).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().contains("tmp"))
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !writing() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended before it could be killed"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the import never wrote"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let refs = |dir: &Path| {
        fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".ref"))
            .count()
    };
    assert_eq!(refs(&target), 0, "no .ref after a kill");
    let out = ok(s
        .toolbox()
        .args([
            "import",
            bundle.to_str().unwrap(),
            "--basedir",
            target.to_str().unwrap(),
        ])
        .output()
        .unwrap());
    assert_eq!(refs(&target), 1, "{}", common::stdout(&out));
    ok(s.toolbox()
        .args(["verify", "--basedir", target.to_str().unwrap()])
        .output()
        .unwrap());
}
