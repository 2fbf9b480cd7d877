import { useState } from "react";
import type { FormEvent } from "react";
import { call } from "../api";
import { Field } from "../components/Field";
import { ErrorLine } from "../components/ListTable";
import { formErrors, noErrors } from "../errors";
import type { FormErrors } from "../errors";
import { can, useSession } from "../session";
import { useAction } from "../useAction";

/** Canary is an algorithm's canary as DescribeAlgorithms gives it. */
export interface Canary {
  Version: string;
  Percent: number;
  DeviceGroups: string[] | null;
}

const FIELDS = ["Version", "Percent", "DeviceGroups"] as const;

/** groupsOf splits the groups a person typed (commas or new lines), dropping empty ones. */
export function groupsOf(text: string): string[] {
  return text
    .split(/[,\n]/)
    .map((g) => g.trim())
    .filter((g) => g !== "");
}

/** canaryText says who takes part in a canary, as a sentence. */
export function canaryText(c: Canary): string {
  const groups = c.DeviceGroups ?? [];
  const who = groups.length === 0 ? "of every group" : `of ${groups.length === 1 ? "group" : "groups"} ${groups.join(", ")}`;
  return `${c.Percent}% of the cameras ${who} call version ${c.Version}`;
}

/**
 * CanaryCard shows an algorithm's canary (a share of the cameras of some
 * device groups calling another version than the current one, for flows
 * that name no version) and lets who may start, change, end or promote it.
 */
export function CanaryCard(props: { algorithmId: string; current: string; canary: Canary | null | undefined; versions: string[]; onChanged(): void }) {
  const s = useSession();
  const others = props.versions.filter((v) => v !== props.current);
  const c = props.canary ?? null;
  const [version, setVersion] = useState(c?.Version ?? others[0] ?? "");
  const [percent, setPercent] = useState(String(c?.Percent ?? 10));
  const [groups, setGroups] = useState((c?.DeviceGroups ?? []).join(", "));
  const [errors, setErrors] = useState<FormErrors>(noErrors);
  const { busy, error, run } = useAction();
  const mayEdit = can(s, "SetAlgorithmCanary");
  if (!c && (!mayEdit || others.length === 0)) return null;

  async function submit(e: FormEvent) {
    e.preventDefault();
    setErrors(noErrors);
    try {
      await call("SetAlgorithmCanary", { AlgorithmId: props.algorithmId, Version: version, Percent: Number(percent), DeviceGroups: groupsOf(groups) });
      props.onChanged();
    } catch (err) {
      setErrors(formErrors(err, FIELDS));
    }
  }
  return (
    <article className="card" aria-label="Canary" data-testid="canary">
      <h2 className="section-title">Canary</h2>
      <p data-testid="canary-state">
        {c ? canaryText(c) + `; the others call version ${props.current || "—"}.` : `Every camera calls version ${props.current || "—"}.`}
      </p>
      <p className="muted small">
        For flows that name no version. Each camera is in or out for good (a hash of its device id); raising the share only adds cameras.
      </p>
      {mayEdit && (
        <form onSubmit={(e) => void submit(e)} aria-label="Set the canary">
          <Field label="Canary version" name="Version" value={version} onChange={setVersion} options={others} error={errors.fields.Version} />
          <Field label="Share of cameras (%)" name="Percent" type="number" value={percent} onChange={setPercent} error={errors.fields.Percent} />
          <Field label="Device groups" name="DeviceGroups" value={groups} onChange={setGroups} error={errors.fields.DeviceGroups}
            hint="Comma separated; empty: every group." />
          <ErrorLine error={errors.form ?? ""} />
          <div className="row-actions">
            <button type="submit">{c ? "Change canary" : "Start canary"}</button>
            {c && can(s, "PromoteAlgorithmCanary") && (
              <button type="button" className="secondary" disabled={busy}
                onClick={() => void run(async () => {
                  await call("PromoteAlgorithmCanary", { AlgorithmId: props.algorithmId });
                  props.onChanged();
                })}>
                Promote version {c.Version}
              </button>
            )}
            {c && (
              <button type="button" className="secondary" disabled={busy}
                onClick={() => void run(async () => {
                  await call("SetAlgorithmCanary", { AlgorithmId: props.algorithmId, Version: "" });
                  props.onChanged();
                })}>
                End canary
              </button>
            )}
          </div>
          <ErrorLine error={error} />
        </form>
      )}
    </article>
  );
}
