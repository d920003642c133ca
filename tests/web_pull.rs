//! `pull URL` from a real web server (Debian's nginx on a loopback port) serving an artifacts
//! directory with a layer store, with the harness's fault proxy in front of it for cuts, busy
//! answers and a flipped byte: only what the local store lacks comes down, each blob checked,
//! and the store never holds a `.ref` whose blobs are not all there.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::images::{self, Entry};
use common::{Fault, FaultyProxy, Scratch, TestWebServer, json, ok, stderr};

/// The published side: `web_<version>_<id>.ref` archives over one layer store, converted from
/// classic archives that share a 2 MB base layer; each version adds its own small layer.
fn publish(server: &Scratch, versions: &[&str]) -> Vec<PathBuf> {
    let base = images::layer(&[Entry::File("base.bin", &images::random_bytes(2 << 20, 7))]);
    let mut refs = Vec::new();
    for (i, version) in versions.iter().enumerate() {
        let top = images::layer(&[Entry::File(
            "top.bin",
            &images::random_bytes(20_000, 100 + i as u64),
        )]);
        let archive = images::image_archive(
            images::Layout::Classic,
            &format!("web:{version}"),
            &format!("2024-01-0{}T00:00:00Z", i + 1),
            &[base.clone(), top],
        );
        let file = format!("web_{version}_{}.docker", archive.short_id());
        let path = server.artifacts().join(&file);
        fs::write(&path, archive.tar()).unwrap();
        ok(run(
            server,
            &["convert", path.to_str().unwrap(), "--to", "ref"],
        ));
        refs.push(path.with_extension("ref"));
    }
    refs
}

fn run(s: &Scratch, args: &[&str]) -> std::process::Output {
    s.toolbox_std().args(args).output().unwrap()
}

fn file_name(path: &Path) -> &str {
    path.file_name().unwrap().to_str().unwrap()
}

/// The blob files of a store.
fn blobs(art: &Path) -> BTreeSet<String> {
    match fs::read_dir(art.join("blobs/sha256")) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// The `.ref` archives in a folder.
fn refs_in(art: &Path) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(art)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".ref"))
        .collect();
    out.sort();
    out
}

/// The size of the largest blob of a store (the base layer).
fn largest_blob(art: &Path) -> (String, u64) {
    blobs(art)
        .into_iter()
        .map(|b| {
            let size = fs::metadata(art.join("blobs/sha256").join(&b))
                .unwrap()
                .len();
            (b, size)
        })
        .max_by_key(|(_, size)| *size)
        .unwrap()
}

#[test]
fn pulls_of_n_then_n_plus_1_download_only_what_changed() {
    let server = Scratch::new();
    let refs = publish(&server, &["1.0.0", "1.0.1"]);
    let web = TestWebServer::start(&server.artifacts());
    let (base, base_size) = largest_blob(&server.artifacts());
    assert!(base_size > 2_000_000, "the base layer is the big blob");

    let client = Scratch::new();
    let first = json(&ok(run(
        &client,
        &["pull", &web.url(file_name(&refs[0])), "--json"],
    )));
    assert_eq!(first["written"], true);
    assert_eq!(first["format"], "ref");
    assert_eq!(first["reused"], 0);
    let downloaded = first["downloaded"].as_u64().unwrap();
    assert!(
        downloaded > base_size,
        "the first pull downloads everything"
    );
    assert!(web.log().iter().any(|l| l.contains(&base)));
    let local = client.artifacts().join(file_name(&refs[0]));
    assert!(
        first["path"]
            .as_str()
            .unwrap()
            .ends_with(file_name(&refs[0])),
        "{first}"
    );
    assert_eq!(
        fs::read(&local).unwrap(),
        fs::read(&refs[0]).unwrap(),
        "the .ref is the server's"
    );
    ok(run(&client, &["verify", local.to_str().unwrap()]));

    // N+1: the base layer is in the store; only the new layer, config, manifest and .ref come.
    web.clear_log();
    let second = ok(run(&client, &["pull", &web.url(file_name(&refs[1]))]));
    let text = common::stdout(&second);
    assert!(
        text.contains(file_name(&refs[1])) && text.contains("downloaded"),
        "{text}"
    );
    let log = web.log();
    assert!(
        !log.iter().any(|l| l.contains(&base)),
        "the base layer is not asked for again: {log:?}"
    );
    let served: u64 = web.sent("GET");
    assert!(
        served < 100_000,
        "the second pull takes only the new blobs from the server ({served} bytes): {log:?}"
    );
    ok(run(&client, &["verify"]));
    // Both versions' blobs, each once, as on the server.
    assert_eq!(blobs(&client.artifacts()), blobs(&server.artifacts()));

    // Pulling again: nothing to do.
    web.clear_log();
    let again = json(&ok(run(
        &client,
        &["pull", &web.url(file_name(&refs[1])), "--json"],
    )));
    assert_eq!(again["written"], false);
    assert_eq!(again["downloaded"], 0);
    assert!(web.log().is_empty(), "{:?}", web.log());
}

#[test]
fn a_ref_below_the_layout_finds_the_layout_above_it_and_reuse_is_counted() {
    let server = Scratch::new();
    let refs = publish(&server, &["2.0.0", "2.0.1"]);
    // A .ref one folder below the layout's root: the layout is found by walking up the URL.
    fs::create_dir(server.artifacts().join("releases")).unwrap();
    let moved = server
        .artifacts()
        .join("releases")
        .join(file_name(&refs[1]));
    fs::copy(&refs[1], &moved).unwrap();
    let web = TestWebServer::start(&server.artifacts());

    let client = Scratch::new();
    ok(run(&client, &["pull", &web.url(file_name(&refs[0]))]));
    let second = json(&ok(run(
        &client,
        &[
            "pull",
            &web.url(&format!("releases/{}", file_name(&refs[1]))),
            "--json",
        ],
    )));
    let reused = second["reused"].as_u64().unwrap();
    let downloaded = second["downloaded"].as_u64().unwrap();
    assert!(reused > 2_000_000, "the base layer is reused: {second}");
    assert!(downloaded < 100_000, "{second}");
    ok(run(&client, &["verify"]));
}

#[test]
fn cuts_and_busy_answers_are_retried_and_resumed_with_range() {
    let server = Scratch::new();
    let refs = publish(&server, &["3.0.0"]);
    let web = TestWebServer::start(&server.artifacts());
    let proxy = FaultyProxy::start(&web.host);
    let (base, _) = largest_blob(&server.artifacts());
    proxy.fault("GET", &base, Fault::CutAnswerAfter(500_000), 1);
    proxy.fault(
        "GET",
        "oci-layout",
        Fault::Answer {
            status: 503,
            retry_after: Some(1),
        },
        1,
    );
    proxy.fault(
        "GET",
        ".ref",
        Fault::Answer {
            status: 429,
            retry_after: None,
        },
        1,
    );
    let client = Scratch::new();
    let url = format!("http://{}/{}", proxy.host, file_name(&refs[0]));
    let out = ok(run(&client, &["pull", &url, "--json"]));
    let err = stderr(&out);
    eprintln!("{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("retrying")).collect();
    assert_eq!(warnings.len(), 3, "one warning line per retry: {err}");
    assert!(err.contains("HTTP 503"), "{err}");
    assert!(err.contains("HTTP 429"), "{err}");
    assert!(proxy.unused().is_empty(), "every fault took effect");
    let ranged = proxy.seen(&base);
    assert_eq!(ranged.len(), 2, "{ranged:?}");
    let range = ranged[1]
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("range:"))
        .unwrap_or_default()
        .to_string();
    assert!(
        range.contains("bytes=") && !range.contains("bytes=0-"),
        "the cut download resumes where it broke off: {range:?}"
    );
    ok(run(&client, &["verify"]));

    // Out of retries: a server that stays busy fails the pull, nothing written.
    let other = Scratch::new();
    proxy.fault(
        "GET",
        ".ref",
        Fault::Answer {
            status: 503,
            retry_after: Some(0),
        },
        10,
    );
    let out = run(&other, &["pull", &url, "--retries", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("HTTP 503"), "{}", stderr(&out));
    assert!(refs_in(&other.artifacts()).is_empty());
}

#[test]
fn a_flipped_byte_is_an_error_naming_the_url_and_nothing_is_kept() {
    let server = Scratch::new();
    let refs = publish(&server, &["4.0.0"]);
    let web = TestWebServer::start(&server.artifacts());
    let proxy = FaultyProxy::start(&web.host);
    let (base, _) = largest_blob(&server.artifacts());
    proxy.fault("GET", &base, Fault::FlipAnswerByte(100_000), 1);
    let client = Scratch::new();
    let url = format!("http://{}/{}", proxy.host, file_name(&refs[0]));
    let out = run(&client, &["pull", &url]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    eprintln!("{err}");
    assert!(
        err.contains(&format!("blobs/sha256/{base}")) && err.contains("damaged"),
        "the error names the blob's URL: {err}"
    );
    assert!(refs_in(&client.artifacts()).is_empty(), "no .ref");
    assert!(
        !blobs(&client.artifacts()).contains(&base),
        "the bad blob is not kept"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    // The next run, with the server sound again, completes.
    ok(run(&client, &["pull", &url]));
    ok(run(&client, &["verify"]));
}

#[test]
fn a_killed_pull_leaves_no_ref_and_the_next_run_completes() {
    let server = Scratch::new();
    let refs = publish(&server, &["5.0.0"]);
    let web = TestWebServer::start(&server.artifacts());
    let proxy = FaultyProxy::start(&web.host);
    let (base, _) = largest_blob(&server.artifacts());
    // The base layer keeps the server busy: the pull waits, and is killed while it does.
    proxy.fault(
        "GET",
        &base,
        Fault::Answer {
            status: 503,
            retry_after: Some(20),
        },
        1,
    );
    let client = Scratch::new();
    let url = format!("http://{}/{}", proxy.host, file_name(&refs[0]));
    let mut child = client
        .toolbox_std()
        .args(["pull", &url])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_until(
        "the pull to wait on the base layer",
        Duration::from_secs(30),
        || !proxy.seen(&base).is_empty(),
    );
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        refs_in(&client.artifacts()).is_empty(),
        "no .ref after a kill"
    );
    let out = json(&ok(run(&client, &["pull", &url, "--json"])));
    assert_eq!(out["written"], true);
    ok(run(&client, &["verify"]));
}

#[test]
fn whole_archives_download_verified_and_bad_ones_are_refused() {
    let server = Scratch::new();
    let (tar, id) = images::small_image("app:1.0.0");
    let name = format!("app_1.0.0_{id}.zst");
    fs::write(
        server.artifacts().join(&name),
        images::archive_bytes(&tar, &name),
    )
    .unwrap();
    // A .zip whose entry is junk, and a .docker renamed to another ID.
    let junk = format!("app_1.0.1_{id}.zip");
    fs::write(
        server.artifacts().join(&junk),
        images::archive_bytes(b"not a tar at all", &junk),
    )
    .unwrap();
    let renamed = "app_1.0.2_0123456789ab.docker";
    fs::write(server.artifacts().join(renamed), &tar).unwrap();
    let web = TestWebServer::start(&server.artifacts());

    let client = Scratch::new();
    let out = json(&ok(run(&client, &["pull", &web.url(&name), "--json"])));
    assert_eq!(out["format"], "zst");
    assert_eq!(
        out["downloaded"].as_u64().unwrap(),
        fs::metadata(server.artifacts().join(&name)).unwrap().len()
    );
    assert_eq!(
        fs::read(client.artifacts().join(&name)).unwrap(),
        fs::read(server.artifacts().join(&name)).unwrap()
    );
    for bad in [junk.as_str(), renamed] {
        let out = run(&client, &["pull", &web.url(bad)]);
        eprintln!("{bad}: {}", stderr(&out));
        assert_eq!(out.status.code(), Some(1), "{bad}: {}", stderr(&out));
        assert!(stderr(&out).contains(&web.url(bad)), "{}", stderr(&out));
        assert!(!client.artifacts().join(bad).exists());
    }
    let leftovers: Vec<String> = client
        .files()
        .into_iter()
        .filter(|f| f.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // A file that is not there, and URLs that name no archive.
    let out = run(&client, &["pull", &web.url("app_9.9.9_0123456789ab.zst")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("404"), "{}", stderr(&out));
    for (url, code) in [
        (web.url("notes.txt"), 2),
        ("ftp://example/app_1.0.0_0123456789ab.zst".to_string(), 2),
        (web.url("a%2Fb_1.0.0_0123456789ab.zst"), 2),
    ] {
        let out = run(&client, &["pull", &url]);
        assert_eq!(out.status.code(), Some(code), "{url}: {}", stderr(&out));
    }
}

#[test]
fn a_hostile_server_is_refused_in_bounded_time_with_nothing_written() {
    let server = Scratch::new();
    let refs = publish(&server, &["6.0.0"]);
    let art = server.artifacts();
    let put = |bytes: &[u8]| -> String {
        let digest = images::sha256(bytes);
        fs::write(art.join("blobs/sha256").join(&digest[7..]), bytes).unwrap();
        digest
    };
    let manifest_of = |layers: serde_json::Value| {
        let config_bytes = b"{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";
        let config = put(config_bytes);
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config,
                "size": config_bytes.len(),
            },
            "layers": layers,
        })
    };
    let write_ref = |name: &str, media_type: &str, bytes: &[u8]| {
        let digest = put(bytes);
        fs::write(
            art.join(name),
            serde_json::to_vec(&serde_json::json!({
                "mediaType": media_type, "digest": digest, "size": bytes.len()
            }))
            .unwrap(),
        )
        .unwrap();
    };
    let (base, base_size) = largest_blob(&art);
    // A layer whose size the manifest understates: the server sends more than named.
    let lying = manifest_of(serde_json::json!([{
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
        "digest": format!("sha256:{base}"), "size": base_size / 2
    }]));
    write_ref(
        "lie_1.0.0_0123456789ab.ref",
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&lying).unwrap(),
    );
    // A digest that is not sha256 and 64 hex digits.
    let escaping = manifest_of(serde_json::json!([{
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
        "digest": "sha256:../../../etc/passwd", "size": 10
    }]));
    write_ref(
        "escape_1.0.0_0123456789ab.ref",
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&escaping).unwrap(),
    );
    // An index that names itself cannot be written (its digest is of its own bytes), but one
    // that names the same child a thousand times over, nested, must stay bounded.
    let child = serde_json::to_vec(&lying).unwrap();
    let child_digest = images::sha256(&child);
    let mut index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": vec![serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": child_digest, "size": child.len()
        }); 1000],
    }))
    .unwrap();
    for _ in 0..20 {
        let digest = put(&index);
        index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": vec![serde_json::json!({
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": digest, "size": index.len()
            }); 50],
        }))
        .unwrap();
    }
    write_ref(
        "deep_1.0.0_0123456789ab.ref",
        "application/vnd.oci.image.index.v1+json",
        &index,
    );
    fs::write(art.join("junk_1.0.0_0123456789ab.ref"), vec![b'x'; 1 << 20]).unwrap();
    let web = TestWebServer::start(&art);
    let client = Scratch::new();
    for name in [
        "lie_1.0.0_0123456789ab.ref",
        "escape_1.0.0_0123456789ab.ref",
        "deep_1.0.0_0123456789ab.ref",
        "junk_1.0.0_0123456789ab.ref",
    ] {
        let started = std::time::Instant::now();
        let out = run(&client, &["pull", &web.url(name)]);
        eprintln!("{name}: {}", stderr(&out));
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{name} took {:?}",
            started.elapsed()
        );
        assert!(refs_in(&client.artifacts()).is_empty(), "{name}");
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    }
    assert!(!client.path().join("etc").exists());
    // The sound archive beside them still pulls.
    ok(run(&client, &["pull", &web.url(file_name(&refs[0]))]));
}

#[test]
fn config_baseurl_gives_the_url_pull_takes() {
    let server = Scratch::new();
    let refs = publish(&server, &["7.0.0"]);
    let web = TestWebServer::start(&server.artifacts());
    let cfg = json(&ok(run(
        &server,
        &[
            "config",
            "--baseurl",
            &format!("http://{}/", web.host),
            "--json",
        ],
    )));
    let url = cfg["images"]["web"]["url"].as_str().unwrap().to_string();
    assert_eq!(url, web.url(file_name(&refs[0])));
    let client = Scratch::new();
    ok(run(&client, &["pull", &url]));
    ok(run(&client, &["verify"]));
}

#[test]
fn pull_store_from_a_registry_downloads_only_the_blobs_the_store_lacks() {
    let server = Scratch::new();
    let refs = publish(&server, &["8.0.0", "8.0.1"]);
    let (base, _) = largest_blob(&server.artifacts());
    let registry = common::TestRegistry::start(None);
    for (r, tag) in refs.iter().zip(["8.0.0", "8.0.1"]) {
        let target = format!("{}/team/web:{tag}", registry.host);
        ok(run(&server, &["push", r.to_str().unwrap(), &target]));
    }
    let proxy = FaultyProxy::start(&registry.host);
    let client = Scratch::new();
    let first = json(&ok(run(
        &client,
        &[
            "pull",
            &format!("{}/team/web:8.0.0", proxy.host),
            "--store",
            "--json",
        ],
    )));
    assert_eq!(first["written"], true);
    assert_eq!(first["format"], "ref");
    assert_eq!(first["reused"], 0);
    assert_eq!(
        first["path"]
            .as_str()
            .map(|p| p.ends_with(file_name(&refs[0]))),
        Some(true),
        "the archive's name carries the image's ID: {first}"
    );
    assert_eq!(proxy.seen(&base).len(), 1, "the base layer came once");

    let second = json(&ok(run(
        &client,
        &[
            "pull",
            &format!("{}/team/web:8.0.1", proxy.host),
            "--store",
            "--json",
        ],
    )));
    assert_eq!(second["written"], true);
    assert!(second["reused"].as_u64().unwrap() > 2_000_000, "{second}");
    assert!(second["downloaded"].as_u64().unwrap() < 100_000, "{second}");
    assert_eq!(
        proxy.seen(&base).len(),
        1,
        "the base layer is not asked for again"
    );
    ok(run(&client, &["verify"]));
    // The layers are the registry's blobs as they are (the manifests are the registry's).
    let layers_there = blobs(&client.artifacts())
        .intersection(&blobs(&server.artifacts()))
        .count();
    assert!(layers_there >= 3, "the base and both top layers, as stored");
    assert_eq!(
        refs_in(&client.artifacts()),
        refs.iter()
            .map(|r| file_name(r).to_string())
            .collect::<Vec<_>>()
    );
}

#[test]
fn https_with_a_ca_file_and_an_untrusted_certificate_refused() {
    let server = Scratch::new();
    let refs = publish(&server, &["9.0.0"]);
    let web = TestWebServer::start_tls(&server.artifacts());
    let url = web.url(file_name(&refs[0]));
    assert!(url.starts_with("https://"));
    let client = Scratch::new();
    let out = run(&client, &["pull", &url]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("certificate"),
        "an untrusted certificate is said so: {}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("retrying"),
        "a certificate is no passing failure: {}",
        stderr(&out)
    );
    assert!(refs_in(&client.artifacts()).is_empty());
    let ca = web.ca();
    ok(run(
        &client,
        &["pull", &url, "--ca-cert", ca.to_str().unwrap()],
    ));
    ok(run(&client, &["verify"]));
}

#[test]
fn a_base_url_without_a_scheme_is_wrong_usage_and_the_config_file_may_hold_it() {
    let server = Scratch::new();
    let refs = publish(&server, &["10.0.0"]);
    let out = run(&server, &["config", "--baseurl", "cdn.example/x"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("cdn.example/x"), "{}", stderr(&out));
    let out = run(&server, &["config"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--baseurl"), "{}", stderr(&out));
    fs::create_dir_all(server.path().join("config")).unwrap();
    fs::write(
        server.path().join("config/toolbox.yaml"),
        "baseurl: https://releases.example/web/\n",
    )
    .unwrap();
    let cfg = json(&ok(run(&server, &["config", "--json"])));
    assert_eq!(
        cfg["images"]["web"]["url"],
        format!("https://releases.example/web/{}", file_name(&refs[0]))
    );
    // The flag wins over the file.
    let cfg = json(&ok(run(
        &server,
        &["config", "--baseurl", "http://other.example", "--json"],
    )));
    assert_eq!(
        cfg["images"]["web"]["url"],
        format!("http://other.example/{}", file_name(&refs[0]))
    );
}
