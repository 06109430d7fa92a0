// The page: the models run in a Web Worker (worker.js), which decodes each photo or webcam frame it is sent
// and returns labelled faces; this thread only draws them, so the page stays responsive. Nothing leaves it.
import { boxColor, drawPhoto, faceCanvas } from './draw.js';
import { ImageLoadError } from './image.js';

const $ = (id) => document.getElementById(id);
const state = { config: null, backend: '', threads: 0, ready: null, busy: false, runs: 0, last: null, live: null };
window.fer = state;

function setMessage(text, kind = 'info') {
  const m = $('message');
  m.textContent = text;
  m.className = `message ${kind}`;
}

// The worker, answering each job by its id; one job runs at a time there, in order.
const worker = new Worker(new URL('worker.js', document.baseURI), { type: 'module' });
const waiting = new Map();
let nextId = 0;
worker.onmessage = ({ data }) => {
  const done = waiting.get(data.id);
  waiting.delete(data.id);
  if (data.error === undefined) done.resolve(data);
  else done.reject(data.loadError ? new ImageLoadError(data.error) : new Error(data.error));
};
worker.onerror = (e) => {
  for (const done of waiting.values()) done.reject(new Error(e.message || 'the worker stopped'));
  waiting.clear();
};

function ask(job, transfer = []) {
  const id = (nextId += 1);
  return new Promise((resolve, reject) => {
    waiting.set(id, { resolve, reject });
    worker.postMessage({ id, ...job }, transfer);
  });
}

// A photo or frame labelled by the worker: {photo: {image: ImageData, width, height, scale}, analysis}.
async function labelled(job, transfer) {
  const { photo, analysis } = await ask(job, transfer);
  const image = new ImageData(photo.pixels, photo.width, photo.height);
  return { photo: { ...photo, image }, analysis };
}

async function init() {
  const t0 = performance.now();
  const got = await ask({ type: 'load', base: document.baseURI });
  const { config } = got;
  state.config = config;
  state.backend = got.backend;
  state.threads = got.threads;
  state.isolated = got.isolated;
  showCard(config);
  const threads = `${got.threads} thread${got.threads === 1 ? '' : 's'}`;
  const where = `WASM (${threads}${got.isolated ? '' : ', not cross-origin isolated'})`;
  const ms = Math.round(performance.now() - t0);
  const precision = `${config.precision || 'fp32'} classifier`;
  $('backend').textContent =
    `onnxruntime-web ${got.version}, ${where}, ${precision}, in a worker; models loaded in ${ms} ms`;
  document.body.dataset.state = 'ready';
  setMessage('Ready: upload, drop or paste a photo, or start the webcam.');
}

function showCard(config) {
  const c = config.card,
    pct = (v) => (v == null ? 'n/a' : `${(100 * v).toFixed(1)}%`);
  const f1 = c.test_macro_f1 == null ? 'n/a' : c.test_macro_f1.toFixed(3);
  $('card-accuracy').textContent =
    `FER2013 test accuracy (PrivateTest, ${c.test_n ?? '3,589'} faces, no test-time augmentation, as this page ` +
    `runs): ${pct(c.test_accuracy)}; macro-F1 ${f1}; validation accuracy ${pct(c.validation_accuracy)}.`;
  $('card-intended').textContent = c.intended;
  $('card-misuse').textContent = c.misuse;
  const n = config.map_sizes[config.cam_layer],
    app = config.app_cam_layer,
    m = config.map_sizes[app];
  $('cam-layer').textContent = `${config.cam_layer}, a ${n}x${n} map`;
  const appNote =
    app === config.cam_layer
      ? "the Python app's Grad-CAM defaults to the same stage (its deepest map of at least 6x6) and gives the " +
        'same map for the top class.'
      : `the Python app's default is ${app} (${m}x${m}), which needs a backward pass but shows finer detail.`;
  const cell = Math.round(config.input_size / n);
  $('cam-layer-note').textContent =
    `The CAM is taken at ${config.cam_layer}, the last stage, because there it needs no gradients: after global ` +
    "average pooling and one linear layer, Grad-CAM is exactly the class's fc weights times the " +
    `${config.cam_layer} maps. With the ${config.stem} stem at ${config.input_size} px that map is ${n}x${n}, ` +
    `so each cell covers about ${cell} px of the face; ${appNote}`;
}

function message(a) {
  if (!a.faces.length)
    return 'No face found. Tick "Classify the whole image as one face" to classify the image anyway.';
  if (a.wholeImage) return a.notes.join(' ');
  return [`${a.nDetected} face${a.nDetected === 1 ? '' : 's'} found.`, ...a.notes].join(' ');
}

// The stages the worker timed, this thread's drawing, and the wall time from the request to the drawn result
// (the stages plus the messages to and from the worker).
function timingText(times, extra = '') {
  const order = ['decode', 'detect', 'crop', 'classify', 'cam', 'draw'];
  const stages = order.filter((k) => k in times).map((k) => `${k} ${times[k].toFixed(1)} ms`);
  return `${extra}${stages.join(' · ')} · total ${times.total.toFixed(1)} ms`;
}

// The photo (or webcam frame) with its numbered boxes in the app's colours, and the CAMs when asked; the canvas
// takes the photo's size (resized only when it changes: a webcam frame keeps its canvas).
function drawAnalysis(canvas, photo, a, withCam) {
  if (canvas.width !== photo.width || canvas.height !== photo.height) {
    canvas.width = photo.width;
    canvas.height = photo.height;
  }
  const { palette, input_size: size } = state.config;
  drawPhoto(canvas, photo.image, a.faces, { palette, cams: withCam ? a.maps : null, size });
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
    card.style.borderColor = boxColor(state.config.palette, i);
    const title = document.createElement('h3');
    title.textContent = `Face ${f.index}: ${f.label} ${(100 * f.confidence).toFixed(0)}%`;
    const pics = document.createElement('div');
    pics.className = 'pics';
    const crop = Object.assign(document.createElement('canvas'), {
      width: 144,
      height: 144,
      className: 'crop',
      title: 'the 48x48 gray crop the model reads',
    });
    faceCanvas(crop, f.face, n);
    pics.append(crop);
    if (a.maps && a.maps[i]) {
      const cam = Object.assign(document.createElement('canvas'), {
        width: 144,
        height: 144,
        className: 'cam',
        title: `CAM for ${f.label}`,
      });
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
  state.firstResultMs ??= performance.now(); // since the page started loading
  state.last = {
    n_faces: a.faces.length,
    n_detected: a.nDetected,
    whole_image: a.wholeImage,
    message: message(a),
    times: a.times,
    faces: a.faces.map((f) => ({
      index: f.index,
      box: { x: f.box.x * inv, y: f.box.y * inv, w: f.box.w * inv, h: f.box.h * inv },
      label: f.label,
      probabilities: Object.fromEntries(state.config.labels.map((l, k) => [l, f.probs[k]])),
      face: Array.from(f.face),
    })),
  };
  document.body.dataset.runs = String(state.runs);
}

let current = null; // how to ask for the last photo again (a file or a bitmap), to re-run it with other options

// Sends one photo to the worker and draws what comes back. `source` gives [job, transferables]: {file} or
// {bitmap}. While one runs, the latest request waits and runs next.
async function runPhoto(source) {
  if (!state.config) {
    setMessage('The models are still loading; try again in a moment.', 'error');
    return;
  }
  if (state.busy) {
    state.pending = source;
    return;
  }
  state.busy = true;
  document.body.dataset.state = 'busy';
  try {
    const t0 = performance.now();
    current = source;
    const withCam = $('cam').checked;
    const [job, transfer] = await source();
    const { photo, analysis: a } = await labelled(
      { ...job, options: { wholeImage: $('whole').checked, withCam } },
      transfer,
    );
    const t = performance.now();
    drawAnalysis($('photo-out'), photo, a, withCam);
    showFaces(a);
    a.times.draw = performance.now() - t;
    a.times.total = performance.now() - t0;
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
  runPhoto(async () => [{ file }, []]);
}

// --- webcam ---

async function startWebcam() {
  if (state.live) return;
  if (!state.config) {
    setMessage('The models are still loading; try again in a moment.', 'error');
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (e) {
    setMessage(
      `The webcam could not be opened (${e.name}): allow the camera for this page, or upload a photo instead.`,
      'error',
    );
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

// A function that resolves once the camera has shown a frame newer than the last one taken: at once when one came
// while the last was being labelled (so no frame time is lost waiting), else at the next.
function frameWatcher(video, live) {
  let fresh = false,
    wake = null;
  const next = (callback) =>
    video.requestVideoFrameCallback ? video.requestVideoFrameCallback(callback) : requestAnimationFrame(callback);
  const onFrame = () => {
    if (state.live !== live) return;
    fresh = true;
    if (wake) wake();
    next(onFrame);
  };
  next(onFrame);
  return () =>
    new Promise((resolve) => {
      wake = () => {
        fresh = false;
        wake = null;
        resolve();
      };
      if (fresh) wake();
    });
}

// One frame at a time: grab the newest, let the worker label it, draw it, then take the next new frame.
async function liveLoop() {
  const video = $('video'),
    canvas = $('live-out'),
    newFrame = frameWatcher(video, state.live);
  while (state.live) {
    const live = state.live;
    if (video.readyState >= 2 && video.videoWidth) {
      const t0 = performance.now();
      const bitmap = await createImageBitmap(video);
      const withCam = $('live-cam').checked;
      const options = { withCam, detectorSide: state.config.detector.webcam_side };
      const { photo, analysis: a } = await labelled({ bitmap, options }, [bitmap]);
      const t = performance.now();
      drawAnalysis(canvas, photo, a, withCam);
      a.times.draw = performance.now() - t;
      a.times.total = performance.now() - t0;
      showLiveFrame(live, a, canvas);
    }
    await newFrame();
  }
}

function showLiveFrame(live, a, canvas) {
  const now = performance.now();
  live.frames.push(now);
  while (live.frames.length && now - live.frames[0] > 2000) live.frames.shift();
  live.count += 1;
  live.times = [...(live.times || []).slice(-59), a.times]; // the last 60 frames' stage times
  const fps = live.frames.length > 1 ? (1000 * (live.frames.length - 1)) / (now - live.frames[0]) : 0;
  live.fps = fps;
  $('live-stats').textContent = timingText(a.times, `${fps.toFixed(1)} fps · `);
  $('live-label').textContent = a.faces.length
    ? a.faces.map((f) => `Face ${f.caption}`).join(' · ')
    : 'No face in this frame.';
  canvas.dataset.frames = String(live.count);
  canvas.dataset.fps = fps.toFixed(2);
  canvas.dataset.faces = String(a.faces.length);
}

// --- wiring ---

function wire() {
  const file = $('file'),
    drop = $('drop');
  file.addEventListener('change', () => {
    if (file.files[0]) onFile(file.files[0]);
    file.value = '';
  });
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer.files[0];
    if (f) onFile(f);
    else setMessage('Drop an image file (JPEG, PNG, WebP, GIF or BMP).', 'error');
  });
  document.addEventListener('paste', (e) => {
    const item = [...(e.clipboardData?.items || [])].find((i) => i.kind === 'file');
    if (item) onFile(item.getAsFile());
    else setMessage('The clipboard holds no image.', 'error');
  });
  $('webcam').addEventListener('click', () => (state.live ? stopWebcam() : startWebcam()));
  const rerun = () => {
    if (current && !state.live) runPhoto(current);
  };
  $('whole').addEventListener('change', rerun);
  $('cam').addEventListener('change', rerun);
}

// for callers that hold pixels already (tests, the console): an image, canvas or bitmap -> analysis
state.analyzeSource = (source) =>
  runPhoto(async () => {
    const bitmap = await createImageBitmap(source);
    return [{ bitmap }, [bitmap]];
  });

wire();
state.ready = init().catch((e) => {
  document.body.dataset.state = 'failed';
  setMessage(`The models could not be loaded: ${e.message}`, 'error');
});
