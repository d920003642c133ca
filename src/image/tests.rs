//! Tests of the index, the layouts and verification, and the tar builders other tests use.

use std::io::{self, Write};

use super::ImageError;
use super::index::{FileDigest, Member, Reading, SMALL, TarIndex, blob_path};
use super::verify::check;
use crate::digest::sha256;

/// A classic `docker save` tar of one image with the given layers; returns the tar and the
/// image ID.
pub fn classic_tar(layers: &[&[u8]], gzip_layers: bool) -> (Vec<u8>, String) {
    let mut diff_ids = Vec::new();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut names = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        diff_ids.push(sha256(layer));
        let stored = if gzip_layers {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(layer).unwrap();
            gz.finish().unwrap()
        } else {
            layer.to_vec()
        };
        let name = format!("layer{i}/layer.tar");
        files.push((name.clone(), stored));
        names.push(name);
    }
    let config = serde_json::json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}});
    let config = serde_json::to_vec(&config).unwrap();
    let id = sha256(&config);
    let config_name = format!("{}.json", &id[7..]);
    files.push((config_name.clone(), config));
    let manifest =
        serde_json::json!([{"Config": config_name, "RepoTags": ["web:1.0"], "Layers": names}]);
    files.push((
        "manifest.json".into(),
        serde_json::to_vec(&manifest).unwrap(),
    ));
    (tar_of(&files), id)
}

pub fn tar_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        // Write the name raw, so that hostile names reach the reader as they are.
        header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_cksum();
        builder.append(&header, data.as_slice()).unwrap();
    }
    builder.into_inner().unwrap()
}

/// Indexes a tar with every file hashed.
fn hashed(tar: &[u8]) -> Result<TarIndex, ImageError> {
    TarIndex::read(&mut &tar[..], Reading::Hashed)
}

/// What `verify` says of a tar: nothing, or what is wrong.
fn check_tar(tar: &[u8], name_id: &str) -> Option<String> {
    hashed(tar)
        .and_then(|index| check(&index, name_id))
        .err()
        .map(|e| e.to_string())
}

#[test]
fn a_good_image_passes_in_both_layer_encodings() {
    for gzip in [false, true] {
        let (tar, id) = classic_tar(&[b"first layer", &vec![7u8; 300_000]], gzip);
        assert_eq!(check_tar(&tar, &id[7..19]), None, "gzip {gzip}");
    }
}

#[test]
fn problems_are_named() {
    let (tar, id) = classic_tar(&[b"first layer", b"second layer"], false);
    let err = check_tar(&tar, "ffffffffffff").unwrap();
    assert!(
        err.contains("ffffffffffff") && err.contains(&id[7..]),
        "{err}"
    );

    let mut flipped = tar.clone();
    let at = flipped
        .windows(12)
        .position(|w| w == b"second layer")
        .unwrap();
    flipped[at] ^= 1;
    let err = check_tar(&flipped, &id[7..19]).unwrap();
    assert!(err.contains("layer1/layer.tar"), "{err}");

    let err = check_tar(&tar_of(&[("x".into(), b"y".to_vec())]), "0123456789ab").unwrap();
    assert!(err.contains("manifest.json"), "{err}");
    for hostile in ["/etc/passwd", "../escape", "a/../../b"] {
        let err = hashed(&tar_of(&[(hostile.into(), b"x".to_vec())]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(hostile), "{err}");
    }
    let err = check_tar(&tar[..tar.len() / 2], &id[7..19]).unwrap();
    assert!(!err.is_empty());
}

#[test]
fn an_oversized_config_is_an_error_not_a_panic() {
    let config_name = format!("{}.json", "a".repeat(64));
    let manifest = serde_json::json!([{"Config": config_name, "Layers": []}]);
    let tar = tar_of(&[
        (config_name.clone(), vec![b' '; SMALL as usize + 1]),
        (
            "manifest.json".into(),
            serde_json::to_vec(&manifest).unwrap(),
        ),
    ]);
    let err = check_tar(&tar, "aaaaaaaaaaaa").unwrap();
    assert!(err.contains("too large"), "{err}");
}

#[test]
fn oci_blobs_must_match_their_names() {
    let blob = b"a blob".to_vec();
    let name = format!("blobs/sha256/{}", &sha256(&blob)[7..]);
    let index = hashed(&tar_of(&[(name.clone(), blob)])).unwrap();
    assert_eq!(
        index.file(&name).unwrap().digest.unwrap().stored[7..],
        name[13..]
    );
    let wrong = format!("blobs/sha256/{}", "0".repeat(64));
    let (tar, id) = classic_tar(&[b"l"], false);
    let mut index = hashed(&tar).unwrap();
    index.members.insert(
        wrong,
        Member::File {
            offset: 0,
            size: 1,
            digest: Some(FileDigest {
                stored: sha256(b"x"),
                uncompressed: None,
                layer_problem: None,
                left_compressed: false,
            }),
        },
    );
    assert!(
        check(&index, &id[7..19])
            .unwrap_err()
            .to_string()
            .contains("blobs/sha256/000")
    );
}

#[test]
fn classic_layout_streamed_and_seeked_agree() {
    let (tar, id) = classic_tar(&[b"layer one", b"layer two!"], false);
    let streamed = TarIndex::read(&mut tar.as_slice(), Reading::Documents)
        .unwrap()
        .image()
        .unwrap();
    let seeked = TarIndex::read_seekable(io::Cursor::new(&tar))
        .unwrap()
        .image()
        .unwrap();
    assert_eq!(streamed.id, id);
    assert_eq!(seeked.id, id);
    assert_eq!(streamed.layers, seeked.layers);
    assert_eq!(streamed.layers.len(), 2);
    assert!(streamed.layers[0].diff_id.starts_with("sha256:"));
}

#[test]
fn symlinked_layers_are_followed() {
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:a","sha256:a"]}}"#;
    let config_name = format!("{}.json", &sha256(config)[7..]);
    let manifest = format!(
        r#"[{{"Config":"{config_name}","RepoTags":["x:1"],"Layers":["aa/layer.tar","bb/layer.tar"]}}]"#
    );
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        builder.append_data(&mut h, path, data).unwrap();
    };
    add("aa/layer.tar", b"0123456789");
    add(&config_name, config);
    add("manifest.json", manifest.as_bytes());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    builder
        .append_link(&mut h, "bb/layer.tar", "../aa/layer.tar")
        .unwrap();
    let tar = builder.into_inner().unwrap();
    let info = TarIndex::read_seekable(io::Cursor::new(&tar))
        .unwrap()
        .image()
        .unwrap();
    assert_eq!(info.layers[1].size, 10);
    assert_eq!(info.repo_tags, vec!["x:1".to_string()]);
    assert_eq!(info.field("architecture"), Some("amd64"));
}

#[test]
fn oci_layout_without_manifest_json() {
    let config = br#"{"created":"2024-01-02T03:04:05.123456789Z","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:d1"]}}"#;
    let layer = vec![7u8; 300];
    let cfg_digest = sha256(config);
    let layer_digest = sha256(&layer);
    let manifest = format!(
        r#"{{"schemaVersion":2,"config":{{"digest":"{cfg_digest}","size":{}}},"layers":[{{"digest":"{layer_digest}","size":300}}]}}"#,
        config.len()
    );
    let man_digest = sha256(manifest.as_bytes());
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"digest":"{man_digest}","size":{},"annotations":{{"io.containerd.image.name":"docker.io/library/web:2.0"}}}}]}}"#,
        manifest.len()
    );
    let tar = tar_of(&[
        (
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        ("index.json".into(), index.into_bytes()),
        (blob_path(&man_digest), manifest.into_bytes()),
        (blob_path(&cfg_digest), config.to_vec()),
        (blob_path(&layer_digest), layer),
    ]);
    let info = TarIndex::read(&mut tar.as_slice(), Reading::Documents)
        .unwrap()
        .image()
        .unwrap();
    assert_eq!(info.id, cfg_digest);
    assert_eq!(
        info.repo_tags,
        vec!["docker.io/library/web:2.0".to_string()]
    );
    assert_eq!(info.layers[0].size, 300);
    assert_eq!(info.layers[0].diff_id, "sha256:d1");
    assert_eq!(
        info.created_time().map(|t| t.unix_timestamp()),
        Some(1_704_164_645)
    );
}

#[test]
fn escaping_members_are_refused() {
    let tar = tar_of(&[("a/../../x".into(), b"x".to_vec())]);
    assert!(TarIndex::read(&mut tar.as_slice(), Reading::Documents).is_err());
}

#[test]
fn not_an_image() {
    let tar = tar_of(&[("hello.txt".into(), b"hi".to_vec())]);
    let err = TarIndex::read(&mut tar.as_slice(), Reading::Documents)
        .unwrap()
        .image()
        .unwrap_err()
        .to_string();
    assert!(err.contains("manifest.json"), "{err}");
}

#[test]
fn verify_reads_an_oci_layout_without_manifest_json() {
    let layer = vec![9u8; 1000];
    let diff_id = sha256(&layer);
    let config =
        format!(r#"{{"os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#);
    let cfg_digest = sha256(config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"config":{{"digest":"{cfg_digest}","size":{}}},"layers":[{{"digest":"{diff_id}","size":1000}}]}}"#,
        config.len()
    );
    let man_digest = sha256(manifest.as_bytes());
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"digest":"{man_digest}","size":{}}}]}}"#,
        manifest.len()
    );
    let files = vec![
        ("index.json".to_string(), index.into_bytes()),
        (blob_path(&man_digest), manifest.into_bytes()),
        (blob_path(&cfg_digest), config.into_bytes()),
        (blob_path(&diff_id), layer.clone()),
    ];
    assert_eq!(check_tar(&tar_of(&files), &cfg_digest[7..19]), None);
    // A flipped layer byte is found, naming the blob.
    let mut bad = files.clone();
    bad[3].1[10] ^= 1;
    let err = check_tar(&tar_of(&bad), &cfg_digest[7..19]).unwrap();
    assert!(err.contains(&diff_id[7..]), "{err}");
}

#[test]
fn the_first_image_is_read_alone_and_verify_checks_them_all() {
    let (tar, id) = classic_tar(&[b"layer"], false);
    let mut files = files_of(&tar);
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let mut entries = manifest.as_array().unwrap().clone();
    entries.push(serde_json::json!({"Config": "missing.json", "Layers": ["gone/layer.tar"]}));
    files.insert(
        "manifest.json".into(),
        serde_json::to_vec(&entries).unwrap(),
    );
    let tar = tar_of(&files.into_iter().collect::<Vec<_>>());
    let index = TarIndex::read(&mut tar.as_slice(), Reading::Documents).unwrap();
    assert_eq!(index.image().unwrap().id, id);
    let err = check_tar(&tar, &id[7..19]).unwrap();
    assert!(err.contains("gone/layer.tar"), "{err}");
}

#[test]
fn verify_refuses_every_parent_component_that_inspect_resolves() {
    let (tar, id) = classic_tar(&[b"layer"], false);
    let mut files: Vec<(String, Vec<u8>)> = files_of(&tar).into_iter().collect();
    files.push(("a/../extra".into(), b"x".to_vec()));
    let tar = tar_of(&files);
    assert!(TarIndex::read(&mut tar.as_slice(), Reading::Documents).is_ok());
    let err = check_tar(&tar, &id[7..19]).unwrap();
    assert!(err.contains("a/../extra"), "{err}");
}

/// The files of a tar, by path.
fn files_of(tar: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            io::Read::read_to_end(&mut e, &mut data).unwrap();
            (path, data)
        })
        .collect()
}

/// A containerd store's archive of a multi-platform image: `index.json` → index → an amd64 and
/// an arm64 manifest and an attestation manifest; `manifest.json` names the amd64 image.
#[test]
fn identities_of_a_nested_index_and_which_image_is_read() {
    let layer = vec![5u8; 200];
    let layer_digest = sha256(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer_digest}"]}}}}"#
    );
    let cfg_digest = sha256(config.as_bytes());
    let config_size = config.len();
    let manifest_for = |cfg: &str| {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"digest":"{cfg}","size":{config_size}}},"layers":[{{"digest":"{layer_digest}","size":200}}]}}"#
        )
    };
    let amd64 = manifest_for(&cfg_digest);
    let arm64 =
        manifest_for("sha256:1111111111111111111111111111111111111111111111111111111111111111");
    let attestation =
        manifest_for("sha256:2222222222222222222222222222222222222222222222222222222222222222");
    let (d_amd, d_arm, d_att) = (
        sha256(amd64.as_bytes()),
        sha256(arm64.as_bytes()),
        sha256(attestation.as_bytes()),
    );
    let (s_amd, s_arm, s_att) = (amd64.len(), arm64.len(), attestation.len());
    let list = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
        {{"digest":"{d_amd}","size":{s_amd},"platform":{{"os":"linux","architecture":"amd64"}}}},
        {{"digest":"{d_arm}","size":{s_arm},"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
        {{"digest":"{d_att}","size":{s_att},"annotations":{{"vnd.docker.reference.type":"attestation-manifest"}}}}]}}"#
    );
    let d_list = sha256(list.as_bytes());
    let s_list = list.len();
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{d_list}","size":{s_list}}}]}}"#
    );
    let manifest_json = format!(
        r#"[{{"Config":"{}","RepoTags":["web:1"],"Layers":["{}"]}}]"#,
        blob_path(&cfg_digest),
        blob_path(&layer_digest)
    );
    let tar = tar_of(&[
        ("index.json".into(), index.into_bytes()),
        ("manifest.json".into(), manifest_json.into_bytes()),
        (blob_path(&d_list), list.into_bytes()),
        (blob_path(&d_amd), amd64.into_bytes()),
        (blob_path(&d_arm), arm64.into_bytes()),
        (blob_path(&d_att), attestation.into_bytes()),
        (blob_path(&cfg_digest), config.into_bytes()),
        (blob_path(&layer_digest), layer),
    ]);
    let info = hashed(&tar).unwrap().image().unwrap();
    assert_eq!(info.id, cfg_digest);
    // Outermost first: the index the engine shows as the ID, then the amd64 manifest.
    assert_eq!(
        info.identities(),
        vec![cfg_digest.as_str(), &d_list, &d_amd]
    );
    assert!(info.manifests[0].is_index);
    assert_eq!(info.manifests[1].platform.as_deref(), Some("linux/amd64"));
    let why = info.reading().unwrap();
    assert!(
        why.contains(&d_amd) && why.contains("1 other platform") && why.contains("1 attestation"),
        "{why}"
    );
    // A name with any of the three identities is genuine; another is refused, listing them.
    for id in [&cfg_digest, &d_list, &d_amd] {
        assert_eq!(check_tar(&tar, &id[7..19]), None, "{id}");
    }
    let refused = check_tar(&tar, "ffffffffffff").unwrap();
    assert!(
        refused.contains(&cfg_digest) && refused.contains(&d_list) && refused.contains(&d_amd),
        "{refused}"
    );
    // The arm64 manifest leads to another image: not an identity of this one.
    assert_ne!(check_tar(&tar, &d_arm[7..19]), None);
}

/// An index that lists the manifest, then an index whose children are that index many times
/// over (nesting as deep as allowed), beside a config whose bytes are not its digest: each
/// descriptor is visited once, and the reader answers at once.
#[test]
fn a_self_repeating_index_graph_is_walked_once() {
    let layer = vec![5u8; 100];
    let layer_digest = sha256(&layer);
    let config = format!(r#"{{"rootfs":{{"type":"layers","diff_ids":["{layer_digest}"]}}}}"#);
    let wrong_config = "sha256:3333333333333333333333333333333333333333333333333333333333333333";
    let manifest = format!(
        r#"{{"schemaVersion":2,"config":{{"digest":"{wrong_config}","size":{}}},"layers":[{{"digest":"{layer_digest}","size":100}}]}}"#,
        config.len()
    );
    let d_manifest = sha256(manifest.as_bytes());
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (blob_path(wrong_config), config.clone().into_bytes()),
        (blob_path(&layer_digest), layer),
        (blob_path(&d_manifest), manifest.clone().into_bytes()),
    ];
    // Level 0 lists the manifest; level n lists level n-1 four times.
    let mut child = (d_manifest.clone(), manifest.len());
    for _ in 0..15 {
        let entry = format!(r#"{{"digest":"{}","size":{}}}"#, child.0, child.1);
        let index =
            format!(r#"{{"schemaVersion":2,"manifests":[{entry},{entry},{entry},{entry}]}}"#);
        let digest = sha256(index.as_bytes());
        child = (digest.clone(), index.len());
        files.push((blob_path(&digest), index.into_bytes()));
    }
    let top = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"digest":"{d_manifest}","size":{}}},{{"digest":"{}","size":{}}}]}}"#,
        manifest.len(),
        child.0,
        child.1
    );
    files.push(("index.json".into(), top.into_bytes()));
    let manifest_json = format!(
        r#"[{{"Config":"{}","Layers":["{}"]}}]"#,
        blob_path(wrong_config),
        blob_path(&layer_digest)
    );
    files.push(("manifest.json".into(), manifest_json.into_bytes()));
    let tar = tar_of(&files);
    let started = std::time::Instant::now();
    let index = TarIndex::read(&mut tar.as_slice(), Reading::Documents).unwrap();
    // The config's bytes are not its digest: the chain to the image is not found, and the name
    // check fails — after one visit of each descriptor.
    let info = index.image().unwrap();
    assert!(info.manifests.is_empty());
    let err = check_tar(&tar, "0123456789ab").unwrap();
    assert!(err.contains("0123456789ab"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

/// More descriptors than any image has: refused, naming the limit.
#[test]
fn too_many_descriptors_are_refused() {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut entries = Vec::new();
    for i in 0..(super::layout::MAX_DESCRIPTORS + 1) {
        entries.push(format!(r#"{{"digest":"sha256:{i:064x}","size":1}}"#));
    }
    let top = format!(
        r#"{{"schemaVersion":2,"manifests":[{}]}}"#,
        entries.join(",")
    );
    files.push(("index.json".into(), top.into_bytes()));
    files.push(("manifest.json".into(), b"[]".to_vec()));
    let tar = tar_of(&files);
    let index = TarIndex::read(&mut tar.as_slice(), Reading::Documents).unwrap();
    let err = index.images().unwrap_err();
    assert!(
        matches!(err, ImageError::NoImage | ImageError::TooManyDescriptors(_)),
        "{err}"
    );
}

/// Descriptors whose digest could name another path, or whose size is out of range, are
/// refused when the document is read.
#[test]
fn descriptors_are_digests_and_sizes_in_range() {
    let bad = [
        r#"{"digest":"sha256:../../x","size":1}"#.to_string(),
        format!(
            r#"{{"digest":"sha256:{}","size":18446744073709551615}}"#,
            "a".repeat(64)
        ),
        format!(r#"{{"digest":"sha512:{}","size":1}}"#, "a".repeat(128)),
        format!(r#"{{"digest":"sha256:{}","size":1}}"#, "A".repeat(64)),
    ];
    for descriptor in bad {
        let doc = format!(r#"{{"schemaVersion":2,"manifests":[{descriptor}]}}"#);
        assert!(
            crate::oci::Document::parse(doc.as_bytes()).is_err(),
            "{descriptor}"
        );
        let tar = tar_of(&[("index.json".into(), doc.clone().into_bytes())]);
        let err = check_tar(&tar, "0123456789ab").unwrap();
        assert!(err.contains("index.json"), "{err}");
    }
}

/// Many large JSON members: refused once they pass the bound, never all kept.
#[test]
fn json_kept_from_an_archive_is_bounded() {
    let doc = {
        let mut d = b"{\"a\":\"".to_vec();
        d.extend(std::iter::repeat_n(b'x', (1 << 20) - 10));
        d.extend(b"\"}");
        d
    };
    let files: Vec<(String, Vec<u8>)> = (0..40)
        .map(|i| (format!("doc{i}.json"), doc.clone()))
        .collect();
    let tar = tar_of(&files);
    let err = TarIndex::read(&mut tar.as_slice(), Reading::Documents).unwrap_err();
    assert!(matches!(err, ImageError::TooMuchJson { .. }), "{err}");
    let err = TarIndex::read(&mut tar.as_slice(), Reading::Hashed).unwrap_err();
    assert!(matches!(err, ImageError::TooMuchJson { .. }), "{err}");
}

/// Many images of `manifest.json` naming one config share one parsed copy of it.
#[test]
fn one_config_named_many_times_is_parsed_once() {
    let (tar, _) = classic_tar(&[b"layer"], false);
    let mut files = files_of(&tar);
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let entry = manifest[0].clone();
    files.insert(
        "manifest.json".into(),
        serde_json::to_vec(&vec![entry; 100]).unwrap(),
    );
    let tar = tar_of(&files.into_iter().collect::<Vec<_>>());
    let images = hashed(&tar).unwrap().images().unwrap();
    assert_eq!(images.len(), 100);
    assert!(
        images
            .iter()
            .all(|i| std::sync::Arc::ptr_eq(&i.config, &images[0].config))
    );
}

/// A layer holding what `extract` (and an engine) refuses is damage for `verify` too: an entry
/// that climbs out with `..`, a hard link out, a whiteout of `..`; gzip-compressed or not.
#[test]
fn verify_refuses_layers_extract_refuses() {
    let entry = |name: &str, link: Option<&str>| {
        let mut builder = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o644);
        match link {
            Some(target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.as_gnu_mut().unwrap().linkname[..target.len()].copy_from_slice(target.as_bytes());
            }
            None => h.set_entry_type(tar::EntryType::Regular),
        }
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        builder.append(&h, &b""[..]).unwrap();
        builder.into_inner().unwrap()
    };
    let cases = [
        (entry("a/../../escape", None), "climbs out"),
        (entry("h", Some("../../etc/passwd")), "hard link"),
        (entry("a/.wh..", None), "whiteout"),
    ];
    for (layer, said) in &cases {
        for gzip in [false, true] {
            let (tar, id) = classic_tar(&[layer], gzip);
            let err = check_tar(&tar, &id[7..19]).unwrap();
            assert!(err.contains(said), "{said} (gzip {gzip}): {err}");
        }
    }
    // A sound layer with `..` that stays inside passes.
    let (tar, id) = classic_tar(&[&entry("a/../b", None)], false);
    assert_eq!(check_tar(&tar, &id[7..19]), None);
}
