//! `kd-sweep devices`: what [`Probe`] found on this machine and what `devices = "auto"` resolves to,
//! as lines for people and as JSON for scripts.

use super::device::{gpu_of, resolve, DeviceSpec, Devices, Probe};
use std::fmt::Write;

/// The probe as JSON (`libtorch`: the version kd-sweep was built against).
pub fn describe_json(p: &Probe, libtorch: &str) -> serde_json::Value {
    let auto = resolve(&Devices::Auto, p);
    serde_json::json!({
        "has_cudart": p.has_cudart,
        "cuda_version": p.cuda_version.map(|(a, b)| format!("{a}.{b}")),
        "driver": p.driver,
        "gpu_node": p.gpu_node,
        "device_count": p.device_count,
        "gpus": (0..p.device_count)
            .map(|i| gpu_of(DeviceSpec::Cuda(i)))
            .collect::<Vec<_>>(),
        "cuda_visible_devices": p.visible,
        "libtorch": libtorch,
        "auto": match &auto {
            Ok(r) => serde_json::json!(r.devices),
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        },
    })
}

/// The probe as lines: libtorch, its CUDA backend, the driver, the GPUs, what "auto" gives and,
/// when no GPU can be used, why.
pub fn describe(p: &Probe, libtorch: &str) -> String {
    let or_none = |o: Option<String>| o.unwrap_or_else(|| "none".into());
    let mut o = format!("libtorch {libtorch}\n");
    let backend = if p.has_cudart {
        format!(
            "loaded (CUDA {})",
            or_none(p.cuda_version.map(|(a, b)| format!("{a}.{b}")))
        )
    } else {
        "none (CPU-only libtorch, or libtorch_cuda.so not loaded)".into()
    };
    let _ = writeln!(o, "CUDA backend: {backend}");
    let _ = writeln!(o, "NVIDIA driver: {}", or_none(p.driver.clone()));
    let _ = writeln!(o, "GPUs libtorch can use: {}", p.device_count);
    for i in 0..p.device_count {
        let d = DeviceSpec::Cuda(i);
        let _ = writeln!(o, "  {d}: {}", gpu_of(d).unwrap_or_default());
    }
    match resolve(&Devices::Auto, p) {
        Ok(r) => {
            let names: Vec<String> = r.devices.iter().map(|d| d.to_string()).collect();
            let _ = writeln!(o, "devices = \"auto\" → {}", names.join(", "));
            if let Some(n) = r.note {
                let _ = writeln!(o, "{n}");
            }
        }
        Err(e) => {
            let _ = writeln!(o, "devices = \"auto\" → error: {e}");
        }
    }
    if p.device_count == 0 && p.has_cudart {
        let _ = writeln!(o, "why no GPU: {}", p.why_no_gpu());
    }
    o
}
