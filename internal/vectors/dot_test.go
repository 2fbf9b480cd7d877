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

// TestDotQ compares DotQ (assembly where the CPU has it) with the Go loop
// on every length up to 300, and Quantize's error with the float32 dot
// product of unit vectors.
func TestDotQ(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	for n := 1; n <= 300; n++ {
		a, b := make([]float32, n), make([]float32, n)
		for i := range a {
			a[i], b[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
		}
		a, b = Normalize(a), Normalize(b)
		q := make([]int8, n+3) // longer than a: only len(a) bytes count
		s := Quantize(q[:n], b)
		got := DotQ(a, q)
		var want float32
		for i := range a {
			want += a[i] * float32(q[i])
		}
		if math.Abs(float64(got-want)) > 1e-3*math.Max(1, math.Abs(float64(want))) {
			t.Fatalf("n=%d: DotQ = %v; Go loop = %v", n, got, want)
		}
		if n8 := n &^ 7; n8 > 0 { // the Go loop other architectures run
			var w8 float32
			for i := range n8 {
				w8 += a[i] * float32(q[i])
			}
			if g8 := dotQGo(a[:n8], q[:n8]); math.Abs(float64(g8-w8)) > 1e-3*math.Max(1, math.Abs(float64(w8))) {
				t.Fatalf("n=%d: dotQGo = %v; want %v", n, g8, w8)
			}
		}
		if d := math.Abs(float64(s*got - Dot(a, b))); d > 0.02 {
			t.Fatalf("n=%d: quantized dot %v, float32 %v: error %v", n, s*got, Dot(a, b), d)
		}
	}
	if Quantize(make([]int8, 4), make([]float32, 4)) != 0 {
		t.Fatal("Quantize of the zero vector: want scale 0")
	}
}

func TestDotQQ(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for n := 1; n <= 300; n++ {
		a, b := make([]int8, n), make([]int8, n+7)
		for i := range a {
			a[i] = int8(r.IntN(255) - 127)
		}
		for i := range b {
			b[i] = int8(r.IntN(255) - 127)
		}
		var want int32
		for i := range a {
			want += int32(a[i]) * int32(b[i])
		}
		if got := DotQQ(a, b); got != want {
			t.Fatalf("n=%d: DotQQ = %d; want %d", n, got, want)
		}
		if n16 := n &^ 15; n16 > 0 {
			var w16 int32
			for i := range n16 {
				w16 += int32(a[i]) * int32(b[i])
			}
			if got := dotQQGo(a[:n16], b[:n16]); got != w16 {
				t.Fatalf("n=%d: dotQQGo = %d; want %d", n, got, w16)
			}
		}
	}
	a := make([]int8, MaxDim)
	for i := range a {
		a[i] = -127
	}
	if got := DotQQ(a, a); got != 127*127*MaxDim {
		t.Fatalf("DotQQ at the limits = %d", got)
	}
}

func TestPrefetchRows(t *testing.T) {
	for _, stride := range []int{8, 128, 1024} {
		base := make([]int8, 10*stride)
		PrefetchRows(base, stride, []uint32{0, 9, 3})
		PrefetchRows(base, stride, nil)
		PrefetchRows(base, stride, []uint32{1 << 30}) // far outside: a hint, never a fault
	}
}

func BenchmarkDotQ128(b *testing.B) {
	x, y := make([]float32, 128), make([]int8, 128)
	for i := range x {
		x[i], y[i] = float32(i), int8(i-64)
	}
	b.Run("asm", func(b *testing.B) {
		for b.Loop() {
			DotQ(x, y)
		}
	})
	b.Run("go", func(b *testing.B) {
		for b.Loop() {
			dotQGo(x, y)
		}
	})
}

// TestDotRows compares DotRows (eight rows at a time in assembly where
// the CPU has it) with Dot per row, for lengths the assembly takes and
// ones it leaves to Dot, and row counts around multiples of eight.
func TestDotRows(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for _, d := range []int{1, 7, 8, 16, 24, 128, 136, 512} {
		for _, n := range []int{0, 1, 7, 8, 9, 16, 23, 64} {
			q, rows := make([]float32, d), make([]float32, n*d+5)
			for i := range q {
				q[i] = float32(r.NormFloat64())
			}
			for i := range rows {
				rows[i] = float32(r.NormFloat64())
			}
			out := make([]float32, n)
			DotRows(out, q, rows)
			for i := range n {
				want := dotGo(q, rows[i*d:(i+1)*d])
				if math.Abs(float64(out[i]-want)) > 1e-4*math.Max(1, math.Abs(float64(want))) {
					t.Fatalf("d=%d n=%d row %d: DotRows = %v; Go loop = %v", d, n, i, out[i], want)
				}
			}
		}
	}
}

func BenchmarkDotRows128(b *testing.B) {
	const n = 2000
	q, rows, out := make([]float32, 128), make([]float32, n*128), make([]float32, n)
	for i := range rows {
		rows[i] = float32(i%97) / 97
	}
	for i := range q {
		q[i] = float32(i) / 128
	}
	b.Run("rows", func(b *testing.B) {
		for b.Loop() {
			DotRows(out, q, rows)
		}
	})
	b.Run("dot", func(b *testing.B) {
		for b.Loop() {
			for i := range out {
				out[i] = Dot(q, rows[i*128:(i+1)*128])
			}
		}
	})
}
