// The live tile against a stream shaped as the server's (the browser test
// runs the page against a real platform): jsdom has no server, no
// WebSocket, no image decoder and no 2D canvas, so fetch, WebSocket,
// createImageBitmap and the canvas context are replaced here.
import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, render, screen } from "@testing-library/react";
import { LiveTile, parseFrame, parseTiles } from "./Live";
import type { LiveHeader } from "./Live";

function frame(h: Partial<LiveHeader>): ArrayBuffer {
  const header: LiveHeader = { TaskId: "task-1", Source: 0, Key: "dev-1", Seq: 1, Width: 1280, Height: 720, CapturedMs: Date.now() - 120,
    ProcessedMs: 0, SentMs: 0, ContentType: "image/jpeg", Objects: [], Dropped: 0, ...h };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const buf = new Uint8Array(4 + json.length + 3);
  new DataView(buf.buffer).setUint32(0, json.length);
  buf.set(json, 4);
  buf.set([0xff, 0xd8, 0xff], 4 + json.length);
  return buf.buffer;
}

class FakeSocket {
  static last: FakeSocket | undefined;
  binaryType = "";
  readyState = 1;
  sent: string[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((e: MessageEvent) => void) | null = null;
  onclose: ((e: CloseEvent) => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.last = this;
  }
  send(m: string) {
    this.sent.push(m);
  }
  close() {}
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

describe("parseFrame and parseTiles", () => {
  it("split a message into header and picture", () => {
    const { header, picture } = parseFrame(frame({ Seq: 7 }));
    expect(header.Seq).toBe(7);
    expect(Array.from(picture)).toEqual([0xff, 0xd8, 0xff]);
    expect(() => parseFrame(new ArrayBuffer(2))).toThrow(/too short/);
  });
  it("read the tiles of the URL", () => {
    expect(parseTiles("task-1:0,,task-2:3")).toEqual([{ taskId: "task-1", source: 0 }, null, { taskId: "task-2", source: 3 }]);
    expect(parseTiles(null)).toEqual([]);
  });
});

describe("LiveTile", () => {
  it("asks for a stream, draws the frame and its boxes with track id and label, and shows the latency", async () => {
    const asked: unknown[] = [];
    vi.stubGlobal("fetch", async (_: string, init: RequestInit) => {
      asked.push(JSON.parse(String(init.body)));
      return new Response(JSON.stringify({ Response: { RequestId: "r", Url: "/livestream/?ticket=t" } }));
    });
    vi.stubGlobal("WebSocket", FakeSocket);
    vi.stubGlobal("createImageBitmap", async () => ({ width: 1280, height: 720, close() {} }));
    vi.stubGlobal("requestAnimationFrame", (f: FrameRequestCallback) => setTimeout(() => f(0), 0));
    const drawn: string[] = [];
    const ctx = {
      drawImage: () => drawn.push("image"),
      strokeRect: (x: number, y: number, w: number, h: number) => drawn.push(`box ${x},${y},${w},${h}`),
      fillRect: () => {},
      fillText: (t: string) => drawn.push(`text ${t}`),
      measureText: (t: string) => ({ width: t.length * 8 }),
    };
    vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockReturnValue(ctx as unknown as CanvasRenderingContext2D);

    render(<LiveTile choice={{ taskId: "task-1", source: 0 }} index={0} />);
    await vi.waitFor(() => expect(FakeSocket.last?.url).toBe(`ws://${window.location.host}/livestream/?ticket=t`));
    expect(asked).toEqual([{ TaskId: "task-1", SourceIndex: 0 }]);
    FakeSocket.last?.onopen?.();
    FakeSocket.last?.onmessage?.(new MessageEvent("message", { data: frame({ Objects: [{ Box: [100, 50, 80, 90], TrackId: 3, Label: "face" }] }) }));

    await vi.waitFor(() => expect(screen.getByTestId("live-status").textContent).toBe("live"));
    expect(drawn).toEqual(["image", "box 100,50,80,90", "text #3 face"]);
    expect(FakeSocket.last?.sent).toEqual(["ok"]); // the drawn frame is acknowledged: the next may come
    const tile = screen.getByTestId("live-tile");
    expect(tile.getAttribute("data-boxes")).toBe("1");
    expect(screen.getByTestId("live-latency").textContent).toMatch(/^\d+ ms$/);
  });

  it("shows why it reconnects when the server refuses the stream", async () => {
    vi.stubGlobal("fetch", async () =>
      new Response(JSON.stringify({ Response: { RequestId: "r", Error: { Code: "FailedOperation", Message: "TaskId: task task-1 is Stopped; only a running task can be watched" } } })),
    );
    render(<LiveTile choice={{ taskId: "task-1", source: 0 }} index={0} />);
    await vi.waitFor(() => expect(screen.getByTestId("live-status").textContent).toMatch(/^reconnecting: .*Stopped/));
  });
});
