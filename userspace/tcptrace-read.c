// SPDX-License-Identifier: GPL-2.0
/*
 * tcptrace-read: print the TCP state transitions that the tcptrace module
 * records in /dev/tcptrace, save them to a capture file, or print a capture.
 *
 * The device returns fixed-size records, struct tcptrace_record of
 * include/uapi/linux/tcptrace.h, merged across CPUs in timestamp order; a
 * CPU's dropped transitions come in-band as loss records at the place of the
 * gap.  This program prints one line per record.
 *
 * Sequence numbers are shown as the textbook shows them: relative to the
 * initial sequence numbers (ISNs) that the three-way handshake sets, x for
 * the client's and y for the server's, so that a client's handshake ends at
 * SND_UNA x+1, RCV_NXT y+1 and the server side's at SND_UNA y+1, RCV_NXT
 * x+1.  The ISNs are learnt from the records that end a handshake and kept
 * per socket until the socket enters CLOSE.
 *
 * Capture file (-w writes it, -r reads it), format version 1: a 64-byte
 * header, every field little-endian, then the records exactly as read()
 * returned them, in the byte order of the machine that recorded them.
 *
 *	offset	size	field
 *	 0	8	magic: "TCPTRACE", no NUL
 *	 8	4	format version: 1
 *	12	4	abi_version: TCPTRACE_ABI_VERSION of the records
 *	16	4	record_size: sizeof(struct tcptrace_record) of the records
 *	20	4	clock: the clockid_t of tcptrace_record.ts_ns
 *			(1, CLOCK_MONOTONIC)
 *	24	8	realtime offset: CLOCK_REALTIME minus that clock, in ns,
 *			signed, measured when the capture started
 *	32	4	flags: bit 0 (CAP_F_BIG_ENDIAN) set when the records are
 *			big-endian; other bits zero
 *	36	28	reserved: zero when written, ignored when read
 *	64		records, record_size bytes each, up to the end of the file
 */
#define _GNU_SOURCE
#define __SANE_USERSPACE_TYPES__	/* __u64 is unsigned long long everywhere */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/tcptrace.h>

#ifndef TCPTRACE_READ_VERSION
#define TCPTRACE_READ_VERSION	"0.1"
#endif

#define PROG		"tcptrace-read"
#define RECORD_SIZE	sizeof(struct tcptrace_record)
#define READ_RECORDS	256	/* records asked for per read() */

/* Sockets whose ISNs are remembered; past this, the oldest is forgotten. */
#define MAX_SOCKS	65536
#define SOCK_HASH_BITS	14
#define SOCK_BUCKETS	(1 << SOCK_HASH_BITS)

#define CAP_MAGIC		"TCPTRACE"
#define CAP_VERSION		1
#define CAP_HEADER_SIZE		64
#define CAP_OFF_VERSION		8
#define CAP_OFF_ABI		12
#define CAP_OFF_RECORD_SIZE	16
#define CAP_OFF_CLOCK		20
#define CAP_OFF_REALTIME	24
#define CAP_OFF_FLAGS		32
#define CAP_F_BIG_ENDIAN	0x1

#define TIME_WIDTH		10	/* seconds since the first record */
#define WALLTIME_WIDTH		15	/* HH:MM:SS.uuuuuu */
#define ADDR_WIDTH		22	/* 255.255.255.255:65535 */
#define ADDR_WIDTH_WIDE		47	/* [IPv6 address]:65535 */

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

_Static_assert(sizeof(struct tcptrace_record) == 128,
	       "struct tcptrace_record is 128 bytes by the ABI");

#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define HOST_CAP_FLAGS	CAP_F_BIG_ENDIAN
#else
#define HOST_CAP_FLAGS	0
#endif

enum { OPT_ABSOLUTE = 0x100 };

static struct env {
	const char *device;
	const char *read_path;
	const char *write_path;
	unsigned long long count;	/* transitions to stop after; 0: none */
	bool device_given;
	bool drain;
	bool timestamp;
	bool absolute;
	bool stats;
	bool wide;
} env = {
	.device = TCPTRACE_DEVICE,
};

/* Where records come from: the device or a capture file. */
struct source {
	int fd;
	const char *name;
	bool capture;
	unsigned long long offset;	/* bytes of a capture consumed */
	__u32 clock;
	__s64 realtime_offset;		/* CLOCK_REALTIME - clock, ns */
};

/* What is learnt of one socket's sequence space. */
struct sock_seq {
	__u64 sock_id;
	__u32 iss;		/* the socket's own initial sequence number */
	__u32 irs;		/* the peer's */
	bool iss_known;
	bool irs_known;
	char iss_name;		/* 'x' on a client socket, 'y' on a server's */
	char irs_name;
	struct sock_seq *hash_next;
	struct sock_seq *older;	/* age list, for eviction */
	struct sock_seq *newer;
};

static struct sock_table {
	struct sock_seq *buckets[SOCK_BUCKETS];
	struct sock_seq *oldest;
	struct sock_seq *newest;
	unsigned int count;
} socks;

static struct tcptrace_record records[READ_RECORDS];
static volatile sig_atomic_t exiting;
static bool have_first_ts;
static __u64 first_ts;
static unsigned long long nr_transitions, nr_lost;

static const char *const state_names[TCPTRACE_STATE_MAX] =
	TCPTRACE_STATE_NAMES;

static const char *const ctx_names[] = {
	[TCPTRACE_CTX_TASK] = "task",
	[TCPTRACE_CTX_SOFTIRQ] = "softirq",
	[TCPTRACE_CTX_HARDIRQ] = "hardirq",
	[TCPTRACE_CTX_NMI] = "nmi",
};

static const char usage_text[] =
"Usage: " PROG " [OPTION]...\n"
"Print the TCP state transitions recorded by the tcptrace kernel module, save\n"
"them to a capture file, or print a saved capture.\n"
"\n"
"USAGE: " PROG " [-d PATH] [-D] [-c N] [-T] [-W] [--absolute] [-w FILE]\n"
"       " PROG " -r FILE [-c N] [-T] [-W] [--absolute] [-w FILE]\n"
"       " PROG " -S [-d PATH]\n"
"\n"
"  -d, --device PATH  read live records from PATH (default " TCPTRACE_DEVICE
"),\n"
"                     until Ctrl-C, SIGTERM or --count\n"
"  -D, --drain        print what was buffered when it started, then exit\n"
"  -r, --read FILE    print a capture file instead of reading the device\n"
"  -w, --write FILE   save the records to FILE instead of printing them\n"
"  -c, --count N      stop after N transitions (loss records not counted)\n"
"  -T, --timestamp    wall-clock time, HH:MM:SS.uuuuuu, instead of seconds\n"
"                     since the first record\n"
"      --absolute     raw 32-bit sequence numbers instead of x+N and y+N\n"
"  -W, --wide         address columns wide enough for IPv6\n"
"  -S, --stats        print the module's per-CPU counters and exit\n"
"  -h, --help         print this help and exit\n"
"  -V, --version      print the version and exit\n"
"\n"
"Columns:\n"
"  CTX        task, softirq, hardirq or nmi: outside a task, PID is - and\n"
"             COMM names the context, as [softirq]\n"
"  PID        process id of the task\n"
"  SOCK       socket cookie in hex, as ss -e shows it (sk:...)\n"
"  LADDR:LPORT, RADDR:RPORT\n"
"             IPv6 as [addr]:port, IPv4 peers of IPv6 sockets as\n"
"             [::ffff:a.b.c.d]:port; port 0 (none chosen yet) prints as *;\n"
"             addresses the kernel has not set yet print as ?\n"
"  SND_UNA, SND_NXT, RCV_NXT\n"
"             relative to the initial sequence numbers, named as in the\n"
"             textbook: x is the client's, y the server's, so a client's\n"
"             handshake ends at SND_UNA x+1, RCV_NXT y+1; in full when the\n"
"             handshake was not seen; - when there are none yet (before the\n"
"             handshake, on a listening socket)\n"
"  LOST N transitions on CPU C\n"
"             that CPU's buffer was full: N transitions are missing there\n"
"\n"
"At exit, \"N transitions, M lost\" goes to stderr.  Exit status: 0 on\n"
"success, 1 on an error, 2 on bad usage.\n"
"\n"
"EXAMPLES:\n"
"  " PROG "                  # follow transitions until Ctrl-C\n"
"  " PROG " -T -W            # wall-clock time, room for IPv6\n"
"  " PROG " -D               # print what is buffered and exit\n"
"  " PROG " -c 100 -w t.cap  # save the next 100 transitions\n"
"  " PROG " -r t.cap         # print them\n"
"  " PROG " -S               # per-CPU counters of the module\n";

static const struct option long_options[] = {
	{ "device",	required_argument,	NULL, 'd' },
	{ "drain",	no_argument,		NULL, 'D' },
	{ "read",	required_argument,	NULL, 'r' },
	{ "write",	required_argument,	NULL, 'w' },
	{ "count",	required_argument,	NULL, 'c' },
	{ "timestamp",	no_argument,		NULL, 'T' },
	{ "absolute",	no_argument,		NULL, OPT_ABSOLUTE },
	{ "wide",	no_argument,		NULL, 'W' },
	{ "stats",	no_argument,		NULL, 'S' },
	{ "help",	no_argument,		NULL, 'h' },
	{ "version",	no_argument,		NULL, 'V' },
	{ NULL,		0,			NULL, 0 },
};

__attribute__((format(printf, 1, 2)))
static void warn(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

__attribute__((format(printf, 1, 2), noreturn))
static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry '" PROG " --help' for more information.\n", stderr);
	exit(2);
}

/* Name the option getopt_long() rejected: its argument, or its letter. */
__attribute__((noreturn))
static void bad_option(const char *arg, bool missing_value)
{
	char letter[3] = { '-', optopt, '\0' };
	const char *name = letter;

	if (!strncmp(arg, "--", 2) || !optopt)
		name = arg;
	if (optopt && strchr(name, '='))
		usage_error("option '%.*s' takes no value",
			    (int)(strchr(name, '=') - name), name);
	if (missing_value)
		usage_error("option '%s' needs a value", name);
	usage_error("unknown option '%s'", name);
}

static void parse_args(int argc, char **argv)
{
	int opt, arg = optind;
	char *end;

	/*
	 * Messages of our own, with a fixed program name; '+': options come
	 * first, so argv[arg] is the argument being parsed.
	 */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:d:Dr:w:c:TWShV",
				  long_options, NULL)) != -1) {
		switch (opt) {
		case 'd':
			env.device = optarg;
			env.device_given = true;
			break;
		case 'D':
			env.drain = true;
			break;
		case 'r':
			env.read_path = optarg;
			break;
		case 'w':
			env.write_path = optarg;
			break;
		case 'c':
			errno = 0;
			env.count = strtoull(optarg, &end, 10);
			if (optarg[0] < '0' || optarg[0] > '9' || *end ||
			    errno || !env.count)
				usage_error("invalid count '%s': expected a positive number",
					    optarg);
			break;
		case 'T':
			env.timestamp = true;
			break;
		case OPT_ABSOLUTE:
			env.absolute = true;
			break;
		case 'W':
			env.wide = true;
			break;
		case 'S':
			env.stats = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		case 'V':
			printf("%s %s (tcptrace ABI %d)\n", PROG,
			       TCPTRACE_READ_VERSION, TCPTRACE_ABI_VERSION);
			exit(0);
		case ':':
			bad_option(argv[arg], true);
		default:
			bad_option(argv[arg], false);
		}
		arg = optind;
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (env.read_path && (env.device_given || env.drain))
		usage_error("--read and --device/--drain exclude each other");
	if (env.stats && (env.read_path || env.write_path || env.drain ||
			  env.count))
		usage_error("--stats takes no other option but --device");
}

/* Read up to @len bytes, fewer only at the end of the file or on a signal. */
static ssize_t read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = read(fd, (char *)buf + done, len - done);
		if (n < 0 && errno == EINTR && !exiting)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

static int write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = write(fd, (const char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		done += n;
	}
	return 0;
}

static __u32 get_le32(const unsigned char *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (__u32)p[3] << 24;
}

static __u64 get_le64(const unsigned char *p)
{
	return get_le32(p) | (__u64)get_le32(p + 4) << 32;
}

static void put_le32(unsigned char *p, __u32 v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

static void put_le64(unsigned char *p, __u64 v)
{
	put_le32(p, v);
	put_le32(p + 4, v >> 32);
}

static __s64 timespec_ns(const struct timespec *ts)
{
	return (__s64)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

/* CLOCK_REALTIME minus @clock, in ns, read between two reads of @clock. */
static int realtime_offset(clockid_t clock, __s64 *offset)
{
	struct timespec before, real, after;

	if (clock_gettime(clock, &before) ||
	    clock_gettime(CLOCK_REALTIME, &real) ||
	    clock_gettime(clock, &after))
		return -1;
	*offset = timespec_ns(&real) -
		  (timespec_ns(&before) + timespec_ns(&after)) / 2;
	return 0;
}

/* Open the device and check that it speaks this reader's ABI. */
static int open_device(const char *path, int flags, struct tcptrace_info *info)
{
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | flags);
	if (fd < 0) {
		switch (errno) {
		case ENOENT:
			warn("no %s: is the tcptrace module loaded?", path);
			break;
		case EBUSY:
			warn("another reader has %s open", path);
			break;
		case EACCES:
		case EPERM:
			warn("no permission to open %s: run as root", path);
			break;
		default:
			warn("%s: %s", path, strerror(errno));
		}
		return -1;
	}
	memset(info, 0, sizeof(*info));
	if (ioctl(fd, TCPTRACE_IOC_INFO, info)) {
		if (errno == ENOTTY)
			warn("%s: not a tcptrace device (TCPTRACE_IOC_INFO: %s)",
			     path, strerror(errno));
		else
			warn("%s: TCPTRACE_IOC_INFO: %s", path, strerror(errno));
		goto close_fd;
	}
	if (info->abi_version != TCPTRACE_ABI_VERSION) {
		warn("module speaks ABI %u, this reader ABI %d: rebuild "
		     PROG " with the module's include/uapi/linux/tcptrace.h",
		     info->abi_version, TCPTRACE_ABI_VERSION);
		goto close_fd;
	}
	if (info->record_size != RECORD_SIZE) {
		warn("module's records are %u bytes, this reader's %zu: rebuild "
		     PROG " with the module's include/uapi/linux/tcptrace.h",
		     info->record_size, RECORD_SIZE);
		goto close_fd;
	}
	return fd;

close_fd:
	close(fd);
	return -1;
}

static void print_stats_row(const char *label,
			    const struct tcptrace_cpu_stats *c)
{
	printf("%-5s %12llu %12llu %13llu %12llu %12llu %12llu %8u %8u\n",
	       label, c->recorded, c->lost, c->lost_reported, c->filtered,
	       c->delivered, c->discarded, c->queued, c->buffer_records);
}

/* The per-CPU counters of TCPTRACE_IOC_STATS, as a table with a total. */
static int print_stats(const char *path)
{
	struct tcptrace_cpu_stats *c, total = { 0 };
	struct tcptrace_stats *stats = NULL;
	struct tcptrace_info info;
	unsigned int cpu, nr;
	int fd, err = -1;
	char label[12];

	fd = open_device(path, 0, &info);
	if (fd < 0)
		return -1;
	if (info.nr_cpus > 1 << 20) {
		warn("%s: module reports %u CPUs", path, info.nr_cpus);
		goto cleanup;
	}
	stats = calloc(1, sizeof(*stats) + info.nr_cpus * sizeof(*c));
	if (!stats) {
		warn("out of memory");
		goto cleanup;
	}
	stats->nr_cpus = info.nr_cpus;
	if (ioctl(fd, TCPTRACE_IOC_STATS, stats)) {
		warn("%s: TCPTRACE_IOC_STATS: %s", path, strerror(errno));
		goto cleanup;
	}
	nr = stats->nr_cpus < info.nr_cpus ? stats->nr_cpus : info.nr_cpus;

	printf("%-5s %12s %12s %13s %12s %12s %12s %8s %8s\n", "CPU",
	       "RECORDED", "LOST", "LOST_REPORTED", "FILTERED", "DELIVERED",
	       "DISCARDED", "QUEUED", "SIZE");
	for (cpu = 0; cpu < nr; cpu++) {
		c = &stats->cpu[cpu];
		snprintf(label, sizeof(label), "%u", cpu);
		print_stats_row(label, c);
		total.recorded += c->recorded;
		total.lost += c->lost;
		total.lost_reported += c->lost_reported;
		total.filtered += c->filtered;
		total.delivered += c->delivered;
		total.discarded += c->discarded;
		total.queued += c->queued;
		total.buffer_records += c->buffer_records;
	}
	print_stats_row("total", &total);
	if (nr != stats->nr_cpus)
		warn("the module now has %u CPUs, %u are shown",
		     stats->nr_cpus, nr);
	err = 0;

cleanup:
	free(stats);
	close(fd);
	return err;
}

static int open_live(struct source *src)
{
	struct tcptrace_info info;

	src->fd = open_device(env.device, env.drain ? O_NONBLOCK : 0, &info);
	if (src->fd < 0)
		return -1;
	src->name = env.device;
	src->clock = info.clock;
	if (realtime_offset(info.clock, &src->realtime_offset)) {
		warn("clock %u of the records: %s", info.clock,
		     strerror(errno));
		return -1;
	}
	return 0;
}

/* Open a capture file and check its header; messages name the offset. */
static int open_capture(struct source *src, const char *path)
{
	unsigned char h[CAP_HEADER_SIZE];
	size_t magic_len = strlen(CAP_MAGIC);
	ssize_t n;
	__u32 v;

	src->name = path;
	src->capture = true;
	src->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (src->fd < 0) {
		warn("%s: %s", path, strerror(errno));
		return -1;
	}
	n = read_full(src->fd, h, sizeof(h));
	if (n < 0) {
		warn("%s: offset 0: %s", path, strerror(errno));
		return -1;
	}
	if (memcmp(h, CAP_MAGIC, (size_t)n < magic_len ? (size_t)n : magic_len)) {
		warn("%s: offset 0: bad magic: not a tcptrace capture", path);
		return -1;
	}
	if (n < CAP_HEADER_SIZE) {
		warn("%s: offset %zd: file ends inside the %d-byte header",
		     path, n, CAP_HEADER_SIZE);
		return -1;
	}
	v = get_le32(h + CAP_OFF_VERSION);
	if (v != CAP_VERSION) {
		warn("%s: offset %d: capture format version %u, this reader reads version %d",
		     path, CAP_OFF_VERSION, v, CAP_VERSION);
		return -1;
	}
	v = get_le32(h + CAP_OFF_ABI);
	if (v != TCPTRACE_ABI_VERSION) {
		warn("%s: offset %d: records of ABI %u, this reader ABI %d: rebuild "
		     PROG " with a matching include/uapi/linux/tcptrace.h",
		     path, CAP_OFF_ABI, v, TCPTRACE_ABI_VERSION);
		return -1;
	}
	v = get_le32(h + CAP_OFF_RECORD_SIZE);
	if (v != RECORD_SIZE) {
		warn("%s: offset %d: records of %u bytes, this reader's are %zu",
		     path, CAP_OFF_RECORD_SIZE, v, RECORD_SIZE);
		return -1;
	}
	v = get_le32(h + CAP_OFF_FLAGS);
	if ((v & CAP_F_BIG_ENDIAN) != HOST_CAP_FLAGS) {
		warn("%s: offset %d: records are %s-endian, this machine is not",
		     path, CAP_OFF_FLAGS,
		     v & CAP_F_BIG_ENDIAN ? "big" : "little");
		return -1;
	}
	src->clock = get_le32(h + CAP_OFF_CLOCK);
	src->realtime_offset = (__s64)get_le64(h + CAP_OFF_REALTIME);
	src->offset = CAP_HEADER_SIZE;
	return 0;
}

static int create_capture(const char *path, const struct source *src)
{
	unsigned char h[CAP_HEADER_SIZE] = { 0 };
	struct stat in, out;
	int fd;

	if (!fstat(src->fd, &in) && !stat(path, &out) &&
	    in.st_dev == out.st_dev && in.st_ino == out.st_ino) {
		warn("%s: is what is being read", path);
		return -1;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		warn("%s: %s", path, strerror(errno));
		return -1;
	}
	memcpy(h, CAP_MAGIC, strlen(CAP_MAGIC));
	put_le32(h + CAP_OFF_VERSION, CAP_VERSION);
	put_le32(h + CAP_OFF_ABI, TCPTRACE_ABI_VERSION);
	put_le32(h + CAP_OFF_RECORD_SIZE, RECORD_SIZE);
	put_le32(h + CAP_OFF_CLOCK, src->clock);
	put_le64(h + CAP_OFF_REALTIME, (__u64)src->realtime_offset);
	put_le32(h + CAP_OFF_FLAGS, HOST_CAP_FLAGS);
	if (write_full(fd, h, sizeof(h))) {
		warn("%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static unsigned int sock_hash(__u64 sock_id)
{
	return (sock_id * 0x9e3779b97f4a7c15ULL) >> (64 - SOCK_HASH_BITS);
}

static struct sock_seq *sock_find(__u64 sock_id)
{
	struct sock_seq *s;

	for (s = socks.buckets[sock_hash(sock_id)]; s; s = s->hash_next)
		if (s->sock_id == sock_id)
			return s;
	return NULL;
}

static void sock_forget(struct sock_seq *s)
{
	struct sock_seq **p = &socks.buckets[sock_hash(s->sock_id)];

	while (*p != s)
		p = &(*p)->hash_next;
	*p = s->hash_next;
	if (s->older)
		s->older->newer = s->newer;
	else
		socks.oldest = s->newer;
	if (s->newer)
		s->newer->older = s->older;
	else
		socks.newest = s->older;
	socks.count--;
	free(s);
}

static struct sock_seq *sock_add(__u64 sock_id, bool client)
{
	struct sock_seq *s;
	unsigned int b;

	if (socks.count >= MAX_SOCKS)
		sock_forget(socks.oldest);
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;	/* sequence numbers print in full */
	s->sock_id = sock_id;
	s->iss_name = client ? 'x' : 'y';
	s->irs_name = client ? 'y' : 'x';
	b = sock_hash(sock_id);
	s->hash_next = socks.buckets[b];
	socks.buckets[b] = s;
	s->older = socks.newest;
	if (socks.newest)
		socks.newest->newer = s;
	else
		socks.oldest = s;
	socks.newest = s;
	socks.count++;
	return s;
}

static void socks_free(void)
{
	while (socks.oldest)
		sock_forget(socks.oldest);
}

/*
 * Learn what @ev tells of its socket's ISNs; return what is known of them,
 * or NULL.  A socket that showed SYN_SENT is a client, one that showed
 * SYN_RECV the server side of a connection; others are not remembered.
 */
static struct sock_seq *learn_isns(const struct tcptrace_event *ev)
{
	bool client = ev->oldstate == TCPTRACE_SYN_SENT ||
		      ev->newstate == TCPTRACE_SYN_SENT;
	bool server = ev->oldstate == TCPTRACE_SYN_RECV ||
		      ev->newstate == TCPTRACE_SYN_RECV;
	struct sock_seq *s = sock_find(ev->sock_id);

	if (!s && (client || server))
		s = sock_add(ev->sock_id, client);
	if (!s || ev->flags & TCPTRACE_F_SEQ_UNSET)
		return s;

	if ((ev->oldstate == TCPTRACE_SYN_SENT ||
	     ev->oldstate == TCPTRACE_SYN_RECV) &&
	    ev->newstate == TCPTRACE_ESTABLISHED) {
		/* Our SYN and the peer's are acknowledged. */
		s->iss = ev->snd_una - 1;
		s->irs = ev->rcv_nxt - 1;
		s->iss_known = true;
		s->irs_known = true;
	} else if (ev->oldstate == TCPTRACE_SYN_SENT &&
		   ev->newstate == TCPTRACE_CLOSE) {
		/* Refused or timed out: our SYN is all there was. */
		s->iss = ev->snd_una;
		s->iss_known = true;
	}
	return s;
}

static void format_state(char *buf, size_t len, unsigned int state)
{
	if (state < ARRAY_SIZE(state_names) && state_names[state])
		snprintf(buf, len, "%s", state_names[state]);
	else
		snprintf(buf, len, "%u", state);
}

static void format_seq(char *buf, size_t len, __u32 seq, bool known,
		       __u32 isn, char name)
{
	__u32 offset = seq - isn;

	if (!known)
		snprintf(buf, len, "%u", seq);
	else if (!offset)
		snprintf(buf, len, "%c", name);
	else
		snprintf(buf, len, "%c+%u", name, offset);
}

/* One end of a connection: a.b.c.d:port or [IPv6]:port; port 0 as '*'. */
static void format_endpoint(char *buf, size_t len,
			    const struct tcptrace_event *ev, bool local)
{
	static const unsigned char v4mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};
	const __u8 *addr = local ? ev->laddr : ev->raddr;
	__u16 port = local ? ev->lport : ev->rport;
	char host[INET6_ADDRSTRLEN], v4[INET_ADDRSTRLEN], portstr[8];

	if (port)
		snprintf(portstr, sizeof(portstr), "%u", port);
	else
		snprintf(portstr, sizeof(portstr), "*");

	if (ev->flags & TCPTRACE_F_ADDR_UNSET) {
		if (local && port)
			snprintf(buf, len, "?:%s", portstr);
		else
			snprintf(buf, len, "?");
		return;
	}

	switch (ev->family) {
	case AF_INET:
		inet_ntop(AF_INET, addr, host, sizeof(host));
		snprintf(buf, len, "%s:%s", host, portstr);
		break;
	case AF_INET6:
		if (!memcmp(addr, v4mapped, sizeof(v4mapped))) {
			inet_ntop(AF_INET, addr + 12, v4, sizeof(v4));
			snprintf(host, sizeof(host), "::ffff:%s", v4);
		} else {
			inet_ntop(AF_INET6, addr, host, sizeof(host));
		}
		snprintf(buf, len, "[%s]:%s", host, portstr);
		break;
	default:
		snprintf(buf, len, "?");
	}
}

/* The task name, with what a terminal would interpret replaced by '?'. */
static void format_comm(char *buf, size_t len, const char *comm,
			size_t comm_len)
{
	size_t i;

	for (i = 0; i < comm_len && i + 1 < len && comm[i]; i++)
		buf[i] = comm[i] >= 0x20 && comm[i] < 0x7f ? comm[i] : '?';
	buf[i] = '\0';
	if (!i)
		snprintf(buf, len, "-");
}

static void format_time(char *buf, size_t len, __u64 ts_ns,
			const struct source *src)
{
	__s64 ns, secs;
	struct tm tm;
	time_t t;
	size_t n;

	if (env.timestamp) {
		ns = (__s64)ts_ns + src->realtime_offset;
		secs = ns / 1000000000 - (ns % 1000000000 < 0);
		ns -= secs * 1000000000;
		t = secs;
		if (!localtime_r(&t, &tm) ||
		    !(n = strftime(buf, len, "%H:%M:%S", &tm))) {
			snprintf(buf, len, "?");
			return;
		}
		snprintf(buf + n, len - n, ".%06lld", (long long)ns / 1000);
		return;
	}

	if (!have_first_ts) {
		first_ts = ts_ns;
		have_first_ts = true;
	}
	ns = (__s64)(ts_ns - first_ts);
	snprintf(buf, len, "%s%lld.%06lld", ns < 0 ? "-" : "",
		 llabs(ns / 1000000000), llabs(ns % 1000000000) / 1000);
}

static void print_header_row(void)
{
	int addr_width = env.wide ? ADDR_WIDTH_WIDE : ADDR_WIDTH;

	printf("%-*s %3s %-7s %-7s %-16s %-9s %-*s %-*s %-12s %-12s %-10s %-10s %s\n",
	       env.timestamp ? WALLTIME_WIDTH : TIME_WIDTH,
	       env.timestamp ? "TIME" : "TIME(s)", "CPU", "CTX", "PID",
	       "COMM", "SOCK", addr_width, "LADDR:LPORT", addr_width,
	       "RADDR:RPORT", "OLD", "NEW", "SND_UNA", "SND_NXT", "RCV_NXT");
}

static void print_transition(const struct tcptrace_record *rec,
			     const char *time)
{
	const struct tcptrace_event *ev = &rec->ev;
	int addr_width = env.wide ? ADDR_WIDTH_WIDE : ADDR_WIDTH;
	char ctx[8], pid[12], comm[20], laddr[64], raddr[64];
	char oldstate[16], newstate[16], una[16], nxt[16], rcv[16], sock[20];
	struct sock_seq *s = NULL;

	if (rec->ctx == TCPTRACE_CTX_TASK) {
		snprintf(ctx, sizeof(ctx), "task");
		snprintf(pid, sizeof(pid), "%u", ev->tgid);
		format_comm(comm, sizeof(comm), ev->comm, sizeof(ev->comm));
	} else if (rec->ctx < ARRAY_SIZE(ctx_names)) {
		snprintf(ctx, sizeof(ctx), "%s", ctx_names[rec->ctx]);
		snprintf(pid, sizeof(pid), "-");
		snprintf(comm, sizeof(comm), "[%s]", ctx_names[rec->ctx]);
	} else {
		snprintf(ctx, sizeof(ctx), "%u", rec->ctx);
		snprintf(pid, sizeof(pid), "-");
		snprintf(comm, sizeof(comm), "-");
	}
	format_endpoint(laddr, sizeof(laddr), ev, true);
	format_endpoint(raddr, sizeof(raddr), ev, false);
	format_state(oldstate, sizeof(oldstate), ev->oldstate);
	format_state(newstate, sizeof(newstate), ev->newstate);

	/* A child whose id the module could not learn: nothing to key on. */
	if (ev->flags & TCPTRACE_F_ID_UNSET)
		snprintf(sock, sizeof(sock), "?");
	else
		snprintf(sock, sizeof(sock), "%llx",
			 (unsigned long long)ev->sock_id);
	if (!env.absolute && !(ev->flags & TCPTRACE_F_ID_UNSET))
		s = learn_isns(ev);
	if (ev->flags & TCPTRACE_F_SEQ_UNSET ||
	    ev->oldstate == TCPTRACE_LISTEN || ev->newstate == TCPTRACE_LISTEN) {
		/* No sequence space yet, or a listener's: none at all. */
		snprintf(una, sizeof(una), "-");
		snprintf(nxt, sizeof(nxt), "-");
		snprintf(rcv, sizeof(rcv), "-");
	} else {
		format_seq(una, sizeof(una), ev->snd_una, s && s->iss_known,
			   s ? s->iss : 0, s ? s->iss_name : 0);
		format_seq(nxt, sizeof(nxt), ev->snd_nxt, s && s->iss_known,
			   s ? s->iss : 0, s ? s->iss_name : 0);
		format_seq(rcv, sizeof(rcv), ev->rcv_nxt, s && s->irs_known,
			   s ? s->irs : 0, s ? s->irs_name : 0);
	}

	printf("%-*s %3u %-7s %-7s %-16s %-9s %-*s %-*s %-12s %-12s %-10s %-10s %s\n",
	       env.timestamp ? WALLTIME_WIDTH : TIME_WIDTH, time, rec->cpu,
	       ctx, pid, comm, sock, addr_width,
	       laddr, addr_width, raddr, oldstate, newstate, una, nxt, rcv);

	if (s && ev->newstate == TCPTRACE_CLOSE)
		sock_forget(s);
}

static void print_record(const struct tcptrace_record *rec,
			 const struct source *src)
{
	int time_width = env.timestamp ? WALLTIME_WIDTH : TIME_WIDTH;
	char time[48];

	format_time(time, sizeof(time), rec->ts_ns, src);
	switch (rec->type) {
	case TCPTRACE_REC_STATE:
		print_transition(rec, time);
		break;
	case TCPTRACE_REC_LOST:
		printf("%-*s %3u LOST %llu transitions on CPU %u (%llu since load)\n",
		       time_width, time, rec->cpu, rec->loss.count, rec->cpu,
		       rec->loss.total);
		break;
	default:
		printf("%-*s %3u record of unknown type %u\n", time_width,
		       time, rec->cpu, rec->type);
	}
}

/*
 * Read records from @src until its end, a signal or --count, and print them,
 * or write them to @out_fd if it is not -1.
 */
static int run(struct source *src, int out_fd)
{
	bool drain_live = env.drain && !src->capture;
	__u64 drain_until = 0;
	bool past_start;
	struct timespec ts;
	size_t i, nr, want;
	ssize_t n;

	/*
	 * --drain takes what was buffered when it started: under a steady
	 * stream the buffers never run dry, so stop at records made later.
	 */
	if (drain_live) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		drain_until = timespec_ns(&ts);
	}

	while (!exiting) {
		/* Never take from the device what --count leaves unused. */
		want = READ_RECORDS;
		if (env.count && env.count - nr_transitions < want)
			want = env.count - nr_transitions;

		if (src->capture)
			n = read_full(src->fd, records, want * RECORD_SIZE);
		else
			n = read(src->fd, records, want * RECORD_SIZE);
		if (n < 0) {
			if (errno == EINTR || (env.drain && errno == EAGAIN))
				break;
			if (src->capture)
				warn("%s: offset %llu: %s", src->name,
				     src->offset, strerror(errno));
			else
				warn("%s: read: %s", src->name,
				     strerror(errno));
			return -1;
		}
		if (n == 0)
			break;

		nr = n / RECORD_SIZE;
		past_start = false;
		for (i = 0; i < nr; i++) {
			if (drain_live && records[i].ts_ns > drain_until)
				past_start = true;
			if (records[i].type == TCPTRACE_REC_STATE)
				nr_transitions++;
			else if (records[i].type == TCPTRACE_REC_LOST)
				nr_lost += records[i].loss.count;
			if (out_fd < 0)
				print_record(&records[i], src);
		}
		if (out_fd >= 0 &&
		    write_full(out_fd, records, nr * RECORD_SIZE)) {
			warn("%s: %s", env.write_path, strerror(errno));
			return -1;
		}

		if (n % RECORD_SIZE) {
			if (src->capture)
				warn("%s: offset %llu: trailing partial record (%zu of %zu bytes)",
				     src->name, src->offset + nr * RECORD_SIZE,
				     n % RECORD_SIZE, RECORD_SIZE);
			else
				warn("%s: read returned %zd bytes, not whole %zu-byte records",
				     src->name, n, RECORD_SIZE);
			return -1;
		}
		src->offset += n;
		if (env.count && nr_transitions >= env.count)
			break;
		if (past_start)
			break;
	}
	return 0;
}

static void sig_handler(int sig)
{
	(void)sig;
	exiting = 1;
}

int main(int argc, char **argv)
{
	struct source src = { .fd = -1 };
	struct sigaction sa = { .sa_handler = sig_handler };
	int out_fd = -1, err = 1;

	parse_args(argc, argv);
	if (env.stats)
		return print_stats(env.device) ? 1 : 0;

	/* No SA_RESTART: a signal ends a blocking read() with EINTR. */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL)) {
		warn("sigaction: %s", strerror(errno));
		return 1;
	}
	if (isatty(STDOUT_FILENO))
		setvbuf(stdout, NULL, _IOLBF, 0);

	if (env.read_path ? open_capture(&src, env.read_path) :
			    open_live(&src))
		goto cleanup;
	if (env.write_path) {
		out_fd = create_capture(env.write_path, &src);
		if (out_fd < 0)
			goto cleanup;
	} else {
		print_header_row();
	}

	err = run(&src, out_fd) ? 1 : 0;

	if (out_fd >= 0 && close(out_fd) && !err) {
		warn("%s: %s", env.write_path, strerror(errno));
		err = 1;
	}
	out_fd = -1;
	if (fflush(stdout) || ferror(stdout)) {
		warn("stdout: %s", strerror(errno));
		err = 1;
	}
	fprintf(stderr, "%llu transitions, %llu lost\n", nr_transitions,
		nr_lost);

cleanup:
	if (out_fd >= 0)
		close(out_fd);
	if (src.fd >= 0)
		close(src.fd);
	socks_free();
	return err;
}
