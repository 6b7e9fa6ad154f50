# Toro for Swift: one entry point for both builds.
#   make run     build the VMM (release) and the images, boot the default example (WebServer;
#                as root: it creates TAP toro0 at 10.0.0.1/24, then `curl http://10.0.0.2/`)
#   make test    build everything, run the unit and integration tests
#   make stress  the integration tests ROUNDS times (default 10) with every host core busy
#   make images  build every image under Examples/ and Tests/Guests/ into .build/images/
#   make bench   every benchmark (release build): boot, idle cost, idle cases, wake-up latency, HTTP,
#                and the 10-minute soak; on a kvm_pvm host each of the first five measures native and
#                emulated mode side by side
#   make bench-soak  WebServer under wrk for SOAK_SECONDS (default 600), its RSS sampled throughout
#   make fuzz    libFuzzer on the ELF loader, the virtio device model, the kernel's packet parsers and
#                stack, the HTTP parser and session (scripts/fuzz.sh; FUZZ_SECONDS, FUZZ_RUNS, FUZZ_TARGETS)

# The Swift toolchain: `swift` on PATH if there is one, else the one installed at
# /opt/swift. Its bin directory goes first on PATH for every recipe, so that the
# scripts and the tests find its other tools (swiftc, clang, ld.lld,
# swift-demangle) in a shell that never put the toolchain on PATH.
# (A `swift` reached through a symbolic link, such as /usr/bin/swift, stands for
# the toolchain directory it links to.)
SWIFT ?= $(or $(shell command -v swift 2>/dev/null),/opt/swift/usr/bin/swift)
SWIFT := $(SWIFT)
TOOLCHAIN_BIN := $(patsubst %/,%,$(dir $(or $(realpath $(shell command -v $(SWIFT) 2>/dev/null)),$(SWIFT))))
export PATH := $(TOOLCHAIN_BIN):$(PATH)
export TORO_TOOLCHAIN ?= $(TOOLCHAIN_BIN)
RELEASE_FLAGS := -c release --static-swift-stdlib
VMM_RELEASE := .build/release/toro-vmm
DEFAULT_IMAGE ?= WebServer
CPUS ?= 2

.PHONY: all build release images run test unit-test integration-test stress fuzz bench bench-boot bench-idle bench-idlecases bench-latency bench-http bench-soak clean

all: build images

build:
	$(SWIFT) build

release:
	$(SWIFT) build $(RELEASE_FLAGS)

images:
	scripts/build-images.sh

run: release images
	scripts/run-example.sh $(DEFAULT_IMAGE) $(CPUS)

# The tests run last, through scripts/run-tests.sh, so that a run's last lines
# are its summary: the failed tests and their errors, or one line of counts.
test: build images
	scripts/install-test-deps.sh
	scripts/check-softfloat.sh
	SWIFT=$(SWIFT) scripts/run-tests.sh

unit-test: build
	SWIFT=$(SWIFT) scripts/run-tests.sh --skip IntegrationTests

integration-test: build images
	scripts/install-test-deps.sh
	scripts/check-softfloat.sh
	SWIFT=$(SWIFT) scripts/run-tests.sh --filter IntegrationTests

# The integration tests ROUNDS times (default 10) while busy loops load every
# host core: what makes a test that depends on timing fail.
stress: build images
	scripts/install-test-deps.sh
	SWIFT=$(SWIFT) scripts/stress-tests.sh $(ROUNDS)

# Each fuzz target of Tests/Fuzz in turn, for FUZZ_SECONDS (default 60) or FUZZ_RUNS
# (default 1000000) executions, whichever comes first; FUZZ_TARGETS="NetStack HTTPSession"
# runs some. Built by plain swiftc into .build-fuzz/, apart from SwiftPM's build.
fuzz:
	scripts/fuzz.sh $(FUZZ_TARGETS)

bench: bench-boot bench-idle bench-idlecases bench-latency bench-http bench-soak

bench-boot: release images
	scripts/install-bench-deps.sh
	scripts/bench-boot.py

bench-idle: release images
	scripts/bench-idle.py

bench-idlecases: release images
	scripts/bench-idlecases.py

bench-latency: release images
	scripts/bench-latency.py

bench-http: release images
	scripts/install-bench-deps.sh
	scripts/bench-http.py

# SOAK_SECONDS=30 for a quick check; the default is the 10-minute soak.
SOAK_SECONDS ?= 600
bench-soak: release images
	scripts/install-bench-deps.sh
	scripts/bench-soak.py --seconds $(SOAK_SECONDS)

clean:
	rm -rf .build .build-fuzz
