"""The Grad-CAM explorer tab: any CAM method, stage and class for one face, with faithfulness scores."""

from __future__ import annotations

import gradio as gr
import numpy as np

from ..vision.drawing import enlarge, overlay
from ..serving.cams import DEFAULT_METHOD, FAITHFULNESS_NOTE, METHOD_HINT, METHODS, SLOW_METHODS, default_layer
from ..core.labels import NUM_CLASSES
from ..core.model import CAM_LAYERS
from ..serving.predictor import Predictor
from ..serving.testset import HeldOutSet
from .common import bind, errors_as_gr_error, example_files, photo_input


@errors_as_gr_error
def api_explain(predictor: Predictor, face_image: str | None, method: str = DEFAULT_METHOD, layer: str | None = None,
                target: str = "predicted", all_classes: bool = False, progress=gr.Progress()) -> dict:
    """Explain one face: CAM maps (48x48, 0-1) for the chosen class(es), with faithfulness scores.

    Args:
        face_image: a face (a photo works too: its largest face is used)
        method: the CAM method: GradCAM, GradCAM++, HiResCAM, XGradCAM, LayerCAM, EigenCAM, ScoreCAM or AblationCAM
        layer: the ResNet stage the map is taken at: layer1 to layer4 (default: the app's)
        target: the class the map is for: "predicted" or a label (angry, disgust, fear, happy, sad, surprise, neutral)
        all_classes: one map per class instead of the target's alone"""
    report = (lambda frac, desc: progress(frac, desc=desc)) if method in SLOW_METHODS else None
    return predictor.explain(face_image, method, layer, target, bool(all_classes), progress=report)


def ui_explain(predictor: Predictor, face_image, method, layer, target, all_classes, progress=gr.Progress()):
    if face_image is None:
        return None
    return api_explain(predictor, face_image, method, layer, target, all_classes, progress)


@errors_as_gr_error
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
    table = [[m["class"], round(m["probability"], 4), m.get("road"), m.get("cam_x_image_change")] for m in maps]
    msg = (f"**{result['method']}** on **{result['layer']}** ({result['map_size']}x{result['map_size']} map) "
           f"for **{shown['class']}**; face: {result['face_source']}; predicted **{result['predicted']}** "
           f"({result['confidence']:.0%}); {result['seconds']:.2f} s.")
    if result.get("notes"):
        msg += " " + " ".join(result["notes"])
    return (msg, enlarge(face, 256), big, result["probabilities"],
            gr.update(value=gallery, visible=gallery is not None), table)


@errors_as_gr_error
def pick_test_face(heldout: HeldOutSet, label, progress=gr.Progress()):
    face, index, true = heldout.random_face(None if label == "any" else label,
                                            progress=lambda f, d: progress(f, desc=d))
    gr.Info(f"Test face #{index}, labelled {true}.")
    return face


def build_explorer_tab(predictor: Predictor, heldout: HeldOutSet) -> None:
    photos, fer_faces = example_files("photos"), example_files("fer2013")
    layer0 = default_layer(predictor.map_sizes)
    layers = [(f"{name} ({predictor.map_sizes[name]}x{predictor.map_sizes[name]} map)", name) for name in CAM_LAYERS]
    with gr.Row():
        with gr.Column(scale=1):
            ex_input = photo_input(label="A face (a photo works too: its largest face is used)",
                                   sources=["upload", "clipboard", "webcam"], height=240, elem_id="ex-input")
            method = gr.Dropdown(list(METHODS), value=DEFAULT_METHOD, label="Method", info=METHOD_HINT)
            layer = gr.Radio(layers, value=layer0, label="Target layer (ResNet stage)")
            target = gr.Dropdown(["predicted", *predictor.labels], value="predicted", label="Target class")
            all_classes = gr.Checkbox(label="All seven classes at once (grid)", value=False)
            ex_opacity = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Heatmap opacity")
            ex_run = gr.Button("Explain", variant="primary")
            if fer_faces or photos:
                gr.Examples([[p] for p in fer_faces + photos], inputs=[ex_input], label="Examples",
                            examples_per_page=16, api_visibility="private")
            with gr.Row():
                test_class = gr.Dropdown(["any", *predictor.labels], value="any", label="Test-set face of class")
                test_pick = gr.Button("Random test face")
        with gr.Column(scale=2):
            ex_message = gr.Markdown(elem_id="explain-message")
            with gr.Row():
                ex_face = gr.Image(label="Face (48x48, enlarged)", interactive=False, height=260, format="png")
                ex_overlay = gr.Image(label="Heatmap", interactive=False, height=260, format="png",
                                      elem_id="ex-overlay")
                ex_probs = gr.Label(num_top_classes=NUM_CLASSES, label="Prediction", elem_id="ex-probs")
            ex_grid = gr.Gallery(label="One map per class", columns=4, height="auto", visible=False,
                                 object_fit="contain", elem_id="ex-grid")
            ex_table = gr.Dataframe(headers=["class", "probability", "ROAD", "CAM x image change"],
                                    label="Faithfulness (higher ROAD = the map points at what the model uses)",
                                    interactive=False)
            gr.Markdown(FAITHFULNESS_NOTE)
            with gr.Accordion("JSON answer (/explain)", open=False):
                explain_json = gr.JSON(label="/explain")

    inputs = [ex_input, method, layer, target, all_classes]
    outputs = [ex_message, ex_face, ex_overlay, ex_probs, ex_grid, ex_table]
    ex_run.click(bind(api_explain, predictor), inputs, [explain_json], api_name="explain",
                 concurrency_id="cam", concurrency_limit=1).success(
        render_explain, [explain_json, ex_opacity], outputs, api_visibility="private")
    gr.on([ex_input.change, method.change, layer.change, target.change, all_classes.change],
          bind(ui_explain, predictor), inputs, [explain_json], api_visibility="private", concurrency_id="cam",
          concurrency_limit=1, trigger_mode="always_last").success(
        render_explain, [explain_json, ex_opacity], outputs, api_visibility="private")
    ex_opacity.change(render_explain, [explain_json, ex_opacity], outputs, api_visibility="private",
                      trigger_mode="always_last", show_progress="hidden")
    test_pick.click(bind(pick_test_face, heldout), [test_class], [ex_input], api_visibility="private",
                    concurrency_id="testset", concurrency_limit=1)
