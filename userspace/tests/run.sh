#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Host tests of tcptrace-read: no module is ever loaded.  mkcapture turns
# each tests/fixtures/NAME.txt into WORKDIR/NAME.cap; each case runs the
# reader and compares what it printed (stdout, stderr) and its exit status
# with tests/expected/CASE.out, exactly.  The device is played by
# tests/fakedev.c (LD_PRELOAD), which serves a capture's records as the
# module would, applying the filter pushed down to it; its log of what the
# reader asked for is part of the expected output.
#
#	run.sh READER MKCAPTURE FAKEDEV WORKDIR
#	UPDATE=1 run.sh ...	rewrite tests/expected/ from this run; review
#				the diff before committing it
#
# Real captures recorded in a VM (tcptrace-read -w) go in tests/captures/:
# each NAME.cap there is checked in every format against
# tests/expected/capture-NAME-*.out, and drawn (--svg) against
# tests/expected/capture-NAME-svg.svg; add one, run with UPDATE=1, review.
# Pictures are also checked with xmllint and rsvg-convert, and their
# numbers against the JSON lines; UPDATE=1 also redraws the README's
# Documentation/images/handshake-ipv4.svg.
#
# `make check` runs this on the ASan/UBSan build: a sanitizer report shows
# as a difference on stderr and in the exit status.

set -u

if [ $# -ne 4 ]; then
	echo "usage: $0 READER MKCAPTURE FAKEDEV WORKDIR" >&2
	exit 2
fi
tests=$(cd "$(dirname "$0")" && pwd)
reader=$(realpath "$1")
mkcapture=$(realpath "$2")
fakedev=$(realpath "$3")
work=$4
update=${UPDATE:-}
manpage=$tests/../tcptrace-read.8
fake_path=/dev/tcptrace-fake

export TZ=UTC LC_ALL=C
export ASAN_OPTIONS=detect_leaks=1:exitcode=66
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:exitcode=67

rm -rf "$work"
mkdir -p "$work" "$tests/expected"
work=$(realpath "$work")
cd "$work" || exit 1

passed=0
failed=0
declare -A used

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

# compare CASE [EXT]: WORKDIR/CASE.EXT (EXT: out by default) against
# tests/expected/CASE.EXT (or $expected_dir/CASE.EXT); 0 if equal.
expected_dir=$tests/expected
compare() {
	local file=$1.${2:-out}
	local expected=$expected_dir/$file

	used[$file]=1
	if [ -n "$update" ]; then
		cp "$file" "$expected"
	fi
	if [ ! -f "$expected" ]; then
		echo "no tests/expected/$file: run 'make check UPDATE=1' and review it"
		return 1
	fi
	diff -u "$expected" "$file"
}

# verdict CASE WANT STATUS: pass or fail on the status and the output.
verdict() {
	if [ "$2" != - ] && [ "$3" != "$2" ]; then
		fail "$1" "exit status $3, expected $2"
		cat "$1.stderr"
		compare "$1" >/dev/null
	elif ! compare "$1"; then
		fail "$1" "output differs from tests/expected/$1.out"
	else
		pass "$1"
	fi
}

# run CASE STATUS ARG...: run the reader with ARGs in WORKDIR, expecting exit
# STATUS (- for whatever the expected output says) and the output in
# tests/expected/CASE.out.
run() {
	local case=$1 want=$2 status
	shift 2

	"$reader" "$@" >"$case.stdout" 2>"$case.stderr" <"${RUN_STDIN:-/dev/null}"
	status=$?
	{
		echo "\$ tcptrace-read${*:+ $*}${RUN_STDIN:+ <$RUN_STDIN}"
		cat "$case.stdout"
		echo "--- stderr"
		cat "$case.stderr"
		echo "--- exit status $status"
	} >"$case.out"
	verdict "$case" "$want" "$status"
}

# fake CASE STATUS [VAR=VALUE]... -- ARG...: run the reader on the fake
# device (-d $fake_path), with FAKEDEV_VARs set; the device's log is shown.
fake() {
	local case=$1 want=$2 status
	local -a vars=()
	shift 2
	while [ "$1" != -- ]; do
		vars+=("FAKEDEV_$1")
		shift
	done
	shift

	rm -f "$case.log"
	env ASAN_OPTIONS="$ASAN_OPTIONS:verify_asan_link_order=0" \
		LD_PRELOAD="$fakedev" FAKEDEV_PATH="$fake_path" \
		FAKEDEV_LOG="$work/$case.log" "${vars[@]}" \
		"$reader" -d "$fake_path" "$@" \
		>"$case.stdout" 2>"$case.stderr" </dev/null
	status=$?
	{
		echo "\$ ${vars[*]}${vars[*]:+ }tcptrace-read -d $fake_path${*:+ $*}"
		cat "$case.stdout"
		echo "--- stderr"
		cat "$case.stderr"
		echo "--- exit status $status"
		echo "--- device"
		cat "$case.log" 2>/dev/null
	} >"$case.out"
	verdict "$case" "$want" "$status"
}

# same CASE CAPTURE ARG...: the device serving CAPTURE and -r CAPTURE must
# print the same, with a filter pushed down or not; the device's run is
# kept as tests/expected/CASE.out, to show what went down.
same() {
	local case=$1 cap=$2
	shift 2

	fake "$case" - CAPTURE="$cap" -- "$@"
	"$reader" -r "$cap" "$@" >"$case.read.stdout" 2>"$case.read.stderr" \
		</dev/null
	if ! diff -u "$case.read.stdout" "$case.stdout"; then
		fail "$case-same" "the device and -r $cap differ"
	else
		pass "$case-same"
	fi
}

# copy CASE BYTES ARG...: the reader's -w output (the last ARG) must be the
# first BYTES of ipv4-loopback.cap, header included.
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

# The runner itself: a golden test fails when the output changes.
if [ -z "$update" ]; then
	mkdir -p selftest
	echo "what was expected" >selftest/runner-selftest.out
	echo "what came out" >runner-selftest.out
	if (expected_dir=$work/selftest; compare runner-selftest >/dev/null); then
		fail "runner-selftest" "compare() accepts a changed output"
	else
		pass "runner-selftest"
	fi
	unset "used[runner-selftest.out]"
fi

# The table: transitions, sequence numbers, addresses, contexts, MS.
run ipv4			0 -r ipv4-loopback.cap
run ipv4-absolute		0 -r ipv4-loopback.cap --absolute
run ipv4-timestamp		0 -r ipv4-loopback.cap -T
run ipv4-count			0 -r ipv4-loopback.cap -c 4
run ipv6			0 -r ipv6.cap
run ipv6-wide			0 -r ipv6.cap -W
run ipv6-loopback		0 -r ipv6-loopback.cap --wide
run v4mapped			0 -r v4mapped.cap --wide
run refused			0 -r refused.cap
run loss			3 -r loss.cap -T
run odd				1 -r odd.cap
run mix				0 -r mix.cap -W
RUN_STDIN=ipv4-loopback.cap run stdin 0 -r - -c 2

# Ladders: both ends paired, one end alone, each way a connection ends.
run ladder-ipv4			0 -r ipv4-loopback.cap --ladder
run ladder-ipv4-absolute	0 -r ipv4-loopback.cap -L --absolute
run ladder-ipv4-timestamp	0 -r ipv4-loopback.cap -L -T
run ladder-ipv4-count		0 -r ipv4-loopback.cap -L -c 7
run ladder-ipv6			0 -r ipv6-loopback.cap -L
run ladder-ipv6-open		0 -r ipv6.cap -L
run ladder-v4mapped		0 -r v4mapped.cap -L
run ladder-refused		0 -r refused.cap -L
run ladder-simultaneous		0 -r simultaneous.cap -L
run ladder-halfclose		0 -r halfclose.cap -L
run ladder-reset		0 -r reset.cap -L
run ladder-timewait		0 -r timewait.cap -L
run ladder-remote		0 -r remote.cap -L
run ladder-loss			3 -r loss.cap -L
run ladder-mix			0 -r mix.cap -L
run ladder-odd			1 -r odd.cap -L

# JSON lines and CSV.
run json-ipv4			0 -r ipv4-loopback.cap --json
run json-loss			3 -r loss.cap -j
run json-odd			1 -r odd.cap -j
run json-mix			0 -r mix.cap -j
run csv-ipv4			0 -r ipv4-loopback.cap --csv
run csv-loss			3 -r loss.cap --csv
run csv-odd			1 -r odd.cap --csv

# What the module's hooks add: event records and TIME_WAIT with its cause.
run table-events		0 -r events.cap
run json-events			0 -r events.cap -j
run csv-events			0 -r events.cap --csv
run ladder-events		0 -r events.cap -L
run table-timewait		0 -r timewait.cap
run json-timewait		0 -r timewait.cap -j
run stats-events		0 -r events.cap -S

# Every JSON line must parse, every CSV row have the header's fields.
check_json() {
	local file=$1.stdout
	if command -v jq >/dev/null; then
		jq -e . "$file" >/dev/null
	elif command -v python3 >/dev/null; then
		python3 -c 'import json, sys
for line in sys.stdin: json.loads(line)' <"$file"
	else
		echo "SKIP json-parses: neither jq nor python3"
		return 0
	fi
}
for c in json-ipv4 json-loss json-odd json-mix; do
	if check_json "$c"; then
		pass "$c-parses"
	else
		fail "$c-parses" "not valid JSON lines"
	fi
done
if command -v python3 >/dev/null; then
	for c in csv-ipv4 csv-loss csv-odd; do
		if python3 -c 'import csv, sys
rows = list(csv.reader(sys.stdin))
assert rows and all(len(r) == len(rows[0]) for r in rows), "ragged"' \
			<"$c.stdout"; then
			pass "$c-parses"
		else
			fail "$c-parses" "rows do not match the header"
		fi
	done
fi

# Statistics.
run stats-mix			0 -r mix.cap --stats
run stats-halfclose		0 -r halfclose.cap -S
run stats-loss			3 -r loss.cap -S

# Filters, on a capture: each selects a different part of mix.cap.
touch not-a-netns
run filter-ipv4			0 -r mix.cap -4
run filter-ipv6			0 -r mix.cap --ipv6 -W
run filter-port			0 -r mix.cap --port 8080
run filter-port-list		0 -r mix.cap --port 22,9000-9100 -W
run filter-lport		0 -r mix.cap --lport 8080
run filter-rport		0 -r mix.cap --rport 443 -W
run filter-state		0 -r mix.cap --state CLOSE_WAIT
run filter-old-state		0 -r mix.cap --old-state syn_sent -W
run filter-new-state		0 -r mix.cap --new-state CLOSE -W
run filter-old-and-new		0 -r mix.cap --old-state ESTABLISHED --new-state CLOSE
run filter-netns		0 -r mix.cap -N 4026532500 -W
run filter-netns-file		0 -r mix.cap --netns ./not-a-netns
run filter-addr			0 -r mix.cap --addr 127.0.0.0/8
run filter-raddr		0 -r mix.cap --raddr 198.51.100.0/24,fd00::/8 -W
run filter-laddr-v4mapped	0 -r mix.cap --laddr 192.0.2.10 -W
run filter-addr-v6-form		0 -r mix.cap --addr ::ffff:192.0.2.0/120 -W
run filter-pid			0 -r mix.cap --pid 701
run filter-tid			0 -r mix.cap -p 1105 -W
run filter-comm			0 -r mix.cap --comm curl,ssh
run filter-sock			0 -r mix.cap --sock 1002,0x1003
run filter-combined		0 -r mix.cap -4 --port 8080 --new-state ESTABLISHED
run filter-ladder		0 -r mix.cap --port 8080 -L
run filter-json			0 -r mix.cap -j --comm curl
run filter-stats		0 -r mix.cap -S --port 8080
run filter-count		0 -r mix.cap --port 8080 -c 2
"$reader" -r mix.cap --port 8080 -w filtered.cap 2>/dev/null
run filter-write-read		0 -r filtered.cap

# Bad filters and options: a clear message, exit status 2.
ports65=$(seq -s, 1 65)
run err-port-range		2 -r mix.cap --port 70000
run err-port-reversed		2 -r mix.cap --port 10-5
run err-port-word		2 -r mix.cap --port http
run err-port-empty-item		2 -r mix.cap --port 1,,2
run err-port-empty		2 -r mix.cap --port ''
run err-port-too-many		2 -r mix.cap --port "$ports65"
run err-state			2 -r mix.cap --state SYN_RCVD
run err-cidr-prefix		2 -r mix.cap --addr 10.0.0.0/33
run err-cidr-addr		2 -r mix.cap --raddr example.com
run err-pid-zero		2 -r mix.cap --pid 0
run err-pid-word		2 -r mix.cap --pid init
run err-sock			2 -r mix.cap --sock xyz
run err-netns-zero		2 -r mix.cap --netns 0
run err-netns-missing		2 -r mix.cap --netns /no/such/ns
run err-uid			2 -r mix.cap --uid 1000
run err-cgroup			2 -r mix.cap --cgroup /sys/fs/cgroup/user.slice
run err-family-both		2 -r mix.cap -4 -6
run err-duration-word		2 --duration soon
run err-duration-zero		2 --duration 0
run err-duration-read		2 -r mix.cap --duration 5
run err-drain-duration		2 -D --duration 5
run err-two-formats		2 -r mix.cap -j --csv
run err-wide-json		2 -r mix.cap -W -j
run err-timestamp-csv		2 -r mix.cap -T --csv
run err-absolute-stats		2 -r mix.cap --absolute -S
run err-counters-and-read	2 --counters -r mix.cap
run err-write-and-ladder	2 -r mix.cap -w x.cap -L

# Capture files: bad ones are refused, naming the file and the offset.
run err-truncated-header	1 -r err-truncated-header.cap
run err-empty			1 -r err-empty.cap
run err-bad-magic		1 -r err-bad-magic.cap
run err-record-size		1 -r err-record-size.cap
run err-format-version		1 -r err-format-version.cap
run err-abi-version		1 -r err-abi-version.cap
run err-big-endian		1 -r err-big-endian.cap
run err-partial-record		1 -r err-partial-record.cap
run err-partial-record-json	1 -r err-partial-record.cap -j
run err-missing-file		1 -r no-such-file.cap
cp "$tests/fixtures/ipv4-loopback.txt" not-a-capture.txt
run err-not-a-capture		1 -r not-a-capture.txt

# The device, as far as it goes without the module.
run err-no-device		1 -d no-such-device
run err-not-a-device		1 -d /dev/null
run err-counters-no-device	1 --counters -d no-such-device

# The device, played by fakedev.so: follow until Ctrl-C, --count,
# --duration, --drain, the counters, and the filter pushed down.
same dev-follow			ipv4-loopback.cap
same dev-ladder			mix.cap -L
fake dev-stats			0 CAPTURE=mix.cap -- -S --port 8080
fake dev-count			0 CAPTURE=mix.cap -- -c 3
fake dev-count-filtered		0 CAPTURE=mix.cap -- --pid 701 -c 2
fake dev-duration		0 CAPTURE=ipv4-loopback.cap AT_END=block -- --duration 0.2
fake dev-drain			0 CAPTURE=ipv4-loopback.cap -- --drain
fake dev-loss			3 CAPTURE=loss.cap --
fake dev-counters		0 CAPTURE=mix.cap -- --counters
fake dev-old-filter		0 CAPTURE=ipv4-loopback.cap OLD_FILTER=1 -- -D -c 1
same dev-push-port		mix.cap --port 8080,8081-8090,22
same dev-push-lport-rport	mix.cap --lport 40000 --rport 8080
same dev-push-state		mix.cap --state CLOSE_WAIT,LAST_ACK
same dev-push-old-state		mix.cap --old-state ESTABLISHED
same dev-push-new-state		mix.cap --new-state CLOSE
same dev-push-old-and-new	mix.cap --old-state ESTABLISHED --new-state CLOSE
same dev-push-family-netns	mix.cap -6 --netns 4026532500
same dev-push-userspace-only	mix.cap --addr 127.0.0.0/8 --comm curl --sock 1002
same dev-push-many-ranges	mix.cap --port 1,3,5,7,9,11,13,15,17,8080
same dev-push-merged-ranges	mix.cap --port 1-5,3-10,11,8080,8079,20-30,40,50,60,70,80
fake dev-write			0 CAPTURE=ipv4-loopback.cap -- -w dev.cap
if cmp -s -i 64 dev.cap ipv4-loopback.cap &&
   [ "$(stat -c %s dev.cap)" = "$(stat -c %s ipv4-loopback.cap)" ]; then
	pass "dev-write-records"
else
	fail "dev-write-records" "-w on the device did not save the records"
fi
fake err-dev-busy		1 OPEN_ERRNO=EBUSY --
fake err-dev-access		1 OPEN_ERRNO=EACCES --
fake err-dev-nxio		1 OPEN_ERRNO=ENXIO --
fake err-dev-not-loaded		1 OPEN_ERRNO=ENOENT --
fake err-dev-no-node		1 OPEN_ERRNO=ENOENT MODULE_LOADED=1 --
fake err-dev-abi		1 ABI=2 --
fake err-dev-record-size	1 RECORD_SIZE=96 --
fake err-dev-not-tcptrace	1 NOT_TCPTRACE=1 --
fake err-dev-set-filter		1 SET_FILTER_ERRNO=EINVAL -- --port 80

# -w writes the header and records it read: copying a capture through the
# reader gives the same bytes, header included; -c copies a prefix.
copy write-copy	$((64 + 12 * 128)) -r ipv4-loopback.cap -w copy.cap
copy write-count $((64 + 3 * 128)) -r ipv4-loopback.cap -c 3 -w count.cap
"$reader" -r ipv4-loopback.cap -w - >stdout.cap 2>/dev/null
if cmp -s stdout.cap ipv4-loopback.cap; then
	pass "write-stdout-bytes"
else
	fail "write-stdout-bytes" "-w - did not write the capture"
fi
run write-count-read		0 -r count.cap
run err-write-over-read		1 -r ipv4-loopback.cap -w ./ipv4-loopback.cap

# Real captures from a VM: every format, whatever they hold.
for cap in "$tests"/captures/*.cap; do
	[ -e "$cap" ] || continue
	name=capture-$(basename "$cap" .cap)
	ln -sf "$cap" "$name.cap"
	run "$name-table"	- -r "$name.cap" -W
	run "$name-ladder"	- -r "$name.cap" -L
	run "$name-json"	- -r "$name.cap" -j
	run "$name-stats"	- -r "$name.cap" -S
done

# tests/vm/check-json, the VM's checker of JSON from live traffic: it
# passes what Linux really does (the captures) and the fixtures, and fails
# when a number, a transition or the schema is off.
checker=$tests/vm/check-json
# check CASE FILE ARG...: check-json ARG... FILE must pass.
check() {
	local case=$1 file=$2
	shift 2
	if "$checker" "$@" "$file" >"$case.check" 2>&1; then
		pass "$case"
	else
		fail "$case" "check-json $* $file"
		cat "$case.check"
	fi
}
# check_fails CASE FILE ARG...: it must fail, and say why.
check_fails() {
	local case=$1 file=$2
	shift 2
	if "$checker" "$@" "$file" >"$case.check" 2>&1 ||
	   ! grep -q FAIL "$case.check"; then
		fail "$case" "check-json $* accepts $file"
	else
		pass "$case"
	fi
}
# What each capture of scripts/guest-captures holds; one that is not
# listed is checked against the schema and the invariants alone.
# The server's request (LISTEN -> NEW_SYN_RECV) is one transition more;
# SYN cookies queue none.
declare -A capture_checks=(
	[ipv4]="-c 1 -b 100 -C -t 13" [ipv6]="-c 1 -b 100 -C -t 13"
	[v4mapped]="-c 1 -b 100 -C -t 13" [serverclose]="-c 1 -b 100 -S"
	[simclose]="-c 1 -b 100 -M" [halfclose]="-c 1 -C" [reset]="-c 1 -R"
	[refused]="-c 0 -r 1" [loss]="-l" [orphan]="-c 1 -b 100 -C -t 14"
	[syncookie]="-c 1 -b 100 -C -t 12" [finlate]="-c 1 -b 100 -C -t 13"
)
for cap in "$tests"/captures/*.cap; do
	[ -e "$cap" ] || continue
	name=$(basename "$cap" .cap)
	# shellcheck disable=SC2086
	check "check-json-capture-$name" "capture-$name-json.stdout" \
		${capture_checks[$name]:-}
done
for f in ipv4-loopback:"-c 1 -C -t 12" ipv6-loopback:"-c 1 -S" \
	 simultaneous:"-c 1 -M -b 0" halfclose:"-c 1 -C" reset:"-c 1 -R" \
	 mix:"-c 1" refused:"-r 3" loss:"-l"; do
	"$reader" -r "${f%%:*}.cap" -j >"${f%%:*}.json" 2>/dev/null
	# shellcheck disable=SC2086
	check "check-json-${f%%:*}" "${f%%:*}.json" ${f#*:}
done
sed 's/\("old":"ESTABLISHED","new":"CLOSE_WAIT".*\)"rcv_nxt":1007/\1"rcv_nxt":1008/' \
	ipv4-loopback.json >bad-fin.json
grep -v '"old":"FIN_WAIT1","new":"FIN_WAIT2"' ipv4-loopback.json >bad-chain.json
sed '3s/"in_old_ns"/"in_old"/' ipv4-loopback.json >bad-schema.json
sed '5s/"in_old_ns":[0-9]*/"in_old_ns":7/' ipv4-loopback.json >bad-in-old.json
sed '3s/"snd_una_rel":"x+1"/"snd_una_rel":"x+2"/' ipv4-loopback.json >bad-rel.json
check_fails check-json-bad-fin		bad-fin.json
check_fails check-json-bad-chain	bad-chain.json
check_fails check-json-bad-schema	bad-schema.json
check_fails check-json-bad-in-old	bad-in-old.json
check_fails check-json-bad-rel		bad-rel.json
check_fails check-json-bad-closer	ipv4-loopback.json -S
check_fails check-json-bad-count	ipv4-loopback.json -c 2
check_fails check-json-bad-bytes	ipv4-loopback.json -b 6
check_fails check-json-bad-loss		loss.json

# Pictures (--svg): each is compared with tests/expected/CASE.svg byte for
# byte, must be well-formed XML (xmllint) and must render (rsvg-convert).
svg_tools=1
for tool in xmllint:libxml2-utils rsvg-convert:librsvg2-bin; do
	if ! command -v "${tool%%:*}" >/dev/null; then
		fail "svg-tools" "no ${tool%%:*}: apt-get install ${tool#*:}" \
			"(vm/setup-host installs it)"
		svg_tools=
	fi
done

# svg_valid FILE: well-formed, and rendered to a PNG.
svg_valid() {
	[ -n "$svg_tools" ] || return 0
	if xmllint --noout "$1" 2>"$1.xmllint"; then
		pass "$1-xml"
	else
		fail "$1-xml" "$(cat "$1.xmllint")"
	fi
	if rsvg-convert -o "${1%.svg}.png" "$1" 2>"$1.rsvg" &&
	   [ -s "${1%.svg}.png" ] && [ ! -s "$1.rsvg" ]; then
		pass "$1-render"
	else
		fail "$1-render" "rsvg-convert: $(cat "$1.rsvg")"
	fi
}

# svg CASE STATUS ARG...: run the reader with ARG... --svg CASE.svg; what
# it printed is CASE.out, its picture CASE.svg, both compared exactly.
svg() {
	local case=$1 want=$2
	shift 2

	rm -f "$case.svg"
	run "$case" "$want" "$@" --svg "$case.svg"
	if [ ! -f "$case.svg" ]; then
		fail "$case.svg" "no picture written"
		return
	fi
	if compare "$case" svg; then
		pass "$case.svg"
	else
		fail "$case.svg" "differs from tests/expected/$case.svg"
	fi
	svg_valid "$case.svg"
}

# no_file CASE STATUS FILE ARG...: the reader fails with STATUS and leaves
# FILE as it was (absent, or holding "before"), with no temporary file.
no_file() {
	local case=$1 want=$2 file=$3
	shift 3

	run "$case" "$want" "$@"
	if [ -e "$file" ] && [ "$(cat "$file")" != before ]; then
		fail "$case-no-file" "$file was written"
	elif ls "$file".* >/dev/null 2>&1; then
		fail "$case-no-file" "a temporary file is left: $(ls "$file".*)"
	else
		pass "$case-no-file"
	fi
}

# Every real capture, relative; the IPv4 one also --absolute and -T.
for cap in "$tests"/captures/*.cap; do
	[ -e "$cap" ] || continue
	name=capture-$(basename "$cap" .cap)
	svg "$name-svg"		- -r "$name.cap" -L
done
svg capture-ipv4-svg-absolute	0 -r capture-ipv4.cap -L --absolute
svg capture-ipv4-svg-timestamp	0 -r capture-ipv4.cap -L -T
# Fixtures: TIME_WAIT recorded, 60 s of it, with a SYN and a FIN
# retransmitted; a connect() that timed out; a peer that is not traced.
svg ladder-timewait-svg		0 -r timewait.cap -L
svg ladder-refused-svg		0 -r refused.cap -L --connection 4003
svg ladder-remote-svg		0 -r remote.cap -L --connection 7003
svg stats-mix-svg		0 -r mix.cap -S

# The choice of the connection: by either socket, by the 4-tuple either
# way round, or by default give the same picture; - is standard output.
for c in 2 0x1001 127.0.0.1:32792,127.0.0.1:35089 \
	 127.0.0.1:35089,127.0.0.1:32792; do
	rm -f chosen.svg
	"$reader" -r capture-ipv4.cap -L --svg chosen.svg --connection "$c" \
		2>/dev/null
	if cmp -s chosen.svg capture-ipv4-svg.svg; then
		pass "svg-connection-$c"
	else
		fail "svg-connection-$c" "--connection $c does not draw the" \
			"connection of capture-ipv4.cap"
	fi
done
"$reader" -r capture-ipv6.cap -L --svg - \
	--connection '[::1]:48542,[::1]:36233' >stdout.svg 2>/dev/null
if cmp -s stdout.svg capture-ipv6-svg.svg; then
	pass "svg-stdout"
else
	fail "svg-stdout" "--svg - did not write the picture"
fi

# --svg-all: a picture per ladder that -L prints, each valid.
rm -rf all && mkdir all
run svg-all-mix			0 -r mix.cap -L --svg-all all
n=$(grep -c '^===' ladder-mix.stdout)
if [ "$(find all -name 'ladder-*.svg' | wc -l)" = "$n" ] &&
   [ "$(find all -type f | wc -l)" = "$n" ]; then
	pass "svg-all-count"
else
	fail "svg-all-count" "expected $n pictures in all/: $(ls all)"
fi
for f in all/*.svg; do
	svg_valid "$f"
done

# Bad combinations, paths and connections: exit status 2, nothing written.
run err-svg-no-format		2 -r mix.cap --svg x.svg
run err-svg-json		2 -r mix.cap -j --svg x.svg
run err-svg-all-stats		2 -r mix.cap -S --svg-all .
run err-svg-and-svg-all		2 -r mix.cap -L --svg x.svg --svg-all .
run err-connection-alone	2 -r mix.cap -L --connection 1002
run err-connection-all		2 -r mix.cap -L --svg-all . --connection 1002
run err-connection-bad		2 -r mix.cap -L --svg x.svg --connection 1.2.3.4:80
run err-connection-port		2 -r mix.cap -L --svg x.svg --connection 1.2.3.4:0,5.6.7.8:9
run err-svg-absolute-stats	2 -r mix.cap -S --svg x.svg --absolute
run err-svg-counters		2 --counters --svg x.svg
run err-svg-no-dir		2 -r mix.cap -L --svg no-such-dir/x.svg
run err-svg-is-dir		2 -r mix.cap -L --svg .
run err-svg-all-not-dir		2 -r mix.cap -L --svg-all mix.cap
run err-svg-over-capture	2 -r ipv4-loopback.cap -L --svg ./ipv4-loopback.cap
no_file err-svg-unknown-sock	2 x.svg -r capture-ipv4.cap -L --svg x.svg --connection 999
no_file err-svg-unknown-tuple	2 x.svg -r capture-ipv4.cap -L --svg x.svg --connection 127.0.0.1:1,127.0.0.1:2
run err-svg-no-connection	1 -r refused.cap --old-state LISTEN -L --svg x.svg

# A truncated or corrupt capture: an error, and no picture, not even part
# of one; a picture already there stays as it was.
head -c $((64 + 5 * 128 + 50)) capture-ipv4.cap >truncated.cap
no_file err-svg-truncated	1 x.svg -r truncated.cap -L --svg x.svg
no_file err-svg-partial-record	1 x.svg -r err-partial-record.cap -L --svg x.svg
no_file err-svg-truncated-header 1 x.svg -r err-truncated-header.cap -L --svg x.svg
no_file err-svg-corrupt		1 x.svg -r odd.cap -L --svg x.svg
no_file err-svg-stats-truncated	1 x.svg -r truncated.cap -S --svg x.svg
echo before >x.svg
no_file err-svg-keeps-old	1 x.svg -r truncated.cap -L --svg x.svg
rm -f x.svg
rm -rf none && mkdir none
run err-svg-all-truncated	1 -r truncated.cap -L --svg-all none
if [ -z "$(ls -A none)" ]; then
	pass "err-svg-all-truncated-no-file"
else
	fail "err-svg-all-truncated-no-file" "left in none/: $(ls -A none)"
fi

# The numbers on the arrows are the ones the records imply, derived here
# from the JSON lines, independently of the reader's ladder: x from the
# server's rcv_nxt when it became ESTABLISHED, y from the client's; each
# FIN from the rcv_nxt of the transition that received it (u+1, w+1 are
# those rcv_nxt), u being the FIN of the end that entered FIN_WAIT1 first;
# the data before it from the bytes_received of its receiver; each state's
# duration from the in_old_ns of the transition that left it.
svg_expect() {
	awk -v mode="$2" '
	function get(k,   re, v) {
		re = "\"" k "\":"
		if (!match($0, re "(\"[^\"]*\"|[^,}]*)"))
			return ""
		v = substr($0, RSTART + length(re), RLENGTH - length(re))
		gsub(/"/, "", v)
		return v
	}
	# mawk prints numbers over 2^31 wrongly with %d, or as 4.29497e+09.
	function n(v) { return sprintf("%.0f", v) }
	function mod(v) { return (v % 4294967296 + 4294967296) % 4294967296 }
	function peer(s) { return s == client ? server : client }
	function dur(ns) {
		if (ns < 1000000000)
			return sprintf("%d.%03d ms", int(ns / 1000000),
				       int(ns / 1000) % 1000)
		return sprintf("%d.%03d s", int(ns / 1000000000),
			       int(ns / 1000000) % 1000)
	}
	/"type":"transition"/ {
		s = get("sock"); o = get("old"); to = get("new")
		if (o == "SYN_SENT")
			client = s
		if (o == "SYN_RECV")
			server = s
		if (o == "SYN_SENT" && to == "ESTABLISHED")
			y = mod(get("rcv_nxt") - 1)
		if (o == "SYN_RECV" && to == "ESTABLISHED")
			x = mod(get("rcv_nxt") - 1)
		if (o == "SYN_SENT" && to == "CLOSE") {
			x = get("snd_una")
			refused = 1
		}
		if (to == "FIN_WAIT1" && first == "")
			first = s
		# FIN_WAIT2 -> TIME_WAIT in the FIN_WAIT2 substate (flag 8)
		# came before the FIN of the peer.
		if ((o == "ESTABLISHED" && to == "CLOSE_WAIT") ||
		    (o == "FIN_WAIT1" && to == "CLOSING") ||
		    (o == "FIN_WAIT2" && to == "CLOSE") ||
		    (o == "FIN_WAIT2" && to == "TIME_WAIT" &&
		     int(get("flags") / 8) % 2 == 0))
			fin[peer(s)] = mod(get("rcv_nxt") - 1)
		if (o == "ESTABLISHED" && to == "CLOSE_WAIT")
			data = get("bytes_received") - 1
		if (o == "ESTABLISHED" && to == "CLOSE" && get("ctx") == "task")
			reset = 1
		if (o != "LISTEN" && get("in_old_ns") != "null")
			durs[++nd] = o " " dur(get("in_old_ns") + 0)
	}
	END {
		second = peer(first)
		if (mode == "durations") {
			for (i = 1; i <= nd; i++)
				print durs[i]
			exit
		}
		if (mode == "legend") {
			if (refused) {
				print "x = " n(x) " (initial sequence number)"
				exit
			}
			printf "x = %s, y = %s (initial sequence numbers)", n(x),
			       n(y)
			if (first != "")
				printf "; u = %s+%s, w = %s+%s (FINs)",
				       first == client ? "x" : "y",
				       n(mod(fin[first] - (first == client ? x : y))),
				       second == client ? "x" : "y",
				       n(mod(fin[second] - (second == client ? x : y)))
			printf "\n"
			exit
		}
		abs = mode == "absolute"
		print "SYN seq=" (abs ? n(x) : "x")
		if (refused) {
			print "RST"
			exit
		}
		print "SYN,ACK seq=" (abs ? n(y) : "y") " ack=" \
		      (abs ? n(mod(x + 1)) : "x+1")
		print "ACK ack=" (abs ? n(mod(y + 1)) : "y+1")
		if (reset)
			print "RST"
		if (first == "")
			exit
		base = first == client ? x : y
		sym = first == client ? "x" : "y"
		if (data != "")
			print n(data) " bytes " \
			      (abs ? n(mod(base + 1)) : sym "+1") ".." \
			      (abs ? n(mod(base + data)) : sym "+" n(data))
		print "FIN seq=" (abs ? n(fin[first]) : "u")
		print "ACK ack=" (abs ? n(mod(fin[first] + 1)) : "u+1")
		print "FIN seq=" (abs ? n(fin[second]) : "w")
		print "ACK ack=" (abs ? n(mod(fin[second] + 1)) : "w+1")
	}' "$1"
}
# What a picture says: the arrows' labels, the legend, the states' boxes.
svg_says() {
	case $2 in
	labels)
		sed -n 's/.*<text[^>]*class="seg [a-z]*">\([^<]*\)<\/text>.*/\1/p' "$1" |
			sed 's/, [0-9]* retransmissions*$//' ;;
	legend)
		sed -n 's/.*<text[^>]*class="legend">\([^<]*\)<\/text>.*/\1/p' "$1" ;;
	durations)
		sed -n 's/.*class="st">\([^<]*\)<\/text>$/\1/p; s/.*class="dur">\([^<]*\)<\/text>$/\1/p' "$1" |
			paste -d' ' - - ;;
	esac
}
for name in ipv4 ipv6 v4mapped serverclose simclose halfclose reset \
	    refused; do
	[ -e "$tests/captures/$name.cap" ] || continue
	json=capture-$name-json.stdout
	"$reader" -r "capture-$name.cap" -L --absolute \
		--svg "capture-$name-abs.svg" 2>/dev/null
	bad=
	for mode in relative absolute; do
		pic=capture-$name-svg.svg
		[ "$mode" = absolute ] && pic=capture-$name-abs.svg
		svg_says "$pic" labels >"$name-$mode.labels"
		while read -r label; do
			grep -Fxq -- "$label" "$name-$mode.labels" ||
				bad="$bad; no '$label' ($mode)"
		done < <(svg_expect "$json" "$mode")
	done
	[ "$(svg_says "capture-$name-svg.svg" legend)" = \
	  "$(svg_expect "$json" legend)" ] ||
		bad="$bad; legend '$(svg_says "capture-$name-svg.svg" legend)', expected '$(svg_expect "$json" legend)'"
	svg_says "capture-$name-svg.svg" durations >"$name.durations"
	while read -r d; do
		grep -Fxq -- "$d" "$name.durations" ||
			bad="$bad; no box '$d'"
	done < <(svg_expect "$json" durations)
	if [ -n "$bad" ]; then
		fail "svg-numbers-$name" "${bad#; }"
	else
		pass "svg-numbers-$name"
	fi
done
# ... and the check would catch a wrong number.
sed 's/ack=u+1</ack=u+2</' capture-ipv4-svg.svg >wrong.svg
if svg_says wrong.svg labels | grep -Fxq 'ACK ack=u+1'; then
	fail "svg-numbers-selftest" "a wrong ack goes unseen"
else
	pass "svg-numbers-selftest"
fi

# The picture in README.md is the reader's, for the capture it names.
readme_svg=$tests/../../Documentation/images/handshake-ipv4.svg
"$reader" -r "$tests/captures/ipv4.cap" -L --svg readme.svg 2>/dev/null
if [ -n "$update" ]; then
	mkdir -p "$(dirname "$readme_svg")"
	cp readme.svg "$readme_svg"
fi
if cmp -s readme.svg "$readme_svg"; then
	pass "readme-svg"
else
	fail "readme-svg" "Documentation/images/handshake-ipv4.svg is not what" \
		"-r userspace/tests/captures/ipv4.cap -L --svg draws (UPDATE=1)"
fi
# ... and so is the table of records beside it.
"$reader" -r "$tests/captures/ipv4.cap" >readme-table.txt 2>readme-table.err
cat readme-table.err >>readme-table.txt
awk '/^<!-- the reader.s output for userspace\/tests\/captures\/ipv4\.cap/ {
	on = 1
	next
}
on && /^```/ {
	if (block)
		exit
	block = 1
	next
}
block' "$tests/../../README.md" >readme-block.txt
if [ -s readme-block.txt ] && cmp -s readme-block.txt readme-table.txt; then
	pass "readme-table"
else
	diff -u readme-table.txt readme-block.txt
	fail "readme-table" "the table in README.md is not what" \
		"-r userspace/tests/captures/ipv4.cap prints"
fi

# Usage.
run err-unknown-option		2 -r ipv4-loopback.cap --frobnicate
run err-unknown-short-option	2 -x
run err-count-abc		2 -r ipv4-loopback.cap --count abc
run err-count-zero		2 -r ipv4-loopback.cap -c 0
run err-count-missing		2 -r ipv4-loopback.cap -c
run err-no-value-taken		2 --wide=yes
run err-read-and-device		2 -r ipv4-loopback.cap -d /dev/tcptrace
run err-argument		2 ipv4-loopback.cap
run help			0 --help
run version			0 --version

# The manual: it renders without a warning, and names every long option
# that --help does.
if command -v man >/dev/null && [ -f "$manpage" ]; then
	warnings=$(MANWIDTH=80 man --warnings -l "$manpage" 2>&1 >/dev/null)
	if [ -n "$warnings" ]; then
		fail "man-warnings" "$warnings"
	else
		pass "man-warnings"
	fi
else
	echo "SKIP man-warnings: no man(1)"
fi
missing=
while read -r opt; do
	grep -q -- "${opt//-/\\\\-}" "$manpage" || missing="$missing $opt"
done < <(grep -o -- '--[a-z][a-z0-9-]*' help.stdout | sort -u)
if [ -n "$missing" ]; then
	fail "man-options" "tcptrace-read.8 lacks$missing"
else
	pass "man-options"
fi

# The manual's ladder is the reader's, for the same capture.
sed -n '/^\.ft CR$/,/^\.ft$/p' "$manpage" | sed '1d;$d' |
	sed 's/^\\&//; s/\\-/-/g; s/\\e/\\/g' >man-ladder.txt
if [ -s man-ladder.txt ] && cmp -s man-ladder.txt ladder-ipv4.stdout; then
	pass "man-ladder"
else
	diff -u ladder-ipv4.stdout man-ladder.txt
	fail "man-ladder" "the ladder in tcptrace-read.8 is not what" \
		"-r ipv4-loopback.cap -L prints"
fi

# No expected output left that no case produced.
for f in "$tests"/expected/*.out "$tests"/expected/*.svg; do
	[ -e "$f" ] || continue
	[ -n "${used[$(basename "$f")]:-}" ] && continue
	if [ -n "$update" ]; then
		rm "$f"
		echo "removed stale $(basename "$f")"
	else
		fail "stale" "tests/expected/$(basename "$f") is not produced by any case"
	fi
done

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
