//! The networks: the PyTorch KD tutorial's teacher and student (the defaults; any C×H×W with H and W
//! divisible by 4, 3×3 convolutions keeping the size, each 2×2 max-pool halving it) and the CRD
//! benchmark's model zoo — CIFAR ResNets, Wide ResNets, VGG with batch norm — for any input shape and
//! number of classes, all initialised by PyTorch's default rules unless `init = "kaiming"`.

pub mod listing;
pub mod script;
pub mod weights;
mod zoo;

use zoo::Body;

use script::Script;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Mutex;
use tch::nn;
use tch::Tensor;

/// Bumped whenever a model definition changes: cached teachers of another version are never reused.
/// 2: PyTorch's default initialisation (the `init` option), kd-sweep's own Adam written as PyTorch's,
/// dropout drawn from a stream seeded after initialisation.
/// 3: Adam's second moment as PyTorch's `addcmul_` computes it (one fused multiply-add, one
/// rounding): teachers, baselines and Adam runs of every kind now replay bit for bit in PyTorch.
/// 4: logit KD's term written op for op as the PyTorch tutorial writes it (`losses::kd`; fused
/// students' in the same order): distilled zoo students with batch norm now replay bit for bit
/// under SGD and Adam;
/// every other method's loss in its reference code's order of operations and of their creation (the
/// cross-entropy where the reference computes it), so each replays bit for bit too.
pub const MODEL_VERSION: u32 = 4;

/// The model versions whose change altered what a teacher computes. Version 4 changed the
/// distillation losses and the KL to the teacher that students and baselines are measured by, none
/// of which a teacher computes (its records kept every byte), so it is not here. A bump that changes
/// teachers must be added.
const TEACHER_CHANGES: [u32; 3] = [1, 2, 3];

/// The model version a teacher's key names when kd-sweep's is `model_version`: the newest at or below
/// it that changed teachers. A version that changed students only keeps every teacher's key, and so
/// its cached weights, logits and records: a 240-epoch teacher is not trained again for a change to
/// the students' loss.
pub fn teacher_version(model_version: u32) -> u32 {
    (TEACHER_CHANGES.iter().copied())
        .filter(|&v| v <= model_version)
        .max()
        .unwrap_or(model_version)
}

/// How a network's convolution and linear layers are initialised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// PyTorch 2.x's default for `nn.Conv2d` and `nn.Linear` (`kaiming_uniform_(a=√5)` and its bias
    /// rule): weights and biases uniform in ±1/√fan_in. What a PyTorch user's networks start from.
    #[default]
    Pytorch,
    /// Kaiming-uniform with the ReLU gain (weights uniform in ±√(6/fan_in)), convolution biases zero,
    /// linear biases uniform in ±1/√fan_in: tch's default and kd-sweep's rule before model version 2.
    /// Trains faster on these networks, but is not what PyTorch does.
    Kaiming,
    /// A TorchScript network's weights as its file holds them (every seed starts from them).
    #[serde(rename = "as-saved")]
    AsSaved,
}

impl Init {
    pub const NAMES: &'static str = "\"pytorch\", \"kaiming\" or \"as-saved\"";

    pub fn parse(s: &str) -> Option<Init> {
        match s {
            "pytorch" => Some(Init::Pytorch),
            "kaiming" => Some(Init::Kaiming),
            "as-saved" => Some(Init::AsSaved),
            _ => None,
        }
    }

    /// U(−1/√fan_in, 1/√fan_in).
    fn fan_in_uniform(fan_in: i64) -> nn::Init {
        let bound = 1.0 / (fan_in as f64).sqrt();
        nn::Init::Uniform {
            lo: -bound,
            up: bound,
        }
    }

    /// A convolution's configuration: `in_channels`·k·k inputs per output, `padding` on each side.
    pub fn conv(self, in_channels: i64, k: i64, padding: i64) -> nn::ConvConfig {
        let base = nn::ConvConfig {
            padding,
            ..Default::default()
        };
        match self {
            // layers kd-sweep adds to a saved network (the hint regressor) follow PyTorch's rule
            Init::Pytorch | Init::AsSaved => {
                let u = Init::fan_in_uniform(in_channels * k * k);
                nn::ConvConfig {
                    ws_init: u,
                    bs_init: u,
                    ..base
                }
            }
            Init::Kaiming => base,
        }
    }

    /// A linear layer's configuration for `in_features` inputs.
    pub fn linear(self, in_features: i64) -> nn::LinearConfig {
        match self {
            Init::Pytorch | Init::AsSaved => {
                let u = Init::fan_in_uniform(in_features);
                nn::LinearConfig {
                    ws_init: u,
                    bs_init: Some(u),
                    bias: true,
                }
            }
            Init::Kaiming => Default::default(),
        }
    }
}

/// A network: the PyTorch KD tutorial's pair, or a family of the CRD benchmark's model zoo (Tian et
/// al., "Contrastive Representation Distillation", ICLR 2020, code: RepDistiller `models/`), by the
/// name a sweep file uses (`[teacher] model = "resnet56"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// `tutorial-teacher`: 4 convolutions (128, 64, 64, 32 channels), 512 hidden units.
    Teacher,
    /// `tutorial-student`: 2 convolutions (16, 16), 256 hidden units.
    Student,
    /// `resnet<depth>` (depth = 6n + 2: n basic blocks per stage, 16/32/64 channels) and
    /// `resnet<depth>x4` (32 stem, 64/128/256 channels): CIFAR ResNets (He et al. 2016).
    ResNet { depth: u32, x4: bool },
    /// `wrn-<depth>-<widen>` (depth = 6n + 4): pre-activation Wide ResNets (Zagoruyko and
    /// Komodakis 2016), 16·w/32·w/64·w channels.
    Wrn { depth: u32, widen: u32 },
    /// `vgg8 | vgg11 | vgg13 | vgg16 | vgg19`: VGG with batch norm, five blocks, a 512 → classes linear.
    Vgg { depth: u32 },
    /// `torchscript:<file>`: a network scripted in PyTorch ([`crate::model::script`]).
    Script(&'static Script),
}

/// The names `kd-sweep models` lists (any valid depth and width is accepted).
pub const ZOO: &[&str] = &[
    "tutorial-teacher",
    "tutorial-student",
    "resnet8",
    "resnet14",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "resnet110",
    "resnet8x4",
    "resnet32x4",
    "wrn-16-1",
    "wrn-16-2",
    "wrn-40-1",
    "wrn-40-2",
    "vgg8",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
];

impl Arch {
    /// The model of a sweep file's `name`; a `torchscript:` file is read (and hashed) relative to
    /// the folder `base`.
    pub fn parse_in(name: &str, base: &std::path::Path) -> Result<Arch, String> {
        match name.strip_prefix(script::PREFIX) {
            Some(path) => Script::open(path, base).map(Arch::Script),
            None => Arch::parse(name),
        }
    }

    /// The model of `name`, or why not (with the names that exist and the nearest one). A
    /// TorchScript model is taken in its serialized form (path and hash; see [`Arch::parse_in`]).
    pub fn parse(name: &str) -> Result<Arch, String> {
        if name.starts_with(script::PREFIX) {
            return Script::deserialize(name).map(Arch::Script).ok_or_else(|| {
                format!("\"{name}\": a TorchScript model is named by its file, relative to the sweep file")
            });
        }
        let bad = |why: &str| {
            let near = crate::util::nearest(name, ZOO.iter().copied())
                .map(|z| format!(" (did you mean \"{z}\"?)"))
                .unwrap_or_default();
            format!(
                "{why}{near}; models: {} (any resnet depth 6n+2, wrn-<6n+4>-<w>; `kd-sweep models` lists them with sizes)",
                ZOO.join(", ")
            )
        };
        let num = |t: &str| t.parse::<u32>().ok().filter(|&v| v > 0);
        match name {
            "tutorial-teacher" => return Ok(Arch::Teacher),
            "tutorial-student" => return Ok(Arch::Student),
            _ => {}
        }
        if let Some(rest) = name.strip_prefix("resnet") {
            let (d, x4) = match rest.strip_suffix("x4") {
                Some(d) => (d, true),
                None => (rest, false),
            };
            return match num(d) {
                Some(depth) if depth >= 8 && (depth - 2) % 6 == 0 => Ok(Arch::ResNet { depth, x4 }),
                _ => Err(bad(&format!(
                    "\"{name}\": a ResNet's depth is 6n + 2 (8, 14, 20, …)"
                ))),
            };
        }
        if let Some(rest) = name.strip_prefix("wrn-") {
            let mut parts = rest.split('-');
            let (d, w) = (parts.next().and_then(num), parts.next().and_then(num));
            return match (d, w, parts.next()) {
                (Some(depth), Some(widen), None) if depth >= 10 && (depth - 4) % 6 == 0 => {
                    Ok(Arch::Wrn { depth, widen })
                }
                _ => Err(bad(&format!(
                    "\"{name}\": a Wide ResNet is wrn-<depth>-<width>, depth 6n + 4 (10, 16, 22, 28, 40, …)"
                ))),
            };
        }
        if let Some(depth) = name.strip_prefix("vgg").and_then(num) {
            if [8, 11, 13, 16, 19].contains(&depth) {
                return Ok(Arch::Vgg { depth });
            }
        }
        Err(bad(&format!("unknown model \"{name}\"")))
    }

    /// The name a sweep file uses.
    pub fn name(self) -> String {
        match self {
            Arch::Teacher => "tutorial-teacher".into(),
            Arch::Student => "tutorial-student".into(),
            Arch::ResNet { depth, x4 } => format!("resnet{depth}{}", if x4 { "x4" } else { "" }),
            Arch::Wrn { depth, widen } => format!("wrn-{depth}-{widen}"),
            Arch::Vgg { depth } => format!("vgg{depth}"),
            Arch::Script(s) => s.name(),
        }
    }

    /// Whether this is a network brought as a TorchScript file.
    pub fn script(self) -> Option<&'static Script> {
        match self {
            Arch::Script(s) => Some(s),
            _ => None,
        }
    }

    /// The tutorial pair's convolutions as (out channels, max-pool after it).
    fn convs(self) -> &'static [(i64, bool)] {
        match self {
            Arch::Teacher => &[(128, false), (64, true), (64, false), (32, true)],
            Arch::Student => &[(16, true), (16, true)],
            _ => &[],
        }
    }

    fn hidden(self) -> i64 {
        match self {
            Arch::Teacher => 512,
            _ => 256,
        }
    }

    /// Whether fused grid training (`fused::FusedStudent`) can train this network: the tutorial student.
    pub fn fusable(self) -> bool {
        self == Arch::Student
    }

    /// Channels of the last convolutional feature map (the one feature distillation uses) for inputs
    /// of `shape`; a TorchScript network's is probed (its `features` output), or says why not.
    pub fn feature_channels(self, shape: [i64; 3]) -> Result<i64, String> {
        if let Arch::Script(s) = self {
            let probe = s.probe(shape)?;
            return probe.features.map(|f| f[1]).ok_or_else(|| {
                format!(
                    "{} exports no `features` method, which feature distillation needs",
                    s.name()
                )
            });
        }
        Ok(match self {
            Arch::Teacher | Arch::Student => self.convs().last().map_or(0, |c| c.0),
            Arch::ResNet { x4, .. } => {
                if x4 {
                    256
                } else {
                    64
                }
            }
            Arch::Wrn { widen, .. } => 64 * widen as i64,
            Arch::Vgg { .. } => 512,
            Arch::Script(_) => 0,
        })
    }

    /// Length of the tutorial pair's flattened feature map for an input of `shape` (C, H, W).
    fn flat_len(self, shape: [i64; 3]) -> i64 {
        let last = self.convs().last().map_or(shape[0], |c| c.0);
        last * (shape[1] / 4) * (shape[2] / 4)
    }

    /// Multiply-accumulate operations of one forward pass of one image (convolutions and linears),
    /// counted on a real forward pass of a network built for `shape` and `classes`.
    pub fn forward_macs(self, shape: [i64; 3], classes: i64) -> i64 {
        self.size(shape, classes).1
    }

    /// Trainable parameters of the network for `shape` and `classes`.
    pub fn parameters(self, shape: [i64; 3], classes: i64) -> i64 {
        self.size(shape, classes).0
    }

    /// (trainable parameters, multiply-accumulates per image) of the network for `shape` and
    /// `classes`, from one network built on the CPU and one forward pass of one image. A TorchScript
    /// network's multiply-accumulates are not counted (0); its parameters are its file's (0 when
    /// the file does not load).
    pub fn size(self, shape: [i64; 3], classes: i64) -> (i64, i64) {
        if let Arch::Script(s) = self {
            return (s.probe(shape).map_or(0, |p| p.parameters), 0);
        }
        let _guard = tch::no_grad_guard();
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let net = Net::new(&vs.root(), self, shape, classes, Init::default());
        net.counting.store(true, Ordering::Relaxed);
        let x = Tensor::zeros(
            [1, shape[0], shape[1], shape[2]],
            (tch::Kind::Float, tch::Device::Cpu),
        );
        let _ = net.forward_t(&x, false);
        (parameter_count(&vs), net.macs.load(Ordering::Relaxed))
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl serde::Serialize for Arch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Arch::Script(script) => s.serialize_str(&script.serialized()),
            _ => s.serialize_str(&self.name()),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Arch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Arch, D::Error> {
        let s = String::deserialize(d)?;
        Arch::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug)]
pub struct Net {
    arch: Arch,
    body: Body,
    /// While `counting`, every convolution and linear adds its multiply-accumulates per image here.
    counting: AtomicBool,
    macs: AtomicI64,
    /// While set, convolutions run in the channels-last layout (see [`Net::predict`]).
    channels_last: AtomicBool,
    /// The layout the network trains and computes in ([`Net::set_channels_last`]): what
    /// `channels_last` returns to after a [`Net::predict`].
    layout_channels_last: AtomicBool,
}

impl Net {
    /// A kd-sweep network (not a TorchScript one: see [`Net::try_new`]).
    pub fn new(p: &nn::Path, arch: Arch, shape: [i64; 3], classes: i64, init: Init) -> Net {
        Net::try_new(p, arch, shape, classes, init, None)
            .unwrap_or_else(|e| panic!("{}: {e}", arch.name()))
    }

    /// The network `arch` with its variables in `p`, initialised by `init` from libtorch's generator
    /// — or, for a TorchScript network, from `saved` when given (its [`script::state`]: a
    /// checkpoint's), else from its file (re-initialised unless `init` is `as-saved`).
    pub fn try_new(
        p: &nn::Path,
        arch: Arch,
        shape: [i64; 3],
        classes: i64,
        init: Init,
        saved: Option<&Tensor>,
    ) -> Result<Net, String> {
        let body = match arch {
            Arch::Script(s) => zoo::script_body(p, s, init, saved)?,
            Arch::Teacher | Arch::Student => zoo::tutorial(p, arch, shape, classes, init),
            Arch::ResNet { depth, x4 } => zoo::resnet(p, (depth, x4), shape, classes, init),
            Arch::Wrn { depth, widen } => zoo::wrn(p, (depth, widen), shape, classes, init),
            Arch::Vgg { depth } => zoo::vgg(p, depth, shape, classes, init),
        };
        Ok(Net::of(arch, body))
    }

    fn of(arch: Arch, body: Body) -> Net {
        Net {
            arch,
            body,
            counting: AtomicBool::new(false),
            macs: AtomicI64::new(0),
            channels_last: AtomicBool::new(false),
            layout_channels_last: AtomicBool::new(false),
        }
    }

    /// Every pass of the network (training, logits, feature maps) with its convolutions in the
    /// channels-last layout (a role's `channels_last`), or not. The values are the same function of
    /// the weights; libtorch sums them in another order, so the numbers differ by rounding. A
    /// TorchScript network gets its inputs in that layout, which its convolutions then follow.
    pub fn set_channels_last(&self, on: bool) {
        self.layout_channels_last.store(on, Ordering::Relaxed);
        self.channels_last.store(on, Ordering::Relaxed);
    }

    /// The layout [`Net::set_channels_last`] gave the network.
    pub fn is_channels_last(&self) -> bool {
        self.layout_channels_last.load(Ordering::Relaxed)
    }

    /// A TorchScript network for evaluation only (no var store) from its [`script::state`].
    pub fn script_from_state(
        arch: Arch,
        state: &Tensor,
        device: tch::Device,
    ) -> Result<Net, String> {
        let module = script::from_bytes(&script::state_bytes(state)?, device)?;
        Ok(Net::of(arch, Body::Script(Mutex::new((module, None)))))
    }

    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// A TorchScript network's whole state (parameters and buffers) as [`script::state`];
    /// `None` for kd-sweep's own networks, whose variables are their whole state.
    pub fn script_state(&self) -> Option<Result<Tensor, String>> {
        match &self.body {
            Body::Script(m) => Some(script::state(
                &m.lock().unwrap_or_else(|e| e.into_inner()).0,
            )),
            _ => None,
        }
    }

    /// Runs `method` of a TorchScript network in training (`train`) or evaluation mode. A failure
    /// panics with libtorch's message: the worker records the run as failed with it (`plan` has
    /// already run each method once on the dataset's shape).
    fn script_call(&self, method: &str, x: &Tensor, train: bool) -> Tensor {
        let Body::Script(m) = &self.body else {
            unreachable!("script_call on a kd-sweep network")
        };
        let mut guard = m.lock().unwrap_or_else(|e| e.into_inner());
        let (module, mode) = &mut *guard;
        // the role's layout only: predict's CPU shortcut does not reach a TorchScript network
        let x = &if x.dim() == 4 && self.layout_channels_last.load(Ordering::Relaxed) {
            channels_last(x)
        } else {
            x.shallow_clone()
        };
        if *mode != Some(train) {
            if train {
                module.set_train();
            } else {
                module.set_eval();
            }
            *mode = Some(train);
        }
        module.method_ts(method, &[x]).unwrap_or_else(|e| {
            let line = crate::util::first_line(&e.to_string());
            panic!("{}: {method} failed: {line}", self.arch.name())
        })
    }

    fn conv(&self, c: &nn::Conv2D, x: &Tensor) -> Tensor {
        let y = if self.channels_last.load(Ordering::Relaxed) {
            // a channels-last input makes libtorch run the convolution in that layout (the weights
            // stay as they are); the output is made channels-last too, for a one-channel input
            // whose layouts coincide, so that the pooling after it runs vectorised over channels
            channels_last(&channels_last(x).apply(c))
        } else {
            x.apply(c)
        };
        if self.counting.load(Ordering::Relaxed) {
            let per_output = c.ws.numel() as i64 / c.ws.size()[0];
            let outputs = y.numel() as i64 / y.size()[0];
            self.macs.fetch_add(per_output * outputs, Ordering::Relaxed);
        }
        y
    }

    fn linear(&self, l: &nn::Linear, x: &Tensor) -> Tensor {
        if self.counting.load(Ordering::Relaxed) {
            self.macs.fetch_add(l.ws.numel() as i64, Ordering::Relaxed);
        }
        x.apply(l)
    }

    /// The last convolutional feature map (for the tutorial pair after its pooling, N×C×H/4×W/4; for
    /// the ResNets after the last stage, for Wide ResNets after the final bn-relu, for VGG after the
    /// fifth block), in training mode (`train`: batch statistics) or evaluation mode.
    pub fn features_t(&self, xs: &Tensor, train: bool) -> Tensor {
        match &self.body {
            Body::Script(_) => self.script_call("features", xs, train),
            Body::Tutorial { convs, .. } => {
                let mut x = xs.shallow_clone();
                for (c, pool) in convs {
                    x = self.conv(c, &x).relu();
                    if *pool {
                        x = x.max_pool2d_default(2);
                    }
                }
                x
            }
            Body::ResNet { stem, blocks, .. } => {
                let mut x = self.conv(&stem.0, xs).apply_t(&stem.1, train).relu();
                for b in blocks {
                    let out = self.conv(&b.c1, &x).apply_t(&b.b1, train).relu();
                    let out = self.conv(&b.c2, &out).apply_t(&b.b2, train);
                    let short = match &b.down {
                        Some((c, n)) => self.conv(c, &x).apply_t(n, train),
                        None => x,
                    };
                    x = (out + short).relu();
                }
                x
            }
            Body::Wrn {
                stem, blocks, bn, ..
            } => {
                let mut x = self.conv(stem, xs);
                for b in blocks {
                    let act = x.apply_t(&b.b1, train).relu();
                    let out = self.conv(&b.c1, &act).apply_t(&b.b2, train).relu();
                    let out = self.conv(&b.c2, &out);
                    x = match &b.shortcut {
                        Some(c) => self.conv(c, &act) + out,
                        None => x + out,
                    };
                }
                x.apply_t(bn, train).relu()
            }
            Body::Vgg { blocks, pool4, .. } => {
                let mut x = xs.shallow_clone();
                for (i, block) in blocks.iter().enumerate() {
                    for (l, (c, n)) in block.iter().enumerate() {
                        x = self.conv(c, &x).apply_t(n, train);
                        // the block's last ReLU is applied after it, as in RepDistiller's VGG
                        if l + 1 < block.len() {
                            x = x.relu();
                        }
                    }
                    x = x.relu();
                    if i < 3 || (i == 3 && *pool4) {
                        x = x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
                    }
                }
                x
            }
        }
    }

    /// Logits from a feature map. The tutorial pair: flatten, hidden layer, dropout (p = 0.1) only
    /// when `train`, drawn by [`dropout_mask`] so that plain and fused students of a seed share their
    /// masks on every device. The zoo: global average pooling and one linear layer.
    pub fn head(&self, features: &Tensor, train: bool) -> Tensor {
        match &self.body {
            Body::Tutorial { fc1, fc2, .. } => {
                let h = self.linear(fc1, &features.flatten(1, -1)).relu();
                let h = if train {
                    let size = h.size();
                    &h * dropout_mask(size[0], size[1], DROPOUT, (h.kind(), h.device()))
                } else {
                    h
                };
                self.linear(fc2, &h)
            }
            Body::ResNet { fc, .. } | Body::Wrn { fc, .. } | Body::Vgg { fc, .. } => {
                let pooled = features.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
                self.linear(fc, &pooled)
            }
            Body::Script(_) => self.script_call("head", features, train),
        }
    }

    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        match &self.body {
            Body::Script(_) => self.script_call("forward", xs, train),
            _ => self.head(&self.features_t(xs, train), train),
        }
    }

    /// Logits in evaluation mode for counting correct predictions (validation and test accuracy),
    /// computed the fastest way for the device: on the CPU, kd-sweep's networks run their
    /// convolutions in the channels-last layout, 2–5× faster for these small networks than the
    /// default layout, with logits that differ from [`Net::forward_t`]'s by rounding only (~1e-7), so
    /// the predicted classes are the same (tested). Training, cached teacher logits and feature maps
    /// always use `forward_t`: their bytes are part of what a run computes.
    pub fn predict(&self, xs: &Tensor) -> Tensor {
        // a TorchScript network runs its own forward: the flag does not reach it
        let layout = self.layout_channels_last.load(Ordering::Relaxed);
        let fast = layout || xs.device() == tch::Device::Cpu;
        self.channels_last.store(fast, Ordering::Relaxed);
        let out = self.forward_t(xs, false);
        self.channels_last.store(layout, Ordering::Relaxed);
        out
    }
}

/// `x` (N×C×H×W) in the channels-last memory layout: the same values and shape, strides of an
/// N×H×W×C array. A no-op copy-wise for a tensor already in that layout.
fn channels_last(x: &Tensor) -> Tensor {
    x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// Dropout probability of the hidden layer of both networks (the tutorial's).
pub const DROPOUT: f64 = 0.1;

/// A dropout mask for an [n, width] activation of type and device `options`, drawn exactly as
/// libtorch's CPU dropout draws it (Bernoulli with keep probability 1 − p, divided by 1 − p, in the
/// activation's type: under bf16 autocast the scale is bf16's 1/(1 − p), as `nn.Dropout` has it).
/// Plain and fused training both use it: libtorch's CUDA dropout is a fused kernel with draws of its
/// own, so only one mask function for both keeps fused and plain students of a seed on the same masks
/// on a GPU too.
pub fn dropout_mask(n: i64, width: i64, p: f64, options: (tch::Kind, tch::Device)) -> Tensor {
    let mut noise = Tensor::empty([n, width], options);
    let _ = noise.bernoulli_float_(1.0 - p);
    noise / (1.0 - p)
}

/// Number of trainable parameters in a var store.
pub fn parameter_count(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}

#[cfg(test)]
mod tests;
