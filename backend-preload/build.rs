//! Builds the injected library (`lib/*.c`) with the system's C compiler into `OUT_DIR`;
//! the backend embeds it. Without a C compiler the crate still builds, and the backend says at
//! run time that it is not available.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    macos_numbering();
    println!("cargo:rerun-if-changed=lib");
    println!("cargo:rerun-if-env-changed=CC");
    println!("cargo::rustc-check-cfg=cfg(preload_built)");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let lib = out.join("liballocflame_preload.so");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if os == "macos" {
        build_macos(&lib, &arch);
        return;
    }
    if os != "linux" || arch != "x86_64" {
        // The Linux library's unwinder reads x86-64 CFI.
        let _ = std::fs::write(&lib, b"");
        return;
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let result = Command::new(&cc)
        .args([
            "-shared",
            "-fPIC",
            "-O2",
            "-g",
            "-std=gnu11",
            "-fno-omit-frame-pointer",
            "-fvisibility=hidden",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-Wl,-z,now",
            "-o",
        ])
        .arg(&lib)
        .args([
            "lib/preload.c",
            "lib/unwind.c",
            "lib/children.c",
            "lib/foreign.c",
            "lib/tables.c",
        ])
        .arg("-ldl")
        .arg("-lpthread")
        .output();
    match result {
        Ok(o) if o.status.success() => println!("cargo:rustc-cfg=preload_built"),
        Ok(o) => {
            // A compiler that rejects the library is this project's bug: say so loudly.
            panic!(
                "{cc} failed to build the library in lib/:\n{}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Err(e) => {
            println!("cargo:warning=no C compiler ({cc}: {e}): the preload backend is not built");
            let _ = std::fs::write(&lib, b"");
        }
    }
}

/// Writes `$OUT_DIR/functions_macos.rs` from `lib/functions_macos.h`, the one definition of the
/// macOS library's function numbering (its n-th `FUNCTION(name)` line is number n). Written on
/// every platform, so that the mapping is tested everywhere.
fn macos_numbering() {
    println!("cargo:rerun-if-changed=lib/functions_macos.h");
    let header = std::fs::read_to_string("lib/functions_macos.h")
        .expect("lib/functions_macos.h is part of the crate");
    let names: Vec<&str> = header
        .lines()
        .filter_map(|l| l.trim().strip_prefix("FUNCTION(")?.strip_suffix(')'))
        .collect();
    let mut out = format!(
        "/// The macOS library's functions in its numbering (`lib/functions_macos.h`).\npub const FUNCTIONS: [&str; {}] = [\n",
        names.len()
    );
    for n in &names {
        out.push_str(&format!("    {n:?},\n"));
    }
    out.push_str("];\n");
    let dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(dir.join("functions_macos.rs"), out).expect("OUT_DIR is writable");
}

/// Builds `lib/preload_macos.c` into a dylib (under the same internal name as the Linux
/// library). Nobody can compile against the macOS SDK on this project's development machines
/// (only the GitHub macOS job does), so a compiler that rejects the file gives a warning and an
/// empty library, and the backend says at run time that it is not available, instead of
/// breaking the whole macOS build. A build for macOS on another host (`cargo check --target`)
/// cannot link a dylib either: the library is left empty there too.
fn build_macos(lib: &std::path::Path, arch: &str) {
    println!("cargo:rerun-if-changed=lib/preload_macos.c");
    let _ = std::fs::write(lib, b"");
    if !cfg!(target_os = "macos") {
        return;
    }
    let arch = match arch {
        "aarch64" => "arm64",
        other => other,
    };
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let result = Command::new(&cc)
        .args([
            "-dynamiclib",
            "-arch",
            arch,
            "-mmacosx-version-min=11.0",
            "-O2",
            "-g",
            "-std=gnu11",
            "-fno-omit-frame-pointer",
            "-fno-builtin",
            "-fvisibility=hidden",
            "-Wall",
            "-Wextra",
            "-o",
        ])
        .arg(lib)
        .args(["lib/preload_macos.c", "lib/tables.c"])
        .output();
    match result {
        Ok(o) if o.status.success() => println!("cargo:rustc-cfg=preload_built"),
        Ok(o) => {
            let _ = std::fs::write(lib, b"");
            let text = String::from_utf8_lossy(&o.stderr);
            println!("cargo:warning={cc} failed to build lib/preload_macos.c: the preload backend is not available");
            for line in text.lines().take(40) {
                println!("cargo:warning={line}");
            }
        }
        Err(e) => {
            println!("cargo:warning=no C compiler ({cc}: {e}): the preload backend is not built");
        }
    }
}
