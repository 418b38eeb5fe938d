// SPDX-License-Identifier: GPL-2.0
/*
 * TIME_WAIT.  tcp_time_wait() hands a closing connection over to a timewait
 * socket, which takes the full socket's place in the hashes, then closes the
 * full socket: sock:inet_sock_set_state shows FIN_WAIT2 (or CLOSING) ->
 * CLOSE, and the timewait socket never passes through it, not even when it
 * goes away.  So kprobes, on functions both supported kernels have and do
 * not inline:
 *
 *  - the hand-over, inet_twsk_hashdance() (inet_twsk_hashdance_schedule()
 *    from 6.10; compat.h): it records X -> TIME_WAIT from the full socket,
 *    and leaves the socket's cookie in the CPU's buffer so that the probe
 *    drops the full socket's X -> CLOSE that follows (tcp_done());
 *  - inet_twsk_kill(), where every timewait socket is taken out of the
 *    hashes, once: it records TIME_WAIT -> CLOSE, with the cause below;
 *  - tw_timer_handler(), the timewait timer, which calls it on expiry;
 *  - tcp_timewait_state_process(), which handles a segment that reached a
 *    timewait socket and may, there or in its caller, kill it;
 *  - __inet_twsk_schedule(), whose rearming after a segment that found the
 *    timewait socket in its FIN_WAIT2 substate says the peer's FIN came:
 *    TIME_WAIT -> TIME_WAIT, out of that substate.
 *
 * The timer and the segment only leave a mark in the CPU's buffer (which
 * timewait socket, and what the segment was), for inet_twsk_kill() and
 * __inet_twsk_schedule() on the same CPU, in the same softirq, to find.
 * Marks are compared, never dereferenced.  The cause of a kill, in the
 * order it is decided:
 *
 *  - the timer's mark: the timer ran out (2MSL, or the FIN_WAIT2 timeout);
 *  - the timewait socket is no longer hashed: a connect() on the same
 *    4-tuple took its place (__inet_check_established(), tcp_tw_reuse);
 *  - its network namespace has no references left: inet_twsk_purge();
 *  - in a softirq, the segment's mark: a reset it received, a SYN that
 *    reuses its 4-tuple, or else a segment it answered with a reset;
 *  - in process context: killed on request (SOCK_DESTROY, ss -K).
 *
 * When the kprobes cannot be placed (a kernel without CONFIG_KPROBES, or one
 * that inlined a function), the module says so once, leaves
 * TCPTRACE_HOOK_TW_ENTER and TCPTRACE_HOOK_TW_EXIT out of the hooks it
 * reports, and records FIN_WAIT2 -> CLOSE as the tracepoint shows it.
 */

#include <linux/kprobes.h>
#include <linux/ptrace.h>
#include <net/inet_timewait_sock.h>
#include <net/tcp.h>
#include "tcptrace.h"

static enum tcptrace_cause tw_cause(struct tcptrace_buf *b,
				    const struct inet_timewait_sock *tw)
{
	const struct net *net = twsk_net(tw);

	if (b->tw_timer == tw) {
		b->tw_timer = NULL;
		return TCPTRACE_CAUSE_TW_EXPIRED;
	}
	if (hlist_nulls_unhashed(&tw->tw_node))
		return TCPTRACE_CAUSE_TW_REUSED;
	if (!refcount_read(&net->ns.count))
		return TCPTRACE_CAUSE_TW_NETNS;
	if (!in_serving_softirq())
		return TCPTRACE_CAUSE_TW_KILLED;
	if (b->tw_seg != tw)
		return TCPTRACE_CAUSE_NONE;
	b->tw_seg = NULL;
	if (b->tw_seg_flags & TCPTRACE_TW_SEG_RST)
		return TCPTRACE_CAUSE_TW_RST_RECEIVED;
	/* A SYN reuses only a TIME_WAIT; in FIN_WAIT2 it draws a reset. */
	if (b->tw_seg_flags & TCPTRACE_TW_SEG_SYN &&
	    tw->tw_substate == TCP_TIME_WAIT)
		return TCPTRACE_CAUSE_TW_SYN;
	return TCPTRACE_CAUSE_TW_RST_SENT;
}

static void tw_fill(struct tcptrace_record *rec,
		    const struct inet_timewait_sock *tw, int newstate,
		    enum tcptrace_cause cause)
{
	const struct tcp_timewait_sock *tcptw = tcp_twsk((struct sock *)tw);
	enum tcptrace_ctx ctx = tcptrace_ctx();
	struct tcptrace_event *ev = &rec->ev;

	rec->cpu = smp_processor_id();
	rec->type = TCPTRACE_REC_STATE;
	rec->ctx = ctx;
	rec->netns = twsk_net(tw)->ns.inum;

	/* inet_twsk_alloc() copied the full socket's cookie, if it had one. */
	ev->sock_id = atomic64_read(&tw->tw_cookie);
	ev->family = tw->tw_family;
	ev->oldstate = TCP_TIME_WAIT;
	ev->newstate = newstate;
	ev->flags = cause << TCPTRACE_F_CAUSE_SHIFT;
	if (READ_ONCE(tw->tw_substate) == TCP_FIN_WAIT2)
		ev->flags |= TCPTRACE_F_TW_FIN_WAIT2;
	if (!ev->sock_id)
		ev->flags |= TCPTRACE_F_ID_UNSET;
	ev->lport = ntohs(tw->tw_sport);
	ev->rport = ntohs(tw->tw_dport);

	tcptrace_fill_task(ev, ctx);
	tcptrace_fill_addrs(ev, &tw->__tw_common);

	/* A timewait socket keeps only the two edges of the sequence space. */
	ev->snd_una = READ_ONCE(tcptw->tw_snd_nxt);
	ev->snd_nxt = ev->snd_una;
	ev->write_seq = ev->snd_una;
	ev->rcv_nxt = READ_ONCE(tcptw->tw_rcv_nxt);
	ev->bytes_acked = 0;
	ev->bytes_received = 0;
	ev->total_retrans = 0;
	ev->srtt_us = 0;
}

/* Remember that @cookie's next CLOSE is the hand-over's. */
static void tw_handover_mark(struct tcptrace_buf *b, u64 cookie)
{
	unsigned int i;

	for (i = 0; i < TCPTRACE_TW_HANDOVERS; i++)
		if (!atomic64_cmpxchg(&b->tw_handover[i], 0, cookie))
			return;
	/* Full: a mark whose CLOSE never came (the module was loading). */
	atomic64_set(&b->tw_handover[0], cookie);
}

static bool tw_handover_take(struct tcptrace_buf *b, u64 cookie)
{
	unsigned int i;

	for (i = 0; i < TCPTRACE_TW_HANDOVERS; i++)
		if (atomic64_read(&b->tw_handover[i]) == cookie &&
		    atomic64_cmpxchg(&b->tw_handover[i], cookie, 0) == cookie)
			return true;
	return false;
}

/**
 * tcptrace_tw_handed_over() - is this CLOSE the hand-over to TIME_WAIT?
 * @sk: a full socket entering CLOSE from FIN_WAIT2 or CLOSING.
 *
 * The mark is normally on this CPU; a task preempted between the hand-over
 * and tcp_done() may have moved, so the other CPUs are looked at too.
 *
 * Context: the probe's: any, with preemption disabled.
 * Return: whether it is, the mark then taken.
 */
bool tcptrace_tw_handed_over(const struct sock *sk)
{
	u64 cookie = atomic64_read(&sk->sk_cookie);
	unsigned int cpu;

	if (!cookie || !(tcptrace_hooks & TCPTRACE_HOOK_TW_ENTER))
		return false;
	if (tw_handover_take(this_cpu_ptr(tcptrace_bufs), cookie))
		return true;
	for_each_possible_cpu(cpu)
		if (tw_handover_take(per_cpu_ptr(tcptrace_bufs, cpu), cookie))
			return true;
	return false;
}

/* The hand-over (tw, sk, ...): the connection enters TIME_WAIT. */
static int tw_handover_pre(struct kprobe *p, struct pt_regs *regs)
{
	struct inet_timewait_sock *tw = (void *)regs_get_kernel_argument(regs, 0);
	const struct sock *sk = (void *)regs_get_kernel_argument(regs, 1);
	struct tcptrace_buf *b = this_cpu_ptr(tcptrace_bufs);
	int oldstate = READ_ONCE(sk->sk_state);
	const struct tcptrace_kfilter *f;
	struct tcptrace_record *rec;
	u8 flags = 0;
	u64 cookie;

	/*
	 * The timewait socket copied the cookie; if the socket had none yet,
	 * both get the one made now, as __sock_gen_cookie() would set it.
	 */
	cookie = tcptrace_sock_cookie(sk);
	atomic64_cmpxchg(&tw->tw_cookie, 0, cookie);
	tw_handover_mark(b, cookie);

	if (tw->tw_substate == TCP_FIN_WAIT2)
		flags |= TCPTRACE_F_TW_FIN_WAIT2;
	f = rcu_dereference_sched(tcptrace_filter);
	if (f && !tcptrace_filter_match(f, sk, oldstate, TCP_TIME_WAIT)) {
		local64_inc(&b->filtered);
		return 0;
	}
	rec = tcptrace_buf_begin(b);
	if (rec)
		tcptrace_fill(rec, sk, oldstate, TCP_TIME_WAIT, flags);
	tcptrace_buf_end(b);
	return 0;
}

/* A timewait socket's record: TIME_WAIT -> @newstate. */
static void tw_record(struct tcptrace_buf *b,
		      const struct inet_timewait_sock *tw, int newstate,
		      enum tcptrace_cause cause)
{
	const struct tcptrace_kfilter *f;
	struct tcptrace_record *rec;

	f = rcu_dereference_sched(tcptrace_filter);
	if (f && !tcptrace_filter_match_tuple(f, tw->tw_family,
					      twsk_net(tw)->ns.inum,
					      ntohs(tw->tw_sport),
					      ntohs(tw->tw_dport),
					      TCP_TIME_WAIT, newstate)) {
		local64_inc(&b->filtered);
		return;
	}

	rec = tcptrace_buf_begin(b);
	if (rec)
		tw_fill(rec, tw, newstate, cause);
	tcptrace_buf_end(b);
}

/* inet_twsk_kill(tw): the timewait socket leaves the hashes. */
static int tw_kill_pre(struct kprobe *p, struct pt_regs *regs)
{
	const struct inet_timewait_sock *tw =
		(void *)regs_get_kernel_argument(regs, 0);
	struct tcptrace_buf *b = this_cpu_ptr(tcptrace_bufs);

	tw_record(b, tw, TCP_CLOSE, tw_cause(b, tw));
	return 0;
}

/*
 * __inet_twsk_schedule(tw, timeo, rearm): rearmed by the segment that
 * tcp_timewait_state_process() took in the FIN_WAIT2 substate, and now in
 * TIME_WAIT: the peer's FIN came.  TIME_WAIT -> TIME_WAIT, the substate
 * flag gone.  (A TIME_WAIT rearmed by a retransmitted FIN was not in
 * FIN_WAIT2 when its segment came.)
 */
static int tw_rearm_pre(struct kprobe *p, struct pt_regs *regs)
{
	const struct inet_timewait_sock *tw =
		(void *)regs_get_kernel_argument(regs, 0);
	bool rearm = (u8)regs_get_kernel_argument(regs, 2);
	struct tcptrace_buf *b = this_cpu_ptr(tcptrace_bufs);

	if (!rearm || b->tw_seg != tw ||
	    !(b->tw_seg_flags & TCPTRACE_TW_SEG_FW2) ||
	    READ_ONCE(tw->tw_substate) != TCP_TIME_WAIT)
		return 0;
	b->tw_seg_flags &= ~TCPTRACE_TW_SEG_FW2;
	tw_record(b, tw, TCP_TIME_WAIT, TCPTRACE_CAUSE_NONE);
	return 0;
}

/* tw_timer_handler(timer): the timer of a timewait socket ran out. */
static int tw_timer_pre(struct kprobe *p, struct pt_regs *regs)
{
	struct timer_list *t = (void *)regs_get_kernel_argument(regs, 0);

	this_cpu_write(tcptrace_bufs->tw_timer,
		       container_of(t, struct inet_timewait_sock, tw_timer));
	return 0;
}

/* tcp_timewait_state_process(tw, skb, th, ...): a segment for it. */
static int tw_segment_pre(struct kprobe *p, struct pt_regs *regs)
{
	const struct inet_timewait_sock *tw =
		(void *)regs_get_kernel_argument(regs, 0);
	const struct tcphdr *th = (void *)regs_get_kernel_argument(regs, 2);
	u8 flags = 0;

	if (READ_ONCE(tw->tw_substate) == TCP_FIN_WAIT2)
		flags |= TCPTRACE_TW_SEG_FW2;
	if (th->rst)
		flags |= TCPTRACE_TW_SEG_RST;
	if (th->syn)
		flags |= TCPTRACE_TW_SEG_SYN;
	this_cpu_write(tcptrace_bufs->tw_seg_flags, flags);
	this_cpu_write(tcptrace_bufs->tw_seg, tw);
	return 0;
}

static struct kprobe tw_handover_kp = {
	.symbol_name = TCPTRACE_TW_HANDOVER_FN,
	.pre_handler = tw_handover_pre,
};

static struct kprobe tw_kill_kp = {
	.symbol_name = "inet_twsk_kill",
	.pre_handler = tw_kill_pre,
};

static struct kprobe tw_timer_kp = {
	.symbol_name = "tw_timer_handler",
	.pre_handler = tw_timer_pre,
};

static struct kprobe tw_segment_kp = {
	.symbol_name = "tcp_timewait_state_process",
	.pre_handler = tw_segment_pre,
};

static struct kprobe tw_rearm_kp = {
	.symbol_name = "__inet_twsk_schedule",
	.pre_handler = tw_rearm_pre,
};

/* Markers first: no record is made before its marks can be left. */
static struct kprobe *tw_kps[] = {
	&tw_timer_kp, &tw_segment_kp, &tw_kill_kp, &tw_rearm_kp,
	&tw_handover_kp,
};

/**
 * tcptrace_tw_attach() - record TIME_WAIT
 *
 * Context: process context; may sleep.
 * Return: 0 whether or not the kprobes could be placed; the log says if they
 * could not, and TCPTRACE_HOOK_TW_* in tcptrace_hooks whether they were.
 */
int tcptrace_tw_attach(void)
{
	int ret = register_kprobes(tw_kps, ARRAY_SIZE(tw_kps));

	if (ret) {
		pr_info("cannot place kprobes on %s, %s, %s, %s and %s (%d): TIME_WAIT is not recorded\n",
			tw_handover_kp.symbol_name, tw_timer_kp.symbol_name,
			tw_segment_kp.symbol_name, tw_kill_kp.symbol_name,
			tw_rearm_kp.symbol_name, ret);
		return 0;
	}
	tcptrace_hooks |= TCPTRACE_HOOK_TW_ENTER | TCPTRACE_HOOK_TW_EXIT;
	return 0;
}

/**
 * tcptrace_tw_missed() - hits of the TIME_WAIT kprobes the kernel skipped
 *
 * Context: any.
 * Return: their number since the kprobes were placed; 0 if they were not.
 */
unsigned long tcptrace_tw_missed(void)
{
	unsigned long n = 0;
	unsigned int i;

	if (!(tcptrace_hooks & TCPTRACE_HOOK_TW_EXIT))
		return 0;
	for (i = 0; i < ARRAY_SIZE(tw_kps); i++)
		n += tw_kps[i]->nmissed;
	return n;
}

/**
 * tcptrace_tw_detach() - stop recording TIME_WAIT
 *
 * Returns once no CPU can be running a handler any more.
 *
 * Context: process context; may sleep.
 */
void tcptrace_tw_detach(void)
{
	if (!(tcptrace_hooks & TCPTRACE_HOOK_TW_EXIT))
		return;
	unregister_kprobes(tw_kps, ARRAY_SIZE(tw_kps));
	tcptrace_hooks &= ~(TCPTRACE_HOOK_TW_ENTER | TCPTRACE_HOOK_TW_EXIT);
}
