//! The teacher and student of the design documents (the PyTorch KD tutorial's pair), for any C×H×W
//! with H and W divisible by 4 and any number of classes. 3×3 convolutions keep the size (padding 1);
//! each 2×2 max-pool halves it.

use tch::nn::{self, Module};
use tch::Tensor;

/// Bumped whenever a model definition changes: cached teachers of another version are never reused.
/// 2: PyTorch's default initialisation (the `init` option), kd-sweep's own Adam written as PyTorch's,
/// dropout drawn from a stream seeded after initialisation.
pub const MODEL_VERSION: u32 = 2;

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
}

impl Init {
    pub const NAMES: &'static str = "\"pytorch\" or \"kaiming\"";

    pub fn parse(s: &str) -> Option<Init> {
        match s {
            "pytorch" => Some(Init::Pytorch),
            "kaiming" => Some(Init::Kaiming),
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
            Init::Pytorch => {
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
            Init::Pytorch => {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Teacher,
    Student,
}

impl Arch {
    /// Convolutions as (out channels, max-pool after it).
    fn convs(self) -> &'static [(i64, bool)] {
        match self {
            Arch::Teacher => &[(128, false), (64, true), (64, false), (32, true)],
            Arch::Student => &[(16, true), (16, true)],
        }
    }

    fn hidden(self) -> i64 {
        match self {
            Arch::Teacher => 512,
            Arch::Student => 256,
        }
    }

    /// Channels of the last convolutional feature map.
    pub fn feature_channels(self) -> i64 {
        self.convs().last().map_or(0, |c| c.0)
    }

    /// Length of the flattened feature map for an input of `shape` (C, H, W).
    pub fn flat_len(self, shape: [i64; 3]) -> i64 {
        let last = self.convs().last().map_or(shape[0], |c| c.0);
        last * (shape[1] / 4) * (shape[2] / 4)
    }

    /// Multiply-accumulate operations of one forward pass of one image (convolutions and linears).
    pub fn forward_macs(self, shape: [i64; 3], classes: i64) -> i64 {
        let (mut c, mut h, mut w) = (shape[0], shape[1], shape[2]);
        let mut macs = 0;
        for &(out, pool) in self.convs() {
            macs += h * w * out * c * 9;
            c = out;
            if pool {
                h /= 2;
                w /= 2;
            }
        }
        macs + self.flat_len(shape) * self.hidden() + self.hidden() * classes
    }
}

#[derive(Debug)]
pub struct Net {
    convs: Vec<(nn::Conv2D, bool)>,
    fc1: nn::Linear,
    fc2: nn::Linear,
}

impl Net {
    pub fn new(p: &nn::Path, arch: Arch, shape: [i64; 3], classes: i64, init: Init) -> Net {
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
        Net { convs, fc1, fc2 }
    }

    /// The last convolutional feature map (after its pooling), N×C×H/4×W/4.
    pub fn features(&self, xs: &Tensor) -> Tensor {
        let mut x = xs.shallow_clone();
        for (conv, pool) in &self.convs {
            x = conv.forward(&x).relu();
            if *pool {
                x = x.max_pool2d_default(2);
            }
        }
        x
    }

    /// Logits from a feature map; dropout (p = 0.1) only when `train`, drawn by [`dropout_mask`] so that
    /// plain and fused students of a seed share their masks on every device.
    pub fn head(&self, features: &Tensor, train: bool) -> Tensor {
        let h = features.flatten(1, -1).apply(&self.fc1).relu();
        let h = if train {
            let size = h.size();
            &h * dropout_mask(size[0], size[1], DROPOUT, &h)
        } else {
            h
        };
        h.apply(&self.fc2)
    }

    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.head(&self.features(xs), train)
    }
}

/// Dropout probability of the hidden layer of both networks (the tutorial's).
pub const DROPOUT: f64 = 0.1;

/// A dropout mask for an [n, width] activation, drawn exactly as libtorch's CPU dropout draws it
/// (Bernoulli with keep probability 1 − p, divided by 1 − p). Plain and fused training both use it:
/// libtorch's CUDA dropout is a fused kernel with draws of its own, so only one mask function for both
/// keeps fused and plain students of a seed on the same masks on a GPU too.
pub fn dropout_mask(n: i64, width: i64, p: f64, like: &Tensor) -> Tensor {
    let mut noise = Tensor::empty([n, width], (tch::Kind::Float, like.device()));
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
            assert_eq!(t.features(&x).size(), t_feat);
            let (_vs, s) = build(Arch::Student, shape);
            assert_eq!(s.forward_t(&x, true).size(), [4, 10]);
            assert_eq!(s.features(&x).size(), s_feat);
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
}
