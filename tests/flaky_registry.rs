//! Registry I/O over a flaky network: a fault-injecting proxy between toolbox and the registry
//! answers 429 (with `Retry-After`) and 503 once, and cuts connections midway through a blob's
//! download and upload. Pulls and pushes still succeed, each retry said on stderr, a download
//! resumed with a `Range` request; with `--retries 0` they fail, leaving nothing
//! half-written; a 404 is not retried.

mod common;

use std::fs;
use std::process::Command;

use common::{Fault, FaultyProxy, Fired, Scratch, ok, stderr, stdout, unique_image};

/// The digest of the largest layer of `reference` (`HOST/REPO:TAG`), read from the registry.
fn largest_layer(host: &str, repo: &str, tag: &str) -> String {
    let out = Command::new("curl")
        .args([
            "-sf",
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json",
            &format!("http://{host}/v2/{repo}/manifests/{tag}"),
        ])
        .output()
        .expect("curl is installed");
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["layers"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|l| l["size"].as_u64().unwrap_or(0))
        .and_then(|l| l["digest"].as_str())
        .unwrap()
        .to_string()
}

/// The files of the artifacts directory (temporary ones included).
fn artifacts(s: &Scratch) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(s.artifacts())
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The one fault of `fired` on a request whose line contains `method` and `path`, failing the
/// test unless exactly one took effect there.
fn one<'a>(fired: &'a [Fired], method: &str, path: &str) -> &'a Fired {
    let found: Vec<&Fired> = fired
        .iter()
        .filter(|f| f.line.starts_with(&format!("{method} ")) && f.line.contains(path))
        .collect();
    assert_eq!(found.len(), 1, "{method} {path}: {fired:#?}");
    found[0]
}

fn retries(out: &std::process::Output) -> usize {
    stderr(out)
        .lines()
        .filter(|l| l.contains("retrying in"))
        .count()
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn pulls_and_pushes_survive_a_flaky_network() {
    let host = common::engine();
    let registry = common::TestRegistry::start(None);
    let s = Scratch::new();
    // An image with a 3 MB layer of incompressible bytes, pushed without faults.
    let image = unique_image("flaky");
    let ctx = common::scratch_context(s.path(), &image, "COPY random.bin /\n");
    let mut data = vec![0u8; 3 << 20];
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
    for b in data.iter_mut() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *b = state as u8;
    }
    fs::write(ctx.join("random.bin"), &data).unwrap();
    let id = common::build(&s, &host, &image, "1.0", &ctx);
    ok(common::toolbox(
        &s,
        &host,
        &["update-image", &image, "--version", "1.0"],
    ));
    let archive = format!("artifacts/{image}_1.0_{}.docker", &id[7..19]);
    let direct = format!("{}/flaky/app:1.0", registry.host);
    ok(s.toolbox()
        .args(["push", &archive, &direct])
        .output()
        .unwrap());
    let layer = largest_layer(&registry.host, "flaky/app", "1.0");
    let proxy = FaultyProxy::start(&registry.host);
    let through = |path: &str| format!("{}/{path}", proxy.host);

    // A pull: 429 with Retry-After on the manifest, 503 on the big layer, then that layer's
    // download cut after about 1 MB: three retries, the download resumed with a Range.
    proxy.fault(
        "GET",
        "/manifests/1.0",
        Fault::Answer {
            status: 429,
            retry_after: Some(2),
        },
        1,
    );
    proxy.fault(
        "GET",
        &format!("/blobs/{layer}"),
        Fault::Answer {
            status: 503,
            retry_after: None,
        },
        1,
    );
    proxy.fault(
        "GET",
        &format!("/blobs/{layer}"),
        Fault::CutAnswerAfter(1 << 20),
        1,
    );
    let out = s
        .toolbox()
        .args([
            "pull",
            &through("flaky/app:1.0"),
            "--image",
            "pulled",
            "--json",
        ])
        .output()
        .unwrap();
    // The three faults took effect: a 429 and a 503 answered, a download cut 1 MiB in with
    // more of the blob to come.
    let fired = proxy.fired();
    assert!(
        proxy.unused().is_empty(),
        "faults that never took effect: {:?}",
        proxy.unused()
    );
    assert_eq!(fired.len(), 3, "{fired:#?}");
    let manifest = one(&fired, "GET", "/manifests/1.0");
    assert!(
        matches!(manifest.fault, Fault::Answer { status: 429, .. }),
        "{manifest:?}"
    );
    let blob = format!("/blobs/{layer}");
    let answered = fired
        .iter()
        .filter(|f| f.line.contains(&blob) && matches!(f.fault, Fault::Answer { status: 503, .. }))
        .count();
    assert_eq!(answered, 1, "{fired:#?}");
    let cut = fired
        .iter()
        .find(|f| f.line.contains(&blob) && matches!(f.fault, Fault::CutAnswerAfter(_)))
        .unwrap_or_else(|| panic!("no cut download: {fired:#?}"));
    assert!(cut.cut && cut.bytes == 1 << 20, "{cut:?}");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(retries(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("HTTP 429") && stderr(&out).contains("retrying in 2.0 s"),
        "Retry-After is honoured: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("HTTP 503") && stderr(&out).contains("retrying in 0.5 s"),
        "without Retry-After, the first wait: {}",
        stderr(&out)
    );
    // Resumed where it stopped: a Range from past the start, within what came through.
    let blob_get = format!("GET /v2/flaky/app/blobs/{layer}");
    let ranges: Vec<u64> = proxy
        .seen(&blob_get)
        .iter()
        .filter_map(|h| {
            let lower = h.to_ascii_lowercase();
            let from = lower.split("range: bytes=").nth(1)?;
            from.split('-').next()?.trim().parse().ok()
        })
        .collect();
    assert_eq!(
        ranges.len(),
        1,
        "one resumed download: {:?}",
        proxy.seen(&blob_get)
    );
    assert!(
        ranges[0] > 0 && ranges[0] < 1 << 20,
        "the download resumed at {}, where the cut stopped it",
        ranges[0]
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pulled = v["path"].as_str().unwrap().to_string();
    ok(s.toolbox().args(["verify", &pulled]).output().unwrap());

    // A push: the upload's start refused once (503), then an upload cut midway: the push
    // starts over and ends with the image in the registry.
    proxy.fault(
        "POST",
        "/flaky/pushed/blobs/uploads/",
        Fault::Answer {
            status: 429,
            retry_after: Some(1),
        },
        1,
    );
    proxy.fault(
        "PATCH",
        "/flaky/pushed/blobs/uploads/",
        Fault::CutRequestAfter(512 << 10),
        1,
    );
    let out = s
        .toolbox()
        .args(["push", &archive, &through("flaky/pushed:1.0")])
        .env("XDG_CACHE_HOME", s.path().join("no-cache"))
        .output()
        .unwrap();
    // Both faults took effect: the upload's start refused, an upload cut 512 KiB into a body
    // that had more.
    let fired = proxy.fired()[3..].to_vec();
    assert!(
        proxy.unused().is_empty(),
        "faults that never took effect: {:?}",
        proxy.unused()
    );
    assert_eq!(fired.len(), 2, "{fired:#?}");
    let refused = one(&fired, "POST", "/flaky/pushed/blobs/uploads/");
    assert!(
        matches!(refused.fault, Fault::Answer { status: 429, .. }),
        "{refused:?}"
    );
    let cut = one(&fired, "PATCH", "/flaky/pushed/blobs/uploads/");
    assert!(cut.cut && cut.bytes == 512 << 10, "{cut:?}");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        retries(&out) >= 2,
        "{}\n{:?}",
        stderr(&out),
        proxy
            .seen("/flaky/pushed")
            .iter()
            .map(|h| h.lines().next().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    );
    assert!(
        stderr(&out).contains("retrying in 1.0 s"),
        "an upload's Retry-After is honoured: {}",
        stderr(&out)
    );
    let digest = stdout(&out).trim().to_string();
    let out = ok(s
        .toolbox()
        .args([
            "registry",
            "check",
            &format!("{}/flaky/pushed:1.0", registry.host),
        ])
        .output()
        .unwrap());
    assert!(stdout(&out).contains(&digest), "{}", stdout(&out));

    // No retries left: the pull fails at once, and nothing is left in the directory.
    let before = artifacts(&s);
    let gets_before = proxy.seen(&blob_get).len();
    proxy.fault(
        "GET",
        &format!("/blobs/{layer}"),
        Fault::CutAnswerAfter(1 << 20),
        1,
    );
    let out = s
        .toolbox()
        .args([
            "pull",
            &through("flaky/app:1.0"),
            "--image",
            "again",
            "--retries",
            "0",
        ])
        .output()
        .unwrap();
    // The cut took effect, and nothing tried again.
    let fired = proxy.fired()[5..].to_vec();
    assert!(
        proxy.unused().is_empty(),
        "faults that never took effect: {:?}",
        proxy.unused()
    );
    assert_eq!(fired.len(), 1, "{fired:#?}");
    let cut = one(&fired, "GET", &blob);
    assert!(cut.cut && cut.bytes == 1 << 20, "{cut:?}");
    assert_eq!(
        proxy.seen(&blob_get).len(),
        gets_before + 1,
        "no request for the blob after the cut one"
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(retries(&out), 0, "{}", stderr(&out));
    let after: Vec<String> = artifacts(&s)
        .into_iter()
        .filter(|n| !n.starts_with(".toolbox") && !n.ends_with(".lock"))
        .collect();
    let before: Vec<String> = before
        .into_iter()
        .filter(|n| !n.starts_with(".toolbox") && !n.ends_with(".lock"))
        .collect();
    assert_eq!(after, before, "nothing half-written under an archive name");
    assert!(
        !artifacts(&s).iter().any(|n| n.contains("again")),
        "{:?}",
        artifacts(&s)
    );

    // A 404 is final: asked once, no retry.
    let out = s
        .toolbox()
        .args(["pull", &through("flaky/app:nope")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(retries(&out), 0, "{}", stderr(&out));
    assert_eq!(proxy.seen("/manifests/nope").len(), 1);
    common::docker_ok(&s, &host, &["rmi", "--no-prune", &format!("{image}:1.0")]);
}
