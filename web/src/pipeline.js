// One photo -> labelled faces: detect (or take the whole image), cut the 48x48 crops, classify them in one
// batch, and the CAMs of the largest few. Runs in the worker (worker.js), beside the models.
import { cams as computeCams } from './cam.js';
import { argmax } from './classify.js';
import { extract, faceCrop, readingOrder, wholeImageBox, wholeImageCrop } from './crop.js';

// photo: {image: ImageData, width, height}; models: {config, detector, classifier}; returns the analysis.
// options: wholeImage (no detector), withCam, detectorSide (the detector's view; its default otherwise).
export async function analyze(photo, models, { wholeImage = false, withCam = true, detectorSide } = {}) {
  const { config } = models,
    L = config.limits,
    times = {};
  let t = performance.now();
  const lap = (name) => {
    const now = performance.now();
    times[name] = now - t;
    t = now;
  };
  const notes = [];
  if (!wholeImage && Math.max(photo.width, photo.height) <= L.small_image_side) {
    wholeImage = true;
    notes.push('The image is small, so it was taken as one face crop.');
  }
  let detections,
    crops,
    nDetected = 0;
  if (wholeImage) {
    detections = [{ box: wholeImageBox(photo.width, photo.height), score: 1, landmarks: null }];
    crops = [wholeImageCrop(photo.width, photo.height)];
    lap('detect');
  } else {
    const found = await models.detector.detect(photo, detectorSide);
    nDetected = found.length;
    lap('detect');
    if (nDetected > L.max_faces_classified) notes.push(`Classified the ${L.max_faces_classified} largest.`);
    detections = readingOrder(found.slice(0, L.max_faces_classified));
    crops = detections.map((d) => faceCrop(d, config.geometry));
  }
  const faces48 = crops.map((c) => extract(photo.image, c, config.input_size));
  lap('crop');
  const result = await models.classifier.classify(faces48);
  lap('classify');
  const faces = detections.map((d, i) => {
    const probs = result.probs[i],
      top = argmax(probs);
    return {
      index: i + 1,
      box: d.box,
      score: d.score,
      landmarks: d.landmarks,
      crop: crops[i],
      face: faces48[i],
      probs,
      label: config.labels[top],
      confidence: probs[top],
      caption: `${i + 1} ${config.labels[top]} ${Math.round(100 * probs[top])}%`,
    };
  });
  // probabilities and CAMs for the largest few, as the app shows them
  const detailed = [...faces]
    .sort((a, b) => b.box.w * b.box.h - a.box.w * a.box.h)
    .slice(0, L.max_faces)
    .map((f) => f.index - 1)
    .sort((a, b) => a - b);
  let maps = null;
  if (withCam && faces.length) {
    maps = faces.map(() => null);
    const tops = detailed.map((i) => argmax(faces[i].probs));
    const got = computeCams(subset(result, detailed), tops, config.fc_weight, config.input_size);
    detailed.forEach((i, k) => {
      maps[i] = got[k];
    });
  }
  lap('cam');
  if (wholeImage && !notes.length) notes.push('Classified the whole image (its centred square) as one face.');
  if (faces.length > L.max_faces) {
    notes.push(
      `Probabilities and CAMs are shown for the ${L.max_faces} largest; every face gets a box and its top label.`,
    );
  }
  return { faces, detailed, maps, nDetected, wholeImage, notes, times };
}

function subset(result, idx) {
  const per = result.channels * result.mapSize * result.mapSize;
  const features = new Float32Array(idx.length * per);
  idx.forEach((i, k) => features.set(result.features.subarray(i * per, (i + 1) * per), k * per));
  return { ...result, features };
}
