#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Host tests of tcptrace-read: no module, no device.  mkcapture turns each
# tests/fixtures/NAME.txt into WORKDIR/NAME.cap; each case below runs the
# reader and compares what it printed (stdout, stderr) and its exit status
# with tests/expected/CASE.out, exactly.
#
#	run.sh READER MKCAPTURE WORKDIR
#	UPDATE=1 run.sh ...	rewrite tests/expected/ from this run; review
#				the diff before committing it
#
# `make check` runs it on the ASan/UBSan build: a sanitizer report shows as
# a difference on stderr and in the exit status.

set -u

if [ $# -ne 3 ]; then
	echo "usage: $0 READER MKCAPTURE WORKDIR" >&2
	exit 2
fi
tests=$(cd "$(dirname "$0")" && pwd)
reader=$(realpath "$1")
mkcapture=$(realpath "$2")
work=$3
update=${UPDATE:-}

export TZ=UTC LC_ALL=C
export ASAN_OPTIONS=detect_leaks=1:exitcode=66
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:exitcode=67

rm -rf "$work"
mkdir -p "$work" "$tests/expected"
cd "$work" || exit 1

passed=0
failed=0

pass() {
	echo "ok   $1"
	passed=$((passed + 1))
}

fail() {
	echo "FAIL $1${2:+: ${*:2}}"
	failed=$((failed + 1))
}

for fixture in "$tests"/fixtures/*.txt; do
	name=$(basename "$fixture" .txt)
	if ! "$mkcapture" "$fixture" "$name.cap"; then
		fail "mkcapture $name"
	fi
done

# run CASE STATUS ARG...: run the reader with ARGs in WORKDIR, expecting exit
# STATUS and the output in tests/expected/CASE.out.
run() {
	local case=$1 want=$2 status expected=$tests/expected/$1.out
	shift 2

	"$reader" "$@" >"$case.stdout" 2>"$case.stderr" </dev/null
	status=$?
	{
		echo "\$ tcptrace-read $*"
		cat "$case.stdout"
		echo "--- stderr"
		cat "$case.stderr"
		echo "--- exit status $status"
	} >"$case.out"

	if [ -n "$update" ]; then
		cp "$case.out" "$expected"
	fi
	if [ "$status" != "$want" ]; then
		fail "$case" "exit status $status, expected $want"
		cat "$case.stderr"
	elif ! diff -u "$expected" "$case.out"; then
		fail "$case" "output differs from tests/expected/$case.out"
	else
		pass "$case"
	fi
}

# The table: transitions, sequence numbers, addresses, contexts.
run ipv4			0 -r ipv4-loopback.cap
run ipv4-absolute		0 -r ipv4-loopback.cap --absolute
run ipv4-timestamp		0 -r ipv4-loopback.cap -T
run ipv4-count			0 -r ipv4-loopback.cap -c 4
run ipv6			0 -r ipv6.cap
run ipv6-wide			0 -r ipv6.cap -W
run v4mapped			0 -r v4mapped.cap --wide
run refused			0 -r refused.cap
run loss			0 -r loss.cap -T
run odd				0 -r odd.cap

# Capture files: bad ones are refused, naming the file and the offset.
run err-truncated-header	1 -r err-truncated-header.cap
run err-empty			1 -r err-empty.cap
run err-bad-magic		1 -r err-bad-magic.cap
run err-record-size		1 -r err-record-size.cap
run err-format-version		1 -r err-format-version.cap
run err-abi-version		1 -r err-abi-version.cap
run err-big-endian		1 -r err-big-endian.cap
run err-partial-record		1 -r err-partial-record.cap
run err-missing-file		1 -r no-such-file.cap
cp "$tests/fixtures/ipv4-loopback.txt" not-a-capture.txt
run err-not-a-capture		1 -r not-a-capture.txt

# The device path, as far as it goes without the module.
run err-no-device		1 -d no-such-device
run err-not-a-device		1 -d /dev/null
run err-stats-no-device		1 -S -d no-such-device

# Bad usage: exit status 2.
run err-unknown-option		2 -r ipv4-loopback.cap --frobnicate
run err-unknown-short-option	2 -x
run err-count-abc		2 -r ipv4-loopback.cap --count abc
run err-count-zero		2 -r ipv4-loopback.cap -c 0
run err-count-missing		2 -r ipv4-loopback.cap -c
run err-no-value-taken		2 --wide=yes
run err-read-and-device		2 -r ipv4-loopback.cap -d /dev/tcptrace
run err-stats-and-read		2 -S -r ipv4-loopback.cap
run err-argument		2 ipv4-loopback.cap
run err-write-over-read		1 -r ipv4-loopback.cap -w ./ipv4-loopback.cap

# -w writes the header and records it read: copying a capture through the
# reader gives the same bytes, header included; -c copies a prefix.
copy() {
	local case=$1 expected_bytes=$2 out status
	shift 2

	"$reader" "$@" 2>"$case.stderr"
	status=$?
	out=${*: -1}
	if [ "$status" != 0 ]; then
		fail "$case" "exit status $status"
		cat "$case.stderr"
	elif ! cmp -n "$expected_bytes" "$out" ipv4-loopback.cap ||
	     [ "$(stat -c %s "$out")" != "$expected_bytes" ]; then
		fail "$case" "$out is not the first $expected_bytes bytes" \
			"of ipv4-loopback.cap"
	else
		pass "$case"
	fi
}
copy write-copy	$((64 + 12 * 128)) -r ipv4-loopback.cap -w copy.cap
copy write-count $((64 + 3 * 128)) -r ipv4-loopback.cap -c 3 -w count.cap
run write-count-read		0 -r count.cap

run help			0 --help

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
