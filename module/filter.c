// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel-side filter: which TCP transitions are worth a record.
 *
 * The probe reads the filter under RCU (tracepoint probes run with
 * preemption disabled); TCPTRACE_IOC_SET_FILTER validates a complete new
 * filter and swaps it in whole, so a transition is always judged by one
 * filter or the other, never by half of each.  No filter at all (the
 * all-zero one) costs the probe a single load.
 */

#include <linux/bits.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/socket.h>
#include <linux/string.h>
#include <net/inet_sock.h>
#include <net/sock.h>
#include "tcptrace.h"

struct tcptrace_kfilter {
	struct tcptrace_filter	uf;
	struct rcu_head		rcu;
};

struct tcptrace_kfilter __rcu *tcptrace_filter;
static DEFINE_MUTEX(tcptrace_filter_lock);

#define TCPTRACE_STATES_VALID	GENMASK(TCPTRACE_STATE_MAX - 1, 1)

static bool ranges_valid(const struct tcptrace_port_range *r, unsigned int nr)
{
	unsigned int i;

	if (nr > TCPTRACE_MAX_RANGES)
		return false;
	for (i = 0; i < nr; i++)
		if (r[i].lo > r[i].hi)
			return false;
	/* Unused entries must be zero: room to grow without surprises. */
	return !memchr_inv(r + nr, 0, (TCPTRACE_MAX_RANGES - nr) * sizeof(*r));
}

static bool filter_valid(const struct tcptrace_filter *f)
{
	if (f->family && f->family != AF_INET && f->family != AF_INET6)
		return false;
	if (memchr_inv(f->reserved, 0, sizeof(f->reserved)))
		return false;
	if (f->flags & ~TCPTRACE_FILTER_FLAGS)
		return false;
	if ((f->old_states | f->new_states) & ~TCPTRACE_STATES_VALID)
		return false;
	return ranges_valid(f->ports, f->nr_ports) &&
	       ranges_valid(f->lports, f->nr_lports) &&
	       ranges_valid(f->rports, f->nr_rports);
}

/**
 * tcptrace_filter_set() - replace the filter
 * @uf: the new filter, as user space gave it.
 *
 * Context: process context; may sleep.
 * Return: 0; -EINVAL if @uf is malformed, -ENOMEM; the old filter stays on
 * any error.
 */
int tcptrace_filter_set(const struct tcptrace_filter *uf)
{
	struct tcptrace_kfilter *kf = NULL, *old;

	if (!filter_valid(uf))
		return -EINVAL;
	if (memchr_inv(uf, 0, sizeof(*uf))) {
		kf = kmalloc(sizeof(*kf), GFP_KERNEL);
		if (!kf)
			return -ENOMEM;
		kf->uf = *uf;
	}

	mutex_lock(&tcptrace_filter_lock);
	old = rcu_replace_pointer(tcptrace_filter, kf,
				  lockdep_is_held(&tcptrace_filter_lock));
	mutex_unlock(&tcptrace_filter_lock);
	if (old)
		kfree_rcu(old, rcu);
	return 0;
}

/**
 * tcptrace_filter_get() - the filter in force
 * @uf: filled in; all zero when there is none.
 *
 * Context: process context; may sleep.
 */
void tcptrace_filter_get(struct tcptrace_filter *uf)
{
	const struct tcptrace_kfilter *kf;

	mutex_lock(&tcptrace_filter_lock);
	kf = rcu_dereference_protected(tcptrace_filter,
				       lockdep_is_held(&tcptrace_filter_lock));
	if (kf)
		*uf = kf->uf;
	else
		memset(uf, 0, sizeof(*uf));
	mutex_unlock(&tcptrace_filter_lock);
}

/**
 * tcptrace_filter_free() - drop the filter at unload
 *
 * Context: process context, with the probe detached and synchronized.
 */
void tcptrace_filter_free(void)
{
	kfree(rcu_replace_pointer(tcptrace_filter, NULL, true));
}

static bool port_in(u16 port, const struct tcptrace_port_range *r,
		    unsigned int nr)
{
	unsigned int i;

	for (i = 0; i < nr; i++)
		if (port >= r[i].lo && port <= r[i].hi)
			return true;
	return false;
}

static u32 state_bit(int state)
{
	return state > 0 && state < 32 ? BIT(state) : 0;
}

/**
 * tcptrace_filter_match_tuple() - does a transition pass the filter?
 * @kf: the filter, from rcu_dereference_sched(tcptrace_filter).
 * @family: the socket's address family.
 * @netns: inode number of its network namespace.
 * @lport: local port, host byte order.
 * @rport: remote port, host byte order.
 * @oldstate: state left.
 * @newstate: state entered.
 *
 * Context: the probe's: any, with preemption disabled.
 */
bool tcptrace_filter_match_tuple(const struct tcptrace_kfilter *kf,
				 u16 family, u32 netns, u16 lport, u16 rport,
				 int oldstate, int newstate)
{
	const struct tcptrace_filter *f = &kf->uf;

	if (f->family && f->family != family)
		return false;
	if (f->netns && f->netns != netns)
		return false;
	if (f->nr_ports && !port_in(lport, f->ports, f->nr_ports) &&
	    !port_in(rport, f->ports, f->nr_ports))
		return false;
	if (f->nr_lports && !port_in(lport, f->lports, f->nr_lports))
		return false;
	if (f->nr_rports && !port_in(rport, f->rports, f->nr_rports))
		return false;
	if ((f->old_states | f->new_states) &&
	    !(f->old_states & state_bit(oldstate)) &&
	    !(f->new_states & state_bit(newstate)))
		return false;
	return true;
}

/**
 * tcptrace_filter_match() - does a full socket's transition pass the filter?
 * @kf: the filter, from rcu_dereference_sched(tcptrace_filter).
 * @sk: the socket.
 * @oldstate: state left.
 * @newstate: state entered.
 *
 * Context: the probe's: any, with preemption disabled.
 */
bool tcptrace_filter_match(const struct tcptrace_kfilter *kf,
			   const struct sock *sk, int oldstate, int newstate)
{
	return tcptrace_filter_match_tuple(kf, sk->sk_family,
					   sock_net(sk)->ns.inum,
					   ntohs(inet_sk(sk)->inet_sport),
					   ntohs(sk->sk_dport),
					   oldstate, newstate);
}

/**
 * tcptrace_filter_events() - does the filter let event records through?
 * @kf: the filter, from rcu_dereference_sched(tcptrace_filter).
 *
 * Context: the probe's: any, with preemption disabled.
 */
bool tcptrace_filter_events(const struct tcptrace_kfilter *kf)
{
	return !(kf->uf.flags & TCPTRACE_FILTER_NO_EVENTS);
}
