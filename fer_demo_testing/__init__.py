"""Helpers that the tests and the benches share, run from a clone: app.py on a free loopback port (local_app),
the photo sets with their face counts (photo_sets) and headless Chromium with a fake webcam (browser). Not part of
the runtime package: neither the wheel nor the Space upload carries them."""
