//! The docker CLI's own files, read (and, for logins, written) as the docker CLI does: its
//! config file (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`: `currentContext`,
//! `auths`, `credsStore`, `credHelpers`) and its context store (`contexts/meta/<sha256 of the
//! name>/meta.json`, TLS material under `contexts/tls/<sha256 of the name>/docker/`).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Why the docker CLI's files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DockerCliError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: not the docker CLI's JSON: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
    #[error(
        "docker context `{name}` does not exist in {}: create it with `docker context create \
         {name} --docker host=…`, or choose another (`docker context ls`)",
        store.display()
    )]
    NoSuchContext { name: String, store: PathBuf },
    #[error("docker context `{name}` ({}) has no docker endpoint", path.display())]
    NoDockerEndpoint { name: String, path: PathBuf },
    #[error("credential helper docker-credential-{helper} ({origin}): {reason}")]
    Helper {
        helper: String,
        origin: String,
        reason: String,
    },
}

type Result<T> = std::result::Result<T, DockerCliError>;

/// The docker CLI's config file, as far as toolbox reads it; unknown keys are kept when it is
/// written back.
#[derive(Debug, Clone, Default)]
pub struct DockerConfig {
    /// Where it lives (it may not exist yet).
    pub path: PathBuf,
    /// The whole document.
    pub doc: serde_json::Map<String, Value>,
}

impl DockerConfig {
    /// Reads `dir/config.json`; a missing file is an empty config.
    pub fn load(dir: &Path) -> Result<DockerConfig> {
        let path = dir.join("config.json");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(DockerConfig {
                    path,
                    doc: Default::default(),
                });
            }
            Err(source) => return Err(DockerCliError::Read { path, source }),
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(DockerConfig {
                path,
                doc: Default::default(),
            });
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(doc)) => Ok(DockerConfig { path, doc }),
            Ok(_) => Err(DockerCliError::Malformed {
                path,
                reason: "not a JSON object".into(),
            }),
            Err(e) => Err(DockerCliError::Malformed {
                path,
                reason: e.to_string(),
            }),
        }
    }

    fn text(&self, key: &str) -> Option<&str> {
        self.doc
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// `currentContext`.
    pub fn current_context(&self) -> Option<&str> {
        self.text("currentContext")
    }

    /// `credsStore`: the helper that keeps every registry's credentials.
    pub fn creds_store(&self) -> Option<&str> {
        self.text("credsStore")
    }

    /// `credHelpers`: a helper per registry.
    pub fn cred_helpers(&self) -> BTreeMap<String, String> {
        self.doc
            .get("credHelpers")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `auths`.
    pub fn auths(&self) -> serde_json::Map<String, Value> {
        self.doc
            .get("auths")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }

    /// Replaces `auths`.
    pub fn set_auths(&mut self, auths: serde_json::Map<String, Value>) {
        self.doc.insert("auths".into(), Value::Object(auths));
    }

    /// Writes the file atomically (a temporary file beside it, fsync, rename), mode 0600.
    pub fn save(&self) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let failed = |source: io::Error| DockerCliError::Read {
            path: self.path.clone(),
            source,
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(failed)?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".config.json.")
            .tempfile_in(dir)
            .map_err(failed)?;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(failed)?;
        let text = serde_json::to_string_pretty(&Value::Object(self.doc.clone()))
            .map_err(|e| failed(io::Error::other(e)))?;
        tmp.write_all(text.as_bytes()).map_err(failed)?;
        tmp.write_all(b"\n").map_err(failed)?;
        tmp.as_file().sync_all().map_err(failed)?;
        tmp.persist(&self.path).map_err(|e| failed(e.error))?;
        Ok(())
    }
}

/// A docker context's docker endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEndpoint {
    /// The context's name.
    pub name: String,
    /// `Host`: `unix://…`, `tcp://…`, `ssh://…`.
    pub host: String,
    /// `SkipTLSVerify`.
    pub skip_tls_verify: bool,
    /// The folder holding the context's `ca.pem`, `cert.pem`, `key.pem`, when it has any.
    pub tls_dir: Option<PathBuf>,
    /// The context's `meta.json`.
    pub meta: PathBuf,
}

/// The docker endpoint of context `name` in the context store of the config folder `dir`.
pub fn context_endpoint(dir: &Path, name: &str) -> Result<ContextEndpoint> {
    let id = hex(&Sha256::digest(name.as_bytes()));
    let store = dir.join("contexts");
    let meta = store.join("meta").join(&id).join("meta.json");
    let bytes = match std::fs::read(&meta) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(DockerCliError::NoSuchContext {
                name: name.to_string(),
                store: store.join("meta"),
            });
        }
        Err(source) => return Err(DockerCliError::Read { path: meta, source }),
    };
    let doc: Value = serde_json::from_slice(&bytes).map_err(|e| DockerCliError::Malformed {
        path: meta.clone(),
        reason: e.to_string(),
    })?;
    let docker = doc
        .get("Endpoints")
        .and_then(|e| e.get("docker"))
        .ok_or_else(|| DockerCliError::NoDockerEndpoint {
            name: name.to_string(),
            path: meta.clone(),
        })?;
    let host = docker
        .get("Host")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let tls = store.join("tls").join(&id).join("docker");
    Ok(ContextEndpoint {
        name: name.to_string(),
        host,
        skip_tls_verify: docker
            .get("SkipTLSVerify")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        tls_dir: tls.is_dir().then_some(tls),
        meta,
    })
}

/// The key Docker Hub's credentials are kept under.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// The key a registry's credentials are kept under, as `docker login` keeps them: Docker
/// Hub's special server key, else `HOST[:PORT]`.
pub fn server_key(registry: &str) -> String {
    let host = registry
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    if is_docker_hub(host) {
        DOCKER_HUB_KEY.to_string()
    } else {
        host.to_string()
    }
}

fn is_docker_hub(host: &str) -> bool {
    matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    )
}

/// Whether `key` (of `auths` or `credHelpers`) names `registry`'s server.
fn names_server(key: &str, registry: &str) -> bool {
    server_key(key) == server_key(registry)
}

/// Credentials found for a registry, and where.
#[derive(Clone)]
pub struct FoundCredentials {
    pub username: String,
    /// The password, or an identity token (an OAuth2 refresh token) when `identity_token`.
    pub secret: String,
    pub identity_token: bool,
    /// Where they came from, in words (never the secret).
    pub origin: String,
}

impl std::fmt::Debug for FoundCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("FoundCredentials")
            .field("username", &self.username)
            .field("origin", &self.origin)
            .finish()
    }
}

/// Where a registry's credentials are kept: a helper (and why: `credHelpers` or `credsStore`),
/// or the config file's `auths`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keeper {
    Helper { name: String, origin: String },
    Auths,
}

impl DockerConfig {
    /// Where `registry`'s credentials are kept, as the docker CLI decides: `credHelpers` for
    /// the registry, else `credsStore`, else `auths`.
    pub fn keeper(&self, registry: &str) -> Keeper {
        let file = self.path.display();
        if let Some((_, name)) = self
            .cred_helpers()
            .into_iter()
            .find(|(key, _)| names_server(key, registry))
        {
            return Keeper::Helper {
                name,
                origin: format!("credHelpers in {file}"),
            };
        }
        match self.creds_store() {
            Some(name) => Keeper::Helper {
                name: name.to_string(),
                origin: format!("credsStore in {file}"),
            },
            None => Keeper::Auths,
        }
    }

    /// `registry`'s credentials, as the docker CLI finds them: from its helper, else from
    /// `auths` (`auth`, base64 `user:password`, or `username`/`password`, or `identitytoken`).
    pub fn credentials(&self, registry: &str) -> Result<Option<FoundCredentials>> {
        if let Keeper::Helper { name, origin } = self.keeper(registry)
            && let Some(found) = helper_get(&name, &origin, &server_key(registry))?
        {
            return Ok(Some(found));
        }
        let auths = self.auths();
        let Some((_, entry)) = auths.iter().find(|(key, _)| names_server(key, registry)) else {
            return Ok(None);
        };
        let origin = format!("auths in {}", self.path.display());
        let text = |k: &str| entry.get(k).and_then(Value::as_str).unwrap_or_default();
        let (mut username, mut secret) =
            (text("username").to_string(), text("password").to_string());
        if !text("auth").is_empty() {
            use base64::Engine as _;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(text("auth").trim())
                .map_err(|e| DockerCliError::Malformed {
                    path: self.path.clone(),
                    reason: format!("auths: the auth of {registry} is not base64: {e}"),
                })?;
            let decoded = String::from_utf8_lossy(&decoded).into_owned();
            if let Some((u, p)) = decoded.split_once(':') {
                username = u.to_string();
                secret = p.to_string();
            }
        }
        if !text("identitytoken").is_empty() {
            return Ok(Some(FoundCredentials {
                username,
                secret: text("identitytoken").to_string(),
                identity_token: true,
                origin,
            }));
        }
        if username.is_empty() && secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(FoundCredentials {
            username,
            secret,
            identity_token: false,
            origin,
        }))
    }

    /// Keeps `username` and `password` for `registry` as `docker login` does: in its helper
    /// (the config file then names the server in `auths` with no secret), else in `auths`;
    /// the file is written atomically with mode 0600. Returns where they went, in words.
    pub fn store(&mut self, registry: &str, username: &str, password: &str) -> Result<String> {
        let key = server_key(registry);
        let mut auths = self.auths();
        let stored = match self.keeper(registry) {
            Keeper::Helper { name, origin } => {
                let payload = serde_json::json!({
                    "ServerURL": key,
                    "Username": username,
                    "Secret": password,
                });
                helper_run(&name, &origin, "store", &payload.to_string())?;
                auths.insert(key.clone(), Value::Object(Default::default()));
                format!("docker-credential-{name} ({origin})")
            }
            Keeper::Auths => {
                use base64::Engine as _;
                let auth = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                auths.insert(key.clone(), serde_json::json!({ "auth": auth }));
                format!("auths in {}", self.path.display())
            }
        };
        self.set_auths(auths);
        self.save()?;
        Ok(stored)
    }

    /// Forgets `registry`'s credentials (its helper's and `auths`'); whether there were any.
    pub fn erase(&mut self, registry: &str) -> Result<bool> {
        let key = server_key(registry);
        let mut had = false;
        if let Keeper::Helper { name, origin } = self.keeper(registry) {
            had |= helper_get(&name, &origin, &key)?.is_some();
            if had {
                helper_run(&name, &origin, "erase", &key)?;
            }
        }
        let mut auths = self.auths();
        let keys: Vec<String> = auths
            .keys()
            .filter(|k| names_server(k, registry))
            .cloned()
            .collect();
        for k in &keys {
            had |= auths
                .get(k)
                .and_then(Value::as_object)
                .is_some_and(|o| !o.is_empty());
            auths.remove(k);
        }
        if !keys.is_empty() {
            self.set_auths(auths);
            self.save()?;
        }
        Ok(had)
    }
}

/// `docker-credential-NAME get`: `None` when the helper has nothing for `server`.
fn helper_get(name: &str, origin: &str, server: &str) -> Result<Option<FoundCredentials>> {
    let out = match helper_run(name, origin, "get", server) {
        Ok(out) => out,
        Err(DockerCliError::Helper { reason, .. })
            if reason
                .to_ascii_lowercase()
                .contains("credentials not found") =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let doc: Value = serde_json::from_str(&out).map_err(|e| DockerCliError::Helper {
        helper: name.to_string(),
        origin: origin.to_string(),
        reason: format!("`get` did not answer JSON: {e}"),
    })?;
    let text = |k: &str| {
        doc.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (username, secret) = (text("Username"), text("Secret"));
    if secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(FoundCredentials {
        identity_token: username == "<token>",
        username,
        secret,
        origin: format!("docker-credential-{name} ({origin})"),
    }))
}

/// Runs `docker-credential-NAME VERB` with `input` on stdin; its stdout.
fn helper_run(name: &str, origin: &str, verb: &str, input: &str) -> Result<String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let failed = |reason: String| DockerCliError::Helper {
        helper: name.to_string(),
        origin: origin.to_string(),
        reason,
    };
    let program = format!("docker-credential-{name}");
    let mut child = Command::new(&program)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => failed(format!(
                "{program} is not installed (not on PATH): install it, or change the docker \
                 CLI's config file"
            )),
            _ => failed(format!("cannot run {program}: {e}")),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading is judged by its answer below.
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(format!("{program} {verb}: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        // Helpers say why on stdout (the protocol) or stderr; neither holds the secret.
        let said = if stdout.is_empty() {
            String::from_utf8_lossy(&out.stderr).trim().to_string()
        } else {
            stdout
        };
        let said = said.lines().last().unwrap_or_default().to_string();
        return Err(failed(format!("`{verb}` failed: {said}")));
    }
    Ok(stdout)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_are_found_by_the_digest_of_their_name() {
        let d = tempfile::tempdir().unwrap();
        // The hex sha256 of the name, as the docker CLI names the folder.
        let id = hex(&Sha256::digest(b"ci"));
        assert_eq!(id.len(), 64);
        let meta = d.path().join("contexts/meta").join(&id);
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            r#"{"Name":"ci","Metadata":{},"Endpoints":{"docker":{"Host":"tcp://10.0.0.5:2376","SkipTLSVerify":false}}}"#,
        )
        .unwrap();
        std::fs::create_dir_all(d.path().join("contexts/tls").join(&id).join("docker")).unwrap();
        let e = context_endpoint(d.path(), "ci").unwrap();
        assert_eq!(e.host, "tcp://10.0.0.5:2376");
        assert!(!e.skip_tls_verify);
        assert!(e.tls_dir.is_some());
        let err = context_endpoint(d.path(), "nope").unwrap_err().to_string();
        assert!(
            err.contains("`nope`") && err.contains("docker context create"),
            "{err}"
        );
    }

    #[test]
    fn the_config_file_is_read_and_written_keeping_what_it_holds() {
        let d = tempfile::tempdir().unwrap();
        assert!(DockerConfig::load(d.path()).unwrap().doc.is_empty());
        std::fs::write(
            d.path().join("config.json"),
            r#"{"currentContext":"ci","credsStore":"pass","credHelpers":{"r.local:5000":"pass"},"psFormat":"x"}"#,
        )
        .unwrap();
        let mut c = DockerConfig::load(d.path()).unwrap();
        assert_eq!(c.current_context(), Some("ci"));
        assert_eq!(c.creds_store(), Some("pass"));
        assert_eq!(c.cred_helpers()["r.local:5000"], "pass");
        let mut auths = serde_json::Map::new();
        auths.insert("r:1".into(), serde_json::json!({"auth": "dTpw"}));
        c.set_auths(auths);
        c.save().unwrap();
        let again = DockerConfig::load(d.path()).unwrap();
        assert_eq!(again.doc["psFormat"], "x");
        assert_eq!(again.auths()["r:1"]["auth"], "dTpw");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.path().join("config.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(d.path().join("config.json"), "{not json").unwrap();
        assert!(DockerConfig::load(d.path()).is_err());
    }

    #[test]
    fn credentials_from_auths_as_the_docker_cli_reads_them() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("config.json"),
            r#"{"auths":{"https://127.0.0.1:5000":{"auth":"YW5uOnMzY3JldA=="},
                "https://index.docker.io/v1/":{"username":"bo","password":"pw"},
                "r.local":{"identitytoken":"tok"}}}"#,
        )
        .unwrap();
        let c = DockerConfig::load(d.path()).unwrap();
        let found = c.credentials("127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(
            (found.username.as_str(), found.secret.as_str()),
            ("ann", "s3cret")
        );
        assert!(found.origin.starts_with("auths in"), "{}", found.origin);
        assert!(!format!("{found:?}").contains("s3cret"));
        assert!(c.credentials("127.0.0.1:5001").unwrap().is_none());
        for hub in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
            assert_eq!(c.credentials(hub).unwrap().unwrap().username, "bo");
        }
        assert!(c.credentials("r.local").unwrap().unwrap().identity_token);
        assert_eq!(server_key("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(server_key("https://r.local:5000/v2/"), "r.local:5000");
    }

    #[test]
    fn helpers_are_chosen_per_registry_then_for_all() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("config.json"),
            r#"{"credsStore":"store-all","credHelpers":{"r.local:5000":"just-one"}}"#,
        )
        .unwrap();
        let c = DockerConfig::load(d.path()).unwrap();
        assert!(
            matches!(c.keeper("r.local:5000"), Keeper::Helper { name, .. } if name == "just-one")
        );
        assert!(matches!(c.keeper("other"), Keeper::Helper { name, .. } if name == "store-all"));
        let err = c.credentials("other").unwrap_err().to_string();
        assert!(
            err.contains("docker-credential-store-all") && err.contains("not installed"),
            "{err}"
        );
        assert_eq!(DockerConfig::default().keeper("x"), Keeper::Auths);
    }
}
