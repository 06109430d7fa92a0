"""The Gradio UI: `build_app` (app.py) lays out one module per tab over plain functions that tests call
directly; common.py holds what the tabs share, model_card.py the About tab."""

from .app import build_app
from .model_card import model_card_files

__all__ = ["build_app", "model_card_files"]
