// SPDX-License-Identifier: GPL-2.0
/*
 * The SYN queue.  A SYN that reaches a listener makes no socket but a
 * request (struct request_sock, in TCP_NEW_SYN_RECV), which the kernel puts
 * in its connection hash until the final ACK turns it into a child socket,
 * or it times out, or a reset or the listener's close ends it.  No
 * tracepoint sees any of that, so kprobes, on functions both supported
 * kernels have and do not inline:
 *
 *  - tcp_v4_send_synack() and tcp_v6_send_synack(), called by
 *    tcp_conn_request() with the SYN's Fast Open cookie buffer (and with
 *    none when they retransmit): for a SYN-ACK of a queued request, the
 *    request is recorded, LISTEN -> NEW_SYN_RECV, with both ISNs; for one
 *    that carries a SYN cookie, an event.  Both give the request an id, its
 *    socket cookie, which the child inherits (inet_csk_clone_lock());
 *  - inet_csk_clone_lock(), which makes the child: it leaves the request's
 *    id and origin (queued request, SYN cookie, Fast Open) in the CPU's
 *    buffer for the probe of the child's LISTEN -> SYN_RECV, which follows
 *    in the same call, to find: the child's first record then has the
 *    request's id, and NEW_SYN_RECV as the state left when it comes from a
 *    queued request;
 *  - tcp_get_cookie_sock(), which makes a child from a SYN cookie: a mark;
 *  - tcp_check_req(), which handles a segment that reached a request: a
 *    mark of whether it was a reset, for the drop that may follow in the
 *    same call (cleared by the next drop or child on the CPU);
 *  - a return probe on __inet_csk_reqsk_queue_drop(), which returns true
 *    when it took the request out of the hash: NEW_SYN_RECV -> CLOSE, with
 *    the cause.  A request that becomes a child is not taken out there but
 *    replaced in the hash by the child (inet_ehash_insert()): no end.
 *
 * Marks are compared, never dereferenced.  SYN-ACK retransmissions come from
 * the tracepoint tcp:tcp_retransmit_synack (probe.c).  When the kprobes
 * cannot be placed, the module says so once, leaves TCPTRACE_HOOK_REQUEST
 * out of the hooks it reports, and children start with LISTEN -> SYN_RECV,
 * their ids found as probe.c does without requests.
 */

#include <linux/kprobes.h>
#include <linux/ptrace.h>
#include <net/inet_connection_sock.h>
#include <net/ipv6.h>
#include <net/request_sock.h>
#include <net/tcp.h>
#include "tcptrace.h"

/*
 * The addresses of a request.  An IPv4 SYN on an IPv6 listener makes a
 * request with the listener's family and IPv4 addresses only; its child
 * has them v4-mapped, and so does its record.
 */
static void req_fill_addrs(struct tcptrace_event *ev,
			   const struct request_sock *req)
{
	const struct inet_request_sock *ireq = inet_rsk(req);
	struct in6_addr a;

	if (ireq->ireq_family != AF_INET6 || req->rsk_ops->family != AF_INET) {
		tcptrace_fill_addrs(ev, &req->__req_common);
		return;
	}
	ipv6_addr_set_v4mapped(ireq->ir_loc_addr, &a);
	memcpy(ev->laddr, &a, sizeof(ev->laddr));
	ipv6_addr_set_v4mapped(ireq->ir_rmt_addr, &a);
	memcpy(ev->raddr, &a, sizeof(ev->raddr));
}

/* A request's record.  Its sequence space includes the SYN-ACK it sends. */
static void req_fill(struct tcptrace_record *rec, struct request_sock *req,
		     int oldstate, int newstate, u8 flags)
{
	const struct inet_request_sock *ireq = inet_rsk(req);
	const struct tcp_request_sock *treq = tcp_rsk(req);
	enum tcptrace_ctx ctx = tcptrace_ctx();
	struct tcptrace_event *ev = &rec->ev;

	rec->cpu = smp_processor_id();
	rec->ctx = ctx;
	rec->netns = sock_net(req_to_sk(req))->ns.inum;

	ev->sock_id = tcptrace_sock_cookie(req_to_sk(req));
	ev->family = ireq->ireq_family;
	ev->oldstate = oldstate;
	ev->newstate = newstate;
	ev->flags = flags;
	ev->lport = ireq->ir_num;
	ev->rport = ntohs(ireq->ir_rmt_port);

	tcptrace_fill_task(ev, ctx);
	req_fill_addrs(ev, req);

	ev->snd_una = READ_ONCE(treq->snt_isn);
	ev->snd_nxt = ev->snd_una + 1;
	ev->write_seq = ev->snd_nxt;
	ev->rcv_nxt = READ_ONCE(treq->rcv_nxt);
	ev->bytes_acked = 0;
	ev->bytes_received = 0;
	ev->total_retrans = READ_ONCE(req->num_retrans);
	ev->srtt_us = 0;
}

/**
 * tcptrace_req_record() - record a request's transition or event
 * @req: the request, alive for the call.
 * @type: TCPTRACE_REC_STATE or TCPTRACE_REC_EVENT.
 * @oldstate: state left; for an event, the request's state.
 * @newstate: state entered; likewise.
 * @cause: enum tcptrace_cause.
 *
 * Context: the probe's: any, with preemption disabled.
 */
void tcptrace_req_record(struct request_sock *req, u8 type, int oldstate,
			 int newstate, enum tcptrace_cause cause)
{
	struct tcptrace_buf *b = this_cpu_ptr(tcptrace_bufs);
	const struct inet_request_sock *ireq = inet_rsk(req);
	const struct tcptrace_kfilter *f;
	struct tcptrace_record *rec;

	/* Filtered or not, the child must inherit the id. */
	tcptrace_sock_cookie(req_to_sk(req));

	f = rcu_dereference_sched(tcptrace_filter);
	if (f && ((type == TCPTRACE_REC_EVENT && !tcptrace_filter_events(f)) ||
		  !tcptrace_filter_match_tuple(f, ireq->ireq_family,
					       sock_net(req_to_sk(req))->ns.inum,
					       ireq->ir_num,
					       ntohs(ireq->ir_rmt_port),
					       oldstate, newstate))) {
		local64_inc(&b->filtered);
		return;
	}
	rec = tcptrace_buf_begin(b);
	if (rec) {
		req_fill(rec, req, oldstate, newstate,
			 cause << TCPTRACE_F_CAUSE_SHIFT);
		rec->type = type;
	}
	tcptrace_buf_end(b);
}

/* The slot of this context: a softirq may interrupt a task's birth. */
static struct tcptrace_birth *req_birth_slot(struct tcptrace_buf *b)
{
	return &b->req_birth[tcptrace_ctx() == TCPTRACE_CTX_SOFTIRQ];
}

/**
 * tcptrace_req_child() - what inet_csk_clone_lock() knew of a child
 * @b: this CPU's buffer.
 * @sk: the child, entering SYN_RECV from LISTEN.
 * @id: set to its id, its request's.
 * @oldstate: set to the state it leaves: NEW_SYN_RECV if it comes from a
 *	queued request, else LISTEN.
 * @flags: set to the cause of a child made from a SYN cookie or at the SYN.
 *
 * Context: the probe's, in the call of inet_csk_clone_lock() that made @sk.
 * Return: whether it knew, its mark then taken.
 */
bool tcptrace_req_child(struct tcptrace_buf *b, const struct sock *sk,
			u64 *id, int *oldstate, u8 *flags)
{
	struct tcptrace_birth *m = req_birth_slot(b);

	if (!m->pending)
		return false;
	m->pending = false;
	/* A mark left by a task that moved to another CPU is not this one. */
	if (m->lport != ntohs(inet_sk(sk)->inet_sport))
		return false;
	*id = m->id;
	*oldstate = m->cause ? TCP_LISTEN : TCP_NEW_SYN_RECV;
	*flags = m->cause << TCPTRACE_F_CAUSE_SHIFT;
	return true;
}

/* tcp_v{4,6}_send_synack(sk, dst, fl, req, foc, synack_type, syn_skb) */
static int req_synack_pre(struct kprobe *p, struct pt_regs *regs)
{
	struct request_sock *req = (void *)regs_get_kernel_argument(regs, 3);
	const void *foc = (void *)regs_get_kernel_argument(regs, 4);
	int type = regs_get_kernel_argument(regs, 5);

	/* A retransmission: tcp:tcp_retransmit_synack says it. */
	if (!foc)
		return 0;
	if (type == TCP_SYNACK_NORMAL)
		tcptrace_req_record(req, TCPTRACE_REC_STATE, TCP_LISTEN,
				    TCP_NEW_SYN_RECV, TCPTRACE_CAUSE_NONE);
	else if (type == TCP_SYNACK_COOKIE)
		tcptrace_req_record(req, TCPTRACE_REC_EVENT, TCP_NEW_SYN_RECV,
				    TCP_NEW_SYN_RECV, TCPTRACE_CAUSE_SYNCOOKIE);
	/* TCP_SYNACK_FASTOPEN: the child is made; its record said so. */
	return 0;
}

/* inet_csk_clone_lock(sk, req, priority): a child of @sk is being made. */
static int req_clone_pre(struct kprobe *p, struct pt_regs *regs)
{
	const struct sock *sk = (void *)regs_get_kernel_argument(regs, 0);
	struct request_sock *req = (void *)regs_get_kernel_argument(regs, 1);
	struct tcptrace_buf *b = this_cpu_ptr(tcptrace_bufs);
	struct tcptrace_birth *m = req_birth_slot(b);

	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	m->id = tcptrace_sock_cookie(req_to_sk(req));
	m->lport = inet_rsk(req)->ir_num;
	/* Only a queued request is in the hash; it leaves after this. */
	if (sk_hashed(req_to_sk(req)))
		m->cause = TCPTRACE_CAUSE_NONE;
	else if (b->req_cookie == req)
		m->cause = TCPTRACE_CAUSE_SYNCOOKIE;
	else
		m->cause = TCPTRACE_CAUSE_FASTOPEN;
	b->req_cookie = NULL;
	/* The segment that made it is no reason for a later drop. */
	b->req_seg = NULL;
	m->pending = true;
	return 0;
}

/* tcp_get_cookie_sock(sk, skb, req, dst): a child from a SYN cookie. */
static int req_cookie_pre(struct kprobe *p, struct pt_regs *regs)
{
	this_cpu_write(tcptrace_bufs->req_cookie,
		       (void *)regs_get_kernel_argument(regs, 2));
	return 0;
}

/* tcp_check_req(sk, skb, req, ...): a segment for a request. */
static int req_segment_pre(struct kprobe *p, struct pt_regs *regs)
{
	const struct sk_buff *skb = (void *)regs_get_kernel_argument(regs, 1);

	this_cpu_write(tcptrace_bufs->req_seg_rst, tcp_hdr(skb)->rst);
	this_cpu_write(tcptrace_bufs->req_seg,
		       (void *)regs_get_kernel_argument(regs, 2));
	return 0;
}

/* What the return probe keeps from the entry. */
struct req_drop {
	struct request_sock	*req;
	enum tcptrace_cause	cause;
};

static enum tcptrace_cause req_drop_cause(struct tcptrace_buf *b,
					  const struct sock *sk,
					  const struct request_sock *req,
					  bool from_timer)
{
	if (!refcount_read(&sock_net(sk)->ns.count))
		return TCPTRACE_CAUSE_TW_NETNS;
	if (inet_sk_state_load(sk) != TCP_LISTEN)
		return TCPTRACE_CAUSE_REQ_LISTENER;
	if (from_timer)
		return TCPTRACE_CAUSE_REQ_TIMEOUT;
	if (b->req_seg != req || !in_serving_softirq())
		return TCPTRACE_CAUSE_NONE;
	/* tcp_check_req() answers a bad segment with a reset, then drops. */
	return b->req_seg_rst ? TCPTRACE_CAUSE_RST_RECEIVED :
				TCPTRACE_CAUSE_RST_SENT;
}

/* __inet_csk_reqsk_queue_drop(sk, req, from_timer), on entry */
static int req_drop_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	const struct sock *sk = (void *)regs_get_kernel_argument(regs, 0);
	struct request_sock *req = (void *)regs_get_kernel_argument(regs, 1);
	bool from_timer = (u8)regs_get_kernel_argument(regs, 2);
	struct tcptrace_buf *b = this_cpu_ptr(tcptrace_bufs);
	struct req_drop *d = (struct req_drop *)ri->data;

	/* Not hashed: not queued, or gone already.  No return probe. */
	if (sk->sk_protocol != IPPROTO_TCP || !sk_hashed(req_to_sk(req)))
		return 1;
	d->req = req;
	d->cause = req_drop_cause(b, sk, req, from_timer);
	b->req_seg = NULL;
	return 0;
}

/*
 * On return: true if this call took the request out of the hash, so that
 * each request ends once, though two CPUs may try at once.  Its callers
 * hold a reference: it is still there.
 */
static int req_drop_ret(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	const struct req_drop *d = (const struct req_drop *)ri->data;

	if ((u8)regs_return_value(regs))
		tcptrace_req_record(d->req, TCPTRACE_REC_STATE,
				    TCP_NEW_SYN_RECV, TCP_CLOSE, d->cause);
	return 0;
}

static struct kprobe req_synack4_kp = {
	.symbol_name = "tcp_v4_send_synack",
	.pre_handler = req_synack_pre,
};

static struct kprobe req_synack6_kp = {
	.symbol_name = "tcp_v6_send_synack",
	.pre_handler = req_synack_pre,
};

static struct kprobe req_clone_kp = {
	.symbol_name = "inet_csk_clone_lock",
	.pre_handler = req_clone_pre,
};

static struct kprobe req_cookie_kp = {
	.symbol_name = "tcp_get_cookie_sock",
	.pre_handler = req_cookie_pre,
};

static struct kprobe req_segment_kp = {
	.symbol_name = "tcp_check_req",
	.pre_handler = req_segment_pre,
};

static struct kretprobe req_drop_krp = {
	.kp.symbol_name = "__inet_csk_reqsk_queue_drop",
	.entry_handler = req_drop_entry,
	.handler = req_drop_ret,
	.data_size = sizeof(struct req_drop),
};

/* Markers first: no record is made before its marks can be left. */
static struct kprobe *req_kps[] = {
	&req_segment_kp, &req_clone_kp, &req_synack4_kp,
};

/*
 * Those a kernel may lack: one without IPv6 has no IPv6 requests, one
 * without CONFIG_SYN_COOKIES no SYN cookies.
 */
static struct kprobe *req_opt_kps[] = { &req_cookie_kp, &req_synack6_kp };
static bool req_opt_placed[ARRAY_SIZE(req_opt_kps)];

static void req_unregister_opt(void)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(req_opt_kps); i++)
		if (req_opt_placed[i]) {
			unregister_kprobe(req_opt_kps[i]);
			req_opt_placed[i] = false;
		}
}

/**
 * tcptrace_req_attach() - record the SYN queue
 *
 * Context: process context; may sleep.
 * Return: 0 whether or not the kprobes could be placed; the log says if they
 * could not, and TCPTRACE_HOOK_REQUEST in tcptrace_hooks whether they were.
 */
int tcptrace_req_attach(void)
{
	unsigned int i;
	int ret;

	/* Two per CPU (a task and a softirq) is the most at once. */
	req_drop_krp.maxactive = 4 * num_possible_cpus();
	ret = register_kretprobe(&req_drop_krp);
	if (ret)
		goto fail;
	/* The cookie's mark before the child's birth that reads it. */
	for (i = 0; i < ARRAY_SIZE(req_opt_kps); i++) {
		req_opt_placed[i] = !register_kprobe(req_opt_kps[i]);
		if (!req_opt_placed[i])
			pr_info("cannot place a kprobe on %s: %s not recorded\n",
				req_opt_kps[i]->symbol_name,
				i ? "IPv6 requests are" :
				    "children made from SYN cookies are");
	}
	ret = register_kprobes(req_kps, ARRAY_SIZE(req_kps));
	if (ret) {
		req_unregister_opt();
		unregister_kretprobe(&req_drop_krp);
		goto fail;
	}
	tcptrace_hooks |= TCPTRACE_HOOK_REQUEST;
	return 0;
fail:
	pr_info("cannot place kprobes on %s, %s, %s and %s (%d): the SYN queue is not recorded\n",
		req_drop_krp.kp.symbol_name, req_segment_kp.symbol_name,
		req_clone_kp.symbol_name, req_synack4_kp.symbol_name, ret);
	return 0;
}

/**
 * tcptrace_req_missed() - hits of the SYN queue's probes the kernel skipped
 *
 * Context: any.
 * Return: their number since the probes were placed; 0 if they were not.
 */
unsigned long tcptrace_req_missed(void)
{
	unsigned long n;
	unsigned int i;

	if (!(tcptrace_hooks & TCPTRACE_HOOK_REQUEST))
		return 0;
	n = req_drop_krp.nmissed + req_drop_krp.kp.nmissed;
	for (i = 0; i < ARRAY_SIZE(req_kps); i++)
		n += req_kps[i]->nmissed;
	for (i = 0; i < ARRAY_SIZE(req_opt_kps); i++)
		if (req_opt_placed[i])
			n += req_opt_kps[i]->nmissed;
	return n;
}

/**
 * tcptrace_req_detach() - stop recording the SYN queue
 *
 * Returns once no CPU can be running a handler any more.
 *
 * Context: process context; may sleep.
 */
void tcptrace_req_detach(void)
{
	if (!(tcptrace_hooks & TCPTRACE_HOOK_REQUEST))
		return;
	unregister_kprobes(req_kps, ARRAY_SIZE(req_kps));
	req_unregister_opt();
	unregister_kretprobe(&req_drop_krp);
	tcptrace_hooks &= ~TCPTRACE_HOOK_REQUEST;
}
