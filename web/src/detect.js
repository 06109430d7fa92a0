// Face detection with YuNet's ONNX file, decoded as OpenCV's cv2.FaceDetectorYN does (fer_demo/vision/detectors.py):
// the photo is seen at `side` px on its longest side, padded to a multiple of 32, fed as BGR 0-255; each
// stride (8, 16, 32) gives cls, obj, bbox and kps per cell; score = sqrt(cls * obj); boxes above the score
// threshold go through NMS on integer rectangles; faces under the minimum size are dropped; the rest are
// mapped back to the photo's pixels, kept if in focus (focus.js) and sorted largest first.
import { inFocus } from './focus.js';
import { pyRound, resize } from './resample.js';

const DIVISOR = 32;

export class FaceDetector {
  constructor(ort, session, settings) {
    this.ort = ort;
    this.session = session;
    this.s = settings;
  }

  // image: {image: ImageData, width, height}; returns [{box: {x, y, w, h}, score, landmarks: [[x, y] x 5]}]
  // `side`: the longest side of the detector's view (the app's by default; the webcam's is smaller)
  async detect(photo, side = this.s.side) {
    const { width: w, height: h } = photo;
    const factor = side / Math.max(w, h);
    const sw = factor === 1 ? w : Math.max(1, pyRound(w * factor)),
      sh = factor === 1 ? h : Math.max(1, pyRound(h * factor));
    const rgb = factor === 1 ? photo.image.data : resize(photo.image.data, w, h, 4, 3, sw, sh);
    const stride = factor === 1 ? 4 : 3;
    const minSide = Math.max(this.s.min_face_pixels, Math.trunc(this.s.min_face_fraction * Math.min(sw, sh)));
    if (Math.min(sw, sh) < minSide) return [];
    const padW = (Math.trunc((sw - 1) / DIVISOR) + 1) * DIVISOR,
      padH = (Math.trunc((sh - 1) / DIVISOR) + 1) * DIVISOR;
    const plane = padW * padH;
    const blob = new Float32Array(3 * plane); // zero padding right and below, as OpenCV pads
    for (let y = 0; y < sh; y++) {
      for (let x = 0; x < sw; x++) {
        const p = (y * sw + x) * stride,
          q = y * padW + x;
        blob[q] = rgb[p + 2]; // B
        blob[plane + q] = rgb[p + 1]; // G
        blob[2 * plane + q] = rgb[p]; // R
      }
    }
    const input = new this.ort.Tensor('float32', blob, [1, 3, padH, padW]);
    const out = await this.session.run({ [this.session.inputNames[0]]: input });
    const found = decode(out, padW, padH, this.s);
    const kept = found.filter((d) => Math.max(d.box.w, d.box.h) >= minSide).map((d) => scaled(d, 1 / factor));
    return inFocus(photo, kept, this.s).sort((a, b) => b.box.w * b.box.h - a.box.w * a.box.h);
  }
}

function clamp01(v) {
  return Math.min(1, Math.max(0, v));
}

export function decode(out, padW, padH, s) {
  const rows = [];
  for (const stride of s.strides) {
    const cols = Math.trunc(padW / stride),
      nrows = Math.trunc(padH / stride);
    const cls = out[`cls_${stride}`].data,
      obj = out[`obj_${stride}`].data;
    const bbox = out[`bbox_${stride}`].data,
      kps = out[`kps_${stride}`].data;
    for (let r = 0; r < nrows; r++) {
      for (let c = 0; c < cols; c++) {
        const i = r * cols + c;
        const score = Math.sqrt(clamp01(cls[i]) * clamp01(obj[i]));
        if (score < s.score) continue;
        const cx = (c + bbox[i * 4]) * stride,
          cy = (r + bbox[i * 4 + 1]) * stride;
        const bw = Math.exp(bbox[i * 4 + 2]) * stride,
          bh = Math.exp(bbox[i * 4 + 3]) * stride;
        const landmarks = [];
        for (let n = 0; n < 5; n++)
          landmarks.push([(kps[i * 10 + 2 * n] + c) * stride, (kps[i * 10 + 2 * n + 1] + r) * stride]);
        rows.push({ raw: [cx - bw / 2, cy - bh / 2, bw, bh], score, landmarks });
      }
    }
  }
  const keep = rows.length > 1 ? nms(rows, s.score, s.nms, s.top_k) : rows;
  // fer_demo/vision/detectors.py rounds the float box to whole pixels
  return keep.map((d) => ({
    box: { x: pyRound(d.raw[0]), y: pyRound(d.raw[1]), w: pyRound(d.raw[2]), h: pyRound(d.raw[3]) },
    score: d.score,
    landmarks: d.landmarks,
  }));
}

// cv::dnn::NMSBoxes on Rect2i (coordinates truncated to int), highest score first, IoU > threshold suppressed.
function nms(rows, scoreThreshold, nmsThreshold, topK) {
  const rects = rows.map((d) => d.raw.map((v) => Math.trunc(v)));
  const order = rows
    .map((d, i) => i)
    .filter((i) => rows[i].score > scoreThreshold)
    .sort((a, b) => rows[b].score - rows[a].score || a - b)
    .slice(0, topK);
  const kept = [];
  for (const i of order) {
    if (kept.every((j) => iou(rects[i], rects[j]) <= nmsThreshold)) kept.push(i);
  }
  return kept.map((i) => rows[i]);
}

function iou(a, b) {
  const x0 = Math.max(a[0], b[0]),
    y0 = Math.max(a[1], b[1]);
  const x1 = Math.min(a[0] + a[2], b[0] + b[2]),
    y1 = Math.min(a[1] + a[3], b[1] + b[3]);
  const inter = x1 > x0 && y1 > y0 ? (x1 - x0) * (y1 - y0) : 0;
  const union = a[2] * a[3] + b[2] * b[3] - inter;
  return union > 0 ? inter / union : 0;
}

function scaled(d, f) {
  return {
    box: { x: pyRound(d.box.x * f), y: pyRound(d.box.y * f), w: pyRound(d.box.w * f), h: pyRound(d.box.h * f) },
    score: d.score,
    landmarks: d.landmarks.map(([x, y]) => [x * f, y * f]),
  };
}
