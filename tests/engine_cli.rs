//! End-to-end tests of build, update-image and load against a real Docker engine.

mod common;

use std::fs;
use std::path::Path;

use common::{
    Scratch, build, docker, docker_ok, json, ok, scratch_context, stderr, stdout, toolbox,
    unique_image,
};

fn full_id(s: &Scratch, host: &str, reference: &str) -> String {
    docker_ok(s, host, &["image", "inspect", "-f", "{{.Id}}", reference])
}

/// Whether two `docker save` tars hold the same members with the same contents. Docker 20.10
/// writes the same bytes every time; Docker 25 and later stamp some members with the time of
/// the save, so two saves of one image differ only in those times.
fn same_tar(a: &[u8], b: &[u8]) -> bool {
    let members = |bytes: &[u8]| {
        let mut archive = tar::Archive::new(bytes);
        let mut out = std::collections::BTreeMap::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
            out.insert(path, (entry.header().mode().unwrap(), data));
        }
        out
    };
    members(a) == members(b)
}

fn docker_save(s: &Scratch, host: &str, reference: &str, dir: &Path) -> Vec<u8> {
    let path = dir.join(format!("{}.tar", reference.replace([':', '/'], "_")));
    docker_ok(s, host, &["save", "-o", path.to_str().unwrap(), reference]);
    fs::read(path).unwrap()
}

fn unzip(path: &Path) -> Vec<u8> {
    let out = std::process::Command::new("unzip")
        .arg("-p")
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn build_update_clean_compress_and_load() {
    let host = common::engine();
    let s = Scratch::new();
    let image = unique_image("e2e");
    let ctx = scratch_context(
        s.path(),
        "first",
        "RUN [\"/bin/sh\", \"-c\", \"echo built > /built.txt\"]\n",
    );

    // build: the full ID on stdout, the log on stderr, the tag from the version.
    let out = ok(toolbox(
        &s,
        &host,
        &[
            "build",
            &image,
            "--version",
            "1.0",
            "--context",
            ctx.to_str().unwrap(),
        ],
    ));
    let id1 = stdout(&out).trim().to_string();
    assert_eq!(id1, full_id(&s, &host, &format!("{image}:1.0")));
    assert!(id1.starts_with("sha256:") && id1.len() == 71, "{id1}");
    // Whichever builder the engine offers: the legacy builder's steps or BuildKit's trace.
    assert!(
        stderr(&out).contains("Step 1/") || stderr(&out).contains("#1 [internal]"),
        "the build output streams to stderr"
    );
    let short1 = &id1[7..19];

    // update-image writes the archive under the engine's ID, byte for byte `docker save`.
    let out = ok(toolbox(
        &s,
        &host,
        &["update-image", &image, "--version", "1.0", "--json"],
    ));
    let v = json(&out);
    let tar1 = s.artifacts().join(format!("{image}_1.0_{short1}.docker"));
    assert_eq!(
        v["path"],
        format!("./artifacts/{image}_1.0_{short1}.docker")
    );
    assert_eq!(
        (
            v["written"].as_bool(),
            v["id"].as_str(),
            v["format"].as_str()
        ),
        (Some(true), Some(short1), Some("docker"))
    );
    assert_eq!(v["removed"], serde_json::json!([]));
    let saved = docker_save(&s, &host, &format!("{image}:1.0"), s.path());
    assert!(
        same_tar(&fs::read(&tar1).unwrap(), &saved),
        "the .docker archive is what the engine exports"
    );

    // skopeo and docker load read it.
    let skopeo = common::skopeo(&s)
        .args(["inspect", &format!("docker-archive:{}", tar1.display())])
        .output()
        .expect("skopeo is installed");
    assert!(skopeo.status.success(), "skopeo: {}", stderr(&skopeo));

    // A second update-image writes nothing.
    let before = fs::metadata(&tar1).unwrap().modified().unwrap();
    let out = ok(toolbox(
        &s,
        &host,
        &["update-image", &image, "--version", "1.0"],
    ));
    assert!(stdout(&out).contains("already current"), "{}", stdout(&out));
    assert_eq!(fs::metadata(&tar1).unwrap().modified().unwrap(), before);
    assert_eq!(s.files(), vec![format!("{image}_1.0_{short1}.docker")]);

    // Change the context, rebuild, update with --clean: the new archive, the old one gone.
    fs::write(ctx.join("content.txt"), "second").unwrap();
    let id2 = build(&s, &host, &image, "1.0", &ctx);
    assert_ne!(id1, id2);
    let short2 = &id2[7..19];
    s.touch(&format!("{image}_0.9_{short1}.bak"), 0);
    s.touch(&format!("other{image}_1.0_{short1}.zip"), 0);
    let v = json(&ok(toolbox(
        &s,
        &host,
        &[
            "update-image",
            &image,
            "--version",
            "1.0",
            "--clean",
            "--json",
        ],
    )));
    assert_eq!(v["written"], true);
    assert_eq!(
        v["removed"],
        serde_json::json!([format!("./artifacts/{image}_1.0_{short1}.docker")])
    );
    let mut expected = vec![
        format!("{image}_0.9_{short1}.bak"),
        format!("{image}_1.0_{short2}.docker"),
        format!("other{image}_1.0_{short1}.zip"),
    ];
    expected.sort();
    assert_eq!(
        s.files(),
        expected,
        "foreign files and other images are left alone"
    );

    // --compress turns the existing .docker of this ID into the .zip: the entry is the tar.
    let v = json(&ok(toolbox(
        &s,
        &host,
        &[
            "update-image",
            &image,
            "--version",
            "1.0",
            "--compress",
            "--json",
        ],
    )));
    assert_eq!(
        (v["written"].as_bool(), v["format"].as_str()),
        (Some(true), Some("zip"))
    );
    let zip2 = s.artifacts().join(format!("{image}_1.0_{short2}.zip"));
    assert!(same_tar(
        &unzip(&zip2),
        &docker_save(&s, &host, &format!("{image}:1.0"), s.path())
    ));
    assert!(
        !s.artifacts()
            .join(format!("{image}_1.0_{short2}.docker"))
            .exists()
    );

    // A new version with --compress streams straight into the ZIP.
    ok(toolbox(
        &s,
        &host,
        &[
            "build",
            &image,
            "--version",
            "2.0+b1",
            "--context",
            ctx.to_str().unwrap(),
        ],
    ));
    let v = json(&ok(toolbox(
        &s,
        &host,
        &[
            "update-image",
            &image,
            "--version",
            "2.0+b1",
            "--compress",
            "--json",
        ],
    )));
    let zip3 = s.artifacts().join(format!("{image}_2.0+b1_{short2}.zip"));
    assert_eq!(
        v["path"],
        format!("./artifacts/{image}_2.0+b1_{short2}.zip")
    );
    assert!(same_tar(
        &unzip(&zip3),
        &docker_save(&s, &host, &format!("{image}:2.0-b1"), s.path())
    ));
    let again = json(&ok(toolbox(
        &s,
        &host,
        &[
            "update-image",
            &image,
            "--version",
            "2.0+b1",
            "--compress",
            "--json",
        ],
    )));
    assert_eq!(again["written"], false);

    // After `docker rmi`, load brings the image back with the same ID, from the ZIP.
    docker_ok(
        &s,
        &host,
        &[
            "rmi",
            "--no-prune",
            &format!("{image}:1.0"),
            &format!("{image}:2.0-b1"),
        ],
    );
    assert!(
        !docker(&s, &host)
            .args(["image", "inspect", &format!("{image}:1.0")])
            .output()
            .unwrap()
            .status
            .success()
    );
    let out = ok(toolbox(&s, &host, &["load", &format!("{image}:1.0")]));
    let text = stdout(&out);
    let (first, second) = text.trim().split_once('\n').unwrap_or_default();
    assert!(
        first.starts_with(&format!("Loaded image: {image}:1.0 (sent "))
            && first.ends_with(" layers)"),
        "{text}"
    );
    assert_eq!(second, format!("Loaded image ID: {id2}"));
    assert_eq!(full_id(&s, &host, &format!("{image}:1.0")), id2);

    // docker load reads a .docker archive written by update-image.
    docker_ok(&s, &host, &["rmi", "--no-prune", &format!("{image}:1.0")]);
    let tar = s.path().join("plain.docker");
    fs::write(&tar, unzip(&zip2)).unwrap();
    docker_ok(&s, &host, &["load", "-i", tar.to_str().unwrap()]);
    assert_eq!(full_id(&s, &host, &format!("{image}:1.0")), id2);
    docker_ok(&s, &host, &["rmi", "--no-prune", &format!("{image}:1.0")]);
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn build_from_the_config_file_with_a_repository() {
    let host = common::engine();
    let s = Scratch::new();
    let image = unique_image("cfg");
    let ctx = scratch_context(
        s.path(),
        "configured",
        "ARG GREETING\nLABEL greeting=$GREETING\n",
    );
    fs::rename(ctx.join("Dockerfile"), ctx.join("Dockerfile.prod")).unwrap();
    let repository = format!("localhost/team/{image}");
    fs::write(
        s.path().join("toolbox.yaml"),
        format!(
            "images:\n  {image}:\n    context: ctx\n    dockerfile: Dockerfile.prod\n    repository: {repository}\n    \
             build_args:\n      GREETING: hello\n"
        ),
    )
    .unwrap();
    let out = ok(toolbox(
        &s,
        &host,
        &[
            "build",
            &image,
            "--config",
            "toolbox.yaml",
            "--version",
            "3.1",
        ],
    ));
    let id = stdout(&out).trim().to_string();
    assert_eq!(full_id(&s, &host, &format!("{repository}:3.1")), id);
    let label = docker_ok(
        &s,
        &host,
        &["image", "inspect", "-f", "{{.Config.Labels.greeting}}", &id],
    );
    assert_eq!(label, "hello");
    // A --build-arg beats the config file's.
    let out = ok(toolbox(
        &s,
        &host,
        &[
            "build",
            &image,
            "--config",
            "toolbox.yaml",
            "--version",
            "3.2",
            "--build-arg",
            "GREETING=bye",
        ],
    ));
    let label = docker_ok(
        &s,
        &host,
        &[
            "image",
            "inspect",
            "-f",
            "{{.Config.Labels.greeting}}",
            stdout(&out).trim(),
        ],
    );
    assert_eq!(label, "bye");

    let v = json(&ok(toolbox(
        &s,
        &host,
        &[
            "update-image",
            &image,
            "--config",
            "toolbox.yaml",
            "--version",
            "3.1",
            "--json",
        ],
    )));
    assert_eq!(v["id"], &id[7..19]);
    assert_eq!(v["image"], image.as_str());
    // --repository on the command line names the same image.
    let v = json(&ok(toolbox(
        &s,
        &host,
        &[
            "update-image",
            &image,
            "--version",
            "3.1",
            "--repository",
            &repository,
            "--pull",
            "if-not-present",
            "--json",
        ],
    )));
    assert_eq!(v["written"], false);
    docker_ok(
        &s,
        &host,
        &[
            "rmi",
            "--no-prune",
            &format!("{repository}:3.1"),
            &format!("{repository}:3.2"),
        ],
    );
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn a_failing_build_shows_the_step_and_leaves_no_container() {
    let host = common::engine();
    let s = Scratch::new();
    let image = unique_image("fail");
    let marker = format!("exit 3 # {image}");
    let ctx = scratch_context(
        s.path(),
        "x",
        &format!("RUN [\"/bin/sh\", \"-c\", \"{marker}\"]\n"),
    );
    // Either builder: exit 1, the step, its command and what the builder said.
    for (builder, step, said) in [
        ("legacy", "Step 4/4", "returned a non-zero code: 3"),
        (
            "buildkit",
            "[3/3] RUN [\"/bin/sh\", \"-c\", \"exit 3",
            "exit code: 3",
        ),
    ] {
        let out = toolbox(
            &s,
            &host,
            &[
                "build",
                &image,
                "--context",
                ctx.to_str().unwrap(),
                "--builder",
                builder,
            ],
        );
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        let error = err
            .lines()
            .find(|l| l.starts_with("toolbox: error:"))
            .unwrap_or_default();
        assert!(
            error.contains(step) && error.contains(said),
            "{builder}: {err}"
        );
        assert!(!err.contains("panicked"));
    }
    let containers = docker_ok(
        &s,
        &host,
        &["ps", "-a", "--no-trunc", "--format", "{{.Command}}"],
    );
    assert!(
        !containers.contains(&image),
        "an intermediate container was left: {containers}"
    );
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn missing_image_unreachable_engine_and_foreign_twin_are_clear_errors() {
    let host = common::engine();
    let s = Scratch::new();
    let image = unique_image("missing");
    let out = toolbox(&s, &host, &["update-image", &image, "--version", "1.0"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("`{image}:1.0`"))
            && err.contains("toolbox build")
            && err.contains("--pull"),
        "{err}"
    );

    let out = toolbox(
        &s,
        "unix:///nonexistent/docker.sock",
        &["update-image", "web"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("unix:///nonexistent/docker.sock") && err.lines().count() == 1,
        "{err}"
    );
    let out = toolbox(
        &s,
        "unix:///nonexistent/docker.sock",
        &["build", "web", "--context", "."],
    );
    assert_eq!(out.status.code(), Some(1));

    // A pull that cannot succeed is an error naming the reference.
    let out = toolbox(
        &s,
        &host,
        &[
            "update-image",
            &image,
            "--repository",
            "127.0.0.1:9/nothing",
            "--pull",
            "if-not-present",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("127.0.0.1:9/nothing:latest"),
        "{}",
        stderr(&out)
    );

    // An existing foreign file with the same image, version and ID: nothing written.
    let ctx = scratch_context(s.path(), "twin", "");
    let id = build(&s, &host, &image, "1.0", &ctx);
    s.touch(&format!("{image}_1.0_{}.bak", &id[7..19]), 0);
    let before = s.files();
    let out = toolbox(&s, &host, &["update-image", &image, "--version", "1.0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(".bak"), "{}", stderr(&out));
    assert_eq!(s.files(), before);

    // A renamed archive whose ID does not match its content is refused on load.
    docker_ok(
        &s,
        &host,
        &["tag", &format!("{image}:1.0"), &format!("{image}:1.1")],
    );
    ok(toolbox(
        &s,
        &host,
        &["update-image", &image, "--version", "1.1"],
    ));
    let real = s
        .artifacts()
        .join(format!("{image}_1.1_{}.docker", &id[7..19]));
    let fake = s
        .artifacts()
        .join(format!("{image}_1.2_ffffffffffff.docker"));
    fs::copy(&real, &fake).unwrap();
    let out = toolbox(&s, &host, &["load", fake.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("ffffffffffff"), "{}", stderr(&out));
    docker_ok(
        &s,
        &host,
        &[
            "rmi",
            "--no-prune",
            &format!("{image}:1.0"),
            &format!("{image}:1.1"),
        ],
    );
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn update_image_into_zst_and_load_it_back() {
    let host = common::engine();
    let s = Scratch::new();
    let image = unique_image("zst");
    let ctx = scratch_context(s.path(), "zstd", "");
    let id = build(&s, &host, &image, "4.0", &ctx);
    let short = &id[7..19];
    let v = json(&ok(toolbox(
        &s,
        &host,
        &[
            "update-image",
            &image,
            "--version",
            "4.0",
            "--compress",
            "--format",
            "zst",
            "--json",
        ],
    )));
    assert_eq!(
        (v["written"].as_bool(), v["format"].as_str()),
        (Some(true), Some("zst"))
    );
    let zst = s.artifacts().join(format!("{image}_4.0_{short}.zst"));
    let tar = std::process::Command::new("zstd")
        .args(["-d", "-c"])
        .arg(&zst)
        .output()
        .unwrap();
    assert!(same_tar(
        &tar.stdout,
        &docker_save(&s, &host, &format!("{image}:4.0"), s.path())
    ));

    // Current whatever the compressed format asked for: nothing is written.
    let v = json(&ok(toolbox(
        &s,
        &host,
        &[
            "update-image",
            &image,
            "--version",
            "4.0",
            "--compress",
            "--json",
        ],
    )));
    assert_eq!(
        (v["written"].as_bool(), v["format"].as_str()),
        (Some(false), Some("zst"))
    );

    // verify --json: one row per archive.
    let out = ok(toolbox(
        &s,
        &host,
        &["verify", "--json", zst.to_str().unwrap()],
    ));
    let rows = json(&out);
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["ok"], true);
    assert!(rows[0]["problem"].is_null());
    assert!(rows[0]["path"].as_str().unwrap().ends_with(".zst"));

    docker_ok(&s, &host, &["rmi", "--no-prune", &format!("{image}:4.0")]);
    let out = ok(toolbox(&s, &host, &["load", zst.to_str().unwrap()]));
    let text = stdout(&out);
    let (first, second) = text.trim().split_once('\n').unwrap_or_default();
    assert!(
        first.starts_with(&format!("Loaded image: {image}:4.0 (sent "))
            && first.ends_with(" layers)"),
        "{text}"
    );
    assert_eq!(second, format!("Loaded image ID: {id}"));
    assert_eq!(full_id(&s, &host, &format!("{image}:4.0")), id);
    docker_ok(&s, &host, &["rmi", "--no-prune", &format!("{image}:4.0")]);
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn update_image_creates_a_missing_artifacts_directory_and_says_so() {
    let host = common::engine();
    let s = Scratch::new();
    let image = unique_image("newdir");
    let ctx = scratch_context(s.path(), "new directory", "");
    let id = build(&s, &host, &image, "1.0", &ctx);
    let out = ok(toolbox(
        &s,
        &host,
        &[
            "update-image",
            &image,
            "--version",
            "1.0",
            "--basedir",
            "made/here",
            "--json",
        ],
    ));
    assert!(
        stderr(&out).contains("created the artifacts directory `made/here`"),
        "{}",
        stderr(&out)
    );
    let written = json(&out);
    assert_eq!(written["id"].as_str(), Some(&id[7..19]));
    assert!(s.path().join(written["path"].as_str().unwrap()).is_file());
    // A read-only command still says a missing directory is missing.
    let out = toolbox(&s, &host, &["images", "--basedir", "not/made"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!s.path().join("not/made").exists());
    docker_ok(&s, &host, &["rmi", "--no-prune", &format!("{image}:1.0")]);
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn load_checks_every_layer_as_it_streams() {
    let host = common::engine();
    let s = Scratch::new();
    let image = unique_image("flip");
    let ctx = scratch_context(s.path(), "flip one byte of me", "");
    build(&s, &host, &image, "1.0", &ctx);
    let out = ok(toolbox(
        &s,
        &host,
        &["update-image", &image, "--version", "1.0", "--json"],
    ));
    let path = s.path().join(json(&out)["path"].as_str().unwrap());
    let mut bytes = fs::read(&path).unwrap();
    common::flip_in_layer(&mut bytes, b"flip one byte of me");
    fs::write(&path, &bytes).unwrap();
    // The engine holds every layer: a thin load sends none of them, so the damaged one is
    // neither sent nor read, and the engine keeps its own sound copy.
    let out = toolbox(&s, &host, &["load", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let had = text
        .split("; the engine had ")
        .nth(1)
        .and_then(|t| t.split_once(" layers)"))
        .and_then(|(t, _)| t.split_once(" of "));
    assert!(had.is_some_and(|(held, all)| held == all), "{text}");
    // Without the image, the damaged layer goes to the engine: the stream's own digests
    // stop it.
    docker_ok(&s, &host, &["rmi", &format!("{image}:1.0")]);
    let out = toolbox(&s, &host, &["load", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        (err.contains("layer") || err.contains("blob")) && err.contains("docker rmi"),
        "{err}"
    );
    let _ = common::docker(&s, &host)
        .args(["rmi", &format!("{image}:1.0")])
        .output();
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn update_image_force_saves_again_and_replaces() {
    use std::os::unix::fs::MetadataExt;
    let host = common::engine();
    let s = Scratch::new();
    let image = unique_image("force");
    let ctx = scratch_context(s.path(), "forced", "");
    build(&s, &host, &image, "1.0", &ctx);
    let update = |extra: &[&str]| {
        let mut args = vec!["update-image", image.as_str(), "--version", "1.0", "--json"];
        args.extend(extra);
        json(&ok(toolbox(&s, &host, &args)))
    };
    let first = update(&[]);
    assert_eq!(first["written"], true);
    let path = s.path().join(first["path"].as_str().unwrap());
    let inode = fs::metadata(&path).unwrap().ino();
    let bytes = fs::read(&path).unwrap();
    assert_eq!(update(&[])["written"], false);
    let forced = update(&["--force"]);
    assert_eq!(forced["written"], true);
    assert_eq!(forced["path"], first["path"]);
    assert_ne!(
        fs::metadata(&path).unwrap().ino(),
        inode,
        "a new file took its place"
    );
    // The same image saved again (Docker 26 stamps the save's time in the tar's headers).
    assert_eq!(
        common::tar_members(&fs::read(&path).unwrap()),
        common::tar_members(&bytes)
    );
    // --force --compress writes the compressed archive even though one of this ID exists.
    let zipped = update(&["--compress"]);
    assert_eq!(zipped["written"], true);
    assert_eq!(update(&["--compress"])["written"], false);
    assert_eq!(update(&["--compress", "--force"])["written"], true);
    docker_ok(&s, &host, &["rmi", "--no-prune", &format!("{image}:1.0")]);
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn a_dirty_build_with_clean_keeps_the_release() {
    let host = common::engine();
    let s = Scratch::new();
    let image = unique_image("release");
    let ctx = scratch_context(s.path(), "release", "");
    build(&s, &host, &image, "1.0.0.2", &ctx);
    fs::write(ctx.join("content.txt"), "dirty build").unwrap();
    build(&s, &host, &image, "1.0.0.0", &ctx);
    let update = |version: &str, extra: &[&str]| {
        let mut args = vec![
            "update-image",
            image.as_str(),
            "--version",
            version,
            "--compress",
        ];
        args.extend(extra);
        ok(toolbox(&s, &host, &args))
    };
    let release = json(&update("1.0.0.2", &["--json"]));
    let release_path = release["path"].as_str().unwrap().to_string();
    let out = update("1.0.0.0", &["--clean"]);
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "kept {release_path} (a clean build ranks above the dirty one written)"
        )),
        "{text}"
    );
    assert!(s.path().join(&release_path).is_file());
    let config = json(&ok(toolbox(
        &s,
        &host,
        &["config", "--baseurl", "https://h", "--json"],
    )));
    let url = config["images"][&image]["url"].as_str().unwrap();
    assert!(url.contains("_1.0.0.2_"), "{url}");
    // --clean-all keeps the old meaning: every other archive goes.
    let all = json(&update("1.0.0.0", &["--clean-all", "--json"]));
    assert_eq!(all["removed"], serde_json::json!([release_path]));
    assert!(!s.path().join(&release_path).exists());
    docker_ok(
        &s,
        &host,
        &[
            "rmi",
            "--no-prune",
            &format!("{image}:1.0.0.2"),
            &format!("{image}:1.0.0.0"),
        ],
    );
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn a_save_on_a_terminal_shows_a_bar_with_percentage_and_eta() {
    let host = common::engine();
    let s = Scratch::new();
    let image = unique_image("bar");
    let ctx = scratch_context(s.path(), "bar", "");
    build(&s, &host, &image, "1.0", &ctx);
    // A terminal, as a person has one: `script` runs toolbox on a pseudo-terminal.
    let command = format!(
        "stty cols 160 rows 40; {} update-image {image} --version 1.0 --compress",
        env!("CARGO_BIN_EXE_toolbox")
    );
    let out = s
        .command("script")
        .args(["-qefc", &command, "/dev/null"])
        .env("DOCKER_HOST", &host)
        .env("TOOLBOX_ARTIFACTS_DIR", s.artifacts())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script (bsdutils) is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    // The bar, drawn from the start against the image's size: a percentage, the total, an ETA.
    let frames: Vec<&str> = text
        .split(['\r', '\n'])
        .filter(|f| f.contains("saving") && f.contains('%'))
        .collect();
    assert!(!frames.is_empty(), "{text:?}");
    assert!(frames.iter().all(|f| f.contains("eta")), "{text:?}");
    assert!(
        frames[0].contains("  0%") || frames[0].contains(" 0%"),
        "{text:?}"
    );
    // Cleared at the end: the last thing on the terminal is the result line.
    assert!(text.trim_end().ends_with("written"), "{text:?}");
    docker_ok(&s, &host, &["rmi", "--no-prune", &format!("{image}:1.0")]);
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn progress_plain_prints_lines_for_logs_and_none_prints_nothing() {
    let host = common::engine();
    let s = Scratch::new();
    let image = unique_image("plain");
    let ctx = scratch_context(s.path(), "progress", "");
    build(&s, &host, &image, "1.0", &ctx);
    let out = ok(toolbox(
        &s,
        &host,
        &[
            "update-image",
            &image,
            "--version",
            "1.0",
            "--progress",
            "plain",
        ],
    ));
    let err = stderr(&out);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with(&format!("toolbox: saving {image}:1.0  ")))
        .collect();
    assert!(lines.len() >= 2, "{err}");
    assert!(
        lines[0].contains("  0%  "),
        "the size is known from the start: {err}"
    );
    assert!(
        lines.last().unwrap().contains("  100%  ") && lines.last().unwrap().contains("done in"),
        "{err}"
    );
    let out = ok(toolbox(
        &s,
        &host,
        &[
            "update-image",
            &image,
            "--version",
            "1.0",
            "--force",
            "--progress",
            "none",
        ],
    ));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    let out = toolbox(&s, &host, &["images", "--progress", "sometimes"]);
    assert_eq!(out.status.code(), Some(2));
    // load counts what it reads of the archive, against the archive's own size.
    let zipped = json(&ok(toolbox(
        &s,
        &host,
        &[
            "update-image",
            &image,
            "--version",
            "1.0",
            "--compress",
            "--json",
        ],
    )));
    let zip = zipped["path"].as_str().unwrap();
    let out = ok(toolbox(&s, &host, &["load", zip, "--progress", "plain"]));
    let err = stderr(&out);
    let last = err
        .lines()
        .rfind(|l| l.starts_with("toolbox: loading "))
        .unwrap_or_default();
    assert!(
        last.contains("  100%  ") && last.contains("done in"),
        "{err}"
    );
    let sizes = last.split("  ").nth(2).unwrap_or_default();
    let (done, total) = sizes.split_once('/').unwrap_or_default();
    assert_eq!(done, total, "{err}");
    docker_ok(&s, &host, &["rmi", "--no-prune", &format!("{image}:1.0")]);
}
