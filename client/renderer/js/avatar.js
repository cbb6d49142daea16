// Profile pictures for dom.avatar(): GET /api/avatars/<sha256> needs the bearer token, so an <img>
// cannot load it by address; the bytes are fetched once per URL (api.attachmentUrl caches the
// object URL for the session, and a new picture has a new URL) and shown over the initials.

/** `(user) => Promise<src> | null`: null for a user without a picture (the initials stay). */
export function createPictures(api) {
  return (user) => (user && user.avatar_url ? api.attachmentUrl(user.avatar_url) : null);
}
