/** Offers bytes as a file download (the browser's save dialog / downloads folder). */
export function download(bytes: Uint8Array, filename: string, type: string): void {
  const doc = globalThis.document;
  if (!doc) throw new Error('downloads need a page (document is missing)');
  const url = URL.createObjectURL(new Blob([bytes.slice()], { type }));
  const a = doc.createElement('a');
  a.href = url;
  a.download = filename;
  a.style.display = 'none';
  doc.body.appendChild(a);
  a.click();
  a.remove();
  // The click has started the download; revoke later so slow browsers still read the blob.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
