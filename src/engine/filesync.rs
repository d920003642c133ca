//! The build context offered to BuildKit through the session, as the docker CLI offers it:
//! the `moby.filesync.v1.FileSync/DiffCopy` exchange of the fsutil protocol. This side sends a
//! stat of every entry (in the order BuildKit checks: each folder before what is in it, names
//! in byte order), then the content of each file the builder asks for, then both sides say
//! they are done. Two folders are offered: `context` (what `.dockerignore` leaves) and
//! `dockerfile` (the Dockerfile and its own ignore file).
//!
//! Written here because no crate serves it: the protocol is four packet types over a stream,
//! whose messages the `bollard-buildkit-proto` crate defines.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use bollard_buildkit_proto::fsutil::types::packet::PacketType;
use bollard_buildkit_proto::fsutil::types::{Packet, Stat};
use bollard_buildkit_proto::moby::filesync::packet::file_sync_server::FileSync;
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use crate::ignore::{Ignore, Parent};
use crate::progress::Reporter;

/// The name BuildKit asks for the build context by.
pub(crate) const CONTEXT: &str = "context";
/// The name BuildKit asks for the Dockerfile's folder by.
pub(crate) const DOCKERFILE: &str = "dockerfile";

/// How much of a file one data packet carries.
const CHUNK: usize = 32 * 1024;

/// An entry offered: its path on disk and its slash-separated name in the offered folder.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub disk: PathBuf,
    pub name: String,
    pub dir: bool,
}

/// The folders offered, by name, each as its entries in sending order.
pub(crate) struct FileSyncService {
    pub dirs: HashMap<String, Arc<Vec<Entry>>>,
    /// Counts the file bytes sent.
    pub upload: Arc<dyn Reporter>,
}

type PacketStream = Pin<Box<dyn Stream<Item = Result<Packet, Status>> + Send>>;

#[tonic::async_trait]
impl FileSync for FileSyncService {
    type DiffCopyStream = PacketStream;
    type TarStreamStream = PacketStream;

    async fn diff_copy(
        &self,
        request: Request<Streaming<Packet>>,
    ) -> Result<Response<PacketStream>, Status> {
        let values = |key: &str| metadata_values(request.metadata(), key);
        let dir = values("dir-name").into_iter().next().unwrap_or_default();
        let entries = self
            .dirs
            .get(&dir)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no folder {dir} is offered")))?;
        // Paths to follow count as included, with what their symlinks point at (as fsutil
        // resolves them).
        let mut includes = values("include-patterns");
        for path in values("followpaths") {
            includes.extend(follow(&entries, &path));
        }
        let entries = without_excluded(&entries, &values("exclude-patterns"));
        let entries = Arc::new(included(&entries, &includes));
        let mut incoming = request.into_inner();
        let (tx, mut rx) = mpsc::channel::<Result<Packet, Status>>(16);
        let upload = self.upload.clone();
        tokio::spawn(async move {
            if let Err(status) = serve(&entries, &mut incoming, &tx, upload.as_ref()).await {
                let _ = tx
                    .send(Ok(Packet {
                        r#type: PacketType::PacketErr as i32,
                        data: status.message().as_bytes().to_vec(),
                        ..Packet::default()
                    }))
                    .await;
            }
        });
        let outgoing = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        Ok(Response::new(Box::pin(outgoing)))
    }

    async fn tar_stream(
        &self,
        _request: Request<Streaming<Packet>>,
    ) -> Result<Response<PacketStream>, Status> {
        Err(Status::unimplemented(
            "the context is offered through DiffCopy",
        ))
    }
}

/// A metadata key's values, URL-decoded when BuildKit says it encoded them (`KEY-encoded`).
fn metadata_values(md: &tonic::metadata::MetadataMap, key: &str) -> Vec<String> {
    let encoded = md
        .get(format!("{key}-encoded").as_str())
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| matches!(v, "1" | "true" | "t" | "TRUE" | "True"));
    md.get_all(key)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| {
            if encoded {
                url_decode(v)
            } else {
                v.to_string()
            }
        })
        .collect()
}

/// `path`, and what it points at while it is a symlink among `entries` (a few hops at most).
fn follow(entries: &[Entry], path: &str) -> Vec<String> {
    let mut found = vec![path.trim_start_matches('/').to_string()];
    for _ in 0..8 {
        let Some(last) = found.last().cloned() else {
            break;
        };
        let Some(entry) = entries.iter().find(|e| e.name == last) else {
            break;
        };
        let Ok(target) = std::fs::read_link(&entry.disk) else {
            break;
        };
        let target = target.to_string_lossy().into_owned();
        let joined = match (target.strip_prefix('/'), last.rsplit_once('/')) {
            (Some(absolute), _) => absolute.to_string(),
            (None, Some((dir, _))) => format!("{dir}/{target}"),
            (None, None) => target,
        };
        let cleaned = crate::ignore::clean(&joined);
        if found.contains(&cleaned) {
            break;
        }
        found.push(cleaned);
    }
    found
}

/// `%XX` and `+` decoded, as Go's `url.QueryUnescape`.
fn url_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The entries the builder asked for: all, or those `includes` match, with the folders
/// above them.
fn included(entries: &[Entry], includes: &[String]) -> Vec<Entry> {
    if includes.is_empty() {
        return entries.to_vec();
    }
    let Ok(set) = Ignore::parse(&includes.join("\n"), Path::new("include-patterns")) else {
        return entries.to_vec();
    };
    let wildcard = includes.iter().any(|p| p.contains(['*', '?', '[']));
    entries
        .iter()
        .filter(|e| {
            set.excludes(&e.name, &Parent::default()).0
                || (e.disk.is_dir()
                    && (wildcard
                        || includes.iter().any(|p| {
                            p.trim_start_matches('/')
                                .starts_with(&format!("{}/", e.name))
                        })))
        })
        .cloned()
        .collect()
}

/// The entries the builder's exclude patterns (the `.dockerignore` it read) leave, with the
/// folders above what an exception brings back.
fn without_excluded(entries: &[Entry], excludes: &[String]) -> Vec<Entry> {
    if excludes.is_empty() {
        return entries.to_vec();
    }
    let Ok(set) = Ignore::parse(&excludes.join("\n"), Path::new("exclude-patterns")) else {
        return entries.to_vec();
    };
    let mut parents: HashMap<&str, Parent> = HashMap::new();
    let mut keep = vec![false; entries.len()];
    let mut needed: HashSet<&str> = HashSet::new();
    for (i, entry) in entries.iter().enumerate() {
        let dir = entry.name.rsplit_once('/').map(|(d, _)| d);
        let parent = dir
            .and_then(|d| parents.get(d))
            .cloned()
            .unwrap_or_default();
        let (excluded, info) = set.excludes(&entry.name, &parent);
        if entry.dir {
            parents.insert(&entry.name, info);
        }
        keep[i] = !excluded;
        if !excluded {
            let mut name = entry.name.as_str();
            while let Some((up, _)) = name.rsplit_once('/') {
                needed.insert(up);
                name = up;
            }
        }
    }
    entries
        .iter()
        .enumerate()
        .filter(|(i, e)| keep[*i] || needed.contains(e.name.as_str()))
        .map(|(_, e)| e.clone())
        .collect()
}

/// One DiffCopy: the stats, then files on request, until the builder says it is done.
async fn serve(
    entries: &[Entry],
    incoming: &mut Streaming<Packet>,
    tx: &mpsc::Sender<Result<Packet, Status>>,
    upload: &dyn Reporter,
) -> Result<(), Status> {
    let closed = || Status::cancelled("the builder closed the context's stream");
    for entry in entries {
        let stat = stat(entry)
            .map_err(|e| Status::internal(format!("cannot read {}: {e}", entry.disk.display())))?;
        let packet = Packet {
            r#type: PacketType::PacketStat as i32,
            stat: Some(stat),
            ..Packet::default()
        };
        tx.send(Ok(packet)).await.map_err(|_| closed())?;
    }
    tx.send(Ok(Packet {
        r#type: PacketType::PacketStat as i32,
        ..Packet::default()
    }))
    .await
    .map_err(|_| closed())?;
    while let Some(packet) = incoming.next().await {
        let packet = packet?;
        match PacketType::try_from(packet.r#type) {
            Ok(PacketType::PacketReq) => {
                let entry = entries
                    .get(packet.id as usize)
                    .ok_or_else(|| Status::invalid_argument(format!("no file {}", packet.id)))?;
                send_file(entry, packet.id, tx, upload).await?;
            }
            Ok(PacketType::PacketFin) => {
                let fin = Packet {
                    r#type: PacketType::PacketFin as i32,
                    ..Packet::default()
                };
                tx.send(Ok(fin)).await.map_err(|_| closed())?;
                return Ok(());
            }
            Ok(PacketType::PacketErr) => {
                return Err(Status::aborted(format!(
                    "the builder failed to receive the context: {}",
                    String::from_utf8_lossy(&packet.data)
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The content of `entry` in data packets, then an empty one.
async fn send_file(
    entry: &Entry,
    id: u32,
    tx: &mpsc::Sender<Result<Packet, Status>>,
    upload: &dyn Reporter,
) -> Result<(), Status> {
    let failed = |e: std::io::Error| Status::internal(format!("{}: {e}", entry.disk.display()));
    let mut file = tokio::fs::File::open(&entry.disk).await.map_err(failed)?;
    loop {
        let mut buf = vec![0u8; CHUNK];
        let n = file.read(&mut buf).await.map_err(failed)?;
        if n == 0 {
            break;
        }
        buf.truncate(n);
        upload.advance(n as u64);
        let packet = Packet {
            r#type: PacketType::PacketData as i32,
            id,
            data: buf,
            ..Packet::default()
        };
        tx.send(Ok(packet))
            .await
            .map_err(|_| Status::cancelled("the builder closed the context's stream"))?;
    }
    tx.send(Ok(Packet {
        r#type: PacketType::PacketData as i32,
        id,
        ..Packet::default()
    }))
    .await
    .map_err(|_| Status::cancelled("the builder closed the context's stream"))
}

/// The entry's stat as fsutil sends it: Go's `os.FileMode` bits, nanosecond times.
fn stat(entry: &Entry) -> std::io::Result<Stat> {
    let meta = std::fs::symlink_metadata(&entry.disk)?;
    let kind = meta.file_type();
    let unix = meta.mode();
    let mut mode = meta.permissions().mode() & 0o777;
    if unix & 0o4000 != 0 {
        mode |= 1 << 23;
    }
    if unix & 0o2000 != 0 {
        mode |= 1 << 22;
    }
    if unix & 0o1000 != 0 {
        mode |= 1 << 20;
    }
    let mut linkname = String::new();
    if kind.is_dir() {
        mode |= 1 << 31;
    } else if kind.is_symlink() {
        mode |= 1 << 27;
        linkname = std::fs::read_link(&entry.disk)?
            .to_string_lossy()
            .into_owned();
    }
    Ok(Stat {
        path: entry.name.clone(),
        mode,
        uid: meta.uid(),
        gid: meta.gid(),
        size: if kind.is_file() {
            i64::try_from(meta.len()).unwrap_or(i64::MAX)
        } else {
            0
        },
        mod_time: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        linkname,
        ..Stat::default()
    })
}

/// The entries of the context's plan in sending order, with the folders above re-included
/// files (which the plan leaves out, as the tar does) put back before them: BuildKit wants
/// every folder before what is in it.
pub(crate) fn context_entries(context: &Path, plan: &crate::context::Plan) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::with_capacity(plan.entries.len());
    let mut sent: HashSet<String> = HashSet::new();
    for (disk, name, _) in &plan.entries {
        // The folders above `name`, outermost first, not sent yet.
        let mut end = 0;
        while let Some(slash) = name[end..].find('/') {
            end += slash;
            let dir = &name[..end];
            if sent.insert(dir.to_string()) {
                entries.push(Entry {
                    disk: context.join(dir),
                    name: dir.to_string(),
                    dir: true,
                });
            }
            end += 1;
        }
        let is_dir = std::fs::symlink_metadata(disk).is_ok_and(|m| m.is_dir());
        if is_dir && !sent.insert(name.clone()) {
            continue;
        }
        entries.push(Entry {
            disk: disk.clone(),
            name: name.clone(),
            dir: is_dir,
        });
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_come_before_what_they_hold() {
        let d = tempfile::tempdir().unwrap();
        let c = d.path();
        std::fs::create_dir_all(c.join("docs/sub")).unwrap();
        std::fs::write(c.join("docs/sub/keep.md"), "k").unwrap();
        std::fs::write(c.join("Dockerfile"), "FROM scratch").unwrap();
        let plan = crate::context::Plan {
            entries: vec![
                (c.join("Dockerfile"), "Dockerfile".into(), 12),
                (c.join("docs/sub/keep.md"), "docs/sub/keep.md".into(), 1),
            ],
            bytes: 13,
            folders_read: 3,
        };
        let names: Vec<String> = context_entries(c, &plan)
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(
            names,
            ["Dockerfile", "docs", "docs/sub", "docs/sub/keep.md"]
        );
    }

    #[test]
    fn stats_carry_gos_mode_bits() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f"), "abc").unwrap();
        std::fs::set_permissions(d.path().join("f"), std::fs::Permissions::from_mode(0o4755))
            .unwrap();
        std::os::unix::fs::symlink("f", d.path().join("l")).unwrap();
        let entry = |n: &str| Entry {
            disk: d.path().join(n),
            name: n.into(),
            dir: false,
        };
        let f = stat(&entry("f")).unwrap();
        assert_eq!(f.mode, 0o755 | 1 << 23);
        assert_eq!(f.size, 3);
        let l = stat(&entry("l")).unwrap();
        assert_eq!(l.mode & (1 << 27), 1 << 27);
        assert_eq!(l.linkname, "f");
        let dir = Entry {
            disk: d.path().to_path_buf(),
            name: "x".into(),
            dir: true,
        };
        assert_eq!(stat(&dir).unwrap().mode & (1 << 31), 1 << 31);
    }

    #[test]
    fn includes_pick_entries_and_the_folders_above_them() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a")).unwrap();
        let e = |n: &str| Entry {
            disk: d.path().join(n),
            name: n.into(),
            dir: n == "a",
        };
        let all = vec![e(".dockerignore"), e("Dockerfile"), e("a"), e("a/x")];
        let names = |v: Vec<Entry>| v.into_iter().map(|e| e.name).collect::<Vec<_>>();
        assert_eq!(
            names(included(&all, &[".dockerignore".into()])),
            [".dockerignore"]
        );
        assert_eq!(names(included(&all, &["a/x".into()])), ["a", "a/x"]);
        assert_eq!(names(included(&all, &[])).len(), 4);
        assert_eq!(
            names(without_excluded(&all, &["*".into(), "!a/x".into()])),
            ["a", "a/x"],
            "the folder above an exception stays"
        );
        assert_eq!(names(without_excluded(&all, &["a".into()])).len(), 2);
    }

    #[test]
    fn url_decoding_as_go() {
        assert_eq!(url_decode("a%2Fb+c"), "a/b c");
        assert_eq!(url_decode("100%"), "100%");
    }
}
