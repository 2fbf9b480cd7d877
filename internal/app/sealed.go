package app

import (
	"github.com/tianshu-ai/tianshu/internal/algorepo"
	"github.com/tianshu-ai/tianshu/internal/appcenter"
	"github.com/tianshu-ai/tianshu/internal/devicecenter"
	"github.com/tianshu-ai/tianshu/internal/edge"
	"github.com/tianshu-ai/tianshu/internal/push"
	"github.com/tianshu-ai/tianshu/internal/secrets/reseal"
)

// SealedColumns lists every column that holds values sealed under the
// master key, for `tianshu secrets rotate` to re-encrypt. A center that
// starts keeping sealed values adds its columns here.
func SealedColumns() []reseal.Column {
	var out []reseal.Column
	for _, cols := range [][]reseal.Column{algorepo.SealedColumns(), appcenter.SealedColumns(), devicecenter.SealedColumns(), edge.SealedColumns(), push.SealedColumns()} {
		out = append(out, cols...)
	}
	return out
}
