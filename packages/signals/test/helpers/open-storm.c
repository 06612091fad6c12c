/*
 * Test workload for the accounting tests: waits for one byte on stdin (the
 * test moves it into its own cgroup meanwhile), then calls open(2) on one
 * path n times, closing each fd, and prints how many opens it made. Built
 * static, so it makes no opens of its own (no ld.so, no libc.so.6): the
 * count it prints is every open of its cgroup.
 *
 *   open-storm <path> <n>
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char c;
	if (argc != 3 || read(0, &c, 1) != 1)
		return 90;
	long n = atol(argv[2]), opens = 0;
	for (long i = 0; i < n; i++) {
		int fd = open(argv[1], O_RDONLY);
		opens++;
		if (fd >= 0)
			close(fd);
	}
	printf("%ld\n", opens);
	return 0;
}
