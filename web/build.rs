//! Builds the web app (`ui/`: Vue 3 + TypeScript, see ui/README.md) that the binary
//! embeds, so `cargo run --release` serves it with nothing to install but Node.js and
//! npm. The sources are copied to OUT_DIR and built there (packages too, never in the
//! source tree): the typed API client is generated from ui/openapi.json, vue-tsc
//! type-checks everything (a type error fails this build), Vite bundles with hashed
//! names and gzip/brotli copies. The asset table the server serves is written last.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCES: &[&str] = &[
    "src",
    "index.html",
    "package.json",
    "package-lock.json",
    "openapi.json",
    "tsconfig.json",
    "vite.config.ts",
];

fn run(what: &str, command: &mut Command) {
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("{what}: could not start ({e}); install Node.js and npm"));
    assert!(status.success(), "{what} failed ({status})");
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read_dir") {
            let entry = entry.expect("entry");
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    }
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn mime(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "woff2" => "font/woff2",
        "wav" => "audio/wav",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

fn main() {
    let ui = Path::new("ui");
    for watched in SOURCES {
        println!("cargo:rerun-if-changed=ui/{watched}");
    }
    println!("cargo:rerun-if-env-changed=KOLOKOL_UI_SKIP");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    // Only to refresh ui/openapi.json after an API change the UI does not type-check
    // against yet: `KOLOKOL_UI_SKIP=1 KOLOKOL_BLESS=1 cargo test -p kolokol-web --lib openapi`.
    if std::env::var_os("KOLOKOL_UI_SKIP").is_some() {
        std::fs::write(out.join("assets.rs"), "&[]").expect("assets.rs");
        return;
    }
    let work = out.join("ui");
    std::fs::create_dir_all(&work).expect("OUT_DIR/ui");
    // npm ci only when the lock changed since the last install.
    let lock = std::fs::read(ui.join("package-lock.json")).expect("ui/package-lock.json");
    let installed = work.join(".installed-lock");
    let tools = [
        "openapi-typescript/bin/cli.js",
        "vue-tsc/bin/vue-tsc.js",
        "vite/bin/vite.js",
    ];
    let modules = work.join("node_modules");
    if std::fs::read(&installed).ok().as_deref() != Some(&lock[..])
        || !tools.iter().all(|t| modules.join(t).exists())
    {
        std::fs::copy(ui.join("package.json"), work.join("package.json")).expect("copy");
        std::fs::copy(ui.join("package-lock.json"), work.join("package-lock.json")).expect("copy");
        run(
            "npm ci (web/ui)",
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&work),
        );
        std::fs::write(&installed, &lock).expect("mark the install");
    }
    // A fresh copy of the sources: a file deleted here must not linger there.
    let _ = std::fs::remove_dir_all(work.join("src"));
    for source in SOURCES {
        copy_tree(&ui.join(source), &work.join(source));
    }
    let node = |what: &str, script: &str, args: &[&str]| {
        run(
            what,
            Command::new("node")
                .arg(work.join("node_modules").join(script))
                .args(args)
                .current_dir(&work)
                .env("KOLOKOL_UI_OUT", out.join("dist")),
        )
    };
    node(
        "openapi-typescript (the typed API client)",
        "openapi-typescript/bin/cli.js",
        &["openapi.json", "-o", "src/api/schema.gen.ts", "--silent"],
    );
    node(
        "vue-tsc (the web app's type check)",
        "vue-tsc/bin/vue-tsc.js",
        &["--noEmit", "-p", "tsconfig.json"],
    );
    node(
        "vite build (the web app)",
        "vite/bin/vite.js",
        &["build", "--logLevel", "warn"],
    );

    // The asset table: each file with its gzip and brotli copies when Vite made them.
    let dist = out.join("dist");
    let mut all = Vec::new();
    files(&dist, &mut all);
    all.sort();
    let mut table = String::from("&[\n");
    for path in &all {
        let name = path.to_str().expect("utf-8 path");
        if name.ends_with(".gz") || name.ends_with(".br") {
            continue;
        }
        let web = format!("/{}", path.strip_prefix(&dist).expect("in dist").display());
        let copy = |ext: &str| {
            let p = format!("{name}.{ext}");
            if Path::new(&p).exists() {
                format!("Some(include_bytes!({p:?}))")
            } else {
                "None".into()
            }
        };
        writeln!(
            table,
            "    Asset {{ path: {web:?}, mime: {:?}, raw: include_bytes!({name:?}), gzip: {}, brotli: {} }},",
            mime(&web),
            copy("gz"),
            copy("br"),
        )
        .expect("write");
    }
    table.push(']');
    std::fs::write(out.join("assets.rs"), table).expect("assets.rs");
}
