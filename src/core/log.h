// Logging facade over spdlog. Kept free of spdlog/fmt headers so that translation units
// which include torch (and its bundled fmt) never see Debian's fmt.
#pragma once

#include <string>

#include "core/error.h"

namespace herd::log {

enum class Level { debug, info, warn, error };

void set_level(Level level);
void set_level(const std::string& name);  // debug|info|warn|error
// Also append every message to this file (rank 0's run directory).
void add_file_sink(const std::string& path);
void write(Level level, const std::string& message);

template <typename... Args>
void info(Args&&... args) {
  write(Level::info, herd::str(std::forward<Args>(args)...));
}
template <typename... Args>
void warn(Args&&... args) {
  write(Level::warn, herd::str(std::forward<Args>(args)...));
}
template <typename... Args>
void debug(Args&&... args) {
  write(Level::debug, herd::str(std::forward<Args>(args)...));
}
template <typename... Args>
void error(Args&&... args) {
  write(Level::error, herd::str(std::forward<Args>(args)...));
}

}  // namespace herd::log
