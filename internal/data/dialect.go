package data

import (
	"fmt"
	"regexp"
)

// attrName is what an attribute filter may name: a top-level field of a
// record's document. The name is written into the SQL text (JSON paths
// cannot be bound portably), so it is restricted to identifier characters.
var attrName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// jsonDialect renders, per SQL engine, the text of a top-level field of the
// records.data document, so that attribute filters run in SQL everywhere.
// Every engine yields the same text for the same JSON value: strings
// unquoted, numbers as written, true/false as words, null as SQL NULL.
type jsonDialect func(field string) string

// jsonDialectFor returns the helper for a store.Dialect name.
func jsonDialectFor(dialect string) jsonDialect {
	switch dialect {
	case "mysql":
		return func(f string) string {
			// JSON_UNQUOTE yields the text of strings, numbers and booleans
			// alike; the COLLATE keeps comparisons byte-exact as elsewhere.
			return fmt.Sprintf("JSON_UNQUOTE(JSON_EXTRACT(data, '$.%s')) COLLATE utf8mb4_bin", f)
		}
	case "postgres":
		return func(f string) string { return fmt.Sprintf("(data::jsonb)->>'%s'", f) }
	default: // sqlite
		return func(f string) string {
			// json_extract returns typed SQL values (1 for true); map them to
			// the text the other engines produce.
			return fmt.Sprintf("(CASE json_type(data, '$.%[1]s') WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "+
				"ELSE CAST(json_extract(data, '$.%[1]s') AS TEXT) END)", f)
		}
	}
}
