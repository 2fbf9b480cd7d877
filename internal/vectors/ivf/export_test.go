package ivf

import (
	"github.com/tianshu-ai/tianshu/internal/vectors"
	"github.com/tianshu-ai/tianshu/internal/vectors/vlog"
)

// AssignedExactly is, for the tests, the share of ix's live vectors whose
// row lies in the list of the centroid nearest it (compared with every
// centroid), whether any partition's lists have groups, and whether every
// partition is trained with no retrain running.
func AssignedExactly(ix vectors.Index) (share float64, grouped, trained bool) {
	same, n := 0, 0
	trained = true
	ix.(*Index).parts.Each(func(_ vlog.Key, p *part) {
		p.mu.RLock()
		defer p.mu.RUnlock()
		grouped = grouped || p.cur.groups != nil
		trained = trained && p.trainedAt > 0 && !p.retraining
		if p.cur.cents == nil {
			return
		}
		for slot, w := range p.cur.where {
			if w.list == noList {
				continue
			}
			n++
			if p.cur.nearest(p.vec(uint32(slot))) == w.list {
				same++
			}
		}
	})
	if n == 0 {
		return 0, grouped, trained
	}
	return float64(same) / float64(n), grouped, trained
}
