# Turtles — nested-hypervisor hosting.  Plain GNU make + pkg-config.
#
#   make            build build/turtled, build/turtlectl, build/libhvcore.a, build/libapi.a
#   make deps       install every Debian package needed to build, test and run
#   make check      install what is missing (make deps), build and run every test tier
#   make check SANITIZE=1   the same with ASan+UBSan (objects under build/sanitize)
#   make check TSAN=1       unit and integration tiers under ThreadSanitizer (build/tsan)
#   make check-long         the long tests (LONG_TESTS: crash storm, host-VM suites), not run by CI
#   make check-layers       the include arrows and "libvirt only in hvcore" (part of check)
#   make bench      every benchmark in tests/bench/ (figures and ratios, no assertions;
#                   docs/benchmarks.md); one or some: make bench BENCHES="upload scale"
#   make deb        the Debian packages turtled and turtlectl, in build/deb/ (lintian-clean)
#   make format | format-check | install | clean | l1-image | demo

VERSION  = 0.1.0
PREFIX  ?= /usr/local
DESTDIR ?=
# turtled reads /etc/turtles/turtled.conf whatever PREFIX is; systemd looks
# for units, sysusers.d and tmpfiles.d where its pkg-config file says
# (Debian 12: /lib/systemd/system, /usr/lib/sysusers.d, /usr/lib/tmpfiles.d).
# Deferred, like pkg_cflags below: make deps may install pkg-config first.
SYSCONFDIR     ?= /etc
SYSTEMDUNITDIR ?= $(or $(shell pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null),/lib/systemd/system)
SYSUSERSDIR    ?= $(or $(shell pkg-config --variable=sysusersdir systemd 2>/dev/null),/usr/lib/sysusers.d)
TMPFILESDIR    ?= $(or $(shell pkg-config --variable=tmpfilesdir systemd 2>/dev/null),/usr/lib/tmpfiles.d)
CC      ?= cc
CFLAGS  ?= -O2 -g
SANITIZE ?= 0
TSAN    ?= 0
ifeq ($(SANITIZE)$(TSAN),11)
$(error SANITIZE=1 and TSAN=1 cannot be combined: ASan and TSan exclude each other)
endif
# Test tiers run by `make check`; CI's sanitizer runs narrow this.  The
# system tier boots QEMU guests, the hostvm tier host VMs (a real KVM host
# under TCG, tests/lib/hostvm.sh): too slow under TSan, so not its default.
ifeq ($(TSAN),1)
TIERS   ?= unit integration
else
TIERS   ?= unit integration system hostvm
endif

# TSAN_SHIM: tests/tsan/glib-annotations.c, linked into every TSan program so
# that TSan sees the happens-before edges of GLib's futex-based locks (see
# docs/testing.md).  TSAN_ENV: every process a test starts inherits it; a
# report fails the test (exit code 66, and the scripts grep turtled's log).
TSAN_SHIM =
TSAN_ENV  =
ifeq ($(SANITIZE),1)
BUILD   ?= build/sanitize
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else ifeq ($(TSAN),1)
BUILD   ?= build/tsan
# -O1 (after CFLAGS, so it wins) keeps reports' stacks readable.
SANFLAGS = -fsanitize=thread -fno-omit-frame-pointer -O1 -g
TSAN_SHIM = $(BUILD)/obj/tests/tsan/glib-annotations.o
TSAN_ENV  = TSAN_OPTIONS="halt_on_error=0 exitcode=66 second_deadlock_stack=1 history_size=4 \
  suppressions=$(CURDIR)/tests/tsan.supp $(TSAN_OPTIONS)"
else
BUILD   ?= build
SANFLAGS =
endif

WARN = -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes

# Deferred (=) on purpose: `make deps check` parses this file before deps
# installs the libraries, so pkg-config must run when a recipe needs it.
PKG_HVCORE = glib-2.0 gobject-2.0 gio-2.0 libvirt libvirt-glib-1.0 libvirt-gconfig-1.0 libxml-2.0 json-c libisofs-1
PKG_API    = glib-2.0 json-c
PKG_DAEMON = $(PKG_HVCORE) json-c libmicrohttpd gnutls sqlite3 libsystemd
PKG_CLI    = glib-2.0 json-c libcurl yaml-0.1
pkg_cflags = $(shell pkg-config --cflags $(1))
pkg_libs   = $(shell pkg-config --libs $(1))

# CPPFLAGS, CFLAGS and LDFLAGS come from the environment too (dpkg-buildflags:
# -D_FORTIFY_SOURCE=2, -fstack-protector-strong, -Wl,-z,relro ...).
BASE_CFLAGS = -std=c11 -D_GNU_SOURCE -DTURTLES_VERSION='"$(VERSION)"' -I. $(CPPFLAGS) $(WARN) $(CFLAGS) $(SANFLAGS)
BASE_LDFLAGS = $(LDFLAGS) $(SANFLAGS)

HVCORE_SRC = $(wildcard hvcore/*.c)
API_SRC    = $(wildcard api/*.c)
DAEMON_SRC = $(wildcard daemon/*.c)
CLI_SRC    = $(wildcard cli/*.c)
UNIT_SRC   = $(wildcard tests/unit/test-*.c)
TOOL_SRC   = $(wildcard tests/tools/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

HVCORE_LIB = $(BUILD)/libhvcore.a
API_LIB    = $(BUILD)/libapi.a
# The daemon's modules but main, so unit tests can link them.
DAEMON_LIB = $(BUILD)/libturtled.a
# turtlectl's modules but main, for the unit tests of the CLI's own.
CLI_LIB    = $(BUILD)/libturtlectl.a
TURTLED    = $(BUILD)/turtled
TURTLECTL  = $(BUILD)/turtlectl
UNIT_BINS  = $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRC))
TOOL_BINS  = $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(TOOL_SRC))

.PHONY: all deps check check-tiers check-long check-long-tests check-layers bench bench-run test-bins unit-bins format format-check \
  install deb clean l1-image hostvm-image demo
.DEFAULT_GOAL := all
# Keep objects: they are intermediates of the pattern rules.
.SECONDARY:

all: $(TURTLED) $(TURTLECTL) $(HVCORE_LIB) $(API_LIB)

# Per-folder flags give each folder only its own libraries' -I paths and
# defines.  They cannot enforce the dependency arrows on their own: libvirt,
# SQLite and libmicrohttpd install their headers in the default include
# path, where every folder can reach them.  tests/lib/check-layers (make
# check-layers, run by make check) checks the arrows on the sources.
$(BUILD)/obj/hvcore/%.o: hvcore/%.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(call pkg_cflags,$(PKG_HVCORE)) -MMD -MP -c $< -o $@
$(BUILD)/obj/api/%.o: api/%.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(call pkg_cflags,$(PKG_API)) -MMD -MP -c $< -o $@
$(BUILD)/obj/daemon/%.o: daemon/%.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(call pkg_cflags,$(PKG_DAEMON)) -MMD -MP -c $< -o $@
$(BUILD)/obj/cli/%.o: cli/%.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(call pkg_cflags,$(PKG_CLI)) -MMD -MP -c $< -o $@
$(BUILD)/obj/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(call pkg_cflags,$(PKG_DAEMON) $(PKG_CLI)) -MMD -MP -c $< -o $@

$(HVCORE_LIB): $(call obj,$(HVCORE_SRC))
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^
$(API_LIB): $(call obj,$(API_SRC))
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(DAEMON_LIB): $(call obj,$(filter-out daemon/main.c,$(DAEMON_SRC)))
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(CLI_LIB): $(call obj,$(filter-out cli/main.c,$(CLI_SRC)))
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(TURTLED): $(BUILD)/obj/daemon/main.o $(DAEMON_LIB) $(HVCORE_LIB) $(API_LIB) $(TSAN_SHIM)
	$(CC) $(BASE_LDFLAGS) -o $@ $^ $(call pkg_libs,$(PKG_DAEMON))
$(TURTLECTL): $(BUILD)/obj/cli/main.o $(CLI_LIB) $(API_LIB) $(TSAN_SHIM)
	$(CC) $(BASE_LDFLAGS) -o $@ $^ $(call pkg_libs,$(PKG_CLI))

# Every unit test and test tool links all libraries; the linker takes what it needs.
$(BUILD)/tests/unit/%: $(BUILD)/obj/tests/unit/%.o $(CLI_LIB) $(DAEMON_LIB) $(HVCORE_LIB) $(API_LIB) $(TSAN_SHIM)
	@mkdir -p $(@D)
	$(CC) $(BASE_LDFLAGS) -o $@ $^ $(call pkg_libs,$(PKG_DAEMON) $(PKG_CLI))
$(BUILD)/tests/tools/%: $(BUILD)/obj/tests/tools/%.o $(DAEMON_LIB) $(HVCORE_LIB) $(API_LIB) $(TSAN_SHIM)
	@mkdir -p $(@D)
	$(CC) $(BASE_LDFLAGS) -o $@ $^ $(call pkg_libs,$(PKG_DAEMON) $(PKG_CLI))

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

include hvcore/guest/guest.mk

# Host VMs (tests/lib/hostvm.sh): the reference kernel with an initrd and
# modules of its own, from the same kernel package (cached by l1-image).
HOSTVM_DIR    = $(BUILD)/hostvm
HOSTVM_INITRD = $(HOSTVM_DIR)/initrd.img
hostvm-image: $(HOSTVM_INITRD)
$(HOSTVM_INITRD): tests/lib/build-hostvm-image tests/lib/hostvm-init $(L1_KERNEL) $(L1_INITRD)
	tests/lib/build-hostvm-image $(HOSTVM_DIR) $(L1_DIR) tests/lib/hostvm-init
include tests/fuzz/fuzz.mk

# ---- tests ---------------------------------------------------------------

test-bins: all $(UNIT_BINS) $(TOOL_BINS)
# The unit tier alone (the package build runs it).
unit-bins: $(UNIT_BINS)

UNIT_TESTS        = $(UNIT_BINS)
INTEGRATION_TESTS = $(sort $(wildcard tests/integration/*.t))
SYSTEM_TESTS      = $(sort $(wildcard tests/system/*.t))
HOSTVM_TESTS      = $(sort $(wildcard tests/hostvm/*.t))

# check installs what is missing first.  deps must finish before anything
# is built, even under -j, so the tiers run in a make of their own (the
# command line's variables, SANITIZE=1 TIERS=..., reach it through MAKEFLAGS).
check: deps
	$(MAKE) check-tiers

check-tiers: format-check check-layers test-bins $(if $(filter system,$(TIERS)),l1-image) \
  $(if $(filter hostvm,$(TIERS)),hostvm-image)
	TURTLES_BUILD=$(BUILD) $(TSAN_ENV) prove --exec tests/lib/run-test --timer \
	  $(if $(filter unit,$(TIERS)),$(UNIT_TESTS)) \
	  $(if $(filter integration,$(TIERS)),$(INTEGRATION_TESTS)) \
	  $(if $(filter system,$(TIERS)),$(SYSTEM_TESTS)) \
	  $(if $(filter hostvm,$(TIERS)),$(HOSTVM_TESTS))

# Long tests: no .t suffix, so the globs above leave them to check-long:
# the crash storm, and the host-VM tier's long part (the stack suites on
# the kvm backend, two host VMs as source and peer).  migrate-kvm.long is
# run by hand for now: the host VM's own kernel panics during it in 3 of 5
# runs (QEMU 7.2's emulated SVM, below turtled; docs/testing.md).
LONG_TESTS = tests/system/crash-storm tests/system/cancel-storm $(sort $(wildcard tests/system/*.long)) \
  $(sort $(filter-out tests/hostvm/migrate-kvm.long,$(wildcard tests/hostvm/*.long)))

check-long: deps
	$(MAKE) check-long-tests

check-long-tests: test-bins l1-image hostvm-image
	TURTLES_BUILD=$(BUILD) prove --exec tests/lib/run-test --timer $(LONG_TESTS)

# ---- benchmarks ------------------------------------------------------------

# Each prints its figures and ratios and asserts nothing about speed; run on a
# quiet machine.  Order: the quick API ones first, the VM ones last.
BENCHES ?= api-throughput upload provision migrate scale nested-exits

bench: deps
	$(MAKE) bench-run

bench-run: test-bins l1-image
	@status=0; for b in $(BENCHES); do \
	    [ -x tests/bench/$$b ] || { echo "bench: no tests/bench/$$b" >&2; status=1; continue; }; \
	    echo "==== tests/bench/$$b"; \
	    TURTLES_BUILD=$(BUILD) tests/bench/$$b || { echo "bench: $$b failed" >&2; status=1; }; \
	done; exit $$status

# ---- housekeeping ----------------------------------------------------------

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)

format:
	clang-format -i $(FORMAT_FILES)

check-layers:
	@tests/lib/check-layers

format-check:
	@clang-format --dry-run -Werror $(FORMAT_FILES) && echo "format-check: ok"

deps:
	@packaging/deps.sh
	@packaging/deps-npm.sh

# Debian's paths with PREFIX=/usr (debian/rules does that).  The unit's
# ExecStart follows PREFIX.  The config file is installed only where none is
# (make install never overwrites an operator's configuration; the package
# ships it as a conffile, so dpkg asks on upgrades instead).
install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin \
	  $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/turtles \
	  $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions \
	  $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d \
	  $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) \
	  $(DESTDIR)$(SYSCONFDIR)/turtles
	install -m 0755 $(TURTLED) $(DESTDIR)$(PREFIX)/sbin/turtled
	install -m 0755 $(TURTLECTL) $(DESTDIR)$(PREFIX)/bin/turtlectl
	install -m 0644 docs/turtled.8 $(DESTDIR)$(PREFIX)/share/man/man8/turtled.8
	install -m 0644 docs/turtlectl.1 $(DESTDIR)$(PREFIX)/share/man/man1/turtlectl.1
	install -m 0644 packaging/turtlectl.bash-completion \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions/turtlectl
	install -m 0644 packaging/turtlectl.zsh-completion \
	  $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_turtlectl
	install -m 0644 packaging/turtlectl.fish \
	  $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/turtlectl.fish
	install -m 0644 api/openapi.yaml $(DESTDIR)$(PREFIX)/share/turtles/openapi.yaml
	sed 's|/usr/sbin/turtled|$(PREFIX)/sbin/turtled|' packaging/turtled.service \
	  >$(DESTDIR)$(SYSTEMDUNITDIR)/turtled.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/turtled.service
	install -m 0644 packaging/turtled.socket $(DESTDIR)$(SYSTEMDUNITDIR)/turtled.socket
	install -m 0644 packaging/turtled.sysusers $(DESTDIR)$(SYSUSERSDIR)/turtled.conf
	install -m 0644 packaging/turtled.tmpfiles $(DESTDIR)$(TMPFILESDIR)/turtled.conf
	[ -e $(DESTDIR)$(SYSCONFDIR)/turtles/turtled.conf ] || \
	  install -m 0644 packaging/turtled.conf.example $(DESTDIR)$(SYSCONFDIR)/turtles/turtled.conf

# The Debian packages, built in a copy of the sources (what git tracks plus
# what is new and not ignored) under build/deb/src, so that dpkg-buildpackage
# writes its .deb, .changes and .buildinfo into build/deb/ instead of the
# checkout's parent, and never touches this checkout's build/.
# Only the Debian packages of make deps: the package build needs no npm.
DEB_DIR = build/deb
deb:
	@packaging/deps.sh
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/src
	git ls-files -z --cached --others --exclude-standard | \
	  tar --null -T - --no-recursion --ignore-failed-read -cf - | tar -xf - -C $(DEB_DIR)/src
	cd $(DEB_DIR)/src && dpkg-buildpackage -b -us -uc -jauto
	@# Any lintian error or warning fails the build (overrides carry their reason).
	lintian --fail-on error,warning $(DEB_DIR)/*.changes
	@ls $(DEB_DIR)/*.deb

# The main job end to end (tests/demo/demo): a private libvirt host, turtled,
# a tenant, the reference L1 uploaded, a stack, READY and L2 heartbeats on
# its console, then cleanup.  Installs and builds what it needs first.
demo: deps
	$(MAKE) all l1-image
	TURTLES_SRCDIR=. TURTLES_BUILD=$(BUILD) tests/demo/demo

clean:
	rm -rf build
