// A flow node drawn on the canvas: its ports as handles, its problems under it.
import { Handle, Position } from "@xyflow/react";
import type { Node, NodeProps } from "@xyflow/react";
import { FLOW, INPUT_KIND, ITEM_KIND, MORE, NEXT, OUTPUT_KIND } from "./graph";
import type { FlowNode, Port } from "./graph";
import type { NodeRun } from "./runs";
import { NodeResult } from "./TestRun";

export type NodeData = { node: FlowNode; inputs: Port[]; outputs: Port[]; more?: boolean; errors: string[]; result?: NodeRun };
export type EditorNode = Node<NodeData, "flow">;

export function FlowNodeView(props: NodeProps<EditorNode>) {
  const { node, inputs, outputs, errors } = props.data;
  if (node.kind === INPUT_KIND || node.kind === ITEM_KIND) return <InputNodeView node={node} outputs={outputs} />;
  if (node.kind === OUTPUT_KIND) return <OutputNodeView node={node} inputs={inputs} errors={errors} />;
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

// The flow's input (the message), or in a foreach body its foreach's inputs ($input) and the element ($item): not nodes of the document.
// Wiring one of its fields into a node maps $input.<field> (or $item.<field>).
function InputNodeView(props: { node: FlowNode; outputs: Port[] }) {
  const item = props.node.kind === ITEM_KIND;
  const root = item ? "$item" : "$input";
  const what = typeof props.node.description === "string" ? props.node.description : "the message";
  return (
    <div className="flow-node flow-node-input" data-node={props.node.id} title={item ? "The element the body runs for ($item)" : `The ${what} (${root})`}>
      <div className="flow-node-head">
        <strong>{item ? "Item" : "Input"}</strong> <span className="muted small">{item ? "each element" : what}</span>
      </div>
      <ul className="flow-node-input-ports">
        {props.outputs.map((p) => (
          <li key={p.Name} className="port port-out" title={`${root}.${p.Name}: ${p.Type}${p.Doc ? ` (${p.Doc})` : ""}`}>
            {p.Name} <span className="muted">{p.Type}</span>
            <Handle type="source" position={Position.Right} id={`out:${p.Name}`} className={`handle-${p.Type}`} />
          </li>
        ))}
        {props.outputs.length === 0 && !item && <li className="muted small">Wire values into the foreach's + input to use them here.</li>}
      </ul>
      <Handle type="source" position={Position.Right} id={NEXT} className="handle-control" title={item ? "the whole element ($item)" : "the whole message ($input)"} />
    </div>
  );
}

// The flow's output mapping (what InvokeFlow and a test run return), or a foreach body's (what each element's result holds).
// A wire to "+ output" adds a field named after the source's.
function OutputNodeView(props: { node: FlowNode; inputs: Port[]; errors: string[] }) {
  const what = typeof props.node.description === "string" ? props.node.description : "what the flow returns";
  const body = what !== "what the flow returns";
  return (
    <div className="flow-node flow-node-input" data-node="(output)"
      title={body ? "Each element's result: the foreach's results hold one per element" : "The flow's output: what InvokeFlow returns; without one, every node's output by node id"}>
      <div className="flow-node-head">
        <strong>Output</strong> <span className="muted small">{what}</span>
      </div>
      <ul className="flow-node-input-ports">
        {props.inputs.map((p) => (
          <li key={p.Name} className="port port-in" title={p.Name}>
            <Handle type="target" position={Position.Left} id={`in:${p.Name}`} className="handle-any" />
            {p.Name}
          </li>
        ))}
        <li className="port port-in port-more" title="Wire any output here to add it to the result under its name">
          <Handle type="target" position={Position.Left} id={MORE} className="handle-any" />
          <span className="muted">+ output</span>
        </li>
      </ul>
      {props.errors.length > 0 && (
        <ul className="flow-node-errors" data-testid="node-errors">
          {props.errors.map((m) => <li key={m}>{m}</li>)}
        </ul>
      )}
    </div>
  );
}

export const NODE_TYPES = { flow: FlowNodeView };

