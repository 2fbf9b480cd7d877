package app_test

import (
	"encoding/json"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/app"
)

func apptestRegistry() *api.Registry { return app.NewRegistry(nil) }

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
