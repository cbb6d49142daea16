// The square a profile picture is cut from: pure geometry for the cropper in views/settings.js.
// The view shows the image scaled to cover a square viewport (`zoom` 1) or more (up to MAX_ZOOM);
// `centerX`/`centerY` are where the middle of the square sits, in image pixels.

export const MAX_ZOOM = 4;
export const AVATAR_OUTPUT_PX = 512; // the server keeps at most 512 px: sending more only costs upload

/** The side of the square (in image pixels) at `zoom`: the short side at 1, a quarter of it at 4. */
export function squareSide(width, height, zoom = 1) {
  const z = Math.min(MAX_ZOOM, Math.max(1, Number(zoom) || 1));
  return Math.min(width, height) / z;
}

/** Keep the square inside the image: the centre clamped so that no edge passes the image's. */
export function clampCenter(width, height, side, centerX, centerY) {
  const half = side / 2;
  const clamp = (value, size) => Math.min(size - half, Math.max(half, Number.isFinite(value) ? value : size / 2));
  return { centerX: clamp(centerX, width), centerY: clamp(centerY, height) };
}

/**
 * The crop: `{sx, sy, side}` in image pixels (whole numbers, inside the image) for drawImage, and
 * `out`, the side of the picture to send (the square's, at most AVATAR_OUTPUT_PX).
 */
export function cropSquare({ width, height }, { zoom = 1, centerX = width / 2, centerY = height / 2 } = {}) {
  if (!(width > 0 && height > 0)) throw new RangeError('an image has a size');
  const side = Math.max(1, Math.floor(squareSide(width, height, zoom)));
  const center = clampCenter(width, height, side, centerX, centerY);
  const sx = Math.min(width - side, Math.max(0, Math.round(center.centerX - side / 2)));
  const sy = Math.min(height - side, Math.max(0, Math.round(center.centerY - side / 2)));
  return { sx, sy, side, out: Math.min(side, AVATAR_OUTPUT_PX) };
}

/**
 * Move the square by a drag of (dx, dy) screen pixels over a viewport `viewport` pixels wide:
 * dragging the picture right shows more of its left, so the centre moves the other way.
 */
export function dragCenter(state, { width, height }, dx, dy, viewport) {
  const side = squareSide(width, height, state.zoom);
  const scale = side / viewport; // image pixels per screen pixel
  return { ...state, ...clampCenter(width, height, side, state.centerX - dx * scale, state.centerY - dy * scale) };
}
