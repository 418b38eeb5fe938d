// SPDX-License-Identifier: GPL-2.0
/*
 * calib: a fixed loop whose speed relates the guest to the host.
 *
 * Each iteration does what the record path mostly does: reads the TSC (the
 * clock), reserves a slot with a compare-and-exchange without lock prefix
 * (as local_cmpxchg() does), and fills a 128-byte record field by field.
 * It prints the nanoseconds one iteration takes.  Run on the host and in the
 * TCG guest, the ratio of the two is how much slower the guest runs this kind
 * of code; make bench divides the guest's record_ns by it to estimate the
 * native cost.  A rough translation, and said to be one.
 *
 *	calib [ITERATIONS]	(default 20,000,000)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <x86intrin.h>

struct rec {
	uint64_t ts, id;
	uint32_t a[8];
	char comm[16];
	uint8_t addr[32];
	uint32_t seq[4];
	uint64_t bytes[2];
	uint32_t rest[2];
};

static struct rec ring[1024];
static unsigned long head;

/* cmpxchg without the lock prefix, as the kernel's local_cmpxchg(). */
static unsigned long local_cmpxchg(unsigned long *p, unsigned long old,
				   unsigned long new)
{
	unsigned long prev;

	__asm__ volatile("cmpxchgq %2, %1"
			 : "=a"(prev), "+m"(*p)
			 : "r"(new), "0"(old)
			 : "memory");
	return prev;
}

int main(int argc, char **argv)
{
	unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000000;
	struct timespec t0, t1;
	volatile uint64_t sink = 0;
	unsigned long i;
	double ns;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < n; i++) {
		unsigned long pos;
		uint64_t ts;
		struct rec *r;

		do {
			pos = head;
			ts = __rdtsc();
		} while (local_cmpxchg(&head, pos, pos + 1) != pos);
		r = &ring[pos & 1023];
		r->ts = ts;
		r->id = i * 0x9e3779b97f4a7c15ULL;
		r->a[i & 7] = (uint32_t)i;
		memcpy(r->comm, "calibration", 12);
		r->addr[i & 31] = (uint8_t)i;
		r->seq[i & 3] += (uint32_t)i;
		r->bytes[i & 1] += i;
		sink += r->seq[0] ^ r->id;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
	printf("calib: %.3f ns/iteration over %lu (sink %llu)\n", ns / n, n,
	       (unsigned long long)(sink & 1));
	return 0;
}
