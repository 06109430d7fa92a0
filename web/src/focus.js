// The focus rule, as fer_demo/vision/detectors.py applies it (`focus`, `in_focus`; docs/detection.md): a box's focus is
// the variance of the Laplacian of its part inside the photo, in gray (PIL's luma), area-resampled to a square of
// `focus_side` px or of its own shorter side if shorter; a box under `focus_ratio` x the sharpest box's focus is a
// blurred person, a crowd or painted scenery behind the subject, and gets no box. Settings: web_config.json.
import { resize } from './resample.js';

// photo: {image: ImageData, width, height}; box: {x, y, w, h} in the photo's pixels
export function focus(photo, box, side) {
  const { width: w, height: h } = photo;
  const x0 = Math.max(box.x, 0),
    y0 = Math.max(box.y, 0);
  const x1 = Math.min(box.x + box.w, w),
    y1 = Math.min(box.y + box.h, h);
  if (x1 <= x0 || y1 <= y0) return 0;
  const pw = x1 - x0,
    ph = y1 - y0,
    rgba = photo.image.data;
  const gray = new Uint8Array(pw * ph);
  for (let y = 0; y < ph; y++) {
    for (let x = 0; x < pw; x++) {
      const p = ((y0 + y) * w + x0 + x) * 4;
      gray[y * pw + x] = (rgba[p] * 19595 + rgba[p + 1] * 38470 + rgba[p + 2] * 7471 + 0x8000) >> 16;
    }
  }
  const n = Math.min(side, pw, ph);
  return laplacianVariance(resize(gray, pw, ph, 1, 1, n, n), n);
}

// cv2.Laplacian's 3x3 kernel (0 1 0 / 1 -4 1 / 0 1 0), borders reflected without repeating the edge pixel
function laplacianVariance(g, n) {
  const at = (x, y) => g[reflect(y, n) * n + reflect(x, n)];
  let sum = 0,
    sq = 0;
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const v = at(x - 1, y) + at(x + 1, y) + at(x, y - 1) + at(x, y + 1) - 4 * g[y * n + x];
      sum += v;
      sq += v * v;
    }
  }
  const mean = sum / (n * n);
  return sq / (n * n) - mean * mean;
}

function reflect(i, n) {
  return i < 0 ? -i : i >= n ? 2 * n - 2 - i : i;
}

// the detections (in the photo's pixels) whose focus is at least `focus_ratio` x the sharpest one's
export function inFocus(photo, found, s) {
  const measured = found.map((d) => ({ ...d, focus: focus(photo, d.box, s.focus_side) }));
  const floor = s.focus_ratio * Math.max(0, ...measured.map((d) => d.focus));
  return measured.filter((d) => d.focus >= floor);
}
