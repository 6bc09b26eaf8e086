//! The command line's shape: each subcommand's options, their descriptions, and the invocations
//! the README and the tests use.

use super::*;
use clap::CommandFactory;

/// The long options each subcommand's help lists: only those it uses.
#[test]
fn each_subcommand_takes_only_the_options_it_uses() {
    const RUN: &[&str] = &[
        "results",
        "devices",
        "workers-per-device",
        "teacher-threads",
        "numerics",
        "deterministic",
        "cuda-graphs",
        "quiet",
    ];
    let slurm_own = [
        "partition",
        "gpus-per-task",
        "cpus-per-task",
        "mem",
        "time",
        "max-parallel",
        "account",
        "submit",
        "signal-secs",
        "no-requeue",
    ];
    let slurm: Vec<&str> = slurm_own
        .into_iter()
        .chain(RUN.iter().copied().filter(|o| *o != "workers-per-device"))
        .collect();
    let bench = [
        "device",
        "dataset",
        "data",
        "out",
        "work",
        "python",
        "quick",
        "seeds",
        "sections",
        "channels-last",
        "quiet",
    ];
    let expected: Vec<(&str, Vec<&str>)> = vec![
        ("run", [&["task"], RUN].concat()),
        ("plan", [&["json"], RUN].concat()),
        ("report", vec!["format"]),
        ("compare", vec!["out", "format"]),
        ("clean", vec!["dry-run"]),
        ("bench", bench.to_vec()),
        ("slurm", slurm),
        ("status", vec!["watch", "every", "results"]),
        ("devices", vec!["json"]),
        ("models", vec!["dataset", "data", "image-size"]),
    ];
    let cli = Cli::command();
    let longs = |c: &clap::Command| -> Vec<String> {
        c.get_arguments()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long().map(str::to_string))
            .filter(|l| l != "help" && l != "version")
            .collect()
    };
    let mut seen = Vec::new();
    for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name();
        let want = expected.iter().find(|(n, _)| *n == name);
        let want = want.unwrap_or_else(|| panic!("{name}: add its options to this test"));
        let mut got = longs(sub);
        let mut want: Vec<String> = want.1.iter().map(|s| s.to_string()).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "kd-sweep {name}");
        seen.push(name.to_string());
    }
    assert_eq!(seen.len(), expected.len(), "{seen:?}");
    // `kd-sweep SWEEP …` runs a sweep: the run options
    let mut top = longs(&cli);
    top.sort();
    let mut want: Vec<String> = RUN.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(top, want);
}

#[test]
fn every_argument_says_what_it_is() {
    let cli = Cli::command();
    let mut missing = Vec::new();
    for c in std::iter::once(&cli).chain(cli.get_subcommands()) {
        for a in c.get_arguments() {
            let builtin = matches!(a.get_id().as_str(), "help" | "version");
            if !builtin && a.get_help().is_none() && a.get_long_help().is_none() {
                missing.push(format!("{} {}", c.get_name(), a.get_id()));
            }
        }
    }
    assert!(missing.is_empty(), "without a description: {missing:?}");
    let compare = cli.find_subcommand("compare").unwrap();
    let out = compare
        .get_arguments()
        .find(|a| a.get_id() == "out")
        .unwrap();
    assert!(
        out.get_help().unwrap().to_string().contains("index.html"),
        "compare --out must say it writes index.html"
    );
}

#[test]
fn invocations_of_the_readme_and_the_tests_still_parse() {
    for line in [
        "kd-sweep s.toml --results out -q",
        "kd-sweep s.toml --quiet --results a --numerics native",
        "kd-sweep s.toml --results whole -q --teacher-threads 1",
        "kd-sweep s.toml --results out --workers-per-device 1 --devices cpu",
        "kd-sweep run s.toml --results out --task teacher-s0",
        "kd-sweep plan --json s.toml --results out",
        "kd-sweep plan s.toml --devices cuda:0",
        "kd-sweep report results/temps --format json",
        "kd-sweep compare a b --out cmp --format json",
        "kd-sweep status st.toml --results out --watch",
        "kd-sweep slurm s.toml --results out --time 1 --signal-secs 0 --submit",
        "kd-sweep slurm s.toml --results /r --partition gpu --gpus-per-task 1 --cpus-per-task 4 \
         --mem 8G --time 01:00:00 --max-parallel 8",
        "kd-sweep bench --quick --dataset mnist --data data --work w --out B.md -q",
        "kd-sweep devices --json",
        "kd-sweep models --dataset cifar100 resnet26",
        "kd-sweep clean results --dry-run",
        "kd-sweep clean results/temps",
    ] {
        let args = line.split_whitespace();
        if let Err(e) = Cli::try_parse_from(args) {
            panic!("{line}: {e}");
        }
    }
    // options that mean nothing to a command are refused, not ignored
    for line in [
        "kd-sweep report results/temps --results out",
        "kd-sweep compare a b --devices cpu",
        "kd-sweep models --teacher-threads 2",
        "kd-sweep devices -q",
    ] {
        let e = Cli::try_parse_from(line.split_whitespace()).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument, "{line}");
    }
}
