//! End-to-end tests of the engine-free commands, driving the real binary.

mod common;

use std::fs;
use std::process::Command as StdCommand;

use common::{ID, Scratch, json, stderr, stdout};

const OTHER: &str = "fedcba987654";

#[test]
fn parse_prints_parts_and_json() {
    let s = Scratch::new();
    let out = s
        .toolbox()
        .args([
            "parse",
            &format!("my_app_1.2_{ID}.zip"),
            &format!("web__{ID}.docker"),
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(
        v,
        serde_json::json!([
            {"image": "my_app", "version": "1.2", "id": ID, "format": "zip", "dirty": false},
            {"image": "web", "version": "", "id": ID, "format": "docker", "dirty": false},
        ])
    );
    let out = s
        .toolbox()
        .args(["parse", &format!("web_latest_{ID}.bak")])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains("IMAGE") && text.contains("bak") && text.contains("yes"),
        "{text}"
    );
}

#[test]
fn parse_refuses_non_archive_names() {
    let s = Scratch::new();
    for bad in [
        format!("web_1.0_{ID}.docker.bak"),
        format!("web_1.0_{ID}.tar.gz"),
        "web_1.0_0123456789AB.zip".to_string(),
        "web_1.0_0123456789a.zip".to_string(),
        "web_1.0_0123456789abc.zip".to_string(),
    ] {
        let out = s.toolbox().args(["parse", &bad]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{bad}");
        assert!(
            stderr(&out).contains(&bad),
            "the error names {bad}: {}",
            stderr(&out)
        );
        assert!(stdout(&out).is_empty());
    }
}

#[test]
fn is_dirty_exit_codes() {
    let s = Scratch::new();
    for v in ["1.2.3.0", "1.2.3+dirty", "1.2.3.dirty", "latest", "dev"] {
        let out = s.toolbox().args(["is-dirty", v]).output().unwrap();
        assert_eq!(
            (out.status.code(), stdout(&out).as_str()),
            (Some(0), "dirty\n"),
            "{v}"
        );
    }
    for v in [
        "1.2.3.00",
        "1.2.3",
        "1.2.3-dirty",
        "Latest",
        "develop",
        "v1.2.3.0",
        "",
    ] {
        let out = s.toolbox().args(["is-dirty", v]).output().unwrap();
        assert_eq!(
            (out.status.code(), stdout(&out).as_str()),
            (Some(1), "clean\n"),
            "{v}"
        );
    }
}

#[test]
fn images_lists_by_image_latest_first_with_foreign_files() {
    let s = Scratch::new();
    s.touch(&format!("web_1.9_{ID}.zip"), 10);
    s.touch(&format!("web_1.10_{ID}.docker"), 20);
    s.touch(&format!("web_latest_{OTHER}.docker"), 0);
    s.touch(&format!("web_2.0_{ID}.bak"), 0);
    s.touch(&format!("sub/dir/api_0.1_{ID}.zip"), 0);
    s.touch(&format!(".hidden/web_9.9_{ID}.zip"), 0);
    s.touch(&format!(".toolbox-tmp.1.web_9.8_{ID}.zip"), 0);
    s.touch("notes.txt", 0);
    fs::create_dir(s.artifacts().join(format!("web_5.0_{ID}.zip"))).unwrap();
    std::os::unix::fs::symlink("notes.txt", s.artifacts().join(format!("web_6.0_{ID}.zip")))
        .unwrap();

    let out = s.toolbox().args(["images", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    let rows: Vec<(String, String, String)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["image"].as_str().unwrap().to_string(),
                r["version"].as_str().unwrap().to_string(),
                r["format"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expect = |i: &str, v: &str, f: &str| (i.to_string(), v.to_string(), f.to_string());
    assert_eq!(
        rows,
        vec![
            expect("api", "0.1", "zip"),
            expect("web", "1.10", "docker"),
            expect("web", "1.9", "zip"),
            expect("web", "latest", "docker"),
            expect("web", "2.0", "bak"),
        ]
    );
    let api = &v[0];
    assert_eq!(api["size"], common::sound_body("zip").len());
    assert_eq!(api["dirty"], false);
    assert_eq!(api["id"], ID);
    assert_eq!(api["modified"], "2030-03-17T17:46:40Z");
    assert_eq!(api["path"], format!("./artifacts/sub/dir/api_0.1_{ID}.zip"));
    assert_eq!(v[3]["dirty"], true);

    let out = s.toolbox().args(["images", "api"]).output().unwrap();
    let text = stdout(&out);
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap()
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "IMAGE", "VERSION", "IMAGE ID", "FORMAT", "SIZE", "MODIFIED", "DIRTY"
        ]
    );
    assert_eq!(lines.count(), 1);
}

#[test]
fn latest_follows_the_rule() {
    let s = Scratch::new();
    // clean beats dirty, even newer and greater dirty ones
    s.touch(&format!("web_1.2.3_{ID}.zip"), 100);
    s.touch(&format!("web_1.2.4.0_{ID}.zip"), 0);
    s.touch(&format!("web_1.3+dirty_{ID}.zip"), 0);
    s.touch(&format!("web_latest_{ID}.docker"), 0);
    // parsed beats unparsed; numeric order; pre-release below release
    s.touch(&format!("api_nightly_{ID}.zip"), 0);
    s.touch(&format!("api_1.9_{ID}.zip"), 0);
    s.touch(&format!("api_1.10.0-rc.1_{ID}.zip"), 0);
    s.touch(&format!("api_v1.10_{ID}.docker"), 50);
    // equal versions: newer file, then greater name
    s.touch(&format!("db_1.2_{ID}.zip"), 10);
    s.touch(&format!("db_1.2.0_{ID}.zip"), 5);
    s.touch(&format!("cache_2_{ID}.docker"), 5);
    s.touch(&format!("cache_2_{ID}.zip"), 5);
    // foreign files never count
    s.touch(&format!("db_9.0_{ID}.bak"), 0);

    let out = s.toolbox().args(["latest", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    let version = |image: &str| v[image]["version"].as_str().unwrap().to_string();
    assert_eq!(version("web"), "1.2.3");
    assert_eq!(version("api"), "v1.10");
    assert_eq!(version("db"), "1.2.0");
    assert_eq!(v["cache"]["format"], "zip");
    assert_eq!(v.as_object().unwrap().len(), 4);
    assert_eq!(v["web"]["path"], format!("./artifacts/web_1.2.3_{ID}.zip"));

    let out = s
        .toolbox()
        .args(["latest", "web", "--allow-dirty"])
        .output()
        .unwrap();
    assert_eq!(
        stdout(&out),
        format!("./artifacts/web_1.3+dirty_{ID}.zip\n")
    );
    let out = s.toolbox().args(["latest", "web"]).output().unwrap();
    assert_eq!(stdout(&out), format!("./artifacts/web_1.2.3_{ID}.zip\n"));
}

#[test]
fn latest_of_an_image_without_archives_is_an_error() {
    let s = Scratch::new();
    s.touch(&format!("web_1.0_{ID}.bak"), 0);
    s.touch(&format!("api_1.0_{ID}.zip"), 0);
    let out = s.toolbox().args(["latest", "api", "web"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("`web`"), "{}", stderr(&out));
}

#[test]
fn only_dirty_archives_still_have_a_latest() {
    let s = Scratch::new();
    s.touch(&format!("web_latest_{ID}.zip"), 10);
    s.touch(&format!("web_dev_{OTHER}.zip"), 0);
    let out = s.toolbox().args(["latest", "web"]).output().unwrap();
    assert_eq!(stdout(&out), format!("./artifacts/web_dev_{OTHER}.zip\n"));
}

#[test]
fn config_prints_the_deploy_configuration() {
    let s = Scratch::new();
    s.touch(&format!("web_1.2.3+build.7_{ID}.zip"), 0);
    s.touch(&format!("web_1.2.2_{ID}.zip"), 0);
    s.touch(&format!("web_1.2.4+dirty_{ID}.zip"), 0);
    s.touch(&format!("api_2.0_{OTHER}.docker"), 0);
    s.touch(&format!("api_latest_{ID}.docker"), 0);
    let out = s
        .toolbox()
        .args(["config", "--baseurl", "https://files.example/rel/"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let yaml: serde_yaml::Value = serde_yaml::from_slice(&out.stdout).unwrap();
    let web = &yaml["images"]["web"];
    assert_eq!(
        web["url"].as_str(),
        Some(format!("https://files.example/rel/web_1.2.3+build.7_{ID}.zip").as_str())
    );
    assert_eq!(web["version"].as_str(), Some("1.2.3+build.7"));
    assert_eq!(web["id"].as_str(), Some(ID));
    assert_eq!(web["format"].as_str(), Some("zip"));
    assert_eq!(web["tag"].as_str(), Some("web:1.2.3-build.7"));
    assert_eq!(yaml["images"]["api"]["tag"].as_str(), Some("api:2.0"));

    let out = s
        .toolbox()
        .args([
            "config",
            "--baseurl",
            "https://files.example/rel",
            "--allow-dirty",
            "--json",
        ])
        .output()
        .unwrap();
    let v = json(&out);
    // Dirty versions rank like clean ones; a parseable version still beats `latest`.
    assert_eq!(v["images"]["api"]["tag"], "api:2.0");
    assert_eq!(v["images"]["web"]["tag"], "web:1.2.4-dirty");
    assert_eq!(
        v["images"]["web"]["url"],
        format!("https://files.example/rel/web_1.2.4+dirty_{ID}.zip")
    );
}

#[test]
fn config_with_an_untaggable_version_is_an_error() {
    let s = Scratch::new();
    s.touch(&format!("web_.hidden-ish_{ID}.zip"), 0);
    let out = s
        .toolbox()
        .args(["config", "--baseurl", "https://h"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(".hidden-ish"), "{}", stderr(&out));
}

#[test]
fn clean_keeps_the_latest_pairs_and_touches_nothing_else() {
    let s = Scratch::new();
    s.touch(&format!("web_1.0_{ID}.zip"), 40);
    // A .docker goes for a compressed twin only when that twin is sound: a real image.
    let (tar, real) = common::images::small_image("web:1.1");
    s.write(&format!("web_1.1_{real}.docker"), &tar, 30);
    let zip = common::images::archive_bytes(&tar, &format!("web_1.1_{real}.zip"));
    s.write(&format!("web_1.1_{real}.zip"), &zip, 30);
    s.touch(&format!("web_1.2_{OTHER}.docker"), 20);
    s.touch(&format!("web_latest_{ID}.docker"), 0);
    s.touch(&format!("web_0.1_{ID}.bak"), 50);
    s.touch(&format!("api_1.0_{ID}.zip"), 40);
    s.touch(&format!("api_2.0_{ID}.zip"), 30);
    s.touch("web_readme.txt", 0);
    let before = s.files();

    let dry = s
        .toolbox()
        .args(["clean", "web", "--keep", "2", "--dry-run"])
        .output()
        .unwrap();
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert_eq!(s.files(), before, "--dry-run removes nothing");
    let mut expected = vec![
        format!("./artifacts/web_1.0_{ID}.zip"),
        format!("./artifacts/web_1.1_{real}.docker"),
        format!("./artifacts/web_latest_{ID}.docker"),
    ];
    expected.sort();
    let mut listed: Vec<String> = stdout(&dry).lines().map(String::from).collect();
    listed.sort();
    assert_eq!(listed, expected);

    let out = s
        .toolbox()
        .args(["clean", "web", "--keep", "2", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let removed = json(&out);
    assert_eq!(removed.as_array().unwrap().len(), 3);
    assert!(
        removed
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["image"] == "web" && r["size"].as_u64().unwrap() > 0)
    );
    let mut left = s.files();
    left.sort();
    assert_eq!(
        left,
        vec![
            // What clean verified in full, it remembers.
            ".toolbox-cache.json".to_string(),
            format!("api_1.0_{ID}.zip"),
            format!("api_2.0_{ID}.zip"),
            format!("web_0.1_{ID}.bak"),
            format!("web_1.1_{real}.zip"),
            format!("web_1.2_{OTHER}.docker"),
            "web_readme.txt".to_string(),
        ]
    );

    // Without IMAGE: every image, keep 1.
    let out = s.toolbox().args(["clean"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        s.files(),
        vec![
            ".toolbox-cache.json".to_string(),
            format!("api_2.0_{ID}.zip"),
            format!("web_0.1_{ID}.bak"),
            format!("web_1.2_{OTHER}.docker"),
            "web_readme.txt".to_string(),
        ]
    );
}

#[test]
fn clean_never_follows_links_out_of_the_basedir() {
    let s = Scratch::new();
    let outside = s.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join(format!("web_0.1_{ID}.zip")), b"keep me").unwrap();
    std::os::unix::fs::symlink(&outside, s.artifacts().join("linked")).unwrap();
    std::os::unix::fs::symlink(
        outside.join(format!("web_0.1_{ID}.zip")),
        s.artifacts().join(format!("web_0.2_{ID}.zip")),
    )
    .unwrap();
    s.touch(&format!("web_1.0_{ID}.zip"), 0);
    let out = s.toolbox().args(["clean", "web"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read(outside.join(format!("web_0.1_{ID}.zip"))).unwrap(),
        b"keep me"
    );
    assert!(
        s.artifacts()
            .join(format!("web_0.2_{ID}.zip"))
            .symlink_metadata()
            .is_ok()
    );
}

fn sample_tar(len: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..len).map(|i| ((i * 31) ^ (i >> 9)) as u8).collect();
    common::tar_holding(&data)
}

/// A real image of about `len` bytes (compress and decompress check the image they move): its
/// `docker save` tar and the 12 hex digits its archives are named with.
fn sample_image(len: usize) -> (Vec<u8>, String) {
    use common::images::{Entry, Layout, image_archive, layer};
    let data: Vec<u8> = (0..len).map(|i| ((i * 31) ^ (i >> 9)) as u8).collect();
    let archive = image_archive(
        Layout::Classic,
        "web:1.0",
        "2024-01-02T03:04:05Z",
        &[layer(&[Entry::File("data", &data)])],
    );
    (archive.tar(), archive.short_id())
}

#[test]
fn compress_and_decompress_round_trip_readable_by_unzip_and_python() {
    let s = Scratch::new();
    let (data, id) = sample_image(5 << 20);
    let tar = s.write(&format!("web_1.0_{id}.docker"), &data, 0);
    let out = s.toolbox().args(["compress", "web:1.0"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let zip = s.artifacts().join(format!("web_1.0_{id}.zip"));
    assert_eq!(stdout(&out).trim(), format!("./artifacts/web_1.0_{id}.zip"));
    assert!(!tar.exists(), "the .docker is removed");
    assert_eq!(
        s.files(),
        vec![".toolbox-cache.json".into(), format!("web_1.0_{id}.zip")]
    );

    let unzipped = StdCommand::new("unzip")
        .arg("-p")
        .arg(&zip)
        .output()
        .expect("unzip is installed");
    assert!(unzipped.status.success());
    assert!(unzipped.stdout == data, "unzip gives the original tar");
    let listed = StdCommand::new("unzip")
        .arg("-Z1")
        .arg(&zip)
        .output()
        .unwrap();
    assert_eq!(stdout(&listed).trim(), format!("web_1.0_{id}.docker"));
    let py = StdCommand::new("python3")
        .args([
            "-c",
            "import sys, zipfile, hashlib; z = zipfile.ZipFile(sys.argv[1]); \
             assert z.testzip() is None; n = z.namelist(); assert len(n) == 1, n; \
             print(n[0], hashlib.sha256(z.read(n[0])).hexdigest())",
        ])
        .arg(&zip)
        .output()
        .expect("python3 is installed");
    assert!(py.status.success(), "{}", stderr(&py));
    let sha = StdCommand::new("sha256sum").arg(&zip).output().unwrap();
    assert!(!sha.stdout.is_empty());
    let expected_sha = {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        fs::write(&p, &data).unwrap();
        stdout(&StdCommand::new("sha256sum").arg(&p).output().unwrap())
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        stdout(&py).trim(),
        format!("web_1.0_{id}.docker {expected_sha}")
    );

    let out = s
        .toolbox()
        .args(["decompress", zip.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fs::read(&tar).unwrap(), data);
    assert_eq!(
        s.files(),
        vec![".toolbox-cache.json".into(), format!("web_1.0_{id}.docker")]
    );
}

#[test]
fn compress_errors_leave_everything_as_it_was() {
    let s = Scratch::new();
    s.touch(&format!("web_1.0_{ID}.zip"), 0);
    let before = s.files();
    let out = s.toolbox().args(["compress", "web"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(".docker archive of `web`"),
        "{}",
        stderr(&out)
    );
    let out = s
        .toolbox()
        .args(["compress", &format!("./artifacts/web_1.0_{ID}.zip")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("compress takes a .docker archive"),
        "{}",
        stderr(&out)
    );
    // A ZIP whose ends pass the quick check (`touch` makes one) but whose one entry is not
    // named after the archive (`a.docker`) is not an archive's ZIP.
    let out = s
        .toolbox()
        .args(["decompress", "web:1.0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            "web_1.0_{ID}.zip` is not a valid ZIP archive: its entry is named `a.docker`, \
             expected `web_1.0_{ID}.docker`"
        )),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("panicked"));
    assert_eq!(s.files(), before);
}

#[test]
fn basedir_comes_from_flag_then_env_then_file_then_default() {
    let s = Scratch::new();
    for dir in ["flag", "env", "file"] {
        fs::create_dir(s.path().join(dir)).unwrap();
        fs::write(
            s.path().join(dir).join(format!("{dir}_1.0_{ID}.zip")),
            common::sound_body("zip"),
        )
        .unwrap();
    }
    s.touch(&format!("default_1.0_{ID}.zip"), 0);
    fs::create_dir(s.path().join("config")).unwrap();
    let image_of = |out: std::process::Output| {
        assert!(out.status.success(), "{}", stderr(&out));
        json(&out)
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(
        image_of(s.toolbox().args(["latest", "--json"]).output().unwrap()),
        "default"
    );
    fs::write(
        s.path().join("config/toolbox.yaml"),
        "artifacts_dir: file\n",
    )
    .unwrap();
    assert_eq!(
        image_of(s.toolbox().args(["latest", "--json"]).output().unwrap()),
        "file"
    );
    let env = || {
        let mut c = s.toolbox();
        c.env("TOOLBOX_ARTIFACTS_DIR", "env");
        c
    };
    assert_eq!(
        image_of(env().args(["latest", "--json"]).output().unwrap()),
        "env"
    );
    assert_eq!(
        image_of(
            env()
                .args(["latest", "--json", "--basedir", "flag"])
                .output()
                .unwrap()
        ),
        "flag"
    );
    // An explicit config file beats the default one.
    fs::write(s.path().join("other.yaml"), "artifacts_dir: flag\n").unwrap();
    assert_eq!(
        image_of(
            s.toolbox()
                .args(["latest", "--json", "--config", "other.yaml"])
                .output()
                .unwrap()
        ),
        "flag"
    );
}

#[test]
fn bad_config_names_the_key_and_the_file() {
    let s = Scratch::new();
    fs::write(
        s.path().join("bad.yaml"),
        "artifacts_dir: artifacts\nimages:\n  web:\n    contxt: .\n",
    )
    .unwrap();
    let out = s
        .toolbox()
        .args(["images", "--config", "bad.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("bad.yaml") && err.contains("contxt"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");

    fs::write(s.path().join("bad.yaml"), "api_timeout_s: [1]\n").unwrap();
    let out = s
        .toolbox()
        .args(["images", "--config", "bad.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("api_timeout_s"), "{}", stderr(&out));

    let out = s
        .toolbox()
        .args(["images", "--config", "missing.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("missing.yaml"));

    let out = s
        .toolbox()
        .args(["images"])
        .env("TOOLBOX_DOCKER_API_TIMEOUT", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("TOOLBOX_DOCKER_API_TIMEOUT"));
}

#[test]
fn missing_basedir_is_one_clear_line() {
    let s = Scratch::new();
    for cmd in [
        vec!["images"],
        vec!["latest"],
        vec!["clean"],
        vec!["config", "--baseurl", "u"],
        vec!["compress", "web"],
    ] {
        let out = s
            .toolbox()
            .args(&cmd)
            .args(["--basedir", "nowhere"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{cmd:?}");
        let err = stderr(&out);
        assert!(
            err.contains("nowhere") && err.lines().count() == 1,
            "{cmd:?}: {err}"
        );
    }
    assert!(!s.path().join("nowhere").exists());
}

#[test]
fn wrong_usage_exits_2() {
    let s = Scratch::new();
    for args in [
        vec!["frobnicate"],
        vec!["parse"],
        vec!["clean", "--keep", "0"],
        vec!["config"],
        vec!["images", "--bogus"],
    ] {
        let out = s.toolbox().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn many_tricky_names_round_trip_through_images() {
    let s = Scratch::new();
    let names = [
        format!("a_b_c_1.0_{ID}.zip"),
        format!("a_b__{ID}.zip"),
        format!("x.y-z_1.0-rc.1+meta_{ID}.docker"),
        format!("web_1.2.3.0_{ID}.zip"),
        format!("web_1.2.3.00_{ID}.zip"),
        format!("UPPER_V1_{ID}.zip"),
        format!("sp ace_1 0_{ID}.zip"),
        format!("web_1.0_{ID}."),
    ];
    for n in &names {
        s.touch(n, 0);
    }
    let out = s.toolbox().args(["images", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    let mut got: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}_{}_{}.{}",
                r["image"].as_str().unwrap(),
                r["version"].as_str().unwrap(),
                r["id"].as_str().unwrap(),
                r["format"].as_str().unwrap()
            )
        })
        .collect();
    got.sort();
    let mut want = names.to_vec();
    want.sort();
    assert_eq!(got, want);
    let dirty: Vec<bool> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["image"] == "web" && r["format"] == "zip")
        .map(|r| r["dirty"].as_bool().unwrap())
        .collect();
    assert_eq!(
        dirty,
        [false, true],
        "1.2.3.00 is clean and ranks first; 1.2.3.0 is dirty"
    );
}

#[test]
fn compress_formats_and_levels() {
    let s = Scratch::new();
    let (data, id) = sample_image(3 << 20);
    s.write(&format!("web_1.0_{id}.docker"), &data, 0);
    let out = s
        .toolbox()
        .args(["compress", "web:1.0", "--format", "zst", "--level", "7"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let zst = s.artifacts().join(format!("web_1.0_{id}.zst"));
    assert_eq!(
        s.files(),
        vec![".toolbox-cache.json".into(), format!("web_1.0_{id}.zst")]
    );
    let unzstd = StdCommand::new("zstd")
        .args(["-d", "-c"])
        .arg(&zst)
        .output()
        .expect("zstd is installed");
    assert!(
        unzstd.status.success() && unzstd.stdout == data,
        "zstd -d gives the tar back"
    );

    // zst archives count for latest, images and decompress like the others.
    let out = s
        .toolbox()
        .args(["latest", "web", "--json"])
        .output()
        .unwrap();
    assert_eq!(json(&out)["web"]["format"], "zst");
    let out = s.toolbox().args(["decompress", "web"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read(s.artifacts().join(format!("web_1.0_{id}.docker"))).unwrap(),
        data
    );

    // Level 0 stores: the ZIP is a little larger than the tar, and unzip reads it.
    let out = s
        .toolbox()
        .args(["compress", "web", "--level", "0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let zip = s.artifacts().join(format!("web_1.0_{id}.zip"));
    assert!(fs::metadata(&zip).unwrap().len() > data.len() as u64);
    let unzipped = StdCommand::new("unzip")
        .arg("-p")
        .arg(&zip)
        .output()
        .unwrap();
    assert!(unzipped.stdout == data);

    // The config file's compress_format and compress_level apply; flags beat them.
    s.toolbox().args(["decompress", "web"]).assert().success();
    fs::write(
        s.path().join("c.yaml"),
        "compress_format: zst\ncompress_level: 19\n",
    )
    .unwrap();
    s.toolbox()
        .args(["compress", "web", "--config", "c.yaml"])
        .assert()
        .success();
    assert_eq!(
        s.files(),
        vec![".toolbox-cache.json".into(), format!("web_1.0_{id}.zst")]
    );
    s.toolbox().args(["decompress", "web"]).assert().success();
    s.toolbox()
        .args([
            "compress", "web", "--config", "c.yaml", "--format", "zip", "--level", "1",
        ])
        .assert()
        .success();
    assert_eq!(
        s.files(),
        vec![".toolbox-cache.json".into(), format!("web_1.0_{id}.zip")]
    );

    // Bad levels are clear errors; nothing changes.
    s.toolbox().args(["decompress", "web"]).assert().success();
    for (format, level) in [("zip", "10"), ("zst", "0"), ("zst", "20")] {
        let out = s
            .toolbox()
            .args(["compress", "web", "--format", format, "--level", level])
            .output()
            .unwrap();
        // An invalid argument is wrong usage, as the README's exit codes say.
        assert_eq!(out.status.code(), Some(2), "{format} {level}");
        assert!(
            stderr(&out).contains(&format!("level {level}")),
            "{}",
            stderr(&out)
        );
    }
    let out = s
        .toolbox()
        .args(["compress", "web", "--format", "gzip"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        s.files(),
        vec![".toolbox-cache.json".into(), format!("web_1.0_{id}.docker")]
    );
}

#[test]
fn clean_drops_a_docker_archive_with_a_zst_twin() {
    let s = Scratch::new();
    // The twin must be known sound: a real image, verified in full by clean.
    let (tar, id) = common::images::small_image("web:1.0");
    s.write(&format!("web_1.0_{id}.docker"), &tar, 10);
    let zst = common::images::archive_bytes(&tar, &format!("web_1.0_{id}.zst"));
    s.write(&format!("web_1.0_{id}.zst"), &zst, 10);
    let out = s.toolbox().args(["clean", "--json"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(json(&out)[0]["format"], "docker");
    assert_eq!(
        s.files(),
        vec![".toolbox-cache.json".into(), format!("web_1.0_{id}.zst")]
    );
}

/// File times beyond what a calendar or a ZIP holds never make a command panic: `images`
/// shows `-` for a time RFC 3339 cannot write, and `compress` clamps the ZIP entry's time
/// into the years MS-DOS dates hold.
#[test]
fn absurd_file_times_never_panic() {
    use std::time::{Duration, SystemTime};
    let s = Scratch::new();
    // ext4 keeps the years 1901 to 2446; tmpfs keeps any time, so the far ones go there.
    let base = match tempfile::tempdir_in("/dev/shm") {
        Ok(dir) => dir,
        Err(_) => tempfile::tempdir().unwrap(),
    };
    let at = |seconds: i64| match u64::try_from(seconds) {
        Ok(after) => SystemTime::UNIX_EPOCH + Duration::from_secs(after),
        Err(_) => SystemTime::UNIX_EPOCH - Duration::from_secs(seconds.unsigned_abs()),
    };
    // (image, seconds from 1970, RFC 3339 when it has one, the clamped ZIP date and time)
    let max = "2107-12-31 23:59:58";
    let min = "1980-01-01 00:00:00";
    let cases = [
        ("early", -2_000_000_000, Some("1906-08-16T20:26:40Z"), min),
        ("late", 15_000_000_000, Some("2445-05-01T02:40:00Z"), max),
        ("far", 300_000_000_000, None, max),
        ("before", -300_000_000_000, None, min),
    ];
    let (data, id) = sample_image(1000);
    let mut held = Vec::new();
    for (image, seconds, _, _) in cases {
        let path = base.path().join(format!("{image}_1.0_{id}.docker"));
        fs::write(&path, &data).unwrap();
        let file = fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(at(seconds)).unwrap();
        held.push(fs::metadata(&path).unwrap().modified().unwrap() == at(seconds));
    }
    assert!(
        held[0] && held[1],
        "every Linux filesystem keeps 1906 and 2445"
    );
    if !held[2] || !held[3] {
        eprintln!("NOTE: /dev/shm is not tmpfs here: times past 9999 are not tried");
    }
    let basedir = base.path().to_str().unwrap();

    let out = s
        .toolbox()
        .args(["images", "--json", "--basedir", basedir])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = json(&out);
    let table = s
        .toolbox()
        .args(["images", "--basedir", basedir])
        .output()
        .unwrap();
    assert!(table.status.success(), "{}", stderr(&table));
    for ((image, _, rfc3339, _), held) in cases.iter().zip(&held) {
        let row = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["image"] == *image)
            .unwrap_or_else(|| panic!("{image} in {rows}"));
        if *held {
            assert_eq!(row["modified"], rfc3339.unwrap_or("-"), "{image}");
        }
        let line = stdout(&table)
            .lines()
            .find(|l| l.starts_with(image))
            .map(str::to_string)
            .unwrap_or_default();
        if *held && rfc3339.is_none() {
            assert!(line.split_whitespace().any(|w| w == "-"), "{line}");
        }
    }

    for ((image, _, _, zip_time), held) in cases.iter().zip(&held) {
        if !held {
            continue;
        }
        let out = s
            .toolbox()
            .args(["compress", &format!("{image}:1.0"), "--basedir", basedir])
            .output()
            .unwrap();
        assert!(out.status.success(), "{image}: {}", stderr(&out));
        let zip = base.path().join(format!("{image}_1.0_{id}.zip"));
        let py = StdCommand::new("python3")
            .args([
                "-c",
                "import sys, zipfile; [i] = zipfile.ZipFile(sys.argv[1]).infolist(); \
                 print('%04d-%02d-%02d %02d:%02d:%02d' % i.date_time)",
            ])
            .arg(&zip)
            .output()
            .expect("python3 is installed");
        assert!(py.status.success(), "{}", stderr(&py));
        assert_eq!(stdout(&py).trim(), *zip_time, "{image}");
    }
}

/// Every program the harness starts has the test's own home, and a variable a test sets
/// itself wins.
#[test]
fn the_harness_gives_every_run_a_home_of_its_own() {
    let s = Scratch::new();
    let show = "printf '%s\\n' \"$HOME\" \"$XDG_CACHE_HOME\" \"$DOCKER_CONFIG\" \"${REGISTRY_AUTH_FILE-unset}\"";
    let out = s
        .command("sh")
        .env("REGISTRY_AUTH_FILE", "/nowhere")
        .args(["-c", show])
        .output()
        .unwrap();
    let seen = stdout(&out);
    let seen: Vec<&str> = seen.lines().collect();
    let home = s.home().to_str().unwrap();
    assert_eq!(seen[0], home);
    assert_eq!(seen[1], format!("{home}/.cache"));
    assert_eq!(seen[2], format!("{home}/.docker"));
    assert_eq!(seen[3], "/nowhere", "a variable the test sets wins");
    assert_ne!(
        std::env::var_os("HOME").as_deref(),
        Some(s.home().as_os_str())
    );

    let out = s.command("sh").args(["-c", show]).output().unwrap();
    assert_eq!(stdout(&out).lines().nth(3), Some("unset"));

    // toolbox itself finds the docker CLI's configuration in the test's home: through
    // DOCKER_CONFIG, and through HOME (`~/.docker`) without it; a DOCKER_CONFIG the test sets
    // wins. `logout` forgets a server kept there.
    let auths = |servers: &[&str]| {
        let entries: Vec<String> = servers
            .iter()
            .map(|s| format!(r#""{s}":{{"auth":"YW5uOnB3"}}"#))
            .collect();
        format!(r#"{{"auths":{{{}}}}}"#, entries.join(","))
    };
    let in_home = s.home().join(".docker/config.json");
    let elsewhere = s.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    fs::write(&in_home, auths(&["home.example", "home-too.example"])).unwrap();
    fs::write(
        elsewhere.join("config.json"),
        auths(&["home.example", "elsewhere.example"]),
    )
    .unwrap();
    let servers = |path: &std::path::Path| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
        v["auths"].as_object().unwrap().keys().cloned().collect()
    };
    let logout = |cmd: &mut assert_cmd::Command, server: &str| {
        let out = cmd.args(["logout", server]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    assert_eq!(
        logout(&mut s.toolbox(), "home.example"),
        "Removing login credentials for home.example\n"
    );
    assert_eq!(servers(&in_home), ["home-too.example"]);
    let mut through_home = s.toolbox();
    through_home.env_remove("DOCKER_CONFIG");
    assert_eq!(
        logout(&mut through_home, "home-too.example"),
        "Removing login credentials for home-too.example\n"
    );
    assert!(servers(&in_home).is_empty());
    let mut explicit = s.toolbox();
    explicit.env("DOCKER_CONFIG", &elsewhere);
    assert_eq!(
        logout(&mut explicit, "elsewhere.example"),
        "Removing login credentials for elsewhere.example\n"
    );
    assert_eq!(servers(&elsewhere.join("config.json")), ["home.example"]);
    assert_eq!(
        logout(&mut s.toolbox(), "elsewhere.example"),
        "Not logged in to elsewhere.example\n"
    );
    // Two tests never share a home.
    assert_ne!(Scratch::new().home(), s.home());
}

#[test]
fn keep_0_says_keep_at_least_1() {
    let s = Scratch::new();
    s.touch(&format!("web_1.0_{ID}.zip"), 0);
    let out = s.toolbox().args(["clean", "--keep", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("keep at least 1"), "{}", stderr(&out));
    assert!(s.artifacts().join(format!("web_1.0_{ID}.zip")).exists());
}

#[test]
fn a_zip_without_its_end_record_is_truncated_or_not_a_zip() {
    let s = Scratch::new();
    s.write(&format!("web_1.0_{ID}.zip"), b"PK\x03\x04 cut short", 0);
    let out = s.toolbox().args(["verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("truncated or not a ZIP"), "{text}");
    assert!(!text.contains("EOCD"), "{text}");
    // Paths are printed once, on every line that names one.
    s.write(
        &format!("web_1.1_{ID}.zst"),
        b"not zstd at all, not even close",
        0,
    );
    let out = s.toolbox().args(["verify"]).output().unwrap();
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 2, "{text}");
    for line in text.lines() {
        assert_eq!(line.matches(&format!("_{ID}.")).count(), 1, "{line}");
    }
    assert!(text.contains("not a zstd file"), "{text}");
    let out = s
        .toolbox()
        .args(["extract", "web:1.1", "out"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(err.matches(&format!("_{ID}.")).count(), 1, "{err}");
    assert!(!err.contains(".toolbox-extract"), "{err}");
}

#[test]
fn completions_and_manual_page() {
    let s = Scratch::new();
    for (shell, marker) in [
        ("bash", "_toolbox()"),
        ("zsh", "#compdef toolbox"),
        ("fish", "complete -c toolbox"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = s.toolbox().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains(marker), "{shell}: {text}");
        assert!(text.contains("update-image"), "{shell}");
    }
    let out = s.toolbox().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = s.toolbox().arg("man").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let page = stdout(&out);
    assert!(
        page.starts_with(".ie") || page.contains(".TH toolbox"),
        "{page}"
    );
    assert!(page.contains("update\\-image"), "{page}");
    let out = s.toolbox().arg("--help").output().unwrap();
    assert!(stdout(&out).contains("`zst`"), "{}", stdout(&out));
}

/// Truncates `path` to `keep` of its bytes.
fn truncate(path: &std::path::Path, keep: u64) {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(keep)
        .unwrap();
}

#[test]
fn a_broken_archive_never_wins_and_never_costs_the_good_one() {
    let s = Scratch::new();
    // Real archives, written by toolbox itself: a .zip and a .zst of one tar.
    let (data, id) = sample_image(2 << 20);
    for (version, format) in [("1.0.0.1", "zip"), ("1.0.0.2", "zst"), ("1.0.0.8", "zip")] {
        s.write(&format!("web_{version}_{id}.docker"), &data, 0);
        let out = s
            .toolbox()
            .args(["compress", &format!("web:{version}"), "--format", format])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let good = s.artifacts().join(format!("web_1.0.0.1_{id}.zip"));
    let zst = s.artifacts().join(format!("web_1.0.0.2_{id}.zst"));
    let cut = s.artifacts().join(format!("web_1.0.0.8_{id}.zip"));
    let len = fs::metadata(&cut).unwrap().len();
    truncate(&cut, len / 2);
    let zst_len = fs::metadata(&zst).unwrap().len();
    truncate(&zst, zst_len - 100);
    // A truncated .docker too, as the latest of another image.
    s.write(
        &format!("api_2.0_{id}.docker"),
        &data[..data.len() - 1024],
        0,
    );
    s.write(&format!("api_1.0_{id}.docker"), &data, 10);

    // latest: the broken ones are skipped, one warning line each naming the file and the check.
    let out = s.toolbox().args(["latest", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["web"]["version"], "1.0.0.1");
    assert_eq!(v["api"]["version"], "1.0");
    let err = stderr(&out);
    let warnings: Vec<&str> = err.lines().collect();
    assert_eq!(warnings.len(), 3, "{err}");
    assert!(
        warnings
            .iter()
            .any(|l| l.contains(&format!("web_1.0.0.8_{id}.zip"))
                && l.contains("zip: truncated or not a ZIP")),
        "{err}"
    );
    assert!(
        warnings
            .iter()
            .any(|l| l.contains(&format!("web_1.0.0.2_{id}.zst")) && l.contains("zst: truncated")),
        "{err}"
    );
    assert!(
        warnings
            .iter()
            .any(|l| l.contains(&format!("api_2.0_{id}.docker"))
                && l.contains("tar: the end-of-archive blocks")),
        "{err}"
    );
    let out = s.toolbox().args(["latest", "web"]).output().unwrap();
    assert_eq!(
        stdout(&out).trim(),
        format!("./artifacts/web_1.0.0.1_{id}.zip")
    );

    // config deploys the good one.
    let out = s
        .toolbox()
        .args(["config", "--baseurl", "https://h", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["images"]["web"]["version"], "1.0.0.1");
    assert!(stderr(&out).contains("skipping"), "{}", stderr(&out));

    // clean never removes the good one (and leaves the broken ones for a person to look at).
    for args in [
        vec!["clean", "web", "--dry-run", "--json"],
        vec!["clean", "web", "--json"],
    ] {
        let out = s.toolbox().args(&args).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(json(&out), serde_json::json!([]), "{args:?}");
        assert!(good.exists() && cut.exists() && zst.exists());
    }

    // images --check marks the broken ones.
    let out = s
        .toolbox()
        .args(["images", "--check", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = json(&out);
    let broken: Vec<(String, bool)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                format!(
                    "{}:{}",
                    r["image"].as_str().unwrap(),
                    r["version"].as_str().unwrap()
                ),
                r["broken"].as_bool().unwrap(),
            )
        })
        .collect();
    let expect = |i: &str, b: bool| (i.to_string(), b);
    assert_eq!(
        broken,
        vec![
            expect("api:2.0", true),
            expect("api:1.0", false),
            expect("web:1.0.0.8", true),
            expect("web:1.0.0.2", true),
            expect("web:1.0.0.1", false),
        ]
    );
    let out = s.toolbox().args(["images", "--check"]).output().unwrap();
    let text = stdout(&out);
    assert!(text.lines().next().unwrap().contains("CHECK"), "{text}");
    assert_eq!(text.matches("BROKEN").count(), 3, "{text}");
    // Without --check, nothing is said about it.
    let out = s.toolbox().args(["images", "--json"]).output().unwrap();
    assert!(json(&out)[0].get("broken").is_none());

    // Every archive of an image broken: latest is an error naming the image, clean removes
    // nothing.
    fs::remove_file(&good).unwrap();
    let out = s.toolbox().args(["latest", "web"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("every archive of image `web`"),
        "{}",
        stderr(&out)
    );
    let out = s
        .toolbox()
        .args(["clean", "web", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(cut.exists() && zst.exists());
}

#[test]
fn invalid_arguments_exit_2_and_say_what_to_do() {
    let s = Scratch::new();
    s.write(&format!("web_1.0_{ID}.docker"), &sample_tar(4096), 0);
    let cases: [(&[&str], &str); 10] = [
        (&["config", "--baseurl", ""], "is empty"),
        (
            &["pull", "127.0.0.1:9/x:1", "--platform", "linux"],
            "OS/ARCH",
        ),
        (&["pull", "Bad Ref"], "not a valid reference"),
        (&["push", "web:1.0", "Bad/Ref"], "not a valid reference"),
        (&["registry", "tags", "bad ref"], "not a valid reference"),
        (&["update-image", "team/web"], "--repository"),
        (&["update-image", "Web"], "lower-case"),
        (
            &["update-image", "web", "--version", "1_2"],
            "separates the parts",
        ),
        (&["compress", "web", "--level", "12"], "level 12"),
        (
            &["build", "web", "--version", "1_2", "--context", "."],
            "use `-` or `.`",
        ),
    ];
    for (args, says) in cases {
        // No engine is needed to refuse them: they are refused before one is asked.
        let out = s
            .toolbox()
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert_eq!(s.files(), vec![format!("web_1.0_{ID}.docker")]);
}

#[test]
fn an_unreachable_engine_names_the_address_and_where_it_came_from() {
    let s = Scratch::new();
    fs::write(s.path().join("c.yaml"), "docker_host: tcp://127.0.0.1:9\n").unwrap();
    let cases: [(Option<&str>, &[&str], &str); 3] = [
        (
            Some("unix:///nonexistent/docker.sock"),
            &["update-image", "web"],
            "unix:///nonexistent/docker.sock (from DOCKER_HOST): no socket",
        ),
        (
            None,
            &["update-image", "web", "--config", "c.yaml"],
            "tcp://127.0.0.1:9 (from docker_host in c.yaml): connection refused",
        ),
        (
            Some("tcp://127.0.0.1:9"),
            &["build", "web", "--context", "."],
            "tcp://127.0.0.1:9 (from DOCKER_HOST): connection refused",
        ),
    ];
    for (host, args, says) in cases {
        let mut cmd = s.toolbox();
        cmd.env("TOOLBOX_ARTIFACTS_DIR", s.path().join("new"));
        match host {
            Some(h) => cmd.env("DOCKER_HOST", h),
            None => cmd.env_remove("DOCKER_HOST"),
        };
        let out = cmd.args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        for library_words in ["hyper", "client error", "Connect)", "bollard"] {
            assert!(!err.contains(library_words), "{err}");
        }
    }
    // Nothing was created for a run that could not reach its engine.
    assert!(!s.path().join("new").exists());
}

#[test]
fn verify_json_and_inspect_say_what_they_mean() {
    let s = Scratch::new();
    s.write(&format!("web_1.0_{ID}.docker"), &sample_tar(4096), 0);
    let out = s
        .toolbox()
        .args(["verify", "--json", "web", "nothing:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["path"], "nothing:9");
    assert_eq!(rows[0]["ok"], false);
    assert!(rows[0]["problem"].as_str().unwrap().contains("nothing"));
    assert_eq!(rows[1]["path"], format!("./artifacts/web_1.0_{ID}.docker"));
    assert_eq!(rows[1]["ok"], false);
    assert!(
        rows[1]["problem"]
            .as_str()
            .unwrap()
            .contains("this is not a `docker save` archive"),
        "{v}"
    );
    assert!(stdout(&out).starts_with('['));

    // inspect of a tar that holds no image, in text and JSON: one line naming the file and
    // what is wrong, nothing on stdout; of an argument that names no archive: says so.
    for args in [
        vec!["inspect", "web:1.0"],
        vec!["inspect", "web:1.0", "--json"],
    ] {
        let out = s.toolbox().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(stdout(&out), "", "{args:?}");
        assert_eq!(
            stderr(&out),
            format!(
                "toolbox: error: `./artifacts/web_1.0_{ID}.docker` is damaged: no manifest.json \
                 and no index.json: this is not a `docker save` archive\n"
            ),
            "{args:?}"
        );
    }
    let out = s.toolbox().args(["inspect", "nothing:9"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no .docker or .zip or .zst archive of `nothing:9`"),
        "{}",
        stderr(&out)
    );

    // inspect of real images, in both layouts: what the archive holds, as `docker inspect`
    // names it.
    use common::images::{Layout, image_archive, sample_layers};
    let layouts = [
        ("2.0", Layout::Classic),
        (
            "3.0",
            Layout::Oci {
                nested: true,
                gzip: true,
            },
        ),
    ];
    for (version, layout) in layouts {
        let made = image_archive(
            layout,
            &format!("web:{version}"),
            "2026-03-04T05:06:07Z",
            &sample_layers(version),
        );
        let name = format!("web_{version}_{}.docker", made.short_id());
        s.write(&name, &made.tar(), 0);
        let out = s
            .toolbox()
            .args(["inspect", &format!("web:{version}"), "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{layout:?}: {}", stderr(&out));
        let v = json(&out);
        assert_eq!(v["ConfigDigest"], made.config_digest.as_str(), "{layout:?}");
        assert_eq!(v["Created"], "2026-03-04T05:06:07Z", "{layout:?}");
        assert_eq!(v["Architecture"], "amd64");
        assert_eq!(v["Os"], "linux");
        assert_eq!(v["Author"], "the tests");
        assert_eq!(
            v["Config"]["Env"],
            serde_json::json!(["PATH=/usr/bin:/bin", "GREETING=hello"])
        );
        assert_eq!(v["Config"]["WorkingDir"], "/srv");
        assert_eq!(v["Config"]["Labels"]["team"], "tests");
        assert_eq!(v["RootFS"]["Layers"], serde_json::json!(made.diff_ids));
        let layers: Vec<(String, u64)> = v["Layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["Digest"].as_str().unwrap().to_string(),
                    l["Size"].as_u64().unwrap(),
                )
            })
            .collect();
        let sizes: Vec<u64> = made.layers.iter().map(|(_, size)| *size).collect();
        assert_eq!(
            layers.iter().map(|(_, size)| *size).collect::<Vec<_>>(),
            sizes,
            "{layout:?}: {v}"
        );
        assert_eq!(v["Size"], sizes.iter().sum::<u64>(), "{layout:?}");
        assert_eq!(v["Format"], "docker");
        assert_eq!(v["Archive"], format!("./artifacts/{name}"));
        assert_eq!(v["ArchiveSize"], made.tar().len());
        if let Some(manifest) = &made.manifest_digest {
            let digests: Vec<&str> = v["ManifestDigests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["Digest"].as_str().unwrap())
                .collect();
            assert_eq!(
                digests,
                [made.index_digest.as_deref().unwrap(), manifest.as_str()],
                "outermost first: {v}"
            );
        }
        let out = s
            .toolbox()
            .args(["inspect", &format!("web:{version}")])
            .output()
            .unwrap();
        assert!(out.status.success(), "{layout:?}: {}", stderr(&out));
        let text = stdout(&out);
        for needle in [
            made.config_digest.as_str(),
            "2026-03-04T05:06:07Z",
            "GREETING=hello",
            name.as_str(),
        ] {
            assert!(text.contains(needle), "{layout:?}: {needle} in {text}");
        }
    }
}

#[test]
fn ctrl_c_clears_the_bar_says_so_in_one_line_and_the_next_run_cleans_up() {
    use std::io::{Read, Write};
    let s = Scratch::new();
    // Large enough that deflate at level 9 takes seconds: Ctrl-C comes long before the end.
    let (data, id) = sample_image(256 << 20);
    let tar = s.write(&format!("web_1.0_{id}.docker"), &data, 0);
    drop(data);
    // A terminal, as a person has one: `script` runs the command on a pseudo-terminal and
    // passes what it reads on stdin (here Ctrl-C, byte 3) to that terminal.
    let command = format!("{} compress web --level 9", env!("CARGO_BIN_EXE_toolbox"));
    let mut child = s
        .command("script")
        .args(["-qefc", &command, "/dev/null"])
        .env("TOOLBOX_ARTIFACTS_DIR", s.artifacts())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (bsdutils) is installed");
    let mut out = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    // The bar is drawn at once, with a percentage.
    while !String::from_utf8_lossy(&seen).contains("0%") {
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "no bar: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&seen).contains("compressing"));
    // Ctrl-C once the archive is being written (under its temporary name).
    let writing = || {
        fs::read_dir(s.artifacts())
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".toolbox-tmp."))
    };
    common::wait_until(
        "a temporary file appears",
        std::time::Duration::from_secs(300),
        writing,
    );
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&[3]).unwrap();
    stdin.flush().unwrap();
    out.read_to_end(&mut seen).unwrap();
    let status = child.wait().unwrap();
    let text = String::from_utf8_lossy(&seen).to_string();
    assert_eq!(status.code(), Some(130), "{text}");
    // After the bar is cleared (erase line), one line says what happened; nothing follows it.
    let tail = text.rsplit("\x1b[2K").next().unwrap();
    assert!(
        tail.trim_start_matches(['^', 'C', '\r'])
            .starts_with("toolbox: interrupted")
            && tail.contains("what this run had started is removed")
            && tail.trim_end().lines().count() == 1,
        "{text:?}"
    );
    assert!(!text.contains("panicked"));
    // Nothing lost, nothing half-written under an archive name.
    assert!(tar.exists());
    assert!(!s.artifacts().join(format!("web_1.0_{id}.zip")).exists());
    // The interrupted run removed its own temporary file: the next run has nothing to sweep.
    assert!(!writing(), "no temporary file is left");
    let out = s
        .toolbox()
        .args(["compress", "web", "--level", "1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("left by an interrupted run"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        s.files(),
        vec![".toolbox-cache.json".into(), format!("web_1.0_{id}.zip")]
    );
}
