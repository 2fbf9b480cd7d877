package apitest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/api"
)

// CheckPaging calls action as c with body (JSON without braces) and checks
// that it pages from the server: without Offset/Limit it answers want (the
// values of key, in order) with TotalCount len(want) when want fits the
// default page; pages of two walk want in the same order, each with that
// TotalCount; and Limit and Offset out of bounds are refused naming the
// field.
func CheckPaging(t *testing.T, c *api.Caller, reg *api.Registry, action, key, body string, want []string) {
	t.Helper()
	if _, def := (api.Paging{}).Page(); len(want) <= def {
		n, got, err := List(c, reg, action, key, body)
		if err != nil {
			t.Fatalf("%s: %v", action, err)
		}
		if n != len(want) || strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s = %d %v; want %d %v", action, n, got, len(want), want)
		}
	}
	var paged []string
	for off := 0; off < len(want)+2; off += 2 {
		n, page, err := List(c, reg, action, key, join(body, fmt.Sprintf(`"Offset": %d, "Limit": 2`, off)))
		if err != nil {
			t.Fatalf("%s at Offset %d: %v", action, off, err)
		}
		if n != len(want) {
			t.Errorf("%s at Offset %d: TotalCount %d, want %d", action, off, n, len(want))
		}
		if len(page) > 2 {
			t.Errorf("%s at Offset %d, Limit 2: %d items", action, off, len(page))
		}
		paged = append(paged, page...)
	}
	if strings.Join(paged, ",") != strings.Join(want, ",") {
		t.Errorf("%s in pages of 2 = %v; want %v", action, paged, want)
	}
	for _, bad := range []struct{ body, msg string }{
		{`"Limit": 101`, "Limit: 101 is more than the maximum 100"},
		{`"Limit": -1`, "Limit: -1 is less than the minimum 0"},
		{`"Offset": -1`, "Offset: -1 is less than the minimum 0"},
	} {
		_, _, err := List(c, reg, action, key, join(body, bad.body))
		if e, ok := api.AsError(err); !ok || e.Code != api.InvalidParameterValue || !strings.Contains(e.Message, bad.msg) {
			t.Errorf("%s {%s}: %v; want %s %q", action, bad.body, err, api.InvalidParameterValue, bad.msg)
		}
	}
}
