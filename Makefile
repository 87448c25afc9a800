# Each target is the one command CI runs for it.
.PHONY: run test lint fuzz api-fuzz web test-web migrate bench load memory

run:
	cargo run --release -p duet-server

test:
	cargo test --workspace

lint:
	cargo fmt --all --check && cargo clippy --workspace --all-targets -- -D warnings

# Not in CI: the hostile-input properties `make test` runs at 1,000 cases each, with FUZZ_CASES.
FUZZ_CASES ?= 100000
fuzz:
	PROPTEST_CASES=$(FUZZ_CASES) cargo test -p duet-domain --test it fuzz:: && PROPTEST_CASES=$(FUZZ_CASES) cargo test -p duet-protocol --lib fuzz:: && PROPTEST_CASES=$(FUZZ_CASES) cargo test -p duet-infra-ws --lib fuzz::

# The web app's committed build (web/app/dist), made again from web/package-lock.json.
web:
	cd web && npm ci --no-audit --no-fund && npm run build --workspace app

# The browser side: the client library's and the app's unit tests, then the app in Debian's
# Chromium against a real server (Playwright).
test-web:
	scripts/web-test.sh

# Generated requests against a fresh server, each answer checked against the server's own
# OpenAPI document (schemathesis; see the script).
api-fuzz:
	scripts/api-fuzz.sh

migrate:
	cargo run -p migration --features cli -- up

bench:
	cargo bench -p duet-domain --bench engine && cargo bench -p duet-domain --bench autocomplete

load:
	scripts/load.sh

memory:
	scripts/memory.sh
