# Each target is the one command CI runs for it.
.PHONY: run test lint migrate bench load memory

run:
	cargo run --release -p duet-server

test:
	cargo test --workspace

lint:
	cargo fmt --all --check && cargo clippy --workspace --all-targets -- -D warnings

migrate:
	cargo run -p migration --features cli -- up

bench:
	cargo bench -p duet-domain --bench engine && cargo bench -p duet-domain --bench autocomplete

load:
	scripts/load.sh

memory:
	scripts/memory.sh
