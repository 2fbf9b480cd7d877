import type { Device } from "../../types";
import type { Zone } from "./zoneMath";

/** DeviceInfo is a device as DescribeDevices returns it in full. */
export interface DeviceInfo extends Device {
  Username: string;
  HasPassword: boolean;
  Options: Record<string, unknown> | null;
  Fps: number;
  Width: number;
  Zones: Zone[] | null;
  LastFrameTime: string;
  /** StatusTime is when the status was last reported ("" when never). */
  StatusTime?: string;
}

/** Discovered is a device that answered WS-Discovery. */
export interface Discovered {
  Endpoint: string;
  XAddrs: string[] | null;
  Types: string[] | null;
  Scopes: string[] | null;
  From: string;
}
