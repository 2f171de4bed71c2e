#include "vswitch/fd_io.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <initializer_list>

namespace vsw {

namespace {
int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}
}  // namespace

int wait_readable(int fd, int timeout_ms) {
  const int64_t end = now_ms() + timeout_ms;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int64_t left = end - now_ms();
    int rc = poll(&p, 1, left > 0 ? static_cast<int>(left) : 0);
    if (rc >= 0 || errno != EINTR) return rc;
  }
}

ssize_t read_some(int fd, void* buf, size_t n) {
  for (;;) {
    ssize_t r = read(fd, buf, n);
    if (r >= 0 || errno != EINTR) return r;
  }
}

bool write_all(int fd, const void* buf, size_t n) {
  const char* p = static_cast<const char*>(buf);
  while (n > 0) {
    // MSG_NOSIGNAL: a client that went away is an error, not a SIGPIPE.
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == ENOTSOCK) w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

void block_async_signals_in_this_thread() {
  sigset_t s;
  sigfillset(&s);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP}) sigdelset(&s, sig);
  pthread_sigmask(SIG_BLOCK, &s, nullptr);
}

}  // namespace vsw
