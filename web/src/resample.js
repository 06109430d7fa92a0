// Resizing as OpenCV's cv2.resize does it, for the two cases the app uses: INTER_AREA when shrinking (each
// output pixel averages the input pixels it covers, fractional edges weighted by their overlap: separable,
// so exact as two passes) and INTER_LINEAR when enlarging (pixel centres at +0.5, edges clamped).

function areaTable(inSize, outSize) {
  const scale = inSize / outSize, table = [];
  for (let o = 0; o < outSize; o++) {
    const a = o * scale, b = Math.min(inSize, (o + 1) * scale);
    const idx = [], ws = [];
    for (let i = Math.floor(a); i < Math.ceil(b - 1e-9); i++) {
      const w = Math.min(b, i + 1) - Math.max(a, i);
      if (w > 1e-9) { idx.push(i); ws.push(w / scale); }
    }
    table.push({ idx, ws });
  }
  return table;
}

function linearTable(inSize, outSize) {
  const scale = inSize / outSize, table = [];
  for (let o = 0; o < outSize; o++) {
    let s = (o + 0.5) * scale - 0.5;
    let i = Math.floor(s), f = s - i;
    if (i < 0) { i = 0; f = 0; }
    if (i >= inSize - 1) { i = inSize - 1; f = 0; }
    table.push({ idx: [i, Math.min(i + 1, inSize - 1)], ws: [1 - f, f] });
  }
  return table;
}

// src: typed array of h x w x `stride` values, channels 0..channels-1 resized; returns a Uint8Array
// (rounded to 8 bits as OpenCV stores uint8 results) or a Float32Array when `float` is set.
export function resize(src, w, h, stride, channels, nw, nh, { float = false } = {}) {
  const tx = nw < w ? areaTable(w, nw) : linearTable(w, nw);
  const ty = nh < h ? areaTable(h, nh) : linearTable(h, nh);
  const mid = new Float32Array(h * nw * channels);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < nw; x++) {
      const { idx, ws } = tx[x];
      for (let c = 0; c < channels; c++) {
        let s = 0;
        for (let k = 0; k < idx.length; k++) s += ws[k] * src[(y * w + idx[k]) * stride + c];
        mid[(y * nw + x) * channels + c] = s;
      }
    }
  }
  const out = float ? new Float32Array(nw * nh * channels) : new Uint8Array(nw * nh * channels);
  for (let y = 0; y < nh; y++) {
    const { idx, ws } = ty[y];
    for (let x = 0; x < nw; x++) {
      for (let c = 0; c < channels; c++) {
        let s = 0;
        for (let k = 0; k < idx.length; k++) s += ws[k] * mid[(idx[k] * nw + x) * channels + c];
        out[(y * nw + x) * channels + c] = float ? s : Math.min(255, Math.max(0, Math.round(s)));
      }
    }
  }
  return out;
}

// Python's round(): halves go to the even neighbour.
export function pyRound(v) {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
