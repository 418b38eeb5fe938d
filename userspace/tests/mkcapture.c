// SPDX-License-Identifier: GPL-2.0
/*
 * mkcapture: write a tcptrace capture file from a text description, for the
 * tests of tcptrace-read.
 *
 *	mkcapture DESCRIPTION OUTPUT
 *
 * A description is a list of items: a keyword, then key=value words.  Words
 * are separated by blanks and newlines; '#' starts a comment.  Keys left out
 * are zero, except where said.
 *
 *	capture	magic=TCPTRACE version=1 abi=TCPTRACE_ABI_VERSION
 *		record_size=128 clock=1 offset=NS flags=0 truncate=BYTES
 *		The header, with those defaults; written as it is if no
 *		capture item comes first.  truncate= writes only its first
 *		BYTES and ends the file there.
 *	state	ts= cpu= ctx=task|softirq|hardirq|nmi|N netns= type=1
 *		pid= tgid=(pid) comm=(\xNN escapes a byte) sock=
 *		af=inet|inet6|N
 *		old=STATE new=STATE flags=addr_unset,seq_unset,id_unset|N
 *		la=ADDR lp= ra=ADDR rp= una= nxt= rcv= wseq=
 *		acked= rcvd= retrans= srtt=
 *		A transition record; STATE is a name (SYN_SENT) or a number.
 *	lost	ts= cpu= count= total=
 *		A loss record.
 *	partial	bytes=N
 *		The first N bytes of a zeroed record: a truncated file.
 *
 * The header is built byte by byte from the layout documented at the top of
 * tcptrace-read.c, independently of its code, so that the tests check that
 * the reader and its documentation agree.
 */
#define _GNU_SOURCE
#define __SANE_USERSPACE_TYPES__	/* __u64 is unsigned long long everywhere */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/tcptrace.h>

#define HEADER_SIZE	64

static const char *const state_names[TCPTRACE_STATE_MAX] =
	TCPTRACE_STATE_NAMES;

struct item {
	enum { NONE, CAPTURE, STATE, LOST, PARTIAL } kind;
	struct tcptrace_record rec;
	bool tgid_set;
	unsigned long long bytes;	/* of partial */
};

static struct header {
	char magic[9];
	unsigned long long version, abi, record_size, clock, flags, truncate;
	long long offset;
	bool truncated;
} header = {
	.magic = "TCPTRACE",
	.version = 1,
	.abi = TCPTRACE_ABI_VERSION,
	.record_size = sizeof(struct tcptrace_record),
	.clock = 1,
	.truncate = HEADER_SIZE,
};

static const char *desc_path;
static FILE *out;
static bool header_written;

__attribute__((format(printf, 1, 2), noreturn))
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mkcapture: %s: ", desc_path);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static unsigned long long number(const char *key, const char *value,
				 unsigned long long max)
{
	unsigned long long n;
	char *end;

	errno = 0;
	n = strtoull(value, &end, 0);
	if (!*value || *end || errno || n > max || *value == '-')
		die("bad number in '%s'", key);
	return n;
}

static int state(const char *key, const char *value)
{
	int i;

	for (i = 0; i < TCPTRACE_STATE_MAX; i++)
		if (state_names[i] && !strcmp(value, state_names[i]))
			return i;
	return number(key, value, 255);
}

static void address(const char *key, const char *value, __u8 *addr,
		    int family)
{
	if (inet_pton(family == AF_INET6 ? AF_INET6 : AF_INET, value,
		      addr) != 1)
		die("bad address in '%s' (af= must come first)", key);
}

static void put_le(unsigned char *p, unsigned long long v, int bytes)
{
	int i;

	for (i = 0; i < bytes; i++)
		p[i] = v >> (8 * i);
}

static void emit(const void *p, size_t len)
{
	if (len && fwrite(p, len, 1, out) != 1)
		die("cannot write the output");
}

static void write_header(void)
{
	unsigned char h[HEADER_SIZE] = { 0 };

	if (header_written)
		return;
	header_written = true;
	memcpy(h, header.magic, 8);
	put_le(h + 8, header.version, 4);
	put_le(h + 12, header.abi, 4);
	put_le(h + 16, header.record_size, 4);
	put_le(h + 20, header.clock, 4);
	put_le(h + 24, (unsigned long long)header.offset, 8);
	put_le(h + 32, header.flags, 4);
	emit(h, header.truncate);
	header.truncated = header.truncate < HEADER_SIZE;
}

static void flush_item(struct item *it)
{
	if (it->kind == NONE || it->kind == CAPTURE)
		return;
	write_header();
	if (header.truncated)
		die("nothing can follow a truncated header");
	if (it->kind == STATE && !it->tgid_set)
		it->rec.ev.tgid = it->rec.ev.pid;
	if (it->kind == PARTIAL && it->bytes >= sizeof(it->rec))
		die("partial bytes= must be less than a record");
	emit(&it->rec, it->kind == PARTIAL ? it->bytes : sizeof(it->rec));
}

static void set_capture(const char *key, const char *v)
{
	char *end;

	if (header_written)
		die("capture must come first");
	if (!strcmp(key, "magic")) {
		if (strlen(v) != 8)
			die("magic '%s' is not 8 bytes", v);
		memcpy(header.magic, v, 8);
	} else if (!strcmp(key, "version")) {
		header.version = number(key, v, 0xffffffff);
	} else if (!strcmp(key, "abi")) {
		header.abi = number(key, v, 0xffffffff);
	} else if (!strcmp(key, "record_size")) {
		header.record_size = number(key, v, 0xffffffff);
	} else if (!strcmp(key, "clock")) {
		header.clock = number(key, v, 0xffffffff);
	} else if (!strcmp(key, "flags")) {
		header.flags = number(key, v, 0xffffffff);
	} else if (!strcmp(key, "truncate")) {
		header.truncate = number(key, v, HEADER_SIZE);
	} else if (!strcmp(key, "offset")) {
		errno = 0;
		header.offset = strtoll(v, &end, 0);
		if (!*v || *end || errno)
			die("bad number in '%s'", key);
	} else {
		die("unknown capture key '%s'", key);
	}
}

/* Copy @v into @out (at most @max bytes), decoding \xNN escapes. */
static void unescape(const char *key, const char *v, char *out, size_t max)
{
	size_t n = 0;
	char hex[3] = { 0 };

	while (*v && n < max) {
		if (v[0] == '\\' && v[1] == 'x') {
			if (!isxdigit((unsigned char)v[2]) ||
			    !isxdigit((unsigned char)v[3]))
				die("bad \\x escape in '%s'", key);
			hex[0] = v[2];
			hex[1] = v[3];
			out[n++] = strtoul(hex, NULL, 16);
			v += 4;
		} else {
			out[n++] = *v++;
		}
	}
}

static void set_state(struct item *it, const char *key, const char *v)
{
	struct tcptrace_record *r = &it->rec;
	struct tcptrace_event *ev = &r->ev;
	static const char *const ctxs[] = { "task", "softirq", "hardirq",
					    "nmi" };
	char *flag, *save, *copy;
	size_t i;

	if (!strcmp(key, "ts")) {
		r->ts_ns = number(key, v, ~0ULL);
	} else if (!strcmp(key, "cpu")) {
		r->cpu = number(key, v, 0xffff);
	} else if (!strcmp(key, "type")) {
		r->type = number(key, v, 0xff);
	} else if (!strcmp(key, "netns")) {
		r->netns = number(key, v, 0xffffffff);
	} else if (!strcmp(key, "ctx")) {
		for (i = 0; i < 4; i++)
			if (!strcmp(v, ctxs[i]))
				break;
		r->ctx = i < 4 ? i : number(key, v, 0xff);
	} else if (!strcmp(key, "pid")) {
		ev->pid = number(key, v, 0xffffffff);
	} else if (!strcmp(key, "tgid")) {
		ev->tgid = number(key, v, 0xffffffff);
		it->tgid_set = true;
	} else if (!strcmp(key, "comm")) {
		unescape(key, v, ev->comm, sizeof(ev->comm) - 1);
	} else if (!strcmp(key, "sock")) {
		ev->sock_id = number(key, v, ~0ULL);
	} else if (!strcmp(key, "af")) {
		ev->family = !strcmp(v, "inet") ? AF_INET :
			     !strcmp(v, "inet6") ? AF_INET6 :
			     number(key, v, 0xff);
	} else if (!strcmp(key, "old")) {
		ev->oldstate = state(key, v);
	} else if (!strcmp(key, "new")) {
		ev->newstate = state(key, v);
	} else if (!strcmp(key, "flags")) {
		copy = strdup(v);
		if (!copy)
			die("out of memory");
		for (flag = strtok_r(copy, ",", &save); flag;
		     flag = strtok_r(NULL, ",", &save)) {
			if (!strcmp(flag, "addr_unset"))
				ev->flags |= TCPTRACE_F_ADDR_UNSET;
			else if (!strcmp(flag, "seq_unset"))
				ev->flags |= TCPTRACE_F_SEQ_UNSET;
			else if (!strcmp(flag, "id_unset"))
				ev->flags |= TCPTRACE_F_ID_UNSET;
			else
				ev->flags |= number(key, flag, 0xff);
		}
		free(copy);
	} else if (!strcmp(key, "la")) {
		address(key, v, ev->laddr, ev->family);
	} else if (!strcmp(key, "ra")) {
		address(key, v, ev->raddr, ev->family);
	} else if (!strcmp(key, "lp")) {
		ev->lport = number(key, v, 0xffff);
	} else if (!strcmp(key, "rp")) {
		ev->rport = number(key, v, 0xffff);
	} else if (!strcmp(key, "una")) {
		ev->snd_una = number(key, v, 0xffffffff);
	} else if (!strcmp(key, "nxt")) {
		ev->snd_nxt = number(key, v, 0xffffffff);
	} else if (!strcmp(key, "rcv")) {
		ev->rcv_nxt = number(key, v, 0xffffffff);
	} else if (!strcmp(key, "wseq")) {
		ev->write_seq = number(key, v, 0xffffffff);
	} else if (!strcmp(key, "acked")) {
		ev->bytes_acked = number(key, v, ~0ULL);
	} else if (!strcmp(key, "rcvd")) {
		ev->bytes_received = number(key, v, ~0ULL);
	} else if (!strcmp(key, "retrans")) {
		ev->total_retrans = number(key, v, 0xffffffff);
	} else if (!strcmp(key, "srtt")) {
		ev->srtt_us = number(key, v, 0xffffffff);
	} else {
		die("unknown state key '%s'", key);
	}
}

static void set_lost(struct item *it, const char *key, const char *v)
{
	if (!strcmp(key, "ts"))
		it->rec.ts_ns = number(key, v, ~0ULL);
	else if (!strcmp(key, "cpu"))
		it->rec.cpu = number(key, v, 0xffff);
	else if (!strcmp(key, "count"))
		it->rec.loss.count = number(key, v, ~0ULL);
	else if (!strcmp(key, "total"))
		it->rec.loss.total = number(key, v, ~0ULL);
	else
		die("unknown lost key '%s'", key);
}

static void set(struct item *it, const char *key, const char *value)
{
	switch (it->kind) {
	case CAPTURE:
		set_capture(key, value);
		break;
	case STATE:
		set_state(it, key, value);
		break;
	case LOST:
		set_lost(it, key, value);
		break;
	case PARTIAL:
		if (strcmp(key, "bytes"))
			die("unknown partial key '%s'", key);
		it->bytes = number(key, value, ~0ULL);
		break;
	default:
		die("'%s' before any item", key);
	}
}

static void start_item(struct item *it, const char *word)
{
	flush_item(it);
	memset(it, 0, sizeof(*it));
	if (!strcmp(word, "capture")) {
		it->kind = CAPTURE;
	} else if (!strcmp(word, "state")) {
		it->kind = STATE;
		it->rec.type = TCPTRACE_REC_STATE;
	} else if (!strcmp(word, "lost")) {
		it->kind = LOST;
		it->rec.type = TCPTRACE_REC_LOST;
	} else if (!strcmp(word, "partial")) {
		it->kind = PARTIAL;
	} else {
		die("unknown item '%s'", word);
	}
}

int main(int argc, char **argv)
{
	struct item it = { .kind = NONE };
	char line[4096], *word, *save, *eq;
	FILE *in;

	if (argc != 3) {
		fputs("usage: mkcapture DESCRIPTION OUTPUT\n", stderr);
		return 2;
	}
	desc_path = argv[1];
	in = fopen(argv[1], "r");
	if (!in)
		die("%s", strerror(errno));
	out = fopen(argv[2], "wb");
	if (!out)
		die("cannot create the output: %s", strerror(errno));

	while (fgets(line, sizeof(line), in)) {
		if (!strchr(line, '\n') && !feof(in))
			die("line too long");
		line[strcspn(line, "#")] = '\0';
		for (word = strtok_r(line, " \t\n", &save); word;
		     word = strtok_r(NULL, " \t\n", &save)) {
			eq = strchr(word, '=');
			if (!eq) {
				start_item(&it, word);
				continue;
			}
			*eq = '\0';
			set(&it, word, eq + 1);
		}
	}
	flush_item(&it);
	write_header();
	fclose(in);
	if (fclose(out))
		die("cannot write the output: %s", strerror(errno));
	return 0;
}
