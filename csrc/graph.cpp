// CUDA graphs for training steps (`[schedule] cuda_graphs`): PyTorch's `torch.cuda.CUDAGraph` and
// the stream handling of `torch.cuda.graph`, as plain C functions over an opaque handle. tch 0.24
// has neither graphs nor streams.
//
// Built for real only when build.rs finds the CUDA runtime's headers beside the libtorch in use
// (KD_CUDA_GRAPHS); otherwise every function answers "not built". Every function catches what
// libtorch throws and writes its message into `err`, so no C++ exception crosses into Rust.
//
// Streams: a graph must be captured on a stream other than the default one, and the work captured
// must have run once on that stream before (cuBLAS workspaces and cuDNN's benchmark search are set
// up per stream, lazily). So a graphed run does all its training steps, eager ones included, on one
// side stream of its own: kd_graph_enter makes the side stream wait for what the caller's stream
// has queued and makes it current; kd_graph_exit makes the caller's stream wait for the side
// stream and makes it current again. The waits are CUDA events, not host synchronisations. The
// three runtime functions they need are looked up in the process (libtorch_cuda loaded the CUDA
// runtime already), so the binary does not link the runtime itself.
#include <cstring>
#include <string>

namespace {
void write_error(const std::string& what, char* err, int len) {
  if (err == nullptr || len <= 0) return;
  std::strncpy(err, what.c_str(), static_cast<size_t>(len) - 1);
  err[len - 1] = '\0';
}
}  // namespace

#ifdef KD_CUDA_GRAPHS
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#include <dlfcn.h>

#include <memory>

namespace {


// The CUDA runtime's event functions, found in the process (cudaError_t is an int; 0 is success).
struct Runtime {
  int (*event_create)(void**, unsigned) = nullptr;
  int (*event_record)(void*, void*) = nullptr;
  int (*stream_wait)(void*, void*, unsigned) = nullptr;
  int (*event_destroy)(void*) = nullptr;

  bool load() {
    event_create = reinterpret_cast<int (*)(void**, unsigned)>(
        dlsym(RTLD_DEFAULT, "cudaEventCreateWithFlags"));
    event_record = reinterpret_cast<int (*)(void*, void*)>(dlsym(RTLD_DEFAULT, "cudaEventRecord"));
    stream_wait =
        reinterpret_cast<int (*)(void*, void*, unsigned)>(dlsym(RTLD_DEFAULT, "cudaStreamWaitEvent"));
    event_destroy = reinterpret_cast<int (*)(void*)>(dlsym(RTLD_DEFAULT, "cudaEventDestroy"));
    return event_create && event_record && stream_wait && event_destroy;
  }
};

const unsigned kEventDisableTiming = 0x02;

struct Graph {
  c10::DeviceIndex device;
  c10::cuda::CUDAStream side;
  c10::cuda::CUDAStream caller;
  std::unique_ptr<at::cuda::CUDAGraph> graph;
  Runtime rt;
  void* entered = nullptr;  // recorded on the caller's stream, waited for by the side stream
  void* left = nullptr;     // recorded on the side stream, waited for by the caller's

  Graph(c10::DeviceIndex d)
      : device(d),
        side(c10::cuda::getStreamFromPool(/*isHighPriority=*/false, d)),
        caller(c10::cuda::getCurrentCUDAStream(d)) {}

  ~Graph() {
    graph.reset();
    if (rt.event_destroy) {
      if (entered) rt.event_destroy(entered);
      if (left) rt.event_destroy(left);
    }
  }

  // `waiter` waits for what `on` has queued so far.
  void order(void* event, const c10::cuda::CUDAStream& on, const c10::cuda::CUDAStream& waiter) {
    TORCH_CHECK(rt.event_record(event, on.stream()) == 0, "cudaEventRecord failed");
    TORCH_CHECK(rt.stream_wait(waiter.stream(), event, 0) == 0, "cudaStreamWaitEvent failed");
  }
};

// Runs `f` on the graph behind `handle`: 0, or -1 with libtorch's message in `err`.
template <class F>
int guarded(void* handle, char* err, int len, F f) {
  try {
    f(*static_cast<Graph*>(handle));
    return 0;
  } catch (const std::exception& e) {
    write_error(e.what(), err, len);
    return -1;
  }
}

}  // namespace
#endif

// What a function answers in a binary built without graphs.
namespace {
const char* const kNotBuilt =
    "this kd-sweep was built without CUDA graphs (no CUDA headers at build time)";
}  // namespace
#ifdef KD_CUDA_GRAPHS
#define KD_NOT_BUILT(handle, err, len)
#else
#define KD_NOT_BUILT(handle, err, len)                                                         \
  (void)(handle);                                                                              \
  write_error(kNotBuilt, err, len);                                                                   \
  return -1;
#endif

extern "C" {

// 1 when this binary was built with CUDA graphs, 0 when not.
int kd_graphs_built() {
#ifdef KD_CUDA_GRAPHS
  return 1;
#else
  return 0;
#endif
}

// A graph runner for CUDA device `device`, or null (the reason in err).
void* kd_graph_new(int device, char* err, int len) {
#ifdef KD_CUDA_GRAPHS
  try {
    auto g = std::make_unique<Graph>(static_cast<c10::DeviceIndex>(device));
    if (!g->rt.load()) {
      write_error("the CUDA runtime's event functions are not in this process", err, len);
      return nullptr;
    }
    TORCH_CHECK(g->rt.event_create(&g->entered, kEventDisableTiming) == 0, "cudaEventCreate failed");
    TORCH_CHECK(g->rt.event_create(&g->left, kEventDisableTiming) == 0, "cudaEventCreate failed");
    return g.release();
  } catch (const std::exception& e) {
    write_error(e.what(), err, len);
    return nullptr;
  }
#else
  (void)device;
  write_error(kNotBuilt, err, len);
  return nullptr;
#endif
}

void kd_graph_free(void* handle) {
#ifdef KD_CUDA_GRAPHS
  try {
    delete static_cast<Graph*>(handle);
  } catch (...) {
  }
#else
  (void)handle;
#endif
}

// The side stream waits for the caller's stream and becomes current. 0, or -1 (err).
int kd_graph_enter(void* handle, char* err, int len) {
  KD_NOT_BUILT(handle, err, len)
#ifdef KD_CUDA_GRAPHS
  return guarded(handle, err, len, [](Graph& g) {
    g.caller = c10::cuda::getCurrentCUDAStream(g.device);
    g.order(g.entered, g.caller, g.side);
    c10::cuda::setCurrentCUDAStream(g.side);
  });
#endif
}

// The caller's stream waits for the side stream and is current again. 0, or -1 (err).
int kd_graph_exit(void* handle, char* err, int len) {
  KD_NOT_BUILT(handle, err, len)
#ifdef KD_CUDA_GRAPHS
  return guarded(handle, err, len, [](Graph& g) {
    g.order(g.left, g.side, g.caller);
    c10::cuda::setCurrentCUDAStream(g.caller);
  });
#endif
}

// Drops the graph captured before (its memory pool with it) and begins capturing the side
// stream's work into a new one, as `torch.cuda.graph` does: the device synchronised first, the
// default CUDA generator registered (so dropout draws from the seed set before each replay).
int kd_graph_capture_begin(void* handle, char* err, int len) {
  KD_NOT_BUILT(handle, err, len)
#ifdef KD_CUDA_GRAPHS
  return guarded(handle, err, len, [](Graph& g) {
    g.graph.reset();
    c10::cuda::device_synchronize();
    g.graph = std::make_unique<at::cuda::CUDAGraph>();
    g.graph->capture_begin();
  });
#endif
}

// Ends the capture (and instantiates the graph). On failure the graph is dropped. 0, or -1.
int kd_graph_capture_end(void* handle, char* err, int len) {
  KD_NOT_BUILT(handle, err, len)
#ifdef KD_CUDA_GRAPHS
  int ended = guarded(handle, err, len, [](Graph& g) { g.graph->capture_end(); });
  if (ended != 0) {
    try {
      static_cast<Graph*>(handle)->graph.reset();
    } catch (...) {
    }
  }
  return ended;
#endif
}

// Replays the captured graph on the current (side) stream. 0, or -1.
int kd_graph_replay(void* handle, char* err, int len) {
  KD_NOT_BUILT(handle, err, len)
#ifdef KD_CUDA_GRAPHS
  return guarded(handle, err, len, [](Graph& g) {
    TORCH_CHECK(g.graph != nullptr, "no graph has been captured");
    g.graph->replay();
  });
#endif
}
}
