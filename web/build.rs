//! Builds the browser softphone (`ui/`: TypeScript + JsSIP from npm) into one script that
//! the binary embeds, so `cargo run --release` serves it with nothing else to install but
//! the machine's Node.js and npm. Packages go to OUT_DIR, never into the source tree.

use std::path::{Path, PathBuf};
use std::process::Command;

fn run(what: &str, command: &mut Command) {
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("{what}: could not start ({e}); install Node.js and npm"));
    assert!(status.success(), "{what} failed ({status})");
}

fn main() {
    let ui = Path::new("ui");
    for watched in ["src", "index.html", "package.json", "package-lock.json"] {
        println!("cargo:rerun-if-changed=ui/{watched}");
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let packages = out.join("ui");
    std::fs::create_dir_all(&packages).expect("OUT_DIR/ui");
    let lock = std::fs::read(ui.join("package-lock.json")).expect("ui/package-lock.json");
    let installed = packages.join("package-lock.json");
    // npm ci only when the lock changed since the last install.
    if std::fs::read(&installed).ok().as_deref() != Some(&lock[..])
        || !packages.join("node_modules").exists()
    {
        std::fs::copy(ui.join("package.json"), packages.join("package.json")).expect("copy");
        std::fs::write(&installed, &lock).expect("copy lock");
        run(
            "npm ci (web/ui)",
            Command::new("npm")
                .args([
                    "ci",
                    "--no-audit",
                    "--no-fund",
                    "--ignore-scripts",
                    "--loglevel=error",
                ])
                .current_dir(&packages),
        );
    }
    let modules = packages.join("node_modules");
    run(
        "esbuild (web/ui)",
        Command::new("node")
            .arg(modules.join("esbuild/bin/esbuild"))
            .arg(ui.join("src/main.ts"))
            .args([
                "--bundle",
                "--minify",
                "--target=es2020",
                "--log-level=warning",
            ])
            .arg(format!("--outfile={}", out.join("softphone.js").display()))
            .env("NODE_PATH", &modules),
    );
}
