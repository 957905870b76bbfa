//! Generates one test per scenario file in this folder, so a new file is a new test.
//! Scenarios of 300 nodes or more are heavy: they run only in optimised builds
//! without debug assertions (`cargo test --release`, which `.ci/run` also runs).
//! Files in `heavy/` are tests too, ignored unless asked for (`-- --ignored`): they take
//! longer than CI allows.

use std::fmt::Write;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let heavy = dir.join("heavy");
    let mut files = Vec::new();
    for folder in [dir, heavy.as_path()] {
        println!("cargo:rerun-if-changed={}", folder.display());
        let Ok(entries) = std::fs::read_dir(folder) else {
            continue;
        };
        files.extend(
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension().is_some_and(|x| x == "toml")
                        && p.file_name().is_some_and(|n| n != "Cargo.toml")
                }),
        );
    }
    files.sort();
    let mut out = String::new();
    for path in files {
        println!("cargo:rerun-if-changed={}", path.display());
        let prefix = if path.parent() == Some(heavy.as_path()) {
            "heavy_"
        } else {
            ""
        };
        let name = format!(
            "{prefix}{}",
            path.file_stem().expect("a file").to_string_lossy()
        );
        let ident: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let nodes: usize = text
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("nodes")
                    .and_then(|r| r.trim().strip_prefix('='))
            })
            .and_then(|v| v.split('#').next()?.trim().parse().ok())
            .unwrap_or(0);
        if path.parent() == Some(heavy.as_path()) {
            writeln!(
                out,
                "#[ignore = \"heavy: longer than CI allows, see scenarios/heavy/README.md\"]"
            )
            .unwrap();
        } else if nodes >= 300 {
            writeln!(out, "#[cfg_attr(debug_assertions, ignore = \"heavy: {nodes} nodes, run with --release\")]").unwrap();
        }
        writeln!(
            out,
            "#[test]\nfn {ident}() {{ run_catalogue_file({:?}); }}\n",
            path.display().to_string()
        )
        .unwrap();
    }
    let dest =
        Path::new(&std::env::var("OUT_DIR").expect("set by cargo")).join("catalogue_tests.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}
