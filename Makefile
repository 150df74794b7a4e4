# The two entry points: `make run` starts the game, `make test` runs every test.
SWIFT ?= swift
PORT ?= 8080
DATABASE ?= ./ipquest.sqlite

.PHONY: run test build release deps-run deps-test bench clean

run: deps-run release
	.build/release/ipquest serve --port $(PORT) --database $(DATABASE)

test: deps-test
	$(SWIFT) build --build-tests
	scripts/with-postgres.sh $(SWIFT) test --skip-build --no-parallel
	python3 -m pytest -q -p no:cacheprovider Tests/web
	python3 -m pytest -q -p no:cacheprovider Tests/proxies

build:
	$(SWIFT) build

release:
	SWIFT=$(SWIFT) scripts/build-release.sh ipquest

deps-run:
	@scripts/install-deps.sh run

deps-test:
	@scripts/install-deps.sh test

clean:
	rm -rf .build
