package app_test

import (
	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/app"
)

func apptestRegistry() *api.Registry { return app.NewRegistry(nil) }
