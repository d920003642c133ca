//! Archives and artifacts directories crafted to hurt: the binary stays inside the directories it
//! is given, in bounded time and memory, and never lets a bad input cost the last sound copy of
//! anything. Every archive here is made by the test (no checked-in blobs), and every case asserts
//! what happens, not only that nothing panics.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::images::{sha256, tar_of};
use common::{Scratch, stderr, stdout};

/// One entry of a test layer; names and link targets are written raw, hostile or not.
enum E<'a> {
    Dir(&'a str, u32),
    File(&'a str, &'a [u8]),
    Link(&'a str, &'a str),
}

fn layer(entries: &[E]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for e in entries {
        let (name, kind, data, mode, link): (&str, _, &[u8], u32, &str) = match *e {
            E::Dir(n, m) => (n, tar::EntryType::Directory, b"", m, ""),
            E::File(n, d) => (n, tar::EntryType::Regular, d, 0o644, ""),
            E::Link(n, t) => (n, tar::EntryType::Symlink, b"", 0o777, t),
        };
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(1_600_000_000);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_cksum();
        builder.append(&h, data).unwrap();
    }
    builder.into_inner().unwrap()
}

/// A classic `docker save` tar of these layers, with `config_extra` merged into its config;
/// returns the tar and the 12 hex digits of its ID.
fn image_tar(layers: &[Vec<u8>], config_extra: serde_json::Value) -> (Vec<u8>, String) {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256(l)).collect();
    let mut config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    if let (Some(c), Some(extra)) = (config.as_object_mut(), config_extra.as_object()) {
        for (k, v) in extra {
            c.insert(k.clone(), v.clone());
        }
    }
    let config = serde_json::to_vec(&config).unwrap();
    let id = sha256(&config);
    let mut files = Vec::new();
    let mut names = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let name = format!("layer{i}/layer.tar");
        files.push((name.clone(), l.clone()));
        names.push(name);
    }
    let config_name = format!("{}.json", &id[7..]);
    files.push((config_name.clone(), config));
    let manifest =
        serde_json::json!([{"Config": config_name, "RepoTags": ["web:1.0"], "Layers": names}]);
    files.push((
        "manifest.json".into(),
        serde_json::to_vec(&manifest).unwrap(),
    ));
    (tar_of(&files), id[7..19].to_string())
}

/// A sound image with one small layer.
fn small_image() -> (Vec<u8>, String) {
    image_tar(
        &[layer(&[
            E::Dir("app/", 0o755),
            E::File("app/hello", b"hello"),
        ])],
        serde_json::json!({}),
    )
}

/// Writes `tar` as the archive `name` in `dir`, in the format the name gives, through the
/// library's own writer.
fn write_archive(dir: &Path, name: &str, tar: &[u8]) -> PathBuf {
    let dest = dir.join(name);
    let body = toolbox::codec::Body {
        source: Path::new("test"),
        modified: std::time::SystemTime::now(),
        comment: None,
    };
    toolbox::codec::write_archive(&mut &tar[..], body, &dest, 3).unwrap()
}

/// A ZIP of stored entries laid out by hand (the `zip` crate refuses duplicate names).
fn handmade_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = out.len() as u32;
        let mut crc = crc32fast::Hasher::new();
        crc.update(data);
        let crc = crc.finalize();
        out.extend(0x0403_4b50u32.to_le_bytes());
        out.extend([20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend(crc.to_le_bytes());
        out.extend((data.len() as u32).to_le_bytes());
        out.extend((data.len() as u32).to_le_bytes());
        out.extend((name.len() as u16).to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend(name.as_bytes());
        out.extend(*data);
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend([20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        central.extend(crc.to_le_bytes());
        central.extend((data.len() as u32).to_le_bytes());
        central.extend((data.len() as u32).to_le_bytes());
        central.extend((name.len() as u16).to_le_bytes());
        central.extend([0u8; 12]);
        central.extend(offset.to_le_bytes());
        central.extend(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend(&central);
    let n = entries.len() as u16;
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0, 0, 0, 0]);
    out.extend(n.to_le_bytes());
    out.extend(n.to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// Runs a command to its end, failing the test if it is still running after `patience` (a
/// hang, not a slow machine: the limits are minutes).
fn finish(mut child: Child, patience: Duration) -> std::process::Output {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > patience {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("still running after {patience:?}: {}", stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn(s: &Scratch, args: &[&str]) -> Child {
    s.toolbox_std()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn run(s: &Scratch, args: &[&str]) -> std::process::Output {
    finish(spawn(s, args), Duration::from_secs(300))
}

/// Runs toolbox with its address space limited to `limit` bytes (`RLIMIT_AS`): a run that
/// needs more fails to allocate and aborts. Returns its exit code (`None`: killed by a signal)
/// and what it printed (stdout, then stderr).
fn run_limited(s: &Scratch, args: &[&str], limit: u64) -> (Option<i32>, String) {
    let (code, out, err) = run_limited_out(s, args, limit);
    (code, format!("{out}{err}"))
}

fn run_limited_out(s: &Scratch, args: &[&str], limit: u64) -> (Option<i32>, String, String) {
    use std::os::unix::process::CommandExt;
    let mut command = s.toolbox_std();
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        command.pre_exec(move || {
            let l = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &l) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = finish(command.spawn().unwrap(), Duration::from_secs(300));
    (out.status.code(), stdout(&out), stderr(&out))
}

/// What the memory tests allow a run: far below what the archives below would take if what they
/// claim were believed (1.3 GB and 1 GB), far above what a sound run needs.
const MEMORY: u64 = 640 << 20;

#[test]
fn extract_never_follows_a_link_out_of_the_directory() {
    let s = Scratch::new();
    let outside = s.path().join("outside");
    fs::create_dir_all(outside.join("victim")).unwrap();
    fs::set_permissions(&outside, fs::Permissions::from_mode(0o755)).unwrap();
    let seen = |p: &Path| {
        let m = fs::symlink_metadata(p).unwrap();
        (m.mode(), m.mtime(), m.mtime_nsec())
    };
    let before = (seen(&outside), seen(&outside.join("victim")));
    let target = outside.to_str().unwrap();
    let (tar, id) = image_tar(
        &[layer(&[
            E::Dir("a/", 0o755),
            E::Dir("a/victim/", 0o777),
            E::Link("a", target),
            E::File("a/victim/planted", b"x"),
        ])],
        serde_json::json!({}),
    );
    let archive = write_archive(&s.artifacts(), &format!("web_1.0_{id}.docker"), &tar);
    let dir = s.path().join("root");
    let out = run(
        &s,
        &["extract", archive.to_str().unwrap(), dir.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!((seen(&outside), seen(&outside.join("victim"))), before);
    assert!(!outside.join("victim/planted").exists());
    // What the link led to was made inside the directory instead.
    assert!(
        dir.join(outside.strip_prefix("/").unwrap())
            .join("victim/planted")
            .exists()
    );
}

#[test]
fn extract_writes_nothing_it_did_not_check() {
    let s = Scratch::new();
    let big: Vec<u8> = (0..50_000u32).map(|i| (i % 253) as u8).collect();
    let (mut tar, id) = image_tar(
        &[
            layer(&[E::File("first", b"1")]),
            layer(&[E::File("second", &big)]),
        ],
        serde_json::json!({}),
    );
    let at = tar.windows(4).position(|w| w == [0u8, 1, 2, 3]).unwrap() + 20_000;
    tar[at] ^= 0xff;
    for ext in ["docker", "zst", "zip"] {
        let archive = write_archive(&s.artifacts(), &format!("flip_1.0_{id}.{ext}"), &tar);
        let dir = s.path().join(format!("flipped-{ext}"));
        fs::create_dir(&dir).unwrap();
        let out = run(
            &s,
            &["extract", archive.to_str().unwrap(), dir.to_str().unwrap()],
        );
        assert_eq!(out.status.code(), Some(1), "{ext}: {}", stderr(&out));
        assert!(stderr(&out).contains("layer"), "{ext}: {}", stderr(&out));
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            0,
            "{ext}: left as found"
        );
    }
    // A sound archive renamed to another image's ID.
    let (tar, _) = small_image();
    let renamed = write_archive(&s.artifacts(), "web_1.0_0123456789ab.docker", &tar);
    let dir = s.path().join("renamed");
    let out = run(
        &s,
        &["extract", renamed.to_str().unwrap(), dir.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("0123456789ab"), "{}", stderr(&out));
    assert!(!dir.exists());
}

#[test]
fn an_archive_named_link_is_refused_before_anything_is_touched() {
    let s = Scratch::new();
    let elsewhere = s.path().join("elsewhere");
    fs::create_dir_all(elsewhere.join("deep")).unwrap();
    let (tar, id) = small_image();
    let real = write_archive(&elsewhere, &format!("web_1.0_{id}.docker"), &tar);
    let leftover = elsewhere.join("deep/.toolbox-tmp.1.2.3.web_0.1_0123456789ab.zip");
    fs::write(&leftover, b"someone else's").unwrap();
    for (command, name) in [("compress", "docker"), ("decompress", "zip")] {
        let link = s.artifacts().join(format!("web_1.0_{id}.{name}"));
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let out = run(&s, &[command, link.to_str().unwrap()]);
        assert_ne!(out.status.code(), Some(0), "{command}");
        assert!(
            stderr(&out).contains("not a regular file") || stderr(&out).contains("link"),
            "{command}: {}",
            stderr(&out)
        );
        assert!(
            leftover.exists(),
            "{command}: nothing swept in the link's target folder"
        );
        assert!(
            !elsewhere.join(".toolbox.lock").exists(),
            "{command}: nothing locked there"
        );
        assert_eq!(fs::read(&real).unwrap(), tar, "{command}");
        fs::remove_file(&link).unwrap();
    }
}

#[test]
fn a_junk_zip_never_replaces_the_sound_docker_beside_it() {
    let s = Scratch::new();
    let (tar, id) = small_image();
    let docker = write_archive(&s.artifacts(), &format!("web_1.0_{id}.docker"), &tar);
    let entry = format!("web_1.0_{id}.docker");
    let zip = s.artifacts().join(format!("web_1.0_{id}.zip"));
    fs::write(&zip, handmade_zip(&[(&entry, b"junk")])).unwrap();
    let out = run(&s, &["decompress", zip.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        fs::read(&docker).unwrap(),
        tar,
        "the sound .docker is untouched"
    );
    assert!(zip.exists(), "the .zip is kept for a person to look at");
    assert!(
        !s.files().iter().any(|f| f.contains(".toolbox-tmp.")),
        "{:?}",
        s.files()
    );
}

#[test]
fn a_zst_with_a_junk_frame_is_damaged_for_verify_and_decompress_alike() {
    let s = Scratch::new();
    let (tar, id) = small_image();
    let zst = write_archive(&s.artifacts(), &format!("web_1.0_{id}.zst"), &tar);
    let junk = write_archive(s.path(), "junk_1_0123456789ab.zst", b"junk that is no tar");
    let mut bytes = fs::read(&zst).unwrap();
    bytes.extend(fs::read(&junk).unwrap());
    fs::write(&zst, &bytes).unwrap();
    let out = run(&s, &["images", "--check", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&s, &["verify", zst.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = run(&s, &["decompress", zst.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(fs::read(&zst).unwrap(), bytes, "the .zst is kept as it was");
    assert!(!s.artifacts().join(format!("web_1.0_{id}.docker")).exists());
}

#[test]
fn clean_keeps_a_docker_whose_zip_twin_is_not_sound() {
    let s = Scratch::new();
    let (tar, id) = small_image();
    let docker = write_archive(&s.artifacts(), &format!("web_1.0_{id}.docker"), &tar);
    let zip = write_archive(&s.artifacts(), &format!("web_1.0_{id}.zip"), &tar);
    // A byte of the stored data flipped (level 3 deflates; the structure stays whole).
    let mut bytes = fs::read(&zip).unwrap();
    let mid = 30 + format!("web_1.0_{id}.docker").len() + 20 + 40;
    bytes[mid] ^= 0x01;
    fs::write(&zip, &bytes).unwrap();
    let check = run(&s, &["images", "--check", "--json"]);
    let rows = common::json(&check);
    let zip_row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["format"] == "zip")
        .unwrap();
    assert_eq!(zip_row["broken"], false, "the quick check cannot see it");
    let out = run(&s, &["clean", "--keep", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fs::read(&docker).unwrap(), tar, "the only sound copy stays");
    // With a sound twin the .docker goes, as before.
    let s2 = Scratch::new();
    let docker = write_archive(&s2.artifacts(), &format!("web_1.0_{id}.docker"), &tar);
    let out = run(&s2, &["compress", docker.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let again = write_archive(&s2.artifacts(), &format!("web_1.0_{id}.docker"), &tar);
    // Older than its .zip, so that the .zip is the latest (which clean never removes).
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(&again)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let out = run(&s2, &["clean", "--keep", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !docker.exists(),
        "its .zip, written and checked by toolbox, is known sound"
    );
}

#[test]
fn a_zip_of_two_entries_of_one_name_is_broken_everywhere() {
    let s = Scratch::new();
    let (tar, id) = small_image();
    let (other, _) = image_tar(&[layer(&[E::File("evil", b"e")])], serde_json::json!({}));
    let entry = format!("web_1.0_{id}.docker");
    let zip = s.artifacts().join(format!("web_1.0_{id}.zip"));
    fs::write(&zip, handmade_zip(&[(&entry, &tar), (&entry, &other)])).unwrap();
    let out = run(&s, &["images", "--check", "--json"]);
    let rows = common::json(&out);
    assert_eq!(rows[0]["broken"], true, "{rows}");
    assert!(
        rows[0]["problem"].as_str().unwrap().contains("2 entries"),
        "{rows}"
    );
    let out = run(&s, &["verify", zip.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    for command in ["inspect", "load"] {
        let out = run(
            &s,
            &[
                command,
                zip.to_str().unwrap(),
                "--host",
                "unix:///nonexistent",
            ],
        );
        assert_ne!(out.status.code(), Some(0), "{command}");
    }
    // Its twin made by toolbox reads the same in unzip and Python's zipfile.
    let (tar, id) = small_image();
    let sound = write_archive(s.path(), &format!("web_2.0_{id}.zip"), &tar);
    let listed = Command::new("unzip")
        .arg("-l")
        .arg(&sound)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains("1 file"));
}

#[test]
fn cache_files_that_are_no_regular_files_are_ignored_with_a_warning() {
    for kind in ["zero", "fifo"] {
        let s = Scratch::new();
        let (tar, id) = small_image();
        write_archive(&s.artifacts(), &format!("web_1.0_{id}.docker"), &tar);
        write_archive(&s.artifacts(), &format!("web_1.0_{id}.zst"), &tar);
        let cache = s.artifacts().join(".toolbox-cache.json");
        if kind == "zero" {
            std::os::unix::fs::symlink("/dev/zero", &cache).unwrap();
        } else {
            let c = std::ffi::CString::new(cache.to_str().unwrap()).unwrap();
            // SAFETY: c is a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        }
        for args in [
            vec!["images", "--created"],
            vec!["latest", "web"],
            vec!["clean", "--dry-run"],
        ] {
            let out = finish(spawn(&s, &args), Duration::from_secs(120));
            assert!(
                out.status.success(),
                "{kind} {args:?}: {:?} {}{}",
                out.status,
                stdout(&out),
                stderr(&out)
            );
            // `images --created` needs what the cache keeps (the others need nothing of it
            // here: the two archives are twins of one image).
            if args[0] == "images" {
                assert!(
                    stderr(&out).contains(".toolbox-cache.json` is not a regular file"),
                    "{kind} {args:?}: {}",
                    stderr(&out)
                );
            }
        }
    }
}

#[test]
fn memory_stays_in_proportion_whatever_the_archive_says() {
    let s = Scratch::new();
    // 20 images of manifest.json naming one 4 MB config: one parsed copy.
    let l = layer(&[E::File("f", b"x")]);
    let padding: Vec<u32> = (0..560_000).collect();
    let (tar, id) = image_tar(
        std::slice::from_ref(&l),
        serde_json::json!({"padding": padding}),
    );
    let mut members = common::tar_members(&tar);
    let manifest: serde_json::Value = serde_json::from_slice(&members["manifest.json"]).unwrap();
    let many = vec![manifest[0].clone(); 20];
    members.insert("manifest.json".into(), serde_json::to_vec(&many).unwrap());
    let files: Vec<(String, Vec<u8>)> = members.into_iter().collect();
    let zst = write_archive(
        &s.artifacts(),
        &format!("web_1.0_{id}.zst"),
        &tar_of(&files),
    );
    assert!(fs::metadata(&zst).unwrap().len() < 1 << 20);
    let (code, err) = run_limited(&s, &["verify", zst.to_str().unwrap()], MEMORY);
    assert_eq!(code, Some(0), "{err}");
    // 250 JSON members of 4 MB: refused, never all kept.
    let doc = {
        let mut d = b"{\"a\":\"".to_vec();
        d.extend(std::iter::repeat_n(b'x', (4 << 20) - 10));
        d.extend(b"\"}");
        d
    };
    let files: Vec<(String, Vec<u8>)> = (0..250)
        .map(|i| (format!("d{i}.json"), doc.clone()))
        .collect();
    let zst = write_archive(&s.artifacts(), "json_1.0_0123456789ab.zst", &tar_of(&files));
    assert!(fs::metadata(&zst).unwrap().len() < 1 << 20);
    for command in ["inspect", "verify"] {
        let (code, err) = run_limited(&s, &[command, zst.to_str().unwrap()], MEMORY);
        assert_eq!(code, Some(1), "{command}: {err}");
        assert!(err.contains("JSON documents"), "{command}: {err}");
    }
}

#[test]
fn what_archives_say_is_printed_escaped() {
    let s = Scratch::new();
    let (tar, id) = image_tar(
        &[layer(&[E::File("f", b"x")])],
        serde_json::json!({"config": {"Labels": {"x": "1\nId:            sha256:fake\u{1b}[2J"}}}),
    );
    let archive = write_archive(&s.artifacts(), &format!("web_1.0_{id}.docker"), &tar);
    let out = run(&s, &["inspect", archive.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("Id:")).count(),
        1,
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(text.contains("\\nId:"), "{text}");
    // A version with a newline in a file name, and a folder whose name is not UTF-8.
    use std::os::unix::ffi::OsStrExt;
    let folder = s.artifacts().join(std::ffi::OsStr::from_bytes(b"dir\xff"));
    fs::create_dir(&folder).unwrap();
    write_archive(&folder, &format!("api_1.0_{id}.docker"), &tar);
    write_archive(
        &s.artifacts(),
        &format!("web_2.0\n9.9\u{1b}[2J_{id}.docker"),
        &tar,
    );
    let out = run(&s, &["images"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("2.0\\n9.9\\x1b[2J"),
        "{}",
        stdout(&out)
    );
    let out = run(&s, &["latest", "api"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = std::ffi::OsStr::from_bytes(out.stdout.strip_suffix(b"\n").unwrap());
    assert!(
        s.path().join(printed).exists(),
        "{printed:?} is the path as it is"
    );
}

/// A big image, slow enough to compress and extract that a signal lands mid-work.
fn big_image() -> (Vec<u8>, String) {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..96 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let names: Vec<String> = (0..5000).map(|i| format!("many/f{i}")).collect();
    let mut entries = vec![E::Dir("many/", 0o755)];
    entries.extend(names.iter().map(|n| E::File(n, b"small")));
    entries.push(E::File("noise", &noise));
    image_tar(&[layer(&entries)], serde_json::json!({}))
}

/// Sends SIGTERM to `child` once `ready` holds, and waits for its end.
fn terminate_when(child: Child, ready: impl Fn() -> bool) -> std::process::Output {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "never got going"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: kill with a pid this test spawned and has not waited for.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    finish(child, Duration::from_secs(60))
}

#[test]
fn sigterm_leaves_nothing_behind() {
    let s = Scratch::new();
    let (tar, id) = big_image();
    let docker = write_archive(&s.artifacts(), &format!("big_1.0_{id}.docker"), &tar);
    let temp = |s: &Scratch| s.files().iter().any(|f| f.contains(".toolbox-tmp."));
    // Compressing: the temporary file exists, then the signal.
    let child = spawn(&s, &["compress", docker.to_str().unwrap()]);
    let out = terminate_when(child, || temp(&s));
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
    assert!(!temp(&s), "the temporary file is gone: {:?}", s.files());
    assert_eq!(fs::metadata(&docker).unwrap().len(), tar.len() as u64);
    // Extracting a .zst: during the spool, and while entries are made.
    let zst = write_archive(&s.artifacts(), &format!("big_1.0_{id}.zst"), &tar);
    for phase in ["spool", "entries"] {
        let dir = s.path().join(format!("root-{phase}"));
        fs::create_dir(&dir).unwrap();
        let child = spawn(
            &s,
            &["extract", zst.to_str().unwrap(), dir.to_str().unwrap()],
        );
        let spooling = || {
            fs::read_dir(s.path()).unwrap().flatten().any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".toolbox-extract.")
            })
        };
        let out = match phase {
            "spool" => terminate_when(child, spooling),
            _ => terminate_when(child, || dir.join("many").exists()),
        };
        assert_eq!(out.status.code(), Some(130), "{phase}: {}", stderr(&out));
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            0,
            "{phase}: DIR as found"
        );
        assert!(!spooling(), "{phase}: the spool is gone");
    }
}

/// A folder of the artifacts directory that cannot be read (`lost+found`) is skipped with one
/// warning; every store command still answers. (The run drops the capabilities that let root
/// read any folder, so that the folder's mode counts.)
#[test]
fn an_unreadable_folder_is_skipped_with_a_warning() {
    let s = Scratch::new();
    let (tar, id) = small_image();
    write_archive(&s.artifacts(), &format!("web_1.0_{id}.docker"), &tar);
    let hidden = s.artifacts().join("lost+found");
    fs::create_dir(&hidden).unwrap();
    write_archive(&hidden, &format!("web_9.0_{id}.docker"), &tar);
    fs::set_permissions(&hidden, fs::Permissions::from_mode(0o000)).unwrap();
    for args in [
        vec!["images"],
        vec!["latest", "web"],
        vec!["clean", "--dry-run"],
    ] {
        let out = s
            .command("setpriv")
            .args(["--bounding-set=-dac_override,-dac_read_search", "--"])
            .arg(env!("CARGO_BIN_EXE_toolbox"))
            .args(&args)
            .current_dir(s.path())
            .env_remove("TOOLBOX_ARTIFACTS_DIR")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(
            err.matches("lost+found").count(),
            1,
            "{args:?}: one warning: {err}"
        );
        assert!(err.contains("cannot be read"), "{args:?}: {err}");
    }
    fs::set_permissions(&hidden, fs::Permissions::from_mode(0o755)).unwrap();
}
