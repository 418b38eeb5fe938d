// SPDX-License-Identifier: GPL-2.0
/*
 * tcpscen: one TCP connection on loopback, closed the way a scenario says,
 * so that its transitions are known in advance.
 *
 *	basic		the client sends, the server answers, the client closes
 *			first: FIN_WAIT1/FIN_WAIT2 on its side, CLOSE_WAIT/
 *			LAST_ACK on the server's
 *	serverclose	the same, the server closing first
 *	simclose	both shut down at once: with a delay on the path (netem)
 *			the FINs cross, and both sides pass through CLOSING
 *	halfclose	the client shuts down its side and keeps reading while
 *			the server, in CLOSE_WAIT, sends for a while
 *	reset		the client aborts (SO_LINGER 0): an RST, no FINs
 *	refused		a connect to a port nobody listens on
 *	orphan		the client closes, the server waits 2 s before it does:
 *			with tcp_fin_timeout under that, the client's timewait
 *			socket (FIN_WAIT2) expires, and a reset answers the
 *			server's FIN
 *	vanish		after the exchange, -x CMD cuts the path; the client
 *			sends on until TCP_USER_TIMEOUT (3 s) kills it
 *
 *	tcpscen [-6 | -m] [-l] [-b BYTES] [-d MS] [-p PORT]
 *		[-S NETNS -C NETNS -a ADDR] [-x CMD] SCENARIO
 *
 * -6 uses IPv6, -m an IPv6 listener that takes an IPv4 client (v4-mapped).
 * -d MS is the one-way delay of the path, which the scenario waits out at
 * the end so that its last transitions have happened when it exits.
 * -S and -C put the server and the client in network namespaces made with
 * `ip netns add`, and -a is the server's address for the client.  -l
 * lingers on close (see below).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int lfamily = AF_INET, cfamily = AF_INET;
static bool dual;
static size_t bytes = 100;
static unsigned int delay_ms;
static uint16_t fixed_port;
static const char *server_ns, *client_ns, *server_addr, *vanish_cmd;
static bool lingering;

static void die(const char *what)
{
	fprintf(stderr, "tcpscen: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void msleep(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Sockets made after this belong to network namespace @name. */
static void enter_netns(const char *name)
{
	char path[256];
	int fd;

	if (!name)
		return;
	/* iproute2 keeps them in /run/netns; older ones in /var/run/netns. */
	snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(path, sizeof(path), "/var/run/netns/%s", name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0 || setns(fd, CLONE_NEWNET))
		die(path);
	close(fd);
}

/* The client's view of the server, or the server's own address (any). */
static socklen_t addr(int family, bool any, uint16_t port,
		      struct sockaddr_storage *ss)
{
	const char *text = any ? NULL : server_addr;

	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		sin->sin_addr.s_addr = htonl(any && server_ns ? INADDR_ANY :
					     INADDR_LOOPBACK);
		if (text && inet_pton(AF_INET, text, &sin->sin_addr) != 1)
			die("-a");
		return sizeof(*sin);
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	sin6->sin6_addr = any && (dual || server_ns) ? in6addr_any :
			  in6addr_loopback;
	if (text && inet_pton(AF_INET6, text, &sin6->sin6_addr) != 1)
		die("-a");
	return sizeof(*sin6);
}

static uint16_t port_of(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		die("getsockname");
	return ntohs(ss.ss_family == AF_INET ?
		     ((struct sockaddr_in *)&ss)->sin_port :
		     ((struct sockaddr_in6 *)&ss)->sin6_port);
}

static int listener(void)
{
	struct sockaddr_storage ss;
	socklen_t len = addr(lfamily, dual, fixed_port, &ss);
	int fd = socket(lfamily, SOCK_STREAM, 0), off = 0, on = 1;

	if (fd < 0)
		die("socket");
	if (dual && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off,
			       sizeof(off)))
		die("IPV6_V6ONLY");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 8))
		die("bind/listen");
	return fd;
}

static int client(uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len = addr(cfamily, false, port, &ss);
	int fd = socket(cfamily, SOCK_STREAM, 0);

	if (fd < 0)
		die("socket");
	if (connect(fd, (struct sockaddr *)&ss, len))
		die("connect");
	return fd;
}

static void send_all(int fd, size_t n)
{
	char buf[4096];
	ssize_t r;

	memset(buf, 'x', sizeof(buf));
	while (n) {
		r = send(fd, buf, n < sizeof(buf) ? n : sizeof(buf), 0);
		if (r <= 0)
			die("send");
		n -= r;
	}
}

static void recv_all(int fd, size_t n)
{
	char buf[4096];
	ssize_t r;

	while (n) {
		r = recv(fd, buf, n < sizeof(buf) ? n : sizeof(buf), 0);
		if (r <= 0)
			die("recv");
		n -= r;
	}
}

static void expect_eof(int fd)
{
	char c;

	if (recv(fd, &c, 1, 0) != 0)
		die("expected the peer's FIN");
}

/* Let the last segments cross the delayed path before exiting. */
static void settle(void)
{
	msleep(4 * delay_ms + 50);
}

static int refused(void)
{
	struct sockaddr_storage ss;
	socklen_t len = addr(lfamily, true, 0, &ss);
	int fd;
	uint16_t port;

	/* A port nothing listens on: bound once on the server, released. */
	enter_netns(server_ns);
	fd = socket(lfamily, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len))
		die("bind");
	port = port_of(fd);
	close(fd);
	enter_netns(client_ns);
	len = addr(cfamily, false, port, &ss);
	fd = socket(cfamily, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	if (!connect(fd, (struct sockaddr *)&ss, len) || errno != ECONNREFUSED)
		die("connect was not refused");
	close(fd);
	settle();
	return 0;
}

int main(int argc, char **argv)
{
	struct linger abort_now = { .l_onoff = 1, .l_linger = 0 };
	struct linger linger = { .l_onoff = 1, .l_linger = 30 };
	const char *scen;
	int opt, l, c, s;

	while ((opt = getopt(argc, argv, "6mlb:d:p:S:C:a:x:")) != -1) {
		switch (opt) {
		case '6':
			lfamily = cfamily = AF_INET6;
			break;
		case 'm':
			lfamily = AF_INET6;
			cfamily = AF_INET;
			dual = true;
			break;
		case 'b':
			bytes = strtoul(optarg, NULL, 10);
			break;
		case 'd':
			delay_ms = strtoul(optarg, NULL, 10);
			break;
		case 'p':
			fixed_port = strtoul(optarg, NULL, 10);
			break;
		case 'S':
			server_ns = optarg;
			break;
		case 'C':
			client_ns = optarg;
			break;
		case 'a':
			server_addr = optarg;
			break;
		case 'x':
			vanish_cmd = optarg;
			break;
		case 'l':
			lingering = true;
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc - 1)
		goto usage;
	scen = argv[optind];

	if (!strcmp(scen, "refused"))
		return refused();

	enter_netns(server_ns);
	l = listener();
	enter_netns(client_ns);
	c = client(port_of(l));
	s = accept(l, NULL, NULL);
	if (s < 0)
		die("accept");
	/*
	 * With -l, close() returns once our FIN is acknowledged: when the
	 * last close returns, both sides have made their last transition,
	 * even on a lossy path.  (It also changes the story: a client that
	 * close()d is an orphan, and an orphan in FIN_WAIT2 becomes a
	 * timewait socket at once, before the server's FIN.)
	 */
	if (lingering &&
	    (setsockopt(c, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger)) ||
	     setsockopt(s, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger))))
		die("SO_LINGER");
	send_all(c, bytes);
	recv_all(s, bytes);
	send_all(s, bytes);
	recv_all(c, bytes);

	if (!strcmp(scen, "basic")) {
		close(c);
		expect_eof(s);
		close(s);
	} else if (!strcmp(scen, "serverclose")) {
		close(s);
		expect_eof(c);
		close(c);
	} else if (!strcmp(scen, "simclose")) {
		/* Both FINs leave before either arrives (given a delay). */
		if (shutdown(c, SHUT_WR) || shutdown(s, SHUT_WR))
			die("shutdown");
		expect_eof(c);
		expect_eof(s);
		close(c);
		close(s);
	} else if (!strcmp(scen, "halfclose")) {
		int i;

		if (shutdown(c, SHUT_WR))
			die("shutdown");
		expect_eof(s);
		for (i = 0; i < 3; i++) {	/* in CLOSE_WAIT, still sending */
			msleep(20);
			send_all(s, bytes);
			recv_all(c, bytes);
		}
		close(s);
		expect_eof(c);
		close(c);
	} else if (!strcmp(scen, "reset")) {
		if (setsockopt(c, SOL_SOCKET, SO_LINGER, &abort_now,
			       sizeof(abort_now)))
			die("SO_LINGER");
		close(c);
		msleep(delay_ms + 10);
		close(s);
	} else if (!strcmp(scen, "orphan")) {
		/*
		 * The server keeps its end open past the client's
		 * tcp_fin_timeout (the caller makes it short): the timewait
		 * socket that holds the client's orphaned FIN_WAIT2 expires,
		 * and the server's late FIN draws a reset.
		 */
		close(c);
		expect_eof(s);
		msleep(2000);
		close(s);
		msleep(delay_ms + 50);
	} else if (!strcmp(scen, "vanish")) {
		unsigned int timeout_ms = 3000;
		char byte;

		if (setsockopt(c, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout_ms,
			       sizeof(timeout_ms)))
			die("TCP_USER_TIMEOUT");
		if (vanish_cmd && system(vanish_cmd))
			die("the -x command");
		send_all(c, bytes);
		if (recv(c, &byte, 1, 0) != -1 || errno != ETIMEDOUT)
			die("the connection did not time out");
		close(c);
		/* The server cannot be told either: abort it. */
		if (setsockopt(s, SOL_SOCKET, SO_LINGER, &abort_now,
			       sizeof(abort_now)))
			die("SO_LINGER");
		close(s);
	} else {
		fprintf(stderr, "tcpscen: no scenario '%s'\n", scen);
		goto usage;
	}
	close(l);
	settle();
	return 0;
usage:
	fprintf(stderr,
		"usage: tcpscen [-6 | -m] [-l] [-b BYTES] [-d DELAY_MS] [-p PORT] [-S NETNS -C NETNS -a ADDR] [-x CMD]\n"
		"               basic|serverclose|simclose|halfclose|reset|refused|orphan|vanish\n");
	return 2;
}
