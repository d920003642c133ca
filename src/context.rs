//! The build context as the engine receives it: a tar of the context folder without what
//! `.dockerignore` excludes (see [`crate::ignore`]), written as the docker CLI writes it —
//! folders before what they hold, entries in name order, links kept as links, an excluded
//! folder walked only when an exception can reach inside it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::ignore::{Ignore, IgnoreError, Parent};
use crate::io_error::{IoContext, IoError};

/// Why the context could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error(transparent)]
    Ignore(#[from] IgnoreError),

    #[error(transparent)]
    Io(#[from] IoError),
}

type Result<T> = std::result::Result<T, ContextError>;

/// The context's own ignore file.
pub const IGNORE_FILE: &str = ".dockerignore";

/// The ignore file in force for a build of `context` with `dockerfile` (a path, or the
/// context's `Dockerfile` when `None`): `<Dockerfile>.dockerignore` beside the Dockerfile when
/// it exists (as BuildKit reads it), else the context's `.dockerignore` when it exists.
pub fn ignore_file(context: &Path, dockerfile: Option<&Path>) -> Option<PathBuf> {
    let dockerfile = dockerfile.map_or_else(|| context.join("Dockerfile"), Path::to_path_buf);
    let mut beside = dockerfile.into_os_string();
    beside.push(".dockerignore");
    let beside = PathBuf::from(beside);
    [beside, context.join(IGNORE_FILE)]
        .into_iter()
        .find(|p| p.is_file())
}

/// Reads the patterns in force (none when there is no ignore file), keeping `always` (the
/// Dockerfile's path in the context, `.dockerignore`) in the context whatever they say.
pub fn patterns(context: &Path, dockerfile: Option<&Path>, always: &[&str]) -> Result<Ignore> {
    let Some(file) = ignore_file(context, dockerfile) else {
        return Ok(Ignore::default());
    };
    let text = fs::read(&file).at(&file)?;
    let text = String::from_utf8_lossy(&text);
    Ok(Ignore::parse(&text, &file)?.keeping(always))
}

/// What goes into the context's tar, found before anything is sent: every entry (its path on
/// disk, its name in the tar, and its size when it is a file), the bytes of its files, and how
/// many folders were read.
#[derive(Debug, Default)]
pub struct Plan {
    pub entries: Vec<(PathBuf, String, u64)>,
    pub bytes: u64,
    pub folders_read: usize,
}

/// Walks the context folder `context`, leaving out what `ignore` excludes, and checks that
/// every file that goes can be opened: an unreadable file is an error before anything is sent,
/// as with the docker CLI.
pub fn plan(context: &Path, ignore: &Ignore) -> Result<Plan> {
    let mut plan = Plan::default();
    walk(&mut plan, context, "", &Parent::default(), ignore)?;
    Ok(plan)
}

/// Appends what `plan` lists to `tar`, calling `sent` with the bytes of each file written.
pub fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    plan: &Plan,
    sent: &mut dyn FnMut(u64),
) -> Result<()> {
    for (path, name, size) in &plan.entries {
        tar.append_path_with_name(path, name).at(path)?;
        sent(*size);
    }
    Ok(())
}

fn walk(plan: &mut Plan, dir: &Path, rel: &str, parent: &Parent, ignore: &Ignore) -> Result<()> {
    plan.folders_read += 1;
    let mut entries: Vec<fs::DirEntry> = fs::read_dir(dir)
        .at(dir)?
        .collect::<std::io::Result<_>>()
        .at(dir)?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let child = if rel.is_empty() {
            name.into_owned()
        } else {
            format!("{rel}/{name}")
        };
        let kind = entry.file_type().at(&path)?;
        let (excluded, info) = ignore.excludes(&child, parent);
        if excluded {
            // An excluded folder is walked only when an exception may bring back what is in it.
            if kind.is_dir() && ignore.may_reach_inside(&child) {
                walk(plan, &path, &child, &info, ignore)?;
            }
            continue;
        }
        let mut size = 0;
        if kind.is_file() {
            // Readable now, or the build stops before anything is sent.
            let file = fs::File::open(&path).at(&path)?;
            size = file.metadata().at(&path)?.len();
            plan.bytes += size;
        }
        if kind.is_dir() || kind.is_file() || kind.is_symlink() {
            plan.entries.push((path.clone(), child.clone(), size));
        }
        if kind.is_dir() {
            walk(plan, &path, &child, &info, ignore)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names in the tar, and how many folders were read.
    fn names(context: &Path, ignore: &Ignore) -> (Vec<String>, usize) {
        let plan = plan(context, ignore).unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        let mut sent = 0;
        append(&mut tar, &plan, &mut |n| sent += n).unwrap();
        assert_eq!(sent, plan.bytes);
        let bytes = tar.into_inner().unwrap();
        let names = tar::Archive::new(&bytes[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        (names, plan.folders_read)
    }

    #[test]
    fn excluded_folders_are_not_walked_and_exceptions_come_back() {
        let d = tempfile::tempdir().unwrap();
        let c = d.path();
        for f in [
            "Dockerfile",
            ".dockerignore",
            "app/main.rs",
            "docs/keep.md",
            "docs/drop.md",
            "node_modules/a/b.js",
            ".git/HEAD",
        ] {
            fs::create_dir_all(c.join(f).parent().unwrap()).unwrap();
            fs::write(c.join(f), f).unwrap();
        }
        fs::write(
            c.join(".dockerignore"),
            "*\n!app\n!docs/keep.md\nnode_modules\n",
        )
        .unwrap();
        let ignore = patterns(c, None, &["Dockerfile", IGNORE_FILE]).unwrap();
        let (got, read) = names(c, &ignore);
        // The root, app and docs (an exception names a file in it); not node_modules or .git.
        assert_eq!(read, 3);
        assert_eq!(
            got,
            vec![
                ".dockerignore",
                "Dockerfile",
                "app",
                "app/main.rs",
                "docs/keep.md"
            ]
        );
    }

    #[test]
    fn the_dockerfiles_own_ignore_file_wins() {
        let d = tempfile::tempdir().unwrap();
        let c = d.path();
        fs::write(c.join(".dockerignore"), "a\n").unwrap();
        fs::create_dir(c.join("build")).unwrap();
        fs::write(c.join("build/Dockerfile"), "FROM scratch\n").unwrap();
        fs::write(c.join("build/Dockerfile.dockerignore"), "b\n").unwrap();
        assert_eq!(
            ignore_file(c, Some(&c.join("build/Dockerfile"))),
            Some(c.join("build/Dockerfile.dockerignore"))
        );
        assert_eq!(ignore_file(c, None), Some(c.join(".dockerignore")));
        fs::write(c.join(".dockerignore"), "ok\n[bad\n").unwrap();
        let e = patterns(c, None, &[]).unwrap_err();
        assert!(e.to_string().contains(".dockerignore:2:"), "{e}");
    }
}
