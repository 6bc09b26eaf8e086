//! The subcommands other than running and planning a sweep: each parses nothing (clap did) and
//! calls the library, printing what it returns.

use super::{options, worker_exe, BenchArgs, Ended, Format, SlurmArgs};
use crate::config::DatasetKind;
use crate::config::{self, ConfigError};
use crate::util::UsageError;
use anyhow::Context;
use std::path::{Path, PathBuf};

pub(super) fn status(
    target: &Path,
    results: &Path,
    watch: bool,
    every: f64,
) -> anyhow::Result<Ended> {
    // a sweep file names its folder: <results>/<name>
    let dir = if target.is_file() {
        let dir = results.join(config::load(target)?.name);
        if !dir.exists() {
            return Err(UsageError(format!(
                "{}: no such folder: {} has not run under the results root {} (give the root it \
                 ran with: --results DIR)",
                dir.display(),
                target.display(),
                results.display()
            ))
            .into());
        }
        dir
    } else {
        target.to_path_buf()
    };
    // a terminal is redrawn in place; a file or pipe gets each snapshot after the last
    let redraw = std::io::IsTerminal::is_terminal(&std::io::stdout());
    loop {
        let snap = crate::report::status::read(&dir)?;
        let unfinished = snap.runs.iter().any(|(_, _, s)| {
            matches!(
                s,
                crate::report::status::Seen::Running(_)
                    | crate::report::status::Seen::Pending
                    | crate::report::status::Seen::Stalled(_)
            )
        });
        if watch && redraw {
            print!("\x1b[2J\x1b[H");
        }
        print!("{}", snap.render());
        if !(watch && unfinished) {
            return Ok(Ended::Success);
        }
        // a blank line between snapshots in a file
        let gap = if redraw { "" } else { "\n" };
        println!("(refreshing every {every} s; Ctrl-C to stop){gap}");
        std::thread::sleep(std::time::Duration::from_secs_f64(every.max(0.2)));
    }
}

pub(super) fn models(
    dataset: DatasetKind,
    data: Option<&Path>,
    image_size: Option<u32>,
    extra: &[String],
) -> anyhow::Result<Ended> {
    let (shape, classes) = match (dataset.fixed_shape(), dataset.fixed_classes(), data) {
        (Some([c, h, w]), Some(_), _) if image_size.is_some() => {
            let why = format!(
                "--image-size resizes a folder dataset's images; {}'s are {c}×{h}×{w}",
                dataset.name()
            );
            return Err(UsageError(why).into());
        }
        (Some(shape), Some(classes), _) => (shape, classes),
        (_, _, Some(path)) => {
            let size = image_size.map(|n| [n, n]);
            let layout = crate::data::peek(dataset, path, size)?;
            let l = layout.ok_or_else(|| anyhow::anyhow!("no layout for {}", dataset.name()))?;
            (l.shape, l.classes)
        }
        _ => {
            let why = format!(
                "--dataset {} takes its image shape and classes from the data: give --data PATH",
                dataset.name()
            );
            return Err(UsageError(why).into());
        }
    };
    // a name that is not a network is a mistake on the command line
    let table = crate::model::listing::table(dataset.name(), shape, classes as i64, extra);
    // a file named here is found from the current folder (there is no sweep file)
    let here = |e: String| {
        UsageError(e.replace(
            "relative to the sweep file",
            "relative to the current folder",
        ))
    };
    print!("{}", table.map_err(here)?);
    Ok(Ended::Success)
}

pub(super) fn devices(json: bool) -> anyhow::Result<Ended> {
    use crate::platform::machine;
    let p = crate::platform::device::Probe::read();
    let libtorch = crate::run::pipeline::LIBTORCH_VERSION;
    if json {
        let v = machine::describe_json(&p, libtorch);
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", machine::describe(&p, libtorch));
    }
    Ok(Ended::Success)
}

pub(super) fn report(dir: &Path, format: Format) -> anyhow::Result<Ended> {
    let warn = |m: &str| eprintln!("{m}");
    let l = crate::report::load(dir, &warn)?;
    let refs: Vec<&crate::store::RunRecord> = l.records.iter().collect();
    let s = crate::report::write_all(dir, &l.meta, &refs, None)?;
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "meta": l.meta, "summary": s }))?
        ),
        Format::Text => print!("{}", crate::report::markdown(&l.meta, &s)),
    }
    Ok(Ended::Success)
}

pub(super) fn compare(dirs: &[PathBuf], out: &Path, format: Format) -> anyhow::Result<Ended> {
    let c = crate::report::compare::write(dirs, out, &|m: &str| eprintln!("{m}"))?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&c)?),
        Format::Text => {
            print!("{}", crate::report::compare::markdown(&c));
            eprintln!(
                "chart: {}; page: {}",
                out.join("compare_accuracy_vs_temperature.png").display(),
                out.join("index.html").display()
            );
        }
    }
    Ok(Ended::Success)
}

pub(super) fn clean(dir: &Path, dry_run: bool) -> anyhow::Result<Ended> {
    let cleaned = crate::store::clean::clean(dir, dry_run, &|m: &str| eprintln!("{m}"))?;
    print!("{}", crate::store::clean::render(&cleaned, dry_run));
    Ok(Ended::Success)
}

pub(super) fn bench_step(
    arch: &str,
    shape: &str,
    classes: i64,
    threads: i32,
    (warmup, steps): (usize, usize),
    device: &str,
) -> anyhow::Result<Ended> {
    let arch = crate::model::Arch::parse(arch).map_err(anyhow::Error::msg)?;
    let dims: Vec<i64> = shape
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .context("--shape takes C,H,W")?;
    anyhow::ensure!(dims.len() == 3, "--shape takes C,H,W");
    let device = crate::platform::device::DeviceSpec::parse(device).map_err(anyhow::Error::msg)?;
    tch::set_num_threads(threads);
    let rate = crate::tools::bench::step_rate(
        arch,
        ([dims[0], dims[1], dims[2]], classes),
        device.tch(),
        128,
        (warmup, steps),
    );
    println!(
        "{}",
        serde_json::json!({
            "images_per_s": rate,
            "cpu_capability": crate::platform::torch_ext::cpu_capability(),
        })
    );
    Ok(Ended::Success)
}

pub(super) fn bench(args: BenchArgs) -> anyhow::Result<Ended> {
    let device = match args.device {
        Some(d) => {
            crate::platform::device::DeviceSpec::parse(&d).map_err(|message| ConfigError {
                file: "--device".into(),
                at: None,
                key: None,
                message,
            })?
        }
        None => {
            match crate::platform::device::resolve(
                &config::Devices::Auto,
                &crate::platform::device::Probe::read(),
            )?
            .devices[0]
            {
                crate::platform::device::DeviceSpec::Cpu => {
                    crate::platform::device::DeviceSpec::Cpu
                }
                _ => crate::platform::device::DeviceSpec::Cuda(0),
            }
        }
    };
    let opts = crate::tools::bench::Options {
        device,
        dataset: args.dataset,
        data: args.data,
        work: args.work,
        worker_exe: worker_exe(),
        python: args.python,
        quick: args.quick,
        seeds: args.seeds.map(|n| n as usize),
        sections: args.sections,
        channels_last: args.channels_last,
    };
    let quiet = args.quiet.quiet;
    let md = crate::tools::bench::run(&opts, &|m: &str| {
        if !quiet {
            eprintln!("{m}")
        }
    })?;
    if let Some(out) = args.out {
        crate::files::write_atomic(&out, md.as_bytes())
            .with_context(|| format!("writing {}", out.display()))?;
    }
    print!("{md}");
    Ok(Ended::Success)
}

pub(super) fn slurm(args: SlurmArgs) -> anyhow::Result<Ended> {
    let o = crate::tools::slurm::SlurmOptions {
        partition: args.partition,
        gpus_per_task: args.gpus_per_task,
        cpus_per_task: args.cpus_per_task,
        mem: args.mem,
        time: args.time,
        max_parallel: args.max_parallel,
        account: args.account,
        submit: args.submit,
        max_array_size: None,
        signal_secs: args.signal_secs,
        requeue: !args.no_requeue,
    };
    // SLURM tasks each run one node in their own process: no workers per device here
    let opts = options(&args.results, &args.devices, None, &args.keys, &args.quiet);
    let g = crate::tools::slurm::generate(&args.sweep, &opts, &o)?;
    let results = g.dir.parent().map(|d| d.to_path_buf()).unwrap_or_default();
    print!(
        "{}",
        crate::tools::slurm::describe(&g, &results, args.submit)
    );
    Ok(Ended::Success)
}
