# Toro for Swift: one entry point for both builds.
#   make run     build the VMM (release) and the images, boot the default example
#   make test    build everything, run the unit and integration tests
#   make images  build every image under Examples/ and Tests/Guests/ into .build/images/
#   make bench   boot benchmark (release build)

SWIFT ?= swift
RELEASE_FLAGS := -c release --static-swift-stdlib
VMM_RELEASE := .build/release/toro-vmm
DEFAULT_IMAGE ?= HelloWorld
CPUS ?= 2

.PHONY: all build release images run test unit-test integration-test bench clean

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
	scripts/check-softfloat.sh
	$(SWIFT) test

unit-test: build
	$(SWIFT) test --skip IntegrationTests

integration-test: build images
	scripts/check-softfloat.sh
	$(SWIFT) test --filter IntegrationTests

bench: release images
	scripts/bench-boot.py

clean:
	rm -rf .build
