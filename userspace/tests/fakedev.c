// SPDX-License-Identifier: GPL-2.0
/*
 * fakedev.so: a stand-in for /dev/tcptrace, for the host tests of
 * tcptrace-read, loaded with LD_PRELOAD.  It takes over open(), ioctl(),
 * read(), poll(), stat() and close() of one path and answers as the module
 * does (Documentation/tcptrace.rst), serving the records of a capture file.
 * Like the module it applies the filter set with TCPTRACE_IOC_SET_FILTER to
 * the transitions it serves (by the rules of module/filter.c, on the
 * record's fields) and counts what it rejects as filtered, so that a filter
 * on the device can be compared with the same filter on the capture.
 *
 * Environment:
 *	FAKEDEV_PATH		the path it takes over (required)
 *	FAKEDEV_CAPTURE		capture whose records it serves (none: empty)
 *	FAKEDEV_LOG		file to append what the reader asked to
 *	FAKEDEV_OPEN_ERRNO	open() fails so: EBUSY, EACCES, ENOENT, ENXIO
 *	FAKEDEV_MODULE_LOADED	1: /sys/module/tcptrace exists
 *	FAKEDEV_ABI, FAKEDEV_RECORD_SIZE	what TCPTRACE_IOC_INFO says
 *	FAKEDEV_NOT_TCPTRACE	1: every ioctl fails with ENOTTY
 *	FAKEDEV_OLD_FILTER	1: a filter is in force when it opens
 *	FAKEDEV_SET_FILTER_ERRNO	TCPTRACE_IOC_SET_FILTER fails so
 *	FAKEDEV_AT_END		what a blocking read() does once the records
 *				are all served: "sigint" (default) raises
 *				SIGINT, as Ctrl-C would, and fails with EINTR;
 *				"block" waits for a signal
 */
#define _GNU_SOURCE
#define __SANE_USERSPACE_TYPES__
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <linux/tcptrace.h>

#define NR_CPUS		2
#define BUFFER_RECORDS	8192

static const char *const state_names[TCPTRACE_STATE_MAX] =
	TCPTRACE_STATE_NAMES;

static int fake_fd = -1;
static int fake_flags;
static struct tcptrace_record *recs;
static size_t nr_recs, next_rec;
static struct tcptrace_filter filter;
static struct tcptrace_cpu_stats cpu_stats[NR_CPUS];

static void *real(const char *name)
{
	void *f = dlsym(RTLD_NEXT, name);

	if (!f) {
		fprintf(stderr, "fakedev: no %s\n", name);
		abort();
	}
	return f;
}

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static void logf_(const char *fmt, ...)
{
	const char *path = env("FAKEDEV_LOG");
	va_list ap;
	FILE *f;

	if (!path)
		return;
	f = fopen(path, "a");
	if (!f)
		return;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
}

static bool is_fake(const char *path)
{
	const char *p = env("FAKEDEV_PATH");

	return p && path && !strcmp(path, p);
}

static int errno_named(const char *name)
{
	static const struct { const char *name; int e; } t[] = {
		{ "EBUSY", EBUSY }, { "EACCES", EACCES }, { "EPERM", EPERM },
		{ "ENOENT", ENOENT }, { "ENXIO", ENXIO }, { "ENODEV", ENODEV },
		{ "EINVAL", EINVAL }, { "ENOMEM", ENOMEM },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (!strcmp(name, t[i].name))
			return t[i].e;
	return EIO;
}

static void load_records(void)
{
	const char *path = env("FAKEDEV_CAPTURE");
	FILE *f;
	long size;

	nr_recs = next_rec = 0;
	free(recs);
	recs = NULL;
	memset(cpu_stats, 0, sizeof(cpu_stats));
	if (!path)
		return;
	f = fopen(path, "rb");
	if (!f || fseek(f, 0, SEEK_END) || (size = ftell(f)) < 64) {
		fprintf(stderr, "fakedev: cannot read %s\n", path);
		abort();
	}
	nr_recs = (size - 64) / sizeof(*recs);
	recs = calloc(nr_recs + 1, sizeof(*recs));
	fseek(f, 64, SEEK_SET);
	if (fread(recs, sizeof(*recs), nr_recs, f) != nr_recs)
		abort();
	fclose(f);
}

static bool port_in(__u16 port, const struct tcptrace_port_range *r,
		    unsigned int nr)
{
	unsigned int i;

	for (i = 0; i < nr; i++)
		if (port >= r[i].lo && port <= r[i].hi)
			return true;
	return false;
}

static __u32 bit(unsigned int state)
{
	return state > 0 && state < 32 ? 1U << state : 0;
}

/* module/filter.c's tcptrace_filter_match(), on a record. */
static bool match(const struct tcptrace_record *r)
{
	const struct tcptrace_filter *f = &filter;
	const struct tcptrace_event *ev = &r->ev;

	if (r->type != TCPTRACE_REC_STATE)
		return true;
	if (f->family && f->family != ev->family)
		return false;
	if (f->netns && f->netns != r->netns)
		return false;
	if (f->nr_ports && !port_in(ev->lport, f->ports, f->nr_ports) &&
	    !port_in(ev->rport, f->ports, f->nr_ports))
		return false;
	if (f->nr_lports && !port_in(ev->lport, f->lports, f->nr_lports))
		return false;
	if (f->nr_rports && !port_in(ev->rport, f->rports, f->nr_rports))
		return false;
	if ((f->old_states | f->new_states) &&
	    !(f->old_states & bit(ev->oldstate)) &&
	    !(f->new_states & bit(ev->newstate)))
		return false;
	return true;
}

/* The next record the module would deliver; rejected ones are counted. */
static const struct tcptrace_record *peek(void)
{
	while (next_rec < nr_recs) {
		const struct tcptrace_record *r = &recs[next_rec];
		struct tcptrace_cpu_stats *c = &cpu_stats[r->cpu % NR_CPUS];

		if (match(r))
			return r;
		c->filtered++;
		next_rec++;
	}
	return NULL;
}

static void log_ranges(const char *name, const struct tcptrace_port_range *r,
		       unsigned int nr)
{
	unsigned int i;

	logf_(" %s=", name);
	for (i = 0; i < nr; i++)
		logf_("%s%u-%u", i ? "," : "", r[i].lo, r[i].hi);
	if (!nr)
		logf_("-");
}

static void log_states(const char *name, __u32 mask)
{
	unsigned int i;
	bool first = true;

	logf_(" %s=", name);
	for (i = 0; i < 32; i++) {
		if (!(mask & (1U << i)))
			continue;
		logf_("%s%s", first ? "" : "|",
		      i < TCPTRACE_STATE_MAX && state_names[i] ? state_names[i] :
		      "?");
		first = false;
	}
	if (first)
		logf_("-");
}

static int fake_ioctl(unsigned long req, void *arg)
{
	struct tcptrace_info *info = arg;
	struct tcptrace_stats *stats = arg;
	const char *v;
	unsigned int i;

	if (env("FAKEDEV_NOT_TCPTRACE")) {
		errno = ENOTTY;
		return -1;
	}
	switch (req) {
	case TCPTRACE_IOC_INFO:
		memset(info, 0, sizeof(*info));
		info->abi_version = (v = env("FAKEDEV_ABI")) ? atoi(v) :
				    TCPTRACE_ABI_VERSION;
		info->record_size = (v = env("FAKEDEV_RECORD_SIZE")) ?
				    (__u32)atoi(v) : (__u32)sizeof(struct tcptrace_record);
		info->nr_cpus = NR_CPUS;
		info->buffer_records = BUFFER_RECORDS;
		info->clock = CLOCK_MONOTONIC;
		snprintf(info->version, sizeof(info->version), "fake");
		return 0;
	case TCPTRACE_IOC_GET_FILTER:
		memcpy(arg, &filter, sizeof(filter));
		return 0;
	case TCPTRACE_IOC_SET_FILTER:
		if ((v = env("FAKEDEV_SET_FILTER_ERRNO"))) {
			errno = errno_named(v);
			return -1;
		}
		memcpy(&filter, arg, sizeof(filter));
		logf_("SET_FILTER family=%u netns=%u", filter.family,
		      filter.netns);
		log_ranges("ports", filter.ports, filter.nr_ports);
		log_ranges("lports", filter.lports, filter.nr_lports);
		log_ranges("rports", filter.rports, filter.nr_rports);
		log_states("old_states", filter.old_states);
		log_states("new_states", filter.new_states);
		logf_("\n");
		return 0;
	case TCPTRACE_IOC_STATS:
		/* What is still queued is recorded too, if it passes. */
		for (i = 0; i < NR_CPUS; i++)
			cpu_stats[i].queued = 0;
		for (size_t k = next_rec; k < nr_recs; k++)
			if (recs[k].type == TCPTRACE_REC_STATE && match(&recs[k]))
				cpu_stats[recs[k].cpu % NR_CPUS].queued++;
		for (i = 0; i < NR_CPUS && i < stats->nr_cpus; i++) {
			stats->cpu[i] = cpu_stats[i];
			stats->cpu[i].recorded += cpu_stats[i].queued;
			stats->cpu[i].buffer_records = BUFFER_RECORDS;
		}
		stats->nr_cpus = NR_CPUS;
		logf_("STATS\n");
		return 0;
	case TCPTRACE_IOC_CLEAR:
		return 0;
	}
	errno = ENOTTY;
	return -1;
}

static ssize_t fake_read(void *buf, size_t len)
{
	const struct tcptrace_record *r;
	size_t n = 0;

	if (len < sizeof(*r)) {
		errno = EINVAL;
		return -1;
	}
	while (n + sizeof(*r) <= len && (r = peek())) {
		struct tcptrace_cpu_stats *c = &cpu_stats[r->cpu % NR_CPUS];

		memcpy((char *)buf + n, r, sizeof(*r));
		n += sizeof(*r);
		next_rec++;
		if (r->type == TCPTRACE_REC_STATE) {
			c->recorded++;
			c->delivered++;
		} else if (r->type == TCPTRACE_REC_LOST) {
			c->lost += r->loss.count;
			c->lost_reported += r->loss.count;
		}
	}
	if (n) {
		logf_("read %zu records: %zu\n", len / sizeof(*r),
		      n / sizeof(*r));
		return n;
	}
	if (fake_flags & O_NONBLOCK) {
		errno = EAGAIN;
		return -1;
	}
	if (env("FAKEDEV_AT_END") && !strcmp(env("FAKEDEV_AT_END"), "block")) {
		pause();
	} else {
		logf_("read: no more records: SIGINT\n");
		raise(SIGINT);
	}
	errno = EINTR;
	return -1;
}

static int fake_open(const char *path, int flags)
{
	int (*real_open)(const char *, int, ...) = real("open");
	const char *e = env("FAKEDEV_OPEN_ERRNO");

	(void)path;
	if (e) {
		errno = errno_named(e);
		return -1;
	}
	if (fake_fd >= 0) {
		errno = EBUSY;
		return -1;
	}
	fake_fd = real_open("/dev/null", O_RDONLY | (flags & O_CLOEXEC));
	fake_flags = flags;
	memset(&filter, 0, sizeof(filter));
	if (env("FAKEDEV_OLD_FILTER"))
		filter.nr_lports = 1, filter.lports[0].lo = 1,
		filter.lports[0].hi = 1;
	load_records();
	logf_("open%s\n", flags & O_NONBLOCK ? " O_NONBLOCK" : "");
	return fake_fd;
}

int open(const char *path, int flags, ...)
{
	int (*real_open)(const char *, int, ...) = real("open");
	va_list ap;
	mode_t mode;

	if (is_fake(path))
		return fake_open(path, flags);
	va_start(ap, flags);
	mode = va_arg(ap, mode_t);
	va_end(ap);
	return real_open(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
	int (*real_open)(const char *, int, ...) = real("open64");
	va_list ap;
	mode_t mode;

	if (is_fake(path))
		return fake_open(path, flags);
	va_start(ap, flags);
	mode = va_arg(ap, mode_t);
	va_end(ap);
	return real_open(path, flags, mode);
}

int ioctl(int fd, unsigned long req, ...)
{
	int (*real_ioctl)(int, unsigned long, ...) = real("ioctl");
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (fd >= 0 && fd == fake_fd)
		return fake_ioctl(req, arg);
	return real_ioctl(fd, req, arg);
}

ssize_t read(int fd, void *buf, size_t len)
{
	ssize_t (*real_read)(int, void *, size_t) = real("read");

	if (fd >= 0 && fd == fake_fd)
		return fake_read(buf, len);
	return real_read(fd, buf, len);
}

int poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	int (*real_poll)(struct pollfd *, nfds_t, int) = real("poll");
	struct timespec ts;

	if (nfds != 1 || fds[0].fd != fake_fd || fake_fd < 0)
		return real_poll(fds, nfds, timeout);
	if (peek()) {
		fds[0].revents = POLLIN;
		return 1;
	}
	fds[0].revents = 0;
	if (timeout < 0) {
		pause();
		errno = EINTR;
		return -1;
	}
	ts.tv_sec = timeout / 1000;
	ts.tv_nsec = timeout % 1000 * 1000000L;
	if (nanosleep(&ts, NULL))
		return -1;
	return 0;
}

int close(int fd)
{
	int (*real_close)(int) = real("close");

	if (fd >= 0 && fd == fake_fd) {
		logf_("close\n");
		fake_fd = -1;
	}
	return real_close(fd);
}

/* The device node: a character device of root's, mode 0600. */
int stat(const char *path, struct stat *sb)
{
	int (*real_stat)(const char *, struct stat *) = real("stat");

	if (is_fake(path)) {
		memset(sb, 0, sizeof(*sb));
		sb->st_mode = S_IFCHR | 0600;
		sb->st_rdev = makedev(10, 123);
		return 0;
	}
	return real_stat(path, sb);
}

int access(const char *path, int mode)
{
	int (*real_access)(const char *, int) = real("access");

	if (!strcmp(path, "/sys/module/tcptrace")) {
		if (env("FAKEDEV_MODULE_LOADED"))
			return 0;
		errno = ENOENT;
		return -1;
	}
	return real_access(path, mode);
}
