// The tus client against an in-memory tus 1.0 server: jsdom has no server to
// reach (the browser test uploads to the platform's real tusd endpoint). The
// server here follows the protocol's core: POST creates, PATCH appends at
// Upload-Offset (409 otherwise), HEAD answers the offset.
import { describe, expect, it } from "vitest";
import { metadata, TusError, upload, uploadId } from "./tus";
import type { TusRequest, TusResponse } from "./tus";

function answer(status: number, headers: Record<string, string> = {}, text = ""): TusResponse {
  const h = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { status, header: (n) => h.get(n.toLowerCase()) ?? null, text };
}

class Server {
  uploads = new Map<string, { length: number; data: Uint8Array; offset: number; meta: string }>();
  log: string[] = [];
  /** drop makes the n-th PATCH (1-based) store half its body and then lose the connection. */
  drop = 0;

  data(id: string) {
    const u = this.uploads.get(id);
    if (!u) throw new Error(`no upload ${id}`);
    return u;
  }
  patches = 0;

  transport = async (r: TusRequest): Promise<TusResponse> => {
    this.log.push(`${r.method} ${r.headers["Upload-Offset"] ?? ""}`.trim());
    if (r.headers["Upload-Token"] !== "tok") return answer(401, {}, "a valid upload token is required");
    if (r.method === "POST") {
      const length = Number(r.headers["Upload-Length"]);
      if (length > 1000) return answer(413, {}, "Upload-Length 2000 is larger than the token allows (1000)");
      const id = `upl-${this.uploads.size + 1}`;
      this.uploads.set(id, { length, data: new Uint8Array(length), offset: 0, meta: r.headers["Upload-Metadata"] ?? "" });
      return answer(201, { Location: `http://localhost/files/${id}` });
    }
    const u = this.uploads.get(uploadId(r.url));
    if (!u) return answer(404, {}, "upload not found");
    if (r.method === "HEAD") return answer(200, { "Upload-Offset": String(u.offset), "Upload-Length": String(u.length) });
    if (Number(r.headers["Upload-Offset"]) !== u.offset) return answer(409, {}, "mismatched offset");
    const body = new Uint8Array(await (r.body ?? new Blob()).arrayBuffer());
    this.patches++;
    const keep = this.patches === this.drop ? body.subarray(0, body.length >> 1) : body;
    u.data.set(keep, u.offset);
    u.offset += keep.length;
    r.onSent?.(keep.length);
    if (keep !== body) throw new Error("the connection dropped");
    return answer(204, { "Upload-Offset": String(u.offset) });
  };
}

function memoryStorage() {
  const m = new Map<string, string>();
  return { getItem: (k: string) => m.get(k) ?? null, setItem: (k: string, v: string) => void m.set(k, v), removeItem: (k: string) => void m.delete(k), m };
}

const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => i % 251);
const noWait = () => Promise.resolve();

describe("tus upload", () => {
  it("creates the upload, sends it in chunks and reports every byte sent", async () => {
    const srv = new Server();
    const seen: number[] = [];
    const storage = memoryStorage();
    const id = await upload({ endpoint: "/files/", token: "tok", file: new Blob([bytes(250)]), name: "pkg.tar.gz", scope: "demo",
      chunkSize: 100, transport: srv.transport, storage, wait: noWait, onProgress: (sent, total) => seen.push(sent / total) });
    expect(id).toBe("upl-1");
    expect(srv.log).toEqual(["POST", "PATCH 0", "PATCH 100", "PATCH 200"]);
    expect(srv.data("upl-1").data).toEqual(bytes(250));
    expect(srv.data("upl-1").meta).toContain(`filename ${btoa("pkg.tar.gz")}`);
    expect(seen.at(-1)).toBe(1);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(storage.m.size).toBe(0);
  });

  it("asks where the server is after a dropped connection and goes on from there", async () => {
    const srv = new Server();
    srv.drop = 2;
    const id = await upload({ endpoint: "/files/", token: "tok", file: new Blob([bytes(250)]), name: "p", scope: "demo",
      chunkSize: 100, transport: srv.transport, storage: memoryStorage(), wait: noWait });
    expect(srv.log).toEqual(["POST", "PATCH 0", "PATCH 100", "HEAD", "PATCH 150"]);
    expect(srv.data(id).data).toEqual(bytes(250));
  });

  it("resumes an upload a reload interrupted", async () => {
    const srv = new Server();
    const storage = memoryStorage();
    const file = new File([bytes(250)], "p.zip", { lastModified: 7 });
    srv.drop = 2;
    const failing = async (r: TusRequest) => {
      // The page goes away when the second chunk drops.
      if (srv.patches >= 2) throw new Error("gone");
      return srv.transport(r);
    };
    await expect(upload({ endpoint: "/files/", token: "tok", file, name: "p.zip", scope: "demo", chunkSize: 100,
      transport: failing, storage, wait: noWait, retries: 1 })).rejects.toBeInstanceOf(TusError);
    expect(storage.m.size).toBe(1);
    srv.log = [];
    const id = await upload({ endpoint: "/files/", token: "tok", file, name: "p.zip", scope: "demo", chunkSize: 100,
      transport: srv.transport, storage, wait: noWait });
    expect(id).toBe("upl-1");
    expect(srv.log[0]).toBe("HEAD");
    expect(srv.log).not.toContain("POST");
    expect(srv.data(id).data).toEqual(bytes(250));
  });

  it("stops with the server's reason when it refuses", async () => {
    const srv = new Server();
    const err = await upload({ endpoint: "/files/", token: "tok", file: new Blob([bytes(2000)]), name: "big", scope: "demo",
      transport: srv.transport, storage: memoryStorage(), wait: noWait }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TusError);
    expect((err as TusError).status).toBe(413);
    expect((err as TusError).message).toContain("larger than the token allows");
    expect(srv.log).toEqual(["POST"]);
  });

  it("encodes metadata as base64 of UTF-8", () => {
    expect(metadata({ filename: "é.zip" })).toBe(`filename ${btoa("\xc3\xa9.zip")}`);
  });
});
