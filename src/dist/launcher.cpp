#include "dist/launcher.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>

#include "core/error.h"

extern char** environ;

namespace herd::dist {
namespace {

struct Worker {
  int rank = 0;
  pid_t pid = -1;
  int out_fd = -1;  // read end of the worker's stdout+stderr (ranks > 0), else -1
  std::string partial;
  bool running = true;
};

// Signals received by the launcher and not yet forwarded (one slot per kind).
std::atomic<int> g_pending[3];
constexpr int kForwarded[3] = {SIGTERM, SIGINT, SIGUSR1};

void on_launcher_signal(int sig) {
  for (int i = 0; i < 3; ++i)
    if (kForwarded[i] == sig) ++g_pending[i];
}

// While it lives, the launcher's stop signals are queued for forwarding instead of ending it.
struct ForwardSignals {
  struct sigaction old[3];
  ForwardSignals() {
    struct sigaction sa {};
    sa.sa_handler = on_launcher_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (int i = 0; i < 3; ++i) {
      g_pending[i] = 0;
      sigaction(kForwarded[i], &sa, &old[i]);
    }
  }
  ~ForwardSignals() {
    for (int i = 0; i < 3; ++i) sigaction(kForwarded[i], &old[i], nullptr);
  }
  // Sends each pending signal to every running worker.
  template <typename Workers>
  void forward(Workers& workers) {
    for (int i = 0; i < 3; ++i) {
      for (int n = g_pending[i].exchange(0); n > 0; --n) {
        std::fprintf(stderr, "herd: forwarding %s to the ranks\n", strsignal(kForwarded[i]));
        for (auto& w : workers)
          if (w.running) kill(w.pid, kForwarded[i]);
      }
    }
  }
};

std::string describe_status(int status) {
  if (WIFEXITED(status)) return str("exited with status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return str("was killed by signal ", WTERMSIG(status), " (", strsignal(WTERMSIG(status)), ")");
  return str("stopped with wait status ", status);
}

// Copies whole lines from a worker's pipe to stderr, prefixed with its rank.
void pump(Worker& w, bool flush_all) {
  char buf[4096];
  for (;;) {
    const ssize_t n = read(w.out_fd, buf, sizeof buf);
    if (n <= 0) break;
    w.partial.append(buf, static_cast<size_t>(n));
  }
  size_t nl;
  while ((nl = w.partial.find('\n')) != std::string::npos) {
    std::fprintf(stderr, "[rank %d] %s\n", w.rank, w.partial.substr(0, nl).c_str());
    w.partial.erase(0, nl + 1);
  }
  if (flush_all && !w.partial.empty()) {
    std::fprintf(stderr, "[rank %d] %s\n", w.rank, w.partial.c_str());
    w.partial.clear();
  }
}

pid_t spawn(const std::vector<std::string>& args, const std::vector<std::string>& env, int out_fd) {
  std::vector<char*> argv;
  std::string exe = "/proc/self/exe";
  argv.push_back(exe.data());
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // The parent's environment with the rank's variables replacing any inherited ones.
  std::vector<std::string> merged;
  for (char** p = environ; p && *p; ++p) {
    const std::string kv = *p;
    bool replaced = false;
    for (const auto& e : env)
      replaced |= kv.compare(0, e.find('=') + 1, e, 0, e.find('=') + 1) == 0;
    if (!replaced) merged.push_back(kv);
  }
  merged.insert(merged.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& kv : merged) envp.push_back(kv.data());
  envp.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  HERD_CHECK(pid >= 0, "launcher: fork failed: ", std::strerror(errno));
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec. It dies with the launcher, even one
    // killed with -9 (the check closes the race with a launcher that died before prctl).
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    if (out_fd >= 0) {
      dup2(out_fd, STDOUT_FILENO);
      dup2(out_fd, STDERR_FILENO);
      close(out_fd);
    }
    execve("/proc/self/exe", argv.data(), envp.data());
    _exit(127);
  }
  return pid;
}

}  // namespace

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  HERD_CHECK(fd >= 0, "launcher: socket: ", std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  close(fd);
  HERD_CHECK(ok, "launcher: could not find a free TCP port: ", std::strerror(errno));
  return ntohs(a.sin_port);
}

std::vector<std::string> own_args_without(const std::string& flag) {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (size_t i = 0, j; i < all.size(); i = j + 1) {
    j = all.find('\0', i);
    if (j == std::string::npos) j = all.size();
    args.push_back(all.substr(i, j - i));
  }
  if (!args.empty()) args.erase(args.begin());  // argv[0]
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == flag) {
      ++i;  // its value
    } else if (args[i].rfind(flag + "=", 0) != 0) {
      out.push_back(args[i]);
    }
  }
  return out;
}

int launch(const LaunchOptions& o, int stopped_status) {
  HERD_CHECK(o.nproc >= 1, "--nproc-per-node: expected a positive integer, got ", o.nproc);
  ForwardSignals signals;
  int stopped = 0;  // ranks that exited with stopped_status
  const int port = free_port();
  std::vector<Worker> workers(static_cast<size_t>(o.nproc));
  std::fflush(stdout);
  std::fflush(stderr);
  for (int r = 0; r < o.nproc; ++r) {
    auto& w = workers[static_cast<size_t>(r)];
    w.rank = r;
    int child_fd = -1;
    if (r > 0) {
      int fds[2];
      HERD_CHECK(pipe2(fds, O_CLOEXEC) == 0, "launcher: pipe: ", std::strerror(errno));
      w.out_fd = fds[0];
      child_fd = fds[1];
    }
    const std::vector<std::string> env = {
        str("RANK=", r),         str("WORLD_SIZE=", o.nproc),
        str("LOCAL_RANK=", r),   str("LOCAL_WORLD_SIZE=", o.nproc),
        "MASTER_ADDR=127.0.0.1", str("MASTER_PORT=", port)};
    w.pid = spawn(o.args, env, child_fd);
    if (child_fd >= 0) close(child_fd);
    if (w.out_fd >= 0) fcntl(w.out_fd, F_SETFL, O_NONBLOCK);
    std::fprintf(stderr, "herd: started rank %d (pid %d)\n", r, static_cast<int>(w.pid));
  }
  int running = o.nproc;
  std::string failure;
  auto kill_deadline = std::chrono::steady_clock::time_point::max();
  while (running > 0) {
    std::vector<pollfd> fds;
    for (auto& w : workers)
      if (w.out_fd >= 0) fds.push_back({w.out_fd, POLLIN, 0});
    if (!fds.empty()) {
      poll(fds.data(), fds.size(), 100);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    for (auto& w : workers)
      if (w.out_fd >= 0) pump(w, false);
    signals.forward(workers);
    int status = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      for (auto& w : workers) {
        if (w.pid != pid || !w.running) continue;
        w.running = false;
        --running;
        const bool was_stopped = WIFEXITED(status) && WEXITSTATUS(status) == stopped_status;
        stopped += was_stopped;
        const bool ok = WIFEXITED(status) && (WEXITSTATUS(status) == 0 || was_stopped);
        if (!ok && failure.empty()) {
          failure = str("rank ", w.rank, " (pid ", pid, ") ", describe_status(status));
          for (auto& other : workers)
            if (other.running) kill(other.pid, SIGTERM);
          kill_deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(static_cast<int64_t>(o.grace_s * 1000));
        }
      }
    }
    if (std::chrono::steady_clock::now() > kill_deadline) {
      for (auto& w : workers)
        if (w.running) kill(w.pid, SIGKILL);
      kill_deadline = std::chrono::steady_clock::time_point::max();
    }
  }
  for (auto& w : workers) {
    if (w.out_fd < 0) continue;
    pump(w, true);
    close(w.out_fd);
  }
  HERD_CHECK(failure.empty(), failure, "; stopped the other ranks");
  return stopped > 0 ? stopped_status : 0;
}

int launch_this_command(int nproc, int stopped_status) {
  LaunchOptions o;
  o.nproc = nproc;
  o.args = own_args_without("--nproc-per-node");
  return launch(o, stopped_status);
}

}  // namespace herd::dist
