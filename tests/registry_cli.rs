//! End-to-end tests of push, pull and the registry commands against real registries (Debian's
//! `docker-registry`, plain and with htpasswd), with the engine, skopeo and `docker load` as
//! independent readers.

mod common;

use std::fs;
use std::io::Write;
use std::process::Stdio;

use common::{
    Scratch, build, docker_ok, json, ok, scratch_context, stderr, stdout, toolbox, unique_image,
};

/// The config digest of an engine's image (`sha256:<hex>`): what a registry and `pull` know an
/// image by, on every engine (on a containerd-store engine the image's ID is its manifest's
/// digest instead), read from what `docker save` writes.
fn full_id(s: &Scratch, host: &str, reference: &str) -> String {
    let path = s.path().join(format!(
        "config-of-{}.tar",
        reference.replace([':', '/'], "_")
    ));
    docker_ok(s, host, &["save", "-o", path.to_str().unwrap(), reference]);
    let mut archive = tar::Archive::new(fs::File::open(&path).unwrap());
    let mut manifest = None;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some("manifest.json") {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
            manifest = Some(text);
        }
    }
    fs::remove_file(&path).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&manifest.unwrap()).unwrap();
    let config = manifest[0]["Config"].as_str().unwrap();
    let hex = config
        .trim_start_matches("blobs/sha256/")
        .trim_end_matches(".json");
    format!("sha256:{hex}")
}

/// The manifest at a reference, as the registry serves it, read by skopeo.
fn raw_manifest(s: &Scratch, reference: &str) -> Vec<u8> {
    let out = common::skopeo(s)
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo is installed");
    assert!(out.status.success(), "skopeo: {}", stderr(&out));
    out.stdout
}

/// Runs toolbox with `input` on stdin.
fn toolbox_stdin(s: &Scratch, args: &[&str], input: &str) -> std::process::Output {
    let mut child = s
        .toolbox_std()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// An image of three layers, saved into the artifacts directory; returns (image, config digest,
/// archive path relative to the scratch folder).
fn saved_image(s: &Scratch, host: &str, compress: bool) -> (String, String, String) {
    let image = unique_image("reg");
    let ctx = scratch_context(
        s.path(),
        &image,
        "RUN [\"/bin/sh\", \"-c\", \"echo layered > /layer.txt\"]\n",
    );
    // The archive is named with the engine's ID; the registry knows the config digest.
    let engine_id = build(s, host, &image, "1.0", &ctx);
    let mut args = vec!["update-image", &image, "--version", "1.0"];
    if compress {
        args.push("--compress");
    }
    ok(toolbox(s, host, &args));
    let ext = if compress { "zip" } else { "docker" };
    let archive = format!("artifacts/{image}_1.0_{}.{ext}", &engine_id[7..19]);
    (
        image.clone(),
        full_id(s, host, &format!("{image}:1.0")),
        archive,
    )
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn push_then_engine_and_skopeo_read_it_and_registry_commands() {
    let host = common::engine();
    let registry = common::TestRegistry::start(None);
    let r = &registry.host;
    let s = Scratch::new();
    let (image, id, archive) = saved_image(&s, &host, true);
    let repo = format!("{r}/team/{image}");

    // push: the default tag is the version; the digest on stdout.
    let out = ok(s
        .toolbox()
        .args(["push", &archive, &repo])
        .output()
        .unwrap());
    let digest = stdout(&out).trim().to_string();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );

    // The engine pulls it with the same image ID; skopeo reads the same manifest.
    docker_ok(&s, &host, &["rmi", "--no-prune", &format!("{image}:1.0")]);
    docker_ok(&s, &host, &["pull", &format!("{repo}:1.0")]);
    assert_eq!(full_id(&s, &host, &format!("{repo}:1.0")), id);
    let skopeo = common::skopeo(&s)
        .args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{repo}:1.0"),
        ])
        .output()
        .expect("skopeo is installed");
    assert!(skopeo.status.success(), "{}", stderr(&skopeo));
    let seen: serde_json::Value = serde_json::from_slice(&skopeo.stdout).unwrap();
    assert_eq!(seen["Digest"], digest.as_str());
    assert_eq!(seen["Layers"].as_array().unwrap().len(), 3);

    // A second push (from the .docker this time) uploads no layer and gives the same digest:
    // with no local record of the first push (the manifest at the target names the blobs)...
    ok(s.toolbox().args(["decompress", &archive]).output().unwrap());
    let docker_archive = archive.replace(".zip", ".docker");
    let push_json = |reference: &str, cache: &std::path::Path| {
        let out = ok(s
            .toolbox()
            .env("XDG_CACHE_HOME", cache)
            .args(["push", &docker_archive, reference, "--json"])
            .output()
            .unwrap());
        json(&out)
    };
    let fresh = s.path().join("fresh-cache");
    let pushed = push_json(&format!("{repo}:1.0"), &fresh);
    assert_eq!(pushed["uploaded"], 0, "{pushed}");
    assert_eq!(pushed["skipped"], 3, "{pushed}");
    assert_eq!(pushed["digest"], digest.as_str());
    // ...and to a new tag, from the record that push kept.
    let pushed = push_json(&format!("{repo}:again"), &fresh);
    assert_eq!(
        (pushed["uploaded"].clone(), pushed["skipped"].clone()),
        (0.into(), 3.into())
    );
    assert_eq!(pushed["digest"], digest.as_str());
    // copy (another tag, another repository), tags, catalog, check, delete.
    ok(s.toolbox()
        .args([
            "registry",
            "copy",
            &format!("{repo}:1.0"),
            &format!("{repo}:stable"),
        ])
        .output()
        .unwrap());
    let out = ok(s
        .toolbox()
        .args([
            "registry",
            "copy",
            &format!("{repo}:1.0"),
            &format!("{r}/mirror/{image}:1.0"),
        ])
        .output()
        .unwrap());
    assert_eq!(stdout(&out).trim(), digest, "a copy keeps the digest");
    let out = ok(s
        .toolbox()
        .args(["registry", "tags", &repo])
        .output()
        .unwrap());
    assert_eq!(stdout(&out), "1.0\nagain\nstable\n");
    let out = ok(s
        .toolbox()
        .args(["registry", "tags", &repo, "--json"])
        .output()
        .unwrap());
    assert_eq!(json(&out), serde_json::json!(["1.0", "again", "stable"]));
    let out = ok(s
        .toolbox()
        .args(["registry", "catalog", r])
        .output()
        .unwrap());
    let catalog = stdout(&out);
    assert!(
        catalog.contains(&format!("team/{image}\n"))
            && catalog.contains(&format!("mirror/{image}\n")),
        "{catalog}"
    );
    let mirror = format!("{r}/mirror/{image}:1.0");
    let out = ok(s
        .toolbox()
        .args(["registry", "check", &mirror])
        .output()
        .unwrap());
    assert!(stdout(&out).contains("ok (4 blobs"), "{}", stdout(&out));
    let out = ok(s
        .toolbox()
        .args(["registry", "delete", &mirror])
        .output()
        .unwrap());
    assert_eq!(stdout(&out).trim(), format!("deleted {digest}"));
    let out = s
        .toolbox()
        .args(["registry", "check", &mirror])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));

    // check finds a blob that went missing.
    let manifest: serde_json::Value =
        serde_json::from_slice(&raw_manifest(&s, &format!("{repo}:1.0"))).unwrap();
    let layer = manifest["layers"][2]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    fs::remove_file(registry.blob_file(&layer)).unwrap();
    let out = s
        .toolbox()
        .args(["registry", "check", &format!("{repo}:1.0")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains(&format!("missing blob {layer}")),
        "{}",
        stdout(&out)
    );

    docker_ok(&s, &host, &["rmi", "--no-prune", &format!("{repo}:1.0")]);
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn an_image_pushed_by_docker_is_pulled_into_a_loadable_archive() {
    let host = common::engine();
    let registry = common::TestRegistry::start(None);
    let s = Scratch::new();
    let image = unique_image("dpush");
    let ctx = scratch_context(
        s.path(),
        &image,
        "RUN [\"/bin/sh\", \"-c\", \"echo x > /x\"]\n",
    );
    let reference = format!("{}/lib/{image}:3.0", registry.host);
    docker_ok(
        &s,
        &host,
        &["build", "-q", "-t", &reference, ctx.to_str().unwrap()],
    );
    let id = full_id(&s, &host, &reference);
    docker_ok(&s, &host, &["push", &reference]);

    for (compress, ext) in [(false, "docker"), (true, "zip")] {
        let mut args = vec!["pull", reference.as_str(), "--json"];
        if compress {
            args.extend(["--image", "lib-copy", "--compress"]);
        }
        let out = ok(s.toolbox().args(&args).output().unwrap());
        let pulled = json(&out);
        let name = if compress { "lib-copy" } else { image.as_str() };
        let expected = format!("./artifacts/{name}_3.0_{}.{ext}", &id[7..19]);
        assert_eq!(pulled["path"], expected.as_str(), "{pulled}");
        assert_eq!(pulled["written"], true);
        let out = ok(s.toolbox().args(["verify", &expected]).output().unwrap());
        assert!(stdout(&out).ends_with(": ok\n"), "{}", stdout(&out));
    }
    // Pulled again: already current, nothing written.
    let out = ok(s
        .toolbox()
        .args(["pull", &reference, "--json"])
        .output()
        .unwrap());
    assert_eq!(json(&out)["written"], false);

    // docker load of the archive gives the same image ID; so does toolbox load of the ZIP.
    docker_ok(&s, &host, &["rmi", "--no-prune", &reference]);
    let tar = s
        .artifacts()
        .join(format!("{image}_3.0_{}.docker", &id[7..19]));
    let loaded = docker_ok(&s, &host, &["load", "-i", tar.to_str().unwrap()]);
    assert!(loaded.contains(&format!("{image}:3.0")), "{loaded}");
    assert_eq!(full_id(&s, &host, &format!("{image}:3.0")), id);
    docker_ok(&s, &host, &["rmi", "--no-prune", &format!("{image}:3.0")]);
    ok(toolbox(&s, &host, &["load", "lib-copy:3.0"]));
    assert_eq!(full_id(&s, &host, "lib-copy:3.0"), id);
    docker_ok(&s, &host, &["rmi", "--no-prune", "lib-copy:3.0"]);
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn a_blob_that_does_not_match_its_digest_is_refused() {
    let host = common::engine();
    let registry = common::TestRegistry::start(None);
    let s = Scratch::new();
    let (_image, _id, archive) = saved_image(&s, &host, false);
    let target = format!("{}/bad/app:1.0", registry.host);
    ok(s.toolbox()
        .args(["push", &archive, &target])
        .output()
        .unwrap());
    let manifest: serde_json::Value = serde_json::from_slice(&raw_manifest(&s, &target)).unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let file = registry.blob_file(&layer);
    let mut bytes = fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    fs::write(&file, bytes).unwrap();

    let pulled = Scratch::new();
    for compress in [false, true] {
        let mut args = vec!["pull", target.as_str()];
        if compress {
            args.push("--compress");
        }
        let out = pulled.toolbox().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(err.contains(&layer) && err.contains("digest"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(pulled.files().is_empty(), "{:?}", pulled.files());
    }
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn credentials_and_clear_errors() {
    let host = common::engine();
    let registry = common::TestRegistry::start(Some(("ann", "s3cret-pw")));
    let r = &registry.host;
    let s = Scratch::new();
    let (_image, id, archive) = saved_image(&s, &host, false);
    let target = format!("{r}/private/app:1.0");
    let no_config = s.path().join("no-docker-config");
    fs::create_dir(&no_config).unwrap();

    // No credentials, wrong ones: refused, clearly, exit 1; the password never shows.
    let out = s
        .toolbox()
        .env("DOCKER_CONFIG", &no_config)
        .args(["push", &archive, &target])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("credentials"), "{}", stderr(&out));
    let out = toolbox_stdin(
        &s,
        &[
            "push",
            &archive,
            &target,
            "--username",
            "ann",
            "--password-stdin",
        ],
        "wrong-pw\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("refused the credentials"), "{err}");
    assert!(!err.contains("wrong-pw") && !stdout(&out).contains("wrong-pw"));

    // The right ones, from stdin; then from the Docker config file.
    let out = toolbox_stdin(
        &s,
        &[
            "push",
            &archive,
            &target,
            "--username",
            "ann",
            "--password-stdin",
        ],
        "s3cret-pw\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("s3cret") && !stdout(&out).contains("s3cret"));
    let config = s.path().join("docker-config");
    fs::create_dir(&config).unwrap();
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("ann:s3cret-pw");
    fs::write(
        config.join("config.json"),
        format!(r#"{{"auths":{{"{r}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    let out = ok(s
        .toolbox()
        .env("DOCKER_CONFIG", &config)
        .args(["pull", &target, "--image", "fromauth", "--json"])
        .output()
        .unwrap());
    assert_eq!(json(&out)["id"], &id[7..19]);
    let out = ok(s
        .toolbox()
        .env("DOCKER_CONFIG", &config)
        .args(["registry", "tags", &format!("{r}/private/app")])
        .output()
        .unwrap());
    assert_eq!(stdout(&out), "1.0\n");

    // A copy from this registry to another (credentials from the config file for the source
    // only) streams the blobs through and keeps the digest.
    let plain = common::TestRegistry::start(None);
    let copied = format!("{}/copied/app:1.0", plain.host);
    let out = ok(s
        .toolbox()
        .env("DOCKER_CONFIG", &config)
        .args(["registry", "copy", &target, &copied])
        .output()
        .unwrap());
    let digest = stdout(&out).trim().to_string();
    let out = ok(s
        .toolbox()
        .args(["registry", "check", &copied, "--json"])
        .output()
        .unwrap());
    let checked = json(&out);
    assert_eq!(checked["digest"], digest.as_str());
    assert_eq!(checked["missing"], serde_json::json!([]));
    assert_eq!(checked["blobs"], 4);

    // An unknown repository, an unreachable registry, a bad reference.
    let out = s
        .toolbox()
        .env("DOCKER_CONFIG", &config)
        .args(["pull", &format!("{r}/private/nothing:1.0")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = s
        .toolbox()
        .args(["pull", &format!("127.0.0.1:{closed}/x/y:1")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot reach"), "{}", stderr(&out));
    let out = s.toolbox().args(["pull", "Bad Ref"]).output().unwrap();
    // An invalid argument is wrong usage (the first-hour issue: every invalid argument exits 2).
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("Bad Ref"), "{}", stderr(&out));
    assert!(
        s.files().iter().all(|f| !f.starts_with(".toolbox-tmp")),
        "{:?}",
        s.files()
    );
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn tls_with_a_ca_file() {
    let host = common::engine();
    let registry = common::TestRegistry::start_with(None, true);
    let s = Scratch::new();
    let (_image, id, archive) = saved_image(&s, &host, false);
    let target = format!("{}/secure/app:1.0", registry.host);
    let ca = registry.dir().join("ca.pem");
    // Plain HTTP (--insecure) is not what it speaks.
    let out = s
        .toolbox()
        .args(["push", &archive, &target, "--insecure"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&registry.host) && !stderr(&out).contains("certificate"),
        "{}",
        stderr(&out)
    );
    // HTTPS without the registry's CA: the certificate is met and not trusted. With a CA that
    // did not sign it...
    let other_ca = s.path().join("other-ca.pem");
    let made = s
        .command("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout"])
        .arg(s.path().join("other-ca.key"))
        .arg("-out")
        .arg(&other_ca)
        .args(["-days", "2", "-subj", "/CN=another-ca"])
        .output()
        .expect("openssl is installed");
    assert!(made.status.success(), "{}", stderr(&made));
    let out = s
        .toolbox()
        .args([
            "push",
            &archive,
            &target,
            "--ca-cert",
            other_ca.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    untrusted(&out, &registry.host);
    // ...and with the system's roots only: a registry reached by a name that is not a loopback
    // address (this machine's name, through a forwarder listening on every interface) is
    // reached over HTTPS.
    let forwarder = Forwarder::start(&registry.host);
    let name = hostname();
    let by_name = format!("{name}:{}", forwarder.port);
    assert!(
        std::net::ToSocketAddrs::to_socket_addrs(&by_name.as_str()).is_ok(),
        "this machine's name `{name}` does not resolve"
    );
    let out = s
        .toolbox()
        .args(["push", &archive, &format!("{by_name}/secure/app:1.0")])
        .output()
        .unwrap();
    untrusted(&out, &by_name);
    assert!(
        forwarder.connections() > 0,
        "the push went through the forwarder"
    );
    let out = ok(s
        .toolbox()
        .args(["push", &archive, &target, "--ca-cert", ca.to_str().unwrap()])
        .output()
        .unwrap());
    assert!(stdout(&out).starts_with("sha256:"));
    let out = ok(s
        .toolbox()
        .args([
            "pull",
            &target,
            "--image",
            "secure",
            "--json",
            "--ca-cert",
            ca.to_str().unwrap(),
        ])
        .output()
        .unwrap());
    assert_eq!(json(&out)["id"], &id[7..19]);
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn manifest_lists_choose_a_platform() {
    let host = common::engine();
    let registry = common::TestRegistry::start(None);
    let s = Scratch::new();
    let r = &registry.host;
    // Two images of different content, one per platform of the index.
    let mut pushed = Vec::new();
    for platform in ["arm64", "amd64"] {
        let (_image, id, archive) = saved_image(&s, &host, false);
        let reference = format!("{r}/multi/app:{platform}");
        let out = ok(s
            .toolbox()
            .args(["push", &archive, &reference])
            .output()
            .unwrap());
        let digest = stdout(&out).trim().to_string();
        let size = raw_manifest(&s, &reference).len();
        pushed.push((id, digest, size));
    }
    let [
        (arm_id, arm_digest, arm_size),
        (amd_id, amd_digest, amd_size),
    ] = <[_; 2]>::try_from(pushed).unwrap();
    assert_ne!(arm_id, amd_id, "two images");
    assert_ne!(arm_digest, amd_digest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": arm_digest, "size": arm_size,
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": amd_digest, "size": amd_size,
             "platform": {"os": "linux", "architecture": "amd64"}},
        ],
    });
    let path = s.path().join("index.json");
    fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
    let put = s
        .command("curl")
        .args([
            "-fsS",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/vnd.oci.image.index.v1+json",
        ])
        .arg("--data-binary")
        .arg(format!("@{}", path.display()))
        .arg(format!("http://{r}/v2/multi/app/manifests/2.0"))
        .output()
        .expect("curl is installed");
    assert!(put.status.success(), "{}", stderr(&put));
    let list = format!("{r}/multi/app:2.0");

    // Each platform gets its own image, whichever comes first in the index.
    let pull = |platform: Option<&str>, image: &str| {
        let mut args = vec!["pull", &list, "--image", image, "--json"];
        if let Some(platform) = platform {
            args.extend(["--platform", platform]);
        }
        json(&ok(s.toolbox().args(&args).output().unwrap()))
    };
    for (platform, image, id, digest) in [
        ("linux/arm64", "arm", &arm_id, &arm_digest),
        ("linux/arm64/v8", "armv8", &arm_id, &arm_digest),
        ("linux/amd64", "amd", &amd_id, &amd_digest),
    ] {
        let pulled = pull(Some(platform), image);
        assert_eq!(pulled["id"], &id[7..19], "{platform}: {pulled}");
        assert_eq!(pulled["digest"], digest.as_str(), "{platform}: {pulled}");
        // The archive holds that image: its config is the one pushed for the platform.
        let path = pulled["path"].as_str().unwrap();
        let inspected = json(&ok(s
            .toolbox()
            .args(["inspect", path, "--json"])
            .output()
            .unwrap()));
        assert_eq!(inspected["ConfigDigest"], id.as_str(), "{platform}");
    }
    // Without --platform, the host's.
    let host_platform = match std::env::consts::ARCH {
        "x86_64" => Some((&amd_id, &amd_digest)),
        "aarch64" => Some((&arm_id, &arm_digest)),
        _ => None,
    };
    if let Some((id, digest)) = host_platform {
        let pulled = pull(None, "native");
        assert_eq!(pulled["id"], &id[7..19], "{pulled}");
        assert_eq!(pulled["digest"], digest.as_str(), "{pulled}");
    }
    let out = s
        .toolbox()
        .args(["pull", &list, "--platform", "windows/amd64"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("windows/amd64") && err.contains("linux/arm64/v8"),
        "{err}"
    );
    let out = ok(s
        .toolbox()
        .args(["registry", "check", &list])
        .output()
        .unwrap());
    assert!(stdout(&out).contains(": ok"), "{}", stdout(&out));
    // A copy of the list keeps its digest and its manifests.
    let out = ok(s
        .toolbox()
        .args(["registry", "copy", &list, &format!("{r}/other/app:2.0")])
        .output()
        .unwrap());
    let list_digest = stdout(&out).trim().to_string();
    assert_eq!(
        list_digest,
        format!("sha256:{}", sha256_hex(&fs::read(&path).unwrap()))
    );
    ok(s.toolbox()
        .args(["registry", "check", &format!("{r}/other/app:2.0")])
        .output()
        .unwrap());
}

/// Fails unless `out` is the failure of a registry command that met a certificate it does not
/// trust at `host`: exit 1, an error naming the registry and the untrusted certificate, and no
/// retry (the README retries refused, reset and timed-out connections, 429 and 5xx: a
/// certificate nobody trusts stays so).
fn untrusted(out: &std::process::Output, host: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    let err = stderr(out);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("toolbox: error: ") && last.contains(host),
        "{err}"
    );
    assert!(
        last.contains("certificate") && last.contains("UnknownIssuer"),
        "the untrusted certificate is named: {err}"
    );
    assert!(
        !err.contains("retrying"),
        "an untrusted certificate is not retried: {err}"
    );
    assert_eq!(stdout(out), "");
}

/// This machine's name.
fn hostname() -> String {
    let out = std::process::Command::new("hostname")
        .output()
        .expect("hostname is installed");
    stdout(&out).trim().to_string()
}

/// A TCP forwarder to `upstream`, listening on every interface (bytes passed as they are:
/// TLS goes through).
struct Forwarder {
    port: u16,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Forwarder {
    fn start(upstream: &str) -> Forwarder {
        let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (upstream, counted) = (upstream.to_string(), connections.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        Forwarder { port, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
