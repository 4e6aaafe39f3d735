// See README: names only. ProcessGroupGloo::setTimeout (inline in torch's header, never
// emitted by herd) names this member; libtorch_cpu has the real one.
#pragma once
#include <chrono>
namespace gloo {
class Context {
 public:
  void setTimeout(std::chrono::milliseconds timeout);
};
}  // namespace gloo
