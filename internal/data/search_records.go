package data

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// SearchRecords limits: conditions per search, values of one "in",
// bytes of one string value.
const (
	MaxConditions      = 20
	MaxConditionValues = 100
	MaxConditionText   = 1024
)

// fieldPath is what a condition may name: a top-level field of a record's
// document or a dotted path of up to four names into nested objects
// (Attributes.age). Like attrName, it is written into the SQL text by
// store.Dialect, so it holds identifier characters only.
var fieldPath = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]{0,63}){0,3}$`)

// ConditionOps are the comparisons a Condition may make.
var ConditionOps = []string{"=", "!=", "<", "<=", ">", ">=", "in"}

// Condition is a typed filter on a field of a record's document (a dotted
// path into nested objects). Values holds one value (strings, float64 or
// bool), or the list of an "in". A string or bool compares with the
// field's text when it is not a JSON number (a string's content, true or
// false), a number with the field's value when it is a JSON number; "<", "<=", ">" and ">=" take
// numbers only. A record without the field (or with null) matches no
// condition on it, "!=" included.
type Condition struct {
	Field  string
	Op     string
	Values []any
}

// sql is the condition's SQL over column and its arguments.
func (c Condition) sql(d store.Dialect, column string) (string, []any) {
	var expr, notNumber string
	args := make([]any, len(c.Values))
	if _, ok := c.Values[0].(float64); ok {
		expr = d.JSONNumber(column, c.Field)
		copy(args, c.Values)
	} else {
		// The text of a JSON number would equal a string of its digits:
		// a string value compares with strings (and a bool with bools).
		expr, notNumber = d.JSONText(column, c.Field), " AND "+d.JSONNumber(column, c.Field)+" IS NULL"
		for i, x := range c.Values {
			if b, ok := x.(bool); ok {
				x = fmt.Sprint(b)
			}
			args[i] = x
		}
	}
	switch c.Op {
	case "in":
		return "(" + expr + " IN (" + placeholders(len(args)) + ")" + notNumber + ")", args
	case "!=":
		return "(" + expr + " <> ?" + notNumber + ")", args
	}
	return "(" + expr + " " + c.Op + " ?" + notNumber + ")", args
}

// RecordCondition is one condition of SearchRecords: Field (a field of the
// record's Data, or a dotted path such as Attributes.age), Op, and Value
// (a JSON string, number or boolean) or, for Op in, Values.
type RecordCondition struct {
	Field  string            `json:"Field" validate:"required,max=259"`
	Op     string            `json:"Op" validate:"max=2"`
	Value  json.RawMessage   `json:"Value"`
	Values []json.RawMessage `json:"Values"`
}

// parse checks the condition (i is its place, for errors naming the field)
// and returns its typed form.
func (r RecordCondition) parse(i int) (Condition, error) {
	at := func(f string) string { return fmt.Sprintf("Conditions[%d].%s", i, f) }
	if !fieldPath.MatchString(r.Field) {
		return Condition{}, api.InvalidValue(at("Field"), "%q: a field of the record's Data, or a dotted path of up to 4 names (letters, digits and _) such as Attributes.age", r.Field)
	}
	c := Condition{Field: r.Field, Op: r.Op}
	if c.Op == "" {
		c.Op = "="
	}
	if !containsString(ConditionOps, c.Op) {
		return Condition{}, api.InvalidValue(at("Op"), "%q is not one of %s", r.Op, strings.Join(ConditionOps, " "))
	}
	raw := []json.RawMessage{r.Value}
	valueField := "Value"
	if c.Op == "in" {
		if len(r.Value) > 0 && !bytes.Equal(bytes.TrimSpace(r.Value), []byte("null")) {
			return Condition{}, api.InvalidValue(at("Value"), "in takes Values, a list")
		}
		if len(r.Values) == 0 {
			return Condition{}, api.Missing(at("Values"))
		}
		if len(r.Values) > MaxConditionValues {
			return Condition{}, api.InvalidValue(at("Values"), "%d values; at most %d", len(r.Values), MaxConditionValues)
		}
		raw, valueField = r.Values, "Values"
	} else {
		if len(r.Values) > 0 {
			return Condition{}, api.InvalidValue(at("Values"), "%s takes one Value; Values is for in", c.Op)
		}
		if v := bytes.TrimSpace(r.Value); len(v) == 0 || bytes.Equal(v, []byte("null")) {
			return Condition{}, api.Missing(at("Value"))
		}
	}
	kind := ""
	for j, m := range raw {
		name := at(valueField)
		if c.Op == "in" {
			name = fmt.Sprintf("%s[%d]", name, j)
		}
		v, k, err := conditionValue(m)
		if err != nil {
			return Condition{}, api.InvalidValue(name, "%s", err)
		}
		if kind != "" && k != kind {
			return Condition{}, api.InvalidValue(name, "a %s among %ss: the values of one in are all strings, all numbers or all booleans", k, kind)
		}
		kind = k
		c.Values = append(c.Values, v)
	}
	switch c.Op {
	case "<", "<=", ">", ">=":
		if kind != "number" {
			return Condition{}, api.InvalidValue(at("Value"), "%s compares numbers; got a %s", c.Op, kind)
		}
	}
	return c, nil
}

// conditionValue decodes one JSON value of a condition: a string (at most
// MaxConditionText bytes), a finite number or a boolean, and says which.
func conditionValue(m json.RawMessage) (any, string, error) {
	m = bytes.TrimSpace(m)
	var v any
	if err := json.Unmarshal(m, &v); err != nil {
		return nil, "", fmt.Errorf("not a JSON value: %v", err)
	}
	switch x := v.(type) {
	case string:
		if len(x) > MaxConditionText || !utf8.ValidString(x) {
			return nil, "", fmt.Errorf("a string of at most %d bytes of UTF-8", MaxConditionText)
		}
		return x, "string", nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, "", fmt.Errorf("not a finite number")
		}
		return x, "number", nil
	case bool:
		return x, "boolean", nil
	}
	return nil, "", fmt.Errorf("%s: a string, a number or a boolean", m)
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// SearchRecordsRequest is the request of SearchRecords.
type SearchRecordsRequest struct {
	ProjectId string   `json:"ProjectId" validate:"max=64"`
	Types     []string `json:"Types" validate:"max=20"`
	DeviceIds []string `json:"DeviceIds" validate:"max=100"`
	TaskIds   []string `json:"TaskIds" validate:"max=100"`
	StartTime string   `json:"StartTime" validate:"max=64"`
	EndTime   string   `json:"EndTime" validate:"max=64"`
	// Conditions are ANDed; each names a field of the records' Data (a
	// dotted path into nested objects) and compares it.
	Conditions []RecordCondition `json:"Conditions" validate:"max=20"`
	api.Paging
}

// SearchRecordsResponse is the response of SearchRecords.
type SearchRecordsResponse struct {
	TotalCount int          `json:"TotalCount"`
	RecordSet  []RecordInfo `json:"RecordSet"`
}

func registerSearchRecords(reg *api.Registry, s *Service) {
	api.Register(reg, api.Spec{Name: "SearchRecords", Summary: "Find records by their attributes: Types, DeviceIds, TaskIds, a time range (StartTime inclusive, EndTime exclusive, RFC 3339) and Conditions on any stored field of Data, nested ones by a dotted path (Attributes.age), with = != < <= > >= (Value: a string, number or boolean; < <= > >= compare numbers) or in (Values, up to 100); a record without the field matches no condition on it. Newest first, Offset and Limit page, TotalCount counts. Without ProjectId: every project where the caller's roles grant it; a role narrowed to devices or tasks finds their records only.", Permission: recordRead, Union: true},
		func(ctx context.Context, c *api.Caller, r *SearchRecordsRequest) (*SearchRecordsResponse, error) {
			q, err := r.query()
			if err != nil {
				return nil, err
			}
			in := c.ListIn(r.ProjectId, recordReach)
			q.Projects = &in
			recs, total, err := s.Records(ctx, q)
			if err != nil {
				return nil, err
			}
			out := &SearchRecordsResponse{TotalCount: total, RecordSet: make([]RecordInfo, 0, len(recs))}
			for _, rec := range recs {
				info, err := s.recordInfo(ctx, rec)
				if err != nil {
					return nil, err
				}
				out.RecordSet = append(out.RecordSet, info)
			}
			return out, nil
		})
}

// query checks the request and turns it into a Query (without projects).
func (r *SearchRecordsRequest) query() (Query, error) {
	start, err := parseTime("StartTime", r.StartTime)
	if err != nil {
		return Query{}, err
	}
	end, err := parseTime("EndTime", r.EndTime)
	if err != nil {
		return Query{}, err
	}
	if !start.IsZero() && !end.IsZero() && !end.After(start) {
		return Query{}, api.InvalidValue("EndTime", "%s is not after StartTime %s", r.EndTime, r.StartTime)
	}
	for _, l := range []struct {
		name string
		vals []string
		max  int
	}{{"Types", r.Types, maxTypeLen}, {"DeviceIds", r.DeviceIds, maxDeviceLen}, {"TaskIds", r.TaskIds, maxIDLen}} {
		for i, v := range l.vals {
			if v == "" || len(v) > l.max || !utf8.ValidString(v) {
				return Query{}, api.InvalidValue(fmt.Sprintf("%s[%d]", l.name, i), "%q: 1 to %d bytes of UTF-8", v, l.max)
			}
		}
	}
	if len(r.Conditions) > MaxConditions {
		return Query{}, api.InvalidValue("Conditions", "%d conditions; at most %d", len(r.Conditions), MaxConditions)
	}
	q := Query{TaskIDs: r.TaskIds, DeviceIDs: r.DeviceIds, Types: r.Types, Start: start, End: end}
	for i, rc := range r.Conditions {
		c, err := rc.parse(i)
		if err != nil {
			return Query{}, err
		}
		q.Conditions = append(q.Conditions, c)
	}
	q.Offset, q.Limit = r.Page()
	return q, nil
}
