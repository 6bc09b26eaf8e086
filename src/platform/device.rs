//! Devices: the one validated conversion from a device name (`cpu`, `cuda:N`) to [`DeviceSpec`], what
//! this machine can offer ([`Probe`]), why a GPU cannot be used ([`DeviceError`]), and how the devices
//! of a sweep become worker slots.
//!
//! Everything that decides something is a pure function of a `Probe`, so the GPU paths are checked on
//! machines without a GPU by handing them fake probes (`tests` below); `Probe::read` is the only part
//! that asks libtorch and the operating system.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A device a worker runs on. `cuda:01` and `cuda:1` parse to the same value, so one GPU can never get
/// two slots by spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceSpec {
    Cpu,
    Cuda(usize),
}

impl DeviceSpec {
    /// `cpu` or `cuda:N` (N a whole number).
    pub fn parse(s: &str) -> Result<DeviceSpec, String> {
        let s = s.trim();
        if s == "cpu" {
            return Ok(DeviceSpec::Cpu);
        }
        match s.strip_prefix("cuda:") {
            Some(n) if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => n
                .parse()
                .map(DeviceSpec::Cuda)
                .map_err(|_| format!("\"{s}\": device index too large")),
            _ => Err(format!(
                "\"{s}\" is not a device; use \"auto\", \"cpu\", or names such as \"cuda:0\""
            )),
        }
    }

    pub fn is_cuda(self) -> bool {
        matches!(self, DeviceSpec::Cuda(_))
    }

    /// The libtorch device inside a process. A worker pinned to one GPU through
    /// `CUDA_VISIBLE_DEVICES` sees it as `cuda:0` ([`PINNED_ENV`]).
    pub fn tch(self) -> tch::Device {
        match self {
            DeviceSpec::Cpu => tch::Device::Cpu,
            DeviceSpec::Cuda(_) if std::env::var_os(PINNED_ENV).is_some() => tch::Device::Cuda(0),
            DeviceSpec::Cuda(i) => tch::Device::Cuda(i),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl Serialize for DeviceSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DeviceSpec::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Set by the coordinator in a worker it pinned to one GPU with `CUDA_VISIBLE_DEVICES`.
pub const PINNED_ENV: &str = "KD_SWEEP_PINNED_GPU";

/// Which devices to run on, as the sweep file or `--devices` says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Devices {
    /// Every CUDA device libtorch sees, else the CPU (with a line saying why).
    Auto,
    Cpu,
    List(Vec<DeviceSpec>),
}

impl Devices {
    /// `"auto"`, `"cpu"`, or a comma-separated list of device names; a device listed twice (in any
    /// spelling) is an error.
    pub fn parse(s: &str) -> Result<Devices, String> {
        match s.trim() {
            "auto" => Ok(Devices::Auto),
            "cpu" => Ok(Devices::Cpu),
            list => Devices::list(list.split(',')),
        }
    }

    /// A list of device names, each once.
    pub fn list<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Devices, String> {
        let mut out: Vec<DeviceSpec> = Vec::new();
        for name in names {
            let d = DeviceSpec::parse(name)?;
            if out.contains(&d) {
                return Err(format!("{d} is listed twice"));
            }
            out.push(d);
        }
        if out.is_empty() {
            return Err("is empty; use \"auto\", \"cpu\" or a list such as [\"cuda:0\"]".into());
        }
        Ok(Devices::List(out))
    }
}

/// What this process can see of CUDA. `read` fills it from libtorch and the operating system; tests
/// build it by hand.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Probe {
    /// libtorch's CUDA backend (libtorch_cuda.so) is loaded in this process.
    pub has_cudart: bool,
    /// The CUDA runtime version libtorch was built with, as (major, minor), when it has one.
    pub cuda_version: Option<(u32, u32)>,
    /// The NVIDIA kernel driver's version, from /proc/driver/nvidia/version.
    pub driver: Option<String>,
    /// /dev/nvidia0 exists: this machine has an NVIDIA GPU.
    pub gpu_node: bool,
    /// CUDA devices libtorch can use.
    pub device_count: usize,
    /// The user's CUDA_VISIBLE_DEVICES, if set.
    pub visible: Option<String>,
}

impl Probe {
    /// Asks libtorch and the operating system.
    pub fn read() -> Probe {
        let has_cudart = tch::utils::has_cudart();
        let v = if has_cudart {
            tch::utils::version_cudart()
        } else {
            0
        };
        // libtorch reports CUDART_VERSION: major * 1000 + minor * 10
        let cuda_version = (v > 0).then_some(((v / 1000) as u32, ((v % 1000) / 10) as u32));
        let driver = std::fs::read_to_string("/proc/driver/nvidia/version")
            .ok()
            .and_then(|t| driver_version(&t));
        Probe {
            has_cudart,
            cuda_version,
            driver,
            gpu_node: std::path::Path::new("/dev/nvidia0").exists(),
            device_count: if has_cudart {
                tch::Cuda::device_count().max(0) as usize
            } else {
                0
            },
            visible: std::env::var("CUDA_VISIBLE_DEVICES").ok(),
        }
    }

    /// The user's `CUDA_VISIBLE_DEVICES` lists no device (empty, or the `-1` CUDA documents for
    /// hiding every GPU), so libtorch sees none on purpose.
    pub fn hides_every_gpu(&self) -> bool {
        self.device_count == 0
            && self
                .visible
                .as_deref()
                .is_some_and(|v| v.trim().is_empty() || v.trim() == "-1")
    }

    /// Why no CUDA device is usable (call when `device_count` is 0).
    pub fn why_no_gpu(&self) -> DeviceError {
        let Some((major, minor)) = self.cuda_version.filter(|_| self.has_cudart) else {
            return DeviceError::CpuOnlyLibtorch;
        };
        let cuda = format!("{major}.{minor}");
        let needed = min_driver(major);
        match &self.driver {
            None => DeviceError::NoDriver {
                cuda,
                needed,
                gpu_node: self.gpu_node,
            },
            Some(d) if driver_major(d).is_some_and(|m| m < needed) => DeviceError::DriverTooOld {
                driver: d.clone(),
                cuda,
                needed,
            },
            Some(d) => DeviceError::NoneVisible {
                driver: d.clone(),
                visible: self.visible.clone(),
            },
        }
    }
}

/// The kernel driver's version from the text of /proc/driver/nvidia/version
/// ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.65.06  Sun Jul 27 …").
pub fn driver_version(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.starts_with("NVRM version"))?;
    line.split_whitespace()
        .find(|w| w.contains('.') && w.chars().all(|c| c.is_ascii_digit() || c == '.'))
        .map(String::from)
}

fn driver_major(version: &str) -> Option<u32> {
    version.split('.').next()?.parse().ok()
}

/// The oldest Linux driver a CUDA major version runs on (NVIDIA's CUDA compatibility table: 13.x needs
/// ≥ 580, 12.x ≥ 525 with minor-version compatibility, 11.x ≥ 450).
pub fn min_driver(cuda_major: u32) -> u32 {
    match cuda_major {
        0..=11 => 450,
        12 => 525,
        _ => 580,
    }
}

/// Why the requested devices cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeviceError {
    #[error(
        "this libtorch has no CUDA backend (a CPU-only build, or libtorch_cuda.so is not loaded); \
         use a CUDA build of libtorch 2.11.0 (`LIBTORCH=/path/to/libtorch make setup`), or devices = \"cpu\""
    )]
    CpuOnlyLibtorch,
    #[error(
        "no NVIDIA driver found{}: this libtorch is built for CUDA {cuda} and needs driver ≥ {needed}; \
         install the driver, or run on the CPU with devices = \"cpu\"",
        if *gpu_node { " (/dev/nvidia0 exists, but /proc/driver/nvidia/version does not)" } else { "" }
    )]
    NoDriver {
        cuda: String,
        needed: u32,
        gpu_node: bool,
    },
    #[error(
        "the NVIDIA driver {driver} is too old for CUDA {cuda} (this libtorch needs driver ≥ {needed}); \
         install a newer driver, or use a cu12x build of the same libtorch 2.11.0 (e.g. `pip install \
         torch==2.11.0 --index-url https://download.pytorch.org/whl/cu126`) and point kd-sweep at it \
         with LD_LIBRARY_PATH=<that torch>/lib — the binary needs no rebuild"
    )]
    DriverTooOld {
        driver: String,
        cuda: String,
        needed: u32,
    },
    #[error(
        "the NVIDIA driver {driver} is loaded but libtorch sees no usable GPU{}; check `nvidia-smi`",
        visible.as_ref().map(|v| format!(" (CUDA_VISIBLE_DEVICES={v:?})")).unwrap_or_default()
    )]
    NoneVisible {
        driver: String,
        visible: Option<String>,
    },
    #[error("{device} does not exist: libtorch sees {count} CUDA device(s){}", if *count > 0 { format!(" (cuda:0 … cuda:{})", count - 1) } else { String::new() })]
    NoSuchDevice { device: DeviceSpec, count: usize },
}

/// How `devices` resolved on this machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub devices: Vec<DeviceSpec>,
    /// Said once when `auto` falls back to the CPU.
    pub note: Option<String>,
}

/// The devices a sweep runs on. `auto` is every CUDA device libtorch sees, else the CPU with a line
/// saying why — except on a machine that has a GPU (`/dev/nvidia0`) none of which is usable, where a
/// silent CPU run would hide a broken set-up: that is an error.
pub fn resolve(devices: &Devices, probe: &Probe) -> Result<Resolved, DeviceError> {
    let count = probe.device_count;
    match devices {
        Devices::Auto if count > 0 => Ok(Resolved {
            devices: (0..count).map(DeviceSpec::Cuda).collect(),
            note: None,
        }),
        // the user hid every GPU on purpose: the CPU, said once, never an error
        Devices::Auto if probe.hides_every_gpu() => Ok(Resolved {
            devices: vec![DeviceSpec::Cpu],
            note: Some(format!(
                "devices = \"auto\": running on the CPU (CUDA_VISIBLE_DEVICES={:?} hides every GPU)",
                probe.visible.as_deref().unwrap_or_default()
            )),
        }),
        Devices::Auto if probe.gpu_node && probe.has_cudart => Err(probe.why_no_gpu()),
        Devices::Auto => Ok(Resolved {
            devices: vec![DeviceSpec::Cpu],
            note: Some(format!("devices = \"auto\": running on the CPU ({})", {
                if !probe.has_cudart {
                    "this libtorch has no CUDA backend".to_string()
                } else {
                    "no NVIDIA GPU on this machine".to_string()
                }
            })),
        }),
        Devices::Cpu => Ok(Resolved {
            devices: vec![DeviceSpec::Cpu],
            note: None,
        }),
        Devices::List(list) => {
            for &d in list {
                if let DeviceSpec::Cuda(i) = d {
                    if count == 0 {
                        return Err(probe.why_no_gpu());
                    }
                    if i >= count {
                        return Err(DeviceError::NoSuchDevice { device: d, count });
                    }
                }
            }
            Ok(Resolved {
                devices: list.clone(),
                note: None,
            })
        }
    }
}

/// The physical GPU behind libtorch's `cuda:i` in this process: the i-th entry of the user's
/// `CUDA_VISIBLE_DEVICES` when it is set (an index or a `GPU-…` UUID), else `i`. A worker pinned with
/// this value sees exactly that GPU, as `cuda:0`.
pub fn physical_gpu(i: usize, visible: Option<&str>) -> String {
    match visible {
        Some(v) if !v.trim().is_empty() => v
            .split(',')
            .map(str::trim)
            .nth(i)
            .map_or_else(|| i.to_string(), String::from),
        _ => i.to_string(),
    }
}

/// One worker's place: a device and its intra-op threads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub device: DeviceSpec,
    pub threads: u32,
}

/// "cpu (2 workers)", "cuda:0 (1 worker; NVIDIA H200, sm_90, TF32), cuda:1 (…)".
pub fn summary(slots: &[Slot]) -> String {
    let mut devices: Vec<DeviceSpec> = slots.iter().map(|s| s.device).collect();
    devices.dedup(); // slots of one device are adjacent (device::slots)
    let items: Vec<String> = devices
        .into_iter()
        .map(|d| {
            let n = slots.iter().filter(|x| x.device == d).count();
            let gpu = gpu_of(d).map(|g| format!("; {g}")).unwrap_or_default();
            format!("{d} ({n} worker{}{gpu})", if n == 1 { "" } else { "s" })
        })
        .collect();
    items.join(", ")
}

/// Workers for the devices. On the CPU one per core with one thread each by default (measured: two
/// single-thread workers beat one two-thread worker on students); on a GPU one per device. When GPUs
/// are listed beside the CPU, the CPU gets one worker only by default, so that CPU workers do not take
/// the cores that feed the GPU workers. Threads per worker are fixed so that a run's numbers never
/// depend on how many workers there are.
pub fn slots(
    devices: &[DeviceSpec],
    workers_per_device: Option<u32>,
    threads: Option<u32>,
    cores: usize,
) -> Vec<Slot> {
    let any_gpu = devices.iter().any(|d| d.is_cuda());
    let mut out = Vec::new();
    for &device in devices {
        let default = match device {
            DeviceSpec::Cpu if any_gpu => 1,
            DeviceSpec::Cpu => cores.max(1) as u32,
            DeviceSpec::Cuda(_) => 1,
        };
        for _ in 0..workers_per_device.unwrap_or(default) {
            out.push(Slot {
                device,
                threads: threads.unwrap_or(1),
            });
        }
    }
    out
}

/// A CUDA device as the NVIDIA driver names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuInfo {
    /// The product name, e.g. "NVIDIA H200".
    pub name: String,
    /// Compute capability (major, minor), e.g. (9, 0).
    pub capability: (u32, u32),
}

/// The name and compute capability of CUDA device `ordinal` as this process numbers them (after
/// `CUDA_VISIBLE_DEVICES`), from the driver API. `libcuda.so.1` is loaded at run time, not linked, so
/// the binary still starts on machines without a driver; there this says so.
pub fn gpu_info(ordinal: usize) -> Result<GpuInfo, String> {
    use std::ffi::{c_char, c_int, c_uint, CStr};
    type CuInit = unsafe extern "C" fn(c_uint) -> c_int;
    type CuDeviceGet = unsafe extern "C" fn(*mut c_int, c_int) -> c_int;
    type CuDeviceGetName = unsafe extern "C" fn(*mut c_char, c_int, c_int) -> c_int;
    type CuDeviceGetAttribute = unsafe extern "C" fn(*mut c_int, c_int, c_int) -> c_int;
    // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR / _MINOR in cuda.h
    const CC_MAJOR: c_int = 75;
    const CC_MINOR: c_int = 76;
    let ordinal = c_int::try_from(ordinal).map_err(|_| format!("no CUDA device {ordinal}"))?;
    // SAFETY: dlopen/dlsym with NUL-terminated names; each symbol is cast to its documented C
    // signature (cuda.h, driver API, unversioned entry points) and called with valid out-pointers.
    unsafe {
        let lib = libc::dlopen(c"libcuda.so.1".as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
        if lib.is_null() {
            return Err("libcuda.so.1, the NVIDIA driver's CUDA library, cannot be loaded".into());
        }
        let sym = |name: &CStr| {
            let f = libc::dlsym(lib, name.as_ptr());
            if f.is_null() {
                Err(format!("libcuda.so.1 has no {}", name.to_string_lossy()))
            } else {
                Ok(f)
            }
        };
        let init: CuInit = std::mem::transmute(sym(c"cuInit")?);
        let get: CuDeviceGet = std::mem::transmute(sym(c"cuDeviceGet")?);
        let get_name: CuDeviceGetName = std::mem::transmute(sym(c"cuDeviceGetName")?);
        let attribute: CuDeviceGetAttribute = std::mem::transmute(sym(c"cuDeviceGetAttribute")?);
        let check = |what: &str, code: c_int| {
            if code == 0 {
                Ok(())
            } else {
                Err(format!("{what} failed (CUresult {code})"))
            }
        };
        check("cuInit", init(0))?;
        let mut dev: c_int = 0;
        check("cuDeviceGet", get(&mut dev, ordinal))?;
        let mut buf = [0 as c_char; 256];
        check(
            "cuDeviceGetName",
            get_name(buf.as_mut_ptr(), buf.len() as c_int, dev),
        )?;
        let (mut major, mut minor): (c_int, c_int) = (0, 0);
        check("cuDeviceGetAttribute", attribute(&mut major, CC_MAJOR, dev))?;
        check("cuDeviceGetAttribute", attribute(&mut minor, CC_MINOR, dev))?;
        // the library stays loaded: libtorch's CUDA runtime uses it too
        Ok(GpuInfo {
            name: CStr::from_ptr(buf.as_ptr())
                .to_string_lossy()
                .trim()
                .to_string(),
            capability: (major.max(0) as u32, minor.max(0) as u32),
        })
    }
}

/// Whether libtorch's float32 convolutions may use TF32 tensor cores on a GPU of this compute
/// capability: cuDNN's TF32 is on by default in libtorch (PyTorch's `torch.backends.cudnn.allow_tf32`)
/// from Ampere (8.0) on, unless `NVIDIA_TF32_OVERRIDE=0` (this value, read from the environment)
/// switches TF32 off in cuDNN and cuBLAS for the whole process.
pub fn tf32(capability: (u32, u32), override_env: Option<&str>) -> bool {
    capability.0 >= 8 && override_env.map(str::trim) != Some("0")
}

/// What besides its settings a GPU run's numbers depend on, as records keep it: the GPU model, its
/// compute capability and whether convolutions may run in TF32, e.g. "NVIDIA H200, sm_90, TF32".
pub fn gpu_class(info: &GpuInfo, tf32: bool) -> String {
    let (major, minor) = info.capability;
    let precision = if tf32 { "TF32" } else { "FP32" };
    format!("{}, sm_{major}{minor}, {precision}", info.name)
}

/// [`gpu_class`] of the GPU a run on `device` uses in this process (`None` on the CPU). A worker
/// pinned to its GPU and the coordinator that started it name the same physical GPU (see
/// [`DeviceSpec::tch`]), so both give the same text.
pub fn gpu_of(device: DeviceSpec) -> Option<String> {
    let tch::Device::Cuda(ordinal) = device.tch() else {
        return None;
    };
    let tf32_env = std::env::var("NVIDIA_TF32_OVERRIDE").ok();
    Some(match gpu_info(ordinal) {
        Ok(info) => gpu_class(&info, tf32(info.capability, tf32_env.as_deref())),
        Err(why) => format!("unidentified GPU ({why})"),
    })
}

/// What a CPU run's numbers depend on besides its settings and numerics mode, as records keep it:
/// the CPU's vendor and model from `/proc/cpuinfo`'s text, e.g. "GenuineIntel, Intel(R) Xeon(R)
/// Processor" (`None` without a vendor). Portable numerics give the same bits on every CPU of one
/// vendor, not across vendors.
pub fn cpu_class(cpuinfo: &str) -> Option<String> {
    let field = |name: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            if k.trim() != name {
                return None;
            }
            let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
            (!v.is_empty()).then_some(v)
        })
    };
    let vendor = field("vendor_id")?;
    Some(match field("model name") {
        Some(model) => format!("{vendor}, {model}"),
        None => vendor,
    })
}

/// [`cpu_class`] of this machine for a run on `device` (`None` on a GPU, whose numbers do not
/// depend on the CPU: [`gpu_of`] names the GPU).
pub fn cpu_of(device: DeviceSpec) -> Option<String> {
    if device.tch() != tch::Device::Cpu {
        return None;
    }
    cpu_class(super::cpuinfo())
}

/// Is this libtorch error one after which a CUDA context cannot be trusted (the worker must exit and
/// be replaced rather than take the next job)?
pub fn poisons_context(message: &str) -> bool {
    const FATAL: [&str; 6] = [
        "illegal memory access",
        "an illegal instruction",
        "uncorrectable ECC error",
        "unspecified launch failure",
        "CUDA error: misaligned address",
        "device-side assert triggered",
    ];
    FATAL.iter().any(|f| message.contains(f))
        || (message.contains("CUDA out of memory") && message.contains("init"))
}

#[cfg(test)]
mod tests;
