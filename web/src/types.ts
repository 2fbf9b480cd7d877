// Response shapes of the actions the console calls (docs/api.md).

export interface MyProject {
  ProjectId: string;
  Name: string;
  Roles: string[];
  Actions: string[];
}

export interface MyPermissions {
  UserId: string;
  UserName: string;
  PlatformAdmin: boolean;
  ProjectSet: MyProject[];
}

export interface Device {
  DeviceId: string;
  ProjectId: string;
  Name: string;
  Description: string;
  Driver: string;
  Address: string;
  Group: string;
  /** EdgeNode is the site (edge node) the device stands at; "" for none. */
  EdgeNode: string;
  Status: string;
  Reason: string;
  LastError: string;
  MeasuredFps: number;
  CreatedTime: string;
}

export interface DescribeDevicesResponse {
  TotalCount: number;
  DeviceSet: Device[];
}

export interface Task {
  TaskId: string;
  Name: string;
  Status: string;
}

export interface DescribeTasksResponse {
  TotalCount: number;
  TaskSet: Task[];
}

export interface Algorithm {
  AlgorithmId: string;
  Name: string;
}

export interface DescribeAlgorithmsResponse {
  TotalCount: number;
  AlgorithmSet: Algorithm[];
}

export interface Instance {
  Version: string;
  InstanceId: string;
  Status: string;
}

export interface ProbeResponse {
  Online: boolean;
  Reason: string;
  Message: string;
  Info: Record<string, unknown> | null;
  HasSnapshot: boolean;
}

export interface TaskSource {
  Type: string;
  Id: string;
  DropPolicy?: string;
}

export interface TaskInfo extends Task {
  ProjectId: string;
  Description: string;
  FlowId: string;
  FlowVersion: number;
  /** LatestFlowVersion is the flow's newest version (a task on an older one can move to it). */
  LatestFlowVersion?: number;
  Sources: TaskSource[];
  Parameters: Record<string, unknown> | null;
  DesiredState: string;
  Reason: string;
  NodeId: string;
  CreatedTime: string;
  UpdatedTime: string;
}

export interface TaskStats {
  TaskId: string;
  Status: string;
  NodeId: string;
  FpsIn: number;
  FpsOut: number;
  Received: number;
  Completed: number;
  Dropped: number;
  Failed: number;
  Records: number;
  Events: number;
  LastError: string;
  NodeLatency: { NodeId: string; Count: number; Errors: number; P50Ms: number; P99Ms: number }[] | null;
  /** NodeErrors are the last failures of the flow's nodes, newest first; TraceId is "" or absent while tracing is off. */
  NodeErrors?: NodeError[];
  UpdatedTime: string;
  RunningSince: string;
}

export interface NodeError {
  NodeId: string;
  Time: string;
  Message: string;
  TraceId?: string;
}

export interface TaskEvent {
  Time: string;
  Type: string;
  NodeId: string;
  Message: string;
}

export interface Flow {
  FlowId: string;
  Name: string;
  LatestVersion: number;
}

export interface FlowVersion {
  FlowId: string;
  Version: number;
  Comment: string;
  Document: unknown;
}

/** FlowParameter is a parameter a flow document declares. */
export interface FlowParameter {
  type?: string;
  default?: unknown;
  description?: string;
}

export interface RecordInfo {
  RecordId: string;
  ProjectId: string;
  TaskId: string;
  DeviceId: string;
  Type: string;
  Time: string;
  Data: unknown;
  ObjectKeys: string[];
  ObjectUrls: string[];
  CreatedTime: string;
}

export interface DescribeRecordsResponse {
  TotalCount: number;
  RecordSet: RecordInfo[];
}
