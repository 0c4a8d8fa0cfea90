//! The crate's layout: imports run one way (routes → responses ← openapi, and no cycle between
//! modules), and a route is added in one place: the route table, whose paths the document has.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const SRC: &str = env!("CARGO_MANIFEST_DIR");

/// Every source file of the crate but this one: its path under `src/` and its text.
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let src = Path::new(SRC).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .filter(|(name, _)| name != "tests.rs")
        .collect()
}

#[test]
fn no_route_imports_the_openapi_module() {
    let routes: Vec<_> = sources().into_iter().filter(|(name, _)| name.starts_with("routes/")).collect();
    assert!(routes.len() > 3);
    for (name, text) in routes {
        assert!(!text.contains("crate::openapi"), "src/{name} mentions crate::openapi: routes must not import it");
    }
}

/// The modules a file's code (its test module aside) names through `crate::`, an item re-exported
/// by the crate root counting as its module.
fn imports(code: &str, modules: &BTreeSet<String>, reexports: &BTreeMap<String, String>) -> BTreeSet<String> {
    let ident = |s: &str| s.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let mut names = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        match rest.strip_prefix('{') {
            Some(group) => {
                let (mut depth, mut start) = (0, 0);
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => {
                            names.push(ident(&group[start..i]));
                            break;
                        }
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            names.push(ident(&group[start..i]));
                            start = i + 1;
                        }
                        _ => {}
                    }
                }
            }
            None => names.push(ident(rest)),
        }
    }
    names
        .into_iter()
        .filter_map(|name| if modules.contains(&name) { Some(name) } else { reexports.get(&name).cloned() })
        .collect()
}

#[test]
fn imports_between_modules_run_one_way() {
    let sources = sources();
    let root = &sources.iter().find(|(name, _)| name == "lib.rs").unwrap().1;
    let mut modules = BTreeSet::new();
    let mut reexports = BTreeMap::new();
    for line in root.lines().map(str::trim) {
        if let Some(module) = line.strip_prefix("mod ").or_else(|| line.strip_prefix("pub mod ")) {
            modules.insert(module.trim_end_matches(';').to_string());
        }
        if let Some((module, items)) = line.strip_prefix("pub use ").and_then(|rest| rest.split_once("::")) {
            for item in items.trim_end_matches(';').trim_matches(|c| c == '{' || c == '}').split(',') {
                reexports.insert(item.trim().to_string(), module.to_string());
            }
        }
    }
    assert!(modules.contains("routes") && modules.contains("openapi") && modules.contains("responses"));
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, text) in &sources {
        if name == "lib.rs" {
            continue;
        }
        let module = name.split('/').next().unwrap().trim_end_matches(".rs").to_string();
        let code = text.split("#[cfg(test)]").next().unwrap();
        let mut targets = imports(code, &modules, &reexports);
        targets.remove(&module);
        graph.entry(module).or_default().extend(targets);
    }
    assert!(graph["openapi"].contains("routes") && graph["openapi"].contains("responses"));
    assert!(graph["routes"].contains("responses") && !graph["routes"].contains("openapi"));
    // No module reaches itself: depth-first, with the path so far.
    fn visit(module: &str, graph: &BTreeMap<String, BTreeSet<String>>, path: &mut Vec<String>) {
        if let Some(at) = path.iter().position(|m| m == module) {
            panic!("modules import each other: {} -> {module}", path[at..].join(" -> "));
        }
        path.push(module.to_string());
        for next in graph.get(module).into_iter().flatten() {
            visit(next, graph, path);
        }
        path.pop();
    }
    for module in graph.keys() {
        visit(module, &graph, &mut Vec::new());
    }
}

/// The document has exactly the table's paths, in its order, each with the table's methods: a
/// route is added in one place.
#[test]
fn the_document_has_the_paths_and_methods_of_the_route_table() {
    let document = crate::openapi::document();
    let documented: Vec<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, item)| {
            let methods: Vec<String> = item.as_object().unwrap().keys().map(|m| m.to_ascii_uppercase()).collect();
            (path.clone(), methods.join(", "))
        })
        .collect();
    let table: Vec<(String, String)> = crate::routes::paths()
        .iter()
        .map(|(path, methods)| (path.to_string(), methods.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ")))
        .collect();
    assert_eq!(documented, table);
}
