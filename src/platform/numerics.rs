//! Which CPU kernels compute a run's numbers (`[schedule] numerics`).
//!
//! libtorch picks its CPU kernels by the machine: ATen its vectorised kernels by instruction set,
//! oneDNN its convolutions by instruction set, MKL its matrix products by vendor and model. So one
//! sweep gives other last bits on another CPU (measured: an AMD EPYC with AVX-512 and an Intel Xeon
//! with AVX-512 differ by 3.5e-4 in a teacher's first-epoch loss), and a study moved between machines
//! cannot be compared or resumed bit for bit.
//!
//! `portable` (the default) fixes all three to the AVX2 level, which every x86-64 machine of the last
//! decade has, through the variables each library reads when it first runs a kernel. Each one is
//! needed, measured with the golden sweep (`tests/golden.rs`) on this project's build machines and
//! the GPU host:
//!
//! - `ATEN_CPU_CAPABILITY=avx2`: ATen's elementwise kernels, reductions and softmax. On an AVX-512
//!   EPYC, oneDNN and MKL pinned but ATen left to choose AVX-512 gives other numbers.
//! - `ONEDNN_MAX_CPU_ISA=AVX2`: oneDNN's convolutions. On the same machine, ATen pinned but oneDNN
//!   left alone gives other numbers.
//! - `MKL_CBWR=AVX2,STRICT`: MKL's GEMM (the linear layers) on its AVX2 branch, in the strict mode
//!   that does not depend on memory alignment. MKL dispatches by vendor as well as instruction set:
//!   on AMD it already takes this path (setting it changes nothing there, measured); on an Intel
//!   Xeon with AVX-512 `AVX2` alone left the first-epoch loss 3.5e-4 away from AMD's, `AVX2,STRICT`
//!   2.4e-10. `MKL_CBWR=COMPATIBLE` (MKL's SSE2 path) gives other numbers again, so MKL's choice does
//!   reach the numbers.
//!
//! What this does not give (measured on the GPU host's Intel Xeon, BENCHMARKS-gpu.md): the same bits
//! on Intel and AMD. No combination of these switches (nine tried, oneDNN off included) made the two
//! vendors agree exactly: MKL's kernels differ by vendor below what `MKL_CBWR` controls. Portable
//! numerics make every machine of one vendor agree (AMD EPYCs with AVX2 and with AVX-512: bit for
//! bit); across vendors the numbers agree to rounding, amplified by training.
//!
//! `native` leaves the choice to libtorch (and to those variables if the user sets them), as in a
//! plain PyTorch program: faster on AVX-512 machines, not comparable across machines.
//!
//! The variables must be in a process's environment before libtorch first runs a kernel, so they are
//! set where processes start: the coordinator gives them to its workers ([`worker_env`]), and a
//! command that trains in its own process (`run --task`) re-executes itself with them once
//! ([`reexec_with`]). A worker checks that the level it was asked for is the level ATen chose
//! ([`check_in_effect`]).

use serde::{Deserialize, Serialize};

/// `numerics = "portable" | "native"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Numerics {
    /// One fixed CPU kernel level (AVX2 with FMA) on every x86-64 machine: the same numbers on
    /// every machine of one CPU vendor (MKL's kernels still differ between Intel and AMD).
    #[default]
    Portable,
    /// libtorch's own choice for this machine.
    Native,
}

impl Numerics {
    pub const NAMES: &'static str = "\"portable\" or \"native\"";

    pub fn parse(s: &str) -> Option<Numerics> {
        match s {
            "portable" => Some(Numerics::Portable),
            "native" => Some(Numerics::Native),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Numerics::Portable => "portable",
            Numerics::Native => "native",
        }
    }

    /// Native numerics: what every run did before numerics modes existed (absent from keys and
    /// records, so those keep their bytes).
    pub fn is_native(&self) -> bool {
        *self == Numerics::Native
    }

    /// The mode of a record or plan written before numerics modes existed.
    pub fn native() -> Numerics {
        Numerics::Native
    }
}

/// The variables of portable numerics and their values (see the module documentation for why each
/// is needed).
pub const PORTABLE_ENV: [(&str, &str); 3] = [
    ("ATEN_CPU_CAPABILITY", "avx2"),
    ("ONEDNN_MAX_CPU_ISA", "AVX2"),
    ("MKL_CBWR", "AVX2,STRICT"),
];

/// The level ATen reports under portable numerics.
pub const PORTABLE_CAPABILITY: &str = "AVX2";

/// Whether this machine can run portable numerics: an x86-64 CPU with AVX2 and FMA. `Err` says why
/// not.
pub fn portable_available() -> Result<(), String> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Ok(());
        }
        Err("this x86-64 CPU has no AVX2 and FMA".into())
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Err(format!(
            "portable numerics are defined for x86-64 CPUs (AVX2 and FMA); this is {}",
            std::env::consts::ARCH
        ))
    }
}

/// The mode runs use when `requested` is asked for on this machine, and a line saying why when it
/// differs (portable where it is unavailable: native, recorded so).
pub fn effective(requested: Numerics) -> (Numerics, Option<String>) {
    match (requested, portable_available()) {
        (Numerics::Portable, Err(why)) => (
            Numerics::Native,
            Some(format!(
                "numerics = \"portable\" is unavailable here ({why}): runs use libtorch's native \
                 kernels and are recorded as numerics = \"native\""
            )),
        ),
        (mode, _) => (mode, None),
    }
}

/// What the user's own environment sets that portable numerics replaces (`NAME=value`), for `plan`.
pub fn overridden(env: impl Fn(&str) -> Option<String>) -> Vec<String> {
    PORTABLE_ENV
        .iter()
        .filter_map(|(k, v)| {
            env(k)
                .filter(|have| have != v)
                .map(|have| format!("{k}={have}"))
        })
        .collect()
}

/// The environment a process computing numbers under `mode` needs: portable sets every variable of
/// [`PORTABLE_ENV`]; native leaves the user's environment as it is.
pub fn worker_env(mode: Numerics) -> Vec<(&'static str, String)> {
    match mode {
        Numerics::Portable => PORTABLE_ENV
            .iter()
            .map(|(k, v)| (*k, v.to_string()))
            .collect(),
        Numerics::Native => Vec::new(),
    }
}

/// Whether an environment (`env`) gives `mode`: portable needs every variable at its value.
pub fn env_gives(mode: Numerics, env: impl Fn(&str) -> Option<String>) -> bool {
    match mode {
        Numerics::Portable => PORTABLE_ENV
            .iter()
            .all(|(k, v)| env(k).as_deref() == Some(*v)),
        Numerics::Native => true,
    }
}

fn process_env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// In a process that computes numbers: the level ATen chose must be the one `mode` asks for (for
/// portable, AVX2 through `ATEN_CPU_CAPABILITY`). Err names what is wrong.
pub fn check_in_effect(mode: Numerics) -> Result<(), String> {
    if mode.is_native() {
        return Ok(());
    }
    if !env_gives(mode, process_env) {
        return Err(format!(
            "this process was started without portable numerics' environment ({}); it must be set \
             before libtorch starts",
            PORTABLE_ENV
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    match crate::platform::torch_ext::cpu_capability() {
        Some(c) if c == PORTABLE_CAPABILITY => Ok(()),
        other => Err(format!(
            "portable numerics need ATen's {PORTABLE_CAPABILITY} kernels, but libtorch chose {}",
            other.unwrap_or_else(|| "an unknown level".into())
        )),
    }
}

/// The variable that marks a process re-executed by [`reexec_with`] (so it never loops).
const REEXEC_ENV: &str = "KD_SWEEP_NUMERICS_REEXEC";

/// For a command that trains in its own process: unless this process's environment already gives
/// `mode`, executes this same program again with the same arguments and portable numerics'
/// variables set (libtorch reads them once, when it first runs a kernel, so they cannot be changed
/// later). Returns only when nothing had to change; on success `exec` does not return.
pub fn reexec_with(mode: Numerics) -> anyhow::Result<()> {
    if env_gives(mode, process_env) {
        return Ok(());
    }
    if std::env::var_os(REEXEC_ENV).is_some() {
        anyhow::bail!("could not start with portable numerics' environment (re-executed once)");
    }
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()?;
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .envs(worker_env(mode))
        .env(REEXEC_ENV, "1")
        .exec();
    Err(anyhow::anyhow!(
        "could not re-execute with portable numerics: {err}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn portable_needs_every_variable_at_its_value() {
        assert!(env_gives(Numerics::Portable, env_of(&PORTABLE_ENV)));
        assert!(!env_gives(Numerics::Portable, env_of(&PORTABLE_ENV[..2])));
        let wrong = [
            ("ATEN_CPU_CAPABILITY", "avx512"),
            ("ONEDNN_MAX_CPU_ISA", "AVX2"),
            ("MKL_CBWR", "AVX2,STRICT"),
        ];
        assert!(!env_gives(Numerics::Portable, env_of(&wrong)));
        assert!(env_gives(Numerics::Native, env_of(&[])));
    }

    #[test]
    fn the_users_own_settings_that_portable_replaces_are_named() {
        let user = env_of(&[
            ("ATEN_CPU_CAPABILITY", "avx512"),
            ("MKL_CBWR", "AVX2,STRICT"),
        ]);
        assert_eq!(overridden(user), ["ATEN_CPU_CAPABILITY=avx512"]);
        assert!(overridden(env_of(&[])).is_empty());
    }

    #[test]
    fn names_parse_both_ways() {
        for m in [Numerics::Portable, Numerics::Native] {
            assert_eq!(Numerics::parse(m.name()), Some(m));
        }
        assert_eq!(Numerics::parse("fast"), None);
        assert_eq!(Numerics::default(), Numerics::Portable);
    }

    #[test]
    fn native_is_asked_for_as_it_is() {
        assert_eq!(effective(Numerics::Native), (Numerics::Native, None));
    }
}
