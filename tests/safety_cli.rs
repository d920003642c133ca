//! Nothing lost: locking, leftovers, verify, process kills, a full disk, concurrent runs.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{
    ID, Scratch, build, docker_ok, json, ok, scratch_context, stderr, stdout, toolbox, unique_image,
};

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    stdout(&out)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(".toolbox-tmp.")
        {
            found.push(entry.path());
        }
    }
    found
}

/// Holds the artifacts directory's lock from another process for `seconds`.
fn hold_lock(s: &Scratch, seconds: u32) -> std::process::Child {
    let lock = s.artifacts().join(".toolbox.lock");
    let child = Command::new("flock")
        .arg(&lock)
        .args(["sleep", &seconds.to_string()])
        .spawn()
        .expect("flock (util-linux) is installed");
    // Wait until the lock is really held.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let probe = Command::new("flock")
            .args(["-n"])
            .arg(&lock)
            .arg("true")
            .status()
            .unwrap();
        if !probe.success() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn mutating_commands_wait_for_the_lock_or_fail_with_no_wait() {
    let s = Scratch::new();
    s.touch(&format!("web_1.0_{ID}.zip"), 10);
    s.touch(&format!("web_2.0_{ID}.zip"), 0);
    let mut holder = hold_lock(&s, 3);

    let out = s.toolbox().args(["clean", "--no-wait"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("another toolbox run holds the lock"),
        "{}",
        stderr(&out)
    );
    assert_eq!(s.files().len(), 2, "nothing removed");

    // Read-only commands never take the lock.
    let start = Instant::now();
    s.toolbox().args(["images"]).assert().success();
    s.toolbox().args(["clean", "--dry-run"]).assert().success();
    assert!(start.elapsed() < Duration::from_secs(2));

    // Without --no-wait: a message after a second, then the work once the lock is free.
    let out = s.toolbox().args(["clean"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("waiting for another toolbox run"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out).trim(), format!("./artifacts/web_1.0_{ID}.zip"));
    holder.wait().unwrap();
}

#[test]
fn leftovers_are_removed_by_the_next_mutating_run_and_never_listed() {
    let s = Scratch::new();
    s.write(
        &format!("web_1.0_{ID}.docker"),
        &common::tar_holding(b"layer"),
        0,
    );
    let leftover = s.write(
        &format!(".toolbox-tmp.99999.1.0.web_1.0_{ID}.zip"),
        b"partial",
        0,
    );
    let out = s.toolbox().args(["images", "--json"]).output().unwrap();
    assert_eq!(json(&out).as_array().unwrap().len(), 1);
    assert!(leftover.exists(), "read-only commands leave it");
    let out = s.toolbox().args(["compress", "web"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!leftover.exists());
    assert!(
        stderr(&out).contains("left by an interrupted run"),
        "{}",
        stderr(&out)
    );
}

/// Builds an image of at least `mb` MB of random data (and busybox), returns its reference.
fn big_image(s: &Scratch, host: &str, mb: usize) -> (String, String) {
    let image = unique_image("big");
    let ctx = scratch_context(s.path(), "big", "COPY random.bin /random.bin\n");
    let mut data = vec![0u8; mb << 20];
    let mut state = 0x2545_F491_4F6C_DD1Du64 ^ u64::from(std::process::id());
    for chunk in data.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    fs::write(ctx.join("random.bin"), &data).unwrap();
    let out = ok(toolbox(
        s,
        host,
        &[
            "build",
            &image,
            "--version",
            "1.0",
            "--context",
            ctx.to_str().unwrap(),
        ],
    ));
    (image, stdout(&out).trim().to_string())
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn killed_runs_never_leave_a_partial_archive() {
    let host = common::engine();
    let s = Scratch::new();
    let (image, id) = big_image(&s, &host, 110);
    docker_ok(
        &s,
        &host,
        &["tag", &format!("{image}:1.0"), &format!("{image}:0.9")],
    );
    // The archive from before, which must stay intact.
    ok(toolbox(
        &s,
        &host,
        &["update-image", &image, "--version", "0.9", "--compress"],
    ));
    let before = s.files();
    assert_eq!(before.len(), 1);
    let before_path = s.artifacts().join(&before[0]);
    let before_sum = sha256(&before_path);

    // How long a whole run takes, to spread the kills over it.
    let start = Instant::now();
    ok(toolbox(
        &s,
        &host,
        &["update-image", &image, "--version", "1.0", "--compress"],
    ));
    let full = start.elapsed();
    let target = s
        .artifacts()
        .join(format!("{image}_1.0_{}.zip", &id[7..19]));
    assert!(target.exists(), "{target:?} in {:?}", s.files());

    for round in 0..20u32 {
        fs::remove_file(&target).ok();
        let mut child = s
            .toolbox_std()
            .env("DOCKER_HOST", &host)
            .args(["update-image", &image, "--version", "1.0", "--compress"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full.mul_f64((f64::from(round) + 0.5) / 20.0));
        child.kill().ok(); // SIGKILL
        child.wait().unwrap();
        let out = toolbox(&s, &host, &["verify"]);
        assert!(
            out.status.success(),
            "round {round}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert_eq!(
            sha256(&before_path),
            before_sum,
            "round {round}: the archive from before is intact"
        );
    }
    // The next run completes and removes the leftovers.
    ok(toolbox(
        &s,
        &host,
        &["update-image", &image, "--version", "1.0", "--compress"],
    ));
    assert!(leftovers(&s.artifacts()).is_empty(), "{:?}", s.files());
    ok(toolbox(&s, &host, &["verify"]));

    // The same for compress: the .docker stays until the ZIP is complete.
    ok(toolbox(
        &s,
        &host,
        &["decompress", target.to_str().unwrap()],
    ));
    let tar = target.with_extension("docker");
    let tar_sum = sha256(&tar);
    let start = Instant::now();
    ok(toolbox(&s, &host, &["compress", tar.to_str().unwrap()]));
    let full = start.elapsed();
    ok(toolbox(
        &s,
        &host,
        &["decompress", target.to_str().unwrap()],
    ));
    for round in 0..20u32 {
        let mut child = s
            .toolbox_std()
            .args(["compress", tar.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full.mul_f64((f64::from(round) + 0.5) / 20.0));
        child.kill().ok();
        child.wait().unwrap();
        let out = toolbox(&s, &host, &["verify"]);
        assert!(
            out.status.success(),
            "round {round}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        if tar.exists() {
            assert_eq!(
                sha256(&tar),
                tar_sum,
                "round {round}: the .docker is intact"
            );
        } else {
            // The ZIP completed before the kill; go back for the next round.
            ok(toolbox(
                &s,
                &host,
                &["decompress", target.to_str().unwrap()],
            ));
        }
    }
    ok(toolbox(&s, &host, &["compress", tar.to_str().unwrap()]));
    assert!(leftovers(&s.artifacts()).is_empty());
    docker_ok(
        &s,
        &host,
        &[
            "rmi",
            "--no-prune",
            &format!("{image}:1.0"),
            &format!("{image}:0.9"),
        ],
    );
}

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mounting a small tmpfs (as root): {}",
            stderr(&out)
        );
        Tmpfs(path.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_a_clear_error_and_changes_nothing() {
    let s = Scratch::new();
    let small = s.path().join("small");
    let _mount = Tmpfs::mount(&small, "12m");
    // Random data does not compress: the ZIP cannot fit beside the tar.
    let mut data = vec![0u8; 8 << 20];
    let mut state = 88172645463325252u64;
    for b in data.iter_mut() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *b = state as u8;
    }
    let data = common::tar_holding(&data);
    let tar = small.join(format!("web_1.0_{ID}.docker"));
    fs::write(&tar, &data).unwrap();
    let out = s
        .toolbox()
        .args([
            "compress",
            tar.to_str().unwrap(),
            "--basedir",
            small.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("No space left on device") && err.contains(&format!("web_1.0_{ID}.zip")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let mut left: Vec<String> = fs::read_dir(&small)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.retain(|n| n != ".toolbox.lock");
    assert_eq!(
        left,
        vec![format!("web_1.0_{ID}.docker")],
        "the temporary file is gone"
    );
    assert!(fs::read(&tar).unwrap() == data, "the .docker is intact");
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn a_full_disk_during_a_save_leaves_nothing() {
    let host = common::engine();
    let s = Scratch::new();
    let (image, _) = big_image(&s, &host, 30);
    let small = s.path().join("small");
    let _mount = Tmpfs::mount(&small, "10m");
    let out = toolbox(
        &s,
        &host,
        &[
            "update-image",
            &image,
            "--version",
            "1.0",
            "--basedir",
            small.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("No space left on device"),
        "{}",
        stderr(&out)
    );
    let left: Vec<String> = fs::read_dir(&small)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".toolbox.lock")
        .collect();
    assert!(left.is_empty(), "{left:?}");
    docker_ok(&s, &host, &["rmi", "--no-prune", &format!("{image}:1.0")]);
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn concurrent_updates_end_with_one_correct_archive() {
    let host = common::engine();
    let s = Scratch::new();
    let (image, id) = big_image(&s, &host, 20);
    let spawn = |args: &[&str]| {
        s.toolbox_std()
            .env("DOCKER_HOST", &host)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let runs: Vec<_> = (0..4)
        .map(|_| {
            spawn(&[
                "update-image",
                &image,
                "--version",
                "1.0",
                "--compress",
                "--json",
            ])
        })
        .collect();
    let outputs: Vec<Output> = runs
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let written = outputs
        .iter()
        .map(|o| {
            assert!(o.status.success(), "{}", stderr(o));
            json(o)["written"].as_bool().unwrap()
        })
        .filter(|w| *w)
        .count();
    assert_eq!(written, 1, "exactly one run wrote the archive");
    assert_eq!(s.files(), vec![format!("{image}_1.0_{}.zip", &id[7..19])]);
    ok(toolbox(&s, &host, &["verify"]));

    // clean racing update-image: every archive left is whole, and the newest stays.
    for round in 0..3 {
        let version = format!("2.{round}");
        docker_ok(
            &s,
            &host,
            &[
                "tag",
                &format!("{image}:1.0"),
                &format!("{image}:{version}"),
            ],
        );
        let update = spawn(&["update-image", &image, "--version", &version]);
        let clean = spawn(&["clean", &image]);
        for child in [update, clean] {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", stderr(&out));
        }
        ok(toolbox(&s, &host, &["verify"]));
        assert!(
            s.files()
                .iter()
                .any(|f| f.contains(&format!("_{version}_"))),
            "{:?}",
            s.files()
        );
        docker_ok(
            &s,
            &host,
            &["rmi", "--no-prune", &format!("{image}:{version}")],
        );
    }
    docker_ok(&s, &host, &["rmi", "--no-prune", &format!("{image}:1.0")]);
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn verify_finds_flipped_bytes_truncation_and_renames() {
    let host = common::engine();
    let s = Scratch::new();
    let image = unique_image("verify");
    let ctx = scratch_context(s.path(), "verify me", "");
    let id = build(&s, &host, &image, "1.0", &ctx);
    let short = &id[7..19];
    ok(toolbox(
        &s,
        &host,
        &["update-image", &image, "--version", "1.0"],
    ));
    ok(toolbox(
        &s,
        &host,
        &[
            "update-image",
            &image,
            "--version",
            "1.0",
            "--compress",
            "--format",
            "zst",
        ],
    ));
    docker_ok(
        &s,
        &host,
        &["tag", &format!("{image}:1.0"), &format!("{image}:1.1")],
    );
    ok(toolbox(
        &s,
        &host,
        &["update-image", &image, "--version", "1.1", "--compress"],
    ));
    let out = ok(toolbox(&s, &host, &["verify"]));
    assert_eq!(
        stdout(&out).lines().filter(|l| l.ends_with(": ok")).count(),
        2,
        "{}",
        stdout(&out)
    );

    // A flipped byte inside a layer of a .docker archive.
    let zst = s.artifacts().join(format!("{image}_1.0_{short}.zst"));
    ok(toolbox(&s, &host, &["decompress", zst.to_str().unwrap()]));
    let tar = s.artifacts().join(format!("{image}_1.0_{short}.docker"));
    let mut bytes = fs::read(&tar).unwrap();
    common::flip_in_layer(&mut bytes, b"verify me");
    fs::write(&tar, &bytes).unwrap();
    let out = toolbox(&s, &host, &["verify", tar.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("layer") && stdout(&out).contains("digest"),
        "{}",
        stdout(&out)
    );

    // A truncated ZIP.
    let zip = s.artifacts().join(format!("{image}_1.1_{short}.zip"));
    let bytes = fs::read(&zip).unwrap();
    fs::write(&zip, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let out = toolbox(&s, &host, &["verify", &format!("{image}:1.1")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains(&format!("{image}_1.1_{short}.zip: ")),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains(": ok"));

    // A renamed archive whose name ID does not match its content.
    fs::write(&zip, &bytes).unwrap();
    let renamed = s.artifacts().join(format!("{image}_1.1_ffffffffffff.zip"));
    let mut rezipped = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; src = zipfile.ZipFile(sys.argv[1]); [n] = src.namelist(); \
             zipfile.ZipFile(sys.argv[2], 'w').writestr(sys.argv[3], src.read(n))",
        ])
        .arg(&zip)
        .arg(&renamed)
        .arg(format!("{image}_1.1_ffffffffffff.docker"))
        .spawn()
        .unwrap();
    assert!(rezipped.wait().unwrap().success());
    let out = toolbox(
        &s,
        &host,
        &["verify", renamed.to_str().unwrap(), zip.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("ffffffffffff") && text.contains(&id[7..]),
        "{text}"
    );
    assert!(
        text.contains(&format!("{image}_1.1_{short}.zip: ok")),
        "{text}"
    );
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
fn bad_input_never_panics() {
    let s = Scratch::new();
    let cases: Vec<(String, Vec<u8>)> = vec![
        (format!("empty_1.0_{ID}.zip"), vec![]),
        (format!("empty_1.0_{ID}.docker"), vec![]),
        (format!("empty_1.0_{ID}.zst"), vec![]),
        (
            format!("junk_1.0_{ID}.zip"),
            b"PK\x03\x04 not really".to_vec(),
        ),
        (format!("junk_1.0_{ID}.docker"), vec![0xff; 4096]),
        (
            format!("junk_1.0_{ID}.zst"),
            vec![0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3],
        ),
    ];
    for (name, data) in &cases {
        s.write(name, data, 0);
    }
    fs::create_dir(s.artifacts().join(format!("dir_1.0_{ID}.zip"))).unwrap();
    let out = s.toolbox().args(["verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert_eq!(
        text.lines().count(),
        cases.len(),
        "one line per archive: {text}"
    );
    assert!(
        !text.contains(": ok") && !stderr(&out).contains("panicked"),
        "{text}{}",
        stderr(&out)
    );
    for (name, _) in &cases {
        for cmd in ["verify", "decompress", "compress"] {
            let out = s
                .toolbox()
                .args([cmd, &format!("artifacts/{name}")])
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(1), "{cmd} {name}");
            assert!(
                !stderr(&out).contains("panicked"),
                "{cmd} {name}: {}",
                stderr(&out)
            );
        }
    }
    let out = s
        .toolbox()
        .args(["verify", &format!("artifacts/dir_1.0_{ID}.zip")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("not a file"), "{}", stdout(&out));
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn an_engine_that_dies_mid_save_leaves_nothing() {
    let _shared = common::engine(); // the packages and the permission to run dockerd
    let s = Scratch::new();
    let disposable = common::DisposableEngine::start(&s, &[]);
    let host = disposable.host();
    let (image, _) = big_image(&s, &host, 150);
    let child = s
        .toolbox_std()
        .env("DOCKER_HOST", &host)
        .args(["update-image", &image, "--version", "1.0", "--compress"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the engine once bytes are flowing into the temporary file.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let flowing = leftovers(&s.artifacts())
            .iter()
            .any(|p| fs::metadata(p).map(|m| m.len() > 1 << 20).unwrap_or(false));
        if flowing {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    disposable.kill();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(&format!("saving `{image}:1.0`")), "{err}");
    assert!(
        s.files().is_empty(),
        "nothing under an archive name, no temporary file: {:?}",
        s.files()
    );
}
