"""fer-demo: facial-expression recognition on FER2013 with timm ResNets and Grad-CAM.

    import fer_demo
    result = fer_demo.predict("photo.jpg")      # the app's /predict answer: faces, boxes, labels, probabilities
    cam = fer_demo.explain("face.png", method="GradCAM++", layer="layer4", target="predicted")  # /explain's
    p = fer_demo.Predictor(backend="torch", tta="none")  # for control and reuse: fer_demo.predict(x, predictor=p)

The names are imported on first use, so that `import fer_demo` stays cheap (no torch until needed).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {"Predictor": "fer_demo.serving.predictor", "predict": "fer_demo.serving.api",
         "explain": "fer_demo.serving.api", "shared_predictor": "fer_demo.serving.api"}
__all__ = ["Predictor", "explain", "predict", "shared_predictor", "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fer_demo' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
