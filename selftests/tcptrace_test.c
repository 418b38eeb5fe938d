// SPDX-License-Identifier: GPL-2.0
/*
 * What /dev/tcptrace records for real loopback connections, and how the
 * device behaves.
 *
 * Needs root and the tcptrace module (tcptrace.sh loads it).  Each test
 * empties the buffers, makes its own connections and reads back what the
 * module recorded.  States are checked against the connection the test made;
 * sequence numbers against TCP_REPAIR's view of the same sockets, so the
 * kernel, not this file, says what x and y are; socket ids against SO_COOKIE.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <net/if.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/tcptrace.h>

#include "kselftest_harness.h"
#include "tcpcheck.h"

#define REC_SIZE	sizeof(struct tcptrace_record)
#define MAX_RECS	(1 << 16)
#define WAIT_MS		10000

#ifndef SO_COOKIE
#define SO_COOKIE	57
#endif
#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP	262
#endif

struct trace {
	struct tcptrace_record	*rec;
	size_t			nr;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

/* Append what can be read now; returns records read, -1 on error. */
static ssize_t trace_read(int fd, struct trace *t)
{
	ssize_t n, total = 0;

	while (t->nr < MAX_RECS) {
		n = read(fd, t->rec + t->nr, (MAX_RECS - t->nr) * REC_SIZE);
		if (n < 0)
			return errno == EAGAIN ? total : -1;
		if (n == 0 || n % REC_SIZE)
			return -1;
		t->nr += n / REC_SIZE;
		total += n / REC_SIZE;
	}
	return total;
}

/* Log a trace, a line a record, for a test that did not find its record. */
#define TRACE_DUMP(t)							\
do {									\
	size_t __k;							\
	for (__k = 0; __k < (t)->nr; __k++) {				\
		const struct tcptrace_record *__r = &(t)->rec[__k];	\
		TH_LOG("record %zu: type %u id %llx %u:%u %u -> %u flags %#x", \
		       __k, __r->type,					\
		       (unsigned long long)__r->ev.sock_id,		\
		       __r->ev.lport, __r->ev.rport, __r->ev.oldstate,	\
		       __r->ev.newstate, __r->ev.flags);		\
	}								\
} while (0)

/* Transition records of socket @id, in the order read(). */
static size_t trace_sock(const struct trace *t, uint64_t id,
			 const struct tcptrace_record **out, size_t max)
{
	size_t i, n = 0;

	for (i = 0; i < t->nr && n < max; i++)
		if (t->rec[i].type == TCPTRACE_REC_STATE &&
		    t->rec[i].ev.sock_id == id)
			out[n++] = &t->rec[i];
	return n;
}

static bool trace_has(const struct trace *t, uint64_t id, int newstate)
{
	size_t i;

	for (i = 0; i < t->nr; i++)
		if (t->rec[i].type == TCPTRACE_REC_STATE &&
		    t->rec[i].ev.sock_id == id &&
		    t->rec[i].ev.newstate == newstate)
			return true;
	return false;
}

/* Read until every socket of @ids has entered @newstate, or time runs out. */
static int trace_wait(int fd, struct trace *t, const uint64_t *ids, int nr,
		      int newstate)
{
	uint64_t end = now_ms() + WAIT_MS;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int i;

	for (;;) {
		if (trace_read(fd, t) < 0)
			return -1;
		for (i = 0; i < nr; i++)
			if (!trace_has(t, ids[i], newstate))
				break;
		if (i == nr)
			return 0;
		if (now_ms() > end)
			return -1;
		poll(&pfd, 1, 100);
	}
}

static uint64_t sock_cookie(int fd)
{
	uint64_t cookie = 0;
	socklen_t len = sizeof(cookie);

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len))
		return 0;
	return cookie;
}

/* The socket's write_seq and rcv_nxt, read through TCP_REPAIR. */
static int repair_seqs(int fd, uint32_t *write_seq, uint32_t *rcv_nxt)
{
	int on = TCP_REPAIR_ON, off = TCP_REPAIR_OFF_NO_WP;
	int sendq = TCP_SEND_QUEUE, recvq = TCP_RECV_QUEUE;
	socklen_t len = sizeof(uint32_t);

	if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)) ||
	    setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &sendq,
		       sizeof(sendq)) ||
	    getsockopt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, write_seq, &len) ||
	    setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &recvq,
		       sizeof(recvq)) ||
	    getsockopt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, rcv_nxt, &len))
		return -1;
	return setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off));
}

static socklen_t loopback(int family, bool any, uint16_t port,
			  struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		sin6->sin6_addr = any ? in6addr_any : in6addr_loopback;
		return sizeof(*sin6);
	}
}

static uint16_t local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* A port nothing listens on: bound once, then released. */
static uint16_t closed_port(int family)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(family, false, 0, &ss);
	int fd = socket(family, SOCK_STREAM, 0);
	uint16_t port = 0;

	if (fd >= 0 && !bind(fd, (struct sockaddr *)&ss, len))
		port = local_port(fd);
	if (fd >= 0)
		close(fd);
	return port;
}

static int listener(int family, bool dual)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(family, dual, 0, &ss);
	int fd = socket(family, SOCK_STREAM, 0), v6only = 0;

	if (fd < 0)
		return -1;
	if (dual && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
			       sizeof(v6only)))
		goto err;
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 128))
		goto err;
	return fd;
err:
	close(fd);
	return -1;
}

static int connect_to(int family, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(family, false, port, &ss);
	int fd = socket(family, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&ss, len)) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/*
 * An IPv4 loopback connection: a listener (@lfd), a client connected to it
 * (@cfd) and the child it accepted (@sfd), with the client's and the
 * child's ids.  Return: 0, or -1 with errno set and nothing left open.
 */
static int loopback_conn(int *lfd, int *cfd, int *sfd, uint64_t *cid,
			 uint64_t *sid)
{
	int err;

	*lfd = listener(AF_INET, false);
	if (*lfd < 0)
		return -1;
	*cfd = connect_to(AF_INET, local_port(*lfd));
	if (*cfd >= 0) {
		*sfd = accept(*lfd, NULL, NULL);
		if (*sfd >= 0) {
			*cid = sock_cookie(*cfd);
			*sid = sock_cookie(*sfd);
			return 0;
		}
	}
	err = errno;
	if (*cfd >= 0)
		close(*cfd);
	close(*lfd);
	errno = err;
	return -1;
}

static int xfer(int from, int to, size_t n)
{
	char buf[4096];
	size_t done;
	ssize_t r;

	memset(buf, 'x', sizeof(buf));
	for (done = 0; done < n; done += r) {
		r = send(from, buf, n - done > sizeof(buf) ? sizeof(buf) :
			 n - done, 0);
		if (r <= 0)
			return -1;
	}
	for (done = 0; done < n; done += r) {
		r = recv(to, buf, sizeof(buf), 0);
		if (r <= 0)
			return -1;
	}
	return 0;
}

/*
 * C (@cfd) closes first and waits for S's (@sfd) FIN before it lets go of
 * its socket: its connection enters TIME_WAIT proper, not a timewait socket
 * in FIN_WAIT2 that S's FIN then moves (a record more, at a time a race
 * decides), and C's close() finds its socket in CLOSE already.
 */
static int close_both(int cfd, int sfd)
{
	char b;

	if (shutdown(cfd, SHUT_WR) || recv(sfd, &b, 1, 0) != 0 ||
	    close(sfd) || recv(cfd, &b, 1, 0) != 0)
		return -1;
	return close(cfd);
}

static int open_dev(void)
{
	return open(TCPTRACE_DEVICE, O_RDONLY | O_NONBLOCK);
}

static int lo_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd = socket(AF_INET, SOCK_DGRAM, 0), ret;

	if (fd < 0)
		return -1;
	ret = ioctl(fd, SIOCGIFFLAGS, &ifr);
	ifr.ifr_flags |= IFF_UP;
	if (!ret)
		ret = ioctl(fd, SIOCSIFFLAGS, &ifr);
	close(fd);
	return ret;
}

/*
 * Each test runs in a network namespace of its own (setup_netns()) and, but
 * for those about other namespaces, records only its own: the timewait
 * sockets an earlier test left behind expire, or go with its namespace, at
 * any time, and their records must not land in another test's counts.
 * Event records (resets, retransmissions) only where a test asks for them.
 */
static uint32_t test_netns;

static void base_filter(struct tcptrace_filter *f)
{
	memset(f, 0, sizeof(*f));
	f->netns = test_netns;
	f->flags = TCPTRACE_FILTER_NO_EVENTS;
}

static int setup_netns(void)
{
	struct stat st;

	if (unshare(CLONE_NEWNET) || lo_up() || stat("/proc/self/ns/net", &st))
		return -1;
	test_netns = st.st_ino;
	return 0;
}

/* Empty the buffers: clear, then read away any loss still to be reported. */
static int dev_reset(int fd)
{
	struct tcptrace_filter none;
	struct tcptrace_record rec[64];

	base_filter(&none);
	if (ioctl(fd, TCPTRACE_IOC_SET_FILTER, &none) ||
	    ioctl(fd, TCPTRACE_IOC_CLEAR))
		return -1;
	while (read(fd, rec, sizeof(rec)) > 0)
		;
	return errno == EAGAIN ? 0 : -1;
}

static int dev_stats(int fd, unsigned int nr_cpus,
		     struct tcptrace_cpu_stats *sum)
{
	size_t size = sizeof(struct tcptrace_stats) +
		      nr_cpus * sizeof(struct tcptrace_cpu_stats);
	struct tcptrace_stats *st = calloc(1, size);
	unsigned int i;

	if (!st)
		return -1;
	st->nr_cpus = nr_cpus;
	if (ioctl(fd, TCPTRACE_IOC_STATS, st)) {
		free(st);
		return -1;
	}
	memset(sum, 0, sizeof(*sum));
	for (i = 0; i < nr_cpus; i++) {
		sum->recorded += st->cpu[i].recorded;
		sum->lost += st->cpu[i].lost;
		sum->lost_reported += st->cpu[i].lost_reported;
		sum->filtered += st->cpu[i].filtered;
		sum->delivered += st->cpu[i].delivered;
		sum->discarded += st->cpu[i].discarded;
		sum->queued += st->cpu[i].queued;
	}
	free(st);
	return 0;
}

static void oracle_report(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "# oracle: %s\n", msg);
}

/* Every trace a test read goes through the oracle (tcpcheck.h). */
static unsigned long trace_verify(const struct trace *t, unsigned int nr_cpus)
{
	struct tc_state *st = tc_new(nr_cpus);
	unsigned long errors;
	size_t i;

	if (!st)
		return 1;
	st->report = oracle_report;
	for (i = 0; i < t->nr; i++)
		tc_check(st, &t->rec[i]);
	errors = tc_finish(st);
	tc_free(st);
	return errors;
}

#define DEV_TEARDOWN(self)						\
do {									\
	if ((self)->fd >= 0)						\
		close((self)->fd);					\
	if ((self)->t.rec) {						\
		EXPECT_EQ(0, trace_verify(&(self)->t,			\
					  (self)->info.nr_cpus));	\
		free((self)->t.rec);					\
	}								\
} while (0)

#define DEV_SETUP(self)							\
do {									\
	(self)->fd = open_dev();					\
	if ((self)->fd < 0 && errno == ENOENT)				\
		SKIP(return, "no " TCPTRACE_DEVICE ": load tcptrace.ko"); \
	ASSERT_LE(0, (self)->fd) TH_LOG("open: %s", strerror(errno));	\
	ASSERT_EQ(0, ioctl((self)->fd, TCPTRACE_IOC_INFO, &(self)->info)); \
	ASSERT_EQ(TCPTRACE_ABI_VERSION, (self)->info.abi_version);	\
	ASSERT_EQ(REC_SIZE, (self)->info.record_size);			\
	ASSERT_EQ(0, setup_netns()) TH_LOG("netns: %s", strerror(errno)); \
	ASSERT_EQ(0, dev_reset((self)->fd));				\
	(self)->t.rec = calloc(MAX_RECS, REC_SIZE);			\
	ASSERT_NE(NULL, (self)->t.rec);					\
	(self)->t.nr = 0;						\
} while (0)

/*
 * One connection, the client closing first: a listener L, a client C and
 * the child S that L accepts.
 */
FIXTURE(conn) {
	int fd;
	struct tcptrace_info info;
	struct trace t;
};

FIXTURE_VARIANT(conn) {
	int lfamily;	/* the listener's and so the child's family */
	int cfamily;	/* the client's */
	bool dual;	/* an IPv6 listener on :: that takes IPv4 too */
};

FIXTURE_VARIANT_ADD(conn, ipv4) {
	.lfamily = AF_INET, .cfamily = AF_INET,
};

FIXTURE_VARIANT_ADD(conn, ipv6) {
	.lfamily = AF_INET6, .cfamily = AF_INET6,
};

FIXTURE_VARIANT_ADD(conn, v4mapped) {
	.lfamily = AF_INET6, .cfamily = AF_INET, .dual = true,
};

FIXTURE_SETUP(conn)
{
	DEV_SETUP(self);
}

FIXTURE_TEARDOWN(conn)
{
	DEV_TEARDOWN(self);
}

struct step {
	int old, new;
};

static const struct step listener_steps[] = {
	{ TCPTRACE_CLOSE, TCPTRACE_LISTEN },
	{ TCPTRACE_LISTEN, TCPTRACE_CLOSE },
};

static const struct step client_steps[] = {
	{ TCPTRACE_CLOSE, TCPTRACE_SYN_SENT },
	{ TCPTRACE_SYN_SENT, TCPTRACE_ESTABLISHED },
	{ TCPTRACE_ESTABLISHED, TCPTRACE_FIN_WAIT1 },
	{ TCPTRACE_FIN_WAIT1, TCPTRACE_FIN_WAIT2 },
	/* A timewait socket takes over (kprobes; else FIN_WAIT2 -> CLOSE). */
	{ TCPTRACE_FIN_WAIT2, TCPTRACE_TIME_WAIT },
};

static const struct step child_steps[] = {
	/* Cloned from the listener, the child starts out "in LISTEN". */
	{ TCPTRACE_LISTEN, TCPTRACE_SYN_RECV },
	{ TCPTRACE_SYN_RECV, TCPTRACE_ESTABLISHED },
	{ TCPTRACE_ESTABLISHED, TCPTRACE_CLOSE_WAIT },
	{ TCPTRACE_CLOSE_WAIT, TCPTRACE_LAST_ACK },
	{ TCPTRACE_LAST_ACK, TCPTRACE_CLOSE },
};

/* With the SYN queue seen (TCPTRACE_HOOK_REQUEST): the request, then the child. */
static const struct step request_steps[] = {
	{ TCPTRACE_LISTEN, TCPTRACE_NEW_SYN_RECV },
	{ TCPTRACE_NEW_SYN_RECV, TCPTRACE_SYN_RECV },
	{ TCPTRACE_SYN_RECV, TCPTRACE_ESTABLISHED },
	{ TCPTRACE_ESTABLISHED, TCPTRACE_CLOSE_WAIT },
	{ TCPTRACE_CLOSE_WAIT, TCPTRACE_LAST_ACK },
	{ TCPTRACE_LAST_ACK, TCPTRACE_CLOSE },
};

#define EXPECT_STEPS(recs, nr, steps)					\
do {									\
	size_t __i;							\
	ASSERT_EQ(ARRAY_SIZE(steps), nr);				\
	for (__i = 0; __i < ARRAY_SIZE(steps); __i++) {			\
		EXPECT_EQ(steps[__i].old, recs[__i]->ev.oldstate)	\
			TH_LOG(#steps " step %zu", __i);		\
		EXPECT_EQ(steps[__i].new, recs[__i]->ev.newstate)	\
			TH_LOG(#steps " step %zu", __i);		\
	}								\
} while (0)

/*
 * The kernel addresses of the sockets on @port, from /proc/net/tcp{,6}: the
 * twelfth field is the struct sock pointer.  They are real addresses only
 * when the kernel was booted with no_hash_pointers; else they are hashed.
 */
static int proc_sk_addrs(uint16_t port, uint64_t *addrs, int max)
{
	static const char *const files[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	char line[512], want[8];
	int n = 0;
	size_t i;

	snprintf(want, sizeof(want), ":%04X", port);
	for (i = 0; i < ARRAY_SIZE(files); i++) {
		FILE *f = fopen(files[i], "r");

		if (!f)
			continue;
		while (n < max && fgets(line, sizeof(line), f)) {
			char *tok, *save = NULL;
			int field = 0;
			bool ours = false;

			for (tok = strtok_r(line, " \t\n", &save); tok;
			     tok = strtok_r(NULL, " \t\n", &save)) {
				field++;
				if ((field == 2 || field == 3) && strstr(tok, want))
					ours = true;
				if (field == 12 && ours)
					addrs[n++] = strtoull(tok, NULL, 16);
			}
		}
		fclose(f);
	}
	return n;
}

static bool addr_is(const struct tcptrace_event *ev, const uint8_t *addr,
		    int family)
{
	static const uint8_t v4lo[4] = { 127, 0, 0, 1 };
	static const uint8_t v4mapped[16] = { [10] = 0xff, [11] = 0xff,
					      127, 0, 0, 1 };

	if (ev->family != family)
		return false;
	if (family == AF_INET)
		return !memcmp(addr, v4lo, 4) && !memchr(addr + 4, 1, 12) &&
		       !memcmp(addr + 4, v4mapped, 10);
	if (!memcmp(addr, v4mapped, 16))
		return true;
	return !memcmp(addr, &in6addr_loopback, 16);
}

TEST_F(conn, client_closes_first)
{
	const size_t n = 1000, m = 3000;	/* bytes C -> S, S -> C */
	const struct tcptrace_record *l[8], *c[8], *srecs[8], **s, *rq = NULL;
	uint64_t sk_addrs[8];
	uint32_t cw, cr, sw, sr, x, y;
	int nsk, k;
	uint64_t ids[3];
	size_t nl, nc, ns, i;
	int lfd, cfd, sfd;
	uint16_t port;
	char comm[16] = "";
	struct stat netns;
	bool tw;

	ASSERT_EQ(0, prctl(PR_GET_NAME, comm));
	ASSERT_EQ(0, stat("/proc/self/ns/net", &netns));

	lfd = listener(variant->lfamily, variant->dual);
	ASSERT_LE(0, lfd);
	port = local_port(lfd);
	cfd = connect_to(variant->cfamily, port);
	ASSERT_LE(0, cfd) TH_LOG("connect: %s", strerror(errno));
	sfd = accept(lfd, NULL, NULL);
	ASSERT_LE(0, sfd);
	ids[0] = sock_cookie(lfd);
	ids[1] = sock_cookie(cfd);
	ids[2] = sock_cookie(sfd);

	/* The kernel's own view of both ISNs, before any data. */
	ASSERT_EQ(0, repair_seqs(cfd, &cw, &cr)) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, repair_seqs(sfd, &sw, &sr));
	x = cw - 1;
	y = cr - 1;
	ASSERT_EQ(y + 1, sw);
	ASSERT_EQ(x + 1, sr);

	ASSERT_EQ(0, xfer(cfd, sfd, n));
	ASSERT_EQ(0, xfer(sfd, cfd, m));
	nsk = proc_sk_addrs(port, sk_addrs, 8);
	ASSERT_EQ(0, close(cfd));
	ASSERT_EQ(0, recv(sfd, comm + 15, 1, 0));	/* the client's FIN */
	ASSERT_EQ(0, close(sfd));
	ASSERT_EQ(0, close(lfd));

	tw = self->info.hooks & TCPTRACE_HOOK_TW_ENTER;
	ASSERT_EQ(0, trace_wait(self->fd, &self->t, ids + 1, 1,
				tw ? TCPTRACE_TIME_WAIT : TCPTRACE_CLOSE));
	ASSERT_EQ(0, trace_wait(self->fd, &self->t, ids, 1, TCPTRACE_CLOSE));
	ASSERT_EQ(0, trace_wait(self->fd, &self->t, ids + 2, 1, TCPTRACE_CLOSE));
	nl = trace_sock(&self->t, ids[0], l, 8);
	nc = trace_sock(&self->t, ids[1], c, 8);
	ns = trace_sock(&self->t, ids[2], srecs, 8);
	EXPECT_STEPS(l, nl, listener_steps);
	/*
	 * S's FIN, if it found C's timewait socket still in its FIN_WAIT2
	 * substate, took it to TIME_WAIT proper: one record more.
	 */
	if (tw && nc == ARRAY_SIZE(client_steps) + 1 &&
	    c[4]->ev.flags & TCPTRACE_F_TW_FIN_WAIT2) {
		EXPECT_EQ(TCPTRACE_TIME_WAIT, c[5]->ev.oldstate);
		EXPECT_EQ(TCPTRACE_TIME_WAIT, c[5]->ev.newstate);
		EXPECT_EQ(0, c[5]->ev.flags);
		EXPECT_EQ(y + 1 + m + 1, c[5]->ev.rcv_nxt);
		EXPECT_EQ(c[4]->ev.snd_nxt, c[5]->ev.snd_nxt);
		nc--;
	}
	/* The request S comes from has S's id: its record comes first. */
	if (self->info.hooks & TCPTRACE_HOOK_REQUEST) {
		EXPECT_STEPS(srecs, ns, request_steps);
		rq = srecs[0];
		s = srecs + 1;
		ns--;
	} else {
		EXPECT_STEPS(srecs, ns, child_steps);
		s = srecs;
	}
	if (tw) {
		EXPECT_STEPS(c, nc, client_steps);
	} else {
		ASSERT_EQ(ARRAY_SIZE(client_steps), nc);
		EXPECT_EQ(TCPTRACE_CLOSE, c[4]->ev.newstate);
	}

	/* No record holds the address of any of these sockets. */
	if (nsk < 3 || !tc_kernel_pointer(sk_addrs[0])) {
		TH_LOG("socket addresses hashed (boot with no_hash_pointers to compare)");
	} else {
		for (i = 0; i < self->t.nr; i++) {
			for (k = 0; k < nsk; k++) {
				EXPECT_EQ(NULL, memmem(&self->t.rec[i],
						       REC_SIZE, &sk_addrs[k],
						       sizeof(sk_addrs[k])))
					TH_LOG("record %zu holds %#llx", i,
					       (unsigned long long)sk_addrs[k]);
			}
		}
	}

	/* Timestamps: read() merges the CPUs in time order. */
	for (i = 1; i < self->t.nr; i++) {
		EXPECT_LE(self->t.rec[i - 1].ts_ns, self->t.rec[i].ts_ns);
	}

	/* Who and where. */
	EXPECT_EQ(TCPTRACE_CTX_TASK, c[0]->ctx);
	EXPECT_EQ(getpid(), c[0]->ev.pid);
	EXPECT_EQ(getpid(), c[0]->ev.tgid);
	EXPECT_STREQ(comm, c[0]->ev.comm);
	EXPECT_EQ(TCPTRACE_CTX_TASK, c[2]->ctx);	/* close() */
	EXPECT_EQ(getpid(), c[2]->ev.pid);
	for (i = 0; i < nc; i++) {
		EXPECT_EQ(netns.st_ino, c[i]->netns);
		EXPECT_EQ(variant->cfamily, c[i]->ev.family);
		EXPECT_EQ(port, c[i]->ev.rport);
		EXPECT_TRUE(addr_is(&c[i]->ev, c[i]->ev.raddr,
				    variant->cfamily));
		if (c[i]->ctx != TCPTRACE_CTX_TASK) {
			EXPECT_EQ(0, c[i]->ev.pid);
			EXPECT_EQ('\0', c[i]->ev.comm[0]);
		}
	}
	EXPECT_EQ(0, c[0]->ev.lport);	/* not chosen yet at SYN_SENT */
	EXPECT_EQ(TCPTRACE_F_SEQ_UNSET, c[0]->ev.flags);
	for (i = 1; i < nc - 1; i++) {
		EXPECT_EQ(0, c[i]->ev.flags);
		EXPECT_NE(0, c[i]->ev.lport);
		EXPECT_TRUE(addr_is(&c[i]->ev, c[i]->ev.laddr,
				    variant->cfamily));
	}
	EXPECT_EQ(TCPTRACE_F_ADDR_UNSET | TCPTRACE_F_SEQ_UNSET, s[0]->ev.flags);
	EXPECT_EQ(port, s[0]->ev.lport);
	for (i = 1; i < ns; i++) {
		EXPECT_EQ(0, s[i]->ev.flags);
		EXPECT_EQ(port, s[i]->ev.lport);
		EXPECT_EQ(c[1]->ev.lport, s[i]->ev.rport);
		EXPECT_EQ(variant->lfamily, s[i]->ev.family);
		EXPECT_TRUE(addr_is(&s[i]->ev, s[i]->ev.raddr,
				    variant->lfamily));
	}
	EXPECT_EQ(port, l[0]->ev.lport);
	EXPECT_EQ(TCPTRACE_F_SEQ_UNSET, l[0]->ev.flags);

	/*
	 * The request, made as the SYN came in: it holds the peer's address,
	 * the ISNs, and the SYN-ACK it sends, seq=y ack=x+1.
	 */
	if (rq) {
		EXPECT_EQ(0, rq->ev.flags);
		EXPECT_EQ(TCPTRACE_CTX_SOFTIRQ, rq->ctx);
		EXPECT_EQ(netns.st_ino, rq->netns);
		EXPECT_EQ(variant->lfamily, rq->ev.family);
		EXPECT_EQ(port, rq->ev.lport);
		EXPECT_EQ(c[1]->ev.lport, rq->ev.rport);
		EXPECT_TRUE(addr_is(&rq->ev, rq->ev.laddr, variant->lfamily));
		EXPECT_TRUE(addr_is(&rq->ev, rq->ev.raddr, variant->lfamily));
		EXPECT_EQ(y, rq->ev.snd_una);
		EXPECT_EQ(y + 1, rq->ev.snd_nxt);
		EXPECT_EQ(x + 1, rq->ev.rcv_nxt);
		EXPECT_EQ(0, rq->ev.total_retrans);
		EXPECT_LE(c[0]->ts_ns, rq->ts_ns);
		EXPECT_LE(rq->ts_ns, s[0]->ts_ns);
	}

	/* The three-way handshake: SYN seq=x, SYN+ACK seq=y ack=x+1, ACK ack=y+1. */
	EXPECT_EQ(x + 1, c[1]->ev.snd_una);
	EXPECT_EQ(x + 1, c[1]->ev.snd_nxt);
	EXPECT_EQ(y + 1, c[1]->ev.rcv_nxt);
	EXPECT_EQ(y + 1, s[1]->ev.snd_una);
	EXPECT_EQ(y + 1, s[1]->ev.snd_nxt);
	EXPECT_EQ(x + 1, s[1]->ev.rcv_nxt);

	/* C closes: its FIN takes seq u = x+1+n; S acks u+1. */
	EXPECT_EQ(x + 1 + n, c[2]->ev.write_seq);
	EXPECT_EQ(x + 1 + n, c[2]->ev.snd_nxt);
	EXPECT_EQ(y + 1 + m, c[2]->ev.rcv_nxt);
	EXPECT_EQ(x + 1 + n + 1, c[3]->ev.snd_una);
	EXPECT_EQ(x + 1 + n + 1, s[2]->ev.rcv_nxt);
	/* S closes: its FIN takes seq w = y+1+m; C acks w+1. */
	EXPECT_EQ(y + 1 + m, s[3]->ev.write_seq);
	EXPECT_EQ(y + 1 + m, s[3]->ev.snd_nxt);
	/*
	 * C closed: it is an orphan, and an orphan in FIN_WAIT2 becomes a
	 * timewait socket at once.  If S's FIN was not in yet, C left with
	 * rcv_nxt w; else w+1.  Either way, S's FIN is acknowledged.
	 */
	EXPECT_TRUE(c[4]->ev.rcv_nxt == y + 1 + m + 1 ||
		    c[4]->ev.rcv_nxt == y + 1 + m)
		TH_LOG("rcv_nxt %u, w %u", c[4]->ev.rcv_nxt, (uint32_t)(y + 1 + m));
	/* ... and the timewait socket's substate says which. */
	EXPECT_EQ(tw && c[4]->ev.rcv_nxt == y + 1 + m ?
		  TCPTRACE_F_TW_FIN_WAIT2 : 0, c[4]->ev.flags);
	EXPECT_EQ(y + 1 + m + 1, s[4]->ev.snd_una);
	EXPECT_EQ(x + 1 + n + 1, s[4]->ev.rcv_nxt);
	/* At CLOSE, snd_nxt has moved by the bytes sent plus the FIN. */
	EXPECT_EQ(x + 1 + n + 1, c[4]->ev.snd_nxt);
	EXPECT_EQ(y + 1 + m + 1, s[4]->ev.snd_nxt);

	/* Lifetime counters at CLOSE. */
	EXPECT_LE(n, c[4]->ev.bytes_acked);
	EXPECT_GE(n + 2, c[4]->ev.bytes_acked);
	EXPECT_LE(m, c[4]->ev.bytes_received);
	EXPECT_GE(m + 1, c[4]->ev.bytes_received);
	EXPECT_LE(m, s[4]->ev.bytes_acked);
	EXPECT_GE(m + 2, s[4]->ev.bytes_acked);
	EXPECT_EQ(0, c[4]->ev.total_retrans);
	EXPECT_LT(0, c[4]->ev.srtt_us);
}

/* A connect to a port nobody listens on: SYN, RST, CLOSE. */
FIXTURE(dev) {
	int fd;
	struct tcptrace_info info;
	struct trace t;
};

FIXTURE_SETUP(dev)
{
	DEV_SETUP(self);
}

FIXTURE_TEARDOWN(dev)
{
	DEV_TEARDOWN(self);
}

static uint64_t refused_connect(uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(AF_INET, false, port, &ss);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint64_t id;

	if (fd < 0)
		return 0;
	id = sock_cookie(fd);
	if (!connect(fd, (struct sockaddr *)&ss, len) ||
	    errno != ECONNREFUSED)
		id = 0;
	close(fd);
	return id;
}

TEST_F(dev, refused)
{
	uint16_t port = closed_port(AF_INET);
	const struct tcptrace_record *c[4];
	uint64_t id;

	ASSERT_NE(0, port);
	id = refused_connect(port);
	ASSERT_NE(0, id);
	ASSERT_EQ(0, trace_wait(self->fd, &self->t, &id, 1, TCPTRACE_CLOSE));
	ASSERT_EQ(2, trace_sock(&self->t, id, c, 4));
	EXPECT_EQ(TCPTRACE_CLOSE, c[0]->ev.oldstate);
	EXPECT_EQ(TCPTRACE_SYN_SENT, c[0]->ev.newstate);
	EXPECT_EQ(TCPTRACE_SYN_SENT, c[1]->ev.oldstate);
	EXPECT_EQ(TCPTRACE_CLOSE, c[1]->ev.newstate);
	EXPECT_EQ(port, c[1]->ev.rport);
	EXPECT_EQ(0, c[1]->ev.flags);
	/* The SYN went out and was never acknowledged. */
	EXPECT_EQ(c[1]->ev.snd_una + 1, c[1]->ev.snd_nxt);
	EXPECT_EQ(0, c[1]->ev.bytes_acked);
}

static int pin_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

static int filter_port(int fd, uint16_t port)
{
	struct tcptrace_filter f;

	base_filter(&f);
	f.nr_ports = 1;
	f.ports[0].lo = port;
	f.ports[0].hi = port;
	return ioctl(fd, TCPTRACE_IOC_SET_FILTER, &f);
}

/*
 * More transitions than the buffer holds, with nobody reading; then room for
 * a few more.  Every transition is delivered or reported lost, and the loss
 * record stands exactly where the gap is.
 */
TEST_F(dev, overflow)
{
	const unsigned int size = self->info.buffer_records;
	const unsigned int first = size / 2 + 25, more = 3;
	struct tcptrace_cpu_stats before, after;
	struct tcptrace_record head[10];
	uint64_t *ids, lost = 0;
	unsigned int i, nloss = 0;
	size_t k, state = 0, loss_at = 0;
	uint16_t port;

	ASSERT_EQ(0, pin_cpu(0));
	port = closed_port(AF_INET);
	ASSERT_NE(0, port);
	ASSERT_EQ(0, filter_port(self->fd, port));
	ASSERT_EQ(0, dev_stats(self->fd, self->info.nr_cpus, &before));
	ids = calloc(first + more, sizeof(*ids));
	ASSERT_NE(NULL, ids);

	/* Two transitions each: CLOSE -> SYN_SENT -> CLOSE. */
	for (i = 0; i < first; i++) {
		ids[i] = refused_connect(port);
		ASSERT_NE(0, ids[i]);
	}
	/* Make room for ten, then record three more connects. */
	ASSERT_EQ(sizeof(head), read(self->fd, head, sizeof(head)));
	for (; i < first + more; i++) {
		ids[i] = refused_connect(port);
		ASSERT_NE(0, ids[i]);
	}
	memcpy(self->t.rec, head, sizeof(head));
	self->t.nr = ARRAY_SIZE(head);
	ASSERT_LE(0, trace_read(self->fd, &self->t));
	ASSERT_EQ(0, dev_stats(self->fd, self->info.nr_cpus, &after));

	for (k = 0; k < self->t.nr; k++) {
		const struct tcptrace_record *r = &self->t.rec[k];

		EXPECT_EQ(0, r->cpu);
		if (r->type == TCPTRACE_REC_LOST) {
			nloss++;
			lost += r->loss.count;
			loss_at = k;
			continue;
		}
		ASSERT_EQ(TCPTRACE_REC_STATE, r->type);
		/* Records come in pairs, socket after socket. */
		i = state < size ? state / 2 : first + (state - size) / 2;
		ASSERT_GT(first + more, i);
		EXPECT_EQ(ids[i], r->ev.sock_id) TH_LOG("record %zu", k);
		EXPECT_EQ(state % 2 ? TCPTRACE_SYN_SENT : TCPTRACE_CLOSE,
			  r->ev.oldstate) TH_LOG("record %zu", k);
		state++;
	}
	/* Delivered + lost = produced, exactly. */
	EXPECT_EQ(2 * (first + more), state + lost);
	EXPECT_EQ(1, nloss);
	EXPECT_EQ(2 * first - size, lost);
	EXPECT_EQ(size, loss_at);
	EXPECT_EQ(size + 2 * more, state);
	EXPECT_EQ(lost, after.lost - before.lost);
	EXPECT_EQ(lost, after.lost_reported - before.lost_reported);
	EXPECT_EQ(state, after.delivered - before.delivered);
	EXPECT_EQ(state, after.recorded - before.recorded);
	EXPECT_EQ(0, after.queued);
	free(ids);
}

/* The loss at the end of a trace is reported too, by the reader. */
TEST_F(dev, overflow_at_end)
{
	const unsigned int size = self->info.buffer_records;
	const unsigned int nr = size / 2 + 7;
	struct pollfd pfd = { .fd = self->fd, .events = POLLIN | POLLPRI };
	uint64_t lost = 0;
	unsigned int i;
	size_t k, state = 0;
	uint16_t port;

	ASSERT_EQ(0, pin_cpu(1 % self->info.nr_cpus));
	port = closed_port(AF_INET);
	ASSERT_EQ(0, filter_port(self->fd, port));
	for (i = 0; i < nr; i++) {
		ASSERT_NE(0, refused_connect(port));
	}
	ASSERT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_EQ(POLLIN | POLLPRI, pfd.revents);
	ASSERT_LE(0, trace_read(self->fd, &self->t));
	for (k = 0; k < self->t.nr; k++) {
		if (self->t.rec[k].type == TCPTRACE_REC_LOST) {
			EXPECT_EQ(size, k);
			lost += self->t.rec[k].loss.count;
		} else {
			state++;
		}
	}
	EXPECT_EQ(size, state);
	EXPECT_EQ(2 * nr - size, lost);
	EXPECT_EQ(size + 1, self->t.nr);
	ASSERT_EQ(0, poll(&pfd, 1, 0));
}

TEST_F(dev, read_sizes)
{
	struct tcptrace_record rec[4];
	uint16_t port = closed_port(AF_INET);
	void *volatile bad_buf = NULL;
	char small[REC_SIZE];
	int i;

	for (i = 0; i < 4; i++) {
		ASSERT_NE(0, refused_connect(port));	/* 8 records */
	}

	EXPECT_EQ(-1, read(self->fd, small, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, read(self->fd, small, REC_SIZE - 1));
	EXPECT_EQ(EINVAL, errno);
	/* Only whole records, however much room there is. */
	EXPECT_EQ(REC_SIZE, read(self->fd, rec, REC_SIZE + 1));
	EXPECT_EQ(2 * REC_SIZE, read(self->fd, rec, 3 * REC_SIZE - 1));
	/* A bad buffer: EFAULT, and the record stays for the next read. */
	EXPECT_EQ(-1, read(self->fd, bad_buf, REC_SIZE));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(REC_SIZE, read(self->fd, rec, REC_SIZE));
	EXPECT_EQ(TCPTRACE_SYN_SENT, rec[0].ev.oldstate);
	EXPECT_EQ(4 * REC_SIZE, read(self->fd, rec, sizeof(rec)));
	EXPECT_EQ(-1, read(self->fd, rec, sizeof(rec)));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_EQ(-1, lseek(self->fd, 0, SEEK_SET));
	EXPECT_EQ(ESPIPE, errno);
}

static void connect_later(uint16_t port, int delay_ms)
{
	pid_t pid = fork();

	if (pid == 0) {
		usleep(delay_ms * 1000);
		_exit(refused_connect(port) ? 0 : 1);
	}
}

TEST_F(dev, poll_wakes)
{
	struct pollfd pfd = { .fd = self->fd, .events = POLLIN };
	uint16_t port = closed_port(AF_INET);
	uint64_t start;
	int status;

	ASSERT_EQ(0, poll(&pfd, 1, 0));
	start = now_ms();
	connect_later(port, 200);
	ASSERT_EQ(1, poll(&pfd, 1, WAIT_MS));
	EXPECT_EQ(POLLIN, pfd.revents);
	/* Woken by the records, not by the timeout. */
	EXPECT_GT(WAIT_MS / 2, now_ms() - start);
	ASSERT_LT(0, wait(&status));
	EXPECT_EQ(0, status);
}

TEST_F(dev, blocking_read)
{
	uint16_t port = closed_port(AF_INET);
	struct tcptrace_record rec[4];
	int status;

	ASSERT_EQ(0, fcntl(self->fd, F_SETFL, 0));
	connect_later(port, 200);
	ASSERT_LE(REC_SIZE, read(self->fd, rec, sizeof(rec)));
	EXPECT_EQ(TCPTRACE_CLOSE, rec[0].ev.oldstate);
	ASSERT_LT(0, wait(&status));
	EXPECT_EQ(0, status);
}

TEST_F(dev, epoll_wakes)
{
	struct epoll_event ev = { .events = EPOLLIN }, got;
	uint16_t port = closed_port(AF_INET);
	int ep = epoll_create1(0), status;

	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, self->fd, &ev));
	ASSERT_EQ(0, epoll_wait(ep, &got, 1, 0));
	connect_later(port, 200);
	ASSERT_EQ(1, epoll_wait(ep, &got, 1, WAIT_MS));
	EXPECT_EQ(EPOLLIN, got.events);
	ASSERT_LT(0, wait(&status));
	EXPECT_EQ(0, status);
	close(ep);
}

static unsigned int module_param_uint(const char *name)
{
	char path[128];
	unsigned int v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/tcptrace/parameters/%s",
		 name);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%u", &v) != 1)
		v = 0;
	fclose(f);
	return v;
}

/*
 * A burst that fills a buffer past the watermark wakes the reader through
 * irq_work, long before the periodic check would.  Needs a module loaded
 * with a small buffer and a slow tick (tcptrace.sh's second run).
 */
TEST_F(dev, watermark_wakes)
{
	struct pollfd pfd = { .fd = self->fd, .events = POLLIN };
	unsigned int tick_ms = module_param_uint("wakeup_ms");
	unsigned int pct = module_param_uint("watermark_pct");
	unsigned int mark = self->info.buffer_records * pct / 100;
	uint16_t port = closed_port(AF_INET);
	uint64_t start, took;
	unsigned int i;
	pid_t pid;
	int status;

	if (tick_ms < 500 || mark > 64)
		SKIP(return, "wants wakeup_ms >= 500 and a small buffer");
	ASSERT_EQ(0, pin_cpu(0));
	ASSERT_EQ(0, filter_port(self->fd, port));
	start = now_ms();
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		pin_cpu(0);
		for (i = 0; i < mark; i++)	/* two records each */
			if (!refused_connect(port))
				_exit(1);
		_exit(0);
	}
	ASSERT_EQ(1, poll(&pfd, 1, WAIT_MS));
	took = now_ms() - start;
	ASSERT_LT(0, waitpid(pid, &status, 0));
	EXPECT_EQ(0, status);
	TH_LOG("woken after %llu ms, tick %u ms", (unsigned long long)took,
	       tick_ms);
	EXPECT_GT(tick_ms / 2, took);
}

/*
 * MPTCP's own sockets pass through the same tracepoint with protocol
 * IPPROTO_MPTCP; only their TCP subflows are TCP.
 */
TEST_F(dev, tcp_only)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(AF_INET, false, 0, &ss);
	uint64_t mptcp_ids[3], sub_ids[1];
	int l, c, s;
	uint16_t port;
	size_t k, seen = 0;

	l = socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP);
	if (l < 0)
		SKIP(return, "no MPTCP here: %s", strerror(errno));
	ASSERT_EQ(0, bind(l, (struct sockaddr *)&ss, len));
	ASSERT_EQ(0, listen(l, 8));
	port = local_port(l);
	len = loopback(AF_INET, false, port, &ss);
	c = socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP);
	ASSERT_LE(0, c);
	ASSERT_EQ(0, connect(c, (struct sockaddr *)&ss, len));
	s = accept(l, NULL, NULL);
	ASSERT_LE(0, s);
	mptcp_ids[0] = sock_cookie(l);
	mptcp_ids[1] = sock_cookie(c);
	mptcp_ids[2] = sock_cookie(s);
	ASSERT_EQ(0, xfer(c, s, 100));
	close(c);
	close(s);
	close(l);

	/* Wait for the client subflow (remote port = port) to close. */
	{
		uint64_t end = now_ms() + WAIT_MS;

		sub_ids[0] = 0;
		while (!sub_ids[0] && now_ms() < end) {
			struct pollfd pfd = { .fd = self->fd, .events = POLLIN };

			ASSERT_LE(0, trace_read(self->fd, &self->t));
			for (k = 0; k < self->t.nr; k++)
				if (self->t.rec[k].type == TCPTRACE_REC_STATE &&
				    self->t.rec[k].ev.rport == port &&
				    (self->t.rec[k].ev.newstate == TCPTRACE_CLOSE ||
				     self->t.rec[k].ev.newstate ==
				     TCPTRACE_TIME_WAIT))
					sub_ids[0] = self->t.rec[k].ev.sock_id;
			poll(&pfd, 1, 100);
		}
	}
	ASSERT_NE(0, sub_ids[0]) TH_LOG("no TCP subflow records");
	for (k = 0; k < self->t.nr; k++) {
		const struct tcptrace_event *ev = &self->t.rec[k].ev;

		if (ev->lport != port && ev->rport != port)
			continue;
		seen++;
		EXPECT_NE(mptcp_ids[0], ev->sock_id);
		EXPECT_NE(mptcp_ids[1], ev->sock_id);
		EXPECT_NE(mptcp_ids[2], ev->sock_id);
	}
	EXPECT_LE(4, seen);
}

static void on_alarm(int sig)
{
	(void)sig;
}

TEST_F(dev, read_interrupted)
{
	struct sigaction sa = { .sa_handler = on_alarm };	/* no SA_RESTART */
	struct tcptrace_record rec;

	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	ASSERT_EQ(0, fcntl(self->fd, F_SETFL, 0));
	alarm(1);
	EXPECT_EQ(-1, read(self->fd, &rec, sizeof(rec)));
	EXPECT_EQ(EINTR, errno);
}

TEST_F(dev, one_reader)
{
	int fd2 = open_dev();

	EXPECT_EQ(-1, fd2);
	EXPECT_EQ(EBUSY, errno);
	if (fd2 >= 0)
		close(fd2);
}

TEST_F(dev, ioctls)
{
	struct tcptrace_filter f = {}, got, bad[7];
	struct tcptrace_stats st = {};
	size_t i;

	EXPECT_EQ(-1, ioctl(self->fd, _IO(TCPTRACE_IOC_MAGIC, 0x7f)));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->fd, _IO('T', 0x01)));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->fd, TCPTRACE_IOC_INFO, NULL));
	EXPECT_EQ(EFAULT, errno);

	EXPECT_LT(0, self->info.nr_cpus);
	EXPECT_LE(32, self->info.buffer_records);
	EXPECT_EQ(0, self->info.buffer_records & (self->info.buffer_records - 1));
	EXPECT_EQ(CLOCK_MONOTONIC, self->info.clock);
	EXPECT_NE('\0', self->info.version[0]);

	EXPECT_EQ(0, ioctl(self->fd, TCPTRACE_IOC_STATS, &st));
	EXPECT_EQ(self->info.nr_cpus, st.nr_cpus);
	/* No kprobe hit skipped (the count is an output; in, it must be 0). */
	EXPECT_EQ(0, st.missed);
	st.missed = 1;
	EXPECT_EQ(-1, ioctl(self->fd, TCPTRACE_IOC_STATS, &st));
	EXPECT_EQ(EINVAL, errno);

	/* A good filter reads back as set. */
	f.family = AF_INET;
	f.nr_lports = 2;
	f.lports[0].lo = 80;
	f.lports[0].hi = 80;
	f.lports[1].lo = 8000;
	f.lports[1].hi = 8999;
	f.new_states = 1 << TCPTRACE_CLOSE;
	ASSERT_EQ(0, ioctl(self->fd, TCPTRACE_IOC_SET_FILTER, &f));
	ASSERT_EQ(0, ioctl(self->fd, TCPTRACE_IOC_GET_FILTER, &got));
	EXPECT_EQ(0, memcmp(&f, &got, sizeof(f)));

	/* Bad ones are refused whole; the good one stays. */
	for (i = 0; i < ARRAY_SIZE(bad); i++)
		bad[i] = f;
	bad[0].family = 99;
	bad[1].lports[1].lo = 9000;		/* lo > hi */
	bad[2].nr_lports = TCPTRACE_MAX_RANGES + 1;
	bad[3].reserved[0] = 1;
	bad[4].new_states = 1;			/* there is no state 0 */
	bad[5].old_states = 1u << 20;
	bad[6].rports[3].hi = 1;		/* beyond nr_rports */
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-1, ioctl(self->fd, TCPTRACE_IOC_SET_FILTER, &bad[i]))
			TH_LOG("bad filter %zu", i);
		EXPECT_EQ(EINVAL, errno);
	}
	ASSERT_EQ(0, ioctl(self->fd, TCPTRACE_IOC_GET_FILTER, &got));
	EXPECT_EQ(0, memcmp(&f, &got, sizeof(f)));
	EXPECT_EQ(-1, ioctl(self->fd, TCPTRACE_IOC_SET_FILTER, NULL));
	EXPECT_EQ(EFAULT, errno);
}

/* With a port filter, only that port's records arrive; the rest is not lost. */
TEST_F(dev, filter_port)
{
	struct tcptrace_cpu_stats before, after;
	int l1, l2, c1, c2, s1, s2, rq;
	uint64_t id1, id2, ids[2], end;
	uint16_t p1;
	size_t k;

	l1 = listener(AF_INET, false);
	l2 = listener(AF_INET, false);
	ASSERT_LE(0, l1);
	ASSERT_LE(0, l2);
	p1 = local_port(l1);
	ASSERT_EQ(0, filter_port(self->fd, p1));
	/* The listeners entered LISTEN before the filter: start after. */
	ASSERT_EQ(0, ioctl(self->fd, TCPTRACE_IOC_CLEAR));
	ASSERT_EQ(0, dev_stats(self->fd, self->info.nr_cpus, &before));

	c1 = connect_to(AF_INET, p1);
	c2 = connect_to(AF_INET, local_port(l2));
	ASSERT_LE(0, c1);
	ASSERT_LE(0, c2);
	s1 = accept(l1, NULL, NULL);
	s2 = accept(l2, NULL, NULL);
	ASSERT_LE(0, s1);
	ASSERT_LE(0, s2);
	id1 = sock_cookie(c1);
	id2 = sock_cookie(c2);
	ids[0] = id1;
	ids[1] = sock_cookie(s1);
	ASSERT_EQ(0, close_both(c1, s1));
	ASSERT_EQ(0, close_both(c2, s2));
	close(l2);

	/* The client closed first: TIME_WAIT, where the kprobes are. */
	ASSERT_EQ(0, trace_wait(self->fd, &self->t, ids, 1,
				self->info.hooks & TCPTRACE_HOOK_TW_ENTER ?
				TCPTRACE_TIME_WAIT : TCPTRACE_CLOSE));
	ASSERT_EQ(0, trace_wait(self->fd, &self->t, ids + 1, 1,
				TCPTRACE_CLOSE));
	/*
	 * The other connection closes at its own pace, which nothing here
	 * reads: wait for its last rejected transition to be counted.  With
	 * the SYN queue seen, each child has one more: its request.
	 */
	rq = !!(self->info.hooks & TCPTRACE_HOOK_REQUEST);
	for (end = now_ms() + WAIT_MS;;) {
		ASSERT_EQ(0, dev_stats(self->fd, self->info.nr_cpus, &after));
		if (after.filtered - before.filtered >= 11 + rq ||
		    now_ms() > end)
			break;
		usleep(50000);
	}
	for (k = 0; k < self->t.nr; k++) {
		const struct tcptrace_event *ev = &self->t.rec[k].ev;

		ASSERT_EQ(TCPTRACE_REC_STATE, self->t.rec[k].type);
		EXPECT_TRUE(ev->lport == p1 || ev->rport == p1);
		EXPECT_NE(id2, ev->sock_id);
	}
	EXPECT_EQ(10 + rq, self->t.nr);	/* client 5, child 5 (+ request) */
	/*
	 * c2 (5), s2 (5 + request), l2 leaving LISTEN (1): rejected, counted,
	 * not lost.
	 */
	EXPECT_EQ(11 + rq, after.filtered - before.filtered);
	EXPECT_EQ(0, after.lost - before.lost);
	close(l1);
}

TEST_F(dev, filter_states)
{
	uint16_t port = closed_port(AF_INET);
	struct tcptrace_filter f;
	uint64_t id;

	base_filter(&f);
	f.new_states = 1 << TCPTRACE_CLOSE;
	ASSERT_EQ(0, ioctl(self->fd, TCPTRACE_IOC_SET_FILTER, &f));
	id = refused_connect(port);
	ASSERT_EQ(0, trace_wait(self->fd, &self->t, &id, 1, TCPTRACE_CLOSE));
	ASSERT_EQ(1, self->t.nr);
	EXPECT_EQ(TCPTRACE_SYN_SENT, self->t.rec[0].ev.oldstate);
}

TEST_F(dev, clear)
{
	struct tcptrace_cpu_stats before, after;
	uint16_t port = closed_port(AF_INET);
	struct tcptrace_record rec;

	ASSERT_EQ(0, dev_stats(self->fd, self->info.nr_cpus, &before));
	ASSERT_NE(0, refused_connect(port));
	ASSERT_NE(0, refused_connect(port));
	ASSERT_EQ(0, ioctl(self->fd, TCPTRACE_IOC_CLEAR));
	EXPECT_EQ(-1, read(self->fd, &rec, sizeof(rec)));
	EXPECT_EQ(EAGAIN, errno);
	ASSERT_EQ(0, dev_stats(self->fd, self->info.nr_cpus, &after));
	EXPECT_EQ(4, after.discarded - before.discarded);
	EXPECT_EQ(after.recorded, after.delivered + after.discarded);
}

/* Refused connects, two records each, all on this CPU's buffer. */
static int make_records(uint16_t port, unsigned int nr_connects)
{
	unsigned int i;

	for (i = 0; i < nr_connects; i++)
		if (!refused_connect(port))
			return -1;
	return 0;
}

/*
 * Every read size from nothing to five records and a byte: below one
 * record EINVAL and nothing consumed, else whole records only.
 */
TEST_F(dev, every_read_size)
{
	const size_t max = 5 * REC_SIZE;
	uint16_t port = closed_port(AF_INET);
	char *buf = malloc(max + 1);
	size_t size, got = 0, want = 0;
	ssize_t n;

	ASSERT_NE(NULL, buf);
	if (self->info.buffer_records < 2048)
		SKIP(free(buf); return, "wants a buffer of 2048 records");
	ASSERT_EQ(0, pin_cpu(0));
	ASSERT_EQ(0, filter_port(self->fd, port));
	/* The sum over sizes of size / REC_SIZE is 1290: make 1400. */
	ASSERT_EQ(0, make_records(port, 700));
	for (size = 0; size <= max + 1; size++) {
		n = read(self->fd, buf, size);
		if (size < REC_SIZE) {
			EXPECT_EQ(-1, n) TH_LOG("size %zu", size);
			EXPECT_EQ(EINVAL, errno);
			continue;
		}
		EXPECT_EQ(size / REC_SIZE * REC_SIZE, n) TH_LOG("size %zu", size);
		if (n > 0)
			got += n / REC_SIZE;
		want += size / REC_SIZE;
	}
	EXPECT_EQ(want, got);
	/* What is left is the rest of the 1400, not one record more or less. */
	ASSERT_LE(0, trace_read(self->fd, &self->t));
	EXPECT_EQ(1400 - got, self->t.nr);
	free(buf);
}

/* Unaligned buffers work; a buffer that ends in a hole takes what fits. */
TEST_F(dev, user_buffers)
{
	const long page = sysconf(_SC_PAGESIZE);
	uint16_t port = closed_port(AF_INET);
	struct tcptrace_record a, b, *rec;
	char *map, *buf;
	int i;

	ASSERT_EQ(0, pin_cpu(0));
	ASSERT_EQ(0, filter_port(self->fd, port));
	ASSERT_EQ(0, make_records(port, 4));		/* 8 records */

	buf = malloc(3 * REC_SIZE + 8);
	ASSERT_NE(NULL, buf);
	for (i = 1; i < 8; i += 2) {			/* odd addresses */
		ASSERT_EQ(REC_SIZE, read(self->fd, buf + i, REC_SIZE));
		memcpy(&a, buf + i, sizeof(a));
		EXPECT_EQ(TCPTRACE_REC_STATE, a.type);
		EXPECT_EQ(port, a.ev.rport);
	}
	free(buf);

	/* Two pages, the second unmapped: one record fits before the hole. */
	map = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, map);
	ASSERT_EQ(0, munmap(map + page, page));
	rec = (struct tcptrace_record *)(map + page - REC_SIZE);
	ASSERT_EQ(REC_SIZE, read(self->fd, rec, 2 * REC_SIZE));
	a = *rec;
	/* Starting in the hole: EFAULT, and nothing is lost. */
	EXPECT_EQ(-1, read(self->fd, map + page, REC_SIZE));
	EXPECT_EQ(EFAULT, errno);
	ASSERT_EQ(REC_SIZE, read(self->fd, &b, REC_SIZE));
	/* a and b are the two records of one connect, in order. */
	EXPECT_EQ(a.ev.sock_id, b.ev.sock_id);
	EXPECT_EQ(TCPTRACE_SYN_SENT, a.ev.newstate);
	EXPECT_EQ(TCPTRACE_CLOSE, b.ev.newstate);
	ASSERT_EQ(0, munmap(map, page));
	ASSERT_LE(0, trace_read(self->fd, &self->t));
	EXPECT_EQ(2, self->t.nr);
}

/* Every ioctl with a NULL, a short and a garbage argument. */
TEST_F(dev, ioctl_arguments)
{
	const long page = sysconf(_SC_PAGESIZE);
	const unsigned long cmds[] = {
		TCPTRACE_IOC_INFO, TCPTRACE_IOC_STATS,
		TCPTRACE_IOC_GET_FILTER, TCPTRACE_IOC_SET_FILTER,
	};
	struct tcptrace_filter set = { .family = AF_INET6 }, got, junk;
	unsigned char *map;
	size_t i, j;

	ASSERT_EQ(0, ioctl(self->fd, TCPTRACE_IOC_SET_FILTER, &set));
	map = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, map);
	ASSERT_EQ(0, munmap(map + page, page));
	for (i = 0; i < ARRAY_SIZE(cmds); i++) {
		EXPECT_EQ(-1, ioctl(self->fd, cmds[i], NULL)) TH_LOG("%zu", i);
		EXPECT_EQ(EFAULT, errno);
		/* Four bytes before the hole: too short for any of them. */
		EXPECT_EQ(-1, ioctl(self->fd, cmds[i], map + page - 4))
			TH_LOG("%zu", i);
		EXPECT_EQ(EFAULT, errno);
	}
	/* Garbage filters, reserved bytes set so none can be valid. */
	srand(1);
	for (j = 0; j < 200; j++) {
		for (i = 0; i < sizeof(junk); i++)
			((unsigned char *)&junk)[i] = rand();
		junk.reserved[0] |= 1;
		EXPECT_EQ(-1, ioctl(self->fd, TCPTRACE_IOC_SET_FILTER, &junk));
		EXPECT_EQ(EINVAL, errno);
	}
	ASSERT_EQ(0, ioctl(self->fd, TCPTRACE_IOC_GET_FILTER, &got));
	EXPECT_EQ(0, memcmp(&set, &got, sizeof(set)));
	/* Unknown commands, whatever their size and direction. */
	EXPECT_EQ(-1, ioctl(self->fd, _IOWR(TCPTRACE_IOC_MAGIC, 0x06, int), map));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->fd, _IOR(TCPTRACE_IOC_MAGIC, 0x01, int), map));
	EXPECT_EQ(ENOTTY, errno);
	ASSERT_EQ(0, munmap(map, page));
}

/* rmmod is refused while a reader sleeps in poll(), which then still works. */
TEST_F(dev, rmmod_while_polling)
{
	uint16_t port = closed_port(AF_INET);
	char wchan[64] = "", path[64];
	int status, fd, i;
	pid_t pid;
	FILE *f;

	close(self->fd);
	self->fd = -1;
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct pollfd pfd = { .events = POLLIN };

		pfd.fd = open(TCPTRACE_DEVICE, O_RDONLY | O_NONBLOCK);
		if (pfd.fd < 0 || dev_reset(pfd.fd))
			_exit(2);
		/* Woken by the record made after the rmmod attempt. */
		_exit(poll(&pfd, 1, WAIT_MS) == 1 && pfd.revents == POLLIN ?
		      0 : 1);
	}
	/* Wait until it sleeps in poll. */
	snprintf(path, sizeof(path), "/proc/%d/wchan", pid);
	for (i = 0; i < 100; i++) {
		f = fopen(path, "r");
		if (f) {
			if (!fgets(wchan, sizeof(wchan), f))
				wchan[0] = '\0';
			fclose(f);
		}
		if (strstr(wchan, "poll"))
			break;
		usleep(50000);
	}
	EXPECT_NE(NULL, strstr(wchan, "poll")) TH_LOG("wchan %s", wchan);
	EXPECT_NE(0, system("rmmod tcptrace 2>/dev/null"));
	fd = open(TCPTRACE_DEVICE, O_RDONLY);	/* still there, still busy */
	EXPECT_EQ(-1, fd);
	EXPECT_EQ(EBUSY, errno);
	ASSERT_NE(0, refused_connect(port));
	ASSERT_LT(0, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	self->fd = open_dev();
	ASSERT_LE(0, self->fd);
}

/* No write(), no mmap(): clear errors, not surprises. */
TEST_F(dev, no_write_no_mmap)
{
	char byte = 0;
	void *p;
	int fd;

	close(self->fd);
	self->fd = open(TCPTRACE_DEVICE, O_RDWR);
	ASSERT_LE(0, self->fd);
	EXPECT_EQ(-1, write(self->fd, &byte, 1));
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, self->fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(ENODEV, errno);
	close(self->fd);
	fd = open(TCPTRACE_DEVICE, O_RDONLY | O_NONBLOCK);
	self->fd = fd;
	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, write(fd, &byte, 1));
	EXPECT_EQ(EBADF, errno);
}

/* Many processes open at once: exactly one gets the device. */
TEST_F(dev, open_race)
{
	const int nr = 8;
	int go[2], done[2], i, status, winners = 0;
	char c;

	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(done));
	for (i = 0; i < nr; i++) {
		if (fork() == 0) {
			int fd;

			close(go[1]);
			if (read(go[0], &c, 1) != 0)	/* wait for the start */
				_exit(3);
			fd = open(TCPTRACE_DEVICE, O_RDONLY);
			if (fd < 0)
				_exit(errno == EBUSY ? 1 : 2);
			/* Hold it until all have tried. */
			close(done[1]);
			if (read(done[0], &c, 1) < 0)
				_exit(3);
			close(fd);
			_exit(0);
		}
	}
	close(go[0]);
	close(go[1]);			/* start */
	close(done[0]);
	for (i = 0; i < nr; i++) {
		pid_t pid = wait(&status);

		ASSERT_LT(0, pid);
		ASSERT_TRUE(WIFEXITED(status));
		if (i == nr - 2)
			close(done[1]);	/* all but one are back: let it go */
		if (WEXITSTATUS(status) == 0)
			winners++;
		else
			EXPECT_EQ(1, WEXITSTATUS(status));
	}
	EXPECT_EQ(1, winners);
	self->fd = open_dev();
	ASSERT_LE(0, self->fd);
}

/* Only root may open it: the mode is 0600 and nobody has no capability. */
TEST_F(dev, unprivileged)
{
	struct stat st;
	pid_t pid;
	int status;

	ASSERT_EQ(0, stat(TCPTRACE_DEVICE, &st));
	EXPECT_EQ(0600, st.st_mode & 07777);
	EXPECT_EQ(0, st.st_uid);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (setgid(65534) || setuid(65534))
			_exit(3);
		if (open(TCPTRACE_DEVICE, O_RDONLY) >= 0)
			_exit(1);
		_exit(errno == EACCES ? 0 : 2);
	}
	ASSERT_LT(0, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

/* Bring up lo of this network namespace. */
/*
 * The device is a host-wide view: a reader in another network namespace
 * sees every namespace's transitions, each with its namespace, and can
 * narrow them with the filter.
 */
TEST_F(dev, other_netns)
{
	struct tcptrace_filter f = {};
	struct stat here, there;
	uint16_t port;
	uint64_t id;
	pid_t pid;
	int status;

	/* Every namespace, but not what timewait sockets leave behind. */
	f.flags = TCPTRACE_FILTER_NO_EVENTS;
	f.old_states = ~(1u << TCPTRACE_TIME_WAIT) &
		       ((1u << TCPTRACE_STATE_MAX) - 2);
	ASSERT_EQ(0, ioctl(self->fd, TCPTRACE_IOC_SET_FILTER, &f));
	ASSERT_EQ(0, stat("/proc/self/ns/net", &here));
	port = closed_port(AF_INET);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* In a namespace of its own, with lo up, make one record. */
		if (unshare(CLONE_NEWNET) || lo_up())
			_exit(3);
		_exit(refused_connect(closed_port(AF_INET)) ? 0 : 1);
	}
	ASSERT_LT(0, waitpid(pid, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));
	id = refused_connect(port);
	ASSERT_NE(0, id);
	ASSERT_EQ(0, trace_wait(self->fd, &self->t, &id, 1, TCPTRACE_CLOSE));
	ASSERT_EQ(4, self->t.nr);
	there.st_ino = self->t.rec[0].netns;
	EXPECT_NE(here.st_ino, there.st_ino);
	EXPECT_EQ(there.st_ino, self->t.rec[1].netns);
	EXPECT_EQ(here.st_ino, self->t.rec[2].netns);

	/* The filter keeps one namespace. */
	f.netns = here.st_ino;
	ASSERT_EQ(0, ioctl(self->fd, TCPTRACE_IOC_SET_FILTER, &f));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (unshare(CLONE_NEWNET) || lo_up())
			_exit(3);
		_exit(refused_connect(closed_port(AF_INET)) ? 0 : 1);
	}
	ASSERT_LT(0, waitpid(pid, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));
	id = refused_connect(port);
	ASSERT_EQ(0, trace_wait(self->fd, &self->t, &id, 1, TCPTRACE_CLOSE));
	EXPECT_EQ(6, self->t.nr);
	EXPECT_EQ(here.st_ino, self->t.rec[4].netns);
	EXPECT_EQ(here.st_ino, self->t.rec[5].netns);
}

/* TIME_WAIT and the causes of transitions (module/timewait.c, probe.c). */

/*
 * The first record of that type and those states, of socket @id (0: any)
 * and from remote port @rport (-1: any); NULL if there is none.
 */
static const struct tcptrace_record *find_match(const struct trace *t,
						uint64_t id, int rport,
						int type, int oldstate,
						int newstate)
{
	size_t i;

	for (i = 0; i < t->nr; i++) {
		const struct tcptrace_record *r = &t->rec[i];

		if (r->type == type && (!id || r->ev.sock_id == id) &&
		    (rport < 0 || r->ev.rport == rport) &&
		    r->ev.oldstate == oldstate && r->ev.newstate == newstate)
			return r;
	}
	return NULL;
}

static const struct tcptrace_record *find_rec(const struct trace *t,
					      uint64_t id, int type,
					      int oldstate, int newstate)
{
	return find_match(t, id, -1, type, oldstate, newstate);
}

/* Read until that record is there, or @ms have passed. */
static const struct tcptrace_record *wait_rec(int fd, struct trace *t,
					      uint64_t id, int type,
					      int oldstate, int newstate,
					      unsigned int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint64_t end = now_ms() + ms;
	const struct tcptrace_record *r;

	for (;;) {
		if (trace_read(fd, t) < 0)
			return NULL;
		r = find_rec(t, id, type, oldstate, newstate);
		if (r || now_ms() > end)
			return r;
		poll(&pfd, 1, 100);
	}
}

static int write_sysctl(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY), ret = -1;

	if (fd < 0)
		return -1;
	if (write(fd, value, strlen(value)) == (ssize_t)strlen(value))
		ret = 0;
	close(fd);
	return ret;
}

/*
 * A loopback IPv4 connection to @port from local port @lport (0: any), with
 * SO_REUSEADDR, so that a port a timewait socket holds can be bound again.
 * Return: the socket, or -1 with errno set.
 */
static int connect_from(uint16_t lport, uint16_t port)
{
	struct sockaddr_storage ss;
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1, err;
	socklen_t len;

	if (fd < 0)
		return -1;
	len = loopback(AF_INET, false, lport, &ss);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&ss, len))
		goto err;
	len = loopback(AF_INET, false, port, &ss);
	if (connect(fd, (struct sockaddr *)&ss, len))
		goto err;
	return fd;
err:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

/* Everything this test's namespace records, event records included. */
static int filter_events(int fd)
{
	struct tcptrace_filter f;

	base_filter(&f);
	f.flags = 0;
	return ioctl(fd, TCPTRACE_IOC_SET_FILTER, &f);
}

/* close_both() on C and the child @lfd accepts; returns their cookies. */
static int graceful_close(int lfd, int cfd, uint64_t *cid, uint64_t *sid)
{
	int sfd = accept(lfd, NULL, NULL);

	if (sfd < 0)
		return -1;
	*cid = sock_cookie(cfd);
	*sid = sock_cookie(sfd);
	return close_both(cfd, sfd);
}

#define NEED_TW_HOOKS(self)						\
do {									\
	if (!((self)->info.hooks & TCPTRACE_HOOK_TW_EXIT))		\
		SKIP(return, "no TIME_WAIT hooks (kprobes) here");	\
} while (0)

#define CAUSE(c)	((c) << TCPTRACE_F_CAUSE_SHIFT)

/*
 * An orphan in FIN_WAIT2 whose peer never closes: the kernel moves it into
 * a timewait socket in substate FIN_WAIT2, which lives tcp_fin_timeout.
 * When the peer closes at last, its FIN finds no socket: a reset answers.
 */
TEST_F(dev, timewait_fin_wait2)
{
	const struct tcptrace_record *enter, *leave, *rst;
	int lfd, cfd, sfd;
	uint64_t cid, sid, d;

	NEED_TW_HOOKS(self);
	ASSERT_EQ(0, filter_events(self->fd));
	ASSERT_EQ(0, write_sysctl("/proc/sys/net/ipv4/tcp_fin_timeout", "1"));
	ASSERT_EQ(0, loopback_conn(&lfd, &cfd, &sfd, &cid, &sid))
		TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, close(cfd));

	leave = wait_rec(self->fd, &self->t, cid, TCPTRACE_REC_STATE,
			 TCPTRACE_TIME_WAIT, TCPTRACE_CLOSE, WAIT_MS);
	ASSERT_NE(NULL, leave);
	enter = find_rec(&self->t, cid, TCPTRACE_REC_STATE,
			 TCPTRACE_FIN_WAIT2, TCPTRACE_TIME_WAIT);
	ASSERT_NE(NULL, enter);
	EXPECT_EQ(TCPTRACE_F_TW_FIN_WAIT2, enter->ev.flags);
	EXPECT_EQ(TCPTRACE_F_TW_FIN_WAIT2 | CAUSE(TCPTRACE_CAUSE_TW_EXPIRED),
		  leave->ev.flags);
	EXPECT_EQ(TCPTRACE_CTX_SOFTIRQ, leave->ctx);
	/* tcp_fin_timeout, 1 s; the timer wheel may add a little. */
	d = leave->ts_ns - enter->ts_ns;
	EXPECT_LE(990000000ULL, d) TH_LOG("%llu ns", (unsigned long long)d);
	EXPECT_GE(5000000000ULL, d) TH_LOG("%llu ns", (unsigned long long)d);
	/* The same connection: tuple, namespace, and sequence space. */
	EXPECT_EQ(enter->netns, leave->netns);
	EXPECT_EQ(enter->ev.family, leave->ev.family);
	EXPECT_EQ(enter->ev.lport, leave->ev.lport);
	EXPECT_EQ(enter->ev.rport, leave->ev.rport);
	EXPECT_EQ(0, memcmp(enter->ev.laddr, leave->ev.laddr, 16));
	EXPECT_EQ(0, memcmp(enter->ev.raddr, leave->ev.raddr, 16));
	EXPECT_EQ(enter->ev.snd_nxt, leave->ev.snd_nxt);
	EXPECT_EQ(enter->ev.snd_una, enter->ev.snd_nxt);	/* FIN acked */
	EXPECT_EQ(enter->ev.rcv_nxt, leave->ev.rcv_nxt);

	ASSERT_EQ(0, close(sfd));
	ASSERT_NE(NULL, wait_rec(self->fd, &self->t, sid, TCPTRACE_REC_STATE,
				 TCPTRACE_LAST_ACK, TCPTRACE_CLOSE, WAIT_MS));
	rst = find_rec(&self->t, sid, TCPTRACE_REC_EVENT, TCPTRACE_LAST_ACK,
		       TCPTRACE_LAST_ACK);
	ASSERT_NE(NULL, rst);
	EXPECT_EQ(CAUSE(TCPTRACE_CAUSE_RST_RECEIVED), rst->ev.flags);
	close(lfd);
}

/*
 * C closes while S still holds its end: C's connection goes to a timewait
 * socket in its FIN_WAIT2 substate.  S's FIN takes it to TIME_WAIT proper.
 */
TEST_F(dev, timewait_fin_arrives)
{
	const struct tcptrace_record *enter, *fin, *last;
	uint64_t cid, sid;
	int lfd, cfd, sfd;

	NEED_TW_HOOKS(self);
	ASSERT_EQ(0, loopback_conn(&lfd, &cfd, &sfd, &cid, &sid))
		TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, close(cfd));
	enter = wait_rec(self->fd, &self->t, cid, TCPTRACE_REC_STATE,
			 TCPTRACE_FIN_WAIT2, TCPTRACE_TIME_WAIT, WAIT_MS);
	ASSERT_NE(NULL, enter);
	EXPECT_EQ(TCPTRACE_F_TW_FIN_WAIT2, enter->ev.flags);

	ASSERT_EQ(0, close(sfd));
	fin = wait_rec(self->fd, &self->t, cid, TCPTRACE_REC_STATE,
		       TCPTRACE_TIME_WAIT, TCPTRACE_TIME_WAIT, WAIT_MS);
	ASSERT_NE(NULL, fin);
	EXPECT_EQ(0, fin->ev.flags);
	EXPECT_EQ(TCPTRACE_CTX_SOFTIRQ, fin->ctx);
	EXPECT_EQ(enter->ev.rcv_nxt + 1, fin->ev.rcv_nxt);	/* the FIN */
	EXPECT_EQ(enter->ev.snd_nxt, fin->ev.snd_nxt);
	EXPECT_EQ(enter->ev.lport, fin->ev.lport);
	EXPECT_EQ(enter->ev.rport, fin->ev.rport);
	/* S gets the ACK of its FIN, from the timewait socket. */
	last = wait_rec(self->fd, &self->t, sid, TCPTRACE_REC_STATE,
			TCPTRACE_LAST_ACK, TCPTRACE_CLOSE, WAIT_MS);
	ASSERT_NE(NULL, last);
	EXPECT_EQ(fin->ev.rcv_nxt, last->ev.snd_una);
	EXPECT_LE(fin->ts_ns, last->ts_ns);
	close(lfd);
}

/* A real TIME_WAIT: 2MSL, which Linux makes 60 s. */
TEST_F_TIMEOUT(dev, timewait_expires, 120)
{
	const struct tcptrace_record *enter, *leave;
	uint64_t cid, sid, d;
	int lfd, cfd;

	NEED_TW_HOOKS(self);
	/* A minute is spent once: with the default buffer. */
	if (self->info.buffer_records < 1024)
		SKIP(return, "waits 60 s: run with the default buffer only");
	lfd = listener(AF_INET6, false);
	ASSERT_LE(0, lfd);
	cfd = connect_to(AF_INET6, local_port(lfd));
	ASSERT_LE(0, cfd);
	ASSERT_EQ(0, graceful_close(lfd, cfd, &cid, &sid));

	enter = wait_rec(self->fd, &self->t, cid, TCPTRACE_REC_STATE,
			 TCPTRACE_FIN_WAIT2, TCPTRACE_TIME_WAIT, WAIT_MS);
	ASSERT_NE(NULL, enter);
	EXPECT_EQ(0, enter->ev.flags);		/* substate TIME_WAIT */
	EXPECT_NE(NULL, wait_rec(self->fd, &self->t, sid, TCPTRACE_REC_STATE,
				 TCPTRACE_LAST_ACK, TCPTRACE_CLOSE, WAIT_MS));

	leave = wait_rec(self->fd, &self->t, cid, TCPTRACE_REC_STATE,
			 TCPTRACE_TIME_WAIT, TCPTRACE_CLOSE, 90000);
	ASSERT_NE(NULL, leave);
	EXPECT_EQ(CAUSE(TCPTRACE_CAUSE_TW_EXPIRED), leave->ev.flags);
	EXPECT_EQ(AF_INET6, leave->ev.family);
	EXPECT_EQ(enter->ev.lport, leave->ev.lport);
	EXPECT_EQ(0, memcmp(enter->ev.raddr, leave->ev.raddr, 16));
	/* Both FINs are in the timewait socket's sequence space. */
	EXPECT_EQ(enter->ev.snd_nxt, leave->ev.snd_nxt);
	EXPECT_EQ(enter->ev.rcv_nxt, leave->ev.rcv_nxt);
	d = leave->ts_ns - enter->ts_ns;
	TH_LOG("TIME_WAIT lasted %llu ms", (unsigned long long)d / 1000000);
	EXPECT_LE(60000000000ULL, d);
	EXPECT_GE(75000000000ULL, d);
	close(lfd);
}

/* tcp_tw_reuse: a connect() on the same 4-tuple takes the timewait's place. */
TEST_F(dev, timewait_reused)
{
	const struct tcptrace_record *leave;
	uint64_t cid, sid;
	uint16_t port, cport;
	int lfd, cfd;

	NEED_TW_HOOKS(self);
	ASSERT_EQ(0, write_sysctl("/proc/sys/net/ipv4/tcp_tw_reuse", "1"));
	lfd = listener(AF_INET, false);
	ASSERT_LE(0, lfd);
	port = local_port(lfd);
	cfd = connect_from(0, port);
	ASSERT_LE(0, cfd) TH_LOG("connect: %s", strerror(errno));
	cport = local_port(cfd);
	ASSERT_EQ(0, graceful_close(lfd, cfd, &cid, &sid));
	ASSERT_NE(NULL, wait_rec(self->fd, &self->t, cid, TCPTRACE_REC_STATE,
				 TCPTRACE_FIN_WAIT2, TCPTRACE_TIME_WAIT,
				 WAIT_MS));

	/* Reuse needs the timewait's last timestamp a second old. */
	sleep(2);
	cfd = connect_from(cport, port);
	ASSERT_LE(0, cfd) TH_LOG("connect: %s", strerror(errno));

	leave = wait_rec(self->fd, &self->t, cid, TCPTRACE_REC_STATE,
			 TCPTRACE_TIME_WAIT, TCPTRACE_CLOSE, WAIT_MS);
	ASSERT_NE(NULL, leave);
	EXPECT_EQ(CAUSE(TCPTRACE_CAUSE_TW_REUSED), leave->ev.flags);
	EXPECT_EQ(TCPTRACE_CTX_TASK, leave->ctx);
	EXPECT_EQ(getpid(), leave->ev.pid);
	EXPECT_EQ(cport, leave->ev.lport);
	close(cfd);
	close(lfd);
}

/* A new SYN from the peer, on the 4-tuple of a TIME_WAIT, takes its place. */
TEST_F(dev, timewait_syn_reuse)
{
	const struct tcptrace_record *leave;
	uint64_t cid, sid;
	uint16_t port, cport;
	int lfd, cfd, sfd;
	char b;

	NEED_TW_HOOKS(self);
	lfd = listener(AF_INET, false);
	ASSERT_LE(0, lfd);
	port = local_port(lfd);
	cfd = connect_from(0, port);
	ASSERT_LE(0, cfd) TH_LOG("connect: %s", strerror(errno));
	cport = local_port(cfd);
	sfd = accept(lfd, NULL, NULL);
	ASSERT_LE(0, sfd);
	cid = sock_cookie(cfd);
	sid = sock_cookie(sfd);

	/* The server closes first: its end goes to TIME_WAIT. */
	ASSERT_EQ(0, shutdown(sfd, SHUT_WR));
	ASSERT_EQ(0, recv(cfd, &b, 1, 0));
	ASSERT_EQ(0, close(cfd));
	ASSERT_EQ(0, recv(sfd, &b, 1, 0));
	ASSERT_EQ(0, close(sfd));
	ASSERT_NE(NULL, wait_rec(self->fd, &self->t, sid, TCPTRACE_REC_STATE,
				 TCPTRACE_FIN_WAIT2, TCPTRACE_TIME_WAIT,
				 WAIT_MS));
	ASSERT_NE(NULL, wait_rec(self->fd, &self->t, cid, TCPTRACE_REC_STATE,
				 TCPTRACE_LAST_ACK, TCPTRACE_CLOSE, WAIT_MS));

	/* The client comes back from the same port. */
	cfd = connect_from(cport, port);
	ASSERT_LE(0, cfd) TH_LOG("connect: %s", strerror(errno));
	leave = wait_rec(self->fd, &self->t, sid, TCPTRACE_REC_STATE,
			 TCPTRACE_TIME_WAIT, TCPTRACE_CLOSE, WAIT_MS);
	ASSERT_NE(NULL, leave);
	EXPECT_EQ(CAUSE(TCPTRACE_CAUSE_TW_SYN), leave->ev.flags);
	EXPECT_EQ(port, leave->ev.lport);
	EXPECT_EQ(cport, leave->ev.rport);
	sfd = accept(lfd, NULL, NULL);
	EXPECT_LE(0, sfd);
	if (sfd >= 0)
		close(sfd);
	close(cfd);
	close(lfd);
}

static uint16_t csum_fold32(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

/*
 * A bare TCP segment from @saddr:@sport to @daddr:@dport (IPv4, host byte
 * order), with sequence number @seq and flags @flags (TH_SYN, TH_RST): what
 * a peer that lost its state, or a SYN flood, would send.  Raw socket, so
 * the TCP checksum is ours to make.
 */
static int send_seg(uint32_t saddr, uint16_t sport, uint32_t daddr,
		    uint16_t dport, uint32_t seq, uint8_t flags)
{
	struct {
		struct iphdr ip;
		struct tcphdr tcp;
	} pkt;
	struct sockaddr_in dst = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(daddr),
	};
	uint16_t *w = (uint16_t *)&pkt.tcp;
	uint32_t sum;
	size_t i;
	int fd, ret;

	memset(&pkt, 0, sizeof(pkt));
	pkt.ip.version = 4;
	pkt.ip.ihl = 5;
	pkt.ip.ttl = 64;
	pkt.ip.protocol = IPPROTO_TCP;
	pkt.ip.tot_len = htons(sizeof(pkt));
	pkt.ip.saddr = htonl(saddr);
	pkt.ip.daddr = htonl(daddr);
	pkt.tcp.source = htons(sport);
	pkt.tcp.dest = htons(dport);
	pkt.tcp.seq = htonl(seq);
	pkt.tcp.doff = 5;
	pkt.tcp.syn = !!(flags & TH_SYN);
	pkt.tcp.rst = !!(flags & TH_RST);
	pkt.tcp.window = htons(65535);
	/* Pseudo-header: addresses, protocol, TCP length; then the header. */
	sum = (saddr >> 16) + (saddr & 0xffff) + (daddr >> 16) + (daddr & 0xffff);
	sum += IPPROTO_TCP + sizeof(pkt.tcp);
	for (i = 0; i < sizeof(pkt.tcp) / 2; i++)
		sum += ntohs(w[i]);
	pkt.tcp.check = htons(csum_fold32(sum));

	fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (fd < 0)
		return -1;
	ret = sendto(fd, &pkt, sizeof(pkt), 0, (struct sockaddr *)&dst,
		     sizeof(dst)) == sizeof(pkt) ? 0 : -1;
	close(fd);
	return ret;
}

static int send_rst(uint16_t sport, uint16_t dport, uint32_t seq)
{
	return send_seg(INADDR_LOOPBACK, sport, INADDR_LOOPBACK, dport, seq,
			TH_RST);
}

/* "TIME_WAIT assassination": an in-window reset kills a timewait socket. */
TEST_F(dev, timewait_reset)
{
	const struct tcptrace_record *enter, *leave;
	uint64_t cid, sid;
	uint16_t port;
	int lfd, cfd;

	NEED_TW_HOOKS(self);
	lfd = listener(AF_INET, false);
	ASSERT_LE(0, lfd);
	port = local_port(lfd);
	cfd = connect_to(AF_INET, port);
	ASSERT_LE(0, cfd);
	ASSERT_EQ(0, graceful_close(lfd, cfd, &cid, &sid));
	enter = wait_rec(self->fd, &self->t, cid, TCPTRACE_REC_STATE,
			 TCPTRACE_FIN_WAIT2, TCPTRACE_TIME_WAIT, WAIT_MS);
	ASSERT_NE(NULL, enter);
	/* In window: exactly the next sequence number it expects. */
	ASSERT_EQ(0, send_rst(port, enter->ev.lport, enter->ev.rcv_nxt))
		TH_LOG("raw socket: %s", strerror(errno));
	leave = wait_rec(self->fd, &self->t, cid, TCPTRACE_REC_STATE,
			 TCPTRACE_TIME_WAIT, TCPTRACE_CLOSE, WAIT_MS);
	ASSERT_NE(NULL, leave);
	EXPECT_EQ(CAUSE(TCPTRACE_CAUSE_TW_RST_RECEIVED), leave->ev.flags);
	EXPECT_EQ(TCPTRACE_CTX_SOFTIRQ, leave->ctx);
	close(lfd);
}

/* A namespace torn down takes its timewait sockets with it. */
TEST_F(dev, timewait_netns_gone)
{
	const struct tcptrace_record *enter, *leave;
	struct tcptrace_filter f = { .flags = TCPTRACE_FILTER_NO_EVENTS };
	uint64_t ids[2];
	int pfd[2], status;
	pid_t pid;

	NEED_TW_HOOKS(self);
	ASSERT_EQ(0, ioctl(self->fd, TCPTRACE_IOC_SET_FILTER, &f));
	ASSERT_EQ(0, pipe(pfd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int lfd, cfd;

		if (unshare(CLONE_NEWNET) || lo_up())
			_exit(3);
		lfd = listener(AF_INET, false);
		cfd = lfd < 0 ? -1 : connect_to(AF_INET, local_port(lfd));
		if (cfd < 0 || graceful_close(lfd, cfd, &ids[0], &ids[1]) ||
		    write(pfd[1], ids, sizeof(ids)) != sizeof(ids))
			_exit(1);
		_exit(0);
	}
	ASSERT_EQ(sizeof(ids), read(pfd[0], ids, sizeof(ids)));
	ASSERT_LT(0, waitpid(pid, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));
	enter = wait_rec(self->fd, &self->t, ids[0], TCPTRACE_REC_STATE,
			 TCPTRACE_FIN_WAIT2, TCPTRACE_TIME_WAIT, WAIT_MS);
	ASSERT_NE(NULL, enter);
	leave = wait_rec(self->fd, &self->t, ids[0], TCPTRACE_REC_STATE,
			 TCPTRACE_TIME_WAIT, TCPTRACE_CLOSE, 30000);
	ASSERT_NE(NULL, leave);
	EXPECT_EQ(CAUSE(TCPTRACE_CAUSE_TW_NETNS), leave->ev.flags);
	EXPECT_EQ(enter->netns, leave->netns);
	EXPECT_NE(test_netns, leave->netns);
	close(pfd[0]);
	close(pfd[1]);
}

/* An abort (SO_LINGER 0): a reset sent by one end, received by the other. */
TEST_F(dev, reset_causes)
{
	const struct tcptrace_record *sent, *got;
	struct linger lin = { .l_onoff = 1, .l_linger = 0 };
	uint64_t cid, sid;
	int lfd, cfd, sfd;

	if (!(self->info.hooks & TCPTRACE_HOOK_RESET))
		SKIP(return, "no reset tracepoints here");
	ASSERT_EQ(0, filter_events(self->fd));
	ASSERT_EQ(0, loopback_conn(&lfd, &cfd, &sfd, &cid, &sid))
		TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lin,
				sizeof(lin)));
	ASSERT_EQ(0, close(cfd));
	ASSERT_NE(NULL, wait_rec(self->fd, &self->t, sid, TCPTRACE_REC_STATE,
				 TCPTRACE_ESTABLISHED, TCPTRACE_CLOSE,
				 WAIT_MS));
	/* The abort closes C, then sends the reset. */
	sent = find_rec(&self->t, cid, TCPTRACE_REC_EVENT, TCPTRACE_CLOSE,
			TCPTRACE_CLOSE);
	ASSERT_NE(NULL, sent);
	EXPECT_EQ(CAUSE(TCPTRACE_CAUSE_RST_SENT), sent->ev.flags);
	EXPECT_EQ(TCPTRACE_CTX_TASK, sent->ctx);
	EXPECT_EQ(getpid(), sent->ev.pid);
	EXPECT_NE(NULL, find_rec(&self->t, cid, TCPTRACE_REC_STATE,
				 TCPTRACE_ESTABLISHED, TCPTRACE_CLOSE));
	/* S gets it in ESTABLISHED, and closes. */
	got = find_rec(&self->t, sid, TCPTRACE_REC_EVENT, TCPTRACE_ESTABLISHED,
		       TCPTRACE_ESTABLISHED);
	ASSERT_NE(NULL, got);
	EXPECT_EQ(CAUSE(TCPTRACE_CAUSE_RST_RECEIVED), got->ev.flags);
	EXPECT_EQ(sent->ev.snd_nxt, got->ev.rcv_nxt);
	close(sfd);
	close(lfd);
}

/* The SYN queue (module/request.c). */

#define NEED_REQ_HOOKS(self)						\
do {									\
	if (!((self)->info.hooks & TCPTRACE_HOOK_REQUEST))		\
		SKIP(return, "no SYN queue hooks (kprobes) here");	\
} while (0)

#define SYNCOOKIES	"/proc/sys/net/ipv4/tcp_syncookies"

static size_t count_recs(const struct trace *t, int type, int oldstate,
			 int newstate, unsigned int cause)
{
	size_t i, n = 0;

	for (i = 0; i < t->nr; i++) {
		const struct tcptrace_record *r = &t->rec[i];

		if (r->type == type && r->ev.oldstate == oldstate &&
		    r->ev.newstate == newstate &&
		    TCPTRACE_CAUSE(r->ev.flags) == cause)
			n++;
	}
	return n;
}

/* The first record from remote port @rport of that kind, or NULL. */
static const struct tcptrace_record *find_rport(const struct trace *t,
						uint16_t rport, int type,
						int oldstate, int newstate)
{
	return find_match(t, 0, rport, type, oldstate, newstate);
}

/*
 * SYN cookies only (tcp_syncookies=2): no request is queued; the SYN is
 * answered with a cookie, and the final ACK makes the child of it.
 */
TEST_F(dev, syn_cookies)
{
	const struct tcptrace_record *cookie, *child, *est;
	uint64_t ids[2];
	int lfd, cfd, sfd;

	NEED_REQ_HOOKS(self);
	if (access(SYNCOOKIES, F_OK))
		SKIP(return, "no SYN cookies in this kernel");
	ASSERT_EQ(0, filter_events(self->fd));
	ASSERT_EQ(0, write_sysctl(SYNCOOKIES, "2"));
	ASSERT_EQ(0, loopback_conn(&lfd, &cfd, &sfd, &ids[0], &ids[1]))
		TH_LOG("%s", strerror(errno));
	est = wait_rec(self->fd, &self->t, ids[1], TCPTRACE_REC_STATE,
		       TCPTRACE_SYN_RECV, TCPTRACE_ESTABLISHED, WAIT_MS);
	ASSERT_NE(NULL, est);
	ASSERT_NE(NULL, wait_rec(self->fd, &self->t, ids[0],
				 TCPTRACE_REC_STATE, TCPTRACE_SYN_SENT,
				 TCPTRACE_ESTABLISHED, WAIT_MS));

	cookie = find_rport(&self->t, est->ev.rport, TCPTRACE_REC_EVENT,
			    TCPTRACE_NEW_SYN_RECV, TCPTRACE_NEW_SYN_RECV);
	ASSERT_NE(NULL, cookie);
	EXPECT_EQ(CAUSE(TCPTRACE_CAUSE_SYNCOOKIE), cookie->ev.flags);
	EXPECT_EQ(est->ev.lport, cookie->ev.lport);
	/* The cookie is the ISN y: seq=y ack=x+1, and the ACK acks y+1. */
	EXPECT_EQ(est->ev.snd_una, cookie->ev.snd_nxt);
	EXPECT_EQ(est->ev.rcv_nxt, cookie->ev.rcv_nxt);
	child = find_rec(&self->t, ids[1], TCPTRACE_REC_STATE,
			 TCPTRACE_LISTEN, TCPTRACE_SYN_RECV);
	ASSERT_NE(NULL, child);
	EXPECT_EQ(CAUSE(TCPTRACE_CAUSE_SYNCOOKIE) | TCPTRACE_F_ADDR_UNSET |
		  TCPTRACE_F_SEQ_UNSET, child->ev.flags);
	EXPECT_LT(cookie->ts_ns, child->ts_ns);
	/* Nothing was queued. */
	EXPECT_EQ(0, count_recs(&self->t, TCPTRACE_REC_STATE, TCPTRACE_LISTEN,
				TCPTRACE_NEW_SYN_RECV, 0));
	close(sfd);
	close(cfd);
	close(lfd);
}

/*
 * TCP Fast Open without cookies (tcp_fastopen=0x207): the SYN carries data,
 * and the listener makes the child at once, from a request never queued.
 */
TEST_F(dev, fastopen_child)
{
	const struct tcptrace_record *child, *est;
	struct sockaddr_storage ss;
	int lfd, cfd, sfd, qlen = 8;
	uint64_t id;
	socklen_t len;
	char b;

	NEED_REQ_HOOKS(self);
	if (write_sysctl("/proc/sys/net/ipv4/tcp_fastopen", "519"))
		SKIP(return, "no TCP Fast Open here");
	lfd = listener(AF_INET, false);
	ASSERT_LE(0, lfd);
	ASSERT_EQ(0, setsockopt(lfd, IPPROTO_TCP, TCP_FASTOPEN, &qlen,
				sizeof(qlen)));
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	ASSERT_LE(0, cfd);
	len = loopback(AF_INET, false, local_port(lfd), &ss);
	ASSERT_EQ(1, sendto(cfd, "x", 1, MSG_FASTOPEN, (struct sockaddr *)&ss,
			    len)) TH_LOG("sendto: %s", strerror(errno));
	sfd = accept(lfd, NULL, NULL);
	ASSERT_LE(0, sfd);
	ASSERT_EQ(1, recv(sfd, &b, 1, 0));
	id = sock_cookie(sfd);
	est = wait_rec(self->fd, &self->t, id, TCPTRACE_REC_STATE,
		       TCPTRACE_SYN_RECV, TCPTRACE_ESTABLISHED, WAIT_MS);
	ASSERT_NE(NULL, est);
	child = find_rec(&self->t, id, TCPTRACE_REC_STATE, TCPTRACE_LISTEN,
			 TCPTRACE_SYN_RECV);
	ASSERT_NE(NULL, child);
	EXPECT_EQ(CAUSE(TCPTRACE_CAUSE_FASTOPEN) | TCPTRACE_F_ADDR_UNSET |
		  TCPTRACE_F_SEQ_UNSET, child->ev.flags);
	/* Made at the SYN, before the handshake ended, with no request. */
	EXPECT_LT(child->ts_ns, est->ts_ns);
	EXPECT_EQ(0, count_recs(&self->t, TCPTRACE_REC_STATE, TCPTRACE_LISTEN,
				TCPTRACE_NEW_SYN_RECV, 0));
	close(sfd);
	close(cfd);
	close(lfd);
}

/* A SYN from a port nobody owns: the SYN-ACK draws a reset. */
TEST_F(dev, request_reset)
{
	const struct tcptrace_record *rq, *end;
	uint16_t port, sport = closed_port(AF_INET);
	uint64_t deadline;
	int lfd;

	NEED_REQ_HOOKS(self);
	lfd = listener(AF_INET, false);
	ASSERT_LE(0, lfd);
	port = local_port(lfd);
	ASSERT_EQ(0, send_seg(INADDR_LOOPBACK, sport, INADDR_LOOPBACK, port,
			      1000000, TH_SYN))
		TH_LOG("raw socket: %s", strerror(errno));
	for (deadline = now_ms() + WAIT_MS;; usleep(50000)) {
		ASSERT_LE(0, trace_read(self->fd, &self->t));
		rq = find_rport(&self->t, sport, TCPTRACE_REC_STATE,
				TCPTRACE_LISTEN, TCPTRACE_NEW_SYN_RECV);
		if (rq || now_ms() > deadline)
			break;
	}
	ASSERT_NE(NULL, rq);
	end = wait_rec(self->fd, &self->t, rq->ev.sock_id, TCPTRACE_REC_STATE,
		       TCPTRACE_NEW_SYN_RECV, TCPTRACE_CLOSE, WAIT_MS);
	ASSERT_NE(NULL, end) {
		TH_LOG("read: %s", strerror(errno));
		TRACE_DUMP(&self->t);
	}
	EXPECT_EQ(0, rq->ev.flags);
	EXPECT_EQ(port, rq->ev.lport);
	EXPECT_EQ(1000001, rq->ev.rcv_nxt);
	EXPECT_EQ(rq->ev.snd_una + 1, rq->ev.snd_nxt);
	EXPECT_NE(0, rq->ev.sock_id);
	EXPECT_EQ(CAUSE(TCPTRACE_CAUSE_RST_RECEIVED), end->ev.flags);
	EXPECT_EQ(TCPTRACE_CTX_SOFTIRQ, end->ctx);
	EXPECT_EQ(sport, end->ev.rport);
	EXPECT_EQ(rq->ev.snd_una, end->ev.snd_una);
	/* No child: nothing else has its id. */
	EXPECT_EQ(NULL, find_rec(&self->t, rq->ev.sock_id, TCPTRACE_REC_STATE,
				 TCPTRACE_NEW_SYN_RECV, TCPTRACE_SYN_RECV));
	close(lfd);
}

#define IP_PROG		"/usr/local/bin/ip"
#define FLOOD_SRC	0xc0000201	/* 192.0.2.1: nobody */
#define FLOOD_DST	0xc0000202	/* 192.0.2.2: the listener */
#define FLOOD_SYNS	8
#define FLOOD_BACKLOG	2
/* The queue is full when it holds more than the backlog. */
#define FLOOD_QUEUED	(FLOOD_BACKLOG + 1)

/*
 * A SYN flood against a listener with a backlog of 2: SYNs from an address
 * whose SYN-ACKs go out on a veth to a MAC nobody has, so no ACK and no reset
 * ever comes back.  The first three SYNs are queued as requests (the queue
 * is full when it holds more than the backlog), which send their SYN-ACK
 * again (tcp_synack_retries=1) and time out; the others are answered with
 * SYN cookies -- or dropped, by a kernel without them.
 */
TEST_F(dev, syn_flood)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(FLOOD_DST),
	};
	const struct tcptrace_record *r, *end;
	struct tcptrace_cpu_stats before, after;
	size_t i, nq, nc, nend = 0;
	uint64_t deadline;
	uint16_t port;
	bool cookies;
	int lfd;

	NEED_REQ_HOOKS(self);
	if (access(IP_PROG, X_OK))
		SKIP(return, "no %s (iproute2)", IP_PROG);
	ASSERT_EQ(0, filter_events(self->fd));
	/* Without SYN cookies, a SYN that finds the queue full is dropped. */
	cookies = !access(SYNCOOKIES, F_OK);
	if (cookies)
		ASSERT_EQ(0, write_sysctl(SYNCOOKIES, "1"));
	ASSERT_EQ(0, write_sysctl("/proc/sys/net/ipv4/tcp_synack_retries",
				  "1"));
	ASSERT_EQ(0, system(IP_PROG " link add tt0 type veth peer name tt1 && "
			    IP_PROG " addr add 192.0.2.2/24 dev tt0 && "
			    IP_PROG " link set tt0 up && "
			    IP_PROG " link set tt1 up && "
			    IP_PROG " neigh replace 192.0.2.1 lladdr 02:00:00:00:00:01 dev tt0 nud permanent"));
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	ASSERT_LE(0, lfd);
	ASSERT_EQ(0, bind(lfd, (struct sockaddr *)&sin, sizeof(sin)));
	ASSERT_EQ(0, listen(lfd, FLOOD_BACKLOG));
	port = local_port(lfd);
	ASSERT_EQ(0, dev_stats(self->fd, self->info.nr_cpus, &before));
	for (i = 0; i < FLOOD_SYNS; i++)
		ASSERT_EQ(0, send_seg(FLOOD_SRC, 40000 + i, FLOOD_DST, port,
				      i * 100000, TH_SYN));

	/* SYN-ACK at 0 s, again at 1 s, then 2 s more and the request is gone. */
	for (deadline = now_ms() + WAIT_MS; now_ms() < deadline;) {
		ASSERT_LE(0, trace_read(self->fd, &self->t));
		nend = count_recs(&self->t, TCPTRACE_REC_STATE,
				  TCPTRACE_NEW_SYN_RECV, TCPTRACE_CLOSE,
				  TCPTRACE_CAUSE_REQ_TIMEOUT);
		if (nend >= FLOOD_QUEUED)
			break;
		usleep(100000);
	}
	nq = count_recs(&self->t, TCPTRACE_REC_STATE, TCPTRACE_LISTEN,
			TCPTRACE_NEW_SYN_RECV, 0);
	nc = count_recs(&self->t, TCPTRACE_REC_EVENT, TCPTRACE_NEW_SYN_RECV,
			TCPTRACE_NEW_SYN_RECV, TCPTRACE_CAUSE_SYNCOOKIE);
	EXPECT_EQ(FLOOD_QUEUED, nq);
	EXPECT_EQ(cookies ? FLOOD_SYNS - FLOOD_QUEUED : 0, nc);
	EXPECT_EQ(FLOOD_QUEUED, nend);

	/* Each SYN, queued or answered with a cookie, seen once, as sent. */
	for (i = 0; i < FLOOD_SYNS; i++) {
		r = find_rport(&self->t, 40000 + i, TCPTRACE_REC_STATE,
			       TCPTRACE_LISTEN, TCPTRACE_NEW_SYN_RECV);
		if (!r)
			r = find_rport(&self->t, 40000 + i, TCPTRACE_REC_EVENT,
				       TCPTRACE_NEW_SYN_RECV,
				       TCPTRACE_NEW_SYN_RECV);
		if (!r && !cookies && i >= FLOOD_QUEUED)
			continue;	/* dropped, as the kernel says nothing */
		ASSERT_NE(NULL, r) TH_LOG("SYN %zu", i);
		EXPECT_EQ(i * 100000 + 1, r->ev.rcv_nxt);
		EXPECT_EQ(port, r->ev.lport);
		EXPECT_EQ(AF_INET, r->ev.family);
		EXPECT_EQ(0, memcmp(r->ev.raddr, "\xc0\x00\x02\x01", 4));
		EXPECT_EQ(0, memcmp(r->ev.laddr, "\xc0\x00\x02\x02", 4));
		if (r->type == TCPTRACE_REC_EVENT)
			continue;
		/* A queued one: its SYN-ACK sent again, then its end. */
		EXPECT_NE(NULL, find_rec(&self->t, r->ev.sock_id,
					 TCPTRACE_REC_EVENT,
					 TCPTRACE_NEW_SYN_RECV,
					 TCPTRACE_NEW_SYN_RECV));
		end = find_rec(&self->t, r->ev.sock_id, TCPTRACE_REC_STATE,
			       TCPTRACE_NEW_SYN_RECV, TCPTRACE_CLOSE);
		ASSERT_NE(NULL, end);
		EXPECT_EQ(CAUSE(TCPTRACE_CAUSE_REQ_TIMEOUT), end->ev.flags);
		EXPECT_EQ(1, end->ev.total_retrans);
		EXPECT_EQ(r->ev.rcv_nxt, end->ev.rcv_nxt);
		/* 1 s, then 2 s: three RTOs of the SYN-ACK. */
		EXPECT_LE(2900000000ULL, end->ts_ns - r->ts_ns);
	}
	EXPECT_EQ(FLOOD_QUEUED,
		  count_recs(&self->t, TCPTRACE_REC_EVENT,
			     TCPTRACE_NEW_SYN_RECV, TCPTRACE_NEW_SYN_RECV,
			     TCPTRACE_CAUSE_SYNACK_RETRANS));
	/* Nothing lost. */
	ASSERT_EQ(0, dev_stats(self->fd, self->info.nr_cpus, &after));
	EXPECT_EQ(0, after.lost - before.lost);
	close(lfd);
}

TEST_HARNESS_MAIN
