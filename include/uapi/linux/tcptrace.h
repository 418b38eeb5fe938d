/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * tcptrace: the ABI of /dev/tcptrace.
 *
 * The module records one struct tcptrace_record for every TCP state
 * transition (tracepoint sock:inet_sock_set_state) into a per-CPU buffer.
 * read() on /dev/tcptrace returns whole records, merged across CPUs in
 * timestamp order.  When a CPU's buffer is full, transitions are dropped and
 * counted; the count reaches the reader in-band as a TCPTRACE_REC_LOST record
 * at the place of the gap, so that for every CPU
 *
 *	transitions produced = records delivered + sum of loss counts
 *
 * holds exactly (records thrown away by TCPTRACE_IOC_CLEAR aside, which the
 * statistics count).
 *
 * This header is shared by the module, the reader and the selftests.  Check
 * tcptrace_info.abi_version and .record_size before decoding anything.
 */
#ifndef _UAPI_LINUX_TCPTRACE_H
#define _UAPI_LINUX_TCPTRACE_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define TCPTRACE_ABI_VERSION	1
#define TCPTRACE_DEVICE		"/dev/tcptrace"

/* TCP states, numbered as the kernel numbers them (include/net/tcp_states.h). */
enum tcptrace_state {
	TCPTRACE_ESTABLISHED = 1,
	TCPTRACE_SYN_SENT = 2,
	TCPTRACE_SYN_RECV = 3,
	TCPTRACE_FIN_WAIT1 = 4,
	TCPTRACE_FIN_WAIT2 = 5,
	TCPTRACE_TIME_WAIT = 6,
	TCPTRACE_CLOSE = 7,
	TCPTRACE_CLOSE_WAIT = 8,
	TCPTRACE_LAST_ACK = 9,
	TCPTRACE_LISTEN = 10,
	TCPTRACE_CLOSING = 11,
	TCPTRACE_NEW_SYN_RECV = 12,
	TCPTRACE_BOUND_INACTIVE = 13,
	TCPTRACE_STATE_MAX
};

/*
 * The SYN queue.  A SYN that a listener queues does not make a socket but a
 * request (the kernel's TCP_NEW_SYN_RECV), which the state tracepoint never
 * sees; the module records it (TCPTRACE_HOOK_REQUEST) as LISTEN ->
 * NEW_SYN_RECV with the request's own id, addresses and sequence space: the
 * peer's ISN x (rcv_nxt = x + 1) and ours, y (snd_una = y, snd_nxt = y + 1:
 * the SYN-ACK it sends).  The child the final ACK makes of it keeps that id,
 * and its first record is NEW_SYN_RECV -> SYN_RECV.  A request that never
 * gets there ends with NEW_SYN_RECV -> CLOSE and a cause.  A child made
 * without a queued request -- from a SYN cookie, or at the SYN by TCP Fast
 * Open -- starts with LISTEN -> SYN_RECV, which says so in its cause.
 */

/*
 * The states' names, as an initializer for an array indexed by state:
 *	static const char *const names[TCPTRACE_STATE_MAX] = TCPTRACE_STATE_NAMES;
 */
#define TCPTRACE_STATE_NAMES {				\
	[TCPTRACE_ESTABLISHED] = "ESTABLISHED",		\
	[TCPTRACE_SYN_SENT] = "SYN_SENT",		\
	[TCPTRACE_SYN_RECV] = "SYN_RECV",		\
	[TCPTRACE_FIN_WAIT1] = "FIN_WAIT1",		\
	[TCPTRACE_FIN_WAIT2] = "FIN_WAIT2",		\
	[TCPTRACE_TIME_WAIT] = "TIME_WAIT",		\
	[TCPTRACE_CLOSE] = "CLOSE",			\
	[TCPTRACE_CLOSE_WAIT] = "CLOSE_WAIT",		\
	[TCPTRACE_LAST_ACK] = "LAST_ACK",		\
	[TCPTRACE_LISTEN] = "LISTEN",			\
	[TCPTRACE_CLOSING] = "CLOSING",			\
	[TCPTRACE_NEW_SYN_RECV] = "NEW_SYN_RECV",	\
	[TCPTRACE_BOUND_INACTIVE] = "BOUND_INACTIVE",	\
}

/* tcptrace_record.type */
enum tcptrace_type {
	TCPTRACE_REC_STATE = 1,	/* a state transition: .ev is valid */
	TCPTRACE_REC_LOST = 2,	/* transitions dropped: .loss is valid */
	/*
	 * Something that explains a transition happened to a socket: a reset
	 * sent or received, a retransmission.  .ev is valid and describes the
	 * socket at that moment; .ev.oldstate and .ev.newstate both hold its
	 * state, and TCPTRACE_CAUSE(.ev.flags) says what happened.  Readers
	 * skip types they do not know.
	 */
	TCPTRACE_REC_EVENT = 3,
};

/* tcptrace_record.ctx: what the CPU was doing when the transition happened */
enum tcptrace_ctx {
	TCPTRACE_CTX_TASK = 0,	/* process context: .ev.pid/tgid/comm are valid */
	TCPTRACE_CTX_SOFTIRQ = 1,	/* serving a softirq (packet receive, timers) */
	TCPTRACE_CTX_HARDIRQ = 2,
	TCPTRACE_CTX_NMI = 3,
};

/* tcptrace_event.flags */
/*
 * Addresses and remote port are not known yet: a socket accepted from a
 * listener is cloned from it, and its first transition (LISTEN -> SYN_RECV)
 * happens before the kernel copies the peer's address into it.
 */
#define TCPTRACE_F_ADDR_UNSET	0x01
/*
 * snd_una, snd_nxt, rcv_nxt and write_seq hold no sequence numbers yet:
 * CLOSE -> SYN_SENT is recorded before the ISN is chosen, LISTEN -> SYN_RECV
 * before the child's sequence space is set up.
 */
#define TCPTRACE_F_SEQ_UNSET	0x02
/*
 * sock_id is not known.  A child is cloned from its listener before the
 * kernel gives it a cookie of its own, so the module holds the record of its
 * LISTEN -> SYN_RECV back until the child's next transition, which on the
 * same CPU (the usual case) tells its id.  A record displaced before that --
 * a Fast Open child that completes on another CPU -- has this flag and
 * sock_id 0.
 */
#define TCPTRACE_F_ID_UNSET	0x04
/*
 * In a transition to TIME_WAIT: the kernel's timewait socket that now holds
 * the connection is in its FIN_WAIT2 substate -- our FIN is acknowledged, the
 * peer's has not arrived.  The kernel moves an orphaned FIN_WAIT2 connection
 * into a timewait socket to save memory; the connection's protocol state is
 * still FIN_WAIT2.  In TIME_WAIT -> CLOSE: the timewait socket was still in
 * that substate when it went away.  The peer's FIN takes it out of it:
 * TIME_WAIT -> TIME_WAIT, without the flag.
 */
#define TCPTRACE_F_TW_FIN_WAIT2	0x08
/*
 * Bits 4 to 7 of tcptrace_event.flags hold an enum tcptrace_cause: in a
 * transition, why it happened, when the module knows (0 when it does not say);
 * in a TCPTRACE_REC_EVENT record, what happened.
 */
#define TCPTRACE_F_CAUSE_SHIFT	4
#define TCPTRACE_F_CAUSE_MASK	0xf0
#define TCPTRACE_CAUSE(flags)	(((flags) & TCPTRACE_F_CAUSE_MASK) >> \
				 TCPTRACE_F_CAUSE_SHIFT)

/*
 * Why a transition happened, or what a TCPTRACE_REC_EVENT record reports.
 * A request that ends in NEW_SYN_RECV -> CLOSE also gives the reset causes
 * (a reset received, or sent in answer to a bad segment) and
 * TCPTRACE_CAUSE_TW_NETNS (its namespace went away).
 */
enum tcptrace_cause {
	TCPTRACE_CAUSE_NONE = 0,	/* not said */
	/* Events (tracepoints tcp:tcp_receive_reset and so on) */
	TCPTRACE_CAUSE_RST_RECEIVED = 1,	/* a reset was received */
	TCPTRACE_CAUSE_RST_SENT = 2,	/* a reset was sent */
	TCPTRACE_CAUSE_RETRANSMIT = 3,	/* a segment was retransmitted */
	/* The SYN queue: requests (NEW_SYN_RECV) and the children they become */
	TCPTRACE_CAUSE_SYNACK_RETRANS = 4,	/* event: a SYN-ACK was sent again */
	/*
	 * Event: a SYN answered with a SYN cookie instead of being queued.
	 * LISTEN -> SYN_RECV: a child made from a SYN cookie.
	 */
	TCPTRACE_CAUSE_SYNCOOKIE = 5,
	TCPTRACE_CAUSE_FASTOPEN = 6,	/* LISTEN -> SYN_RECV: made at the SYN (Fast Open) */
	TCPTRACE_CAUSE_REQ_TIMEOUT = 7,	/* NEW_SYN_RECV -> CLOSE: its SYN-ACKs went unanswered */
	/* Why a timewait socket went away: TIME_WAIT -> CLOSE */
	TCPTRACE_CAUSE_TW_EXPIRED = 8,	/* its timer ran out (2MSL, or the FIN_WAIT2 timeout) */
	TCPTRACE_CAUSE_TW_REUSED = 9,	/* a connect() took its 4-tuple (tcp_tw_reuse) */
	TCPTRACE_CAUSE_TW_SYN = 10,	/* a new SYN from the peer took its 4-tuple */
	TCPTRACE_CAUSE_TW_RST_RECEIVED = 11,	/* a reset arrived ("TIME_WAIT assassination") */
	TCPTRACE_CAUSE_TW_RST_SENT = 12,	/* it answered a segment with a reset */
	TCPTRACE_CAUSE_TW_NETNS = 13,	/* its network namespace was torn down */
	TCPTRACE_CAUSE_TW_KILLED = 14,	/* killed from process context (SOCK_DESTROY, ss -K) */
	TCPTRACE_CAUSE_REQ_LISTENER = 15,	/* NEW_SYN_RECV -> CLOSE: its listener was closed */
	TCPTRACE_CAUSE_MAX
};

#define TCPTRACE_CAUSE_NAMES {						\
	[TCPTRACE_CAUSE_NONE] = "",					\
	[TCPTRACE_CAUSE_RST_RECEIVED] = "reset received",		\
	[TCPTRACE_CAUSE_RST_SENT] = "reset sent",			\
	[TCPTRACE_CAUSE_RETRANSMIT] = "retransmission",			\
	[TCPTRACE_CAUSE_SYNACK_RETRANS] = "SYN-ACK retransmitted",	\
	[TCPTRACE_CAUSE_SYNCOOKIE] = "SYN cookie",			\
	[TCPTRACE_CAUSE_FASTOPEN] = "Fast Open",			\
	[TCPTRACE_CAUSE_REQ_TIMEOUT] = "request timed out",		\
	[TCPTRACE_CAUSE_TW_EXPIRED] = "timewait expired",		\
	[TCPTRACE_CAUSE_TW_REUSED] = "timewait reused by connect",	\
	[TCPTRACE_CAUSE_TW_SYN] = "timewait reused by a new SYN",	\
	[TCPTRACE_CAUSE_TW_RST_RECEIVED] = "reset received in timewait", \
	[TCPTRACE_CAUSE_TW_RST_SENT] = "reset sent from timewait",	\
	[TCPTRACE_CAUSE_TW_NETNS] = "network namespace gone",		\
	[TCPTRACE_CAUSE_TW_KILLED] = "timewait killed",			\
	[TCPTRACE_CAUSE_REQ_LISTENER] = "listener closed",		\
}

/**
 * struct tcptrace_event - one TCP state transition (112 bytes)
 * @sock_id: the kernel's socket cookie, as shown by ``ss -e`` and returned by
 *	SO_COOKIE and bpf_get_socket_cookie(): unique per socket for the life of
 *	the system, never an address.
 * @family: AF_INET or AF_INET6 (IPv4 peers of an IPv6 socket are v4-mapped).
 * @oldstate: state left, enum tcptrace_state.
 * @newstate: state entered.
 * @flags: TCPTRACE_F_*.
 * @lport: local port, host byte order; 0 before the port is chosen.
 * @rport: remote port, host byte order.
 * @pid: thread id in the initial pid namespace; 0 outside task context.
 * @tgid: process id; 0 outside task context.
 * @comm: task name, NUL-terminated; empty outside task context.
 * @laddr: local address, network byte order; IPv4 uses the first 4 bytes.
 * @raddr: remote address, likewise.
 * @snd_una: first sequence number not yet acknowledged by the peer.
 * @snd_nxt: next sequence number to send.
 * @rcv_nxt: next sequence number expected from the peer (the ACK we send).
 * @write_seq: sequence number after the last byte queued by the application;
 *	at FIN_WAIT1 and LAST_ACK it is the sequence number of our FIN.
 * @bytes_acked: bytes of ours the peer has acknowledged (RFC 4898).
 * @bytes_received: bytes received in order from the peer (RFC 4898).
 * @total_retrans: segments retransmitted over the connection's life.
 * @srtt_us: smoothed round-trip time in microseconds; 0 if not measured.
 */
struct tcptrace_event {
	__u64	sock_id;
	__u8	family;
	__u8	oldstate;
	__u8	newstate;
	__u8	flags;
	__u16	lport;
	__u16	rport;
	__u32	pid;
	__u32	tgid;
	char	comm[16];
	__u8	laddr[16];
	__u8	raddr[16];
	__u32	snd_una;
	__u32	snd_nxt;
	__u32	rcv_nxt;
	__u32	write_seq;
	__u64	bytes_acked;
	__u64	bytes_received;
	__u32	total_retrans;
	__u32	srtt_us;
};

/**
 * struct tcptrace_loss - transitions that did not fit in a CPU's buffer
 * @count: transitions dropped on this CPU since the previous loss record.
 * @total: transitions dropped on this CPU since the module was loaded.
 * @reserved: zero.
 */
struct tcptrace_loss {
	__u64	count;
	__u64	total;
	__u64	reserved[12];
};

/**
 * struct tcptrace_record - the unit read() returns (128 bytes)
 * @ts_ns: CLOCK_MONOTONIC time of the transition; in a loss record, a time
 *	after the drops it reports and not after the next record of its CPU.
 * @cpu: the CPU that recorded it (the buffer it came from).
 * @type: enum tcptrace_type.
 * @ctx: enum tcptrace_ctx; TCPTRACE_CTX_TASK for loss records.
 * @netns: inode number of the socket's network namespace (as in
 *	/proc/PID/ns/net); 0 in loss records.
 * @ev: the transition, when @type is TCPTRACE_REC_STATE.
 * @loss: the loss, when @type is TCPTRACE_REC_LOST.
 */
struct tcptrace_record {
	__u64	ts_ns;
	__u16	cpu;
	__u8	type;
	__u8	ctx;
	__u32	netns;
	union {
		struct tcptrace_event	ev;
		struct tcptrace_loss	loss;
	};
};

/* tcptrace_info.hooks: what the module sees */
#define TCPTRACE_HOOK_STATE	0x01	/* sock:inet_sock_set_state: every transition */
#define TCPTRACE_HOOK_TW_ENTER	0x02	/* transitions into TIME_WAIT */
#define TCPTRACE_HOOK_TW_EXIT	0x04	/* TIME_WAIT -> CLOSE with its cause */
#define TCPTRACE_HOOK_RESET	0x08	/* resets sent and received */
#define TCPTRACE_HOOK_RETRANS	0x10	/* retransmissions */
#define TCPTRACE_HOOK_REQUEST	0x20	/* the SYN queue: requests, cookies, children */
#define TCPTRACE_HOOK_SYNACK	0x40	/* SYN-ACK retransmissions */

/**
 * struct tcptrace_info - what the module is (TCPTRACE_IOC_INFO)
 * @abi_version: TCPTRACE_ABI_VERSION of the module.
 * @record_size: sizeof(struct tcptrace_record) of the module.
 * @nr_cpus: number of per-CPU buffers (CPU ids run from 0 to nr_cpus - 1).
 * @buffer_records: capacity of each CPU's buffer, in records.
 * @clock: clock of tcptrace_record.ts_ns, a clockid_t (CLOCK_MONOTONIC).
 * @hooks: TCPTRACE_HOOK_* bits of the hooks that are attached; a view that
 *	needs a missing hook is incomplete.  0 from modules older than hooks.
 * @reserved: zero.
 * @version: the module's version string, NUL-terminated.
 */
struct tcptrace_info {
	__u32	abi_version;
	__u32	record_size;
	__u32	nr_cpus;
	__u32	buffer_records;
	__u32	clock;
	__u32	hooks;
	__u32	reserved[2];
	char	version[32];
};

/**
 * struct tcptrace_cpu_stats - one CPU's counters
 * @recorded: transitions written into this CPU's buffer.
 * @lost: transitions dropped because the buffer was full.
 * @lost_reported: of @lost, how many loss records returned by read() reported.
 * @filtered: TCP transitions the kernel-side filter rejected; not lost.
 * @delivered: transition records returned by read().
 * @discarded: transition records thrown away by TCPTRACE_IOC_CLEAR.
 * @buffer_records: capacity of the buffer, in records.
 * @queued: records waiting in the buffer now.
 *
 * All counters but @queued only grow.  Once the buffers are drained,
 * recorded = delivered + discarded and lost = lost_reported.
 */
struct tcptrace_cpu_stats {
	__u64	recorded;
	__u64	lost;
	__u64	lost_reported;
	__u64	filtered;
	__u64	delivered;
	__u64	discarded;
	__u32	buffer_records;
	__u32	queued;
};

/**
 * struct tcptrace_stats - argument of TCPTRACE_IOC_STATS
 * @nr_cpus: in: entries @cpu has room for; out: number of CPUs (nr_cpu_ids).
 *	Entries beyond both are left alone.
 * @missed: in: zero; out: hits of the module's kprobes that the kernel
 *	skipped (a kprobe hit inside another's handler, or no free instance
 *	of a return probe) since it was loaded: records that were never made,
 *	and so are counted nowhere else.  Zero from older modules.
 * @cpu: per-CPU counters, indexed by CPU id.
 */
struct tcptrace_stats {
	__u32	nr_cpus;
	__u32	missed;
	struct tcptrace_cpu_stats cpu[];
};

#define TCPTRACE_MAX_RANGES	8

/* tcptrace_filter.flags */
#define TCPTRACE_FILTER_NO_EVENTS	0x01	/* no TCPTRACE_REC_EVENT records */
#define TCPTRACE_FILTER_FLAGS		TCPTRACE_FILTER_NO_EVENTS

/* An inclusive range of ports, host byte order; lo <= hi. */
struct tcptrace_port_range {
	__u16	lo;
	__u16	hi;
};

/**
 * struct tcptrace_filter - which transitions the module records
 * @family: 0 for any, AF_INET or AF_INET6.
 * @nr_ports: number of ranges in @ports.
 * @nr_lports: number of ranges in @lports.
 * @nr_rports: number of ranges in @rports.
 * @flags: TCPTRACE_FILTER_*.
 * @old_states: bit (1 << state) set for each state of interest as the state left.
 * @new_states: bit (1 << state) set for each state of interest as the state entered.
 * @netns: 0 for any, else the inode number of one network namespace.
 * @reserved: zero.
 * @ports: the local or the remote port is in one of these ranges.
 * @lports: the local port is in one of these ranges.
 * @rports: the remote port is in one of these ranges.
 *
 * A transition is recorded when it passes every part that is set: the
 * family; the netns; each non-empty port list; and, when either state mask
 * is non-zero, when its old state is in @old_states or its new state is in
 * @new_states.  An event record (TCPTRACE_REC_EVENT) is judged the same
 * way, its socket's state standing for both states, unless @flags has
 * TCPTRACE_FILTER_NO_EVENTS, which drops them all.  The all-zero filter
 * records every TCP transition and event.
 * Transitions the filter rejects are counted as filtered, never as lost.
 * Note that CLOSE -> SYN_SENT is recorded before the local port is chosen
 * (lport 0), and LISTEN -> SYN_RECV before the remote port is known.
 */
struct tcptrace_filter {
	__u16	family;
	__u8	nr_ports;
	__u8	nr_lports;
	__u8	nr_rports;
	__u8	flags;
	__u8	reserved[2];
	__u32	old_states;
	__u32	new_states;
	__u32	netns;
	struct tcptrace_port_range ports[TCPTRACE_MAX_RANGES];
	struct tcptrace_port_range lports[TCPTRACE_MAX_RANGES];
	struct tcptrace_port_range rports[TCPTRACE_MAX_RANGES];
};

#define TCPTRACE_IOC_MAGIC	0xE7

/* Fill struct tcptrace_info. */
#define TCPTRACE_IOC_INFO	_IOR(TCPTRACE_IOC_MAGIC, 0x01, struct tcptrace_info)
/* Fill struct tcptrace_stats and as many entries of its cpu[] as fit. */
#define TCPTRACE_IOC_STATS	_IOWR(TCPTRACE_IOC_MAGIC, 0x02, struct tcptrace_stats)
/* Read the filter in force. */
#define TCPTRACE_IOC_GET_FILTER	_IOR(TCPTRACE_IOC_MAGIC, 0x03, struct tcptrace_filter)
/* Replace the filter, atomically; EINVAL and no change if any field is bad. */
#define TCPTRACE_IOC_SET_FILTER	_IOW(TCPTRACE_IOC_MAGIC, 0x04, struct tcptrace_filter)
/*
 * Throw away every buffered transition record (counted as discarded).  Losses
 * are never thrown away: they are still reported by the next read().
 */
#define TCPTRACE_IOC_CLEAR	_IO(TCPTRACE_IOC_MAGIC, 0x05)

#endif /* _UAPI_LINUX_TCPTRACE_H */
