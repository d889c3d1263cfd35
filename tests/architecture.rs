//! The crate's layering, checked rather than remembered: every folder under `src/` is a
//! layer, and a layer's code may import only from layers below it. `mio` lives in `net/`
//! alone, `libc` in the few files that make system calls, and `base/` uses nothing outside
//! std but `itoa`. The map itself is written in `src/lib.rs`.
//!
//! Test code (`#[cfg(test)]` modules and `*tests.rs` files) may reach across layers to
//! cross-check them; the binaries (`main.rs`, `bin/`) wire the layers together and are not
//! layers themselves.

use std::path::{Path, PathBuf};

/// The layers, lowest first, with their rank. Equal ranks sit side by side and may not
/// import each other.
const LAYERS: &[(&str, u8)] = &[
    ("base", 0),
    ("segment", 1),
    ("http", 1),
    ("dispatch", 2),
    ("net", 3),
    ("upstream", 4),
    ("app", 5),
    ("sim", 5),
];

/// Files allowed to name `libc`: system calls for the loop, for outbound connects, and for
/// the shared segment's mapping and locks.
const LIBC_HOMES: &[&str] = &["net/sys.rs", "net/outbound.rs", "segment/file.rs", "segment/witness.rs"];

/// External crates `base/` may use besides std.
const BASE_CRATES: &[&str] = &["std", "core", "itoa"];

fn rank(layer: &str) -> Option<u8> {
    LAYERS.iter().find(|(name, _)| *name == layer).map(|&(_, r)| r)
}

/// The non-test part of a source file: everything before its first `#[cfg(test)]` module.
fn production_part(text: &str) -> &str {
    let starts = ["#[cfg(test)]\nmod ", "#[cfg(test)]\npub(crate) mod "];
    match starts.iter().filter_map(|s| text.find(s)).min() {
        Some(at) => &text[..at],
        None => text,
    }
}

/// Every layer named by a `crate::<layer>` path in `code`, use lines and inline paths alike.
fn crate_paths(code: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let line = line.trim_start();
        if line.starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.push((n + 1, name));
            rest = after;
        }
    }
    found
}

/// Whether `code` names the external crate `krate` as a path (`mio::`, `use mio;`).
fn names_crate(code: &str, krate: &str) -> Option<usize> {
    code.lines().enumerate().find_map(|(n, line)| {
        let line = line.trim_start();
        if line.starts_with("//") {
            return None;
        }
        let hit = line.match_indices(krate).any(|(at, _)| {
            let before = line[..at].chars().last();
            let after = &line[at + krate.len()..];
            !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && (after.starts_with("::") || after.starts_with(';'))
        });
        hit.then_some(n + 1)
    })
}

/// The external crates a `base/` file's `use` lines name.
fn used_crates(code: &str) -> Vec<(usize, String)> {
    code.lines()
        .enumerate()
        .filter_map(|(n, line)| {
            let rest = line.trim_start().strip_prefix("pub ").unwrap_or(line.trim_start());
            let path = rest.strip_prefix("use ")?;
            let root: String = path
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            (!matches!(root.as_str(), "crate" | "super" | "self")).then_some((n + 1, root))
        })
        .collect()
}

/// Every rule broken by the file at `rel` (relative to `src/`, with `/` separators).
fn violations(rel: &str, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Some((layer, _)) = rel.split_once('/') else {
        return out; // lib.rs, main.rs: the crate root and the binary's wiring
    };
    if layer == "bin" {
        return out;
    }
    let file = rel.rsplit('/').next().unwrap_or(rel);
    if file == "tests.rs" || file.ends_with("_tests.rs") {
        return out;
    }
    let Some(own) = rank(layer) else {
        out.push(format!(
            "src/{rel}: `{layer}/` is no layer; place it in the map (tests/architecture.rs, src/lib.rs)"
        ));
        return out;
    };
    let code = production_part(text);
    for (line, target) in crate_paths(code) {
        if target == layer {
            continue;
        }
        match rank(&target) {
            Some(r) if r < own => {}
            Some(_) => out.push(format!(
                "src/{rel}:{line}: `{layer}` may not import `{target}` (not below it)"
            )),
            None => out.push(format!("src/{rel}:{line}: `crate::{target}` is no layer")),
        }
    }
    if layer != "net" {
        if let Some(line) = names_crate(code, "mio") {
            out.push(format!("src/{rel}:{line}: `mio` outside net/"));
        }
    }
    if !LIBC_HOMES.contains(&rel) {
        if let Some(line) = names_crate(code, "libc") {
            out.push(format!("src/{rel}:{line}: `libc` outside {LIBC_HOMES:?}"));
        }
    }
    if layer == "base" {
        for (line, krate) in used_crates(code) {
            if !BASE_CRATES.contains(&krate.as_str()) {
                out.push(format!("src/{rel}:{line}: base/ uses `{krate}`"));
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_import_points_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.len() > 40,
        "found only {} files under {}",
        files.len(),
        src.display()
    );
    let mut broken = Vec::new();
    for path in files {
        let rel = path.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        broken.extend(violations(&rel, &std::fs::read_to_string(&path).unwrap()));
    }
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

#[test]
fn every_layer_is_in_the_crate_map() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    for (layer, _) in LAYERS {
        assert!(
            lib.contains(&format!("pub mod {layer};")),
            "src/lib.rs declares no `{layer}`"
        );
        assert!(
            lib.contains(&format!("[`{layer}`]")),
            "src/lib.rs's map does not describe `{layer}`"
        );
    }
}

/// The checker itself, on files made to break each rule: a test that cannot fail proves
/// nothing.
#[test]
fn the_checker_catches_each_kind_of_break() {
    let up = "use crate::app::config::Config;\n";
    assert_eq!(violations("dispatch/mod.rs", up).len(), 1);
    let sideways = "fn f() { let _ = crate::http::Status::OK; }\n";
    assert_eq!(violations("segment/mod.rs", sideways).len(), 1);
    assert_eq!(violations("sim/model.rs", "use crate::app::routes::Api;\n").len(), 1);
    assert_eq!(
        violations("base/x.rs", "use mio::Token;\n").len(),
        2,
        "mio, and a crate base may not use"
    );
    assert_eq!(violations("upstream/pool.rs", "let t = mio::Token(1);\n").len(), 1);
    assert_eq!(violations("segment/table.rs", "let e = libc::EINTR;\n").len(), 1);
    assert_eq!(violations("misc/thing.rs", "").len(), 1, "an unmapped folder");

    let fine = "use crate::base::clock::Now;\nuse crate::segment::Segment;\n// crate::app in a comment\n";
    assert!(violations("dispatch/mod.rs", fine).is_empty());
    assert!(violations("net/outbound.rs", "use mio::Token;\nlet e = libc::EINPROGRESS;\n").is_empty());
    let test_only = "use crate::base::uuid::Uuid;\n#[cfg(test)]\nmod tests {\n    use crate::sim::body::x;\n}\n";
    assert!(violations("upstream/wire.rs", test_only).is_empty());
    assert!(violations("dispatch/tests.rs", up).is_empty());
    assert!(violations("base/amount.rs", "use super::error::E;\nuse itoa;\n").is_empty());
    assert!(names_crate("let m = mymio::x; let n = some::mio::y;", "mio").is_none());
}
