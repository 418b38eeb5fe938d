// SPDX-License-Identifier: GPL-2.0
/*
 * Self-tests and one measurement, built only with TCPTRACE_DEBUG=y and run
 * at load, before the probe is attached.  The module refuses to load when
 * the ring misbehaves.
 *
 * The ring: a writer nested in another publishes nothing until the outer one
 * is done; a full ring drops and counts; once there is room, the next record
 * comes with a loss record in front of it, which has the right count and
 * the time of the record it precedes.
 *
 * The measurement: the probe, called through a pointer as a tracepoint calls
 * it, on a kernel TCP socket, in chunks timed with local_clock(); beside it
 * an empty function called the same way, and -- when ftrace's event
 * sock:inet_sock_set_state is enabled -- ftrace's own probe for it, called
 * the same way too.  The log line
 *
 *	tcptrace: selftest: record path 61 ns/event, empty probe 2 ns/call,
 *	other probe 90 ns/call (trace_event_raw_event_...), over 65536 events
 *
 * is what make bench reports as record_ns, empty_probe_ns and ftrace_ns.
 */

#include <linux/minmax.h>
#include <linux/net.h>
#include <linux/preempt.h>
#include <linux/sched.h>
#include <linux/sched/clock.h>
#include <linux/slab.h>
#include <net/net_namespace.h>
#include <net/sock.h>
#include <net/tcp_states.h>
#include "tcptrace.h"

#define SELFTEST_SLOTS	8
#define BENCH_CHUNKS	64

static bool __init check(bool ok, const char *what, int line)
{
	if (!ok)
		pr_err("selftest: selftest.c:%d: %s\n", line, what);
	return ok;
}

#define CHECK(cond)	check(cond, #cond, __LINE__)

static void __init fill(struct tcptrace_record *rec, unsigned int n)
{
	rec->type = TCPTRACE_REC_STATE;
	rec->ev.sock_id = n;
}

static int __init ring_nesting(struct tcptrace_buf *b)
{
	struct tcptrace_record *outer, *inner;

	outer = tcptrace_buf_begin(b);
	if (!CHECK(outer))
		return -EINVAL;
	/* A softirq interrupting the writer, as it were. */
	inner = tcptrace_buf_begin(b);
	if (!CHECK(inner && inner != outer))
		return -EINVAL;
	fill(inner, 2);
	tcptrace_buf_end(b);
	if (!CHECK(b->commit == 0))
		return -EINVAL;		/* the outer slot is not written yet */
	fill(outer, 1);
	tcptrace_buf_end(b);
	if (!CHECK(b->commit == 2))
		return -EINVAL;
	if (!CHECK(outer->ts_ns <= inner->ts_ns))
		return -EINVAL;
	if (!CHECK(local_read(&b->nest) == 0))
		return -EINVAL;
	return 0;
}

static int __init ring_loss(struct tcptrace_buf *b)
{
	struct tcptrace_record *rec, *loss;
	unsigned int i;

	for (i = 2; i < SELFTEST_SLOTS; i++) {
		rec = tcptrace_buf_begin(b);
		if (!CHECK(rec))
			return -EINVAL;
		fill(rec, i + 1);
		tcptrace_buf_end(b);
	}
	if (!CHECK(b->commit == SELFTEST_SLOTS))
		return -EINVAL;

	/* Full: dropped and counted, nothing overwritten. */
	if (!CHECK(!tcptrace_buf_begin(b)))
		return -EINVAL;
	tcptrace_buf_end(b);
	if (!CHECK(local64_read(&b->lost) == 1))
		return -EINVAL;
	if (!CHECK(b->slots[0].ev.sock_id == 1))
		return -EINVAL;

	/* One free slot is not enough for a loss record and a record. */
	b->tail = 1;
	if (!CHECK(!tcptrace_buf_begin(b)))
		return -EINVAL;
	tcptrace_buf_end(b);
	if (!CHECK(local64_read(&b->lost) == 2))
		return -EINVAL;

	/* Two are: the loss record goes first, with the record's time. */
	b->tail = 2;
	rec = tcptrace_buf_begin(b);
	if (!CHECK(rec))
		return -EINVAL;
	fill(rec, 9);
	tcptrace_buf_end(b);
	loss = &b->slots[SELFTEST_SLOTS & b->mask];
	if (!CHECK(loss->type == TCPTRACE_REC_LOST))
		return -EINVAL;
	if (!CHECK(loss->loss.count == 2 && loss->loss.total == 2))
		return -EINVAL;
	if (!CHECK(loss->ts_ns == rec->ts_ns))
		return -EINVAL;
	if (!CHECK(rec == &b->slots[(SELFTEST_SLOTS + 1) & b->mask]))
		return -EINVAL;
	if (!CHECK(atomic64_read(&b->loss_claimed) == 2))
		return -EINVAL;
	if (!CHECK(b->commit == SELFTEST_SLOTS + 2))
		return -EINVAL;
	if (!CHECK(local64_read(&b->recorded) == SELFTEST_SLOTS + 1))
		return -EINVAL;
	return 0;
}

static int __init ring_test(void)
{
	struct tcptrace_record *slots;
	struct tcptrace_buf *b;
	int ret;

	b = kzalloc(sizeof(*b), GFP_KERNEL);
	slots = kcalloc(SELFTEST_SLOTS, sizeof(*slots), GFP_KERNEL);
	if (!b || !slots) {
		kfree(b);
		kfree(slots);
		return -ENOMEM;
	}
	tcptrace_buf_init(b, slots, SELFTEST_SLOTS);

	/* As the probe runs: on one CPU, not preempted. */
	preempt_disable();
	ret = ring_nesting(b);
	if (!ret)
		ret = ring_loss(b);
	preempt_enable();

	kfree(slots);
	kfree(b);
	return ret;
}

static noinline void empty_probe(void *data, const struct sock *sk,
				 int oldstate, int newstate)
{
}

static tcptrace_probe_t empty_probe_fn = empty_probe;

static int __init bench(void)
{
	unsigned int chunk = min(1024U, tcptrace_buffer_records / 2);
	u64 t0, t1, t2, t3, rec_ns = 0, empty_ns = 0, other_ns = 0, n = 0;
	tcptrace_probe_t probe, empty, other = NULL;
	void *other_data = NULL;
	struct socket *sock;
	unsigned int i, j;
	bool has_other;
	int ret;

	ret = sock_create_kern(&init_net, AF_INET, SOCK_STREAM, IPPROTO_TCP,
			       &sock);
	if (ret)
		return ret;
	has_other = tcptrace_other_probe(&other, &other_data);

	for (j = 0; j < BENCH_CHUNKS; j++) {
		/* Through pointers the compiler cannot see through. */
		probe = READ_ONCE(tcptrace_probe_fn);
		empty = READ_ONCE(empty_probe_fn);

		preempt_disable();
		t0 = local_clock();
		for (i = 0; i < chunk; i++)
			probe(NULL, sock->sk, TCP_CLOSE, TCP_SYN_SENT);
		t1 = local_clock();
		for (i = 0; i < chunk; i++)
			empty(NULL, sock->sk, TCP_CLOSE, TCP_SYN_SENT);
		t2 = local_clock();
		for (i = 0; has_other && i < chunk; i++)
			other(other_data, sock->sk, TCP_CLOSE, TCP_SYN_SENT);
		t3 = local_clock();
		preempt_enable();

		rec_ns += t1 - t0;
		empty_ns += t2 - t1;
		other_ns += t3 - t2;
		n += chunk;
		/* Room again for the next chunk, so none is dropped. */
		tcptrace_bufs_reset();
		cond_resched();
	}
	sock_release(sock);

	if (has_other)
		pr_info("selftest: record path %llu ns/event, empty probe %llu ns/call, other probe %llu ns/call (%ps), over %llu events\n",
			div64_u64(rec_ns, n), div64_u64(empty_ns, n),
			div64_u64(other_ns, n), other, n);
	else
		pr_info("selftest: record path %llu ns/event, empty probe %llu ns/call, over %llu events\n",
			div64_u64(rec_ns, n), div64_u64(empty_ns, n), n);
	return 0;
}

/**
 * tcptrace_selftest() - test the ring, measure the record path
 *
 * Leaves the buffers empty and their counters at zero.
 *
 * Context: process context, at load, before the probe is attached.
 * Return: 0, or an error that refuses the load.
 */
int __init tcptrace_selftest(void)
{
	int ret;

	ret = ring_test();
	if (ret) {
		pr_err("selftest: the ring failed its test\n");
		return ret;
	}
	ret = bench();
	tcptrace_bufs_reset();
	if (ret)
		pr_err("selftest: cannot measure the record path: %d\n", ret);
	else
		pr_info("selftest: passed\n");
	return ret;
}
