// The console's pages, in navigation order, with the action a person must
// be allowed to see an entry (the page's list). Each page is one file under
// pages/, mapped to its path in App.tsx.

export interface PageEntry {
  path: string;
  label: string;
  /** needs is the action that reads the page's data; "" for every person. */
  needs: string;
}

export const nav: readonly PageEntry[] = [
  { path: "/overview", label: "Overview", needs: "" },
  { path: "/devices", label: "Devices", needs: "DescribeDevices" },
  { path: "/sites", label: "Sites", needs: "DescribeEdgeNodes" },
  { path: "/live", label: "Live", needs: "DescribeTasks" },
  { path: "/algorithms", label: "Algorithms", needs: "DescribeAlgorithms" },
  { path: "/flows", label: "Flows", needs: "DescribeFlows" },
  { path: "/tasks", label: "Tasks", needs: "DescribeTasks" },
  { path: "/records", label: "Records", needs: "DescribeRecords" },
  { path: "/search", label: "Search", needs: "SearchRecords" },
  { path: "/watchlists", label: "Watchlists", needs: "DescribeWatchlists" },
  { path: "/apps", label: "Apps", needs: "DescribeApps" },
  { path: "/subscriptions", label: "Subscriptions", needs: "DescribeSubscriptions" },
  { path: "/members", label: "Members", needs: "DescribeProjectMembers" },
  { path: "/roles", label: "Roles", needs: "DescribeRoles" },
  { path: "/users", label: "Users", needs: "DescribeUsers" },
  { path: "/audit", label: "Audit", needs: "DescribeAuditEvents" },
  { path: "/logs", label: "Logs", needs: "DescribeLogs" },
];
