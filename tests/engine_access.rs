//! Engines where users have them: a dockerd with `--tlsverify` on a loopback port (certificates
//! made here with openssl), reached through `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH` and through a
//! context made by `docker context create`; an sshd on a loopback port reaching the private
//! engine over `ssh://`; the docker CLI's order of `--host`, `--context`, `DOCKER_HOST`,
//! `DOCKER_CONTEXT` and the current context; errors that say where the address came from.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{DisposableEngine, Scratch, docker_ok, stderr, stdout, unique_image};

/// Runs openssl, failing the test when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, in `dir` (`ca.pem`,
/// `server-cert.pem`, `server-key.pem`, `cert.pem`, `key.pem`).
fn certificates(dir: &Path, ca_name: &str) {
    fs::create_dir_all(dir).unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    args.extend([
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
    ]);
    let subject = format!("/CN={ca_name}");
    args.push(&subject);
    openssl(dir, &args);
    fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (key, csr, cert, cn, ext) in [
        (
            "server-key.pem",
            "server.csr",
            "server-cert.pem",
            "/CN=127.0.0.1",
            "server.ext",
        ),
        (
            "key.pem",
            "client.csr",
            "cert.pem",
            "/CN=client",
            "client.ext",
        ),
    ] {
        let mut args = vec!["req"];
        args.extend(ec);
        args.extend(["-keyout", key, "-out", csr, "-subj", cn]);
        openssl(dir, &args);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-out",
                cert,
                "-days",
                "2",
                "-extfile",
                ext,
            ],
        );
    }
}

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `toolbox` with `env` and nothing of the caller's engine settings.
fn toolbox(s: &Scratch, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = s.toolbox();
    for var in [
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "DOCKER_TLS_VERIFY",
        "DOCKER_CERT_PATH",
        "DOCKER_TLS",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args).output().unwrap()
}

/// A context with an image to build: `FROM scratch` and one file.
fn small_context(s: &Scratch) -> PathBuf {
    let ctx = s.path().join("small");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY f /f\n").unwrap();
    fs::write(ctx.join("f"), format!("{}", ctx.display())).unwrap();
    ctx
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn a_tls_engine_through_the_environment_and_through_a_context() {
    let _shared = common::engine(); // the packages and the permission to run dockerd
    let s = Scratch::new();
    let certs = s.path().join("certs");
    certificates(&certs, "toolbox-test-ca");
    let other = s.path().join("other-ca");
    certificates(&other, "another-ca");
    let port = free_port();
    let tcp = format!("tcp://127.0.0.1:{port}");
    let tlscacert = certs.join("ca.pem");
    let tlscert = certs.join("server-cert.pem");
    let tlskey = certs.join("server-key.pem");
    let engine = DisposableEngine::start(
        &s,
        &[
            "--host",
            &tcp,
            "--tlsverify",
            "--tlscacert",
            tlscacert.to_str().unwrap(),
            "--tlscert",
            tlscert.to_str().unwrap(),
            "--tlskey",
            tlskey.to_str().unwrap(),
        ],
    );
    let ctx = small_context(&s);
    let image = unique_image("tls");
    let cert_path = certs.to_str().unwrap();
    let tls_env = [
        ("DOCKER_HOST", tcp.as_str()),
        ("DOCKER_TLS_VERIFY", "1"),
        ("DOCKER_CERT_PATH", cert_path),
    ];

    // DOCKER_TLS_VERIFY and DOCKER_CERT_PATH: build, save, load, as the docker CLI would.
    let out = toolbox(
        &s,
        &[
            "build",
            &image,
            "--version",
            "1",
            "--context",
            ctx.to_str().unwrap(),
        ],
        &tls_env,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    let local = engine.host();
    let shown = docker_ok(
        &s,
        &local,
        &["image", "inspect", "-f", "{{.Id}}", &format!("{image}:1")],
    );
    assert_eq!(id, shown);
    let out = toolbox(&s, &["update-image", &image, "--version", "1"], &tls_env);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("written"), "{}", stdout(&out));

    // Plain HTTP to the TLS port, and a CA that did not sign the engine's certificate: errors
    // that say where the address came from and what failed.
    let out = toolbox(
        &s,
        &["update-image", &image, "--version", "1"],
        &[("DOCKER_HOST", tcp.as_str())],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&tcp) && err.contains("from DOCKER_HOST"),
        "{err}"
    );
    let out = toolbox(
        &s,
        &["update-image", &image, "--version", "1"],
        &[
            ("DOCKER_HOST", tcp.as_str()),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", other.to_str().unwrap()),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("certificate") && err.contains("from DOCKER_HOST"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    // A context made by the docker CLI, with its TLS material: by --context, DOCKER_CONTEXT,
    // and as the current context.
    let created = s
        .command("docker")
        .args([
            "context",
            "create",
            "tlsctx",
            "--docker",
            &format!(
                "host={tcp},ca={},cert={},key={}",
                certs.join("ca.pem").display(),
                certs.join("cert.pem").display(),
                certs.join("key.pem").display()
            ),
        ])
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", stderr(&created));
    let check = |args: &[&str], env: &[(&str, &str)]| {
        let out = toolbox(&s, args, env);
        assert!(out.status.success(), "{args:?} {env:?}: {}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["written"], false, "{v}");
    };
    check(
        &[
            "--context",
            "tlsctx",
            "update-image",
            &image,
            "--version",
            "1",
            "--json",
        ],
        &[],
    );
    check(
        &["update-image", &image, "--version", "1", "--json"],
        &[("DOCKER_CONTEXT", "tlsctx")],
    );
    let used = s
        .command("docker")
        .args(["context", "use", "tlsctx"])
        .output()
        .unwrap();
    assert!(used.status.success(), "{}", stderr(&used));
    check(&["update-image", &image, "--version", "1", "--json"], &[]);

    // The order: DOCKER_HOST beats DOCKER_CONTEXT and the current context; --host beats
    // DOCKER_HOST; --context beats DOCKER_HOST; --host with --context is wrong usage.
    let nowhere = "unix:///nonexistent/toolbox-test.sock";
    let out = toolbox(
        &s,
        &["update-image", &image, "--version", "1"],
        &[("DOCKER_HOST", nowhere), ("DOCKER_CONTEXT", "tlsctx")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("(from DOCKER_HOST)"),
        "{}",
        stderr(&out)
    );
    let out = toolbox(&s, &["-H", nowhere, "update-image", &image], &tls_env);
    assert!(stderr(&out).contains("(from --host)"), "{}", stderr(&out));
    check(
        &[
            "--context",
            "tlsctx",
            "update-image",
            &image,
            "--version",
            "1",
            "--json",
        ],
        &[("DOCKER_HOST", nowhere)],
    );
    let out = toolbox(
        &s,
        &["--context", "tlsctx", "-H", nowhere, "update-image", &image],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // A context that fails names itself and its file.
    let out = toolbox(&s, &["--context", "missing", "update-image", &image], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("`missing`"), "{}", stderr(&out));
    let out = toolbox(
        &s,
        &["update-image", &image, "--version", "1"],
        &[
            ("DOCKER_CONTEXT", "tlsctx"),
            ("DOCKER_CERT_PATH", "/nonexistent"),
        ],
    );
    assert!(
        out.status.success(),
        "a context's TLS is its own: {}",
        stderr(&out)
    );
    docker_ok(&s, &local, &["rmi", "--no-prune", &format!("{image}:1")]);
}

/// An sshd on a loopback port, for the test's lifetime, and a `Host` alias for it in root's
/// ssh config (ssh reads the password database's home, not `$HOME`), removed at the end.
struct Sshd {
    child: std::process::Child,
    alias: String,
    config: PathBuf,
    dir: PathBuf,
    /// Whether root's `~/.ssh` was made here (and goes again when left empty).
    made_ssh_dir: bool,
}

const ALIAS_BEGIN: &str = "# toolbox test alias begin";
const ALIAS_END: &str = "# toolbox test alias end";

impl Sshd {
    fn start(s: &Scratch) -> Sshd {
        let dir = s.path().join("sshd");
        fs::create_dir_all(&dir).unwrap();
        let keygen = |file: &Path| {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(file)
                .output()
                .expect("ssh-keygen (openssh-client) is installed");
            assert!(out.status.success(), "{}", stderr(&out));
        };
        keygen(&dir.join("host_key"));
        keygen(&dir.join("client_key"));
        keygen(&dir.join("stranger_key"));
        fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
        let port = free_port();
        fs::write(
            dir.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\n\
                 AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PermitRootLogin prohibit-password\nPidFile {d}/sshd.pid\n",
                d = dir.display()
            ),
        )
        .unwrap();
        fs::create_dir_all("/run/sshd").unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stderr(fs::File::create(dir.join("sshd.log")).unwrap())
            .spawn()
            .expect("sshd (openssh-server) is installed");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "sshd did not listen");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let alias = format!("toolbox-test-{}", std::process::id());
        let home = Path::new("/root/.ssh");
        let made_ssh_dir = !home.exists();
        fs::create_dir_all(home).unwrap();
        let config = home.join("config");
        let entry = |name: &str, key: &str| {
            format!(
                "Host {name}\n  HostName 127.0.0.1\n  Port {port}\n  User root\n  \
                 IdentityFile {d}/{key}\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n  \
                 UserKnownHostsFile /dev/null\n  LogLevel ERROR\n",
                d = dir.display()
            )
        };
        let block = format!(
            "{ALIAS_BEGIN} {alias}\n{}{}{ALIAS_END} {alias}\n",
            entry(&alias, "client_key"),
            entry(&format!("{alias}-stranger"), "stranger_key"),
        );
        let before = fs::read_to_string(&config).unwrap_or_default();
        // First, so that no wildcard entry of the user's comes before it.
        fs::write(&config, format!("{block}{before}")).unwrap();
        Sshd {
            child,
            alias,
            config,
            dir,
            made_ssh_dir,
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Ok(text) = fs::read_to_string(&self.config) {
            let begin = format!("{ALIAS_BEGIN} {}\n", self.alias);
            let end = format!("{ALIAS_END} {}\n", self.alias);
            if let (Some(a), Some(b)) = (text.find(&begin), text.find(&end)) {
                let kept = format!("{}{}", &text[..a], &text[b + end.len()..]);
                if kept.is_empty() {
                    let _ = fs::remove_file(&self.config);
                } else {
                    let _ = fs::write(&self.config, kept);
                }
            }
        }
        if self.made_ssh_dir
            && let Some(home) = self.config.parent()
        {
            let _ = fs::remove_dir(home); // only when left empty
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn an_engine_over_ssh() {
    let host = common::engine();
    let s = Scratch::new();
    let socket = host
        .strip_prefix("unix://")
        .expect("the private engine's socket");
    let sshd = Sshd::start(&s);
    let ctx = small_context(&s);
    let image = unique_image("ssh");
    let over_ssh = format!("ssh://{}{socket}", sshd.alias);
    // Build, save, load: every request through `ssh … docker system dial-stdio`.
    let out = toolbox(
        &s,
        &[
            "-H",
            &over_ssh,
            "build",
            &image,
            "--version",
            "1",
            "--context",
            ctx.to_str().unwrap(),
            "--network",
            "none",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    assert_eq!(
        id,
        docker_ok(
            &s,
            &host,
            &["image", "inspect", "-f", "{{.Id}}", &format!("{image}:1")]
        )
    );
    let out = toolbox(
        &s,
        &[
            "update-image",
            &image,
            "--version",
            "1",
            "--compress",
            "--json",
        ],
        &[("DOCKER_HOST", over_ssh.as_str())],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let archive = v["path"].as_str().unwrap().to_string();
    docker_ok(&s, &host, &["rmi", "--no-prune", &format!("{image}:1")]);
    let out = toolbox(&s, &["-H", &over_ssh, "load", &archive], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&id), "{}", stdout(&out));

    // A key the server does not know: ssh's own words, and where the address came from.
    let stranger = format!("ssh://{}-stranger{socket}", sshd.alias);
    let out = toolbox(
        &s,
        &["update-image", &image, "--version", "1"],
        &[("DOCKER_HOST", stranger.as_str())],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("Permission denied") && err.contains("from DOCKER_HOST"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    docker_ok(&s, &host, &["rmi", "--no-prune", &format!("{image}:1")]);
}
