/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tcpcheck: the oracle every trace of the selftests goes through.
 *
 * Feed it the records in the order read() returned them.  It checks that
 * each record is well-formed, that each socket moves only as Linux's TCP
 * state machine can move (RFC 9293's diagram as the kernel implements it,
 * self-transitions from close() included, and TIME_WAIT as tcptrace records
 * it), that events (resets, retransmissions) come in the state their socket
 * is in, that a socket's sequence numbers
 * never move backwards (modulo 2^32), that every CPU's loss records add up,
 * and that no field holds what looks like a kernel address.  It also counts
 * what the trace holds, for delivered + lost = produced.  Call tc_finish()
 * at the end: a socket skipping a state is an error only in a trace
 * without losses.
 *
 * Header-only, so that the harness test and the tcpcheck program share it
 * without a library.
 */
#ifndef TCPCHECK_H
#define TCPCHECK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/tcptrace.h>

#define TC_MAX_CPUS	1024
#define TC_HASH_BITS	16
#define TC_MAX_ERRORS	20
#define TC_ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

struct tc_sock {
	uint64_t	id;
	struct tc_sock	*next;
	uint8_t		state;		/* the state it entered last */
	bool		seq_known;
	uint32_t	snd_una, snd_nxt, rcv_nxt;
};

struct tc_state {
	unsigned int	nr_cpus;	/* 0: not checked */
	uint64_t	transitions;
	uint64_t	events;		/* TCPTRACE_REC_EVENT records */
	uint64_t	lost;
	uint64_t	records;
	uint64_t	retrans;	/* total_retrans summed at CLOSE */
	uint64_t	gaps;		/* sockets that skipped a transition */
	unsigned long	errors;
	uint64_t	loss_total[TC_MAX_CPUS];	/* last total seen */
	uint64_t	last_ts[TC_MAX_CPUS];
	struct tc_sock	*hash[1 << TC_HASH_BITS];
	char		first_gap[TC_MAX_ERRORS][128];
	void		(*report)(void *arg, const char *msg);
	void		*arg;
};

/* Where a socket can go from each state, as Linux moves it. */
static const uint32_t tc_next[TCPTRACE_STATE_MAX] = {
#define S(x) (1u << TCPTRACE_##x)
	[TCPTRACE_CLOSE] = S(SYN_SENT) | S(LISTEN) | S(CLOSE),
	/* SYN_RECV: a child; NEW_SYN_RECV: a request (the SYN queue) */
	[TCPTRACE_LISTEN] = S(CLOSE) | S(SYN_RECV) | S(NEW_SYN_RECV),
	[TCPTRACE_NEW_SYN_RECV] = S(SYN_RECV) | S(CLOSE),
	[TCPTRACE_SYN_SENT] = S(ESTABLISHED) | S(SYN_RECV) | S(CLOSE),
	[TCPTRACE_SYN_RECV] = S(ESTABLISHED) | S(FIN_WAIT1) | S(CLOSE_WAIT) |
			      S(CLOSE),
	[TCPTRACE_ESTABLISHED] = S(FIN_WAIT1) | S(CLOSE_WAIT) | S(CLOSE),
	/* close() after shutdown() goes from a state to itself. */
	[TCPTRACE_FIN_WAIT1] = S(FIN_WAIT1) | S(FIN_WAIT2) | S(CLOSING) |
			       S(CLOSE),
	[TCPTRACE_FIN_WAIT2] = S(FIN_WAIT2) | S(TIME_WAIT) | S(CLOSE),
	[TCPTRACE_CLOSING] = S(CLOSING) | S(TIME_WAIT) | S(CLOSE),
	/*
	 * A timewait socket ends, or leaves its FIN_WAIT2 substate; see
	 * tc_check_event() for CLOSE -> CLOSE.
	 */
	[TCPTRACE_TIME_WAIT] = S(CLOSE) | S(TIME_WAIT),
	[TCPTRACE_CLOSE_WAIT] = S(LAST_ACK) | S(CLOSE),
	[TCPTRACE_LAST_ACK] = S(LAST_ACK) | S(CLOSE),
#undef S
};

static const char *const tc_names[TCPTRACE_STATE_MAX] = TCPTRACE_STATE_NAMES;

static const char *tc_name(unsigned int s)
{
	return s < TCPTRACE_STATE_MAX && tc_names[s] ? tc_names[s] : "?";
}

static const char *const tc_causes[TCPTRACE_CAUSE_MAX] = TCPTRACE_CAUSE_NAMES;

static const char *tc_cause_name(unsigned int c)
{
	return c < TCPTRACE_CAUSE_MAX && tc_causes[c] ? tc_causes[c] : "?";
}

/* Whether a record's cause is one its kind of record can have. */
static bool tc_cause_fits(const struct tcptrace_event *ev, bool event)
{
	unsigned int cause = TCPTRACE_CAUSE(ev->flags);
	unsigned int from = ev->oldstate, to = ev->newstate;

	if (event) {
		if (from != to)
			return false;
		switch (cause) {
		case TCPTRACE_CAUSE_RST_RECEIVED:
		case TCPTRACE_CAUSE_RST_SENT:
		case TCPTRACE_CAUSE_RETRANSMIT:
			return true;
		case TCPTRACE_CAUSE_SYNACK_RETRANS:
			/* A request's, or a Fast Open child's */
			return from == TCPTRACE_NEW_SYN_RECV ||
			       from == TCPTRACE_SYN_RECV;
		case TCPTRACE_CAUSE_SYNCOOKIE:
			return from == TCPTRACE_NEW_SYN_RECV;
		default:
			return false;
		}
	}
	if (!cause)
		return true;
	if (from == TCPTRACE_TIME_WAIT)
		return to == TCPTRACE_CLOSE &&
		       cause >= TCPTRACE_CAUSE_TW_EXPIRED &&
		       cause <= TCPTRACE_CAUSE_TW_KILLED;
	if (from == TCPTRACE_NEW_SYN_RECV && to == TCPTRACE_CLOSE)
		return cause == TCPTRACE_CAUSE_RST_RECEIVED ||
		       cause == TCPTRACE_CAUSE_RST_SENT ||
		       cause == TCPTRACE_CAUSE_REQ_TIMEOUT ||
		       cause == TCPTRACE_CAUSE_TW_NETNS ||
		       cause == TCPTRACE_CAUSE_REQ_LISTENER;
	if (from == TCPTRACE_LISTEN && to == TCPTRACE_SYN_RECV)
		return cause == TCPTRACE_CAUSE_SYNCOOKIE ||
		       cause == TCPTRACE_CAUSE_FASTOPEN;
	return false;
}

static void tc_error(struct tc_state *st, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	st->errors++;
	if (st->errors > TC_MAX_ERRORS)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (st->report)
		st->report(st->arg, msg);
	else
		fprintf(stderr, "tcpcheck: %s\n", msg);
}

static struct tc_state *tc_new(unsigned int nr_cpus)
{
	struct tc_state *st = calloc(1, sizeof(*st));

	if (st)
		st->nr_cpus = nr_cpus;
	return st;
}

static void tc_free(struct tc_state *st)
{
	size_t i;

	if (!st)
		return;
	for (i = 0; i < TC_ARRAY_SIZE(st->hash); i++) {
		struct tc_sock *s = st->hash[i], *next;

		for (; s; s = next) {
			next = s->next;
			free(s);
		}
	}
	free(st);
}

static struct tc_sock *tc_sock(struct tc_state *st, uint64_t id, bool *fresh)
{
	size_t h = (id * 0x9e3779b97f4a7c15ULL) >> (64 - TC_HASH_BITS);
	struct tc_sock *s;

	*fresh = false;
	for (s = st->hash[h]; s; s = s->next)
		if (s->id == id)
			return s;
	s = calloc(1, sizeof(*s));
	if (!s)
		abort();
	s->id = id;
	s->next = st->hash[h];
	st->hash[h] = s;
	*fresh = true;
	return s;
}

/*
 * A value in the kernel half of a 64-bit address space: from
 * 0xffff800000000000 with 4-level page tables, from 0xff00000000000000 with
 * 5-level ones (QEMU's -cpu max has them: its sockets sit at 0xff24...).
 */
static bool tc_kernel_pointer(uint64_t v)
{
	return v >= 0xff00000000000000ULL;
}

static bool tc_all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;

	while (n--)
		if (*c++)
			return false;
	return true;
}

/* b is at or after a, modulo 2^32. */
static bool tc_seq_after_eq(uint32_t b, uint32_t a)
{
	return (int32_t)(b - a) >= 0;
}

static void tc_check_event(struct tc_state *st, const struct tcptrace_record *r,
			   uint64_t k)
{
	const struct tcptrace_event *ev = &r->ev;
	unsigned int known = TCPTRACE_F_ADDR_UNSET | TCPTRACE_F_SEQ_UNSET |
			     TCPTRACE_F_ID_UNSET | TCPTRACE_F_TW_FIN_WAIT2 |
			     TCPTRACE_F_CAUSE_MASK;
	unsigned int cause = TCPTRACE_CAUSE(ev->flags);
	bool event = r->type == TCPTRACE_REC_EVENT;
	struct tc_sock *s;
	bool fresh;

	if (r->ctx > TCPTRACE_CTX_NMI)
		tc_error(st, "record %llu: context %u", (unsigned long long)k,
			 r->ctx);
	if (ev->family != AF_INET && ev->family != AF_INET6)
		tc_error(st, "record %llu: family %u", (unsigned long long)k,
			 ev->family);
	if (!ev->oldstate || ev->oldstate > TCPTRACE_NEW_SYN_RECV ||
	    !ev->newstate || ev->newstate > TCPTRACE_NEW_SYN_RECV)
		tc_error(st, "record %llu: states %u -> %u",
			 (unsigned long long)k, ev->oldstate, ev->newstate);
	if (ev->flags & ~known)
		tc_error(st, "record %llu: unknown flags %#x",
			 (unsigned long long)k, ev->flags);
	if (!r->netns)
		tc_error(st, "record %llu: no netns", (unsigned long long)k);
	if (!memchr(ev->comm, '\0', sizeof(ev->comm)))
		tc_error(st, "record %llu: comm not terminated",
			 (unsigned long long)k);
	if (r->ctx != TCPTRACE_CTX_TASK &&
	    (ev->pid || ev->tgid || !tc_all_zero(ev->comm, sizeof(ev->comm))))
		tc_error(st, "record %llu: a task outside task context",
			 (unsigned long long)k);
	if (r->ctx == TCPTRACE_CTX_TASK && (!ev->pid || !ev->tgid))
		tc_error(st, "record %llu: task context without a task",
			 (unsigned long long)k);
	if (ev->family == AF_INET &&
	    (!tc_all_zero(ev->laddr + 4, 12) || !tc_all_zero(ev->raddr + 4, 12)))
		tc_error(st, "record %llu: IPv4 address with trailing bytes",
			 (unsigned long long)k);
	if (ev->flags & TCPTRACE_F_SEQ_UNSET &&
	    (ev->snd_una || ev->snd_nxt || ev->rcv_nxt || ev->write_seq))
		tc_error(st, "record %llu: sequence numbers though unset",
			 (unsigned long long)k);
	if (!(ev->flags & TCPTRACE_F_SEQ_UNSET) &&
	    (!tc_seq_after_eq(ev->snd_nxt, ev->snd_una) ||
	     !tc_seq_after_eq(ev->write_seq, ev->snd_nxt)))
		tc_error(st, "record %llu: snd_una %u, snd_nxt %u, write_seq %u out of order",
			 (unsigned long long)k, ev->snd_una, ev->snd_nxt,
			 ev->write_seq);
	if (!!(ev->flags & TCPTRACE_F_ID_UNSET) != !ev->sock_id)
		tc_error(st, "record %llu: sock_id %llu with flags %#x",
			 (unsigned long long)k,
			 (unsigned long long)ev->sock_id, ev->flags);

	if (!tc_cause_fits(ev, event))
		tc_error(st, "record %llu: cause %u in %s %s -> %s",
			 (unsigned long long)k, cause,
			 event ? "an event" : "a transition",
			 tc_name(ev->oldstate), tc_name(ev->newstate));
	/* Out of that substate, TIME_WAIT -> TIME_WAIT has no flag. */
	if (ev->flags & TCPTRACE_F_TW_FIN_WAIT2 &&
	    (event || (ev->newstate != TCPTRACE_TIME_WAIT &&
		       ev->oldstate != TCPTRACE_TIME_WAIT) ||
	     ev->oldstate == ev->newstate))
		tc_error(st, "record %llu: a FIN_WAIT2 timewait outside TIME_WAIT",
			 (unsigned long long)k);
	if (event)
		st->events++;
	else
		st->transitions++;
	if (ev->flags & TCPTRACE_F_ID_UNSET)
		return;
	s = tc_sock(st, ev->sock_id, &fresh);
	/*
	 * An event happens to a socket in the state it last entered -- or,
	 * once its connection went to a timewait socket, to the full socket
	 * left behind in CLOSE.
	 */
	if (event) {
		if (!fresh && ev->oldstate != s->state &&
		    !(s->state == TCPTRACE_TIME_WAIT &&
		      ev->oldstate == TCPTRACE_CLOSE))
			tc_error(st, "socket %llx: %s in %s after entering %s",
				 (unsigned long long)ev->sock_id,
				 tc_cause_name(cause), tc_name(ev->oldstate),
				 tc_name(s->state));
		if (fresh)
			s->state = ev->oldstate;
		return;
	}
	/*
	 * The application closing a socket whose connection a timewait socket
	 * holds: CLOSE -> CLOSE of the socket it kept, while the connection
	 * stays in TIME_WAIT.
	 */
	if (!fresh && s->state == TCPTRACE_TIME_WAIT &&
	    ev->oldstate == TCPTRACE_CLOSE && ev->newstate == TCPTRACE_CLOSE)
		return;
	/*
	 * A socket's first record may be anywhere in its life (the trace began
	 * later); after that, each record leaves the state the last entered.
	 */
	if (!fresh && ev->oldstate != s->state) {
		/* Fine if records were lost, which tc_finish() knows. */
		st->gaps++;
		if (st->gaps <= TC_MAX_ERRORS)
			snprintf(st->first_gap[st->gaps - 1],
				 sizeof(st->first_gap[0]),
				 "socket %llx: %s -> %s after entering %s",
				 (unsigned long long)ev->sock_id,
				 tc_name(ev->oldstate), tc_name(ev->newstate),
				 tc_name(s->state));
	}
	if (ev->oldstate < TCPTRACE_STATE_MAX &&
	    !(tc_next[ev->oldstate] & (1u << (ev->newstate & 31))))
		tc_error(st, "socket %llx: %s -> %s is not a TCP transition",
			 (unsigned long long)ev->sock_id, tc_name(ev->oldstate),
			 tc_name(ev->newstate));
	if (ev->oldstate == TCPTRACE_LISTEN &&
	    ev->newstate == TCPTRACE_SYN_RECV && !fresh)
		tc_error(st, "socket %llx: a child's first record came late",
			 (unsigned long long)ev->sock_id);

	if (!(ev->flags & TCPTRACE_F_SEQ_UNSET)) {
		if (s->seq_known &&
		    (!tc_seq_after_eq(ev->snd_una, s->snd_una) ||
		     !tc_seq_after_eq(ev->snd_nxt, s->snd_nxt) ||
		     !tc_seq_after_eq(ev->rcv_nxt, s->rcv_nxt)))
			tc_error(st, "socket %llx: sequence space moved back at %s -> %s (una %u->%u nxt %u->%u rcv %u->%u)",
				 (unsigned long long)ev->sock_id,
				 tc_name(ev->oldstate), tc_name(ev->newstate),
				 s->snd_una, ev->snd_una, s->snd_nxt,
				 ev->snd_nxt, s->rcv_nxt, ev->rcv_nxt);
		s->seq_known = true;
		s->snd_una = ev->snd_una;
		s->snd_nxt = ev->snd_nxt;
		s->rcv_nxt = ev->rcv_nxt;
	}
	/* A connection's last counters: at CLOSE, or at the hand-over. */
	if (ev->newstate == TCPTRACE_CLOSE ||
	    ev->newstate == TCPTRACE_TIME_WAIT)
		st->retrans += ev->total_retrans;
	s->state = ev->newstate;
	/* A closed socket may start over: connect() or listen() again. */
	if (ev->newstate == TCPTRACE_CLOSE)
		s->seq_known = false;
}

/**
 * tc_check() - check the next record of a trace
 * @st: the trace's state.
 * @r: the record.
 *
 * Return: the number of errors so far.
 */
static unsigned long tc_check(struct tc_state *st,
			      const struct tcptrace_record *r)
{
	uint64_t k = st->records++;
	const __u64 *wide[4] = {
		&r->ts_ns, &r->ev.sock_id, &r->ev.bytes_acked,
		&r->ev.bytes_received,
	};
	size_t i;

	/*
	 * The 64-bit fields are where an address would hide.  (Two random
	 * 32-bit sequence numbers side by side can look like one.)
	 */
	for (i = 0; i < TC_ARRAY_SIZE(wide); i++)
		if (tc_kernel_pointer(*wide[i]))
			tc_error(st, "record %llu: field %zu looks like a kernel address: %#llx",
				 (unsigned long long)k, i,
				 (unsigned long long)*wide[i]);
	if (st->nr_cpus && r->cpu >= st->nr_cpus)
		tc_error(st, "record %llu: cpu %u of %u", (unsigned long long)k,
			 r->cpu, st->nr_cpus);
	if (!r->ts_ns)
		tc_error(st, "record %llu: no time", (unsigned long long)k);
	/*
	 * Each CPU's records come in time order -- but for a child's first
	 * record that a later birth displaced, which is written late.
	 */
	if (r->cpu < TC_MAX_CPUS && !(r->type == TCPTRACE_REC_STATE &&
				      r->ev.flags & TCPTRACE_F_ID_UNSET)) {
		if (r->ts_ns < st->last_ts[r->cpu])
			tc_error(st, "record %llu: CPU %u went back in time",
				 (unsigned long long)k, r->cpu);
		st->last_ts[r->cpu] = r->ts_ns;
	}

	switch (r->type) {
	case TCPTRACE_REC_STATE:
	case TCPTRACE_REC_EVENT:
		tc_check_event(st, r, k);
		break;
	case TCPTRACE_REC_LOST:
		if (!r->loss.count || r->loss.total < r->loss.count ||
		    r->netns || r->ctx ||
		    !tc_all_zero(r->loss.reserved, sizeof(r->loss.reserved)))
			tc_error(st, "record %llu: malformed loss record",
				 (unsigned long long)k);
		/* Consecutive loss records of a CPU add up. */
		if (r->cpu < TC_MAX_CPUS) {
			uint64_t *t = &st->loss_total[r->cpu];

			if (*t && r->loss.total != *t + r->loss.count)
				tc_error(st, "record %llu: CPU %u lost %llu, total %llu after %llu",
					 (unsigned long long)k, r->cpu,
					 (unsigned long long)r->loss.count,
					 (unsigned long long)r->loss.total,
					 (unsigned long long)*t);
			*t = r->loss.total;
		}
		st->lost += r->loss.count;
		break;
	default:
		tc_error(st, "record %llu: type %u", (unsigned long long)k,
			 r->type);
	}
	return st->errors;
}

/**
 * tc_finish() - the verdicts that need the whole trace
 * @st: the trace's state.
 *
 * A socket whose record leaves a state it never entered skipped a
 * transition.  In a trace with losses that is the loss; without, an error.
 *
 * Return: the number of errors.
 */
static unsigned long tc_finish(struct tc_state *st)
{
	uint64_t i;

	if (st->gaps && !st->lost)
		for (i = 0; i < st->gaps; i++)
			tc_error(st, "%s", i < TC_MAX_ERRORS ? st->first_gap[i] :
				 "(more gaps)");
	return st->errors;
}

#endif /* TCPCHECK_H */
