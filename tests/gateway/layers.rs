//! The layering of `src` (ARCHITECTURE.md, "Layers"): a top-level module
//! imports only modules of lower layers, never one of its own layer or
//! above. Read from the source text: every `crate::<module>` outside
//! comments and unit-test modules.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, lowest first; each top-level module of `src` is in one.
const LAYERS: &[&[&str]] = &[
    &[
        "domain",
        "clock",
        "error_text",
        "json",
        "jwt",
        "settings",
        "tasks",
        "limiter",
    ],
    &["logging", "outbound", "store"],
    &["audit", "telemetry", "provider"],
    &["registration"],
    &["reconcile", "software_statement", "front"],
    &["http"],
    &["connections", "config"],
    &["app"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The `crate::<module>` names `source` uses, outside comments and its
/// unit-test module.
fn imported_modules(source: &str) -> BTreeSet<String> {
    let code = source
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or_default();
    let mut modules = BTreeSet::new();
    for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
        for (at, _) in line.match_indices("crate::") {
            let name: String = line[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            modules.insert(name);
        }
    }
    modules
}

#[test]
fn no_module_imports_its_own_layer_or_above() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative.components().next().unwrap().as_os_str();
        let top = top.to_str().unwrap().trim_end_matches(".rs");
        if top == "lib" || top == "main" {
            continue;
        }
        let Some(own) = layer(top) else {
            wrong.push(format!("{top} is in no layer"));
            continue;
        };
        let source = std::fs::read_to_string(file).unwrap();
        for module in imported_modules(&source) {
            if module == top {
                continue;
            }
            match layer(&module) {
                Some(theirs) if theirs < own => {}
                _ => wrong.push(format!("{} imports crate::{module}", relative.display())),
            }
        }
    }
    assert!(
        files.len() > 100,
        "read only {} files of {}",
        files.len(),
        src.display()
    );
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn the_reading_sees_imports_and_skips_comments_and_tests() {
    let source = "use crate::store::X;\n//! [`crate::app`]\nfn f() { crate::http::g() }\n\
                  #[cfg(test)]\nmod tests {\n    use crate::app;\n}\n";
    let found: Vec<String> = imported_modules(source).into_iter().collect();
    assert_eq!(found, ["http", "store"]);
}
