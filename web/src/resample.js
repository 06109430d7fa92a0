// Resizing as OpenCV's cv2.resize does it, for the two cases the app uses: INTER_AREA when shrinking (each
// output pixel averages the input pixels it covers, fractional edges weighted by their overlap), bit for bit,
// and INTER_LINEAR when enlarging (pixel centres at +0.5, edges clamped).

// OpenCV's computeResizeAreaTab: [output index, input index, weight] for each input pixel an output pixel
// covers, the weight in float32 as OpenCV keeps it.
function areaTable(inSize, outSize) {
  const scale = inSize / outSize,
    table = [];
  for (let o = 0; o < outSize; o++) {
    const s1 = o * scale,
      s2 = s1 + scale,
      cell = Math.min(scale, inSize - s1);
    const i2 = Math.min(Math.floor(s2), inSize - 1),
      i1 = Math.min(Math.ceil(s1), i2);
    if (i1 - s1 > 1e-3) table.push([o, i1 - 1, Math.fround((i1 - s1) / cell)]);
    for (let i = i1; i < i2; i++) table.push([o, i, Math.fround(1 / cell)]);
    if (s2 - i2 > 1e-3) table.push([o, i2, Math.fround(Math.min(s2 - i2, 1, cell) / cell)]);
  }
  return table;
}

// cv2.resize(..., INTER_AREA) of uint8 pixels when shrinking, to the bit: halving averages each 2x2 block with
// integer rounding (OpenCV's fast path); any other scale sums each row's weighted pixels, then the rows, in
// float32 (each product rounded by Math.fround, each sum by the Float32Array), and rounds half to even.
function shrinkArea(src, w, h, stride, channels, nw, nh) {
  const out = new Uint8Array(nw * nh * channels);
  if (w === 2 * nw && h === 2 * nh) {
    for (let y = 0; y < nh; y++) {
      for (let x = 0; x < nw; x++) {
        for (let c = 0; c < channels; c++) {
          const p = (2 * y * w + 2 * x) * stride + c,
            q = p + w * stride;
          out[(y * nw + x) * channels + c] = (src[p] + src[p + stride] + src[q] + src[q + stride] + 2) >> 2;
        }
      }
    }
    return out;
  }
  const xt = areaTable(w, nw),
    yt = areaTable(h, nh),
    n = nw * channels;
  const row = new Float32Array(n),
    sum = new Float32Array(n);
  // the columns' table as flat typed arrays: where each weighted pixel goes in the row, where it comes from
  const to = Int32Array.from(xt, (t) => t[0] * channels),
    from = Int32Array.from(xt, (t) => t[1] * stride),
    weight = Float32Array.from(xt, (t) => t[2]);
  const sumRow = (sy) => {
    row.fill(0);
    const base = sy * w * stride;
    for (let k = 0; k < weight.length; k++) {
      const d = to[k],
        q = base + from[k],
        a = weight[k];
      for (let c = 0; c < channels; c++) row[d + c] += Math.fround(src[q + c] * a);
    }
  };
  let current = yt[0][0];
  const flush = (y) => {
    for (let k = 0; k < n; k++) out[y * n + k] = Math.min(255, Math.max(0, pyRound(sum[k])));
  };
  let rowOf = -1; // the source row `row` holds: a row shared by two output rows is summed once
  for (const [y, sy, beta] of yt) {
    if (sy !== rowOf) {
      rowOf = sy;
      sumRow(sy);
    }
    if (y !== current) {
      flush(current);
      current = y;
      for (let k = 0; k < n; k++) sum[k] = beta * row[k];
    } else {
      for (let k = 0; k < n; k++) sum[k] += Math.fround(beta * row[k]);
    }
  }
  flush(current);
  return out;
}

// INTER_LINEAR's two taps for output pixel `o` (pixel centres at +0.5, edges clamped): [first input index,
// second input index, weight of the second].
export function linearTap(o, scale, inSize) {
  const s = (o + 0.5) * scale - 0.5;
  let i = Math.floor(s),
    f = s - i;
  if (i < 0) {
    i = 0;
    f = 0;
  }
  if (i >= inSize - 1) {
    i = inSize - 1;
    f = 0;
  }
  return [i, Math.min(i + 1, inSize - 1), f];
}

function linearTable(inSize, outSize) {
  return Array.from({ length: outSize }, (_, o) => linearTap(o, inSize / outSize, inSize));
}

// src: typed array of h x w x `stride` values, channels 0..channels-1 resized to nw x nh; a Uint8Array (rounded
// to 8 bits as OpenCV stores uint8 results). Shrinking is OpenCV's INTER_AREA exactly; enlarging is INTER_LINEAR
// in float (OpenCV's fixed-point version may differ by a gray level).
export function resize(src, w, h, stride, channels, nw, nh) {
  if (nw <= w && nh <= h) return shrinkArea(src, w, h, stride, channels, nw, nh);
  const tx = linearTable(w, nw),
    ty = linearTable(h, nh);
  const mid = new Float32Array(h * nw * channels);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < nw; x++) {
      const [i0, i1, w1] = tx[x],
        w0 = 1 - w1;
      for (let c = 0; c < channels; c++) {
        mid[(y * nw + x) * channels + c] = w0 * src[(y * w + i0) * stride + c] + w1 * src[(y * w + i1) * stride + c];
      }
    }
  }
  const out = new Uint8Array(nw * nh * channels);
  for (let y = 0; y < nh; y++) {
    const [i0, i1, w1] = ty[y],
      w0 = 1 - w1;
    for (let x = 0; x < nw * channels; x++) {
      out[y * nw * channels + x] = Math.min(
        255,
        Math.max(0, Math.round(w0 * mid[i0 * nw * channels + x] + w1 * mid[i1 * nw * channels + x])),
      );
    }
  }
  return out;
}

// Python's round(): halves go to the even neighbour.
export function pyRound(v) {
  const r = Math.round(v); // halves go up here
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
