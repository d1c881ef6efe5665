//! The files of `shell/src` are layered one way: no file reaches, through its paths
//! (`crate::...`, `super::...`, a module file's own children), a file that reaches back
//! to it. A cycle fails this test with the files on it and what each takes from the
//! next.
//!
//! The scan reads the sources as text: `crate::` and `super::` paths (grouped `use`
//! items included) and, in a module file (`mod.rs`, `lib.rs`), paths through its child
//! modules; comments and `#[cfg(test)] mod tests` blocks are left out. A path is
//! resolved to the longest module prefix that is a file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

fn sources(root: &Path) -> BTreeMap<Module, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(root).unwrap().with_extension("");
            let mut parts: Module =
                rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                parts.pop();
            }
            out.insert(parts, path);
        }
    }
    out
}

/// The source without comments and without its unit-test module.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every `a::b::c` path in `code` (with `{x, y::z}` groups expanded one level).
fn paths(code: &str) -> Vec<Vec<String>> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !is_ident(chars[i]) || (i > 0 && (is_ident(chars[i - 1]) || chars[i - 1] == ':')) {
            i += 1;
            continue;
        }
        let mut segs = Vec::new();
        let mut j = i;
        loop {
            let start = j;
            while j < chars.len() && is_ident(chars[j]) {
                j += 1;
            }
            segs.push(chars[start..j].iter().collect::<String>());
            if j + 2 < chars.len() && chars[j] == ':' && chars[j + 1] == ':' {
                j += 2;
                if chars[j] == '{' {
                    let end =
                        chars[j..].iter().position(|&c| c == '}').map_or(chars.len(), |p| j + p);
                    let group: String = chars[j + 1..end].iter().collect();
                    for item in group.split(',') {
                        let item = item.split(" as ").next().unwrap_or("").trim();
                        if !item.is_empty() {
                            let mut p = segs.clone();
                            p.extend(item.split("::").map(str::to_owned));
                            out.push(p);
                        }
                    }
                    j = end;
                    break;
                }
                if j < chars.len() && is_ident(chars[j]) {
                    continue;
                }
            }
            if segs.len() > 1 {
                out.push(segs);
            }
            break;
        }
        i = j.max(i + 1);
    }
    out
}

fn resolve(files: &BTreeMap<Module, PathBuf>, path: &[String]) -> Option<Module> {
    (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|m| files.contains_key(m))
}

fn edges(files: &BTreeMap<Module, PathBuf>) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut out = BTreeMap::new();
    for (module, file) in files {
        let is_module_file =
            matches!(file.file_name().and_then(|n| n.to_str()), Some("mod.rs" | "lib.rs"));
        let code = code(&std::fs::read_to_string(file).unwrap());
        let mut deps = BTreeSet::new();
        for p in paths(&code) {
            let full: Option<Vec<String>> = match p[0].as_str() {
                "crate" => Some(p[1..].to_vec()),
                "super" | "self" => {
                    // `self` is the module; `super` its parent (for a module file, the
                    // module is the directory).
                    let mut base = module.clone();
                    let mut rest = &p[..];
                    if rest[0] == "self" {
                        rest = &rest[1..];
                    }
                    while rest.first().is_some_and(|s| s == "super") {
                        base.pop();
                        rest = &rest[1..];
                    }
                    base.extend(rest.iter().cloned());
                    Some(base)
                }
                _ if is_module_file => {
                    let mut child = module.clone();
                    child.extend(p.iter().cloned());
                    // Only a path through a child module counts.
                    files.contains_key(&child[..module.len() + 1]).then_some(child)
                }
                _ => None,
            };
            if let Some(target) = full.and_then(|f| resolve(files, &f)) {
                if &target != module {
                    deps.insert(target);
                }
            }
        }
        out.insert(module.clone(), deps);
    }
    out
}

/// The cycles of the graph (its strongly connected components with more than one node).
fn cycles(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    // Kosaraju: finish order on the graph, then components on the reversed graph.
    fn visit(
        g: &BTreeMap<Module, BTreeSet<Module>>,
        v: &Module,
        seen: &mut BTreeSet<Module>,
        order: &mut Vec<Module>,
    ) {
        let mut stack = vec![(v.clone(), false)];
        while let Some((node, done)) = stack.pop() {
            if done {
                order.push(node);
                continue;
            }
            if !seen.insert(node.clone()) {
                continue;
            }
            stack.push((node.clone(), true));
            for w in &g[&node] {
                if !seen.contains(w) {
                    stack.push((w.clone(), false));
                }
            }
        }
    }
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for v in graph.keys() {
        visit(graph, v, &mut seen, &mut order);
    }
    let mut reversed: BTreeMap<Module, BTreeSet<Module>> =
        graph.keys().map(|k| (k.clone(), BTreeSet::new())).collect();
    for (v, ws) in graph {
        for w in ws {
            reversed.get_mut(w).unwrap().insert(v.clone());
        }
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for v in order.iter().rev() {
        let mut comp = Vec::new();
        if seen.contains(v) {
            continue;
        }
        visit(&reversed, v, &mut seen, &mut comp);
        if comp.len() > 1 {
            comp.sort();
            out.push(comp);
        }
    }
    out
}

fn name(m: &Module) -> String {
    if m.is_empty() { "lib".to_owned() } else { m.join("/") }
}

#[test]
fn no_import_cycle_among_the_files_of_shell_src() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = sources(&root);
    assert!(files.len() > 30, "the sources were found: {}", files.len());
    let graph = edges(&files);
    // The scan sees real edges (a check that it cannot pass by seeing nothing).
    let module = |s: &str| s.split('/').map(str::to_owned).collect::<Module>();
    assert!(
        graph[&module("arbiter")].contains(&module("worker")),
        "{:?}",
        graph[&module("arbiter")]
    );
    assert!(graph[&module("python/sync")].contains(&module("python/pipeline")));
    let found = cycles(&graph);
    let report: Vec<String> = found
        .iter()
        .map(|c| {
            let members: BTreeSet<&Module> = c.iter().collect();
            let lines: Vec<String> = c
                .iter()
                .map(|m| {
                    let to: Vec<String> =
                        graph[m].iter().filter(|t| members.contains(t)).map(name).collect();
                    format!("  {} -> {}", name(m), to.join(", "))
                })
                .collect();
            format!("cycle:\n{}", lines.join("\n"))
        })
        .collect();
    assert!(found.is_empty(), "{}", report.join("\n"));
}

#[test]
fn the_scan_finds_a_cycle_when_there_is_one() {
    let m = |s: &str| s.split('/').map(str::to_owned).collect::<Module>();
    let mut g = BTreeMap::new();
    g.insert(m("a"), BTreeSet::from([m("b")]));
    g.insert(m("b"), BTreeSet::from([m("c")]));
    g.insert(m("c"), BTreeSet::from([m("a")]));
    g.insert(m("d"), BTreeSet::from([m("a")]));
    assert_eq!(cycles(&g), vec![vec![m("a"), m("b"), m("c")]]);
    let p = paths("use crate::x::{y, z::w as v};\nlet a = super::q::r(1);");
    assert!(p.contains(&vec!["crate".into(), "x".into(), "y".into()]), "{p:?}");
    assert!(p.contains(&vec!["crate".into(), "x".into(), "z".into(), "w".into()]), "{p:?}");
    assert!(p.contains(&vec!["super".into(), "q".into(), "r".into()]), "{p:?}");
}
