# SPDX-License-Identifier: GPL-2.0
#
# tcptrace.  The two commands that matter:
#	make demo	boot a VM, load the module, show a traced handshake and close
#	make check	every test: host tests, style, and the selftests in VMs
# Both install what they need with apt-get on a fresh Debian 12 (as root).
#
# For a host of your own (Documentation/admin-guide.rst):
#	make			the module, for the running kernel (or KDIR=...)
#	make reader		the reader, userspace/build/tcptrace-read
#	make install		the module (then depmod), the reader, its manual,
#				the udev rule and the systemd unit; DESTDIR=,
#				PREFIX= (default /usr/local) and the *DIR
#				variables below place them
#	make uninstall		removes what make install installed
#	make dkms-install	the sources and dkms.conf into
#				$(DKMSDIR), for dkms add/build/install

KDIR ?= /lib/modules/$(shell uname -r)/build
# Kernels make check runs the selftests on; debug is scripts/debug-kernel's
# (built once, about 8 minutes here; its run takes about 11).
KVERS ?= 6.1 6.12 debug
KVER ?= 6.12
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo 0.1)

# Where make install puts things.  The kernel release is KDIR's (Debian's
# 6.1 headers say 6.1.N in kernel.release; utsrelease.h has the real one).
KREL ?= $(or $(shell sed -n 's/^\#define UTS_RELEASE "\(.*\)"$$/\1/p' \
		$(KDIR)/include/generated/utsrelease.h 2>/dev/null),$(shell uname -r))
PREFIX ?= /usr/local
BINDIR := $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
MODDIR ?= /lib/modules/$(KREL)/extra
UDEVRULESDIR ?= /usr/lib/udev/rules.d
SYSTEMDUNITDIR ?= /usr/lib/systemd/system
DKMSDIR ?= /usr/src/tcptrace-$(VERSION)
DEPMOD ?= depmod

all: module

module:
	$(MAKE) -C $(KDIR) M=$(CURDIR) TCPTRACE_VERSION=$(VERSION) modules

reader:
	$(MAKE) -C userspace

# Installed with install(1), not the kernel's modules_install: that one
# signs with a key only the kernel's builder has (and says so), and on
# Debian's 6.1 headers picks the wrong release.  DKMS signs for Secure Boot.
install: module reader
	install -D -m 0644 module/tcptrace.ko $(DESTDIR)$(MODDIR)/tcptrace.ko
	$(MAKE) -C userspace install DESTDIR=$(DESTDIR) PREFIX=$(PREFIX) \
		MANDIR=$(MANDIR)
	install -D -m 0644 packaging/udev/60-tcptrace.rules \
		$(DESTDIR)$(UDEVRULESDIR)/60-tcptrace.rules
	@mkdir -p $(DESTDIR)$(SYSTEMDUNITDIR)
	sed 's|@BINDIR@|$(BINDIR)|g' packaging/systemd/tcptrace-read.service \
		>$(DESTDIR)$(SYSTEMDUNITDIR)/tcptrace-read.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/tcptrace-read.service
	$(tcptrace_depmod)

uninstall:
	rm -f $(DESTDIR)$(MODDIR)/tcptrace.ko \
	      $(DESTDIR)$(BINDIR)/tcptrace-read \
	      $(DESTDIR)$(MANDIR)/man8/tcptrace-read.8 \
	      $(DESTDIR)$(UDEVRULESDIR)/60-tcptrace.rules \
	      $(DESTDIR)$(SYSTEMDUNITDIR)/tcptrace-read.service
	$(tcptrace_depmod)

# depmod for the kernel installed to; a staging DESTDIR is left to its
# package (whose postinst runs depmod).
tcptrace_depmod = @if [ -z "$(DESTDIR)" ]; then \
		echo "$(DEPMOD) -a $(KREL)"; $(DEPMOD) -a $(KREL); \
	else \
		echo "depmod not run for DESTDIR=$(DESTDIR)"; \
	fi

# What dkms builds: the module's sources, with dkms.conf stamped with VERSION.
DKMS_FILES := Makefile Kbuild include/uapi/linux/tcptrace.h module/Kbuild \
	      $(wildcard module/*.c module/*.h)

dkms-install:
	@set -e; for f in $(DKMS_FILES); do \
		install -D -m 0644 $$f $(DESTDIR)$(DKMSDIR)/$$f; \
	done
	sed 's|@VERSION@|$(VERSION)|' dkms.conf >$(DESTDIR)$(DKMSDIR)/dkms.conf
	@echo "then: dkms add tcptrace/$(VERSION) &&" \
		"dkms build tcptrace/$(VERSION) && dkms install tcptrace/$(VERSION)"

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

# tcptrace's cost beside tcpstates and ftrace, in one VM (Documentation/
# performance.rst); KVER=6.1 for the other kernel.  Reports, never judges.
bench: setup
	bench/run $(KVER)

clean:
	rm -rf build
	$(MAKE) -C userspace clean
	$(MAKE) -C selftests KSFT_DIR=none clean
	rm -f module/*.o module/*.ko module/*.mod* module/.*.cmd \
	      module/modules.order .*.cmd Module.symvers modules.order

.PHONY: all module reader install uninstall dkms-install setup demo check \
	check-debug style bench clean
