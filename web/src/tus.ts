// A small tus 1.0 client (https://tus.io/protocols/resumable-upload) for the
// platform's upload endpoint (/files/, internal/data): create with POST, send
// chunks with PATCH at Upload-Offset, and after a dropped connection or a
// server hiccup ask HEAD where the server is and go on from there. Uploads
// interrupted by a reload resume too: the upload's URL is kept in
// localStorage under the file's fingerprint until it completes. Written here
// rather than taking tus-js-client (~20 kB gzipped with its polyfills)
// because the console needs only this core.

/** TusRequest is one HTTP exchange of the protocol. */
export interface TusRequest {
  method: "POST" | "PATCH" | "HEAD";
  url: string;
  headers: Record<string, string>;
  body?: Blob;
  /** onSent reports the bytes of body sent so far. */
  onSent?(bytes: number): void;
}

/** TusResponse is what the client reads of an answer. */
export interface TusResponse {
  status: number;
  header(name: string): string | null;
  text: string;
}

/** Transport sends one request; it rejects only when no answer came (a dropped connection). */
export type Transport = (r: TusRequest) => Promise<TusResponse>;

/** xhrTransport sends with XMLHttpRequest, the one browser API that reports upload progress. */
export const xhrTransport: Transport = (r) =>
  new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open(r.method, r.url);
    for (const [k, v] of Object.entries(r.headers)) x.setRequestHeader(k, v);
    if (r.onSent) {
      const f = r.onSent;
      x.upload.onprogress = (e) => f(e.loaded);
    }
    x.onload = () => resolve({ status: x.status, header: (n) => x.getResponseHeader(n), text: x.responseText });
    x.onerror = () => reject(new Error("the connection dropped"));
    x.onabort = () => reject(new Error("aborted"));
    x.send(r.body ?? null);
  });

/** UploadOptions say what to upload where. */
export interface UploadOptions {
  /** endpoint is the creation URL, e.g. "/files/" (CreateUploadToken's Endpoint). */
  endpoint: string;
  /** token is the upload token (CreateUploadToken), sent as Upload-Token. */
  token: string;
  file: Blob;
  name: string;
  /** scope separates resumable uploads of the same file into different places (the project). */
  scope: string;
  onProgress?(sent: number, total: number): void;
  chunkSize?: number;
  /** retries is how many failed exchanges in a row end the upload. */
  retries?: number;
  transport?: Transport;
  storage?: Pick<Storage, "getItem" | "setItem" | "removeItem">;
  /** wait sleeps between retries; tests pass one that does not. */
  wait?(ms: number): Promise<void>;
}

/** TusError is an upload refused for good, with the server's reason. */
export class TusError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = "TusError";
    this.status = status;
  }
}

const CHUNK = 512 << 10;

/** uploadId is the upload's id: the last segment of its URL. */
export function uploadId(location: string): string {
  return location.replace(/\/+$/, "").split("/").pop() ?? "";
}

/** metadata encodes Upload-Metadata: key and base64 of the value's UTF-8, comma-separated. */
export function metadata(m: Record<string, string>): string {
  return Object.entries(m)
    .map(([k, v]) => {
      let bin = "";
      for (const b of new TextEncoder().encode(v)) bin += String.fromCharCode(b);
      return `${k} ${btoa(bin)}`;
    })
    .join(",");
}

function fingerprint(o: UploadOptions): string {
  const modified = o.file instanceof File ? o.file.lastModified : 0;
  return `tianshu.tus:${o.scope}:${o.name}:${o.file.size}:${modified}`;
}

// Answers worth trying again: none at all, a conflict on the offset (HEAD
// tells the right one), a checksum mismatch (the chunk was dropped), a lock
// held by a request the server has not noticed ended, and server errors.
function retryable(status: number): boolean {
  return status === 409 || status === 423 || status === 460 || status >= 500;
}

/** upload sends file with tus and answers its upload id (upl-…) once every byte is stored. */
export async function upload(o: UploadOptions): Promise<string> {
  const send = o.transport ?? xhrTransport;
  const store = o.storage ?? window.localStorage;
  const wait = o.wait ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const chunk = o.chunkSize ?? CHUNK;
  const total = o.file.size;
  const base = { "Tus-Resumable": "1.0.0", "Upload-Token": o.token };
  const key = fingerprint(o);
  const progress = (n: number) => o.onProgress?.(Math.min(n, total), total);

  let failures = 0;
  // attempt runs one exchange; it answers the response, or null when it should be tried again.
  async function attempt(r: TusRequest): Promise<TusResponse | null> {
    let res: TusResponse;
    try {
      res = await send(r);
    } catch (e) {
      if (++failures > (o.retries ?? 5)) throw new TusError(0, `upload: ${String(e instanceof Error ? e.message : e)}`);
      await wait(Math.min(250 * 2 ** failures, 5000));
      return null;
    }
    if (res.status < 300) {
      failures = 0;
      return res;
    }
    if (!retryable(res.status) || ++failures > (o.retries ?? 5)) {
      throw new TusError(res.status, `upload: ${res.text.trim() || `HTTP ${res.status}`}`);
    }
    await wait(Math.min(250 * 2 ** failures, 5000));
    return null;
  }

  // Where the server is with an upload: its offset, or null when it is gone (expired, removed, another project).
  async function offsetOf(url: string): Promise<number | null> {
    for (;;) {
      let res: TusResponse;
      try {
        res = await send({ method: "HEAD", url, headers: base });
      } catch (e) {
        if (++failures > (o.retries ?? 5)) throw new TusError(0, `upload: ${String(e instanceof Error ? e.message : e)}`);
        await wait(Math.min(250 * 2 ** failures, 5000));
        continue;
      }
      if (res.status === 404 || res.status === 410 || res.status === 403 || res.status === 401) return null;
      const n = Number(res.header("Upload-Offset"));
      if (res.status < 300 && Number.isInteger(n)) return n;
      if (++failures > (o.retries ?? 5)) throw new TusError(res.status, `upload: ${res.text.trim() || `HTTP ${res.status}`}`);
      await wait(Math.min(250 * 2 ** failures, 5000));
    }
  }

  let url = store.getItem(key);
  let offset = 0;
  if (url) {
    const n = await offsetOf(url);
    if (n === null) url = null;
    else offset = n;
  }
  while (!url) {
    const res = await attempt({
      method: "POST",
      url: o.endpoint,
      headers: { ...base, "Upload-Length": String(total), "Upload-Metadata": metadata({ filename: o.name, filetype: o.file.type || "application/octet-stream" }) },
    });
    const loc = res?.header("Location");
    if (res && !loc) throw new TusError(res.status, "upload: the server created no upload (no Location)");
    if (loc) url = new URL(loc, window.location.href).toString();
  }
  store.setItem(key, url);
  progress(offset);

  while (offset < total) {
    const body = o.file.slice(offset, offset + chunk);
    const at = offset;
    const res = await attempt({
      method: "PATCH",
      url,
      headers: { ...base, "Content-Type": "application/offset+octet-stream", "Upload-Offset": String(at) },
      body,
      onSent: (n) => progress(at + n),
    });
    const n = res ? Number(res.header("Upload-Offset")) : NaN;
    if (res && Number.isInteger(n) && n > at) {
      offset = n;
    } else {
      // No answer, or an answer that does not say where the server is: ask.
      const head = await offsetOf(url);
      if (head === null) {
        store.removeItem(key);
        throw new TusError(410, "upload: the server no longer has this upload; start again");
      }
      offset = head;
    }
    progress(offset);
  }
  store.removeItem(key);
  return uploadId(url);
}
