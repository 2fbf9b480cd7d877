package flow

import "context"

func init() { builtinKinds = append(builtinKinds, kindSubflow) }

func kindSubflow() *Kind {
	return &Kind{
		Name:     "subflow",
		Doc:      "Runs another flow version with the mapped inputs as its $input; outputs that flow's output.",
		Blocking: true,
		Category: CategoryLogic,
		// The mapped inputs are the subflow's $input.
		MoreInputs: true,
		Config:     subflowConfig{},
		Compile: func(b *Builder) Node {
			var cfg subflowConfig
			if !b.Config(&cfg) {
				return nil
			}
			if cfg.Flow == "" {
				b.Errorf("config.flow", "missing flow id")
				return nil
			}
			body := b.Subflow("config.flow", FlowRef{ID: cfg.Flow, Version: cfg.Version})
			if body == nil {
				return nil
			}
			for k, v := range cfg.Params {
				cfg.Params[k] = normalize(v)
			}
			if err := body.CheckParams(cfg.Params); err != nil {
				for _, e := range err.(Errors) {
					b.Errorf("config.params", "%s", e.Error())
				}
				return nil
			}
			return &subflowNode{body: body, params: cfg.Params}
		},
	}
}

type subflowConfig struct {
	Flow    string         `json:"flow" required:"true" example:"flow-example" doc:"the id of a flow of the same project"`
	Version string         `json:"version" doc:"the version to run; empty: the flow's latest when this version was saved"`
	Params  map[string]any `json:"params" doc:"the subflow's parameter values"`
}

type subflowNode struct {
	body   *Plan
	params map[string]any
}

func (n *subflowNode) Run(ctx context.Context, c *Call) (any, error) {
	return c.RunSubflow(ctx, n.body, c.Args(), n.params)
}
