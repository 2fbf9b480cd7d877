package vectors

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestDot compares Dot (assembly where the CPU has it) with the Go loop
// on every length up to 300, offsets included.
func TestDot(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for n := 0; n <= 300; n++ {
		a, b := make([]float32, n+3), make([]float32, n+5)
		for i := range a {
			a[i] = float32(r.NormFloat64())
		}
		for i := range b {
			b[i] = float32(r.NormFloat64())
		}
		for off := range 3 {
			x, y := a[off:off+n], b[off+2:]
			got, want := Dot(x, y), dotGo(x, y)
			if math.Abs(float64(got-want)) > 1e-4*math.Max(1, math.Abs(float64(want))) {
				t.Fatalf("n=%d off=%d: Dot = %v; Go loop = %v", n, off, got, want)
			}
		}
	}
	if !hasAVX2FMA {
		t.Log("no AVX2+FMA here: Dot ran the Go loop")
	}
}

func TestDotShortB(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Dot with a shorter b did not panic")
		}
	}()
	Dot(make([]float32, 8), make([]float32, 7))
}

func BenchmarkDot128(b *testing.B) {
	x, y := make([]float32, 128), make([]float32, 128)
	for i := range x {
		x[i], y[i] = float32(i), float32(128-i)
	}
	b.Run("asm", func(b *testing.B) {
		for b.Loop() {
			Dot(x, y)
		}
	})
	b.Run("go", func(b *testing.B) {
		for b.Loop() {
			dotGo(x, y)
		}
	})
}
