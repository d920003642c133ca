//! Registry credentials where users keep them, against the htpasswd registry: `auths` in the
//! docker CLI's config file, Debian's `docker-credential-pass` (with `pass` and a throwaway GPG
//! key) as `credsStore` and in `credHelpers`; `toolbox login`/`logout` round trips, read back by
//! the docker CLI (and what `docker login` keeps, read by toolbox); the password never shown.

mod common;

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{Scratch, docker, docker_ok, ok, stderr, stdout, unique_image};

const USER: &str = "ann";
const PASSWORD: &str = "s3cret-pw-9d41";

/// A throwaway GPG key and password store, for `pass` (and so `docker-credential-pass`).
struct PassStore {
    gnupg: PathBuf,
    store: PathBuf,
}

impl PassStore {
    fn new(s: &Scratch) -> PassStore {
        let gnupg = s.path().join("gnupg");
        let store = s.path().join("password-store");
        fs::create_dir_all(&gnupg).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&gnupg, fs::Permissions::from_mode(0o700)).unwrap();
        let p = PassStore { gnupg, store };
        let out = p
            .command(s, "gpg")
            .args([
                "--batch",
                "--passphrase",
                "",
                "--quick-gen-key",
                "toolbox test <toolbox@test.invalid>",
                "default",
                "default",
                "never",
            ])
            .output()
            .expect("gpg (gnupg) is installed");
        assert!(out.status.success(), "gpg: {}", stderr(&out));
        let out = p
            .command(s, "gpg")
            .args(["--batch", "--list-keys", "--with-colons"])
            .output()
            .unwrap();
        let listing = stdout(&out);
        let fingerprint = listing
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .expect("the new key's fingerprint")
            .to_string();
        let out = p
            .command(s, "pass")
            .args(["init", &fingerprint])
            .output()
            .expect("pass is installed");
        assert!(out.status.success(), "pass init: {}", stderr(&out));
        p
    }

    /// `program` with the test's home and this store.
    fn command(&self, s: &Scratch, program: &str) -> Command {
        let mut cmd = s.command(program);
        cmd.env("GNUPGHOME", &self.gnupg)
            .env("PASSWORD_STORE_DIR", &self.store);
        cmd
    }

    /// What `docker-credential-pass list` knows: server → user.
    fn list(&self, s: &Scratch) -> serde_json::Value {
        let out = self
            .command(s, "docker-credential-pass")
            .arg("list")
            .output()
            .expect("docker-credential-pass (golang-docker-credential-helpers) is installed");
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for PassStore {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .args(["--kill", "gpg-agent"])
            .env("GNUPGHOME", &self.gnupg)
            .status();
    }
}

/// Runs `cmd` with `input` on stdin.
fn with_stdin(mut cmd: Command, input: &str) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A program that fails before reading is judged by its output.
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    child.wait_with_output().unwrap()
}

/// Fails when the password shows in `out`.
fn no_password(out: &std::process::Output) {
    assert!(
        !stdout(out).contains(PASSWORD) && !stderr(out).contains(PASSWORD),
        "the password shows"
    );
}

/// The docker CLI config file of the scratch's home.
fn docker_config(s: &Scratch) -> PathBuf {
    s.home().join(".docker/config.json")
}

fn write_config(s: &Scratch, json: &str) {
    let path = docker_config(s);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, json).unwrap();
}

/// An image saved into the artifacts directory; the archive's path.
fn archive(s: &Scratch, host: &str) -> (String, String) {
    let image = unique_image("cred");
    let ctx = common::scratch_context(s.path(), &image, "");
    let id = common::build(s, host, &image, "1.0", &ctx);
    ok(common::toolbox(
        s,
        host,
        &["update-image", &image, "--version", "1.0"],
    ));
    (
        image.clone(),
        format!("artifacts/{image}_1.0_{}.docker", &id[7..19]),
    )
}

#[test]
#[cfg_attr(
    toolbox_skip_service_tests,
    ignore = "TOOLBOX_SKIP_SERVICE_TESTS=1: needs an engine/registry"
)]
fn logins_and_credential_helpers_as_the_docker_cli_keeps_them() {
    let host = common::engine();
    let registry = common::TestRegistry::start(Some((USER, PASSWORD)));
    let r = registry.host.clone();
    let s = Scratch::new();
    // The scratch's home holds the docker CLI's config (DOCKER_CONFIG points there).
    let config_dir = docker_config(&s).parent().unwrap().to_path_buf();
    let (image, archive) = archive(&s, &host);
    let pass = PassStore::new(&s);
    let toolbox = |args: &[&str]| {
        let mut cmd = s.toolbox_std();
        cmd.env("DOCKER_CONFIG", &config_dir)
            .env("GNUPGHOME", &pass.gnupg)
            .env("PASSWORD_STORE_DIR", &pass.store)
            .env("DOCKER_HOST", &host)
            .args(args);
        cmd
    };
    let login = |password: &str| {
        let out = with_stdin(
            toolbox(&["login", &r, "--username", USER, "--password-stdin"]),
            &format!("{password}\n"),
        );
        no_password(&out);
        out
    };
    let push = |tag: &str| {
        let out = toolbox(&["push", &archive, &format!("{r}/team/{image}:{tag}")])
            .output()
            .unwrap();
        no_password(&out);
        out
    };
    let docker_cli = || {
        let mut cmd = docker(&s, &host);
        cmd.env("DOCKER_CONFIG", &config_dir)
            .env("GNUPGHOME", &pass.gnupg)
            .env("PASSWORD_STORE_DIR", &pass.store);
        cmd
    };
    let docker_pull = |tag: &str| {
        let reference = format!("{r}/team/{image}:{tag}");
        let out = docker_cli().args(["pull", &reference]).output().unwrap();
        assert!(out.status.success(), "docker pull: {}", stderr(&out));
        docker_ok(&s, &host, &["rmi", "--no-prune", &reference]);
    };

    // 1. auths: a wrong password keeps nothing; the right one is kept in config.json (0600),
    //    pushes, and the docker CLI pulls with it; logout forgets it.
    fs::create_dir_all(&config_dir).unwrap();
    let out = login("wrong-password");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("refused the credentials"),
        "{}",
        stderr(&out)
    );
    assert!(!docker_config(&s).exists(), "nothing kept after a refusal");
    let out = login(PASSWORD);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Login Succeeded\n");
    assert!(stderr(&out).contains("auths in"), "{}", stderr(&out));
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(docker_config(&s))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let kept: serde_json::Value =
        serde_json::from_slice(&fs::read(docker_config(&s)).unwrap()).unwrap();
    assert!(kept["auths"][&r]["auth"].is_string(), "{kept}");
    let out = push("auths");
    assert!(out.status.success(), "{}", stderr(&out));
    docker_pull("auths");
    let out = toolbox(&["logout", &r]).output().unwrap();
    assert_eq!(
        stdout(&out),
        format!("Removing login credentials for {r}\n")
    );
    let out = push("gone");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("asks for credentials"),
        "{}",
        stderr(&out)
    );
    let out = toolbox(&["logout", &r]).output().unwrap();
    assert_eq!(stdout(&out), format!("Not logged in to {r}\n"));

    // 2. credsStore: kept by docker-credential-pass, not in the file; pushes; the docker CLI
    //    pulls with it; what `docker login` keeps there, toolbox uses; logout erases it.
    write_config(&s, r#"{"credsStore": "pass"}"#);
    let out = login("wrong-password");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        pass.list(&s).get(&r).is_none(),
        "nothing kept after a refusal"
    );
    let out = login(PASSWORD);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("docker-credential-pass (credsStore in"),
        "{}",
        stderr(&out)
    );
    assert_eq!(pass.list(&s)[&r], USER);
    let file = fs::read_to_string(docker_config(&s)).unwrap();
    assert!(!file.contains(PASSWORD) && file.contains(&r), "{file}");
    let out = push("store");
    assert!(out.status.success(), "{}", stderr(&out));
    docker_pull("store");
    let out = toolbox(&["logout", &r]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(pass.list(&s).get(&r).is_none(), "logout erased it");
    let mut by_docker = docker_cli();
    by_docker.args(["login", &r, "--username", USER, "--password-stdin"]);
    let out = with_stdin(by_docker, PASSWORD);
    assert!(out.status.success(), "docker login: {}", stderr(&out));
    let out = push("docker-login");
    assert!(out.status.success(), "{}", stderr(&out));

    // 3. credHelpers names the helper for this registry only.
    write_config(&s, &format!(r#"{{"credHelpers": {{"{r}": "pass"}}}}"#));
    let out = push("helpers");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = toolbox(&["logout", &r]).output().unwrap();
    assert_eq!(
        stdout(&out),
        format!("Removing login credentials for {r}\n")
    );
    let out = login(PASSWORD);
    assert!(
        stderr(&out).contains("docker-credential-pass (credHelpers in"),
        "{}",
        stderr(&out)
    );
    docker_pull("helpers");

    // 4. A helper that is not there: named, with where it was named, exit 1.
    write_config(&s, r#"{"credsStore": "nosuch"}"#);
    let out = push("nosuch");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("docker-credential-nosuch") && err.contains("credsStore in"),
        "{err}"
    );

    // On a terminal, with no flags: asked for, the password never echoed.
    write_config(&s, "{}");
    // `script` gives toolbox a terminal; each answer is typed once its prompt shows.
    let mut child = s
        .command("script")
        .args([
            "-qefc",
            &format!("{} login {r}", env!("CARGO_BIN_EXE_toolbox")),
            "/dev/null",
        ])
        .env("DOCKER_CONFIG", &config_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (bsdutils) is installed");
    let shown = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut screen_out = child.stdout.take().unwrap();
    let reader = {
        let shown = shown.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut screen_out, &mut buf) {
                if n == 0 {
                    break;
                }
                shown.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let mut keyboard = child.stdin.take().unwrap();
    for (prompt, answer) in [("Username:", USER), ("Password:", PASSWORD)] {
        common::wait_until(
            &format!("the prompt {prompt}"),
            std::time::Duration::from_secs(120),
            || String::from_utf8_lossy(&shown.lock().unwrap()).contains(prompt),
        );
        writeln!(keyboard, "{answer}").unwrap();
    }
    common::wait_until(
        "the login to end",
        std::time::Duration::from_secs(120),
        || reader.is_finished(),
    );
    drop(keyboard);
    let out = std::process::Output {
        status: child.wait().unwrap(),
        stdout: shown.lock().unwrap().clone(),
        stderr: Vec::new(),
    };
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(
        screen.contains("Username:") && screen.contains("Password:"),
        "{screen}"
    );
    assert!(screen.contains("Login Succeeded"), "{screen}");
    assert!(
        !screen.contains(PASSWORD),
        "the password was echoed: {screen}"
    );
    let kept: serde_json::Value =
        serde_json::from_slice(&fs::read(docker_config(&s)).unwrap()).unwrap();
    assert!(kept["auths"][&r]["auth"].is_string(), "{kept}");

    // Wrong usage: --password-stdin without a user, no terminal to ask on.
    let out = with_stdin(toolbox(&["login", &r, "--password-stdin"]), PASSWORD);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = with_stdin(toolbox(&["login", &r]), "");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
