//! The shared harness of the end-to-end tests: runs the real `toolbox` binary in a scratch
//! directory with a clean environment.
#![allow(dead_code)]

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use assert_cmd::Command;

pub const ID: &str = "0123456789ab";

/// A scratch working directory with an `artifacts/` folder.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        let dir = tempfile::tempdir().expect("a temporary directory");
        fs::create_dir(dir.path().join("artifacts")).unwrap();
        Scratch { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn artifacts(&self) -> PathBuf {
        self.path().join("artifacts")
    }

    /// `toolbox` run in the scratch directory, with no toolbox variable from the outside.
    pub fn toolbox(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_toolbox"));
        cmd.current_dir(self.path())
            .env_remove("TOOLBOX_ARTIFACTS_DIR")
            .env_remove("TOOLBOX_DOCKER_API_TIMEOUT");
        cmd
    }

    /// Creates an empty file under `artifacts/` whose modification time is `age_s` seconds
    /// before a fixed instant.
    pub fn touch(&self, rel: &str, age_s: u64) -> PathBuf {
        self.write(rel, b"", age_s)
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

    /// Every file below `artifacts/`, hidden ones included, relative and sorted.
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
        } else {
            out.push(
                path.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
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
