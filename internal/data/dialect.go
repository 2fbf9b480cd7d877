package data

import "regexp"

// attrName is what an attribute filter may name: a top-level field of a
// record's document. The name is written into the SQL text by
// store.Dialect.JSONText (JSON paths cannot be bound portably), so it is
// restricted to identifier characters.
var attrName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
