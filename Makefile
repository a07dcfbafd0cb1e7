.PHONY: demo test dist lint bench

demo:  ## the main job on the embedded default
	bash scripts/demo.sh

test:  ## the whole test suite, installing what it needs
	bash scripts/test.sh

dist:  ## every wheel of the workspace into dist/
	bash scripts/build-dist.sh dist

lint:
	uv run ruff check . && uv run ruff format --check . && uv run mypy

bench:  ## every benchmark; each prints its table with PASS/FAIL against its baseline
	uv run python benchmarks/startup.py
	uv run python benchmarks/storage_local.py
	uv run python benchmarks/storage_cloud.py
	uv run python benchmarks/agent_loop.py
	uv run python benchmarks/agent_env.py
	uv run python benchmarks/controlplane.py
	uv run python benchmarks/agent_docker.py
	uv run python benchmarks/server.py
