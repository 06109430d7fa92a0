// Class activation maps from the last stage: after global average pooling and one linear layer, the
// gradient of a class's logit with respect to layer4's maps is that class's fc weights / (h x w) at every
// position, so Grad-CAM there is exactly relu(sum_k w_ck A_k), up to scale: no gradients needed. Then, as
// pytorch-grad-cam does, the map is scaled to [0, 1] and enlarged to the face's size bilinearly.
import { linearTap } from './resample.js';

export function cams(result, classes, fcWeight, size) {
  const { features, channels, mapSize } = result;
  const area = mapSize * mapSize;
  return classes.map((c, n) => {
    const w = fcWeight[c],
      map = new Float32Array(area);
    const base = n * channels * area;
    for (let k = 0; k < channels; k++) {
      const wk = w[k],
        off = base + k * area;
      for (let j = 0; j < area; j++) map[j] += wk * features[off + j];
    }
    let lo = Infinity,
      hi = -Infinity;
    for (let j = 0; j < area; j++) {
      map[j] = Math.max(0, map[j]);
      lo = Math.min(lo, map[j]);
      hi = Math.max(hi, map[j]);
    }
    for (let j = 0; j < area; j++) map[j] = (map[j] - lo) / (hi - lo + 1e-7);
    return { coarse: map, map: enlarge(map, mapSize, size) };
  });
}

// cv2.resize(..., INTER_LINEAR) of a small float map: pixel centres at +0.5, edges clamped.
function enlarge(map, n, size) {
  const out = new Float32Array(size * size),
    scale = n / size;
  const coord = (o) => linearTap(o, scale, n);
  for (let y = 0; y < size; y++) {
    const [y0, y1, fy] = coord(y);
    for (let x = 0; x < size; x++) {
      const [x0, x1, fx] = coord(x);
      const v =
        (1 - fy) * ((1 - fx) * map[y0 * n + x0] + fx * map[y0 * n + x1]) +
        fy * ((1 - fx) * map[y1 * n + x0] + fx * map[y1 * n + x1]);
      out[y * size + x] = Math.min(1, Math.max(0, v));
    }
  }
  return out;
}
