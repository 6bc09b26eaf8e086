use super::*;

#[test]
fn tf32_is_on_from_ampere_unless_the_driver_is_told_otherwise() {
    assert!(!tf32((7, 0), None), "V100 has no TF32");
    assert!(tf32((8, 0), None));
    assert!(tf32((9, 0), Some("1")));
    assert!(!tf32((9, 0), Some("0")));
    assert!(!tf32((9, 0), Some(" 0 ")));
    let h200 = GpuInfo {
        name: "NVIDIA H200".into(),
        capability: (9, 0),
    };
    assert_eq!(gpu_class(&h200, true), "NVIDIA H200, sm_90, TF32");
    assert_eq!(gpu_class(&h200, false), "NVIDIA H200, sm_90, FP32");
}

#[test]
fn a_cpu_is_named_by_its_vendor_and_model() {
    let info = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC  9654 96-Core Processor\n\
                flags\t\t: fpu avx512f\n\nprocessor\t: 1\nvendor_id\t: AuthenticAMD\n";
    assert_eq!(
        cpu_class(info).as_deref(),
        Some("AuthenticAMD, AMD EPYC 9654 96-Core Processor")
    );
    assert_eq!(
        cpu_class("vendor_id : GenuineIntel\n").as_deref(),
        Some("GenuineIntel")
    );
    assert_eq!(cpu_class("model name : something\n"), None, "no vendor");
    assert_eq!(cpu_class(""), None);
    // this machine's, on the CPU only
    assert!(cpu_of(DeviceSpec::Cuda(0)).is_none());
    if crate::platform::cpuinfo().contains("vendor_id") {
        assert!(cpu_of(DeviceSpec::Cpu).is_some());
    }
}

/// On a machine without the NVIDIA driver the GPU cannot be named, and saying so must not take
/// the process down (the binary does not link libcuda; it is looked up when asked).
#[test]
fn naming_a_gpu_without_a_driver_is_an_error_not_a_crash() {
    assert_eq!(gpu_of(DeviceSpec::Cpu), None);
    if std::path::Path::new("/proc/driver/nvidia/version").exists() {
        println!("skipped: this machine has an NVIDIA driver");
        return;
    }
    let e = gpu_info(0).unwrap_err();
    assert!(e.contains("libcuda.so.1"), "{e}");
    let class = gpu_of(DeviceSpec::Cuda(0)).unwrap();
    assert!(
        class.starts_with("unidentified GPU (libcuda.so.1"),
        "{class}"
    );
}

fn gpu_machine(count: usize) -> Probe {
    Probe {
        has_cudart: true,
        cuda_version: Some((13, 0)),
        driver: Some("580.65.06".into()),
        gpu_node: true,
        device_count: count,
        visible: None,
    }
}

#[test]
fn device_names_parse_to_one_value_per_device() {
    assert_eq!(DeviceSpec::parse("cuda:01"), Ok(DeviceSpec::Cuda(1)));
    assert_eq!(DeviceSpec::parse(" cuda:1 "), Ok(DeviceSpec::Cuda(1)));
    assert_eq!(DeviceSpec::parse("cpu"), Ok(DeviceSpec::Cpu));
    for bad in [
        "gpu0",
        "cuda:",
        "cuda:-1",
        "cuda:x",
        "CUDA:0",
        "cuda:99999999999999999999",
    ] {
        assert!(DeviceSpec::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(DeviceSpec::Cuda(1).to_string(), "cuda:1");
    assert_eq!(
        Devices::parse("cuda:1,cuda:01").unwrap_err(),
        "cuda:1 is listed twice"
    );
    assert_eq!(
        Devices::parse("cuda:0, cuda:2").unwrap(),
        Devices::List(vec![DeviceSpec::Cuda(0), DeviceSpec::Cuda(2)])
    );
    // serialized as the canonical name (the manifest and jobs keep today's strings)
    assert_eq!(
        serde_json::to_string(&Devices::List(vec![DeviceSpec::Cuda(1)])).unwrap(),
        r#"{"list":["cuda:1"]}"#
    );
}

#[test]
fn auto_uses_every_gpu_else_the_cpu_with_a_reason() {
    let r = resolve(&Devices::Auto, &gpu_machine(2)).unwrap();
    assert_eq!(r.devices, [DeviceSpec::Cuda(0), DeviceSpec::Cuda(1)]);
    let cpu_only = Probe::default();
    let r = resolve(&Devices::Auto, &cpu_only).unwrap();
    assert_eq!(r.devices, [DeviceSpec::Cpu]);
    assert!(r.note.unwrap().contains("no CUDA backend"));
    let no_gpu = Probe {
        has_cudart: true,
        cuda_version: Some((13, 0)),
        ..Probe::default()
    };
    assert!(resolve(&Devices::Auto, &no_gpu)
        .unwrap()
        .note
        .unwrap()
        .contains("no NVIDIA GPU"));
}

#[test]
fn hiding_every_gpu_runs_on_the_cpu_with_a_reason() {
    for hidden in ["", " ", "-1"] {
        let machine = Probe {
            device_count: 0,
            visible: Some(hidden.into()),
            ..gpu_machine(0)
        };
        let r = resolve(&Devices::Auto, &machine).unwrap();
        assert_eq!(r.devices, [DeviceSpec::Cpu]);
        assert!(r.note.unwrap().contains("hides every GPU"));
    }
    // a list that names a device that is not there is still an error
    let wrong = Probe {
        device_count: 0,
        visible: Some("7".into()),
        ..gpu_machine(0)
    };
    assert!(resolve(&Devices::Auto, &wrong).is_err());
}

#[test]
fn a_gpu_machine_with_no_usable_gpu_is_an_error_not_a_silent_cpu_run() {
    let broken = Probe {
        driver: None,
        device_count: 0,
        ..gpu_machine(0)
    };
    let e = resolve(&Devices::Auto, &broken).unwrap_err();
    assert!(
        matches!(e, DeviceError::NoDriver { needed: 580, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("/dev/nvidia0 exists"), "{e}");
}

#[test]
fn each_reason_for_no_gpu_is_told_apart() {
    let list = Devices::List(vec![DeviceSpec::Cuda(0)]);
    // CPU-only libtorch
    let e = resolve(&list, &Probe::default()).unwrap_err();
    assert_eq!(e, DeviceError::CpuOnlyLibtorch);
    assert!(e.to_string().contains("no CUDA backend"));
    // backend, no driver (this build machine)
    let e = resolve(
        &list,
        &Probe {
            has_cudart: true,
            cuda_version: Some((13, 0)),
            ..Probe::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("no NVIDIA driver found: "), "{e}");
    assert!(
        e.to_string().contains("CUDA 13.0 and needs driver ≥ 580"),
        "{e}"
    );
    // driver too old for the wheel's CUDA 13: names the cu12x way out
    let old = Probe {
        driver: Some("550.54.15".into()),
        device_count: 0,
        ..gpu_machine(0)
    };
    let e = resolve(&list, &old).unwrap_err();
    assert!(
        matches!(e, DeviceError::DriverTooOld { ref driver, needed: 580, .. } if driver == "550.54.15")
    );
    assert!(e.to_string().contains("cu12"), "{e}");
    // the same driver is fine for a CUDA 12 build: then it is a visibility problem
    let cu12 = Probe {
        cuda_version: Some((12, 6)),
        visible: Some("".into()),
        ..old
    };
    let e = resolve(&list, &cu12).unwrap_err();
    assert!(matches!(e, DeviceError::NoneVisible { .. }), "{e}");
    assert!(e.to_string().contains("CUDA_VISIBLE_DEVICES=\"\""), "{e}");
    // a driver and GPUs, but not that many
    let e = resolve(
        &Devices::List(vec![DeviceSpec::Cuda(0), DeviceSpec::Cuda(3)]),
        &gpu_machine(2),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "cuda:3 does not exist: libtorch sees 2 CUDA device(s) (cuda:0 … cuda:1)"
    );
}

#[test]
fn driver_versions_are_read_from_proc() {
    let text =
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.65.06  Sun Jul 27 06:54:38 UTC 2025\n\
                GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n";
    assert_eq!(driver_version(text).as_deref(), Some("580.65.06"));
    assert_eq!(driver_version("garbage"), None);
    assert_eq!(min_driver(13), 580);
    assert_eq!(min_driver(12), 525);
}

#[test]
fn workers_are_pinned_through_the_users_visible_list() {
    assert_eq!(physical_gpu(1, None), "1");
    assert_eq!(physical_gpu(1, Some("4,6")), "6");
    assert_eq!(physical_gpu(0, Some("GPU-abc, GPU-def")), "GPU-abc");
    assert_eq!(physical_gpu(2, Some("")), "2");
}

#[test]
fn slots_one_per_core_on_cpu_one_per_gpu_and_no_cpu_swarm_beside_gpus() {
    let s = slots(&[DeviceSpec::Cpu], None, None, 2);
    assert_eq!(
        s,
        vec![
            Slot {
                device: DeviceSpec::Cpu,
                threads: 1
            };
            2
        ]
    );
    let s = slots(&[DeviceSpec::Cuda(0), DeviceSpec::Cuda(2)], None, None, 16);
    assert_eq!(
        s.iter().map(|s| s.device).collect::<Vec<_>>(),
        [DeviceSpec::Cuda(0), DeviceSpec::Cuda(2)]
    );
    assert_eq!(slots(&[DeviceSpec::Cuda(0)], Some(3), None, 16).len(), 3);
    // a mixed list: 8 GPUs and the CPU on 16 cores → 8 GPU workers and one CPU worker, not 16
    let mut mixed: Vec<DeviceSpec> = (0..8).map(DeviceSpec::Cuda).collect();
    mixed.push(DeviceSpec::Cpu);
    let s = slots(&mixed, None, None, 16);
    assert_eq!(s.iter().filter(|s| s.device == DeviceSpec::Cpu).count(), 1);
    assert_eq!(s.len(), 9);
}

#[test]
fn context_poisoning_errors_are_recognised() {
    assert!(poisons_context(
        "CUDA error: an illegal memory access was encountered"
    ));
    assert!(poisons_context(
        "CUDA error: uncorrectable ECC error encountered"
    ));
    assert!(!poisons_context("teacher logits: No such file"));
    assert!(!poisons_context("diverged at epoch 1, step 3 (loss = NaN)"));
}
