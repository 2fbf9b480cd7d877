package function

import (
	"context"
	"testing"
)

func TestPosition(t *testing.T) {
	tests := []struct {
		name      string
		src       string
		line, col int
	}{
		{"syntax", "def main(input):\n    x = (1 +\n    return x\n", 3, 5},
		{"undefined name", "def main(input):\n    return open(input)\n", 2, 12},
		{"load", "load('x.star', 'y')\ndef main(input):\n    return input\n", 1, 1},
		{"reserved", "def main(input):\n    __len = 1\n    return input\n", 2, 5},
		{"no main", "def other(input):\n    return input\n", 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, compile := range []func(string, string, Limits) (*Program, error){Compile, Check} {
				_, err := compile("t", tc.src, Limits{})
				if err == nil {
					t.Fatal("compiled")
				}
				if line, col := Position(err); line != tc.line || col != tc.col {
					t.Errorf("Position(%v) = %d:%d, want %d:%d", err, line, col, tc.line, tc.col)
				}
			}
		})
	}
}

func TestPositionAtRunTime(t *testing.T) {
	p := mustCompile(t, "def helper(x):\n    return x['missing']\n\ndef main(input):\n    n = len(input)\n    return helper(input)\n", Limits{})
	_, err := p.Call(context.Background(), map[string]any{"a": int64(1)}, nil)
	if line, col := Position(err); line != 2 || col != 13 {
		t.Errorf("key error: Position(%v) = %d:%d, want 2:13", err, line, col)
	}
	// A builtin's own failure is placed at the script's call of it.
	p = mustCompile(t, "def main(input):\n\n    return len(input)\n", Limits{})
	_, err = p.Call(context.Background(), int64(3), nil)
	if line, col := Position(err); line != 3 || col != 15 {
		t.Errorf("builtin: Position(%v) = %d:%d, want 3:15", err, line, col)
	}
	// A limit is not a place in the script.
	p = mustCompile(t, "def main(input):\n    while True:\n        pass\n", Limits{MaxSteps: 1000})
	_, err = p.Call(context.Background(), nil, nil)
	if line, col := Position(err); line != 0 || col != 0 {
		t.Errorf("limit: Position(%v) = %d:%d, want 0:0", err, line, col)
	}
}

func TestExprPosition(t *testing.T) {
	tests := []struct {
		name      string
		src       string
		vars      []string
		line, col int
	}{
		{"syntax", "item.score >", []string{"item"}, 1, 13},
		{"undefined name", "item.score > treshold", []string{"item"}, 1, 14},
		{"second line", "(item.score > 0.5 and\n  nope)", []string{"item", "index"}, 2, 3},
		{"reserved", "__x", nil, 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CompileExpr("e", tc.src, tc.vars, Limits{})
			if err == nil {
				t.Fatal("compiled")
			}
			if line, col := Position(err); line != tc.line || col != tc.col {
				t.Errorf("Position(%v) = %d:%d, want %d:%d", err, line, col, tc.line, tc.col)
			}
		})
	}
}

func TestExprPositionAtRunTime(t *testing.T) {
	e, err := CompileExpr("e", "(item['score'] >\n 1 / index)", []string{"item", "index"}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.EvalBool(context.Background(), map[string]any{"score": 1.0}, int64(0))
	if line, col := Position(err); line != 2 || col != 4 {
		t.Errorf("Position(%v) = %d:%d, want 2:4", err, line, col)
	}
}
