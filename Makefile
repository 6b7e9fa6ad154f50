# Toro for Swift: one entry point for both builds.
#   make run     build the VMM (release) and the images, boot the default example
#   make test    build everything, run the unit and integration tests
#   make images  build every image under Examples/ and Tests/Guests/ into .build/images/
#   make bench   every benchmark (release build): boot, idle cost, idle cases, wake-up latency

SWIFT ?= swift
RELEASE_FLAGS := -c release --static-swift-stdlib
VMM_RELEASE := .build/release/toro-vmm
DEFAULT_IMAGE ?= HelloWorld
CPUS ?= 2

.PHONY: all build release images run test unit-test integration-test bench bench-boot bench-idle bench-idlecases bench-latency clean

all: build images

build:
	$(SWIFT) build

release:
	$(SWIFT) build $(RELEASE_FLAGS)

images:
	scripts/build-images.sh

run: release images
	$(VMM_RELEASE) run .build/images/$(DEFAULT_IMAGE).elf --cpus $(CPUS)

test: build images
	scripts/install-test-deps.sh
	scripts/check-softfloat.sh
	$(SWIFT) test

unit-test: build
	$(SWIFT) test --skip IntegrationTests

integration-test: build images
	scripts/install-test-deps.sh
	scripts/check-softfloat.sh
	$(SWIFT) test --filter IntegrationTests

bench: bench-boot bench-idle bench-idlecases bench-latency

bench-boot: release images
	scripts/bench-boot.py

bench-idle: release images
	scripts/bench-idle.py

bench-idlecases: release images
	scripts/bench-idlecases.py

bench-latency: release images
	scripts/bench-latency.py

clean:
	rm -rf .build
