package ivf

import (
	"github.com/tianshu-ai/tianshu/internal/vectors"
	"github.com/tianshu-ai/tianshu/internal/vectors/vlog"
)

// Trained reports, for the tests, whether every partition of ix is
// trained with no retrain running.
func Trained(ix vectors.Index) bool {
	trained := true
	ix.(*Index).parts.Each(func(_ vlog.Key, p *part) {
		p.mu.RLock()
		defer p.mu.RUnlock()
		trained = trained && p.trainedAt > 0 && !p.retraining
	})
	return trained
}
