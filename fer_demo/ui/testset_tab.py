"""The Test set tab: the shipped test report, a confusion matrix to click, and the faces of a cell."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pandas as pd

from ..vision.drawing import enlarge, overlay
from ..serving.cams import DEFAULT_METHOD, default_layer, top_class_cams
from ..serving.predictor import Predictor
from ..serving.testset import MODES, NO_TTA_MODE, SUMMARY_HEADERS, DatasetUnavailable, HeldOutSet
from .common import bind, errors_as_gr_error

ROW_NORMALIZED, RAW_COUNTS = "row-normalized", "counts"
COUNTS = (ROW_NORMALIZED, RAW_COUNTS)  # the confusion matrix's two views, the first shown first
CORNER = "true \\ predicted"


@errors_as_gr_error
def api_confusion(heldout: HeldOutSet, true: str, predicted: str, mode: str = NO_TTA_MODE,
                  progress=gr.Progress()) -> dict:
    """Test faces of true class `true` that the model predicts as `predicted` (up to 12, most confident first).

    Args:
        true: the true class (a label: angry, disgust, fear, happy, sad, surprise, neutral)
        predicted: the predicted class (a label)
        mode: "no TTA", or "TTA" for the predictions averaged over the evaluator's 10 views"""
    return heldout.cell(true, predicted, mode=mode, progress=lambda f, d: progress(f, desc=d))


@errors_as_gr_error
def api_test_report(heldout: HeldOutSet) -> dict:
    """The shipped test report of the serving backend: accuracy, macro-F1, ECE, NLL, per-class figures
    and confusion, +/- TTA."""
    if heldout.report is None:
        raise DatasetUnavailable(f"this checkpoint ships no {heldout.report_file}")
    return heldout.report


def matrix_table(heldout: HeldOutSet, mode: str, counts: str):
    """The confusion matrix as a table shaded like a heatmap (a Styler); a click on a cell picks it."""
    m = heldout.metrics(mode)
    normalized = counts == ROW_NORMALIZED
    values = np.asarray(m["confusion_normalized" if normalized else "confusion"], dtype=float)
    frame = pd.DataFrame(values.round(3) if normalized else values.astype(int), columns=m["labels"])
    frame.insert(0, CORNER, m["labels"])
    return frame.style.background_gradient(cmap="Blues", subset=list(m["labels"]), axis=None,
                                           vmin=0, vmax=1 if normalized else None).format(
        "{:.2f}" if normalized else "{:d}", subset=list(m["labels"]))


@errors_as_gr_error
def render_figure(heldout: HeldOutSet, mode, counts):
    return matrix_table(heldout, mode, counts), heldout.per_class_rows(mode)


def clicked_cell(table: pd.DataFrame, evt: gr.SelectData):
    """(true, predicted) class names of a clicked matrix cell, read from its row and column headers;
    a click on the first column (the true class) picks the diagonal cell."""
    row, col = evt.index
    true = str(table.iloc[row, 0])
    return true, (str(table.columns[col]) if col > 0 else true)


def predictions_source(heldout: HeldOutSet, mode: str) -> str:
    """Where a cell's predictions came from, as the cell's message says it."""
    return f"predictions from {heldout.predictions_file}" if heldout.serves_shipped(mode) else \
        "predictions recomputed here"


@errors_as_gr_error
def render_cell(predictor: Predictor, heldout: HeldOutSet, result):
    if not result:
        return "", None
    layer = default_layer(predictor.map_sizes)
    items = []
    if result["faces"]:
        faces = np.stack([heldout.face(f["test_index"]) for f in result["faces"]])
        cams = top_class_cams(predictor, faces, [predictor.labels.index(f["predicted"]) for f in result["faces"]])
        for f, face, cam in zip(result["faces"], faces, cams):
            pair = np.concatenate([enlarge(face, 128), overlay(face, cam, 0.5, 128)], axis=1)
            items.append((pair, f"#{f['test_index']}: {f['predicted']} {f['confidence']:.0%}"))
    rc = result.get("report_count")
    msg = (f"**{result['count']}** of the {result['row_total']} test faces labelled **{result['true']}** are "
           f"predicted **{result['predicted']}** ({result['fraction_of_row']:.1%}; n={result['n_test']}; "
           f"{result['mode']}, {predictions_source(heldout, result['mode'])}"
           + (f"; the report counts {rc} in all its {heldout.report['n']} test faces" if rc is not None else "")
           + "). "
           + (f"Showing the {len(items)} most confident, each with its {DEFAULT_METHOD} ({layer})."
              if items else "No face in this cell."))
    return msg, items


def how_faces_are_predicted(heldout: HeldOutSet) -> str:
    """The tab's note on where the faces' predictions come from, before any is shown."""
    if heldout.shipped is not None:
        return f"and its faces' predictions are the evaluator's, from `{heldout.predictions_file}`"
    return f"and predicted once here (the checkpoint has no `{heldout.predictions_file}` for its report)"


def build_testset_tab(predictor: Predictor, heldout: HeldOutSet) -> None:
    labels = list(predictor.labels)
    modes = heldout.modes()
    if not modes:
        gr.Markdown(f"No test report beside the checkpoint (`{predictor.folder}`): run "
                    f"`{heldout.evaluate_command}` to write "
                    f"`{heldout.report_file}`.")
    with gr.Row(visible=bool(modes)):
        gr.Dataframe(value=heldout.summary_rows() or None, headers=SUMMARY_HEADERS,
                     label=f"Held-out test split (from the shipped report; classifier: {predictor.backend}; "
                           "probabilities calibrated by a temperature fitted on validation)",
                     interactive=False)
    with gr.Row(visible=bool(modes)):
        with gr.Column(scale=3):
            with gr.Row():
                ts_mode = gr.Radio(modes or list(MODES)[:1], value=list(MODES)[0], label="Predictions")
                ts_counts = gr.Radio(list(COUNTS), value=ROW_NORMALIZED, label="Confusion matrix (rows: true class)")
            matrix, per_class0 = render_figure(heldout, list(MODES)[0], ROW_NORMALIZED) if modes else (None, None)
            ts_matrix = gr.Dataframe(value=matrix, label="Confusion matrix: click a cell to see its faces",
                                     interactive=False, elem_id="confusion-matrix")
        with gr.Column(scale=2):
            ts_per_class = gr.Dataframe(value=per_class0, headers=["class", "precision", "recall", "F1", "support"],
                                        label="Per class", interactive=False)
    if heldout.reliability_png:
        gr.Image(value=str(heldout.reliability_png), type="filepath", interactive=False, elem_id="reliability",
                 label="Reliability: accuracy against the top probability, before and after the temperature "
                       "(a calibrated model follows the diagonal)")
    gr.Markdown("### Faces in one cell\nClick a cell of the matrix, or pick a true and a predicted class. This "
                f"needs the FER2013 test split: `{heldout.dataset}` (set env FER_DATASET or `--dataset`); it is "
                f"loaded once, on first use, {how_faces_are_predicted(heldout)}.")
    t0, p0 = heldout.most_confused()
    with gr.Row():
        cell_true = gr.Dropdown(labels, value=labels[t0], label="True class", elem_id="cell-true")
        cell_pred = gr.Dropdown(labels, value=labels[p0], label="Predicted class", elem_id="cell-pred",
                                info="preset: the most confused pair in the report")
        cell_run = gr.Button("Show faces", variant="primary")
    cell_message = gr.Markdown(elem_id="cell-message")
    cell_gallery = gr.Gallery(label=f"Face | {DEFAULT_METHOD} for the predicted class", columns=4, height="auto",
                              object_fit="contain", elem_id="cell-gallery")
    with gr.Accordion("JSON answer (/confusion)", open=False):
        cell_json = gr.JSON(label="/confusion")

    gr.on([ts_mode.change, ts_counts.change], bind(render_figure, heldout), [ts_mode, ts_counts],
          [ts_matrix, ts_per_class], api_visibility="private")
    show = dict(fn=bind(api_confusion, heldout), inputs=[cell_true, cell_pred, ts_mode], outputs=[cell_json],
                concurrency_id="testset", concurrency_limit=1)
    render = dict(fn=bind(render_cell, predictor, heldout), inputs=[cell_json], outputs=[cell_message, cell_gallery],
                  api_visibility="private", concurrency_id="cam", concurrency_limit=1)
    cell_run.click(api_name="confusion", **show).success(**render)
    ts_matrix.select(clicked_cell, [ts_matrix], [cell_true, cell_pred], api_visibility="private",
                     queue=False).then(api_visibility="private", **show).success(**render)
