import { describe, expect, it } from "vitest";
import { ApiError } from "./api";
import { formErrors } from "./errors";

describe("formErrors", () => {
  const fields = ["Name", "Address"];
  it("puts a field's error next to it", () => {
    expect(formErrors(new ApiError("MissingParameter", "Name: required"), fields)).toEqual({ fields: { Name: "required" } });
  });
  it("drops a prefix such as Device. first", () => {
    const e = new ApiError("InvalidParameterValue", "Device.Address: no such folder");
    expect(formErrors(e, fields, "Device.")).toEqual({ fields: { Address: "no such folder" } });
  });
  it("puts a nested field's error next to that field when the form has it, else next to its top", () => {
    const e = new ApiError("InvalidParameterValue", "Parameters.minFaceSize: not an integer");
    expect(formErrors(e, ["Parameters", "Parameters.minFaceSize"])).toEqual({ fields: { "Parameters.minFaceSize": "not an integer" } });
    expect(formErrors(e, ["Parameters"])).toEqual({ fields: { Parameters: "not an integer" } });
  });
  it("puts other errors above the form", () => {
    const e = new ApiError("ResourceInUse", "device \"d\" is used by a task");
    expect(formErrors(e, fields).form).toContain("ResourceInUse");
    expect(formErrors(new ApiError("InvalidParameterValue", "Width: too large"), fields).form).toContain("Width");
  });
});
