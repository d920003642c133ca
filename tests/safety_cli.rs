//! Nothing lost: locking, leftovers, verify, process kills, a full disk, concurrent runs.

mod common;

use std::fs;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{
    ID, Scratch, build, docker_ok, json, ok, output_within, scratch_context, stderr, stdout,
    toolbox, unique_image, wait_until,
};

/// How long a step may take before the test calls it a hang (never a measure of speed).
const HANG: Duration = Duration::from_secs(300);

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

/// Another process holding the artifacts directory's lock, until released (or dropped).
struct LockHolder(Child);

impl LockHolder {
    /// Takes the lock (`flock LOCK cat`, which holds it until its stdin closes) and returns
    /// once it is held.
    fn hold(s: &Scratch) -> LockHolder {
        let lock = s.artifacts().join(".toolbox.lock");
        let child = Command::new("flock")
            .arg(&lock)
            .arg("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("flock (util-linux) is installed");
        wait_until("flock holds the lock", HANG, || {
            !Command::new("flock")
                .args(["-n"])
                .arg(&lock)
                .arg("true")
                .status()
                .unwrap()
                .success()
        });
        LockHolder(child)
    }

    /// Lets the lock go.
    fn release(mut self) {
        drop(self.0.stdin.take());
        assert!(self.0.wait().unwrap().success());
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn mutating_commands_wait_for_the_lock_or_fail_with_no_wait() {
    let s = Scratch::new();
    s.touch(&format!("web_1.0_{ID}.zip"), 10);
    s.touch(&format!("web_2.0_{ID}.zip"), 0);
    let holder = LockHolder::hold(&s);

    let out = s.toolbox().args(["clean", "--no-wait"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("another toolbox run holds the lock"),
        "{}",
        stderr(&out)
    );
    assert_eq!(s.files().len(), 2, "nothing removed");

    // Read-only commands never take the lock: they end while it is held (they would wait for
    // as long as it is held otherwise), and never say they wait.
    for args in [vec!["images"], vec!["clean", "--dry-run"]] {
        let mut cmd = s.toolbox_std();
        cmd.args(&args);
        let out = output_within(cmd, HANG, &format!("{args:?} while the lock is held"));
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("waiting"), "{}", stderr(&out));
    }

    // Without --no-wait: it says it waits, and does nothing while it waits; once the lock is
    // free, the work.
    let mut clean = s
        .toolbox_std()
        .args(["clean"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    let err = clean.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut said = Vec::new();
    let deadline = Instant::now() + HANG;
    while !said
        .iter()
        .any(|l: &String| l.contains("waiting for another toolbox run"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => said.push(line),
            Err(e) => panic!("clean never said it waits ({e}): {said:?}"),
        }
    }
    assert!(clean.try_wait().unwrap().is_none(), "it waits: {said:?}");
    assert_eq!(s.files().len(), 2, "nothing removed while it waits");
    holder.release();
    let mut cmd_out = String::new();
    std::io::Read::read_to_string(&mut clean.stdout.take().unwrap(), &mut cmd_out).unwrap();
    let status = clean.wait().unwrap();
    said.extend(lines.iter());
    assert!(status.success(), "{said:?}");
    assert_eq!(cmd_out.trim(), format!("./artifacts/web_1.0_{ID}.zip"));
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
    // (A mutating run that needs nothing of the archive: `compress` would refuse this tar, which
    // holds no image.)
    let out = s.toolbox().args(["clean"]).output().unwrap();
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

    ok(toolbox(
        &s,
        &host,
        &["update-image", &image, "--version", "1.0", "--compress"],
    ));
    let target = s
        .artifacts()
        .join(format!("{image}_1.0_{}.zip", &id[7..19]));
    assert!(target.exists(), "{target:?} in {:?}", s.files());
    let zip_size = fs::metadata(&target).unwrap().len();

    // Kills spread over the write: each round's run is killed once its temporary file holds
    // a given share of the archive (it is then mid-write, which the leftover shows).
    const ROUNDS: u64 = 20;
    for round in 0..ROUNDS {
        let at = zip_size * (round + 1) / (ROUNDS + 2);
        let mut attempt = 0;
        loop {
            attempt += 1;
            fs::remove_file(&target).ok();
            // Only this run's temporary file can appear.
            for leftover in leftovers(&s.artifacts()) {
                fs::remove_file(leftover).unwrap();
            }
            let mut child = s
                .toolbox_std()
                .env("DOCKER_HOST", &host)
                .args(["update-image", &image, "--version", "1.0", "--compress"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mid_write = kill_once_written(&s.artifacts(), at, &mut child);
            if mid_write {
                break;
            }
            assert!(
                attempt < 3,
                "round {round}: three runs ended before their temporary file held {at} bytes"
            );
        }
        assert!(
            !target.exists(),
            "round {round}: killed mid-write, yet the archive is there"
        );
        assert_eq!(
            leftovers(&s.artifacts()).len(),
            1,
            "round {round}: the killed run's temporary file: {:?}",
            s.files()
        );
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
    // The next run completes and removes the leftover of the last one killed.
    assert!(!leftovers(&s.artifacts()).is_empty());
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
    ok(toolbox(&s, &host, &["compress", tar.to_str().unwrap()]));
    let zip_size = fs::metadata(&target).unwrap().len();
    ok(toolbox(
        &s,
        &host,
        &["decompress", target.to_str().unwrap()],
    ));
    for round in 0..ROUNDS {
        let at = zip_size * (round + 1) / (ROUNDS + 2);
        let mut attempt = 0;
        loop {
            attempt += 1;
            for leftover in leftovers(&s.artifacts()) {
                fs::remove_file(leftover).unwrap();
            }
            let mut child = s
                .toolbox_std()
                .args(["compress", tar.to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            if kill_once_written(&s.artifacts(), at, &mut child) {
                break;
            }
            // The ZIP completed before the kill: back to the .docker, and again.
            assert!(
                attempt < 3,
                "round {round}: three runs ended before their temporary file held {at} bytes"
            );
            ok(toolbox(
                &s,
                &host,
                &["decompress", target.to_str().unwrap()],
            ));
        }
        assert!(!target.exists(), "round {round}: killed mid-write");
        assert_eq!(leftovers(&s.artifacts()).len(), 1, "round {round}");
        let out = toolbox(&s, &host, &["verify"]);
        assert!(
            out.status.success(),
            "round {round}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert_eq!(
            sha256(&tar),
            tar_sum,
            "round {round}: the .docker is intact"
        );
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

/// Waits until a temporary file in `dir` holds at least `bytes`, then kills `child` (SIGKILL);
/// returns whether it was killed so (mid-write), rather than having ended first.
fn kill_once_written(dir: &Path, bytes: u64, child: &mut Child) -> bool {
    let deadline = Instant::now() + HANG;
    loop {
        let written = leftovers(dir)
            .iter()
            .any(|p| fs::metadata(p).is_ok_and(|m| m.len() >= bytes));
        if written {
            child.kill().unwrap();
            let status = child.wait().unwrap();
            // Killed, not ended by itself.
            return status.code().is_none();
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("no temporary file of {bytes} bytes after {HANG:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
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
    assert!(
        stdout(&out).contains("not a regular file"),
        "{}",
        stdout(&out)
    );
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
    // Kill the engine once bytes are flowing into the temporary file (and before the save
    // could end: the image is 150 MB, the kill comes after 1 MB).
    let mut child = child;
    wait_until("bytes flowing into the temporary file", HANG, || {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the save ended before the engine was killed"
        );
        leftovers(&s.artifacts())
            .iter()
            .any(|p| fs::metadata(p).is_ok_and(|m| m.len() > 1 << 20))
    });
    disposable.kill();
    wait_until("the engine's processes are gone", HANG, || {
        !disposable.running()
    });
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
