// A flow node drawn on the canvas: its ports as handles, its problems under it.
import { Handle, Position } from "@xyflow/react";
import type { Node, NodeProps } from "@xyflow/react";
import { FLOW, INPUT_KIND, MORE, NEXT } from "./graph";
import type { FlowNode, Port } from "./graph";
import type { NodeRun } from "./runs";
import { NodeResult } from "./TestRun";

export type NodeData = { node: FlowNode; inputs: Port[]; outputs: Port[]; more?: boolean; errors: string[]; result?: NodeRun };
export type EditorNode = Node<NodeData, "flow">;

export function FlowNodeView(props: NodeProps<EditorNode>) {
  const { node, inputs, outputs, errors } = props.data;
  if (node.kind === INPUT_KIND) return <InputNodeView outputs={outputs} />;
  return (
    <div className={errors.length ? "flow-node flow-node-invalid" : "flow-node"} data-node={node.id} aria-invalid={errors.length ? true : undefined}>
      <Handle type="target" position={Position.Left} id={FLOW} className="handle-control" />
      <div className="flow-node-head">
        <strong>{node.id}</strong> <span className="muted small">{node.kind === "algorithm" ? String(node.config?.algorithm ?? "algorithm") : node.kind}</span>
      </div>
      <div className="flow-node-ports">
        <ul>
          {inputs.map((p) => (
            <li key={p.Name} className="port port-in" title={`${p.Name}: ${p.Type}${p.Required ? " (required)" : ""}`}>
              <Handle type="target" position={Position.Left} id={`in:${p.Name}`} className={`handle-${p.Type}`} />
              {p.Name} <span className="muted">{p.Type}</span>
            </li>
          ))}
          {props.data.more && (
            <li className="port port-in port-more" title="Wire any output here to add it as an input of its name">
              <Handle type="target" position={Position.Left} id={MORE} className="handle-any" />
              <span className="muted">+ input</span>
            </li>
          )}
        </ul>
        <ul>
          {outputs.map((p) => (
            <li key={p.Name} className="port port-out" title={`${p.Name}: ${p.Type}`}>
              {p.Name} <span className="muted">{p.Type}</span>
              <Handle type="source" position={Position.Right} id={`out:${p.Name}`} className={`handle-${p.Type}`} />
            </li>
          ))}
        </ul>
      </div>
      {errors.length > 0 && (
        <ul className="flow-node-errors" data-testid="node-errors">
          {errors.map((m) => <li key={m}>{m}</li>)}
        </ul>
      )}
      {props.data.result && <NodeResult run={props.data.result} />}
      <Handle type="source" position={Position.Right} id={NEXT} className="handle-control" />
    </div>
  );
}

// The flow's input (the message), not a node of the document: wiring one of its fields into a node maps $input.<field>.
function InputNodeView(props: { outputs: Port[] }) {
  return (
    <div className="flow-node flow-node-input" data-node="input" title="The message the flow receives ($input)">
      <div className="flow-node-head">
        <strong>Input</strong> <span className="muted small">the message</span>
      </div>
      <ul className="flow-node-input-ports">
        {props.outputs.map((p) => (
          <li key={p.Name} className="port port-out" title={`$input.${p.Name}: ${p.Type}${p.Doc ? ` (${p.Doc})` : ""}`}>
            {p.Name} <span className="muted">{p.Type}</span>
            <Handle type="source" position={Position.Right} id={`out:${p.Name}`} className={`handle-${p.Type}`} />
          </li>
        ))}
      </ul>
      <Handle type="source" position={Position.Right} id={NEXT} className="handle-control" title="the whole message ($input)" />
    </div>
  );
}

export const NODE_TYPES = { flow: FlowNodeView };

