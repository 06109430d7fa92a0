"""Follow faces from frame to frame, so that each person keeps one number.

Greedy matching by centre distance: a face in the new frame continues the
person whose last box is nearest, measured in face sizes, when it is near
enough and of a similar size; every other face starts a new person. A person
unseen for longer than MAX_GAP_SECONDS is let go, so a face that comes back
later gets a new number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .detectors import Box

MAX_SHIFT = 1.0  # how far (in face sizes) a face may move between two sampled frames and stay the same person
MAX_SIZE_RATIO = 1.6  # ... and how much its box side may grow or shrink
MAX_GAP_SECONDS = 2.0  # a person unseen for longer is let go


@dataclass
class Track:
    person: int  # 1-based, in order of first appearance
    box: Box
    last_seen: float  # seconds


def shift(a: Box, b: Box) -> float:
    """Distance between the boxes' centres, in face sizes (the mean side of the two boxes)."""
    (ax, ay), (bx, by) = a.centre, b.centre
    size = (a.w + a.h + b.w + b.h) / 4
    return math.hypot(ax - bx, ay - by) / max(size, 1.0)


def same_size(a: Box, b: Box) -> bool:
    sa, sb = math.sqrt(max(a.area, 1)), math.sqrt(max(b.area, 1))
    return max(sa, sb) / min(sa, sb) <= MAX_SIZE_RATIO


class Tracker:
    """Person numbers for the faces of consecutive frames: `update(boxes, time)` once per frame, in time order."""

    def __init__(self):
        self.tracks: list[Track] = []
        self.count = 0

    def update(self, boxes: list[Box], time: float) -> list[int]:
        """The person number of each box, in the order given."""
        live = [t for t in self.tracks if time - t.last_seen <= MAX_GAP_SECONDS]
        pairs = sorted((shift(t.box, b), ti, bi) for ti, t in enumerate(live) for bi, b in enumerate(boxes)
                       if shift(t.box, b) <= MAX_SHIFT and same_size(t.box, b))
        match: dict[int, Track] = {}
        taken: set[int] = set()
        for _, ti, bi in pairs:  # nearest pairs first; each track and each box is used once
            if bi not in match and ti not in taken:
                match[bi] = live[ti]
                taken.add(ti)
        persons = []
        for bi, box in enumerate(boxes):
            track = match.get(bi)
            if track is None:
                self.count += 1
                track = Track(self.count, box, time)
                live.append(track)
            track.box, track.last_seen = box, time
            persons.append(track.person)
        self.tracks = live
        return persons
