//! Writers for the real on-disk formats, used by tests to make small datasets (and by anyone who wants
//! a synthetic dataset kd-sweep can read). The readers never depend on these.

use std::io::Write;
use std::path::Path;

/// An IDX file of unsigned bytes with the given sizes; gzipped when `gz`.
pub fn idx(path: &Path, sizes: &[usize], data: &[u8], gz: bool) -> std::io::Result<()> {
    let mut b = Vec::with_capacity(4 + 4 * sizes.len() + data.len());
    b.extend_from_slice(&(0x0800u32 | sizes.len() as u32).to_be_bytes());
    for &s in sizes {
        b.extend_from_slice(&(s as u32).to_be_bytes());
    }
    b.extend_from_slice(data);
    write_maybe_gz(path, &b, gz)
}

fn write_maybe_gz(path: &Path, bytes: &[u8], gz: bool) -> std::io::Result<()> {
    if gz {
        let mut e = flate2::write::GzEncoder::new(
            std::fs::File::create(path)?,
            flate2::Compression::fast(),
        );
        e.write_all(bytes)?;
        e.finish()?;
        Ok(())
    } else {
        std::fs::write(path, bytes)
    }
}

/// The four MNIST-style files in `dir` (`n_train` and `n_test` images of `h×w`), with the given
/// pixels and labels; names get `.gz` when gzipped.
pub fn mnist_dir(
    dir: &Path,
    h: usize,
    w: usize,
    train: (&[u8], &[u8]),
    test: (&[u8], &[u8]),
    gz: bool,
) -> std::io::Result<()> {
    let sfx = if gz { ".gz" } else { "" };
    for ((px, lb), (iname, lname)) in [train, test].into_iter().zip([
        ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    ]) {
        idx(
            &dir.join(format!("{iname}{sfx}")),
            &[lb.len(), h, w],
            px,
            gz,
        )?;
        idx(&dir.join(format!("{lname}{sfx}")), &[lb.len()], lb, gz)?;
    }
    Ok(())
}

/// One CIFAR-10 binary batch: per image, the label byte then 3072 channel-major pixels.
pub fn cifar_binary(path: &Path, pixels: &[u8], labels: &[u8]) -> std::io::Result<()> {
    let mut b = Vec::with_capacity(labels.len() * 3073);
    for (i, &l) in labels.iter().enumerate() {
        b.push(l);
        b.extend_from_slice(&pixels[i * 3072..(i + 1) * 3072]);
    }
    std::fs::write(path, b)
}

/// One CIFAR-10 python batch, byte for byte the way Python 2's cPickle (protocol 2) wrote the
/// official release: `{'data': numpy uint8 array N×3072, 'labels': [int, …]}`.
pub fn cifar_python(path: &Path, pixels: &[u8], labels: &[u8]) -> std::io::Result<()> {
    cifar_python_with(path, pixels, &[("labels", labels)])
}

/// A CIFAR python batch with these label lists (CIFAR-100: `fine_labels` and `coarse_labels`).
pub fn cifar_python_with(
    path: &Path,
    pixels: &[u8],
    label_lists: &[(&str, &[u8])],
) -> std::io::Result<()> {
    let labels = label_lists.first().map_or(&[][..], |l| l.1);
    let n = labels.len() as u32;
    let mut p = vec![0x80, 2, b'}', b'(']; // PROTO 2, EMPTY_DICT, MARK
    let short = |p: &mut Vec<u8>, s: &[u8]| {
        p.push(b'U');
        p.push(s.len() as u8);
        p.extend_from_slice(s);
    };
    let int = |p: &mut Vec<u8>, v: u32| {
        p.push(b'J');
        p.extend_from_slice(&v.to_le_bytes());
    };
    short(&mut p, b"data");
    p.extend_from_slice(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n");
    p.extend_from_slice(&[b'K', 0, 0x85]); // (0,)
    short(&mut p, b"b");
    p.extend_from_slice(&[0x87, b'R', b'(', b'K', 1]); // TUPLE3, REDUCE; state: (1,
    int(&mut p, n);
    int(&mut p, 3072);
    p.push(0x86); // shape (n, 3072)
    p.extend_from_slice(b"cnumpy\ndtype\n");
    short(&mut p, b"u1");
    p.extend_from_slice(&[b'K', 0, b'K', 1, 0x87, b'R', b'(', b'K', 3]);
    short(&mut p, b"|");
    p.extend_from_slice(b"NNN");
    p.extend_from_slice(&[
        b'J', 0xff, 0xff, 0xff, 0xff, b'J', 0xff, 0xff, 0xff, 0xff, b'K', 0, b't', b'b',
    ]);
    p.push(0x89); // not Fortran order
    p.push(b'T');
    p.extend_from_slice(&(pixels.len() as u32).to_le_bytes());
    p.extend_from_slice(pixels);
    p.extend_from_slice(b"tb"); // state tuple, BUILD
    for (key, labels) in label_lists {
        short(&mut p, key.as_bytes());
        p.extend_from_slice(b"](");
        for &l in labels.iter() {
            p.extend_from_slice(&[b'K', l]);
        }
        p.push(b'e');
    }
    p.extend_from_slice(b"u.");
    std::fs::write(path, p)
}

/// A CIFAR-100 release folder (binary `train.bin`/`test.bin`, or python `train`/`test`) with
/// `n_train` and `n_test` images of random pixels; fine labels cycle through 0..100 and the coarse
/// label is the fine one divided by 5.
pub fn cifar100_dir(
    dir: &Path,
    n_train: usize,
    n_test: usize,
    python: bool,
    seed: u64,
) -> std::io::Result<()> {
    let mut rng = crate::rng::SplitMix64::new(seed);
    let mut file = |name: &str, n: usize| {
        let fine: Vec<u8> = (0..n).map(|i| (i % 100) as u8).collect();
        let coarse: Vec<u8> = fine.iter().map(|f| f / 5).collect();
        let pixels: Vec<u8> = (0..n * 3072).map(|_| rng.next_u64() as u8).collect();
        if python {
            let lists: [(&str, &[u8]); 2] = [("fine_labels", &fine), ("coarse_labels", &coarse)];
            cifar_python_with(&dir.join(name), &pixels, &lists)
        } else {
            let mut b = Vec::with_capacity(n * 3074);
            for i in 0..n {
                b.extend_from_slice(&[coarse[i], fine[i]]);
                b.extend_from_slice(&pixels[i * 3072..(i + 1) * 3072]);
            }
            std::fs::write(dir.join(format!("{name}.bin")), b)
        }
    };
    file("train", n_train)?;
    file("test", n_test)
}

/// A CIFAR-10 release folder: five training batches of `per_batch` images each and a test batch.
pub fn cifar_dir(
    dir: &Path,
    per_batch: usize,
    n_test: usize,
    python: bool,
    seed: u64,
) -> std::io::Result<()> {
    let mut rng = crate::rng::SplitMix64::new(seed);
    let mut batch = |name: &str, n: usize| {
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        let pixels: Vec<u8> = (0..n * 3072).map(|_| rng.next_u64() as u8).collect();
        if python {
            cifar_python(&dir.join(name), &pixels, &labels)
        } else {
            cifar_binary(&dir.join(format!("{name}.bin")), &pixels, &labels)
        }
    };
    for i in 1..=5 {
        batch(&format!("data_batch_{i}"), per_batch)?;
    }
    batch("test_batch", n_test)
}

/// A small learnable MNIST-shaped dataset: each class is a bright square at its own place, plus noise.
/// Writes the four IDX files (gzipped when `gz`) to `dir`.
pub fn synthetic_mnist(
    dir: &Path,
    n_train: usize,
    n_test: usize,
    seed: u64,
    gz: bool,
) -> std::io::Result<()> {
    let mut rng = crate::rng::SplitMix64::new(seed);
    let mut make = |n: usize| {
        let mut px = Vec::with_capacity(n * 784);
        let mut lb = Vec::with_capacity(n);
        for i in 0..n {
            let class = (i % 10) as u8;
            let (cy, cx) = (4 + (class as usize / 5) * 12, 2 + (class as usize % 5) * 5);
            for y in 0..28 {
                for x in 0..28 {
                    let noise = (rng.next_u64() % 60) as u8;
                    let on = (cy..cy + 8).contains(&y) && (cx..cx + 4).contains(&x);
                    px.push(if on { 195 + noise } else { noise });
                }
            }
            lb.push(class);
        }
        (px, lb)
    };
    let train = make(n_train);
    let test = make(n_test);
    std::fs::create_dir_all(dir)?;
    mnist_dir(dir, 28, 28, (&train.0, &train.1), (&test.0, &test.1), gz)
}

/// One array for [`safetensors_file`] and [`npz_file`]: its values (the element type is the file's
/// dtype) and its shape.
#[derive(Clone, Copy)]
pub enum Array<'a> {
    U8(&'a [u8]),
    F32(&'a [f32]),
    I32(&'a [i32]),
    I64(&'a [i64]),
}

/// A `.safetensors` file of the named arrays, with their shapes.
pub fn safetensors_file(path: &Path, arrays: &[(&str, Array, &[usize])]) -> std::io::Result<()> {
    use safetensors::tensor::{Dtype, TensorView};
    let bytes: Vec<(Dtype, Vec<u8>)> = (arrays.iter())
        .map(|(_, a, _)| match a {
            Array::U8(v) => (Dtype::U8, v.to_vec()),
            Array::F32(v) => (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            Array::I32(v) => (Dtype::I32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            Array::I64(v) => (Dtype::I64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        })
        .collect();
    let err = |e: safetensors::SafeTensorError| std::io::Error::other(format!("{e:?}"));
    let mut views = Vec::new();
    for ((name, _, shape), (dtype, b)) in arrays.iter().zip(&bytes) {
        views.push((
            *name,
            TensorView::new(*dtype, shape.to_vec(), b).map_err(err)?,
        ));
    }
    std::fs::write(
        path,
        safetensors::tensor::serialize(views, &None).map_err(err)?,
    )
}

/// A NumPy `.npz` file (as `np.savez` writes: one `<name>.npy` per array, C order) of the arrays.
pub fn npz_file(path: &Path, arrays: &[(&str, Array, &[usize])]) -> std::io::Result<()> {
    use npyz::WriterBuilder;
    let mut npz = npyz::npz::NpzWriter::create(path)?;
    for (name, a, shape) in arrays {
        let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        macro_rules! write {
            ($t:ty, $v:expr) => {{
                let mut w = (npz.array::<$t>(name, Default::default())?)
                    .default_dtype()
                    .shape(&shape)
                    .begin_nd()?;
                w.extend($v.iter().copied())?;
                w.finish()?;
            }};
        }
        match a {
            Array::U8(v) => write!(u8, v),
            Array::F32(v) => write!(f32, v),
            Array::I32(v) => write!(i32, v),
            Array::I64(v) => write!(i64, v),
        }
    }
    Ok(())
}

/// An 8-bit image file of `c` (1 or 3) channel-major `h×w` planes: PNG, or JPEG (quality 95) when
/// the name ends in `.jpg` or `.jpeg`.
pub fn image_file(path: &Path, c: usize, h: usize, w: usize, planes: &[u8]) -> std::io::Result<()> {
    let mut interleaved = vec![0u8; planes.len()];
    for k in 0..c {
        for i in 0..h * w {
            interleaved[i * c + k] = planes[k * h * w + i];
        }
    }
    let color = if c == 1 {
        image::ColorType::L8
    } else {
        image::ColorType::Rgb8
    };
    let jpeg = (path.extension().and_then(|e| e.to_str()))
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg"));
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let done = if jpeg {
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut f, 95).encode(
            &interleaved,
            w as u32,
            h as u32,
            color,
        )
    } else {
        use image::ImageEncoder;
        image::codecs::png::PngEncoder::new(&mut f).write_image(
            &interleaved,
            w as u32,
            h as u32,
            color,
        )
    };
    done.map_err(std::io::Error::other)?;
    f.flush()
}

/// An ImageFolder tree under `dir`: for each split (`train`, `test`, and `validation` when its count
/// is given) `counts[split]` PNG images of each class in `classes`, `c×h×w` random pixels drawn from
/// `seed`; returns each split's images (channel-major bytes) and labels, in ImageFolder's order.
pub fn synthetic_folder(
    dir: &Path,
    classes: &[&str],
    counts: &[usize],
    (c, h, w): (usize, usize, usize),
    seed: u64,
) -> std::io::Result<Vec<(Vec<u8>, Vec<super::Label>)>> {
    let mut rng = crate::rng::SplitMix64::new(seed);
    let mut sorted: Vec<&str> = classes.to_vec();
    sorted.sort();
    let mut out = Vec::new();
    for (split, &n) in ["train", "test", "validation"].iter().zip(counts) {
        let (mut px, mut labels) = (Vec::new(), Vec::new());
        for (label, class) in sorted.iter().enumerate() {
            let cd = dir.join(split).join(class);
            std::fs::create_dir_all(&cd)?;
            for i in 0..n {
                // the class shifts the pixels, so that a network can tell classes apart
                let img: Vec<u8> = (0..c * h * w)
                    .map(|_| (rng.next_u64() % 128) as u8 + (label * 96 / sorted.len()) as u8)
                    .collect();
                image_file(&cd.join(format!("{i:03}.png")), c, h, w, &img)?;
                px.extend_from_slice(&img);
                labels.push(label as super::Label);
            }
        }
        out.push((px, labels));
    }
    Ok(out)
}
