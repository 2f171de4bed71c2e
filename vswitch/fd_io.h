#pragma once
// EINTR-safe socket I/O for the control plane. vswitchd receives signals in
// any thread at any time: net_tap arms its queue fds with F_SETSIG, so every
// packet a tap port receives may interrupt a blocking call of the control
// thread. Treating EINTR as "timeout" or "peer gone" dropped control
// connections (vswitchctl then died of SIGPIPE). These helpers retry.
#include <sys/types.h>

#include <cstddef>

namespace vsw {

// Waits until fd is readable, up to timeout_ms in total across interruptions.
// Returns >0 readable, 0 timeout, <0 error (errno set; never EINTR).
int wait_readable(int fd, int timeout_ms);

// read()/write() retried on EINTR. write_all writes everything or fails.
ssize_t read_some(int fd, void* buf, size_t n);
bool write_all(int fd, const void* buf, size_t n);

// Blocks asynchronous signals (everything but the synchronous faults) in the
// calling thread, so service threads of the daemon are not interrupted;
// signals then go to threads that leave them unblocked.
void block_async_signals_in_this_thread();

}  // namespace vsw
