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
#endif
