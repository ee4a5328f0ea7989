//! The layering of ARCHITECTURE.md, checked on the source: which layer may name which, that
//! the domain crate depends on no framework, and that no two modules depend on each other
//! (directly or around a cycle). A forbidden import fails here with the file that made it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
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

/// The source of `path` without its unit-test module (tests may reach anything).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// The module path of a file under `src/` (`service::leads`, `http`, ...).
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(root().join("src")).unwrap();
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts.join("::")
}

fn sources() -> Vec<(String, PathBuf, String)> {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| (module_of(&p), p.clone(), code(&p)))
        .collect()
}

#[test]
fn each_layer_names_only_the_layers_below_it() {
    // (layer, what it must never name)
    let rules: &[(&str, &[&str])] = &[
        ("graphql", &["crate::repo", "crate::http"]),
        ("http", &["crate::repo"]),
        (
            "warehouse",
            &["crate::repo", "crate::graphql", "crate::http"],
        ),
        ("service", &["crate::graphql", "crate::http"]),
        ("repo", &["crate::service", "crate::graphql", "crate::http"]),
        (
            "db",
            &[
                "crate::repo",
                "crate::service",
                "crate::graphql",
                "crate::http",
            ],
        ),
        (
            "auth",
            &[
                "crate::repo",
                "crate::service",
                "crate::graphql",
                "crate::http",
            ],
        ),
    ];
    let mut broken = Vec::new();
    for (module, path, text) in sources() {
        for (layer, forbidden) in rules {
            if module == *layer || module.starts_with(&format!("{layer}::")) {
                for f in *forbidden {
                    if text.contains(f) {
                        broken.push(format!("{} names {f}", path.display()));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

#[test]
fn the_domain_crate_depends_on_no_framework() {
    let manifest = std::fs::read_to_string(root().join("crates/domain/Cargo.toml")).unwrap();
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap();
    for framework in [
        "diesel",
        "actix",
        "async-graphql",
        "tokio",
        "jsonwebtoken",
        "tracing",
    ] {
        assert!(
            !deps.contains(framework),
            "crates/domain depends on {framework}"
        );
    }
    let mut files = Vec::new();
    rust_files(&root().join("crates/domain/src"), &mut files);
    assert!(files.len() >= 10);
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for name in [
            "diesel",
            "actix",
            "async_graphql",
            "tokio",
            "std::fs",
            "std::net",
        ] {
            assert!(
                !text.contains(&format!("{name}::")),
                "{} reaches {name}",
                path.display()
            );
        }
    }
}

/// `crate::a::b::c` or `super::x` in `module`, resolved to the longest known module.
fn resolve(module: &str, path: &str, known: &BTreeSet<String>) -> Option<String> {
    let mut segments: Vec<&str> = path.split("::").collect();
    let mut base: Vec<String> = Vec::new();
    match segments.first() {
        Some(&"crate") => {
            segments.remove(0);
        }
        Some(&"super") => {
            base = module.split("::").map(String::from).collect();
            while segments.first() == Some(&"super") {
                segments.remove(0);
                base.pop();
            }
        }
        _ => return None,
    }
    (1..=segments.len()).rev().find_map(|n| {
        let mut parts = base.clone();
        parts.extend(segments[..n].iter().map(|s| s.to_string()));
        let candidate = parts.join("::");
        known.contains(&candidate).then_some(candidate)
    })
}

#[test]
fn no_two_modules_depend_on_each_other_even_around_a_cycle() {
    let sources = sources();
    let known: BTreeSet<String> = sources.iter().map(|(m, _, _)| m.clone()).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, _, text) in &sources {
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if !text.is_char_boundary(i) {
                i += 1;
                continue;
            }
            let rest = &text[i..];
            let starts = (rest.starts_with("crate::") || rest.starts_with("super::"))
                && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'));
            if !starts {
                i += 1;
                continue;
            }
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            let path = rest[..end].trim_end_matches(':');
            if let Some(target) = resolve(module, path, &known) {
                // A child naming its parent (or itself) is how Rust modules nest, not a cycle.
                if &target != module && !module.starts_with(&format!("{target}::")) {
                    graph.entry(module.clone()).or_default().insert(target);
                }
            }
            i += end.max(1);
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_string(), 1);
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next).copied() {
                Some(1) => {
                    let from = stack.iter().position(|m| m == next).unwrap_or(0);
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(cycle) = visit(next, graph, state, stack) {
                        return Some(cycle);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for module in graph.keys() {
        if !state.contains_key(module) {
            let cycle = visit(module, &graph, &mut state, &mut Vec::new());
            assert!(
                cycle.is_none(),
                "module cycle: {}",
                cycle.unwrap_or_default().join(" -> ")
            );
        }
    }
    assert!(graph.len() > 30, "the scan found {} modules", graph.len());
}
