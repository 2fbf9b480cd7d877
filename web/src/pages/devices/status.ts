/** reasonText explains a device status reason a person cannot read as it is. */
export function reasonText(reason: string | undefined): string {
  switch (reason) {
    case "edge_not_reporting":
      return "its edge node is not reporting (the link to its site is down)";
  }
  return reason ?? "";
}
