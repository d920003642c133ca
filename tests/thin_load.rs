//! Thin loads, end to end against real engines (Docker 20.10, and 26.1 in both stores): with
//! version N in the engine, `load` of N+1 (a `.ref`, a `.zst`, a `docker save` `.docker`)
//! sends only the layer N lacks, the engine gets N+1 with its ID and runs it; into an engine
//! that holds nothing of the image, the whole image is sent.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{Scratch, docker, docker_ok, json, ok, scratch_context, stderr, stdout, toolbox};

/// The size of the base layer's file (random bytes: no compression makes it smaller).
const BASE: usize = 4_000_000;

/// Removes the images `references` from the engine at `host` (those missing are passed over).
fn remove_images(s: &Scratch, host: &str, references: &[&str]) {
    common::deleting(|| {
        let mut args = vec!["rmi", "-f"];
        args.extend(references);
        let _ = docker(s, host).args(&args).output();
    });
}

/// The `path` of what `toolbox ARGS --json` wrote, under the scratch directory.
fn written(s: &Scratch, host: &str, args: &[&str]) -> PathBuf {
    let mut args = args.to_vec();
    args.push("--json");
    let out = json(&ok(toolbox(s, host, &args)));
    s.path().join(out["path"].as_str().expect("a path"))
}

/// `docker image inspect` of `reference`: its ID and layers.
fn engine_image(s: &Scratch, host: &str, reference: &str) -> (String, Vec<String>) {
    let id = docker_ok(s, host, &["image", "inspect", "-f", "{{.Id}}", reference]);
    let layers = docker_ok(
        s,
        host,
        &[
            "image",
            "inspect",
            "-f",
            "{{json .RootFS.Layers}}",
            reference,
        ],
    );
    (id, serde_json::from_str(&layers).unwrap())
}

/// Loads `archive` with `--json` (with `basedir`, when given) and returns what it printed.
fn load_json(s: &Scratch, host: &str, archive: &Path, basedir: Option<&Path>) -> serde_json::Value {
    let mut args: Vec<&str> = Vec::new();
    if let Some(dir) = basedir {
        args.extend(["--basedir", dir.to_str().unwrap()]);
    }
    args.extend(["load", archive.to_str().unwrap(), "--json"]);
    let out = toolbox(s, host, &args);
    assert!(
        out.status.success(),
        "load {}: {}",
        archive.display(),
        stderr(&out)
    );
    json(&out)
}

fn thin_loads(flavour: &str) {
    let host = common::engine_flavour(flavour);
    let s = Scratch::new();
    let art = s.artifacts();
    let image = common::unique_image("thin");
    let ctx = scratch_context(s.path(), "one", "");
    fs::write(ctx.join("base.bin"), common::images::random_bytes(BASE, 7)).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY sh /bin/sh\nCOPY base.bin /data/base.bin\nCOPY content.txt /\n",
    )
    .unwrap();
    let n = format!("{image}:1.0.1");
    let n1 = format!("{image}:1.0.2");
    common::build(&s, &host, &image, "1.0.1", &ctx);
    fs::write(ctx.join("content.txt"), "two").unwrap();
    let id2 = common::build(&s, &host, &image, "1.0.2", &ctx);
    let (engine_id2, layers2) = engine_image(&s, &host, &n1);
    assert_eq!(engine_id2, id2);
    let (_, layers1) = engine_image(&s, &host, &n);
    assert_eq!(layers1[..2], layers2[..2], "the versions share their base");
    assert_eq!(layers2.len(), 3);

    // N+1 as a .ref (N beside it in the store), a .zst made from it, and a `docker save` tar
    // (in a directory of its own, with N's).
    let store = |v: &str| {
        written(
            &s,
            &host,
            &["update-image", &image, "--version", v, "--store"],
        )
    };
    store("1.0.1");
    let ref2 = store("1.0.2");
    let convert = ok(toolbox(
        &s,
        &host,
        &["convert", ref2.to_str().unwrap(), "--to", "zst", "--keep"],
    ));
    let zst2 = fs::read_dir(&art)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "zst"))
        .unwrap_or_else(|| panic!("convert wrote a .zst: {}", stdout(&convert)));
    let other = s.path().join("other");
    let saved = |v: &str| {
        written(
            &s,
            &host,
            &[
                "--basedir",
                other.to_str().unwrap(),
                "update-image",
                &image,
                "--version",
                v,
            ],
        )
    };
    saved("1.0.1");
    let docker2 = saved("1.0.2");
    assert_eq!(docker2.extension().unwrap(), "docker");

    // The engine holds N: each archive of N+1 sends the new layer, not the base.
    for (archive, basedir) in [(&ref2, None), (&zst2, None), (&docker2, Some(&other))] {
        remove_images(&s, &host, &[&n1]);
        assert!(
            !docker(&s, &host)
                .args(["image", "inspect", &n1])
                .output()
                .unwrap()
                .status
                .success()
        );
        let loaded = load_json(&s, &host, archive, basedir.map(PathBuf::as_path));
        let (sent, total) = (
            loaded["sent"].as_u64().unwrap(),
            loaded["total"].as_u64().unwrap(),
        );
        assert!(
            sent + (BASE as u64) < total,
            "{}: sent {sent} of {total}, the base layer alone is {BASE}",
            archive.display()
        );
        assert_eq!(loaded["id"], id2.as_str(), "{loaded}");
        assert!(loaded["image"].as_str().unwrap().ends_with(&n1), "{loaded}");
        let (id, layers) = engine_image(&s, &host, &n1);
        assert_eq!((id.as_str(), &layers), (id2.as_str(), &layers2));
        assert_eq!(common::run_in(&s, &host, &n1, "cat /content.txt"), "two");
    }

    // The engine holds nothing of the image: the whole tar is sent.
    remove_images(&s, &host, &[&n1, &n]);
    let loaded = load_json(&s, &host, &ref2, None);
    assert_eq!(loaded["sent"], loaded["total"], "{loaded}");
    assert!(loaded["total"].as_u64().unwrap() > BASE as u64);
    assert_eq!(loaded["id"], id2.as_str());
    assert_eq!(engine_image(&s, &host, &n1).1, layers2);

    // The engine holds all of it: only the documents are sent; the text says so.
    let out = ok(toolbox(&s, &host, &["load", ref2.to_str().unwrap()]));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("Loaded image: ")
            && lines[0].contains(" (sent ")
            && lines[0].ends_with("; the engine had 3 of 3 layers)"),
        "{text}"
    );
    assert_eq!(lines[1], format!("Loaded image ID: {id2}"));
    assert_eq!(common::run_in(&s, &host, &n1, "cat /content.txt"), "two");

    remove_images(&s, &host, &[&n1, &n]);
}

#[test]
fn thin_loads_on_docker_20_10() {
    thin_loads("20.10");
}

#[test]
fn thin_loads_on_docker_26_classic() {
    thin_loads("26-classic");
}

#[test]
fn thin_loads_on_docker_26_containerd() {
    thin_loads("26-containerd");
}
