//! `toolbox build` with BuildKit on Docker 26 (both image stores) and Debian 12's 20.10: cache
//! and secret mounts, `COPY --chmod`/`--link`, heredocs, `--target` running only the stages it
//! needs, labels, the ID the engine shows, output as `--progress=plain` prints it, failures
//! that name the step, and the builder choice (`--builder`, `DOCKER_BUILDKIT`).

mod common;

use std::fs;

use common::{Scratch, docker, docker_ok, stderr, stdout, unique_image};

const SECRET_FILE_VALUE: &str = "file-secret-5f2c9a71";
const SECRET_ENV_VALUE: &str = "env-secret-83be04d6";

/// A context with busybox as `/bin/sh` (its own bytes, so no test shares build cache) and
/// the Dockerfile given.
fn context(s: &Scratch, dockerfile: &str) -> std::path::PathBuf {
    let ctx = common::scratch_context(s.path(), "content", "");
    fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    fs::write(s.path().join("secret.txt"), SECRET_FILE_VALUE).unwrap();
    ctx
}

/// `toolbox` in the scratch directory against `host`, with the environment secret set.
fn toolbox(s: &Scratch, host: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = s.toolbox();
    cmd.env("DOCKER_HOST", host)
        .env("TB_SECRET", SECRET_ENV_VALUE)
        .env_remove("DOCKER_BUILDKIT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args);
    common::building(|| cmd.output().unwrap())
}

/// What `script` prints in a container of `reference`.
fn run(s: &Scratch, host: &str, reference: &str, script: &str) -> String {
    common::run_in(s, host, reference, script)
}

/// The image's ID as the engine shows it.
fn engine_id(s: &Scratch, host: &str, reference: &str) -> String {
    docker_ok(s, host, &["image", "inspect", "-f", "{{.Id}}", reference])
}

/// Fails when `needle` is anywhere in `docker save` of `reference` or in `history`.
fn assert_nowhere_in_image(s: &Scratch, host: &str, reference: &str, needle: &str) {
    let save = docker(s, host).args(["save", reference]).output().unwrap();
    assert!(save.status.success(), "docker save: {}", stderr(&save));
    assert!(save.stdout.len() > 1000);
    assert!(
        !save
            .stdout
            .windows(needle.len())
            .any(|w| w == needle.as_bytes()),
        "the secret is in the saved image"
    );
    // Layers may be compressed in the saved archive: look inside them too.
    let mut outer = tar::Archive::new(&save.stdout[..]);
    for entry in outer.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        let mut plain = Vec::new();
        if data.starts_with(&[0x1f, 0x8b]) {
            let mut gz = flate2::read::GzDecoder::new(&data[..]);
            std::io::Read::read_to_end(&mut gz, &mut plain).unwrap();
        }
        for bytes in [&data, &plain] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "the secret is in {} of the saved image",
                entry.path().unwrap().display()
            );
        }
    }
    let history = docker_ok(s, host, &["history", "--no-trunc", reference]);
    assert!(!history.contains(needle), "the secret is in the history");
}

/// The Dockerfile tried on Docker 26; `CACHE` is replaced by a cache ID of the test's own.
const DOCKERFILE_26: &str = "FROM scratch AS base\n\
COPY --chmod=750 sh /bin/sh\n\
ARG RUNID\n\
RUN --mount=type=cache,id=CACHE,target=/cache echo run $RUNID >> /cache/runs && wc -l < /cache/runs > /runs\n\
RUN --mount=type=secret,id=token --mount=type=secret,id=fromenv \
cat /run/secrets/token | wc -c > /token-len && cat /run/secrets/fromenv | wc -c > /env-len \
&& echo step-output-line\n\
RUN <<EOF\n\
echo from-heredoc > /heredoc\n\
EOF\n\
\n\
FROM base AS broken\n\
RUN echo last-words-of-the-step && exit 7\n\
\n\
FROM base AS final\n\
COPY --link content.txt /linked.txt\n";

fn buildkit_on(flavour: &str) {
    let host = common::engine_flavour(flavour);
    let s = Scratch::new();
    let image = unique_image("bk");
    context(&s, &DOCKERFILE_26.replace("CACHE", &image));
    fs::write(
        s.path().join("c.yaml"),
        format!(
            "images:\n  {image}:\n    context: ctx\n    target: final\n    network: none\n    \
             labels:\n      tier: web\n    secrets:\n      - id=fromenv,env=TB_SECRET\n      \
             - id=token,src=wrong-file\n"
        ),
    )
    .unwrap();
    let reference = format!("{image}:1");
    let build = |version: &str, extra: &[&str]| {
        let mut args = vec![
            "build",
            image.as_str(),
            "--version",
            version,
            "--config",
            "c.yaml",
            "--secret",
            "id=token,src=secret.txt",
            "--label",
            "team=ops",
        ];
        args.extend_from_slice(extra);
        toolbox(&s, &host, &args, &[])
    };

    // BuildKit by default (the engine offers it): secrets from the flag (beating the file's of
    // the same ID) and from the file, the cache mount, heredoc, --chmod, --link, --target.
    let out = build("1", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out).trim().to_string();
    assert_eq!(printed, engine_id(&s, &host, &reference), "the engine's ID");
    let listed = docker_ok(&s, &host, &["images", "--no-trunc", "-q", &reference]);
    assert_eq!(listed, printed, "`docker images` shows the printed ID");
    let log = stderr(&out);
    for expected in [
        "[base 2/4] RUN --mount=type=cache,id=",
        "step-output-line",
        "[final 1/1] COPY --link content.txt /linked.txt",
        "DONE",
    ] {
        assert!(log.contains(expected), "`{expected}` in the output:\n{log}");
    }
    assert!(
        log.lines().any(|l| l.starts_with('#')),
        "plain output: {log}"
    );
    assert!(
        !log.contains("last-words-of-the-step"),
        "the broken stage ran:\n{log}"
    );
    for (script, expected) in [
        ("cat /runs", "1".to_string()),
        ("cat /token-len", SECRET_FILE_VALUE.len().to_string()),
        ("cat /env-len", SECRET_ENV_VALUE.len().to_string()),
        ("cat /heredoc", "from-heredoc".to_string()),
        ("stat -c %a /bin/sh", "750".to_string()),
        ("cat /linked.txt", "content".to_string()),
        ("ls /run/secrets 2>/dev/null | wc -l", "0".to_string()),
    ] {
        assert_eq!(run(&s, &host, &reference, script), expected, "{script}");
    }
    let labels = docker_ok(
        &s,
        &host,
        &[
            "image",
            "inspect",
            "-f",
            "{{json .Config.Labels}}",
            &reference,
        ],
    );
    let labels: serde_json::Value = serde_json::from_str(&labels).unwrap();
    assert_eq!(
        (&labels["tier"], &labels["team"]),
        (&"web".into(), &"ops".into())
    );
    for secret in [SECRET_FILE_VALUE, SECRET_ENV_VALUE] {
        assert!(!String::from_utf8_lossy(&out.stdout).contains(secret));
        assert!(!log.contains(secret), "the secret is in the build output");
        assert_nowhere_in_image(&s, &host, &reference, secret);
    }

    // Another RUNID runs the step again; the cache mount keeps what the first run left.
    let out = build("2", &["--build-arg", "RUNID=2", "--progress", "none"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "",
        "--progress none prints nothing on success"
    );
    assert_eq!(run(&s, &host, &format!("{image}:2"), "cat /runs"), "2");

    // A failing step: exit 1, the step, its command and its last lines; no image tagged.
    let out = build("3", &["--target", "broken"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    let last = err
        .lines()
        .rev()
        .find(|l| l.starts_with("toolbox: error:"))
        .unwrap_or("");
    assert!(
        err.contains("[broken 1/1] RUN echo last-words-of-the-step && exit 7")
            && err.contains("exit code: 7")
            && err.contains("last-words-of-the-step")
            && !last.is_empty(),
        "{err}"
    );
    assert!(!err.contains("panicked"));
    let gone = docker(&s, &host)
        .args(["image", "inspect", &format!("{image}:3")])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "a failed build tagged an image");

    // A secret that cannot be read: named, with its file, before anything is built.
    let out = build("4", &["--secret", "id=token,src=missing.txt"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("secret `token`") && stderr(&out).contains("missing.txt"),
        "{}",
        stderr(&out)
    );

    // The legacy builder when asked: by flag (secrets then refused as wrong usage) or by
    // DOCKER_BUILDKIT=0; a DOCKER_BUILDKIT that is not a boolean is wrong usage.
    let out = build("5", &["--builder", "legacy"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("needs BuildKit"), "{}", stderr(&out));
    fs::write(
        s.path().join("ctx/Dockerfile.legacy"),
        "FROM scratch\nCOPY sh /bin/sh\nRUN echo legacy > /b\n",
    )
    .unwrap();
    let legacy = toolbox(
        &s,
        &host,
        &[
            "build",
            &image,
            "--version",
            "6",
            "--context",
            "ctx",
            "--dockerfile",
            "ctx/Dockerfile.legacy",
        ],
        &[("DOCKER_BUILDKIT", "0")],
    );
    assert!(legacy.status.success(), "{}", stderr(&legacy));
    assert!(stderr(&legacy).contains("Step 1/3"), "{}", stderr(&legacy));
    assert_eq!(
        stdout(&legacy).trim(),
        engine_id(&s, &host, &format!("{image}:6"))
    );
    let out = toolbox(
        &s,
        &host,
        &["build", &image, "--context", "ctx"],
        &[("DOCKER_BUILDKIT", "maybe")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("DOCKER_BUILDKIT"), "{}", stderr(&out));

    for tag in ["1", "2", "6"] {
        docker_ok(&s, &host, &["rmi", "--no-prune", &format!("{image}:{tag}")]);
    }
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn buildkit_on_docker_26_with_the_containerd_store() {
    buildkit_on("26-containerd");
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn buildkit_on_docker_26_with_the_classic_store() {
    buildkit_on("26-classic");
}

/// Docker 20.10 (BuildKit v0.8, built-in frontend without heredocs or `COPY --link`): the
/// legacy builder by default, as its docker CLI; BuildKit with cache and secret mounts,
/// `COPY --chmod` and `--target` when asked.
#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn buildkit_on_docker_20_10_when_asked() {
    let host = common::engine_flavour("20.10");
    let s = Scratch::new();
    let image = unique_image("bk20");
    let ctx = context(
        &s,
        &"FROM scratch AS base\nCOPY --chmod=750 sh /bin/sh\n\
         RUN --mount=type=cache,id=CACHE,target=/cache echo run >> /cache/runs && wc -l < /cache/runs > /runs\n\
         RUN --mount=type=secret,id=token cat /run/secrets/token | wc -c > /token-len\n\
         FROM base AS broken\nRUN exit 7\n\
         FROM base AS final\nCOPY content.txt /c.txt\n"
            .replace("CACHE", &image),
    );
    let reference = format!("{image}:1");
    let args = [
        "build",
        image.as_str(),
        "--version",
        "1",
        "--context",
        ctx.to_str().unwrap(),
        "--builder",
        "buildkit",
        "--network",
        "none",
        "--target",
        "final",
        "--secret",
        "id=token,src=secret.txt",
    ];
    let out = toolbox(&s, &host, &args, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), engine_id(&s, &host, &reference));
    assert!(
        stderr(&out).contains("[base 2/3] RUN --mount=type=cache"),
        "{}",
        stderr(&out)
    );
    assert_eq!(run(&s, &host, &reference, "cat /runs"), "1");
    assert_eq!(
        run(&s, &host, &reference, "cat /token-len"),
        SECRET_FILE_VALUE.len().to_string()
    );
    assert_eq!(run(&s, &host, &reference, "stat -c %a /bin/sh"), "750");
    assert_nowhere_in_image(&s, &host, &reference, SECRET_FILE_VALUE);

    // Without a choice: the legacy builder, as 20.10 does not offer BuildKit by default.
    fs::write(
        ctx.join("Dockerfile.plain"),
        "FROM scratch\nCOPY content.txt /c.txt\n",
    )
    .unwrap();
    let out = toolbox(
        &s,
        &host,
        &[
            "build",
            &image,
            "--version",
            "2",
            "--context",
            ctx.to_str().unwrap(),
            "--dockerfile",
            ctx.join("Dockerfile.plain").to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("Step 1/2"), "{}", stderr(&out));
    for tag in ["1", "2"] {
        docker_ok(&s, &host, &["rmi", "--no-prune", &format!("{image}:{tag}")]);
    }
}

/// On a terminal: one line per finished step above a spinner naming what runs, the context's
/// upload as a bar; all cleared at the end, the ID the last line.
#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn a_build_on_a_terminal_shows_a_live_view() {
    let host = common::engine_flavour("26-containerd");
    let s = Scratch::new();
    let ctx = context(
        &s,
        "FROM scratch\nCOPY sh /bin/sh\nRUN echo one > /one && sleep 1\nCOPY content.txt /\n",
    );
    let image = unique_image("live");
    let command = format!(
        "stty cols 160 rows 40; {} build {image} --version 1 --context {} --network none",
        env!("CARGO_BIN_EXE_toolbox"),
        ctx.display()
    );
    let out = s
        .command("script")
        .args(["-qefc", &command, "/dev/null"])
        .env("DOCKER_HOST", &host)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script (bsdutils) is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let frames: Vec<&str> = text.split(['\r', '\n']).collect();
    assert!(
        frames
            .iter()
            .any(|f| f.contains(&format!("building {image}"))),
        "a spinner names the build: {text:?}"
    );
    assert!(
        frames
            .iter()
            .any(|f| f.contains("[2/3] RUN echo one > /one && sleep 1") && f.contains("DONE")),
        "finished steps are listed: {text:?}"
    );
    assert!(
        frames
            .iter()
            .any(|f| f.contains(&format!("sending the context of {image}"))),
        "the upload shows: {text:?}"
    );
    let id = engine_id(&s, &host, &format!("{image}:1"));
    assert!(
        text.trim_end().ends_with(&id),
        "the ID comes last: {text:?}"
    );
    docker_ok(&s, &host, &["rmi", "--no-prune", &format!("{image}:1")]);
}
