"""Print pyproject.toml's dependencies, one per line, leaving out the packages named on the command line.

The image installs torch first from wherever its build arguments say (PyTorch's CPU index, or a local
wheelhouse whose CPU wheel is another release); the rest of the project's dependencies then come from
here, so pyproject.toml stays their one list.
    python requirements.py pyproject.toml torch torchvision > requirements.txt
"""

import re
import sys
import tomllib


def main(pyproject: str, *left_out: str) -> None:
    with open(pyproject, "rb") as handle:
        dependencies = tomllib.load(handle)["project"]["dependencies"]
    skipped = {name.lower() for name in left_out}
    for requirement in dependencies:
        name = re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]
        if name.lower() not in skipped:
            print(requirement)


if __name__ == "__main__":
    main(*sys.argv[1:])
