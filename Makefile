.PHONY: demo test dist lint bench

demo:  ## the main job on the embedded default
	bash scripts/demo.sh

test:  ## the whole test suite, installing what it needs
	bash scripts/test.sh

dist:  ## every wheel of the workspace into dist/
	bash scripts/build-dist.sh dist

lint:
	uv run ruff check . && uv run ruff format --check . && uv run mypy

bench:
	uv run python benchmarks/startup.py
