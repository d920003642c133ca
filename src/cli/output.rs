//! What results look like: aligned tables and facts for people, the JSON shapes for programs.
//! Writing them is the printer's job.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use toolbox::image::ImageInfo;
use toolbox::{Archive, ArchiveName, Format};

/// An archive as `images --json` shows it.
#[derive(Serialize)]
pub struct ArchiveJson<'a> {
    image: &'a str,
    version: &'a str,
    id: &'a str,
    format: &'a Format,
    dirty: bool,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<Option<String>>,
    modified: String,
    path: String,
    /// With `images --check`: whether the quick check failed, and which check.
    #[serde(skip_serializing_if = "Option::is_none")]
    broken: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
}

impl<'a> ArchiveJson<'a> {
    /// With `images --check`: the quick check's verdict (`None` when it passed).
    pub fn checked(mut self, broken: Option<&toolbox::codec::Broken>) -> Self {
        self.broken = Some(broken.is_some());
        self.problem = broken.map(ToString::to_string);
        self
    }

    /// With `created`: the image's creation time too (`null` when it cannot be read).
    pub fn new(a: &'a Archive, created: Option<Option<time::OffsetDateTime>>) -> Self {
        let mut json = ArchiveJson::from(a);
        if let Some(created) = created {
            json.created = Some(created.and_then(|t| t.format(&Rfc3339).ok()));
        }
        json
    }
}

impl<'a> From<&'a Archive> for ArchiveJson<'a> {
    fn from(a: &'a Archive) -> Self {
        ArchiveJson {
            created: None,
            image: &a.name.image,
            version: &a.name.version,
            id: &a.name.id,
            format: &a.name.format,
            dirty: a.is_dirty(),
            size: a.size,
            modified: rfc3339(a.modified),
            path: path_json(&a.path),
            broken: None,
            problem: None,
        }
    }
}

/// A parsed name as `parse --json` shows it.
#[derive(Serialize)]
pub struct NameJson<'a> {
    image: &'a str,
    version: &'a str,
    id: &'a str,
    format: &'a Format,
    dirty: bool,
}

impl<'a> From<&'a ArchiveName> for NameJson<'a> {
    fn from(n: &'a ArchiveName) -> Self {
        NameJson {
            image: &n.image,
            version: &n.version,
            id: &n.id,
            format: &n.format,
            dirty: n.is_dirty(),
        }
    }
}

/// A path as text for people: as it is, unless it holds control characters or bytes that are
/// not UTF-8; then quoted as a shell reads it (`$'dir\xff/web\n_1.0_0123456789ab.zip'`, as `ls`
/// quotes such names), so that it can still be used.
pub fn path_text(path: &Path) -> String {
    match path.to_str() {
        Some(text) if !text.chars().any(char::is_control) => text.to_string(),
        _ => shell_quoted(path.as_os_str().as_bytes()),
    }
}

/// A path in JSON output: as it is when it is UTF-8 (JSON escapes control characters itself),
/// else quoted as [`path_text`] quotes it (JSON strings hold no other bytes).
pub fn path_json(path: &Path) -> String {
    match path.to_str() {
        Some(text) => text.to_string(),
        None => shell_quoted(path.as_os_str().as_bytes()),
    }
}

/// A path for scripts (`latest`, and the paths commands print one per line): its bytes as they
/// are (a name that is not UTF-8 is not replaced), unless it holds control characters; then
/// quoted as [`path_text`] quotes it.
pub fn path_bytes(path: &Path) -> Vec<u8> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.iter().any(|&b| b < 0x20 || b == 0x7f)
        || path
            .to_str()
            .is_some_and(|t| t.chars().any(char::is_control))
    {
        shell_quoted(bytes).into_bytes()
    } else {
        bytes.to_vec()
    }
}

/// Bytes quoted as `$'…'`, which bash, zsh and ksh read back as those bytes.
fn shell_quoted(bytes: &[u8]) -> String {
    let mut out = String::from("$'");
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('\'');
    out
}

/// Text read from an archive or a file name, made safe to print: control characters (a
/// newline, an escape sequence's ESC) are shown escaped (`\n`, `\x1b`, `\u{9b}`), so that no
/// value can start a line of its own or drive the terminal.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A time in RFC 3339 (a file time in UTC), to the second; `-` for one RFC 3339 cannot write.
pub fn rfc3339(t: impl toolbox::timestamp::Calendar) -> String {
    toolbox::timestamp::rfc3339(t).unwrap_or_else(|| String::from("-"))
}

/// A size in bytes the way `docker images` shows it (SI units).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.3}{}", UNITS[unit]).replacen(".000", "", 1)
    }
}

/// A size in bytes in the same decimal units, short and spaced, as a sentence gives it
/// (`900 B`, `12.3 kB`, `8.1 MB`, `681 MB`, `1.2 GB`): one decimal below 100, none above.
pub fn size_in_words(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 999.5 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else if value >= 99.95 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `yes` or `no`.
pub fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// A version as a table cell: an empty version shows as `<none>`.
pub fn version_cell(v: &str) -> String {
    if v.is_empty() {
        "<none>".into()
    } else {
        v.to_string()
    }
}

/// A table whose columns are padded to their widest cell.
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: Vec<&'static str>) -> Table {
        Table {
            header,
            rows: Vec::new(),
        }
    }

    /// Adds a row; its cells are made [`printable`].
    pub fn row(&mut self, row: Vec<String>) {
        self.rows.push(
            row.into_iter()
                .map(|cell| printable(&cell).into_owned())
                .collect(),
        );
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let header = self
            .header
            .iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>();
        for row in std::iter::once(&header).chain(&self.rows) {
            let last = row.len().saturating_sub(1);
            for (i, cell) in row.iter().enumerate() {
                out.push_str(cell);
                if i < last {
                    let pad = widths[i] - cell.chars().count() + 3;
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push('\n');
        }
        out
    }
}

/// `inspect` for people: one fact per line, layers below.
pub fn inspect_text(info: &ImageInfo, archive: &Archive) -> String {
    let none = || "-".to_string();
    let text = |v: Option<&str>| {
        v.filter(|s| !s.is_empty())
            .map_or_else(none, str::to_string)
    };
    let runtime = info.runtime();
    let get = |key: &str| runtime.and_then(|c| c.get(key)).filter(|v| !v.is_null());
    let list = |key: &str| -> Vec<String> {
        match get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect(),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| match v.as_str() {
                    Some(s) => format!("{k}={s}"),
                    None if v.as_object().is_some_and(|o| o.is_empty()) => k.clone(),
                    None => format!("{k}={v}"),
                })
                .collect(),
            Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
            _ => Vec::new(),
        }
    };
    let json_list = |key: &str| get(key).map_or_else(none, |v| v.to_string());
    let mut lines: Vec<(&str, Vec<String>)> = vec![
        (
            "Archive",
            vec![format!(
                "{} ({}, {})",
                path_text(&archive.path),
                archive.name.format,
                human_size(archive.size)
            )],
        ),
        ("Id", vec![info.id.clone()]),
        (
            "Manifests",
            info.manifests
                .iter()
                .map(|m| {
                    let kind = if m.is_index { "index" } else { "manifest" };
                    match &m.platform {
                        Some(p) => format!("{kind} {} ({p})", m.digest),
                        None => format!("{kind} {}", m.digest),
                    }
                })
                .collect(),
        ),
        ("Reads", info.reading().into_iter().collect()),
        ("RepoTags", info.repo_tags.clone()),
        ("Created", vec![text(info.created())]),
        ("Architecture", vec![text(info.field("architecture"))]),
        ("Os", vec![text(info.field("os"))]),
        ("Author", vec![text(info.field("author"))]),
        ("User", vec![text(get("User").and_then(Value::as_str))]),
        (
            "WorkingDir",
            vec![text(get("WorkingDir").and_then(Value::as_str))],
        ),
        ("Entrypoint", vec![json_list("Entrypoint")]),
        ("Cmd", vec![json_list("Cmd")]),
        ("Env", list("Env")),
        ("ExposedPorts", list("ExposedPorts")),
        ("Labels", list("Labels")),
        (
            "Size",
            vec![format!(
                "{} (the layers as stored in the archive; not docker's unpacked size)",
                human_size(info.size())
            )],
        ),
    ];
    lines.push((
        "Layers",
        info.layers
            .iter()
            .map(|l| format!("{}  {}", l.diff_id, human_size(l.size)))
            .collect(),
    ));
    let mut out = String::new();
    for (key, values) in lines {
        let label = format!("{key}:");
        let mut values = values.into_iter();
        out.push_str(&format!(
            "{label:<14}{}\n",
            printable(&values.next().unwrap_or_else(none))
        ));
        for v in values {
            out.push_str(&format!("{:<14}{}\n", "", printable(&v)));
        }
    }
    out
}

/// `written`, or `already current` when the archive was there already.
pub fn written(written: bool) -> &'static str {
    if written {
        "written"
    } else {
        "already current"
    }
}

/// Each item on a line of its own.
pub fn lines(items: &[String]) -> String {
    items.iter().map(|i| format!("{i}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn control_characters_and_foreign_bytes_are_shown_so_they_can_be_used() {
        assert_eq!(printable("1.0"), "1.0");
        assert_eq!(
            printable("1.0\nId: x\x1b[2J\u{9b}"),
            "1.0\\nId: x\\x1b[2J\\u{9b}"
        );
        let odd = Path::new(OsStr::from_bytes(b"dir\xff/web_1.0_0123456789ab.zip"));
        assert_eq!(path_bytes(odd), b"dir\xff/web_1.0_0123456789ab.zip");
        assert_eq!(path_text(odd), "$'dir\\xff/web_1.0_0123456789ab.zip'");
        let newline = Path::new("a\nb/it's");
        assert_eq!(path_text(newline), "$'a\\nb/it\\'s'");
        assert_eq!(path_bytes(newline), b"$'a\\nb/it\\'s'");
        assert_eq!(path_text(Path::new("plain/ü.zip")), "plain/ü.zip");
    }
    use std::time::{Duration, SystemTime};

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(1_234_567), "1.235MB");
        assert_eq!(human_size(5_000_000_000), "5GB");
    }

    #[test]
    fn sizes_in_words() {
        assert_eq!(size_in_words(900), "900 B");
        assert_eq!(size_in_words(12_345), "12.3 kB");
        assert_eq!(size_in_words(8_100_000), "8.1 MB");
        assert_eq!(size_in_words(681_000_000), "681 MB");
        assert_eq!(size_in_words(1_234_000_000), "1.2 GB");
        assert_eq!(size_in_words(999_700), "1.0 MB");
        assert_eq!(size_in_words(99_970_000), "100 MB");
    }

    #[test]
    fn times() {
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
        let before = SystemTime::UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(rfc3339(before), "1969-12-31T23:59:59Z");
        // Past year 9999: no RFC 3339 for it, and no panic.
        let far = toolbox::timestamp::from_unix(300_000_000_000, 0).unwrap();
        assert_eq!(rfc3339(far), "-");
    }

    #[test]
    fn table_pads_columns() {
        let mut t = Table::new(vec!["A", "BB"]);
        t.row(vec!["xxxx".into(), "y".into()]);
        assert_eq!(t.render(), "A      BB\nxxxx   y\n");
    }
}
