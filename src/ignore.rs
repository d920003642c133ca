//! `.dockerignore`, exactly as Docker applies it: the file is read as BuildKit's `ignorefile`
//! reads it (comments, blank lines, a leading `!`, patterns cleaned like Go's `filepath.Clean`,
//! a leading `/` dropped), and paths are matched as moby's `patternmatcher` matches them (Go's
//! `filepath.Match` syntax plus `**`, a pattern that matches a parent folder matches what is
//! under it, the last matching line wins).
//!
//! Written here rather than taken from a crate: the `ignore` and `globset` crates implement
//! gitignore's rules, which differ from Docker's (gitignore patterns without `/` match at any
//! depth, Docker's do not; `**` and exceptions under excluded folders differ too), and the
//! point of this module is to send exactly what `docker build` sends.

use std::fmt;
use std::path::{Path, PathBuf};

use regex::Regex;

/// A `.dockerignore` line that is not a valid pattern.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: `{pattern}` is not a valid pattern: {reason}", file.display())]
pub struct IgnoreError {
    pub file: PathBuf,
    pub line: usize,
    pub pattern: String,
    pub reason: String,
}

/// How one cleaned pattern matches a slash-separated path.
#[derive(Debug, Clone)]
enum Matcher {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Regex(Regex),
}

/// One pattern: an exclusion (a plain line) or an exception (`!`).
#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    exception: bool,
    matcher: Matcher,
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Exact(p) => path == p,
            Matcher::Prefix(p) => path.starts_with(p.as_str()),
            Matcher::Suffix(suffix) => {
                path.ends_with(suffix.as_str()) || (suffix.starts_with('/') && path == &suffix[1..])
            }
            Matcher::Regex(re) => re.is_match(path),
        }
    }

    /// Whether the pattern, or one of its parent folders, matches `path`.
    fn matches_or_parent(&self, path: &str) -> bool {
        if self.matches(path) {
            return true;
        }
        let mut end = 0;
        let parents: Vec<&str> = match path.rfind('/') {
            Some(last) => path[..last].split('/').collect(),
            None => return false,
        };
        for (i, part) in parents.iter().enumerate() {
            end += part.len() + usize::from(i > 0);
            if self.matches(&path[..end]) {
                return true;
            }
        }
        false
    }
}

/// The patterns of a `.dockerignore` file, in order.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

impl fmt::Display for Ignore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self
            .patterns
            .iter()
            .map(|p| {
                if p.exception {
                    format!("!{}", p.text)
                } else {
                    p.text.clone()
                }
            })
            .collect();
        f.write_str(&lines.join("\n"))
    }
}

/// What the matcher knows of a folder's match, passed down to what is inside it: for each
/// pattern, whether the folder (or one above it) matched.
#[derive(Debug, Clone, Default)]
pub struct Parent {
    matched: Vec<bool>,
}

impl Ignore {
    /// Reads the text of a `.dockerignore` file (`file` names it in errors).
    pub fn parse(text: &str, file: &Path) -> Result<Ignore, IgnoreError> {
        let mut patterns = Vec::new();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, rest) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let error = |reason: &str| IgnoreError {
                file: file.to_path_buf(),
                line: n + 1,
                pattern: raw.trim().to_string(),
                reason: reason.to_string(),
            };
            if rest.is_empty() {
                return Err(error("`!` alone excludes nothing"));
            }
            let mut cleaned = clean(rest);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            let matcher = compile(&cleaned).map_err(|reason| error(&reason))?;
            patterns.push(Pattern {
                text: cleaned,
                exception,
                matcher,
            });
        }
        Ok(Ignore { patterns })
    }

    /// The patterns with exceptions appended so that `names` (the Dockerfile and
    /// `.dockerignore`, which the builder must read) are always sent, as the docker CLI does.
    pub fn keeping(mut self, names: &[&str]) -> Ignore {
        for name in names {
            if self.excludes(name, &Parent::default()).0 {
                let text = clean(name);
                if let Ok(matcher) = compile(&text) {
                    self.patterns.push(Pattern {
                        text,
                        exception: true,
                        matcher,
                    });
                }
            }
        }
        self
    }

    /// Whether `path` (slash-separated, relative to the context) is left out, given what its
    /// folder's match was; also returns what to pass to the paths inside it.
    pub fn excludes(&self, path: &str, parent: &Parent) -> (bool, Parent) {
        let mut matched = false;
        let mut info = Parent {
            matched: vec![false; self.patterns.len()],
        };
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = parent.matched.get(i).copied().unwrap_or(false);
            if !hit {
                if pattern.exception != matched {
                    continue;
                }
                hit = if parent.matched.is_empty() {
                    pattern.matches_or_parent(path)
                } else {
                    pattern.matches(path)
                };
            }
            info.matched[i] = hit;
            if hit {
                matched = !pattern.exception;
            }
        }
        (matched, info)
    }

    /// Whether an excluded folder must still be walked: some exception's text starts with the
    /// folder's path (Docker's rule; an exception such as `!**/keep` does not count, so what
    /// it would match under an excluded folder is not sent, as with `docker build`).
    pub fn may_reach_inside(&self, dir: &str) -> bool {
        let prefix = format!("{dir}/");
        self.patterns
            .iter()
            .filter(|p| p.exception)
            .any(|p| format!("{}/", p.text).starts_with(&prefix))
    }

    /// Whether there is no pattern at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

/// Go's `filepath.Clean` of a slash-separated path.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Compiles a cleaned pattern as moby's `patternmatcher` does; checks its syntax as Go's
/// `filepath.Match` would.
fn compile(pattern: &str) -> Result<Matcher, String> {
    check_syntax(pattern)?;
    #[derive(PartialEq)]
    enum Kind {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let mut re = String::from("^");
    let mut kind = Kind::Exact;
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut index = 0;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        if ch == '*' {
            if chars.get(i) == Some(&'*') {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i >= chars.len() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        re.push_str(".*");
                        kind = Kind::Regex;
                    }
                } else {
                    re.push_str("(.*/)?");
                    kind = Kind::Regex;
                }
                if index == 0 {
                    kind = Kind::Suffix;
                }
            } else {
                re.push_str("[^/]*");
                kind = Kind::Regex;
            }
        } else if ch == '?' {
            re.push_str("[^/]");
            kind = Kind::Regex;
        } else if ".+()|{}$".contains(ch) {
            re.push('\\');
            re.push(ch);
        } else if ch == '\\' {
            match chars.get(i) {
                Some(next) => {
                    re.push_str(&regex::escape(&next.to_string()));
                    i += 1;
                    kind = Kind::Regex;
                }
                None => re.push_str("\\\\"),
            }
        } else if ch == '[' || ch == ']' {
            re.push(ch);
            kind = Kind::Regex;
        } else {
            // As moby does: the character as it is (inside `[…]` a `-` makes a range).
            re.push(ch);
        }
        index += 1;
    }
    Ok(match kind {
        Kind::Exact => Matcher::Exact(pattern.to_string()),
        Kind::Prefix => Matcher::Prefix(pattern[..pattern.len() - 2].to_string()),
        Kind::Suffix => Matcher::Suffix(pattern[2..].to_string()),
        Kind::Regex => {
            re.push('$');
            Matcher::Regex(Regex::new(&re).map_err(|e| e.to_string())?)
        }
    })
}

/// The syntax errors of Go's `filepath.Match`: a `[` without its `]`, an empty or reversed
/// range, a trailing `\`.
fn check_syntax(pattern: &str) -> Result<(), String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if i + 1 >= chars.len() {
                    return Err("it ends with `\\`".into());
                }
                i += 2;
            }
            '[' => {
                i += 1;
                if chars.get(i) == Some(&'^') {
                    i += 1;
                }
                let mut first = true;
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err("a `[` has no `]`".into());
                    };
                    if c == ']' && !first {
                        i += 1;
                        break;
                    }
                    if c == ']' {
                        return Err("an empty `[]` class".into());
                    }
                    first = false;
                    let lo = if c == '\\' {
                        i += 1;
                        *chars.get(i).ok_or("a `[` has no `]`")?
                    } else {
                        c
                    };
                    i += 1;
                    if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|c| *c != ']') {
                        i += 1;
                        let mut hi = chars[i];
                        if hi == '\\' {
                            i += 1;
                            hi = *chars.get(i).ok_or("a `[` has no `]`")?;
                        }
                        if hi < lo {
                            return Err(format!("the range `{lo}-{hi}` is reversed"));
                        }
                        i += 1;
                    }
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> Ignore {
        Ignore::parse(text, Path::new(".dockerignore")).unwrap()
    }

    /// Whether `path` is left out, walking its folders first as the context walk does.
    fn out(ig: &Ignore, path: &str) -> bool {
        let mut parent = Parent::default();
        let mut excluded = false;
        let parts: Vec<&str> = path.split('/').collect();
        for i in 0..parts.len() {
            let p = parts[..=i].join("/");
            let (x, info) = ig.excludes(&p, &parent);
            excluded = x;
            parent = info;
        }
        excluded
    }

    #[test]
    fn the_rules_in_a_table() {
        // (patterns, path, left out)
        let table: &[(&str, &str, bool)] = &[
            ("secrets", "secrets", true),
            ("secrets", "secrets/key", true),
            ("secrets", "a/secrets", false),
            ("*.md", "README.md", true),
            ("*.md", "docs/README.md", false),
            ("**/*.md", "docs/deep/README.md", true),
            ("**/*.md", "README.md", true),
            ("**/node_modules", "a/b/node_modules/x/y.js", true),
            ("**/node_modules", "node_modules/y.js", true),
            ("/build", "build/out", true),
            ("./dist", "dist/app.js", true),
            ("dist/", "dist/app.js", true),
            ("a/../b", "b/c", true),
            ("*\n!keep", "keep", false),
            ("*\n!keep", "other", true),
            ("*\n!keep", "keep/inside", false),
            ("docs\n!docs/keep.md", "docs/keep.md", false),
            ("docs\n!docs/keep.md", "docs/other.md", true),
            ("!docs/keep.md\ndocs", "docs/keep.md", true),
            ("file?.txt", "file1.txt", true),
            ("file?.txt", "file10.txt", false),
            ("[ab].txt", "a.txt", true),
            ("[ab].txt", "c.txt", false),
            ("[^ab].txt", "c.txt", true),
            ("[a-c]*", "beta", true),
            (".env*", ".env.local", true),
            (".env*", "app/.env", false),
            ("# comment\n\n  spaced  ", "spaced", true),
            ("#notignored", "#notignored", false),
            ("**", "anything/at/all", true),
            ("dir/**", "dir/x/y", true),
            ("dir/**", "dir", false),
            ("a/**/b", "a/b", true),
            ("a/**/b", "a/x/y/b", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
        ];
        for (patterns, path, expected) in table {
            assert_eq!(
                out(&ignore(patterns), path),
                *expected,
                "{patterns:?} on {path}"
            );
        }
    }

    #[test]
    fn folders_are_walked_only_when_an_exception_can_reach_inside() {
        let ig = ignore("node_modules\n.git\ndocs\n!docs/keep.md\n!**/important");
        assert!(!ig.may_reach_inside("node_modules"));
        assert!(!ig.may_reach_inside(".git"));
        assert!(ig.may_reach_inside("docs"));
        assert!(!ig.may_reach_inside("doc"));
    }

    #[test]
    fn the_builders_files_are_kept() {
        let ig = ignore("*\n").keeping(&["Dockerfile", ".dockerignore"]);
        assert!(!out(&ig, "Dockerfile"));
        assert!(!out(&ig, ".dockerignore"));
        assert!(out(&ig, "other"));
    }

    #[test]
    fn bad_patterns_name_the_file_and_line() {
        for (text, line) in [
            ("ok\n[abc", 2),
            ("!", 1),
            ("a\\", 1),
            ("x\n\n[]", 3),
            ("[z-a]", 1),
        ] {
            let e = Ignore::parse(text, Path::new("ctx/.dockerignore")).unwrap_err();
            assert_eq!(e.line, line, "{text:?}");
            assert!(
                e.to_string()
                    .starts_with(&format!("ctx/.dockerignore:{line}:")),
                "{e}"
            );
        }
    }

    #[test]
    fn clean_is_gos() {
        for (input, want) in [
            ("./dist", "dist"),
            ("a//b/", "a/b"),
            ("/a/../b", "/b"),
            ("../x", "../x"),
            (".", "."),
            ("a/./b/..", "a"),
        ] {
            assert_eq!(clean(input), want, "{input}");
        }
    }
}
