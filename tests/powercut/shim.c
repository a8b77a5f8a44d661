/*
 * Power-cut shim for Tournée's durability tests (LD_PRELOAD).
 *
 * Models a disk whose write cache is lost on power failure: for every file whose path starts
 * with $TOURNEE_POWERCUT_DIR, each fsync()/fdatasync() copies the file as it stands to
 * "<path>.durable". After the process is killed, the test replaces each file with its
 * ".durable" copy (or deletes it when it was never synced): exactly what reached stable storage.
 * Every other call passes straight through to libc.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int (*real_fsync)(int);
static int (*real_fdatasync)(int);

static void snapshot(int fd) {
    const char *dir = getenv("TOURNEE_POWERCUT_DIR");
    char link[64], path[PATH_MAX], tmp[PATH_MAX + 16], dst[PATH_MAX + 16];
    if (!dir) return;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return;
    path[n] = 0;
    if (strncmp(path, dir, strlen(dir)) != 0 || strstr(path, ".durable")) return;
    snprintf(tmp, sizeof tmp, "%s.durable.tmp", path);
    snprintf(dst, sizeof dst, "%s.durable", path);
    int in = open(path, O_RDONLY);
    if (in < 0) return;
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out < 0) { close(in); return; }
    char buf[65536];
    ssize_t r;
    while ((r = read(in, buf, sizeof buf)) > 0) {
        if (write(out, buf, (size_t)r) != r) break;
    }
    close(in);
    close(out);
    rename(tmp, dst);
}

int fsync(int fd) {
    if (!real_fsync) real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    int rc = real_fsync(fd);
    if (rc == 0) snapshot(fd);
    return rc;
}

int fdatasync(int fd) {
    if (!real_fdatasync) real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    int rc = real_fdatasync(fd);
    if (rc == 0) snapshot(fd);
    return rc;
}
