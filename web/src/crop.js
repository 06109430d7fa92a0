// FER2013-style face crops, the rule of fer_demo/vision/faces.py: a square of side max(box) x scale around the box
// centre, turned so that YuNet's eye landmarks come out level, cut out with replicated edges, converted to
// gray with PIL's luma, shrunk with area averaging when large, and warped to 48x48 with bilinear sampling.
import { pyRound, resize } from './resample.js';

export function faceCrop(detection, geometry) {
  const { box } = detection;
  const side = Math.max(box.w, box.h) * geometry.scale;
  let angle = 0;
  if (geometry.align && detection.landmarks) {
    const [[rx, ry], [lx, ly]] = detection.landmarks;
    angle = (Math.atan2(ly - ry, lx - rx) * 180) / Math.PI;
  }
  const t = (angle * Math.PI) / 180;
  const cx = box.x + box.w / 2,
    cy = box.y + box.h / 2;
  const shift = geometry.down * side;
  return { cx: cx - shift * Math.sin(t), cy: cy + shift * Math.cos(t), side, angle };
}

// The centred square that "classify the whole image as one face" uses.
export function wholeImageBox(w, h) {
  const s = Math.min(w, h);
  return { x: Math.trunc((w - s) / 2), y: Math.trunc((h - s) / 2), w: s, h: s };
}

export function wholeImageCrop(w, h) {
  const b = wholeImageBox(w, h);
  return { cx: b.x + b.w / 2, cy: b.y + b.h / 2, side: b.w, angle: 0 };
}

// The axis-aligned box around the (turned) square.
export function cropBounds(crop) {
  const t = crop.angle * (Math.PI / 180);
  const half = (crop.side / 2) * (Math.abs(Math.cos(t)) + Math.abs(Math.sin(t)));
  const side = Math.ceil(2 * half) + 1;
  return { x: Math.floor(crop.cx - half), y: Math.floor(crop.cy - half), w: side, h: side };
}

// cv2.getRotationMatrix2D(centre, angle, size / side), then the centre moved to the middle of the crop, with
// the same operations in the same order as OpenCV and fer_demo/vision/faces.py, so that the doubles come out the same.
export function cropMatrix(crop, size) {
  const scale = size / crop.side,
    t = crop.angle * (Math.PI / 180);
  const a = Math.cos(t) * scale,
    b = Math.sin(t) * scale;
  return [
    a,
    b,
    (1 - a) * crop.cx - b * crop.cy + (size / 2 - crop.cx),
    -b,
    a,
    b * crop.cx + (1 - a) * crop.cy + (size / 2 - crop.cy),
  ];
}

// PIL's ITU-R 601-2 luma, in its fixed-point form.
function luma(r, g, b) {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
}

// The (size x size) uint8 gray face under `crop` of an RGBA ImageData.
export function extract(image, crop, size = 48) {
  const { width: W, height: H, data } = image;
  const bounds = cropBounds(crop);
  let pw = bounds.w,
    ph = bounds.h;
  let patch = new Uint8Array(pw * ph);
  for (let y = 0; y < ph; y++) {
    const sy = Math.min(H - 1, Math.max(0, bounds.y + y));
    for (let x = 0; x < pw; x++) {
      const sx = Math.min(W - 1, Math.max(0, bounds.x + x));
      const p = (sy * W + sx) * 4;
      patch[y * pw + x] = luma(data[p], data[p + 1], data[p + 2]);
    }
  }
  let local = { cx: crop.cx - bounds.x, cy: crop.cy - bounds.y, side: crop.side, angle: crop.angle };
  const shrink = Math.min(1, (2 * size) / crop.side);
  if (shrink < 1) {
    const nw = Math.max(1, pyRound(pw * shrink)),
      nh = Math.max(1, pyRound(ph * shrink));
    patch = resize(patch, pw, ph, 1, 1, nw, nh);
    pw = nw;
    ph = nh;
    local = { cx: local.cx * shrink, cy: local.cy * shrink, side: local.side * shrink, angle: local.angle };
  }
  return warp(patch, pw, ph, cropMatrix(local, size), size);
}

// cv2.warpAffine(..., INTER_LINEAR, BORDER_REPLICATE) of uint8 pixels, to the bit, as OpenCV computes it: the
// map inverted in doubles; source positions in 1/1024 px, rounded half to even, then to OpenCV's 1/32-px grid;
// bilinear weights in 15-bit fixed point (exact products of the 1/32 steps), the sum rounded up at the half.
const AB_SCALE = 1024,
  GRID = 32,
  COEF_SCALE = 1 << 15;

function warp(src, w, h, m, size) {
  const [m0, m1, m2, m3, m4, m5] = m;
  const det = m0 * m4 - m1 * m3,
    D = det !== 0 ? 1 / det : 0;
  const a = m4 * D,
    b = m1 * -D,
    d = m3 * -D,
    e = m0 * D;
  const c = -a * m2 - b * m5,
    f = -d * m2 - e * m5;
  const out = new Uint8Array(size * size);
  const px = (x, y) => src[Math.min(h - 1, Math.max(0, y)) * w + Math.min(w - 1, Math.max(0, x))];
  const half = AB_SCALE / GRID / 2;
  for (let y = 0; y < size; y++) {
    const X0 = pyRound((b * y + c) * AB_SCALE) + half,
      Y0 = pyRound((e * y + f) * AB_SCALE) + half;
    for (let x = 0; x < size; x++) {
      const X = (X0 + pyRound(a * x * AB_SCALE)) >> 5,
        Y = (Y0 + pyRound(d * x * AB_SCALE)) >> 5;
      const x0 = X >> 5,
        y0 = Y >> 5,
        fx = X & (GRID - 1),
        fy = Y & (GRID - 1);
      const w00 = (GRID - fx) * (GRID - fy),
        w01 = fx * (GRID - fy),
        w10 = (GRID - fx) * fy,
        w11 = fx * fy;
      const sum = w00 * px(x0, y0) + w01 * px(x0 + 1, y0) + w10 * px(x0, y0 + 1) + w11 * px(x0 + 1, y0 + 1);
      out[y * size + x] = Math.min(255, (sum * (COEF_SCALE / (GRID * GRID)) + COEF_SCALE / 2) >> 15);
    }
  }
  return out;
}

// Faces numbered left to right (then top to bottom).
export function readingOrder(detections) {
  return [...detections].sort((p, q) => p.box.x + p.box.w / 2 - (q.box.x + q.box.w / 2) || p.box.y - q.box.y);
}
