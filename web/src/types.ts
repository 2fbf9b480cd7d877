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
