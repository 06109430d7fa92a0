"""The command line (`fer-demo`, `python -m fer_demo`): predict prints the /predict answers or writes the
pictures, video writes the CSV and the clip, serve takes app.py's options; bad input is one line and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

import fer_demo
from fer_demo.cli import BAD_INPUT, main
from fer_demo.core.paths import EXAMPLES_DIR, REPO_ROOT

PHOTOS = EXAMPLES_DIR / "photos"


def _json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_predict_json_is_the_predict_answer(capsys):
    photos = [PHOTOS / "group_collage.jpg", PHOTOS / "astronaut.jpg"]
    assert main(["predict", *map(str, photos), "--json"]) == 0
    printed = _json_lines(capsys.readouterr().out)
    wanted = fer_demo.predict([str(p) for p in photos])
    assert [a["faces"] for a in printed] == [a["faces"] for a in wanted]
    assert [a["n_faces"] for a in printed] == [4, 1]


def test_predict_in_words_and_the_pictures_it_writes(capsys, tmp_path):
    assert main(["predict", str(PHOTOS / "group_collage.jpg"), "--no-tta", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("group_collage.jpg: 4 faces found.") and len(out) == 5
    answer = json.loads((tmp_path / "group_collage.json").read_text())
    assert answer["tta"]["name"] == "none" and [line.split()[1] for line in out[1:]] == \
        [f["label"] for f in answer["faces"]]
    size = Image.open(PHOTOS / "group_collage.jpg").size
    for name in ("group_collage.faces.jpg", "group_collage.cams.jpg"):
        assert Image.open(tmp_path / name).size == size


@pytest.mark.parametrize("argv, message", [
    (["predict", "no-such-photo.jpg"], "does not exist"),
    (["predict", str(REPO_ROOT / "README.md")], "not an image we can read"),
    (["predict", str(PHOTOS / "astronaut.jpg"), "--checkpoint", "no-such-folder"], "no checkpoint at"),
    (["video", str(REPO_ROOT / "README.md")], "not a video we can play"),
    (["video", str(PHOTOS / "astronaut.jpg"), "--rate", "0"], "sampling rate"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    assert main(argv) == BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


def test_a_bad_photo_among_good_ones_is_reported_and_the_rest_are_labelled(capsys):
    assert main(["predict", "missing.jpg", str(PHOTOS / "astronaut.jpg"), "--json"]) == BAD_INPUT
    captured = capsys.readouterr()
    assert [a["n_faces"] for a in _json_lines(captured.out)] == [1]
    assert captured.err.strip() == "error: missing.jpg: the file 'missing.jpg' does not exist"


def test_video_writes_the_csv_and_the_annotated_clip(capsys, tmp_path):
    from fer_demo.vision.clips import h264_writer
    from fer_demo.vision.images import load_image

    photo = load_image(PHOTOS / "astronaut.jpg").rgb[:400, :400]
    clip = tmp_path / "still.mp4"
    with h264_writer(clip, (400, 400), 4) as write:
        for _ in range(8):
            write(photo)
    assert main(["video", str(clip), "--rate", "2", "--out", str(tmp_path / "out"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_persons"] == 1
    assert (tmp_path / "out" / "still_faces.csv").is_file() and (tmp_path / "out" / "still_faces.mp4").is_file()


def test_python_m_fer_demo_runs_the_same_commands():
    """In a subprocess: the module runs, `serve --help` is app.py's help, and argparse's errors exit 2."""
    run = [sys.executable, "-m", "fer_demo"]
    helped = subprocess.run([*run, "serve", "--help"], capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and "--detector-model" in helped.stdout and "--mcp" in helped.stdout
    bad = subprocess.run([*run, "predict"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "PHOTO" in bad.stderr and "Traceback" not in bad.stderr
