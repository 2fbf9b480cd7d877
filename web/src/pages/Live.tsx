import { useEffect, useRef, useState } from "react";
import { call } from "../api";
import { ErrorLine } from "../components/ListTable";
import { PageHead } from "../components/PageHead";
import { describe } from "../errors";
import { navigate, useRoute, withQuery } from "../router";
import { useSession } from "../session";
import type { TaskInfo } from "../types";
import { usePolled } from "../usePoll";

// The live view: a grid of the frames running tasks process, with the
// objects their flows found drawn over them. Each tile asks
// DescribeLiveStream for a short-lived WebSocket URL and draws every frame
// it receives (a 4-byte length, a JSON header, the JPEG); the URL keeps
// the grid size (?grid=1|2|3) and each tile's choice (?tiles=task:source,…).

const GRIDS = [1, 2, 3] as const;
const TASKS_REFRESH_MS = 10000;
// Running tasks offered for watching: the first page of them.
const TASK_LIMIT = 100;
const RETRY_MAX_MS = 10000;
// OPEN is WebSocket.OPEN.
const OPEN = 1;

/** LiveObject is one object found on a frame. */
export interface LiveObject {
  Box: [number, number, number, number];
  TrackId?: number;
  Label?: string;
  Score?: number;
}

/** LiveHeader is the JSON part of a frame message. */
export interface LiveHeader {
  TaskId: string;
  Source: number;
  Key: string;
  Seq: number;
  Width: number;
  Height: number;
  CapturedMs: number;
  ProcessedMs: number;
  SentMs: number;
  ContentType: string;
  Objects: LiveObject[];
  Dropped: number;
}

/** parseFrame splits a frame message into its header and picture. */
export function parseFrame(buf: ArrayBuffer): { header: LiveHeader; picture: Uint8Array } {
  const view = new DataView(buf);
  if (buf.byteLength < 4) throw new Error("frame: too short");
  const n = view.getUint32(0);
  if (4 + n > buf.byteLength) throw new Error("frame: header longer than the message");
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, n))) as LiveHeader;
  return { header, picture: new Uint8Array(buf, 4 + n) };
}

/** Choice is what one tile shows: a task's source. */
export interface Choice {
  taskId: string;
  source: number;
}

/** parseTiles reads ?tiles=task:source,… (empty entries are empty tiles). */
export function parseTiles(v: string | null): (Choice | null)[] {
  if (!v) return [];
  return v.split(",").map((s) => {
    const [taskId, src] = s.split(":");
    const source = Number(src ?? "0");
    return taskId && Number.isInteger(source) && source >= 0 ? { taskId, source } : null;
  });
}

function formatTiles(tiles: (Choice | null)[]): string {
  return tiles.map((c) => (c ? `${c.taskId}:${c.source}` : "")).join(",");
}

interface Option {
  key: string;
  label: string;
  choice: Choice;
}

function optionsOf(tasks: TaskInfo[]): Option[] {
  return tasks.flatMap((t) =>
    t.Sources.map((s, i) => ({ key: `${t.TaskId}:${i}`, label: t.Sources.length > 1 ? `${t.Name} — ${s.Id}` : t.Name, choice: { taskId: t.TaskId, source: i } })),
  );
}

/** Live shows a grid of running tasks' sources with what their flows found. */
export function Live() {
  const s = useSession();
  const route = useRoute();
  const projectId = s.project?.ProjectId ?? "";
  const gridParam = Number(route.query.get("grid") ?? "2");
  const grid = (GRIDS as readonly number[]).includes(gridParam) ? gridParam : 2;
  const tilesParam = route.query.get("tiles");
  const { value: tasks, error } = usePolled(
    async () =>
      (
        await call<{ TaskSet: TaskInfo[] }>("DescribeTasks", {
          ProjectId: projectId,
          Limit: TASK_LIMIT,
          Filters: [{ Name: "Status", Values: ["Running"] }],
        })
      ).TaskSet,
    TASKS_REFRESH_MS,
    [projectId],
  );
  const options = optionsOf(tasks ?? []);
  const count = grid * grid;
  // Without a choice in the URL the grid fills with the running sources.
  const chosen = tilesParam === null ? options.slice(0, count).map((o) => o.choice) : parseTiles(tilesParam);
  const tiles = Array.from({ length: count }, (_, i) => chosen[i] ?? null);

  const choose = (i: number, key: string) => {
    const next = [...tiles];
    next[i] = options.find((o) => o.key === key)?.choice ?? null;
    navigate(withQuery({ tiles: formatTiles(next) }));
  };

  return (
    <section aria-labelledby="page-title">
      <PageHead title="Live" />
      <div className="live-controls">
        <div className="buttons" role="group" aria-label="Grid size">
          {GRIDS.map((g) => (
            <button key={g} type="button" className={g === grid ? "" : "secondary"} aria-pressed={g === grid} onClick={() => navigate(withQuery({ grid: g }))}>
              {g === 1 ? "1" : `${g}×${g}`}
            </button>
          ))}
        </div>
        {tasks && options.length === 0 && <p className="muted">No task of project {projectId} is running. Start one on the Tasks page.</p>}
      </div>
      <ErrorLine error={error} />
      <div className={`live-grid live-grid-${grid}`}>
        {tiles.map((c, i) => (
          <div className="live-tile card" key={i}>
            <label className="visually-hidden" htmlFor={`live-source-${i}`}>
              Camera {i + 1}
            </label>
            <select id={`live-source-${i}`} value={c ? `${c.taskId}:${c.source}` : ""} onChange={(e) => choose(i, e.target.value)}>
              <option value="">— none —</option>
              {options.map((o) => (
                <option key={o.key} value={o.key}>
                  {o.label}
                </option>
              ))}
              {c && !options.some((o) => o.key === `${c.taskId}:${c.source}`) && <option value={`${c.taskId}:${c.source}`}>{c.taskId} (not running)</option>}
            </select>
            {c ? <LiveTile key={`${c.taskId}:${c.source}`} choice={c} index={i} /> : <div className="live-empty muted">Choose a camera above.</div>}
          </div>
        ))}
      </div>
    </section>
  );
}

interface TileStats {
  frames: number;
  boxes: number;
  /** latencyMs is the median time from capture to screen of the last frames; flowMs the part the task's flow took. */
  latencyMs: number | null;
  flowMs: number | null;
  fps: number;
  status: string;
}

const NO_STATS: TileStats = { frames: 0, boxes: 0, latencyMs: null, flowMs: null, fps: 0, status: "connecting" };

function median(xs: number[]): number | null {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? null;
}

/** LiveTile streams one source into a canvas: the frame, then its boxes with track ids and labels. */
export function LiveTile(props: { choice: Choice; index: number }) {
  const { taskId, source } = props.choice;
  const canvas = useRef<HTMLCanvasElement>(null);
  const [stats, setStats] = useState<TileStats>(NO_STATS);

  useEffect(() => {
    let stopped = false;
    let ws: WebSocket | null = null;
    let retryTimer = 0;
    let retryMs = 500;
    let busy = false;
    let pending: ArrayBuffer | null = null;
    let frames = 0;
    let boxes = 0;
    const latencies: number[] = [];
    const flows: number[] = [];
    const drawnAt: number[] = [];

    const show = (status: string) => {
      if (stopped) return;
      const now = performance.now();
      while (drawnAt.length > 0 && (drawnAt[0] ?? 0) < now - 2000) drawnAt.shift();
      setStats({ frames, boxes, status, fps: drawnAt.length / 2, latencyMs: median(latencies), flowMs: median(flows) });
    };

    // Frames are drawn one at a time, and each drawn frame is acknowledged:
    // the server sends the next (the newest it has) only then, so nothing
    // queues between the task and the screen.
    const draw = async (buf: ArrayBuffer) => {
      busy = true;
      try {
        const { header, picture } = parseFrame(buf);
        const bitmap = await createImageBitmap(new Blob([picture as BlobPart], { type: header.ContentType || "image/jpeg" }));
        const c = canvas.current;
        const ctx = c?.getContext("2d");
        if (c && ctx && !stopped) {
          if (c.width !== bitmap.width || c.height !== bitmap.height) {
            c.width = bitmap.width;
            c.height = bitmap.height;
          }
          ctx.drawImage(bitmap, 0, 0);
          drawObjects(ctx, header.Objects, bitmap.width, header.Width || bitmap.width);
          frames++;
          boxes += header.Objects.length;
          drawnAt.push(performance.now());
          // The frame is on screen at the next paint: measure there.
          requestAnimationFrame(() => {
            latencies.push(Date.now() - header.CapturedMs);
            flows.push(header.ProcessedMs - header.CapturedMs);
            if (latencies.length > 20) latencies.shift();
            if (flows.length > 20) flows.shift();
            show("live");
          });
        }
        bitmap.close();
      } catch (e) {
        show(`bad frame: ${describe(e)}`);
      } finally {
        busy = false;
        if (!stopped && ws?.readyState === OPEN) ws.send("ok");
        const next = pending;
        pending = null;
        if (next && !stopped) void draw(next);
      }
    };

    const retry = (why: string) => {
      if (stopped) return;
      show(`reconnecting: ${why}`);
      retryTimer = window.setTimeout(() => void connect(), retryMs);
      retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    };

    const connect = async () => {
      let url: string;
      try {
        url = (await call<{ Url: string }>("DescribeLiveStream", { TaskId: taskId, SourceIndex: source })).Url;
      } catch (e) {
        retry(describe(e));
        return;
      }
      if (stopped) return;
      const proto = window.location.protocol === "https:" ? "wss:" : "ws:";
      const sock = new WebSocket(`${proto}//${window.location.host}${url}`);
      ws = sock;
      sock.binaryType = "arraybuffer";
      sock.onopen = () => {
        retryMs = 500;
        show("waiting for frames");
      };
      sock.onmessage = (ev: MessageEvent) => {
        if (!(ev.data instanceof ArrayBuffer)) return;
        if (busy) pending = ev.data;
        else void draw(ev.data);
      };
      sock.onclose = (ev: CloseEvent) => {
        if (ws === sock) retry(ev.reason || "connection closed");
      };
    };

    void connect();
    return () => {
      stopped = true;
      window.clearTimeout(retryTimer);
      ws?.close();
    };
  }, [taskId, source]);

  const latency = stats.latencyMs === null ? "—" : `${Math.round(stats.latencyMs)} ms`;
  const flow = stats.flowMs === null ? "—" : `${Math.round(stats.flowMs)} ms`;
  return (
    <figure className="live-figure" data-testid="live-tile" data-frames={stats.frames} data-boxes={stats.boxes} data-latency-ms={stats.latencyMs ?? ""} data-flow-ms={stats.flowMs ?? ""}>
      <canvas ref={canvas} className="live-canvas" width={1280} height={720} aria-label={`Camera ${props.index + 1}: ${taskId} source ${source}`} role="img" />
      <figcaption className="live-caption small">
        <span className="live-status" data-testid="live-status">
          {stats.status}
        </span>
        <span title="From the frame's capture to this screen, median of the last frames">
          latency <strong data-testid="live-latency">{latency}</strong>
        </span>
        <span className="muted" title="The part of the latency the task's flow took (detection, tracking)">
          flow {flow}
        </span>
        <span>{stats.fps.toFixed(1)} fps</span>
      </figcaption>
    </figure>
  );
}

const COLORS = ["#ffd400", "#00e5ff", "#ff4dd2", "#7cff4d", "#ff8a00", "#b388ff"];

/** drawObjects draws each object's box and its "#track label" tag, scaled from the frame's size to the bitmap's. */
export function drawObjects(ctx: CanvasRenderingContext2D, objects: LiveObject[], drawnWidth: number, frameWidth: number) {
  const k = frameWidth > 0 ? drawnWidth / frameWidth : 1;
  const line = Math.max(2, Math.round(drawnWidth / 400));
  ctx.lineWidth = line;
  ctx.font = `${Math.max(12, Math.round(drawnWidth / 60))}px system-ui, sans-serif`;
  ctx.textBaseline = "bottom";
  for (const o of objects) {
    const [x, y, w, h] = o.Box.map((v) => v * k) as [number, number, number, number];
    const color = COLORS[(o.TrackId ?? 0) % COLORS.length] ?? "#ffd400";
    ctx.strokeStyle = color;
    ctx.strokeRect(x, y, w, h);
    const tag = [o.TrackId ? `#${o.TrackId}` : "", o.Label ?? "", o.Score ? o.Score.toFixed(2) : ""].filter(Boolean).join(" ");
    if (!tag) continue;
    const tw = ctx.measureText(tag).width + 2 * line;
    const th = Math.max(12, Math.round(drawnWidth / 60)) + line;
    const ty = y >= th ? y : y + h + th;
    ctx.fillStyle = color;
    ctx.fillRect(x - line / 2, ty - th, tw, th);
    ctx.fillStyle = "#000";
    ctx.fillText(tag, x + line, ty - line / 2);
  }
}
