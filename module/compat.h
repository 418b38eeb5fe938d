/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel API differences, in one place.  Kbuild includes this header in
 * every file of the module (-include), so the .c files are free of version
 * tests.  Prefer a probe of what the target tree has over a version number.
 */
#ifndef _TCPTRACE_COMPAT_H
#define _TCPTRACE_COMPAT_H

#include <linux/atomic.h>
#include <linux/sock_diag.h>
#include <net/sock.h>
#include <net/tcp_states.h>

/*
 * TCP_BOUND_INACTIVE (6.6) marks a bound, inactive socket in the bind hash;
 * no socket enters it on older kernels, but the number is taken.
 */
#ifndef TCPTRACE_HAVE_TCP_BOUND_INACTIVE
#define TCP_BOUND_INACTIVE	13
#endif

/*
 * tcp:tcp_send_reset gained the reason of the reset in 6.10: the prototype
 * of a probe on it.
 */
#ifdef TCPTRACE_HAVE_RST_REASON
#include <net/rstreason.h>
#define TCPTRACE_SEND_RESET_PROBE(name)					\
	void name(void *data, const struct sock *sk,			\
		  const struct sk_buff *skb, const enum sk_rst_reason reason)
#else
#define TCPTRACE_SEND_RESET_PROBE(name)					\
	void name(void *data, const struct sock *sk,			\
		  const struct sk_buff *skb)
#endif

/*
 * The function that hands a connection over to a timewait socket, (tw, sk,
 * ...), kprobed by timewait.c: renamed when it took over scheduling in 6.10.
 */
#ifdef TCPTRACE_HAVE_TW_HASHDANCE_SCHEDULE
#define TCPTRACE_TW_HANDOVER_FN	"inet_twsk_hashdance_schedule"
#else
#define TCPTRACE_TW_HANDOVER_FN	"inet_twsk_hashdance"
#endif

/*
 * The socket cookie (SO_COOKIE, ss -e, bpf_get_socket_cookie()) is made on
 * first use by __sock_gen_cookie(), which is not exported to modules;
 * sock_diag_save_cookie() is, from 4.x to now.  Both only set sk_cookie,
 * once, atomically, which is safe on a socket we were handed as const.
 */
static inline u64 tcptrace_sock_cookie(const struct sock *sk)
{
	u64 cookie = atomic64_read(&sk->sk_cookie);
	u32 half[2];

	if (likely(cookie))
		return cookie;
	sock_diag_save_cookie((struct sock *)sk, half);
	return half[0] | (u64)half[1] << 32;
}

#endif /* _TCPTRACE_COMPAT_H */
