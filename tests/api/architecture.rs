//! The import rules of docs/ARCHITECTURE.md, enforced: every `use crate::…`
//! and `super::…` in `src/` is an arrow from one file to another, each file
//! belongs to a room, and an arrow between rooms that the table below does
//! not allow fails the suite, as does any circle between files. Test
//! modules (`#[cfg(test)]` to the end of a file) are left out: a test may
//! reach for anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Which rooms each room may import from (besides itself). A room is a
/// folder of `src/` (`api`, `service`, `db`, `domain`) or a top-level file.
const ALLOWED: &[(&str, &[&str])] = &[
    ("domain", &[]),
    ("encoding", &[]),
    ("clock", &[]),
    ("rate_limit", &[]),
    ("shutdown", &[]),
    ("metrics", &[]),
    ("db", &["domain", "encoding"]),
    ("service", &["db", "domain", "encoding", "clock"]),
    ("outbound", &["service", "db", "domain", "clock"]),
    ("error", &["service", "db", "domain"]),
    ("tokens", &["error", "clock"]),
    ("config", &["db", "tokens", "rate_limit", "encoding"]),
    (
        "state",
        &["config", "db", "tokens", "clock", "rate_limit", "shutdown"],
    ),
    (
        "auth",
        &["state", "tokens", "service", "db", "domain", "error"],
    ),
    ("body", &["state", "error"]),
    ("cors", &["state"]),
    (
        "api",
        &[
            "service", "db", "domain", "state", "error", "auth", "encoding", "clock", "body",
            "outbound",
        ],
    ),
    (
        "app",
        &[
            "api", "body", "clock", "cors", "db", "error", "service", "state", "shutdown",
            "outbound",
        ],
    ),
    ("lib", &[]),
];

/// Leaves every room may import besides those `ALLOWED` lists: recording a
/// metric is a call into `metrics`, which imports nothing back.
const SHARED_LEAVES: &[&str] = &["metrics"];

/// The api files every other api file may import: the shared HTTP helpers
/// (request and response types, paging, the idempotent-write wrapper).
const API_SHARED: &[&str] = &[
    "src/api/types.rs",
    "src/api/idempotency.rs",
    "src/api/streaming.rs",
];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/` but the binary's `main.rs`, as paths
/// relative to the crate root (`src/db/audit.rs`).
fn source_files() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let relative = path
                    .strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")))
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                if relative != "src/main.rs" {
                    out.push(relative);
                }
            }
        }
    }
    let mut files = Vec::new();
    walk(&src_dir(), &mut files);
    files.sort();
    files
}

/// The module path of a file: `src/db/audit.rs` → `["db", "audit"]`,
/// `src/db/mod.rs` → `["db"]`, `src/lib.rs` → `[]`.
fn module_of(file: &str) -> Vec<String> {
    let inner = file.trim_start_matches("src/").trim_end_matches(".rs");
    let mut parts: Vec<String> = inner.split('/').map(str::to_owned).collect();
    if parts
        .last()
        .is_some_and(|last| last == "mod" || last == "lib")
    {
        parts.pop();
    }
    parts
}

/// The room a file belongs to.
fn room_of(file: &str) -> String {
    module_of(file)
        .first()
        .cloned()
        .unwrap_or_else(|| "lib".to_owned())
}

/// The file that defines the longest prefix of `path` that is a module.
fn file_of(path: &[String], files: &BTreeSet<String>) -> Option<String> {
    (0..=path.len()).rev().find_map(|length| {
        let prefix = path[..length].join("/");
        let candidates = if prefix.is_empty() {
            vec!["src/lib.rs".to_owned()]
        } else {
            vec![format!("src/{prefix}.rs"), format!("src/{prefix}/mod.rs")]
        };
        candidates.into_iter().find(|file| files.contains(file))
    })
}

/// The code of a file without its comments and its test module.
fn code_of(file: &str) -> String {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
    let text = match text.find("#[cfg(test)]") {
        Some(start) => &text[..start],
        None => &text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(start) => &line[..start],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Expands a `use` tree (`db::{self, audit::{a, b}, Db}`) into paths.
fn expand(tree: &str) -> Vec<Vec<String>> {
    // `x as y` names `x`; mark the rename before whitespace goes.
    let tree: String = tree
        .replace(" as ", "@")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let Some(open) = tree.find('{') else {
        let path = tree.split('@').next().unwrap_or(&tree);
        return vec![path.split("::").map(str::to_owned).collect()];
    };
    let prefix: Vec<String> = tree[..open]
        .trim_end_matches("::")
        .split("::")
        .filter(|part| !part.is_empty())
        .map(str::to_owned)
        .collect();
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (index, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|item| !item.is_empty())
        .flat_map(expand)
        .map(|rest| {
            let mut path = prefix.clone();
            path.extend(rest.into_iter().filter(|part| part != "self"));
            path
        })
        .collect()
}

/// Resolves a path as written in `file` (`crate::…`, `super::…`) to the
/// module path it names, or `None` for paths outside the crate.
fn absolute(file: &str, path: &[String]) -> Option<Vec<String>> {
    let first = path.first()?;
    if first == "crate" {
        return Some(path[1..].to_vec());
    }
    if first == "super" {
        let mut module = module_of(file);
        let mut rest = path;
        while rest.first().is_some_and(|part| part == "super") {
            module.pop()?;
            rest = &rest[1..];
        }
        module.extend(rest.iter().cloned());
        return Some(module);
    }
    None
}

/// Every file `file` imports from: its `use` declarations and the
/// `crate::`/`super::` paths written inline.
fn arrows_from(file: &str, files: &BTreeSet<String>) -> BTreeSet<String> {
    let code = code_of(file);
    let mut paths = Vec::new();
    for statement in code.split(';') {
        let statement = statement.trim();
        let tree = statement
            .strip_prefix("pub use ")
            .or_else(|| statement.strip_prefix("pub(crate) use "))
            .or_else(|| statement.strip_prefix("use "))
            .or_else(|| statement.rsplit_once("\nuse ").map(|(_, tree)| tree))
            .or_else(|| statement.rsplit_once("\npub use ").map(|(_, tree)| tree));
        if let Some(tree) = tree {
            paths.extend(expand(tree));
        }
    }
    for marker in ["crate::", "super::"] {
        for (index, _) in code.match_indices(marker) {
            let before = code[..index].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let path: String = code[index..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            paths.push(
                path.split("::")
                    .filter(|part| !part.is_empty())
                    .map(str::to_owned)
                    .collect(),
            );
        }
    }
    paths
        .iter()
        .filter_map(|path| absolute(file, path))
        .filter_map(|module| file_of(&module, files))
        .filter(|target| target != file)
        .collect()
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let files: BTreeSet<String> = source_files().into_iter().collect();
    files
        .iter()
        .map(|file| (file.clone(), arrows_from(file, &files)))
        .collect()
}

#[test]
fn the_reader_sees_the_arrows_it_must() {
    let graph = graph();
    assert!(graph["src/db/audit.rs"].contains("src/db/events.rs"));
    assert!(graph["src/db/audit.rs"].contains("src/db/mod.rs"));
    assert!(graph["src/app.rs"].contains("src/api/mod.rs"));
    assert!(graph["src/error.rs"].contains("src/service/mod.rs"));
    assert!(graph["src/db/mod.rs"].contains("src/metrics.rs"));
    assert!(graph["src/app.rs"].contains("src/metrics.rs"));
    assert!(graph["src/metrics.rs"].is_empty());
    assert_eq!(
        expand("db::{self, audit::{a, b as c}, Db}"),
        vec![
            vec!["db".to_owned()],
            vec!["db".to_owned(), "audit".to_owned(), "a".to_owned()],
            vec!["db".to_owned(), "audit".to_owned(), "b".to_owned()],
            vec!["db".to_owned(), "Db".to_owned()],
        ]
    );
}

#[test]
fn every_arrow_between_rooms_is_allowed() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut forbidden = Vec::new();
    for (file, targets) in graph() {
        let room = room_of(&file);
        let Some(may) = allowed.get(room.as_str()) else {
            forbidden.push(format!("{file}: room {room:?} is not in ALLOWED"));
            continue;
        };
        for target in targets {
            let target_room = room_of(&target);
            let same_room = target_room == room;
            let allowed_room = may.contains(&target_room.as_str())
                || SHARED_LEAVES.contains(&target_room.as_str());
            if !same_room && !allowed_room {
                forbidden.push(format!("{file} -> {target}"));
            }
            let api_sideways = same_room
                && room == "api"
                && file != "src/api/mod.rs"
                && target != "src/api/mod.rs"
                && !API_SHARED.contains(&target.as_str())
                && !API_SHARED.contains(&file.as_str());
            if api_sideways {
                forbidden.push(format!(
                    "{file} -> {target} (api files import only {API_SHARED:?})"
                ));
            }
        }
    }
    assert!(
        forbidden.is_empty(),
        "forbidden imports:\n{}",
        forbidden.join("\n")
    );
}

/// Depth-first search for a back edge; answers the first circle found.
fn visit(
    file: &str,
    graph: &BTreeMap<String, BTreeSet<String>>,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(start) = path.iter().position(|seen| seen == file) {
        let mut circle = path[start..].to_vec();
        circle.push(file.to_owned());
        return Some(circle);
    }
    if done.contains(file) {
        return None;
    }
    path.push(file.to_owned());
    for target in graph.get(file).into_iter().flatten() {
        if let Some(circle) = visit(target, graph, path, done) {
            return Some(circle);
        }
    }
    path.pop();
    done.insert(file.to_owned());
    None
}

#[test]
fn no_file_imports_itself_in_a_circle() {
    let graph = graph();
    let mut done = BTreeSet::new();
    for file in graph.keys() {
        if let Some(circle) = visit(file, &graph, &mut Vec::new(), &mut done) {
            panic!("import circle: {}", circle.join(" -> "));
        }
    }
}

#[test]
fn the_api_is_under_a_third_of_the_source() {
    let lines = |file: &str| {
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
            .unwrap()
            .lines()
            .count()
    };
    let files = source_files();
    let total: usize = files.iter().map(|file| lines(file)).sum();
    let api: usize = files
        .iter()
        .filter(|file| room_of(file) == "api")
        .map(|file| lines(file))
        .sum();
    assert!(
        api * 3 < total,
        "src/api holds {api} of {total} lines: use cases belong in src/service"
    );
}
