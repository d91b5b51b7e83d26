// The process-wide recorder behind trace::configure() and trace::recorder(): lazy start, fork,
// process exit and SIGUSR2, and the C API of cudefrag.h (defined here, in the object every user
// of the recorder pulls in, so a static link cannot leave the exported symbols out). The
// recorder it starts is never destroyed: threads of the host may still hold a pointer to it
// while the process exits.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <mutex>
#include <vector>

#include "shim/trace/recorder.hpp"

namespace cudefrag::trace {
namespace {

enum class State : std::uint8_t { kUnconfigured, kConfigured, kRunning, kOff };

std::atomic<Recorder*> g_recorder{nullptr};
std::atomic<State> g_state{State::kUnconfigured};
std::mutex g_mutex;  // configure, start, fork
thread_local bool t_starting = false;

// Leaked on purpose: read under g_mutex by a start that may happen during static destruction.
Options& stored_options() {
  static auto* options = new Options;
  return *options;
}

// What the recorder may still write when the process exits normally; longer and we give up,
// rather than hang the exit behind a stuck disk. Half a second is short on a loaded machine (a
// writer thread not scheduled in time, a slow disk) and would cost the trace its end; a normal
// exit returns as soon as the last block is written, so the patience only matters when
// something is stuck.
constexpr std::chrono::milliseconds kExitPatience{5000};

void on_sigusr2(int) {
  if (Recorder* r = g_recorder.load(std::memory_order_acquire)) r->request_signal_mark();
}

void install_sigusr2() {
  struct sigaction current {};
  if (sigaction(SIGUSR2, nullptr, &current) != 0) return;
  const bool default_action = (current.sa_flags & SA_SIGINFO) == 0 && current.sa_handler == SIG_DFL;
  if (!default_action) return;  // the program uses SIGUSR2 itself
  struct sigaction ours {};
  ours.sa_handler = on_sigusr2;
  ours.sa_flags = SA_RESTART;
  sigemptyset(&ours.sa_mask);
  sigaction(SIGUSR2, &ours, nullptr);
}

void fork_prepare() {
  g_mutex.lock();
}
void fork_parent() {
  g_mutex.unlock();
}
// Recorders inherited through fork(), kept reachable: never freed, since the host's code may
// still hold pointers to them.
std::vector<Recorder*>& abandoned() {
  static auto* recorders = new std::vector<Recorder*>;
  return *recorders;
}

// The child starts its own trace on its first event; the parent's buffers stay the parent's.
void fork_child() {
  if (Recorder* inherited = g_recorder.exchange(nullptr, std::memory_order_relaxed)) {
    inherited->abandon_after_fork();
    abandoned().push_back(inherited);
    g_state.store(State::kConfigured, std::memory_order_relaxed);
  }
  g_mutex.unlock();
}

Recorder* start() {
  if (t_starting) return nullptr;  // re-entered from inside the start (e.g. a hooked call)
  t_starting = true;
  std::lock_guard lock(g_mutex);
  if (g_state.load(std::memory_order_relaxed) == State::kConfigured) {
    static std::once_flag handlers;
    std::call_once(handlers, [] { pthread_atfork(fork_prepare, fork_parent, fork_child); });
    Options& options = stored_options();
    if (std::unique_ptr<Recorder> r = Recorder::open(options)) {
      if (options.mark_on_sigusr2) install_sigusr2();
      g_recorder.store(r.release(), std::memory_order_release);
      g_state.store(State::kRunning, std::memory_order_relaxed);
    } else {
      g_state.store(State::kOff, std::memory_order_relaxed);
    }
  }
  t_starting = false;
  return g_recorder.load(std::memory_order_acquire);
}

// The recorder stays in g_recorder, closed: record_* on it return at once.
[[gnu::destructor]] void close_at_exit() {
  if (Recorder* r = g_recorder.load(std::memory_order_acquire)) r->close_at_exit(kExitPatience);
}

}  // namespace

bool configure(Options options) {
  std::lock_guard lock(g_mutex);
  const State state = g_state.load(std::memory_order_relaxed);
  if (state != State::kUnconfigured && state != State::kConfigured) return false;
  const bool tracing = !options.path.empty();
  stored_options() = std::move(options);
  g_state.store(tracing ? State::kConfigured : State::kUnconfigured, std::memory_order_relaxed);
  return true;
}

Recorder* recorder() {
  if (Recorder* r = g_recorder.load(std::memory_order_acquire)) [[likely]]
    return r;
  if (g_state.load(std::memory_order_relaxed) != State::kConfigured) return nullptr;
  return start();
}

}  // namespace cudefrag::trace

// cudefrag.h is not included: it declares these weak (for programs), which would make the
// definitions weak too.
extern "C" [[gnu::visibility("default")]] void cudefrag_mark(const char* text) {
  if (text == nullptr) return;
  try {
    if (cudefrag::trace::Recorder* r = cudefrag::trace::recorder()) r->record_mark(text);
  } catch (...) {
    // The program must not die of a mark.
  }
}

extern "C" [[gnu::visibility("default")]] void cudefrag_flush(void) {
  try {
    if (cudefrag::trace::Recorder* r = cudefrag::trace::recorder()) r->flush_sync();
  } catch (...) {
  }
}
