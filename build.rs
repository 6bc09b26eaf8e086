//! Gives every binary of this package (the CLI, tests, benches) an rpath to libtorch's lib directory,
//! so that `target/release/kd-sweep` runs without LD_LIBRARY_PATH. torch-sys publishes the directory it
//! linked against as `DEP_TCH_LIBTORCH_LIB` (its `links = "tch"`); we resolve symlinks so the rpath
//! points at the real install rather than at the checkout's `.libtorch` link. Also records the
//! libtorch version for the manifest.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    let dir = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.into());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    // libtorch's CUDA backend registers itself when its library loads, but nothing calls it by name,
    // so with the default --as-needed the linker drops it and CUDA "does not exist" at run time
    // (tch-rs #980; torch-sys's own --no-as-needed does not reach a dependent binary). Keep it NEEDED
    // whenever this libtorch has it; tests/linking.rs checks the result with readelf.
    if dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
        println!("cargo:rustc-env=KD_SWEEP_LIBTORCH_CUDA=1");
    }
    println!("cargo:rustc-env=KD_SWEEP_LIBTORCH_LIB={}", dir.display());
    shim(&dir);
    // pip wheels: torch/version.py (`__version__ = '2.11.0+cu130'`); plain libtorch: build-version
    let parent = dir.parent().map(|p| p.to_path_buf()).unwrap_or_default();
    let version = std::fs::read_to_string(parent.join("version.py"))
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("__version__ = ")
                    .map(|v| v.trim_matches(|c| c == '\'' || c == '"').to_string())
            })
        })
        .or_else(|| {
            std::fs::read_to_string(parent.join("build-version"))
                .ok()
                .map(|v| v.trim().to_string())
        });
    if let Some(v) = version {
        println!("cargo:rustc-env=KD_SWEEP_LIBTORCH_VERSION={v}");
    }
}

/// Compiles csrc/shim.cpp, the few libtorch switches tch does not expose (deterministic algorithms,
/// bf16 autocast on the CPU and CUDA, the CPU capability in use), against the headers of the
/// libtorch in use (`<lib>/../include`, as a pip wheel and a libtorch archive both lay them out).
fn shim(lib: &std::path::Path) {
    println!("cargo:rerun-if-changed=csrc/shim.cpp");
    let include = lib.parent().map(|p| p.join("include")).unwrap_or_default();
    // torch's own wheels and archives since 2.6 use the C++11 string ABI; torch-sys reads the same
    // variable with the same default
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .file("csrc/shim.cpp")
        .include(&include)
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag_if_supported("-Wno-unused-parameter")
        .warnings(false)
        .compile("kd_shim");
}
