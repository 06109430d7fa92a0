"""What a lent GPU machine needs to train the release (train/device_chain.sh runs it there), and what comes back.

    python -m tools.device_payload pack [--dataset ../shared/data/fer2013]    # here: writes .device/
    python -m tools.device_payload unpack-results DIR                         # here: the device's $OUT files

The device tool sends the work tree and at most 64 MiB a call, and FER2013's train split alone is 54 MB, so
`pack` writes the train and validation splits (never the test split: the GPU machine trains, the test split is
scored here, once) as one tar cut into parts, one folder a call (`.device/call-1`, `call-2`, ...), each small
enough to travel beside the work tree, and the wheels of the packages the device image lacks (`WHEELS`, at the
versions installed here) into the first. On the device, `unpack-data` joins the parts the calls left in a staging
folder and checks them against the manifest, and `pack-results` puts the runs' logs and configs and the student's
best/ into $OUT, in files under the tool's 16 MiB; `unpack-results` puts them into FER_RUNS here, where
`python -m train.release` packages the student and scores the test split.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from importlib import metadata
from pathlib import Path

from fer_demo.core.paths import LOCAL_DATASET, REPO_ROOT

PAYLOAD = REPO_ROOT / ".device"
SPLITS = ("train", "validation")
# The device image has torch, timm, safetensors, pyarrow, pandas and huggingface-hub but not these (its KINDS.md
# package list); fsspec (datasets caps its version) and timm travel too, at this project's versions.
WHEELS = ("datasets", "dill", "multiprocess", "fsspec", "timm")
CALL_MIB = 64  # what one call of the device tool carries: the work tree and the call's folder of .device/
MARGIN_MIB = 2
RESULT_MIB = 15  # a file back from $OUT: at most 16 MiB
KEPT = ("metrics.jsonl", "last/config.json", "best/config.json")  # per run; weights only for the student's best/


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def joined(parts: list[Path], digest: str, what: str) -> bytes:
    """The parts' bytes end to end, checked against their SHA-256."""
    data = b"".join(part.read_bytes() for part in parts)
    if sha256(data) != digest:
        raise SystemExit(f"device_payload: {what} do not match their checksum (a part missing or cut short?)")
    return data


def card_without_test(card: str) -> str:
    """The data set card's YAML without the test split's data_files entry (the `- split: test` line and its
    `path:`), which `datasets` would otherwise look for and fail on."""
    lines, out = card.splitlines(keepends=True), []
    skip = 0
    for line in lines:
        if line.strip() == "- split: test":
            skip = 2
        if skip:
            skip -= 1
            continue
        out.append(line)
    return "".join(out)


def data_tar(dataset: Path) -> bytes:
    """The Hub-layout folder's card (less the test split) and its train and validation parquet files, as a tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        card = card_without_test((dataset / "README.md").read_text()).encode()
        info = tarfile.TarInfo("fer2013/README.md")
        info.size = len(card)
        tar.addfile(info, io.BytesIO(card))
        for split in SPLITS:
            for path in sorted((dataset / "data").glob(f"{split}-*.parquet")):
                tar.add(path, f"fer2013/data/{path.name}")
    return buf.getvalue()


def download_wheels(dest: Path) -> list[str]:
    """The WHEELS at the versions installed here, for the device's Python 3.12 on x86-64 Linux."""
    pins = [f"{name}=={metadata.version(name)}" for name in WHEELS]
    platforms = [a for p in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
                 for a in ("--platform", p)]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", *platforms, "-d", str(dest), *pins],
                   check=True)
    return pins


def tree_bytes() -> int:
    """The bytes a device call sends besides `carry`: tracked files and untracked ones git does not ignore."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                            capture_output=True, check=True).stdout.split(b"\0")
    paths = [REPO_ROOT / name.decode() for name in listed if name]
    return sum(path.stat().st_size for path in paths if path.is_file())


def pack(dataset: Path) -> None:
    """.device/call-1, call-2, ...: the wheels and the data's first part, then a part a call, each folder
    filling what a call has room for beside the work tree."""
    room = (CALL_MIB - MARGIN_MIB << 20) - tree_bytes()
    first = PAYLOAD / "call-1"
    pins = download_wheels(first / "wheels")
    wheels = sum(f.stat().st_size for f in (first / "wheels").iterdir())
    if room - wheels < 1 << 20:
        raise SystemExit(f"device_payload: the work tree leaves {room >> 20} MiB a call: too little to carry")
    data = data_tar(dataset)
    cuts = [0, room - wheels]
    while cuts[-1] < len(data):
        cuts.append(cuts[-1] + room)
    for i, (start, end) in enumerate(zip(cuts, cuts[1:])):
        folder = PAYLOAD / f"call-{i + 1}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"fer2013.tar.part{i}").write_bytes(data[start:end])
    manifest = {"sha256": sha256(data), "parts": len(cuts) - 1, "wheels": pins}
    (first / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    tree = tree_bytes() / 2**20
    for folder in sorted(PAYLOAD.glob("call-*")):
        mib = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20
        print(f"{PAYLOAD.name}/{folder.name}: {mib:.1f} MiB (the work tree: {tree:.1f} MiB beside it)")


def unpack_data(stage: Path) -> None:
    """Join the parts the calls copied into `stage`, check them, and untar the data set there."""
    manifest = json.loads((stage / "manifest.json").read_text())
    parts = [stage / f"fer2013.tar.part{i}" for i in range(manifest["parts"])]
    data = joined(parts, manifest["sha256"], "the data's parts (one from each call)")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(stage, filter="data")
    print(f"device_payload: {stage / 'fer2013'} ({len(data) / 2**20:.1f} MiB)")


def kept(rel: Path) -> bool:
    """Whether a file of the runs folder comes back: each run's log and configs, the chain's top-level files
    (ensemble scores, the soft targets, trainer logs) and the student's best/ but for its weights (sent in parts)."""
    top = len(rel.parts) == 1
    student = rel.parts[:2] == ("student", "best") and rel.name != "model.safetensors"
    return top or student or any(str(rel).endswith(k) for k in KEPT)


def pack_results(runs: Path, out: Path) -> None:
    """The kept files of `runs` into `out` as runs.tar.gz, and the student's best/ weights, once trained, in parts."""
    with tarfile.open(out / "runs.tar.gz", mode="w:gz") as tar:
        for path in sorted(runs.rglob("*")):
            if path.is_file() and kept(path.relative_to(runs)):
                tar.add(path, str(path.relative_to(runs)))
    student = runs / "student" / "best" / "model.safetensors"
    if not student.is_file():
        print("device_payload: no student yet; the runs' logs and configs are packed")
        return
    weights, size = student.read_bytes(), RESULT_MIB << 20
    for i in range(0, len(weights), size):
        (out / f"student.safetensors.part{i // size}").write_bytes(weights[i:i + size])
    (out / "student.sha256").write_text(sha256(weights) + "\n")


def unpack_results(results: Path, runs: Path) -> None:
    with tarfile.open(results / "runs.tar.gz") as tar:
        tar.extractall(runs, filter="data")
    parts = sorted(results.glob("student.safetensors.part*"), key=lambda p: int(p.name.rsplit("part", 1)[1]))
    if not parts:
        print(f"device_payload: the runs' logs and configs are in {runs}; no student yet")
        return
    weights = joined(parts, (results / "student.sha256").read_text().strip(), "the student's weights")
    (runs / "student" / "best" / "model.safetensors").write_bytes(weights)
    print(f"device_payload: the runs' logs and the student's best/ are in {runs}; package with python -m "
          "train.release")


def main(argv=None) -> int:
    from train.release import RUNS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    packing = sub.add_parser("pack", help="here: write .device/")
    packing.add_argument("--dataset", type=Path, default=LOCAL_DATASET)
    packing.set_defaults(run=lambda a: pack(a.dataset))
    data = sub.add_parser("unpack-data", help="on the device: join the staged parts and untar them")
    data.add_argument("stage", type=Path)
    data.set_defaults(run=lambda a: unpack_data(a.stage))
    results = sub.add_parser("pack-results", help="on the device: FER_RUNS's logs, configs and student into OUT")
    results.add_argument("out", type=Path)
    results.set_defaults(run=lambda a: pack_results(RUNS, a.out))
    back = sub.add_parser("unpack-results", help="here: the device's files into FER_RUNS")
    back.add_argument("results", type=Path)
    back.set_defaults(run=lambda a: unpack_results(a.results, RUNS))
    args = p.parse_args(argv)
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
