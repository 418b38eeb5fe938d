// SPDX-License-Identifier: GPL-2.0
/*
 * The probe on sock:inet_sock_set_state, which the kernel calls for every
 * state change of a TCP (and DCCP, SCTP, MPTCP) socket, and those on the
 * tcp: tracepoints that explain a transition (a reset, a retransmission, a
 * SYN-ACK sent again).
 * The tracepoints are not exported to modules, so they are looked up by name
 * and attached with tracepoint_probe_register(), as samples/trace_events
 * does.
 */

#include <linux/irqflags.h>
#include <linux/preempt.h>
#include <linux/sched.h>
#include <linux/string.h>
#include <linux/timekeeping.h>
#include <linux/tracepoint.h>
#include <net/inet_sock.h>
#include <net/sock.h>
#include <net/tcp.h>
#include <net/tcp_states.h>
#include "tcptrace.h"

/* The ABI numbers states as the kernel does. */
static_assert((int)TCPTRACE_ESTABLISHED == TCP_ESTABLISHED);
static_assert((int)TCPTRACE_SYN_SENT == TCP_SYN_SENT);
static_assert((int)TCPTRACE_SYN_RECV == TCP_SYN_RECV);
static_assert((int)TCPTRACE_FIN_WAIT1 == TCP_FIN_WAIT1);
static_assert((int)TCPTRACE_FIN_WAIT2 == TCP_FIN_WAIT2);
static_assert((int)TCPTRACE_TIME_WAIT == TCP_TIME_WAIT);
static_assert((int)TCPTRACE_CLOSE == TCP_CLOSE);
static_assert((int)TCPTRACE_CLOSE_WAIT == TCP_CLOSE_WAIT);
static_assert((int)TCPTRACE_LAST_ACK == TCP_LAST_ACK);
static_assert((int)TCPTRACE_LISTEN == TCP_LISTEN);
static_assert((int)TCPTRACE_CLOSING == TCP_CLOSING);
static_assert((int)TCPTRACE_NEW_SYN_RECV == TCP_NEW_SYN_RECV);
static_assert((int)TCPTRACE_BOUND_INACTIVE == TCP_BOUND_INACTIVE);
static_assert(sizeof(struct tcptrace_record) == 128);
static_assert(sizeof_field(struct tcptrace_event, comm) == TASK_COMM_LEN);

/* What the CPU is doing: the probes' context. */
enum tcptrace_ctx tcptrace_ctx(void)
{
	if (in_nmi())
		return TCPTRACE_CTX_NMI;
	if (in_hardirq())
		return TCPTRACE_CTX_HARDIRQ;
	if (in_serving_softirq())
		return TCPTRACE_CTX_SOFTIRQ;
	return TCPTRACE_CTX_TASK;
}

/*
 * The addresses, from the part that full and timewait sockets share, so
 * that timewait.c fills them the same way.
 */
void tcptrace_fill_addrs(struct tcptrace_event *ev,
			 const struct sock_common *skc)
{
#if IS_ENABLED(CONFIG_IPV6)
	if (skc->skc_family == AF_INET6) {
		memcpy(ev->laddr, &skc->skc_v6_rcv_saddr, sizeof(ev->laddr));
		memcpy(ev->raddr, &skc->skc_v6_daddr, sizeof(ev->raddr));
		return;
	}
#endif
	memcpy(ev->laddr, &skc->skc_rcv_saddr, sizeof(skc->skc_rcv_saddr));
	memset(ev->laddr + sizeof(skc->skc_rcv_saddr), 0,
	       sizeof(ev->laddr) - sizeof(skc->skc_rcv_saddr));
	memcpy(ev->raddr, &skc->skc_daddr, sizeof(skc->skc_daddr));
	memset(ev->raddr + sizeof(skc->skc_daddr), 0,
	       sizeof(ev->raddr) - sizeof(skc->skc_daddr));
}

/* Outside task context, current has nothing to do with the socket. */
void tcptrace_fill_task(struct tcptrace_event *ev, enum tcptrace_ctx ctx)
{
	if (ctx == TCPTRACE_CTX_TASK) {
		ev->pid = current->pid;
		ev->tgid = current->tgid;
		memcpy(ev->comm, current->comm, sizeof(ev->comm));
		ev->comm[sizeof(ev->comm) - 1] = '\0';
	} else {
		ev->pid = 0;
		ev->tgid = 0;
		memset(ev->comm, 0, sizeof(ev->comm));
	}
}

/*
 * Which parts of the socket do not describe the connection yet.  A child
 * cloned from a listener enters SYN_RECV before its addresses and sequence
 * space are set up; a connecting socket enters SYN_SENT before its ISN is
 * chosen; a listener has no sequence space.
 */
static u8 tcptrace_unset(int oldstate, int newstate)
{
	if (newstate == TCP_SYN_RECV &&
	    (oldstate == TCP_LISTEN || oldstate == TCP_NEW_SYN_RECV))
		return TCPTRACE_F_ADDR_UNSET | TCPTRACE_F_SEQ_UNSET;
	if (oldstate == TCP_CLOSE || oldstate == TCP_LISTEN ||
	    newstate == TCP_LISTEN)
		return TCPTRACE_F_SEQ_UNSET;
	return 0;
}

static void tcptrace_fill_seq(struct tcptrace_event *ev,
			      const struct tcp_sock *tp)
{
	if (ev->flags & TCPTRACE_F_SEQ_UNSET) {
		ev->snd_una = 0;
		ev->snd_nxt = 0;
		ev->rcv_nxt = 0;
		ev->write_seq = 0;
	} else {
		ev->snd_una = READ_ONCE(tp->snd_una);
		ev->snd_nxt = READ_ONCE(tp->snd_nxt);
		ev->rcv_nxt = READ_ONCE(tp->rcv_nxt);
		ev->write_seq = READ_ONCE(tp->write_seq);
	}
}

/*
 * A record of a full socket's transition.  Every byte but the time is
 * written: slots are reused.
 */
void tcptrace_fill(struct tcptrace_record *rec, const struct sock *sk,
		   int oldstate, int newstate, u8 flags)
{
	const struct tcp_sock *tp = tcp_sk(sk);
	struct tcptrace_event *ev = &rec->ev;
	enum tcptrace_ctx ctx = tcptrace_ctx();

	rec->cpu = smp_processor_id();
	rec->type = TCPTRACE_REC_STATE;
	rec->ctx = ctx;
	rec->netns = sock_net(sk)->ns.inum;

	ev->sock_id = tcptrace_sock_cookie(sk);
	ev->family = sk->sk_family;
	ev->oldstate = oldstate;
	ev->newstate = newstate;
	ev->flags = tcptrace_unset(oldstate, newstate) | flags;
	/* inet_num is 0 again by the time a socket enters CLOSE: not it. */
	ev->lport = ntohs(inet_sk(sk)->inet_sport);
	ev->rport = ntohs(sk->sk_dport);

	tcptrace_fill_task(ev, ctx);
	tcptrace_fill_addrs(ev, &sk->__sk_common);

	tcptrace_fill_seq(ev, tp);
	ev->bytes_acked = tp->bytes_acked;
	ev->bytes_received = tp->bytes_received;
	ev->total_retrans = tp->total_retrans;
	ev->srtt_us = tp->srtt_us >> 3;
}

/*
 * A child is cloned from its listener, cookie and all, and its first
 * transition (LISTEN -> SYN_RECV) happens before the kernel gives it a cookie
 * of its own.  So that record is held back, one per CPU, until the child's
 * next transition -- normally in the same softirq, on the same CPU -- tells
 * its id.  A held record displaced by the next birth on this CPU before that
 * (a Fast Open child completing elsewhere) goes out with TCPTRACE_F_ID_UNSET.
 * Interrupts are off while the held record changes hands: a softirq may
 * interrupt a task here.
 */
static void tcptrace_hold_birth(struct tcptrace_buf *b, const struct sock *sk,
				int oldstate, int newstate)
{
	struct tcptrace_record rec, prev;
	unsigned long flags;
	bool displaced;

	rec.ts_ns = ktime_get_mono_fast_ns();
	tcptrace_fill(&rec, sk, oldstate, newstate, 0);
	rec.ev.sock_id = 0;

	local_irq_save(flags);
	displaced = b->birth_sk;
	if (displaced)
		prev = b->birth;
	b->birth = rec;
	WRITE_ONCE(b->birth_sk, sk);
	local_irq_restore(flags);

	if (displaced) {
		prev.ev.flags |= TCPTRACE_F_ID_UNSET;
		tcptrace_buf_write(b, &prev);
	}
}

/* The child's next transition: write its held first record, with its id. */
static void tcptrace_release_birth(struct tcptrace_buf *b,
				   const struct sock *sk)
{
	struct tcptrace_record rec;
	unsigned long flags;

	local_irq_save(flags);
	if (b->birth_sk != sk) {
		local_irq_restore(flags);
		return;
	}
	rec = b->birth;
	WRITE_ONCE(b->birth_sk, NULL);
	local_irq_restore(flags);

	rec.ev.sock_id = tcptrace_sock_cookie(sk);
	tcptrace_buf_write(b, &rec);
}

static void tcptrace_probe(void *data, const struct sock *sk,
			   int oldstate, const int newstate)
{
	const struct tcptrace_kfilter *f;
	struct tcptrace_record *rec;
	struct tcptrace_buf *b;
	bool birth;
	u8 flags = 0;
	u64 id = 0;

	if (sk->sk_protocol != IPPROTO_TCP)
		return;

	/* Recorded as the connection entering TIME_WAIT: timewait.c. */
	if (unlikely(newstate == TCP_CLOSE) &&
	    (oldstate == TCP_FIN_WAIT2 || oldstate == TCP_CLOSING) &&
	    tcptrace_tw_handed_over(sk))
		return;

	/* Tracepoint probes run with preemption disabled: b stays ours. */
	b = this_cpu_ptr(tcptrace_bufs);
	if (unlikely(READ_ONCE(b->birth_sk) == sk) && oldstate == TCP_SYN_RECV)
		tcptrace_release_birth(b, sk);

	/* A child: request.c may know its id, and the request it comes from. */
	birth = unlikely(oldstate == TCP_LISTEN && newstate == TCP_SYN_RECV);
	if (birth && tcptrace_req_child(b, sk, &id, &oldstate, &flags))
		birth = false;

	f = rcu_dereference_sched(tcptrace_filter);
	if (f && !tcptrace_filter_match(f, sk, oldstate, newstate)) {
		local64_inc(&b->filtered);
		return;
	}

	if (birth) {
		tcptrace_hold_birth(b, sk, oldstate, newstate);
		return;
	}

	rec = tcptrace_buf_begin(b);
	if (rec) {
		tcptrace_fill(rec, sk, oldstate, newstate, flags);
		if (id)
			rec->ev.sock_id = id;
	}
	tcptrace_buf_end(b);
}

/*
 * Something that explains a transition: a reset, a retransmission.  Full
 * TCP sockets only: the tracepoints also fire for timewait and request
 * sockets and, for a reset answering a stray segment, with no socket at all;
 * a timewait socket's end is recorded with its cause (timewait.c).
 */
static void tcptrace_event(const struct sock *sk, enum tcptrace_cause cause)
{
	const struct tcptrace_kfilter *f;
	struct tcptrace_record *rec;
	struct tcptrace_buf *b;
	int state;

	if (!sk || !sk_fullsock(sk) || sk->sk_protocol != IPPROTO_TCP)
		return;

	state = READ_ONCE(sk->sk_state);
	b = this_cpu_ptr(tcptrace_bufs);
	f = rcu_dereference_sched(tcptrace_filter);
	if (f && (!tcptrace_filter_events(f) ||
		  !tcptrace_filter_match(f, sk, state, state))) {
		local64_inc(&b->filtered);
		return;
	}

	rec = tcptrace_buf_begin(b);
	if (rec) {
		tcptrace_fill(rec, sk, state, state,
			      cause << TCPTRACE_F_CAUSE_SHIFT);
		rec->type = TCPTRACE_REC_EVENT;
		/*
		 * A reset or a retransmission has a sequence space, even in
		 * CLOSE (an abort sends its reset after entering it).
		 */
		if (state != TCP_LISTEN &&
		    rec->ev.flags & TCPTRACE_F_SEQ_UNSET) {
			rec->ev.flags &= ~TCPTRACE_F_SEQ_UNSET;
			tcptrace_fill_seq(&rec->ev, tcp_sk(sk));
		}
	}
	tcptrace_buf_end(b);
}

static void tcptrace_receive_reset(void *data, struct sock *sk)
{
	tcptrace_event(sk, TCPTRACE_CAUSE_RST_RECEIVED);
}

static TCPTRACE_SEND_RESET_PROBE(tcptrace_send_reset)
{
	tcptrace_event(sk, TCPTRACE_CAUSE_RST_SENT);
}

static void tcptrace_retransmit(void *data, const struct sock *sk,
				const struct sk_buff *skb)
{
	tcptrace_event(sk, TCPTRACE_CAUSE_RETRANSMIT);
}

/*
 * A SYN-ACK sent again: by a request, or by a Fast Open child, which keeps
 * its request until the handshake completes.
 */
static void tcptrace_retransmit_synack(void *data, const struct sock *sk,
				       const struct request_sock *req)
{
	if (sk_fullsock(sk) && sk->sk_state != TCP_LISTEN)
		tcptrace_event(sk, TCPTRACE_CAUSE_SYNACK_RETRANS);
	else
		tcptrace_req_record((struct request_sock *)req,
				    TCPTRACE_REC_EVENT, TCP_NEW_SYN_RECV,
				    TCP_NEW_SYN_RECV,
				    TCPTRACE_CAUSE_SYNACK_RETRANS);
}

/* The probe as the tracepoint calls it, through a pointer; for selftest.c. */
tcptrace_probe_t tcptrace_probe_fn = tcptrace_probe;

/* The tracepoints: the first is required, the others add causes. */
static struct tcptrace_tp {
	const char *name;
	void *probe;
	u32 hook;
	bool *enabled;
	struct tracepoint *tp;
	bool attached;
} tcptrace_tps[] = {
	{ "inet_sock_set_state", tcptrace_probe, TCPTRACE_HOOK_STATE },
	{ "tcp_receive_reset", tcptrace_receive_reset, TCPTRACE_HOOK_RESET,
	  &tcptrace_causes },
	{ "tcp_send_reset", tcptrace_send_reset, TCPTRACE_HOOK_RESET,
	  &tcptrace_causes },
	{ "tcp_retransmit_skb", tcptrace_retransmit, TCPTRACE_HOOK_RETRANS,
	  &tcptrace_causes },
	{ "tcp_retransmit_synack", tcptrace_retransmit_synack,
	  TCPTRACE_HOOK_SYNACK, &tcptrace_requests },
};

static void tcptrace_find_tp(struct tracepoint *tp, void *priv)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(tcptrace_tps); i++)
		if (!strcmp(tp->name, tcptrace_tps[i].name))
			tcptrace_tps[i].tp = tp;
}

static struct tracepoint *tcptrace_state_tp(void)
{
	if (!tcptrace_tps[0].tp)
		for_each_kernel_tracepoint(tcptrace_find_tp, NULL);
	return tcptrace_tps[0].tp;
}

/**
 * tcptrace_other_probe() - another probe on the tracepoint, for selftest.c
 * @fn: set to its function.
 * @data: set to its data.
 *
 * When ftrace's event sock:inet_sock_set_state is enabled, its probe is
 * there, and the self-test times it as it times ours.
 *
 * Context: process context; the caller keeps the other probe attached.
 * Return: whether there is one.
 */
bool tcptrace_other_probe(tcptrace_probe_t *fn, void **data)
{
	struct tracepoint *tp = tcptrace_state_tp();
	struct tracepoint_func *f;
	bool found = false;

	if (!tp)
		return false;
	rcu_read_lock_sched();
	f = rcu_dereference_sched(tp->funcs);
	for (; f && f->func; f++) {
		if (f->func != tcptrace_probe) {
			*fn = f->func;
			*data = f->data;
			found = true;
			break;
		}
	}
	rcu_read_unlock_sched();
	return found;
}

/**
 * tcptrace_probe_attach() - start recording
 *
 * Attaches to sock:inet_sock_set_state, and to the tcp: tracepoints of the
 * causes unless the causes parameter is off.  A missing cause tracepoint is
 * said once in the log and left out of tcptrace_hooks; the module works on.
 *
 * Context: process context; may sleep.
 * Return: 0, -ENOENT if the kernel has no sock:inet_sock_set_state, or the
 * error of tracepoint_probe_register() for it.
 */
int tcptrace_probe_attach(void)
{
	unsigned int i;
	int ret;

	if (!tcptrace_state_tp()) {
		pr_err("this kernel has no tracepoint sock:%s\n",
		       tcptrace_tps[0].name);
		return -ENOENT;
	}
	for (i = 0; i < ARRAY_SIZE(tcptrace_tps); i++) {
		struct tcptrace_tp *t = &tcptrace_tps[i];

		if (t->enabled && !*t->enabled)
			continue;
		if (!t->tp) {
			pr_info("no tracepoint %s on this kernel: its events are not recorded\n",
				t->name);
			continue;
		}
		ret = tracepoint_probe_register(t->tp, t->probe, NULL);
		if (ret) {
			pr_err("cannot attach to tracepoint %s: %d\n",
			       t->name, ret);
			if (!i)
				return ret;
			continue;
		}
		t->attached = true;
		tcptrace_hooks |= t->hook;
	}
	/* A hook of two tracepoints counts only if both are there. */
	for (i = 0; i < ARRAY_SIZE(tcptrace_tps); i++)
		if (tcptrace_tps[i].enabled && *tcptrace_tps[i].enabled &&
		    !tcptrace_tps[i].attached)
			tcptrace_hooks &= ~tcptrace_tps[i].hook;
	return 0;
}

/**
 * tcptrace_probe_detach() - stop recording
 *
 * Returns once no CPU can be running a probe any more.
 *
 * Context: process context; may sleep.
 */
void tcptrace_probe_detach(void)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(tcptrace_tps); i++) {
		struct tcptrace_tp *t = &tcptrace_tps[i];

		if (!t->attached)
			continue;
		tracepoint_probe_unregister(t->tp, t->probe, NULL);
		t->attached = false;
		tcptrace_hooks &= ~t->hook;
	}
	tracepoint_synchronize_unregister();
}
