//! The networks: the PyTorch KD tutorial's teacher and student (the defaults; any C×H×W with H and W
//! divisible by 4, 3×3 convolutions keeping the size, each 2×2 max-pool halving it) and the CRD
//! benchmark's model zoo — CIFAR ResNets, Wide ResNets, VGG with batch norm — for any input shape and
//! number of classes, all initialised by PyTorch's default rules unless `init = "kaiming"`.

pub mod listing;
pub mod script;

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
pub const MODEL_VERSION: u32 = 3;

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

/// A batch-normalised convolution: PyTorch's defaults (weight 1, bias 0, momentum 0.1, ε 1e-5).
fn bn(p: nn::Path, c: i64) -> nn::BatchNorm {
    nn::batch_norm2d(
        p,
        c,
        nn::BatchNormConfig {
            ws_init: nn::Init::Const(1.0),
            bs_init: nn::Init::Const(0.0),
            ..Default::default()
        },
    )
}

/// A k×k convolution with PyTorch's initialisation rule `init`, `stride`, padding k/2, and `bias`.
fn conv(p: nn::Path, i: i64, o: i64, k: i64, stride: i64, bias: bool, init: Init) -> nn::Conv2D {
    let c = init.conv(i, k, k / 2);
    nn::conv2d(p, i, o, k, nn::ConvConfig { stride, bias, ..c })
}

/// A CIFAR ResNet's basic block: conv-bn-relu-conv-bn plus the shortcut (a 1×1 conv-bn when the
/// shape changes), then relu.
#[derive(Debug)]
struct ResBlock {
    c1: nn::Conv2D,
    b1: nn::BatchNorm,
    c2: nn::Conv2D,
    b2: nn::BatchNorm,
    down: Option<(nn::Conv2D, nn::BatchNorm)>,
}

/// A Wide ResNet's pre-activation block: bn-relu-conv-bn-relu-conv plus the shortcut (on the
/// activated input through a 1×1 conv when the width changes).
#[derive(Debug)]
struct WrnBlock {
    b1: nn::BatchNorm,
    c1: nn::Conv2D,
    b2: nn::BatchNorm,
    c2: nn::Conv2D,
    shortcut: Option<nn::Conv2D>,
}

#[derive(Debug)]
enum Body {
    Tutorial {
        convs: Vec<(nn::Conv2D, bool)>,
        fc1: nn::Linear,
        fc2: nn::Linear,
    },
    ResNet {
        stem: (nn::Conv2D, nn::BatchNorm),
        blocks: Vec<ResBlock>,
        fc: nn::Linear,
    },
    Wrn {
        stem: nn::Conv2D,
        blocks: Vec<WrnBlock>,
        bn: nn::BatchNorm,
        fc: nn::Linear,
    },
    Vgg {
        /// five blocks of conv-bn(-relu) layers; max-pools after the first three (and after the
        /// fourth for 64-pixel inputs, as RepDistiller's VGG)
        blocks: Vec<Vec<(nn::Conv2D, nn::BatchNorm)>>,
        pool4: bool,
        fc: nn::Linear,
    },
    /// A TorchScript module (whose parameters are the var store's variables) and the mode it is
    /// in (`Some(true)`: training).
    Script(Mutex<(tch::CModule, Option<bool>)>),
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
            Arch::Script(s) => {
                let module = match saved {
                    Some(t) => script::from_bytes(&script::state_bytes(t)?, p.device())?,
                    None => s.load(p.device())?,
                };
                let params = module.named_parameters().map_err(|e| e.to_string())?;
                if saved.is_none() && init != Init::AsSaved {
                    script::reinitialise(&params);
                }
                for (name, t) in params {
                    // tch's own rule for a scripted module's variable names (no dots in a path)
                    let trainable = t.requires_grad();
                    let _ = p.add(&name.replace('.', "_"), t, trainable);
                }
                Body::Script(Mutex::new((module, None)))
            }
            Arch::Teacher | Arch::Student => {
                let mut c = shape[0];
                let mut convs = Vec::new();
                for (i, &(out, pool)) in arch.convs().iter().enumerate() {
                    convs.push((
                        nn::conv2d(p / format!("conv{}", i + 1), c, out, 3, init.conv(c, 3, 1)),
                        pool,
                    ));
                    c = out;
                }
                let flat = arch.flat_len(shape);
                let fc1 = nn::linear(p / "fc1", flat, arch.hidden(), init.linear(flat));
                let fc2 = nn::linear(
                    p / "fc2",
                    arch.hidden(),
                    classes,
                    init.linear(arch.hidden()),
                );
                Body::Tutorial { convs, fc1, fc2 }
            }
            Arch::ResNet { depth, x4 } => {
                let widths: [i64; 4] = if x4 {
                    [32, 64, 128, 256]
                } else {
                    [16, 16, 32, 64]
                };
                let n = (depth - 2) / 6;
                let stem = (
                    conv(p / "conv1", shape[0], widths[0], 3, 1, false, init),
                    bn(p / "bn1", widths[0]),
                );
                let mut blocks = Vec::new();
                let mut c = widths[0];
                for (stage, &w) in widths[1..].iter().enumerate() {
                    for b in 0..n {
                        let q = p / format!("layer{}", stage + 1) / b;
                        let stride = if stage > 0 && b == 0 { 2 } else { 1 };
                        let down = (stride != 1 || c != w).then(|| {
                            (
                                conv(&q / "downsample" / 0, c, w, 1, stride, false, init),
                                bn(&q / "downsample" / 1, w),
                            )
                        });
                        blocks.push(ResBlock {
                            c1: conv(&q / "conv1", c, w, 3, stride, false, init),
                            b1: bn(&q / "bn1", w),
                            c2: conv(&q / "conv2", w, w, 3, 1, false, init),
                            b2: bn(&q / "bn2", w),
                            down,
                        });
                        c = w;
                    }
                }
                let fc = nn::linear(p / "fc", c, classes, init.linear(c));
                Body::ResNet { stem, blocks, fc }
            }
            Arch::Wrn { depth, widen } => {
                let w = widen as i64;
                let n = (depth - 4) / 6;
                let stem = conv(p / "conv1", shape[0], 16, 3, 1, false, init);
                let mut blocks = Vec::new();
                let mut c = 16;
                for (stage, out) in [16 * w, 32 * w, 64 * w].into_iter().enumerate() {
                    for b in 0..n {
                        let q = p / format!("block{}", stage + 1) / "layer" / b;
                        let stride = if stage > 0 && b == 0 { 2 } else { 1 };
                        blocks.push(WrnBlock {
                            b1: bn(&q / "bn1", c),
                            c1: conv(&q / "conv1", c, out, 3, stride, false, init),
                            b2: bn(&q / "bn2", out),
                            c2: conv(&q / "conv2", out, out, 3, 1, false, init),
                            shortcut: (c != out)
                                .then(|| conv(&q / "convShortcut", c, out, 1, stride, false, init)),
                        });
                        c = out;
                    }
                }
                let bn_last = bn(p / "bn1", c);
                let fc = nn::linear(p / "fc", c, classes, init.linear(c));
                Body::Wrn {
                    stem,
                    blocks,
                    bn: bn_last,
                    fc,
                }
            }
            Arch::Vgg { depth } => {
                let cfg: [&[i64]; 5] = match depth {
                    8 => [&[64], &[128], &[256], &[512], &[512]],
                    11 => [&[64], &[128], &[256, 256], &[512, 512], &[512, 512]],
                    13 => [
                        &[64, 64],
                        &[128, 128],
                        &[256, 256],
                        &[512, 512],
                        &[512, 512],
                    ],
                    16 => [
                        &[64, 64],
                        &[128, 128],
                        &[256, 256, 256],
                        &[512, 512, 512],
                        &[512, 512, 512],
                    ],
                    _ => [
                        &[64, 64],
                        &[128, 128],
                        &[256, 256, 256, 256],
                        &[512, 512, 512, 512],
                        &[512, 512, 512, 512],
                    ],
                };
                let mut c = shape[0];
                let mut blocks = Vec::new();
                for (b, layers) in cfg.iter().enumerate() {
                    let mut block = Vec::new();
                    for (l, &out) in layers.iter().enumerate() {
                        let q = p / format!("block{b}") / l;
                        block.push((
                            conv(&q / "conv", c, out, 3, 1, true, init),
                            bn(&q / "bn", out),
                        ));
                        c = out;
                    }
                    blocks.push(block);
                }
                let fc = nn::linear(p / "classifier", c, classes, init.linear(c));
                Body::Vgg {
                    blocks,
                    pool4: shape[1] == 64,
                    fc,
                }
            }
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
        }
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
        let fast = xs.device() == tch::Device::Cpu;
        self.channels_last.store(fast, Ordering::Relaxed);
        let out = self.forward_t(xs, false);
        self.channels_last.store(false, Ordering::Relaxed);
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
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn build(arch: Arch, shape: [i64; 3]) -> (nn::VarStore, Net) {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Net::new(&vs.root(), arch, shape, 10, Init::default());
        (vs, net)
    }

    #[test]
    fn parameter_counts_for_cifar_shape() {
        let (vs, _) = build(Arch::Teacher, [3, 32, 32]);
        assert_eq!(parameter_count(&vs), 1_186_986);
        let (vs, _) = build(Arch::Student, [3, 32, 32]);
        assert_eq!(parameter_count(&vs), 267_738);
        assert_eq!(Arch::Teacher.flat_len([3, 32, 32]), 2048);
        assert_eq!(Arch::Student.flat_len([3, 32, 32]), 1024);
    }

    #[test]
    fn parameter_counts_for_mnist_shape() {
        // teacher: 1*128*9+128 + 128*64*9+64 + 64*64*9+64 + 64*32*9+32 + 1568*512+512 + 512*10+10
        let (vs, _) = build(Arch::Teacher, [1, 28, 28]);
        assert_eq!(
            parameter_count(&vs),
            1280 + 73_792 + 36_928 + 18_464 + 803_328 + 5130
        );
        // student: 1*16*9+16 + 16*16*9+16 + 784*256+256 + 256*10+10
        let (vs, _) = build(Arch::Student, [1, 28, 28]);
        assert_eq!(parameter_count(&vs), 160 + 2320 + 200_960 + 2570);
    }

    #[test]
    fn output_shapes() {
        for (shape, t_feat, s_feat) in [
            ([1, 28, 28], [4, 32, 7, 7], [4, 16, 7, 7]),
            ([3, 32, 32], [4, 32, 8, 8], [4, 16, 8, 8]),
        ] {
            let x = Tensor::zeros(
                [4, shape[0], shape[1], shape[2]],
                (Kind::Float, Device::Cpu),
            );
            let (_vs, t) = build(Arch::Teacher, shape);
            assert_eq!(t.forward_t(&x, false).size(), [4, 10]);
            assert_eq!(t.features_t(&x, false).size(), t_feat);
            let (_vs, s) = build(Arch::Student, shape);
            assert_eq!(s.forward_t(&x, true).size(), [4, 10]);
            assert_eq!(s.features_t(&x, true).size(), s_feat);
        }
    }

    #[test]
    fn mac_counts() {
        // student on 1×28×28: conv1 28*28*16*1*9, conv2 14*14*16*16*9, fc 784*256 + 256*10
        assert_eq!(
            Arch::Student.forward_macs([1, 28, 28], 10),
            112_896 + 451_584 + 200_704 + 2560
        );
    }
    /// Parameter counts at 3×32×32 against the published figures (millions, to one unit of the last
    /// digit published): He et al. 2016, "Deep Residual Learning", Table 6 (CIFAR
    /// ResNets 20/56/110: 0.27/0.85/1.7 M at 10 classes — the 100-class head adds 64·90 + 90) and the
    /// CRD benchmark's model zoo table (Tian et al. 2020, RepDistiller README) as quoted in issue #16:
    /// resnet8x4 1.2 M, resnet32x4 7.4 M, wrn-16-2 0.70 M, wrn-40-2 2.2 M, vgg8 4.0 M, vgg13 9.5 M.
    #[test]
    fn the_zoo_has_the_published_sizes() {
        let m = |name: &str, classes: i64| {
            Arch::parse(name).unwrap().parameters([3, 32, 32], classes) as f64 / 1e6
        };
        for (name, classes, published, digits) in [
            ("resnet20", 10, 0.27, 2),
            ("resnet56", 10, 0.85, 2),
            ("resnet110", 10, 1.7, 1),
            ("resnet20", 100, 0.28, 2),
            ("resnet56", 100, 0.86, 2),
            ("resnet110", 100, 1.7, 1),
            ("resnet8x4", 100, 1.2, 1),
            ("resnet32x4", 100, 7.4, 1),
            ("wrn-16-2", 100, 0.70, 2),
            ("wrn-40-2", 100, 2.2, 1),
            ("vgg8", 100, 4.0, 1),
            ("vgg13", 100, 9.5, 1),
        ] {
            let got = m(name, classes);
            // within one unit of the last published digit (papers round or truncate)
            let unit = 10f64.powi(-digits);
            assert!(
                (got - published).abs() < unit,
                "{name} ({classes} classes): {got:.4} M, published {published} M"
            );
        }
        // exact counts computed by hand: resnet20 (stem, 3 stages of 3 blocks, fc) and vgg8
        assert_eq!(
            Arch::parse("resnet20")
                .unwrap()
                .parameters([3, 32, 32], 100),
            278_324
        );
        assert_eq!(
            Arch::parse("vgg8").unwrap().parameters([3, 32, 32], 100),
            3_965_028
        );
    }

    #[test]
    fn every_model_runs_on_every_dataset_shape() {
        for name in ZOO {
            let arch = Arch::parse(name).unwrap();
            assert_eq!(arch.name(), *name);
            for shape in [[1, 28, 28], [3, 32, 32]] {
                let vs = nn::VarStore::new(Device::Cpu);
                let net = Net::new(&vs.root(), arch, shape, 100, Init::default());
                let x = Tensor::rand(
                    [2, shape[0], shape[1], shape[2]],
                    (Kind::Float, Device::Cpu),
                );
                assert_eq!(net.forward_t(&x, true).size(), [2, 100], "{name} {shape:?}");
                let f = net.features_t(&x, false);
                assert_eq!(
                    Ok(f.size()[1]),
                    arch.feature_channels(shape),
                    "{name} {shape:?}"
                );
                assert!(arch.forward_macs(shape, 100) > 0);
            }
        }
    }

    /// `predict` (channels-last convolutions on the CPU) counts the same classes as `forward_t`: its
    /// logits differ by rounding only, and it leaves the network as it found it.
    #[test]
    fn predict_gives_forward_t_s_classes_for_every_model() {
        for name in ZOO {
            let arch = Arch::parse(name).unwrap();
            for shape in [[1, 28, 28], [3, 32, 32]] {
                let vs = nn::VarStore::new(Device::Cpu);
                let net = Net::new(&vs.root(), arch, shape, 10, Init::default());
                let x = Tensor::randn(
                    [8, shape[0], shape[1], shape[2]],
                    (Kind::Float, Device::Cpu),
                );
                // batch-norm running statistics away from their initial values
                let _ = net.forward_t(&(&x * 2.0 + 0.5), true);
                let plain = tch::no_grad(|| net.forward_t(&x, false));
                let fast = tch::no_grad(|| net.predict(&x));
                let scale = 1.0 + plain.abs().max().double_value(&[]);
                let diff = (&fast - &plain).abs().max().double_value(&[]);
                assert!(
                    diff <= 1e-5 * scale,
                    "{name} {shape:?}: logits differ by {diff}"
                );
                assert!(
                    fast.argmax(-1, false).equal(&plain.argmax(-1, false)),
                    "{name} {shape:?}: predicted classes differ"
                );
                let again = tch::no_grad(|| net.forward_t(&x, false));
                assert!(
                    again.equal(&plain),
                    "{name} {shape:?}: predict changed forward_t"
                );
            }
        }
    }

    #[test]
    fn batch_norm_trains_on_batch_statistics_and_keeps_running_ones() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Net::new(
            &vs.root(),
            Arch::parse("resnet8").unwrap(),
            [1, 28, 28],
            10,
            Init::default(),
        );
        // running statistics are variables (so snapshots, checkpoints and cached teachers keep them),
        // but not trainable (so Adam leaves them alone)
        let vars = vs.variables();
        let running: Vec<&String> = vars
            .keys()
            .filter(|k| k.ends_with("running_mean"))
            .collect();
        assert!(!running.is_empty());
        assert!(vs.trainable_variables().len() < vars.len());
        let x = Tensor::rand([8, 1, 28, 28], (Kind::Float, Device::Cpu)) * 3.0 + 1.0;
        let mean_before = vars[running[0]].copy();
        let eval = net.forward_t(&x, false);
        assert!(
            vars[running[0]].equal(&mean_before),
            "evaluation moved the running statistics"
        );
        let train = net.forward_t(&x, true);
        assert!(
            !vars[running[0]].equal(&mean_before),
            "training did not update them"
        );
        assert!(
            !train.allclose(&eval, 1e-4, 1e-4, false),
            "train and eval modes agree"
        );
        // PyTorch's batch-norm initialisation: weight 1, bias 0
        let w = vars
            .iter()
            .find(|(k, _)| k.ends_with("bn1.weight"))
            .unwrap()
            .1;
        assert_eq!(w.min().double_value(&[]), 1.0);
    }

    #[test]
    fn bad_model_names_say_what_exists_and_the_nearest() {
        let e = Arch::parse("resnet21").unwrap_err();
        assert!(e.contains("6n + 2") && e.contains("resnet20"), "{e}");
        let e = Arch::parse("wrn-16").unwrap_err();
        assert!(e.contains("wrn-<depth>-<width>"), "{e}");
        let e = Arch::parse("vgg9").unwrap_err();
        assert!(e.contains("did you mean \"vgg8\""), "{e}");
        let e = Arch::parse("tutorial-stdent").unwrap_err();
        assert!(e.contains("did you mean \"tutorial-student\""), "{e}");
        assert_eq!(
            Arch::parse("resnet14x4").unwrap(),
            Arch::ResNet {
                depth: 14,
                x4: true
            }
        );
        assert_eq!(
            Arch::parse("wrn-28-10").unwrap(),
            Arch::Wrn {
                depth: 28,
                widen: 10
            }
        );
    }
}
