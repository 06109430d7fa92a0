// FER2013-style face crops, the rule of fer_demo/faces.py: a square of side max(box) x scale around the box
// centre, turned so that YuNet's eye landmarks come out level, cut out with replicated edges, converted to
// gray with PIL's luma, shrunk with area averaging when large, and warped to 48x48 with bilinear sampling.
import { resize } from './resample.js';

export function faceCrop(detection, geometry) {
  const { box } = detection;
  const side = Math.max(box.w, box.h) * geometry.scale;
  let angle = 0;
  if (geometry.align && detection.landmarks) {
    const [[rx, ry], [lx, ly]] = detection.landmarks;
    angle = (Math.atan2(ly - ry, lx - rx) * 180) / Math.PI;
  }
  const t = (angle * Math.PI) / 180;
  const cx = box.x + box.w / 2, cy = box.y + box.h / 2;
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
  const t = (crop.angle * Math.PI) / 180;
  const half = (crop.side / 2) * (Math.abs(Math.cos(t)) + Math.abs(Math.sin(t)));
  const side = Math.ceil(2 * half) + 1;
  return { x: Math.floor(crop.cx - half), y: Math.floor(crop.cy - half), w: side, h: side };
}

// cv2.getRotationMatrix2D(centre, angle, size / side), then the centre moved to the middle of the crop.
export function cropMatrix(crop, size) {
  const scale = size / crop.side, t = (crop.angle * Math.PI) / 180;
  const a = scale * Math.cos(t), b = scale * Math.sin(t);
  return [a, b, (1 - a) * crop.cx - b * crop.cy + size / 2 - crop.cx,
    -b, a, b * crop.cx + (1 - a) * crop.cy + size / 2 - crop.cy];
}

// PIL's ITU-R 601-2 luma, in its fixed-point form.
function luma(r, g, b) {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
}

// The (size x size) uint8 gray face under `crop` of an RGBA ImageData.
export function extract(image, crop, size = 48) {
  const { width: W, height: H, data } = image;
  const bounds = cropBounds(crop);
  let pw = bounds.w, ph = bounds.h;
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
    const nw = Math.max(1, Math.round(pw * shrink)), nh = Math.max(1, Math.round(ph * shrink));
    patch = resize(patch, pw, ph, 1, 1, nw, nh);
    pw = nw; ph = nh;
    local = { cx: local.cx * shrink, cy: local.cy * shrink, side: local.side * shrink, angle: local.angle };
  }
  return warp(patch, pw, ph, cropMatrix(local, size), size);
}

// cv2.warpAffine(..., INTER_LINEAR, BORDER_REPLICATE): each output pixel samples the inverse map, with
// source positions on OpenCV's 1/32-pixel grid.
function warp(src, w, h, m, size) {
  const [a, b, c, d, e, f] = m;
  const det = a * e - b * d;
  const ia = e / det, ib = -b / det, id = -d / det, ie = a / det;
  const ic = -(ia * c + ib * f), iff = -(id * c + ie * f);
  const out = new Uint8Array(size * size);
  const px = (x, y) => src[Math.min(h - 1, Math.max(0, y)) * w + Math.min(w - 1, Math.max(0, x))];
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const X = Math.floor((ia * x + ib * y + ic) * 32 + 0.5), Y = Math.floor((id * x + ie * y + iff) * 32 + 0.5);
      const x0 = X >> 5, y0 = Y >> 5, fx = (X & 31) / 32, fy = (Y & 31) / 32;
      const v = (1 - fy) * ((1 - fx) * px(x0, y0) + fx * px(x0 + 1, y0)) + fy * ((1 - fx) * px(x0, y0 + 1) + fx * px(x0 + 1, y0 + 1));
      out[y * size + x] = Math.round(v);
    }
  }
  return out;
}

// Faces numbered left to right (then top to bottom).
export function readingOrder(detections) {
  return [...detections].sort((p, q) => (p.box.x + p.box.w / 2) - (q.box.x + q.box.w / 2) || p.box.y - q.box.y);
}
