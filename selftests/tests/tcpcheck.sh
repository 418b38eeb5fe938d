#!/bin/bash
# The oracle's own tests, on the host: a real capture passes, and each kind
# of damage to it is caught.  Usage: tests/tcpcheck.sh TCPCHECK_BINARY
set -euo pipefail

check=$1
here=$(cd "$(dirname "$0")" && pwd)
cap=$here/../../userspace/tests/captures/ipv4.cap
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
n=0
failed=0

# patch FILE RECORD OFFSET HEXBYTES: overwrite bytes of one record.
patch() {
	printf "$(sed 's/\(..\)/\\x\1/g' <<<"$4")" |
		dd of="$1" bs=1 seek=$((64 + 128 * $2 + $3)) conv=notrunc status=none
}

# expect NAME WANT_STATUS REGEX CHECK_ARGS...
expect() {
	local name=$1 want=$2 re=$3 out status=0
	shift 3
	n=$((n + 1))
	out=$("$check" "$@" 2>&1) || status=$?
	if [ $status -ne "$want" ] || ! grep -qE -- "$re" <<<"$out"; then
		echo "not ok $n - $name (exit $status)"
		sed 's/^/# /' <<<"$out"
		failed=$((failed + 1))
	else
		echo "ok $n - $name"
	fi
}

# The capture's records: 0 and 12 the listener's; 1, 3, 6, 9, 10 the
# client's; 2 the server's request, then 4, 5, 7, 8, 11 the child's.
expect "a real capture passes" 0 "13 transitions, 0 lost, 0 retransmits, 0 gaps, 0 errors" -c 2 "$cap"
expect "the count it holds is checked" 1 "!= produced 14" -e 14 "$cap"
expect "SYN cookies and their child pass" 0 "12 transitions, 0 lost, 0 retransmits, 0 gaps, 0 errors; 1 events" \
	"$here/../../userspace/tests/captures/syncookie.cap"

cp "$cap" "$work/t"
patch "$work/t" 3 26 08			# SYN_SENT -> CLOSE_WAIT
expect "an impossible transition" 1 "SYN_SENT -> CLOSE_WAIT is not a TCP" "$work/t"

cp "$cap" "$work/t"
patch "$work/t" 5 104 78563412888fffff	# bytes_acked = 0xffff8f8812345678
expect "a kernel address in a record" 1 "looks like a kernel address" "$work/t"

cp "$cap" "$work/t"
patch "$work/t" 9 96 00000000		# rcv_nxt = 0
expect "a sequence number moving back" 1 "sequence space moved back" "$work/t"

cp "$cap" "$work/t"
patch "$work/t" 3 8 07			# cpu 7
expect "a CPU that does not exist" 1 "cpu 7 of 2" -c 2 "$work/t"

cp "$cap" "$work/t"
patch "$work/t" 1 10 09			# type 9
expect "an unknown record type" 1 "type 9" "$work/t"

cp "$cap" "$work/t"
patch "$work/t" 3 27 10			# flags: cause "reset received"
expect "a cause on a plain transition" 1 "cause 1 in a transition SYN_SENT -> ESTABLISHED" "$work/t"

cp "$cap" "$work/t"
patch "$work/t" 3 10 03			# the transition as an event
expect "an event that changes state" 1 "cause 0 in an event SYN_SENT -> ESTABLISHED" "$work/t"

cp "$cap" "$work/t"
patch "$work/t" 3 27 08			# TW_FIN_WAIT2 outside TIME_WAIT
expect "a timewait substate outside TIME_WAIT" 1 "FIN_WAIT2 timewait outside" "$work/t"

cp "$cap" "$work/t"
patch "$work/t" 4 27 73			# the child's birth: a request's timeout
expect "a request's cause on a child" 1 "cause 7 in a transition NEW_SYN_RECV -> SYN_RECV" "$work/t"

cp "$cap" "$work/t"
patch "$work/t" 10 26 06		# FIN_WAIT2 -> TIME_WAIT -> TIME_WAIT
patch "$work/t" 10 25 06
patch "$work/t" 10 27 08		# ... still in the FIN_WAIT2 substate
expect "a timewait socket leaving FIN_WAIT2 with the flag" 1 "FIN_WAIT2 timewait outside" "$work/t"

# Records 3 and 4 (the client's SYN_SENT -> ESTABLISHED and the child's
# birth) gone: the client skips a state.  An error without a loss record.
{ head -c $((64 + 128 * 3)) "$cap"; tail -c +$((64 + 128 * 5 + 1)) "$cap"; } >"$work/t"
expect "a socket skipping a state" 1 "after entering SYN_SENT" "$work/t"

head -c 100 "$cap" >"$work/t"
expect "a partial record" 1 "partial record" "$work/t"

echo "tcpcheck tests: $((n - failed)) passed, $failed failed" >&2
[ $failed -eq 0 ]
