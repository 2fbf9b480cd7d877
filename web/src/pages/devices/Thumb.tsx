import { useEffect, useRef, useState } from "react";
import { call } from "../../api";
import { sameOrigin } from "../Records";

// Thumbnails are cheap by construction: each is loaded only once it is on
// screen, at most LANES at a time for the whole page, remembered here for
// CACHE_MS across polls and pages, and the server answers from its own
// cache of snapshot URLs (MaxAgeMs) instead of asking the device again.
const LANES = 2;
const CACHE_MS = 5 * 60_000;

/** Snap is a device's cached thumbnail URL; "" when it gave no picture (asked again after CACHE_MS too). */
interface Snap {
  url: string;
  at: number;
}

const cache = new Map<string, Snap>();
const waiting: (() => void)[] = [];
let running = 0;

function next() {
  while (running < LANES && waiting.length > 0) {
    running++;
    waiting.shift()?.();
  }
}

/** snapshotUrl is a device's picture URL for a thumbnail, or "" when it has none; one call per device per CACHE_MS. */
export async function snapshotUrl(deviceId: string, now = Date.now()): Promise<string> {
  const hit = cache.get(deviceId);
  if (hit && now - hit.at < CACHE_MS) return hit.url;
  await new Promise<void>((go) => {
    waiting.push(go);
    next();
  });
  try {
    const r = await call<{ Url: string }>("DescribeDeviceSnapshot", { DeviceId: deviceId, MaxAgeMs: CACHE_MS });
    cache.set(deviceId, { url: sameOrigin(r.Url), at: now });
    return sameOrigin(r.Url);
  } catch {
    cache.set(deviceId, { url: "", at: now });
    return "";
  } finally {
    running--;
    next();
  }
}

/** forgetSnapshot drops a device's cached picture (after a change, or to take a new one). */
export function forgetSnapshot(deviceId: string) {
  cache.delete(deviceId);
}

/** Thumb is a device's last picture, loaded when it scrolls into view. */
export function Thumb(props: { deviceId: string; name: string }) {
  const ref = useRef<HTMLSpanElement>(null);
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    let live = true;
    const load = () => void snapshotUrl(props.deviceId).then((u) => live && setUrl(u));
    if (typeof IntersectionObserver === "undefined") {
      load();
      return () => void (live = false);
    }
    const io = new IntersectionObserver((es) => {
      if (es.some((e) => e.isIntersecting)) {
        io.disconnect();
        load();
      }
    });
    io.observe(el);
    return () => {
      live = false;
      io.disconnect();
    };
  }, [props.deviceId]);
  return (
    <span ref={ref} className="thumb-slot">
      {url ? (
        <img className="thumb" src={url} alt={`Last picture of ${props.name}`} data-thumb={props.name} />
      ) : (
        <span className="thumb thumb-empty muted small">{url === "" ? "no picture" : ""}</span>
      )}
    </span>
  );
}
