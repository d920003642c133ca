//! End-to-end tests of inspect, ID lookup, `images --created` and extract: the engine is the
//! oracle (`docker inspect`, `docker export`); hostile archives are made here.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::{Scratch, build, docker, docker_ok, json, ok, stderr, stdout, toolbox, unique_image};
use sha2::{Digest, Sha256};

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A context whose image has several layers that delete, replace and re-create files and
/// folders, with busybox to run the commands.
fn layered_context(dir: &Path, content: &str) -> std::path::PathBuf {
    let ctx = dir.join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::copy("/bin/busybox", ctx.join("busybox")).expect("busybox-static is installed");
    fs::write(ctx.join("content.txt"), content).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        r#"FROM scratch
COPY busybox /bin/busybox
COPY busybox /bin/sh
COPY content.txt /
ENV GREETING=hello PATH=/bin
LABEL org.example.team=release org.example.tier=web
RUN busybox mkdir -p /etc /data/keep /data/gone /opq/sub /data/ro \
 && echo one > /data/keep/a && echo two > /data/gone/b && echo three > /opq/sub/c \
 && echo f > /replace && busybox ln /data/keep/a /data/keep/hard \
 && busybox ln -s /data/keep/a /abs-link && busybox ln -s ../keep/a /data/rel-link \
 && busybox chmod 4711 /data/keep/a && busybox chmod 555 /data/ro && busybox mkfifo /data/fifo
RUN busybox rm -rf /data/gone /replace /content.txt /opq \
 && busybox mkdir /replace && echo new > /replace/file \
 && busybox mkdir -p /opq/sub2 && echo d > /opq/sub2/d && busybox chmod 700 /opq \
 && echo again > /content.txt && busybox rm /abs-link && busybox ln -s /replace/file /abs-link
CMD ["/bin/sh", "-c", "echo hi"]
"#,
    )
    .unwrap();
    ctx
}

/// A tree as (path → description): type, mode, link target or content digest. Hard links are
/// files with their target's content.
type Tree = BTreeMap<String, String>;

/// What the engine's runtime adds to every container, left out of comparisons.
fn runtime_only(path: &str) -> bool {
    let top = path.split('/').next().unwrap_or_default();
    matches!(top, "dev" | "proc" | "sys" | ".dockerenv")
        || matches!(
            path,
            // `etc` itself: the runtime makes it for its mount points when the image has none.
            "etc" | "etc/hostname" | "etc/hosts" | "etc/resolv.conf" | "etc/mtab"
        )
}

fn tree_of_tar(bytes: &[u8]) -> Tree {
    let mut out = Tree::new();
    let mut archive = tar::Archive::new(bytes);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let path = path
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        if path.is_empty() || runtime_only(&path) {
            continue;
        }
        let mode = entry.header().mode().unwrap() & 0o7777;
        let kind = entry.header().entry_type();
        let desc = if kind.is_dir() {
            format!("dir {mode:o}")
        } else if kind.is_symlink() {
            format!(
                "link -> {}",
                entry.link_name().unwrap().unwrap().to_string_lossy()
            )
        } else if kind.is_hard_link() {
            let target = entry.link_name().unwrap().unwrap();
            out[target.to_string_lossy().trim_start_matches("./")].clone()
        } else if kind.is_fifo() {
            format!("fifo {mode:o}")
        } else {
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            format!("file {mode:o} {}", sha256_hex(&data))
        };
        out.insert(path, desc);
    }
    out
}

fn tree_of_dir(root: &Path) -> Tree {
    let mut out = Tree::new();
    for e in walkdir::WalkDir::new(root).min_depth(1) {
        let e = e.unwrap();
        let path = e
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        // What `docker export` cannot show (BuildKit's `RUN` leaves `dev`, `proc` and `sys`
        // in its layers; the runtime mounts over them).
        if runtime_only(&path) {
            continue;
        }
        let m = e.path().symlink_metadata().unwrap();
        let mode = m.mode() & 0o7777;
        let desc = if m.is_symlink() {
            format!("link -> {}", fs::read_link(e.path()).unwrap().display())
        } else if m.is_dir() {
            format!("dir {mode:o}")
        } else if m.file_type().is_file() {
            format!("file {mode:o} {}", sha256_hex(&fs::read(e.path()).unwrap()))
        } else {
            format!("fifo {mode:o}")
        };
        out.insert(path, desc);
    }
    out
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn inspect_agrees_with_docker_inspect_and_extract_with_docker_export() {
    let host = common::engine();
    let s = Scratch::new();
    let image = unique_image("insp");
    let id = build(&s, &host, &image, "1.0", &layered_context(s.path(), &image));
    let engine_view = &serde_json::from_str::<serde_json::Value>(&docker_ok(
        &s,
        &host,
        &["image", "inspect", &format!("{image}:1.0")],
    ))
    .unwrap()[0];

    // A ZIP from update-image, and a zst from compress.
    ok(toolbox(
        &s,
        &host,
        &["update-image", &image, "--version", "1.0", "--compress"],
    ));
    let zip = s
        .artifacts()
        .join(format!("{image}_1.0_{}.zip", &id[7..19]));
    let kept = s.path().join("kept.zip");
    fs::copy(&zip, &kept).unwrap();
    ok(s.toolbox()
        .args(["decompress", zip.to_str().unwrap()])
        .output()
        .unwrap());
    fs::rename(&kept, &zip).unwrap();
    let docker_archive = format!("artifacts/{image}_1.0_{}.docker", &id[7..19]);
    ok(s.toolbox()
        .args(["compress", &docker_archive, "--format", "zst"])
        .output()
        .unwrap());
    let listed = json(&ok(s
        .toolbox()
        .args(["images", "--created", "--json"])
        .output()
        .unwrap()));
    for item in listed.as_array().unwrap() {
        assert_eq!(item["created"], engine_view["Created"], "{item}");
    }

    // From the archive alone: each format, and each way of naming it.
    for target in [
        format!("artifacts/{image}_1.0_{}.zst", &id[7..19]),
        format!("artifacts/{image}_1.0_{}.zip", &id[7..19]),
        format!("{image}:1.0"),
        id[7..13].to_string(),
        id.clone(),
    ] {
        let out = ok(s
            .toolbox()
            .env_remove("DOCKER_HOST")
            .args(["inspect", &target, "--json"])
            .output()
            .unwrap());
        let ours = json(&out);
        for pointer in [
            "/Id",
            "/RepoTags",
            "/Created",
            "/Architecture",
            "/Os",
            "/Config/Env",
            "/Config/Cmd",
            "/Config/Labels",
            "/Config/Entrypoint",
            "/Config/WorkingDir",
            "/RootFS/Layers",
        ] {
            assert_eq!(
                ours.pointer(pointer),
                engine_view.pointer(pointer),
                "{target}: {pointer}"
            );
        }
        let layers = ours["Layers"].as_array().unwrap();
        assert_eq!(
            layers.len(),
            ours["RootFS"]["Layers"].as_array().unwrap().len()
        );
        let total: u64 = layers.iter().map(|l| l["Size"].as_u64().unwrap()).sum();
        assert_eq!(ours["Size"].as_u64(), Some(total));
        // Said in the output: as stored, not docker's unpacked size.
        assert!(
            ours["SizeNote"]
                .as_str()
                .unwrap()
                .contains("not docker's unpacked size"),
            "{target}"
        );
        assert!(
            ours["Format"] == "zst" || ours["Format"] == "zip",
            "{target}"
        );
    }
    let text = stdout(&ok(s
        .toolbox()
        .args(["inspect", &id[7..19]])
        .output()
        .unwrap()));
    assert!(
        text.contains(&id) && text.contains("GREETING=hello"),
        "{text}"
    );
    assert!(text.contains("org.example.team=release"), "{text}");
    let size_line = text
        .lines()
        .find(|l| l.starts_with("Size"))
        .unwrap_or_default();
    assert!(
        size_line.contains("as stored") && size_line.contains("not docker's unpacked size"),
        "{text}"
    );

    // The root filesystem: the same tree as `docker export` of a container of the image.
    let container = docker_ok(&s, &host, &["create", &format!("{image}:1.0")]);
    let export = docker(&s, &host)
        .args(["export", &container])
        .output()
        .unwrap();
    docker_ok(&s, &host, &["rm", &container]);
    assert!(export.status.success());
    let expected = tree_of_tar(&export.stdout);
    assert!(expected.contains_key("opq/sub2/d") && !expected.contains_key("opq/sub"));
    for target in [
        format!("{image}:1.0"),
        docker_archive.replace(".docker", ".zst"),
    ] {
        let dest = s.path().join(format!("root-{}", target.len()));
        ok(s.toolbox()
            .args(["extract", &target, dest.to_str().unwrap()])
            .output()
            .unwrap());
        assert_eq!(tree_of_dir(&dest), expected, "{target}");
    }

    // --path: one folder, with the folders above it.
    let dest = s.path().join("only");
    ok(s.toolbox()
        .args([
            "extract",
            &image,
            dest.to_str().unwrap(),
            "--path",
            "/data/keep",
        ])
        .output()
        .unwrap());
    let only: Vec<String> = tree_of_dir(&dest).into_keys().collect();
    assert_eq!(
        only,
        vec!["data", "data/keep", "data/keep/a", "data/keep/hard"]
    );

    docker_ok(&s, &host, &["rmi", "--no-prune", &format!("{image}:1.0")]);
}

/// A tar of regular files.
fn tar_of(files: Vec<(String, Vec<u8>)>) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_path(&name).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, data.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

/// A classic `docker save` archive of one image with a `created` time, written into the
/// artifacts directory under its proper name; returns the file name.
fn synthetic(s: &Scratch, image: &str, version: &str, created: &str, age_s: u64) -> String {
    let layer = tar_of(vec![(format!("{image}-{created}.txt"), b"hi".to_vec())]);
    let diff_id = format!("sha256:{}", sha256_hex(&layer));
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": created,
        "config": {"Env": ["A=1"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .unwrap();
    let id = sha256_hex(&config);
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": format!("{id}.json"),
        "RepoTags": [format!("{image}:{version}")],
        "Layers": ["l/layer.tar"],
    }]))
    .unwrap();
    let tar = tar_of(vec![
        ("l/layer.tar".to_string(), layer),
        (format!("{id}.json"), config),
        ("manifest.json".to_string(), manifest),
    ]);
    let name = format!("{image}_{version}_{}.docker", &id[..12]);
    s.write(&name, &tar, age_s);
    name
}

#[test]
fn created_breaks_ties_between_archives_of_one_version() {
    let s = Scratch::new();
    // The older image was written last: the modification time alone would pick it.
    let newer = synthetic(&s, "web", "1.0", "2026-05-01T10:00:00.5Z", 500);
    let older = synthetic(&s, "web", "1.0", "2026-04-01T10:00:00Z", 10);
    let out = ok(s.toolbox().args(["latest", "web"]).output().unwrap());
    assert_eq!(stdout(&out).trim(), format!("./artifacts/{newer}"));

    let out = ok(s
        .toolbox()
        .args(["images", "--created", "--json"])
        .output()
        .unwrap());
    let items = json(&out);
    assert_eq!(items[0]["path"], format!("./artifacts/{newer}"));
    assert_eq!(items[0]["created"], "2026-05-01T10:00:00.5Z");
    assert_eq!(items[1]["created"], "2026-04-01T10:00:00Z");
    let out = ok(s.toolbox().args(["images", "--created"]).output().unwrap());
    let text = stdout(&out);
    assert!(text.lines().next().unwrap().contains("CREATED"), "{text}");
    assert!(text.contains("2026-05-01T10:00:00Z"), "{text}");
    let out = ok(s.toolbox().args(["images"]).output().unwrap());
    assert!(!stdout(&out).contains("CREATED"));

    // Compressed, the creation time comes from the ZIP's comment or the cache.
    ok(s.toolbox().args(["compress", &older]).output().unwrap());
    ok(s.toolbox()
        .args(["compress", &newer, "--format", "zst"])
        .output()
        .unwrap());
    let out = ok(s
        .toolbox()
        .args(["images", "--created", "--json"])
        .output()
        .unwrap());
    let items = json(&out);
    assert_eq!(items[0]["format"], "zst");
    assert_eq!(items[0]["created"], "2026-05-01T10:00:00.5Z");
    assert_eq!(items[1]["created"], "2026-04-01T10:00:00Z");
    assert!(s.files().contains(&".toolbox-cache.json".to_string()));
    // A cache entry for a file that changed is not used.
    let zst = s.artifacts().join(newer.replace(".docker", ".zst"));
    let cache = fs::read_to_string(s.artifacts().join(".toolbox-cache.json")).unwrap();
    assert!(cache.contains("2026-05-01"), "{cache}");
    let tampered = cache.replace("2026-05-01T10:00:00.5Z", "2020-01-01T00:00:00Z");
    fs::write(s.artifacts().join(".toolbox-cache.json"), tampered).unwrap();
    let created_of_zst = || {
        let out = ok(s
            .toolbox()
            .args(["images", "--created", "--json"])
            .output()
            .unwrap());
        let items = json(&out);
        let zst = items
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["format"] == "zst");
        zst.unwrap()["created"].clone()
    };
    assert_eq!(
        created_of_zst(),
        "2020-01-01T00:00:00Z",
        "the cache is used"
    );
    let data = fs::read(&zst).unwrap();
    fs::write(&zst, &data).unwrap(); // a new modification time
    assert_eq!(
        created_of_zst(),
        "2026-05-01T10:00:00.5Z",
        "a stale entry is not"
    );
}

#[test]
fn id_prefixes_select_archives() {
    let s = Scratch::new();
    let a = synthetic(&s, "web", "1.0", "2026-01-01T00:00:00Z", 10);
    let b = synthetic(&s, "api", "2.0", "2026-02-01T00:00:00Z", 10);
    let id_a = a.split('_').nth(2).unwrap()[..12].to_string();
    let id_b = b.split('_').nth(2).unwrap()[..12].to_string();

    let out = ok(s.toolbox().args(["latest", &id_a[..6]]).output().unwrap());
    assert_eq!(stdout(&out).trim(), format!("./artifacts/{a}"));
    let out = ok(s
        .toolbox()
        .args(["inspect", &format!("sha256:{}", &id_b[..8]), "--json"])
        .output()
        .unwrap());
    assert_eq!(json(&out)["RepoTags"][0], "api:2.0");
    let out = ok(s.toolbox().args(["images", &id_b[..4]]).output().unwrap());
    assert!(stdout(&out).contains("api") && !stdout(&out).contains("web"));
    let out = ok(s.toolbox().args(["verify", &id_a[..5]]).output().unwrap());
    assert!(stdout(&out).contains(": ok"));

    // A full ID longer than the file name's 12 digits is checked against the archive.
    let full = json(&ok(s
        .toolbox()
        .args(["inspect", &a, "--json"])
        .output()
        .unwrap()))["Id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(s.toolbox().args(["inspect", &full[..30]]).output().unwrap());
    let mut wrong = full[7..30].to_string();
    wrong.pop();
    wrong.push(if full.as_bytes()[29] == b'0' {
        '1'
    } else {
        '0'
    });
    let out = s.toolbox().args(["inspect", &wrong]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(&wrong), "{}", stderr(&out));

    // Two archives of different IDs sharing a prefix: an error naming them.
    fs::copy(
        s.artifacts().join(&a),
        s.artifacts()
            .join(format!("web_0.9_{}ffffffff.docker", &id_a[..4])),
    )
    .unwrap();
    fs::copy(
        s.artifacts().join(&a),
        s.artifacts()
            .join(format!("web_0.8_{}ffffffff.docker", &id_a[..4])),
    )
    .unwrap();
    let out = s.toolbox().args(["inspect", &id_a[..4]]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("3 archives match {}: ", &id_a[..4])) && err.contains(&a),
        "{err}"
    );
    let out = s.toolbox().args(["latest", "abcdef0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("abcdef0"), "{}", stderr(&out));
    // An image named like a prefix is an image first.
    synthetic(&s, "beef", "1.0", "2026-01-01T00:00:00Z", 10);
    let out = ok(s.toolbox().args(["latest", "beef"]).output().unwrap());
    assert!(stdout(&out).contains("beef_1.0_"));
}

/// A layer's entries: name, type, link target.
type RawLayer<'a> = Vec<(&'a str, tar::EntryType, &'a str)>;

/// A `.docker` archive whose layers are given raw (hostile names and links allowed).
fn hostile_archive(s: &Scratch, layers: &[RawLayer]) -> String {
    let mut files = Vec::new();
    let mut diff_ids = Vec::new();
    for (i, entries) in layers.iter().enumerate() {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(if kind.is_file() { 4 } else { 0 });
            h.set_mode(0o644);
            let gnu = h.as_gnu_mut().unwrap();
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
            h.set_cksum();
            let data: &[u8] = if kind.is_file() { b"evil" } else { b"" };
            b.append(&h, data).unwrap();
        }
        let layer = b.into_inner().unwrap();
        diff_ids.push(format!("sha256:{}", sha256_hex(&layer)));
        files.push((format!("l{i}/layer.tar"), layer));
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let id = sha256_hex(&config);
    let layer_names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    files.push((format!("{id}.json"), config));
    files.push((
        "manifest.json".into(),
        serde_json::to_vec(
            &serde_json::json!([{"Config": format!("{id}.json"), "Layers": layer_names}]),
        )
        .unwrap(),
    ));
    let name = format!("evil_1.0_{}.docker", &id[..12]);
    s.write(&name, &tar_of(files), 0);
    name
}

#[test]
fn hostile_archives_are_refused_or_contained() {
    use tar::EntryType::{Link, Regular, Symlink};
    let s = Scratch::new();
    let outside = s.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let marker = format!("toolbox-test-{}", std::process::id());
    let through_etc = format!("etc/{marker}");
    let absolute = format!("/tmp/{marker}");
    let cases: Vec<(Vec<RawLayer>, bool)> = vec![
        (vec![vec![(absolute.as_str(), Regular, "")]], true),
        (vec![vec![("../outside/x", Regular, "")]], false),
        (vec![vec![("a/../../../outside/x", Regular, "")]], false),
        (
            vec![
                vec![("etc", Symlink, "/etc")],
                vec![(through_etc.as_str(), Regular, "")],
            ],
            false,
        ),
        (
            vec![vec![
                ("up", Symlink, "../../.."),
                ("up/outside/x", Regular, ""),
            ]],
            true,
        ),
        (vec![vec![("h", Link, "../outside/target")]], false),
    ];
    fs::write(outside.join("target"), "t").unwrap();
    for (i, (layers, contained)) in cases.iter().enumerate() {
        let name = hostile_archive(&s, layers);
        let dest = s.path().join(format!("root{i}"));
        let out = s
            .toolbox()
            .args(["extract", &name, dest.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(
            out.status.success(),
            *contained,
            "case {i}: {}",
            stderr(&out)
        );
        if !contained {
            assert_eq!(out.status.code(), Some(1));
            let err = stderr(&out);
            assert!(
                err.contains("refused") && !err.contains("panicked"),
                "case {i}: {err}"
            );
            assert!(!dest.exists(), "case {i}");
        }
        let names: Vec<_> = fs::read_dir(&outside)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("target")], "case {i}");
        assert!(!Path::new("/etc").join(&marker).exists());
        assert!(!Path::new(&absolute).exists());
        fs::remove_file(s.artifacts().join(&name)).unwrap();
    }
    // Contained: the absolute path lands inside, the climbing link stops at the root.
    assert!(s.path().join("root0/tmp").join(&marker).exists());
    assert!(s.path().join("root4/outside/x").exists());
}
