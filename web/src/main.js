// The page: load both models from this folder, then turn photos (upload, drop, paste) and webcam frames
// into labelled faces in this browser. Nothing leaves the page.
import * as ort from 'onnxruntime-web/webgpu';
import { argmax, Classifier } from './classify.js';
import { cams as computeCams } from './cam.js';
import { extract, faceCrop, readingOrder, wholeImageBox, wholeImageCrop } from './crop.js';
import { FaceDetector } from './detect.js';
import { drawPhoto, faceCanvas, PALETTE } from './draw.js';
import { fromBitmap, ImageLoadError, loadImage } from './image.js';

const $ = (id) => document.getElementById(id);
const state = { config: null, detector: null, classifier: null, backend: '', busy: false, runs: 0, last: null, live: null };
window.fer = state;

function setMessage(text, kind = 'info') {
  const m = $('message');
  m.textContent = text;
  m.className = `message ${kind}`;
}

async function chooseBackend() {
  const asked = new URLSearchParams(location.search).get('ep');
  if (asked === 'wasm') return 'wasm';
  if (navigator.gpu) {
    try {
      if (await navigator.gpu.requestAdapter()) return 'webgpu';
    } catch (e) { /* no adapter: WASM */ }
  }
  return 'wasm';
}

async function openSession(path, backend) {
  const options = { executionProviders: [backend], graphOptimizationLevel: 'all' };
  try {
    return [await ort.InferenceSession.create(path, options), backend];
  } catch (e) {
    if (backend === 'wasm') throw e;
    return [await ort.InferenceSession.create(path, { ...options, executionProviders: ['wasm'] }), 'wasm'];
  }
}

async function init() {
  const t0 = performance.now();
  ort.env.wasm.wasmPaths = new URL('ort/', document.baseURI).href;
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  ort.env.logLevel = 'error';
  const config = await (await fetch('models/web_config.json')).json();
  state.config = config;
  showCard(config);
  const wanted = await chooseBackend();
  const [det, detBackend] = await openSession('models/yunet.onnx', wanted);
  // the int8 classifier was checked on WASM only (README): it stays there even where WebGPU is offered
  const [cls, clsBackend] = await openSession('models/classifier.onnx', config.precision === 'int8' ? 'wasm' : wanted);
  state.detector = new FaceDetector(ort, det, config.detector);
  state.classifier = new Classifier(ort, cls, config);
  state.backend = detBackend === clsBackend ? detBackend : `${detBackend} (detector), ${clsBackend} (classifier)`;
  const threads = ort.env.wasm.numThreads;
  const wasm = `WASM (${threads} thread${threads === 1 ? '' : 's'})`;
  const where = state.backend === 'webgpu' ? 'WebGPU' : state.backend === 'wasm' ? wasm : `WebGPU (detector), ${wasm} (classifier)`;
  $('backend').textContent = `onnxruntime-web ${ort.env.versions?.web || ''}, ${where}, ${config.precision || 'fp32'} classifier; models loaded in ${Math.round(performance.now() - t0)} ms`;
  document.body.dataset.state = 'ready';
  setMessage('Ready: upload, drop or paste a photo, or start the webcam.');
}

function showCard(config) {
  const c = config.card, pct = (v) => (v == null ? 'n/a' : `${(100 * v).toFixed(1)}%`);
  $('card-accuracy').textContent = `FER2013 test accuracy (PrivateTest, ${c.test_n ?? '3,589'} faces, no test-time augmentation, as this page runs): ${pct(c.test_accuracy)}; macro-F1 ${c.test_macro_f1 == null ? 'n/a' : c.test_macro_f1.toFixed(3)}; validation accuracy ${pct(c.validation_accuracy)}.`;
  $('card-intended').textContent = c.intended;
  $('card-misuse').textContent = c.misuse;
  const n = config.map_sizes[config.cam_layer], app = config.app_cam_layer, m = config.map_sizes[app];
  $('cam-layer').textContent = `${config.cam_layer}, a ${n}x${n} map`;
  const appNote = app === config.cam_layer
    ? `the Python app's Grad-CAM defaults to the same stage (its deepest map of at least 6x6) and gives the same map for the top class.`
    : `the Python app's default is ${app} (${m}x${m}), which needs a backward pass but shows finer detail.`;
  $('cam-layer-note').textContent = `The CAM is taken at ${config.cam_layer}, the last stage, because there it needs no gradients: after global average pooling and one linear layer, Grad-CAM is exactly the class's fc weights times the ${config.cam_layer} maps. With the ${config.stem} stem at ${config.input_size} px that map is ${n}x${n}, so each cell covers about ${Math.round(config.input_size / n)} px of the face; ${appNote}`;
}

// One analysis at a time: the webcam loop and a photo never share the sessions mid-run.
let queue = Promise.resolve();
function analyze(photo, options) {
  const run = queue.then(() => analyzeNow(photo, options));
  queue = run.catch(() => {});
  return run;
}

// photo: {image: ImageData, width, height, ...}; returns the analysis (and draws nothing).
async function analyzeNow(photo, { wholeImage = false, withCam = true } = {}) {
  const { config } = state, L = config.limits, times = {};
  let t = performance.now();
  const lap = (name) => { const now = performance.now(); times[name] = now - t; t = now; };
  const notes = [];
  if (!wholeImage && Math.max(photo.width, photo.height) <= L.small_image_side) {
    wholeImage = true;
    notes.push('The image is small, so it was taken as one face crop.');
  }
  let detections, crops, nDetected = 0;
  if (wholeImage) {
    detections = [{ box: wholeImageBox(photo.width, photo.height), score: 1, landmarks: null }];
    crops = [wholeImageCrop(photo.width, photo.height)];
    lap('detect');
  } else {
    const found = await state.detector.detect(photo);
    nDetected = found.length;
    lap('detect');
    if (nDetected > L.max_faces_classified) notes.push(`Classified the ${L.max_faces_classified} largest.`);
    detections = readingOrder(found.slice(0, L.max_faces_classified));
    crops = detections.map((d) => faceCrop(d, config.geometry));
  }
  const faces48 = crops.map((c) => extract(photo.image, c, config.input_size));
  lap('crop');
  const result = await state.classifier.classify(faces48);
  lap('classify');
  const faces = detections.map((d, i) => {
    const probs = result.probs[i], top = argmax(probs);
    return { index: i + 1, box: d.box, score: d.score, landmarks: d.landmarks, crop: crops[i], face: faces48[i], probs, label: config.labels[top], confidence: probs[top], caption: `${i + 1} ${config.labels[top]} ${Math.round(100 * probs[top])}%` };
  });
  // probabilities and CAMs for the largest few, as the app shows them
  const detailed = [...faces].sort((a, b) => b.box.w * b.box.h - a.box.w * a.box.h).slice(0, L.max_faces).map((f) => f.index - 1).sort((a, b) => a - b);
  let maps = null;
  if (withCam && faces.length) {
    maps = faces.map(() => null);
    const got = computeCams(subset(result, detailed), detailed.map((i) => argmax(faces[i].probs)), config.fc_weight, config.input_size);
    detailed.forEach((i, k) => { maps[i] = got[k]; });
  }
  lap('cam');
  if (wholeImage && !notes.length) notes.push('Classified the whole image (its centred square) as one face.');
  if (faces.length > L.max_faces) notes.push(`Probabilities and CAMs are shown for the ${L.max_faces} largest; every face gets a box and its top label.`);
  return { faces, detailed, maps, nDetected, wholeImage, notes, times };
}

function subset(result, idx) {
  const per = result.channels * result.mapSize * result.mapSize;
  const features = new Float32Array(idx.length * per);
  idx.forEach((i, k) => features.set(result.features.subarray(i * per, (i + 1) * per), k * per));
  return { ...result, features };
}

function message(a) {
  if (!a.faces.length) return 'No face found. Tick "Classify the whole image as one face" to classify the image anyway.';
  if (a.wholeImage) return a.notes.join(' ');
  return [`${a.nDetected} face${a.nDetected === 1 ? '' : 's'} found.`, ...a.notes].join(' ');
}

function timingText(times, extra = '') {
  const order = ['decode', 'detect', 'crop', 'classify', 'cam', 'draw'];
  const total = order.reduce((s, k) => s + (times[k] || 0), 0);
  return `${extra}${order.filter((k) => k in times).map((k) => `${k} ${times[k].toFixed(1)} ms`).join(' · ')} · total ${total.toFixed(1)} ms`;
}

function showFaces(a) {
  const list = $('faces');
  list.replaceChildren();
  const { labels, input_size: n } = state.config;
  for (const i of a.detailed) {
    const f = a.faces[i];
    const card = document.createElement('div');
    card.className = 'face';
    card.id = `face-${f.index}`;
    card.style.borderColor = PALETTE[i % PALETTE.length];
    const title = document.createElement('h3');
    title.textContent = `Face ${f.index}: ${f.label} ${(100 * f.confidence).toFixed(0)}%`;
    const pics = document.createElement('div');
    pics.className = 'pics';
    const crop = Object.assign(document.createElement('canvas'), { width: 144, height: 144, className: 'crop', title: 'the 48x48 gray crop the model reads' });
    faceCanvas(crop, f.face, n);
    pics.append(crop);
    if (a.maps && a.maps[i]) {
      const cam = Object.assign(document.createElement('canvas'), { width: 144, height: 144, className: 'cam', title: `CAM for ${f.label}` });
      faceCanvas(cam, f.face, n, a.maps[i].map);
      pics.append(cam);
    }
    const table = document.createElement('table');
    table.className = 'probs';
    labels.forEach((name, k) => {
      const row = table.insertRow();
      row.dataset.label = name;
      row.insertCell().textContent = name;
      const bar = row.insertCell();
      const fill = document.createElement('span');
      fill.className = 'bar';
      fill.style.width = `${(100 * f.probs[k]).toFixed(1)}%`;
      bar.append(fill);
      row.insertCell().textContent = `${(100 * f.probs[k]).toFixed(1)}%`;
    });
    card.append(title, pics, table);
    list.append(card);
  }
}

function record(a, photo) {
  const inv = 1 / photo.scale;
  state.runs += 1;
  state.last = {
    n_faces: a.faces.length, n_detected: a.nDetected, whole_image: a.wholeImage, message: message(a), times: a.times,
    faces: a.faces.map((f) => ({ index: f.index, box: { x: f.box.x * inv, y: f.box.y * inv, w: f.box.w * inv, h: f.box.h * inv }, label: f.label, probabilities: Object.fromEntries(state.config.labels.map((l, k) => [l, f.probs[k]])), face: Array.from(f.face) })),
  };
  document.body.dataset.runs = String(state.runs);
}

let current = null; // the last photo loaded, for re-running with other options

async function runPhoto(getPhoto) {
  if (!state.classifier) { setMessage('The models are still loading; try again in a moment.', 'error'); return; }
  if (state.busy) { state.pending = getPhoto; return; } // the latest request runs next
  state.busy = true;
  document.body.dataset.state = 'busy';
  try {
    const t0 = performance.now();
    const photo = await getPhoto();
    const decode = performance.now() - t0;
    current = photo;
    const withCam = $('cam').checked;
    const a = await analyze(photo, { wholeImage: $('whole').checked, withCam });
    a.times = { decode, ...a.times };
    const t = performance.now();
    const canvas = $('photo-out');
    canvas.width = photo.width; canvas.height = photo.height;
    drawPhoto(canvas, photo.image, a.faces, { cams: withCam ? a.maps : null, size: state.config.input_size });
    showFaces(a);
    a.times.draw = performance.now() - t;
    $('timings').textContent = timingText(a.times);
    setMessage(message(a), a.faces.length ? 'info' : 'warn');
    record(a, photo);
  } catch (e) {
    state.runs += 1;
    document.body.dataset.runs = String(state.runs);
    state.last = { error: e.message };
    setMessage(e instanceof ImageLoadError ? e.message : `Could not analyse this image: ${e.message}`, 'error');
  } finally {
    state.busy = false;
    document.body.dataset.state = 'ready';
  }
  if (state.pending) {
    const next = state.pending;
    state.pending = null;
    runPhoto(next);
  }
}

function onFile(file) {
  if (state.live) stopWebcam();
  runPhoto(() => loadImage(file, state.config.limits));
}

// --- webcam ---

async function startWebcam() {
  if (state.live) return;
  if (!state.classifier) { setMessage('The models are still loading; try again in a moment.', 'error'); return; }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (e) {
    setMessage(`The webcam could not be opened (${e.name}): allow the camera for this page, or upload a photo instead.`, 'error');
    return;
  }
  const video = $('video');
  video.srcObject = stream;
  await video.play();
  state.live = { stream, frames: [], count: 0 };
  $('webcam').textContent = 'Stop webcam';
  $('live').hidden = false;
  setMessage('Webcam on: each frame is analysed in this browser.');
  liveLoop();
}

function stopWebcam() {
  if (!state.live) return;
  state.live.stream.getTracks().forEach((t) => t.stop());
  state.live = null;
  $('webcam').textContent = 'Start webcam';
}

async function liveLoop() {
  const video = $('video'), canvas = $('live-out');
  const grab = new OffscreenCanvas(1, 1);
  while (state.live) {
    const live = state.live;
    if (video.readyState >= 2 && video.videoWidth) {
      const t0 = performance.now();
      if (grab.width !== video.videoWidth || grab.height !== video.videoHeight) { grab.width = video.videoWidth; grab.height = video.videoHeight; }
      const g = grab.getContext('2d', { willReadFrequently: true });
      g.drawImage(video, 0, 0);
      const photo = { image: g.getImageData(0, 0, grab.width, grab.height), width: grab.width, height: grab.height, scale: 1 };
      const decode = performance.now() - t0;
      const withCam = $('live-cam').checked;
      const a = await analyze(photo, { withCam });
      a.times = { decode, ...a.times };
      const t = performance.now();
      if (canvas.width !== photo.width || canvas.height !== photo.height) { canvas.width = photo.width; canvas.height = photo.height; }
      drawPhoto(canvas, photo.image, a.faces, { cams: withCam ? a.maps : null, size: state.config.input_size });
      a.times.draw = performance.now() - t;
      const now = performance.now();
      live.frames.push(now);
      while (live.frames.length && now - live.frames[0] > 2000) live.frames.shift();
      live.count += 1;
      live.times = [...(live.times || []).slice(-59), a.times]; // the last 60 frames' stage times
      const fps = live.frames.length > 1 ? (1000 * (live.frames.length - 1)) / (now - live.frames[0]) : 0;
      live.fps = fps;
      $('live-stats').textContent = timingText(a.times, `${fps.toFixed(1)} fps · `);
      $('live-label').textContent = a.faces.length ? a.faces.map((f) => `Face ${f.caption}`).join(' · ') : 'No face in this frame.';
      canvas.dataset.frames = String(live.count);
      canvas.dataset.fps = fps.toFixed(2);
      canvas.dataset.faces = String(a.faces.length);
    }
    await new Promise((resolve) => (video.requestVideoFrameCallback ? video.requestVideoFrameCallback(() => resolve()) : requestAnimationFrame(() => resolve())));
  }
}

// --- wiring ---

function wire() {
  const file = $('file'), drop = $('drop');
  file.addEventListener('change', () => { if (file.files[0]) onFile(file.files[0]); file.value = ''; });
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer.files[0];
    if (f) onFile(f); else setMessage('Drop an image file (JPEG, PNG, WebP, GIF or BMP).', 'error');
  });
  document.addEventListener('paste', (e) => {
    const item = [...(e.clipboardData?.items || [])].find((i) => i.kind === 'file');
    if (item) onFile(item.getAsFile()); else setMessage('The clipboard holds no image.', 'error');
  });
  $('webcam').addEventListener('click', () => (state.live ? stopWebcam() : startWebcam()));
  const rerun = () => { if (current && !state.live) runPhoto(async () => current); };
  $('whole').addEventListener('change', rerun);
  $('cam').addEventListener('change', rerun);
}

// for callers that hold pixels already (tests, the console): an ImageBitmap/canvas -> analysis
state.analyzeSource = (source) => runPhoto(async () => fromBitmap(source, state.config.limits.max_side));

wire();
state.ready = init().catch((e) => {
  document.body.dataset.state = 'failed';
  setMessage(`The models could not be loaded: ${e.message}`, 'error');
});
