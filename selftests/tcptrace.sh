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
cycles=${TCPTRACE_CYCLES:-50}
ip=$(command -v /usr/local/bin/ip || command -v ip)
tc=$(command -v /usr/local/bin/tc || command -v tc)
ncpus=$(grep -c ^processor /proc/cpuinfo)
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
	local name=$1 m out rc trouble
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
			reader -D >/dev/null || rc=1
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

# reader ARGS...: tcptrace-read, which exits 3 when records were lost --
# a success where losses are expected and counted.
reader() {
	"$dir/tcptrace-read" "$@"
	rc_r=$?
	[ $rc_r -eq 0 ] || [ $rc_r -eq 3 ]
}

# wait_open PID: until PID has /dev/tcptrace open (10 s at most).
wait_open() {
	i=0
	until ls -l /proc/"$1"/fd 2>/dev/null | grep -q /dev/tcptrace; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 "$1" 2>/dev/null; then
			echo "the reader did not open the device"
			return 1
		fi
		sleep 0.1
	done
}

# Sum of transitions=N in tcpgen's output.
made_by() {
	sed -n 's/.*transitions=\([0-9]*\).*/\1/p' "$1" |
		awk '{ n += $1 } END { print n + 0 }'
}

# Over 100,000 transitions from connections on every CPU, task and softirq
# context mixed, with a reader live: every record checked by the oracle, and
# delivered + lost = produced, exactly.  $@: module parameters.  tcpgen
# counts the tracepoint's transitions: TIME_WAIT, the SYN queue and the
# event records are left out (timewait=0 causes=0 requests=0), or some would
# come and go unpredictably -- a timewait socket of an earlier step expiring,
# a reset.
load_test() {
	load timewait=0 causes=0 requests=0 "$@" || return 1
	live=$(mktemp)
	rest=$(mktemp)
	gen=$(mktemp)
	"$dir/tcptrace-read" --write "$live" &
	reader=$!
	rc=0
	wait_open $reader || rc=1
	"$dir/tcpgen" -t 4 -n 2600 -b 64 >"$gen" || rc=1
	cat "$gen"
	kill -INT $reader
	wait $reader
	st=$?
	[ $st -eq 0 ] || [ $st -eq 3 ] || rc=1
	reader --drain --write "$rest" || rc=1
	"$dir/tcptrace-read" --counters 2>&1 | tail -n 1
	rmmod tcptrace || rc=1
	"$dir/tcpcheck" -c "$ncpus" -e "$(made_by "$gen")" "$live" "$rest" || rc=1
	rm -f "$live" "$rest" "$gen"
	return $rc
}

# rmmod is refused while a reader sleeps in read(); the reader killed in
# its read leaves nothing behind, and rmmod then works.
sleeping_reader() {
	load || return 1
	"$dir/tcptrace-read" >/dev/null &
	reader=$!
	rc=0
	wait_open $reader || rc=1
	grep -q "^State:.*S (sleeping)" /proc/$reader/status || {
		echo "the reader is not asleep"
		rc=1
	}
	if rmmod tcptrace 2>/dev/null; then
		echo "rmmod succeeded under a sleeping reader"
		return 1
	fi
	kill -KILL $reader
	wait $reader 2>/dev/null
	# The device is free again: another reader can open it at once.
	"$dir/tcptrace-read" --drain >/dev/null || rc=1
	rmmod tcptrace || rc=1
	return $rc
}

# A CPU goes offline with records in its buffer: they are still delivered,
# and it records again once it is back.
hotplug() {
	cpu1=/sys/devices/system/cpu/cpu1/online
	if [ ! -w $cpu1 ]; then
		echo "no CPU 1 to take offline"
		return $ksft_skip
	fi
	load timewait=0 causes=0 requests=0 || return 1	# as load_test
	rc=0
	gen=$(mktemp)
	cap=$(mktemp)
	"$dir/tcptrace-read" --drain >/dev/null
	taskset 2 "$dir/tcpgen" -n 50 >"$gen" || rc=1
	echo 0 >$cpu1 || rc=1
	"$dir/tcptrace-read" --drain --write "$cap" || rc=1
	on1=$("$dir/tcptrace-read" --read "$cap" 2>/dev/null | awk '$2 == 1' | wc -l)
	echo "$on1 records from CPU 1 after it went offline"
	[ "$on1" -ge 500 ] || rc=1
	"$dir/tcpcheck" -c "$ncpus" -e "$(made_by "$gen")" "$cap" || rc=1
	echo 1 >$cpu1 || rc=1
	taskset 2 "$dir/tcpgen" -n 10 >"$gen" || rc=1
	"$dir/tcptrace-read" --drain --write "$cap" || rc=1
	on1=$("$dir/tcptrace-read" --read "$cap" 2>/dev/null | awk '$2 == 1' | wc -l)
	echo "$on1 records from CPU 1 once it was back"
	[ "$on1" -ge 100 ] || rc=1
	"$dir/tcpcheck" -c "$ncpus" -e "$(made_by "$gen")" "$cap" || rc=1
	rmmod tcptrace || rc=1
	rm -f "$gen" "$cap"
	return $rc
}

# Two namespaces joined by veth, IPv4 and IPv6, static neighbours (with
# loss, neighbour discovery could fail and connect() say EHOSTUNREACH).
netns_up() {
	$ip netns add tca && $ip netns add tcb &&
	$ip link add va netns tca type veth peer name vb netns tcb &&
	$ip -n tca addr add 10.9.0.1/24 dev va &&
	$ip -n tcb addr add 10.9.0.2/24 dev vb &&
	$ip -n tca addr add fd00:9::1/64 dev va nodad &&
	$ip -n tcb addr add fd00:9::2/64 dev vb nodad &&
	$ip -n tca link set va up && $ip -n tcb link set vb up &&
	$ip -n tca link set lo up && $ip -n tcb link set lo up || return 1
	# One segment a packet, so that loss hits data, not a 64 KB GSO blob.
	$ip -n tca link set va gso_max_segs 1 &&
	$ip -n tcb link set vb gso_max_segs 1 || return 1
	maca=$($ip -n tca link show va | awk '/ether/ { print $2 }')
	macb=$($ip -n tcb link show vb | awk '/ether/ { print $2 }')
	$ip -n tca neigh add 10.9.0.2 lladdr "$macb" dev va nud permanent &&
	$ip -n tcb neigh add 10.9.0.1 lladdr "$maca" dev vb nud permanent &&
	$ip -n tca neigh add fd00:9::2 lladdr "$macb" dev va nud permanent &&
	$ip -n tcb neigh add fd00:9::1 lladdr "$maca" dev vb nud permanent
}

netns_down() {
	$ip netns del tca 2>/dev/null
	$ip netns del tcb 2>/dev/null
}

# netem on both ends of the veth: $@ as for tc netem, or nothing to clear.
path() {
	for end in "tca va" "tcb vb"; do
		set -- "$@"
		# shellcheck disable=SC2086
		$tc -n ${end% *} qdisc del dev ${end#* } root 2>/dev/null
		[ $# -eq 0 ] ||
			$tc -n ${end% *} qdisc add dev ${end#* } root netem "$@"
	done
}

# scenario NAME CHECK TCPSCEN-ARGS...: run tcpscen between the namespaces,
# put its trace through the oracle, then CHECK (a function) on the table.
scenario() {
	local name=$1 check=$2 cap table out src
	shift 2
	cap=$(mktemp)
	table=$(mktemp)
	"$dir/tcptrace-read" --drain >/dev/null
	if ! "$dir/tcpscen" -l -S tcb -C tca "$@"; then
		echo "$name: tcpscen $* failed"
		return 1
	fi
	"$dir/tcptrace-read" --drain --write "$cap" 2>/dev/null
	"$dir/tcptrace-read" --read "$cap" >"$table" 2>/dev/null
	out=$("$dir/tcpcheck" -c "$ncpus" "$cap")
	src=$?
	echo "$name: $out"
	[ $src -eq 0 ] && $check "$table" "$out"
	src=$?
	[ $src -eq 0 ] || cat "$table"
	rm -f "$cap" "$table"
	return $src
}

# Checks on a scenario's table ($1) and oracle summary ($2).
count() {
	grep -c "$2" "$1"
}
retransmitted() {
	case $2 in
	*" 0 retransmits"*) echo "no retransmission at all"; return 1 ;;
	esac
}
# A lossy run: its retransmissions -- as counted at CLOSE, and as events --
# are added up, and judged all together.
lossy() {
	n=$(echo "$2" | sed -n 's/.* \([0-9]*\) retransmits.*/\1/p')
	echo "$((${n:-0} + $(cat "$retrans_sum"))) " >"$retrans_sum"
	n=$(count "$1" ' retransmission$')
	echo "$((${n:-0} + $(cat "$retrans_events"))) " >"$retrans_events"
}
# Both ends pass through CLOSING and TIME_WAIT.
crossed_fins() {
	[ "$(count "$1" 'FIN_WAIT1 *CLOSING')" = 2 ] &&
		[ "$(count "$1" 'CLOSING *TIME_WAIT')" = 2 ]
}
half_closed() {
	[ "$(count "$1" 'FIN_WAIT1 *FIN_WAIT2')" = 1 ] &&
		[ "$(count "$1" 'CLOSE_WAIT *LAST_ACK')" = 1 ]
}
reset() {
	[ "$(count "$1" 'ESTABLISHED *CLOSE ')" = 2 ] &&
		! grep -q FIN_WAIT1 "$1"
}
refused() {
	[ "$(count "$1" 'SYN_SENT *CLOSE ')" = 1 ]
}
timed_out() {
	[ "$(count "$1" 'ESTABLISHED *CLOSE ')" = 2 ] && retransmitted "$@"
}
v4mapped() {
	grep -q '::ffff:10.9.0.1' "$1" && grep -q '10.9.0.1:' "$1"
}
closed_normally() {
	[ "$(count "$1" 'LAST_ACK *CLOSE ')" = 1 ] &&
		[ "$(count "$1" 'FIN_WAIT2 *TIME_WAIT')" = 1 ]
}
# The reset shows as received on one end, sent by the other.
reset_causes() {
	reset "$@" && [ "$(count "$1" 'reset sent')" = 1 ] &&
		[ "$(count "$1" 'reset received')" = 1 ]
}

# Real faults between two namespaces: loss, delay, a vanishing peer,
# resets, refusals, crossing FINs, a half-close; IPv4, IPv6, v4-mapped.
faults() {
	load || return 1
	rc=0
	if ! netns_up; then
		netns_down
		rmmod tcptrace
		return 1
	fi
	path delay 10ms loss 20%
	retrans_sum=$(mktemp)
	retrans_events=$(mktemp)
	echo 0 >"$retrans_sum"
	echo 0 >"$retrans_events"
	for i in 1 2 3; do
		scenario "20% loss, IPv4" lossy -a 10.9.0.2 -d 10 \
			-b 20000 basic || rc=1
	done
	scenario "20% loss, IPv6" lossy -6 -a fd00:9::2 -d 10 \
		-b 20000 basic || rc=1
	# Any one connection may be lucky; four in a row would not be.
	echo "retransmissions over the lossy runs: $(cat "$retrans_sum"), as events: $(cat "$retrans_events")"
	[ "$(cat "$retrans_sum")" -gt 0 ] || rc=1
	# And the retransmissions show where they happened.
	[ "$(cat "$retrans_events")" -gt 0 ] || rc=1
	rm -f "$retrans_sum" "$retrans_events"
	path delay 20ms
	scenario "crossing FINs" crossed_fins -a 10.9.0.2 -d 20 simclose || rc=1
	scenario "half-close" half_closed -a 10.9.0.2 -d 20 halfclose || rc=1
	scenario "IPv6 half-close" half_closed -6 -a fd00:9::2 -d 20 \
		halfclose || rc=1
	scenario "v4-mapped" v4mapped -m -a 10.9.0.2 -d 20 basic || rc=1
	scenario "v4-mapped, closed normally" closed_normally -m \
		-a 10.9.0.2 -d 20 basic || rc=1
	path
	scenario "abort, SO_LINGER 0" reset_causes -a 10.9.0.2 reset || rc=1
	scenario "refused" refused -a 10.9.0.2 refused || rc=1
	scenario "peer vanishes" timed_out -a 10.9.0.2 \
		-x "$tc -n tca qdisc add dev va root netem loss 100%" vanish ||
		rc=1
	netns_down
	rmmod tcptrace || rc=1
	return $rc
}

# The reader against live traffic: its JSON checked against what the
# connections must show, its filters pushed into the module, -w/-r, the
# ladder and --stats (userspace/tests/vm/live-json).
reader_live() {
	if [ ! -x "$dir/live-json" ]; then
		echo "no live-json here"
		return $ksft_skip
	fi
	load || return 1
	"$dir/live-json" "$dir"
	rc=$?
	rmmod tcptrace || rc=1
	return $rc
}

# On a kernel with kmemleak: nothing the tests did leaked.  (Run last; the
# scan before the suite starts marks what was there as reported.)
kmemleak=/sys/kernel/debug/kmemleak
no_leaks() {
	if [ ! -w $kmemleak ]; then
		echo "no kmemleak in this kernel"
		return $ksft_skip
	fi
	# Objects count as leaked only once unreferenced for a scan or two.
	echo scan >$kmemleak
	sleep 6
	echo scan >$kmemleak
	leaks=$(cat $kmemleak)
	if [ -n "$leaks" ]; then
		echo "$leaks"
		return 1
	fi
	echo "kmemleak: no leaks"
}

# The debug build (TCPTRACE_DEBUG=y) tests its ring at load, refusing to
# load if it fails, and measures the record path.
debug_selftest() {
	if [ ! -f "$dir/tcptrace-debug.ko" ]; then
		echo "no debug build here"
		return $ksft_skip
	fi
	m=$(mark)
	insmod "$dir/tcptrace-debug.ko" || return 1
	rmmod tcptrace || return 1
	dmesg | tail -n +"$((m + 1))" | grep 'tcptrace: selftest'
	dmesg | tail -n +"$((m + 1))" | grep -q 'tcptrace: selftest: passed'
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
	if [ ! -e /sys/kernel/btf/vmlinux ]; then
		echo "no BTF in this kernel: tcpstates cannot run"
		return $ksft_skip
	fi
	# Like for like: what the tracepoint shows, as tcpstates sees it.
	load timewait=0 causes=0 requests=0 || return 1
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
	if grep -qi lost "$theirs" || grep -q 'events\? lost on CPU' "$ours"; then
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

[ -w $kmemleak ] && echo clear >$kmemleak
echo "TAP version 13"
echo "1..15"
run "the debug build's self-tests at load" debug_selftest
# Before the harness, whose tests each make and drop a network namespace:
# taking a CPU down while the kernel tears a hundred of them down has
# stalled the TCG guest for minutes (seen twice, cause not found yet).
run "a CPU offline and back while tracing" hotplug
run "tcptrace_test, default buffer" harness
run "tcptrace_test, 32-record buffer, 1 s tick" harness buffer_kb=4 wakeup_ms=1000
run "over 100,000 transitions, a live reader, nothing unaccounted" load_test
run "the same through a 32-record buffer: most lost, all counted" load_test buffer_kb=4
run "rmmod refused under a sleeping reader, which is then killed" sleeping_reader
run "faults between namespaces: loss, delay, RST, refusal, timeout" faults
run "rmmod refused while open" rmmod_while_open
run "bad parameters refused" bad_params
run "buffer larger than memory refused" too_big
run "$cycles load/unload cycles under traffic" cycles
run "the same transitions as libbpf-tools tcpstates" cross_check
run "tcptrace-read against live traffic" reader_live
run "no memory leaked (kmemleak)" no_leaks
echo "# $failed of $nr failed"
[ $failed -eq 0 ]
