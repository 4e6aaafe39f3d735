#include "core/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace herd::log {
namespace {

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> instance = [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    auto l = std::make_shared<spdlog::logger>("herd", sink);
    l->set_pattern("[%H:%M:%S] %^%l%$ %v");
    l->set_level(spdlog::level::info);
    l->flush_on(spdlog::level::info);
    return l;
  }();
  return *instance;
}

spdlog::level::level_enum to_spdlog(Level level) {
  switch (level) {
    case Level::debug:
      return spdlog::level::debug;
    case Level::info:
      return spdlog::level::info;
    case Level::warn:
      return spdlog::level::warn;
    case Level::error:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

}  // namespace

void set_level(Level level) {
  logger().set_level(to_spdlog(level));
}

void set_level(const std::string& name) {
  if (name == "debug") return set_level(Level::debug);
  if (name == "info") return set_level(Level::info);
  if (name == "warn") return set_level(Level::warn);
  if (name == "error") return set_level(Level::error);
  throw Error(str("log level: expected debug|info|warn|error, got \"", name, "\""));
}

void add_file_sink(const std::string& path) {
  auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, /*truncate=*/false);
  sink->set_pattern("[%Y-%m-%d %H:%M:%S.%e] %l %v");
  logger().sinks().push_back(sink);
}

void write(Level level, const std::string& message) {
  logger().log(to_spdlog(level), message);
}

}  // namespace herd::log
