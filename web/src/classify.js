// The classifier: uint8 48x48 faces -> normalized input -> (calibrated softmax probabilities, layer4 feature
// maps), all faces of a photo in one batch. The temperature is the checkpoint's for one view (web_config.json).

export class Classifier {
  constructor(ort, session, config) {
    this.ort = ort;
    this.session = session;
    this.config = config;
  }

  async classify(faces) {
    const n = faces.length,
      s = this.config.input_size,
      { mean, std } = this.config;
    if (!n) return { probs: [], features: null, channels: 0, mapSize: 0 };
    const x = new Float32Array(n * s * s);
    faces.forEach((face, i) => {
      for (let k = 0; k < s * s; k++) x[i * s * s + k] = (face[k] / 255 - mean) / std;
    });
    const out = await this.session.run({ input: new this.ort.Tensor('float32', x, [n, 1, s, s]) });
    const logits = out.logits.data,
      k = this.config.labels.length;
    const probs = [];
    const t = this.config.temperature;
    for (let i = 0; i < n; i++) probs.push(softmax(logits.subarray(i * k, (i + 1) * k), t));
    const feats = out[this.config.cam_layer];
    return { probs, features: feats.data, channels: feats.dims[1], mapSize: feats.dims[2] };
  }
}

// softmax(logits / temperature): fer_demo/core/calibration.py's calibrate for one view
export function softmax(logits, temperature = 1) {
  const m = Math.max(...logits);
  const e = Array.from(logits, (v) => Math.exp((v - m) / temperature));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

export function argmax(values) {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}
