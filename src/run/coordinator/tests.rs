use super::*;
use crate::plan::Role;
use std::path::Path;

fn sweep(seeds: &str, student: &str) -> crate::config::Sweep {
    let text = format!(
        "name = \"p\"\nseeds = {seeds}\n[data]\ndataset = \"mnist\"\n[teacher]\nepochs = 1\nbatch_size = 8\nlr = 0.01\n\
         [student]\nepochs = 1\nbatch_size = 8\nlr = 0.01\n{student}\n[grid]\ntemperature = [1, 4]\nalpha = [0.5]\n"
    );
    crate::config::parse(&text, Path::new("p.toml")).unwrap()
}

fn plan(seeds: &str) -> Plan {
    crate::plan::build(&sweep(seeds, ""), "fp")
}

#[test]
fn logit_students_fuse_unless_a_setting_the_fused_model_lacks_is_on() {
    let fusing = |student: &str| {
        let s = sweep("[0]", student);
        let p = crate::plan::build(&s, "fp");
        (p.runs.iter())
            .filter(|r| fusable(&s, r))
            .map(|r| r.id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(fusing(""), ["student-T1-a0.5-s0", "student-T4-a0.5-s0"]);
    assert!(fusing("channels_last = true").is_empty());
    assert!(fusing("augment = \"crop-flip\"").is_empty());
}

#[test]
fn a_many_thread_run_occupies_as_many_cpu_workers_as_it_has_threads() {
    assert_eq!(cpu_workers_needed(1, 8), 1);
    assert_eq!(cpu_workers_needed(8, 8), 8);
    // never more than there are: a 16-thread teacher with 2 CPU workers holds both
    assert_eq!(cpu_workers_needed(16, 2), 2);
    assert_eq!(cpu_workers_needed(0, 4), 1);
    assert_eq!(cpu_workers_needed(4, 0), 1);
}

#[test]
fn fused_groups_spread_over_every_idle_fusing_device() {
    // 8 GPUs, 2 seeds × 20 students: every GPU gets a group
    assert_eq!(group_size(40, 8, 64), 5);
    // one GPU takes a whole seed, up to the cap
    assert_eq!(group_size(20, 1, 64), 20);
    assert_eq!(group_size(100, 1, 64), 64);
    // fewer students than devices: one each
    assert_eq!(group_size(3, 8, 64), 1);
    assert_eq!(group_size(0, 0, 64), 1);
    // simulate the dispatch: 8 idle GPU workers take groups until nothing is runnable
    let mut left = 40;
    let mut groups = Vec::new();
    for idle in (1..=8).rev() {
        let g = group_size(left, idle, 64).min(left);
        groups.push(g);
        left -= g;
    }
    assert_eq!(left, 0);
    assert!(groups.iter().all(|&g| g == 5), "{groups:?}");
}

#[test]
fn gpu_workers_are_pinned_to_their_physical_gpu() {
    assert!(worker_env(DeviceSpec::Cpu, Some("0,1")).is_empty());
    let env = worker_env(DeviceSpec::Cuda(1), None);
    assert_eq!(env[0], ("CUDA_VISIBLE_DEVICES", "1".to_string()));
    assert_eq!(env[1].0, crate::platform::device::PINNED_ENV);
    // the user's own list is respected: cuda:1 is the second GPU they allowed
    let env = worker_env(DeviceSpec::Cuda(1), Some("3,7"));
    assert_eq!(env[0], ("CUDA_VISIBLE_DEVICES", "7".to_string()));
}

#[test]
fn teachers_first_and_students_wait_for_their_teacher() {
    let p = plan("[0, 1]");
    let mut d = Dispatcher::new(&p, &vec![false; p.runs.len()]);
    // two devices: both teachers start at once; everything else waits for its seed's teacher
    // (a baseline too: it is measured against it)
    let a = d.take_next().unwrap();
    let b = d.take_next().unwrap();
    assert_eq!(
        (p.runs[a].id.as_str(), p.runs[b].id.as_str()),
        ("teacher-s0", "teacher-s1")
    );
    assert_eq!(
        d.take_next(),
        None,
        "students and baselines wait for their teacher"
    );
    d.finish(b, true); // seed 1's teacher finishes first: its baseline and students run
    let c = d.take_next().unwrap();
    assert_eq!((p.runs[c].role, p.runs[c].seed), (Role::Baseline, 1));
    let s = d.take_next().unwrap();
    assert_eq!((p.runs[s].role, p.runs[s].seed), (Role::Student, 1));
    // a failed teacher blocks its students but not its baseline, which needs no teacher to train
    d.finish(a, false);
    let e = d.take_next().unwrap();
    assert_ne!((p.runs[e].role, p.runs[e].seed), (Role::Student, 0));
    let rest: Vec<usize> = std::iter::from_fn(|| d.take_next()).collect();
    assert!(rest
        .iter()
        .chain([&e])
        .any(|&i| (p.runs[i].role, p.runs[i].seed) == (Role::Baseline, 0)));
    assert!(rest
        .iter()
        .all(|&i| p.runs[i].seed == 1 || p.runs[i].role != Role::Student));
}

#[test]
fn a_free_worker_never_idles_while_work_is_runnable() {
    // simulate 3 workers over the whole plan; at every step, if a worker is free and anything is
    // runnable, it must have been given work
    let p = plan("[0, 1, 2]");
    let mut d = Dispatcher::new(&p, &vec![false; p.runs.len()]);
    let mut busy: Vec<Option<usize>> = vec![None; 3];
    let mut finished = 0;
    while finished < p.runs.len() {
        for w in busy.iter_mut().filter(|w| w.is_none()) {
            *w = d.take_next();
        }
        let runnable_left = (0..p.runs.len()).any(|i| d.runnable(i));
        assert!(
            !(busy.iter().any(|w| w.is_none()) && runnable_left),
            "idle worker with runnable work"
        );
        // finish the lowest-index running run
        let (wi, i) = busy
            .iter()
            .enumerate()
            .filter_map(|(wi, r)| r.map(|i| (wi, i)))
            .min_by_key(|x| x.1)
            .unwrap();
        d.finish(i, true);
        busy[wi] = None;
        finished += 1;
    }
}

#[test]
fn a_fused_group_takes_the_runnable_students_of_one_teacher_up_to_the_cap() {
    let p = plan("[0, 1]");
    let mut d = Dispatcher::new(&p, &vec![false; p.runs.len()]);
    let t0 = d.take_next().unwrap();
    let t1 = d.take_next().unwrap();
    d.finish(t0, true);
    d.finish(t1, true);
    let same = |a: usize, b: usize| {
        p.runs[b].role == Role::Student && p.runs[a].teacher == p.runs[b].teacher
    };
    // the baselines come first in plan order and are not grouped
    let b0 = d.take_next().unwrap();
    assert_eq!(p.runs[b0].role, Role::Baseline);
    let first = d.take_next().unwrap();
    assert_eq!(p.runs[first].id, "student-T1-a0.5-s0");
    let group = d.take_group(first, 8, &same);
    let ids: Vec<&str> = group.iter().map(|&i| p.runs[i].id.as_str()).collect();
    assert_eq!(ids, ["student-T4-a0.5-s0"], "only seed 0's students join");
    let again = d.take_next().unwrap();
    assert_eq!(p.runs[again].role, Role::Baseline);
    let s1 = d.take_next().unwrap();
    assert!(d.take_group(s1, 0, &same).is_empty(), "the cap holds");
}

#[test]
fn failed_teacher_blocks_only_its_students_and_retry_reruns_failed() {
    let p = plan("[0, 1]");
    let mut d = Dispatcher::new(&p, &vec![false; p.runs.len()]);
    let t0 = d.take_next().unwrap();
    let t1 = d.take_next().unwrap();
    d.finish(t0, false);
    d.finish(t1, true);
    while let Some(i) = d.take_next() {
        assert!(
            p.runs[i].seed == 1 || p.runs[i].role == Role::Baseline,
            "{} ran without its teacher",
            p.runs[i].id
        );
        d.finish(i, true);
    }
    let blocked: Vec<_> = d.blocked().iter().map(|&i| p.runs[i].id.clone()).collect();
    assert_eq!(blocked, ["student-T1-a0.5-s0", "student-T4-a0.5-s0"]);
    // a rerun: everything done stays done, the failed teacher and its students run again
    let done: Vec<bool> = (0..p.runs.len())
        .map(|i| d.state(i) == RunState::Done)
        .collect();
    let mut again = Dispatcher::new(&p, &done);
    assert_eq!(again.take_next(), Some(t0));
    assert_eq!(again.take_next(), None);
    again.finish(t0, true);
    assert_eq!(p.runs[again.take_next().unwrap()].id, "student-T1-a0.5-s0");
}
