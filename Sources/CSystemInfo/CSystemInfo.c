#define _GNU_SOURCE
#include "CSystemInfo.h"
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

void ipq_realtime(int64_t *seconds, int32_t *nanoseconds) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    *seconds = (int64_t)ts.tv_sec;
    *nanoseconds = (int32_t)ts.tv_nsec;
}

int ipq_file_info_of(const char *path, ipq_file_info *info) {
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    info->device = (uint64_t)st.st_dev;
    info->inode = (uint64_t)st.st_ino;
    info->size = (int64_t)st.st_size;
#if defined(__APPLE__)
    info->modified_seconds = (int64_t)st.st_mtimespec.tv_sec;
    info->modified_nanoseconds = (int64_t)st.st_mtimespec.tv_nsec;
#else
    info->modified_seconds = (int64_t)st.st_mtim.tv_sec;
    info->modified_nanoseconds = (int64_t)st.st_mtim.tv_nsec;
#endif
    info->is_regular_file = S_ISREG(st.st_mode) ? 1 : 0;
    return 0;
}

void ipq_process_usage_now(ipq_process_usage *usage) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    usage->user_microseconds = (int64_t)ru.ru_utime.tv_sec * 1000000 + (int64_t)ru.ru_utime.tv_usec;
    usage->system_microseconds = (int64_t)ru.ru_stime.tv_sec * 1000000 + (int64_t)ru.ru_stime.tv_usec;
    usage->max_resident_kib = (int64_t)ru.ru_maxrss;
}
