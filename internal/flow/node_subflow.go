package flow

import "context"

func init() { builtinKinds = append(builtinKinds, kindSubflow) }

func kindSubflow() *Kind {
	return &Kind{
		Name:     "subflow",
		Doc:      "Runs another flow version with the mapped inputs as its $input; outputs that flow's output.",
		Blocking: true,
		Compile: func(b *Builder) Node {
			var cfg struct {
				Flow    string         `json:"flow"`
				Version string         `json:"version"`
				Params  map[string]any `json:"params"`
			}
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

type subflowNode struct {
	body   *Plan
	params map[string]any
}

func (n *subflowNode) Run(ctx context.Context, c *Call) (any, error) {
	return c.RunSubflow(ctx, n.body, c.Args(), n.params)
}
