// Package flow is Tianshu's flow engine: it parses and validates flow
// documents, compiles a flow version once into a Plan, and runs the plan
// once per message (a video frame, an uploaded picture, an InvokeFlow
// call), many messages concurrently.
//
// The engine does no I/O and imports nothing of Tianshu's but the script
// sandbox (internal/function): algorithms, subflows, sinks, stream state,
// metrics and tracing reach it through small interfaces and values its
// caller passes in (Algorithms, Flows, Sinks, State, Metrics, Tracer), so
// it runs in a unit test with no backend.
//
// # API
//
//	spec, err := flow.Parse(doc, flow.Limits{})            // JSON or YAML
//	errs := flow.Validate(ctx, spec, opts)                // every problem, each naming node and field
//	plan, err := flow.Compile(ctx, spec, opts)            // once per flow version; err is flow.Errors
//	err = plan.CheckParams(taskParams)                    // once per task
//	res, err := plan.Run(ctx, flow.Input{Data: msg, Params: taskParams, State: taskState, Sinks: sinks})
//
// # Document
//
// A flow is one JSON object (YAML is accepted and read as the same
// structure):
//
//	{
//	  "name": "face-structuring",
//	  "description": "optional",
//	  "inputs":     {"image": {"type": "image", "required": true}},
//	  "parameters": {"minScore": {"type": "number", "default": 0.5, "required": false}},
//	  "nodes": [
//	    {"id": "detect", "kind": "algorithm",
//	     "config": {"algorithm": "alg-face-detect", "version": "3"},
//	     "inputs": {"image": "$input.image"},
//	     "timeout": "2s", "retry": {"max": 2, "backoff": "100ms"},
//	     "onError": "route", "errorNext": "report",
//	     "next": ["faces"]},
//	    {"id": "faces", "kind": "foreach",
//	     "inputs": {"items": "$detect.faces", "image": "$input.image"},
//	     "config": {"concurrency": 4, "body": {
//	        "nodes": [{"id": "attr", "kind": "algorithm", "config": {"algorithm": "alg-face-attr"},
//	                   "inputs": {"image": "$input.image", "box": "$item.box"}}],
//	        "output": {"box": "$item.box", "attributes": "$attr"}}}},
//	    {"id": "save", "kind": "store", "config": {"type": "face"}, "inputs": {"faces": "$faces.results"}},
//	    {"id": "report", "kind": "publish", "config": {"type": "tianshu.flow.error"}, "inputs": {"error": "$detect.error"}}
//	  ],
//	  "edges": [{"from": "faces", "to": "save"}],
//	  "output": {"faces": "$faces.results", "record": "$save.recordId"}
//	}
//
// Fields:
//
//   - inputs: the message's fields, each {type, required, description}.
//     Optional; when present, $input.<name> must name one of them, and
//     Run refuses messages without the required ones (ErrBadInput).
//   - parameters: template parameters {type, default, required,
//     description}. A flow with parameters is a template: each task
//     supplies its own values (Input.Params); missing ones take the
//     default. $params.<name> must name a declared parameter.
//   - nodes: id (letters, digits, _ and -, starting with a letter or _; not
//     input, params, item or index), kind (see Kinds), inputs (name ->
//     value), config (kind-specific, unknown fields refused), next
//     (successor ids), timeout, retry, onError, errorNext.
//   - edges: {from, to} pairs; the same as next, written separately.
//     Switch cases add their targets as edges by themselves.
//   - output: name -> value; the flow's result. Without it the result is
//     every successful node's output by id.
//
// Types (inputs, parameters, algorithm contracts, ports): any, string,
// number, integer, bool, object, list, objects (a list of objects with
// box), image. Durations use Go syntax: 500ms, 2s, 1m.
//
// # Descriptors and port types
//
// Every Kind describes itself for editors and generated docs: Doc, a
// Category (algorithm, logic, stream, sink, utility), its input ports
// (Inputs: name, type, required, doc; MoreInputs when it also takes inputs
// of any name), its output fields (Outputs; nil when the shape is not
// fixed, as a script's result), and Config, a zero value of the struct its
// Compile decodes the config into. ConfigSchema derives the config's JSON
// Schema from that struct by reflection, driven by tags: json (the name),
// doc, default, example, enum ("a|b"), min, max, required, format
// (duration, expression, script, flow), and on an embedded struct omit
// and required. Algorithm nodes (FromContract) take their ports from the
// algorithm version's contract. TestKindDescriptors walks every
// registered kind and fails when a descriptor is missing or disagrees
// with Compile: the defaults and examples must compile; an unknown field,
// a missing required one, a value outside an enum or past a bound must
// be refused; Compile may look up and require only declared inputs and
// must declare the listed outputs.
//
// Ports are typed with a closed set (PortTypes): any, image, objects,
// object, list, string, number, integer, bool. Compatible(from, to) is the
// one connection rule: equal types, either side any (or undeclared), or
// one family ({number, integer}, {list, objects}). Validation applies it
// to every mapped input that reads a typed output field ($detect.faces),
// a declared flow input ($input.image) or a literal, and reports a
// miswiring with the Error's Edge (the producing node -> the reader) and
// the field (inputs.<name>), so an editor pins it on the wire.
//
// # Test runs
//
// Plan.Run with Input.Trace returns every node's output, status and
// duration; Plan.RunNode runs one node alone on pinned outputs of the
// nodes upstream (not run again), for an editor's single-node test. The
// studio's RunFlowTest action wraps both (docs/flows.md).
//
// # Values and paths
//
// An input or output value is a literal (any JSON value), a path (a string
// starting with $), or a list or object mixing both. "$$" starts a literal
// string that begins with "$". Paths:
//
//	$input.image              the message (in a body: the mapped inputs of the foreach/subflow node)
//	$params.threshold         a parameter, default filled in ($params alone: all of them)
//	$detect.faces[0].box      a node's output; the node must be an ancestor
//	$detect.faces[-1]         negative indices count from the end
//	$x["any key"]             quoted keys for names with other characters
//	$item.score, $index       the current element and its position, in a foreach body
//
// Paths are parsed and checked at compile time; at run time a missing field
// or index gives null, and so does a node that was skipped or failed.
//
// # Execution
//
// Nodes run in dependency order. A node with several successors fans out:
// the successors run concurrently, each kind that waits on I/O (algorithm,
// foreach, subflow, store, publish) on its own goroutine, cheap kinds inline.
// A linear chain runs on the caller's goroutine with no goroutine, channel
// or map per node. A node with several predecessors waits for all of them
// (a join may fire earlier), and runs if at least one edge into it is
// active: branches not taken (switch, filters that let nothing through) are
// skipped, with everything that depends only on them.
//
// Per node:
//
//   - timeout: a deadline on the node's context (nodes must honour ctx;
//     scripts do). For join it is the wait for enough branches.
//   - retry {max 0..10, backoff}: retries with doubling backoff (capped at
//     10s). Script failures, limit errors, panics and errors marked with
//     Permanent are not retried.
//   - onError: "fail" (default) fails the message: Run returns a
//     *NodeError and the other running nodes are cancelled; "skip" sets
//     the output to null and lets the successors run; "route" runs
//     errorNext instead of the successors, with the failed node's output
//     {"error": message, "node": id}. errorNext alone implies "route".
//   - a panic in a node becomes that node's error (*PanicError).
//
// The message's context bounds every node; cancelling it stops the run
// with the context's error.
//
// # Kinds
//
//	noop          does nothing
//	passthrough   outputs its mapped inputs (or $input)
//	algorithm     config {algorithm, version}; inputs checked against the contract
//	function      config {script}: def main(input, params), input = mapped inputs (or $input)
//	switch        config {cases: [{when, next}], default}; expressions see the mapped inputs by name and params
//	join          config {mode: all|any|n, n}; output {predecessor id: output}; timeout = wait
//	foreach       inputs {items, ...}; config {body, concurrency (4), maxItems (10000), skipFailed}; output {results}
//	subflow       config {flow, version, params}; $input of the subflow = mapped inputs
//	store         config {type}; mapped inputs -> Sinks.Store; output {recordId}
//	publish       config {type}; mapped inputs (subject apart) -> Sinks.Publish; output {published}
//	track         inputs {objects}; config {iou 0.3, maxAge 1s, maxTracks}; output {objects (+trackId), ended, active}
//	bestshot      inputs {objects, ended}; config {score expr over item, emitAfter, maxAge 2s}; output {best}
//	dedup         inputs {items}; config {key expr, window, scope device|task}; output {items}
//	throttle      inputs {items}?; config {limit, interval, key expr}; output {items} or {passed}
//	window        inputs {items}?; config {interval, key expr, emit every|close}; output {start, counts, total, closed}
//	zone          inputs {objects}; config {polygon | line, mode inside|outside|enter|leave|cross, anchor bottom|center}
//
// Stream kinds (track ... zone) keep state in the State passed with each
// message (one per task), partitioned by Input.Key (the device) and their
// key expression, bounded by maxKeys (10000, least recently used evicted)
// and dropped after idle (1m). Their clock is the message time
// (Input.Time), so replays of stored video behave like live runs. Filters
// that let nothing through (bestshot, dedup, throttle, zone, window with
// emit close) end the branch: successors are skipped.
//
// Objects are maps with "box": [x, y, w, h]; expressions (key, score) are
// Starlark over item, e.g. item["label"] or item["score"] * item["quality"].
//
// # Limits
//
// Documented bounds (Limits, DefaultLimits), refused with an error naming
// the limit, never by crashing:
//
//	document size           1 MiB
//	nodes                   500, counting foreach bodies and subflows
//	edges                   2000
//	nesting                 8 levels of foreach/subflow bodies
//	script or expression    64 KiB each
//	node id                 64 bytes
//	literal value nesting   32 levels
//	path                    32 steps
//	foreach items           config.maxItems, 10000 by default
//
// Scripts are bounded per call by function.Limits: steps (1,000,000), wall
// time (1s), input (8 MiB), output (1 MiB), any single value built (4 MiB),
// memory allocated (64 MiB), integer size (65536 bits), nesting (64);
// recursion is off. Options.CheckScripts compiles scripts without running
// their top-level code, for validation on a read-only caller's behalf.
//
// # Observability
//
// With Options.Metrics every node reports tianshu_flow_node_executions_total,
// tianshu_flow_node_errors_total and tianshu_flow_node_duration_seconds
// (labels flow, node, kind), and every message tianshu_flow_messages_total
// (flow, status). Options.Tracer opens a span per node. Input.Trace returns
// every node's status, output, error, attempts and duration in
// Result.Nodes (what the console's test run shows); leave it off on the
// hot path.
package flow
