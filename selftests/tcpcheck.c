// SPDX-License-Identifier: GPL-2.0
/*
 * tcpcheck: run the selftests' oracle (tcpcheck.h) over capture files.
 *
 *	tcpcheck [-c NR_CPUS] [-e EXPECTED] CAPTURE...
 *
 * The captures (tcptrace-read --write) are checked as one trace, in order.
 * With -e, the transitions delivered plus the records reported lost must
 * equal EXPECTED exactly (load the module with causes=0 timewait=0
 * requests=0 when EXPECTED counts the tracepoint's transitions only).
 * Prints what the trace holds; exit status 1 on any
 * violation, 2 on bad usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tcpcheck.h"

#define CAP_HEADER_SIZE	64

static int check_file(struct tc_state *st, const char *path)
{
	unsigned char h[CAP_HEADER_SIZE];
	struct tcptrace_record r;
	uint32_t record_size;
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f) {
		fprintf(stderr, "tcpcheck: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fread(h, 1, sizeof(h), f) != sizeof(h) ||
	    memcmp(h, "TCPTRACE", 8)) {
		fprintf(stderr, "tcpcheck: %s: not a tcptrace capture\n", path);
		fclose(f);
		return -1;
	}
	record_size = h[16] | h[17] << 8 | h[18] << 16 | (uint32_t)h[19] << 24;
	if (record_size != sizeof(r)) {
		fprintf(stderr, "tcpcheck: %s: records of %u bytes\n", path,
			record_size);
		fclose(f);
		return -1;
	}
	while ((n = fread(&r, 1, sizeof(r), f)) == sizeof(r))
		tc_check(st, &r);
	fclose(f);
	if (n) {
		fprintf(stderr, "tcpcheck: %s: a partial record at the end\n",
			path);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	long long expected = -1;
	unsigned int nr_cpus = 0;
	struct tc_state *st;
	int opt, i, rc = 0;

	while ((opt = getopt(argc, argv, "c:e:")) != -1) {
		switch (opt) {
		case 'c':
			nr_cpus = strtoul(optarg, NULL, 10);
			break;
		case 'e':
			expected = strtoll(optarg, NULL, 10);
			break;
		default:
			goto usage;
		}
	}
	if (optind == argc)
		goto usage;

	st = tc_new(nr_cpus);
	if (!st)
		return 1;
	for (i = optind; i < argc; i++)
		if (check_file(st, argv[i]))
			rc = 1;
	tc_finish(st);
	printf("tcpcheck: %llu records: %llu transitions, %llu lost, %llu retransmits, %llu gaps, %lu errors; %llu events\n",
	       (unsigned long long)st->records,
	       (unsigned long long)st->transitions,
	       (unsigned long long)st->lost,
	       (unsigned long long)st->retrans,
	       (unsigned long long)st->gaps, st->errors,
	       (unsigned long long)st->events);
	if (expected >= 0 &&
	    (long long)(st->transitions + st->lost) != expected) {
		printf("tcpcheck: delivered %llu + lost %llu != produced %lld\n",
		       (unsigned long long)st->transitions,
		       (unsigned long long)st->lost, expected);
		rc = 1;
	}
	if (st->errors)
		rc = 1;
	tc_free(st);
	return rc;
usage:
	fprintf(stderr, "usage: tcpcheck [-c NR_CPUS] [-e EXPECTED] CAPTURE...\n");
	return 2;
}
