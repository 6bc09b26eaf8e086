//! Section 9 of `kd-sweep bench`: the field's networks (the CRD benchmark's resnet20, resnet56,
//! wrn-40-2 and resnet8x4 on CIFAR-100-shaped data), one epoch of training in kd-sweep's own loop
//! (`train::fit`: the flat multi-tensor optimizer, the run's batch order, bf16 autocast) against
//! plain PyTorch (`bench/pytorch_networks.py`: `torch.optim.SGD(foreach=True)`), float32 and bf16,
//! with the same batch size, data resident on the device and synchronised timing on both sides.

use super::{pytorch_script, reference_python, sync, Bench};
use crate::data::Dataset;
use crate::distill::Distiller;
use crate::model::{Arch, Init};
use crate::train::graph;
use crate::train::optim::{Algorithm, Recipe};
use crate::train::{self, Precision, RunSettings, Source};
use anyhow::Context;
use std::fmt::Write as _;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// The networks of the section, as kd-sweep names them.
pub const NETWORKS: [&str; 4] = ["resnet20", "resnet56", "wrn-40-2", "resnet8x4"];

/// What one measurement of the section trains.
struct Size {
    /// Training images per timed epoch (seconds are reported scaled to CIFAR's 45,000 training
    /// images after a 5,000-image hold-out).
    images: i64,
    shape: [i64; 3],
    classes: i64,
    batch: i64,
    /// Steps trained before the timed epoch (CUDA context, cuDNN's benchmark search, allocator).
    warmup: i64,
}

fn size(quick: bool, device: Device) -> Size {
    match (quick, device) {
        // CI's check that the section runs: small images, a few steps
        (true, _) => Size {
            images: 128,
            shape: [3, 16, 16],
            classes: 100,
            batch: 32,
            warmup: 1,
        },
        // two CPU cores train a resnet8x4 epoch of 45,000 images in hours: a part of one, timed
        (false, Device::Cpu) => Size {
            images: 640,
            shape: [3, 32, 32],
            classes: 100,
            batch: 64,
            warmup: 2,
        },
        // a third of CIFAR's 45,000 training images (234 steps, seconds scaled ×3): the section
        // runs twice in one lent-GPU call (both layouts), beside other measurements
        (false, _) => Size {
            images: 15_000,
            shape: [3, 32, 32],
            classes: 100,
            batch: 64,
            warmup: 20,
        },
    }
}

/// ", graphs" for a variant whose steps are CUDA graphs.
fn graph_label(graphs: bool) -> &'static str {
    if graphs {
        ", graphs"
    } else {
        ""
    }
}

/// A dataset of `n` random images resident on `device` (no hold-out to speak of: the section times
/// training steps).
fn random_data(n: i64, z: &Size, device: Device) -> Dataset {
    let [c, h, w] = z.shape;
    let small = 8;
    Dataset {
        train_x: Tensor::randn([n, c, h, w], (Kind::Float, device)),
        train_y: Tensor::randint(z.classes, [n], (Kind::Int64, device)),
        val_x: Tensor::randn([small, c, h, w], (Kind::Float, device)),
        val_y: Tensor::randint(z.classes, [small], (Kind::Int64, device)),
        test_x: Tensor::randn([small, c, h, w], (Kind::Float, device)),
        test_y: Tensor::randint(z.classes, [small], (Kind::Int64, device)),
        shape: z.shape,
        classes: z.classes,
        black: Tensor::zeros([1, c, 1, 1], (Kind::Float, device)),
    }
}

/// Seconds of one epoch of `arch` in kd-sweep's training loop (the CRD recipe's SGD, cross-entropy),
/// after a warm-up of a few steps; with `graphs`, its steps as CUDA graphs (rehearsed on the CPU).
/// Err: the reason a graphed epoch failed.
fn kd_sweep_epoch(
    arch: Arch,
    (precision, graphs, channels_last): (Precision, bool, bool),
    z: &Size,
    device: Device,
) -> Result<f64, String> {
    let mode = match (graphs, device) {
        (false, _) => graph::Mode::Off,
        (true, Device::Cpu) => graph::Mode::Rehearse,
        (true, _) => graph::Mode::Cuda,
    };
    graph::set_mode(mode);
    let timed =
        std::panic::catch_unwind(|| timed_epoch(arch, (precision, channels_last), z, device));
    graph::set_mode(graph::Mode::Off);
    timed.map_err(|p| crate::platform::panic_message(&*p))
}

fn timed_epoch(
    arch: Arch,
    (precision, channels_last): (Precision, bool),
    z: &Size,
    device: Device,
) -> f64 {
    tch::manual_seed(0);
    let data = random_data(z.images, z, device);
    let s = RunSettings {
        epochs: 1,
        batch_size: z.batch as u32,
        lr: 0.05,
        seed: 0,
        stream: train::TEACHER_STREAM,
        init: Init::Pytorch,
        recipe: Recipe {
            optimizer: Algorithm::Sgd,
            momentum: 0.9,
            weight_decay: 5e-4,
            ..Recipe::default()
        },
        augment: Default::default(),
        precision,
        channels_last,
        label_smoothing: 0.0,
    };
    let (vs, net) = train::init(arch, &data, device, &s);
    let fit = |data: &Dataset| {
        let mut quiet = |_: &train::EpochStats| {};
        train::fit(
            (&vs, &net),
            data,
            &s,
            (Source::None, &Distiller::none()),
            &mut train::Hooks::epochs(&mut quiet),
        )
    };
    // the warm-up ends with a batch of the timed epoch's last, shorter shape: cuDNN's benchmark
    // search for it (seconds in bf16) is then not timed, as it is not in a long run's epochs
    let warm_rows = z.warmup * z.batch + z.images % z.batch;
    let warm = Dataset {
        train_x: data.train_x.narrow(0, 0, warm_rows),
        train_y: data.train_y.narrow(0, 0, warm_rows),
        val_x: data.val_x.shallow_clone(),
        val_y: data.val_y.shallow_clone(),
        test_x: data.test_x.shallow_clone(),
        test_y: data.test_y.shallow_clone(),
        shape: data.shape,
        classes: data.classes,
        black: data.black.shallow_clone(),
    };
    // a graph that cannot be made is the measurement's failure; other outcomes (random labels) are
    // timed as they come
    let checked = |r: Result<train::Fitted, train::TrainError>| {
        if let Err(train::TrainError::Graph(why)) = r {
            panic!("{why}");
        }
    };
    checked(fit(&warm));
    sync(device);
    let start = Instant::now();
    checked(fit(&data));
    sync(device);
    start.elapsed().as_secs_f64()
}

impl Bench<'_> {
    /// 9. The field's networks: one epoch in kd-sweep and in plain PyTorch, float32 and bf16.
    pub(super) fn networks(&mut self) -> anyhow::Result<()> {
        (self.log)("bench: the field's networks");
        let z = size(self.o.quick, self.device);
        if self.device.is_cuda() {
            // what a worker does for a GPU run without determinism
            crate::platform::torch_ext::set_cudnn_benchmark(true);
        }
        tch::set_num_threads(self.cores as i32);
        // (precision, steps as CUDA graphs)
        let variants = [
            (Precision::Fp32, false),
            (Precision::Bf16, false),
            (Precision::Fp32, true),
            (Precision::Bf16, true),
        ];
        let mut ours = Vec::new();
        for name in NETWORKS {
            let arch = Arch::parse(name).map_err(anyhow::Error::msg)?;
            for (p, graphs) in variants {
                (self.log)(&format!(
                    "bench: {name} {p:?}{} in kd-sweep",
                    graph_label(graphs)
                ));
                let how = (p, graphs, self.o.channels_last);
                let measured = kd_sweep_epoch(arch, how, &z, self.device);
                // each number as it comes: a run stopped by an outer time limit still leaves them
                if let Ok(seconds) = &measured {
                    (self.log)(&format!("bench: {seconds:.3} s for {} images", z.images));
                }
                ours.push(measured);
            }
        }
        tch::set_num_threads(1);
        let theirs = self.pytorch_networks(&z);
        let [c, h, w] = z.shape;
        let per_epoch = 45_000.0 / z.images as f64;
        let _ = writeln!(
            self.md,
            "## 9. The field's networks: one epoch (batch {}, {c}×{h}×{w}, {} classes, SGD momentum 0.9, weight decay 5e-4{})\n\n\
             kd-sweep's training loop (`train::fit`: flat multi-tensor optimizer, bf16 through autocast; \"graphs\": \
             `cuda_graphs = true`, each step captured once per epoch and replayed{}) against plain \
             PyTorch (`bench/pytorch_networks.py`: `torch.optim.SGD(foreach=True)`, `torch.autocast`), the same networks \
             (`bench/cifar_nets.py`), data resident on `{}`, cuDNN's benchmark search on for both, {} warm-up steps \
             (the last of the epoch's last shape), timed with the device synchronised. {} images per timed epoch{}.\n\n\
             | network | precision | kd-sweep s/epoch | PyTorch s/epoch | kd-sweep speed / PyTorch | / PyTorch float32 |\n\
             |---|---|---:|---:|---:|---:|",
            z.batch,
            z.classes,
            if self.o.channels_last {
                "; convolutions channels-last on both sides: `channels_last = true`, \
                 `model.to(memory_format=torch.channels_last)`"
            } else {
                ""
            },
            if self.device.is_cuda() {
                ""
            } else {
                "; on the CPU rehearsed without capture, so its times say nothing of a GPU's"
            },
            self.o.device,
            z.warmup + i64::from(z.images % z.batch > 0),
            z.images,
            if per_epoch > 1.0 {
                format!("; seconds are scaled to a 45,000-image epoch (×{per_epoch:.1})")
            } else {
                String::new()
            }
        );
        self.network_rows(&ours, theirs.as_ref(), &variants, per_epoch);
        self.md.push('\n');
        Ok(())
    }

    /// Section 9's table rows: each network and variant, kd-sweep's seconds per epoch against
    /// PyTorch's (`theirs`), in the order `ours` was measured.
    fn network_rows(
        &mut self,
        ours: &[Result<f64, String>],
        theirs: Option<&serde_json::Value>,
        variants: &[(Precision, bool)],
        per_epoch: f64,
    ) {
        for (i, name) in NETWORKS.iter().enumerate() {
            let py32 = theirs.and_then(|t| t[name]["fp32"].as_f64());
            for (j, (p, graphs)) in variants.iter().enumerate() {
                let key = if *p == Precision::Fp32 {
                    "fp32"
                } else {
                    "bf16"
                };
                let label = format!("{key}{}", graph_label(*graphs));
                let k = match &ours[variants.len() * i + j] {
                    Ok(k) => k * per_epoch,
                    Err(why) => {
                        let why = why.replace('|', "/");
                        let _ = writeln!(self.md, "| {name} | {label} | failed: {why} | | | |");
                        continue;
                    }
                };
                let py = theirs.and_then(|t| t[name][key].as_f64());
                let cell = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("–".into(), f);
                let _ = writeln!(
                    self.md,
                    "| {name} | {label} | {k:.2} | {} | {} | {} |",
                    cell(py, &|v| format!("{:.2}", v * per_epoch)),
                    cell(py, &|v| format!("{:.2}×", v * per_epoch / k)),
                    cell(py32, &|v| format!("{:.2}×", v * per_epoch / k)),
                );
            }
        }
        if theirs.is_none() {
            let _ = writeln!(
                self.md,
                "\n(PyTorch side not measured: no Python with torch found.)"
            );
        }
    }

    /// The PyTorch side of section 9, seconds per timed epoch by network and precision.
    fn pytorch_networks(&self, z: &Size) -> Option<serde_json::Value> {
        let py = reference_python(self.o.python.as_deref())?;
        let script = pytorch_script(&self.o.work, "pytorch_networks.py")?;
        let [c, h, w] = z.shape;
        (self.log)("bench: the field's networks in PyTorch");
        // a reference stuck in cuDNN's benchmark search must not take a lent GPU's whole call
        let limit = std::time::Duration::from_secs(if self.device.is_cuda() { 150 } else { 3600 });
        let out = crate::util::output_within(
            std::process::Command::new(py)
                .arg(script)
                .args(["--device", &self.o.device.to_string()])
                .args(["--nets", &NETWORKS.join(",")])
                .args(["--images", &z.images.to_string()])
                .args(["--batch", &z.batch.to_string()])
                .args(["--shape", &format!("{c},{h},{w}")])
                .args(["--classes", &z.classes.to_string()])
                .args(["--warmup", &z.warmup.to_string()])
                .args(["--threads", &self.cores.to_string()])
                .args(self.o.channels_last.then_some("--channels-last")),
            limit,
        )
        .context("starting bench/pytorch_networks.py")
        .ok()?;
        let Some(out) = out else {
            (self.log)(&format!(
                "bench: pytorch_networks.py did not finish within {} s: stopped, not measured",
                limit.as_secs()
            ));
            return None;
        };
        if !out.status.success() {
            (self.log)(&format!(
                "bench: pytorch_networks.py failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }
}
