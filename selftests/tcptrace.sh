#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The tcptrace selftests.  Loads the module (TCPTRACE_KO, else tcptrace.ko
# beside this script, else modprobe), runs tcptrace_test against it with the
# default buffer and with the smallest one, then tests the module's own life:
# rmmod refused while the device is open, bad parameters refused, and load
# and unload cycles under a connection loop.  Prints TAP; the exit status is
# 0 only if every test passed.  Needs root.

dir=$(cd "$(dirname "$0")" && pwd)
ko=${TCPTRACE_KO:-$dir/tcptrace.ko}
cycles=${TCPTRACE_CYCLES:-20}
ksft_skip=4
nr=0
failed=0

ok() {
	nr=$((nr + 1))
	echo "ok $nr $1"
}

not_ok() {
	nr=$((nr + 1))
	failed=$((failed + 1))
	echo "not ok $nr $1"
}

# Indented output of a step, as TAP diagnostics.
diag() {
	sed 's/^/# /'
}

load() {
	if [ -f "$ko" ]; then
		insmod "$ko" "$@"
	else
		modprobe tcptrace "$@"
	fi
}

loaded() {
	grep -q '^tcptrace ' /proc/modules
}

# Kernel log lines since mark $1 that show a kernel problem.
kernel_trouble() {
	dmesg | tail -n +"$(($1 + 1))" |
		grep -E 'Oops|BUG:|WARNING:|Call Trace|general protection|refcount_t:|list_(add|del) corruption|lockdep|KASAN|UBSAN'
}

mark() {
	dmesg | wc -l
}

# run NAME CMD...: one TAP line for CMD, failing also on kernel trouble.
run() {
	name=$1
	shift
	m=$(mark)
	out=$(mktemp)
	"$@" >"$out" 2>&1
	rc=$?
	diag <"$out"
	rm -f "$out"
	trouble=$(kernel_trouble "$m")
	if [ -n "$trouble" ]; then
		echo "$trouble" | diag
		not_ok "$name # kernel log shows a problem"
	elif [ $rc -eq $ksft_skip ]; then
		ok "$name # SKIP"
	elif [ $rc -ne 0 ]; then
		not_ok "$name # exit status $rc"
	else
		ok "$name"
	fi
}

harness() {
	load "$@" || return 1
	"$dir/tcptrace_test"
	rc=$?
	rmmod tcptrace || rc=1
	return $rc
}

rmmod_while_open() {
	load || return 1
	exec 3</dev/tcptrace || return 1
	if rmmod tcptrace 2>/dev/null; then
		echo "rmmod succeeded while /dev/tcptrace was open"
		return 1
	fi
	loaded || return 1
	exec 3<&-
	rmmod tcptrace
}

# Each bad parameter must be refused, with a message, and leave nothing.
bad_params() {
	rc=0
	for p in buffer_kb=0 buffer_kb=3 buffer_kb=1048577 watermark_pct=0 \
		 watermark_pct=101 wakeup_ms=0 wakeup_ms=1001; do
		m=$(mark)
		if load "$p" 2>/dev/null; then
			echo "insmod $p succeeded"
			rmmod tcptrace
			rc=1
		elif ! dmesg | tail -n +"$((m + 1))" | grep -q "tcptrace: ${p%%=*}=.* out of range"; then
			echo "insmod $p: no message saying why"
			rc=1
		fi
	done
	loaded && rc=1
	return $rc
}

# A buffer bigger than memory: ENOMEM, a message, and no memory kept.
too_big() {
	before=$(awk '/^VmallocUsed/ { print $2 }' /proc/meminfo)
	m=$(mark)
	if load buffer_kb=1048576 2>/dev/null; then
		echo "a 1 GiB buffer per CPU loaded; this test wants less memory"
		rmmod tcptrace
		return $ksft_skip
	fi
	dmesg | tail -n +"$((m + 1))" | grep -q "tcptrace: cannot allocate" || {
		echo "no message saying why"
		return 1
	}
	after=$(awk '/^VmallocUsed/ { print $2 }' /proc/meminfo)
	echo "VmallocUsed ${before} kB before, ${after} kB after"
	# Allow 1 MiB of unrelated change.
	[ $((after - before)) -lt 1024 ] && ! loaded
}

# Load, read, unload, again and again, while connections come and go.
cycles() {
	genout=$(mktemp)
	"$dir/tcpgen" -t 2 -d 600 >"$genout" 2>&1 &
	gen=$!
	rc=0
	i=0
	while [ $i -lt "$cycles" ]; do
		load || { rc=1; break; }
		if [ -x "$dir/tcptrace-read" ]; then
			"$dir/tcptrace-read" -D >/dev/null || rc=1
		else
			head -c 4096 /dev/tcptrace >/dev/null || rc=1
		fi
		rmmod tcptrace || { rc=1; break; }
		i=$((i + 1))
	done
	kill -TERM $gen
	wait $gen || rc=1
	cat "$genout"
	rm -f "$genout"
	echo "$i load/unload cycles"
	return $rc
}

# Transitions of a table from tcptrace-read or tcpstates, "OLD NEW" a line.
transitions_of() {
	awk '
		/^TIME|^SKADDR/ {
			for (i = 1; i <= NF; i++) {
				if ($i == "OLD" || $i == "OLDSTATE") old = i
				if ($i == "NEW" || $i == "NEWSTATE") new = i
			}
			next
		}
		old && NF >= new { print $old, $new }
	' "$1" | sort | uniq -c
}

# The same connections seen by tcptrace and by libbpf-tools' tcpstates,
# its closest peer, in the same kernel: the same transitions, kind by kind.
cross_check() {
	tcpstates=$(command -v tcpstates || echo /usr/local/bin/tcpstates)
	if [ ! -x "$tcpstates" ]; then
		echo "no tcpstates here"
		return $ksft_skip
	fi
	load || return 1
	theirs=$(mktemp)
	ours=$(mktemp)
	"$tcpstates" >"$theirs" 2>&1 &
	peer=$!
	# Its output is block-buffered: wait for its BPF link instead.
	i=0
	until ls -l /proc/$peer/fd 2>/dev/null | grep -q 'bpf_link\|perf_event'; do
		i=$((i + 1))
		if [ $i -gt 300 ] || ! kill -0 $peer 2>/dev/null; then
			kill -INT $peer 2>/dev/null
			wait $peer
			cat "$theirs"
			echo "tcpstates did not attach"
			rmmod tcptrace
			return 1
		fi
		sleep 0.1
	done
	"$dir/tcptrace-read" --drain >/dev/null
	rc=0
	gen=$(mktemp)
	{
		"$dir/tcpgen" -n 100 -b 100 &&
		"$dir/tcpgen" -6 -n 50 &&
		"$dir/tcpgen" -r -n 50
	} >"$gen" || rc=1
	cat "$gen"
	made=$(sed -n 's/.*transitions=\([0-9]*\).*/\1/p' "$gen" |
	       awk '{ n += $1 } END { print n }')
	rm -f "$gen"
	# tcpstates polls its buffer: give it a moment to take the last ones.
	sleep 1
	kill -INT $peer
	wait $peer
	"$dir/tcptrace-read" --drain >"$ours" 2>&1 || rc=1
	rmmod tcptrace || rc=1
	if grep -qi lost "$theirs" || grep -q ' LOST ' "$ours"; then
		grep -i lost "$theirs" "$ours"
		echo "a tracer lost events: no comparison"
		rc=1
	fi
	transitions_of "$ours" >"$ours.sum"
	transitions_of "$theirs" >"$theirs.sum"
	echo "transitions, tcptrace | tcpstates:"
	paste "$ours.sum" "$theirs.sum"
	total=$(awk '{ n += $1 } END { print n }' "$ours.sum")
	if [ "$total" != "$made" ]; then
		echo "tcptrace saw $total transitions, tcpgen made $made"
		rc=1
	fi
	cmp -s "$ours.sum" "$theirs.sum" || {
		echo "tcptrace and tcpstates disagree"
		rc=1
	}
	rm -f "$ours" "$theirs" "$ours.sum" "$theirs.sum"
	return $rc
}

if [ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP tcptrace selftests need root"
	exit $ksft_skip
fi
if loaded; then
	echo "1..0 # SKIP tcptrace is loaded already; unload it first"
	exit $ksft_skip
fi

echo "TAP version 13"
echo "1..7"
run "tcptrace_test, default buffer" harness
run "tcptrace_test, 32-record buffer, 1 s tick" harness buffer_kb=4 wakeup_ms=1000
run "rmmod refused while open" rmmod_while_open
run "bad parameters refused" bad_params
run "buffer larger than memory refused" too_big
run "$cycles load/unload cycles under traffic" cycles
run "the same transitions as libbpf-tools tcpstates" cross_check
echo "# $failed of $nr failed"
[ $failed -eq 0 ]
