// Pictures: the photo with numbered boxes and captions, each face's CAM over the photo (inside the turned
// square its crop covered), and per face the enlarged crop and its CAM overlay (jet colour map).

// OpenCV's COLORMAP_JET, piecewise linear: value in [0, 1] -> [r, g, b] 0-255.
export function jet(v) {
  const c = (x) => Math.round(255 * Math.min(1, Math.max(0, x)));
  return [c(1.5 - Math.abs(4 * v - 3)), c(1.5 - Math.abs(4 * v - 2)), c(1.5 - Math.abs(4 * v - 1))];
}

// A size x size canvas image of a gray face (uint8 array), with its CAM blended in when `map` is given.
export function faceCanvas(canvas, face, n, map = null, opacity = 0.5) {
  const small = new ImageData(n, n);
  for (let k = 0; k < n * n; k++) {
    let r = face[k],
      g = face[k],
      b = face[k];
    if (map) {
      const [hr, hg, hb] = jet(map[k]);
      r = (1 - opacity) * r + opacity * hr;
      g = (1 - opacity) * g + opacity * hg;
      b = (1 - opacity) * b + opacity * hb;
    }
    small.data.set([r, g, b, 255], k * 4);
  }
  const tmp = new OffscreenCanvas(n, n);
  tmp.getContext('2d').putImageData(small, 0, 0);
  const g = canvas.getContext('2d');
  g.imageSmoothingEnabled = true;
  g.imageSmoothingQuality = 'high';
  g.drawImage(tmp, 0, 0, canvas.width, canvas.height);
}

// A CAM as an RGBA canvas (jet colours, `opacity` alpha), for drawing onto the photo.
function camImage(map, n, opacity) {
  const img = new ImageData(n, n);
  for (let k = 0; k < n * n; k++) img.data.set([...jet(map[k]), Math.round(255 * opacity)], k * 4);
  const c = new OffscreenCanvas(n, n);
  c.getContext('2d').putImageData(img, 0, 0);
  return c;
}

// The photo, the faces' CAMs over it (when `cams`), and the numbered boxes with captions.
// The box colours, in face order, are the app's (fer_demo/vision/drawing.py PALETTE, through web_config.json).
export function boxColor(palette, i) {
  return palette[i % palette.length];
}

export function drawPhoto(canvas, source, faces, { palette, cams = null, opacity = 0.5, size = 48 } = {}) {
  const g = canvas.getContext('2d');
  if (source instanceof ImageData) g.putImageData(source, 0, 0);
  else g.drawImage(source, 0, 0, canvas.width, canvas.height);
  if (cams) {
    faces.forEach((f, i) => {
      if (!cams[i]) return;
      g.save();
      g.translate(f.crop.cx, f.crop.cy);
      g.rotate((f.crop.angle * Math.PI) / 180);
      g.scale(f.crop.side / size, f.crop.side / size);
      g.imageSmoothingEnabled = true;
      g.drawImage(camImage(cams[i].map, size, opacity), -size / 2, -size / 2);
      g.restore();
    });
  }
  const scale = Math.max(canvas.width, canvas.height) / 800;
  const thick = Math.max(2, Math.round(3 * scale));
  const font = Math.round(16 * Math.max(scale, 0.6));
  faces.forEach((f, i) => {
    const b = f.box,
      color = boxColor(palette, i);
    g.lineWidth = thick;
    g.strokeStyle = color;
    g.strokeRect(b.x, b.y, b.w, b.h);
    g.font = `bold ${font}px sans-serif`;
    const text = f.caption,
      tw = g.measureText(text).width + 8,
      th = font + 6;
    let ty = b.y - th - 2 >= 0 ? b.y - th - 2 : b.y + b.h + 2;
    const tx = Math.max(0, Math.min(b.x, canvas.width - tw));
    g.fillStyle = color;
    g.fillRect(tx, ty, tw, th);
    g.fillStyle = '#000';
    g.textBaseline = 'top';
    g.fillText(text, tx + 4, ty + 3);
  });
}
