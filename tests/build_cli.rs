//! `toolbox build` against `docker build`: the same contexts, built by both, must put the same
//! files into the image (`.dockerignore` applied exactly as the docker CLI applies it).

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use common::{Scratch, docker, docker_ok, ok, stderr, toolbox, unique_image};

/// The files of a context that `.dockerignore` files are tried on.
const FILES: &[&str] = &[
    ".git/HEAD",
    ".git/objects/pack/p.pack",
    "secrets/key",
    "build/out.o",
    "sub/build/keep.o",
    "dist/app.js",
    "sub/dist/x.js",
    "src/main.rs",
    "src/test_a.rs",
    "src/test_b.rs",
    "docs/a.md",
    "docs/b.md",
    "docs/keep.md",
    "README.md",
    "node_modules/x/i.js",
    "web/node_modules/y/j.js",
    "web/app.js",
    ".env",
    ".env.local",
    "app/.env",
    "file1.txt",
    "file22.txt",
    "a.txt",
    "b.txt",
    "c.txt",
];

/// The eight sets of patterns: `!` exceptions, `**`, `/build` and `./dist`, `*` then folders
/// brought back, `?` and classes, `node_modules` at any depth, `.env*`, exceptions inside an
/// excluded folder.
const SETS: &[&str] = &[
    ".git\nsecrets\n*.md\n!docs/keep.md\n",
    "**/*.md\n!docs/keep.md\n**/node_modules\n",
    "/build\n./dist\n",
    "*\n!src\n!docs\ndocs/b.md\n",
    "file?.txt\n[ab].txt\n",
    "node_modules\n**/node_modules/**\n",
    ".env*\n**/.env\n",
    "# comment\nsrc/test_*\n!src/test_a.rs\n.git\ndocs\n!docs/keep.md\n",
];

/// The files under `/ctx` of `image`, from `docker export` of a container of it.
fn files_in(s: &Scratch, host: &str, image: &str) -> BTreeSet<String> {
    let container = docker_ok(s, host, &["create", image, "/bin/sh"]);
    let export = docker(s, host)
        .args(["export", &container])
        .output()
        .unwrap();
    docker_ok(s, host, &["rm", &container]);
    assert!(export.status.success());
    let mut archive = tar::Archive::new(&export.stdout[..]);
    archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.header().entry_type().is_file())
        .filter_map(|e| {
            let path = e.path().unwrap().to_string_lossy().into_owned();
            path.strip_prefix("ctx/").map(str::to_string)
        })
        .collect()
}

fn context(dir: &Path, ignore: &str) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY . /ctx\n").unwrap();
    fs::write(dir.join(".dockerignore"), ignore).unwrap();
    for f in FILES {
        let p = dir.join(f);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, f).unwrap();
    }
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn dockerignore_sends_what_docker_build_sends() {
    let host = common::engine();
    let s = Scratch::new();
    for (n, set) in SETS.iter().enumerate() {
        let dir = s.path().join(format!("ctx{n}"));
        context(&dir, set);
        let by_docker = unique_image("ignored-by-docker");
        let out = common::building(|| {
            docker(&s, &host)
                .env("DOCKER_BUILDKIT", "0")
                .args([
                    "build",
                    "-q",
                    "-t",
                    &format!("{by_docker}:1"),
                    dir.to_str().unwrap(),
                ])
                .output()
                .unwrap()
        });
        assert!(out.status.success(), "docker build: {}", stderr(&out));
        let by_toolbox = unique_image("ignored-by-toolbox");
        let out = ok(toolbox(
            &s,
            &host,
            &[
                "build",
                &by_toolbox,
                "--version",
                "1",
                "--context",
                dir.to_str().unwrap(),
                "--progress",
                "plain",
            ],
        ));
        // The upload says its size and how it went (plain lines for logs).
        let err = stderr(&out);
        let sending: Vec<&str> = err
            .lines()
            .filter(|l| l.starts_with(&format!("toolbox: sending the context of {by_toolbox}")))
            .collect();
        assert!(
            sending
                .last()
                .is_some_and(|l| l.contains("100%") && l.contains("done in")),
            "{err}"
        );
        let expected = files_in(&s, &host, &format!("{by_docker}:1"));
        let got = files_in(&s, &host, &format!("{by_toolbox}:1"));
        assert_eq!(got, expected, "patterns {set:?}");
        // Something was left out, or the set proves nothing.
        assert!(
            FILES.iter().any(|f| !expected.contains(*f)),
            "{set:?} excluded nothing: {expected:?}"
        );
        for image in [&by_docker, &by_toolbox] {
            docker_ok(&s, &host, &["rmi", "--no-prune", &format!("{image}:1")]);
        }
    }
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn a_bad_pattern_names_the_file_and_line() {
    let host = common::engine();
    let s = Scratch::new();
    let dir = s.path().join("ctx");
    context(&dir, "ok\nsrc/[unclosed\n");
    let image = unique_image("badignore");
    let out = toolbox(
        &s,
        &host,
        &["build", &image, "--context", dir.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(".dockerignore:2:") && err.contains("src/[unclosed"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// The interfaces of a `/proc/net/dev`, sorted.
fn interfaces(net_dev: &str) -> Vec<String> {
    let mut names: Vec<String> = net_dev
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(name, _)| name.trim().to_string())
        .filter(|name| !name.contains('|') && !name.is_empty())
        .collect();
    names.sort();
    names
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn target_labels_network_pull_and_platform() {
    let host = common::engine();
    let s = Scratch::new();
    let dir = s.path().join("ctx");
    fs::create_dir_all(&dir).unwrap();
    fs::copy("/bin/busybox", dir.join("sh")).expect("busybox-static is installed (/bin/busybox)");
    // Each stage notes its name and the network interfaces its RUN step sees.
    fs::write(
        dir.join("Dockerfile"),
        "FROM scratch AS base\nCOPY sh /bin/sh\n\
         FROM base AS tools\nRUN [\"/bin/sh\", \"-c\", \"echo tools > /stage && cat /proc/net/dev > /net\"]\n\
         FROM base AS runtime\nRUN [\"/bin/sh\", \"-c\", \"echo runtime > /stage && cat /proc/net/dev > /net\"]\n",
    )
    .unwrap();
    let image = unique_image("flags");
    fs::write(
        s.path().join("c.yaml"),
        format!(
            "images:\n  {image}:\n    context: ctx\n    target: runtime\n    network: host\n    \
             labels:\n      team: dev\n      tier: web\n"
        ),
    )
    .unwrap();
    let inspect = |reference: &str, format: &str| {
        docker_ok(&s, &host, &["image", "inspect", "-f", format, reference])
    };
    let stage = |reference: &str| common::run_in(&s, &host, reference, "cat /stage");
    // The interfaces a RUN step saw.
    let network = |reference: &str| interfaces(&common::run_in(&s, &host, reference, "cat /net"));
    let ours = interfaces(&fs::read_to_string("/proc/net/dev").unwrap());
    assert!(
        ours.iter().any(|i| i != "lo"),
        "this machine has no network interface but lo: the host's network and none look alike"
    );
    // From the config file: the runtime stage, its labels, RUN steps on the host's network
    // (run without the harness, which adds `--network none` to a build that names none).
    ok(common::building(|| {
        s.toolbox()
            .env("DOCKER_HOST", &host)
            .args(["build", &image, "--version", "1", "--config", "c.yaml"])
            .output()
            .unwrap()
    }));
    assert_eq!(stage(&format!("{image}:1")), "runtime");
    assert_eq!(network(&format!("{image}:1")), ours, "the host's network");
    assert_eq!(
        inspect(&format!("{image}:1"), "{{index .Config.Labels \"team\"}}"),
        "dev"
    );
    // Flags beat the file: another stage, a label overridden, one added; --pull and the
    // engine's own platform are accepted.
    let platform = docker_ok(
        &s,
        &host,
        &["version", "-f", "{{.Server.Os}}/{{.Server.Arch}}"],
    );
    ok(toolbox(
        &s,
        &host,
        &[
            "build",
            &image,
            "--version",
            "2",
            "--config",
            "c.yaml",
            "--target",
            "tools",
            "--label",
            "team=ops",
            "--label",
            "release=2",
            "--network",
            "none",
            "--pull",
            "--platform",
            &platform,
            // The legacy builder (Docker 20.10's default) builds every stage before the
            // target, so the first build ran `tools` on the host's network; its cache would
            // answer here whatever the network.
            "--no-cache",
        ],
    ));
    assert_eq!(stage(&format!("{image}:2")), "tools");
    assert_eq!(network(&format!("{image}:2")), ["lo"], "no network");
    let labels = inspect(&format!("{image}:2"), "{{json .Config.Labels}}");
    let labels: serde_json::Value = serde_json::from_str(&labels).unwrap();
    assert_eq!(labels["team"], "ops");
    assert_eq!(labels["tier"], "web");
    assert_eq!(labels["release"], "2");
    // Wrong values are wrong usage, refused before anything is sent.
    for args in [
        vec![
            "build",
            image.as_str(),
            "--network",
            "bridge2",
            "--context",
            "ctx",
        ],
        vec![
            "build",
            image.as_str(),
            "--platform",
            "linux",
            "--context",
            "ctx",
        ],
        vec!["build", image.as_str(), "--label", "=x", "--context", "ctx"],
    ] {
        let out = toolbox(&s, &host, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    for tag in ["1", "2"] {
        docker_ok(&s, &host, &["rmi", "--no-prune", &format!("{image}:{tag}")]);
    }
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn what_cannot_be_sent_is_an_error_before_anything_is_sent() {
    let host = common::engine();
    let s = Scratch::new();
    let ctx = common::scratch_context(s.path(), "x", "");
    fs::write(s.path().join("Dockerfile.outside"), "FROM scratch\n").unwrap();
    let image = unique_image("unsent");
    for builder in ["buildkit", "legacy"] {
        for (args, names) in [
            (vec!["--context", "nowhere"], "nowhere"),
            (
                vec![
                    "--context",
                    ctx.to_str().unwrap(),
                    "--dockerfile",
                    "Dockerfile.outside",
                ],
                "outside the build context",
            ),
            (
                vec![
                    "--context",
                    ctx.to_str().unwrap(),
                    "--dockerfile",
                    "ctx/Dockerfile.missing",
                ],
                "Dockerfile.missing",
            ),
        ] {
            let mut all = vec!["build", image.as_str(), "--builder", builder];
            all.extend(args);
            let out = toolbox(&s, &host, &all);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{all:?}: {err}");
            assert!(
                err.contains(names) && err.starts_with("toolbox: error:"),
                "{all:?}: {err}"
            );
            assert_eq!(err.lines().count(), 1, "one line, no build output: {err}");
        }
    }
    let out = docker(&s, &host)
        .args(["image", "inspect", &format!("{image}:latest")])
        .output()
        .unwrap();
    assert!(!out.status.success(), "nothing was built");
}
