"""Stage 2, pictures and faces: image loading, face detectors, face crops, drawing, clips and face tracking.
Imports only core."""
