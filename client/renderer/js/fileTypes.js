// What a file is, for the eye: a short type label and a family (which picks the card's colour),
// from its name, and the files a drag or a paste carries. Pure functions, usable in Node.

const FAMILIES = {
  pdf: ['pdf'],
  document: ['doc', 'docx', 'odt', 'rtf', 'txt', 'md', 'pages', 'epub'],
  sheet: ['xls', 'xlsx', 'ods', 'csv', 'tsv', 'numbers'],
  slides: ['ppt', 'pptx', 'odp', 'key'],
  archive: ['zip', 'rar', '7z', 'tar', 'gz', 'tgz', 'bz2', 'xz', 'zst'],
  audio: ['mp3', 'wav', 'ogg', 'oga', 'flac', 'm4a', 'aac', 'opus'],
  video: ['mp4', 'mov', 'mkv', 'webm', 'avi', 'm4v'],
  image: ['png', 'jpg', 'jpeg', 'gif', 'webp', 'svg', 'bmp', 'tif', 'tiff', 'heic', 'psd'],
  code: ['js', 'ts', 'py', 'json', 'html', 'css', 'xml', 'yml', 'yaml', 'sh', 'c', 'h', 'cpp', 'rs', 'go', 'java', 'sql'],
};
const FAMILY_OF = new Map(Object.entries(FAMILIES).flatMap(([family, extensions]) => extensions.map((ext) => [ext, family])));

/** The extension of a file name, lower-case, without the dot ("" when there is none). */
export function extensionOf(name) {
  const base = String(name || '').split(/[\\/]/).pop();
  const dot = base.lastIndexOf('.');
  if (dot <= 0 || dot === base.length - 1) return '';
  return base.slice(dot + 1).toLowerCase();
}

/** `{label, family}`: "PDF" / "pdf", "DOCX" / "document", "FILE" / "other" for a name without a known type. */
export function fileType(name) {
  const ext = extensionOf(name);
  const family = FAMILY_OF.get(ext) || 'other';
  const label = ext && ext.length <= 5 && /^[a-z0-9]+$/.test(ext) ? ext.toUpperCase() : 'FILE';
  return { label, family };
}

/** Whether a drag carries files (and not only text or a link), judged before the drop. */
export function carriesFiles(dataTransfer) {
  return [...(dataTransfer?.types || [])].includes('Files');
}

/**
 * The files of a drop or a paste, each once: `items` and `files` list the same files twice in some
 * browsers, and a pasted screenshot comes as an item only.
 */
export function transferredFiles(dataTransfer) {
  if (!dataTransfer) return [];
  const files = [...(dataTransfer.files || [])];
  if (files.length) return files;
  return [...(dataTransfer.items || [])]
    .filter((item) => item.kind === 'file')
    .map((item) => item.getAsFile())
    .filter(Boolean);
}
