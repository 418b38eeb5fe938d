// SPDX-License-Identifier: GPL-2.0
/*
 * tcptrace-read: print the TCP state transitions that the tcptrace module
 * records in /dev/tcptrace, save them to a capture file, or print a capture;
 * as a table, JSON lines, CSV, ladder diagrams or statistics; or draw a
 * connection, or the statistics, as an SVG picture.
 *
 * The device returns fixed-size records, struct tcptrace_record of
 * include/uapi/linux/tcptrace.h, merged across CPUs in timestamp order; a
 * CPU's dropped transitions come in-band as loss records at the place of the
 * gap.  Everything this program derives (sequence numbers relative to the
 * ISNs, time spent in a state, ladders, histograms) comes from the records
 * that pass the filter, so that a filter gives the same output on the device
 * and on a capture of everything.
 *
 * Sequence numbers are shown as the textbook shows them: relative to the
 * initial sequence numbers (ISNs) that the three-way handshake sets, x for
 * the client's and y for the server's, so that a client's handshake ends at
 * SND_UNA x+1, RCV_NXT y+1 and the server side's at SND_UNA y+1, RCV_NXT
 * x+1.  The ISNs are learnt from the records that end a handshake and kept
 * per socket until the socket enters CLOSE.
 *
 * Filters.  What struct tcptrace_filter can express (family, netns, port
 * lists on either end, the local end, the remote end, and the state masks) is
 * pushed down into the module with TCPTRACE_IOC_SET_FILTER, so that rejected
 * transitions never take room in its buffers; the filter pushed down is
 * always the same as or wider than the user's, and every record is checked
 * again here against the whole filter.  Addresses, pid, comm and socket ids
 * are checked only here.  A capture (-r) is filtered here, identically.  The
 * kernel-side filter is set when the reader starts and cleared at exit.
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
 *
 * JSON lines (-j), schema 1: one object per line, one per transition, one
 * per loss record, in the order of the records.  Within schema 1 no field is
 * removed, renamed or changes type or meaning; fields may be added, so
 * ignore the ones you do not know.  Integers are exact (ts_ns can exceed
 * 2^53).  null means "not known" or "not applicable".
 *
 *   {"type":"transition",
 *    "ts_ns": int		CLOCK_MONOTONIC ns of the transition
 *    "time": str|null		the same as UTC wall-clock time, ISO 8601 with
 *				ns: "2024-06-19T12:00:00.250061000Z"
 *    "cpu": int, "ctx": "task"|"softirq"|"hardirq"|"nmi"|int,
 *    "netns": int		network namespace inode (0: unknown)
 *    "sock": str|null		socket cookie in hex, as in the table; null
 *				when the module did not learn it
 *    "family": "inet"|"inet6"|int,
 *    "laddr": str|null, "lport": int, "raddr": str|null, "rport": int,
 *				addresses without brackets; IPv4 peers of
 *				IPv6 sockets as "::ffff:a.b.c.d"; null when
 *				not set yet (flag addr_unset); port 0: none
 *    "old": str|int, "new": str|int	state names; numbers if unknown
 *    "flags": int		TCPTRACE_F_*: 1 addr_unset, 2 seq_unset,
 *				4 id_unset
 *    "pid": int|null, "tgid": int|null, "comm": str|null
 *				task context only, else null
 *    "snd_una", "snd_nxt", "rcv_nxt", "write_seq": int|null
 *				raw 32-bit numbers; null when the socket has
 *				no sequence space yet (seq_unset) or listens
 *    "snd_una_rel", "snd_nxt_rel", "rcv_nxt_rel": str|null
 *				the table's "x+1" forms; null if the ISN is
 *				not known
 *    "bytes_acked", "bytes_received", "total_retrans", "srtt_us": int,
 *    "in_old_ns": int|null	time spent in "old", if the reader saw the
 *				socket enter it}
 *
 *   {"type":"lost", "ts_ns": int, "time": str|null, "cpu": int,
 *    "count": int		transitions dropped on that CPU here
 *    "total": int		dropped on that CPU since the module loaded}
 *
 *   {"type":"unknown", "ts_ns": int, "time": str|null, "cpu": int,
 *    "record_type": int}	a record this reader cannot decode
 *
 * CSV (--csv): a header row naming the same fields, in the order of
 * CSV_FIELDS below, then one row per record; null is an empty field; loss
 * records fill count and total (named lost_count, lost_total).
 *
 * Exit status: 0 success; 1 an error (device, capture, I/O, a record of
 * unknown type); 2 bad usage; 3 success, but transitions were lost (loss
 * records were seen).
 */
#define _GNU_SOURCE
#define __SANE_USERSPACE_TYPES__	/* __u64 is unsigned long long everywhere */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/tcptrace.h>

#ifndef TCPTRACE_READ_VERSION
#define TCPTRACE_READ_VERSION	"0.2"
#endif

#define PROG		"tcptrace-read"
#define RECORD_SIZE	sizeof(struct tcptrace_record)
#define READ_RECORDS	256	/* records asked for per read() */

/*
 * Sockets remembered at once; past this, the least recently seen goes.
 * The fuzzer makes these small, to reach what happens past them.
 */
#ifndef MAX_SOCKS
#define MAX_SOCKS	65536
#endif
#define SOCK_HASH_BITS	14
#define SOCK_BUCKETS	(1 << SOCK_HASH_BITS)
/* Transitions kept per socket for its ladder. */
#ifndef LADDER_MAX_RECS
#define LADDER_MAX_RECS	64
#endif

#define MAX_ITEMS	64	/* entries of one filter list */
#define MODULE_SYSFS	"/sys/module/tcptrace"

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
#define ARROW_WIDTH		44	/* between a ladder's lifelines */

#define EXIT_LOST	3

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define NS_PER_SEC	1000000000LL

_Static_assert(sizeof(struct tcptrace_record) == 128,
	       "struct tcptrace_record is 128 bytes by the ABI");

#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define HOST_CAP_FLAGS	CAP_F_BIG_ENDIAN
#else
#define HOST_CAP_FLAGS	0
#endif

enum {
	OPT_ABSOLUTE = 0x100,
	OPT_DURATION,
	OPT_CSV,
	OPT_COUNTERS,
	OPT_PORT,
	OPT_LPORT,
	OPT_RPORT,
	OPT_ADDR,
	OPT_LADDR,
	OPT_RADDR,
	OPT_STATE,
	OPT_OLD_STATE,
	OPT_NEW_STATE,
	OPT_COMM,
	OPT_SOCK,
	OPT_UID,
	OPT_CGROUP,
	OPT_SVG,
	OPT_SVG_ALL,
	OPT_CONNECTION,
};

enum format {
	FMT_TABLE,
	FMT_JSON,
	FMT_CSV,
	FMT_LADDER,
	FMT_STATS,
	FMT_CAPTURE,	/* -w: records to a file */
};

static const char *const format_options[] = {
	[FMT_TABLE] = "the table",
	[FMT_JSON] = "--json",
	[FMT_CSV] = "--csv",
	[FMT_LADDER] = "--ladder",
	[FMT_STATS] = "--stats",
	[FMT_CAPTURE] = "--write",
};

static struct env {
	const char *device;
	const char *read_path;
	const char *write_path;
	unsigned long long count;	/* transitions to stop after; 0: none */
	long long duration_ns;		/* 0: none */
	enum format format;
	bool format_given;
	bool device_given;
	bool drain;
	bool timestamp;
	bool absolute;
	bool wide;
	bool counters;
	const char *svg_path;		/* --svg: one picture, to this file */
	const char *svg_dir;		/* --svg-all: one per connection, here */
	const char *conn_arg;		/* --connection, as given */
} env;

/* The connection --connection names: a socket cookie, or a 4-tuple. */
static struct conn_choice {
	bool by_sock;
	__u64 sock;
	__u8 addr[2][16];		/* v4-mapped, as addr16() */
	__u16 port[2];
} conn_choice;

/* An address prefix; IPv4 is kept v4-mapped, so it matches both forms. */
struct cidr {
	__u8 addr[16];
	unsigned int bits;
};

struct port_list {
	struct tcptrace_port_range r[MAX_ITEMS];
	unsigned int nr;
};

struct cidr_list {
	struct cidr c[MAX_ITEMS];
	unsigned int nr;
};

/* What the user asked for; every part given must pass. */
static struct filter {
	unsigned int family;		/* 0: any */
	__u32 netns;			/* 0: any */
	struct port_list ports, lports, rports;
	__u32 states, old_states, new_states;	/* 0: not given */
	struct cidr_list addrs, laddrs, raddrs;
	__u32 pids[MAX_ITEMS];
	unsigned int nr_pids;
	char comms[MAX_ITEMS][16];
	unsigned int nr_comms;
	__u64 socks[MAX_ITEMS];
	unsigned int nr_socks;
	bool any;			/* anything given at all */
} filt;

/* Where records come from: the device or a capture file. */
struct source {
	int fd;
	const char *name;
	bool capture;
	unsigned long long offset;	/* bytes of a capture consumed */
	__u32 clock;
	__s64 realtime_offset;		/* CLOCK_REALTIME - clock, ns */
	bool filter_set;		/* a kernel-side filter to clear */
};

/* What is learnt of one socket. */
struct sock {
	__u64 id;
	__u32 netns;
	unsigned long long seq;		/* order of first sight */
	/* ISNs, for x+N */
	__u32 iss;		/* the socket's own initial sequence number */
	__u32 irs;		/* the peer's */
	bool iss_known;
	bool irs_known;
	char iss_name;		/* 'x' on a client socket, 'y' on a server's */
	char irs_name;
	/* the state it is in, if seen entering it */
	bool state_known;
	__u8 state;
	__u64 state_ts;
	bool birth_known;	/* seen leaving CLOSE, or born from LISTEN */
	bool request_birth;	/* born as a request: LISTEN -> NEW_SYN_RECV */
	__u64 birth_ts;
	bool listener;
	bool closed;
	bool lost_while_open;	/* loss records came while it was known */
	/* the module's event record of a reset it received, if one came */
	bool rst_rcvd;
	__u64 rst_rcvd_ts;
	/* the ladder: its transitions, its 4-tuple, its peer */
	struct tcptrace_record *recs;
	unsigned int nr_recs, cap_recs;
	unsigned int recs_dropped;
	bool keyed;
	__u8 key_l[16], key_r[16];
	__u16 key_lport, key_rport;
	struct sock *peer;
	/* links */
	struct sock *hash_next;
	struct sock *tuple_next;
	struct sock *older;	/* LRU list */
	struct sock *newer;
};

struct hist {
	unsigned long long slot[64];
	unsigned long long n;
};

struct trans_count {
	__u8 old, new;
	unsigned long long n;
};

struct cpu_loss {
	unsigned int cpu;
	unsigned long long n;
};

/* Everything a run changes: reset at its start, freed at its end. */
static struct state {
	struct sock *buckets[SOCK_BUCKETS];
	struct sock *tuples[SOCK_BUCKETS];
	struct sock *oldest;
	struct sock *newest;
	unsigned int nr_socks;
	unsigned long long sock_seq;
	bool have_first_ts;
	__u64 first_ts;
	unsigned long long nr_transitions;	/* that passed the filter */
	unsigned long long nr_filtered;		/* rejected here */
	unsigned long long nr_lost;
	unsigned long long nr_unknown;
	unsigned long long nr_events;
	unsigned long long nr_reads;		/* read()s of the device that gave records */
	unsigned long long nr_records;		/* records they gave */
	struct cpu_loss *losses;
	unsigned int nr_losses;
	struct trans_count *trans;
	unsigned int nr_trans, trans_cap;
	struct hist handshake, server_handshake, close_wait, lifetime;
	unsigned int nr_ladders;
	bool header_printed;
	int exit_status;
} st;

static struct tcptrace_record records[READ_RECORDS];
static volatile sig_atomic_t exiting;
static bool quiet;	/* no messages: the fuzzer sets it */

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
"them to a capture file, or print a saved capture: as a table, JSON lines,\n"
"CSV, ladder diagrams of whole connections, or statistics.\n"
"\n"
"USAGE: " PROG " [-d PATH] [-D | -c N | --duration S] [FILTER]... [FORMAT]\n"
"       " PROG " -r FILE [-c N] [FILTER]... [FORMAT]\n"
"       " PROG " --counters [-d PATH]\n"
"\n"
"Source:\n"
"  -d, --device PATH    read live records from PATH (default " TCPTRACE_DEVICE
")\n"
"                       until Ctrl-C, SIGTERM, --count or --duration\n"
"  -D, --drain          take what was buffered when it started, then exit\n"
"  -r, --read FILE      read a capture file instead of the device (- is\n"
"                       standard input)\n"
"  -c, --count N        stop after N transitions that pass the filter\n"
"      --duration SECS  stop after SECS seconds (device only)\n"
"      --counters       print the module's per-CPU counters and exit,\n"
"                       reading no records\n"
"\n"
"Filters (lists are comma-separated; all filters given must pass):\n"
"  -4, --ipv4, -6, --ipv6  sockets of that family only (an IPv6 socket\n"
"                       with an IPv4 peer is IPv6)\n"
"      --port LIST      local or remote port in LIST, as 80,443,8000-8099\n"
"      --lport LIST     local port in LIST\n"
"      --rport LIST     remote port in LIST\n"
"      --state LIST     the state left or the state entered in LIST, as\n"
"                       SYN_SENT,ESTABLISHED (names as printed)\n"
"      --old-state LIST the state left in LIST\n"
"      --new-state LIST the state entered in LIST\n"
"  -N, --netns NS       network namespace NS: an inode number, or a file\n"
"                       such as /proc/PID/ns/net\n"
"      --addr LIST      local or remote address in LIST, as\n"
"                       10.0.0.0/8,2001:db8::/32,::1 (IPv4 prefixes also\n"
"                       match v4-mapped IPv6 addresses)\n"
"      --laddr LIST     local address in LIST\n"
"      --raddr LIST     remote address in LIST\n"
"  -p, --pid LIST       process (or thread) id in LIST\n"
"      --comm LIST      task name in LIST (its first 15 characters)\n"
"      --sock LIST      socket cookie in LIST, in hex as printed\n"
"  The family, netns, port and state filters also run in the module, so\n"
"  that what they reject takes no room in its buffers.  --pid and --comm\n"
"  match only transitions in task context (connect(), close(), ...): those\n"
"  driven by packets run in softirq context, with no task.  A record is\n"
"  judged by what it holds: CLOSE -> SYN_SENT has local port 0, and an\n"
"  accepted socket's LISTEN -> SYN_RECV no addresses and remote port 0, so\n"
"  --port keeps whole connections where --lport, --rport and addresses\n"
"  miss those.  The module records no user or cgroup: --uid and --cgroup\n"
"  are refused.\n"
"\n"
"Format (one of):\n"
"                       the table, by default\n"
"  -j, --json           JSON lines: one object per transition or loss\n"
"      --csv            CSV with a header row\n"
"  -L, --ladder         a ladder diagram per connection, both ends paired\n"
"                       when both were traced, printed when it closes\n"
"  -S, --stats          at the end: transitions by kind, log2 histograms\n"
"                       of handshake time, time in CLOSE_WAIT and socket\n"
"                       lifetime, and the module's counters (device only)\n"
"  -w, --write FILE     save the records that pass the filter to FILE\n"
"                       (- is standard output), to read back with -r\n"
"Table and ladder:\n"
"  -T, --timestamp      wall-clock time, HH:MM:SS.uuuuuu, instead of seconds\n"
"                       since the first record\n"
"      --absolute       raw 32-bit sequence numbers instead of x+N and y+N\n"
"  -W, --wide           address columns wide enough for IPv6 (table)\n"
"Pictures (SVG), instead of text:\n"
"      --svg FILE       with -L: one connection as a sequence diagram; with\n"
"                       -S: the histograms as bar charts (- is standard\n"
"                       output); written whole at the end, or not at all\n"
"      --svg-all DIR    with -L: one picture per connection, in DIR\n"
"      --connection C   with -L --svg: the connection to draw, by the socket\n"
"                       cookie of either end (hex) or its 4-tuple,\n"
"                       ADDR:PORT,ADDR:PORT ([ADDR]:PORT for IPv6); by\n"
"                       default the first one whose whole life was traced\n"
"\n"
"  -h, --help           print this help and exit\n"
"  -V, --version        print the version and exit\n"
"\n"
"Table columns:\n"
"  CTX        task, softirq, hardirq or nmi: outside a task, PID is - and\n"
"             COMM names the context, as [softirq]\n"
"  PID        process id of the task\n"
"  SOCK       socket cookie in hex, as ss -e shows it (sk:...); ? if the\n"
"             module could not learn it\n"
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
"  MS         milliseconds spent in OLD; ? if the socket was not seen\n"
"             entering OLD\n"
"  -- N events lost on CPU C --\n"
"             that CPU's buffer was full: N transitions are missing there\n"
"\n"
"At exit, \"N transitions, M lost\" goes to stderr.  Exit status: 0 on\n"
"success, 1 on an error, 2 on bad usage, 3 when transitions were lost.\n"
"See tcptrace-read(8) for the ladder, the JSON schema and the capture format.\n"
"\n"
"EXAMPLES:\n"
"  " PROG "                    # follow transitions until Ctrl-C\n"
"  " PROG " -T -W              # wall-clock time, room for IPv6\n"
"  " PROG " -D                 # print what is buffered and exit\n"
"  " PROG " --port 443 -L      # a ladder per HTTPS connection\n"
"  " PROG " -4 --raddr 10.0.0.0/8 --new-state CLOSE  # IPv4 closes\n"
"  " PROG " -j --duration 10   # 10 s of JSON lines\n"
"  " PROG " -c 100 -w t.cap    # save the next 100 transitions\n"
"  " PROG " -r t.cap -S        # statistics of a capture\n"
"  " PROG " -r t.cap -L --svg c.svg  # its first connection, drawn\n"
"  " PROG " --counters         # per-CPU counters of the module\n";

static const struct option long_options[] = {
	{ "device",	required_argument,	NULL, 'd' },
	{ "drain",	no_argument,		NULL, 'D' },
	{ "read",	required_argument,	NULL, 'r' },
	{ "write",	required_argument,	NULL, 'w' },
	{ "count",	required_argument,	NULL, 'c' },
	{ "duration",	required_argument,	NULL, OPT_DURATION },
	{ "counters",	no_argument,		NULL, OPT_COUNTERS },
	{ "ipv4",	no_argument,		NULL, '4' },
	{ "ipv6",	no_argument,		NULL, '6' },
	{ "port",	required_argument,	NULL, OPT_PORT },
	{ "lport",	required_argument,	NULL, OPT_LPORT },
	{ "rport",	required_argument,	NULL, OPT_RPORT },
	{ "state",	required_argument,	NULL, OPT_STATE },
	{ "old-state",	required_argument,	NULL, OPT_OLD_STATE },
	{ "new-state",	required_argument,	NULL, OPT_NEW_STATE },
	{ "netns",	required_argument,	NULL, 'N' },
	{ "addr",	required_argument,	NULL, OPT_ADDR },
	{ "laddr",	required_argument,	NULL, OPT_LADDR },
	{ "raddr",	required_argument,	NULL, OPT_RADDR },
	{ "pid",	required_argument,	NULL, 'p' },
	{ "comm",	required_argument,	NULL, OPT_COMM },
	{ "sock",	required_argument,	NULL, OPT_SOCK },
	{ "uid",	required_argument,	NULL, OPT_UID },
	{ "cgroup",	required_argument,	NULL, OPT_CGROUP },
	{ "json",	no_argument,		NULL, 'j' },
	{ "csv",	no_argument,		NULL, OPT_CSV },
	{ "ladder",	no_argument,		NULL, 'L' },
	{ "stats",	no_argument,		NULL, 'S' },
	{ "timestamp",	no_argument,		NULL, 'T' },
	{ "absolute",	no_argument,		NULL, OPT_ABSOLUTE },
	{ "wide",	no_argument,		NULL, 'W' },
	{ "svg",	required_argument,	NULL, OPT_SVG },
	{ "svg-all",	required_argument,	NULL, OPT_SVG_ALL },
	{ "connection",	required_argument,	NULL, OPT_CONNECTION },
	{ "help",	no_argument,		NULL, 'h' },
	{ "version",	no_argument,		NULL, 'V' },
	{ NULL,		0,			NULL, 0 },
};

/* ------------------------------------------------------------------ */
/* Messages                                                            */

__attribute__((format(printf, 1, 2)))
static void warn(const char *fmt, ...)
{
	va_list ap;

	if (quiet)
		return;
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

/* ------------------------------------------------------------------ */
/* Parsing the filter                                                  */

/*
 * Call @item for each comma-separated item of @list, a copy of it in a
 * NUL-terminated buffer; @opt names the option in messages.
 */
static void for_each_item(const char *opt, const char *list,
			  void (*item)(const char *opt, const char *s))
{
	const char *p = list, *comma;
	char buf[256];
	size_t len;

	if (!*list)
		usage_error("%s: empty list", opt);
	for (;;) {
		comma = strchr(p, ',');
		len = comma ? (size_t)(comma - p) : strlen(p);
		if (!len)
			usage_error("%s '%s': empty item", opt, list);
		if (len >= sizeof(buf))
			usage_error("%s: item too long: '%.*s'", opt, (int)len,
				    p);
		memcpy(buf, p, len);
		buf[len] = '\0';
		item(opt, buf);
		if (!comma)
			break;
		p = comma + 1;
	}
}

/* A decimal number, all of @s, at most @max; -1 if it is not one. */
static long long parse_number(const char *s, unsigned long long max)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end || errno || v > max)
		return -1;
	return v;
}

static struct port_list *port_target;

static void add_port(const char *opt, const char *s)
{
	const char *dash = strchr(s, '-');
	long long lo, hi;
	char lo_s[16];

	if (dash) {
		if ((size_t)(dash - s) >= sizeof(lo_s))
			usage_error("%s: bad port range '%s'", opt, s);
		memcpy(lo_s, s, dash - s);
		lo_s[dash - s] = '\0';
		lo = parse_number(lo_s, 65535);
		hi = parse_number(dash + 1, 65535);
	} else {
		lo = hi = parse_number(s, 65535);
	}
	if (lo < 0 || hi < 0)
		usage_error("%s: bad port '%s': expected 0 to 65535, or a range as 8000-8099",
			    opt, s);
	if (lo > hi)
		usage_error("%s: bad port range '%s': %lld is above %lld", opt,
			    s, lo, hi);
	if (port_target->nr >= MAX_ITEMS)
		usage_error("%s: more than %d ports or ranges", opt, MAX_ITEMS);
	port_target->r[port_target->nr].lo = lo;
	port_target->r[port_target->nr].hi = hi;
	port_target->nr++;
}

static __u32 *state_target;

static void add_state(const char *opt, const char *s)
{
	char names[256] = "";
	size_t n = 0;
	unsigned int i;

	for (i = 1; i < TCPTRACE_STATE_MAX; i++) {
		if (state_names[i] && !strcasecmp(s, state_names[i])) {
			*state_target |= 1U << i;
			return;
		}
	}
	for (i = 1; i < TCPTRACE_STATE_MAX && n < sizeof(names); i++)
		if (state_names[i])
			n += snprintf(names + n, sizeof(names) - n, " %s",
				      state_names[i]);
	usage_error("%s: unknown state '%s'; the states are:%s", opt, s,
		    names);
}

static struct cidr_list *cidr_target;

static void add_cidr(const char *opt, const char *s)
{
	static const __u8 v4mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};
	const char *slash = strchr(s, '/');
	char host[INET6_ADDRSTRLEN + 2];
	struct cidr *c;
	unsigned int i, max;
	long long bits;
	size_t len = slash ? (size_t)(slash - s) : strlen(s);

	if (cidr_target->nr >= MAX_ITEMS)
		usage_error("%s: more than %d addresses", opt, MAX_ITEMS);
	c = &cidr_target->c[cidr_target->nr];
	memset(c, 0, sizeof(*c));
	if (len >= sizeof(host))
		usage_error("%s: bad address '%s'", opt, s);
	memcpy(host, s, len);
	host[len] = '\0';
	if (inet_pton(AF_INET, host, c->addr + 12) == 1) {
		memcpy(c->addr, v4mapped, sizeof(v4mapped));
		max = 32;
	} else if (inet_pton(AF_INET6, host, c->addr) == 1) {
		max = 128;
	} else {
		usage_error("%s: bad address '%s': expected an IPv4 or IPv6 address, with an optional /PREFIX",
			    opt, s);
	}
	bits = max;
	if (slash) {
		bits = parse_number(slash + 1, max);
		if (bits < 0)
			usage_error("%s: bad prefix length in '%s': expected 0 to %u",
				    opt, s, max);
	}
	c->bits = bits + (128 - max);
	/* Clear the host bits: 10.1.2.3/8 is 10.0.0.0/8. */
	for (i = 0; i < 128; i++)
		if (i >= c->bits)
			c->addr[i / 8] &= ~(0x80 >> (i % 8));
	cidr_target->nr++;
}

static void add_pid(const char *opt, const char *s)
{
	long long v = parse_number(s, 0xffffffff);

	if (v <= 0)
		usage_error("%s: bad process id '%s'", opt, s);
	if (filt.nr_pids >= MAX_ITEMS)
		usage_error("%s: more than %d process ids", opt, MAX_ITEMS);
	filt.pids[filt.nr_pids++] = v;
}

static void add_comm(const char *opt, const char *s)
{
	if (filt.nr_comms >= MAX_ITEMS)
		usage_error("%s: more than %d names", opt, MAX_ITEMS);
	/* The kernel keeps 15 characters of a task's name. */
	snprintf(filt.comms[filt.nr_comms++], sizeof(filt.comms[0]), "%s", s);
}

static void add_sock(const char *opt, const char *s)
{
	const char *p = s;
	unsigned long long v;
	char *end;

	if (!strncasecmp(p, "0x", 2))
		p += 2;
	errno = 0;
	v = strtoull(p, &end, 16);
	if (!isxdigit((unsigned char)*p) || *end || errno)
		usage_error("%s: bad socket cookie '%s': expected hex, as the SOCK column shows it",
			    opt, s);
	if (filt.nr_socks >= MAX_ITEMS)
		usage_error("%s: more than %d sockets", opt, MAX_ITEMS);
	filt.socks[filt.nr_socks++] = v;
}

static void parse_netns(const char *s)
{
	long long v = parse_number(s, 0xffffffff);
	struct stat sb;

	if (v == 0)
		usage_error("--netns: bad namespace '%s': inode numbers start at 1",
			    s);
	if (v > 0) {
		filt.netns = v;
		return;
	}
	if (stat(s, &sb))
		usage_error("--netns: '%s' is neither an inode number nor a file: %s",
			    s, strerror(errno));
	if (sb.st_ino > 0xffffffff)
		usage_error("--netns: %s: inode %llu does not fit the module's 32 bits",
			    s, (unsigned long long)sb.st_ino);
	filt.netns = sb.st_ino;
}

/* ------------------------------------------------------------------ */
/* Options                                                             */

static void set_format(enum format f)
{
	if (env.format_given && env.format != f)
		usage_error("%s and %s exclude each other",
			    format_options[env.format], format_options[f]);
	env.format = f;
	env.format_given = true;
}

static void parse_duration(const char *s)
{
	long long ns = 0, scale = NS_PER_SEC;
	const char *p = s;
	bool digits = false;

	for (; *p >= '0' && *p <= '9'; p++) {
		if (ns > (LLONG_MAX / 10 - 10) / NS_PER_SEC)
			goto bad;
		ns = ns * 10 + (*p - '0');
		digits = true;
	}
	ns *= NS_PER_SEC;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++) {
			scale /= 10;
			ns += (*p - '0') * scale;
			digits = true;
		}
	}
	if (*p || !digits || ns <= 0)
		goto bad;
	env.duration_ns = ns;
	return;
bad:
	usage_error("invalid duration '%s': expected seconds, as 10 or 0.5", s);
}

/* One end of a 4-tuple: a.b.c.d:port or [IPv6]:port; false if it is not. */
static bool parse_endpoint(const char *s, size_t len, __u8 *addr, __u16 *port)
{
	const char *end = s + len, *host = s, *colon;
	char hbuf[INET6_ADDRSTRLEN + 2], num[8];
	size_t hlen;
	long long p;

	if (len && s[0] == '[') {
		colon = memchr(s, ']', len);
		if (!colon || colon + 1 == end || colon[1] != ':')
			return false;
		host = s + 1;
		hlen = colon - host;
		colon++;
	} else {
		colon = memrchr(s, ':', len);
		if (!colon)
			return false;
		hlen = colon - s;
	}
	if (hlen >= sizeof(hbuf) || (size_t)(end - colon - 1) >= sizeof(num))
		return false;
	memcpy(hbuf, host, hlen);
	hbuf[hlen] = '\0';
	memcpy(num, colon + 1, end - colon - 1);
	num[end - colon - 1] = '\0';
	p = parse_number(num, 65535);
	if (p <= 0)
		return false;
	*port = p;
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, hbuf, addr + 12) == 1) {
		addr[10] = addr[11] = 0xff;
		return true;
	}
	return inet_pton(AF_INET6, hbuf, addr) == 1;
}

/* --connection: a socket cookie in hex, or ADDR:PORT,ADDR:PORT. */
static void parse_connection(const char *s)
{
	const char *comma = strchr(s, ',');
	char *end;

	env.conn_arg = s;
	memset(&conn_choice, 0, sizeof(conn_choice));
	if (!strchr(s, ':')) {
		if (!strncasecmp(s, "0x", 2))
			s += 2;
		errno = 0;
		conn_choice.sock = strtoull(s, &end, 16);
		if (!isxdigit((unsigned char)*s) || *end || errno)
			usage_error("--connection: bad connection '%s': expected a socket cookie in hex, as the SOCK column shows it, or ADDR:PORT,ADDR:PORT",
				    env.conn_arg);
		conn_choice.by_sock = true;
		return;
	}
	if (!comma || strchr(comma + 1, ',') ||
	    !parse_endpoint(s, comma - s, conn_choice.addr[0],
			    &conn_choice.port[0]) ||
	    !parse_endpoint(comma + 1, strlen(comma + 1), conn_choice.addr[1],
			    &conn_choice.port[1]))
		usage_error("--connection: bad 4-tuple '%s': expected ADDR:PORT,ADDR:PORT, as 127.0.0.1:55802,127.0.0.1:39879 or [::1]:57710,[::1]:37397",
			    s);
}

/*
 * Where --svg or --svg-all will write: refuse now what cannot be written
 * at the end.  @dir is a directory to write in; @file, if not NULL, a file
 * to replace there.
 */
static void check_svg_target(const char *opt, const char *arg,
			     const char *dir, const char *file)
{
	struct stat sb, in;

	if (stat(dir, &sb))
		usage_error("%s %s: %s: %s", opt, arg, dir, strerror(errno));
	if (!S_ISDIR(sb.st_mode))
		usage_error("%s %s: %s is not a directory", opt, arg, dir);
	if (access(dir, W_OK | X_OK))
		usage_error("%s %s: cannot write in %s: %s", opt, arg, dir,
			    strerror(errno));
	if (!file || stat(file, &sb))
		return;
	if (S_ISDIR(sb.st_mode))
		usage_error("%s %s: is a directory", opt, arg);
	if (env.read_path && strcmp(env.read_path, "-") &&
	    !stat(env.read_path, &in) && in.st_dev == sb.st_dev &&
	    in.st_ino == sb.st_ino)
		usage_error("%s %s: is the capture being read", opt, arg);
}

static void check_svg_options(void)
{
	char dir[PATH_MAX];
	const char *slash;

	if (env.svg_path && env.svg_dir)
		usage_error("--svg and --svg-all exclude each other");
	if (env.svg_path && env.format != FMT_LADDER &&
	    env.format != FMT_STATS)
		usage_error("--svg draws the ladder (-L) or the statistics (-S), not %s",
			    format_options[env.format]);
	if (env.svg_dir && env.format != FMT_LADDER)
		usage_error("--svg-all draws ladders: it needs -L, not %s",
			    format_options[env.format]);
	if (env.conn_arg && (!env.svg_path || env.format != FMT_LADDER))
		usage_error("--connection chooses the connection that -L --svg FILE draws");
	if (env.svg_dir) {
		check_svg_target("--svg-all", env.svg_dir, env.svg_dir, NULL);
	} else if (env.svg_path && strcmp(env.svg_path, "-")) {
		slash = strrchr(env.svg_path, '/');
		if (!*env.svg_path || (slash && !slash[1]))
			usage_error("--svg '%s': not a file name", env.svg_path);
		if (!slash)
			strcpy(dir, ".");
		else if (slash == env.svg_path)
			strcpy(dir, "/");
		else if ((size_t)(slash - env.svg_path) >= sizeof(dir))
			usage_error("--svg: path too long");
		else
			snprintf(dir, sizeof(dir), "%.*s",
				 (int)(slash - env.svg_path), env.svg_path);
		check_svg_target("--svg", env.svg_path, dir, env.svg_path);
	}
}

static void parse_args(int argc, char **argv)
{
	int opt, arg = optind ? optind : 1;
	char *end;

	/*
	 * Messages of our own, with a fixed program name; '+': options come
	 * first, so argv[arg] is the argument being parsed.
	 */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:d:Dr:w:c:46N:p:jLSTWhV",
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
			set_format(FMT_CAPTURE);
			break;
		case 'c':
			errno = 0;
			env.count = strtoull(optarg, &end, 10);
			if (optarg[0] < '0' || optarg[0] > '9' || *end ||
			    errno || !env.count)
				usage_error("invalid count '%s': expected a positive number",
					    optarg);
			break;
		case OPT_DURATION:
			parse_duration(optarg);
			break;
		case OPT_COUNTERS:
			env.counters = true;
			break;
		case '4':
		case '6':
			if (filt.family && filt.family !=
			    (opt == '4' ? AF_INET : AF_INET6))
				usage_error("-4 and -6 exclude each other");
			filt.family = opt == '4' ? AF_INET : AF_INET6;
			break;
		case OPT_PORT:
		case OPT_LPORT:
		case OPT_RPORT:
			port_target = opt == OPT_PORT ? &filt.ports :
				      opt == OPT_LPORT ? &filt.lports :
				      &filt.rports;
			for_each_item(opt == OPT_PORT ? "--port" :
				      opt == OPT_LPORT ? "--lport" : "--rport",
				      optarg, add_port);
			break;
		case OPT_STATE:
		case OPT_OLD_STATE:
		case OPT_NEW_STATE:
			state_target = opt == OPT_STATE ? &filt.states :
				       opt == OPT_OLD_STATE ? &filt.old_states :
				       &filt.new_states;
			for_each_item(opt == OPT_STATE ? "--state" :
				      opt == OPT_OLD_STATE ? "--old-state" :
				      "--new-state", optarg, add_state);
			break;
		case 'N':
			parse_netns(optarg);
			break;
		case OPT_ADDR:
		case OPT_LADDR:
		case OPT_RADDR:
			cidr_target = opt == OPT_ADDR ? &filt.addrs :
				      opt == OPT_LADDR ? &filt.laddrs :
				      &filt.raddrs;
			for_each_item(opt == OPT_ADDR ? "--addr" :
				      opt == OPT_LADDR ? "--laddr" : "--raddr",
				      optarg, add_cidr);
			break;
		case 'p':
			for_each_item("--pid", optarg, add_pid);
			break;
		case OPT_COMM:
			for_each_item("--comm", optarg, add_comm);
			break;
		case OPT_SOCK:
			for_each_item("--sock", optarg, add_sock);
			break;
		case OPT_UID:
			usage_error("--uid: the module does not record the user of a socket (tcptrace ABI %d has no uid in its record); select by --pid or --comm instead",
				    TCPTRACE_ABI_VERSION);
		case OPT_CGROUP:
			usage_error("--cgroup: the module does not record cgroups (tcptrace ABI %d has no cgroup in its record); select by --pid, --comm or --netns instead",
				    TCPTRACE_ABI_VERSION);
		case 'j':
			set_format(FMT_JSON);
			break;
		case OPT_CSV:
			set_format(FMT_CSV);
			break;
		case 'L':
			set_format(FMT_LADDER);
			break;
		case 'S':
			set_format(FMT_STATS);
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
		case OPT_SVG:
			env.svg_path = optarg;
			break;
		case OPT_SVG_ALL:
			env.svg_dir = optarg;
			break;
		case OPT_CONNECTION:
			parse_connection(optarg);
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

	filt.any = filt.family || filt.netns || filt.ports.nr ||
		   filt.lports.nr || filt.rports.nr || filt.states ||
		   filt.old_states || filt.new_states || filt.addrs.nr ||
		   filt.laddrs.nr || filt.raddrs.nr || filt.nr_pids ||
		   filt.nr_comms || filt.nr_socks;

	if (env.counters) {
		if (env.read_path || env.drain || env.count ||
		    env.duration_ns || env.format_given || filt.any ||
		    env.timestamp || env.absolute || env.wide ||
		    env.svg_path || env.svg_dir || env.conn_arg)
			usage_error("--counters takes no other option but --device");
		return;
	}
	if (env.read_path && (env.device_given || env.drain ||
			      env.duration_ns))
		usage_error("--read and --device/--drain/--duration exclude each other");
	if (env.drain && env.duration_ns)
		usage_error("--drain and --duration exclude each other");
	if (env.wide && env.format != FMT_TABLE)
		usage_error("--wide applies to the table only, not to %s",
			    format_options[env.format]);
	if ((env.timestamp || env.absolute) && env.format != FMT_TABLE &&
	    env.format != FMT_LADDER)
		usage_error("%s applies to the table and the ladder, not to %s%s",
			    env.timestamp ? "--timestamp" : "--absolute",
			    format_options[env.format],
			    env.format == FMT_JSON || env.format == FMT_CSV ?
			    " (it has both forms)" : "");
	check_svg_options();
}

/* ------------------------------------------------------------------ */
/* Matching records against the filter                                 */

static bool port_in(__u16 port, const struct port_list *l)
{
	unsigned int i;

	for (i = 0; i < l->nr; i++)
		if (port >= l->r[i].lo && port <= l->r[i].hi)
			return true;
	return false;
}

static __u32 state_bit(unsigned int state)
{
	return state > 0 && state < 32 ? 1U << state : 0;
}

/* The record's address as 16 bytes, IPv4 v4-mapped; false if unknown. */
static bool addr16(const struct tcptrace_event *ev, bool local, __u8 *out)
{
	const __u8 *a = local ? ev->laddr : ev->raddr;

	if (ev->flags & TCPTRACE_F_ADDR_UNSET)
		return false;
	if (ev->family == AF_INET6) {
		memcpy(out, a, 16);
		return true;
	}
	if (ev->family != AF_INET)
		return false;
	memset(out, 0, 10);
	out[10] = out[11] = 0xff;
	memcpy(out + 12, a, 4);
	return true;
}

static bool cidr_match(const struct cidr *c, const __u8 *a)
{
	unsigned int full = c->bits / 8, rest = c->bits % 8;

	if (memcmp(c->addr, a, full))
		return false;
	return !rest || !((c->addr[full] ^ a[full]) & (0xff00 >> rest));
}

static bool addr_in(const struct tcptrace_event *ev, bool local,
		    const struct cidr_list *l)
{
	unsigned int i;
	__u8 a[16];

	if (!addr16(ev, local, a))
		return false;
	for (i = 0; i < l->nr; i++)
		if (cidr_match(&l->c[i], a))
			return true;
	return false;
}

/*
 * Does a transition pass the whole filter?  The part pushed down into the
 * module is judged again here, the same way: on a capture it did not run.
 */
static bool filter_match(const struct tcptrace_record *rec)
{
	const struct tcptrace_event *ev = &rec->ev;
	bool task = rec->ctx == TCPTRACE_CTX_TASK;
	unsigned int i;

	if (!filt.any)
		return true;
	if (filt.family && ev->family != filt.family)
		return false;
	if (filt.netns && rec->netns != filt.netns)
		return false;
	if (filt.ports.nr && !port_in(ev->lport, &filt.ports) &&
	    !port_in(ev->rport, &filt.ports))
		return false;
	if (filt.lports.nr && !port_in(ev->lport, &filt.lports))
		return false;
	if (filt.rports.nr && !port_in(ev->rport, &filt.rports))
		return false;
	if (filt.states && !(filt.states & state_bit(ev->oldstate)) &&
	    !(filt.states & state_bit(ev->newstate)))
		return false;
	if (filt.old_states && !(filt.old_states & state_bit(ev->oldstate)))
		return false;
	if (filt.new_states && !(filt.new_states & state_bit(ev->newstate)))
		return false;
	if (filt.addrs.nr && !addr_in(ev, true, &filt.addrs) &&
	    !addr_in(ev, false, &filt.addrs))
		return false;
	if (filt.laddrs.nr && !addr_in(ev, true, &filt.laddrs))
		return false;
	if (filt.raddrs.nr && !addr_in(ev, false, &filt.raddrs))
		return false;
	if (filt.nr_pids) {
		if (!task)
			return false;
		for (i = 0; i < filt.nr_pids; i++)
			if (ev->tgid == filt.pids[i] || ev->pid == filt.pids[i])
				break;
		if (i == filt.nr_pids)
			return false;
	}
	if (filt.nr_comms) {
		if (!task)
			return false;
		for (i = 0; i < filt.nr_comms; i++)
			if (!strncmp(ev->comm, filt.comms[i],
				     sizeof(ev->comm) - 1))
				break;
		if (i == filt.nr_comms)
			return false;
	}
	if (filt.nr_socks) {
		if (ev->flags & TCPTRACE_F_ID_UNSET)
			return false;
		for (i = 0; i < filt.nr_socks; i++)
			if (ev->sock_id == filt.socks[i])
				break;
		if (i == filt.nr_socks)
			return false;
	}
	return true;
}

static int range_cmp(const void *a, const void *b)
{
	const struct tcptrace_port_range *x = a, *y = b;

	return x->lo != y->lo ? x->lo - y->lo : x->hi - y->hi;
}

/*
 * Copy a port list into the module's form: sorted, overlapping and adjacent
 * ranges merged.  False if it still needs more than the module's ranges:
 * then it is checked here only.
 */
static bool kernel_ports(const struct port_list *l,
			 struct tcptrace_port_range *out, __u8 *nr_out)
{
	struct tcptrace_port_range r[MAX_ITEMS];
	unsigned int i, nr = 0;

	if (!l->nr)
		return true;
	memcpy(r, l->r, l->nr * sizeof(r[0]));
	qsort(r, l->nr, sizeof(r[0]), range_cmp);
	for (i = 0; i < l->nr; i++) {
		if (nr && r[i].lo <= (unsigned int)r[nr - 1].hi + 1) {
			if (r[i].hi > r[nr - 1].hi)
				r[nr - 1].hi = r[i].hi;
			continue;
		}
		r[nr++] = r[i];
	}
	if (nr > TCPTRACE_MAX_RANGES)
		return false;
	memcpy(out, r, nr * sizeof(r[0]));
	*nr_out = nr;
	return true;
}

/*
 * The part of the filter the module can apply: the same as the user's or
 * wider, never narrower.  The module ORs its two state masks, so one state
 * option goes down exactly and, of several, only the first.
 */
static void kernel_filter(struct tcptrace_filter *kf)
{
	memset(kf, 0, sizeof(*kf));
	kf->family = filt.family;
	kf->netns = filt.netns;
	kernel_ports(&filt.ports, kf->ports, &kf->nr_ports);
	kernel_ports(&filt.lports, kf->lports, &kf->nr_lports);
	kernel_ports(&filt.rports, kf->rports, &kf->nr_rports);
	if (filt.states) {
		kf->old_states = filt.states;
		kf->new_states = filt.states;
	} else if (filt.old_states) {
		kf->old_states = filt.old_states;
	} else if (filt.new_states) {
		kf->new_states = filt.new_states;
	}
}

/* ------------------------------------------------------------------ */
/* Files, the device, captures                                         */

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
			return done ? (ssize_t)done : -1;
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
	return (__s64)ts->tv_sec * NS_PER_SEC + ts->tv_nsec;
}

static __s64 monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return timespec_ns(&ts);
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

/*
 * The name of user or group @id in @file (/etc/passwd, /etc/group), or the
 * number: no NSS, so that a static reader needs no shared library.
 */
static void id_name(const char *file, unsigned int id, char *buf, size_t len)
{
	char line[512], *name, *field;
	FILE *f = fopen(file, "re");

	snprintf(buf, len, "%u", id);
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		name = strtok(line, ":");
		if (!name || !strtok(NULL, ":") || !(field = strtok(NULL, ":")))
			continue;
		if (parse_number(field, 0xffffffff) == id) {
			snprintf(buf, len, "%s", name);
			break;
		}
	}
	fclose(f);
}

/* Say why @path cannot be opened, and what to do about it. */
static void explain_open_error(const char *path, int err)
{
	char owner[64], group[64];
	struct stat sb;

	switch (err) {
	case ENOENT:
		if (access(MODULE_SYSFS, F_OK))
			warn("%s does not exist: the tcptrace module is not loaded; load it with 'insmod tcptrace.ko' (from the build tree) or 'modprobe tcptrace'",
			     path);
		else
			warn("%s does not exist, yet the tcptrace module is loaded: is devtmpfs mounted on /dev? (its device number is in /sys/class/misc/tcptrace/dev)",
			     path);
		break;
	case ENXIO:
	case ENODEV:
		warn("%s: %s: the device node has no driver; load the tcptrace module ('insmod tcptrace.ko' or 'modprobe tcptrace')",
		     path, strerror(err));
		break;
	case EBUSY:
		warn("%s is busy: another reader has it open, and it takes one at a time (find it with 'fuser -v %s')",
		     path, path);
		break;
	case EACCES:
	case EPERM:
		if (stat(path, &sb)) {
			warn("%s: permission denied: run as root", path);
			break;
		}
		id_name("/etc/passwd", sb.st_uid, owner, sizeof(owner));
		id_name("/etc/group", sb.st_gid, group, sizeof(group));
		warn("%s: permission denied (mode %04o, owner %s, group %s): run as root, or let a group read it (chgrp GROUP %s; chmod g+r %s; or a udev rule) and run as a member of that group",
		     path, (unsigned int)sb.st_mode & 07777, owner, group,
		     path, path);
		break;
	default:
		warn("%s: %s", path, strerror(err));
	}
}


/* The module's TCPTRACE_HOOK_* bits, in order. */
static const char *const hook_names[] = {
	"state", "timewait-enter", "timewait-exit", "resets", "retransmits",
	"requests", "synack-retransmits",
};

/*
 * Say which views the module cannot fill: hooks it could not attach, or
 * was loaded without.  A module older than the hooks reports none: say
 * nothing then.
 */
static void note_hooks(__u32 hooks)
{
	if (!hooks)
		return;
	if (!(hooks & TCPTRACE_HOOK_TW_ENTER) ||
	    !(hooks & TCPTRACE_HOOK_TW_EXIT))
		warn("note: the module does not record TIME_WAIT (timewait=0, or no kprobes): a closing connection ends in FIN_WAIT2 -> CLOSE");
	if (!(hooks & TCPTRACE_HOOK_RESET) || !(hooks & TCPTRACE_HOOK_RETRANS))
		warn("note: the module does not record resets or retransmissions (causes=0, or no tracepoints for them)");
	if (!(hooks & TCPTRACE_HOOK_REQUEST))
		warn("note: the module does not record the SYN queue (requests=0, or no kprobes): an accepted connection starts at LISTEN -> SYN_RECV, its SYN and SYN cookies unseen");
}

/* Open the device and check that it speaks this reader's ABI. */
static int open_device(const char *path, int flags, struct tcptrace_info *info)
{
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | flags);
	if (fd < 0) {
		explain_open_error(path, errno);
		return -1;
	}
	memset(info, 0, sizeof(*info));
	if (ioctl(fd, TCPTRACE_IOC_INFO, info)) {
		if (errno == ENOTTY || errno == EINVAL)
			warn("%s: not a tcptrace device (TCPTRACE_IOC_INFO: %s)",
			     path, strerror(errno));
		else
			warn("%s: TCPTRACE_IOC_INFO: %s", path, strerror(errno));
		goto close_fd;
	}
	if (info->abi_version != TCPTRACE_ABI_VERSION) {
		warn("version mismatch: the module speaks ABI %u, this reader ABI %d: rebuild "
		     PROG " with the module's include/uapi/linux/tcptrace.h",
		     info->abi_version, TCPTRACE_ABI_VERSION);
		goto close_fd;
	}
	if (info->record_size != RECORD_SIZE) {
		warn("version mismatch: the module's records are %u bytes, this reader's %zu: rebuild "
		     PROG " with the module's include/uapi/linux/tcptrace.h",
		     info->record_size, RECORD_SIZE);
		goto close_fd;
	}
	note_hooks(info->hooks);
	return fd;

close_fd:
	close(fd);
	return -1;
}

static void print_counters_row(const char *label,
			       const struct tcptrace_cpu_stats *c)
{
	printf("%-5s %12llu %12llu %13llu %12llu %12llu %12llu %8u %8u\n",
	       label, c->recorded, c->lost, c->lost_reported, c->filtered,
	       c->delivered, c->discarded, c->queued, c->buffer_records);
}

/* The per-CPU counters of TCPTRACE_IOC_STATS, as a table with a total. */
static int print_counters(int fd, const char *path,
			  const struct tcptrace_info *info)
{
	struct tcptrace_cpu_stats *c, total = { 0 };
	struct tcptrace_stats *stats;
	unsigned int cpu, nr;
	char label[12];

	if (info->nr_cpus > 1 << 20) {
		warn("%s: module reports %u CPUs", path, info->nr_cpus);
		return -1;
	}
	stats = calloc(1, sizeof(*stats) + info->nr_cpus * sizeof(*c));
	if (!stats) {
		warn("out of memory");
		return -1;
	}
	stats->nr_cpus = info->nr_cpus;
	if (ioctl(fd, TCPTRACE_IOC_STATS, stats)) {
		warn("%s: TCPTRACE_IOC_STATS: %s", path, strerror(errno));
		free(stats);
		return -1;
	}
	nr = stats->nr_cpus < info->nr_cpus ? stats->nr_cpus : info->nr_cpus;

	printf("%-5s %12s %12s %13s %12s %12s %12s %8s %8s\n", "CPU",
	       "RECORDED", "LOST", "LOST_REPORTED", "FILTERED", "DELIVERED",
	       "DISCARDED", "QUEUED", "SIZE");
	for (cpu = 0; cpu < nr; cpu++) {
		c = &stats->cpu[cpu];
		snprintf(label, sizeof(label), "%u", cpu);
		print_counters_row(label, c);
		total.recorded += c->recorded;
		total.lost += c->lost;
		total.lost_reported += c->lost_reported;
		total.filtered += c->filtered;
		total.delivered += c->delivered;
		total.discarded += c->discarded;
		total.queued += c->queued;
		total.buffer_records += c->buffer_records;
	}
	print_counters_row("total", &total);
	if (info->hooks) {
		fputs("hooks:", stdout);
		for (cpu = 0; cpu < ARRAY_SIZE(hook_names); cpu++)
			if (info->hooks & 1u << cpu)
				printf(" %s", hook_names[cpu]);
		putchar('\n');
	}
	if (stats->missed)
		printf("missed: %u kprobe hits the kernel skipped: records never made\n",
		       stats->missed);
	if (nr != stats->nr_cpus)
		warn("the module now has %u CPUs, %u are shown",
		     stats->nr_cpus, nr);
	free(stats);
	return 0;
}

static int counters_only(void)
{
	struct tcptrace_info info;
	int fd, err;

	fd = open_device(env.device, 0, &info);
	if (fd < 0)
		return 1;
	err = print_counters(fd, env.device, &info);
	close(fd);
	return err ? 1 : 0;
}

/* Put our filter into the module, after saying if another was there. */
static int push_filter(struct source *src)
{
	struct tcptrace_filter old, kf, none = { 0 };

	kernel_filter(&kf);
	if (!ioctl(src->fd, TCPTRACE_IOC_GET_FILTER, &old) &&
	    memcmp(&old, &none, sizeof(old)))
		warn("note: a kernel-side filter left by an earlier reader was in force: what is buffered from then lacks what it rejected");
	if (ioctl(src->fd, TCPTRACE_IOC_SET_FILTER, &kf)) {
		warn("%s: TCPTRACE_IOC_SET_FILTER: %s", src->name,
		     strerror(errno));
		return -1;
	}
	src->filter_set = true;
	return 0;
}

static void clear_filter(struct source *src)
{
	struct tcptrace_filter none = { 0 };

	if (src->filter_set &&
	    ioctl(src->fd, TCPTRACE_IOC_SET_FILTER, &none))
		warn("%s: clearing the filter: %s", src->name,
		     strerror(errno));
	src->filter_set = false;
}

static int open_live(struct source *src, struct tcptrace_info *info)
{
	src->fd = open_device(env.device, env.drain ? O_NONBLOCK : 0, info);
	if (src->fd < 0)
		return -1;
	src->name = env.device;
	src->clock = info->clock;
	if (realtime_offset(info->clock, &src->realtime_offset)) {
		warn("clock %u of the records: %s", info->clock,
		     strerror(errno));
		return -1;
	}
	return push_filter(src);
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
	if (!strcmp(path, "-")) {
		src->name = "standard input";
		src->fd = dup(STDIN_FILENO);
	} else {
		src->fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (src->fd < 0) {
		warn("%s: %s", path, strerror(errno));
		return -1;
	}
	path = src->name;
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

	if (!strcmp(path, "-")) {
		fd = dup(STDOUT_FILENO);
	} else {
		if (!fstat(src->fd, &in) && !stat(path, &out) &&
		    in.st_dev == out.st_dev && in.st_ino == out.st_ino) {
			warn("%s: is what is being read", path);
			return -1;
		}
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			  0644);
	}
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

/* ------------------------------------------------------------------ */
/* What is known of each socket                                        */

static unsigned int sock_hash(__u64 sock_id)
{
	return (sock_id * 0x9e3779b97f4a7c15ULL) >> (64 - SOCK_HASH_BITS);
}

static struct sock *sock_find(__u64 sock_id)
{
	struct sock *s;

	for (s = st.buckets[sock_hash(sock_id)]; s; s = s->hash_next)
		if (s->id == sock_id)
			return s;
	return NULL;
}

static unsigned int tuple_hash(__u32 netns, const __u8 *l, __u16 lport,
			       const __u8 *r, __u16 rport)
{
	__u64 h = netns * 0x9e3779b97f4a7c15ULL;
	unsigned int i;

	/* Symmetric in the two ends, so that both find the same bucket. */
	for (i = 0; i < 16; i++)
		h += (__u64)(l[i] + r[i]) << (8 * (i % 8));
	h += (__u64)(lport + rport) << 32;
	h *= 0x9e3779b97f4a7c15ULL;
	return h >> (64 - SOCK_HASH_BITS);
}

static void tuple_unlink(struct sock *s)
{
	struct sock **p;

	if (!s->keyed)
		return;
	p = &st.tuples[tuple_hash(s->netns, s->key_l, s->key_lport,
				  s->key_r, s->key_rport)];
	while (*p && *p != s)
		p = &(*p)->tuple_next;
	if (*p)
		*p = s->tuple_next;
	s->tuple_next = NULL;
	s->keyed = false;
}

static void sock_free(struct sock *s)
{
	struct sock **p = &st.buckets[sock_hash(s->id)];

	while (*p != s)
		p = &(*p)->hash_next;
	*p = s->hash_next;
	if (s->older)
		s->older->newer = s->newer;
	else
		st.oldest = s->newer;
	if (s->newer)
		s->newer->older = s->older;
	else
		st.newest = s->older;
	tuple_unlink(s);
	if (s->peer)
		s->peer->peer = NULL;
	st.nr_socks--;
	free(s->recs);
	free(s);
}

/* Most recently seen last: the LRU list decides what to forget first. */
static void sock_touch(struct sock *s)
{
	if (st.newest == s)
		return;
	if (s->older)
		s->older->newer = s->newer;
	else
		st.oldest = s->newer;
	s->newer->older = s->older;
	s->older = st.newest;
	s->newer = NULL;
	st.newest->newer = s;
	st.newest = s;
}

static void ladder_flush(struct sock *s, const char *why);

static struct sock *sock_get(const struct tcptrace_record *rec)
{
	__u64 id = rec->ev.sock_id;
	struct sock *s = sock_find(id);
	unsigned int b;

	if (s) {
		sock_touch(s);
		return s;
	}
	if (st.nr_socks >= MAX_SOCKS) {
		if (env.format == FMT_LADDER)
			ladder_flush(st.oldest,
				     "forgotten: too many sockets at once");
		else
			sock_free(st.oldest);
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;	/* sequence numbers print in full */
	s->id = id;
	s->netns = rec->netns;
	s->seq = st.sock_seq++;
	b = sock_hash(id);
	s->hash_next = st.buckets[b];
	st.buckets[b] = s;
	s->older = st.newest;
	if (st.newest)
		st.newest->newer = s;
	else
		st.oldest = s;
	st.newest = s;
	st.nr_socks++;
	return s;
}

static void socks_free(void)
{
	while (st.oldest)
		sock_free(st.oldest);
}

/*
 * Whether a transition can be a socket's first: out of CLOSE, or its birth
 * off a listener (a request, or a child).
 */
static bool is_birth(const struct tcptrace_event *ev)
{
	return ev->oldstate == TCPTRACE_CLOSE ||
	       (ev->oldstate == TCPTRACE_LISTEN &&
		(ev->newstate == TCPTRACE_SYN_RECV ||
		 ev->newstate == TCPTRACE_NEW_SYN_RECV));
}

/* What the socket's ISNs are, learnt from the records ending a handshake. */
static void learn_isns(struct sock *s, const struct tcptrace_event *ev)
{
	bool client = ev->oldstate == TCPTRACE_SYN_SENT ||
		      ev->newstate == TCPTRACE_SYN_SENT;
	bool server = ev->oldstate == TCPTRACE_SYN_RECV ||
		      ev->newstate == TCPTRACE_SYN_RECV ||
		      ev->oldstate == TCPTRACE_NEW_SYN_RECV ||
		      ev->newstate == TCPTRACE_NEW_SYN_RECV;

	if (!s->iss_name && (client || server)) {
		s->iss_name = client ? 'x' : 'y';
		s->irs_name = client ? 'y' : 'x';
	}
	if (!s->iss_name || ev->flags & TCPTRACE_F_SEQ_UNSET)
		return;
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
	} else if (ev->newstate == TCPTRACE_NEW_SYN_RECV && !s->iss_known) {
		/* A request: its SYN-ACK, seq=y ack=x+1. */
		s->iss = ev->snd_una;
		s->irs = ev->rcv_nxt - 1;
		s->iss_known = true;
		s->irs_known = true;
	}
}

static void hist_add(struct hist *h, __u64 ns)
{
	__u64 us = ns / 1000;

	h->slot[us ? 63 - __builtin_clzll(us) : 0]++;
	h->n++;
}

static void count_transition(const struct tcptrace_event *ev)
{
	struct trans_count *t;
	unsigned int i;

	for (i = 0; i < st.nr_trans; i++) {
		if (st.trans[i].old == ev->oldstate &&
		    st.trans[i].new == ev->newstate) {
			st.trans[i].n++;
			return;
		}
	}
	if (st.nr_trans == st.trans_cap) {
		t = realloc(st.trans, (st.trans_cap * 2 + 16) * sizeof(*t));
		if (!t)
			return;
		st.trans = t;
		st.trans_cap = st.trans_cap * 2 + 16;
	}
	st.trans[st.nr_trans].old = ev->oldstate;
	st.trans[st.nr_trans].new = ev->newstate;
	st.trans[st.nr_trans].n = 1;
	st.nr_trans++;
}

/* A transition, seen through what is known of its socket. */
struct view {
	struct sock *s;
	bool in_old_known;
	__u64 in_old_ns;
};

static void ladder_add(struct sock *s, const struct tcptrace_record *rec);
static void ladder_closed(struct sock *s);

/*
 * Learn from a transition that passed the filter: before it is printed,
 * what its socket's ISNs and time in the old state are; after, the new
 * state.  call with @after false, print, then with @after true.
 */
static void track(const struct tcptrace_record *rec, struct view *v,
		  bool after)
{
	const struct tcptrace_event *ev = &rec->ev;
	struct sock *s;

	if (!after) {
		memset(v, 0, sizeof(*v));
		if (ev->flags & TCPTRACE_F_ID_UNSET)
			return;
		s = v->s = sock_get(rec);
		if (!s)
			return;
		if (s->state_known && s->state == ev->oldstate &&
		    rec->ts_ns >= s->state_ts) {
			v->in_old_known = true;
			v->in_old_ns = rec->ts_ns - s->state_ts;
		}
		learn_isns(s, ev);
		return;
	}

	count_transition(ev);
	s = v->s;
	if (!s)
		return;
	if (v->in_old_known && ev->oldstate == TCPTRACE_SYN_SENT &&
	    ev->newstate == TCPTRACE_ESTABLISHED)
		hist_add(&st.handshake, v->in_old_ns);
	if (v->in_old_known && ev->oldstate == TCPTRACE_CLOSE_WAIT)
		hist_add(&st.close_wait, v->in_old_ns);
	if (ev->newstate == TCPTRACE_LISTEN || ev->oldstate == TCPTRACE_LISTEN)
		s->listener = ev->newstate == TCPTRACE_LISTEN ||
			      ev->newstate == TCPTRACE_CLOSE;
	if (!s->birth_known && ev->newstate != TCPTRACE_CLOSE && is_birth(ev)) {
		s->birth_known = true;
		s->request_birth = ev->newstate == TCPTRACE_NEW_SYN_RECV;
		s->birth_ts = rec->ts_ns;
	}
	/* The server's handshake: from the SYN its request was made of. */
	if (ev->oldstate == TCPTRACE_SYN_RECV &&
	    ev->newstate == TCPTRACE_ESTABLISHED && s->request_birth &&
	    rec->ts_ns >= s->birth_ts)
		hist_add(&st.server_handshake, rec->ts_ns - s->birth_ts);
	if (ev->newstate == TCPTRACE_CLOSE && s->birth_known &&
	    !s->listener && rec->ts_ns >= s->birth_ts)
		hist_add(&st.lifetime, rec->ts_ns - s->birth_ts);
	s->state_known = true;
	s->state = ev->newstate;
	s->state_ts = rec->ts_ns;

	if (env.format == FMT_LADDER) {
		ladder_add(s, rec);
		if (ev->newstate == TCPTRACE_CLOSE)
			ladder_closed(s);
	} else if (ev->newstate == TCPTRACE_CLOSE) {
		sock_free(s);
	}
}

/* ------------------------------------------------------------------ */
/* Formatting fields                                                   */

/*
 * Number and string formatting without stdio's machinery: the table is the
 * reader's hot path, and printf and snprintf took four fifths of its time.
 * Each returns the length written; buffers are the callers' and large
 * enough (64 bits need 20 digits).
 */
static size_t fmt_u64(char *buf, unsigned long long v)
{
	char tmp[24];
	size_t n = 0, i;

	do {
		tmp[n++] = '0' + v % 10;
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	buf[n] = '\0';
	return n;
}

static size_t fmt_hex(char *buf, unsigned long long v)
{
	static const char digits[] = "0123456789abcdef";
	char tmp[24];
	size_t n = 0, i;

	do {
		tmp[n++] = digits[v & 15];
		v >>= 4;
	} while (v);
	for (i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	buf[n] = '\0';
	return n;
}

/* v with exactly @digits digits, zero-padded. */
static size_t fmt_u64_zero(char *buf, unsigned long long v, size_t digits)
{
	size_t i;

	for (i = digits; i > 0; i--) {
		buf[i - 1] = '0' + v % 10;
		v /= 10;
	}
	buf[digits] = '\0';
	return digits;
}

/* A line of the table, built in place and written with one fwrite(). */
struct line {
	char	buf[1024];
	size_t	len;
};

static void line_put(struct line *l, const char *s, size_t n)
{
	if (n > sizeof(l->buf) - 1 - l->len)
		n = sizeof(l->buf) - 1 - l->len;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

/* @s left-justified in @width columns, then a space: printf's "%-*s ". */
static void line_col(struct line *l, const char *s, size_t width)
{
	size_t n = strlen(s), pad = n < width ? width - n : 0;

	line_put(l, s, n);
	if (pad > sizeof(l->buf) - 2 - l->len)
		pad = sizeof(l->buf) - 2 - l->len;
	memset(l->buf + l->len, ' ', pad);
	l->len += pad;
	line_put(l, " ", 1);
}

/* a.b.c.d, as inet_ntop() writes it (which takes sprintf to do it). */
static size_t fmt_ipv4(char *buf, const __u8 *a)
{
	size_t n = 0;
	int i;

	for (i = 0; i < 4; i++) {
		if (i)
			buf[n++] = '.';
		n += fmt_u64(buf + n, a[i]);
	}
	return n;
}

static void format_state(char *buf, size_t len, unsigned int state)
{
	if (state < ARRAY_SIZE(state_names) && state_names[state])
		snprintf(buf, len, "%s", state_names[state]);
	else
		snprintf(buf, len, "%u", state);
}

static void format_rel(char *buf, size_t len, __u32 seq, __u32 isn, char name)
{
	__u32 offset = seq - isn;

	if (len < 16)
		return;
	buf[0] = name;
	buf[1] = '\0';
	if (offset) {
		buf[1] = '+';
		fmt_u64(buf + 2, offset);
	}
}

static void format_seq(char *buf, size_t len, __u32 seq, bool known,
		       __u32 isn, char name)
{
	if (!known) {
		if (len >= 12)
			fmt_u64(buf, seq);
	} else {
		format_rel(buf, len, seq, isn, name);
	}
}

/* The address alone; false if it is not known. */
static bool format_addr(char *buf, size_t len, const struct tcptrace_event *ev,
			bool local)
{
	static const unsigned char v4mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};
	const __u8 *addr = local ? ev->laddr : ev->raddr;
	char v4[INET_ADDRSTRLEN];

	if (ev->flags & TCPTRACE_F_ADDR_UNSET)
		return false;
	switch (ev->family) {
	case AF_INET:
		if (len >= INET_ADDRSTRLEN)
			fmt_ipv4(buf, addr);
		return true;
	case AF_INET6:
		if (!memcmp(addr, v4mapped, sizeof(v4mapped))) {
			fmt_ipv4(v4, addr + 12);
			snprintf(buf, len, "::ffff:%s", v4);
		} else {
			inet_ntop(AF_INET6, addr, buf, len);
		}
		return true;
	}
	return false;
}

/* One end of a connection: a.b.c.d:port or [IPv6]:port; port 0 as '*'. */
static void format_endpoint(char *buf, size_t len,
			    const struct tcptrace_event *ev, bool local)
{
	__u16 port = local ? ev->lport : ev->rport;
	char host[INET6_ADDRSTRLEN + 8], portstr[8];
	size_t n;

	if (port)
		fmt_u64(portstr, port);
	else
		strcpy(portstr, "*");

	if (ev->flags & TCPTRACE_F_ADDR_UNSET) {
		if (local && port)
			snprintf(buf, len, "?:%s", portstr);
		else
			snprintf(buf, len, "?");
		return;
	}
	if (!format_addr(host, sizeof(host), ev, local)) {
		snprintf(buf, len, "?");
	} else if (ev->family == AF_INET6) {
		snprintf(buf, len, "[%s]:%s", host, portstr);
	} else if (len >= INET_ADDRSTRLEN + 7) {
		n = strlen(host);
		memcpy(buf, host, n);
		buf[n++] = ':';
		strcpy(buf + n, portstr);
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

static void note_first_ts(__u64 ts_ns)
{
	if (!st.have_first_ts) {
		st.first_ts = ts_ns;
		st.have_first_ts = true;
	}
}

/* Seconds (rounded down) and the ns left over, without overflow. */
static void split_ns(__s64 ns, __s64 *secs, __s64 *rest)
{
	*secs = ns / NS_PER_SEC;
	*rest = ns % NS_PER_SEC;
	if (*rest < 0) {
		(*secs)--;
		*rest += NS_PER_SEC;
	}
}

static void format_time(char *buf, size_t len, __u64 ts_ns,
			const struct source *src)
{
	__s64 ns, secs;
	struct tm tm;
	time_t t;
	size_t n;

	if (env.timestamp) {
		ns = (__s64)(ts_ns + (__u64)src->realtime_offset);
		split_ns(ns, &secs, &ns);
		t = secs;
		if (!localtime_r(&t, &tm) ||
		    !(n = strftime(buf, len, "%H:%M:%S", &tm))) {
			snprintf(buf, len, "?");
			return;
		}
		snprintf(buf + n, len - n, ".%06lld", (long long)ns / 1000);
		return;
	}
	ns = (__s64)(ts_ns - st.first_ts);
	if (len < 32)
		return;
	n = 0;
	if (ns < 0)
		buf[n++] = '-';
	n += fmt_u64(buf + n, llabs(ns / NS_PER_SEC));
	buf[n++] = '.';
	fmt_u64_zero(buf + n, llabs(ns % NS_PER_SEC) / 1000, 6);
}

/* UTC wall-clock time, ISO 8601 with ns; false if out of range. */
static bool format_iso(char *buf, size_t len, __u64 ts_ns,
		       const struct source *src)
{
	__s64 ns = (__s64)(ts_ns + (__u64)src->realtime_offset), secs;
	struct tm tm;
	time_t t;
	size_t n;

	split_ns(ns, &secs, &ns);
	t = secs;
	if (!gmtime_r(&t, &tm) || tm.tm_year < -1900 || tm.tm_year > 8099 ||
	    !(n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm)))
		return false;
	snprintf(buf + n, len - n, ".%09lldZ", (long long)ns);
	return true;
}

static void format_ms(char *buf, size_t len, const struct view *v)
{
	size_t n;

	if (!v->in_old_known) {
		snprintf(buf, len, "?");
	} else if (len >= 32) {
		n = fmt_u64(buf, v->in_old_ns / 1000000);
		buf[n++] = '.';
		fmt_u64_zero(buf + n, v->in_old_ns / 1000 % 1000, 3);
	}
}

static const char *const cause_names[TCPTRACE_CAUSE_MAX] = TCPTRACE_CAUSE_NAMES;

/*
 * What a record says beyond its states: the cause of a transition or what an
 * event was, and a timewait socket's FIN_WAIT2 substate.  "" if nothing.
 */
static const char *record_note(const struct tcptrace_record *rec, char *buf,
			       size_t len)
{
	unsigned int cause = TCPTRACE_CAUSE(rec->ev.flags);
	const char *what = cause < TCPTRACE_CAUSE_MAX && cause_names[cause] ?
			   cause_names[cause] : "unknown cause";
	bool fw2 = rec->ev.flags & TCPTRACE_F_TW_FIN_WAIT2;

	/* A timewait socket out of its FIN_WAIT2 substate. */
	if (rec->type == TCPTRACE_REC_STATE &&
	    rec->ev.oldstate == TCPTRACE_TIME_WAIT &&
	    rec->ev.newstate == TCPTRACE_TIME_WAIT) {
		snprintf(buf, len, "the peer's FIN: timewait out of FIN_WAIT2");
		return buf;
	}
	snprintf(buf, len, "%s%s%s", cause ? what : "",
		 cause && fw2 ? ", " : "",
		 fw2 ? "timewait in FIN_WAIT2" : "");
	return buf;
}

/* Whether a transition's sequence numbers mean anything. */
static bool has_seq(const struct tcptrace_event *ev)
{
	/* A request (LISTEN -> NEW_SYN_RECV) has one: a listener has none. */
	return !(ev->flags & TCPTRACE_F_SEQ_UNSET) &&
	       (ev->oldstate != TCPTRACE_LISTEN ||
		ev->newstate == TCPTRACE_NEW_SYN_RECV) &&
	       ev->newstate != TCPTRACE_LISTEN;
}

/* ------------------------------------------------------------------ */
/* The table                                                           */

static void table_header(void)
{
	int addr_width = env.wide ? ADDR_WIDTH_WIDE : ADDR_WIDTH;

	printf("%-*s %3s %-7s %-7s %-16s %-9s %-*s %-*s %-12s %-12s %-10s %-10s %-10s %s\n",
	       env.timestamp ? WALLTIME_WIDTH : TIME_WIDTH,
	       env.timestamp ? "TIME" : "TIME(s)", "CPU", "CTX", "PID",
	       "COMM", "SOCK", addr_width, "LADDR:LPORT", addr_width,
	       "RADDR:RPORT", "OLD", "NEW", "SND_UNA", "SND_NXT", "RCV_NXT",
	       "MS");
}

static void table_transition(const struct tcptrace_record *rec,
			     const struct view *v, const struct source *src)
{
	const struct tcptrace_event *ev = &rec->ev;
	size_t addr_width = env.wide ? ADDR_WIDTH_WIDE : ADDR_WIDTH;
	char pid[24], comm[20], laddr[64], raddr[64], time[48], num[24];
	char una[24], nxt[24], rcv[24], sock[24], ms[32], note[64];
	const struct sock *s = env.absolute ? NULL : v->s;
	const char *ctx, *oldstate, *newstate;
	char ctxnum[24], oldnum[24], newnum[24];
	struct line l = { .len = 0 };
	size_t n;

	format_time(time, sizeof(time), rec->ts_ns, src);
	if (rec->ctx == TCPTRACE_CTX_TASK) {
		ctx = "task";
		fmt_u64(pid, ev->tgid);
		format_comm(comm, sizeof(comm), ev->comm, sizeof(ev->comm));
	} else if (rec->ctx < ARRAY_SIZE(ctx_names)) {
		ctx = ctx_names[rec->ctx];
		strcpy(pid, "-");
		comm[0] = '[';
		n = strlen(ctx);
		memcpy(comm + 1, ctx, n);
		strcpy(comm + 1 + n, "]");
	} else {
		fmt_u64(ctxnum, rec->ctx);
		ctx = ctxnum;
		strcpy(pid, "-");
		strcpy(comm, "-");
	}
	format_endpoint(laddr, sizeof(laddr), ev, true);
	format_endpoint(raddr, sizeof(raddr), ev, false);
	if (ev->oldstate < ARRAY_SIZE(state_names) && state_names[ev->oldstate]) {
		oldstate = state_names[ev->oldstate];
	} else {
		fmt_u64(oldnum, ev->oldstate);
		oldstate = oldnum;
	}
	if (ev->newstate < ARRAY_SIZE(state_names) && state_names[ev->newstate]) {
		newstate = state_names[ev->newstate];
	} else {
		fmt_u64(newnum, ev->newstate);
		newstate = newnum;
	}

	/* A child whose id the module could not learn: nothing to key on. */
	if (ev->flags & TCPTRACE_F_ID_UNSET)
		strcpy(sock, "?");
	else
		fmt_hex(sock, ev->sock_id);
	if (!has_seq(ev)) {
		/* No sequence space yet, or a listener's: none at all. */
		strcpy(una, "-");
		strcpy(nxt, "-");
		strcpy(rcv, "-");
	} else {
		format_seq(una, sizeof(una), ev->snd_una, s && s->iss_known,
			   s ? s->iss : 0, s ? s->iss_name : 0);
		format_seq(nxt, sizeof(nxt), ev->snd_nxt, s && s->iss_known,
			   s ? s->iss : 0, s ? s->iss_name : 0);
		format_seq(rcv, sizeof(rcv), ev->rcv_nxt, s && s->irs_known,
			   s ? s->irs : 0, s ? s->irs_name : 0);
	}
	format_ms(ms, sizeof(ms), v);
	if (rec->type == TCPTRACE_REC_EVENT) {
		newstate = "-";
		strcpy(ms, "-");
	}
	record_note(rec, note + 2, sizeof(note) - 2);

	/* As printf("%-*s %3u %-7s %-7s %-16s %-9s %-*s %-*s %-12s ..."). */
	line_col(&l, time, env.timestamp ? WALLTIME_WIDTH : TIME_WIDTH);
	n = fmt_u64(num, rec->cpu);
	if (n < 3)
		line_put(&l, "   ", 3 - n);
	line_put(&l, num, n);
	line_put(&l, " ", 1);
	line_col(&l, ctx, 7);
	line_col(&l, pid, 7);
	line_col(&l, comm, 16);
	line_col(&l, sock, 9);
	line_col(&l, laddr, addr_width);
	line_col(&l, raddr, addr_width);
	line_col(&l, oldstate, 12);
	line_col(&l, newstate, 12);
	line_col(&l, una, 10);
	line_col(&l, nxt, 10);
	line_col(&l, rcv, 10);
	line_put(&l, ms, strlen(ms));
	if (note[2]) {
		note[0] = ' ';
		note[1] = ' ';
		line_put(&l, note, strlen(note));
	}
	line_put(&l, "\n", 1);
	fwrite(l.buf, 1, l.len, stdout);
}

static void print_loss_line(const struct tcptrace_record *rec)
{
	printf("-- %llu event%s lost on CPU %u --\n", rec->loss.count,
	       rec->loss.count == 1 ? "" : "s", rec->cpu);
}

static void table_unknown(const struct tcptrace_record *rec,
			  const struct source *src)
{
	char time[48];

	format_time(time, sizeof(time), rec->ts_ns, src);
	printf("%-*s %3u record of unknown type %u\n",
	       env.timestamp ? WALLTIME_WIDTH : TIME_WIDTH, time, rec->cpu,
	       rec->type);
}

/* ------------------------------------------------------------------ */
/* JSON lines and CSV                                                  */

/* Length of the valid UTF-8 sequence at @s (at most @n bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	__u32 c;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, c = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, c = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, c = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
	    (len == 4 && (c < 0x10000 || c > 0x10ffff)))
		return 0;
	return len;
}

/* A JSON string of at most @max bytes of @s; invalid UTF-8 as U+FFFD. */
static void json_string(const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strnlen(s, max), i = 0, len;

	putchar('"');
	while (i < n) {
		if (p[i] == '"' || p[i] == '\\') {
			printf("\\%c", p[i]);
			i++;
		} else if (p[i] < 0x20 || p[i] == 0x7f) {
			printf("\\u%04x", p[i]);
			i++;
		} else if ((len = utf8_len(p + i, n - i))) {
			fwrite(p + i, 1, len, stdout);
			i += len;
		} else {
			fputs("\\ufffd", stdout);
			i++;
		}
	}
	putchar('"');
}

static void json_time(const char *key, __u64 ts_ns, const struct source *src)
{
	char iso[64];

	printf("\"ts_ns\":%llu,\"%s\":", (unsigned long long)ts_ns, key);
	if (format_iso(iso, sizeof(iso), ts_ns, src))
		printf("\"%s\"", iso);
	else
		fputs("null", stdout);
}

static void json_state(const char *key, unsigned int state)
{
	if (state < ARRAY_SIZE(state_names) && state_names[state])
		printf(",\"%s\":\"%s\"", key, state_names[state]);
	else
		printf(",\"%s\":%u", key, state);
}

static void json_addr(const char *key, const struct tcptrace_event *ev,
		      bool local)
{
	char host[INET6_ADDRSTRLEN + 8];

	if (format_addr(host, sizeof(host), ev, local))
		printf(",\"%s\":\"%s\"", key, host);
	else
		printf(",\"%s\":null", key);
}

static void json_rel(const char *key, bool show, __u32 seq, bool known,
		     __u32 isn, char name)
{
	char rel[16];

	if (!show || !known) {
		printf(",\"%s\":null", key);
		return;
	}
	format_rel(rel, sizeof(rel), seq, isn, name);
	printf(",\"%s\":\"%s\"", key, rel);
}

static void json_transition(const struct tcptrace_record *rec,
			    const struct view *v, const struct source *src)
{
	const struct tcptrace_event *ev = &rec->ev;
	const struct sock *s = v->s;
	bool task = rec->ctx == TCPTRACE_CTX_TASK, seq = has_seq(ev);

	if (rec->type == TCPTRACE_REC_EVENT)
		fputs("{\"type\":\"event\",", stdout);
	else
		fputs("{\"type\":\"transition\",", stdout);
	json_time("time", rec->ts_ns, src);
	printf(",\"cpu\":%u,", rec->cpu);
	if (rec->ctx < ARRAY_SIZE(ctx_names))
		printf("\"ctx\":\"%s\"", ctx_names[rec->ctx]);
	else
		printf("\"ctx\":%u", rec->ctx);
	printf(",\"netns\":%u", rec->netns);
	if (ev->flags & TCPTRACE_F_ID_UNSET)
		fputs(",\"sock\":null", stdout);
	else
		printf(",\"sock\":\"%llx\"", (unsigned long long)ev->sock_id);
	if (ev->family == AF_INET)
		fputs(",\"family\":\"inet\"", stdout);
	else if (ev->family == AF_INET6)
		fputs(",\"family\":\"inet6\"", stdout);
	else
		printf(",\"family\":%u", ev->family);
	json_addr("laddr", ev, true);
	printf(",\"lport\":%u", ev->lport);
	json_addr("raddr", ev, false);
	printf(",\"rport\":%u", ev->rport);
	json_state("old", ev->oldstate);
	json_state("new", ev->newstate);
	printf(",\"flags\":%u", ev->flags);
	if (TCPTRACE_CAUSE(ev->flags)) {
		char note[64];

		fputs(",\"cause\":", stdout);
		record_note(rec, note, sizeof(note));
		/* The cause alone, without the substate. */
		json_string(note, strcspn(note, ","));
	}
	if (ev->flags & TCPTRACE_F_TW_FIN_WAIT2)
		fputs(",\"tw_substate\":\"FIN_WAIT2\"", stdout);
	if (task) {
		printf(",\"pid\":%u,\"tgid\":%u,\"comm\":", ev->pid, ev->tgid);
		json_string(ev->comm, sizeof(ev->comm));
	} else {
		fputs(",\"pid\":null,\"tgid\":null,\"comm\":null", stdout);
	}
	if (seq)
		printf(",\"snd_una\":%u,\"snd_nxt\":%u,\"rcv_nxt\":%u,\"write_seq\":%u",
		       ev->snd_una, ev->snd_nxt, ev->rcv_nxt, ev->write_seq);
	else
		fputs(",\"snd_una\":null,\"snd_nxt\":null,\"rcv_nxt\":null,\"write_seq\":null",
		      stdout);
	json_rel("snd_una_rel", seq, ev->snd_una, s && s->iss_known,
		 s ? s->iss : 0, s ? s->iss_name : 0);
	json_rel("snd_nxt_rel", seq, ev->snd_nxt, s && s->iss_known,
		 s ? s->iss : 0, s ? s->iss_name : 0);
	json_rel("rcv_nxt_rel", seq, ev->rcv_nxt, s && s->irs_known,
		 s ? s->irs : 0, s ? s->irs_name : 0);
	printf(",\"bytes_acked\":%llu,\"bytes_received\":%llu,\"total_retrans\":%u,\"srtt_us\":%u",
	       ev->bytes_acked, ev->bytes_received, ev->total_retrans,
	       ev->srtt_us);
	if (v->in_old_known)
		printf(",\"in_old_ns\":%llu}\n",
		       (unsigned long long)v->in_old_ns);
	else
		fputs(",\"in_old_ns\":null}\n", stdout);
}

static void json_loss(const struct tcptrace_record *rec,
		      const struct source *src)
{
	fputs("{\"type\":\"lost\",", stdout);
	json_time("time", rec->ts_ns, src);
	printf(",\"cpu\":%u,\"count\":%llu,\"total\":%llu}\n", rec->cpu,
	       rec->loss.count, rec->loss.total);
}

static void json_unknown(const struct tcptrace_record *rec,
			 const struct source *src)
{
	fputs("{\"type\":\"unknown\",", stdout);
	json_time("time", rec->ts_ns, src);
	printf(",\"cpu\":%u,\"record_type\":%u}\n", rec->cpu, rec->type);
}

#define CSV_FIELDS \
	"type,ts_ns,time,cpu,ctx,netns,sock,family,laddr,lport,raddr,rport," \
	"old,new,flags,pid,tgid,comm,snd_una,snd_nxt,rcv_nxt,write_seq," \
	"snd_una_rel,snd_nxt_rel,rcv_nxt_rel,bytes_acked,bytes_received," \
	"total_retrans,srtt_us,in_old_ns,lost_count,lost_total,record_type"

/*
 * A CSV field, quoted when it has to be (RFC 4180); control characters and
 * bytes that are not UTF-8 as '?'.
 */
static void csv_field(const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strnlen(s, max), i = 0, len;
	bool quote = strcspn(s, ",\"") < n ||
		     (n && (s[0] == ' ' || s[n - 1] == ' '));

	if (quote)
		putchar('"');
	while (i < n) {
		if (p[i] == '"') {
			fputs("\"\"", stdout);
			i++;
		} else if (p[i] < 0x20 || p[i] == 0x7f) {
			putchar('?');
			i++;
		} else if ((len = utf8_len(p + i, n - i))) {
			fwrite(p + i, 1, len, stdout);
			i += len;
		} else {
			putchar('?');
			i++;
		}
	}
	if (quote)
		putchar('"');
}

static void csv_time(__u64 ts_ns, const struct source *src)
{
	char iso[64];

	printf("%llu,", (unsigned long long)ts_ns);
	if (format_iso(iso, sizeof(iso), ts_ns, src))
		fputs(iso, stdout);
}

static void csv_transition(const struct tcptrace_record *rec,
			   const struct view *v, const struct source *src)
{
	const struct tcptrace_event *ev = &rec->ev;
	const struct sock *s = v->s;
	char buf[64];
	bool seq = has_seq(ev);

	fputs(rec->type == TCPTRACE_REC_EVENT ? "event," : "transition,",
	      stdout);
	csv_time(rec->ts_ns, src);
	printf(",%u,", rec->cpu);
	if (rec->ctx < ARRAY_SIZE(ctx_names))
		fputs(ctx_names[rec->ctx], stdout);
	else
		printf("%u", rec->ctx);
	printf(",%u,", rec->netns);
	if (!(ev->flags & TCPTRACE_F_ID_UNSET))
		printf("%llx", (unsigned long long)ev->sock_id);
	if (ev->family == AF_INET)
		fputs(",inet,", stdout);
	else if (ev->family == AF_INET6)
		fputs(",inet6,", stdout);
	else
		printf(",%u,", ev->family);
	if (format_addr(buf, sizeof(buf), ev, true))
		fputs(buf, stdout);
	printf(",%u,", ev->lport);
	if (format_addr(buf, sizeof(buf), ev, false))
		fputs(buf, stdout);
	printf(",%u,", ev->rport);
	format_state(buf, sizeof(buf), ev->oldstate);
	printf("%s,", buf);
	format_state(buf, sizeof(buf), ev->newstate);
	printf("%s,%u,", buf, ev->flags);
	if (rec->ctx == TCPTRACE_CTX_TASK) {
		printf("%u,%u,", ev->pid, ev->tgid);
		csv_field(ev->comm, sizeof(ev->comm));
	} else {
		fputs(",,", stdout);
	}
	if (seq)
		printf(",%u,%u,%u,%u,", ev->snd_una, ev->snd_nxt, ev->rcv_nxt,
		       ev->write_seq);
	else
		fputs(",,,,,", stdout);
	if (seq && s && s->iss_known) {
		format_rel(buf, sizeof(buf), ev->snd_una, s->iss, s->iss_name);
		printf("%s,", buf);
		format_rel(buf, sizeof(buf), ev->snd_nxt, s->iss, s->iss_name);
		printf("%s,", buf);
	} else {
		fputs(",,", stdout);
	}
	if (seq && s && s->irs_known) {
		format_rel(buf, sizeof(buf), ev->rcv_nxt, s->irs, s->irs_name);
		fputs(buf, stdout);
	}
	printf(",%llu,%llu,%u,%u,", ev->bytes_acked, ev->bytes_received,
	       ev->total_retrans, ev->srtt_us);
	if (v->in_old_known)
		printf("%llu", (unsigned long long)v->in_old_ns);
	fputs(",,,\n", stdout);
}

static void csv_loss(const struct tcptrace_record *rec,
		     const struct source *src)
{
	fputs("lost,", stdout);
	csv_time(rec->ts_ns, src);
	printf(",%u,,,,,,,,,,,,,,,,,,,,,,,,,,,%llu,%llu,\n", rec->cpu,
	       rec->loss.count, rec->loss.total);
}

static void csv_unknown(const struct tcptrace_record *rec,
			const struct source *src)
{
	fputs("unknown,", stdout);
	csv_time(rec->ts_ns, src);
	printf(",%u,,,,,,,,,,,,,,,,,,,,,,,,,,,,,%u\n", rec->cpu, rec->type);
}

/* ------------------------------------------------------------------ */
/* Ladders: what the records tell of one connection                    */

/*
 * A ladder draws one connection as the textbook does: the client's lifeline
 * on the left, the server's on the right, one row per transition in time
 * order, and between them the segments that the transitions imply, with
 * the sequence numbers the records hold.  An arrow is drawn on the row of
 * the transition that sent it.  One whose sender is not traced, or is a
 * listener's request socket (the SYN,ACK of a normal handshake: Linux makes
 * the accepted socket only when the last ACK comes), gets a row of its own,
 * with no time, before the row of the transition that received it.  Data is
 * a row of '=' with its byte count, from the sequence numbers.
 *
 * Both ends of a connection between two local sockets are paired by their
 * 4-tuple and network namespace; a socket whose peer is not traced is drawn
 * alone, the peer's lifeline empty.  A ladder is printed once its sockets
 * have closed, and at the end for those still open.  Numbers come only from
 * the records; what they do not tell is printed as '?'.
 *
 * ladder_build() computes a ladder once, as rows and notes (struct ladder);
 * the text printer below and the SVG picture (section "Pictures") both draw
 * those rows, so that the two always show the same numbers.
 */

/* The two ends: 0 is the left lifeline, 1 the right. */
struct end {
	const struct sock *s;		/* NULL: not traced */
	const char *role;		/* "client", "server", "socket", "peer" */
	char desc[96];			/* "sock 2, pid 162 (tcpscen)" */
	bool tw_unseen;			/* ended into TIME_WAIT, not recorded */
};

enum seg {
	SEG_SYN,
	SEG_SYNACK,
	SEG_ACK3,	/* the handshake's last ACK */
	SEG_FIN,
	SEG_FINACK,	/* the ACK of the other end's FIN */
	SEG_RST,
	SEG_DATA,	/* data sent before the first FIN or RST */
	SEG_LATE,	/* data sent after the peer's FIN: a half-close */
	SEG_NR
};

/* What the records tell of one direction's sequence space. */
struct dir {
	bool isn_known, fin_known, early_known, late_known;
	__u32 isn;		/* the sender's ISN */
	__u32 fin;		/* the sequence number of its FIN */
	__u32 early;		/* data bytes sent before the first FIN or RST */
	__u32 late;		/* sent after the peer's FIN: a half-close */
	__u32 late_first;	/* the first of those */
	char name;		/* 'x' or 'y' */
	char fin_name;		/* 'u' or 'w' */
	bool name_used, fin_name_used;
	bool syn_rtx_known, fin_rtx_known;
	unsigned int syn_rtx;	/* times its SYN was retransmitted */
	unsigned int fin_rtx;	/* times its FIN was */
};

/* A row: a transition, or a segment that no transition's row shows. */
struct lrow {
	const struct tcptrace_record *rec;	/* NULL: a segment's own row */
	int side;		/* the end whose state it shows; -1: none */
	bool unseen;		/* that end entered the state when no record shows */
	__u8 state;		/* the state entered (unseen: the state it was in) */
	bool dur_known;		/* how long the end stayed in that state */
	__u64 dur_ns;
	enum seg seg;		/* the segment the row shows; SEG_NR: none */
	int from;		/* the end that sent it */
	char label[96];		/* its label, as "ACK ack=u+1" */
};

/*
 * Rows: two per transition at most (one shows a state entered unseen), and
 * one per segment.
 */
#define LADDER_MAX_ROWS		(4 * LADDER_MAX_RECS + 2 * SEG_NR)
#define LADDER_MAX_NOTES	16
#define NOTE_LEN		256

struct ladder {
	struct end end[2];
	struct dir dir[2];	/* dir[i]: sent by end i */
	bool drawn[SEG_NR][2];	/* [segment][sender] */
	bool data_drawn;
	int active;		/* the end that sent the first FIN, or -1 */
	bool simultaneous;
	bool socket_peer;	/* roles not known: "socket" and "peer" */
	char addr[2][80];	/* each end's ADDR:PORT, or "?" */
	__u32 netns;
	unsigned long long seq;	/* when its first socket was first seen */
	bool complete;		/* every traced end seen from birth to CLOSE */
	struct lrow *rows;
	unsigned int nr_rows;
	int recv_row[SEG_NR][2];	/* the row that received [seg][sender] */
	char legend[NOTE_LEN];	/* the symbols' values; "" if none */
	char notes[LADDER_MAX_NOTES][NOTE_LEN];	/* how it ended, and more */
	unsigned int nr_notes;
};

static struct lrow ladder_rows[LADDER_MAX_ROWS];
static const struct source *ladder_src;

/* Append to the string in @buf, as far as it goes. */
__attribute__((format(printf, 3, 4)))
static void append(char *buf, size_t len, const char *fmt, ...)
{
	size_t n = strnlen(buf, len);
	va_list ap;

	if (n + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + n, len - n, fmt, ap);
	va_end(ap);
}

/* A line of the notes below the rows. */
__attribute__((format(printf, 2, 3)))
static void note(struct ladder *l, const char *fmt, ...)
{
	va_list ap;

	if (l->nr_notes >= LADDER_MAX_NOTES)
		return;
	va_start(ap, fmt);
	vsnprintf(l->notes[l->nr_notes++], NOTE_LEN, fmt, ap);
	va_end(ap);
}

/*
 * A transition of @s, by old -> new (-1: any); with @seq, only one that
 * holds sequence numbers.
 */
static const struct tcptrace_record *find_trans(const struct sock *s,
						int old, int new, bool seq)
{
	unsigned int i;

	for (i = 0; s && i < s->nr_recs; i++) {
		const struct tcptrace_event *ev = &s->recs[i].ev;

		if ((old < 0 || ev->oldstate == old) &&
		    (new < 0 || ev->newstate == new) &&
		    (!seq || !(ev->flags & TCPTRACE_F_SEQ_UNSET)))
			return &s->recs[i];
	}
	return NULL;
}

static const struct tcptrace_record *find_rec(const struct sock *s, int old,
					      int new)
{
	return find_trans(s, old, new, true);
}

/*
 * Into CLOSE other than by the FIN handshake, a failed connect or the end
 * of TIME_WAIT.
 */
static bool is_abort(const struct tcptrace_event *ev)
{
	return ev->newstate == TCPTRACE_CLOSE &&
	       ev->oldstate != TCPTRACE_SYN_SENT &&
	       ev->oldstate != TCPTRACE_FIN_WAIT2 &&
	       ev->oldstate != TCPTRACE_CLOSING &&
	       ev->oldstate != TCPTRACE_LAST_ACK &&
	       ev->oldstate != TCPTRACE_TIME_WAIT &&
	       ev->oldstate != TCPTRACE_LISTEN &&
	       ev->oldstate != TCPTRACE_CLOSE;
}

/*
 * Whether a transition into TIME_WAIT left the connection in FIN_WAIT2:
 * an orphaned FIN_WAIT2 handed to a timewait socket, the peer's FIN not
 * come yet.  A module that records TIME_WAIT says so with a flag.
 */
static bool tw_fin_wait2(const struct tcptrace_event *ev)
{
	return ev->flags & TCPTRACE_F_TW_FIN_WAIT2;
}

static const struct tcptrace_record *first_abort(const struct sock *s)
{
	unsigned int i;

	for (i = 0; s && i < s->nr_recs; i++)
		if (is_abort(&s->recs[i].ev))
			return &s->recs[i];
	return NULL;
}

/* Learn the ISN of end @i from the records of either end. */
static void ladder_isn(struct ladder *l, int i)
{
	const struct tcptrace_record *r;
	struct dir *d = &l->dir[i];
	const struct sock *me = l->end[i].s, *peer = l->end[!i].s;

	if ((r = find_rec(me, TCPTRACE_SYN_SENT, TCPTRACE_ESTABLISHED)) ||
	    (r = find_rec(me, TCPTRACE_SYN_RECV, TCPTRACE_ESTABLISHED))) {
		d->isn = r->ev.snd_una - 1;
		d->isn_known = true;
	} else if ((r = find_rec(me, TCPTRACE_SYN_SENT, TCPTRACE_CLOSE))) {
		d->isn = r->ev.snd_una;
		d->isn_known = true;
	} else if ((r = find_rec(peer, TCPTRACE_SYN_SENT,
				 TCPTRACE_ESTABLISHED)) ||
		   (r = find_rec(peer, TCPTRACE_SYN_RECV,
				 TCPTRACE_ESTABLISHED))) {
		d->isn = r->ev.rcv_nxt - 1;
		d->isn_known = true;
	}
}

/* Learn the FIN of end @i: its own records first, then its peer's. */
static void ladder_fin(struct ladder *l, int i)
{
	const struct tcptrace_record *r;
	struct dir *d = &l->dir[i];
	const struct sock *me = l->end[i].s, *peer = l->end[!i].s;

	if ((r = find_rec(me, -1, TCPTRACE_FIN_WAIT1)) ||
	    (r = find_rec(me, TCPTRACE_CLOSE_WAIT, TCPTRACE_LAST_ACK))) {
		d->fin = r->ev.write_seq;
		d->fin_known = true;
	} else if ((r = find_rec(peer, TCPTRACE_ESTABLISHED,
				 TCPTRACE_CLOSE_WAIT)) ||
		   (r = find_rec(peer, TCPTRACE_FIN_WAIT1,
				 TCPTRACE_CLOSING)) ||
		   (r = find_rec(peer, TCPTRACE_FIN_WAIT2, TCPTRACE_CLOSE)) ||
		   ((r = find_rec(peer, TCPTRACE_FIN_WAIT2,
				  TCPTRACE_TIME_WAIT)) &&
		    !tw_fin_wait2(&r->ev))) {
		d->fin = r->ev.rcv_nxt - 1;
		d->fin_known = true;
	} else if ((r = find_rec(me, TCPTRACE_FIN_WAIT1,
				 TCPTRACE_FIN_WAIT2)) ||
		   (r = find_rec(me, TCPTRACE_CLOSING, TCPTRACE_CLOSE)) ||
		   (r = find_rec(me, TCPTRACE_CLOSING, TCPTRACE_TIME_WAIT)) ||
		   (r = find_rec(me, TCPTRACE_LAST_ACK, TCPTRACE_CLOSE))) {
		d->fin = r->ev.snd_una - 1;
		d->fin_known = true;
	}
}

/*
 * Data bytes end @i sent before the connection's first FIN (or RST), and,
 * if it closed second, after the other end's FIN: a half-close.
 */
static void ladder_data(struct ladder *l, int i)
{
	const struct tcptrace_record *r;
	struct dir *d = &l->dir[i];
	const struct sock *me = l->end[i].s, *peer = l->end[!i].s;
	bool passive = l->active == !i && !l->simultaneous, cut_known = true;
	__u32 cut = 0;

	if (!d->isn_known)
		return;
	if (passive &&
	    (r = find_rec(me, TCPTRACE_ESTABLISHED, TCPTRACE_CLOSE_WAIT)))
		cut = r->ev.snd_nxt;	/* sent when the FIN came */
	else if (passive && (r = find_rec(peer, TCPTRACE_ESTABLISHED,
					  TCPTRACE_FIN_WAIT1)))
		cut = r->ev.rcv_nxt;	/* received when the peer closed */
	else if (!passive && d->fin_known)
		cut = d->fin;
	else if (!passive && (r = first_abort(me)) && has_seq(&r->ev))
		cut = r->ev.snd_nxt;
	else if (!passive && (r = first_abort(peer)) && has_seq(&r->ev))
		cut = r->ev.rcv_nxt;
	else
		cut_known = false;
	if (cut_known) {
		d->early = cut - (d->isn + 1);
		d->early_known = d->early < 0x80000000U;
	}
	if (passive && cut_known && d->fin_known) {
		d->late = d->fin - cut;
		d->late_first = cut;
		d->late_known = d->late < 0x80000000U;
	}
}

/* Whether a transition acknowledges the FIN of the socket making it. */
static bool acks_own_fin(const struct tcptrace_event *ev)
{
	switch (ev->oldstate << 8 | ev->newstate) {
	case TCPTRACE_FIN_WAIT1 << 8 | TCPTRACE_FIN_WAIT2:
	case TCPTRACE_CLOSING << 8 | TCPTRACE_CLOSE:
	case TCPTRACE_CLOSING << 8 | TCPTRACE_TIME_WAIT:
	case TCPTRACE_LAST_ACK << 8 | TCPTRACE_CLOSE:
		return true;
	}
	return false;
}

/*
 * How often end @i retransmitted its SYN and its FIN, where the records
 * tell.  A socket in SYN_SENT has sent nothing but its SYN: total_retrans
 * on leaving it counts SYNs.  A FIN counts what was retransmitted from its
 * FIN_WAIT1 (or LAST_ACK) until it was acknowledged, when nothing else was
 * unacknowledged as it went (snd_una is write_seq, the FIN's number).
 */
static void ladder_retrans(struct ladder *l, int i)
{
	const struct tcptrace_record *in, *out;
	const struct sock *s = l->end[i].s;
	struct dir *d = &l->dir[i];
	unsigned int k;

	if ((out = find_trans(s, TCPTRACE_SYN_SENT, TCPTRACE_ESTABLISHED,
			      false)) ||
	    (out = find_trans(s, TCPTRACE_SYN_SENT, TCPTRACE_CLOSE, false))) {
		d->syn_rtx = out->ev.total_retrans;
		d->syn_rtx_known = true;
	}
	in = find_rec(s, -1, TCPTRACE_FIN_WAIT1);
	if (!in)
		in = find_rec(s, TCPTRACE_CLOSE_WAIT, TCPTRACE_LAST_ACK);
	if (!in || in->ev.snd_una != in->ev.write_seq)
		return;
	for (k = in - s->recs + 1; k < s->nr_recs; k++) {
		out = &s->recs[k];
		if (acks_own_fin(&out->ev) &&
		    out->ev.total_retrans >= in->ev.total_retrans) {
			d->fin_rtx = out->ev.total_retrans -
				     in->ev.total_retrans;
			d->fin_rtx_known = true;
			return;
		}
	}
}

/* Who closed first: the end that entered FIN_WAIT1 first. */
static void ladder_closer(struct ladder *l)
{
	const struct tcptrace_record *fw[2], *cw[2];
	int i;

	l->active = -1;
	for (i = 0; i < 2; i++) {
		fw[i] = find_trans(l->end[i].s, -1, TCPTRACE_FIN_WAIT1, false);
		cw[i] = find_trans(l->end[i].s, -1, TCPTRACE_CLOSE_WAIT, false);
		if (find_trans(l->end[i].s, TCPTRACE_FIN_WAIT1,
			       TCPTRACE_CLOSING, false))
			l->simultaneous = true;
	}
	if (fw[0] && fw[1])
		l->active = fw[1]->ts_ns < fw[0]->ts_ns;
	else if (fw[0] || fw[1])
		l->active = fw[0] ? 0 : 1;
	else if (cw[0] || cw[1])
		l->active = cw[0] ? 1 : 0;
}

/* A sequence number of a direction: x+N, or the number, or '?'. */
static void format_dir_value(char *buf, size_t len, struct dir *d,
			     bool known, __u32 v)
{
	if (!known) {
		snprintf(buf, len, "?");
	} else if (!env.absolute && d->isn_known) {
		format_rel(buf, len, v, d->isn, d->name);
		d->name_used = true;
	} else {
		snprintf(buf, len, "%u", v);
	}
}

/* A symbol of the legend (x, u+1), or with --absolute its number. */
static void sym(char *buf, size_t len, struct dir *d, bool fin,
		unsigned int plus)
{
	bool known = fin ? d->fin_known : d->isn_known;
	__u32 v = (fin ? d->fin : d->isn) + plus;
	char name = fin ? d->fin_name : d->name;

	if (env.absolute) {
		if (known)
			snprintf(buf, len, "%u", v);
		else
			snprintf(buf, len, "?");
		return;
	}
	if (fin)
		d->fin_name_used = true;
	else
		d->name_used = true;
	if (plus)
		snprintf(buf, len, "%c+%u", name, plus);
	else
		snprintf(buf, len, "%c", name);
}

/* Bytes of data a row shows, or -1 if not known. */
static long long data_bytes(const struct dir *d, enum seg seg)
{
	if (seg == SEG_LATE)
		return d->late_known ? (long long)d->late : -1;
	return d->early_known ? (long long)d->early : -1;
}

static void seg_label(char *buf, size_t len, struct ladder *l, enum seg seg,
		      int from)
{
	struct dir *me = &l->dir[from], *peer = &l->dir[!from];
	char a[24], b[24];
	long long n;
	__u32 first;

	switch (seg) {
	case SEG_SYN:
		sym(a, sizeof(a), me, false, 0);
		snprintf(buf, len, "SYN seq=%s", a);
		break;
	case SEG_SYNACK:
		sym(a, sizeof(a), me, false, 0);
		sym(b, sizeof(b), peer, false, 1);
		snprintf(buf, len, "SYN,ACK seq=%s ack=%s", a, b);
		break;
	case SEG_ACK3:
		sym(a, sizeof(a), peer, false, 1);
		snprintf(buf, len, "ACK ack=%s", a);
		break;
	case SEG_FIN:
		sym(a, sizeof(a), me, true, 0);
		snprintf(buf, len, "FIN seq=%s", a);
		break;
	case SEG_FINACK:
		sym(a, sizeof(a), peer, true, 1);
		snprintf(buf, len, "ACK ack=%s", a);
		break;
	case SEG_RST:
		snprintf(buf, len, "RST");
		break;
	case SEG_DATA:
	case SEG_LATE:
		n = data_bytes(me, seg);
		if (n < 0) {
			snprintf(buf, len, "? bytes");
			break;
		}
		first = seg == SEG_LATE ? me->late_first : me->isn + 1;
		format_dir_value(a, sizeof(a), me, true, first);
		format_dir_value(b, sizeof(b), me, true, first + n - 1);
		snprintf(buf, len, "%lld byte%s %s..%s%s", n, n == 1 ? "" : "s",
			 a, b, seg == SEG_LATE ? " (half-close)" : "");
		break;
	default:
		buf[0] = '\0';
	}
}

/* Add a row, its label made now (which names the symbols it uses). */
static int ladder_add_row(struct ladder *l, const struct tcptrace_record *rec,
			  int side, bool unseen, __u8 state, enum seg seg,
			  int from)
{
	struct lrow *r;

	if (l->nr_rows >= LADDER_MAX_ROWS)
		return -1;
	r = &l->rows[l->nr_rows];
	memset(r, 0, sizeof(*r));
	r->rec = rec;
	r->side = side;
	r->unseen = unseen;
	r->state = state;
	r->seg = seg;
	r->from = from;
	if (seg != SEG_NR)
		seg_label(r->label, sizeof(r->label), l, seg, from);
	return l->nr_rows++;
}

/* The row of a segment no transition row has shown, added at most once. */
static void ladder_seg_row(struct ladder *l, enum seg seg, int from)
{
	if (l->drawn[seg][from])
		return;
	l->drawn[seg][from] = true;
	if (seg == SEG_DATA || seg == SEG_LATE) {
		long long n = data_bytes(&l->dir[from], seg);

		/* No data, no row; unknown data only from a traced end. */
		if (!n || (n < 0 && (seg == SEG_LATE || !l->end[from].s)))
			return;
	}
	ladder_add_row(l, NULL, -1, false, 0, seg, from);
}

static void ladder_data_rows(struct ladder *l)
{
	if (l->data_drawn)
		return;
	l->data_drawn = true;
	ladder_seg_row(l, SEG_DATA, 0);
	ladder_seg_row(l, SEG_DATA, 1);
}

/*
 * One transition of end @i: first the rows of the segments it received
 * that no row has shown yet, then its own row with what it sent.  The
 * segment it received lands on its row (recv_row).
 */
static void ladder_event(struct ladder *l, int i,
			 const struct tcptrace_record *rec)
{
	const struct tcptrace_event *ev = &rec->ev;
	const struct tcptrace_record *peer_est;
	enum seg send = SEG_NR, recv = SEG_NR;
	int o = !i, row;

	switch (ev->oldstate << 8 | ev->newstate) {
	case TCPTRACE_CLOSE << 8 | TCPTRACE_SYN_SENT:
		send = SEG_SYN;
		break;
	case TCPTRACE_SYN_SENT << 8 | TCPTRACE_ESTABLISHED:
		ladder_seg_row(l, SEG_SYNACK, o);
		recv = SEG_SYNACK;
		send = SEG_ACK3;
		break;
	case TCPTRACE_SYN_SENT << 8 | TCPTRACE_CLOSE:
		if (!ev->total_retrans) {
			ladder_seg_row(l, SEG_RST, o);
			recv = SEG_RST;
		}
		break;
	case TCPTRACE_LISTEN << 8 | TCPTRACE_SYN_RECV:
		peer_est = find_rec(l->end[o].s, TCPTRACE_SYN_SENT,
				    TCPTRACE_ESTABLISHED);
		ladder_seg_row(l, SEG_SYN, o);
		if (peer_est && peer_est->ts_ns > rec->ts_ns) {
			/* Born at the SYN (Fast Open): it answers. */
			recv = SEG_SYN;
			send = SEG_SYNACK;
		} else {
			/* Born at the last ACK; a request socket answered. */
			ladder_seg_row(l, SEG_SYNACK, i);
			ladder_seg_row(l, SEG_ACK3, o);
			recv = SEG_ACK3;
		}
		break;
	case TCPTRACE_LISTEN << 8 | TCPTRACE_NEW_SYN_RECV:
		/* A request: made by the SYN, it answers. */
		ladder_seg_row(l, SEG_SYN, o);
		recv = SEG_SYN;
		send = SEG_SYNACK;
		break;
	case TCPTRACE_NEW_SYN_RECV << 8 | TCPTRACE_SYN_RECV:
		/* The last ACK makes the child of the request. */
		ladder_seg_row(l, SEG_ACK3, o);
		recv = SEG_ACK3;
		break;
	case TCPTRACE_SYN_RECV << 8 | TCPTRACE_ESTABLISHED:
		if (find_rec(l->end[i].s, TCPTRACE_NEW_SYN_RECV,
			     TCPTRACE_SYN_RECV))
			break;	/* the ACK is drawn, at the child's birth */
		ladder_seg_row(l, SEG_ACK3, o);
		recv = SEG_ACK3;
		break;
	case TCPTRACE_ESTABLISHED << 8 | TCPTRACE_FIN_WAIT1:
	case TCPTRACE_SYN_RECV << 8 | TCPTRACE_FIN_WAIT1:
		ladder_data_rows(l);
		send = SEG_FIN;
		break;
	case TCPTRACE_ESTABLISHED << 8 | TCPTRACE_CLOSE_WAIT:
		ladder_data_rows(l);
		ladder_seg_row(l, SEG_FIN, o);
		recv = SEG_FIN;
		send = SEG_FINACK;
		break;
	case TCPTRACE_FIN_WAIT1 << 8 | TCPTRACE_FIN_WAIT2:
	case TCPTRACE_CLOSING << 8 | TCPTRACE_CLOSE:
	case TCPTRACE_CLOSING << 8 | TCPTRACE_TIME_WAIT:
	case TCPTRACE_LAST_ACK << 8 | TCPTRACE_CLOSE:
		/*
		 * The module said a reset came (an event record): it, not
		 * the ACK of our FIN, ended the close -- the peer was gone.
		 */
		if (ev->newstate == TCPTRACE_CLOSE && l->end[i].s &&
		    l->end[i].s->rst_rcvd &&
		    l->end[i].s->rst_rcvd_ts <= rec->ts_ns) {
			ladder_seg_row(l, SEG_RST, o);
			recv = SEG_RST;
			break;
		}
		ladder_seg_row(l, SEG_FINACK, o);
		recv = SEG_FINACK;
		break;
	case TCPTRACE_FIN_WAIT1 << 8 | TCPTRACE_CLOSING:
		ladder_seg_row(l, SEG_FIN, o);
		recv = SEG_FIN;
		send = SEG_FINACK;
		break;
	case TCPTRACE_FIN_WAIT2 << 8 | TCPTRACE_CLOSE:
	case TCPTRACE_FIN_WAIT2 << 8 | TCPTRACE_TIME_WAIT:
		if (tw_fin_wait2(ev))
			break;	/* no FIN came: a timewait socket waits for it */
		__attribute__((fallthrough));
	case TCPTRACE_TIME_WAIT << 8 | TCPTRACE_TIME_WAIT:
		/* The FIN, to the connection or to its timewait socket. */
		ladder_seg_row(l, SEG_LATE, o);
		ladder_seg_row(l, SEG_FIN, o);
		recv = SEG_FIN;
		send = SEG_FINACK;
		break;
	case TCPTRACE_CLOSE_WAIT << 8 | TCPTRACE_LAST_ACK:
		ladder_seg_row(l, SEG_LATE, i);
		send = SEG_FIN;
		break;
	default:
		if (!is_abort(ev))
			break;
		ladder_data_rows(l);
		if (rec->ctx == TCPTRACE_CTX_TASK) {
			send = SEG_RST;
		} else {
			ladder_seg_row(l, SEG_RST, o);
			recv = SEG_RST;
		}
	}
	if (send != SEG_NR && l->drawn[send][i])
		send = SEG_NR;	/* its receiver's row showed it already */
	if (send != SEG_NR)
		l->drawn[send][i] = true;
	row = ladder_add_row(l, rec, i, false, ev->newstate, send, i);
	if (row >= 0 && recv != SEG_NR && l->recv_row[recv][o] < 0)
		l->recv_row[recv][o] = row;
}

/* How long each end stayed in the state each of its rows entered. */
static void ladder_durations(struct ladder *l)
{
	struct lrow *r, *next;
	unsigned int i, j;

	for (i = 0; i < l->nr_rows; i++) {
		r = &l->rows[i];
		if (r->side < 0 || r->unseen)
			continue;
		for (j = i + 1; j < l->nr_rows; j++)
			if (l->rows[j].side == r->side)
				break;
		if (j == l->nr_rows)
			continue;
		next = &l->rows[j];
		if (next->unseen || next->rec->ev.oldstate != r->state ||
		    next->rec->ts_ns < r->rec->ts_ns)
			continue;
		r->dur_known = true;
		r->dur_ns = next->rec->ts_ns - r->rec->ts_ns;
	}
}

static void format_duration(char *buf, size_t len, __u64 ns)
{
	if (ns < 1000000000ULL)
		snprintf(buf, len, "%llu.%03llu ms", ns / 1000000,
			 ns / 1000 % 1000);
	else
		snprintf(buf, len, "%llu.%03llu s", ns / 1000000000,
			 ns / 1000000 % 1000);
}

/* The ends' addresses, from the socket's last record that has them. */
static bool end_addrs(const struct sock *s, char *l, char *r, size_t len)
{
	unsigned int i = s ? s->nr_recs : 0;

	while (i--) {
		const struct tcptrace_event *ev = &s->recs[i].ev;

		if (!(ev->flags & TCPTRACE_F_ADDR_UNSET) && ev->lport &&
		    ev->rport) {
			format_endpoint(l, len, ev, true);
			format_endpoint(r, len, ev, false);
			return true;
		}
	}
	return false;
}

/* "sock 2, pid 162 (tcpscen)": the socket cookie and its task, if seen. */
static void end_desc(struct end *e)
{
	const struct sock *s = e->s;
	char comm[20];
	unsigned int k;

	if (!s) {
		snprintf(e->desc, sizeof(e->desc), "not traced");
		return;
	}
	snprintf(e->desc, sizeof(e->desc), "sock %llx",
		 (unsigned long long)s->id);
	for (k = 0; k < s->nr_recs; k++) {
		if (s->recs[k].ctx == TCPTRACE_CTX_TASK) {
			format_comm(comm, sizeof(comm), s->recs[k].ev.comm,
				    sizeof(s->recs[k].ev.comm));
			append(e->desc, sizeof(e->desc), ", pid %u (%s)",
			       s->recs[k].ev.tgid, comm);
			break;
		}
	}
}

/* The symbols the arrows used, and their values. */
static void ladder_legend(struct ladder *l)
{
	char a[24], *buf = l->legend;
	const char *sep = "";
	size_t len = sizeof(l->legend);
	int i, e, n = 0;

	buf[0] = '\0';
	if (env.absolute)
		return;
	for (i = 0; i < 2; i++) {
		if (!l->dir[i].name_used)
			continue;
		if (l->dir[i].isn_known)
			append(buf, len, "%s%c = %u", sep, l->dir[i].name,
			       l->dir[i].isn);
		else
			append(buf, len, "%s%c = ?", sep, l->dir[i].name);
		sep = ", ";
		n++;
	}
	if (n)
		append(buf, len, " (initial sequence number%s)",
		       n > 1 ? "s" : "");
	sep = n ? "; " : "";
	n = 0;
	for (i = 0; i < 2; i++) {
		e = l->active >= 0 ? (i ? !l->active : l->active) : i;
		if (!l->dir[e].fin_name_used)
			continue;
		format_dir_value(a, sizeof(a), &l->dir[e], l->dir[e].fin_known,
				 l->dir[e].fin);
		append(buf, len, "%s%c = %s", sep, l->dir[e].fin_name, a);
		sep = ", ";
		n++;
	}
	if (n)
		append(buf, len, " (FIN%s)", n > 1 ? "s" : "");
}

/*
 * How a connect() ended, if it failed.  A refusal in task context is not
 * a sure one: on loopback the RST comes while connect() holds the socket
 * and is processed on its task, as close() in SYN_SENT would be.
 */
static void outcome_connect(struct ladder *l, int i)
{
	const struct sock *s = l->end[i].s;
	const struct tcptrace_record *r, *born;
	char d[32] = "?";

	r = find_trans(s, TCPTRACE_SYN_SENT, TCPTRACE_CLOSE, false);
	if (!r)
		return;
	born = find_trans(s, TCPTRACE_CLOSE, TCPTRACE_SYN_SENT, false);
	if (born && r->ts_ns >= born->ts_ns)
		format_duration(d, sizeof(d), r->ts_ns - born->ts_ns);
	if (!r->ev.total_retrans)
		note(l, "connect refused: SYN_SENT -> CLOSE %s after connect(), no SYN retransmitted: a RST (or an ICMP error) answered the SYN",
		     d);
	else
		note(l, "connect failed: SYN_SENT -> CLOSE %s after connect() and %u SYN retransmission%s: timed out, or refused late",
		     d, r->ev.total_retrans,
		     r->ev.total_retrans == 1 ? "" : "s");
	if (r->ctx == TCPTRACE_CTX_TASK)
		note(l, "(in task context, as on loopback, where the answer waits for connect() to let go of the socket; close() in SYN_SENT would look the same)");
}

/* Whether @s entered TIME_WAIT, and a record shows it. */
static bool time_wait_seen(const struct sock *s)
{
	return find_trans(s, -1, TCPTRACE_TIME_WAIT, false);
}

/*
 * Whether @s ended into TIME_WAIT, as far as its records show: without a
 * TIME_WAIT record, its full socket's last transition reads CLOSE.
 */
static bool to_time_wait(const struct sock *s)
{
	return find_trans(s, TCPTRACE_FIN_WAIT2, TCPTRACE_CLOSE, false) ||
	       find_trans(s, TCPTRACE_CLOSING, TCPTRACE_CLOSE, false) ||
	       time_wait_seen(s);
}

/* What the active closer's TIME_WAIT was, for its note; "" if none. */
static void time_wait_phrase(char *buf, size_t len, const struct sock *s)
{
	const struct tcptrace_record *in, *out;
	const char *what;
	char d[32];

	in = find_trans(s, -1, TCPTRACE_TIME_WAIT, false);
	out = find_trans(s, TCPTRACE_TIME_WAIT, TCPTRACE_CLOSE, false);
	buf[0] = '\0';
	/* A timewait socket still waiting for the FIN of the peer. */
	what = in && tw_fin_wait2(&in->ev) &&
	       !find_trans(s, TCPTRACE_TIME_WAIT, TCPTRACE_TIME_WAIT, false) ?
	       "a FIN_WAIT2 timewait socket" :
	       "TIME_WAIT";
	if (in && out && out->ts_ns >= in->ts_ns) {
		format_duration(d, sizeof(d), out->ts_ns - in->ts_ns);
		snprintf(buf, len, "; then %s, for %s", what, d);
	} else if (in) {
		snprintf(buf, len, "; then %s", what);
	} else if (to_time_wait(s)) {
		snprintf(buf, len,
			 "; then TIME_WAIT, which is not traced: its last row reads CLOSE");
	}
}

/* The close by FINs: who went first, how long the other took. */
static void outcome_close(struct ladder *l)
{
	const struct sock *as = l->end[l->active].s, *ps = l->end[!l->active].s;
	const struct tcptrace_record *in, *out;
	const char *a = l->end[l->active].role, *p = l->end[!l->active].role;
	const struct dir *pd = &l->dir[!l->active];
	char d[32], tw[96];

	time_wait_phrase(tw, sizeof(tw), as);
	note(l, "active close: the %s sent the first FIN%s", a, tw);
	in = find_trans(ps, TCPTRACE_ESTABLISHED, TCPTRACE_CLOSE_WAIT, false);
	out = find_trans(ps, TCPTRACE_CLOSE_WAIT, -1, false);
	if (in && out && out->ts_ns >= in->ts_ns) {
		format_duration(d, sizeof(d), out->ts_ns - in->ts_ns);
		note(l, "passive close: the %s, after %s in CLOSE_WAIT", p, d);
	} else if (in) {
		note(l, "passive close: the %s, in CLOSE_WAIT at the end", p);
	} else if (!ps && to_time_wait(as)) {
		note(l, "passive close: the %s (its FIN came)", p);
	}
	if (pd->late_known && pd->late)
		note(l, "half-close: the %s sent %u byte%s in CLOSE_WAIT, after the %s's FIN",
		     p, pd->late, pd->late == 1 ? "" : "s", a);
}

/* How the connection closed, in words, from the records alone. */
static void ladder_outcome(struct ladder *l)
{
	const struct tcptrace_record *ab[2];
	const struct sock *s;
	char d[32];
	int i, first;
	bool open = false, tw = true;

	for (i = 0; i < 2; i++) {
		outcome_connect(l, i);
		s = l->end[i].s;
		if (s && !s->closed)
			open = true;
		if (s && !time_wait_seen(s))
			tw = false;
		ab[i] = first_abort(s);
	}
	if (l->simultaneous) {
		note(l, "simultaneous close: each end sent its FIN before the other's came (FIN_WAIT1 -> CLOSING); then TIME_WAIT%s",
		     tw ? "" : ", which is not traced");
	} else if (l->active >= 0) {
		outcome_close(l);
	} else if (ab[0] || ab[1]) {
		first = ab[0] && ab[1] ? ab[1]->ts_ns < ab[0]->ts_ns :
			ab[0] ? 0 : 1;
		format_state(d, sizeof(d), ab[first]->ev.oldstate);
		if (ab[first]->ctx == TCPTRACE_CTX_TASK && ab[!first])
			note(l, "reset: the %s aborted, %s -> CLOSE in task context with no FIN: it sent a RST; the other end closed when it came",
			     l->end[first].role, d);
		else if (ab[first]->ctx == TCPTRACE_CTX_TASK)
			note(l, "reset: the %s went %s -> CLOSE in task context with no FIN: it aborted (sending a RST), or a RST from the peer was processed on its task",
			     l->end[first].role, d);
		else
			note(l, "reset: the %s went %s -> CLOSE with no FIN, on a RST (or a timeout)%s",
			     l->end[first].role, d,
			     ab[!first] ? "; so did the other end" : "");
	}
	if (open)
		note(l, "still open when the records end");
	for (i = 0; i < 2; i++) {
		s = l->end[i].s;
		if (s && s->lost_while_open)
			note(l, "transitions were lost while the %s was open: this ladder may lack some",
			     l->end[i].role);
		if (s && s->recs_dropped)
			note(l, "%u more transition%s of the %s not drawn",
			     s->recs_dropped, s->recs_dropped == 1 ? "" : "s",
			     l->end[i].role);
	}
}

/* 0 for a client, 2 for an accepted socket, 1 if it is not known. */
static int role_rank(const struct sock *s)
{
	if (find_trans(s, -1, TCPTRACE_SYN_SENT, false) ||
	    find_trans(s, TCPTRACE_SYN_SENT, -1, false))
		return 0;
	if (find_trans(s, -1, TCPTRACE_SYN_RECV, false) ||
	    find_trans(s, TCPTRACE_SYN_RECV, -1, false))
		return 2;
	return 1;
}

/* Whether all of @s's life is in its records: from birth to CLOSE. */
static bool whole_life(const struct sock *s)
{
	if (!s)
		return true;
	if (!s->nr_recs || !s->closed || s->lost_while_open ||
	    s->recs_dropped)
		return false;
	return is_birth(&s->recs[0].ev);
}

/* Which end goes left, and the roles: the client on the left. */
static void ladder_ends(struct ladder *l, const struct sock *a,
			const struct sock *b)
{
	static const char *const left_role[] = { "client", "socket", "client" };
	static const char *const right_role[] = { "server", "peer", "server" };
	const struct sock *t;
	int rank;

	if (b && (role_rank(b) < role_rank(a) ||
		  (role_rank(b) == role_rank(a) && b->seq < a->seq))) {
		t = a;
		a = b;
		b = t;
	}
	rank = role_rank(a);
	/* Alone, an accepted socket goes on the right. */
	if (!b && rank == 2) {
		l->end[1].s = a;
	} else {
		l->end[0].s = a;
		l->end[1].s = b;
		if (b && rank == 1 && role_rank(b) == 2)
			rank = 0;
	}
	l->end[0].role = left_role[rank];
	l->end[1].role = right_role[rank];
	l->socket_peer = rank == 1;
}

/*
 * Compute the ladder of @a and its peer @b (NULL if not traced): the rows
 * in time order, the legend and the notes; @why, if not NULL, is a last
 * note.  Both the text and the picture are drawn from it.
 */
static void ladder_build(struct ladder *l, const struct sock *a,
			 const struct sock *b, const char *why)
{
	const struct sock *t;
	unsigned int k[2] = { 0, 0 };
	int i, side;

	memset(l, 0, sizeof(*l));
	l->rows = ladder_rows;
	for (i = 0; i < SEG_NR; i++)
		l->recv_row[i][0] = l->recv_row[i][1] = -1;
	ladder_ends(l, a, b);
	l->dir[0].name = 'x';
	l->dir[1].name = 'y';
	ladder_closer(l);
	for (i = 0; i < 2; i++) {
		l->dir[i].fin_name = l->active < 0 ? "uw"[i] :
				     l->active == i ? 'u' : 'w';
		ladder_isn(l, i);
		ladder_fin(l, i);
		ladder_retrans(l, i);
	}
	for (i = 0; i < 2; i++) {
		ladder_data(l, i);
		end_desc(&l->end[i]);
		t = l->end[i].s;
		l->end[i].tw_unseen = t && to_time_wait(t) &&
				      !time_wait_seen(t);
	}
	strcpy(l->addr[0], "?");
	strcpy(l->addr[1], "?");
	if (!end_addrs(l->end[0].s, l->addr[0], l->addr[1],
		       sizeof(l->addr[0])))
		end_addrs(l->end[1].s, l->addr[1], l->addr[0],
			  sizeof(l->addr[0]));
	t = l->end[0].s ? l->end[0].s : l->end[1].s;
	l->netns = t->netns;
	l->seq = b && b->seq < a->seq ? b->seq : a->seq;
	l->complete = whole_life(a) && whole_life(b);

	/* Rows in time order; a socket first seen mid-life says so. */
	for (;;) {
		const struct tcptrace_record *r0 = NULL, *r1 = NULL, *r;
		const struct tcptrace_event *ev;

		if (l->end[0].s && k[0] < l->end[0].s->nr_recs)
			r0 = &l->end[0].s->recs[k[0]];
		if (l->end[1].s && k[1] < l->end[1].s->nr_recs)
			r1 = &l->end[1].s->recs[k[1]];
		if (!r0 && !r1)
			break;
		side = !r0 || (r1 && r1->ts_ns < r0->ts_ns);
		r = side ? r1 : r0;
		ev = &r->ev;
		t = l->end[side].s;
		if (!is_birth(ev) &&
		    (!k[side] ||
		     t->recs[k[side] - 1].ev.newstate != ev->oldstate)) {
			/* It entered the old state when no record shows. */
			ladder_add_row(l, r, side, true, ev->oldstate, SEG_NR,
				       0);
		}
		ladder_event(l, side, r);
		k[side]++;
	}
	ladder_durations(l);
	ladder_legend(l);
	ladder_outcome(l);
	if (why)
		note(l, "%s", why);
}

/* Whether a ladder is of the connection --connection names. */
static bool ladder_chosen(const struct ladder *l)
{
	const struct conn_choice *c = &conn_choice;
	const struct sock *s;
	int i, j;

	for (i = 0; i < 2; i++) {
		s = l->end[i].s;
		if (!s)
			continue;
		if (c->by_sock) {
			if (s->id == c->sock)
				return true;
			continue;
		}
		if (!s->key_lport || !s->key_rport)
			continue;
		for (j = 0; j < 2; j++)
			if (s->key_lport == c->port[j] &&
			    s->key_rport == c->port[!j] &&
			    !memcmp(s->key_l, c->addr[j], 16) &&
			    !memcmp(s->key_r, c->addr[!j], 16))
				return true;
	}
	return false;
}

/* ------------------------------------------------------------------ */
/* Ladders as text                                                     */

/* One row: TIME, the left state, the arrow, the right state. */
static void ladder_row(const char *time, int side, const char *state,
		       enum seg seg, int from, const char *label)
{
	char arrow[160], pad = '-';
	int n, fill;

	arrow[0] = '\0';
	if (seg != SEG_NR) {
		if (seg == SEG_DATA || seg == SEG_LATE)
			pad = '=';
		fill = ARROW_WIDTH - (int)strlen(label) - 6;
		if (fill < 1)
			fill = 1;
		if (from == 0) {
			n = snprintf(arrow, sizeof(arrow), "%c%c%c %s ", pad,
				     pad, pad, label);
			memset(arrow + n, pad, fill);
			arrow[n + fill] = '>';
			arrow[n + fill + 1] = '\0';
		} else {
			arrow[0] = '<';
			memset(arrow + 1, pad, fill);
			snprintf(arrow + 1 + fill, sizeof(arrow) - 1 - fill,
				 " %s %c%c%c", label, pad, pad, pad);
		}
	}
	if (side == 1)
		printf("%-*s %-12s |%-*s| %s\n",
		       env.timestamp ? WALLTIME_WIDTH : TIME_WIDTH, time, "",
		       ARROW_WIDTH, arrow, state);
	else
		printf("%-*s %-12s |%-*s|\n",
		       env.timestamp ? WALLTIME_WIDTH : TIME_WIDTH, time,
		       side == 0 ? state : "", ARROW_WIDTH, arrow);
}

/* The time of a row: its transition's, '?' for an unseen state, or none. */
static void row_time(char *buf, size_t len, const struct lrow *r)
{
	if (r->unseen)
		snprintf(buf, len, "?");
	else if (r->rec)
		format_time(buf, len, r->rec->ts_ns, ladder_src);
	else
		buf[0] = '\0';
}

static void ladder_print_text(const struct ladder *l)
{
	const struct lrow *r;
	char time[48], state[16];
	unsigned int i;

	if (st.nr_ladders++)
		putchar('\n');
	printf("=== %s %s -> %s %s", l->end[0].role, l->addr[0],
	       l->end[1].role, l->addr[1]);
	if (l->netns)
		printf(", netns %u", l->netns);
	putchar('\n');
	for (i = 0; i < 2; i++)
		printf("  %s: %s\n", l->end[i].role, l->end[i].desc);
	printf("%-*s %-12s  %-*s %s\n",
	       env.timestamp ? WALLTIME_WIDTH : TIME_WIDTH,
	       env.timestamp ? "TIME" : "TIME(s)",
	       l->socket_peer ? "SOCKET" : "CLIENT", ARROW_WIDTH, "",
	       l->socket_peer ? "PEER" : "SERVER");
	for (i = 0; i < l->nr_rows; i++) {
		r = &l->rows[i];
		row_time(time, sizeof(time), r);
		state[0] = '\0';
		if (r->side >= 0)
			format_state(state, sizeof(state), r->state);
		ladder_row(time, r->side, state, r->seg, r->from, r->label);
	}
	if (l->legend[0])
		printf("  %s\n", l->legend);
	for (i = 0; i < l->nr_notes; i++)
		printf("  %s\n", l->notes[i]);
}

/* ------------------------------------------------------------------ */
/* Ladders: pairing sockets, and when to draw them                      */

static void svg_ladder_done(const struct ladder *l);

/* Draw the ladder of @s (and its peer), and forget them. */
static void ladder_flush(struct sock *s, const char *why)
{
	struct sock *p = s->peer;
	struct ladder l;

	if (!s->listener && (s->nr_recs || (p && p->nr_recs))) {
		ladder_build(&l, s, p, why);
		if (env.svg_path || env.svg_dir)
			svg_ladder_done(&l);
		else
			ladder_print_text(&l);
	}
	if (p)
		sock_free(p);
	sock_free(s);
}

/* Keep a transition for the ladder, and pair the socket with its peer. */
static void ladder_add(struct sock *s, const struct tcptrace_record *rec)
{
	const struct tcptrace_event *ev = &rec->ev;
	struct sock *o;
	unsigned int b;

	if (s->listener)
		return;
	if (s->nr_recs == s->cap_recs && s->cap_recs < LADDER_MAX_RECS) {
		/* Most connections make 5 or 6 transitions a side. */
		unsigned int cap = s->cap_recs ? s->cap_recs * 2 : 8;
		struct tcptrace_record *recs;

		if (cap > LADDER_MAX_RECS)
			cap = LADDER_MAX_RECS;
		recs = realloc(s->recs, cap * sizeof(*recs));
		if (recs) {
			s->recs = recs;
			s->cap_recs = cap;
		}
	}
	if (s->nr_recs < s->cap_recs)
		s->recs[s->nr_recs++] = *rec;
	else
		s->recs_dropped++;

	if (s->keyed || s->peer || !ev->lport || !ev->rport ||
	    !addr16(ev, true, s->key_l) || !addr16(ev, false, s->key_r))
		return;
	s->key_lport = ev->lport;
	s->key_rport = ev->rport;
	/* The peer is the unpaired socket with the mirrored 4-tuple. */
	b = tuple_hash(s->netns, s->key_l, s->key_lport, s->key_r,
		       s->key_rport);
	for (o = st.tuples[b]; o; o = o->tuple_next) {
		if (o != s && o->netns == s->netns && !o->peer &&
		    o->key_lport == s->key_rport &&
		    o->key_rport == s->key_lport &&
		    !memcmp(o->key_l, s->key_r, 16) &&
		    !memcmp(o->key_r, s->key_l, 16)) {
			tuple_unlink(o);
			o->peer = s;
			s->peer = o;
			return;
		}
	}
	s->keyed = true;
	s->tuple_next = st.tuples[b];
	st.tuples[b] = s;
}

/* A socket entered CLOSE: its ladder is done once its peer's is. */
static void ladder_closed(struct sock *s)
{
	s->closed = true;
	if (s->listener) {
		sock_free(s);
		return;
	}
	if (s->peer && !s->peer->closed)
		return;
	ladder_flush(s, NULL);
}

static int sock_seq_cmp(const void *a, const void *b)
{
	const struct sock *x = *(const struct sock *const *)a;
	const struct sock *y = *(const struct sock *const *)b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* At the end: the connections still open, in the order first seen. */
static void ladder_flush_all(void)
{
	struct sock **v, *s;
	unsigned int n = 0, i;

	v = calloc(st.nr_socks + 1, sizeof(*v));
	if (!v) {
		warn("out of memory");
		return;
	}
	for (s = st.oldest; s; s = s->newer)
		if (!s->peer || s->seq < s->peer->seq)
			v[n++] = s;
	if (n)
		qsort(v, n, sizeof(*v), sock_seq_cmp);
	for (i = 0; i < n; i++)
		ladder_flush(v[i], NULL);
	free(v);
}

/* ------------------------------------------------------------------ */
/* Statistics                                                          */

static int trans_cmp(const void *a, const void *b)
{
	const struct trans_count *x = a, *y = b;

	if (x->n != y->n)
		return x->n < y->n ? 1 : -1;
	if (x->old != y->old)
		return x->old - y->old;
	return x->new - y->new;
}

static void print_stars(unsigned long long v, unsigned long long max,
			int width)
{
	int stars = max ? (int)(v * width / max) : 0, i;

	for (i = 0; i < width; i++)
		putchar(i < stars ? '*' : ' ');
}

static const char *const hist_titles[] = {
	"handshake: connect() to ESTABLISHED, client sockets",
	"handshake: the SYN to ESTABLISHED, accepted sockets with their request",
	"time in CLOSE_WAIT: the peer's FIN to our close()",
	"lifetime: connect() or birth from a listener, to CLOSE",
};

/* The histograms, in the order of hist_titles. */
static const struct hist *hist_of(unsigned int i)
{
	static const struct hist *const hists[] = {
		&st.handshake, &st.server_handshake, &st.close_wait,
		&st.lifetime,
	};

	return hists[i];
}

/* The last slot with a count (-1: none), and the largest count in *@max. */
static int hist_extent(const struct hist *h, unsigned long long *max)
{
	int i, max_slot = -1;

	*max = 0;
	for (i = 0; i < 64; i++) {
		if (h->slot[i]) {
			max_slot = i;
			if (h->slot[i] > *max)
				*max = h->slot[i];
		}
	}
	return max_slot;
}

/* The microseconds slot @i counts: @lo to @hi. */
static void hist_bounds(int i, unsigned long long *lo, unsigned long long *hi)
{
	*lo = i ? 1ULL << i : 0;
	*hi = (2ULL << i) - 1;
}

/* A log2 histogram, laid out as libbpf-tools lay theirs. */
static void print_hist(const char *title, const struct hist *h)
{
	int i, max_slot, width;
	unsigned long long max, lo, hi;

	printf("\n%s: %llu\n", title, h->n);
	max_slot = hist_extent(h, &max);
	if (max_slot < 0)
		return;
	width = max_slot <= 32 ? 10 : 20;
	printf("%*s%-*s : count    distribution\n", max_slot <= 32 ? 5 : 15,
	       "", max_slot <= 32 ? 19 : 29, "usecs");
	for (i = 0; i <= max_slot; i++) {
		hist_bounds(i, &lo, &hi);
		printf("%*llu -> %-*llu : %-8llu |", width, lo, width, hi,
		       h->slot[i]);
		print_stars(h->slot[i], max, 40);
		printf("|\n");
	}
}

static void print_stats(void)
{
	unsigned int i;
	char a[16], b[16], name[40];

	if (st.nr_trans)
		qsort(st.trans, st.nr_trans, sizeof(*st.trans), trans_cmp);
	printf("%-32s %12s\n", "TRANSITION", "COUNT");
	for (i = 0; i < st.nr_trans; i++) {
		format_state(a, sizeof(a), st.trans[i].old);
		format_state(b, sizeof(b), st.trans[i].new);
		snprintf(name, sizeof(name), "%s -> %s", a, b);
		printf("%-32s %12llu\n", name, st.trans[i].n);
	}
	printf("%-32s %12llu\n", "total", st.nr_transitions);
	printf("%-32s %12llu\n", "lost", st.nr_lost);
	for (i = 0; i < st.nr_losses; i++) {
		snprintf(name, sizeof(name), "  lost on CPU %u",
			 st.losses[i].cpu);
		printf("%-32s %12llu\n", name, st.losses[i].n);
	}
	for (i = 0; i < ARRAY_SIZE(hist_titles); i++)
		print_hist(hist_titles[i], hist_of(i));
}

/* ------------------------------------------------------------------ */
/* Pictures: SVG                                                       */

/*
 * --svg and --svg-all draw in SVG 1.1 with nothing outside the file:
 * generic font families, no script, no link, no image.  Coordinates are
 * whole pixels and the few fractions (the slopes of arrow labels) come
 * from integer arithmetic, so that a capture gives the same bytes on every
 * machine.
 *
 * The ladder picture is the textbook's figure of one connection, drawn
 * from the rows that ladder_build() computed for the text:
 *
 *	              client                              server
 *	 0.002656  +-SYN_SENT--+--- SYN seq=x -----.
 *	           | 15.119 ms |                    '--> : request socket
 *	           |           |<-- SYN,ACK seq=y ack=x+1 -'
 *	 0.017775  ESTABLISHED-+--- ACK ack=y+1 -----.
 *	           |  9.421 ms |                      '-->+-SYN_RECV-+ 0.019597
 *
 * Each end's states are boxes along its lifeline, from the row that
 * entered the state to the row that left it, with how long that took.
 * Rows keep their order; the space between two rows is SVG_ROW_H, plus
 * SVG_PX_PER_OCTAVE for each doubling of the time between them beyond 32
 * us: a 60 s TIME_WAIT takes a few rows, not the whole page, and a gap
 * over a second is also drawn broken.  An arrow leaves the row that sent
 * its segment and lands on the row of the transition that received it;
 * when no traced one did, on the other end's answer, or a little lower:
 * its slope is not a measured delay.
 *
 * A file is written whole or not at all: into a temporary file beside it,
 * renamed over it at the end, once every record was read without error.
 */

#define SVG_W			900	/* the ladder picture's width */
#define SVG_MARGIN		24
#define SVG_LANE_X0		230	/* the left lifeline */
#define SVG_LANE_X1		670	/* the right lifeline */
#define SVG_BOX_W		132	/* a state box, centred on its lifeline */
#define SVG_CAP_W		84	/* the CLOSE at the end of a lifeline */
#define SVG_ROW_H		30	/* the least space between two rows */
#define SVG_PX_PER_OCTAVE	6
#define SVG_BREAK_NS		NS_PER_SEC	/* a longer gap is broken */
#define SVG_BREAK_H		16	/* and takes this much more room */
#define SVG_TOP			150	/* the first row */
#define SVG_MONO_W10		66	/* a monospace 11 px character, in 0.1 px */
#define SVG_WRAP		132	/* characters in a line of the caption */
#define FIX			10000	/* fixed point: 4 decimals */

enum svg_kind { SVG_HANDSHAKE, SVG_DATA, SVG_CLOSE, SVG_RESET };

static const char *const svg_kind_name[] = {
	[SVG_HANDSHAKE] = "hs",
	[SVG_DATA] = "data",
	[SVG_CLOSE] = "fin",
	[SVG_RESET] = "rst",
};

static const char *const svg_kind_color[] = {
	[SVG_HANDSHAKE] = "#1f5fa8",
	[SVG_DATA] = "#2e7d32",
	[SVG_CLOSE] = "#a14d00",
	[SVG_RESET] = "#c62828",
};

static const char svg_style[] =
"text{font-family:sans-serif;font-size:11px;fill:#222}\n"
".title{font-size:16px;font-weight:bold}\n"
".title.small{font-size:12px}\n"
".sub{font-size:12px;fill:#555}\n"
".role{font-size:14px;font-weight:bold;text-anchor:middle}\n"
".desc{text-anchor:middle;fill:#555}\n"
".tag{text-anchor:middle;font-style:italic;fill:#a14d00}\n"
".nt{text-anchor:middle;font-style:italic;fill:#888}\n"
".time{font-family:monospace;font-size:10px;fill:#666}\n"
".end{text-anchor:end}\n"
".st{font-weight:bold;text-anchor:middle}\n"
".dur{font-size:10px;text-anchor:middle;fill:#444}\n"
".cap{font-size:10px;text-anchor:middle}\n"
".seg{font-family:monospace;text-anchor:middle}\n"
".brk{font-style:italic;fill:#777}\n"
".legend{font-family:monospace}\n"
".how{fill:#555}\n"
".rq{font-size:10px;font-style:italic;fill:#888}\n"
".hist{font-family:monospace;text-anchor:end}\n"
".n{font-family:monospace}\n"
".lb{fill:#fff;fill-opacity:0.85}\n"
".hs{fill:#1f5fa8}\n"
".data{fill:#2e7d32}\n"
".fin{fill:#a14d00}\n"
".rst{fill:#c62828}\n"
".htitle{font-size:13px;font-weight:bold}\n";

/* What --svg keeps, and what --svg-all wrote, until the end. */
struct svg_file {
	char *tmp;		/* written, to rename to path */
	char *path;
};

static struct svg_out {
	char *buf;		/* --svg: the picture chosen so far */
	size_t len;
	bool have, complete;
	unsigned long long seq;
	char what[200];		/* which connection it is, for a message */
	struct svg_file *files;	/* --svg-all */
	unsigned int nr_files;
	bool failed;
} svg;

/* The integer square root of @v, rounded down. */
static unsigned long long isqrt(unsigned long long v)
{
	unsigned long long r = 0, bit = 1ULL << 62;

	while (bit > v)
		bit >>= 2;
	while (bit) {
		if (v >= r + bit) {
			v -= r + bit;
			r = (r >> 1) + bit;
		} else {
			r >>= 1;
		}
		bit >>= 2;
	}
	return r;
}

/* @v / FIX with its 4 decimals, as "-0.2500". */
static void fmt_fix(char *buf, size_t len, long long v)
{
	snprintf(buf, len, "%s%lld.%04lld", v < 0 ? "-" : "", llabs(v) / FIX,
		 llabs(v) % FIX);
}

/* @s with XML's five special characters escaped. */
static void svg_esc(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&apos;", f);
			break;
		default:
			fputc(*s, f);
		}
	}
}

static void svg_text(FILE *f, int x, int y, const char *cls, const char *s)
{
	fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"%s\">", x, y, cls);
	svg_esc(f, s);
	fputs("</text>\n", f);
}

__attribute__((format(printf, 5, 6)))
static void svg_textf(FILE *f, int x, int y, const char *cls,
		      const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	svg_text(f, x, y, cls, buf);
}

/*
 * @s in lines of at most @width characters, cut at spaces; the number of
 * lines.  With @f NULL, only count them.
 */
static int svg_wrapped(FILE *f, int x, int y, int line_h, const char *cls,
		       const char *s, size_t width)
{
	char line[NOTE_LEN + 8];
	size_t n, cut;
	int lines = 0;

	while (*s) {
		n = strlen(s);
		cut = n;
		if (n > width) {
			for (cut = width; cut > 0 && s[cut] != ' '; cut--)
				;
			if (!cut)
				cut = width;
		}
		if (cut >= sizeof(line))
			cut = sizeof(line) - 1;
		memcpy(line, s, cut);
		line[cut] = '\0';
		if (f)
			svg_text(f, x, y + lines * line_h, cls, line);
		lines++;
		s += cut;
		while (*s == ' ')
			s++;
	}
	return lines;
}

/* The XML declaration, the root, the style, the arrowheads, a background. */
static void svg_begin(FILE *f, int w, int h, const char *title)
{
	unsigned int k;

	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", f);
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n",
		w, h, w, h);
	fputs("<title>", f);
	svg_esc(f, title);
	fputs("</title>\n", f);
	fprintf(f, "<style type=\"text/css\">\n%s</style>\n", svg_style);
	fputs("<defs>\n", f);
	for (k = 0; k < ARRAY_SIZE(svg_kind_name); k++)
		fprintf(f, "<marker id=\"ah-%s\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"9\" markerHeight=\"9\" markerUnits=\"userSpaceOnUse\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"%s\"/></marker>\n",
			svg_kind_name[k], svg_kind_color[k]);
	fputs("</defs>\n", f);
	fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n",
		w, h);
}

/* ---- The ladder picture ---- */

/* Where each row is: its y, and whether a broken gap comes before it. */
struct svg_layout {
	int y[LADDER_MAX_ROWS];
	bool brk[LADDER_MAX_ROWS];
	__u64 brk_ns[LADDER_MAX_ROWS];
	int last;		/* the y of the last row */
	int bottom;		/* where the lifelines end */
};

static struct svg_layout svg_lay;

static enum svg_kind seg_kind(enum seg seg)
{
	switch (seg) {
	case SEG_DATA:
	case SEG_LATE:
		return SVG_DATA;
	case SEG_FIN:
	case SEG_FINACK:
		return SVG_CLOSE;
	case SEG_RST:
		return SVG_RESET;
	default:
		return SVG_HANDSHAKE;
	}
}

static int lane_x(int side)
{
	return side ? SVG_LANE_X1 : SVG_LANE_X0;
}

/* The room a gap of @ns takes beyond SVG_ROW_H: a log2 scale, from 32 us. */
static int svg_gap_px(__u64 ns)
{
	__u64 v = ns / 32000 + 1;
	int lg = 63 - __builtin_clzll(v);
	int frac = (int)(((v << 4) >> lg) & 15);	/* sixteenths, linear */

	return SVG_PX_PER_OCTAVE * (lg * 16 + frac) / 16;
}

/* Whether row @r has a time of its own: not a segment's, not unseen. */
static bool row_timed(const struct lrow *r)
{
	return r->rec && !r->unseen;
}

/*
 * Place the rows.  The time between two timed rows goes before the rows
 * with no time that come between them (the segments the second one
 * received), so that those stay next to it.
 */
static void svg_layout_rows(const struct ladder *l, struct svg_layout *lay)
{
	const struct lrow *r;
	int extra[LADDER_MAX_ROWS], y = SVG_TOP;
	unsigned int i, k, prev = 0;
	bool have_prev = false;
	__u64 dt;

	memset(extra, 0, sizeof(extra));
	memset(lay->brk, 0, sizeof(lay->brk));
	for (i = 0; i < l->nr_rows; i++) {
		r = &l->rows[i];
		if (!row_timed(r))
			continue;
		if (have_prev && r->rec->ts_ns >= l->rows[prev].rec->ts_ns) {
			dt = r->rec->ts_ns - l->rows[prev].rec->ts_ns;
			for (k = i; k > prev + 1 && !row_timed(&l->rows[k - 1]);
			     k--)
				;
			extra[k] += svg_gap_px(dt);
			if (dt >= SVG_BREAK_NS) {
				lay->brk[k] = true;
				lay->brk_ns[k] = dt;
				extra[k] += SVG_BREAK_H;
			}
		}
		prev = i;
		have_prev = true;
	}
	for (i = 0; i < l->nr_rows; i++) {
		if (i)
			y += SVG_ROW_H + extra[i];
		lay->y[i] = y;
	}
	lay->last = y;
	lay->bottom = y + SVG_ROW_H + 44;
}

/* A phrase for the subtitle: how the connection ended. */
static void svg_summary(char *buf, size_t len, const struct ladder *l)
{
	const struct tcptrace_record *r;
	bool open = false, reset = false;
	int i;

	buf[0] = '\0';
	for (i = 0; i < 2; i++) {
		if (l->end[i].s && !l->end[i].s->closed)
			open = true;
		if (first_abort(l->end[i].s))
			reset = true;
	}
	if (l->simultaneous) {
		snprintf(buf, len, "simultaneous close: each end sent its FIN before the other's came");
	} else if (l->active >= 0) {
		snprintf(buf, len, "active close by the %s, passive close by the %s",
			 l->end[l->active].role, l->end[!l->active].role);
	} else if (reset) {
		snprintf(buf, len, "reset, with no FIN");
	} else {
		for (i = 0; i < 2; i++) {
			r = find_trans(l->end[i].s, TCPTRACE_SYN_SENT,
				       TCPTRACE_CLOSE, false);
			if (r && r->ev.total_retrans)
				snprintf(buf, len, "connect failed after %u SYN retransmission%s",
					 r->ev.total_retrans,
					 r->ev.total_retrans == 1 ? "" : "s");
			else if (r)
				snprintf(buf, len, "connect refused");
		}
	}
	if (open)
		append(buf, len, "%sstill open when the records end",
		       buf[0] ? "; " : "");
	if (l->netns)
		append(buf, len, "%snetns %u", buf[0] ? " \xc2\xb7 " : "",
		       l->netns);
}

static void svg_ladder_header(FILE *f, const struct ladder *l)
{
	char title[200], sub[200];
	int i, x;

	snprintf(title, sizeof(title), "%s %s \xe2\x86\x92 %s %s",
		 l->end[0].role, l->addr[0], l->end[1].role, l->addr[1]);
	svg_text(f, SVG_MARGIN, 34, strlen(title) > 80 ? "title small" :
		 "title", title);
	svg_summary(sub, sizeof(sub), l);
	svg_text(f, SVG_MARGIN, 56, "sub", sub);
	for (i = 0; i < 2; i++) {
		x = lane_x(i);
		svg_text(f, x, 94, "role", l->end[i].role);
		svg_text(f, x, 110, l->end[i].s ? "desc" : "nt",
			 l->end[i].desc);
		if (l->simultaneous)
			svg_text(f, x, 125, "tag", "simultaneous close");
		else if (l->active >= 0)
			svg_text(f, x, 125, "tag", l->active == i ?
				 "active close" : "passive close");
		if (l->end[i].s)
			svg_text(f, i ? x + SVG_BOX_W / 2 + 8 :
				 x - SVG_BOX_W / 2 - 8, SVG_TOP - 14,
				 i ? "time" : "time end",
				 env.timestamp ? "time" : "time (s)");
	}
}

/* A lifeline: dashed where its socket is not (yet) traced. */
static void svg_lifeline(FILE *f, const struct ladder *l, int side)
{
	const struct svg_layout *lay = &svg_lay;
	int x = lane_x(side), top = SVG_TOP - 8, first = -1;
	int end = lay->bottom - 12;
	unsigned int i;

	for (i = 0; i < l->nr_rows; i++) {
		if (l->rows[i].side != side)
			continue;
		if (first < 0)
			first = lay->y[i];
		if (!l->rows[i].unseen && l->rows[i].state == TCPTRACE_CLOSE)
			end = lay->y[i];
	}
	if (first < 0)
		first = end;
	if (first > top)
		fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#aaaaaa\" stroke-dasharray=\"4 4\"/>\n",
			x, top, x, first);
	if (end > first)
		fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#666666\" stroke-width=\"1.5\"/>\n",
			x, first, x, end);
}

static const char *svg_state_fill(unsigned int state)
{
	switch (state) {
	case TCPTRACE_SYN_SENT:
	case TCPTRACE_SYN_RECV:
	case TCPTRACE_NEW_SYN_RECV:	/* a request: the handshake's */
		return "#dde8f5";
	case TCPTRACE_ESTABLISHED:
		return "#dcefd9";
	case TCPTRACE_FIN_WAIT1:
	case TCPTRACE_FIN_WAIT2:
	case TCPTRACE_CLOSING:
	case TCPTRACE_TIME_WAIT:
		return "#f8e3cc";
	case TCPTRACE_CLOSE_WAIT:
	case TCPTRACE_LAST_ACK:
		return "#eedcee";
	default:
		return "#ececec";
	}
}

/* The CLOSE that ends a lifeline, and the TIME_WAIT no record shows. */
static void svg_close_cap(FILE *f, const struct ladder *l, int side, int y)
{
	int x = lane_x(side);

	fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"16\" rx=\"8\" fill=\"#e4e4e4\" stroke=\"#777777\"/>\n",
		x - SVG_CAP_W / 2, y, SVG_CAP_W);
	svg_text(f, x, y + 12, "cap", "CLOSE");
	if (l->end[side].tw_unseen) {
		svg_text(f, x, y + 30, "nt", "then TIME_WAIT,");
		svg_text(f, x, y + 43, "nt", "which is not traced");
	}
}

/* The box of the state row @i entered, down to the end's next row. */
static void svg_state_box(FILE *f, const struct ladder *l, unsigned int i)
{
	const struct svg_layout *lay = &svg_lay;
	const struct lrow *r = &l->rows[i];
	int x = lane_x(r->side), y0 = lay->y[i], y1;
	char name[16], dur[32];
	unsigned int j;
	bool open;

	for (j = i + 1; j < l->nr_rows; j++)
		if (l->rows[j].side == r->side)
			break;
	open = j == l->nr_rows;
	y1 = open ? lay->last + SVG_ROW_H : lay->y[j];
	if (!r->unseen && r->state == TCPTRACE_CLOSE) {
		svg_close_cap(f, l, r->side, y0);
		return;
	}
	format_state(name, sizeof(name), r->state);
	if (r->dur_known)
		format_duration(dur, sizeof(dur), r->dur_ns);
	else
		snprintf(dur, sizeof(dur), "%s", open && !r->unseen ?
			 "at the end" : "?");
	fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" rx=\"4\" fill=\"%s\" stroke=\"#7a8793\"%s/>\n",
		x - SVG_BOX_W / 2, y0 + 1, SVG_BOX_W, y1 - y0 - 2,
		svg_state_fill(r->state),
		r->unseen || open ? " stroke-dasharray=\"4 3\"" : "");
	svg_text(f, x, y0 + 14, "st", name);
	svg_text(f, x, y0 + 26, "dur", dur);
}

struct bbox {
	int x0, y0, x1, y1;
};

/* The labels placed so far, not to draw one over another. */
static struct bbox svg_placed[LADDER_MAX_ROWS];
static unsigned int svg_nr_placed;

/*
 * A gap over SVG_BREAK_NS before row @i: both lifelines broken, and how
 * long it was in the left time column, empty between rows.
 */
static void svg_break(FILE *f, unsigned int i)
{
	int y = (svg_lay.y[i - 1] + svg_lay.y[i]) / 2, side, x;
	char d[32];

	for (side = 0; side < 2; side++) {
		x = lane_x(side) - SVG_BOX_W / 2 - 6;
		fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"8\" fill=\"#ffffff\"/>\n",
			x, y - 4, SVG_BOX_W + 12);
		fprintf(f, "<path d=\"M%d,%d l%d,-4 M%d,%d l%d,-4\" stroke=\"#888888\" fill=\"none\"/>\n",
			x, y - 2, SVG_BOX_W + 12, x, y + 6, SVG_BOX_W + 12);
	}
	format_duration(d, sizeof(d), svg_lay.brk_ns[i]);
	svg_textf(f, SVG_LANE_X0 - SVG_BOX_W / 2 - 8, y + 4, "brk end",
		  "%s later", d);
}

/* The box around a label of half-width @hw, on a slope of cos @c, sin @s. */
static void label_bbox(struct bbox *b, int cx, int cy, long long c,
		       long long s, int hw)
{
	static const int v[2] = { -15, -2 };
	int k, x, y, u;

	b->x0 = b->y0 = INT_MAX;
	b->x1 = b->y1 = INT_MIN;
	for (k = 0; k < 4; k++) {
		u = k & 1 ? hw : -hw;
		x = cx + (int)((u * c - v[k >> 1] * s) / FIX);
		y = cy + (int)((u * s + v[k >> 1] * c) / FIX);
		b->x0 = x < b->x0 ? x : b->x0;
		b->x1 = x > b->x1 ? x : b->x1;
		b->y0 = y < b->y0 ? y : b->y0;
		b->y1 = y > b->y1 ? y : b->y1;
	}
}

static bool label_clashes(const struct bbox *b)
{
	unsigned int i;

	for (i = 0; i < svg_nr_placed; i++)
		if (b->x0 < svg_placed[i].x1 && svg_placed[i].x0 < b->x1 &&
		    b->y0 < svg_placed[i].y1 && svg_placed[i].y0 < b->y1)
			return true;
	return false;
}

/*
 * A label along the arrow from (@xa, @ya) to (@xb, @yb), read left to
 * right, just above it: at its middle, or a little along if another label
 * is there already.
 */
static void svg_arrow_label(FILE *f, int xa, int ya, int xb, int yb,
			    enum svg_kind kind, const char *label)
{
	static const int where[][2] = {
		{ 1, 2 }, { 2, 5 }, { 3, 5 }, { 3, 10 }, { 7, 10 },
	};
	int xl = xa < xb ? xa : xb, yl = xa < xb ? ya : yb;
	int dx = abs(xb - xa), dy = (xa < xb ? yb : ya) - yl;
	int hw = (int)(strlen(label) * SVG_MONO_W10 / 20) + 3, cx, cy;
	long long len, c, s, along, sx = dx, sy = dy;
	char cs[32], sn[32], msn[32];
	struct bbox b;
	unsigned int k, pick = 0;

	/* Its slope, cos and sin in FIX, from a copy small enough to square. */
	while (sx > 1000000 || llabs(sy) > 1000000) {
		sx /= 2;
		sy /= 2;
	}
	len = isqrt((unsigned long long)(sx * sx + sy * sy) * FIX * FIX);
	if (!len)
		return;
	c = sx * FIX * FIX / len;
	s = sy * FIX * FIX / len;
	len = len * dx / (sx ? sx : 1);	/* the whole length, in FIX */
	for (k = 0; k < ARRAY_SIZE(where); k++) {
		along = len * where[k][0] / where[k][1] / FIX;
		if (along < hw + 4 || len / FIX - along < hw + 12)
			continue;
		label_bbox(&b, xl + dx * where[k][0] / where[k][1],
			   yl + dy * where[k][0] / where[k][1], c, s, hw);
		if (!label_clashes(&b)) {
			pick = k;
			break;
		}
	}
	cx = xl + dx * where[pick][0] / where[pick][1];
	cy = yl + dy * where[pick][0] / where[pick][1];
	label_bbox(&b, cx, cy, c, s, hw);
	if (svg_nr_placed < ARRAY_SIZE(svg_placed))
		svg_placed[svg_nr_placed++] = b;
	fmt_fix(cs, sizeof(cs), c);
	fmt_fix(sn, sizeof(sn), s);
	fmt_fix(msn, sizeof(msn), -s);
	fprintf(f, "<g transform=\"matrix(%s %s %s %s %d %d)\"><rect x=\"%d\" y=\"-15\" width=\"%d\" height=\"13\" rx=\"2\" class=\"lb\"/>",
		cs, sn, msn, cs, cx, cy, -hw, 2 * hw);
	fprintf(f, "<text x=\"0\" y=\"-5\" class=\"seg %s\">",
		svg_kind_name[kind]);
	svg_esc(f, label);
	fputs("</text></g>\n", f);
}

/* What the records tell of a segment's retransmissions, for its label. */
static void seg_retrans(char *buf, size_t len, const struct ladder *l,
			const struct lrow *r)
{
	const struct dir *d = &l->dir[r->from];
	unsigned int n = 0;

	buf[0] = '\0';
	if (r->seg == SEG_SYN && d->syn_rtx_known)
		n = d->syn_rtx;
	else if (r->seg == SEG_FIN && d->fin_rtx_known)
		n = d->fin_rtx;
	if (n)
		snprintf(buf, len, ", %u retransmission%s", n,
			 n == 1 ? "" : "s");
}

/* The segment of row @i: from its sender's lifeline to its receiver's. */
static void svg_arrow(FILE *f, const struct ladder *l, unsigned int i)
{
	const struct svg_layout *lay = &svg_lay;
	const struct lrow *r = &l->rows[i];
	enum svg_kind kind = seg_kind(r->seg);
	int to = !r->from, recv = l->recv_row[r->seg][r->from];
	int xa = lane_x(r->from) + (r->from ? -1 : 1) * (SVG_BOX_W / 2 + 2);
	int xb = lane_x(to) + (to ? -1 : 1) * (SVG_BOX_W / 2 + 2);
	int ya = lay->y[i], yb;
	char label[160], rtx[48];

	/* Where it was received; else on the answer; else a little lower. */
	if (recv > (int)i)
		yb = lay->y[recv];
	else if (kind != SVG_DATA && i + 1 < l->nr_rows &&
		 l->rows[i + 1].side < 0 && l->rows[i + 1].from == to &&
		 seg_kind(l->rows[i + 1].seg) != SVG_DATA)
		yb = lay->y[i + 1];
	else
		yb = ya + SVG_ROW_H * 2 / 3;
	fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"%s\" marker-end=\"url(#ah-%s)\"/>\n",
		xa, ya, xb, yb, svg_kind_color[kind],
		kind == SVG_DATA ? "3" : "1.5", svg_kind_name[kind]);
	seg_retrans(rtx, sizeof(rtx), l, r);
	snprintf(label, sizeof(label), "%s%s", r->label, rtx);
	svg_arrow_label(f, xa, ya, xb, yb, kind, label);
}

/* The time of each transition row, beside its own end's lifeline. */
static void svg_times(FILE *f, const struct ladder *l)
{
	const struct lrow *r;
	char time[48];
	unsigned int i;

	for (i = 0; i < l->nr_rows; i++) {
		r = &l->rows[i];
		if (r->seg == SEG_SYNACK && r->side < 0 && l->end[r->from].s) {
			/* Sent before its socket was: by a request socket. */
			svg_text(f, lane_x(r->from) + (r->from ? 8 : -8),
				 svg_lay.y[i] + 4, r->from ? "rq" : "rq end",
				 "request socket, not traced");
			continue;
		}
		if (r->side < 0)
			continue;
		row_time(time, sizeof(time), r);
		if (r->side)
			svg_text(f, SVG_LANE_X1 + SVG_BOX_W / 2 + 8,
				 svg_lay.y[i] + 4, "time", time);
		else
			svg_text(f, SVG_LANE_X0 - SVG_BOX_W / 2 - 8,
				 svg_lay.y[i] + 4, "time end", time);
	}
}

static const char svg_how[] =
"How to read it: time runs down. A box is a state of that end, from the transition that entered it to the one that left it, with how long that was. An arrow is a segment the transitions imply: it leaves the row of the transition that sent it and lands on the row of the one that received it, if a traced one did: its slope is not a measured delay. Rows keep the order of the records; the space between two rows grows with the logarithm of the time between them, and a gap over a second is broken. ? is what the records do not tell. ";

/*
 * Below the lifelines: the symbols, how it ended, how to read it.  Its
 * height; with @f NULL, only that.
 */
static int svg_caption(FILE *f, const struct ladder *l, int y)
{
	char how[sizeof(svg_how) + 160];
	unsigned int i;
	int y0 = y;

	if (f)
		fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#cccccc\"/>\n",
			SVG_MARGIN, y, SVG_W - SVG_MARGIN, y);
	y += 22;
	if (l->legend[0])
		y += 15 * svg_wrapped(f, SVG_MARGIN, y, 15, "legend",
				      l->legend, SVG_WRAP - 12) + 4;
	for (i = 0; i < l->nr_notes; i++)
		y += 15 * svg_wrapped(f, SVG_MARGIN, y, 15, "note",
				      l->notes[i], SVG_WRAP);
	snprintf(how, sizeof(how), "%s%s Times: %s.", svg_how, env.absolute ?
		 "Sequence numbers are the raw 32-bit numbers (--absolute)." :
		 "Sequence numbers are relative to the initial sequence numbers x and y (--absolute: the raw numbers).",
		 env.timestamp ? "wall-clock time (-T)" :
		 "seconds since the first record");
	y += 8;
	y += 14 * svg_wrapped(f, SVG_MARGIN, y, 14, "how", how, SVG_WRAP);
	return y - y0;
}

/* The ladder of @l as a standalone SVG picture. */
static void svg_ladder(FILE *f, const struct ladder *l)
{
	struct svg_layout *lay = &svg_lay;
	char title[200];
	unsigned int i;
	int h, side;

	svg_layout_rows(l, lay);
	svg_nr_placed = 0;
	h = lay->bottom + svg_caption(NULL, l, lay->bottom) + SVG_MARGIN;
	snprintf(title, sizeof(title), "%s %s -> %s %s", l->end[0].role,
		 l->addr[0], l->end[1].role, l->addr[1]);
	svg_begin(f, SVG_W, h, title);
	svg_ladder_header(f, l);
	for (side = 0; side < 2; side++)
		svg_lifeline(f, l, side);
	for (i = 0; i < l->nr_rows; i++)
		if (l->rows[i].side >= 0)
			svg_state_box(f, l, i);
	for (i = 0; i < l->nr_rows; i++)
		if (lay->brk[i])
			svg_break(f, i);
	for (i = 0; i < l->nr_rows; i++)
		if (l->rows[i].seg != SEG_NR)
			svg_arrow(f, l, i);
	svg_times(f, l);
	svg_caption(f, l, lay->bottom);
	fputs("</svg>\n", f);
}

/* ---- The histograms ---- */

#define SVG_HIST_W		760
#define SVG_HIST_LABEL_X	200	/* right edge of the bucket labels */
#define SVG_HIST_BAR_W		440	/* the longest bar */
#define SVG_HIST_ROW_H		18

/* One histogram from @y down; where it ends.  With @f NULL, only that. */
static int svg_hist(FILE *f, int y, const char *title, const struct hist *h)
{
	unsigned long long max, lo, hi;
	int i, max_slot, w;

	max_slot = hist_extent(h, &max);
	if (f) {
		svg_text(f, SVG_MARGIN, y, "htitle", title);
		svg_textf(f, SVG_HIST_W - SVG_MARGIN, y, "n end",
			  "%llu sample%s", h->n, h->n == 1 ? "" : "s");
	}
	y += 10;
	if (max_slot < 0) {
		if (f)
			svg_text(f, SVG_HIST_LABEL_X + 10, y + 14, "how",
				 "no samples");
		return y + 28;
	}
	if (f)
		svg_text(f, SVG_HIST_LABEL_X, y + 12, "hist", "usecs");
	y += 16;
	for (i = 0; i <= max_slot && f; i++) {
		hist_bounds(i, &lo, &hi);
		svg_textf(f, SVG_HIST_LABEL_X, y + 11, "hist", "%llu -> %llu",
			  lo, hi);
		w = (int)(h->slot[i] * SVG_HIST_BAR_W / max);
		if (h->slot[i] && !w)
			w = 1;
		if (w)
			fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"13\" fill=\"#5b8fc7\"/>\n",
				SVG_HIST_LABEL_X + 10, y, w);
		svg_textf(f, SVG_HIST_LABEL_X + 16 + w, y + 11, "n", "%llu",
			  h->slot[i]);
		y += SVG_HIST_ROW_H;
	}
	if (!f)
		y += (max_slot + 1) * SVG_HIST_ROW_H;
	return y + 16;
}

/* The histograms of --stats as bar charts. */
static void svg_stats(FILE *f)
{
	static const char how[] =
		"log2 buckets of microseconds, as tcptrace-read -S prints them; a bar is as long as its count, relative to the longest of its chart.";
	char title[160];
	unsigned int i;
	int y;

	snprintf(title, sizeof(title),
		 "tcptrace-read --stats: %llu transitions, %llu lost",
		 st.nr_transitions, st.nr_lost);
	y = 60;
	for (i = 0; i < ARRAY_SIZE(hist_titles); i++)
		y = svg_hist(NULL, y + 10, hist_titles[i], hist_of(i));
	y += svg_wrapped(NULL, 0, 0, 14, "how", how, SVG_WRAP) * 14 + 20;
	svg_begin(f, SVG_HIST_W, y, title);
	svg_text(f, SVG_MARGIN, 34, "title", title);
	y = 60;
	for (i = 0; i < ARRAY_SIZE(hist_titles); i++)
		y = svg_hist(f, y + 10, hist_titles[i], hist_of(i));
	svg_wrapped(f, SVG_MARGIN, y + 6, 14, "how", how, SVG_WRAP);
	fputs("</svg>\n", f);
}

/* ---- Writing pictures: whole, or not at all ---- */

/* A new temporary file beside @path, named in *@tmp. */
static int open_temp(const char *path, char **tmp)
{
	mode_t mask;
	int fd;

	if (asprintf(tmp, "%s.XXXXXX", path) < 0) {
		*tmp = NULL;
		warn("out of memory");
		return -1;
	}
	fd = mkostemp(*tmp, O_CLOEXEC);
	if (fd < 0) {
		warn("%s: %s", *tmp, strerror(errno));
		free(*tmp);
		*tmp = NULL;
		return -1;
	}
	/* As open(0666) would have made it. */
	mask = umask(0);
	umask(mask);
	if (fchmod(fd, 0666 & ~mask))
		warn("%s: %s", *tmp, strerror(errno));
	return fd;
}

/*
 * @len bytes of @buf into a new temporary file beside @path, named in
 * *@tmp: renaming it to @path publishes it whole.
 */
static int write_temp(const char *path, const char *buf, size_t len,
		      char **tmp)
{
	int fd = open_temp(path, tmp);

	if (fd < 0)
		return -1;
	if (write_full(fd, buf, len) || fsync(fd)) {
		warn("%s: %s", *tmp, strerror(errno));
		close(fd);
		goto remove;
	}
	if (close(fd)) {
		warn("%s: %s", *tmp, strerror(errno));
		goto remove;
	}
	return 0;

remove:
	unlink(*tmp);
	free(*tmp);
	*tmp = NULL;
	return -1;
}

/* Replace @path with @len bytes of @buf, atomically; - is standard output. */
static int write_whole(const char *path, const char *buf, size_t len)
{
	char *tmp;

	if (!strcmp(path, "-")) {
		if (fwrite(buf, 1, len, stdout) != len || fflush(stdout)) {
			warn("standard output: %s", strerror(errno));
			return -1;
		}
		return 0;
	}
	if (write_temp(path, buf, len, &tmp))
		return -1;
	if (rename(tmp, path)) {
		warn("%s: %s", path, strerror(errno));
		unlink(tmp);
		free(tmp);
		return -1;
	}
	free(tmp);
	return 0;
}

/* Draw a ladder into memory: *@buf, *@len. */
static int svg_render_ladder(const struct ladder *l, char **buf, size_t *len)
{
	FILE *f;

	*buf = NULL;
	f = open_memstream(buf, len);
	if (!f) {
		warn("out of memory");
		return -1;
	}
	svg_ladder(f, l);
	if (ferror(f) | fclose(f)) {
		warn("out of memory");
		free(*buf);
		*buf = NULL;
		return -1;
	}
	return 0;
}

/* --svg-all: the ladder into its own file, published at the end. */
static void svg_ladder_file(const struct ladder *l)
{
	const struct sock *s = l->end[0].s ? l->end[0].s : l->end[1].s;
	struct svg_file *files, *file;
	char *buf;
	size_t len;

	files = realloc(svg.files, (svg.nr_files + 1) * sizeof(*files));
	if (!files) {
		warn("out of memory");
		svg.failed = true;
		return;
	}
	svg.files = files;
	file = &files[svg.nr_files];
	if (asprintf(&file->path, "%s/ladder-%04u-%llx.svg", env.svg_dir,
		     ++st.nr_ladders, (unsigned long long)s->id) < 0) {
		warn("out of memory");
		svg.failed = true;
		return;
	}
	if (svg_render_ladder(l, &buf, &len) ||
	    write_temp(file->path, buf, len, &file->tmp)) {
		free(file->path);
		svg.failed = true;
	} else {
		svg.nr_files++;
	}
	free(buf);
}

/* Whether @l is a better choice for --svg than the one kept so far. */
static bool svg_better(const struct ladder *l)
{
	if (!env.conn_arg && l->complete != svg.complete)
		return l->complete;
	return l->seq < svg.seq;	/* the first seen */
}

/*
 * A ladder is done: --svg-all writes it; --svg keeps it if it is the one
 * to draw: the one --connection names, or else the first one seen whose
 * whole life is in the records, or else the first one seen.
 */
static void svg_ladder_done(const struct ladder *l)
{
	char *buf;
	size_t len;

	if (env.svg_dir) {
		svg_ladder_file(l);
		return;
	}
	if (env.conn_arg && !ladder_chosen(l))
		return;
	if (svg.have && !svg_better(l))
		return;
	if (svg_render_ladder(l, &buf, &len)) {
		svg.failed = true;
		return;
	}
	free(svg.buf);
	svg.buf = buf;
	svg.len = len;
	svg.have = true;
	svg.complete = l->complete;
	svg.seq = l->seq;
	snprintf(svg.what, sizeof(svg.what), "%s %s -> %s %s",
		 l->end[0].role, l->addr[0], l->end[1].role, l->addr[1]);
}

/* Forget what was drawn and not published; remove its files. */
static void svg_discard(void)
{
	unsigned int i;

	for (i = 0; i < svg.nr_files; i++) {
		if (svg.files[i].tmp) {
			unlink(svg.files[i].tmp);
			free(svg.files[i].tmp);
		}
		free(svg.files[i].path);
	}
	free(svg.files);
	free(svg.buf);
	memset(&svg, 0, sizeof(svg));
}

static int svg_publish_all(void)
{
	struct svg_file *file;
	unsigned int i;

	for (i = 0; i < svg.nr_files; i++) {
		file = &svg.files[i];
		if (rename(file->tmp, file->path)) {
			warn("%s: %s", file->path, strerror(errno));
			return 1;
		}
		free(file->tmp);
		file->tmp = NULL;
	}
	warn("%s: %u picture%s", env.svg_dir, svg.nr_files,
	     svg.nr_files == 1 ? "" : "s");
	return 0;
}

static int svg_publish_stats(void)
{
	char *buf = NULL;
	size_t len;
	FILE *f;
	int err;

	f = open_memstream(&buf, &len);
	if (!f) {
		warn("out of memory");
		return 1;
	}
	svg_stats(f);
	if (ferror(f) | fclose(f)) {
		warn("out of memory");
		free(buf);
		return 1;
	}
	err = write_whole(env.svg_path, buf, len) ? 1 : 0;
	free(buf);
	return err;
}

static int svg_publish_ladder(void)
{
	if (!svg.have && env.conn_arg) {
		warn("--connection %s: no such connection in the records",
		     env.conn_arg);
		return 2;
	}
	if (!svg.have) {
		warn("no connection in the records to draw");
		return 1;
	}
	if (write_whole(env.svg_path, svg.buf, svg.len))
		return 1;
	if (strcmp(env.svg_path, "-"))
		warn("%s: %s", env.svg_path, svg.what);
	return 0;
}

/*
 * At the end: publish the pictures if the records were all read without
 * error (@err 0), else none of them.  The exit status.
 */
static int svg_finish(int err)
{
	if (!err && svg.failed)
		err = 1;
	if (!err && env.svg_dir)
		err = svg_publish_all();
	else if (!err && env.format == FMT_STATS)
		err = svg_publish_stats();
	else if (!err)
		err = svg_publish_ladder();
	svg_discard();
	return err;
}

/* ------------------------------------------------------------------ */
/* Reading and dispatching records                                     */

static void note_loss(const struct tcptrace_record *rec)
{
	struct cpu_loss *l;
	struct sock *s;
	unsigned int i;

	st.nr_lost += rec->loss.count;
	for (i = 0; i < st.nr_losses; i++) {
		if (st.losses[i].cpu == rec->cpu) {
			st.losses[i].n += rec->loss.count;
			goto mark;
		}
	}
	l = realloc(st.losses, (st.nr_losses + 1) * sizeof(*l));
	if (l) {
		st.losses = l;
		l[st.nr_losses].cpu = rec->cpu;
		l[st.nr_losses].n = rec->loss.count;
		st.nr_losses++;
	}
mark:
	for (s = st.oldest; s && env.format == FMT_LADDER; s = s->newer)
		s->lost_while_open = true;
}

/* A transition or an event, in the line formats; the ladder draws later. */
static void print_record(const struct tcptrace_record *rec,
			 const struct view *v, const struct source *src)
{
	switch (env.format) {
	case FMT_TABLE:
		table_transition(rec, v, src);
		break;
	case FMT_JSON:
		json_transition(rec, v, src);
		break;
	case FMT_CSV:
		csv_transition(rec, v, src);
		break;
	default:
		break;
	}
}

/*
 * One record: filter it, learn from it, print it.  False when it was a
 * transition the filter rejected (and is not to be written out).
 */
static bool process(const struct tcptrace_record *rec,
		    const struct source *src)
{
	struct view v;

	switch (rec->type) {
	case TCPTRACE_REC_STATE:
		if (!filter_match(rec)) {
			st.nr_filtered++;
			return false;
		}
		st.nr_transitions++;
		note_first_ts(rec->ts_ns);
		track(rec, &v, false);
		print_record(rec, &v, src);
		track(rec, &v, true);
		return true;
	case TCPTRACE_REC_EVENT:
		/* A reset, a retransmission: shown, never a transition. */
		if (!filter_match(rec)) {
			st.nr_filtered++;
			return false;
		}
		st.nr_events++;
		note_first_ts(rec->ts_ns);
		memset(&v, 0, sizeof(v));
		if (!(rec->ev.flags & TCPTRACE_F_ID_UNSET))
			v.s = sock_get(rec);
		/* The ladder draws the reset that ended a close. */
		if (v.s && TCPTRACE_CAUSE(rec->ev.flags) ==
			   TCPTRACE_CAUSE_RST_RECEIVED) {
			v.s->rst_rcvd = true;
			v.s->rst_rcvd_ts = rec->ts_ns;
		}
		print_record(rec, &v, src);
		return true;
	case TCPTRACE_REC_LOST:
		note_first_ts(rec->ts_ns);
		note_loss(rec);
		switch (env.format) {
		case FMT_TABLE:
			print_loss_line(rec);
			break;
		case FMT_LADDER:
			if (!env.svg_path && !env.svg_dir)
				print_loss_line(rec);
			break;
		case FMT_JSON:
			json_loss(rec, src);
			break;
		case FMT_CSV:
			csv_loss(rec, src);
			break;
		default:
			break;
		}
		return true;
	default:
		st.nr_unknown++;
		note_first_ts(rec->ts_ns);
		switch (env.format) {
		case FMT_TABLE:
			table_unknown(rec, src);
			break;
		case FMT_JSON:
			json_unknown(rec, src);
			break;
		case FMT_CSV:
			csv_unknown(rec, src);
			break;
		default:
			break;
		}
		return true;
	}
}

/*
 * Wait until the device has records or the --duration is over; false at
 * the end (the time is up, or a signal).
 */
static bool wait_for_records(const struct source *src, __s64 deadline)
{
	struct pollfd pfd = { .fd = src->fd, .events = POLLIN };
	__s64 left;
	int r;

	for (;;) {
		left = deadline - monotonic_ns();
		if (left <= 0 || exiting)
			return false;
		r = poll(&pfd, 1, (int)((left + 999999) / 1000000));
		if (r > 0)
			return true;
		if (r < 0 && errno != EINTR) {
			warn("%s: poll: %s", src->name, strerror(errno));
			return false;
		}
	}
}

/*
 * Read records from @src until its end, a signal, --count or --duration,
 * and print them, or write them to @out_fd if it is not -1.
 */
static int run(struct source *src, int out_fd)
{
	bool drain_live = env.drain && !src->capture;
	__s64 drain_until = 0, deadline = 0;
	size_t i, nr, want, keep;
	bool past_start;
	ssize_t n;

	/*
	 * --drain takes what was buffered when it started: under a steady
	 * stream the buffers never run dry, so stop at records made later.
	 */
	if (drain_live)
		drain_until = monotonic_ns();
	if (env.duration_ns)
		deadline = monotonic_ns() + env.duration_ns;

	while (!exiting) {
		/* Never take from the device what --count leaves unused. */
		want = READ_RECORDS;
		if (env.count && env.count - st.nr_transitions < want)
			want = env.count - st.nr_transitions;

		if (!src->capture && env.duration_ns &&
		    !wait_for_records(src, deadline))
			break;
		if (src->capture)
			n = read_full(src->fd, records, want * RECORD_SIZE);
		else
			n = read(src->fd, records, want * RECORD_SIZE);
		if (!src->capture && n > 0) {
			st.nr_reads++;
			st.nr_records += n / RECORD_SIZE;
		}
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
		keep = 0;
		for (i = 0; i < nr; i++) {
			if (drain_live && records[i].ts_ns > (__u64)drain_until)
				past_start = true;
			if (process(&records[i], src) && out_fd >= 0)
				records[keep++] = records[i];
		}
		if (out_fd >= 0 &&
		    write_full(out_fd, records, keep * RECORD_SIZE)) {
			warn("%s: %s", env.write_path, strerror(errno));
			return -1;
		}

		if (n % RECORD_SIZE) {
			if (src->capture)
				warn("%s: offset %llu: trailing partial record (%zu of %zu bytes): the capture is truncated",
				     src->name, src->offset + nr * RECORD_SIZE,
				     n % RECORD_SIZE, RECORD_SIZE);
			else
				warn("%s: read returned %zd bytes, not whole %zu-byte records",
				     src->name, n, RECORD_SIZE);
			return -1;
		}
		src->offset += n;
		if (env.count && st.nr_transitions >= env.count)
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

static void print_summary(void)
{
	unsigned int i;

	if (quiet)
		return;
	fprintf(stderr, "%llu transitions, ", st.nr_transitions);
	if (st.nr_events)
		fprintf(stderr, "%llu event%s, ", st.nr_events,
			st.nr_events == 1 ? "" : "s");
	fprintf(stderr, "%llu lost", st.nr_lost);
	for (i = 0; i < st.nr_losses; i++)
		fprintf(stderr, "%sCPU %u: %llu", i ? ", " : " (",
			st.losses[i].cpu, st.losses[i].n);
	if (st.nr_losses)
		fputc(')', stderr);
	if (st.nr_filtered)
		fprintf(stderr, ", %llu filtered out", st.nr_filtered);
	if (st.nr_unknown)
		fprintf(stderr, ", %llu record%s of unknown type",
			st.nr_unknown, st.nr_unknown == 1 ? "" : "s");
	if (st.nr_reads)
		fprintf(stderr, "; %llu records in %llu read()%s",
			st.nr_records, st.nr_reads, st.nr_reads == 1 ? "" : "s");
	fputc('\n', stderr);
}

static void reset(void)
{
	svg_discard();
	socks_free();
	free(st.losses);
	free(st.trans);
	memset(&st, 0, sizeof(st));
	memset(&env, 0, sizeof(env));
	memset(&filt, 0, sizeof(filt));
	env.device = TCPTRACE_DEVICE;
	exiting = 0;
	optind = 0;
}

/* The whole program; the fuzzer calls it again and again. */
static int tcptrace_read_main(int argc, char **argv)
{
	struct source src = { .fd = -1 };
	struct sigaction sa = { .sa_handler = sig_handler };
	struct tcptrace_info info;
	int out_fd = -1, err = 1;
	static bool line_buffered;

	reset();
	parse_args(argc, argv);
	if (env.counters)
		return counters_only();

	/* No SA_RESTART: a signal ends a blocking read() with EINTR. */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL)) {
		warn("sigaction: %s", strerror(errno));
		return 1;
	}
	if (!line_buffered && isatty(STDOUT_FILENO))
		setvbuf(stdout, NULL, _IOLBF, 0);
	line_buffered = true;

	if (env.read_path ? open_capture(&src, env.read_path) :
			    open_live(&src, &info))
		goto cleanup;
	ladder_src = &src;
	if (env.format == FMT_CAPTURE) {
		out_fd = create_capture(env.write_path, &src);
		if (out_fd < 0)
			goto cleanup;
	} else if (env.format == FMT_TABLE) {
		table_header();
	} else if (env.format == FMT_CSV) {
		puts(CSV_FIELDS);
	}

	err = run(&src, out_fd) ? 1 : 0;

	if (env.format == FMT_LADDER)
		ladder_flush_all();
	if (env.format == FMT_STATS && !env.svg_path) {
		print_stats();
		if (!src.capture) {
			printf("\nmodule counters, %s:\n", src.name);
			if (print_counters(src.fd, src.name, &info))
				err = 1;
		}
	}
	if (out_fd >= 0 && close(out_fd) && !err) {
		warn("%s: %s", env.write_path, strerror(errno));
		err = 1;
	}
	out_fd = -1;
	if (fflush(stdout) || ferror(stdout)) {
		warn("standard output: %s", strerror(errno));
		clearerr(stdout);
		err = 1;
	}
	print_summary();
	if (st.nr_unknown && !err) {
		warn("records of unknown type: a module newer than this reader, or a corrupt capture");
		err = 1;
	}
	if (env.svg_path || env.svg_dir)
		err = svg_finish(err);
	if (!err && st.nr_lost)
		err = EXIT_LOST;

cleanup:
	if (out_fd >= 0)
		close(out_fd);
	if (src.fd >= 0) {
		clear_filter(&src);
		close(src.fd);
	}
	ladder_src = NULL;
	svg_discard();
	socks_free();
	free(st.losses);
	free(st.trans);
	st.losses = NULL;
	st.trans = NULL;
	return err;
}

#ifndef TCPTRACE_READ_NO_MAIN
int main(int argc, char **argv)
{
	return tcptrace_read_main(argc, argv);
}
#endif
