//! Fuzz target: mutated archives through the real binary's readers.
//!
//! Valid archives of every format (`.docker`, `.zip`, `.zst`) and layout (the classic `docker
//! save` layout; the OCI layout of Docker 25 and later, flat or with a nested index, layers
//! plain or gzip-compressed) are made here (`tests/common/images.rs`), then damaged: bytes
//! flipped, cut, inserted or repeated; tar members duplicated, dropped, renamed out of the
//! archive, turned into links, given sizes they do not have; JSON documents given huge sizes,
//! bad digests, wrong types, deep nesting, indexes that name themselves or each other or fan out;
//! layers given entries that climb out of the directory. Each input goes through `verify`,
//! `inspect` (text and JSON), `images --check`, `images --created`, `latest`, `extract` into a
//! fresh folder, and `compress` or `decompress` of a copy, each with a time limit and a memory
//! limit (`RLIMIT_AS`). None may panic, die of a signal, run out of time or memory, or write
//! outside its scratch folders.
//!
//! `TOOLBOX_FUZZ_CASES` (default 12) random cases from `TOOLBOX_FUZZ_SEED` (default 1) run
//! after the hand-made hostile ones; `TOOLBOX_FUZZ_ONLY=N` runs case N alone;
//! `TOOLBOX_FUZZ_TIMEOUT_S` (default 10; the inputs are small, every reader ends in
//! milliseconds) and `TOOLBOX_FUZZ_MEMORY_MB` (default 1024) are the limits (once a command of
//! an input ran out of time, the others of that input get 2 s). `just fuzz` runs many. A failing input is kept under `target/fuzz-failures/`, with a
//! note of what was done to it and what went wrong, and its path printed;
//! `TOOLBOX_FUZZ_KEEP_ALL=1` keeps every input under `target/fuzz-inputs/`, with how each
//! command ended.

mod common;

use std::fs;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::images::{Layout, blob, image_archive, sample_layers, sha256};

/// A small, seedable generator (SplitMix64): the same seed gives the same cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    /// Up to `max` random bytes.
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The archive formats.
const FORMATS: [&str; 3] = ["docker", "zip", "zst"];

/// The layouts made.
const LAYOUTS: [Layout; 4] = [
    Layout::Classic,
    Layout::Oci {
        nested: false,
        gzip: false,
    },
    Layout::Oci {
        nested: true,
        gzip: false,
    },
    Layout::Oci {
        nested: true,
        gzip: true,
    },
];

/// A name that marks a file written where nothing may be written: the checks look for it
/// outside the scratch folders.
const MARKER: &str = "toolbox-fuzz-escaped";

/// One tar member, as written raw: its header fields and its data (the declared size may
/// differ from the data's length).
#[derive(Debug, Clone)]
struct Member {
    name: Vec<u8>,
    kind: tar::EntryType,
    link: Vec<u8>,
    data: Vec<u8>,
    /// The size the header declares, when not the data's length.
    declared: Option<u64>,
}

impl Member {
    fn file(name: &str, data: Vec<u8>) -> Member {
        Member {
            name: name.as_bytes().to_vec(),
            kind: tar::EntryType::Regular,
            link: Vec::new(),
            data,
            declared: None,
        }
    }

    fn name(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// Writes `members` as a tar, raw: names of up to 100 bytes in the header, longer ones with a
/// GNU long-name entry; sizes as declared; the data as it is, padded to a block.
fn raw_tar(members: &[Member]) -> Vec<u8> {
    fn header(name: &[u8], kind: tar::EntryType, link: &[u8], size: u64) -> Vec<u8> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        h.set_mtime(1_700_000_000);
        h.set_size(size);
        let gnu = h.as_gnu_mut().unwrap();
        let n = name.len().min(100);
        gnu.name[..n].copy_from_slice(&name[..n]);
        let l = link.len().min(100);
        gnu.linkname[..l].copy_from_slice(&link[..l]);
        h.set_cksum();
        h.as_bytes().to_vec()
    }
    fn pad(out: &mut Vec<u8>) {
        let rem = out.len() % 512;
        if rem != 0 {
            out.resize(out.len() + 512 - rem, 0);
        }
    }
    let mut out = Vec::new();
    for m in members {
        if m.name.len() > 100 {
            let mut long = m.name.clone();
            long.push(0);
            out.extend(header(
                b"././@LongLink",
                tar::EntryType::GNULongName,
                b"",
                long.len() as u64,
            ));
            out.extend(&long);
            pad(&mut out);
        }
        let size = m.declared.unwrap_or(m.data.len() as u64);
        out.extend(header(&m.name, m.kind, &m.link, size));
        out.extend(&m.data);
        pad(&mut out);
    }
    out.extend([0u8; 1024]);
    out
}

/// The archive's name: `fuzz_1.0_<12 hex of the digest>.<format>` (the config's digest, or
/// the manifest's or index's that `index.json` names, as a containerd store names archives).
fn archive_name(digest: &str, format: &str) -> String {
    format!("fuzz_1.0_{}.{format}", &digest[7..19])
}

/// The `.zip` or `.zst` of a tar, as toolbox writes them (a ZIP of one deflated entry named
/// after the archive; zstd frames with a checksum), made with the zip and zstd crates.
fn container(tar: &[u8], format: &str, name: &str) -> Vec<u8> {
    match format {
        "docker" => tar.to_vec(),
        "zip" => {
            use std::io::Write;
            let entry = name.replace(".zip", ".docker");
            let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            w.start_file(entry, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(tar).unwrap();
            w.finish().unwrap().into_inner()
        }
        "zst" => {
            let mut e = zstd::Encoder::new(Vec::new(), 3).unwrap();
            e.include_checksum(true).unwrap();
            std::io::Write::write_all(&mut e, tar).unwrap();
            e.finish().unwrap()
        }
        other => panic!("no format {other}"),
    }
}

/// One input: its file name, its bytes, and what was done to make it.
struct Input {
    name: String,
    bytes: Vec<u8>,
    story: Vec<String>,
}

/// A valid image's members (raw); its config digest; for an OCI layout, the digest of what
/// `index.json` names (the nested index, else the manifest).
fn base_members(layout: Layout, layers: &[Vec<u8>]) -> (Vec<Member>, String, Option<String>) {
    let made = image_archive(layout, "fuzz:1.0", "2026-01-02T03:04:05Z", layers);
    let top = made.index_digest.clone().or(made.manifest_digest.clone());
    let members = made
        .members
        .into_iter()
        .map(|(name, data)| Member::file(&name, data))
        .collect();
    (members, made.config_digest, top)
}

/// Drops `manifest.json` (an OCI layout read through `index.json` alone).
fn without_manifest_json(members: &mut Vec<Member>) {
    members.retain(|m| m.name() != "manifest.json");
}

/// Whether a member holds a JSON document.
fn is_json(m: &Member) -> bool {
    let name = m.name();
    name.ends_with(".json") || (name.starts_with("blobs/") && m.data.first() == Some(&b'{'))
}

/// Layers with entries that try to get out of the extraction folder, or that cannot be made:
/// climbing names, absolute names, links out, link loops, devices, whiteouts of odd names,
/// sizes the data does not have.
fn hostile_layer(rng: &mut Rng) -> Vec<u8> {
    let marker = MARKER;
    let choices: Vec<Vec<Member>> = vec![
        vec![Member::file(&format!("../{marker}"), b"out".to_vec())],
        vec![Member::file(&format!("../../../{marker}"), b"out".to_vec())],
        vec![Member::file(&format!("/{marker}"), b"abs".to_vec())],
        vec![Member::file(&format!("/tmp/{marker}"), b"abs".to_vec())],
        vec![Member::file(&format!("a/../../{marker}"), b"out".to_vec())],
        vec![
            Member {
                kind: tar::EntryType::Symlink,
                link: b"/".to_vec(),
                ..Member::file("root", Vec::new())
            },
            Member::file(&format!("root/tmp/{marker}"), b"through".to_vec()),
        ],
        vec![
            Member {
                kind: tar::EntryType::Symlink,
                link: b"../..".to_vec(),
                ..Member::file("up", Vec::new())
            },
            Member::file(&format!("up/{marker}"), b"through".to_vec()),
        ],
        vec![
            Member {
                kind: tar::EntryType::Symlink,
                link: b"b".to_vec(),
                ..Member::file("a", Vec::new())
            },
            Member {
                kind: tar::EntryType::Symlink,
                link: b"a".to_vec(),
                ..Member::file("b", Vec::new())
            },
            Member::file("a/x", b"loop".to_vec()),
        ],
        vec![Member {
            kind: tar::EntryType::Link,
            link: format!("../../{marker}").into_bytes(),
            ..Member::file("hard", Vec::new())
        }],
        vec![Member {
            kind: tar::EntryType::Link,
            link: b"/etc/passwd".to_vec(),
            ..Member::file("passwd", Vec::new())
        }],
        vec![
            Member {
                kind: tar::EntryType::Symlink,
                link: b"/etc".to_vec(),
                ..Member::file("etc-link", Vec::new())
            },
            Member {
                kind: tar::EntryType::Link,
                link: b"etc-link/passwd".to_vec(),
                ..Member::file("passwd2", Vec::new())
            },
        ],
        vec![Member {
            kind: tar::EntryType::Char,
            ..Member::file("dev-null", Vec::new())
        }],
        vec![Member {
            kind: tar::EntryType::Fifo,
            ..Member::file("fifo", Vec::new())
        }],
        vec![Member::file(".wh...", Vec::new())],
        vec![Member::file(".wh..wh..opq", Vec::new())],
        vec![Member::file("srv/.wh...", Vec::new())],
        vec![Member::file(
            &format!("{}/deep", "d/".repeat(300)),
            b"deep".to_vec(),
        )],
        vec![Member {
            declared: Some(1 << 40),
            ..Member::file("huge", b"short".to_vec())
        }],
        vec![Member::file(".", b"dot".to_vec())],
        vec![Member::file("", b"empty name".to_vec())],
    ];
    let mut members = vec![Member::file("srv/ok.txt", b"fine".to_vec())];
    for _ in 0..=rng.below(2) {
        members.extend(rng.pick(&choices).clone());
    }
    raw_tar(&members)
}

/// Replaces one value of `doc` (chosen by `rng`) with something hostile; returns what.
fn mutate_json(doc: &mut serde_json::Value, rng: &mut Rng, self_digest: Option<&str>) -> String {
    // Every value's path in the document.
    fn paths(v: &serde_json::Value, at: Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(at.clone());
        match v {
            serde_json::Value::Object(map) => {
                for (k, x) in map {
                    let mut p = at.clone();
                    p.push(k.clone());
                    paths(x, p, out);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, x) in items.iter().enumerate() {
                    let mut p = at.clone();
                    p.push(i.to_string());
                    paths(x, p, out);
                }
            }
            _ => {}
        }
    }
    let mut all = Vec::new();
    paths(doc, Vec::new(), &mut all);
    // Prefer the fields readers trust: sizes and digests.
    let preferred: Vec<&Vec<String>> = all
        .iter()
        .filter(|p| {
            p.last().is_some_and(|k| {
                [
                    "size",
                    "digest",
                    "Config",
                    "Layers",
                    "manifests",
                    "diff_ids",
                ]
                .contains(&k.as_str())
            })
        })
        .collect();
    let path = if !preferred.is_empty() && rng.chance(2) {
        (*rng.pick(&preferred)).clone()
    } else {
        rng.pick(&all).clone()
    };
    let mut deep = serde_json::Value::Null;
    for _ in 0..5000 {
        deep = serde_json::Value::Array(vec![deep]);
    }
    let replacements: Vec<(serde_json::Value, &str)> = vec![
        (serde_json::json!(u64::MAX), "u64::MAX"),
        (serde_json::json!(1u64 << 62), "2^62"),
        (serde_json::json!(1e300), "1e300"),
        (serde_json::json!(-1), "-1"),
        (serde_json::json!(0), "0"),
        (serde_json::json!(""), "an empty string"),
        (
            serde_json::json!(format!("sha256:{}", "0".repeat(64))),
            "a digest of nothing",
        ),
        (serde_json::json!("sha256:abc"), "a short digest"),
        (
            serde_json::json!("sha256:../../../../etc/passwd"),
            "a digest that climbs",
        ),
        (serde_json::json!(format!("md5:{}", "a".repeat(32))), "md5"),
        (serde_json::json!("../manifest.json"), "a path that climbs"),
        (serde_json::json!("/etc/passwd"), "an absolute path"),
        (serde_json::json!("manifest.json"), "manifest.json itself"),
        (serde_json::json!(null), "null"),
        (serde_json::json!([]), "[]"),
        (serde_json::json!({}), "{}"),
        (serde_json::json!("x".repeat(1 << 20)), "a 1 MiB string"),
        (deep, "5000 nested arrays"),
    ];
    let (value, what) = match self_digest {
        Some(own) if rng.chance(3) => (serde_json::json!(own), "its own digest"),
        _ => {
            let (v, w) = rng.pick(&replacements);
            (v.clone(), *w)
        }
    };
    let mut target = doc;
    for key in &path {
        target = match target {
            serde_json::Value::Object(map) => map.get_mut(key).unwrap(),
            serde_json::Value::Array(items) => &mut items[key.parse::<usize>().unwrap()],
            _ => unreachable!(),
        };
    }
    *target = value;
    format!("/{} = {what}", path.join("/"))
}

/// A random input: a valid archive of a random format and layout, with one to three
/// mutations at the layer, member, JSON or byte level.
fn random_input(rng: &mut Rng) -> Input {
    let format = *rng.pick(&FORMATS);
    let layout = *rng.pick(&LAYOUTS);
    let mut story = vec![format!("{format}, {layout:?}")];
    let mut layers = sample_layers("fuzz");
    if rng.chance(4) {
        let i = rng.below(layers.len() + 1);
        layers.insert(i, hostile_layer(rng));
        story.push(format!("a hostile layer at {i}"));
    }
    let (mut members, config, top) = base_members(layout, &layers);
    let mut id = config;
    if let Some(top) = top {
        if rng.chance(3) {
            without_manifest_json(&mut members);
            story.push("no manifest.json".to_string());
        }
        if rng.chance(2) {
            id = top;
            story.push("named by index.json's digest".to_string());
        }
    }
    let mut byte_level = Vec::new();
    for _ in 0..=rng.below(3) {
        let n = members.len();
        match rng.below(12) {
            0 => {
                let i = rng.below(n);
                let copy = members[i].clone();
                let at = rng.below(n + 1);
                story.push(format!("{} repeated at {at}", copy.name()));
                members.insert(at, copy);
            }
            1 => {
                let i = rng.below(n);
                let mut copy = members[i].clone();
                copy.data = rng.bytes(600);
                story.push(format!("{} repeated with other contents", copy.name()));
                members.push(copy);
            }
            2 => {
                let gone = members.remove(rng.below(n));
                story.push(format!("{} removed", gone.name()));
            }
            3 => {
                let i = rng.below(n);
                let to = rng
                    .pick(&[
                        format!("../{MARKER}"),
                        format!("/{MARKER}"),
                        format!("a/../../{MARKER}"),
                        "./manifest.json".to_string(),
                        "manifest.json".to_string(),
                        "index.json".to_string(),
                        "blobs/sha256/".to_string(),
                        "x".repeat(300),
                    ])
                    .clone();
                story.push(format!("{} renamed {to}", members[i].name()));
                members[i].name = to.into_bytes();
            }
            4 => {
                let i = rng.below(n);
                let (kind, link) = *rng.pick(&[
                    (tar::EntryType::Symlink, "manifest.json"),
                    (tar::EntryType::Symlink, "/etc/passwd"),
                    (tar::EntryType::Symlink, "../../../etc/passwd"),
                    (tar::EntryType::Link, "index.json"),
                    (tar::EntryType::Link, "../x"),
                    (tar::EntryType::Directory, ""),
                ]);
                let name = members[i].name();
                story.push(format!("{name} made a {kind:?} to {link}"));
                // A link to itself, sometimes.
                let link = if rng.chance(4) {
                    name
                } else {
                    link.to_string()
                };
                members[i].kind = kind;
                members[i].link = link.into_bytes();
                members[i].data.clear();
            }
            5 => {
                let i = rng.below(n);
                let declared = *rng.pick(&[1u64 << 33, 1 << 40, 8_589_934_591, 0]);
                story.push(format!(
                    "{} declares {declared} bytes (holds {})",
                    members[i].name(),
                    members[i].data.len()
                ));
                members[i].declared = Some(declared);
            }
            6 => {
                let i = rng.below(n);
                let data = if rng.chance(2) {
                    Vec::new()
                } else {
                    rng.bytes(2000)
                };
                story.push(format!(
                    "{} replaced by {} bytes",
                    members[i].name(),
                    data.len()
                ));
                members[i].data = data;
            }
            7 => {
                let at = rng.below(n);
                members.swap(at, rng.below(n));
                story.push("two members swapped".to_string());
            }
            8..=10 => {
                let docs: Vec<usize> = (0..n).filter(|&i| is_json(&members[i])).collect();
                if docs.is_empty() {
                    continue;
                }
                let i = *rng.pick(&docs);
                let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(&members[i].data)
                else {
                    continue;
                };
                let name = members[i].name();
                let own = name
                    .strip_prefix("blobs/sha256/")
                    .map(|hex| format!("sha256:{hex}"));
                let what = mutate_json(&mut doc, rng, own.as_deref());
                story.push(format!("{name}: {what}"));
                members[i].data = serde_json::to_vec(&doc).unwrap();
            }
            _ => byte_level.push(rng.below(5)),
        }
    }
    let tar = raw_tar(&members);
    let name = archive_name(&id, format);
    let mut bytes = container(&tar, format, &name);
    for kind in byte_level {
        let len = bytes.len();
        if len == 0 {
            continue;
        }
        match kind {
            0 => {
                for _ in 0..=rng.below(8) {
                    let at = rng.below(len);
                    bytes[at] ^= 1 + rng.below(255) as u8;
                }
                story.push("bytes flipped".to_string());
            }
            1 => {
                let at = rng.below(len + 1);
                bytes.truncate(at);
                story.push(format!("cut at {at} of {len}"));
            }
            2 => {
                let at = rng.below(len + 1);
                let mut extra = rng.bytes(3000);
                extra.push(rng.next() as u8);
                story.push(format!("{} bytes inserted at {at}", extra.len()));
                bytes.splice(at..at, extra);
            }
            3 => {
                let from = rng.below(len);
                let to = (from + 1 + rng.below(4096)).min(len);
                let chunk = bytes[from..to].to_vec();
                let at = rng.below(len + 1);
                story.push(format!("bytes {from}..{to} repeated at {at}"));
                bytes.splice(at..at, chunk);
            }
            _ => {
                let from = rng.below(len);
                let to = (from + 1 + rng.below(4096)).min(len);
                bytes[from..to].fill(0);
                story.push(format!("bytes {from}..{to} zeroed"));
            }
        }
    }
    Input { name, bytes, story }
}

/// The hand-made hostile inputs, each in every format: indexes that name themselves, each
/// other, or fan out into many paths; sizes no reader may believe; a ZIP of two entries; zstd
/// frames after the end.
fn hostile_inputs() -> Vec<Input> {
    let mut out = Vec::new();
    let layers = sample_layers("hostile");
    let oci = Layout::Oci {
        nested: false,
        gzip: false,
    };
    let made = image_archive(oci, "fuzz:1.0", "2026-01-02T03:04:05Z", &layers);
    let manifest_digest = made.manifest_digest.clone().unwrap();
    let members = |extra: Vec<(String, Vec<u8>)>, index: serde_json::Value| -> Vec<Member> {
        let mut all: Vec<Member> = made
            .members
            .iter()
            .filter(|(n, _)| n != "index.json")
            .map(|(n, d)| Member::file(n, d.clone()))
            .collect();
        all.extend(extra.into_iter().map(|(n, d)| Member::file(&n, d)));
        all.push(Member::file(
            "index.json",
            serde_json::to_vec(&index).unwrap(),
        ));
        all
    };
    let index_of = |entries: Vec<serde_json::Value>| {
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries,
        })
    };
    let entry = |digest: &str, size: usize, kind: &str| {
        serde_json::json!({
            "mediaType": format!("application/vnd.oci.image.{kind}.v1+json"),
            "digest": digest,
            "size": size,
            "platform": {"architecture": "amd64", "os": "linux"},
        })
    };
    let manifest_size = made
        .members
        .iter()
        .find(|(n, _)| *n == blob(&manifest_digest))
        .unwrap()
        .1
        .len();
    // What each case is, its members, and the digest index.json names first.
    let mut cases: Vec<(String, Vec<Member>, String)> = Vec::new();

    // An index blob that names itself (its name is not its digest: no fixed point exists).
    let own = sha256(b"an index that names itself");
    let selfish = serde_json::to_vec(&index_of(vec![
        entry(&own, 300, "index"),
        entry(&manifest_digest, manifest_size, "manifest"),
    ]))
    .unwrap();
    cases.push((
        "an index blob that names itself".into(),
        members(
            vec![(blob(&own), selfish.clone())],
            index_of(vec![entry(&own, selfish.len(), "index")]),
        ),
        own.clone(),
    ));
    // Two index blobs that name each other.
    let (a, b) = (sha256(b"index a"), sha256(b"index b"));
    let doc_a = serde_json::to_vec(&index_of(vec![entry(&b, 300, "index")])).unwrap();
    let doc_b = serde_json::to_vec(&index_of(vec![
        entry(&a, doc_a.len(), "index"),
        entry(&manifest_digest, manifest_size, "manifest"),
    ]))
    .unwrap();
    cases.push((
        "two index blobs that name each other".into(),
        members(
            vec![(blob(&a), doc_a.clone()), (blob(&b), doc_b)],
            index_of(vec![entry(&a, doc_a.len(), "index")]),
        ),
        a.clone(),
    ));
    // A chain of 300 genuine nested indexes (every digest right).
    let mut chain = Vec::new();
    let mut below = entry(&manifest_digest, manifest_size, "manifest");
    for _ in 0..300 {
        let doc = serde_json::to_vec(&index_of(vec![below])).unwrap();
        let digest = sha256(&doc);
        below = entry(&digest, doc.len(), "index");
        chain.push((blob(&digest), doc));
    }
    let top = below["digest"].as_str().unwrap().to_string();
    cases.push((
        "300 genuine nested indexes".into(),
        members(chain, index_of(vec![below])),
        top,
    ));
    // A genuine index DAG: each level names the one below twice, 40 levels: 2^40 paths to the
    // one manifest for a reader that walks every path.
    let mut dag = Vec::new();
    let mut below = entry(&manifest_digest, manifest_size, "manifest");
    for level in 0..40 {
        let mut twin = below.clone();
        twin["annotations"] = serde_json::json!({"level": level.to_string()});
        let doc = serde_json::to_vec(&index_of(vec![below, twin])).unwrap();
        let digest = sha256(&doc);
        below = entry(&digest, doc.len(), "index");
        dag.push((blob(&digest), doc));
    }
    let top = below["digest"].as_str().unwrap().to_string();
    cases.push((
        "40 levels of indexes, each naming the next twice".into(),
        members(dag, index_of(vec![below])),
        top,
    ));
    // An index blob that names itself four times: 4^depth paths for a walker that does not
    // remember where it has been, and none leads to the config.
    let own = sha256(b"an index that names itself four times");
    let fan = serde_json::to_vec(&index_of(
        (0..4).map(|_| entry(&own, 300, "index")).collect(),
    ))
    .unwrap();
    cases.push((
        "an index blob that names itself four times".into(),
        members(
            vec![(blob(&own), fan.clone())],
            index_of(vec![entry(&own, fan.len(), "index")]),
        ),
        own.clone(),
    ));
    // Genuine indexes, 15 levels, each naming the next four times, down to an empty index:
    // 4^15 paths, none to the config.
    let empty = serde_json::to_vec(&index_of(Vec::new())).unwrap();
    let mut below = entry(&sha256(&empty), empty.len(), "index");
    let mut fanned = vec![(blob(&sha256(&empty)), empty.clone())];
    for level in 0..15 {
        let entries = (0..4)
            .map(|i| {
                let mut e = below.clone();
                e["annotations"] = serde_json::json!({"level": format!("{level}.{i}")});
                e
            })
            .collect();
        let doc = serde_json::to_vec(&index_of(entries)).unwrap();
        let digest = sha256(&doc);
        below = entry(&digest, doc.len(), "index");
        fanned.push((blob(&digest), doc));
    }
    let top = below["digest"].as_str().unwrap().to_string();
    cases.push((
        "15 levels of indexes, each naming the next four times, to an empty index".into(),
        members(fanned, index_of(vec![below])),
        top,
    ));
    // Two genuine indexes of 20,000 entries, the first naming the second, the second an empty
    // index: 4 * 10^8 documents for a walker that parses each child where it meets it.
    let wide_of = |child: &serde_json::Value| {
        serde_json::to_vec(&index_of((0..20_000).map(|_| child.clone()).collect())).unwrap()
    };
    let inner = wide_of(&entry(&sha256(&empty), empty.len(), "index"));
    let inner_digest = sha256(&inner);
    let outer = wide_of(&entry(&inner_digest, inner.len(), "index"));
    let outer_digest = sha256(&outer);
    cases.push((
        "an index of 20,000 entries naming one of 20,000 naming an empty one".into(),
        members(
            vec![
                (blob(&sha256(&empty)), empty.clone()),
                (blob(&inner_digest), inner),
                (blob(&outer_digest), outer.clone()),
            ],
            index_of(vec![entry(&outer_digest, outer.len(), "index")]),
        ),
        outer_digest.clone(),
    ));
    // A genuine index of 50,000 entries, all the manifest (more than the 4 MiB of a document
    // kept in memory).
    let wide = serde_json::to_vec(&index_of(
        (0..50_000)
            .map(|_| entry(&manifest_digest, manifest_size, "manifest"))
            .collect(),
    ))
    .unwrap();
    let wide_digest = sha256(&wide);
    cases.push((
        "an index of 50,000 entries".into(),
        members(
            vec![(blob(&wide_digest), wide.clone())],
            index_of(vec![entry(&wide_digest, wide.len(), "index")]),
        ),
        wide_digest.clone(),
    ));
    // Sizes no reader may believe, on the manifest and on the config.
    for size in [u64::MAX, 1 << 62, 1 << 40] {
        cases.push((
            format!("the manifest's descriptor says {size} bytes"),
            members(
                Vec::new(),
                index_of(vec![serde_json::json!({
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": manifest_digest, "size": size,
                })]),
            ),
            manifest_digest.clone(),
        ));
    }
    // A tar member (manifest.json) that says it is 8 GiB.
    let mut huge = members(
        Vec::new(),
        index_of(vec![entry(&manifest_digest, manifest_size, "manifest")]),
    );
    for m in &mut huge {
        if m.name() == "manifest.json" {
            m.declared = Some(8 << 30);
        }
    }
    let config = made.config_digest.clone();
    cases.push(("manifest.json declares 8 GiB".into(), huge, config.clone()));

    // Each as it is (named by its config) and, but for the lying tar header, without
    // manifest.json and named by what index.json names: then only the index leads to the image.
    for (what, members, top) in cases {
        let mut variants = vec![(members.clone(), config.clone(), "")];
        if !what.contains("8 GiB") {
            let mut alone = members;
            without_manifest_json(&mut alone);
            variants.push((alone, top, ", index.json alone, named by what it names"));
        }
        for (members, id, how) in variants {
            for format in FORMATS {
                let name = archive_name(&id, format);
                out.push(Input {
                    bytes: container(&raw_tar(&members), format, &name),
                    name,
                    story: vec![format!("{format}: {what}{how}")],
                });
            }
        }
    }
    // Containers: a ZIP of the tar twice (two entries), a zstd file with a second frame of
    // other data and a skippable frame after it.
    let tar = made.tar();
    let name = archive_name(&config, "zip");
    {
        use std::io::Write;
        let entry = name.replace(".zip", ".docker");
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for entry in [entry.clone(), format!("{entry}.again")] {
            w.start_file(entry, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(&tar).unwrap();
        }
        out.push(Input {
            bytes: w.finish().unwrap().into_inner(),
            name: name.clone(),
            story: vec!["zip: two entries".into()],
        });
    }
    let name = archive_name(&config, "zst");
    let mut bytes = container(&tar, "zst", &name);
    bytes.extend(container(b"more after the tar", "zst", &name));
    bytes.extend([0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4]);
    out.push(Input {
        bytes,
        name,
        story: vec!["zst: a second frame and a skippable frame".into()],
    });
    out
}

/// What went wrong with one command on one input.
#[derive(Debug)]
struct Failure {
    command: String,
    what: String,
    stderr: String,
}

/// The limits each command runs under.
struct Limits {
    time: Duration,
    memory: u64,
}

impl Limits {
    fn from_env() -> Limits {
        let var = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        Limits {
            time: Duration::from_secs(var("TOOLBOX_FUZZ_TIMEOUT_S", 10)),
            memory: var("TOOLBOX_FUZZ_MEMORY_MB", 1024) << 20,
        }
    }
}

/// Runs `toolbox args` in `dir` under the limits; returns how it ended (`exit N` and its
/// stderr's last line), or what went wrong and its stderr.
fn run(
    s: &common::Scratch,
    dir: &Path,
    args: &[&str],
    limits: &Limits,
    time: Duration,
) -> Result<String, (String, String)> {
    let mut cmd = s.toolbox_std();
    cmd.current_dir(dir)
        .args(args)
        // Fewer malloc arenas: the address-space limit then measures use, not reservations.
        .env("MALLOC_ARENA_MAX", "2")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let memory = limits.memory;
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: memory,
                rlim_max: memory,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("toolbox starts");
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut text);
        String::from_utf8_lossy(&text).into_owned()
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > time {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let stderr = reader.join().unwrap_or_default();
    let what = match status {
        None => format!("still running after {time:?}: killed"),
        Some(status) => match (status.code(), status.signal()) {
            _ if stderr.contains("memory allocation of") => format!(
                "out of memory under a {} MiB address-space limit ({status})",
                limits.memory >> 20
            ),
            _ if stderr.contains("panicked") => format!("panicked ({status})"),
            (Some(101), _) => "exit 101 (a panic)".to_string(),
            (Some(code @ (0 | 1)), _) => {
                let last = stderr.lines().last().unwrap_or_default();
                return Ok(format!("exit {code}: {last}"));
            }
            (Some(code), _) => format!("unexpected exit code {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => format!("ended oddly: {status}"),
        },
    };
    Err((what, stderr))
}

/// Every path below `root`, relative, sorted (links not followed).
fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            out.push(
                path.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Places outside the scratch folders where an escaped write would land.
fn escape_targets(case_dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![
        PathBuf::from("/"),
        PathBuf::from("/tmp"),
        PathBuf::from("/etc"),
        std::env::temp_dir(),
    ];
    let mut up = case_dir.to_path_buf();
    while up.pop() {
        dirs.push(up.clone());
    }
    dirs.into_iter().map(|d| d.join(MARKER)).collect()
}

/// Runs every reader on `input`; returns the failures, and how each command ended.
fn check_input(input: &Input, limits: &Limits) -> (Vec<Failure>, Vec<String>) {
    let s = common::Scratch::new();
    let case = s.path();
    let archive = s.write(&input.name, &input.bytes, 0);
    let rel = format!("artifacts/{}", input.name);
    let copy_dir = case.join("copy");
    fs::create_dir(&copy_dir).unwrap();
    let copy = copy_dir.join(&input.name);
    fs::copy(&archive, &copy).unwrap();
    let convert = if input.name.ends_with(".docker") {
        "compress"
    } else {
        "decompress"
    };
    let copy_arg = copy.to_string_lossy().into_owned();
    let commands: Vec<Vec<&str>> = vec![
        vec!["verify", &rel],
        vec!["inspect", &rel],
        vec!["inspect", &rel, "--json"],
        vec!["images", "--check"],
        vec!["images", "--created", "--json"],
        vec!["latest"],
        vec!["extract", &rel, "out"],
        vec![convert, &copy_arg, "--basedir", "copy"],
    ];
    let mut failures = Vec::new();
    let mut ended = Vec::new();
    let mut before = tree(case);
    // Once one command ran out of time, the others get a short limit: the input is known to
    // hang a reader, and each of them takes milliseconds when it works.
    let mut time = limits.time;
    for args in &commands {
        let command = args.join(" ");
        let outcome = run(&s, case, args, limits, time);
        let killed = outcome.is_err();
        match outcome {
            Ok(how) => ended.push(format!("toolbox {command}: {how}")),
            Err((what, stderr)) => {
                if what.starts_with("still running") {
                    time = time.min(Duration::from_secs(2));
                }
                ended.push(format!("toolbox {command}: {what}"));
                failures.push(Failure {
                    command: command.clone(),
                    what,
                    stderr,
                });
            }
        }
        // Nothing written outside the artifacts folder, the copy's folder and `out`.
        let allowed = |p: &String| {
            before.contains(p)
                || ["artifacts/", "copy/", "out"]
                    .iter()
                    .any(|dir| p.starts_with(dir))
        };
        let mut strays: Vec<String> = tree(case).into_iter().filter(|p| !allowed(p)).collect();
        if killed {
            // A run killed (by the time limit, or aborted) cannot remove its hidden temporary
            // tar beside `out`; that failure is already counted.
            strays.retain(|p| {
                let temporary = p.starts_with(".toolbox-extract.");
                if temporary {
                    let _ = fs::remove_file(case.join(p));
                }
                !temporary
            });
        }
        let escaped: Vec<PathBuf> = escape_targets(case)
            .into_iter()
            .filter(|p| p.symlink_metadata().is_ok())
            .collect();
        if !strays.is_empty() || !escaped.is_empty() {
            for p in &escaped {
                let _ = fs::remove_file(p);
            }
            // Reported once.
            before.extend(strays.iter().cloned());
            failures.push(Failure {
                command,
                what: format!("wrote outside its folders: {strays:?} {escaped:?}"),
                stderr: String::new(),
            });
        }
        // `out` is made afresh for extract only.
        let _ = fs::remove_dir_all(case.join("out"));
    }
    (failures, ended)
}

/// Keeps an input under `target/<kind>/<label>/` with a note of how it was made and what
/// went wrong; returns its path.
fn keep(kind: &str, label: &str, input: &Input, failures: &[Failure], ended: &[String]) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(kind)
        .join(label);
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(&input.name);
    fs::write(&path, &input.bytes).unwrap();
    let mut note = format!(
        "input: {}\nmade: {}\n\n",
        path.display(),
        input.story.join("; ")
    );
    for line in ended {
        note.push_str(&format!("{line}\n"));
    }
    for f in failures {
        note.push_str(&format!(
            "\ntoolbox {}: {}\n{}\n",
            f.command,
            f.what,
            f.stderr.trim_end()
        ));
    }
    fs::write(dir.join("NOTE.txt"), note).unwrap();
    path
}

/// Runs `inputs` (labelled), and fails listing every input that failed and where it is kept.
fn fuzz(inputs: impl Iterator<Item = (String, Input)>) {
    let limits = Limits::from_env();
    let mut failed = Vec::new();
    let mut count = 0;
    let keep_all = std::env::var_os("TOOLBOX_FUZZ_KEEP_ALL").is_some();
    for (label, input) in inputs {
        count += 1;
        let (failures, ended) = check_input(&input, &limits);
        if keep_all {
            keep("fuzz-inputs", &label, &input, &failures, &ended);
        }
        if !failures.is_empty() {
            let kept = keep("fuzz-failures", &label, &input, &failures, &ended);
            let summary: Vec<String> = failures
                .iter()
                .map(|f| format!("toolbox {}: {}", f.command, f.what))
                .collect();
            eprintln!(
                "FUZZ FAILURE {label} ({}): {}\n  kept: {}",
                input.story.join("; "),
                summary.join("; "),
                kept.display()
            );
            failed.push(format!(
                "{label} ({}): {} [{}]",
                input.story.join("; "),
                summary.join("; "),
                kept.display()
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {count} inputs failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// The generator's archives are valid, in every format and layout: `verify` passes them and
/// `extract` makes the files the layers hold (else the fuzzing would only feed garbage).
#[test]
fn the_generated_archives_are_valid() {
    for layout in LAYOUTS {
        let (members, config, top) = base_members(layout, &sample_layers("valid"));
        let mut variants = vec![(members.clone(), config)];
        if let Some(top) = top {
            let mut alone = members;
            without_manifest_json(&mut alone);
            variants.push((alone, top));
        }
        for ((members, id), format) in variants
            .iter()
            .flat_map(|v| FORMATS.iter().map(move |f| (v, *f)))
        {
            let s = common::Scratch::new();
            let name = archive_name(id, format);
            s.write(&name, &container(&raw_tar(members), format, &name), 0);
            let out = s
                .toolbox()
                .args(["verify", &format!("artifacts/{name}")])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{layout:?} {format}: {}{}",
                common::stdout(&out),
                common::stderr(&out)
            );
            let out = s
                .toolbox()
                .args(["extract", &format!("artifacts/{name}"), "out"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{layout:?} {format}: {}",
                common::stderr(&out)
            );
            let root = s.path().join("out");
            assert_eq!(
                fs::read(root.join("srv/app.txt")).unwrap(),
                b"made for valid\n"
            );
            assert_eq!(fs::read(root.join("etc/motd")).unwrap(), b"hello again\n");
            assert!(!root.join("srv/old.txt").exists(), "the whiteout applied");
        }
    }
}

/// The hand-made hostile archives (see [`hostile_inputs`]).
#[test]
fn hostile_archives_never_crash_hang_or_escape() {
    let inputs = hostile_inputs();
    fuzz(
        inputs
            .into_iter()
            .enumerate()
            .map(|(i, input)| (format!("hostile-{i}"), input)),
    );
}

/// `TOOLBOX_FUZZ_CASES` random mutations of valid archives, from `TOOLBOX_FUZZ_SEED`.
#[test]
fn mutated_archives_never_crash_hang_or_escape() {
    let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let cases = var("TOOLBOX_FUZZ_CASES").unwrap_or(12);
    let seed = var("TOOLBOX_FUZZ_SEED").unwrap_or(1);
    let only = var("TOOLBOX_FUZZ_ONLY");
    // Case N is made from its own seed, so that it can be made again alone.
    let case_seed = move |n: u64| Rng(seed ^ n.wrapping_mul(0xa076_1d64_78bd_642f)).next();
    eprintln!("fuzz: {cases} cases from seed {seed}");
    fuzz(
        (0..cases)
            .filter(move |n| only.is_none_or(|o| o == *n))
            .map(move |n| {
                let mut rng = Rng(case_seed(n));
                (format!("seed{seed}-case{n}"), random_input(&mut rng))
            }),
    );
}
