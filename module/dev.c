// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/tcptrace: the records, for one reader at a time.
 *
 *	fd = open("/dev/tcptrace", O_RDONLY);
 *	ioctl(fd, TCPTRACE_IOC_INFO, &info);	// check abi_version
 *	n = read(fd, recs, sizeof(recs));	// whole records, oldest first
 *
 * read() blocks until there are records (or fails with EAGAIN under
 * O_NONBLOCK); poll() reports EPOLLIN when there are, and EPOLLPRI while some
 * CPU is dropping records it has not reported yet.  A waiting reader is woken
 * from irq_work when a buffer fills past the watermark, and otherwise every
 * wakeup_ms: the probe itself never wakes anybody.
 */

#include <linux/bitops.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include "tcptrace.h"

static struct {
	unsigned long		busy;		/* bit 0: the device is open */
	struct mutex		read_lock;	/* the reader's side of the buffers */
	wait_queue_head_t	wq;
	struct delayed_work	tick;
} tcptrace_dev = {
	.read_lock = __MUTEX_INITIALIZER(tcptrace_dev.read_lock),
	.wq = __WAIT_QUEUE_HEAD_INITIALIZER(tcptrace_dev.wq),
};

/**
 * tcptrace_wake_reader() - wake whoever waits for records
 *
 * Context: irq_work (hard interrupt) or process context.
 */
void tcptrace_wake_reader(void)
{
	wake_up_interruptible(&tcptrace_dev.wq);
}

/**
 * tcptrace_reader_waiting() - is anybody waiting for records?
 *
 * A lockless peek, so it can miss a reader that is just going to sleep; the
 * tick wakes that one.
 *
 * Context: any.
 */
bool tcptrace_reader_waiting(void)
{
	/* No barrier: a missed wake-up costs at most one tick. */
	return waitqueue_active(&tcptrace_dev.wq);
}

/* Bounds how long a trickle of records waits below the watermark. */
static void tcptrace_tick(struct work_struct *work)
{
	if (wq_has_sleeper(&tcptrace_dev.wq) && tcptrace_bufs_readable())
		tcptrace_wake_reader();
	schedule_delayed_work(&tcptrace_dev.tick,
			      msecs_to_jiffies(tcptrace_wakeup_ms));
}

/* open: one reader at a time; the others get EBUSY. */
static int tcptrace_open(struct inode *inode, struct file *file)
{
	if (test_and_set_bit_lock(0, &tcptrace_dev.busy))
		return -EBUSY;
	schedule_delayed_work(&tcptrace_dev.tick,
			      msecs_to_jiffies(tcptrace_wakeup_ms));
	return nonseekable_open(inode, file);
}

/* release: the records stay buffered for the next reader. */
static int tcptrace_release(struct inode *inode, struct file *file)
{
	cancel_delayed_work_sync(&tcptrace_dev.tick);
	clear_bit_unlock(0, &tcptrace_dev.busy);
	return 0;
}

/* read: whole records, oldest first; EINVAL if not even one fits. */
static ssize_t tcptrace_read(struct file *file, char __user *buf,
			     size_t count, loff_t *ppos)
{
	const size_t nr = count / sizeof(struct tcptrace_record);
	ssize_t ret;

	if (!nr)
		return -EINVAL;

	for (;;) {
		if (mutex_lock_interruptible(&tcptrace_dev.read_lock))
			return -ERESTARTSYS;
		ret = tcptrace_bufs_read(buf, nr);
		mutex_unlock(&tcptrace_dev.read_lock);
		if (ret)
			break;
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		ret = wait_event_interruptible(tcptrace_dev.wq,
					       tcptrace_bufs_readable());
		if (ret)
			return ret;
	}
	return ret < 0 ? ret : ret * sizeof(struct tcptrace_record);
}

/* poll: EPOLLIN with records to read, EPOLLPRI while losing some. */
static __poll_t tcptrace_poll(struct file *file, poll_table *wait)
{
	__poll_t mask = 0;

	poll_wait(file, &tcptrace_dev.wq, wait);
	if (tcptrace_bufs_readable())
		mask |= EPOLLIN | EPOLLRDNORM;
	if (tcptrace_bufs_losing())
		mask |= EPOLLPRI;
	return mask;
}

static long tcptrace_ioc_info(struct tcptrace_info __user *uinfo)
{
	struct tcptrace_info info = {
		.abi_version = TCPTRACE_ABI_VERSION,
		.record_size = sizeof(struct tcptrace_record),
		.nr_cpus = nr_cpu_ids,
		.buffer_records = tcptrace_buffer_records,
		.clock = CLOCK_MONOTONIC,
		.hooks = tcptrace_hooks,
	};

	strscpy(info.version, TCPTRACE_VERSION, sizeof(info.version));
	return copy_to_user(uinfo, &info, sizeof(info)) ? -EFAULT : 0;
}

static long tcptrace_ioc_stats(struct tcptrace_stats __user *ustats)
{
	struct tcptrace_cpu_stats st;
	struct tcptrace_stats hdr;
	unsigned int cpu, nr;
	long ret = 0;

	if (copy_from_user(&hdr, ustats, sizeof(hdr)))
		return -EFAULT;
	if (hdr.missed)
		return -EINVAL;

	nr = min(hdr.nr_cpus, nr_cpu_ids);
	if (mutex_lock_interruptible(&tcptrace_dev.read_lock))
		return -ERESTARTSYS;
	for (cpu = 0; cpu < nr; cpu++) {
		memset(&st, 0, sizeof(st));
		if (cpu_possible(cpu))
			tcptrace_buf_stats(cpu, &st);
		if (copy_to_user(&ustats->cpu[cpu], &st, sizeof(st))) {
			ret = -EFAULT;
			break;
		}
	}
	mutex_unlock(&tcptrace_dev.read_lock);

	if (!ret && (put_user(nr_cpu_ids, &ustats->nr_cpus) ||
		     put_user((u32)(tcptrace_tw_missed() + tcptrace_req_missed()),
			      &ustats->missed)))
		ret = -EFAULT;
	return ret;
}

static long tcptrace_ioc_set_filter(const struct tcptrace_filter __user *uf)
{
	struct tcptrace_filter f;

	if (copy_from_user(&f, uf, sizeof(f)))
		return -EFAULT;
	return tcptrace_filter_set(&f);
}

static long tcptrace_ioc_get_filter(struct tcptrace_filter __user *uf)
{
	struct tcptrace_filter f;

	tcptrace_filter_get(&f);
	return copy_to_user(uf, &f, sizeof(f)) ? -EFAULT : 0;
}

static long tcptrace_ioc_clear(void)
{
	if (mutex_lock_interruptible(&tcptrace_dev.read_lock))
		return -ERESTARTSYS;
	tcptrace_bufs_clear();
	mutex_unlock(&tcptrace_dev.read_lock);
	return 0;
}

/* ioctl: TCPTRACE_IOC_*; ENOTTY for anything else. */
static long tcptrace_ioctl(struct file *file, unsigned int cmd,
			   unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case TCPTRACE_IOC_INFO:
		return tcptrace_ioc_info(uarg);
	case TCPTRACE_IOC_STATS:
		return tcptrace_ioc_stats(uarg);
	case TCPTRACE_IOC_GET_FILTER:
		return tcptrace_ioc_get_filter(uarg);
	case TCPTRACE_IOC_SET_FILTER:
		return tcptrace_ioc_set_filter(uarg);
	case TCPTRACE_IOC_CLEAR:
		return tcptrace_ioc_clear();
	default:
		return -ENOTTY;
	}
}

static const struct file_operations tcptrace_fops = {
	.owner		= THIS_MODULE,
	.open		= tcptrace_open,
	.release	= tcptrace_release,
	.read		= tcptrace_read,
	.poll		= tcptrace_poll,
	.unlocked_ioctl	= tcptrace_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

static struct miscdevice tcptrace_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "tcptrace",
	.fops	= &tcptrace_fops,
	.mode	= 0600,
};

/**
 * tcptrace_dev_register() - create /dev/tcptrace
 *
 * Context: process context; may sleep.
 * Return: 0 or the error of misc_register().
 */
int tcptrace_dev_register(void)
{
	int ret;

	INIT_DELAYED_WORK(&tcptrace_dev.tick, tcptrace_tick);
	ret = misc_register(&tcptrace_misc);
	if (ret)
		pr_err("cannot register /dev/%s: %d\n", tcptrace_misc.name, ret);
	return ret;
}

/**
 * tcptrace_dev_unregister() - remove /dev/tcptrace
 *
 * The device cannot be open: an open file holds a reference on the module.
 *
 * Context: process context; may sleep.
 */
void tcptrace_dev_unregister(void)
{
	misc_deregister(&tcptrace_misc);
}
