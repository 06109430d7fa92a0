// Loading a photo safely, as fer_demo/vision/images.py does: size limits checked from the file header before
// decoding, EXIF orientation honoured (the browser's decoder does it), pixel values as stored (no colour
// profile conversion, as PIL reads them), transparency flattened onto white,
// and photos over `maxSide` scaled down. Every failure throws an ImageLoadError whose message is shown as is.

export class ImageLoadError extends Error {}

const MIN_SIDE = 16; // a face crop needs at least this many pixels a side

export function describeBytes(n) {
  return n >= 1024 * 1024 ? `${Math.round(n / 1024 / 1024)} MB` : `${Math.round(n / 1024)} KB`;
}

// {type, width, height} from the first bytes of a file, or null when it is no image format we read.
export function sniff(bytes) {
  const b = bytes;
  const u32be = (i) => ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
  const u16be = (i) => (b[i] << 8) | b[i + 1];
  const u16le = (i) => b[i] | (b[i + 1] << 8);
  const i32le = (i) => b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24);
  if (b.length >= 24 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) {
    return { type: 'png', width: u32be(16), height: u32be(20) };
  }
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xd8) {
    let i = 2;
    while (i + 9 < b.length) {
      if (b[i] !== 0xff) {
        i++;
        continue;
      }
      const marker = b[i + 1];
      if (marker === 0xff) {
        i++;
        continue;
      }
      if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
        i += 2;
        continue;
      }
      const len = u16be(i + 2);
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        return { type: 'jpeg', width: u16be(i + 7), height: u16be(i + 5) };
      }
      i += 2 + len;
    }
    return { type: 'jpeg', width: 0, height: 0 };
  }
  if (b.length >= 10 && b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46) {
    return { type: 'gif', width: u16le(6), height: u16le(8) };
  }
  if (b.length >= 26 && b[0] === 0x42 && b[1] === 0x4d) {
    return { type: 'bmp', width: Math.abs(i32le(18)), height: Math.abs(i32le(22)) };
  }
  if (b.length >= 30 && b[0] === 0x52 && b[1] === 0x49 && b[8] === 0x57 && b[9] === 0x45 && b[10] === 0x42) {
    const chunk = String.fromCharCode(b[12], b[13], b[14], b[15]);
    if (chunk === 'VP8X')
      return {
        type: 'webp',
        width: 1 + (b[24] | (b[25] << 8) | (b[26] << 16)),
        height: 1 + (b[27] | (b[28] << 8) | (b[29] << 16)),
      };
    if (chunk === 'VP8L') {
      const bits = b[21] | (b[22] << 8) | (b[23] << 16) | (b[24] << 24);
      return { type: 'webp', width: 1 + (bits & 0x3fff), height: 1 + ((bits >> 14) & 0x3fff) };
    }
    if (chunk === 'VP8 ') return { type: 'webp', width: u16le(26) & 0x3fff, height: u16le(28) & 0x3fff };
    return { type: 'webp', width: 0, height: 0 };
  }
  return null;
}

// A JPEG or PNG cut short: no end-of-image marker (JPEG) or no IEND chunk (PNG). Browsers often decode such
// files anyway, greying out what is missing; the app refuses them, and so does the page.
function truncated(info, b) {
  if (info.type === 'jpeg') {
    for (let i = b.length - 2; i >= Math.max(2, b.length - 4096); i--)
      if (b[i] === 0xff && b[i + 1] === 0xd9) return false;
    return true;
  }
  if (info.type === 'png') {
    const tail = String.fromCharCode(...b.subarray(Math.max(0, b.length - 64)));
    return !tail.includes('IEND');
  }
  return false;
}

// An RGBA ImageData of the photo (at most maxSide on its longest side), the original size, and the scale.
export async function loadImage(file, limits) {
  if (!file) throw new ImageLoadError('No image was given: upload, drop or paste a photo, or start the webcam.');
  const name = file.name ? `The file '${file.name}'` : 'The image';
  if (file.size === 0) throw new ImageLoadError(`${name} is empty.`);
  if (file.size > limits.max_file_bytes) {
    throw new ImageLoadError(
      `${name} is too large (${describeBytes(file.size)}); the limit is ${describeBytes(limits.max_file_bytes)}.`,
    );
  }
  const bytes = new Uint8Array(await file.arrayBuffer());
  const info = sniff(bytes);
  if (!info) throw new ImageLoadError(`${name} is not an image this page can read (use JPEG, PNG, WebP, GIF or BMP).`);
  if (info.width * info.height > limits.max_pixels) {
    const mp = Math.round((info.width * info.height) / 1e6),
      limit = Math.round(limits.max_pixels / 1e6);
    throw new ImageLoadError(
      `${name} is ${info.width}x${info.height} pixels (${mp} megapixels); the limit is ${limit} megapixels.`,
    );
  }
  if (truncated(info, bytes)) throw new ImageLoadError(`${name} is broken or truncated and cannot be decoded.`);
  let bitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes], { type: `image/${info.type}` }), {
      imageOrientation: 'from-image',
      colorSpaceConversion: 'none',
      premultiplyAlpha: 'none',
    });
  } catch (e) {
    throw new ImageLoadError(`${name} is broken or truncated and cannot be decoded.`);
  }
  try {
    return fromBitmap(bitmap, limits.max_side, name);
  } finally {
    bitmap.close();
  }
}

export function fromBitmap(source, maxSide, name = 'The image') {
  const w = source.width || source.videoWidth,
    h = source.height || source.videoHeight;
  if (!w || !h) throw new ImageLoadError(`${name} has no pixels.`);
  if (Math.min(w, h) < MIN_SIDE) {
    throw new ImageLoadError(`${name} is ${w}x${h} pixels: too small to hold a face (at least ${MIN_SIDE} px a side).`);
  }
  const canvas = new OffscreenCanvas(w, h);
  const g = canvas.getContext('2d', { willReadFrequently: true });
  g.fillStyle = '#fff'; // transparency over white, as the app flattens it
  g.fillRect(0, 0, w, h);
  g.drawImage(source, 0, 0);
  let image = g.getImageData(0, 0, w, h);
  let scale = 1;
  if (Math.max(w, h) > maxSide) {
    scale = maxSide / Math.max(w, h);
    // PIL's thumbnail: the longer side becomes maxSide, the other keeps the aspect ratio (rounded)
    const nw = w >= h ? maxSide : Math.max(1, Math.round(w * scale));
    const nh = h > w ? maxSide : Math.max(1, Math.round(h * scale));
    image = lanczos(image, nw, nh);
    scale = nw / w;
  }
  return { image, width: image.width, height: image.height, originalWidth: w, originalHeight: h, scale };
}

// Lanczos (a = 3) resampling of RGBA, horizontal then vertical, rounding to 8 bits between the passes as
// PIL does (its thumbnail() downscales with LANCZOS).
function lanczos(src, nw, nh) {
  const sinc = (x) => (x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x));
  const kernel = (x) => (Math.abs(x) < 3 ? sinc(x) * sinc(x / 3) : 0);
  function weights(inSize, outSize) {
    const scale = inSize / outSize,
      support = 3 * Math.max(scale, 1),
      fscale = Math.max(scale, 1);
    const out = [];
    for (let i = 0; i < outSize; i++) {
      const centre = (i + 0.5) * scale;
      const lo = Math.max(0, Math.floor(centre - support + 0.5)),
        hi = Math.min(inSize, Math.floor(centre + support + 0.5));
      const ws = [];
      let sum = 0;
      for (let j = lo; j < hi; j++) {
        const v = kernel((j - centre + 0.5) / fscale);
        ws.push(v);
        sum += v;
      }
      out.push({ lo, ws: ws.map((v) => v / (sum || 1)) });
    }
    return out;
  }
  const { width: w, height: h, data } = src;
  const wx = weights(w, nw),
    wy = weights(h, nh);
  const mid = new Uint8ClampedArray(nw * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < nw; x++) {
      const { lo, ws } = wx[x];
      let r = 0,
        g = 0,
        b = 0;
      for (let k = 0; k < ws.length; k++) {
        const p = (y * w + lo + k) * 4;
        r += ws[k] * data[p];
        g += ws[k] * data[p + 1];
        b += ws[k] * data[p + 2];
      }
      const q = (y * nw + x) * 4;
      mid[q] = Math.round(r);
      mid[q + 1] = Math.round(g);
      mid[q + 2] = Math.round(b);
      mid[q + 3] = 255;
    }
  }
  const out = new ImageData(nw, nh);
  for (let y = 0; y < nh; y++) {
    const { lo, ws } = wy[y];
    for (let x = 0; x < nw; x++) {
      let r = 0,
        g = 0,
        b = 0;
      for (let k = 0; k < ws.length; k++) {
        const p = ((lo + k) * nw + x) * 4;
        r += ws[k] * mid[p];
        g += ws[k] * mid[p + 1];
        b += ws[k] * mid[p + 2];
      }
      const q = (y * nw + x) * 4;
      out.data[q] = Math.round(r);
      out.data[q + 1] = Math.round(g);
      out.data[q + 2] = Math.round(b);
      out.data[q + 3] = 255;
    }
  }
  return out;
}
