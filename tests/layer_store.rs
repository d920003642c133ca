//! The layer store, end to end against real engines (Docker 20.10, and 26.1 in both stores):
//! versions written with `update-image --store` share their layers; every command reads the
//! `.ref` archives; skopeo and docker read what the store writes; `clean` frees exactly the
//! unshared blobs; `convert` round trips keep the ID; a damaged blob is named with every
//! archive that uses it; a killed run and concurrent runs leave every `.ref` complete.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{
    Scratch, TestRegistry, docker, docker_ok, json, ok, scratch_context, stderr, stdout, toolbox,
    unique_image,
};

/// The blob files of the store at `art`.
fn blob_files(art: &Path) -> BTreeSet<String> {
    match fs::read_dir(art.join("blobs/sha256")) {
        Ok(entries) => entries
            .map(|e| format!("sha256:{}", e.unwrap().file_name().to_string_lossy()))
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// The digests the `.ref` at `path` leads to (its manifest or index, what they name), as far
/// as the store holds them.
fn needed(art: &Path, reference: &Path) -> BTreeSet<String> {
    common::ref_blobs(art, reference)
        .into_iter()
        .map(|(digest, _)| digest)
        .collect()
}

/// Builds `image:version` from `ctx` (whose content file says `content`), with the engine's
/// classic builder; returns the engine's full ID.
fn build(s: &Scratch, host: &str, image: &str, version: &str, ctx: &Path, content: &str) -> String {
    fs::write(ctx.join("content.txt"), content).unwrap();
    common::build(s, host, image, version, ctx)
}

fn store_version(s: &Scratch, host: &str, image: &str, version: &str) -> serde_json::Value {
    json(&ok(toolbox(
        s,
        host,
        &[
            "update-image",
            image,
            "--version",
            version,
            "--store",
            "--json",
        ],
    )))
}

/// Flips one byte in the middle of the file at `path`.
fn flip_middle(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    fs::write(path, bytes).unwrap();
}

/// Removes the images `references` from the engine at `host` (those missing are passed over).
fn remove_images(s: &Scratch, host: &str, references: &[&str]) {
    common::deleting(|| {
        let mut args = vec!["rmi", "-f"];
        args.extend(references);
        let _ = docker(s, host).args(&args).output();
    });
}

/// The series every engine runs.
fn series(flavour: &str) {
    let host = common::engine_flavour(flavour);
    let s = Scratch::new();
    let art = s.artifacts();
    let image = unique_image("store");
    let ctx = scratch_context(s.path(), "one", "");
    let id1 = build(&s, &host, &image, "1.0.1", &ctx, "version one");
    let id2 = build(&s, &host, &image, "1.0.2", &ctx, "version two");

    // Two versions into the store: a .ref each, the shared layer once.
    let first = store_version(&s, &host, &image, "1.0.1");
    assert_eq!(first["format"], "ref");
    assert_eq!(first["written"], true);
    let second = store_version(&s, &host, &image, "1.0.2");
    let ref1 = s.path().join(first["path"].as_str().unwrap());
    let ref2 = s.path().join(second["path"].as_str().unwrap());
    let short = |id: &str| id.trim_start_matches("sha256:")[..12].to_string();
    assert!(
        ref2.to_string_lossy()
            .ends_with(&format!("_1.0.2_{}.ref", short(&id2)))
    );
    assert!(art.join("oci-layout").is_file());
    let (n1, n2) = (needed(&art, &ref1), needed(&art, &ref2));
    let manifest2 = needed_root(&ref2);
    assert!(!n1.is_disjoint(&n2), "the versions share their base layer");
    assert_eq!(blob_files(&art), &n1 | &n2, "each blob once, nothing else");
    // Current: nothing written again.
    let again = store_version(&s, &host, &image, "1.0.2");
    assert_eq!(again["written"], false);
    // Without --store, the .ref of this ID is current as well.
    let plain = json(&ok(toolbox(
        &s,
        &host,
        &["update-image", &image, "--version", "1.0.2", "--json"],
    )));
    assert_eq!(plain["written"], false);
    assert_eq!(plain["format"], "ref");

    // index.json names each .ref by its stem, and skopeo finds it.
    let stem2 = ref2.file_stem().unwrap().to_string_lossy().to_string();
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(art.join("index.json")).unwrap()).unwrap();
    let names: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert!(names.contains(&stem2.as_str()), "{names:?} {index}");
    let layout_ref = format!("oci:{}:{stem2}", art.display());
    let ref_json: serde_json::Value = serde_json::from_slice(&fs::read(&ref2).unwrap()).unwrap();
    // The containerd store's manifests are kept as they are (their digest is the image's ID);
    // a Docker-typed one (BuildKit's) is listed in index.json, but Debian 12's skopeo 1.9.3
    // only looks at OCI-typed descriptors there. The store's own manifests are OCI-typed.
    let oci_typed = ref_json["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
        || ref_json["mediaType"] == "application/vnd.oci.image.index.v1+json";
    assert!(
        oci_typed || flavour == "26-containerd",
        "the store writes OCI manifests: {ref_json}"
    );
    let copied = format!("{image}:copied");
    if oci_typed {
        let inspected = common::skopeo(&s)
            .args(["inspect", &layout_ref])
            .output()
            .unwrap();
        assert!(
            inspected.status.success(),
            "{} {}",
            stderr(&inspected),
            fs::read_to_string(art.join("index.json")).unwrap()
        );
        assert_eq!(json(&inspected)["Digest"], ref_json["digest"]);

        // skopeo copies the image out; docker loads it with the engine's ID.
        let (dest, kind) = if flavour == "26-containerd" {
            (s.path().join("copy.oci.tar"), "oci-archive")
        } else {
            (s.path().join("copy.tar"), "docker-archive")
        };
        let out = common::skopeo(&s)
            .args([
                "copy",
                &layout_ref,
                &format!("{kind}:{}:{copied}", dest.display()),
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        docker_ok(&s, &host, &["load", "-i", dest.to_str().unwrap()]);
        let loaded = docker_ok(
            &s,
            &host,
            &["image", "inspect", "--format", "{{.Id}}", &copied],
        );
        assert_eq!(
            loaded, id2,
            "skopeo's copy of the store loads with the engine's ID"
        );
    }

    // Every command reads .ref archives.
    let listed = json(&ok(toolbox(&s, &host, &["images", &image, "--json"])));
    let rows = listed.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["format"], "ref");
    let stored: u64 = n2
        .iter()
        .map(|d| {
            fs::metadata(art.join("blobs/sha256").join(&d[7..]))
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(
        rows[0]["size"], stored,
        "SIZE is the image's bytes in the store"
    );
    let latest = stdout(&ok(toolbox(&s, &host, &["latest", &image])));
    assert_eq!(s.path().join(latest.trim()), ref2);
    ok(toolbox(&s, &host, &["verify"]));
    let inspect = json(&ok(toolbox(
        &s,
        &host,
        &["inspect", &format!("{image}:1.0.2"), "--json"],
    )));
    assert!(inspect.to_string().contains(&short(&id2)), "{inspect}");
    let root = s.path().join("root");
    ok(toolbox(
        &s,
        &host,
        &["extract", &format!("{image}:1.0.2"), root.to_str().unwrap()],
    ));
    assert_eq!(
        fs::read_to_string(root.join("content.txt")).unwrap(),
        "version two"
    );
    ok(toolbox(
        &s,
        &host,
        &["config", "--baseurl", "http://cdn.example/a", &image],
    ));

    // load composes the tar from the blobs; the engine gets the image the name says.
    docker_ok(
        &s,
        &host,
        &["rmi", "-f", &format!("{image}:1.0.2"), &copied],
    );
    let loaded = stdout(&ok(toolbox(
        &s,
        &host,
        &["load", &format!("{image}:1.0.2")],
    )));
    assert!(loaded.contains(&image), "{loaded}");
    let back = docker_ok(
        &s,
        &host,
        &[
            "image",
            "inspect",
            "--format",
            "{{.Id}}",
            &format!("{image}:1.0.2"),
        ],
    );
    assert_eq!(back, id2);

    // df: what is on disk and what full copies would take.
    let df = json(&ok(toolbox(&s, &host, &["df", "--json"])));
    assert!(
        df["as_full_copies"].as_u64().unwrap() > df["on_disk"].as_u64().unwrap(),
        "{df}"
    );
    assert_eq!(df["images"][0]["archives"], 2);

    // clean frees exactly the blobs only the removed version used.
    let dry = ok(toolbox(&s, &host, &["clean", &image, "--dry-run"]));
    assert!(stderr(&dry).contains("would free"), "{}", stderr(&dry));
    assert_eq!(blob_files(&art), &n1 | &n2, "a dry run removes nothing");
    let cleaned = ok(toolbox(&s, &host, &["clean", &image]));
    assert!(stdout(&cleaned).contains(ref1.file_name().unwrap().to_str().unwrap()));
    assert!(stderr(&cleaned).contains("freed"), "{}", stderr(&cleaned));
    assert_eq!(blob_files(&art), n2, "the shared blobs stay, the others go");
    ok(toolbox(&s, &host, &["verify"]));

    // convert round trips keep the ID: .ref -> .zip -> .ref, and out as a .docker that docker
    // loads with the engine's ID.
    let zip = stdout(&ok(toolbox(
        &s,
        &host,
        &["convert", ref2.to_str().unwrap(), "--to", "zip"],
    )));
    let zip = s.path().join(zip.trim());
    assert!(
        zip.exists() && !ref2.exists(),
        "the source goes without --keep"
    );
    ok(toolbox(&s, &host, &["verify", zip.to_str().unwrap()]));
    let unzip = s
        .command("unzip")
        .args(["-t", zip.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(unzip.status.success(), "{}", stdout(&unzip));
    let back = stdout(&ok(toolbox(
        &s,
        &host,
        &["convert", zip.to_str().unwrap(), "--to", "ref", "--keep"],
    )));
    assert_eq!(s.path().join(back.trim()), ref2);
    assert!(zip.exists(), "--keep keeps the source");
    // The config and layers again (a classic store's manifest is the store's own, and may
    // differ in its annotations; the ID is the config's digest, or the manifest's kept as is).
    let without_root = |set: BTreeSet<String>, r: &Path| {
        let mut set = set;
        set.remove(&needed_root(r));
        set
    };
    let mut expected = n2.clone();
    expected.remove(&manifest2);
    assert_eq!(without_root(needed(&art, &ref2), &ref2), expected);
    let tar = stdout(&ok(toolbox(
        &s,
        &host,
        &[
            "convert",
            ref2.to_str().unwrap(),
            "--to",
            "docker",
            "--keep",
        ],
    )));
    docker_ok(&s, &host, &["rmi", "-f", &format!("{image}:1.0.2")]);
    let tar = s.path().join(tar.trim());
    // skopeo reads the self-contained archive too.
    let read = common::skopeo(&s)
        .args(["inspect", &format!("docker-archive:{}", tar.display())])
        .output()
        .unwrap();
    assert!(read.status.success(), "{}", stderr(&read));
    docker_ok(&s, &host, &["load", "-i", tar.to_str().unwrap()]);
    let back = docker_ok(
        &s,
        &host,
        &[
            "image",
            "inspect",
            "--format",
            "{{.Id}}",
            &format!("{image}:1.0.2"),
        ],
    );
    assert_eq!(
        back, id2,
        "docker loads the .docker made from the store with the same ID"
    );
    // A .ref twin known sound lets the .docker go (unless it is the newest: `latest` returns
    // it); the .zip made for shipping stays.
    let touched = s
        .command("touch")
        .args(["-d", "2020-01-01", tar.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(touched.success());
    ok(toolbox(&s, &host, &["verify", ref2.to_str().unwrap()]));
    ok(toolbox(&s, &host, &["clean", &image]));
    assert!(!tar.exists());
    assert!(zip.exists() && ref2.exists());
    let _ = id1;
    remove_images(
        &s,
        &host,
        &[&format!("{image}:1.0.1"), &format!("{image}:1.0.2")],
    );
}

#[test]
fn a_series_in_the_store_on_docker_20_10() {
    series("20.10");
}

#[test]
fn a_series_in_the_store_on_docker_26_classic() {
    series("26-classic");
}

#[test]
fn a_series_in_the_store_on_docker_26_containerd() {
    series("26-containerd");
}

/// Two versions sharing a large layer, in the store of a fresh scratch directory.
fn two_versions(s: &Scratch, host: &str) -> (String, PathBuf, PathBuf) {
    let image = unique_image("shared");
    let ctx = scratch_context(s.path(), "x", "COPY big /big\n");
    let big: Vec<u8> = (0..4_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(ctx.join("big"), big).unwrap();
    build(s, host, &image, "2.0.1", &ctx, "one");
    build(s, host, &image, "2.0.2", &ctx, "two");
    let a = store_version(s, host, &image, "2.0.1");
    let b = store_version(s, host, &image, "2.0.2");
    (
        image,
        s.path().join(a["path"].as_str().unwrap()),
        s.path().join(b["path"].as_str().unwrap()),
    )
}

#[test]
fn a_damaged_blob_is_named_with_every_archive_that_uses_it() {
    let host = common::engine();
    let s = Scratch::new();
    let art = s.artifacts();
    let (image, ref1, ref2) = two_versions(&s, &host);
    let shared: Vec<String> = needed(&art, &ref1)
        .intersection(&needed(&art, &ref2))
        .cloned()
        .collect();
    let largest = shared
        .iter()
        .max_by_key(|d| {
            fs::metadata(art.join("blobs/sha256").join(&d[7..]))
                .unwrap()
                .len()
        })
        .unwrap();
    let path = art.join("blobs/sha256").join(&largest[7..]);
    flip_middle(&path);

    let out = toolbox(&s, &host, &["verify", ref1.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let said = stdout(&out);
    assert!(said.contains(&largest[7..]), "{said}");
    for r in [&ref1, &ref2] {
        assert!(
            said.contains(r.file_name().unwrap().to_str().unwrap()),
            "{said}"
        );
    }
    let root = s.path().join("root");
    let out = toolbox(
        &s,
        &host,
        &["extract", &format!("{image}:2.0.2"), root.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!root.join("big").exists() || fs::read_dir(&root).is_err());
    // With 2.0.1 in the engine, a thin load of 2.0.2 would leave the damaged (shared) layer
    // out: with neither there, it must be sent, and it is refused.
    remove_images(
        &s,
        &host,
        &[&format!("{image}:2.0.1"), &format!("{image}:2.0.2")],
    );
    let out = toolbox(&s, &host, &["load", &format!("{image}:2.0.2")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let registry = TestRegistry::start(None);
    let out = toolbox(
        &s,
        &host,
        &[
            "push",
            ref2.to_str().unwrap(),
            &format!("{}/{image}:2", registry.host),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

#[test]
fn push_sends_the_stored_blobs_as_they_are() {
    let host = common::engine();
    let s = Scratch::new();
    let art = s.artifacts();
    let (image, _, ref2) = two_versions(&s, &host);
    let registry = TestRegistry::start(None);
    let target = format!("{}/{image}:2", registry.host);
    let pushed = json(&ok(toolbox(
        &s,
        &host,
        &["push", ref2.to_str().unwrap(), &target, "--json"],
    )));
    assert!(pushed["digest"].as_str().unwrap().starts_with("sha256:"));
    // Every layer the registry holds is a blob of the store, byte for byte.
    for digest in needed(&art, &ref2) {
        let stored = art.join("blobs/sha256").join(&digest[7..]);
        let doc = serde_json::from_slice::<serde_json::Value>(&fs::read(&stored).unwrap()).is_ok();
        if !doc {
            assert!(
                registry.blob_file(&digest).exists(),
                "layer {digest} pushed as stored"
            );
        }
    }
    remove_images(
        &s,
        &host,
        &[&format!("{image}:2.0.1"), &format!("{image}:2.0.2")],
    );
}

#[test]
fn a_killed_store_write_leaves_every_ref_complete() {
    let host = common::engine();
    let s = Scratch::new();
    let art = s.artifacts();
    let (image, _, _) = two_versions(&s, &host);
    let ctx = s.path().join("ctx");
    let noise: Vec<u8> = (0..24_000_000u32)
        .map(|i| (i.wrapping_mul(2_246_822_519) >> 11) as u8)
        .collect();
    fs::write(ctx.join("big"), noise).unwrap();
    build(&s, &host, &image, "2.0.3", &ctx, "three");
    for delay in [20u64, 120, 400, 900] {
        let mut child = s
            .toolbox_std()
            .env("DOCKER_HOST", &host)
            .args([
                "update-image",
                &image,
                "--version",
                "2.0.3",
                "--store",
                "--force",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
        // Whatever is left, every .ref there is complete.
        let verified = ok(toolbox(&s, &host, &["verify", "--json"]));
        for row in json(&verified).as_array().unwrap() {
            assert_eq!(row["ok"], true, "after a kill at {delay} ms: {row}");
        }
    }
    // The next run that takes the lock removes the leftovers, and finishes the job.
    ok(toolbox(
        &s,
        &host,
        &["update-image", &image, "--version", "2.0.3", "--store"],
    ));
    let leftovers: Vec<String> = common::Scratch::files(&s)
        .into_iter()
        .filter(|f| f.contains(".toolbox-tmp."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    ok(toolbox(&s, &host, &["verify"]));
    assert!(art.join("index.json").exists());
    remove_images(
        &s,
        &host,
        &[
            &format!("{image}:2.0.1"),
            &format!("{image}:2.0.2"),
            &format!("{image}:2.0.3"),
        ],
    );
}

#[test]
fn concurrent_store_writes_and_a_clean_end_with_every_ref_complete() {
    let host = common::engine();
    let s = Scratch::new();
    let (image, _, _) = two_versions(&s, &host);
    let other = unique_image("other");
    let ctx = scratch_context(&s.path().join("o"), "other", "");
    build(&s, &host, &other, "1.0", &ctx, "other");
    let run = |args: Vec<String>| {
        let s = &s;
        let host = host.clone();
        move || {
            let mut cmd = s.toolbox_std();
            cmd.env("DOCKER_HOST", &host).args(&args);
            cmd.output().unwrap()
        }
    };
    let outs: Vec<std::process::Output> = std::thread::scope(|scope| {
        let jobs = [
            run(vec![
                "update-image".into(),
                other.clone(),
                "--version".into(),
                "1.0".into(),
                "--store".into(),
            ]),
            run(vec![
                "update-image".into(),
                image.clone(),
                "--version".into(),
                "2.0.2".into(),
                "--store".into(),
                "--force".into(),
            ]),
            run(vec!["clean".into()]),
        ];
        let handles: Vec<_> = jobs.into_iter().map(|j| scope.spawn(j)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in &outs {
        assert!(out.status.success(), "{}", stderr(out));
    }
    let verified = json(&ok(toolbox(&s, &host, &["verify", "--json"])));
    let rows = verified.as_array().unwrap();
    assert!(rows.len() >= 2, "{verified}");
    for row in rows {
        assert_eq!(row["ok"], true, "{row}");
    }
    remove_images(
        &s,
        &host,
        &[
            &format!("{image}:2.0.1"),
            &format!("{image}:2.0.2"),
            &format!("{other}:1.0"),
        ],
    );
}

#[test]
fn config_store_true_writes_ref_archives() {
    let host = common::engine();
    let s = Scratch::new();
    let image = unique_image("cfg");
    let ctx = scratch_context(s.path(), "cfg", "");
    build(&s, &host, &image, "1.0", &ctx, "cfg");
    let config = s.path().join("toolbox.yaml");
    fs::write(&config, "store: true\nlayer_compression: zstd\n").unwrap();
    let out = json(&ok(toolbox(
        &s,
        &host,
        &[
            "--config",
            config.to_str().unwrap(),
            "update-image",
            &image,
            "--version",
            "1.0",
            "--json",
        ],
    )));
    assert_eq!(out["format"], "ref");
    let r = s.path().join(out["path"].as_str().unwrap());
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(
            s.artifacts()
                .join("blobs/sha256")
                .join(&needed_root(&r)[7..]),
        )
        .unwrap(),
    )
    .unwrap();
    let types: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    // A containerd-store engine gives compressed layers, kept as they are; a classic store's
    // plain layers are compressed as asked.
    assert!(
        types
            .iter()
            .all(|t| t.ends_with("+zstd") || t.ends_with("gzip")),
        "{types:?}"
    );
    ok(toolbox(&s, &host, &["verify"]));
    remove_images(&s, &host, &[&format!("{image}:1.0")]);
}

fn needed_root(reference: &Path) -> String {
    let r: serde_json::Value = serde_json::from_slice(&fs::read(reference).unwrap()).unwrap();
    r["digest"].as_str().unwrap().to_string()
}

#[test]
fn update_image_store_clean_frees_the_old_versions_blobs_and_keeps_a_zip_twin() {
    let host = common::engine();
    let s = Scratch::new();
    let art = s.artifacts();
    let image = unique_image("upclean");
    let ctx = scratch_context(s.path(), "a", "");
    build(&s, &host, &image, "3.0.1", &ctx, "first");
    build(&s, &host, &image, "3.0.2", &ctx, "second");
    let first = store_version(&s, &host, &image, "3.0.1");
    let ref1 = s.path().join(first["path"].as_str().unwrap());
    // A .zip of the new version beside its .ref: a file made for shipping.
    let zip = json(&ok(toolbox(
        &s,
        &host,
        &[
            "update-image",
            &image,
            "--version",
            "3.0.2",
            "--compress",
            "--json",
        ],
    )));
    let zip = s.path().join(zip["path"].as_str().unwrap());
    let out = json(&ok(toolbox(
        &s,
        &host,
        &[
            "update-image",
            &image,
            "--version",
            "3.0.2",
            "--store",
            "--clean",
            "--json",
        ],
    )));
    let ref2 = s.path().join(out["path"].as_str().unwrap());
    assert_eq!(out["format"], "ref");
    assert!(!ref1.exists(), "the older version is removed");
    assert!(zip.exists(), "the .zip twin stays");
    assert_eq!(
        blob_files(&art),
        needed(&art, &ref2),
        "the blobs only the removed version used are gone"
    );
    ok(toolbox(&s, &host, &["verify"]));
    remove_images(
        &s,
        &host,
        &[&format!("{image}:3.0.1"), &format!("{image}:3.0.2")],
    );
}

#[test]
fn a_docker_twin_stays_when_its_ref_twin_went_bad_after_it_was_verified() {
    let host = common::engine();
    let s = Scratch::new();
    let art = s.artifacts();
    let image = unique_image("twin");
    let ctx = scratch_context(s.path(), "t", "");
    build(&s, &host, &image, "4.0", &ctx, "twin");
    let written = store_version(&s, &host, &image, "4.0");
    let reference = s.path().join(written["path"].as_str().unwrap());
    let tar = stdout(&ok(toolbox(
        &s,
        &host,
        &[
            "convert",
            reference.to_str().unwrap(),
            "--to",
            "docker",
            "--keep",
        ],
    )));
    let tar = s.path().join(tar.trim());
    // The .ref is the newer twin (latest returns it), and was verified.
    let touched = s
        .command("touch")
        .args(["-d", "2020-01-01", tar.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(touched.success());
    ok(toolbox(&s, &host, &["verify", reference.to_str().unwrap()]));
    // Then a blob of the store goes bad: the .docker is the last sound copy.
    let largest = needed(&art, &reference)
        .into_iter()
        .max_by_key(|d| {
            fs::metadata(art.join("blobs/sha256").join(&d[7..]))
                .unwrap()
                .len()
        })
        .unwrap();
    let path = art.join("blobs/sha256").join(&largest[7..]);
    flip_middle(&path);
    ok(toolbox(&s, &host, &["clean", &image]));
    assert!(tar.exists(), "the only sound copy stays");
    ok(toolbox(&s, &host, &["verify", tar.to_str().unwrap()]));
    remove_images(&s, &host, &[&format!("{image}:4.0")]);
}

/// Runs the binary in `s` (no engine).
fn run(s: &Scratch, args: &[&str]) -> std::process::Output {
    let mut cmd = s.toolbox_std();
    cmd.args(args);
    common::output_within(cmd, Duration::from_secs(60), &format!("toolbox {args:?}"))
}

#[test]
fn hostile_ref_archives_and_layouts_are_refused_in_bounded_time() {
    let s = Scratch::new();
    let art = s.artifacts();
    let blobs = art.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    fs::write(art.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    fs::write(
        art.join("index.json"),
        br#"{"schemaVersion":2,"manifests":[]}"#,
    )
    .unwrap();
    let put = |bytes: &[u8]| {
        let digest = common::images::sha256(bytes);
        fs::write(blobs.join(&digest[7..]), bytes).unwrap();
        digest
    };
    let reference = |name: &str, media_type: &str, digest: &str, size: usize| {
        fs::write(
            art.join(name),
            serde_json::to_vec(&serde_json::json!({
                "mediaType": media_type, "digest": digest, "size": size
            }))
            .unwrap(),
        )
        .unwrap();
    };
    const INDEX: &str = "application/vnd.oci.image.index.v1+json";
    const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    // An index listing a second index 50 times, which lists the first: a loop, and breadth.
    let leaf = put(br#"{"schemaVersion":2,"manifests":[]}"#);
    let inner = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": (0..50).map(|_| serde_json::json!({
            "mediaType": INDEX, "digest": leaf, "size": 34
        })).collect::<Vec<_>>(),
    }))
    .unwrap();
    let inner_digest = put(&inner);
    let outer = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": (0..50).map(|_| serde_json::json!({
            "mediaType": INDEX, "digest": inner_digest, "size": inner.len()
        })).collect::<Vec<_>>(),
    }))
    .unwrap();
    let outer_digest = put(&outer);
    reference("loop_1_0123456789ab.ref", INDEX, &outer_digest, outer.len());
    // A manifest naming a layer by a digest that climbs out of the store.
    let climbing = br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:../../../etc/passwd","size":1},"layers":[]}"#;
    let climbing_digest = put(climbing);
    reference(
        "climb_1_0123456789ab.ref",
        MANIFEST,
        &climbing_digest,
        climbing.len(),
    );
    // A blob that is a link to a file outside.
    let linked = "sha256:".to_string() + &"e".repeat(64);
    std::os::unix::fs::symlink("/etc/hostname", blobs.join("e".repeat(64))).unwrap();
    reference("linked_1_0123456789ab.ref", MANIFEST, &linked, 10);
    // A size that is not the blob's, and a media type that is no manifest's.
    reference("sized_1_0123456789ab.ref", MANIFEST, &outer_digest, 7);
    reference(
        "typed_1_0123456789ab.ref",
        "text/plain",
        &outer_digest,
        outer.len(),
    );
    // A blob that is a FIFO: never opened for reading (it would block).
    let fifo = "c".repeat(64);
    let made = s.command("mkfifo").arg(blobs.join(&fifo)).status().unwrap();
    assert!(made.success());
    reference(
        "fifo_1_0123456789ab.ref",
        MANIFEST,
        &format!("sha256:{fifo}"),
        0,
    );
    // A .ref with no layer store above it.
    let lonely = s.path().join("elsewhere");
    fs::create_dir_all(&lonely).unwrap();
    fs::write(
        lonely.join("lonely_1_0123456789ab.ref"),
        serde_json::to_vec(&serde_json::json!({
            "mediaType": MANIFEST, "digest": outer_digest, "size": outer.len()
        }))
        .unwrap(),
    )
    .unwrap();

    let verified = run(&s, &["verify", "--json"]);
    assert_eq!(verified.status.code(), Some(1), "{}", stderr(&verified));
    let rows = json(&verified);
    assert_eq!(rows.as_array().unwrap().len(), 6, "{rows}");
    for row in rows.as_array().unwrap() {
        assert_eq!(row["ok"], false, "{row}");
        assert!(
            row["problem"].as_str().is_some_and(|p| !p.is_empty()),
            "{row}"
        );
    }
    let out = run(
        &s,
        &[
            "verify",
            lonely.join("lonely_1_0123456789ab.ref").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("oci-layout"), "{}", stdout(&out));
    for args in [
        &["images", "--check"][..],
        &["images", "--json"][..],
        &["df", "--json"][..],
    ] {
        let out = run(&s, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    let latest = run(&s, &["latest", "loop"]);
    assert_eq!(latest.status.code(), Some(1), "{}", stderr(&latest));
    // Nothing readable: clean removes nothing and collects nothing.
    let before = blob_files(&art);
    let cleaned = run(&s, &["clean"]);
    assert!(cleaned.status.success(), "{}", stderr(&cleaned));
    assert_eq!(blob_files(&art), before);
    assert!(art.join("climb_1_0123456789ab.ref").exists());
    assert_eq!(
        fs::read_link(blobs.join("e".repeat(64))).unwrap(),
        Path::new("/etc/hostname")
    );
}

#[test]
fn a_damaged_manifest_stops_the_collection_and_force_writes_the_blobs_again() {
    let host = common::engine();
    let s = Scratch::new();
    let art = s.artifacts();
    let (image, ref1, ref2) = two_versions(&s, &host);
    // The manifest of the version kept goes bad: clean must not take its layers.
    let manifest = art.join("blobs/sha256").join(&needed_root(&ref2)[7..]);
    let before = blob_files(&art);
    fs::write(&manifest, b"{ not json").unwrap();
    let cleaned = ok(toolbox(&s, &host, &["clean", &image, "--keep", "2"]));
    assert!(
        stderr(&cleaned).contains("not collected"),
        "{}",
        stderr(&cleaned)
    );
    assert_eq!(blob_files(&art), before, "nothing collected");
    let verified = toolbox(&s, &host, &["verify", ref2.to_str().unwrap()]);
    assert_eq!(verified.status.code(), Some(1));
    assert!(
        stdout(&verified).contains("damaged"),
        "{}",
        stdout(&verified)
    );
    // A layer blob of the right size with a flipped byte: --force writes it again.
    let shared: Vec<String> = needed(&art, &ref1)
        .into_iter()
        .filter(|d| {
            fs::metadata(art.join("blobs/sha256").join(&d[7..]))
                .unwrap()
                .len()
                > 100_000
        })
        .collect();
    let layer = art.join("blobs/sha256").join(&shared[0][7..]);
    flip_middle(&layer);
    assert_eq!(
        toolbox(&s, &host, &["verify", ref1.to_str().unwrap()])
            .status
            .code(),
        Some(1)
    );
    ok(toolbox(
        &s,
        &host,
        &[
            "update-image",
            &image,
            "--version",
            "2.0.1",
            "--store",
            "--force",
        ],
    ));
    ok(toolbox(&s, &host, &["verify", ref1.to_str().unwrap()]));
    remove_images(
        &s,
        &host,
        &[&format!("{image}:2.0.1"), &format!("{image}:2.0.2")],
    );
}

#[test]
fn a_store_inside_another_and_a_linked_blobs_folder_are_refused() {
    let host = common::engine();
    let s = Scratch::new();
    let art = s.artifacts();
    let image = unique_image("nested");
    let ctx = scratch_context(s.path(), "n", "");
    build(&s, &host, &image, "1.0", &ctx, "nested");
    store_version(&s, &host, &image, "1.0");
    let inner = art.join("inner");
    fs::create_dir_all(&inner).unwrap();
    let out = toolbox(
        &s,
        &host,
        &[
            "--basedir",
            inner.to_str().unwrap(),
            "update-image",
            &image,
            "--version",
            "1.0",
            "--store",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("inside the layer store"),
        "{}",
        stderr(&out)
    );
    assert!(!inner.join("oci-layout").exists());
    // A blobs folder that is a link elsewhere: nothing is written or removed through it.
    let elsewhere = s.path().join("elsewhere");
    fs::create_dir_all(elsewhere.join("sha256")).unwrap();
    fs::write(elsewhere.join("sha256").join("f".repeat(64)), b"keep me").unwrap();
    fs::rename(art.join("blobs"), s.path().join("real-blobs")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, art.join("blobs")).unwrap();
    let cleaned = toolbox(&s, &host, &["clean"]);
    assert!(
        stderr(&cleaned).contains("not a folder"),
        "{}",
        stderr(&cleaned)
    );
    assert!(elsewhere.join("sha256").join("f".repeat(64)).exists());
    let out = toolbox(
        &s,
        &host,
        &[
            "update-image",
            &image,
            "--version",
            "1.0",
            "--store",
            "--force",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(fs::read_dir(elsewhere.join("sha256")).unwrap().count(), 1);
    remove_images(&s, &host, &[&format!("{image}:1.0")]);
}

#[test]
fn what_another_tool_listed_in_index_json_stays_with_its_blobs() {
    let host = common::engine();
    let s = Scratch::new();
    let art = s.artifacts();
    let (image, ref1, ref2) = two_versions(&s, &host);
    let n1 = needed(&art, &ref1);
    // skopeo (or any tool) names the first version in index.json under a name of its own.
    let mut index: serde_json::Value =
        serde_json::from_slice(&fs::read(art.join("index.json")).unwrap()).unwrap();
    let mut foreign: serde_json::Value = serde_json::from_slice(&fs::read(&ref1).unwrap()).unwrap();
    foreign["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "pinned"});
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .push(foreign.clone());
    fs::write(art.join("index.json"), index.to_string()).unwrap();
    let cleaned = ok(toolbox(&s, &host, &["clean", &image]));
    assert!(!ref1.exists(), "{}", stderr(&cleaned));
    assert!(
        n1.is_subset(&blob_files(&art)),
        "the pinned image's blobs stay"
    );
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(art.join("index.json")).unwrap()).unwrap();
    let entries = index["manifests"].as_array().unwrap();
    assert!(entries.contains(&foreign), "{index}");
    assert_eq!(
        entries.len(),
        2,
        "the pinned entry and the .ref kept: {index}"
    );
    let _ = ref2;
    remove_images(
        &s,
        &host,
        &[&format!("{image}:2.0.1"), &format!("{image}:2.0.2")],
    );
}
