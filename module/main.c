// SPDX-License-Identifier: GPL-2.0
/*
 * tcptrace: every TCP state transition of this kernel, with the sequence
 * and acknowledgment numbers at that moment.
 *
 * Loading the module attaches a probe to the tracepoint
 * sock:inet_sock_set_state (and, unless told not to, probes to the tcp:
 * tracepoints of resets and retransmissions and kprobes that see TIME_WAIT
 * and the SYN queue)
 * and starts recording into per-CPU buffers, like a flight recorder;
 * /dev/tcptrace hands the records to one reader.  See
 * Documentation/tcptrace.rst for the ABI and include/uapi/linux/tcptrace.h
 * for the record layout.
 *
 *	insmod tcptrace.ko buffer_kb=1024
 *	tcptrace-read
 */

#include <linux/init.h>
#include <linux/log2.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include "tcptrace.h"

static unsigned int buffer_kb = 1024;
module_param(buffer_kb, uint, 0444);
MODULE_PARM_DESC(buffer_kb,
		 "Buffer size per CPU in KiB, 4 to 1048576, rounded up to a power of two of 128-byte records (default 1024)");

static unsigned int watermark_pct = 50;
module_param(watermark_pct, uint, 0444);
MODULE_PARM_DESC(watermark_pct,
		 "Wake a waiting reader when a CPU's buffer is this full, in percent, 1 to 100 (default 50)");

static unsigned int wakeup_ms = 50;
module_param(wakeup_ms, uint, 0444);
MODULE_PARM_DESC(wakeup_ms,
		 "Longest time records below the watermark wait for a waiting reader, in ms, 1 to 1000 (default 50)");

bool tcptrace_timewait = true;
module_param_named(timewait, tcptrace_timewait, bool, 0444);
MODULE_PARM_DESC(timewait,
		 "Record connections entering and leaving TIME_WAIT, with why they leave; 1 or 0, with kprobes (default 1)");

bool tcptrace_causes = true;
module_param_named(causes, tcptrace_causes, bool, 0444);
MODULE_PARM_DESC(causes,
		 "Record resets sent and received and retransmissions, which explain transitions, 1 or 0 (default 1)");

bool tcptrace_requests = true;
module_param_named(requests, tcptrace_requests, bool, 0444);
MODULE_PARM_DESC(requests,
		 "Record the SYN queue: requests, SYN cookies, SYN-ACK retransmissions, and which request a child comes from; 1 or 0, with kprobes (default 1)");

u32 tcptrace_hooks;
unsigned int tcptrace_buffer_records;
unsigned int tcptrace_watermark;
unsigned int tcptrace_wakeup_ms;

#define TCPTRACE_MIN_KB		4
#define TCPTRACE_MAX_KB		(1024 * 1024)

static int __init tcptrace_params(void)
{
	u64 records = DIV_ROUND_UP_ULL((u64)buffer_kb * 1024,
				       sizeof(struct tcptrace_record));

	if (buffer_kb < TCPTRACE_MIN_KB || buffer_kb > TCPTRACE_MAX_KB) {
		pr_err("buffer_kb=%u is out of range (%u to %u)\n", buffer_kb,
		       TCPTRACE_MIN_KB, TCPTRACE_MAX_KB);
		return -EINVAL;
	}
	if (watermark_pct < 1 || watermark_pct > 100) {
		pr_err("watermark_pct=%u is out of range (1 to 100)\n",
		       watermark_pct);
		return -EINVAL;
	}
	if (wakeup_ms < 1 || wakeup_ms > 1000) {
		pr_err("wakeup_ms=%u is out of range (1 to 1000)\n", wakeup_ms);
		return -EINVAL;
	}

	tcptrace_buffer_records = roundup_pow_of_two(records);
	tcptrace_watermark = max_t(u32, 1, div_u64((u64)tcptrace_buffer_records *
						  watermark_pct, 100));
	tcptrace_wakeup_ms = wakeup_ms;
	return 0;
}

static int __init tcptrace_init(void)
{
	int ret;

	ret = tcptrace_params();
	if (ret)
		return ret;

	ret = tcptrace_bufs_alloc(tcptrace_buffer_records);
	if (ret) {
		pr_err("cannot allocate %u records per CPU for %u CPUs\n",
		       tcptrace_buffer_records, num_possible_cpus());
		return ret;
	}

	/* DEBUG builds only: test the ring, measure the probe, reset. */
	ret = tcptrace_selftest();
	if (ret)
		goto err_free_bufs;

	/* The kprobes first: their marks must be there for the probe to find. */
	if (tcptrace_timewait) {
		ret = tcptrace_tw_attach();
		if (ret)
			goto err_free_bufs;
	}

	if (tcptrace_requests) {
		ret = tcptrace_req_attach();
		if (ret)
			goto err_detach_tw;
	}

	ret = tcptrace_probe_attach();
	if (ret)
		goto err_detach_req;

	ret = tcptrace_dev_register();
	if (ret)
		goto err_detach_probe;

	pr_info("%s: recording, %u records per CPU on %u CPUs, hooks 0x%x\n",
		TCPTRACE_VERSION, tcptrace_buffer_records, num_possible_cpus(),
		tcptrace_hooks);
	return 0;

err_detach_probe:
	tcptrace_probe_detach();
err_detach_req:
	tcptrace_req_detach();
err_detach_tw:
	tcptrace_tw_detach();
err_free_bufs:
	tcptrace_bufs_free();
	return ret;
}

static void __exit tcptrace_exit(void)
{
	tcptrace_dev_unregister();
	tcptrace_probe_detach();
	tcptrace_req_detach();
	tcptrace_tw_detach();
	tcptrace_filter_free();
	tcptrace_bufs_free();
}

module_init(tcptrace_init);
module_exit(tcptrace_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Trace TCP state transitions with their sequence numbers");
MODULE_VERSION(TCPTRACE_VERSION);
MODULE_AUTHOR("The tcptrace developers");
