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

/// `channels_last = true` runs every pass of kd-sweep's networks (training and evaluation, feature
/// maps and logits) with channels-last convolutions — on a GPU too, where this is what cuDNN's
/// tensor-core kernels want — to the same values up to rounding, and `predict` leaves that layout
/// in place.
#[test]
fn channels_last_runs_every_pass_in_that_layout() {
    // N×C×H×W strides of an N×H×W×C array
    let is_channels_last = |t: &Tensor| {
        let [_, c, h, w] = t.size()[..] else {
            panic!("a feature map")
        };
        t.stride() == [h * w * c, 1, w * c, c]
    };
    for name in ["resnet8", "wrn-16-2", "vgg8", "tutorial-teacher"] {
        let arch = Arch::parse(name).unwrap();
        let (_vs, net) = build(arch, [3, 32, 32]);
        let x = Tensor::randn([4, 3, 32, 32], (Kind::Float, Device::Cpu));
        let plain = tch::no_grad(|| net.features_t(&x, false));
        let plain_logits = tch::no_grad(|| net.forward_t(&x, false));
        assert!(plain.is_contiguous(), "{name}: default layout");
        net.set_channels_last(true);
        let maps = tch::no_grad(|| net.features_t(&x, false));
        assert!(is_channels_last(&maps), "{name}: channels-last maps");
        let diff = (&maps - &plain).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "{name}: feature maps differ by {diff}");
        let logits = tch::no_grad(|| net.forward_t(&x, false));
        let diff = (&logits - &plain_logits).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "{name}: logits differ by {diff}");
        // (a training pass moves batch norm's running statistics: last)
        let maps = net.features_t(&x, true);
        assert!(
            is_channels_last(&maps),
            "{name}: channels-last maps in training"
        );
        let _ = tch::no_grad(|| net.predict(&x));
        let after = tch::no_grad(|| net.features_t(&x, false));
        assert!(
            is_channels_last(&after),
            "{name}: predict kept the role's layout"
        );
        net.set_channels_last(false);
        let _ = tch::no_grad(|| net.predict(&x));
        assert!(tch::no_grad(|| net.features_t(&x, false)).is_contiguous());
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
