/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tcptrace internals shared by the module's files: the per-CPU buffers
 * (ring.c), the tracepoint probes and filter (probe.c, filter.c), the
 * kprobes of TIME_WAIT (timewait.c) and of the SYN queue (request.c), and
 * the character device (dev.c).
 */
#ifndef _TCPTRACE_H
#define _TCPTRACE_H

#include <linux/irq_work.h>
#include <linux/percpu.h>
#include <linux/types.h>
#include <net/sock.h>
#include <asm/local.h>
#include <asm/local64.h>
#include <linux/tcptrace.h>

/* A task and a softirq interrupting it: two hand-overs at once, at most. */
#define TCPTRACE_TW_HANDOVERS	4

#define TCPTRACE_TW_SEG_RST	0x01
#define TCPTRACE_TW_SEG_SYN	0x02
#define TCPTRACE_TW_SEG_FW2	0x04	/* it came in the FIN_WAIT2 substate */

/**
 * struct tcptrace_birth - a child being made from a request, for request.c
 * @id: the request's id, which the child inherits.
 * @lport: the request's local port, host byte order.
 * @cause: TCPTRACE_CAUSE_NONE for a queued request, else
 *	TCPTRACE_CAUSE_SYNCOOKIE or TCPTRACE_CAUSE_FASTOPEN.
 * @pending: the child's first transition has yet to take it.
 */
struct tcptrace_birth {
	u64		id;
	u16		lport;
	u8		cause;
	bool		pending;
};

/**
 * struct tcptrace_buf - one CPU's buffer of records
 * @head: next slot to reserve; free-running.
 * @nest: writers in progress on this CPU (a softirq can interrupt a task).
 * @commit: slots below it are complete; published with release semantics.
 * @recorded: transition records written.
 * @lost: transitions dropped because the buffer was full.
 * @filtered: transitions the filter rejected.
 * @loss_claimed: of @lost, how many a loss record covers.  The writer and the
 *	reader both claim losses, by cmpxchg, so each is reported exactly once.
 * @last_drop_ns: time of the last drop: the time of a loss record the reader
 *	makes (a writer's loss record takes the time of the record after it).
 * @wake_work: wakes the reader from interrupt context, never from the writer.
 * @birth_sk: the child whose first record is held in @birth, or NULL; only
 *	compared, never dereferenced.
 * @birth: the record of a child's LISTEN -> SYN_RECV, waiting for its id.
 * @tw_handover: cookies of sockets handed over to a timewait socket on this
 *	CPU whose CLOSE has yet to come, for timewait.c; 0 for a free slot.
 * @tw_timer: the timewait socket whose timer is running on this CPU, for
 *	timewait.c; only compared, never dereferenced.
 * @tw_seg: the timewait socket that last got a segment on this CPU, likewise.
 * @tw_seg_flags: TCPTRACE_TW_SEG_* of that segment.
 * @req_birth: the child being made on this CPU from a request, by context
 *	(task, softirq), for request.c.
 * @req_cookie: the request tcp_get_cookie_sock() is making a child of on
 *	this CPU, for request.c; only compared, never dereferenced.
 * @req_seg: the request that last got a segment on this CPU, likewise.
 * @req_seg_rst: whether that segment was a reset.
 * @slots: the ring; @mask + 1 records, a power of two.
 * @mask: number of slots minus one.
 * @tail: next slot to read; published with release semantics.
 * @delivered: transition records read.
 * @discarded: transition records thrown away by a clear.
 * @lost_reported: transitions reported lost by loss records read.
 * @carried_loss: losses the reader took over and has still to report: from
 *	loss records thrown away by a clear, or whose copy to user space failed.
 * @carried_ns: time of the latest loss in @carried_loss.
 *
 * Fields down to @mask belong to the CPU that owns the buffer; it changes
 * them with local (interrupt-safe, non-locked) operations only.  The rest
 * belong to the reader, which holds tcptrace.read_lock.
 */
struct tcptrace_buf {
	local_t			head;
	local_t			nest;
	unsigned long		commit;
	local64_t		recorded;
	local64_t		lost;
	local64_t		filtered;
	atomic64_t		loss_claimed;
	u64			last_drop_ns;
	struct irq_work		wake_work;
	const struct sock	*birth_sk;
	struct tcptrace_record	birth;
	atomic64_t		tw_handover[TCPTRACE_TW_HANDOVERS];
	const void		*tw_timer;
	const void		*tw_seg;
	u8			tw_seg_flags;
	bool			req_seg_rst;
	struct tcptrace_birth	req_birth[2];
	const void		*req_cookie;
	const void		*req_seg;
	struct tcptrace_record	*slots;
	unsigned long		mask;

	unsigned long		tail ____cacheline_aligned_in_smp;
	u64			delivered;
	u64			discarded;
	u64			lost_reported;
	u64			carried_loss;
	u64			carried_ns;
};

/* ring.c */
int tcptrace_bufs_alloc(unsigned int records);
void tcptrace_bufs_free(void);
struct tcptrace_record *tcptrace_buf_begin(struct tcptrace_buf *b);
void tcptrace_buf_end(struct tcptrace_buf *b);
void tcptrace_buf_write(struct tcptrace_buf *b,
			const struct tcptrace_record *rec);
ssize_t tcptrace_bufs_read(char __user *ubuf, size_t nr);
bool tcptrace_bufs_readable(void);
bool tcptrace_bufs_losing(void);
void tcptrace_bufs_clear(void);
void tcptrace_buf_stats(unsigned int cpu, struct tcptrace_cpu_stats *st);
void tcptrace_buf_init(struct tcptrace_buf *b, struct tcptrace_record *slots,
		       unsigned int records);
void tcptrace_bufs_reset(void);

extern struct tcptrace_buf __percpu *tcptrace_bufs;

/* filter.c */
struct tcptrace_kfilter;
extern struct tcptrace_kfilter __rcu *tcptrace_filter;
int tcptrace_filter_set(const struct tcptrace_filter *uf);
void tcptrace_filter_get(struct tcptrace_filter *uf);
bool tcptrace_filter_match(const struct tcptrace_kfilter *f,
			   const struct sock *sk, int oldstate, int newstate);
bool tcptrace_filter_match_tuple(const struct tcptrace_kfilter *kf,
				 u16 family, u32 netns, u16 lport, u16 rport,
				 int oldstate, int newstate);
bool tcptrace_filter_events(const struct tcptrace_kfilter *kf);
void tcptrace_filter_free(void);

/* probe.c */
int tcptrace_probe_attach(void);
void tcptrace_probe_detach(void);
enum tcptrace_ctx tcptrace_ctx(void);
void tcptrace_fill(struct tcptrace_record *rec, const struct sock *sk,
		   int oldstate, int newstate, u8 flags);
void tcptrace_fill_task(struct tcptrace_event *ev, enum tcptrace_ctx ctx);
void tcptrace_fill_addrs(struct tcptrace_event *ev,
			 const struct sock_common *skc);
typedef void (*tcptrace_probe_t)(void *data, const struct sock *sk,
				 int oldstate, int newstate);
extern tcptrace_probe_t tcptrace_probe_fn;
bool tcptrace_other_probe(tcptrace_probe_t *fn, void **data);

/* timewait.c */
int tcptrace_tw_attach(void);
bool tcptrace_tw_handed_over(const struct sock *sk);
unsigned long tcptrace_tw_missed(void);
void tcptrace_tw_detach(void);

/* request.c */
struct request_sock;
int tcptrace_req_attach(void);
void tcptrace_req_record(struct request_sock *req, u8 type, int oldstate,
			 int newstate, enum tcptrace_cause cause);
bool tcptrace_req_child(struct tcptrace_buf *b, const struct sock *sk,
			u64 *id, int *oldstate, u8 *flags);
unsigned long tcptrace_req_missed(void);
void tcptrace_req_detach(void);

/* selftest.c, in DEBUG builds only (TCPTRACE_DEBUG=y) */
#ifdef DEBUG
int tcptrace_selftest(void);
#else
static inline int tcptrace_selftest(void)
{
	return 0;
}
#endif

/* dev.c */
int tcptrace_dev_register(void);
void tcptrace_dev_unregister(void);
void tcptrace_wake_reader(void);
bool tcptrace_reader_waiting(void);

/* main.c: parameters, read-only after load */
extern unsigned int tcptrace_buffer_records;
extern unsigned int tcptrace_watermark;
extern unsigned int tcptrace_wakeup_ms;
extern bool tcptrace_timewait;
extern bool tcptrace_causes;
extern bool tcptrace_requests;
/* TCPTRACE_HOOK_* of what is attached; changed only at load and unload */
extern u32 tcptrace_hooks;

#endif /* _TCPTRACE_H */
