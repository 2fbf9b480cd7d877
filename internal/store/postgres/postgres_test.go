package postgres

import "testing"

func TestRebind(t *testing.T) {
	for in, want := range map[string]string{
		"SELECT 1":                     "SELECT 1",
		"a = ? AND b = ?":              "a = $1 AND b = $2",
		"a = ? AND b = '?' AND c = ?":  "a = $1 AND b = '?' AND c = $2",
		"INSERT INTO t VALUES (?,?,?)": "INSERT INTO t VALUES ($1,$2,$3)",
		"x = 'it''s ?' AND y = ?":      "x = 'it''s ?' AND y = $1",
	} {
		if got := (Dialect{}).Rebind(in); got != want {
			t.Errorf("Rebind(%q) = %q, want %q", in, got, want)
		}
	}
}
