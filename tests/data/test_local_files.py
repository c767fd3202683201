"""`mpls data`: where a run finds the built-in datasets, and fetching MNIST's official files —
here from a local HTTP server standing in for its mirrors (no dataset host is reachable from
these machines), so what torchvision writes is checked to be what a run then loads."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import shutil
import socket
import struct
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest
from torchvision.datasets import MNIST

from mpls_celery.cli.app import main
from mpls_celery.data import load_builtin
from mpls_celery.data.local_files import fetch_builtin, find_builtin
from mpls_celery.errors import ConfigError, MplsError

SHARED_T10K = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "mnist-t10k"


def write_idx(path: Path, values: np.ndarray) -> None:
    """An unsigned-byte IDX file, gzipped as MNIST's mirrors serve it."""
    header = bytes([0, 0, 0x08, values.ndim]) + struct.pack(f">{values.ndim}I", *values.shape)
    with gzip.open(path, "wb") as out:
        out.write(header + values.astype(np.uint8).tobytes())


def small_mnist(folder: Path) -> list[tuple[str, str]]:
    """Four MNIST-shaped files (300 train, 100 test images) and their md5s, as MNIST.resources
    lists the official ones."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for stem, n in (("train", 300), ("t10k", 100)):
        write_idx(folder / f"{stem}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / f"{stem}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return [(f.name, hashlib.md5(f.read_bytes()).hexdigest()) for f in sorted(folder.iterdir())]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that reads only the headers (torchvision's redirect check) hangs up


@pytest.fixture
def mirror(tmp_path, monkeypatch) -> Iterator[Path]:
    """MNIST's mirrors replaced by one HTTP server on this machine, serving small files."""
    served = tmp_path / "served"
    monkeypatch.setattr(MNIST, "resources", small_mnist(served))
    handler = functools.partial(QuietHandler, directory=str(served))
    server = QuietServer(("127.0.0.1", 0), handler)
    monkeypatch.setattr(MNIST, "mirrors", [f"http://127.0.0.1:{server.server_port}/"])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served
    server.shutdown()
    server.server_close()


def test_fetched_mnist_is_found_and_loaded_and_not_fetched_twice(tmp_path, mirror):
    data_dir = tmp_path / "data"
    assert not find_builtin("mnist", data_dir).present
    found = fetch_builtin("mnist", data_dir)
    assert found.present and found.complete and found.where == data_dir / "MNIST" / "raw"
    data = load_builtin("mnist", data_dir)
    assert (len(data.train), len(data.test)) == (300, 100)
    shutil.rmtree(mirror)  # a second fetch finds the files and downloads nothing
    assert fetch_builtin("mnist", data_dir) == found


def test_a_download_that_fails_is_one_line_naming_why(tmp_path, monkeypatch):
    with socket.socket() as closed:  # a port nothing listens on once this closes: refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setattr(MNIST, "mirrors", [f"http://127.0.0.1:{port}/"])
    with pytest.raises(MplsError) as info:
        fetch_builtin("mnist", tmp_path)
    message = str(info.value)
    assert message.startswith("mnist: download failed: RuntimeError: Error downloading")
    assert "Connection refused" in message and "\n" not in message
    assert not any(tmp_path.iterdir()), "nothing left that a run or the next fetch would take"


def test_a_download_cut_off_half_way_leaves_nothing_a_run_takes(tmp_path, mirror):
    """The last file is cut short (its checksum fails): the three that came stay out of place."""
    last = sorted(mirror.iterdir())[-1]
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    with pytest.raises(MplsError, match=r"^mnist: download failed: "):
        fetch_builtin("mnist", tmp_path / "data")
    assert not find_builtin("mnist", tmp_path / "data").present
    assert not any((tmp_path / "data").iterdir())


def test_what_is_missing_says_where_it_was_looked_for(tmp_path):
    mnist = find_builtin("mnist", tmp_path)
    assert not mnist.present and tmp_path / "MNIST" / "raw" in mnist.looked_in
    assert find_builtin("cifar10", tmp_path).looked_in == (tmp_path / "cifar-10-batches-py",)
    assert find_builtin("digits", tmp_path).present
    with pytest.raises(ConfigError, match=r"mpls data fetch mnist"):
        load_builtin("mnist", tmp_path)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_is_present_once_every_file_torchvision_lists_is(tmp_path, name):
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR10 if name == "cifar10" else CIFAR100
    folder = tmp_path / cls.base_folder
    folder.mkdir()
    for file, _ in cls.train_list:
        (folder / file).write_bytes(b"")
    assert not find_builtin(name, tmp_path).present  # no test split yet
    for file, _ in cls.test_list:
        (folder / file).write_bytes(b"")
    assert find_builtin(name, tmp_path).where == folder


@pytest.mark.skipif(not SHARED_T10K.is_dir(), reason="shared MNIST test split not present")
def test_the_test_split_alone_is_present_but_not_complete(tmp_path):
    found = find_builtin("mnist", SHARED_T10K.parent)
    assert found.present and not found.complete and found.where == SHARED_T10K
    assert found.holds == "the test split only: 8,000 / 2,000"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out = capsys.readouterr()
    return int(exit_info.value.code or 0), out.out, out.err


def test_data_list_and_fetch_from_the_command_line(tmp_path, mirror, capsys):
    code, out, _ = run(["data", "fetch", "mnist", "--data-dir", str(tmp_path)], capsys)
    assert code == 0 and "mnist: 300 train / 100 test in" in out
    code, out, _ = run(["data", "list", "--json", "--data-dir", str(tmp_path)], capsys)
    rows = {row["name"]: row for row in orjson.loads(out)["datasets"]}
    assert code == 0 and rows["mnist"]["present"] and rows["mnist"]["complete"]
    assert not rows["cifar100"]["present"] and rows["digits"]["present"]
    code, out, _ = run(["data", "list", "--data-dir", str(tmp_path)], capsys)
    title, table = out.split("\n", 1)
    assert code == 0 and title == f"datasets under {tmp_path}"
    # what was found there is shown from the title's folder
    assert str(tmp_path) not in table and "./" in table


def test_fetching_an_unknown_dataset_fetches_nothing(tmp_path, capsys):
    code, out, err = run(
        ["data", "fetch", "mnist", "imagenet", "--data-dir", str(tmp_path)], capsys
    )
    assert code == 2 and out == ""
    assert err == "error: cannot fetch 'imagenet': choose from mnist, cifar10, cifar100\n"


def test_without_torchvision_what_is_there_is_listed_and_a_fetch_says_why_not(
    tmp_path, monkeypatch
):
    """The compose image has no torchvision: `mpls data list` works there, a fetch says why not."""
    monkeypatch.setitem(sys.modules, "torchvision", None)  # `import torchvision` now fails
    assert not find_builtin("cifar10", tmp_path).present
    with pytest.raises(MplsError, match=r"^cifar10: fetching it needs torchvision \(pip install"):
        fetch_builtin("cifar10", tmp_path)
