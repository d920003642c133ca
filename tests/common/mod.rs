//! The shared harness of the end-to-end tests: runs the real `toolbox` binary in a scratch
//! directory with a clean environment.
#![allow(dead_code)]

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use assert_cmd::Command;

pub mod images;

pub const ID: &str = "0123456789ab";

/// A scratch working directory with an `artifacts/` folder, and a home of its own for every
/// program the test runs (see [`Scratch::command`]).
pub struct Scratch {
    pub dir: tempfile::TempDir,
    home: tempfile::TempDir,
}

/// The variables through which `toolbox`, `docker` and `skopeo` find the user's files
/// (registry credentials, caches), each with its place under the test's own home.
const PRIVATE: [(&str, &str); 6] = [
    ("HOME", ""),
    ("XDG_CACHE_HOME", ".cache"),
    ("XDG_CONFIG_HOME", ".config"),
    ("XDG_DATA_HOME", ".local/share"),
    ("XDG_RUNTIME_DIR", "run"),
    ("DOCKER_CONFIG", ".docker"),
];

impl Scratch {
    pub fn new() -> Scratch {
        hygiene::watch();
        let dir = tempfile::tempdir().expect("a temporary directory");
        fs::create_dir(dir.path().join("artifacts")).unwrap();
        let home = tempfile::Builder::new()
            .prefix("toolbox-test-home.")
            .tempdir()
            .expect("a temporary home");
        hygiene::scratch_root(dir.path());
        hygiene::scratch_root(home.path());
        let scratch = Scratch { dir, home };
        for (_, rel) in PRIVATE {
            fs::create_dir_all(scratch.private(rel)).unwrap();
        }
        scratch
    }

    /// `rel` below the test's own home (the home itself for an empty `rel`).
    fn private(&self, rel: &str) -> PathBuf {
        match rel {
            "" => self.home().to_path_buf(),
            rel => self.home().join(rel),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn artifacts(&self) -> PathBuf {
        self.path().join("artifacts")
    }

    /// The test's own home: `HOME` of every program it runs, with the XDG folders and the
    /// Docker configuration folder (`.docker`) below it.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// `program` run with the test's own home: `HOME`,
    /// `XDG_CACHE_HOME`, `XDG_CONFIG_HOME`, `XDG_DATA_HOME`, `XDG_RUNTIME_DIR` and
    /// `DOCKER_CONFIG` point below [`Scratch::home`] (and `REGISTRY_AUTH_FILE` is unset), so
    /// that nothing reads or writes the user's caches, credentials or configuration. A test
    /// that sets one of these itself afterwards wins.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
        let mut cmd = std::process::Command::new(program);
        cmd.env_remove("REGISTRY_AUTH_FILE");
        for (name, rel) in PRIVATE {
            cmd.env(name, self.private(rel));
        }
        cmd
    }

    /// `toolbox` run in the scratch directory, with the test's own home and no toolbox
    /// variable from the outside: the one way the tests start `toolbox`.
    pub fn toolbox_std(&self) -> std::process::Command {
        let mut cmd = self.command(env!("CARGO_BIN_EXE_toolbox"));
        cmd.current_dir(self.path())
            .env_remove("TOOLBOX_ARTIFACTS_DIR")
            .env_remove("TOOLBOX_DOCKER_API_TIMEOUT");
        // The engine's address comes from DOCKER_HOST, which each test sets; nothing else of
        // the caller's may choose another engine.
        for var in [
            "DOCKER_CONTEXT",
            "DOCKER_TLS_VERIFY",
            "DOCKER_CERT_PATH",
            "DOCKER_TLS",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    /// The same as [`Scratch::toolbox_std`], as an `assert_cmd` command.
    pub fn toolbox(&self) -> Command {
        Command::from_std(self.toolbox_std())
    }

    /// Creates a file under `artifacts/` whose modification time is `age_s` seconds before a
    /// fixed instant: for an archive extension, a small body whose ends pass the quick check
    /// (`sound_body`; not an image: `verify` fails it), else empty.
    pub fn touch(&self, rel: &str, age_s: u64) -> PathBuf {
        let ext = Path::new(rel)
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("");
        self.write(rel, &sound_body(ext), age_s)
    }

    pub fn write(&self, rel: &str, data: &[u8], age_s: u64) -> PathBuf {
        let path = self.artifacts().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, data).unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000 - age_s);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(t)
            .unwrap();
        path
    }

    /// Every file below `artifacts/`, hidden ones included (but the lock file, which mutating
    /// commands create and keep), relative and sorted.
    pub fn files(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.artifacts(), &self.artifacts(), &mut out);
        out.sort();
        out
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            walk(root, &path, out);
        } else if entry.file_name() != ".toolbox.lock" {
            out.push(
                path.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
}

/// Waits until `ready` says so, looking every 10 ms; fails the test, naming `what`, when it
/// has not after `limit`. The limits are generous: they catch a hang, never measure speed.
pub fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: still not after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `cmd` to its end, with its stdout and stderr captured; fails the test (after killing
/// it) when it has not ended after `limit`: it hangs.
pub fn output_within(
    mut cmd: std::process::Command,
    limit: Duration,
    what: &str,
) -> std::process::Output {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            // SAFETY: kill(2) of the child this function started, which has not been reaped.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("{what}: still running after {limit:?}, it hangs");
        }
    }
}

/// Parses stdout as JSON.
pub fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The address of a Docker engine that answers, starting the project's private one
/// (`scripts/engine start`) when none does. Without an engine the calling test fails with a
/// message saying how to start one: an engine test never passes by not running. (With
/// `TOOLBOX_SKIP_SERVICE_TESTS=1` the tests that call this are built as ignored: see
/// [`hygiene::needs_service`].)
pub fn engine() -> String {
    hygiene::needs_service("a Docker engine");
    let found = ENGINE.get_or_init(|| start_engine(None));
    match found {
        Ok(host) => {
            hygiene::engine_images_before(host);
            host.clone()
        }
        Err(reason) => panic!(
            "no Docker engine can be reached ({reason}). Start one with `scripts/engine start` \
             (as root; `just test` does it), or set DOCKER_HOST to a running engine (or set \
             {}=1 to build the tests that need one as ignored)",
            hygiene::SKIP_VAR
        ),
    }
}

/// The private engine of `flavour` (`20.10`, `26-classic`, `26-containerd`: see
/// `scripts/engine`), started when none answers. Without it the calling test fails, saying
/// why.
pub fn engine_flavour(flavour: &str) -> String {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static STARTED: Mutex<Option<HashMap<String, Result<String, String>>>> = Mutex::new(None);
    hygiene::needs_service(&format!("the {flavour} Docker engine"));
    let mut started = STARTED.lock().unwrap();
    let found = started
        .get_or_insert_with(HashMap::new)
        .entry(flavour.to_string())
        .or_insert_with(|| start_engine(Some(flavour)))
        .clone();
    match found {
        Ok(host) => {
            hygiene::engine_images_before(&host);
            host
        }
        Err(reason) => panic!(
            "the {flavour} engine cannot be started ({reason}). Start it with `scripts/engine \
             start {flavour}` (as root; `just test` does it)"
        ),
    }
}

/// `scripts/engine start [FLAVOUR]`: the engine's address, or what the script said. With a
/// flavour, `DOCKER_HOST` is not passed on (that engine is always the private one).
fn start_engine(flavour: Option<&str>) -> Result<String, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/engine");
    let mut cmd = std::process::Command::new(&script);
    cmd.arg("start");
    if let Some(flavour) = flavour {
        cmd.arg(flavour).env_remove("DOCKER_HOST");
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// The engine the tests use, once found.
static ENGINE: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();

/// Runs `toolbox` in the scratch directory against the engine at `host`. A `build` that
/// names no network gets `--network none`: the private engines run with `--bridge=none`, where
/// BuildKit's `RUN` steps have no other network.
pub fn toolbox(s: &Scratch, host: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = s.toolbox();
    cmd.env("DOCKER_HOST", host).args(args);
    if args.first() != Some(&"build") {
        return cmd.output().unwrap();
    }
    if !args.iter().any(|a| a.starts_with("--network")) {
        cmd.args(["--network", "none"]);
    }
    building(|| cmd.output().unwrap())
}

/// Image deletions and builds exclude each other within a test program (builds run side by
/// side, deletions alone): after a deletion a containerd-store engine (Docker 26.1) collects
/// unreferenced snapshots, and a BuildKit build exporting under a name it re-tags has then
/// failed with "parent snapshot … does not exist" (seen once in CI). No user of one engine
/// deletes and builds from a test's threads at once; the tests should not either.
static BUILDS_AND_DELETIONS: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Runs `build` while no image is being deleted.
pub fn building<T>(build: impl FnOnce() -> T) -> T {
    let _shared = BUILDS_AND_DELETIONS
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    build()
}

/// Runs `delete` while no build runs, and lets the engine's collection settle after it.
pub fn deleting<T>(delete: impl FnOnce() -> T) -> T {
    let _alone = BUILDS_AND_DELETIONS
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let done = delete();
    std::thread::sleep(std::time::Duration::from_millis(300));
    done
}

/// Fails the test unless `toolbox` succeeded; passes the output on.
pub fn ok(out: std::process::Output) -> std::process::Output {
    assert!(out.status.success(), "toolbox failed: {}", stderr(&out));
    out
}

/// Builds `image:version` from the context `ctx` with `toolbox build`; returns the full image ID.
pub fn build(s: &Scratch, host: &str, image: &str, version: &str, ctx: &Path) -> String {
    let out = ok(toolbox(
        s,
        host,
        &[
            "build",
            image,
            "--version",
            version,
            "--context",
            ctx.to_str().unwrap(),
        ],
    ));
    stdout(&out).trim().to_string()
}

/// `docker` against the engine at `host`, with the test's own home (no user configuration).
pub fn docker(s: &Scratch, host: &str) -> std::process::Command {
    let mut cmd = s.command("docker");
    cmd.env("DOCKER_HOST", host);
    cmd
}

/// Runs `docker` and returns its trimmed stdout, failing the test when it fails.
pub fn docker_ok(s: &Scratch, host: &str, args: &[&str]) -> String {
    let run = || docker(s, host).args(args).output().expect("docker runs");
    let out = match args.first() {
        Some(&"rmi") => deleting(run),
        Some(&"build") => building(run),
        _ => run(),
    };
    assert!(out.status.success(), "docker {args:?}: {}", stderr(&out));
    stdout(&out).trim().to_string()
}

/// `skopeo`, with the test's own home (no user credentials or policy).
pub fn skopeo(s: &Scratch) -> std::process::Command {
    s.command("skopeo")
}

/// A name no other test uses, valid as an image name and a docker repository.
pub fn unique_image(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!(
        "{prefix}{}x{}x{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos % 10_000
    );
    hygiene::image_name(&name);
    name
}

/// A build context with a Dockerfile FROM scratch, a file holding `content`, and busybox as
/// `/bin/sh` so that `RUN` works.
pub fn scratch_context(dir: &Path, content: &str, extra: &str) -> PathBuf {
    let ctx = dir.join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::copy("/bin/busybox", ctx.join("sh")).expect("busybox-static is installed (/bin/busybox)");
    // Bytes after the ELF image (which runs as before) make every test's first layer its own:
    // no two tests share build-cache images, which one's `rmi` could pull from under the
    // other's build.
    let mut sh = fs::OpenOptions::new()
        .append(true)
        .open(ctx.join("sh"))
        .unwrap();
    std::io::Write::write_all(&mut sh, format!("\n{}\n", ctx.display()).as_bytes()).unwrap();
    fs::write(ctx.join("content.txt"), content).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        format!("FROM scratch\nCOPY sh /bin/sh\nCOPY content.txt /\n{extra}"),
    )
    .unwrap();
    ctx
}

/// A second, disposable engine that the test may kill.
pub struct DisposableEngine {
    dir: tempfile::TempDir,
}

impl DisposableEngine {
    /// Starts Debian 12's dockerd in a folder of its own under /tmp, with `extra` arguments
    /// (another listener, TLS). When dockerd cannot be started the calling test fails, saying
    /// how to install it: a test of a disposable engine never passes by not running.
    pub fn start(s: &Scratch, extra: &[&str]) -> DisposableEngine {
        hygiene::needs_service("a disposable Docker engine (dockerd)");
        let dir = tempfile::Builder::new()
            .prefix("tbe")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path();
        let spawned = std::process::Command::new("dockerd")
            .arg("--host")
            .arg(format!("unix://{}/d.sock", d.display()))
            .arg("--data-root")
            .arg(d.join("root"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("d.pid"))
            .args(["--iptables=false", "--bridge=none"])
            .args(extra)
            .stdout(fs::File::create(d.join("log")).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn();
        if let Err(e) = spawned {
            panic!(
                "cannot start dockerd ({e}): install it with `scripts/engine start` (as root; \
                 Debian's docker.io; `just test` does it), or set {}=1 to build the tests that \
                 need one as ignored",
                hygiene::SKIP_VAR
            );
        }
        hygiene::scratch_root(dir.path());
        let engine = DisposableEngine { dir };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while std::time::Instant::now() < deadline {
            if docker(s, &engine.host())
                .args(["version"])
                .output()
                .unwrap()
                .status
                .success()
            {
                return engine;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        panic!(
            "the disposable dockerd did not answer: {}",
            fs::read_to_string(engine.dir.path().join("log")).unwrap_or_default()
        );
    }

    /// Its unix socket.
    pub fn host(&self) -> String {
        format!("unix://{}/d.sock", self.dir.path().display())
    }

    /// Whether a process of the engine (dockerd, its containerd) is still there.
    pub fn running(&self) -> bool {
        std::process::Command::new("pgrep")
            .arg("-f")
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// SIGKILL for the engine and everything it started (its containerd).
    pub fn kill(&self) {
        let _ = std::process::Command::new("pkill")
            .args(["-KILL", "-f"])
            .arg(self.dir.path())
            .status();
    }
}

impl Drop for DisposableEngine {
    fn drop(&mut self) {
        self.kill();
        // Until its processes are gone (and have let go of their mounts).
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while self.running() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // What dockerd mounted below its folder (its data root's bind mount, overlays), the
        // deepest first: the folder itself is no mount point, so `umount -R` on it does nothing.
        let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let mut below: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|m| Path::new(m).starts_with(self.dir.path()))
            .collect();
        below.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in below {
            let _ = std::process::Command::new("umount").arg(m).status();
        }
    }
}

/// The members of a tar (names → contents): two `docker save` streams of one image are the
/// same image when these are equal, whatever times the engine stamped in the headers
/// (Docker 26 stamps the save's time).
pub fn tar_members(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut archive = tar::Archive::new(bytes);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            (name, data)
        })
        .collect()
}

/// What `script` prints (trimmed) in a container of `reference` without a network, on the
/// engine at `host`; the test fails when it fails.
pub fn run_in(s: &Scratch, host: &str, reference: &str, script: &str) -> String {
    docker_ok(
        s,
        host,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            reference,
            "/bin/sh",
            "-c",
            script,
        ],
    )
}

/// Flips one byte of a layer inside a `docker save` tar: in `marker` when the layer is stored
/// uncompressed (a classic store's archive), else in the middle of the largest member (a
/// containerd store's gzip-compressed layer).
pub fn flip_in_layer(bytes: &mut [u8], marker: &[u8]) {
    let at = match bytes.windows(marker.len()).position(|w| w == marker) {
        Some(at) => at,
        None => {
            let mut archive = tar::Archive::new(&bytes[..]);
            let (offset, size) = archive
                .entries()
                .unwrap()
                .map(|e| e.unwrap())
                .map(|e| (e.raw_file_position(), e.header().size().unwrap()))
                .max_by_key(|(_, size)| *size)
                .unwrap();
            (offset + size / 2) as usize
        }
    };
    bytes[at] ^= 0x20;
}

/// A body for an archive name with extension `ext` whose ends pass the quick check that
/// `latest`, `config` and `clean` make (a whole tar; a ZIP of one entry; a zstd frame), for
/// tests about names and order; empty for other extensions.
pub fn sound_body(ext: &str) -> Vec<u8> {
    let tar = tar_holding(b"");
    match ext {
        "docker" => tar,
        "zip" => {
            use std::io::Write;
            let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            w.start_file("a.docker", zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(&tar).unwrap();
            w.finish().unwrap().into_inner()
        }
        "zst" => zstd::encode_all(&tar[..], 3).unwrap(),
        _ => Vec::new(),
    }
}

/// A tar holding one file, `blob`, with `data`: the shape of a `.docker` archive's body for
/// tests that only move bytes around.
pub fn tar_holding(data: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_path("blob").unwrap();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append(&header, data).unwrap();
    builder.into_inner().unwrap()
}

/// A CA (`ca.pem`) and a certificate for 127.0.0.1 it signed (`cert.pem`, `key.pem`), made with
/// openssl in `d`.
fn issue_certificate(d: &Path) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(d)
            .output()
            .expect("openssl is installed");
        assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=toolbox-test-ca",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "req.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    fs::write(
        d.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "req.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

/// A real registry (`docker-registry serve`) on a free loopback port, with its storage in a
/// temporary folder; stopped when dropped. With `user`, it asks for that user and password
/// (htpasswd, bcrypt).
pub struct TestRegistry {
    pub host: String,
    pub storage: PathBuf,
    _dir: tempfile::TempDir,
    child: std::process::Child,
}

impl TestRegistry {
    /// Starts one; a missing `docker-registry` fails the test with how to install it (a
    /// registry test never passes by not running).
    pub fn start(user: Option<(&str, &str)>) -> TestRegistry {
        Self::start_with(user, false)
    }

    /// With `tls`, the registry serves HTTPS with a certificate for 127.0.0.1 signed by a test
    /// CA, written to `ca.pem` in [`TestRegistry::dir`].
    pub fn start_with(user: Option<(&str, &str)>, tls: bool) -> TestRegistry {
        hygiene::needs_service("a registry (docker-registry)");
        let binary = ["/usr/bin/docker-registry", "/usr/local/bin/docker-registry"]
            .into_iter()
            .find(|p| Path::new(p).exists());
        let Some(binary) = binary else {
            let how = "install it with `scripts/engine start` (Debian's docker-registry)";
            panic!(
                "docker-registry is not installed: {how}, or set {}=1 to build the tests that \
                 need one as ignored",
                hygiene::SKIP_VAR
            );
        };
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        if tls {
            let d = dir.path();
            issue_certificate(d);
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                d.join("cert.pem").display(),
                d.join("key.pem").display()
            ));
        }
        if let Some((name, password)) = user {
            let hash = bcrypt::hash(password, 4).unwrap();
            let htpasswd = dir.path().join("htpasswd");
            fs::write(&htpasswd, format!("{name}:{hash}\n")).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: toolbox-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        fs::write(&config_path, config).unwrap();
        let child = std::process::Command::new(binary)
            .arg("serve")
            .arg(&config_path)
            .stdout(std::process::Stdio::null())
            .stderr(File::create(dir.path().join("registry.log")).unwrap())
            .spawn()
            .expect("docker-registry starts");
        let host = format!("127.0.0.1:{port}");
        let registry = TestRegistry {
            host,
            storage,
            _dir: dir,
            child,
        };
        let mut registry = registry;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if std::net::TcpStream::connect(&registry.host).is_ok() {
                return registry;
            }
            if let Ok(Some(status)) = registry.child.try_wait() {
                panic!(
                    "docker-registry ended ({status}): {}",
                    fs::read_to_string(registry.dir().join("registry.log")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "docker-registry did not listen on {} within 60 s",
            registry.host
        );
    }

    /// The registry's own folder (config, certificates, log).
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    /// The file holding a blob in the registry's storage.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

/// A real web server (Debian's nginx) on a free loopback port serving the folder `root` as
/// static files (with `Range`); stopped when dropped. Its access log says which files were
/// asked for and how many bytes went out.
pub struct TestWebServer {
    pub host: String,
    /// `http` or `https`.
    scheme: &'static str,
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl TestWebServer {
    /// Starts one; a missing nginx fails the test with how to install it.
    pub fn start(root: &Path) -> TestWebServer {
        Self::start_with(root, false)
    }

    /// Starts one serving HTTPS with a certificate of a CA of its own ([`TestWebServer::ca`]).
    pub fn start_tls(root: &Path) -> TestWebServer {
        Self::start_with(root, true)
    }

    fn start_with(root: &Path, tls: bool) -> TestWebServer {
        hygiene::needs_service("a web server (nginx)");
        let binary = "/usr/sbin/nginx";
        if !Path::new(binary).exists() {
            panic!(
                "nginx is not installed: install it with `scripts/install-deps` (Debian's nginx), \
                 or set {}=1 to build the tests that need one as ignored",
                hygiene::SKIP_VAR
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.path();
        fs::create_dir_all(d.join("tmp")).unwrap();
        let ssl = if tls {
            issue_certificate(d);
            format!(
                " ssl; ssl_certificate {}; ssl_certificate_key {}",
                d.join("cert.pem").display(),
                d.join("key.pem").display()
            )
        } else {
            String::new()
        };
        let config = format!(
            "user root;\nworker_processes 1;\ndaemon off;\nmaster_process off;\n\
             pid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  default_type application/octet-stream;\n\
             log_format counted '$request $status $body_bytes_sent';\n\
             access_log {d}/access.log counted;\n\
             client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;\n\
             uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;\n\
             server {{ listen 127.0.0.1:{port}{ssl}; root {root}; autoindex off; }}\n}}\n",
            d = d.display(),
            root = root.display(),
        );
        fs::write(d.join("nginx.conf"), config).unwrap();
        let child = std::process::Command::new(binary)
            .args(["-c", &d.join("nginx.conf").display().to_string(), "-p"])
            .arg(d)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nginx starts");
        let host = format!("127.0.0.1:{port}");
        wait_until("nginx to listen", Duration::from_secs(20), || {
            std::net::TcpStream::connect(&host).is_ok()
        });
        TestWebServer {
            host,
            scheme: if tls { "https" } else { "http" },
            dir,
            child,
        }
    }

    /// The URL of `rel` (a path below the served folder).
    pub fn url(&self, rel: &str) -> String {
        format!("{}://{}/{rel}", self.scheme, self.host)
    }

    /// The CA file that signed an HTTPS server's certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The access log so far: one `GET /path HTTP/1.1 STATUS BYTES` line per request.
    pub fn log(&self) -> Vec<String> {
        // nginx writes each line as the request ends; give it a moment.
        std::thread::sleep(Duration::from_millis(100));
        fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The bytes of the answers to the requests whose line contains `text`.
    pub fn sent(&self, text: &str) -> u64 {
        self.log()
            .iter()
            .filter(|l| l.contains(text))
            .filter_map(|l| l.rsplit(' ').next().and_then(|n| n.parse::<u64>().ok()))
            .sum()
    }

    /// Empties the access log.
    pub fn clear_log(&self) {
        std::thread::sleep(Duration::from_millis(100));
        let _ = fs::write(self.dir.path().join("access.log"), b"");
    }
}

impl Drop for TestWebServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the tests leave behind: nothing. Checked (and, for the engine's images, cleaned) when
/// the test program exits, after every test has run:
/// - no filesystem is still mounted below a test's scratch folders or homes;
/// - no image the tests named (`unique_image`), and no image made since the first engine test
///   started that no longer has a name (a rebuilt tag's old image), is left in the engine: the
///   harness removes them, and fails if any remains;
/// - nothing in the user's home changed (`~/.docker`, `~/.cache/toolbox`, `~/.config/toolbox`).
///
/// A failed check prints what is left on stderr and makes the test program exit 1.
///
/// `TOOLBOX_SKIP_SERVICE_TESTS=1` when the tests are built (`build.rs` turns it into
/// `cfg(toolbox_skip_service_tests)`) marks every test that needs an engine or a registry as
/// ignored (`#[cfg_attr(toolbox_skip_service_tests, ignore = "…")]` on each), so that cargo's
/// summary counts them as ignored. No such test ever returns early: without its service it
/// fails, saying how to start one.
pub mod hygiene {
    use std::collections::BTreeSet;
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::sync::{Mutex, Once, OnceLock};
    use std::time::SystemTime;

    /// The opt-out: set to 1 (when the tests are built) to build the tests that need an engine
    /// or a registry as ignored.
    pub const SKIP_VAR: &str = "TOOLBOX_SKIP_SERVICE_TESTS";

    static ROOTS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    static NAMES: Mutex<Vec<String>> = Mutex::new(Vec::new());
    static HOME: OnceLock<Vec<(PathBuf, Option<SystemTime>)>> = OnceLock::new();
    /// Each engine, and the IDs of the images it had before the first test used it.
    static BEFORE: Mutex<Vec<(String, BTreeSet<String>)>> = Mutex::new(Vec::new());

    /// Starts watching: the end-of-run check is registered once per test program.
    pub fn watch() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            HOME.get_or_init(home_state);
            // SAFETY: `at_exit` is an `extern "C" fn()` that never unwinds (it catches panics).
            unsafe {
                libc::atexit(at_exit);
            }
        });
    }

    /// Called by whatever gives a test an engine or a registry, before it starts one: the
    /// test is running, so it must not have been meant to be ignored. Fails the test when
    /// - the tests were built with the opt-out, but this one runs although it was not asked for
    ///   with `--ignored` or `--include-ignored`: it lacks its
    ///   `#[cfg_attr(toolbox_skip_service_tests, ignore = "…")]`;
    /// - the opt-out is set now, but the test program was built without it (run directly
    ///   rather than through `cargo test`, which builds it again): it would not be honoured.
    pub fn needs_service(what: &str) {
        watch();
        if cfg!(toolbox_skip_service_tests) {
            let asked = std::env::args().any(|a| a == "--ignored" || a == "--include-ignored");
            assert!(
                asked,
                "this test needs {what} but is not ignored under {SKIP_VAR}=1: give it \
                 #[cfg_attr(toolbox_skip_service_tests, ignore = \"{SKIP_VAR}=1: needs an \
                 engine/registry\")]"
            );
        } else if std::env::var(SKIP_VAR).is_ok_and(|v| v == "1") {
            panic!(
                "{SKIP_VAR}=1, but this test program was built without it, so the tests that \
                 need {what} are not ignored: run the tests through `cargo test`, which builds \
                 them again with it"
            );
        }
    }

    pub fn scratch_root(path: &Path) {
        if let Ok(mut roots) = ROOTS.lock() {
            roots.push(path.to_path_buf());
        }
    }

    pub fn image_name(name: &str) {
        if let Ok(mut names) = NAMES.lock() {
            names.push(name.to_string());
        }
    }

    /// Notes the images `host` has before the tests use it (once per engine).
    pub fn engine_images_before(host: &str) {
        if let Ok(mut before) = BEFORE.lock()
            && !before.iter().any(|(h, _)| h == host)
        {
            let ids = image_ids(host, &[]).into_iter().collect();
            before.push((host.to_string(), ids));
        }
    }

    fn docker(host: &str) -> Command {
        let mut cmd = Command::new("docker");
        let config = std::env::temp_dir().join(format!("toolbox-hygiene-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&config);
        cmd.env("DOCKER_HOST", host).env("DOCKER_CONFIG", config);
        cmd
    }

    fn image_ids(host: &str, filter: &[&str]) -> Vec<String> {
        let out = docker(host)
            .args(["images", "--all", "--no-trunc", "--quiet"])
            .args(filter)
            .output();
        match out {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            _ => Vec::new(),
        }
    }

    fn home_state() -> Vec<(PathBuf, Option<SystemTime>)> {
        let Some(home) = std::env::var_os("HOME").map(PathBuf::from) else {
            return Vec::new();
        };
        [
            ".docker",
            ".docker/config.json",
            ".cache/toolbox",
            ".config/toolbox",
        ]
        .iter()
        .map(|rel| {
            let p = home.join(rel);
            let t = std::fs::metadata(&p).and_then(|m| m.modified()).ok();
            (p, t)
        })
        .collect()
    }

    fn mounts_left() -> Vec<String> {
        let roots = ROOTS.lock().map(|r| r.clone()).unwrap_or_default();
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|m| roots.iter().any(|r| Path::new(m).starts_with(r)))
            .map(str::to_string)
            .collect()
    }

    /// Removes what the tests made in the engines; returns what could not be removed.
    fn images_left() -> Vec<String> {
        let engines = BEFORE.lock().map(|b| b.clone()).unwrap_or_default();
        engines
            .iter()
            .flat_map(|(host, before)| images_left_in(host, before))
            .collect()
    }

    fn images_left_in(host: &str, before: &BTreeSet<String>) -> Vec<String> {
        let names = NAMES.lock().map(|n| n.clone()).unwrap_or_default();
        let listed = || {
            docker(host)
                .args(["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        // Named images first (every tag of every name a test made, by ID too: a containerd
        // store can list a name it cannot resolve), then what lost its name.
        let text = listed();
        let ours: Vec<&str> = text
            .lines()
            .filter(|r| names.iter().any(|n| r.contains(n.as_str())))
            .flat_map(|r| r.split_whitespace())
            .collect();
        for chunk in ours.chunks(50) {
            let _ = docker(host).args(["rmi", "--force"]).args(chunk).output();
        }
        let made: Vec<String> = image_ids(host, &["--filter", "dangling=true"])
            .into_iter()
            .filter(|id| !before.contains(id))
            .collect();
        for id in &made {
            let _ = docker(host).args(["rmi", "--force", id]).output();
        }
        let mut left: Vec<String> = image_ids(host, &[])
            .into_iter()
            .filter(|id| made.contains(id))
            .collect();
        left.extend(
            listed()
                .lines()
                .filter(|r| names.iter().any(|n| r.contains(n.as_str())))
                .map(|r| format!("{r} (in {host})")),
        );
        left
    }

    extern "C" fn at_exit() {
        let _ = std::panic::catch_unwind(check);
    }

    fn check() {
        let mut err = std::io::stderr();
        let mut problems = Vec::new();
        let mounts = mounts_left();
        if !mounts.is_empty() {
            problems.push(format!("filesystems still mounted: {}", mounts.join(", ")));
            for m in &mounts {
                let _ = Command::new("umount").arg("-l").arg(m).status();
            }
        }
        let images = images_left();
        if !images.is_empty() {
            problems.push(format!("images left in the engine: {}", images.join(", ")));
        }
        if let Some(before) = HOME.get() {
            let after = home_state();
            let changed: Vec<String> = before
                .iter()
                .zip(&after)
                .filter(|(b, a)| b.1 != a.1)
                .map(|(b, _)| b.0.display().to_string())
                .collect();
            if !changed.is_empty() {
                problems.push(format!("the user's home changed: {}", changed.join(", ")));
            }
        }
        let _ = std::fs::remove_dir_all(
            std::env::temp_dir().join(format!("toolbox-hygiene-{}", std::process::id())),
        );
        if !problems.is_empty() {
            let _ = writeln!(
                err,
                "\n*** the tests left things behind: {} ***\n",
                problems.join("; ")
            );
            // SAFETY: ends the process now, with a failing status, as a failed test would.
            unsafe { libc::_exit(1) };
        }
    }
}

/// The blobs (digest and size) a `.ref` leads to in the store at `art` (its manifest or
/// index, what they name), as far as the store holds them, each once.
pub fn ref_blobs(art: &Path, reference: &Path) -> Vec<(String, u64)> {
    let r: serde_json::Value = serde_json::from_slice(&fs::read(reference).unwrap()).unwrap();
    let mut out = Vec::new();
    let mut todo = vec![r["digest"].as_str().unwrap().to_string()];
    while let Some(d) = todo.pop() {
        let file = art
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"));
        if !file.exists() || out.iter().any(|(o, _)| *o == d) {
            continue;
        }
        let bytes = fs::read(&file).unwrap();
        out.push((d.clone(), bytes.len() as u64));
        let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        for key in ["manifests", "layers"] {
            for child in doc[key].as_array().into_iter().flatten() {
                todo.push(child["digest"].as_str().unwrap().to_string());
            }
        }
        if let Some(c) = doc["config"]["digest"].as_str() {
            todo.push(c.to_string());
        }
    }
    out
}

/// What a [`FaultyProxy`] does to a request a rule matches.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answers with this status (and `Retry-After` seconds) instead of the registry.
    Answer {
        status: u16,
        retry_after: Option<u64>,
    },
    /// Forwards the request, then cuts the connection after this many bytes of the answer.
    CutAnswerAfter(usize),
    /// Forwards only this many bytes of the request's body, then cuts the connection.
    CutRequestAfter(usize),
    /// Forwards the request, and the answer with its byte at this offset (counted from the
    /// answer's first byte, its head included) flipped.
    FlipAnswerByte(usize),
}

/// A fault for the next `times` requests whose method is `method` and whose path contains
/// `path`.
#[derive(Debug, Clone)]
pub struct Rule {
    pub method: &'static str,
    pub path: String,
    pub fault: Fault,
    pub times: usize,
}

/// A fault that took effect, as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Fired {
    /// The request line (`GET /v2/…/blobs/sha256:… HTTP/1.1`).
    pub line: String,
    pub fault: Fault,
    /// For a cut: the bytes of the request's body forwarded, or of the answer relayed, before it.
    pub bytes: usize,
    /// For a cut: whether it cut something off (there was more to forward than the limit); for
    /// an answer: always.
    pub cut: bool,
}

/// A TCP proxy in front of a registry that injects faults: each connection carries one request
/// (the proxy asks for `Connection: close`), which a matching rule answers itself or cuts.
/// `heads` records every request's head, and [`FaultyProxy::fired`] every fault that took
/// effect.
pub struct FaultyProxy {
    pub host: String,
    pub heads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    rules: std::sync::Arc<std::sync::Mutex<Vec<Rule>>>,
    fired: std::sync::Arc<std::sync::Mutex<Vec<Fired>>>,
    /// Connections being handled.
    busy: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl FaultyProxy {
    pub fn start(upstream: &str) -> FaultyProxy {
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
        let heads = Arc::new(Mutex::new(Vec::new()));
        let rules: Arc<Mutex<Vec<Rule>>> = Arc::new(Mutex::new(Vec::new()));
        let fired: Arc<Mutex<Vec<Fired>>> = Arc::new(Mutex::new(Vec::new()));
        let busy = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let upstream = upstream.to_string();
        let (h, r, f, b) = (heads.clone(), rules.clone(), fired.clone(), busy.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, h, r, f, b) =
                    (upstream.clone(), h.clone(), r.clone(), f.clone(), b.clone());
                b.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                std::thread::spawn(move || {
                    let _ = proxy_one(client, &upstream, &h, &r, &f);
                    b.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                });
            }
        });
        FaultyProxy {
            host,
            heads,
            rules,
            fired,
            busy,
        }
    }

    /// The faults that took effect so far, in order, once the connections in flight are done
    /// (the client having exited, they end; waits at most 30 s).
    pub fn fired(&self) -> Vec<Fired> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while self.busy.load(std::sync::atomic::Ordering::SeqCst) > 0
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.fired.lock().unwrap().clone()
    }

    /// The rules with uses left (faults that never took effect).
    pub fn unused(&self) -> Vec<Rule> {
        let rules = self.rules.lock().unwrap();
        rules.iter().filter(|r| r.times > 0).cloned().collect()
    }

    /// Adds a rule (rules are tried in the order added).
    pub fn fault(&self, method: &'static str, path: &str, fault: Fault, times: usize) {
        self.rules.lock().unwrap().push(Rule {
            method,
            path: path.to_string(),
            fault,
            times,
        });
    }

    /// The heads of the requests seen whose request line contains `text`.
    pub fn seen(&self, text: &str) -> Vec<String> {
        let heads = self.heads.lock().unwrap();
        heads
            .iter()
            .filter(|h| h.lines().next().unwrap_or_default().contains(text))
            .cloned()
            .collect()
    }
}

fn proxy_one(
    mut client: std::net::TcpStream,
    upstream: &str,
    heads: &std::sync::Mutex<Vec<String>>,
    rules: &std::sync::Mutex<Vec<Rule>>,
    fired: &std::sync::Mutex<Vec<Fired>>,
) -> std::io::Result<()> {
    use std::io::{Read, Write};
    // The request's head (and whatever of its body came with it).
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        let n = client.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let rest = buf[end..].to_vec();
    heads.lock().unwrap().push(head.clone());
    let line = head.lines().next().unwrap_or_default().to_string();
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let length: Option<usize> = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(str::to_string)
        })
        .and_then(|v| v.trim().parse().ok());
    let fault = {
        let mut rules = rules.lock().unwrap();
        // A request cut after N bytes of its body must have more than N.
        let long_enough = |f: &Fault| match f {
            Fault::CutRequestAfter(n) => length.is_none_or(|len| len > *n),
            _ => true,
        };
        rules
            .iter_mut()
            .find(|r| {
                r.times > 0 && r.method == method && path.contains(&r.path) && long_enough(&r.fault)
            })
            .map(|r| {
                r.times -= 1;
                r.fault.clone()
            })
    };
    let record = |bytes: usize, cut: bool| {
        if let Some(fault) = &fault {
            fired.lock().unwrap().push(Fired {
                line: line.clone(),
                fault: fault.clone(),
                bytes,
                cut,
            });
        }
    };
    if let Some(Fault::Answer {
        status,
        retry_after,
    }) = fault
    {
        record(0, true);
        let after = retry_after
            .map(|s| format!("Retry-After: {s}\r\n"))
            .unwrap_or_default();
        let answer = format!(
            "HTTP/1.1 {status} Injected\r\n{after}Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        client.write_all(answer.as_bytes())?;
        let _ = client.shutdown(std::net::Shutdown::Both);
        return Ok(());
    }
    // Forwarded, one request per connection.
    let mut forwarded: String = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .take_while(|l| !l.is_empty())
        .map(|l| format!("{l}\r\n"))
        .collect();
    forwarded.push_str("Connection: close\r\n\r\n");
    let mut server = std::net::TcpStream::connect(upstream)?;
    server.write_all(forwarded.as_bytes())?;
    let body_limit = match fault {
        Some(Fault::CutRequestAfter(n)) => Some(n),
        _ => None,
    };
    let answer_limit = match fault {
        Some(Fault::CutAnswerAfter(n)) => Some(n),
        _ => None,
    };
    let flip_at = match fault {
        Some(Fault::FlipAnswerByte(n)) => Some(n),
        _ => None,
    };
    let (mut from_client, mut to_server) = (client.try_clone()?, server.try_clone()?);
    // The body forwarded, and whether it was cut with more to come.
    let upload = std::thread::spawn(move || {
        let mut sent = 0usize;
        let mut pending = rest;
        loop {
            if !pending.is_empty() {
                let take = body_limit.map_or(pending.len(), |l| pending.len().min(l - sent));
                if to_server.write_all(&pending[..take]).is_err() {
                    return (sent, false);
                }
                sent += take;
                if body_limit.is_some_and(|l| sent >= l) {
                    // Cut midway: both sides see the connection drop.
                    let _ = to_server.shutdown(std::net::Shutdown::Both);
                    let _ = from_client.shutdown(std::net::Shutdown::Both);
                    return (
                        sent,
                        take < pending.len() || length.is_none_or(|len| len > sent),
                    );
                }
            }
            let mut chunk = [0u8; 16384];
            match from_client.read(&mut chunk) {
                Ok(0) | Err(_) => return (sent, false),
                Ok(n) => pending = chunk[..n].to_vec(),
            }
        }
    });
    let mut relayed = 0usize;
    let mut answer_cut = false;
    let mut chunk = [0u8; 16384];
    loop {
        let n = match server.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let take = answer_limit.map_or(n, |l| n.min(l.saturating_sub(relayed)));
        if let Some(at) = flip_at
            && (relayed..relayed + take).contains(&at)
        {
            chunk[at - relayed] ^= 0xff;
            answer_cut = true;
        }
        if client.write_all(&chunk[..take]).is_err() {
            break;
        }
        relayed += take;
        if answer_limit.is_some_and(|l| relayed >= l) {
            // Cut: was there more to relay?
            answer_cut = take < n || server.read(&mut chunk).is_ok_and(|more| more > 0);
            break;
        }
    }
    let _ = client.shutdown(std::net::Shutdown::Both);
    let _ = server.shutdown(std::net::Shutdown::Both);
    let (sent, request_cut) = upload.join().unwrap_or((0, false));
    match fault {
        Some(Fault::CutAnswerAfter(_) | Fault::FlipAnswerByte(_)) => record(relayed, answer_cut),
        Some(Fault::CutRequestAfter(_)) => record(sent, request_cut),
        _ => {}
    }
    Ok(())
}
