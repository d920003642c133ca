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
}
