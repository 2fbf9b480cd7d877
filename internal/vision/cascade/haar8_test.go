package cascade

import (
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"
)

// TestHaarStumpLayout pins the layout haar8_amd64.s reads.
func TestHaarStumpLayout(t *testing.T) {
	var s haarStump
	got := []uintptr{unsafe.Sizeof(s), unsafe.Offsetof(s.r), unsafe.Offsetof(s.w), unsafe.Offsetof(s.threshold), unsafe.Offsetof(s.leaf), unsafe.Sizeof(corners{})}
	want := []uintptr{80, 0, 48, 60, 64, 16}
	if !slices.Equal(got, want) {
		t.Fatalf("haarStump size, offsets of r, w, threshold, leaf, corners size = %v, want %v", got, want)
	}
}

// TestHaarStage8 compares the 8-lane kernel with its one-lane-at-a-time
// Go form on every stage of the Haar cascade, over random integral
// images, both steps, lanes with odd normalisations included.
func TestHaarStage8(t *testing.T) {
	c, err := FrontalFaceHaar()
	if err != nil {
		t.Fatal(err)
	}
	const w, h = 120, 90
	stride := w + 1
	ws := &workspace{}
	e := c.newHaarEval(stride, ws)
	rng := rand.New(rand.NewPCG(1, 2))
	img := make([]uint8, w*h)
	ws.sum = make([]int32, stride*(h+1)+64)
	ws.sq = make([]uint32, stride*(h+1))
	passes := 0
	for round := range 12 {
		for i := range img {
			switch round % 3 {
			case 0:
				img[i] = uint8(rng.IntN(256))
			case 1:
				img[i] = uint8((i%w)*2 + rng.IntN(8))
			default:
				img[i] = uint8(128 + rng.IntN(40))
			}
		}
		integral(img, w, h, stride, ws.sum, ws.sq)
		for _, step := range []int{1, 2} {
			for y := 0; y+c.winH <= h; y += 3 {
				for x := 0; x+7*step+c.winW <= w; x += 5 {
					p0 := y*stride + x
					var inv [8]float32
					for k := range inv {
						inv[k], _ = e.normInv(p0 + k*step)
					}
					if round%5 == 4 {
						inv[rng.IntN(8)] = 0
					}
					for si := range c.stages {
						st := &c.stages[si]
						ss := e.stumps[st.first : st.first+st.count]
						want := haarStage8Go(ws.sum, p0, step, ss, &inv, float64(st.threshold))
						got := haarStage8Via(ws.sum, p0, step, ss, &inv, float64(st.threshold))
						if got != want {
							t.Fatalf("round %d step %d at (%d,%d) stage %d: mask %08b, want %08b", round, step, x, y, si, got, want)
						}
						passes += popcount(want)
					}
				}
			}
		}
	}
	t.Logf("%d lane passes compared", passes)
}

func popcount(m uint8) int {
	n := 0
	for ; m != 0; m &= m - 1 {
		n++
	}
	return n
}

// haarStage8Via calls the kernel this build uses.
func haarStage8Via(sum []int32, p0, step int, stumps []haarStump, inv *[8]float32, thr float64) uint8 {
	return haarStage8(&sum[p0], step, stumps, inv, thr)
}

// TestBatchUsed checks that the Haar cascade takes the batched path where
// the CPU allows it.
func TestBatchUsed(t *testing.T) {
	c, err := FrontalFaceHaar()
	if err != nil {
		t.Fatal(err)
	}
	e := c.newHaarEval(101, &workspace{})
	if got := e.batch8(); got != haar8OK {
		t.Fatalf("batch8() = %v, want %v (AVX2 %v)", got, haar8OK, haar8OK)
	}
}
