/*
 * Test workload for the file/exec probes: performs exactly the syscalls the
 * test names, prints their results, nothing else. Built static so it makes
 * no opens of its own before main (no ld.so, no libc.so.6).
 *
 *   fsops [-w] <command> [args...]
 *     -w                   wait for one byte on stdin first (the test moves
 *                          the process into a cgroup meanwhile)
 *     open <path>          syscall(SYS_open, path, O_RDONLY)          -> prints ret
 *     openat <path>        openat(AT_FDCWD, path, O_RDONLY|O_CLOEXEC)  -> ret
 *     openat-wr <path>     openat(AT_FDCWD, path, O_WRONLY)            -> ret
 *     rel <dir> <name>     chdir(dir); openat(AT_FDCWD, name, O_RDONLY) -> ret
 *     dirfd <dir> <name>   d = open(dir, O_DIRECTORY); openat(d, name, O_RDONLY) -> "d ret"
 *     openat2 <dir> <name> d = open(dir); openat2(d, name, {O_RDONLY|O_CLOEXEC, RESOLVE_BENEATH}) -> "d ret"
 *     creat <path>         syscall(SYS_creat, path, 0640)              -> ret
 *     execve <path> [argv...]          execve(path, argv)
 *     execveat <dir> <name> [argv...]  execveat(open(dir), name, argv, env, 0)
 *     handle <dir> <name>  name_to_handle_at(dir/name) then open_by_handle_at(open(dir)) -> "mfd ret"
 *     exit <code> [...]    _exit(code) at once
 *     storm <n> <prefix> <distinct>    n x { open(prefix + (i % distinct)); close } -> "n wall_ns cpu_ns"
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_execveat
#define SYS_execveat 322
#endif

struct open_how_ {
	uint64_t flags, mode, resolve;
};
#define RESOLVE_BENEATH_ 0x08

static int ret_of(long r) { return r < 0 ? -errno : (int)r; }

int main(int argc, char **argv)
{
	extern char **environ;
	int i = 1;
	if (i < argc && strcmp(argv[i], "-w") == 0) {
		char c;
		if (read(0, &c, 1) != 1)
			return 90;
		i++;
	}
	if (i >= argc)
		return 91;
	const char *cmd = argv[i++];
	char **a = argv + i;
	int n = argc - i;

	if (!strcmp(cmd, "open") && n == 1) {
		printf("%d\n", ret_of(syscall(SYS_open, a[0], O_RDONLY)));
	} else if (!strcmp(cmd, "openat") && n == 1) {
		printf("%d\n", ret_of(openat(AT_FDCWD, a[0], O_RDONLY | O_CLOEXEC)));
	} else if (!strcmp(cmd, "openat-wr") && n == 1) {
		printf("%d\n", ret_of(openat(AT_FDCWD, a[0], O_WRONLY)));
	} else if (!strcmp(cmd, "rel") && n == 2) {
		if (chdir(a[0]) != 0)
			return 92;
		printf("%d\n", ret_of(openat(AT_FDCWD, a[1], O_RDONLY)));
	} else if (!strcmp(cmd, "dirfd") && n == 2) {
		int d = open(a[0], O_DIRECTORY | O_RDONLY);
		printf("%d %d\n", d, ret_of(openat(d, a[1], O_RDONLY)));
	} else if (!strcmp(cmd, "openat2") && n == 2) {
		int d = open(a[0], O_DIRECTORY | O_RDONLY);
		struct open_how_ how = { .flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_BENEATH_ };
		printf("%d %d\n", d, ret_of(syscall(SYS_openat2, d, a[1], &how, sizeof(how))));
	} else if (!strcmp(cmd, "creat") && n == 1) {
		printf("%d\n", ret_of(syscall(SYS_creat, a[0], 0640)));
	} else if (!strcmp(cmd, "execve") && n >= 1) {
		fflush(stdout);
		execve(a[0], a + 1, environ);
		return 93;
	} else if (!strcmp(cmd, "execveat") && n >= 2) {
		int d = open(a[0], O_DIRECTORY | O_RDONLY);
		syscall(SYS_execveat, d, a[1], a + 2, environ, 0);
		return 94;
	} else if (!strcmp(cmd, "handle") && n == 2) {
		int d = open(a[0], O_DIRECTORY | O_RDONLY);
		struct {
			struct file_handle fh;
			unsigned char buf[MAX_HANDLE_SZ];
		} h;
		int mount_id;
		h.fh.handle_bytes = MAX_HANDLE_SZ;
		if (name_to_handle_at(d, a[1], &h.fh, &mount_id, 0) != 0)
			return 96;
		printf("%d %d\n", d, ret_of(open_by_handle_at(d, &h.fh, O_RDONLY)));
	} else if (!strcmp(cmd, "exit") && n >= 1) { /* extra arguments ignored */
		_exit(atoi(a[0]));
	} else if (!strcmp(cmd, "storm") && n == 3) {
		long count = atol(a[0]), distinct = atol(a[2]);
		size_t plen = strlen(a[1]);
		char path[4096];
		if (plen > sizeof(path) - 32 || distinct < 1)
			return 95;
		memcpy(path, a[1], plen);
		struct timespec t0, t1, c0, c1;
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (long k = 0; k < count; k++) {
			if (distinct > 1)
				snprintf(path + plen, 24, "%ld", k % distinct);
			else
				path[plen] = 0;
			int fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY);
			if (fd >= 0)
				close(fd);
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
		/* CPU time includes the BPF programs, which run in this task's context. */
		printf("%ld %lld %lld\n", count,
		       (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec),
		       (long long)(c1.tv_sec - c0.tv_sec) * 1000000000LL + (c1.tv_nsec - c0.tv_nsec));
	} else {
		fprintf(stderr, "fsops: bad command '%s' with %d args\n", cmd, n);
		return 2;
	}
	return 0;
}
