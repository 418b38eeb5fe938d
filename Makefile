# SPDX-License-Identifier: GPL-2.0
#
# tcptrace.  The two commands that matter:
#	make demo	boot a VM, load the module, show a traced handshake and close
#	make check	every test: host tests, style, and the selftests in VMs
# Both install what they need with apt-get on a fresh Debian 12 (as root).
#
# For a host of your own:
#	make			the module, for the running kernel (or KDIR=...)
#	make reader		the reader, userspace/build/tcptrace-read

KDIR ?= /lib/modules/$(shell uname -r)/build
# Kernels make check runs the selftests on; debug is scripts/debug-kernel's
# (built once, about 8 minutes here; its run takes about 11).
KVERS ?= 6.1 6.12 debug
KVER ?= 6.12
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo 0.1)

all: module

module:
	$(MAKE) -C $(KDIR) M=$(CURDIR) TCPTRACE_VERSION=$(VERSION) modules

reader:
	$(MAKE) -C userspace

setup:
	vm/setup-host

demo: setup
	scripts/vmtest --demo $(KVER)

# Everything CI runs.  Each part reports; the VM runs go on after a failure
# so one run shows every kernel's verdict.
check: setup
	scripts/check $(KVERS)

# Only the debug kernel (KASAN, UBSAN, lockdep, kmemleak, DEBUG_LIST), or
# only Debian's: make check KVERS="6.1 6.12".
check-debug: setup
	scripts/check debug

style: setup
	scripts/style

bench:
	@echo "make bench: not written yet (see issue 9)" >&2; exit 1

clean:
	rm -rf build
	$(MAKE) -C userspace clean
	$(MAKE) -C selftests KSFT_DIR=none clean
	rm -f module/*.o module/*.ko module/*.mod* module/.*.cmd \
	      module/modules.order .*.cmd Module.symvers modules.order

.PHONY: all module reader setup demo check check-debug style bench clean
