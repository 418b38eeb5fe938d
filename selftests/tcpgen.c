// SPDX-License-Identifier: GPL-2.0
/*
 * tcpgen: make TCP state transitions on loopback, and count them.
 *
 * Each thread owns a listener and loops: connect, send a few bytes, have
 * them echoed, close the client first, then the accepted socket -- ten
 * transitions a connection (five on each side), two more per listener.
 * With -r it connects to a closed port instead: two transitions each.
 *
 *	tcpgen -t 2 -d 10	# two threads for ten seconds
 *	tcpgen -6 -n 1000	# a thousand IPv6 connections
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int family = AF_INET;
static unsigned long per_thread;	/* 0: until the deadline */
static double seconds;			/* 0: until the count */
static size_t payload = 16;
static bool refused;
static volatile sig_atomic_t stop;

struct worker {
	pthread_t	thread;
	unsigned long	conns;		/* completed */
	unsigned long	failed;		/* connect() failed unexpectedly */
	unsigned long	transitions;	/* caused, by construction */
	int		err;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static socklen_t loopback(uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof(*sin);
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	sin6->sin6_addr = in6addr_loopback;
	return sizeof(*sin6);
}

static uint16_t port_of(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return 0;
	return ntohs(family == AF_INET ?
		     ((struct sockaddr_in *)&ss)->sin_port :
		     ((struct sockaddr_in6 *)&ss)->sin6_port);
}

static int full_io(int fd, char *buf, size_t n, bool out)
{
	size_t done = 0;
	ssize_t r;

	while (done < n) {
		r = out ? send(fd, buf + done, n - done, MSG_NOSIGNAL) :
			  recv(fd, buf + done, n - done, 0);
		if (r <= 0)
			return -1;
		done += r;
	}
	return 0;
}

/* One connection, client closing first; 0 or -1. */
static int one_conn(int lfd, const struct sockaddr_storage *ss, socklen_t len)
{
	char buf[4096], c;
	int cfd, sfd = -1, ret = -1;

	cfd = socket(family, SOCK_STREAM, 0);
	if (cfd < 0)
		return -1;
	if (connect(cfd, (const struct sockaddr *)ss, len))
		goto out;
	sfd = accept(lfd, NULL, NULL);
	if (sfd < 0)
		goto out;
	memset(buf, 'x', payload);
	if (full_io(cfd, buf, payload, true) ||
	    full_io(sfd, buf, payload, false) ||
	    full_io(sfd, buf, payload, true) ||
	    full_io(cfd, buf, payload, false))
		goto out;
	close(cfd);
	cfd = -1;
	if (recv(sfd, &c, 1, 0) != 0)	/* the client's FIN */
		goto out;
	ret = 0;
out:
	if (cfd >= 0)
		close(cfd);
	if (sfd >= 0)
		close(sfd);
	return ret;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	struct sockaddr_storage ss;
	double end = seconds ? now() + seconds : 0;
	socklen_t len;
	int lfd;

	lfd = socket(family, SOCK_STREAM, 0);
	len = loopback(0, &ss);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&ss, len)) {
		w->err = errno;
		return NULL;
	}
	if (!refused && listen(lfd, 128)) {
		w->err = errno;
		return NULL;
	}
	len = loopback(port_of(lfd), &ss);

	while (!stop && (!per_thread || w->conns < per_thread) &&
	       (!end || now() < end)) {
		if (refused) {
			int fd = socket(family, SOCK_STREAM, 0);

			if (fd < 0 || !connect(fd, (struct sockaddr *)&ss, len) ||
			    errno != ECONNREFUSED)
				w->failed++;
			else
				w->transitions += 2;
			if (fd >= 0)
				close(fd);
		} else if (one_conn(lfd, &ss, len)) {
			w->failed++;
			continue;
		} else {
			w->transitions += 10;
		}
		w->conns++;
	}
	close(lfd);
	if (!refused)
		w->transitions += 2;
	return NULL;
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: tcpgen [-6] [-r] [-t THREADS] [-n CONNS] [-d SECONDS] [-b BYTES]\n"
		"Make TCP connections on loopback and count the state transitions.\n"
		"  -6          IPv6 (default IPv4)\n"
		"  -r          connect to a closed port (2 transitions each)\n"
		"  -t THREADS  threads, each with its own listener (default 1)\n"
		"  -n CONNS    connections per thread (default: until -d or a signal)\n"
		"  -d SECONDS  stop after this long\n"
		"  -b BYTES    bytes each way per connection, up to 4096 (default 16)\n");
}

static unsigned long number(const char *s, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max) {
		fprintf(stderr, "tcpgen: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	unsigned long threads = 1, conns = 0, failed = 0, trans = 0;
	struct worker *w;
	double start, elapsed;
	unsigned long i;
	int opt;

	while ((opt = getopt(argc, argv, "6rt:n:d:b:h")) != -1) {
		switch (opt) {
		case '6':
			family = AF_INET6;
			break;
		case 'r':
			refused = true;
			break;
		case 't':
			threads = number(optarg, 256);
			break;
		case 'n':
			per_thread = number(optarg, 1UL << 40);
			break;
		case 'd':
			seconds = number(optarg, 86400);
			break;
		case 'b':
			payload = number(optarg, 4096);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || !threads || (!per_thread && !seconds)) {
		usage(stderr);
		return 2;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	w = calloc(threads, sizeof(*w));
	if (!w)
		return 1;
	start = now();
	for (i = 0; i < threads; i++)
		if (pthread_create(&w[i].thread, NULL, work, &w[i])) {
			fprintf(stderr, "tcpgen: cannot start thread %lu\n", i);
			return 1;
		}
	for (i = 0; i < threads; i++) {
		pthread_join(w[i].thread, NULL);
		if (w[i].err) {
			fprintf(stderr, "tcpgen: thread %lu: %s\n", i,
				strerror(w[i].err));
			return 1;
		}
		conns += w[i].conns;
		failed += w[i].failed;
		trans += w[i].transitions;
	}
	elapsed = now() - start;
	printf("tcpgen: threads=%lu conns=%lu failed=%lu transitions=%lu seconds=%.3f conn_per_s=%.0f\n",
	       threads, conns, failed, trans, elapsed,
	       elapsed > 0 ? conns / elapsed : 0);
	free(w);
	return failed ? 1 : 0;
}
