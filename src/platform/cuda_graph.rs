//! CUDA graphs (`csrc/graph.cpp`): one training step captured once and replayed, so a step costs
//! one launch instead of the host work of hundreds of kernels. What a graphed step must obey, and
//! when kd-sweep captures one, is [`crate::train::graph`]'s business; this is the handle.

use std::os::raw::{c_char, c_int, c_void};

extern "C" {
    fn kd_graphs_built() -> c_int;
    fn kd_graph_new(device: c_int, err: *mut c_char, len: c_int) -> *mut c_void;
    fn kd_graph_free(handle: *mut c_void);
    fn kd_graph_enter(handle: *mut c_void, err: *mut c_char, len: c_int) -> c_int;
    fn kd_graph_exit(handle: *mut c_void, err: *mut c_char, len: c_int) -> c_int;
    fn kd_graph_capture_begin(handle: *mut c_void, err: *mut c_char, len: c_int) -> c_int;
    fn kd_graph_capture_end(handle: *mut c_void, err: *mut c_char, len: c_int) -> c_int;
    fn kd_graph_replay(handle: *mut c_void, err: *mut c_char, len: c_int) -> c_int;
}

/// Whether this binary was built with CUDA graphs (a CUDA libtorch and the CUDA runtime's headers
/// at build time).
pub fn built() -> bool {
    // SAFETY: plain C call.
    unsafe { kd_graphs_built() == 1 }
}

/// Calls a shim function that reports failure as -1 (or null) with a message.
fn call(f: impl FnOnce(*mut c_char, c_int) -> bool) -> Result<(), String> {
    let mut buf = [0 as c_char; 512];
    if f(buf.as_mut_ptr(), buf.len() as c_int) {
        return Ok(());
    }
    // SAFETY: the shim writes a NUL-terminated message within the buffer.
    let msg = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    Err(msg
        .to_string_lossy()
        .lines()
        .next()
        .unwrap_or("")
        .to_string())
}

/// A captured (or capturable) step on one CUDA device, with the side stream it runs on.
pub struct Graph {
    handle: *mut c_void,
}

impl Graph {
    /// A runner for CUDA device `device`; Err says why there is none (not built, no runtime).
    pub fn new(device: usize) -> Result<Graph, String> {
        let mut handle = std::ptr::null_mut();
        // SAFETY: the shim returns a handle it owns until `kd_graph_free`, or null with a message.
        call(|e, l| {
            handle = unsafe { kd_graph_new(device as c_int, e, l) };
            !handle.is_null()
        })?;
        Ok(Graph { handle })
    }

    /// Runs `f` with the side stream current: it first waits for the work the caller's stream has
    /// queued, and the caller's stream waits for it afterwards (events, no host synchronisation).
    pub fn on_side_stream<T>(&mut self, f: impl FnOnce(&mut Graph) -> T) -> Result<T, String> {
        // SAFETY: a live handle; the shim catches every C++ exception.
        call(|e, l| unsafe { kd_graph_enter(self.handle, e, l) == 0 })?;
        let out = f(self);
        // SAFETY: as above; leaves what was entered.
        call(|e, l| unsafe { kd_graph_exit(self.handle, e, l) == 0 })?;
        Ok(out)
    }

    /// Captures the kernels `f` queues on the side stream (inside [`Graph::on_side_stream`]) into
    /// a new graph, dropping the one before. The captured work has not run when this returns:
    /// [`Graph::replay`] runs it. A panic in `f` is caught, the capture ended and the message
    /// returned, so the process can go on without graphs.
    pub fn capture<T>(&mut self, f: impl FnOnce() -> T) -> Result<T, String> {
        // SAFETY: a live handle.
        call(|e, l| unsafe { kd_graph_capture_begin(self.handle, e, l) == 0 })?;
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        // SAFETY: ends the capture begun above (also after a panic in `f`).
        let ended = call(|e, l| unsafe { kd_graph_capture_end(self.handle, e, l) == 0 });
        match out {
            Ok(v) => ended.map(|()| v),
            Err(panic) => Err(super::panic_message(&*panic)),
        }
    }

    /// Runs the captured graph on the side stream.
    pub fn replay(&mut self) -> Result<(), String> {
        // SAFETY: a live handle; the shim refuses when nothing was captured.
        call(|e, l| unsafe { kd_graph_replay(self.handle, e, l) == 0 })
    }
}

impl Drop for Graph {
    fn drop(&mut self) {
        // SAFETY: the handle was made by kd_graph_new and is freed once.
        unsafe { kd_graph_free(self.handle) };
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cuda_libtorch_builds_graphs_and_without_a_gpu_a_graph_says_why_not() {
        // build.rs compiles graphs whenever the libtorch has its CUDA backend (the pip wheel's
        // runtime headers are found beside it)
        if option_env!("KD_SWEEP_LIBTORCH_CUDA").is_some() {
            assert!(super::built(), "a CUDA libtorch, but graphs were not built");
        }
        if tch::Cuda::is_available() {
            return;
        }
        let err = super::Graph::new(0).err().expect("no CUDA device here");
        assert!(!err.is_empty(), "a reason is given");
    }
}
