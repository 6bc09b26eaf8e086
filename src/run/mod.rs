//! A sweep end to end on this machine: [`pipeline`] strings the stages together (prepare, what is
//! finished, the search's steps, outputs); [`coordinator`] runs a step over worker processes
//! ([`job`] is the protocol between them, [`worker`] the worker's loop); [`exec`] trains one job in
//! a worker (or in-process for `run --task`, [`task`]); [`progress`] shows it; [`coordinator`] also holds how Ctrl-C and SIGTERM reach running work.

pub mod coordinator;
pub mod describe;
pub mod exec;
pub mod job;
pub mod pipeline;
pub mod progress;
pub mod task;
pub mod worker;
