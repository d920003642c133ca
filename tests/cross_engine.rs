//! Archives that move between engines: Docker 20.10, Docker 26.1 with the classic store and
//! Docker 26.1 with the containerd image store (three private engines, `scripts/engine`). An
//! image built on each is saved by `update-image` as .docker, .zip and .zst; every archive is
//! verified, inspected, extracted, listed with its creation time and loaded into every engine;
//! damage and a wrong name are refused; and images cross through a registry both ways.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{
    Scratch, docker_ok, json, ok, scratch_context, stderr, stdout, toolbox, unique_image,
};

const FLAVOURS: [&str; 3] = ["20.10", "26-classic", "26-containerd"];

/// One image built on one engine, and its three archives.
struct Built {
    flavour: &'static str,
    host: String,
    image: String,
    /// The ID the engine shows.
    engine_id: String,
    archives: Vec<PathBuf>,
}

fn build_and_save(s: &Scratch, flavour: &'static str, host: &str) -> Built {
    let image = unique_image("cross");
    let dir = s.path().join(format!("ctx-{flavour}"));
    fs::create_dir_all(&dir).unwrap();
    let ctx = scratch_context(
        &dir,
        &format!("built on {flavour}"),
        "RUN [\"/bin/sh\", \"-c\", \"echo layered > /layer.txt\"]\n",
    );
    let engine_id = common::build(s, host, &image, "1.0", &ctx);
    let update = |extra: &[&str]| {
        let mut all = vec!["update-image", image.as_str(), "--version", "1.0", "--json"];
        all.extend(extra);
        json(&ok(toolbox(s, host, &all)))
    };
    // .zst first (straight from the engine), then the .zip and the .docker (each --force: an
    // archive of the same ID in another format is current otherwise).
    let mut archives = Vec::new();
    for extra in [
        &["--compress", "--format", "zst"][..],
        &["--compress", "--force"][..],
        &["--force"][..],
    ] {
        let out = update(extra);
        assert_eq!(out["written"], true, "{flavour}: {out}");
        assert_eq!(out["id"].as_str(), Some(&engine_id[7..19]), "{flavour}");
        archives.push(s.path().join(out["path"].as_str().unwrap()));
    }
    // A second run on the same engine writes nothing.
    let again = update(&[]);
    assert_eq!(again["written"], false, "{flavour}: {again}");
    let again = update(&["--compress"]);
    assert_eq!(again["written"], false, "{flavour}: {again}");
    // In the order .docker, .zip, .zst.
    archives.reverse();
    for a in &archives {
        assert!(a.is_file(), "{}", a.display());
    }
    Built {
        flavour,
        host: host.to_string(),
        image,
        engine_id,
        archives,
    }
}

/// `/content.txt` of a container of `reference`, run on the engine at `host`.
fn content_of(s: &Scratch, host: &str, reference: &str) -> String {
    common::run_in(s, host, reference, "cat /content.txt")
}

/// The ZIP's archive comment, which carries the image's ID and creation time.
fn zip_comment(path: &Path) -> String {
    let zip = zip::ZipArchive::new(fs::File::open(path).unwrap()).unwrap();
    String::from_utf8_lossy(zip.comment()).into_owned()
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn archives_move_between_every_engine() {
    let engines: Vec<(&str, String)> = FLAVOURS
        .iter()
        .map(|flavour| (*flavour, common::engine_flavour(flavour)))
        .collect();
    let s = Scratch::new();
    let built: Vec<Built> = engines
        .iter()
        .map(|(flavour, host)| build_and_save(&s, flavour, host))
        .collect();

    for b in &built {
        let created = docker_ok(
            &s,
            &b.host,
            &[
                "image",
                "inspect",
                "-f",
                "{{.Created}}",
                &format!("{}:1.0", b.image),
            ],
        );
        // The ZIP comment has the creation time on every store.
        let comment = zip_comment(&b.archives[1]);
        assert!(
            comment.contains("\"created\"") && comment.contains(&b.engine_id),
            "{}: {comment}",
            b.flavour
        );
        for archive in &b.archives {
            let path = archive.to_str().unwrap();
            let what = format!("{} {}", b.flavour, archive.display());
            // verify
            let out = ok(s.toolbox().args(["verify", path]).output().unwrap());
            assert!(stdout(&out).ends_with(": ok\n"), "{what}: {}", stdout(&out));
            // inspect: Id as the saving engine showed it, and the config digest.
            let info = json(&ok(s
                .toolbox()
                .args(["inspect", path, "--json"])
                .output()
                .unwrap()));
            assert_eq!(info["Id"].as_str(), Some(b.engine_id.as_str()), "{what}");
            assert!(
                info["ConfigDigest"]
                    .as_str()
                    .unwrap()
                    .starts_with("sha256:")
            );
            if b.flavour == "26-containerd" {
                assert_ne!(info["ConfigDigest"], info["Id"], "{what}");
                assert_eq!(info["ManifestDigests"][0]["Digest"], info["Id"], "{what}");
            }
            // extract
            let dest = s
                .path()
                .join(format!("root-{}", b.flavour))
                .join(archive.extension().unwrap());
            ok(s.toolbox()
                .args(["extract", path, dest.to_str().unwrap()])
                .output()
                .unwrap());
            assert_eq!(
                fs::read_to_string(dest.join("content.txt")).unwrap(),
                format!("built on {}", b.flavour),
                "{what}"
            );
            assert_eq!(
                fs::read_to_string(dest.join("layer.txt")).unwrap(),
                "layered\n"
            );
        }
        // images --created: the engine's creation time, for every archive.
        let rows = json(&ok(s
            .toolbox()
            .args(["images", &b.image, "--created", "--json"])
            .output()
            .unwrap()));
        assert_eq!(rows.as_array().unwrap().len(), 3, "{}", b.flavour);
        for row in rows.as_array().unwrap() {
            let got = time::OffsetDateTime::parse(
                row["created"].as_str().unwrap_or_default(),
                &time::format_description::well_known::Rfc3339,
            );
            let want = time::OffsetDateTime::parse(
                &created,
                &time::format_description::well_known::Rfc3339,
            );
            assert_eq!(got.ok(), want.ok(), "{}: {row}", b.flavour);
        }
    }

    // Every archive loads into every engine.
    for b in &built {
        for archive in &b.archives {
            for (flavour, host) in &engines {
                let reference = format!("{}:1.0", b.image);
                // The saving engine still has the image: load into a clean slate elsewhere.
                let _ = common::docker(&s, host)
                    .args(["rmi", "--no-prune", &reference])
                    .output();
                let out = toolbox(&s, host, &["load", archive.to_str().unwrap()]);
                assert!(
                    out.status.success(),
                    "{} archive {} into {flavour}: {}",
                    b.flavour,
                    archive.display(),
                    stderr(&out)
                );
                let text = stdout(&out);
                assert!(
                    text.contains(&format!("Loaded image: {reference}")),
                    "{text}"
                );
                let engine_id =
                    docker_ok(&s, host, &["image", "inspect", "-f", "{{.Id}}", &reference]);
                assert!(
                    text.contains(&format!("Loaded image ID: {engine_id}")),
                    "{text}"
                );
                // The loaded image runs, and holds what was built.
                assert_eq!(
                    content_of(&s, host, &reference),
                    format!("built on {}", b.flavour)
                );
            }
        }
    }

    // Damage and a wrong name are refused on every engine's archives.
    for b in &built {
        let docker = &b.archives[0];
        let mut bytes = fs::read(docker).unwrap();
        common::flip_in_layer(&mut bytes, format!("built on {}", b.flavour).as_bytes());
        let damaged = s.path().join(format!("damaged-{}", b.flavour));
        fs::create_dir_all(&damaged).unwrap();
        let flipped = damaged.join(docker.file_name().unwrap());
        fs::write(&flipped, &bytes).unwrap();
        let out = s
            .toolbox()
            .args(["verify", flipped.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", b.flavour);
        // The engine built the image and holds every layer: a thin load sends none of them, so
        // the damaged layer is never sent (nor read), and the engine's image stays sound.
        let out = toolbox(&s, &b.host, &["load", flipped.to_str().unwrap()]);
        let text = stdout(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            b.flavour,
            stderr(&out)
        );
        let first = text.lines().next().unwrap_or_default();
        let had = first
            .split("; the engine had ")
            .nth(1)
            .and_then(|t| t.strip_suffix(" layers)"))
            .and_then(|t| t.split_once(" of "))
            .unwrap_or_else(|| panic!("{}: {first}", b.flavour));
        assert_eq!(
            had.0, had.1,
            "{}: every layer held, none sent: {first}",
            b.flavour
        );
        let renamed = damaged.join(
            docker
                .file_name()
                .unwrap()
                .to_string_lossy()
                .replace(&b.engine_id[7..19], "ffffffffffff"),
        );
        fs::copy(docker, &renamed).unwrap();
        let out = s
            .toolbox()
            .args(["verify", renamed.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", b.flavour);
        assert!(stdout(&out).contains("ffffffffffff"), "{}", stdout(&out));
        let out = toolbox(&s, &b.host, &["load", renamed.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{}", b.flavour);
    }

    // Through a registry: what each engine pushes, toolbox pulls; what toolbox pushes of each
    // engine's archive, every engine pulls.
    let registry = common::TestRegistry::start(None);
    let r = &registry.host;
    for b in &built {
        let pushed = format!("{r}/by-docker/{}:1.0", b.image);
        docker_ok(&s, &b.host, &["tag", &format!("{}:1.0", b.image), &pushed]);
        docker_ok(&s, &b.host, &["push", &pushed]);
        docker_ok(&s, &b.host, &["rmi", "--no-prune", &pushed]);
        let out = json(&ok(s
            .toolbox()
            .args([
                "pull",
                &pushed,
                "--image",
                &format!("{}-pulled", b.image),
                "--json",
            ])
            .output()
            .unwrap()));
        let pulled = s.path().join(out["path"].as_str().unwrap());
        ok(s.toolbox()
            .args(["verify", pulled.to_str().unwrap()])
            .output()
            .unwrap());

        let repo = format!("{r}/by-toolbox/{}", b.image);
        ok(s.toolbox()
            .args([
                "push",
                b.archives[2].to_str().unwrap(),
                &format!("{repo}:1.0"),
            ])
            .output()
            .unwrap());
        for (flavour, host) in &engines {
            docker_ok(&s, host, &["pull", &format!("{repo}:1.0")]);
            let out = content_of(&s, host, &format!("{repo}:1.0"));
            assert_eq!(out, format!("built on {}", b.flavour), "into {flavour}");
            docker_ok(&s, host, &["rmi", "--no-prune", &format!("{repo}:1.0")]);
        }
    }

    for b in &built {
        for (_, host) in &engines {
            let _ = common::docker(&s, host)
                .args(["rmi", "--no-prune", &format!("{}:1.0", b.image)])
                .output();
        }
    }
}
