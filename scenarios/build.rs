//! Generates one test per scenario file in this folder, so a new file is a new test.
//! Scenarios of 1,000 nodes or more are heavy: they run only in optimised builds
//! without debug assertions (`cargo test --release`, which `.ci/run` also runs).

use std::fmt::Write;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("the crate folder is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.file_name().is_some_and(|n| n != "Cargo.toml"))
        .collect();
    files.sort();
    let mut out = String::new();
    for path in files {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path.file_stem().expect("a file").to_string_lossy().to_string();
        let ident: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let nodes: usize = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("nodes").and_then(|r| r.trim().strip_prefix('=')))
            .and_then(|v| v.split('#').next()?.trim().parse().ok())
            .unwrap_or(0);
        if nodes >= 1000 {
            writeln!(out, "#[cfg_attr(debug_assertions, ignore = \"heavy: {nodes} nodes, run with --release\")]").unwrap();
        }
        writeln!(out, "#[test]\nfn {ident}() {{ run_catalogue_file({:?}); }}\n", path.display().to_string()).unwrap();
    }
    let dest = Path::new(&std::env::var("OUT_DIR").expect("set by cargo")).join("catalogue_tests.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}
