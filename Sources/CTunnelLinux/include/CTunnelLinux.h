// The Linux calls the tunnel's epoll engine needs and Glibc's Swift module does not export.
#pragma once
#ifdef __linux__
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

/// The pending error of a socket (SO_ERROR): 0 once a non-blocking connect has succeeded.
int ctunnel_socket_error(int fd);

/// accept4(2) with SOCK_NONBLOCK | SOCK_CLOEXEC.
int ctunnel_accept(int fd, struct sockaddr *address, socklen_t *length);

/// Names the calling thread (at most 15 characters are kept).
void ctunnel_name_thread(const char *name);

/// Blocks every signal in the calling thread, so that no system call of it is interrupted (the process's
/// other threads take the signals).
void ctunnel_block_signals(void);

/// The CPUs the process may run on (sched_getaffinity), ascending, into `cpus` (at most `capacity`);
/// returns how many, or -1.
int ctunnel_allowed_cpus(int *cpus, int capacity);

/// Pins the calling thread to one CPU; 0 or an errno.
int ctunnel_pin_thread(int cpu);

/// The calling thread's kernel id (gettid), as /proc/self/task/ names it.
int ctunnel_thread_id(void);
#endif
