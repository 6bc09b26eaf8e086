use super::*;
use std::io::Write;

/// A network `arch` on the CPU with batch-norm statistics that are not their initial values (so an
/// evaluation that ignored them would differ), its variables in `vs`.
fn network(arch: Arch, shape: [i64; 3], classes: i64) -> (nn::VarStore, Net) {
    let vs = nn::VarStore::new(Device::Cpu);
    let net = Net::new(&vs.root(), arch, shape, classes, Init::default());
    let _guard = tch::no_grad_guard();
    for (name, mut t) in vs.variables() {
        if name.ends_with("running_mean") || name.ends_with("running_var") {
            t.copy_(&(Tensor::rand_like(&t) + 0.5));
        }
    }
    (vs, net)
}

/// `vs`'s variables under `name`'s names, written as a safetensors file in `dir`.
fn saved(dir: &Path, file: &str, vs: &nn::VarStore, name: impl Fn(&str) -> String) -> Weights {
    let named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (name(&n), t))
        .collect();
    let path = dir.join(file);
    Tensor::write_safetensors(&named, &path).unwrap();
    Weights::open(file, dir).unwrap()
}

fn logits(net: &Net, shape: [i64; 3]) -> Tensor {
    let _guard = tch::no_grad_guard();
    let x = Tensor::linspace(
        -1.0,
        1.0,
        2 * shape.iter().product::<i64>(),
        (Kind::Float, Device::Cpu),
    )
    .reshape([2, shape[0], shape[1], shape[2]]);
    net.forward_t(&x, false)
}

#[test]
fn pytorch_names_of_the_zoo() {
    let vgg = Arch::Vgg { depth: 8 };
    assert_eq!(pytorch_name(vgg, "block0.0.conv.weight"), "block0.0.weight");
    assert_eq!(
        pytorch_name(vgg, "block2.1.bn.running_var"),
        "block2.4.running_var"
    );
    assert_eq!(pytorch_name(vgg, "classifier.bias"), "classifier.bias");
    // the tutorial's DeepNN: features = conv relu conv relu pool conv relu conv relu pool
    let t = Arch::Teacher;
    let names: Vec<String> = ["conv1.weight", "conv2.bias", "conv3.weight", "conv4.weight"]
        .iter()
        .map(|v| pytorch_name(t, v))
        .collect();
    assert_eq!(
        names,
        [
            "features.0.weight",
            "features.2.bias",
            "features.5.weight",
            "features.7.weight"
        ]
    );
    assert_eq!(pytorch_name(t, "fc1.weight"), "classifier.0.weight");
    assert_eq!(pytorch_name(t, "fc2.bias"), "classifier.3.bias");
    // LightNN: conv relu pool conv relu pool
    assert_eq!(
        pytorch_name(Arch::Student, "conv2.weight"),
        "features.3.weight"
    );
    let r = Arch::ResNet {
        depth: 8,
        x4: false,
    };
    assert_eq!(
        pytorch_name(r, "layer1.0.downsample.1.weight"),
        "layer1.0.downsample.1.weight"
    );
}

#[test]
fn a_safetensors_file_with_pytorch_names_loads_with_the_batch_norm_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let shape = [3, 32, 32];
    for arch in [
        Arch::Vgg { depth: 8 },
        Arch::ResNet {
            depth: 8,
            x4: false,
        },
        Arch::Teacher,
    ] {
        let (vs, net) = network(arch, shape, 10);
        let w = saved(dir.path(), "w.safetensors", &vs, |n| pytorch_name(arch, n));
        w.check(arch, shape, 10).unwrap();
        let (vs2, net2) = network(arch, shape, 10);
        w.load_into(&vs2, arch, 10).unwrap();
        assert_eq!(logits(&net, shape), logits(&net2, shape), "{}", arch.name());
        // kd-sweep's own names (a cached teacher's weights) load too
        let own = saved(dir.path(), "own.safetensors", &vs, str::to_string);
        let (vs3, net3) = network(arch, shape, 10);
        own.load_into(&vs3, arch, 10).unwrap();
        assert_eq!(logits(&net, shape), logits(&net3, shape), "{}", arch.name());
    }
}

#[test]
fn data_parallel_prefix_float64_and_num_batches_tracked_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let (shape, arch) = (
        [1, 12, 12],
        Arch::ResNet {
            depth: 8,
            x4: false,
        },
    );
    let (vs, net) = network(arch, shape, 3);
    let mut named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (format!("module.{n}"), t.to_kind(Kind::Double)))
        .collect();
    named.push(("module.bn1.num_batches_tracked".into(), Tensor::from(7i64)));
    Tensor::write_safetensors(&named, dir.path().join("dp.safetensors")).unwrap();
    let w = Weights::open("dp.safetensors", dir.path()).unwrap();
    let (vs2, net2) = network(arch, shape, 3);
    w.load_into(&vs2, arch, 3).unwrap();
    let diff = (logits(&net, shape) - logits(&net2, shape))
        .abs()
        .max()
        .double_value(&[]);
    assert!(diff < 1e-5, "float64 rounded to float32: {diff}");
}

#[test]
fn a_file_of_another_network_lists_what_does_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let (shape, r8) = (
        [3, 32, 32],
        Arch::ResNet {
            depth: 8,
            x4: false,
        },
    );
    let (vs, _) = network(r8, shape, 10);
    let w = saved(dir.path(), "r8.safetensors", &vs, str::to_string);
    let e = w
        .check(
            Arch::ResNet {
                depth: 14,
                x4: false,
            },
            shape,
            10,
        )
        .unwrap_err();
    assert!(e.contains("does not fit resnet14 for 10 classes"), "{e}");
    assert!(
        e.contains("missing from the file: layer1.1.bn1.bias"),
        "{e}"
    );
    assert!(e.contains("(30 in all)"), "{e}");
    let e = w.check(r8, shape, 100).unwrap_err();
    assert!(
        e.contains("fc.bias: file has [10], resnet8 expects [100]")
            && e.contains("fc.weight: file has [10, 64], resnet8 expects [100, 64]"),
        "{e}"
    );
    assert!(!e.contains("missing"), "{e}");
    let e = w
        .check(
            Arch::Wrn {
                depth: 10,
                widen: 1,
            },
            shape,
            10,
        )
        .unwrap_err();
    assert!(
        e.contains(
            "shapes differ: bn1.bias: file has [16], wrn-10-1 expects [64]; bn1.running_mean"
        ) && e.contains("in the file but not in the network: layer1.0.bn1.bias, ")
            && e.contains("(40 in all)"),
        "{e}"
    );
    // a tensor of the right shape but an integer type: said as such, not as a shape
    let named: Vec<(String, Tensor)> = (vs.variables().into_iter())
        .map(|(n, t)| match n.as_str() {
            "fc.bias" => (n, t.to_kind(Kind::Int64)),
            _ => (n, t),
        })
        .collect();
    Tensor::write_safetensors(&named, dir.path().join("int.safetensors")).unwrap();
    let e = (Weights::open("int.safetensors", dir.path()).unwrap())
        .check(r8, shape, 10)
        .unwrap_err();
    assert!(
        e.contains("not floating point in the file: fc.bias (Int64)")
            && !e.contains("shapes differ"),
        "{e}"
    );
    // the tutorial network shares one name with resnet8's file (conv1.weight): what is missing is
    // still listed by the PyTorch names the README gives (features.N), not kd-sweep's own
    let e = w.check(Arch::Teacher, shape, 10).unwrap_err();
    assert!(
        e.contains("missing from the file: features.0.bias, features.0.weight")
            && !e.contains("conv2."),
        "{e}"
    );
}

#[test]
fn files_that_are_not_weights_say_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(dir.path().join(name), bytes).unwrap();
        Weights::open(name, dir.path()).unwrap()
    };
    let e = write("a.txt", b"hello").tensors().unwrap_err();
    assert!(e.contains("neither a PyTorch state dict"), "{e}");
    let e = write("old.pt", &[0x80, 2, 0x8a, 0x0a])
        .tensors()
        .unwrap_err();
    assert!(e.contains("before 1.6"), "{e}");
    let e = Weights::open("nowhere.pt", dir.path()).unwrap_err();
    assert!(e.contains("nowhere.pt") && e.contains("cannot read"), "{e}");
    // changed after it was planned
    let w = write("c.txt", b"one");
    std::fs::write(dir.path().join("c.txt"), b"two").unwrap();
    assert!(w.tensors().unwrap_err().contains("changed since"));
}

/// A zip as torch.save lays it out, around `pickle` and the storages `(key, bytes)`.
fn torch_zip(path: &Path, pickle: &[u8], storages: &[(&str, Vec<u8>)]) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let stored =
        zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
    z.start_file("archive/data.pkl", stored).unwrap();
    z.write_all(pickle).unwrap();
    z.start_file("archive/byteorder", stored).unwrap();
    z.write_all(b"little").unwrap();
    for (key, bytes) in storages {
        z.start_file(format!("archive/data/{key}"), stored).unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
}

/// The pickle of {"model": {"a": T, "b": U}, "epoch": 3}, protocol 2, where T is a 2×3 view of
/// storage "0" (7 float32s) at offset 1 with strides (1, 2) and U a float16 [2] from storage "1".
fn checkpoint_pickle() -> Vec<u8> {
    let mut p = vec![0x80, 2, b'}', b'('];
    let rebuild = |p: &mut Vec<u8>, class: &[u8], key: u8, numel: u8, rest: &[u8]| {
        p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n((U\x07storagec");
        p.extend_from_slice(class);
        p.extend_from_slice(&[b'U', 1, key, b'U', 3]);
        p.extend_from_slice(b"cpuK");
        p.extend_from_slice(&[numel, b't', b'Q']);
        p.extend_from_slice(rest);
        p.extend_from_slice(b"\x89ccollections\nOrderedDict\n)RtR");
    };
    p.extend_from_slice(b"U\x05model");
    p.extend_from_slice(b"ccollections\nOrderedDict\n)R(U\x01a");
    // offset 1, size (2, 3), stride (1, 2)
    rebuild(
        &mut p,
        b"torch\nFloatStorage\n",
        b'0',
        7,
        b"K\x01K\x02K\x03\x86K\x01K\x02\x86",
    );
    p.extend_from_slice(b"U\x01b");
    rebuild(
        &mut p,
        b"torch\nHalfStorage\n",
        b'1',
        2,
        b"K\x00K\x02\x85K\x01\x85",
    );
    p.extend_from_slice(b"uU\x05epochK\x03u.");
    p
}

#[test]
fn a_torch_zip_checkpoint_is_read_with_offsets_strides_and_float16() {
    let dir = tempfile::tempdir().unwrap();
    let floats: Vec<u8> = (0..7).flat_map(|i| (i as f32).to_le_bytes()).collect();
    // 1.5 and -2.0 in float16
    let halves = vec![0x00, 0x3e, 0x00, 0xc0];
    let path = dir.path().join("ckpt.pth");
    torch_zip(&path, &checkpoint_pickle(), &[("0", floats), ("1", halves)]);
    let t = Weights::open("ckpt.pth", dir.path())
        .unwrap()
        .tensors()
        .unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].0, "a");
    assert_eq!(t[0].1.size(), [2, 3]);
    // element (i, j) = storage[1 + i + 2j]
    let a: Vec<f32> = Vec::try_from(t[0].1.flatten(0, -1)).unwrap();
    assert_eq!(a, [1.0, 3.0, 5.0, 2.0, 4.0, 6.0]);
    assert_eq!(t[1].1.kind(), Kind::Float);
    let b: Vec<f32> = Vec::try_from(&t[1].1).unwrap();
    assert_eq!(b, [1.5, -2.0]);
}

#[test]
fn a_torch_save_file_named_as_torchscript_is_said_to_be_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.pth");
    torch_zip(
        &path,
        &checkpoint_pickle(),
        &[("0", vec![0; 28]), ("1", vec![0; 4])],
    );
    let bytes = std::fs::read(&path).unwrap();
    assert!(is_torch_save(&bytes));
    // libtorch's own words call it corrupted; the error says what it is and what to do
    let e = crate::model::script::from_bytes(&bytes, Device::Cpu)
        .map(|_| ())
        .unwrap_err();
    assert!(
        e.starts_with(
            "is a file torch.save wrote (a state dict or a pickled model), not TorchScript"
        ) && e.contains("torch.jit.script(model).save(path)")
            && e.contains("weights = \"<file>\""),
        "{e}"
    );
    assert!(!is_torch_save(b"not a zip"));
}

#[test]
fn a_view_past_its_storage_is_refused_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let floats: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
    let path = dir.path().join("short.pth");
    // the same pickle, but storage "0" holds 6 elements where the view reaches element 6
    let pickle = checkpoint_pickle();
    let at = pickle.windows(6).position(|w| w == b"cpuK\x07t").unwrap() + 4;
    let mut pickle = pickle;
    pickle[at] = 6;
    torch_zip(&path, &pickle, &[("0", floats), ("1", vec![0; 4])]);
    let e = Weights::open("short.pth", dir.path())
        .unwrap()
        .tensors()
        .unwrap_err();
    assert!(
        e.contains("a: has offset 1") && e.contains("storage of 6 elements"),
        "{e}"
    );
}
