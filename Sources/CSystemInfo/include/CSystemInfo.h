#ifndef CSYSTEMINFO_H
#define CSYSTEMINFO_H
#include <stdint.h>

/// What the game asks of the system in scalars and structs of its own, so Swift code never
/// reads glibc's `stat`, `timespec` or `rusage` members (which module "defines" those shared C
/// structs changes with the import graph under MemberImportVisibility).

/// Wall-clock time (CLOCK_REALTIME).
void ipq_realtime(int64_t *seconds, int32_t *nanoseconds);

typedef struct {
    uint64_t device;
    uint64_t inode;
    int64_t size;
    int64_t modified_seconds;
    int64_t modified_nanoseconds;
    int is_regular_file;
} ipq_file_info;

/// stat(2) of `path`; 0 on success, -1 with errno set otherwise.
int ipq_file_info_of(const char *path, ipq_file_info *info);

typedef struct {
    int64_t user_microseconds;
    int64_t system_microseconds;
    int64_t max_resident_kib;
} ipq_process_usage;

/// getrusage(RUSAGE_SELF).
void ipq_process_usage_now(ipq_process_usage *usage);

#endif
