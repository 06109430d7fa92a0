// The models' thread: loads YuNet and the classifier through onnxruntime-web (WASM, one thread per core when the
// page is cross-origin isolated), then turns each photo or webcam frame it is sent into labelled faces, so that
// the page's own thread only draws and stays responsive. One job at a time, in the order they come.
import * as ort from 'onnxruntime-web/wasm';
import { Classifier } from './classify.js';
import { FaceDetector } from './detect.js';
import { fromBitmap, ImageLoadError, loadImage } from './image.js';
import { analyze } from './pipeline.js';

let models = null;
let queue = Promise.resolve();

// Every core when SharedArrayBuffer is allowed (ONNX Runtime's own default is min(4, ceil(cores / 2)): 1 on 2
// cores), or the page address's ?threads=N (for measuring); a page that is not cross-origin isolated cannot share
// memory between threads, so gets one.
function threadCount(base) {
  const asked = Number(new URL(base).searchParams.get('threads'));
  if (!self.crossOriginIsolated) return 1;
  return asked >= 1 ? Math.floor(asked) : Math.max(1, navigator.hardwareConcurrency || 1);
}

async function load(base) {
  const t0 = performance.now();
  ort.env.wasm.wasmPaths = new URL('ort/', base).href;
  ort.env.wasm.numThreads = threadCount(base);
  ort.env.logLevel = 'error';
  const config = await (await fetch(new URL('models/web_config.json', base))).json();
  const options = { executionProviders: ['wasm'], graphOptimizationLevel: 'all' };
  const detector = await ort.InferenceSession.create(new URL('models/yunet.onnx', base).href, options);
  const classifier = await ort.InferenceSession.create(new URL('models/classifier.onnx', base).href, options);
  models = {
    config,
    detector: new FaceDetector(ort, detector, config.detector),
    classifier: new Classifier(ort, classifier, config),
  };
  return {
    config,
    backend: 'wasm',
    threads: ort.env.wasm.numThreads,
    isolated: self.crossOriginIsolated,
    version: ort.env.versions?.web || '',
    loadMs: performance.now() - t0,
  };
}

// A file (decoded here, with the app's checks) or an ImageBitmap (a webcam frame, a test's canvas).
async function photoOf(job) {
  if (job.file !== undefined) return loadImage(job.file, models.config.limits);
  try {
    return fromBitmap(job.bitmap, models.config.limits.max_side);
  } finally {
    job.bitmap.close();
  }
}

async function run(job) {
  const t0 = performance.now();
  const photo = await photoOf(job);
  const decode = performance.now() - t0;
  const analysis = await analyze(photo, models, job.options);
  analysis.times = { decode, ...analysis.times };
  // the pixels go back for drawing, as a plain array (moved, not copied), with the size and the scale
  const { image, ...rest } = photo;
  return { photo: { ...rest, pixels: image.data }, analysis };
}

function transferables({ photo, analysis }) {
  const maps = (analysis.maps || []).filter(Boolean).flatMap((m) => [m.map.buffer, m.coarse.buffer]);
  return [photo.pixels.buffer, ...analysis.faces.map((f) => f.face.buffer), ...maps];
}

self.onmessage = ({ data: job }) => {
  queue = queue.then(async () => {
    try {
      if (job.type === 'load') {
        self.postMessage({ id: job.id, ...(await load(job.base)) });
        return;
      }
      const out = await run(job);
      self.postMessage({ id: job.id, ...out }, transferables(out));
    } catch (e) {
      self.postMessage({ id: job.id, error: e.message, loadError: e instanceof ImageLoadError });
    }
  });
};
