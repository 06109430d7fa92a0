"""The Gradio Blocks app: Predict, Grad-CAM explorer, Test set and About tabs.

Each public action is a plain function returning JSON (`/predict`, `/explain`,
`/confusion`, `/test_report`); the UI shows its answer in a JSON panel and a
chained, private step draws the pictures from it.
"""

from __future__ import annotations

import functools
import re
import sys
import traceback
from pathlib import Path

import gradio as gr
import numpy as np

from .checkpoint import REPO_ROOT, CheckpointError
from .explain import (FAITHFULNESS_NOTE, METHODS, SLOW_METHODS, annotate, cam_on_photo, compute_cams,
                      default_layer, enlarge, explain_face, overlay)
from .faces import DETECTOR_NAME, FACE_MARGIN, MAX_FACES, single_face
from .images import MAX_FILE_BYTES, MAX_SIDE, ImageLoadError, describe_bytes, load_image
from .model import CAM_LAYERS
from .predict import Predictor
from .testset import DatasetUnavailable, HeldOutSet

EXAMPLES_DIR = REPO_ROOT / "examples"
MODEL_CARD = REPO_ROOT / "MODEL_CARD.md"
FACES_PER_ROW = 3


def photo_input(**kwargs) -> gr.Image:
    """A gr.Image (type="filepath") that hands our loader the uploaded file untouched.

    gr.Image opens uploads with PIL before the event function runs, so a broken
    or hostile file would fail there with PIL's message. This one keeps the image
    front end but leaves decoding to `images.load_image`, which checks size,
    pixel count and format and says what is wrong in plain words. (An instance
    override: subclassing a gradio component would write a .pyi stub here.)
    """
    image = gr.Image(type="filepath", image_mode=None, format="png", **kwargs)
    original = image.preprocess

    def preprocess(payload):
        if payload is None:
            return None
        url = getattr(payload, "url", None) or ""
        path = getattr(payload, "path", None)
        if path and not url.startswith("data:"):
            return str(path)
        try:
            return original(payload)
        except Exception:
            raise gr.Error("The image could not be read: it is not an image file we can decode.",
                           print_exception=False) from None

    image.preprocess = preprocess
    return image


def readable(fn):
    """Turn every exception into a gr.Error with a readable message (never a stack trace)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ValueError, DatasetUnavailable, CheckpointError) as e:  # ImageLoadError, ExplainError, ...
            raise gr.Error(str(e)[:1000], print_exception=False) from None
        except Exception as e:
            print(f"error in {fn.__name__}:\n{traceback.format_exc()}", file=sys.stderr)
            raise gr.Error(f"Something went wrong ({type(e).__name__}); the server log has the details.",
                           print_exception=False) from None

    return wrapper


def example_files(sub: str) -> list[str]:
    folder = EXAMPLES_DIR / sub
    return sorted(str(p) for p in folder.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"))


_IMAGE_LINK = re.compile(r'(!\[[^\]]*\]\()\s*([^)\s]+)((?:\s+"[^"]*")?\s*\))')
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".svg")


def card_images(text: str, base: Path = REPO_ROOT) -> dict[str, Path]:
    """Relative image links of a Markdown text that point at image files inside `base`: link -> file."""
    found = {}
    for match in _IMAGE_LINK.finditer(text):
        link = match.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", link, re.I) or link.startswith("/"):
            continue  # a URL, data: URI or absolute path: leave it alone
        file = (base / link.split("#")[0].split("?")[0]).resolve()
        if file.suffix.lower() in IMAGE_SUFFIXES and file.is_file() and file.is_relative_to(base.resolve()):
            found[link] = file
    return found


def link_card_images(text: str, base: Path = REPO_ROOT) -> str:
    """Point a card's relative image links at gradio's file route (app.py allows exactly those files)."""
    files = card_images(text, base)

    def swap(match):
        file = files.get(match.group(2))
        return f"{match.group(1)}/gradio_api/file={file}{match.group(3)}" if file else match.group(0)

    return _IMAGE_LINK.sub(swap, text)


def model_card_files() -> list[str]:
    """The image files MODEL_CARD.md shows (for launch(allowed_paths=...))."""
    if not MODEL_CARD.is_file():
        return []
    return [str(f) for f in card_images(MODEL_CARD.read_text(encoding="utf-8", errors="replace")).values()]


def model_card_markdown(predictor: Predictor, heldout: HeldOutSet) -> str:
    if MODEL_CARD.is_file():
        return link_card_images(MODEL_CARD.read_text(encoding="utf-8", errors="replace"))
    c = predictor.config
    lines = ["## Model card", "",
             "*`MODEL_CARD.md` is not in this checkout yet; here is what the checkpoint says about itself.*", "",
             f"- Architecture: timm `{c['arch']}`, stem `{c['stem']}`, 1-channel {c['input_size']}x"
             f"{c['input_size']} input, 7 classes ({', '.join(predictor.labels)}).",
             f"- Trained on: `{c.get('dataset', 'FER2013')}`; checkpoint folder `{predictor.folder.name}`."]
    for row in heldout.summary_rows():
        lines.append(f"- Test split, {row[0]}: accuracy {row[1]:.4f}, macro-F1 {row[2]:.4f}, ECE {row[3]:.4f} "
                     f"(n={row[5]}).")
    lines += ["", "Intended use: a demo and teaching aid for facial-expression recognition and saliency "
              "maps. Not for decisions about people: expression is not emotion, and FER2013 has known label "
              "noise and demographic skews."]
    return "\n".join(lines)


def header_markdown(predictor: Predictor, heldout: HeldOutSet) -> str:
    c = predictor.config
    text = (f"# fer-demo: facial expressions and Grad-CAM\n"
            f"A `{c['arch']}` trained on FER2013 ({c['input_size']}x{c['input_size']} grayscale faces) "
            f"classifies each face as {', '.join(predictor.labels)}.")
    rows = heldout.summary_rows()
    if rows:
        text += f" Test accuracy {rows[0][1]:.1%} ({rows[0][0]}, n={rows[0][5]})."
    return text


LIVE_SIDE = 640  # webcam frames are scaled to this longest side before detection


def label_frame(predictor: Predictor, frame):
    """One webcam frame -> (the frame with numbered boxes and top labels, the largest face's probabilities).

    What the live stream shows (and what bench/latency.py times); (None, None) for a missing or unreadable frame.
    """
    if frame is None:
        return None, None
    try:
        a = predictor.analyze(load_image(frame, max_side=LIVE_SIDE))
    except ImageLoadError:
        return None, None
    labels = predictor.labels
    captions = [f"{f.index} {labels[int(f.probs.argmax())]} {f.probs.max():.0%}" for f in a.faces]
    boxed = annotate(a.image.rgb, [f.box for f in a.faces], captions)
    top = a.detailed(1)
    return boxed, ({n: float(p) for n, p in zip(labels, top[0].probs)} if top else None)


def build_app(predictor: Predictor, heldout: HeldOutSet | None = None) -> gr.Blocks:
    heldout = heldout or HeldOutSet(predictor)
    labels = list(predictor.labels)
    layer0 = default_layer(predictor.map_sizes)
    layer_choices = [(f"{name} ({predictor.map_sizes[name]}x{predictor.map_sizes[name]} map)", name)
                     for name in CAM_LAYERS]

    # ---------------- Predict ----------------

    @readable
    def api_predict(photo: str | None, whole_image: bool = False) -> dict:
        """Find the faces in a photo and classify each: box, top label and the 7 probabilities."""
        if photo is None:
            raise ImageLoadError("No image was given: upload a photo, paste one, or take one with the webcam.")
        return predictor.predict(photo, bool(whole_image))

    def ui_predict(photo, whole_image):
        return None if photo is None else api_predict(photo, whole_image)

    n_rows = -(-MAX_FACES // FACES_PER_ROW)
    empty_slots = [gr.update(visible=False)] * n_rows + [gr.update(value=None, visible=False)] * (3 * MAX_FACES)

    @readable
    def render_predict(photo, whole_image, result, opacity):
        if photo is None or not result:
            return ["", None, None, gr.update(visible=False), *empty_slots]
        a = predictor.recall(photo, bool(whole_image))
        rgb = a.image.rgb
        captions = [f"{f.index} {labels[int(f.probs.argmax())]} {f.probs.max():.0%}" for f in a.faces]
        boxed = annotate(rgb, [f.box for f in a.faces], captions) if a.faces else rgb
        detailed = a.detailed()
        if detailed:
            faces = np.stack([f.face for f in detailed])
            classes = [int(f.probs.argmax()) for f in detailed]
            cams = compute_cams(predictor, faces, classes, "GradCAM", layer0)
            photo_cam = cam_on_photo(rgb, [f.region for f in detailed], list(cams), opacity)
        else:
            cams, photo_cam = [], None
        message = a.message()
        if a.faces:
            message += (f" Grad-CAM ({layer0}) is for each face's top label; the Grad-CAM explorer tab "
                        "has more methods.")
        crops, overlays, label_values = [], [], []
        for slot in range(MAX_FACES):
            if slot < len(detailed):
                f = detailed[slot]
                crops.append(gr.Image(value=enlarge(f.face, 160), visible=True))
                overlays.append(gr.Image(value=overlay(f.face, cams[slot], opacity, 160), visible=True))
                label_values.append(gr.Label(value={n: float(p) for n, p in zip(labels, f.probs)},
                                             label=f"Face {f.index}", visible=True))
            else:
                crops.append(gr.Image(value=None, visible=False))
                overlays.append(gr.Image(value=None, visible=False))
                label_values.append(gr.Label(value=None, visible=False))
        rows = [gr.update(visible=first < len(detailed)) for first in range(0, MAX_FACES, FACES_PER_ROW)]
        return [message, boxed, photo_cam, gr.update(visible=a.no_face), *rows, *crops, *overlays, *label_values]

    def live_frame(frame):
        """One webcam frame -> the frame with numbered boxes and top labels (and face 1's probabilities)."""
        return label_frame(predictor, frame)

    # ---------------- Grad-CAM explorer ----------------

    @readable
    def api_explain(face_image: str | None, method: str = "GradCAM", layer: str = layer0,
                    target: str = "predicted", all_classes: bool = False, progress=gr.Progress()) -> dict:
        """Explain one face: CAM maps (48x48, 0-1) for the chosen class(es), with faithfulness scores."""
        if face_image is None:
            raise ImageLoadError("No face image was given: upload one, pick an example or a test-set face.")
        img = load_image(face_image)
        face, source = single_face(img.rgb)
        slow = method in SLOW_METHODS

        def report(frac, desc):
            progress(frac, desc=desc)

        out = explain_face(predictor, face, method, layer or layer0, "all" if all_classes else target,
                           progress=report if slow else None)
        out["face"] = face.astype(int).tolist()
        out["face_source"] = source
        return out

    def ui_explain(face_image, method, layer, target, all_classes, progress=gr.Progress()):
        if face_image is None:
            return None
        return api_explain(face_image, method, layer, target, all_classes, progress)

    @readable
    def render_explain(result, opacity):
        if not result:
            return "", None, None, None, gr.update(value=None, visible=False), None
        face = np.asarray(result["face"], dtype=np.uint8)
        maps = result["maps"]
        shown = next((m for m in maps if m["class"] == result["predicted"]), maps[0]) if len(maps) > 1 else maps[0]
        big = overlay(face, np.asarray(shown["cam"], np.float32), opacity, 256)
        gallery = [(overlay(face, np.asarray(m["cam"], np.float32), opacity, 192),
                    f"{m['class']} {m['probability']:.0%} | ROAD {m.get('road', float('nan')):+.4f}")
                   for m in maps] if len(maps) > 1 else None
        table = [[m["class"], round(m["probability"], 4), m.get("road"), m.get("cam_x_image_change")]
                 for m in maps]
        msg = (f"**{result['method']}** on **{result['layer']}** ({result['map_size']}x{result['map_size']} map) "
               f"for **{shown['class']}**; face: {result['face_source']}; predicted **{result['predicted']}** "
               f"({result['confidence']:.0%}); {result['seconds']:.2f} s.")
        if result.get("notes"):
            msg += " " + " ".join(result["notes"])
        return (msg, enlarge(face, 256), big, result["probabilities"],
                gr.update(value=gallery, visible=gallery is not None), table)

    @readable
    def pick_test_face(label, progress=gr.Progress()):
        face, index, true = heldout.random_face(None if label == "any" else label,
                                                progress=lambda f, d: progress(f, desc=d))
        gr.Info(f"Test face #{index}, labelled {true}.")
        return face

    # ---------------- Test set ----------------

    @readable
    def api_confusion(true: str, predicted: str, progress=gr.Progress()) -> dict:
        """Test faces of true class `true` that the model predicts as `predicted` (up to 12, most confident first)."""
        return heldout.cell(true, predicted, progress=lambda f, d: progress(f, desc=d))

    @readable
    def render_cell(result):
        if not result:
            return "", None
        items = []
        if result["faces"]:
            faces = np.stack([heldout.face(f["test_index"]) for f in result["faces"]])
            classes = [labels.index(f["predicted"]) for f in result["faces"]]
            cams = compute_cams(predictor, faces, classes, "GradCAM", layer0)
            for f, face, cam in zip(result["faces"], faces, cams):
                pair = np.concatenate([enlarge(face, 128), overlay(face, cam, 0.5, 128)], axis=1)
                items.append((pair, f"#{f['test_index']}: {f['predicted']} {f['confidence']:.0%}"))
        rc = result.get("report_count")
        msg = (f"**{result['count']}** of the {result['row_total']} test faces labelled **{result['true']}** are "
               f"predicted **{result['predicted']}** ({result['fraction_of_row']:.1%}; n={result['n_test']}, "
               f"predictions recomputed here without TTA"
               + (f"; the report counts {rc}" if rc is not None else "") + "). "
               + (f"Showing the {len(items)} most confident, each with its Grad-CAM ({layer0})."
                  if items else "No face in this cell."))
        return msg, items

    @readable
    def render_figure(mode, counts):
        return heldout.figure(mode, normalized=(counts == "row-normalized")), heldout.per_class_rows(mode)

    @readable
    def api_test_report() -> dict:
        """The shipped test report of the serving backend: accuracy, macro-F1, ECE, NLL, per-class figures
        and confusion, +/- TTA."""
        if heldout.report is None:
            raise DatasetUnavailable(f"this checkpoint ships no {heldout.report_file}")
        return heldout.report

    # ---------------- layout ----------------

    photos, fer_faces = example_files("photos"), example_files("fer2013")
    with gr.Blocks(title="fer-demo: facial expressions + Grad-CAM", analytics_enabled=False) as demo:
        gr.Markdown(header_markdown(predictor, heldout))
        with gr.Tabs():
            with gr.Tab("Predict", id="predict"):
                with gr.Row():
                    with gr.Column(scale=1):
                        photo = photo_input(label="Photo", sources=["upload", "webcam", "clipboard"], height=360,
                                            elem_id="photo")
                        whole = gr.Checkbox(label="Classify the whole image as one face", value=False)
                        with gr.Row():
                            run = gr.Button("Find faces and classify", variant="primary")
                            opacity = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Heatmap opacity")
                        if photos:
                            gr.Examples([[p] for p in photos], inputs=[photo], label="Photos",
                                        api_visibility="private")
                        if fer_faces:
                            gr.Examples([[p] for p in fer_faces], inputs=[photo], label="FER2013 test faces",
                                        examples_per_page=14, api_visibility="private")
                    with gr.Column(scale=1):
                        message = gr.Markdown(elem_id="predict-message")
                        whole_btn = gr.Button("Classify the whole image as one face", visible=False)
                        boxed = gr.Image(label="Faces (numbered) and top labels", interactive=False,
                                         elem_id="boxed", format="jpeg")
                        photo_cam = gr.Image(label="Grad-CAM mapped back onto the photo", interactive=False,
                                             elem_id="photo-cam", format="jpeg")
                rows, crops, overlays, label_slots = [], [], [], []
                for first in range(0, MAX_FACES, FACES_PER_ROW):
                    with gr.Row(visible=False, equal_height=False) as row:
                        for i in range(first, min(first + FACES_PER_ROW, MAX_FACES)):
                            with gr.Column(min_width=320):
                                with gr.Row():
                                    crops.append(gr.Image(label="Face crop (48x48)", interactive=False,
                                                          height=170, format="png", elem_id=f"crop-{i}"))
                                    overlays.append(gr.Image(label="Grad-CAM, top label", interactive=False,
                                                             height=170, format="png", elem_id=f"cam-{i}"))
                                label_slots.append(gr.Label(num_top_classes=7, elem_id=f"label-{i}"))
                    rows.append(row)
                with gr.Accordion("Live webcam", open=False):
                    gr.Markdown("Labels every face in the webcam stream (a few frames per second on a CPU).")
                    with gr.Row():
                        live_in = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam",
                                           elem_id="live-in")
                        live_out = gr.Image(label="Live labels", interactive=False, elem_id="live-out")
                        live_label = gr.Label(num_top_classes=3, label="Largest face", elem_id="live-label")
                with gr.Accordion("JSON answer (/predict)", open=False):
                    predict_json = gr.JSON(label="/predict")
                gr.Markdown(f"Detector: {DETECTOR_NAME} on a copy at most 640 px wide; each face is cropped "
                            f"like FER2013 (square, {FACE_MARGIN:.0%} margin, grayscale, 48x48). Uploads: at most "
                            f"{describe_bytes(MAX_FILE_BYTES)}; larger photos are scaled to {MAX_SIDE} px.")

            with gr.Tab("Grad-CAM explorer", id="explorer"):
                with gr.Row():
                    with gr.Column(scale=1):
                        ex_input = photo_input(label="A face (a photo works too: its largest face is used)",
                                               sources=["upload", "clipboard", "webcam"], height=240,
                                               elem_id="ex-input")
                        method = gr.Dropdown(list(METHODS), value="GradCAM", label="Method",
                                             info="ScoreCAM and AblationCAM run one forward pass per channel: slower")
                        layer = gr.Radio(layer_choices, value=layer0, label="Target layer (ResNet stage)")
                        target = gr.Dropdown(["predicted", *labels], value="predicted", label="Target class")
                        all_classes = gr.Checkbox(label="All seven classes at once (grid)", value=False)
                        ex_opacity = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Heatmap opacity")
                        ex_run = gr.Button("Explain", variant="primary")
                        if fer_faces or photos:
                            gr.Examples([[p] for p in fer_faces + photos], inputs=[ex_input], label="Examples",
                                        examples_per_page=16, api_visibility="private")
                        with gr.Row():
                            test_class = gr.Dropdown(["any", *labels], value="any", label="Test-set face of class")
                            test_pick = gr.Button("Random test face")
                    with gr.Column(scale=2):
                        ex_message = gr.Markdown(elem_id="explain-message")
                        with gr.Row():
                            ex_face = gr.Image(label="Face (48x48, enlarged)", interactive=False, height=260,
                                               format="png")
                            ex_overlay = gr.Image(label="Heatmap", interactive=False, height=260, format="png",
                                                  elem_id="ex-overlay")
                            ex_probs = gr.Label(num_top_classes=7, label="Prediction", elem_id="ex-probs")
                        ex_grid = gr.Gallery(label="One map per class", columns=4, height="auto", visible=False,
                                             object_fit="contain", elem_id="ex-grid")
                        ex_table = gr.Dataframe(headers=["class", "probability", "ROAD", "CAM x image change"],
                                                label="Faithfulness (higher ROAD = the map points at what the "
                                                      "model uses)", interactive=False)
                        gr.Markdown(FAITHFULNESS_NOTE)
                        with gr.Accordion("JSON answer (/explain)", open=False):
                            explain_json = gr.JSON(label="/explain")

            with gr.Tab("Test set", id="testset"):
                modes = heldout.modes()
                if not modes:
                    gr.Markdown(f"No test report beside the checkpoint (`{predictor.folder}`): run "
                                f"`python -m train.evaluate --tta --backend {predictor.backend}` to write "
                                f"`{heldout.report_file}`.")
                with gr.Row(visible=bool(modes)):
                    summary = gr.Dataframe(value=heldout.summary_rows() or None,
                                           headers=["predictions", "accuracy", "macro-F1", "ECE", "NLL", "n"],
                                           label=f"Held-out test split (from the shipped report; "
                                                 f"classifier: {predictor.backend})",
                                           interactive=False)
                with gr.Row(visible=bool(modes)):
                    with gr.Column():
                        with gr.Row():
                            ts_mode = gr.Radio(modes or ["no TTA"], value="no TTA", label="Predictions")
                            ts_counts = gr.Radio(["row-normalized", "counts"], value="row-normalized",
                                                 label="Confusion matrix (rows: true class)")
                        figure0, per_class0 = (heldout.figure("no TTA"), heldout.per_class_rows("no TTA")) \
                            if modes else (None, None)
                        ts_plot = gr.Plot(value=figure0, label="Confusion matrix", elem_id="confusion-plot")
                    with gr.Column():
                        ts_per_class = gr.Dataframe(value=per_class0,
                                                    headers=["class", "precision", "recall", "F1", "support"],
                                                    label="Per class", interactive=False)
                gr.Markdown("### Faces in one cell\nPick a true and a predicted class. This needs the FER2013 "
                            f"test split: `{heldout.dataset}` (set env FER_DATASET or `--dataset`); it is loaded "
                            "and predicted once, on first use.")
                t0, p0 = heldout.most_confused()
                with gr.Row():
                    cell_true = gr.Dropdown(labels, value=labels[t0], label="True class")
                    cell_pred = gr.Dropdown(labels, value=labels[p0], label="Predicted class",
                                            info="preset: the most confused pair in the report")
                    cell_run = gr.Button("Show faces", variant="primary")
                cell_message = gr.Markdown()
                cell_gallery = gr.Gallery(label="Face | Grad-CAM for the predicted class", columns=4,
                                          height="auto", object_fit="contain", elem_id="cell-gallery")
                with gr.Accordion("JSON answer (/confusion)", open=False):
                    cell_json = gr.JSON(label="/confusion")

            with gr.Tab("About", id="about"):
                gr.Markdown(model_card_markdown(predictor, heldout))

        # ---------------- events ----------------
        slot_outputs = [*rows, *crops, *overlays, *label_slots]
        predict_outputs = [message, boxed, photo_cam, whole_btn, *slot_outputs]
        run.click(api_predict, [photo, whole], [predict_json], api_name="predict",
                  concurrency_id="predict", concurrency_limit=2).success(
            render_predict, [photo, whole, predict_json, opacity], predict_outputs, api_visibility="private",
            concurrency_id="cam", concurrency_limit=1)
        gr.on([photo.change, whole.change], ui_predict, [photo, whole], [predict_json], api_visibility="private",
              concurrency_id="predict", concurrency_limit=2, trigger_mode="always_last").success(
            render_predict, [photo, whole, predict_json, opacity], predict_outputs, api_visibility="private",
            concurrency_id="cam", concurrency_limit=1)
        opacity.release(render_predict, [photo, whole, predict_json, opacity], predict_outputs,
                        api_visibility="private", concurrency_id="cam", concurrency_limit=1)
        whole_btn.click(lambda: True, None, [whole], api_visibility="private", queue=False)
        live_in.stream(live_frame, [live_in], [live_out, live_label], api_name="live_frame",
                       api_visibility="undocumented", stream_every=0.15, time_limit=600,
                       concurrency_id="live", concurrency_limit=4, show_progress="hidden")

        explain_inputs = [ex_input, method, layer, target, all_classes]
        explain_outputs = [ex_message, ex_face, ex_overlay, ex_probs, ex_grid, ex_table]
        ex_run.click(api_explain, explain_inputs, [explain_json], api_name="explain",
                     concurrency_id="cam", concurrency_limit=1).success(
            render_explain, [explain_json, ex_opacity], explain_outputs, api_visibility="private")
        gr.on([ex_input.change, method.change, layer.change, target.change, all_classes.change], ui_explain,
              explain_inputs, [explain_json], api_visibility="private", concurrency_id="cam", concurrency_limit=1,
              trigger_mode="always_last").success(
            render_explain, [explain_json, ex_opacity], explain_outputs, api_visibility="private")
        ex_opacity.change(render_explain, [explain_json, ex_opacity], explain_outputs, api_visibility="private",
                          trigger_mode="always_last", show_progress="hidden")
        test_pick.click(pick_test_face, [test_class], [ex_input], api_visibility="private",
                        concurrency_id="testset", concurrency_limit=1)

        gr.on([ts_mode.change, ts_counts.change], render_figure, [ts_mode, ts_counts], [ts_plot, ts_per_class],
              api_visibility="private")
        cell_run.click(api_confusion, [cell_true, cell_pred], [cell_json], api_name="confusion",
                       concurrency_id="testset", concurrency_limit=1).success(
            render_cell, [cell_json], [cell_message, cell_gallery], api_visibility="private",
            concurrency_id="cam", concurrency_limit=1)
        gr.api(api_test_report, api_name="test_report")
    return demo
