# The README's two commands: `make run` (the main study) and `make test` (the whole test suite).
# Both run `make setup` first, which installs what is missing and is a no-op otherwise.
SWEEP ?= experiments/temps.toml
CARGO ?= cargo

.PHONY: setup build run test quick lint
setup:
	@bash scripts/setup.sh

build: setup
	$(CARGO) build --release

run: build
	target/release/kd-sweep $(SWEEP)

quick: build
	target/release/kd-sweep experiments/quick.toml

# The SLURM tests start a single-node cluster (scripts/slurm-local.sh); it is stopped afterwards.
# `setup.sh --test` also installs Chromium for the browser test of index.html. scripts/test.sh runs
# what `cargo test --release` runs, its test binaries two at a time from one queue (its header says why).
test:
	@bash scripts/setup.sh --test
	bash scripts/test.sh; status=$$?; bash scripts/slurm-local.sh stop; exit $$status

lint: setup
	$(CARGO) fmt --check
	$(CARGO) clippy --release --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --release
