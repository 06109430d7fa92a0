"""Stage 3, the answers: the Predictor, the public predict/explain API, Grad-CAM, the held-out test set, videos
and annotated pictures. Imports only core and vision; ui/, the CLI and the server sit above it."""
