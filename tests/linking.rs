//! A necessary condition of every GPU run, checked on machines without a GPU: when the libtorch in use
//! has a CUDA backend, our binaries load it. Without `libtorch_cuda.so` among an executable's NEEDED
//! libraries the backend never registers and `devices = "auto"` silently runs on the CPU.

mod common;
use common::{text, Case};
use std::process::Command;

fn libtorch_lib() -> Option<std::path::PathBuf> {
    option_env!("KD_SWEEP_LIBTORCH_LIB").map(std::path::PathBuf::from)
}

fn needed(binary: &str) -> Vec<String> {
    let out = Command::new("readelf")
        .args(["-d", binary])
        .output()
        .expect("readelf (binutils) is needed for this test");
    assert!(out.status.success(), "readelf -d {binary} failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next().map(String::from))
        .collect()
}

/// Whether this build's libtorch is a CUDA build; prints why when it is not.
fn cuda_libtorch() -> bool {
    let Some(lib) = libtorch_lib() else {
        eprintln!("skipped: the build recorded no libtorch folder");
        return false;
    };
    if !lib.join("libtorch_cuda.so").exists() {
        eprintln!(
            "skipped: {} is a CPU-only libtorch (no libtorch_cuda.so)",
            lib.display()
        );
        return false;
    }
    true
}

#[test]
fn the_binaries_keep_libtorch_cuda_needed() {
    if !cuda_libtorch() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_kd-sweep");
    let libs = needed(bin);
    assert!(
        libs.iter().any(|l| l == "libtorch_cuda.so"),
        "{bin} does not load libtorch_cuda.so (NEEDED: {libs:?}); see build.rs"
    );
    // this test binary is linked by the same build script
    let me = std::env::current_exe().unwrap();
    let libs = needed(me.to_str().unwrap());
    assert!(
        libs.iter().any(|l| l == "libtorch_cuda.so"),
        "the test binaries do not load libtorch_cuda.so (NEEDED: {libs:?})"
    );
    // and the library resolves through the rpath: no "not found" for it in ldd
    let ldd = Command::new("ldd").arg(bin).output().unwrap();
    let ldd = String::from_utf8_lossy(&ldd.stdout);
    let line = ldd
        .lines()
        .find(|l| l.contains("libtorch_cuda.so"))
        .unwrap_or_default();
    assert!(
        line.contains("=>") && !line.contains("not found"),
        "ldd: {line:?}"
    );
}

/// Users copy the binary to cluster nodes and GPU machines: the release profile leaves debug info out
/// (with line tables it was 85 MiB, 81.6 MiB of them).
#[test]
fn the_release_binary_is_lean() {
    let bin = env!("CARGO_BIN_EXE_kd-sweep");
    if !bin.contains("/release/") {
        eprintln!("skipped: {bin} is not a release build");
        return;
    }
    let size = std::fs::metadata(bin).unwrap().len();
    assert!(
        size < 15 * 1024 * 1024,
        "{bin} is {:.1} MiB; the release profile should strip debug info (Cargo.toml)",
        size as f64 / (1024.0 * 1024.0)
    );
}

#[test]
fn the_cuda_backend_is_registered_in_the_worker_process() {
    if !cuda_libtorch() {
        return;
    }
    // in this process (linked like the binary) and in the real binary's worker
    assert!(
        tch::utils::has_cudart(),
        "libtorch's CUDA runtime hooks are not registered"
    );
    let c = Case::new(50, 20);
    let out = c.run(&["devices", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let probe: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(probe["has_cudart"], true, "{probe}");
    assert!(probe["cuda_version"].is_string(), "{probe}");
}

#[test]
fn asking_for_a_gpu_without_a_driver_names_the_missing_driver() {
    let probe = kd_sweep::platform::device::Probe::read();
    if probe.device_count > 0 || probe.driver.is_some() || !probe.has_cudart {
        eprintln!("skipped: this machine has an NVIDIA driver, or libtorch has no CUDA backend");
        return;
    }
    let c = Case::new(200, 60);
    let sweep = c.sweep_as_written("g", &common::body("[0]", "[1]", "[0.5]"));
    let out = c.run(&["plan", sweep.to_str().unwrap(), "--devices", "cuda:0"]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no NVIDIA driver found"), "{err}");
    assert!(err.contains("needs driver ≥"), "{err}");
    // and auto says, in one line, that it runs on the CPU and why
    let out = c.run(&["plan", sweep.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("devices = \"auto\": running on the CPU (no NVIDIA GPU on this machine)"),
        "{err}"
    );
}
