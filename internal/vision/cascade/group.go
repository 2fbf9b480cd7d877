package cascade

import (
	"image"
	"math"
	"slices"
)

// GroupRectangles merges overlapping raw detections the way OpenCV's
// groupRectangles does, and returns one box per surviving group:
//
//  1. Rectangles are "similar" when every edge of one is within
//     eps·(min width + min height)/2 of the same edge of the other;
//     groups are the transitive closure of that relation.
//  2. Each group becomes the average of its rectangles (rounded); groups
//     of minNeighbors or fewer rectangles are dropped.
//  3. A group's box that lies inside another group's box (enlarged by eps
//     of its size) is dropped when that other group is bigger than
//     max(3, its own size), or when its own group has fewer than 3 members.
//
// minNeighbors ≤ 0 returns every rectangle unchanged with Neighbors 1.
func GroupRectangles(rects []image.Rectangle, minNeighbors int, eps float64) []Detection {
	if minNeighbors <= 0 || len(rects) == 0 {
		out := make([]Detection, len(rects))
		for i, r := range rects {
			out[i] = Detection{Rect: r, Neighbors: 1}
		}
		return out
	}
	groups := Groups(rects, eps)
	var out []Detection
	for i, g1 := range groups {
		n1 := g1.Neighbors
		if n1 <= minNeighbors {
			continue
		}
		keep := true
		for j, g2 := range groups {
			n2 := g2.Neighbors
			if j == i || n2 <= minNeighbors {
				continue
			}
			r1, r2 := g1.Rect, g2.Rect
			dx := int(math.RoundToEven(float64(r2.Dx()) * eps))
			dy := int(math.RoundToEven(float64(r2.Dy()) * eps))
			if r1.Min.X >= r2.Min.X-dx && r1.Min.Y >= r2.Min.Y-dy &&
				r1.Max.X <= r2.Max.X+dx && r1.Max.Y <= r2.Max.Y+dy &&
				(n2 > max(3, n1) || n1 < 3) {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, g1)
		}
	}
	return out
}

// Groups is GroupRectangles' steps 1 and 2 alone: every group of similar
// rectangles, a single one included, as the average of its rectangles
// with Neighbors its size.
func Groups(rects []image.Rectangle, eps float64) []Detection {
	// Union-find over the similarity relation.
	parent := make([]int, len(rects))
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	// Similar rectangles have left edges at most eps·(w+h)/2 apart, for
	// the largest w+h: sorted by left edge, each needs comparing only
	// with the few that follow within that distance, not with all n.
	order := make([]int, len(rects))
	maxSpan := 0
	for i, r := range rects {
		order[i] = i
		maxSpan = max(maxSpan, r.Dx()+r.Dy())
	}
	slices.SortFunc(order, func(a, b int) int { return rects[a].Min.X - rects[b].Min.X })
	reach := eps * float64(maxSpan) * 0.5
	for oi, i := range order {
		for _, j := range order[oi+1:] {
			if float64(rects[j].Min.X-rects[i].Min.X) > reach {
				break
			}
			if similar(rects[i], rects[j], eps) {
				if a, b := find(i), find(j); a != b {
					parent[b] = a
				}
			}
		}
	}
	label := make(map[int]int)
	type acc struct{ x, y, w, h, n int }
	var groups []acc
	for i, r := range rects {
		root := find(i)
		k, ok := label[root]
		if !ok {
			k = len(groups)
			label[root] = k
			groups = append(groups, acc{})
		}
		g := &groups[k]
		g.x += r.Min.X
		g.y += r.Min.Y
		g.w += r.Dx()
		g.h += r.Dy()
		g.n++
	}
	out := make([]Detection, len(groups))
	for i, g := range groups {
		s := 1 / float32(g.n)
		x := roundHalfEven32(float32(g.x) * s)
		y := roundHalfEven32(float32(g.y) * s)
		w := roundHalfEven32(float32(g.w) * s)
		h := roundHalfEven32(float32(g.h) * s)
		out[i] = Detection{Rect: image.Rect(x, y, x+w, y+h), Neighbors: g.n}
	}
	return out
}

func similar(a, b image.Rectangle, eps float64) bool {
	delta := eps * float64(min(a.Dx(), b.Dx())+min(a.Dy(), b.Dy())) * 0.5
	return math.Abs(float64(a.Min.X-b.Min.X)) <= delta &&
		math.Abs(float64(a.Min.Y-b.Min.Y)) <= delta &&
		math.Abs(float64(a.Max.X-b.Max.X)) <= delta &&
		math.Abs(float64(a.Max.Y-b.Max.Y)) <= delta
}
