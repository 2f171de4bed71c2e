#include "vswitch/control.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "vswitch/commands.h"
#include "vswitch/fd_io.h"
#include "vswitch/log.h"

namespace vsw {

bool ControlServer::start(std::string& err) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path(), ec);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof(addr.sun_path)) {
    err = "control socket path too long";
    return false;
  }
  std::strcpy(addr.sun_path, path_.c_str());
  listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  unlink(path_.c_str());
  if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listen_fd_, 8) != 0) {
    err = "control socket " + path_ + ": " + std::strerror(errno);
    return false;
  }
  chmod(path_.c_str(), 0660);
  thr_ = std::thread([this] { loop(); });
  log()->info("control socket {}", path_);
  return true;
}

void ControlServer::stop() {
  if (listen_fd_ < 0) return;
  stop_.store(true);
  if (thr_.joinable()) thr_.join();
  close(listen_fd_);
  listen_fd_ = -1;
  unlink(path_.c_str());
}

void ControlServer::loop() {
  block_async_signals_in_this_thread();
  while (!stop_.load()) {
    if (wait_readable(listen_fd_, 200) <= 0) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    serve(fd);
    close(fd);
  }
}

// Serves one client until it closes; a request line is at most 1 MiB and a
// silent client is dropped after 5 s, so one client cannot wedge the server.
void ControlServer::serve(int fd) {
  std::string buf;
  char tmp[4096];
  for (;;) {
    if (wait_readable(fd, 5000) <= 0 || stop_.load()) return;
    ssize_t n = read_some(fd, tmp, sizeof(tmp));
    if (n <= 0) return;
    buf.append(tmp, static_cast<size_t>(n));
    if (buf.size() > (1u << 20)) return;
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      nlohmann::json resp;
      try {
        auto req = nlohmann::json::parse(line);
        resp = run_command(sw_, req.at("cmd").get<std::string>(),
                           req.contains("args") ? req["args"] : nlohmann::json::object());
      } catch (const std::exception& e) {
        resp = {{"ok", false}, {"error", std::string("bad request: ") + e.what()}};
      }
      std::string out = resp.dump() + "\n";
      if (!write_all(fd, out.data(), out.size())) return;
    }
  }
}

}  // namespace vsw
