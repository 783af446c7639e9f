/*
 * halfwriter: a writer that does not close, for the tests of a writer that
 * dies (tests/fs/test_files.py). Built by the tests with cc.
 *
 *   halfwriter FILE VALUE HOW [REST]
 *
 * Opens FILE with O_WRONLY|O_CREAT|O_TRUNC, writes VALUE, prints "ready"
 * on standard output, then, by HOW:
 *
 *   wait      waits to be killed
 *   threads   starts three threads that wait too, and waits to be killed
 *   exit      exit(0), the descriptor still open
 *   return    returns 3 from main, the descriptor still open
 *   handled   catches SIGINT; once one arrives, writes REST, closes and
 *             prints "closed RC ERRNO"
 *   fork      forks a child that holds the descriptor and waits (its pid
 *             follows "ready"); after a line on standard input, writes
 *             REST, closes and prints "closed RC ERRNO"
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void *wait_forever(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static void finish(int fd, const char *rest)
{
	if (write(fd, rest, strlen(rest)) < 0)
		perror("write");
	int rc = close(fd);
	printf("closed %d %d\n", rc, rc ? errno : 0);
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: halfwriter FILE VALUE HOW [REST]\n");
		return 2;
	}
	const char *how = argv[3], *rest = argc > 4 ? argv[4] : "";
	if (strcmp(how, "handled") == 0)
		signal(SIGINT, on_sigint);
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, argv[2], strlen(argv[2])) < 0) {
		perror(argv[1]);
		return 1;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	if (strcmp(how, "exit") == 0) {
		printf("ready\n");
		exit(0);
	}
	if (strcmp(how, "return") == 0) {
		printf("ready\n");
		return 3;
	}
	if (strcmp(how, "threads") == 0) {
		pthread_t t;
		for (int i = 0; i < 3; i++)
			pthread_create(&t, NULL, wait_forever, NULL);
	}
	if (strcmp(how, "fork") == 0) {
		char line[16];
		pid_t child = fork();
		if (child == 0)
			wait_forever(NULL);
		printf("ready %d\n", (int)child);
		if (!fgets(line, sizeof(line), stdin))
			return 1;
		finish(fd, rest);
		return 0;
	}
	printf("ready\n");
	if (strcmp(how, "handled") == 0) {
		while (!interrupted)
			pause();
		finish(fd, rest);
		return 0;
	}
	wait_forever(NULL);
	return 0;
}
