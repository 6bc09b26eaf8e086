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
/// bf16 autocast on the CPU and CUDA, the CPU capability in use), and csrc/graph.cpp (CUDA graphs),
/// against the headers of the libtorch in use (`<lib>/../include`, as a pip wheel and a libtorch
/// archive both lay them out).
fn shim(lib: &std::path::Path) {
    println!("cargo:rerun-if-changed=csrc/shim.cpp");
    println!("cargo:rerun-if-changed=csrc/graph.cpp");
    println!("cargo:rerun-if-env-changed=CUDA_HOME");
    let include = lib.parent().map(|p| p.join("include")).unwrap_or_default();
    // torch's own wheels and archives since 2.6 use the C++11 string ABI; torch-sys reads the same
    // variable with the same default
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .file("csrc/shim.cpp")
        .file("csrc/graph.cpp")
        .include(&include)
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag_if_supported("-Wno-unused-parameter")
        .warnings(false);
    // CUDA graphs need the CUDA runtime's headers (ATen's CUDA headers include them) and libc10_cuda
    let mut cuda = cuda_include(lib);
    if !lib.join("libc10_cuda.so").exists() {
        cuda.clear();
    }
    if !cuda.is_empty() {
        // the runtime's folder first: the compiler's copy only fills in crt/
        build.includes(&cuda).define("KD_CUDA_GRAPHS", None);
    }
    build.compile("kd_shim");
    if !cuda.is_empty() {
        println!("cargo:rustc-link-search=native={}", lib.display());
        println!("cargo:rustc-link-lib=dylib=c10_cuda");
    }
}

/// The folders with the CUDA runtime's headers for a CUDA libtorch at `lib`: the runtime's
/// (`cuda_runtime_api.h`: the pip wheel's `nvidia/cu13` or older wheels' `nvidia/cuda_runtime`
/// package beside torch, `$CUDA_HOME/include`, /usr/local/cuda/include), and one with the compiler
/// configuration headers they include (`crt/host_config.h`: a toolkit has them beside the runtime's;
/// the wheels leave them to the CUDA compiler's package, and triton — a dependency of torch's CUDA
/// wheels — carries a copy). Empty for a CPU-only libtorch or when one is missing (graphs are then
/// not built).
fn cuda_include(lib: &std::path::Path) -> Vec<std::path::PathBuf> {
    use std::path::{Path, PathBuf};
    let site = match lib.parent().and_then(Path::parent) {
        Some(site) if lib.join("libtorch_cuda.so").exists() => site.to_path_buf(),
        _ => return Vec::new(),
    };
    let mut toolkit: Vec<PathBuf> = Vec::new();
    if let Ok(home) = std::env::var("CUDA_HOME") {
        toolkit.push(Path::new(&home).join("include"));
    }
    toolkit.push("/usr/local/cuda/include".into());
    let runtime = [
        site.join("nvidia/cu13/include"),
        site.join("nvidia/cuda_runtime/include"),
    ]
    .into_iter()
    .chain(toolkit.iter().cloned())
    .find(|d| d.join("cuda_runtime_api.h").exists());
    let Some(runtime) = runtime else {
        return Vec::new();
    };
    let crt = std::iter::once(runtime.clone())
        .chain(std::iter::once(site.join("triton/backends/nvidia/include")))
        .chain(toolkit)
        .find(|d| d.join("crt/host_config.h").exists());
    match crt {
        Some(crt) if crt == runtime => vec![runtime],
        Some(crt) => vec![runtime, crt],
        None => Vec::new(),
    }
}
