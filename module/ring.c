// SPDX-License-Identifier: GPL-2.0
/*
 * Per-CPU buffers of fixed-size records.
 *
 * Each CPU owns one ring.  Writers are tracepoint probes: they run with
 * preemption disabled, in task or softirq context, and they nest -- a softirq
 * can interrupt a task halfway through its record.  A writer reserves slots
 * with local_cmpxchg() on @head (interrupt-safe, no lock prefix) and reads the
 * clock inside that loop, so a ring's records are in time order.  Slots are
 * published by moving @commit, which only the outermost writer does, once
 * every writer nested in it is done: the reader never sees a half-written
 * slot.  A full ring drops the new record and counts it; nothing recorded is
 * ever overwritten.
 *
 * The reader (one at a time, under tcptrace's read lock) repeatedly takes the
 * oldest record among the rings' first ones, so read() merges the CPUs in
 * time order.  It copies straight from the slot; writers never touch the
 * slots between @tail and @commit.
 *
 * Losses: @lost counts drops.  Before its next record, a writer claims the
 * part of @lost no loss record covers yet, by cmpxchg on @loss_claimed, and
 * puts a loss record in front of its record: the loss shows where it
 * happened.  A reader that finds a ring empty claims the same way and returns
 * a loss record of its own making, so a loss at the end of a trace is
 * reported too.  Whoever loses that race reports nothing; a slot reserved for
 * a loss record that was claimed meanwhile becomes padding, which read()
 * skips.  Every drop is thus reported exactly once.
 */

#include <linux/errno.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>
#include "tcptrace.h"

/* A slot reserved for a loss record that a reader claimed first. */
#define TCPTRACE_REC_PAD	0

struct tcptrace_buf __percpu *tcptrace_bufs;

static struct tcptrace_record *buf_slot(struct tcptrace_buf *b,
					unsigned long pos)
{
	return &b->slots[pos & b->mask];
}

static void buf_wake(struct irq_work *work)
{
	tcptrace_wake_reader();
}

/**
 * tcptrace_bufs_alloc() - allocate every possible CPU's buffer
 * @records: slots per buffer, a power of two.
 *
 * Buffers exist for CPUs that are offline too, so records of a CPU that goes
 * offline stay readable and a CPU that comes online can record at once.
 *
 * Context: process context; may sleep.
 * Return: 0, or -ENOMEM with nothing allocated.
 */
int tcptrace_bufs_alloc(unsigned int records)
{
	size_t size = array_size(records, sizeof(struct tcptrace_record));
	unsigned int cpu;

	tcptrace_bufs = alloc_percpu(struct tcptrace_buf);
	if (!tcptrace_bufs)
		return -ENOMEM;

	for_each_possible_cpu(cpu)
		init_irq_work(&per_cpu_ptr(tcptrace_bufs, cpu)->wake_work,
			      buf_wake);

	for_each_possible_cpu(cpu) {
		struct tcptrace_buf *b = per_cpu_ptr(tcptrace_bufs, cpu);
		struct tcptrace_record *slots;

		/* Fail quietly rather than call the OOM killer. */
		slots = kvzalloc_node(size, GFP_KERNEL | __GFP_NOWARN |
				      __GFP_RETRY_MAYFAIL, cpu_to_node(cpu));
		if (!slots) {
			tcptrace_bufs_free();
			return -ENOMEM;
		}
		tcptrace_buf_init(b, slots, records);
	}
	return 0;
}

/**
 * tcptrace_buf_init() - make @b an empty buffer over @slots
 * @b: the buffer; its wake-up work is left as it is.
 * @slots: @records slots.
 * @records: a power of two.
 *
 * Context: process context, no writer or reader on @b.
 */
void tcptrace_buf_init(struct tcptrace_buf *b, struct tcptrace_record *slots,
		       unsigned int records)
{
	local_set(&b->head, 0);
	local_set(&b->nest, 0);
	b->commit = 0;
	local64_set(&b->recorded, 0);
	local64_set(&b->lost, 0);
	local64_set(&b->filtered, 0);
	atomic64_set(&b->loss_claimed, 0);
	b->last_drop_ns = 0;
	b->birth_sk = NULL;
	b->slots = slots;
	b->mask = records - 1;
	b->tail = 0;
	b->delivered = 0;
	b->discarded = 0;
	b->lost_reported = 0;
	b->carried_loss = 0;
	b->carried_ns = 0;
}

/**
 * tcptrace_bufs_reset() - every buffer empty, every counter zero
 *
 * Context: process context, with the probe detached and no reader.
 */
void tcptrace_bufs_reset(void)
{
	unsigned int cpu;

	for_each_possible_cpu(cpu) {
		struct tcptrace_buf *b = per_cpu_ptr(tcptrace_bufs, cpu);

		tcptrace_buf_init(b, b->slots, b->mask + 1);
	}
}

/**
 * tcptrace_bufs_free() - free the buffers
 *
 * Context: process context, with the probe detached and synchronized.
 */
void tcptrace_bufs_free(void)
{
	unsigned int cpu;

	if (!tcptrace_bufs)
		return;
	for_each_possible_cpu(cpu) {
		struct tcptrace_buf *b = per_cpu_ptr(tcptrace_bufs, cpu);

		irq_work_sync(&b->wake_work);
		kvfree(b->slots);
	}
	free_percpu(tcptrace_bufs);
	tcptrace_bufs = NULL;
}

static void loss_fill(struct tcptrace_record *rec, unsigned int cpu, u64 ts,
		      u64 count, u64 total)
{
	rec->ts_ns = ts;
	rec->cpu = cpu;
	rec->type = TCPTRACE_REC_LOST;
	rec->ctx = TCPTRACE_CTX_TASK;
	rec->netns = 0;
	rec->loss.count = count;
	rec->loss.total = total;
	memset(rec->loss.reserved, 0, sizeof(rec->loss.reserved));
}

/*
 * The writer's side of a loss claim; @rec is the slot reserved for it, in
 * front of the record of time @ts, which it takes: the drops came before.
 */
static void buf_put_loss(struct tcptrace_buf *b, struct tcptrace_record *rec,
			 u64 ts)
{
	s64 claimed = atomic64_read(&b->loss_claimed);
	s64 lost;

	do {
		lost = local64_read(&b->lost);
		if (lost == claimed) {
			rec->type = TCPTRACE_REC_PAD;
			return;
		}
	} while (!atomic64_try_cmpxchg(&b->loss_claimed, &claimed, lost));

	loss_fill(rec, smp_processor_id(), ts, lost - claimed, lost);
}

/*
 * Reserve a slot for a record of time @at, or of now if @at is 0.  A loss
 * record that has to go first takes the same time: its drops happened
 * before, and so it stays in time order even when a nested writer's record
 * lands between its claim and an older writer's.
 */
static struct tcptrace_record *buf_reserve(struct tcptrace_buf *b, u64 at)
{
	unsigned long size = b->mask + 1;
	unsigned long pos, tail, need = 1;
	struct tcptrace_record *rec;
	u64 ts;

	if (unlikely(local64_read(&b->lost) != atomic64_read(&b->loss_claimed)))
		need = 2;

	/* Pairs with the reader's release: it is done with slots below. */
	tail = smp_load_acquire(&b->tail);
	do {
		pos = local_read(&b->head);
		ts = at ?: ktime_get_mono_fast_ns();
		if (unlikely(pos - tail + need > size)) {
			local64_inc(&b->lost);
			WRITE_ONCE(b->last_drop_ns, ts);
			return NULL;
		}
	} while (local_cmpxchg(&b->head, pos, pos + need) != pos);

	if (unlikely(need == 2))
		buf_put_loss(b, buf_slot(b, pos++), ts);

	local64_inc(&b->recorded);
	rec = buf_slot(b, pos);
	rec->ts_ns = ts;
	return rec;
}

/**
 * tcptrace_buf_begin() - reserve a slot for one transition record
 * @b: this CPU's buffer.
 *
 * Must be paired with tcptrace_buf_end(), whatever it returns.  On success
 * the slot's @ts_ns is set and the caller fills in the rest.
 *
 * Context: any, with preemption disabled; nests.
 * Return: the slot, or NULL if the buffer is full (the drop is counted).
 */
struct tcptrace_record *tcptrace_buf_begin(struct tcptrace_buf *b)
{
	local_inc(&b->nest);
	barrier();	/* in the nest before reserving */
	return buf_reserve(b, 0);
}

/**
 * tcptrace_buf_write() - write a record prepared beforehand
 * @b: this CPU's buffer.
 * @rec: the record, with its own time.
 *
 * Context: as tcptrace_buf_begin().
 */
void tcptrace_buf_write(struct tcptrace_buf *b,
			const struct tcptrace_record *rec)
{
	struct tcptrace_record *slot;

	local_inc(&b->nest);
	barrier();	/* in the nest before reserving */
	slot = buf_reserve(b, rec->ts_ns);
	if (slot)
		*slot = *rec;
	tcptrace_buf_end(b);
}

/* Wake a waiting reader once each time the fill level crosses the watermark. */
static void buf_maybe_wake(struct tcptrace_buf *b, unsigned long old_commit)
{
	unsigned long tail = READ_ONCE(b->tail);
	unsigned long fill = READ_ONCE(b->commit) - tail;

	if (fill < tcptrace_watermark || old_commit - tail >= tcptrace_watermark)
		return;
	if (tcptrace_reader_waiting())
		irq_work_queue(&b->wake_work);
}

/**
 * tcptrace_buf_end() - publish what tcptrace_buf_begin() reserved
 * @b: this CPU's buffer.
 *
 * The outermost writer publishes everything reserved so far.  If a writer
 * nested in it reserved a slot after it read @head, it goes round again.
 *
 * Context: as tcptrace_buf_begin().
 */
void tcptrace_buf_end(struct tcptrace_buf *b)
{
	unsigned long old_commit = b->commit;
	unsigned long head;

	for (;;) {
		head = local_read(&b->head);
		/*
		 * Outermost: every nested writer is done, all below @head is
		 * written.
		 */
		if (local_read(&b->nest) == 1)
			/* Pairs with the reader's acquire in buf_peek(). */
			smp_store_release(&b->commit, head);
		barrier();	/* publish before leaving the nest */
		local_dec(&b->nest);
		barrier();	/* leave the nest before looking at @head */
		if (likely(local_read(&b->head) == head) || local_read(&b->nest))
			break;
		/* An interrupt reserved after we read @head: publish it too. */
		local_inc(&b->nest);
		barrier();	/* back in the nest before reading @head */
	}
	buf_maybe_wake(b, old_commit);
}

/* The reader's side: the first record to deliver, skipping padding. */
static struct tcptrace_record *buf_peek(struct tcptrace_buf *b)
{
	/* Pairs with the writer's release: the slots below are complete. */
	unsigned long commit = smp_load_acquire(&b->commit);

	while (b->tail != commit) {
		struct tcptrace_record *rec = buf_slot(b, b->tail);

		if (rec->type != TCPTRACE_REC_PAD)
			return rec;
		/* Pairs with the writer's acquire: the slot is free again. */
		smp_store_release(&b->tail, b->tail + 1);
	}
	return NULL;
}

static bool buf_unclaimed_loss(struct tcptrace_buf *b)
{
	return local64_read(&b->lost) != atomic64_read(&b->loss_claimed);
}

/*
 * May the reader report a loss itself?  Only with no slot reserved and not
 * yet published: a record reserved before a drop would otherwise come out
 * after the loss record, older than it.  (A writer that starts later reads
 * the clock after the drop.)
 */
static bool buf_loss_to_reader(struct tcptrace_buf *b)
{
	return buf_unclaimed_loss(b) && local_read(&b->head) == b->tail;
}

/*
 * The reader's side of a loss claim: what the reader carries plus, when
 * @claim, what no loss record covers yet.  Return: the count, maybe 0.
 */
static u64 buf_take_loss(struct tcptrace_buf *b, bool claim,
			 struct tcptrace_record *rec, unsigned int cpu)
{
	s64 claimed = atomic64_read(&b->loss_claimed);
	s64 lost = claimed;
	u64 ts = b->carried_ns;

	if (claim) {
		do {
			lost = local64_read(&b->lost);
		} while (lost != claimed &&
			 !atomic64_try_cmpxchg(&b->loss_claimed, &claimed, lost));
		if (lost != claimed)
			ts = READ_ONCE(b->last_drop_ns);
	}
	loss_fill(rec, cpu, ts, b->carried_loss + (lost - claimed),
		  local64_read(&b->lost));
	WRITE_ONCE(b->carried_loss, 0);
	return rec->loss.count;
}

static void buf_account(struct tcptrace_buf *b, const struct tcptrace_record *rec)
{
	if (rec->type == TCPTRACE_REC_STATE)
		WRITE_ONCE(b->delivered, b->delivered + 1);
	else
		WRITE_ONCE(b->lost_reported, b->lost_reported + rec->loss.count);
}

/**
 * tcptrace_bufs_read() - copy up to @nr records, oldest first, to user space
 * @ubuf: user buffer with room for @nr records.
 * @nr: records wanted, at least one.
 *
 * A record is consumed only once it is copied; on a fault it stays for the
 * next read.
 *
 * Context: process context, tcptrace's read lock held.
 * Return: the number of records copied, possibly 0; -EFAULT if the first
 * copy faulted.
 */
ssize_t tcptrace_bufs_read(char __user *ubuf, size_t nr)
{
	const size_t rsize = sizeof(struct tcptrace_record);
	struct tcptrace_record loss;
	size_t done = 0;

	while (done < nr) {
		struct tcptrace_record *rec, *best_rec = NULL;
		struct tcptrace_buf *b, *best = NULL;
		unsigned int cpu, best_cpu = 0;
		u64 ts, best_ts = U64_MAX;

		for_each_possible_cpu(cpu) {
			b = per_cpu_ptr(tcptrace_bufs, cpu);
			rec = buf_peek(b);
			/* A loss taken over by the reader comes first. */
			if (b->carried_loss && (!rec || b->carried_ns <= rec->ts_ns)) {
				rec = NULL;
				ts = b->carried_ns;
			} else if (rec) {
				ts = rec->ts_ns;
			} else if (buf_loss_to_reader(b)) {
				ts = READ_ONCE(b->last_drop_ns);
			} else {
				continue;
			}
			if (!best || ts < best_ts) {
				best = b;
				best_rec = rec;
				best_cpu = cpu;
				best_ts = ts;
			}
		}
		if (!best)
			break;

		if (best_rec) {
			if (copy_to_user(ubuf + done * rsize, best_rec, rsize))
				return done ? done : -EFAULT;
			buf_account(best, best_rec);
			/* Pairs with the writer's acquire: slot free again. */
			smp_store_release(&best->tail, best->tail + 1);
		} else {
			bool claim = !best->carried_loss;

			/* The writer may have claimed it meanwhile: look again. */
			if (!buf_take_loss(best, claim, &loss, best_cpu))
				continue;
			if (copy_to_user(ubuf + done * rsize, &loss, rsize)) {
				WRITE_ONCE(best->carried_loss, loss.loss.count);
				best->carried_ns = loss.ts_ns;
				return done ? done : -EFAULT;
			}
			buf_account(best, &loss);
		}
		done++;
	}
	return done;
}

/**
 * tcptrace_bufs_readable() - is there anything for read() to return?
 *
 * Context: any; lockless, so a hint that read() confirms.
 */
bool tcptrace_bufs_readable(void)
{
	unsigned int cpu;

	for_each_possible_cpu(cpu) {
		struct tcptrace_buf *b = per_cpu_ptr(tcptrace_bufs, cpu);

		/* Pairs with the writer's release of @commit. */
		if (READ_ONCE(b->tail) != smp_load_acquire(&b->commit) ||
		    READ_ONCE(b->carried_loss) || buf_unclaimed_loss(b))
			return true;
	}
	return false;
}

/**
 * tcptrace_bufs_losing() - has some CPU dropped records not reported yet?
 *
 * Context: any; lockless.
 */
bool tcptrace_bufs_losing(void)
{
	unsigned int cpu;

	for_each_possible_cpu(cpu)
		if (buf_unclaimed_loss(per_cpu_ptr(tcptrace_bufs, cpu)))
			return true;
	return false;
}

/**
 * tcptrace_bufs_clear() - throw away every buffered transition record
 *
 * Loss records thrown away are carried over: losses are always reported.
 *
 * Context: process context, tcptrace's read lock held.
 */
void tcptrace_bufs_clear(void)
{
	unsigned int cpu;

	for_each_possible_cpu(cpu) {
		struct tcptrace_buf *b = per_cpu_ptr(tcptrace_bufs, cpu);
		/* Pairs with the writer's release: the slots below are done. */
		unsigned long commit = smp_load_acquire(&b->commit);
		unsigned long tail = b->tail;

		for (; tail != commit; tail++) {
			struct tcptrace_record *rec = buf_slot(b, tail);

			if (rec->type == TCPTRACE_REC_STATE) {
				WRITE_ONCE(b->discarded, b->discarded + 1);
			} else if (rec->type == TCPTRACE_REC_LOST) {
				WRITE_ONCE(b->carried_loss,
					   b->carried_loss + rec->loss.count);
				b->carried_ns = rec->ts_ns;
			}
		}
		/* Pairs with the writer's acquire: the slots are free again. */
		smp_store_release(&b->tail, tail);
	}
}

/**
 * tcptrace_buf_stats() - one CPU's counters
 * @cpu: a possible CPU.
 * @st: filled in.
 *
 * Context: process context, tcptrace's read lock held.
 */
void tcptrace_buf_stats(unsigned int cpu, struct tcptrace_cpu_stats *st)
{
	struct tcptrace_buf *b = per_cpu_ptr(tcptrace_bufs, cpu);

	st->recorded = local64_read(&b->recorded);
	st->lost = local64_read(&b->lost);
	st->lost_reported = b->lost_reported;
	st->filtered = local64_read(&b->filtered);
	st->delivered = b->delivered;
	st->discarded = b->discarded;
	st->buffer_records = b->mask + 1;
	st->queued = READ_ONCE(b->commit) - b->tail;
}
